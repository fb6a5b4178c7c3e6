//! 1000 concurrent requests on a cold tenant: one runtime lookup and one
//! storage resolve for all of them. Prints the burst's wall time.

use std::time::{Duration, Instant};

use publisher_tests::harness::{fake_with_samples, get, orchestrated_app, router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_requests_make_one_lookup_and_one_resolve() {
    let fake = fake_with_samples().await;
    fake.set_delay(Duration::from_millis(50));
    let app = orchestrated_app(&fake, &[]);
    let web = router(&app);
    let started = Instant::now();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let web = web.clone();
            tokio::spawn(async move {
                get(&web, "vermont.shibari.photo", "/api/config/publishers")
                    .await
                    .status
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), 200);
    }
    let elapsed = started.elapsed();
    assert_eq!(fake.runtime_calls(), 1);
    assert_eq!(fake.credential_calls_for("ref-storage-vermont"), 1);
    assert_eq!(fake.credential_calls(), 1);
    let counters = app.counters.snapshot();
    assert_eq!(counters["runtime_miss"] + counters["runtime_hit"], 1000);
    println!("1000 cold concurrent requests: {elapsed:?} (orchestrator latency 50 ms per call), counters {counters:?}");
}
