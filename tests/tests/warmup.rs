//! The warmup function's handler against the fake orchestrator and a real
//! DynamoDB API (moto's server): refresh-ahead into the table, credential
//! checks, the answer, and its bounds.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use publisher::app::App;
use publisher::secrets::Role;
use publisher_tests::fake_orchestrator::{credentials_for, samples, FakeOrchestrator};
use publisher_tests::harness::{fake_with_samples, get, router};
use publisher_tests::log_capture::Capture;
use publisher_tests::moto::Moto;
use publisher_tests::tables::{app_on_table, attr_n, attr_s, get_item, scan_all, table_at, Item};
use serde_json::{json, Value};
use warmup::{handle, Answer, Status, WarmupError};

const VERMONT: &str = "vermont.shibari.photo";
const MAPLE: &str = "maple.shibari.photo";
const TABLE: &str = "publisher-warmup";

struct Setup {
    moto: Moto,
    fake: FakeOrchestrator,
}

impl Setup {
    async fn new() -> Setup {
        let moto = Moto::start().await;
        moto.create_table(TABLE).await;
        Setup {
            moto,
            fake: fake_with_samples().await,
        }
    }

    fn instance(&self, extra: &[(&str, &str)]) -> Arc<App> {
        let (table, _) = table_at(&self.moto.endpoint, TABLE);
        app_on_table(&self.fake, Some(table), extra)
    }

    fn table(&self) -> publisher::table::Table {
        table_at(&self.moto.endpoint, TABLE).0
    }
}

async fn run(app: &App, event: Value) -> Answer {
    handle(app, &event, "warmup-test", None)
        .await
        .expect("warmup answers")
}

fn as_json(answer: &Answer) -> Value {
    serde_json::to_value(answer).expect("serializable")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn warms_the_event_env_and_table_hosts_into_the_table() {
    let s = Setup::new().await;
    s.fake
        .seed_tenant("acme.shibari.photo", "acme", &samples().1);
    // maple is known to the table already, fresh past the next run: not due.
    let web = s.instance(&[]);
    assert_eq!(
        get(&router(&web), MAPLE, "/api/config/features")
            .await
            .status,
        200
    );
    s.fake.reset_counters();

    let app = s.instance(&[("WARMUP_HOSTS", "acme.shibari.photo, Vermont.Shibari.Photo")]);
    let answer = as_json(&run(&app, json!({"hosts": [VERMONT]})).await);
    let all = json!({"storage": "ok", "openai": "ok", "telegram": "ok", "smtp": "ok"});
    assert_eq!(
        answer,
        json!({"results": [
            {"host": VERMONT, "tenant": "vermont", "status": "ok",
             "config_version_changed": true, "credentials": all},
            {"host": "acme.shibari.photo", "tenant": "acme", "status": "ok",
             "config_version_changed": true, "credentials": all},
        ]})
    );
    assert_eq!(s.fake.runtime_calls(), 2);
    assert_eq!(s.fake.credential_calls(), 8);

    let table = s.table();
    for (host, tenant) in [
        (VERMONT, "vermont"),
        ("acme.shibari.photo", "acme"),
        (MAPLE, "maple"),
    ] {
        let item = get_item(&table, &format!("HOST#{host}"), "RUNTIME")
            .await
            .unwrap_or_else(|| panic!("{host} warmed"));
        let envelope: Value = serde_json::from_str(attr_s(&item, "config")).unwrap();
        assert_eq!(envelope["tenant"], tenant);
        assert!(attr_n(&item, "fresh_until") >= now_secs() + 590);
    }
    let check = get_item(&table, "TENANT#vermont", "CREDCHECK#telegram")
        .await
        .expect("telegram checked");
    assert_eq!(attr_s(&check, "provider"), "telegram");
    assert_eq!(check.get("ok"), Some(&AttributeValue::Bool(true)));
    assert!(!check.contains_key("error"));
    assert!((now_secs() - 5..=now_secs()).contains(&attr_n(&check, "checked_at")));
    let mut attributes: Vec<&str> = check.keys().map(String::as_str).collect();
    attributes.sort();
    assert_eq!(
        attributes,
        ["checked_at", "config_version", "ok", "pk", "provider", "sk"]
    );
}

#[tokio::test]
async fn a_cold_web_instance_then_needs_no_orchestrator_lookup() {
    let s = Setup::new().await;
    run(&s.instance(&[]), json!({"hosts": [VERMONT]})).await;
    s.fake.reset_counters();
    let web = s.instance(&[]);
    assert_eq!(
        get(&router(&web), VERMONT, "/api/config/features")
            .await
            .status,
        200
    );
    assert_eq!(s.fake.runtime_calls(), 0);
}

#[tokio::test]
async fn hosts_the_event_names_are_refreshed_and_checked_every_time() {
    let s = Setup::new().await;
    let app = s.instance(&[]);
    run(&app, json!({"hosts": [VERMONT]})).await;
    let again = as_json(&run(&app, json!({"hosts": [VERMONT]})).await);
    assert_eq!(again["results"][0]["status"], "ok");
    assert_eq!(again["results"][0]["config_version_changed"], false);
    assert_eq!(s.fake.runtime_calls(), 2, "never from a cache");
    assert_eq!(
        s.fake.credential_calls(),
        8,
        "an operator's explicit run checks everything"
    );

    let (_, mut v2, _) = samples();
    v2["config_version"] = json!("v-next");
    s.fake.put_runtime(VERMONT, v2);
    let changed = as_json(&run(&app, json!({"hosts": [VERMONT]})).await);
    assert_eq!(changed["results"][0]["config_version_changed"], true);
}

#[tokio::test]
async fn a_404_deletes_the_hosts_item() {
    let s = Setup::new().await;
    let app = s.instance(&[]);
    run(&app, json!({"hosts": [VERMONT, MAPLE]})).await;
    s.fake.remove_runtime(VERMONT);
    // The copies are due again before the next run.
    app.clock.advance(Duration::from_secs(400));
    // The table names vermont now: no event hosts needed.
    let answer = as_json(&run(&app, json!({})).await);
    let vermont = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == VERMONT)
        .expect("vermont from the table")
        .clone();
    assert_eq!(
        vermont,
        json!({"host": VERMONT, "tenant": "vermont", "status": "not_found",
               "config_version_changed": true, "credentials": {}})
    );
    let table = s.table();
    assert!(get_item(&table, "HOST#vermont.shibari.photo", "RUNTIME")
        .await
        .is_none());
    assert!(get_item(&table, "HOST#maple.shibari.photo", "RUNTIME")
        .await
        .is_some());
}

