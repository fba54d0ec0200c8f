//! Stage gates: the evidence a use case needs before it moves up a stage, and the checklist that
//! says, line by line, whether it is there.
//!
//! The rules are the organization's ([`GateConfig`], stored as a setting, editable by a platform
//! admin) with the defaults of `reference/kpis.md`: to enter **pilot** a use case needs an owner,
//! a value model with a primary KPI and a baseline, a budget and a policy; to enter
//! **production** it needs its latest evaluation run at or above the pass rate with Δ vs the
//! champion within tolerance, a fairness run with no flag, a projected monthly cost within its
//! monthly budget, outcomes (requests and sessions with one) in the last N days, and approvals by a pod lead and a risk
//! officer — two different people, neither of them the one who asked.
//!
//! Like the KPIs, this module does no I/O: the control plane gathers [`Evidence`] from the store
//! and [`checklist`] judges it, so the API, the CLI and the tests see one judgement. Every line
//! carries what it rests on (run ids, figures, who approved when), because the checklist is also
//! what the audit chain keeps with the decision.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tollgate_meter::Money;
use tollgate_types::text::is_blank;

/// One kind of evidence a gate may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Check {
    /// The value model names who answers for the use case's value.
    Owner,
    /// The value model has a primary KPI and a baseline.
    ValueModel,
    /// A budget is set on the use case.
    Budget,
    /// A guard policy governs it (its own, or the org default).
    Policy,
    /// The latest evaluation run passed, and did not fall behind the champion by more than the
    /// tolerance.
    Eval,
    /// The latest fairness run flagged no gap.
    Fairness,
    /// The projected monthly cost is within the use case's monthly budget.
    Cost,
    /// Outcome events arrived in the last N days.
    Outcomes,
}

impl Check {
    /// The name used in the API and the checklist.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Owner => "owner",
            Check::ValueModel => "value_model",
            Check::Budget => "budget",
            Check::Policy => "policy",
            Check::Eval => "eval",
            Check::Fairness => "fairness",
            Check::Cost => "cost",
            Check::Outcomes => "outcomes",
        }
    }
}

/// A role whose sign-off a gate asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Approver {
    /// A lead of the use case's pod.
    Lead,
    /// An organization's risk officer.
    RiskOfficer,
}

impl Approver {
    /// The name used in the API and the checklist.
    pub fn as_str(self) -> &'static str {
        match self {
            Approver::Lead => "lead",
            Approver::RiskOfficer => "risk_officer",
        }
    }

    /// Parses `lead` or `risk_officer`.
    pub fn parse(s: &str) -> Option<Approver> {
        match s {
            "lead" => Some(Approver::Lead),
            "risk_officer" => Some(Approver::RiskOfficer),
            _ => None,
        }
    }
}

/// What entering one stage takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gate {
    /// The evidence asked for.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The roles that must approve, each by a different person, none of them the requester.
    #[serde(default)]
    pub approvals: Vec<Approver>,
    /// `eval`: a floor (0–1) under every suite's own `pass_rate` — the suites are written by the
    /// team that is gated; unset, each suite's own decides.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub min_pass_rate: Option<f64>,
    /// `eval`: how far (0–1) the pass rate may fall under the champion's.
    #[serde(default = "default_max_regression")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1))]
    pub max_regression: f64,
    /// `outcomes`: the window, days.
    #[serde(default = "default_outcome_days")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 366))]
    pub outcome_days: u32,
    /// `fairness`: the samples per variant the probe must have drawn (2–50; the probe's own
    /// default is 10) — a tiny probe has no power to find a gap.
    #[serde(default = "default_min_fairness_samples")]
    #[cfg_attr(feature = "openapi", schema(minimum = 2, maximum = 50))]
    pub min_fairness_samples: u64,
    /// `outcomes`: events needed in it.
    #[serde(default = "default_min_outcomes")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000000000))]
    pub min_outcomes: u64,
}

