//! Standalone (single-tenant) mode: the configuration comes from the environment,
//! and each credential reference is the name of the variable holding the secret.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::block::Block;
use super::paths::storage_paths;
use super::sections::{
    ai_settings, captionfile, confirmation, content, fetlife_config, PUBLISHER_TYPES,
};
use super::{
    ConfigError, EmailServer, Features, Publishers, StorageConfig, StorageProvider, TelegramConfig,
    TenantConfig,
};
use crate::secrets::CredentialRef;

const DROPBOX_REFRESH_TOKEN: &str = "DROPBOX_REFRESH_TOKEN";
const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
const TELEGRAM_BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";
const EMAIL_PASSWORD: &str = "EMAIL_PASSWORD";

/// Standalone-mode inputs, read from the environment by `settings` (JSON already parsed).
#[derive(Debug, Clone, Default)]
pub struct StandaloneEnv {
    /// Some when STORAGE_PROVIDER=local (LOCAL_STORAGE_DIR).
    pub storage_provider_local_dir: Option<PathBuf>,
    /// STORAGE_PATHS
    pub storage_paths: Option<Value>,
    /// PUBLISHERS
    pub publishers: Option<Value>,
    /// EMAIL_SERVER
    pub email_server: Option<Value>,
    /// OPENAI_SETTINGS
    pub openai_settings: Option<Value>,
    pub captionfile_settings: Option<Value>,
    pub confirmation_settings: Option<Value>,
    pub content_settings: Option<Value>,
    /// The FEATURE_* variables (`settings` applies their default, true).
    pub feature_analyze_caption: bool,
    pub feature_publish: bool,
    pub feature_keep_curate: bool,
    pub feature_remove_curate: bool,
    pub auto_view: bool,
    /// Names of the secret variables that are set and non-empty (DROPBOX_REFRESH_TOKEN,
    /// OPENAI_API_KEY, TELEGRAM_BOT_TOKEN, EMAIL_PASSWORD).
    pub secrets_present: BTreeSet<&'static str>,
}

pub fn standalone_config(env: &StandaloneEnv) -> Result<TenantConfig, ConfigError> {
    let paths = env
        .storage_paths
        .as_ref()
        .ok_or_else(|| ConfigError::new("STORAGE_PATHS", "required"))?;
    let paths = storage_paths(&Block::new(Some(paths), "STORAGE_PATHS")?)?;
    let storage = match &env.storage_provider_local_dir {
        Some(dir) => StorageConfig {
            provider: StorageProvider::Local { dir: dir.clone() },
            credentials_ref: None,
            paths,
        },
        // Set even when the token is missing: resolving it then fails with a clear error.
        None => StorageConfig {
            provider: StorageProvider::Dropbox,
            credentials_ref: Some(CredentialRef::new(DROPBOX_REFRESH_TOKEN)),
            paths,
        },
    };
    let email_server = env
        .email_server
        .as_ref()
        .map(|v| email_server(&Block::new(Some(v), "EMAIL_SERVER")?))
        .transpose()?;
    let ai = if env.secrets_present.contains(OPENAI_API_KEY) {
        let settings = block(&env.openai_settings, "OPENAI_SETTINGS")?;
        Some(ai_settings(&settings, CredentialRef::new(OPENAI_API_KEY))?)
    } else {
        tracing::warn!("analysis off: {OPENAI_API_KEY} not set");
        None
    };
    Ok(TenantConfig {
        features: Features {
            publish_enabled: env.feature_publish,
            analyze_caption_enabled: env.feature_analyze_caption,
            keep_enabled: env.feature_keep_curate,
            remove_enabled: env.feature_remove_curate,
            auto_view_enabled: env.auto_view,
        },
        storage,
        publishers: publishers(env, email_server.is_some())?,
        email_server,
        ai,
        captionfile: captionfile(&block(&env.captionfile_settings, "CAPTIONFILE_SETTINGS")?)?,
        confirmation: confirmation(&block(&env.confirmation_settings, "CONFIRMATION_SETTINGS")?)?,
        content: content(&block(&env.content_settings, "CONTENT_SETTINGS")?)?,
    })
}

/// A settings variable; unset reads as an empty object, so every field takes its default.
fn block<'a>(value: &'a Option<Value>, var: &str) -> Result<Block<'a>, ConfigError> {
    Block::new(value.as_ref(), var)
}

