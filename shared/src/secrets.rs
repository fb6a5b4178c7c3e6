//! Typed credentials. Secret values live in `secrecy` types that cannot print
//! themselves; references and versions are identifiers that must not be logged
//! either, so their `Debug` output is masked too.

use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;

use crate::telemetry::{self, Mask};

/// The role a credential plays for a tenant; each role accepts one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Storage,
    Openai,
    Telegram,
    Smtp,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Storage, Role::Openai, Role::Telegram, Role::Smtp];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Storage => "storage",
            Role::Openai => "openai",
            Role::Telegram => "telegram",
            Role::Smtp => "smtp",
        }
    }

    /// The provider the orchestrator must answer with for this role.
    pub fn provider(self) -> &'static str {
        match self {
            Role::Storage => "dropbox",
            Role::Openai => "openai",
            Role::Telegram => "telegram",
            Role::Smtp => "smtp",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An orchestrator credentials reference (or, in standalone mode, the name of the
/// environment variable holding the secret). Not a secret, but never logged.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialRef(String);

impl CredentialRef {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialRef(<redacted>)")
    }
}

/// A resolved secret for a role: the Dropbox refresh token, the OpenAI API
/// key, the Telegram bot token or the SMTP password. Its value is masked in
/// every log line for as long as the credential lives.
#[derive(Debug, Clone)]
pub struct Credential {
    role: Role,
    secret: SecretString,
    _mask: Mask,
}

impl Credential {
    pub fn provider(&self) -> &'static str {
        self.role.provider()
    }

    /// The secret value itself, for the client that needs it.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }
}

/// Why a credential could not be had. The kind is what operators and the warmup
/// summary see; it never carries the reference or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialErrorKind {
    #[error("not_found")]
    NotFound,
    #[error("unauthorized")]
    Unauthorized,
    #[error("unavailable")]
    Unavailable,
    #[error("provider_mismatch")]
    ProviderMismatch,
}

impl CredentialErrorKind {
    /// A rejection is final for this reference; anything else may pass.
    pub fn is_rejection(self) -> bool {
        matches!(self, Self::NotFound | Self::ProviderMismatch)
    }
}

/// The orchestrator's `/v1/credentials/resolve` answer, before it is typed.
#[derive(Deserialize)]
pub struct CredentialPayload {
    provider: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    bot_token: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl CredentialPayload {
    /// Types the payload for `role`; the provider must match the role and carry
    /// its secret field, else the resolution fails with `ProviderMismatch`.
    pub fn into_credential(self, role: Role) -> Result<Credential, CredentialErrorKind> {
        if self.provider != role.provider() {
            return Err(CredentialErrorKind::ProviderMismatch);
        }
        let secret = match role {
            Role::Storage => self.refresh_token,
            Role::Openai => self.api_key,
            Role::Telegram => self.bot_token,
            Role::Smtp => self.password,
        }
        .filter(|s| !s.is_empty())
        .ok_or(CredentialErrorKind::ProviderMismatch)?;
        Ok(credential_for(role, SecretString::from(secret)))
    }
}

impl fmt::Debug for CredentialPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialPayload")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// The credential of `role` holding `secret`.
pub fn credential_for(role: Role, secret: SecretString) -> Credential {
    Credential {
        role,
        _mask: telemetry::mask(&secret),
        secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn payload(json: &str) -> CredentialPayload {
        serde_json::from_str(json).expect("valid payload")
    }

    #[test]
    fn each_role_accepts_only_its_provider() {
        let p = r#"{"provider":"dropbox","version":"v1","refresh_token":"rt-1","expires_at":null}"#;
        let cred = payload(p).into_credential(Role::Storage).expect("dropbox");
        assert_eq!(cred.provider(), "dropbox");
        assert_eq!(cred.secret().expose_secret(), "rt-1");
        for role in [Role::Openai, Role::Telegram, Role::Smtp] {
            assert_eq!(
                payload(p).into_credential(role).unwrap_err(),
                CredentialErrorKind::ProviderMismatch
            );
        }
        let cases = [
            (Role::Openai, r#"{"provider":"openai","api_key":"sk-x"}"#),
            (
                Role::Telegram,
                r#"{"provider":"telegram","bot_token":"1:x"}"#,
            ),
            (Role::Smtp, r#"{"provider":"smtp","password":"pw"}"#),
        ];
        for (role, json) in cases {
            assert_eq!(
                payload(json).into_credential(role).unwrap().provider(),
                role.provider()
            );
        }
    }

    #[test]
    fn unknown_provider_or_missing_secret_is_a_mismatch() {
        let unknown = payload(r#"{"provider":"s3","refresh_token":"x"}"#);
        assert_eq!(
            unknown.into_credential(Role::Storage).unwrap_err(),
            CredentialErrorKind::ProviderMismatch
        );
        let missing = payload(r#"{"provider":"openai"}"#);
        assert_eq!(
            missing.into_credential(Role::Openai).unwrap_err(),
            CredentialErrorKind::ProviderMismatch
        );
    }

    #[test]
    fn debug_output_hides_secrets_and_refs() {
        let cred = credential_for(Role::Openai, SecretString::from("sk-very-secret"));
        let printed = format!("{cred:?} {:?}", CredentialRef::new("ref-openai-x"));
        assert!(!printed.contains("sk-very-secret"), "{printed}");
        assert!(!printed.contains("ref-openai-x"), "{printed}");
    }
}
