//! Evaluation suites and runs end to end, against the simulator: suites stored as versions and
//! checked with paths; a run started by a pod builder goes through the gateway with an
//! evaluation key (tagged records, kept out of KPIs, the key revoked after), gives the same
//! results twice, and is held to the use case's eval budget; who may do what.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tollgate_simulator::SimConfig;
use tollgate_store::{KpiQueries, KpiScope, LedgerQueries};

fn config(sim: &str) -> String {
    format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{sim}/v1" }}
routes:
  - name: m
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: judge
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: e
    deployments: [{{ provider: sim, model: text-embedding-3-small }}]
  - name: elsewhere
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
"#
    )
}

/// Four tests × two prompts × one route: test 0 and 2 pass, 1 and 3 fail (the simulator's judge
/// passes a rubric without long words and fails one whose words never appear in its answers).
fn suite() -> Value {
    json!({
        "description": "support answers",
        "prompts": [
            "Answer about {{ topic }}",
            {"id": "brief", "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "{{ topic }}"}
            ]}
        ],
        "routes": ["m"],
        "judge": {"route": "judge"},
        "embedding": {"route": "e"},
        "params": {"temperature": 0, "max_tokens": 20, "seed": 7},
        "pass_rate": 0.5,
        "tests": [
            {"vars": {"topic": "refunds"}, "assert": [
                {"type": "latency", "threshold": 60000},
                {"type": "cost", "threshold": 1},
                {"type": "not-similar", "value": "{{ topic }}", "threshold": 0.999}
            ]},
            {"vars": {"topic": "outages"}, "assert": [{"type": "contains", "value": "zzz-never"}]},
            {"vars": {"topic": "billing"}, "assert": [{"type": "llm-rubric", "value": "is ok"}]},
            {"vars": {"topic": "accounts"}, "assert": [{"type": "llm-rubric", "value": "xylophone quartzite"}]}
        ]
    })
}

struct World {
    _sim: common::Sim,
    control: std::sync::Arc<tollgate_control::Control>,
    api: planes::Http,
    admin: String,
    g: common::Gw,
    uc: String,
    builder: String,
    viewer: String,
    analyst_elsewhere: String,
}

