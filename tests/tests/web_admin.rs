//! Admin security (`docs/http-api.md`, Guards): the signed, expiring, tenant-bound
//! `pv2_admin` cookie, password login and logout, and the failed-login limit
//! per client address and tenant.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use publisher_tests::harness::{fake_with_samples, orchestrated_app, send, settings, Answer};
use serde_json::json;

const HOST: &str = "photos.example.com";
const PASSWORD: &str = "a long and correct admin password";
const SECRET: &str = "admin-tests-session-secret-0123456789abcdef";

fn standalone(extra: &[(&str, &str)]) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap().to_string();
    let mut vars: Vec<(&str, &str)> = vec![
        ("STORAGE_PROVIDER", "local"),
        ("LOCAL_STORAGE_DIR", &dir_text),
        ("STORAGE_PATHS", r#"{"root": "/"}"#),
        ("WEB_ADMIN_PASSWORD", PASSWORD),
        ("WEB_SESSION_SECRET", SECRET),
    ];
    vars.extend_from_slice(extra);
    let app = Arc::new(publisher::app::App::new(settings(&vars)).expect("app"));
    (web::router(app), dir)
}

/// How the client reaches the function: a socket peer (local server) or only
/// an `X-Forwarded-For` header (behind API Gateway).
#[derive(Clone, Copy)]
enum Client<'a> {
    Peer(&'a str),
    Forwarded(&'a str),
}

fn login(host: &str, body: &str, client: Client<'_>) -> Request<Body> {
    let mut builder = Request::post("/api/admin/login")
        .header("host", host)
        .header("content-type", "application/json");
    if let Client::Forwarded(xff) = client {
        builder = builder.header("x-forwarded-for", xff);
    }
    let mut request = builder.body(Body::from(body.to_string())).unwrap();
    if let Client::Peer(ip) = client {
        let peer: SocketAddr = format!("{ip}:50000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    request
}

fn password(p: &str) -> String {
    json!({"password": p}).to_string()
}

async fn status(web: &Router, host: &str, cookie: &str) -> Answer {
    let request = Request::get("/api/admin/status")
        .header("host", host)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    send(web, request).await
}

fn admin_set_cookie(headers: &HeaderMap) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("pv2_admin="))
        .expect("pv2_admin cookie")
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn login_sets_a_signed_cookie_with_every_attribute() {
    let (web, _dir) = standalone(&[("WEB_ADMIN_COOKIE_TTL_SECONDS", "900")]);
    let answer = send(
        &web,
        login(HOST, &password(PASSWORD), Client::Peer("10.0.0.1")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json, json!({"admin": true, "error": null}));
    let set = admin_set_cookie(&answer.headers);
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Secure",
        "Max-Age=900",
    ] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    let cookie = pair(&set);
    assert_ne!(cookie, "pv2_admin=1");
    assert!(!cookie.contains(PASSWORD) && !cookie.contains(SECRET));
    assert_eq!(
        status(&web, HOST, &cookie).await.json,
        json!({"admin": true, "error": null})
    );
    // Each login is a new session value.
    let again = send(
        &web,
        login(HOST, &password(PASSWORD), Client::Peer("10.0.0.1")),
    )
    .await;
    assert_ne!(pair(&admin_set_cookie(&again.headers)), cookie);
}

#[tokio::test]
async fn insecure_cookies_only_when_asked() {
    let (web, _dir) = standalone(&[("WEB_SECURE_COOKIES", "false")]);
    let answer = send(
        &web,
        login(HOST, &password(PASSWORD), Client::Peer("10.0.0.1")),
    )
    .await;
    let set = admin_set_cookie(&answer.headers);
    assert!(!set.contains("Secure"), "{set}");
    assert!(set.contains("Max-Age=3600"), "default TTL: {set}");
}

#[tokio::test]
async fn plain_forged_and_tampered_cookies_are_not_admin() {
    let (web, _dir) = standalone(&[]);
    let answer = send(
        &web,
        login(HOST, &password(PASSWORD), Client::Peer("10.0.0.1")),
    )
    .await;
    let cookie = pair(&admin_set_cookie(&answer.headers));
    let value = cookie.strip_prefix("pv2_admin=").unwrap();
    let parts: Vec<&str> = value.split('.').collect();
    assert_eq!(parts.len(), 4, "{value}");
    let later: u64 = parts[1].parse::<u64>().unwrap() + 60;
    let mut flipped = parts[3].to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let forged = [
        "pv2_admin=1".to_string(),
        "pv2_admin=true".to_string(),
        "pv2_admin=".to_string(),
        format!("pv2_admin=v1.{later}.{}.{}", parts[2], parts[3]),
        format!("pv2_admin=v1.{}.{}x.{}", parts[1], parts[2], parts[3]),
        format!("pv2_admin=v1.{}.{}.{flipped}", parts[1], parts[2]),
        format!("pv2_admin=v2.{}.{}.{}", parts[1], parts[2], parts[3]),
    ];
    for bad in forged {
        assert_eq!(status(&web, HOST, &bad).await.json["admin"], false, "{bad}");
    }
    assert_eq!(status(&web, HOST, &cookie).await.json["admin"], true);
    // Signed with another WEB_SESSION_SECRET: worthless here.
    let (other, _other_dir) = standalone(&[(
        "WEB_SESSION_SECRET",
        "yet-another-session-secret-0123456789",
    )]);
    let foreign = send(
        &other,
        login(HOST, &password(PASSWORD), Client::Peer("10.0.0.1")),
    )
    .await;
    let foreign = pair(&admin_set_cookie(&foreign.headers));
    assert_eq!(status(&web, HOST, &foreign).await.json["admin"], false);
}

#[tokio::test]
async fn wrong_missing_and_malformed_logins() {
    let (web, _dir) = standalone(&[]);
    let answer = send(
        &web,
        login(HOST, &password("nope"), Client::Peer("10.0.0.2")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json, json!({"detail": "Invalid password"}));
    assert!(answer.headers.get(header::SET_COOKIE).is_none());
    for body in ["", "not json", "{\"pass\": \"x\"}", "{\"password\": 7}"] {
        let answer = send(&web, login(HOST, body, Client::Peer("10.0.0.3"))).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
    }
    let (no_password, _dir2) = standalone(&[("WEB_ADMIN_PASSWORD", "")]);
    let answer = send(
        &no_password,
        login(HOST, &password(PASSWORD), Client::Peer("10.0.0.2")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json, json!({"detail": "Legacy login not enabled"}));
}

#[tokio::test]
async fn logout_clears_the_cookie() {
    let (web, _dir) = standalone(&[]);
    let request = Request::post("/api/admin/logout")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    let answer = send(&web, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json, json!({"admin": false, "error": null}));
    let set = admin_set_cookie(&answer.headers);
    assert!(
        set.starts_with("pv2_admin=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    assert!(set.contains("Path=/") && set.contains("HttpOnly"), "{set}");
}

#[tokio::test]
async fn the_eleventh_failure_from_one_client_is_429() {
    let (web, _dir) = standalone(&[]);
    let attacker = Client::Peer("192.0.2.10");
    for attempt in 1..=10 {
        let answer = send(&web, login(HOST, &password("guess"), attacker)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Even the right password is refused now.
    let answer = send(&web, login(HOST, &password(PASSWORD), attacker)).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        answer.json,
        json!({"detail": "Too many failed login attempts; try again later"})
    );
    let retry: u64 = answer.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    assert!(answer.headers.get(header::SET_COOKIE).is_none());
    // A forwarded header does not make the same socket peer someone else.
    let mut spoofed = login(HOST, &password(PASSWORD), attacker);
    spoofed
        .headers_mut()
        .insert("x-forwarded-for", "198.51.100.77".parse().unwrap());
    assert_eq!(
        send(&web, spoofed).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client is not affected.
    let answer = send(
        &web,
        login(HOST, &password(PASSWORD), Client::Peer("192.0.2.11")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn behind_a_gateway_the_first_forwarded_hop_is_the_client() {
    let (web, _dir) = standalone(&[]);
    let attacker = Client::Forwarded("203.0.113.9, 10.0.0.1");
    for _ in 0..10 {
        let answer = send(&web, login(HOST, &password("guess"), attacker)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer = send(&web, login(HOST, &password("guess"), attacker)).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    let other = Client::Forwarded("203.0.113.10, 10.0.0.1");
    let answer = send(&web, login(HOST, &password(PASSWORD), other)).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let (web, _dir) = standalone(&[]);
    let client = Client::Peer("192.0.2.20");
    for _ in 0..9 {
        send(&web, login(HOST, &password("guess"), client)).await;
    }
    assert_eq!(
        send(&web, login(HOST, &password(PASSWORD), client))
            .await
            .status,
        StatusCode::OK
    );
    for attempt in 1..=10 {
        let answer = send(&web, login(HOST, &password("guess"), client)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
}

const MAPLE: &str = "maple.shibari.photo";
const VERMONT: &str = "vermont.shibari.photo";

#[tokio::test]
async fn a_cookie_from_one_tenant_is_worthless_on_another() {
    let fake = fake_with_samples().await;
    let app = orchestrated_app(
        &fake,
        &[
            ("WEB_ADMIN_PASSWORD", PASSWORD),
            ("WEB_SESSION_SECRET", SECRET),
            ("DROPBOX_APP_KEY", "app-key"),
            ("DROPBOX_APP_SECRET", "app-secret"),
        ],
    );
    let web = web::router(app);
    let answer = send(
        &web,
        login(MAPLE, &password(PASSWORD), Client::Forwarded("192.0.2.30")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let maple_cookie = pair(&admin_set_cookie(&answer.headers));
    assert_eq!(status(&web, MAPLE, &maple_cookie).await.json["admin"], true);
    assert_eq!(
        status(&web, VERMONT, &maple_cookie).await.json["admin"],
        false
    );
    // Mutations and viewing on the other tenant are refused before storage is touched.
    for (method, path) in [
        ("POST", "/api/images/IMG_0001.jpg/keep"),
        ("POST", "/api/images/IMG_0001.jpg/remove"),
        ("GET", "/api/images/list"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", VERMONT)
            .header("cookie", &maple_cookie)
            .body(Body::empty())
            .unwrap();
        let answer = send(&web, request).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(answer.json, json!({"detail": "Admin privileges required"}));
    }
    // Failures are counted per tenant too.
    let client = Client::Forwarded("192.0.2.31");
    for _ in 0..10 {
        send(&web, login(MAPLE, &password("guess"), client)).await;
    }
    assert_eq!(
        send(&web, login(MAPLE, &password(PASSWORD), client))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let answer = send(&web, login(VERMONT, &password(PASSWORD), client)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let vermont_cookie = pair(&admin_set_cookie(&answer.headers));
    assert_eq!(
        status(&web, VERMONT, &vermont_cookie).await.json["admin"],
        true
    );
    assert_eq!(
        status(&web, MAPLE, &vermont_cookie).await.json["admin"],
        false
    );
}
