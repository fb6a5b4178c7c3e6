//! The fault matrix of `docs/faults.md`, asserted as one table: for every
//! dependency of the functions and every fault it can have (connection
//! refused, timeout, 429 with `Retry-After`, 500, a malformed body, a 50 MB
//! body, one byte a second), what the caller gets, how many requests reached
//! the failing service, and what is served stale or kept.
//!
//! Each row runs against its own fakes (DynamoDB: moto) with a `FaultProxy`
//! (SMTP: an `SmtpFault`) in place of the failing service. The clients get
//! time limits of three seconds (the orchestrator one, DynamoDB production's
//! divided by four)
//! through the constructors production passes its own limits to
//! (`App::assemble_within`, `Table::bounded`, `ORCHESTRATOR_TIMEOUT_SECONDS`),
//! time otherwise runs on each app's manual clock, and the rows run at once:
//! the matrix takes about as long as its slowest row (the OIDC client's
//! fixed 10 s limit).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::Router;
use futures::future::join_all;
use publisher::app::App;
use publisher::bounded::{self, Bound, DropboxLimits, Limits, TableLimits};
use publisher::clock::Clock;
use publisher::ledger::Ledger;
use publisher::metrics::Counter;
use publisher::table::Table;
use publisher_tests::fake_dropbox::FakeDropbox;
use publisher_tests::fake_oidc::{FakeOidc, CLIENT_ID, CLIENT_SECRET};
use publisher_tests::fake_openai::FakeOpenAi;
use publisher_tests::fake_orchestrator::{samples, FakeOrchestrator};
use publisher_tests::fake_telegram::FakeTelegram;
use publisher_tests::faults::{Fault, FaultProxy, SmtpFault};
use publisher_tests::harness::{get, settings, PRIMARY_TOKEN};
use publisher_tests::moto::Moto;
use serde_json::{json, Value};

const HOST: &str = "vermont.shibari.photo";
const TENANT: &str = "vermont";
/// A second tenant, never looked up before the fault.
const COLD_HOST: &str = "maple.shibari.photo";
const ROOT: &str = "/Photos/vermont/2025";
const IMAGE: &str = "dawn.jpg";
const DROPBOX_REFRESH: &str = "dbx-refresh-vermont-0123456789";
/// Each client's time limit per try: short, so that timeouts and trickles
/// end soon, and long enough that on a loaded machine a 50 MB answer is still
/// cut by its size limit, not by time.
const CALL_LIMIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dependency {
    Orchestrator,
    DynamoDb,
    /// Dropbox's API host: tokens and JSON calls (the listing).
    DropboxApi,
    /// Dropbox's content host: thumbnails, downloads, uploads.
    DropboxContent,
    OpenAi,
    Telegram,
    Smtp,
    Oidc,
}

use Dependency::*;
use Fault::*;

const DEPENDENCIES: [Dependency; 8] = [
    Orchestrator,
    DynamoDb,
    DropboxApi,
    DropboxContent,
    OpenAi,
    Telegram,
    Smtp,
    Oidc,
];

/// What one fault of one dependency came to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// What the caller got: the web function's status, or a publish run's.
    answer: String,
    /// Requests (SMTP: connections) that reached the failing service for
    /// one call; `None` when nothing listens.
    tries: Option<usize>,
    /// What was served stale, kept or lost.
    kept: String,
}

