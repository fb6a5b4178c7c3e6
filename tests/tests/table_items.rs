//! Every kind of table item the functions read, as a hostile table could
//! hold it: property tests (`make fuzz` runs them at 20 000 cases each)
//! through the real AWS SDK against a DynamoDB endpoint that answers every
//! read with a generated item, in DynamoDB's wire format. Nothing may panic;
//! what is read must be what the item says; an item as the functions write
//! it reads back unchanged.
//!
//! Readers covered: the runtime item (`HOST#` / `RUNTIME`), the fleet
//! lease's `failed` flag (`HOST#` / `LEASE`, read back from a failed
//! conditional put), the host scan of the warmup, event claims (`RUN#`:
//! `status`, `result`), and the posted set (`POSTED#` existence,
//! `POSTEDCH#` keys). Credential checks (`CREDCHECK#`) are only written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use proptest::prelude::*;
use publisher::cache::{HostItems, Lease, RuntimeItem, RuntimeTier};
use publisher::clock::Clock;
use publisher::ledger::{Claim, Ledger};
use publisher::table::Table;
use publisher_tests::fake_server::{lock, FakeServer};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

const TABLE: &str = "items";

/// A DynamoDB endpoint with one canned answer: while `canned` is set, every
/// read answers with it (GetItem, Query, BatchGetItem, Scan) and every
/// conditional put fails with it as the old item; otherwise items are stored
/// and read back by key (Query: by `pk`).
#[derive(Default)]
struct Endpoint {
    canned: Option<Vec<Value>>,
    stored: HashMap<String, Value>,
}

struct World {
    runtime: Runtime,
    endpoint: Arc<Mutex<Endpoint>>,
    table: Table,
    _server: FakeServer,
}

/// One endpoint and one table handle for every case of every property.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let endpoint = Arc::new(Mutex::new(Endpoint::default()));
        let shared = endpoint.clone();
        let server = runtime.block_on(FakeServer::start(
            "canned dynamodb",
            Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
                let shared = shared.clone();
                async move { answer(&shared, &headers, &body) }
            }),
        ));
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(server.url())
            .region(Region::new("eu-central-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .retry_config(RetryConfig::disabled())
            .build();
        let table = Table {
            client: aws_sdk_dynamodb::Client::from_conf(config),
            name: TABLE.into(),
        };
        World {
            runtime,
            endpoint,
            table,
            _server: server,
        }
    })
}

fn answer(endpoint: &Mutex<Endpoint>, headers: &HeaderMap, body: &[u8]) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("DynamoDB_20120810."))
        .unwrap_or("");
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let key = request["Key"].to_string();
    let mut endpoint = lock(endpoint);
    let canned = endpoint.canned.clone();
    let ok = |body: Value| {
        (
            [("content-type", "application/x-amz-json-1.0")],
            body.to_string(),
        )
            .into_response()
    };
    match (operation, canned) {
        ("GetItem", Some(items)) => ok(json!({"Item": items[0]})),
        ("GetItem", None) => ok(match endpoint.stored.get(&key) {
            Some(item) => json!({"Item": item}),
            None => json!({}),
        }),
        ("Query", Some(items)) => {
            let count = items.len();
            ok(json!({"Items": items, "Count": count, "ScannedCount": count}))
        }
        ("Query", None) => {
            let pk = &request["ExpressionAttributeValues"][":pk"];
            let items: Vec<&Value> = endpoint
                .stored
                .values()
                .filter(|item| &item["pk"] == pk)
                .collect();
            let count = items.len();
            ok(json!({"Items": items, "Count": count, "ScannedCount": count}))
        }
        ("BatchGetItem", Some(items)) => {
            ok(json!({"Responses": {TABLE: items}, "UnprocessedKeys": {}}))
        }
        ("Scan", Some(items)) => {
            let count = items.len();
            ok(json!({"Items": items, "Count": count, "ScannedCount": count}))
        }
        ("PutItem", Some(items)) if request.get("ConditionExpression").is_some() => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.0")],
            json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                "message": "The conditional request failed",
                "Item": items[0],
            })
            .to_string(),
        )
            .into_response(),
        ("PutItem", _) => {
            let item = request["Item"].clone();
            let key = json!({"pk": item["pk"], "sk": item["sk"]}).to_string();
            let old = endpoint.stored.insert(key, item);
            ok(match old {
                Some(old) => json!({"Attributes": old}),
                None => json!({}),
            })
        }
        _ => ok(json!({})),
    }
}

/// Runs `work` against the endpoint answering with `items`.
fn with_items<T>(items: Option<Vec<Value>>, work: impl std::future::Future<Output = T>) -> T {
    let world = world();
    // The cases of one property run one after the other; the lock keeps
    // those of different properties apart.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = lock(&ONE_AT_A_TIME);
    lock(&world.endpoint).canned = items;
    world.runtime.block_on(work)
}

// ---------------------------------------------------------------- values

/// What a number attribute may hold in a hostile table.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("1e400".to_string()),
        "\\PC{0,10}",
    ]
}

