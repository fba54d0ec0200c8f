//! The 25 KPIs, computed from the facts of one scope (a use case, a pod, the portfolio) over one
//! window.
//!
//! Every KPI says what it measures ([`Kpi::definition`]), what it was computed from
//! ([`Kpi::inputs`]) and how many events it rests on ([`Kpi::basis`]); when the data it needs is
//! not there, it is "n/a" with the reason ([`Kpi::not_available`]) and carries no values. Ratios
//! are plain numbers (0.25 is 25 %); money is exact, in nano-USD, with its USD text beside it.

use serde::Serialize;
use tollgate_meter::Money;
use tollgate_store::{LATENCY_BOUNDS_MS, OutcomeRollup, Stage};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// What one use case of the scope contributes to the portfolio KPIs (24, 25).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UseCaseFacts {
    /// `uc_…`.
    pub id: String,
    /// Its stage now.
    pub stage: Option<Stage>,
    /// When it first entered `pilot` (Unix ms), if it ever did.
    pub pilot_at: Option<i64>,
    /// When it first entered `production` (Unix ms), if it ever did.
    pub production_at: Option<i64>,
    /// Whether its value model names a primary KPI.
    pub has_kpi: bool,
    /// Whether that KPI has a baseline.
    pub has_baseline: bool,
    /// Outcome events in the 30 days before the window's end.
    pub outcomes_30d: u64,
}

/// Week-0 users and how many of them were active in week 4.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Users active in the cohort's first week.
    pub cohort: u64,
    /// Of them, active in its fifth week.
    pub retained: u64,
}

/// The budgets on a scope, in their current periods, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetBurn {
    /// Their amounts, nano-USD.
    pub amount_nano_usd: u64,
    /// Spent so far in their periods, nano-USD.
    pub spent_nano_usd: u64,
    /// Days of their periods gone by (fractional).
    pub days_elapsed: f64,
}

/// An evaluation's (passed, total) for the candidate, and for the production version if any.
pub type EvalFacts = ((u64, u64), Option<(u64, u64)>);

