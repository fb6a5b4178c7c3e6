use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{CaptionTarget, SubjectMode};

fn load(files: &[(&str, &str)]) -> Result<StaticConfig, StaticConfigError> {
    let dir = tempfile::tempdir().expect("scratch dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    StaticConfig::load(Some(dir.path()))
}

fn refused(files: &[(&str, &str)]) -> StaticConfigError {
    load(files).expect_err("refused")
}

#[test]
fn defaults_are_todays_values() {
    let d = StaticConfig::defaults();
    assert_eq!(d.dir, None);
    let p = &d.prompts;
    assert_eq!(
        p.vision_system,
        "You are a careful art critic and image analyst. You answer in JSON."
    );
    assert!(p.vision_user.starts_with("Analyze this photograph. Answer"));
    assert_eq!(
        p.caption_system,
        "You write captions for fine-art photographs for social media."
    );
    assert_eq!(p.caption_role, "Write a caption for this photograph.");
    assert_eq!(
        p.sd_caption_system,
        "You write training captions for image generation models: precise, literal, comma-separated."
    );
    assert_eq!(
        p.sd_caption_role,
        "Write an sd_caption for this photograph."
    );
    assert_eq!(p.confirmation_tags_prompt, "");
    assert_eq!(p.confirmation_tags_count, 5);

    let l = &d.platforms;
    let limit = |max, width| PlatformLimit {
        max_caption_length: max,
        max_hashtags: None,
        resize_width_px: width,
    };
    assert_eq!(l.telegram, limit(1024, Some(1280)));
    assert_eq!(l.email, limit(240, None));
    assert_eq!(l.generic, limit(2200, None));
    assert_eq!(l.email_caption_target, CaptionTarget::Subject);
    assert_eq!(l.email_subject_mode, SubjectMode::Normal);

    let s = &d.services;
    assert_eq!(s.ai_rate_per_minute, 20);
    assert_eq!(s.web_image_cache_ttl, Duration::from_secs(30));
    assert_eq!(s.smtp_timeout, Duration::from_secs(30));

    assert_eq!(
        d.preview_text.get("headers.footer"),
        "Preview only: nothing was sent, written or moved."
    );
    assert_eq!(d.ui_text.keys().collect::<Vec<_>>(), ["en"]);
    let en = &d.ui_text["en"];
    assert_eq!(en.get("buttons.keep"), "Keep");
    assert_eq!(en.get("status.position"), "{current} / {total}");
    // Every text the embedded catalogues hold is set: a key left empty
    // would show as nothing on the page.
    for (key, text) in en.iter().chain(d.preview_text.iter()) {
        assert!(!text.is_empty(), "{key}");
    }
}

#[test]
fn the_sample_directory_is_the_defaults_plus_german() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/static");
    let loaded = StaticConfig::load(Some(&samples)).expect("samples load");
    let d = StaticConfig::defaults();
    assert_eq!(loaded.prompts, d.prompts);
    assert_eq!(loaded.platforms, d.platforms);
    assert_eq!(loaded.services, d.services);
    assert_eq!(loaded.preview_text, d.preview_text);
    assert_eq!(loaded.ui_text["en"], d.ui_text["en"]);
    assert_eq!(loaded.ui_text["de"].get("buttons.keep"), "Behalten");

    // The German file sets every key itself: over an English that marks
    // each of its texts, no mark shows through.
    let mut marked = String::new();
    let mut section = "";
    for (key, _) in d.ui_text["en"].iter() {
        match key.split_once('.') {
            None => marked.push_str(&format!("{key}: \"§\"\n")),
            Some((name, leaf)) => {
                if name != section {
                    marked.push_str(&format!("{name}:\n"));
                    section = name;
                }
                marked.push_str(&format!("  {leaf}: \"§\"\n"));
            }
        }
    }
    let german = std::fs::read_to_string(samples.join("web_ui_text.de.yaml")).expect("de");
    let c = load(&[
        ("web_ui_text.en.yaml", &marked),
        ("web_ui_text.de.yaml", &german),
    ])
    .expect("valid");
    assert_eq!(c.ui_text["en"].get("buttons.keep"), "§");
    for (key, text) in c.ui_text["de"].iter() {
        assert_ne!(text, "§", "German lacks {key}");
    }
}

const ALL_PROMPTS: &str = "
vision:
  system: VS
  user: VU
caption:
  system: CS
  role: CR
sd_caption:
  system: SS
  role: SR
confirmation_tags:
  prompt: nouns only
  default_count: 7
";

const ALL_PLATFORMS: &str = "
telegram:
  max_caption_length: 100
  max_hashtags: 3
  resize_width_px: 800
email:
  max_caption_length: 120
  max_hashtags: 0
  resize_width_px: 640
  caption_target: both
  subject_mode: avatar
generic:
  max_caption_length: 300
  max_hashtags: 5
  resize_width_px: 1000
instagram:
  max_caption_length: 2200
  max_hashtags: 30
  resize_width_px: 1080
";

const ALL_SERVICES: &str = "
ai:
  rate_per_minute: 6
