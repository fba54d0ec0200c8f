//! `GET /admin/v1/kpis`: the 25 KPIs of a use case, a pod or the portfolio over a window,
//! computed by `tollgate-value` from the rollups the ledger and the outcome writers keep (never
//! a scan of raw records), the registry's value models, stage history and the budgets.

use crate::common::*;
use tollgate_store::{KpiQueries, OutcomeQueries, OutcomeRollup};
use tollgate_value::kpis::{BudgetBurn, Retention};
use tollgate_value::{Facts, UseCaseFacts};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The window of a report: `window` (`day`, `week`, `month` — the last 1, 7 or 30 days) or `from`
/// and `to` (RFC 3339); the last 30 days by default. KPIs are kept per hour, so the window is
/// made of whole hours — `from` rounded down, `to` up (a named window, and any window reaching
/// past it, ends with the hour now is in) — and the report's `from` and `to` say which: every
/// KPI of a report covers the same hours.
fn window(q: &HashMap<String, String>, now: i64) -> Result<(i64, i64)> {
    match (q.get("window"), q.get("from"), q.get("to")) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::invalid(
            "give either `window` or `from` and `to`, not both",
            Some("window".into()),
        )),
        (None, Some(f), Some(t)) => {
            let (from, to) = report_range(f, t)?;
            // Nothing has happened past the current hour: a window reaching beyond it ends
            // there, so averages per day and "the last 30 days of the window" are over days
            // that have been (the report's `to` says where it ended).
            let now_end = hour_end(now);
            let from = from.div_euclid(HOUR_MS) * HOUR_MS;
            if from >= now_end {
                return Err(ApiError::invalid(
                    "`from` is in the future: nothing has happened there yet",
                    Some("from".into()),
                ));
            }
            Ok((from, hour_end(to).min(now_end)))
        }
        (None, Some(_), None) => Err(ApiError::invalid(
            "`to` is required with `from`",
            Some("to".into()),
        )),
        (None, None, Some(_)) => Err(ApiError::invalid(
            "`from` is required with `to`",
            Some("from".into()),
        )),
        (w, None, None) => {
            let days = match w.map(String::as_str).unwrap_or("month") {
                "day" => 1,
                "week" => 7,
                "month" => 30,
                _ => {
                    return Err(ApiError::invalid(
                        "`window` must be day, week or month",
                        Some("window".into()),
                    ));
                }
            };
            let to = hour_end(now);
            Ok((to - days * DAY_MS, to))
        }
    }
}

/// The end of the hour `at` (ms) is in, or `at` when it is one (the rounding [`facts`] reads
/// the hourly rollups with).
fn hour_end(at: i64) -> i64 {
    (at + HOUR_MS - 1).div_euclid(HOUR_MS) * HOUR_MS
}

/// Every use case of `filter`, all pages.
async fn all_use_cases(gw: &Control, filter: &m::UseCaseFilter) -> Result<Vec<m::UseCase>> {
    let mut page = PageRequest {
        after: None,
        limit: 200,
    };
    let mut out = Vec::new();
    loop {
        let p = gw.store.list_use_cases(filter, &page).await?;
        out.extend(p.items);
        match p.next {
            Some(after) => page.after = Some(after),
            None => return Ok(out),
        }
    }
}

/// KPIs 6, 7 and 10 from the scope's evaluation and fairness runs in the window: the latest
/// finished run of each use case and its champion, summed; fairness flags per finished run.
fn evaluations(ev: &m::UseCaseEvidence) -> (Option<tollgate_value::kpis::EvalFacts>, Option<f64>) {
    let (mut cand, mut champ) = (None::<(u64, u64)>, None::<(u64, u64)>);
    for r in &ev.latest_runs {
        let c = cand.get_or_insert((0, 0));
        c.0 += r.latest.0;
        c.1 += r.latest.1;
        if let Some(ch) = r.champion {
            let c = champ.get_or_insert((0, 0));
            c.0 += ch.0;
            c.1 += ch.1;
        }
    }
    let (runs, flags) = ev
        .fairness
        .iter()
        .fold((0u64, 0u64), |(r, f), (_, runs, flags)| {
            (r + runs, f + flags)
        });
    (
        cand.map(|c| (c, champ)),
        (runs > 0).then(|| flags as f64 / runs as f64),
    )
}

