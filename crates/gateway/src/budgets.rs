//! Budgets, part of step 3 (*admit*) and step 6 (*measure*): a limit in money per period on a key,
//! a use case, a pod or the org.
//!
//! **One comparison rule for every level:** a request is admitted against a hard budget only if
//! `spent + reserved + this request's maximum cost <= amount`. The maximum cost is the prompt
//! (counted with the tokenizer) plus the output cap, at the most expensive deployment the route
//! can fall back to. It is reserved before the call and settled with the real cost after it (or
//! released, on an error). Soft budgets never reject; crossing 50 %, 80 % and 100 % of any budget
//! logs a warning and counts `tollgate_budget_alerts` (by threshold). Spend in the current period is loaded
//! from the ledger when budgets are (re)loaded, so a restart does not forget it; in-flight counting
//! is per process (shared counters come with the Redis issue).

use crate::auth::KeyEntry;
use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tollgate_meter::period::{Period, bounds};
use tollgate_store::{Budget, BudgetQueries, Store, StoreError};
use tollgate_types::clock::Clock;

const THRESHOLDS: [u64; 3] = [50, 80, 100];

#[derive(Debug)]
struct State {
    budget: Budget,
    period: Period,
    start: i64,
    end: i64,
    spent: u64,
    reserved: u64,
    /// Thresholds already alerted in this period (bits of `THRESHOLDS`).
    alerted: u8,
}

impl State {
    /// Keeps the in-memory counts of `old`, the same budget in the same period: its reservations,
    /// its alerts, and spend not yet in the ledger.
    fn keep_counts_of(&mut self, old: Option<&State>) {
        if let Some(old) = old.filter(|o| o.start == self.start) {
            self.spent = self.spent.max(old.spent);
            self.reserved = old.reserved;
            self.alerted = old.alerted;
        }
    }

    fn roll(&mut self, now: i64) {
        if now >= self.end
            && let Ok((start, end)) = bounds(self.period, &self.budget.time_zone, now)
        {
            (
                self.start,
                self.end,
                self.spent,
                self.reserved,
                self.alerted,
            ) = (start, end, 0, 0, 0);
        }
    }

    fn applies(&self, e: &KeyEntry) -> bool {
        match self.budget.scope.as_str() {
            "key" => self.budget.scope_id == e.key_id,
            // A use case's production budgets and its eval budget split its traffic by key.
            "use_case" => self.budget.scope_id == e.use_case_id && !e.evaluation,
            "use_case_eval" => self.budget.scope_id == e.use_case_id && e.evaluation,
            "pod" => self.budget.scope_id == e.pod_id,
            "org" => true,
            _ => false,
        }
    }
}

/// Where a budget stands now (the type lives in the store, where the control plane reads it).
pub use tollgate_store::BudgetStatus as Status;

/// Every budget's state.
#[derive(Debug)]
pub struct Budgeter {
    store: Store,
    clock: Clock,
    alerter: Arc<crate::alerts::Alerter>,
    states: Mutex<HashMap<String, State>>,
    alerts: Mutex<Vec<(String, u64)>>,
    /// Whether budgets have been read from the store at least once. Until then every request is
    /// refused (503): a budget that cannot be read must never mean no budget.
    loaded: std::sync::atomic::AtomicBool,
}

/// A request's reservation against its budgets.
#[derive(Debug)]
pub struct BudgetHold {
    budgeter: Arc<Budgeter>,
    held: Vec<(String, i64)>,
    amount: u64,
    settled: bool,
}

