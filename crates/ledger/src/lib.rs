//! The request ledger's writer: side effects leave the request path.
//!
//! [`Ledger::record`] puts a [`RequestRecord`] on a bounded queue and returns at once (no await, no
//! database). One task takes records off the queue in batches — up to `batch` records, or whatever
//! arrived within `interval` of the first (it sleeps through that interval rather than waking for
//! each record) — and writes each batch, with the hourly rollups it changes, in one
//! transaction ([`LedgerQueries::insert_records`]). If the database fails, the batch is retried a
//! few times and then appended to a local spill file ([`spill`]), so the queue keeps draining during
//! a long outage; spilled records are written back, exactly once, as soon as the database takes
//! writes again (or at the next start). Without a spill directory the batch is retried with backoff
//! and kept while the queue fills. A record that finds the queue full is dropped and counted
//! ([`LedgerStats::dropped`] — every test expects zero). [`Ledger::shutdown`] stops the task after
//! it has written (or spilled) everything queued.
//!
//! In the server ([`Ledger::start_on_thread`]) the task runs on a thread of its own
//! (`tollgate-ledger`, a single-threaded runtime), not on the workers that serve requests: a batch is a burst of work on the async side too — binding each
//! record's columns for SQLite, the audit chain's hashes, folding the rollups — and on a worker it
//! held every request that worker would have taken meanwhile (tasks are not preempted). On a
//! thread of its own the kernel shares the cores between it and the request path.
//!
//! ```no_run
//! # async fn run(store: tollgate_store::Store, rec: tollgate_store::RequestRecord) {
//! let ledger = tollgate_ledger::Ledger::start(store, tollgate_ledger::LedgerConfig::default());
//! ledger.record(rec);
//! ledger.shutdown().await; // drains the queue
//! # }
//! ```

pub mod outcomes;
pub mod spill;

use spill::Spill;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, watch};
use tollgate_store::{LedgerQueries, RequestRecord, Store};
use tollgate_types::progress::Progress;

/// Queue and batch sizes, and where to spill.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Records the queue holds before new ones are dropped.
    pub capacity: usize,
    /// Records per write.
    pub batch: usize,
    /// Longest wait for a batch to fill.
    pub interval: Duration,
    /// Directory of spill files for batches the database cannot take (`None`: keep retrying).
    pub spill_dir: Option<PathBuf>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            capacity: 65_536,
            batch: 2_048,
            interval: Duration::from_millis(25),
            spill_dir: None,
        }
    }
}

/// Failed writes of a batch before it is spilled.
const TRIES_BEFORE_SPILL: u32 = 3;
/// Failed writes of a batch at shutdown before it is given up (and counted as dropped): about
/// 6 s of backoff, short of the usual 10–30 s a supervisor waits after SIGTERM before it kills.
const TRIES_AT_SHUTDOWN: u32 = 8;
/// The first wait before spilled records are tried again after a failed replay (doubling to
/// [`REPLAY_MAX_WAIT`]).
const REPLAY_WAIT: Duration = Duration::from_secs(1);
/// The longest wait between replay tries.
const REPLAY_MAX_WAIT: Duration = Duration::from_secs(30);
/// Spilled records written back per turn of the writer, in batches: live records go in between.
const REPLAY_BATCHES_PER_TURN: usize = 4;

/// What the writer has done.
#[derive(Debug, Default)]
pub struct LedgerStats {
    /// Records written.
    pub written: AtomicU64,
    /// Batches written (each one transaction).
    pub batches: AtomicU64,
    /// Records dropped: the queue was full (should never happen), or a batch was given up at
    /// shutdown while the database refused it.
    pub dropped: AtomicU64,
    /// Of `dropped`, the records that had been queued (given up at shutdown).
    pub given_up: AtomicU64,
    /// The writer has stopped: nothing queued now will be written.
    pub stopped: AtomicBool,
    /// Records accepted onto the queue.
    pub queued: AtomicU64,
    /// Failed batch writes (retried; spilled after a few, when a spill directory is set).
    pub failed_writes: AtomicU64,
    /// Records appended to the spill file.
    pub spilled: AtomicU64,
    /// Spilled records (of this process or a previous one) written back to the database.
    pub replayed: AtomicU64,
    /// The last try to write a batch failed and the batch is still in memory (neither in the
    /// database nor in a spill file): the gateway is not ready while this holds (`/readyz`).
    pub stalled: AtomicBool,
    /// Passes over the spill files (each a try to write spilled records back, whether or not
    /// it found any or succeeded).
    pub replay_passes: AtomicU64,
    /// Told after every change the writer makes to these counters (see [`Ledger::until`]).
    progress: Progress,
}

