//! An SQS queue for tests (on moto's server, beside its DynamoDB, or on
//! [`crate::fake_sqs`] for queues of thousands), and what Lambda's SQS event
//! source mapping does with a queue: receive a batch, hand it to the
//! function as an event, delete the messages it did not report as failed,
//! and deliver those again later.

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use serde_json::{json, Value};

use crate::moto::Moto;

pub struct SqsQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

/// One batch as the event source mapping received it.
pub struct Batch {
    /// The function's event: `{"Records": [...]}`.
    pub event: Value,
    /// (message id, receipt handle) of each message.
    receipts: Vec<(String, String)>,
}

impl SqsQueue {
    /// Creates queue `name` on `moto`.
    pub async fn create(moto: &Moto, name: &str) -> SqsQueue {
        Self::create_at(&moto.endpoint, name).await
    }

    /// Creates queue `name` on the SQS API at `endpoint`.
    pub async fn create_at(endpoint: &str, name: &str) -> SqsQueue {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("eu-central-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build();
        let client = aws_sdk_sqs::Client::from_conf(config);
        let created = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, "60")
            .send()
            .await
            .expect("create queue");
        let url = created.queue_url().expect("queue url").to_string();
        SqsQueue { client, url }
    }

    /// The warmup's handle on this queue.
    pub fn for_warmup(&self) -> warmup::Queue {
        warmup::Queue::new(self.client.clone(), self.url.clone())
    }

    /// Up to ten visible messages as an SQS event; `None` when there are none.
    pub async fn receive(&self) -> Option<Batch> {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let messages = received.messages();
        if messages.is_empty() {
            return None;
        }
        let mut receipts = Vec::new();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let id = m.message_id().unwrap_or_default().to_string();
                let receipt = m.receipt_handle().unwrap_or_default().to_string();
                receipts.push((id.clone(), receipt.clone()));
                json!({
                    "messageId": id,
                    "receiptHandle": receipt,
                    "body": m.body().unwrap_or_default(),
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body().unwrap_or_default(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:warmup",
                    "awsRegion": "eu-central-1",
                })
            })
            .collect();
        Some(Batch {
            event: json!({ "Records": records }),
            receipts,
        })
    }

    /// Settles a batch by the function's answer: the messages it reported
    /// failed become visible again at once (their visibility timeout,
    /// passed), the others are deleted. Answers the failed message ids.
    pub async fn settle(&self, batch: Batch, answer: &Value) -> Vec<String> {
        let failed: Vec<String> = answer["batchItemFailures"]
            .as_array()
            .expect("a partial batch response")
            .iter()
            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
            .collect();
        let mut done = Vec::new();
        for (i, (id, receipt)) in batch.receipts.into_iter().enumerate() {
            if failed.contains(&id) {
                self.client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .expect("make visible again");
            } else {
                let entry = DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .expect("entry");
                done.push(entry);
            }
        }
        if !done.is_empty() {
            self.client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(done))
                .send()
                .await
                .expect("delete");
        }
        failed
    }
}
