//! Hard budgets, with exact numbers: the reservation is the most expensive deployment a route can
//! fall back to; a request without `max_tokens` reserves the default output cap; key, use case, pod
//! and org budgets refuse only their own traffic; streams settle to their real cost; spend is
//! loaded from the ledger after a restart; a new period starts from nothing (on a manual clock).
//!
//! Prices (catalog, nano-USD per token): gpt-4o-mini 150 in / 600 out; gpt-4o 2,500 in / 10,000
//! out. The prompt `hi` holds 8 tokens for reservations (a prompt under 1 KiB is held at its bytes,
//! 2, not counted; plus 3 for the message and 3 to prime the answer).

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tollgate_gateway::Gateway;
use tollgate_simulator::SimConfig;
use tollgate_store::{
    Budget, BudgetQueries, BudgetStatus, KeyQueries, LedgerQueries, PilotCaps, PodQueries, Stage,
    UseCaseQueries, new_id,
};

/// Reservation tokens of the prompt `hi` (see the module docs).
const HI_PROMPT: u64 = 8;
/// nano-USD per token.
const MINI_IN: u64 = 150;
const MINI_OUT: u64 = 600;
const GPT4O_IN: u64 = 2_500;
const GPT4O_OUT: u64 = 10_000;

/// A hard lifetime budget on `scope`/`scope_id`, loaded into the gateway; returns its id.
async fn hard_budget(gw: &Gateway, scope: &str, scope_id: &str, amount: u64) -> String {
    hard_budget_per(gw, scope, scope_id, "lifetime", amount).await
}

/// A hard budget per `period` (in UTC), loaded into the gateway; returns its id.
async fn hard_budget_per(
    gw: &Gateway,
    scope: &str,
    scope_id: &str,
    period: &str,
    amount: u64,
) -> String {
    budget(gw, scope, scope_id, period, "hard", amount).await
}

fn status(gw: &Gateway, id: &str) -> BudgetStatus {
    gw.gate
        .budgeter
        .statuses()
        .into_iter()
        .find(|s| s.budget.id == id)
        .unwrap_or_else(|| panic!("no status for budget {id}"))
}

async fn post_as(url: &str, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Asserts a 429 `budget_exceeded`.
async fn assert_refused(resp: reqwest::Response, what: &str) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (429, Some("budget_exceeded")),
        "{what}: {v}"
    );
}

/// Reads a complete 200 answer; returns (request id, its cost at gpt-4o-mini prices).
async fn ok_mini(resp: reqwest::Response, what: &str) -> (String, u64) {
    let status = resp.status().as_u16();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{what}: {v}");
    let u = &v["usage"];
    let cost = u["prompt_tokens"].as_u64().unwrap() * MINI_IN
        + u["completion_tokens"].as_u64().unwrap() * MINI_OUT;
    (id, cost)
}

/// A new production use case of `pod_id` that may call every route of `gw`.
async fn new_use_case(gw: &Gateway, pod_id: &str) -> String {
    let routes: Vec<String> = gw.config.routes.iter().map(|r| r.name.clone()).collect();
    let uc = gw
        .store
        .create_use_case(
            "test",
            pod_id,
            &new_id("uc"),
            "",
            &Default::default(),
            &Default::default(),
            &routes,
            &PilotCaps::default(),
            &Default::default(),
        )
        .await
        .unwrap();
    for s in [Stage::Pilot, Stage::Production] {
        gw.store
            .change_stage("test", &uc.id, s, "test")
            .await
            .unwrap();
    }
    uc.id
}

/// A new key of `use_case_id`: (key id, secret).
async fn new_key(gw: &Gateway, use_case_id: &str) -> (String, String) {
    let (record, secret) = tollgate_gateway::keys::new_api_key(
        gw.keyring.secret(),
        use_case_id,
        None,
        "test",
        None,
        None,
        "test",
    );
    gw.store.create_key("test", &record).await.unwrap();
    gw.keyring.reload().await.unwrap();
    (record.id, secret)
}

fn mini_route(sim_url: &str) -> String {
    format!(
        "providers: [{{ name: sim, type: openai_compatible, base_url: \"{sim_url}/v1\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n"
    )
}