fn default_max_regression() -> f64 {
    0.05
}
fn default_outcome_days() -> u32 {
    14
}
fn default_min_outcomes() -> u64 {
    1
}
fn default_min_fairness_samples() -> u64 {
    10
}

impl Gate {
    fn with(checks: &[Check], approvals: &[Approver]) -> Gate {
        Gate {
            checks: checks.to_vec(),
            approvals: approvals.to_vec(),
            min_pass_rate: None,
            max_regression: default_max_regression(),
            outcome_days: default_outcome_days(),
            min_outcomes: default_min_outcomes(),
            min_fairness_samples: default_min_fairness_samples(),
        }
    }
}

/// The organization's gates: what entering `pilot` and `production` take. Moving down a stage
/// (or retiring) is never gated. Read from a document where every part left out — a stage, or
/// one field of it — takes the default (an empty list must be written to ask for nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "GateConfigDoc")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateConfig {
    /// proposed → pilot.
    pub pilot: Gate,
    /// pilot → production.
    pub production: Gate,
}

/// [`GateConfig`] as written: any part may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateConfigDoc {
    #[serde(default, deserialize_with = "given")]
    pilot: Option<GateDoc>,
    #[serde(default, deserialize_with = "given")]
    production: Option<GateDoc>,
}

/// [`GateConfig`] as `PUT /admin/v1/gates` takes it (the schema of its body): a stage left out
/// takes its default gate, as does each field left out of a stage. Only `min_pass_rate` may be
/// `null` (no floor); any other `null` is refused, so a value is never lost to a typo'd `null`.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // A schema only: the body is read as `GateConfigDoc`.
pub struct GateConfigInput {
    /// proposed → pilot.
    #[schema(required = false)]
    pilot: Gate,
    /// pilot → production.
    #[schema(required = false)]
    production: Gate,
}

/// [`Gate`] as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GateDoc {
    #[serde(default, deserialize_with = "given")]
    checks: Option<Vec<Check>>,
    #[serde(default, deserialize_with = "given")]
    approvals: Option<Vec<Approver>>,
    /// `null` (no floor, `Some(None)`) apart from the field left out (`None`).
    #[serde(default, deserialize_with = "given")]
    min_pass_rate: Option<Option<f64>>,
    #[serde(default, deserialize_with = "given")]
    max_regression: Option<f64>,
    #[serde(default, deserialize_with = "given")]
    outcome_days: Option<u32>,
    #[serde(default, deserialize_with = "given")]
    min_outcomes: Option<u64>,
    #[serde(default, deserialize_with = "given")]
    min_fairness_samples: Option<u64>,
}

/// A field that was given, read as its own type (`None` is the field left out: a `null` is read
/// as the field's type reads it — refused, but where the type itself is an `Option`).
fn given<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl GateDoc {
    fn over(self, mut g: Gate) -> Gate {
        if let Some(v) = self.checks {
            g.checks = v;
        }
        if let Some(v) = self.approvals {
            g.approvals = v;
        }
        if let Some(v) = self.min_pass_rate {
            g.min_pass_rate = v;
        }
        if let Some(v) = self.max_regression {
            g.max_regression = v;
        }
        if let Some(v) = self.outcome_days {
            g.outcome_days = v;
        }
        if let Some(v) = self.min_outcomes {
            g.min_outcomes = v;
        }
        if let Some(v) = self.min_fairness_samples {
            g.min_fairness_samples = v;
        }
        g
    }
}

impl From<GateConfigDoc> for GateConfig {
    fn from(d: GateConfigDoc) -> Self {
        GateConfig {
            pilot: d
                .pilot
                .map_or_else(default_pilot, |p| p.over(default_pilot())),
            production: d
                .production
                .map_or_else(default_production, |p| p.over(default_production())),
        }
    }
}

