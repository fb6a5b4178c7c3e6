//! The web function's tenant pipeline against a fake orchestrator over real
//! HTTP: host rules, lookups, tokens, caching, stale serving, credentials.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use publisher::app::App;
use publisher::cache::OUTAGE_HOLD;
use publisher_tests::fake_orchestrator::{envelope_for, samples, FakeOrchestrator};
use publisher_tests::harness::{
    fake_with_samples, get, orchestrated_app, router, send, settings, PRIMARY_TOKEN,
};
use serde_json::json;

const VERMONT: &str = "vermont.shibari.photo";
const MAPLE: &str = "maple.shibari.photo";

#[tokio::test]
async fn valid_host_answers_its_tenant_features() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    let answer = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json,
        json!({
            "analyze_caption_enabled": true, "publish_enabled": true, "keep_enabled": true,
            "remove_enabled": true, "auto_view_enabled": false, "auth_mode": "none"
        })
    );
}

#[tokio::test]
async fn unknown_host_is_404_with_the_fixed_body() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    let answer = get(&web, "nobody.shibari.photo", "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json, json!({"error": "Not found"}));
    assert_eq!(fake.runtime_calls_for("nobody.shibari.photo"), 1);
}

#[tokio::test]
async fn invalid_hosts_are_404_without_an_orchestrator_call() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    for host in [
        "localhost",
        "127.0.0.1",
        "[::1]:8080",
        "www.shibari.photo",
        "a..shibari.photo",
        "bad_host.shibari.photo",
        "",
        " vermont.shibari.photo",
    ] {
        let request = Request::get("/api/config/features")
            .header("host", host)
            .body(Body::empty())
            .unwrap();
        let answer = send(&web, request).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{host:?}");
        assert_eq!(answer.json, json!({"error": "Not found"}), "{host:?}");
    }
    assert_eq!(fake.runtime_calls(), 0);
}

#[tokio::test]
async fn hosts_are_normalized_before_the_lookup() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    let answer = get(
        &web,
        "VerMont.Shibari.Photo:8080.",
        "/api/config/publishers",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let recorded = fake.requests();
    assert_eq!(recorded[0].host.as_deref(), Some(VERMONT));
    // The same tenant under another spelling is a cache hit.
    get(&web, "vermont.shibari.photo.", "/api/config/publishers").await;
    assert_eq!(fake.runtime_calls(), 1);
}

#[tokio::test]
async fn lookups_post_a_json_body_and_fall_back_to_get_once_on_405() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    get(&web, VERMONT, "/api/config/features").await;
    let first = fake.requests();
    assert_eq!(
        (first[0].method.as_str(), first[0].path.as_str()),
        ("POST", "/v1/runtime/by-host")
    );
    assert_eq!(first[0].host.as_deref(), Some(VERMONT));

    let fake = fake_with_samples().await;
    fake.set_post_supported(false);
    let web = router(&orchestrated_app(&fake, &[]));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&web, MAPLE, "/api/config/features").await.status,
        StatusCode::OK
    );
    let methods: Vec<(String, u16)> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/runtime/by-host")
        .map(|r| (r.method, r.status))
        .collect();
    // POST once (405), then GET for this lookup and every later one.
    assert_eq!(
        methods,
        vec![
            ("POST".into(), 405),
            ("GET".into(), 200),
            ("GET".into(), 200)
        ]
    );
}

#[tokio::test]
async fn prefer_post_false_uses_get_only() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(
        &fake,
        &[("ORCHESTRATOR_PREFER_POST", "false")],
    ));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    let lookup = &fake.requests()[0];
    assert_eq!(
        (lookup.method.as_str(), lookup.host.as_deref()),
        ("GET", Some(VERMONT))
    );
}

#[tokio::test]
async fn a_rotated_token_switches_to_the_secondary_for_good() {
    let fake = fake_with_samples().await;
    fake.set_tokens("svc-new-token", None);
    let app = orchestrated_app(
        &fake,
        &[("ORCHESTRATOR_SERVICE_TOKEN_SECONDARY", "svc-new-token")],
    );
    let web = router(&app);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&web, MAPLE, "/api/config/features").await.status,
        StatusCode::OK
    );
    let tokens: Vec<(String, u16)> = fake
        .requests()
        .into_iter()
        .map(|r| (r.token.unwrap_or_default(), r.status))
        .collect();
    assert_eq!(tokens[0], (PRIMARY_TOKEN.to_string(), 403));
    assert!(
        tokens[1..]
            .iter()
            .all(|(t, s)| t == "svc-new-token" && *s == 200),
        "{tokens:?}"
    );
}

