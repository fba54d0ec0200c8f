//! Traces over OTLP, received by a collector in the test (an in-process HTTP server decoding
//! OTLP/protobuf): the request span's GenAI and `tollgate.*` attributes, one child per upstream
//! attempt, the caller's `traceparent` continued and propagated to the provider, sampling, and
//! content only when both the config and the policy allow it.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the collector received: each export's headers, raw body and spans (with the resource's
/// attributes).
#[derive(Default)]
struct Collected {
    exports: Vec<(HeaderMap, Bytes)>,
    spans: Vec<Span>,
    resource: Vec<KeyValue>,
}

/// An OTLP/HTTP collector on port 0: its base URL and what it received.
async fn collector() -> (String, Arc<Mutex<Collected>>) {
    let got = Arc::new(Mutex::new(Collected::default()));
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(
                |State(got): State<Arc<Mutex<Collected>>>, headers: HeaderMap, body: Bytes| async move {
                    let req = ExportTraceServiceRequest::decode(body.clone()).unwrap();
                    let mut g = got.lock().unwrap();
                    for rs in req.resource_spans {
                        if let Some(r) = rs.resource {
                            g.resource = r.attributes;
                        }
                        for ss in rs.scope_spans {
                            g.spans.extend(ss.spans);
                        }
                    }
                    g.exports.push((headers, body));
                    ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// What an upstream saw: (path, traceparent, tracestate) of each call.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

/// An OpenAI-compatible upstream on port 0: `/bad/…` answers 500, `/good/…` a chat completion
/// with usage 12 + 5 tokens (that echoes the prompt's last message), `/cached/…` the same with 8
/// of the 12 input tokens read from the prompt cache and 2 of the 5 output tokens reasoning.
/// Records every call's trace headers.
async fn upstream() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/{which}/v1/chat/completions",
            axum::routing::post(
                |State(seen): State<Seen>,
                 axum::extract::Path(which): axum::extract::Path<String>,
                 headers: HeaderMap,
                 body: axum::Json<serde_json::Value>| async move {
                    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_string());
                    seen.lock()
                        .unwrap()
                        .push((which.clone(), h("traceparent"), h("tracestate")));
                    if which == "bad" {
                        return (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(
                                json!({"error": {"message": "boom", "type": "server_error"}}),
                            ),
                        );
                    }
                    let last =
                        body["messages"].as_array().unwrap().last().unwrap()["content"].clone();
                    let mut usage =
                        json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17});
                    if which == "cached" {
                        usage["prompt_tokens_details"] = json!({"cached_tokens": 8});
                        usage["completion_tokens_details"] = json!({"reasoning_tokens": 2});
                    }
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({
                            "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                            "model": "gpt-4o-mini",
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": last}}],
                            "usage": usage
                        })),
                    )
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Route `m`: a deployment that fails (no retry), then one that answers (weight 0: only after
/// the weighted ones, so the order is fixed).
fn config(up: &str, collector: &str, extra: &str) -> String {
    format!(
        r#"
providers:
  - {{ name: flaky, type: openai_compatible, base_url: "{up}/bad/v1" }}
  - {{ name: steady, type: openai_compatible, base_url: "{up}/good/v1" }}
routes:
  - name: m
    retries: 0
    deployments:
      - {{ provider: flaky, model: gpt-4o-mini }}
      - {{ provider: steady, model: gpt-4o-mini, weight: 0 }}
telemetry:
  traces:
    endpoint: "{collector}"
    service_name: tollgate-test
    headers: {{ authorization: "Bearer collector-token" }}
{extra}
"#
    )
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn s(attrs: &[KeyValue], key: &str) -> String {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(v)) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn i(attrs: &[KeyValue], key: &str) -> i64 {
    match attr(attrs, key) {
        Some(any_value::Value::IntValue(v)) => *v,
        other => panic!("{key}: {other:?}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Sends a chat request with optional trace headers; the answer's status.
async fn chat(g: &common::Gw, text: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .header("x-tollgate-session", "conv-7")
        .json(&json!({"model": "m", "messages": common::user(text), "max_tokens": 64, "temperature": 0.5}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    status
}

/// Gives the test's use case a policy that logs `mode`, in force at once.
async fn set_logging(g: &common::Gw, mode: &str) {
    g.set_policy(json!({ "logging": mode })).await;
}

/// Waits until `records` records are written (a request's spans are queued before its record),
/// then exports the queued spans.
async fn flush(g: &common::Gw, records: u64) {
    g.gw.books.ledger.written_at_least(records).await;
    g.gw.books.flush_traces().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_one_span_with_a_child_per_attempt_in_the_callers_trace() {
    let (coll, got) = collector().await;
    let (up, seen) = upstream().await;
    let g = common::gateway(&config(&up, &coll, "    sample_ratio: 0")).await;

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let status = chat(
        &g,
        "hello there",
        &[
            ("traceparent", &format!("00-{trace}-{parent}-01")),
            ("tracestate", "vendor=abc"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    flush(&g, 1).await;

    let got = std::mem::take(&mut *got.lock().unwrap());
    // the collector's token went with every export
    assert!(!got.exports.is_empty());
    for (h, _) in &got.exports {
        assert_eq!(h["authorization"], "Bearer collector-token");
        assert_eq!(h["content-type"], "application/x-protobuf");
    }
    assert_eq!(s(&got.resource, "service.name"), "tollgate-test");
    assert_eq!(
        got.spans.len(),
        3,
        "one request span and two attempts: {:?} in {} exports",
        got.spans
            .iter()
            .map(|s| (&s.name, s.kind))
            .collect::<Vec<_>>(),
        got.exports.len()
    );
    let root = got
        .spans
        .iter()
        .find(|sp| sp.kind == span::SpanKind::Server as i32)
        .unwrap();
    assert_eq!(root.name, "chat m");
    assert_eq!(hex(&root.trace_id), trace, "the caller's trace continues");
    assert_eq!(hex(&root.parent_span_id), parent, "under the caller's span");
    assert_eq!(root.trace_state, "vendor=abc");
    let a = &root.attributes;
    assert_eq!(s(a, "gen_ai.operation.name"), "chat");
    assert_eq!(s(a, "gen_ai.provider.name"), "openai");
    assert_eq!(s(a, "gen_ai.request.model"), "m");
    assert_eq!(s(a, "gen_ai.response.model"), "gpt-4o-mini");
    assert_eq!(i(a, "gen_ai.request.max_tokens"), 64);
    assert!(matches!(
        attr(a, "gen_ai.request.temperature"),
        Some(any_value::Value::DoubleValue(t)) if *t == 0.5
    ));
    assert!(matches!(
        attr(a, "gen_ai.request.stream"),
        Some(any_value::Value::BoolValue(false))
    ));
    assert_eq!(i(a, "gen_ai.usage.input_tokens"), 12);
    assert_eq!(i(a, "gen_ai.usage.output_tokens"), 5);
    assert_eq!(i(a, "http.response.status_code"), 200);
    assert_eq!(s(a, "tollgate.use_case.id"), g.use_case.id);
    assert_eq!(s(a, "tollgate.pod.id"), g.use_case.pod_id);
    assert_eq!(s(a, "tollgate.stage"), "production");
    assert_eq!(i(a, "tollgate.attempts"), 2);
    assert_eq!(s(a, "tollgate.provider"), "steady");
    assert_eq!(i(a, "tollgate.guard.findings"), 0);
    assert_eq!(s(a, "tollgate.outcome"), "ok");
    // gpt-4o-mini at list price: 12 input at $0.15/M, 5 output at $0.60/M = 1,800 + 3,000 nano-USD
    assert_eq!(i(a, "tollgate.cost.nano_usd"), 4_800);
    // the session's keyed pseudonym, not what the client sent
    let conv = s(a, "gen_ai.conversation.id");
    assert!(!conv.contains("conv-7") && conv.len() >= 16, "{conv}");
    assert!(attr(a, "error.type").is_none());
    assert!(
        attr(a, "gen_ai.input.messages").is_none(),
        "no content by default"
    );

    // two attempts, children of the request span, in order, the first failed
    let mut kids: Vec<&Span> = got
        .spans
        .iter()
        .filter(|sp| sp.kind == span::SpanKind::Client as i32)
        .collect();
    kids.sort_by_key(|sp| sp.start_time_unix_nano);
    assert_eq!(kids.len(), 2);
    for (n, kid) in kids.iter().enumerate() {
        assert_eq!(kid.trace_id, root.trace_id);
        assert_eq!(kid.parent_span_id, root.span_id);
        assert_eq!(kid.name, "chat gpt-4o-mini");
        assert_eq!(i(&kid.attributes, "tollgate.attempt"), n as i64 + 1);
        assert_eq!(s(&kid.attributes, "gen_ai.provider.name"), "openai");
        assert_eq!(s(&kid.attributes, "server.address"), "127.0.0.1");
        assert!(kid.start_time_unix_nano >= root.start_time_unix_nano);
        assert!(kid.end_time_unix_nano <= root.end_time_unix_nano);
    }
    assert_eq!(s(&kids[0].attributes, "tollgate.provider"), "flaky");
    assert_eq!(s(&kids[0].attributes, "error.type"), "status_5xx");
    assert_eq!(
        kids[0].status.as_ref().unwrap().code,
        opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32
    );
    assert_eq!(s(&kids[1].attributes, "tollgate.provider"), "steady");
    assert!(attr(&kids[1].attributes, "error.type").is_none());

    // each upstream call carried its attempt's span as the parent, and the caller's state
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for ((which, tp, ts), kid) in seen.iter().zip(&kids) {
        assert_eq!(
            tp.as_deref(),
            Some(format!("00-{trace}-{}-01", hex(&kid.span_id)).as_str()),
            "{which}"
        );
        assert_eq!(ts.as_deref(), Some("vendor=abc"));
    }
    // nothing of the prompt or the answer in any export
    for (_, body) in &got.exports {
        assert!(!String::from_utf8_lossy(body).contains("hello there"));
    }
    drop(seen);
    drop(got);
    g.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_follows_the_parent_then_the_ratio_and_propagates_either_way() {
    let (coll, got) = collector().await;
    let (up, seen) = upstream().await;
    // ratio 0: only a sampled parent is traced
    let g = common::gateway(&config(&up, &coll, "    sample_ratio: 0")).await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    assert_eq!(
        chat(
            &g,
            "a",
            &[
                ("traceparent", &format!("00-{trace}-b7ad6b7169203331-00")),
                ("tracestate", "Bad=1, x-evil: 1"),
            ]
        )
        .await,
        200
    );
    assert_eq!(chat(&g, "b", &[]).await, 200);
    // a malformed traceparent is ignored: a trace of the gateway's own, not sampled at ratio 0
    assert_eq!(chat(&g, "c", &[("traceparent", "00-zz-yy-01")]).await, 200);
    flush(&g, 3).await;
    assert_eq!(got.lock().unwrap().spans.len(), 0, "nothing sampled");
    {
        // two upstream calls per request (the flaky deployment, then the steady one)
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6);
        // the unsampled caller's trace still reaches the provider, flagged not sampled, under
        // each attempt's own span
        for (_, tp, ts) in &seen[..2] {
            assert_eq!(ts, &None, "an invalid tracestate is not passed on");
            let tp = tp.as_deref().unwrap();
            assert!(
                tp.starts_with(&format!("00-{trace}-")) && tp.ends_with("-00"),
                "{tp}"
            );
            assert_ne!(
                &tp[36..52],
                "b7ad6b7169203331",
                "the attempt's span, not the caller's"
            );
        }
        assert_ne!(seen[0].1, seen[1].1, "one span per attempt");
        // a request without a (valid) parent gets a fresh trace, also flagged not sampled
        for (_, tp, ts) in &seen[2..] {
            let tp = tp.as_deref().unwrap();
            assert!(tp.ends_with("-00") && !tp.contains(trace), "{tp}");
            assert!(ts.is_none());
        }
        assert_eq!(
            seen[2].1.as_ref().unwrap()[3..35],
            seen[3].1.as_ref().unwrap()[3..35]
        );
        assert_ne!(
            seen[2].1.as_ref().unwrap()[3..35],
            seen[4].1.as_ref().unwrap()[3..35]
        );
    }
    g.shut_down().await;

    // ratio 1: every unparented request is a trace of its own (a root span); an unsampled parent
    // still wins
    let g = common::gateway(&config(&up, &coll, "    sample_ratio: 1")).await;
    assert_eq!(chat(&g, "d", &[]).await, 200);
    assert_eq!(
        chat(
            &g,
            "e",
            &[("traceparent", &format!("00-{trace}-b7ad6b7169203331-00"))]
        )
        .await,
        200
    );
    flush(&g, 2).await;
    {
        let got = got.lock().unwrap();
        let roots: Vec<&Span> = got
            .spans
            .iter()
            .filter(|sp| sp.kind == span::SpanKind::Server as i32)
            .collect();
        assert_eq!(roots.len(), 1, "{:?}", got.spans.len());
        assert!(roots[0].parent_span_id.is_empty(), "a root span");
        assert_ne!(hex(&roots[0].trace_id), trace);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 10);
        for (_, tp, _) in &seen[6..8] {
            let tp = tp.as_deref().unwrap();
            assert_eq!(&tp[3..35], hex(&roots[0].trace_id), "{tp}");
            assert!(tp.ends_with("-01"), "{tp}");
        }
    }
    g.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_traced_and_content_needs_both_switches() {
    let (coll, got) = collector().await;
    let (up, _seen) = upstream().await;
    let g = common::gateway(&config(
        &up,
        &coll,
        "    sample_ratio: 1\n    capture_content: true",
    ))
    .await;
    // No policy logging: no content, even with capture_content.
    assert_eq!(chat(&g, "write to ann@example.com", &[]).await, 200);
    // A masked policy: the masked prompt and answer are on the span.
    set_logging(&g, "masked").await;
    assert_eq!(chat(&g, "write to bob@example.com", &[]).await, 200);
    // A full policy: its text stays in the payload store, not in traces.
    set_logging(&g, "full").await;
    assert_eq!(chat(&g, "write to cy@example.com", &[]).await, 200);
    // A refusal before admission (unknown route) is a span too, with its error.
    let resp = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "nope", "messages": common::user("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // A request without a valid key is never traced, whatever its traceparent says.
    let resp = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth("tg_not_a_key")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&json!({"model": "m", "messages": common::user("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    flush(&g, 3).await;

    let got = std::mem::take(&mut *got.lock().unwrap());
    let roots: HashMap<String, &Span> = got
        .spans
        .iter()
        .filter(|sp| sp.kind == span::SpanKind::Server as i32)
        .map(|sp| (sp.name.clone(), sp))
        .collect::<Vec<_>>()
        .into_iter()
        .fold(HashMap::new(), |mut m, (n, sp)| {
            m.entry(format!("{n}#{}", m.len())).or_insert(sp);
            m
        });
    assert_eq!(roots.len(), 4);
    let with_content: Vec<&&Span> = roots
        .values()
        .filter(|sp| attr(&sp.attributes, "gen_ai.input.messages").is_some())
        .collect();
    assert_eq!(with_content.len(), 1, "only the masked policy's request");
    let input = s(&with_content[0].attributes, "gen_ai.input.messages");
    let output = s(&with_content[0].attributes, "gen_ai.output.messages");
    assert!(
        input.contains("write to") && !input.contains("bob@example.com"),
        "{input}"
    );
    assert!(
        output.contains("write to") && !output.contains("bob@example.com"),
        "{output}"
    );
    for (_, body) in &got.exports {
        let text = String::from_utf8_lossy(body);
        for email in ["ann@example.com", "bob@example.com", "cy@example.com"] {
            assert!(!text.contains(email), "{email} exported");
        }
    }
    let refused = roots
        .values()
        .find(|sp| attr(&sp.attributes, "error.type").is_some())
        .unwrap();
    assert_eq!(refused.name, "chat");
    assert_eq!(s(&refused.attributes, "error.type"), "model_not_found");
    assert_eq!(i(&refused.attributes, "http.response.status_code"), 404);
    assert_eq!(
        s(&refused.attributes, "tollgate.use_case.id"),
        g.use_case.id
    );
    drop(got);
    let m = g.metrics().await;
    assert!(
        m.contains("tollgate_trace_spans_total{outcome=\"exported\"}"),
        "{m}"
    );
    g.shut_down().await;
}

/// A collector that takes exports but does not answer until the test lets it: its URL, and the
/// semaphore that lets answers through.
async fn stuck_collector() -> (String, Arc<tokio::sync::Semaphore>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(
                |State(gate): State<Arc<tokio::sync::Semaphore>>| async move {
                    let _permit = gate.acquire().await.unwrap();
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                },
            ),
        )
        .with_state(gate.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, gate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_that_find_the_queue_full_are_dropped_and_counted_and_requests_go_on() {
    let (coll, gate) = stuck_collector().await;
    let (up, _seen) = upstream().await;
    // Two attempts per request: 3 spans. A queue of 8 holds two requests' spans.
    let g = common::gateway(&config(
        &up,
        &coll,
        "    sample_ratio: 1\n    queue_spans: 8",
    ))
    .await;
    for text in ["a", "b", "c", "d"] {
        assert_eq!(chat(&g, text, &[]).await, 200, "requests are not held up");
    }
    g.gw.books.ledger.written_at_least(4).await;
    let m = g.metrics().await;
    assert!(
        m.contains("tollgate_trace_spans_total{outcome=\"dropped\"} 6"),
        "{m}"
    );
    // Once the collector answers, what was queued is exported; room again.
    gate.add_permits(1_000);
    g.gw.books.flush_traces().await;
    assert_eq!(chat(&g, "e", &[]).await, 200);
    g.gw.books.ledger.written_at_least(5).await;
    g.gw.books.flush_traces().await;
    let m = g.metrics().await;
    assert!(
        m.contains("tollgate_trace_spans_total{outcome=\"exported\"} 9"),
        "{m}"
    );
    assert!(
        m.contains("tollgate_trace_spans_total{outcome=\"dropped\"} 6"),
        "{m}"
    );
    g.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_sampled_bit_samples_and_tracestate_needs_a_parent_and_a_bounded_length() {
    let (coll, got) = collector().await;
    let (up, seen) = upstream().await;
    let g = common::gateway(&config(&up, &coll, "    sample_ratio: 0")).await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let parent = "b7ad6b7169203331";
    // Flags 02: a flag other than `sampled` set, `sampled` not: not sampled.
    let tp = format!("00-{trace}-{parent}-02");
    assert_eq!(chat(&g, "a", &[("traceparent", &tp)]).await, 200);
    // A tracestate without a traceparent belongs to no trace: not passed on.
    assert_eq!(chat(&g, "b", &[("tracestate", "vendor=abc")]).await, 200);
    // With a parent: 512 characters are passed on, 513 are not (two members of at most 256).
    let tp = format!("00-{trace}-{parent}-00");
    let longest = format!("a={},b={}", "x".repeat(254), "y".repeat(253));
    let too_long = format!("a={},b={}", "x".repeat(254), "y".repeat(254));
    assert_eq!((longest.len(), too_long.len()), (512, 513));
    assert_eq!(
        chat(&g, "c", &[("traceparent", &tp), ("tracestate", &longest)]).await,
        200
    );
    assert_eq!(
        chat(&g, "d", &[("traceparent", &tp), ("tracestate", &too_long)]).await,
        200
    );
    flush(&g, 4).await;
    assert_eq!(got.lock().unwrap().spans.len(), 0, "nothing sampled");
    {
        // two upstream calls per request (the flaky deployment, then the steady one)
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 8);
        for (_, tp, ts) in &seen[..2] {
            let tp = tp.as_deref().unwrap();
            assert!(
                tp.starts_with(&format!("00-{trace}-")) && tp.ends_with("-00"),
                "{tp}"
            );
            assert!(ts.is_none());
        }
        for (_, tp, ts) in &seen[2..4] {
            let tp = tp.as_deref().unwrap();
            assert!(!tp.contains(trace) && tp.ends_with("-00"), "{tp}");
            assert_eq!(ts.as_deref(), None, "a tracestate without a parent");
        }
        for (_, _, ts) in &seen[4..6] {
            assert_eq!(ts.as_deref(), Some(longest.as_str()));
        }
        for (_, _, ts) in &seen[6..8] {
            assert_eq!(ts.as_deref(), None, "a tracestate over 512 characters");
        }
    }
    g.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_needs_capture_content_even_under_a_masked_policy() {
    let (coll, got) = collector().await;
    let (up, _seen) = upstream().await;
    let g = common::gateway(&config(&up, &coll, "    sample_ratio: 1")).await;
    set_logging(&g, "masked").await;
    assert_eq!(chat(&g, "write to bob@example.com", &[]).await, 200);
    flush(&g, 1).await;
    let got = std::mem::take(&mut *got.lock().unwrap());
    let root = got
        .spans
        .iter()
        .find(|sp| sp.kind == span::SpanKind::Server as i32)
        .unwrap();
    assert_eq!(i(&root.attributes, "http.response.status_code"), 200);
    for key in ["gen_ai.input.messages", "gen_ai.output.messages"] {
        assert!(
            attr(&root.attributes, key).is_none(),
            "{key} without the switch"
        );
    }
    for (_, body) in &got.exports {
        assert!(!String::from_utf8_lossy(body).contains("write to"));
    }
    g.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_a_failed_span_and_each_attempt_ends_before_the_next_starts() {
    let (coll, got) = collector().await;
    let (up, _seen) = upstream().await;
    let g = common::gateway(&config(&up, &coll, "    sample_ratio: 1")).await;
    assert_eq!(chat(&g, "hello", &[]).await, 200);
    // Refused with a 400 before admission (no messages): a span with its error.
    let resp = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    flush(&g, 1).await;

    let got = std::mem::take(&mut *got.lock().unwrap());
    let roots: Vec<&Span> = got
        .spans
        .iter()
        .filter(|sp| sp.kind == span::SpanKind::Server as i32)
        .collect();
    assert_eq!(roots.len(), 2);
    let bad = roots
        .iter()
        .find(|sp| i(&sp.attributes, "http.response.status_code") == 400)
        .unwrap();
    assert_eq!(s(&bad.attributes, "error.type"), "invalid_request");
    assert_eq!(
        bad.status.as_ref().unwrap().code,
        opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32
    );
    let root = roots
        .iter()
        .find(|sp| i(&sp.attributes, "http.response.status_code") == 200)
        .unwrap();
    // The failed attempt ends before the fallback starts, which ends by the request's end.
    let mut kids: Vec<&Span> = got
        .spans
        .iter()
        .filter(|sp| sp.kind == span::SpanKind::Client as i32)
        .collect();
    kids.sort_by_key(|sp| sp.start_time_unix_nano);
    assert_eq!(kids.len(), 2);
    assert!(kids[0].start_time_unix_nano <= kids[0].end_time_unix_nano);
    assert!(
        kids[0].end_time_unix_nano <= kids[1].start_time_unix_nano,
        "attempt 1 ends at {}, attempt 2 starts at {}",
        kids[0].end_time_unix_nano,
        kids[1].start_time_unix_nano
    );
    assert!(kids[1].end_time_unix_nano <= root.end_time_unix_nano);
    g.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_on_the_span_counts_cached_input_and_reasoning_output() {
    let (coll, got) = collector().await;
    let (up, _seen) = upstream().await;
    let yaml = format!(
        r#"
providers:
  - {{ name: cachy, type: openai_compatible, base_url: "{up}/cached/v1" }}
routes:
  - name: m
    deployments: [{{ provider: cachy, model: gpt-4o-mini }}]
telemetry:
  traces:
    endpoint: "{coll}"
    sample_ratio: 1
"#
    );
    let g = common::gateway(&yaml).await;
    assert_eq!(chat(&g, "hello", &[]).await, 200);
    flush(&g, 1).await;
    let got = std::mem::take(&mut *got.lock().unwrap());
    let root = got
        .spans
        .iter()
        .find(|sp| sp.kind == span::SpanKind::Server as i32)
        .unwrap();
    let a = &root.attributes;
    // All 12 input tokens, 8 of them read from the cache; all 5 output tokens, 2 of them
    // reasoning.
    assert_eq!(i(a, "gen_ai.usage.input_tokens"), 12);
    assert_eq!(i(a, "gen_ai.usage.cache_read.input_tokens"), 8);
    assert_eq!(i(a, "gen_ai.usage.cache_creation.input_tokens"), 0);
    assert_eq!(i(a, "gen_ai.usage.output_tokens"), 5);
    assert_eq!(i(a, "gen_ai.usage.reasoning.output_tokens"), 2);
    g.shut_down().await;
}