impl Budgeter {
    /// A budgeter over `store`, empty until [`Budgeter::reload`].
    pub fn new(store: Store, alerter: Arc<crate::alerts::Alerter>, clock: Clock) -> Arc<Budgeter> {
        Arc::new(Budgeter {
            store,
            clock,
            alerter,
            states: Mutex::new(HashMap::new()),
            alerts: Mutex::new(Vec::new()),
            loaded: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Loads budgets and the spend of their current periods from the store. In-memory counts of a
    /// budget already known in the same period are kept (they include requests not yet written).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let budgets = self.store.list_budgets().await?;
        let mut fresh = HashMap::with_capacity(budgets.len());
        for b in budgets {
            if let Some(st) = self.load_state(b, now).await? {
                fresh.insert(st.budget.id.clone(), st);
            }
        }
        let Ok(mut states) = self.states.lock() else {
            return Ok(());
        };
        for (id, st) in fresh.iter_mut() {
            st.keep_counts_of(states.get(id));
        }
        *states = fresh;
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Loads one budget (created or changed), or forgets it (deleted): what the control plane
    /// asks for after a change, so creating a budget costs the same with 10 or 10,000 of them.
    pub async fn reload_one(&self, id: &str) -> Result<(), StoreError> {
        let b = match self.store.get_budget(id).await {
            Ok(b) => b,
            Err(StoreError::NotFound(_)) => {
                if let Ok(mut states) = self.states.lock() {
                    states.remove(id);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let Some(mut fresh) = self.load_state(b, self.clock.now_ms()).await? else {
            return Ok(());
        };
        let Ok(mut states) = self.states.lock() else {
            return Ok(());
        };
        fresh.keep_counts_of(states.get(id));
        states.insert(id.to_string(), fresh);
        Ok(())
    }

    /// A budget's state at `now`: its current period and the spend the ledger has for it
    /// (`None` for a period or time zone it cannot read).
    async fn load_state(&self, b: Budget, now: i64) -> Result<Option<State>, StoreError> {
        let Some(period) = Period::parse(&b.period) else {
            return Ok(None);
        };
        let Ok((start, end)) = bounds(period, &b.time_zone, now) else {
            return Ok(None);
        };
        let spent = self.store.spend_since(&b.scope, &b.scope_id, start).await?;
        Ok(Some(State {
            budget: b,
            period,
            start,
            end,
            spent,
            reserved: 0,
            alerted: 0,
        }))
    }

    /// Whether any budget applies to `e` (so its maximum cost must be computed).
    pub fn applies_to(&self, e: &KeyEntry) -> bool {
        if !self.loaded.load(std::sync::atomic::Ordering::Acquire) {
            return true;
        }
        self.states
            .lock()
            .map(|s| s.values().any(|st| st.applies(e)))
            .unwrap_or(false)
    }

    /// Reserves `max_cost` on every budget of `e`, or rejects with 429 `budget_exceeded` if a hard
    /// budget would be passed.
    pub fn reserve(
        self: &Arc<Self>,
        e: &KeyEntry,
        max_cost: u64,
    ) -> Result<Option<BudgetHold>, ApiError> {
        if !self.loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ApiError::Unavailable(
                "budgets could not be read from the store yet; requests are refused until they can be",
            ));
        }
        let now = self.clock.now_ms();
        let mut states = self.states.lock().map_err(|_| ApiError::Internal)?;
        let mut held = Vec::new();
        for st in states.values_mut().filter(|st| st.applies(e)) {
            st.roll(now);
            if st.budget.mode == "hard"
                && st
                    .spent
                    .saturating_add(st.reserved)
                    .saturating_add(max_cost)
                    > st.budget.amount_nano_usd
            {
                return Err(ApiError::RateLimited {
                    message: format!(
                        "budget exceeded: the {} budget {} of this {} allows {} per {}; {} is spent or reserved and this request may cost up to {}",
                        st.budget.mode,
                        st.budget.id,
                        st.budget.scope.replace('_', " "),
                        tollgate_meter::Money(st.budget.amount_nano_usd),
                        st.budget.period,
                        tollgate_meter::Money(st.spent + st.reserved),
                        tollgate_meter::Money(max_cost)
                    ),
                    code: "budget_exceeded",
                    retry_after: (st.end != i64::MAX).then(|| {
                        std::time::Duration::from_millis(u64::try_from(st.end - now).unwrap_or(0))
                    }),
                    limit: None,
                });
            }
            held.push((st.budget.id.clone(), st.start));
        }
        if held.is_empty() {
            return Ok(None);
        }
        for (id, _) in &held {
            if let Some(st) = states.get_mut(id) {
                st.reserved = st.reserved.saturating_add(max_cost);
            }
        }
        Ok(Some(BudgetHold {
            budgeter: self.clone(),
            held,
            amount: max_cost,
            settled: false,
        }))
    }

    fn finish(&self, hold: &BudgetHold, cost: u64) {
        let Ok(mut states) = self.states.lock() else {
            return;
        };
        for (id, start) in &hold.held {
            let Some(st) = states.get_mut(id) else {
                continue;
            };
            if st.start == *start {
                st.reserved = st.reserved.saturating_sub(hold.amount);
            }
            st.spent = st.spent.saturating_add(cost);
            if let Some(pct) = st
                .spent
                .saturating_mul(100)
                .checked_div(st.budget.amount_nano_usd)
            {
                for (i, t) in THRESHOLDS.iter().enumerate() {
                    if pct >= *t && st.alerted & (1 << i) == 0 {
                        st.alerted |= 1 << i;
                        self.alerter.raise(crate::alerts::Alert::new(
                            "budget_threshold",
                            format!(
                                "{} budget {} of {} passed {t} % of {} per {}: {} spent",
                                st.budget.mode,
                                st.budget.id,
                                whose(&st.budget),
                                tollgate_meter::Money(st.budget.amount_nano_usd),
                                st.budget.period,
                                tollgate_meter::Money(st.spent)
                            ),
                            serde_json::json!({
                                "budget_id": st.budget.id, "scope": st.budget.scope, "scope_id": st.budget.scope_id,
                                "mode": st.budget.mode, "period": st.budget.period, "threshold_percent": t,
                                "amount_nano_usd": st.budget.amount_nano_usd, "spent_nano_usd": st.spent,
                            }),
                        ));
                        if let Ok(mut a) = self.alerts.lock() {
                            a.push((st.budget.id.clone(), *t));
                        }
                    }
                }
            }
        }
    }

    /// Alerts raised so far: (budget id, threshold %).
    pub fn alerts(&self) -> Vec<(String, u64)> {
        self.alerts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Where every budget stands.
    pub fn statuses(&self) -> Vec<Status> {
        let now = self.clock.now_ms();
        let Ok(mut states) = self.states.lock() else {
            return Vec::new();
        };
        let mut out: Vec<Status> = states
            .values_mut()
            .map(|st| {
                st.roll(now);
                Status {
                    budget: st.budget.clone(),
                    period_start: st.start,
                    period_end: st.end,
                    spent_nano_usd: st.spent,
                    reserved_nano_usd: st.reserved,
                }
            })
            .collect();
        out.sort_by(|a, b| a.budget.id.cmp(&b.budget.id));
        out
    }
}

impl BudgetHold {
    /// Settles with the real cost.
    pub fn settle(mut self, cost: u64) {
        self.budgeter.finish(&self, cost);
        self.settled = true;
    }
}

impl Drop for BudgetHold {
    fn drop(&mut self) {
        if !self.settled {
            self.budgeter.finish(self, 0);
        }
    }
}

/// What a budget covers, for its alerts: `the org`, or its scope and id (`use case uc_…`).
fn whose(b: &Budget) -> String {
    if b.scope == "org" || b.scope_id.is_empty() {
        "the org".to_string()
    } else {
        format!("{} {}", b.scope.replace('_', " "), b.scope_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An alert names what the budget covers once: `the org`, or its scope and id.
    #[test]
    fn an_alert_names_what_the_budget_covers() {
        let b = |scope: &str, id: &str| Budget {
            id: "bud_1".into(),
            scope: scope.into(),
            scope_id: id.into(),
            period: "month".into(),
            time_zone: "UTC".into(),
            amount_nano_usd: 1,
            mode: "hard".into(),
            created_at: 0,
            created_by: "t".into(),
        };
        assert_eq!(whose(&b("org", "")), "the org");
        assert_eq!(whose(&b("use_case", "uc_1")), "use case uc_1");
        assert_eq!(whose(&b("pod", "pod_1")), "pod pod_1");
    }
}
