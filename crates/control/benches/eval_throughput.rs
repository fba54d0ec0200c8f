//! Evaluation throughput through the gateway: a suite of 256 cases run by the same runner and
//! target the server uses (every case a real `/v1` request over loopback with an evaluation key:
//! auth, policy, budgets, routing, metering, ledger), at concurrency 32, against the simulator.
//! Cases per second = 256 ÷ the time per iteration (criterion's throughput line).
//!
//! Run: `cargo bench -p tollgate-control --bench eval_throughput -- --warm-up-time 2 --measurement-time 10`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate_store::{
    KeyQueries, Limits, PilotCaps, PodQueries, Scores, UseCaseQueries, ValueModel,
};

const CASES: usize = 256;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-eval-{}", std::process::id()));
    let (suite, target, _stops) = rt.block_on(async {
        // The simulator.
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
        let (sim_stop, sim_rx) = tokio::sync::oneshot::channel::<()>();
        let sim = tollgate_simulator::Simulator::new(tollgate_simulator::SimConfig::default());
        tokio::spawn(async move {
            let _ = sim
                .serve(sim_listener, async move {
                    let _ = sim_rx.await;
                })
                .await;
        });
        // The gateway.
        let yaml = format!(
            "providers: [{{ name: sim, type: openai_compatible, base_url: \"{sim_url}/v1\" }}]\n\
             routes: [{{ name: m, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n"
        );
        let mut cfg = tollgate_config::Config::from_yaml_str(&yaml, &|_| None).unwrap();
        cfg.server.data_dir = dir.clone();
        let gw = tollgate_gateway::Gateway::open(cfg).await.unwrap();
        let pod = gw.store.create_pod("bench", "bench", "").await.unwrap();
        let uc = gw
            .store
            .create_use_case(
                "bench",
                &pod.id,
                "evals",
                "",
                &ValueModel::default(),
                &Scores::default(),
                &["m".to_string()],
                &PilotCaps::default(),
                &Limits::default(),
            )
            .await
            .unwrap();
        let (mut key, plaintext) = tollgate_store::keys::new_api_key(
            gw.keyring.secret(),
            &uc.id,
            None,
            "bench",
            None,
            None,
            "bench",
        );
        key.evaluation = true;
        gw.store.create_key("bench", &key).await.unwrap();
        gw.keyring.reload().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (gw_stop, gw_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(tollgate_gateway::serve(
            gw.clone(),
            axum::Router::new(),
            listener,
            async move {
                let _ = gw_rx.await;
            },
        ));
        // 64 tests × 2 prompts × 2 routes' worth of cases on one route: 256 cases, each with
        // three cheap assertions.
        let mut tests = Vec::new();
        for i in 0..CASES / 2 {
            tests.push(serde_json::json!({
                "vars": {"n": i.to_string()},
                "assert": [
                    {"type": "latency", "threshold": 60000},
                    {"type": "not-contains", "value": "zzz"},
                    {"type": "levenshtein", "value": "hello", "threshold": 1000}
                ]
            }));
        }
        let doc = serde_json::json!({
            "prompts": ["Case {{ n }}: say hello", {"id": "sys", "messages": [
                {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Case {{ n }}"}]}],
            "routes": ["m"],
            "params": {"max_tokens": 16, "seed": 1},
            "tests": tests
        });
        let suite = tollgate_eval::Suite::from_document(&doc).unwrap();
        assert_eq!(suite.case_count(), CASES);
        let target = tollgate_control::evals::GatewayTarget::new(url, plaintext);
        (suite, target, (sim_stop, gw_stop))
    });
    let mut g = c.benchmark_group("eval_throughput");
    g.throughput(Throughput::Elements(CASES as u64));
    g.sample_size(10);
    g.bench_function("256_cases_concurrency_32", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = tollgate_eval::run(
                    &suite,
                    &target,
                    tollgate_eval::RunOptions { concurrency: 32 },
                    &|_, _, _| {},
                )
                .await;
                assert_eq!(
                    r.summary.errors,
                    0,
                    "{:?}",
                    r.cases.iter().find(|c| c.error.is_some())
                );
                r
            })
        });
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
