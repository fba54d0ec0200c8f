//! Evaluation traffic on the data plane: an evaluation key (minted by the server for a run) may
//! call a proposed or piloting use case outside its pilot caps; its spend goes to the use case's
//! eval budget and not its production ones (and the reverse); its records are tagged, chained as
//! evaluation, and kept out of the KPI rollups and SLO windows. Every complete answer carries its
//! exact cost in `x-tollgate-cost-usd`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_gateway::Gateway;
use tollgate_simulator::SimConfig;
use tollgate_store::{
    Budget, BudgetQueries, EvalQueries, KeyQueries, KpiQueries, KpiScope, LedgerQueries, Limits,
    PilotCaps, RequestRecord, Stage, UseCasePatch, UseCaseQueries, new_id,
};

fn yaml(sim: &str) -> String {
    format!(
        "providers:\n  - {{ name: sim, type: openai_compatible, base_url: \"{sim}/v1\" }}\n\
         routes:\n  - name: m\n    deployments: [{{ provider: sim, model: gpt-4o-mini }}]\n"
    )
}

async fn post(url: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}))
        .send()
        .await
        .unwrap()
}

async fn code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or_default();
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
    )
}

async fn records(gw: &Gateway, n: usize) -> Vec<RequestRecord> {
    // The ledger writer says when it has written them: no polling.
    gw.books.ledger.written_at_least(n as u64).await;
    let r = gw.store.list_records(0, i64::MAX, 1_000).await.unwrap();
    assert_eq!(r.len(), n, "{r:?}");
    r
}

async fn hard_budget(gw: &Gateway, scope: &str, scope_id: &str, amount: u64) {
    gw.store
        .create_budget(
            "test",
            &Budget {
                id: new_id("bud"),
                scope: scope.into(),
                scope_id: scope_id.into(),
                period: "lifetime".into(),
                time_zone: "UTC".into(),
                amount_nano_usd: amount,
                mode: "hard".into(),
                created_at: 0,
                created_by: "test".into(),
            },
        )
        .await
        .unwrap();
    gw.gate.budgeter.reload().await.unwrap();
}

#[tokio::test]
async fn evaluation_keys_reach_proposed_and_capped_pilots() {
    let sim = sim(SimConfig::default()).await;
    let g = gateway(&yaml(&sim.url)).await;
    let (proposed, prod_key) =
        use_case_with_key(&g.gw, Stage::Proposed, &["m"], PilotCaps::default(), None).await;
    let (_, eval) = eval_key(&g.gw, &proposed.id).await;
    assert_eq!(
        code(post(&g.url, &prod_key).await).await.1,
        "use_case_not_live"
    );
    assert_eq!(post(&g.url, &eval).await.status(), 200);

    let caps = PilotCaps {
        max_requests_per_day: Some(1),
        ..PilotCaps::default()
    };
    let (pilot, pilot_key) = use_case_with_key(&g.gw, Stage::Pilot, &["m"], caps, None).await;
    let (_, eval) = eval_key(&g.gw, &pilot.id).await;
    assert_eq!(post(&g.url, &pilot_key).await.status(), 200);
    assert_eq!(code(post(&g.url, &pilot_key).await).await.0, 429);
    for _ in 0..3 {
        assert_eq!(post(&g.url, &eval).await.status(), 200);
    }
    // Retired stays closed to everyone.
    let (retired, _) =
        use_case_with_key(&g.gw, Stage::Retired, &["m"], PilotCaps::default(), None).await;
    let (_, eval) = eval_key(&g.gw, &retired.id).await;
    assert_eq!(code(post(&g.url, &eval).await).await.1, "use_case_retired");
}

#[tokio::test]
async fn production_and_eval_budgets_split_a_use_cases_traffic() {
    let sim = sim(SimConfig::default()).await;
    let g = gateway(&yaml(&sim.url)).await;
    let uc = g.use_case.id.clone();
    let (eval_id, eval) = eval_key(&g.gw, &uc).await;
    // One request each, then a production budget of one nano-USD: production is refused, the
    // evaluation key is not.
    assert_eq!(post(&g.url, &g.key).await.status(), 200);
    assert_eq!(post(&g.url, &eval).await.status(), 200);
    let recs = records(&g.gw, 2).await;
    let cost_of = |eval: bool| {
        recs.iter()
            .find(|r| r.evaluation == eval)
            .and_then(|r| r.cost_nano_usd)
            .unwrap()
    };
    let (prod_cost, eval_cost) = (cost_of(false), cost_of(true));
    assert!(prod_cost > 0 && eval_cost > 0);
    assert_eq!(recs.iter().find(|r| r.evaluation).unwrap().key_id, eval_id);
    // Spend read back from the ledger splits by purpose.
    assert_eq!(
        g.gw.store.spend_since("use_case", &uc, 0).await.unwrap(),
        prod_cost
    );
    assert_eq!(
        g.gw.store
            .spend_since("use_case_eval", &uc, 0)
            .await
            .unwrap(),
        eval_cost
    );
    assert_eq!(
        g.gw.store.spend_since("org", "", 0).await.unwrap(),
        prod_cost + eval_cost
    );
    hard_budget(&g.gw, "use_case", &uc, prod_cost + 1).await;
    assert_eq!(code(post(&g.url, &g.key).await).await.1, "budget_exceeded");
    assert_eq!(post(&g.url, &eval).await.status(), 200);
    hard_budget(&g.gw, "use_case_eval", &uc, 1).await;
    assert_eq!(code(post(&g.url, &eval).await).await.1, "budget_exceeded");
}

