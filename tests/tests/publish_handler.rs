//! The publish function end to end: its handler with real event payloads,
//! the v2 sample tenant on fake Dropbox, OpenAI and Telegram, a real SMTP
//! server (aiosmtpd with STARTTLS and AUTH), and moto for DynamoDB.

mod publish_world;

use publish_world::*;
use publisher::app::App;
use publisher::sidecar::Sidecar;
use publisher_tests::fake_openai::{self, CallKind};
use publisher_tests::fake_telegram::CHAT_ID;
use publisher_tests::smtp::SmtpServer;
use publisher_tests::tables::{
    attr_s, epoch_secs_from_now, get_item, put_image_claim, scan_all, Item,
};
use serde_json::{json, Value};

async fn invoke(workflow: &App, event: Value) -> Value {
    publish::handle(workflow, event, None, "test-request")
        .await
        .expect("the handler answers")
}

/// The tenant state items (the table also caches runtime configs).
async fn state_items(table: &publisher::table::Table) -> Vec<Item> {
    scan_all(table)
        .await
        .into_iter()
        .filter(|item| attr_s(item, "pk").starts_with("TENANT#"))
        .collect()
}

fn only(answer: &Value) -> &Value {
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{answer:#}");
    &results[0]
}

#[tokio::test]
async fn v2_tenant_publishes_everywhere_writes_sidecar_archives_and_records() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-e2e").await;
    let wide = world.put_image("wide.jpg", wide_jpeg(2000, 1400, 1));
    let workflow = world.workflow(Some(table.clone()));

    let answer = invoke(&workflow, json!({"host": HOST})).await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "published", "{summary:#}");
    assert_eq!(summary["host"], HOST);
    assert_eq!(summary["tenant"], TENANT);
    assert_eq!(summary["image"], "wide.jpg");
    assert_eq!(summary["archived"], true);
    assert_eq!(summary["error"], Value::Null);
    assert_eq!(summary["results"]["telegram"]["success"], true);
    assert_eq!(summary["results"]["email"]["success"], true);
    assert_eq!(summary["results"]["email"]["error"], Value::Null);

    // OpenAI: vision on a temporary link, then the combined caption call.
    let calls = world.openai.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let vision = &calls[0];
    assert_eq!(vision.kind, CallKind::Vision);
    assert_eq!(vision.model, "gpt-4o");
    assert_eq!(vision.temperature, Some(0.4));
    assert_eq!(vision.max_tokens, Some(512));
    assert_eq!(vision.response_format.as_deref(), Some("json_object"));
    assert!(vision.image_url.as_deref().unwrap_or("").contains("/temp/"));
    let caption_call = &calls[1];
    assert_eq!(caption_call.kind, CallKind::CaptionJson);
    assert_eq!(caption_call.model, "gpt-4o-mini");
    assert_eq!(caption_call.temperature, Some(0.6));
    // FetLife is enabled: one caption for its e-mail, no hashtags, 240 at most.
    assert!(caption_call.prompt.contains("fetlife_email"));
    assert!(caption_call.prompt.contains("engagement_question"));

    // Telegram: the channel, the caption, the photo at 1280 wide.
    let sent = world.telegram.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        summary["results"]["telegram"]["post_id"],
        sent[0].message_id.to_string()
    );
    assert_eq!(sent[0].chat_id, CHAT_ID);
    assert_eq!(sent[0].caption.as_deref(), Some(fake_openai::CAPTION));
    assert_eq!((sent[0].width, sent[0].height), (1280, 896));
    assert_eq!(sent[0].content_type.as_deref(), Some("image/jpeg"));

    // FetLife: the upload mail, then the confirmation with the tags.
    let mails = world.smtp.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    let upload = &mails[0];
    assert!(upload.tls, "STARTTLS before anything else");
    assert_eq!(
        upload.login.as_deref(),
        Some(FROM),
        "username null: log in as from_email"
    );
    assert_eq!(upload.mail_from, FROM);
    assert_eq!(upload.rcpt_tos, [RECIPIENT]);
    assert_eq!(upload.from, FROM);
    assert_eq!(upload.to, [RECIPIENT]);
    assert_eq!(upload.subject, format!("Private: {}", fake_openai::CAPTION));
    assert_eq!(upload.body, fake_openai::CAPTION);
    assert_eq!(upload.attachments.len(), 1);
    assert_eq!(upload.attachments[0].name, "wide.jpg");
    assert_eq!(upload.attachments[0].content_type, "image/jpeg");
    assert!(upload.attachments[0].bytes == wide, "the original bytes");
    let confirmation = &mails[1];
    assert_eq!(confirmation.rcpt_tos, [FROM]);
    assert_eq!(confirmation.subject, upload.subject);
    assert!(confirmation.attachments.is_empty());
    assert_eq!(
        confirmation.body,
        format!(
            "{}\n\n---\nImage Tags (FetLife context): rope, shibari, window light, fine art",
            fake_openai::CAPTION
        )
    );

    // Archived with its sidecar; nothing left in the image folder.
    assert!(world.images_in_root().is_empty());
    assert_eq!(
        world
            .dropbox
            .file(&format!("{ARCHIVE}/wide.jpg"))
            .as_deref(),
        Some(&wide[..])
    );
    let text = world
        .dropbox
        .file(&format!("{ARCHIVE}/wide.txt"))
        .expect("sidecar archived beside the image");
    let text = String::from_utf8(text.to_vec()).unwrap();
    let sidecar = Sidecar::parse(&text);
    assert_eq!(sidecar.sd_caption, fake_openai::SD_CAPTION);
    let sha = publisher::workflow::sha256_hex(&wide);
    let meta = &sidecar.metadata;
    assert_eq!(meta["image_file"], "wide.jpg");
    assert_eq!(meta["sha256"], sha.as_str());
    assert_eq!(meta["sd_caption_version"], "v1.0");
    assert_eq!(meta["model_version"], "gpt-4o-mini");
    assert_eq!(meta["artist_alias"], "Eoel");
    assert_eq!(meta["caption"], fake_openai::CAPTION);
    assert_eq!(meta["lighting"], "warm window light");
    assert_eq!(meta["materials"], "jute rope");
    assert_eq!(
        meta["tags"],
        json!(["Rope", "#Shibari", "window light", "rope", "fine-art"])
    );
    assert!(meta["created"].as_str().unwrap().ends_with('Z'));
    assert!(text.starts_with(&format!(
        "{}\n\n# ---\n# image_file: wide.jpg\n",
        fake_openai::SD_CAPTION
    )));

    // Recorded in the posted set, by SHA-256 and by content hash.
    let posted = get_item(&table, "TENANT#vermont", &format!("POSTED#{sha}"))
        .await
        .expect("posted item");
    assert_eq!(attr_s(&posted, "image_name"), "wide.jpg");
    let content_hash = attr_s(&posted, "content_hash").to_string();
    let by_hash = get_item(
        &table,
        "TENANT#vermont",
        &format!("POSTEDCH#{content_hash}"),
    )
    .await
    .expect("content hash item");
    assert_eq!(attr_s(&by_hash, "sha256"), sha);
    let platforms = posted["platforms"].as_l().unwrap();
    assert_eq!(platforms.len(), 2);
    // No claim without an idempotency key, and no secret anywhere in the table.
    let items = state_items(&table).await;
    assert_eq!(items.len(), 2, "{items:#?}");
    let dump = format!("{items:?}");
    for secret in [
        "sk-test-vermont",
        "AAH-vermont",
        "smtp-pass-vermont",
        "dbx-refresh",
    ] {
        assert!(!dump.contains(secret));
    }
}

