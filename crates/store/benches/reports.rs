//! A spend report over 1,000,000 request records: 30 days of traffic from 3 pods, 10 use cases,
//! 20 keys and 4 models, grouped by pod, use case, model and day. Reports read the hourly rollups
//! the ledger writer keeps, so their cost follows the number of hours × groups, not of requests.
//! Also: the FOCUS rollups of the month, spend per use case × model (premium-model advice), and
//! the duplicate-prompt count, which reads the raw records.
//!
//! Run: `cargo bench -p tollgate-store --bench reports` (setup writes the million records first,
//! ~15 s).

// A bench crate: setup may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_store::{LedgerQueries, RequestRecord, Store, new_id};

const RECORDS: usize = 1_000_000;
const START: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z

fn record(i: usize) -> RequestRecord {
    let models = [
        "gpt-4o-mini",
        "gpt-4o",
        "claude-sonnet-4-5",
        "claude-3-5-haiku",
    ];
    RequestRecord {
        id: new_id("rec"),
        request_id: new_id("req"),
        // Spread over 30 days.
        at: START + (i as i64 * 2_592) % (30 * 86_400_000),
        key_id: format!("key_{}", i % 20),
        use_case_id: format!("uc_{}", i % 10),
        pod_id: format!("pod_{}", i % 3),
        end_user: None,
        endpoint: "chat".into(),
        route: models[i % 4].into(),
        provider: Some("p".into()),
        model: Some(models[i % 4].into()),
        stream: false,
        attempts: 1,
        status: 200,
        outcome: "ok".into(),
        input_tokens: 400,
        cached_input_tokens: 100,
        cache_write_tokens: 0,
        output_tokens: 150,
        reasoning_tokens: 0,
        cost_nano_usd: Some(150_000 + (i as u64 % 7) * 1000),
        first_choice_cost_nano_usd: None,
        price_source: "catalog:bench".into(),
        usage_source: "reported".into(),
        latency_ms: 700,
        ttft_ms: None,
        price_id: Some(format!("cat:bench:p:{}", models[i % 4])),
        cost_split: [100_000, 10_000, 0, 40_000 + (i as u64 % 7) * 1000, 0],
        // One request in four comes from a pool of 250 repeated prompts.
        prompt_hash: Some(format!(
            "{:032x}",
            if i % 4 == 3 { i % 1000 } else { 1000 + i }
        )),
        policy: None,
        guard: None,
        session_hash: None,
        evaluation: false,
        pattern: None,
        end_user_hash: None,
        payload_ref: None,
        payload: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-reports-{}", std::process::id()));
    let store = rt.block_on(Store::open(&dir.join("tollgate.db"))).unwrap();
    rt.block_on(async {
        let mut batch = Vec::with_capacity(4096);
        for i in 0..RECORDS {
            batch.push(record(i));
            if batch.len() == 4096 {
                store.insert_records(&batch).await.unwrap();
                batch.clear();
            }
        }
        store.insert_records(&batch).await.unwrap();
        assert_eq!(
            store.count_records(0, i64::MAX).await.unwrap(),
            RECORDS as u64
        );
    });
    let (from, to) = (START / 3_600_000, START / 3_600_000 + 30 * 24);
    let mut g = c.benchmark_group("spend report over 1M records");
    g.sample_size(20);
    for by in ["pod", "use_case", "model", "day"] {
        g.bench_function(format!("by {by}"), |b| {
            b.iter(|| rt.block_on(store.spend_by(by, from, to, None)).unwrap())
        });
    }
    g.bench_function("FOCUS rollups of the month", |b| {
        b.iter(|| rt.block_on(store.focus_rollups(from, to, None)).unwrap())
    });
    g.bench_function("premium-model spend (use case × model)", |b| {
        b.iter(|| {
            rt.block_on(store.spend_by_use_case_and_model(from, to, None))
                .unwrap()
        })
    });
    // Duplicate prompts read raw records (first-seen needs each fingerprint): the slow one.
    g.sample_size(10);
    g.bench_function("duplicate prompts over 30 days (raw records)", |b| {
        b.iter(|| {
            rt.block_on(store.duplicate_prompts(from * 3_600_000, to * 3_600_000, None))
                .unwrap()
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
