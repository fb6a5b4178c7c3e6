//! The warmup at fleet scale, against moto's DynamoDB, an SQS queue and the
//! fake orchestrator answering in 20 ms and refusing calls above its
//! ceiling with 429: a scheduled run hands the due hosts to the queue,
//! consumers warm them, every host is refreshed within one interval, the
//! calls stay at one lookup per host plus the credential checks due, and a
//! second run on the unchanged fleet resolves no credential.
//!
//! The fleet's queue is [`FakeSqs`], which delivers one message in a
//! hundred twice as SQS may: moto's SQS scans its whole queue on every call,
//! hours for 10 000 messages. moto's SQS carries the test of a failed host
//! delivered again, below.
//!
//! `make test` runs it with 500 hosts; `make scale` with 10 000
//! (`WARMUP_SCALE_HOSTS`), and prints its numbers. The orchestrator's
//! ceiling is 50 calls a second for 10 000 hosts, scaled with the fleet so
//! that both sizes take the same path. Time is a manual clock shared by
//! every instance and by the orchestrator's rate limit: the pacing is real
//! on that clock, and the test does not wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::{stream, StreamExt};
use publisher::app::App;
use publisher::clock::Clock;
use publisher::table::Table;
use publisher_tests::fake_orchestrator::{samples, FakeOrchestrator};
use publisher_tests::fake_sqs::FakeSqs;
use publisher_tests::moto::Moto;
use publisher_tests::sqs::SqsQueue;
use publisher_tests::tables::{app_on_table_at, attr_n, scan_all, table_at};
use serde_json::{json, Value};
use warmup::handle_event;

const TABLE: &str = "publisher-scale";
const INTERVAL: Duration = Duration::from_secs(300);
/// The queue's consumers at once (the event source mapping's maximum).
const CONSUMERS: usize = 4;
/// The calls the orchestrator lets through at once. The consumers' calls
/// are paced on the shared clock, but up to [`warmup::CONCURRENCY`] of each
/// consumer's are in flight at once, and arrive together when the clock
/// has moved on: a burst of that size is what the ceiling must allow.
const BURST: f64 = (CONSUMERS * warmup::CONCURRENCY + CONSUMERS) as f64;

fn hosts_wanted() -> usize {
    std::env::var("WARMUP_SCALE_HOSTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

struct Fleet {
    moto: Moto,
    fake: FakeOrchestrator,
    sqs: FakeSqs,
    queue: SqsQueue,
    clock: Clock,
    rps: f64,
    hosts: usize,
    /// Tenants whose credential check is due at the first run.
    due_checks: usize,
}

impl Fleet {
    fn app(&self) -> Arc<App> {
        let (table, _) = table_at(&self.moto.endpoint, TABLE);
        let rps = self.rps.to_string();
        let consumers = CONSUMERS.to_string();
        app_on_table_at(
            &self.fake,
            Some(table),
            &[
                ("WARMUP_MAX_ORCHESTRATOR_RPS", &rps),
                ("WARMUP_QUEUE_MAX_CONCURRENCY", &consumers),
                ("WARMUP_INTERVAL_SECONDS", "300"),
                ("ORCHESTRATOR_TIMEOUT_SECONDS", "30"),
            ],
            self.clock.clone(),
        )
    }

    fn table(&self) -> Table {
        table_at(&self.moto.endpoint, TABLE).0
    }
}

/// Epoch seconds of `at`.
fn secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// An existing fleet: every host known to the orchestrator (TTL 300 s) and
/// in the table with a copy expiring within the next interval; every
/// tenant's storage credential checked ten minutes ago, except one in ten,
/// checked two hours ago, and one in a hundred whose configuration changed
/// since.
async fn fleet(hosts: usize) -> Fleet {
    let moto = Moto::start().await;
    let table = moto.create_table(TABLE).await;
    let sqs = FakeSqs::start().await;
    sqs.set_duplicates(100);
    let queue = SqsQueue::create_at(&sqs.url(), "publisher-warmup").await;
    let fake = FakeOrchestrator::start().await;
    let clock = Clock::manual_now();
    let start = clock.now();
    let (mut v1, _, _) = samples();
    v1["ttl_seconds"] = json!(300);
    let mut items = Vec::new();
    let mut due_checks = 0;
    for i in 0..hosts {
        let tenant = format!("s{i:05}");
        let host = format!("{tenant}.shibari.photo");
        let envelope = fake.seed_tenant(&host, &tenant, &v1);
        let version = envelope["config_version"].as_str().unwrap_or_default();
        let checked = match (i % 10, i % 100) {
            (_, 1) => {
                let mut changed = envelope.clone();
                changed["config_version"] = json!(format!("{version}-next"));
                fake.put_runtime(&host, changed);
                due_checks += 1;
                start - Duration::from_secs(600)
            }
            (3, _) => {
                due_checks += 1;
                start - Duration::from_secs(7200)
            }
            _ => start - Duration::from_secs(600),
        };
        let fresh_until = start + Duration::from_secs(1 + (i as u64 * 7) % 290);
        let s = |v: &str| AttributeValue::S(v.to_string());
        let n = |v: u64| AttributeValue::N(v.to_string());
        items.push(HashMap::from([
            ("pk".to_string(), s(&format!("HOST#{host}"))),
            ("sk".to_string(), s("RUNTIME")),
            ("config".to_string(), s(&envelope.to_string())),
            ("config_version".to_string(), s(version)),
            (
                "fetched_at".to_string(),
                n(secs(start - Duration::from_secs(300)) * 1000),
            ),
            ("fresh_until".to_string(), n(secs(fresh_until))),
            ("expires_at".to_string(), n(secs(fresh_until) + 3600)),
        ]));
        items.push(HashMap::from([
            ("pk".to_string(), s(&format!("TENANT#{tenant}"))),
            ("sk".to_string(), s("CREDCHECK#storage")),
            ("provider".to_string(), s("dropbox")),
            ("ok".to_string(), AttributeValue::Bool(true)),
            ("checked_at".to_string(), n(secs(checked))),
            ("config_version".to_string(), s(version)),
        ]));
    }
    write_all(&table, items).await;
    fake.set_delay(Duration::from_millis(20));
    let rps = 50.0 * hosts as f64 / 10_000.0;
    fake.set_rate_limit(rps, BURST, clock.clone());
    Fleet {
        moto,
        fake,
        sqs,
        queue,
        clock,
        rps,
        hosts,
        due_checks,
    }
}

async fn write_all(table: &Table, items: Vec<HashMap<String, AttributeValue>>) {
    let batches: Vec<Vec<WriteRequest>> = items
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .expect("put");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect()
        })
        .collect();
    stream::iter(batches)
        .for_each_concurrent(8, |batch| async move {
            let written = table
                .client
                .batch_write_item()
                .request_items(&table.name, batch)
                .send()
                .await
                .expect("seed the table");
            let left = written.unprocessed_items().map_or(0, |u| u.len());
            assert_eq!(left, 0, "moto processes every item");
        })
        .await;
}

