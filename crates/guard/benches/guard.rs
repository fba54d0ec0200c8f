//! Guard throughput on one core: typical prompts of 1 KB, 32 KB and 1 MB, and worst cases (a
//! long digit run, a flood of near-miss numbers, a 1 MB base64 blob, dense e-mail-like text).
//!
//! `cargo bench -p tollgate-guard --bench guard`; criterion reports time per scan and, with the
//! byte throughput set, MB/s.
//!
//! `credentials`: the search for the gateway's own credentials (three keys, each in every form of
//! `written_forms`) over answers as they come from a provider — a 2 KB chat answer, a 1 MiB
//! embeddings answer of floats and one of base64 vectors — as `may_be_in_json` runs it on every
//! answer before deciding to parse it.
//!
//! `output_filter`: the output guard of a 2 KB chat answer ([`OutputFilter`]) under the default
//! policy, fed at once (a complete answer) and in 16-byte pieces (a stream), without and with
//! the three credentials — what configuring provider keys adds to every answer (their search as
//! written, behind escapes and across blanks).

// A bench crate: setup may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate_guard::stream::{Output, OutputFilter};
use tollgate_guard::{Guard, GuardConfig, Pack};

/// A deterministic prompt of about `size` bytes: support-ticket prose with the usual sprinkling
/// of numbers, an e-mail, a phone number and an order id every few sentences.
fn typical(size: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "customer",
        "says",
        "their",
        "order",
        "has",
        "not",
        "arrived",
        "and",
        "they",
        "would",
        "like",
        "a",
        "refund",
        "please",
        "check",
        "status",
        "of",
        "shipment",
        "in",
        "warehouse",
        "today",
        "thanks",
        "for",
        "your",
        "help",
        "with",
        "this",
        "issue",
        "we",
        "apologise",
        "delay",
        "invoice",
        "attached",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut s = String::with_capacity(size + 64);
    let mut sentence = 0;
    while s.len() < size {
        for _ in 0..(8 + next() % 10) {
            s.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
            s.push(' ');
        }
        sentence += 1;
        match sentence % 6 {
            1 => s.push_str(&format!("order {} ", 100_000 + next() % 900_000)),
            2 => s.push_str(&format!("total ${}.{:02} ", next() % 500, next() % 100)),
            3 => s.push_str("contact jane.doe@example.com "),
            4 => s.push_str("call +1 (415) 555-0132 "),
            _ => s.push_str(&format!(
                "at 2026-11-{:02}T10:{:02}:00Z ",
                1 + next() % 28,
                next() % 60
            )),
        }
        s.push_str(". ");
    }
    s.truncate(size);
    while !s.is_char_boundary(s.len()) {
        s.pop();
    }
    s
}

fn worst_cases() -> Vec<(&'static str, String)> {
    use base64::Engine;
    let mb = 1 << 20;
    let blob_src: Vec<u8> = (0..mb * 3 / 4).map(|i| (i * 7919 % 251) as u8).collect();
    vec![
        ("digit_run_1MB", "7".repeat(mb)),
        (
            "near_miss_numbers_1MB",
            "4111 1111 1111 1112 ".repeat(mb / 20),
        ),
        (
            "base64_blob_1MB",
            base64::engine::general_purpose::STANDARD.encode(&blob_src),
        ),
        ("at_signs_1MB", "a@b ".repeat(mb / 4)),
        ("spaced_digits_1MB", "1 2 3 4 5 6 7 8 9 0 ".repeat(mb / 20)),
    ]
}

