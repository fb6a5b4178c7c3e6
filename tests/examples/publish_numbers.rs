//! Measures the publish function on a 20 MB JPEG: the peak memory of the real
//! `publish` binary for one full run (under `/usr/bin/time -v`), the time the
//! function spends outside external calls (SHA-256, decode + resize + encode
//! for Telegram), and that run's `workflow_timing` record.
//!
//! The binary runs in standalone mode over local storage, against the fake
//! OpenAI and Telegram (in this process) and aiosmtpd (its own process), so
//! only the function is measured.
//!
//! cargo build --release -p publish
//! cargo run --release -p publisher-tests --example publish_numbers

use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, RgbImage};
use publisher_tests::fake_openai::{FakeOpenAi, API_KEY};
use publisher_tests::fake_telegram::{FakeTelegram, BOT_TOKEN, CHAT_ID};
use publisher_tests::smtp::{SmtpServer, PASSWORD};
use serde_json::Value;

const FROM: &str = "studio@example.com";
/// A 45 Mpx frame, as a high-resolution camera makes.
const WIDTH: u32 = 8256;
const HEIGHT: u32 = 5504;

#[tokio::main]
async fn main() {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/publish");
    assert!(
        binary.exists(),
        "build it first: cargo build --release -p publish"
    );
    let started = Instant::now();
    let jpeg = camera_like_jpeg();
    println!(
        "generated {}x{} JPEG: {:.1} MB in {:?}",
        WIDTH,
        HEIGHT,
        jpeg.len() as f64 / 1e6,
        started.elapsed()
    );

    // In-process: the CPU work the function does itself.
    for round in 1..=3 {
        let t = Instant::now();
        let sha = publisher::workflow::sha256_hex(&jpeg);
        let hashing = t.elapsed();
        let t = Instant::now();
        let width = publisher::static_config::StaticConfig::defaults()
            .platforms
            .telegram
            .resize_width_px;
        let photo = publisher::publishers::telegram::prepare_photo(&jpeg, width).expect("photo");
        let prepare = t.elapsed();
        let size = image::load_from_memory(&photo).map(|i| (i.width(), i.height()));
        println!(
            "round {round}: sha256 {hashing:?} ({}…), decode+resize+encode {prepare:?} -> {size:?}, {} KB",
            &sha[..12],
            photo.len() / 1024
        );
    }

    let openai = FakeOpenAi::start().await;
    let telegram = FakeTelegram::start().await;
    let smtp = SmtpServer::start(FROM, PASSWORD);
    let services = Services {
        openai: &openai,
        telegram: &telegram,
        smtp: &smtp,
    };
    // The same run on a small photo: the process's own baseline.
    let small =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/photos/01-dawn.jpg"))
            .expect("sample photo");
    let baseline = run(&binary, &services, &[("small.jpg", &small)]);
    let big = run(&binary, &services, &[("big.jpg", &jpeg)]);
    // A PNG of a few dozen bytes whose header declares 30000 x 30000 pixels,
    // among the candidates: refused from its header, it costs nothing.
    let bomb = publisher_tests::images::png_declaring(30_000, 30_000);
    let with_bomb = run(
        &binary,
        &services,
        &[("big.jpg", &jpeg), ("bomb.png", &bomb)],
    );
    println!(
        "peak RSS: {:.1} MB with the {:.1} MB JPEG, {:.1} MB with it and a {} B image bomb, \
         {:.1} MB with a {} KB one; target 3 x image + 40 MB = {:.1} MB",
        big as f64 / 1024.0,
        jpeg.len() as f64 / 1e6,
        with_bomb as f64 / 1024.0,
        bomb.len(),
        baseline as f64 / 1024.0,
        small.len() / 1024,
        3.0 * jpeg.len() as f64 / 1e6 + 40.0
    );
    let sent = telegram.sent();
    if let Some(photo) = sent.last() {
        println!(
            "telegram got {}x{} ({} KB); mails delivered: {}",
            photo.width,
            photo.height,
            photo.photo.len() / 1024,
            smtp.wait_for(4).await.len()
        );
    }
}

struct Services<'a> {
    openai: &'a FakeOpenAi,
    telegram: &'a FakeTelegram,
    smtp: &'a SmtpServer,
}

/// One run of the `publish` binary over a folder holding `files`; prints its
/// summary and `workflow_timing`, returns its peak RSS in KiB.
fn run(binary: &Path, services: &Services<'_>, files: &[(&str, &[u8])]) -> u64 {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join("photos").join(name), bytes).unwrap();
    }
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"host": "localhost.example"}"#).unwrap();
    let publishers = format!(
        r#"[{{"type": "telegram", "channel_id": "{CHAT_ID}"}},
            {{"type": "fetlife", "recipient": "upload@fetlife.example", "caption_target": "both", "subject_mode": "private"}}]"#
    );
    let email = format!(
        r#"{{"sender": "{FROM}", "smtp_server": "127.0.0.1", "smtp_port": {}}}"#,
        services.smtp.port
    );
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(binary)
        .arg(&event)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("STORAGE_PROVIDER", "local")
        .env("LOCAL_STORAGE_DIR", dir.path())
        .env("STORAGE_PATHS", r#"{"root": "/photos"}"#)
        .env("PUBLISHERS", publishers)
        .env("EMAIL_SERVER", email)
        .env("EMAIL_PASSWORD", PASSWORD)
        .env("OPENAI_API_KEY", API_KEY)
        .env("TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        .env("OPENAI_BASE_URL", services.openai.base_url())
        .env("TELEGRAM_API_URL", services.telegram.base_url())
        .env("SMTP_TLS_CA_FILE", services.smtp.ca_file())
        .env("AI_RATE_PER_MINUTE", "60000")
        .env("LOG_FORMAT", "json")
        .envs(extra_env())
        .output()
        .expect("run publish");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let summary = &answer["results"][0];
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(summary["status"], "published", "{answer:#} {stderr}");
    println!(
        "{}: published {}, archived {} telegram {} email {}",
        files
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" + "),
        summary["image"],
        summary["archived"],
        summary["results"]["telegram"]["success"],
        summary["results"]["email"]["success"]
    );
    let mut peak = 0;
    for line in stderr.lines() {
        if line.contains("workflow_timing") {
            println!("  {line}");
        }
        let line = line.trim();
        if let Some(kb) = line.strip_prefix("Maximum resident set size (kbytes): ") {
            peak = kb.parse().unwrap_or(0);
        }
        if line.starts_with("Elapsed (wall clock)")
            || line.starts_with("User time")
            || line.starts_with("System time")
        {
            println!("  {line}");
        }
    }
    peak
}

/// Extra variables for the measured process, `K=V` separated by spaces in
/// `PUBLISH_NUMBERS_ENV` (e.g. allocator settings to compare).
fn extra_env() -> Vec<(String, String)> {
    std::env::var("PUBLISH_NUMBERS_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Smooth light with fine grain: compresses about as a real photo does.
fn camera_like_jpeg() -> Vec<u8> {
    let mut seed: u32 = 0x9E37_79B9;
    let image = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let grain = (seed % 48) as i32 - 24;
        let base = |v: u32, scale: u32| ((v * 255) / scale) as i32;
        let px = |v: i32| (v + grain).clamp(0, 255) as u8;
        image::Rgb([
            px(base(x, WIDTH)),
            px(base(y, HEIGHT)),
            px(base(x + y, WIDTH + HEIGHT)),
        ])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut out), 92)
        .write_image(
            image.as_raw(),
            WIDTH,
            HEIGHT,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode");
    out
}
