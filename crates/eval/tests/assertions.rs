//! Every assertion type, passing and failing, judged through the runner as a suite would be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Fake;
use tollgate_eval::{CaseResult, RunOptions, Status, Suite, run};

fn suite(asserts: &str, threshold: Option<f64>) -> Suite {
    let threshold = threshold.map_or(String::new(), |t| format!("    threshold: {t}\n"));
    let yaml = format!(
        "prompts: [\"Answer {{{{ q }}}}\"]\nroutes: [main]\njudge: {{ route: judge }}\n\
         embedding: {{ route: embed }}\ntests:\n  - vars: {{ q: hello, name: Ada }}\n{threshold}    assert:\n{asserts}"
    );
    Suite::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

async fn case(asserts: &str, fake: &Fake) -> CaseResult {
    let s = suite(asserts, None);
    run(&s, fake, RunOptions::default(), &|_, _, _| {})
        .await
        .cases
        .remove(0)
}

/// (assertion, the output, the status expected).
async fn table(rows: &[(&str, &str, Status)]) {
    for (assert, output, want) in rows {
        let fake = Fake::answering(output);
        let c = case(&format!("      - {assert}\n"), &fake).await;
        assert_eq!(
            c.status, *want,
            "{assert} on {output:?}: {:?} {:?}",
            c.assertions, c.error
        );
    }
}

#[tokio::test]
async fn equals() {
    table(&[
        (
            r#"{ type: equals, value: "hello world" }"#,
            "hello world",
            Status::Pass,
        ),
        (
            r#"{ type: equals, value: "hello world" }"#,
            "hello world!",
            Status::Fail,
        ),
        (
            r#"{ type: not-equals, value: "hello world" }"#,
            "hello world!",
            Status::Pass,
        ),
        (
            r#"{ type: not-equals, value: "hello world" }"#,
            "hello world",
            Status::Fail,
        ),
        (r#"{ type: equals, value: 42 }"#, "42", Status::Pass),
        (
            r#"{ type: equals, value: { a: 1, b: [true] } }"#,
            r#" {"b": [true], "a": 1} "#,
            Status::Pass,
        ),
        (
            r#"{ type: equals, value: { a: 1 } }"#,
            r#"{"a": 2}"#,
            Status::Fail,
        ),
        (
            r#"{ type: equals, value: { a: 1 } }"#,
            "a is 1",
            Status::Fail,
        ),
        (
            r#"{ type: equals, value: "{{ name }}" }"#,
            "Ada",
            Status::Pass,
        ),
    ])
    .await;
}

#[tokio::test]
async fn contains_family() {
    table(&[
        (
            "{ type: contains, value: refund }",
            "We will refund you",
            Status::Pass,
        ),
        (
            "{ type: contains, value: refund }",
            "We will Refund you",
            Status::Fail,
        ),
        (
            "{ type: icontains, value: REFUND }",
            "we will refund you",
            Status::Pass,
        ),
        (
            "{ type: icontains, value: REFUND }",
            "we will not pay",
            Status::Fail,
        ),
        (
            "{ type: not-contains, value: outage }",
            "all fine",
            Status::Pass,
        ),
        (
            "{ type: not-contains, value: outage }",
            "an outage",
            Status::Fail,
        ),
        (
            "{ type: not-icontains, value: OUTAGE }",
            "all fine",
            Status::Pass,
        ),
        (
            "{ type: not-icontains, value: OUTAGE }",
            "an Outage",
            Status::Fail,
        ),
        (
            "{ type: contains-any, value: [cat, dog] }",
            "a dog",
            Status::Pass,
        ),
        (
            "{ type: contains-any, value: [cat, dog] }",
            "a Dog",
            Status::Fail,
        ),
        (
            "{ type: icontains-any, value: [cat, dog] }",
            "a Dog",
            Status::Pass,
        ),
        (
            "{ type: icontains-any, value: [cat, dog] }",
            "a bird",
            Status::Fail,
        ),
        (
            "{ type: contains-all, value: [cat, dog] }",
            "cat and dog",
            Status::Pass,
        ),
        (
            "{ type: contains-all, value: [cat, dog] }",
            "cat and Dog",
            Status::Fail,
        ),
        (
            "{ type: icontains-all, value: [cat, dog] }",
            "CAT and Dog",
            Status::Pass,
        ),
        (
            "{ type: icontains-all, value: [cat, dog] }",
            "CAT alone",
            Status::Fail,
        ),
        (
            "{ type: not-contains-any, value: [cat, dog] }",
            "a bird",
            Status::Pass,
        ),
        (
            "{ type: not-contains-any, value: [cat, dog] }",
            "a cat",
            Status::Fail,
        ),
        (
            "{ type: not-contains-all, value: [cat, dog] }",
            "a cat",
            Status::Pass,
        ),
        (
            "{ type: not-contains-all, value: [cat, dog] }",
            "cat, dog",
            Status::Fail,
        ),
        // promptfoo's comma-separated form
        (
            r#"{ type: contains-all, value: "cat, dog" }"#,
            "dog cat",
            Status::Pass,
        ),
        (
            r#"{ type: contains-all, value: "cat, dog" }"#,
            "dog",
            Status::Fail,
        ),
        // values are templates
        (
            r#"{ type: contains, value: "{{ name }}" }"#,
            "Hi Ada",
            Status::Pass,
        ),
        (
            r#"{ type: contains, value: "{{ name }}" }"#,
            "Hi Bob",
            Status::Fail,
        ),
    ])
    .await;
}

#[tokio::test]
async fn starts_with_and_regex() {
    table(&[
        (
            "{ type: starts-with, value: Dear }",
            "Dear Ada",
            Status::Pass,
        ),
        (
            "{ type: starts-with, value: Dear }",
            "Hi Dear",
            Status::Fail,
        ),
        (
            "{ type: not-starts-with, value: Dear }",
            "Hi Dear",
            Status::Pass,
        ),
        (
            r#"{ type: regex, value: '^\d{3}-\d{4}$' }"#,
            "555-1234",
            Status::Pass,
        ),
        (
            r#"{ type: regex, value: '^\d{3}-\d{4}$' }"#,
            "5551234",
            Status::Fail,
        ),
        (
            r#"{ type: not-regex, value: '\bERROR\b' }"#,
            "all good",
            Status::Pass,
        ),
        (
            r#"{ type: not-regex, value: '\bERROR\b' }"#,
            "an ERROR here",
            Status::Fail,
        ),
    ])
    .await;
}

const SCHEMA: &str =
    "{ type: object, required: [category], properties: { category: { enum: [billing, outage] } } }";

#[tokio::test]
async fn json_and_schemas() {
    let is = format!("{{ type: is-json, value: {SCHEMA} }}");
    let has = format!("{{ type: contains-json, value: {SCHEMA} }}");
    table(&[
        ("{ type: is-json }", r#" {"a": 1} "#, Status::Pass),
        ("{ type: is-json }", "a: 1", Status::Fail),
        ("{ type: is-json }", r#"Here: {"a": 1}"#, Status::Fail),
        ("{ type: not-is-json }", "plain words", Status::Pass),
        (&is, r#"{"category": "billing"}"#, Status::Pass),
        (&is, r#"{"category": "sales"}"#, Status::Fail),
        (&is, r#"{"other": 1}"#, Status::Fail),
        (
            "{ type: contains-json }",
            r#"Sure: {"a": 1}. Done"#,
            Status::Pass,
        ),
        ("{ type: contains-json }", "no json at all", Status::Fail),
        (
            &has,
            r#"first {"category": "x"} then ```json\n{"category": "outage"}\n```"#,
            Status::Pass,
        ),
        (&has, r#"only {"category": "x"}"#, Status::Fail),
    ])
    .await;
    // The failure says where the schema broke.
    let c = case(
        &format!("      - {is}\n"),
        &Fake::answering(r#"{"category": "sales"}"#),
    )
    .await;
    assert!(
        c.assertions[0].reason.contains("/category"),
        "{}",
        c.assertions[0].reason
    );
}

#[tokio::test]
async fn levenshtein() {
    table(&[
        (
            "{ type: levenshtein, value: hello, threshold: 1 }",
            "hallo",
            Status::Pass,
        ),
        (
            "{ type: levenshtein, value: hello, threshold: 1 }",
            "help me",
            Status::Fail,
        ),
        // default threshold 5
        (
            "{ type: levenshtein, value: hello }",
            "hello world",
            Status::Fail,
        ),
        (
            "{ type: levenshtein, value: hello }",
            "hello you",
            Status::Pass,
        ),
        (
            "{ type: not-levenshtein, value: hello, threshold: 1 }",
            "goodbye",
            Status::Pass,
        ),
    ])
    .await;
}

#[tokio::test]
async fn latency_and_cost_ceilings() {
    // The fake answers in 120 ms for 2,500 nano-USD.
    table(&[
        ("{ type: latency, threshold: 200 }", "x", Status::Pass),
        ("{ type: latency, threshold: 120 }", "x", Status::Pass),
        ("{ type: latency, threshold: 119 }", "x", Status::Fail),
        ("{ type: cost, threshold: 0.0000025 }", "x", Status::Pass),
        ("{ type: cost, threshold: 0.000002499 }", "x", Status::Fail),
    ])
    .await;
    // An unpriced answer cannot be held to a cost: an error, not a pass.
    let mut fake = Fake::answering("x");
    fake.cost = None;
    let c = case("      - { type: cost, threshold: 1 }\n", &fake).await;
    assert_eq!(c.status, Status::Error);
    assert!(c.error.unwrap().contains("cost is not known"));
}

#[tokio::test]
async fn similar_through_embeddings() {
    // The fake embeds letter counts: "act" is "cat" exactly; "dog" shares nothing with it.
    table(&[
        (
            "{ type: similar, value: cat, threshold: 0.99 }",
            "act",
            Status::Pass,
        ),
        (
            "{ type: similar, value: cat, threshold: 0.99 }",
            "dog",
            Status::Fail,
        ),
        (
            "{ type: similar, value: [dog, cat], threshold: 0.99 }",
            "tac",
            Status::Pass,
        ),
        (
            "{ type: not-similar, value: cat, threshold: 0.5 }",
            "dog",
            Status::Pass,
        ),
        (
            "{ type: not-similar, value: cat, threshold: 0.5 }",
            "act",
            Status::Fail,
        ),
    ])
    .await;
    // "cab" vs "cat": two of three letters shared → cosine 2/3, under the default 0.75.
    let c = case(
        "      - { type: similar, value: cat }\n",
        &Fake::answering("cab"),
    )
    .await;
    assert_eq!(c.status, Status::Fail);
    assert!(
        (c.assertions[0].score - 2.0 / 3.0).abs() < 1e-6,
        "{:?}",
        c.assertions
    );
}

#[tokio::test]
async fn llm_rubric_verdicts_parse_strictly() {
    let rubric = "      - { type: llm-rubric, value: \"is polite to {{ name }}\" }\n";
    let with = |verdict: &str| {
        let mut f = Fake::answering("Hello Ada, happy to help");
        f.verdict = verdict.to_string();
        f
    };
    let fake = with(r#"{"reason": "polite", "pass": true, "score": 0.9}"#);
    let c = case(rubric, &fake).await;
    assert_eq!(c.status, Status::Pass);
    assert!((c.score - 0.9).abs() < 1e-12);
    // The judge was asked about the output, with the rubric rendered.
    let calls = fake.calls.lock().unwrap().clone();
    let judge = calls.iter().find(|(r, _)| r == "judge").unwrap();
    assert!(judge.1[1].1.contains("Hello Ada, happy to help"));
    assert!(judge.1[1].1.contains("is polite to Ada"));

    let c = case(
        rubric,
        &with(r#"{"pass": false, "score": 0.2, "reason": "rude"}"#),
    )
    .await;
    assert_eq!(c.status, Status::Fail);
    // A fenced verdict is still one object.
    let c = case(rubric, &with("```json\n{\"pass\": true}\n```")).await;
    assert_eq!(c.status, Status::Pass);
    // A score under the assertion's threshold fails even when the judge says pass.
    let c = case(
        "      - { type: llm-rubric, value: polite, threshold: 0.95 }\n",
        &fake,
    )
    .await;
    assert_eq!(c.status, Status::Fail);
    // Prose, a wrong type, a score out of range, a missing pass: errors, never passes.
    for bad in [
        "Yes, it passes.",
        r#"{"pass": "yes"}"#,
        r#"{"pass": true, "score": 7}"#,
        r#"{"score": 1}"#,
        r#"[true]"#,
        "```json\n{\"pass\": true}",
        r#"{"pass": true} and more"#,
    ] {
        let c = case(rubric, &with(bad)).await;
        assert_eq!(c.status, Status::Error, "{bad}");
        assert!(
            c.error
                .as_deref()
                .unwrap_or_default()
                .contains("not parseable"),
            "{bad}: {:?}",
            c.error
        );
    }
}

#[tokio::test]
async fn weights_and_thresholds() {
    let asserts = "      - { type: contains, value: yes, weight: 3 }\n      - { type: contains, value: no, weight: 1 }\n";
    let fake = Fake::answering("yes");
    let score_of = |t: Option<f64>| {
        let s = suite(asserts, t);
        let fake = &fake;
        async move {
            run(&s, fake, RunOptions::default(), &|_, _, _| {})
                .await
                .cases
                .remove(0)
        }
    };
    let c = score_of(Some(0.7)).await;
    assert_eq!((c.status, c.score), (Status::Pass, 0.75));
    let c = score_of(Some(0.8)).await;
    assert_eq!(c.status, Status::Fail);
    // Without a threshold every weighted assertion must pass.
    let c = score_of(None).await;
    assert_eq!(c.status, Status::Fail);
    // Weight 0: reported, but neither scores nor decides.
    let c = case(
        "      - { type: contains, value: yes }\n      - { type: contains, value: no, weight: 0 }\n",
        &fake,
    )
    .await;
    assert_eq!((c.status, c.score), (Status::Pass, 1.0));
    assert!(!c.assertions[1].pass);
}

#[tokio::test]
async fn a_schema_pattern_past_its_backtracking_limit_is_an_error_not_a_fail() {
    let assert = r#"      - { type: is-json, value: { type: string, pattern: '^(a|a)+(?=b)\1$' } }
"#;
    let output = format!("\"{}!\"", "a".repeat(40));
    let c = case(assert, &Fake::answering(&output)).await;
    assert_eq!(c.status, Status::Error, "{:?}", c.assertions);
    assert!(c.error.unwrap().contains("cannot be checked"));
}
