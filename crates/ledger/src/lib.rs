//! The request ledger's writer: side effects leave the request path.
//!
//! [`Ledger::record`] puts a [`RequestRecord`] on a bounded queue and returns at once (no await, no
//! database). One task takes records off the queue in batches — up to `batch` records, or whatever
//! arrived within `interval` — and writes each batch, with the hourly rollups it changes, in one
//! transaction ([`LedgerQueries::insert_records`]). If the database fails, the batch is retried with
//! backoff and kept; while it is kept the queue fills, and a record that finds the queue full is
//! dropped and counted ([`LedgerStats::dropped`] — every test expects zero). [`Ledger::shutdown`]
//! stops the task after it has written everything queued.
//!
//! ```no_run
//! # async fn run(store: tollgate_store::Store, rec: tollgate_store::RequestRecord) {
//! let ledger = tollgate_ledger::Ledger::start(store, tollgate_ledger::LedgerConfig::default());
//! ledger.record(rec);
//! ledger.shutdown().await; // drains the queue
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tollgate_store::{LedgerQueries, RequestRecord, Store};

/// Queue and batch sizes.
#[derive(Debug, Clone, Copy)]
pub struct LedgerConfig {
    /// Records the queue holds before new ones are dropped.
    pub capacity: usize,
    /// Records per write.
    pub batch: usize,
    /// Longest wait for a batch to fill.
    pub interval: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            capacity: 65_536,
            batch: 2_048,
            interval: Duration::from_millis(25),
        }
    }
}

/// What the writer has done.
#[derive(Debug, Default)]
pub struct LedgerStats {
    /// Records written.
    pub written: AtomicU64,
    /// Records dropped because the queue was full (should never happen).
    pub dropped: AtomicU64,
    /// Records accepted onto the queue.
    pub queued: AtomicU64,
    /// Failed batch writes (each retried).
    pub failed_writes: AtomicU64,
}

impl LedgerStats {
    /// Records accepted but not yet written.
    pub fn pending(&self) -> u64 {
        self.queued
            .load(Ordering::Relaxed)
            .saturating_sub(self.written.load(Ordering::Relaxed))
    }
}

/// The ledger writer.
#[derive(Debug)]
pub struct Ledger {
    tx: mpsc::Sender<RequestRecord>,
    stats: Arc<LedgerStats>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Ledger {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store, cfg: LedgerConfig) -> Ledger {
        let (tx, rx) = mpsc::channel(cfg.capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(LedgerStats::default());
        let task = tokio::spawn(write_loop(store, cfg, rx, stop_rx, stats.clone()));
        Ledger {
            tx,
            stats,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a record; never waits.
    pub fn record(&self, r: RequestRecord) {
        match self.tx.try_send(r) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::error!(
                        dropped = n,
                        "ledger queue full or closed: request records dropped"
                    );
                }
            }
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &LedgerStats {
        &self.stats
    }

    /// Writes everything queued, then stops the writer. Records queued after this are dropped.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn write_loop(
    store: Store,
    cfg: LedgerConfig,
    mut rx: mpsc::Receiver<RequestRecord>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<LedgerStats>,
) {
    let mut buf: Vec<RequestRecord> = Vec::with_capacity(cfg.batch);
    loop {
        let stopping = *stop.borrow();
        if stopping {
            while let Ok(r) = rx.try_recv() {
                buf.push(r);
                if buf.len() >= cfg.batch {
                    flush(&store, &mut buf, &stats, true).await;
                }
            }
            flush(&store, &mut buf, &stats, true).await;
            return;
        }
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) => buf.push(r),
                None => {
                    flush(&store, &mut buf, &stats, true).await;
                    return;
                }
            },
            _ = stop.changed() => continue,
        }
        let deadline = tokio::time::Instant::now() + cfg.interval;
        while buf.len() < cfg.batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => buf.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&store, &mut buf, &stats, false).await;
    }
}

/// Writes `buf`, retrying with backoff until it succeeds (at shutdown: 20 tries, then the batch is
/// counted as dropped).
async fn flush(store: &Store, buf: &mut Vec<RequestRecord>, stats: &LedgerStats, stopping: bool) {
    if buf.is_empty() {
        return;
    }
    let mut wait = Duration::from_millis(50);
    for attempt in 1.. {
        match store.insert_records(buf).await {
            Ok(()) => {
                stats.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
                buf.clear();
                return;
            }
            Err(e) => {
                stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                if attempt == 1 || attempt % 20 == 0 {
                    tracing::warn!(error = %e, records = buf.len(), attempt, "cannot write request records; retrying");
                }
                if stopping && attempt >= 20 {
                    stats.dropped.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    tracing::error!(
                        records = buf.len(),
                        "giving up on request records at shutdown"
                    );
                    buf.clear();
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}
