//! Host rules shared with the orchestrator: normalize, validate, and derive the
//! tenant. An invalid host is answered locally, exactly like an unknown tenant.

/// Why a host was refused. Only for logs: every variant answers the same 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("empty host")]
    Empty,
    #[error("leading or trailing whitespace")]
    Whitespace,
    #[error("empty label")]
    EmptyLabel,
    #[error("reserved name")]
    Reserved,
    #[error("IP literal")]
    IpLiteral,
    #[error("character outside a-z 0-9 - .")]
    BadCharacter,
    #[error("too long")]
    TooLong,
}

const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// Lower-cases and strips trailing dots and a trailing `:<digits>` port.
///
/// The strip steps repeat until nothing changes, so that normalizing is
/// idempotent even for odd input such as `a.:80.:80`; for any real host this
/// is the orchestrator's dots / port / dots sequence.
pub fn normalize(raw: &str) -> String {
    let mut host = raw.to_ascii_lowercase();
    loop {
        let before = host.len();
        host.truncate(host.trim_end_matches('.').len());
        if let Some((rest, port)) = host.rsplit_once(':') {
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                host.truncate(rest.len());
            }
        }
        if host.len() == before {
            return host;
        }
    }
}

/// Normalizes `raw` and checks it against the host rules; returns the
/// normalized host.
pub fn validate(raw: &str) -> Result<String, HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    if raw.trim() != raw {
        return Err(HostError::Whitespace);
    }
    let host = normalize(raw);
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    if is_ipv6_literal(&host) || is_ipv4_literal(&host) {
        return Err(HostError::IpLiteral);
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(HostError::BadCharacter);
    }
    if host.split('.').any(str::is_empty) {
        return Err(HostError::EmptyLabel);
    }
    if host == "localhost" || host.starts_with("www.") {
        return Err(HostError::Reserved);
    }
    if host.len() > MAX_HOST_LEN || host.split('.').any(|l| l.len() > MAX_LABEL_LEN) {
        return Err(HostError::TooLong);
    }
    Ok(host)
}

/// The tenant a host belongs to: the first label before `.<base_domain>`, or,
/// outside the base domain, the host's first label.
pub fn tenant_of(host: &str, base_domain: &str) -> String {
    let inside = host
        .strip_suffix(base_domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|rest| !rest.is_empty());
    let part = inside.unwrap_or(host);
    part.split('.').next().unwrap_or(part).to_string()
}

fn is_ipv4_literal(host: &str) -> bool {
    let groups: Vec<&str> = host.split('.').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
}

