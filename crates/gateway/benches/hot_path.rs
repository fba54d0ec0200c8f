//! CPU cost of the gateway's per-request work, without I/O: parsing a chat body into the typed
//! request (with validation of UTF-8 and paths for errors), serializing it for the upstream, its
//! keyed fingerprint (duplicate-prompt advice), splitting a cost by token kind, decoding an
//! upstream SSE stream, and the traces: a request's trace context at arrival, and building and
//! queueing the spans of a sampled request (or skipping those of an unsampled one).
//!
//! Run: `cargo bench -p tollgate-gateway --bench hot_path`

// A bench crate: setup may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use tollgate_gateway::extract::parse_json;
use tollgate_providers::sse::SseDecoder;
use tollgate_types::openai::ChatCompletionRequest;

const BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You answer customer questions briefly."},{"role":"user","content":"Where is my order 12345? It was due yesterday and I need it for a trip on Friday."}],"max_tokens":256,"temperature":0.2,"stream":false,"user":"u-42","metadata":{"team":"support"}}"#;

fn sse_stream(chunks: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..chunks {
        out.extend_from_slice(format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n").as_bytes());
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn bench(c: &mut Criterion) {
    c.bench_function("parse chat request (typical body)", |b| {
        b.iter(|| parse_json::<ChatCompletionRequest>(black_box(BODY.as_bytes())).unwrap())
    });
    let req: ChatCompletionRequest = serde_json::from_str(BODY).unwrap();
    c.bench_function("serialize chat request for upstream", |b| {
        b.iter(|| serde_json::to_vec(black_box(&req)).unwrap())
    });
    let hasher = tollgate_gateway::keys::KeySecret::from_material(b"bench secret").prompt_hasher();
    c.bench_function("fingerprint chat request (HMAC-SHA-256)", |b| {
        b.iter(|| hasher.fingerprint(black_box(&req)).unwrap())
    });
    let prices = tollgate_meter::Prices {
        input: 150_000_000,
        cached_input: 75_000_000,
        cache_write: 150_000_000,
        output: 600_000_000,
        reasoning: 600_000_000,
    };
    let tokens = tollgate_meter::Tokens {
        input: 1_234,
        cached_input: 512,
        cache_write: 0,
        output: 321,
        reasoning: 64,
    };
    c.bench_function("cost and its split by token kind", |b| {
        b.iter(|| {
            (
                tollgate_meter::cost(black_box(&prices), black_box(&tokens)),
                tollgate_meter::split(black_box(&prices), black_box(&tokens)),
            )
        })
    });
    let stream = sse_stream(200);
    let mut g = c.benchmark_group("sse decode");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("200 chunks, 1 KiB reads", |b| {
        b.iter(|| {
            let mut d = SseDecoder::new();
            let mut n = 0;
            for piece in stream.chunks(1024) {
                d.push(piece);
                while let Some(e) = d.next_event() {
                    n += e.data.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
    traces(c);
}

/// The traces' share of a request: `begin` at arrival, `end` at the record (a sampled request:
/// its span and two attempts' spans built and queued; an unsampled one: nothing). The exporter
/// points at a closed port, and the queue is flushed (untimed) every 256 requests, so spans are
/// never dropped for a full queue — what is timed is the request path's own work.
fn traces(c: &mut Criterion) {
    use std::time::{Duration, Instant};
    use tollgate_gateway::context::{Attempt, RequestContext};
    use tollgate_gateway::traces::{Ending, Traces};
    let config = tollgate_config::Config::from_yaml_str(
        r#"
providers:
  - { name: a, type: openai_compatible, base_url: "http://127.0.0.1:1/v1" }
  - { name: b, type: openai_compatible, base_url: "http://127.0.0.1:1/v1" }
routes:
  - name: gpt-4o-mini
    deployments: [{ provider: a, model: gpt-4o-mini }, { provider: b, model: gpt-4o-mini }]
telemetry:
  traces: { endpoint: "http://127.0.0.1:1", sample_ratio: 1 }
"#,
        &|_| None,
    )
    .unwrap();
    let metrics = std::sync::Arc::new(tollgate_gateway::metrics::Metrics::new());
    let traces = Traces::start(&config, metrics).unwrap().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    c.bench_function("traces: begin (parse traceparent)", |b| {
        b.iter(|| traces.begin(black_box(&headers)))
    });
    let caller = std::sync::Arc::new(tollgate_gateway::auth::KeyEntry {
        key_id: "key_1".into(),
        prefix: "tg_x".into(),
        use_case_id: "uc_01jd7x3k9m2q".into(),
        use_case_name: "triage".into(),
        pod_id: "pod_01jd7x3k9m2q".into(),
        stage: tollgate_store::Stage::Production,
        routes: vec!["gpt-4o-mini".into()],
        scopes: None,
        valid_until: None,
        pilot_caps: Default::default(),
        key_limits: Default::default(),
        use_case_limits: Default::default(),
        slo: Default::default(),
        evaluation: false,
    });
    let mut ctx = RequestContext::new("req_01jd7x3k9m2q7w".into(), 1_796_082_600_000);
    ctx.endpoint = "chat";
    ctx.caller = Some(caller);
    ctx.route = Some(0);
    ctx.session_hash = Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0".into());
    ctx.trace = Some(traces.begin(&headers));
    for (d, error) in [
        (0, Some(tollgate_providers::ProviderError::Timeout)),
        (1, None),
    ] {
        ctx.attempts.push(Attempt {
            route: 0,
            deployment: d,
            provider: d,
            started: Duration::from_millis(2),
            took: Duration::from_millis(40),
            error,
            span_id: tollgate_gateway::traces::new_span_id(),
        });
    }
    let charge = tollgate_meter::Charge {
        tokens: tollgate_meter::Tokens {
            input: 1_234,
            output: 321,
            ..Default::default()
        },
        cost: Some(tollgate_meter::Money(378_000)),
        split: [0; 5],
        price_source: "catalog".into(),
        estimated: false,
    };
    let ending = Ending {
        status: 200,
        outcome: "ok",
        charge: Some(&charge),
        ttft: None,
    };
    let timed = |ctx: &RequestContext, iters: u64| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(256);
            let t = Instant::now();
            for _ in 0..n {
                traces.end(&config, black_box(ctx), ending);
            }
            total += t.elapsed();
            left -= n;
            traces.flush();
        }
        total
    };
    c.bench_function("traces: end, sampled (3 spans built and queued)", |b| {
        b.iter_custom(|iters| timed(&ctx, iters))
    });
    if let Some(t) = ctx.trace.as_mut() {
        t.sampled = false;
    }
    c.bench_function("traces: end, not sampled", |b| {
        b.iter_custom(|iters| timed(&ctx, iters))
    });
}

/// A complete answer of `tokens` tokens of prose through the output guard (the default policy,
/// which scans answers), without and with log probabilities of 20 alternatives per token — the
/// most OpenAI gives — which a scanning policy reads (each alternative with the chosen tokens
/// around it).
fn output_guard(c: &mut Criterion) {
    use serde_json::json;
    use std::sync::Arc;
    use tollgate_gateway::shield::{GuardReport, OutputGuard, guard_answer};
    let policy = tollgate_guard::policy::Policy::from_yaml("").unwrap();
    let guard = policy.guard().unwrap();
    let og = OutputGuard {
        gov: Arc::new(tollgate_gateway::policies::Governed {
            policy,
            guard,
            label: "bench".into(),
        }),
        hash_key: Arc::from(&b"k"[..]),
        tokens: Arc::default(),
        capture: false,
        credentials: Arc::default(),
    };
    let words = [
        " the", " order", " shipped", " on", " Friday", " and", " will", " arrive", " soon", ".",
    ];
    let answer = |tokens: usize, logprobs: bool| {
        let chosen: Vec<&str> = (0..tokens).map(|i| words[i % words.len()]).collect();
        let mut v = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": chosen.concat()}}]});
        if logprobs {
            let entries: Vec<_> = chosen
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let top: Vec<_> = (0..20)
                        .map(|k| {
                            let a = words[(i + k + 1) % words.len()];
                            json!({"token": a, "logprob": -1.5, "bytes": a.as_bytes()})
                        })
                        .collect();
                    json!({"token": t, "logprob": -0.1, "bytes": t.as_bytes(), "top_logprobs": top})
                })
                .collect();
            v["choices"][0]["logprobs"] = json!({"content": entries, "refusal": null});
        }
        bytes::Bytes::from(v.to_string())
    };
    let mut g = c.benchmark_group("output guard, complete answer");
    for (name, tokens, logprobs) in [
        ("1,000 tokens", 1_000, false),
        (
            "1,000 tokens, log probabilities of 20 alternatives",
            1_000,
            true,
        ),
        (
            "4,096 tokens, log probabilities of 20 alternatives",
            4_096,
            true,
        ),
    ] {
        let body = answer(tokens, logprobs);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                guard_answer(&og, black_box(body.clone()), &mut GuardReport::default()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, output_guard);
criterion_main!(benches);