fn upload_mails(world: &World) -> usize {
    world
        .smtp
        .messages()
        .iter()
        .filter(|m| m.rcpt_tos == [RECIPIENT])
        .count()
}

#[tokio::test]
async fn later_runs_pick_unposted_images_until_every_one_is_posted() {
    let world = World::start().await;
    world.put_tenant(HOST, TENANT, |e| {
        e["config"]["content"]["archive"] = false.into()
    });
    let (_moto, table) = moto_table("publisher-posted").await;
    world.put_samples(&["01-dawn.jpg", "02-dunes.jpg"]);
    // The same bytes under another name: the same content, never posted twice.
    let dawn = world.dropbox.file(&format!("{ROOT}/01-dawn.jpg")).unwrap();
    world.put_image("copy-of-dawn.jpg", dawn.to_vec());
    let workflow = world.workflow(Some(table.clone()));

    let mut published = Vec::new();
    for _ in 0..2 {
        let answer = invoke(&workflow, json!({"host": HOST})).await;
        let summary = only(&answer);
        assert_eq!(summary["status"], "published", "{summary:#}");
        assert_eq!(summary["archived"], false, "content.archive is off");
        published.push(summary["image"].as_str().unwrap().to_string());
    }
    published.sort();
    let both = [published[0].as_str(), published[1].as_str()];
    assert!(
        both == ["01-dawn.jpg", "02-dunes.jpg"] || both == ["02-dunes.jpg", "copy-of-dawn.jpg"],
        "two different contents: {both:?}"
    );
    assert_eq!(world.telegram.sent().len(), 2);

    let answer = invoke(&workflow, json!({"host": HOST})).await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "nothing_to_publish", "{summary:#}");
    assert_eq!(summary["error"], "No new images to post (all duplicates)");
    assert_eq!(world.telegram.sent().len(), 2, "nothing sent");
    assert_eq!(upload_mails(&world), 2);
    assert_eq!(world.images_in_root().len(), 3, "nothing moved");
}

