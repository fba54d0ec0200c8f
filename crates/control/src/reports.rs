//! Reports over the ledger's rollups: spend, forecast, cost advice, and the FOCUS 1.2 export.

use crate::common::*;

/// A calendar month (UTC) given as `2026-11` → its [start, end) in Unix ms.
pub(crate) fn month_bounds(month: &str) -> Result<(i64, i64)> {
    let bad = || ApiError::invalid("`month` must look like 2026-11", Some("month".into()));
    // A month written right but outside the ledger's range is told so, not called malformed.
    let range = || {
        ApiError::invalid(
            "`month` must be from 1970-01 to 9999-11",
            Some("month".into()),
        )
    };
    if month.len() != 7 {
        return Err(bad());
    }
    let first = format!("{month}-01T00:00:00Z");
    let Some(start) = parse_rfc3339(&first) else {
        return Err(if only_the_year_is_out_of_range(&first) {
            range()
        } else {
            bad()
        });
    };
    tollgate_meter::period::bounds(tollgate_meter::period::Period::Month, "UTC", start)
        .map_err(|_| range())
}

/// One CSV cell. A cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) gets a leading `'` (OWASP's CSV-injection advice), and a cell with a comma,
/// quote, CR or LF is quoted, so a name like `=HYPERLINK(…)` is text, never a live formula.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

#[utoipa::path(get, path = "/admin/v1/reports/spend", tag = "reports",
    params(
        ("by" = String, Query, pattern = "^(pod|use_case|key|route|model|day)$", description = "pod | use_case | key | route | model | day"),
        ("from" = Option<String>, Query, description = "RFC 3339; rounded down to the hour (required unless `month`)"),
        ("to" = Option<String>, Query, description = "RFC 3339, after `from`; rounded up to the hour (required unless `month`)"),
        ("month" = Option<String>, Query, pattern = "^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])$|^9999-(0[1-9]|1[01])$", description = "instead of from/to: a calendar month (UTC), e.g. 2026-11 — showback"),
        ("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "json (default) | csv"),
    ),
    responses((status = 200, description = "the report as JSON, or as CSV with `format=csv`", content((SpendReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Spend over a time range, grouped, from the hourly rollups (never a scan of raw requests). Pod
/// members see their pods' spend; org-wide roles see everything.
pub async fn spend_report(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let by = q.get("by").map(String::as_str).unwrap_or("");
    if !["pod", "use_case", "key", "route", "model", "day"].contains(&by) {
        return Err(ApiError::invalid(
            "`by` must be pod, use_case, key, route, model or day",
            Some("by".into()),
        ));
    }
    let given = |name: &str| -> Result<&String> {
        q.get(name).ok_or_else(|| {
            ApiError::invalid(
                format!("`{name}` is required (RFC 3339)"),
                Some(name.into()),
            )
        })
    };
    let (from, to) = match q.get("month") {
        // Showback for a calendar month (UTC): `month=2026-11`.
        Some(month) => {
            if q.contains_key("from") || q.contains_key("to") {
                return Err(ApiError::invalid(
                    "give either `month` or `from` and `to`, not both",
                    Some("month".into()),
                ));
            }
            month_bounds(month)?
        }
        None => {
            let from = given("from")?;
            report_range(from, given("to")?)?
        }
    };
    // The parameters are checked first; then what was asked before this report is in it (the
    // ledger's last batch is written first).
    gw.plane.settled().await;
    let csv = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "`format` must be json or csv",
                Some("format".into()),
            ));
        }
    };
    let (from_hour, to_hour) = (
        from.div_euclid(3_600_000),
        (to + 3_599_999).div_euclid(3_600_000),
    );
    let visible = p.visible_pods();
    let groups = gw
        .store
        .spend_by(by, from_hour, to_hour, visible.as_deref())
        .await?;
    let mut rows = Vec::with_capacity(groups.len());
    let mut total = m::Totals::default();
    for (group, t) in groups {
        let name = match by {
            "pod" => gw.store.get_pod(&group).await.ok().map(|x| x.name),
            "use_case" => gw.store.get_use_case(&group).await.ok().map(|x| x.name),
            // A key's name (attack 2026-12-04e F6: the rows by key had none).
            "key" => gw.store.get_key(&group).await.ok().map(|x| x.name),
            _ => None,
        };
        let group = if by == "day" {
            group
                .parse::<i64>()
                .map(|d| tollgate_types::time::rfc3339(d * 86_400_000)[..10].to_string())
                .unwrap_or(group)
        } else {
            group
        };
        total.add(&t);
        rows.push(SpendRow::new(group, name, &t));
    }
    let report = SpendReport {
        by: by.to_string(),
        from: tollgate_types::time::rfc3339(from_hour * 3_600_000),
        to: tollgate_types::time::rfc3339(to_hour * 3_600_000),
        rows,
        total: SpendRow::new("total".into(), None, &total),
    };
    if !csv {
        return Ok(Json(report).into_response());
    }
    let mut out = String::from(
        "group,name,requests,errors,unpriced,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_nano_usd,cost_usd\n",
    );
    for r in report.rows.iter().chain(std::iter::once(&report.total)) {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&r.group),
            csv_field(r.name.as_deref().unwrap_or("")),
            r.requests,
            r.errors,
            r.unpriced,
            r.input_tokens,
            r.cached_input_tokens,
            r.cache_write_tokens,
            r.output_tokens,
            r.reasoning_tokens,
            r.cost_nano_usd,
            r.cost_usd
        ));
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        out,
    )
        .into_response())
}

