//! OIDC admin login (`docs/http-api.md`, OIDC login) against a fake provider over real HTTP:
//! the authorize redirect with PKCE, the host-bound state cookie used once,
//! the code exchange, id-token verification, the verified e-mail on the
//! allowlist, every failure's `auth_error`, and logins on several hosts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use publisher_tests::fake_oidc::{FakeOidc, Flaw, User, CLIENT_ID, CLIENT_SECRET};
use publisher_tests::harness::{send, settings, Answer};
use serde_json::json;

const HOST: &str = "photos.example.com";
const CALLBACK: &str = "https://photos.example.com/auth/callback";

struct Site {
    web: Router,
    _dir: tempfile::TempDir,
}

fn site(fake: &FakeOidc, extra: &[(&str, &str)]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let issuer = fake.issuer();
    let dir_text = dir.path().to_str().unwrap().to_string();
    let mut vars: Vec<(&str, &str)> = vec![
        ("STORAGE_PROVIDER", "local"),
        ("LOCAL_STORAGE_DIR", &dir_text),
        ("STORAGE_PATHS", r#"{"root": "/"}"#),
        (
            "WEB_SESSION_SECRET",
            "oidc-tests-session-secret-0123456789abcdef",
        ),
        ("AUTH0_DOMAIN", "publisher.eu.auth0.com"),
        ("AUTH0_ISSUER_URL", &issuer),
        ("AUTH0_CLIENT_ID", CLIENT_ID),
        ("AUTH0_CLIENT_SECRET", CLIENT_SECRET),
        ("AUTH0_CALLBACK_URL", CALLBACK),
        (
            "ADMIN_LOGIN_EMAILS",
            "Admin@Example.com, second@example.com",
        ),
    ];
    vars.extend_from_slice(extra);
    let app = Arc::new(publisher::app::App::new(settings(&vars)).expect("app"));
    Site {
        web: web::router(app),
        _dir: dir,
    }
}

async fn get(web: &Router, path: &str, cookie: Option<&str>) -> Answer {
    get_on(web, HOST, path, cookie).await
}

async fn get_on(web: &Router, host: &str, path: &str, cookie: Option<&str>) -> Answer {
    let mut builder = Request::get(path).header("host", host);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    send(web, builder.body(Body::empty()).unwrap()).await
}

fn location(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{:?}", answer.headers);
    answer.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// What a login ended with: where the browser went and what it was given.
struct Outcome {
    location: String,
    admin_cookie: Option<String>,
    state_cookie_cleared: bool,
}

impl Outcome {
    fn auth_error(&self) -> Option<String> {
        query_of(&self.location).get("auth_error").cloned()
    }
}

/// `/auth/login` → the provider's authorize endpoint (which logs the user in
/// and redirects back) → `/auth/callback` with the state cookie.
async fn log_in(web: &Router) -> Outcome {
    log_in_on(web, HOST).await.0
}

/// [`log_in`] on `host`; also the callback's path and state cookie, to
/// replay them.
async fn log_in_on(web: &Router, host: &str) -> (Outcome, String, String) {
    let start = get_on(web, host, "/auth/login", None).await;
    let authorize = location(&start);
    let state_cookie = cookie_named(&start.headers, "pv2_oidc").expect("state cookie");
    let pair = state_cookie.split(';').next().unwrap().to_string();
    let back = provider_redirect(&authorize).await;
    let origin = format!("https://{host}");
    assert!(
        back.starts_with(&format!("{origin}/auth/callback")),
        "{back}"
    );
    let path = back.strip_prefix(&origin).unwrap().to_string();
    let outcome = callback_on(web, host, &path, Some(&pair)).await;
    (outcome, path, pair)
}

async fn provider_redirect(authorize: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(authorize).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

async fn callback(web: &Router, path: &str, cookie: Option<&str>) -> Outcome {
    callback_on(web, HOST, path, cookie).await
}

async fn callback_on(web: &Router, host: &str, path: &str, cookie: Option<&str>) -> Outcome {
    let answer = get_on(web, host, path, cookie).await;
    let location = location(&answer);
    Outcome {
        location,
        admin_cookie: cookie_named(&answer.headers, "pv2_admin")
            .map(|c| c.split(';').next().unwrap().to_string()),
        state_cookie_cleared: cookie_named(&answer.headers, "pv2_oidc")
            .is_some_and(|c| c.contains("Max-Age=0")),
    }
}

async fn is_admin(web: &Router, cookie: &str) -> bool {
    get(web, "/api/admin/status", Some(cookie)).await.json["admin"] == json!(true)
}

#[tokio::test]
async fn login_redirects_to_the_provider_with_state_and_nonce() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    let features = get(&site.web, "/api/config/features", None).await;
    assert_eq!(features.json["auth_mode"], "auth0");
    let start = get(&site.web, "/auth/login", None).await;
    let authorize = location(&start);
    assert!(
        authorize.starts_with(&format!("{}authorize?", fake.issuer())),
        "{authorize}"
    );
    let query = query_of(&authorize);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], CALLBACK);
    assert_eq!(query["scope"], "openid email profile");
    assert!(query["state"].len() >= 32 && query["nonce"].len() >= 32);
    assert_ne!(query["state"], query["nonce"]);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43, "a SHA-256, base64url");
    let cookie = cookie_named(&start.headers, "pv2_oidc").unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/auth",
        "Max-Age=600",
        "Secure",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    // A second login gets a different state.
    let again = location(&get(&site.web, "/auth/login", None).await);
    assert_ne!(query_of(&again)["state"], query["state"]);
}

