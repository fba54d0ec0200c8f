//! The writer of outcome and feedback events (`POST /v1/feedback`): like the request ledger, off
//! the request path, in batches, each batch with its hourly rollups in one transaction
//! ([`OutcomeQueries::insert_outcomes`]).
//!
//! Nothing accepted is dropped: [`OutcomeWriter::submit`] hands an event back when the queue is
//! full (the endpoint answers 503 and the application retries), and a batch the database refuses
//! is kept and tried again with backoff while new events wait in the queue. At shutdown the queue
//! is written out; only if the database stays down through [`SHUTDOWN_TRIES`] tries are the
//! events still held lost, and that is logged with their count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tollgate_store::{OutcomeEvent, OutcomeQueries, Store};
use tollgate_types::progress::Progress;

/// Tries of a batch at shutdown before its events are given up (logged).
pub const SHUTDOWN_TRIES: u32 = 5;
/// The first wait after a failed write (doubling up to [`MAX_WAIT`]).
const FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait between tries.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// What the writer has done.
#[derive(Debug, Default)]
pub struct OutcomeStats {
    /// Events accepted onto the queue.
    pub queued: AtomicU64,
    /// Events stored.
    pub stored: AtomicU64,
    /// Events not stored because their use case already had their event id, or their request
    /// or session had had the most events allowed.
    pub duplicates: AtomicU64,
    /// Events refused because the queue was full (answered 503).
    pub refused: AtomicU64,
    /// Failed batch writes (each retried).
    pub failed_writes: AtomicU64,
    /// Events given up at shutdown because the database stayed down.
    pub lost: AtomicU64,
    /// Told after every change the writer makes to these counters (see [`OutcomeWriter::until`]).
    progress: Progress,
}

impl OutcomeStats {
    /// Events accepted and not yet written (stored or found duplicate).
    pub fn pending(&self) -> u64 {
        self.queued.load(Ordering::Relaxed).saturating_sub(
            self.stored.load(Ordering::Relaxed)
                + self.duplicates.load(Ordering::Relaxed)
                + self.lost.load(Ordering::Relaxed),
        )
    }
}

/// The queue is full (or the writer stopped): the event was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// The outcome writer.
#[derive(Debug)]
pub struct OutcomeWriter {
    tx: mpsc::Sender<OutcomeEvent>,
    stats: Arc<OutcomeStats>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl OutcomeWriter {
    /// Starts the writer on the current runtime: a queue of `capacity` events, written `batch`
    /// at a time.
    pub fn start(store: Store, capacity: usize, batch: usize) -> OutcomeWriter {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(OutcomeStats::default());
        let task = tokio::spawn(write_loop(store, batch.max(1), rx, stop_rx, stats.clone()));
        OutcomeWriter {
            tx,
            stats,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues an event; never waits. A full (or stopped) queue refuses it.
    pub fn submit(&self, e: OutcomeEvent) -> Result<(), QueueFull> {
        // Counted before it can be written, so `settled` never sees it written but not queued.
        self.stats.queued.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(e) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.stats.queued.fetch_sub(1, Ordering::AcqRel);
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                Err(QueueFull)
            }
        }
    }

    /// Returns once at least `n` events have been written (stored or found duplicate): an event
    /// to wait on, for tests and tools, instead of polling the database.
    pub async fn written_at_least(&self, n: u64) {
        self.until(|s| {
            s.stored.load(Ordering::Acquire) + s.duplicates.load(Ordering::Acquire) >= n
        })
        .await;
    }

    /// Returns once `holds` is true of the writer's counters, checked now and after each change
    /// the writer makes (events stored, duplicates, a failed write, events lost at shutdown).
    pub async fn until(&self, holds: impl Fn(&OutcomeStats) -> bool) {
        self.stats.progress.until(|| holds(&self.stats)).await;
    }

    /// Returns once every event queued before the call is written (stored, found duplicate or
    /// given up) or the writer fails a write. Reports call this first, so a report asked right
    /// after feedback includes it.
    pub async fn settled(&self) {
        let queued = self.stats.queued.load(Ordering::Acquire);
        let failed = self.stats.failed_writes.load(Ordering::Relaxed);
        self.until(|s| {
            s.stored.load(Ordering::Acquire)
                + s.duplicates.load(Ordering::Acquire)
                + s.lost.load(Ordering::Relaxed)
                >= queued
                || s.failed_writes.load(Ordering::Relaxed) > failed
        })
        .await;
    }

    /// The writer's counters.
    pub fn stats(&self) -> &OutcomeStats {
        &self.stats
    }

    /// Writes everything queued, then stops the writer.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn write_loop(
    store: Store,
    batch: usize,
    mut rx: mpsc::Receiver<OutcomeEvent>,
    mut stop: watch::Receiver<bool>,
    stats: Arc<OutcomeStats>,
) {
    let mut buf = Vec::with_capacity(batch);
    loop {
        if *stop.borrow() {
            rx.close();
            while rx.recv_many(&mut buf, batch).await > 0 {
                write(&store, &stats, &mut buf, &stop).await;
            }
            return;
        }
        tokio::select! {
            n = rx.recv_many(&mut buf, batch) => {
                if n == 0 {
                    return;
                }
                write(&store, &stats, &mut buf, &stop).await;
            }
            _ = stop.changed() => {}
        }
    }
}

/// Writes `buf` (then empties it), trying again with backoff until the database takes it; once
/// shutdown has begun (even while this batch is being retried), at most [`SHUTDOWN_TRIES`] times.
async fn write(
    store: &Store,
    stats: &OutcomeStats,
    buf: &mut Vec<OutcomeEvent>,
    stop: &watch::Receiver<bool>,
) {
    let mut wait = FIRST_WAIT;
    let mut tries = 0;
    loop {
        tries += 1;
        match store.insert_outcomes(buf).await {
            Ok(stored) => {
                let n = buf.len() as u64;
                stats.stored.fetch_add(stored, Ordering::Release);
                stats
                    .duplicates
                    .fetch_add(n.saturating_sub(stored), Ordering::Release);
                stats.progress.changed();
                buf.clear();
                return;
            }
            Err(e) => {
                stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                stats.progress.changed();
                if *stop.borrow() && tries >= SHUTDOWN_TRIES {
                    stats.lost.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    stats.progress.changed();
                    tracing::error!(error = %e, events = buf.len(), "outcome events lost at shutdown: the database stayed unavailable");
                    buf.clear();
                    return;
                }
                tracing::warn!(error = %e, events = buf.len(), "writing outcome events failed; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
        }
    }
}
