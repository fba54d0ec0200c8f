//! `/metrics` as a scraper reads it: the whole exposition, scraped over HTTP after real traffic
//! (answered, streamed, refused by policy and by a pilot cap, failed, feedback, a budget), checked
//! against the OpenMetrics text format by a small parser written from the format's rules, not
//! from what the encoder happens to print — and against the list of families Tollgate publishes,
//! each with its type and label names. Then 5,000 use cases each send a request through the data
//! plane, and the per-use-case series stay bounded: 1,000 use cases by name, the rest `other`,
//! every request still counted.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use futures_util::StreamExt;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use tollgate_simulator::SimConfig;
use tollgate_store::*;

/// One sample line: its name, labels (in order) and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A metric family: its declared type and its samples.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: bool,
    samples: Vec<Sample>,
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// The labels of `{…}` (without the braces): values unescaped, only `\\`, `\"` and `\n`
/// allowed as escapes.
fn parse_labels(s: &str, line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .unwrap_or_else(|| panic!("a label without `=`: {line}"));
        let name = &rest[..eq];
        assert!(is_label_name(name), "label name {name:?}: {line}");
        rest = &rest[eq + 1..];
        assert!(rest.starts_with('"'), "an unquoted label value: {line}");
        let mut value = String::new();
        let mut chars = rest[1..].char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i + 1,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("escape \\{other:?} in a label value: {line}"),
                },
                Some((_, '\n')) => panic!("a raw line break in a label value: {line}"),
                Some((_, c)) => value.push(c),
                None => panic!("an unterminated label value: {line}"),
            }
        };
        assert!(
            !out.iter().any(|(n, _)| n == name),
            "label {name} twice: {line}"
        );
        out.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
            assert!(!rest.is_empty(), "a trailing comma: {line}");
        } else {
            assert!(rest.is_empty(), "labels not separated by commas: {line}");
        }
    }
    out
}

fn parse_value(s: &str, line: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("value {s:?}: {line}")),
    }
}

/// The family a sample of `name` belongs to, given the families declared: a counter's samples
/// are `<family>_total` (or `_created`), a histogram's `_bucket`, `_count`, `_sum` (`_created`),
/// a gauge's the family's own name.
fn family_of<'a>(name: &str, families: &'a BTreeMap<String, Family>) -> Option<(&'a str, &'a str)> {
    for (suffix, kinds) in [
        ("_total", &["counter"][..]),
        ("_created", &["counter", "histogram"][..]),
        ("_bucket", &["histogram"][..]),
        ("_count", &["histogram"][..]),
        ("_sum", &["histogram"][..]),
        ("", &["gauge", "unknown", "info"][..]),
    ] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some((k, f)) = families.get_key_value(base)
            && kinds.contains(&f.kind.as_str())
        {
            return Some((k.as_str(), suffix));
        }
    }
    None
}

