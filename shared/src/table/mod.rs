//! The one DynamoDB table (`PUBLISHER_TABLE`) every function shares: runtime
//! configs, posted sets, publish claims, credential checks (`docs/table.md`).
//! Endpoint, region and credentials come from the standard AWS chain.

mod credential_checks;
mod unprocessed;

pub use credential_checks::{CredentialCheck, RecordedCheck};
pub(crate) use unprocessed::until_processed;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::metrics::{self, Metric};

/// A table call must not hold a request up for long: every tier above and
/// below DynamoDB still works without it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_ATTEMPTS: u32 = 3;
/// The codes with which DynamoDB refuses load rather than a request.
const THROTTLING_CODES: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

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

    /// Describes an SDK error by its code or its kind, and counts it (a
    /// failed condition is an answer, not an error).
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
        if reason != "ConditionalCheckFailedException" {
            let throttled = THROTTLING_CODES.contains(&reason.as_str());
            metrics::record(Metric::DynamoError {
                operation,
                throttled,
            });
        }
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

/// Did a conditional write fail its condition (rather than the call)?
pub fn is_condition_failure<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}
