//! `POST /v1/feedback` end to end: what a key may name (its own use case's requests and
//! sessions, nothing else), what bad input is told, idempotency by event id, 10,000 concurrent
//! events counted exactly, and events summed into the hour they happened in.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_simulator::SimConfig;
use tollgate_store::{
    LedgerQueries, OutcomeQueries, OutcomeRollup, PilotCaps, RequestRecord, Stage,
};

/// Posts feedback with `key`: (status, body).
async fn feedback(g: &common::Gw, key: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/feedback", g.url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Posts `body` as it is written (JSON text) to `/v1/feedback` with the gateway's key.
async fn post_raw(g: &common::Gw, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/feedback", g.url))
        .bearer_auth(&g.key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A chat request of `key` in `session`: its `x-request-id`.
async fn ask(g: &common::Gw, key: &str, session: Option<&str>) -> String {
    let mut req = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(key)
        .json(&json!({"model": "m", "messages": common::user("hello")}));
    if let Some(s) = session {
        req = req.header("x-tollgate-session", s);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.headers()["x-request-id"].to_str().unwrap().to_string()
}

/// Every rollup row, by hour then use case.
async fn rollups(g: &common::Gw) -> Vec<OutcomeRollup> {
    g.gw.store.outcome_rollups(0, i64::MAX).await.unwrap()
}

#[tokio::test]
async fn a_key_names_only_its_own_use_cases_requests_and_sessions() {
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    let (other, other_key) =
        common::use_case_with_key(&g.gw, Stage::Production, &["m"], PilotCaps::default(), None)
            .await;
    let rid = ask(&g, &g.key, Some("conv-1")).await;
    let theirs = ask(&g, &other_key, Some("conv-9")).await;

    // Posted the moment the answer arrived (its record may still be queued): accepted.
    let (st, v) = feedback(
        &g,
        &g.key,
        json!({"request_id": rid, "event_id": "evt-1", "outcome": "success", "rating": 5,
               "accepted": true, "edited": false, "value_usd": "12.50", "minutes_saved": 7.5,
               "labels": {"channel": "web"}}),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["status"], "accepted");
    assert_eq!(v["event_id"], "evt-1");
    assert!(v["id"].as_str().unwrap().starts_with("fbk_"), "{v}");
    let (st, v) = feedback(
        &g,
        &g.key,
        json!({"session_id": "conv-1", "outcome": "escalated", "rating": 2}),
    )
    .await;
    assert_eq!(st, 202, "{v}");

    // Another use case's request or session, or one that does not exist: the same 404.
    for (key, body) in [
        (&other_key, json!({"request_id": rid, "outcome": "failure"})),
        (
            &other_key,
            json!({"session_id": "conv-1", "outcome": "failure"}),
        ),
        (&g.key, json!({"request_id": theirs, "outcome": "failure"})),
        (
            &g.key,
            json!({"session_id": "conv-9", "outcome": "failure"}),
        ),
        (
            &g.key,
            json!({"request_id": "no-such-request", "outcome": "failure"}),
        ),
        (
            &g.key,
            json!({"session_id": "conv-2", "outcome": "failure"}),
        ),
    ] {
        let (st, v) = feedback(&g, key, body.clone()).await;
        assert_eq!(st, 404, "{body}: {v}");
        assert_eq!(v["error"]["code"], "not_found", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("of this key's use case"),
            "{v}"
        );
    }
    // Without a key, or with a wrong one: 401.
    for key in ["", "tg_wrong"] {
        let (st, v) = feedback(&g, key, json!({"request_id": rid, "outcome": "success"})).await;
        assert_eq!(st, 401, "{v}");
    }

    // A request the gateway no longer remembers is found in the ledger (a record written by
    // an earlier process, say), with its session.
    let old_at = g.gw.clock.now_ms() - 86_400_000;
    let old = RequestRecord {
        id: tollgate_store::new_id("rec"),
        request_id: "req-from-yesterday".into(),
        at: old_at,
        key_id: "key_old".into(),
        use_case_id: g.use_case.id.clone(),
        pod_id: g.use_case.pod_id.clone(),
        endpoint: "chat".into(),
        route: "m".into(),
        status: 200,
        outcome: "ok".into(),
        price_source: "catalog".into(),
        usage_source: "provider".into(),
        session_hash: Some(g.gw.books.session_pseudonym("conv-old")),
        ..RequestRecord::default()
    };
    g.gw.store.insert_records(&[old]).await.unwrap();
    for body in [
        json!({"request_id": "req-from-yesterday", "outcome": "abandoned", "accepted": true}),
        json!({"session_id": "conv-old", "accepted": false}),
    ] {
        let (st, v) = feedback(&g, &g.key, body.clone()).await;
        assert_eq!(st, 202, "{body}: {v}");
    }
    // Not with a time before the session's first request (the ledger's), nor the request's.
    for (body, says) in [
        (
            json!({"session_id": "conv-old", "outcome": "success", "at": tollgate_types::time::rfc3339(old_at - 1)}),
            "before the session's first request",
        ),
        (
            json!({"request_id": "req-from-yesterday", "outcome": "success", "at": tollgate_types::time::rfc3339(old_at - 1)}),
            "before the request it reports on",
        ),
    ] {
        let (st, v) = feedback(&g, &g.key, body.clone()).await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (400, Some("at")),
            "{body}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    // ... but not by another use case's key.
    let (st, _) = feedback(
        &g,
        &other_key,
        json!({"request_id": "req-from-yesterday", "outcome": "success"}),
    )
    .await;
    assert_eq!(st, 404);

    g.gw.outcomes.written_at_least(4).await;
    let rows = rollups(&g).await;
    // One hour, one use case: the other key's events were all refused.
    assert_eq!(rows.len(), 1, "{rows:?}");
    let mine: Vec<&OutcomeRollup> = rows
        .iter()
        .filter(|r| r.use_case_id == g.use_case.id)
        .collect();
    assert!(rows.iter().all(|r| r.use_case_id != other.id));
    let sum = |f: fn(&OutcomeRollup) -> u64| mine.iter().map(|r| f(r)).sum::<u64>();
    assert_eq!(sum(|r| r.events), 4);
    // A session speaks for its requests: conv-1's report of what was achieved (escalated)
    // stands for its request's (a success worth $12.50 that saved 7.5 minutes), its rating (2)
    // for the request's (5); conv-old's acceptance for its request's (found in the ledger with
    // its session). What a session does not report still counts for the request (rid's
    // acceptance; the old request's abandonment).
    assert_eq!(
        (
            sum(|r| r.success),
            sum(|r| r.failure),
            sum(|r| r.escalated),
            sum(|r| r.abandoned)
        ),
        (0, 0, 1, 1)
    );
    assert_eq!(
        (sum(|r| r.rated), sum(|r| r.positive), sum(|r| r.rating_sum)),
        (1, 0, 2)
    );
    assert_eq!(
        (
            sum(|r| r.with_acceptance),
            sum(|r| r.accepted_unedited),
            sum(|r| r.accepted_edited)
        ),
        (2, 1, 0)
    );
    assert_eq!(sum(|r| r.value_nano_usd), 0);
    assert_eq!(sum(|r| r.success_unvalued), 0);
    assert_eq!(sum(|r| r.minutes_saved_milli), 0);
    assert!(mine.iter().all(|r| r.pod_id == g.use_case.pod_id));

    // A repeat of evt-1: accepted (and counted among the posts), not stored again.
    let (st, v) = feedback(
        &g,
        &g.key,
        json!({"request_id": rid, "event_id": "evt-1", "outcome": "success"}),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    g.gw.outcomes.written_at_least(5).await;
    let metrics = g.metrics().await;
    // Every answer of the endpoint, the 202s too (an outside attack saw only its errors).
    for line in [
        "tollgate_requests_total{endpoint=\"feedback\",route=\"\",status=\"202\"} 5",
        "tollgate_requests_total{endpoint=\"feedback\",route=\"\",status=\"404\"} 7",
        "tollgate_requests_total{endpoint=\"feedback\",route=\"\",status=\"400\"} 2",
        "tollgate_feedback_stored 4",
        "tollgate_feedback_duplicates 1",
    ] {
        assert!(metrics.contains(line), "no {line} in metrics");
    }
    // The requests by use case and pod (one each), never by key.
    for uc in [&g.use_case, &other] {
        let line = format!(
            "tollgate_use_case_requests_total{{use_case=\"{}\",pod=\"{}\",route=\"m\",provider=\"sim\",status=\"200\"}} 1",
            uc.id, uc.pod_id
        );
        assert!(metrics.contains(&line), "no {line} in metrics");
    }
    for (outcome, n) in [
        ("success", 2),
        ("escalated", 1),
        ("abandoned", 1),
        ("none", 1),
    ] {
        let line = format!("tollgate_feedback_events_total{{outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "no {line} in metrics");
    }
}

#[tokio::test]
async fn bad_feedback_is_told_what_is_wrong() {
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    let rid = ask(&g, &g.key, None).await;
    let ok = |extra: Value| {
        let mut b = json!({"request_id": rid});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let labels: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("l{i}"), json!("v"))).collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"outcome": "success"}), "request_id", "`request_id`"),
        (
            json!({"request_id": rid, "session_id": "s", "outcome": "success"}),
            "session_id",
            "not both",
        ),
        (ok(json!({"request_id": ""})), "request_id", "1 to 256"),
        (ok(json!({})), "outcome", "reports nothing"),
        (
            ok(json!({"outcome": "great"})),
            "outcome",
            "unknown variant",
        ),
        // A name is a string: serde's `{"success": null}` spelling is refused too.
        (
            ok(json!({"outcome": {"success": null}})),
            "outcome",
            "expected one of its names as a string, found an object",
        ),
        (ok(json!({"rating": 0})), "rating", "1 to 5"),
        (ok(json!({"rating": 6})), "rating", "1 to 5"),
        (ok(json!({"rating": "five"})), "rating", "found a string"),
        (
            ok(json!({"accepted": "yes"})),
            "accepted",
            "expected a boolean, found a string",
        ),
        (ok(json!({"edited": true})), "edited", "give `accepted` too"),
        (ok(json!({"value_usd": "-1"})), "value_usd", "non-negative"),
        (
            ok(json!({"value_usd": "0.0000000001"})),
            "value_usd",
            "9 decimals",
        ),
        (
            ok(json!({"value_usd": true})),
            "value_usd",
            "decimal string",
        ),
        (
            ok(json!({"minutes_saved": -1})),
            "minutes_saved",
            "between 0",
        ),
        (
            ok(json!({"minutes_saved": "soon"})),
            "minutes_saved",
            "number of minutes",
        ),
        // A decimal string is digits with a point at most: no spaces, signs but a minus,
        // exponents, or a point at either end (an outside attack, 12-04).
        (
            ok(json!({"value_usd": " 12"})),
            "value_usd",
            "decimal string such as \"12.50\", got \" 12\"",
        ),
        (
            ok(json!({"value_usd": ".5"})),
            "value_usd",
            "decimal string",
        ),
        (
            ok(json!({"value_usd": "5."})),
            "value_usd",
            "decimal string",
        ),
        (
            ok(json!({"value_usd": "+5"})),
            "value_usd",
            "decimal string",
        ),
        (
            ok(json!({"minutes_saved": "1e6"})),
            "minutes_saved",
            "number of minutes",
        ),
        (
            ok(json!({"minutes_saved": "  7 "})),
            "minutes_saved",
            "number of minutes",
        ),
        (
            ok(json!({"minutes_saved": "inf"})),
            "minutes_saved",
            "number of minutes",
        ),
        (
            ok(json!({"outcome": "success", "labels": {"bad name": "x"}})),
            "labels.bad name",
            "label names",
        ),
        (
            ok(json!({"outcome": "success", "labels": labels})),
            "labels",
            "at most 20",
        ),
        (
            ok(json!({"outcome": "success", "event_id": "x".repeat(129)})),
            "event_id",
            "1 to 128",
        ),
        (
            ok(json!({"outcome": "success", "at": "yesterday"})),
            "at",
            "RFC 3339",
        ),
        (
            ok(json!({"outcome": "success", "at": "2099-01-01T00:00:00Z"})),
            "at",
            "not in the future",
        ),
        // Within 90 days, but before the request it reports on.
        (
            ok(
                json!({"outcome": "success", "at": tollgate_types::time::rfc3339(g.gw.clock.now_ms() - 86_400_000)}),
            ),
            "at",
            "must not be before the request it reports on",
        ),
        (
            ok(json!({"outcome": "success", "colour": "red"})),
            "colour",
            "unknown field",
        ),
    ];
    for (body, param, says) in cases {
        let (st, v) = feedback(&g, &g.key, body.clone()).await;
        assert_eq!(st, 400, "{body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {v}"
        );
    }
    // The largest valid event — every label name 64 characters, every value 256 characters
    // written as `\u` escapes — is let in; a body past the feedback limit is refused before it
    // is parsed (413), whatever the gateway's limit for chat bodies.
    let escaped = "\\u00e9".repeat(256);
    let labels: Vec<String> = (0..20)
        .map(|i| format!("\"{}{i:02}\": \"{escaped}\"", "n".repeat(62)))
        .collect();
    let largest = format!(
        "{{\"request_id\": \"{rid}\", \"event_id\": \"{}\", \"outcome\": \"success\", \"labels\": {{{}}}}}",
        "e".repeat(128),
        labels.join(", ")
    );
    assert!(largest.len() > 30_000, "{}", largest.len());
    let resp = post_raw(&g, largest).await;
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    let many: Vec<String> = (0..5_000).map(|i| format!("\"k{i}\": \"v\"")).collect();
    let huge = format!(
        "{{\"request_id\": \"{rid}\", \"outcome\": \"success\", \"labels\": {{{}}}}}",
        many.join(", ")
    );
    assert!(huge.len() > tollgate_gateway::feedback::MAX_FEEDBACK_BYTES);
    let resp = post_raw(&g, huge).await;
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    g.gw.outcomes.written_at_least(1).await;
    // Not JSON at all.
    let resp = post_raw(&g, "{\"request_id\": ".into()).await;
    assert_eq!(resp.status(), 400);
    // A label given twice would keep only the last: refused, the key named.
    let resp = post_raw(
        &g,
        format!("{{\"request_id\": \"{rid}\", \"outcome\": \"success\", \"labels\": {{\"a\": \"first\", \"a\": \"second\"}}}}"),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "labels.a", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("given twice"),
        "{v}"
    );
    // Nothing else was stored: only the largest valid event.
    assert_eq!(g.gw.outcomes.stats().pending(), 0);
    let r = rollups(&g).await;
    assert_eq!(r.iter().map(|r| r.events).sum::<u64>(), 1, "{r:?}");
}

#[tokio::test]
async fn ten_thousand_concurrent_events_are_counted_exactly_and_duplicates_once() {
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    const N: usize = 10_000;
    // 10,000 requests of the use case (as the ledger holds them), one event about each.
    let records: Vec<RequestRecord> = (0..N)
        .map(|j| RequestRecord {
            id: tollgate_store::new_id("rec"),
            request_id: format!("req-{j}"),
            at: g.gw.clock.now_ms() - 60_000,
            key_id: "key".into(),
            use_case_id: g.use_case.id.clone(),
            pod_id: g.use_case.pod_id.clone(),
            endpoint: "chat".into(),
            route: "m".into(),
            status: 200,
            outcome: "ok".into(),
            price_source: "catalog".into(),
            usage_source: "provider".into(),
            ..RequestRecord::default()
        })
        .collect();
    g.gw.store.insert_records(&records).await.unwrap();
    let event = |i: usize| {
        let outcome = ["success", "failure", "escalated", "abandoned"][i % 4];
        json!({"request_id": format!("req-{i}"), "event_id": format!("e{i}"), "outcome": outcome,
               "rating": i % 5 + 1, "value_usd": format!("0.{:09}", i)})
    };
    let client = reqwest::Client::new();
    let url = format!("{}/v1/feedback", g.url);
    // Every event, then the first 100 again (a client retrying): each posted concurrently.
    let statuses: Vec<u16> = futures_util::stream::iter((0..N).chain(0..100))
        .map(|i| {
            let req = client.post(&url).bearer_auth(&g.key).json(&event(i));
            async move { req.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 202), "not all accepted");
    g.gw.outcomes.written_at_least((N + 100) as u64).await;
    // Four more events about req-0 make the five one request may have; a sixth and a seventh
    // are accepted and not counted.
    for k in 0..6 {
        let (st, _) = feedback(
            &g,
            &g.key,
            json!({"request_id": "req-0", "event_id": format!("extra{k}"), "accepted": true}),
        )
        .await;
        assert_eq!(st, 202);
    }
    g.gw.outcomes.written_at_least((N + 106) as u64).await;
    let stats = g.gw.outcomes.stats();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(stats.stored.load(Relaxed), N as u64 + 4);
    assert_eq!(stats.duplicates.load(Relaxed), 102);
    let rows = rollups(&g).await;
    let sum = |f: fn(&OutcomeRollup) -> u64| rows.iter().map(f).sum::<u64>();
    assert_eq!(sum(|r| r.events), N as u64 + 4);
    assert_eq!(
        (sum(|r| r.subjects), sum(|r| r.with_acceptance)),
        (N as u64, 1)
    );
    assert_eq!(
        (
            sum(|r| r.success),
            sum(|r| r.failure),
            sum(|r| r.escalated),
            sum(|r| r.abandoned)
        ),
        (2_500, 2_500, 2_500, 2_500)
    );
    assert_eq!(sum(|r| r.rated), N as u64);
    // Ratings 1..=5 in turn: 4 and 5 are positive.
    assert_eq!(sum(|r| r.positive), 4_000);
    assert_eq!(sum(|r| r.rating_sum), 30_000);
    // Values 0..N nano-USD: their sum, exactly.
    assert_eq!(sum(|r| r.value_nano_usd), (N as u64 - 1) * N as u64 / 2);
    // Event 0 reported a value of zero: a success with a value is not "unvalued".
    assert_eq!(sum(|r| r.success_unvalued), 0);
}

#[tokio::test]
async fn events_are_summed_into_the_hour_they_happened_in() {
    // 11:00:00.000 UTC on a manual clock; events at the hour's last and first millisecond, about
    // requests made a second before.
    let now = tollgate_types::time::parse_rfc3339("2026-11-30T11:00:00Z").unwrap();
    let clock = tollgate_types::clock::Clock::manual(now - 1_000);
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway_at(&common::two_route_config(&s.url), clock.clone()).await;
    let mut rids = Vec::new();
    for _ in 0..3 {
        rids.push(ask(&g, &g.key, None).await);
    }
    clock.set(now);
    for (rid, (at, outcome)) in rids.iter().zip([
        ("2026-11-30T10:59:59.999Z", "success"),
        ("2026-11-30T11:00:00Z", "failure"),
        ("2026-11-30T11:00:00.001Z", "failure"),
    ]) {
        let (st, v) = feedback(
            &g,
            &g.key,
            json!({"request_id": rid, "outcome": outcome, "at": at}),
        )
        .await;
        assert_eq!(st, 202, "{v}");
    }
    // No `at`: now. The event counts in this hour; the rating it gives the first request counts
    // with that request, in the hour of its first event.
    let (st, _) = feedback(&g, &g.key, json!({"request_id": rids[0], "rating": 4})).await;
    assert_eq!(st, 202);
    g.gw.outcomes.written_at_least(4).await;
    let rows = rollups(&g).await;
    let hour = now / 3_600_000;
    let got: Vec<(i64, u64, u64, u64, u64, u64)> = rows
        .iter()
        .map(|r| (r.hour, r.events, r.subjects, r.success, r.failure, r.rated))
        .collect();
    assert_eq!(got, vec![(hour - 1, 1, 1, 1, 0, 1), (hour, 3, 2, 0, 2, 0)]);
    // A success without a value is valued later at the use case's value per outcome.
    assert_eq!(rows[0].success_unvalued, 1);
}

#[tokio::test]
async fn feedback_may_name_a_request_whose_record_is_not_written_yet() {
    // A slow stream: its record is written when it ends, some 24 seconds from now.
    let s = common::sim(SimConfig {
        tokens_per_second: 1.0,
        ..Default::default()
    })
    .await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    let resp = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .header("x-tollgate-session", "live")
        .json(&json!({"model": "m", "stream": true, "messages": common::user("hello")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let uc = &g.use_case.id;
    assert!(
        g.gw.store
            .request_first_at(uc, &rid)
            .await
            .unwrap()
            .is_none()
    );
    for body in [
        json!({"request_id": rid, "outcome": "success"}),
        json!({"session_id": "live", "rating": 5}),
    ] {
        let (st, v) = feedback(&g, &g.key, body.clone()).await;
        assert_eq!(st, 202, "{body}: {v}");
    }
    g.gw.outcomes.written_at_least(2).await;
    assert!(
        g.gw.store
            .request_first_at(uc, &rid)
            .await
            .unwrap()
            .is_none()
    );
    drop(resp);
}

#[tokio::test]
async fn money_is_read_from_its_digits_and_bounded() {
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    let mut sent = 0;
    // A JSON number is read from the digits the client wrote, never through a float (the
    // bodies are raw text: a float would already round 1234567.123456789).
    for (value, nanos) in [
        ("1234567.123456789", 1_234_567_123_456_789_u64),
        ("0.000000001", 1),
        ("\"9999999.999999999\"", 9_999_999_999_999_999),
    ] {
        let rid = ask(&g, &g.key, None).await;
        let resp = post_raw(
            &g,
            format!("{{\"request_id\": \"{rid}\", \"value_usd\": {value}}}"),
        )
        .await;
        assert_eq!(resp.status(), 202, "{value}");
        sent += nanos;
    }
    let rid = ask(&g, &g.key, None).await;
    for (body, param, says) in [
        (
            json!({"request_id": rid, "value_usd": 10000000.000000001}),
            "value_usd",
            "at most 10000000",
        ),
        (
            json!({"request_id": rid, "value_usd": "5000000000"}),
            "value_usd",
            "at most 10000000",
        ),
        (
            json!({"request_id": rid, "value_usd": 1.0000000001}),
            "value_usd",
            "9 decimals",
        ),
        (
            json!({"request_id": rid, "outcome": "success", "event_id": "a\u{202e}b"}),
            "event_id",
            "invisible",
        ),
        (
            json!({"request_id": rid, "outcome": "success", "labels": {"k": "x\u{200b}"}}),
            "labels.k",
            "invisible",
        ),
    ] {
        let (st, v) = feedback(&g, &g.key, body.clone()).await;
        assert_eq!(st, 400, "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {v}"
        );
    }
    // An exponent is not how money is written.
    let resp = post_raw(
        &g,
        format!("{{\"request_id\": \"{rid}\", \"value_usd\": 1e3}}"),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "value_usd", "{v}");
    // An array of positional fields is not an object.
    let resp = post_raw(&g, format!("[\"{rid}\", null, null, \"success\"]")).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object"),
        "{v}"
    );
    g.gw.outcomes.written_at_least(3).await;
    let total: u64 = rollups(&g).await.iter().map(|r| r.value_nano_usd).sum();
    assert_eq!(total, sent, "exact to the nano-dollar");
}

#[tokio::test]
async fn each_bound_is_allowed_and_one_past_it_is_not() {
    const DAY: i64 = 86_400_000;
    let now = tollgate_types::time::parse_rfc3339("2026-11-30T11:00:00Z").unwrap();
    // The request was made a second before the oldest time an event may name.
    let clock = tollgate_types::clock::Clock::manual(now - 90 * DAY - 1_000);
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway_at(&common::two_route_config(&s.url), clock.clone()).await;
    let rid = ask(&g, &g.key, Some("conv-b")).await;
    assert!(clock.set(now));
    // At every bound at once: the largest value, 20 labels, a 64-character name and a
    // 256-character value, 90 days back to the millisecond.
    let mut labels: serde_json::Map<String, Value> =
        (0..19).map(|i| (format!("l{i}"), json!("v"))).collect();
    labels.insert("k".repeat(64), json!("x".repeat(256)));
    let (st, v) = feedback(
        &g,
        &g.key,
        json!({"request_id": rid, "value_usd": "10000000", "labels": labels,
               "at": tollgate_types::time::rfc3339(now - 90 * DAY)}),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    // One past each.
    let name = "k".repeat(65);
    for (body, param, says) in [
        (
            json!({"request_id": rid, "outcome": "success", "labels": {name.clone(): "x"}}),
            format!("labels.{name}"),
            "label names",
        ),
        (
            json!({"request_id": rid, "outcome": "success",
                   "at": tollgate_types::time::rfc3339(now - 90 * DAY - 1)}),
            "at".to_string(),
            "within the last 90 days",
        ),
    ] {
        let (st, v) = feedback(&g, &g.key, body.clone()).await;
        assert_eq!(st, 400, "{body}: {v}");
        assert_eq!(v["error"]["param"], param.as_str(), "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {v}"
        );
    }
    // A session holds 50 events: the 51st about it is accepted and not counted.
    for k in 0..51 {
        let (st, v) = feedback(
            &g,
            &g.key,
            json!({"session_id": "conv-b", "event_id": format!("s{k}"), "rating": 4}),
        )
        .await;
        assert_eq!(st, 202, "{v}");
    }
    g.gw.outcomes.written_at_least(52).await;
    let stats = g.gw.outcomes.stats();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(
        (stats.stored.load(Relaxed), stats.duplicates.load(Relaxed)),
        (51, 1)
    );
    let rows = rollups(&g).await;
    let sum = |f: fn(&OutcomeRollup) -> u64| rows.iter().map(f).sum::<u64>();
    assert_eq!(sum(|r| r.value_nano_usd), 10_000_000 * 1_000_000_000);
    // Fifty events, and the rating of one session: one rating.
    assert_eq!((sum(|r| r.events), sum(|r| r.rated)), (51, 1));
}

/// One answered request in a session stands for at most two outcomes (its own and its
/// session's), however many events name them: five about the request and fifty about the
/// session, each a success worth $10M, count as two successes worth $20M — not 55 worth $550M.
#[tokio::test]
async fn many_events_about_one_answer_count_once() {
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    let rid = ask(&g, &g.key, Some("gate-sess")).await;
    let success = json!({"outcome": "success", "value_usd": "10000000"});
    for i in 0..5 {
        let mut b = success.clone();
        b["request_id"] = json!(rid);
        b["rating"] = json!(1 + i % 5);
        let (st, v) = feedback(&g, &g.key, b).await;
        assert_eq!(st, 202, "{v}");
    }
    for _ in 0..50 {
        let mut b = success.clone();
        b["session_id"] = json!("gate-sess");
        let (st, v) = feedback(&g, &g.key, b).await;
        assert_eq!(st, 202, "{v}");
    }
    g.gw.outcomes.written_at_least(55).await;
    let rows = rollups(&g).await;
    let sum = |f: fn(&OutcomeRollup) -> u64| rows.iter().map(f).sum::<u64>();
    assert_eq!(sum(|r| r.events), 55);
    // The session speaks for its request's outcome and value: one success, one value. The
    // request still counts for its rating (the session gave none): two subjects.
    assert_eq!(
        (
            sum(|r| r.subjects),
            sum(|r| r.success),
            sum(|r| r.outcomes())
        ),
        (2, 1, 1)
    );
    assert_eq!(sum(|r| r.value_nano_usd), 10_000_000 * 1_000_000_000);
    // The request's latest rating (5), once.
    assert_eq!((sum(|r| r.rated), sum(|r| r.rating_sum)), (1, 5));
}

/// Outcomes are about answers in production: an evaluation run's requests and requests that
/// got no answer (refused by the policy) cannot be named — neither the moment they end nor
/// later from the ledger — and an evaluation key cannot post feedback at all (the outside
/// attack's F3: both had counted as production successes worth $1,000 and $100).
#[tokio::test]
async fn feedback_is_about_answered_production_requests() {
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    // An evaluation key of the same use case, as the server mints one for a run.
    let (_, eval) = common::eval_key(&g.gw, &g.use_case.id).await;
    let evaluated = ask(&g, &eval, Some("eval-conv")).await;
    // A request the policy refuses.
    g.set_policy(json!({"entities": {"EMAIL_ADDRESS": "block"}}))
        .await;
    let refused = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .header("x-tollgate-session", "refused-conv")
        .json(&json!({"model": "m", "messages": common::user("mail ann.lee@example.org")}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let answered = ask(&g, &g.key, None).await;
    let named = |r: &str| json!({"request_id": r, "outcome": "success", "value_usd": "100"});
    let refused_now = |st: u16, v: &Value| {
        assert_eq!(st, 404, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("answered request"),
            "{v}"
        );
    };
    // At once (from the requests remembered lately) ...
    for r in [&evaluated, &refused] {
        let (st, v) = feedback(&g, &g.key, named(r)).await;
        refused_now(st, &v);
    }
    // A session none of whose requests was answered is nothing to report on either (the
    // re-attack of 2026-12-04: each refused request under a new session made one more outcome).
    let lonely = json!({"session_id": "refused-conv", "outcome": "success", "value_usd": "1000"});
    let (st, v) = feedback(&g, &g.key, lonely.clone()).await;
    assert_eq!(st, 404, "{v}");
    // ... and once their records are in the ledger (the reference looked up there).
    common::records(&g.gw, 3).await;
    for r in [&evaluated, &refused] {
        let (st, v) = feedback(&g, &g.key, named(r)).await;
        refused_now(st, &v);
    }
    let (st, v) = feedback(&g, &g.key, lonely).await;
    assert_eq!(st, 404, "{v}");
    // The evaluation run's session is not a production one either.
    let (st, v) = feedback(
        &g,
        &g.key,
        json!({"session_id": "eval-conv", "outcome": "success"}),
    )
    .await;
    assert_eq!(st, 404, "{v}");
    // An evaluation key posts nothing, not even about an answered production request.
    let (st, v) = feedback(&g, &eval, named(&answered)).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("evaluation_key")),
        "{v}"
    );
    // The answered production request is fine.
    let (st, v) = feedback(&g, &g.key, named(&answered)).await;
    assert_eq!(st, 202, "{v}");
    g.gw.outcomes.written_at_least(1).await;
    let rows = rollups(&g).await;
    let sum = |f: fn(&OutcomeRollup) -> u64| rows.iter().map(f).sum::<u64>();
    assert_eq!(
        (
            sum(|r| r.events),
            sum(|r| r.success),
            sum(|r| r.value_nano_usd)
        ),
        (1, 1, 100_000_000_000)
    );
}

/// Event ids that read the same are one id: `é` as one character or as `e` and a combining
/// accent (the outside attack's F6: both were stored, one success and one failure).
#[tokio::test]
async fn event_ids_that_read_the_same_are_one() {
    let s = common::sim(SimConfig::default()).await;
    let g = common::gateway(&common::two_route_config(&s.url)).await;
    let rid = ask(&g, &g.key, None).await;
    let (st, v) = feedback(
        &g,
        &g.key,
        json!({"request_id": rid, "event_id": "tick\u{e9}t-1", "outcome": "success"}),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    let first = v["id"].clone();
    let (st, v) = feedback(
        &g,
        &g.key,
        json!({"request_id": rid, "event_id": "ticke\u{301}t-1", "outcome": "failure"}),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    // The id as kept (composed) is what the answer says, and the repeat is answered with the
    // id of the event that counts.
    assert_eq!(v["event_id"], "tick\u{e9}t-1");
    assert_eq!(
        v["id"], first,
        "a repeated event_id answers the first one's id"
    );
    let (st, other) = feedback(
        &g,
        &g.key,
        json!({"request_id": rid, "event_id": "other", "rating": 5}),
    )
    .await;
    assert_eq!(st, 202);
    assert_ne!(other["id"], first);
    // Three written: two stored, one found a duplicate.
    g.gw.outcomes.written_at_least(3).await;
    let rows = rollups(&g).await;
    let sum = |f: fn(&OutcomeRollup) -> u64| rows.iter().map(f).sum::<u64>();
    assert_eq!(
        (sum(|r| r.events), sum(|r| r.success), sum(|r| r.failure)),
        (2, 1, 0)
    );
}

/// A request may be named once it is answered, not while it waits on its provider (a client
/// that chose its own `x-request-id` knows it before): feedback posted then is 404, and once
/// the answer is out it is accepted (the review of 2026-12-04: an event posted in flight was
/// accepted and counted even when the request then failed).
#[tokio::test]
async fn a_request_in_flight_is_named_only_once_answered() {
    use axum::routing::post;
    use std::sync::Arc;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (a, r) = (arrived.clone(), release.clone());
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let (a, r) = (a.clone(), r.clone());
            async move {
                a.notify_one();
                r.notified().await;
                axum::Json(json!({"id": "x", "object": "chat.completion", "created": 1, "model": "up",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}))
            }
        }),
    );
    let url = common::serve_upstream(app).await;
    let g = common::gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\" }}]\nroutes: [{{ name: m, deployments: [{{ provider: up, model: upstream-model }}] }}]\n"
    ))
    .await;
    let (url, key) = (g.chat_url(), g.key.clone());
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .header("x-request-id", "my-own-id-1")
            .json(&json!({"model": "m", "messages": common::user("hello")}))
            .send()
            .await
            .unwrap()
    });
    arrived.notified().await;
    let body = json!({"request_id": "my-own-id-1", "outcome": "success"});
    let (st, v) = feedback(&g, &g.key, body.clone()).await;
    assert_eq!(st, 404, "{v}");
    release.notify_one();
    let resp = pending.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "my-own-id-1");
    let (st, v) = feedback(&g, &g.key, body).await;
    assert_eq!(st, 202, "{v}");
}
