//! HMAC-SHA256 signatures over the values the web function hands to browsers
//! (the admin cookie, the OIDC login state), keyed by `WEB_SESSION_SECRET`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use publisher::settings::WebSettings;

#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl Signer {
    /// Keyed by `WEB_SESSION_SECRET`; without one, a random key that lives as
    /// long as the process (settings allow that only under `WEB_DEBUG`, or when
    /// no admin login exists and nothing is ever signed).
    pub fn from_settings(web: &WebSettings) -> Self {
        match &web.session_secret {
            Some(secret) => Self::new(secret.expose_secret().as_bytes()),
            None => {
                if web.debug {
                    tracing::warn!(
                        "WEB_SESSION_SECRET is not set: admin sessions use a random per-process key \
                         and end when the process stops (WEB_DEBUG only)"
                    );
                }
                Self::new(&rand::random::<[u8; 32]>())
            }
        }
    }

    pub fn new(key: &[u8]) -> Self {
        // HMAC takes keys of any length; this cannot fail.
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        Self { mac }
    }

    /// The tag over `fields`, base64url. Each field is length-prefixed so that
    /// no two different field lists sign the same bytes.
    pub fn sign(&self, fields: &[&str]) -> String {
        URL_SAFE_NO_PAD.encode(self.keyed(fields).finalize().into_bytes())
    }

    /// Checks `tag` against `fields` in constant time.
    pub fn verify(&self, fields: &[&str], tag: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(tag) {
            Ok(tag) => self.keyed(fields).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }

    fn keyed(&self, fields: &[&str]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        for field in fields {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }
}

/// Compares two secrets in constant time. Both are hashed first, so neither
/// the position of a difference nor the lengths show in the timing.
pub fn secrets_equal(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

/// 24 random bytes, base64url: nonces and OIDC state.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_only_for_the_same_key_and_fields() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let tag = signer.sign(&["admin", "maple", "100"]);
        assert!(signer.verify(&["admin", "maple", "100"], &tag));
        assert!(!signer.verify(&["admin", "vermont", "100"], &tag));
        assert!(!signer.verify(&["admin", "maple1", "00"], &tag));
        assert!(!signer.verify(&["admin", "maple", "100"], "not base64!"));
        let other = Signer::new(b"another key, also long enough....");
        assert!(!other.verify(&["admin", "maple", "100"], &tag));
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_equal("hunter2", "hunter2"));
        assert!(!secrets_equal("hunter2", "hunter3"));
        assert!(!secrets_equal("", "hunter2"));
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 32);
    }
}
