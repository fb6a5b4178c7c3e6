//! A real DynamoDB API for tests: moto's server from the project's virtualenv
//! (`make venv`), on an ephemeral loopback port, stopped by its PID on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use publisher::table::Table;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// The virtualenv `make venv` creates (override with `PUBLISHER_VENV`).
pub fn venv_dir() -> PathBuf {
    std::env::var_os("PUBLISHER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv")))
}

/// A program of the virtualenv.
pub fn venv_bin(program: &str) -> PathBuf {
    venv_dir().join("bin").join(program)
}

/// A free loopback port (the listener is closed before the port is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Moto {
    pub async fn start() -> Moto {
        let port = free_port();
        let child = Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server from the virtualenv (run `make venv`)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto { child, endpoint };
        assert!(
            answers(&moto.endpoint, Duration::from_secs(30)).await,
            "moto_server did not start"
        );
        moto
    }

    /// Environment for the AWS chain: endpoint, region, dummy credentials.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_DYNAMODB", self.endpoint.clone()),
            ("AWS_REGION", "eu-central-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }

    /// A client for `name` on this server, without touching the process env.
    pub async fn table(&self, name: &str) -> Table {
        table_at(&self.endpoint, name)
    }

    /// Creates the table as template.yaml does: `pk`/`sk` strings, on-demand,
    /// TTL on `expires_at`.
    pub async fn create_table(&self, name: &str) -> Table {
        let table = self.table(name).await;
        create_table(&table).await.expect("create table");
        table
    }

    /// Clears every table and item (`POST /moto-api/reset`).
    pub async fn reset(&self) {
        reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .expect("moto reset");
    }
}

/// A client for the table `name` on the DynamoDB API at `endpoint` (moto's),
/// with dummy credentials, without touching the process env.
pub fn table_at(endpoint: &str, name: &str) -> Table {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("eu-central-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .build();
    Table {
        client: aws_sdk_dynamodb::Client::from_conf(config),
        name: name.to_string(),
    }
}

/// Whether moto's server at `endpoint` answers within `within`.
pub async fn answers(endpoint: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let http = reqwest::Client::new();
    loop {
        if http
            .get(format!("{endpoint}/moto-api/"))
            .send()
            .await
            .is_ok()
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `table` as template.yaml declares it: `pk`/`sk` strings,
/// on-demand, TTL on `expires_at`.
pub async fn create_table(table: &Table) -> Result<(), String> {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let created = table
        .client
        .create_table()
        .table_name(&table.name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .send()
        .await;
    if let Err(error) = created {
        // Already there: created by an earlier run on the same server.
        if matches!(
            error.as_service_error(),
            Some(CreateTableError::ResourceInUseException(_))
        ) {
            return Ok(());
        }
        return Err(format!("create table: {}", DisplayErrorContext(&error)));
    }
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name("expires_at")
        .build()
        .map_err(|e| e.to_string())?;
    table
        .client
        .update_time_to_live()
        .table_name(&table.name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| format!("enable ttl: {}", DisplayErrorContext(&e)))?;
    Ok(())
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
