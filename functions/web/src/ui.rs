//! The HTML UI (`docs/http-api.md`, The page): one page, embedded in the binary, its
//! script and style inlined and pinned by hash in the Content-Security-Policy,
//! so no other script can run on it.
//!
//! The page speaks the visitor's language: its texts come from the static
//! configuration (`web_ui_text.<lang>.yaml`), one page per language built at
//! start, chosen per request from `Accept-Language`. The texts are put into
//! the page the server sends, escaped, as element text and as a data
//! attribute the script reads; script and style stay the same in every
//! language, and so does the policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use publisher::static_config::{StaticConfig, Texts};
use sha2::{Digest, Sha256};

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// The page in every language the static configuration has.
pub struct Pages {
    statics: Arc<StaticConfig>,
    html: BTreeMap<String, String>,
    csp: String,
}

impl Pages {
    pub fn new(statics: Arc<StaticConfig>) -> Self {
        let html = statics
            .ui_text
            .iter()
            .map(|(lang, texts)| (lang.clone(), render(lang, texts)))
            .collect();
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
             img-src 'self' https: data:; connect-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
            digest(SCRIPT),
            digest(STYLE)
        );
        Self { statics, html, csp }
    }
}

/// The page in `lang`, in one pass over the template: `{{style}}` and
/// `{{script}}` become the inlined style and script as they are, `{{lang}}`
/// the language, `{{texts}}` all texts as JSON for the script, and every
/// other `{{key}}` its text; all but style and script escaped for HTML.
fn render(lang: &str, texts: &Texts) -> String {
    let json = serde_json::to_string(texts).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(PAGE.len() + SCRIPT.len() + STYLE.len() + json.len() * 2);
    let mut rest = PAGE;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        match &rest[start + 2..start + len] {
            "style" => out.push_str(STYLE),
            "script" => out.push_str(SCRIPT),
            "lang" => out.push_str(&escape(lang)),
            "texts" => out.push_str(&escape(&json)),
            key => out.push_str(&escape(texts.get(key))),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Text safe in HTML element content and in quoted attribute values.
/// Hand-written: five characters, and no HTML engine to pull in for them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn digest(text: &str) -> String {
    STANDARD.encode(Sha256::digest(text.as_bytes()))
}

pub async fn page(Extension(pages): Extension<Arc<Pages>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok());
    let lang = pages.statics.ui_language(accept);
    let html = pages.html.get(lang).cloned().unwrap_or_default();
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
            (VARY, "Accept-Language"),
            (CONTENT_LANGUAGE, lang),
            (
                HeaderName::from_static("content-security-policy"),
                pages.csp.as_str(),
            ),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
            (HeaderName::from_static("referrer-policy"), "no-referrer"),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn english() -> Texts {
        StaticConfig::defaults().ui_text["en"].clone()
    }

    #[test]
    fn every_placeholder_of_the_template_has_a_text() {
        let template = Regex::new(r"\{\{([^}]*)\}\}").unwrap();
        let texts = english();
        for key in template.captures_iter(PAGE).map(|c| c[1].to_string()) {
            if !["lang", "texts", "style", "script"].contains(&key.as_str()) {
                assert!(!texts.get(&key).is_empty(), "{{{{{key}}}}} has no text");
            }
        }
        let page = render("en", &texts);
        assert!(!page.contains("{{"), "every placeholder filled");
        assert!(page.contains("<html lang=\"en\">"));
        assert!(page.contains(">Keep</button>"));
    }

    #[test]
    fn every_text_the_script_asks_for_exists() {
        let call = Regex::new(r#"\bt\("([a-z_.]+)""#).unwrap();
        let texts = english();
        let keys: Vec<String> = call
            .captures_iter(SCRIPT)
            .map(|c| c[1].to_string())
            .collect();
        assert!(keys.len() > 30, "{keys:?}");
        for key in keys {
            assert!(!texts.get(&key).is_empty(), "app.js asks for {key}");
        }
        // Built from a template literal: `buttons.${action}`.
        for action in ["keep", "remove"] {
            assert!(!texts.get(&format!("buttons.{action}")).is_empty());
        }
    }

    #[test]
    fn texts_are_escaped_and_the_script_is_the_same_in_every_language() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("web_ui_text.de.yaml"),
            "title: \"<script>alert(1)</script> & 'x'\"\nbuttons:\n  keep: \"Behalten\\\"><img src=x>\"\n",
        )
        .unwrap();
        let statics = Arc::new(StaticConfig::load(Some(dir.path())).unwrap());
        let pages = Pages::new(statics);
        let de = &pages.html["de"];
        assert!(de.contains("<html lang=\"de\">"));
        assert!(
            de.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;</title>")
        );
        assert!(de.contains(">Behalten&quot;&gt;&lt;img src=x&gt;</button>"));
        assert!(!de.contains("<img src=x>"));
        // The JSON for the script sits in an attribute, escaped the same way.
        assert!(de.contains("data-text=\"{&quot;activity.action_failed&quot;"));
        // One script, byte for byte the one the policy's hash pins.
        for html in pages.html.values() {
            assert_eq!(html.matches("<script>").count(), 1);
            assert!(html.contains(SCRIPT));
        }
    }
}
