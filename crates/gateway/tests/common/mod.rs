//! Shared helpers of the gateway's integration tests (the control plane's tests include this file
//! too): simulators and gateways on port 0, in-process.

#![allow(dead_code)]

use std::sync::Arc;
use tokio::sync::watch;
use tollgate_gateway::Gateway;
use tollgate_simulator::{SimConfig, Simulator};
use tollgate_store::*;

/// A running simulator.
pub struct Sim {
    pub url: String,
    pub sim: Simulator,
    _stop: watch::Sender<bool>,
}

impl Sim {
    pub fn count(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.sim.stats();
        s.chat.load(Relaxed) + s.messages.load(Relaxed) + s.embeddings.load(Relaxed)
    }

    /// Returns once the simulator has received `n` requests (by event, not by polling).
    pub async fn received(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.sim
            .stats()
            .until(|s| {
                s.chat.load(Relaxed) + s.messages.load(Relaxed) + s.embeddings.load(Relaxed) >= n
            })
            .await;
    }
}

/// The store's request records once it holds `n` (and fails if it holds more). Waits on the
/// ledger writer's progress — each batch written or replayed — never by polling.
pub async fn records(gw: &Gateway, n: usize) -> Vec<RequestRecord> {
    use std::sync::atomic::Ordering::Acquire;
    let ledger = &gw.books.ledger;
    loop {
        let s = ledger.stats();
        let seen = s.written.load(Acquire) + s.replayed.load(Acquire);
        let r = gw.store.list_records(0, i64::MAX, 1_000).await.unwrap();
        assert!(
            r.len() <= n,
            "expected {n} records, have {}: {r:?}",
            r.len()
        );
        if r.len() == n {
            return r;
        }
        ledger
            .until(|s| s.written.load(Acquire) + s.replayed.load(Acquire) > seen)
            .await;
    }
}

