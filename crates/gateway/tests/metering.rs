//! Metering: streamed and complete answers cost the same to the nano-dollar; cached, cache-write
//! and reasoning tokens are priced per the catalog; unpriced deployments are flagged.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_simulator::SimConfig;

fn counter(metrics: &str, name: &str, route: &str) -> u64 {
    let prefix = format!("{name}{{route=\"{route}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

#[tokio::test]
async fn streamed_and_complete_cost_the_same_and_every_token_kind_has_its_price() {
    let s = sim(SimConfig {
        cached_tokens: 3,
        cache_write_tokens: 2,
        reasoning_tokens: 5,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{0}/v1" }}
  - {{ name: ant, type: anthropic, base_url: "{0}", api_key: k }}
routes:
  - name: mini
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: sonnet
    deployments: [{{ provider: ant, model: claude-sonnet-4-5 }}]
"#,
        s.url
    ))
    .await;
    let message =
        json!([{"role": "user", "content": "Please summarise the quarterly report for the board"}]);
    let mut answered = 0;
    for (route, per_token) in [
        // nano-USD per token: (input, cached input, cache write, output)
        ("mini", (150u64, 75u64, 150u64, 600u64)),
        ("sonnet", (3000, 300, 3750, 15000)),
    ] {
        let full: Value = g
            .post(json!({"model": route, "messages": message, "max_tokens": 20}))
            .await
            .json()
            .await
            .unwrap();
        let u = &full["usage"];
        let prompt = u["prompt_tokens"].as_u64().unwrap();
        let completion = u["completion_tokens"].as_u64().unwrap();
        let cached = u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0);
        let write = u["prompt_tokens_details"]["cache_creation_tokens"]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(cached, 3, "{route}: {u}");
        if route == "sonnet" {
            assert_eq!(write, 2, "{route}: {u}");
        }
        let (pi, pc, pw, po) = per_token;
        let expected = (prompt - cached - write) * pi + cached * pc + write * pw + completion * po;
        let after_one = counter(&g.metrics().await, "tollgate_cost_nano_usd_total", route);
        assert_eq!(
            after_one, expected,
            "{route}: complete answer priced per token kind"
        );

        let resp = g
            .post(json!({"model": route, "messages": message, "max_tokens": 20, "stream": true}))
            .await;
        let events = sse_data(resp).await;
        assert_eq!(events.last().unwrap(), "[DONE]");
        // The relay settles after the stream ends, pricing the answer before it queues its
        // record: once the record is written, the cost is counted.
        answered += 2;
        g.gw.books.ledger.written_at_least(answered).await;
        let after_two = counter(&g.metrics().await, "tollgate_cost_nano_usd_total", route);
        assert_eq!(
            after_two - after_one,
            expected,
            "{route}: the streamed answer costs the same to the nano-dollar"
        );
    }
    // Reasoning tokens were part of the completion and priced at the output price (the catalog has
    // no separate reasoning price for these models), which the equality above covers.
}

#[tokio::test]
async fn unpriced_deployments_are_served_and_flagged() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&format!(
        "providers: [{{ name: p, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: local, deployments: [{{ provider: p, model: my-finetune-7b }}] }}]\n",
        s.url
    ))
    .await;
    assert_eq!(
        g.post(json!({"model": "local", "messages": user("x")}))
            .await
            .status(),
        200
    );
    let m = g.metrics().await;
    assert_eq!(
        counter(&m, "tollgate_unpriced_requests_total", "local"),
        1,
        "{m}"
    );
    assert_eq!(counter(&m, "tollgate_cost_nano_usd_total", "local"), 0);
}

/// When the provider reports no usage — a server without it, a stream cut short — the tokens are
/// counted with the tokenizer, priced, and the record says `estimated`.
#[tokio::test]
async fn missing_usage_is_estimated_and_marked() {
    use tollgate_store::LedgerQueries;
    let quiet = sim(SimConfig {
        usage: false,
        ..SimConfig::default()
    })
    .await;
    let cut = sim(SimConfig {
        truncate_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        "providers: [{{ name: quiet, type: openai_compatible, base_url: \"{}/v1\" }}, {{ name: cut, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: quiet, deployments: [{{ provider: quiet, model: gpt-4o-mini }}] }}, {{ name: cut, retries: 0, deployments: [{{ provider: cut, model: gpt-4o-mini }}] }}]\n",
        quiet.url, cut.url
    ))
    .await;
    let msg = user("Estimate me, please: how many tokens is this?");
    let full: Value = g
        .post(json!({"model": "quiet", "messages": msg}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        full.get("usage").is_none() || full["usage"].is_null(),
        "the simulator sends no usage: {full}"
    );
    let _ = sse_data(
        g.post(json!({"model": "quiet", "stream": true, "messages": msg}))
            .await,
    )
    .await;
    let events = sse_data(
        g.post(json!({"model": "cut", "stream": true, "messages": msg}))
            .await,
    )
    .await;
    assert!(events.last().unwrap().contains("upstream_stream_truncated"));

    g.gw.books.ledger.written_at_least(3).await;
    let records = g.gw.store.list_records(0, i64::MAX, 10).await.unwrap();
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r.usage_source, "estimated", "{r:?}");
        assert!(r.input_tokens >= 10 && r.output_tokens > 0, "{r:?}");
        assert!(r.cost_nano_usd.unwrap() > 0, "{r:?}");
    }
    let complete = records.iter().find(|r| !r.stream).unwrap();
    let streamed = records
        .iter()
        .find(|r| r.stream && r.route == "quiet")
        .unwrap();
    assert_eq!(
        (
            complete.input_tokens,
            complete.output_tokens,
            complete.cost_nano_usd
        ),
        (
            streamed.input_tokens,
            streamed.output_tokens,
            streamed.cost_nano_usd
        ),
        "the same answer, estimated the same way, streamed or not"
    );
    let cut_record = records.iter().find(|r| r.route == "cut").unwrap();
    assert_eq!(cut_record.outcome, "truncated");
    assert!(
        cut_record.output_tokens < complete.output_tokens,
        "priced by what arrived"
    );
    let m = g.metrics().await;
    assert!(
        m.contains("tollgate_estimated_usage_requests_total{route=\"quiet\"} 2"),
        "{m}"
    );
}

