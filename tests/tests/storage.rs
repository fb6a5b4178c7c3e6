//! The storage layer: every operation against both implementations (a local
//! directory and Dropbox through the fake over real HTTP), the Dropbox
//! client's token, retry and error rules, local path confinement, and the
//! tenant registry's storage and listing cache.

use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use publisher::clock::Clock;
use publisher::retry::Policy;
use publisher::settings::ServiceUrls;
use publisher::storage::{
    content_hash, DropboxApp, DropboxStorage, LocalStorage, Storage, StorageError, ThumbnailSize,
    TokenCache,
};
use publisher_tests::fake_dropbox::{FakeDropbox, APP_KEY, APP_SECRET, REFRESH_TOKEN};
use publisher_tests::fake_orchestrator::{credentials_for, samples};
use publisher_tests::harness::orchestrated_app;
use publisher_tests::log_capture::Capture;
use secrecy::SecretString;

// ------------------------------------------------------------------ helpers

/// Every log line of this test binary, unredacted, at TRACE: what the code
/// itself writes, before the redaction layer could hide a mistake.
static LOGS: LazyLock<Capture> = LazyLock::new(|| {
    let logs = Capture::default();
    logs.try_init(tracing::Level::TRACE);
    logs
});

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.bytes()).into_owned()
}

fn image(format: image::ImageFormat, width: u32, height: u32) -> Bytes {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut Cursor::new(&mut out), format)
        .expect("encode");
    Bytes::from(out)
}

fn jpeg(width: u32, height: u32) -> Bytes {
    image(image::ImageFormat::Jpeg, width, height)
}

fn png(width: u32, height: u32) -> Bytes {
    image(image::ImageFormat::Png, width, height)
}

fn dimensions(jpeg: &[u8]) -> (u32, u32) {
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let decoded = image::load_from_memory(jpeg).expect("thumbnail decodes");
    (decoded.width(), decoded.height())
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

fn services(fake: &FakeDropbox) -> ServiceUrls {
    ServiceUrls {
        dropbox_api: fake.api_url(),
        dropbox_content: fake.content_url(),
        openai: String::new(),
        telegram: String::new(),
        smtp_tls_ca_file: None,
        dropbox_app_key: Some(APP_KEY.into()),
        dropbox_app_secret: Some(SecretString::from(APP_SECRET)),
    }
}

/// Short backoff, so retry tests stay quick; `Retry-After` still decides.
const FAST: Policy = Policy {
    base: Duration::from_millis(20),
    ..publisher::storage::dropbox::RETRY
};

fn dropbox_with(fake: &FakeDropbox, tokens: &TokenCache, refresh: &str) -> DropboxStorage {
    dropbox_at(fake, tokens, refresh, Clock::manual_now())
}

/// A Dropbox client reading `clock`, which the test moves.
fn dropbox_at(
    fake: &FakeDropbox,
    tokens: &TokenCache,
    refresh: &str,
    clock: Clock,
) -> DropboxStorage {
    let app = DropboxApp::new(http(), &services(fake), clock).with_retry(FAST);
    DropboxStorage::new(app, tokens, "t1", SecretString::from(refresh.to_string()))
}

fn dropbox(fake: &FakeDropbox) -> DropboxStorage {
    LazyLock::force(&LOGS);
    dropbox_with(fake, &TokenCache::new(10), REFRESH_TOKEN)
}

/// One storage under test, with a way to put files in behind its back.
enum Backend {
    Local(tempfile::TempDir),
    Dropbox(FakeDropbox),
}

impl Backend {
    fn seed(&self, path: &str, bytes: Bytes) {
        match self {
            Backend::Local(dir) => {
                let file = dir.path().join(path.trim_start_matches('/'));
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, bytes).unwrap();
            }
            Backend::Dropbox(fake) => fake.put_file(path, bytes),
        }
    }

    fn seed_folder(&self, path: &str) {
        match self {
            Backend::Local(dir) => {
                std::fs::create_dir_all(dir.path().join(path.trim_start_matches('/'))).unwrap()
            }
            Backend::Dropbox(fake) => fake.put_folder(path),
        }
    }

    /// What a temporary link leads to.
    async fn follow(&self, link: &str) -> Bytes {
        match self {
            Backend::Local(dir) => {
                let url = reqwest::Url::parse(link).expect("a URL");
                assert_eq!(url.scheme(), "file", "{link}");
                let file = url.to_file_path().expect("a file path");
                assert!(
                    file.starts_with(dir.path().canonicalize().unwrap()),
                    "{link}"
                );
                Bytes::from(std::fs::read(file).expect("link readable"))
            }
            Backend::Dropbox(_) => {
                let response = http().get(link).send().await.expect("link fetch");
                assert_eq!(response.status(), 200, "{link}");
                response.bytes().await.expect("body")
            }
        }
    }
}