/// KPI 20's inputs for the use cases `ids`: the last month complete by `until` (UTC), the
/// month-end forecast the forecast report would have given at the end of its 14th — rebuilt
/// from the same hourly spend rollups, so it is the report's method that is checked — and what
/// the month cost.
async fn forecast_check(
    gw: &Control,
    ids: &HashMap<&str, &m::UseCase>,
    until: i64,
) -> Result<Option<tollgate_value::ForecastCheck>> {
    use tollgate_meter::period::{Period, bounds};
    let month = |at: i64| bounds(Period::Month, "UTC", at).ok();
    // The month `until` falls in has not ended by then; the one before it has.
    let Some((start, end)) = month(until).and_then(|(this, _)| month(this - 1)) else {
        return Ok(None);
    };
    let Ok(f) = tollgate_meter::forecast::MonthEnd::as_of(start + 14 * DAY_MS - 1) else {
        return Ok(None);
    };
    let spend = |from_h: i64, to_h: i64| async move {
        let rows = gw.store.spend_by("use_case", from_h, to_h, None).await?;
        Ok::<u64, ApiError>(
            rows.iter()
                .filter(|(uc, _)| ids.contains_key(uc.as_str()))
                .fold(0u64, |sum, (_, t)| sum.saturating_add(t.cost_nano_usd)),
        )
    };
    let spent = spend(f.month_start_h, f.until_h).await?;
    let window = spend(f.window_start_h, f.until_h).await?;
    let actual = spend(start.div_euclid(HOUR_MS), end.div_euclid(HOUR_MS)).await?;
    Ok(Some(tollgate_value::ForecastCheck {
        month: tollgate_types::time::rfc3339(start)
            .chars()
            .take(7)
            .collect(),
        spent_before_nano_usd: spent,
        forecast_nano_usd: f.project(spent, window),
        actual_nano_usd: actual,
    }))
}