web:
  image_cache_ttl_seconds: 12.5
smtp:
  timeout_seconds: 9
instagram:
  delay_min_seconds: 1
  delay_max_seconds: 3
";

#[test]
fn every_key_is_read() {
    let c = load(&[
        ("ai_prompts.yaml", ALL_PROMPTS),
        ("platform_limits.yaml", ALL_PLATFORMS),
        ("service_limits.yaml", ALL_SERVICES),
        (
            "preview_text.yaml",
            "headers:\n  title: T\nmessages:\n  host: \"H {host}\"\n",
        ),
        (
            "web_ui_text.en.yaml",
            "title: Pub\nbuttons:\n  keep: Hold\n",
        ),
        (
            "web_ui_text.de.yaml",
            "header_title: Kopf\nbuttons:\n  remove: Weg\n",
        ),
    ])
    .expect("valid");
    assert_eq!(
        c.prompts,
        AiPrompts {
            vision_system: "VS".into(),
            vision_user: "VU".into(),
            caption_system: "CS".into(),
            caption_role: "CR".into(),
            sd_caption_system: "SS".into(),
            sd_caption_role: "SR".into(),
            confirmation_tags_prompt: "nouns only".into(),
            confirmation_tags_count: 7,
        }
    );
    let limit = |max, tags, width| PlatformLimit {
        max_caption_length: max,
        max_hashtags: Some(tags),
        resize_width_px: Some(width),
    };
    assert_eq!(
        c.platforms,
        PlatformLimits {
            telegram: limit(100, 3, 800),
            email: limit(120, 0, 640),
            generic: limit(300, 5, 1000),
            email_caption_target: CaptionTarget::Both,
            email_subject_mode: SubjectMode::Avatar,
        }
    );
    assert_eq!(
        c.services,
        ServiceLimits {
            ai_rate_per_minute: 6,
            web_image_cache_ttl: Duration::from_millis(12_500),
            smtp_timeout: Duration::from_secs(9),
        }
    );
    assert_eq!(c.preview_text.get("headers.title"), "T");
    assert_eq!(
        c.preview_text.fill("messages.host", &[("host", "x")]),
        "H x"
    );
    let (en, de) = (&c.ui_text["en"], &c.ui_text["de"]);
    assert_eq!((en.get("title"), en.get("buttons.keep")), ("Pub", "Hold"));
    // German over the operator's English over the embedded English.
    assert_eq!(
        (de.get("header_title"), de.get("buttons.remove")),
        ("Kopf", "Weg")
    );
    assert_eq!((de.get("title"), de.get("buttons.keep")), ("Pub", "Hold"));
    assert_eq!(de.get("buttons.admin"), "Admin");
}

#[test]
fn missing_files_and_keys_take_the_defaults() {
    let d = StaticConfig::defaults();
    let empty = load(&[]).expect("an empty directory");
    assert_eq!(empty.prompts, d.prompts);
    assert_eq!(empty.platforms, d.platforms);
    assert_eq!(empty.services, d.services);
    assert_eq!(empty.ui_text, d.ui_text);
    assert!(empty.dir.is_some());

    let c = load(&[
        ("ai_prompts.yaml", "caption:\n  role: Only the role\n"),
        (
            "platform_limits.yaml",
            "telegram:\n  max_caption_length: 500\n  resize_width_px: null\n",
        ),
        ("service_limits.yaml", "# nothing but a comment\n"),
        ("preview_text.yaml", ""),
    ])
    .expect("valid");
    assert_eq!(c.prompts.caption_role, "Only the role");
    assert_eq!(c.prompts.caption_system, d.prompts.caption_system);
    assert_eq!(c.prompts.confirmation_tags_count, 5);
    assert_eq!(c.platforms.telegram.max_caption_length, 500);
    assert_eq!(
        c.platforms.telegram.resize_width_px,
        Some(1280),
        "null is the default"
    );
    assert_eq!(c.platforms.email, d.platforms.email);
    assert_eq!(c.services, d.services);
    assert_eq!(c.preview_text, d.preview_text);
}

#[test]
fn invalid_yaml_names_file_and_line() {
    let e = refused(&[(
        "ai_prompts.yaml",
        "caption:\n  system: \"unclosed\n  role: x\n",
    )]);
    assert!(e.file.ends_with("ai_prompts.yaml"), "{e}");
    assert!(e.line.is_some(), "{e}");
    let e = refused(&[(
        "platform_limits.yaml",
        "telegram:\n\tmax_caption_length: 5\n",
    )]);
    assert!(e.file.ends_with("platform_limits.yaml"), "{e}");
    assert_eq!(e.line, Some(2), "{e}");
}

