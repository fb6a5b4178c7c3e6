//! Static configuration end to end: files of `PV2_STATIC_CONFIG_DIR` change
//! what a tenant's publish run sends to the fake OpenAI and the fake
//! Telegram, and the web page's language.

mod publish_world;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use publish_world::*;
use publisher_tests::fake_openai::{self, CallKind};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A static directory holding `files`.
fn static_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

async fn publish(world: &World, dir: &tempfile::TempDir) -> Value {
    let path = dir.path().to_string_lossy().into_owned();
    let app = world.app(None, &[("PV2_STATIC_CONFIG_DIR", path.as_str())]);
    let answer = publish::handle(&app, json!({"host": HOST}), None, "static-test")
        .await
        .expect("the handler answers");
    answer["results"][0].clone()
}

#[tokio::test]
async fn a_prompt_file_reaches_openai_under_the_tenants_own_prompts() {
    let world = World::start().await;
    // The sample tenant has its own system and role prompts; without its
    // role prompt, the file's applies.
    world.put_tenant(HOST, TENANT, |envelope| {
        envelope["config"]["ai"]["role_prompt"] = Value::Null;
    });
    world.put_image("wide.jpg", wide_jpeg(1600, 1000, 3));
    let dir = static_dir(&[(
        "ai_prompts.yaml",
        "vision:\n  system: You look at photographs for the static-config test.\n  \
         user: Describe the static-config test image as JSON.\n\
         caption:\n  system: The file's caption system prompt.\n  \
         role: Write the static-config test caption.\n\
         confirmation_tags:\n  prompt: from the file\n",
    )]);

    let summary = publish(&world, &dir).await;
    assert_eq!(summary["status"], "published", "{summary:#}");

    let vision = &world.openai.calls_of(CallKind::Vision)[0];
    assert!(
        vision
            .prompt
            .contains("You look at photographs for the static-config test."),
        "{}",
        vision.prompt
    );
    assert!(vision
        .prompt
        .contains("Describe the static-config test image as JSON."));
    assert!(
        !vision.prompt.contains("careful art critic"),
        "the embedded prompt is replaced"
    );
    // The tenant's confirmation_tags_nature wins over the file's prompt.
    assert!(
        vision
            .prompt
            .contains("tags: short, lowercase, human-friendly topical nouns"),
        "{}",
        vision.prompt
    );
    assert!(!vision.prompt.contains("from the file"));

    let caption = &world.openai.calls_of(CallKind::CaptionJson)[0];
    assert!(caption
        .prompt
        .contains("Write the static-config test caption."));
    assert!(
        caption
            .prompt
            .contains("You write short, warm captions for fine-art photographs."),
        "the tenant's own system prompt wins: {}",
        caption.prompt
    );
    assert!(!caption.prompt.contains("The file's caption system prompt."));
}

#[tokio::test]
async fn a_shorter_telegram_limit_shortens_what_telegram_receives() {
    let world = World::start().await;
    world.put_image("wide.jpg", wide_jpeg(2000, 1400, 4));
    let dir = static_dir(&[(
        "platform_limits.yaml",
        "telegram:\n  max_caption_length: 20\n  resize_width_px: 640\n",
    )]);

    let summary = publish(&world, &dir).await;
    assert_eq!(
        summary["results"]["telegram"]["success"], true,
        "{summary:#}"
    );
    let sent = world.telegram.sent();
    assert_eq!(sent.len(), 1);
    let caption = sent[0].caption.clone().unwrap_or_default();
    assert_eq!(caption, "Golden hour, jute a…");
    assert_eq!(caption.chars().count(), 20);
    assert!(fake_openai::CAPTION.chars().count() > 20);
    assert_eq!((sent[0].width, sent[0].height), (640, 448));

    // The e-mail keeps its own limit: the whole caption.
    let mails = world.smtp.wait_for(1).await;
    assert_eq!(mails[0].body, fake_openai::CAPTION);
}

