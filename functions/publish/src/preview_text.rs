//! The human-readable preview the local publish command prints with
//! `--preview`: per host the image, its analysis, the caption per platform,
//! the e-mail and the configuration, in the words of `preview_text.yaml`.
//! Lambda's answer stays JSON.

use publisher::static_config::StaticConfig;
use publisher::workflow::{Status, Summary};

/// Sets `preview: true` on a plain event or a Scheduled Event's `detail`.
pub fn force_preview(event: &mut serde_json::Value) {
    if event.get("detail-type").is_some() && !event["detail"].is_object() {
        event["detail"] = serde_json::json!({});
    }
    let fields = match event.get_mut("detail") {
        Some(detail) if detail.is_object() => detail,
        _ => event,
    };
    if let Some(fields) = fields.as_object_mut() {
        fields.insert("preview".into(), true.into());
    }
}

/// The preview of every summary of a publish answer; `ai_rate` is the
/// effective `AI_RATE_PER_MINUTE` (the variable over the file).
pub fn render(summaries: &[Summary], statics: &StaticConfig, ai_rate: u32) -> String {
    let text = &statics.preview_text;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let heading = |key: &str| {
        let title = text.get(key);
        format!(
            "\n── {title} {}",
            "─".repeat(60usize.saturating_sub(title.chars().count()))
        )
    };
    let title = text.get("headers.title");
    line(format!("{}\n{title}\n{}", "═".repeat(64), "═".repeat(64)));
    for summary in summaries {
        line(heading("headers.image"));
        line(text.fill("messages.host", &[("host", &summary.host)]));
        line(text.fill("messages.status", &[("status", summary.status.as_str())]));
        let Some(preview) = summary
            .preview
            .as_ref()
            .filter(|_| summary.status == Status::Preview)
        else {
            let reason = summary.error.as_deref().unwrap_or(summary.status.as_str());
            line(text.fill("messages.stopped", &[("reason", reason)]));
            continue;
        };
        let image = summary.image.as_deref().unwrap_or("");
        line(text.fill("messages.file", &[("file", image)]));

        line(heading("headers.analysis"));
        match &preview.analysis {
            Some(a) => {
                let nsfw = a.nsfw.to_string();
                let tags = a.tags.join(", ");
                for (key, value) in [
                    ("messages.description", a.description.as_str()),
                    ("messages.mood", a.mood.as_str()),
                    ("messages.tags", tags.as_str()),
                    ("messages.nsfw", nsfw.as_str()),
                ] {
                    line(text.fill(key, &[("text", value)]));
                }
            }
            None => line(text.get("messages.analysis_skipped").to_string()),
        }

        line(heading("headers.captions"));
        if preview.captions.values().all(String::is_empty) {
            line(text.get("messages.no_caption").to_string());
        } else {
            for (platform, caption) in &preview.captions {
                line(text.fill(
                    "messages.caption",
                    &[("platform", platform), ("caption", caption)],
                ));
            }
        }
        if let Some(sidecar) = &preview.sidecar {
            line(text.get("messages.sidecar").to_string());
            for sidecar_line in sidecar.lines() {
                line(format!("  {sidecar_line}"));
            }
        } else {
            line(text.get("messages.no_sidecar").to_string());
        }

        line(heading("headers.email"));
        match &preview.email_subject {
            Some(subject) => {
                line(text.fill("messages.subject", &[("text", subject)]));
                let body = preview.captions.get("email").map_or("", String::as_str);
                line(text.fill("messages.body", &[("text", body)]));
            }
            None => line(text.get("messages.no_email").to_string()),
        }

        line(heading("headers.configuration"));
        let publishers: Vec<&str> = summary.results.keys().map(String::as_str).collect();
        let list = match publishers.is_empty() {
            true => text.get("messages.no_publishers").to_string(),
            false => publishers.join(", "),
        };
        line(text.fill("messages.publishers", &[("list", &list)]));
        configuration(statics, &mut line);
        line(text.fill("messages.ai_rate", &[("rate", &ai_rate.to_string())]));
    }
    line(String::new());
    line(text.get("headers.footer").to_string());
    out
}