/// What the KPIs of one scope over one window are computed from. Built by the control plane from
/// rollups; every count is over the window `[from_ms, to_ms)` unless its doc says otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The window's start, Unix ms (inclusive).
    pub from_ms: i64,
    /// Its end, Unix ms (exclusive).
    pub to_ms: i64,
    /// Governed requests (ledger records).
    pub requests: u64,
    /// Of them, answered (`ok` or answered to a client that then left).
    pub answered: u64,
    /// Of them, failed on the gateway's or a provider's side (5xx, timeouts, provider errors).
    pub errors: u64,
    /// Of them, answered by a fallback deployment (more than one attempt).
    pub fallbacks: u64,
    /// Of them, streamed.
    pub streams: u64,
    /// Streams the client cancelled before the end.
    pub streams_cancelled: u64,
    /// Requests refused by a guard policy (`block`).
    pub guard_blocked: u64,
    /// Requests whose guard found and masked, hashed, tokenized or redacted something.
    pub guard_flagged: u64,
    /// Answers served from a response cache; `None` when no cache is configured.
    pub cache_hits: Option<u64>,
    /// Tokens saved by cache hits, priced (nano-USD).
    pub cache_saved_nano_usd: u64,
    /// Tokens of every kind, in and out.
    pub tokens: u64,
    /// What the requests cost, nano-USD.
    pub cost_nano_usd: u64,
    /// Requests to models the catalog pairs with a cheaper candidate (premium).
    pub premium_requests: u64,
    /// Σ (what the requests would have cost on their route's first deployment − what they cost),
    /// nano-USD, over the priced requests whose first deployment is priced too; `None` when
    /// there were none.
    pub routing_savings_nano_usd: Option<i64>,
    /// How many requests that sum rests on.
    pub routing_priced: u64,
    /// Latency histogram: counts per bucket of [`LATENCY_BOUNDS_MS`] (and one more, unbounded).
    pub latency: Vec<u64>,
    /// Time-to-first-token histogram of streams, same buckets.
    pub ttft: Vec<u64>,
    /// Distinct end users (`x-tollgate-user`) in the window.
    pub active_users: u64,
    /// Distinct end users per day of the window, averaged over its days.
    pub daily_active_avg: f64,
    /// Distinct end users in the 7 days before the window's end.
    pub weekly_active: u64,
    /// Distinct end users in the 30 days before the window's end.
    pub monthly_active: u64,
    /// The retention cohort, if the window is long enough to have one (five weeks).
    pub retention: Option<Retention>,
    /// Sessions (`x-tollgate-session`) that began in the window: each counted once, in the hour
    /// of its first request the ledger wrote (records are written in the order they end; one
    /// written late — replayed from a spill file after an outage — does not move its session
    /// to an earlier hour).
    pub sessions: u64,
    /// Requests that named a session.
    pub session_requests: u64,
    /// The busiest minute's requests.
    pub peak_requests_per_minute: u64,
    /// The busiest minute's tokens.
    pub peak_tokens_per_minute: u64,
    /// The request quota per minute of the providers the scope's routes reach (summed), when
    /// every one of them states it.
    pub quota_requests_per_minute: Option<u64>,
    /// Those providers without a stated quota (why there is no headroom).
    pub providers_without_quota: Vec<String>,
    /// Outcome and feedback events, summed.
    pub outcomes: OutcomeRollup,
    /// Eligible users (the registry's, summed over the scope's use cases).
    pub eligible_users: u64,
    /// Successes without a reported value × their use case's value per outcome, nano-USD.
    pub modelled_value_nano_usd: u64,
    /// Successes × their use case's (baseline − assisted) minutes per task, thousandths.
    pub modelled_minutes_milli: u64,
    /// The scope's budgets in their current periods; `None` without one.
    pub budget: Option<BudgetBurn>,
    /// The forecast accuracy's inputs: the last month complete by the window's end, its
    /// month-end forecast as made on its 15th and what it cost; `None` when there is none.
    pub forecast: Option<ForecastCheck>,
    /// 5-minute windows with traffic, and how many met the latency and error SLO; `None`
    /// without an SLO.
    pub slo_windows: Option<(u64, u64)>,
    /// Offline evaluation: (passed, total) for the candidate and (passed, total) for the
    /// production version; `None` before any run.
    pub eval: Option<EvalFacts>,
    /// Sampled online judge scores: (sum, count), scores 0–1; `None` before any.
    pub judge: Option<(f64, u64)>,
    /// Fairness flags raised per release; `None` before any fairness run.
    pub fairness_flags_per_release: Option<f64>,
    /// The scope's use cases.
    pub use_cases: Vec<UseCaseFacts>,
}

/// A month's month-end forecast beside what the month cost (KPI 20).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastCheck {
    /// The month, `2026-11`.
    pub month: String,
    /// What was spent in it before its 15th (what the forecast was made from), nano-USD.
    pub spent_before_nano_usd: u64,
    /// The month-end forecast as the forecast report gave it at the end of the 14th, nano-USD.
    pub forecast_nano_usd: u64,
    /// What the month cost, nano-USD.
    pub actual_nano_usd: u64,
}

/// One value of a KPI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    /// What it is (`dau`, `p95_ms`, `roi`).
    pub name: &'static str,
    /// The number (a ratio, a count, a duration); for money, USD.
    pub value: f64,
    /// Exact amount in nano-USD, for money.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_usd: Option<i128>,
    /// `ratio`, `users`, `ms`, `usd`, `days`, `hours`, `requests/s` …
    pub unit: &'static str,
}

/// A KPI of one scope over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpi {
    /// Its number in the reference (1–25).
    pub number: u8,
    /// A stable id (`cost_per_successful_outcome`).
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// `adoption`, `quality`, `risk`, `operations`, `efficiency`, `cost`, `unit economics`,
    /// `FinOps`, `value`, `portfolio`, `governance`.
    pub group: &'static str,
    /// How it is computed.
    pub definition: &'static str,
    /// Its values (none when n/a).
    pub values: Vec<Measure>,
    /// What it was computed from, by name.
    pub inputs: Vec<(&'static str, String)>,
    /// How many events (requests, outcomes, use cases…) it rests on.
    pub basis: u64,
    /// Why it cannot be computed, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_available: Option<String>,
}