/// What the KPIs of `scope` over `[from, to)` are computed from.
pub(crate) async fn facts(
    gw: &Control,
    scope: &m::KpiScope,
    use_cases: &[m::UseCase],
    from: i64,
    to: i64,
) -> Result<Facts> {
    let d = gw.store.kpi_data(scope, from, to).await?;
    let ids: HashMap<&str, &m::UseCase> = use_cases.iter().map(|u| (u.id.as_str(), u)).collect();
    let (h0, h1) = (
        from.div_euclid(HOUR_MS),
        (to + HOUR_MS - 1).div_euclid(HOUR_MS),
    );
    let mut per_uc: HashMap<&str, OutcomeRollup> = HashMap::new();
    for r in gw.store.outcome_rollups(h0, h1).await? {
        if let Some((id, _)) = ids.get_key_value(r.use_case_id.as_str()) {
            per_uc.entry(id).or_default().merge(&r);
        }
    }
    let mut recent: HashMap<String, u64> = HashMap::new();
    for r in gw
        .store
        .outcome_rollups((to - 30 * DAY_MS).div_euclid(HOUR_MS), h1)
        .await?
    {
        *recent.entry(r.use_case_id).or_insert(0) += r.outcomes();
    }
    let evidence = gw.store.use_case_evidence(scope, from, to).await?;
    let first_entered: HashMap<(&str, m::Stage), i64> = evidence
        .first_entered
        .iter()
        .map(|(uc, stage, at)| ((uc.as_str(), *stage), *at))
        .collect();
    let mut outcomes = OutcomeRollup::default();
    let (mut modelled_value, mut modelled_minutes, mut eligible) = (0u64, 0u64, 0u64);
    let mut ucs = Vec::with_capacity(use_cases.len());
    for uc in use_cases {
        let o = per_uc.get(uc.id.as_str()).cloned().unwrap_or_default();
        let v = &uc.value_model;
        modelled_value = modelled_value.saturating_add(
            o.success_unvalued
                .saturating_mul(v.value_per_outcome_nano_usd),
        );
        let saved = (v.baseline_minutes_per_task - v.assisted_minutes_per_task).max(0.0);
        modelled_minutes = modelled_minutes
            .saturating_add((o.success_untimed as f64 * saved * 1000.0).round() as u64);
        eligible = eligible.saturating_add(v.eligible_users);
        outcomes.merge(&o);
        let first = |s: m::Stage| first_entered.get(&(uc.id.as_str(), s)).copied();
        ucs.push(UseCaseFacts {
            id: uc.id.clone(),
            stage: Some(uc.stage),
            pilot_at: first(m::Stage::Pilot),
            production_at: first(m::Stage::Production),
            has_kpi: !v.kpi.trim().is_empty(),
            has_baseline: v.baseline != 0.0,
            outcomes_30d: recent.get(&uc.id).copied().unwrap_or(0),
        });
    }
    // Requests to models the catalog pairs with a cheaper one (what cost advice calls premium).
    // Counted over the scope's production requests, like the share's denominator.
    let premium_requests = d
        .requests_by_model
        .iter()
        .filter(|(model, _)| {
            gw.catalog
                .lookup(model)
                .is_some_and(|e| e.cheaper.is_some())
        })
        .fold(0u64, |n, (_, r)| n.saturating_add(*r));
    // The budgets on the scope itself, in their current periods.
    let now = gw.clock.now_ms();
    let mut budget: Option<BudgetBurn> = None;
    for s in gw.plane.budget_statuses() {
        let on_scope = match scope {
            m::KpiScope::UseCase(id) => s.budget.scope == "use_case" && &s.budget.scope_id == id,
            m::KpiScope::Pod(id) => s.budget.scope == "pod" && &s.budget.scope_id == id,
            m::KpiScope::Portfolio => s.budget.scope == "org",
        };
        if on_scope {
            let b = budget.get_or_insert_with(BudgetBurn::default);
            b.amount_nano_usd = b.amount_nano_usd.saturating_add(s.budget.amount_nano_usd);
            b.spent_nano_usd = b.spent_nano_usd.saturating_add(s.spent_nano_usd);
            b.days_elapsed = b
                .days_elapsed
                .max((now - s.period_start).max(0) as f64 / DAY_MS as f64);
        }
    }
    // The providers the scope's use cases can reach, and their request quotas.
    let mut reach: Vec<(&str, Option<u64>)> = Vec::new();
    for uc in use_cases {
        for route in &uc.routes {
            for (name, quota) in gw.route_providers.get(route).into_iter().flatten() {
                if !reach.iter().any(|(n, _)| n == name) {
                    reach.push((name, *quota));
                }
            }
        }
    }
    let providers_without_quota: Vec<String> = reach
        .iter()
        .filter(|(_, q)| q.is_none())
        .map(|(n, _)| n.to_string())
        .collect();
    let quota_requests_per_minute = (!reach.is_empty() && providers_without_quota.is_empty())
        .then(|| reach.iter().filter_map(|(_, q)| *q).sum());
    let (eval, fairness_flags_per_release) = evaluations(&evidence);
    let forecast = forecast_check(gw, &ids, to.min(now)).await?;
    Ok(Facts {
        forecast,
        routing_priced: d.routing_priced,
        routing_savings_nano_usd: (d.routing_priced > 0).then(|| {
            let s = i128::from(d.first_choice_nano_usd) - i128::from(d.first_choice_paid_nano_usd);
            i64::try_from(s).unwrap_or(if s < 0 { i64::MIN } else { i64::MAX })
        }),
        eval,
        fairness_flags_per_release,
        from_ms: from,
        to_ms: to,
        requests: d.requests,
        answered: d.answered,
        errors: d.errors,
        fallbacks: d.fallbacks,
        streams: d.streams,
        streams_cancelled: d.streams_cancelled,
        guard_blocked: d.guard_blocked,
        guard_flagged: d.guard_flagged,
        tokens: d.tokens,
        cost_nano_usd: d.cost_nano_usd,
        latency: d.latency,
        ttft: d.ttft,
        active_users: d.active_users,
        daily_active_avg: if d.days > 0 {
            d.user_days as f64 / d.days as f64
        } else {
            0.0
        },
        weekly_active: d.weekly_active,
        monthly_active: d.monthly_active,
        retention: d.retention_cohort.map(|cohort| Retention {
            cohort,
            retained: d.retention_kept,
        }),
        sessions: d.sessions,
        session_requests: d.session_requests,
        peak_requests_per_minute: d.peak_requests_per_minute,
        peak_tokens_per_minute: d.peak_tokens_per_minute,
        premium_requests,
        outcomes,
        eligible_users: eligible,
        modelled_value_nano_usd: modelled_value,
        modelled_minutes_milli: modelled_minutes,
        budget,
        // Attainment is measured where an SLO is set (or was: its windows remain).
        slo_windows: (d.slo_windows.0 > 0 || use_cases.iter().any(|u| u.slo.is_set()))
            .then_some(d.slo_windows),
        use_cases: ucs,
        quota_requests_per_minute,
        providers_without_quota,
        ..Facts::default()
    })
}