#[tokio::test]
async fn refused_tokens_answer_503_without_retrying() {
    let fake = fake_with_samples().await;
    fake.set_tokens("someone-else", None);
    let web = router(&orchestrated_app(
        &fake,
        &[("ORCHESTRATOR_SERVICE_TOKEN_SECONDARY", "also-wrong")],
    ));
    let answer = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json, json!({"error": "Service unavailable"}));
    assert_eq!(fake.runtime_calls(), 2, "primary once, secondary once");
}

#[tokio::test]
async fn request_id_round_trips_to_the_orchestrator_and_back() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    let request = Request::get("/api/config/features")
        .header("host", VERMONT)
        .header("X-Request-ID", "trace-42.a:b_c")
        .body(Body::empty())
        .unwrap();
    let answer = send(&web, request).await;
    assert_eq!(answer.headers["x-request-id"], "trace-42.a:b_c");
    assert_eq!(answer.headers["x-correlation-id"], "trace-42.a:b_c");
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.request_id.as_deref() == Some("trace-42.a:b_c")));

    let request = Request::get("/health")
        .header("x-request-id", "bad id!")
        .body(Body::empty())
        .unwrap();
    let answer = send(&web, request).await;
    let generated = answer.headers["x-request-id"].to_str().unwrap();
    assert_eq!(
        generated.len(),
        36,
        "a UUID replaces an invalid id: {generated}"
    );
}

#[tokio::test]
async fn twenty_requests_make_one_lookup_and_one_resolve() {
    let fake = fake_with_samples().await;
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    for _ in 0..20 {
        assert_eq!(
            get(&web, VERMONT, "/api/config/features").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(fake.runtime_calls(), 1);
    assert_eq!(fake.credential_calls(), 1);
    let counters = app.counters.snapshot();
    assert_eq!((counters["runtime_miss"], counters["runtime_hit"]), (1, 19));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_cold_requests_share_one_call() {
    let fake = fake_with_samples().await;
    fake.set_delay(Duration::from_millis(200));
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let web = web.clone();
            tokio::spawn(async move { get(&web, VERMONT, "/api/config/features").await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(fake.runtime_calls(), 1);
    assert_eq!(fake.credential_calls_for("ref-storage-vermont"), 1);
}

fn with_ttl(ttl: u64) -> serde_json::Value {
    let (_, mut v2, _) = samples();
    v2["ttl_seconds"] = json!(ttl);
    v2
}

#[tokio::test]
async fn a_config_is_fetched_again_after_its_ttl() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    get(&web, VERMONT, "/api/config/features").await;
    get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), 1);
    app.clock.advance(Duration::from_millis(1100));
    get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), 2);
}

#[tokio::test]
async fn ttl_zero_means_the_default_not_uncached() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(0));
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    get(&web, VERMONT, "/api/config/features").await;
    app.clock.advance(Duration::from_millis(1100));
    get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), 1);
}

#[tokio::test]
async fn outage_serves_a_stale_copy_within_max_stale() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    let app = orchestrated_app(
        &fake,
        &[
            ("RUNTIME_CONFIG_MAX_STALE_SECONDS", "60"),
            ("ORCHESTRATOR_MAX_ATTEMPTS", "1"),
        ],
    );
    let web = router(&app);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_millis(1100));
    fake.set_outage(true);
    let answer = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["publish_enabled"], true);
    assert_eq!(app.counters.snapshot()["runtime_stale_serve"], 1);
    // Held through the outage: the next requests are served the copy at
    // once, without asking the orchestrator again...
    let asked = fake.runtime_calls();
    for _ in 0..3 {
        let answer = get(&web, VERMONT, "/api/config/features").await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert_eq!(fake.runtime_calls(), asked);
    assert_eq!(app.counters.snapshot()["runtime_stale_serve"], 4);
    // ...until the hold is over.
    app.clock.advance(OUTAGE_HOLD);
    fake.set_outage(false);
    get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), asked + 1);
}

/// Vermont and maple (both v2, TTL 1 s) served once, then their copies
/// stale; `attempts` tries per orchestrator call.
async fn two_stale_hosts(attempts: &str) -> (FakeOrchestrator, Arc<App>, axum::Router) {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    fake.put_runtime(MAPLE, envelope_for("maple", &with_ttl(1)));
    let app = orchestrated_app(
        &fake,
        &[
            ("RUNTIME_CONFIG_MAX_STALE_SECONDS", "600"),
            ("ORCHESTRATOR_MAX_ATTEMPTS", attempts),
        ],
    );
    let web = router(&app);
    for host in [VERMONT, MAPLE] {
        assert_eq!(
            get(&web, host, "/api/config/features").await.status,
            StatusCode::OK
        );
    }
    app.clock.advance(Duration::from_millis(1100));
    (fake, app, web)
}

