//! Reading one static file strictly: serde-saphyr parses the YAML straight
//! into the file's types (unknown keys refused by `deny_unknown_fields`,
//! duplicate keys refused by the parser), serde_path_to_error names the key
//! a failure happened at, and the parser's location gives its line.
//!
//! serde-saphyr, not serde_yaml: serde_yaml is archived and unmaintained;
//! serde-saphyr is maintained, panic-free on malformed input, forbids
//! `unsafe`, and reports the line and column of every error, including the
//! errors our own range checks raise while a value is read.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use super::StaticConfigError;

/// `text`, the content of `file`, read as a `T`; an empty file is all defaults.
pub(super) fn parse<T: DeserializeOwned + Default>(
    file: &str,
    text: &str,
) -> Result<T, StaticConfigError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let mut key = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            key = e.path().to_string();
            e.into_inner()
        })
    });
    // A document whose root is null (only comments) reads as all defaults.
    parsed.map(Option::unwrap_or_default).map_err(|error| {
        let line = error.location().map(|l| l.line());
        let message = error.without_snippet().to_string();
        // The position is reported on its own; the message repeats it.
        let reason = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        StaticConfigError::at(file, key_of(&key), line, reason)
    })
}

/// serde_path_to_error's path as the key to name: `.` is the document
/// itself, a trailing `?` an entry whose key was not read yet, and a
/// trailing `.value` the inside of a `Spanned` text (no file has a key
/// named `value`).
fn key_of(path: &str) -> Option<String> {
    let path = path.trim_end_matches(".?").trim_end_matches('?');
    let path = path.strip_suffix(".value").unwrap_or(path);
    (!path.is_empty() && path != ".").then(|| path.to_string())
}

/// An integer within `MIN..=MAX`; anything else is refused where it stands
/// in the file, so the error carries its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Int<const MIN: u64, const MAX: u64>(pub u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i128::deserialize(deserializer)?;
        if value < i128::from(MIN) || value > i128::from(MAX) {
            return Err(D::Error::custom(format!(
                "{value} is out of range: expected {MIN} to {MAX}"
            )));
        }
        // In range, so it fits.
        Ok(Int(u64::try_from(value).unwrap_or(MAX)))
    }
}

/// A number of seconds within `0..=MAX`, whole or not (`30` or `30.0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Seconds<const MIN: u64, const MAX: u64>(pub f64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Seconds<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        // `as` is exact for these small bounds.
        if !value.is_finite() || value < MIN as f64 || value > MAX as f64 {
            return Err(D::Error::custom(format!(
                "{value} is out of range: expected {MIN} to {MAX} seconds"
            )));
        }
        Ok(Seconds(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        text: Option<String>,
        count: Option<Int<1, 10>>,
        wait: Option<Seconds<0, 60>>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Outer {
        inner: Option<Inner>,
    }

    fn err(text: &str) -> StaticConfigError {
        parse::<Outer>("t.yaml", text).expect_err("refused")
    }

    #[test]
    fn reads_values_and_takes_defaults_for_the_rest() {
        let read: Outer = parse("t.yaml", "inner:\n  text: hi\n  wait: 2.5\n").expect("valid");
        let inner = read.inner.expect("inner");
        assert_eq!(inner.text.as_deref(), Some("hi"));
        assert_eq!(inner.wait, Some(Seconds(2.5)));
        assert_eq!(inner.count, None);
        for empty in [
            "",
            "  \n",
            "# only a comment\n",
            "inner:\n",
            "inner: null\n",
        ] {
            let read = parse::<Outer>("t.yaml", empty).expect(empty);
            assert_eq!(
                read.inner.unwrap_or_default(),
                Inner::default(),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn errors_name_file_key_and_line() {
        let unknown = err("inner:\n  text: hi\n  txet: typo\n");
        assert_eq!(
            (unknown.key.as_deref(), unknown.line),
            (Some("inner.txet"), Some(3))
        );
        assert!(unknown.reason.contains("unknown field `txet`"), "{unknown}");
        assert_eq!(
            unknown.to_string(),
            format!("t.yaml, line 3, key inner.txet: {}", unknown.reason)
        );

        let range = err("inner:\n  count: 11\n");
        assert_eq!(
            (range.key.as_deref(), range.line),
            (Some("inner.count"), Some(2))
        );
        assert!(range.reason.contains("11 is out of range"), "{range}");
        let negative = err("inner:\n  wait: -1\n");
        assert_eq!(negative.key.as_deref(), Some("inner.wait"));

        let wrong = err("inner:\n  text: [1, 2]\n");
        assert_eq!(
            (wrong.key.as_deref(), wrong.line),
            (Some("inner.text"), Some(2))
        );

        let syntax = err("inner:\n  text: \"open\n");
        assert_eq!(syntax.file, "t.yaml");
        assert!(syntax.line.is_some(), "{syntax}");
        let duplicate = err("inner:\n  text: a\n  text: b\n");
        assert_eq!(duplicate.line, Some(3), "{duplicate}");
    }
}
