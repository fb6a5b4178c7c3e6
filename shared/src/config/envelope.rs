//! The orchestrator's runtime envelope (`/v1/runtime/by-host`), schema v1 and v2.
//!
//! The JSON is walked by hand through [`Block`] rather than with serde derives so
//! that a wrong type names its exact field and never echoes a value.

use std::path::Path;

use serde_json::Value;

use super::block::{Block, Usable};
use super::paths::storage_paths;
use super::sections::{
    ai_settings, captionfile, confirmation, content, fetlife_config, PUBLISHER_TYPES,
};
use super::{
    CaptionFile, ConfigError, Confirmation, Content, EmailServer, Features, Publishers,
    StorageConfig, StorageProvider, TelegramConfig, TenantConfig,
};
use crate::secrets::CredentialRef;

const APP_TYPE: &str = "publisher_v2";

#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeEnvelope {
    pub schema_version: u32,
    pub tenant: String,
    /// Opaque; changes whenever the tenant's configuration changes.
    pub config_version: String,
    /// As sent; the caller clamps it.
    pub ttl_seconds: Option<u64>,
    pub config: TenantConfig,
}

/// Ok(None) = app_type is not `publisher_v2` (the caller treats it as not found).
pub fn parse_envelope(json: &[u8]) -> Result<Option<RuntimeEnvelope>, ConfigError> {
    parse_envelope_with(json, None)
}

/// [`parse_envelope`], also accepting the local-only storage provider `local`
/// when `local_storage` (`LOCAL_TENANT_STORAGE_DIR`) is given: the tenant's
/// storage is then the folder `<local_storage>/<tenant>`.
pub fn parse_envelope_with(
    json: &[u8],
    local_storage: Option<&Path>,
) -> Result<Option<RuntimeEnvelope>, ConfigError> {
    // Position only: serde's message could quote the payload.
    let value: Value = serde_json::from_slice(json).map_err(|e| {
        ConfigError::new(
            "$",
            format!("malformed JSON at line {} column {}", e.line(), e.column()),
        )
    })?;
    if !value.is_object() {
        return Err(ConfigError::new("$", "expected an object"));
    }
    let top = Block::new(Some(&value), "")?;
    // Checked first: another app's payload is not ours to judge.
    if top.get("app_type").and_then(Value::as_str) != Some(APP_TYPE) {
        return Ok(None);
    }
    let schema_version = match top.u64("schema_version")? {
        None | Some(1) => 1,
        Some(2) => 2,
        Some(_) => return Err(top.err("schema_version", "unsupported (expected 1 or 2)")),
    };
    let required = |key: &str| -> Result<String, ConfigError> {
        top.string(key)?.ok_or_else(|| top.err(key, "required"))
    };
    let tenant = required("tenant")?;
    let config_version = required("config_version")?;
    let ttl_seconds = top.u64("ttl_seconds")?;
    let storage = Storage {
        tenant: &tenant,
        local: local_storage,
    };
    let config = tenant_config(&top.required_block("config")?, schema_version, storage)?;
    Ok(Some(RuntimeEnvelope {
        schema_version,
        tenant,
        config_version,
        ttl_seconds,
        config,
    }))
}

/// What the storage block is read against: the envelope's tenant and the
/// process's local storage directory, if it allows local storage.
#[derive(Clone, Copy)]
struct Storage<'a> {
    tenant: &'a str,
    local: Option<&'a Path>,
}