#[tokio::test]
async fn an_orchestrator_out_of_reach_holds_every_host_with_a_copy() {
    let (fake, app, web) = two_stale_hosts("1").await;
    // Throttled: out of reach for this process, not for one host.
    fake.fail_next_runtime(1000, 429, None);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    let asked = fake.runtime_calls();
    assert_eq!(
        get(&web, MAPLE, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(
        fake.runtime_calls(),
        asked,
        "maple's copy served without a call"
    );
    // After the hold, one request tries again; the others keep their copies.
    app.clock.advance(OUTAGE_HOLD);
    assert_eq!(
        get(&web, MAPLE, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(fake.runtime_calls(), asked + 1);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(fake.runtime_calls(), asked + 1);
    assert_eq!(app.counters.snapshot()["runtime_stale_serve"], 4);
    // Back: the next try's answer ends the hold for every host.
    fake.fail_next_runtime(0, 429, None);
    app.clock.advance(OUTAGE_HOLD);
    get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), asked + 2);
    get(&web, MAPLE, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), asked + 3);
    assert_eq!(app.counters.snapshot()["runtime_stale_serve"], 4);
}

#[tokio::test]
async fn a_retry_that_gets_through_holds_no_host() {
    let (fake, app, web) = two_stale_hosts("2").await;
    fake.fail_next_runtime(1, 429, None);
    get(&web, VERMONT, "/api/config/features").await;
    let asked = fake.runtime_calls();
    get(&web, MAPLE, "/api/config/features").await;
    assert_eq!(
        fake.runtime_calls(),
        asked + 1,
        "maple's stale copy is refreshed"
    );
    assert_eq!(app.counters.snapshot()["runtime_stale_serve"], 0);
}

#[tokio::test]
async fn one_host_answered_500_holds_that_host_only() {
    let (fake, app, web) = two_stale_hosts("1").await;
    fake.fail_next_runtime(1, 500, None);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(app.counters.snapshot()["runtime_stale_serve"], 1);
    let asked = fake.runtime_calls();
    // The orchestrator answered: maple asks for its own config.
    get(&web, MAPLE, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), asked + 1);
    assert_eq!(app.counters.snapshot()["runtime_stale_serve"], 1);
}

#[tokio::test]
async fn outage_beyond_max_stale_is_503() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    let app = orchestrated_app(
        &fake,
        &[
            ("RUNTIME_CONFIG_MAX_STALE_SECONDS", "1"),
            ("ORCHESTRATOR_MAX_ATTEMPTS", "1"),
        ],
    );
    let web = router(&app);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_millis(2100));
    fake.set_outage(true);
    let answer = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json, json!({"error": "Service unavailable"}));
}

