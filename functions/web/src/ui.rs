//! The HTML UI (`docs/http-api.md`, The page): one page, embedded in the binary, its
//! script and style inlined and pinned by hash in the Content-Security-Policy,
//! so no other script can run on it.

use std::sync::LazyLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

struct Assembled {
    html: String,
    csp: String,
}

static UI: LazyLock<Assembled> = LazyLock::new(|| {
    let html = PAGE
        .replace("/*APP_CSS*/", STYLE)
        .replace("/*APP_JS*/", SCRIPT);
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; \
         img-src 'self' https: data:; connect-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        digest(SCRIPT),
        digest(STYLE)
    );
    Assembled { html, csp }
});

fn digest(text: &str) -> String {
    STANDARD.encode(Sha256::digest(text.as_bytes()))
}

pub async fn page() -> Response {
    let ui = &*UI;
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
            (
                HeaderName::from_static("content-security-policy"),
                ui.csp.as_str(),
            ),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
            (HeaderName::from_static("referrer-policy"), "no-referrer"),
        ],
        ui.html.clone(),
    )
        .into_response()
}
