//! Logging: tracing with JSON lines in Lambda and human-readable lines locally,
//! behind a redaction writer that masks secret-shaped strings and the exact
//! value of every secret this process holds (`docs/logs.md`).
//! The redaction is a second line of defence: secrets are never logged on
//! purpose, and live in `secrecy` types that cannot print themselves.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, LazyLock, RwLock};

use aho_corasick::AhoCorasick;
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

const MASK: &str = "***";
/// Shorter values would mask ordinary words; such secrets are weak anyway.
const MIN_SECRET_LEN: usize = 4;

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Stops before quotes so a JSON log line stays valid JSON.
        (r#"(?i)\bbearer\s+[^\s,;"'\\]+"#, "Bearer ***"),
        (r#"/bot\d+:[^/\s"'\\]+"#, "/bot***"),
        // Telegram bot tokens: 35 characters after the colon, more in some samples.
        (r"\b\d{5,}:[A-Za-z0-9_-]{30,}", MASK),
        (r"\bsk-[A-Za-z0-9_-]{8,}", "sk-***"),
        (r"\bsl\.[A-Za-z0-9_-]{10,}", "sl.***"),
    ]
    .into_iter()
    .map(|(pattern, mask)| (Regex::new(pattern).expect("static pattern"), mask))
    .collect()
});

/// The exact values to mask, each with how many live holders it has.
#[derive(Default)]
struct KnownSecrets {
    values: HashMap<String, usize>,
    /// Rebuilt lazily by the next log line after the set changed, so that
    /// registering many secrets (a warmup run) costs one rebuild, not one each.
    matcher: Option<Arc<AhoCorasick>>,
    dirty: bool,
}

static KNOWN: LazyLock<RwLock<KnownSecrets>> = LazyLock::new(RwLock::default);

fn known() -> std::sync::RwLockWriteGuard<'static, KnownSecrets> {
    KNOWN.write().unwrap_or_else(|e| e.into_inner())
}

/// Remembers `secret` for the life of the process, so that its exact value
/// is masked in every log line (the process's own settings).
pub fn register_secret(secret: &SecretString) {
    std::mem::forget(mask(secret));
}

/// Masks `secret` in every log line for as long as the returned handle (or
/// a clone of it) lives: a resolved credential or an access token is
/// forgotten once nothing holds it, so the set does not grow with every
/// rotation.
pub fn mask(secret: &SecretString) -> Mask {
    let value = secret.expose_secret();
    if value.len() < MIN_SECRET_LEN {
        return Mask { _holder: None };
    }
    let mut known = known();
    let holders = known.values.entry(value.to_string()).or_default();
    *holders += 1;
    known.dirty |= *holders == 1;
    Mask {
        _holder: Some(Arc::new(Masked(secret.clone()))),
    }
}

/// Keeps a secret masked while it lives; see [`mask`].
#[derive(Clone)]
pub struct Mask {
    _holder: Option<Arc<Masked>>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mask")
    }
}

struct Masked(SecretString);

impl Drop for Masked {
    fn drop(&mut self) {
        let mut known = known();
        let value = self.0.expose_secret();
        if let Some(holders) = known.values.get_mut(value) {
            *holders -= 1;
            if *holders == 0 {
                known.values.remove(value);
                known.dirty = true;
            }
        }
    }
}

/// How many distinct secret values are masked now.
pub fn masked_count() -> usize {
    KNOWN.read().unwrap_or_else(|e| e.into_inner()).values.len()
}

fn secret_matcher() -> Option<Arc<AhoCorasick>> {
    {
        let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
        if !known.dirty {
            return known.matcher.clone();
        }
    }
    let mut known = known();
    if known.dirty {
        known.matcher = AhoCorasick::builder()
            // Leftmost-longest: a secret that contains another is masked whole.
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(known.values.keys())
            .ok()
            .map(Arc::new);
        known.dirty = false;
    }
    known.matcher.clone()
}

/// Masks secret-shaped strings and known secret values in `line`.
pub fn redact(line: &str) -> String {
    let mut out = match secret_matcher() {
        Some(matcher) => matcher.replace_all(line, &vec![MASK; matcher.patterns_len()]),
        None => line.to_string(),
    };
    for (pattern, mask) in PATTERNS.iter() {
        if let std::borrow::Cow::Owned(replaced) = pattern.replace_all(&out, *mask) {
            out = replaced;
        }
    }
    out
}

/// A `MakeWriter` whose writers redact each formatted event before writing it.
#[derive(Clone)]
pub struct Redacting<M>(pub M);

pub struct RedactingWriter<W>(W);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    // The fmt layer writes each event with one `write_all` call, so a buffer
    // is a whole line and no secret can straddle two calls.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&line).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Installs the global subscriber writing to `writer`; `RUST_LOG` filters
/// (default `info`). Returns false when a subscriber was already installed.
pub fn init_with<W>(json: bool, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(writer));
    let installed = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
    if installed.is_ok() {
        // A panic's message goes through the redacting writer too, not
        // straight to stderr; the request or host it hit fails alone.
        std::panic::set_hook(Box::new(|panic| {
            tracing::error!(%panic, "panic");
        }));
    }
    installed.is_ok()
}

/// Installs the process's logging on stdout (CloudWatch in Lambda).
pub fn init(json: bool) {
    init_with(json, io::stdout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_shapes() {
        let cases = [
            ("auth Bearer abc.def-123 done", "auth Bearer *** done"),
            ("header authorization: bearer xyz", "header authorization: Bearer ***"),
            (
                "POST https://api.telegram.org/bot123456789:AAH-vermont-bot-token-0123456789abcd/sendPhoto",
                "POST https://api.telegram.org/bot***/sendPhoto",
            ),
            ("token 123456789:AAH-vermont-bot-token-0123456789abcd", "token ***"),
            ("key sk-test-vermont-0123456789abcdef", "key sk-***"),
            ("dropbox sl.ABCDEFGHIJKLMNOP done", "dropbox sl.*** done"),
            ("nothing secret here", "nothing secret here"),
            ("see /bottom of page", "see /bottom of page"),
            (r#"{"h":"Bearer abc","n":1}"#, r#"{"h":"Bearer ***","n":1}"#),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn masks_registered_values_longest_first() {
        register_secret(&SecretString::from("pass-word-unit-1"));
        register_secret(&SecretString::from("pass-word-unit-1-longer"));
        register_secret(&SecretString::from("abc"));
        assert_eq!(
            redact("a pass-word-unit-1-longer b pass-word-unit-1 c abc"),
            "a *** b *** c abc"
        );
    }

    #[test]
    fn writer_redacts_what_it_writes() {
        register_secret(&SecretString::from("dbx-refresh-unit-test"));
        let mut out = Vec::new();
        RedactingWriter(&mut out)
            .write_all(b"refresh=dbx-refresh-unit-test\n")
            .expect("write");
        assert_eq!(String::from_utf8(out).expect("utf8"), "refresh=***\n");
    }

    #[test]
    fn a_masked_secret_is_forgotten_when_its_last_holder_drops() {
        let secret = SecretString::from("rotating-access-token-unit-7");
        let first = mask(&secret);
        let second = first.clone();
        let third = mask(&secret);
        assert_eq!(redact("t=rotating-access-token-unit-7"), "t=***");
        drop((first, third));
        assert_eq!(
            redact("t=rotating-access-token-unit-7"),
            "t=***",
            "one holder left"
        );
        drop(second);
        assert_eq!(
            redact("t=rotating-access-token-unit-7"),
            "t=rotating-access-token-unit-7",
            "forgotten: the set does not grow with every rotation"
        );
    }
}
