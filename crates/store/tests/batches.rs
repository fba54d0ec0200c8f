//! A batch of records is folded into the rollups with a few multi-row statements per table: what
//! reads back must be exactly what the same records give written one at a time, and what the raw
//! records say (counted here by hand).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use tollgate_store::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// 2026-11-02T00:00:00Z.
const T0: i64 = 1_793_577_600_000;

async fn store(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-batches-{name}-{}-{}",
        std::process::id(),
        new_id("d")
    ));
    Store::open(&dir.join("tollgate.db")).await.unwrap()
}

/// A small deterministic generator (the records must be the same in both stores and every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A pseudonym as the gateway makes them: 64 hex digits, the first 16 told apart.
fn pseudonym(n: u64) -> String {
    format!("{:016x}{:048x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n)
}

/// `n` records over two days (both sides of an hour, a day and many minutes), 7 use cases in 3
/// pods, 3 keys, 2 routes, 3 models, 2 price points, up to 250 end users and 40 sessions, every
/// outcome the rollups tell apart, and some evaluation traffic.
fn records(n: usize) -> Vec<RequestRecord> {
    let mut g = Lcg(42);
    (0..n)
        .map(|k| {
            let uc = g.next(7);
            let stream = g.next(2) == 0;
            let (status, outcome) = match g.next(6) {
                0 => (502, "upstream_error"),
                1 => (400, "policy_violation"),
                2 => (200, "client_disconnected"),
                _ => (200, "ok"),
            };
            let input = 10 + g.next(500);
            let output = g.next(300);
            let split = [input * 150, g.next(40) * 10, 0, output * 600, 0];
            let cost = split.iter().sum::<u64>();
            let at = T0
                + [0, HOUR - 1, HOUR, DAY - 1, DAY, DAY + 5 * HOUR][g.next(6) as usize]
                + (g.next(40) as i64) * 60_000 % HOUR.min(2_400_000)
                - if g.next(2) == 0 { 0 } else { 1 };
            RequestRecord {
                id: format!("rec_{k:05}"),
                request_id: format!("req_{k}"),
                at: at.max(T0),
                key_id: format!("key_{}", uc % 3),
                use_case_id: format!("uc_{uc}"),
                pod_id: format!("pod_{}", uc % 3),
                endpoint: "chat".into(),
                route: format!("route_{}", g.next(2)),
                provider: Some("sim".into()),
                model: (g.next(8) != 0).then(|| format!("model_{}", g.next(3))),
                stream,
                attempts: 1 + g.next(2) as u32,
                status,
                outcome: outcome.into(),
                input_tokens: input,
                cached_input_tokens: split[1] / 10,
                output_tokens: output,
                cost_nano_usd: (g.next(10) != 0).then_some(cost),
                first_choice_cost_nano_usd: (g.next(3) == 0).then_some(cost + 7),
                cost_split: split,
                price_id: (g.next(8) != 0).then(|| format!("price_{}", g.next(2))),
                price_source: "catalog:test".into(),
                usage_source: "reported".into(),
                latency_ms: g.next(5_000),
                ttft_ms: stream.then(|| g.next(900)),
                end_user_hash: (g.next(5) != 0).then(|| pseudonym(g.next(250))),
                session_hash: (g.next(3) == 0).then(|| pseudonym(1_000 + g.next(40))),
                guard: (g.next(4) == 0)
                    .then(|| r#"{"findings":[{"entity":"EMAIL","action":"mask"}]}"#.into()),
                evaluation: g.next(10) == 0,
                ..Default::default()
            }
        })
        .collect()
}

/// Everything the rollups answer, read the same way from either store.
async fn readings(s: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let windows = [
        (T0, T0 + HOUR),
        (T0 + HOUR, T0 + 2 * HOUR),
        (T0, T0 + DAY),
        (T0 + DAY, T0 + 2 * DAY),
        (T0, T0 + 2 * DAY),
    ];
    let mut scopes = vec![KpiScope::Portfolio];
    scopes.extend((0..3).map(|p| KpiScope::Pod(format!("pod_{p}"))));
    scopes.extend((0..7).map(|u| KpiScope::UseCase(format!("uc_{u}"))));
    for scope in &scopes {
        for (from, to) in windows {
            let d = s.kpi_data(scope, from, to).await.unwrap();
            out.push(format!("kpi {scope:?} {from}..{to}: {d:?}"));
        }
    }
    let hours = (T0 / HOUR, (T0 + 2 * DAY) / HOUR);
    out.push(format!(
        "totals: {:?}",
        s.rollup_totals(hours.0, hours.1).await.unwrap()
    ));
    for by in ["pod", "use_case", "key", "route", "model", "day"] {
        let mut rows = s.spend_by(by, hours.0, hours.1, None).await.unwrap();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(format!("spend by {by}: {rows:?}"));
    }
    out.push(format!(
        "focus: {:?}",
        s.focus_rollups(hours.0, hours.1, None).await.unwrap()
    ));
    out.push(format!("chain head: {}", s.chain_head().await.unwrap().0));
    out
}

#[tokio::test]
async fn one_batch_rolls_up_as_the_same_records_one_at_a_time_and_as_the_records_say() {
    // 600 records in two batches of 300 (256 + 32 + 8 + 4 rows to a statement), the second
    // meeting in the database the rollup rows, users and sessions of the first; the rollup
    // tables get hundreds of rows from each batch.
    let all = records(600);

    // Two batches, each in the order the records came (not time order: a session's first hour is
    // its earliest request in the batch).
    let batched = store("one").await;
    let (first, second) = all.split_at(300);
    // Only if the first half's earliest request of each session is not after the second's
    // does the first batch count a session in the same hour as one record at a time would.
    let mut first = first.to_vec();
    let mut second = second.to_vec();
    for r in &mut first {
        r.at = r.at.min(T0 + DAY - 1);
    }
    for r in &mut second {
        r.at = r.at.max(T0 + DAY);
    }
    let all: Vec<RequestRecord> = first.iter().chain(&second).cloned().collect();
    let mut in_time = all.clone();
    in_time.sort_by_key(|r| r.at);
    batched.insert_records(&first).await.unwrap();
    batched.insert_records(&second).await.unwrap();
    // The same records one at a time, in time order.
    let single = store("single").await;
    for r in &in_time {
        single
            .insert_records(std::slice::from_ref(r))
            .await
            .unwrap();
    }
    let (a, b) = (readings(&batched).await, readings(&single).await);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "one batch vs one record at a time");
    }

    // Written back again (a spill replayed after a crash): every id is known, nothing moves.
    assert_eq!(batched.insert_records_once(&all).await.unwrap(), 0);
    assert_eq!(readings(&batched).await, a, "a replay changed the rollups");

    // And as the records say, counted by hand.
    let hours = (T0 / HOUR, (T0 + 2 * DAY) / HOUR);
    assert_eq!(
        batched.rollup_totals(hours.0, hours.1).await.unwrap(),
        batched.record_totals(T0, T0 + 2 * DAY).await.unwrap(),
        "the spend rollup holds what the records hold"
    );
    let production: Vec<&RequestRecord> = all.iter().filter(|r| !r.evaluation).collect();
    let whole = batched
        .kpi_data(&KpiScope::Portfolio, T0, T0 + 2 * DAY)
        .await
        .unwrap();
    assert_eq!(whole.requests, production.len() as u64);
    let count =
        |f: &dyn Fn(&RequestRecord) -> bool| production.iter().filter(|r| f(r)).count() as u64;
    let answered = |r: &RequestRecord| {
        r.status == 200 && matches!(r.outcome.as_str(), "ok" | "client_disconnected")
    };
    assert_eq!(whole.answered, count(&|r| answered(r)));
    assert_eq!(
        whole.errors,
        count(&|r| r.status >= 500 || r.status == 200 && !answered(r))
    );
    assert_eq!(whole.fallbacks, count(&|r| answered(r) && r.attempts > 1));
    assert_eq!(whole.streams, count(&|r| r.stream));
    assert_eq!(
        whole.streams_cancelled,
        count(&|r| r.stream && r.outcome == "client_disconnected")
    );
    assert_eq!(
        whole.guard_blocked,
        count(&|r| r.outcome == "policy_violation")
    );
    assert_eq!(whole.session_requests, count(&|r| r.session_hash.is_some()));
    assert_eq!(whole.latency.iter().sum::<u64>(), whole.requests);
    assert_eq!(
        whole.ttft.iter().sum::<u64>(),
        count(&|r| r.stream && r.ttft_ms.is_some())
    );
    let priced: Vec<&&RequestRecord> = production
        .iter()
        .filter(|r| r.first_choice_cost_nano_usd.is_some() && r.cost_nano_usd.is_some())
        .collect();
    assert_eq!(whole.routing_priced, priced.len() as u64);
    assert_eq!(
        whole.first_choice_nano_usd,
        priced
            .iter()
            .map(|r| r.first_choice_cost_nano_usd.unwrap())
            .sum::<u64>()
    );
    assert_eq!(
        whole.first_choice_paid_nano_usd,
        priced.iter().map(|r| r.cost_nano_usd.unwrap()).sum::<u64>()
    );
    // A session is counted per use case (a pseudonym names a session of its use case).
    let sessions: BTreeSet<(&str, &str)> = production
        .iter()
        .filter_map(|r| Some((r.use_case_id.as_str(), r.session_hash.as_deref()?)))
        .collect();
    assert!(sessions.len() > 100, "the batch has many sessions");
    assert_eq!(whole.sessions, sessions.len() as u64);
    // Distinct users per day, per pod (DAU of each day's window).
    for day in 0..2 {
        for pod in 0..3 {
            let pod = format!("pod_{pod}");
            let users: BTreeSet<&str> = production
                .iter()
                .filter(|r| r.pod_id == pod && (r.at - T0).div_euclid(DAY) == day)
                .filter_map(|r| r.end_user_hash.as_deref())
                .collect();
            let from = T0 + day * DAY;
            let d = batched
                .kpi_data(&KpiScope::Pod(pod.clone()), from, from + DAY)
                .await
                .unwrap();
            assert!(users.len() > 20, "{pod} day {day} has many users");
            assert_eq!(d.active_users, users.len() as u64, "{pod} day {day}");
            assert_eq!(d.user_days, users.len() as u64, "{pod} day {day}");
        }
    }
    // FOCUS rows: one per (hour, pod, use case, route, price point), requests summed.
    let mut groups: BTreeMap<(i64, &str, &str, &str, &str), u64> = BTreeMap::new();
    for r in &all {
        *groups
            .entry((
                r.at.div_euclid(HOUR),
                &r.pod_id,
                &r.use_case_id,
                &r.route,
                r.price_id.as_deref().unwrap_or(""),
            ))
            .or_default() += 1;
    }
    let focus = batched.focus_rollups(hours.0, hours.1, None).await.unwrap();
    assert!(groups.len() > 100, "the batch has many FOCUS rows");
    assert_eq!(focus.len(), groups.len());
    assert_eq!(
        focus.iter().map(|f| f.requests).sum::<u64>(),
        all.len() as u64
    );
    assert_eq!(batched.chain_head().await.unwrap().0, all.len() as i64);
}