fn default_pilot() -> Gate {
    use Check::*;
    Gate::with(&[Owner, ValueModel, Budget, Policy], &[])
}
fn default_production() -> Gate {
    use Check::*;
    Gate::with(
        &[Eval, Fairness, Cost, Outcomes],
        &[Approver::Lead, Approver::RiskOfficer],
    )
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            pilot: default_pilot(),
            production: default_production(),
        }
    }
}

impl GateConfig {
    /// The gate for entering `to` (`pilot` or `production`).
    pub fn gate(&self, to: &str) -> Option<&Gate> {
        match to {
            "pilot" => Some(&self.pilot),
            "production" => Some(&self.production),
            _ => None,
        }
    }

    /// The first problem, as (path, message).
    pub fn problem(&self) -> Option<(String, String)> {
        for (name, g) in [("pilot", &self.pilot), ("production", &self.production)] {
            let at = |f: &str| format!("{name}.{f}");
            for (i, c) in g.checks.iter().enumerate() {
                if g.checks[..i].contains(c) {
                    return Some((
                        format!("{name}.checks[{i}]"),
                        format!("`{}` is listed twice", c.as_str()),
                    ));
                }
            }
            for (i, a) in g.approvals.iter().enumerate() {
                if g.approvals[..i].contains(a) {
                    return Some((
                        format!("{name}.approvals[{i}]"),
                        format!("`{}` is listed twice", a.as_str()),
                    ));
                }
            }
            if let Some(p) = g.min_pass_rate
                && !(0.0..=1.0).contains(&p)
            {
                return Some((at("min_pass_rate"), "must be between 0 and 1".into()));
            }
            if !(0.0..=1.0).contains(&g.max_regression) {
                return Some((at("max_regression"), "must be between 0 and 1".into()));
            }
            if !(1..=366).contains(&g.outcome_days) {
                return Some((at("outcome_days"), "must be between 1 and 366".into()));
            }
            if !(2..=50).contains(&g.min_fairness_samples) {
                return Some((
                    at("min_fairness_samples"),
                    "must be between 2 and 50".into(),
                ));
            }
            if g.min_outcomes == 0 || g.min_outcomes > 1_000_000_000 {
                return Some((
                    at("min_outcomes"),
                    "must be between 1 and 1000000000".into(),
                ));
            }
        }
        None
    }
}

/// A suite of the use case and the latest finished run of its latest version.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteFact {
    /// Its name.
    pub suite: String,
    /// Its latest version.
    pub version: i64,
    /// The latest finished run of that version.
    pub run: Option<EvalFact>,
}

/// A finished evaluation run.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalFact {
    /// `run_…`.
    pub run_id: String,
    /// The suite and its version.
    pub suite: String,
    /// Its version.
    pub suite_version: i64,
    /// Its pass rate.
    pub pass_rate: f64,
    /// The suite's own pass rate.
    pub threshold: f64,
    /// The champion's run id and this run's pass rate minus the champion's.
    pub champion: Option<(String, f64)>,
    /// When it finished, RFC 3339.
    pub finished_at: String,
}

/// The latest finished fairness run.
#[derive(Debug, Clone, PartialEq)]
pub struct FairnessFact {
    /// `fair_…`.
    pub run_id: String,
    /// Whether it flagged a gap.
    pub flagged: bool,
    /// Samples it drew per variant.
    pub samples: u64,
    /// When it finished, RFC 3339.
    pub finished_at: String,
}

/// A budget on the use case.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetFact {
    /// `bud_…`.
    pub id: String,
    /// `day`, `week`, `month` or `lifetime`.
    pub period: String,
    /// Its limit.
    pub amount_nano_usd: u64,
}

/// An approval of the open promotion request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalFact {
    /// The role approved as.
    pub role: Approver,
    /// Who.
    pub user_id: String,
    /// When, RFC 3339.
    pub at: String,
    /// What they said.
    pub note: String,
}

