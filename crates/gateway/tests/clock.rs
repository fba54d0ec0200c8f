//! Time boundaries on purpose: the gateway reads one injected clock, so these tests stand on the
//! last millisecond of a minute or a day and step over it, instead of hoping no boundary passes
//! while they run.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tollgate_store::{
    Budget, BudgetQueries, KeyQueries, LedgerQueries, Limits, RequestRecord, new_id,
};
use tollgate_types::clock::Clock;

/// 2026-11-30T23:59:59.999Z: the last millisecond of a minute, an hour, a day and a month.
const LAST_MS: i64 = 1_796_083_199_999;

fn config(sim: &str) -> String {
    format!(
        "providers: [{{ name: sim, type: openai_compatible, base_url: \"{sim}/v1\" }}]\nroutes: [{{ name: m, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n"
    )
}

/// A daily hard budget of `amount` nano-USD on the use case of `g`, loaded.
async fn daily_hard_budget(g: &Gw, amount: u64) {
    g.gw.store
        .create_budget(
            "test",
            &Budget {
                id: new_id("bud"),
                scope: "use_case".into(),
                scope_id: g.use_case.id.clone(),
                period: "day".into(),
                time_zone: "UTC".into(),
                amount_nano_usd: amount,
                mode: "hard".into(),
                created_at: LAST_MS - 120_000,
                created_by: "test".into(),
            },
        )
        .await
        .unwrap();
    g.gw.gate.budgeter.reload().await.unwrap();
}

/// A daily hard budget spent to its limit refuses at 23:59:59.999 and admits at 00:00:00.000.
#[tokio::test]
async fn a_daily_budget_starts_over_at_midnight() {
    let s = sim(Default::default()).await;
    let clock = Clock::manual(LAST_MS);
    let g = gateway_at(&config(&s.url), clock.clone()).await;
    let amount = 5_000_000u64; // half a cent
    // Spent to the limit earlier today.
    g.gw.store
        .insert_records(&[RequestRecord {
            id: new_id("rec"),
            request_id: "req_earlier".into(),
            at: LAST_MS - 60_000,
            key_id: "key_other".into(),
            use_case_id: g.use_case.id.clone(),
            pod_id: g.use_case.pod_id.clone(),
            route: "m".into(),
            status: 200,
            outcome: "ok".into(),
            cost_nano_usd: Some(amount),
            ..Default::default()
        }])
        .await
        .unwrap();
    daily_hard_budget(&g, amount).await;
    let ask = json!({"model": "m", "max_tokens": 5, "messages": user("hi")});
    let refused = g.post(ask.clone()).await;
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");

    clock.advance(Duration::from_millis(1));
    let admitted = g.post(ask).await;
    assert_eq!(admitted.status(), 200, "a new day, a new budget period");
    let status = g.gw.gate.budgeter.statuses().pop().unwrap();
    assert_eq!(status.period_start, LAST_MS + 1);
}

/// A key allowed one request a minute: refused at 23:59:59.999 with `Retry-After: 1`, served
/// again at 00:00:00.000.
#[tokio::test]
async fn a_minute_limit_starts_over_at_the_minute() {
    let s = sim(Default::default()).await;
    let clock = Clock::manual(LAST_MS - 29_999); // 23:59:30.000
    let g = gateway_at(&config(&s.url), clock.clone()).await;
    let (mut record, key) = tollgate_store::keys::new_api_key(
        g.gw.keyring.secret(),
        &g.use_case.id,
        None,
        "limited",
        None,
        None,
        "test",
    );
    record.limits = Limits {
        requests_per_minute: Some(1),
        ..Limits::default()
    };
    g.gw.store.create_key("test", &record).await.unwrap();
    g.gw.keyring.reload_key(&record.id).await.unwrap();
    let call = || {
        reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&key)
            .json(&json!({"model": "m", "messages": user("hi")}))
            .send()
    };
    let first = call().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-reset-requests"], "30s");
    clock.set(LAST_MS);
    let refused = call().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    clock.advance(Duration::from_millis(1));
    let again = call().await.unwrap();
    assert_eq!(again.status(), 200, "a new minute");
    assert_eq!(again.headers()["x-ratelimit-reset-requests"], "60s");
}

/// Requests are recorded at the gateway's time: one on each side of midnight lands in its own
/// day and month of the ledger.
#[tokio::test]
async fn records_carry_the_clock_time_across_midnight() {
    let s = sim(Default::default()).await;
    let clock = Clock::manual(LAST_MS);
    let g = gateway_at(&config(&s.url), clock.clone()).await;
    assert_eq!(
        g.post(json!({"model": "m", "messages": user("a")}))
            .await
            .status(),
        200
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        g.post(json!({"model": "m", "messages": user("b")}))
            .await
            .status(),
        200
    );
    records(&g.gw, 2).await;
    assert_eq!(
        g.gw.store.count_records(0, LAST_MS + 1).await.unwrap(),
        1,
        "November"
    );
    assert_eq!(
        g.gw.store
            .count_records(LAST_MS + 1, i64::MAX)
            .await
            .unwrap(),
        1,
        "December"
    );
}

/// A request admitted in the day's last millisecond and settled after midnight gives its
/// reservation back to its own day only: the new day's reservations stay whole, so the hard
/// budget still holds right after midnight.
#[tokio::test]
async fn a_reservation_from_before_midnight_is_released_from_its_own_day_only() {
    let s = sim(Default::default()).await;
    let clock = Clock::manual(LAST_MS);
    let g = gateway_at(&config(&s.url), clock.clone()).await;
    daily_hard_budget(&g, 1_000).await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::AUTHORIZATION,
        format!("Bearer {}", g.key).parse().unwrap(),
    );
    let entry = g.gw.keyring.authenticate(&headers).unwrap();
    let budgeter = &g.gw.gate.budgeter;
    let yesterday = budgeter.reserve(&entry, 400).unwrap().unwrap();
    clock.advance(Duration::from_millis(1));
    let today = budgeter.reserve(&entry, 500).unwrap().unwrap();
    yesterday.settle(0);
    let st = budgeter.statuses().pop().unwrap();
    assert_eq!(st.period_start, LAST_MS + 1);
    assert_eq!(st.reserved_nano_usd, 500, "today's reservation is whole");
    assert!(
        budgeter.reserve(&entry, 501).is_err(),
        "500 of 1,000 is held today: 501 more would pass the budget"
    );
    let last = budgeter.reserve(&entry, 500).unwrap().unwrap();
    drop((today, last));
}