#[tokio::test]
async fn failed_checks_are_reported_recorded_and_logged_per_role() {
    let s = Setup::new().await;
    s.fake.remove_credential("ref-telegram-vermont");
    let (_, _, fixture) = samples();
    // The openai ref answers with a telegram credential.
    s.fake.put_credential(
        "vermont",
        "ref-openai-vermont",
        fixture["ref-telegram-vermont"].clone(),
    );
    let (_, mut broken, _) = samples();
    broken["config"].as_object_mut().unwrap().remove("storage");
    s.fake.put_runtime("broken.shibari.photo", broken);

    let capture = Capture::default();
    let _logs = capture.set_default(tracing::Level::INFO);

    let app = s.instance(&[]);
    let event = json!({"hosts": ["broken.shibari.photo", VERMONT, "nobody.shibari.photo", "bad_host.shibari.photo", MAPLE]});
    let answer = as_json(&run(&app, event).await);
    let statuses: Vec<(&str, &str)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("broken.shibari.photo", "unavailable"),
            (VERMONT, "ok"),
            ("nobody.shibari.photo", "not_found"),
            ("bad_host.shibari.photo", "not_found"),
            (MAPLE, "ok"),
        ]
    );
    assert_eq!(
        answer["results"][1]["credentials"],
        json!({"storage": "ok", "openai": "provider_mismatch", "telegram": "not_found", "smtp": "ok"})
    );

    let table = s.table();
    let telegram = get_item(&table, "TENANT#vermont", "CREDCHECK#telegram")
        .await
        .unwrap();
    assert_eq!(telegram.get("ok"), Some(&AttributeValue::Bool(false)));
    assert_eq!(attr_s(&telegram, "error"), "not_found");
    assert_eq!(attr_s(&telegram, "provider"), "telegram");
    let openai = get_item(&table, "TENANT#vermont", "CREDCHECK#openai")
        .await
        .unwrap();
    assert_eq!(attr_s(&openai, "error"), "provider_mismatch");

    let logs = capture.text();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("credential check failed"))
        .collect();
    assert_eq!(warnings.len(), 2, "{logs}");
    for role in ["openai", "telegram"] {
        assert!(
            warnings
                .iter()
                .any(|l| l.contains(&format!("role={role}")) && l.contains(VERMONT)),
            "{role}: {warnings:?}"
        );
    }
    assert!(
        !logs.contains("ref-telegram-vermont"),
        "refs stay out of logs"
    );
}

