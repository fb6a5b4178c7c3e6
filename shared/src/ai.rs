//! OpenAI: vision analysis of an image and its captions (publish.md §External
//! services). One client per tenant and use, over the process's pooled HTTP
//! client; calls are spaced per tenant by `AI_RATE_PER_MINUTE` and 429 / 5xx
//! answers are retried with backoff.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Value};

use crate::app::{App, TenantContext};
use crate::config::AiConfig;
use crate::publishers::captions::CaptionSpec;
use crate::secrets::Role;

const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A `Retry-After` longer than this is not waited for in full.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

const VISION_TEMPERATURE: f64 = 0.4;
const VISION_MAX_TOKENS: u32 = 512;
const CAPTION_TEMPERATURE: f64 = 0.7;
const JSON_CAPTION_TEMPERATURE: f64 = 0.6;
const CAPTION_MAX_TOKENS: u32 = 600;

const DEFAULT_SYSTEM_PROMPT: &str = "You write captions for fine-art photographs for social media.";
const DEFAULT_ROLE_PROMPT: &str = "Write a caption for this photograph.";
const DEFAULT_SD_SYSTEM_PROMPT: &str =
    "You write training captions for image generation models: precise, literal, comma-separated.";
const DEFAULT_SD_ROLE_PROMPT: &str = "Write an sd_caption for this photograph.";

/// The keys the vision call must answer with, in the prompt's order.
const ANALYSIS_KEYS: [&str; 15] = [
    "description",
    "mood",
    "tags",
    "nsfw",
    "safety_labels",
    "subject",
    "style",
    "lighting",
    "camera",
    "clothing_or_accessories",
    "aesthetic_terms",
    "pose",
    "composition",
    "background",
    "color_palette",
];

/// What the vision model saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Analysis {
    pub description: String,
    pub mood: String,
    pub tags: Vec<String>,
    pub nsfw: bool,
    pub safety_labels: Vec<String>,
    pub subject: String,
    pub style: String,
    pub lighting: String,
    pub camera: String,
    pub clothing_or_accessories: String,
    pub aesthetic_terms: Vec<String>,
    pub pose: String,
    pub composition: String,
    pub background: String,
    pub color_palette: String,
}

impl Analysis {
    /// Reads the model's answer; a non-JSON answer becomes the fallback analysis.
    pub fn from_answer(answer: &str) -> Analysis {
        match serde_json::from_str::<Value>(strip_fence(answer)) {
            Ok(Value::Object(map)) => {
                let text = |key: &str| text_of(map.get(key));
                let list = |key: &str| list_of(map.get(key));
                Analysis {
                    description: text("description"),
                    mood: text("mood"),
                    tags: list("tags"),
                    nsfw: match map.get("nsfw") {
                        Some(Value::Bool(b)) => *b,
                        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                        _ => false,
                    },
                    safety_labels: list("safety_labels"),
                    subject: text("subject"),
                    style: text("style"),
                    lighting: text("lighting"),
                    camera: text("camera"),
                    clothing_or_accessories: text("clothing_or_accessories"),
                    aesthetic_terms: list("aesthetic_terms"),
                    pose: text("pose"),
                    composition: text("composition"),
                    background: text("background"),
                    color_palette: text("color_palette"),
                }
            }
            _ => Analysis {
                description: answer.trim().chars().take(100).collect(),
                mood: "unknown".into(),
                ..Analysis::default()
            },
        }
    }

    /// A short text of the analysis for the caption prompt.
    fn for_prompt(&self) -> String {
        let mut lines = Vec::new();
        let mut push = |key: &str, value: String| {
            if !value.is_empty() {
                lines.push(format!("{key}: {value}"));
            }
        };
        push("description", self.description.clone());
        push("mood", self.mood.clone());
        push("tags", self.tags.join(", "));
        push("subject", self.subject.clone());
        push("style", self.style.clone());
        push("lighting", self.lighting.clone());
        push("pose", self.pose.clone());
        push("composition", self.composition.clone());
        push("aesthetic terms", self.aesthetic_terms.join(", "));
        lines.join("\n")
    }
}

/// Models sometimes wrap JSON in a Markdown code fence despite JSON mode.
fn strip_fence(answer: &str) -> &str {
    let trimmed = answer.trim();
    trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .map_or(trimmed, str::trim)
}

fn text_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Array(items)) => list_of(Some(&Value::Array(items.clone()))).join(", "),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn list_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// The captions generated for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Captions {
    pub caption: String,
    pub sd_caption: Option<String>,
    /// The model that wrote them (the sidecar's `model_version`).
    pub model: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// 429, 5xx or a transport failure, still failing after the retries.
    #[error("OpenAI unavailable: {0}")]
    Unavailable(String),
    /// Any other error answer (bad key, bad request): not retried.
    #[error("OpenAI rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("OpenAI answer unusable: {0}")]
    BadAnswer(String),
}