#[tokio::test]
async fn an_empty_folder_has_nothing_to_publish() {
    let world = World::start().await;
    let answer = invoke(&world.workflow(None), json!({"host": HOST})).await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "nothing_to_publish");
    assert_eq!(summary["error"], "No images found");
    assert_eq!(summary["image"], Value::Null);
    assert!(world.openai.calls().is_empty());
}

#[tokio::test]
async fn telegram_down_the_mail_still_goes_and_the_image_is_archived() {
    let world = World::start().await;
    world.put_samples(&["05-harbor.jpg"]);
    world.telegram.set_down(true);
    let answer = invoke(&world.workflow(None), json!({"host": HOST})).await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "published", "{summary:#}");
    let telegram = &summary["results"]["telegram"];
    assert_eq!(telegram["success"], false);
    assert_eq!(telegram["post_id"], Value::Null);
    assert_eq!(telegram["error"], "Telegram error 502: Bad Gateway");
    assert_eq!(summary["results"]["email"]["success"], true);
    assert_eq!(summary["archived"], true);
    assert_eq!(upload_mails(&world), 1);
    assert!(world.images_in_root().is_empty());
    assert!(world.dropbox.exists(&format!("{ARCHIVE}/05-harbor.jpg")));
}

#[tokio::test]
async fn every_publisher_down_nothing_is_archived_or_recorded_and_a_retry_publishes() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-down").await;
    world.put_samples(&["07-meadow.jpg"]);
    world.telegram.set_down(true);
    let closed = publisher_tests::faults::RefusingPort::bind();
    world.put_tenant(HOST, TENANT, |e| {
        e["config"]["email_server"]["port"] = closed.port.into()
    });
    let event =
        json!({"detail-type": "Scheduled Event", "id": "evt-down-1", "detail": {"host": HOST}});

    let first = world.workflow(Some(table.clone()));
    let error = publish::handle(&first, event.clone(), None, "test-request")
        .await
        .expect_err("every host failed transiently: Lambda must retry");
    assert!(
        matches!(error, publish::HandlerError::AllFailed(_)),
        "{error}"
    );
    assert!(
        error.to_string().contains("Every publisher failed"),
        "{error}"
    );
    assert_eq!(
        world.images_in_root(),
        ["07-meadow.jpg"],
        "nothing archived"
    );
    assert!(!world.dropbox.exists(&format!("{ARCHIVE}/07-meadow.jpg")));
    let items = state_items(&table).await;
    assert!(
        items.is_empty(),
        "nothing recorded, the claim released: {items:#?}"
    );

    // The retry, on another instance, with the services back.
    world.telegram.set_down(false);
    let port = closed.port;
    drop(closed);
    let smtp = SmtpServer::start_on(port, FROM, publisher_tests::smtp::PASSWORD);
    let ca = smtp.ca_file().to_string_lossy().into_owned();
    let app = world.app(Some(table.clone()), &[("SMTP_TLS_CA_FILE", ca.as_str())]);
    let retry = app;
    let answer = invoke(&retry, event).await;
    assert_eq!(only(&answer)["status"], "published", "{answer:#}");
    assert_eq!(world.telegram.sent().len(), 1);
    assert_eq!(
        smtp.wait_for(2).await.len(),
        2,
        "the upload and its confirmation"
    );
    let claim = get_item(&table, "TENANT#vermont", "RUN#evt-down-1")
        .await
        .expect("claim");
    assert_eq!(attr_s(&claim, "status"), "completed");
}

