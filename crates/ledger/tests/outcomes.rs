//! The outcome writer: a full queue refuses an event and counts it (the endpoint answers 503, the
//! application retries), and shutdown writes every event still queued.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering::Relaxed;
use tollgate_ledger::outcomes::{OutcomeWriter, QueueFull};
use tollgate_store::{Outcome, OutcomeEvent, OutcomeQueries, Store, new_id, now_ms};

fn event(i: u64) -> OutcomeEvent {
    OutcomeEvent {
        id: new_id("fbk"),
        event_id: Some(format!("e{i}")),
        at: now_ms(),
        use_case_id: "uc_1".into(),
        pod_id: "pod_1".into(),
        key_id: "key_1".into(),
        request_id: Some(format!("req_{i}")),
        outcome: Some(Outcome::Success),
        ..OutcomeEvent::default()
    }
}

/// A directory of its own for a test's database.
fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "tollgate-outcomes-{}-{}",
        std::process::id(),
        new_id("d")
    ))
}

// One thread: the writer's task does not run before the test awaits, so the queue fills.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_refuses_and_shutdown_writes_what_was_queued() {
    let dir = temp_dir();
    let store = Store::open(&dir.join("tollgate.db")).await.unwrap();
    let writer = OutcomeWriter::start(store.clone(), 3, 2);
    for i in 0..3 {
        writer.submit(event(i)).unwrap();
    }
    assert_eq!(writer.submit(event(3)), Err(QueueFull));
    let stats = writer.stats();
    assert_eq!(
        (stats.queued.load(Relaxed), stats.refused.load(Relaxed)),
        (3, 1)
    );
    assert_eq!(stats.pending(), 3);

    // Stopped before it wrote anything: the three queued events are written first.
    writer.shutdown().await;
    let stats = writer.stats();
    assert_eq!(
        (stats.stored.load(Relaxed), stats.lost.load(Relaxed)),
        (3, 0)
    );
    assert_eq!(stats.pending(), 0);
    let events: u64 = store
        .outcome_rollups(0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|r| r.events)
        .sum();
    assert_eq!(events, 3);
    // A stopped writer takes nothing more.
    assert_eq!(writer.submit(event(4)), Err(QueueFull));
}

/// `settled` returns once what was queued before it is written (a report right after feedback
/// counts it).
#[tokio::test(flavor = "current_thread")]
async fn settled_returns_once_the_queued_events_are_written() {
    let dir = temp_dir();
    let store = Store::open(&dir.join("tollgate.db")).await.unwrap();
    let writer = OutcomeWriter::start(store.clone(), 10, 2);
    for i in 0..5 {
        writer.submit(event(i)).unwrap();
    }
    // One thread: the writer has not run yet.
    assert_eq!(writer.stats().stored.load(Relaxed), 0);
    writer.settled().await;
    assert_eq!(writer.stats().stored.load(Relaxed), 5);
    writer.shutdown().await;
}

/// Shutdown while a batch is being retried (the database refuses it) returns after the bounded
/// tries, counting the events as lost: it used to retry that batch forever and never return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_while_the_database_refuses_a_batch() {
    use sqlx::Connection;
    let dir = temp_dir();
    let path = dir.join("tollgate.db");
    let store = Store::open(&path).await.unwrap();
    let mut admin = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TRIGGER refuse BEFORE INSERT ON outcome_events \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let writer = OutcomeWriter::start(store.clone(), 10, 10);
    writer.submit(event(1)).unwrap();
    let stats = writer.stats();
    writer.until(|s| s.failed_writes.load(Relaxed) > 0).await;
    // A report waiting for the queued events is not held up by a database that refuses them.
    writer.settled().await;
    // A bound far above the ~3 s of tries, so a shutdown that waits forever fails here.
    tokio::time::timeout(std::time::Duration::from_secs(120), writer.shutdown())
        .await
        .expect("shutdown returns while the database refuses events");
    assert_eq!(
        (stats.stored.load(Relaxed), stats.lost.load(Relaxed)),
        (0, 1)
    );
    drop(admin);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
