//! Stage gates through the admin API: each unmet line of the default gates refuses the move and
//! names itself; with all evidence the move goes through and the audit chain keeps the checklist;
//! approvals are signed by two different people, neither the requester; an override is a platform
//! admin's, with a reason, audited and shown on the use case; and the role matrix of the new
//! routes. The evidence (runs, outcomes, spend) is written to the store directly, on the injected
//! clock, so each line flips exactly when its evidence arrives — the CLI's end-to-end test makes
//! the same evidence for real, through the simulator.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_store::{EvalQueries, FairnessQueries, LedgerQueries, OutcomeQueries};

const CONFIG: &str = r#"
providers:
  - { name: nowhere, type: openai_compatible, base_url: "http://127.0.0.1:9/v1" }
routes:
  - name: chat
    deployments: [{ provider: nowhere, model: m }]
"#;

/// 2026-12-01T00:00:00Z, on an hour.
const T0: i64 = 1_796_083_200_000;
const DAY: i64 = 86_400_000;

struct World {
    g: common::Gw,
    api: planes::Http,
    clock: tollgate_types::clock::Clock,
    admin: String,
    pod: String,
    /// (user id, token) by name.
    people: std::collections::HashMap<&'static str, (String, String)>,
}

impl World {
    async fn new() -> World {
        let clock = tollgate_types::clock::Clock::manual(T0);
        let (g, admin) = planes::serve_at(CONFIG, clock.clone()).await;
        let api = planes::Http::new(&g.url);
        let pod = id(&ok(
            &api,
            &admin,
            Method::POST,
            "/admin/v1/pods",
            json!({"name": "care"}),
        )
        .await);
        let other = id(&ok(
            &api,
            &admin,
            Method::POST,
            "/admin/v1/pods",
            json!({"name": "sales"}),
        )
        .await);
        let mut people = std::collections::HashMap::new();
        for (name, org_role, pod_role, in_pod) in [
            ("lead_a", None, Some("lead"), true),
            ("lead_b", None, Some("lead"), true),
            ("builder", None, Some("builder"), true),
            ("expert", None, Some("domain_expert"), true),
            ("analyst", None, Some("analyst"), true),
            ("viewer", None, Some("viewer"), true),
            ("officer", Some("risk_officer"), None, true),
            // A lead of this pod who is also a risk officer: one person, two roles.
            ("lead_officer", Some("risk_officer"), Some("lead"), true),
            ("platform", Some("platform_admin"), None, true),
            ("finops", Some("finops"), None, true),
            ("auditor", Some("auditor"), None, true),
            ("outsider", None, Some("lead"), false),
        ] {
            let u = ok(
                &api,
                &admin,
                Method::POST,
                "/admin/v1/users",
                json!({"email": format!("{name}@example.com"), "name": name, "org_role": org_role}),
            )
            .await;
            let uid = id(&u);
            if let Some(role) = pod_role {
                let target = if in_pod { &pod } else { &other };
                ok(
                    &api,
                    &admin,
                    Method::PUT,
                    &format!("/admin/v1/pods/{target}/members/{uid}"),
                    json!({"role": role}),
                )
                .await;
            }
            let t = ok(
                &api,
                &admin,
                Method::POST,
                &format!("/admin/v1/users/{uid}/tokens"),
                json!({"name": "t"}),
            )
            .await;
            people.insert(name, (uid, t["secret"].as_str().unwrap().to_string()));
        }
        World {
            g,
            api,
            clock,
            admin,
            pod,
            people,
        }
    }

    /// `method path` with `body` as the bootstrap admin; the answer, which must be a 2xx.
    async fn as_admin(&self, method: Method, path: &str, body: Value) -> Value {
        ok(&self.api, &self.admin, method, path, body).await
    }

    fn token(&self, who: &str) -> String {
        if who == "admin" {
            return self.admin.clone();
        }
        self.people[who].1.clone()
    }

    fn uid(&self, who: &str) -> String {
        self.people[who].0.clone()
    }

    async fn call(
        &self,
        who: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api.call(method, path, &self.token(who), body).await
    }

    /// A proposed use case of the pod.
    async fn use_case(&self, name: &str) -> String {
        id(&ok(
            &self.api,
            &self.admin,
            Method::POST,
            "/admin/v1/use-cases",
            json!({"pod_id": self.pod, "name": name, "routes": ["chat"]}),
        )
        .await)
    }

    /// Tries to move `uc` to `to` as `who`.
    async fn stage(&self, who: &str, uc: &str, to: &str) -> (u16, Value) {
        self.call(
            who,
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/stage"),
            Some(json!({"to": to, "reason": format!("to {to}")})),
        )
        .await
    }