#[tokio::test]
async fn a_preview_shows_the_analysis_and_the_static_limits_and_sends_nothing() {
    let world = World::start().await;
    world.put_image("wide.jpg", wide_jpeg(1600, 1000, 6));
    let dir = static_dir(&[(
        "platform_limits.yaml",
        "telegram:\n  max_caption_length: 20\nemail:\n  max_caption_length: 11\n",
    )]);
    let path = dir.path().to_string_lossy().into_owned();
    let app = world.app(None, &[("PV2_STATIC_CONFIG_DIR", path.as_str())]);
    let answer = publish::handle(
        &app,
        json!({"host": HOST, "preview": true}),
        None,
        "static-test",
    )
    .await
    .expect("answers");
    let summary = &answer["results"][0];
    assert_eq!(summary["status"], "preview", "{summary:#}");
    let preview = &summary["preview"];
    assert_eq!(preview["captions"]["telegram"], "Golden hour, jute a…");
    assert_eq!(preview["captions"]["email"], "Golden hou…");
    assert_eq!(preview["email_subject"], "Private: Golden hou…");
    assert_eq!(preview["analysis"]["mood"], "calm");
    assert_eq!(
        preview["analysis"]["description"],
        "A seated figure tied in jute rope by a window"
    );
    assert!(world.telegram.sent().is_empty());

    // The readable preview of the same answer, in the file's words.
    let summaries: Vec<publisher::workflow::Summary> =
        serde_json::from_value(answer["results"].clone()).expect("summaries");
    let text = publish::preview_text::render(&summaries, &app.settings.statics, 60_000);
    assert!(text.contains("Mood: calm"), "{text}");
    assert!(text.contains("telegram: Golden hour, jute a…"), "{text}");
    assert!(
        text.contains("Caption limits: telegram 20, e-mail 11, generic 2200"),
        "{text}"
    );
}

#[tokio::test]
async fn without_the_variable_telegram_gets_the_whole_caption_at_1280() {
    let world = World::start().await;
    world.put_image("wide.jpg", wide_jpeg(2000, 1400, 5));
    let app = world.app(None, &[]);
    let answer = publish::handle(&app, json!({"host": HOST}), None, "static-test")
        .await
        .expect("answers");
    assert_eq!(answer["results"][0]["status"], "published");
    let sent = world.telegram.sent();
    assert_eq!(sent[0].caption.as_deref(), Some(fake_openai::CAPTION));
    assert_eq!(sent[0].width, 1280);
}

#[tokio::test]
async fn the_page_speaks_the_language_asked_for() {
    let world = World::start().await;
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/static");
    let samples = samples.to_string_lossy().into_owned();
    let app = world.app(None, &[("PV2_STATIC_CONFIG_DIR", samples.as_str())]);
    let router = web::router(app);
    let page = |language: Option<&'static str>| {
        let router = router.clone();
        async move {
            let mut request = Request::get("/").header("host", HOST);
            if let Some(language) = language {
                request = request.header("accept-language", language);
            }
            let response = router
                .oneshot(request.body(Body::empty()).expect("request"))
                .await
                .expect("answer");
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            (headers, String::from_utf8(body.to_vec()).expect("utf-8"))
        }
    };
    let (headers, german) = page(Some("de-CH, en;q=0.5")).await;
    assert_eq!(headers["vary"], "Accept-Language");
    assert_eq!(headers["content-language"], "de");
    assert!(german.contains("<html lang=\"de\">"));
    assert!(german.contains(">Behalten</button>"));
    let (headers_en, english) = page(Some("fr")).await;
    assert_eq!(headers_en["content-language"], "en");
    assert!(english.contains("<html lang=\"en\">") && english.contains(">Keep</button>"));
    let (_, plain) = page(None).await;
    assert_eq!(plain, english);
    // Same policy whatever the language: the script is the same.
    assert_eq!(
        headers["content-security-policy"],
        headers_en["content-security-policy"]
    );
}