impl LedgerStats {
    /// Records accepted but neither written, spilled nor given up yet (in memory).
    pub fn pending(&self) -> u64 {
        self.queued.load(Ordering::Relaxed).saturating_sub(
            self.written.load(Ordering::Relaxed)
                + self.spilled.load(Ordering::Relaxed)
                + self.given_up.load(Ordering::Relaxed),
        )
    }
}

/// Told when the writer has ended.
type DoneTx = tokio::sync::oneshot::Sender<()>;

/// How the server's writer gets a thread of its own and a runtime on it (tests make either fail).
struct OwnThread {
    spawn: fn(Box<dyn FnOnce() + Send>) -> std::io::Result<()>,
    runtime: fn() -> std::io::Result<tokio::runtime::Runtime>,
}

/// The ledger writer.
#[derive(Debug)]
pub struct Ledger {
    tx: mpsc::Sender<RequestRecord>,
    stats: Arc<LedgerStats>,
    /// Ends the writer's wait for a batch to fill (see [`Ledger::settled`]).
    flush: Arc<tokio::sync::Notify>,
    stop: watch::Sender<bool>,
    /// Told when the writer has ended (its thread or task).
    done: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

impl Ledger {
    /// Starts the writer as a task on the current runtime (tests and tools: on a current-thread
    /// runtime it runs only when the caller waits, so what it has seen is known).
    pub fn start(store: Store, cfg: LedgerConfig) -> Ledger {
        Self::launch(store, cfg, None)
    }

    /// Starts the writer on a thread of its own (the server; see the crate's documentation);
    /// where no thread or no runtime for it can be had, as a task on the current runtime. Called
    /// within a Tokio runtime (as [`Ledger::start`]).
    pub fn start_on_thread(store: Store, cfg: LedgerConfig) -> Ledger {
        Self::launch(
            store,
            cfg,
            Some(OwnThread {
                spawn: |body| {
                    std::thread::Builder::new()
                        .name("tollgate-ledger".into())
                        .spawn(body)
                        .map(drop)
                },
                runtime: || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                },
            }),
        )
    }

