//! Text catalogues: `preview_text.yaml` and `web_ui_text.<lang>.yaml`. The
//! embedded file of each is its schema: another file may set only keys the
//! embedded one has, and use only the `{placeholders}` its text uses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::StaticConfigError;

/// Texts by dotted key (`buttons.admin`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Texts(BTreeMap<String, String>);

impl Texts {
    /// The text of `key`; empty for a key the catalogue lacks.
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }

    /// The text of `key` with each `{name}` replaced by its value.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        values
            .iter()
            .fold(self.get(key).to_string(), |text, (name, value)| {
                text.replace(&format!("{{{name}}}"), value)
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A copy with `entries` (read from `file`) over these texts. Each key
    /// must be one of `schema`'s, and use no placeholder its text lacks.
    pub(super) fn layered(
        &self,
        schema: &Texts,
        file: &str,
        entries: Vec<(String, Spanned<Option<String>>)>,
    ) -> Result<Texts, StaticConfigError> {
        let mut out = self.clone();
        for (
            key,
            Spanned {
                value, referenced, ..
            },
        ) in entries
        {
            let line = Some(referenced.line());
            let Some(default) = schema.0.get(&key) else {
                return Err(StaticConfigError::at(
                    file,
                    Some(key),
                    line,
                    "unknown key".to_string(),
                ));
            };
            let Some(text) = value else { continue };
            let allowed = placeholders(default);
            if let Some(unknown) = placeholders(&text).difference(&allowed).next() {
                let allowed: Vec<String> = allowed.iter().map(|p| format!("{{{p}}}")).collect();
                let reason = match allowed.is_empty() {
                    true => format!("unknown placeholder {{{unknown}}}: this text takes none"),
                    false => format!(
                        "unknown placeholder {{{unknown}}}: this text may use {}",
                        allowed.join(", ")
                    ),
                };
                return Err(StaticConfigError::at(file, Some(key), line, reason));
            }
            out.0.insert(key, text);
        }
        Ok(out)
    }

    /// The embedded catalogue itself: every entry, no schema to check.
    pub(super) fn embedded(entries: Vec<(String, Spanned<Option<String>>)>) -> Texts {
        Texts(
            entries
                .into_iter()
                .filter_map(|(key, text)| Some((key, text.value?)))
                .collect(),
        )
    }
}

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{([a-z_]+)\}").expect("static pattern"));

fn placeholders(text: &str) -> BTreeSet<String> {
    PLACEHOLDER
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

type Text = Spanned<Option<String>>;
type Section = BTreeMap<String, Text>;

/// The file's entries by dotted key.
pub(super) trait Catalogue {
    fn entries(self) -> Vec<(String, Text)>;
}

fn flatten(sections: Vec<(&str, Option<Section>)>) -> Vec<(String, Text)> {
    sections
        .into_iter()
        .flat_map(|(name, section)| {
            section
                .unwrap_or_default()
                .into_iter()
                .map(move |(key, text)| (format!("{name}.{key}"), text))
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PreviewFile {
    headers: Option<Section>,
    messages: Option<Section>,
}

impl Catalogue for PreviewFile {
    fn entries(self) -> Vec<(String, Text)> {
        flatten(vec![("headers", self.headers), ("messages", self.messages)])
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct UiFile {
    title: Option<Text>,
    header_title: Option<Text>,
    buttons: Option<Section>,
    panels: Option<Section>,
    placeholders: Option<Section>,
    status: Option<Section>,
    admin_dialog: Option<Section>,
    activity: Option<Section>,
    errors: Option<Section>,
    auth_errors: Option<Section>,
}

impl Catalogue for UiFile {
    fn entries(self) -> Vec<(String, Text)> {
        let mut entries: Vec<(String, Text)> =
            [("title", self.title), ("header_title", self.header_title)]
                .into_iter()
                .filter_map(|(key, text)| Some((key.to_string(), text?)))
                .collect();
        entries.extend(flatten(vec![
            ("buttons", self.buttons),
            ("panels", self.panels),
            ("placeholders", self.placeholders),
            ("status", self.status),
            ("admin_dialog", self.admin_dialog),
            ("activity", self.activity),
            ("errors", self.errors),
            ("auth_errors", self.auth_errors),
        ]));
        entries
    }
}

/// The language of `web_ui_text.<lang>.yaml`: a language tag such as `de`
/// or `pt-br`, lower-cased.
pub(super) fn language_of(file_name: &str) -> Option<String> {
    let lang = file_name
        .strip_prefix("web_ui_text.")?
        .strip_suffix(".yaml")?;
    let mut parts = lang.split('-');
    let primary = parts.next()?;
    let valid = (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    valid.then(|| lang.to_ascii_lowercase())
}

/// The language to answer in: the first of the `Accept-Language` header's
/// languages, by quality, that `available` has, matched whole (`pt-br`) or
/// by its primary subtag (`de-at` → `de`); `en` when none is.
///
/// Hand-written: the maintained negotiation crate (fluent-langneg) ignores
/// the header's `q` values, and what is needed here is a dozen lines.
pub fn negotiate<'a, T>(header: Option<&str>, available: &'a BTreeMap<String, T>) -> &'a str {
    let mut wanted: Vec<(f32, usize, String)> = header
        .unwrap_or("")
        .split(',')
        .enumerate()
        .filter_map(|(order, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(str::trim))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok())?;
            (!tag.is_empty() && tag != "*" && quality > 0.0).then_some((quality, order, tag))
        })
        .collect();
    // Highest quality first; equal qualities in the header's order.
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let find = |tag: &str| available.get_key_value(tag).map(|(k, _)| k.as_str());
    wanted
        .iter()
        .find_map(|(_, _, tag)| find(tag).or_else(|| find(tag.split('-').next().unwrap_or(tag))))
        .or_else(|| find(super::DEFAULT_LANGUAGE))
        .unwrap_or(super::DEFAULT_LANGUAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_honours_quality_and_primary_subtags() {
        let available: BTreeMap<String, ()> = ["de", "en", "pt-br"]
            .map(|lang| (lang.to_string(), ()))
            .into();
        let cases = [
            (None, "en"),
            (Some(""), "en"),
            (Some("de"), "de"),
            (Some("de-AT,de;q=0.9,en;q=0.8"), "de"),
            (Some("fr-FR,fr;q=0.9"), "en"),
            (Some("fr;q=1, de;q=0.5"), "de"),
            (Some("en;q=0.4, de;q=0.7"), "de"),
            (Some("de;q=0, en"), "en"),
            (Some("PT-BR"), "pt-br"),
            (Some("pt-PT, de;q=0.1"), "de"),
            (Some("*"), "en"),
            (Some("de;q=abc, en"), "en"),
            (Some(";;,,"), "en"),
        ];
        for (header, want) in cases {
            assert_eq!(negotiate(header, &available), want, "{header:?}");
        }
    }

    #[test]
    fn languages_from_file_names() {
        assert_eq!(language_of("web_ui_text.de.yaml").as_deref(), Some("de"));
        assert_eq!(
            language_of("web_ui_text.pt-BR.yaml").as_deref(),
            Some("pt-br")
        );
        for bad in [
            "web_ui_text.yaml",
            "web_ui_text..yaml",
            "web_ui_text.d.yaml",
            "web_ui_text.deutsch.yaml",
            "web_ui_text.de_DE.yaml",
            "web_ui_text.de.yml",
        ] {
            assert_eq!(language_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn fill_replaces_placeholders() {
        let texts = Texts(BTreeMap::from([(
            "a.b".to_string(),
            "Kept {name} → {folder}".to_string(),
        )]));
        assert_eq!(
            texts.fill("a.b", &[("name", "x.jpg"), ("folder", "/keep")]),
            "Kept x.jpg → /keep"
        );
        assert_eq!(texts.get("missing"), "");
    }
}
