//! CPU cost of the gateway's per-request work, without I/O: parsing a chat body into the typed
//! request (with validation of UTF-8 and paths for errors), serializing it for the upstream, its
//! keyed fingerprint (duplicate-prompt advice), splitting a cost by token kind, and decoding an
//! upstream SSE stream.
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