    fn launch(store: Store, cfg: LedgerConfig, own_thread: Option<OwnThread>) -> Ledger {
        let (tx, rx) = mpsc::channel(cfg.capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(LedgerStats::default());
        let spill = cfg.spill_dir.clone().map(Spill::new);
        let flush = Arc::new(tokio::sync::Notify::new());
        let writer = write_loop(
            store,
            cfg,
            rx,
            stop_rx,
            (stats.clone(), flush.clone()),
            spill,
        );
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let here = tokio::runtime::Handle::current();
        let on_runtime = |handle: &tokio::runtime::Handle, writer: _, done_tx: DoneTx| {
            handle.spawn(async move {
                writer.await;
                let _ = done_tx.send(());
            });
        };
        match own_thread {
            None => on_runtime(&here, writer, done_tx),
            Some(own) => {
                // The writer waits in a slot until its thread has a runtime to run it: a spawn
                // that fails drops only the thread's body, and the writer goes to this runtime
                // instead. The thread's runtime is built, run and dropped on that thread (a
                // runtime dropped in async context panics).
                let slot = Arc::new(std::sync::Mutex::new(Some((writer, done_tx))));
                let take = |slot: &std::sync::Mutex<Option<_>>| slot.lock().ok()?.take();
                let body = {
                    let (slot, here) = (slot.clone(), here.clone());
                    move || {
                        let Some((writer, done_tx)) = take(&slot) else {
                            return;
                        };
                        match (own.runtime)() {
                            Ok(rt) => {
                                rt.block_on(writer);
                                let _ = done_tx.send(());
                            }
                            Err(e) => {
                                tracing::warn!(
                                    error = %e,
                                    "no runtime for the ledger writer's thread: it runs on the request path's workers"
                                );
                                on_runtime(&here, writer, done_tx);
                            }
                        }
                    }
                };
                if let Err(e) = (own.spawn)(Box::new(body)) {
                    tracing::warn!(
                        error = %e,
                        "no thread for the ledger writer: it runs on the request path's workers"
                    );
                    if let Some((writer, done_tx)) = take(&slot) {
                        on_runtime(&here, writer, done_tx);
                    }
                }
            }
        }
        Ledger {
            tx,
            stats,
            flush,
            stop,
            done: Mutex::new(Some(done)),
        }
    }

    /// Queues a record; never waits.
    pub fn record(&self, r: RequestRecord) {
        // Counted before it can be written, so `settled` never sees it written but not queued.
        self.stats.queued.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(r) {
            Ok(()) => {}
            Err(_) => {
                self.stats.queued.fetch_sub(1, Ordering::AcqRel);
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

    /// Returns once at least `n` records have been written to the store (an event to wait on,
    /// for tests and tools, instead of polling the database).
    pub async fn written_at_least(&self, n: u64) {
        self.until(|s| s.written.load(Ordering::Acquire) >= n).await;
    }

    /// Returns once `holds` is true of the writer's counters, checked now and after each change
    /// the writer makes (records written, spilled, replayed or dropped at shutdown, a failed
    /// write, the stall flag, a pass over the spill files). Records queued are not an event.
    pub async fn until(&self, holds: impl Fn(&LedgerStats) -> bool) {
        self.stats.progress.until(|| holds(&self.stats)).await;
    }

    /// Returns once every record queued before the call is settled — written, spilled or given
    /// up — or the writer fails a write (the database is in trouble: what is stored is all there
    /// is for now). The writer does not wait for its batch to fill. Reports call this first, so
    /// a report asked right after a request includes it.
    pub async fn settled(&self) {
        let queued = self.stats.queued.load(Ordering::Acquire);
        let failed = self.stats.failed_writes.load(Ordering::Relaxed);
        self.flush.notify_one();
        self.until(|s| {
            s.written.load(Ordering::Acquire)
                + s.spilled.load(Ordering::Relaxed)
                + s.given_up.load(Ordering::Relaxed)
                >= queued
                || s.failed_writes.load(Ordering::Relaxed) > failed
                || s.stalled.load(Ordering::Relaxed)
                || s.stopped.load(Ordering::Relaxed)
        })
        .await;
    }

    /// The writer's counters.
    pub fn stats(&self) -> &LedgerStats {
        &self.stats
    }

    /// Writes everything queued, then stops the writer. Records queued after this are dropped.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(done) = self.done.lock().await.take() {
            let _ = done.await;
        }
    }
}

/// The writer's state: the store, its counters, and the spill with its replay schedule.
struct Writer {
    store: Store,
    stats: Arc<LedgerStats>,
    spill: Option<Spill>,
    /// Spilled records may be waiting (ours, or files left by an earlier process).
    replay_due: bool,
    /// Not before this instant (after a failed replay).
    next_replay: tokio::time::Instant,
    /// The wait after the next failed replay.
    replay_wait: Duration,
    /// The last write failed into the spill file and none has reached the database since: the
    /// next batch goes to the file after one failed try, not [`TRIES_BEFORE_SPILL`] — in an
    /// outage the writer keeps up with the traffic instead of backing off on every batch.
    spilling: bool,
    /// Set by [`Ledger::shutdown`]: a batch being retried then is retried only a bounded number
    /// of times (it was retried forever, and shutdown hung while the database was down).
    stop: watch::Receiver<bool>,
}

async fn write_loop(
    store: Store,
    cfg: LedgerConfig,
    mut rx: mpsc::Receiver<RequestRecord>,
    mut stop: watch::Receiver<bool>,
    (stats, flush): (Arc<LedgerStats>, Arc<tokio::sync::Notify>),
    spill: Option<Spill>,
) {
    let mut w = Writer {
        replay_due: spill.is_some(),
        store,
        stats,
        spill,
        next_replay: tokio::time::Instant::now(),
        replay_wait: REPLAY_WAIT,
        spilling: false,
        stop: stop.clone(),
    };
    let mut buf: Vec<RequestRecord> = Vec::with_capacity(cfg.batch);
    // Whatever ends the loop, waiters learn that nothing more will be written.
    struct Stopped(Arc<LedgerStats>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.stopped.store(true, Ordering::Relaxed);
            self.0.progress.changed();
        }
    }
    let _stopped = Stopped(w.stats.clone());
    loop {
        let stopping = *stop.borrow();
        if stopping {
            // Nothing is taken after this: a record arriving now is refused (and counted as
            // dropped), not queued where no one would write it.
            rx.close();
            while let Ok(r) = rx.try_recv() {
                buf.push(r);
                if buf.len() >= cfg.batch {
                    w.flush(&mut buf, true).await;
                }
            }
            w.flush(&mut buf, true).await;
            // What is left in spill files is written back at the next start.
            w.replay(cfg.batch).await;
            return;
        }
        let replay_at = w.next_replay;
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) => buf.push(r),
                None => {
                    w.flush(&mut buf, true).await;
                    return;
                }
            },
            _ = stop.changed() => continue,
            _ = tokio::time::sleep_until(replay_at), if w.replay_due => {
                w.replay(cfg.batch).await;
                continue;
            }
        }
        // The rest of the batch gathers in the queue for `interval` (unless a full batch is
        // already there): the writer sleeps once instead of waking for every record, which on a
        // busy gateway was a task wake-up and a timer per request.
        if rx.len() + buf.len() < cfg.batch {
            tokio::select! {
                () = tokio::time::sleep(cfg.interval) => {}
                _ = stop.changed() => {}
                // Someone waits for what is queued now (a report).
                () = flush.notified() => {}
            }
        }
        let room = cfg.batch.saturating_sub(buf.len());
        // (`recv_many` waits when the queue is empty; it returns at once when it is not.)
        if room > 0 && !rx.is_empty() {
            rx.recv_many(&mut buf, room).await;
        }
        if w.flush(&mut buf, false).await {
            w.replay(cfg.batch).await;
        }
    }
}

