//! The admin API: the whole role × route matrix, key lifecycle, stages on the data plane, bad input,
//! and the database going away.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tollgate_gateway::Gateway;
use tower::ServiceExt;

/// A suite the matrix stores and reads.
fn suite_doc() -> Value {
    json!({"prompts": ["Say hi to {{ name }}"], "routes": ["chat"],
           "tests": [{"vars": {"name": "Ada"}, "assert": [{"type": "icontains", "value": "ada"}]}]})
}

const CONFIG: &str = r#"
providers:
  - { name: nowhere, type: openai_compatible, base_url: "http://127.0.0.1:9/v1" }
routes:
  - name: chat
    deployments: [{ provider: nowhere, model: m }]
  - name: other
    deployments: [{ provider: nowhere, model: m }]
"#;

struct Api {
    gw: Arc<Gateway>,
    router: axum::Router,
    admin: String,
}

impl Api {
    async fn new(yaml: &str) -> Api {
        Api::new_at(yaml, tollgate_types::clock::Clock::system()).await
    }

    /// Both planes reading `clock`.
    async fn new_at(yaml: &str, clock: tollgate_types::clock::Clock) -> Api {
        let gw = common::gateway_only_at(yaml, clock).await;
        let (router, _, admin) = planes::app(&gw).await;
        planes::turn_gates_off(&router, &admin).await;
        Api { router, gw, admin }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        planes::call(&self.router, method, path, token, body).await
    }

    /// The audit entries of a use case's updates, in the audit's order (of its first 200).
    async fn use_case_updates(&self, id: &str) -> Vec<Value> {
        let (_, events) = self
            .call(Method::GET, "/admin/v1/audit?limit=200", &self.admin, None)
            .await;
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "use_case.update" && e["object_id"] == id)
            .cloned()
            .collect()
    }

    /// The names of the pods (the first page, 50 at most).
    async fn pod_names(&self) -> Vec<String> {
        let (_, pods) = self
            .call(Method::GET, "/admin/v1/pods", &self.admin, None)
            .await;
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, v) = self
            .call(method, path, &self.admin.clone(), Some(body))
            .await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    /// Moves a use case to another stage (as the admin).
    async fn stage(&self, uc: &str, to: &str, reason: &str) {
        self.ok(
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/stage"),
            json!({"to": to, "reason": reason}),
        )
        .await;
    }

    async fn chat(&self, key: &str, route: &str, user: Option<&str>) -> (StatusCode, Value) {
        let mut req =
            Request::post("/v1/chat/completions").header("authorization", format!("Bearer {key}"));
        if let Some(u) = user {
            req = req.header("x-tollgate-user", u);
        }
        let body =
            json!({"model": route, "messages": [{"role": "user", "content": "x"}]}).to_string();
        let resp = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Bootstrap,
    PlatformAdmin,
    Finops,
    RiskOfficer,
    Auditor,
    Lead,
    Builder,
    DomainExpert,
    Analyst,
    Viewer,
    Nobody,
}

const EVERYONE: [Who; 11] = [
    Who::Bootstrap,
    Who::PlatformAdmin,
    Who::Finops,
    Who::RiskOfficer,
    Who::Auditor,
    Who::Lead,
    Who::Builder,
    Who::DomainExpert,
    Who::Analyst,
    Who::Viewer,
    Who::Nobody,
];

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Read an object of the pod.
    Read,
    /// Change the pod, its members or use cases.
    Manage,
    /// Issue, rotate or revoke keys of the pod.
    IssueKeys,
    /// Create pods and users.
    AdminOnly,
    /// Change a person of the pod or their personal tokens: platform admins only; others who can
    /// see the person get 403.
    ManageUser,
    /// Store evaluation suites and start runs: leads, builders and domain experts of the pod.
    Evaluate,
}

/// What `who` gets for `op` on a pod it is a member of (`own`) or not.
fn expected(who: Who, op: Op, own: bool, ok: StatusCode) -> StatusCode {
    use Who::*;
    let forbidden = StatusCode::FORBIDDEN;
    let hidden = StatusCode::NOT_FOUND;
    match (who, op) {
        (Bootstrap | PlatformAdmin, _) => ok,
        (_, Op::AdminOnly) => forbidden,
        (Finops | RiskOfficer | Auditor, Op::Read) => ok,
        (Finops | RiskOfficer | Auditor, _) => forbidden,
        (Nobody, _) => hidden,
        (_, _) if !own => hidden,
        (_, Op::ManageUser) => forbidden,
        (_, Op::Read) => ok,
        (Lead, _) => ok,
        (Builder, Op::IssueKeys) => ok,
        (Builder | DomainExpert, Op::Evaluate) => ok,
        _ => forbidden,
    }
}

struct Org {
    tokens: Vec<(Who, String)>,
    pods: [String; 2],
    use_cases: [String; 2],
    user_ids: Vec<String>,
    /// A viewer of both pods whose membership the matrix changes and removes.
    newcomer: String,
}

