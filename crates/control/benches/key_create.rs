//! Issuing a key through the admin API as the key table grows: 1,000, 10,000 and 100,000 active
//! keys. A new key reaches the data plane by reloading its own entry (one shard of the table is
//! copied), so the latency should stay flat; the full snapshot reload that every change used to
//! trigger is measured beside it for comparison.
//!
//! Run: `cargo bench -p tollgate-control --bench key_create` (setup issues 100,000 keys first,
//! about a minute).

// A bench crate: setup may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tollgate_store::{
    KeyQueries, Limits, PilotCaps, PodQueries, Scores, UseCaseQueries, ValueModel,
};
use tower::ServiceExt;

const CONFIG: &str = "providers: [{ name: up, type: openai_compatible, base_url: \"http://127.0.0.1:9/v1\" }]\nroutes: [{ name: r, deployments: [{ provider: up, model: m }] }]\n";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-keys-{}", std::process::id()));
    let mut cfg = tollgate_config::Config::from_yaml_str(CONFIG, &|_| None).unwrap();
    cfg.server.data_dir = dir.clone();
    let (gw, app, admin, use_case) = rt.block_on(async {
        let gw = tollgate_gateway::Gateway::open(cfg).await.unwrap();
        let control = tollgate_control::Control::new(
            &gw.config,
            gw.store.clone(),
            gw.keyring.secret().clone(),
            gw.clone(),
        )
        .await
        .unwrap();
        let admin = control.take_new_admin_token().unwrap();
        let app = tollgate_gateway::router_with(gw.clone(), tollgate_control::router(control));
        let pod = gw.store.create_pod("bench", "bench", "").await.unwrap();
        let uc = gw
            .store
            .create_use_case(
                "bench",
                &pod.id,
                "uc",
                "",
                &ValueModel::default(),
                &Scores::default(),
                &["r".to_string()],
                &PilotCaps::default(),
                &Limits::default(),
            )
            .await
            .unwrap();
        (gw, app, admin, uc.id)
    });
    let mut group = c.benchmark_group("keys");
    group.sample_size(30);
    let mut issued = 0usize;
    for n in [1_000usize, 10_000, 100_000] {
        rt.block_on(async {
            while issued < n {
                let (record, _) = tollgate_store::keys::new_api_key(
                    gw.keyring.secret(),
                    &use_case,
                    None,
                    "bulk",
                    None,
                    None,
                    "bench",
                );
                gw.store.create_key("bench", &record).await.unwrap();
                issued += 1;
            }
            gw.keyring.reload().await.unwrap();
        });
        group.bench_with_input(BenchmarkId::new("create_via_admin_api", n), &n, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let req = http::Request::post("/admin/v1/keys")
                        .header("authorization", format!("Bearer {admin}"))
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(format!(
                            r#"{{"use_case_id":"{use_case}","name":"k"}}"#
                        )))
                        .unwrap();
                    let resp = app.clone().oneshot(req).await.unwrap();
                    assert_eq!(resp.status(), 201);
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("full_snapshot_reload", n), &n, |b, _| {
            b.iter(|| rt.block_on(async { gw.keyring.reload().await.unwrap() }))
        });
    }
    group.finish();
    drop(app);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
