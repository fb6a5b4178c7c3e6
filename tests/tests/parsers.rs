//! Property tests of the parsers of outside data that the crates expose
//! (`make fuzz` runs them at 20 000 cases each): the orchestrator's runtime
//! envelope, the publish and warmup events (plain, multi-host, EventBridge),
//! API Gateway v2 events through `lambda_http`, and image file names through
//! the web function's routes. Any input never panics; what a well-formed
//! input says is what is read.
//!
//! The other parsers are property-tested beside their code: host rules
//! (`host.rs`), `Retry-After` (`retry.rs`), sidecars (`sidecar.rs`), the
//! admin cookie (`admin_session.rs`), the OIDC state cookie (`oidc.rs`), the
//! file-name rule (`images.rs`); every table item kind through the SDK in
//! `table_items.rs`.

use proptest::prelude::*;
use publisher_tests::arbitrary::{json, mutated, MARKER};
use serde_json::{json, Value};

macro_rules! sample {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $path))
    };
}

mod properties {
    use super::*;

    mod envelope {
        use super::*;
        use publisher::config::{
            is_valid_model, parse_envelope, CaptionTarget, StorageProvider, SubjectMode,
            DEFAULT_VISION_MODEL,
        };

        const SAMPLES: &[&str] = &[
            sample!("tests/fixtures/runtime_v1.json"),
            sample!("tests/fixtures/runtime_v2.json"),
        ];
        const KEYS: &[&str] = &[
            "schema_version",
            "tenant",
            "app_type",
            "config_version",
            "ttl_seconds",
            "config",
            "features",
            "storage",
            "provider",
            "credentials_ref",
            "paths",
            "root",
            "archive",
            "keep",
            "remove",
            "publishers",
            "id",
            "type",
            "enabled",
            "telegram",
            "fetlife",
            "channel_id",
            "recipient",
            "caption_target",
            "subject_mode",
            "email_server",
            "host",
            "port",
            "from_email",
            "password_ref",
            "use_tls",
            "username",
            "ai",
            "vision_model",
            "captionfile",
            "confirmation",
            "confirmation_tags_count",
            "content",
            "debug",
            "publish_enabled",
        ];
        const WORDS: &[&str] = &["publisher_v2", "dropbox", "telegram", "fetlife", "/a", ".."];

        /// The envelope's invariants when it parses; the marker in no error.
        fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
            match parse_envelope(bytes) {
                Err(error) => {
                    prop_assert!(!error.to_string().contains(MARKER), "{}", error);
                }
                Ok(None) => {}
                Ok(Some(envelope)) => {
                    prop_assert!(matches!(envelope.schema_version, 1 | 2));
                    prop_assert!(!envelope.tenant.is_empty());
                    prop_assert!(!envelope.config_version.is_empty());
                    let config = &envelope.config;
                    let paths = &config.storage.paths;
                    for path in [&paths.root, &paths.archive, &paths.keep, &paths.remove] {
                        prop_assert!(path.starts_with('/'), "{}", path);
                        prop_assert!(!path.split('/').any(|s| s == ".."), "{}", path);
                    }
                    if envelope.schema_version == 1 {
                        prop_assert!(config.ai.is_none());
                        prop_assert!(config.publishers.telegram.is_none());
                        prop_assert!(config.publishers.fetlife.is_none());
                    }
                    if config.publishers.fetlife.is_some() {
                        prop_assert!(config.email_server.is_some());
                    }
                }
            }
            Ok(())
        }

        /// What a generated envelope says, to build it from and compare with.
        #[derive(Debug, Clone)]
        struct Spec {
            schema: Option<u64>,
            tenant: String,
            version: String,
            ttl: Option<u64>,
            features: [bool; 5],
            root: Vec<String>,
            keep: String,
            telegram: Option<(String, Value)>,
            fetlife: Option<(String, usize, usize)>,
            email_port: Option<u16>,
            vision_model: Option<String>,
            tags: Option<i64>,
            archive_after: Option<bool>,
        }

