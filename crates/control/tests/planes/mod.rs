//! Both planes together, as the binary composes them: the gateway (from the gateway's own test
//! helpers, `common`) with the control plane's router beside it.

#![allow(dead_code)]

use crate::common::{self, Gw};
use std::sync::Arc;
use tollgate_control::Control;
use tollgate_gateway::Gateway;

/// The control plane over `gw`'s store and secret, telling `gw` about changes.
pub async fn control_for(gw: &Arc<Gateway>) -> Arc<Control> {
    Control::new_with_clock(
        &gw.config,
        gw.store.clone(),
        gw.keyring.secret().clone(),
        gw.clone(),
        gw.clock.clone(),
    )
    .await
    .unwrap()
}

/// One in-process app serving both planes, its control plane and the bootstrap admin token.
pub async fn app(gw: &Arc<Gateway>) -> (axum::Router, Arc<Control>, String) {
    let control = control_for(gw).await;
    let token = control
        .take_new_admin_token()
        .expect("a fresh store generates the admin token");
    let router =
        tollgate_gateway::router_with(gw.clone(), tollgate_control::router(control.clone()));
    (router, control, token)
}

/// A gateway for `yaml` served on port 0 with the control plane beside it, and the admin token.
pub async fn serve(yaml: &str) -> (Gw, String) {
    serve_at(yaml, tollgate_types::clock::Clock::system()).await
}

/// [`serve`], with the control plane's handle (to wait for the runs it starts).
pub async fn serve_with_control(yaml: &str) -> (Gw, String, Arc<Control>) {
    let gw = common::gateway_only(yaml).await;
    let control = control_for(&gw).await;
    let token = control
        .take_new_admin_token()
        .expect("a fresh store generates the admin token");
    let served = common::serve_gateway(gw, tollgate_control::router(control.clone())).await;
    control.set_gateway_address(
        served
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("the served address"),
    );
    (served, token, control)
}

/// [`serve`] with both planes reading `clock`.
pub async fn serve_at(yaml: &str, clock: tollgate_types::clock::Clock) -> (Gw, String) {
    let gw = common::gateway_only_at(yaml, clock).await;
    let control = control_for(&gw).await;
    let token = control
        .take_new_admin_token()
        .expect("a fresh store generates the admin token");
    let served = common::serve_gateway(gw, tollgate_control::router(control.clone())).await;
    // Evaluation runs send their cases to the gateway beside them.
    control.set_gateway_address(
        served
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("the served address"),
    );
    (served, token)
}

/// One in-process call of `router` with `Authorization: Bearer <token>` and an optional JSON
/// body: the status and the JSON answer (`null` when it is not JSON).
pub async fn call(
    router: &axum::Router,
    method: http::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (http::StatusCode, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let method_name = method.clone();
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            axum::body::Body::from(b.to_string())
        }
        None => axum::body::Body::empty(),
    };
    let resp = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let content_type = conformance::content_type(resp.headers());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let parsed = serde_json::from_slice(&bytes).ok();
    conformance::check(
        method_name.as_str(),
        path,
        status.as_u16(),
        &content_type,
        parsed.as_ref(),
    );
    (status, parsed.unwrap_or(serde_json::Value::Null))
}

/// The admin API over real HTTP (a served gateway), as a client outside would call it.
pub struct Http {
    /// The gateway's base URL.
    pub url: String,
    http: reqwest::Client,
}

impl Http {
    /// A client of the gateway at `url`.
    pub fn new(url: &str) -> Http {
        Http {
            url: url.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Sets the org default policy to `policy` as `admin` (asserting it was stored).
    pub async fn put_default_policy(&self, admin: &str, policy: serde_json::Value) {
        let (st, v) = self
            .call(
                reqwest::Method::PUT,
                "/admin/v1/policies/default",
                admin,
                Some(serde_json::json!({ "policy": policy })),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }

    /// `method path` with `Authorization: Bearer <token>` and an optional JSON body: the status
    /// and the JSON answer (`null` when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method_name = method.clone();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = conformance::content_type(resp.headers());
        let text = resp.text().await.unwrap();
        let parsed = serde_json::from_str(&text).ok();
        conformance::check(
            method_name.as_str(),
            path,
            status,
            &content_type,
            parsed.as_ref(),
        );
        (status, parsed.unwrap_or(serde_json::Value::Null))
    }

    /// Every item of the paged list `path` read `limit` at a time as `token`, following each
    /// page's `next` (percent-encoded) as `after`: every page a 200 of at most `limit` items.
    /// Returns the items and how many pages; past `cap` items it fails (a cursor that does not
    /// move would page forever).
    pub async fn walk(
        &self,
        path: &str,
        token: &str,
        limit: usize,
        cap: usize,
    ) -> (Vec<serde_json::Value>, usize) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (mut items, mut pages, mut after) = (Vec::new(), 0, None::<String>);
        loop {
            let page_path = match &after {
                None => format!("{path}{sep}limit={limit}"),
                Some(a) => format!(
                    "{path}{sep}limit={limit}&after={}",
                    url::form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>()
                ),
            };
            let (st, page) = self
                .call(reqwest::Method::GET, &page_path, token, None)
                .await;
            assert_eq!(st, 200, "{page_path}: {page}");
            let got = page["items"].as_array().unwrap();
            assert!(got.len() <= limit, "{page_path}: {page}");
            items.extend(got.iter().cloned());
            pages += 1;
            assert!(items.len() <= cap, "{path}: endless paging");
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return (items, pages),
            }
        }
    }
}