#[tokio::test]
async fn unauthorized_and_unavailable_credentials() {
    let s = Setup::new().await;
    let app = s.instance(&[("ORCHESTRATOR_MAX_ATTEMPTS", "1")]);
    s.fake.fail_next_credentials(1, 403, None);
    let answer = as_json(&run(&app, json!({"hosts": [MAPLE]})).await);
    assert_eq!(
        answer["results"][0]["credentials"],
        json!({"storage": "unauthorized"})
    );
    s.fake.fail_next_credentials(1, 503, None);
    let answer = as_json(&run(&app, json!({"hosts": [MAPLE]})).await);
    assert_eq!(
        answer["results"][0]["credentials"],
        json!({"storage": "unavailable"})
    );
    let check = get_item(&s.table(), "TENANT#maple", "CREDCHECK#storage")
        .await
        .unwrap();
    assert_eq!(attr_s(&check, "error"), "unavailable");
}

#[tokio::test]
async fn a_role_the_tenant_dropped_loses_its_check() {
    let s = Setup::new().await;
    let app = s.instance(&[]);
    run(&app, json!({"hosts": [VERMONT]})).await;
    let (_, mut v2, _) = samples();
    v2["config"].as_object_mut().unwrap().remove("ai");
    v2["config_version"] = json!("v-without-ai");
    s.fake.put_runtime(VERMONT, v2);
    let answer = as_json(&run(&app, json!({"hosts": [VERMONT]})).await);
    assert!(answer["results"][0]["credentials"].get("openai").is_none());
    assert!(get_item(&s.table(), "TENANT#vermont", "CREDCHECK#openai")
        .await
        .is_none());
    assert!(get_item(&s.table(), "TENANT#vermont", "CREDCHECK#storage")
        .await
        .is_some());
}

#[tokio::test]
async fn an_unavailable_orchestrator_keeps_the_tables_copy() {
    let s = Setup::new().await;
    let app = s.instance(&[("ORCHESTRATOR_MAX_ATTEMPTS", "1")]);
    run(&app, json!({"hosts": [VERMONT]})).await;
    s.fake.set_outage(true);
    let answer = as_json(&run(&app, json!({"hosts": [VERMONT]})).await);
    assert_eq!(
        answer["results"][0],
        json!({"host": VERMONT, "tenant": "vermont", "status": "unavailable",
               "config_version_changed": false, "credentials": {}})
    );
    assert!(
        get_item(&s.table(), "HOST#vermont.shibari.photo", "RUNTIME")
            .await
            .is_some()
    );
}