/// The matrix as `docs/faults.md` shows it: (dependency, fault, answer,
/// tries, kept).
const MATRIX: &[(Dependency, Fault, &str, Option<usize>, &str)] = &[
    (Orchestrator, Refused, "copy: 200, none: 503", None, STALE),
    (
        Orchestrator,
        Timeout,
        "copy: 200, none: 503",
        Some(3),
        STALE,
    ),
    (
        Orchestrator,
        RateLimited,
        "copy: 200, none: 503",
        Some(3),
        STALE,
    ),
    (
        Orchestrator,
        ServerError,
        "copy: 200, none: 503",
        Some(3),
        STALE,
    ),
    (
        Orchestrator,
        Malformed,
        "copy: 503, none: 503",
        Some(1),
        NOTHING,
    ),
    (
        Orchestrator,
        Oversized,
        "copy: 200, none: 503",
        Some(1),
        STALE,
    ),
    (
        Orchestrator,
        Trickle,
        "copy: 200, none: 503",
        Some(3),
        STALE,
    ),
    (DynamoDb, Refused, TABLE_DOWN, None, TABLE_SKIPPED),
    (DynamoDb, Timeout, TABLE_DOWN, Some(2), TABLE_SKIPPED),
    (DynamoDb, RateLimited, TABLE_DOWN, Some(3), TABLE_SKIPPED),
    (DynamoDb, ServerError, TABLE_DOWN, Some(3), TABLE_SKIPPED),
    (DynamoDb, Malformed, TABLE_DOWN, Some(1), TABLE_SKIPPED),
    (DynamoDb, Oversized, TABLE_DOWN, Some(3), TABLE_SKIPPED),
    (DynamoDb, Trickle, TABLE_DOWN, Some(2), TABLE_SKIPPED),
    (DropboxApi, Refused, "503", None, NOTHING),
    (DropboxApi, Timeout, "503", Some(3), NOTHING),
    (DropboxApi, RateLimited, "503", Some(3), NOTHING),
    (DropboxApi, ServerError, "503", Some(3), NOTHING),
    (DropboxApi, Malformed, "503", Some(1), NOTHING),
    (DropboxApi, Oversized, "503", Some(1), NOTHING),
    (DropboxApi, Trickle, "503", Some(3), NOTHING),
    (DropboxContent, Refused, "503", None, NOTHING),
    (DropboxContent, Timeout, "503", Some(3), NOTHING),
    (DropboxContent, RateLimited, "503", Some(3), NOTHING),
    (DropboxContent, ServerError, "503", Some(3), NOTHING),
    (
        DropboxContent,
        Malformed,
        "200",
        Some(1),
        "Dropbox's bytes passed on",
    ),
    (DropboxContent, Oversized, "503", Some(1), NOTHING),
    (DropboxContent, Trickle, "503", Some(3), NOTHING),
    (OpenAi, Refused, "published", None, UNCAPTIONED),
    (OpenAi, Timeout, "published", Some(4), UNCAPTIONED),
    (OpenAi, RateLimited, "published", Some(4), UNCAPTIONED),
    (OpenAi, ServerError, "published", Some(4), UNCAPTIONED),
    (OpenAi, Malformed, "published", Some(1), UNCAPTIONED),
    (OpenAi, Oversized, "published", Some(1), UNCAPTIONED),
    (OpenAi, Trickle, "published", Some(4), UNCAPTIONED),
    (Telegram, Refused, RETRIED, None, KEPT),
    (Telegram, Timeout, RETRIED, Some(1), KEPT),
    (Telegram, RateLimited, RETRIED, Some(3), KEPT),
    (Telegram, ServerError, RETRIED, Some(1), KEPT),
    (Telegram, Malformed, FAILED, Some(1), KEPT),
    (Telegram, Oversized, FAILED, Some(1), KEPT),
    (Telegram, Trickle, FAILED, Some(1), KEPT),
    (Smtp, Refused, RETRIED, None, KEPT),
    (Smtp, Timeout, RETRIED, Some(1), KEPT),
    (Smtp, RateLimited, RETRIED, Some(1), KEPT),
    (Smtp, ServerError, FAILED, Some(1), KEPT),
    (Smtp, Malformed, RETRIED, Some(1), KEPT),
    (Smtp, Oversized, RETRIED, Some(1), KEPT),
    (Smtp, Trickle, RETRIED, Some(1), KEPT),
    (Oidc, Refused, LOGIN_FAILED, None, NO_STATE),
    (Oidc, Timeout, LOGIN_FAILED, Some(1), NO_STATE),
    (Oidc, RateLimited, LOGIN_FAILED, Some(1), NO_STATE),
    (Oidc, ServerError, LOGIN_FAILED, Some(1), NO_STATE),
    (Oidc, Malformed, LOGIN_FAILED, Some(1), NO_STATE),
    (Oidc, Oversized, LOGIN_FAILED, Some(1), NO_STATE),
    (Oidc, Trickle, LOGIN_FAILED, Some(1), NO_STATE),
];