/// The ledger's records once its writer has written at least `n` (it writes in the background:
/// waited for as an event), oldest first.
pub async fn records(g: &Gw, n: u64) -> Vec<tollgate_store::RequestRecord> {
    use tollgate_store::LedgerQueries;
    g.gw.books.ledger.written_at_least(n).await;
    let mut r = g.gw.store.list_records(0, i64::MAX, 1000).await.unwrap();
    r.sort_by(|a, b| a.id.cmp(&b.id));
    r
}

/// Users of each role and their tokens: (name, token).
pub async fn people(api: &Http, admin: &str, pod_a: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![("bootstrap", admin.to_string())];
    for (i, (who, org_role, pod_role)) in [
        ("platform_admin", Some("platform_admin"), None),
        ("risk_officer", Some("risk_officer"), None),
        ("finops", Some("finops"), None),
        ("auditor", Some("auditor"), None),
        ("lead", None, Some("lead")),
        ("builder", None, Some("builder")),
        ("viewer", None, Some("viewer")),
        ("nobody", None, None),
    ]
    .into_iter()
    .enumerate()
    {
        let (st, u) = api
            .call(
                reqwest::Method::POST,
                "/admin/v1/users",
                admin,
                Some(serde_json::json!({"email": format!("p{i}@example.com"), "name": who, "org_role": org_role})),
            )
            .await;
        assert_eq!(st, 201, "{u}");
        let uid = u["id"].as_str().unwrap();
        if let Some(role) = pod_role {
            let (st, _) = api
                .call(
                    reqwest::Method::PUT,
                    &format!("/admin/v1/pods/{pod_a}/members/{uid}"),
                    admin,
                    Some(serde_json::json!({"role": role})),
                )
                .await;
            assert!(st == 200 || st == 201, "{st}");
        }
        let (_, t) = api
            .call(
                reqwest::Method::POST,
                &format!("/admin/v1/users/{uid}/tokens"),
                admin,
                Some(serde_json::json!({"name": "t"})),
            )
            .await;
        out.push((who, t["secret"].as_str().unwrap().to_string()));
    }
    out
}

/// Gates with nothing to check: for tests about other things, which move use cases between stages
/// freely (the gates have their own tests, in `gates.rs`).
pub fn gates_off() -> serde_json::Value {
    serde_json::json!({"pilot": {"checks": [], "approvals": []}, "production": {"checks": [], "approvals": []}})
}

/// Sets [`gates_off`] through `router` as `admin`.
pub async fn turn_gates_off(router: &axum::Router, admin: &str) {
    let (s, v) = call(
        router,
        http::Method::PUT,
        "/admin/v1/gates",
        admin,
        Some(gates_off()),
    )
    .await;
    assert!(s.is_success(), "gates off: {s} {v}");
}

/// Every admin answer the tests see, checked against the OpenAPI document the server publishes
/// (`/admin/v1/openapi.json`), as a checker built from the document would: the status is one
/// the operation declares, and a JSON body is valid against the declared schema (JSON Schema
/// 2020-12, the dialect of OpenAPI 3.1). Paths and methods the document does not have (an
/// unknown path, the document itself) are not checked here.
///
/// Two switches for a survey: `TOLLGATE_OPENAPI_SURVEY=FILE` appends what does not conform to
/// FILE instead of failing the test; `TOLLGATE_OPENAPI_SEEN=FILE` appends every operation and
/// status checked (on 2026-12-04 the control tests checked all 69 operations with a 2xx and 257
/// operation-status pairs in all).
pub mod conformance {
    use serde_json::Value;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    /// An answer's content type (empty when it has none).
    pub fn content_type(headers: &http::HeaderMap) -> String {
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    fn document() -> &'static Value {
        static DOC: OnceLock<Value> = OnceLock::new();
        DOC.get_or_init(|| {
            serde_json::from_str(&tollgate_control::openapi_json()).expect("the document")
        })
    }