/// Parses an OpenMetrics text exposition, checking the format's rules on the way: metadata
/// before samples, each family's samples together, every sample of a declared family and with
/// its type's suffix, label names and escapes as the format allows, no series twice, `# EOF`
/// last. Returns the families by name.
fn parse(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series: BTreeSet<String> = BTreeSet::new();
    let mut lines = text.split('\n').peekable();
    let mut eof = false;
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            eof = true;
            // Nothing after it but the final line break.
            assert!(
                lines.next().is_none_or(str::is_empty) && lines.next().is_none(),
                "text after # EOF"
            );
            break;
        }
        assert!(!line.is_empty(), "an empty line in the exposition");
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (what, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            let rest = parts.next().unwrap_or("");
            assert!(is_name(name), "metric name {name:?}: {line}");
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    closed.insert(c);
                }
                assert!(
                    !closed.contains(name),
                    "family {name} declared again after others: {line}"
                );
                current = Some(name.to_string());
            }
            let f = families.entry(name.to_string()).or_default();
            match what {
                "TYPE" => {
                    assert!(f.kind.is_empty(), "two TYPE lines for {name}");
                    assert!(f.samples.is_empty(), "TYPE after samples of {name}");
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "gaugehistogram",
                            "stateset",
                            "info",
                            "summary",
                            "unknown"
                        ]
                        .contains(&rest),
                        "type {rest:?}: {line}"
                    );
                    f.kind = rest.to_string();
                }
                "HELP" => {
                    assert!(!f.help, "two HELP lines for {name}");
                    assert!(!rest.is_empty(), "an empty HELP for {name}");
                    f.help = true;
                }
                "UNIT" => assert!(
                    name.ends_with(&format!("_{rest}")),
                    "a unit the name does not end with: {line}"
                ),
                _ => panic!("unknown metadata: {line}"),
            }
            continue;
        }
        assert!(
            !line.starts_with('#'),
            "a comment that is not metadata: {line}"
        );
        // name{labels} value [timestamp]
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line
                    .rfind('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                (
                    &line[..open],
                    parse_labels(&line[open + 1..close], line),
                    line[close + 1..].to_string(),
                )
            }
            None => {
                let sp = line.find(' ').unwrap_or_else(|| panic!("no value: {line}"));
                (&line[..sp], Vec::new(), line[sp..].to_string())
            }
        };
        assert!(is_name(name), "sample name {name:?}: {line}");
        let rest = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value: {line}"));
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap(), line);
        if let Some(ts) = fields.next() {
            parse_value(ts, line);
        }
        assert!(
            fields.next().is_none(),
            "more than a value and a time: {line}"
        );
        let (family, _) = family_of(name, &families)
            .unwrap_or_else(|| panic!("a sample of no declared family: {line}"));
        assert_eq!(
            current.as_deref(),
            Some(family),
            "a sample away from its family's block: {line}"
        );
        assert!(
            series.insert(format!("{name}{labels:?}")),
            "a series twice: {line}"
        );
        let family = family.to_string();
        families.get_mut(&family).unwrap().samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    assert!(eof, "no # EOF at the end");
    families
}

/// The labels of a sample without `le`, as a map.
fn key(s: &Sample) -> BTreeMap<String, String> {
    s.labels
        .iter()
        .filter(|(n, _)| n != "le")
        .cloned()
        .collect()
}

/// One histogram series: its buckets (`le`, count), its `_count`, whether it has a `_sum`.
type Series = (Vec<(f64, f64)>, Option<f64>, bool);

/// The type rules: counters are finite and not negative; a histogram's buckets per series rise
/// with `le`, end at `+Inf`, and that bucket is its `_count`.
fn check_values(name: &str, f: &Family) {
    match f.kind.as_str() {
        "counter" => {
            for s in &f.samples {
                assert!(
                    s.value.is_finite() && s.value >= 0.0,
                    "{name}: counter value {}",
                    s.value
                );
            }
        }
        "histogram" => {
            let mut per: BTreeMap<String, Series> = BTreeMap::new();
            for s in &f.samples {
                let e = per.entry(format!("{:?}", key(s))).or_default();
                if s.name.ends_with("_bucket") {
                    let le = s
                        .labels
                        .iter()
                        .find(|(n, _)| n == "le")
                        .unwrap_or_else(|| panic!("{name}: a bucket without le"));
                    e.0.push((parse_value(&le.1, &le.1), s.value));
                } else if s.name.ends_with("_count") {
                    e.1 = Some(s.value);
                } else if s.name.ends_with("_sum") {
                    e.2 = true;
                }
            }
            for (labels, (buckets, count, sum)) in per {
                assert!(sum, "{name}{labels}: no _sum");
                assert!(!buckets.is_empty(), "{name}{labels}: no buckets");
                for w in buckets.windows(2) {
                    assert!(w[0].0 < w[1].0, "{name}{labels}: le not rising");
                    assert!(w[0].1 <= w[1].1, "{name}{labels}: buckets not cumulative");
                }
                let last = buckets.last().unwrap();
                assert_eq!(last.0, f64::INFINITY, "{name}{labels}: no +Inf bucket");
                assert_eq!(Some(last.1), count, "{name}{labels}: +Inf bucket ≠ _count");
            }
        }
        _ => {}
    }
}

