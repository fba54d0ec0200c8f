//! SLO windows on the gateway's clock: requests counted into the 5-minute window they arrived in,
//! windows closed a minute after they end (not before), judged, written, a late record added to
//! its stored window, and a burn alert — once an hour — through the webhook channel. End to end:
//! real requests of a use case whose SLO is set, counted into its window.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Bytes;
use serde_json::{Value, json};
use std::time::Duration;
use tollgate_gateway::auth::KeyEntry;
use tollgate_store::{
    PilotCaps, SLO_WINDOW_MS, Slo, SloQueries, Stage, UseCasePatch, UseCaseQueries as _,
};
use tollgate_types::clock::Clock;

const MIN: i64 = 60_000;
/// 2026-11-30T23:50:00Z: a window boundary.
const T0: i64 = 1_796_082_600_000;

/// A webhook receiver: its URL, and the alerts it got.
async fn hook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice::<Value>(&body).unwrap());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

fn caller(slo: Slo) -> KeyEntry {
    KeyEntry {
        key_id: "key_1".into(),
        prefix: "tg_x".into(),
        use_case_id: "uc_triage".into(),
        use_case_name: "triage".into(),
        pod_id: "pod_1".into(),
        stage: Stage::Production,
        routes: vec!["m".into()],
        scopes: None,
        valid_until: None,
        pilot_caps: PilotCaps::default(),
        key_limits: Default::default(),
        use_case_limits: Default::default(),
        slo,
        evaluation: false,
    }
}