/// The process-wide settings that shaped the preview.
fn configuration(statics: &StaticConfig, line: &mut impl FnMut(String)) {
    let text = &statics.preview_text;
    let source = match &statics.dir {
        Some(dir) => dir.display().to_string(),
        None => text.get("messages.embedded_defaults").to_string(),
    };
    line(text.fill("messages.static_config", &[("source", &source)]));
    let limits = &statics.platforms;
    let (telegram, email, generic) = (
        limits.telegram.max_caption_length.to_string(),
        limits.email.max_caption_length.to_string(),
        limits.generic.max_caption_length.to_string(),
    );
    line(text.fill(
        "messages.caption_limits",
        &[
            ("telegram", &telegram),
            ("email", &email),
            ("generic", &generic),
        ],
    ));
    let width = limits
        .telegram
        .resize_width_px
        .map_or_else(|| "-".to_string(), |w| w.to_string());
    line(text.fill("messages.telegram_width", &[("width", &width)]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use publisher::ai::Analysis;
    use publisher::publishers::PublishResult;
    use publisher::workflow::Preview;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn preview_summary() -> Summary {
        let mut summary = Summary::new("vermont.shibari.photo", Some("vermont"), Status::Preview);
        summary.image = Some("wide.jpg".into());
        summary.results = BTreeMap::from([
            ("email".to_string(), PublishResult::published(None)),
            ("telegram".to_string(), PublishResult::published(None)),
        ]);
        summary.preview = Some(Preview {
            captions: BTreeMap::from([
                ("email".to_string(), "Dusk rope".to_string()),
                ("telegram".to_string(), "Dusk rope #rope".to_string()),
            ]),
            email_subject: Some("Private: Dusk rope".into()),
            sidecar: Some("sd text\n\n# ---\n# caption: Dusk rope\n".into()),
            analysis: Some(Analysis {
                description: "A figure in rope".into(),
                mood: "calm".into(),
                tags: vec!["rope".into(), "shibari".into()],
                ..Analysis::default()
            }),
        });
        summary
    }

    #[test]
    fn sections_in_the_words_of_the_defaults() {
        let statics = StaticConfig::defaults();
        let text = render(&[preview_summary()], statics, 7);
        let order = [
            "PUBLISH PREVIEW",
            "── Image ",
            "Host: vermont.shibari.photo",
            "File: wide.jpg",
            "── Analysis ",
            "Description: A figure in rope",
            "Tags: rope, shibari",
            "── Captions per platform ",
            "email: Dusk rope",
            "telegram: Dusk rope #rope",
            "  # caption: Dusk rope",
            "── FetLife e-mail ",
            "Subject: Private: Dusk rope",
            "Body: Dusk rope",
            "── Configuration ",
            "Publishers: email, telegram",
            "Static configuration: embedded defaults",
            "Caption limits: telegram 1024, e-mail 240, generic 2200",
            "Telegram photo width: 1280 px",
            "AI calls per minute and tenant: 7",
            "Preview only: nothing was sent, written or moved.",
        ];
        let mut at = 0;
        for expected in order {
            let found = text[at..]
                .find(expected)
                .unwrap_or_else(|| panic!("{expected:?} after byte {at} in\n{text}"));
            at += found + expected.len();
        }
    }

    #[test]
    fn headers_and_messages_come_from_the_file() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        std::fs::write(
            dir.join("preview_text.yaml"),
            "headers:\n  analysis: BILDANALYSE\nmessages:\n  mood: \"Stimmung = {text}\"\n",
        )
        .unwrap();
        let statics = StaticConfig::load(Some(dir)).unwrap();
        let text = render(&[preview_summary()], &statics, 20);
        assert!(text.contains("── BILDANALYSE "), "{text}");
        assert!(text.contains("Stimmung = calm"), "{text}");
        assert!(text.contains(&format!("Static configuration: {}", dir.display())));
    }

    #[test]
    fn a_host_that_did_not_preview_says_why() {
        let stopped = Summary::stopped(
            "x.shibari.photo",
            None,
            publisher::workflow::Reason::TenantNotFound,
        );
        let text = render(&[stopped], StaticConfig::defaults(), 20);
        assert!(text.contains("Status: not_found"), "{text}");
        assert!(text.contains("Nothing to preview: "), "{text}");
        assert!(!text.contains("── Analysis"), "{text}");
    }

    #[test]
    fn preview_is_forced_on_plain_and_scheduled_events() {
        let mut plain = json!({"host": "x.shibari.photo"});
        force_preview(&mut plain);
        assert_eq!(plain["preview"], true);
        let mut scheduled = json!({"detail-type": "Scheduled Event", "detail": {"host": "x"}});
        force_preview(&mut scheduled);
        assert_eq!(scheduled["detail"]["preview"], true);
        assert!(scheduled.get("preview").is_none());
        let mut empty = json!({"detail-type": "Scheduled Event", "detail": null});
        force_preview(&mut empty);
        assert_eq!(empty["detail"]["preview"], true);
    }
}