/// Every family Tollgate publishes: its type and its label names (a histogram's without `le`).
/// A family added, removed, retyped or relabelled fails the test until this list says so.
const FAMILIES: &[(&str, &str, &[&str])] = &[
    (
        "tollgate_requests",
        "counter",
        &["endpoint", "route", "status"],
    ),
    (
        "tollgate_request_duration_seconds",
        "histogram",
        &["endpoint", "stream"],
    ),
    (
        "tollgate_gateway_overhead_seconds",
        "histogram",
        &["endpoint", "stream"],
    ),
    (
        "tollgate_upstream_duration_seconds",
        "histogram",
        &["provider", "outcome"],
    ),
    (
        "tollgate_upstream_attempts",
        "counter",
        &["provider", "outcome"],
    ),
    ("tollgate_fallbacks", "counter", &[]),
    ("tollgate_errors", "counter", &["kind"]),
    ("tollgate_tokens", "counter", &["token_type", "route"]),
    (
        "gen_ai_client_token_usage",
        "histogram",
        &[
            "gen_ai_token_type",
            "gen_ai_operation_name",
            "gen_ai_provider_name",
            "gen_ai_request_model",
        ],
    ),
    (
        "gen_ai_client_operation_duration_seconds",
        "histogram",
        &[
            "gen_ai_operation_name",
            "gen_ai_provider_name",
            "gen_ai_request_model",
        ],
    ),
    (
        "gen_ai_client_operation_time_to_first_chunk_seconds",
        "histogram",
        &[
            "gen_ai_operation_name",
            "gen_ai_provider_name",
            "gen_ai_request_model",
        ],
    ),
    ("tollgate_estimated_usage_requests", "counter", &["route"]),
    ("tollgate_cost_nano_usd", "counter", &["route"]),
    ("tollgate_unpriced_requests", "counter", &["route"]),
    ("tollgate_budget_alerts", "gauge", &["threshold"]),
    ("tollgate_ledger_records_spilled", "gauge", &[]),
    ("tollgate_ledger_records_replayed", "gauge", &[]),
    ("tollgate_ledger_records_written", "gauge", &[]),
    ("tollgate_ledger_records_dropped", "gauge", &[]),
    ("tollgate_ledger_queue_depth", "gauge", &[]),
    ("tollgate_connections_open", "gauge", &[]),
    ("tollgate_connections_timed_out", "counter", &[]),
    ("tollgate_admin_auth_failures", "counter", &["outcome"]),
    (
        "tollgate_guard_findings",
        "counter",
        &["direction", "entity_type", "action"],
    ),
    ("tollgate_guard_blocked_requests", "counter", &[]),
    ("tollgate_feedback_events", "counter", &["outcome"]),
    ("tollgate_trace_spans", "counter", &["outcome"]),
    (
        "tollgate_use_case_requests",
        "counter",
        &["use_case", "pod", "route", "provider", "status"],
    ),
    (
        "tollgate_use_case_tokens",
        "counter",
        &["use_case", "pod", "token_type"],
    ),
    (
        "tollgate_use_case_cost_nano_usd",
        "counter",
        &["use_case", "pod"],
    ),
    (
        "tollgate_use_case_errors",
        "counter",
        &["use_case", "pod", "kind"],
    ),
    (
        "tollgate_use_case_refusals",
        "counter",
        &["use_case", "pod", "kind"],
    ),
    ("tollgate_budget_burn_ratio", "gauge", &["budget", "scope"]),
    ("tollgate_feedback_pending", "gauge", &[]),
    ("tollgate_feedback_refused", "gauge", &[]),
    ("tollgate_feedback_stored", "gauge", &[]),
    ("tollgate_feedback_duplicates", "gauge", &[]),
];

