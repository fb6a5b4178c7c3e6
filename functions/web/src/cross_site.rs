//! Cross-site requests refused. Tenants share one registrable domain, so a
//! page on a sibling tenant's host is "same-site" and the browser sends this
//! host's `SameSite=Lax` admin cookie along with its form posts: the cookie's
//! attribute alone does not stop them. Every `POST` whose `Origin` is not
//! this host's own origin, or whose `Sec-Fetch-Site` says `cross-site` or
//! `same-site`, is answered 403 before any other guard runs. Clients that
//! are not browsers send neither header and pass.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use publisher::app::App;

use crate::responses::detail;

pub async fn refuse_cross_site(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let secure = app.settings.web.secure_cookies;
    if request.method() == Method::POST && is_cross_site(request.headers(), request.uri(), secure) {
        return detail(StatusCode::FORBIDDEN, "Cross-site request refused");
    }
    next.run(request).await
}

/// Does a request with these headers come from another site's page?
fn is_cross_site(headers: &HeaderMap, uri: &Uri, secure: bool) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    if matches!(fetch_site.as_deref(), Some("cross-site" | "same-site")) {
        return true;
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return false;
    };
    let host = match headers.get(HOST) {
        Some(host) => host.to_str().ok().map(str::to_string),
        None => uri.authority().map(|a| a.to_string()),
    };
    let scheme = if secure { "https" } else { "http" };
    let own = host.map(|host| format!("{scheme}://{}", host.to_ascii_lowercase()));
    let origin = origin.to_str().ok().map(|o| o.trim().to_ascii_lowercase());
    origin.is_none() || origin != own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn origin_and_fetch_site_rules() {
        let uri = Uri::from_static("/api/images/a.jpg/keep");
        let host = ("host", "vermont.shibari.photo");
        // Headers, whether cookies are Secure, whether the request is refused.
        type Case<'a> = (&'a [(&'static str, &'a str)], bool, bool);
        let cases: [Case; 11] = [
            // Scripts send neither header.
            (&[host], true, false),
            (
                &[host, ("origin", "https://vermont.shibari.photo")],
                true,
                false,
            ),
            (
                &[host, ("origin", "https://VERMONT.shibari.photo")],
                true,
                false,
            ),
            (
                &[host, ("origin", "https://maple.shibari.photo")],
                true,
                true,
            ),
            (
                &[host, ("origin", "http://vermont.shibari.photo")],
                true,
                true,
            ),
            (
                &[host, ("origin", "http://vermont.shibari.photo")],
                false,
                false,
            ),
            (&[host, ("origin", "null")], true, true),
            (&[host, ("sec-fetch-site", "same-origin")], true, false),
            (&[host, ("sec-fetch-site", "same-site")], true, true),
            (&[host, ("sec-fetch-site", "cross-site")], true, true),
            (&[host, ("sec-fetch-site", "none")], true, false),
        ];
        for (pairs, secure, refused) in cases {
            assert_eq!(
                is_cross_site(&headers(pairs), &uri, secure),
                refused,
                "{pairs:?} secure={secure}"
            );
        }
        let local = headers(&[
            ("host", "publisher.localhost:8000"),
            ("origin", "http://publisher.localhost:8000"),
        ]);
        assert!(
            !is_cross_site(&local, &uri, false),
            "a port is part of the origin"
        );
    }
}
