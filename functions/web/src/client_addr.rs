//! The client address login failures are counted by: API Gateway's
//! `sourceIp` in Lambda (or the first `X-Forwarded-For` hop it wrote), the
//! socket peer locally, where a forwarded header would be the client's own
//! claim.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use lambda_http::request::RequestContext;

/// The request's client address, as an extractor.
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts)))
    }
}

pub fn client_address(parts: &Parts) -> String {
    if let Some(ip) = parts.extensions.get::<RequestContext>().and_then(source_ip) {
        return ip;
    }
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        return peer.ip().to_string();
    }
    parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn source_ip(context: &RequestContext) -> Option<String> {
    match context {
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(xff: Option<&str>) -> Parts {
        let mut builder = Request::get("/");
        if let Some(xff) = xff {
            builder = builder.header("x-forwarded-for", xff);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn socket_peer_wins_over_a_forwarded_header() {
        let mut p = parts(Some("9.9.9.9"));
        p.extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 5555))));
        assert_eq!(client_address(&p), "10.0.0.7");
    }

    #[test]
    fn api_gateway_source_ip_first_then_the_first_forwarded_hop() {
        let mut p = parts(Some("9.9.9.9"));
        let mut context =
            lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
        context.http.source_ip = Some("203.0.113.5".into());
        p.extensions.insert(RequestContext::ApiGatewayV2(context));
        assert_eq!(client_address(&p), "203.0.113.5");
        assert_eq!(
            client_address(&parts(Some(" 1.1.1.1 , 2.2.2.2"))),
            "1.1.1.1"
        );
        assert_eq!(client_address(&parts(None)), "unknown");
    }
}
