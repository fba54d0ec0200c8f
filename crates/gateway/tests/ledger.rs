//! The ledger: exactly one record per admitted request — answered, failed upstream, disconnected
//! mid-stream, or caught by a graceful shutdown — with rollups that add up to the records.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tollgate_simulator::SimConfig;
use tollgate_store::LedgerQueries;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_is_lost_under_disconnects_errors_and_shutdown() {
    let good = sim(SimConfig {
        latency: Duration::from_millis(15),
        tokens_per_second: 500.0,
        cached_tokens: 2,
        ..SimConfig::default()
    })
    .await;
    let bad = sim(SimConfig {
        error_rate: 1.0,
        error_status: 500,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        r#"
providers:
  - {{ name: good, type: openai_compatible, base_url: "{}/v1" }}
  - {{ name: bad, type: openai_compatible, base_url: "{}/v1" }}
routes:
  - name: ok
    deployments: [{{ provider: good, model: gpt-4o-mini }}]
  - name: failing
    retries: 0
    deployments: [{{ provider: bad, model: gpt-4o-mini }}]
"#,
        good.url, bad.url
    ))
    .await;
    let admitted = Arc::new(AtomicU64::new(0));
    let (disconnected, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let client = reqwest::Client::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000u32 {
        if i == 600 {
            // Graceful shutdown in the middle of the load.
            g.stop.send(true).unwrap();
        }
        let permit = limit.clone().acquire_owned().await.unwrap();
        let (client, url, key) = (client.clone(), g.chat_url(), g.key.clone());
        let (admitted, disconnected, errors) =
            (admitted.clone(), disconnected.clone(), errors.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let (route, stream) = match i % 10 {
                0 => ("ok", true),     // the client leaves after the first chunk
                1 => ("failing", false), // the upstream answers 500
                n => ("ok", n % 2 == 0),
            };
            let body = json!({"model": route, "stream": stream, "max_tokens": 16, "messages": [{"role": "user", "content": format!("request {i}")}]});
            let Ok(mut resp) = client.post(url).bearer_auth(key).json(&body).send().await else {
                return; // refused during shutdown: never admitted
            };
            admitted.fetch_add(1, Ordering::Relaxed);
            if resp.status() != 200 {
                errors.fetch_add(1, Ordering::Relaxed);
                let _ = resp.bytes().await;
            } else if i % 10 == 0 {
                let _ = resp.chunk().await;
                drop(resp);
                disconnected.fetch_add(1, Ordering::Relaxed);
            } else {
                let _ = resp.bytes().await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    tokio::time::timeout(Duration::from_secs(30), g.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let admitted = admitted.load(Ordering::Relaxed);
    let stats = g.gw.books.ledger.stats();
    assert!((500..=1000).contains(&admitted), "{admitted} admitted");
    assert!(
        disconnected.load(Ordering::Relaxed) >= 40,
        "some clients left mid-stream"
    );
    assert!(errors.load(Ordering::Relaxed) >= 40, "some upstream errors");
    assert_eq!(
        stats.dropped.load(Ordering::Relaxed),
        0,
        "no record dropped"
    );
    let count = g.gw.store.count_records(0, i64::MAX).await.unwrap();
    assert_eq!(count, admitted, "one record per admitted request");
    assert_eq!(stats.written.load(Ordering::Relaxed), admitted);

    let records = g.gw.store.record_totals(0, i64::MAX).await.unwrap();
    let rollups = g.gw.store.rollup_totals(0, i64::MAX).await.unwrap();
    assert_eq!(records, rollups, "rollups add up to the records");
    assert!(records.cost_nano_usd > 0 && records.cached_input_tokens > 0);
    assert_eq!(records.errors, errors.load(Ordering::Relaxed));

    // Disconnected streams were read to the end (the client read only the first chunk, which
    // carries no token; an answer is 12 to 16 tokens here) and priced from real usage.
    let all = g.gw.store.list_records(0, i64::MAX, 2000).await.unwrap();
    let gone: Vec<_> = all
        .iter()
        .filter(|r| r.outcome == "client_disconnected")
        .collect();
    assert!(!gone.is_empty());
    assert!(
        gone.iter()
            .all(|r| r.stream && r.output_tokens >= 12 && r.cost_nano_usd.unwrap_or(0) > 0),
        "{:?}",
        gone.first()
    );
    // Every record's cost splits exactly by token kind, and the FOCUS rollups add up to the
    // records kind by kind.
    assert!(
        all.iter()
            .all(|r| r.cost_split.iter().sum::<u64>() == r.cost_nano_usd.unwrap_or(0))
    );
    let focus =
        g.gw.store
            .focus_rollups(0, i64::MAX / 3_600_000, None)
            .await
            .unwrap();
    assert_eq!(
        focus.iter().map(|f| f.requests).sum::<u64>(),
        admitted,
        "the FOCUS rollups count every record"
    );
    for k in 0..5 {
        assert_eq!(
            focus.iter().map(|f| f.cost[k]).sum::<u64>(),
            all.iter().map(|r| r.cost_split[k]).sum::<u64>(),
            "cost of token kind {k}"
        );
    }
    assert_eq!(
        focus.iter().flat_map(|f| f.cost).sum::<u64>(),
        records.cost_nano_usd
    );
    assert_eq!(
        focus.iter().map(|f| f.tokens[3]).sum::<u64>(),
        records.output_tokens
    );
    let failed: Vec<_> = all.iter().filter(|r| r.route == "failing").collect();
    assert!(
        failed
            .iter()
            .all(|r| r.status == 502 && r.outcome == "status_5xx" && r.attempts == 1),
        "{:?}",
        failed.first()
    );
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("request 1") && !text.contains(&g.key),
        "no prompt and no key in the ledger"
    );
}

/// `/readyz` says not ready, naming the ledger, while request records can be written neither to
/// the database (a trigger refuses them, as a full disk would) nor to the spill directory (a
/// regular file stands where it should be); requests are still answered and their records kept.
/// Once the database takes them again, they are written and `/readyz` says ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_ledger_that_can_write_nowhere() {
    use sqlx::Connection;
    let s = sim(SimConfig::default()).await;
    let g = gateway(&two_route_config(&s.url)).await;
    let data = g.gw.config.server.data_dir.clone();
    let spill = data.join("ledger-spill");
    let _ = std::fs::remove_dir_all(&spill);
    std::fs::write(&spill, b"not a directory").unwrap();
    let db = data.join("tollgate.db");
    let mut admin = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TRIGGER refuse BEFORE INSERT ON request_records \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let ready = || async {
        let r = client
            .get(format!("{}/readyz", g.url))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(ready().await.0, 200);
    let answer = client
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "messages": user("hello")}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // The writer has failed into a spill directory it cannot use, and holds the record.
    g.gw.books
        .ledger
        .until(|s| s.stalled.load(std::sync::atomic::Ordering::Relaxed))
        .await;
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the ledger cannot write request records"),
        "{body}"
    );
    assert_eq!(g.gw.books.ledger.stats().pending(), 1);

    sqlx::raw_sql("DROP TRIGGER refuse")
        .execute(&mut admin)
        .await
        .unwrap();
    g.gw.books.ledger.written_at_least(1).await;
    assert_eq!(ready().await, (200, r#"{"status":"ready"}"#.to_string()));
    assert_eq!(g.gw.store.count_records(0, i64::MAX).await.unwrap(), 1);
}