impl Kpi {
    fn new(
        number: u8,
        id: &'static str,
        name: &'static str,
        group: &'static str,
        def: &'static str,
    ) -> Kpi {
        Kpi {
            number,
            id,
            name,
            group,
            definition: def,
            values: Vec::new(),
            inputs: Vec::new(),
            basis: 0,
            not_available: None,
        }
    }

    fn input(mut self, name: &'static str, v: impl ToString) -> Kpi {
        self.inputs.push((name, v.to_string()));
        self
    }

    fn value(mut self, name: &'static str, value: f64, unit: &'static str) -> Kpi {
        self.values.push(Measure {
            name,
            value,
            nano_usd: None,
            unit,
        });
        self
    }

    fn money(mut self, name: &'static str, nano: i128) -> Kpi {
        // Reported in int64 nano-USD (what the API documents): a sum past it stops there, and
        // the USD value says the same amount.
        let nano = nano.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        self.values.push(Measure {
            name,
            value: nano as f64 / 1e9,
            nano_usd: Some(nano),
            unit: "usd",
        });
        self
    }

    fn basis(mut self, n: u64) -> Kpi {
        self.basis = n;
        self
    }

    /// n/a: no values, and why.
    fn na(mut self, why: impl Into<String>) -> Kpi {
        self.values.clear();
        self.not_available = Some(why.into());
        self
    }

    /// The value named `name`, if computed.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|m| m.name == name).map(|m| m.value)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

fn usd(nano: u64) -> String {
    Money::from_nanos(nano).to_string()
}

/// The quantile `q` (0–1) of a histogram: the upper bound (ms) of the bucket where the count
/// reaches it; `None` for an empty histogram; the last bound in the last, unbounded bucket.
pub fn quantile(h: &[u64], q: f64) -> Option<f64> {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in h.iter().enumerate() {
        seen += n;
        if seen >= rank {
            // The last bucket has no bound: its quantile is reported as the last bound (a
            // number JSON can carry).
            let last = LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1];
            return Some(LATENCY_BOUNDS_MS.get(i).map_or(last as f64, |b| *b as f64));
        }
    }
    None
}

/// The window's length in days (fractional).
fn days(f: &Facts) -> f64 {
    (f.to_ms - f.from_ms).max(0) as f64 / DAY_MS as f64
}

/// Every KPI of `f`, in the reference's order.
pub fn compute(f: &Facts) -> Vec<Kpi> {
    let o = &f.outcomes;
    let outcome_events = o.outcomes();
    let value_nano = o.value_nano_usd.saturating_add(f.modelled_value_nano_usd);
    vec![
        active_users(f),
        penetration(f),
        stickiness(f),
        intensity(f),
        abandonment(f),
        eval_pass(f),
        judge(f),
        satisfaction(f),
        acceptance(f),
        safety(f),
        latency(f),
        errors(f),
        slo(f),
        throughput(f),
        cache(f),
        spend(f),
        unit_cost(f),
        cost_per_success(f),
        model_mix(f),
        forecast(f),
        task_success(f, outcome_events),
        time_saved(f),
        roi(f, value_nano),
        conversion(f),
        coverage(f),
    ]
}

fn active_users(f: &Facts) -> Kpi {
    let k = Kpi::new(1, "active_users", "active users (DAU/WAU/MAU)", "adoption",
        "distinct end users (x-tollgate-user) with at least one request: per day (averaged over the window), in the last 7 and 30 days of the window, and in the whole window — counted over the whole UTC days the window touches")
        .input("active_users", f.active_users)
        .basis(f.requests);
    if f.active_users == 0 {
        return k.na("no request named an end user (send x-tollgate-user)");
    }
    k.value("dau", f.daily_active_avg, "users")
        .value("wau", f.weekly_active as f64, "users")
        .value("mau", f.monthly_active as f64, "users")
        .value("window", f.active_users as f64, "users")
}

fn penetration(f: &Facts) -> Kpi {
    let k = Kpi::new(
        2,
        "penetration",
        "penetration",
        "adoption",
        "active users in the window ÷ eligible users (registry)",
    )
    .input("active_users", f.active_users)
    .input("eligible_users", f.eligible_users)
    .basis(f.active_users);
    if f.eligible_users == 0 {
        return k.na("no eligible users in the registry's value model");
    }
    if f.active_users == 0 {
        return k.na("no request named an end user (send x-tollgate-user)");
    }
    k.value(
        "penetration",
        ratio(f.active_users, f.eligible_users),
        "ratio",
    )
}