/// A hand-written upstream (`app`) on port 0, served until the test ends: its base URL.
pub async fn serve_upstream(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

pub async fn sim(cfg: SimConfig) -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = watch::channel(false);
    let sim = Simulator::new(cfg);
    let s2 = sim.clone();
    tokio::spawn(async move {
        s2.serve(listener, async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await
        .unwrap();
    });
    Sim {
        url,
        sim,
        _stop: tx,
    }
}

/// A running gateway.
pub struct Gw {
    pub url: String,
    pub gw: Arc<Gateway>,
    /// A key of a production use case that may call every route.
    pub key: String,
    pub use_case: UseCase,
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gw {
    /// Gives the test's use case the policy `doc`, in force at once.
    pub async fn set_policy(&self, doc: serde_json::Value) {
        self.gw
            .store
            .put_policy(
                "test",
                &self.use_case.id,
                Some(&doc.to_string()),
                "",
                self.gw.clock.now_ms(),
            )
            .await
            .unwrap();
        self.gw.policies.reload().await.unwrap();
    }

    /// Stops the server gracefully (the ledger drained) and closes the gateway: its config, to
    /// open it again as a restart would.
    pub async fn shut_down(self) -> tollgate_config::Config {
        let cfg = (*self.gw.config).clone();
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
        drop(self.gw);
        cfg
    }

    pub fn chat_url(&self) -> String {
        format!("{}/v1/chat/completions", self.url)
    }

    pub async fn post(&self, body: serde_json::Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.chat_url())
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

pub fn config(yaml: &str) -> tollgate_config::Config {
    tollgate_config::Config::from_yaml_str(yaml, &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// A fresh data directory under the system temp dir.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "tollgate-test-{tag}-{}-{}",
        std::process::id(),
        tollgate_store::new_id("d")
    ))
}

/// A gateway on a fresh store and data directory (no sockets).
pub async fn gateway_only(yaml: &str) -> Arc<Gateway> {
    gateway_only_at(yaml, tollgate_types::clock::Clock::system()).await
}

/// A gateway on a fresh store reading `clock` (a manual clock puts a test on a boundary).
pub async fn gateway_only_at(yaml: &str, clock: tollgate_types::clock::Clock) -> Arc<Gateway> {
    let mut cfg = config(yaml);
    cfg.server.data_dir = temp_dir("gw");
    Gateway::open_with_clock(cfg, clock).await.unwrap()
}

/// Creates a pod (if needed), a use case in `stage` with `routes` and `caps`, and a key for it.
pub async fn use_case_with_key(
    gw: &Gateway,
    stage: Stage,
    routes: &[&str],
    caps: PilotCaps,
    scopes: Option<Vec<String>>,
) -> (UseCase, String) {
    let pod = match gw
        .store
        .list_pods(None, &PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
    {
        Some(p) => p,
        None => gw.store.create_pod("test", "test-pod", "").await.unwrap(),
    };
    let (uc, key) =
        use_case_and_key_in(gw, &pod.id, &new_id("uc"), stage, routes, caps, scopes).await;
    gw.keyring.reload().await.unwrap();
    (uc, key)
}

/// A use case named `name` in pod `pod_id`, moved to `stage`, and a key for it — stored, not yet
/// loaded by the data plane (`gw.keyring.reload()` loads the keys made, one reload for many).
pub async fn use_case_and_key_in(
    gw: &Gateway,
    pod_id: &str,
    name: &str,
    stage: Stage,
    routes: &[&str],
    caps: PilotCaps,
    scopes: Option<Vec<String>>,
) -> (UseCase, String) {
    let routes: Vec<String> = routes.iter().map(|r| r.to_string()).collect();
    let uc = gw
        .store
        .create_use_case(
            "test",
            pod_id,
            name,
            "",
            &ValueModel::default(),
            &Scores::default(),
            &routes,
            &caps,
            &Limits::default(),
        )
        .await
        .unwrap();
    let path: &[Stage] = match stage {
        Stage::Proposed => &[],
        Stage::Pilot => &[Stage::Pilot],
        Stage::Production => &[Stage::Pilot, Stage::Production],
        Stage::Retired => &[Stage::Retired],
    };
    for s in path {
        gw.store
            .change_stage("test", &uc.id, *s, "test")
            .await
            .unwrap();
    }
    let (record, plaintext) = tollgate_gateway::keys::new_api_key(
        gw.keyring.secret(),
        &uc.id,
        None,
        "test",
        scopes,
        None,
        "test",
    );
    gw.store.create_key("test", &record).await.unwrap();
    (gw.store.get_use_case(&uc.id).await.unwrap(), plaintext)
}

/// A budget of `amount` nano-USD per `period` (in UTC) on `scope`/`scope_id`, `mode` `hard` or
/// `soft`, loaded into the gateway; returns its id.
pub async fn budget(
    gw: &Gateway,
    scope: &str,
    scope_id: &str,
    period: &str,
    mode: &str,
    amount: u64,
) -> String {
    let id = new_id("bud");
    gw.store
        .create_budget(
            "test",
            &Budget {
                id: id.clone(),
                scope: scope.into(),
                scope_id: scope_id.into(),
                period: period.into(),
                time_zone: "UTC".into(),
                amount_nano_usd: amount,
                mode: mode.into(),
                created_at: 0,
                created_by: "test".into(),
            },
        )
        .await
        .unwrap();
    gw.gate.budgeter.reload().await.unwrap();
    id
}

/// A gateway for `yaml` on port 0, with a production use case and key that may call every route.
pub async fn gateway(yaml: &str) -> Gw {
    serve_gateway(gateway_only(yaml).await, axum::Router::new()).await
}

/// [`gateway`] reading `clock`.
pub async fn gateway_at(yaml: &str, clock: tollgate_types::clock::Clock) -> Gw {
    serve_gateway(gateway_only_at(yaml, clock).await, axum::Router::new()).await
}

/// Serves `gw` (with `other` routes beside it, e.g. the control plane's) on port 0, with a
/// production use case and key that may call every route.
pub async fn serve_gateway(gw: Arc<Gateway>, other: axum::Router) -> Gw {
    let routes: Vec<String> = gw.config.routes.iter().map(|r| r.name.clone()).collect();
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
    let (use_case, key) =
        use_case_with_key(&gw, Stage::Production, &routes, PilotCaps::default(), None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(tollgate_gateway::serve(
        gw.clone(),
        other,
        listener,
        async move {
            let _ = rx.wait_for(|v| *v).await;
        },
    ));
    Gw {
        url,
        gw,
        key,
        use_case,
        stop,
        task,
    }
}

/// One route `m` on an OpenAI-compatible simulator, one route `c` on its Anthropic side.
pub fn two_route_config(sim_url: &str) -> String {
    format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{sim_url}/v1" }}
  - {{ name: ant, type: anthropic, base_url: "{sim_url}", api_key: test-key }}
routes:
  - name: m
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: c
    deployments: [{{ provider: ant, model: claude-test }}]
"#
    )
}

pub fn user(text: &str) -> serde_json::Value {
    serde_json::json!([{"role": "user", "content": text}])
}

/// Reads an SSE body into its `data:` payloads.
pub async fn sse_data(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|ev| ev.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

/// Joins the content deltas of streamed chunks.
pub fn streamed_text(events: &[String]) -> String {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// An evaluation key for `use_case_id`, as the server mints one for a run: its id and secret.
pub async fn eval_key(gw: &Gateway, use_case_id: &str) -> (String, String) {
    let (mut record, plaintext) = tollgate_gateway::keys::new_api_key(
        gw.keyring.secret(),
        use_case_id,
        None,
        "eval run",
        None,
        None,
        "test",
    );
    record.evaluation = true;
    gw.store.create_key("test", &record).await.unwrap();
    gw.keyring.reload().await.unwrap();
    (record.id, plaintext)
}