fn tenant_config(
    config: &Block<'_>,
    schema_version: u32,
    storage_of: Storage<'_>,
) -> Result<TenantConfig, ConfigError> {
    let features = features(&config.required_block("features")?)?;
    let storage = storage(&config.required_block("storage")?, storage_of)?;
    if schema_version == 1 {
        // v1 predates the other blocks: whatever is there is not read.
        return Ok(TenantConfig {
            features,
            storage,
            publishers: Publishers::default(),
            email_server: None,
            ai: None,
            captionfile: CaptionFile::default(),
            confirmation: Confirmation::default(),
            content: Content::default(),
        });
    }
    let email_server = email_server(&config.block("email_server")?)?;
    let mut publishers = publishers(config.get("publishers"), &config.path("publishers"))?;
    if publishers.fetlife.is_some() && email_server.is_none() {
        tracing::warn!(
            "fetlife publisher disabled: email_server lacks host, from_email or password_ref"
        );
        publishers.fetlife = None;
    }
    let ai_block = config.block("ai")?;
    let ai = ai_block
        .string("credentials_ref")?
        .map(|r| ai_settings(&ai_block, CredentialRef::new(r)))
        .transpose()?;
    Ok(TenantConfig {
        features,
        storage,
        publishers,
        email_server,
        ai,
        captionfile: captionfile(&config.block("captionfile")?)?,
        confirmation: confirmation(&config.block("confirmation")?)?,
        content: content(&config.block("content")?)?,
    })
}

fn features(b: &Block<'_>) -> Result<Features, ConfigError> {
    Ok(Features {
        publish_enabled: b.bool("publish_enabled", false)?,
        analyze_caption_enabled: b.bool("analyze_caption_enabled", false)?,
        keep_enabled: b.bool("keep_enabled", true)?,
        remove_enabled: b.bool("remove_enabled", true)?,
        auto_view_enabled: b.bool("auto_view_enabled", false)?,
    })
}

fn storage(b: &Block<'_>, of: Storage<'_>) -> Result<StorageConfig, ConfigError> {
    match (b.string("provider")?.as_deref(), of.local) {
        (Some("dropbox"), _) => {}
        // Local runs only (`make run-tenants`): a folder per tenant, no
        // credential. Never accepted unless the process was told where.
        (Some("local"), Some(dir)) => {
            if !is_folder_name(of.tenant) {
                return Err(ConfigError::new(
                    "tenant",
                    "must be a plain folder name for local storage",
                ));
            }
            return Ok(StorageConfig {
                provider: StorageProvider::Local {
                    dir: dir.join(of.tenant),
                },
                credentials_ref: None,
                paths: storage_paths(&b.required_block("paths")?)?,
            });
        }
        (Some("local"), None) => {
            return Err(b.err(
                "provider",
                "local storage is not enabled (LOCAL_TENANT_STORAGE_DIR)",
            ))
        }
        (Some(_), _) => return Err(b.err("provider", "unsupported (expected dropbox)")),
        (None, _) => return Err(b.err("provider", "required")),
    }
    let credentials_ref = b
        .string("credentials_ref")?
        .ok_or_else(|| b.err("credentials_ref", "required"))?;
    Ok(StorageConfig {
        provider: StorageProvider::Dropbox,
        credentials_ref: Some(CredentialRef::new(credentials_ref)),
        paths: storage_paths(&b.required_block("paths")?)?,
    })
}