const STALE: &str = "stale copy served";
const NOTHING: &str = "nothing served";
/// A web request (config from the orchestrator), and a scheduled run,
/// whose event claim cannot be written.
const TABLE_DOWN: &str = "web: 200, publish: failed, Lambda retries";
const TABLE_SKIPPED: &str = "table skipped; image kept, nothing sent";
const UNCAPTIONED: &str = "sent without a caption, archived";
/// Every publisher failed, transiently: the handler fails the invocation,
/// and Lambda runs the event again.
const RETRIED: &str = "failed, Lambda retries";
/// Every publisher failed for good: the run answers it; the next scheduled
/// run tries again.
const FAILED: &str = "failed: Every publisher failed";
const KEPT: &str = "image kept, not recorded";
const LOGIN_FAILED: &str = "303 /?auth_error=callback_failed";
const NO_STATE: &str = "no login state issued";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_dependency_and_every_fault() {
    for dependency in DEPENDENCIES {
        for fault in Fault::ALL {
            let rows = MATRIX
                .iter()
                .filter(|row| row.0 == dependency && row.1 == fault)
                .count();
            assert_eq!(rows, 1, "{dependency:?} × {}", fault.name());
        }
    }
    let moto = Arc::new(Moto::start().await);
    let rows = MATRIX
        .iter()
        .enumerate()
        .map(|(n, &(dependency, fault, ..))| {
            let moto = moto.clone();
            async move { (n, outcome(dependency, fault, &moto, n).await) }
        });
    let observed = join_all(rows).await;
    let mut wrong = Vec::new();
    for (n, got) in &observed {
        let (dependency, fault, answer, tries, kept) = MATRIX[*n];
        let want = Outcome {
            answer: answer.to_string(),
            tries,
            kept: kept.to_string(),
        };
        if *got != want {
            wrong.push(format!(
                "{dependency:?} × {}: want {want:?}\n{:>24}got  {got:?}",
                fault.name(),
                ""
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        MATRIX.len(),
        wrong.join("\n")
    );
}

async fn outcome(dependency: Dependency, fault: Fault, moto: &Moto, n: usize) -> Outcome {
    match dependency {
        Orchestrator => orchestrator(fault).await,
        DynamoDb => dynamodb(fault, moto, n).await,
        DropboxApi => dropbox_api(fault).await,
        DropboxContent => dropbox_content(fault).await,
        OpenAi => openai(fault).await,
        Telegram => telegram(fault).await,
        Smtp => smtp(fault).await,
        Oidc => oidc(fault).await,
    }
}

/// A row's outcome through `proxy`: the requests it saw since its fault was
/// set (`None` when it refused them all). No client may have read an
/// oversized or trickling answer to its end.
fn through(proxy: &FaultProxy, answer: String, kept: &str) -> Outcome {
    assert_eq!(proxy.read_whole(), 0, "an answer was read to its end");
    Outcome {
        answer,
        tries: (proxy.fault() != Some(Refused)).then(|| proxy.faulted()),
        kept: kept.to_string(),
    }
}

// ------------------------------------------------------------------ world

/// The fakes a row runs against: the orchestrator serving the v2 sample as
/// `vermont` (and `maple`), Dropbox with one image, OpenAI and Telegram.
struct World {
    orchestrator: FakeOrchestrator,
    dropbox: FakeDropbox,
    openai: FakeOpenAi,
    telegram: FakeTelegram,
}

impl World {
    /// The v2 sample, after `edit`, for both tenants.
    async fn start(edit: impl FnOnce(&mut Value)) -> World {
        let orchestrator = FakeOrchestrator::start().await;
        let (_, mut envelope, _) = samples();
        edit(&mut envelope);
        orchestrator.seed_tenant(HOST, TENANT, &envelope);
        orchestrator.seed_tenant(COLD_HOST, "maple", &envelope);
        let dropbox = FakeDropbox::start().await;
        dropbox.add_refresh_token(DROPBOX_REFRESH);
        let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/photos/01-dawn.jpg");
        dropbox.put_file(
            &format!("{ROOT}/{IMAGE}"),
            std::fs::read(photo).expect("sample photo"),
        );
        World {
            orchestrator,
            dropbox,
            openai: FakeOpenAi::start().await,
            telegram: FakeTelegram::start().await,
        }
    }

    /// One instance on this world, with `overrides` in place of the
    /// services' addresses (a proxy instead of a fake).
    fn app(&self, overrides: &[(&str, String)], table: Option<Table>) -> Arc<App> {
        let mut vars: Vec<(&str, String)> = vec![
            ("ORCHESTRATOR_BASE_URL", self.orchestrator.base_url()),
            ("ORCHESTRATOR_SERVICE_TOKEN", PRIMARY_TOKEN.into()),
            ("ORCHESTRATOR_TIMEOUT_SECONDS", "1".into()),
            ("OPENAI_BASE_URL", self.openai.base_url()),
            ("TELEGRAM_API_URL", self.telegram.base_url()),
            ("AI_RATE_PER_MINUTE", "60000".into()),
        ];
        vars.extend(self.dropbox.vars());
        for (name, value) in overrides {
            vars.retain(|(n, _)| n != name);
            vars.push((name, value.clone()));
        }
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let app = App::assemble_within(settings(&vars), table, Clock::manual_now(), limits())
            .expect("app starts");
        Arc::new(app)
    }

    fn image_kept(&self) -> bool {
        self.dropbox.exists(&format!("{ROOT}/{IMAGE}"))
    }
}

/// Production's limits, with [`CALL_LIMIT`] for every call.
fn limits() -> Limits {
    let fast = |bound: Bound| Bound {
        time: CALL_LIMIT,
        ..bound
    };
    let production = Limits::PRODUCTION;
    Limits {
        dropbox: DropboxLimits {
            rpc: fast(production.dropbox.rpc),
            thumbnail: fast(production.dropbox.thumbnail),
            download: fast(production.dropbox.download),
        },
        openai: fast(production.openai),
        telegram: fast(production.telegram),
        smtp: CALL_LIMIT,
    }
}

fn no_fetlife(envelope: &mut Value) {
    envelope["config"]["email_server"] = Value::Null;
}

fn no_analysis(envelope: &mut Value) {
    envelope["config"]["features"]["analyze_caption_enabled"] = false.into();
}

fn auto_view(envelope: &mut Value) {
    envelope["config"]["features"]["auto_view_enabled"] = true.into();
}

/// One publish run for `vermont`: the summary's status, or the handler's
/// failure that makes Lambda retry the event.
async fn publish(app: &App, event: Value) -> String {
    match publish::handle(app, event, None, "fault-matrix").await {
        Ok(answer) => {
            let summary = &answer["results"][0];
            match summary["error"].as_str() {
                Some(error) => format!("{}: {error}", summary["status"].as_str().unwrap_or("?")),
                None => summary["status"].as_str().unwrap_or("?").to_string(),
            }
        }
        Err(publish::HandlerError::AllFailed(_)) => "failed, Lambda retries".into(),
        Err(error) => format!("refused: {error}"),
    }
}

fn web(app: &Arc<App>) -> Router {
    web::router(app.clone())
}

// ------------------------------------------------------------------- rows

/// A tenant with a copy past its freshness (within max-stale), and one
/// without any copy, while the orchestrator fails.
async fn orchestrator(fault: Fault) -> Outcome {
    let world = World::start(|_| {}).await;
    let proxy = FaultProxy::start("orchestrator", &world.orchestrator.base_url()).await;
    proxy.set_rate_limit_body(
        "application/json",
        json!({"error": "rate_limited"}).to_string(),
    );
    let app = world.app(&[("ORCHESTRATOR_BASE_URL", proxy.url())], None);
    let web = web(&app);
    assert_eq!(get(&web, HOST, "/api/config/features").await.status, 200);
    // Past the sample's 600 s TTL, within the hour of max-stale.
    app.clock.advance(Duration::from_secs(601));
    proxy.set(Some(fault)).await;
    let copy = get(&web, HOST, "/api/config/features").await.status;
    let stale = app.counters.get(Counter::RuntimeStaleServe) > 0;
    proxy.set(Some(fault)).await;
    let none = get(&web, COLD_HOST, "/api/config/features").await.status;
    through(
        &proxy,
        format!("copy: {}, none: {}", copy.as_u16(), none.as_u16()),
        if stale {
            "stale copy served"
        } else {
            "nothing served"
        },
    )
}

/// The table through a proxy, bounded like production's but four times
/// faster.
fn table_through(proxy: &FaultProxy, name: &str) -> Table {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(proxy.url())
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .build();
    let production = bounded::TABLE;
    let limits = TableLimits {
        connect: production.connect / 4,
        attempt: production.attempt / 4,
        operation: production.operation / 4,
        backoff: production.backoff / 4,
        ..production
    };
    Table::bounded(config, name, &limits)
}

/// A cold instance on a failing table: a web request, and a scheduled
/// publish run (whose event claim lives in the table).
async fn dynamodb(fault: Fault, moto: &Moto, n: usize) -> Outcome {
    let world = World::start(|e| {
        no_fetlife(e);
        no_analysis(e);
    })
    .await;
    let name = format!("fault-matrix-{n}");
    moto.create_table(&name).await;
    let proxy = FaultProxy::start("dynamodb", &moto.endpoint).await;
    proxy.set_rate_limit_body(
        "application/x-amz-json-1.0",
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput."
        })
        .to_string(),
    );
    let table = table_through(&proxy, &name);
    proxy.set(Some(fault)).await;
    let app = world.app(&[], Some(table.clone()));
    let status = get(&web(&app), HOST, "/api/config/features").await.status;
    let skipped = app.counters.get(Counter::RuntimeDynamoError) > 0;
    let run = publish(&app, json!({"host": HOST, "idempotency_key": "evt-1"})).await;
    // One call alone, to count its tries.
    proxy.set(Some(fault)).await;
    let one = Ledger::new(Some(table), app.clock.clone());
    assert!(one.is_posted(TENANT, &"0".repeat(64)).await.is_err());
    let kept = match (skipped, world.image_kept(), world.telegram.sent().len()) {
        (true, true, 0) => "table skipped; image kept, nothing sent",
        _ => "unexpected",
    };
    through(
        &proxy,
        format!("web: {}, publish: {run}", status.as_u16()),
        kept,
    )
}

/// The image listing (after the cached one ran out) while Dropbox's API
/// host fails.
async fn dropbox_api(fault: Fault) -> Outcome {
    let world = World::start(auto_view).await;
    let proxy = FaultProxy::start("dropbox api", &world.dropbox.api_url()).await;
    proxy.set_rate_limit_body("application/json", dropbox_rate_limit());
    let app = world.app(&[("DROPBOX_API_URL", proxy.url())], None);
    let web = web(&app);
    assert_eq!(get(&web, HOST, "/api/images/list").await.status, 200);
    // The listing's 30 s cache runs out; the access token does not.
    app.clock.advance(Duration::from_secs(31));
    proxy.set(Some(fault)).await;
    let answer = get(&web, HOST, "/api/images/list").await;
    through(
        &proxy,
        answer.status.as_u16().to_string(),
        if answer.json["count"] == 1 {
            "old listing served"
        } else {
            "nothing served"
        },
    )
}

fn dropbox_rate_limit() -> String {
    json!({
        "error_summary": "too_many_requests/...",
        "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 2}
    })
    .to_string()
}

/// A thumbnail while Dropbox's content host fails.
async fn dropbox_content(fault: Fault) -> Outcome {
    let world = World::start(auto_view).await;
    let proxy = FaultProxy::start("dropbox content", &world.dropbox.content_url()).await;
    proxy.set_rate_limit_body("application/json", dropbox_rate_limit());
    let app = world.app(&[("DROPBOX_CONTENT_URL", proxy.url())], None);
    proxy.set(Some(fault)).await;
    let path = format!("/api/images/{IMAGE}/thumbnail");
    let answer = get(&web(&app), HOST, &path).await;
    let kept = match answer.status.as_u16() {
        200 => "Dropbox's bytes passed on",
        _ => "nothing served",
    };
    through(&proxy, answer.status.as_u16().to_string(), kept)
}

/// A publish run with analysis on (Telegram publishing) while OpenAI fails.
async fn openai(fault: Fault) -> Outcome {
    let world = World::start(no_fetlife).await;
    let proxy = FaultProxy::start("openai", &world.openai.base_url()).await;
    proxy.set_rate_limit_body(
        "application/json",
        json!({"error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "code": "rate_limit_exceeded"
        }})
        .to_string(),
    );
    let app = world.app(&[("OPENAI_BASE_URL", proxy.url())], None);
    proxy.set(Some(fault)).await;
    let run = publish(&app, json!({"host": HOST})).await;
    let sent = world.telegram.sent();
    let kept = match (sent.as_slice(), world.image_kept()) {
        ([photo], false) if photo.caption.is_none() => "sent without a caption, archived",
        ([_], false) => "sent with a caption, archived",
        _ => "unexpected",
    };
    through(&proxy, run, kept)
}

