//! `make soak`: the release web binary on loopback under a steady mixed
//! load for `SOAK_SECONDS` (600), against the fake orchestrator and fake
//! Dropbox of this crate and moto's DynamoDB, with outages:
//!
//! - the orchestrator refuses every connection for 20 s every 2 minutes
//!   (from 60 s in);
//! - DynamoDB refuses every connection once, for 30 s (from 40 % of the
//!   run);
//! - one tenant's Dropbox credential is rotated at half time (a new refresh
//!   token and configuration version; the old token is revoked 90 s later).
//!
//! 50 tenants, each with a copy of its configuration from the warm-up, so
//! each stays inside max-stale throughout. It prints the requests, the
//! answers by status per phase, p50 and p99 latency per phase, and the web
//! process's RSS; it fails (exit 1) on a 5xx, an RSS growth of 5 MB or
//! more from the end of the warm-up, or a panic in the web process's output.
//!
//! `WEB_BIN` is the binary to run (`target/release/web`), `SOAK_RATE` the
//! requests per second (50), `PUBLISHER_VENV` where moto lives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::{ImageFormat, Rgb, RgbImage};
use publisher_tests::fake_dropbox::FakeDropbox;
use publisher_tests::fake_orchestrator::{credentials_for, samples, FakeOrchestrator};
use publisher_tests::faults::{Fault, FaultProxy};
use publisher_tests::harness::PRIMARY_TOKEN;
use publisher_tests::lambda::workspace;
use publisher_tests::moto::{free_port, Moto};
use serde_json::{json, Value};

const TENANTS: usize = 50;
const IMAGES: [&str; 3] = ["dawn.jpg", "dunes.jpg", "tide.png"];
/// The tenants' runtime TTL: copies go stale within each outage.
const TTL_SECONDS: u64 = 30;
const ORCHESTRATOR_DOWN: Duration = Duration::from_secs(20);
const ORCHESTRATOR_EVERY: Duration = Duration::from_secs(120);
const ORCHESTRATOR_FIRST: Duration = Duration::from_secs(60);
const TABLE_DOWN: Duration = Duration::from_secs(30);
/// The tenant whose Dropbox credential is rotated.
const ROTATED: usize = 7;
const REVOKE_AFTER: Duration = Duration::from_secs(90);
const MAX_RSS_GROWTH_KB: u64 = 5 * 1024;
/// How often the web process's RSS is sampled, to tell growth that levels
/// off from growth that goes on.
const RSS_EVERY: Duration = Duration::from_secs(30);

fn host(n: usize) -> String {
    format!("t{n:02}.shibari.photo")
}

fn tenant(n: usize) -> String {
    format!("t{n:02}")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What is down at `at` seconds into the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Steady,
    OrchestratorDown,
    TableDown,
    BothDown,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Steady => "steady",
            Phase::OrchestratorDown => "orchestrator down",
            Phase::TableDown => "table down",
            Phase::BothDown => "both down",
        }
    }
}

/// When each outage happens.
struct Schedule {
    duration: Duration,
    table_from: Duration,
}

impl Schedule {
    fn new(duration: Duration) -> Schedule {
        Schedule {
            duration,
            table_from: duration.mul_f64(0.4),
        }
    }

    fn orchestrator_down(&self, at: Duration) -> bool {
        at >= ORCHESTRATOR_FIRST
            && (at - ORCHESTRATOR_FIRST).as_secs() % ORCHESTRATOR_EVERY.as_secs()
                < ORCHESTRATOR_DOWN.as_secs()
    }

    fn table_down(&self, at: Duration) -> bool {
        at >= self.table_from && at < self.table_from + TABLE_DOWN
    }

    fn phase(&self, at: Duration) -> Phase {
        match (self.orchestrator_down(at), self.table_down(at)) {
            (false, false) => Phase::Steady,
            (true, false) => Phase::OrchestratorDown,
            (false, true) => Phase::TableDown,
            (true, true) => Phase::BothDown,
        }
    }

    fn rotate_at(&self) -> Duration {
        self.duration / 2
    }
}

/// One request's record.
struct Record {
    phase: Phase,
    tenant: usize,
    status: u16,
    latency: Duration,
}

