//! What every list and report of the admin API contains, per role: a member of pod A sees A's
//! rows and nothing of pod B (ids, names, routes, models, spend), and the org-wide roles see both
//! — so a route that forgets the caller's pods, or one that returns nothing, fails here.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use tollgate_gateway::Gateway;
use tollgate_store::{KeyQueries, LedgerQueries};
use tower::ServiceExt;

/// Shared routes for both pods, plus one only pod B's use case may call (so B's spend shows up
/// under a route and a model A never uses). `premium` is a model the catalog pairs with a cheaper
/// one, so the advice has premium-model rows for both pods.
fn config(sim_url: &str) -> String {
    format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{sim_url}/v1" }}
routes:
  - name: shared
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: premium
    deployments: [{{ provider: sim, model: gpt-4o-2024-08-06 }}]
  - name: route-bravo-only
    deployments: [{{ provider: sim, model: gpt-4.1-nano }}]
"#
    )
}

const LIST_CAP: usize = 2000;

struct Api {
    gw: Arc<Gateway>,
    router: axum::Router,
    admin: String,
}

impl Api {
    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// A GET that must answer 200; its body as text.
    async fn get_ok(&self, who: &str, path: &str, token: &str) -> String {
        let (s, _, text) = self.raw(Method::GET, path, token, None).await;
        assert_eq!(s, StatusCode::OK, "{who} GET {path}: {}", clip(&text));
        text
    }

    /// A GET that must answer 200 with JSON.
    async fn get_json(&self, who: &str, path: &str, token: &str) -> Value {
        let text = self.get_ok(who, path, token).await;
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{who} GET {path}: not JSON ({e}): {}", clip(&text)))
    }

    /// Every item of a paged list (`{items, next}`), following `next`; and all pages' text.
    async fn all_items(&self, who: &str, path: &str, token: &str) -> (Vec<Value>, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (mut items, mut text, mut after) = (Vec::new(), String::new(), None::<String>);
        loop {
            let page_path = match &after {
                None => format!("{path}{sep}limit=200"),
                Some(a) => format!("{path}{sep}limit=200&after={a}"),
            };
            let v = self.get_json(who, &page_path, token).await;
            text.push_str(&v.to_string());
            items.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
            assert!(items.len() < LIST_CAP, "{who} GET {path}: endless paging");
        }
        (items, text)
    }

