//! Process settings, read once from the environment at start
//! (`docs/configuration.md`).
//! The variable names are a contract shared with the Python Publisher V2.
//!
//! Errors name the variable and, for booleans and numbers, the bad value; JSON
//! errors give the position only, and secrets are never echoed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::StandaloneEnv;
use crate::static_config::{StaticConfig, StaticConfigError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("{var} is required{context}")]
    Missing { var: &'static str, context: String },
    #[error("{var}: invalid boolean {value:?} (use 1/true/yes/on or 0/false/no/off)")]
    BadBool { var: &'static str, value: String },
    #[error("{var}: invalid number {value:?}")]
    BadNumber { var: &'static str, value: String },
    #[error("{var}: invalid JSON at line {line}, column {column}: {reason}")]
    BadJson {
        var: &'static str,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{var}: {reason}")]
    Invalid { var: &'static str, reason: String },
    /// A file of `PV2_STATIC_CONFIG_DIR`: the error names the file, key and line.
    #[error("PV2_STATIC_CONFIG_DIR: {0}")]
    Static(#[from] StaticConfigError),
}

/// Where tenant configuration comes from.
#[derive(Debug, Clone)]
pub enum Mode {
    /// One tenant, configured by the environment.
    Standalone(Box<StandaloneSettings>),
    /// Every tenant, configured by the orchestrator.
    Orchestrated(OrchestratorSettings),
}

#[derive(Debug, Clone)]
pub struct StandaloneSettings {
    /// Only this host is served when set (normalized).
    pub host: Option<String>,
    pub env: StandaloneEnv,
    /// Standalone secrets by variable name; the config's refs are these names.
    pub secrets: BTreeMap<&'static str, SecretString>,
}

#[derive(Debug, Clone)]
pub struct OrchestratorSettings {
    pub base_url: String,
    pub token: SecretString,
    pub secondary_token: Option<SecretString>,
    pub prefer_post: bool,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// `LOCAL_TENANT_STORAGE_DIR`: local runs only. Set, an envelope may ask
    /// for the storage provider `local`: the tenant's folder in it.
    pub local_storage_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub runtime_max_size: u64,
    pub max_stale: Duration,
    pub negative_ttl: Duration,
    pub ttl_min: Duration,
    pub ttl_max: Duration,
    pub credential_cache_enabled: bool,
    pub credential_ttl: Duration,
    pub credential_max_size: u64,
    pub tenant_max_size: u64,
    pub tenant_ttl: Duration,
}

impl CacheSettings {
    /// The runtime TTL from the orchestrator's `ttl_seconds`: 0 or absent
    /// means the default 600 s, then clamped to the configured bounds.
    pub fn runtime_ttl(&self, ttl_seconds: Option<u64>) -> Duration {
        let ttl = match ttl_seconds {
            None | Some(0) => Duration::from_secs(600),
            Some(s) => Duration::from_secs(s),
        };
        ttl.clamp(self.ttl_min, self.ttl_max)
    }
}

/// How an admin logs in on the web function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Auth0,
    Password,
    None,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Auth0 => "auth0",
            AuthMode::Password => "password",
            AuthMode::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Auth0Settings {
    pub domain: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The redirect URI, `{host}` standing for the request's host; `None`:
    /// the request's own `/auth/callback`.
    pub callback_url: Option<String>,
    pub admin_emails: Vec<String>,
    pub issuer_url: String,
}

#[derive(Debug, Clone)]
pub struct WebSettings {
    pub port: u16,
    pub admin_password: Option<SecretString>,
    /// Signs the admin cookie; a random per-process key under `WEB_DEBUG`.
    pub session_secret: Option<SecretString>,
    pub secure_cookies: bool,
    pub admin_cookie_ttl: Duration,
    pub auth_token: Option<SecretString>,
    pub auth_basic: Option<(String, SecretString)>,
    pub image_cache_ttl: Duration,
    pub debug: bool,
    pub auth0: Option<Auth0Settings>,
}

impl WebSettings {
    pub fn auth_mode(&self) -> AuthMode {
        if self.auth0.is_some() {
            AuthMode::Auth0
        } else if self.admin_password.is_some() {
            AuthMode::Password
        } else {
            AuthMode::None
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServiceUrls {
    pub dropbox_api: String,
    pub dropbox_content: String,
    pub openai: String,
    pub telegram: String,
    pub smtp_tls_ca_file: Option<PathBuf>,
    pub dropbox_app_key: Option<String>,
    pub dropbox_app_secret: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub base_domain: String,
    pub cache: CacheSettings,
    pub publisher_table: Option<String>,
    pub web: WebSettings,
    pub publish_hosts: Vec<String>,
    pub warmup_hosts: Vec<String>,
    pub ai_rate_per_minute: u32,
    pub services: ServiceUrls,
    pub log_format_json: bool,
    /// The static files (`PV2_STATIC_CONFIG_DIR`) over the embedded defaults.
    pub statics: Arc<StaticConfig>,
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of every metric.
    pub metrics_namespace: String,
    pub warmup: WarmupSettings,
}

/// How the warmup keeps the fleet fresh within the orchestrator's limits
/// (`docs/configuration.md`, Warmup).
#[derive(Debug, Clone)]
pub struct WarmupSettings {
    /// `WARMUP_INTERVAL_SECONDS`: the schedule's period; a copy that will be
    /// stale before the next run is refreshed now.
    pub interval: Duration,
    /// `WARMUP_CREDENTIAL_CHECK_SECONDS`: a credential is checked again
    /// after this long (at once when the config version changed).
    pub credential_check: Duration,
    /// `WARMUP_MAX_ORCHESTRATOR_RPS`: the fleet-wide ceiling on the
    /// warmup's orchestrator calls per second.
    pub max_orchestrator_rps: f64,
    /// `WARMUP_QUEUE_URL`: the SQS queue the scheduled run hands hosts to
    /// when they do not fit one invocation.
    pub queue_url: Option<String>,
    /// `WARMUP_QUEUE_MAX_CONCURRENCY`: the queue consumer's maximum
    /// concurrency; each consumer calls at the ceiling divided by it.
    pub queue_concurrency: u32,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let env = Env(&lookup);
        // Read first: its service limits are the defaults of variables below.
        let statics = StaticConfig::load(
            env.string("PV2_STATIC_CONFIG_DIR")
                .map(PathBuf::from)
                .as_deref(),
        )?;
        let base_domain = env
            .string("ORCHESTRATOR_BASE_DOMAIN")
            .map(|d| crate::host::normalize(&d))
            .unwrap_or_else(|| "shibari.photo".into());
        let mode = match env.string("ORCHESTRATOR_BASE_URL") {
            Some(url) if env.string("CONFIG_SOURCE").as_deref() != Some("env") => {
                Mode::Orchestrated(orchestrator_settings(&env, url)?)
            }
            _ => Mode::Standalone(Box::new(standalone_settings(&env)?)),
        };
        let in_lambda = env.string("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let log_format_json = match env.string("LOG_FORMAT").as_deref() {
            Some("json") => true,
            Some("pretty") => false,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    var: "LOG_FORMAT",
                    reason: format!("expected json or pretty, got {other:?}"),
                })
            }
            None => in_lambda,
        };
        Ok(Settings {
            mode,
            base_domain,
            cache: cache_settings(&env)?,
            publisher_table: env.string("PUBLISHER_TABLE"),
            web: web_settings(&env, &statics)?,
            publish_hosts: env.list("PUBLISH_HOSTS"),
            warmup_hosts: env.list("WARMUP_HOSTS"),
            ai_rate_per_minute: env
                .number("AI_RATE_PER_MINUTE", statics.services.ai_rate_per_minute)?,
            services: ServiceUrls {
                dropbox_api: env.url("DROPBOX_API_URL", "https://api.dropboxapi.com"),
                dropbox_content: env.url("DROPBOX_CONTENT_URL", "https://content.dropboxapi.com"),
                openai: env.url("OPENAI_BASE_URL", "https://api.openai.com/v1"),
                telegram: env.url("TELEGRAM_API_URL", "https://api.telegram.org"),
                smtp_tls_ca_file: env.string("SMTP_TLS_CA_FILE").map(PathBuf::from),
                dropbox_app_key: env.string("DROPBOX_APP_KEY"),
                dropbox_app_secret: env.secret("DROPBOX_APP_SECRET"),
            },
            log_format_json,
            statics: Arc::new(statics),
            metrics_namespace: env
                .string("METRICS_NAMESPACE")
                .unwrap_or_else(|| "Publisher".into()),
            warmup: warmup_settings(&env)?,
        })
    }

    /// The secret values this process holds from its environment, for the log
    /// redaction layer.
    pub fn secret_values(&self) -> Vec<&SecretString> {
        let mut out: Vec<&SecretString> = Vec::new();
        match &self.mode {
            Mode::Orchestrated(o) => {
                out.extend(std::iter::once(&o.token).chain(&o.secondary_token))
            }
            Mode::Standalone(s) => out.extend(s.secrets.values()),
        }
        let web = &self.web;
        out.extend(
            web.admin_password
                .iter()
                .chain(&web.session_secret)
                .chain(&web.auth_token),
        );
        out.extend(web.auth_basic.iter().map(|(_, pass)| pass));
        out.extend(web.auth0.iter().map(|a| &a.client_secret));
        out.extend(&self.services.dropbox_app_secret);
        out
    }
}

fn warmup_settings(env: &Env) -> Result<WarmupSettings, SettingsError> {
    let rps: f64 = env.number("WARMUP_MAX_ORCHESTRATOR_RPS", 20.0)?;
    if !(rps.is_finite() && rps > 0.0) {
        return Err(SettingsError::Invalid {
            var: "WARMUP_MAX_ORCHESTRATOR_RPS",
            reason: format!("expected a positive number of calls per second, got {rps}"),
        });
    }
    let concurrency: u32 = env.number("WARMUP_QUEUE_MAX_CONCURRENCY", 2)?;
    Ok(WarmupSettings {
        interval: Duration::from_secs(env.number::<u64>("WARMUP_INTERVAL_SECONDS", 300)?.max(1)),
        credential_check: Duration::from_secs(env.number("WARMUP_CREDENTIAL_CHECK_SECONDS", 3600)?),
        max_orchestrator_rps: rps,
        queue_url: env.string("WARMUP_QUEUE_URL"),
        queue_concurrency: concurrency.max(1),
    })
}

fn orchestrator_settings(env: &Env, url: String) -> Result<OrchestratorSettings, SettingsError> {
    let token = env
        .secret("ORCHESTRATOR_SERVICE_TOKEN")
        .ok_or(SettingsError::Missing {
            var: "ORCHESTRATOR_SERVICE_TOKEN",
            context: " when ORCHESTRATOR_BASE_URL is set".into(),
        })?;
    let max_attempts: u32 = env.number("ORCHESTRATOR_MAX_ATTEMPTS", 3)?;
    let timeout: u64 = env.number("ORCHESTRATOR_TIMEOUT_SECONDS", 5)?;
    Ok(OrchestratorSettings {
        base_url: url.trim_end_matches('/').to_string(),
        token,
        secondary_token: env.secret("ORCHESTRATOR_SERVICE_TOKEN_SECONDARY"),
        prefer_post: env.boolean("ORCHESTRATOR_PREFER_POST", true)?,
        timeout: Duration::from_secs(timeout.max(1)),
        max_attempts: max_attempts.max(1),
        local_storage_dir: env.string("LOCAL_TENANT_STORAGE_DIR").map(PathBuf::from),
    })
}

const STANDALONE_SECRETS: [&str; 4] = [
    "DROPBOX_REFRESH_TOKEN",
    "OPENAI_API_KEY",
    "TELEGRAM_BOT_TOKEN",
    "EMAIL_PASSWORD",
];

fn standalone_settings(env: &Env) -> Result<StandaloneSettings, SettingsError> {
    let local_dir = match env.string("STORAGE_PROVIDER").as_deref() {
        None | Some("dropbox") => None,
        Some("local") => Some(env.string("LOCAL_STORAGE_DIR").map(PathBuf::from).ok_or(
            SettingsError::Missing {
                var: "LOCAL_STORAGE_DIR",
                context: " when STORAGE_PROVIDER=local".into(),
            },
        )?),
        Some(other) => {
            return Err(SettingsError::Invalid {
                var: "STORAGE_PROVIDER",
                reason: format!("expected dropbox or local, got {other:?}"),
            })
        }
    };
    let secrets: BTreeMap<&'static str, SecretString> = STANDALONE_SECRETS
        .iter()
        .filter_map(|&name| env.secret(name).map(|s| (name, s)))
        .collect();
    let secrets_present: BTreeSet<&'static str> = secrets.keys().copied().collect();
    Ok(StandaloneSettings {
        host: env
            .string("STANDALONE_HOST")
            .map(|h| crate::host::normalize(&h)),
        env: StandaloneEnv {
            storage_provider_local_dir: local_dir,
            storage_paths: env.json("STORAGE_PATHS")?,
            publishers: env.json("PUBLISHERS")?,
            email_server: env.json("EMAIL_SERVER")?,
            openai_settings: env.json("OPENAI_SETTINGS")?,
            captionfile_settings: env.json("CAPTIONFILE_SETTINGS")?,
            confirmation_settings: env.json("CONFIRMATION_SETTINGS")?,
            content_settings: env.json("CONTENT_SETTINGS")?,
            feature_analyze_caption: env.boolean("FEATURE_ANALYZE_CAPTION", true)?,
            feature_publish: env.boolean("FEATURE_PUBLISH", true)?,
            feature_keep_curate: env.boolean("FEATURE_KEEP_CURATE", true)?,
            feature_remove_curate: env.boolean("FEATURE_REMOVE_CURATE", true)?,
            auto_view: env.boolean("AUTO_VIEW", false)?,
            secrets_present,
        },
        secrets,
    })
}

fn cache_settings(env: &Env) -> Result<CacheSettings, SettingsError> {
    let secs = |var, default| env.number(var, default).map(Duration::from_secs);
    let ttl_min = secs("RUNTIME_CONFIG_TTL_MIN_SECONDS", 1)?;
    let ttl_max = secs("RUNTIME_CONFIG_TTL_MAX_SECONDS", 3600)?;
    if ttl_min > ttl_max {
        return Err(SettingsError::Invalid {
            var: "RUNTIME_CONFIG_TTL_MIN_SECONDS",
            reason: "greater than RUNTIME_CONFIG_TTL_MAX_SECONDS".into(),
        });
    }
    Ok(CacheSettings {
        runtime_max_size: env.number("RUNTIME_CONFIG_CACHE_MAX_SIZE", 1000)?,
        max_stale: secs("RUNTIME_CONFIG_MAX_STALE_SECONDS", 3600)?,
        negative_ttl: secs("RUNTIME_CONFIG_NEGATIVE_TTL_SECONDS", 30)?,
        ttl_min,
        ttl_max,
        credential_cache_enabled: env.boolean("CREDENTIAL_CACHE_ENABLED", true)?,
        credential_ttl: secs("CREDENTIAL_CACHE_TTL_SECONDS", 600)?,
        credential_max_size: env.number("CREDENTIAL_CACHE_MAX_SIZE", 5000)?,
        tenant_max_size: env.number("TENANT_SERVICE_CACHE_MAX_SIZE", 1000)?,
        tenant_ttl: secs("TENANT_SERVICE_TTL_SECONDS", 600)?,
    })
}

/// Shorter admin passwords are refused at start (outside `WEB_DEBUG`): the
/// fleet-wide failure limits allow a guesser thousands of tries a day.
pub const MIN_ADMIN_PASSWORD_CHARS: usize = 12;

fn web_settings(env: &Env, statics: &StaticConfig) -> Result<WebSettings, SettingsError> {
    let debug = env.boolean("WEB_DEBUG", false)?;
    let admin_password = env
        .secret("WEB_ADMIN_PASSWORD")
        .or_else(|| env.secret("web_admin_pw"));
    let auth0 = auth0_settings(env)?;
    if let Some(password) = &admin_password {
        let length = secrecy::ExposeSecret::expose_secret(password)
            .chars()
            .count();
        if length < MIN_ADMIN_PASSWORD_CHARS && !debug {
            return Err(SettingsError::Invalid {
                var: "WEB_ADMIN_PASSWORD",
                reason: format!("must be at least {MIN_ADMIN_PASSWORD_CHARS} characters"),
            });
        }
    }
    let session_secret = env.secret("WEB_SESSION_SECRET");
    if let Some(secret) = &session_secret {
        if secrecy::ExposeSecret::expose_secret(secret).len() < 32 {
            return Err(SettingsError::Invalid {
                var: "WEB_SESSION_SECRET",
                reason: "must be at least 32 bytes".into(),
            });
        }
    } else if (admin_password.is_some() || auth0.is_some()) && !debug {
        return Err(SettingsError::Missing {
            var: "WEB_SESSION_SECRET",
            context: " when admin login is enabled".into(),
        });
    }
    let ttl: u64 = env.number("WEB_ADMIN_COOKIE_TTL_SECONDS", 3600)?;
    let auth_basic = match (env.string("WEB_AUTH_USER"), env.secret("WEB_AUTH_PASS")) {
        (Some(user), Some(pass)) => Some((user, pass)),
        _ => None,
    };
    Ok(WebSettings {
        port: env.number("PORT", 8000)?,
        admin_password,
        session_secret,
        secure_cookies: env.boolean("WEB_SECURE_COOKIES", true)?,
        admin_cookie_ttl: Duration::from_secs(ttl.clamp(60, 86_400)),
        auth_token: env.secret("WEB_AUTH_TOKEN"),
        auth_basic,
        image_cache_ttl: match env.string("WEB_IMAGE_CACHE_TTL_SECONDS") {
            Some(_) => Duration::from_secs(env.number("WEB_IMAGE_CACHE_TTL_SECONDS", 0)?),
            None => statics.services.web_image_cache_ttl,
        },
        debug,
        auth0,
    })
}

fn auth0_settings(env: &Env) -> Result<Option<Auth0Settings>, SettingsError> {
    let (Some(domain), Some(client_id)) =
        (env.string("AUTH0_DOMAIN"), env.string("AUTH0_CLIENT_ID"))
    else {
        return Ok(None);
    };
    let required = |var: &'static str| {
        env.string(var).ok_or(SettingsError::Missing {
            var,
            context: " when AUTH0_DOMAIN and AUTH0_CLIENT_ID are set".into(),
        })
    };
    let client_secret = SecretString::from(required("AUTH0_CLIENT_SECRET")?);
    let callback_url = env.string("AUTH0_CALLBACK_URL");
    let admin_emails = required("ADMIN_LOGIN_EMAILS")?
        .split(',')
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    let issuer_url = env
        .string("AUTH0_ISSUER_URL")
        .unwrap_or_else(|| format!("https://{domain}/"));
    Ok(Some(Auth0Settings {
        domain,
        client_id,
        client_secret,
        callback_url,
        admin_emails,
        issuer_url,
    }))
}

/// Typed access to one lookup function; empty values count as unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn string(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn secret(&self, var: &str) -> Option<SecretString> {
        (self.0)(var)
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
    }

    fn url(&self, var: &str, default: &str) -> String {
        self.string(var)
            .unwrap_or_else(|| default.to_string())
            .trim_end_matches('/')
            .to_string()
    }

    fn list(&self, var: &str) -> Vec<String> {
        self.string(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn boolean(&self, var: &'static str, default: bool) -> Result<bool, SettingsError> {
        let Some(value) = self.string(var) else {
            return Ok(default);
        };
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(SettingsError::BadBool { var, value }),
        }
    }

    fn number<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
    ) -> Result<T, SettingsError> {
        match self.string(var) {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| SettingsError::BadNumber { var, value }),
        }
    }

    fn json(&self, var: &'static str) -> Result<Option<serde_json::Value>, SettingsError> {
        let Some(value) = self.string(var) else {
            return Ok(None);
        };
        serde_json::from_str(&value)
            .map(Some)
            .map_err(|e| SettingsError::BadJson {
                var,
                line: e.line(),
                column: e.column(),
                reason: json_reason(&e),
            })
    }
}

