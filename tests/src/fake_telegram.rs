//! A fake of the Telegram Bot API's `sendPhoto` over real HTTP on 127.0.0.1:
//! `POST /bot<token>/sendPhoto`, multipart `chat_id`, `photo`, `caption`.
//!
//! Checks, in order: down ([`FakeTelegram::set_down`]: 502), scripted
//! failures ([`FakeTelegram::fail_next`]; 429 carries
//! `parameters.retry_after`), the token (401), the chat (400 `chat not
//! found`), the photo (400 unless it is an image), the caption (400 over
//! 1024 characters). Errors have Telegram's shape
//! `{"ok": false, "error_code", "description"}`; a sent photo answers
//! `{"ok": true, "result": {"message_id", ...}}` and is recorded.

use std::sync::{Arc, Mutex};

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::fake_server::{lock, Fake};

/// The vermont sample's bot token and channel.
pub const BOT_TOKEN: &str = "123456789:AAH-vermont-bot-token-0123456789abcd";
pub const CHAT_ID: &str = "-1001234567890";

/// A photo the fake accepted.
#[derive(Debug, Clone)]
pub struct SentPhoto {
    pub message_id: u64,
    pub chat_id: String,
    pub caption: Option<String>,
    pub photo: Vec<u8>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub width: u32,
    pub height: u32,
}

struct Data {
    token: String,
    chats: Vec<String>,
    down: bool,
    fail: Vec<(u16, String)>,
    sent: Vec<SentPhoto>,
    requests: usize,
    next_id: u64,
}

/// Handle on a running fake; the server stops when it is dropped.
pub struct FakeTelegram(Fake<Data>);

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let data = Data {
            token: BOT_TOKEN.to_string(),
            chats: vec![CHAT_ID.to_string()],
            down: false,
            fail: Vec::new(),
            sent: Vec::new(),
            requests: 0,
            next_id: 100,
        };
        let routes = Router::new()
            .fallback(route)
            .layer(DefaultBodyLimit::max(50 * 1024 * 1024));
        FakeTelegram(Fake::start("fake telegram", data, routes).await)
    }

    /// `TELEGRAM_API_URL`.
    pub fn base_url(&self) -> String {
        self.0.url()
    }

    pub fn set_token(&self, token: &str) {
        self.0.data().token = token.to_string();
    }

    /// The chats the bot may post to.
    pub fn set_chats(&self, chats: &[&str]) {
        self.0.data().chats = chats.iter().map(|c| c.to_string()).collect();
    }

    /// Every request answers 502 Bad Gateway while down.
    pub fn set_down(&self, down: bool) {
        self.0.data().down = down;
    }

    /// The next requests fail, one per `(error_code, description)`.
    pub fn fail_next(&self, code: u16, description: &str) {
        self.0.data().fail.push((code, description.to_string()));
    }

    pub fn sent(&self) -> Vec<SentPhoto> {
        self.0.data().sent.clone()
    }

    /// Requests received, whatever their answer.
    pub fn requests(&self) -> usize {
        self.0.data().requests
    }
}

fn failure(code: u16, description: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if code == 429 {
        body["parameters"] = json!({"retry_after": 1});
    }
    (status, Json(body)).into_response()
}

async fn route(
    State(data): State<Arc<Mutex<Data>>>,
    uri: Uri,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let (token, down, scripted) = {
        let mut d = lock(&data);
        d.requests += 1;
        let scripted = (!d.fail.is_empty()).then(|| d.fail.remove(0));
        (d.token.clone(), d.down, scripted)
    };
    if down {
        return failure(502, "Bad Gateway");
    }
    if let Some((code, description)) = scripted {
        return failure(code, &description);
    }
    let Some((given, method)) = uri
        .path()
        .strip_prefix("/bot")
        .and_then(|rest| rest.split_once('/'))
    else {
        return failure(404, "Not Found");
    };
    if given != token {
        return failure(401, "Unauthorized");
    }
    if method != "sendPhoto" {
        return failure(404, "Not Found: method not found");
    }
    let Ok(mut multipart) = multipart else {
        return failure(400, "Bad Request: there is no photo in the request");
    };
    let (mut chat_id, mut caption, mut photo) = (None, None, None);
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        let Ok(bytes) = field.bytes().await else {
            return failure(400, "Bad Request: can't parse the request");
        };
        match name.as_str() {
            "chat_id" => chat_id = Some(String::from_utf8_lossy(&bytes).to_string()),
            "caption" => caption = Some(String::from_utf8_lossy(&bytes).to_string()),
            "photo" => photo = Some((bytes.to_vec(), file_name, content_type)),
            _ => {}
        }
    }
    let mut d = lock(&data);
    let Some(chat_id) = chat_id.filter(|c| d.chats.contains(c)) else {
        return failure(400, "Bad Request: chat not found");
    };
    let Some((photo, file_name, content_type)) = photo else {
        return failure(400, "Bad Request: there is no photo in the request");
    };
    let Ok(image) = image::load_from_memory(&photo) else {
        return failure(400, "Bad Request: IMAGE_PROCESS_FAILED");
    };
    if caption.as_ref().is_some_and(|c| c.chars().count() > 1024) {
        return failure(400, "Bad Request: message caption is too long");
    }
    d.next_id += 1;
    let message_id = d.next_id;
    let answer: Value = json!({
        "ok": true,
        "result": {
            "message_id": message_id,
            "chat": {"id": chat_id, "type": "channel"},
            "date": 1_764_000_000,
            "photo": [{"file_id": format!("photo-{message_id}"), "width": image.width(), "height": image.height()}],
            "caption": caption,
        }
    });
    d.sent.push(SentPhoto {
        message_id,
        chat_id,
        caption,
        photo,
        file_name,
        content_type,
        width: image.width(),
        height: image.height(),
    });
    Json(answer).into_response()
}
