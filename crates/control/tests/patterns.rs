//! Patterns end to end: versions checked with paths, labels moved only by the owning pod's lead
//! (audited), and requests built from `"pattern": "name@label"` with their variables checked —
//! the simulator echoes what was rendered, and the ledger keeps the version each request used.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_simulator::SimConfig;

async fn user(api: &planes::Http, admin: &str, name: &str, pod: &str, role: &str) -> String {
    let (_, u) = api
        .call(
            Method::POST,
            "/admin/v1/users",
            admin,
            Some(json!({"email": format!("{name}@example.com"), "name": name})),
        )
        .await;
    let uid = u["id"].as_str().unwrap();
    api.call(
        Method::PUT,
        &format!("/admin/v1/pods/{pod}/members/{uid}"),
        admin,
        Some(json!({"role": role})),
    )
    .await;
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

fn v1() -> Value {
    json!({
        "messages": [
            {"role": "system", "content": "You triage tickets for {{ team }}."},
            {"role": "user", "content": "Ticket: {{ ticket }}"}
        ],
        "schema": {"type": "object", "required": ["ticket"],
                   "properties": {"ticket": {"type": "string", "maxLength": 200},
                                  "team": {"type": "string", "default": "support"}}},
        "note": "first"
    })
}

#[tokio::test]
async fn patterns_are_versioned_labelled_and_used_on_v1() {
    let sim = common::sim(SimConfig {
        echo: true,
        ..SimConfig::default()
    })
    .await;
    let (g, admin) = planes::serve(&common::two_route_config(&sim.url)).await;
    let api = planes::Http::new(&g.url);
    let (_, pod) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &admin,
            Some(json!({"name": "support"})),
        )
        .await;
    let pod = pod["id"].as_str().unwrap().to_string();
    let (_, other) = api
        .call(
            Method::POST,
            "/admin/v1/pods",
            &admin,
            Some(json!({"name": "sales"})),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_string();
    let lead = user(&api, &admin, "lead", &pod, "lead").await;
    let builder = user(&api, &admin, "builder", &pod, "builder").await;
    let viewer = user(&api, &admin, "viewer", &pod, "viewer").await;
    let outsider = user(&api, &admin, "outsider", &other, "lead").await;

    // Who may create one.
    let create = |token: &str, name: &str| {
        let (api, token, name, pod) = (&api, token.to_string(), name.to_string(), pod.clone());
        async move {
            api.call(
                Method::POST,
                "/admin/v1/patterns",
                &token,
                Some(json!({"name": name, "pod_id": pod, "description": "triage"})),
            )
            .await
        }
    };
    assert_eq!(create(&viewer, "triage").await.0, 403);
    assert_eq!(create(&outsider, "triage").await.0, 404);
    assert_eq!(create(&builder, "bad@name").await.0, 400);
    let (st, p) = create(&builder, "triage").await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(create(&lead, "triage").await.0, 409);

    // Versions are checked with paths.
    let add = |token: &str, body: Value| {
        let (api, token) = (&api, token.to_string());
        async move {
            api.call(
                Method::POST,
                "/admin/v1/patterns/triage/versions",
                &token,
                Some(body),
            )
            .await
        }
    };
    for (body, param) in [
        (
            json!({"messages": [{"role": "user", "content": "{{ unclosed"}], "schema": {"type": "object"}}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "robot", "content": "x"}], "schema": {"type": "object"}}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": "{{ who }}"}], "schema": {"type": "object", "properties": {"ticket": {}}}}),
            "schema.properties",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "schema": {"type": "objekt"}}),
            "schema",
        ),
        (json!({"messages": [], "schema": {}}), "messages"),
    ] {
        let (st, v) = add(&builder, body.clone()).await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (400, Some(param)),
            "{body}: {v}"
        );
    }
    assert_eq!(add(&viewer, v1()).await.0, 403);
    assert_eq!(add(&outsider, v1()).await.0, 404);
    let (st, v) = add(&builder, v1()).await;
    assert_eq!((st, v["version"].as_i64()), (201, Some(1)), "{v}");
    let mut second = v1();
    second["messages"][1]["content"] = json!("Ticket (v2): {{ ticket }}");
    assert_eq!(add(&builder, second).await.1["version"], 2);

    // Labels: the owning pod's lead (or a platform admin) only.
    let label = |token: &str, label: &str, version: i64| {
        let (api, token, label) = (&api, token.to_string(), label.to_string());
        async move {
            api.call(
                Method::PUT,
                &format!("/admin/v1/patterns/triage/labels/{label}"),
                &token,
                Some(json!({ "version": version })),
            )
            .await
        }
    };
    assert_eq!(label(&builder, "production", 1).await.0, 403);
    assert_eq!(label(&outsider, "production", 1).await.0, 404);
    assert_eq!(label(&lead, "production", 9).await.0, 400);
    assert_eq!(label(&lead, "7", 1).await.0, 400);
    let (st, p) = label(&lead, "production", 1).await;
    assert_eq!(
        (st, p["labels"]["production"].as_i64()),
        (200, Some(1)),
        "{p}"
    );
    // Everyone with a token reads the library.
    let (st, list) = api
        .call(Method::GET, "/admin/v1/patterns", &outsider, None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["items"][0]["name"], "triage", "{list}");
    assert_eq!(list["items"][0]["versions"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["labels"]["production"], 1, "{list}");
    assert_eq!(list["next"], Value::Null);

    // A page at a time, by name, each with its own versions; a cursor that was never a
    // `next`, or a page size out of range, is refused and named.
    for name in ["zeta", "alpha", "mid.2", "mid-1"] {
        assert_eq!(create(&builder, name).await.0, 201, "{name}");
    }
    let (items, pages) = api.walk("/admin/v1/patterns", &outsider, 2, 5).await;
    let mut names = Vec::new();
    for p in &items {
        let n = p["name"].as_str().unwrap().to_string();
        let want = if n == "triage" { 2 } else { 0 };
        assert_eq!(p["versions"].as_array().unwrap().len(), want, "{p}");
        names.push(n);
    }
    assert_eq!(names, ["alpha", "mid-1", "mid.2", "triage", "zeta"]);
    assert_eq!(pages, 3);
    for (query, param) in [
        ("after=bad%20name", "after"),
        ("after=", "after"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("page=2", "page"),
    ] {
        let (st, v) = api
            .call(
                Method::GET,
                &format!("/admin/v1/patterns?{query}"),
                &outsider,
                None,
            )
            .await;
        assert_eq!(st, 400, "{query}: {v}");
        if param != "page" {
            assert_eq!(v["error"]["param"], param, "{query}: {v}");
        }
    }

    // On /v1: the rendered messages reach the model (the simulator echoes the last user message).
    let chat = |body: Value| {
        let (url, key) = (g.url.clone(), g.key.clone());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let text = |v: &Value| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (st, v) = chat(json!({"model": "m", "pattern": "triage@production", "variables": {"ticket": "charged twice"}})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(text(&v), "Ticket: charged twice");
    // Moving the label changes what the next request renders; a version can be pinned.
    label(&lead, "production", 2).await;
    let (_, v) =
        chat(json!({"model": "m", "pattern": "triage", "variables": {"ticket": "x"}})).await;
    assert_eq!(text(&v), "Ticket (v2): x");
    let (_, v) =
        chat(json!({"model": "m", "pattern": "triage@1", "variables": {"ticket": "y"}})).await;
    assert_eq!(text(&v), "Ticket: y");
    // The request's own messages follow the pattern's.
    let (_, v) = chat(
        json!({"model": "m", "pattern": "triage@1", "variables": {"ticket": "z"},
                             "messages": [{"role": "user", "content": "and more"}]}),
    )
    .await;
    assert_eq!(text(&v), "and more");

    // Mistakes are the caller's, with the path.
    for (body, param, words) in [
        (
            json!({"model": "m", "pattern": "nope@production"}),
            "pattern",
            "no pattern `nope`",
        ),
        (
            json!({"model": "m", "pattern": "triage@staging", "variables": {"ticket": "x"}}),
            "pattern",
            "no label `staging`",
        ),
        (
            json!({"model": "m", "pattern": "triage@9"}),
            "pattern",
            "no version 9",
        ),
        (
            json!({"model": "m", "pattern": "triage@1", "variables": {"ticket": 5}}),
            "variables.ticket",
            "string",
        ),
        (
            json!({"model": "m", "pattern": "triage@1", "variables": {}}),
            "variables",
            "ticket",
        ),
        (
            json!({"model": "m", "pattern": "triage@1", "variables": []}),
            "variables",
            "object",
        ),
        (json!({"model": "m", "pattern": 3}), "pattern", "string"),
        (
            json!({"model": "m", "variables": {"ticket": "x"}, "messages": [{"role": "user", "content": "x"}]}),
            "variables",
            "without a `pattern`",
        ),
        (
            json!({"model": "m"}),
            "messages",
            "`messages` is missing or empty",
        ),
    ] {
        let (st, v) = chat(body.clone()).await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (400, Some(param)),
            "{body}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(words),
            "{body}: {v}"
        );
    }

    // The ledger keeps the version each request used.
    let recs = planes::records(&g, 4).await;
    let used: Vec<Option<&str>> = recs.iter().map(|r| r.pattern.as_deref()).collect();
    assert_eq!(
        used,
        [
            Some("triage@1"),
            Some("triage@2"),
            Some("triage@1"),
            Some("triage@1")
        ]
    );
    // The audit trail says who moved which label from where to where.
    let (_, audit) = api
        .call(Method::GET, "/admin/v1/audit?limit=200", &admin, None)
        .await;
    let moves: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "pattern.label")
        .collect();
    assert_eq!(moves.len(), 2);
    assert_eq!(moves[1]["details"]["from"], 1);
    assert_eq!(moves[1]["details"]["to"], 2);
}

/// A suite whose prompt is a pattern: checked against the pattern's required variables, its
/// cases sent as `pattern` requests (recorded with the version), the version pinned on the run,
/// and the champion found by what `production` labels now.
#[tokio::test]
async fn suites_run_patterns_and_compare_with_the_production_version() {
    let sim = common::sim(SimConfig {
        echo: true,
        ..SimConfig::default()
    })
    .await;
    let (g, admin, control) = planes::serve_with_control(&common::two_route_config(&sim.url)).await;
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
    let uc = ok(
        Method::POST,
        "/admin/v1/use-cases",
        json!({"pod_id": pod, "name": "triage", "routes": ["m"]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        Method::POST,
        "/admin/v1/budgets",
        json!({"scope": "use_case_eval", "scope_id": uc, "amount_usd": "100", "period": "month", "mode": "hard"}),
    )
    .await;
    ok(
        Method::POST,
        "/admin/v1/patterns",
        json!({"name": "triage", "pod_id": pod}),
    )
    .await;
    ok(Method::POST, "/admin/v1/patterns/triage/versions", v1()).await;
    let mut second = v1();
    second["messages"][1]["content"] = json!("Ticket (v2): {{ ticket }}");
    ok(Method::POST, "/admin/v1/patterns/triage/versions", second).await;
    ok(
        Method::PUT,
        "/admin/v1/patterns/triage/labels/production",
        json!({"version": 1}),
    )
    .await;
    ok(
        Method::PUT,
        "/admin/v1/patterns/triage/labels/staging",
        json!({"version": 2}),
    )
    .await;

    let suite = |label: &str| {
        json!({"prompts": [{"id": "p", "pattern": format!("triage@{label}")}], "routes": ["m"],
               "tests": [{"vars": {"ticket": "a"}, "assert": [{"type": "contains", "value": "(v2)"}]},
                         {"vars": {"ticket": "b"}, "assert": [{"type": "contains", "value": "(v2)"}]}]})
    };
    let put = |doc: Value| {
        let (api, admin, uc) = (&api, admin.clone(), uc.clone());
        async move {
            api.call(
                Method::PUT,
                &format!("/admin/v1/use-cases/{uc}/suites/triage"),
                &admin,
                Some(json!({ "document": doc })),
            )
            .await
        }
    };
    // A missing pattern, and a test without a variable the pattern requires, are refused.
    let (st, v) = put(json!({"prompts": [{"pattern": "nope@production"}], "routes": ["m"], "tests": [{"vars": {}}]})).await;
    assert_eq!(
        (st, v["error"]["param"].as_str()),
        (400, Some("prompts[0].pattern")),
        "{v}"
    );
    let mut missing = suite("production");
    missing["tests"][1]["vars"] = json!({"other": 1});
    let (st, v) = put(missing).await;
    assert_eq!(
        (st, v["error"]["param"].as_str()),
        (400, Some("tests[1].vars")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing variable `ticket`, which pattern `triage@1` requires")
    );

    let run = |doc: Value| {
        let (api, admin, uc, control) = (&api, admin.clone(), uc.clone(), control.clone());
        async move {
            let (st, v) = put(doc).await;
            assert_eq!(st, 200, "{v}");
            let (st, r) = api
                .call(
                    Method::POST,
                    &format!("/admin/v1/use-cases/{uc}/eval-runs"),
                    &admin,
                    Some(json!({"suite": "triage"})),
                )
                .await;
            assert_eq!(st, 202, "{r}");
            let id = r["id"].as_str().unwrap().to_string();
            control.wait_for_run(&id).await;
            let (_, v) = api
                .call(
                    Method::GET,
                    &format!("/admin/v1/eval-runs/{id}"),
                    &admin,
                    None,
                )
                .await;
            assert_ne!(v["status"], "running", "{v}");
            v
        }
    };
    let a = run(suite("production")).await;
    assert_eq!(a["patterns"], json!(["triage@1"]));
    assert_eq!(a["pass_rate"], 0.0);
    assert_eq!(a["champion"], Value::Null, "{a}");
    let b = run(suite("staging")).await;
    assert_eq!(b["patterns"], json!(["triage@2"]));
    assert_eq!(b["pass_rate"], 1.0, "{b}");
    // The champion is the run of what production serves now (version 1): Δ = 1 − 0.
    assert_eq!(b["champion"]["run_id"], a["id"], "{b}");
    assert_eq!(b["champion"]["delta"], 1.0);
    // Each case was sent as a pattern request and recorded with its version.
    let recs = planes::records(&g, 4).await;
    let used: Vec<Option<&str>> = recs.iter().map(|r| r.pattern.as_deref()).collect();
    assert_eq!(
        used,
        [
            Some("triage@1"),
            Some("triage@1"),
            Some("triage@2"),
            Some("triage@2")
        ]
    );
    assert!(recs.iter().all(|r| r.evaluation));
}

/// A webhook receiver: its URL, and the alerts it got.
async fn hook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: bytes::Bytes| {
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

/// Scheduled evaluation on the injected clock: nothing runs before it is due or for a use case
/// not in production; a due run starts; a run whose pass rate falls (the pattern's production
/// label moved to a worse version) raises an `eval_regression` alert through the webhooks.
#[tokio::test]
async fn scheduled_runs_alert_on_a_regression() {
    const T0: i64 = 1_796_082_600_000;
    let clock = tollgate_types::clock::Clock::manual(T0);
    let sim = common::sim(SimConfig {
        echo: true,
        ..SimConfig::default()
    })
    .await;
    let (hook_url, mut alerts) = hook().await;
    let yaml = format!(
        "alerts:\n  webhooks: [{{ url: \"{hook_url}\" }}]\n{}",
        common::two_route_config(&sim.url)
    );
    let gw = common::gateway_only_at(&yaml, clock.clone()).await;
    let control = planes::control_for(&gw).await;
    let admin = control.take_new_admin_token().unwrap();
    let g = common::serve_gateway(gw, tollgate_control::router(control.clone())).await;
    control.set_gateway_address(g.url.trim_start_matches("http://").parse().unwrap());
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
    let uc = ok(
        Method::POST,
        "/admin/v1/use-cases",
        json!({"pod_id": pod, "name": "triage", "routes": ["m"]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(Method::PUT, "/admin/v1/gates", planes::gates_off()).await;
    for to in ["pilot", "production"] {
        ok(
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/stage"),
            json!({"to": to, "reason": "ship it"}),
        )
        .await;
    }
    ok(
        Method::POST,
        "/admin/v1/budgets",
        json!({"scope": "use_case_eval", "scope_id": uc, "amount_usd": "100", "period": "month", "mode": "hard"}),
    )
    .await;
    ok(
        Method::POST,
        "/admin/v1/patterns",
        json!({"name": "triage", "pod_id": pod}),
    )
    .await;
    ok(Method::POST, "/admin/v1/patterns/triage/versions", v1()).await;
    let mut worse = v1();
    worse["messages"][1]["content"] = json!("Ticket (v2): {{ ticket }}");
    ok(Method::POST, "/admin/v1/patterns/triage/versions", worse).await;
    ok(
        Method::PUT,
        "/admin/v1/patterns/triage/labels/production",
        json!({"version": 1}),
    )
    .await;
    ok(
        Method::PUT,
        &format!("/admin/v1/use-cases/{uc}/suites/nightly"),
        json!({"document": {"prompts": [{"pattern": "triage@production"}], "routes": ["m"],
                            "tests": [{"vars": {"ticket": "a"}, "assert": [{"type": "not-contains", "value": "(v2)"}]}]}}),
    )
    .await;
    // Bad schedules are refused.
    for (body, param) in [
        (json!({"every_minutes": 1}), "every_minutes"),
        (json!({"every_minutes": 60, "tolerance": 2}), "tolerance"),
    ] {
        let (st, v) = api
            .call(
                Method::PUT,
                &format!("/admin/v1/use-cases/{uc}/eval-schedules/nightly"),
                &admin,
                Some(body),
            )
            .await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (400, Some(param)),
            "{v}"
        );
    }
    let (st, _) = api
        .call(
            Method::PUT,
            &format!("/admin/v1/use-cases/{uc}/eval-schedules/nope"),
            &admin,
            Some(json!({"every_minutes": 60})),
        )
        .await;
    assert_eq!(st, 404);
    let s = ok(
        Method::PUT,
        &format!("/admin/v1/use-cases/{uc}/eval-schedules/nightly"),
        json!({"every_minutes": 60, "tolerance": 0.1}),
    )
    .await;
    assert_eq!(s["next_at"], "2026-12-01T00:50:00.000Z");
    // The schedules are listed by suite name a page at a time (two more for the while).
    let doc = json!({"document": {"prompts": [{"pattern": "triage@production"}], "routes": ["m"],
                                  "tests": [{"vars": {"ticket": "a"}, "assert": [{"type": "not-contains", "value": "x"}]}]}});
    for name in ["alpha", "omega"] {
        ok(
            Method::PUT,
            &format!("/admin/v1/use-cases/{uc}/suites/{name}"),
            doc.clone(),
        )
        .await;
        ok(
            Method::PUT,
            &format!("/admin/v1/use-cases/{uc}/eval-schedules/{name}"),
            json!({"every_minutes": 1440}),
        )
        .await;
    }
    let list = |q: &'static str| {
        let (api, admin, uc) = (&api, admin.clone(), uc.clone());
        async move {
            let (st, v) = api
                .call(
                    Method::GET,
                    &format!("/admin/v1/use-cases/{uc}/eval-schedules{q}"),
                    &admin,
                    None,
                )
                .await;
            let suites: Vec<String> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["suite"].as_str().unwrap().to_string())
                .collect();
            (st, suites, v["next"].clone(), v)
        }
    };
    let (st, all, next, _) = list("").await;
    assert_eq!(
        (st, all, next),
        (
            200,
            vec!["alpha".into(), "nightly".into(), "omega".into()],
            Value::Null
        )
    );
    let (_, first, next, v) = list("?limit=2").await;
    assert_eq!(
        (first, next),
        (vec!["alpha".into(), "nightly".into()], json!("nightly")),
        "{v}"
    );
    assert_eq!(v["items"][1]["tolerance"], 0.1, "{v}");
    let (_, rest, next, _) = list("?limit=2&after=nightly").await;
    assert_eq!((rest, next), (vec!["omega".to_string()], Value::Null));
    for (q, param) in [
        ("?after=", "after"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?page=2", "page"),
    ] {
        let (st, _, _, v) = list(q).await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (400, Some(param)),
            "{q}: {v}"
        );
    }
    for name in ["alpha", "omega"] {
        let (st, _) = api
            .call(
                Method::DELETE,
                &format!("/admin/v1/use-cases/{uc}/eval-schedules/{name}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(st, 204);
    }

    let finished = |id: String| {
        let (api, admin, control) = (&api, admin.clone(), control.clone());
        async move {
            control.wait_for_run(&id).await;
            let (_, v) = api
                .call(
                    Method::GET,
                    &format!("/admin/v1/eval-runs/{id}"),
                    &admin,
                    None,
                )
                .await;
            assert_ne!(v["status"], "running", "{v}");
            v
        }
    };
    // Not due a minute early.
    clock.set(T0 + 59 * 60_000);
    assert!(control.run_due().await.is_empty());
    clock.set(T0 + 60 * 60_000);
    let first = control.run_due().await;
    assert_eq!(first.len(), 1);
    let a = finished(first[0].clone()).await;
    assert_eq!(
        (a["trigger"].as_str(), a["pass_rate"].as_f64()),
        (Some("scheduled"), Some(1.0)),
        "{a}"
    );
    assert_eq!(a["created_by"], "scheduler");
    // Nothing again until the next hour.
    assert!(control.run_due().await.is_empty());
    // Production now serves the worse version: the next scheduled run falls, and says so.
    ok(
        Method::PUT,
        "/admin/v1/patterns/triage/labels/production",
        json!({"version": 2}),
    )
    .await;
    clock.set(T0 + 120 * 60_000);
    let second = control.run_due().await;
    let b = finished(second[0].clone()).await;
    assert_eq!(b["pass_rate"], 0.0, "{b}");
    let alert = loop {
        let a = tokio::time::timeout(std::time::Duration::from_secs(30), alerts.recv())
            .await
            .expect("an alert")
            .unwrap();
        if a["kind"] == "eval_regression" {
            break a;
        }
    };
    assert_eq!(alert["details"]["run"], b["id"]);
    assert_eq!(alert["details"]["previous_run"], a["id"]);
    assert_eq!(alert["details"]["previous_pass_rate"], 1.0);
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("dropped 100.0 points"),
        "{alert}"
    );
    // A use case leaving production is not run on its schedule any more.
    ok(
        Method::POST,
        &format!("/admin/v1/use-cases/{uc}/stage"),
        json!({"to": "retired", "reason": "done"}),
    )
    .await;
    clock.set(T0 + 180 * 60_000);
    assert!(control.run_due().await.is_empty());
}