#[utoipa::path(get, path = "/admin/v1/reports/focus", tag = "reports",
    params(
        ("month" = String, Query, pattern = "^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])$|^9999-(0[1-9]|1[01])$", description = "the billing period: a calendar month (UTC), e.g. 2026-11"),
        ("format" = Option<String>, Query, pattern = "^(csv|json)$", description = "csv (default) | json"),
    ),
    responses(
        // One 200 with both bodies: two `status = 200` entries keep only the last.
        (status = 200, description = "FOCUS 1.2 rows as CSV (header row first; a null is an empty field; the default), or as JSON with `format=json`; the `x-tollgate-focus-*` headers carry the row count, the unpriced row count, the billed total and the spend not in the export",
            content((String = "text/csv"), (FocusExport = "application/json"))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// A month of spend in FOCUS 1.2 columns (one row per hour × pod × use case × deployment × token
/// kind), from the ledger's rollups. Pod members see their pods' rows; org-wide roles see all.
/// The billed total equals the spend report of the month to the nano-dollar; spend recorded
/// before the FOCUS rollups existed is reported as `not_exported`, never silently dropped.
/// Unpriced deployments export null prices and costs (unknown, never 0), counted in
/// `unpriced_rows`. The export is allocation (showback/chargeback) data, not an invoice:
/// `InvoiceId` is null, and it must not be loaded beside the providers' invoices and counted twice.
pub async fn focus_export(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let month = q.get("month").ok_or_else(|| {
        ApiError::invalid(
            "`month` is required, e.g. month=2026-11",
            Some("month".into()),
        )
    })?;
    let (start, end) = month_bounds(month)?;
    let csv = match q.get("format").map(String::as_str) {
        None | Some("csv") => true,
        Some("json") => false,
        Some(_) => {
            return Err(ApiError::invalid(
                "`format` must be csv or json",
                Some("format".into()),
            ));
        }
    };
    let (from_h, to_h) = (start / 3_600_000, end / 3_600_000);
    // The parameters are checked first; then what was asked before this report is in it (the
    // ledger's last batch is written first).
    gw.plane.settled().await;
    let visible = p.visible_pods();
    // Counts and totals first, from one snapshot (records written meanwhile never look like a
    // gap); then the rows, streamed a day at a time so a large month never sits in memory.
    let counts = gw
        .store
        .focus_summary(from_h, to_h, visible.as_deref())
        .await?;
    let summary = FocusSummary::from_counts(&counts);
    if summary.not_exported_nano_usd > 0 {
        tracing::warn!(month = %month, not_exported_nano_usd = summary.not_exported_nano_usd, "FOCUS export: part of the month's spend was recorded before the FOCUS rollups existed and is not in the export");
    }
    let (head, tail) = if csv {
        (crate::focus::csv_header(), String::new())
    } else {
        // The document without its rows, `{…,"rows":[]}`, cut open before `]}`; the rows are
        // streamed in between.
        let empty = serde_json::to_string(&FocusExport {
            version: "1.2".into(),
            month: month.clone(),
            billing_period_start: tollgate_types::time::rfc3339(start),
            billing_period_end: tollgate_types::time::rfc3339(end),
            summary: summary.clone(),
            rows: Vec::new(),
        })
        .map_err(|_| ApiError::Internal)?;
        let head = empty
            .strip_suffix("]}")
            .ok_or(ApiError::Internal)?
            .to_string();
        (head, "]}".to_string())
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(2);
    let store = gw.store.clone();
    tokio::spawn(async move {
        if tx.send(Ok(head.into())).await.is_err() {
            return;
        }
        let mut first = true;
        for day in (from_h..to_h).step_by(24) {
            let rollups = match store
                .focus_rollups(day, (day + 24).min(to_h), visible.as_deref())
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    // The client sees the body end in an error, never a short export that looks whole.
                    tracing::warn!(error = %e, "FOCUS export failed midway");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let lines = crate::focus::lines(&rollups, start, end);
            if lines.is_empty() {
                continue;
            }
            let chunk = if csv {
                crate::focus::csv_rows(&lines)
            } else {
                let mut out = String::new();
                for row in crate::focus::to_json(&lines) {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::Object(row).to_string());
                }
                out
            };
            if tx.send(Ok(chunk.into())).await.is_err() {
                return; // the client left
            }
        }
        if !tail.is_empty() {
            let _ = tx.send(Ok(tail.into())).await;
        }
    });
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    let mut resp = (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert("x-tollgate-focus-rows", summary.rows.into());
    h.insert(
        "x-tollgate-focus-unpriced-rows",
        summary.unpriced_rows.into(),
    );
    h.insert(
        "x-tollgate-focus-billed-nano-usd",
        summary.billed_nano_usd.into(),
    );
    h.insert(
        "x-tollgate-focus-not-exported-nano-usd",
        summary.not_exported_nano_usd.into(),
    );
    Ok(resp)
}

#[utoipa::path(get, path = "/admin/v1/reports/forecast", tag = "reports",
    params(("by" = Option<String>, Query, pattern = "^(pod|use_case)$", description = "pod | use_case (default: only the total)")),
    responses((status = 200, body = Forecast), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Month-end spend forecast (UTC month): spend so far this month plus the hourly rate of the last
/// 7 days (or of the month so far, if it began less than 7 days ago) times the hours left.
pub async fn forecast(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Forecast>> {
    let by = match q.get("by").map(String::as_str) {
        None => None,
        Some(b @ ("pod" | "use_case")) => Some(b),
        Some(_) => {
            return Err(ApiError::invalid(
                "`by` must be pod or use_case",
                Some("by".into()),
            ));
        }
    };
    let now = gw.clock.now_ms();
    // The parameters are checked first; then what was asked before this report is in it (the
    // ledger's last batch is written first).
    gw.plane.settled().await;
    let f = tollgate_meter::forecast::MonthEnd::as_of(now).map_err(|_| ApiError::Internal)?;
    let visible = p.visible_pods();
    let group_by = by.unwrap_or("pod");
    let spent = gw
        .store
        .spend_by(group_by, f.month_start_h, f.until_h, visible.as_deref())
        .await?;
    let window = gw
        .store
        .spend_by(group_by, f.window_start_h, f.until_h, visible.as_deref())
        .await?;
    let row = |group: String, name: Option<String>, spent: u64, win: u64| {
        let forecast = f.project(spent, win);
        ForecastRow {
            group,
            name,
            spent_nano_usd: spent,
            window_spent_nano_usd: win,
            forecast_nano_usd: forecast,
            forecast_usd: tollgate_meter::Money(forecast).usd(),
        }
    };
    let (mut total_spent, mut total_window) = (0u64, 0u64);
    let mut rows = Vec::new();
    for (group, t) in &spent {
        let win = window
            .iter()
            .find(|(g, _)| g == group)
            .map_or(0, |(_, w)| w.cost_nano_usd);
        total_spent += t.cost_nano_usd;
        total_window += win;
        if by.is_some() {
            let name = match group_by {
                "pod" => gw.store.get_pod(group).await.ok().map(|x| x.name),
                _ => gw.store.get_use_case(group).await.ok().map(|x| x.name),
            };
            rows.push(row(group.clone(), name, t.cost_nano_usd, win));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.forecast_nano_usd));
    Ok(Json(Forecast {
        method: "spend so far this month + (spend in the trailing window ÷ its minutes) × minutes left; the window is the last 7 days, or the month so far if shorter, up to the end of the current minute".into(),
        month_start: tollgate_types::time::rfc3339(f.month_start_h * 3_600_000),
        month_end: tollgate_types::time::rfc3339(f.month_end_h * 3_600_000),
        window_minutes: f.window_minutes(),
        minutes_left: f.minutes_left(),
        rows,
        total: row("total".into(), None, total_spent, total_window),
    }))
}

#[utoipa::path(get, path = "/admin/v1/reports/advice", tag = "reports",
    responses((status = 200, body = Advice), (status = 401, body = ErrorResponse)))]
/// Cost advice: identical requests an exact cache would answer, premium-model spend with a cheaper
/// candidate (both over the last 30 days), keys idle for 30 days, and budgets that will run out
/// before their period ends.
pub async fn advice(State(gw): Gw, p: Principal) -> Result<Json<Advice>> {
    // What was asked before this report is in it (the ledger's last batch is written first).
    gw.plane.settled().await;
    // It takes no parameters (the router refuses any: a misspelt filter must not look as if it
    // applied).
    const DAY: i64 = 86_400_000;
    let now = gw.clock.now_ms();
    let window_start = now - 30 * DAY;
    let usd = |n: u64| tollgate_meter::Money(n).usd();
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut name_of = async |id: &str| -> Option<String> {
        if let Some(n) = names.get(id) {
            return n.clone();
        }
        let n = gw.store.get_use_case(id).await.ok().map(|u| u.name);
        names.insert(id.to_string(), n.clone());
        n
    };
    let visible = p.visible_pods();
    let mut duplicate_prompts = Vec::new();
    for d in gw
        .store
        .duplicate_prompts(window_start, now + 1, visible.as_deref())
        .await?
    {
        if d.duplicates == 0 {
            continue;
        }
        duplicate_prompts.push(DuplicatePromptAdvice {
            name: name_of(&d.use_case_id).await,
            share_percent: format!(
                "{:.1}",
                d.duplicates as f64 * 100.0 / d.requests.max(1) as f64
            ),
            duplicate_cost_usd: usd(d.duplicate_cost_nano_usd),
            use_case_id: d.use_case_id,
            requests: d.requests,
            duplicates: d.duplicates,
            duplicate_cost_nano_usd: d.duplicate_cost_nano_usd,
        });
    }
    let catalog = &gw.catalog;
    let mut premium_models = Vec::new();
    for (use_case_id, model, t) in gw
        .store
        .spend_by_use_case_and_model(
            window_start.div_euclid(3_600_000),
            now.div_euclid(3_600_000) + 1,
            visible.as_deref(),
        )
        .await?
    {
        let Some(cheaper) = catalog
            .lookup(&model)
            .and_then(|e| e.cheaper.as_deref())
            .and_then(|c| catalog.lookup(c))
        else {
            continue;
        };
        let tokens = tollgate_meter::Tokens {
            input: t.input_tokens,
            cached_input: t.cached_input_tokens,
            cache_write: t.cache_write_tokens,
            output: t.output_tokens,
            reasoning: t.reasoning_tokens,
        };
        let on_cheaper = tollgate_meter::cost(&cheaper.prices, &tokens).nanos();
        if t.cost_nano_usd <= on_cheaper {
            continue;
        }
        let saving = t.cost_nano_usd - on_cheaper;
        premium_models.push(PremiumModelAdvice {
            name: name_of(&use_case_id).await,
            use_case_id,
            model,
            spend_nano_usd: t.cost_nano_usd,
            cheaper_model: cheaper.model.clone(),
            cost_on_cheaper_nano_usd: on_cheaper,
            saving_nano_usd: saving,
            saving_usd: usd(saving),
        });
    }
    premium_models.sort_by_key(|a| std::cmp::Reverse(a.saving_nano_usd));
    let last_used: HashMap<String, i64> = gw.store.keys_last_used().await?.into_iter().collect();
    let filter = m::KeyFilter {
        pod_ids: p.visible_pods(),
        ..Default::default()
    };
    let mut idle_keys = Vec::new();
    let mut page = m::PageRequest {
        after: None,
        limit: 200,
    };
    loop {
        let keys = gw.store.list_keys(&filter, &page).await?;
        for k in keys.items {
            let last_ms = last_used.get(&k.id).map(|h| h * 3_600_000);
            if last_ms.unwrap_or(k.created_at) < now - 30 * DAY {
                idle_keys.push(IdleKey {
                    last_used: last_ms.map(tollgate_types::time::rfc3339),
                    created_at: tollgate_types::time::rfc3339(k.created_at),
                    key_id: k.id,
                    use_case_id: k.use_case_id,
                    name: k.name,
                    prefix: k.prefix,
                });
            }
        }
        match keys.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let mut budgets_at_risk = Vec::new();
    for s in gw.plane.budget_statuses() {
        if s.period_end == i64::MAX || !budget_visible(&gw, &p, &s.budget).await {
            continue;
        }
        let window_start = (now - 7 * DAY).max(s.period_start);
        let window_ms = (now - window_start).max(3_600_000);
        let recent = gw
            .store
            .spend_since(&s.budget.scope, &s.budget.scope_id, window_start)
            .await?;
        let spent = s.spent_nano_usd;
        let rate = |ms: i64| {
            u128::from(recent) * u128::try_from(ms.max(0)).unwrap_or(0)
                / u128::try_from(window_ms).unwrap_or(1)
        };
        let projected =
            u64::try_from(u128::from(spent) + rate(s.period_end - now)).unwrap_or(u64::MAX);
        let amount = s.budget.amount_nano_usd;
        if projected > amount && recent > 0 {
            let left = u128::from(amount.saturating_sub(spent));
            let ms_to_out =
                i64::try_from(left * u128::try_from(window_ms).unwrap_or(1) / u128::from(recent))
                    .unwrap_or(i64::MAX);
            budgets_at_risk.push(BudgetAtRisk {
                runs_out_at: tollgate_types::time::rfc3339(now.saturating_add(ms_to_out)),
                period_end: tollgate_types::time::rfc3339(s.period_end),
                budget_id: s.budget.id,
                scope: s.budget.scope,
                scope_id: s.budget.scope_id,
                amount_nano_usd: amount,
                spent_nano_usd: spent,
                projected_nano_usd: projected,
            });
        }
    }
    Ok(Json(Advice {
        method: "duplicate_prompts: successful requests of the last 30 days whose route, messages and parameters (not `stream` or `user`) equal an earlier request's, by a keyed fingerprint; the saving is each set's cost less one request at the set's average cost. premium_models: spend of the last 30 days on a model the catalog pairs with a cheaper one, against the same tokens at the cheaper model's list prices — check quality with an evaluation before switching. idle_keys: active keys with no request for 30 days. budgets_at_risk: spend so far plus the rate of the last 7 days (or of the period so far) to the period's end exceeds the budget.".into(),
        window_start: tollgate_types::time::rfc3339(window_start),
        duplicate_prompts,
        premium_models,
        idle_keys,
        budgets_at_risk,
    }))
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn formula_leading_cells_are_text() {
        for (cell, want) in [
            ("=1+2", "'=1+2"),
            ("+1+2", "'+1+2"),
            ("-1+2", "'-1+2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ] {
            assert_eq!(csv_field(cell), want, "{cell:?}");
        }
    }
}
