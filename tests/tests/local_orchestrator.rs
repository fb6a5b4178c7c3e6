//! The local orchestrator (`local-orchestrator`, `make run-tenants`) in
//! process, over a copy of `samples/tenants`: the orchestrator contract from
//! its tenant files, read again on every request; the web function
//! orchestrated through it over the tenants' local folders, showing two
//! tenants; a tenant file's change after its TTL; and an outage served stale,
//! then recovered. The functions run on a manual clock: the TTLs pass by
//! moving it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use publisher::app::App;
use publisher::cache::OUTAGE_HOLD;
use publisher::clock::Clock;
use publisher::metrics::Counter;
use publisher_tests::harness::{get, router, settings};
use publisher_tests::lambda::workspace;
use publisher_tests::local_orchestrator::{LocalOrchestrator, Options};
use secrecy::SecretString;
use serde_json::{json, Value};

const TOKEN: &str = "local-test-token";
const SECONDARY: &str = "local-test-token-2";
const VERMONT: &str = "vermont.localhost";
const MAPLE: &str = "maple.localhost";

/// Copies `from` into `to`, following links (the sample folders link to
/// `samples/photos`).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a folder");
    for entry in std::fs::read_dir(from).expect("read a sample folder") {
        let path = entry.expect("an entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy a sample file");
        }
    }
}

/// A scratch copy of `samples/tenants`, as `make run-tenants` makes one.
fn samples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&workspace().join("samples/tenants"), dir.path());
    dir
}

fn file(dir: &Path, tenant: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(format!("{tenant}.json"))).expect("tenant file");
    serde_json::from_str(&text).expect("JSON tenant file")
}

/// Rewrites a tenant file through `change`.
fn edit(dir: &Path, tenant: &str, change: impl FnOnce(&mut Value)) {
    let mut value = file(dir, tenant);
    change(&mut value);
    let text = serde_json::to_string_pretty(&value).expect("JSON");
    std::fs::write(dir.join(format!("{tenant}.json")), text).expect("write the tenant file");
}