fn stickiness(f: &Facts) -> Kpi {
    let mut k = Kpi::new(
        3,
        "stickiness",
        "stickiness, retention",
        "adoption",
        "DAU ÷ MAU; retention: share of week-0 users active in week 4",
    )
    .input("dau", f.daily_active_avg)
    .input("mau", f.monthly_active)
    .basis(f.monthly_active);
    if f.monthly_active == 0 {
        if f.active_users > 0 {
            return k.na("no end user was active in the last 30 days of the window");
        }
        return k.na("no request named an end user (send x-tollgate-user)");
    }
    k = k.value(
        "stickiness",
        f.daily_active_avg / f.monthly_active as f64,
        "ratio",
    );
    match f.retention {
        Some(r) if r.cohort > 0 => k
            .input("cohort", r.cohort)
            .input("retained", r.retained)
            .value("week4_retention", ratio(r.retained, r.cohort), "ratio"),
        _ => k.input("retention", "n/a: the window is shorter than five weeks"),
    }
}

fn intensity(f: &Facts) -> Kpi {
    let mut k = Kpi::new(
        4,
        "usage_intensity",
        "usage intensity",
        "adoption",
        "requests per active user; turns: requests naming a session ÷ sessions begun in the window (in a window shorter than its sessions, the turns of sessions begun before it count too)",
    )
    .input("requests", f.requests)
    .input("active_users", f.active_users)
    .input("sessions", f.sessions)
    .input("session_requests", f.session_requests)
    .basis(f.requests);
    if f.active_users == 0 && f.sessions == 0 {
        return k.na(format!(
            "no request named an end user (x-tollgate-user), and {}",
            no_sessions(f)
        ));
    }
    if f.active_users > 0 {
        k = k.value(
            "requests_per_user",
            ratio(f.requests, f.active_users),
            "requests",
        );
    }
    if f.sessions > 0 {
        k = k.value(
            "turns_per_session",
            ratio(f.session_requests, f.sessions),
            "requests",
        );
    } else {
        k = k.input("turns_per_session", format!("n/a: {}", no_sessions(f)));
    }
    k
}

/// Why a window has no sessions: none named, or only sessions begun before it.
fn no_sessions(f: &Facts) -> String {
    match f.session_requests {
        0 => "no request named a session (x-tollgate-session)".into(),
        n => format!(
            "no session began in the window (its {n} requests naming a session belong to sessions counted as begun before it)"
        ),
    }
}

fn abandonment(f: &Facts) -> Kpi {
    let k = Kpi::new(
        5,
        "abandonment",
        "abandonment",
        "adoption",
        "streams the client cancelled before the end ÷ streams",
    )
    .input("streams", f.streams)
    .input("streams_cancelled", f.streams_cancelled)
    .basis(f.streams);
    if f.streams == 0 {
        return k.na("no streamed requests");
    }
    k.value(
        "abandonment",
        ratio(f.streams_cancelled, f.streams),
        "ratio",
    )
}

fn eval_pass(f: &Facts) -> Kpi {
    let k = Kpi::new(
        6,
        "eval_pass_rate",
        "offline eval pass rate, Δ vs champion",
        "quality",
        "passed ÷ total cases of the candidate's latest run; minus the production version's",
    );
    let Some(((passed, total), champion)) = f.eval else {
        return k.na("no evaluation runs yet");
    };
    if total == 0 {
        return k.na("the latest evaluation run has no cases");
    }
    let rate = ratio(passed, total);
    let mut k = k
        .input("passed", passed)
        .input("total", total)
        .basis(total)
        .value("pass_rate", rate, "ratio");
    if let Some((cp, ct)) = champion.filter(|(_, t)| *t > 0) {
        k = k
            .input("champion_passed", cp)
            .input("champion_total", ct)
            .value("delta_vs_champion", rate - ratio(cp, ct), "ratio");
    }
    k
}