/// The web process, stopped by its PID on drop.
struct Web {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Web {
    fn rss(&self) -> Rss {
        Rss::of(self.child.id())
    }
}

/// The resident set of a process in kB (0 when it cannot be read): in all,
/// and the part of it that is heap and stacks rather than the binary's and
/// libraries' pages, which grow as code runs for the first time.
#[derive(Clone, Copy)]
struct Rss {
    total: u64,
    anon: u64,
}

impl Rss {
    fn of(pid: u32) -> Rss {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
                .unwrap_or(0)
        };
        Rss {
            total: field("VmRSS:"),
            anon: field("RssAnon:"),
        }
    }
}

/// What the conductor switches.
struct Conductor {
    orchestrator: FakeOrchestrator,
    orchestrator_proxy: Arc<FaultProxy>,
    dropbox: FakeDropbox,
    table: Arc<FaultProxy>,
    pid: u32,
}

/// Brings the outages and the rotation about as `schedule` says, until its
/// end; answers the RSS samples it took.
async fn conduct(c: Conductor, schedule: Schedule, started: Instant) -> Vec<String> {
    let (mut orchestrator_down, mut table_down) = (false, false);
    let (mut rotated, mut revoked) = (false, false);
    let old_refresh = storage_refresh_token(ROTATED);
    let mut next_sample = RSS_EVERY;
    let mut samples = Vec::new();
    let say = |at: Duration, what: String| println!("{:>5} s: {what}", at.as_secs());
    while started.elapsed() < schedule.duration {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let at = started.elapsed();
        let down = schedule.orchestrator_down(at);
        if down != orchestrator_down {
            c.orchestrator_proxy
                .set(down.then_some(Fault::Refused))
                .await;
            orchestrator_down = down;
            say(
                at,
                format!("orchestrator {}", if down { "down" } else { "back" }),
            );
        }
        let down = schedule.table_down(at);
        if down != table_down {
            c.table.set(down.then_some(Fault::Refused)).await;
            table_down = down;
            say(
                at,
                format!("DynamoDB {}", if down { "down" } else { "back" }),
            );
        }
        if !rotated && at >= schedule.rotate_at() {
            rotate(&c.orchestrator, &c.dropbox);
            rotated = true;
            say(
                at,
                format!("{} rotated its Dropbox credential", tenant(ROTATED)),
            );
        }
        if rotated && !revoked && at >= schedule.rotate_at() + REVOKE_AFTER {
            c.dropbox.revoke_refresh_token(&old_refresh);
            revoked = true;
            say(
                at,
                format!("{}'s old refresh token revoked", tenant(ROTATED)),
            );
        }
        if at >= next_sample {
            samples.push(format!(
                "{}s {} kB",
                next_sample.as_secs(),
                Rss::of(c.pid).total
            ));
            next_sample += RSS_EVERY;
        }
    }
    samples
}

/// The refresh token of tenant `n`'s storage credential, as seeded.
fn storage_refresh_token(n: usize) -> String {
    credentials_for(&tenant(n))
        .into_iter()
        .find(|(cref, _)| cref.starts_with("ref-storage-"))
        .and_then(|(_, payload)| payload["refresh_token"].as_str().map(str::to_string))
        .expect("a storage credential")
}

