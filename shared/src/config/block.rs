//! The generic JSON reader of tenant configuration: typed getters whose
//! errors name the exact field (`config.features.keep_enabled`) and never
//! echo the offending value (serde's messages do, and it may be a ref).

use serde_json::{Map, Value};

use super::{is_valid_model, ConfigError};

/// Outer error: a wrong JSON type (the configuration is invalid). Inner error: the
/// entry lacks what it needs (a runtime entry is skipped; in standalone it is fatal).
pub(super) type Usable<T> = Result<T, ConfigError>;

/// A JSON object read at `path`, with typed getters whose errors name the field.
/// An absent or null object reads as empty; a null, absent or empty-string field
/// reads as absent, so it takes its default.
pub(super) struct Block<'a> {
    map: Option<&'a Map<String, Value>>,
    path: String,
}

impl<'a> Block<'a> {
    pub(super) fn new(
        value: Option<&'a Value>,
        path: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let path = path.into();
        match value {
            None | Some(Value::Null) => Ok(Self { map: None, path }),
            Some(Value::Object(map)) => Ok(Self {
                map: Some(map),
                path,
            }),
            Some(_) => Err(ConfigError::new(path, "expected an object")),
        }
    }

    pub(super) fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn err(&self, key: &str, reason: &str) -> ConfigError {
        ConfigError::new(self.path(key), reason)
    }

    /// The raw value, `None` when absent or null.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map?.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn block(&self, key: &str) -> Result<Block<'a>, ConfigError> {
        Block::new(self.get(key), self.path(key))
    }

    pub(super) fn required_block(&self, key: &str) -> Result<Block<'a>, ConfigError> {
        match self.get(key) {
            Some(_) => self.block(key),
            None => Err(self.err(key, "required")),
        }
    }

    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.typed(key, "expected a boolean", Value::as_bool)
            .map(|v| v.unwrap_or(default))
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let s = self.typed(key, "expected a string", Value::as_str)?;
        Ok(s.filter(|s| !s.is_empty()).map(str::to_owned))
    }

    /// Ids such as Telegram channel ids arrive as strings or as integers.
    pub(super) fn string_or_int(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            Some(Value::Number(_)) => Err(self.err(key, "expected a string or an integer")),
            _ => self
                .string(key)
                .map_err(|_| self.err(key, "expected a string or an integer")),
        }
    }

    pub(super) fn u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        self.typed(key, "expected a non-negative integer", Value::as_u64)
    }

    pub(super) fn i64(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        self.typed(key, "expected an integer", Value::as_i64)
    }

    pub(super) fn port(&self, key: &str, default: u16) -> Result<u16, ConfigError> {
        match self.u64(key) {
            Ok(None) => Ok(default),
            Ok(Some(p)) => u16::try_from(p).map_err(|_| self.err(key, "expected a port number")),
            Err(_) => Err(self.err(key, "expected a port number")),
        }
    }

    /// A model name the service accepts; an unsupported one reads as absent (so the
    /// default applies) with a warning naming the field.
    pub(super) fn model(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.string(key)?.filter(|name| {
            let valid = is_valid_model(name);
            if !valid {
                tracing::warn!(field = %self.path(key), "unsupported model name; using the default");
            }
            valid
        }))
    }

    /// One of `choices` by name, `default` when absent. Outer error: not a string;
    /// inner error: an unknown name.
    pub(super) fn choice<T: Copy>(
        &self,
        key: &str,
        default: T,
        choices: &[(&str, T)],
    ) -> Result<Usable<T>, ConfigError> {
        let Some(name) = self.string(key)? else {
            return Ok(Ok(default));
        };
        Ok(choices
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| self.err(key, "unsupported value")))
    }

    fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        read: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        self.get(key)
            .map(|v| read(v).ok_or_else(|| self.err(key, expected)))
            .transpose()
    }
}
