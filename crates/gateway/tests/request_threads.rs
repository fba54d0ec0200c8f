//! `server.request_threads`: each request thread serves the connections given to it (the fewest
//! open first), the threads live exactly as long as `serve`, and `shared` serves on the caller's
//! runtime.
//!
//! One test in its own binary: it reads this process's threads (`/proc/self/task`) by name, and
//! another gateway running beside it would start threads of the same names.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use tollgate_simulator::SimConfig;

fn config_with(sim_url: &str, threads: &str) -> String {
    format!(
        "server: {{ request_threads: {threads} }}\nproviders: [{{ name: sim, type: openai_compatible, base_url: \"{sim_url}/v1\" }}]\nroutes: [{{ name: m, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n"
    )
}

/// This process's request threads by name, with how many times each has gone to sleep (and so
/// been woken) so far.
fn request_threads() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // The thread ended meanwhile.
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        let name = field("Name:");
        if name.starts_with("tollgate-req-") {
            let woken: u64 = field("voluntary_ctxt_switches:").parse().unwrap();
            *out.entry(name).or_default() += woken;
        }
    }
    out
}

/// Sends two chat requests over each of `n` connections of their own (one client each, kept
/// alive), one connection after another.
async fn over_connections(g: &Gw, n: usize) {
    for _ in 0..n {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        for _ in 0..2 {
            let resp = client
                .post(g.chat_url())
                .bearer_auth(&g.key)
                .json(&json!({"model": "m", "messages": user("Say something"), "max_tokens": 8}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap();
        }
        // Kept open: the next connection goes to the thread with fewer.
        std::mem::forget(client);
    }
}

#[tokio::test]
async fn each_request_thread_serves_the_connections_given_to_it() {
    let s = sim(SimConfig::default()).await;
    assert!(request_threads().is_empty());

    // Two threads: four connections, two each, and both threads woken by their requests.
    let g = gateway(&config_with(&s.url, "2")).await;
    // Answered: `serve` has started.
    let health = reqwest::get(format!("{}/healthz", g.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    let before = request_threads();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["tollgate-req-0", "tollgate-req-1"]
    );
    over_connections(&g, 4).await;
    let after = request_threads();
    for (name, woken) in &after {
        // Each of its four requests wakes a thread at least once (the client's bytes, and the
        // provider's answer).
        assert!(
            *woken >= before[name] + 4,
            "{name} was woken {} times for its requests: {before:?} → {after:?}",
            woken - before[name]
        );
    }
    let _ = records(&g.gw, 8).await;
    g.shut_down().await;
    // The threads end with `serve`.
    assert!(request_threads().is_empty(), "{:?}", request_threads());

    // Shared: no request threads; requests are served all the same.
    let g = gateway(&config_with(&s.url, "shared")).await;
    over_connections(&g, 2).await;
    assert!(request_threads().is_empty(), "{:?}", request_threads());
    let _ = records(&g.gw, 4).await;
    g.shut_down().await;
}