#[tokio::test]
async fn without_an_openai_credential_the_image_goes_out_without_a_caption() {
    let world = World::start().await;
    world.orchestrator.remove_credential("ref-openai-vermont");
    world.put_samples(&["02-dunes.jpg"]);
    let answer = invoke(&world.workflow(None), json!({"host": HOST})).await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "published", "{summary:#}");
    assert!(world.openai.calls().is_empty());
    let sent = world.telegram.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].caption, None, "no caption field at all");
    let mails = world.smtp.wait_for(2).await;
    assert_eq!(mails[0].subject.trim(), "Private:");
    assert_eq!(mails[0].body, "");
    assert!(
        mails[1]
            .body
            .ends_with("Image Tags (FetLife context): (none)"),
        "{}",
        mails[1].body
    );
    assert!(
        !world.dropbox.exists(&format!("{ARCHIVE}/02-dunes.txt")),
        "no sidecar without a caption"
    );
    assert!(world.dropbox.exists(&format!("{ARCHIVE}/02-dunes.jpg")));
}

#[tokio::test]
async fn a_duplicate_event_publishes_once_and_answers_the_first_result() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-dup").await;
    world.put_samples(&["01-dawn.jpg", "02-dunes.jpg"]);
    let event: Value =
        serde_json::from_str(include_str!("../../events/publish_scheduled_event.json")).unwrap();
    let workflow = world.workflow(Some(table.clone()));

    let first = invoke(&workflow, event.clone()).await;
    let first = only(&first).clone();
    assert_eq!(first["status"], "published");
    // Delivered again, to the same instance and to another one.
    let other = world.workflow(Some(table.clone()));
    for instance in [&workflow, &other] {
        let again = invoke(instance, event.clone()).await;
        let again = only(&again);
        assert_eq!(again["status"], "skipped_duplicate_event", "{again:#}");
        assert_eq!(again["image"], first["image"]);
        assert_eq!(again["results"], first["results"]);
        assert_eq!(again["archived"], true);
    }
    assert_eq!(world.telegram.sent().len(), 1);
    assert_eq!(upload_mails(&world), 1);
    assert_eq!(world.images_in_root().len(), 1, "one image published");
    let claim = get_item(
        &table,
        "TENANT#vermont",
        "RUN#53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    )
    .await
    .expect("claim");
    assert_eq!(attr_s(&claim, "status"), "completed");
    let expires: u64 = claim["expires_at"].as_n().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 24 * 3600 - 60..=now + 24 * 3600 + 60).contains(&expires));
}

#[tokio::test]
async fn a_duplicate_delivered_concurrently_to_two_instances_publishes_once() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-race").await;
    world.put_samples(&["01-dawn.jpg", "02-dunes.jpg", "03-forest.jpg"]);
    let event =
        json!({"detail-type": "Scheduled Event", "id": "evt-race", "detail": {"host": HOST}});
    let (a, b) = (
        world.workflow(Some(table.clone())),
        world.workflow(Some(table.clone())),
    );
    let (ra, rb) = tokio::join!(invoke(&a, event.clone()), invoke(&b, event.clone()));
    let mut statuses = [only(&ra)["status"].clone(), only(&rb)["status"].clone()];
    statuses.sort_by_key(|s| s.to_string());
    assert_eq!(
        statuses,
        [json!("published"), json!("skipped_duplicate_event")]
    );
    assert_eq!(
        world.telegram.sent().len(),
        1,
        "exactly one Telegram message"
    );
    // Both runs have answered, and a mail is stored before the server
    // accepts it: every mail either run sent is there.
    assert_eq!(upload_mails(&world), 1, "exactly one e-mail");
    assert_eq!(world.images_in_root().len(), 2);
}

