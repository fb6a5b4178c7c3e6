//! OpenAI: vision analysis of an image and its captions. One client per
//! tenant service set, over the process's pooled HTTP client; calls are
//! spaced per tenant by `AI_RATE_PER_MINUTE` and 429 / 5xx answers are
//! retried with the retry policy.

mod analysis;
mod pacing;
mod prompts;

pub use analysis::Analysis;
pub use pacing::Pacer;
pub use prompts::for_tenant as tenant_prompts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use analysis::strip_fence;

use crate::bounded::{self, Bound};
use crate::clock::Clock;
use crate::config::{AiConfig, Confirmation};
use crate::publishers::captions::CaptionSpec;
use crate::retry::{self, Policy, Step};
use crate::static_config::{AiPrompts, StaticConfig};

/// Four tries, 500 ms doubling between them; a `Retry-After` is waited for
/// up to 20 s.
const RETRY: Policy = Policy {
    attempts: 4,
    base: Duration::from_millis(500),
    cap: Duration::from_secs(20),
    jitter: 0.25,
    give_up_beyond_cap: false,
};

const VISION_TEMPERATURE: f64 = 0.4;
const VISION_MAX_TOKENS: u32 = 512;
const CAPTION_TEMPERATURE: f64 = 0.7;
const JSON_CAPTION_TEMPERATURE: f64 = 0.6;
const CAPTION_MAX_TOKENS: u32 = 600;

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
    prompts: AiPrompts,
    tenant: String,
    pacer: Arc<Pacer>,
    /// Each attempt's time, and how much of an answer is read.
    bound: Bound,
    clock: Clock,
}

impl AiClient {
    /// A client of `base_url` (`OPENAI_BASE_URL`) for `tenant` with its key
    /// and AI settings, and the embedded prompts where those have none; its
    /// calls keep the pace of `pacer`, each attempt within `bound`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: SecretString,
        config: AiConfig,
        tenant: &str,
        pacer: Arc<Pacer>,
        bound: Bound,
        clock: Clock,
    ) -> Self {
        let prompts = tenant_prompts(
            &config,
            &Confirmation::default(),
            &StaticConfig::defaults().prompts,
        );
        Self {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            config,
            prompts,
            tenant: tenant.to_string(),
            pacer,
            bound,
            clock,
        }
    }

    /// The same client with `prompts` (the tenant's, over the static ones).
    pub fn with_prompts(mut self, prompts: AiPrompts) -> Self {
        self.prompts = prompts;
        self
    }

    /// Vision analysis of the image at `image_url` (a temporary link).
    pub async fn analyze(&self, image_url: &str, request_id: &str) -> Result<Analysis, AiError> {
        let body = json!({
            "model": self.config.vision_model,
            "messages": [
                {"role": "system", "content": self.prompts.vision_system},
                {"role": "user", "content": [
                    {"type": "text", "text": self.prompts.vision_user},
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
            role = self.prompts.caption_role,
            analysis = analysis.for_prompt(),
            platform = spec.platform,
            style = spec.style,
            max = spec.max_length,
        )
    }

    fn system_prompt(&self) -> &str {
        &self.prompts.caption_system
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
        let system = &self.prompts.sd_caption_system;
        let role = &self.prompts.sd_caption_role;
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
        let model = body["model"].as_str().unwrap_or("");
        let body = &body;
        let finished = retry::run(&RETRY, &self.clock, |attempt| async move {
            self.pacer.wait_turn(&self.tenant).await;
            let started = Instant::now();
            let sent = self
                .http
                .post(&self.url)
                .bearer_auth(self.api_key.expose_secret())
                .timeout(self.bound.time)
                .json(body)
                .send()
                .await;
            let step = match sent {
                Ok(response) if response.status().is_success() => {
                    let latency_ms = started.elapsed().as_millis() as u64;
                    tracing::info!(request_id, tenant = %self.tenant, model, latency_ms, attempts = attempt, "openai call");
                    match bounded::json::<Value>(response, self.bound.bytes).await {
                        Ok(value) => return Step::Done(value),
                        Err(error) if error.is_transient() => {
                            Step::retry(AiError::Unavailable(error.to_string()))
                        }
                        Err(error) => return Step::Fail(AiError::BadAnswer(error.to_string())),
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    let after = retry::retry_after(response.headers(), self.clock.now());
                    let message = error_message(response, self.bound.bytes).await;
                    if !retryable(status) {
                        return Step::Fail(AiError::Rejected {
                            status: status.as_u16(),
                            message,
                        });
                    }
                    Step::Retry {
                        error: AiError::Unavailable(format!("{status}: {message}")),
                        after,
                    }
                }
                Err(error) => Step::retry(AiError::Unavailable(error.without_url().to_string())),
            };
            if let Step::Retry { error, .. } = &step {
                tracing::warn!(request_id, tenant = %self.tenant, attempt, %error, "openai call failed");
            }
            step
        })
        .await;
        finished.result?["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| AiError::BadAnswer("no message content".into()))
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

/// OpenAI's `{"error": {"message", "type", "code"}}`, or the status alone;
/// at most `limit` bytes of the answer are read.
async fn error_message(response: reqwest::Response, limit: usize) -> String {
    let status = response.status();
    let value: Value = bounded::json(response, limit).await.unwrap_or(Value::Null);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_parameters_per_model_family() {
        let gpt = with_sampling(json!({}), "gpt-4o", 0.4, 512);
        assert_eq!(gpt["max_tokens"], 512);
        assert!((gpt["temperature"].as_f64().unwrap() - 0.4).abs() < 1e-6);
        let o3 = with_sampling(json!({}), "o3-mini", 0.4, 512);
        assert_eq!(o3["max_completion_tokens"], 512);
        assert!(o3.get("temperature").is_none());
    }
}
