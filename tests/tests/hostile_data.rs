//! Hostile data and failing code cost at most the one request: a poisoned
//! table item, a panicking handler, an image whose header asks for
//! gigabytes.

mod publish_world;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use publish_world::*;
use publisher::metrics::Counter;
use publisher_tests::harness::{fake_with_samples, get as get_path, send, settings};
use publisher_tests::images::png_declaring;
use publisher_tests::tables::{app_on_table, attr_n, get_item, put_item};
use serde_json::{json, Value};

const VERMONT: &str = "vermont.shibari.photo";

#[tokio::test]
async fn a_runtime_item_with_impossible_times_costs_one_lookup_not_the_host() {
    let (_moto, table) = moto_table("publisher-poisoned").await;
    let fake = fake_with_samples().await;
    let huge = AttributeValue::N(u64::MAX.to_string());
    let poisoned = HashMap::from([
        (
            "pk".to_string(),
            AttributeValue::S(format!("HOST#{VERMONT}")),
        ),
        ("sk".to_string(), AttributeValue::S("RUNTIME".into())),
        ("config".to_string(), AttributeValue::S("{}".into())),
        (
            "config_version".to_string(),
            AttributeValue::S("v-bad".into()),
        ),
        ("fetched_at".to_string(), huge.clone()),
        ("fresh_until".to_string(), huge.clone()),
        ("expires_at".to_string(), huge),
    ]);
    put_item(&table, poisoned).await;

    for instance in 0..2 {
        let app = app_on_table(&fake, Some(table.clone()), &[]);
        let web = publisher_tests::harness::router(&app);
        for _ in 0..3 {
            let answer = get_path(&web, VERMONT, "/api/config/features").await;
            assert_eq!(answer.status, StatusCode::OK, "instance {instance}");
        }
        if instance == 0 {
            assert!(
                app.counters.get(Counter::RuntimeDynamoError) >= 1,
                "skipped, counted"
            );
        }
    }
    assert_eq!(fake.runtime_calls(), 1, "one lookup, then the fixed copy");
    let fixed = get_item(&table, &format!("HOST#{VERMONT}"), "RUNTIME")
        .await
        .expect("overwritten");
    assert!(attr_n(&fixed, "fresh_until") < 253_402_300_799);
}

#[tokio::test]
async fn a_panicking_handler_is_one_failed_request() {
    let fake = fake_with_samples().await;
    let app = publisher_tests::harness::orchestrated_app(&fake, &[]);
    let boom = Router::new().route(
        "/api/boom",
        get(|| async {
            if std::hint::black_box(true) {
                panic!("a bug in a handler");
            }
            "unreachable"
        }),
    );
    let web = web::router_with(app, boom);
    let request = Request::get("/api/boom")
        .header("host", VERMONT)
        .header("x-request-id", "req-boom-1")
        .body(Body::empty())
        .expect("request");
    let answer = send(&web, request).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json, json!({"error": "Internal server error"}));
    assert_eq!(answer.headers["x-request-id"], "req-boom-1");
    // The instance keeps serving.
    for _ in 0..3 {
        let answer = get_path(&web, VERMONT, "/api/config/features").await;
        assert_eq!(answer.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn an_image_bomb_is_refused_and_the_next_candidate_published() {
    let bomb = png_declaring(30_000, 30_000);
    assert!(bomb.len() < 100, "a few dozen bytes: {}", bomb.len());
    assert!(publisher::image_bounds::check(&bomb).is_err());

    let world = World::start().await;
    world.put_image("bomb.png", bomb);
    world.put_samples(&["02-dunes.jpg"]);
    let app = world.app(None, &[]);
    let run = |event: Value| {
        let app = app.clone();
        async move {
            let answer = publish::handle(&app, event, None, "bomb")
                .await
                .expect("answered");
            answer["results"][0].clone()
        }
    };

    let first = run(json!({"host": HOST})).await;
    assert_eq!(first["status"], "published", "{first:#}");
    assert_eq!(first["image"], "02-dunes.jpg");
    assert_eq!(world.telegram.sent().len(), 1);

    let second = run(json!({"host": HOST})).await;
    assert_eq!(second["status"], "nothing_to_publish", "{second:#}");
    assert_eq!(
        second["error"],
        "No new images to post (1 too large to decode)"
    );

    let selected = run(json!({"host": HOST, "select": "bomb.png"})).await;
    assert_eq!(selected["status"], "failed", "{selected:#}");
    assert_eq!(selected["error"], "image_too_large: bomb.png");
    assert_eq!(world.telegram.sent().len(), 1, "nothing else sent");
    assert!(world.images_in_root().contains(&"bomb.png".to_string()));
}

#[tokio::test]
async fn an_image_bomb_has_no_thumbnail_and_costs_no_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bomb.png"), png_declaring(30_000, 30_000)).unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let app = std::sync::Arc::new(
        publisher::app::App::new(settings(&[
            ("STORAGE_PROVIDER", "local"),
            ("LOCAL_STORAGE_DIR", &root),
            ("STORAGE_PATHS", r#"{"root": "/"}"#),
            ("AUTO_VIEW", "true"),
        ]))
        .expect("app"),
    );
    let web = web::router(app);
    let answer = get_path(&web, "photos.example.com", "/api/images/bomb.png/thumbnail").await;
    assert!(
        answer.status.is_server_error() && answer.status != StatusCode::INTERNAL_SERVER_ERROR,
        "refused, not a panic: {}",
        answer.status
    );
    let listing = get_path(&web, "photos.example.com", "/api/images/list").await;
    assert_eq!(
        listing.json["filenames"],
        json!(["bomb.png"]),
        "still served"
    );
}