#[test]
fn a_wrong_type_names_file_key_and_line() {
    let e = refused(&[("service_limits.yaml", "ai:\n  rate_per_minute: fast\n")]);
    assert!(e.file.ends_with("service_limits.yaml"), "{e}");
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("ai.rate_per_minute"), Some(2)),
        "{e}"
    );
    let e = refused(&[("ai_prompts.yaml", "vision:\n  system:\n    - a\n    - b\n")]);
    assert_eq!(e.key.as_deref(), Some("vision.system"), "{e}");
    let e = refused(&[("web_ui_text.de.yaml", "buttons:\n  keep: [Behalten]\n")]);
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("buttons.keep"), Some(2)),
        "{e}"
    );
    let e = refused(&[("platform_limits.yaml", "email:\n  caption_target: title\n")]);
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("email.caption_target"), Some(2)),
        "{e}"
    );
}

#[test]
fn an_unknown_key_names_file_key_and_line() {
    let e = refused(&[("ai_prompts.yaml", "caption:\n  system: x\n  sytem: y\n")]);
    assert!(e.file.ends_with("ai_prompts.yaml"));
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("caption.sytem"), Some(3)),
        "{e}"
    );
    assert!(e.reason.contains("unknown field"), "{e}");
    let e = refused(&[(
        "platform_limits.yaml",
        "mastodon:\n  max_caption_length: 500\n",
    )]);
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("mastodon"), Some(1)),
        "{e}"
    );
    let e = refused(&[(
        "web_ui_text.de.yaml",
        "title: T\nbuttons:\n  keep: B\n  kepe: C\n",
    )]);
    assert!(e.file.ends_with("web_ui_text.de.yaml"));
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("buttons.kepe"), Some(4)),
        "{e}"
    );
    let e = refused(&[("preview_text.yaml", "messages:\n  hots: x\n")]);
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("messages.hots"), Some(2)),
        "{e}"
    );
    let e = refused(&[("web_ui_text.de.yaml", "knöpfe:\n  keep: B\n")]);
    assert_eq!((e.key.as_deref(), e.line), (Some("knöpfe"), Some(1)), "{e}");
}

#[test]
fn an_out_of_range_value_names_file_key_and_line() {
    let e = refused(&[(
        "platform_limits.yaml",
        "generic:\n  max_caption_length: 0\n",
    )]);
    assert!(e.file.ends_with("platform_limits.yaml"));
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("generic.max_caption_length"), Some(2)),
        "{e}"
    );
    assert!(e.reason.contains("out of range"), "{e}");
    let e = refused(&[(
        "platform_limits.yaml",
        "telegram:\n  max_caption_length: 4096\n",
    )]);
    assert_eq!(e.key.as_deref(), Some("telegram.max_caption_length"), "{e}");
    assert!(e.reason.contains("1 to 1024"), "{e}");
    let e = refused(&[("service_limits.yaml", "smtp:\n  timeout_seconds: 0\n")]);
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("smtp.timeout_seconds"), Some(2)),
        "{e}"
    );
    let e = refused(&[(
        "ai_prompts.yaml",
        "confirmation_tags:\n  default_count: -1\n",
    )]);
    assert_eq!(
        e.key.as_deref(),
        Some("confirmation_tags.default_count"),
        "{e}"
    );
    // A placeholder the text does not have is out of range too.
    let e = refused(&[(
        "web_ui_text.de.yaml",
        "activity:\n  kept: \"{name} nach {ordner}\"\n",
    )]);
    assert_eq!(
        (e.key.as_deref(), e.line),
        (Some("activity.kept"), Some(2)),
        "{e}"
    );
    assert!(
        e.reason.contains("{ordner}") && e.reason.contains("{folder}"),
        "{e}"
    );
}

#[test]
fn unknown_files_and_directories_stop_the_start() {
    let e = refused(&[("ai_prompt.yaml", "caption:\n  system: x\n")]);
    assert!(
        e.file.ends_with("ai_prompt.yaml") && e.reason.contains("unknown file"),
        "{e}"
    );
    let e = refused(&[("web_ui_text.deutsch.yaml", "title: x\n")]);
    assert!(e.reason.contains("unknown file"), "{e}");
    // Other files are not the loader's business.
    load(&[("README.md", "# notes"), (".hidden.yaml", "x: [")]).expect("ignored");
    let scratch = tempfile::tempdir().expect("scratch dir");
    let missing = scratch.path().join("no-such-directory");
    let e = StaticConfig::load(Some(&missing)).expect_err("missing directory");
    assert!(e.reason.contains("cannot read the directory"), "{e}");
}

#[test]
fn the_message_names_file_line_and_key() {
    let e = refused(&[("ai_prompts.yaml", "caption:\n  sytem: y\n")]);
    let text = e.to_string();
    assert!(
        text.contains("ai_prompts.yaml, line 2, key caption.sytem: unknown field"),
        "{text}"
    );
}

#[test]
fn the_page_language_follows_accept_language() {
    let c = load(&[("web_ui_text.de.yaml", "buttons:\n  keep: Behalten\n")]).expect("valid");
    assert_eq!(c.ui_language(Some("de-DE,de;q=0.9,en;q=0.5")), "de");
    assert_eq!(c.ui_language(Some("fr")), "en");
    assert_eq!(c.ui_language(None), "en");
    assert_eq!(StaticConfig::defaults().ui_language(Some("de")), "en");
}
