//! The prompts one tenant's calls use: the tenant's own (its `ai` and
//! `confirmation` blocks) where it has them, else `ai_prompts.yaml`'s.

use crate::config::{AiConfig, Confirmation};
use crate::static_config::AiPrompts;

/// `statics` with the tenant's own prompts in their place, and the
/// confirmation tags' guidance (the tenant's, else the file's) added to the
/// vision request: the confirmation mail lists the vision call's tags, so
/// that is where what they should look like is asked for.
pub fn for_tenant(ai: &AiConfig, confirmation: &Confirmation, statics: &AiPrompts) -> AiPrompts {
    let own = |tenant: &Option<String>, fallback: &String| {
        tenant.clone().unwrap_or_else(|| fallback.clone())
    };
    let tags = own(
        &confirmation.confirmation_tags_nature,
        &statics.confirmation_tags_prompt,
    );
    let vision_user = match tags.trim() {
        "" => statics.vision_user.clone(),
        tags => format!("{}\n\ntags: {tags}", statics.vision_user),
    };
    AiPrompts {
        vision_user,
        caption_system: own(&ai.system_prompt, &statics.caption_system),
        caption_role: own(&ai.role_prompt, &statics.caption_role),
        sd_caption_system: own(&ai.sd_caption_system_prompt, &statics.sd_caption_system),
        sd_caption_role: own(&ai.sd_caption_role_prompt, &statics.sd_caption_role),
        confirmation_tags_prompt: tags,
        confirmation_tags_count: confirmation
            .confirmation_tags_count
            .unwrap_or(statics.confirmation_tags_count),
        ..statics.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::CredentialRef;
    use crate::static_config::StaticConfig;

    fn ai() -> AiConfig {
        AiConfig {
            credentials_ref: CredentialRef::new("openai-ref"),
            vision_model: "gpt-4o".into(),
            caption_model: "gpt-4o-mini".into(),
            system_prompt: None,
            role_prompt: None,
            sd_caption_enabled: true,
            sd_caption_single_call_enabled: true,
            sd_caption_model: None,
            sd_caption_system_prompt: None,
            sd_caption_role_prompt: None,
        }
    }

    #[test]
    fn the_default_vision_prompt_is_todays() {
        let keys = [
            "description",
            "mood",
            "tags",
            "nsfw",
            "safety_labels",
            "subject",
            "style",
            "lighting",
            "camera",
            "clothing_or_accessories",
            "aesthetic_terms",
            "pose",
            "composition",
            "background",
            "color_palette",
        ];
        let today = format!(
            "Analyze this photograph. Answer with one JSON object with exactly these keys: {}. \
             tags, safety_labels and aesthetic_terms are arrays of short strings; nsfw is a boolean; \
             the others are short strings.",
            keys.join(", ")
        );
        let prompts = for_tenant(
            &ai(),
            &Confirmation::default(),
            &StaticConfig::defaults().prompts,
        );
        assert_eq!(prompts.vision_user, today);
    }

    #[test]
    fn tenant_over_file_over_default() {
        let defaults = &StaticConfig::defaults().prompts;
        let mut file = defaults.clone();
        file.caption_system = "From the file".into();
        file.confirmation_tags_prompt = "lowercase nouns".into();

        let plain = for_tenant(&ai(), &Confirmation::default(), defaults);
        assert_eq!(plain.caption_system, defaults.caption_system);
        assert_eq!(
            plain.vision_user, defaults.vision_user,
            "no tags guidance by default"
        );

        let from_file = for_tenant(&ai(), &Confirmation::default(), &file);
        assert_eq!(from_file.caption_system, "From the file");
        assert_eq!(from_file.caption_role, defaults.caption_role);
        assert!(from_file.vision_user.ends_with("\n\ntags: lowercase nouns"));

        let mut tenant = ai();
        tenant.system_prompt = Some("The tenant's own".into());
        tenant.sd_caption_role_prompt = Some("Tenant sd role".into());
        let confirmation = Confirmation {
            confirmation_tags_nature: Some("single words".into()),
            ..Confirmation::default()
        };
        let own = for_tenant(&tenant, &confirmation, &file);
        assert_eq!(own.caption_system, "The tenant's own");
        assert_eq!(own.sd_caption_role, "Tenant sd role");
        assert_eq!(own.sd_caption_system, defaults.sd_caption_system);
        assert!(own.vision_user.ends_with("\n\ntags: single words"));
    }
}