fn judge(f: &Facts) -> Kpi {
    let k = Kpi::new(
        7,
        "online_judge_score",
        "online judge score",
        "quality",
        "mean of sampled judge scores (0–1) on production traffic",
    );
    match f.judge {
        Some((sum, n)) if n > 0 => {
            k.input("scores", n)
                .basis(n)
                .value("mean_score", sum / n as f64, "ratio")
        }
        _ => k.na("no judge scores yet"),
    }
}

fn satisfaction(f: &Facts) -> Kpi {
    let o = &f.outcomes;
    let k = Kpi::new(
        8,
        "satisfaction",
        "satisfaction, feedback coverage",
        "quality",
        "positive ratings (4–5) ÷ ratings; ratings ÷ answered requests",
    )
    .input("rated", o.rated)
    .input("positive", o.positive)
    .input("answered", f.answered)
    .basis(o.rated);
    if o.rated == 0 {
        return k.na("no ratings yet (POST /v1/feedback with a rating)");
    }
    let k = k
        .value("satisfaction", ratio(o.positive, o.rated), "ratio")
        .value("mean_rating", o.rating_sum as f64 / o.rated as f64, "of 5");
    if f.answered > 0 {
        k.value("feedback_coverage", ratio(o.rated, f.answered), "ratio")
    } else {
        k
    }
}

fn acceptance(f: &Facts) -> Kpi {
    let o = &f.outcomes;
    let k = Kpi::new(
        9,
        "acceptance_rate",
        "acceptance rate",
        "quality",
        "outputs accepted unedited ÷ outputs reported accepted or not",
    )
    .input("with_acceptance", o.with_acceptance)
    .input("accepted_unedited", o.accepted_unedited)
    .input("accepted_edited", o.accepted_edited)
    .basis(o.with_acceptance);
    if o.with_acceptance == 0 {
        return k.na("no feedback says whether outputs were accepted");
    }
    k.value(
        "acceptance",
        ratio(o.accepted_unedited, o.with_acceptance),
        "ratio",
    )
    .value(
        "accepted_any",
        ratio(o.accepted_unedited + o.accepted_edited, o.with_acceptance),
        "ratio",
    )
}

fn safety(f: &Facts) -> Kpi {
    let mut k = Kpi::new(
        10,
        "safety_incidents",
        "safety and fairness incidents",
        "risk",
        "guard blocks and flags ÷ requests; fairness flags per release",
    )
    .input("guard_blocked", f.guard_blocked)
    .input("guard_flagged", f.guard_flagged)
    .input("requests", f.requests)
    .basis(f.requests);
    if f.requests == 0 {
        return k.na("no requests");
    }
    k = k
        .value(
            "incident_rate",
            ratio(f.guard_blocked + f.guard_flagged, f.requests),
            "ratio",
        )
        .value("block_rate", ratio(f.guard_blocked, f.requests), "ratio");
    match f.fairness_flags_per_release {
        Some(x) => k.value("fairness_flags_per_release", x, "flags"),
        None => k.input("fairness_flags_per_release", "n/a: no fairness runs yet"),
    }
}

fn latency(f: &Facts) -> Kpi {
    let n: u64 = f.latency.iter().sum();
    let mut k = Kpi::new(11, "latency", "latency p50/p95, TTFT p95", "operations",
        "quantiles of the request latency and of streams' time to first token, read from histogram buckets (each value is the bucket's upper bound)")
        .input("requests_timed", n)
        .input("streams_timed", f.ttft.iter().sum::<u64>())
        .basis(n);
    let (Some(p50), Some(p95)) = (quantile(&f.latency, 0.5), quantile(&f.latency, 0.95)) else {
        return k.na("no requests");
    };
    k = k.value("p50_ms", p50, "ms").value("p95_ms", p95, "ms");
    if let Some(t) = quantile(&f.ttft, 0.95) {
        k = k.value("ttft_p95_ms", t, "ms");
    }
    k
}

fn errors(f: &Facts) -> Kpi {
    let k = Kpi::new(
        12,
        "error_rate",
        "error and fallback rate",
        "operations",
        "(5xx + timeouts + provider errors) ÷ requests; requests answered by a fallback ÷ requests",
    )
    .input("errors", f.errors)
    .input("fallbacks", f.fallbacks)
    .input("requests", f.requests)
    .basis(f.requests);
    if f.requests == 0 {
        return k.na("no requests");
    }
    k.value("error_rate", ratio(f.errors, f.requests), "ratio")
        .value("fallback_rate", ratio(f.fallbacks, f.requests), "ratio")
}