/// A scheduled publish run with Telegram its only publisher.
async fn telegram(fault: Fault) -> Outcome {
    let world = World::start(|e| {
        no_fetlife(e);
        no_analysis(e);
    })
    .await;
    let proxy = FaultProxy::start("telegram", &world.telegram.base_url()).await;
    proxy.set_rate_limit_body(
        "application/json",
        json!({
            "ok": false,
            "error_code": 429,
            "description": "Too Many Requests: retry after 2",
            "parameters": {"retry_after": 2}
        })
        .to_string(),
    );
    let app = world.app(&[("TELEGRAM_API_URL", proxy.url())], None);
    proxy.set(Some(fault)).await;
    let run = publish(&app, json!({"host": HOST, "idempotency_key": "evt-1"})).await;
    let kept = if world.image_kept() {
        "image kept, not recorded"
    } else {
        "archived"
    };
    through(&proxy, run, kept)
}

/// A scheduled publish run with FetLife (by e-mail) its only publisher.
async fn smtp(fault: Fault) -> Outcome {
    let server = SmtpFault::start(fault).await;
    let world = World::start(|e| {
        no_analysis(e);
        let publishers = e["config"]["publishers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        e["config"]["publishers"] = publishers
            .into_iter()
            .filter(|p| p["type"] == "fetlife")
            .collect();
        e["config"]["email_server"]["host"] = "127.0.0.1".into();
        e["config"]["email_server"]["port"] = server.port.into();
    })
    .await;
    let app = world.app(&[], None);
    let run = publish(&app, json!({"host": HOST, "idempotency_key": "evt-1"})).await;
    let kept = if world.image_kept() {
        "image kept, not recorded"
    } else {
        "archived"
    };
    assert_eq!(server.read_whole(), 0, "a greeting was read to its end");
    Outcome {
        answer: run,
        tries: (fault != Refused).then(|| server.connections()),
        kept: kept.into(),
    }
}

/// An OIDC login started while the provider fails.
async fn oidc(fault: Fault) -> Outcome {
    let provider = FakeOidc::start().await;
    let proxy = FaultProxy::start("oidc provider", &provider.issuer()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_text = dir.path().to_string_lossy().into_owned();
    let issuer = proxy.url();
    let vars: Vec<(&str, &str)> = vec![
        ("STORAGE_PROVIDER", "local"),
        ("LOCAL_STORAGE_DIR", &dir_text),
        ("STORAGE_PATHS", r#"{"root": "/"}"#),
        (
            "WEB_SESSION_SECRET",
            "fault-matrix-session-secret-0123456789abcdef",
        ),
        ("AUTH0_DOMAIN", "publisher.eu.auth0.com"),
        ("AUTH0_ISSUER_URL", &issuer),
        ("AUTH0_CLIENT_ID", CLIENT_ID),
        ("AUTH0_CLIENT_SECRET", CLIENT_SECRET),
        (
            "AUTH0_CALLBACK_URL",
            "https://photos.example.com/auth/callback",
        ),
        ("ADMIN_LOGIN_EMAILS", "admin@example.com"),
    ];
    let app = Arc::new(App::new(settings(&vars)).expect("app"));
    proxy.set(Some(fault)).await;
    let answer = get(&web(&app), "photos.example.com", "/auth/login").await;
    let location = answer
        .headers
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or("");
    let state_issued = answer.headers.contains_key(SET_COOKIE);
    let kept = if state_issued {
        "login state issued"
    } else {
        "no login state issued"
    };
    through(
        &proxy,
        format!("{} {location}", answer.status.as_u16()),
        kept,
    )
}