/// The hand-counted hold is what the gateway reserves for the prompt.
#[test]
fn the_prompt_hi_reserves_eight_tokens() {
    let req: tollgate_types::openai::ChatCompletionRequest =
        serde_json::from_value(json!({"model": "r", "messages": user("hi")})).unwrap();
    assert_eq!(
        tollgate_meter::estimate::chat_prompt_bound("gpt-4o-mini", &req),
        HI_PROMPT
    );
}

/// (a) A route whose fallback is gpt-4o reserves at gpt-4o's prices, although its own deployment
/// is gpt-4o-mini: with `max_tokens` 1,000 the reservation is 8 × 2,500 + 1,000 × 10,000 =
/// 10,020,000 (gpt-4o-mini alone would be 8 × 150 + 1,000 × 600 = 601,200).
#[tokio::test]
async fn the_reservation_is_the_most_expensive_fallback_deployment() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{}/v1" }}
routes:
  - name: cheap
    fallbacks: [pricey]
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: pricey
    deployments: [{{ provider: sim, model: gpt-4o }}]
"#,
        s.url
    ))
    .await;
    let cheap_max = HI_PROMPT * MINI_IN + 1_000 * MINI_OUT;
    let pricey_max = HI_PROMPT * GPT4O_IN + 1_000 * GPT4O_OUT;
    assert_eq!((cheap_max, pricey_max), (601_200, 10_020_000));
    let body = json!({"model": "cheap", "max_tokens": 1000, "messages": user("hi")});

    // Covers gpt-4o-mini's maximum (many times over) but not gpt-4o's by one nano-dollar.
    let (short_uc, short_key) = use_case_with_key(
        &g.gw,
        Stage::Production,
        &["cheap", "pricey"],
        PilotCaps::default(),
        None,
    )
    .await;
    let short = hard_budget(&g.gw, "use_case", &short_uc.id, pricey_max - 1).await;
    assert_refused(
        post_as(&g.url, &short_key, &body).await,
        "one short of gpt-4o's maximum",
    )
    .await;
    assert_eq!(s.count(), 0, "refused before any upstream call");
    let st = status(&g.gw, &short);
    assert_eq!((st.spent_nano_usd, st.reserved_nano_usd), (0, 0));

    // Exactly gpt-4o's maximum: admitted, and answered by gpt-4o-mini.
    let (enough_uc, enough_key) = use_case_with_key(
        &g.gw,
        Stage::Production,
        &["cheap", "pricey"],
        PilotCaps::default(),
        None,
    )
    .await;
    let enough = hard_budget(&g.gw, "use_case", &enough_uc.id, pricey_max).await;
    let (_, cost) = ok_mini(
        post_as(&g.url, &enough_key, &body).await,
        "gpt-4o's maximum",
    )
    .await;
    let recs = records(&g.gw, 1).await;
    assert_eq!(recs[0].model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(recs[0].cost_nano_usd, Some(cost));
    let st = status(&g.gw, &enough);
    assert_eq!((st.spent_nano_usd, st.reserved_nano_usd), (cost, 0));
    let st = status(&g.gw, &short);
    assert_eq!(
        (st.spent_nano_usd, st.reserved_nano_usd),
        (0, 0),
        "another use case"
    );
}

