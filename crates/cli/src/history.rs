//! `tollgate demo`'s backdated history: four weeks of requests and outcomes for the sample use
//! cases, so the KPIs, the portfolio and the reports show numbers on first start.
//!
//! It is written through the store's ledger and outcome paths (with their rollups and audit-chain
//! entries, as live traffic would be) and marked as demo data: the key id `demo-history`, request
//! ids `demo-…`, outcome events labelled `demo=true`. Each sample use case gets an SLO
//! ([`DEMO_SLO`]) and the 5-minute windows its history makes, judged as the gateway judges live
//! ones.
//!
//! Written once per data directory, and never half: the first start fixes where the history ends
//! (a setting), every record, event and id comes from a fixed seed, and each write skips what is
//! stored already (records by id, events by event id; SLO windows are set, not added). A start
//! stopped half-way (a signal, a full disk) leaves the history unfinished, and the next start
//! completes it with the same records; a second setting marks it complete. Two fresh demos tell
//! the same story.

use std::collections::BTreeMap;
use tollgate_gateway::Gateway;
use tollgate_store::{
    AuditQueries, LedgerQueries, Outcome, OutcomeEvent, OutcomeQueries, RequestRecord,
    SLO_WINDOW_MS, Slo, SloQueries, SloWindow, UseCasePatch, UseCaseQueries,
};
use tollgate_types::openai::Usage;

const DAY_MS: i64 = 86_400_000;
/// Days of history.
pub const DAYS: i64 = 28;
/// The setting that records that the history is complete (before it could be resumed, it was
/// set when writing began; such a data directory is taken as complete).
const SETTING: &str = "demo_history_written_at";
/// The setting that fixes where the history ends: the first start's time.
const ANCHOR: &str = "demo_history_until";

/// The SLO the sample use cases get: p95 at most 2.4 s (streams: to the first token), at most
/// 5 % of requests failing.
pub const DEMO_SLO: Slo = Slo {
    latency_p95_ms: Some(2_400),
    max_error_rate_pct: Some(5.0),
    objective_pct: Some(95.0),
};

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Request records.
    pub requests: u64,
    /// Outcome events.
    pub outcomes: u64,
}

/// How one sample use case behaves.
struct Profile {
    name: &'static str,
    route: &'static str,
    per_day: u64,
    users: u64,
    /// Chances (per 100) of success, failure, escalation; the rest abandon.
    outcome: [u64; 3],
    /// Whether its app reports acceptance of drafts.
    acceptance: bool,
}

const PROFILES: [Profile; 3] = [
    Profile {
        name: "ticket-triage",
        route: "chat-default",
        per_day: 240,
        users: 90,
        outcome: [74, 12, 10],
        acceptance: false,
    },
    Profile {
        name: "reply-drafting",
        route: "claude-haiku",
        per_day: 60,
        users: 20,
        outcome: [61, 20, 14],
        acceptance: true,
    },
    Profile {
        name: "invoice-extraction",
        route: "claude-sonnet",
        per_day: 110,
        users: 25,
        outcome: [88, 9, 2],
        acceptance: false,
    },
];

/// A UUIDv7 in its simple form, from `at` and the seeded `rng` (so a resumed history has the
/// same ids; ordered by time like every other id).
fn seeded_id(prefix: &str, at: i64, rng: &mut fastrand::Rng) -> String {
    format!(
        "{prefix}_{:012x}7{:03x}{:x}{:015x}",
        at.clamp(0, 0xffff_ffff_ffff),
        rng.u16(..0x1000),
        8 + rng.u8(..4),
        rng.u64(..1 << 60)
    )
}

/// Writes the history ending at `now_ms` — or completes the one an earlier start began, ending
/// where that one does — unless this data directory has it complete already (`None`).
pub async fn write(gw: &Gateway, now_ms: i64) -> anyhow::Result<Option<History>> {
    write_within(gw, now_ms, usize::MAX).await
}