#[tokio::test]
async fn an_allowlisted_email_in_the_id_token_becomes_admin() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    fake.set_user(User::with_email("ADMIN@example.COM"));
    let outcome = log_in(&site.web).await;
    assert_eq!(outcome.location, "/");
    assert!(outcome.state_cookie_cleared, "state is single-use");
    let admin = outcome.admin_cookie.expect("admin cookie");
    assert!(is_admin(&site.web, &admin).await);
    assert_eq!(fake.token_calls(), 1);
    assert_eq!(fake.userinfo_calls(), 0, "the id token had the e-mail");
    // Logging out clears the cookie.
    let out = get(&site.web, "/auth/logout", Some(&admin)).await;
    assert_eq!(location(&out), "/");
    assert!(cookie_named(&out.headers, "pv2_admin")
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test]
async fn the_email_may_come_from_userinfo() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    fake.set_user(User {
        email: Some("second@example.com".into()),
        email_verified: Some(true),
        email_in_id_token: false,
    });
    let outcome = log_in(&site.web).await;
    assert_eq!(outcome.location, "/");
    assert!(outcome.admin_cookie.is_some());
    assert_eq!(fake.userinfo_calls(), 1);
}

#[tokio::test]
async fn emails_off_the_list_unverified_or_missing_are_refused() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    let cases = [
        (User::with_email("intruder@example.com"), "access_denied"),
        (
            User {
                email: Some("admin@example.com".into()),
                email_verified: Some(false),
                email_in_id_token: true,
            },
            "email_not_verified",
        ),
        (
            User {
                email: Some("admin@example.com".into()),
                email_verified: None,
                email_in_id_token: true,
            },
            "email_not_verified",
        ),
        (
            User {
                email: None,
                email_verified: None,
                email_in_id_token: false,
            },
            "no_email_provided",
        ),
    ];
    for (user, reason) in cases {
        fake.set_user(user.clone());
        let outcome = log_in(&site.web).await;
        assert_eq!(outcome.auth_error().as_deref(), Some(reason), "{user:?}");
        assert_eq!(outcome.location, format!("/?auth_error={reason}"));
        assert!(outcome.admin_cookie.is_none(), "{user:?}");
        assert!(outcome.state_cookie_cleared);
    }
}

#[tokio::test]
async fn a_user_who_declines_at_the_provider_is_access_denied() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    fake.deny_next_login();
    let outcome = log_in(&site.web).await;
    assert_eq!(outcome.auth_error().as_deref(), Some("access_denied"));
    assert!(outcome.admin_cookie.is_none());
    assert_eq!(fake.token_calls(), 0);
}

#[tokio::test]
async fn every_flawed_id_token_fails_the_callback() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    for flaw in [
        Flaw::WrongAudience,
        Flaw::WrongIssuer,
        Flaw::Expired,
        Flaw::WrongNonce,
        Flaw::ForeignKey,
        Flaw::UnknownKeyId,
        Flaw::SymmetricSignature,
        Flaw::Unsigned,
    ] {
        fake.set_flaw(flaw);
        let outcome = log_in(&site.web).await;
        assert_eq!(
            outcome.auth_error().as_deref(),
            Some("callback_failed"),
            "{flaw:?}"
        );
        assert!(outcome.admin_cookie.is_none(), "{flaw:?}");
    }
    fake.set_flaw(Flaw::None);
    assert!(
        log_in(&site.web).await.admin_cookie.is_some(),
        "a sound token still works"
    );
}