/// What one scheduled run and its consumers did.
struct Run {
    queued: usize,
    lookups: usize,
    resolutions: usize,
    throttled: usize,
    /// On the shared clock, from the schedule to the last host.
    took: Duration,
    wall: Duration,
    redelivered: usize,
    /// Messages the consumers received: the queued hosts, the failed ones
    /// again, and the duplicates.
    delivered: usize,
}

/// The scheduled run, then the queue drained by [`CONSUMERS`] instances at
/// once, each answering batches as the event source mapping hands them.
async fn scheduled_run(fleet: &Fleet) -> Run {
    fleet.fake.reset_counters();
    let wall = Instant::now();
    let start = fleet.clock.now();
    let dispatcher = fleet.app();
    let queue = fleet.queue.for_warmup();
    let scheduled = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let answer = handle_event(&dispatcher, Some(&queue), &scheduled, "schedule", None)
        .await
        .expect("the scheduled run answers");
    let queued = answer["queued"].as_u64().unwrap_or(0) as usize;
    assert_eq!(answer["results"], json!([]), "every host went to the queue");
    let consumers: Vec<Arc<App>> = (0..CONSUMERS).map(|_| fleet.app()).collect();
    let settled: Vec<(usize, usize)> =
        futures::future::join_all(consumers.iter().enumerate().map(|(i, app)| async move {
            let (mut redelivered, mut delivered) = (0, 0);
            while let Some(batch) = fleet.queue.receive().await {
                delivered += batch.event["Records"].as_array().map_or(0, Vec::len);
                let id = format!("consumer-{i}");
                let answer = handle_event(app, None, &batch.event, &id, None)
                    .await
                    .expect("a batch answers");
                redelivered += fleet.queue.settle(batch, &answer).await.len();
            }
            (redelivered, delivered)
        }))
        .await;
    assert_eq!(fleet.sqs.depth(), (0, 0), "the queue is drained");
    Run {
        queued,
        lookups: fleet.fake.runtime_calls(),
        resolutions: fleet.fake.credential_calls(),
        throttled: fleet.fake.throttled_calls(),
        took: fleet.clock.since(start),
        wall: wall.elapsed(),
        redelivered: settled.iter().map(|s| s.0).sum(),
        delivered: settled.iter().map(|s| s.1).sum(),
    }
}