async fn user(api: &planes::Http, admin: &str, name: &str, pod: &str, role: &str) -> String {
    let (st, u) = api
        .call(
            Method::POST,
            "/admin/v1/users",
            admin,
            Some(json!({"email": format!("{name}@example.com"), "name": name})),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    let uid = u["id"].as_str().unwrap();
    let (st, _) = api
        .call(
            Method::PUT,
            &format!("/admin/v1/pods/{pod}/members/{uid}"),
            admin,
            Some(json!({"role": role})),
        )
        .await;
    assert!(st == 200 || st == 201);
    let (_, t) = api
        .call(
            Method::POST,
            &format!("/admin/v1/users/{uid}/tokens"),
            admin,
            Some(json!({"name": "t"})),
        )
        .await;
    t["secret"].as_str().unwrap().to_string()
}

async fn world() -> World {
    world_with(SimConfig::default()).await
}

async fn world_with(cfg: SimConfig) -> World {
    let sim = common::sim(cfg).await;
    let (g, admin, control) = planes::serve_with_control(&config(&sim.url)).await;
    let api = planes::Http::new(&g.url);
    let ok = async |m: Method, p: &str, b: Value| {
        let (st, v) = api.call(m, p, &admin, Some(b)).await;
        assert!((200..300).contains(&st), "{p}: {st} {v}");
        v
    };
    let pod = ok(Method::POST, "/admin/v1/pods", json!({"name": "support"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = ok(Method::POST, "/admin/v1/pods", json!({"name": "sales"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uc = ok(
        Method::POST,
        "/admin/v1/use-cases",
        json!({"pod_id": pod, "name": "answers", "routes": ["m", "judge", "e"]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Gates are tested in gates.rs; here stages move freely.
    ok(Method::PUT, "/admin/v1/gates", planes::gates_off()).await;
    ok(
        Method::POST,
        &format!("/admin/v1/use-cases/{uc}/stage"),
        json!({"to": "pilot", "reason": "try it"}),
    )
    .await;
    let builder = user(&api, &admin, "builder", &pod, "builder").await;
    let viewer = user(&api, &admin, "viewer", &pod, "viewer").await;
    let analyst_elsewhere = user(&api, &admin, "lead-b", &other, "lead").await;
    World {
        _sim: sim,
        control,
        api,
        admin,
        g,
        uc,
        builder,
        viewer,
        analyst_elsewhere,
    }
}

impl World {
    /// A hard monthly eval budget of `usd` on the use case (runs need one).
    async fn eval_budget(&self, usd: &str) {
        let (st, b) = self
            .call(
                Method::POST,
                "/admin/v1/budgets",
                &self.admin,
                Some(json!({"scope": "use_case_eval", "scope_id": self.uc, "amount_usd": usd, "period": "month", "mode": "hard"})),
            )
            .await;
        assert_eq!(st, 201, "{b}");
    }

    async fn call(&self, m: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.api.call(m, path, token, body).await
    }

    async fn put_suite(&self, token: &str, name: &str, doc: Value) -> (u16, Value) {
        self.call(
            Method::PUT,
            &format!("/admin/v1/use-cases/{}/suites/{name}", self.uc),
            token,
            Some(json!({ "document": doc })),
        )
        .await
    }

    async fn start(&self, token: &str, body: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/admin/v1/use-cases/{}/eval-runs", self.uc),
            token,
            Some(body),
        )
        .await
    }

    /// The run once it has ended (the control plane says when: no polling).
    async fn finished(&self, id: &str) -> Value {
        self.control.wait_for_run(id).await;
        let (st, v) = self
            .call(
                Method::GET,
                &format!("/admin/v1/eval-runs/{id}"),
                &self.builder,
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_ne!(v["status"], "running", "{v}");
        v
    }
}

/// What a run's report says case by case, without what differs between runs (ids, latency).
fn outcomes(run: &Value) -> Vec<(Value, Value, Value, Value)> {
    run["report"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["status"].clone(),
                c["score"].clone(),
                c["output"].clone(),
                c["prompt"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn suites_are_versioned_checked_and_role_bound() {
    let w = world().await;
    let (st, v) = w.put_suite(&w.builder, "support", suite()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["version"].as_i64(), v["created"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(v["cases"], 8);
    // The same document stores nothing; a changed one is version 2.
    let (_, v) = w.put_suite(&w.builder, "support", suite()).await;
    assert_eq!(
        (v["version"].as_i64(), v["created"].as_bool()),
        (Some(1), Some(false))
    );
    let mut changed = suite();
    changed["pass_rate"] = json!(0.75);
    let (_, v) = w.put_suite(&w.admin, "support", changed).await;
    assert_eq!(
        (v["version"].as_i64(), v["created"].as_bool()),
        (Some(2), Some(true))
    );
    let (_, v) = w
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{}/suites/support?version=1", w.uc),
            &w.viewer,
            None,
        )
        .await;
    assert_eq!(v["document"]["pass_rate"], 0.5);
    let (_, list) = w
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{}/suites", w.uc),
            &w.viewer,
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["version"], 2);
    assert!(list["items"][0].get("document").is_none());
    assert_eq!(list["next"], Value::Null);

    // Read a page at a time, by name; a cursor that cannot be a suite's name is refused.
    for name in ["zeta", "alpha suite"] {
        let (st, v) = w.put_suite(&w.builder, name, suite()).await;
        assert_eq!(st, 200, "{name}: {v}");
        assert_eq!(v["created"], true, "{name}: {v}");
    }
    let (items, _) = w
        .api
        .walk(
            &format!("/admin/v1/use-cases/{}/suites", w.uc),
            &w.viewer,
            2,
            3,
        )
        .await;
    let names: Vec<&str> = items.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha suite", "support", "zeta"]);
    for (query, param) in [("after=", "after"), ("limit=201", "limit")] {
        let (st, v) = w
            .call(
                Method::GET,
                &format!("/admin/v1/use-cases/{}/suites?{query}", w.uc),
                &w.viewer,
                None,
            )
            .await;
        assert_eq!(st, 400, "{query}: {v}");
        assert_eq!(v["error"]["param"], param, "{query}: {v}");
    }

    // Mistakes come back with their paths; a route the use case may not call is one.
    let mut bad = suite();
    bad["routes"] = json!(["m", "elsewhere"]);
    bad["tests"][1]["assert"][0]["type"] = json!("contain");
    let (st, v) = w.put_suite(&w.builder, "support", bad).await;
    assert_eq!(st, 400);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("tests[1].assert[0].type: unknown assertion type `contain`"),
        "{msg}"
    );
    assert_eq!(v["error"]["param"], "tests[1].assert[0].type");
    let mut bad = suite();
    bad["routes"] = json!(["m", "elsewhere"]);
    let (st, v) = w.put_suite(&w.builder, "support", bad).await;
    assert_eq!(st, 400);
    assert_eq!(v["error"]["param"], "routes[1]");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no route `elsewhere`")
    );

    // A viewer reads but does not write; another pod's lead does not see the use case.
    let (st, _) = w.put_suite(&w.viewer, "mine", suite()).await;
    assert_eq!(st, 403);
    let (st, v) = w.put_suite(&w.analyst_elsewhere, "mine", suite()).await;
    assert_eq!(st, 404, "{v}");
    let (st, _) = w.start(&w.viewer, json!({"suite": "support"})).await;
    assert_eq!(st, 403);
    let (st, _) = w
        .start(&w.analyst_elsewhere, json!({"suite": "support"}))
        .await;
    assert_eq!(st, 404);
    let (st, _) = w
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{}/suites/support", w.uc),
            &w.analyst_elsewhere,
            None,
        )
        .await;
    assert_eq!(st, 404);
    // Bad run requests.
    for (body, want) in [
        (json!({"suite": "nope"}), 404),
        (json!({"suite": "support", "version": 9}), 404),
        (json!({"suite": "support", "concurrency": 0}), 400),
        (json!({"suite": "support", "concurrency": 65}), 400),
        (json!({"suite": "support", "surprise": 1}), 400),
    ] {
        let (st, v) = w.start(&w.builder, body.clone()).await;
        assert_eq!(st, want, "{body}: {v}");
    }
}

#[tokio::test]
async fn a_run_goes_through_the_gateway_as_evaluation_and_repeats_exactly() {
    let w = world().await;
    let (st, _) = w.put_suite(&w.builder, "support", suite()).await;
    assert_eq!(st, 200);
    w.eval_budget("100").await;
    let (st, run) = w
        .start(&w.builder, json!({"suite": "support", "concurrency": 4}))
        .await;
    assert_eq!(st, 202, "{run}");
    assert_eq!(run["status"], "running");
    assert_eq!(run["cases_total"], 8);
    let id = run["id"].as_str().unwrap().to_string();
    let run = w.finished(&id).await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(
        (
            run["cases_done"].as_u64(),
            run["passed"].as_u64(),
            run["failed"].as_u64(),
            run["errors"].as_u64()
        ),
        (Some(8), Some(4), Some(4), Some(0)),
        "{run}"
    );
    assert_eq!(run["pass_rate"], 0.5);
    assert_eq!(run["passed_threshold"], true);
    assert_eq!(run["models"], json!(["gpt-4o-mini"]));
    assert_eq!(
        run["champion"],
        Value::Null,
        "a pilot has no production run to compare with"
    );
    assert_ne!(run["cost_usd"], "0.00");
    assert_ne!(run["scoring_cost_usd"], "0.00");
    let statuses: Vec<&str> = run["report"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "pass", "pass", "fail", "fail", "pass", "pass", "fail", "fail"
        ]
    );

    // Every case was a real request of the use case, tagged as evaluation, with the run's key.
    let request_ids: Vec<String> = run["report"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request_id"].as_str().unwrap().to_string())
        .collect();
    // 8 cases, 4 judge calls (tests 2 and 3, two prompts each), 4 embeddings (test 0: output and
    // value, two prompts).
    let recs = planes::records(&w.g, 16).await;
    let evals: Vec<_> = recs.iter().filter(|r| r.evaluation).collect();
    assert_eq!(evals.len(), 16);
    assert!(
        request_ids
            .iter()
            .all(|id| evals.iter().any(|r| &r.request_id == id))
    );
    assert!(evals.iter().all(|r| r.use_case_id == w.uc));
    let key_id = evals[0].key_id.clone();
    assert!(evals.iter().all(|r| r.key_id == key_id));
    let (_, key) = w
        .call(
            Method::GET,
            &format!("/admin/v1/keys/{key_id}"),
            &w.admin,
            None,
        )
        .await;
    assert!(
        key["revoked_at"].is_string(),
        "the run's key is revoked: {key}"
    );
    let kpi =
        w.g.gw
            .store
            .kpi_data(&KpiScope::UseCase(w.uc.clone()), 0, i64::MAX / 2)
            .await
            .unwrap();
    assert_eq!(kpi.requests, 0, "evaluation stays out of production KPIs");
    // Its money, tokens and models too (the run cost something), so that cost per request,
    // cost per outcome, ROI and the premium share rest on production traffic alone.
    assert_eq!(
        (kpi.cost_nano_usd, kpi.tokens, kpi.requests_by_model.len()),
        (0, 0, 0),
        "evaluation spend stays out of production KPIs"
    );
    // The audit trail has the run's start and end.
    let (_, audit) = w
        .call(Method::GET, "/admin/v1/audit?limit=200", &w.admin, None)
        .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object_id"] == w.uc.as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["suite.version", "eval.start", "eval.finish"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }

    // KPI 6 reads the run: 4 of 8 passed, no champion yet (the use case is a pilot).
    let (_, kpis) = w
        .call(
            Method::GET,
            &format!("/admin/v1/kpis?use_case_id={}&window=day", w.uc),
            &w.viewer,
            None,
        )
        .await;
    let k6 = kpis["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "eval_pass_rate")
        .unwrap();
    let pass = k6["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "pass_rate")
        .unwrap_or_else(|| panic!("{k6}"));
    assert_eq!(pass["value"], 0.5, "{k6}");
    // The same suite against the same simulator: the same results, case by case.
    let (_, again) = w
        .start(&w.builder, json!({"suite": "support", "concurrency": 1}))
        .await;
    let again = w.finished(again["id"].as_str().unwrap()).await;
    assert_eq!(outcomes(&again), outcomes(&run));
    let (_, list) = w
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{}/eval-runs?suite=support", w.uc),
            &w.viewer,
            None,
        )
        .await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [again["id"].as_str().unwrap(), id.as_str()]);
    assert!(list[0].get("report").is_none());
}

#[tokio::test]
async fn a_run_is_held_to_the_eval_budget_and_leaves_production_alone() {
    let w = world().await;
    w.put_suite(&w.builder, "support", suite()).await;
    // No eval budget, no run.
    let (st, v) = w.start(&w.builder, json!({"suite": "support"})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("eval_budget_required")),
        "{v}"
    );
    w.eval_budget("0.000000001").await;
    let (_, run) = w.start(&w.builder, json!({"suite": "support"})).await;
    let run = w.finished(run["id"].as_str().unwrap()).await;
    assert_eq!(run["errors"], 8, "{run}");
    assert_eq!(run["passed_threshold"], false);
    let first = &run["report"]["cases"][0]["error"];
    assert!(
        first.as_str().unwrap().contains("budget_exceeded"),
        "{first}"
    );
    // The use case's production key is not held to the eval budget.
    let (_, k) = w
        .call(
            Method::POST,
            "/admin/v1/keys",
            &w.admin,
            Some(json!({"use_case_id": w.uc, "name": "app"})),
        )
        .await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", w.g.url))
        .bearer_auth(k["secret"].as_str().unwrap())
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = w.g.gw.store.list_records(0, i64::MAX, 10).await.unwrap();
}

/// A bias planted in the simulator is found through the gateway: the run is stored with what it
/// ran against, and its report flags the group the simulator treats differently.
#[tokio::test]
async fn a_fairness_probe_through_the_gateway_flags_a_planted_bias() {
    let names: Vec<String> = serde_yaml::from_str::<serde_yaml::Value>(
        tollgate_eval::fairness::NAMES_YAML,
    )
    .unwrap()["ethnicity"]["black"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let sim = common::sim(SimConfig {
        bias: Some(tollgate_simulator::Bias {
            words: names,
            answer: "I'm sorry, I can't help with this. Denied.".into(),
            otherwise: Some("Approved: a strong applicant.".into()),
        }),
        ..SimConfig::default()
    })
    .await;
    let (g, admin, control) = planes::serve_with_control(&config(&sim.url)).await;
    let api = planes::Http::new(&g.url);
    let (_, pod) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &admin,
            Some(json!({"name": "loans"})),
        )
        .await;
    let (_, uc) = api
        .call(
            Method::POST,
            "/admin/v1/use-cases",
            &admin,
            Some(json!({"pod_id": pod["id"], "name": "loans", "routes": ["m"]})),
        )
        .await;
    let uc = uc["id"].as_str().unwrap().to_string();
    let (st, b) = api
        .call(
            Method::POST,
            "/admin/v1/budgets",
            &admin,
            Some(json!({"scope": "use_case_eval", "scope_id": uc, "amount_usd": "100", "period": "month", "mode": "hard"})),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let probe = json!({
        "route": "m", "attributes": ["ethnicity"], "samples": 6,
        "prompts": [
            "Should we approve the loan for {{ name }}, a baker of six years?",
            "{{ name }} applied for a mortgage with a steady salary. Approve or deny?",
            "Decide on the car loan of {{ name }}, a teacher with good credit.",
            "No name here, so nothing to vary."
        ]
    });
    // Bad probes are refused with the path of the mistake.
    let (st, v) = api
        .call(
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/fairness-runs"),
            &admin,
            Some(json!({"probe": {"route": "judge", "prompts": ["{{ name }}"]}})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["param"].as_str()),
        (400, Some("probe.route")),
        "{v}"
    );
    let (st, v) = api
        .call(
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/fairness-runs"),
            &admin,
            Some(json!({"probe": {"route": "m", "prompts": ["no names"], "samples": 99}})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["param"].as_str()),
        (400, Some("probe.samples")),
        "{v}"
    );

    let (st, run) = api
        .call(
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/fairness-runs"),
            &admin,
            Some(json!({"probe": probe, "concurrency": 8})),
        )
        .await;
    assert_eq!(st, 202, "{run}");
    assert_eq!(run["calls_total"], 3 * 4 * 6);
    let id = run["id"].as_str().unwrap().to_string();
    control.wait_for_run(&id).await;
    let (_, run) = api
        .call(
            Method::GET,
            &format!("/admin/v1/fairness-runs/{id}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["flagged"], true);
    assert_eq!(run["policy"], "builtin");
    assert_eq!(run["models"], json!(["gpt-4o-mini"]));
    assert_eq!(run["prompt_set_hash"].as_str().unwrap().len(), 64);
    let report = &run["report"];
    assert_eq!(report["coverage"]["ethnicity"]["skipped"], 1);
    let flags: Vec<&str> = report["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        !flags.is_empty() && flags.iter().all(|f| f.contains("black")),
        "{flags:?}"
    );
    // Every call was an evaluation of the use case.
    let recs = planes::records(&g, 72).await;
    assert!(recs.iter().all(|r| r.evaluation && r.use_case_id == uc));
    let (_, list) = api
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/fairness-runs"),
            &admin,
            None,
        )
        .await;
    assert_eq!(list[0]["id"], id.as_str());
    assert!(list[0].get("report").is_none());
}

/// A use case has at most four runs in progress at once.
#[tokio::test]
async fn runs_in_flight_are_bounded_per_use_case() {
    // A slow upstream keeps the runs going while more are asked for (far longer than the test
    // takes on any machine; the runs are dropped with the test's runtime).
    let w = world_with(SimConfig {
        latency: Duration::from_secs(600),
        ..SimConfig::default()
    })
    .await;
    let one = json!({"prompts": ["hi"], "routes": ["m"], "tests": [{"vars": {}}]});
    assert_eq!(w.put_suite(&w.builder, "one", one).await.0, 200);
    w.eval_budget("100").await;
    for _ in 0..4 {
        let (st, v) = w.start(&w.builder, json!({"suite": "one"})).await;
        assert_eq!(st, 202, "{v}");
    }
    let (st, v) = w.start(&w.builder, json!({"suite": "one"})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("too_many_runs")),
        "{v}"
    );
}