#[tokio::test]
async fn a_run_that_published_is_completed_even_when_archiving_failed() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-archive").await;
    world.put_samples(&["04-glacier.jpg"]);
    // A file where the archive folder should be: the move cannot succeed.
    world.dropbox.put_file(ARCHIVE, b"in the way".to_vec());
    let workflow = world.workflow(Some(table.clone()));
    let event = json!({"host": HOST, "idempotency_key": "k-archive"});

    let answer = invoke(&workflow, event.clone()).await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "published", "{summary:#}");
    assert_eq!(summary["archived"], false);
    assert!(
        summary["error"]
            .as_str()
            .unwrap()
            .starts_with("Archiving failed"),
        "{summary:#}"
    );
    assert_eq!(world.images_in_root(), ["04-glacier.jpg"]);

    let again = invoke(&workflow, event).await;
    assert_eq!(only(&again)["status"], "skipped_duplicate_event");
    // A new event: the image is still there but posted, so it is not sent again.
    let next = invoke(
        &workflow,
        json!({"host": HOST, "idempotency_key": "k-next"}),
    )
    .await;
    assert_eq!(only(&next)["status"], "nothing_to_publish", "{next:#}");
    assert_eq!(world.telegram.sent().len(), 1);
    assert_eq!(upload_mails(&world), 1);
}

#[tokio::test]
async fn preview_shows_what_would_be_published_and_changes_nothing() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-preview").await;
    world.put_samples(&["06-lantern.jpeg"]);
    let workflow = world.workflow(Some(table.clone()));
    let answer = invoke(
        &workflow,
        json!({"host": HOST, "preview": true, "idempotency_key": "k-preview"}),
    )
    .await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "preview", "{summary:#}");
    assert_eq!(summary["image"], "06-lantern.jpeg");
    assert_eq!(summary["archived"], false);
    let preview = &summary["preview"];
    assert_eq!(preview["captions"]["telegram"], fake_openai::CAPTION);
    assert_eq!(preview["captions"]["email"], fake_openai::CAPTION);
    assert_eq!(
        preview["email_subject"],
        format!("Private: {}", fake_openai::CAPTION)
    );
    let sidecar = preview["sidecar"].as_str().expect("sidecar text");
    assert!(sidecar.starts_with(&format!(
        "{}\n\n# ---\n# image_file: 06-lantern.jpeg\n",
        fake_openai::SD_CAPTION
    )));
    assert_eq!(summary["results"]["telegram"]["success"], true);

    assert_eq!(world.telegram.requests(), 0);
    assert!(world.smtp.messages().is_empty());
    assert_eq!(world.images_in_root(), ["06-lantern.jpeg"]);
    assert!(!world.dropbox.exists(&format!("{ROOT}/06-lantern.txt")));
    assert!(
        state_items(&table).await.is_empty(),
        "no claim, nothing posted"
    );
}

#[tokio::test]
async fn dry_run_sends_writes_and_moves_nothing() {
    let world = World::start().await;
    world.put_samples(&["08-night-sky.jpg"]);
    let answer = invoke(
        &world.workflow(None),
        json!({"host": HOST, "dry_run": true}),
    )
    .await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "published", "{summary:#}");
    assert_eq!(summary["archived"], false);
    for platform in ["telegram", "email"] {
        assert_eq!(
            summary["results"][platform],
            json!({"success": true, "post_id": null, "error": null})
        );
    }
    assert_eq!(world.telegram.requests(), 0);
    assert!(world.smtp.messages().is_empty());
    assert_eq!(world.images_in_root(), ["08-night-sky.jpg"]);
    assert!(!world.dropbox.exists(&format!("{ROOT}/08-night-sky.txt")));
}