#[tokio::test]
async fn state_must_match_the_signed_cookie() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    let start = get(&site.web, "/auth/login", None).await;
    let authorize = location(&start);
    let cookie = cookie_named(&start.headers, "pv2_oidc").unwrap();
    let pair = cookie.split(';').next().unwrap().to_string();
    let back = provider_redirect(&authorize).await;
    let params = query_of(&back);
    let code = &params["code"];
    let tampered = pair.replacen("v2.", "v2.9", 1);
    let cases: Vec<(String, Option<&str>)> = vec![
        (
            format!("/auth/callback?code={code}&state=forged"),
            Some(&pair),
        ),
        (
            format!("/auth/callback?code={code}&state={}", params["state"]),
            None,
        ),
        (
            format!("/auth/callback?code={code}&state={}", params["state"]),
            Some("pv2_oidc=v1.1.a.b.c"),
        ),
        (
            format!("/auth/callback?code={code}&state={}", params["state"]),
            Some(&tampered),
        ),
        (
            format!("/auth/callback?state={}", params["state"]),
            Some(&pair),
        ),
        ("/auth/callback".to_string(), Some(&pair)),
        (
            "/auth/callback?code=a&code=b&state=%zz".to_string(),
            Some(&pair),
        ),
    ];
    for (path, cookie) in cases {
        let outcome = callback(&site.web, &path, cookie).await;
        assert_eq!(
            outcome.auth_error().as_deref(),
            Some("callback_failed"),
            "{path} {cookie:?}"
        );
        assert!(outcome.admin_cookie.is_none());
    }
    assert_eq!(
        fake.token_calls(),
        0,
        "no exchange without a matching state"
    );
    // The untouched flow still completes with the same code.
    let outcome = callback(
        &site.web,
        &format!("/auth/callback?code={code}&state={}", params["state"]),
        Some(&pair),
    )
    .await;
    assert_eq!(outcome.location, "/");
}

#[tokio::test]
async fn a_rejected_code_exchange_fails_the_callback() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[("AUTH0_CLIENT_SECRET", "not-the-secret")]);
    let outcome = log_in(&site.web).await;
    assert_eq!(outcome.auth_error().as_deref(), Some("callback_failed"));
    assert_eq!(fake.token_calls(), 1);
}

#[tokio::test]
async fn rotated_keys_are_fetched_again() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    assert!(log_in(&site.web).await.admin_cookie.is_some());
    assert_eq!(fake.jwks_calls(), 1, "keys are cached");
    fake.rotate_key_id("key-2");
    assert!(log_in(&site.web).await.admin_cookie.is_some());
    assert_eq!(
        fake.jwks_calls(),
        2,
        "an unknown key id refetched them once"
    );
}

#[tokio::test]
async fn an_unreachable_provider_fails_the_login() {
    let fake = FakeOidc::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let site = site(&fake, &[("AUTH0_ISSUER_URL", &closed)]);
    let start = get(&site.web, "/auth/login", None).await;
    assert_eq!(location(&start), "/?auth_error=callback_failed");
    assert!(cookie_named(&start.headers, "pv2_oidc").is_none());
}

#[tokio::test]
async fn a_replayed_callback_never_reaches_the_provider() {
    let fake = FakeOidc::start().await;
    let site = site(&fake, &[]);
    let (first, path, cookie) = log_in_on(&site.web, HOST).await;
    assert!(first.admin_cookie.is_some());
    assert_eq!(fake.token_calls(), 1);
    let replay = callback(&site.web, &path, Some(&cookie)).await;
    assert_eq!(replay.auth_error().as_deref(), Some("callback_failed"));
    assert!(replay.admin_cookie.is_none());
    assert_eq!(fake.token_calls(), 1, "refused before the token endpoint");
}

#[tokio::test]
async fn logins_work_on_every_host_and_their_state_stays_on_its_host() {
    let fake = FakeOidc::start().await;
    // No AUTH0_CALLBACK_URL: each host is its own redirect URI.
    let hosts = site(&fake, &[("AUTH0_CALLBACK_URL", "")]);
    for host in ["photos.example.com", "gallery.example.org"] {
        let (outcome, _, _) = log_in_on(&hosts.web, host).await;
        assert_eq!(outcome.location, "/", "{host}");
        let admin = outcome.admin_cookie.expect("admin cookie");
        let status = get_on(&hosts.web, host, "/api/admin/status", Some(&admin)).await;
        assert_eq!(status.json["admin"], json!(true), "{host}");
    }
    assert_eq!(fake.token_calls(), 2);

    // A login begun on one host cannot be finished on another.
    let start = get_on(&hosts.web, "photos.example.com", "/auth/login", None).await;
    let pair = cookie_named(&start.headers, "pv2_oidc").unwrap();
    let pair = pair.split(';').next().unwrap().to_string();
    let back = provider_redirect(&location(&start)).await;
    let path = back.strip_prefix("https://photos.example.com").unwrap();
    let elsewhere = callback_on(&hosts.web, "gallery.example.org", path, Some(&pair)).await;
    assert_eq!(elsewhere.auth_error().as_deref(), Some("callback_failed"));
    assert_eq!(fake.token_calls(), 2);

    // A callback URL template with `{host}` names the request's host.
    let templated = site(
        &fake,
        &[("AUTH0_CALLBACK_URL", "https://{host}/auth/callback")],
    );
    let start = get_on(&templated.web, "gallery.example.org", "/auth/login", None).await;
    assert_eq!(
        query_of(&location(&start))["redirect_uri"],
        "https://gallery.example.org/auth/callback"
    );
}