async fn local() -> (Backend, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = LocalStorage::new(dir.path()).expect("local storage");
    (Backend::Local(dir), Arc::new(storage))
}

async fn dropbox_backend() -> (Backend, Arc<dyn Storage>) {
    let fake = FakeDropbox::start().await;
    let storage = dropbox(&fake);
    (Backend::Dropbox(fake), Arc::new(storage))
}

fn names(files: &[publisher::storage::FileEntry]) -> Vec<&str> {
    files.iter().map(|f| f.name.as_str()).collect()
}

async fn sorted_names(storage: &dyn Storage, folder: &str) -> Vec<String> {
    let mut names: Vec<String> = storage
        .list_files(folder)
        .await
        .expect("listing")
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort();
    names
}

// ------------------------------------------------------------------ both implementations

/// The behaviour both storages share, run against each.
async fn every_operation(backend: Backend, storage: Arc<dyn Storage>) {
    let landscape = jpeg(1200, 800);
    let portrait = png(300, 600);
    backend.seed("/Photos/x/b.jpg", landscape.clone());
    backend.seed("/Photos/x/a.png", portrait.clone());
    backend.seed("/Photos/x/a.txt", Bytes::from_static(b"caption\n"));
    backend.seed("/Photos/x/keep/old.jpg", jpeg(10, 10));
    backend.seed_folder("/Photos/x/empty");

    // Listing: files only, not folders nor what is inside them.
    let mut files = storage.list_files("/Photos/x").await.expect("listing");
    files.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(names(&files), ["a.png", "a.txt", "b.jpg"]);
    let b = &files[2];
    assert_eq!(b.path, "/Photos/x/b.jpg");
    assert_eq!(b.size, landscape.len() as u64);
    assert_eq!(
        b.content_hash.as_deref(),
        Some(content_hash(&landscape).as_str())
    );
    assert!(b.id.is_some() && b.rev.is_some(), "{b:?}");
    assert_eq!(
        sorted_names(storage.as_ref(), "/Photos/x/").await,
        ["a.png", "a.txt", "b.jpg"],
        "a trailing slash names the same folder"
    );
    assert!(storage
        .list_files("/Photos/x/empty")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        storage.list_files("/Photos/none").await,
        Err(StorageError::NotFound)
    );
    assert_eq!(
        storage.list_files("/Photos/x/b.jpg").await,
        Err(StorageError::NotFound)
    );

    // Metadata agrees with the listing.
    assert_eq!(&storage.metadata("/Photos/x/b.jpg").await.unwrap(), b);
    assert_eq!(
        storage.metadata("/Photos/x/zz.jpg").await,
        Err(StorageError::NotFound)
    );
    assert_eq!(
        storage.metadata("/Photos/x/empty").await,
        Err(StorageError::NotFound)
    );

    // Download and temporary links give the bytes back.
    assert_eq!(
        storage.download("/Photos/x/b.jpg").await.unwrap(),
        landscape
    );
    assert_eq!(
        storage.download("/Photos/x/zz.jpg").await,
        Err(StorageError::NotFound)
    );
    let link = storage.temporary_link("/Photos/x/a.png").await.unwrap();
    assert_eq!(backend.follow(&link).await, portrait);
    assert_eq!(
        storage.temporary_link("/Photos/x/zz.jpg").await,
        Err(StorageError::NotFound)
    );

    // Upload creates, overwrites, and creates missing folders.
    storage
        .upload("/Photos/x/c.txt", Bytes::from_static(b"one"))
        .await
        .unwrap();
    let first = storage.metadata("/Photos/x/c.txt").await.unwrap();
    storage
        .upload("/Photos/x/c.txt", Bytes::from_static(b"two!"))
        .await
        .unwrap();
    let second = storage.metadata("/Photos/x/c.txt").await.unwrap();
    assert_eq!(storage.download("/Photos/x/c.txt").await.unwrap(), "two!");
    assert_eq!(second.size, 4);
    assert_ne!(first.rev, second.rev, "an overwrite is a new revision");
    assert_eq!(second.content_hash, Some(content_hash(b"two!")));
    storage
        .upload("/Photos/new/deep/d.txt", Bytes::from_static(b"d"))
        .await
        .unwrap();
    assert_eq!(
        sorted_names(storage.as_ref(), "/Photos/new/deep").await,
        ["d.txt"]
    );
    assert!(storage
        .upload("/Photos/x/empty", Bytes::from_static(b"x"))
        .await
        .is_err());

    // Folders: existing ones are fine, a file in the way is not.
    storage.create_folder("/Photos/x/keep").await.unwrap();
    storage.create_folder("/Photos/x/reject").await.unwrap();
    storage.create_folder("/").await.unwrap();
    assert!(storage
        .list_files("/Photos/x/reject")
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        storage.create_folder("/Photos/x/c.txt").await,
        Err(StorageError::Other(_))
    ));

    // Moves keep the id, rename on conflict like Dropbox, create the folder.
    let id = storage.metadata("/Photos/x/b.jpg").await.unwrap().id;
    let moved = storage
        .move_to_folder("/Photos/x/b.jpg", "/Photos/x/keep")
        .await
        .unwrap();
    assert_eq!(moved, "/Photos/x/keep/b.jpg");
    assert_eq!(storage.metadata(&moved).await.unwrap().id, id);
    assert_eq!(storage.download(&moved).await.unwrap(), landscape);
    assert_eq!(
        storage.metadata("/Photos/x/b.jpg").await,
        Err(StorageError::NotFound)
    );
    for expected in ["/Photos/x/keep/b (1).jpg", "/Photos/x/keep/b (2).jpg"] {
        backend.seed("/Photos/x/b.jpg", jpeg(20, 20));
        let moved = storage
            .move_to_folder("/Photos/x/b.jpg", "/Photos/x/keep")
            .await
            .unwrap();
        assert_eq!(moved, expected);
    }
    assert_eq!(
        sorted_names(storage.as_ref(), "/Photos/x/keep").await,
        ["b (1).jpg", "b (2).jpg", "b.jpg", "old.jpg"]
    );
    assert_eq!(
        storage
            .move_to_folder("/Photos/x/a.txt", "/Photos/x/archive/2025")
            .await
            .unwrap(),
        "/Photos/x/archive/2025/a.txt"
    );
    assert_eq!(
        storage
            .move_to_folder("/Photos/x/gone.jpg", "/Photos/x/keep")
            .await,
        Err(StorageError::NotFound)
    );
    assert_eq!(
        sorted_names(storage.as_ref(), "/Photos/x").await,
        ["a.png", "c.txt"]
    );

    // Thumbnails: JPEG, covering the size or its transpose, never upscaled.
    let thumb = storage
        .thumbnail("/Photos/x/a.png", ThumbnailSize::W256H256)
        .await
        .unwrap();
    assert_eq!(dimensions(&thumb), (256, 512));
    let thumb = storage
        .thumbnail("/Photos/x/keep/b.jpg", ThumbnailSize::W480H320)
        .await
        .unwrap();
    assert_eq!(dimensions(&thumb), (480, 320));
    let thumb = storage
        .thumbnail("/Photos/x/keep/b.jpg", ThumbnailSize::W1024H768)
        .await
        .unwrap();
    assert_eq!(dimensions(&thumb), (1152, 768));
    let thumb = storage
        .thumbnail("/Photos/x/keep/old.jpg", ThumbnailSize::default())
        .await
        .unwrap();
    assert_eq!(dimensions(&thumb), (10, 10));
    assert_eq!(
        storage
            .thumbnail("/Photos/x/zz.jpg", ThumbnailSize::W256H256)
            .await,
        Err(StorageError::NotFound)
    );
    assert!(matches!(
        storage
            .thumbnail("/Photos/x/c.txt", ThumbnailSize::W256H256)
            .await,
        Err(StorageError::Other(_))
    ));

    // Names beyond ASCII go through every kind of call.
    let name = "/Photos/x/café 🙂 ü.jpg";
    storage.upload(name, jpeg(64, 48)).await.unwrap();
    assert!(sorted_names(storage.as_ref(), "/Photos/x")
        .await
        .contains(&"café 🙂 ü.jpg".to_string()));
    assert_eq!(storage.download(name).await.unwrap(), jpeg(64, 48));
    assert_eq!(
        dimensions(
            &storage
                .thumbnail(name, ThumbnailSize::W256H256)
                .await
                .unwrap()
        ),
        (64, 48)
    );
    assert_eq!(
        storage
            .move_to_folder(name, "/Photos/x/keep")
            .await
            .unwrap(),
        "/Photos/x/keep/café 🙂 ü.jpg"
    );

    // Paths that could climb out are nothing.
    for bad in [
        "/Photos/x/../x/a.png",
        "/../etc/passwd",
        "Photos/x/a.png",
        "/Photos/./x/a.png",
        "",
    ] {
        assert_eq!(
            storage.download(bad).await,
            Err(StorageError::NotFound),
            "{bad}"
        );
        assert_eq!(
            storage.metadata(bad).await,
            Err(StorageError::NotFound),
            "{bad}"
        );
        assert_eq!(
            storage.list_files(bad).await,
            Err(StorageError::NotFound),
            "{bad}"
        );
        assert_eq!(
            storage.upload(bad, Bytes::from_static(b"x")).await,
            Err(StorageError::NotFound),
            "{bad}"
        );
        assert_eq!(
            storage.create_folder(bad).await,
            Err(StorageError::NotFound),
            "{bad}"
        );
        assert_eq!(
            storage.move_to_folder(bad, "/Photos/x/keep").await,
            Err(StorageError::NotFound),
            "{bad}"
        );
        assert_eq!(
            storage
                .move_to_folder("/Photos/x/a.png", &format!("{bad}/.."))
                .await,
            Err(StorageError::NotFound),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn local_storage_does_every_operation() {
    let (backend, storage) = local().await;
    every_operation(backend, storage).await;
}

#[tokio::test]
async fn dropbox_storage_does_every_operation() {
    let (backend, storage) = dropbox_backend().await;
    let Backend::Dropbox(fake) = &backend else {
        unreachable!()
    };
    let fake = fake.clone();
    every_operation(backend, storage).await;
    // The whole run cost one token exchange, and reached both hosts.
    assert_eq!(fake.calls("oauth2/token"), 1);
    assert!(fake.calls("files/list_folder") > 0 && fake.calls("files/download") > 0);
}

// ------------------------------------------------------------------ Dropbox specifics

#[tokio::test]
async fn calls_follow_the_dropbox_contract() {
    let fake = FakeDropbox::start().await;
    let storage = dropbox(&fake);
    storage.upload("/P/é.jpg", jpeg(30, 20)).await.unwrap();
    storage
        .thumbnail("/P/é.jpg", ThumbnailSize::W640H480)
        .await
        .unwrap();
    storage.list_files("/").await.unwrap();
    storage.create_folder("/P").await.unwrap();
    let requests = fake.requests();
    let arg = |route: &str| {
        requests
            .iter()
            .find(|r| r.route == route)
            .unwrap_or_else(|| panic!("no {route} call"))
            .arg
            .clone()
    };
    let upload: serde_json::Value = serde_json::from_str(&arg("files/upload")).unwrap();
    assert_eq!(upload["mode"], "overwrite");
    assert_eq!(upload["mute"], true);
    assert_eq!(upload["path"], "/P/é.jpg");
    // The header carries the name escaped, in ASCII only.
    assert!(
        arg("files/upload").contains(r"\u00e9"),
        "{}",
        arg("files/upload")
    );
    assert!(arg("files/upload").is_ascii());
    let thumb: serde_json::Value = serde_json::from_str(&arg("files/get_thumbnail_v2")).unwrap();
    assert_eq!(thumb["format"], "jpeg");
    assert_eq!(thumb["mode"], "fitone_bestfit");
    assert_eq!(thumb["size"], "w640h480");
    // The root is listed as "", which is how Dropbox names it.
    let list: serde_json::Value = serde_json::from_str(&arg("files/list_folder")).unwrap();
    assert_eq!(list["path"], "");
    // An existing folder: Dropbox answered 409 path/conflict/folder, which is fine.
    let create = requests
        .iter()
        .find(|r| r.route == "files/create_folder_v2")
        .unwrap();
    assert_eq!(create.status, 409);
    let moved = storage.move_to_folder("/P/é.jpg", "/P/keep").await.unwrap();
    let request = fake
        .requests()
        .into_iter()
        .find(|r| r.route == "files/move_v2")
        .unwrap();
    let relocation: serde_json::Value = serde_json::from_str(&request.arg).unwrap();
    assert_eq!(relocation["autorename"], true);
    assert_eq!(relocation["to_path"], "/P/keep/é.jpg");
    assert_eq!(moved, "/P/keep/é.jpg");
}

#[tokio::test]
async fn access_token_is_cached_and_shared_by_the_tenant() {
    let fake = FakeDropbox::start().await;
    fake.put_file("/P/a.jpg", jpeg(8, 8));
    let tokens = TokenCache::new(10);
    let storage = dropbox_with(&fake, &tokens, REFRESH_TOKEN);
    for _ in 0..5 {
        storage.metadata("/P/a.jpg").await.unwrap();
    }
    // Concurrent first calls of a rebuilt set share the cached token too.
    let rebuilt = Arc::new(dropbox_with(&fake, &tokens, REFRESH_TOKEN));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let s = rebuilt.clone();
            tokio::spawn(async move { s.download("/P/a.jpg").await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.calls("oauth2/token"), 1);
    let used: std::collections::HashSet<_> = fake
        .requests()
        .into_iter()
        .filter_map(|r| r.token)
        .collect();
    assert_eq!(used.len(), 1, "one access token for every call");

    // Another refresh token (another account, maybe) gets its own token.
    fake.add_refresh_token("dbx-refresh-other-0123456789");
    let other = dropbox_with(&fake, &tokens, "dbx-refresh-other-0123456789");
    other.metadata("/P/a.jpg").await.unwrap();
    assert_eq!(fake.calls("oauth2/token"), 2);

    // Concurrent first calls on an empty cache make one exchange.
    fake.reset_counters();
    let fresh = Arc::new(dropbox_with(&fake, &TokenCache::new(10), REFRESH_TOKEN));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let s = fresh.clone();
            tokio::spawn(async move { s.metadata("/P/a.jpg").await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.calls("oauth2/token"), 1);
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let fake = FakeDropbox::start().await;
    fake.put_file("/P/a.jpg", jpeg(8, 8));
    fake.set_expires_in(2);
    let clock = Clock::manual_now();
    let storage = dropbox_at(&fake, &TokenCache::new(10), REFRESH_TOKEN, clock.clone());
    storage.metadata("/P/a.jpg").await.unwrap();
    clock.advance(Duration::from_millis(1900));
    storage.metadata("/P/a.jpg").await.unwrap();
    assert_eq!(fake.calls("oauth2/token"), 2);
    assert!(
        fake.requests().iter().all(|r| r.status != 401),
        "renewed ahead of expiry, not after a refusal"
    );
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let fake = FakeDropbox::start().await;
    fake.put_file("/P/a.jpg", jpeg(8, 8));
    let storage = dropbox(&fake);
    storage.metadata("/P/a.jpg").await.unwrap();
    fake.expire_access_tokens();
    fake.reset_counters();
    assert_eq!(storage.download("/P/a.jpg").await.unwrap(), jpeg(8, 8));
    let statuses: Vec<_> = fake
        .requests()
        .iter()
        .map(|r| (r.route.clone(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("files/download".to_string(), 401),
            ("oauth2/token".to_string(), 200),
            ("files/download".to_string(), 200)
        ]
    );

    // A refresh token that no longer works: one exchange, then a clear error.
    fake.expire_access_tokens();
    fake.revoke_refresh_token(REFRESH_TOKEN);
    fake.reset_counters();
    assert_eq!(
        storage.download("/P/a.jpg").await,
        Err(StorageError::Unauthorized)
    );
    assert_eq!(fake.calls("oauth2/token"), 1);
    assert_eq!(fake.calls("files/download"), 1);
}

#[tokio::test]
async fn wrong_app_credentials_or_none_are_errors_not_panics() {
    let fake = FakeDropbox::start().await;
    let mut urls = services(&fake);
    urls.dropbox_app_secret = Some(SecretString::from("not-the-secret"));
    let storage = DropboxStorage::new(
        DropboxApp::new(http(), &urls, Clock::manual_now()).with_retry(FAST),
        &TokenCache::new(1),
        "t1",
        SecretString::from(REFRESH_TOKEN),
    );
    assert_eq!(
        storage.list_files("/").await,
        Err(StorageError::Unauthorized)
    );
    urls.dropbox_app_secret = None;
    let storage = DropboxStorage::new(
        DropboxApp::new(http(), &urls, Clock::manual_now()),
        &TokenCache::new(1),
        "t1",
        SecretString::from(REFRESH_TOKEN),
    );
    assert!(matches!(
        storage.list_files("/").await,
        Err(StorageError::Unavailable(_))
    ));
    assert_eq!(fake.api_calls(), 0);
}

#[tokio::test]
async fn listing_follows_every_page() {
    let fake = FakeDropbox::start().await;
    for i in 0..10 {
        fake.put_file(&format!("/P/img{i:02}.jpg"), Bytes::from(vec![i as u8]));
    }
    fake.put_folder("/P/sub");
    fake.set_page_size(3);
    let files = dropbox(&fake).list_files("/P").await.unwrap();
    assert_eq!(files.len(), 10);
    // 11 entries (the folder too), 3 a page: the first call and 3 continues.
    assert_eq!(fake.calls("files/list_folder"), 1);
    assert_eq!(fake.calls("files/list_folder/continue"), 3);
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after() {
    let fake = FakeDropbox::start().await;
    fake.put_file("/P/a.jpg", jpeg(8, 8));
    let clock = Clock::manual_now();
    let storage = dropbox_at(&fake, &TokenCache::new(10), REFRESH_TOKEN, clock.clone());
    storage.metadata("/P/a.jpg").await.unwrap();
    fake.reset_counters();
    fake.fail_next(1, 429, Some(1));
    let started = clock.now();
    assert_eq!(storage.download("/P/a.jpg").await.unwrap(), jpeg(8, 8));
    assert!(
        clock.since(started) >= Duration::from_secs(1),
        "{:?}",
        clock.since(started)
    );
    assert_eq!(fake.calls("files/download"), 2);

    // Asked to come back later than a request can wait: give up at once.
    fake.reset_counters();
    fake.fail_next(1, 429, Some(60));
    let started = clock.now();
    assert!(matches!(
        storage.list_files("/P").await,
        Err(StorageError::Unavailable(_))
    ));
    assert!(clock.since(started) < Duration::from_secs(5));
    assert_eq!(fake.calls("files/list_folder"), 1);
}

#[tokio::test]
async fn server_errors_are_retried_three_times() {
    let fake = FakeDropbox::start().await;
    fake.put_file("/P/a.jpg", jpeg(8, 8));
    let storage = dropbox(&fake);
    storage.metadata("/P/a.jpg").await.unwrap();

    fake.reset_counters();
    fake.fail_next(2, 503, None);
    assert_eq!(storage.metadata("/P/a.jpg").await.unwrap().name, "a.jpg");
    assert_eq!(fake.calls("files/get_metadata"), 3);

    fake.reset_counters();
    fake.fail_next(3, 500, None);
    let error = storage
        .thumbnail("/P/a.jpg", ThumbnailSize::W256H256)
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Unavailable(_)), "{error}");
    assert_eq!(fake.calls("files/get_thumbnail_v2"), 3);

    // A 5xx on the token endpoint is retried as well.
    let fresh = dropbox(&fake);
    fake.reset_counters();
    fake.fail_next(1, 502, None);
    fresh.metadata("/P/a.jpg").await.unwrap();
    assert_eq!(fake.calls("oauth2/token"), 2);
}

#[tokio::test]
async fn unreachable_dropbox_is_unavailable() {
    let fake = FakeDropbox::start().await;
    let mut urls = services(&fake);
    // A port nobody listens on (bound, then released).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    urls.dropbox_api = format!("http://{closed}");
    let storage = DropboxStorage::new(
        DropboxApp::new(http(), &urls, Clock::manual_now()).with_retry(FAST),
        &TokenCache::new(1),
        "t1",
        SecretString::from(REFRESH_TOKEN),
    );
    let error = storage.list_files("/").await.unwrap_err();
    assert!(
        matches!(&error, StorageError::Unavailable(reason) if reason.contains("connection failed")),
        "{error}"
    );
    assert!(
        !error.to_string().contains(&closed.to_string()),
        "no URL in errors: {error}"
    );
}

#[tokio::test]
async fn no_token_reaches_errors_or_logs() {
    let fake = FakeDropbox::start().await;
    fake.put_file("/P/a.jpg", jpeg(8, 8));
    let storage = dropbox(&fake);
    storage.metadata("/P/a.jpg").await.unwrap();
    let mut errors = Vec::new();
    // A 400 whose text quotes the Authorization header, as Dropbox's do.
    fake.fail_next(1, 400, None);
    errors.push(storage.list_files("/P").await.unwrap_err());
    fake.fail_next(3, 503, None);
    errors.push(storage.download("/P/a.jpg").await.unwrap_err());
    fake.expire_access_tokens();
    fake.revoke_refresh_token(REFRESH_TOKEN);
    errors.push(storage.metadata("/P/a.jpg").await.unwrap_err());
    errors.push(
        storage
            .move_to_folder("/P/none.jpg", "/K")
            .await
            .unwrap_err(),
    );

    let tokens: Vec<String> = fake
        .requests()
        .into_iter()
        .filter_map(|r| r.token)
        .collect();
    assert!(!tokens.is_empty());
    let logs = logs();
    for error in &errors {
        let printed = format!("{error} {error:?}");
        for secret in tokens
            .iter()
            .map(String::as_str)
            .chain([REFRESH_TOKEN, APP_SECRET])
        {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!logs.contains(secret), "a secret in the logs");
        }
    }
    assert!(
        errors[0].to_string().contains("Authorization"),
        "{}",
        errors[0]
    );
    assert!(logs.contains("dropbox call failed"), "failures are logged");
    assert!(
        !logs.contains("dbx-access-"),
        "no access token in any test's logs"
    );
}

// ------------------------------------------------------------------ local specifics

#[tokio::test]
async fn local_storage_never_leaves_its_directory() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.jpg"), b"outside").unwrap();
    let (backend, storage) = local().await;
    let Backend::Local(dir) = &backend else {
        unreachable!()
    };
    let root = dir.path();
    std::fs::create_dir_all(root.join("P")).unwrap();
    std::fs::write(root.join("P/real.jpg"), b"inside").unwrap();
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    link(&outside.path().join("secret.jpg"), "P/escape.jpg");
    link(outside.path(), "P/escape-dir");
    link(&outside.path().join("planted.jpg"), "P/dangling.jpg");
    link(&root.join("P/real.jpg"), "P/alias.jpg");

    // A symlink that stays inside is a file like any other.
    assert_eq!(
        sorted_names(storage.as_ref(), "/P").await,
        ["alias.jpg", "real.jpg"]
    );
    assert_eq!(storage.download("/P/alias.jpg").await.unwrap(), "inside");
    assert_eq!(
        storage
            .move_to_folder("/P/alias.jpg", "/P/keep")
            .await
            .unwrap(),
        "/P/keep/alias.jpg"
    );
    assert!(std::fs::symlink_metadata(root.join("P/keep/alias.jpg"))
        .unwrap()
        .is_symlink());
    assert_eq!(std::fs::read(root.join("P/real.jpg")).unwrap(), b"inside");

    for path in ["/P/escape.jpg", "/P/escape-dir/secret.jpg"] {
        assert_eq!(
            storage.download(path).await,
            Err(StorageError::NotFound),
            "{path}"
        );
        assert_eq!(
            storage.metadata(path).await,
            Err(StorageError::NotFound),
            "{path}"
        );
        assert_eq!(
            storage.temporary_link(path).await,
            Err(StorageError::NotFound),
            "{path}"
        );
        assert_eq!(
            storage.thumbnail(path, ThumbnailSize::W256H256).await,
            Err(StorageError::NotFound),
            "{path}"
        );
        assert_eq!(
            storage.move_to_folder(path, "/P/keep").await,
            Err(StorageError::NotFound),
            "{path}"
        );
    }
    assert_eq!(
        storage.list_files("/P/escape-dir").await,
        Err(StorageError::NotFound)
    );
    // Writes through links that lead out are refused, and nothing appears outside.
    for path in [
        "/P/escape.jpg",
        "/P/escape-dir/new.jpg",
        "/P/dangling.jpg",
        "/P/escape-dir/sub/x.jpg",
    ] {
        assert_eq!(
            storage.upload(path, Bytes::from_static(b"x")).await,
            Err(StorageError::NotFound),
            "{path}"
        );
    }
    assert_eq!(
        storage.create_folder("/P/escape-dir/sub").await,
        Err(StorageError::NotFound)
    );
    assert_eq!(
        storage.move_to_folder("/P/real.jpg", "/P/escape-dir").await,
        Err(StorageError::NotFound)
    );
    let mut left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["secret.jpg"]);
    assert_eq!(
        std::fs::read(outside.path().join("secret.jpg")).unwrap(),
        b"outside"
    );
    assert_eq!(std::fs::read(root.join("P/real.jpg")).unwrap(), b"inside");

    assert!(LocalStorage::new(root.join("missing")).is_err());
    assert!(LocalStorage::new(root.join("P/real.jpg")).is_err());
}

#[tokio::test]
async fn local_links_name_the_file() {
    let (backend, storage) = local().await;
    backend.seed("/P/a b#%.jpg", Bytes::from_static(b"bytes"));
    let link = storage.temporary_link("/P/a b#%.jpg").await.unwrap();
    assert!(link.starts_with("file:///"), "{link}");
    assert!(link.ends_with("/P/a%20b%23%25.jpg"), "{link}");
    assert_eq!(backend.follow(&link).await, "bytes");
}

// ------------------------------------------------------------------ tenant registry

const VERMONT: &str = "vermont.shibari.photo";
const VERMONT_ROOT: &str = "/Photos/vermont/2025";

/// A fake orchestrator serving vermont, whose storage is in `dropbox`.
async fn vermont_app(
    dropbox: &FakeDropbox,
    extra: &[(&str, &str)],
) -> (
    publisher_tests::fake_orchestrator::FakeOrchestrator,
    Arc<publisher::app::App>,
) {
    LazyLock::force(&LOGS);
    let orchestrator = publisher_tests::fake_orchestrator::FakeOrchestrator::start().await;
    let (_, v2, _) = samples();
    orchestrator.put_runtime(VERMONT, v2);
    let mut refresh = String::new();
    for (credentials_ref, payload) in credentials_for("vermont") {
        if let Some(token) = payload.get("refresh_token").and_then(|t| t.as_str()) {
            refresh = token.to_string();
        }
        orchestrator.put_credential("vermont", &credentials_ref, payload);
    }
    dropbox.add_refresh_token(&refresh);
    let vars = dropbox.vars();
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    let app = orchestrated_app(&orchestrator, &all);
    (orchestrator, app)
}

#[tokio::test]
async fn tenant_storage_is_built_with_the_set_and_lists_through_the_cache() {
    let dropbox = FakeDropbox::start().await;
    for name in ["b.JPG", "a.jpg", "a.txt", "c.png", "notes.md", "d.jpeg"] {
        dropbox.put_file(&format!("{VERMONT_ROOT}/{name}"), jpeg(4, 4));
    }
    dropbox.put_file(&format!("{VERMONT_ROOT}/keep/k.jpg"), jpeg(4, 4));
    let (_orchestrator, app) = vermont_app(&dropbox, &[]).await;
    let tenant = app.tenant(VERMONT, "storage-test").await.expect("tenant");
    let services = &tenant.services;
    assert_eq!(
        dropbox.calls("oauth2/token") + dropbox.api_calls(),
        0,
        "built, not yet called"
    );

    // Concurrent first views share one listing.
    let views: Vec<_> = (0..8)
        .map(|_| {
            let services = services.clone();
            tokio::spawn(async move { services.images().await })
        })
        .collect();
    for view in views {
        assert_eq!(view.await.unwrap().unwrap().len(), 4);
    }
    let images = services.images().await.unwrap();
    let names: Vec<_> = images.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["a.jpg", "b.JPG", "c.png", "d.jpeg"],
        "sorted by bytes"
    );
    assert_eq!(images[0].path, format!("{VERMONT_ROOT}/a.jpg"));
    let listing = services.listing().await.unwrap();
    assert_eq!(listing.files().len(), 6);
    assert!(listing.sidecar_of("a.jpg").is_some());
    assert!(listing.sidecar_of("c.png").is_none());
    services.files().await.unwrap();
    // The same set again, through the pipeline: still one listing.
    let again = app.tenant(VERMONT, "storage-test-2").await.unwrap();
    again.services.images().await.unwrap();
    assert!(Arc::ptr_eq(&tenant.services, &again.services));
    assert_eq!(dropbox.calls("files/list_folder"), 1);
    assert_eq!(dropbox.calls("oauth2/token"), 1);

    // Keep: the move, then the cache is dropped and the next view lists again.
    let moved = services
        .storage()
        .move_to_folder(&images[0].path, &tenant.config.config.storage.paths.keep)
        .await
        .unwrap();
    assert_eq!(moved, format!("{VERMONT_ROOT}/keep/a.jpg"));
    services.forget_images();
    let names: Vec<_> = services
        .images()
        .await
        .unwrap()
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(names, ["b.JPG", "c.png", "d.jpeg"]);
    assert_eq!(dropbox.calls("files/list_folder"), 2);
}