/// serde_json's message without its position suffix (reported separately).
fn json_reason(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_standalone_with_documented_values() {
        let s = settings(&[]).expect("defaults");
        assert!(matches!(s.mode, Mode::Standalone(_)));
        assert_eq!(s.base_domain, "shibari.photo");
        assert_eq!(s.cache.runtime_max_size, 1000);
        assert_eq!(s.cache.max_stale, Duration::from_secs(3600));
        assert_eq!(s.cache.negative_ttl, Duration::from_secs(30));
        assert_eq!(s.cache.credential_ttl, Duration::from_secs(600));
        assert!(s.cache.credential_cache_enabled);
        assert_eq!(s.web.port, 8000);
        assert_eq!(s.web.auth_mode(), AuthMode::None);
        assert_eq!(s.ai_rate_per_minute, 20);
        assert_eq!(s.services.openai, "https://api.openai.com/v1");
        assert!(!s.log_format_json);
    }

    #[test]
    fn url_without_token_names_the_variable() {
        let err = settings(&[("ORCHESTRATOR_BASE_URL", "https://orch.example")]).unwrap_err();
        assert!(
            err.to_string().contains("ORCHESTRATOR_SERVICE_TOKEN"),
            "{err}"
        );
    }

    #[test]
    fn orchestrated_mode_reads_the_client_settings() {
        let s = settings(&[
            ("ORCHESTRATOR_BASE_URL", "https://orch.example/"),
            ("ORCHESTRATOR_SERVICE_TOKEN", "tok-1"),
            ("ORCHESTRATOR_SERVICE_TOKEN_SECONDARY", "tok-2"),
            ("ORCHESTRATOR_PREFER_POST", "off"),
            ("ORCHESTRATOR_TIMEOUT_SECONDS", "2"),
        ])
        .expect("valid");
        let Mode::Orchestrated(o) = s.mode else {
            panic!("expected orchestrated mode")
        };
        assert_eq!(o.base_url, "https://orch.example");
        assert_eq!(o.token.expose_secret(), "tok-1");
        assert_eq!(
            o.secondary_token.as_ref().map(|t| t.expose_secret()),
            Some("tok-2")
        );
        assert!(!o.prefer_post);
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(o.max_attempts, 3);
        assert_eq!(o.local_storage_dir, None);
    }

    #[test]
    fn local_tenant_storage_is_read_in_orchestrated_mode_only() {
        let vars = [
            ("ORCHESTRATOR_BASE_URL", "http://127.0.0.1:8100"),
            ("ORCHESTRATOR_SERVICE_TOKEN", "tok"),
            ("LOCAL_TENANT_STORAGE_DIR", " /tmp/tenants "),
        ];
        let Mode::Orchestrated(o) = settings(&vars).expect("valid").mode else {
            panic!("expected orchestrated mode")
        };
        assert_eq!(o.local_storage_dir, Some(PathBuf::from("/tmp/tenants")));
    }

    #[test]
    fn config_source_env_forces_standalone() {
        let s = settings(&[
            ("ORCHESTRATOR_BASE_URL", "https://orch.example"),
            ("CONFIG_SOURCE", "env"),
        ])
        .expect("valid");
        assert!(matches!(s.mode, Mode::Standalone(_)));
    }

    #[test]
    fn booleans_accept_the_documented_words_and_name_bad_values() {
        for (word, want) in [
            ("1", true),
            (" YES ", true),
            ("On", true),
            ("0", false),
            ("no", false),
            ("OFF", false),
        ] {
            let s = settings(&[("WEB_DEBUG", word)]).expect("valid boolean");
            assert_eq!(s.web.debug, want, "{word:?}");
        }
        let err = settings(&[("WEB_SECURE_COOKIES", "maybe")]).unwrap_err();
        assert_eq!(
            err,
            SettingsError::BadBool {
                var: "WEB_SECURE_COOKIES",
                value: "maybe".into()
            }
        );
        assert!(
            err.to_string().contains("WEB_SECURE_COOKIES") && err.to_string().contains("maybe")
        );
    }

    #[test]
    fn bad_json_names_the_variable_and_position_not_the_value() {
        let err =
            settings(&[("STORAGE_PATHS", "{\"root\": \"/x\",\n \"keep\": sekrit}")]).unwrap_err();
        let SettingsError::BadJson {
            var, line, column, ..
        } = &err
        else {
            panic!("expected BadJson, got {err:?}")
        };
        assert_eq!((*var, *line, *column), ("STORAGE_PATHS", 2, 10));
        assert!(!err.to_string().contains("sekrit"), "{err}");
    }

    #[test]
    fn bad_numbers_are_named() {
        let err = settings(&[("RUNTIME_CONFIG_MAX_STALE_SECONDS", "-5")]).unwrap_err();
        assert!(
            err.to_string().contains("RUNTIME_CONFIG_MAX_STALE_SECONDS"),
            "{err}"
        );
    }

    #[test]
    fn admin_login_needs_a_long_session_secret() {
        const PW: &str = "twelve chars";
        let err = settings(&[("WEB_ADMIN_PASSWORD", PW)]).unwrap_err();
        assert!(err.to_string().contains("WEB_SESSION_SECRET"), "{err}");
        let err =
            settings(&[("WEB_ADMIN_PASSWORD", PW), ("WEB_SESSION_SECRET", "short")]).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
        let debug =
            settings(&[("WEB_ADMIN_PASSWORD", "pw"), ("WEB_DEBUG", "true")]).expect("debug");
        assert_eq!(debug.web.auth_mode(), AuthMode::Password);
        let ok = settings(&[
            ("web_admin_pw", PW),
            ("WEB_SESSION_SECRET", &"k".repeat(32)),
        ])
        .expect("ok");
        assert_eq!(ok.web.auth_mode(), AuthMode::Password);
    }

    #[test]
    fn a_short_admin_password_stops_the_start_and_is_not_echoed() {
        let err = settings(&[
            ("WEB_ADMIN_PASSWORD", "hunter2-abc"),
            ("WEB_SESSION_SECRET", &"k".repeat(32)),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "WEB_ADMIN_PASSWORD: must be at least 12 characters"
        );
    }

    #[test]
    fn auth0_requires_its_companions() {
        let err =
            settings(&[("AUTH0_DOMAIN", "x.auth0.com"), ("AUTH0_CLIENT_ID", "cid")]).unwrap_err();
        assert!(err.to_string().contains("AUTH0_CLIENT_SECRET"), "{err}");
        let s = settings(&[
            ("AUTH0_DOMAIN", "x.auth0.com"),
            ("AUTH0_CLIENT_ID", "cid"),
            ("AUTH0_CLIENT_SECRET", "cs"),
            (
                "AUTH0_CALLBACK_URL",
                "https://t.shibari.photo/auth/callback",
            ),
            ("ADMIN_LOGIN_EMAILS", "A@x.com, b@y.com"),
            ("WEB_SESSION_SECRET", &"k".repeat(40)),
        ])
        .expect("valid");
        let auth0 = s.web.auth0.as_ref().expect("auth0 on");
        assert_eq!(auth0.issuer_url, "https://x.auth0.com/");
        assert_eq!(auth0.admin_emails, vec!["a@x.com", "b@y.com"]);
        assert_eq!(s.web.auth_mode(), AuthMode::Auth0);
    }

    #[test]
    fn standalone_reads_its_json_flags_and_secrets() {
        let s = settings(&[
            ("STORAGE_PATHS", r#"{"root": "/Photos/x"}"#),
            ("STORAGE_PROVIDER", "local"),
            ("LOCAL_STORAGE_DIR", "/tmp/photos"),
            ("FEATURE_PUBLISH", "false"),
            ("STANDALONE_HOST", "Me.Shibari.Photo:80"),
            ("OPENAI_API_KEY", "sk-abc"),
        ])
        .expect("valid");
        let Mode::Standalone(st) = s.mode else {
            panic!("expected standalone")
        };
        assert_eq!(st.host.as_deref(), Some("me.shibari.photo"));
        assert_eq!(
            st.env.storage_provider_local_dir,
            Some(PathBuf::from("/tmp/photos"))
        );
        assert!(!st.env.feature_publish && st.env.feature_keep_curate);
        assert!(st.env.secrets_present.contains("OPENAI_API_KEY"));
        assert_eq!(st.secrets["OPENAI_API_KEY"].expose_secret(), "sk-abc");
        let err = settings(&[("STORAGE_PROVIDER", "local")]).unwrap_err();
        assert!(err.to_string().contains("LOCAL_STORAGE_DIR"), "{err}");
    }

    #[test]
    fn service_limits_precedence_environment_over_file_over_default() {
        let defaults = settings(&[]).expect("defaults");
        assert_eq!(defaults.ai_rate_per_minute, 20);
        assert_eq!(defaults.web.image_cache_ttl, Duration::from_secs(30));
        assert!(defaults.statics.dir.is_none());

        let scratch = tempfile::tempdir().expect("dir");
        let dir = scratch.path();
        std::fs::write(
            dir.join("service_limits.yaml"),
            "ai:\n  rate_per_minute: 7\nweb:\n  image_cache_ttl_seconds: 90\n",
        )
        .expect("write");
        let path = dir.display().to_string();
        let file = settings(&[("PV2_STATIC_CONFIG_DIR", &path)]).expect("file");
        assert_eq!(file.ai_rate_per_minute, 7);
        assert_eq!(file.web.image_cache_ttl, Duration::from_secs(90));
        let env = settings(&[
            ("PV2_STATIC_CONFIG_DIR", &path),
            ("AI_RATE_PER_MINUTE", "3"),
            ("WEB_IMAGE_CACHE_TTL_SECONDS", "5"),
        ])
        .expect("env");
        assert_eq!(env.ai_rate_per_minute, 3);
        assert_eq!(env.web.image_cache_ttl, Duration::from_secs(5));

        std::fs::write(
            dir.join("service_limits.yaml"),
            "ai:\n  rate_per_minute: -3\n",
        )
        .expect("write");
        let err = settings(&[("PV2_STATIC_CONFIG_DIR", &path)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("PV2_STATIC_CONFIG_DIR: ")
                && text.contains("service_limits.yaml, line 2, key ai.rate_per_minute"),
            "{text}"
        );
    }

    #[test]
    fn runtime_ttl_defaults_and_clamps() {
        let s = settings(&[("RUNTIME_CONFIG_TTL_MAX_SECONDS", "900")]).expect("valid");
        assert_eq!(s.cache.runtime_ttl(Some(0)), Duration::from_secs(600));
        assert_eq!(s.cache.runtime_ttl(None), Duration::from_secs(600));
        assert_eq!(s.cache.runtime_ttl(Some(5000)), Duration::from_secs(900));
        assert_eq!(s.cache.runtime_ttl(Some(30)), Duration::from_secs(30));
    }
}
