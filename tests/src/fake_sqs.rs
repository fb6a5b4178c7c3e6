//! A fake of SQS's JSON API (the calls the warmup and the tests make:
//! `CreateQueue`, `SendMessageBatch`, `ReceiveMessage`,
//! `DeleteMessageBatch`, `ChangeMessageVisibility`) for queues of thousands
//! of messages. moto's SQS scans its whole queue on every receive and
//! delete, which makes a 10 000-message queue take hours; here each call
//! costs what it touches. moto's SQS stays the reference for the small
//! tests.
//!
//! Messages are delivered in the order sent. A received message stays in
//! flight until it is deleted or made visible again (there is no visibility
//! timeout: the tests settle every batch). [`FakeSqs::set_duplicates`]
//! delivers some messages twice, as SQS's at-least-once delivery may.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use crate::fake_server::{lock, FakeServer};

#[derive(Default)]
struct State {
    visible: VecDeque<(String, String)>,
    /// receipt handle → (message id, body)
    in_flight: HashMap<String, (String, String)>,
    sent: usize,
    /// Every n-th message sent is delivered twice (0: none).
    duplicate_every: usize,
    receipts: u64,
}

pub struct FakeSqs {
    state: Arc<Mutex<State>>,
    server: FakeServer,
}

impl FakeSqs {
    pub async fn start() -> FakeSqs {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move { serve(&state, &headers, &body) }
        });
        let server = FakeServer::start("fake sqs", app).await;
        FakeSqs { state, server }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Delivers every `n`-th message sent from now on twice.
    pub fn set_duplicates(&self, every: usize) {
        lock(&self.state).duplicate_every = every;
    }

    /// Messages waiting, and in flight.
    pub fn depth(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.visible.len(), state.in_flight.len())
    }
}

fn serve(state: &Mutex<State>, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut state = lock(state);
    let answer = match target.strip_prefix("AmazonSQS.").unwrap_or_default() {
        "CreateQueue" => {
            let name = request["QueueName"].as_str().unwrap_or("queue");
            json!({"QueueUrl": format!("http://fake-sqs/{name}")})
        }
        "SendMessageBatch" => {
            let mut successful = Vec::new();
            for entry in request["Entries"].as_array().into_iter().flatten() {
                state.sent += 1;
                let id = format!("m{}", state.sent);
                let body = entry["MessageBody"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let twice =
                    state.duplicate_every > 0 && state.sent.is_multiple_of(state.duplicate_every);
                if twice {
                    state.visible.push_back((id.clone(), body.clone()));
                }
                state.visible.push_back((id.clone(), body));
                successful
                    .push(json!({"Id": entry["Id"], "MessageId": id, "MD5OfMessageBody": ""}));
            }
            json!({"Successful": successful, "Failed": []})
        }
        "ReceiveMessage" => {
            let most = request["MaxNumberOfMessages"].as_u64().unwrap_or(1) as usize;
            let mut messages = Vec::new();
            while messages.len() < most {
                let Some((id, body)) = state.visible.pop_front() else {
                    break;
                };
                state.receipts += 1;
                let receipt = format!("r{}", state.receipts);
                state
                    .in_flight
                    .insert(receipt.clone(), (id.clone(), body.clone()));
                messages.push(json!({"MessageId": id, "ReceiptHandle": receipt, "Body": body}));
            }
            json!({ "Messages": messages })
        }
        "DeleteMessageBatch" => {
            let mut successful = Vec::new();
            for entry in request["Entries"].as_array().into_iter().flatten() {
                let receipt = entry["ReceiptHandle"].as_str().unwrap_or_default();
                state.in_flight.remove(receipt);
                successful.push(json!({"Id": entry["Id"]}));
            }
            json!({"Successful": successful, "Failed": []})
        }
        "ChangeMessageVisibility" => {
            let receipt = request["ReceiptHandle"].as_str().unwrap_or_default();
            if let Some(message) = state.in_flight.remove(receipt) {
                state.visible.push_back(message);
            }
            json!({})
        }
        other => {
            let error = json!({"__type": "com.amazonaws.sqs#InvalidAction", "message": other});
            return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
    };
    (
        [("content-type", "application/x-amz-json-1.0")],
        answer.to_string(),
    )
        .into_response()
}
