//! Audit coverage that cannot miss a route: every mutating operation (POST, PUT, PATCH, DELETE) of
//! the OpenAPI document the server serves is called once, for real, and must leave an audit event
//! naming the object it acted on, with no secret in it.
//!
//! The operations come from the document, not from a list kept here: an operation without an entry
//! in [`CHECKS`] fails the test ("no audit check for METHOD PATH"), and so does an entry the
//! document no longer has. A second test holds the router to the document, so a route served but
//! left out of the document cannot slip past either.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const CONFIG: &str = r#"
providers:
  - { name: nowhere, type: openai_compatible, base_url: "http://127.0.0.1:9/v1" }
routes:
  - name: chat
    deployments: [{ provider: nowhere, model: m }]
"#;

/// The methods that change something.
const MUTATING: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// What a path parameter or a body placeholder stands for: a fresh object made for each check.
#[derive(Debug, Clone, Copy)]
enum Fixture {
    /// A pod.
    Pod,
    /// A user who is a viewer of the pod.
    Member,
    /// A user of no pod.
    Outsider,
    /// A proposed use case of the pod, on route `chat`.
    UseCase,
    /// An active key of the use case.
    Key,
    /// A soft monthly budget on the pod.
    Budget,
    /// A personal token of the member.
    Token,
    /// A number no other check uses (for names and e-mails that must be unique).
    Unique,
    /// A request record of the use case with a stored (metadata) payload.
    Record,
    /// A pattern of the pod with one version.
    Pattern,
    /// The use case's suite `audit`, which has a schedule.
    Suite,
}

