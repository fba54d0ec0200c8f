//! SLOs per use case: each recorded request of a use case with an SLO is counted into its
//! 5-minute window (by arrival, on the gateway's clock) — requests, 5xx answers, and requests slower
//! than the latency target (streams: time to first token). A window closes
//! [`CLOSE_AFTER_MS`] after it ends (time for its slowest requests to be recorded), is judged
//! ([`tollgate_store::SloWindow::met`]) and written to the store, where the KPI engine reads SLO
//! attainment (KPI 13). Records that come later still are added to their stored window.
//!
//! **Burn alerts** (kind `slo_burn`, through the alert channel: the log and the webhooks): when a
//! window closes, the windows of the last hour with traffic are counted; if the share that missed
//! burns the error budget (1 − objective) at least [`FAST_BURN`] times too fast — the "fast burn"
//! of the SRE workbook: a month's budget gone in two days — an alert names the use case, the
//! windows missed, and what the latest window measured. At most one per use case per hour.
//!
//! Windows are per gateway instance; the store adds the counts of instances serving the same use
//! case, so attainment is judged on their sum. Alerts are raised by the instance that saw the
//! burn.

use crate::alerts::{Alert, Alerter};
use crate::auth::KeyEntry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tollgate_store::{SLO_WINDOW_MS, Slo, SloQueries, SloWindow, Store};
use tollgate_types::clock::Clock;

/// How long after its end a window is closed.
pub const CLOSE_AFTER_MS: i64 = 60_000;

/// The burn rate (times the sustainable one) that raises an alert.
pub const FAST_BURN: f64 = 14.4;

/// The look-back of the burn rate.
const BURN_WINDOW_MS: i64 = 60 * 60_000;

/// One use case's windows still open, and the verdicts of its last hour.
#[derive(Debug, Default)]
struct UseCaseSlo {
    pod_id: String,
    name: String,
    slo: Slo,
    open: BTreeMap<i64, Counts>,
    recent: VecDeque<(i64, bool)>,
    last_alert: Option<i64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    errors: u64,
    slow: u64,
}

/// The SLO windows of every use case with an SLO.
#[derive(Debug)]
pub struct SloTracker {
    state: Mutex<HashMap<String, UseCaseSlo>>,
    /// Closed windows and late additions not written yet.
    pending: Arc<Mutex<Vec<SloWindow>>>,
    store: Store,
    alerts: Arc<Alerter>,
    clock: Clock,
}

impl SloTracker {
    /// A tracker writing windows to `store` and alerting through `alerts`.
    pub fn new(store: Store, alerts: Arc<Alerter>, clock: Clock) -> SloTracker {
        SloTracker {
            state: Mutex::new(HashMap::new()),
            pending: Arc::default(),
            store,
            alerts,
            clock,
        }
    }

