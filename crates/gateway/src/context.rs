//! [`RequestContext`]: what the pipeline learns about one request as it goes, typed.
//!
//! Each step reads and writes named fields here, never untyped request extensions. The ledger (a
//! later step) turns a finished context into a request record.

use crate::auth::KeyEntry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_providers::ProviderError;

/// One upstream attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Route index in the config (the requested route or one of its fallbacks).
    pub route: usize,
    /// Deployment index within that route.
    pub deployment: usize,
    /// Provider index in the config.
    pub provider: usize,
    /// When it started, counted from the request's arrival.
    pub started: Duration,
    /// How long it took (streams: until the first chunk).
    pub took: Duration,
    /// `None` on success.
    pub error: Option<ProviderError>,
    /// The attempt's span id (sent upstream in `traceparent`); 0 when the gateway does not trace.
    pub span_id: u64,
}

/// The state of one governed request.
#[derive(Debug)]
pub struct RequestContext {
    /// `x-request-id`.
    pub request_id: String,
    /// Arrival.
    pub received: Instant,
    /// Arrival, Unix ms (for the record).
    pub received_at_ms: i64,
    /// `chat` or `embeddings`.
    pub endpoint: &'static str,
    /// `x-tollgate-user`, if sent.
    pub end_user: Option<String>,
    /// Who called: the key and its use case (set by authenticate).
    pub caller: Option<Arc<KeyEntry>>,
    /// The requested route's index (set by admit).
    pub route: Option<usize>,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// Every upstream attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Time spent waiting on upstreams.
    pub upstream_time: Duration,
    /// Time spent in backoff between attempts.
    pub backoff_time: Duration,
    /// The request's share of its rate limits (settled and released by the record).
    pub permit: Option<crate::limits::Permit>,
    /// The request's reservation against its budgets (settled by the record).
    pub budget: Option<crate::budgets::BudgetHold>,
    /// Keyed fingerprint of the request's content (for duplicate-prompt advice).
    pub prompt_hash: Option<String>,
    /// The pattern version the request was built from (`triage@3`).
    pub pattern: Option<String>,
    /// `x-tollgate-session`: the conversation whose tokens this request shares.
    pub session: Option<String>,
    /// Its keyed pseudonym (set once admitted; what the record and feedback use).
    pub session_hash: Option<String>,
    /// The request body's size in bytes (what decides whether its parsing and guarding are
    /// heavy work, see [`heavy`]).
    pub body_bytes: usize,
    /// The request's turn in the [`HeavyLane`], held from its body's parsing through its input
    /// guard when the body is heavy.
    pub heavy_turn: Option<tokio::sync::OwnedSemaphorePermit>,
    /// What the guard did (policy, whether each direction ran, counts — never values).
    pub guard: crate::shield::GuardReport,
    /// What the request stores of its content, when its policy logs it (sealed by the record).
    pub payload: Option<crate::payloads::PayloadDraft>,
    /// Its place in a trace, when the gateway traces.
    pub trace: Option<crate::traces::TraceCtx>,
}

/// Bodies from this size up are parsed and guarded as [`heavy`] work.
pub const HEAVY_BYTES: usize = 256 * 1024;

/// Runs `f` — synchronous, CPU-bound work on a request of `bytes` — without holding up the other
/// tasks of its runtime worker: from [`HEAVY_BYTES`] up, on a multi-threaded runtime, the worker
/// first hands its other tasks to another thread (`block_in_place`), so a body of millions of
/// small strings being guarded does not stall health checks and other requests. Small work, and
/// work on a current-thread runtime (tests), runs as is.
pub fn heavy<R>(bytes: usize, f: impl FnOnce() -> R) -> R {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if bytes >= HEAVY_BYTES && multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// The lane heavy requests' CPU work (a body of [`HEAVY_BYTES`] or more: parsing, the admission
/// count, the fingerprint, the input guard) takes turns in: at most one fewer at once than the
/// machine has cores (at least one). [`heavy`] keeps such work from stalling its worker's other
/// tasks, but a few maximum-size prompts at once could still take every core, and every other
/// request and health check would wait behind them; with the lane one core is always left to
/// them. A request waiting for its turn holds no core.
#[derive(Debug)]
pub struct HeavyLane {
    turns: Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    /// Told when a request starts or stops waiting for a turn.
    waiting_changed: tollgate_types::progress::Progress,
}

impl HeavyLane {
    /// A lane of `turns` at once (at least one).
    pub fn new(turns: usize) -> HeavyLane {
        HeavyLane {
            turns: Arc::new(tokio::sync::Semaphore::new(turns.max(1))),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            waiting_changed: Default::default(),
        }
    }

    /// A lane sized for this machine: its cores less one.
    pub fn for_this_machine() -> HeavyLane {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        HeavyLane::new(cores.saturating_sub(1))
    }

    /// Waits for a turn when a body of `bytes` makes the work heavy (`None`: light work, no
    /// turn needed). The turn ends when the permit is dropped.
    pub async fn enter(&self, bytes: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if bytes < HEAVY_BYTES {
            return None;
        }
        // Counted while waiting, also if the request is dropped meanwhile (its client left).
        struct Waiting<'a>(&'a HeavyLane);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0
                    .waiting
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                self.0.waiting_changed.changed();
            }
        }
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.waiting_changed.changed();
        let _counted = Waiting(self);
        // The semaphore is never closed.
        self.turns.clone().acquire_owned().await.ok()
    }

    /// How many requests wait for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Returns once `holds` is true of how many requests wait for a turn (by event).
    pub async fn until_waiting(&self, holds: impl Fn(usize) -> bool) {
        self.waiting_changed.until(|| holds(self.waiting())).await;
    }

    /// The lane's turns (tests take one to hold the lane).
    pub fn turns(&self) -> Arc<tokio::sync::Semaphore> {
        self.turns.clone()
    }
}

impl RequestContext {
    /// A context for a request that just arrived.
    pub fn new(request_id: String, received_at_ms: i64) -> Self {
        RequestContext {
            request_id,
            received: Instant::now(),
            received_at_ms,
            endpoint: "",
            end_user: None,
            caller: None,
            route: None,
            stream: false,
            attempts: Vec::new(),
            upstream_time: Duration::ZERO,
            backoff_time: Duration::ZERO,
            permit: None,
            budget: None,
            prompt_hash: None,
            pattern: None,
            session: None,
            session_hash: None,
            body_bytes: 0,
            heavy_turn: None,
            guard: Default::default(),
            payload: None,
            trace: None,
        }
    }

    /// Time the gateway itself has spent so far: elapsed minus upstream and backoff time.
    pub fn overhead(&self) -> Duration {
        self.received
            .elapsed()
            .saturating_sub(self.upstream_time)
            .saturating_sub(self.backoff_time)
    }

    /// The attempt that succeeded, if any.
    pub fn winning_attempt(&self) -> Option<&Attempt> {
        self.attempts.last().filter(|a| a.error.is_none())
    }
}
