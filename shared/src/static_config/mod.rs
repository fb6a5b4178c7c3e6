//! Static configuration (`docs/configuration.md`, Static configuration): AI
//! prompts, platform limits, service limits, the preview's and the page's
//! texts, from the YAML files of `PV2_STATIC_CONFIG_DIR`, read once at start.
//!
//! The defaults are the files of `samples/static/`, compiled in: each file and
//! each key of the directory is optional, and what it leaves out comes from
//! them. Reading is strict: a file that is not valid YAML, a value of the
//! wrong type, an unknown key or file, or a value out of range stops the
//! process with an error naming the file, the key and the line, so that a typo
//! never silently reverts a tuned value to its default.

mod layer;
mod limits;
mod prompts;
mod texts;
mod yaml;

pub use limits::{PlatformLimit, PlatformLimits, ServiceLimits};
pub use prompts::AiPrompts;
pub use texts::Texts;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use layer::Layer;
use limits::{PlatformsFile, ServicesFile};
use prompts::PromptsFile;
use texts::{Catalogue, PreviewFile, UiFile};

/// The page's language when the visitor's are not available.
pub const DEFAULT_LANGUAGE: &str = "en";

const AI_PROMPTS: &str = "ai_prompts.yaml";
const PLATFORM_LIMITS: &str = "platform_limits.yaml";
const SERVICE_LIMITS: &str = "service_limits.yaml";
const PREVIEW_TEXT: &str = "preview_text.yaml";
const UI_TEXT_EN: &str = "web_ui_text.en.yaml";

/// The embedded defaults: the sample directory is the single copy of them.
const EMBEDDED: [(&str, &str); 5] = [
    (
        AI_PROMPTS,
        include_str!("../../../samples/static/ai_prompts.yaml"),
    ),
    (
        PLATFORM_LIMITS,
        include_str!("../../../samples/static/platform_limits.yaml"),
    ),
    (
        SERVICE_LIMITS,
        include_str!("../../../samples/static/service_limits.yaml"),
    ),
    (
        PREVIEW_TEXT,
        include_str!("../../../samples/static/preview_text.yaml"),
    ),
    (
        UI_TEXT_EN,
        include_str!("../../../samples/static/web_ui_text.en.yaml"),
    ),
];

/// A static file that stops the process: which file, key and line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StaticConfigError {
    pub file: String,
    /// Dotted (`caption.system`); `None` when the file as a whole is at fault.
    pub key: Option<String>,
    pub line: Option<u64>,
    pub reason: String,
}

impl StaticConfigError {
    fn at(file: &str, key: Option<String>, line: Option<u64>, reason: String) -> Self {
        Self {
            file: file.to_string(),
            key,
            line,
            reason,
        }
    }
}

impl fmt::Display for StaticConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key {key}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Everything the static files configure, resolved over the defaults.
#[derive(Debug, Clone)]
pub struct StaticConfig {
    /// The directory read (`PV2_STATIC_CONFIG_DIR`); `None`: the defaults.
    pub dir: Option<PathBuf>,
    pub prompts: AiPrompts,
    pub platforms: PlatformLimits,
    pub services: ServiceLimits,
    pub preview_text: Texts,
    /// The page's texts by language; `en` always, every other language
    /// over English.
    pub ui_text: BTreeMap<String, Texts>,
}

static DEFAULTS: LazyLock<StaticConfig> = LazyLock::new(|| {
    StaticConfig::layered(None, Files::default()).expect("the embedded static files are valid")
});

