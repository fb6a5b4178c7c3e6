//! The README's local commands as written, each run through `make` on
//! ports of its own: `make run` (standalone over the sample photos), and
//! `make run-tenants TABLE=1` (the local orchestrator, moto's DynamoDB, the
//! web function orchestrated against them) followed by `make watch
//! TENANTS=1 TABLE=1` and each `make invoke-*` against those tenants.
//! (`make watch` on its embedded default is in `lambda_watch.rs`.)

use std::path::Path;

use publisher_tests::lambda::{answered, build_functions, login, make, printed, MakeRun};
use publisher_tests::moto::{free_port, table_at};
use publisher_tests::tables::{attr_s, scan_all};
use serde_json::{json, Value};

/// `GET path` with `Host: host` on 127.0.0.1:`port` (what a browser sends
/// for `http://<host>:<port>/`: `*.localhost` is the loopback address).
async fn get(port: u16, host: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .send()
        .await
        .expect("the web function answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn images(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a photo folder")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| !n.ends_with(".txt"))
        .filter(|n| dir.join(n).is_file())
        .collect();
    names.sort();
    names
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_serves_the_sample_photos_with_the_printed_password() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let photos = scratch.path().join("photos");
    let port = free_port();
    let mut run = MakeRun::start(
        &[
            "run",
            &format!("RUN_PORT={port}"),
            &format!("RUN_DIR={}", photos.display()),
        ],
        &scratch.path().join("run.log"),
    );
    run.wait_for_port(port).await;
    let banner = run.output();
    assert!(
        banner.contains(&format!("http://publisher.localhost:{port}/")),
        "{banner}"
    );
    let (status, features) = get(port, "publisher.localhost", "/api/config/features").await;
    assert_eq!(status, 200);
    assert_eq!(
        features,
        json!({"analyze_caption_enabled": false, "auth_mode": "password", "auto_view_enabled": true,
               "keep_enabled": true, "publish_enabled": false, "remove_enabled": true})
    );
    let (_, listed) = get(port, "publisher.localhost", "/api/images/list").await;
    assert_eq!(listed["count"], 12);
    assert_eq!(
        images(&photos).len(),
        12,
        "a scratch copy of samples/photos"
    );
    let password = printed(&banner, "Admin password:");
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(login(&base, "publisher.localhost", "wrong").await, 401);
    assert_eq!(login(&base, "publisher.localhost", &password).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_tenants_shows_two_tenants_and_make_invoke_warmup_fills_its_table() {
    build_functions();
    let scratch = tempfile::tempdir().expect("temp dir");
    let tenants_dir = scratch.path().join("run-tenants");
    let (web_port, orchestrator_port, dynamodb_port, watch_port) =
        (free_port(), free_port(), free_port(), free_port());
    let vars = [
        "TABLE=1".to_string(),
        format!("RUN_PORT={web_port}"),
        format!("ORCHESTRATOR_PORT={orchestrator_port}"),
        format!("DYNAMODB_PORT={dynamodb_port}"),
        format!("WATCH_PORT={watch_port}"),
        format!("TENANTS_DIR={}", tenants_dir.display()),
        format!(
            "WATCH_DIR={}",
            scratch.path().join("watch-photos").display()
        ),
    ];
    let with = |target: &'static str| -> Vec<String> {
        std::iter::once(target.to_string())
            .chain(vars.iter().cloned())
            .collect()
    };

    let run_tenants = with("run-tenants");
    let mut tenants = MakeRun::start(&args(&run_tenants), &scratch.path().join("tenants.log"));
    tenants.wait_for_port(web_port).await;
    let banner = tenants.output();
    for tenant in ["vermont", "maple"] {
        let url = format!("http://{tenant}.localhost:{web_port}/");
        assert!(banner.contains(&url), "{url} not printed:\n{banner}");
    }

    // Two tenants, each with its own features and photos.
    let (status, vermont) = get(web_port, "vermont.localhost", "/api/config/features").await;
    assert_eq!(status, 200, "{vermont}\n{}", tenants.output());
    let (_, maple) = get(web_port, "maple.localhost", "/api/config/features").await;
    assert_eq!(
        (
            vermont["publish_enabled"].clone(),
            maple["publish_enabled"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(
        (
            vermont["remove_enabled"].clone(),
            maple["remove_enabled"].clone()
        ),
        (json!(true), json!(false))
    );
    let (_, vermont_list) = get(web_port, "vermont.localhost", "/api/images/list").await;
    let (_, maple_list) = get(web_port, "maple.localhost", "/api/images/list").await;
    assert_eq!(vermont_list["filenames"][0], "01-dawn.jpg");
    assert_eq!(maple_list["filenames"][0], "07-meadow.jpg");
    assert_eq!(
        (vermont_list["count"].clone(), maple_list["count"].clone()),
        (json!(6), json!(6))
    );
    let (status, _) = get(web_port, "nobody.localhost", "/api/config/features").await;
    assert_eq!(status, 404);
    let password = printed(&banner, "Admin password:");
    let base = format!("http://127.0.0.1:{web_port}");
    assert_eq!(login(&base, "maple.localhost", &password).await, 200);
    // The orchestrator logs each request.
    let log = tenants.output();
    assert!(
        log.contains("POST /v1/runtime/by-host host=vermont.localhost token=primary -> 200"),
        "{log}"
    );
    assert!(
        log.contains("host=nobody.localhost token=primary -> 404"),
        "{log}"
    );

    // The emulator against the same tenants; the warmup fills the table.
    let watch_args = with("watch");
    let mut watch_args = args(&watch_args);
    watch_args.push("TENANTS=1");
    let mut watch = MakeRun::start(&watch_args, &scratch.path().join("watch.log"));
    watch.wait_for_port(watch_port).await;
    let warmup = answered(&make(&args(&with("invoke-warmup"))), &watch.output());
    let results = warmup["results"].as_array().expect("results");
    let result = |host: &str| {
        results
            .iter()
            .find(|r| r["host"] == host)
            .unwrap_or_else(|| panic!("{host} not warmed: {warmup}"))
    };
    assert_eq!(
        result("vermont.shibari.photo"),
        &json!({"host": "vermont.shibari.photo", "tenant": "vermont", "status": "ok",
                "config_version_changed": true,
                "credentials": {"openai": "ok", "smtp": "ok", "telegram": "ok"}})
    );
    assert_eq!(result("maple.shibari.photo")["status"], "ok");
    // The hosts the web function looked up are in the table: warmed too.
    assert_eq!(result("vermont.localhost")["status"], "ok");
    assert_eq!(result("maple.localhost")["status"], "ok");
    let items = scan_all(&table_at(
        &format!("http://127.0.0.1:{dynamodb_port}"),
        "publisher-local",
    ))
    .await;
    let has = |pk: &str, sk: &str| {
        items
            .iter()
            .any(|i| attr_s(i, "pk") == pk && attr_s(i, "sk") == sk)
    };
    for host in [
        "vermont.shibari.photo",
        "maple.shibari.photo",
        "vermont.localhost",
    ] {
        assert!(has(&format!("HOST#{host}"), "RUNTIME"), "{host}: {items:?}");
    }
    assert!(has("TENANT#vermont", "CREDCHECK#telegram"));

    // web and publish on the sample events (vermont.shibari.photo): the web
    // function is served the warmup's copy from the table, no lookup.
    let lookups = |log: &str| log.matches("host=vermont.shibari.photo").count();
    let before = lookups(&tenants.output());
    let web = answered(&make(&args(&with("invoke-web"))), &watch.output());
    let body: Value = serde_json::from_str(web["body"].as_str().expect("a body")).expect("JSON");
    assert_eq!(body["publish_enabled"], true, "{web}");
    assert_eq!(
        body["auth_mode"], "password",
        "the login of make watch: {web}"
    );
    assert!(watch.output().contains("Admin password:"));
    assert_eq!(lookups(&tenants.output()), before, "served from the table");
    let publish = answered(&make(&args(&with("invoke-publish"))), &watch.output());
    let summary = &publish["results"][0];
    assert_eq!(summary["tenant"], "vermont", "{publish}");
    assert_eq!(summary["status"], "published", "{publish}");
    assert_eq!(summary["results"]["telegram"]["success"], true);
    assert_eq!(summary["results"]["email"]["success"], true);
    assert_eq!(
        images(&tenants_dir.join("storage/vermont/photos")).len(),
        6,
        "a dry run moves nothing"
    );
    drop(watch);

    // Stopped, the orchestrator says so; the web function keeps serving.
    let tenants_var = format!("TENANTS_DIR={}", tenants_dir.display());
    let stopped = make(&["orchestrator-stop", &tenants_var]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", orchestrator_port)).is_err(),
        "the orchestrator still listens"
    );
    let (status, _) = get(web_port, "vermont.localhost", "/api/config/features").await;
    assert_eq!(status, 200);

    // Started again with `make orchestrator`, it answers the web function.
    let mut again = MakeRun::start(
        &[
            "orchestrator",
            &format!("ORCHESTRATOR_PORT={orchestrator_port}"),
            &tenants_var,
        ],
        &scratch.path().join("orchestrator.log"),
    );
    again.wait_for_port(orchestrator_port).await;
    let (status, _) = get(web_port, "birch.localhost", "/api/config/features").await;
    assert_eq!(status, 404);
    assert!(
        again
            .output()
            .contains("host=birch.localhost token=primary -> 404"),
        "{}",
        again.output()
    );
}