/// Any attribute value in DynamoDB's JSON, well-formed or not.
fn attribute() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => "\\PC{0,16}".prop_map(|s| json!({"S": s})),
        3 => number_text().prop_map(|n| json!({"N": n})),
        2 => any::<bool>().prop_map(|b| json!({"BOOL": b})),
        1 => Just(json!({"NULL": true})),
        1 => "[A-Za-z0-9+/]{0,12}={0,2}".prop_map(|b| json!({"B": b})),
        1 => prop::collection::vec("\\PC{0,6}", 0..3).prop_map(|v| json!({"SS": v})),
        1 => prop::collection::vec(number_text(), 0..3).prop_map(|v| json!({"NS": v})),
        1 => prop_oneof![
            Just(json!({})),
            Just(json!({"X": 1})),
            Just(json!("bare")),
            Just(json!({"S": 7})),
            Just(json!({"S": "a", "N": "1"})),
        ],
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({"L": v})),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4).prop_map(|m| json!({"M": m})),
        ]
    })
}

/// An item with the attributes `names` (each present or not, each of any
/// type, often the type the reader expects) and the keys `pk` and `sk`
/// (`sk` when `names` does not say).
fn item(
    sk: &'static str,
    names: &'static [&'static str],
    likely: fn(&str) -> BoxedStrategy<Value>,
) -> impl Strategy<Value = Value> {
    let attributes: Vec<_> = names
        .iter()
        .map(|name| {
            let value = prop_oneof![3 => likely(name), 1 => attribute()];
            prop::option::weighted(0.9, value).prop_map(move |v| (name.to_string(), v))
        })
        .collect();
    attributes.prop_map(move |attributes| {
        let mut map: BTreeMap<String, Value> = attributes
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect();
        map.entry("pk".into())
            .or_insert_with(|| json!({"S": "HOST#a.example"}));
        map.entry("sk".into()).or_insert_with(|| json!({"S": sk}));
        json!(map)
    })
}

/// The runtime tier on the endpoint: an hour of max-stale and of TTL, 30 s
/// of negative TTL.
fn tier(clock: Clock) -> RuntimeTier {
    let hour = Duration::from_secs(3600);
    RuntimeTier::new(world().table.clone(), hour, hour, NEGATIVE_TTL, clock)
}

const NEGATIVE_TTL: Duration = Duration::from_secs(30);

fn s(value: &Value) -> Option<&str> {
    value.get("S").and_then(Value::as_str)
}

// ------------------------------------------------------------- properties

mod properties {
    use super::*;

    fn runtime_likely(name: &str) -> BoxedStrategy<Value> {
        match name {
            "fetched_at" | "fresh_until" => prop_oneof![
                3 => (0u64..=253_402_300_799_000).prop_map(|n| n.to_string()),
                1 => number_text(),
            ]
            .prop_map(|n| json!({"N": n}))
            .boxed(),
            _ => "\\PC{1,16}".prop_map(|s| json!({"S": s})).boxed(),
        }
    }

    fn not_found_likely(_: &str) -> BoxedStrategy<Value> {
        prop_oneof![
            3 => (0u64..=4_000_000_000).prop_map(|n| n.to_string()),
            1 => number_text(),
        ]
        .prop_map(|n| json!({"N": n}))
        .boxed()
    }

    fn lease_likely(name: &str) -> BoxedStrategy<Value> {
        match name {
            "failed" => any::<bool>().prop_map(|b| json!({"BOOL": b})).boxed(),
            "lease_until" => number_text().prop_map(|n| json!({"N": n})).boxed(),
            _ => "\\PC{1,16}".prop_map(|s| json!({"S": s})).boxed(),
        }
    }

