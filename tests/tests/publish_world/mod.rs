//! The world the publish tests run in: the fake orchestrator serving the v2
//! sample tenant (its mail server pointed at a real aiosmtpd), fake Dropbox,
//! fake OpenAI, fake Telegram, and optionally moto for DynamoDB.

#![allow(dead_code)] // each test binary uses its own part of the world

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use image::{ImageFormat, Rgb, RgbImage};
use publisher::app::App;
use publisher::table::Table;
use publisher_tests::fake_dropbox::FakeDropbox;
use publisher_tests::fake_openai::FakeOpenAi;
use publisher_tests::fake_orchestrator::{samples, FakeOrchestrator};
use publisher_tests::fake_telegram::FakeTelegram;
use publisher_tests::moto::Moto;
use publisher_tests::smtp::SmtpServer;
use publisher_tests::tables::app_on_table;
use serde_json::Value;

pub const HOST: &str = "vermont.shibari.photo";
pub const TENANT: &str = "vermont";
pub const ROOT: &str = "/Photos/vermont/2025";
pub const ARCHIVE: &str = "/Photos/vermont/2025/archive";
pub const FROM: &str = "studio@example.com";
pub const RECIPIENT: &str = "123456@upload.fetlife.example";
pub const DROPBOX_REFRESH: &str = "dbx-refresh-vermont-0123456789";

pub struct World {
    pub orchestrator: FakeOrchestrator,
    pub dropbox: FakeDropbox,
    pub openai: FakeOpenAi,
    pub telegram: FakeTelegram,
    pub smtp: SmtpServer,
}

impl World {
    pub async fn start() -> World {
        let orchestrator = FakeOrchestrator::start().await;
        let dropbox = FakeDropbox::start().await;
        dropbox.add_refresh_token(DROPBOX_REFRESH);
        let world = World {
            orchestrator,
            dropbox,
            openai: FakeOpenAi::start().await,
            telegram: FakeTelegram::start().await,
            smtp: SmtpServer::start(FROM, publisher_tests::smtp::PASSWORD),
        };
        world.put_tenant(HOST, TENANT, |_| {});
        world
    }

    /// Serves the v2 sample for `host` as `tenant`, mail going to the test
    /// server, after `edit` changed what the test needs.
    pub fn put_tenant(&self, host: &str, tenant: &str, edit: impl FnOnce(&mut Value)) {
        let (_, v2, _) = samples();
        let mut envelope = v2;
        envelope["config"]["email_server"]["host"] = "127.0.0.1".into();
        envelope["config"]["email_server"]["port"] = self.smtp.port.into();
        edit(&mut envelope);
        self.orchestrator.seed_tenant(host, tenant, &envelope);
    }

    /// Settings pointing every service at this world.
    fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = self.dropbox.vars();
        vars.extend([
            ("OPENAI_BASE_URL", self.openai.base_url()),
            ("TELEGRAM_API_URL", self.telegram.base_url()),
            (
                "SMTP_TLS_CA_FILE",
                self.smtp.ca_file().to_string_lossy().into_owned(),
            ),
            ("AI_RATE_PER_MINUTE", "60000".into()),
        ]);
        vars
    }

    /// One function instance: its own caches, on `table` (none: memory).
    pub fn app(&self, table: Option<Table>, extra: &[(&str, &str)]) -> Arc<App> {
        let vars = self.vars();
        let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        app_on_table(&self.orchestrator, table, &all)
    }

    /// A publish function instance with its own state.
    pub fn workflow(&self, table: Option<Table>) -> Arc<App> {
        self.app(table, &[])
    }

    /// Stores `name` in the image folder and returns its bytes.
    pub fn put_image(&self, name: &str, bytes: Vec<u8>) -> Vec<u8> {
        self.dropbox
            .put_file(&format!("{ROOT}/{name}"), bytes.clone());
        bytes
    }

    /// Stores samples from `samples/photos` in the image folder.
    pub fn put_samples(&self, names: &[&str]) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/photos");
        for name in names {
            let bytes = std::fs::read(dir.join(name)).expect("sample photo");
            self.put_image(name, bytes);
        }
    }

    /// Image names directly in the image folder.
    pub fn images_in_root(&self) -> Vec<String> {
        self.dropbox
            .names_in(ROOT)
            .into_iter()
            .filter(|n| publisher::storage::is_image_name(n))
            .collect()
    }
}

/// A JPEG wider than Telegram takes, distinct per `seed`.
pub fn wide_jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x / 8) as u8 ^ seed, (y / 8) as u8, seed.wrapping_mul(37)])
    });
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
        .expect("encode");
    out
}

/// A moto server with a fresh table.
pub async fn moto_table(name: &str) -> (Moto, Table) {
    let moto = Moto::start().await;
    let table = moto.create_table(name).await;
    (moto, table)
}

/// The SHA-256 of `samples/photos/<name>`.
pub fn sample_sha256(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/photos");
    let bytes = std::fs::read(dir.join(name)).expect("sample photo");
    publisher::workflow::sha256_hex(&bytes)
}