/// [`write`], stopping with an error before its write number `writes` (tests: an interrupted
/// start).
async fn write_within(
    gw: &Gateway,
    now_ms: i64,
    mut writes: usize,
) -> anyhow::Result<Option<History>> {
    if gw.store.get_setting(SETTING).await?.is_some() {
        return Ok(None);
    }
    let anchor = gw.store.init_setting(ANCHOR, &now_ms.to_string()).await?;
    let anchor: i64 = anchor
        .parse()
        .map_err(|_| anyhow::anyhow!("the setting {ANCHOR} is not a time: {anchor}"))?;
    // The history stops at the start of the anchor's 5-minute window, so its SLO windows never
    // share one with live traffic (which adds to its window; the history sets its own).
    let now_ms = anchor - anchor.rem_euclid(SLO_WINDOW_MS);
    let mut write_allowed = || {
        anyhow::ensure!(writes > 0, "interrupted");
        writes -= 1;
        Ok(())
    };
    let use_cases = crate::seed::use_cases(gw).await?;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut records = Vec::new();
    let mut events = Vec::new();
    let start = (now_ms.div_euclid(DAY_MS) - DAYS) * DAY_MS;
    for p in &PROFILES {
        let (Some(uc), Some(route)) = (
            use_cases.iter().find(|u| u.name == p.name),
            gw.config.routes.iter().position(|r| r.name == p.route),
        ) else {
            continue;
        };
        // A route with a fallback route sees it answer now and then (KPI 19's routing savings:
        // each request is also priced at its route's first deployment).
        let fallback = gw.config.routes[route].fallbacks.first().copied();
        for day in 0..DAYS {
            // Weekends are quieter; use grows over the weeks.
            let weekday = (start.div_euclid(DAY_MS) + day + 4).rem_euclid(7);
            let growth = 70 + 30 * day as u64 / DAYS as u64;
            let n = p.per_day * growth / 100 / if weekday >= 5 { 4 } else { 1 };
            for k in 0..n {
                // Working hours, 08:00–18:00 UTC.
                let at = start + day * DAY_MS + 8 * 3_600_000 + rng.i64(0..10 * 3_600_000);
                if at >= now_ms {
                    continue;
                }
                let usage = Usage {
                    prompt_tokens: rng.u64(300..1_200),
                    completion_tokens: rng.u64(80..400),
                    ..Usage::default()
                };
                let usage = Usage {
                    total_tokens: usage.prompt_tokens + usage.completion_tokens,
                    ..usage
                };
                let first_choice = gw.books.meter.charge(route, 0, &usage);
                let served = match fallback {
                    Some(fb) if rng.u8(0..100) < 4 => fb,
                    _ => route,
                };
                let charge = gw.books.meter.charge(served, 0, &usage);
                let deployment = &gw.config.routes[served].deployments[0];
                let stream = rng.u8(0..100) < 40;
                let roll = rng.u8(0..100);
                let (status, outcome) = match roll {
                    0 => (502, "upstream_error"),
                    1 if stream => (200, "client_disconnected"),
                    _ => (200, "ok"),
                };
                // A failed request is not charged, as the gateway charges none: no tokens, no
                // cost, no first-choice price (KPI 19 leaves it out).
                let charge = (status != 502).then_some(charge);
                let request_id = format!("demo-{}", seeded_id("req", at, &mut rng));
                let user = format!("demo-user-{}-{}", p.name, rng.u64(0..p.users));
                let session = format!("demo-session-{}-{day}-{}", p.name, k / 3);
                records.push(RequestRecord {
                    id: seeded_id("rec", at, &mut rng),
                    request_id: request_id.clone(),
                    at,
                    key_id: "demo-history".into(),
                    use_case_id: uc.id.clone(),
                    pod_id: uc.pod_id.clone(),
                    end_user_hash: Some(gw.books.pseudonym(&user)),
                    session_hash: Some(gw.books.session_pseudonym(&session)),
                    endpoint: "chat".into(),
                    route: p.route.into(),
                    provider: Some(gw.config.providers[deployment.provider].name.clone()),
                    model: Some(deployment.model.clone()),
                    stream,
                    attempts: if served == route { 1 } else { 2 },
                    status,
                    outcome: outcome.into(),
                    input_tokens: charge.as_ref().map_or(0, |c| c.tokens.input),
                    output_tokens: charge.as_ref().map_or(0, |c| c.tokens.output),
                    cost_nano_usd: charge.as_ref().and_then(|c| c.cost).map(|m| m.nanos()),
                    first_choice_cost_nano_usd: charge
                        .as_ref()
                        .and_then(|c| c.cost)
                        .and(first_choice.cost)
                        .map(|m| m.nanos()),
                    price_source: charge
                        .as_ref()
                        .map_or_else(|| "none".to_string(), |c| c.price_source.clone()),
                    usage_source: if charge.is_some() { "reported" } else { "none" }.into(),
                    latency_ms: rng.u64(300..2_500),
                    ttft_ms: stream.then(|| rng.u64(150..600)),
                    price_id: gw
                        .books
                        .meter
                        .price_point(served, 0)
                        .map(|pp| pp.id.clone()),
                    cost_split: charge.map(|c| c.split).unwrap_or_default(),
                    ..RequestRecord::default()
                });
                // Nearly half of the answered requests get an outcome from the app.
                if status != 200 || rng.u8(0..100) >= 45 {
                    continue;
                }
                let r = rng.u64(0..100);
                let o = if r < p.outcome[0] {
                    Outcome::Success
                } else if r < p.outcome[0] + p.outcome[1] {
                    Outcome::Failure
                } else if r < p.outcome[0] + p.outcome[1] + p.outcome[2] {
                    Outcome::Escalated
                } else {
                    Outcome::Abandoned
                };
                let rated = rng.u8(0..100) < 40;
                let rating = rated.then(|| match (o, rng.u8(0..10)) {
                    (Outcome::Success, 0) => 3,
                    (Outcome::Success, x) if x < 4 => 4,
                    (Outcome::Success, _) => 5,
                    (_, x) if x < 5 => 1,
                    (_, x) if x < 8 => 2,
                    _ => 3,
                });
                let accepted = p.acceptance.then(|| o == Outcome::Success);
                let event_at = (at + 5 * 60_000).min(now_ms - 1);
                events.push(OutcomeEvent {
                    id: seeded_id("fbk", event_at, &mut rng),
                    event_id: Some(request_id.clone()),
                    at: event_at,
                    use_case_id: uc.id.clone(),
                    pod_id: uc.pod_id.clone(),
                    key_id: "demo-history".into(),
                    request_id: Some(request_id),
                    outcome: Some(o),
                    rating,
                    accepted,
                    edited: accepted.map(|a| a && rng.u8(0..100) < 30),
                    labels: [("demo".to_string(), "true".to_string())].into(),
                    ..OutcomeEvent::default()
                });
            }
        }
    }
    records.sort_by_key(|r| r.at);
    for batch in records.chunks(2_048) {
        write_allowed()?;
        gw.store.insert_records_once(batch).await?;
    }
    // The SLO, and the windows the history makes.
    let mut windows: BTreeMap<(String, i64), SloWindow> = BTreeMap::new();
    for r in &records {
        let start = r.at - r.at.rem_euclid(SLO_WINDOW_MS);
        let w = windows
            .entry((r.use_case_id.clone(), start))
            .or_insert_with(|| SloWindow {
                use_case_id: r.use_case_id.clone(),
                pod_id: r.pod_id.clone(),
                start,
                requests: 0,
                errors: 0,
                slow: 0,
                latency_target_ms: DEMO_SLO.latency_p95_ms,
                max_error_ppm: DEMO_SLO.max_error_ppm(),
            });
        w.requests += 1;
        w.errors += u64::from(r.status >= 500);
        let latency = r.ttft_ms.unwrap_or(r.latency_ms);
        w.slow += u64::from(
            DEMO_SLO
                .latency_p95_ms
                .is_some_and(|t| latency > u64::from(t)),
        );
    }
    let windows: Vec<SloWindow> = windows.into_values().collect();
    write_allowed()?;
    gw.store.set_slo_windows(&windows).await?;
    for uc in &use_cases {
        if PROFILES.iter().any(|p| p.name == uc.name) && !uc.slo.is_set() {
            gw.store
                .update_use_case(
                    "demo",
                    &uc.id,
                    &UseCasePatch {
                        slo: Some(DEMO_SLO),
                        ..UseCasePatch::default()
                    },
                )
                .await?;
        }
    }
    for batch in events.chunks(2_048) {
        write_allowed()?;
        gw.store.insert_outcomes(batch).await?;
    }
    gw.store.init_setting(SETTING, &anchor.to_string()).await?;
    Ok(Some(History {
        requests: records.len() as u64,
        outcomes: events.len() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_store::{KpiData, KpiQueries, KpiScope, new_id};

    /// A gateway on a fresh data directory with the demo organization.
    async fn demo_gateway() -> (std::sync::Arc<Gateway>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("tollgate-history-{}", new_id("d")));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = crate::demo::demo_config(
            "http://127.0.0.1:9",
            "http://127.0.0.1:9",
            "127.0.0.1:0".parse().unwrap(),
            &dir,
        );
        let cfg = tollgate_config::Config::from_yaml_str(&yaml, &|_| None).unwrap();
        let gw = Gateway::open(cfg).await.unwrap();
        crate::seed::seed(&gw).await.unwrap();
        (gw, dir)
    }

    /// What the store holds of the history, in figures that do not depend on the data
    /// directory's ids and keys: records and their rollups, the portfolio's KPI facts (users,
    /// sessions, SLO windows met), and outcome events.
    async fn held(
        gw: &Gateway,
    ) -> (
        u64,
        tollgate_store::Totals,
        tollgate_store::Totals,
        KpiData,
        u64,
        [u64; 3],
    ) {
        let s = &gw.store;
        let mut slo = [0; 3];
        for uc in crate::seed::use_cases(gw).await.unwrap() {
            for w in s.slo_windows(&uc.id, 0, i64::MAX).await.unwrap() {
                slo[0] += w.requests;
                slo[1] += w.errors;
                slo[2] += w.slow;
            }
        }
        (
            s.count_records(0, i64::MAX).await.unwrap(),
            s.record_totals(0, i64::MAX).await.unwrap(),
            s.rollup_totals(0, i64::MAX / 3_600_000).await.unwrap(),
            s.kpi_data(&KpiScope::Portfolio, 0, i64::MAX / 2)
                .await
                .unwrap(),
            s.outcome_rollups(0, i64::MAX)
                .await
                .unwrap()
                .iter()
                .map(|r| r.events)
                .sum(),
            slo,
        )
    }

    /// A start stopped part-way — after the first batch of records, after all of them, after
    /// the SLO windows and one batch of outcome events — leaves the history unfinished, and the
    /// next start (a day later) completes it: the store then holds exactly what an
    /// uninterrupted start writes, and a third start adds nothing.
    #[tokio::test]
    async fn an_interrupted_history_is_completed_by_the_next_start() {
        let now = tollgate_types::time::parse_rfc3339("2026-11-30T12:02:00Z").unwrap();
        let (gw, dir) = demo_gateway().await;
        let h = write(&gw, now).await.unwrap().unwrap();
        let whole = held(&gw).await;
        let _ = std::fs::remove_dir_all(&dir);
        // (Four batches of records, the SLO windows, two batches of outcome events.)
        for done in [1, 4, 5, 6] {
            let (gw, dir) = demo_gateway().await;
            let stopped = write_within(&gw, now, done).await;
            assert!(stopped.is_err(), "stopped after write {done}");
            // The next day: the history still ends where the first start fixed it.
            let later = now + DAY_MS;
            assert_eq!(
                write(&gw, later).await.unwrap(),
                Some(h),
                "completed (stopped after write {done})"
            );
            assert_eq!(held(&gw).await, whole, "stopped after write {done}");
            assert_eq!(write(&gw, later + 1).await.unwrap(), None);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// The history on a fresh demo organization: written once, the KPIs read it back (requests,
    /// users, outcomes, value), and a second demo on the same data directory adds nothing.
    #[tokio::test]
    async fn the_demo_history_fills_the_kpis_once() {
        let (gw, dir) = demo_gateway().await;
        let now = tollgate_types::time::parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
        let h = write(&gw, now).await.unwrap().unwrap();
        assert!(h.requests > 5_000 && h.outcomes > 1_000, "{h:?}");
        let d = gw
            .store
            .kpi_data(
                &KpiScope::Portfolio,
                (now.div_euclid(DAY_MS) - DAYS) * DAY_MS,
                now,
            )
            .await
            .unwrap();
        assert_eq!(d.requests, h.requests);
        assert!(d.active_users > 100 && d.sessions > 1_000, "{d:?}");
        assert!(d.cost_nano_usd > 0);
        // Every answered request is priced on its route's first deployment too, and no failed
        // one is priced at all (as the gateway charges none); invoice extraction's falls back
        // to Claude Haiku now and then, for less than Sonnet.
        assert!(d.errors > 0, "{d:?}");
        assert_eq!(d.routing_priced, d.requests - d.errors);
        assert!(
            d.first_choice_nano_usd > d.first_choice_paid_nano_usd,
            "{d:?}"
        );
        let events: u64 = gw
            .store
            .outcome_rollups(0, i64::MAX)
            .await
            .unwrap()
            .iter()
            .map(|r| r.events)
            .sum();
        assert_eq!(events, h.outcomes);
        // The sample use cases have the SLO; most of their windows met it, not all.
        let (windows, met) = d.slo_windows;
        assert!(
            windows > 1_000 && met < windows && met * 10 > windows * 8,
            "{windows} {met}"
        );
        let ucs = crate::seed::use_cases(&gw).await.unwrap();
        for p in &PROFILES {
            let uc = ucs.iter().find(|u| u.name == p.name).unwrap();
            assert_eq!(uc.slo, DEMO_SLO, "{}", p.name);
        }
        // Once per data directory.
        assert_eq!(write(&gw, now + DAY_MS).await.unwrap(), None);
        assert_eq!(
            gw.store.count_records(0, i64::MAX).await.unwrap(),
            h.requests
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
