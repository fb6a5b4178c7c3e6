//! Every route of `docs/http-api.md` through the router, in standalone mode over
//! local storage in a temporary directory: answers, guards and their order,
//! the file-name rules, and the error bodies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use publisher_tests::harness::{send, settings, Answer};
use serde_json::{json, Value};
use tower::ServiceExt;

const HOST: &str = "photos.example.com";
const PASSWORD: &str = "correct horse battery staple";
const SESSION_SECRET: &str = "route-tests-session-secret-0123456789abcdef";
const TOKEN: &str = "api-token-for-route-tests";

/// The sample images the site starts with (copied from `samples/photos`).
const SAMPLES: [&str; 5] = [
    "01-dawn.jpg",
    "01-dawn.txt",
    "05-harbor.jpg",
    "05-harbor.txt",
    "12-tide.png",
];

struct Site {
    dir: Arc<tempfile::TempDir>,
    web: Router,
}

impl Site {
    /// Standalone, local storage with the image root at `/photos`, password
    /// admin; `extra` adds or overrides variables.
    fn new(extra: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let photos = dir.path().join("photos");
        std::fs::create_dir(&photos).unwrap();
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/photos");
        for name in SAMPLES {
            std::fs::copy(samples.join(name), photos.join(name)).unwrap();
        }
        // Byte order puts upper case first; the listing must keep it.
        std::fs::copy(samples.join("09-orchard.JPG"), photos.join("Zebra.JPG")).unwrap();
        // Present in storage, never reachable: not images, or names the rules refuse.
        std::fs::write(photos.join("notes.md"), "not an image").unwrap();
        std::fs::copy(samples.join("02-dunes.jpg"), photos.join("a..b.jpg")).unwrap();
        // Outside the image root.
        std::fs::copy(samples.join("03-forest.jpg"), dir.path().join("secret.jpg")).unwrap();
        std::fs::create_dir(photos.join("sub")).unwrap();
        std::fs::copy(samples.join("03-forest.jpg"), photos.join("sub/inner.jpg")).unwrap();
        Site::open(Arc::new(dir), extra)
    }

    /// Another process over the same directory (with a cold listing cache).
    fn reopen(&self, extra: &[(&str, &str)]) -> Site {
        Site::open(self.dir.clone(), extra)
    }

    fn open(dir: Arc<tempfile::TempDir>, extra: &[(&str, &str)]) -> Site {
        let dir_text = dir.path().to_str().unwrap().to_string();
        let mut vars: Vec<(&str, &str)> = vec![
            ("STORAGE_PROVIDER", "local"),
            ("LOCAL_STORAGE_DIR", &dir_text),
            (
                "STORAGE_PATHS",
                r#"{"root": "/photos", "keep": "keep", "remove": "reject"}"#,
            ),
            ("WEB_ADMIN_PASSWORD", PASSWORD),
            ("WEB_SESSION_SECRET", SESSION_SECRET),
            ("AUTO_VIEW", "true"),
        ];
        vars.extend_from_slice(extra);
        let app = Arc::new(publisher::app::App::new(settings(&vars)).expect("app"));
        Site {
            web: web::router(app),
            dir,
        }
    }

    fn photos(&self) -> PathBuf {
        self.dir.path().join("photos")
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(request("GET", path, &[])).await
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(request("POST", path, headers)).await
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        send(&self.web, request).await
    }

    async fn raw(&self, path: &str) -> (StatusCode, HeaderMap, Bytes) {
        let response = self
            .web
            .clone()
            .oneshot(request("GET", path, &[]))
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        (
            parts.status,
            parts.headers,
            body.collect().await.unwrap().to_bytes(),
        )
    }

