//! A fake OIDC provider in the manner of Auth0, over real HTTP on 127.0.0.1:
//! discovery, JWKS, authorize, token and userinfo endpoints. Id tokens are
//! RS256 JWTs signed with a real 2048-bit RSA key (a test-only key in
//! `fixtures/oidc_signing_key.pem`).
//!
//! The authorize endpoint stands for a user who logs in at once: it redirects
//! to the `redirect_uri` with a fresh code (or with `error=access_denied` when
//! [`FakeOidc::deny_next_login`] was called). A PKCE `S256` challenge sent
//! there must be answered by the verifier at the token endpoint. The user is set with
//! [`FakeOidc::set_user`]; [`FakeOidc::set_flaw`] makes the next id tokens
//! wrong in one chosen way, for the negative tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Digest;

use crate::fake_server::{lock, FakeServer};

pub const CLIENT_ID: &str = "fake-oidc-client";
pub const CLIENT_SECRET: &str = "fake-oidc-client-secret";

const SIGNING_KEY_PEM: &str = fixture!("oidc_signing_key.pem");
const OTHER_KEY_PEM: &str = fixture!("oidc_other_key.pem");

/// Who logs in at the provider.
#[derive(Debug, Clone)]
pub struct User {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// Put the e-mail in the id token (else only userinfo has it).
    pub email_in_id_token: bool,
}

impl User {
    pub fn with_email(email: &str) -> User {
        User {
            email: Some(email.to_string()),
            email_verified: Some(true),
            email_in_id_token: true,
        }
    }
}

/// One way to make the id token wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    None,
    WrongAudience,
    WrongIssuer,
    Expired,
    WrongNonce,
    /// Signed with a key the JWKS does not hold, under the JWKS key's id.
    ForeignKey,
    /// Signed with a key id the JWKS does not list.
    UnknownKeyId,
    /// HS256 with the client secret instead of the provider's RSA key.
    SymmetricSignature,
    /// `alg: none`, no signature.
    Unsigned,
}

struct Grant {
    nonce: Option<String>,
    redirect_uri: String,
    /// PKCE's `code_challenge`, when the authorize request sent one (only
    /// `S256` is accepted).
    challenge: Option<String>,
}

struct Data {
    user: User,
    flaw: Flaw,
    deny_next: bool,
    /// The key id the JWKS and new tokens use; rotation changes it.
    kid: String,
    codes: HashMap<String, Grant>,
    access_tokens: HashMap<String, User>,
    token_calls: usize,
    userinfo_calls: usize,
    jwks_calls: usize,
}

struct Shared {
    base: String,
    data: Mutex<Data>,
    key: EncodingKey,
    other_key: EncodingKey,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }
}

/// Handle on a running fake provider; stops when dropped.
pub struct FakeOidc {
    shared: Arc<Shared>,
    server: FakeServer,
}