/// (b) Without `max_tokens` a request reserves 4,096 output tokens: 8 × 150 + 4,096 × 600 =
/// 2,458,800 at gpt-4o-mini. A budget of exactly that admits; one nano-dollar less refuses.
#[tokio::test]
async fn without_max_tokens_the_default_output_cap_is_reserved() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&mini_route(&s.url)).await;
    let threshold = HI_PROMPT * MINI_IN + 4_096 * MINI_OUT;
    assert_eq!(
        (
            tollgate_gateway::limits::DEFAULT_OUTPUT_RESERVATION,
            threshold
        ),
        (4_096, 2_458_800)
    );
    let body = json!({"model": "r", "messages": user("hi")});

    let (below_uc, below_key) =
        use_case_with_key(&g.gw, Stage::Production, &["r"], PilotCaps::default(), None).await;
    let below = hard_budget(&g.gw, "use_case", &below_uc.id, threshold - 1).await;
    assert_refused(
        post_as(&g.url, &below_key, &body).await,
        "one nano-dollar below",
    )
    .await;
    assert_eq!(s.count(), 0);

    let (at_uc, at_key) =
        use_case_with_key(&g.gw, Stage::Production, &["r"], PilotCaps::default(), None).await;
    let at = hard_budget(&g.gw, "use_case", &at_uc.id, threshold).await;
    let (_, cost) = ok_mini(
        post_as(&g.url, &at_key, &body).await,
        "exactly the threshold",
    )
    .await;
    let recs = records(&g.gw, 1).await;
    assert_eq!(recs[0].cost_nano_usd, Some(cost));
    let st = status(&g.gw, &at);
    assert_eq!((st.spent_nano_usd, st.reserved_nano_usd), (cost, 0));
    assert_eq!(status(&g.gw, &below).spent_nano_usd, 0);

    // With `n: 2`, every choice may be as long as the cap: 8 × 150 + 2 × 10 × 600 = 13,200.
    let two = json!({"model": "r", "n": 2, "max_tokens": 10, "messages": user("hi")});
    let (n_uc, n_key) =
        use_case_with_key(&g.gw, Stage::Production, &["r"], PilotCaps::default(), None).await;
    hard_budget(
        &g.gw,
        "use_case",
        &n_uc.id,
        HI_PROMPT * MINI_IN + 2 * 10 * MINI_OUT - 1,
    )
    .await;
    assert_refused(
        post_as(&g.url, &n_key, &two).await,
        "two choices reserve twice the cap",
    )
    .await;
}

/// (c) A budget of exactly one request's maximum (`max_tokens` 10: 8 × 150 + 10 × 600 = 7,200)
/// admits one request; once its real cost is spent, the next request in its scope is refused and
/// requests outside its scope are not. Keys: `k1` and `k1b` of use case 1 and `k2` of use case
/// 2, both in pod A; `k3` of use case 3 in pod B.
#[tokio::test]
async fn key_use_case_pod_and_org_budgets_refuse_only_their_scope() {
    let s = sim(SimConfig::default()).await;
    let max = HI_PROMPT * MINI_IN + 10 * MINI_OUT;
    assert_eq!(max, 7_200);
    let body = json!({"model": "r", "max_tokens": 10, "messages": user("hi")});
    // scope → which of k1b, k2, k3 it covers.
    for (scope, covers) in [
        ("key", [false, false, false]),
        ("use_case", [true, false, false]),
        ("pod", [true, true, false]),
        ("org", [true, true, true]),
    ] {
        let g = gateway(&mini_route(&s.url)).await;
        let pod_a = g.use_case.pod_id.clone();
        let pod_b = g.gw.store.create_pod("test", "pod-b", "").await.unwrap().id;
        let uc1 = new_use_case(&g.gw, &pod_a).await;
        let uc2 = new_use_case(&g.gw, &pod_a).await;
        let uc3 = new_use_case(&g.gw, &pod_b).await;
        let (k1_id, k1) = new_key(&g.gw, &uc1).await;
        let (_, k1b) = new_key(&g.gw, &uc1).await;
        let (_, k2) = new_key(&g.gw, &uc2).await;
        let (_, k3) = new_key(&g.gw, &uc3).await;
        let scope_id = match scope {
            "key" => k1_id,
            "use_case" => uc1,
            "pod" => pod_a,
            _ => String::new(),
        };
        let budget = hard_budget(&g.gw, scope, &scope_id, max).await;

        let (_, first) = ok_mini(post_as(&g.url, &k1, &body).await, scope).await;
        // "hi" is 4 tokens to the simulator, and 10 tokens come back: 4 × 150 + 10 × 600.
        assert_eq!(first, 6_600, "{scope}");
        let recs = records(&g.gw, 1).await;
        assert_eq!(recs[0].cost_nano_usd, Some(first), "{scope}");
        let st = status(&g.gw, &budget);
        assert_eq!(
            (st.spent_nano_usd, st.reserved_nano_usd),
            (first, 0),
            "{scope}: the first request's real cost is spent"
        );
        assert_refused(
            post_as(&g.url, &k1, &body).await,
            &format!("{scope}: k1 again"),
        )
        .await;
        let mut admitted = 1;
        for (key, covered, name) in [
            (&k1b, covers[0], "k1b"),
            (&k2, covers[1], "k2"),
            (&k3, covers[2], "k3"),
        ] {
            let resp = post_as(&g.url, key, &body).await;
            if covered {
                assert_refused(resp, &format!("{scope} budget, {name}")).await;
            } else {
                ok_mini(resp, &format!("{scope} budget, {name}")).await;
                admitted += 1;
            }
        }
        records(&g.gw, admitted).await;
        let st = status(&g.gw, &budget);
        assert_eq!(
            (st.spent_nano_usd, st.reserved_nano_usd),
            (first, 0),
            "{scope}: requests outside the scope are not counted"
        );
        g.stop.send(true).unwrap();
    }
}

