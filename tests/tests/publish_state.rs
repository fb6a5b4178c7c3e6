//! The publish state on a real DynamoDB API (moto): claims and the posted
//! set, item by item as `docs/table.md` describes them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use publisher::clock::Clock;
use publisher::ledger::{Claim, Claimed, ImageClaim, Ledger, PostedImage};
use publisher_tests::moto::Moto;
use publisher_tests::tables::{attr_n, attr_s, get_item};
use serde_json::json;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn claims_on_dynamodb() {
    let moto = Moto::start().await;
    let table = moto.create_table("publisher-claims").await;
    let store = Ledger::new(Some(table.clone()), Clock::system());
    let until = SystemTime::now() + Duration::from_secs(900);

    assert_eq!(
        store.claim("t1", "ev-1", until).await.unwrap(),
        Claim::Acquired
    );
    let item = get_item(&table, "TENANT#t1", "RUN#ev-1")
        .await
        .expect("claim item");
    assert_eq!(attr_s(&item, "status"), "in_progress");
    assert!((now() + 895..=now() + 905).contains(&attr_n(&item, "in_progress_until")));
    assert!((now() + 86_390..=now() + 86_410).contains(&attr_n(&item, "expires_at")));

    // A live claim: a duplicate without a result; another tenant is independent.
    assert_eq!(
        store.claim("t1", "ev-1", until).await.unwrap(),
        Claim::Duplicate {
            completed: false,
            result: None
        }
    );
    assert_eq!(
        store.claim("t2", "ev-1", until).await.unwrap(),
        Claim::Acquired
    );

    let result = json!({"status": "published", "image": "a.jpg"});
    store.complete("t1", "ev-1", &result).await.unwrap();
    assert_eq!(
        store.claim("t1", "ev-1", until).await.unwrap(),
        Claim::Duplicate {
            completed: true,
            result: Some(result)
        }
    );
    let item = get_item(&table, "TENANT#t1", "RUN#ev-1").await.unwrap();
    assert_eq!(attr_s(&item, "status"), "completed");

    // Released: the retry claims it again.
    store.release("t2", "ev-1").await.unwrap();
    assert!(get_item(&table, "TENANT#t2", "RUN#ev-1").await.is_none());
    assert_eq!(
        store.claim("t2", "ev-1", until).await.unwrap(),
        Claim::Acquired
    );

    // A holder past its deadline died: its claim is taken over; a completed one never is.
    let past = SystemTime::now() - Duration::from_secs(5);
    assert_eq!(
        store.claim("t1", "ev-dead", past).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim("t1", "ev-dead", until).await.unwrap(),
        Claim::Acquired
    );
    store.complete("t1", "ev-dead", &json!({})).await.unwrap();
    assert!(matches!(
        store.claim("t1", "ev-dead", until).await.unwrap(),
        Claim::Duplicate {
            completed: true,
            ..
        }
    ));

    // A claim "in progress" until the end of time was not set by a run: it
    // does not hold the event forever.
    let forever = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 100);
    assert_eq!(
        store.claim("t1", "ev-poisoned", forever).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim("t1", "ev-poisoned", until).await.unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn posted_set_on_dynamodb() {
    let moto = Moto::start().await;
    let table = moto.create_table("publisher-posted-set").await;
    let store = Ledger::new(Some(table.clone()), Clock::system());
    let image = PostedImage {
        sha256: "sha-1".into(),
        content_hash: Some("ch-1".into()),
        image_name: "café.jpg".into(),
        posted_at: SystemTime::now(),
        platforms: vec!["telegram".into(), "email".into()],
        uncertain: false,
    };
    // Recorded as a run records it: its claim settled as posted.
    let claim = Claimed {
        sha256: image.sha256.clone(),
        content_hash: image.content_hash.clone(),
        name: image.image_name.clone(),
    };
    let until = SystemTime::now() + Duration::from_secs(900);
    assert_eq!(
        store
            .claim_image("t1", &claim, "run-1", until)
            .await
            .unwrap(),
        ImageClaim::Acquired
    );
    store
        .settle_image("t1", "sha-1", "run-1", Some(&image))
        .await
        .unwrap();
    assert!(
        get_item(&table, "TENANT#t1", "IMAGE#sha-1").await.is_none(),
        "the claim became the record"
    );
    let item = get_item(&table, "TENANT#t1", "POSTED#sha-1")
        .await
        .expect("posted");
    assert_eq!(attr_s(&item, "image_name"), "café.jpg");
    assert_eq!(attr_s(&item, "content_hash"), "ch-1");
    assert!(attr_n(&item, "posted_at") >= now() - 5);
    assert_eq!(item["platforms"].as_l().unwrap().len(), 2);
    let by_hash = get_item(&table, "TENANT#t1", "POSTEDCH#ch-1")
        .await
        .expect("by hash");
    assert_eq!(attr_s(&by_hash, "sha256"), "sha-1");

    assert!(store.is_posted("t1", "sha-1").await.unwrap());
    assert!(!store.is_posted("t2", "sha-1").await.unwrap());
    // More hashes than one BatchGetItem takes (100), duplicates included.
    let mut hashes: Vec<String> = (0..250).map(|i| format!("ch-x{i}")).collect();
    hashes.push("ch-1".into());
    hashes.push("ch-1".into());
    let posted = store.posted_content_hashes("t1", &hashes).await.unwrap();
    assert_eq!(posted.into_iter().collect::<Vec<_>>(), ["ch-1"]);
    assert!(store
        .posted_content_hashes("t2", &hashes)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn image_claims_on_dynamodb() {
    let moto = Moto::start().await;
    let table = moto.create_table("publisher-image-claims").await;
    let clock = Clock::manual_now();
    let ledger = Ledger::new(Some(table.clone()), clock.clone());
    let image = Claimed {
        sha256: "sha-9".into(),
        content_hash: Some("ch-9".into()),
        name: "night.jpg".into(),
    };
    let until = clock.now() + Duration::from_secs(900);
    let claim = |holder: &'static str| {
        let (ledger, image) = (ledger.clone(), image.clone());
        async move {
            ledger
                .claim_image("t1", &image, holder, until)
                .await
                .unwrap()
        }
    };
    assert_eq!(claim("run-a").await, ImageClaim::Acquired);
    let item = get_item(&table, "TENANT#t1", "IMAGE#sha-9")
        .await
        .expect("claim item");
    assert_eq!(attr_s(&item, "holder"), "run-a");
    assert_eq!(attr_s(&item, "image_name"), "night.jpg");
    assert!(attr_n(&item, "expires_at") > attr_n(&item, "until"));
    assert_eq!(claim("run-b").await, ImageClaim::Held);
    // Only the holder settles its claim.
    assert!(ledger
        .settle_image("t1", "sha-9", "run-b", None)
        .await
        .is_err());
    assert!(get_item(&table, "TENANT#t1", "IMAGE#sha-9").await.is_some());

    // run-a dies while sending: once its claim has run out, the image is
    // recorded as posted, uncertain, and the claim is gone.
    clock.advance(Duration::from_secs(901));
    assert_eq!(
        claim("run-c").await,
        ImageClaim::Uncertain {
            image_name: "night.jpg".into()
        }
    );
    let posted = get_item(&table, "TENANT#t1", "POSTED#sha-9")
        .await
        .expect("recorded");
    assert_eq!(posted["uncertain"].as_bool().ok(), Some(&true));
    assert!(get_item(&table, "TENANT#t1", "POSTEDCH#ch-9")
        .await
        .is_some());
    assert!(get_item(&table, "TENANT#t1", "IMAGE#sha-9").await.is_none());
    assert!(store_posted(&ledger, "sha-9").await);
    // run-a's late settlement changes nothing.
    assert!(ledger
        .settle_image("t1", "sha-9", "run-a", None)
        .await
        .is_err());

    // A claim whose `until` no run could set is not honoured forever.
    let hostile = Claimed {
        sha256: "sha-10".into(),
        content_hash: None,
        name: "poison.jpg".into(),
    };
    publisher_tests::tables::put_item(
        &table,
        std::collections::HashMap::from([
            ("pk".to_string(), AttributeValue::S("TENANT#t1".into())),
            ("sk".to_string(), AttributeValue::S("IMAGE#sha-10".into())),
            ("holder".to_string(), AttributeValue::S("ghost".into())),
            ("until".to_string(), AttributeValue::N(u64::MAX.to_string())),
        ]),
    )
    .await;
    assert_eq!(
        ledger
            .claim_image("t1", &hostile, "run-d", until)
            .await
            .unwrap(),
        ImageClaim::Uncertain {
            image_name: "poison.jpg".into()
        }
    );
}

async fn store_posted(ledger: &Ledger, sha: &str) -> bool {
    ledger.is_posted("t1", sha).await.unwrap()
}
