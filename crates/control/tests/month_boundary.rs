//! The month boundary on purpose: with both planes on one manual clock, a request at
//! 2026-11-30T23:59:59.999Z and one a millisecond later fall into two FOCUS exports, two showback
//! months and two forecasts — never skipped because a month happened to turn during the test.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use serde_json::{Value, json};
use std::time::Duration;
use tollgate_store::LedgerQueries;
use tollgate_types::clock::Clock;

/// 2026-11-30T23:59:59.999Z.
const LAST_MS: i64 = 1_796_083_199_999;

#[tokio::test]
async fn a_request_on_each_side_of_midnight_lands_in_its_own_month() {
    let s = common::sim(Default::default()).await;
    let clock = Clock::manual(LAST_MS);
    let (g, admin) = planes::serve_at(
        &format!(
            "providers: [{{ name: sim, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: m, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n",
            s.url
        ),
        clock.clone(),
    )
    .await;
    let ask = json!({"model": "m", "messages": common::user("hi")});
    assert_eq!(g.post(ask.clone()).await.status(), 200);
    clock.advance(Duration::from_millis(1));
    assert_eq!(g.post(ask).await.status(), 200);
    let records = common::records(&g.gw, 2).await;
    let cost_at = |at: i64| {
        records
            .iter()
            .find(|r| r.at == at)
            .and_then(|r| r.cost_nano_usd)
            .unwrap()
    };
    let (november, december) = (cost_at(LAST_MS), cost_at(LAST_MS + 1));
    let get = async |path: &str| -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", g.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    for (month, cost) in [("2026-11", november), ("2026-12", december)] {
        let focus = get(&format!(
            "/admin/v1/reports/focus?month={month}&format=json"
        ))
        .await;
        assert_eq!(
            focus["summary"]["billed_nano_usd"], cost,
            "{month}: {focus}"
        );
        for row in focus["rows"].as_array().unwrap() {
            assert!(
                row["ChargePeriodStart"]
                    .as_str()
                    .unwrap()
                    .starts_with(month),
                "{row:?}"
            );
        }
        let spend = get(&format!("/admin/v1/reports/spend?by=pod&month={month}")).await;
        assert_eq!(spend["total"]["requests"], 1, "{month}: {spend}");
        assert_eq!(spend["total"]["cost_nano_usd"], cost, "{month}: {spend}");
    }
    // The forecast reads the same clock: December has just begun, with December's spend only.
    let forecast = get("/admin/v1/reports/forecast").await;
    assert!(
        forecast["month_start"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-01T00:00:00"),
        "{forecast}"
    );
    assert_eq!(forecast["total"]["spent_nano_usd"], december, "{forecast}");
}

/// A spend report over a range that ends inside an hour includes that hour (rollups are hourly:
/// the range widens to whole hours, and the answer says so), and one that starts inside an hour
/// includes that hour too.
#[tokio::test]
async fn a_spend_range_inside_an_hour_widens_to_whole_hours() {
    const TEN: i64 = 1_796_032_800_000; // 2026-11-30T10:00:00Z
    let clock = Clock::manual(TEN + 5 * 3_600_000);
    let gw = common::gateway_only_at(
        "providers: [{ name: sim, type: openai_compatible, base_url: \"http://127.0.0.1:9/v1\" }]\nroutes: [{ name: m, deployments: [{ provider: sim, model: gpt-4o-mini }]}]\n",
        clock,
    )
    .await;
    let (router, _control, admin) = planes::app(&gw).await;
    let record = |at: i64, cost: u64| tollgate_store::RequestRecord {
        id: tollgate_store::new_id("rec"),
        at,
        key_id: "key_a".into(),
        use_case_id: "uc_a".into(),
        pod_id: "pod_a".into(),
        endpoint: "chat".into(),
        route: "m".into(),
        status: 200,
        outcome: "ok".into(),
        cost_nano_usd: Some(cost),
        cost_split: [cost, 0, 0, 0, 0],
        price_source: "catalog:test".into(),
        ..Default::default()
    };
    gw.store
        .insert_records(&[
            record(TEN + 30 * 60_000, 7),
            record(TEN + 3_600_000 + 60_000, 100),
        ])
        .await
        .unwrap();
    let spend = |from: &str, to: &str| {
        let (router, admin) = (router.clone(), admin.clone());
        let path = format!("/admin/v1/reports/spend?by=pod&from={from}&to={to}");
        async move {
            let (s, v) = planes::call(&router, http::Method::GET, &path, &admin, None).await;
            assert_eq!(s, 200, "{path}: {v}");
            v
        }
    };
    let v = spend("2026-11-30T10:00:00Z", "2026-11-30T10:45:00Z").await;
    assert_eq!(v["total"]["cost_nano_usd"], 7, "{v}");
    assert_eq!(v["to"], "2026-11-30T11:00:00.000Z", "{v}");
    let v = spend("2026-11-30T10:15:00Z", "2026-11-30T11:00:00Z").await;
    assert_eq!(v["total"]["cost_nano_usd"], 7, "{v}");
    assert_eq!(v["from"], "2026-11-30T10:00:00.000Z", "{v}");
    let v = spend("2026-11-30T10:45:00Z", "2026-11-30T11:00:00.001Z").await;
    assert_eq!(v["total"]["cost_nano_usd"], 107, "{v}");
}
