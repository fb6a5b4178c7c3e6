//! The three functions under `cargo lambda watch`.
//!
//! First the README's path as written: `make watch` on its embedded default
//! and each `make invoke-*` against it, then `make watch` on `.env.example`
//! copied as a `.env`. (`make watch TENANTS=1` against `make run-tenants` is
//! in `local_run.rs`.) Then the functions built and run as Lambda runs
//! them, invoked with the event files in `events/` against the fakes and a
//! real DynamoDB API (moto's server); the table is checked afterwards.

mod publish_world;

use std::process::Output;
use std::time::{Duration, Instant};

use publish_world::{World, HOST};
use publisher_tests::fake_orchestrator::samples;
use publisher_tests::lambda::{
    answered, build_bin, build_functions, login, make, printed, workspace, Invocation, MakeRun,
    Watch,
};
use publisher_tests::moto::{free_port, Moto};
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

/// `make invoke-<function>` against the emulator on `port`: the command's
/// output and how long it took.
fn invoke(function: &str, port: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = make(&[&format!("invoke-{function}"), port]);
    (out, started.elapsed())
}

/// The features the web function answers through `make invoke-web`: the
/// HTTP API response, its body parsed.
fn features(answer: &Value) -> Value {
    assert_eq!(answer["statusCode"], 200, "{answer}");
    serde_json::from_str(answer["body"].as_str().expect("a body")).expect("JSON features")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_watch_and_each_make_invoke_answer_as_the_readme_says() {
    build_functions();
    let scratch = tempfile::tempdir().expect("temp dir");
    let photos = scratch.path().join("photos");
    let port = free_port();
    let port_var = format!("WATCH_PORT={port}");
    let log = scratch.path().join("watch.log");
    // `WATCH_ENV=`: the embedded default even where a developer has a .env.
    let mut watch = MakeRun::start(
        &[
            "watch",
            &port_var,
            "WATCH_ENV=",
            &format!("WATCH_DIR={}", photos.display()),
        ],
        &log,
    );
    watch.wait_for_port(port).await;
    let password = printed(&watch.output(), "Admin password:");
    let emulator = format!("http://127.0.0.1:{port}/lambda-url/web");

    // web: the sample event, GET /api/config/features.
    let (out, web_cold) = invoke("web", &port_var);
    let web_features = features(&answered(&out, &watch.output()));
    assert_eq!(
        web_features,
        json!({"analyze_caption_enabled": false, "auth_mode": "password", "auto_view_enabled": true,
               "keep_enabled": true, "publish_enabled": true, "remove_enabled": true})
    );
    let (_, web_warm) = invoke("web", &port_var);

    // The README's curl, and the printed password, through the HTTP path.
    let http: Value = reqwest::Client::new()
        .get(format!("{emulator}/api/config/features"))
        .header("host", "publisher.localhost")
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(http, web_features);
    assert_eq!(login(&emulator, "publisher.localhost", "wrong").await, 401);
    assert_eq!(
        login(&emulator, "publisher.localhost", &password).await,
        200
    );

    // publish: a dry run, a synthetic success, nothing moved.
    let (out, publish_cold) = invoke("publish", &port_var);
    let publish = answered(&out, &watch.output());
    let summary = &publish["results"][0];
    assert_eq!(summary["host"], "vermont.shibari.photo", "{publish}");
    assert_eq!(summary["tenant"], "default");
    assert_eq!(summary["status"], "published", "{publish}");
    assert_eq!(summary["results"]["telegram"]["success"], true);
    assert_eq!(summary["archived"], false);
    let image = summary["image"].as_str().expect("an image");
    assert!(photos.join(image).is_file(), "{image} moved");
    let (_, publish_warm) = invoke("publish", &port_var);

    // warmup: standalone has no orchestrator; the answer says where to get one.
    let (out, _) = invoke("warmup", &port_var);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("the warmup needs the orchestrator (ORCHESTRATOR_BASE_URL is not set)"),
        "{said}"
    );
    assert!(said.contains("make run-tenants"), "{said}");
    drop(watch);

    // .env.example, copied as it is, is read by cargo lambda and works.
    let env_file = scratch.path().join("env");
    std::fs::copy(workspace().join(".env.example"), &env_file).expect("copy .env.example");
    let port = free_port();
    let port_var = format!("WATCH_PORT={port}");
    let mut watch = MakeRun::start(
        &[
            "watch",
            &port_var,
            &format!("WATCH_ENV={}", env_file.display()),
        ],
        &log,
    );
    watch.wait_for_port(port).await;
    let emulator = format!("http://127.0.0.1:{port}/lambda-url/web");
    let (out, _) = invoke("web", &port_var);
    assert_eq!(features(&answered(&out, &watch.output())), web_features);
    assert_eq!(
        login(&emulator, "publisher.localhost", "change-me-please").await,
        200
    );
    let (out, _) = invoke("publish", &port_var);
    let publish = answered(&out, &watch.output());
    assert_eq!(publish["results"][0]["status"], "published", "{publish}");
    drop(watch);

    for (name, cold, warm) in [
        ("web", web_cold, web_warm),
        ("publish", publish_cold, publish_warm),
    ] {
        println!(
            "make invoke-{name}: first {} ms (the function's start under cargo lambda watch, debug build), next {} ms",
            cold.as_millis(),
            warm.as_millis()
        );
    }
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
