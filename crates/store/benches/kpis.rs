//! The reads of a KPI report over 1,000,000 requests and 100,000 outcome events: 30 days of
//! traffic from 10 use cases in 3 pods, 10,000 end users and 100,000 sessions. A report reads the
//! KPI rollups (hours × use cases with the sessions begun in each, users per day, minutes) and the
//! outcome rollups, never the raw records, so its cost follows hours, days and distinct users,
//! not requests.
//!
//! Run: `cargo bench -p tollgate-store --bench kpis` (setup writes the records and events first
//! through the writers' batch paths: about ten minutes on a 2-core machine).

// A bench crate: setup may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_store::{
    KpiQueries, KpiScope, LedgerQueries, Outcome, OutcomeEvent, OutcomeQueries, RequestRecord,
    Store, new_id,
};

const RECORDS: usize = 1_000_000;
const OUTCOMES: usize = 100_000;
const START: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z
const SPAN: i64 = 30 * 86_400_000;

fn record(i: usize) -> RequestRecord {
    let uc = i % 10;
    RequestRecord {
        id: new_id("rec"),
        request_id: format!("req-{i}"),
        at: START + (i as i64 * SPAN) / RECORDS as i64,
        key_id: format!("key_{uc}"),
        use_case_id: format!("uc_{uc}"),
        pod_id: format!("pod_{}", uc % 3),
        endpoint: "chat".into(),
        route: "chat-default".into(),
        model: Some("gpt-4o-mini".into()),
        stream: i.is_multiple_of(3),
        attempts: 1 + u32::from(i.is_multiple_of(50)),
        status: if i.is_multiple_of(100) { 502 } else { 200 },
        outcome: if i.is_multiple_of(100) {
            "upstream_error"
        } else {
            "ok"
        }
        .into(),
        input_tokens: 400,
        output_tokens: 120,
        cost_nano_usd: Some(150_000),
        price_source: "catalog".into(),
        usage_source: "provider".into(),
        latency_ms: 80 + (i % 400) as u64,
        ttft_ms: i.is_multiple_of(3).then_some(60),
        end_user_hash: Some(format!("u{:05}", (i * 7919) % 10_000)),
        session_hash: Some(format!("s{:06}", i % 100_000)),
        evaluation: false,
        pattern: None,
        ..RequestRecord::default()
    }
}

fn event(i: usize) -> OutcomeEvent {
    OutcomeEvent {
        id: new_id("fbk"),
        event_id: Some(format!("e{i}")),
        at: START + (i as i64 * SPAN) / OUTCOMES as i64,
        use_case_id: format!("uc_{}", i % 10),
        pod_id: format!("pod_{}", (i % 10) % 3),
        key_id: "key".into(),
        request_id: Some(format!("req-{}", i * 10)),
        outcome: Some(Outcome::ALL[i % 4]),
        rating: Some((i % 5) as u8 + 1),
        accepted: Some(i.is_multiple_of(2)),
        ..OutcomeEvent::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-kpis-{}", std::process::id()));
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
        let events: Vec<OutcomeEvent> = (0..OUTCOMES).map(event).collect();
        for chunk in events.chunks(2048) {
            store.insert_outcomes(chunk).await.unwrap();
        }
        let d = store
            .kpi_data(&KpiScope::Portfolio, START, START + SPAN)
            .await
            .unwrap();
        assert_eq!(d.requests, RECORDS as u64);
        assert_eq!(d.active_users, 10_000);
        // Each of the 100,000 sessions has 10 requests, on 10 different days, and counts once:
        // in the hour of its first request.
        assert_eq!(d.sessions, 100_000);
    });
    let (h0, h1) = (START / 3_600_000, (START + SPAN) / 3_600_000);
    let mut g = c.benchmark_group("KPI report reads over 1M requests and 100k outcomes");
    g.sample_size(10);
    g.bench_function(
        "portfolio, 30 days: KPI rollups + outcome rollups + stages and runs",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let d = store
                        .kpi_data(&KpiScope::Portfolio, START, START + SPAN)
                        .await
                        .unwrap();
                    let o = store.outcome_rollups(h0, h1).await.unwrap();
                    let e = store
                        .use_case_evidence(&KpiScope::Portfolio, START, START + SPAN)
                        .await
                        .unwrap();
                    (d, o, e)
                })
            })
        },
    );
    g.bench_function("one pod, 30 days", |b| {
        b.iter(|| {
            rt.block_on(store.kpi_data(&KpiScope::Pod("pod_1".into()), START, START + SPAN))
                .unwrap()
        })
    });
    g.bench_function("one use case, 7 days", |b| {
        b.iter(|| {
            rt.block_on(store.kpi_data(
                &KpiScope::UseCase("uc_4".into()),
                START + 23 * 86_400_000,
                START + SPAN,
            ))
            .unwrap()
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