    /// The document's path template that `path` is (literal segments before `{param}` ones).
    fn template(path: &str) -> Option<&'static str> {
        let segs: Vec<&str> = path.split('/').collect();
        let mut best: Option<(&'static str, usize)> = None;
        for t in document()["paths"].as_object()?.keys() {
            let ts: Vec<&str> = t.split('/').collect();
            if ts.len() != segs.len() {
                continue;
            }
            let mut literal = 0;
            let fits = ts.iter().zip(&segs).all(|(t, s)| {
                if t.starts_with('{') {
                    !s.is_empty()
                } else {
                    literal += 1;
                    t == s
                }
            });
            if fits && best.is_none_or(|(_, l)| literal > l) {
                best = Some((t.as_str(), literal));
            }
        }
        best.map(|(t, _)| t)
    }

    type Validators = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;

    /// The validator of a schema of the document (compiled once).
    fn validator(key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        static CACHE: OnceLock<Validators> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(v) = cache.lock().unwrap().get(key) {
            return v.clone();
        }
        // The schema with the document's components beside it, so `#/components/…` resolves.
        let mut root = schema.clone();
        if let Some(o) = root.as_object_mut() {
            o.insert("components".into(), document()["components"].clone());
        }
        let v = Arc::new(
            jsonschema::draft202012::new(&root)
                .unwrap_or_else(|e| panic!("the document's schema for {key}: {e}")),
        );
        cache.lock().unwrap().insert(key.to_string(), v.clone());
        v
    }

    /// Checks one answer: `path` may carry a query; `body` is `None` when the answer was empty
    /// and `Some(Value::Null)` … as parsed (non-JSON answers are `None` too).
    pub fn check(method: &str, path: &str, status: u16, content_type: &str, body: Option<&Value>) {
        if let Err(e) = conforms(method, path, status, content_type, body) {
            match std::env::var("TOLLGATE_OPENAPI_SURVEY") {
                Ok(file) => {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(file)
                        .unwrap();
                    f.write_all(format!("{e}\n---\n").as_bytes()).unwrap();
                }
                Err(_) => panic!("{e}"),
            }
        }
    }

    pub fn conforms(
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let path = path.split('?').next().unwrap_or(path);
        let Some(t) = template(path) else {
            return Ok(());
        };
        let method = method.to_ascii_lowercase();
        let Some(op) = document()["paths"][t].get(&method) else {
            return Ok(());
        };
        let at = format!("{} {t} → {status}", method.to_uppercase());
        if let Ok(file) = std::env::var("TOLLGATE_OPENAPI_SEEN") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap();
            // One write per line, so the lines of tests running at once do not interleave.
            f.write_all(format!("{at}\n").as_bytes()).unwrap();
        }
        let responses = &op["responses"];
        let Some(declared) = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
        else {
            return Err(format!(
                "{at}: a status the document does not declare for the operation (it declares {:?}); body {}",
                responses.as_object().map(|o| o.keys().collect::<Vec<_>>()),
                truncate(body.unwrap_or(&Value::Null))
            ));
        };
        match declared["content"].as_object() {
            Some(content) if !content.is_empty() => {
                let Some((media, c)) = content
                    .iter()
                    .find(|(m, _)| content_type.starts_with(m.as_str()))
                else {
                    return Err(format!(
                        "{at}: content type {content_type:?}, the document declares {:?}",
                        content.keys().collect::<Vec<_>>()
                    ));
                };
                if !media.contains("json") {
                    return Ok(());
                }
                let Some(body) = body else {
                    return Err(format!("{at}: a JSON answer that is not JSON"));
                };
                let schema = &c["schema"];
                let v = validator(&format!("{at} {media}"), schema);
                let errors: Vec<String> = v
                    .iter_errors(body)
                    .take(5)
                    .map(|e| format!("at {}: {e}", e.instance_path()))
                    .collect();
                if !errors.is_empty() {
                    return Err(format!(
                        "{at}: the answer is not what the document says:\n  {}\nbody: {}",
                        errors.join("\n  "),
                        truncate(body)
                    ));
                }
                Ok(())
            }
            // Declared without a body: none may come.
            _ if body.is_some_and(|b| !b.is_null()) => Err(format!(
                "{at}: a body the document does not declare: {}",
                truncate(body.unwrap_or(&Value::Null))
            )),
            _ => Ok(()),
        }
    }

    fn truncate(v: &Value) -> String {
        let s = v.to_string();
        if s.len() > 600 {
            let mut end = 600;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &s[..end])
        } else {
            s
        }
    }
}
