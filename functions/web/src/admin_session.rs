//! The admin session: the `pv2_admin` cookie, signed over the tenant, its
//! expiry and a random nonce (`docs/http-api.md`). It cannot be forged, is worth
//! nothing on another tenant's host, and stops counting at its expiry even if
//! the browser keeps sending it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use publisher::clock::Clock;
use publisher::settings::WebSettings;

use crate::cookies;
use crate::signing::{random_token, Signer};

pub const COOKIE: &str = "pv2_admin";
const VERSION: &str = "v1";
const PURPOSE: &str = "admin";

pub struct AdminSessions {
    signer: Signer,
    ttl: Duration,
    secure: bool,
    clock: Clock,
}

impl AdminSessions {
    pub fn new(signer: Signer, web: &WebSettings, clock: Clock) -> Self {
        Self {
            signer,
            ttl: web.admin_cookie_ttl,
            secure: web.secure_cookies,
            clock,
        }
    }

    /// Does the request carry a valid admin cookie for `tenant`?
    pub fn is_admin(&self, request: &HeaderMap, tenant: &str) -> bool {
        let now = unix_secs(self.clock.now());
        cookies::values(request, COOKIE)
            .iter()
            .any(|value| self.is_valid(value, tenant, now))
    }

    /// Adds the cookie that makes the browser an admin of `tenant`.
    pub fn grant(&self, response: &mut HeaderMap, tenant: &str) {
        let value = self.issue(tenant, unix_secs(self.clock.now()));
        cookies::set(response, COOKIE, &value, "/", self.ttl, self.secure);
    }

    pub fn revoke(&self, response: &mut HeaderMap) {
        cookies::clear(response, COOKIE, "/", self.secure);
    }

    fn issue(&self, tenant: &str, now: u64) -> String {
        let expiry = now.saturating_add(self.ttl.as_secs()).to_string();
        let nonce = random_token();
        let tag = self.signer.sign(&[PURPOSE, tenant, &expiry, &nonce]);
        format!("{VERSION}.{expiry}.{nonce}.{tag}")
    }

    fn is_valid(&self, value: &str, tenant: &str, now: u64) -> bool {
        let mut parts = value.split('.');
        let (Some(VERSION), Some(expiry), Some(nonce), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return false;
        };
        let Ok(expires_at) = expiry.parse::<u64>() else {
            return false;
        };
        // A shortened TTL also shortens sessions issued before the change.
        let live = now < expires_at && expires_at <= now.saturating_add(self.ttl.as_secs());
        live && self.signer.verify(&[PURPOSE, tenant, expiry, nonce], tag)
    }
}

/// Seconds since the epoch (0 before it).
pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(ttl: u64) -> AdminSessions {
        AdminSessions {
            signer: Signer::new(b"0123456789abcdef0123456789abcdef"),
            ttl: Duration::from_secs(ttl),
            secure: true,
            clock: Clock::system(),
        }
    }

    #[test]
    fn valid_only_for_its_tenant_until_expiry() {
        let s = sessions(3600);
        let value = s.issue("maple", 1_000);
        assert!(s.is_valid(&value, "maple", 1_000));
        assert!(s.is_valid(&value, "maple", 4_599));
        assert!(!s.is_valid(&value, "maple", 4_600), "expired");
        assert!(!s.is_valid(&value, "vermont", 1_000), "other tenant");
        assert_ne!(value, s.issue("maple", 1_000), "fresh nonce each time");
    }

    #[test]
    fn forged_or_stretched_values_are_refused() {
        let s = sessions(3600);
        let value = s.issue("maple", 1_000);
        let parts: Vec<&str> = value.split('.').collect();
        let later = format!("v1.999999.{}.{}", parts[2], parts[3]);
        for bad in ["1", "", "v1", "v1.4600.n", &later, &format!("{value}.x")] {
            assert!(!s.is_valid(bad, "maple", 1_000), "{bad}");
        }
        // Signed with a longer TTL than the one now configured.
        let long = sessions(86_400).issue("maple", 1_000);
        assert!(!s.is_valid(&long, "maple", 1_000));
    }

    /// Property tests (`make fuzz` runs them at 20 000 cases each).
    mod properties {
        use super::*;
        use axum::http::header::COOKIE;
        use axum::http::HeaderValue;
        use proptest::prelude::*;

        /// Cookie values as a browser or an attacker may send them: the
        /// cookie's own shape with any parts, or anything at all.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                (
                    "(v1|v2|)",
                    "[0-9]{0,20}|\\PC{0,8}",
                    "[A-Za-z0-9_-]{0,40}",
                    "[A-Za-z0-9_=+/-]{0,50}"
                )
                    .prop_map(|(v, e, n, t)| format!("{v}.{e}.{n}.{t}")),
                "\\PC{0,80}",
                "[ -~]{0,80}",
            ]
        }

        proptest! {
            #[test]
            fn any_value_is_refused_without_panicking(value in value(), tenant in "\\PC{0,12}", now in any::<u64>()) {
                prop_assert!(!sessions(3600).is_valid(&value, &tenant, now));
            }

            #[test]
            fn any_cookie_header_is_refused_without_panicking(header in prop::collection::vec(any::<u8>(), 0..120)) {
                let mut headers = HeaderMap::new();
                if let Ok(value) = HeaderValue::from_bytes(&header) {
                    headers.insert(COOKIE, value);
                }
                prop_assert!(!sessions(3600).is_admin(&headers, "maple"));
            }

            /// An issued cookie holds for its tenant until its expiry, and
            /// for no one else; a bit changed anywhere spoils it.
            #[test]
            fn an_issued_cookie_holds_for_its_tenant_until_expiry(
                tenant in "\\PC{1,20}",
                other in "\\PC{1,20}",
                now in 0u64..=4_000_000_000,
                within in 0u64..3600,
                flip in any::<prop::sample::Index>(),
            ) {
                let s = sessions(3600);
                let value = s.issue(&tenant, now);
                prop_assert!(s.is_valid(&value, &tenant, now + within));
                prop_assert!(!s.is_valid(&value, &tenant, now + 3600));
                if other != tenant {
                    prop_assert!(!s.is_valid(&value, &other, now));
                }
                let mut bytes = value.clone().into_bytes();
                let at = flip.index(bytes.len());
                bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                let changed = String::from_utf8_lossy(&bytes).into_owned();
                if changed != value {
                    prop_assert!(!s.is_valid(&changed, &tenant, now));
                }
            }
        }
    }
}
