//! A warm request on a cached tenant through the whole web router, in process:
//! request id, tenant resolution from the memory caches, the route.

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use publisher_tests::harness::{fake_with_samples, get, orchestrated_app, router};
use tower::ServiceExt;

fn warm_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (web, fake) = runtime.block_on(async {
        let fake = fake_with_samples().await;
        let web = router(&orchestrated_app(&fake, &[]));
        assert_eq!(
            get(&web, "vermont.shibari.photo", "/api/config/features")
                .await
                .status,
            200
        );
        (web, fake)
    });
    c.bench_function("warm /api/config/features", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = Request::get("/api/config/features")
                .header("host", "vermont.shibari.photo")
                .body(Body::empty())
                .expect("request");
            let response = web.clone().oneshot(request).await.expect("response");
            assert_eq!(response.status(), 200);
        })
    });
    assert_eq!(
        fake.runtime_calls(),
        1,
        "the benchmark stayed on the caches"
    );
}

criterion_group!(benches, warm_request);
criterion_main!(benches);