/// (d) Streamed requests reserve their maximum and settle to their real cost: the budget's spend
/// is the exact sum of the records' costs, each the usage chunk priced by hand, and nothing stays
/// reserved.
#[tokio::test]
async fn streams_settle_to_their_real_cost() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&mini_route(&s.url)).await;
    let budget = hard_budget(&g.gw, "use_case", &g.use_case.id, 1_000_000_000_000).await;
    let mut expected = std::collections::HashMap::new();
    // (prompt, max_tokens, simulator's prompt tokens, cost by hand)
    for (text, max_tokens, prompt, hand) in [
        ("hi", 10u64, 4u64, 4 * 150 + 10 * 600),
        ("Tell me about the sea", 11, 9, 9 * 150 + 11 * 600),
        (
            "Write a short poem about budgets",
            12,
            11,
            11 * 150 + 12 * 600,
        ),
    ] {
        let resp = g
            .post(json!({"model": "r", "stream": true, "max_tokens": max_tokens, "stream_options": {"include_usage": true}, "messages": user(text)}))
            .await;
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let events = sse_data(resp).await;
        assert_eq!(events.last().unwrap(), "[DONE]");
        let usage: Value = events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .find(|v| v["usage"].is_object())
            .unwrap()["usage"]
            .clone();
        assert_eq!(
            (
                usage["prompt_tokens"].as_u64(),
                usage["completion_tokens"].as_u64()
            ),
            (Some(prompt), Some(max_tokens)),
            "{text}"
        );
        expected.insert(id, hand);
    }
    let recs = records(&g.gw, 3).await;
    for r in &recs {
        assert!(r.stream, "{r:?}");
        assert_eq!(r.cost_nano_usd, Some(expected[&r.request_id]), "{r:?}");
    }
    let sum: u64 = expected.values().sum();
    assert_eq!(sum, 6_600 + 7_950 + 8_850);
    let st = status(&g.gw, &budget);
    assert_eq!((st.spent_nano_usd, st.reserved_nano_usd), (sum, 0));
}

/// (e) After a restart on the same data directory, a budget's spend is what the ledger holds —
/// and a budget left with less than one request's maximum refuses at once.
#[tokio::test]
async fn spend_is_loaded_from_the_ledger_after_a_restart() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&mini_route(&s.url)).await;
    let uc_budget = hard_budget(&g.gw, "use_case", &g.use_case.id, 1_000_000_000_000).await;
    for (i, stream) in [false, true, false, true].into_iter().enumerate() {
        let resp = g
            .post(json!({"model": "r", "stream": stream, "max_tokens": 10 + i, "messages": user(&format!("request {i}"))}))
            .await;
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await.unwrap();
    }
    let recs = records(&g.gw, 4).await;
    let spent: u64 = recs.iter().map(|r| r.cost_nano_usd.unwrap()).sum();
    assert_eq!(status(&g.gw, &uc_budget).spent_nano_usd, spent);
    // An org budget that leaves one nano-dollar less than a request's maximum (7,200).
    let max = HI_PROMPT * MINI_IN + 10 * MINI_OUT;
    let org_id = new_id("bud");
    g.gw.store
        .create_budget(
            "test",
            &Budget {
                id: org_id.clone(),
                scope: "org".into(),
                scope_id: String::new(),
                period: "lifetime".into(),
                time_zone: "UTC".into(),
                amount_nano_usd: spent + max - 1,
                mode: "hard".into(),
                created_at: 0,
                created_by: "test".into(),
            },
        )
        .await
        .unwrap();

    let gw2 = Gateway::open(g.shut_down().await).await.unwrap();
    for id in [&uc_budget, &org_id] {
        let st = status(&gw2, id);
        assert_eq!(
            (st.spent_nano_usd, st.reserved_nano_usd),
            (spent, 0),
            "budget {id} after the restart"
        );
    }
    let g2 = serve_gateway(gw2, axum::Router::new()).await;
    assert_refused(
        g2.post(json!({"model": "r", "max_tokens": 10, "messages": user("hi")}))
            .await,
        "the org budget has 7,049 left",
    )
    .await;
    assert_eq!(
        s.count(),
        4,
        "the refused request never reached the upstream"
    );
}