fn bench(c: &mut Criterion) {
    let guard = Guard::new(GuardConfig {
        packs: Pack::ALL.iter().copied().collect(),
        ..GuardConfig::default()
    })
    .unwrap();
    let mut g = c.benchmark_group("guard_typical");
    for size in [1 << 10, 32 << 10, 1 << 20] {
        let text = typical(size);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &text, |b, t| {
            b.iter(|| black_box(guard.scan(black_box(t))))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("guard_worst");
    g.sample_size(10);
    for (name, text) in worst_cases() {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &text, |b, t| {
            b.iter(|| black_box(guard.scan(black_box(t))))
        });
    }
    g.finish();
    let creds = tollgate_guard::stream::Credentials::from_bytes([
        b"sk-proj-Q7zXw2RbN4tVy8LcHq2Xv9Lp4Zq7Vx3PLm9TwQe4".as_slice(),
        b"sk-ant-api03-Zq7Vx3PLm9TwQe4RkY2b".as_slice(),
        b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".as_slice(),
    ]);
    let answer = |content: &str| {
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":30,"completion_tokens":400,"total_tokens":430}}}}"#
        )
    };
    let chat = answer(&typical(2 << 10).replace('"', "'").replace('\n', "\\n"));
    let floats: Vec<String> = (0..1 << 20)
        .map(|i| format!("{:.8}", ((i * 7919) % 20_000) as f64 / 10_000.0 - 1.0))
        .take_while({
            let mut total = 0;
            move |f: &String| {
                total += f.len() + 1;
                total < 1 << 20
            }
        })
        .collect();
    let floats = format!(
        r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[{}]}}]}}"#,
        floats.join(",")
    );
    let blob: Vec<u8> = (0..(3 << 18))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let b64 = format!(
        r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":"{}"}}]}}"#,
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    // Answers in other scripts: every character looked at by the fold check and none folded
    // (Cyrillic), or the answer read folded (Japanese with katakana's long-vowel mark, which
    // reads as a dash, and a full-width digit).
    let other_script = |sentence: &str| {
        let mut body = String::new();
        while body.len() < 2 << 10 {
            body.push_str(sentence);
        }
        answer(&body)
    };
    let russian = other_script("Заказ номер четыре отправлен вчера, доставка займёт три дня. ");
    let japanese =
        other_script("ご注文のコーヒーは昨日発送されました。お届けまで３日ほどかかります。");
    let mut g = c.benchmark_group("credentials");
    for (name, text) in [
        ("chat_2KB", &chat),
        ("chat_2KB_russian", &russian),
        ("chat_2KB_japanese", &japanese),
        ("embeddings_floats_1MB", &floats),
        ("embeddings_base64_1MB", &b64),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), text, |b, t| {
            b.iter(|| black_box(creds.may_be_in_json(black_box(t.as_bytes()))))
        });
    }
    g.finish();
    let policy = tollgate_guard::Policy::from_yaml("{}").unwrap();
    let pguard = policy.guard().unwrap();
    let text = typical(2 << 10);
    let mut g = c.benchmark_group("output_filter");
    g.throughput(Throughput::Bytes(text.len() as u64));
    for (name, credentials, piece) in [
        ("whole_no_credentials", None, text.len()),
        ("whole_credentials", Some(&creds), text.len()),
        ("stream16_no_credentials", None, 16),
        ("stream16_credentials", Some(&creds), 16),
    ] {
        let out = Output {
            policy: &policy,
            guard: &pguard,
            hash_key: b"k",
            tokens: None,
            scan: true,
            mask_all: false,
            credentials,
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut f = OutputFilter::new();
                let mut shown = 0;
                for chunk in text.as_bytes().chunks(piece) {
                    shown += f.feed(&out, std::str::from_utf8(chunk).unwrap()).len();
                }
                shown += f.finish(&out).len();
                black_box(shown)
            })
        });
    }
    g.finish();
    short(c);
}

/// The texts of `bench/overhead.py --masking`'s request and of the simulator's answer to it:
/// what the guard does on every request of the end-to-end benchmark, where per-call costs weigh
/// more than per-byte ones.
fn short(c: &mut Criterion) {
    let policy = tollgate_guard::Policy::from_yaml(
        "entities: { EMAIL_ADDRESS: tokenize, PHONE_NUMBER: mask }",
    )
    .unwrap();
    let pguard = policy.guard().unwrap();
    let system = "You answer customer questions briefly.";
    let user = "I am ann.lee@example.org, call me on +44 20 7946 0958: where is my order 12345?";
    let answer = "Outcomes cost ledger budgets answers outcomes this patterns for for this hold fair with of limits.";
    let creds = tollgate_guard::stream::Credentials::from_bytes([
        b"sk-proj-Q7zXw2RbN4tVy8LcHq2Xv9Lp4Zq7Vx3PLm9TwQe4".as_slice(),
    ]);
    let mut g = c.benchmark_group("short");
    g.bench_function("input_two_messages", |b| {
        b.iter(|| {
            let mut tokens = tollgate_guard::SessionTokens::default();
            let mut texts = [system.to_string(), user.to_string()];
            for t in &mut texts {
                let applied = policy.apply(&pguard, t, b"k", &mut tokens);
                *t = applied.text;
            }
            let [a, b] = &mut texts;
            let seams = policy.apply_seams(&pguard, &mut [a, b], b"k", &mut tokens);
            black_box((texts, seams))
        })
    });
    let mut tokens = tollgate_guard::SessionTokens::default();
    let masked = policy.apply(&pguard, user, b"k", &mut tokens).text;
    for (name, credentials) in [
        ("output_answer", None),
        ("output_answer_credentials", Some(&creds)),
    ] {
        let out = Output {
            policy: &policy,
            guard: &pguard,
            hash_key: b"k",
            tokens: Some(&tokens),
            scan: true,
            mask_all: false,
            credentials,
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(tollgate_guard::stream::guard_output(
                    &out,
                    black_box(answer),
                ))
            })
        });
    }
    g.bench_function("scan_user_message", |b| {
        b.iter(|| black_box(pguard.scan(black_box(user))))
    });
    g.bench_function("scan_masked_user_message", |b| {
        b.iter(|| black_box(pguard.scan(black_box(&masked))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