        fn spec() -> impl Strategy<Value = Spec> {
            let segment = "[A-Za-z0-9 _-]{1,10}";
            (
                (
                    prop::option::of(1u64..=2),
                    "[a-z][a-z0-9-]{0,15}",
                    "[0-9a-f]{1,64}",
                    prop::option::of(0u64..=86_400),
                    any::<[bool; 5]>(),
                ),
                (
                    prop::collection::vec(segment, 0..4),
                    segment,
                    prop::option::of((
                        "ref-[a-z0-9]{1,10}",
                        prop_oneof![
                            "-100[0-9]{10}".prop_map(Value::String),
                            any::<i64>().prop_map(Value::from),
                        ],
                    )),
                    prop::option::of(("[a-z0-9]{1,10}@upload\\.example", 0usize..3, 0usize..3)),
                ),
                (
                    prop::option::of(any::<u16>()),
                    prop::option::of(prop_oneof!["gpt-4[a-z0-9.-]{0,8}", "[a-z]{1,8}"]),
                    prop::option::of(-1_000i64..1_000),
                    prop::option::of(any::<bool>()),
                ),
            )
                .prop_map(
                    |(
                        (schema, tenant, version, ttl, features),
                        (root, keep, telegram, fetlife),
                        (email_port, vision_model, tags, archive_after),
                    )| Spec {
                        schema,
                        tenant,
                        version,
                        ttl,
                        features,
                        root,
                        keep,
                        telegram,
                        fetlife,
                        email_port,
                        vision_model,
                        tags,
                        archive_after,
                    },
                )
        }

        const TARGETS: [(&str, CaptionTarget); 3] = [
            ("subject", CaptionTarget::Subject),
            ("body", CaptionTarget::Body),
            ("both", CaptionTarget::Both),
        ];
        const MODES: [(&str, SubjectMode); 3] = [
            ("normal", SubjectMode::Normal),
            ("private", SubjectMode::Private),
            ("avatar", SubjectMode::Avatar),
        ];

        impl Spec {
            fn root(&self) -> String {
                format!("/{}", self.root.join("/"))
            }

            fn to_json(&self) -> Value {
                let f = self.features;
                let mut publishers = Vec::new();
                if let Some((cref, channel)) = &self.telegram {
                    publishers.push(json!({"type": "telegram", "credentials_ref": cref, "config": {"channel_id": channel}}));
                }
                if let Some((recipient, target, mode)) = &self.fetlife {
                    publishers.push(json!({"type": "fetlife", "config": {
                        "recipient": recipient,
                        "caption_target": TARGETS[*target].0,
                        "subject_mode": MODES[*mode].0,
                    }}));
                }
                let mut envelope = json!({
                    "tenant": self.tenant,
                    "app_type": "publisher_v2",
                    "config_version": self.version,
                    "config": {
                        "features": {
                            "publish_enabled": f[0],
                            "analyze_caption_enabled": f[1],
                            "keep_enabled": f[2],
                            "remove_enabled": f[3],
                            "auto_view_enabled": f[4],
                        },
                        "storage": {
                            "provider": "dropbox",
                            "credentials_ref": "ref-storage",
                            "paths": {"root": self.root(), "keep": self.keep},
                        },
                        "publishers": publishers,
                        "email_server": {
                            "host": "smtp.example.com",
                            "port": self.email_port,
                            "from_email": "studio@example.com",
                            "password_ref": "ref-smtp",
                        },
                        "ai": {"credentials_ref": "ref-openai", "vision_model": self.vision_model},
                        "confirmation": {"confirmation_tags_count": self.tags},
                        "content": {"archive": self.archive_after},
                    },
                });
                if let Some(schema) = self.schema {
                    envelope["schema_version"] = schema.into();
                }
                if let Some(ttl) = self.ttl {
                    envelope["ttl_seconds"] = ttl.into();
                }
                envelope
            }
        }

        proptest! {
            #[test]
            fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                check(&bytes)?;
            }

            #[test]
            fn any_json_never_panics(value in json(KEYS, WORDS)) {
                check(value.to_string().as_bytes())?;
            }

            #[test]
            fn mutated_samples_never_panic_nor_quote_a_value(document in mutated(SAMPLES, KEYS, WORDS)) {
                check(document.to_string().as_bytes())?;
            }