fn slo(f: &Facts) -> Kpi {
    let k = Kpi::new(
        13,
        "slo_attainment",
        "SLO attainment",
        "operations",
        "share of 5-minute windows with traffic meeting the latency and error SLO",
    );
    match f.slo_windows {
        None => k.na("no SLO is set: set one on the use case (latency p95, error rate)"),
        Some((0, _)) => k.na("no traffic in the window"),
        Some((windows, met)) => k
            .input("windows", windows)
            .input("met", met)
            .basis(windows)
            .value("attainment", ratio(met, windows), "ratio"),
    }
}

fn throughput(f: &Facts) -> Kpi {
    let mut k = Kpi::new(14, "throughput", "throughput and headroom", "operations",
        "the busiest minute's requests and tokens per second; headroom = 1 − the scope's busiest minute ÷ the request quota of the providers its routes reach")
        .input("peak_requests_per_minute", f.peak_requests_per_minute)
        .input("peak_tokens_per_minute", f.peak_tokens_per_minute)
        .basis(f.requests);
    if f.requests == 0 {
        return k.na("no requests");
    }
    k = k
        .value(
            "peak_rps",
            f.peak_requests_per_minute as f64 / 60.0,
            "requests/s",
        )
        .value(
            "peak_tps",
            f.peak_tokens_per_minute as f64 / 60.0,
            "tokens/s",
        );
    match f.quota_requests_per_minute {
        Some(q) if q > 0 => k.input("quota_requests_per_minute", q).value(
            "headroom",
            1.0 - ratio(f.peak_requests_per_minute, q),
            "ratio",
        ),
        _ if f.providers_without_quota.is_empty() => {
            k.input("headroom", "n/a: the scope's routes reach no provider")
        }
        _ => k.input(
            "headroom",
            format!(
                "n/a: no `quota.requests_per_minute` stated for provider(s) {}",
                f.providers_without_quota.join(", ")
            ),
        ),
    }
}

fn cache(f: &Facts) -> Kpi {
    let k = Kpi::new(
        15,
        "cache_hit_rate",
        "cache hit rate, tokens saved",
        "efficiency",
        "cache hits ÷ requests; Σ saved tokens × price",
    );
    let Some(hits) = f.cache_hits else {
        return k.na("no response cache configured");
    };
    if f.requests == 0 {
        return k.na("no requests");
    }
    k.input("hits", hits)
        .input("requests", f.requests)
        .basis(f.requests)
        .value("hit_rate", ratio(hits, f.requests), "ratio")
        .money("saved", i128::from(f.cache_saved_nano_usd))
}

fn spend(f: &Facts) -> Kpi {
    let mut k = Kpi::new(16, "spend", "spend, budget burn", "cost",
        "Σ cost in the window; the scope's budgets: spent ÷ amount in their current periods, and days until they are spent at that period's daily rate")
        .input("cost", usd(f.cost_nano_usd))
        .input("days", format!("{:.3}", days(f)))
        .basis(f.requests);
    if f.requests == 0 {
        return k.na("no requests");
    }
    k = k.money("spend", i128::from(f.cost_nano_usd));
    let Some(b) = f.budget.filter(|b| b.amount_nano_usd > 0) else {
        return k.input("budget", "n/a: no budget on this scope");
    };
    k = k
        .input("budget", usd(b.amount_nano_usd))
        .input("budget_spent", usd(b.spent_nano_usd))
        .value("burn", ratio(b.spent_nano_usd, b.amount_nano_usd), "ratio");
    if b.spent_nano_usd > 0 && b.days_elapsed > 0.0 {
        let per_day = b.spent_nano_usd as f64 / b.days_elapsed;
        let left = b.amount_nano_usd.saturating_sub(b.spent_nano_usd) as f64;
        k = k.value("days_to_exhaustion", left / per_day, "days");
    }
    k
}

