//! A database outage longer than the queue: records go to the spill file, nothing is dropped, and
//! they are written back exactly once when a writer can reach the database again — also when a
//! file is replayed twice or ends in a torn line, and never while another live writer holds it.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::rec;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tollgate_ledger::{Ledger, LedgerConfig};
use tollgate_store::{LedgerQueries, Store, new_id};

fn cfg(spill: &Path) -> LedgerConfig {
    LedgerConfig {
        capacity: 64,
        batch: 64,
        interval: Duration::from_millis(5),
        spill_dir: Some(spill.to_path_buf()),
    }
}

fn spill_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(ext))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_queue_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("tollgate-spill-{}", new_id("t")));
    let db = dir.join("ledger.db");
    let spill = dir.join("spill");
    let store = Store::open(&db).await.unwrap();
    let a = Ledger::start(store.clone(), cfg(&spill));
    a.record(rec(0));
    a.written_at_least(1).await;

    // The database goes away; 500 records — eight times the queue — arrive meanwhile.
    store.close().await;
    // They come in bursts of 32, each once the spill has caught up to within a burst (so the
    // queue of 64 never has to hold more than two): a pace any disk keeps, where a fixed pause
    // between bursts was a race with a slow `fsync`.
    for i in 1..=500u64 {
        if i % 32 == 1 {
            let done = i - 1;
            a.until(|s| s.spilled.load(Relaxed) + 32 >= done).await;
        }
        a.record(rec(i));
    }
    a.until(|s| s.spilled.load(Relaxed) == 500).await;
    assert_eq!(a.stats().dropped.load(Relaxed), 0, "nothing dropped");
    let files = spill_files(&spill, ".jsonl");
    assert_eq!(files.len(), 1);
    let lines = std::fs::read_to_string(&files[0]).unwrap().lines().count();
    assert_eq!(lines, 500);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads spilled records");
    }

    // While A lives it holds its file: another writer on a healthy store leaves it alone.
    let healthy = Store::open(&db).await.unwrap();
    let b = Ledger::start(healthy.clone(), cfg(&spill));
    // Its first pass over the spill files, at start, has found nothing it may take.
    b.until(|s| s.replay_passes.load(Relaxed) >= 1).await;
    assert_eq!(b.stats().replayed.load(Relaxed), 0);
    assert_eq!(healthy.count_records(0, i64::MAX).await.unwrap(), 1);
    b.shutdown().await;

    // A stops with the database still down: its file stays on disk.
    a.shutdown().await;
    assert_eq!(a.stats().dropped.load(Relaxed), 0);
    let files = spill_files(&spill, ".jsonl");
    assert_eq!(files.len(), 1, "the spill file survives the outage");

    // A crash between writing records back and deleting the file replays it twice: a copy of the
    // file stands for that. A second copy ends in a torn line.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(spill.join("copy.jsonl"), &text).unwrap();
    // Another ends in a line cut inside a two-byte character; a third holds one record twice (a
    // batch appended twice) next to one new record.
    let mut accented = rec(501);
    accented.end_user = Some("agent-éèê".into());
    let line = serde_json::to_string(&accented).unwrap();
    let cut = line.find('é').unwrap() + 1;
    let mut torn = text.clone().into_bytes();
    torn.extend_from_slice(&line.as_bytes()[..cut]);
    std::fs::write(spill.join("torn.jsonl"), torn).unwrap();
    let first_line = text.lines().next().unwrap();
    std::fs::write(
        spill.join("twice.jsonl"),
        format!("{first_line}\n{first_line}\n{line}\n"),
    )
    .unwrap();

    // The next writer that reaches the database writes everything back, exactly once, a slice
    // at a time between live records.
    let c = Ledger::start(healthy.clone(), cfg(&spill));
    c.record(rec(502));
    // Checked after each of its passes over the files.
    loop {
        let passes = c.stats().replay_passes.load(Relaxed);
        if spill_files(&spill, ".jsonl").is_empty() {
            break;
        }
        c.until(|s| s.replay_passes.load(Relaxed) > passes).await;
    }
    c.shutdown().await;
    assert_eq!(
        c.stats().replayed.load(Relaxed),
        501,
        "500 spilled + the accented one"
    );
    assert_eq!(c.stats().written.load(Relaxed), 1);
    assert_eq!(healthy.count_records(0, i64::MAX).await.unwrap(), 503);
    let records = healthy.record_totals(0, i64::MAX).await.unwrap();
    assert_eq!(
        records.cost_nano_usd,
        (0..=502).map(|i| 1_000 + i).sum::<u64>()
    );
    assert_eq!(
        healthy.rollup_totals(0, i64::MAX).await.unwrap(),
        records,
        "rollups add up to the records"
    );
    let focus = healthy
        .focus_rollups(0, i64::MAX / 3_600_000, None)
        .await
        .unwrap();
    assert_eq!(focus.iter().map(|f| f.requests).sum::<u64>(), 503);
    assert_eq!(
        focus.iter().flat_map(|f| f.cost).sum::<u64>(),
        records.cost_nano_usd
    );
    assert!(
        spill_files(&spill, ".jsonl").is_empty(),
        "replayed files are gone"
    );
    assert_eq!(
        spill_files(&spill, ".unreadable").len(),
        1,
        "the file with a torn line is kept for a person to look at"
    );
    healthy.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Once a batch has gone to the spill file, the next ones go there after one failed try: an
/// outage costs one failed write per batch, not three with backoff between them, so the writer
/// keeps up with traffic. A write that reaches the database again ends the shortcut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_outage_each_batch_spills_after_one_try() {
    let dir = std::env::temp_dir().join(format!("tollgate-spill-{}", new_id("t")));
    let store = Store::open(&dir.join("ledger.db")).await.unwrap();
    let spill = dir.join("spill");
    let l = Ledger::start(store.clone(), cfg(&spill));
    store.close().await;
    let failed = || l.stats().failed_writes.load(Relaxed);
    l.record(rec(1));
    l.until(|s| s.spilled.load(Relaxed) == 1).await;
    assert_eq!(failed(), 3, "the first batch is tried three times");
    for i in 2..=4u64 {
        l.record(rec(i));
        l.until(|s| s.spilled.load(Relaxed) == i).await;
        assert_eq!(failed(), 3 + (i - 1), "each later batch is tried once");
    }
    l.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
