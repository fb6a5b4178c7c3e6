//! Protections that hold for the fleet, not one instance: failure limits
//! counted in the table, unknown hosts remembered by every instance, cross-
//! site posts refused, the readiness probe's cost bounded, the SMTP password
//! never sent in plain text. Several apps on one moto table stand for
//! several Lambda instances.

mod publish_world;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use publish_world::*;
use publisher::app::App;
use publisher::clock::Clock;
use publisher_tests::fake_orchestrator::{credentials_for, envelope_for, samples};
use publisher_tests::harness::{fake_with_samples, get, router, send, settings, Answer};
use publisher_tests::smtp::SmtpServer;
use publisher_tests::tables::{app_on_table_at, table_at};
use serde_json::json;

const PASSWORD: &str = "a long enough admin password";
const SESSION_SECRET: &str = "fleet-guard-tests-session-secret-0123456789";
const TOKEN: &str = "fleet-guard-tests-api-token";
const CLIENT: &str = "203.0.113.9";

/// A standalone instance over `dir`, on `table`.
fn standalone(dir: &std::path::Path, table: Option<publisher::table::Table>) -> Router {
    let dir = dir.to_str().unwrap();
    let vars = [
        ("STORAGE_PROVIDER", "local"),
        ("LOCAL_STORAGE_DIR", dir),
        ("STORAGE_PATHS", r#"{"root": "/"}"#),
        ("WEB_ADMIN_PASSWORD", PASSWORD),
        ("WEB_SESSION_SECRET", SESSION_SECRET),
        ("WEB_AUTH_TOKEN", TOKEN),
        ("AUTO_VIEW", "true"),
    ];
    let app = App::assemble(settings(&vars), table, Clock::manual_now()).expect("app");
    router(&Arc::new(app))
}

async fn login(web: &Router, host: &str, password: &str) -> Answer {
    let request = Request::post("/api/admin/login")
        .header("host", host)
        .header("x-forwarded-for", CLIENT)
        .header("content-type", "application/json")
        .body(Body::from(json!({"password": password}).to_string()))
        .unwrap();
    send(web, request).await
}

async fn post(web: &Router, path: &str, client: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::post(path)
        .header("host", "photos.example.com")
        .header("x-forwarded-for", client);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(web, request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn failures_spread_over_instances_are_counted_for_the_fleet() {
    let (_moto, table) = moto_table("publisher-failures").await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        standalone(dir.path(), Some(table.clone())),
        standalone(dir.path(), Some(table.clone())),
    );
    let host = "photos.example.com";
    for i in 0..10 {
        let instance = if i % 2 == 0 { &a } else { &b };
        let answer = login(instance, host, "a wrong guess at it").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    for instance in [&a, &b] {
        let refused = login(instance, host, "another wrong guess").await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers.contains_key("retry-after"));
        let right = login(instance, host, PASSWORD).await;
        assert_eq!(
            right.status,
            StatusCode::TOO_MANY_REQUESTS,
            "not even looked at"
        );
    }

    // Wrong API tokens count too, in the same window.
    let fresh = tempfile::tempdir().unwrap();
    let (c, d) = (
        standalone(fresh.path(), Some(table.clone())),
        standalone(fresh.path(), Some(table.clone())),
    );
    let (client, headers) = ("198.51.100.4", [("authorization", "Bearer not-the-token")]);
    for i in 0..10 {
        let instance = if i % 2 == 0 { &c } else { &d };
        let answer = post(instance, "/api/images/a.jpg/keep", client, &headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let refused = post(&c, "/api/images/a.jpg/keep", client, &headers).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn one_client_gets_thirty_failures_across_tenants() {
    let (_moto, table) = moto_table("publisher-failures-global").await;
    let fake = fake_with_samples().await;
    let (_, v2, _) = samples();
    let tenants: Vec<String> = (0..4).map(|i| format!("guard{i}")).collect();
    for tenant in &tenants {
        fake.put_runtime(
            &format!("{tenant}.shibari.photo"),
            envelope_for(tenant, &v2),
        );
        for (cref, payload) in credentials_for(tenant) {
            fake.put_credential(tenant, &cref, payload);
        }
    }
    let vars = [
        ("WEB_ADMIN_PASSWORD", PASSWORD),
        ("WEB_SESSION_SECRET", SESSION_SECRET),
    ];
    let clock = Clock::manual_now();
    let web = router(&app_on_table_at(&fake, Some(table), &vars, clock));
    // Nine on each of three tenants, three on the fourth: thirty.
    for (tenant, failures) in tenants.iter().zip([9, 9, 9, 3]) {
        let host = format!("{tenant}.shibari.photo");
        for _ in 0..failures {
            assert_eq!(
                login(&web, &host, "wrong").await.status,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    let host = format!("{}.shibari.photo", tenants[3]);
    assert_eq!(
        login(&web, &host, "wrong").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the 31st across tenants, the 4th on this one"
    );
}

#[tokio::test]
async fn an_unknown_host_costs_the_fleet_one_lookup() {
    let (moto, _table) = moto_table("publisher-unknown").await;
    let fake = fake_with_samples().await;
    let clock = Clock::manual_now();
    let mut calls = Vec::new();
    for instance in 0..3 {
        let (table, count) = table_at(&moto.endpoint, "publisher-unknown");
        let app = app_on_table_at(&fake, Some(table), &[], clock.clone());
        let answer = get(
            &router(&app),
            "nobody.shibari.photo",
            "/api/config/features",
        )
        .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "instance {instance}");
        calls.push(count.get());
    }
    assert_eq!(fake.runtime_calls(), 1, "one lookup for three instances");
    println!("DynamoDB calls for an unknown host, per instance: {calls:?}");
    assert_eq!(calls[1..], [1, 1], "the others read one NOTFOUND item");

    // The orchestrator learns the host: found once the negative TTL is over,
    // and the NOTFOUND item goes.
    let (_, v2, _) = samples();
    fake.put_runtime("nobody.shibari.photo", envelope_for("nobody", &v2));
    for (cref, payload) in credentials_for("nobody") {
        fake.put_credential("nobody", &cref, payload);
    }
    clock.advance(Duration::from_secs(31));
    let (table, _) = table_at(&moto.endpoint, "publisher-unknown");
    let app = app_on_table_at(&fake, Some(table.clone()), &[], clock.clone());
    let answer = get(
        &router(&app),
        "nobody.shibari.photo",
        "/api/config/features",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        publisher_tests::tables::get_item(&table, "HOST#nobody.shibari.photo", "NOTFOUND")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_cross_site_post_is_refused_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let photo = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/photos/01-dawn.jpg"),
    )
    .unwrap();
    std::fs::write(dir.path().join("a.jpg"), &photo).unwrap();
    let web = standalone(dir.path(), None);
    let logged_in = login(&web, "photos.example.com", PASSWORD).await;
    let cookie = logged_in.headers["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();

    // A page on a sibling tenant's host posts a form, the admin cookie with it.
    for (name, value) in [
        ("origin", "https://evil.example.com"),
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let answer = post(
            &web,
            "/api/images/a.jpg/remove",
            CLIENT,
            &[("cookie", &cookie), (name, value)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert_eq!(answer.json, json!({"detail": "Cross-site request refused"}));
        assert!(dir.path().join("a.jpg").exists(), "nothing moved");
    }

    // The page's own request (same origin) goes through.
    let own = post(
        &web,
        "/api/images/a.jpg/remove",
        CLIENT,
        &[
            ("cookie", &cookie),
            ("authorization", &format!("Bearer {TOKEN}")),
            ("origin", "https://photos.example.com"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{:#}", own.json);
    assert!(!dir.path().join("a.jpg").exists());
    assert!(dir.path().join("reject/a.jpg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_readiness_probes_cost_one_orchestrator_call() {
    let fake = fake_with_samples().await;
    let app = publisher_tests::harness::orchestrated_app(&fake, &[]);
    let web = router(&app);
    let probes: Vec<_> = (0..100)
        .map(|_| {
            let web = web.clone();
            tokio::spawn(async move { get(&web, "", "/health/ready").await })
        })
        .collect();
    for probe in probes {
        let answer = probe.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            answer.json.get("counters").is_none(),
            "anonymous: no counters"
        );
    }
    assert_eq!(fake.runtime_calls(), 1);
    app.clock.advance(Duration::from_secs(10));
    get(&web, "", "/health/ready").await;
    assert_eq!(fake.runtime_calls(), 2, "asked again after 10 s");
}

#[tokio::test]
async fn an_smtp_server_without_starttls_never_sees_the_password() {
    let world = World::start().await;
    let plain = SmtpServer::start_plain(publish_world::FROM, publisher_tests::smtp::PASSWORD);
    world.put_tenant(HOST, TENANT, |e| {
        e["config"]["email_server"]["port"] = plain.port.into();
        e["config"]["email_server"]["use_tls"] = false.into();
    });
    world.put_samples(&["02-dunes.jpg"]);
    let answer = publish::handle(&world.app(None, &[]), json!({"host": HOST}), None, "plain")
        .await
        .expect("answered");
    let result = &answer["results"][0];
    assert_eq!(
        result["status"], "published",
        "Telegram took it: {answer:#}"
    );
    assert_eq!(result["results"]["email"]["success"], false);
    assert_eq!(result["results"]["email"]["error"], "smtp_tls_required");
    assert!(plain.auth_attempts().is_empty(), "no AUTH was ever sent");
    assert!(plain.messages().is_empty());
}
