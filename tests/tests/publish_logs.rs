//! What a publish run logs: one `workflow_timing` record with every step, and
//! no secret, not even when Telegram's token-bearing URL fails. Its own
//! binary, because the log subscriber is process-global.

mod publish_world;

use publish_world::*;
use publisher_tests::log_capture::Capture;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_logs_its_timing_and_no_secret() {
    std::env::set_var("RUST_LOG", "trace");
    let capture = Capture::default();
    assert!(publisher::telemetry::init_with(true, capture.clone()));

    let world = World::start().await;
    world.put_image("wide.jpg", wide_jpeg(1600, 1000, 9));
    world.put_samples(&["01-dawn.jpg"]);
    let workflow = world.workflow(None);
    let answer = publish::handle(
        &workflow,
        json!({"host": HOST, "select": "wide.jpg"}),
        None,
        "req-logs-1",
    )
    .await
    .expect("answer");
    assert_eq!(answer["results"][0]["status"], "published", "{answer:#}");

    // Telegram unreachable: reqwest's error would carry the URL with the token.
    let closed = publisher_tests::faults::RefusingPort::bind();
    let app = world.app(None, &[("TELEGRAM_API_URL", closed.url().as_str())]);
    let unreachable = app;
    let answer = publish::handle(&unreachable, json!({"host": HOST}), None, "req-logs-2")
        .await
        .expect("answer");
    assert_eq!(
        answer["results"][0]["results"]["telegram"]["success"],
        false
    );

    let text = capture.text();
    let records: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let timing: Vec<&Value> = records
        .iter()
        .filter(|r| r["message"] == "workflow_timing")
        .collect();
    assert_eq!(timing.len(), 2, "one record per run");
    let first = timing[0];
    assert_eq!(first["tenant"], TENANT);
    assert_eq!(first["image"], "wide.jpg");
    assert_eq!(first["request_id"], "req-logs-1");
    for step in [
        "list_ms",
        "selection_ms",
        "vision_ms",
        "caption_ms",
        "sidecar_ms",
        "publish_ms",
        "archive_ms",
    ] {
        assert!(first[step].is_u64(), "{step} in {first}");
    }
    assert_eq!(first["status"], "published");
    assert_eq!(timing[1]["request_id"], "req-logs-2");

    for secret in [
        "123456789:AAH-vermont-bot-token-0123456789abcd",
        "AAH-vermont",
        "sk-test-vermont-0123456789abcdefghijklmnop",
        "smtp-pass-vermont-0123",
        "dbx-refresh-vermont-0123456789",
        "ref-openai-vermont",
        "ref-telegram-vermont",
        "ref-smtp-vermont",
    ] {
        assert!(!text.contains(secret), "{secret} in the logs");
    }
    assert!(!text.contains("/bot1"), "no Telegram URL with a token");
}