/// (f) On a manual clock at the last millisecond of 2026-12-01 (UTC), a day budget of one
/// request's maximum (7,200) is spent by one request (6,600) and refuses the next, for 1 second
/// (`Retry-After`, the 1 ms left rounded up). One millisecond later the new day's period starts
/// from nothing and admits again; a gateway restarted later that day loads only that day's spend
/// from the ledger (6,600, not 13,200).
#[tokio::test]
async fn a_new_day_starts_from_nothing_and_a_restart_loads_only_its_spend() {
    use tollgate_types::clock::Clock;
    const DEC_1: i64 = 1_796_083_200_000; // 2026-12-01T00:00:00Z
    const DAY: i64 = 86_400_000;
    const DEC_2: i64 = DEC_1 + DAY;
    let s = sim(SimConfig::default()).await;
    let clock = Clock::manual(DEC_2 - 1);
    let mut cfg = config(&mini_route(&s.url));
    cfg.server.data_dir = temp_dir("budget-day");
    let gw = Gateway::open_with_clock(cfg, clock.clone()).await.unwrap();
    let g = serve_gateway(gw, axum::Router::new()).await;
    let max = HI_PROMPT * MINI_IN + 10 * MINI_OUT;
    let body = json!({"model": "r", "max_tokens": 10, "messages": user("hi")});
    let day = hard_budget_per(&g.gw, "use_case", &g.use_case.id, "day", max).await;
    let st = status(&g.gw, &day);
    assert_eq!((st.period_start, st.period_end), (DEC_1, DEC_2));

    let (_, cost) = ok_mini(g.post(body.clone()).await, "the first request of Dec 1").await;
    assert_eq!(cost, 6_600);
    let recs = records(&g.gw, 1).await;
    assert_eq!(recs[0].at, DEC_2 - 1, "recorded at the gateway's clock");
    let st = status(&g.gw, &day);
    assert_eq!((st.spent_nano_usd, st.reserved_nano_usd), (6_600, 0));
    let refused = g.post(body.clone()).await;
    let retry_after = refused.headers().get("retry-after").cloned();
    assert_refused(refused, "the second request of Dec 1").await;
    assert_eq!(
        retry_after.as_ref().map(|v| v.to_str().unwrap()),
        Some("1"),
        "refused until the day ends, 1 ms later (rounded up to a second)"
    );

    clock.advance(Duration::from_millis(1));
    let st = status(&g.gw, &day);
    assert_eq!(
        (
            st.period_start,
            st.period_end,
            st.spent_nano_usd,
            st.reserved_nano_usd
        ),
        (DEC_2, DEC_2 + DAY, 0, 0),
        "a new day"
    );
    let (_, cost) = ok_mini(g.post(body.clone()).await, "the first request of Dec 2").await;
    assert_eq!(cost, 6_600);
    let recs = records(&g.gw, 2).await;
    assert_eq!(recs[1].at, DEC_2);
    assert_eq!(status(&g.gw, &day).spent_nano_usd, 6_600);

    let cfg = g.shut_down().await;
    let later = Gateway::open_with_clock(cfg, Clock::manual(DEC_2 + 5 * 3_600_000))
        .await
        .unwrap();
    let st = status(&later, &day);
    assert_eq!(
        (st.period_start, st.spent_nano_usd, st.reserved_nano_usd),
        (DEC_2, 6_600, 0),
        "only Dec 2's spend"
    );
}