/// What the store says about a use case, for its gate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// The value model's owner.
    pub owner: String,
    /// The primary KPI.
    pub kpi: String,
    /// Its baseline.
    pub baseline: f64,
    /// Tasks a month at full scale.
    pub volume_per_month: u64,
    /// Its production budgets.
    pub budgets: Vec<BudgetFact>,
    /// The policy that governs it: `use case v3` or `org default v2`.
    pub policy: Option<String>,
    /// Every suite of the use case, with its latest version's latest finished run.
    pub suites: Vec<SuiteFact>,
    /// The latest finished fairness run.
    pub fairness: Option<FairnessFact>,
    /// Production spend over the last 30 days.
    pub spent_30d_nano_usd: u64,
    /// Requests and sessions with an outcome over the last 30 days.
    pub outcomes_30d: u64,
    /// Requests and sessions with an outcome in the gate's window.
    pub outcomes_recent: u64,
    /// Who asked for the promotion, if anyone has.
    pub requester: Option<String>,
    /// The approvals of that request.
    pub approvals: Vec<ApprovalFact>,
}

/// One line of a checklist.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Line {
    /// `owner`, `value_model`, …, `approval:lead`.
    pub check: String,
    /// Whether the evidence is there.
    pub met: bool,
    /// What was found, in words.
    pub evidence: String,
    /// What it rests on (run ids, figures, people and times).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// A gate judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checklist {
    /// The stage it leads to.
    pub to: String,
    /// Every line met.
    pub met: bool,
    /// The lines, checks first, then approvals.
    pub lines: Vec<Line>,
}

impl Checklist {
    /// The checks not met, by name.
    pub fn unmet(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| !l.met)
            .map(|l| l.check.clone())
            .collect()
    }
}

fn usd(n: u64) -> String {
    Money::from_nanos(n).usd()
}

/// Judges `ev` against `gate` (for entering `to`).
pub fn checklist(to: &str, gate: &Gate, ev: &Evidence) -> Checklist {
    let mut lines: Vec<Line> = gate.checks.iter().map(|c| line(*c, gate, ev)).collect();
    // Approvals: each role by someone who is not the requester, and a person counts once.
    let mut counted: Vec<&str> = Vec::new();
    for role in &gate.approvals {
        let check = format!("approval:{}", role.as_str());
        let found = ev.approvals.iter().find(|a| {
            a.role == *role
                && Some(&a.user_id) != ev.requester.as_ref()
                && !counted.contains(&a.user_id.as_str())
        });
        lines.push(match found {
            Some(a) => {
                counted.push(&a.user_id);
                Line {
                    check,
                    met: true,
                    evidence: format!("approved by {} at {}", a.user_id, a.at),
                    data: json!({"user_id": a.user_id, "at": a.at, "note": a.note}),
                }
            }
            None => Line {
                check,
                met: false,
                evidence: match &ev.requester {
                    None => format!(
                        "no approval by a {}: nobody has asked for the promotion yet",
                        role.as_str().replace('_', " ")
                    ),
                    Some(r) => format!(
                        "no approval by a {} yet (requested by {r}, who may not approve it)",
                        role.as_str().replace('_', " ")
                    ),
                },
                data: json!({"requester": ev.requester}),
            },
        });
    }
    Checklist {
        to: to.to_string(),
        met: lines.iter().all(|l| l.met),
        lines,
    }
}