fn is_ipv6_literal(host: &str) -> bool {
    host.starts_with('[')
        || host.contains("::")
        || (host.contains(':') && host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_case_dots_and_port() {
        let cases = [
            ("TeNaNt.Shibari.Photo:8080.", "tenant.shibari.photo"),
            ("tenant.shibari.photo.", "tenant.shibari.photo"),
            ("tenant.shibari.photo...", "tenant.shibari.photo"),
            ("tenant.shibari.photo:443", "tenant.shibari.photo"),
            ("tenant.shibari.photo.:443", "tenant.shibari.photo"),
            ("tenant.shibari.photo:", "tenant.shibari.photo:"),
            ("tenant.shibari.photo:https", "tenant.shibari.photo:https"),
            ("a.:80.:80", "a"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), want, "normalize({raw:?})");
        }
    }

    #[test]
    fn accepts_valid_hosts() {
        let cases = [
            ("vermont.shibari.photo", "vermont.shibari.photo"),
            ("VERMONT.shibari.photo:8080", "vermont.shibari.photo"),
            ("my-tenant.shibari.photo.", "my-tenant.shibari.photo"),
            ("photos.example.com", "photos.example.com"),
            ("a1.b2", "a1.b2"),
            ("1.2.3", "1.2.3"),
            ("1.2.3.4.5", "1.2.3.4.5"),
        ];
        for (raw, want) in cases {
            assert_eq!(validate(raw).as_deref(), Ok(want), "validate({raw:?})");
        }
    }

    #[test]
    fn rejects_every_listed_case() {
        let long_label = format!("{}.shibari.photo", "a".repeat(64));
        let long_host = format!("{}.photo", ["abcdefghi"; 25].join("."));
        assert!(long_host.len() > 253);
        let cases: Vec<(&str, HostError)> = vec![
            ("", HostError::Empty),
            (".", HostError::Empty),
            (":8080", HostError::Empty),
            (" tenant.shibari.photo", HostError::Whitespace),
            ("tenant.shibari.photo ", HostError::Whitespace),
            ("tenant.shibari.photo\n", HostError::Whitespace),
            ("tenant..shibari.photo", HostError::EmptyLabel),
            (".tenant.shibari.photo", HostError::EmptyLabel),
            ("localhost", HostError::Reserved),
            ("LOCALHOST:3000", HostError::Reserved),
            ("www.shibari.photo", HostError::Reserved),
            ("127.0.0.1", HostError::IpLiteral),
            ("10.0.0.1:8080", HostError::IpLiteral),
            ("[::1]", HostError::IpLiteral),
            ("[::1]:8080", HostError::IpLiteral),
            ("fe80::1", HostError::IpLiteral),
            ("2001:db8:0:0:0:0:0:1", HostError::IpLiteral),
            ("ten_ant.shibari.photo", HostError::BadCharacter),
            ("tenänt.shibari.photo", HostError::BadCharacter),
            ("tenant.shibari.photo/x", HostError::BadCharacter),
            ("ten ant.shibari.photo", HostError::BadCharacter),
            ("user@tenant.shibari.photo", HostError::BadCharacter),
            (long_label.as_str(), HostError::TooLong),
            (long_host.as_str(), HostError::TooLong),
        ];
        for (raw, want) in cases {
            assert_eq!(validate(raw), Err(want), "validate({raw:?})");
        }
    }

    #[test]
    fn label_of_63_and_host_of_253_are_allowed() {
        let label = format!("{}.shibari.photo", "a".repeat(63));
        assert!(validate(&label).is_ok());
        let host = format!("{}.{}", "a".repeat(63), vec!["b".repeat(63); 3].join("."));
        assert_eq!(host.len(), 255);
        assert_eq!(validate(&host[2..]), Ok(host[2..].to_string()));
    }

    #[test]
    fn tenant_is_the_first_label_before_the_base_domain() {
        let cases = [
            ("vermont.shibari.photo", "vermont"),
            ("a.b.shibari.photo", "a"),
            ("photos.example.com", "photos"),
            ("shibari.photo", "shibari"),
            ("notshibari.photo", "notshibari"),
        ];
        for (host, want) in cases {
            assert_eq!(
                tenant_of(host, "shibari.photo"),
                want,
                "tenant_of({host:?})"
            );
        }
    }

    /// Property tests (`make fuzz` runs them at 20 000 cases each).
    mod properties {
        use super::*;

        /// A valid host: 1 to 4 labels of `a-z 0-9 -`, the first not `www`.
        fn host() -> impl Strategy<Value = String> {
            prop::collection::vec("[a-z0-9][a-z0-9-]{0,20}", 1..5)
                .prop_map(|labels| labels.join("."))
                .prop_filter("not reserved, not an IP literal", |h| {
                    h != "localhost" && !h.starts_with("www.") && !is_ipv4_literal(h)
                })
        }

        proptest! {
            #[test]
            fn normalize_is_idempotent(raw in "\\PC*") {
                let once = normalize(&raw);
                prop_assert_eq!(normalize(&once), once);
            }

            #[test]
            fn normalize_is_idempotent_on_host_like_input(raw in "[a-zA-Z0-9.:\\-\\[\\] ]{0,40}") {
                let once = normalize(&raw);
                prop_assert_eq!(normalize(&once), once);
            }

            #[test]
            fn validate_never_panics_and_accepts_only_normal_forms(raw in "\\PC*|[a-z0-9.:\\-]{0,70}") {
                if let Ok(host) = validate(&raw) {
                    prop_assert_eq!(normalize(&host), host.clone());
                    prop_assert_eq!(validate(&host), Ok(host.clone()));
                    prop_assert!(!tenant_of(&host, "shibari.photo").is_empty());
                }
            }

            #[test]
            fn validate_never_panics_on_any_string(raw in any::<String>()) {
                let _ = validate(&raw);
                let _ = tenant_of(&raw, "shibari.photo");
            }

            /// Case, a port and trailing dots are what a `Host` header may
            /// add to a valid host: each is taken away again.
            #[test]
            fn a_valid_host_comes_back_from_its_header_forms(
                host in host(),
                port in proptest::option::of(any::<u16>()),
                dots in 0usize..3,
                upper in any::<bool>(),
            ) {
                let mut raw = if upper { host.to_ascii_uppercase() } else { host.clone() };
                raw.push_str(&".".repeat(dots));
                if let Some(port) = port {
                    raw.push_str(&format!(":{port}"));
                }
                prop_assert_eq!(validate(&raw), Ok(host.clone()));
                let inside = format!("{host}.shibari.photo");
                prop_assert_eq!(tenant_of(&inside, "shibari.photo"), host.split('.').next().unwrap_or_default());
            }
        }
    }
}