/// A tenant's OpenAI client.
pub struct AiClient {
    http: reqwest::Client,
    url: String,
    api_key: SecretString,
    config: AiConfig,
    tenant: String,
    spacing: Duration,
}

impl AiClient {
    /// `None` when analysis is off for the tenant or its OpenAI credential cannot
    /// be had (the credential is resolved on first use).
    pub async fn for_tenant(
        app: &App,
        tenant: &TenantContext,
        request_id: &str,
    ) -> Option<AiClient> {
        let config = &tenant.config.config;
        if !config.analysis_enabled() {
            return None;
        }
        let ai = config.ai.clone()?;
        let credential = tenant.services.credential(Role::Openai, request_id).await?;
        Some(AiClient {
            http: app.http.clone(),
            url: format!(
                "{}/chat/completions",
                app.settings.services.openai.trim_end_matches('/')
            ),
            api_key: credential.secret().clone(),
            config: ai,
            tenant: tenant.config.tenant.clone(),
            spacing: spacing(app.settings.ai_rate_per_minute),
        })
    }

    /// Vision analysis of the image at `image_url` (a temporary link).
    pub async fn analyze(&self, image_url: &str, request_id: &str) -> Result<Analysis, AiError> {
        let prompt = format!(
            "Analyze this photograph. Answer with one JSON object with exactly these keys: {}. \
             tags, safety_labels and aesthetic_terms are arrays of short strings; nsfw is a boolean; \
             the others are short strings.",
            ANALYSIS_KEYS.join(", ")
        );
        let body = json!({
            "model": self.config.vision_model,
            "messages": [
                {"role": "system", "content": "You are a careful art critic and image analyst. You answer in JSON."},
                {"role": "user", "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": image_url}},
                ]},
            ],
            "response_format": {"type": "json_object"},
        });
        let body = with_sampling(
            body,
            &self.config.vision_model,
            VISION_TEMPERATURE,
            VISION_MAX_TOKENS,
        );
        let answer = self.complete(body, request_id).await?;
        Ok(Analysis::from_answer(&answer))
    }

    /// The caption (and, when enabled, the sd_caption) for an analysed image.
    pub async fn caption(
        &self,
        analysis: &Analysis,
        spec: &CaptionSpec,
        request_id: &str,
    ) -> Result<Captions, AiError> {
        let model = self.config.caption_model.clone();
        if self.config.sd_caption_enabled && self.config.sd_caption_single_call_enabled {
            match self.caption_and_sd(analysis, spec, request_id).await {
                Ok(captions) => return Ok(captions),
                Err(error) => tracing::warn!(
                    request_id, tenant = %self.tenant, %error,
                    "combined caption call failed; falling back to the plain caption call"
                ),
            }
            let caption = self.plain_caption(analysis, spec, request_id).await?;
            return Ok(Captions {
                caption,
                sd_caption: None,
                model,
            });
        }
        let caption = self.plain_caption(analysis, spec, request_id).await?;
        let sd_caption = if self.config.sd_caption_enabled {
            match self.sd_caption(analysis, request_id).await {
                Ok(sd) => Some(sd),
                Err(error) => {
                    tracing::warn!(request_id, tenant = %self.tenant, %error, "sd_caption call failed");
                    None
                }
            }
        } else {
            None
        };
        let model = match &sd_caption {
            Some(_) => self.sd_model().to_string(),
            None => model,
        };
        Ok(Captions {
            caption,
            sd_caption,
            model,
        })
    }

    fn sd_model(&self) -> &str {
        self.config
            .sd_caption_model
            .as_deref()
            .unwrap_or(&self.config.caption_model)
    }

    fn caption_prompt(&self, analysis: &Analysis, spec: &CaptionSpec) -> String {
        let hashtags = if spec.hashtags.is_empty() {
            "none (write no hashtags)".to_string()
        } else {
            format!("end with exactly these: {}", spec.hashtags)
        };
        format!(
            "{role}\n\nImage analysis:\n{analysis}\n\nPlatform: {platform}\nStyle: {style}\n\
             Hashtags: {hashtags}\nMaximum length: {max} characters.",
            role = self
                .config
                .role_prompt
                .as_deref()
                .unwrap_or(DEFAULT_ROLE_PROMPT),
            analysis = analysis.for_prompt(),
            platform = spec.platform,
            style = spec.style,
            max = spec.max_length,
        )
    }

    fn system_prompt(&self) -> &str {
        self.config
            .system_prompt
            .as_deref()
            .unwrap_or(DEFAULT_SYSTEM_PROMPT)
    }

    async fn caption_and_sd(
        &self,
        analysis: &Analysis,
        spec: &CaptionSpec,
        request_id: &str,
    ) -> Result<Captions, AiError> {
        let prompt = format!(
            "{}\n\nAlso write an sd_caption: a literal, comma-separated description of the \
             photograph for image generation training. Answer with one JSON object: \
             {{\"caption\": \"...\", \"sd_caption\": \"...\"}}.",
            self.caption_prompt(analysis, spec)
        );
        let model = &self.config.caption_model;
        let body = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": prompt},
            ],
            "response_format": {"type": "json_object"},
        });
        let body = with_sampling(body, model, JSON_CAPTION_TEMPERATURE, CAPTION_MAX_TOKENS);
        let answer = self.complete(body, request_id).await?;
        let value: Value = serde_json::from_str(strip_fence(&answer))
            .map_err(|_| AiError::BadAnswer("the combined caption answer is not JSON".into()))?;
        let field = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let caption = field("caption").ok_or_else(|| {
            AiError::BadAnswer("the combined caption answer has no caption".into())
        })?;
        Ok(Captions {
            caption,
            sd_caption: field("sd_caption"),
            model: model.clone(),
        })
    }

    async fn plain_caption(
        &self,
        analysis: &Analysis,
        spec: &CaptionSpec,
        request_id: &str,
    ) -> Result<String, AiError> {
        let model = &self.config.caption_model;
        let body = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": self.caption_prompt(analysis, spec)},
            ],
        });
        let body = with_sampling(body, model, CAPTION_TEMPERATURE, CAPTION_MAX_TOKENS);
        let answer = self.complete(body, request_id).await?;
        Ok(unquote(answer.trim()).to_string())
    }

    async fn sd_caption(&self, analysis: &Analysis, request_id: &str) -> Result<String, AiError> {
        let model = self.sd_model();
        let system = self
            .config
            .sd_caption_system_prompt
            .as_deref()
            .unwrap_or(DEFAULT_SD_SYSTEM_PROMPT);
        let role = self
            .config
            .sd_caption_role_prompt
            .as_deref()
            .unwrap_or(DEFAULT_SD_ROLE_PROMPT);
        let body = json!({
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": format!("{role}\n\nImage analysis:\n{}", analysis.for_prompt())},
            ],
        });
        let body = with_sampling(body, model, CAPTION_TEMPERATURE, CAPTION_MAX_TOKENS);
        Ok(self.complete(body, request_id).await?.trim().to_string())
    }

    /// One chat completion: spaced, retried, the answer's text.
    async fn complete(&self, body: Value, request_id: &str) -> Result<String, AiError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            wait_turn(&self.tenant, self.spacing).await;
            let started = Instant::now();
            let sent = self
                .http
                .post(&self.url)
                .bearer_auth(self.api_key.expose_secret())
                .timeout(ATTEMPT_TIMEOUT)
                .json(&body)
                .send()
                .await;
            let (wait, error) = match sent {
                Ok(response) if response.status().is_success() => {
                    let value: Value = response
                        .json()
                        .await
                        .map_err(|e| AiError::BadAnswer(e.without_url().to_string()))?;
                    tracing::info!(
                        request_id, tenant = %self.tenant, model = body["model"].as_str().unwrap_or(""),
                        latency_ms = started.elapsed().as_millis() as u64, attempts = attempt,
                        "openai call"
                    );
                    return value["choices"][0]["message"]["content"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| AiError::BadAnswer("no message content".into()));
                }
                Ok(response) => {
                    let status = response.status();
                    let wait = retry_after(response.headers());
                    let message = error_message(response).await;
                    if !retryable(status) {
                        return Err(AiError::Rejected {
                            status: status.as_u16(),
                            message,
                        });
                    }
                    (wait, format!("{status}: {message}"))
                }
                Err(error) => (None, error.without_url().to_string()),
            };
            tracing::warn!(request_id, tenant = %self.tenant, attempt, %error, "openai call failed");
            if attempt >= ATTEMPTS {
                return Err(AiError::Unavailable(error));
            }
            let jitter =
                Duration::from_millis(rand::random_range(0..=backoff.as_millis() as u64 / 4));
            tokio::time::sleep(wait.unwrap_or(backoff + jitter)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}