#[tokio::test]
async fn several_hosts_each_get_a_summary_and_publish_hosts_is_the_default() {
    let world = World::start().await;
    world.put_samples(&["01-dawn.jpg"]);
    let (v1, _, _) = publisher_tests::fake_orchestrator::samples();
    world
        .orchestrator
        .seed_tenant("maple.shibari.photo", "maple", &v1);
    let hosts = [
        "vermont.shibari.photo",
        "maple.shibari.photo",
        "nobody.shibari.photo",
        "localhost",
    ];
    let workflow = world.workflow(None);
    let answer = invoke(&workflow, json!({"hosts": hosts})).await;
    let results = answer["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["published", "disabled", "not_found", "not_found"]
    );
    let hosts_back: Vec<&str> = results
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts_back, hosts);
    assert_eq!(results[1]["tenant"], "maple");
    for summary in results {
        let keys: Vec<&String> = summary.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["archived", "error", "host", "image", "results", "status", "tenant"]
        );
    }

    // No host in the event: PUBLISH_HOSTS.
    world.put_samples(&["02-dunes.jpg"]);
    let app = world.app(
        None,
        &[(
            "PUBLISH_HOSTS",
            "vermont.shibari.photo, maple.shibari.photo",
        )],
    );
    let workflow = app;
    let answer = invoke(&workflow, json!({})).await;
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["published", "disabled"]);
}

#[tokio::test]
async fn a_sidecar_caption_is_reused_unless_a_refresh_is_asked() {
    let world = World::start().await;
    world.put_tenant(HOST, TENANT, |e| {
        e["config"]["content"]["archive"] = false.into()
    });
    world.put_samples(&["05-harbor.jpg", "05-harbor.txt"]);
    let own = Sidecar::parse(
        std::str::from_utf8(
            &world
                .dropbox
                .file(&format!("{ROOT}/05-harbor.txt"))
                .unwrap(),
        )
        .unwrap(),
    )
    .caption()
    .expect("the sample sidecar has a caption");
    let workflow = world.workflow(None);
    let answer = invoke(&workflow, json!({"host": HOST, "select": "05-harbor.jpg"})).await;
    assert_eq!(only(&answer)["status"], "published", "{answer:#}");
    assert!(world.openai.calls().is_empty(), "no second AI call");
    assert_eq!(
        world.telegram.sent()[0].caption.as_deref(),
        Some(own.as_str())
    );

    // The image is published now: only a run that does not know it (another
    // instance without a table, its posted set in its own memory) may send
    // it again, as this test needs.
    let workflow = world.workflow(None);
    let answer = invoke(
        &workflow,
        json!({"host": HOST, "select": "05-harbor.jpg", "refresh_caption": true}),
    )
    .await;
    assert_eq!(only(&answer)["status"], "published");
    assert_eq!(world.openai.calls().len(), 2);
    assert_eq!(
        world.telegram.sent()[1].caption.as_deref(),
        Some(fake_openai::CAPTION)
    );
    let rewritten = world
        .dropbox
        .file(&format!("{ROOT}/05-harbor.txt"))
        .unwrap();
    assert_eq!(
        Sidecar::parse(std::str::from_utf8(&rewritten).unwrap())
            .caption()
            .as_deref(),
        Some(fake_openai::CAPTION)
    );

    let missing = invoke(&workflow, json!({"host": HOST, "select": "nope.jpg"})).await;
    let missing = only(&missing);
    assert_eq!(missing["status"], "failed");
    assert_eq!(missing["error"], "Image not found");
}

