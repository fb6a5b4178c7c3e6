//! `platform_limits.yaml` (caption lengths, hashtags, resize widths, the
//! e-mail's defaults) and `service_limits.yaml` (AI pace, listing cache,
//! SMTP timeout).

use std::time::Duration;

use serde::Deserialize;

use super::layer::{layer, Layer};
use super::yaml::{Int, Seconds};
use crate::config::{CaptionTarget, SubjectMode};

/// One platform's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformLimit {
    /// In Unicode scalar values.
    pub max_caption_length: usize,
    /// Hashtags kept, counted from the start; `None`: all.
    pub max_hashtags: Option<usize>,
    /// The image is resized to at most this width; `None`: the original.
    pub resize_width_px: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformLimits {
    pub telegram: PlatformLimit,
    /// The FetLife upload mail.
    pub email: PlatformLimit,
    pub generic: PlatformLimit,
    /// For a fetlife publisher that does not say.
    pub email_caption_target: CaptionTarget,
    pub email_subject_mode: SubjectMode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLimits {
    /// OpenAI calls per minute and tenant (`AI_RATE_PER_MINUTE` wins).
    pub ai_rate_per_minute: u32,
    /// A tenant's image listing lifetime (`WEB_IMAGE_CACHE_TTL_SECONDS` wins).
    pub web_image_cache_ttl: Duration,
    pub smtp_timeout: Duration,
}

/// Telegram refuses photo captions over 1024 characters.
type TelegramLength = Int<1, 1024>;
type Length = Int<1, 100_000>;
type Hashtags = Int<0, 1000>;
/// Telegram refuses photos whose width and height add up to over 10 000.
type Width = Int<1, 10_000>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PlatformsFile {
    telegram: Option<PlatformFile<TelegramLength>>,
    email: Option<EmailFile>,
    generic: Option<PlatformFile<Length>>,
    /// Publisher V2's files carry it; this service has no Instagram publisher.
    #[allow(dead_code)]
    instagram: Option<PlatformFile<Length>>,
}

/// A platform's block, its caption length an `L` (the platform's range).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PlatformFile<L> {
    max_caption_length: Option<L>,
    max_hashtags: Option<Hashtags>,
    resize_width_px: Option<Width>,
}

