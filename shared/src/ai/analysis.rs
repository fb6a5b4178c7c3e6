//! What the vision model saw, read leniently from its answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the vision model saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub description: String,
    pub mood: String,
    pub tags: Vec<String>,
    pub nsfw: bool,
    pub safety_labels: Vec<String>,
    pub subject: String,
    pub style: String,
    pub lighting: String,
    pub camera: String,
    pub clothing_or_accessories: String,
    pub aesthetic_terms: Vec<String>,
    pub pose: String,
    pub composition: String,
    pub background: String,
    pub color_palette: String,
}

impl Analysis {
    /// Reads the model's answer; a non-JSON answer becomes the fallback analysis.
    pub fn from_answer(answer: &str) -> Analysis {
        match serde_json::from_str::<Value>(strip_fence(answer)) {
            Ok(Value::Object(map)) => {
                let text = |key: &str| text_of(map.get(key));
                let list = |key: &str| list_of(map.get(key));
                Analysis {
                    description: text("description"),
                    mood: text("mood"),
                    tags: list("tags"),
                    nsfw: match map.get("nsfw") {
                        Some(Value::Bool(b)) => *b,
                        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                        _ => false,
                    },
                    safety_labels: list("safety_labels"),
                    subject: text("subject"),
                    style: text("style"),
                    lighting: text("lighting"),
                    camera: text("camera"),
                    clothing_or_accessories: text("clothing_or_accessories"),
                    aesthetic_terms: list("aesthetic_terms"),
                    pose: text("pose"),
                    composition: text("composition"),
                    background: text("background"),
                    color_palette: text("color_palette"),
                }
            }
            _ => Analysis {
                description: answer.trim().chars().take(100).collect(),
                mood: "unknown".into(),
                ..Analysis::default()
            },
        }
    }

    /// A short text of the analysis for the caption prompt.
    pub(super) fn for_prompt(&self) -> String {
        let mut lines = Vec::new();
        let mut push = |key: &str, value: String| {
            if !value.is_empty() {
                lines.push(format!("{key}: {value}"));
            }
        };
        push("description", self.description.clone());
        push("mood", self.mood.clone());
        push("tags", self.tags.join(", "));
        push("subject", self.subject.clone());
        push("style", self.style.clone());
        push("lighting", self.lighting.clone());
        push("pose", self.pose.clone());
        push("composition", self.composition.clone());
        push("aesthetic terms", self.aesthetic_terms.join(", "));
        lines.join("\n")
    }
}

/// Models sometimes wrap JSON in a Markdown code fence despite JSON mode.
pub(super) fn strip_fence(answer: &str) -> &str {
    let trimmed = answer.trim();
    trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .map_or(trimmed, str::trim)
}

fn text_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Array(items)) => list_of(Some(&Value::Array(items.clone()))).join(", "),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn list_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_reads_every_key_leniently() {
        let answer = r#"{"description":"A figure in rope","mood":"calm","tags":["rope"," shibari ",""],
            "nsfw":false,"safety_labels":[],"subject":"person","style":"fine art","lighting":"soft",
            "camera":"35mm","clothing_or_accessories":["jute rope","bracelet"],"aesthetic_terms":"moody, grainy",
            "pose":"kneeling","composition":"centered","background":"dark","color_palette":"warm"}"#;
        let a = Analysis::from_answer(answer);
        assert_eq!(a.description, "A figure in rope");
        assert_eq!(a.tags, ["rope", "shibari"]);
        assert_eq!(a.clothing_or_accessories, "jute rope, bracelet");
        assert_eq!(a.aesthetic_terms, ["moody", "grainy"]);
        assert!(!a.nsfw);
        assert_eq!(a.color_palette, "warm");
        let fenced = Analysis::from_answer("```json\n{\"mood\":\"x\",\"nsfw\":\"true\"}\n```");
        assert_eq!((fenced.mood.as_str(), fenced.nsfw), ("x", true));
    }

    #[test]
    fn non_json_answer_falls_back() {
        let long = "word ".repeat(40);
        let a = Analysis::from_answer(&long);
        assert_eq!(a.description.chars().count(), 100);
        assert_eq!(a.mood, "unknown");
        assert!(a.tags.is_empty());
        assert_eq!(Analysis::from_answer("[1,2]").mood, "unknown");
    }
}