    /// The unmet lines of `uc`'s gate to `to`, by name.
    async fn unmet(&self, uc: &str, to: &str) -> Vec<String> {
        let (s, v) = self
            .call(
                "admin",
                Method::GET,
                &format!("/admin/v1/use-cases/{uc}/gate?to={to}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let unmet: Vec<String> = v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["met"] == false)
            .map(|l| l["check"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(v["met"], unmet.is_empty(), "{v}");
        unmet
    }

    /// Asserts that moving `uc` to `to` is refused with 409 `gate_unmet` naming exactly `want`,
    /// and that `GET …/gate` agrees.
    async fn refused(&self, uc: &str, to: &str, want: &[&str]) {
        let (s, v) = self.stage("lead_a", uc, to).await;
        assert_eq!(s, 409, "{v}");
        assert_eq!(v["error"]["code"], "gate_unmet", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        for line in [
            "owner",
            "value_model",
            "budget",
            "policy",
            "eval",
            "fairness",
            "cost",
            "outcomes",
            "approval:lead",
            "approval:risk_officer",
        ] {
            let named =
                message.contains(&format!("{line}: ")) || message.contains(&format!("; {line}:"));
            assert_eq!(named, want.contains(&line), "{line} in {message:?}");
        }
        assert_eq!(self.unmet(uc, to).await, want, "{message}");
    }

    /// Audit events of `action` on `uc`, oldest first.
    async fn audit(&self, uc: &str, action: &str) -> Vec<Value> {
        let (s, v) = self
            .call(
                "admin",
                Method::GET,
                "/admin/v1/audit?after=0&limit=200",
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["object_id"] == uc && e["action"] == action)
            .cloned()
            .collect()
    }
}

async fn ok(api: &planes::Http, token: &str, method: Method, path: &str, body: Value) -> Value {
    let (s, v) = api.call(method.clone(), path, token, Some(body)).await;
    assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
    v
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Stores a version of suite `name` of `uc` (each call with a new `n` makes the next version).
async fn suite(w: &World, uc: &str, name: &str, n: u32) {
    w.as_admin(Method::PUT,
        &format!("/admin/v1/use-cases/{uc}/suites/{name}"),
        json!({"document": {"prompts": [format!("hi {n}")], "routes": ["chat"], "tests": [{"vars": {}}]}}),
    )
    .await;
}

/// The eval line's data for suite `name`.
fn suite_data(g: &Value, name: &str) -> Value {
    let eval = g["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["check"] == "eval")
        .unwrap();
    eval["data"]["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["suite"] == name)
        .unwrap_or_else(|| panic!("no suite {name} in {eval}"))
        .clone()
}

/// A finished evaluation run of `uc` (suite `s` v1, made in pilot) with this pass rate, at `at`.
async fn eval_run(w: &World, uc: &str, pass_rate: f64, at: i64) -> String {
    eval_run_of(w, uc, "s", 1, "pilot", pass_rate, at).await
}

async fn eval_run_of(
    w: &World,
    uc: &str,
    suite: &str,
    version: i64,
    stage: &str,
    pass_rate: f64,
    at: i64,
) -> String {
    let run = tollgate_store::EvalRun {
        id: tollgate_store::new_id("run"),
        use_case_id: uc.into(),
        pod_id: w.pod.clone(),
        suite: suite.into(),
        suite_version: version,
        stage: stage.into(),
        trigger: "manual".into(),
        status: "running".into(),
        started_at: at,
        created_by: "test".into(),
        cases_total: 10,
        threshold: 0.8,
        ..Default::default()
    };
    w.g.gw.store.create_run("test", &run).await.unwrap();
    let passed = (pass_rate * 10.0).round() as u64;
    let done = tollgate_store::EvalRun {
        status: "done".into(),
        finished_at: Some(at + 1_000),
        cases_done: 10,
        passed,
        failed: 10 - passed,
        pass_rate: Some(pass_rate),
        passed_threshold: Some(pass_rate >= 0.8),
        ..run
    };
    w.g.gw.store.finish_run(&done).await.unwrap();
    done.id
}

async fn fairness_run(w: &World, uc: &str, flagged: bool, at: i64) -> String {
    let run = tollgate_store::FairnessRun {
        id: tollgate_store::new_id("fair"),
        use_case_id: uc.into(),
        pod_id: w.pod.clone(),
        status: "running".into(),
        started_at: at,
        created_by: "test".into(),
        route: "chat".into(),
        ..Default::default()
    };
    w.g.gw
        .store
        .create_fairness_run("test", &run)
        .await
        .unwrap();
    let done = tollgate_store::FairnessRun {
        status: "done".into(),
        finished_at: Some(at + 1_000),
        flagged: Some(flagged),
        ..run
    };
    w.g.gw.store.finish_fairness_run(&done).await.unwrap();
    done.id
}

/// A success reported about request `request` of `uc`.
async fn outcome(w: &World, uc: &str, at: i64, request: &str) {
    w.g.gw
        .store
        .insert_outcomes(&[tollgate_store::OutcomeEvent {
            id: tollgate_store::new_id("out"),
            at,
            use_case_id: uc.into(),
            pod_id: w.pod.clone(),
            key_id: "key_x".into(),
            request_id: Some(request.into()),
            outcome: Some(tollgate_store::Outcome::Success),
            ..Default::default()
        }])
        .await
        .unwrap();
}

async fn spend(w: &World, uc: &str, nano_usd: u64, at: i64) {
    w.g.gw
        .store
        .insert_records(&[tollgate_store::RequestRecord {
            id: tollgate_store::new_id("rec"),
            request_id: tollgate_store::new_id("req"),
            at,
            key_id: "key_x".into(),
            use_case_id: uc.into(),
            pod_id: w.pod.clone(),
            route: "chat".into(),
            status: 200,
            outcome: "ok".into(),
            cost_nano_usd: Some(nano_usd),
            ..Default::default()
        }])
        .await
        .unwrap();
}

/// proposed → pilot → production on the default gates: every unmet line refuses and names
/// itself, each piece of evidence turns exactly its line, and with all of it the moves go through
/// with their checklists in the audit chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unmet_line_refuses_and_all_evidence_promotes() {
    let w = World::new().await;
    let uc = w.use_case("triage").await;

    // Pilot: owner, value model, budget, policy.
    w.refused(&uc, "pilot", &["owner", "value_model", "budget", "policy"])
        .await;
    let patch = |v: Value| {
        let (api, admin, path) = (&w.api, w.admin.clone(), format!("/admin/v1/use-cases/{uc}"));
        async move { ok(api, &admin, Method::PATCH, &path, json!({"value_model": v})).await }
    };
    patch(json!({"owner": "Ana Diaz"})).await;
    w.refused(&uc, "pilot", &["value_model", "budget", "policy"])
        .await;
    // A KPI without a baseline is not a value model yet.
    patch(json!({"owner": "Ana Diaz", "kpi": "handle time", "kpi_unit": "minutes"})).await;
    w.refused(&uc, "pilot", &["value_model", "budget", "policy"])
        .await;
    patch(json!({"owner": "Ana Diaz", "kpi": "handle time", "kpi_unit": "minutes", "baseline": 12, "volume_per_month": 1000})).await;
    w.refused(&uc, "pilot", &["budget", "policy"]).await;
    // A budget of another use case does not count.
    let other = w.use_case("other").await;
    w.as_admin(Method::POST, "/admin/v1/budgets",
        json!({"scope": "use_case", "scope_id": other, "amount_usd": "50", "period": "month", "mode": "hard"})).await;
    w.refused(&uc, "pilot", &["budget", "policy"]).await;
    w.as_admin(Method::POST, "/admin/v1/budgets",
        json!({"scope": "use_case", "scope_id": uc, "amount_usd": "50", "period": "month", "mode": "hard"})).await;
    w.refused(&uc, "pilot", &["policy"]).await;
    w.as_admin(
        Method::PUT,
        &format!("/admin/v1/use-cases/{uc}/policy"),
        json!({"policy": {"default": "redact"}}),
    )
    .await;
    assert_eq!(w.unmet(&uc, "pilot").await, Vec::<String>::new());
    let (s, v) = w.stage("lead_a", &uc, "pilot").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stage"], "pilot");
    assert_eq!(w.audit(&uc, "use_case.gate_refused").await.len(), 6);
    let moved = w.audit(&uc, "use_case.stage").await;
    assert_eq!(moved.len(), 1);
    let gate = &moved[0]["details"]["gate"];
    assert_eq!(gate["met"], true, "{gate}");
    assert_eq!(gate["lines"][0]["evidence"], "owned by Ana Diaz");
    assert!(
        gate["lines"][3]["evidence"]
            .as_str()
            .unwrap()
            .contains("its own policy v1"),
        "{gate}"
    );
    // Pilot asks for no approval: nobody was made to ask.
    assert!(w.audit(&uc, "use_case.promotion_request").await.is_empty());

    // Production: eval, fairness, cost, outcomes, approvals by a lead and a risk officer.
    let all = [
        "eval",
        "fairness",
        "cost",
        "outcomes",
        "approval:lead",
        "approval:risk_officer",
    ];
    // A builder asks; the lead's attempt would have asked too.
    let (s, r) = w
        .call(
            "builder",
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/promotion-requests"),
            Some(json!({"to": "production", "reason": "ready"})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["requested_by"], w.uid("builder"));
    w.refused(&uc, "production", &all).await;

    // Eval: no suite yet; then a run under the suite's pass rate does not do; a passing one
    // does. Every suite counts: a second one without a run fails the line again, and so does
    // a new version of it until that version has run.
    let gate_path = format!("/admin/v1/use-cases/{uc}/gate");
    let gate = || {
        let (w, path) = (&w, gate_path.clone());
        async move { w.call("admin", Method::GET, &path, None).await.1 }
    };
    let evidence = |g: &Value| g["lines"][0]["evidence"].as_str().unwrap().to_string();
    let g = gate().await;
    assert_eq!(g["to"], "production", "the next stage by default");
    assert_eq!(evidence(&g), "no evaluation suite", "{g}");
    suite(&w, &uc, "s", 1).await;
    let failing = eval_run(&w, &uc, 0.7, T0 - 3 * DAY).await;
    let g = gate().await;
    assert_eq!(suite_data(&g, "s")["run_id"], failing.as_str(), "{g}");
    assert!(evidence(&g).contains("passed 70.0 % (needs 80.0 %)"), "{g}");
    w.refused(&uc, "production", &all).await;
    let passing = eval_run(&w, &uc, 0.9, T0 - 2 * DAY).await;
    w.refused(&uc, "production", &all[1..]).await;
    let g = gate().await;
    assert_eq!(suite_data(&g, "s")["run_id"], passing.as_str());
    assert!(evidence(&g).contains("no champion yet"), "{g}");
    suite(&w, &uc, "extra", 1).await;
    w.refused(&uc, "production", &all).await;
    assert!(evidence(&gate().await).contains("extra v1: no finished run"));
    eval_run_of(&w, &uc, "extra", 1, "pilot", 1.0, T0 - 2 * DAY).await;
    w.refused(&uc, "production", &all[1..]).await;
    suite(&w, &uc, "extra", 2).await;
    w.refused(&uc, "production", &all).await;
    let extra = eval_run_of(&w, &uc, "extra", 2, "pilot", 1.0, T0 - 2 * DAY).await;
    w.refused(&uc, "production", &all[1..]).await;

    // Fairness: a flagged run does not do; a clean newer one does.
    fairness_run(&w, &uc, true, T0 - 2 * DAY).await;
    w.refused(&uc, "production", &all[1..]).await;
    let clean = fairness_run(&w, &uc, false, T0 - DAY).await;
    w.refused(&uc, "production", &all[2..]).await;

    // Outcomes in the last 14 days: one just outside the window does not count; one on its
    // first millisecond does.
    outcome(&w, &uc, T0 - 14 * DAY - 1, "r1").await;
    let (_, g) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/gate"),
            None,
        )
        .await;
    let line = |g: &Value, name: &str| {
        g["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["check"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(line(&g, "outcomes")["data"]["outcomes"], 0, "{g}");
    outcome(&w, &uc, T0 - 14 * DAY, "r2").await;
    // More events about the same request (a correction, a repeat) are still one outcome: an
    // answer cannot stand for many.
    outcome(&w, &uc, T0 - 14 * DAY + 1, "r2").await;
    outcome(&w, &uc, T0 - DAY, "r2").await;
    // Cost: 1 USD over 2 outcomes in 30 days × 1,000 tasks a month = 500 USD, over the 50 USD
    // budget.
    spend(&w, &uc, 1_000_000_000, T0 - 5 * DAY).await;
    w.refused(
        &uc,
        "production",
        &["cost", "approval:lead", "approval:risk_officer"],
    )
    .await;
    let (_, g) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/gate"),
            None,
        )
        .await;
    assert_eq!(line(&g, "outcomes")["data"]["outcomes"], 1, "{g}");
    assert_eq!(line(&g, "cost")["data"]["projected_usd"], "500.00", "{g}");
    // Thirty-one days on, the old spend and outcomes are out of both windows; 0.05 USD over one
    // new outcome × 1,000 is 50 USD: exactly the budget, allowed.
    w.clock.set(T0 + 31 * DAY);
    w.refused(
        &uc,
        "production",
        &["cost", "outcomes", "approval:lead", "approval:risk_officer"],
    )
    .await;
    spend(&w, &uc, 50_000_000, T0 + 30 * DAY).await;
    outcome(&w, &uc, T0 + 30 * DAY, "r3").await;
    w.refused(
        &uc,
        "production",
        &["approval:lead", "approval:risk_officer"],
    )
    .await;
    let (_, g) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/gate"),
            None,
        )
        .await;
    assert_eq!(line(&g, "cost")["data"]["projected_usd"], "50.00", "{g}");
    assert_eq!(line(&g, "fairness")["data"]["run_id"], clean.as_str());

    // Approvals: the requester may not sign; a builder is no lead; one lead signs as lead.
    let approve = |who: &'static str, role: &'static str| {
        let path = format!("/admin/v1/use-cases/{uc}/approvals");
        let w = &w;
        async move {
            w.call(
                who,
                Method::POST,
                &path,
                Some(json!({"role": role, "note": format!("{who} ok")})),
            )
            .await
        }
    };
    let (s, v) = approve("builder", "lead").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("role_forbids")),
        "{v}"
    );
    let (s, v) = approve("lead_a", "risk_officer").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("role_forbids")),
        "{v}"
    );
    let (s, v) = approve("admin", "lead").await;
    assert_eq!(s, 403, "the bootstrap token is no person: {v}");
    let (s, v) = approve("lead_a", "lead").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["user_id"], w.uid("lead_a"));
    w.refused(&uc, "production", &["approval:risk_officer"])
        .await;
    // The lead role is signed; a second lead adds nothing.
    let (s, v) = approve("lead_b", "lead").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_approved")),
        "{v}"
    );
    let (s, v) = approve("officer", "risk_officer").await;
    assert_eq!(s, 201, "{v}");
    let (_, g) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/gate"),
            None,
        )
        .await;
    assert_eq!(g["approvals"].as_array().unwrap().len(), 2, "{g}");
    assert_eq!(
        line(&g, "approval:risk_officer")["data"]["user_id"],
        w.uid("officer")
    );

