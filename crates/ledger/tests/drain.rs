//! Shutdown drains the queue: records still queued when the writer is told to stop — because the
//! database was locked and the writer was busy retrying an earlier batch — are all written before
//! `shutdown` returns, and a store opened afterwards (a restart) holds every admitted record.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::rec;

use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tollgate_ledger::{Ledger, LedgerConfig};
use tollgate_store::{LedgerQueries, Store, now_ms};

#[tokio::test]
async fn shutdown_writes_every_queued_record_even_after_a_lock_out() {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-drain-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let path = dir.join("tollgate.db");
    let store = Store::open(&path).await.unwrap();
    // Small batches: while the writer retries its first batch, the rest wait in the queue.
    let ledger = Arc::new(Ledger::start(
        store.clone(),
        LedgerConfig {
            capacity: 1_000,
            batch: 4,
            interval: Duration::from_millis(5),
            spill_dir: None,
        },
    ));
    let mut lock = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();

    // Not a multiple of the batch size: the last, partial batch must be written too.
    const N: u64 = 101;
    for i in 0..N {
        ledger.record(rec(i));
    }
    // The writer has tried and failed at least once: it is retrying its first batch, and the
    // other records are still queued.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ledger.stats().failed_writes.load(Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never hit the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ledger.stats().written.load(Relaxed), 0);
    assert!(
        ledger.stats().pending() >= N - 4,
        "{}",
        ledger.stats().pending()
    );

    // Stop now, with records queued; the database comes back while the writer drains.
    let stopping = {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.shutdown().await })
    };
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    drop(lock);
    stopping.await.unwrap();

    let stats = ledger.stats();
    assert_eq!(
        stats.written.load(Relaxed),
        N,
        "every queued record written before shutdown returned"
    );
    assert_eq!(stats.dropped.load(Relaxed), 0);
    assert_eq!(stats.pending(), 0);
    store.close().await;

    // A restart finds every admitted record.
    let reopened = Store::open(&path).await.unwrap();
    assert_eq!(reopened.count_records(0, i64::MAX).await.unwrap(), N);
    reopened.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
