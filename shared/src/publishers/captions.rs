//! What the AI is asked to write (the [`CaptionSpec`]) and how one caption is
//! fitted to each platform (`docs/publishing.md`, Captions), within the
//! limits of `platform_limits.yaml`.
//! Lengths are counted in Unicode scalar values, as the platforms count them.

use std::sync::LazyLock;

use regex::Regex;

use crate::config::TenantConfig;
use crate::static_config::{PlatformLimit, PlatformLimits};

/// Where a caption goes; each platform has its own rules and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Telegram,
    FetlifeEmail,
    Generic,
}

impl Platform {
    /// The platform's rules among `limits`.
    pub fn rules(self, limits: &PlatformLimits) -> &PlatformLimit {
        match self {
            Platform::Telegram => &limits.telegram,
            Platform::FetlifeEmail => &limits.email,
            Platform::Generic => &limits.generic,
        }
    }

    /// The longest caption the platform takes.
    pub fn limit(self, limits: &PlatformLimits) -> usize {
        self.rules(limits).max_caption_length
    }

    /// The caption as this platform gets it: FetLife's e-mail loses every
    /// hashtag; the others keep at most their `max_hashtags`.
    pub fn format(self, caption: &str, limits: &PlatformLimits) -> String {
        let rules = self.rules(limits);
        match self {
            Platform::FetlifeEmail => fit(&plain_text(caption), rules.max_caption_length),
            Platform::Telegram | Platform::Generic => fit(
                &first_hashtags(caption.trim(), rules.max_hashtags),
                rules.max_caption_length,
            ),
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
    pub fn for_config(config: &TenantConfig, limits: &PlatformLimits) -> Self {
        if config.publishers.fetlife.is_some() {
            CaptionSpec {
                platform: "fetlife_email",
                style: "engagement_question",
                hashtags: String::new(),
                max_length: Platform::FetlifeEmail.limit(limits),
            }
        } else {
            CaptionSpec {
                platform: "generic",
                style: "minimal_poetic",
                hashtags: config.content.hashtag_string.trim().to_string(),
                max_length: Platform::Generic.limit(limits),
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

/// `text` with its first `max` hashtags (all when `None`); each one dropped
/// takes the whitespace before it along.
fn first_hashtags(text: &str, max: Option<usize>) -> String {
    let Some(max) = max else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for tag in HASHTAG.find_iter(text).skip(max) {
        out.push_str(text[rest..tag.start()].trim_end());
        rest = tag.end();
    }
    out.push_str(&text[rest..]);
    out.trim().to_string()
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
    use crate::static_config::StaticConfig;
    use proptest::prelude::*;

    fn limits() -> &'static PlatformLimits {
        &StaticConfig::defaults().platforms
    }

    impl Platform {
        /// With the embedded limits.
        fn fmt(self, caption: &str) -> String {
            self.format(caption, limits())
        }

        fn max(self) -> usize {
            self.limit(limits())
        }
    }

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
            assert_eq!(Platform::FetlifeEmail.fmt(input), expected, "{input:?}");
        }
    }

    #[test]
    fn limits_per_platform() {
        assert_eq!(Platform::Telegram.max(), 1024);
        assert_eq!(Platform::FetlifeEmail.max(), 240);
        assert_eq!(Platform::Generic.max(), 2200);
        for platform in [
            Platform::Telegram,
            Platform::FetlifeEmail,
            Platform::Generic,
        ] {
            let exact = "a".repeat(platform.max());
            assert_eq!(
                platform.fmt(&exact),
                exact,
                "{platform:?} keeps an exact fit"
            );
            let over = "a".repeat(platform.max() + 1);
            let cut = platform.fmt(&over);
            assert_eq!(cut.chars().count(), platform.max());
            assert!(cut.ends_with('…'));
        }
    }

    #[test]
    fn over_the_limit_drops_hashtags_first() {
        let text = format!("{} #one #two", "b".repeat(1020));
        assert_eq!(Platform::Telegram.fmt(&text), "b".repeat(1020));
        // The text before the hashtags is itself too long: cut and ellipsis.
        let text = format!("{}  {} #one", "a".repeat(1022), "b".repeat(100));
        let cut = Platform::Telegram.fmt(&text);
        assert_eq!(
            cut,
            format!("{}…", "a".repeat(1022)),
            "right-trimmed after the cut"
        );
        // Under the limit nothing changes, hashtags included.
        assert_eq!(Platform::Generic.fmt(" short #tag "), "short #tag");
    }

    #[test]
    fn cuts_count_scalar_values_not_bytes() {
        let text = "é".repeat(241);
        let cut = Platform::FetlifeEmail.fmt(&text);
        assert_eq!(cut.chars().count(), 240);
        assert_eq!(cut, format!("{}…", "é".repeat(239)));
        let emoji = "🪢".repeat(1024);
        assert_eq!(Platform::Telegram.fmt(&emoji), emoji);
    }

    #[test]
    fn limits_come_from_the_static_configuration() {
        let mut custom = limits().clone();
        custom.telegram.max_caption_length = 20;
        custom.telegram.max_hashtags = Some(1);
        custom.generic.max_hashtags = Some(0);
        custom.email.max_caption_length = 10;
        custom.generic.max_caption_length = 500;
        let caption = "Rope at dusk #one #two  #three";
        assert_eq!(
            Platform::Telegram.format(caption, &custom),
            "Rope at dusk #one"
        );
        assert_eq!(Platform::Generic.format(caption, &custom), "Rope at dusk");
        assert_eq!(
            Platform::FetlifeEmail.format(caption, &custom),
            "Rope at d…"
        );
        assert_eq!(
            Platform::Telegram.fmt(caption),
            caption,
            "no hashtag limit by default"
        );
        assert_eq!(first_hashtags("#a\ntext #b #c", Some(1)), "#a\ntext");
        let spec = CaptionSpec::for_config(
            &crate::config::standalone_config(&crate::config::StandaloneEnv {
                storage_paths: Some(serde_json::json!({"root": "/p"})),
                ..Default::default()
            })
            .expect("config"),
            &custom,
        );
        assert_eq!(spec.max_length, 500);
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
        let generic = CaptionSpec::for_config(&config, limits());
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
            caption_target: None,
            subject_mode: None,
        });
        let fetlife = CaptionSpec::for_config(&config, limits());
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
                    prop_assert!(platform.fmt(&text).chars().count() <= platform.max());
                }
            }

            #[test]
            fn long_unicode_is_fitted(text in "\\PC{200,2600}", tags in "( #\\w{1,12}){0,20}") {
                let text = format!("{text}{tags}");
                for platform in [Platform::Telegram, Platform::FetlifeEmail, Platform::Generic] {
                    let out = platform.fmt(&text);
                    prop_assert!(out.chars().count() <= platform.max());
                }
                let email = Platform::FetlifeEmail.fmt(&text);
                prop_assert!(!HASHTAG.is_match(&email), "{}", email);
            }
        }
    }
}