    /// Counts a recorded request of `caller`'s use case, which arrived at `at_ms`, took
    /// `latency_ms` (streams: to the first token) and was answered `status`.
    pub fn record(&self, caller: &KeyEntry, at_ms: i64, latency_ms: u64, status: u16) {
        if !caller.slo.is_set() {
            return;
        }
        let now = self.clock.now_ms();
        let start = at_ms - at_ms.rem_euclid(SLO_WINDOW_MS);
        let slow = caller
            .slo
            .latency_p95_ms
            .is_some_and(|t| latency_ms > u64::from(t));
        let add = Counts {
            requests: 1,
            errors: u64::from(status >= 500),
            slow: u64::from(slow),
        };
        let (closed, late) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let uc = state.entry(caller.use_case_id.clone()).or_default();
            uc.slo = caller.slo;
            uc.pod_id.clone_from(&caller.pod_id);
            uc.name.clone_from(&caller.use_case_name);
            let late = if start + SLO_WINDOW_MS + CLOSE_AFTER_MS <= now {
                // Its window is closed: the store adds it to what was written.
                Some(window(&caller.use_case_id, uc, start, add))
            } else {
                let c = uc.open.entry(start).or_default();
                c.requests += add.requests;
                c.errors += add.errors;
                c.slow += add.slow;
                None
            };
            (close_due(&caller.use_case_id, uc, now), late)
        };
        if self.finish(closed, late.into_iter().collect()) {
            // Written off the request path.
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                let (store, pending) = (self.store.clone(), self.pending.clone());
                h.spawn(async move { write_pending(&store, &pending).await });
            }
        }
    }

    /// Closes every window due by now and writes what is pending (called every few seconds, so
    /// a window closes even when no request follows it).
    pub async fn tick(&self) {
        let now = self.clock.now_ms();
        let closed: Vec<Closed> = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state
                .iter_mut()
                .flat_map(|(id, uc)| close_due(id, uc, now))
                .collect()
        };
        self.finish(closed, Vec::new());
        write_pending(&self.store, &self.pending).await;
    }

    /// Writes every open window as it stands, without judging it (shutdown: a restarted instance
    /// adds to the same rows).
    pub async fn flush(&self) {
        let windows: Vec<SloWindow> = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state
                .iter_mut()
                .flat_map(|(id, uc)| {
                    std::mem::take(&mut uc.open)
                        .into_iter()
                        .map(|(start, c)| window(id, uc, start, c))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(windows);
        write_pending(&self.store, &self.pending).await;
    }

    /// Raises the closed windows' burn alerts and queues them (and late additions) for the
    /// store; whether anything was queued.
    fn finish(&self, closed: Vec<Closed>, late: Vec<SloWindow>) -> bool {
        if closed.is_empty() && late.is_empty() {
            return false;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend(late);
        for c in closed {
            if let Some(alert) = c.alert {
                self.alerts.raise(alert);
            }
            pending.push(c.window);
        }
        true
    }
}

/// Writes the pending windows; on failure they stay pending for the next try.
async fn write_pending(store: &Store, pending: &Mutex<Vec<SloWindow>>) {
    let batch = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.add_slo_windows(&batch).await {
        tracing::warn!(error = %e, windows = batch.len(), "cannot write SLO windows; retrying with the next tick");
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(batch);
    }
}

/// A window that closed, and the alert it raised.
#[derive(Debug)]
struct Closed {
    window: SloWindow,
    alert: Option<Alert>,
}

fn window(id: &str, uc: &UseCaseSlo, start: i64, c: Counts) -> SloWindow {
    SloWindow {
        use_case_id: id.to_string(),
        pod_id: uc.pod_id.clone(),
        start,
        requests: c.requests,
        errors: c.errors,
        slow: c.slow,
        latency_target_ms: uc.slo.latency_p95_ms,
        max_error_ppm: uc.slo.max_error_ppm(),
    }
}

/// Closes `uc`'s windows due at `now`: judges each, keeps the verdicts of the last hour, and
/// decides on a burn alert.
fn close_due(id: &str, uc: &mut UseCaseSlo, now: i64) -> Vec<Closed> {
    let due: Vec<i64> = uc
        .open
        .range(..=now - SLO_WINDOW_MS - CLOSE_AFTER_MS)
        .map(|(s, _)| *s)
        .collect();
    let mut out = Vec::with_capacity(due.len());
    for start in due {
        let Some(c) = uc.open.remove(&start) else {
            continue;
        };
        let w = window(id, uc, start, c);
        let met = w.met();
        uc.recent.push_back((start, met));
        while uc
            .recent
            .front()
            .is_some_and(|(s, _)| *s <= start - BURN_WINDOW_MS)
        {
            uc.recent.pop_front();
        }
        let total = uc.recent.len() as u64;
        let missed = uc.recent.iter().filter(|(_, m)| !m).count() as u64;
        let budget = 1.0 - uc.slo.objective() / 100.0;
        let burn = (missed as f64 / total.max(1) as f64) / budget;
        let quiet = uc.last_alert.is_none_or(|t| start - t >= BURN_WINDOW_MS);
        let alert = (!met && burn >= FAST_BURN && quiet).then(|| {
            uc.last_alert = Some(start);
            burn_alert(id, uc, &w, missed, total, burn)
        });
        out.push(Closed { window: w, alert });
    }
    out
}

fn burn_alert(
    id: &str,
    uc: &UseCaseSlo,
    w: &SloWindow,
    missed: u64,
    total: u64,
    burn: f64,
) -> Alert {
    let pct = |n: u64| n as f64 * 100.0 / w.requests.max(1) as f64;
    let mut broke = Vec::new();
    if !w.latency_met()
        && let Some(t) = w.latency_target_ms
    {
        broke.push(format!(
            "{:.1} % of requests slower than {t} ms (5 % allowed)",
            pct(w.slow)
        ));
    }
    if !w.errors_met()
        && let Some(p) = uc.slo.max_error_rate_pct
    {
        broke.push(format!(
            "{:.1} % of requests failed ({p} % allowed)",
            pct(w.errors)
        ));
    }
    Alert::new(
        "slo_burn",
        format!(
            "use case `{}` is spending its SLO error budget {burn:.1}× too fast: {missed} of its last {total} 5-minute windows with traffic missed the SLO (objective {} %); the latest: {}",
            uc.name,
            uc.slo.objective(),
            broke.join(", ")
        ),
        serde_json::json!({
            "use_case_id": id,
            "pod_id": uc.pod_id,
            "window_start": tollgate_types::time::rfc3339(w.start),
            "windows": total,
            "missed": missed,
            "burn_rate": (burn * 10.0).round() / 10.0,
            "objective_pct": uc.slo.objective(),
            "requests": w.requests,
            "errors": w.errors,
            "slow": w.slow,
            "latency_p95_ms": w.latency_target_ms,
            "max_error_rate_pct": uc.slo.max_error_rate_pct,
        }),
    )
}
