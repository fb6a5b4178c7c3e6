//! The one DynamoDB table (`PUBLISHER_TABLE`) every function shares: runtime
//! configs, posted sets, publish claims, credential checks (publish.md).
//! Endpoint, region and credentials come from the standard AWS chain.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::secrets::{CredentialErrorKind, Role};

/// A table call must not hold a request up for long: every tier above and
/// below DynamoDB still works without it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_ATTEMPTS: u32 = 3;

#[derive(Clone, Debug)]
pub struct Table {
    pub client: Client,
    pub name: String,
}

/// A failed table call: the operation and a short reason (an error code,
/// `timeout`, `unreachable`), never an item's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DynamoDB {operation}: {reason}")]
pub struct DynamoError {
    pub operation: &'static str,
    pub reason: String,
}

impl DynamoError {
    pub fn new(operation: &'static str, reason: impl Into<String>) -> Self {
        Self {
            operation,
            reason: reason.into(),
        }
    }

    /// Describes an SDK error by its code or its kind.
    pub fn from_sdk<E, R>(operation: &'static str, error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata,
    {
        let reason = match error {
            SdkError::ServiceError(service) => {
                service.err().code().unwrap_or("service error").to_string()
            }
            SdkError::TimeoutError(_) => "timeout".into(),
            SdkError::DispatchFailure(_) => "unreachable".into(),
            SdkError::ResponseError(_) => "unreadable response".into(),
            _ => "request not built".into(),
        };
        Self::new(operation, reason)
    }
}

impl Table {
    /// Connects to `name` with the AWS configuration of the environment, with
    /// short timeouts and few retries.
    pub async fn connect(name: &str) -> Table {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .load()
            .await;
        Table {
            client: Client::new(&config),
            name: name.to_string(),
        }
    }

    /// Records a tenant's credential checks (`TENANT#<tenant>` /
    /// `CREDCHECK#<role>`: provider, ok, the error kind, when; never the
    /// reference, the version or the secret) and forgets the checks of the
    /// roles in `dropped`, in one batch.
    pub async fn record_credential_checks(
        &self,
        tenant: &str,
        checks: &[CredentialCheck],
        dropped: &[Role],
    ) -> Result<(), DynamoError> {
        let key = |role: Role| {
            [
                ("pk".to_string(), s(format!("TENANT#{tenant}"))),
                ("sk".to_string(), s(format!("CREDCHECK#{role}"))),
            ]
        };
        let puts = checks.iter().map(|check| {
            let mut item: HashMap<String, AttributeValue> = key(check.role).into();
            item.insert("provider".into(), s(check.role.provider()));
            item.insert("ok".into(), AttributeValue::Bool(check.error.is_none()));
            item.insert("checked_at".into(), n(epoch_secs(check.checked_at)));
            if let Some(kind) = check.error {
                item.insert("error".into(), s(kind.to_string()));
            }
            let request = PutRequest::builder().set_item(Some(item)).build()?;
            Ok(WriteRequest::builder().put_request(request).build())
        });
        let deletes = dropped.iter().map(|&role| {
            let request = DeleteRequest::builder()
                .set_key(Some(key(role).into()))
                .build()?;
            Ok(WriteRequest::builder().delete_request(request).build())
        });
        let mut requests: Vec<WriteRequest> = puts
            .chain(deletes)
            .collect::<Result<_, BuildError>>()
            .map_err(|_| DynamoError::new("BatchWriteItem", "request not built"))?;
        // A batch may come back partly unprocessed when the table is busy.
        for attempt in 0..MAX_ATTEMPTS {
            if requests.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.name, requests)
                .send()
                .await
                .map_err(|e| DynamoError::from_sdk("BatchWriteItem", &e))?;
            requests = output
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.name))
                .unwrap_or_default();
        }
        if requests.is_empty() {
            Ok(())
        } else {
            Err(DynamoError::new("BatchWriteItem", "items left unprocessed"))
        }
    }
}

/// One credential check of the warmup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialCheck {
    pub role: Role,
    /// `None` when the reference resolved to the role's provider.
    pub error: Option<CredentialErrorKind>,
    pub checked_at: SystemTime,
}

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

pub fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
