//! What the AI is asked to write (the [`CaptionSpec`]) and how one caption is
//! fitted to each platform (`docs/publishing.md`, Captions).
//! Lengths are counted in Unicode scalar values, as the platforms count them.

use std::sync::LazyLock;

use regex::Regex;

use crate::config::TenantConfig;

/// Where a caption goes; each platform has its own rules and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Telegram,
    FetlifeEmail,
    Generic,
}

impl Platform {
    /// The longest caption the platform takes.
    pub fn limit(self) -> usize {
        match self {
            Platform::Telegram => 1024,
            Platform::FetlifeEmail => 240,
            Platform::Generic => 2200,
        }
    }

    /// The caption as this platform gets it.
    pub fn format(self, caption: &str) -> String {
        match self {
            Platform::FetlifeEmail => fit(&plain_text(caption), self.limit()),
            Platform::Telegram | Platform::Generic => fit(caption.trim(), self.limit()),
        }
    }
}

/// The brief for the one caption generated per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionSpec {
    /// `fetlife_email` or `generic`, as the prompt names it.
    pub platform: &'static str,
    pub style: &'static str,
    /// Hashtags the caption must carry (empty: none).
    pub hashtags: String,
    pub max_length: usize,
}

impl CaptionSpec {
    /// With an enabled FetLife publisher the caption is written for its e-mail
    /// (no hashtags, short); otherwise a generic caption with the tenant's hashtags.
    pub fn for_config(config: &TenantConfig) -> Self {
        if config.publishers.fetlife.is_some() {
            CaptionSpec {
                platform: "fetlife_email",
                style: "engagement_question",
                hashtags: String::new(),
                max_length: Platform::FetlifeEmail.limit(),
            }
        } else {
            CaptionSpec {
                platform: "generic",
                style: "minimal_poetic",
                hashtags: config.content.hashtag_string.trim().to_string(),
                max_length: Platform::Generic.limit(),
            }
        }
    }

    /// The caption with every hashtag of the spec it lacks appended, so the
    /// tenant's hashtags are there even when the model left some out.
    pub fn with_hashtags(&self, caption: &str) -> String {
        let caption = caption.trim();
        let present: Vec<String> = HASHTAG
            .find_iter(caption)
            .map(|m| m.as_str().to_lowercase())
            .collect();
        let missing: Vec<&str> = HASHTAG
            .find_iter(&self.hashtags)
            .map(|m| m.as_str())
            .filter(|tag| !present.contains(&tag.to_lowercase()))
            .collect();
        match (caption.is_empty(), missing.is_empty()) {
            (_, true) => caption.to_string(),
            (true, false) => missing.join(" "),
            (false, false) => format!("{caption} {}", missing.join(" ")),
        }
    }
}

static HASHTAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"#\w+").expect("static pattern"));