    /// Logs in with the password; the `Cookie` header value to send back.
    async fn admin_cookie(&self) -> String {
        let answer = self.send(login_request(PASSWORD, "198.51.100.1")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
        cookie_pair(&answer.headers, "pv2_admin")
    }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

fn login_request(password: &str, peer: &str) -> Request<Body> {
    let mut request = Request::post("/api/admin/login")
        .header("host", HOST)
        .header("content-type", "application/json")
        .body(Body::from(json!({"password": password}).to_string()))
        .unwrap();
    let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// `name=value` of the cookie `name` set by a response.
fn cookie_pair(headers: &HeaderMap, name: &str) -> String {
    let set = set_cookie(headers, name);
    set.split(';').next().unwrap().trim().to_string()
}

fn set_cookie(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
}

fn detail(answer: &Answer) -> &str {
    answer.json["detail"].as_str().unwrap_or("")
}

// ------------------------------------------------------------------ page, config

#[tokio::test]
async fn the_page_is_the_embedded_ui_with_a_strict_policy() {
    let site = Site::new(&[]);
    let (status, headers, body) = site.raw("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = String::from_utf8(body.to_vec()).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("/api/config/features"),
        "the script is inlined"
    );
    assert!(!html.contains("/*APP_JS*/") && !html.contains("/*APP_CSS*/"));
    assert!(!html.contains("innerHTML"), "data goes in as text only");
}

#[tokio::test]
async fn features_and_publishers_describe_the_tenant() {
    let site = Site::new(&[
        ("FEATURE_PUBLISH", "false"),
        ("FEATURE_REMOVE_CURATE", "false"),
    ]);
    let answer = site.get("/api/config/features").await;
    assert_eq!(
        answer.json,
        json!({"analyze_caption_enabled": false, "publish_enabled": false, "keep_enabled": true,
               "remove_enabled": false, "auto_view_enabled": true, "auth_mode": "password"})
    );
    let answer = site.get("/api/config/publishers").await;
    assert_eq!(
        answer.json,
        json!({"telegram": false, "email": false, "instagram": false})
    );
    let none = Site::new(&[("WEB_ADMIN_PASSWORD", "")]);
    assert_eq!(
        none.get("/api/config/features").await.json["auth_mode"],
        "none"
    );
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let site = Site::new(&[]);
    assert_eq!(site.get("/health").await.json, json!({"status": "ok"}));
    assert_eq!(site.get("/health/live").await.json, json!({"status": "ok"}));
    assert_eq!(
        site.get("/health/ready").await.json,
        json!({"status": "ok", "mode": "standalone"})
    );
    let answer = site.get("/api/nothing/here").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json, json!({"detail": "Not Found"}));
    // Two segments after /api/images/ is no route, not a file name.
    let answer = site.get("/api/images/sub/inner.jpg").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------ images

#[tokio::test]
async fn list_shows_reachable_images_sorted_by_bytes() {
    let site = Site::new(&[]);
    let answer = site.get("/api/images/list").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json,
        json!({"filenames": ["01-dawn.jpg", "05-harbor.jpg", "12-tide.png", "Zebra.JPG"], "count": 4})
    );
}

#[tokio::test]
async fn details_carry_the_sidecar() {
    let site = Site::new(&[]);
    let answer = site.get("/api/images/05-harbor.jpg").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json,
        json!({
            "filename": "05-harbor.jpg",
            "temp_url": "/api/images/05-harbor.jpg/content",
            "thumbnail_url": "/api/images/05-harbor.jpg/thumbnail",
            "sha256": null,
            "caption": "Harbour at dusk",
            "sd_caption": "deep blue water under an orange evening sky, fine ripples across the harbour surface",
            "metadata": {
                "image_file": "05-harbor.jpg",
                "created": "2026-01-05T19:40:00Z",
                "sd_caption_version": "v1.0",
                "model_version": "gpt-4o",
                "caption": "Harbour at dusk",
                "tags": ["harbour", "dusk", "water"],
            },
            "has_sidecar": true,
        })
    );
}

#[tokio::test]
async fn details_without_a_sidecar_and_with_a_caption_from_sd_caption() {
    let site = Site::new(&[]);
    let answer = site.get("/api/images/12-tide.png").await;
    assert_eq!(answer.status, StatusCode::OK);
    for key in ["caption", "sd_caption", "metadata", "sha256"] {
        assert_eq!(answer.json[key], Value::Null, "{key}");
    }
    assert_eq!(answer.json["has_sidecar"], false);
    std::fs::write(site.photos().join("12-tide.txt"), "only an sd caption\n").unwrap();
    // The listing is cached, so the new sidecar shows in a fresh process.
    let answer = site.reopen(&[]).get("/api/images/12-tide.png").await;
    assert_eq!(answer.json["caption"], "only an sd caption");
    assert_eq!(answer.json["sd_caption"], "only an sd caption");
    assert_eq!(answer.json["has_sidecar"], true);
}

#[tokio::test]
async fn thumbnail_url_encodes_everything_but_unreserved() {
    let site = Site::new(&[]);
    let name = "a b&c+d%é(1).jpg";
    std::fs::copy(site.photos().join("01-dawn.jpg"), site.photos().join(name)).unwrap();
    let answer = site
        .get("/api/images/a%20b%26c%2Bd%25%C3%A9%281%29.jpg")
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["filename"], name);
    assert_eq!(
        answer.json["thumbnail_url"],
        "/api/images/a%20b%26c%2Bd%25%C3%A9%281%29.jpg/thumbnail"
    );
    let (status, _, _) = site
        .raw(answer.json["thumbnail_url"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn random_answers_a_listed_image_or_404_when_there_is_none() {
    let site = Site::new(&[]);
    let listed = ["01-dawn.jpg", "05-harbor.jpg", "12-tide.png", "Zebra.JPG"];
    for _ in 0..8 {
        let answer = site.get("/api/images/random").await;
        assert_eq!(answer.status, StatusCode::OK);
        let name = answer.json["filename"].as_str().unwrap();
        assert!(listed.contains(&name), "{name}");
        assert!(answer.json.get("has_sidecar").is_some());
    }
    let empty = Site::new(&[("STORAGE_PATHS", r#"{"root": "/photos/sub/none"}"#)]);
    std::fs::create_dir_all(empty.dir.path().join("photos/sub/none")).unwrap();
    let answer = empty.get("/api/images/random").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json, json!({"detail": "No images found"}));
}

#[tokio::test]
async fn thumbnails_in_every_size_and_422_for_others() {
    let site = Site::new(&[]);
    for query in [
        "",
        "?size=w256h256",
        "?size=w480h320",
        "?size=w640h480",
        "?size=w960h640",
        "?size=w1024h768",
    ] {
        let (status, headers, body) = site
            .raw(&format!("/api/images/01-dawn.jpg/thumbnail{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=3600");
        assert_eq!(&body[..2], &[0xFF, 0xD8], "JPEG bytes");
    }
    for bad in ["?size=", "?size=w1x1", "?size=W256H256", "?size=w256h256x"] {
        let answer = site
            .get(&format!("/api/images/01-dawn.jpg/thumbnail{bad}"))
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(detail(&answer).starts_with("size must be one of"), "{bad}");
    }
    let answer = site.get("/api/images/missing.jpg/thumbnail").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json, json!({"detail": "Image not found"}));
}

#[tokio::test]
async fn content_serves_the_image_bytes() {
    let site = Site::new(&[]);
    let (status, headers, body) = site.raw("/api/images/12-tide.png/content").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        body,
        std::fs::read(site.photos().join("12-tide.png")).unwrap()
    );
    let (_, headers, _) = site.raw("/api/images/Zebra.JPG/content").await;
    assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
}

#[tokio::test]
async fn every_file_name_rule_answers_image_not_found() {
    let site = Site::new(&[]);
    let long_ok = format!("{}.jpg", "l".repeat(251));
    std::fs::copy(
        site.photos().join("01-dawn.jpg"),
        site.photos().join(&long_ok),
    )
    .unwrap();
    let fresh = site.reopen(&[]);
    assert_eq!(
        fresh.get(&format!("/api/images/{long_ok}")).await.status,
        StatusCode::OK,
        "255 bytes is allowed"
    );
    let too_long = format!("{}.jpg", "l".repeat(252));
    let refused = [
        "..%2Fsecret.jpg",     // traversal out of the root
        "%2E%2E%2Fsecret.jpg", // the same, fully encoded
        "..",                  // a bare parent segment
        "sub%2Finner.jpg",     // a slash inside the segment
        "sub%5Cinner.jpg",     // a backslash
        "a..b.jpg",            // `..` anywhere, even though the file exists
        "01-dawn%0A.jpg",      // control characters
        "01-dawn%00.jpg",
        "%FF%FE.jpg",      // not UTF-8
        too_long.as_str(), // over 255 bytes
        "01-dawn.txt",     // exists, not an image
        "notes.md",
        "01-dawn.gif", // wrong extension
        "01-DAWN.JPG", // names match exactly
        "missing.jpg", // plain, but not listed
        "%20",
        "",
    ];
    for name in refused {
        for suffix in ["", "/thumbnail", "/content"] {
            let path = format!("/api/images/{name}{suffix}");
            if name.is_empty() && suffix.is_empty() {
                continue; // `/api/images/` is no route at all
            }
            let answer = fresh.get(&path).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(answer.json, json!({"detail": "Image not found"}), "{path}");
        }
        let path = format!("/api/images/{name}/keep");
        let answer = fresh
            .post(&path, &[("cookie", &fresh.admin_cookie().await)])
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.json, json!({"detail": "Image not found"}), "{path}");
    }
    // Nothing moved while all of that was refused.
    assert!(fresh.dir.path().join("secret.jpg").exists());
    assert!(!fresh.photos().join("keep").exists());
}

// ------------------------------------------------------------------ keep / remove

#[tokio::test]
async fn keep_moves_image_and_sidecar_and_drops_the_listing() {
    let site = Site::new(&[]);
    let cookie = site.admin_cookie().await;
    assert_eq!(site.get("/api/images/list").await.json["count"], 4);
    let answer = site
        .post("/api/images/05-harbor.jpg/keep", &[("cookie", &cookie)])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json,
        json!({"filename": "05-harbor.jpg", "action": "keep",
               "destination_folder": "/photos/keep", "preview_only": false})
    );
    let keep = site.photos().join("keep");
    assert!(keep.join("05-harbor.jpg").exists());
    assert!(keep.join("05-harbor.txt").exists(), "sidecar follows");
    assert!(!site.photos().join("05-harbor.jpg").exists());
    assert!(!site.photos().join("05-harbor.txt").exists());
    let list = site.get("/api/images/list").await;
    assert_eq!(
        list.json,
        json!({"filenames": ["01-dawn.jpg", "12-tide.png", "Zebra.JPG"], "count": 3})
    );
    let again = site
        .post("/api/images/05-harbor.jpg/keep", &[("cookie", &cookie)])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.json, json!({"detail": "Image not found"}));
}

#[tokio::test]
async fn remove_moves_to_the_remove_folder_renaming_on_conflict() {
    let site = Site::new(&[]);
    let cookie = site.admin_cookie().await;
    let reject = site.photos().join("reject");
    std::fs::create_dir(&reject).unwrap();
    std::fs::write(reject.join("12-tide.png"), "older").unwrap();
    let answer = site
        .post("/api/images/12-tide.png/remove", &[("cookie", &cookie)])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json,
        json!({"filename": "12-tide.png", "action": "remove",
               "destination_folder": "/photos/reject", "preview_only": false})
    );
    assert_eq!(std::fs::read(reject.join("12-tide.png")).unwrap(), b"older");
    assert!(reject.join("12-tide (1).png").exists());
    assert!(!site.photos().join("12-tide.png").exists());
}