    /// A call as the bootstrap admin that must succeed.
    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, _, text) = self.raw(method, path, &self.admin, Some(body)).await;
        assert!(s.is_success(), "{path}: {s} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn chat(&self, key: &str, route: &str) {
        // The same prompt on every route and in both pods: duplicate-prompt advice must count
        // duplicates within a use case, never across pods.
        let body = json!({"model": route, "messages": [{"role": "user", "content": "What is our refund policy?"}], "max_tokens": 20});
        let req = Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            status,
            StatusCode::OK,
            "chat on {route}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

fn clip(s: &str) -> String {
    if s.len() > 3000 {
        format!(
            "{}… ({} bytes)",
            s.chars().take(3000).collect::<String>(),
            s.len()
        )
    } else {
        s.to_string()
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn set<I: IntoIterator<Item = S>, S: Into<String>>(i: I) -> BTreeSet<String> {
    i.into_iter().map(Into::into).collect()
}

/// The values of `field` in `items`.
fn field_set(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .map(|x| {
            x[field]
                .as_str()
                .unwrap_or_else(|| panic!("no `{field}` in {x}"))
                .to_string()
        })
        .collect()
}

struct Member {
    id: String,
    email: String,
    name: String,
    role: &'static str,
    token: String,
}

/// One pod and everything in it.
struct Side {
    tag: &'static str,
    pod: String,
    pod_name: String,
    uc: String,
    uc_name: String,
    routes: Vec<&'static str>,
    /// Issued through the API and used.
    live_key: String,
    live_key_name: String,
    live_key_prefix: String,
    live_key_secret: String,
    /// Issued and revoked.
    revoked_key: String,
    revoked_key_name: String,
    /// Issued 40 days ago and never used.
    idle_key: String,
    idle_key_name: String,
    pod_budget: String,
    /// A soft monthly budget of one nano-dollar: at risk once anything is spent.
    uc_budget: String,
    key_budget: String,
    members: Vec<Member>,
    /// From the ledger, once the traffic is recorded.
    cost: u64,
    requests: u64,
    models: BTreeSet<String>,
    days: BTreeSet<String>,
}

impl Side {
    /// Every string that identifies this pod's data; none may reach a member of the other pod.
    fn markers(&self) -> Vec<(String, String)> {
        let mut m = vec![
            ("pod id".to_string(), self.pod.clone()),
            ("pod name".into(), self.pod_name.clone()),
            ("use case id".into(), self.uc.clone()),
            ("use case name".into(), self.uc_name.clone()),
            ("live key id".into(), self.live_key.clone()),
            ("live key name".into(), self.live_key_name.clone()),
            ("live key prefix".into(), self.live_key_prefix.clone()),
            ("revoked key id".into(), self.revoked_key.clone()),
            ("revoked key name".into(), self.revoked_key_name.clone()),
            ("idle key id".into(), self.idle_key.clone()),
            ("idle key name".into(), self.idle_key_name.clone()),
            ("pod budget id".into(), self.pod_budget.clone()),
            ("use case budget id".into(), self.uc_budget.clone()),
            ("key budget id".into(), self.key_budget.clone()),
        ];
        for u in &self.members {
            m.push((format!("{} member id", u.role), u.id.clone()));
            m.push((format!("{} member email", u.role), u.email.clone()));
            m.push((format!("{} member name", u.role), u.name.clone()));
        }
        m
    }

    fn budgets(&self) -> BTreeSet<String> {
        set([&self.pod_budget, &self.uc_budget, &self.key_budget].map(String::clone))
    }

    fn member_ids(&self) -> BTreeSet<String> {
        self.members.iter().map(|u| u.id.clone()).collect()
    }
}

/// A pod tagged `tag` with a production use case on `routes`, keys (live, revoked, idle),
/// budgets on the pod, the use case and the live key, and a member per role in `roles`, each
/// with a personal token.
async fn side(
    api: &Api,
    tag: &'static str,
    routes: Vec<&'static str>,
    roles: &[&'static str],
) -> Side {
    let pod_name = format!("pod-{tag}");
    let pod = id(&api
        .ok(Method::POST, "/admin/v1/pods", json!({"name": pod_name}))
        .await);
    let uc_name = format!("usecase-{tag}");
    let uc = id(&api
        .ok(
            Method::POST,
            "/admin/v1/use-cases",
            json!({"pod_id": pod, "name": uc_name, "routes": routes}),
        )
        .await);
    api.ok(Method::PUT, "/admin/v1/gates", planes::gates_off())
        .await;
    for to in ["pilot", "production"] {
        api.ok(
            Method::POST,
            &format!("/admin/v1/use-cases/{uc}/stage"),
            json!({"to": to, "reason": "scoping fixture"}),
        )
        .await;
    }
    let live_key_name = format!("key-{tag}-live");
    let live = api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc, "name": live_key_name}),
        )
        .await;
    let revoked_key_name = format!("key-{tag}-revoked");
    let revoked = id(&api
        .ok(
            Method::POST,
            "/admin/v1/keys",
            json!({"use_case_id": uc, "name": revoked_key_name}),
        )
        .await["key"]);
    api.ok(
        Method::POST,
        &format!("/admin/v1/keys/{revoked}/revoke"),
        json!({}),
    )
    .await;
    let idle_key_name = format!("key-{tag}-idle");
    let (mut idle, _) = tollgate_store::keys::new_api_key(
        api.gw.keyring.secret(),
        &uc,
        None,
        &idle_key_name,
        None,
        None,
        "test",
    );
    idle.created_at = api.gw.clock.now_ms() - 40 * 86_400_000;
    api.gw.store.create_key("test", &idle).await.unwrap();
    let live_key = id(&live["key"]);
    let budget = |scope: &str, scope_id: &str, amount: &str| json!({"scope": scope, "scope_id": scope_id, "amount_usd": amount, "period": "month", "mode": "soft"});
    let pod_budget = id(&api
        .ok(
            Method::POST,
            "/admin/v1/budgets",
            budget("pod", &pod, "1000"),
        )
        .await);
    let uc_budget = id(&api
        .ok(
            Method::POST,
            "/admin/v1/budgets",
            budget("use_case", &uc, "0.000000001"),
        )
        .await);
    let key_budget = id(&api
        .ok(
            Method::POST,
            "/admin/v1/budgets",
            budget("key", &live_key, "1000"),
        )
        .await);
    let mut members = Vec::new();
    for role in roles {
        let email = format!("{role}@{tag}.example.com");
        let name = format!("{tag} {role}");
        let uid = id(&api
            .ok(
                Method::POST,
                "/admin/v1/users",
                json!({"email": email, "name": name}),
            )
            .await);
        api.ok(
            Method::PUT,
            &format!("/admin/v1/pods/{pod}/members/{uid}"),
            json!({"role": role}),
        )
        .await;
        let token = api
            .ok(
                Method::POST,
                &format!("/admin/v1/users/{uid}/tokens"),
                json!({"name": "t"}),
            )
            .await["secret"]
            .as_str()
            .unwrap()
            .to_string();
        members.push(Member {
            id: uid,
            email,
            name,
            role,
            token,
        });
    }
    Side {
        tag,
        pod,
        pod_name,
        uc,
        uc_name,
        routes,
        live_key,
        live_key_name,
        live_key_prefix: live["key"]["prefix"].as_str().unwrap().to_string(),
        live_key_secret: live["secret"].as_str().unwrap().to_string(),
        revoked_key: revoked,
        revoked_key_name,
        idle_key: idle.id,
        idle_key_name,
        pod_budget,
        uc_budget,
        key_budget,
        members,
        cost: 0,
        requests: 0,
        models: BTreeSet::new(),
        days: BTreeSet::new(),
    }
}

/// An org-wide user with a personal token.
async fn org_user(api: &Api, role: &str) -> String {
    let uid = id(&api
        .ok(
            Method::POST,
            "/admin/v1/users",
            json!({"email": format!("{role}@org.example.com"), "name": format!("org {role}"), "org_role": role}),
        )
        .await);
    api.ok(
        Method::POST,
        &format!("/admin/v1/users/{uid}/tokens"),
        json!({"name": "t"}),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Who calls, and what they must see.
struct Caller<'a> {
    who: String,
    token: String,
    /// The pods whose data the caller must see, exactly.
    sees: Vec<&'a Side>,
    /// The pods of which nothing may appear in any answer.
    hidden: Vec<&'a Side>,
    /// Whether the audit trail is readable.
    audit: bool,
    /// Org-wide: sees users beyond the pods' members.
    org_wide: bool,
}

impl Caller<'_> {
    fn union<F: Fn(&Side) -> BTreeSet<String>>(&self, f: F) -> BTreeSet<String> {
        self.sees.iter().flat_map(|s| f(s)).collect()
    }

    fn cost(&self) -> u64 {
        self.sees.iter().map(|s| s.cost).sum()
    }

    fn requests(&self) -> u64 {
        self.sees.iter().map(|s| s.requests).sum()
    }

    /// Nothing of a hidden pod in `text`.
    fn assert_nothing_hidden(&self, path: &str, text: &str) {
        for side in &self.hidden {
            for (what, marker) in side.markers() {
                assert!(
                    !text.contains(&marker),
                    "{} GET {path}: pod {}'s {what} `{marker}` is visible: {}",
                    self.who,
                    side.tag,
                    clip(text)
                );
            }
            for route in &side.routes {
                if self.sees.iter().all(|s| !s.routes.contains(route)) {
                    assert!(
                        !text.contains(route),
                        "{} GET {path}: pod {}'s route `{route}` is visible: {}",
                        self.who,
                        side.tag,
                        clip(text)
                    );
                }
            }
            for model in &side.models {
                if self.sees.iter().all(|s| !s.models.contains(model)) {
                    assert!(
                        !text.contains(model.as_str()),
                        "{} GET {path}: pod {}'s model `{model}` is visible: {}",
                        self.who,
                        side.tag,
                        clip(text)
                    );
                }
            }
        }
    }

    /// `want` ⊆ `text`.
    fn assert_shows(&self, path: &str, text: &str, want: &[&String]) {
        for w in want {
            assert!(
                text.contains(w.as_str()),
                "{} GET {path}: `{w}` missing: {}",
                self.who,
                clip(text)
            );
        }
    }
}

/// Every list and report route, as `c`: each answer holds exactly the visible pods' rows.
async fn check_reads(api: &Api, c: &Caller<'_>, month: &str) {
    let who = c.who.as_str();
    let t = c.token.as_str();

    // Pods.
    let path = "/admin/v1/pods";
    let (items, text) = api.all_items(who, path, t).await;
    c.assert_nothing_hidden(path, &text);
    assert_eq!(
        field_set(&items, "id"),
        c.union(|s| set([s.pod.clone()])),
        "{who} GET {path}"
    );
    c.assert_shows(
        path,
        &text,
        &c.sees.iter().map(|s| &s.pod_name).collect::<Vec<_>>(),
    );
    for s in &c.sees {
        let path = format!("/admin/v1/pods/{}", s.pod);
        let text = api.get_ok(who, &path, t).await;
        c.assert_nothing_hidden(&path, &text);
    }

    // Members: the visible pods' members; a hidden pod's members are 404.
    for s in &c.sees {
        let path = format!("/admin/v1/pods/{}/members", s.pod);
        let (items, text) = api.all_items(who, &path, t).await;
        c.assert_nothing_hidden(&path, &text);
        assert_eq!(
            field_set(&items, "user_id"),
            s.member_ids(),
            "{who} GET {path}"
        );
        assert_eq!(field_set(&items, "pod_id"), set([s.pod.clone()]));
    }
    for s in &c.hidden {
        for path in [
            format!("/admin/v1/pods/{}", s.pod),
            format!("/admin/v1/pods/{}/members", s.pod),
            format!("/admin/v1/use-cases/{}", s.uc),
            format!("/admin/v1/use-cases/{}/stage-changes", s.uc),
            format!("/admin/v1/keys/{}", s.live_key),
            format!("/admin/v1/keys/{}", s.revoked_key),
            format!("/admin/v1/keys/{}", s.idle_key),
            format!("/admin/v1/budgets/{}", s.pod_budget),
            format!("/admin/v1/budgets/{}", s.uc_budget),
            format!("/admin/v1/budgets/{}", s.key_budget),
        ]
        .into_iter()
        .chain(
            s.members
                .iter()
                .map(|u| format!("/admin/v1/users/{}", u.id)),
        ) {
            let (st, _, text) = api.raw(Method::GET, &path, t, None).await;
            assert_eq!(
                st,
                StatusCode::NOT_FOUND,
                "{who} GET {path}: {}",
                clip(&text)
            );
            // The 404 names the id asked for, nothing else of the pod.
            for (what, marker) in s.markers() {
                if !path.contains(&marker) {
                    assert!(
                        !text.contains(&marker),
                        "{who} GET {path}: the 404 shows pod {}'s {what}: {text}",
                        s.tag
                    );
                }
            }
        }
    }

    // Users: the members of the caller's pods (org-wide roles: everyone).
    let path = "/admin/v1/users";
    let (items, text) = api.all_items(who, path, t).await;
    c.assert_nothing_hidden(path, &text);
    let users = field_set(&items, "id");
    let members = c.union(Side::member_ids);
    if c.org_wide {
        assert!(
            users.is_superset(&members),
            "{who} GET {path}: {users:?} ⊉ {members:?}"
        );
    } else {
        assert_eq!(users, members, "{who} GET {path}");
    }

    // Use cases, unfiltered and filtered.
    let all_ucs = c.union(|s| set([s.uc.clone()]));
    for path in [
        "/admin/v1/use-cases".to_string(),
        "/admin/v1/use-cases?stage=production".to_string(),
    ] {
        let (items, text) = api.all_items(who, &path, t).await;
        c.assert_nothing_hidden(&path, &text);
        assert_eq!(field_set(&items, "id"), all_ucs, "{who} GET {path}");
        c.assert_shows(
            &path,
            &text,
            &c.sees.iter().map(|s| &s.uc_name).collect::<Vec<_>>(),
        );
    }
    for s in c.sees.iter().chain(&c.hidden) {
        let path = format!("/admin/v1/use-cases?pod_id={}", s.pod);
        let (items, text) = api.all_items(who, &path, t).await;
        c.assert_nothing_hidden(&path, &text);
        let want = if c.sees.iter().any(|v| v.pod == s.pod) {
            set([s.uc.clone()])
        } else {
            BTreeSet::new()
        };
        assert_eq!(field_set(&items, "id"), want, "{who} GET {path}");
    }

    // Keys: active ones, then with the inactive, then per use case.
    let path = "/admin/v1/keys";
    let (items, text) = api.all_items(who, path, t).await;
    c.assert_nothing_hidden(path, &text);
    assert_eq!(
        field_set(&items, "id"),
        c.union(|s| set([s.live_key.clone(), s.idle_key.clone()])),
        "{who} GET {path}"
    );
    let path = "/admin/v1/keys?include_inactive=true";
    let (items, text) = api.all_items(who, path, t).await;
    c.assert_nothing_hidden(path, &text);
    assert_eq!(
        field_set(&items, "id"),
        c.union(|s| set([
            s.live_key.clone(),
            s.idle_key.clone(),
            s.revoked_key.clone()
        ])),
        "{who} GET {path}"
    );
    for s in c.sees.iter().chain(&c.hidden) {
        let path = format!("/admin/v1/keys?use_case_id={}&include_inactive=true", s.uc);
        let (items, text) = api.all_items(who, &path, t).await;
        c.assert_nothing_hidden(&path, &text);
        let want = if c.sees.iter().any(|v| v.uc == s.uc) {
            set([
                s.live_key.clone(),
                s.idle_key.clone(),
                s.revoked_key.clone(),
            ])
        } else {
            BTreeSet::new()
        };
        assert_eq!(field_set(&items, "id"), want, "{who} GET {path}");
    }

    // Budgets.
    let path = "/admin/v1/budgets";
    let (items, text) = api.all_items(who, path, t).await;
    c.assert_nothing_hidden(path, &text);
    assert_eq!(
        field_set(&items, "id"),
        c.union(Side::budgets),
        "{who} GET {path}"
    );

    // The audit trail: org-wide readers only; they see both pods' changes.
    let path = "/admin/v1/audit";
    if c.audit {
        let mut text = String::new();
        let mut after = 0;
        loop {
            let p = format!("{path}?limit=200&after={after}");
            let v = api.get_json(who, &p, t).await;
            let events = v.as_array().unwrap();
            let Some(last) = events.last() else { break };
            after = last["seq"].as_i64().unwrap();
            text.push_str(&v.to_string());
        }
        c.assert_nothing_hidden(path, &text);
        for s in &c.sees {
            let mut ids = vec![&s.pod, &s.uc, &s.live_key, &s.revoked_key, &s.idle_key];
            ids.extend([&s.pod_budget, &s.uc_budget, &s.key_budget]);
            ids.extend(s.members.iter().map(|u| &u.id));
            c.assert_shows(path, &text, &ids);
        }
    } else {
        let (st, _, text) = api.raw(Method::GET, path, t, None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{who} GET {path}: {text}");
        c.assert_nothing_hidden(path, &text);
    }

    // Spend: every grouping, a range and a calendar month, JSON and CSV.
    for by in ["pod", "use_case", "key", "route", "model", "day"] {
        let want = match by {
            "pod" => c.union(|s| set([s.pod.clone()])),
            "use_case" => c.union(|s| set([s.uc.clone()])),
            "key" => c.union(|s| set([s.live_key.clone()])),
            "route" => c.union(|s| set(s.routes.iter().copied())),
            "model" => c.union(|s| s.models.clone()),
            _ => c.union(|s| s.days.clone()),
        };
        for range in [
            "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z".to_string(),
            format!("month={month}"),
        ] {
            let path = format!("/admin/v1/reports/spend?by={by}&{range}");
            let text = api.get_ok(who, &path, t).await;
            c.assert_nothing_hidden(&path, &text);
            let r: Value = serde_json::from_str(&text).unwrap();
            let rows = r["rows"].as_array().unwrap();
            assert_eq!(field_set(rows, "group"), want, "{who} GET {path}");
            assert_eq!(
                r["total"]["cost_nano_usd"],
                c.cost(),
                "{who} GET {path}: {r}"
            );
            assert_eq!(
                r["total"]["requests"],
                c.requests(),
                "{who} GET {path}: {r}"
            );
            if by == "pod" || by == "use_case" || by == "key" {
                let names: BTreeSet<String> = field_set(rows, "name");
                let want_names = c.union(|s| {
                    set([match by {
                        "pod" => s.pod_name.clone(),
                        "use_case" => s.uc_name.clone(),
                        _ => s.live_key_name.clone(),
                    }])
                });
                assert_eq!(names, want_names, "{who} GET {path}");
            }

            let path = format!("{path}&format=csv");
            let text = api.get_ok(who, &path, t).await;
            c.assert_nothing_hidden(&path, &text);
            let mut csv = csv::Reader::from_reader(text.as_bytes());
            let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
            let (total, rows) = records.split_last().unwrap();
            assert_eq!(&total[0], "total", "{who} GET {path}: {text}");
            assert_eq!(
                total[10].parse::<u64>().unwrap(),
                c.cost(),
                "{who} GET {path}: {text}"
            );
            assert_eq!(
                total[2].parse::<u64>().unwrap(),
                c.requests(),
                "{who} GET {path}"
            );
            assert_eq!(
                set(rows.iter().map(|r| r[0].to_string())),
                want,
                "{who} GET {path}"
            );
        }
    }

    // Forecast: the total, by pod, by use case.
    for (by, want) in [
        ("", BTreeSet::new()),
        ("?by=pod", c.union(|s| set([s.pod.clone()]))),
        ("?by=use_case", c.union(|s| set([s.uc.clone()]))),
    ] {
        let path = format!("/admin/v1/reports/forecast{by}");
        let text = api.get_ok(who, &path, t).await;
        c.assert_nothing_hidden(&path, &text);
        let f: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            field_set(f["rows"].as_array().unwrap(), "group"),
            want,
            "{who} GET {path}"
        );
        assert_eq!(
            f["total"]["spent_nano_usd"],
            c.cost(),
            "{who} GET {path}: {f}"
        );
        assert_eq!(
            f["total"]["window_spent_nano_usd"],
            c.cost(),
            "{who} GET {path}: {f}"
        );
    }

    // Advice: duplicate prompts, premium models, idle keys, budgets at risk.
    let path = "/admin/v1/reports/advice";
    let text = api.get_ok(who, path, t).await;
    c.assert_nothing_hidden(path, &text);
    let a: Value = serde_json::from_str(&text).unwrap();
    let ucs = c.union(|s| set([s.uc.clone()]));
    let dup = a["duplicate_prompts"].as_array().unwrap();
    assert_eq!(field_set(dup, "use_case_id"), ucs, "{who} GET {path}: {a}");
    for d in dup {
        let s = c
            .sees
            .iter()
            .find(|s| d["use_case_id"] == s.uc.as_str())
            .unwrap();
        // Every route got the same prompt twice: one duplicate per route, never counted
        // against another pod's identical prompts.
        assert_eq!(d["requests"], s.requests, "{who} GET {path}: {d}");
        assert_eq!(d["duplicates"], s.routes.len(), "{who} GET {path}: {d}");
        assert_eq!(d["name"], s.uc_name.as_str());
    }
    let premium = a["premium_models"].as_array().unwrap();
    assert_eq!(
        field_set(premium, "use_case_id"),
        ucs,
        "{who} GET {path}: {a}"
    );
    assert_eq!(
        field_set(a["idle_keys"].as_array().unwrap(), "key_id"),
        c.union(|s| set([s.idle_key.clone()])),
        "{who} GET {path}: {a}"
    );
    assert_eq!(
        field_set(a["budgets_at_risk"].as_array().unwrap(), "budget_id"),
        c.union(|s| set([s.uc_budget.clone()])),
        "{who} GET {path}: {a}"
    );

    // FOCUS export of the month: CSV (the default) and JSON.
    let path = format!("/admin/v1/reports/focus?month={month}");
    let (st, headers, text) = api.raw(Method::GET, &path, t, None).await;
    assert_eq!(st, StatusCode::OK, "{who} GET {path}: {}", clip(&text));
    c.assert_nothing_hidden(&path, &text);
    assert_eq!(
        headers["x-tollgate-focus-billed-nano-usd"]
            .to_str()
            .unwrap(),
        c.cost().to_string(),
        "{who} GET {path}"
    );
    let mut csv = csv::Reader::from_reader(text.as_bytes());
    let head = csv.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let (pod_col, uc_col, route_col) = (col("x_PodId"), col("x_UseCaseId"), col("x_Route"));
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(
        headers["x-tollgate-focus-rows"].to_str().unwrap(),
        records.len().to_string(),
        "{who} GET {path}"
    );
    assert_eq!(
        set(records.iter().map(|r| r[pod_col].to_string())),
        c.union(|s| set([s.pod.clone()])),
        "{who} GET {path}"
    );
    assert_eq!(
        set(records.iter().map(|r| r[uc_col].to_string())),
        ucs,
        "{who} GET {path}"
    );
    assert_eq!(
        set(records.iter().map(|r| r[route_col].to_string())),
        c.union(|s| set(s.routes.iter().copied())),
        "{who} GET {path}"
    );

    let path = format!("/admin/v1/reports/focus?month={month}&format=json");
    let text = api.get_ok(who, &path, t).await;
    c.assert_nothing_hidden(&path, &text);
    let f: Value = serde_json::from_str(&text).unwrap();
    let rows = f["rows"].as_array().unwrap();
    assert_eq!(
        field_set(rows, "x_PodId"),
        c.union(|s| set([s.pod.clone()])),
        "{who} GET {path}"
    );
    assert_eq!(field_set(rows, "x_UseCaseId"), ucs, "{who} GET {path}");
    assert_eq!(
        field_set(rows, "SubAccountName"),
        c.union(|s| set([s.uc_name.clone()]))
    );
    assert_eq!(
        f["summary"]["billed_nano_usd"],
        c.cost(),
        "{who} GET {path}"
    );
    assert_eq!(
        f["summary"]["spend_report_nano_usd"],
        c.cost(),
        "{who} GET {path}"
    );
    assert_eq!(f["summary"]["rows"], rows.len(), "{who} GET {path}");
}

/// Pods A and B with a use case, keys, budgets, members and recorded traffic each: every pod
/// role of A sees A's rows and nothing of B in every list and report (and B's viewer nothing of
/// A); platform admins, finops and auditors see both.
#[tokio::test]
async fn every_list_and_report_holds_only_the_callers_pods() {
    let s = common::sim(Default::default()).await;
    // One manual clock for both planes: the month of the traffic and of the reports cannot turn
    // during the test (month boundaries have a test of their own).
    let clock = tollgate_types::clock::Clock::manual(tollgate_store::now_ms());
    let gw = common::gateway_only_at(&config(&s.url), clock).await;
    let (router, _, admin) = planes::app(&gw).await;
    let api = Api { gw, router, admin };

    let mut a = side(
        &api,
        "alpha",
        vec!["shared", "premium"],
        &["lead", "builder", "domain_expert", "analyst", "viewer"],
    )
    .await;
    let mut b = side(
        &api,
        "bravo",
        vec!["shared", "premium", "route-bravo-only"],
        &["lead", "viewer"],
    )
    .await;
    let platform_admin = org_user(&api, "platform_admin").await;
    let finops = org_user(&api, "finops").await;
    let auditor = org_user(&api, "auditor").await;

    // Traffic: every route of each use case twice, with one prompt; the month of the reports
    // is the month it happened in.
    let started = api.gw.clock.now_ms();
    let month = tollgate_types::time::rfc3339(started)[..7].to_string();
    for side in [&a, &b] {
        for route in &side.routes {
            for _ in 0..2 {
                api.chat(&side.live_key_secret, route).await;
            }
        }
    }
    let expected = (2 * (a.routes.len() + b.routes.len())) as u64;
    api.gw.books.ledger.written_at_least(expected).await;
    let records = api.gw.store.list_records(0, i64::MAX, 1000).await.unwrap();
    assert_eq!(records.len() as u64, expected);
    for side in [&mut a, &mut b] {
        let mine: Vec<_> = records.iter().filter(|r| r.pod_id == side.pod).collect();
        assert_eq!(mine.len(), 2 * side.routes.len());
        side.cost = mine.iter().map(|r| r.cost_nano_usd.unwrap()).sum();
        side.requests = mine.len() as u64;
        side.models = mine.iter().map(|r| r.model.clone().unwrap()).collect();
        side.days = mine
            .iter()
            .map(|r| tollgate_types::time::rfc3339(r.at)[..10].to_string())
            .collect();
        assert!(side.cost > 0, "priced traffic in pod {}", side.tag);
    }
    assert!(records.iter().all(|r| r.at >= started));
    assert_ne!(
        a.cost, b.cost,
        "the pods' spend differs, so a total shows whose it is"
    );

    // Every pod role of A: A's rows only.
    for m in &a.members {
        let c = Caller {
            who: format!("pod A's {}", m.role),
            token: m.token.clone(),
            sees: vec![&a],
            hidden: vec![&b],
            audit: false,
            org_wide: false,
        };
        check_reads(&api, &c, &month).await;
    }
    // And the other way round.
    for m in &b.members {
        let c = Caller {
            who: format!("pod B's {}", m.role),
            token: m.token.clone(),
            sees: vec![&b],
            hidden: vec![&a],
            audit: false,
            org_wide: false,
        };
        check_reads(&api, &c, &month).await;
    }
    // Org-wide readers see both pods, so the checks above cannot pass on empty answers.
    for (who, token, audit) in [
        ("the bootstrap admin", api.admin.clone(), true),
        ("a platform admin", platform_admin, true),
        ("finops", finops, false),
        ("an auditor", auditor, true),
    ] {
        let c = Caller {
            who: who.to_string(),
            token,
            sees: vec![&a, &b],
            hidden: vec![],
            audit,
            org_wide: true,
        };
        check_reads(&api, &c, &month).await;
    }
}