fn unit_cost(f: &Facts) -> Kpi {
    let mut k = Kpi::new(
        17,
        "unit_cost",
        "cost per request, per 1K tokens, per active user",
        "cost",
        "cost ÷ requests; cost ÷ (tokens ÷ 1,000); cost ÷ active users",
    )
    .input("cost", usd(f.cost_nano_usd))
    .input("requests", f.requests)
    .input("tokens", f.tokens)
    .input("active_users", f.active_users)
    .basis(f.requests);
    if f.requests == 0 {
        return k.na("no requests");
    }
    let c = i128::from(f.cost_nano_usd);
    k = k.money("per_request", c / i128::from(f.requests));
    if f.tokens > 0 {
        k = k.money("per_1k_tokens", c * 1000 / i128::from(f.tokens));
    }
    if f.active_users > 0 {
        k = k.money("per_active_user", c / i128::from(f.active_users));
    }
    k
}

fn cost_per_success(f: &Facts) -> Kpi {
    let s = f.outcomes.success;
    let k = Kpi::new(
        18,
        "cost_per_successful_outcome",
        "cost per successful outcome",
        "unit economics",
        "cost ÷ outcomes reported `success`",
    )
    .input("cost", usd(f.cost_nano_usd))
    .input("successes", s)
    .basis(s);
    if s == 0 {
        return k.na("no successful outcomes yet (POST /v1/feedback with outcome success)");
    }
    k.money("per_success", i128::from(f.cost_nano_usd) / i128::from(s))
}

fn model_mix(f: &Facts) -> Kpi {
    let mut k = Kpi::new(19, "model_mix", "model mix, routing savings", "efficiency",
        "requests to premium models ÷ requests; Σ (what each request's tokens cost at its route's first deployment's prices − what it cost)")
        .input("premium_requests", f.premium_requests)
        .input("requests", f.requests)
        .basis(f.requests);
    if f.requests == 0 {
        return k.na("no requests");
    }
    k = k.value(
        "premium_share",
        ratio(f.premium_requests, f.requests),
        "ratio",
    );
    match f.routing_savings_nano_usd {
        Some(s) => k
            .input("priced_on_first_deployment", f.routing_priced)
            .money("routing_savings", i128::from(s)),
        None => k.input(
            "routing_savings",
            "n/a: no request in the window was priced both where it went and on its route's first deployment",
        ),
    }
}

fn forecast(f: &Facts) -> Kpi {
    let k = Kpi::new(
        20,
        "forecast_accuracy",
        "forecast accuracy",
        "FinOps",
        "|forecast − actual| ÷ actual for the last month complete by the window's end: the month-end forecast the forecast report gave at the end of its 14th (spend so far + the last 7 days' hourly rate × the hours left)",
    );
    let Some(c) = &f.forecast else {
        return k.na("no complete month before the window's end");
    };
    let k = k.input("month", &c.month);
    if c.actual_nano_usd == 0 {
        return k.na(format!("nothing was spent in {}", c.month));
    }
    if c.spent_before_nano_usd == 0 {
        return k.na(format!(
            "nothing was spent in {} before its 15th, so no forecast was made from it",
            c.month
        ));
    }
    k.input("spent_before_15th", usd(c.spent_before_nano_usd))
        .input("forecast", usd(c.forecast_nano_usd))
        .input("actual", usd(c.actual_nano_usd))
        .basis(1)
        .value(
            "error",
            c.forecast_nano_usd.abs_diff(c.actual_nano_usd) as f64 / c.actual_nano_usd as f64,
            "ratio",
        )
}

fn task_success(f: &Facts, outcome_events: u64) -> Kpi {
    let o = &f.outcomes;
    let mut k = Kpi::new(
        21,
        "task_success",
        "task success, containment",
        "value",
        "successful outcomes ÷ tasks, a task being a session (counted in the hour it began), or each request and session with an outcome when more of them were reported on than there were sessions; containment: outcomes not escalated ÷ outcomes",
    )
    .input("successes", o.success)
    .input("sessions", f.sessions)
    .input("outcomes", outcome_events)
    .input("escalated", o.escalated)
    .basis(outcome_events);
    if outcome_events == 0 {
        return k.na("no outcomes yet (POST /v1/feedback with an outcome)");
    }
    if f.sessions > 0 {
        // Outcomes count one per request or session (the latest said), so an application that
        // reports on each answer of a session is read over those answers, and the share stays
        // a share.
        let tasks = f.sessions.max(outcome_events);
        k = k
            .input("tasks", tasks)
            .value("task_success", ratio(o.success, tasks), "ratio");
    } else {
        k = k.input("task_success", format!("n/a: {}", no_sessions(f)));
    }
    k.value(
        "containment",
        ratio(outcome_events - o.escalated, outcome_events),
        "ratio",
    )
}