#[tokio::test]
async fn a_listing_is_cached_until_a_move_drops_it() {
    let site = Site::new(&[]);
    let cookie = site.admin_cookie().await;
    assert_eq!(site.get("/api/images/list").await.json["count"], 4);
    std::fs::copy(
        site.photos().join("01-dawn.jpg"),
        site.photos().join("new.jpg"),
    )
    .unwrap();
    assert_eq!(
        site.get("/api/images/list").await.json["count"],
        4,
        "cached"
    );
    assert_eq!(
        site.get("/api/images/new.jpg").await.status,
        StatusCode::NOT_FOUND
    );
    site.post("/api/images/Zebra.JPG/remove", &[("cookie", &cookie)])
        .await;
    let list = site.get("/api/images/list").await;
    assert_eq!(
        list.json["filenames"],
        json!(["01-dawn.jpg", "05-harbor.jpg", "12-tide.png", "new.jpg"])
    );
}

#[tokio::test]
async fn curation_features_off_are_403() {
    let site = Site::new(&[
        ("FEATURE_KEEP_CURATE", "false"),
        ("FEATURE_REMOVE_CURATE", "false"),
    ]);
    let cookie = site.admin_cookie().await;
    for (action, message) in [
        ("keep", "Keep is disabled"),
        ("remove", "Remove is disabled"),
    ] {
        let answer = site
            .post(
                &format!("/api/images/01-dawn.jpg/{action}"),
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{action}");
        assert_eq!(answer.json, json!({"detail": message}));
    }
    assert!(site.photos().join("01-dawn.jpg").exists());
}

// ------------------------------------------------------------------ guards

const VIEW_PATHS: [&str; 5] = [
    "/api/images/list",
    "/api/images/random",
    "/api/images/01-dawn.jpg",
    "/api/images/01-dawn.jpg/thumbnail",
    "/api/images/01-dawn.jpg/content",
];

#[tokio::test]
async fn view_without_auto_view_needs_an_admin() {
    let site = Site::new(&[("AUTO_VIEW", "false")]);
    let cookie = site.admin_cookie().await;
    for path in VIEW_PATHS {
        let answer = site.get(path).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(answer.json, json!({"detail": "Admin privileges required"}));
        let forged = site
            .send(request("GET", path, &[("cookie", "pv2_admin=1")]))
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{path}: pv2_admin=1");
        let admin = site
            .send(request("GET", path, &[("cookie", &cookie)]))
            .await;
        assert_eq!(admin.status, StatusCode::OK, "{path}");
    }
    // Still 403 for a missing file: the guard comes before the name.
    let answer = site.get("/api/images/missing.jpg").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn view_without_auto_view_or_admin_login_is_503() {
    let site = Site::new(&[("AUTO_VIEW", "false"), ("WEB_ADMIN_PASSWORD", "")]);
    for path in VIEW_PATHS {
        let answer = site.get(path).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(
            answer.json,
            json!({"detail": "Image viewing requires admin mode but admin is not configured"})
        );
    }
}

#[tokio::test]
async fn mutations_need_an_admin_cookie_for_this_tenant() {
    let site = Site::new(&[]);
    for cookie in [
        None,
        Some("pv2_admin=1"),
        Some("pv2_admin=v1.99999999999.bm9uY2U.c2lnbmF0dXJl"),
    ] {
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", *c)).collect();
        let answer = site.post("/api/images/01-dawn.jpg/keep", &headers).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{cookie:?}");
        assert_eq!(answer.json, json!({"detail": "Admin privileges required"}));
    }
    // A cookie signed with another secret is worth nothing here.
    let other = Site::new(&[(
        "WEB_SESSION_SECRET",
        "another-session-secret-0123456789abcdef",
    )]);
    let foreign = other.admin_cookie().await;
    let answer = site
        .post("/api/images/01-dawn.jpg/keep", &[("cookie", &foreign)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(site.photos().join("01-dawn.jpg").exists());
}

#[tokio::test]
async fn mutations_are_closed_without_any_admin_method_unless_debug() {
    let closed = Site::new(&[("WEB_ADMIN_PASSWORD", "")]);
    let answer = closed.post("/api/images/01-dawn.jpg/keep", &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json, json!({"detail": "Admin mode not configured"}));
    let debug = Site::new(&[
        ("WEB_ADMIN_PASSWORD", ""),
        ("WEB_SESSION_SECRET", ""),
        ("WEB_DEBUG", "true"),
    ]);
    let answer = debug.post("/api/images/01-dawn.jpg/keep", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert!(debug.photos().join("keep/01-dawn.jpg").exists());
}

#[tokio::test]
async fn bearer_token_guards_mutations() {
    let site = Site::new(&[("WEB_ADMIN_PASSWORD", ""), ("WEB_AUTH_TOKEN", TOKEN)]);
    let bearer = format!("Bearer {TOKEN}");
    for bad in [
        None,
        Some("Bearer wrong"),
        Some("Basic Zm9vOmJhcg=="),
        Some(TOKEN),
    ] {
        let headers: Vec<(&str, &str)> = bad.iter().map(|h| ("authorization", *h)).collect();
        let answer = site.post("/api/images/01-dawn.jpg/keep", &headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(
            answer.json,
            json!({"detail": "Invalid or missing API credentials"})
        );
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    let answer = site
        .post(
            "/api/images/01-dawn.jpg/keep",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
}

#[tokio::test]
async fn basic_credentials_guard_mutations() {
    let site = Site::new(&[
        ("WEB_ADMIN_PASSWORD", ""),
        ("WEB_AUTH_USER", "curator"),
        ("WEB_AUTH_PASS", "s3cret:with:colons"),
    ]);
    use base64::Engine;
    let basic = |user_pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    };
    for bad in ["curator:wrong", "other:s3cret:with:colons", "curator", ""] {
        let answer = site
            .post(
                "/api/images/01-dawn.jpg/keep",
                &[("authorization", &basic(bad))],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(answer.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
    }
    let answer = site
        .post(
            "/api/images/01-dawn.jpg/keep",
            &[("authorization", &basic("curator:s3cret:with:colons"))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
}

#[tokio::test]
async fn checks_run_in_order_api_auth_admin_feature_name() {
    let site = Site::new(&[("WEB_AUTH_TOKEN", TOKEN), ("FEATURE_KEEP_CURATE", "false")]);
    let cookie = site.admin_cookie().await;
    let bearer = format!("Bearer {TOKEN}");
    let keep_missing = "/api/images/missing.jpg/keep";
    // Everything wrong: API auth speaks first.
    let answer = site.post(keep_missing, &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // API auth right, no admin cookie.
    let answer = site.post(keep_missing, &[("authorization", &bearer)]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(detail(&answer), "Admin privileges required");
    // Admin, feature off.
    let both = [
        ("authorization", bearer.as_str()),
        ("cookie", cookie.as_str()),
    ];
    let answer = site.post(keep_missing, &both).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(detail(&answer), "Keep is disabled");
    // Feature on: the name.
    let answer = site.post("/api/images/missing.jpg/remove", &both).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&answer), "Image not found");
    // Admin cookie alone is not enough when API auth is configured.
    let answer = site
        .post("/api/images/01-dawn.jpg/remove", &[("cookie", &cookie)])
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = site.post("/api/images/01-dawn.jpg/remove", &both).await;
    assert_eq!(answer.status, StatusCode::OK);
}

// ------------------------------------------------------------------ bodies, auth routes

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let site = Site::new(&[]);
    let big = format!("{{\"password\": \"{}\"}}", "x".repeat(70 * 1024));
    let request = Request::post("/api/admin/login")
        .header("host", HOST)
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    assert_eq!(
        site.send(request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn oidc_routes_without_auth0_redirect_with_auth_not_configured() {
    let site = Site::new(&[]);
    for path in ["/auth/login", "/auth/callback?code=x&state=y"] {
        let answer = site.get(path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            answer.headers[header::LOCATION],
            "/?auth_error=auth_not_configured"
        );
    }
    let answer = site.get("/auth/logout").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers[header::LOCATION], "/");
    assert!(set_cookie(&answer.headers, "pv2_admin").contains("Max-Age=0"));
}