impl Writer {
    /// Writes back a slice of the spilled records if any may be waiting and their time has come;
    /// after a failure, waits longer before the next try.
    async fn replay(&mut self, batch: usize) {
        let now = tokio::time::Instant::now();
        if !self.replay_due || now < self.next_replay {
            return;
        }
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        let (done, result) = spill
            .replay(&self.store, batch, batch * REPLAY_BATCHES_PER_TURN)
            .await;
        // What reached the database is counted and logged even when the pass then failed (a
        // file that cannot be deleted): spilled = replayed once the backlog is empty.
        self.stats
            .replayed
            .fetch_add(done.written, Ordering::Relaxed);
        self.stats.replay_passes.fetch_add(1, Ordering::Relaxed);
        self.stats.progress.changed();
        if done.written + done.already + done.unreadable + done.retired > 0 {
            tracing::info!(
                written = done.written,
                already_stored = done.already,
                unreadable = done.unreadable,
                files_done = done.retired,
                "spilled request records written back to the ledger"
            );
        }
        if done.unreadable > 0 {
            tracing::error!(
                lines = done.unreadable,
                "spill file lines that could not be read were kept beside it as *.unreadable"
            );
        }
        match result {
            Ok(()) => {
                self.spilling = false;
                self.replay_due = !done.finished;
                self.next_replay = now;
                self.replay_wait = REPLAY_WAIT;
            }
            Err(e) => {
                self.next_replay = now + self.replay_wait;
                tracing::warn!(error = %e, retry_in_s = self.replay_wait.as_secs(), "cannot write spilled request records back yet");
                self.replay_wait = (self.replay_wait * 2).min(REPLAY_MAX_WAIT);
            }
        }
    }