            #[test]
            fn a_built_envelope_reads_back(spec in spec()) {
                let envelope = parse_envelope(spec.to_json().to_string().as_bytes())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?
                    .ok_or_else(|| TestCaseError::fail("not publisher_v2"))?;
                let v2 = spec.schema == Some(2);
                prop_assert_eq!(envelope.schema_version, if v2 { 2 } else { 1 });
                prop_assert_eq!(&envelope.tenant, &spec.tenant);
                prop_assert_eq!(&envelope.config_version, &spec.version);
                prop_assert_eq!(envelope.ttl_seconds, spec.ttl);
                let config = &envelope.config;
                let f = &config.features;
                prop_assert_eq!(
                    [f.publish_enabled, f.analyze_caption_enabled, f.keep_enabled, f.remove_enabled, f.auto_view_enabled],
                    spec.features
                );
                prop_assert_eq!(&config.storage.provider, &StorageProvider::Dropbox);
                prop_assert_eq!(&config.storage.paths.root, &spec.root());
                let keep = format!("{}/{}", spec.root().trim_end_matches('/'), spec.keep);
                prop_assert_eq!(&config.storage.paths.keep, &keep);
                if !v2 {
                    prop_assert!(config.ai.is_none() && config.publishers.telegram.is_none());
                    prop_assert!(config.email_server.is_none() && config.publishers.fetlife.is_none());
                    return Ok(());
                }
                let telegram = config.publishers.telegram.as_ref()
                    .map(|t| (t.credentials_ref.expose().to_string(), t.channel_id.clone()));
                let want = spec.telegram.as_ref().map(|(cref, channel)| {
                    (cref.clone(), channel.as_str().map_or_else(|| channel.to_string(), str::to_string))
                });
                prop_assert_eq!(telegram, want);
                let fetlife = config.publishers.fetlife.as_ref()
                    .map(|f| (f.recipient.clone(), f.caption_target, f.subject_mode));
                let want = spec.fetlife.as_ref().map(|(r, t, m)| (r.clone(), Some(TARGETS[*t].1), Some(MODES[*m].1)));
                prop_assert_eq!(fetlife, want);
                prop_assert_eq!(config.email_server.as_ref().map(|e| e.port), Some(spec.email_port.unwrap_or(587)));
                let vision = spec.vision_model.clone()
                    .filter(|m| is_valid_model(m))
                    .unwrap_or_else(|| DEFAULT_VISION_MODEL.into());
                prop_assert_eq!(config.ai.as_ref().map(|ai| ai.vision_model.clone()), Some(vision));
                // Negative means none; absent, the static configuration decides.
                let tags = spec.tags.map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX));
                prop_assert_eq!(config.confirmation.confirmation_tags_count, tags);
                prop_assert_eq!(config.content.archive, spec.archive_after.unwrap_or(true));
            }
        }
    }

    mod events {
        use super::*;

        const PUBLISH: &[&str] = &[
            sample!("events/publish_event.json"),
            sample!("events/publish_scheduled_event.json"),
            sample!("events/preview.json"),
            sample!("events/publish_dry_run.json"),
        ];
        const WARMUP: &[&str] = &[
            sample!("events/warmup_event.json"),
            sample!("events/warmup_scheduled_event.json"),
        ];
        const KEYS: &[&str] = &[
            "host",
            "hosts",
            "select",
            "dry_run",
            "preview",
            "idempotency_key",
            "refresh_caption",
            "detail",
            "detail-type",
            "id",
            "source",
        ];
        const WORDS: &[&str] = &["Scheduled Event", "vermont.shibari.photo", "aws.events"];

        fn defaults() -> Vec<String> {
            vec!["default.shibari.photo".to_string()]
        }

        /// The fields of a publish event, each present or not.
        #[derive(Debug, Clone)]
        struct Fields {
            host: Option<String>,
            hosts: Option<Vec<String>>,
            select: Option<String>,
            dry_run: Option<bool>,
            preview: Option<bool>,
            key: Option<String>,
            refresh: Option<bool>,
        }

        /// Hosts that differ however they are cased or trimmed.
        fn hosts() -> impl Strategy<Value = Vec<String>> {
            prop::collection::btree_set("[a-z0-9]{1,8}\\.shibari\\.photo", 0..5)
                .prop_map(|set| set.into_iter().collect())
        }

        fn fields() -> impl Strategy<Value = Fields> {
            (
                hosts(),
                any::<bool>(),
                any::<bool>(),
                prop::option::of("\\PC{0,12}"),
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
                prop::option::of("\\PC{0,12}"),
                prop::option::of(any::<bool>()),
            )
                .prop_map(
                    |(mut all, one, list, select, dry_run, preview, key, refresh)| {
                        let host = (one && !all.is_empty()).then(|| all.remove(0));
                        let hosts = (list || !all.is_empty()).then_some(all);
                        Fields {
                            host,
                            hosts,
                            select,
                            dry_run,
                            preview,
                            key,
                            refresh,
                        }
                    },
                )
        }

        impl Fields {
            fn to_json(&self) -> Value {
                let mut map = serde_json::Map::new();
                let mut put = |name: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        map.insert(name.into(), value);
                    }
                };
                put("host", self.host.clone().map(Value::from));
                put("hosts", self.hosts.clone().map(Value::from));
                put("select", self.select.clone().map(Value::from));
                put("dry_run", self.dry_run.map(Value::from));
                put("preview", self.preview.map(Value::from));
                put("idempotency_key", self.key.clone().map(Value::from));
                put("refresh_caption", self.refresh.map(Value::from));
                Value::Object(map)
            }
        }

        fn scheduled(id: &str, detail: Value) -> Value {
            json!({
                "version": "0",
                "id": id,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "detail": detail,
            })
        }

        proptest! {
            #[test]
            fn any_publish_event_is_read_or_refused(value in json(KEYS, WORDS)) {
                let _ = publish::parse_event(value, &defaults());
            }

            #[test]
            fn mutated_publish_samples_are_read_or_refused(value in mutated(PUBLISH, KEYS, WORDS)) {
                let _ = publish::parse_event(value, &defaults());
            }

            #[test]
            fn a_publish_event_reads_back(fields in fields(), envelope_id in prop::option::of("[a-f0-9-]{0,36}")) {
                let event = match &envelope_id {
                    Some(id) => scheduled(id, fields.to_json()),
                    None => fields.to_json(),
                };
                let read = publish::parse_event(event, &defaults())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut hosts: Vec<String> = fields.host.iter().cloned()
                    .chain(fields.hosts.clone().unwrap_or_default())
                    .collect();
                if hosts.is_empty() {
                    hosts = defaults();
                }
                prop_assert_eq!(read.hosts, hosts);
                let options = read.options;
                prop_assert_eq!(options.select, fields.select);
                prop_assert_eq!(options.dry_run, fields.dry_run.unwrap_or(false));
                prop_assert_eq!(options.preview, fields.preview.unwrap_or(false));
                prop_assert_eq!(options.refresh_caption, fields.refresh.unwrap_or(false));
                let key = fields.key.or(envelope_id).filter(|k| !k.is_empty());
                prop_assert_eq!(options.idempotency_key, key);
            }

            #[test]
            fn any_warmup_event_is_read_or_refused(value in json(KEYS, WORDS)) {
                let _ = warmup::event_hosts(&value);
            }

            #[test]
            fn mutated_warmup_samples_are_read_or_refused(value in mutated(WARMUP, KEYS, WORDS)) {
                let _ = warmup::event_hosts(&value);
            }

            #[test]
            fn a_warmup_event_reads_back(
                hosts in hosts(),
                one in prop::option::of("[a-z]{1,8}\\.example"),
                envelope_id in prop::option::of("[a-f0-9-]{1,36}"),
            ) {
                let mut fields = json!({"hosts": hosts});
                if let Some(one) = &one {
                    fields["host"] = one.clone().into();
                }
                let event = match &envelope_id {
                    Some(id) => scheduled(id, fields),
                    None => fields,
                };
                let want: Vec<String> = hosts.iter().cloned().chain(one).collect();
                prop_assert_eq!(warmup::event_hosts(&event).map_err(|e| TestCaseError::fail(e.to_string()))?, want);
            }
        }
    }

    mod api_gateway {
        use super::*;
        use std::cell::RefCell;
        use std::sync::Once;

        use lambda_http::request::LambdaRequest;

        const SAMPLES: &[&str] = &[sample!("events/web_http_api.json")];
        const KEYS: &[&str] = &[
            "version",
            "routeKey",
            "rawPath",
            "rawQueryString",
            "headers",
            "host",
            "cookie",
            "cookies",
            "x-forwarded-proto",
            "requestContext",
            "http",
            "method",
            "path",
            "protocol",
            "sourceIp",
            "stage",
            "domainName",
            "body",
            "isBase64Encoded",
            "queryStringParameters",
            "pathParameters",
            "httpMethod",
            "multiValueHeaders",
        ];
        const WORDS: &[&str] = &[
            "2.0",
            "GET",
            "POST",
            "$default",
            "/api/config/features",
            "vermont.shibari.photo",
            "https",
        ];

        thread_local! {
            /// Where this thread's last panic happened.
            static PANICKED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
        }

        /// Records where each panic happens; stays quiet about those of
        /// `lambda_http`'s request building, which [`read`] expects.
        fn watch_panics() {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    let file = info.location().map(|at| at.file().to_string());
                    PANICKED_AT.with(|at| at.borrow_mut().clone_from(&file));
                    if !file.as_deref().is_some_and(in_lambda_http_request) {
                        previous(info);
                    }
                }));
            });
        }

        /// `lambda_http`'s request building (`request.rs`): it unwraps
        /// `Url::parse` of the host and path, and the `http` request
        /// builder, so a `Host`, path or query that no URI may hold makes
        /// it panic before the function's code runs (`docs/faults.md`).
        fn in_lambda_http_request(file: &str) -> bool {
            file.contains("lambda_http-") && file.ends_with("request.rs")
        }

        /// Deserializes `value` as the web function's runtime does, and
        /// turns it into an HTTP request as `lambda_http` does: nothing
        /// panics but that known spot of `lambda_http`.
        fn read(value: Value) -> Result<(), TestCaseError> {
            let Ok(event) = serde_json::from_value::<LambdaRequest>(value) else {
                return Ok(());
            };
            watch_panics();
            match std::panic::catch_unwind(|| lambda_http::Request::from(event)) {
                Ok(request) => prop_assert!(!request.method().as_str().is_empty()),
                Err(_) => {
                    let at = PANICKED_AT
                        .with(|at| at.borrow_mut().take())
                        .unwrap_or_default();
                    prop_assert!(in_lambda_http_request(&at), "panicked at {}", at);
                }
            }
            Ok(())
        }

        /// [`read`] that allows no panic at all.
        fn read_whole(value: Value) -> Result<(), TestCaseError> {
            let Ok(event) = serde_json::from_value::<LambdaRequest>(value) else {
                return Ok(());
            };
            let request = lambda_http::Request::from(event);
            prop_assert!(!request.method().as_str().is_empty());
            Ok(())
        }

        proptest! {
            #[test]
            fn any_json_is_read_or_refused(value in json(KEYS, WORDS)) {
                read(value)?;
            }

            #[test]
            fn mutated_samples_are_read_or_refused(value in mutated(SAMPLES, KEYS, WORDS)) {
                read(value)?;
            }

            /// The parts a client chooses: any domain name with any port,
            /// any path and query of the characters a URI may hold. (Outside
            /// those, `lambda_http` panics while it builds the request:
            /// see `docs/faults.md`. A label `xn--…` is a domain name only
            /// when the rest is valid punycode, so none is made here.)
            #[test]
            fn any_host_path_and_query_are_read(
                host in "([a-zA-Z0-9-]{1,10}\\.){0,3}[a-zA-Z]{2,6}".prop_filter(
                    "no punycode label",
                    |host| !host.split('.').any(|label| label.to_ascii_lowercase().starts_with("xn--")),
                ),
                port in prop::option::of(any::<u16>()),
                path in "/[A-Za-z0-9._~!$&'()*+,;=:@/%-]{0,30}",
                query in "[A-Za-z0-9._~!$&'()*+,;=:@/?%-]{0,30}",
            ) {
                let mut event: Value = serde_json::from_str(SAMPLES[0]).unwrap_or(Value::Null);
                let host = match port {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                };
                event["headers"]["host"] = host.into();
                event["rawPath"] = path.clone().into();
                event["requestContext"]["http"]["path"] = path.into();
                event["rawQueryString"] = query.into();
                read_whole(event)?;
            }
        }
    }

    mod file_names {
        use super::*;
        use std::sync::{Arc, OnceLock};

        use axum::body::Body;
        use axum::http::{Request, StatusCode, Uri};
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        use publisher_tests::harness::{send, settings};

        const HOST: &str = "photos.example.com";
        /// The images of the site; `a..b.jpg` is listed but no route may
        /// reach it.
        const FILES: &[&str] = &[
            "a.jpg", "B c.JPG", "é.png", "x+y.jpeg", "%41.jpg", "a..b.jpg",
        ];
        const REACHABLE: &[&str] = &["a.jpg", "B c.JPG", "é.png", "x+y.jpeg", "%41.jpg"];

        struct Site {
            runtime: tokio::runtime::Runtime,
            web: axum::Router,
            _dir: tempfile::TempDir,
        }

        /// A standalone site over a folder with [`FILES`] (and a file
        /// outside the image root), anyone may view.
        fn site() -> &'static Site {
            static SITE: OnceLock<Site> = OnceLock::new();
            SITE.get_or_init(|| {
                let dir = tempfile::tempdir().expect("temp dir");
                let photos = dir.path().join("photos");
                std::fs::create_dir(&photos).expect("photos folder");
                let jpeg = std::fs::read(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../samples/photos/01-dawn.jpg"
                ))
                .expect("sample photo");
                for name in FILES {
                    std::fs::write(photos.join(name), &jpeg).expect("image");
                }
                std::fs::write(dir.path().join("secret.jpg"), &jpeg).expect("image");
                let dir_text = dir.path().to_string_lossy().into_owned();
                let vars = [
                    ("STORAGE_PROVIDER", "local"),
                    ("LOCAL_STORAGE_DIR", dir_text.as_str()),
                    ("STORAGE_PATHS", r#"{"root": "/photos"}"#),
                    ("AUTO_VIEW", "true"),
                ];
                let app = Arc::new(publisher::app::App::new(settings(&vars)).expect("app"));
                Site {
                    runtime: tokio::runtime::Runtime::new().expect("runtime"),
                    web: web::router(app),
                    _dir: dir,
                }
            })
        }

        fn get(path: &str) -> Option<(StatusCode, Value)> {
            let uri: Uri = path.parse().ok()?;
            let request = Request::get(uri)
                .header("host", HOST)
                .body(Body::empty())
                .ok()?;
            let site = site();
            let answer = site.runtime.block_on(send(&site.web, request));
            Some((answer.status, answer.json))
        }

        /// Names as a hostile client writes them: the site's own, their
        /// neighbours, traversal, separators, encodings, any Unicode.
        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(FILES).prop_map(str::to_string),
                prop::sample::select(
                    &[
                        "../secret.jpg",
                        "..%2Fsecret.jpg",
                        "/photos/a.jpg",
                        "a.jpg\0",
                        "a.JPG",
                        "A.jpg",
                        "a.jpg ",
                        ".jpg",
                        "a.jpg/..",
                        "%2e%2e",
                        "\\secret.jpg"
                    ][..]
                )
                .prop_map(str::to_string),
                "\\PC{0,20}",
                "[a-z./%\\\\]{0,12}(\\.jpg|\\.png)?",
            ]
        }

        proptest! {
            /// Any name, encoded into the path: a listed, plain name is
            /// answered with itself; anything else is 404.
            #[test]
            fn a_named_image_is_found_only_when_listed_and_plain(name in name()) {
                let encoded = utf8_percent_encode(&name, NON_ALPHANUMERIC).to_string();
                let (status, json) = get(&format!("/api/images/{encoded}")).expect("an encoded path is a URI");
                if REACHABLE.contains(&name.as_str()) {
                    prop_assert_eq!(status, StatusCode::OK);
                    prop_assert_eq!(json["filename"].as_str(), Some(name.as_str()));
                } else {
                    prop_assert_eq!(status, StatusCode::NOT_FOUND, "{}", name);
                }
            }

            /// Any name, as it stands, after any route's prefix: never an
            /// error of the function's own.
            #[test]
            fn a_raw_path_is_never_a_server_error(name in name(), suffix in prop::sample::select(&["", "/thumbnail", "/content", "/keep"][..])) {
                if let Some((status, _)) = get(&format!("/api/images/{name}{suffix}")) {
                    prop_assert!(!status.is_server_error(), "{} {}", status, name);
                }
            }
        }
    }
}
