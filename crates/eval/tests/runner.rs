//! The runner: every test × prompt × route, a bound on concurrency, a fixed order, errors never
//! counted as passes, and its reports (matrix, JSON, JUnit XML).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Fake;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use tollgate_eval::report::{junit, matrix};
use tollgate_eval::{RunOptions, Status, Suite, run};

const SUITE: &str = r#"
description: triage
prompts:
  - "Classify: {{ ticket }}"
  - id: polite
    messages:
      - { role: system, content: "Be polite to {{ name }}." }
      - { role: user, content: "{{ ticket }}" }
routes: [fast, careful, broken]
pass_rate: 0.5
judge: { route: judge }
tests:
  - description: billing <&>
    vars: { ticket: charged twice, name: Ada }
    assert: [{ type: icontains, value: billing }]
  - vars: { ticket: site down, name: Bob }
    assert:
      - { type: icontains, value: outage }
      - { type: llm-rubric, value: helpful }
"#;

fn fake() -> Fake {
    let mut f = Fake::answering("category: billing");
    f.per_route
        .insert("careful".into(), "billing or outage \u{1}".into());
    f.failing.push("broken".into());
    f
}

#[tokio::test]
async fn every_case_in_order_with_errors_apart() {
    let suite = Suite::from_yaml(SUITE).unwrap();
    let f = fake();
    let seen = Mutex::new(Vec::new());
    let report = run(
        &suite,
        &f,
        RunOptions { concurrency: 4 },
        &|c, done, total| {
            seen.lock().unwrap().push((c.route.clone(), done, total));
        },
    )
    .await;
    assert_eq!(report.cases.len(), 2 * 2 * 3);
    // Progress was told once per case, counting up to the total.
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 12);
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    assert!(seen.iter().all(|s| s.2 == 12));
    // Fixed order: test, prompt, route.
    let order: Vec<(usize, &str, &str)> = report
        .cases
        .iter()
        .map(|c| (c.test, c.prompt.as_str(), c.route.as_str()))
        .collect();
    assert_eq!(order[0], (0, "prompts[0]", "fast"));
    assert_eq!(order[2], (0, "prompts[0]", "broken"));
    assert_eq!(order[3], (0, "polite", "fast"));
    assert_eq!(order[11], (1, "polite", "broken"));
    // Statuses: fast answers "billing" only; careful both words; broken fails to answer.
    let status: Vec<Status> = report.cases.iter().map(|c| c.status).collect();
    use Status::*;
    assert_eq!(
        status,
        [
            Pass, Pass, Error, Pass, Pass, Error, Fail, Pass, Error, Fail, Pass, Error
        ]
    );
    let broken = &report.cases[2];
    assert!(broken.error.as_deref().unwrap().contains("503"));
    assert_eq!(broken.output, None);
    // The messages sent were rendered per test.
    let calls = f.calls.lock().unwrap().clone();
    assert!(calls.iter().any(|(r, m)| r == "fast"
        && m == &[
            ("system".to_string(), "Be polite to Bob.".to_string()),
            ("user".to_string(), "site down".to_string())
        ]));
    // The judge ran once per case of test 1 that answered (fast and careful, two prompts).
    assert_eq!(calls.iter().filter(|(r, _)| r == "judge").count(), 4);

    let s = &report.summary;
    assert_eq!((s.cases, s.passed, s.failed, s.errors), (12, 6, 2, 4));
    assert_eq!(s.pass_rate, 0.5);
    assert!(s.passed_threshold, "0.5 ≥ 0.5");
    // 8 answers at 2,500 nano-USD; 4 judge calls at 2,500.
    assert_eq!(s.cost_nano_usd, 8 * 2_500);
    assert_eq!(s.scoring_cost_nano_usd, 4 * 2_500);
    let careful = s.routes.iter().find(|r| r.route == "careful").unwrap();
    assert_eq!((careful.cases, careful.passed), (4, 4));
    let broken = s.routes.iter().find(|r| r.route == "broken").unwrap();
    assert_eq!(
        (broken.passed, broken.pass_rate, broken.cost_nano_usd),
        (0, 0.0, 0)
    );
}

