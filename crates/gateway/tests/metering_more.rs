//! Metering with exact numbers: a complete answer whose client left is recorded once and priced;
//! embeddings are priced per input token; records spilled while the database was down are
//! written back exactly once by the next gateway on the same data directory; Azure deployments
//! cost the same streamed or not.
//!
//! The simulator counts `ceil(chars / 4) + 3` tokens per text and, with its default typical
//! length of 24, answers at least 12 tokens unless capped: a `max_tokens` of 12 or less is the
//! completion's exact length.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tollgate_gateway::Gateway;
use tollgate_simulator::SimConfig;
use tollgate_store::LedgerQueries;

/// A client that gives up on a complete answer before it comes: the upstream call finishes, and
/// exactly one record says `client_disconnected`, priced from the usage the upstream reported:
/// 11 prompt tokens ("How long is a piece of string?", 30 characters) × 150 + 8 completion tokens
/// × 600 = 6,450 nano-USD at gpt-4o-mini.
#[tokio::test]
async fn a_client_that_leaves_before_a_complete_answer_is_recorded_once_and_priced() {
    let s = sim(SimConfig {
        latency: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        "providers: [{{ name: sim, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n",
        s.url
    ))
    .await;
    let body =
        json!({"model": "r", "max_tokens": 8, "messages": user("How long is a piece of string?")});
    let client = tokio::spawn(
        reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&body)
            .send(),
    );
    // The client leaves once the upstream has the request (it answers a second later).
    s.sim.stats().until(|s| s.chat.load(Relaxed) > 0).await;
    client.abort();
    assert!(
        client.await.unwrap_err().is_cancelled(),
        "the client left before the answer"
    );

    let recs = records(&g.gw, 1).await;
    let r = &recs[0];
    assert_eq!(
        (
            r.outcome.as_str(),
            r.status,
            r.stream,
            r.usage_source.as_str()
        ),
        ("client_disconnected", 200, false, "reported"),
        "{r:?}"
    );
    assert_eq!((r.input_tokens, r.output_tokens), (11, 8), "{r:?}");
    assert_eq!(r.cost_nano_usd, Some(11 * 150 + 8 * 600));
    assert_eq!(r.cost_nano_usd, Some(6_450));
    assert_eq!(s.sim.stats().chat.load(Relaxed), 1);

    // The same request, waited for: the same usage and cost, and one more record, not two.
    let resp = g.post(body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            v["usage"]["prompt_tokens"].as_u64(),
            v["usage"]["completion_tokens"].as_u64()
        ),
        (Some(11), Some(8))
    );
    let recs = records(&g.gw, 2).await;
    let outcomes: Vec<&str> = recs.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["client_disconnected", "ok"]);
    assert_eq!(recs[1].cost_nano_usd, Some(6_450));
    // In the use case's series both are answered requests, and leaving is not an error.
    let m = g.metrics().await;
    let line = format!(
        "tollgate_use_case_requests_total{{use_case=\"{}\",pod=\"{}\",route=\"r\",provider=\"sim\",status=\"200\"}} 2",
        g.use_case.id, g.use_case.pod_id
    );
    assert!(m.contains(&line), "no {line} in\n{m}");
    assert!(!m.contains("tollgate_use_case_errors_total{"), "{m}");
}

/// Embeddings are recorded as such and priced per input token: two texts of 19 and 5
/// characters are 8 + 5 = 13 tokens, × 20 nano-USD (text-embedding-3-small, $0.02 per 1M) = 260,
/// × 130 (text-embedding-3-large, $0.13 per 1M) = 1,690.
#[tokio::test]
async fn embeddings_are_recorded_and_priced_per_input_token() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{}/v1" }}
routes:
  - name: small
    deployments: [{{ provider: sim, model: text-embedding-3-small }}]
  - name: large
    deployments: [{{ provider: sim, model: text-embedding-3-large }}]
"#,
        s.url
    ))
    .await;
    let catalog = g.gw.books.meter.catalog();
    let per_token = |model: &str| catalog.lookup(model).unwrap().prices.input / 1_000_000;
    assert_eq!(
        (
            per_token("text-embedding-3-small"),
            per_token("text-embedding-3-large")
        ),
        (20, 130)
    );
    let mut expected = std::collections::HashMap::new();
    for (route, model, cost) in [
        ("small", "text-embedding-3-small", 260u64),
        ("large", "text-embedding-3-large", 1_690),
    ] {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/embeddings", g.url))
            .bearer_auth(&g.key)
            .json(&json!({"model": route, "input": ["The quick brown fox", "jumps"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["usage"]["prompt_tokens"], 13, "{v}");
        expected.insert(id, (route, model, cost));
    }
    for r in records(&g.gw, 2).await {
        let (route, model, cost) = expected[&r.request_id];
        assert_eq!(
            (r.endpoint.as_str(), r.route.as_str(), r.model.as_deref()),
            ("embeddings", route, Some(model)),
            "{r:?}"
        );
        assert_eq!(
            (
                r.input_tokens,
                r.cached_input_tokens,
                r.output_tokens,
                r.reasoning_tokens
            ),
            (13, 0, 0, 0),
            "{r:?}"
        );
        assert_eq!(r.usage_source, "reported", "{r:?}");
        assert_eq!(r.cost_nano_usd, Some(cost), "{r:?}");
        assert_eq!(r.cost_split, [cost, 0, 0, 0, 0], "{r:?}");
    }
}

fn spill_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("jsonl"))
                .collect()
        })
        .unwrap_or_default()
}