#[tokio::test]
async fn windows_close_after_a_minute_are_judged_written_and_burn_alerts_once_an_hour() {
    assert_eq!(T0 % SLO_WINDOW_MS, 0);
    let (url, mut alerts) = hook().await;
    let clock = Clock::manual(T0);
    let gw = common::gateway_only_at(
        &format!("alerts:\n  webhooks: [{{ url: \"{url}\" }}]\nproviders: []\nroutes: []\n"),
        clock.clone(),
    )
    .await;
    let slo = gw.books.slo.clone().unwrap();
    let who = caller(Slo {
        latency_p95_ms: Some(800),
        max_error_rate_pct: Some(1.0),
        objective_pct: Some(99.0),
    });
    let windows = async || {
        gw.store
            .slo_windows("uc_triage", 0, i64::MAX)
            .await
            .unwrap()
    };
    let raised = || {
        gw.books
            .alerts
            .stats()
            .raised
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    // Window 0: 100 requests, 5 slow, 1 failed — met. A use case without an SLO is not counted.
    clock.set(T0 + 10_000);
    for i in 0..100 {
        let latency = if i < 5 { 900 } else { 800 };
        let status = if i == 50 { 502 } else { 200 };
        slo.record(&who, T0 + 1_000 + i, latency, status);
    }
    let other = KeyEntry {
        use_case_id: "uc_other".into(),
        ..caller(Slo::default())
    };
    slo.record(&other, T0 + 1_000, 5_000, 500);
    // Window 1 starts; window 0 is not closed until a minute after its end.
    clock.set(T0 + SLO_WINDOW_MS + 30_000);
    for i in 0..100 {
        slo.record(
            &who,
            T0 + SLO_WINDOW_MS + i,
            if i < 6 { 900 } else { 10 },
            200,
        );
    }
    slo.tick().await;
    assert!(windows().await.is_empty(), "nothing closed yet");
    clock.set(T0 + SLO_WINDOW_MS + MIN - 1);
    slo.tick().await;
    assert!(windows().await.is_empty(), "one ms early");
    clock.set(T0 + SLO_WINDOW_MS + MIN);
    slo.tick().await;
    let w = windows().await;
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].start, w[0].requests, w[0].errors, w[0].slow),
        (T0, 100, 1, 5)
    );
    assert_eq!(
        (w[0].latency_target_ms, w[0].max_error_ppm),
        (Some(800), Some(10_000))
    );
    assert!(w[0].met());
    assert_eq!(raised(), 0);
    assert!(
        gw.store
            .slo_windows("uc_other", 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    // Window 1 (6 slow of 100) misses: 1 of 2 windows in the hour, 50× the 1 % budget — alert.
    clock.set(T0 + 2 * SLO_WINDOW_MS + MIN);
    slo.tick().await;
    let w = windows().await;
    assert_eq!(w.len(), 2);
    assert!(!w[1].met());
    assert_eq!(raised(), 1);
    let alert = tokio::time::timeout(Duration::from_secs(10), alerts.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alert["kind"], "slo_burn");
    let d = &alert["details"];
    assert_eq!(d["use_case_id"], "uc_triage");
    assert_eq!(d["pod_id"], "pod_1");
    assert_eq!(
        (d["windows"].as_u64(), d["missed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(d["burn_rate"], 50.0);
    assert_eq!(
        (d["requests"].as_u64(), d["slow"].as_u64()),
        (Some(100), Some(6))
    );
    assert_eq!(d["window_start"], "2026-11-30T23:55:00.000Z");
    let message = alert["message"].as_str().unwrap();
    assert!(message.contains("`triage`"), "{message}");
    assert!(
        message.contains("6.0 % of requests slower than 800 ms"),
        "{message}"
    );

    // A record of window 0 arriving now is added to its stored window.
    slo.record(&who, T0 + 2_000, 10, 200);
    slo.tick().await;
    let w = windows().await;
    assert_eq!(w[0].requests, 101);

    // Window 2 (3 errors of 50) misses too: still burning, but within the hour — no new alert.
    clock.set(T0 + 2 * SLO_WINDOW_MS + MIN + 1);
    for i in 0..50 {
        slo.record(
            &who,
            T0 + 2 * SLO_WINDOW_MS + MIN + i,
            10,
            if i < 3 { 500 } else { 200 },
        );
    }
    clock.set(T0 + 3 * SLO_WINDOW_MS + MIN);
    slo.tick().await;
    assert!(!windows().await[2].met());
    assert_eq!(raised(), 1, "one alert per use case per hour");

    // An hour after the alert, a missed window alerts again.
    let later = T0 + SLO_WINDOW_MS + 60 * MIN;
    clock.set(later + MIN / 2);
    for i in 0..10 {
        slo.record(&who, later + i, 10, 503);
    }
    clock.set(later + SLO_WINDOW_MS + MIN);
    slo.tick().await;
    assert_eq!(raised(), 2);
    let again = tokio::time::timeout(Duration::from_secs(10), alerts.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("100.0 % of requests failed (1 % allowed)"),
        "{again}"
    );
    // Only the last hour counts: windows 0 and 1 started an hour or more before this one.
    assert_eq!(
        (
            again["details"]["windows"].as_u64(),
            again["details"]["missed"].as_u64()
        ),
        (Some(2), Some(2)),
        "{again}"
    );
    assert_eq!(again["details"]["burn_rate"], 100.0);

    // The next window misses too, within the hour of that alert: no alert.
    let next = later + SLO_WINDOW_MS;
    for i in 0..10 {
        slo.record(&who, next + i, 10, 503);
    }
    clock.set(next + SLO_WINDOW_MS + MIN);
    slo.tick().await;
    assert_eq!(raised(), 2);
    // An hour after that alert a window meets its SLO. The hour still burns (the window before
    // it missed), but a window that met raises nothing.
    let met = later + 60 * MIN;
    clock.set(met + MIN / 2);
    for i in 0..10 {
        slo.record(&who, met + i, 10, 200);
    }
    clock.set(met + SLO_WINDOW_MS + MIN);
    slo.tick().await;
    let w = windows().await;
    assert!(w.last().unwrap().met());
    assert_eq!(w.last().unwrap().start, met);
    assert_eq!(raised(), 2, "a window that met its SLO raises no alert");
}

#[tokio::test]
async fn a_use_cases_requests_are_counted_into_its_window_once_its_slo_is_set() {
    let s = common::sim(tollgate_simulator::SimConfig::default()).await;
    let clock = Clock::manual(T0 + 1_000);
    let g = common::gateway_at(&common::two_route_config(&s.url), clock.clone()).await;
    // Without an SLO nothing is counted.
    assert_eq!(
        g.post(json!({"model": "m", "messages": common::user("a")}))
            .await
            .status(),
        200
    );
    g.gw.store
        .update_use_case(
            "test",
            &g.use_case.id,
            &UseCasePatch {
                slo: Some(Slo {
                    latency_p95_ms: Some(60_000),
                    max_error_rate_pct: Some(50.0),
                    objective_pct: None,
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    g.gw.keyring.reload().await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            g.post(json!({"model": "m", "messages": common::user("b")}))
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        g.post(json!({"model": "nope", "messages": common::user("c")}))
            .await
            .status(),
        404,
        "refused before admission: no record, not counted"
    );
    g.gw.books.ledger.written_at_least(4).await;
    clock.set(T0 + SLO_WINDOW_MS + 60_000);
    let slo = g.gw.books.slo.clone().unwrap();
    slo.tick().await;
    let w =
        g.gw.store
            .slo_windows(&g.use_case.id, 0, i64::MAX)
            .await
            .unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        (w[0].start, w[0].requests, w[0].errors, w[0].slow),
        (T0, 3, 0, 0)
    );
    assert_eq!(w[0].pod_id, g.use_case.pod_id);
    assert!(w[0].met());
    g.shut_down().await;
}