    /// Appends `buf` to the spill file (when there is one); whether it went there.
    fn spill_batch(&mut self, buf: &mut Vec<RequestRecord>) -> bool {
        let Some(spill) = self.spill.as_mut() else {
            return false;
        };
        if let Err(e) = spill.append(buf) {
            // Once per outage: while stalled, the writer tries again every few seconds.
            if !self.stats.stalled.load(Ordering::Relaxed) {
                tracing::error!(error = %e, "cannot write the ledger spill file either; retrying the database");
            }
            return false;
        }
        let n = buf.len() as u64;
        let before = self.stats.spilled.fetch_add(n, Ordering::Relaxed);
        if before == 0 || (before + n).ilog2() != before.ilog2() {
            tracing::warn!(
                spilled = before + n,
                "the database cannot take request records: spilling them to a local file until it can"
            );
        }
        self.replay_due = true;
        self.spilling = true;
        self.stats.stalled.store(false, Ordering::Relaxed);
        self.stats.progress.changed();
        // The database just failed: give it a moment before replaying.
        self.next_replay = tokio::time::Instant::now() + REPLAY_WAIT;
        buf.clear();
        true
    }

    /// Writes `buf`; returns whether it reached the database. After a few failed tries the batch
    /// goes to the spill file; without one (or if the file cannot be written) it is retried with
    /// backoff until it succeeds (at shutdown: [`TRIES_AT_SHUTDOWN`] tries, then counted as dropped
    /// and logged).
    async fn flush(&mut self, buf: &mut Vec<RequestRecord>, stopping: bool) -> bool {
        if buf.is_empty() {
            return false;
        }
        let mut wait = Duration::from_millis(50);
        for attempt in 1.. {
            let stats = &self.stats;
            match self.store.insert_records(buf).await {
                Ok(()) => {
                    self.spilling = false;
                    if stats.stalled.swap(false, Ordering::Relaxed) {
                        tracing::info!(attempt, "request records reach the database again");
                    }
                    stats.batches.fetch_add(1, Ordering::Relaxed);
                    stats.written.fetch_add(buf.len() as u64, Ordering::Release);
                    stats.progress.changed();
                    buf.clear();
                    return true;
                }
                Err(e) => {
                    stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                    stats.progress.changed();
                    if attempt == 1 || attempt % 20 == 0 {
                        tracing::warn!(error = %e, records = buf.len(), attempt, "cannot write request records; retrying");
                    }
                    let tries = if self.spilling { 1 } else { TRIES_BEFORE_SPILL };
                    if attempt >= tries {
                        if self.spill_batch(buf) {
                            return false;
                        }
                        if !self.stats.stalled.swap(true, Ordering::Relaxed) {
                            self.stats.progress.changed();
                            tracing::error!(
                                pending = self.stats.pending(),
                                error = %e,
                                "request records can be written neither to the database nor to a spill file: they are held in memory, and the gateway reports not ready until they can"
                            );
                        }
                    }
                    if (stopping || *self.stop.borrow()) && attempt >= TRIES_AT_SHUTDOWN {
                        self.stats
                            .dropped
                            .fetch_add(buf.len() as u64, Ordering::Relaxed);
                        self.stats
                            .given_up
                            .fetch_add(buf.len() as u64, Ordering::Relaxed);
                        self.stats.progress.changed();
                        tracing::error!(
                            records = buf.len(),
                            error = %e,
                            "giving up on request records at shutdown: they are lost"
                        );
                        buf.clear();
                        return false;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_store::LedgerQueries;

    /// Where the server's writer gets no thread, or its thread no runtime, the writer runs as a
    /// task on the caller's runtime: it writes, and shutdown ends it (review 12-04: a failed spawn
    /// dropped a runtime in async context, a panic at start).
    #[tokio::test(flavor = "current_thread")]
    async fn without_a_thread_or_a_runtime_for_it_the_writer_runs_here() {
        let cases = [
            (
                "no thread",
                OwnThread {
                    spawn: |_| Err(std::io::Error::other("refused by the test")),
                    runtime: || panic!("no thread: no runtime is built"),
                },
            ),
            (
                "no runtime",
                OwnThread {
                    spawn: |body| std::thread::Builder::new().spawn(body).map(drop),
                    runtime: || Err(std::io::Error::other("refused by the test")),
                },
            ),
        ];
        for (what, own) in cases {
            let dir = std::env::temp_dir()
                .join(format!("tollgate-fallback-{}", tollgate_store::new_id("t")));
            let store = Store::open(&dir.join("ledger.db")).await.unwrap();
            let ledger = Ledger::launch(
                store.clone(),
                LedgerConfig {
                    batch: 1,
                    ..Default::default()
                },
                Some(own),
            );
            ledger.record(RequestRecord {
                id: tollgate_store::new_id("rec"),
                request_id: "req_0".into(),
                at: tollgate_store::now_ms(),
                ..Default::default()
            });
            let stuck = Duration::from_secs(60);
            tokio::time::timeout(stuck, ledger.written_at_least(1))
                .await
                .unwrap_or_else(|_| panic!("{what}: nothing written after {stuck:?}"));
            tokio::time::timeout(stuck, ledger.shutdown())
                .await
                .unwrap_or_else(|_| panic!("{what}: no shutdown after {stuck:?}"));
            assert_eq!(store.count_records(0, i64::MAX).await.unwrap(), 1, "{what}");
        }
    }

    /// Spilled records written back while their file cannot be deleted are counted then (they
    /// are in the database), and the file is deleted later without writing them again: once
    /// the backlog is empty, replayed = spilled (attack 12-02 A11).
    #[tokio::test(flavor = "current_thread")]
    async fn records_replayed_before_their_file_could_be_deleted_are_counted() {
        let dir =
            std::env::temp_dir().join(format!("tollgate-retire-{}", tollgate_store::new_id("t")));
        let store = Store::open(&dir.join("ledger.db")).await.unwrap();
        let spill_dir = dir.join("spill");
        // A file an earlier process left: three records.
        let records: Vec<RequestRecord> = (0..3)
            .map(|i| RequestRecord {
                id: tollgate_store::new_id("rec"),
                request_id: format!("req_{i}"),
                at: tollgate_store::now_ms(),
                ..Default::default()
            })
            .collect();
        let mut earlier = Spill::new(spill_dir.clone());
        earlier.append(&records).unwrap();
        drop(earlier);

        *spill::tests::REFUSE_RETIRE.lock().unwrap() = Some(spill_dir.clone());
        let ledger = Ledger::start(
            store.clone(),
            LedgerConfig {
                spill_dir: Some(spill_dir.clone()),
                ..Default::default()
            },
        );
        ledger
            .until(|s| s.replay_passes.load(Ordering::Relaxed) >= 1)
            .await;
        assert_eq!(store.count_records(0, i64::MAX).await.unwrap(), 3);
        assert_eq!(ledger.stats().replayed.load(Ordering::Relaxed), 3);
        let files = || std::fs::read_dir(&spill_dir).unwrap().count();
        assert_eq!(files(), 1, "the file could not be deleted");

        // Deletable again: the next pass (after the backoff) deletes it, writing nothing twice.
        *spill::tests::REFUSE_RETIRE.lock().unwrap() = None;
        ledger
            .until(|s| s.replay_passes.load(Ordering::Relaxed) >= 2)
            .await;
        assert_eq!(files(), 0);
        assert_eq!(ledger.stats().replayed.load(Ordering::Relaxed), 3);
        assert_eq!(store.count_records(0, i64::MAX).await.unwrap(), 3);
        ledger.shutdown().await;
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
