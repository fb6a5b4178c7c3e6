//! A fake of OpenAI's chat completions API (`POST /chat/completions`) over
//! real HTTP on 127.0.0.1, answering the three calls the publisher makes:
//!
//! - vision (a user message with an `image_url` part): the analysis JSON, or a
//!   plain-text answer when [`FakeOpenAi::set_vision_non_json`] is on;
//! - the combined caption call (`response_format` `json_object`):
//!   `{"caption", "sd_caption"}`, or a broken answer when
//!   [`FakeOpenAi::set_caption_json_broken`] is on;
//! - the plain caption call: the caption as text.
//!
//! Each request is recorded ([`FakeOpenAi::calls`]), then checked in this order:
//! scripted failures ([`FakeOpenAi::fail_next`]: 429 with `retry-after-ms`, or
//! 5xx), the bearer key (401), the body (400), each with OpenAI's error shape
//! `{"error": {"message", "type", "param", "code"}}`.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::fake_server::{lock, Fake};

/// The API key the fake accepts until told otherwise (the vermont sample's).
pub const API_KEY: &str = "sk-test-vermont-0123456789abcdefghijklmnop";
pub const CAPTION: &str = "Golden hour, jute and patience. What does stillness feel like to you?";
pub const SD_CAPTION: &str = "a person seated in jute rope, warm window light, film grain";

/// Which of the publisher's calls a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Vision,
    CaptionJson,
    Caption,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct OpenAiCall {
    pub kind: CallKind,
    pub model: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u64>,
    /// `response_format.type`, when given.
    pub response_format: Option<String>,
    pub image_url: Option<String>,
    /// The whole text the messages carry (system and user).
    pub prompt: String,
    pub authorized: bool,
    pub status: u16,
}

struct Data {
    api_key: String,
    vision: Value,
    vision_non_json: Option<String>,
    caption: String,
    sd_caption: String,
    caption_json_broken: bool,
    fail: Vec<u16>,
    calls: Vec<OpenAiCall>,
}

/// Handle on a running fake; the server stops when it is dropped.
pub struct FakeOpenAi(Fake<Data>);

/// The analysis the fake's vision call answers by default.
pub fn default_analysis() -> Value {
    json!({
        "description": "A seated figure tied in jute rope by a window",
        "mood": "calm",
        "tags": ["Rope", "#Shibari", "window light", "rope", "fine-art"],
        "nsfw": false,
        "safety_labels": [],
        "subject": "person in rope",
        "style": "fine art photography",
        "lighting": "warm window light",
        "camera": "35mm, shallow depth of field",
        "clothing_or_accessories": "jute rope",
        "aesthetic_terms": ["film grain", "muted tones"],
        "pose": "seated, head tilted",
        "composition": "rule of thirds",
        "background": "plain wall",
        "color_palette": "amber and brown"
    })
}

impl FakeOpenAi {
    pub async fn start() -> FakeOpenAi {
        let data = Data {
            api_key: API_KEY.to_string(),
            vision: default_analysis(),
            vision_non_json: None,
            caption: CAPTION.to_string(),
            sd_caption: SD_CAPTION.to_string(),
            caption_json_broken: false,
            fail: Vec::new(),
            calls: Vec::new(),
        };
        let routes = Router::new().route("/chat/completions", post(completions));
        FakeOpenAi(Fake::start("fake openai", data, routes).await)
    }

    /// `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.0.url()
    }

    pub fn set_api_key(&self, key: &str) {
        self.0.data().api_key = key.to_string();
    }

    pub fn set_vision(&self, analysis: Value) {
        self.0.data().vision = analysis;
    }

    /// Vision answers this text instead of JSON (`None`: JSON again).
    pub fn set_vision_non_json(&self, text: Option<&str>) {
        self.0.data().vision_non_json = text.map(str::to_string);
    }

    pub fn set_captions(&self, caption: &str, sd_caption: &str) {
        let mut data = self.0.data();
        data.caption = caption.to_string();
        data.sd_caption = sd_caption.to_string();
    }

    /// The combined caption call answers something that is not JSON.
    pub fn set_caption_json_broken(&self, broken: bool) {
        self.0.data().caption_json_broken = broken;
    }

    /// The next requests fail, one per status given (429 or 5xx).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.0.data().fail.extend_from_slice(statuses);
    }

    pub fn calls(&self) -> Vec<OpenAiCall> {
        self.0.data().calls.clone()
    }

    pub fn calls_of(&self, kind: CallKind) -> Vec<OpenAiCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.kind == kind)
            .collect()
    }
}

fn error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, Json(body)).into_response()
}

async fn completions(
    State(data): State<Arc<Mutex<Data>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let mut prompt = String::new();
    let mut image_url = None;
    for message in &messages {
        match &message["content"] {
            Value::String(text) => prompt.push_str(text),
            Value::Array(parts) => {
                for part in parts {
                    match part["type"].as_str() {
                        Some("text") => prompt.push_str(part["text"].as_str().unwrap_or("")),
                        Some("image_url") => {
                            image_url = part["image_url"]["url"].as_str().map(str::to_string)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        prompt.push('\n');
    }
    let response_format = request["response_format"]["type"]
        .as_str()
        .map(str::to_string);
    let kind = match (&image_url, response_format.as_deref()) {
        (Some(_), _) => CallKind::Vision,
        (None, Some("json_object")) => CallKind::CaptionJson,
        _ => CallKind::Caption,
    };
    let mut data = lock(&data);
    let expected = format!("Bearer {}", data.api_key);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    let mut call = OpenAiCall {
        kind,
        model: request["model"].as_str().unwrap_or("").to_string(),
        temperature: request["temperature"].as_f64(),
        max_tokens: request["max_tokens"]
            .as_u64()
            .or(request["max_completion_tokens"].as_u64()),
        response_format: response_format.clone(),
        image_url,
        prompt,
        authorized,
        status: 200,
    };
    let failure = (!data.fail.is_empty()).then(|| data.fail.remove(0));
    let response = if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = if status == StatusCode::TOO_MANY_REQUESTS {
            error(
                status,
                "Rate limit reached for requests",
                "requests",
                Some("rate_limit_exceeded"),
            )
        } else {
            error(
                status,
                "The server had an error while processing your request.",
                "server_error",
                None,
            )
        };
        response
            .headers_mut()
            .insert("retry-after-ms", header::HeaderValue::from_static("20"));
        response
    } else if !authorized {
        error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        )
    } else if call.model.is_empty() || messages.is_empty() {
        error(
            StatusCode::BAD_REQUEST,
            "you must provide a model and messages",
            "invalid_request_error",
            None,
        )
    } else if kind != CallKind::Caption && !call.prompt.to_lowercase().contains("json") {
        // OpenAI's own rule for JSON mode.
        error(
            StatusCode::BAD_REQUEST,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "invalid_request_error",
            None,
        )
    } else {
        let content = match kind {
            CallKind::Vision => data
                .vision_non_json
                .clone()
                .unwrap_or_else(|| data.vision.to_string()),
            CallKind::CaptionJson if data.caption_json_broken => {
                "Here is your caption: something lovely".to_string()
            }
            CallKind::CaptionJson => {
                json!({"caption": data.caption, "sd_caption": data.sd_caption}).to_string()
            }
            CallKind::Caption => data.caption.clone(),
        };
        Json(json!({
            "id": format!("chatcmpl-fake-{}", data.calls.len()),
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": call.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}
        }))
        .into_response()
    };
    call.status = response.status().as_u16();
    data.calls.push(call);
    response
}