/// A small JPEG or PNG, different per tenant and image.
fn image_bytes(n: usize, i: usize, format: ImageFormat) -> Vec<u8> {
    let seed = (n * 7 + i * 13) as u8;
    let image = RgbImage::from_fn(96, 64, |x, y| Rgb([x as u8 ^ seed, y as u8, seed]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn envelope(n: usize, version: &str) -> Value {
    let (_, mut envelope, _) = samples();
    envelope["config_version"] = version.into();
    envelope["ttl_seconds"] = TTL_SECONDS.into();
    envelope["config"]["features"]["auto_view_enabled"] = true.into();
    envelope["config"]["storage"]["paths"]["root"] = format!("/Photos/{}", tenant(n)).into();
    envelope["config"]["storage"]["paths"]["archive"] = "archive".into();
    envelope
}

/// The path of the `k`-th request of a tenant: the routes a browser uses.
fn route(k: u64) -> String {
    let image = IMAGES[(k / 7) as usize % IMAGES.len()];
    match k % 20 {
        0..=5 => "/api/config/features".into(),
        6..=10 => "/api/images/list".into(),
        11..=14 => format!("/api/images/{image}"),
        15..=17 => format!("/api/images/{image}/thumbnail?size=w256h256"),
        18 => "/api/config/publishers".into(),
        _ => "/health/live".into(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> ExitCode {
    let duration = Duration::from_secs(env_number("SOAK_SECONDS", 600));
    let rate = env_number("SOAK_RATE", 50).max(1);
    let web_bin = std::env::var_os("WEB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/web"));
    assert!(
        web_bin.exists(),
        "{} (build it: cargo build --release -p web)",
        web_bin.display()
    );

    // The services and their outage switches.
    let moto = Moto::start().await;
    moto.create_table("soak").await;
    let table = FaultProxy::start("dynamodb", &moto.endpoint).await;
    let orchestrator = FakeOrchestrator::start().await;
    let orchestrator_proxy = FaultProxy::start("orchestrator", &orchestrator.base_url()).await;
    let dropbox = FakeDropbox::start().await;
    for n in 0..TENANTS {
        orchestrator.seed_tenant(&host(n), &tenant(n), &envelope(n, "v1"));
        dropbox.add_refresh_token(&storage_refresh_token(n));
        for (i, name) in IMAGES.iter().enumerate() {
            let format = if name.ends_with(".png") {
                ImageFormat::Png
            } else {
                ImageFormat::Jpeg
            };
            dropbox.put_file(
                &format!("/Photos/{}/{name}", tenant(n)),
                image_bytes(n, i, format),
            );
        }
        dropbox.put_file(
            &format!("/Photos/{}/dawn.txt", tenant(n)),
            "a soft dawn\n\n# ---\n# caption: Dawn.\n",
        );
    }

    // The web function, as a process.
    let port = free_port();
    let log = std::env::temp_dir().join(format!("publisher-soak-{}.log", std::process::id()));
    let mut env: Vec<(String, String)> = vec![
        ("PORT".into(), port.to_string()),
        ("ORCHESTRATOR_BASE_URL".into(), orchestrator_proxy.url()),
        ("ORCHESTRATOR_SERVICE_TOKEN".into(), PRIMARY_TOKEN.into()),
        ("PUBLISHER_TABLE".into(), "soak".into()),
        ("AWS_ENDPOINT_URL_DYNAMODB".into(), table.url()),
        ("AWS_REGION".into(), "eu-central-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    env.extend(dropbox.vars().into_iter().map(|(k, v)| (k.to_string(), v)));
    let output = std::fs::File::create(&log).expect("log file");
    let child = Command::new(&web_bin)
        .envs(env)
        .stdout(Stdio::from(output.try_clone().expect("log file")))
        .stderr(Stdio::from(output))
        .spawn()
        .expect("the web binary starts");
    let web = Web { child, port, log };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{}", web.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the web process did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_launch = web.rss().total;

    // Warm-up: every tenant once on every route, so each has a copy.
    for n in 0..TENANTS {
        for k in 0..20 {
            let answer = http
                .get(format!("{base}{}", route(k)))
                .header("host", host(n))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            assert_eq!(answer, 200, "warm-up {} {}", host(n), route(k));
        }
    }
    let rss_start = web.rss();
    println!(
        "soak: {} s at {rate} requests/s over {TENANTS} tenants; web RSS {rss_launch} kB at launch, {} kB after the warm-up",
        duration.as_secs(),
        rss_start.total
    );

    let records = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    // The outages, the rotation and the RSS samples run beside the load, so
    // that switching a proxy never holds a request back.
    let conductor = tokio::spawn(conduct(
        Conductor {
            orchestrator: orchestrator.clone(),
            orchestrator_proxy: Arc::new(orchestrator_proxy),
            dropbox: dropbox.clone(),
            table: Arc::new(table),
            pid: web.child.id(),
        },
        Schedule::new(duration),
        started,
    ));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent: u64 = 0;
    let mut requests = Vec::new();
    while started.elapsed() < duration {
        tick.tick().await;
        let at = started.elapsed();
        let n = (sent as usize) % TENANTS;
        let path = route(sent / TENANTS as u64);
        sent += 1;
        let (http, base, records) = (http.clone(), base.clone(), records.clone());
        let phase = Schedule::new(duration).phase(at);
        requests.push(tokio::spawn(async move {
            let begun = Instant::now();
            let status = http
                .get(format!("{base}{path}"))
                .header("host", host(n))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            let latency = begun.elapsed();
            if status >= 500 || status == 0 {
                println!("  {status} {} {path} ({})", host(n), phase.name());
            }
            publisher_tests::fake_server::lock(&records).push(Record {
                phase,
                tenant: n,
                status,
                latency,
            });
        }));
    }
    for request in requests {
        let _ = request.await;
    }
    // Let the process settle (idle connections, caches) before the last look.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_end = web.rss();
    let samples = conductor.await.unwrap_or_default();
    println!(
        "web RSS every {} s: {}",
        RSS_EVERY.as_secs(),
        samples.join(", ")
    );
    let records = std::mem::take(&mut *publisher_tests::fake_server::lock(&records));
    // The processes (web, moto) stop when their handles drop, at the end.
    match report(&records, rss_start, rss_end, &web, duration) {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    }
}

/// A new refresh token and configuration version for the rotated tenant.
fn rotate(orchestrator: &FakeOrchestrator, dropbox: &FakeDropbox) {
    let t = tenant(ROTATED);
    let token = format!("dbx-refresh-{t}-rotated-0123456789");
    dropbox.add_refresh_token(&token);
    orchestrator.put_credential(
        &t,
        &format!("ref-storage-{t}"),
        json!({"provider": "dropbox", "version": "v-d2", "refresh_token": token, "expires_at": null}),
    );
    orchestrator.seed_tenant(&host(ROTATED), &t, &envelope(ROTATED, "v2"));
    // `seed_tenant` registered the fixture's credentials again: keep the new one.
    orchestrator.put_credential(
        &t,
        &format!("ref-storage-{t}"),
        json!({"provider": "dropbox", "version": "v-d2", "refresh_token": token, "expires_at": null}),
    );
}

/// Prints the numbers; `true` when an expectation failed.
fn report(records: &[Record], rss_start: Rss, rss_end: Rss, web: &Web, duration: Duration) -> bool {
    let mut by_phase: BTreeMap<Phase, (BTreeMap<u16, usize>, Vec<Duration>)> = BTreeMap::new();
    let mut all = Vec::new();
    for record in records {
        let (statuses, latencies) = by_phase.entry(record.phase).or_default();
        *statuses.entry(record.status).or_default() += 1;
        latencies.push(record.latency);
        all.push(record.latency);
    }
    println!();
    println!(
        "requests: {} in {} s ({:.1}/s)",
        records.len(),
        duration.as_secs(),
        records.len() as f64 / duration.as_secs_f64()
    );
    println!(
        "{:<18} {:>8} {:>10} {:>10}  answers",
        "phase", "requests", "p50", "p99"
    );
    for (phase, (statuses, latencies)) in &mut by_phase {
        latencies.sort();
        let answers: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!(
            "{:<18} {:>8} {:>8.1}ms {:>8.1}ms  {}",
            phase.name(),
            latencies.len(),
            percentile(latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(latencies, 0.99).as_secs_f64() * 1000.0,
            answers.join(", ")
        );
    }
    all.sort();
    println!(
        "{:<18} {:>8} {:>8.1}ms {:>8.1}ms",
        "all",
        all.len(),
        percentile(&all, 0.50).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0
    );
    let rotated: Vec<&Record> = records.iter().filter(|r| r.tenant == ROTATED).collect();
    println!(
        "rotated tenant {}: {} requests, {} not 200",
        tenant(ROTATED),
        rotated.len(),
        rotated.iter().filter(|r| r.status != 200).count()
    );
    let growth = rss_end.total as i64 - rss_start.total as i64;
    println!(
        "web RSS: {} kB after the warm-up, {} kB at the end ({growth:+} kB; heap and stacks {:+} kB)",
        rss_start.total,
        rss_end.total,
        rss_end.anon as i64 - rss_start.anon as i64
    );
    let output = std::fs::read_to_string(&web.log).unwrap_or_default();
    let panics = output.matches("panicked").count();
    println!(
        "panics in the web process's output: {panics} (log: {})",
        web.log.display()
    );

    let server_errors = records
        .iter()
        .filter(|r| r.status >= 500 || r.status == 0)
        .count();
    let mut failed = false;
    if server_errors > 0 {
        println!("FAIL: {server_errors} answers were 5xx or no answer at all");
        failed = true;
    }
    if growth >= MAX_RSS_GROWTH_KB as i64 {
        println!("FAIL: RSS grew by {growth} kB (limit {MAX_RSS_GROWTH_KB} kB)");
        failed = true;
    }
    if panics > 0 {
        println!("FAIL: the web process panicked");
        failed = true;
    }
    if !failed {
        println!("OK: no 5xx, RSS growth under 5 MB, no panic");
    }
    failed
}
