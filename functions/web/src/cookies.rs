//! Reading request cookies and writing `Set-Cookie` headers with the
//! attributes every cookie of the web function carries.

use std::time::Duration;

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};

/// Every value of the cookie `name` the request carries (browsers may send
/// several, e.g. one per path).
pub fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
        .collect()
}

/// HttpOnly, SameSite=Lax, Secure unless `secure` is off, `Max-Age` = `max_age`.
pub fn set(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: Duration,
    secure: bool,
) {
    let seconds = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(path)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(seconds))
        .build();
    append(headers, &cookie);
}

/// Tells the browser to drop the cookie now.
pub fn clear(headers: &mut HeaderMap, name: &str, path: &str, secure: bool) {
    set(headers, name, "", path, Duration::ZERO, secure);
}

fn append(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    // Names and values are ours (ASCII tokens), so the header is always valid.
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_has_every_attribute() {
        let mut headers = HeaderMap::new();
        set(
            &mut headers,
            "pv2_admin",
            "v1.2.3",
            "/",
            Duration::from_secs(3600),
            true,
        );
        let text = headers[SET_COOKIE].to_str().unwrap();
        for part in [
            "pv2_admin=v1.2.3",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=3600",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        let mut headers = HeaderMap::new();
        clear(&mut headers, "pv2_admin", "/", false);
        let text = headers[SET_COOKIE].to_str().unwrap();
        assert!(
            text.contains("Max-Age=0") && !text.contains("Secure"),
            "{text}"
        );
    }

    #[test]
    fn reads_every_value_of_a_name() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; pv2_admin=x"));
        headers.append(COOKIE, HeaderValue::from_static("pv2_admin=y"));
        assert_eq!(values(&headers, "pv2_admin"), ["x", "y"]);
        assert!(values(&headers, "missing").is_empty());
    }
}