#[tokio::test]
async fn openai_failures_are_retried_and_answers_fall_back() {
    let world = World::start().await;
    world.put_tenant(HOST, TENANT, |e| {
        // No FetLife: a generic caption with the tenant's hashtags.
        e["config"]["publishers"][1]["enabled"] = false.into();
    });
    world.put_samples(&["10-ripples.jpg"]);
    world.openai.fail_next(&[429, 503]);
    world.openai.set_vision_non_json(Some("A quiet lake with ripples under a pale sky, seen from a wooden jetty at dawn, very calm and very still indeed."));
    world.openai.set_caption_json_broken(true);
    let answer = invoke(&world.workflow(None), json!({"host": HOST})).await;
    let summary = only(&answer);
    assert_eq!(summary["status"], "published", "{summary:#}");
    assert!(summary["results"].get("email").is_none(), "FetLife is off");
    let calls = world.openai.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 503, 200, 200, 200], "{calls:#?}");
    let kinds: Vec<CallKind> = calls.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CallKind::Vision,
            CallKind::Vision,
            CallKind::Vision,
            CallKind::CaptionJson,
            CallKind::Caption
        ]
    );
    let plain = &calls[4];
    assert_eq!(plain.temperature, Some(0.7));
    assert!(plain.prompt.contains("generic") && plain.prompt.contains("minimal_poetic"));
    assert!(plain.prompt.contains("#fineart #rope"));
    // The fallback analysis: the first 100 characters, mood unknown.
    assert!(plain
        .prompt
        .contains("description: A quiet lake with ripples"));
    assert!(plain.prompt.contains("mood: unknown"));
    // The tenant's hashtags end the generic caption.
    assert_eq!(
        world.telegram.sent()[0].caption.as_deref(),
        Some(format!("{} #fineart #rope", fake_openai::CAPTION).as_str())
    );
}

#[tokio::test]
async fn the_bot_token_never_reaches_a_summary() {
    let world = World::start().await;
    world.put_samples(&["01-dawn.jpg"]);
    let closed = publisher_tests::faults::RefusingPort::bind();
    let app = world.app(None, &[("TELEGRAM_API_URL", closed.url().as_str())]);
    let workflow = app;
    let answer = invoke(&workflow, json!({"host": HOST})).await;
    let summary = only(&answer);
    let error = summary["results"]["telegram"]["error"].as_str().unwrap();
    assert!(error.starts_with("Telegram unreachable"), "{error}");
    let text = answer.to_string();
    assert!(!text.contains("AAH-vermont"), "{text}");
    assert!(!text.contains("/bot"), "{text}");
}

#[tokio::test]
async fn two_runs_with_different_keys_publish_one_image_once() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-two-keys").await;
    world.put_samples(&["06-lantern.jpeg"]);
    let (a, b) = (
        world.workflow(Some(table.clone())),
        world.workflow(Some(table.clone())),
    );
    let event =
        |id: &str| json!({"detail-type": "Scheduled Event", "id": id, "detail": {"host": HOST}});
    let (ra, rb) = tokio::join!(
        invoke(&a, event("schedule-a")),
        invoke(&b, event("schedule-b"))
    );
    let mut statuses = [only(&ra)["status"].clone(), only(&rb)["status"].clone()];
    statuses.sort_by_key(|s| s.to_string());
    assert_eq!(statuses, [json!("nothing_to_publish"), json!("published")]);
    assert_eq!(world.telegram.sent().len(), 1, "one Telegram message");
    assert_eq!(upload_mails(&world), 1, "one e-mail");
    let claims: Vec<Item> = state_items(&table)
        .await
        .into_iter()
        .filter(|i| attr_s(i, "sk").starts_with("IMAGE#"))
        .collect();
    assert!(claims.is_empty(), "the claim became the posted record");
}

#[tokio::test]
async fn a_run_that_died_while_sending_leaves_its_image_uncertain_never_sent_again() {
    let world = World::start().await;
    let (_moto, table) = moto_table("publisher-died").await;
    world.put_samples(&["07-meadow.jpg"]);
    let sha = sample_sha256("07-meadow.jpg");
    // The claim a run left behind when it died mid-send, an hour ago.
    let died = ("a-run-that-died", epoch_secs_from_now(-3600));
    put_image_claim(&table, "vermont", &sha, died, "07-meadow.jpg").await;
    for attempt in 0..2 {
        let answer = invoke(&world.workflow(Some(table.clone())), json!({"host": HOST})).await;
        assert_eq!(
            only(&answer)["status"],
            "nothing_to_publish",
            "{attempt}: {answer:#}"
        );
    }
    assert!(world.telegram.sent().is_empty(), "never sent again");
    assert_eq!(upload_mails(&world), 0);
    let posted = get_item(&table, "TENANT#vermont", &format!("POSTED#{sha}"))
        .await
        .expect("recorded as posted");
    assert_eq!(posted["uncertain"].as_bool().ok(), Some(&true));
    assert_eq!(attr_s(&posted, "image_name"), "07-meadow.jpg");
}