fn time_saved(f: &Facts) -> Kpi {
    let reported = f.outcomes.minutes_saved_milli;
    let modelled = f.modelled_minutes_milli;
    let k = Kpi::new(22, "time_saved", "time saved", "value",
        "minutes saved as reported with outcomes, plus successes × (baseline − assisted minutes per task) from the registry")
        .input("reported_minutes", reported as f64 / 1000.0)
        .input("modelled_minutes", modelled as f64 / 1000.0)
        .basis(f.outcomes.events);
    if f.outcomes.events == 0 {
        return k.na("no outcomes yet (POST /v1/feedback)");
    }
    k.value("hours", (reported + modelled) as f64 / 60_000.0, "hours")
}

fn roi(f: &Facts, value_nano: u64) -> Kpi {
    let cost = i128::from(f.cost_nano_usd);
    let value = i128::from(value_nano);
    let mut k = Kpi::new(23, "roi", "value delivered, ROI, payback", "value",
        "value = reported values + unvalued successes × value per outcome; ROI = (value − cost) ÷ cost; payback = cost so far ÷ monthly net value")
        .input("reported_value", usd(f.outcomes.value_nano_usd))
        .input("modelled_value", usd(f.modelled_value_nano_usd))
        .input("cost", usd(f.cost_nano_usd))
        .basis(f.outcomes.events);
    if f.outcomes.events == 0 {
        return k.na("no outcomes yet (POST /v1/feedback)");
    }
    k = k.money("value", value).money("net_value", value - cost);
    if cost > 0 {
        k = k.value("roi", (value - cost) as f64 / cost as f64, "ratio");
    } else {
        k = k.input("roi", "n/a: nothing was spent");
    }
    let monthly_net = (value - cost) as f64 * 30.0 / days(f).max(f64::MIN_POSITIVE);
    if monthly_net > 0.0 && days(f) > 0.0 {
        k = k.value("payback_months", cost as f64 / monthly_net, "months");
    } else {
        k = k.input("payback", "n/a: no net value at this rate");
    }
    k
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn conversion(f: &Facts) -> Kpi {
    let piloted: Vec<&UseCaseFacts> = f
        .use_cases
        .iter()
        .filter(|u| u.pilot_at.is_some())
        .collect();
    let produced: Vec<f64> = piloted
        .iter()
        .filter_map(|u| Some((u.production_at? - u.pilot_at?) as f64 / DAY_MS as f64))
        .collect();
    let k = Kpi::new(24, "conversion", "pilot→production conversion, time to production", "portfolio",
        "use cases that reached production ÷ use cases that entered pilot; median days from pilot to production")
        .input("piloted", piloted.len())
        .input("reached_production", produced.len())
        .basis(piloted.len() as u64);
    if piloted.is_empty() {
        return k.na("no use case has entered pilot");
    }
    let k = k.value(
        "conversion",
        ratio(produced.len() as u64, piloted.len() as u64),
        "ratio",
    );
    match median(produced) {
        Some(d) => k.value("median_days_to_production", d, "days"),
        None => k,
    }
}

fn coverage(f: &Facts) -> Kpi {
    let prod: Vec<&UseCaseFacts> = f
        .use_cases
        .iter()
        .filter(|u| u.stage == Some(Stage::Production))
        .collect();
    let covered = prod
        .iter()
        .filter(|u| u.has_kpi && u.has_baseline && u.outcomes_30d > 0)
        .count();
    let k = Kpi::new(25, "kpi_coverage", "KPI coverage", "governance",
        "production use cases with a success metric, a baseline and at least one outcome in the last 30 days ÷ production use cases")
        .input("production_use_cases", prod.len())
        .input("covered", covered)
        .basis(prod.len() as u64);
    if prod.is_empty() {
        return k.na("no use case is in production");
    }
    k.value(
        "coverage",
        ratio(covered as u64, prod.len() as u64),
        "ratio",
    )
}