fn line(c: Check, gate: &Gate, ev: &Evidence) -> Line {
    let (met, evidence, data) = match c {
        Check::Owner => {
            let owner = ev.owner.trim();
            if is_blank(owner) {
                (false, "no owner in the value model".to_string(), json!({}))
            } else {
                (true, format!("owned by {owner}"), json!({"owner": owner}))
            }
        }
        Check::ValueModel => {
            let data = json!({"kpi": ev.kpi, "baseline": ev.baseline});
            match (is_blank(&ev.kpi), ev.baseline == 0.0) {
                (true, _) => (false, "no primary KPI in the value model".into(), data),
                (false, true) => (
                    false,
                    format!("primary KPI {} has no baseline", ev.kpi.trim()),
                    data,
                ),
                (false, false) => (
                    true,
                    format!("primary KPI {}, baseline {}", ev.kpi.trim(), ev.baseline),
                    data,
                ),
            }
        }
        Check::Budget => match ev.budgets.first() {
            None => (false, "no budget on the use case".into(), json!({})),
            Some(b) => (
                true,
                format!(
                    "budget {} of {} USD per {}",
                    b.id,
                    usd(b.amount_nano_usd),
                    b.period
                ),
                json!({"budget_id": b.id, "period": b.period, "amount_usd": usd(b.amount_nano_usd)}),
            ),
        },
        Check::Policy => match &ev.policy {
            None => (
                false,
                "no guard policy: neither its own nor an org default".into(),
                json!({}),
            ),
            Some(p) => (true, format!("governed by {p}"), json!({"policy": p})),
        },
        Check::Eval => eval_line(gate, ev),
        Check::Fairness => match &ev.fairness {
            None => (false, "no finished fairness run".into(), json!({})),
            Some(f) => {
                let data = json!({"run_id": f.run_id, "flagged": f.flagged, "samples": f.samples,
                    "needed_samples": gate.min_fairness_samples, "finished_at": f.finished_at});
                if f.samples < gate.min_fairness_samples {
                    (
                        false,
                        format!(
                            "fairness run {} drew {} samples per variant ({} needed)",
                            f.run_id, f.samples, gate.min_fairness_samples
                        ),
                        data,
                    )
                } else if f.flagged {
                    (
                        false,
                        format!("fairness run {} flagged a gap", f.run_id),
                        data,
                    )
                } else {
                    (
                        true,
                        format!("fairness run {} flagged no gap", f.run_id),
                        data,
                    )
                }
            }
        },
        Check::Cost => cost_line(ev),
        Check::Outcomes => {
            let data = json!({"outcomes": ev.outcomes_recent, "days": gate.outcome_days, "needed": gate.min_outcomes});
            let text = format!(
                "{} outcomes in the last {} days ({} needed; a request or a session counts once)",
                ev.outcomes_recent, gate.outcome_days, gate.min_outcomes
            );
            (ev.outcomes_recent >= gate.min_outcomes, text, data)
        }
    };
    Line {
        check: c.as_str().to_string(),
        met,
        evidence,
        data,
    }
}

fn eval_line(gate: &Gate, ev: &Evidence) -> (bool, String, serde_json::Value) {
    if ev.suites.is_empty() {
        return (false, "no evaluation suite".into(), json!({"suites": []}));
    }
    // Every suite counts — a new, easy suite does not hide a failing one — and each at its
    // latest version, at the higher of its own pass rate and the organization's floor.
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let (mut all, mut texts, mut data) = (true, Vec::new(), Vec::new());
    for s in &ev.suites {
        let Some(e) = &s.run else {
            all = false;
            texts.push(format!("{} v{}: no finished run", s.suite, s.version));
            data.push(json!({"suite": s.suite, "suite_version": s.version, "run_id": null}));
            continue;
        };
        let need = gate
            .min_pass_rate
            .map_or(e.threshold, |m| m.max(e.threshold));
        let (champion, delta) = match &e.champion {
            Some((id, d)) => (Some(id.clone()), Some(*d)),
            None => (None, None),
        };
        data.push(json!({
            "suite": s.suite, "suite_version": s.version, "run_id": e.run_id,
            "pass_rate": e.pass_rate, "needed": need, "champion_run_id": champion,
            "delta": delta, "max_regression": gate.max_regression, "finished_at": e.finished_at,
        }));
        let head = format!(
            "{} v{}: run {} passed {} (needs {})",
            s.suite,
            s.version,
            e.run_id,
            pct(e.pass_rate),
            pct(need)
        );
        let (ok, text) = if e.pass_rate < need {
            (false, head)
        } else {
            match (&champion, delta) {
                (Some(c), Some(d)) if d < -gate.max_regression => (
                    false,
                    format!(
                        "{head}, {} under champion {c}, more than the {} allowed",
                        pct(-d),
                        pct(gate.max_regression)
                    ),
                ),
                (Some(c), Some(d)) => (
                    true,
                    format!("{head}, Δ vs champion {c}: {:+.1} points", d * 100.0),
                ),
                _ => (true, format!("{head}, no champion yet")),
            }
        };
        all &= ok;
        texts.push(text);
    }
    (all, texts.join("; "), json!({"suites": data}))
}