#[tokio::test]
async fn listing_expires_after_its_ttl_and_errors_are_not_cached() {
    let dropbox = FakeDropbox::start().await;
    dropbox.put_file(&format!("{VERMONT_ROOT}/a.jpg"), jpeg(4, 4));
    let (_orchestrator, app) = vermont_app(&dropbox, &[("WEB_IMAGE_CACHE_TTL_SECONDS", "1")]).await;
    let services = app.tenant(VERMONT, "ttl").await.unwrap().services;
    assert_eq!(services.images().await.unwrap().len(), 1);
    dropbox.put_file(&format!("{VERMONT_ROOT}/b.jpg"), jpeg(4, 4));
    assert_eq!(services.images().await.unwrap().len(), 1, "cached");
    app.clock.advance(Duration::from_millis(1100));
    assert_eq!(
        services.images().await.unwrap().len(),
        2,
        "listed again after the TTL"
    );

    services.forget_images();
    dropbox.fail_next(3, 503, None);
    assert!(matches!(
        services.images().await,
        Err(StorageError::Unavailable(_))
    ));
    assert_eq!(
        services.images().await.unwrap().len(),
        2,
        "the failure was not kept"
    );
}

#[tokio::test]
async fn standalone_local_storage_is_built_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("photos")).unwrap();
    std::fs::write(dir.path().join("photos/z.png"), png(4, 4)).unwrap();
    std::fs::write(dir.path().join("photos/a.jpg"), jpeg(4, 4)).unwrap();
    let root = dir.path().to_str().unwrap();
    let app = |root: &str| {
        publisher::app::App::new(publisher_tests::harness::settings(&[
            ("STORAGE_PROVIDER", "local"),
            ("LOCAL_STORAGE_DIR", root),
            ("STORAGE_PATHS", r#"{"root": "/photos"}"#),
        ]))
        .unwrap()
    };
    let services = app(root)
        .tenant("studio.shibari.photo", "local")
        .await
        .unwrap()
        .services;
    let names: Vec<_> = services
        .images()
        .await
        .unwrap()
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(names, ["a.jpg", "z.png"]);
    assert!(services.storage_credential().is_none());

    // A directory that is not there: the tenant cannot be served (503).
    let missing = dir.path().join("missing");
    let error = app(missing.to_str().unwrap())
        .tenant("studio.shibari.photo", "local")
        .await
        .err()
        .unwrap();
    assert!(!error.is_not_found(), "{error}");
}
