//! Strategies for the property tests of outside data (`tests/tests/parsers.rs`,
//! `make fuzz`): any JSON, leaning on the names and values a given format
//! knows so that generated documents reach past its first check, and random
//! edits of a sample document.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

/// A string planted among the generated values: an error message that
/// contains it quoted its input.
pub const MARKER: &str = "MARKER-c0ffee";

/// Any JSON value a few levels deep. Object keys are often one of `keys`,
/// strings often one of `words` or [`MARKER`].
pub fn json(keys: &'static [&'static str], words: &'static [&'static str]) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(Value::String(MARKER.into())),
        prop::sample::select(words).prop_map(|w| Value::String(w.into())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(keys), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn key(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(keys).prop_map(str::to_string),
        "[a-zA-Z_-]{1,10}",
    ]
}

/// One change somewhere in a document.
#[derive(Debug, Clone)]
pub enum Edit {
    Replace(Index, Value),
    Remove(Index),
    Insert(Index, String, Value),
}

pub fn edit(
    keys: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), json(keys, words)).prop_map(|(at, v)| Edit::Replace(at, v)),
        any::<Index>().prop_map(Edit::Remove),
        (any::<Index>(), key(keys), json(keys, words))
            .prop_map(|(at, k, v)| Edit::Insert(at, k, v)),
    ]
}

/// `sample` (JSON text) changed by one to four edits.
pub fn mutated(
    samples: &'static [&'static str],
    keys: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(samples),
        prop::collection::vec(edit(keys, words), 1..5),
    )
        .prop_map(|(sample, edits)| {
            let mut document = serde_json::from_str(sample).unwrap_or(Value::Null);
            for edit in edits {
                apply(&mut document, edit);
            }
            document
        })
}

/// Applies `edit` at the place its index picks among every place of `document`.
pub fn apply(document: &mut Value, edit: Edit) {
    let mut places = Vec::new();
    pointers(document, String::new(), &mut places);
    match edit {
        Edit::Replace(at, value) => {
            if let Some(target) = document.pointer_mut(at.get(&places).as_str()) {
                *target = value;
            }
        }
        Edit::Remove(at) => {
            let pointer = at.get(&places).as_str();
            let Some((parent, last)) = pointer.rsplit_once('/') else {
                return;
            };
            match document.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Some(Value::Array(items)) => {
                    if let Some(n) = last.parse::<usize>().ok().filter(|n| *n < items.len()) {
                        items.remove(n);
                    }
                }
                _ => {}
            }
        }
        Edit::Insert(at, key, value) => match document.pointer_mut(at.get(&places).as_str()) {
            Some(Value::Object(map)) => {
                map.insert(key, value);
            }
            Some(Value::Array(items)) => items.push(value),
            _ => {}
        },
    }
}

/// Every JSON pointer into `value`, itself (`at`) included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{token}"), out);
            }
        }
        Value::Array(items) => {
            for (n, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{n}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}