#[tokio::test]
async fn the_bound_on_concurrency_holds_and_is_used() {
    let mut yaml = String::from("prompts: [\"{{ n }}\"]\nroutes: [a]\ntests:\n");
    for i in 0..40 {
        yaml.push_str(&format!("  - vars: {{ n: \"{i}\" }}\n"));
    }
    let suite = Suite::from_yaml(&yaml).unwrap();
    for bound in [1, 3, 8] {
        let f = Fake::answering("x");
        let r = run(&suite, &f, RunOptions { concurrency: bound }, &|_, _, _| {}).await;
        assert_eq!(r.cases.len(), 40);
        assert_eq!(
            f.max_in_flight.load(Ordering::SeqCst),
            bound,
            "bound {bound}"
        );
    }
}

#[tokio::test]
async fn the_same_answers_give_the_same_report() {
    let suite = Suite::from_yaml(SUITE).unwrap();
    let a = run(
        &suite,
        &fake(),
        RunOptions { concurrency: 1 },
        &|_, _, _| {},
    )
    .await;
    let b = run(
        &suite,
        &fake(),
        RunOptions { concurrency: 7 },
        &|_, _, _| {},
    )
    .await;
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[tokio::test]
async fn under_the_pass_rate_the_run_fails() {
    let mut suite = Suite::from_yaml(SUITE).unwrap();
    suite.pass_rate = 0.51;
    let r = run(&suite, &fake(), RunOptions::default(), &|_, _, _| {}).await;
    assert!(!r.summary.passed_threshold);
    assert!(matrix(&r).contains("FAILED"));
}

#[tokio::test]
async fn json_matrix_and_junit() {
    let suite = Suite::from_yaml(SUITE).unwrap();
    let r = run(&suite, &fake(), RunOptions::default(), &|_, _, _| {}).await;

    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["summary"]["passed"], 6);
    assert_eq!(json["cases"][0]["status"], "pass");
    assert_eq!(json["cases"][0]["assertions"][0]["type"], "icontains");
    assert_eq!(json["cases"][2]["status"], "error");
    assert_eq!(json["cases"][0]["request_id"], "req_fast");

    let m = matrix(&r);
    let header = m.lines().next().unwrap();
    assert!(header.contains("fast") && header.contains("careful") && header.contains("broken"));
    // Scores: icontains 0 or 1, the judge 0.9, equally weighted.
    let row = m
        .lines()
        .find(|l| l.starts_with("tests[1] · prompts[0]"))
        .unwrap();
    assert!(
        row.contains("FAIL 0.45") && row.contains("PASS 0.95") && row.contains("ERROR"),
        "{row}"
    );
    assert!(m.contains(
        "12 cases: 6 passed, 2 failed, 4 errors — pass rate 50.0 % (needs 50.0 %): PASSED"
    ));
    assert!(m.contains("cost: $0.00002 for the cases + $0.00001 for judging"));

    let xml = junit(&r, "triage");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("12"));
    assert_eq!(root.attribute("failures"), Some("2"));
    assert_eq!(root.attribute("errors"), Some("4"));
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(
        suites
            .iter()
            .map(|s| s.attribute("name").unwrap())
            .collect::<Vec<_>>(),
        ["fast", "careful", "broken"]
    );
    let fast_cases: Vec<_> = suites[0].children().filter(|n| n.is_element()).collect();
    assert_eq!(fast_cases.len(), 4);
    // The description's markup survived as text.
    assert_eq!(
        fast_cases[0].attribute("name"),
        Some("billing <&> [prompts[0]]")
    );
    let failure = fast_cases[2]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure.text().unwrap().contains("icontains"));
    assert_eq!(
        suites[2]
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .filter(|n| n.children().any(|c| c.has_tag_name("error")))
            .count(),
        4
    );
}
