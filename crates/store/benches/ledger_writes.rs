//! Ledger write throughput into the embedded SQLite store: batches of request records with their
//! hourly rollups, one transaction per batch, as the ledger writer sends them. The records come
//! from 20 keys of 10 use cases in 3 pods, and from 100 end users in 25 sessions: the rollups of a
//! batch have many rows, as they do on a gateway with many clients.
//!
//! Run: `cargo bench -p tollgate-store --bench ledger_writes`

// A bench crate: setup may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tollgate_store::{LedgerQueries, RequestRecord, Store, new_id, now_ms};

fn records(n: usize, at: i64) -> Vec<RequestRecord> {
    (0..n)
        .map(|i| RequestRecord {
            id: new_id("rec"),
            request_id: new_id("req"),
            at: at + (i as i64 % 3_600_000),
            key_id: format!("key_{}", i % 20),
            use_case_id: format!("uc_{}", i % 10),
            pod_id: format!("pod_{}", i % 3),
            end_user: Some(format!("user-{}", i % 100)),
            endpoint: "chat".into(),
            route: "gpt-4o-mini".into(),
            provider: Some("openai".into()),
            model: Some("gpt-4o-mini".into()),
            stream: i % 2 == 0,
            attempts: 1,
            status: 200,
            outcome: "ok".into(),
            input_tokens: 420,
            cached_input_tokens: 128,
            cache_write_tokens: 0,
            output_tokens: 180,
            reasoning_tokens: 0,
            cost_nano_usd: Some(181_500),
            first_choice_cost_nano_usd: None,
            price_source: "catalog:2026-11-29.2".into(),
            usage_source: "reported".into(),
            latency_ms: 850,
            ttft_ms: Some(240),
            price_id: Some("cat:2026-11-29.2:openai:gpt-4o-mini".into()),
            cost_split: [42_000, 9_600, 0, 108_000, 0],
            prompt_hash: Some(format!("{:032x}", i % 1000)),
            policy: None,
            guard: None,
            // 100 end users and 25 sessions among them, as a batch from many clients has.
            session_hash: Some(format!("{:064x}", 7_000 + i % 25)),
            evaluation: false,
            pattern: None,
            end_user_hash: Some(format!("{:064x}", i % 100)),
            payload_ref: None,
            payload: None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-ledger-{}", std::process::id()));
    let store = rt.block_on(Store::open(&dir.join("tollgate.db"))).unwrap();
    let mut g = c.benchmark_group("ledger writes");
    g.sample_size(20);
    for batch in [50usize, 512, 2048] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("batch of {batch}"), |b| {
            b.iter_batched(
                || records(batch, now_ms()),
                |rs| rt.block_on(store.insert_records(&rs)).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
