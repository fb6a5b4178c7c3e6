//! The CloudWatch metric documents (Embedded Metric Format) of one web
//! request, one publish run and one warmup run, as a local run logs them
//! at debug level. The metrics recorder is global to a process: this test
//! binary is the one that installs it, and plays the three functions in
//! turn.

mod publish_world;

use std::collections::BTreeSet;

use publish_world::{wide_jpeg, World, HOST, TENANT};
use publisher::metrics::{self, Sink};
use publisher_tests::harness::{get, router};
use publisher_tests::log_capture::Capture;
use serde_json::{json, Value};

/// The metric documents in `logs`, each with the names of its metrics.
fn documents(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| line.find("{\"_aws\"").map(|at| &line[at..]))
        .map(|doc| {
            serde_json::Deserializer::from_str(doc)
                .into_iter::<Value>()
                .next()
                .and_then(Result::ok)
                .expect("a metric document is JSON")
        })
        .collect()
}

fn names(doc: &Value) -> BTreeSet<String> {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| m["Name"].as_str().expect("name").to_string())
        .collect()
}

/// The document whose dimensions are exactly `dimensions` (name → value).
fn with_dimensions<'a>(docs: &'a [Value], dimensions: &[(&str, &str)]) -> &'a Value {
    docs.iter()
        .find(|doc| {
            let declared = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                .as_array()
                .map(Vec::len);
            declared == Some(dimensions.len())
                && dimensions.iter().all(|(name, value)| doc[*name] == *value)
        })
        .unwrap_or_else(|| panic!("no document with {dimensions:?} in {docs:#?}"))
}

fn print(what: &str, docs: &[Value]) {
    println!("--- metric documents of {what}:");
    for doc in docs {
        println!("{doc}");
    }
}

#[tokio::test]
async fn each_function_writes_its_metric_documents_once_per_invocation() {
    let capture = Capture::default();
    let _logs = capture.set_default(tracing::Level::DEBUG);
    assert!(metrics::install("PublisherTest", "web", Sink::Log));
    assert!(
        !metrics::install("Other", "web", Sink::Log),
        "installed once a process"
    );

    let world = World::start().await;
    world.put_image("wide.jpg", wide_jpeg(1600, 1000, 3));
    let app = world.app(None, &[]);

    // One web request: the router's middleware flushes after answering.
    let answer = get(&router(&app), HOST, "/api/config/features").await;
    assert_eq!(answer.status, 200);
    let web = documents(&capture.text());
    print("a web request", &web);
    let plain = with_dimensions(&web, &[("function", "web")]);
    let counted = names(plain);
    for name in ["cold_starts", "runtime_miss", "orchestrator_calls"] {
        assert!(counted.contains(name), "{name}: {plain}");
    }
    assert_eq!(plain["cold_starts"], 1);
    let responses = with_dimensions(&web, &[("function", "web"), ("class", "2xx")]);
    assert_eq!(responses["web_responses"], 1);
    assert!(plain["web_latency"].is_array(), "{plain}");
    assert_eq!(
        with_dimensions(&web, &[("function", "web"), ("role", "storage")])
            ["credential_resolutions"],
        1
    );
    assert_eq!(
        plain["request_id"],
        answer.headers["x-request-id"].to_str().unwrap()
    );

    // One publish run: the handler's invocation flushes after answering.
    let mark = capture.text().len();
    metrics::set_function("publish");
    let summary = publish::handle(&app, json!({"host": HOST}), None, "publish-run")
        .await
        .expect("the run answers");
    metrics::flush("publish-run");
    assert_eq!(summary["results"][0]["status"], "published", "{summary:#}");
    let publish = documents(&capture.text()[mark..]);
    print("a publish run", &publish);
    for tenant in [None, Some(TENANT)] {
        let mut dims = vec![("function", "publish"), ("status", "published")];
        dims.extend(tenant.map(|t| ("tenant", t)));
        assert_eq!(with_dimensions(&publish, &dims)["publish_runs"], 1);
        for platform in ["telegram", "email"] {
            let mut dims = vec![
                ("function", "publish"),
                ("platform", platform),
                ("outcome", "sent"),
            ];
            dims.extend(tenant.map(|t| ("tenant", t)));
            assert_eq!(with_dimensions(&publish, &dims)["publish_outcomes"], 1);
        }
    }
    assert!(
        publish.iter().all(|doc| doc["request_id"] == "publish-run"),
        "every document names its invocation"
    );
    assert!(
        publish.iter().all(|doc| doc.get("cold_starts").is_none()),
        "a cold start is counted once"
    );

    // One warmup run.
    let mark = capture.text().len();
    metrics::set_function("warmup");
    let warmed = warmup::handle(&app, &json!({"hosts": [HOST]}), "warmup-run", None)
        .await
        .expect("the run answers");
    metrics::flush("warmup-run");
    assert_eq!(warmed.results.len(), 1);
    let warmup = documents(&capture.text()[mark..]);
    print("a warmup run", &warmup);
    assert_eq!(
        with_dimensions(&warmup, &[("function", "warmup"), ("status", "ok")])["warmup_hosts"],
        1
    );
    assert_eq!(
        with_dimensions(&warmup, &[("function", "warmup")])["runtime_orchestrator"],
        1
    );
    let checked: u64 = warmup
        .iter()
        .filter(|doc| doc.get("credential_resolutions").is_some())
        .map(|doc| doc["credential_resolutions"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(checked, 4, "every role of the v2 tenant, forced");

    // Nothing left: a flush without metrics writes nothing.
    let mark = capture.text().len();
    metrics::flush("idle");
    assert!(documents(&capture.text()[mark..]).is_empty());
}
