//! DynamoDB helpers for the tier and warmup tests: table handles that count
//! their calls, a fake DynamoDB endpoint that throttles every call, a full
//! table scan, and applications ("instances") sharing one table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, ConfigBag, Credentials, Intercept, Region};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use publisher::app::App;
use publisher::clock::Clock;
use publisher::table::Table;

use crate::fake_orchestrator::FakeOrchestrator;
use crate::fake_server::FakeServer;
use crate::harness::orchestrated_app_at;

pub type Item = HashMap<String, AttributeValue>;

/// How many operations a table handle has started (each counted once,
/// whatever its retries).
#[derive(Debug, Clone, Default)]
pub struct CallCount(Arc<AtomicUsize>);

impl CallCount {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for CallCount {
    fn name(&self) -> &'static str {
        "CallCount"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A handle on table `name` at `endpoint` that counts its calls. Retries are
/// quick so that failure tests do not wait on the SDK's backoff.
pub fn table_at(endpoint: &str, name: &str) -> (Table, CallCount) {
    let count = CallCount::default();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("eu-central-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .interceptor(count.clone())
        .build();
    let table = Table {
        client: aws_sdk_dynamodb::Client::from_conf(config),
        name: name.to_string(),
    };
    (table, count)
}

/// An application in orchestrated mode against `fake`, on `table` (none:
/// memory only), on a manual clock of its own. Each call is one
/// independent instance.
pub fn app_on_table(
    fake: &FakeOrchestrator,
    table: Option<Table>,
    extra: &[(&str, &str)],
) -> Arc<App> {
    app_on_table_at(fake, table, extra, Clock::manual_now())
}

/// [`app_on_table`] reading `clock`: the instances of one fleet share it.
pub fn app_on_table_at(
    fake: &FakeOrchestrator,
    table: Option<Table>,
    extra: &[(&str, &str)],
    clock: Clock,
) -> Arc<App> {
    let mut vars: Vec<(&str, &str)> = vec![
        ("DROPBOX_APP_KEY", "test-app-key"),
        ("DROPBOX_APP_SECRET", "test-app-secret"),
    ];
    vars.extend_from_slice(extra);
    orchestrated_app_at(fake, &vars, table, clock)
}

/// Every item of the table.
pub async fn scan_all(table: &Table) -> Vec<Item> {
    table
        .client
        .scan()
        .table_name(&table.name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("scan")
}

pub async fn get_item(table: &Table, pk: &str, sk: &str) -> Option<Item> {
    table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
}

pub async fn put_item(table: &Table, item: Item) {
    table
        .client
        .put_item()
        .table_name(&table.name)
        .set_item(Some(item))
        .send()
        .await
        .expect("put item");
}

/// A string attribute of `item`.
pub fn attr_s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("string attribute {name}"))
}

/// A number attribute of `item`.
pub fn attr_n(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("number attribute {name}"))
}

/// A DynamoDB endpoint that answers every call as a throttled table does
/// (`400 ProvisionedThroughputExceededException`, the JSON 1.0 error shape).
pub struct ThrottlingDynamo {
    pub endpoint: String,
    calls: Arc<AtomicUsize>,
    _server: FakeServer,
}

impl ThrottlingDynamo {
    pub async fn start() -> ThrottlingDynamo {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                let body = serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded."
                });
                (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "application/x-amz-json-1.0")],
                    body.to_string(),
                )
                    .into_response()
            }
        });
        let server = FakeServer::start("throttling dynamo", app).await;
        ThrottlingDynamo {
            endpoint: server.url(),
            calls,
            _server: server,
        }
    }

    /// HTTP requests answered (retries included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Puts the claim of `tenant`'s image `sha256` by `holder` until `until`
/// (epoch seconds), as a run of the publish workflow writes it.
pub async fn put_image_claim(
    table: &Table,
    tenant: &str,
    sha256: &str,
    (holder, until): (&str, u64),
    image_name: &str,
) {
    put_item(
        table,
        HashMap::from([
            (
                "pk".to_string(),
                AttributeValue::S(format!("TENANT#{tenant}")),
            ),
            (
                "sk".to_string(),
                AttributeValue::S(format!("IMAGE#{sha256}")),
            ),
            ("holder".to_string(), AttributeValue::S(holder.into())),
            ("until".to_string(), AttributeValue::N(until.to_string())),
            (
                "image_name".to_string(),
                AttributeValue::S(image_name.into()),
            ),
        ]),
    )
    .await;
}

/// Epoch seconds `offset` seconds from now (negative: ago).
pub fn epoch_secs_from_now(offset: i64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    now.saturating_add_signed(offset)
}