/// FetLife's e-mail rules: no hashtags, plain ASCII punctuation, one line.
fn plain_text(caption: &str) -> String {
    let without_tags = HASHTAG.replace_all(caption, " ");
    let mut out = String::with_capacity(without_tags.len());
    for c in without_tags.chars() {
        match c {
            '\u{2014}' | '\u{2013}' | '\u{2212}' => out.push_str(" - "),
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' => out.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' => out.push('"'),
            '\u{2026}' => out.push_str("..."),
            '\u{200B}' | '\u{00A0}' => out.push(' '),
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` within `limit` scalar values: as is when it fits; else without its
/// hashtags (cut before the first ` #`) when that fits; else cut to `limit - 1`,
/// right-trimmed, plus `…`.
fn fit(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    if let Some(at) = text.find(" #") {
        let head = text[..at].trim_end();
        if !head.is_empty() && head.chars().count() <= limit {
            return head.to_string();
        }
    }
    let cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fetlife_rules() {
        let cases = [
            ("Rope study #shibari #art", "Rope study"),
            ("#lead tag then text", "tag then text"),
            ("mid#dle hash", "mid hash"),
            ("a — b – c − d", "a - b - c - d"),
            ("x—y", "x - y"),
            (
                "\u{201C}quoted\u{201D} and \u{2018}single\u{2019}",
                "\"quoted\" and 'single'",
            ),
            (
                "low \u{201E}german\u{201C} \u{201A}x\u{2018}",
                "low \"german\" 'x'",
            ),
            ("wait…", "wait..."),
            ("zero\u{200B}width\u{00A0}nbsp", "zero width nbsp"),
            ("  many \n\t spaces\r\n here  ", "many spaces here"),
            ("# alone stays", "# alone stays"),
            ("café #über naïve", "café naïve"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(Platform::FetlifeEmail.format(input), expected, "{input:?}");
        }
    }

    #[test]
    fn limits_per_platform() {
        assert_eq!(Platform::Telegram.limit(), 1024);
        assert_eq!(Platform::FetlifeEmail.limit(), 240);
        assert_eq!(Platform::Generic.limit(), 2200);
        for platform in [
            Platform::Telegram,
            Platform::FetlifeEmail,
            Platform::Generic,
        ] {
            let exact = "a".repeat(platform.limit());
            assert_eq!(
                platform.format(&exact),
                exact,
                "{platform:?} keeps an exact fit"
            );
            let over = "a".repeat(platform.limit() + 1);
            let cut = platform.format(&over);
            assert_eq!(cut.chars().count(), platform.limit());
            assert!(cut.ends_with('…'));
        }
    }

    #[test]
    fn over_the_limit_drops_hashtags_first() {
        let text = format!("{} #one #two", "b".repeat(1020));
        assert_eq!(Platform::Telegram.format(&text), "b".repeat(1020));
        // The text before the hashtags is itself too long: cut and ellipsis.
        let text = format!("{}  {} #one", "a".repeat(1022), "b".repeat(100));
        let cut = Platform::Telegram.format(&text);
        assert_eq!(
            cut,
            format!("{}…", "a".repeat(1022)),
            "right-trimmed after the cut"
        );
        // Under the limit nothing changes, hashtags included.
        assert_eq!(Platform::Generic.format(" short #tag "), "short #tag");
    }

    #[test]
    fn cuts_count_scalar_values_not_bytes() {
        let text = "é".repeat(241);
        let cut = Platform::FetlifeEmail.format(&text);
        assert_eq!(cut.chars().count(), 240);
        assert_eq!(cut, format!("{}…", "é".repeat(239)));
        let emoji = "🪢".repeat(1024);
        assert_eq!(Platform::Telegram.format(&emoji), emoji);
    }

    #[test]
    fn hashtags_only_caption_is_cut_not_emptied() {
        let text = format!(" #{}", "x".repeat(300));
        let cut = fit(&text, 240);
        assert_eq!(cut.chars().count(), 240);
        assert!(cut.starts_with(" #x"));
    }

    #[test]
    fn spec_follows_the_publishers() {
        let mut config = crate::config::standalone_config(&crate::config::StandaloneEnv {
            storage_paths: Some(serde_json::json!({"root": "/p"})),
            content_settings: Some(serde_json::json!({"hashtag_string": " #fineart #rope "})),
            ..Default::default()
        })
        .expect("config");
        let generic = CaptionSpec::for_config(&config);
        assert_eq!(
            generic,
            CaptionSpec {
                platform: "generic",
                style: "minimal_poetic",
                hashtags: "#fineart #rope".into(),
                max_length: 2200,
            }
        );
        config.publishers.fetlife = Some(crate::config::FetlifeConfig {
            recipient: "x@example.com".into(),
            caption_target: crate::config::CaptionTarget::Subject,
            subject_mode: crate::config::SubjectMode::Normal,
        });
        let fetlife = CaptionSpec::for_config(&config);
        assert_eq!(
            (
                fetlife.platform,
                fetlife.style,
                fetlife.hashtags.as_str(),
                fetlife.max_length
            ),
            ("fetlife_email", "engagement_question", "", 240)
        );
    }

    #[test]
    fn missing_hashtags_are_appended() {
        let spec = CaptionSpec {
            platform: "generic",
            style: "minimal_poetic",
            hashtags: "#fineart #rope".into(),
            max_length: 2200,
        };
        assert_eq!(spec.with_hashtags("Dusk. #Rope"), "Dusk. #Rope #fineart");
        assert_eq!(
            spec.with_hashtags("Dusk. #rope #fineart"),
            "Dusk. #rope #fineart"
        );
        assert_eq!(spec.with_hashtags(""), "#fineart #rope");
        let none = CaptionSpec {
            hashtags: String::new(),
            ..spec
        };
        assert_eq!(none.with_hashtags(" Dusk. "), "Dusk.");
    }

    /// Property tests (`make fuzz` runs them at 20 000 cases each): captions
    /// come from OpenAI, so any text must fit.
    mod properties {
        use super::*;

        proptest! {
            #[test]
            fn formatting_never_exceeds_the_limit(text in any::<String>()) {
                for platform in [Platform::Telegram, Platform::FetlifeEmail, Platform::Generic] {
                    prop_assert!(platform.format(&text).chars().count() <= platform.limit());
                }
            }

            #[test]
            fn long_unicode_is_fitted(text in "\\PC{200,2600}", tags in "( #\\w{1,12}){0,20}") {
                let text = format!("{text}{tags}");
                for platform in [Platform::Telegram, Platform::FetlifeEmail, Platform::Generic] {
                    let out = platform.format(&text);
                    prop_assert!(out.chars().count() <= platform.limit());
                }
                let email = Platform::FetlifeEmail.format(&text);
                prop_assert!(!HASHTAG.is_match(&email), "{}", email);
            }
        }
    }
}