/// Reasoning models (o-series, gpt-5) take no temperature and count output
/// tokens as `max_completion_tokens`.
fn with_sampling(mut body: Value, model: &str, temperature: f64, max_tokens: u32) -> Value {
    let reasoning = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|p| model.starts_with(p));
    if reasoning {
        body["max_completion_tokens"] = json!(max_tokens);
    } else {
        body["temperature"] = json!(temperature);
        body["max_tokens"] = json!(max_tokens);
    }
    body
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `retry-after-ms` or `retry-after` (seconds), capped.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let wait = number("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| number(RETRY_AFTER.as_str()))?;
    (wait.is_finite() && wait >= 0.0).then(|| Duration::from_secs_f64(wait).min(MAX_RETRY_AFTER))
}

/// OpenAI's `{"error": {"message", "type", "code"}}`, or the status alone.
async fn error_message(response: reqwest::Response) -> String {
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    let error = &value["error"];
    match (
        error["message"].as_str(),
        error["code"].as_str().or(error["type"].as_str()),
    ) {
        (Some(message), Some(code)) => format!("{code}: {message}"),
        (Some(message), None) => message.to_string(),
        _ => status.to_string(),
    }
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

fn spacing(rate_per_minute: u32) -> Duration {
    match rate_per_minute {
        0 => Duration::ZERO,
        rate => Duration::from_secs(60) / rate,
    }
}

/// The next free call slot per tenant. Process-wide, like the Lambda instance
/// it describes: every client of a tenant in this process shares its pace.
static NEXT_SLOT: LazyLock<Mutex<HashMap<String, Instant>>> = LazyLock::new(Mutex::default);

/// Waits until this tenant may call again and books the slot after it.
async fn wait_turn(tenant: &str, spacing: Duration) {
    if spacing.is_zero() {
        return;
    }
    let slot = {
        let mut slots = NEXT_SLOT.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if slots.len() > 10_000 {
            slots.retain(|_, next| *next > now);
        }
        let slot = slots
            .get(tenant)
            .copied()
            .filter(|next| *next > now)
            .unwrap_or(now);
        slots.insert(tenant.to_string(), slot + spacing);
        slot
    };
    tokio::time::sleep_until(slot.into()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_reads_every_key_leniently() {
        let answer = r#"{"description":"A figure in rope","mood":"calm","tags":["rope"," shibari ",""],
            "nsfw":false,"safety_labels":[],"subject":"person","style":"fine art","lighting":"soft",
            "camera":"35mm","clothing_or_accessories":["jute rope","bracelet"],"aesthetic_terms":"moody, grainy",
            "pose":"kneeling","composition":"centered","background":"dark","color_palette":"warm"}"#;
        let a = Analysis::from_answer(answer);
        assert_eq!(a.description, "A figure in rope");
        assert_eq!(a.tags, ["rope", "shibari"]);
        assert_eq!(a.clothing_or_accessories, "jute rope, bracelet");
        assert_eq!(a.aesthetic_terms, ["moody", "grainy"]);
        assert!(!a.nsfw);
        assert_eq!(a.color_palette, "warm");
        let fenced = Analysis::from_answer("```json\n{\"mood\":\"x\",\"nsfw\":\"true\"}\n```");
        assert_eq!((fenced.mood.as_str(), fenced.nsfw), ("x", true));
    }

    #[test]
    fn non_json_answer_falls_back() {
        let long = "word ".repeat(40);
        let a = Analysis::from_answer(&long);
        assert_eq!(a.description.chars().count(), 100);
        assert_eq!(a.mood, "unknown");
        assert!(a.tags.is_empty());
        assert_eq!(Analysis::from_answer("[1,2]").mood, "unknown");
    }

    #[test]
    fn sampling_parameters_per_model_family() {
        let gpt = with_sampling(json!({}), "gpt-4o", 0.4, 512);
        assert_eq!(gpt["max_tokens"], 512);
        assert!((gpt["temperature"].as_f64().unwrap() - 0.4).abs() < 1e-6);
        let o3 = with_sampling(json!({}), "o3-mini", 0.4, 512);
        assert_eq!(o3["max_completion_tokens"], 512);
        assert!(o3.get("temperature").is_none());
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        headers.insert("retry-after-ms", "9999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
    }

    #[tokio::test]
    async fn calls_are_spaced_per_tenant() {
        let gap = Duration::from_millis(60);
        let started = Instant::now();
        for _ in 0..3 {
            wait_turn("spacing-test-a", gap).await;
        }
        assert!(
            started.elapsed() >= Duration::from_millis(120),
            "{:?}",
            started.elapsed()
        );
        let other = Instant::now();
        wait_turn("spacing-test-b", gap).await;
        assert!(
            other.elapsed() < Duration::from_millis(50),
            "another tenant is not held up"
        );
        assert_eq!(spacing(20), Duration::from_secs(3));
        assert_eq!(spacing(0), Duration::ZERO);
    }
}