/// Which object the audit event must name (`object_id`).
#[derive(Debug, Clone, Copy)]
enum Object {
    /// The value of this path parameter.
    Path(&'static str),
    /// The string at this JSON pointer in the answer (the object the call created).
    Answer(&'static str),
    /// This id (a setting's name).
    Fixed(&'static str),
}

/// How one operation is called and what its audit event must say.
struct Check {
    method: &'static str,
    /// As in the OpenAPI document.
    path: &'static str,
    /// Path parameters (`{name}`) and body placeholders (`"{name}"`), and what each stands for.
    bind: &'static [(&'static str, Fixture)],
    /// The JSON body, if the operation takes one.
    body: Option<&'static str>,
    /// The audit action expected.
    action: &'static str,
    /// The object the event must name.
    object: Object,
}

/// One entry per mutating operation of the document.
const CHECKS: &[Check] = &[
    Check {
        method: "POST",
        path: "/admin/v1/pods",
        bind: &[("n", Fixture::Unique)],
        body: Some(r#"{"name": "new-pod-{n}", "description": "made by the audit check"}"#),
        action: "pod.create",
        object: Object::Answer("/id"),
    },
    Check {
        method: "PATCH",
        path: "/admin/v1/pods/{id}",
        bind: &[("id", Fixture::Pod)],
        body: Some(r#"{"description": "changed by the audit check"}"#),
        action: "pod.update",
        object: Object::Path("id"),
    },
    Check {
        method: "PUT",
        path: "/admin/v1/pods/{id}/members/{user_id}",
        bind: &[("id", Fixture::Pod), ("user_id", Fixture::Outsider)],
        body: Some(r#"{"role": "builder"}"#),
        action: "member.set",
        object: Object::Path("id"),
    },
    Check {
        method: "DELETE",
        path: "/admin/v1/pods/{id}/members/{user_id}",
        bind: &[("id", Fixture::Pod), ("user_id", Fixture::Member)],
        body: None,
        action: "member.remove",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/users",
        bind: &[("n", Fixture::Unique)],
        body: Some(r#"{"email": "new-{n}@example.com", "name": "New {n}"}"#),
        action: "user.create",
        object: Object::Answer("/id"),
    },
    Check {
        method: "PATCH",
        path: "/admin/v1/users/{id}",
        bind: &[("id", Fixture::Member)],
        body: Some(r#"{"name": "Renamed", "org_role": "auditor"}"#),
        action: "user.update",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/users/{id}/tokens",
        bind: &[("id", Fixture::Member)],
        body: Some(r#"{"name": "second token"}"#),
        action: "token.create",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/users/{id}/tokens/{token_id}/revoke",
        bind: &[("id", Fixture::Member), ("token_id", Fixture::Token)],
        body: None,
        action: "token.revoke",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/use-cases",
        bind: &[("pod", Fixture::Pod)],
        body: Some(r#"{"pod_id": "{pod}", "name": "new-use-case", "routes": ["chat"]}"#),
        action: "use_case.create",
        object: Object::Answer("/id"),
    },
    Check {
        method: "PATCH",
        path: "/admin/v1/use-cases/{id}",
        bind: &[("id", Fixture::UseCase)],
        body: Some(r#"{"description": "changed by the audit check"}"#),
        action: "use_case.update",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/use-cases/{id}/stage",
        bind: &[("id", Fixture::UseCase)],
        // Past the gate: the fixture's use case has no owner, value model or budget.
        body: Some(r#"{"to": "pilot", "reason": "audit check", "override": true}"#),
        action: "use_case.stage",
        object: Object::Path("id"),
    },
    Check {
        method: "PUT",
        path: "/admin/v1/gates",
        bind: &[],
        body: Some(r#"{"production": {"checks": ["eval"], "approvals": ["risk_officer"]}}"#),
        action: "gates.update",
        object: Object::Fixed("gates"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/use-cases/{id}/promotion-requests",
        bind: &[("id", Fixture::UseCase)],
        body: Some(r#"{"to": "pilot", "reason": "audit check"}"#),
        action: "use_case.promotion_request",
        object: Object::Path("id"),
    },
    Check {
        method: "DELETE",
        path: "/admin/v1/use-cases/{id}/promotion-requests",
        bind: &[("id", Fixture::UseCase)],
        body: None,
        action: "use_case.promotion_withdraw",
        object: Object::Path("id"),
    },
    // Signed by a risk officer (the bootstrap admin is no person to sign), of a request the
    // admin opened under gates that ask for that approval (see `World::new`).
    Check {
        method: "POST",
        path: "/admin/v1/use-cases/{id}/approvals",
        bind: &[("id", Fixture::UseCase)],
        body: Some(r#"{"role": "risk_officer", "note": "fine"}"#),
        action: "use_case.approve",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/keys",
        bind: &[("use_case", Fixture::UseCase)],
        body: Some(r#"{"use_case_id": "{use_case}", "name": "second key"}"#),
        action: "key.create",
        object: Object::Answer("/key/id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/keys/{id}/revoke",
        bind: &[("id", Fixture::Key)],
        body: None,
        action: "key.revoke",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/keys/{id}/rotate",
        bind: &[("id", Fixture::Key)],
        body: Some(r#"{"grace_seconds": 60}"#),
        action: "key.rotate",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/budgets",
        bind: &[("pod", Fixture::Pod)],
        body: Some(
            r#"{"scope": "pod", "scope_id": "{pod}", "amount_usd": "25", "period": "day", "mode": "hard"}"#,
        ),
        action: "budget.create",
        object: Object::Answer("/id"),
    },
    Check {
        method: "DELETE",
        path: "/admin/v1/budgets/{id}",
        bind: &[("id", Fixture::Budget)],
        body: None,
        action: "budget.delete",
        object: Object::Path("id"),
    },
    Check {
        method: "PUT",
        path: "/admin/v1/policies/default",
        bind: &[],
        body: Some(r#"{"policy": {"default": "mask"}, "note": "audit check"}"#),
        action: "policy.set",
        object: Object::Answer("/scope"),
    },
    Check {
        method: "PUT",
        path: "/admin/v1/use-cases/{id}/policy",
        bind: &[("id", Fixture::UseCase)],
        body: Some(r#"{"policy": {"entities": {"EMAIL_ADDRESS": "tokenize"}}}"#),
        action: "policy.set",
        object: Object::Path("id"),
    },
    Check {
        method: "DELETE",
        path: "/admin/v1/use-cases/{id}/policy",
        bind: &[("id", Fixture::UseCase)],
        body: None,
        action: "policy.remove",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/payloads/{record_id}/read",
        bind: &[("record_id", Fixture::Record)],
        body: Some(r#"{"reason": "the audit coverage check"}"#),
        action: "payload.read",
        object: Object::Path("record_id"),
    },
    Check {
        method: "PUT",
        path: "/admin/v1/use-cases/{id}/suites/{name}",
        bind: &[("id", Fixture::UseCase), ("name", Fixture::Unique)],
        body: Some(
            r#"{"document": {"prompts": ["hello"], "routes": ["chat"], "tests": [{"vars": {}}]}}"#,
        ),
        action: "suite.version",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/use-cases/{id}/eval-runs",
        bind: &[("id", Fixture::UseCase)],
        body: Some(r#"{"suite": "audit"}"#),
        action: "eval.start",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/use-cases/{id}/fairness-runs",
        bind: &[("id", Fixture::UseCase)],
        body: Some(
            r#"{"probe": {"route": "chat", "prompts": ["Approve {{ name }}?"], "samples": 2}}"#,
        ),
        action: "fairness.start",
        object: Object::Path("id"),
    },
    Check {
        method: "PUT",
        path: "/admin/v1/use-cases/{id}/eval-schedules/{suite}",
        bind: &[("id", Fixture::UseCase), ("suite", Fixture::Suite)],
        body: Some(r#"{"every_minutes": 120, "tolerance": 0.2}"#),
        action: "eval.schedule",
        object: Object::Path("id"),
    },
    Check {
        method: "DELETE",
        path: "/admin/v1/use-cases/{id}/eval-schedules/{suite}",
        bind: &[("id", Fixture::UseCase), ("suite", Fixture::Suite)],
        body: None,
        action: "eval.unschedule",
        object: Object::Path("id"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/patterns",
        bind: &[("n", Fixture::Unique), ("pod", Fixture::Pod)],
        body: Some(r#"{"name": "new-{n}", "pod_id": "{pod}"}"#),
        action: "pattern.create",
        object: Object::Answer("/name"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/patterns/{name}/versions",
        bind: &[("name", Fixture::Pattern)],
        body: Some(
            r#"{"messages": [{"role": "user", "content": "{{ x }}"}], "schema": {"type": "object", "properties": {"x": {"type": "string"}}}}"#,
        ),
        action: "pattern.version",
        object: Object::Path("name"),
    },
    Check {
        method: "PUT",
        path: "/admin/v1/patterns/{name}/labels/{label}",
        bind: &[("name", Fixture::Pattern), ("label", Fixture::Pod)],
        body: Some(r#"{"version": 1}"#),
        action: "pattern.label",
        object: Object::Path("name"),
    },
    Check {
        method: "POST",
        path: "/admin/v1/erasure",
        bind: &[("n", Fixture::Unique)],
        body: Some(r#"{"end_user": "someone-{n}"}"#),
        action: "end_user.erase",
        object: Object::Answer("/end_user_hash"),
    },
];

struct Api {
    gw: std::sync::Arc<tollgate_gateway::Gateway>,
    router: axum::Router,
    admin: String,
}

impl Api {
    async fn new() -> Api {
        let gw = common::gateway_only(CONFIG).await;
        let (router, control, admin) = planes::app(&gw).await;
        // Runs started here send their cases nowhere (and end with errors): their start is what
        // is audited.
        control.set_gateway_address("127.0.0.1:9".parse().unwrap());
        Api { gw, router, admin }
    }

    /// Calls the admin API as the bootstrap admin.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        planes::call(&self.router, method, path, &self.admin, body).await
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.call(method, path, Some(body)).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    /// Audit events after `seq`, oldest first, every page.
    async fn audit_after(&self, mut seq: i64) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let (s, v) = self
                .call(
                    "GET",
                    &format!("/admin/v1/audit?after={seq}&limit=200"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let page = v.as_array().unwrap().clone();
            let Some(last) = page.last() else {
                return all;
            };
            seq = last["seq"].as_i64().unwrap();
            all.extend(page);
        }
    }
}

/// Every string in `v` that looks like a full key or token (`tg_…`, `tgu_…`, `tga_…`), as opposed to
/// its short visible prefix.
fn secrets_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s)
            if ["tg_", "tgu_", "tga_"].iter().any(|p| s.starts_with(p)) && s.len() > 20 =>
        {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| secrets_in(x, out)),
        Value::Object(o) => o.values().for_each(|x| secrets_in(x, out)),
        _ => {}
    }
}

/// The objects one check may act on, made fresh for it (through the API, as the admin).
struct World {
    pod: String,
    member: String,
    outsider: String,
    use_case: String,
    key: String,
    budget: String,
    token: String,
    unique: String,
    record: String,
    pattern: String,
    /// For the approvals check: a risk officer's id and token, who may sign the open request.
    approver: Option<(String, String)>,
}

impl World {
    /// `requesting`: with an open promotion request (asked by the admin); `approving`: and a risk
    /// officer who may sign it.
    async fn new(
        api: &Api,
        n: usize,
        secrets: &mut BTreeSet<String>,
        requesting: bool,
        approving: bool,
    ) -> World {
        let mut keep = |v: Value| {
            secrets_in(&v, secrets);
            v
        };
        let id = |v: &Value, ptr: &str| v.pointer(ptr).unwrap().as_str().unwrap().to_string();
        let pod = keep(
            api.ok(
                "POST",
                "/admin/v1/pods",
                json!({"name": format!("pod-{n}")}),
            )
            .await,
        );
        let pod = id(&pod, "/id");
        let member = keep(
            api.ok(
                "POST",
                "/admin/v1/users",
                json!({"email": format!("member-{n}@example.com"), "name": "Member"}),
            )
            .await,
        );
        let member = id(&member, "/id");
        keep(
            api.ok(
                "PUT",
                &format!("/admin/v1/pods/{pod}/members/{member}"),
                json!({"role": "viewer"}),
            )
            .await,
        );
        let outsider = keep(
            api.ok(
                "POST",
                "/admin/v1/users",
                json!({"email": format!("outsider-{n}@example.com"), "name": "Outsider"}),
            )
            .await,
        );
        let outsider = id(&outsider, "/id");
        let use_case = keep(
            api.ok(
                "POST",
                "/admin/v1/use-cases",
                json!({"pod_id": pod, "name": "uc", "routes": ["chat"]}),
            )
            .await,
        );
        let use_case = id(&use_case, "/id");
        // An eval budget and a suite (so a run of it can be started).
        keep(
            api.ok(
                "POST",
                "/admin/v1/budgets",
                json!({"scope": "use_case_eval", "scope_id": use_case, "amount_usd": "10", "period": "month", "mode": "hard"}),
            )
            .await,
        );
        keep(
            api.ok(
                "PUT",
                &format!("/admin/v1/use-cases/{use_case}/suites/audit"),
                json!({"document": {"prompts": ["hi"], "routes": ["chat"], "tests": [{"vars": {}}]}}),
            )
            .await,
        );
        // A schedule of that suite (so removing it can be checked).
        keep(
            api.ok(
                "PUT",
                &format!("/admin/v1/use-cases/{use_case}/eval-schedules/audit"),
                json!({"every_minutes": 60}),
            )
            .await,
        );
        // A policy of its own (so removing it can be checked).
        keep(
            api.ok(
                "PUT",
                &format!("/admin/v1/use-cases/{use_case}/policy"),
                json!({"policy": {"default": "redact"}}),
            )
            .await,
        );
        let key = keep(
            api.ok(
                "POST",
                "/admin/v1/keys",
                json!({"use_case_id": use_case, "name": "k"}),
            )
            .await,
        );
        let key = id(&key, "/key/id");
        let budget = keep(
            api.ok(
                "POST",
                "/admin/v1/budgets",
                json!({"scope": "pod", "scope_id": pod, "amount_usd": "10", "period": "month", "mode": "soft"}),
            )
            .await,
        );
        let budget = id(&budget, "/id");
        let token = keep(
            api.ok(
                "POST",
                &format!("/admin/v1/users/{member}/tokens"),
                json!({"name": "t"}),
            )
            .await,
        );
        let token = id(&token, "/id");
        let record = format!("rec_audit_check_{n}");
        tollgate_store::LedgerQueries::insert_records(
            &api.gw.store,
            &[tollgate_store::RequestRecord {
                id: record.clone(),
                use_case_id: use_case.clone(),
                pod_id: pod.clone(),
                payload_ref: Some("metadata".into()),
                payload: Some(tollgate_store::SealedPayload {
                    mode: "metadata".into(),
                    prompt_bytes: 10,
                    ..Default::default()
                }),
                ..Default::default()
            }],
        )
        .await
        .unwrap();
        let pattern = format!("pattern-{n}");
        api.ok(
            "POST",
            "/admin/v1/patterns",
            json!({"name": pattern, "pod_id": pod}),
        )
        .await;
        api.ok(
            "POST",
            &format!("/admin/v1/patterns/{pattern}/versions"),
            json!({"messages": [{"role": "user", "content": "hi"}], "schema": {"type": "object"}}),
        )
        .await;
        if requesting && !approving {
            api.ok(
                "POST",
                &format!("/admin/v1/use-cases/{use_case}/promotion-requests"),
                json!({"to": "pilot", "reason": "setup"}),
            )
            .await;
        }
        let approver = if approving {
            let officer = api
                .ok(
                    "POST",
                    "/admin/v1/users",
                    json!({"email": format!("officer-{n}@example.com"), "name": "Officer", "org_role": "risk_officer"}),
                )
                .await;
            let officer = id(&officer, "/id");
            let t = api
                .ok(
                    "POST",
                    &format!("/admin/v1/users/{officer}/tokens"),
                    json!({"name": "t"}),
                )
                .await;
            let t = keep(t);
            api.ok(
                "PUT",
                "/admin/v1/gates",
                json!({"pilot": {"checks": [], "approvals": ["risk_officer"]}}),
            )
            .await;
            api.ok(
                "POST",
                &format!("/admin/v1/use-cases/{use_case}/promotion-requests"),
                json!({"to": "pilot", "reason": "setup"}),
            )
            .await;
            Some((officer, id(&t, "/secret")))
        } else {
            None
        };
        World {
            pod,
            member,
            outsider,
            use_case,
            key,
            budget,
            token,
            unique: n.to_string(),
            record,
            pattern,
            approver,
        }
    }

    fn get(&self, f: Fixture) -> &str {
        match f {
            Fixture::Pod => &self.pod,
            Fixture::Member => &self.member,
            Fixture::Outsider => &self.outsider,
            Fixture::UseCase => &self.use_case,
            Fixture::Key => &self.key,
            Fixture::Budget => &self.budget,
            Fixture::Token => &self.token,
            Fixture::Unique => &self.unique,
            Fixture::Record => &self.record,
            Fixture::Pattern => &self.pattern,
            Fixture::Suite => "audit",
        }
    }
}

/// The mutating operations of an OpenAPI document, as (METHOD, path).
fn mutating_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("the document has paths") {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            if MUTATING.contains(&method.as_str()) {
                ops.insert((method, path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_mutating_operation_of_the_document_is_audited() {
    let api = Api::new().await;
    let (s, doc) = api.call("GET", "/admin/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    // The served document is the crate's, specialised to the config (route names as enums): the
    // same operations either way.
    let ops = mutating_operations(&doc);
    assert_eq!(
        ops,
        mutating_operations(
            &serde_json::from_str::<Value>(&tollgate_control::openapi_json()).unwrap()
        ),
        "the served document has the crate's operations"
    );

    // The table and the document must agree, both ways, before anything runs.
    let mut problems = Vec::new();
    for (method, path) in &ops {
        if !CHECKS.iter().any(|c| c.method == method && c.path == path) {
            problems.push(format!("no audit check for {method} {path}"));
        }
    }
    let mut seen = BTreeSet::new();
    for c in CHECKS {
        if !ops.contains(&(c.method.to_string(), c.path.to_string())) {
            problems.push(format!(
                "stale audit check for {} {}: the document has no such operation",
                c.method, c.path
            ));
        }
        if !seen.insert((c.method, c.path)) {
            problems.push(format!("two audit checks for {} {}", c.method, c.path));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let mut secrets = BTreeSet::from([api.admin.clone()]);
    let mut seq = api
        .audit_after(0)
        .await
        .last()
        .map_or(0, |e| e["seq"].as_i64().unwrap());
    for (n, c) in CHECKS.iter().enumerate() {
        let what = format!("{} {}", c.method, c.path);
        let approving = c.path.ends_with("/approvals");
        let requesting =
            approving || (c.method == "DELETE" && c.path.ends_with("/promotion-requests"));
        let world = World::new(&api, n, &mut secrets, requesting, approving).await;
        // The setup's own events are not this operation's.
        if let Some(last) = api.audit_after(seq).await.last() {
            seq = last["seq"].as_i64().unwrap();
        }

        let mut path = c.path.to_string();
        let mut body = c.body.map(str::to_string);
        for (name, f) in c.bind {
            let placeholder = format!("{{{name}}}");
            path = path.replace(&placeholder, world.get(*f));
            body = body.map(|b| b.replace(&placeholder, world.get(*f)));
        }
        assert!(
            !path.contains('{'),
            "{what}: a path parameter is not bound: {path}"
        );
        let body = body.map(|b| {
            serde_json::from_str::<Value>(&b).unwrap_or_else(|e| panic!("{what}: body {b}: {e}"))
        });
        let (status, answer) = match &world.approver {
            None => api.call(c.method, &path, body).await,
            Some((_, token)) => {
                let method = Method::from_bytes(c.method.as_bytes()).unwrap();
                planes::call(&api.router, method, &path, token, body).await
            }
        };
        assert!(status.is_success(), "{what}: {status} {answer}");
        secrets_in(&answer, &mut secrets);

        let object = match c.object {
            Object::Path(name) => {
                let (_, f) = c
                    .bind
                    .iter()
                    .find(|(n, _)| *n == name)
                    .unwrap_or_else(|| panic!("{what}: `{name}` is not bound"));
                world.get(*f).to_string()
            }
            Object::Answer(ptr) => answer
                .pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{what}: no id at {ptr} in {answer}"))
                .to_string(),
            Object::Fixed(id) => id.to_string(),
        };
        let events = api.audit_after(seq).await;
        assert!(
            events.iter().any(|e| e["object_id"] == object.as_str()),
            "{what}: no new audit event with object_id {object}; new events: {events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["object_id"] == object.as_str() && e["action"] == c.action),
            "{what}: no new `{}` audit event for {object}; new events: {events:?}",
            c.action
        );
        let actor = world
            .approver
            .as_ref()
            .map_or("admin", |(id, _)| id.as_str());
        for e in &events {
            assert_eq!(e["actor"], actor, "{what}: {e}");
            let text = e.to_string();
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{what}: a secret is in the audit trail: {e}"
                );
            }
        }
        if let Some(last) = events.last() {
            seq = last["seq"].as_i64().unwrap();
        }
    }

    // The whole trail, setup included, against every secret any answer showed.
    let trail = Value::Array(api.audit_after(0).await).to_string();
    assert!(secrets.len() > CHECKS.len(), "secrets were collected");
    for s in &secrets {
        assert!(
            !trail.contains(s.as_str()),
            "a secret is in the audit trail"
        );
    }
}

/// The router's mutating routes, read from its source (`router()` in `src/lib.rs`).
fn routed_mutations(src: &str) -> BTreeSet<(String, String)> {
    let start = src.find("pub fn router(").expect("lib.rs has router()");
    let body = &src[start..];
    let end = body.find("\n}\n").unwrap_or(body.len());
    let body = &body[..end];
    let mut out = BTreeSet::new();
    let mut rest = body;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let mut len = rest.len();
        for (i, ch) in rest.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        len = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &rest[..len];
        let q1 = call.find('"').expect("a route's path is a literal");
        let q2 = q1 + 1 + call[q1 + 1..].find('"').unwrap();
        let path = &call[q1 + 1..q2];
        let handlers = &call[q2 + 1..];
        for method in MUTATING {
            let token = format!("{}(", method.to_ascii_lowercase());
            let mut from = 0;
            while let Some(i) = handlers[from..].find(&token) {
                let i = from + i;
                let before = handlers[..i].chars().next_back();
                if !before.is_some_and(|b| b.is_alphanumeric() || b == '_') {
                    out.insert((method.to_string(), path.to_string()));
                }
                from = i + token.len();
            }
        }
        rest = &rest[len..];
    }
    out
}

/// A route served but missing from the document would escape the test above: the router's
/// mutating routes and the document's mutating operations are the same set.
#[test]
fn the_document_lists_every_mutating_route_the_router_serves() {
    let routed = routed_mutations(include_str!("../src/lib.rs"));
    assert!(
        routed.contains(&("DELETE".into(), "/admin/v1/budgets/{id}".into()))
            && routed.contains(&("PATCH".into(), "/admin/v1/pods/{id}".into())),
        "the router's source was not read right: {routed:?}"
    );
    let doc: Value = serde_json::from_str(&tollgate_control::openapi_json()).unwrap();
    let documented = mutating_operations(&doc);
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "served but not in the OpenAPI document: {undocumented:?}; documented but not served: {unrouted:?}"
    );
}
