//! `X-Request-Id`: taken from the request when well-formed, generated
//! otherwise, and returned on every response (also as `X-Correlation-ID`).

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::responses::Panicked;

/// The request's id, as an extension for handlers and the tenant layer.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn is_valid(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_valid(id))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if response.extensions().get::<Panicked>().is_some() {
        tracing::error!(request_id = %id, "the request failed with a panic");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        let headers = response.headers_mut();
        headers.insert("x-request-id", value.clone());
        headers.insert("x-correlation-id", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_only_short_safe_ids() {
        for ok in ["a", "req-1.2_3:4", &"x".repeat(128)] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "semi;colon",
            "ünï",
            &"x".repeat(129),
            "new\nline",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }
}