/// While the database refuses writes, records go to `<data_dir>/ledger-spill/`; a new gateway on
/// the same data directory writes them back at start, each exactly once, and a third one finds
/// nothing left to write.
#[tokio::test]
async fn spilled_records_are_replayed_once_by_the_next_gateway() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&format!(
        "providers: [{{ name: sim, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n",
        s.url
    ))
    .await;
    let cfg = (*g.gw.config).clone();
    let spill_dir = cfg.server.data_dir.join("ledger-spill");
    g.gw.store.close().await;
    let mut ids = HashSet::new();
    for i in 0..5 {
        let resp = g
            .post(json!({"model": "r", "stream": i % 2 == 1, "max_tokens": 5, "messages": user(&format!("request {i}"))}))
            .await;
        assert_eq!(resp.status(), 200);
        ids.insert(resp.headers()["x-request-id"].to_str().unwrap().to_string());
        let _ = resp.bytes().await.unwrap();
    }
    assert_eq!(ids.len(), 5);
    let stats = g.gw.books.ledger.stats();
    g.gw.books
        .ledger
        .until(|s| s.spilled.load(Relaxed) >= 5)
        .await;
    assert_eq!(
        (
            stats.spilled.load(Relaxed),
            stats.written.load(Relaxed),
            stats.dropped.load(Relaxed)
        ),
        (5, 0, 0)
    );
    g.stop.send(true).unwrap();
    g.task.await.unwrap().unwrap();
    let files = spill_files(&spill_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let lines = std::fs::read_to_string(&files[0]).unwrap().lines().count();
    assert_eq!(lines, 5);
    drop(g.gw);

    let gw2 = Gateway::open(cfg.clone()).await.unwrap();
    let recs = records(&gw2, 5).await;
    let stored: HashSet<String> = recs.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(stored, ids, "every admitted request, once");
    let rec_ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rec_ids.len(), 5);
    // The counter moves after the write commits (and the file is retired): wait for it.
    gw2.books
        .ledger
        .until(|s| s.replayed.load(Relaxed) >= 5)
        .await;
    assert_eq!(gw2.books.ledger.stats().replayed.load(Relaxed), 5);
    assert_eq!(spill_files(&spill_dir), Vec::<std::path::PathBuf>::new());
    gw2.books.ledger.shutdown().await;
    drop(gw2);

    let gw3 = Gateway::open(cfg).await.unwrap();
    gw3.books.ledger.shutdown().await;
    assert_eq!(gw3.books.ledger.stats().replayed.load(Relaxed), 0);
    assert_eq!(gw3.store.count_records(0, i64::MAX).await.unwrap(), 5);
}

/// An Azure OpenAI provider (the simulator serves Azure's deployment paths): a deployment named
/// after a catalog model is priced from the catalog, one with a `price:` from it, and each costs
/// the same streamed or not. The simulator reports 16 prompt tokens (3 of them cached) for the
/// 51-character prompt and 10 + 5 reasoning completion tokens for `max_tokens` 10:
/// - gpt-4o-mini: 13 × 150 + 3 × 75 + 10 × 600 + 5 × 600 = 11,175 nano-USD;
/// - `price: { input: "2.50", output: "10.00" }` (cached at the input price, reasoning at the
///   output price): 16 × 2,500 + 15 × 10,000 = 190,000 nano-USD.
#[tokio::test]
async fn azure_deployments_cost_the_same_streamed_or_not() {
    let s = sim(SimConfig {
        api_key: Some("azure-secret".into()),
        cached_tokens: 3,
        reasoning_tokens: 5,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        r#"
providers:
  - {{ name: az, type: azure_openai, base_url: "{}", api_key: azure-secret, api_version: "2024-10-21" }}
routes:
  - name: mini
    deployments: [{{ provider: az, model: gpt-4o-mini }}]
  - name: contract
    deployments: [{{ provider: az, model: my-4o-deployment, price: {{ input: "2.50", output: "10.00" }} }}]
"#,
        s.url
    ))
    .await;
    let catalog_source = format!("catalog:{}", g.gw.books.meter.catalog().version);
    for (route, cost, source) in [
        ("mini", 11_175u64, catalog_source.as_str()),
        ("contract", 190_000, "override"),
    ] {
        let before = g.gw.store.count_records(0, i64::MAX).await.unwrap() as usize;
        for stream in [false, true] {
            let resp = g
                .post(json!({"model": route, "stream": stream, "max_tokens": 10,
                    "messages": user("Please summarise the quarterly report for the board")}))
                .await;
            assert_eq!(resp.status(), 200);
            let _ = resp.bytes().await.unwrap();
        }
        let recs = records(&g.gw, before + 2).await;
        let recs = &recs[before..];
        assert_eq!(
            recs.iter().map(|r| r.stream).collect::<Vec<_>>(),
            [false, true]
        );
        for r in recs {
            assert_eq!(
                (
                    r.route.as_str(),
                    r.provider.as_deref(),
                    r.usage_source.as_str()
                ),
                (route, Some("az"), "reported"),
                "{r:?}"
            );
            assert_eq!(
                (
                    r.input_tokens,
                    r.cached_input_tokens,
                    r.output_tokens,
                    r.reasoning_tokens
                ),
                (13, 3, 10, 5),
                "{r:?}"
            );
            assert_eq!(
                r.cost_nano_usd,
                Some(cost),
                "{route}, stream {}: {r:?}",
                r.stream
            );
            assert_eq!(r.price_source, source, "{r:?}");
        }
    }
}
