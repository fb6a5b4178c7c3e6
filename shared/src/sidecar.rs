//! The sidecar file `<stem>.txt` beside an image (`docs/publishing.md`, Sidecar): the
//! sd_caption on line 1, then `# key: value` metadata lines after `# ---`.

use serde_json::{Map, Value};

/// Metadata keys in the order they are written; the extended ones only when
/// `captionfile.extended_metadata_enabled`.
pub const BASE_KEYS: [&str; 9] = [
    "image_file",
    "dropbox_file_id",
    "dropbox_rev",
    "sha256",
    "created",
    "sd_caption_version",
    "model_version",
    "artist_alias",
    "caption",
];
pub const EXTENDED_KEYS: [&str; 12] = [
    "subject",
    "lighting",
    "pose",
    "camera",
    "materials",
    "art_style",
    "composition",
    "background",
    "color_palette",
    "tags",
    "aesthetic_terms",
    "moderation",
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sidecar {
    pub sd_caption: String,
    pub metadata: Map<String, Value>,
}

impl Sidecar {
    /// The human caption: metadata `caption` when present, else the sd_caption.
    pub fn caption(&self) -> Option<String> {
        match self.metadata.get("caption") {
            Some(Value::String(c)) if !c.is_empty() => Some(c.clone()),
            _ => Some(self.sd_caption.clone()).filter(|c| !c.is_empty()),
        }
    }

    /// The sidecar's text. Keys are written in the documented order (extended
    /// keys only when `extended`); keys outside that order, and empty values,
    /// are left out.
    pub fn render(&self, extended: bool) -> String {
        let mut out = format!("{}\n\n# ---\n", one_line(&self.sd_caption));
        let keys = BASE_KEYS
            .iter()
            .chain(EXTENDED_KEYS.iter().filter(|_| extended));
        for key in keys {
            let Some(value) = self.metadata.get(*key) else {
                continue;
            };
            let text = match value {
                Value::Null => continue,
                Value::String(s) => one_line(s),
                Value::Array(a) if a.is_empty() => continue,
                Value::Object(o) if o.is_empty() => continue,
                other => other.to_string(),
            };
            if !text.is_empty() {
                out.push_str(&format!("# {key}: {text}\n"));
            }
        }
        out
    }

    /// Reads a sidecar; anything unexpected is kept as text, never an error.
    pub fn parse(text: &str) -> Sidecar {
        let mut lines = text.lines();
        let sd_caption = lines
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .to_string();
        let mut metadata = Map::new();
        let mut in_metadata = false;
        for line in lines {
            let line = line.trim_end_matches('\r');
            if !in_metadata {
                in_metadata = line.starts_with("# ---");
                continue;
            }
            let Some((key, value)) = line.strip_prefix("# ").and_then(|l| l.split_once(": "))
            else {
                continue;
            };
            let value = if value.starts_with('[') || value.starts_with('{') {
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()))
            } else {
                Value::String(value.to_string())
            };
            metadata.insert(key.to_string(), value);
        }
        Sidecar {
            sd_caption,
            metadata,
        }
    }
}

