//! The three functions built and run as Lambda runs them, under `cargo lambda
//! watch`, invoked with the event files in `events/` against the fakes and a
//! real DynamoDB API (moto's server); the table is checked afterwards.

mod publish_world;

use std::time::Duration;

use publish_world::{World, HOST};
use publisher_tests::fake_orchestrator::samples;
use publisher_tests::lambda::{build_bin, workspace, Invocation, Watch};
use publisher_tests::moto::Moto;
use publisher_tests::tables::{attr_s, scan_all, Item};
use serde_json::{json, Value};

const MAPLE: &str = "maple.shibari.photo";
const TABLE: &str = "publisher-watch";

fn event(name: &str) -> Value {
    let path = workspace().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn item<'a>(items: &'a [Item], pk: &str, sk: &str) -> Option<&'a Item> {
    items
        .iter()
        .find(|i| attr_s(i, "pk") == pk && attr_s(i, "sk") == sk)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_answer_their_event_files_under_cargo_lambda_watch() {
    let world = World::start().await;
    world.put_samples(&["08-night-sky.jpg"]);
    let (v1, _, _) = samples();
    world.orchestrator.seed_tenant(MAPLE, "maple", &v1);
    let moto = Moto::start().await;
    let table = moto.create_table(TABLE).await;

    let binaries: Vec<(&str, std::path::PathBuf)> = ["warmup", "web", "publish"]
        .into_iter()
        .map(|bin| (bin, build_bin(bin)))
        .collect();
    let mut env = vec![
        ("ORCHESTRATOR_BASE_URL", world.orchestrator.base_url()),
        (
            "ORCHESTRATOR_SERVICE_TOKEN",
            publisher_tests::harness::PRIMARY_TOKEN.to_string(),
        ),
        ("PUBLISHER_TABLE", TABLE.to_string()),
        ("OPENAI_BASE_URL", world.openai.base_url()),
        ("TELEGRAM_API_URL", world.telegram.base_url()),
        (
            "SMTP_TLS_CA_FILE",
            world.smtp.ca_file().to_string_lossy().into_owned(),
        ),
        ("AI_RATE_PER_MINUTE", "60000".to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    env.extend(world.dropbox.vars());
    env.extend(moto.aws_env());
    let log = std::env::temp_dir().join(format!("publisher-watch-{}.log", std::process::id()));
    let mut watch = Watch::start(&env, &log).await;
    // Each function starts right before its first invocation: that
    // invocation's time is its cold start (process start, init, answer).
    let binary = |name: &str| {
        binaries
            .iter()
            .find(|(bin, _)| *bin == name)
            .map(|(_, path)| path.clone())
            .expect("built")
    };

    // warmup, with the hosts event: both tenants into the table.
    watch.start_function("warmup", &binary("warmup"));
    let warmup = watch.invoke("warmup", &event("warmup_event.json")).await;
    assert_eq!(warmup.status, 200, "{}\n{}", warmup.json, watch.log());
    assert_eq!(
        warmup.json,
        json!({"results": [
            {"host": HOST, "tenant": "vermont", "status": "ok", "config_version_changed": true,
             "credentials": {"storage": "ok", "openai": "ok", "telegram": "ok", "smtp": "ok"}},
            {"host": MAPLE, "tenant": "maple", "status": "ok", "config_version_changed": true,
             "credentials": {"storage": "ok"}},
        ]})
    );
    let items = scan_all(&table).await;
    for host in [HOST, MAPLE] {
        let runtime = item(&items, &format!("HOST#{host}"), "RUNTIME").expect("runtime item");
        let envelope: Value = serde_json::from_str(attr_s(runtime, "config")).unwrap();
        assert_eq!(envelope["app_type"], "publisher_v2");
    }
    for role in ["storage", "openai", "telegram", "smtp"] {
        let check = item(&items, "TENANT#vermont", &format!("CREDCHECK#{role}"))
            .unwrap_or_else(|| panic!("{role} check"));
        assert_eq!(check.get("ok").and_then(|v| v.as_bool().ok()), Some(&true));
    }
    let warmup_again = watch.invoke("warmup", &event("warmup_event.json")).await;
    assert_eq!(
        warmup_again.json["results"][0]["config_version_changed"],
        false
    );

    // Each function alone on an emulator, as each is alone in Lambda.
    drop(watch);
    let mut watch = Watch::start(&env, &log).await;

    // web, with the HTTP API event: served from the table, no lookup.
    world.orchestrator.reset_counters();
    watch.start_function("web", &binary("web"));
    let web = watch.invoke("web", &event("web_http_api.json")).await;
    assert_eq!(web.status, 200, "{}\n{}", web.json, watch.log());
    assert_eq!(web.json["statusCode"], 200, "{}", web.json);
    let body: Value = serde_json::from_str(web.json["body"].as_str().expect("body")).unwrap();
    assert_eq!(body["publish_enabled"], true);
    assert_eq!(body["analyze_caption_enabled"], true);
    assert_eq!(
        world.orchestrator.runtime_calls(),
        0,
        "the warmup's copy answered"
    );

    // web, through its HTTP path with a tenant Host header.
    let http = watch.get("web", MAPLE, "/api/config/features").await;
    assert_eq!(http.status, 200, "{}\n{}", http.json, watch.log());
    assert_eq!(http.json["publish_enabled"], false);
    assert_eq!(http.json["auto_view_enabled"], true);
    let unknown = watch
        .get("web", "nobody.shibari.photo", "/api/config/features")
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json, json!({"error": "Not found"}));
    let web_warm = watch.invoke("web", &event("web_http_api.json")).await;
    assert_eq!(web_warm.json["statusCode"], 200);

    // publish, with the dry-run event: a summary, nothing sent or moved.
    drop(watch);
    let mut watch = Watch::start(&env, &log).await;
    watch.start_function("publish", &binary("publish"));
    let publish = watch
        .invoke("publish", &event("publish_dry_run.json"))
        .await;
    assert_eq!(
        publish.status,
        200,
        "{}\n{}\n{}",
        publish.json,
        watch.function_states(),
        watch.log()
    );
    let summary = &publish.json["results"][0];
    assert_eq!(publish.json["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(summary["host"], HOST);
    assert_eq!(summary["tenant"], "vermont");
    assert_eq!(summary["status"], "published", "{summary:#}");
    assert_eq!(summary["image"], "08-night-sky.jpg");
    assert_eq!(summary["archived"], false);
    for platform in ["telegram", "email"] {
        assert_eq!(summary["results"][platform]["success"], true, "{platform}");
    }
    assert_eq!(world.telegram.requests(), 0);
    assert!(world.smtp.messages().is_empty());
    assert_eq!(world.images_in_root(), ["08-night-sky.jpg"]);
    let publish_warm = watch
        .invoke("publish", &event("publish_dry_run.json"))
        .await;
    assert_eq!(publish_warm.json["results"][0]["status"], "published");

    // Afterwards: the table holds configuration and checks, and no publish
    // state (a dry run records nothing).
    let items = scan_all(&table).await;
    assert!(items.iter().all(|i| {
        let sk = attr_s(i, "sk");
        ["RUNTIME", "LEASE", "NOTFOUND"].contains(&sk) || sk.starts_with("CREDCHECK#")
    }));

    let report = |name: &str, cold: &Invocation, warm: &Invocation| {
        println!(
            "{name}: cold start to first answer {} ms (debug build, under cargo lambda watch), next invocation {} ms",
            ms(cold.elapsed),
            ms(warm.elapsed)
        );
    };
    report("warmup", &warmup, &warmup_again);
    report("web", &web, &web_warm);
    report("publish", &publish, &publish_warm);
    drop(watch);
    let _ = std::fs::remove_file(log);
}