/// An upstream that reports usage of 2^64 - 1 tokens (a bug, or a hostile server) once: the
/// counts are clamped to 100,000,000 each, the record and the rollups stay integers, the
/// budget's spend is read back after a restart (it used to fail, and the gateway then served
/// without any budget), and a request over the budget is still refused.
#[tokio::test]
async fn implausible_usage_is_clamped_and_budgets_survive_it() {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            axum::Json(json!({
                "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": u64::MAX, "completion_tokens": u64::MAX, "total_tokens": u64::MAX}
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let g = gateway(&mini_route(&url)).await;
    // Room for three clamped requests and one nano-dollar less than a fourth's reservation
    // (8 × 150 + 10 × 600 = 7,200).
    let clamped_cost = 100_000_000 * MINI_IN + 100_000_000 * MINI_OUT;
    let budget = hard_budget(&g.gw, "org", "", 3 * clamped_cost + 7_199).await;
    for _ in 0..3 {
        let resp = g
            .post(json!({"model": "r", "max_tokens": 10, "messages": user("hi")}))
            .await;
        assert_eq!(resp.status(), 200);
    }
    let recs = records(&g.gw, 3).await;
    for r in &recs {
        assert_eq!(
            (r.input_tokens, r.output_tokens),
            (100_000_000, 100_000_000)
        );
        assert_eq!(r.cost_nano_usd, Some(clamped_cost));
    }
    let gw2 = Gateway::open(g.shut_down().await).await.unwrap();
    assert_eq!(status(&gw2, &budget).spent_nano_usd, 3 * clamped_cost);
    // The reports' totals read back as integers.
    let totals = gw2
        .store
        .rollup_totals(0, i64::MAX / 3_600_000)
        .await
        .unwrap();
    assert_eq!(totals.cost_nano_usd, 3 * clamped_cost);
    let g2 = serve_gateway(gw2, axum::Router::new()).await;
    assert_refused(
        g2.post(json!({"model": "r", "max_tokens": 10, "messages": user("hi")}))
            .await,
        "the budget has 7,049 left after the restart",
    )
    .await;
}

/// Budgets that cannot be read at start (here: a row the budgeter cannot interpret) never mean
/// no budgets: every request is refused with 503 until a reload succeeds.
#[tokio::test]
async fn budgets_that_cannot_be_read_refuse_requests() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&mini_route(&s.url)).await;
    let id = new_id("bud");
    g.gw.store
        .create_budget(
            "test",
            &Budget {
                id: id.clone(),
                scope: "galaxy".into(),
                scope_id: "x".into(),
                period: "lifetime".into(),
                time_zone: "UTC".into(),
                amount_nano_usd: 1,
                mode: "hard".into(),
                created_at: 0,
                created_by: "test".into(),
            },
        )
        .await
        .unwrap();
    let gw2 = Gateway::open(g.shut_down().await).await.unwrap();
    let g2 = serve_gateway(gw2.clone(), axum::Router::new()).await;
    let resp = g2
        .post(json!({"model": "r", "max_tokens": 10, "messages": user("hi")}))
        .await;
    let status_code = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status_code, 503, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("budgets could not be read"),
        "{v}"
    );
    assert_eq!(s.count(), 0, "nothing reached the upstream");
    gw2.store.delete_budget("test", &id).await.unwrap();
    gw2.gate.budgeter.reload().await.unwrap();
    let resp = g2
        .post(json!({"model": "r", "max_tokens": 10, "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 200);
}

/// Embeddings reserve an upper bound, not an estimate: 1,000 empty inputs count 0 tokens with a
/// tokenizer, but a server may charge a few per input (the simulator charges 3: 3,000 tokens,
/// 60,000 nano-USD at text-embedding-3-small's 20 per token). The reservation is 4 per input,
/// 4,000 tokens (80,000): over a budget of 50,000 it is refused before the upstream is called,
/// where it used to be admitted with a reservation of 0 and pass the budget.
#[tokio::test]
async fn embeddings_reserve_an_upper_bound() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&format!(
        "providers: [{{ name: sim, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: e, deployments: [{{ provider: sim, model: text-embedding-3-small }}] }}]\n",
        s.url
    ))
    .await;
    hard_budget(&g.gw, "org", "", 50_000).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/embeddings", g.url))
        .bearer_auth(&g.key)
        .json(&json!({"model": "e", "input": vec![""; 1000]}))
        .send()
        .await
        .unwrap();
    assert_refused(resp, "1,000 inputs reserve 80,000").await;
    assert_eq!(s.count(), 0, "nothing reached the upstream");
    // 100 inputs (8,000 reserved, 6,000 charged) pass.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/embeddings", g.url))
        .bearer_auth(&g.key)
        .json(&json!({"model": "e", "input": vec![""; 100]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let recs = records(&g.gw, 1).await;
    assert_eq!(recs[0].cost_nano_usd, Some(6_000));
}

/// A reload of the budgets (every key refresh, and after each change) keeps what only memory
/// knows: reservations of requests in flight, and spend settled but not yet in the ledger.
#[tokio::test]
async fn a_reload_keeps_reservations_in_flight_and_spend_not_yet_written() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&mini_route(&s.url)).await;
    let id = hard_budget(&g.gw, "org", "", 1_000_000).await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::AUTHORIZATION,
        format!("Bearer {}", g.key).parse().unwrap(),
    );
    let entry = g.gw.keyring.authenticate(&headers).unwrap();
    let hold = g.gw.gate.budgeter.reserve(&entry, 1_000).unwrap().unwrap();
    g.gw.gate.budgeter.reload().await.unwrap();
    let st = status(&g.gw, &id);
    assert_eq!(
        (st.spent_nano_usd, st.reserved_nano_usd),
        (0, 1_000),
        "in flight"
    );
    // Settled at 600: spent in memory, not in the ledger (no record was written).
    hold.settle(600);
    g.gw.gate.budgeter.reload().await.unwrap();
    let st = status(&g.gw, &id);
    assert_eq!(
        (st.spent_nano_usd, st.reserved_nano_usd),
        (600, 0),
        "settled"
    );
}