impl<L> Default for PlatformFile<L> {
    fn default() -> Self {
        Self {
            max_caption_length: None,
            max_hashtags: None,
            resize_width_px: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EmailFile {
    max_caption_length: Option<Length>,
    max_hashtags: Option<Hashtags>,
    resize_width_px: Option<Width>,
    caption_target: Option<Target>,
    subject_mode: Option<Mode>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Target {
    Subject,
    Body,
    Both,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Normal,
    Private,
    Avatar,
}

impl Layer for PlatformsFile {
    fn over(self, base: Self) -> Self {
        Self {
            telegram: layer(self.telegram, base.telegram),
            email: layer(self.email, base.email),
            generic: layer(self.generic, base.generic),
            instagram: None,
        }
    }
}

impl<L> Layer for PlatformFile<L> {
    fn over(self, base: Self) -> Self {
        Self {
            max_caption_length: self.max_caption_length.or(base.max_caption_length),
            max_hashtags: self.max_hashtags.or(base.max_hashtags),
            resize_width_px: self.resize_width_px.or(base.resize_width_px),
        }
    }
}

impl Layer for EmailFile {
    fn over(self, base: Self) -> Self {
        Self {
            max_caption_length: self.max_caption_length.or(base.max_caption_length),
            max_hashtags: self.max_hashtags.or(base.max_hashtags),
            resize_width_px: self.resize_width_px.or(base.resize_width_px),
            caption_target: self.caption_target.or(base.caption_target),
            subject_mode: self.subject_mode.or(base.subject_mode),
        }
    }
}

impl<const MIN: u64, const MAX: u64> From<PlatformFile<Int<MIN, MAX>>> for PlatformLimit {
    fn from(file: PlatformFile<Int<MIN, MAX>>) -> Self {
        // Every bound is far below usize::MAX and u32::MAX.
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        PlatformLimit {
            max_caption_length: file.max_caption_length.map_or(0, |Int(n)| size(n)),
            max_hashtags: file.max_hashtags.map(|Int(n)| size(n)),
            resize_width_px: file
                .resize_width_px
                .map(|Int(n)| u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }
}

impl From<PlatformsFile> for PlatformLimits {
    /// From a file already layered over the embedded one.
    fn from(file: PlatformsFile) -> Self {
        let telegram = file.telegram.unwrap_or_default();
        let email = file.email.unwrap_or_default();
        let generic = file.generic.unwrap_or_default();
        PlatformLimits {
            telegram: telegram.into(),
            email: PlatformFile {
                max_caption_length: email.max_caption_length,
                max_hashtags: email.max_hashtags,
                resize_width_px: email.resize_width_px,
            }
            .into(),
            generic: generic.into(),
            email_caption_target: match email.caption_target {
                None | Some(Target::Subject) => CaptionTarget::Subject,
                Some(Target::Body) => CaptionTarget::Body,
                Some(Target::Both) => CaptionTarget::Both,
            },
            email_subject_mode: match email.subject_mode {
                None | Some(Mode::Normal) => SubjectMode::Normal,
                Some(Mode::Private) => SubjectMode::Private,
                Some(Mode::Avatar) => SubjectMode::Avatar,
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ServicesFile {
    ai: Option<AiFile>,
    web: Option<WebFile>,
    smtp: Option<SmtpFile>,
    /// Publisher V2's files carry it; this service has no Instagram publisher.
    #[allow(dead_code)]
    instagram: Option<InstagramFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AiFile {
    rate_per_minute: Option<Int<0, 6000>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WebFile {
    image_cache_ttl_seconds: Option<Seconds<0, 86_400>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SmtpFile {
    /// Lambda runs a function for 15 minutes at most.
    timeout_seconds: Option<Seconds<1, 900>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct InstagramFile {
    #[allow(dead_code)]
    delay_min_seconds: Option<Seconds<0, 3600>>,
    #[allow(dead_code)]
    delay_max_seconds: Option<Seconds<0, 3600>>,
}

impl Layer for ServicesFile {
    fn over(self, base: Self) -> Self {
        let or = |upper: Option<AiFile>, lower: Option<AiFile>| {
            upper
                .and_then(|u| u.rate_per_minute)
                .or(lower.and_then(|l| l.rate_per_minute))
        };
        Self {
            ai: Some(AiFile {
                rate_per_minute: or(self.ai, base.ai),
            }),
            web: Some(WebFile {
                image_cache_ttl_seconds: self
                    .web
                    .and_then(|w| w.image_cache_ttl_seconds)
                    .or(base.web.and_then(|w| w.image_cache_ttl_seconds)),
            }),
            smtp: Some(SmtpFile {
                timeout_seconds: self
                    .smtp
                    .and_then(|s| s.timeout_seconds)
                    .or(base.smtp.and_then(|s| s.timeout_seconds)),
            }),
            instagram: None,
        }
    }
}

impl From<ServicesFile> for ServiceLimits {
    /// From a file already layered over the embedded one.
    fn from(file: ServicesFile) -> Self {
        let seconds =
            |s: Option<Seconds<0, 86_400>>| Duration::from_secs_f64(s.map_or(0.0, |s| s.0));
        ServiceLimits {
            ai_rate_per_minute: file
                .ai
                .and_then(|a| a.rate_per_minute)
                .map_or(0, |Int(n)| u32::try_from(n).unwrap_or(u32::MAX)),
            web_image_cache_ttl: seconds(file.web.and_then(|w| w.image_cache_ttl_seconds)),
            smtp_timeout: Duration::from_secs_f64(
                file.smtp
                    .and_then(|s| s.timeout_seconds)
                    .map_or(1.0, |s| s.0),
            ),
        }
    }
}