/// An upstream that ignores output caps: every stream goes on for `chunks` chunks. The bodies it
/// receives are sent to the returned channel.
async fn endless_upstream(chunks: usize) -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |body: axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body.0);
                let chunk = Value::to_string(&json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": null}]}));
                let frames = (0..chunks)
                    .map(move |_| {
                        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(format!(
                            "data: {chunk}\n\n"
                        )))
                    })
                    .chain(std::iter::once(Ok(bytes::Bytes::from_static(
                        b"data: [DONE]\n\n",
                    ))));
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(futures_util::stream::iter(frames)),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// A hard budget holds by construction: a request without `max_tokens` is sent upstream with the
/// output cap its reservation assumed, and a stream whose upstream ignores the cap is cut.
#[tokio::test]
async fn a_budgeted_request_sends_its_output_cap_and_a_stream_past_it_is_cut() {
    use tollgate_store::{Budget, BudgetQueries};
    let (url, mut bodies) = endless_upstream(200_000).await;
    let g = gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\" }}]\nroutes: [{{ name: r, retries: 0, deployments: [{{ provider: up, model: gpt-4o-mini }}] }}]\n"
    ))
    .await;
    g.gw.store
        .create_budget(
            "test",
            &Budget {
                id: tollgate_store::new_id("bud"),
                scope: "use_case".into(),
                scope_id: g.use_case.id.clone(),
                period: "lifetime".into(),
                time_zone: "UTC".into(),
                amount_nano_usd: 1_000_000_000_000,
                mode: "hard".into(),
                created_at: 0,
                created_by: "test".into(),
            },
        )
        .await
        .unwrap();
    g.gw.gate.budgeter.reload().await.unwrap();
    for (max_tokens, cap) in [(None, 4096u64), (Some(10), 10)] {
        let mut body = json!({"model": "r", "stream": true, "messages": user("Talk forever")});
        if let Some(m) = max_tokens {
            body["max_tokens"] = json!(m);
        }
        let events = sse_data(g.post(body).await).await;
        let sent = bodies.recv().await.unwrap();
        assert_eq!(
            sent["max_tokens"], cap,
            "the cap the reservation covers goes upstream"
        );
        let last = events.last().unwrap();
        assert!(last.contains("output cap"), "{last}");
        assert!(
            (events.len() as u64) <= 2 * cap + 64 + 1,
            "cut near the cap: {} chunks for a cap of {cap}",
            events.len()
        );
    }
}

/// A prompt of a million spaces to a provider that reports no usage (the tokenizer once failed on
/// it): answered, estimated, and recorded, complete and streamed.
#[tokio::test]
async fn a_huge_prompt_without_usage_is_estimated_and_recorded() {
    let quiet = sim(SimConfig {
        usage: false,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        "providers: [{{ name: quiet, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: quiet, deployments: [{{ provider: quiet, model: gpt-4o-mini }}] }}]\n",
        quiet.url
    ))
    .await;
    let spaces = " ".repeat(1_000_000);
    let resp = g
        .post(json!({"model": "quiet", "messages": user(&spaces)}))
        .await;
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.unwrap();
    let events = sse_data(
        g.post(json!({"model": "quiet", "stream": true, "messages": user(&spaces)}))
            .await,
    )
    .await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let records = records(&g.gw, 2).await;
    for r in &records {
        assert_eq!(r.usage_source, "estimated", "{r:?}");
        assert!(r.input_tokens > 0, "{r:?}");
    }
}

/// An upstream whose stream never finishes its choice (no `finish_reason`): what the output
/// guard still holds when the stream ends reaches the client before `[DONE]`.
#[tokio::test]
async fn a_stream_without_a_finish_reason_loses_nothing_to_the_output_guard() {
    let (url, _bodies) = endless_upstream(50).await;
    let g = gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\" }}]\nroutes: [{{ name: r, retries: 0, deployments: [{{ provider: up, model: gpt-4o-mini }}] }}]\n"
    ))
    .await;
    let resp = g
        .post(json!({"model": "r", "stream": true, "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 200);
    let events = sse_data(resp).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(streamed_text(&events), "word ".repeat(50));
}
