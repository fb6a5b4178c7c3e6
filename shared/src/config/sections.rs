//! The configuration sections both sources share: the orchestrator's v2
//! blocks and standalone mode's JSON variables have the same shapes.

use super::block::{Block, Usable};
use super::{
    AiConfig, CaptionFile, CaptionTarget, ConfigError, Confirmation, Content, FetlifeConfig,
    SubjectMode, DEFAULT_CAPTION_MODEL, DEFAULT_VISION_MODEL,
};
use crate::secrets::CredentialRef;

/// The publisher types this service supports; others are ignored.
pub(super) const PUBLISHER_TYPES: [&str; 2] = ["telegram", "fetlife"];

/// `recipient`, `caption_target` and `subject_mode` of a fetlife publisher.
pub(super) fn fetlife_config(b: &Block<'_>) -> Result<Usable<FetlifeConfig>, ConfigError> {
    let recipient = b.string("recipient")?;
    // Absent: the static configuration's e-mail defaults apply.
    let caption_target = b.choice(
        "caption_target",
        None,
        &[
            ("subject", Some(CaptionTarget::Subject)),
            ("body", Some(CaptionTarget::Body)),
            ("both", Some(CaptionTarget::Both)),
        ],
    )?;
    let subject_mode = b.choice(
        "subject_mode",
        None,
        &[
            ("normal", Some(SubjectMode::Normal)),
            ("private", Some(SubjectMode::Private)),
            ("avatar", Some(SubjectMode::Avatar)),
        ],
    )?;
    Ok(match (recipient, caption_target, subject_mode) {
        (Some(recipient), Ok(caption_target), Ok(subject_mode)) => Ok(FetlifeConfig {
            recipient,
            caption_target,
            subject_mode,
        }),
        (None, _, _) => Err(b.err("recipient", "required")),
        (_, Err(e), _) | (_, _, Err(e)) => Err(e),
    })
}

/// The `ai` block (standalone: `OPENAI_SETTINGS`) for an already known reference.
pub(super) fn ai_settings(
    b: &Block<'_>,
    credentials_ref: CredentialRef,
) -> Result<AiConfig, ConfigError> {
    let model = |key: &str, default: &str| -> Result<String, ConfigError> {
        Ok(b.model(key)?.unwrap_or_else(|| default.to_owned()))
    };
    Ok(AiConfig {
        credentials_ref,
        vision_model: model("vision_model", DEFAULT_VISION_MODEL)?,
        caption_model: model("caption_model", DEFAULT_CAPTION_MODEL)?,
        system_prompt: b.string("system_prompt")?,
        role_prompt: b.string("role_prompt")?,
        sd_caption_enabled: b.bool("sd_caption_enabled", true)?,
        sd_caption_single_call_enabled: b.bool("sd_caption_single_call_enabled", true)?,
        sd_caption_model: b.model("sd_caption_model")?,
        sd_caption_system_prompt: b.string("sd_caption_system_prompt")?,
        sd_caption_role_prompt: b.string("sd_caption_role_prompt")?,
    })
}

pub(super) fn captionfile(b: &Block<'_>) -> Result<CaptionFile, ConfigError> {
    Ok(CaptionFile {
        extended_metadata_enabled: b.bool("extended_metadata_enabled", false)?,
        artist_alias: b.string("artist_alias")?,
    })
}

pub(super) fn confirmation(b: &Block<'_>) -> Result<Confirmation, ConfigError> {
    let defaults = Confirmation::default();
    let count = b.i64("confirmation_tags_count")?;
    Ok(Confirmation {
        confirmation_to_sender: b
            .bool("confirmation_to_sender", defaults.confirmation_to_sender)?,
        // Negative means "none"; the orchestrator does not bound it above.
        confirmation_tags_count: count
            .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
            .or(defaults.confirmation_tags_count),
        confirmation_tags_nature: b.string("confirmation_tags_nature")?,
    })
}

pub(super) fn content(b: &Block<'_>) -> Result<Content, ConfigError> {
    let defaults = Content::default();
    Ok(Content {
        hashtag_string: b
            .string("hashtag_string")?
            .unwrap_or(defaults.hashtag_string),
        archive: b.bool("archive", defaults.archive)?,
        debug: b.bool("debug", defaults.debug)?,
    })
}
