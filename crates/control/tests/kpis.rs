//! `GET /admin/v1/kpis` end to end: traffic through the gateway and feedback from the
//! application, on a manual clock, read back as KPIs whose values are counted by hand; who may
//! read which scope; bad parameters.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_simulator::SimConfig;

/// The value `name` of KPI `id` in a report.
fn value(report: &Value, id: &str, name: &str) -> Option<f64> {
    let k = report["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("no KPI {id}"));
    k["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
}

fn kpi<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap()
}

/// A use case's KPI report for `query` (`window=day`, `from=…&to=…`), which must be a 200.
async fn use_case_kpis(api: &planes::Http, admin: &str, uc: &str, query: &str) -> Value {
    let path = format!("/admin/v1/kpis?use_case_id={uc}&{query}");
    let (st, r) = api.call(Method::GET, &path, admin, None).await;
    assert_eq!(st, 200, "{path}: {r}");
    r
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no value"));
    assert!((got - want).abs() < 1e-9, "{what}: {got} ≠ {want}");
}

#[tokio::test]
async fn a_use_cases_kpis_from_its_traffic_and_feedback() {
    let now = tollgate_types::time::parse_rfc3339("2026-11-30T10:00:00Z").unwrap();
    let clock = tollgate_types::clock::Clock::manual(now);
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve_at(&common::two_route_config(&s.url), clock.clone()).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    let (st, v) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/use-cases/{uc}"),
            &admin,
            Some(json!({"value_model": {"driver": "efficiency", "kpi": "handling time", "kpi_unit": "minutes",
                "baseline": 9.0, "target": 6.0, "value_per_outcome_nano_usd": 2_000_000_000_u64,
                "eligible_users": 10, "baseline_minutes_per_task": 9.0, "assisted_minutes_per_task": 6.0}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // Four requests: Ann twice in session s1, Bo once, one without an end user.
    let client = reqwest::Client::new();
    let mut rids = Vec::new();
    for (user, session) in [
        (Some("ann"), Some("s1")),
        (Some("ann"), Some("s1")),
        (Some("bo"), None),
        (None, None),
    ] {
        let mut req = client
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&json!({"model": "m", "messages": common::user("hello")}));
        if let Some(u) = user {
            req = req.header("x-tollgate-user", u);
        }
        if let Some(s) = session {
            req = req.header("x-tollgate-session", s);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        rids.push(resp.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    for body in [
        // (Not about s1's requests: the session's escalation would speak for them.)
        json!({"request_id": rids[3], "outcome": "success", "rating": 5, "accepted": true, "edited": false, "value_usd": "10"}),
        json!({"request_id": rids[2], "outcome": "failure", "rating": 2}),
        json!({"session_id": "s1", "outcome": "escalated"}),
    ] {
        let resp = client
            .post(format!("{}/v1/feedback", g.url))
            .bearer_auth(&g.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // Not waited for: the report has the ledger and the outcome writer write what they hold
    // before it reads.
    // A minute later: the last 30 days hold all of it.
    clock.advance(std::time::Duration::from_secs(60));

    let (st, r) = api
        .call(
            Method::GET,
            &format!("/admin/v1/kpis?use_case_id={uc}&window=month"),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["scope"], "use_case");
    assert_eq!(r["scope_id"], uc.as_str());
    assert_eq!(r["use_cases"], 1);
    assert_eq!(r["kpis"].as_array().unwrap().len(), 25);
    // KPIs are kept per hour: the window ends at the end of the hour it reaches into.
    assert_eq!(r["to"], "2026-11-30T11:00:00.000Z");
    assert_eq!(r["from"], "2026-10-31T11:00:00.000Z");
    // So is a window asked for in minutes: it is widened to the whole hour, says so, and every
    // KPI in it covers that hour — the requests of 10:00:00 are in "10:00:30 to 10:00:45".
    let (st, part) = api
        .call(
            Method::GET,
            &format!(
                "/admin/v1/kpis?use_case_id={uc}&from=2026-11-30T10:00:30Z&to=2026-11-30T10:00:45Z"
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 200, "{part}");
    assert_eq!(
        (part["from"].as_str(), part["to"].as_str()),
        (
            Some("2026-11-30T10:00:00.000Z"),
            Some("2026-11-30T11:00:00.000Z")
        )
    );
    assert_eq!(
        kpi(&part, "spend")["values"][0]["nano_usd"],
        kpi(&r, "spend")["values"][0]["nano_usd"]
    );
    // A window reaching past now ends with the current hour (the outside attack's F5: DAU was
    // averaged over days still to come, and MAU, "the last 30 days of the window", was empty):
    // Ann and Bo on the one day that has been.
    let (st, ahead) = api
        .call(
            Method::GET,
            &format!(
                "/admin/v1/kpis?use_case_id={uc}&from=2026-11-30T00:00:00Z&to=2027-02-01T00:00:00Z"
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 200, "{ahead}");
    assert_eq!(ahead["to"], "2026-11-30T11:00:00.000Z");
    close(
        value(&ahead, "active_users", "dau"),
        2.0,
        "DAU of a window ending ahead",
    );
    close(
        value(&ahead, "active_users", "mau"),
        2.0,
        "MAU of a window ending ahead",
    );
    close(value(&ahead, "stickiness", "stickiness"), 1.0, "stickiness");
    // One that starts after the current hour has nothing to report: said so.
    let (st, future) = api
        .call(
            Method::GET,
            &format!(
                "/admin/v1/kpis?use_case_id={uc}&from=2026-11-30T11:00:00Z&to=2026-12-01T00:00:00Z"
            ),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        (st, future["error"]["param"].as_str()),
        (400, Some("from")),
        "{future}"
    );
    // 1, 2: Ann and Bo of 10 eligible; 31 days touched by the window.
    close(value(&r, "active_users", "window"), 2.0, "active users");
    close(value(&r, "active_users", "dau"), 2.0 / 31.0, "DAU");
    close(value(&r, "penetration", "penetration"), 0.2, "penetration");
    // 4: 4 requests ÷ 2 users; s1's 2 requests ÷ 1 session.
    close(
        value(&r, "usage_intensity", "requests_per_user"),
        2.0,
        "requests per user",
    );
    close(
        value(&r, "usage_intensity", "turns_per_session"),
        2.0,
        "turns",
    );
    // 5: no streams.
    assert!(kpi(&r, "abandonment")["not_available"].is_string());
    // 8: ratings 5 and 2: one positive of two; two ratings over four answers.
    close(
        value(&r, "satisfaction", "satisfaction"),
        0.5,
        "satisfaction",
    );
    close(
        value(&r, "satisfaction", "feedback_coverage"),
        0.5,
        "coverage",
    );
    // 9: one acceptance, unedited.
    close(
        value(&r, "acceptance_rate", "acceptance"),
        1.0,
        "acceptance",
    );
    // 12: no errors.
    close(value(&r, "error_rate", "error_rate"), 0.0, "errors");
    // 18 = 16's spend ÷ 1 success, to the nano-dollar.
    let spend = kpi(&r, "spend")["values"][0]["nano_usd"].as_i64().unwrap();
    assert!(spend > 0, "priced traffic");
    assert_eq!(
        kpi(&r, "cost_per_successful_outcome")["values"][0]["nano_usd"].as_i64(),
        Some(spend)
    );
    // 21: 1 success ÷ 3 tasks (three requests and sessions with an outcome, more than the one
    // session); (3 outcomes − 1 escalated) ÷ 3.
    close(
        value(&r, "task_success", "task_success"),
        1.0 / 3.0,
        "task success",
    );
    close(
        value(&r, "task_success", "containment"),
        2.0 / 3.0,
        "containment",
    );
    // 22: one success × (9 − 6) minutes = 0.05 hours.
    close(value(&r, "time_saved", "hours"), 0.05, "time saved");
    // 23: the reported $10 (the success had a value: nothing modelled).
    assert_eq!(
        kpi(&r, "roi")["values"][0]["nano_usd"].as_i64(),
        Some(10_000_000_000)
    );
    close(
        value(&r, "roi", "roi"),
        (10e9 - spend as f64) / spend as f64,
        "ROI",
    );
    // 24, 25: a production use case with a KPI, a baseline and outcomes.
    close(value(&r, "conversion", "conversion"), 1.0, "conversion");
    close(value(&r, "kpi_coverage", "coverage"), 1.0, "KPI coverage");
    // 6, 7: no evaluations yet — n/a, never a zero.
    for id in ["eval_pass_rate", "online_judge_score"] {
        let k = kpi(&r, id);
        assert!(k["values"].as_array().unwrap().is_empty(), "{k}");
        assert!(
            k["not_available"].as_str().unwrap().starts_with("no "),
            "{k}"
        );
    }
    // Every KPI says what it is computed from.
    for k in r["kpis"].as_array().unwrap() {
        assert!(!k["definition"].as_str().unwrap().is_empty(), "{k}");
    }

    // A day's window a day later holds nothing: n/a, not zeros.
    clock.advance(std::time::Duration::from_secs(2 * 86_400));
    let (_, later) = api
        .call(
            Method::GET,
            &format!("/admin/v1/kpis?use_case_id={uc}&window=day"),
            &admin,
            None,
        )
        .await;
    assert!(kpi(&later, "satisfaction")["not_available"].is_string());
    assert!(kpi(&later, "active_users")["not_available"].is_string());
}

/// An SLO is set on the use case (checked: each bad field named), its windows close on the
/// gateway's clock, and KPI 13 reads their attainment.
#[tokio::test]
async fn an_slo_is_set_checked_and_read_back_as_attainment() {
    let t0 = tollgate_types::time::parse_rfc3339("2026-11-30T10:00:00Z").unwrap();
    let clock = tollgate_types::clock::Clock::manual(t0 + 1_000);
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve_at(&common::two_route_config(&s.url), clock.clone()).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    let path = format!("/admin/v1/use-cases/{uc}");
    let report = async || {
        api.call(
            Method::GET,
            &format!(
                "/admin/v1/kpis?use_case_id={uc}&from=2026-11-30T10:00:00Z&to=2026-11-30T11:00:00Z"
            ),
            &admin,
            None,
        )
        .await
        .1
    };
    // No SLO: n/a, and says why.
    let r = report().await;
    assert!(
        kpi(&r, "slo_attainment")["not_available"]
            .as_str()
            .unwrap()
            .starts_with("no SLO is set"),
        "{r}"
    );
    for (bad, param) in [
        (json!({"latency_p95_ms": 0}), "slo.latency_p95_ms"),
        (json!({"latency_p95_ms": 600_001}), "slo.latency_p95_ms"),
        (
            json!({"max_error_rate_pct": 100.5}),
            "slo.max_error_rate_pct",
        ),
        (
            json!({"latency_p95_ms": 500, "objective_pct": 40}),
            "slo.objective_pct",
        ),
    ] {
        let (st, v) = api
            .call(Method::PATCH, &path, &admin, Some(json!({ "slo": bad })))
            .await;
        assert_eq!(st, 400, "{bad}: {v}");
        assert_eq!(v["error"]["param"], param, "{bad}: {v}");
    }
    let (st, v) = api
        .call(
            Method::PATCH,
            &path,
            &admin,
            Some(json!({"slo": {"latency_p95": 5}})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("latency_p95"),
        "{v}"
    );
    let slo = json!({"latency_p95_ms": 60_000, "max_error_rate_pct": 0.5});
    let (st, v) = api
        .call(Method::PATCH, &path, &admin, Some(json!({ "slo": slo })))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["slo"], slo);
    let (_, v) = api.call(Method::GET, &path, &admin, None).await;
    assert_eq!(v["slo"], slo);
    let (_, audit) = api
        .call(Method::GET, "/admin/v1/audit?limit=200", &admin, None)
        .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "use_case.update" && e["details"]["fields"] == json!(["slo"])),
        "{audit}"
    );
    // Set, no traffic yet: n/a for want of traffic.
    let r = report().await;
    assert!(
        kpi(&r, "slo_attainment")["not_available"]
            .as_str()
            .unwrap()
            .contains("no traffic"),
        "{r}"
    );
    // Two requests in 10:00–10:05, one in 10:05–10:10: two windows, both met.
    for at in [t0 + 1_000, t0 + 2_000, t0 + 300_000 + 1_000] {
        clock.set(at);
        let resp = g
            .post(json!({"model": "m", "messages": common::user("hello")}))
            .await;
        assert_eq!(resp.status(), 200);
    }
    planes::records(&g, 3).await;
    clock.set(t0 + 11 * 60_000);
    g.gw.books.slo.clone().unwrap().tick().await;
    let r = report().await;
    let k = kpi(&r, "slo_attainment");
    close(value(&r, "slo_attainment", "attainment"), 1.0, "attainment");
    assert_eq!(k["basis"], 2, "{k}");
}

/// KPI 14's headroom: the busiest minute against the request quota of the providers the use
/// case's routes reach — n/a naming the provider that states none.
#[tokio::test]
async fn headroom_is_measured_against_the_quotas_of_the_providers_reached() {
    let t0 = tollgate_types::time::parse_rfc3339("2026-11-30T10:00:00Z").unwrap();
    let clock = tollgate_types::clock::Clock::manual(t0 + 1_000);
    let s = common::sim(SimConfig::default()).await;
    let yaml = format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{0}/v1", quota: {{ requests_per_minute: 600 }} }}
  - {{ name: ant, type: anthropic, base_url: "{0}", api_key: test-key }}
routes:
  - name: m
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: c
    deployments: [{{ provider: ant, model: claude-test }}]
  - name: f
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
    fallbacks: [c]
"#,
        s.url
    );
    let (g, admin) = planes::serve_at(&yaml, clock.clone()).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    for _ in 0..3 {
        let resp = g
            .post(json!({"model": "m", "messages": common::user("hello")}))
            .await;
        assert_eq!(resp.status(), 200);
    }
    planes::records(&g, 3).await;
    let report = async || {
        api.call(
            Method::GET,
            &format!("/admin/v1/kpis?use_case_id={uc}&window=day"),
            &admin,
            None,
        )
        .await
        .1
    };
    // Its routes reach `sim` (600 a minute) and `ant` (no quota stated).
    let r = report().await;
    let k = kpi(&r, "throughput");
    assert_eq!(value(&r, "throughput", "headroom"), None, "{k}");
    let inputs = k["inputs"].to_string();
    assert!(inputs.contains("provider(s) ant"), "{k}");
    close(value(&r, "throughput", "peak_rps"), 3.0 / 60.0, "peak");
    // `f` reaches `ant` too, through its fallback.
    let (st, v) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/use-cases/{uc}"),
            &admin,
            Some(json!({"routes": ["f"]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r = report().await;
    assert!(
        kpi(&r, "throughput")["inputs"]
            .to_string()
            .contains("provider(s) ant"),
        "{r}"
    );
    // Only `m` (sim): 1 − 3 ÷ 600.
    let (st, v) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/use-cases/{uc}"),
            &admin,
            Some(json!({"routes": ["m"]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let r = report().await;
    close(
        value(&r, "throughput", "headroom"),
        1.0 - 3.0 / 600.0,
        "headroom",
    );
}

#[tokio::test]
async fn who_may_read_which_kpis_and_bad_parameters() {
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    let pod_a = g.use_case.pod_id.clone();
    let uc = g.use_case.id.clone();
    let everyone = planes::people(&api, &admin, &pod_a).await;
    let (st, other_pod) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &admin,
            Some(json!({"name": "pod-b"})),
        )
        .await;
    assert_eq!(st, 201);
    let pod_b = other_pod["id"].as_str().unwrap();
    for (who, token) in &everyone {
        let org_wide = matches!(
            *who,
            "bootstrap" | "platform_admin" | "risk_officer" | "finops" | "auditor"
        );
        let member = matches!(*who, "lead" | "builder" | "viewer");
        let get = |path: String| {
            let api = &api;
            async move { api.call(Method::GET, &path, token, None).await }
        };
        let (st, r) = get(format!("/admin/v1/kpis?use_case_id={uc}")).await;
        let want = if org_wide || member { 200 } else { 404 };
        assert_eq!(st, want, "{who}: {r}");
        if st == 200 {
            assert_eq!(r["scope_id"], uc.as_str(), "{who}");
        }
        let (st, _) = get(format!("/admin/v1/kpis?pod_id={pod_a}")).await;
        assert_eq!(st, want, "{who}: pod A");
        let (st, _) = get(format!("/admin/v1/kpis?pod_id={pod_b}")).await;
        assert_eq!(st, if org_wide { 200 } else { 404 }, "{who}: pod B");
        let (st, r) = get("/admin/v1/kpis?window=week".into()).await;
        assert_eq!(st, if org_wide { 200 } else { 403 }, "{who}: portfolio {r}");
        if org_wide {
            assert_eq!(r["scope"], "portfolio");
            assert_eq!(r["use_cases"], 1, "{who}: every use case");
        }
    }
    for (query, param) in [
        ("window=year", "window"),
        ("window=day&from=2026-11-01T00:00:00Z", "window"),
        ("from=2026-11-01T00:00:00Z", "to"),
        ("from=yesterday&to=2026-11-01T00:00:00Z", "from"),
        ("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"),
        (&format!("use_case_id={uc}&pod_id={pod_a}"), "pod_id"),
        ("scope=all", "scope"),
        // An empty filter is a mistake, not a use case named "".
        ("use_case_id=", "use_case_id"),
        ("pod_id=", "pod_id"),
    ] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/kpis?{query}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(st, 400, "{query}: {v}");
        assert_eq!(v["error"]["param"], param, "{query}: {v}");
    }
    let (st, _) = api
        .call(
            Method::GET,
            "/admin/v1/kpis?use_case_id=uc_nope",
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn the_portfolio_places_every_use_case_and_draws_one_bubble_each() {
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    let pod_a = g.use_case.pod_id.clone();
    // The gateway's own use case (scores 3 everywhere) and three more, one in another pod.
    let (_, pod_b) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &admin,
            Some(json!({"name": "pod-b"})),
        )
        .await;
    let pod_b = pod_b["id"].as_str().unwrap().to_string();
    let mut ids = vec![g.use_case.id.clone()];
    for (pod, name, scores) in [
        (
            &pod_a,
            "quick & <win>",
            json!({"impact": 5, "feasibility": 5, "data_readiness": 5, "risk": 1, "time_to_impact": 5}),
        ),
        (
            &pod_a,
            "bet",
            json!({"impact": 5, "feasibility": 1, "data_readiness": 1, "risk": 5, "time_to_impact": 5}),
        ),
        (
            &pod_b,
            "filler",
            json!({"impact": 1, "feasibility": 5, "data_readiness": 5, "risk": 3, "time_to_impact": 1}),
        ),
    ] {
        let (st, v) = api
            .call(
                Method::POST,
                "/admin/v1/use-cases",
                &admin,
                Some(json!({"pod_id": pod, "name": name, "routes": ["m"], "scores": scores})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Spend on the gateway's use case only.
    let resp = g
        .post(json!({"model": "m", "messages": common::user("hello")}))
        .await;
    assert_eq!(resp.status(), 200);
    g.gw.books.ledger.written_at_least(1).await;

    let (st, r) = api
        .call(Method::GET, "/admin/v1/portfolio", &admin, None)
        .await;
    assert_eq!(st, 200, "{r}");
    let ucs = r["use_cases"].as_array().unwrap();
    assert_eq!(ucs.len(), 4);
    // Highest priority first: all best = 100; all 3s = 50 (risk 3 → 0.5 too); the bet: impact
    // 35 + time 10 = 45; the filler: feasibility 25 + data 20 + risk 10 × 0.5 = 50.
    let prio: Vec<(&str, f64, &str)> = ucs
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["priority"].as_f64().unwrap(),
                u["quadrant"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(prio[0], ("quick & <win>", 100.0, "quick_win"));
    assert_eq!(prio[3], ("bet", 45.0, "strategic_bet"));
    let filler = prio.iter().find(|p| p.0 == "filler").unwrap();
    assert_eq!((filler.1, filler.2), (50.0, "fill_in"));
    assert_eq!(r["pipeline"]["production"], 1);
    assert_eq!(r["pipeline"]["proposed"], 3);
    assert_eq!(
        r["quadrants"]["quick_win"], 2,
        "3s on every score are a quick win"
    );
    let mine = ucs.iter().find(|u| u["id"] == ids[0].as_str()).unwrap();
    assert_ne!(mine["spend_usd"], "0.00", "{mine}");
    // Other weights: only impact counts.
    let (_, r) = api
        .call(
            Method::GET,
            "/admin/v1/portfolio?weights=impact=1,feasibility=0,data_readiness=0,risk=0,time_to_impact=0",
            &admin,
            None,
        )
        .await;
    let bet = r["use_cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "bet")
        .unwrap();
    assert_eq!(bet["priority"], 100.0);

    // The chart: valid XML, one bubble per use case, named in its title, coloured by stage.
    let resp = reqwest::Client::new()
        .get(format!("{}/admin/v1/portfolio?format=svg", g.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml")
    );
    let text = resp.text().await.unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let bubbles: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("class") == Some("use-case"))
        .collect();
    let mut drawn: Vec<&str> = bubbles
        .iter()
        .map(|b| b.attribute("data-id").unwrap())
        .collect();
    drawn.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(drawn, want);
    let titles: Vec<String> = bubbles
        .iter()
        .map(|b| {
            b.children()
                .find(|c| c.has_tag_name("title"))
                .unwrap()
                .text()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("quick & <win> (proposed")),
        "{titles:?}"
    );
    // The one with spend is the largest bubble.
    let r_of = |id: &str| -> f64 {
        bubbles
            .iter()
            .find(|b| b.attribute("data-id") == Some(id))
            .unwrap()
            .attribute("r")
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(r_of(&ids[0]) > r_of(&ids[1]));
    // Without spend a use case is still drawn: a dot of radius 6.
    for id in &ids[1..] {
        assert_eq!(r_of(id), 6.0, "{id}");
    }

    // A pod member sees their pod's use cases only.
    let people = planes::people(&api, &admin, &pod_a).await;
    let viewer = &people.iter().find(|(w, _)| *w == "viewer").unwrap().1;
    let (st, r) = api
        .call(Method::GET, "/admin/v1/portfolio", viewer, None)
        .await;
    assert_eq!(st, 200);
    let seen: Vec<&str> = r["use_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["pod_id"].as_str().unwrap())
        .collect();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|p| *p == pod_a));
    // Bad input.
    for (query, param) in [
        ("weights=fit=3", "weights"),
        ("weights=impact=1001", "weights"),
        ("format=png", "format"),
        ("window=year", "window"),
    ] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/portfolio?{query}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(st, 400, "{query}: {v}");
        assert_eq!(v["error"]["param"], param);
    }
}

#[tokio::test]
async fn the_premium_share_counts_requests_to_models_with_a_cheaper_candidate() {
    let s = common::sim(SimConfig::default()).await;
    let yaml = format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{}/v1" }}
routes:
  - name: m
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: p
    deployments: [{{ provider: sim, model: gpt-4o-2024-08-06 }}]
"#,
        s.url
    );
    let (g, admin) = planes::serve(&yaml).await;
    for route in ["p", "m", "m", "m"] {
        let resp = reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&json!({"model": route, "messages": common::user("hello")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    g.gw.books.ledger.written_at_least(4).await;
    let api = planes::Http::new(&g.url);
    let r = use_case_kpis(&api, &admin, &g.use_case.id, "window=day").await;
    // gpt-4o has a cheaper candidate (gpt-4o-mini) in the catalog: 1 of 4 requests.
    close(
        value(&r, "model_mix", "premium_share"),
        0.25,
        "premium share",
    );
}

/// KPI 19's routing savings: what each request's tokens would have cost at its route's first
/// deployment's prices, less what they cost. A request that fell back from gpt-4o (down) to
/// gpt-4o-mini saved the price difference on its tokens; one answered where it was sent saved
/// nothing; one whose route starts on an unpriced deployment is left out (not counted as zero).
#[tokio::test]
async fn routing_savings_price_each_request_at_its_routes_first_deployment() {
    let s = common::sim(SimConfig::default()).await;
    let yaml = format!(
        r#"
providers:
  - {{ name: down, type: openai_compatible, base_url: "http://127.0.0.1:1/v1" }}
  - {{ name: sim, type: openai_compatible, base_url: "{}/v1" }}
routes:
  - name: premium
    retries: 0
    deployments:
      - {{ provider: down, model: gpt-4o-2024-08-06 }}
      - {{ provider: sim, model: gpt-4o-mini, weight: 0 }}
  - name: m
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: local
    retries: 0
    deployments:
      - {{ provider: down, model: in-house-llm }}
      - {{ provider: sim, model: gpt-4o-mini, weight: 0 }}
"#,
        s.url
    );
    let (g, admin) = planes::serve(&yaml).await;
    let api = planes::Http::new(&g.url);
    let report = async || {
        let r = use_case_kpis(&api, &admin, &g.use_case.id, "window=day").await;
        kpi(&r, "model_mix").clone()
    };
    // No traffic: n/a.
    assert!(report().await["not_available"].is_string());
    for route in ["premium", "m", "local"] {
        let resp = reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&json!({"model": route, "messages": common::user("hello there")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{route}");
    }
    let records = common::records(&g.gw, 3).await;
    let on = |route: &str| records.iter().find(|r| r.route == route).unwrap();
    let fell_back = on("premium");
    assert_eq!(fell_back.attempts, 2);
    assert_eq!(fell_back.model.as_deref(), Some("gpt-4o-mini"));
    // Per token: gpt-4o-2024-08-06 $2.50 / $10 per 1M in / out, gpt-4o-mini $0.15 / $0.60.
    let (input, output) = (fell_back.input_tokens, fell_back.output_tokens);
    assert!(input > 0 && output > 0, "{fell_back:?}");
    assert_eq!(fell_back.cost_nano_usd, Some(input * 150 + output * 600));
    assert_eq!(
        fell_back.first_choice_cost_nano_usd,
        Some(input * 2_500 + output * 10_000)
    );
    let direct = on("m");
    assert_eq!(direct.first_choice_cost_nano_usd, direct.cost_nano_usd);
    // The first deployment of `local` has no price: nothing to compare with.
    let local = on("local");
    assert!(local.cost_nano_usd.is_some());
    assert_eq!(local.first_choice_cost_nano_usd, None);

    let k = report().await;
    let saved = k["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "routing_savings")
        .unwrap_or_else(|| panic!("{k}"));
    assert_eq!(
        saved["nano_usd"].as_i64(),
        Some((input * 2_350 + output * 9_400) as i64),
        "{k}"
    );
    assert!(
        k["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "priced_on_first_deployment" && i["value"] == "2"),
        "{k}"
    );
}

/// KPI 20: the last month complete by the window's end, its month-end forecast as the forecast
/// report gave it at the end of the 14th, and what it cost — on constructed spend in October
/// 2026 around the cut, the month's ends and another use case's.
#[tokio::test]
async fn forecast_accuracy_checks_the_forecast_the_report_gave_on_the_14th() {
    use tollgate_store::LedgerQueries;
    let t = |s: &str| tollgate_types::time::parse_rfc3339(s).unwrap();
    let clock = tollgate_types::clock::Clock::manual(t("2026-10-14T23:59:59.999Z"));
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve_at(&common::two_route_config(&s.url), clock.clone()).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    const USD: u64 = 1_000_000_000;
    let record = |at: &str, usd: u64, use_case: &str| tollgate_store::RequestRecord {
        id: tollgate_store::new_id("rec"),
        at: t(at),
        key_id: "key_a".into(),
        use_case_id: use_case.into(),
        pod_id: g.use_case.pod_id.clone(),
        endpoint: "chat".into(),
        route: "m".into(),
        status: 200,
        outcome: "ok".into(),
        cost_nano_usd: Some(usd * USD),
        cost_split: [usd * USD, 0, 0, 0, 0],
        price_source: "catalog:test".into(),
        ..Default::default()
    };
    g.gw.store
        .insert_records(&[
            record("2026-09-30T23:59:59.999Z", 500, &uc),
            record("2026-10-02T10:00:00Z", 30, &uc),
            record("2026-10-10T12:00:00Z", 14, &uc),
            record("2026-10-14T23:30:00Z", 7, &uc),
            record("2026-10-15T00:00:00Z", 100, &uc),
            record("2026-10-31T23:59:59.999Z", 9, &uc),
            record("2026-11-01T00:00:00Z", 1_000, &uc),
            record("2026-10-05T00:00:00Z", 4_000, "uc_someone_else"),
        ])
        .await
        .unwrap();
    // Before: $51 spent in October (30 + 14 + 7), $21 of it in the last 7 days (168 hours),
    // 17 days (408 hours) left: 51 + 21 × 408 ÷ 168 = $102.
    let (st, f) = api
        .call(
            Method::GET,
            "/admin/v1/reports/forecast?by=use_case",
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 200, "{f}");
    let row = f["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == uc.as_str())
        .unwrap_or_else(|| panic!("{f}"));
    assert_eq!(row["forecast_nano_usd"].as_u64(), Some(102 * USD), "{f}");
    assert_eq!(
        (f["window_minutes"].as_i64(), f["minutes_left"].as_i64()),
        (Some(168 * 60), Some(408 * 60))
    );

    // In November, October is the last complete month: it cost $160 (30 + 14 + 7 + 100 + 9).
    clock.set(t("2026-11-10T08:00:00Z"));
    let report = async |query: &str| {
        let r = use_case_kpis(&api, &admin, &uc, query).await;
        kpi(&r, "forecast_accuracy").clone()
    };
    let k = report("window=week").await;
    let input = |k: &Value, name: &str| {
        k["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .map(|i| i["value"].as_str().unwrap().to_string())
    };
    assert_eq!(input(&k, "month").as_deref(), Some("2026-10"), "{k}");
    assert_eq!(input(&k, "forecast").as_deref(), Some("$102.00"), "{k}");
    assert_eq!(input(&k, "actual").as_deref(), Some("$160.00"), "{k}");
    assert_eq!(
        input(&k, "spent_before_15th").as_deref(),
        Some("$51.00"),
        "{k}"
    );
    // |102 − 160| ÷ 160.
    close(
        k["values"][0]["value"].as_f64(),
        58.0 / 160.0,
        "forecast error",
    );
    // A window ending in October checks September, whose only spend came after its 15th.
    let k = report("from=2026-10-01T00:00:00Z&to=2026-10-20T00:00:00Z").await;
    assert_eq!(input(&k, "month").as_deref(), Some("2026-09"), "{k}");
    assert!(
        k["not_available"]
            .as_str()
            .unwrap()
            .contains("before its 15th"),
        "{k}"
    );
    // One ending exactly as November began has October complete; one in the last millisecond
    // of October does not.
    let k = report("from=2026-10-20T00:00:00Z&to=2026-11-01T00:00:00Z").await;
    assert_eq!(input(&k, "month").as_deref(), Some("2026-10"), "{k}");
    let k = report("from=2026-08-01T00:00:00Z&to=2026-08-20T00:00:00Z").await;
    assert!(
        k["not_available"]
            .as_str()
            .unwrap()
            .contains("nothing was spent in 2026-07"),
        "{k}"
    );
}

/// KPIs 6 and 10 read the scope's runs: the latest finished evaluation run in the window beside
/// its champion (Δ = 9/10 − 7/10), and the gaps flagged per finished fairness run ((2 + 0) ÷ 2).
#[tokio::test]
async fn evaluation_kpis_read_the_latest_run_its_champion_and_the_fairness_runs() {
    use tollgate_store::{EvalQueries, EvalRun, FairnessQueries, FairnessRun};
    let now = tollgate_types::time::parse_rfc3339("2026-11-30T10:00:00Z").unwrap();
    let clock = tollgate_types::clock::Clock::manual(now);
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve_at(&common::two_route_config(&s.url), clock.clone()).await;
    let uc = &g.use_case;
    const HOUR: i64 = 3_600_000;
    for (id, stage, at, passed) in [
        ("run_1", "production", now - 40 * 24 * HOUR, 7),
        ("run_2", "pilot", now - 2 * HOUR, 9),
    ] {
        let r = EvalRun {
            id: id.into(),
            use_case_id: uc.id.clone(),
            pod_id: uc.pod_id.clone(),
            suite: "s".into(),
            suite_version: 1,
            stage: stage.into(),
            trigger: "manual".into(),
            status: "running".into(),
            started_at: at,
            created_by: "admin".into(),
            cases_total: 10,
            ..EvalRun::default()
        };
        g.gw.store.create_run("admin", &r).await.unwrap();
        g.gw.store
            .finish_run(&EvalRun {
                status: "done".into(),
                finished_at: Some(at + 1),
                cases_done: 10,
                passed,
                ..r
            })
            .await
            .unwrap();
    }
    for (id, flags) in [("fair_1", 2), ("fair_2", 0)] {
        let r = FairnessRun {
            id: id.into(),
            use_case_id: uc.id.clone(),
            pod_id: uc.pod_id.clone(),
            status: "running".into(),
            started_at: now - HOUR,
            created_by: "admin".into(),
            route: "m".into(),
            policy: "builtin".into(),
            prompt_set_hash: "h".into(),
            probe: json!({}),
            calls_total: 1,
            ..FairnessRun::default()
        };
        g.gw.store.create_fairness_run("admin", &r).await.unwrap();
        g.gw.store
            .finish_fairness_run(&FairnessRun {
                status: "done".into(),
                finished_at: Some(now - HOUR + 1),
                flagged: Some(flags > 0),
                report: Some(json!({"flags": vec![json!({}); flags]})),
                ..r
            })
            .await
            .unwrap();
    }
    // KPI 10 is a rate over requests: one.
    let resp = g
        .post(json!({"model": "m", "messages": common::user("hello")}))
        .await;
    assert_eq!(resp.status(), 200);
    // A minute later, so the window (ending with the current hour) holds it.
    clock.advance(std::time::Duration::from_secs(60));
    let api = planes::Http::new(&g.url);
    for query in [
        format!("use_case_id={}&window=day", uc.id),
        format!("pod_id={}&window=day", uc.pod_id),
        "window=day".to_string(),
    ] {
        let (st, r) = api
            .call(
                Method::GET,
                &format!("/admin/v1/kpis?{query}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(st, 200, "{r}");
        close(value(&r, "eval_pass_rate", "pass_rate"), 0.9, &query);
        close(
            value(&r, "eval_pass_rate", "delta_vs_champion"),
            0.2,
            &query,
        );
        close(
            value(&r, "safety_incidents", "fairness_flags_per_release"),
            1.0,
            &query,
        );
    }
}