/// Every string anywhere in an item.
fn strings(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::Ss(list) | AttributeValue::Ns(list) => out.extend(list.iter().cloned()),
        AttributeValue::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).into_owned()),
        AttributeValue::L(list) => list.iter().for_each(|v| strings(v, out)),
        AttributeValue::M(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn no_secret_and_no_credential_version_reaches_the_table() {
    let s = Setup::new().await;
    // Every credential of both tenants: by the warmup, and by a web instance
    // through its services (storage eagerly, the others lazily).
    let answer = as_json(&run(&s.instance(&[]), json!({"hosts": [VERMONT, MAPLE]})).await);
    assert_eq!(
        answer["results"][0]["credentials"]
            .as_object()
            .unwrap()
            .len(),
        4
    );
    let web = s.instance(&[]);
    for host in [VERMONT, MAPLE] {
        assert_eq!(
            get(&router(&web), host, "/api/config/features")
                .await
                .status,
            200
        );
    }
    let tenant = web.tenant(VERMONT, "secrets").await.expect("tenant");
    for role in [Role::Openai, Role::Telegram, Role::Smtp] {
        assert!(
            tenant.services.credential(role, "secrets").await.is_some(),
            "{role}"
        );
    }
    assert!(s.fake.credential_calls() >= 10);

    let items: Vec<Item> = scan_all(&s.table()).await;
    assert!(
        items.len() >= 2 + 5,
        "runtime items and checks: {}",
        items.len()
    );
    let mut forbidden = Vec::new();
    for tenant in ["vermont", "maple"] {
        for (_, payload) in credentials_for(tenant) {
            for key in [
                "refresh_token",
                "api_key",
                "bot_token",
                "password",
                "version",
            ] {
                if let Some(value) = payload.get(key).and_then(Value::as_str) {
                    forbidden.push(value.to_string());
                }
            }
        }
    }
    assert!(forbidden.contains(&"v-d1".to_string()));
    for item in &items {
        let mut found = Vec::new();
        for value in item.values() {
            strings(value, &mut found);
        }
        for text in &found {
            for secret in &forbidden {
                assert!(
                    !text.contains(secret.as_str()),
                    "{secret} stored in {:?}",
                    item["sk"]
                );
            }
        }
        if attr_s(item, "sk").starts_with("CREDCHECK#") {
            assert!(
                found.iter().all(|t| !t.contains("ref-")),
                "no ref in a check: {item:?}"
            );
        }
    }
}

#[tokio::test]
async fn without_a_table_the_warmup_still_checks() {
    let fake = fake_with_samples().await;
    let app = app_on_table(&fake, None, &[]);
    let answer = as_json(&run(&app, json!({"hosts": [MAPLE]})).await);
    assert_eq!(answer["results"][0]["status"], "ok");
    assert_eq!(
        answer["results"][0]["credentials"],
        json!({"storage": "ok"})
    );
}

#[tokio::test]
async fn bad_events_and_standalone_mode_are_refused() {
    let fake = fake_with_samples().await;
    let app = app_on_table(&fake, None, &[]);
    let error = handle(&app, &json!({"hosts": "x"}), "r", None)
        .await
        .unwrap_err();
    assert!(matches!(error, WarmupError::BadEvent(_)), "{error}");
    assert_eq!(fake.runtime_calls(), 0);

    let dir = std::env::temp_dir();
    let standalone = publisher_tests::harness::settings(&[
        ("STORAGE_PROVIDER", "local"),
        ("LOCAL_STORAGE_DIR", dir.to_str().unwrap()),
        ("STORAGE_PATHS", r#"{"root": "/"}"#),
    ]);
    let standalone = App::new(standalone).expect("standalone app");
    let error = handle(&standalone, &json!({}), "r", None)
        .await
        .unwrap_err();
    assert!(matches!(error, WarmupError::Standalone), "{error}");
}

async fn seed_many(fake: &FakeOrchestrator, n: usize) -> Vec<String> {
    let (_, v2, _) = samples();
    (0..n)
        .map(|i| {
            let host = format!("t{i:03}.shibari.photo");
            fake.seed_tenant(&host, &format!("t{i:03}"), &v2);
            host
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_hosts_at_50_ms_finish_well_inside_a_minute() {
    let s = Setup::new().await;
    let hosts = seed_many(&s.fake, 300).await;
    s.fake.set_delay(Duration::from_millis(50));
    // A generous per-attempt timeout: on a loaded machine a retry would make
    // the call counts below depend on load rather than on the warmup; and a
    // ceiling that leaves every call its turn within the deadline.
    let app = s.instance(&[
        ("ORCHESTRATOR_TIMEOUT_SECONDS", "20"),
        ("WARMUP_MAX_ORCHESTRATOR_RPS", "1000"),
    ]);
    let deadline = SystemTime::now() + Duration::from_secs(60);
    let started = Instant::now();
    let answer = handle(&app, &json!({"hosts": hosts}), "r300", Some(deadline))
        .await
        .expect("answer");
    let elapsed = started.elapsed();
    println!(
        "warmup: 300 hosts (1 lookup + 4 credentials each, 50 ms orchestrator latency) in {:.2} s",
        elapsed.as_secs_f64()
    );
    assert_eq!(answer.results.len(), 300);
    assert!(answer.results.iter().all(|r| r.status == Status::Ok));
    assert!(answer
        .results
        .iter()
        .all(|r| r.credentials.values().all(|c| c == "ok")));
    assert_eq!(s.fake.runtime_calls(), 300);
    assert_eq!(s.fake.credential_calls(), 1200);
}

#[tokio::test]
async fn hosts_still_running_near_the_deadline_answer_unavailable() {
    let s = Setup::new().await;
    let hosts = seed_many(&s.fake, 30).await;
    // The orchestrator answers no call before the test is over: the run
    // answering at all shows that it gave its hosts up at the deadline.
    s.fake.set_delay(Duration::from_secs(3600));
    let app = s.instance(&[("ORCHESTRATOR_TIMEOUT_SECONDS", "3600")]);
    // Two seconds are kept for the answer: one second of work.
    let deadline = SystemTime::now() + Duration::from_secs(3);
    let answer = handle(&app, &json!({"hosts": hosts}), "late", Some(deadline))
        .await
        .expect("answer");
    assert_eq!(answer.results.len(), 30);
    assert!(answer
        .results
        .iter()
        .all(|r| r.status == Status::Unavailable));
}

#[tokio::test]
async fn a_deadline_already_past_is_ignored() {
    let fake = fake_with_samples().await;
    let app = app_on_table(&fake, None, &[]);
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(600);
    let answer = handle(&app, &json!({"hosts": [MAPLE]}), "r", Some(past))
        .await
        .expect("answer");
    assert_eq!(answer.results[0].status, Status::Ok);
}

#[tokio::test]
async fn credentials_are_checked_when_due_only() {
    let s = Setup::new().await;
    let app = s.instance(&[("WARMUP_HOSTS", MAPLE)]);
    let first = as_json(&run(&app, json!({})).await);
    assert_eq!(first["results"][0]["credentials"], json!({"storage": "ok"}));
    assert_eq!(s.fake.credential_calls(), 1);

    // The next run: the copy is due, the check is not.
    app.clock.advance(Duration::from_secs(400));
    let second = as_json(&run(&app, json!({})).await);
    assert_eq!(second["results"][0]["status"], "ok");
    assert_eq!(second["results"][0]["credentials"], json!({}));
    assert_eq!((s.fake.runtime_calls(), s.fake.credential_calls()), (2, 1));

    // A run right after: nothing is due at all.
    let idle = as_json(&run(&app, json!({})).await);
    assert_eq!(idle, json!({"results": []}));
    assert_eq!(s.fake.runtime_calls(), 2);

    // An hour later the check is due again.
    app.clock.advance(Duration::from_secs(3600));
    let hourly = as_json(&run(&app, json!({})).await);
    assert_eq!(
        hourly["results"][0]["credentials"],
        json!({"storage": "ok"})
    );
    assert_eq!(s.fake.credential_calls(), 2);

    // A new configuration version makes it due at once.
    let (mut v1, _, _) = samples();
    v1["config_version"] = json!("v1-next");
    s.fake.put_runtime(MAPLE, v1);
    app.clock.advance(Duration::from_secs(400));
    let changed = as_json(&run(&app, json!({})).await);
    assert_eq!(changed["results"][0]["config_version_changed"], true);
    assert_eq!(
        changed["results"][0]["credentials"],
        json!({"storage": "ok"})
    );
    assert_eq!(s.fake.credential_calls(), 3);
    let check = get_item(&s.table(), "TENANT#maple", "CREDCHECK#storage")
        .await
        .unwrap();
    assert_eq!(attr_s(&check, "config_version"), "v1-next");
}

#[tokio::test]
async fn a_failed_check_is_repeated_at_every_run() {
    let s = Setup::new().await;
    let app = s.instance(&[("WARMUP_HOSTS", MAPLE), ("ORCHESTRATOR_MAX_ATTEMPTS", "1")]);
    s.fake.fail_next_credentials(1, 503, None);
    let first = as_json(&run(&app, json!({})).await);
    assert_eq!(
        first["results"][0]["credentials"],
        json!({"storage": "unavailable"})
    );
    app.clock.advance(Duration::from_secs(400));
    let second = as_json(&run(&app, json!({})).await);
    assert_eq!(
        second["results"][0]["credentials"],
        json!({"storage": "ok"})
    );
}

#[tokio::test]
async fn a_run_short_of_calls_says_how_many_hosts_it_left() {
    let s = Setup::new().await;
    let hosts = seed_many(&s.fake, 5).await;
    let capture = Capture::default();
    let _logs = capture.set_default(tracing::Level::WARN);
    // 0.01 calls a second over the run's 240 s: two calls.
    let listed = hosts.join(",");
    let app = s.instance(&[
        ("WARMUP_HOSTS", listed.as_str()),
        ("WARMUP_MAX_ORCHESTRATOR_RPS", "0.01"),
    ]);
    let answer = run(&app, json!({})).await;
    assert_eq!(answer.not_refreshed, 3);
    let ok: Vec<&str> = answer
        .results
        .iter()
        .filter(|r| r.status == Status::Ok)
        .map(|r| r.host.as_str())
        .collect();
    assert_eq!(ok.len(), 2, "{ok:?}");
    assert!(
        answer.results.iter().all(|r| r.credentials.is_empty()),
        "the lookups come first"
    );
    assert_eq!(s.fake.runtime_calls(), 2);
    assert_eq!(s.fake.credential_calls(), 0);
    let logs = capture.text();
    assert!(
        logs.contains("hosts could not be refreshed") && logs.contains("not_refreshed=3"),
        "{logs}"
    );
}
