//! The scale-out: the scheduled run hands the hosts it cannot refresh
//! itself to an SQS queue, one host a message (so that a host that fails is
//! retried alone, never its whole batch), and the same function consumes
//! the queue, answering the messages that failed (`batchItemFailures`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Messages per `SendMessageBatch` (SQS's maximum).
const BATCH: usize = 10;
/// `SendMessageBatch` calls in flight at once.
const SENDS_IN_FLIGHT: usize = 8;

/// The warmup's queue (`WARMUP_QUEUE_URL`).
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// One message: a host, and when the scheduled run handed it out.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Message {
    pub host: String,
    pub dispatched_at_ms: u64,
}

impl Message {
    pub fn dispatched_at(&self) -> Option<SystemTime> {
        UNIX_EPOCH.checked_add(Duration::from_millis(self.dispatched_at_ms))
    }
}

impl Queue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue at `url`, with the AWS configuration of the environment.
    pub async fn connect(url: &str) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(aws_sdk_sqs::Client::new(&config), url)
    }

    /// Sends one message per host; answers how many were sent (a failed
    /// send is logged, and its hosts wait for the next run).
    pub(crate) async fn send(
        &self,
        hosts: &[String],
        dispatched_at: SystemTime,
        request_id: &str,
    ) -> usize {
        let dispatched_at_ms = dispatched_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        stream::iter(hosts.chunks(BATCH))
            .map(|chunk| async move {
                let entries = chunk.iter().enumerate().filter_map(|(i, host)| {
                    let body = serde_json::to_string(&Message {
                        host: host.clone(),
                        dispatched_at_ms,
                    })
                    .ok()?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .ok()
                });
                let sent = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries.collect()))
                    .send()
                    .await;
                match sent {
                    Ok(output) => {
                        if !output.failed().is_empty() {
                            tracing::warn!(
                                request_id,
                                failed = output.failed().len(),
                                "warmup: some hosts could not be queued"
                            );
                        }
                        output.successful().len()
                    }
                    Err(error) => {
                        let error = aws_sdk_sqs::error::DisplayErrorContext(&error);
                        tracing::warn!(request_id, hosts = chunk.len(), error = %error, "warmup: cannot queue hosts");
                        0
                    }
                }
            })
            .buffer_unordered(SENDS_IN_FLIGHT)
            .fold(0, |total, sent| async move { total + sent })
            .await
    }
}

/// The event, when it is a batch of the queue's messages.
pub(crate) fn sqs_batch(event: &Value) -> Option<SqsEvent> {
    let records = event.get("Records")?.as_array()?;
    let from_sqs = records
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs");
    if !from_sqs {
        return None;
    }
    serde_json::from_value(event.clone()).ok()
}

/// The answer to a batch: the messages to deliver again.
pub(crate) fn failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in ids {
        response.add_failure(id);
    }
    response
}