/// Line breaks would end the value early; they become spaces.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sidecar path for an image path: same folder, extension `.txt`.
pub fn sidecar_path(image_path: &str) -> String {
    let (dir, name) = image_path.rsplit_once('/').unwrap_or(("", image_path));
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    if image_path.contains('/') {
        format!("{dir}/{stem}.txt")
    } else {
        format!("{stem}.txt")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Sidecar {
        let metadata = json!({
            "caption": "Golden hour — rope study",
            "image_file": "IMG_1.jpg",
            "sha256": "abc",
            "created": "2026-11-26T09:00:00Z",
            "sd_caption_version": "v1.0",
            "artist_alias": null,
            "dropbox_rev": "",
            "tags": ["rope", "café"],
            "lighting": "soft",
            "unknown_key": "dropped",
        });
        Sidecar {
            sd_caption: "a woman in rope, golden light".into(),
            metadata: metadata.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn renders_in_documented_order_without_empty_values() {
        assert_eq!(
            sample().render(false),
            "a woman in rope, golden light\n\n# ---\n# image_file: IMG_1.jpg\n# sha256: abc\n\
             # created: 2026-11-26T09:00:00Z\n# sd_caption_version: v1.0\n\
             # caption: Golden hour — rope study\n"
        );
        let extended = sample().render(true);
        assert!(extended.ends_with("# caption: Golden hour — rope study\n# lighting: soft\n# tags: [\"rope\",\"café\"]\n"), "{extended}");
    }

    #[test]
    fn parse_reads_back_what_render_wrote() {
        let parsed = Sidecar::parse(&sample().render(true));
        assert_eq!(parsed.sd_caption, "a woman in rope, golden light");
        assert_eq!(parsed.metadata["tags"], json!(["rope", "café"]));
        assert_eq!(parsed.metadata["lighting"], "soft");
        assert!(!parsed.metadata.contains_key("unknown_key"));
        assert_eq!(
            parsed.caption().as_deref(),
            Some("Golden hour — rope study")
        );
    }

    #[test]
    fn parse_is_lenient() {
        let text = "sd only\r\n# key: before marker ignored\n# --- extra\n# good: a: b\n# bad: [1, 2\nnot a meta line\n# obj: {\"a\": 1}\n";
        let parsed = Sidecar::parse(text);
        assert_eq!(parsed.sd_caption, "sd only");
        assert_eq!(parsed.metadata["good"], "a: b");
        assert_eq!(parsed.metadata["bad"], "[1, 2");
        assert_eq!(parsed.metadata["obj"], json!({"a": 1}));
        assert!(!parsed.metadata.contains_key("key"));
        assert_eq!(
            parsed.caption().as_deref(),
            Some("sd only"),
            "falls back to sd_caption"
        );
        assert_eq!(Sidecar::parse("").caption(), None);
    }

    #[test]
    fn line_breaks_cannot_break_the_format() {
        let mut sidecar = sample();
        sidecar.sd_caption = "two\nlines".into();
        sidecar
            .metadata
            .insert("caption".into(), json!("x\n# injected: yes"));
        let parsed = Sidecar::parse(&sidecar.render(false));
        assert_eq!(parsed.sd_caption, "two lines");
        assert!(!parsed.metadata.contains_key("injected"));
    }

    #[test]
    fn sidecar_sits_beside_the_image() {
        assert_eq!(sidecar_path("/Photos/x/IMG_1.JPG"), "/Photos/x/IMG_1.txt");
        assert_eq!(sidecar_path("/a.b/c.d.jpeg"), "/a.b/c.d.txt");
        assert_eq!(sidecar_path("noext"), "noext.txt");
    }

    /// Property tests (`make fuzz` runs them at 20 000 cases each).
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Text as sidecars hold it, and as a hostile file may: line breaks
        /// of every kind, markers, JSON-ish fragments, any Unicode.
        fn text() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    "\\PC{0,12}",
                    Just("\n".to_string()),
                    Just("\r\n".to_string()),
                    Just("\r".to_string()),
                    Just("# ---".to_string()),
                    Just("# caption: ".to_string()),
                    Just(": ".to_string()),
                    Just("[".to_string()),
                    Just("{\"a\": [1, ".to_string()),
                ],
                0..24,
            )
            .prop_map(|parts| parts.concat())
        }

        /// A value the workflow writes: one line of text that does not
        /// look like JSON (the format reads `[...]` and `{...}` as JSON),
        /// or a non-empty list of such strings.
        fn value() -> impl Strategy<Value = Value> {
            let line = "[^\\[{\\r\\n][^\\r\\n]{0,30}";
            prop_oneof![
                line.prop_map(Value::String),
                prop::collection::vec("\\PC{0,12}", 1..5)
                    .prop_map(|items| Value::Array(items.into_iter().map(Value::String).collect())),
            ]
        }

        fn sidecar() -> impl Strategy<Value = Sidecar> {
            let keys: Vec<&'static str> = BASE_KEYS
                .iter()
                .chain(EXTENDED_KEYS.iter())
                .copied()
                .collect();
            (
                "[^\\r\\n]{0,40}",
                prop::collection::btree_map(prop::sample::select(keys), value(), 0..12),
            )
                .prop_map(|(sd_caption, metadata)| Sidecar {
                    sd_caption,
                    metadata: metadata
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                })
        }

        proptest! {
            #[test]
            fn parse_never_panics(text in text()) {
                let sidecar = Sidecar::parse(&text);
                let _ = sidecar.caption();
                prop_assert!(!sidecar.sd_caption.contains('\n'));
            }

            #[test]
            fn render_then_parse_gives_the_sidecar_back(sidecar in sidecar()) {
                let parsed = Sidecar::parse(&sidecar.render(true));
                prop_assert_eq!(parsed, sidecar);
            }

            /// Whatever was read, written again reads the same, whatever it
            /// held: rendering is stable after one round.
            #[test]
            fn a_read_sidecar_rewrites_stably(text in text(), extended in any::<bool>()) {
                let once = Sidecar::parse(&Sidecar::parse(&text).render(extended)).render(extended);
                let twice = Sidecar::parse(&once).render(extended);
                prop_assert_eq!(twice, once);
            }
        }
    }
}