impl StaticConfig {
    /// The embedded defaults.
    pub fn defaults() -> &'static StaticConfig {
        &DEFAULTS
    }

    /// The files of `dir` over the defaults; `None`: the defaults.
    pub fn load(dir: Option<&Path>) -> Result<StaticConfig, StaticConfigError> {
        match dir {
            None => Ok(Self::defaults().clone()),
            Some(dir) => Self::layered(Some(dir.to_path_buf()), Files::read(dir)?),
        }
    }

    /// The page's language for an `Accept-Language` header.
    pub fn ui_language(&self, accept_language: Option<&str>) -> &str {
        texts::negotiate(accept_language, &self.ui_text)
    }

    fn layered(dir: Option<PathBuf>, files: Files) -> Result<StaticConfig, StaticConfigError> {
        fn read<T: serde::de::DeserializeOwned + Default>(
            (name, text): &(String, String),
        ) -> Result<T, StaticConfigError> {
            yaml::parse(name, text)
        }
        let embedded = |name: &str| {
            let text = EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, text)| text);
            (format!("embedded {name}"), text.to_string())
        };
        fn over<T: Layer + serde::de::DeserializeOwned + Default>(
            file: &Option<(String, String)>,
            base: (String, String),
        ) -> Result<T, StaticConfigError> {
            let base: T = read(&base)?;
            Ok(match file {
                Some(file) => read::<T>(file)?.over(base),
                None => base,
            })
        }
        let prompts: PromptsFile = over(&files.prompts, embedded(AI_PROMPTS))?;
        let platforms: PlatformsFile = over(&files.platforms, embedded(PLATFORM_LIMITS))?;
        let services: ServicesFile = over(&files.services, embedded(SERVICE_LIMITS))?;

        let preview_schema =
            Texts::embedded(read::<PreviewFile>(&embedded(PREVIEW_TEXT))?.entries());
        let preview_text = match &files.preview {
            Some(file) => preview_schema.layered(
                &preview_schema,
                &file.0,
                read::<PreviewFile>(file)?.entries(),
            )?,
            None => preview_schema,
        };

        let ui_schema = Texts::embedded(read::<UiFile>(&embedded(UI_TEXT_EN))?.entries());
        let mut ui_text = BTreeMap::new();
        let english = match files.ui.get(DEFAULT_LANGUAGE) {
            Some(file) => {
                ui_schema.layered(&ui_schema, &file.0, read::<UiFile>(file)?.entries())?
            }
            None => ui_schema.clone(),
        };
        for (lang, file) in &files.ui {
            if lang != DEFAULT_LANGUAGE {
                let texts =
                    english.layered(&ui_schema, &file.0, read::<UiFile>(file)?.entries())?;
                ui_text.insert(lang.clone(), texts);
            }
        }
        ui_text.insert(DEFAULT_LANGUAGE.to_string(), english);

        Ok(StaticConfig {
            dir,
            prompts: prompts.into(),
            platforms: platforms.into(),
            services: services.into(),
            preview_text,
            ui_text,
        })
    }
}

/// The files of a directory: (path as named in errors, content).
#[derive(Default)]
struct Files {
    prompts: Option<(String, String)>,
    platforms: Option<(String, String)>,
    services: Option<(String, String)>,
    preview: Option<(String, String)>,
    ui: BTreeMap<String, (String, String)>,
}

impl Files {
    /// Every YAML file of `dir`; one the loader does not know is an error,
    /// like a key it does not know (a misspelt file name would otherwise be
    /// ignored without a word).
    fn read(dir: &Path) -> Result<Files, StaticConfigError> {
        let fail = |path: &Path, reason: String| {
            StaticConfigError::at(&path.display().to_string(), None, None, reason)
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| fail(dir, format!("cannot read the directory: {e}")))?;
        let mut files = Files::default();
        for entry in entries {
            let entry = entry.map_err(|e| fail(dir, format!("cannot read the directory: {e}")))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            if name.starts_with('.') || !yaml || path.is_dir() {
                continue;
            }
            let lang = texts::language_of(&name);
            let known = [AI_PROMPTS, PLATFORM_LIMITS, SERVICE_LIMITS, PREVIEW_TEXT];
            if lang.is_none() && !known.contains(&name.as_str()) {
                return Err(fail(
                    &path,
                    format!(
                        "unknown file: expected {AI_PROMPTS}, {PLATFORM_LIMITS}, {SERVICE_LIMITS}, \
                         {PREVIEW_TEXT} or web_ui_text.<language>.yaml"
                    ),
                ));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| fail(&path, format!("cannot read: {e}")))?;
            let file = (path.display().to_string(), text);
            match (name.as_str(), lang) {
                (AI_PROMPTS, _) => files.prompts = Some(file),
                (PLATFORM_LIMITS, _) => files.platforms = Some(file),
                (SERVICE_LIMITS, _) => files.services = Some(file),
                (PREVIEW_TEXT, _) => files.preview = Some(file),
                (_, Some(lang)) => {
                    if files.ui.insert(lang, file).is_some() {
                        return Err(fail(&path, "a second file for the same language".into()));
                    }
                }
                (_, None) => {}
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests;