/// Pods A and B; a user (and token) per role, pod roles in A only; a pilot use case per pod.
async fn org(api: &Api) -> Org {
    let a = api
        .ok(Method::POST, "/admin/v1/pods", json!({"name": "pod-a"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = api
        .ok(Method::POST, "/admin/v1/pods", json!({"name": "pod-b"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tokens = vec![(Who::Bootstrap, api.admin.clone())];
    let mut user_ids = Vec::new();
    for (i, who) in EVERYONE.iter().enumerate().skip(1) {
        let org_role = match who {
            Who::PlatformAdmin => json!("platform_admin"),
            Who::Finops => json!("finops"),
            Who::RiskOfficer => json!("risk_officer"),
            Who::Auditor => json!("auditor"),
            _ => Value::Null,
        };
        let u = api.ok(Method::POST, "/admin/v1/users", json!({"email": format!("u{i}@example.com"), "name": format!("{who:?}"), "org_role": org_role})).await;
        let uid = u["id"].as_str().unwrap().to_string();
        let pod_role = match who {
            Who::Lead => Some("lead"),
            Who::Builder => Some("builder"),
            Who::DomainExpert => Some("domain_expert"),
            Who::Analyst => Some("analyst"),
            Who::Viewer => Some("viewer"),
            _ => None,
        };
        if let Some(role) = pod_role {
            api.ok(
                Method::PUT,
                &format!("/admin/v1/pods/{a}/members/{uid}"),
                json!({"role": role}),
            )
            .await;
        }
        let t = api
            .ok(
                Method::POST,
                &format!("/admin/v1/users/{uid}/tokens"),
                json!({"name": "t"}),
            )
            .await;
        tokens.push((*who, t["secret"].as_str().unwrap().to_string()));
        user_ids.push(uid);
    }
    let newcomer = api
        .ok(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "newcomer@example.com", "name": "Newcomer"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for pod in [&a, &b] {
        api.ok(
            Method::PUT,
            &format!("/admin/v1/pods/{pod}/members/{newcomer}"),
            json!({"role": "viewer"}),
        )
        .await;
    }
    let mut use_cases = Vec::new();
    for pod in [&a, &b] {
        let uc = api
            .ok(
                Method::POST,
                "/admin/v1/use-cases",
                json!({"pod_id": pod, "name": "uc", "routes": ["chat"]}),
            )
            .await;
        let id = uc["id"].as_str().unwrap().to_string();
        api.stage(&id, "pilot", "matrix").await;
        // A suite, and a finished run of it, for the evaluation routes to read.
        api.ok(
            Method::PUT,
            &format!("/admin/v1/use-cases/{id}/suites/smoke"),
            json!({"document": suite_doc()}),
        )
        .await;
        use tollgate_store::EvalQueries;
        let run = eval_run(&format!("run_matrix_{}", use_cases.len()), &id, pod);
        api.gw.store.create_run("admin", &run).await.unwrap();
        // A pattern of the pod with a version, for the pattern routes.
        let pat = format!("pat-{}", use_cases.len());
        api.ok(
            Method::POST,
            "/admin/v1/patterns",
            json!({"name": pat, "pod_id": pod}),
        )
        .await;
        api.ok(
            Method::POST,
            &format!("/admin/v1/patterns/{pat}/versions"),
            json!({"messages": [{"role": "user", "content": "hi"}], "schema": {"type": "object"}}),
        )
        .await;
        use tollgate_store::FairnessQueries;
        let fair = fairness_run(&format!("fair_matrix_{}", use_cases.len()), &id, pod);
        api.gw
            .store
            .create_fairness_run("admin", &fair)
            .await
            .unwrap();
        use_cases.push(id);
    }
    Org {
        tokens,
        pods: [a, b],
        use_cases: [use_cases[0].clone(), use_cases[1].clone()],
        user_ids,
        newcomer,
    }
}

/// A running evaluation run `id` of use case `uc` (suite `smoke`, pilot, route `chat`).
fn eval_run(id: &str, uc: &str, pod: &str) -> tollgate_store::EvalRun {
    tollgate_store::EvalRun {
        id: id.into(),
        use_case_id: uc.into(),
        pod_id: pod.into(),
        suite: "smoke".into(),
        suite_version: 1,
        stage: "pilot".into(),
        trigger: "manual".into(),
        status: "running".into(),
        created_by: "admin".into(),
        cases_total: 1,
        threshold: 1.0,
        routes: vec!["chat".into()],
        ..Default::default()
    }
}

/// A running fairness run `id` of use case `uc` (route `chat`, the built-in policy).
fn fairness_run(id: &str, uc: &str, pod: &str) -> tollgate_store::FairnessRun {
    tollgate_store::FairnessRun {
        id: id.into(),
        use_case_id: uc.into(),
        pod_id: pod.into(),
        status: "running".into(),
        created_by: "admin".into(),
        route: "chat".into(),
        policy: "builtin".into(),
        probe: json!({}),
        ..Default::default()
    }
}

/// Every route, every role, own pod and other pod.
#[tokio::test]
async fn the_role_matrix_of_the_admin_api() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    // A person per pod, a member of that pod only, whose record and tokens the matrix changes.
    let mut people = Vec::new();
    for (i, pod) in org.pods.iter().enumerate() {
        let u = api
            .ok(
                Method::POST,
                "/admin/v1/users",
                json!({"email": format!("person{i}@example.com"), "name": "Person"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        api.ok(
            Method::PUT,
            &format!("/admin/v1/pods/{pod}/members/{u}"),
            json!({"role": "analyst"}),
        )
        .await;
        people.push(u);
    }
    let mut checked = 0;
    let mut stage = ["pilot".to_string(), "pilot".to_string()];
    for (n, (who, token)) in org.tokens.iter().enumerate() {
        // Org-wide routes.
        let (s, me) = api.call(Method::GET, "/admin/v1/me", token, None).await;
        assert_eq!(s, StatusCode::OK, "{who:?} /me");
        assert!(me["actor"].is_string());
        for path in [
            "/admin/v1/pods",
            "/admin/v1/users",
            "/admin/v1/use-cases",
            "/admin/v1/keys",
            "/admin/v1/budgets",
            "/admin/v1/reports/forecast",
            "/admin/v1/reports/advice",
            "/admin/v1/reports/focus?month=2026-11",
            "/admin/v1/openapi.json",
            // The pattern library is shared across pods.
            "/admin/v1/patterns",
            "/admin/v1/patterns/pat-0",
            "/admin/v1/patterns/pat-1",
        ] {
            let (s, _) = api.call(Method::GET, path, token, None).await;
            assert_eq!(s, StatusCode::OK, "{who:?} GET {path}");
            checked += 1;
        }
        let (s, _) = api
            .call(
                Method::GET,
                "/admin/v1/reports/spend?by=pod&from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
                token,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{who:?} spend report");
        checked += 1;
        let (s, _) = api.call(Method::GET, "/admin/v1/audit", token, None).await;
        let audit_ok = matches!(
            who,
            Who::Bootstrap | Who::PlatformAdmin | Who::Auditor | Who::RiskOfficer
        );
        assert_eq!(
            s,
            if audit_ok {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            },
            "{who:?} audit"
        );
        // A pod member's user record and personal tokens: visible to org-wide roles and pod mates,
        // issued by platform admins or the user themself.
        let viewer_idx = EVERYONE.iter().position(|w| *w == Who::Viewer).unwrap() - 1;
        let viewer_id = &org.user_ids[viewer_idx];
        let (s, _) = api
            .call(
                Method::GET,
                &format!("/admin/v1/users/{viewer_id}"),
                token,
                None,
            )
            .await;
        let sees = !matches!(who, Who::Nobody);
        assert_eq!(
            s,
            if sees {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            "{who:?} GET user"
        );
        let (s, _) = api
            .call(
                Method::POST,
                &format!("/admin/v1/users/{viewer_id}/tokens"),
                token,
                Some(json!({"name": "t"})),
            )
            .await;
        let want = match who {
            Who::Bootstrap | Who::PlatformAdmin | Who::Viewer => StatusCode::CREATED,
            Who::Nobody => StatusCode::NOT_FOUND,
            _ => StatusCode::FORBIDDEN,
        };
        assert_eq!(s, want, "{who:?} POST user token");
        checked += 2;
        let (s, _) = api
            .call(
                Method::POST,
                "/admin/v1/pods",
                token,
                Some(json!({"name": format!("new-{n}")})),
            )
            .await;
        assert_eq!(
            s,
            expected(*who, Op::AdminOnly, true, StatusCode::CREATED),
            "{who:?} create pod"
        );
        let (s, _) = api
            .call(
                Method::POST,
                "/admin/v1/users",
                token,
                Some(json!({"email": format!("new{n}@example.com"), "name": "N"})),
            )
            .await;
        assert_eq!(
            s,
            expected(*who, Op::AdminOnly, true, StatusCode::CREATED),
            "{who:?} create user"
        );
        checked += 3;

        for (i, own) in [(0usize, true), (1usize, false)] {
            let pod = &org.pods[i];
            let uc = &org.use_cases[i];
            let key = api
                .ok(
                    Method::POST,
                    "/admin/v1/keys",
                    json!({"use_case_id": uc, "name": "k"}),
                )
                .await;
            let key_id = key["key"]["id"].as_str().unwrap().to_string();
            let key2 = api
                .ok(
                    Method::POST,
                    "/admin/v1/keys",
                    json!({"use_case_id": uc, "name": "k2"}),
                )
                .await;
            let key2_id = key2["key"]["id"].as_str().unwrap().to_string();
            let budget = api.ok(Method::POST, "/admin/v1/budgets", json!({"scope": "pod", "scope_id": pod, "amount_usd": "100", "period": "month", "mode": "soft"})).await["id"].as_str().unwrap().to_string();
            // Budgets are managed by platform admins and finops; others who can see them get 403.
            let doomed = api.ok(Method::POST, "/admin/v1/budgets", json!({"scope": "pod", "scope_id": pod, "amount_usd": "1", "period": "day", "mode": "hard"})).await["id"].as_str().unwrap().to_string();
            let (got, v) = api
                .call(
                    Method::DELETE,
                    &format!("/admin/v1/budgets/{doomed}"),
                    token,
                    None,
                )
                .await;
            let want = match expected(*who, Op::Read, own, StatusCode::OK) {
                StatusCode::OK
                    if matches!(who, Who::Bootstrap | Who::PlatformAdmin | Who::Finops) =>
                {
                    StatusCode::NO_CONTENT
                }
                StatusCode::OK => StatusCode::FORBIDDEN,
                other => other,
            };
            assert_eq!(got, want, "{who:?} DELETE budget (own pod: {own}): {v}");
            let (got, _) = api.call(Method::POST, "/admin/v1/budgets", token, Some(json!({"scope": "pod", "scope_id": pod, "amount_usd": "5", "period": "week", "mode": "soft"}))).await;
            let want = if matches!(who, Who::Bootstrap | Who::PlatformAdmin | Who::Finops) {
                StatusCode::CREATED
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(got, want, "{who:?} POST budget");
            checked += 2;
            let to = if stage[i] == "pilot" {
                "production"
            } else {
                "pilot"
            };
            let person = &people[i];
            let person_token = api
                .ok(
                    Method::POST,
                    &format!("/admin/v1/users/{person}/tokens"),
                    json!({"name": "matrix"}),
                )
                .await["id"]
                .as_str()
                .unwrap()
                .to_string();
            let run_id = format!("run_matrix_{i}");
            let pat = format!("pat-{i}");
            let cases: Vec<(Method, String, Option<Value>, Op, StatusCode)> = vec![
                (
                    Method::POST,
                    "/admin/v1/patterns".into(),
                    Some(json!({"name": format!("by-{n}-{i}"), "pod_id": pod})),
                    Op::Evaluate,
                    StatusCode::CREATED,
                ),
                (
                    Method::POST,
                    format!("/admin/v1/patterns/{pat}/versions"),
                    Some(
                        json!({"messages": [{"role": "user", "content": "hi"}], "schema": {"type": "object"}}),
                    ),
                    Op::Evaluate,
                    StatusCode::CREATED,
                ),
                (
                    Method::PUT,
                    format!("/admin/v1/patterns/{pat}/labels/production"),
                    Some(json!({"version": 1})),
                    Op::Manage,
                    StatusCode::OK,
                ),
                (
                    Method::PUT,
                    format!("/admin/v1/use-cases/{uc}/suites/by-{n}"),
                    Some(json!({"document": suite_doc()})),
                    Op::Evaluate,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/use-cases/{uc}/suites"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/use-cases/{uc}/suites/smoke"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/use-cases/{uc}/eval-runs"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/eval-runs/{run_id}"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::PUT,
                    format!("/admin/v1/use-cases/{uc}/eval-schedules/smoke"),
                    Some(json!({"every_minutes": 60})),
                    Op::Manage,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/use-cases/{uc}/eval-schedules"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::DELETE,
                    format!("/admin/v1/use-cases/{uc}/eval-schedules/smoke"),
                    None,
                    Op::Manage,
                    StatusCode::NO_CONTENT,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/use-cases/{uc}/fairness-runs"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/fairness-runs/fair_matrix_{i}"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::POST,
                    format!("/admin/v1/use-cases/{uc}/fairness-runs"),
                    Some(json!({"probe": {"route": "chat", "prompts": ["Approve {{ name }}?"]}})),
                    Op::Evaluate,
                    StatusCode::SERVICE_UNAVAILABLE,
                ),
                // In-process, the control plane does not know the gateway's address: a caller
                // allowed to start a run gets 503, the others what their role gives.
                (
                    Method::POST,
                    format!("/admin/v1/use-cases/{uc}/eval-runs"),
                    Some(json!({"suite": "smoke"})),
                    Op::Evaluate,
                    StatusCode::SERVICE_UNAVAILABLE,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/pods/{pod}"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/pods/{pod}/members"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/use-cases/{uc}"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/use-cases/{uc}/stage-changes"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/keys/{key_id}"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::PATCH,
                    format!("/admin/v1/pods/{pod}"),
                    Some(json!({"description": format!("by {who:?}")})),
                    Op::Manage,
                    StatusCode::OK,
                ),
                (
                    Method::PUT,
                    format!("/admin/v1/pods/{pod}/members/{}", org.newcomer),
                    Some(json!({"role": "viewer"})),
                    Op::Manage,
                    StatusCode::OK,
                ),
                (
                    Method::POST,
                    "/admin/v1/use-cases".into(),
                    Some(json!({"pod_id": pod, "name": format!("uc-{n}")})),
                    Op::Manage,
                    StatusCode::CREATED,
                ),
                (
                    Method::PATCH,
                    format!("/admin/v1/use-cases/{uc}"),
                    Some(json!({"description": "changed"})),
                    Op::Manage,
                    StatusCode::OK,
                ),
                (
                    Method::POST,
                    format!("/admin/v1/use-cases/{uc}/stage"),
                    Some(json!({"to": to, "reason": "matrix"})),
                    Op::Manage,
                    StatusCode::OK,
                ),
                (
                    Method::POST,
                    "/admin/v1/keys".into(),
                    Some(json!({"use_case_id": uc, "name": "mine"})),
                    Op::IssueKeys,
                    StatusCode::CREATED,
                ),
                (
                    Method::POST,
                    format!("/admin/v1/keys/{key_id}/rotate"),
                    Some(json!({"grace_seconds": 0})),
                    Op::IssueKeys,
                    StatusCode::CREATED,
                ),
                (
                    Method::POST,
                    format!("/admin/v1/keys/{key2_id}/revoke"),
                    None,
                    Op::IssueKeys,
                    StatusCode::OK,
                ),
                (
                    Method::DELETE,
                    format!("/admin/v1/pods/{pod}/members/{}", org.newcomer),
                    None,
                    Op::Manage,
                    StatusCode::NO_CONTENT,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/budgets/{budget}"),
                    None,
                    Op::Read,
                    StatusCode::OK,
                ),
                (
                    Method::GET,
                    format!("/admin/v1/users/{person}/tokens"),
                    None,
                    Op::ManageUser,
                    StatusCode::OK,
                ),
                (
                    Method::POST,
                    format!("/admin/v1/users/{person}/tokens/{person_token}/revoke"),
                    None,
                    Op::ManageUser,
                    StatusCode::OK,
                ),
                (
                    Method::PATCH,
                    format!("/admin/v1/users/{person}"),
                    Some(json!({"name": format!("by {who:?}")})),
                    Op::ManageUser,
                    StatusCode::OK,
                ),
            ];
            for (method, path, body, op, ok) in cases {
                let want = expected(*who, op, own, ok);
                let (got, v) = api.call(method.clone(), &path, token, body).await;
                assert_eq!(got, want, "{who:?} {method} {path} (own pod: {own}): {v}");
                if got.is_client_error() {
                    assert!(
                        v["error"]["message"].is_string(),
                        "{who:?} {method} {path}: {v}"
                    );
                    if got == StatusCode::NOT_FOUND {
                        assert!(
                            v["error"]["message"]
                                .as_str()
                                .unwrap()
                                .ends_with("not found"),
                            "a 404 gives no hint: {v}"
                        );
                    }
                }
                if path.ends_with("/stage") && got.is_success() {
                    stage[i] = to.to_string();
                }
                checked += 1;
            }
            // The newcomer is back in the pod for the next principal.
            api.ok(
                Method::PUT,
                &format!("/admin/v1/pods/{pod}/members/{}", org.newcomer),
                json!({"role": "viewer"}),
            )
            .await;
        }
    }
    assert!(checked > 300, "{checked} checks");
}

/// Pod names that read the same — another case, a look-alike dash, full-width letters — are
/// refused beside an existing one, on create and on rename, naming the pod they collide with;
/// a pod may change the case of its own name (attack 2026-12-02 A15).
/// Review 2026-12-02b #9: the look-alike check and the write are one step. Pods created (and
/// renamed) at once under names that read the same leave exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_pod_names_sent_at_once_leave_one() {
    let api = Api::new(CONFIG).await;
    let names = [
        "race-A",
        "RACE-A",
        "race\u{2011}A",
        "r\u{0430}ce-A",
        "\u{FF52}ace-A",
        "race-\u{0391}",
        "Race-a",
        "race\u{2013}a",
    ];
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let (router, admin) = (api.router.clone(), api.admin.clone());
            let body = json!({"name": name});
            tokio::spawn(async move {
                planes::call(&router, Method::POST, "/admin/v1/pods", &admin, Some(body)).await
            })
        })
        .collect();
    let mut created = Vec::new();
    for t in tasks {
        let (st, b) = t.await.unwrap();
        match st {
            StatusCode::CREATED => created.push(b["name"].as_str().unwrap().to_string()),
            StatusCode::CONFLICT => assert_eq!(b["error"]["code"], "name_taken", "{b}"),
            other => panic!("{other}: {b}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    // Renames at once of pods with different names to names that read the same.
    let mut ids = Vec::new();
    for i in 0..names.len() {
        let pod = api
            .ok(
                Method::POST,
                "/admin/v1/pods",
                json!({"name": format!("other-{i}")}),
            )
            .await;
        ids.push(pod["id"].as_str().unwrap().to_string());
    }
    let tasks: Vec<_> = ids
        .iter()
        .zip(names)
        .map(|(id, name)| {
            let (router, admin) = (api.router.clone(), api.admin.clone());
            let path = format!("/admin/v1/pods/{id}");
            let body = json!({"name": format!("{name}-2")});
            tokio::spawn(async move {
                planes::call(&router, Method::PATCH, &path, &admin, Some(body)).await
            })
        })
        .collect();
    let mut renamed = 0;
    for t in tasks {
        let (st, b) = t.await.unwrap();
        match st {
            StatusCode::OK => renamed += 1,
            StatusCode::CONFLICT => assert_eq!(b["error"]["code"], "name_taken", "{b}"),
            other => panic!("{other}: {b}"),
        }
    }
    assert_eq!(renamed, 1);
    let names = api.pod_names().await;
    // One of the first names, seven pods as they were, one of them renamed.
    let count = |f: &dyn Fn(&str) -> bool| names.iter().filter(|n| f(n)).count();
    let other = |n: &str| n.starts_with("other-");
    assert_eq!(count(&other), ids.len() - 1, "{names:?}");
    assert_eq!(count(&|n| !other(n) && n.ends_with("-2")), 1, "{names:?}");
    assert_eq!(count(&|n| !other(n) && !n.ends_with("-2")), 1, "{names:?}");
}

#[tokio::test]
async fn look_alike_pod_names_are_refused() {
    let api = Api::new(CONFIG).await;
    let a = api
        .ok(Method::POST, "/admin/v1/pods", json!({"name": "pod-A"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The same name exactly is the store's refusal, with its own code.
    let (st, b) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &api.admin,
            Some(json!({"name": "pod-A"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["error"]["code"], "already_exists", "{b}");
    for name in [
        "POD-A",
        "pod\u{2011}A",
        "pod\u{2013}a",
        "\u{FF50}\u{FF4F}\u{FF44}-A",
        // Attack 2026-12-02b B11: other dashes, other scripts' letters.
        "pod\u{058A}A",
        "pod\u{1806}A",
        "pod\u{02D7}A",
        "pod\u{2043}A",
        "pod\u{2796}A",
        "pod\u{2E3A}A",
        "pod\u{30FC}A",
        "\u{0440}od-A",
        "pod-\u{0391}",
        "p\u{043E}d-A",
        // Attack 2026-12-02c C10: a Cherokee capital drawn like a Latin one.
        "pod-\u{13AA}",
    ] {
        let (st, b) = api
            .call(
                Method::POST,
                "/admin/v1/pods",
                &api.admin,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{name}: {b}");
        assert_eq!(b["error"]["code"], "name_taken", "{name}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&a) && msg.contains("\"pod-A\""), "{msg}");
    }
    let b = api
        .ok(Method::POST, "/admin/v1/pods", json!({"name": "pod-B"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, body) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/pods/{b}"),
            &api.admin,
            Some(json!({"name": "Pod-a"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    let (st, body) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/pods/{a}"),
            &api.admin,
            Some(json!({"name": "POD-A"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "its own name in another case: {body}");
    let names = api.pod_names().await;
    assert_eq!(names, ["POD-A", "pod-B"]);

    // Attack 2026-12-02b B12: composed and decomposed accents, the Angstrom sign, `ß` and `ss`;
    // names that only look alike to no one stay apart.
    for (first, second) in [
        ("caf\u{E9}-team", "cafe\u{301}-team"),
        ("pod-\u{C5}", "pod-A\u{30A}"),
        ("\u{DF}-x", "ss-x"),
        // Attack helper 38 P1, P2: a capital I (which the skeleton alone reads as `l`), blanks.
        ("iris", "Iris"),
        ("billing", "BILLING"),
        ("ai-platform", "AI-Platform"),
        ("finance team", "finance  team"),
        ("ops team", "ops\u{3164}team"),
        ("ops team", "OPS\u{00A0}TEAM"),
    ] {
        if api.pod_names().await.iter().any(|n| n == first) {
            // (A name listed twice: its first pod stands.)
        } else {
            api.ok(Method::POST, "/admin/v1/pods", json!({"name": first}))
                .await;
        }
        let (st, b) = api
            .call(
                Method::POST,
                "/admin/v1/pods",
                &api.admin,
                Some(json!({"name": second})),
            )
            .await;
        assert_eq!(st, StatusCode::CONFLICT, "{second}: {b}");
        assert_eq!(b["error"]["code"], "name_taken", "{second}");
    }
    for name in ["cafe-team", "pod-C", "team-2", "team-3"] {
        api.ok(Method::POST, "/admin/v1/pods", json!({"name": name}))
            .await;
    }

    // A pod's lead who may not read the other pod is not told which one it is.
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let lead = &org.tokens.iter().find(|(w, _)| *w == Who::Lead).unwrap().1;
    let (st, body) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/pods/{}", org.pods[0]),
            lead,
            Some(json!({"name": "POD-B"})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        !msg.contains(&org.pods[1]) && !msg.contains("\"pod-b\"") && msg.contains("another pod"),
        "{msg}"
    );
}

#[tokio::test]
async fn lists_show_only_what_the_caller_may_read() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let viewer = &org
        .tokens
        .iter()
        .find(|(w, _)| *w == Who::Viewer)
        .unwrap()
        .1;
    let (_, pods) = api.call(Method::GET, "/admin/v1/pods", viewer, None).await;
    let ids: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [org.pods[0].as_str()]);
    let (_, ucs) = api
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases?pod_id={}", org.pods[1]),
            viewer,
            None,
        )
        .await;
    assert_eq!(
        ucs["items"].as_array().unwrap().len(),
        0,
        "another pod's use cases stay hidden"
    );
    let nobody = &org
        .tokens
        .iter()
        .find(|(w, _)| *w == Who::Nobody)
        .unwrap()
        .1;
    let (_, users) = api.call(Method::GET, "/admin/v1/users", nobody, None).await;
    assert_eq!(
        users["items"].as_array().unwrap().len(),
        1,
        "only themselves"
    );
    let (_, all) = api
        .call(Method::GET, "/admin/v1/pods?limit=1", &api.admin, None)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let next = all["next"].as_str().unwrap();
    let (_, page2) = api
        .call(
            Method::GET,
            &format!("/admin/v1/pods?limit=1&after={next}"),
            &api.admin,
            None,
        )
        .await;
    assert_ne!(page2["items"][0]["id"], all["items"][0]["id"]);
}

/// The budget list, per role: org-wide readers see every budget, a pod member the budgets of
/// their pod's scopes (pod, use case, key), someone of no pod none; each a page at a time.
#[tokio::test]
async fn the_budget_list_shows_each_role_its_own_and_is_paged() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let (pod_a, pod_b) = (&org.pods[0], &org.pods[1]);
    let (uc_a, uc_b) = (&org.use_cases[0], &org.use_cases[1]);
    let key_a = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc_a, "name": "k"}),
        )
        .await["key"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut made: Vec<(String, &str)> = Vec::new();
    for (scope, scope_id, pod) in [
        ("org", None, "org"),
        ("pod", Some(pod_a.as_str()), "a"),
        ("use_case", Some(uc_a.as_str()), "a"),
        ("use_case_eval", Some(uc_a.as_str()), "a"),
        ("key", Some(key_a.as_str()), "a"),
        ("pod", Some(pod_b.as_str()), "b"),
        ("use_case", Some(uc_b.as_str()), "b"),
    ] {
        let mut body =
            json!({"scope": scope, "amount_usd": "10", "period": "month", "mode": "soft"});
        if let Some(id) = scope_id {
            body["scope_id"] = json!(id);
        }
        let b = api.ok(Method::POST, "/admin/v1/budgets", body).await;
        made.push((b["id"].as_str().unwrap().to_string(), pod));
    }
    let ids_of = |pods: &[&str]| -> Vec<String> {
        made.iter()
            .filter(|(_, p)| pods.contains(p))
            .map(|(id, _)| id.clone())
            .collect()
    };
    // Every page of the list for `token`, `limit` at a time.
    let all_pages = |token: String, limit: usize| {
        let api = &api;
        async move {
            let mut ids = Vec::new();
            let mut pages = 0;
            let mut after = String::new();
            loop {
                let (s, page) = api
                    .call(
                        Method::GET,
                        &format!("/admin/v1/budgets?limit={limit}{after}"),
                        &token,
                        None,
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{page}");
                let items = page["items"].as_array().unwrap();
                assert!(items.len() <= limit, "{page}");
                assert!(
                    !items.is_empty() || pages == 0,
                    "an empty page after a cursor: {page}"
                );
                ids.extend(items.iter().map(|b| b["id"].as_str().unwrap().to_string()));
                pages += 1;
                match page["next"].as_str() {
                    Some(n) => after = format!("&after={n}"),
                    None => return (ids, pages),
                }
            }
        }
    };
    for (who, token) in &org.tokens {
        let want = match who {
            Who::Bootstrap | Who::PlatformAdmin | Who::Finops | Who::RiskOfficer | Who::Auditor => {
                ids_of(&["org", "a", "b"])
            }
            Who::Nobody => Vec::new(),
            // Pod roles are in pod A only.
            _ => ids_of(&["a"]),
        };
        let (s, whole) = api
            .call(Method::GET, "/admin/v1/budgets", token, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{who:?}: {whole}");
        let got: Vec<String> = whole["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "{who:?}: oldest first, only what it may read");
        assert!(whole["next"].is_null(), "{who:?}: {whole}");
        let (paged, pages) = all_pages(token.clone(), 2).await;
        assert_eq!(paged, want, "{who:?}: the pages, joined");
        assert_eq!(
            pages,
            want.len().div_ceil(2).max(1),
            "{who:?}: no page left empty"
        );
    }
    // Each item carries its spend; the cursor and the size are checked.
    let (_, one) = api
        .call(Method::GET, "/admin/v1/budgets?limit=1", &api.admin, None)
        .await;
    assert_eq!(one["items"][0]["id"], made[0].0.as_str());
    assert_eq!(one["items"][0]["spent_nano_usd"], 0);
    assert_eq!(one["next"], made[0].0.as_str());
    for bad in ["after=abc", "limit=0", "limit=201", "limit=%2B5"] {
        let (s, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/budgets?{bad}"),
                &api.admin,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

#[tokio::test]
async fn every_mutation_is_audited() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let (_, events) = api
        .call(Method::GET, "/admin/v1/audit?limit=200", &api.admin, None)
        .await;
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "admin_token.generate",
        "pod.create",
        "user.create",
        "member.set",
        "token.create",
        "use_case.create",
        "use_case.stage",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let text = events.to_string();
    for (_, secret) in &org.tokens {
        assert!(
            !text.contains(secret.as_str()),
            "no secret in the audit trail"
        );
    }
}

/// Failed logins are throttled per client address: after 10 in a second, that address is refused
/// with 429 before its token is checked (the right token too), while another address is served.
#[tokio::test]
async fn failed_admin_logins_are_throttled_per_address() {
    // A manual clock: the one-second window cannot turn during the burst.
    let clock = tollgate_types::clock::Clock::manual(tollgate_store::now_ms());
    let (g, admin) = planes::serve_at(CONFIG, clock.clone()).await;
    let client = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let me = |c: &reqwest::Client, token: &str| {
        c.get(format!("{}/admin/v1/me", g.url))
            .bearer_auth(token)
            .send()
    };
    let (attacker, other) = (client([127, 0, 0, 1]), client([127, 0, 0, 2]));
    let mut statuses = Vec::new();
    for i in 0..11 {
        statuses.push(
            me(&attacker, &format!("tgu_wrong_{i}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
    let right = me(&attacker, &admin).await.unwrap();
    assert_eq!(right.status(), 429, "throttled before the token is checked");
    assert_eq!(right.headers()["retry-after"], "1");
    let body: Value = right.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_failed_authentications");
    assert_eq!(
        me(&other, &admin).await.unwrap().status(),
        200,
        "another address is served"
    );
    // The next second, the right token works again.
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(me(&attacker, &admin).await.unwrap().status(), 200);
    // The attack shows in the metrics: 10 tokens rejected, 2 requests refused unchecked.
    let metrics = reqwest::get(format!("{}/metrics", g.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "tollgate_admin_auth_failures_total{outcome=\"rejected\"} 10",
        "tollgate_admin_auth_failures_total{outcome=\"throttled\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn people_of_other_pods_answer_like_unknown_ids() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let token = |w: Who| org.tokens.iter().find(|(x, _)| *x == w).unwrap().1.clone();
    let (lead, builder) = (token(Who::Lead), token(Who::Builder));
    let (a, b) = (&org.pods[0], &org.pods[1]);
    let stranger = api
        .ok(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "stranger@example.com", "name": "Stranger"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.ok(
        Method::PUT,
        &format!("/admin/v1/pods/{b}/members/{stranger}"),
        json!({"role": "builder"}),
    )
    .await;
    let put = async |user: &str| {
        api.call(
            Method::PUT,
            &format!("/admin/v1/pods/{a}/members/{user}"),
            &lead,
            Some(json!({"role": "viewer"})),
        )
        .await
    };
    let (s1, v1) = put(&stranger).await;
    let (s2, v2) = put("usr_01a22b000ec8716d9db95649180028f0").await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    let strip = |v: &Value, id: &str| v.to_string().replace(id, "ID");
    assert_eq!(
        strip(&v1, &stranger),
        strip(&v2, "usr_01a22b000ec8716d9db95649180028f0")
    );
    let (s, v) = api
        .call(
            Method::GET,
            &format!("/admin/v1/users/{stranger}"),
            &lead,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(!v.to_string().contains("stranger@example.com"));
    // A member of the lead's pod can be given another role.
    let (s, v) = put(&org.newcomer).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let key = async |user: &str| {
        api.call(
            Method::POST,
            "/admin/v1/keys",
            &builder,
            Some(json!({"use_case_id": org.use_cases[0], "name": "k", "user_id": user})),
        )
        .await
    };
    let (s1, v1) = key(&stranger).await;
    let (s2, v2) = key("usr_missing").await;
    assert_eq!((s1, s2), (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST));
    assert_eq!(strip(&v1, &stranger), strip(&v2, "usr_missing"));
    assert_eq!(v1["error"]["param"], "user_id");
    let (s, v) = key(&org.newcomer).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a member of the pod may hold a key: {v}"
    );
}

#[tokio::test]
async fn bad_input_on_the_admin_api() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let t = api.admin.clone();
    let uc = &org.use_cases[0];
    let cases: Vec<(Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": 5})),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": "x", "colour": "red"})),
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        ),
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": ""})),
            StatusCode::BAD_REQUEST,
            "1–100 characters",
        ),
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": "red\u{1b}[31mpod"})),
            StatusCode::BAD_REQUEST,
            "control or bidirectional-override characters",
        ),
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": "pod\u{202e}gnp.exe"})),
            StatusCode::BAD_REQUEST,
            "control or bidirectional-override characters",
        ),
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": "a\rb"})),
            StatusCode::BAD_REQUEST,
            "control or bidirectional-override characters",
        ),
        (
            Method::POST,
            "/admin/v1/users".into(),
            Some(json!({"email": "ann\u{202e}@example.com", "name": "Ann"})),
            StatusCode::BAD_REQUEST,
            "`email` must be an e-mail address",
        ),
        (
            Method::POST,
            "/admin/v1/users".into(),
            Some(json!({"email": "ann\u{1b}[31m@example.com", "name": "Ann"})),
            StatusCode::BAD_REQUEST,
            "`email` must be an e-mail address",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(json!({"value_model": {"kpi": "k".repeat(201)}})),
            StatusCode::BAD_REQUEST,
            "`value_model.kpi` must be at most 200 characters",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(json!({"value_model": {"driver": "cost_reduction"}})),
            StatusCode::BAD_REQUEST,
            "`value_model.driver` must be one of efficiency, revenue, experience, risk",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(
                json!({"value_model": {"value_per_outcome_nano_usd": 10_000_000_000_000_001_u64}}),
            ),
            StatusCode::BAD_REQUEST,
            "`value_model.value_per_outcome_nano_usd` must be at most 10000000000000000",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(json!({"value_model": {"owner": "o".repeat(201)}})),
            StatusCode::BAD_REQUEST,
            "`value_model.owner` must be at most 200 characters",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(json!({"value_model": {"assisted_minutes_per_task": -1}})),
            StatusCode::BAD_REQUEST,
            "`value_model.assisted_minutes_per_task` must be a number of minutes, 0 to 1,000,000",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(json!({"value_model": {"volume_per_month": -5}})),
            StatusCode::BAD_REQUEST,
            "volume_per_month",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(json!({"value_model": {"driver": "d".repeat(70_000)}})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 65536 bytes",
        ),
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": "pod-a"})),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            Method::POST,
            "/admin/v1/users".into(),
            Some(json!({"email": "not-an-address", "name": "x"})),
            StatusCode::BAD_REQUEST,
            "e-mail",
        ),
        (
            Method::POST,
            "/admin/v1/users".into(),
            Some(json!({"email": "u1@example.com", "name": "x"})),
            StatusCode::CONFLICT,
            "already exists",
        ),
        // The same address in other letters' case is the same person.
        (
            Method::POST,
            "/admin/v1/users".into(),
            Some(json!({"email": "U1@Example.COM", "name": "x"})),
            StatusCode::CONFLICT,
            "already exists",
        ),
        // A name with something invisible in it would be a second `pod-a` no one can tell apart.
        (
            Method::POST,
            "/admin/v1/pods".into(),
            Some(json!({"name": "pod\u{200b}-a"})),
            StatusCode::BAD_REQUEST,
            "must not contain invisible characters",
        ),
        (
            Method::POST,
            "/admin/v1/users".into(),
            Some(json!({"email": "z@example.com", "name": "x", "org_role": "emperor"})),
            StatusCode::BAD_REQUEST,
            "org_role",
        ),
        (
            Method::GET,
            "/admin/v1/pods/pod_missing".into(),
            None,
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            Method::GET,
            "/admin/v1/use-cases/uc_missing".into(),
            None,
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            "/admin/v1/keys/key_missing/revoke".into(),
            None,
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            Method::PUT,
            format!("/admin/v1/pods/{}/members/usr_missing", org.pods[0]),
            Some(json!({"role": "lead"})),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            Method::PUT,
            format!("/admin/v1/pods/{}/members/{}", org.pods[0], org.user_ids[0]),
            Some(json!({"role": "boss"})),
            StatusCode::BAD_REQUEST,
            "role",
        ),
        (
            Method::POST,
            "/admin/v1/use-cases".into(),
            Some(json!({"pod_id": org.pods[0], "name": "uc"})),
            StatusCode::CONFLICT,
            "already has a use case",
        ),
        (
            Method::POST,
            "/admin/v1/use-cases".into(),
            Some(json!({"pod_id": org.pods[0], "name": "y", "routes": ["nope"]})),
            StatusCode::BAD_REQUEST,
            "unknown route",
        ),
        (
            Method::POST,
            "/admin/v1/use-cases".into(),
            Some(
                json!({"pod_id": org.pods[0], "name": "y", "scores": {"impact": 9, "feasibility": 1, "data_readiness": 1, "risk": 1, "time_to_impact": 1}}),
            ),
            StatusCode::BAD_REQUEST,
            "scores.impact",
        ),
        (
            Method::POST,
            "/admin/v1/use-cases".into(),
            Some(json!({"pod_id": "pod_missing", "name": "y"})),
            StatusCode::NOT_FOUND,
            "not found",
        ),
        (
            Method::POST,
            format!("/admin/v1/use-cases/{uc}/stage"),
            Some(json!({"to": "retired"})),
            StatusCode::BAD_REQUEST,
            "reason",
        ),
        (
            Method::POST,
            format!("/admin/v1/use-cases/{uc}/stage"),
            Some(json!({"to": "proposed", "reason": ""})),
            StatusCode::BAD_REQUEST,
            "reason",
        ),
        (
            Method::POST,
            format!("/admin/v1/use-cases/{uc}/stage"),
            Some(json!({"to": "pilot", "reason": "again"})),
            StatusCode::CONFLICT,
            "cannot move from pilot to pilot",
        ),
        (
            Method::POST,
            "/admin/v1/keys".into(),
            Some(json!({"use_case_id": uc, "name": "k", "scopes": ["other"]})),
            StatusCode::BAD_REQUEST,
            "not one of the use case's routes",
        ),
        (
            Method::POST,
            "/admin/v1/keys".into(),
            Some(json!({"use_case_id": uc, "name": "k", "expires_at": "yesterday"})),
            StatusCode::BAD_REQUEST,
            "RFC 3339",
        ),
        (
            Method::POST,
            "/admin/v1/keys".into(),
            Some(json!({"use_case_id": uc, "name": "k", "expires_at": "2001-01-01T00:00:00Z"})),
            StatusCode::BAD_REQUEST,
            "future",
        ),
        (
            Method::GET,
            "/admin/v1/pods?limit=201".into(),
            None,
            StatusCode::BAD_REQUEST,
            "from 1 to 200",
        ),
        (
            Method::PATCH,
            format!("/admin/v1/use-cases/{uc}"),
            Some(json!({"description": "fine\nthen \u{202e}reversed"})),
            StatusCode::BAD_REQUEST,
            "`description` must not contain control or bidirectional-override characters",
        ),
        (
            Method::GET,
            "/admin/v1/pods?limit=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            Method::GET,
            "/admin/v1/pods?colour=red".into(),
            None,
            StatusCode::BAD_REQUEST,
            "unknown query parameter",
        ),
        (
            Method::GET,
            "/admin/v1/use-cases?stage=done".into(),
            None,
            StatusCode::BAD_REQUEST,
            "stage",
        ),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, v) = api.call(method.clone(), &path, &t, body.clone()).await;
        assert_eq!(got, status, "{method} {path} {body:?}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{method} {path}: {msg:?} lacks {needle:?}"
        );
    }
    // The edges of what is allowed are allowed.
    let (s, v) = api
        .call(Method::GET, "/admin/v1/pods?limit=200", &t, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/use-cases/{uc}"),
            &t,
            Some(json!({"description": "line one\n\tline two"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "line breaks and tabs are fine: {v}");
    let (s, _) = api
        .call(Method::GET, "/admin/v1/pods", "tga_wrong", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let resp = api
        .router
        .clone()
        .oneshot(Request::get("/admin/v1/pods").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// A use case with `fields` in a new pod, moved through `stages`; its id.
/// JSON Schema (and so the OpenAPI document) counts `151.0` as an integer: the admin API reads
/// it as one, whatever its error wording says about other numbers.
#[tokio::test]
async fn whole_numbers_written_with_a_fraction_are_integers() {
    let api = Api::new(CONFIG).await;
    let uc = new_use_case(&api, json!({"name": "floats", "routes": ["chat"]}), &[]).await;
    let path = format!("/admin/v1/use-cases/{uc}");
    let (s, v) = api
        .call(
            Method::PATCH,
            &path,
            &api.admin,
            Some(json!({"limits": {"concurrent_requests": 151.0, "tokens_per_minute": 2e3}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["limits"]["concurrent_requests"], 151);
    assert_eq!(v["limits"]["tokens_per_minute"], 2000);
    for bad in [json!(151.5), json!(-1.0), json!("151")] {
        let (s, v) = api
            .call(
                Method::PATCH,
                &path,
                &api.admin,
                Some(json!({"limits": {"concurrent_requests": bad}})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(
            v["error"]["param"], "limits.concurrent_requests",
            "{bad}: {v}"
        );
    }
}

async fn new_use_case(api: &Api, mut fields: Value, stages: &[&str]) -> String {
    let pod = api
        .ok(
            Method::POST,
            "/admin/v1/pods",
            json!({"name": tollgate_store::new_id("p")}),
        )
        .await;
    fields["pod_id"] = pod["id"].clone();
    let uc = api.ok(Method::POST, "/admin/v1/use-cases", fields).await;
    let id = uc["id"].as_str().unwrap().to_string();
    for to in stages {
        api.stage(&id, to, "test").await;
    }
    id
}

async fn production_key(
    api: &Api,
    routes: Value,
    caps: Value,
    stage: &[&str],
) -> (String, String, String) {
    let id = new_use_case(
        api,
        json!({"name": "svc", "routes": routes, "pilot_caps": caps}),
        stage,
    )
    .await;
    let k = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": id, "name": "k"}),
        )
        .await;
    (
        id,
        k["key"]["id"].as_str().unwrap().to_string(),
        k["secret"].as_str().unwrap().to_string(),
    )
}

/// The data plane reached through a real upstream, so "admitted" means 200.
#[tokio::test]
async fn key_lifecycle_create_use_expire_revoke_rotate() {
    let s = common::sim(Default::default()).await;
    // A manual clock: expiry and the rotation's grace period are stepped over, not slept through.
    let clock = tollgate_types::clock::Clock::manual(tollgate_store::now_ms());
    let api = Api::new_at(&common::two_route_config(&s.url), clock.clone()).await;
    let (uc, key_id, secret) =
        production_key(&api, json!(["m"]), json!({}), &["pilot", "production"]).await;
    assert!(secret.starts_with("tg_") && secret.len() >= 46);
    assert_eq!(
        api.chat(&secret, "m", None).await.0,
        StatusCode::OK,
        "a new key works at once"
    );
    // The store never holds the key itself.
    let (_, listed) = api
        .call(
            Method::GET,
            &format!("/admin/v1/keys?use_case_id={uc}"),
            &api.admin,
            None,
        )
        .await;
    assert!(!listed.to_string().contains(&secret[3..]));

    // Expiry.
    let soon = tollgate_types::time::rfc3339(clock.now_ms() + 400);
    let k = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc, "name": "short", "expires_at": soon}),
        )
        .await;
    let short = k["secret"].as_str().unwrap().to_string();
    assert_eq!(api.chat(&short, "m", None).await.0, StatusCode::OK);
    clock.advance(std::time::Duration::from_millis(400));
    assert_eq!(
        api.chat(&short, "m", None).await.0,
        StatusCode::UNAUTHORIZED,
        "expired"
    );

    // Rotation with a grace period: both work, then only the new one.
    let r = api
        .ok(
            Method::POST,
            &format!("/admin/v1/keys/{key_id}/rotate"),
            json!({"grace_seconds": 1}),
        )
        .await;
    let new_secret = r["new"]["secret"].as_str().unwrap().to_string();
    assert_eq!(
        api.chat(&secret, "m", None).await.0,
        StatusCode::OK,
        "old key during the grace period"
    );
    assert_eq!(
        api.chat(&new_secret, "m", None).await.0,
        StatusCode::OK,
        "new key"
    );
    clock.advance(std::time::Duration::from_millis(999));
    assert_eq!(
        api.chat(&secret, "m", None).await.0,
        StatusCode::OK,
        "old key in the last millisecond of its one-second grace"
    );
    clock.advance(std::time::Duration::from_millis(1));
    assert_eq!(
        api.chat(&secret, "m", None).await.0,
        StatusCode::UNAUTHORIZED,
        "old key after the grace period"
    );
    assert_eq!(api.chat(&new_secret, "m", None).await.0, StatusCode::OK);
    let (s2, _) = api
        .call(
            Method::POST,
            &format!("/admin/v1/keys/{key_id}/rotate"),
            &api.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        s2,
        StatusCode::CONFLICT,
        "a rotated key cannot be rotated again"
    );

    // Revocation: rejected on the next request.
    let new_id = r["new"]["key"]["id"].as_str().unwrap();
    api.ok(
        Method::POST,
        &format!("/admin/v1/keys/{new_id}/revoke"),
        json!(null),
    )
    .await;
    assert_eq!(
        api.chat(&new_secret, "m", None).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );

    // The grace period may be 7 days to the second, and not one second more.
    let k = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc, "name": "long-grace"}),
        )
        .await;
    let long_id = k["key"]["id"].as_str().unwrap();
    let (s, v) = api
        .call(
            Method::POST,
            &format!("/admin/v1/keys/{long_id}/rotate"),
            &api.admin,
            Some(json!({"grace_seconds": 604_801})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["param"], "grace_seconds");
    let r = api
        .ok(
            Method::POST,
            &format!("/admin/v1/keys/{long_id}/rotate"),
            json!({"grace_seconds": 604_800}),
        )
        .await;
    assert_eq!(
        r["old"]["revoked_at"],
        tollgate_types::time::rfc3339(clock.now_ms() + 604_800_000).as_str(),
        "{r}"
    );
}

#[tokio::test]
async fn stages_and_pilot_caps_on_the_data_plane() {
    let s = common::sim(Default::default()).await;
    let api = Api::new(&common::two_route_config(&s.url)).await;
    let (uc, key_id, key) = production_key(
        &api,
        json!(["m"]),
        json!({"max_requests_per_day": 3, "max_end_users_per_day": 2}),
        &[],
    )
    .await;
    let (st, v) = api.chat(&key, "m", None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("use_case_not_live")),
        "proposed: {v}"
    );
    api.stage(&uc, "pilot", "pilot starts").await;
    assert_eq!(
        api.chat(&key, "m", Some("ann")).await.0,
        StatusCode::OK,
        "pilot"
    );
    assert_eq!(api.chat(&key, "m", Some("bob")).await.0, StatusCode::OK);
    let (st, v) = api.chat(&key, "m", Some("cy")).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("pilot_cap_reached")),
        "third user: {v}"
    );
    assert_eq!(
        api.chat(&key, "m", Some("ann")).await.0,
        StatusCode::OK,
        "third request"
    );
    let (st, v) = api.chat(&key, "m", Some("ann")).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("pilot_cap_reached")),
        "fourth request: {v}"
    );
    api.stage(&uc, "production", "gates passed").await;
    assert_eq!(
        api.chat(&key, "m", Some("dee")).await.0,
        StatusCode::OK,
        "production has no pilot caps"
    );
    // A route of the config that is not the use case's is invisible; `/v1/models` agrees.
    assert_eq!(api.chat(&key, "c", None).await.0, StatusCode::NOT_FOUND);
    api.stage(&uc, "retired", "replaced").await;
    let (st, v) = api.chat(&key, "m", None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("use_case_retired"))
    );
    // The refusals, per use case and code (they never reach the ledger).
    let text = api.gw.metrics.render();
    for (code, n) in [
        ("use_case_not_live", 1),
        ("pilot_cap_reached", 2),
        ("use_case_retired", 1),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!(
                "tollgate_use_case_refusals_total{{use_case=\"{uc}\""
            )) && l.ends_with(&format!("kind=\"{code}\"}} {n}"))),
            "no {code} refusal counted {n} times in\n{text}"
        );
    }
    let (_, history) = api
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/stage-changes"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(history["next"], Value::Null, "three changes fit on a page");
    let steps: Vec<(&str, &str, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["to"].as_str().unwrap(),
                c["actor"].as_str().unwrap(),
                c["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("pilot", "admin", "pilot starts"),
            ("production", "admin", "gates passed"),
            ("retired", "admin", "replaced")
        ]
    );
    // A page at a time: `next` is the last change of its page, and the pages add up to the whole.
    let all: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let (mut paged, mut query) = (Vec::new(), "limit=2".to_string());
    loop {
        let (st, page) = api
            .call(
                Method::GET,
                &format!("/admin/v1/use-cases/{uc}/stage-changes?{query}"),
                &api.admin,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{query}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        assert!(paged.len() <= all.len(), "the pages do not end: {paged:?}");
        paged.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(n) => {
                assert_eq!(Some(n), paged.last().map(String::as_str));
                query = format!("limit=2&after={n}");
            }
            None => break,
        }
    }
    assert_eq!(paged, all);
    // A cursor that was never this list's `next` is refused, naming `after`: malformed, of
    // another kind, or a well-formed id that is not one of this use case's changes.
    for after in [
        "x".to_string(),
        key_id.clone(),
        format!("stg_{}", "0".repeat(32)),
        all[0].to_uppercase(),
    ] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/use-cases/{uc}/stage-changes?after={after}"),
                &api.admin,
                None,
            )
            .await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (StatusCode::BAD_REQUEST, Some("after")),
            "after={after}: {v}"
        );
    }
    for limit in ["0", "201", "x"] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/use-cases/{uc}/stage-changes?limit={limit}"),
                &api.admin,
                None,
            )
            .await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (StatusCode::BAD_REQUEST, Some("limit")),
            "limit={limit}: {v}"
        );
    }
}

#[tokio::test]
async fn scoped_keys_see_only_their_routes() {
    let s = common::sim(Default::default()).await;
    let api = Api::new(&common::two_route_config(&s.url)).await;
    let (uc, _, _) =
        production_key(&api, json!(["m", "c"]), json!({}), &["pilot", "production"]).await;
    let k = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc, "name": "scoped", "scopes": ["c"]}),
        )
        .await;
    let scoped = k["secret"].as_str().unwrap();
    assert_eq!(api.chat(scoped, "c", None).await.0, StatusCode::OK);
    let (st, v) = api.chat(scoped, "m", None).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("route_not_in_key_scope"))
    );
    let resp = api
        .router
        .clone()
        .oneshot(
            Request::get("/v1/models")
                .header("authorization", format!("Bearer {scoped}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let models: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c"]);
    // One model at a time says the same: a route outside the key's scopes does not exist for it.
    for (model, status) in [("c", StatusCode::OK), ("m", StatusCode::NOT_FOUND)] {
        let resp = api
            .router
            .clone()
            .oneshot(
                Request::get(format!("/v1/models/{model}"))
                    .header("authorization", format!("Bearer {scoped}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "/v1/models/{model}");
    }
}

/// With the database gone, known keys keep working from the snapshot and unknown keys get 503.
#[tokio::test]
async fn database_unavailable_known_keys_work_unknown_get_503() {
    let s = common::sim(Default::default()).await;
    let api = Api::new(&common::two_route_config(&s.url)).await;
    let (_, _, key) = production_key(&api, json!(["m"]), json!({}), &["pilot", "production"]).await;
    api.gw.store.close().await;
    assert!(
        api.gw.keyring.reload().await.is_err(),
        "the reload fails with the pool closed"
    );
    assert!(!api.gw.keyring.is_healthy());
    assert_eq!(
        api.chat(&key, "m", None).await.0,
        StatusCode::OK,
        "a known key keeps working"
    );
    // Its record cannot reach the database: it goes to the local spill file, never lost.
    let stats = api.gw.books.ledger.stats();
    api.gw
        .books
        .ledger
        .until(|s| s.spilled.load(std::sync::atomic::Ordering::Relaxed) >= 1)
        .await;
    assert_eq!(stats.spilled.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert!(api.gw.config.server.data_dir.join("ledger-spill").is_dir());
    let (st, v) = api
        .chat("tg_unknown_key_while_the_database_is_down", "m", None)
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let (st, _) = api
        .call(Method::GET, "/admin/v1/me", &api.admin, None)
        .await;
    assert_eq!(st, StatusCode::OK, "the bootstrap token needs no database");
    let (st, v) = api
        .call(Method::GET, "/admin/v1/pods", &api.admin, None)
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("store_unavailable")),
        "{v}"
    );
    let (st, v) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &api.admin,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let api = Api::new(CONFIG).await;
    let (st, doc) = api
        .call(Method::GET, "/admin/v1/openapi.json", &api.admin, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/admin/v1/pods",
        "/admin/v1/pods/{id}/members/{user_id}",
        "/admin/v1/use-cases/{id}/stage",
        "/admin/v1/keys/{id}/rotate",
        "/admin/v1/audit",
        "/admin/v1/users/{id}/tokens",
        "/admin/v1/users/{id}/tokens/{token_id}/revoke",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
}

/// Every admin answer these tests see is checked against the document
/// (`planes::conformance`); the checker itself refuses a status the operation does not declare,
/// a body off its schema, a body where none is declared, and a content type not declared.
#[tokio::test]
async fn the_conformance_checker_refuses_answers_the_document_does_not_describe() {
    use planes::conformance::conforms;
    let api = Api::new(CONFIG).await;
    let (st, _) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &api.admin,
            Some(json!({"name": "conf"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, page) = api
        .call(Method::GET, "/admin/v1/pods", &api.admin, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let json = "application/json";
    assert_eq!(
        conforms("GET", "/admin/v1/pods?limit=5", 200, json, Some(&page)),
        Ok(())
    );
    let mut wrong_item = page.clone();
    wrong_item["items"][0]["name"] = json!(7);
    let mut no_items = page.clone();
    no_items.as_object_mut().unwrap().remove("items");
    for (what, status, ct, body) in [
        ("an undeclared status", 418, json, Some(page.clone())),
        ("a pod whose name is a number", 200, json, Some(wrong_item)),
        ("a page without items", 200, json, Some(no_items)),
        ("not JSON", 200, json, None),
        ("another content type", 200, "text/html", Some(page.clone())),
        (
            "an error off its schema",
            401,
            json,
            Some(json!({"error": "no"})),
        ),
    ] {
        assert!(
            conforms("GET", "/admin/v1/pods", status, ct, body.as_ref()).is_err(),
            "{what} passed"
        );
    }
    // A body where the document declares none (a budget's deletion answers 204).
    assert!(
        conforms(
            "DELETE",
            "/admin/v1/budgets/bud_1",
            204,
            "",
            Some(&json!({"x": 1}))
        )
        .is_err()
    );
    assert_eq!(
        conforms("DELETE", "/admin/v1/budgets/bud_1", 204, "", None),
        Ok(())
    );
    // Paths and methods the document does not have are not its to judge.
    assert_eq!(
        conforms("GET", "/admin/v1/nowhere", 404, json, Some(&page)),
        Ok(())
    );
}

/// Every operation of the document refuses a query parameter it does not describe — those that
/// take none too (`/me`, a single use case, the gates, budgets) — naming it, before anything
/// else is read; a parameter it describes passes that check.
#[tokio::test]
async fn every_operation_refuses_query_parameters_it_does_not_take() {
    let api = Api::new(CONFIG).await;
    let (_, doc) = api
        .call(Method::GET, "/admin/v1/openapi.json", &api.admin, None)
        .await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x_1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (st, b) = api
                .call(
                    method.clone(),
                    &format!("{concrete}?zz_not_a_param=1"),
                    &api.admin,
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{method} {path}: {b}");
            assert_eq!(
                b["error"]["param"], "zz_not_a_param",
                "{method} {path}: {b}"
            );
            assert_eq!(
                b["error"]["message"], "unknown query parameter `zz_not_a_param`",
                "{method} {path}"
            );
            // A described parameter is not what is refused.
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" {
                    let name = p["name"].as_str().unwrap();
                    let (_, b) = api
                        .call(
                            method.clone(),
                            &format!("{concrete}?{name}="),
                            &api.admin,
                            None,
                        )
                        .await;
                    assert_ne!(
                        b["error"]["message"],
                        format!("unknown query parameter `{name}`"),
                        "{method} {path}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} operations");
    // The document itself takes none; a caller without a token is told to authenticate first
    // (the parameters an operation takes are not shown to outsiders).
    let (st, b) = api
        .call(Method::GET, "/admin/v1/openapi.json?x=1", &api.admin, None)
        .await;
    assert_eq!(
        (st, &b["error"]["param"]),
        (StatusCode::BAD_REQUEST, &json!("x"))
    );
    for token in ["", "tga_not_a_token"] {
        let (st, _) = api
            .call(Method::GET, "/admin/v1/pods?x=1", token, None)
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    // A described number that is not one, or is out of its range, is named too, in one
    // wording on every route (the lists, the runs, the audit trail, a suite's version) — never
    // the parser's own words — and before anything is looked up (`uc_1` does not exist).
    let limit = "`limit` must be a whole number from 1 to 200";
    for route in [
        "/admin/v1/pods",
        "/admin/v1/keys",
        "/admin/v1/audit",
        "/admin/v1/use-cases/uc_1/eval-runs",
    ] {
        for bad in [
            "ten",
            "",
            "0",
            "201",
            "-1",
            "99999999999999999999",
            "1.5",
            "%2B5",
            "%EF%BC%95",
        ] {
            let path = format!("{route}?limit={bad}");
            let (st, b) = api.call(Method::GET, &path, &api.admin, None).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {b}");
            assert_eq!(b["error"]["param"], "limit", "{path}: {b}");
            assert_eq!(b["error"]["message"], limit, "{path}");
        }
    }
    for bad in ["v2", "", "0", "-1", "%2B5"] {
        let path = format!("/admin/v1/use-cases/uc_1/suites/s?version={bad}");
        let (st, b) = api.call(Method::GET, &path, &api.admin, None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert_eq!(b["error"]["param"], "version", "{path}: {b}");
        assert_eq!(
            b["error"]["message"], "`version` must be a whole number 1 or more",
            "{path}"
        );
    }
    let (st, b) = api
        .call(Method::GET, "/admin/v1/audit?after=-1", &api.admin, None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        b["error"]["message"], "`after` must be a whole number 0 or more",
        "{b}"
    );
    // A time or month written right but outside the ledger's range says so; a malformed one is
    // told how to write it.
    for (path, param, message) in [
        (
            "/admin/v1/reports/spend?by=pod&from=0001-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
            "`from` must be from 1970-01-01T00:00:00Z on",
        ),
        (
            "/admin/v1/kpis?from=1969-12-31T23:59:59Z&to=2026-01-01T00:00:00Z",
            "from",
            "`from` must be from 1970-01-01T00:00:00Z on",
        ),
        (
            "/admin/v1/kpis?from=2026-01-01T00:00:00Z&to=yesterday",
            "to",
            "`to` must be an RFC 3339 time like 2026-11-01T00:00:00Z",
        ),
        // The instant counts, not the year written: +14:00 moves this one into 1969.
        (
            "/admin/v1/kpis?from=1970-01-01T00:00:00%2B14:00&to=1970-01-01T01:00:00Z",
            "from",
            "`from` must be from 1970-01-01T00:00:00Z on",
        ),
        (
            "/admin/v1/reports/spend?by=day&from=1970-01-01T00:00:00%2B14:00&to=1970-01-01T01:00:00Z",
            "from",
            "`from` must be from 1970-01-01T00:00:00Z on",
        ),
        // A day that does not exist is malformed, not out of range (2027 is no leap year);
        // 29 February of a leap year out of range is out of range.
        (
            "/admin/v1/reports/spend?by=day&from=2027-02-29T00:00:00Z&to=2027-03-02T00:00:00Z",
            "from",
            "`from` must be an RFC 3339 time like 2026-11-01T00:00:00Z",
        ),
        (
            "/admin/v1/kpis?from=1968-02-29T00:00:00Z&to=2027-03-02T00:00:00Z",
            "from",
            "`from` must be from 1970-01-01T00:00:00Z on",
        ),
        // A report's window is whole hours: its `to` may not round up into the year 10000.
        (
            "/admin/v1/kpis?from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
            "to",
            "`to` must be at most 9999-12-31T23:00:00Z",
        ),
        (
            "/admin/v1/reports/spend?by=day&from=1970-01-01T00:00:00Z&to=9999-12-31T23:00:00.001Z",
            "to",
            "`to` must be at most 9999-12-31T23:00:00Z",
        ),
        // An offset that moves the instant into the year 10000 is past the end, not before
        // 1970 (an outside attack, 12-04).
        (
            "/admin/v1/kpis?from=2026-12-04T12:00:00Z&to=9999-12-31T23:00:00-01:00",
            "to",
            "`to` must be at most 9999-12-31T23:00:00Z",
        ),
        (
            "/admin/v1/reports/focus?month=9999-12",
            "month",
            "`month` must be from 1970-01 to 9999-11",
        ),
        (
            "/admin/v1/reports/focus?month=1969-12",
            "month",
            "`month` must be from 1970-01 to 9999-11",
        ),
        (
            "/admin/v1/reports/focus?month=2026-13",
            "month",
            "`month` must look like 2026-11",
        ),
    ] {
        let (st, b) = api.call(Method::GET, path, &api.admin, None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert_eq!(
            (b["error"]["param"].as_str(), b["error"]["message"].as_str()),
            (Some(param), Some(message)),
            "{path}"
        );
    }
    // A list's cursor is the `next` of an earlier page: anything that cannot be one is refused
    // (it used to be read as "from the start", or as "after everything").
    for route in [
        "/admin/v1/pods",
        "/admin/v1/keys",
        "/admin/v1/users",
        "/admin/v1/use-cases",
        "/admin/v1/budgets",
    ] {
        for bad in [
            "abc",
            "-1",
            "99999999999999999999",
            "%EF%BC%95",
            "pod%20x_1",
            "_",
            // An issued cursor's shape changed: upper case, a character more, one less.
            "POD_0123456789abcdef0123456789abcdef",
            "pod_0123456789ABCDEF0123456789abcdef",
            "pod_0123456789abcdef0123456789abcdefx",
            "pod_0123456789abcdef0123456789abcde",
            "pod-x_0123456789abcdef0123456789abcdef",
            // Shaped like an id, of a kind no list holds.
            "zzz_0123456789abcdef0123456789abcdef",
        ] {
            let path = format!("{route}?after={bad}");
            let (st, b) = api.call(Method::GET, &path, &api.admin, None).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {b}");
            assert_eq!(
                (b["error"]["param"].as_str(), b["error"]["message"].as_str()),
                (
                    Some("after"),
                    Some("`after` must be the `next` of an earlier page")
                ),
                "{path}"
            );
        }
    }
    // In range, the lookup answers: a 404 for the use case that is not there.
    let (st, b) = api
        .call(
            Method::GET,
            "/admin/v1/use-cases/uc_1/suites/s?version=2",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    // An id that is not there is quoted to 64 characters, however long it was (a path id, a
    // query filter, a body field).
    let id = "V".repeat(5000);
    for (method, path, body) in [
        (Method::GET, format!("/admin/v1/pods/{id}"), None),
        (
            Method::GET,
            format!("/admin/v1/kpis?use_case_id={id}"),
            None,
        ),
        (
            Method::POST,
            "/admin/v1/keys".to_string(),
            Some(json!({"use_case_id": id, "name": "k"})),
        ),
    ] {
        let (st, b) = api.call(method, &path, &api.admin, body).await;
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(st, StatusCode::NOT_FOUND, "{}", &path[..30]);
        assert!(
            message.contains(&"V".repeat(64)) && message.chars().count() < 120,
            "{}: {message}",
            &path[..30]
        );
    }
    // The routes the outside attack named.
    for path in [
        "/admin/v1/gates?q=1",
        "/admin/v1/me?q=1",
        "/admin/v1/budgets?q=1",
        "/admin/v1/use-cases/uc_1?x=1",
    ] {
        let (st, b) = api.call(Method::GET, path, &api.admin, None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {b}");
    }
}

/// An admin body must be declared JSON: a form, `text/plain`, a non-JSON `+` type, another
/// charset, or no content type at all is a 415 in the API's shape that says what to send, and
/// nothing is created; `application/json` with `charset=utf-8` is read. A request without a
/// body needs no content type.
#[tokio::test]
async fn admin_bodies_must_be_declared_json() {
    let api = Api::new(CONFIG).await;
    let send = |ct: Option<&'static str>, name: &'static str| {
        let mut req = Request::post("/admin/v1/pods")
            .header("authorization", format!("Bearer {}", api.admin));
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let body = json!({"name": name}).to_string();
        let router = api.router.clone();
        async move {
            let resp = router
                .oneshot(req.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some("application/json; charset=latin1"),
    ] {
        let (st, b) = send(ct, "refused-pod").await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}: {b}");
        assert_eq!(b["error"]["code"], "unsupported_media_type", "{ct:?}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("send the body as `content-type: application/json`"),
            "{b}"
        );
    }
    let (_, pods) = api
        .call(Method::GET, "/admin/v1/pods", &api.admin, None)
        .await;
    assert!(
        !pods.to_string().contains("refused-pod"),
        "a refused body created nothing: {pods}"
    );
    // An unknown name or field in a body is quoted to 64 characters, the whole answer small.
    let long = "V".repeat(5000);
    for body in [
        json!({"email": "b@x.io", "name": "B", "org_role": long}),
        json!({"email": "b@x.io", "name": "B", long.clone(): 1}),
    ] {
        let (st, b) = api
            .call(Method::POST, "/admin/v1/users", &api.admin, Some(body))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b.to_string().len() < 700,
            "{} bytes: {b}",
            b.to_string().len()
        );
        assert!(
            b.to_string().contains(&format!("`{}…`", "V".repeat(64))),
            "{b}"
        );
    }
    let (st, b) = send(Some("application/json; charset=UTF-8"), "kept-pod").await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    // An empty body is told as empty, content type or not.
    let req = Request::post("/admin/v1/pods")
        .header("authorization", format!("Bearer {}", api.admin))
        .body(Body::empty())
        .unwrap();
    let resp = api.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let b: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        b["error"]["message"],
        "the request body is empty; expected a JSON object"
    );
}

/// Two instances on one database: a key issued through one reaches the other by its periodic
/// refresh, and a revocation too.
#[tokio::test]
async fn a_second_instance_picks_up_changes_by_refreshing() {
    let s = common::sim(Default::default()).await;
    let yaml = format!(
        "server: {{ key_refresh_ms: 100 }}\n{}",
        common::two_route_config(&s.url)
    );
    let a = Api::new(&yaml).await;
    let mut cfg = common::config(&yaml);
    cfg.server.data_dir = a.gw.config.server.data_dir.clone();
    let b_gw = Gateway::open(cfg).await.unwrap();
    let b_ring = b_gw.keyring.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(tollgate_gateway::serve(
        b_gw,
        axum::Router::new(),
        listener,
        std::future::pending(),
    ));

    let (_, key_id, secret) =
        production_key(&a, json!(["m"]), json!({}), &["pilot", "production"]).await;
    let client = reqwest::Client::new();
    let call_b = || {
        client
            .post(format!("{b_url}/v1/chat/completions"))
            .bearer_auth(&secret)
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}))
            .send()
    };
    // B learns of A's changes from its periodic reload: asked again after each one.
    let wait_for = async |want: u16| {
        loop {
            let seen = b_ring.reloads();
            if call_b().await.unwrap().status().as_u16() == want {
                return;
            }
            b_ring.reloaded_since(seen).await;
        }
    };
    wait_for(200).await;
    a.ok(
        Method::POST,
        &format!("/admin/v1/keys/{key_id}/revoke"),
        json!(null),
    )
    .await;
    wait_for(401).await;
}

async fn limited_use_case(api: &Api, uc_limits: Value) -> String {
    new_use_case(
        api,
        json!({"name": "limited", "routes": ["m"], "limits": uc_limits}),
        &["pilot", "production"],
    )
    .await
}

async fn limited_key(api: &Api, uc: &str, limits: Value) -> String {
    let k = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc, "name": "k", "limits": limits}),
        )
        .await;
    assert_eq!(k["key"]["limits"], limits);
    k["secret"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rate_limits_on_requests_and_concurrency() {
    // Each answer takes a second: the four sent at once below are all in flight together even on
    // a machine that stalls for a moment.
    let s = common::sim(tollgate_simulator::SimConfig {
        latency: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    // A manual clock 20 s into a minute: the window cannot turn during the test, and its reset is
    // known exactly.
    let start = tollgate_store::now_ms() / 60_000 * 60_000 + 20_000;
    let api = Api::new_at(
        &common::two_route_config(&s.url),
        tollgate_types::clock::Clock::manual(start),
    )
    .await;
    let uc = limited_use_case(&api, json!({"concurrent_requests": 2})).await;
    let rpm = limited_key(&api, &uc, json!({"requests_per_minute": 2})).await;
    let send = || {
        let req = Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {rpm}"))
            .body(Body::from(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}).to_string(),
            ))
            .unwrap();
        api.router.clone().oneshot(req)
    };
    // Successful answers carry the limit too, with what is left after them.
    let mut left = Vec::new();
    for _ in 0..2 {
        let resp = send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-ratelimit-limit-requests"], "2");
        assert_eq!(resp.headers()["x-ratelimit-reset-requests"], "40s");
        assert!(!resp.headers().contains_key("x-ratelimit-limit-tokens"));
        left.push(resp.headers()["x-ratelimit-remaining-requests"].clone());
    }
    let resp = send().await.unwrap();
    assert_eq!(left, ["1", "0"]);
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "40");
    assert_eq!(resp.headers()["x-ratelimit-limit-requests"], "2");
    assert_eq!(resp.headers()["x-ratelimit-remaining-requests"], "0");
    assert_eq!(resp.headers()["x-ratelimit-reset-requests"], "40s");
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_requests");

    // Four at once against a use case that allows two in flight.
    let free = limited_key(&api, &uc, json!({})).await;
    let (a, b, c, d) = tokio::join!(
        api.chat(&free, "m", None),
        api.chat(&free, "m", None),
        api.chat(&free, "m", None),
        api.chat(&free, "m", None)
    );
    let statuses = [a.0, b.0, c.0, d.0];
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        2,
        "{statuses:?}"
    );
    for (st, v) in [a, b, c, d] {
        if st != StatusCode::OK {
            assert_eq!(v["error"]["code"], "rate_limit_concurrency");
        }
    }
    assert_eq!(
        api.chat(&free, "m", None).await.0,
        StatusCode::OK,
        "slots come back when requests end"
    );
    let (st, v) = api
        .call(
            Method::POST,
            "/admin/v1/keys",
            &api.admin,
            Some(json!({"use_case_id": uc, "name": "z", "limits": {"requests_per_minute": 0}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
}

/// 500 requests at once with `max_tokens` against a tokens-per-minute limit: tokens are reserved
/// before each call, so no more requests are admitted than the limit covers and the tokens used
/// never exceed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limit_holds_under_500_concurrent_requests() {
    // Answers always run to `max_tokens` (100), so each request uses 4 + 100 tokens and reserves
    // 7 (the prompt as the tokenizer counts it with chat overhead) + 100.
    let s = common::sim(tollgate_simulator::SimConfig {
        default_output_tokens: 400,
        ..Default::default()
    })
    .await;
    // A manual clock: the minute window cannot turn during the burst.
    let api = Arc::new(
        Api::new_at(
            &common::two_route_config(&s.url),
            tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
        )
        .await,
    );
    let limit = 50 * 107;
    let uc = limited_use_case(&api, json!({"tokens_per_minute": limit})).await;
    let key = limited_key(&api, &uc, json!({})).await;
    let mut ok = 0u64;
    let mut limited = 0u64;
    for (status, code) in blast(&api, &key, 500).await {
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(code.as_deref(), Some("rate_limit_tokens"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let used = api.gw.gate.limiter.tokens_in_use(&format!("use_case:{uc}"));
    assert_eq!(ok + limited, 500);
    assert!(
        used <= limit,
        "{used} tokens used against a limit of {limit}"
    );
    // The limit covers floor(5350 / 104) = 51 requests by real use.
    assert!(ok <= 51, "{ok} admitted");
    assert!(ok >= 45, "{ok} admitted: the limit should be nearly used");
    assert_eq!(
        used,
        ok * 104,
        "every admitted request settled with its real usage"
    );
}

/// 500 requests at once with `max_tokens` against a hard budget that covers 50: the most a request
/// can cost is reserved before it is sent, so the spend never passes the budget and no more
/// requests are admitted than it covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_budget_holds_under_500_concurrent_requests() {
    let s = common::sim(tollgate_simulator::SimConfig {
        default_output_tokens: 400,
        ..Default::default()
    })
    .await;
    // A manual clock: the budget's month (in Paris) cannot turn during the burst.
    let api = Arc::new(
        Api::new_at(
            &common::two_route_config(&s.url),
            tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
        )
        .await,
    );
    let uc = limited_use_case(&api, json!({})).await;
    let key = limited_key(&api, &uc, json!({})).await;
    // gpt-4o-mini: $0.15 / $0.60 per 1M tokens. Reserved per request: 7 prompt tokens (as the
    // tokenizer counts them with chat overhead) × 150 + 100 output × 600 = 61,050 nano-USD.
    // Real cost: 4 prompt tokens (as the simulator counts) × 150 + 100 × 600 = 60,600.
    let amount = 50 * 61_050u64;
    let b = api
        .ok(Method::POST, "/admin/v1/budgets", json!({"scope": "use_case", "scope_id": uc, "amount_usd": format!("0.{amount:09}"), "period": "month", "time_zone": "Europe/Paris", "mode": "hard"}))
        .await;
    assert_eq!(b["amount_nano_usd"], amount);
    let mut ok = 0u64;
    for r in blast(&api, &key, 500).await {
        match r {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::TOO_MANY_REQUESTS, Some(code)) => assert_eq!(code, "budget_exceeded"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (_, status) = api
        .call(
            Method::GET,
            &format!("/admin/v1/budgets/{}", b["id"].as_str().unwrap()),
            &api.admin,
            None,
        )
        .await;
    let spent = status["spent_nano_usd"].as_u64().unwrap();
    assert!(spent <= amount, "spent {spent} of {amount}");
    assert!(ok <= 50, "{ok} admitted; the budget covers 50");
    assert!(ok >= 45, "{ok} admitted: the budget should be nearly used");
    assert_eq!(
        spent,
        ok * 60_600,
        "every admitted request settled with its real cost"
    );
    assert_eq!(status["reserved_nano_usd"], 0, "nothing stays reserved");
}

#[tokio::test]
async fn soft_budgets_alert_at_50_80_and_100_percent_and_never_reject() {
    let s = common::sim(tollgate_simulator::SimConfig {
        default_output_tokens: 400,
        ..Default::default()
    })
    .await;
    // The clock stands still: a day's (or month's) end passing mid-test (the suite's second run
    // starts a minute before a month ends) must not start a new period under the assertions.
    let api = Api::new_at(
        &common::two_route_config(&s.url),
        tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
    )
    .await;
    let uc = limited_use_case(&api, json!({})).await;
    let key = limited_key(&api, &uc, json!({})).await;
    // Each request costs 60,600 nano-USD (see above); the soft budget covers two.
    let b = api.ok(Method::POST, "/admin/v1/budgets", json!({"scope": "use_case", "scope_id": uc, "amount_usd": "0.0001212", "period": "day", "mode": "soft"})).await;
    let id = b["id"].as_str().unwrap().to_string();
    let send = || async {
        let req = Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}).to_string()))
            .unwrap();
        api.router.clone().oneshot(req).await.unwrap().status()
    };
    assert_eq!(send().await, StatusCode::OK);
    let alerts = |n: &str| {
        api.gw
            .gate
            .budgeter
            .alerts()
            .into_iter()
            .filter(|(b, _)| b == n)
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
    };
    assert_eq!(alerts(&id), vec![50]);
    assert_eq!(send().await, StatusCode::OK);
    assert_eq!(alerts(&id), vec![50, 80, 100]);
    assert_eq!(send().await, StatusCode::OK, "a soft budget never rejects");
    assert_eq!(
        alerts(&id),
        vec![50, 80, 100],
        "each threshold alerts once per period"
    );
    // Three requests of 60,600 nano-USD against 121,200: burn 1.5, at scrape time.
    let resp = api
        .router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let line = format!("tollgate_budget_burn_ratio{{budget=\"{id}\",scope=\"use_case\"}} 1.5");
    assert!(text.contains(&line), "no {line} in\n{text}");
    assert!(text.contains("tollgate_feedback_pending 0"), "{text}");
}

#[tokio::test]
async fn bad_input_on_budgets() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let uc = &org.use_cases[0];
    let cases = [
        (
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "-5", "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "non-negative",
        ),
        (
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "lots", "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "amount_usd",
        ),
        (
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "0", "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "greater than 0",
        ),
        (
            // Beyond what the store holds: refused, never clamped to 9,223,372,036.85.
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "10000000000", "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "must be at most 9223372036.854775807 USD",
        ),
        (
            // One nano-dollar past the largest amount.
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "9223372036.854775808", "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "must be at most 9223372036.854775807 USD",
        ),
        (
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": 5, "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "amount_usd",
        ),
        (
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "5", "period": "day", "mode": "hard", "time_zone": "Mars/Olympus_Mons"}),
            StatusCode::BAD_REQUEST,
            "unknown time zone",
        ),
        (
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "5", "period": "year", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "period",
        ),
        (
            json!({"scope": "use_case", "scope_id": "uc_missing", "amount_usd": "5", "period": "day", "mode": "hard"}),
            StatusCode::NOT_FOUND,
            "use case uc_missing not found",
        ),
        (
            json!({"scope": "use_case", "amount_usd": "5", "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "needs `scope_id`",
        ),
        (
            json!({"scope": "org", "scope_id": "x", "amount_usd": "5", "period": "day", "mode": "hard"}),
            StatusCode::BAD_REQUEST,
            "takes no `scope_id`",
        ),
        (
            json!({"scope": "org", "amount_usd": "5", "period": "day", "mode": "hard", "limit": 3}),
            StatusCode::BAD_REQUEST,
            "unknown field `limit`",
        ),
    ];
    for (body, status, needle) in cases {
        let (got, v) = api
            .call(
                Method::POST,
                "/admin/v1/budgets",
                &api.admin,
                Some(body.clone()),
            )
            .await;
        assert_eq!(got, status, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    // The largest amount the store holds is accepted, to the nano-dollar.
    let (got, v) = api
        .call(
            Method::POST,
            "/admin/v1/budgets",
            &api.admin,
            Some(json!({"scope": "use_case", "scope_id": uc, "amount_usd": "9223372036.854775807", "period": "day", "mode": "soft"})),
        )
        .await;
    assert_eq!(got, StatusCode::CREATED, "{v}");
    assert_eq!(v["amount_usd"], "9223372036.854775807");
    let (got, _) = api
        .call(
            Method::GET,
            "/admin/v1/budgets/bud_missing",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND);
    let (got, _) = api
        .call(
            Method::DELETE,
            "/admin/v1/budgets/bud_missing",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(got, StatusCode::NOT_FOUND);

    // A deleted budget's audit event says what was deleted.
    let b = api
        .ok(
            Method::POST,
            "/admin/v1/budgets",
            json!({"scope": "use_case", "scope_id": uc, "amount_usd": "12.5", "period": "week", "mode": "soft"}),
        )
        .await;
    let id = b["id"].as_str().unwrap();
    let (got, _) = api
        .call(
            Method::DELETE,
            &format!("/admin/v1/budgets/{id}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(got, StatusCode::NO_CONTENT);
    let (_, events) = api
        .call(Method::GET, "/admin/v1/audit?limit=200", &api.admin, None)
        .await;
    let deleted = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "budget.delete" && e["object_id"] == id)
        .expect("a budget.delete event");
    assert_eq!(deleted["details"]["amount_nano_usd"], 12_500_000_000u64);
    assert_eq!(deleted["details"]["scope_id"], uc.as_str());
    assert_eq!(deleted["details"]["period"], "week");
}

/// Sends `n` chat requests with `max_tokens: 100` at once; returns each status and error code.
async fn blast(api: &Arc<Api>, key: &str, n: usize) -> Vec<(StatusCode, Option<String>)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (api, key) = (api.clone(), key.to_string());
        set.spawn(async move {
            let req = Request::post("/v1/chat/completions")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from(json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}).to_string()))
                .unwrap();
            let resp = api.router.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let body: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap_or(Value::Null);
            (status, body["error"]["code"].as_str().map(str::to_string))
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// Spend reports read the hourly rollups: grouped by pod, use case, model or day, they add up to the
/// ledger; pod members see only their pods; bad ranges get specific errors.
#[tokio::test]
async fn spend_reports_by_pod_use_case_model_and_day() {
    use tollgate_store::LedgerQueries;
    let s = common::sim(Default::default()).await;
    // A manual clock: the traffic's month is the month of the showback below.
    let api = Api::new_at(
        &common::two_route_config(&s.url),
        tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
    )
    .await;
    let (uc_a, _, key_a) =
        production_key(&api, json!(["m", "c"]), json!({}), &["pilot", "production"]).await;
    let (_, _, key_b) =
        production_key(&api, json!(["m"]), json!({}), &["pilot", "production"]).await;
    for _ in 0..3 {
        assert_eq!(api.chat(&key_a, "m", None).await.0, StatusCode::OK);
        assert_eq!(api.chat(&key_a, "c", None).await.0, StatusCode::OK);
    }
    assert_eq!(api.chat(&key_b, "m", None).await.0, StatusCode::OK);
    // The ledger writes behind the answers, but a report asked at once includes them: it has
    // the ledger write its batch first.
    let range = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    let (st, r) = api
        .call(
            Method::GET,
            &format!("/admin/v1/reports/spend?by=pod&{range}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        (st, &r["total"]["requests"]),
        (StatusCode::OK, &json!(7)),
        "{r}"
    );
    let ledger = api.gw.store.record_totals(0, i64::MAX).await.unwrap();
    for by in ["pod", "use_case", "key", "route", "model", "day"] {
        let (st, r) = api
            .call(
                Method::GET,
                &format!("/admin/v1/reports/spend?by={by}&{range}"),
                &api.admin,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{by}: {r}");
        assert_eq!(r["total"]["requests"], 7, "{by}: {r}");
        assert_eq!(
            r["total"]["cost_nano_usd"], ledger.cost_nano_usd,
            "{by}: the report adds up to the ledger"
        );
        let rows = r["rows"].as_array().unwrap();
        let sum: u64 = rows
            .iter()
            .map(|x| x["cost_nano_usd"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, ledger.cost_nano_usd, "{by}");
        let expected_rows = match by {
            "pod" | "use_case" | "key" | "model" => 2,
            "route" => 2,
            _ => 1,
        };
        assert_eq!(rows.len(), expected_rows, "{by}: {r}");
    }
    let (_, by_uc) = api
        .call(
            Method::GET,
            &format!("/admin/v1/reports/spend?by=use_case&{range}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        by_uc["rows"][0]["group"],
        uc_a.as_str(),
        "most expensive first"
    );
    assert_eq!(by_uc["rows"][0]["name"], "svc");
    let (_, by_day) = api
        .call(
            Method::GET,
            &format!("/admin/v1/reports/spend?by=day&{range}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        by_day["rows"][0]["group"].as_str().unwrap().len(),
        10,
        "YYYY-MM-DD"
    );

    // Showback for a calendar month equals the explicit range of that month.
    let month = &tollgate_types::time::rfc3339(api.gw.clock.now_ms())[..7];
    let (_, by_month) = api
        .call(
            Method::GET,
            &format!("/admin/v1/reports/spend?by=pod&month={month}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        by_month["total"]["cost_nano_usd"], ledger.cost_nano_usd,
        "{by_month}"
    );
    assert!(
        by_month["from"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{month}-01T00:00:00"))
    );
    for bad in ["2026-13", "2026-1", "november"] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/reports/spend?by=pod&month={bad}"),
                &api.admin,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (st, _) = api
        .call(
            Method::GET,
            &format!("/admin/v1/reports/spend?by=pod&month={month}&from=2026-01-01T00:00:00Z"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // CSV.
    let resp = api
        .router
        .clone()
        .oneshot(
            Request::get(format!("/admin/v1/reports/spend?by=pod&{range}&format=csv"))
                .header("authorization", format!("Bearer {}", api.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.starts_with("group,name,requests,"), "{text}");
    assert_eq!(
        text.lines().count(),
        1 + 2 + 1,
        "header, two pods, total: {text}"
    );

    // A pod named like a formula is text in the CSV, never a live formula.
    let (_, uc) = api
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{uc_a}"),
            &api.admin,
            None,
        )
        .await;
    let formula = r#"=HYPERLINK("http://evil.example","x")"#;
    api.ok(
        Method::PATCH,
        &format!("/admin/v1/pods/{}", uc["pod_id"].as_str().unwrap()),
        json!({"name": formula}),
    )
    .await;
    let (text, cells) = csv_report(
        &api,
        &format!("/admin/v1/reports/spend?by=pod&{range}&format=csv"),
    )
    .await;
    assert!(
        text.contains(r#""'=HYPERLINK(""http://evil.example"",""x"")""#),
        "{text}"
    );
    assert!(
        cells.iter().all(|c| !c.starts_with(['=', '+', '@'])),
        "{cells:?}"
    );
    // The FOCUS export too (its names reach `SubAccountName`, `x_PodName` and the tags).
    let (text, cells) = csv_report(&api, &format!("/admin/v1/reports/focus?month={month}")).await;
    assert!(
        cells.iter().any(|c| c.starts_with("'=HYPERLINK")),
        "the pod's name is in the export: {text}"
    );
    assert!(
        cells.iter().all(|c| !c.starts_with(['=', '+', '@'])),
        "{cells:?}"
    );

    // Bad input.
    for (q, needle) in [
        (
            "by=pod&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "`to` must be after `from`",
        ),
        (
            "by=pod&from=2026-02-01T00:00:00.000000001Z&to=2026-02-01T00:00:00.000000002Z",
            "read to the millisecond, they are the same time",
        ),
        (
            "by=planet&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            "`by` must be",
        ),
        ("by=pod&from=yesterday&to=2026-02-01T00:00:00Z", "RFC 3339"),
        ("by=pod&to=2026-02-01T00:00:00Z", "`from` is required"),
        (
            "by=pod&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&format=xml",
            "`format`",
        ),
        (
            "by=pod&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&colour=red",
            "unknown query parameter",
        ),
        (
            "by=pod&from=2026-01-01T00:00:00%2B99:00&to=2026-02-01T00:00:00Z",
            "RFC 3339",
        ),
        (
            "by=pod&month=0000-01",
            "`month` must be from 1970-01 to 9999-11",
        ),
        ("by=pod&month=2026-1", "`month` must look like 2026-11"),
    ] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/reports/spend?{q}"),
                &api.admin,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{q}: {v}"
        );
    }
}

/// The receiver's own check of a webhook delivery, as the Standard Webhooks scheme has it: a fresh
/// `webhook-timestamp`, and a `v1,<base64>` entry of `webhook-signature` equal (in constant time)
/// to HMAC-SHA256 under `secret` of `{webhook-id}.{webhook-timestamp}.{raw body}`.
fn webhook_signed_by(secret: &[u8], headers: &http::HeaderMap, body: &[u8]) -> bool {
    use base64::Engine as _;
    use hmac::Mac as _;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sigs)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(at) = ts.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - at).abs() > 300 {
        return false;
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    sigs.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    })
}

/// Alerts reach a webhook as signed JSON POSTs (Standard Webhooks: the receiver checks the HMAC,
/// the secret itself is never sent), retried with the same `webhook-id` when the receiver fails:
/// budget thresholds and the first request of an unpriced deployment.
#[tokio::test]
async fn alerts_go_to_the_webhook_with_retries() {
    use axum::routing::post;
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = Arc::new(AtomicU32::new(0));
    // Every attempt: whether it was accepted, its headers and its raw body.
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(bool, http::HeaderMap, axum::body::Bytes)>();
    let hook = {
        let calls = calls.clone();
        axum::Router::new().route(
            "/hook",
            post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let (calls, tx) = (calls.clone(), tx.clone());
                async move {
                    // The very first delivery fails: the sender must retry it.
                    let accepted = calls.fetch_add(1, Ordering::SeqCst) != 0;
                    let _ = tx.send((accepted, headers, body));
                    if accepted {
                        StatusCode::OK
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let s = common::sim(tollgate_simulator::SimConfig {
        default_output_tokens: 400,
        ..Default::default()
    })
    .await;
    let yaml = format!(
        "alerts:\n  webhooks: [{{ url: \"{hook_url}\", secret: hook-secret }}]\n{}",
        common::two_route_config(&s.url)
    );
    // The clock stands still: a day's (or month's) end passing mid-test (the suite's second run
    // starts a minute before a month ends) must not start a new period under the assertions.
    let api = Api::new_at(
        &yaml,
        tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
    )
    .await;
    let (uc, _, key) =
        production_key(&api, json!(["m", "c"]), json!({}), &["pilot", "production"]).await;
    // 60,600 nano-USD per request on `m` (see the budget tests): this soft budget covers two.
    api.ok(Method::POST, "/admin/v1/budgets", json!({"scope": "use_case", "scope_id": uc, "amount_usd": "0.0001212", "period": "day", "mode": "soft"})).await;
    let send = |route: &'static str| {
        let req = Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(json!({"model": route, "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}).to_string()))
            .unwrap();
        api.router.clone().oneshot(req)
    };
    for route in ["m", "m", "c", "c"] {
        assert_eq!(send(route).await.unwrap().status(), StatusCode::OK);
    }
    let mut got = Vec::new();
    let (mut ids, mut refused_ids) = (Vec::new(), Vec::new());
    while got.len() < 4 {
        let (accepted, headers, raw) =
            tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
                .await
                .expect("alerts arrive")
                .unwrap();
        assert!(
            webhook_signed_by(b"hook-secret", &headers, &raw),
            "signed with the webhook's secret: {headers:?}"
        );
        assert!(
            !webhook_signed_by(b"wrong-secret", &headers, &raw),
            "a wrong secret is rejected"
        );
        let mut tampered = raw.to_vec();
        tampered.push(b' ');
        assert!(
            !webhook_signed_by(b"hook-secret", &headers, &tampered),
            "a changed body is rejected"
        );
        assert!(
            headers.get("authorization").is_none()
                && headers
                    .values()
                    .all(|v| !String::from_utf8_lossy(v.as_bytes()).contains("hook-secret")),
            "the secret is never sent: {headers:?}"
        );
        let id = headers["webhook-id"].to_str().unwrap().to_string();
        if accepted {
            ids.push(id);
            got.push(serde_json::from_slice::<Value>(&raw).unwrap());
        } else {
            refused_ids.push(id);
        }
    }
    assert_eq!(
        refused_ids,
        [ids[0].clone()],
        "the retry of the refused delivery carries its webhook-id"
    );
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        4,
        "one webhook-id per alert: {ids:?}"
    );
    let kinds: Vec<(String, Value)> = got
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["details"]["threshold_percent"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("budget_threshold".to_string(), json!(50)),
            ("budget_threshold".to_string(), json!(80)),
            ("budget_threshold".to_string(), json!(100)),
            ("unpriced_model".to_string(), Value::Null),
        ]
    );
    assert_eq!(got[3]["details"]["model"], "claude-test");
    // Named by what it covers (an org budget reads "of the org": attack 2026-12-04e).
    let message = got[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("soft budget bud_")
            && message.contains(&format!(
                " of use case {uc} passed 50 % of $0.0001212 per day"
            )),
        "{message}"
    );
    assert!(
        got.iter()
            .all(|a| a["at"].as_str().unwrap().ends_with('Z') && a["message"].is_string())
    );
    // Alerts are raised while the requests are settled, before they are answered: four requests
    // answered means every alert they raise has been raised.
    let stats = api.gw.books.alerts.stats();
    assert_eq!(
        stats.raised.load(Ordering::Relaxed),
        4,
        "the unpriced alert comes once per deployment"
    );
    // A delivery counts once the receiver has answered it.
    stats
        .until(|s| s.delivered.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed) >= 4)
        .await;
    assert_eq!(
        (
            stats.delivered.load(Ordering::Relaxed),
            stats.failed.load(Ordering::Relaxed)
        ),
        (4, 0)
    );
    assert!(rx.try_recv().is_err(), "no fifth alert");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "one failed delivery, retried"
    );
}

#[tokio::test]
async fn the_month_end_forecast_extrapolates_the_trailing_rate() {
    use tollgate_store::LedgerQueries;
    let s = common::sim(Default::default()).await;
    // The clock stands still: a day's (or month's) end passing mid-test (the suite's second run
    // starts a minute before a month ends) must not start a new period under the assertions.
    let api = Api::new_at(
        &common::two_route_config(&s.url),
        tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
    )
    .await;
    let (_, _, key) = production_key(&api, json!(["m"]), json!({}), &["pilot", "production"]).await;
    for _ in 0..4 {
        assert_eq!(api.chat(&key, "m", None).await.0, StatusCode::OK);
    }
    // The ledger writes behind the answers: wait for its count (an event, not a poll).
    api.gw.books.ledger.written_at_least(4).await;
    let spent = api
        .gw
        .store
        .record_totals(0, i64::MAX)
        .await
        .unwrap()
        .cost_nano_usd;
    let (st, f) = api
        .call(
            Method::GET,
            "/admin/v1/reports/forecast?by=pod",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{f}");
    let t = &f["total"];
    assert_eq!(t["spent_nano_usd"], spent);
    assert_eq!(
        t["window_spent_nano_usd"], spent,
        "all of it happened in the trailing window"
    );
    let (win_m, left_m) = (
        f["window_minutes"].as_u64().unwrap(),
        f["minutes_left"].as_u64().unwrap(),
    );
    assert!(
        (1..=168 * 60).contains(&win_m) && left_m < 31 * 24 * 60,
        "{f}"
    );
    assert_eq!(
        t["forecast_nano_usd"].as_u64().unwrap(),
        spent + spent * left_m / win_m,
        "the documented method"
    );
    assert_eq!(f["rows"].as_array().unwrap().len(), 1);
    assert!(f["method"].as_str().unwrap().contains("last 7 days"));
    let (st, _) = api
        .call(
            Method::GET,
            "/admin/v1/reports/forecast?by=galaxy",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// Cost advice: keys idle for 30 days, and budgets that will run out before their period ends.
#[tokio::test]
async fn cost_advice_finds_idle_keys_and_budgets_at_risk() {
    use tollgate_store::KeyQueries;
    let s = common::sim(tollgate_simulator::SimConfig {
        default_output_tokens: 400,
        ..Default::default()
    })
    .await;
    // A month's end passing mid-test would start the budget's next period: the clock stands still.
    let api = Api::new_at(
        &common::two_route_config(&s.url),
        tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
    )
    .await;
    let (uc, _, key) =
        production_key(&api, json!(["m"]), json!({}), &["pilot", "production"]).await;
    // A key issued 40 days ago and never used.
    let (mut old, _) = tollgate_gateway::keys::new_api_key(
        api.gw.keyring.secret(),
        &uc,
        None,
        "forgotten",
        None,
        None,
        "test",
    );
    old.created_at = tollgate_store::now_ms() - 40 * 86_400_000;
    api.gw.store.create_key("test", &old).await.unwrap();
    // Two requests of 30,600 nano-USD each (4 prompt tokens × 150 + 50 output × 600) against a
    // monthly budget just above them: any further spend at the trailing rate passes it.
    let b = api.ok(Method::POST, "/admin/v1/budgets", json!({"scope": "use_case", "scope_id": uc, "amount_usd": "0.0000613", "period": "month", "mode": "soft"})).await;
    for _ in 0..2 {
        let req = Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]}).to_string()))
            .unwrap();
        assert_eq!(
            api.router.clone().oneshot(req).await.unwrap().status(),
            StatusCode::OK
        );
    }
    // The ledger writes behind the answers: wait for its count (an event, not a poll).
    api.gw.books.ledger.written_at_least(2).await;
    let (st, e) = api
        .call(
            Method::GET,
            "/admin/v1/reports/advice?pod_id=x",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a filter it does not apply: {e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown query parameter `pod_id`")
    );
    let (st, a) = api
        .call(Method::GET, "/admin/v1/reports/advice", &api.admin, None)
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    let idle: Vec<&str> = a["idle_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        idle,
        [old.id.as_str()],
        "only the forgotten key: the other was just created and used"
    );
    assert!(a["idle_keys"][0]["last_used"].is_null());
    let period_end =
        tollgate_types::time::parse_rfc3339(b["period_end"].as_str().unwrap()).unwrap();
    if period_end - tollgate_store::now_ms() > 2 * 3_600_000 {
        let risk = &a["budgets_at_risk"][0];
        assert_eq!(risk["budget_id"], b["id"], "{a}");
        assert!(
            risk["projected_nano_usd"].as_u64().unwrap()
                > risk["amount_nano_usd"].as_u64().unwrap()
        );
        assert!(risk["runs_out_at"].as_str().unwrap() < risk["period_end"].as_str().unwrap());
    }
}

/// Cost advice: identical requests are counted per use case with what an exact cache would have
/// saved (delivery fields like `stream` and `user` do not make a request different), and spend on
/// a premium model is priced again on the catalog's cheaper candidate.
#[tokio::test]
async fn cost_advice_counts_duplicate_prompts_and_premium_model_spend() {
    use tollgate_store::LedgerQueries;
    let s = common::sim(Default::default()).await;
    let api = Api::new(&format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{}/v1" }}
routes:
  - name: big
    deployments: [{{ provider: sim, model: gpt-4o-2024-08-06 }}]
  - name: m
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
"#,
        s.url
    ))
    .await;
    let (uc, _, key) = production_key(
        &api,
        json!(["big", "m"]),
        json!({}),
        &["pilot", "production"],
    )
    .await;
    let same = json!([{"role": "user", "content": "What is our refund policy?"}]);
    let bodies = [
        json!({"model": "big", "messages": same, "max_tokens": 30}),
        json!({"model": "big", "messages": same, "max_tokens": 30, "stream": true}),
        json!({"model": "big", "messages": same, "max_tokens": 30, "user": "someone"}),
        json!({"max_tokens": 30, "messages": same, "model": "big"}),
        json!({"model": "big", "messages": same, "max_tokens": 31}),
        json!({"model": "m", "messages": same, "max_tokens": 30}),
        json!({"model": "m", "messages": [{"role": "user", "content": "Another question"}]}),
    ];
    for body in &bodies {
        let req = Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = api.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.into_body().collect().await.unwrap();
    }
    let n = bodies.len() as u64;
    api.gw.books.ledger.written_at_least(n).await;
    let records = api.gw.store.list_records(0, i64::MAX, 100).await.unwrap();
    assert_eq!(records.len() as u64, n);
    assert!(
        records
            .iter()
            .all(|r| r.prompt_hash.as_ref().is_some_and(|h| h.len() == 32))
    );
    let (_, a) = api
        .call(Method::GET, "/admin/v1/reports/advice", &api.admin, None)
        .await;

    // The first four are one request in four deliveries: three duplicates, each costing what the
    // first did.
    let first = records[0].cost_nano_usd.unwrap();
    assert!(records[..4].iter().all(|r| r.cost_nano_usd == Some(first)));
    let dup = &a["duplicate_prompts"][0];
    assert_eq!(dup["use_case_id"], uc.as_str(), "{a}");
    assert_eq!(dup["name"], "svc");
    assert_eq!(dup["requests"], n);
    assert_eq!(dup["duplicates"], 3, "{a}");
    assert_eq!(dup["duplicate_cost_nano_usd"], 3 * first);
    assert_eq!(dup["share_percent"], format!("{:.1}", 300.0 / n as f64));
    assert_eq!(a["duplicate_prompts"].as_array().unwrap().len(), 1);

    // gpt-4o spend, priced again at gpt-4o-mini's list prices.
    let on_4o: Vec<_> = records.iter().filter(|r| r.route == "big").collect();
    let spend: u64 = on_4o.iter().map(|r| r.cost_nano_usd.unwrap()).sum();
    let (input, cached, output): (u64, u64, u64) = on_4o.iter().fold((0, 0, 0), |t, r| {
        (
            t.0 + r.input_tokens,
            t.1 + r.cached_input_tokens,
            t.2 + r.output_tokens + r.reasoning_tokens,
        )
    });
    let on_mini =
        (input * 150_000_000 + cached * 75_000_000 + output * 600_000_000 + 500_000) / 1_000_000;
    let premium = a["premium_models"].as_array().unwrap();
    assert_eq!(
        premium.len(),
        1,
        "gpt-4o-mini has no cheaper candidate: {a}"
    );
    assert_eq!(premium[0]["model"], "gpt-4o-2024-08-06");
    assert_eq!(premium[0]["cheaper_model"], "gpt-4o-mini");
    assert_eq!(premium[0]["spend_nano_usd"], spend);
    assert_eq!(premium[0]["cost_on_cheaper_nano_usd"], on_mini);
    assert_eq!(premium[0]["saving_nano_usd"], spend - on_mini);
    assert!(a["method"].as_str().unwrap().contains("evaluation"));
}

/// The FOCUS export shows pod members their pods' rows only; org-wide roles see every pod.
#[tokio::test]
async fn the_focus_export_is_scoped_to_the_callers_pods() {
    let s = common::sim(Default::default()).await;
    // A manual clock: the month of the traffic and of the export is one.
    let api = Api::new_at(
        &format!(
            "providers: [{{ name: sim, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: chat, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n",
            s.url
        ),
        tollgate_types::clock::Clock::manual(tollgate_store::now_ms()),
    )
    .await;
    let org = org(&api).await;
    for uc in &org.use_cases {
        let k = api
            .ok(
                Method::POST,
                "/admin/v1/keys",
                json!({"use_case_id": uc, "name": "k"}),
            )
            .await;
        let (st, v) = api.chat(k["secret"].as_str().unwrap(), "chat", None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    // The ledger writes behind the answers: wait for its count (an event, not a poll).
    api.gw.books.ledger.written_at_least(2).await;
    let month = &tollgate_types::time::rfc3339(api.gw.clock.now_ms())[..7];
    let token = |who: Who| {
        org.tokens
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let pods_seen = |v: &Value| -> std::collections::BTreeSet<String> {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["x_PodId"].as_str().unwrap().to_string())
            .collect()
    };
    let path = format!("/admin/v1/reports/focus?month={month}&format=json");
    let (st, all) = api
        .call(Method::GET, &path, &token(Who::Finops), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(pods_seen(&all), org.pods.iter().cloned().collect());
    let (_, own) = api
        .call(Method::GET, &path, &token(Who::Viewer), None)
        .await;
    assert_eq!(
        pods_seen(&own),
        [org.pods[0].clone()].into_iter().collect(),
        "a member of pod A sees pod A only"
    );
    assert!(
        own["summary"]["billed_nano_usd"].as_u64().unwrap()
            < all["summary"]["billed_nano_usd"].as_u64().unwrap()
    );
    let (_, none) = api
        .call(Method::GET, &path, &token(Who::Nobody), None)
        .await;
    assert!(none["rows"].as_array().unwrap().is_empty());
}

/// axum's own answers (405 on an admin route, a path that is not UTF-8) are OpenAI-shaped too.
#[tokio::test]
async fn framework_errors_are_openai_shaped() {
    let api = Api::new(CONFIG).await;
    let (status, body) = api
        .call(Method::DELETE, "/admin/v1/me", &api.admin, None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    let (status, body) = api
        .call(Method::GET, "/admin/v1/pods/%FF", &api.admin, None)
        .await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
}

/// A key that would expire in a day, rotated with one second of grace, stops at the end of the
/// grace: the earlier of its own expiry and the grace's end wins.
#[tokio::test]
async fn a_rotated_key_stops_at_the_earlier_of_its_expiry_and_the_grace() {
    let s = common::sim(Default::default()).await;
    let clock = tollgate_types::clock::Clock::manual(tollgate_store::now_ms());
    let api = Api::new_at(&common::two_route_config(&s.url), clock.clone()).await;
    let (uc, _, _) = production_key(&api, json!(["m"]), json!({}), &["pilot", "production"]).await;
    let day = tollgate_types::time::rfc3339(clock.now_ms() + 86_400_000);
    let k = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc, "name": "daily", "expires_at": day}),
        )
        .await;
    let old = k["secret"].as_str().unwrap().to_string();
    let id = k["key"]["id"].as_str().unwrap().to_string();
    api.ok(
        Method::POST,
        &format!("/admin/v1/keys/{id}/rotate"),
        json!({"grace_seconds": 1}),
    )
    .await;
    assert_eq!(api.chat(&old, "m", None).await.0, StatusCode::OK);
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(api.chat(&old, "m", None).await.0, StatusCode::UNAUTHORIZED);
}

/// A CSV report as the platform admin reads it: its text and every cell of it.
async fn csv_report(api: &Api, path: &str) -> (String, Vec<String>) {
    let resp = api
        .router
        .clone()
        .oneshot(
            Request::get(path)
                .header("authorization", format!("Bearer {}", api.admin))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let cells = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap())
        .flat_map(|r| r.iter().map(str::to_string).collect::<Vec<_>>())
        .collect();
    (text, cells)
}

/// The registry's value model: every field kept as written; its pod's lead (and a platform
/// admin) may change it, other roles of the pod and other pods' leads may not; each change is
/// audited with the fields it touched.
#[tokio::test]
async fn the_value_model_is_kept_whole_and_changed_by_the_pods_lead() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let token = |who: Who| {
        org.tokens
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    let value = json!({
        "driver": "efficiency", "kpi": "handling time", "kpi_unit": "minutes",
        "baseline": 9.5, "target": 6.0, "value_per_outcome_nano_usd": 2_000_000_000_u64,
        "eligible_users": 120, "volume_per_month": 4_000,
        "baseline_minutes_per_task": 9.5, "assisted_minutes_per_task": 6.25,
        "owner": "Ana Lead <ana@example.com>"
    });
    let [mine, theirs] = &org.use_cases;
    let path = format!("/admin/v1/use-cases/{mine}");
    let patch = Some(json!({"value_model": value}));
    for who in [Who::Builder, Who::DomainExpert, Who::Analyst, Who::Viewer] {
        let (st, v) = api
            .call(Method::PATCH, &path, &token(who), patch.clone())
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{who:?}: {v}");
    }
    // The lead of pod A cannot see pod B's use case.
    let (st, _) = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/use-cases/{theirs}"),
            &token(Who::Lead),
            patch.clone(),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = api
        .call(Method::PATCH, &path, &token(Who::Lead), patch.clone())
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["value_model"], value);
    let (_, v) = api
        .call(Method::GET, &path, &token(Who::Viewer), None)
        .await;
    assert_eq!(v["value_model"], value, "read back as written");
    let (_, events) = api
        .call(Method::GET, "/admin/v1/audit?limit=200", &api.admin, None)
        .await;
    let updates: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "use_case.update" && e["object_id"] == mine.as_str())
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(
        updates[0]["details"].to_string().contains("value_model"),
        "{updates:?}"
    );
}

/// A use case's evaluation and fairness runs are read page by page, newest first: `before` (the
/// last run of a page) gives the runs older than it — runs started in the same second placed by
/// their ids — until none is left; a `before` that is no run of this use case is refused, named.
#[tokio::test]
async fn a_use_cases_runs_are_read_page_by_page() {
    use tollgate_store::{EvalQueries, FairnessQueries};
    let api = Api::new(CONFIG).await;
    let pod = api
        .ok(Method::POST, "/admin/v1/pods", json!({"name": "runs"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ucs = Vec::new();
    for name in ["uc", "other"] {
        let uc = api
            .ok(
                Method::POST,
                "/admin/v1/use-cases",
                json!({"pod_id": pod, "name": name, "routes": ["chat"]}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        ucs.push(uc);
    }
    // Seven runs of each kind: two pairs started in the same second, ids not in start order.
    let starts = [100, 200, 200, 300, 400, 400, 500];
    let ids = ["r5", "r1", "r9", "r3", "r2", "r8", "r0"];
    for (at, id) in starts.iter().zip(ids) {
        let run = tollgate_store::EvalRun {
            started_at: *at,
            ..eval_run(&format!("run_{id}"), &ucs[0], &pod)
        };
        api.gw.store.create_run("admin", &run).await.unwrap();
        let fair = tollgate_store::FairnessRun {
            started_at: *at,
            ..fairness_run(&format!("fair_{id}"), &ucs[0], &pod)
        };
        api.gw
            .store
            .create_fairness_run("admin", &fair)
            .await
            .unwrap();
    }
    // Newest first; the same second by id, descending.
    let order = ["r0", "r8", "r2", "r3", "r9", "r1", "r5"];
    let uc = &ucs[0];
    for (list, prefix) in [("eval-runs", "run_"), ("fairness-runs", "fair_")] {
        let base = format!("/admin/v1/use-cases/{uc}/{list}");
        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &before {
                Some(b) => format!("{base}?limit=2&before={b}"),
                None => format!("{base}?limit=2"),
            };
            let page = api.ok(Method::GET, &path, Value::Null).await;
            let page: Vec<String> = page
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            pages += 1;
            assert!(
                pages <= 5,
                "{list}: pages do not move on: {seen:?} then {page:?}"
            );
            let Some(last) = page.last().cloned() else {
                break;
            };
            seen.extend(page);
            before = Some(last);
        }
        let want: Vec<String> = order.iter().map(|id| format!("{prefix}{id}")).collect();
        assert_eq!(seen, want, "{list}");
        // Pages of two: a page ends between two runs of the same second (r8 | r2).
        assert_eq!(pages, 5, "{list}: 2 + 2 + 2 + 1, then an empty page");
        // The whole list at once, in the same order.
        let all = api.ok(Method::GET, &base, Value::Null).await;
        let all: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(all, want, "{list}");
        // A cursor that is no run, or another kind's, or a run of another use case, is refused.
        let theirs = format!("/admin/v1/use-cases/{}/{list}", ucs[1]);
        for (path, what) in [
            (format!("{base}?before={prefix}nope"), "unknown"),
            (format!("{base}?before=pod_{}", &pod[4..]), "not a run"),
            (format!("{theirs}?before={prefix}r3"), "another use case's"),
        ] {
            let (st, v) = api.call(Method::GET, &path, &api.admin, None).await;
            assert_eq!(
                (st, v["error"]["param"].as_str()),
                (StatusCode::BAD_REQUEST, Some("before")),
                "{list} {what}: {v}"
            );
        }
    }
    // The other kind's id is not a cursor of this list.
    let (st, v) = api
        .call(
            Method::GET,
            &format!("/admin/v1/use-cases/{uc}/eval-runs?before=fair_r3"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // An empty filter is a slip, named — not an empty list, nor every item.
    for (path, param) in [
        (
            format!("/admin/v1/use-cases/{uc}/eval-runs?suite="),
            "suite",
        ),
        ("/admin/v1/keys?use_case_id=".to_string(), "use_case_id"),
        ("/admin/v1/use-cases?pod_id=".to_string(), "pod_id"),
    ] {
        let (st, v) = api.call(Method::GET, &path, &api.admin, None).await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (StatusCode::BAD_REQUEST, Some(param)),
            "{path}: {v}"
        );
    }
}

/// A pod's members are read a page at a time by user id: every member once, each page at most
/// `limit`, only that pod's; a cursor that was never a `next` is refused and named.
#[tokio::test]
async fn a_pods_members_are_read_page_by_page() {
    let api = Api::new(CONFIG).await;
    let org = org(&api).await;
    let (a, b) = (&org.pods[0], &org.pods[1]);
    let admin = api.admin.clone();
    let read = async |pod: &str, limit: usize| {
        let mut seen: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &after {
                Some(x) => format!("/admin/v1/pods/{pod}/members?limit={limit}&after={x}"),
                None => format!("/admin/v1/pods/{pod}/members?limit={limit}"),
            };
            let (st, v) = api.call(Method::GET, &path, &admin, None).await;
            assert_eq!(st, StatusCode::OK, "{path}: {v}");
            let items = v["items"].as_array().unwrap();
            assert!(items.len() <= limit, "{v}");
            for m in items {
                assert_eq!(m["pod_id"], pod, "{v}");
                seen.push(m["user_id"].as_str().unwrap().to_string());
            }
            pages += 1;
            assert!(seen.len() <= 6, "endless paging: {seen:?}");
            match v["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return (seen, pages),
            }
        }
    };
    // Pod A: the five pod roles and the newcomer, by user id.
    let want: Vec<&String> = org
        .tokens
        .iter()
        .skip(1)
        .zip(&org.user_ids)
        .filter(|((who, _), _)| {
            matches!(
                who,
                Who::Lead | Who::Builder | Who::DomainExpert | Who::Analyst | Who::Viewer
            )
        })
        .map(|(_, u)| u)
        .collect();
    assert_eq!(want.len(), 5);
    let (seen, pages) = read(a, 4).await;
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 6, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "by user id");
    assert!(seen.contains(&org.newcomer));
    assert!(want.iter().all(|u| seen.contains(u)), "{seen:?}");
    let (seen_b, pages_b) = read(b, 4).await;
    assert_eq!((seen_b, pages_b), (vec![org.newcomer.clone()], 1));
    for (query, param) in [
        (format!("after={a}"), "after"),
        ("after=usr_x".to_string(), "after"),
        ("limit=0".to_string(), "limit"),
    ] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/pods/{a}/members?{query}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["error"]["param"], param, "{query}: {v}");
    }
}

/// A partial update merges into the stored value model, pilot caps, limits and SLO field by
/// field: a field left out keeps its value, `null` clears it, `"slo": {}` removes the SLO — and
/// the audit keeps each changed field as it was and as it became (the outside attack's F1: a
/// PATCH naming only the owner reset the value per outcome, and a limit left out vanished, with
/// nothing in the audit to restore them from).
#[tokio::test]
async fn a_partial_update_keeps_what_it_leaves_out_and_the_audit_keeps_both_sides() {
    let api = Api::new(CONFIG).await;
    let id = new_use_case(
        &api,
        json!({"name": "invoices", "routes": ["chat"],
               "value_model": {"driver": "efficiency", "kpi": "handling time", "baseline": 9.0, "target": 6.0,
                               "value_per_outcome_nano_usd": 1_000_000_000_u64, "eligible_users": 30,
                               "volume_per_month": 500},
               "limits": {"requests_per_minute": 600, "tokens_per_minute": 200000}}),
        &[],
    )
    .await;
    let url = format!("/admin/v1/use-cases/{id}");
    api.ok(
        Method::PATCH,
        &url,
        json!({"slo": {"latency_p95_ms": 2000, "max_error_rate_pct": 1.0, "objective_pct": 99.5}}),
    )
    .await;
    let uc = api
        .ok(
            Method::PATCH,
            &url,
            json!({"value_model": {"owner": "Fran Lead"}, "slo": {"latency_p95_ms": 3000},
                   "limits": {"concurrent_requests": 50, "tokens_per_minute": null}}),
        )
        .await;
    let vm = &uc["value_model"];
    assert_eq!(vm["owner"], "Fran Lead");
    assert_eq!(
        (
            vm["driver"].as_str(),
            vm["kpi"].as_str(),
            vm["value_per_outcome_nano_usd"].as_u64(),
            vm["eligible_users"].as_u64(),
            vm["volume_per_month"].as_u64(),
            vm["baseline"].as_f64(),
            vm["target"].as_f64()
        ),
        (
            Some("efficiency"),
            Some("handling time"),
            Some(1_000_000_000),
            Some(30),
            Some(500),
            Some(9.0),
            Some(6.0)
        ),
        "{uc}"
    );
    assert_eq!(
        uc["slo"],
        json!({"latency_p95_ms": 3000, "max_error_rate_pct": 1.0, "objective_pct": 99.5})
    );
    assert_eq!(
        uc["limits"],
        json!({"requests_per_minute": 600, "concurrent_requests": 50})
    );
    // What the data plane enforces is what was merged (read back from the store).
    use tollgate_store::UseCaseQueries;
    let stored = api.gw.store.get_use_case(&id).await.unwrap();
    assert_eq!(stored.limits.requests_per_minute, Some(600));
    assert_eq!(stored.limits.tokens_per_minute, None);
    // The audit: the fields given, and each changed one before and after.
    let last = api.use_case_updates(&id).await.pop().unwrap();
    let d = &last["details"];
    assert_eq!(
        d["fields"],
        json!(["value_model", "limits", "slo"]),
        "{last}"
    );
    let vm_change = &d["changes"]["value_model"];
    assert_eq!(vm_change["before"]["owner"], "", "{last}");
    assert_eq!(vm_change["after"]["owner"], "Fran Lead", "{last}");
    assert_eq!(
        vm_change["before"]["value_per_outcome_nano_usd"], 1_000_000_000_u64,
        "{last}"
    );
    assert_eq!(
        d["changes"]["limits"]["before"]["tokens_per_minute"],
        200000
    );
    assert_eq!(d["changes"]["slo"]["before"]["latency_p95_ms"], 2000);
    // A sub-object given as `null` changes nothing, like any other field given as `null`
    // (a client that writes unset fields so must not wipe them); `{}` changes nothing either,
    // but for the SLO, which it removes.
    let uc = api
        .ok(
            Method::PATCH,
            &url,
            json!({"slo": {}, "limits": null, "value_model": {}}),
        )
        .await;
    assert_eq!(
        (uc["slo"].clone(), uc["limits"].clone()),
        (
            json!({}),
            json!({"requests_per_minute": 600, "concurrent_requests": 50})
        )
    );
    // Limits cleared one by one; an SLO whose targets are both cleared is no SLO (its
    // objective does not come back with a later target).
    api.ok(
        Method::PATCH,
        &url,
        json!({"slo": {"latency_p95_ms": 1000, "objective_pct": 99.9}}),
    )
    .await;
    let uc = api
        .ok(
            Method::PATCH,
            &url,
            json!({"limits": {"requests_per_minute": null, "concurrent_requests": null},
                   "slo": {"latency_p95_ms": null}}),
        )
        .await;
    assert_eq!(
        (uc["slo"].clone(), uc["limits"].clone()),
        (json!({}), json!({}))
    );
    let uc = api
        .ok(
            Method::PATCH,
            &url,
            json!({"slo": {"max_error_rate_pct": 2.0}}),
        )
        .await;
    assert_eq!(uc["slo"], json!({"max_error_rate_pct": 2.0}));
    assert_eq!(
        uc["value_model"]["value_per_outcome_nano_usd"],
        1_000_000_000_u64
    );
    // An SLO objective out of range is told even when no target is set (it would otherwise be
    // dropped without a word), and so is a task of more than a million minutes.
    for (body, param) in [
        (json!({"slo": {"objective_pct": 49}}), "slo.objective_pct"),
        (
            json!({"value_model": {"baseline_minutes_per_task": 1e308}}),
            "value_model.baseline_minutes_per_task",
        ),
    ] {
        let (st, v) = api
            .call(Method::PATCH, &url, &api.admin, Some(body.clone()))
            .await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (StatusCode::BAD_REQUEST, Some(param)),
            "{body}: {v}"
        );
    }
    // A merged value still has to be valid: the path of the mistake is named.
    let (st, v) = api
        .call(
            Method::PATCH,
            &url,
            &api.admin,
            Some(json!({"value_model": {"driver": "vibes"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["param"]
            .as_str()
            .unwrap_or_default()
            .starts_with("value_model"),
        "{v}"
    );
}

/// A patch that gives every field as it already is changes nothing: no write (`updated_at`
/// stays) and no audit entry — the trail holds changes, not requests.
#[tokio::test]
async fn a_patch_that_changes_nothing_writes_nothing() {
    let api = Api::new(CONFIG).await;
    let id = new_use_case(
        &api,
        json!({"name": "same", "routes": ["chat"], "limits": {"requests_per_minute": 600}}),
        &[],
    )
    .await;
    let url = format!("/admin/v1/use-cases/{id}");
    api.ok(
        Method::PATCH,
        &url,
        json!({"slo": {"latency_p95_ms": 2000}}),
    )
    .await;
    let updates = async || api.use_case_updates(&id).await.len();
    let (_, before) = api.call(Method::GET, &url, &api.admin, None).await;
    let uc = api
        .ok(
            Method::PATCH,
            &url,
            json!({"name": "same", "limits": {"requests_per_minute": 600},
                   "slo": {"latency_p95_ms": 2000}, "value_model": {}}),
        )
        .await;
    assert_eq!(uc, before, "a no-op patch answers the use case as it is");
    assert_eq!(
        updates().await,
        1,
        "a no-op patch is not audited (one: the SLO set)"
    );
    // One field that does change: written and audited, with that field only.
    let uc = api
        .ok(
            Method::PATCH,
            &url,
            json!({"name": "same", "limits": {"requests_per_minute": 601}}),
        )
        .await;
    assert_ne!(uc["updated_at"], before["updated_at"]);
    assert_eq!(updates().await, 2);
}

/// Partial updates sent at once, each to another field, all land: each is merged into what the
/// others wrote (read again and merged again when the use case changed meanwhile), none is lost,
/// and the audit has one entry per update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_partial_updates_all_land() {
    let api = Arc::new(Api::new(CONFIG).await);
    let id = new_use_case(&api, json!({"name": "busy", "routes": ["chat"]}), &[]).await;
    let url = format!("/admin/v1/use-cases/{id}");
    let bodies = [
        json!({"limits": {"requests_per_minute": 600}}),
        json!({"limits": {"tokens_per_minute": 90000}}),
        json!({"limits": {"concurrent_requests": 12}}),
        json!({"value_model": {"owner": "Ann"}}),
        json!({"value_model": {"eligible_users": 40}}),
        json!({"value_model": {"volume_per_month": 900}}),
        json!({"slo": {"latency_p95_ms": 1500}}),
        json!({"pilot_caps": {"max_requests_per_day": 5000}}),
        json!({"description": "many hands"}),
    ];
    let tasks: Vec<_> = bodies
        .iter()
        .cloned()
        .map(|b| {
            let (api, url) = (api.clone(), url.clone());
            tokio::spawn(async move {
                let (st, v) = api.call(Method::PATCH, &url, &api.admin, Some(b)).await;
                assert!(st.is_success(), "{st} {v}");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (_, uc) = api.call(Method::GET, &url, &api.admin, None).await;
    assert_eq!(
        uc["limits"],
        json!({"requests_per_minute": 600, "tokens_per_minute": 90000, "concurrent_requests": 12}),
        "{uc}"
    );
    let vm = &uc["value_model"];
    assert_eq!(
        (
            vm["owner"].as_str(),
            vm["eligible_users"].as_u64(),
            vm["volume_per_month"].as_u64()
        ),
        (Some("Ann"), Some(40), Some(900)),
        "{uc}"
    );
    assert_eq!(uc["slo"]["latency_p95_ms"], 1500, "{uc}");
    assert_eq!(uc["pilot_caps"]["max_requests_per_day"], 5000, "{uc}");
    assert_eq!(uc["description"], "many hands", "{uc}");
    assert_eq!(api.use_case_updates(&id).await.len(), bodies.len());
}

/// The store writes a read-merge-write only if no one changed the use case since it read
/// (`unchanged_since`): a stale one is a conflict and changes nothing.
#[tokio::test]
async fn a_stale_merge_is_refused_and_changes_nothing() {
    use tollgate_store::UseCaseQueries;
    let api = Api::new(CONFIG).await;
    let id = new_use_case(&api, json!({"name": "stale", "routes": ["chat"]}), &[]).await;
    let read = api.gw.store.get_use_case(&id).await.unwrap();
    let patch = |owner: &str| tollgate_store::UseCasePatch {
        value_model: Some(tollgate_store::ValueModel {
            owner: owner.into(),
            ..read.value_model.clone()
        }),
        unchanged_since: Some(read.updated_at),
        ..Default::default()
    };
    // Two writes from the same read, even within one millisecond: the second is refused.
    api.gw
        .store
        .update_use_case("a", &id, &patch("first"))
        .await
        .unwrap();
    let e = api
        .gw
        .store
        .update_use_case("b", &id, &patch("second"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, tollgate_store::StoreError::Conflict(_)),
        "{e:?}"
    );
    assert_eq!(
        api.gw
            .store
            .get_use_case(&id)
            .await
            .unwrap()
            .value_model
            .owner,
        "first"
    );
}