fn report(name: &str, fleet: &Fleet, run: &Run) {
    println!(
        "warmup scale, {name}: {} hosts, {} queued, ceiling {} calls/s, {} consumers: \
         wall {:.1} s, {:.0} s on the run's clock; orchestrator calls {} \
         ({} lookups + {} credential resolutions), 429s seen {}, messages delivered {} \
         (failed and delivered again {})",
        fleet.hosts,
        run.queued,
        fleet.rps,
        CONSUMERS,
        run.wall.as_secs_f64(),
        run.took.as_secs_f64(),
        run.lookups + run.resolutions,
        run.lookups,
        run.resolutions,
        run.throttled,
        run.delivered,
        run.redelivered,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_stays_fresh_under_the_orchestrators_ceiling() {
    let hosts = hosts_wanted();
    let fleet = fleet(hosts).await;
    let start = fleet.clock.now();

    let first = scheduled_run(&fleet).await;
    report("first run", &fleet, &first);
    assert_eq!(
        first.queued, hosts,
        "every copy expires before the next run"
    );
    assert!(
        first.delivered > hosts,
        "some messages came twice: {}",
        first.delivered
    );
    assert!(
        first.took <= INTERVAL,
        "refreshed within one interval: {:?}",
        first.took
    );
    // A 429 is a call too; the client backs off instead of storming.
    assert!(
        first.throttled * 100 <= hosts,
        "no 429 storm: {} of {} calls",
        first.throttled,
        first.lookups + first.resolutions
    );
    assert_eq!(first.lookups - count_429s_on(&fleet, true), hosts);
    assert!(
        first.lookups + first.resolutions <= hosts + fleet.due_checks + first.throttled,
        "calls {} + {} for {hosts} hosts and {} checks due",
        first.lookups,
        first.resolutions,
        fleet.due_checks
    );
    assert_eq!(
        first.resolutions - count_429s_on(&fleet, false),
        fleet.due_checks
    );
    let items = scan_all(&fleet.table()).await;
    let refreshed = items
        .iter()
        .filter(|i| i["sk"].as_s().is_ok_and(|sk| sk == "RUNTIME"))
        .filter(|i| attr_n(i, "fetched_at") >= start_ms(start))
        .count();
    assert_eq!(refreshed, hosts, "every host refreshed");

    // The next interval, on the unchanged fleet: every copy again (TTL =
    // interval), and no credential at all.
    fleet.clock.sleep_until(start + INTERVAL).await;
    let second = scheduled_run(&fleet).await;
    report("second run", &fleet, &second);
    assert_eq!(second.queued, hosts);
    assert_eq!(second.resolutions, 0, "nothing changed, nothing is due");
    assert_eq!(second.lookups - second.throttled, hosts);
    assert!(second.took <= INTERVAL, "{:?}", second.took);
}

fn start_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// 429 answers to lookups (`true`) or to credential calls.
fn count_429s_on(fleet: &Fleet, lookups: bool) -> usize {
    fleet
        .fake
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .filter(|r| r.path.contains("runtime") == lookups)
        .count()
}

#[tokio::test]
async fn a_host_that_fails_is_delivered_again_alone() {
    let moto = Moto::start().await;
    moto.create_table(TABLE).await;
    let queue = SqsQueue::create(&moto, "publisher-warmup-retry").await;
    let fake = publisher_tests::harness::fake_with_samples().await;
    let clock = Clock::manual_now();
    let (table, _) = table_at(&moto.endpoint, TABLE);
    let app = app_on_table_at(
        &fake,
        Some(table),
        &[
            ("ORCHESTRATOR_MAX_ATTEMPTS", "1"),
            (
                "WARMUP_HOSTS",
                "maple.shibari.photo, vermont.shibari.photo, gone.shibari.photo",
            ),
            // Far too few calls for one invocation: the hosts go to the queue.
            ("WARMUP_MAX_ORCHESTRATOR_RPS", "0.001"),
        ],
        clock.clone(),
    );
    let scheduled = handle_event(&app, Some(&queue.for_warmup()), &json!({}), "s", None)
        .await
        .expect("answer");
    assert_eq!(scheduled, json!({"results": [], "queued": 3}));
    assert_eq!(fake.runtime_calls(), 0, "the scheduled run only hands out");
    fake.fail_next_runtime(1, 503, None);
    let batch = queue.receive().await.expect("a batch");
    let answer = handle_event(&app, None, &batch.event, "batch", None)
        .await
        .expect("answer");
    let failed = queue.settle(batch, &answer).await;
    assert_eq!(failed.len(), 1, "{answer}");
    assert_eq!(fake.runtime_calls(), 3);

    let again = queue.receive().await.expect("the failed host again");
    let answer: Value = handle_event(&app, None, &again.event, "again", None)
        .await
        .expect("answer");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(queue.settle(again, &answer).await.len(), 0);
    assert_eq!(fake.runtime_calls(), 4, "only the failed host again");
    assert!(queue.receive().await.is_none(), "the queue is empty");
}