#[utoipa::path(get, path = "/admin/v1/kpis", tag = "reports",
    params(
        ("use_case_id" = Option<String>, Query, description = "one use case's KPIs"),
        ("pod_id" = Option<String>, Query, description = "one pod's KPIs (without either: the portfolio's, for org-wide roles)"),
        ("window" = Option<String>, Query, pattern = "^(day|week|month)$", description = "the last day, 7 days or 30 days, ending with the current hour (default: month)"),
        ("from" = Option<String>, Query, description = "instead of window: RFC 3339 start, rounded down to the hour (KPIs are kept per hour)"),
        ("to" = Option<String>, Query, description = "instead of window: RFC 3339 end, after from, rounded up to the hour"),
    ),
    responses((status = 200, body = KpiReport), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// The 25 KPIs of a use case, a pod or the portfolio over a window — each with its definition,
/// its inputs and how many events it rests on, or why it is not available yet. Pod members read
/// their pods' and their use cases'; the portfolio's are for org-wide roles.
pub async fn kpis(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<KpiReport>> {
    let (from, to) = window(&q, gw.clock.now_ms())?;
    let (scope, use_cases) = match (
        filter_param(&q, "use_case_id")?,
        filter_param(&q, "pod_id")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give either `use_case_id` or `pod_id`, not both",
                Some("pod_id".into()),
            ));
        }
        (Some(id), None) => {
            let uc = readable_use_case(&gw, &p, id).await?;
            (m::KpiScope::UseCase(id.to_string()), vec![uc])
        }
        (None, Some(id)) => {
            readable_pod(&gw, &p, id).await?;
            let filter = m::UseCaseFilter {
                pod_ids: Some(vec![id.to_string()]),
                stage: None,
            };
            (
                m::KpiScope::Pod(id.to_string()),
                all_use_cases(&gw, &filter).await?,
            )
        }
        (None, None) => {
            if !p.reads_all() {
                return Err(ApiError::Forbidden {
                    message: "the portfolio's KPIs are for org-wide roles; ask for a pod's (`pod_id`) or a use case's (`use_case_id`)".into(),
                    code: "role_forbids",
                });
            }
            let all = all_use_cases(&gw, &m::UseCaseFilter::default()).await?;
            (m::KpiScope::Portfolio, all)
        }
    };
    // The parameters and the caller's scope are checked first; then what was asked before this
    // report is in it (the ledger's last batch is written first).
    gw.plane.settled().await;
    let f = facts(&gw, &scope, &use_cases, from, to).await?;
    let (kind, id) = match &scope {
        m::KpiScope::UseCase(id) => ("use_case", Some(id.clone())),
        m::KpiScope::Pod(id) => ("pod", Some(id.clone())),
        m::KpiScope::Portfolio => ("portfolio", None),
    };
    Ok(Json(KpiReport {
        scope: kind.into(),
        scope_id: id,
        from: tollgate_types::time::rfc3339(from),
        to: tollgate_types::time::rfc3339(to),
        use_cases: use_cases.len() as u64,
        kpis: tollgate_value::compute(&f)
            .into_iter()
            .map(KpiValue::from)
            .collect(),
    }))
}
