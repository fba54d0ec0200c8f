//! How records are gathered into batches: what arrives while the writer waits out `interval`
//! after a batch's first record is written with it in one transaction; a batch already full when
//! the writer looks is written at once; and shutdown does not wait for an interval to end. The
//! intervals are an hour, so a writer that waited for one would never pass.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::rec;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tollgate_ledger::{Ledger, LedgerConfig};
use tollgate_store::{Store, now_ms};

async fn store(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-batching-{name}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    Store::open(&dir.join("tollgate.db")).await.unwrap()
}

/// A bound for waits that should end at once; reaching it means the writer slept through an
/// interval it should not have (the intervals here are an hour).
const STUCK: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STUCK, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {STUCK:?}"))
}

/// A writer on a store of its own (named `name`) whose batches of `batch` gather for an hour.
async fn hour_ledger(name: &str, batch: usize) -> Ledger {
    Ledger::start(
        store(name).await,
        LedgerConfig {
            capacity: 100,
            batch,
            interval: Duration::from_secs(3_600),
            spill_dir: None,
        },
    )
}

#[tokio::test]
async fn records_arriving_while_the_writer_waits_share_its_batch_and_shutdown_does_not_wait() {
    let ledger = hour_ledger("interval", 100).await;
    ledger.record(rec(0));
    // A current-thread runtime: the writer runs now, takes the first record and waits for more.
    tokio::task::yield_now().await;
    ledger.record(rec(1));
    ledger.record(rec(2));
    assert_eq!(ledger.stats().written.load(Relaxed), 0, "still gathering");
    // Stopping ends the wait at once and writes the batch.
    within("shutdown", ledger.shutdown()).await;
    let stats = ledger.stats();
    assert_eq!(stats.written.load(Relaxed), 3);
    assert_eq!(
        stats.batches.load(Relaxed),
        1,
        "the three records share one write"
    );
}

#[tokio::test]
async fn a_batch_already_full_is_written_without_waiting_the_interval() {
    let ledger = hour_ledger("full", 4).await;
    // Queued before the writer first looks.
    for i in 0..9 {
        ledger.record(rec(i));
    }
    within("two full batches", ledger.written_at_least(8)).await;
    let stats = ledger.stats();
    assert_eq!(stats.batches.load(Relaxed), 2, "two full batches of 4");
    assert_eq!(
        stats.written.load(Relaxed),
        8,
        "the ninth waits for company"
    );
    within("shutdown", ledger.shutdown()).await;
    assert_eq!(stats.written.load(Relaxed), 9);
    assert_eq!(stats.batches.load(Relaxed), 3);
}

/// A report asks for what was queued before it: the writer stops gathering its batch and writes
/// it, and `settled` returns with every record written (the interval is an hour).
#[tokio::test]
async fn settled_writes_the_gathering_batch_at_once() {
    let ledger = hour_ledger("settled", 100).await;
    ledger.record(rec(0));
    // A current-thread runtime: the writer runs now, takes the record and waits for more.
    tokio::task::yield_now().await;
    ledger.record(rec(1));
    assert_eq!(ledger.stats().written.load(Relaxed), 0, "still gathering");
    within("settled", ledger.settled()).await;
    assert_eq!(ledger.stats().written.load(Relaxed), 2);
    // Nothing queued: it returns at once.
    within("settled, nothing queued", ledger.settled()).await;
    within("shutdown", ledger.shutdown()).await;
}

/// Once the writer has stopped, a record is refused (counted as dropped, not queued where no one
/// would write it) and `settled` returns at once instead of waiting for it.
#[tokio::test]
async fn after_shutdown_records_are_refused_and_settled_does_not_wait() {
    let ledger = Ledger::start(store("stopped").await, LedgerConfig::default());
    ledger.record(rec(0));
    within("shutdown", ledger.shutdown()).await;
    let stats = ledger.stats();
    assert!(stats.stopped.load(Relaxed));
    ledger.record(rec(1));
    assert_eq!(
        (
            stats.queued.load(Relaxed),
            stats.written.load(Relaxed),
            stats.dropped.load(Relaxed),
            stats.pending()
        ),
        (1, 1, 1, 0)
    );
    within("settled after shutdown", ledger.settled()).await;
}

/// The server's writer runs on a thread of its own, named `tollgate-ledger` (its batches must not
/// hold a worker that serves requests), writes there, and ends with shutdown.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_servers_writer_runs_on_a_thread_of_its_own() {
    let threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).unwrap_or_default()
                    == "tollgate-ledger\n"
            })
            .count()
    };
    let before = threads();
    let ledger = Ledger::start_on_thread(
        store("thread").await,
        LedgerConfig {
            batch: 1,
            ..LedgerConfig::default()
        },
    );
    ledger.record(rec(0));
    within("written", ledger.written_at_least(1)).await;
    // (Named by the thread itself as it starts: looked for once it has written.)
    assert_eq!(threads(), before + 1, "a thread of its own");
    within("shutdown", ledger.shutdown()).await;
    assert_eq!(ledger.stats().written.load(Relaxed), 1);
}