fn cost_line(ev: &Evidence) -> (bool, String, serde_json::Value) {
    let monthly = ev.budgets.iter().find(|b| b.period == "month");
    let Some(budget) = monthly else {
        return (
            false,
            "no monthly budget on the use case to hold the projection to".into(),
            json!({}),
        );
    };
    if ev.volume_per_month == 0 {
        return (
            false,
            "cannot project the monthly cost: the value model has no volume per month".into(),
            json!({"budget_id": budget.id}),
        );
    }
    if ev.outcomes_30d == 0 {
        return (
            false,
            "cannot project the monthly cost: no outcomes in the last 30 days".into(),
            json!({"budget_id": budget.id}),
        );
    }
    // Cost per outcome over the last 30 days × the tasks a month at full scale.
    let projected = u128::from(ev.spent_30d_nano_usd) * u128::from(ev.volume_per_month)
        / u128::from(ev.outcomes_30d);
    let projected = u64::try_from(projected).unwrap_or(u64::MAX);
    let data = json!({
        "projected_usd": usd(projected), "budget_id": budget.id, "budget_usd": usd(budget.amount_nano_usd),
        "spent_30d_usd": usd(ev.spent_30d_nano_usd), "outcomes_30d": ev.outcomes_30d,
        "volume_per_month": ev.volume_per_month,
    });
    let text = format!(
        "projected {} USD a month ({} USD over {} outcomes in 30 days × {} tasks a month) against budget {} of {} USD",
        usd(projected),
        usd(ev.spent_30d_nano_usd),
        ev.outcomes_30d,
        ev.volume_per_month,
        budget.id,
        usd(budget.amount_nano_usd)
    );
    (projected <= budget.amount_nano_usd, text, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Evidence {
        Evidence {
            owner: "Ana".into(),
            kpi: "handle time".into(),
            baseline: 12.0,
            volume_per_month: 1_000,
            budgets: vec![BudgetFact {
                id: "bud_1".into(),
                period: "month".into(),
                amount_nano_usd: 50_000_000_000,
            }],
            policy: Some("org default v1".into()),
            suites: vec![SuiteFact {
                suite: "s".into(),
                version: 1,
                run: Some(EvalFact {
                    run_id: "run_1".into(),
                    suite: "s".into(),
                    suite_version: 1,
                    pass_rate: 0.9,
                    threshold: 0.8,
                    champion: Some(("run_0".into(), -0.04)),
                    finished_at: "t".into(),
                }),
            }],
            fairness: Some(FairnessFact {
                run_id: "fair_1".into(),
                flagged: false,
                samples: 10,
                finished_at: "t".into(),
            }),
            // 2 USD over 100 outcomes × 1,000 a month = 20 USD ≤ 50.
            spent_30d_nano_usd: 2_000_000_000,
            outcomes_30d: 100,
            outcomes_recent: 3,
            requester: Some("usr_b".into()),
            approvals: vec![
                ApprovalFact {
                    role: Approver::Lead,
                    user_id: "usr_l".into(),
                    at: "t".into(),
                    note: String::new(),
                },
                ApprovalFact {
                    role: Approver::RiskOfficer,
                    user_id: "usr_r".into(),
                    at: "t".into(),
                    note: String::new(),
                },
            ],
        }
    }

    fn judge(ev: &Evidence) -> (bool, Vec<String>) {
        let g = GateConfig::default();
        let mut unmet = checklist("pilot", &g.pilot, ev).unmet();
        let production = checklist("production", &g.production, ev);
        unmet.extend(production.unmet());
        (unmet.is_empty(), unmet)
    }

    #[test]
    fn all_evidence_meets_both_default_gates() {
        assert_eq!(judge(&full()), (true, vec![]));
    }

    /// Each missing piece of evidence fails exactly its own line.
    #[test]
    fn each_missing_piece_fails_its_line() {
        type Break = fn(&mut Evidence);
        let cases: Vec<(&str, Break)> = vec![
            ("owner", |e| e.owner = " ".into()),
            ("owner", |e| e.owner = "\u{200b}\u{feff}".into()),
            ("value_model", |e| e.kpi = "\u{2060}".into()),
            ("value_model", |e| e.kpi.clear()),
            ("value_model", |e| e.baseline = 0.0),
            ("budget", |e| e.budgets.clear()),
            ("policy", |e| e.policy = None),
            ("eval", |e| e.suites.clear()),
            ("eval", |e| e.suites[0].run = None),
            // A second suite without a passing run fails the line, however the first did.
            ("eval", |e| {
                let mut other = e.suites[0].clone();
                other.suite = "easy".into();
                other.run.as_mut().unwrap().pass_rate = 0.5;
                e.suites.push(other);
            }),
            ("eval", |e| {
                e.suites[0].run.as_mut().unwrap().pass_rate = 0.79
            }),
            ("eval", |e| {
                e.suites[0].run.as_mut().unwrap().champion = Some(("run_0".into(), -0.051))
            }),
            ("fairness", |e| e.fairness = None),
            ("fairness", |e| e.fairness.as_mut().unwrap().flagged = true),
            ("fairness", |e| e.fairness.as_mut().unwrap().samples = 9),
            ("cost", |e| e.spent_30d_nano_usd = 5_100_000_000),
            ("cost", |e| e.volume_per_month = 0),
            ("cost", |e| e.budgets[0].period = "week".into()),
            ("outcomes", |e| e.outcomes_recent = 0),
            ("approval:lead", |e| {
                e.approvals.remove(0);
            }),
            ("approval:risk_officer", |e| {
                e.approvals.remove(1);
            }),
            // The requester's own approval does not count.
            ("approval:lead", |e| e.requester = Some("usr_l".into())),
            // One person in both roles counts once.
            ("approval:risk_officer", |e| {
                e.approvals[1].user_id = "usr_l".into()
            }),
        ];
        for (want, break_it) in cases {
            let mut ev = full();
            break_it(&mut ev);
            let (ok, unmet) = judge(&ev);
            // The budget line of the pilot gate also needs a budget; the cost line a monthly one.
            let expected: Vec<String> = if want == "budget" {
                vec!["budget".into(), "cost".into()]
            } else {
                vec![want.into()]
            };
            assert!(!ok, "{want}");
            assert_eq!(unmet, expected, "{want}");
        }
    }

    #[test]
    fn the_threshold_and_tolerance_are_inclusive_and_configurable() {
        let mut ev = full();
        ev.suites[0].run.as_mut().unwrap().pass_rate = 0.8;
        ev.suites[0].run.as_mut().unwrap().champion = Some(("run_0".into(), -0.05));
        ev.spent_30d_nano_usd = 5_000_000_000; // exactly the 50 USD budget
        assert_eq!(judge(&ev), (true, vec![]));
        let mut g = GateConfig::default();
        g.production.min_pass_rate = Some(0.85);
        let c = checklist("production", &g.production, &ev);
        assert_eq!(c.unmet(), vec!["eval".to_string()]);
        assert!(c.lines[0].evidence.contains("needs 85.0 %"), "{c:?}");
        // The floor never lowers a suite's own pass rate.
        g.production.min_pass_rate = Some(0.5);
        let c = checklist("production", &g.production, &ev);
        assert!(c.lines[0].evidence.contains("needs 80.0 %"), "{c:?}");
    }

    #[test]
    fn config_problems_have_paths_and_unknown_fields_are_refused() {
        let bad: GateConfig =
            serde_json::from_value(json!({"production": {"max_regression": 2}})).unwrap();
        assert_eq!(
            bad.problem().unwrap().0,
            "production.max_regression".to_string()
        );
        for (doc, path) in [
            (
                json!({"production": {"min_outcomes": 0}}),
                "production.min_outcomes",
            ),
            (
                json!({"production": {"outcome_days": 0}}),
                "production.outcome_days",
            ),
            (
                json!({"production": {"outcome_days": 367}}),
                "production.outcome_days",
            ),
            (
                json!({"pilot": {"min_pass_rate": 1.5}}),
                "pilot.min_pass_rate",
            ),
            (
                json!({"pilot": {"min_pass_rate": -0.1}}),
                "pilot.min_pass_rate",
            ),
            (
                json!({"production": {"max_regression": -0.1}}),
                "production.max_regression",
            ),
            (
                json!({"production": {"min_fairness_samples": 1}}),
                "production.min_fairness_samples",
            ),
        ] {
            let c: GateConfig = serde_json::from_value(doc.clone()).unwrap();
            assert_eq!(c.problem().map(|p| p.0), Some(path.to_string()), "{doc}");
        }
        for doc in [
            json!({"production": {"min_outcomes": 1}}),
            json!({"production": {"outcome_days": 366}}),
            json!({"pilot": {"min_pass_rate": 1.0}}),
        ] {
            let c: GateConfig = serde_json::from_value(doc.clone()).unwrap();
            assert_eq!(c.problem(), None, "{doc} is allowed");
        }
        let twice: GateConfig =
            serde_json::from_value(json!({"pilot": {"approvals": ["lead", "lead"]}})).unwrap();
        // A field left out keeps the stage's default; an empty list asks for nothing.
        let partial: GateConfig = serde_json::from_value(
            json!({"production": {"min_outcomes": 5, "outcome_days": 45, "max_regression": 0.2, "min_fairness_samples": 20}}),
        )
        .unwrap();
        assert_eq!(
            (
                partial.production.outcome_days,
                partial.production.max_regression,
                partial.production.min_fairness_samples
            ),
            (45, 0.2, 20)
        );
        assert_eq!(
            partial.production.checks,
            GateConfig::default().production.checks
        );
        assert_eq!(partial.production.approvals.len(), 2);
        assert_eq!(partial.production.min_outcomes, 5);
        let off: GateConfig =
            serde_json::from_value(json!({"production": {"checks": [], "approvals": []}})).unwrap();
        assert!(off.production.checks.is_empty() && off.production.approvals.is_empty());
        assert_eq!(off.pilot, GateConfig::default().pilot);
        let floor: GateConfig =
            serde_json::from_value(json!({"production": {"min_pass_rate": 0.9}})).unwrap();
        assert_eq!(floor.production.min_pass_rate, Some(0.9));
        // What is served reads back as itself.
        let back: GateConfig =
            serde_json::from_value(serde_json::to_value(&floor).unwrap()).unwrap();
        assert_eq!(back, floor);
        assert_eq!(twice.problem().unwrap().0, "pilot.approvals[1]");
        assert!(serde_json::from_value::<GateConfig>(json!({"pilot": {"cheks": []}})).is_err());
        assert!(
            serde_json::from_value::<GateConfig>(json!({"pilot": {"checks": ["magic"]}})).is_err()
        );
        // Absent parts are the defaults.
        let d: GateConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(d, GateConfig::default());
        assert!(d.problem().is_none());
    }
}