#[tokio::test]
async fn evaluation_records_are_tagged_chained_and_kept_out_of_kpis() {
    let sim = sim(SimConfig::default()).await;
    let g = gateway(&yaml(&sim.url)).await;
    let uc = g.use_case.id.clone();
    let (_, eval) = eval_key(&g.gw, &uc).await;
    let r = post(&g.url, &g.key).await;
    let prod_cost = r.headers()["x-tollgate-cost-usd"]
        .to_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        assert_eq!(post(&g.url, &eval).await.status(), 200);
    }
    let recs = records(&g.gw, 4).await;
    assert_eq!(recs.iter().filter(|r| r.evaluation).count(), 3);
    // The header is the record's cost, exactly.
    let prod = recs.iter().find(|r| !r.evaluation).unwrap();
    assert_eq!(
        tollgate_meter::Money::parse_usd(&prod_cost)
            .unwrap()
            .nanos(),
        prod.cost_nano_usd.unwrap()
    );
    // The KPI rollups saw the production request only.
    let k =
        g.gw.store
            .kpi_data(&KpiScope::UseCase(uc.clone()), 0, i64::MAX / 2)
            .await
            .unwrap();
    assert_eq!(k.requests, 1);
    let all =
        g.gw.store
            .kpi_data(&KpiScope::Portfolio, 0, i64::MAX / 2)
            .await
            .unwrap();
    assert_eq!(all.requests, 1);
    // The chain covers the tag: it verifies as written, and breaks where a tag is changed.
    let verify = || async {
        tollgate_store::chain::verify(
            &g.gw.store,
            g.gw.checkpoints.verifying_key(),
            None,
            None,
            None,
            |_, _| {},
        )
        .await
        .unwrap()
    };
    g.gw.checkpoints.checkpoint(true).await.unwrap();
    assert_eq!(verify().await.broken, None);
    let db = g.gw.config.server.data_dir.join("tollgate.db");
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE request_records SET purpose = 'production'")
        .execute(&raw)
        .await
        .unwrap();
    assert!(verify().await.broken.is_some());
}

/// An evaluation key is not held to the use case's rate limits (production keeps them), and the
/// evaluation keys a stopped server left active are revoked at the next start.
#[tokio::test]
async fn evaluation_keys_leave_production_limits_alone_and_do_not_outlive_a_stop() {
    let sim = sim(SimConfig::default()).await;
    let g = gateway(&yaml(&sim.url)).await;
    let uc = g.use_case.id.clone();
    g.gw.store
        .update_use_case(
            "test",
            &uc,
            &UseCasePatch {
                limits: Some(Limits {
                    requests_per_minute: Some(1),
                    ..Limits::default()
                }),
                ..UseCasePatch::default()
            },
        )
        .await
        .unwrap();
    g.gw.keyring.reload().await.unwrap();
    let (eval_id, eval) = eval_key(&g.gw, &uc).await;
    assert_eq!(post(&g.url, &g.key).await.status(), 200);
    assert_eq!(code(post(&g.url, &g.key).await).await.0, 429);
    for _ in 0..3 {
        assert_eq!(post(&g.url, &eval).await.status(), 200);
    }
    // A restart finds the key of a run that never ended and revokes it.
    g.gw.store.fail_interrupted_runs(1).await.unwrap();
    let k = g.gw.store.get_key(&eval_id).await.unwrap();
    assert_eq!(k.revoked_at, Some(1));
    // Once the key snapshot is reloaded (the control plane does so at its start), the key is
    // refused; production keys are not touched.
    g.gw.keyring.reload().await.unwrap();
    assert_eq!(post(&g.url, &eval).await.status(), 401);
    // (The production key is still known: rate-limited, not refused as unknown.)
    assert_eq!(code(post(&g.url, &g.key).await).await.0, 429);
}
