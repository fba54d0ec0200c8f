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
    ledger.until(|s| s.failed_writes.load(Relaxed) > 0).await;
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

/// A writer that can write neither to the database (a trigger refuses every record, as a full
/// disk would) nor to a spill file (its directory is a regular file) says so — `stalled`, which `/readyz` reads — and keeps the records; once
/// the database takes writes again they are written and the flag clears. At shutdown a batch
/// that still cannot be written is given up after a bounded number of tries, counted as dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_can_write_nowhere_says_so_and_recovers() {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-stall-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let path = dir.join("tollgate.db");
    let store = Store::open(&path).await.unwrap();
    let spill = dir.join("spill");
    std::fs::write(&spill, b"a file where the spill directory should be").unwrap();
    let ledger = Ledger::start(
        store.clone(),
        LedgerConfig {
            capacity: 100,
            batch: 4,
            interval: Duration::from_millis(5),
            spill_dir: Some(spill),
        },
    );
    let stats = ledger.stats();
    let mut admin = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let refuse = "CREATE TRIGGER refuse BEFORE INSERT ON request_records \
                  BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END";
    sqlx::raw_sql(refuse).execute(&mut admin).await.unwrap();
    ledger.record(rec(1));
    ledger.record(rec(2));
    // (Waited on by event: the writer tells its waiters after each change of its counters.)
    ledger.until(|s| s.stalled.load(Relaxed)).await;
    assert_eq!(stats.written.load(Relaxed), 0);
    assert_eq!(stats.spilled.load(Relaxed), 0);
    assert_eq!(stats.pending(), 2, "the records are kept in memory");

    sqlx::raw_sql("DROP TRIGGER refuse")
        .execute(&mut admin)
        .await
        .unwrap();
    ledger.written_at_least(2).await;
    assert!(
        !stats.stalled.load(Relaxed),
        "writing again clears the flag"
    );

    // Refused again, then stopped: the batch is given up after its tries, counted and logged
    // (shutdown used to wait for it forever).
    sqlx::raw_sql(refuse).execute(&mut admin).await.unwrap();
    ledger.record(rec(3));
    ledger.until(|s| s.stalled.load(Relaxed)).await;
    // A bound far above the ~5 s of tries, so a shutdown that waits forever fails here.
    tokio::time::timeout(Duration::from_secs(120), ledger.shutdown())
        .await
        .expect("shutdown returns while the database refuses records");
    assert_eq!(stats.dropped.load(Relaxed), 1);
    assert_eq!(stats.written.load(Relaxed), 2);
    drop(admin);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
