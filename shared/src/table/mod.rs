//! The one DynamoDB table (`PUBLISHER_TABLE`) every function shares: runtime
//! configs, posted sets, publish claims, credential checks (`docs/table.md`).
//! Endpoint, region and credentials come from the standard AWS chain.

mod credential_checks;
mod unprocessed;

pub use credential_checks::{CredentialCheck, RecordedCheck};
pub(crate) use unprocessed::until_processed;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use aws_smithy_types::body::SdkBody;
use http_body_util::Limited;

use crate::bounded::{self, TableLimits};
use crate::metrics::{self, Metric};

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

    /// Whether the table is out of reach rather than refusing this one call:
    /// no connection, no answer in time, or throttled.
    pub fn is_out_of_reach(&self) -> bool {
        let reason = self.reason.as_str();
        matches!(reason, "timeout" | "unreachable") || THROTTLING_CODES.contains(&reason)
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
    /// Connects to `name` with the AWS configuration of the environment,
    /// bounded by [`bounded::TABLE`]: short timeouts, few retries.
    pub async fn connect(name: &str) -> Table {
        let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Table::bounded(
            aws_sdk_dynamodb::Config::from(&shared),
            name,
            &bounded::TABLE,
        )
    }

    /// A handle on `name` through `config` (endpoint, region, credentials),
    /// its calls bounded by `limits`: timeouts, tries, and the size of an
    /// answer the SDK reads.
    pub fn bounded(config: aws_sdk_dynamodb::Config, name: &str, limits: &TableLimits) -> Table {
        let config = config
            .to_builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(limits.connect)
                    .operation_attempt_timeout(limits.attempt)
                    .operation_timeout(limits.operation)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(limits.attempts)
                    .with_initial_backoff(limits.backoff),
            )
            .interceptor(AnswerLimit(limits.bytes))
            .build();
        Table {
            client: Client::from_conf(config),
            name: name.to_string(),
        }
    }
}

/// Stops the SDK reading an answer past `.0` bytes: it reads every answer
/// whole before looking at it, whatever its size.
#[derive(Debug)]
struct AnswerLimit(usize);

impl Intercept for AnswerLimit {
    fn name(&self) -> &'static str {
        "AnswerLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let limit = self.0;
        let response = context.response_mut();
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|length| length.parse::<u64>().ok());
        if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(bounded::BodyError::TooLarge { limit }.into());
        }
        let body = std::mem::replace(response.body_mut(), SdkBody::taken());
        *response.body_mut() =
            body.map(move |body| SdkBody::from_body_1_x(Limited::new(body, limit)));
        Ok(())
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