/// A pilot's requests refused by a hard budget are not served, so they do not use up its pilot
/// caps — neither its requests per day nor its end users (attack 2026-12-04e F1): once the
/// budget is gone, the pilot serves its full cap, to a user the budget had turned away too. On
/// a manual clock at noon, so the pilot's day cannot end during the test.
#[tokio::test]
async fn requests_a_budget_refuses_leave_a_pilots_caps_whole() {
    let s = sim(SimConfig::default()).await;
    let noon = tollgate_types::time::parse_rfc3339("2026-12-15T12:00:00Z").unwrap();
    let g = gateway_at(
        &two_route_config(&s.url),
        tollgate_types::clock::Clock::manual(noon),
    )
    .await;
    let caps = PilotCaps {
        max_requests_per_day: Some(2),
        max_end_users_per_day: Some(1),
    };
    let (pilot, key) = use_case_with_key(&g.gw, Stage::Pilot, &["m"], caps, None).await;
    let id = hard_budget(&g.gw, "use_case", &pilot.id, 1).await;
    let ask = |who: &'static str| {
        let (url, key) = (g.url.clone(), key.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .header("x-tollgate-user", who)
                .json(&json!({"model": "m", "max_tokens": 10, "messages": user("hi")}))
                .send()
                .await
                .unwrap()
        }
    };
    for who in ["ann", "bob", "ann"] {
        assert_refused(ask(who).await, who).await;
    }
    g.gw.store.delete_budget("test", &id).await.unwrap();
    g.gw.gate.budgeter.reload().await.unwrap();
    // Bob, turned away before, is the day's one user, with both requests.
    assert_eq!(ask("bob").await.status(), 200);
    assert_eq!(ask("bob").await.status(), 200);
    let over = ask("bob").await;
    let v: Value = over.json().await.unwrap();
    assert_eq!(v["error"]["code"], "pilot_cap_reached", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 requests per day"),
        "{v}"
    );
    assert_eq!(s.count(), 2, "only the two served reached the upstream");
}