/// Scrapes `/metrics` over HTTP: the content type a scraper negotiates on, and the families.
async fn scrape(g: &common::Gw) -> (String, BTreeMap<String, Family>) {
    let resp = reqwest::get(format!("{}/metrics", g.url)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    let text = resp.text().await.unwrap();
    let families = parse(&text);
    (text, families)
}

/// What a family's samples sum to where `labels` hold (a counter's `_total`s).
fn sum(f: &Family, labels: &[(&str, &str)]) -> f64 {
    f.samples
        .iter()
        .filter(|s| {
            labels
                .iter()
                .all(|(n, v)| s.labels.iter().any(|(ln, lv)| ln == n && lv == v))
        })
        .map(|s| s.value)
        .sum()
}

/// The distinct values of `label` in a family.
fn values(f: &Family, label: &str) -> BTreeSet<String> {
    f.samples
        .iter()
        .filter_map(|s| s.labels.iter().find(|(n, _)| n == label))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Checks the exposition: every family of [`FAMILIES`] and no other, with its type, a HELP,
/// and on every sample exactly its label names; the values by the type's rules; and no label
/// value that is one of `secrets` (keys, request ids, end users).
fn check(families: &BTreeMap<String, Family>, secrets: &[String]) {
    let published: BTreeSet<&str> = families.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = FAMILIES.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(published, expected, "the families published");
    for (name, kind, labels) in FAMILIES {
        let f = &families[*name];
        assert_eq!(f.kind, *kind, "{name}'s type");
        assert!(f.help, "{name} has no HELP");
        let want: BTreeSet<&str> = labels.iter().copied().collect();
        for s in &f.samples {
            let got: BTreeSet<&str> = s
                .labels
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| *n != "le")
                .collect();
            assert_eq!(got, want, "{name}: the labels of {}{:?}", s.name, s.labels);
            for (n, v) in &s.labels {
                assert!(
                    !secrets.iter().any(|x| v.contains(x.as_str())),
                    "{name}: label {n} holds a key, request id or user"
                );
            }
        }
        check_values(name, f);
    }
}

#[tokio::test]
async fn the_scrape_is_valid_openmetrics_with_bounded_use_case_labels() {
    let s = common::sim(SimConfig::default()).await;
    // A manual clock at noon mid-month: the pilot's day and the budget's month cannot end
    // during the test (the suite also runs at a year's last minute).
    let noon = tollgate_types::time::parse_rfc3339("2026-12-15T12:00:00Z").unwrap();
    let g = common::gateway_at(
        &common::two_route_config(&s.url),
        tollgate_types::clock::Clock::manual(noon),
    )
    .await;
    // A budget on the production use case, spent into by its answers.
    common::budget(
        &g.gw,
        "use_case",
        &g.use_case.id,
        "month",
        "soft",
        1_000_000_000,
    )
    .await;
    let client = reqwest::Client::new();
    let chat = |key: &str, body: serde_json::Value| {
        client
            .post(g.chat_url())
            .bearer_auth(key)
            .header("x-tollgate-session", "conv-secret-7")
            .json(&body)
            .send()
    };
    let mut secrets = vec![g.key.clone(), "conv-secret-7".to_string()];
    // Answered on both routes, streamed, refused for an unknown route, refused as a bad request.
    let mut request_ids = Vec::new();
    for body in [
        json!({"model": "m", "messages": common::user("hello"), "user": "end-user-42"}),
        json!({"model": "c", "messages": common::user("hello")}),
        json!({"model": "m", "messages": common::user("hello"), "stream": true}),
    ] {
        let resp = chat(&g.key, body).await.unwrap();
        assert_eq!(resp.status(), 200);
        request_ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_string());
        resp.bytes().await.unwrap();
    }
    secrets.push("end-user-42".into());
    let resp = chat(
        &g.key,
        json!({"model": "nope", "messages": common::user("x")}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = chat(&g.key, json!({"model": "m", "messages": "not a list"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Feedback on the first answer.
    let resp = client
        .post(format!("{}/v1/feedback", g.url))
        .bearer_auth(&g.key)
        .json(&json!({"request_id": request_ids[0], "outcome": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    // A pilot at its cap: answered once, then refused.
    let caps = PilotCaps {
        max_requests_per_day: Some(1),
        ..PilotCaps::default()
    };
    let (pilot, pilot_key) =
        common::use_case_with_key(&g.gw, Stage::Pilot, &["m"], caps, None).await;
    secrets.push(pilot_key.clone());
    let hello = json!({"model": "m", "messages": common::user("hello")});
    assert_eq!(chat(&pilot_key, hello.clone()).await.unwrap().status(), 200);
    assert_eq!(chat(&pilot_key, hello.clone()).await.unwrap().status(), 429);
    // A policy that blocks an e-mail address.
    g.set_policy(json!({"entities": {"EMAIL_ADDRESS": "block"}}))
        .await;
    let resp = chat(
        &g.key,
        json!({"model": "m", "messages": common::user("mail ann.lee@example.org")}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    secrets.push("ann.lee@example.org".into());
    secrets.extend(request_ids.iter().cloned());
    g.gw.outcomes.written_at_least(1).await;
    // Records: the three answers, the pilot's answer, the blocked request (the refusals before
    // admission — unknown route, bad body, pilot cap — have none).
    common::records(&g.gw, 5).await;

    let (_, families) = scrape(&g).await;
    check(&families, &secrets);
    // What the traffic above put in the series, by use case and pod.
    let (uc, pod) = (g.use_case.id.as_str(), g.use_case.pod_id.as_str());
    let requests = &families["tollgate_use_case_requests"];
    assert_eq!(sum(requests, &[("use_case", uc), ("status", "200")]), 3.0);
    // And the blocked one (400, recorded); the unknown route and the bad body are refusals.
    assert_eq!(
        sum(requests, &[("use_case", uc), ("pod", pod)]),
        4.0,
        "{requests:?}"
    );
    assert_eq!(sum(requests, &[("use_case", &pilot.id)]), 1.0);
    let refusals = &families["tollgate_use_case_refusals"];
    for (who, kind) in [
        (pilot.id.as_str(), "pilot_cap_reached"),
        (uc, "model_not_found"),
        (uc, "invalid_request"),
    ] {
        assert_eq!(
            sum(refusals, &[("use_case", who), ("kind", kind)]),
            1.0,
            "{kind}: {refusals:?}"
        );
    }
    assert_eq!(refusals.samples.len(), 3, "{refusals:?}");
    assert_eq!(
        sum(
            &families["tollgate_guard_findings"],
            &[
                ("direction", "input"),
                ("entity_type", "EMAIL_ADDRESS"),
                ("action", "block")
            ]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &families["tollgate_feedback_events"],
            &[("outcome", "success")]
        ),
        1.0
    );
    let burn = &families["tollgate_budget_burn_ratio"];
    assert_eq!(
        values(burn, "scope"),
        BTreeSet::from(["use_case".to_string()])
    );
    assert!(burn.samples[0].value > 0.0, "{burn:?}");
    assert_eq!(
        families["tollgate_requests"]
            .samples
            .iter()
            .filter(|s| s.labels.iter().any(|(n, v)| n == "endpoint" && v == "chat"))
            .map(|s| s.value)
            .sum::<f64>(),
        // 3 answered, 404, 400, the pilot's 200 and 429, the blocked 400.
        8.0
    );

    // 5,000 more use cases, 500 pods, one request each through the data plane.
    const MANY: usize = 5_000;
    let mut pods = Vec::new();
    for p in 0..500 {
        pods.push(
            g.gw.store
                .create_pod("test", &format!("pod-{p:03}"), "")
                .await
                .unwrap(),
        );
    }
    let mut keys = Vec::with_capacity(MANY);
    for i in 0..MANY {
        let (_, key) = common::use_case_and_key_in(
            &g.gw,
            &pods[i % pods.len()].id,
            &format!("uc-{i:04}"),
            Stage::Production,
            &["m"],
            PilotCaps::default(),
            None,
        )
        .await;
        secrets.push(key.clone());
        keys.push(key);
    }
    g.gw.keyring.reload().await.unwrap();
    let answered = futures_util::stream::iter(keys.iter())
        .map(|k| {
            let c = client.clone();
            let url = g.chat_url();
            let body = hello.clone();
            async move {
                c.post(url)
                    .bearer_auth(k)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        })
        .buffer_unordered(16)
        .filter(|st| std::future::ready(st.as_u16() == 200))
        .count()
        .await;
    assert_eq!(answered, MANY);

    let (text, families) = scrape(&g).await;
    check(&families, &secrets);
    let requests = &families["tollgate_use_case_requests"];
    let (ucs, pod_values) = (values(requests, "use_case"), values(requests, "pod"));
    // 1,000 use cases by name (the first two of the test among them) and `other`; 501 pods
    // (the test's and the 500) are under the cap of 1,000, all named.
    assert_eq!(ucs.len(), 1_001, "use case label values");
    assert!(ucs.contains("other") && ucs.contains(uc) && ucs.contains(&pilot.id));
    assert_eq!(pod_values.len(), 501, "pod label values");
    assert!(!pod_values.contains("other"));
    for family in [
        "tollgate_use_case_requests",
        "tollgate_use_case_tokens",
        "tollgate_use_case_cost_nano_usd",
        "tollgate_use_case_errors",
        "tollgate_use_case_refusals",
    ] {
        assert!(
            values(&families[family], "use_case").len() <= 1_001,
            "{family} unbounded"
        );
    }
    // Every request still counted: 4 + 1 before, 5,000 now.
    assert_eq!(sum(requests, &[]), (5 + MANY) as f64);
    // The exposition stays small enough to scrape: a few series per use case named.
    assert!(text.len() < 2_000_000, "{} bytes", text.len());
}

/// The checker itself: each rule of the format it enforces, broken once, is refused — so a
/// scrape that passes it is one a strict scraper reads.
#[test]
fn the_checker_refuses_what_the_format_does_not_allow() {
    let good = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{route=\"m\",status=\"200\"} 3\n# HELP a_seconds Time.\n# TYPE a_seconds histogram\na_seconds_sum{e=\"x\"} 1.5\na_seconds_count{e=\"x\"} 2\na_seconds_bucket{e=\"x\",le=\"0.5\"} 1\na_seconds_bucket{e=\"x\",le=\"+Inf\"} 2\n# HELP a_depth Depth.\n# TYPE a_depth gauge\na_depth 0\n# EOF\n";
    let families = parse(good);
    for (name, f) in &families {
        check_values(name, f);
    }
    assert_eq!(families["a_requests"].samples[0].value, 3.0);
    let bad = [
        ("no # EOF", good.replace("# EOF\n", "")),
        ("text after # EOF", format!("{good}a_depth 1\n")),
        (
            "a sample of no family",
            good.replace("a_depth 0", "b_depth 0"),
        ),
        (
            "a counter without _total",
            good.replace("a_requests_total{", "a_requests{"),
        ),
        ("an unquoted value", good.replace("route=\"m\"", "route=m")),
        (
            "a bad escape",
            good.replace("route=\"m\"", "route=\"m\\x\""),
        ),
        (
            "a label twice",
            good.replace("status=\"200\"", "route=\"200\""),
        ),
        ("a bad label name", good.replace("status=", "1status=")),
        ("a bad value", good.replace("} 3\n", "} three\n")),
        (
            "a series twice",
            good.replace("a_depth 0\n", "a_depth 0\na_depth 1\n"),
        ),
        (
            "a family split",
            good.replace(
                "# HELP a_depth",
                "a_requests_total{route=\"n\",status=\"200\"} 1\n# HELP a_depth",
            ),
        ),
        ("an unknown type", good.replace("gauge", "meter")),
        (
            "an empty line",
            good.replace("a_depth 0\n", "a_depth 0\n\n"),
        ),
        (
            "two TYPE lines",
            good.replace(
                "# TYPE a_depth gauge",
                "# TYPE a_depth gauge\n# TYPE a_depth gauge",
            ),
        ),
    ];
    for (what, text) in bad {
        let refused = std::panic::catch_unwind(|| parse(&text)).is_err();
        assert!(refused, "the parser took {what}");
    }
    let values_bad = [
        (
            "buckets not cumulative",
            good.replace("le=\"0.5\"} 1", "le=\"0.5\"} 5"),
        ),
        (
            "+Inf not the count",
            good.replace("_count{e=\"x\"} 2", "_count{e=\"x\"} 3"),
        ),
        ("no +Inf bucket", good.replace("le=\"+Inf\"", "le=\"9\"")),
        ("a negative counter", good.replace("} 3\n", "} -3\n")),
    ];
    for (what, text) in values_bad {
        let refused = std::panic::catch_unwind(|| {
            for (name, f) in &parse(&text) {
                check_values(name, f);
            }
        })
        .is_err();
        assert!(refused, "the value rules took {what}");
    }
}