    fn claim_likely(name: &str) -> BoxedStrategy<Value> {
        match name {
            "status" => prop_oneof![Just("completed"), Just("in_progress"), Just("done")]
                .prop_map(|s| json!({"S": s}))
                .boxed(),
            "result" => prop_oneof![Just(r#"{"status": "published"}"#.to_string()), "\\PC{0,16}",]
                .prop_map(|s| json!({"S": s}))
                .boxed(),
            _ => number_text().prop_map(|n| json!({"N": n})).boxed(),
        }
    }

    fn key_likely(name: &str) -> BoxedStrategy<Value> {
        let prefix = if name == "pk" { "HOST#" } else { "POSTEDCH#" };
        prop_oneof![
            "\\PC{0,12}".prop_map(move |s| json!({"S": format!("{prefix}{s}")})),
            "\\PC{0,12}".prop_map(|s| json!({"S": s})),
        ]
        .boxed()
    }

    proptest! {
        #[test]
        fn a_runtime_item_is_read_as_it_says_or_refused(
            item in item("RUNTIME", &["config", "config_version", "fetched_at", "fresh_until"], runtime_likely),
        ) {
            let tier = tier(Clock::manual_now());
            let read = with_items(Some(vec![item.clone()]), tier.get("a.example", false));
            if let Ok(HostItems { runtime: Some(Ok(read)), .. }) = read {
                prop_assert_eq!(Some(read.config_version.as_str()), s(&item["config_version"]));
                prop_assert_eq!(Some(read.envelope.as_str()), s(&item["config"]));
            }
        }

        /// An unknown host's marker holds at most the negative TTL (and
        /// another clock's skew) from now, whatever its `expires_at` says.
        #[test]
        fn an_unknown_host_marker_is_bounded(
            item in item("NOTFOUND", &["expires_at"], not_found_likely),
        ) {
            let clock = Clock::manual_now();
            let now = clock.now();
            let tier = tier(clock);
            let read = with_items(Some(vec![item.clone()]), tier.get("a.example", false));
            if let Ok(found) = read {
                prop_assert!(found.not_found_marker);
                if let Some(until) = found.not_found_until {
                    prop_assert!(until > now);
                    prop_assert!(until <= now + NEGATIVE_TTL + Duration::from_secs(61));
                }
            }
        }

        #[test]
        fn a_held_lease_says_whether_it_failed(
            item in item("LEASE", &["holder", "lease_until", "failed"], lease_likely),
        ) {
            let tier = tier(Clock::manual_now());
            let lease = with_items(Some(vec![item.clone()]), tier.try_lease("a.example", Duration::from_secs(10)));
            if let Ok(lease) = lease {
                let failed = item["failed"] == json!({"BOOL": true});
                prop_assert_eq!(lease, Lease::Held { failed });
            }
        }

        #[test]
        fn a_claim_is_read_as_it_says(
            item in item("RUN#evt", &["status", "result", "in_progress_until"], claim_likely),
        ) {
            let world = world();
            let ledger = Ledger::new(Some(world.table.clone()), Clock::manual_now());
            let until = SystemTime::now() + Duration::from_secs(60);
            let claim = with_items(Some(vec![item.clone()]), ledger.claim("t", "evt", until));
            if let Ok(claim) = claim {
                let completed = s(&item["status"]) == Some("completed");
                let result = s(&item["result"]).and_then(|text| serde_json::from_str::<Value>(text).ok());
                prop_assert_eq!(claim, Claim::Duplicate { completed, result });
            }
        }

        #[test]
        fn scanned_hosts_are_the_items_hosts(
            items in prop::collection::vec(item("RUNTIME", &["pk"], key_likely), 0..6),
        ) {
            let tier = tier(Clock::manual_now());
            let copies = with_items(Some(items.clone()), tier.copies());
            if let Ok(copies) = copies {
                let hosts: Vec<String> = copies.into_iter().map(|copy| copy.host).collect();
                let want: Vec<String> = items
                    .iter()
                    .filter_map(|item| s(&item["pk"])?.strip_prefix("HOST#").map(str::to_string))
                    .collect();
                prop_assert_eq!(hosts, want);
            }
        }

        #[test]
        fn posted_hashes_are_the_items_hashes(
            items in prop::collection::vec(item("POSTEDCH#a", &["sk"], key_likely), 1..6),
        ) {
            let world = world();
            let ledger = Ledger::new(Some(world.table.clone()), Clock::manual_now());
            let asked = vec!["a".to_string(), "b".to_string()];
            let posted = with_items(Some(items.clone()), ledger.posted_content_hashes("t", &asked));
            if let Ok(posted) = posted {
                let want: HashSet<String> = items
                    .iter()
                    .filter_map(|item| s(&item["sk"])?.strip_prefix("POSTEDCH#").map(str::to_string))
                    .collect();
                prop_assert_eq!(posted, want);
            }
            let known = with_items(Some(items), ledger.is_posted("t", "a"));
            prop_assert!(known.is_err() || known == Ok(true));
        }

        /// What the tier writes, it reads back: a copy fetched up to a day
        /// ago (to the millisecond), fresh for up to an hour (to the second).
        #[test]
        fn a_runtime_item_as_written_reads_back(
            ago_ms in 0u64..=86_400_000,
            fresh_s in 0u64..=3_600,
            envelope in "\\PC{1,40}",
            version in "\\PC{1,20}",
        ) {
            let clock = Clock::manual_now();
            let tier = tier(clock.clone());
            let now_ms = clock.now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
            let fetched_ms = u64::try_from(now_ms).unwrap_or(u64::MAX) - ago_ms;
            let item = RuntimeItem {
                envelope,
                config_version: version,
                fetched_at: UNIX_EPOCH + Duration::from_millis(fetched_ms),
                fresh_until: UNIX_EPOCH + Duration::from_secs(fetched_ms / 1000 + fresh_s),
            };
            let read = with_items(None, async {
                tier.put("b.example", &item).await.map_err(|e| e.to_string())?;
                tier.get("b.example", true).await.map_err(|e| e.to_string())
            });
            let read = read.map(|found| found.runtime.map(|item| item.map_err(|e| e.to_string())));
            prop_assert_eq!(read, Ok(Some(Ok(item))));
        }
    }
}