async fn start(dir: &Path, listen: SocketAddr, secondary: Option<&str>) -> LocalOrchestrator {
    LocalOrchestrator::start(Options {
        listen,
        tenants: dir.to_path_buf(),
        token: SecretString::from(TOKEN),
        secondary_token: secondary.map(SecretString::from),
    })
    .await
    .expect("the local orchestrator starts")
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Answer {
    status: u16,
    cache_control: Option<String>,
    json: Value,
}

async fn call(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the orchestrator answers");
    Answer {
        status: response.status().as_u16(),
        cache_control: response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        json: response.json().await.unwrap_or(Value::Null),
    }
}

async fn lookup(url: &str, token: &str, host: &str) -> Answer {
    let http = reqwest::Client::new();
    call(
        http.post(format!("{url}/v1/runtime/by-host"))
            .bearer_auth(token)
            .json(&json!({ "host": host })),
    )
    .await
}

async fn resolve(url: &str, tenant: Option<&str>, reference: &str) -> Answer {
    let http = reqwest::Client::new();
    let mut request = http
        .post(format!("{url}/v1/credentials/resolve"))
        .bearer_auth(TOKEN)
        .json(&json!({ "credentials_ref": reference }));
    if let Some(tenant) = tenant {
        request = request.header("x-tenant", tenant);
    }
    call(request).await
}

#[tokio::test]
async fn the_local_orchestrator_serves_its_files_by_the_contract() {
    let samples = samples();
    let dir = samples.path();
    let orchestrator = start(dir, any_port(), Some(SECONDARY)).await;
    let url = orchestrator.url();
    let vermont = file(dir, "vermont");
    let http = reqwest::Client::new();

    // Lookups: POST and GET, each host of a file, hosts normalized.
    let answer = lookup(&url, TOKEN, VERMONT).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json, vermont["runtime"]);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    assert_eq!(
        lookup(&url, TOKEN, "vermont.shibari.photo").await.json,
        vermont["runtime"]
    );
    let by_get = call(
        http.get(format!(
            "{url}/v1/runtime/by-host?host=MAPLE.localhost:8000"
        ))
        .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(by_get.status, 200);
    assert_eq!(by_get.json["tenant"], "maple");
    assert_eq!(by_get.json["schema_version"], 1);

    // Unknown hosts and paths, other methods, tokens.
    let unknown = lookup(&url, TOKEN, "nobody.localhost").await;
    assert_eq!(
        (unknown.status, unknown.json),
        (404, json!({"error": "not_found"}))
    );
    assert_eq!(lookup(&url, SECONDARY, VERMONT).await.status, 200);
    let refused = lookup(&url, "not-the-token", VERMONT).await;
    assert_eq!(
        (refused.status, refused.json),
        (403, json!({"error": "forbidden"}))
    );
    let put = call(
        http.put(format!("{url}/v1/runtime/by-host"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(put.status, 405);
    let other = call(http.get(format!("{url}/v1/other")).bearer_auth(TOKEN)).await;
    assert_eq!(other.status, 404);

    // Credentials: only for their tenant.
    let telegram = resolve(&url, Some("vermont"), "ref-telegram-vermont").await;
    assert_eq!(telegram.status, 200);
    assert_eq!(
        telegram.json,
        vermont["credentials"]["ref-telegram-vermont"]
    );
    assert_eq!(telegram.cache_control.as_deref(), Some("no-store"));
    assert_eq!(
        resolve(&url, Some("maple"), "ref-telegram-vermont")
            .await
            .status,
        404
    );
    assert_eq!(
        resolve(&url, Some("vermont"), "ref-unknown").await.status,
        404
    );
    assert_eq!(
        resolve(&url, None, "ref-telegram-vermont").await.status,
        400
    );

    // The files are read again before every request: an edit shows at the
    // next lookup, a broken file keeps its last good contents, a removed
    // file takes its hosts away, a new file adds its own.
    edit(dir, "vermont", |v| {
        v["runtime"]["config_version"] = json!("vermont-2");
    });
    assert_eq!(
        lookup(&url, TOKEN, VERMONT).await.json["config_version"],
        "vermont-2"
    );
    std::fs::write(dir.join("vermont.json"), "{\"hosts\": [").expect("write");
    let kept = lookup(&url, TOKEN, VERMONT).await;
    assert_eq!(
        (kept.status, &kept.json["config_version"]),
        (200, &json!("vermont-2"))
    );
    let mut birch = file(dir, "maple");
    birch["hosts"] = json!(["birch.localhost"]);
    birch["runtime"]["tenant"] = json!("birch");
    std::fs::remove_file(dir.join("maple.json")).expect("remove maple");
    std::fs::write(dir.join("birch.json"), birch.to_string()).expect("write birch");
    assert_eq!(lookup(&url, TOKEN, MAPLE).await.status, 404);
    assert_eq!(
        lookup(&url, TOKEN, "birch.localhost").await.json["tenant"],
        "birch"
    );
    orchestrator.shutdown_and_wait().await;
    assert!(http.get(&url).send().await.is_err(), "still listening");
}

/// The web function orchestrated by `orchestrator`, its tenants' storage in
/// the copy's folders, on a manual clock.
fn web_app(orchestrator: &LocalOrchestrator, dir: &Path) -> std::sync::Arc<App> {
    let url = orchestrator.url();
    let storage = dir.join("storage");
    let storage = storage.to_string_lossy();
    let settings = settings(&[
        ("ORCHESTRATOR_BASE_URL", url.as_str()),
        ("ORCHESTRATOR_SERVICE_TOKEN", TOKEN),
        ("LOCAL_TENANT_STORAGE_DIR", &storage),
    ]);
    std::sync::Arc::new(App::assemble(settings, None, Clock::manual_now()).expect("app starts"))
}

#[tokio::test]
async fn the_web_function_shows_two_tenants_and_a_change_after_its_ttl() {
    let samples = samples();
    let dir = samples.path();
    let orchestrator = start(dir, any_port(), None).await;
    let app = web_app(&orchestrator, dir);
    let web = router(&app);

    // Two tenants, each with its own features and photos.
    let vermont = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(vermont.status, StatusCode::OK, "{}", vermont.json);
    assert_eq!(
        (
            &vermont.json["publish_enabled"],
            &vermont.json["remove_enabled"]
        ),
        (&json!(true), &json!(true))
    );
    let maple = get(&web, MAPLE, "/api/config/features").await;
    assert_eq!(
        (
            &maple.json["publish_enabled"],
            &maple.json["remove_enabled"]
        ),
        (&json!(false), &json!(false))
    );
    let listed = |answer: &publisher_tests::harness::Answer| answer.json["filenames"].clone();
    let vermont_photos = get(&web, VERMONT, "/api/images/list").await;
    assert_eq!(
        listed(&vermont_photos),
        json!([
            "01-dawn.jpg",
            "02-dunes.jpg",
            "03-forest.jpg",
            "04-glacier.jpg",
            "05-harbor.jpg",
            "06-lantern.jpeg"
        ])
    );
    let maple_photos = get(&web, MAPLE, "/api/images/list").await;
    assert_eq!(
        listed(&maple_photos),
        json!([
            "07-meadow.jpg",
            "08-night-sky.jpg",
            "09-orchard.JPG",
            "10-ripples.jpg",
            "11-sunset-pier.jpg",
            "12-tide.png"
        ])
    );
    let sidecar = get(&web, VERMONT, "/api/images/01-dawn.jpg").await;
    assert_eq!(sidecar.json["has_sidecar"], true, "{}", sidecar.json);
    assert_eq!(
        get(&web, MAPLE, "/api/images/01-dawn.jpg").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&web, "nobody.localhost", "/api/config/features")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // A new config_version shows once the copy in memory is past its TTL.
    let ttl = file(dir, "vermont")["runtime"]["ttl_seconds"]
        .as_u64()
        .expect("ttl_seconds");
    edit(dir, "vermont", |v| {
        v["runtime"]["config_version"] = json!("vermont-2");
        v["runtime"]["config"]["features"]["publish_enabled"] = json!(false);
    });
    let before = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(before.json["publish_enabled"], true, "fresh until its TTL");
    app.clock.advance(Duration::from_secs(ttl + 1));
    let after = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(after.json["publish_enabled"], false, "{}", after.json);
}

#[tokio::test]
async fn an_orchestrator_outage_serves_the_last_copy_until_it_is_back() {
    let samples = samples();
    let dir = samples.path();
    let orchestrator = start(dir, any_port(), None).await;
    let addr = orchestrator.addr();
    let app = web_app(&orchestrator, dir);
    let web = router(&app);
    assert_eq!(
        get(&web, VERMONT, "/api/config/features").await.json["publish_enabled"],
        true
    );

    // Stopped: past the TTL, the last copy is served, stale.
    orchestrator.shutdown_and_wait().await;
    edit(dir, "vermont", |v| {
        v["runtime"]["config_version"] = json!("vermont-2");
        v["runtime"]["config"]["features"]["publish_enabled"] = json!(false);
    });
    app.clock.advance(Duration::from_secs(31));
    let stale = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.json["publish_enabled"], true);
    let photos = get(&web, VERMONT, "/api/images/list").await;
    assert_eq!(photos.json["count"], 6, "the tenant keeps working");
    // The first request tried the orchestrator; the second was held.
    assert_eq!(app.counters.get(Counter::RuntimeStaleServe), 2);

    // Started again on its address: the first lookup after the outage hold
    // gets the new file.
    let _restarted = start(dir, addr, None).await;
    app.clock.advance(OUTAGE_HOLD);
    let recovered = get(&web, VERMONT, "/api/config/features").await;
    assert_eq!(
        recovered.json["publish_enabled"], false,
        "{}",
        recovered.json
    );
    assert_eq!(app.counters.get(Counter::RuntimeStaleServe), 2);
}