/// `{"sender", "smtp_server", "smtp_port"}`; the password is EMAIL_PASSWORD.
fn email_server(b: &Block<'_>) -> Result<EmailServer, ConfigError> {
    let sender = b
        .string("sender")?
        .ok_or_else(|| b.err("sender", "required"))?;
    Ok(EmailServer {
        host: b
            .string("smtp_server")?
            .unwrap_or_else(|| "smtp.gmail.com".into()),
        port: b.port("smtp_port", 587)?,
        from_email: sender.clone(),
        password_ref: CredentialRef::new(EMAIL_PASSWORD),
        use_tls: true,
        username: sender,
    })
}

/// The operator's own list, so a malformed entry is an error rather than skipped;
/// a publisher whose secret is missing is disabled with a warning instead.
fn publishers(env: &StandaloneEnv, has_email_server: bool) -> Result<Publishers, ConfigError> {
    let mut out = Publishers::default();
    let items = match &env.publishers {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ConfigError::new("PUBLISHERS", "expected an array")),
    };
    let has = |secret: &str| env.secrets_present.contains(secret);
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let entry = Block::new(Some(item), format!("PUBLISHERS[{i}]"))?;
        let ty = entry
            .string("type")?
            .ok_or_else(|| entry.err("type", "required"))?;
        if !PUBLISHER_TYPES.contains(&ty.as_str()) {
            tracing::warn!(publisher_type = %ty, "unknown publisher type skipped");
            continue;
        }
        if !seen.insert(ty.clone()) {
            return Err(entry.err("type", "duplicate publisher type"));
        }
        if ty == "telegram" {
            let channel_id = entry
                .string_or_int("channel_id")?
                .ok_or_else(|| entry.err("channel_id", "required"))?;
            if has(TELEGRAM_BOT_TOKEN) {
                out.telegram = Some(TelegramConfig {
                    credentials_ref: CredentialRef::new(TELEGRAM_BOT_TOKEN),
                    channel_id,
                });
            } else {
                tracing::warn!("telegram publisher disabled: {TELEGRAM_BOT_TOKEN} not set");
            }
        } else {
            let fetlife = fetlife_config(&entry)??;
            match (has_email_server, has(EMAIL_PASSWORD)) {
                (true, true) => out.fetlife = Some(fetlife),
                (false, true) => tracing::warn!("fetlife publisher disabled: EMAIL_SERVER not set"),
                (true, false) => {
                    tracing::warn!("fetlife publisher disabled: {EMAIL_PASSWORD} not set")
                }
                (false, false) => tracing::warn!(
                    "fetlife publisher disabled: EMAIL_SERVER and {EMAIL_PASSWORD} not set"
                ),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        AiConfig, CaptionFile, CaptionTarget, Confirmation, Content, FetlifeConfig, StoragePaths,
        SubjectMode, DEFAULT_CAPTION_MODEL, DEFAULT_VISION_MODEL,
    };
    use crate::secrets::Role;
    use serde_json::json;

    const ALL_SECRETS: [&str; 4] = [
        DROPBOX_REFRESH_TOKEN,
        OPENAI_API_KEY,
        TELEGRAM_BOT_TOKEN,
        EMAIL_PASSWORD,
    ];

    fn r(value: &str) -> CredentialRef {
        CredentialRef::new(value)
    }

    fn minimal() -> StandaloneEnv {
        StandaloneEnv {
            storage_paths: Some(json!({"root": "/Photos/x"})),
            feature_analyze_caption: true,
            feature_publish: true,
            feature_keep_curate: true,
            feature_remove_curate: true,
            ..StandaloneEnv::default()
        }
    }

    fn full() -> StandaloneEnv {
        StandaloneEnv {
            storage_paths: Some(
                json!({"root": "/Photos/x/", "archive": "/Done", "keep": "k", "remove": null}),
            ),
            publishers: Some(json!([
                {"type": "telegram", "channel_id": -100200},
                {"type": "fetlife", "recipient": "up@x", "caption_target": "both",
                 "subject_mode": "private"},
                {"type": "mastodon", "instance": "x"},
            ])),
            email_server: Some(
                json!({"sender": "me@x", "smtp_server": "smtp.x", "smtp_port": 465}),
            ),
            openai_settings: Some(json!({"vision_model": "gpt-4.1", "caption_model": "bogus",
                                         "system_prompt": "sys", "sd_caption_enabled": false})),
            captionfile_settings: Some(
                json!({"extended_metadata_enabled": true, "artist_alias": "A"}),
            ),
            confirmation_settings: Some(json!({"confirmation_tags_count": -2,
                                               "confirmation_to_sender": false})),
            content_settings: Some(
                json!({"hashtag_string": "#x", "archive": false, "debug": true}),
            ),
            feature_keep_curate: true,
            auto_view: true,
            secrets_present: ALL_SECRETS.into_iter().collect(),
            ..StandaloneEnv::default()
        }
    }

    #[test]
    fn full_env() {
        let c = standalone_config(&full()).unwrap();
        assert_eq!(
            c.features,
            Features {
                publish_enabled: false,
                analyze_caption_enabled: false,
                keep_enabled: true,
                remove_enabled: false,
                auto_view_enabled: true,
            }
        );
        assert_eq!(
            c.storage,
            StorageConfig {
                provider: StorageProvider::Dropbox,
                credentials_ref: Some(r(DROPBOX_REFRESH_TOKEN)),
                paths: StoragePaths {
                    root: "/Photos/x".into(),
                    archive: "/Done".into(),
                    keep: "/Photos/x/k".into(),
                    remove: "/Photos/x/reject".into(),
                },
            }
        );
        assert_eq!(
            c.publishers,
            Publishers {
                telegram: Some(TelegramConfig {
                    credentials_ref: r(TELEGRAM_BOT_TOKEN),
                    channel_id: "-100200".into(),
                }),
                fetlife: Some(FetlifeConfig {
                    recipient: "up@x".into(),
                    caption_target: Some(CaptionTarget::Both),
                    subject_mode: Some(SubjectMode::Private),
                }),
            }
        );
        assert_eq!(
            c.email_server,
            Some(EmailServer {
                host: "smtp.x".into(),
                port: 465,
                from_email: "me@x".into(),
                password_ref: r(EMAIL_PASSWORD),
                use_tls: true,
                username: "me@x".into(),
            })
        );
        assert_eq!(
            c.ai,
            Some(AiConfig {
                credentials_ref: r(OPENAI_API_KEY),
                vision_model: "gpt-4.1".into(),
                caption_model: DEFAULT_CAPTION_MODEL.into(),
                system_prompt: Some("sys".into()),
                role_prompt: None,
                sd_caption_enabled: false,
                sd_caption_single_call_enabled: true,
                sd_caption_model: None,
                sd_caption_system_prompt: None,
                sd_caption_role_prompt: None,
            })
        );
        assert_eq!(
            c.captionfile,
            CaptionFile {
                extended_metadata_enabled: true,
                artist_alias: Some("A".into())
            }
        );
        assert_eq!(
            c.confirmation,
            Confirmation {
                confirmation_to_sender: false,
                confirmation_tags_count: Some(0),
                confirmation_tags_nature: None,
            }
        );
        assert_eq!(
            c.content,
            Content {
                hashtag_string: "#x".into(),
                archive: false,
                debug: true
            }
        );
        assert_eq!(c.credential_ref(Role::Smtp), Some(&r(EMAIL_PASSWORD)));
    }

    #[test]
    fn minimal_env() {
        let c = standalone_config(&minimal()).unwrap();
        assert_eq!(c.storage.credentials_ref, Some(r(DROPBOX_REFRESH_TOKEN)));
        assert_eq!(c.storage.paths.remove, "/Photos/x/reject");
        assert_eq!(c.publishers, Publishers::default());
        assert_eq!(c.email_server, None);
        assert_eq!(c.ai, None, "no OPENAI_API_KEY");
        assert!(!c.analysis_enabled());
        assert_eq!(
            (c.captionfile, c.confirmation, c.content),
            (
                CaptionFile::default(),
                Confirmation::default(),
                Content::default()
            )
        );
        let with_key = StandaloneEnv {
            secrets_present: [OPENAI_API_KEY].into_iter().collect(),
            ..minimal()
        };
        let ai = standalone_config(&with_key).unwrap().ai.unwrap();
        assert_eq!(
            (
                ai.vision_model.as_str(),
                ai.caption_model.as_str(),
                ai.sd_caption_single_call_enabled
            ),
            (DEFAULT_VISION_MODEL, DEFAULT_CAPTION_MODEL, true)
        );
    }

    #[test]
    fn missing_secrets_disable_features() {
        let no_secrets = StandaloneEnv {
            secrets_present: BTreeSet::new(),
            ..full()
        };
        let c = standalone_config(&no_secrets).unwrap();
        assert_eq!((c.ai, c.publishers), (None, Publishers::default()));
        assert_eq!(c.storage.credentials_ref, Some(r(DROPBOX_REFRESH_TOKEN)));

        let no_email_server = StandaloneEnv {
            email_server: None,
            ..full()
        };
        let c = standalone_config(&no_email_server).unwrap();
        assert!(c.publishers.telegram.is_some());
        assert_eq!(c.publishers.fetlife, None);

        let no_email_password = StandaloneEnv {
            secrets_present: [TELEGRAM_BOT_TOKEN].into_iter().collect(),
            ..full()
        };
        let c = standalone_config(&no_email_password).unwrap();
        assert!(c.publishers.telegram.is_some());
        assert_eq!(c.publishers.fetlife, None);
        assert_eq!(c.credential_ref(Role::Smtp), None);
    }

    #[test]
    fn local_provider_has_no_credentials() {
        let env = StandaloneEnv {
            storage_provider_local_dir: Some(PathBuf::from("/srv/photos")),
            ..minimal()
        };
        let storage = standalone_config(&env).unwrap().storage;
        assert_eq!(
            storage.provider,
            StorageProvider::Local {
                dir: PathBuf::from("/srv/photos")
            }
        );
        assert_eq!(storage.credentials_ref, None);
    }

    fn error(env: StandaloneEnv) -> String {
        standalone_config(&env).unwrap_err().path
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            error(StandaloneEnv {
                storage_paths: None,
                ..minimal()
            }),
            "STORAGE_PATHS"
        );
        assert_eq!(
            error(StandaloneEnv {
                storage_paths: Some(json!({"root": "rel"})),
                ..minimal()
            }),
            "STORAGE_PATHS.root"
        );
        assert_eq!(
            error(StandaloneEnv {
                storage_paths: Some(json!({"root": "/a", "keep": "../b"})),
                ..minimal()
            }),
            "STORAGE_PATHS.keep"
        );
        let publishers = |p: Value| StandaloneEnv {
            publishers: Some(p),
            ..full()
        };
        assert_eq!(
            error(publishers(json!([{"type": "telegram", "channel_id": 1},
                                     {"type": "telegram", "channel_id": 2}]))),
            "PUBLISHERS[1].type"
        );
        assert_eq!(error(publishers(json!({"type": "telegram"}))), "PUBLISHERS");
        assert_eq!(
            error(publishers(json!([{"channel_id": 1}]))),
            "PUBLISHERS[0].type"
        );
        assert_eq!(
            error(publishers(json!([{"type": "telegram"}]))),
            "PUBLISHERS[0].channel_id"
        );
        assert_eq!(
            error(publishers(json!([{"type": "fetlife"}]))),
            "PUBLISHERS[0].recipient"
        );
        assert_eq!(
            error(publishers(
                json!([{"type": "fetlife", "recipient": "a", "subject_mode": "x"}])
            )),
            "PUBLISHERS[0].subject_mode"
        );
        assert_eq!(
            error(StandaloneEnv {
                email_server: Some(json!({"smtp_port": 25})),
                ..full()
            }),
            "EMAIL_SERVER.sender"
        );
        assert_eq!(
            error(StandaloneEnv {
                openai_settings: Some(json!({"sd_caption_enabled": "no"})),
                ..full()
            }),
            "OPENAI_SETTINGS.sd_caption_enabled"
        );
        assert_eq!(
            error(StandaloneEnv {
                content_settings: Some(json!([])),
                ..full()
            }),
            "CONTENT_SETTINGS"
        );
    }

    #[test]
    fn email_server_defaults() {
        let env = StandaloneEnv {
            email_server: Some(json!({"sender": "me@x"})),
            ..minimal()
        };
        let e = standalone_config(&env).unwrap().email_server.unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.username.as_str(), e.use_tls),
            ("smtp.gmail.com", 587, "me@x", true)
        );
    }
}