#[tokio::test]
async fn outage_without_a_cached_copy_is_503() {
    let fake = fake_with_samples().await;
    fake.set_outage(true);
    let web = router(&orchestrated_app(&fake, &[]));
    let answer = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        fake.runtime_calls(),
        3,
        "ORCHESTRATOR_MAX_ATTEMPTS attempts"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_honouring_retry_after() {
    let fake = fake_with_samples().await;
    fake.fail_next_runtime(2, 503, None);
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(fake.runtime_calls(), 3);

    fake.fail_next_runtime(1, 429, Some(1));
    let started = app.clock.now();
    assert_eq!(
        get(&web, MAPLE, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert!(
        app.clock.since(started) >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(fake.runtime_calls(), 5);
}

#[tokio::test]
async fn not_retried_on_client_errors() {
    let fake = fake_with_samples().await;
    fake.fail_next_runtime(1, 400, None);
    let web = router(&orchestrated_app(&fake, &[]));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(fake.runtime_calls(), 1);
}

#[tokio::test]
async fn a_404_is_remembered_for_the_negative_ttl() {
    let fake = fake_with_samples().await;
    let app = orchestrated_app(&fake, &[("RUNTIME_CONFIG_NEGATIVE_TTL_SECONDS", "1")]);
    let web = router(&app);
    for _ in 0..3 {
        assert_eq!(
            get(&web, "ghost.shibari.photo", "/api/config/features")
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(fake.runtime_calls(), 1);
    assert_eq!(app.counters.snapshot()["runtime_negative_hit"], 2);
    // The tenant appears: found once the negative entry has expired.
    fake.put_runtime("ghost.shibari.photo", envelope_for("ghost", &samples().1));
    app.clock.advance(Duration::from_millis(1200));
    for (cref, payload) in publisher_tests::fake_orchestrator::credentials_for("ghost") {
        fake.put_credential("ghost", &cref, payload);
    }
    assert_eq!(
        get(&web, "ghost.shibari.photo", "/api/config/features")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_404_after_a_stale_copy_is_a_404() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    fake.remove_runtime(VERMONT);
    app.clock.advance(Duration::from_millis(1100));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn v1_and_v2_tenants_differ_in_features_and_publishers() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    let v1 = get(&web, MAPLE, "/api/config/features").await.json;
    // v1 names no AI credentials: analysis is forced off despite the flag.
    assert_eq!(v1["analyze_caption_enabled"], false);
    assert_eq!(
        (
            v1["remove_enabled"].clone(),
            v1["auto_view_enabled"].clone()
        ),
        (json!(false), json!(true))
    );
    assert_eq!(
        get(&web, MAPLE, "/api/config/publishers").await.json,
        json!({"telegram": false, "email": false, "instagram": false})
    );
    assert_eq!(
        get(&web, VERMONT, "/api/config/publishers").await.json,
        json!({"telegram": true, "email": true, "instagram": false})
    );
}

#[tokio::test]
async fn a_config_without_storage_is_503() {
    let fake = fake_with_samples().await;
    let (_, mut v2, _) = samples();
    v2["config"].as_object_mut().unwrap().remove("storage");
    fake.put_runtime(VERMONT, v2);
    let web = router(&orchestrated_app(&fake, &[]));
    let answer = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json, json!({"error": "Service unavailable"}));
}

#[tokio::test]
async fn another_app_type_is_not_found() {
    let fake = fake_with_samples().await;
    let (_, mut v2, _) = samples();
    v2["app_type"] = json!("gallery_v1");
    fake.put_runtime(VERMONT, v2);
    let web = router(&orchestrated_app(&fake, &[]));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn storage_is_resolved_eagerly_once_with_the_host_tenant() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    for _ in 0..5 {
        get(&web, VERMONT, "/api/config/publishers").await;
    }
    let resolves: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/credentials/resolve")
        .collect();
    assert_eq!(resolves.len(), 1);
    assert_eq!(resolves[0].tenant_header.as_deref(), Some("vermont"));
    assert_eq!(
        resolves[0].credentials_ref.as_deref(),
        Some("ref-storage-vermont")
    );
    // AI and publishers are lazy: nothing resolved for them yet.
    for lazy in [
        "ref-openai-vermont",
        "ref-telegram-vermont",
        "ref-smtp-vermont",
    ] {
        assert_eq!(fake.credential_calls_for(lazy), 0, "{lazy}");
    }
}

#[tokio::test]
async fn a_missing_storage_credential_is_503() {
    let fake = fake_with_samples().await;
    fake.remove_credential("ref-storage-vermont");
    let web = router(&orchestrated_app(&fake, &[]));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_storage_credential_of_another_provider_is_503() {
    let fake = fake_with_samples().await;
    fake.put_credential(
        "vermont",
        "ref-storage-vermont",
        json!({"provider": "openai", "version": "v", "api_key": "sk-wrong-provider-0123456789"}),
    );
    let web = router(&orchestrated_app(&fake, &[]));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A rejected credential is not cached: the next request asks again.
    get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(fake.credential_calls_for("ref-storage-vermont"), 2);
}

#[tokio::test]
async fn a_new_config_version_resolves_credentials_again() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    get(&web, VERMONT, "/api/config/features").await;
    let mut changed = with_ttl(1);
    changed["config_version"] = json!("a-new-version");
    fake.put_runtime(VERMONT, changed);
    app.clock.advance(Duration::from_millis(1100));
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(fake.runtime_calls(), 2);
    assert_eq!(fake.credential_calls_for("ref-storage-vermont"), 2);
}

#[tokio::test]
async fn same_config_version_reuses_the_credential_after_a_refresh() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    let app = orchestrated_app(&fake, &[("CREDENTIAL_CACHE_TTL_SECONDS", "60")]);
    let web = router(&app);
    get(&web, VERMONT, "/api/config/features").await;
    app.clock.advance(Duration::from_millis(1100));
    get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(fake.runtime_calls(), 2);
    // Credential TTL is min(60 s, runtime TTL 1 s): resolved again, not reused stale.
    assert_eq!(fake.credential_calls_for("ref-storage-vermont"), 2);
}

#[tokio::test]
async fn working_tenants_survive_an_outage_while_their_services_are_rebuilt() {
    let fake = fake_with_samples().await;
    fake.put_runtime(VERMONT, with_ttl(1));
    let app = orchestrated_app(&fake, &[("ORCHESTRATOR_MAX_ATTEMPTS", "1")]);
    let web = router(&app);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_millis(1100));
    fake.set_outage(true);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    // The failed rebuild is not tried again by every request meanwhile.
    let tried = fake.credential_calls_for("ref-storage-vermont");
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(fake.credential_calls_for("ref-storage-vermont"), tried);
    // After the hold, it is.
    app.clock.advance(OUTAGE_HOLD);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(fake.credential_calls_for("ref-storage-vermont"), tried + 1);
}

#[tokio::test]
async fn health_skips_tenant_resolution_and_ready_reports_counters() {
    let fake = fake_with_samples().await;
    let app = orchestrated_app(
        &fake,
        &[
            ("ORCHESTRATOR_MAX_ATTEMPTS", "1"),
            ("WEB_AUTH_TOKEN", "health-test-api-token"),
        ],
    );
    let web = router(&app);
    for path in ["/health", "/health/live"] {
        let answer = get(&web, "not a host", path).await;
        assert_eq!(
            (answer.status, answer.json),
            (StatusCode::OK, json!({"status": "ok"})),
            "{path}"
        );
    }
    get(&web, VERMONT, "/api/config/features").await;
    let ready = get(&web, "", "/health/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(
        ready.json,
        json!({"status": "ok", "mode": "orchestrated"}),
        "no counters for an anonymous caller"
    );
    let request = Request::get("/health/ready")
        .header("authorization", "Bearer health-test-api-token")
        .body(axum::body::Body::empty())
        .unwrap();
    let as_api = publisher_tests::harness::send(&web, request).await;
    assert_eq!(as_api.json["counters"]["runtime_miss"], 1);
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.host.as_deref() == Some("healthcheck.shibari.photo")));

    fake.set_outage(true);
    // The last answer stands for 10 seconds.
    assert_eq!(get(&web, "", "/health/ready").await.status, StatusCode::OK);
    app.clock.advance(Duration::from_secs(10));
    let down = get(&web, "", "/health/ready").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        down.json,
        json!({"status": "not_ready", "reason": "orchestrator_unavailable"})
    );
    assert_eq!(
        get(&web, "", "/health").await.status,
        StatusCode::OK,
        "liveness stays up"
    );
}

fn standalone_app(extra: &[(&str, &str)]) -> axum::Router {
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    let mut vars = vec![
        ("STORAGE_PROVIDER", "local"),
        ("LOCAL_STORAGE_DIR", dir),
        ("STORAGE_PATHS", r#"{"root": "/"}"#),
    ];
    vars.extend_from_slice(extra);
    router(&std::sync::Arc::new(
        publisher::app::App::new(settings(&vars)).unwrap(),
    ))
}

#[tokio::test]
async fn standalone_serves_only_its_host() {
    let web = standalone_app(&[
        ("STANDALONE_HOST", "studio.shibari.photo"),
        ("FEATURE_PUBLISH", "off"),
    ]);
    let answer = get(&web, "Studio.Shibari.Photo:8000", "/api/config/features").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["publish_enabled"], false);
    assert_eq!(
        get(&web, "other.shibari.photo", "/api/config/features")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let ready = get(&web, "", "/health/ready").await;
    assert_eq!(ready.json, json!({"status": "ok", "mode": "standalone"}));
}

#[tokio::test]
async fn config_source_env_overrides_the_orchestrator() {
    let fake = fake_with_samples().await;
    let base = fake.base_url();
    let web = standalone_app(&[
        ("ORCHESTRATOR_BASE_URL", base.as_str()),
        ("ORCHESTRATOR_SERVICE_TOKEN", PRIMARY_TOKEN),
        ("CONFIG_SOURCE", "env"),
    ]);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&web, "", "/health/ready").await.json["mode"],
        "standalone"
    );
    assert_eq!(fake.runtime_calls() + fake.credential_calls(), 0);
}

#[tokio::test]
async fn unknown_routes_and_large_bodies() {
    let fake = fake_with_samples().await;
    let web = router(&orchestrated_app(&fake, &[]));
    assert_eq!(
        get(&web, VERMONT, "/no/such/route").await.status,
        StatusCode::NOT_FOUND
    );
    let request = Request::post("/api/config/features")
        .header("host", VERMONT)
        .header("content-length", "70000")
        .body(Body::from(vec![b'x'; 70_000]))
        .unwrap();
    assert_eq!(
        send(&web, request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}
