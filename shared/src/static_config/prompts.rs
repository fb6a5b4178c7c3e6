//! `ai_prompts.yaml`: the texts of the OpenAI calls and the confirmation
//! tags' guidance and count.

use serde::Deserialize;

use super::layer::{layer, Layer};
use super::yaml::Int;

/// The prompts as the AI client uses them, before a tenant's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiPrompts {
    pub vision_system: String,
    pub vision_user: String,
    pub caption_system: String,
    pub caption_role: String,
    pub sd_caption_system: String,
    pub sd_caption_role: String,
    /// What the confirmation tags should look like; empty: not asked for.
    pub confirmation_tags_prompt: String,
    pub confirmation_tags_count: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PromptsFile {
    vision: Option<VisionFile>,
    caption: Option<RoleFile>,
    sd_caption: Option<RoleFile>,
    confirmation_tags: Option<TagsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct VisionFile {
    system: Option<String>,
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RoleFile {
    system: Option<String>,
    role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TagsFile {
    prompt: Option<String>,
    default_count: Option<Int<0, 100>>,
}

impl Layer for PromptsFile {
    fn over(self, base: Self) -> Self {
        Self {
            vision: layer(self.vision, base.vision),
            caption: layer(self.caption, base.caption),
            sd_caption: layer(self.sd_caption, base.sd_caption),
            confirmation_tags: layer(self.confirmation_tags, base.confirmation_tags),
        }
    }
}

impl Layer for VisionFile {
    fn over(self, base: Self) -> Self {
        Self {
            system: self.system.or(base.system),
            user: self.user.or(base.user),
        }
    }
}

impl Layer for RoleFile {
    fn over(self, base: Self) -> Self {
        Self {
            system: self.system.or(base.system),
            role: self.role.or(base.role),
        }
    }
}

impl Layer for TagsFile {
    fn over(self, base: Self) -> Self {
        Self {
            prompt: self.prompt.or(base.prompt),
            default_count: self.default_count.or(base.default_count),
        }
    }
}

impl From<PromptsFile> for AiPrompts {
    /// From a file already layered over the embedded one, which sets every
    /// key (a test holds it to that).
    fn from(file: PromptsFile) -> Self {
        let vision = file.vision.unwrap_or_default();
        let caption = file.caption.unwrap_or_default();
        let sd = file.sd_caption.unwrap_or_default();
        let tags = file.confirmation_tags.unwrap_or_default();
        AiPrompts {
            vision_system: vision.system.unwrap_or_default(),
            vision_user: vision.user.unwrap_or_default(),
            caption_system: caption.system.unwrap_or_default(),
            caption_role: caption.role.unwrap_or_default(),
            sd_caption_system: sd.system.unwrap_or_default(),
            sd_caption_role: sd.role.unwrap_or_default(),
            confirmation_tags_prompt: tags.prompt.unwrap_or_default(),
            // At most 100 by the file's range.
            confirmation_tags_count: tags
                .default_count
                .map_or(0, |Int(n)| u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }
}