    let (s, v) = w.stage("lead_a", &uc, "production").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stage"], "production");
    assert_eq!(v["gate_overrides"], json!([]));
    let moved = w.audit(&uc, "use_case.stage").await;
    let gate = &moved.last().unwrap()["details"]["gate"];
    assert_eq!(gate["met"], true);
    assert_eq!(gate["to"], "production");
    let lines = gate["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 6);
    let runs: Vec<&str> = lines[0]["data"]["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.contains(&passing.as_str()) && runs.contains(&extra.as_str()),
        "{runs:?}"
    );
    assert_eq!(lines[4]["data"]["user_id"], w.uid("lead_a"));
    assert_eq!(lines[5]["data"]["user_id"], w.uid("officer"));
    let approvals = w.audit(&uc, "use_case.approve").await;
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[1]["actor"], w.uid("officer"));
    // The request is closed with the move: there is nothing left to approve.
    let (s, v) = approve("lead_b", "lead").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("no_promotion_request")),
        "{v}"
    );
}

/// Two different people, neither the requester: the requester's own signature and one person
/// signing in both roles are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_take_two_people_and_never_the_requester() {
    let w = World::new().await;
    w.as_admin(
        Method::PUT,
        "/admin/v1/gates",
        json!({"pilot": {"checks": [], "approvals": ["lead", "risk_officer"]}}),
    )
    .await;
    let uc = w.use_case("claims").await;
    // Nothing to approve before anyone asks.
    let path = format!("/admin/v1/use-cases/{uc}/approvals");
    let (s, v) = w
        .call("lead_b", Method::POST, &path, Some(json!({"role": "lead"})))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("no_promotion_request")),
        "{v}"
    );
    // A refused move asks for nothing (a lone lead would otherwise lock themselves out).
    let (s, v) = w.stage("lead_b", &uc, "pilot").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("gate_unmet")),
        "{v}"
    );
    assert!(w.audit(&uc, "use_case.promotion_request").await.is_empty());
    // Asking is explicit; a request for a move that is not the next one is refused.
    let rq = format!("/admin/v1/use-cases/{uc}/promotion-requests");
    let ask = |who: &'static str, to: &'static str| {
        let (w, rq) = (&w, rq.clone());
        async move {
            w.call(
                who,
                Method::POST,
                &rq,
                Some(json!({"to": to, "reason": "ready"})),
            )
            .await
        }
    };
    let (s, v) = ask("lead_b", "production").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("stage_transition_not_allowed")),
        "{v}"
    );
    let (s, v) = ask("lead_b", "pilot").await;
    assert_eq!(s, 201, "{v}");
    let requests = w.audit(&uc, "use_case.promotion_request").await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["actor"], w.uid("lead_b"));
    let (s, v) = ask("builder", "pilot").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("promotion_requested")),
        "{v}"
    );
    // Their own request: refused.
    let (s, v) = w
        .call("lead_b", Method::POST, &path, Some(json!({"role": "lead"})))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("own_request")),
        "{v}"
    );
    // One person in both roles signs once.
    let (s, v) = w
        .call(
            "lead_officer",
            Method::POST,
            &path,
            Some(json!({"role": "lead"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = w
        .call(
            "lead_officer",
            Method::POST,
            &path,
            Some(json!({"role": "risk_officer"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already_approved")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one person signs once"),
        "{v}"
    );
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        vec!["approval:risk_officer".to_string()]
    );
    // An approval counts while its signer holds the role: out of the lead role, lead_officer's
    // signature is void; back in, it counts again.
    let member = format!("/admin/v1/pods/{}/members/{}", w.pod, w.uid("lead_officer"));
    w.call(
        "admin",
        Method::PUT,
        &member,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        vec!["approval:lead", "approval:risk_officer"]
    );
    w.call("admin", Method::PUT, &member, Some(json!({"role": "lead"})))
        .await;
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        vec!["approval:risk_officer".to_string()]
    );
    // Withdrawn, the request takes its approvals with it; a builder may not withdraw lead_b's.
    let (s, v) = w.call("builder", Method::DELETE, &rq, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("role_forbids")),
        "{v}"
    );
    let (s, v) = w.call("lead_b", Method::DELETE, &rq, None).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = w.call("lead_b", Method::DELETE, &rq, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("no_promotion_request")),
        "{v}"
    );
    assert_eq!(w.audit(&uc, "use_case.promotion_withdraw").await.len(), 1);
    let (s, v) = ask("builder", "pilot").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        vec!["approval:lead", "approval:risk_officer"]
    );
    let (s, v) = w
        .call(
            "lead_officer",
            Method::POST,
            &path,
            Some(json!({"role": "lead"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // A role the gate does not ask for.
    w.as_admin(
        Method::PUT,
        "/admin/v1/gates",
        json!({"pilot": {"checks": [], "approvals": ["lead"]}}),
    )
    .await;
    let (s, v) = w
        .call(
            "officer",
            Method::POST,
            &path,
            Some(json!({"role": "risk_officer"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("approval_not_required")),
        "{v}"
    );
    // Now met: lead_b may carry out the move.
    let (s, v) = w.stage("lead_b", &uc, "pilot").await;
    assert_eq!(s, 200, "{v}");
    // The move closed the request: the next one may be asked for at once.
    let (s, v) = ask("builder", "production").await;
    assert_eq!(s, 201, "{v}");
    // Bad input.
    let (s, v) = w
        .call(
            "officer",
            Method::POST,
            &path,
            Some(json!({"role": "boss"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = w
        .call(
            "admin",
            Method::PUT,
            "/admin/v1/gates",
            Some(json!({"production": {"max_regression": 3}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("production.max_regression")),
        "{v}"
    );
    let (s, v) = w
        .call(
            "admin",
            Method::PUT,
            "/admin/v1/gates",
            Some(json!({"production": {"checks": ["eval", "eval"]}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("production.checks[1]")),
        "{v}"
    );
    // `null` is no value: refused wherever the document's schema does not allow it (a stage, a
    // list, a number), with the path named; `min_pass_rate: null` is "no floor".
    for (body, param) in [
        (json!({"pilot": null}), "pilot"),
        (json!({"pilot": {"checks": null}}), "pilot.checks"),
        (
            json!({"production": {"approvals": null}}),
            "production.approvals",
        ),
        (
            json!({"production": {"outcome_days": null}}),
            "production.outcome_days",
        ),
        (
            json!({"pilot": {"min_outcomes": null}}),
            "pilot.min_outcomes",
        ),
        (
            json!({"pilot": {"max_regression": null}}),
            "pilot.max_regression",
        ),
        (
            json!({"pilot": {"min_fairness_samples": null}}),
            "pilot.min_fairness_samples",
        ),
    ] {
        let (s, v) = w
            .call("admin", Method::PUT, "/admin/v1/gates", Some(body.clone()))
            .await;
        assert_eq!(
            (s, v["error"]["param"].as_str()),
            (400, Some(param)),
            "{body}: {v}"
        );
    }
    let (s, v) = w
        .call(
            "admin",
            Method::PUT,
            "/admin/v1/gates",
            Some(json!({"production": {"min_pass_rate": null, "outcome_days": 30}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["production"]["min_pass_rate"], Value::Null, "{v}");
    assert_eq!(v["production"]["outcome_days"], 30, "{v}");
    // The stage left out took its default.
    assert_eq!(v["pilot"]["outcome_days"], 14, "{v}");
    let (s, v) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/gate?to=retired"),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // A query parameter given twice, or one the endpoint does not take, is named.
    for (query, param) in [("to=pilot&to=production", "to"), ("stage=pilot", "stage")] {
        let (s, v) = w
            .call(
                "admin",
                Method::GET,
                &format!("/admin/v1/use-cases/{uc}/gate?{query}"),
                None,
            )
            .await;
        assert_eq!((s, v["error"]["param"].as_str()), (400, Some(param)), "{v}");
    }
}

/// Only a platform admin overrides, with a reason; the override is audited with the unmet lines
/// and shown on the use case ever after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_is_a_platform_admins_audited_and_shown_for_ever() {
    let w = World::new().await;
    let uc = w.use_case("fraud").await;
    let path = format!("/admin/v1/use-cases/{uc}/stage");
    let body = |reason: &str| Some(json!({"to": "pilot", "reason": reason, "override": true}));
    let (s, v) = w
        .call("lead_a", Method::POST, &path, body("trust me"))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("role_forbids")),
        "{v}"
    );
    let (s, v) = w.call("platform", Method::POST, &path, body(" ")).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = w
        .call("platform", Method::POST, &path, body("regulator deadline"))
        .await;
    assert_eq!(s, 200, "{v}");
    let o = &v["gate_overrides"][0];
    assert_eq!(o["actor"], w.uid("platform"));
    assert_eq!(o["reason"], "regulator deadline");
    assert_eq!(
        o["unmet"],
        json!(["owner", "value_model", "budget", "policy"])
    );
    assert_eq!(
        (o["from"].as_str(), o["to"].as_str()),
        (Some("proposed"), Some("pilot"))
    );
    let audit = w.audit(&uc, "use_case.stage").await;
    assert_eq!(audit[0]["actor"], w.uid("platform"));
    assert_eq!(audit[0]["details"]["override"]["unmet"], o["unmet"]);
    assert_eq!(audit[0]["details"]["gate"]["met"], false);
    // Ever after: through later moves, in lists too.
    w.as_admin(
        Method::POST,
        &path,
        json!({"to": "retired", "reason": "done"}),
    )
    .await;
    let (_, got) = w
        .call(
            "viewer",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}"),
            None,
        )
        .await;
    assert_eq!(got["stage"], "retired");
    assert_eq!(got["gate_overrides"][0]["reason"], "regulator deadline");
    let (_, list) = w
        .call(
            "viewer",
            Method::GET,
            "/admin/v1/use-cases?stage=retired",
            None,
        )
        .await;
    assert_eq!(
        list["items"][0]["gate_overrides"][0]["unmet"], o["unmet"],
        "{list}"
    );
    // A met gate needs no override, and records none.
    w.as_admin(Method::PUT, "/admin/v1/gates", planes::gates_off())
        .await;
    let other = w.use_case("met").await;
    let (s, v) = w
        .call(
            "platform",
            Method::POST,
            &format!("/admin/v1/use-cases/{other}/stage"),
            Some(json!({"to": "pilot", "reason": "x", "override": true})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["gate_overrides"], json!([]));
}

/// Who may use the new routes: reads for whoever reads the use case (404 otherwise); the gates
/// for everyone authenticated, changed by platform admins only; asking by the pod's builders,
/// experts and leads; approving by a lead of the pod or a risk officer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_matrix_of_the_gate_routes() {
    let w = World::new().await;
    w.as_admin(
        Method::PUT,
        "/admin/v1/gates",
        json!({"pilot": {"checks": [], "approvals": ["lead", "risk_officer"]}}),
    )
    .await;
    // (who, GET gates, PUT gates, GET gate, POST request, approve as lead, as risk officer,
    // withdraw someone else's request)
    type Row = (&'static str, u16, u16, u16, u16, u16, u16, u16);
    let matrix: [Row; 13] = [
        ("admin", 200, 200, 200, 201, 403, 403, 204),
        ("platform", 200, 200, 200, 201, 403, 403, 204),
        ("officer", 200, 403, 200, 403, 403, 201, 403),
        ("finops", 200, 403, 200, 403, 403, 403, 403),
        ("auditor", 200, 403, 200, 403, 403, 403, 403),
        ("lead_a", 200, 403, 200, 201, 201, 403, 204),
        ("lead_officer", 200, 403, 200, 201, 201, 201, 204),
        ("builder", 200, 403, 200, 201, 403, 403, 403),
        ("expert", 200, 403, 200, 201, 403, 403, 403),
        ("analyst", 200, 403, 200, 403, 403, 403, 403),
        ("viewer", 200, 403, 200, 403, 403, 403, 403),
        ("outsider", 200, 403, 404, 404, 404, 404, 404),
        ("lead_b", 200, 403, 200, 201, 201, 403, 204),
    ];
    let gates = json!({"pilot": {"checks": [], "approvals": ["lead", "risk_officer"]}});
    for (who, get_gates, put_gates, get_gate, request, as_lead, as_officer, withdraw) in matrix {
        let got = |s: u16, v: &Value, want: u16, what: &str| {
            assert_eq!(s, want, "{who} {what}: {v}");
            if s == 404 {
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .ends_with("not found"),
                    "{v}"
                );
            }
        };
        let (s, v) = w.call(who, Method::GET, "/admin/v1/gates", None).await;
        got(s, &v, get_gates, "GET gates");
        if s == 200 {
            assert_eq!(
                v["pilot"]["approvals"],
                json!(["lead", "risk_officer"]),
                "{who}: {v}"
            );
        }
        let (s, v) = w
            .call(who, Method::PUT, "/admin/v1/gates", Some(gates.clone()))
            .await;
        got(s, &v, put_gates, "PUT gates");
        // Each principal asks on a fresh use case, and approves a fresh request someone else
        // (lead_b, or builder for lead_b itself) opened.
        let uc = w.use_case(&format!("ask-{who}")).await;
        let (s, v) = w
            .call(
                who,
                Method::GET,
                &format!("/admin/v1/use-cases/{uc}/gate"),
                None,
            )
            .await;
        got(s, &v, get_gate, "GET gate");
        if s == 200 {
            assert_eq!(v["use_case_id"], uc.as_str());
            assert_eq!(v["lines"].as_array().unwrap().len(), 2, "{v}");
        }
        let (s, v) = w
            .call(
                who,
                Method::POST,
                &format!("/admin/v1/use-cases/{uc}/promotion-requests"),
                Some(json!({"to": "pilot", "reason": "matrix"})),
            )
            .await;
        got(s, &v, request, "POST promotion-requests");
        for (role, want) in [("lead", as_lead), ("risk_officer", as_officer)] {
            let uc = w.use_case(&format!("sign-{who}-{role}")).await;
            let asker = if who == "lead_b" { "builder" } else { "lead_b" };
            let (s, v) = w
                .call(
                    asker,
                    Method::POST,
                    &format!("/admin/v1/use-cases/{uc}/promotion-requests"),
                    Some(json!({"to": "pilot", "reason": "matrix"})),
                )
                .await;
            assert_eq!(s, 201, "{v}");
            let (s, v) = w
                .call(
                    who,
                    Method::POST,
                    &format!("/admin/v1/use-cases/{uc}/approvals"),
                    Some(json!({"role": role})),
                )
                .await;
            got(s, &v, want, &format!("approve as {role}"));
            if s == 201 {
                assert_eq!(v["user_id"], w.uid(who));
                assert_eq!(
                    w.unmet(&uc, "pilot").await.len(),
                    1,
                    "one of two roles signed"
                );
            }
            if role == "lead" {
                let rq = format!("/admin/v1/use-cases/{uc}/promotion-requests");
                let (s, v) = w.call(who, Method::DELETE, &rq, None).await;
                got(s, &v, withdraw, "withdraw");
                let gate = format!("/admin/v1/use-cases/{uc}/gate");
                let (_, open) = w.call("admin", Method::GET, &gate, None).await;
                assert_eq!(open["request"].is_null(), s == 204, "{who}: {open}");
            }
        }
    }
}

/// The eval line's Δ is against the champion — the latest run of the same suite version made in
/// production — and a run of another version of the suite (other cases) is no champion (attack
/// L7); a drop past the tolerance refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eval_line_compares_with_the_champion_of_the_same_suite_version() {
    let w = World::new().await;
    w.as_admin(
        Method::PUT,
        "/admin/v1/gates",
        json!({"pilot": {"checks": ["eval"], "approvals": [], "max_regression": 0.1}}),
    )
    .await;
    let uc = w.use_case("champion").await;
    suite(&w, &uc, "s", 1).await;
    let champion = eval_run_of(&w, &uc, "s", 1, "production", 1.0, T0 - 3 * DAY).await;
    let latest = eval_run_of(&w, &uc, "s", 1, "pilot", 0.9, T0 - DAY).await;
    let (_, run) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/eval-runs/{latest}"),
            None,
        )
        .await;
    assert_eq!(run["champion"]["run_id"], champion.as_str(), "{run}");
    assert!(
        (run["champion"]["delta"].as_f64().unwrap() + 0.1).abs() < 1e-9,
        "{run}"
    );
    // −10 points is within a 0.1 tolerance; a version-2 run is compared with version 2's.
    assert_eq!(w.unmet(&uc, "pilot").await, Vec::<String>::new());
    suite(&w, &uc, "s", 2).await;
    let v2_champion = eval_run_of(&w, &uc, "s", 2, "production", 0.5, T0 - 2 * DAY).await;
    let other = eval_run_of(&w, &uc, "s", 2, "pilot", 0.85, T0).await;
    let (_, run) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/eval-runs/{other}"),
            None,
        )
        .await;
    assert_eq!(run["champion"]["run_id"], v2_champion.as_str(), "{run}");
    // Under a tighter tolerance, v1's drop of 10 points refuses.
    let uc2 = w.use_case("tight").await;
    w.as_admin(
        Method::PUT,
        "/admin/v1/gates",
        json!({"pilot": {"checks": ["eval"], "approvals": [], "max_regression": 0.05}}),
    )
    .await;
    suite(&w, &uc2, "s", 1).await;
    eval_run_of(&w, &uc2, "s", 1, "production", 1.0, T0 - 3 * DAY).await;
    eval_run_of(&w, &uc2, "s", 1, "pilot", 0.9, T0 - DAY).await;
    w.refused(&uc2, "pilot", &["eval"]).await;
}

/// A request never counts for another move than its own, and a move re-checks, in its own
/// transaction, that the request whose approvals it counted is still open (attack H1: requests
/// and moves racing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_requests_never_count() {
    use tollgate_store::{GateQueries, Stage};
    let w = World::new().await;
    let uc = w.use_case("race").await;
    let store = &w.g.gw.store;
    w.as_admin(Method::PUT, "/admin/v1/gates", planes::gates_off())
        .await;
    let (s, v) = w.stage("lead_a", &uc, "pilot").await;
    assert_eq!(s, 200, "{v}");
    // A request written for a stage the use case has left is refused by the store.
    let stale = tollgate_store::PromotionRequest {
        id: tollgate_store::new_id("prq"),
        use_case_id: uc.clone(),
        from: Stage::Proposed,
        to: Stage::Pilot,
        requested_by: w.uid("builder"),
        reason: "late".into(),
        at: T0,
        closed_at: None,
    };
    let e = store.create_promotion_request(&stale).await.unwrap_err();
    assert!(matches!(e, tollgate_store::StoreError::Invalid(_)), "{e:?}");
    // A move from a stage the use case is not in is refused, even one allowed from there.
    let e = store
        .change_stage_gated(
            "test",
            &uc,
            Stage::Production,
            Stage::Retired,
            "x",
            None,
            Value::Null,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, tollgate_store::StoreError::Invalid(_)), "{e:?}");
    // A move that counted a request fails when the request closed meanwhile.
    let req = tollgate_store::PromotionRequest {
        id: tollgate_store::new_id("prq"),
        from: Stage::Pilot,
        to: Stage::Production,
        ..stale
    };
    store.create_promotion_request(&req).await.unwrap();
    store
        .withdraw_promotion_request("test", &req)
        .await
        .unwrap();
    let e = store
        .change_stage_gated(
            "test",
            &uc,
            Stage::Pilot,
            Stage::Production,
            "ship",
            Some(&req.id),
            Value::Null,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, tollgate_store::StoreError::Invalid(_)), "{e:?}");
    // A request that outlived its stage — which the store's own checks on opening and on moving
    // never leave, so it is made here with SQL — is refused by both layers of an approval: the
    // API's check (named in its message) and the store's, in its write transaction.
    let open = tollgate_store::PromotionRequest {
        id: tollgate_store::new_id("prq"),
        ..req.clone()
    };
    store.create_promotion_request(&open).await.unwrap();
    let db = w.g.gw.config.server.data_dir.join("tollgate.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let set_stage = async |stage: &str| {
        sqlx::query("UPDATE use_cases SET stage = ? WHERE id = ?")
            .bind(stage)
            .bind(&uc)
            .execute(&pool)
            .await
            .unwrap();
    };
    set_stage("proposed").await;
    let (s, v) = w
        .call(
            "lead_b",
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/approvals"),
            Some(json!({"role": "lead", "note": "ok"})),
        )
        .await;
    assert_eq!(
        (
            s,
            v["error"]["code"].as_str(),
            v["error"]["message"].as_str()
        ),
        (
            409,
            Some("no_promotion_request"),
            Some("the open request is for a move from pilot, and the use case is in proposed now")
        ),
        "{v}"
    );
    let e = store
        .add_approval(&tollgate_store::Approval {
            id: tollgate_store::new_id("apr"),
            request_id: open.id.clone(),
            use_case_id: uc.clone(),
            role: "lead".into(),
            user_id: w.uid("lead_b"),
            note: String::new(),
            at: T0,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, tollgate_store::StoreError::Invalid(m) if m.contains("another stage")),
        "{e:?}"
    );
    set_stage("pilot").await;
    pool.close().await;
    // The checklist is only for the next move.
    let (s, v) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/gate?to=pilot"),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("stage_transition_not_allowed")),
        "{v}"
    );
}

/// The evidence is this use case's, in the configured windows: another use case's policy does
/// not count; an outcome 40 days old counts in a 45-day window and one on the first hour of the
/// 30 days counts for the cost projection; the latest *finished* fairness run counts; an approval
/// lapses when its signer is disabled, stops being a risk officer, or leads another pod only;
/// moving down is never gated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_is_this_use_cases_in_the_configured_windows() {
    let w = World::new().await;
    let uc = w.use_case("windows").await;
    let neighbour = w.use_case("neighbour").await;
    w.as_admin(
        Method::PUT,
        &format!("/admin/v1/use-cases/{neighbour}/policy"),
        json!({"policy": {"default": "redact"}}),
    )
    .await;
    w.as_admin(Method::PUT, "/admin/v1/gates",
        json!({"pilot": {"checks": ["policy", "fairness", "outcomes", "cost"], "approvals": ["lead", "risk_officer"], "outcome_days": 45}})).await;
    w.as_admin(
        Method::PATCH,
        &format!("/admin/v1/use-cases/{uc}"),
        json!({"value_model": {"volume_per_month": 1000}}),
    )
    .await;
    w.as_admin(Method::POST, "/admin/v1/budgets",
        json!({"scope": "use_case", "scope_id": uc, "amount_usd": "50", "period": "month", "mode": "hard"})).await;
    let unmet = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        unmet(&[
            "policy",
            "fairness",
            "outcomes",
            "cost",
            "approval:lead",
            "approval:risk_officer"
        ])
    );
    // 40 days old, inside the 45-day window (and outside 30 days: no cost projection yet).
    outcome(&w, &uc, T0 - 40 * DAY, "r4").await;
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        unmet(&[
            "policy",
            "fairness",
            "cost",
            "approval:lead",
            "approval:risk_officer"
        ])
    );
    // On the first hour of the 30 days: 0.01 USD over 1 outcome × 1,000 = 10 USD ≤ 50.
    outcome(&w, &uc, T0 - 30 * DAY, "r5").await;
    spend(&w, &uc, 10_000_000, T0 - DAY).await;
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        unmet(&[
            "policy",
            "fairness",
            "approval:lead",
            "approval:risk_officer"
        ])
    );
    // A clean finished run counts; a newer failed one does not replace it.
    let clean = fairness_run(&w, &uc, false, T0 - 2 * DAY).await;
    let failed = tollgate_store::FairnessRun {
        id: tollgate_store::new_id("fair"),
        use_case_id: uc.clone(),
        pod_id: w.pod.clone(),
        status: "running".into(),
        started_at: T0 - DAY,
        created_by: "test".into(),
        route: "chat".into(),
        ..Default::default()
    };
    w.g.gw
        .store
        .create_fairness_run("test", &failed)
        .await
        .unwrap();
    let failed = tollgate_store::FairnessRun {
        status: "failed".into(),
        finished_at: Some(T0 - DAY + 1),
        error: Some("calls failed".into()),
        ..failed
    };
    w.g.gw.store.finish_fairness_run(&failed).await.unwrap();
    let (_, g) = w
        .call(
            "admin",
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/gate"),
            None,
        )
        .await;
    let line = g["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["check"] == "fairness")
        .unwrap()
        .clone();
    assert_eq!(
        (line["met"].as_bool(), line["data"]["run_id"].as_str()),
        (Some(true), Some(clean.as_str())),
        "{g}"
    );
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        unmet(&["policy", "approval:lead", "approval:risk_officer"])
    );

    // Approvals lapse with the signer's standing.
    let (s, v) = w
        .call(
            "builder",
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/promotion-requests"),
            Some(json!({"to": "pilot", "reason": "ready"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let path = format!("/admin/v1/use-cases/{uc}/approvals");
    let (s, v) = w
        .call("lead_a", Method::POST, &path, Some(json!({"role": "lead"})))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = w
        .call(
            "officer",
            Method::POST,
            &path,
            Some(json!({"role": "risk_officer"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(w.unmet(&uc, "pilot").await, unmet(&["policy"]));
    let officer = format!("/admin/v1/users/{}", w.uid("officer"));
    w.as_admin(Method::PATCH, &officer, json!({"disabled": true}))
        .await;
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        unmet(&["policy", "approval:risk_officer"])
    );
    w.as_admin(Method::PATCH, &officer, json!({"disabled": false}))
        .await;
    assert_eq!(w.unmet(&uc, "pilot").await, unmet(&["policy"]));
    w.as_admin(Method::PATCH, &officer, json!({"org_role": null}))
        .await;
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        unmet(&["policy", "approval:risk_officer"])
    );
    w.as_admin(Method::PATCH, &officer, json!({"org_role": "risk_officer"}))
        .await;
    let elsewhere = id(&w
        .as_admin(Method::POST, "/admin/v1/pods", json!({"name": "elsewhere"}))
        .await);
    w.as_admin(
        Method::PUT,
        &format!("/admin/v1/pods/{elsewhere}/members/{}", w.uid("lead_a")),
        json!({"role": "lead"}),
    )
    .await;
    w.as_admin(
        Method::PUT,
        &format!("/admin/v1/pods/{}/members/{}", w.pod, w.uid("lead_a")),
        json!({"role": "viewer"}),
    )
    .await;
    assert_eq!(
        w.unmet(&uc, "pilot").await,
        unmet(&["policy", "approval:lead"])
    );
    w.as_admin(
        Method::PUT,
        &format!("/admin/v1/pods/{}/members/{}", w.pod, w.uid("lead_a")),
        json!({"role": "lead"}),
    )
    .await;
    // Its own policy: every line met; the move goes through.
    w.as_admin(
        Method::PUT,
        &format!("/admin/v1/use-cases/{uc}/policy"),
        json!({"policy": {"default": "redact"}}),
    )
    .await;
    assert_eq!(w.unmet(&uc, "pilot").await, Vec::<String>::new());
    let (s, v) = w.stage("lead_a", &uc, "pilot").await;
    assert_eq!(s, 200, "{v}");
    // Moving down or retiring is never gated: no checklist in its audit event.
    for to in ["proposed", "retired"] {
        let (s, v) = w.stage("lead_a", &uc, to).await;
        assert_eq!(s, 200, "{v}");
    }
    let moves = w.audit(&uc, "use_case.stage").await;
    assert_eq!(moves.len(), 3);
    assert!(moves[0]["details"]["gate"].is_object());
    assert!(
        moves[1]["details"].get("gate").is_none() && moves[2]["details"].get("gate").is_none(),
        "{moves:?}"
    );
}