/// A tenant name that is one folder, and nothing else, under the local
/// storage directory.
fn is_folder_name(tenant: &str) -> bool {
    !tenant.starts_with('.')
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Both forms: an array of entries, or an object keyed by type. The first usable
/// enabled entry of each supported type wins; unusable ones are skipped with a
/// warning that names the type, id and field, never a value.
fn publishers(value: Option<&Value>, path: &str) -> Result<Publishers, ConfigError> {
    let entries: Vec<(Option<&str>, Block<'_>)> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| Ok((None, Block::new(Some(v), format!("{path}[{i}]"))?)))
            .collect::<Result<_, ConfigError>>()?,
        // Unknown types are ignored whatever their shape.
        Some(Value::Object(map)) => map
            .iter()
            .filter(|(k, _)| PUBLISHER_TYPES.contains(&k.as_str()))
            .map(|(k, v)| {
                Ok((
                    Some(k.as_str()),
                    Block::new(Some(v), format!("{path}.{k}"))?,
                ))
            })
            .collect::<Result<_, ConfigError>>()?,
        Some(_) => return Err(ConfigError::new(path, "expected an array or an object")),
    };
    let mut out = Publishers::default();
    for (key, entry) in entries {
        let id = entry.string_or_int("id")?.unwrap_or_default();
        let ty = match (key, entry.string("type")?) {
            (Some(key), Some(ty)) if key != ty => {
                tracing::warn!(publisher_type = key, publisher_id = %id, "publisher entry skipped: its type differs from its key");
                continue;
            }
            (Some(key), _) => key.to_owned(),
            (None, Some(ty)) => ty,
            (None, None) => {
                tracing::warn!(publisher_id = %id, "publisher entry skipped: no type");
                continue;
            }
        };
        if !PUBLISHER_TYPES.contains(&ty.as_str()) || !entry.bool("enabled", true)? {
            continue;
        }
        let config = entry.block("config")?;
        let usable = match ty.as_str() {
            "telegram" if out.telegram.is_none() => {
                telegram(&entry, &config)?.map(|t| out.telegram = Some(t))
            }
            "fetlife" if out.fetlife.is_none() => {
                fetlife_config(&config)?.map(|f| out.fetlife = Some(f))
            }
            // That type's publisher is already chosen.
            _ => Ok(()),
        };
        if let Err(why) = usable {
            tracing::warn!(publisher_type = %ty, publisher_id = %id, field = %why.path, reason = %why.reason, "publisher entry skipped");
        }
    }
    Ok(out)
}

fn telegram(entry: &Block<'_>, config: &Block<'_>) -> Result<Usable<TelegramConfig>, ConfigError> {
    let credentials_ref = entry.string("credentials_ref")?;
    let channel_id = config.string_or_int("channel_id")?;
    Ok(match (credentials_ref, channel_id) {
        (Some(r), Some(channel_id)) => Ok(TelegramConfig {
            credentials_ref: CredentialRef::new(r),
            channel_id,
        }),
        (None, _) => Err(entry.err("credentials_ref", "required")),
        (_, None) => Err(config.err("channel_id", "required")),
    })
}

/// `None` unless host, from_email and password_ref are all there.
fn email_server(b: &Block<'_>) -> Result<Option<EmailServer>, ConfigError> {
    let port = b.port("port", 587)?;
    let use_tls = b.bool("use_tls", true)?;
    let username = b.string("username")?;
    let (Some(host), Some(from_email), Some(password_ref)) = (
        b.string("host")?,
        b.string("from_email")?,
        b.string("password_ref")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(EmailServer {
        host,
        port,
        username: username.unwrap_or_else(|| from_email.clone()),
        from_email,
        password_ref: CredentialRef::new(password_ref),
        use_tls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        AiConfig, CaptionTarget, FetlifeConfig, SubjectMode, DEFAULT_CAPTION_MODEL,
        DEFAULT_VISION_MODEL,
    };
    use serde_json::json;

    const V1: &str = include_str!("../../../tests/fixtures/runtime_v1.json");
    const V2: &str = include_str!("../../../tests/fixtures/runtime_v2.json");

    fn r(value: &str) -> CredentialRef {
        CredentialRef::new(value)
    }

    fn parse(envelope: &Value) -> Result<Option<RuntimeEnvelope>, ConfigError> {
        parse_envelope(&serde_json::to_vec(envelope).unwrap())
    }

    /// A minimal valid v2 config with `patch`'s top-level blocks laid over it.
    fn config_with(schema: u32, patch: Value) -> Value {
        let mut config = json!({
            "features": {},
            "storage": {"provider": "dropbox", "credentials_ref": "ref-s", "paths": {"root": "/P"}},
        });
        for (k, v) in patch.as_object().unwrap() {
            config[k] = v.clone();
        }
        json!({"schema_version": schema, "tenant": "t", "app_type": "publisher_v2",
               "config_version": "cv", "ttl_seconds": 600, "config": config})
    }

    fn v2(patch: Value) -> TenantConfig {
        parse(&config_with(2, patch)).unwrap().unwrap().config
    }

    fn v2_err(patch: Value) -> ConfigError {
        parse(&config_with(2, patch)).unwrap_err()
    }

    fn paths(root: &str) -> crate::config::StoragePaths {
        crate::config::StoragePaths {
            root: root.into(),
            archive: format!("{root}/archive"),
            keep: format!("{root}/keep"),
            remove: format!("{root}/reject"),
        }
    }

    #[test]
    fn v1_sample() {
        let env = parse_envelope(V1.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (env.schema_version, env.tenant.as_str(), env.ttl_seconds),
            (1, "maple", Some(600))
        );
        assert_eq!(
            env.config_version,
            "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
        );
        let expected = TenantConfig {
            features: Features {
                publish_enabled: false,
                analyze_caption_enabled: true,
                keep_enabled: true,
                remove_enabled: false,
                auto_view_enabled: true,
            },
            storage: StorageConfig {
                provider: StorageProvider::Dropbox,
                credentials_ref: Some(r("ref-storage-maple")),
                paths: paths("/Photos/maple"),
            },
            publishers: Publishers::default(),
            email_server: None,
            ai: None,
            captionfile: CaptionFile::default(),
            confirmation: Confirmation::default(),
            content: Content::default(),
        };
        assert_eq!(env.config, expected);
        assert!(!env.config.analysis_enabled());
    }

    #[test]
    fn v2_sample() {
        let env = parse_envelope(V2.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (env.schema_version, env.tenant.as_str(), env.ttl_seconds),
            (2, "vermont", Some(600))
        );
        let root = "/Photos/vermont/2025";
        let expected = TenantConfig {
            features: Features {
                publish_enabled: true,
                analyze_caption_enabled: true,
                keep_enabled: true,
                remove_enabled: true,
                auto_view_enabled: false,
            },
            storage: StorageConfig {
                provider: StorageProvider::Dropbox,
                credentials_ref: Some(r("ref-storage-vermont")),
                paths: paths(root),
            },
            publishers: Publishers {
                telegram: Some(TelegramConfig {
                    credentials_ref: r("ref-telegram-vermont"),
                    channel_id: "-1001234567890".into(),
                }),
                fetlife: Some(FetlifeConfig {
                    recipient: "123456@upload.fetlife.example".into(),
                    caption_target: Some(CaptionTarget::Both),
                    subject_mode: Some(SubjectMode::Private),
                }),
            },
            email_server: Some(EmailServer {
                host: "smtp.example.com".into(),
                port: 587,
                from_email: "studio@example.com".into(),
                password_ref: r("ref-smtp-vermont"),
                use_tls: true,
                username: "studio@example.com".into(),
            }),
            ai: Some(AiConfig {
                credentials_ref: r("ref-openai-vermont"),
                vision_model: "gpt-4o".into(),
                caption_model: "gpt-4o-mini".into(),
                system_prompt: Some(
                    "You write short, warm captions for fine-art photographs.".into(),
                ),
                role_prompt: Some("Write a caption for:".into()),
                sd_caption_enabled: true,
                sd_caption_single_call_enabled: true,
                sd_caption_model: None,
                sd_caption_system_prompt: None,
                sd_caption_role_prompt: None,
            }),
            captionfile: CaptionFile {
                extended_metadata_enabled: true,
                artist_alias: Some("Eoel".into()),
            },
            confirmation: Confirmation {
                confirmation_to_sender: true,
                confirmation_tags_count: Some(5),
                confirmation_tags_nature: Some(
                    "short, lowercase, human-friendly topical nouns".into(),
                ),
            },
            content: Content {
                hashtag_string: "#fineart #rope".into(),
                archive: true,
                debug: false,
            },
        };
        assert_eq!(env.config, expected);
        assert!(env.config.analysis_enabled());
    }

    #[test]
    fn every_default() {
        let env = parse(&json!({"tenant": "t", "app_type": "publisher_v2", "config_version": "cv",
            "config": {"features": {}, "storage": {"provider": "dropbox", "credentials_ref": "ref-s",
                       "paths": {"root": "/P"}}}}))
        .unwrap()
        .unwrap();
        assert_eq!(env.schema_version, 1, "missing schema_version means 1");
        assert_eq!(env.ttl_seconds, None);
        let c = v2(
            json!({"ai": {"credentials_ref": "ref-ai"}, "captionfile": {},
                          "confirmation": {}, "content": {}}),
        );
        assert_eq!(
            c.features,
            Features {
                publish_enabled: false,
                analyze_caption_enabled: false,
                keep_enabled: true,
                remove_enabled: true,
                auto_view_enabled: false,
            }
        );
        assert_eq!(c.storage.paths, paths("/P"));
        assert_eq!(c.publishers, Publishers::default());
        assert_eq!(c.email_server, None);
        assert_eq!(
            c.ai,
            Some(AiConfig {
                credentials_ref: r("ref-ai"),
                vision_model: DEFAULT_VISION_MODEL.into(),
                caption_model: DEFAULT_CAPTION_MODEL.into(),
                system_prompt: None,
                role_prompt: None,
                sd_caption_enabled: true,
                sd_caption_single_call_enabled: true,
                sd_caption_model: None,
                sd_caption_system_prompt: None,
                sd_caption_role_prompt: None,
            })
        );
        assert_eq!(
            c.captionfile,
            CaptionFile {
                extended_metadata_enabled: false,
                artist_alias: None
            }
        );
        assert_eq!(
            c.confirmation,
            Confirmation {
                confirmation_to_sender: true,
                confirmation_tags_count: None,
                confirmation_tags_nature: None,
            }
        );
        assert_eq!(
            c.content,
            Content {
                hashtag_string: String::new(),
                archive: true,
                debug: false
            }
        );
        // Absent blocks and null blocks read as their defaults too.
        let nulls =
            v2(json!({"captionfile": null, "confirmation": null, "content": null, "ai": null}));
        assert_eq!(nulls.ai, None);
        assert_eq!(
            (nulls.captionfile, nulls.confirmation, nulls.content),
            (c.captionfile, c.confirmation, c.content)
        );
    }

    #[test]
    fn email_server_defaults_and_completeness() {
        let full = json!({"host": "h", "from_email": "f@x", "password_ref": "ref-p"});
        assert_eq!(
            v2(json!({"email_server": full})).email_server,
            Some(EmailServer {
                host: "h".into(),
                port: 587,
                from_email: "f@x".into(),
                password_ref: r("ref-p"),
                use_tls: true,
                username: "f@x".into(),
            })
        );
        let custom = v2(
            json!({"email_server": {"host": "h", "from_email": "f@x", "password_ref": "p",
                                                "port": 465, "use_tls": false, "username": "u"}}),
        );
        let e = custom.email_server.unwrap();
        assert_eq!((e.port, e.use_tls, e.username.as_str()), (465, false, "u"));
        for missing in ["host", "from_email", "password_ref"] {
            let mut block = full.clone();
            block[missing] = Value::Null;
            assert_eq!(
                v2(json!({"email_server": block})).email_server,
                None,
                "{missing}"
            );
        }
        assert_eq!(
            v2_err(json!({"email_server": {"port": 70000}})).path,
            "config.email_server.port"
        );
    }

    fn telegram_entry(id: &str, channel: Value) -> Value {
        json!({"id": id, "type": "telegram", "credentials_ref": format!("ref-{id}"),
               "config": {"channel_id": channel}})
    }

    const EMAIL: &str = r#"{"host": "h", "from_email": "f@x", "password_ref": "p"}"#;

    fn with_email(publishers: Value) -> Publishers {
        let email: Value = serde_json::from_str(EMAIL).unwrap();
        v2(json!({"publishers": publishers, "email_server": email})).publishers
    }

    #[test]
    fn publishers_array_first_usable_enabled_entry_per_type_wins() {
        let p = with_email(json!([
            {"id": "off", "type": "telegram", "enabled": false, "credentials_ref": "ref-off",
             "config": {"channel_id": "1"}},
            {"id": "no-ref", "type": "telegram", "config": {"channel_id": "2"}},
            {"id": "no-channel", "type": "telegram", "credentials_ref": "ref-x", "config": {}},
            telegram_entry("good", json!(-100123)),
            telegram_entry("later", json!("4")),
            {"id": "bad-enum", "type": "fetlife", "config": {"recipient": "a@x", "subject_mode": "loud"}},
            {"id": "no-recipient", "type": "fetlife", "config": {}},
            {"id": "f", "type": "fetlife", "config": {"recipient": "b@x"}},
            {"id": "m", "type": "mastodon", "enabled": "sometimes", "config": 5},
            {"id": "untyped"},
        ]));
        assert_eq!(
            p.telegram,
            Some(TelegramConfig {
                credentials_ref: r("ref-good"),
                channel_id: "-100123".into()
            })
        );
        assert_eq!(
            p.fetlife,
            Some(FetlifeConfig {
                recipient: "b@x".into(),
                caption_target: None,
                subject_mode: None,
            })
        );
    }

    #[test]
    fn publishers_object_form() {
        let p = with_email(json!({
            "telegram": {"credentials_ref": "ref-t", "config": {"channel_id": "@chan"}},
            "fetlife": {"type": "fetlife", "config": {"recipient": "a@x", "caption_target": "body",
                                                      "subject_mode": "avatar"}},
            "mastodon": "any shape",
        }));
        assert_eq!(p.telegram.unwrap().channel_id, "@chan");
        let f = p.fetlife.unwrap();
        assert_eq!(
            (f.caption_target, f.subject_mode),
            (Some(CaptionTarget::Body), Some(SubjectMode::Avatar))
        );

        let mismatched = with_email(json!({
            "telegram": {"type": "fetlife", "credentials_ref": "ref-t", "config": {"channel_id": "1"}},
            "fetlife": {"enabled": false, "config": {"recipient": "a@x"}},
        }));
        assert_eq!(mismatched, Publishers::default());
    }

    #[test]
    fn fetlife_needs_a_complete_email_server() {
        let p = v2(
            json!({"publishers": [{"type": "fetlife", "config": {"recipient": "a@x"}}],
                          "email_server": {"host": "h", "from_email": "f@x"}}),
        );
        assert_eq!(p.publishers.fetlife, None);
        assert_eq!(p.credential_ref(crate::secrets::Role::Smtp), None);
    }

    #[test]
    fn publishers_wrong_shapes_are_errors() {
        let cases = [
            (json!("telegram"), "config.publishers"),
            (json!([5]), "config.publishers[0]"),
            (
                json!([{"type": "telegram", "enabled": "yes"}]),
                "config.publishers[0].enabled",
            ),
            (
                json!({"telegram": {"config": {"channel_id": true}, "credentials_ref": "r"}}),
                "config.publishers.telegram.config.channel_id",
            ),
            (
                json!([{"type": "fetlife", "config": {"recipient": "a", "caption_target": 1}}]),
                "config.publishers[0].config.caption_target",
            ),
        ];
        for (publishers, path) in cases {
            assert_eq!(
                v2_err(json!({"publishers": publishers})).path,
                path,
                "{publishers}"
            );
        }
    }

    #[test]
    fn ai_block() {
        assert_eq!(v2(json!({"ai": {"vision_model": "gpt-4o"}})).ai, None);
        assert_eq!(v2(json!({"ai": {"credentials_ref": null}})).ai, None);
        let ai = v2(
            json!({"ai": {"credentials_ref": "ref-ai", "vision_model": "claude-3",
                                  "caption_model": "o3-mini", "sd_caption_model": "llama",
                                  "sd_caption_enabled": false,
                                  "sd_caption_single_call_enabled": false}}),
        )
        .ai
        .unwrap();
        assert_eq!(ai.vision_model, DEFAULT_VISION_MODEL);
        assert_eq!(ai.caption_model, "o3-mini");
        assert_eq!(ai.sd_caption_model, None);
        assert!(!ai.sd_caption_enabled && !ai.sd_caption_single_call_enabled);
    }

    #[test]
    fn confirmation_count_is_clamped() {
        let count = |n: Value| {
            v2(json!({"confirmation": {"confirmation_tags_count": n}}))
                .confirmation
                .confirmation_tags_count
        };
        assert_eq!(count(json!(-3)), Some(0));
        assert_eq!(count(json!(0)), Some(0));
        assert_eq!(count(json!(12)), Some(12));
        assert_eq!(count(json!(i64::MAX)), Some(u32::MAX));
        assert_eq!(
            count(Value::Null),
            None,
            "absent: the static default applies"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut env = config_with(
            2,
            json!({"features": {"publish_enabled": true, "new_flag": 1},
                                            "future": [1, 2]}),
        );
        env["surprise"] = json!({"x": 1});
        env["config"]["storage"]["region"] = json!("eu");
        let c = parse(&env).unwrap().unwrap().config;
        assert!(c.features.publish_enabled);
    }

    #[test]
    fn other_app_types_are_not_found() {
        let mut env = config_with(2, json!({}));
        env["app_type"] = json!("publisher_v1");
        assert_eq!(parse(&env), Ok(None));
        env["app_type"] = json!(2);
        assert_eq!(parse(&env), Ok(None));
        env.as_object_mut().unwrap().remove("app_type");
        assert_eq!(parse(&env), Ok(None));
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let cases: [(&str, Value, &str); 8] = [
            ("/schema_version", json!(3), "schema_version"),
            ("/schema_version", json!("2"), "schema_version"),
            ("/tenant", json!(""), "tenant"),
            ("/config_version", Value::Null, "config_version"),
            ("/ttl_seconds", json!(-1), "ttl_seconds"),
            ("/config", Value::Null, "config"),
            ("/config/features", Value::Null, "config.features"),
            ("/config/storage", Value::Null, "config.storage"),
        ];
        for (pointer, value, path) in cases {
            let mut env = config_with(2, json!({}));
            *env.pointer_mut(pointer).unwrap() = value;
            assert_eq!(parse(&env).unwrap_err().path, path, "{pointer}");
        }
        let mut v1 = config_with(1, json!({}));
        v1["config"].as_object_mut().unwrap().remove("storage");
        assert_eq!(parse(&v1).unwrap_err().path, "config.storage");
    }

    #[test]
    fn storage_errors() {
        let storage = |s: Value| v2_err(json!({"storage": s})).path;
        let paths = json!({"root": "/P"});
        assert_eq!(
            storage(json!({"provider": "s3", "credentials_ref": "r", "paths": paths})),
            "config.storage.provider"
        );
        assert_eq!(
            storage(json!({"credentials_ref": "r", "paths": paths})),
            "config.storage.provider"
        );
        assert_eq!(
            storage(json!({"provider": "dropbox", "paths": paths})),
            "config.storage.credentials_ref"
        );
        assert_eq!(
            storage(json!({"provider": "dropbox", "credentials_ref": "r"})),
            "config.storage.paths"
        );
        assert_eq!(
            storage(
                json!({"provider": "dropbox", "credentials_ref": "r", "paths": {"root": "/a/../b"}})
            ),
            "config.storage.paths.root"
        );
        assert_eq!(
            storage(json!({"provider": "dropbox", "credentials_ref": "r",
                           "paths": {"root": "/a", "keep": "x/../../y"}})),
            "config.storage.paths.keep"
        );
    }

    #[test]
    fn local_storage_only_where_the_process_allows_it() {
        let local = |tenant: &str| {
            let mut envelope = config_with(
                1,
                json!({"storage": {"provider": "local", "paths": {"root": "/photos"}}}),
            );
            envelope["tenant"] = json!(tenant);
            serde_json::to_vec(&envelope).unwrap()
        };
        let dir = Path::new("/srv/tenants");

        let config = parse_envelope_with(&local("maple"), Some(dir))
            .unwrap()
            .unwrap()
            .config;
        assert_eq!(
            config.storage,
            StorageConfig {
                provider: StorageProvider::Local {
                    dir: dir.join("maple")
                },
                credentials_ref: None,
                paths: paths("/photos"),
            }
        );
        // Without the process's directory, `local` is unusable as any
        // unknown provider is.
        let refused = parse_envelope(&local("maple")).unwrap_err();
        assert_eq!(refused.path, "config.storage.provider");
        assert!(
            refused.reason.contains("LOCAL_TENANT_STORAGE_DIR"),
            "{refused}"
        );
        // The tenant names one folder, never a path.
        for tenant in ["..", "../etc", "a/b", ".hidden", "a\\b"] {
            let e = parse_envelope_with(&local(tenant), Some(dir)).unwrap_err();
            assert_eq!(e.path, "tenant", "{tenant}");
        }
        // Dropbox tenants are read as always.
        let dropbox = serde_json::to_vec(&config_with(2, json!({}))).unwrap();
        assert_eq!(
            parse_envelope_with(&dropbox, Some(dir))
                .unwrap()
                .unwrap()
                .config
                .storage
                .provider,
            StorageProvider::Dropbox
        );
    }

    #[test]
    fn wrong_json_type_names_the_path_and_not_the_value() {
        let e = v2_err(json!({"features": {"keep_enabled": "yes"}}));
        assert_eq!(
            e,
            ConfigError::new("config.features.keep_enabled", "expected a boolean")
        );
        let e = v2_err(json!({"email_server": {"use_tls": "ref-smtp-secret"}}));
        assert_eq!(e.path, "config.email_server.use_tls");
        assert!(!e.to_string().contains("ref-smtp-secret"), "{e}");
        assert_eq!(
            v2_err(json!({"content": {"hashtag_string": 5}})).path,
            "config.content.hashtag_string"
        );
        assert_eq!(
            v2_err(json!({"captionfile": []})).path,
            "config.captionfile"
        );
        assert_eq!(
            v2_err(json!({"confirmation": {"confirmation_tags_count": 1.5}})).path,
            "config.confirmation.confirmation_tags_count"
        );
    }

    #[test]
    fn malformed_json_does_not_echo_the_input() {
        let input = br#"{"tenant": "ref-secret-123", "config": {"#;
        let e = parse_envelope(input).unwrap_err();
        assert_eq!(e.path, "$");
        assert!(!e.to_string().contains("ref-secret-123"), "{e}");
        assert_eq!(parse_envelope(b"[1]").unwrap_err().path, "$");
        assert_eq!(parse_envelope(b"").unwrap_err().path, "$");
    }

    #[test]
    fn v1_ignores_v2_blocks() {
        let v2_blocks = json!({
            "publishers": [telegram_entry("t", json!("1"))],
            "email_server": serde_json::from_str::<Value>(EMAIL).unwrap(),
            "ai": {"credentials_ref": "ref-ai"},
            "content": {"debug": true},
            "captionfile": "not even an object",
        });
        let c = parse(&config_with(1, v2_blocks)).unwrap().unwrap().config;
        assert_eq!(
            (c.publishers, c.email_server, c.ai, c.content, c.captionfile),
            (
                Publishers::default(),
                None,
                None,
                Content::default(),
                CaptionFile::default()
            )
        );
    }
}