impl FakeOidc {
    pub async fn start() -> FakeOidc {
        let bound = FakeServer::bind("fake OIDC provider").await;
        let shared = Arc::new(Shared {
            base: format!("{}/", bound.url()),
            data: Mutex::new(Data {
                user: User::with_email("admin@example.com"),
                flaw: Flaw::None,
                deny_next: false,
                kid: "key-1".into(),
                codes: HashMap::new(),
                access_tokens: HashMap::new(),
                token_calls: 0,
                userinfo_calls: 0,
                jwks_calls: 0,
            }),
            key: EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes()).expect("signing key"),
            other_key: EncodingKey::from_rsa_pem(OTHER_KEY_PEM.as_bytes()).expect("other key"),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/authorize", get(authorize))
            .route("/oauth/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(shared.clone());
        let server = bound.serve(app);
        FakeOidc { shared, server }
    }

    /// The issuer, `http://127.0.0.1:<port>/` (trailing slash, like Auth0's).
    pub fn issuer(&self) -> String {
        self.shared.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn set_user(&self, user: User) {
        self.shared.data().user = user;
    }

    pub fn set_flaw(&self, flaw: Flaw) {
        self.shared.data().flaw = flaw;
    }

    /// The next authorize request answers `error=access_denied`.
    pub fn deny_next_login(&self) {
        self.shared.data().deny_next = true;
    }

    /// A new signing key id: the JWKS and new tokens use it from now on.
    pub fn rotate_key_id(&self, kid: &str) {
        self.shared.data().kid = kid.to_string();
    }

    pub fn token_calls(&self) -> usize {
        self.shared.data().token_calls
    }

    pub fn userinfo_calls(&self) -> usize {
        self.shared.data().userinfo_calls
    }

    pub fn jwks_calls(&self) -> usize {
        self.shared.data().jwks_calls
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let base = &shared.base;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}authorize"),
        "token_endpoint": format!("{base}oauth/token"),
        "userinfo_endpoint": format!("{base}userinfo"),
        "jwks_uri": format!("{base}.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<JwkSet> {
    let kid = {
        let mut data = shared.data();
        data.jwks_calls += 1;
        data.kid.clone()
    };
    let mut jwk = Jwk::from_encoding_key(&shared.key, Algorithm::RS256).expect("public JWK");
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    Json(JwkSet { keys: vec![jwk] })
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    let redirect_uri = param("redirect_uri");
    let challenge = query.get("code_challenge").cloned();
    let valid = param("response_type") == "code"
        && param("client_id") == CLIENT_ID
        && param("scope").split(' ').any(|s| s == "openid")
        && !redirect_uri.is_empty()
        && (challenge.is_none() || param("code_challenge_method") == "S256");
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request"})),
        )
            .into_response();
    }
    let state = param("state");
    let mut data = shared.data();
    let back = if std::mem::take(&mut data.deny_next) {
        with_query(
            &redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "User did not authorize the request"),
                ("state", &state),
            ],
        )
    } else {
        let code = format!("code-{}", data.codes.len() + data.token_calls + 1);
        data.codes.insert(
            code.clone(),
            Grant {
                nonce: query.get("nonce").cloned(),
                redirect_uri: redirect_uri.clone(),
                challenge,
            },
        );
        with_query(&redirect_uri, &[("code", &code), ("state", &state)])
    };
    Redirect::to(&back).into_response()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{base}?{query}")
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let mut data = shared.data();
    data.token_calls += 1;
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "access_denied", "error_description": "Unauthorized"})),
        )
            .into_response();
    }
    if field("grant_type") != "authorization_code" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let Some(grant) = data.codes.remove(field("code")) else {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    // PKCE: the verifier must hash to the challenge the login began with.
    let verified = grant.challenge.as_ref().is_none_or(|challenge| {
        let digest = sha2::Sha256::digest(field("code_verifier").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == *challenge
    });
    if grant.redirect_uri != field("redirect_uri") || !verified {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let user = data.user.clone();
    let access_token = format!("access-{}", data.token_calls);
    data.access_tokens
        .insert(access_token.clone(), user.clone());
    let id_token = id_token(&shared, &data, &user, grant.nonce);
    Json(json!({
        "access_token": access_token,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": 86400,
        "scope": "openid email profile",
    }))
    .into_response()
}

fn id_token(shared: &Shared, data: &Data, user: &User, nonce: Option<String>) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let flaw = data.flaw;
    let mut claims = json!({
        "iss": if flaw == Flaw::WrongIssuer { "https://evil.example/".to_string() } else { shared.base.clone() },
        "sub": "auth0|12345",
        "aud": if flaw == Flaw::WrongAudience { "another-client" } else { CLIENT_ID },
        "iat": now,
        "exp": if flaw == Flaw::Expired { now - 3600 } else { now + 3600 },
        "nonce": if flaw == Flaw::WrongNonce { Some("not-the-nonce".to_string()) } else { nonce },
    });
    if user.email_in_id_token {
        claims["email"] = json!(user.email);
        claims["email_verified"] = json!(user.email_verified);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(match flaw {
        Flaw::UnknownKeyId => "key-unknown".to_string(),
        _ => data.kid.clone(),
    });
    match flaw {
        Flaw::ForeignKey => jsonwebtoken::encode(&header, &claims, &shared.other_key),
        Flaw::SymmetricSignature => {
            header.alg = Algorithm::HS256;
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
            )
        }
        Flaw::Unsigned => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let head = json!({"alg": "none", "typ": "JWT", "kid": data.kid});
            Ok(format!(
                "{}.{}.",
                b64.encode(head.to_string()),
                b64.encode(claims.to_string())
            ))
        }
        _ => jsonwebtoken::encode(&header, &claims, &shared.key),
    }
    .expect("sign id token")
}

async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut data = shared.data();
    data.userinfo_calls += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token.and_then(|t| data.access_tokens.get(t)) {
        Some(user) => Json(json!({
            "sub": "auth0|12345",
            "email": user.email,
            "email_verified": user.email_verified,
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response(),
    }
}
