//! Every token, secret and credentials ref a scenario touches stays out of the
//! logs, with logging at TRACE for every crate. Its own binary, because the
//! log subscriber is process-global.

use publisher::secrets::Role;
use publisher_tests::fake_orchestrator::samples;
use publisher_tests::harness::{fake_with_samples, get, orchestrated_app, router, PRIMARY_TOKEN};
use publisher_tests::log_capture::Capture;
use serde_json::json;

const SECONDARY: &str = "svc-secondary-token-rotated-in";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_ref_reaches_the_logs() {
    std::env::set_var("RUST_LOG", "trace");
    let capture = Capture::default();
    assert!(publisher::telemetry::init_with(true, capture.clone()));

    let fake = fake_with_samples().await;
    // Rotation: the orchestrator only takes the secondary now.
    fake.set_tokens(SECONDARY, None);
    let app = orchestrated_app(
        &fake,
        &[("ORCHESTRATOR_SERVICE_TOKEN_SECONDARY", SECONDARY)],
    );
    let web = router(&app);
    assert_eq!(
        get(&web, "vermont.shibari.photo", "/api/config/features")
            .await
            .status,
        200
    );

    // Every lazy credential, through the tenant's services.
    let tenant = app
        .tenant("vermont.shibari.photo", "log-test")
        .await
        .expect("tenant");
    for role in [Role::Openai, Role::Telegram, Role::Smtp] {
        assert!(
            tenant.services.credential(role, "log-test").await.is_some(),
            "{role}"
        );
    }
    // Failures log too: a mismatched provider, a transient error, an outage.
    fake.put_credential(
        "maple",
        "ref-storage-maple",
        json!({"provider": "smtp", "password": "smtp-pass-wrong-role-4242"}),
    );
    fake.fail_next_credentials(1, 503, None);
    assert_eq!(
        get(&web, "maple.shibari.photo", "/api/config/features")
            .await
            .status,
        503
    );
    fake.set_outage(true);
    assert_eq!(
        get(&web, "down.shibari.photo", "/api/config/features")
            .await
            .status,
        503
    );

    let logs = capture.text();
    assert!(
        logs.contains("orchestrator call"),
        "the scenario was logged"
    );
    assert!(
        logs.lines().count() > 20,
        "TRACE output captured: {} lines",
        logs.lines().count()
    );

    let (_, _, credentials) = samples();
    let mut forbidden = vec![
        PRIMARY_TOKEN.to_string(),
        SECONDARY.to_string(),
        "smtp-pass-wrong-role-4242".into(),
    ];
    for (cref, payload) in credentials.as_object().unwrap() {
        forbidden.push(cref.clone());
        for field in [
            "refresh_token",
            "api_key",
            "bot_token",
            "password",
            "version",
        ] {
            if let Some(value) = payload.get(field).and_then(|v| v.as_str()) {
                forbidden.push(value.to_string());
            }
        }
    }
    forbidden.push("ref-storage-maple".into());
    for value in &forbidden {
        assert!(
            !logs.contains(value.as_str()),
            "{value:?} leaked into the logs"
        );
    }
}
