//! The web function's analyze and publish routes, through the router, for the
//! v2 sample tenant on fake Dropbox, OpenAI and Telegram and a real SMTP server.

mod publish_world;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use publish_world::*;
use publisher::sidecar::Sidecar;
use publisher_tests::fake_openai::{self, CallKind};
use publisher_tests::harness::{send, Answer};
use publisher_tests::tables::{epoch_secs_from_now, put_image_claim};
use serde_json::json;

const TOKEN: &str = "web-api-token-for-publish-tests";

fn web(world: &World) -> axum::Router {
    web::router(world.app(None, &[("WEB_AUTH_TOKEN", TOKEN)]))
}

async fn post(router: &axum::Router, host: &str, path: &str, token: Option<&str>) -> Answer {
    let mut request = Request::post(path).header("host", host);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(router, request.body(Body::empty()).unwrap()).await
}

fn sidecar(world: &World, name: &str) -> Option<Sidecar> {
    world
        .dropbox
        .file(&format!("{ROOT}/{name}"))
        .map(|bytes| Sidecar::parse(std::str::from_utf8(&bytes).unwrap()))
}

#[tokio::test]
async fn analyze_writes_the_sidecar_then_returns_it_until_a_refresh() {
    let world = World::start().await;
    world.put_samples(&["01-dawn.jpg"]);
    let router = web(&world);

    let first = post(
        &router,
        HOST,
        "/api/images/01-dawn.jpg/analyze",
        Some(TOKEN),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{:#}", first.json);
    assert_eq!(
        first.json,
        json!({
            "filename": "01-dawn.jpg",
            "description": "A seated figure tied in jute rope by a window",
            "mood": "calm",
            "tags": ["Rope", "#Shibari", "window light", "rope", "fine-art"],
            "nsfw": false,
            "caption": fake_openai::CAPTION,
            "sd_caption": fake_openai::SD_CAPTION,
            "sidecar_written": true,
        })
    );
    let written = sidecar(&world, "01-dawn.txt").expect("sidecar written beside the image");
    assert_eq!(written.sd_caption, fake_openai::SD_CAPTION);
    assert_eq!(written.metadata["caption"], fake_openai::CAPTION);
    assert_eq!(written.metadata["image_file"], "01-dawn.jpg");
    assert_eq!(world.openai.calls().len(), 2);

    let again = post(
        &router,
        HOST,
        "/api/images/01-dawn.jpg/analyze",
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        again.json,
        json!({
            "filename": "01-dawn.jpg", "description": "", "mood": "", "tags": [], "nsfw": false,
            "caption": fake_openai::CAPTION, "sd_caption": fake_openai::SD_CAPTION,
            "sidecar_written": false,
        })
    );
    assert_eq!(world.openai.calls().len(), 2, "the sidecar answered");

    world.openai.set_captions("A second look.", "second sd");
    let refreshed = post(
        &router,
        HOST,
        "/api/images/01-dawn.jpg/analyze?force_refresh=true",
        Some(TOKEN),
    )
    .await;
    assert_eq!(refreshed.json["caption"], "A second look.");
    assert_eq!(refreshed.json["sidecar_written"], true);
    assert_eq!(world.openai.calls_of(CallKind::Vision).len(), 2);
    assert_eq!(
        sidecar(&world, "01-dawn.txt").unwrap().sd_caption,
        "second sd"
    );

    let bad = post(
        &router,
        HOST,
        "/api/images/01-dawn.jpg/analyze?force_refresh=maybe",
        Some(TOKEN),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn analyze_guards_names_and_the_unavailable_placeholder() {
    let world = World::start().await;
    world.put_samples(&["02-dunes.jpg"]);
    let router = web(&world);

    let anonymous = post(&router, HOST, "/api/images/02-dunes.jpg/analyze", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for path in [
        "/api/images/nope.jpg/analyze",
        "/api/images/..%2Fsecret.jpg/analyze",
        "/api/images/02-dunes.gif/analyze",
    ] {
        let missing = post(&router, HOST, path, Some(TOKEN)).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(missing.json, json!({"detail": "Image not found"}));
    }
    assert!(world.openai.calls().is_empty());

    // AI unavailable (its credential does not resolve): the empty placeholder.
    world.orchestrator.remove_credential("ref-openai-vermont");
    let router = web(&world);
    let placeholder = post(
        &router,
        HOST,
        "/api/images/02-dunes.jpg/analyze",
        Some(TOKEN),
    )
    .await;
    assert_eq!(placeholder.status, StatusCode::OK);
    assert_eq!(
        placeholder.json,
        json!({"filename": "02-dunes.jpg", "description": "", "mood": "", "tags": [], "nsfw": false,
               "caption": "", "sd_caption": null, "sidecar_written": false})
    );
    assert!(sidecar(&world, "02-dunes.txt").is_none());
}

#[tokio::test]
async fn publish_reuses_the_sidecar_caption_and_archives() {
    let world = World::start().await;
    world.put_samples(&["03-forest.jpg", "04-glacier.jpg"]);
    let router = web(&world);
    let analyzed = post(
        &router,
        HOST,
        "/api/images/03-forest.jpg/analyze",
        Some(TOKEN),
    )
    .await;
    assert_eq!(analyzed.json["sidecar_written"], true);
    assert_eq!(world.openai.calls().len(), 2);

    let published = post(
        &router,
        HOST,
        "/api/images/03-forest.jpg/publish",
        Some(TOKEN),
    )
    .await;
    assert_eq!(published.status, StatusCode::OK, "{:#}", published.json);
    let sent = world.telegram.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        published.json,
        json!({
            "filename": "03-forest.jpg",
            "results": {
                "telegram": {"success": true, "post_id": sent[0].message_id.to_string(), "error": null},
                "email": {"success": true, "post_id": null, "error": null},
            },
            "archived": true,
            "any_success": true,
        })
    );
    assert_eq!(world.openai.calls().len(), 2, "no second AI call");
    assert_eq!(sent[0].caption.as_deref(), Some(fake_openai::CAPTION));
    let mails = world.smtp.wait_for(2).await;
    assert_eq!(mails[0].attachments[0].name, "03-forest.jpg");
    assert_eq!(world.images_in_root(), ["04-glacier.jpg"]);
    assert!(world.dropbox.exists(&format!("{ARCHIVE}/03-forest.txt")));

    // Gone from the listing: publishing it again is a 404.
    let again = post(
        &router,
        HOST,
        "/api/images/03-forest.jpg/publish",
        Some(TOKEN),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn publish_failures_and_the_feature_flag() {
    let world = World::start().await;
    world.put_samples(&["05-harbor.jpg"]);
    let (v1, _, _) = publisher_tests::fake_orchestrator::samples();
    world
        .orchestrator
        .seed_tenant("maple.shibari.photo", "maple", &v1);
    world
        .dropbox
        .put_file("/Photos/maple/a.jpg", wide_jpeg(64, 64, 3));
    let router = web(&world);

    let off = post(
        &router,
        "maple.shibari.photo",
        "/api/images/a.jpg/publish",
        Some(TOKEN),
    )
    .await;
    assert_eq!(off.status, StatusCode::FORBIDDEN);
    assert_eq!(off.json, json!({"detail": "Publishing is disabled"}));

    world.telegram.set_down(true);
    world.put_tenant(HOST, TENANT, |e| {
        e["config"]["publishers"][1]["enabled"] = false.into()
    });
    let router = web(&world);
    let failed = post(
        &router,
        HOST,
        "/api/images/05-harbor.jpg/publish",
        Some(TOKEN),
    )
    .await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.json["any_success"], false);
    assert_eq!(failed.json["archived"], false);
    assert_eq!(
        failed.json["results"]["telegram"]["error"],
        "Telegram error 502: Bad Gateway"
    );
    assert!(failed.json["results"].get("email").is_none());
    assert_eq!(world.images_in_root(), ["05-harbor.jpg"]);
}

#[tokio::test]
async fn an_image_held_by_another_run_or_already_published_is_a_409() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-web-409").await;
    world.put_samples(&["08-night-sky.jpg", "10-ripples.jpg"]);
    let sha = sample_sha256("08-night-sky.jpg");
    world.put_tenant(HOST, TENANT, |e| {
        e["config"]["content"]["archive"] = false.into()
    });
    // A scheduled run holds the image for the next quarter of an hour.
    let holder = ("scheduled-run", epoch_secs_from_now(900));
    put_image_claim(&table, "vermont", &sha, holder, "08-night-sky.jpg").await;
    let router = web::router(world.app(Some(table.clone()), &[("WEB_AUTH_TOKEN", TOKEN)]));
    let busy = post(
        &router,
        HOST,
        "/api/images/08-night-sky.jpg/publish",
        Some(TOKEN),
    )
    .await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.json, json!({"detail": "Publish in progress"}));
    assert!(world.telegram.sent().is_empty());

    // Published (archiving is off, so it stays listed): a second click is
    // refused.
    let first = post(
        &router,
        HOST,
        "/api/images/10-ripples.jpg/publish",
        Some(TOKEN),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{:#}", first.json);
    let again = post(
        &router,
        HOST,
        "/api/images/10-ripples.jpg/publish",
        Some(TOKEN),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.json, json!({"detail": "Already published"}));
    assert_eq!(world.telegram.sent().len(), 1);
}
