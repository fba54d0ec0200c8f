//! Suites are checked before anything is sent: every mistake with its path, datasets inlined.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_eval::suite::{fingerprint, resolve};
use tollgate_eval::{Kind, Suite, SuiteError};

fn problems(yaml: &str) -> Vec<String> {
    match Suite::from_yaml(yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(SuiteError { problems }) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn has(problems: &[String], path_and_words: &str) {
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(path_and_words) || p.contains(path_and_words)),
        "no problem like {path_and_words:?} in {problems:#?}"
    );
}

const GOOD: &str = r#"
description: triage
prompts:
  - "Classify: {{ ticket }}"
  - id: chat
    messages:
      - { role: system, content: "You triage tickets for {{ team }}." }
      - { role: user, content: "{{ ticket }}" }
routes: [fast, careful]
pass_rate: 0.8
judge: { route: judge }
params: { temperature: 0, max_tokens: 50, seed: 7 }
defaultTest:
  vars: { team: support }
  assert: [{ type: latency, threshold: 5000 }]
tests:
  - description: billing
    vars: { ticket: "charged twice" }
    assert:
      - { type: icontains, value: billing, weight: 2 }
      - { type: llm-rubric, value: names a category }
  - vars: { ticket: "site down", team: ops }
    threshold: 0.5
"#;

#[test]
fn a_good_suite_is_typed() {
    let s = Suite::from_yaml(GOOD).unwrap();
    assert_eq!(s.routes, ["fast", "careful"]);
    assert_eq!(s.prompts.len(), 2);
    assert_eq!(s.prompts[1].id, "chat");
    assert_eq!(
        s.prompts[1].variables.iter().collect::<Vec<_>>(),
        ["team", "ticket"]
    );
    assert_eq!(s.pass_rate, 0.8);
    assert_eq!(s.params.seed, Some(7));
    // defaultTest's vars under the test's own; its asserts first.
    assert_eq!(s.tests[0].vars["team"], "support");
    assert_eq!(s.tests[1].vars["team"], "ops");
    assert_eq!(s.tests[0].asserts.len(), 3);
    assert_eq!(s.tests[0].asserts[0].kind, Kind::Latency);
    assert_eq!(s.tests[1].asserts.len(), 1);
    assert_eq!(s.tests[1].threshold, Some(0.5));
    assert_eq!(s.case_count(), 2 * 2 * 2);
    assert_eq!(
        s.routes_used().into_iter().collect::<Vec<_>>(),
        ["careful", "fast", "judge"]
    );
}

#[test]
fn unknown_assertion_types_are_named_with_the_known_ones() {
    let p = problems(
        "prompts: [hi]\nroutes: [r]\ntests:\n  - assert:\n      - { type: icontain, value: x }\n      - { type: not-latency, threshold: 5 }\n",
    );
    has(
        &p,
        "tests[0].assert[0].type: unknown assertion type `icontain`",
    );
    has(&p, "icontains");
    has(&p, "tests[0].assert[1].type: `latency` cannot be negated");
}

#[test]
fn bad_schemas_and_regexes_are_refused() {
    let p = problems(
        "prompts: [hi]\nroutes: [r]\ntests:\n  - assert:\n      - { type: is-json, value: { type: objekt } }\n      - { type: contains-json, value: [1] }\n      - { type: regex, value: '(unclosed' }\n",
    );
    has(&p, "tests[0].assert[0].value: not a valid JSON Schema");
    has(
        &p,
        "tests[0].assert[1].value: expected a JSON Schema (a mapping), got a list",
    );
    has(
        &p,
        "tests[0].assert[2].value: not a valid regular expression",
    );
}

#[test]
fn routes_must_exist_for_the_use_case() {
    let doc: serde_json::Value = serde_yaml::from_str(GOOD).unwrap();
    let s = Suite::from_document(&doc).unwrap();
    let known = vec!["fast".to_string(), "judge".to_string()];
    let e = s.check_routes(&doc, &known).unwrap_err();
    let p: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
    assert_eq!(p.len(), 1, "{p:?}");
    has(
        &p,
        "routes[1]: no route `careful` the use case may call (its routes: fast, judge)",
    );
    let e = s
        .check_routes(&doc, &["fast".into(), "careful".into()])
        .unwrap_err();
    has(
        &e.problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        "judge.route: no route `judge`",
    );
    assert!(
        s.check_routes(&doc, &["fast".into(), "careful".into(), "judge".into()])
            .is_ok()
    );
}

#[test]
fn a_missing_variable_is_found_before_anything_is_sent() {
    let p = problems(
        "prompts: [\"Classify {{ ticket }} for {{ team }}\"]\nroutes: [r]\ntests:\n  - description: first\n    vars: { ticket: a }\n  - vars: { ticket: b, team: c }\n    assert: [{ type: contains, value: \"{{ missing }}\" }]\n",
    );
    has(
        &p,
        "tests[0].vars: missing variable `team` (\"first\"), used by prompts[0]",
    );
    has(
        &p,
        "tests[1].assert[0].value: uses variable `missing`, which tests[1] does not define",
    );
    assert_eq!(p.len(), 2, "{p:#?}");
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let p = problems(
        r#"
providers: [openai:gpt-4o]
prompts: []
pass_rate: 90
judge: { route: "" }
params: { temperature: 5, max_tokens: 0, top_k: 3 }
defaultTest: { vars: { a: { nested: 1 } } }
tests:
  - vars: { x: 1 }
    threshold: 2
    assert:
      - { type: latency }
      - { type: cost, threshold: -1 }
      - { type: contains }
      - { type: contains, value: x, threshold: 3 }
      - { type: similar, value: x }
      - { type: llm-rubric, value: polite }
      - { type: icontains, value: x, weight: -1, route: r }
      - { type: equals, value: "{{ unclosed" }
"#,
    );
    for want in [
        "providers: unknown field (Tollgate sends cases to routes: use `routes`)",
        "prompts: required: at least one prompt",
        "routes: required",
        "pass_rate: must be between 0 and 1",
        "params.temperature: must be between 0 and 2",
        "params.max_tokens: must be a whole number from 1 to 4294967295",
        "params.top_k: unknown field",
        "defaultTest.vars.a: a variable is text",
        "tests[0].threshold: a test's threshold is a score between 0 and 1",
        "tests[0].assert[0].threshold: required: the most milliseconds",
        "tests[0].assert[1].threshold: must not be negative",
        "tests[0].assert[2].value: required",
        "tests[0].assert[3].threshold: contains takes no threshold",
        "tests[0].assert[4]: similar needs an embedding route",
        "tests[0].assert[5]: llm-rubric needs a pinned judge route",
        "tests[0].assert[6].weight: must be between 0 and 1000",
        "tests[0].assert[6].route: icontains sends nothing",
        "tests[0].assert[7].value: not a valid template",
    ] {
        has(&p, want);
    }
}

#[test]
fn not_yaml_and_not_a_mapping() {
    has(&problems("prompts: [unclosed"), "not valid YAML");
    has(&problems("- a list"), "expected a mapping, got a list");
}

#[test]
fn datasets_are_inlined_with_promptfoo_columns() {
    let dir = std::env::temp_dir().join(format!("tollgate-eval-ds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cases.csv"),
        "ticket,__expected,__description\n\"charged, twice\",icontains: billing,double charge\nsite down,outage,\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("more.jsonl"),
        "{\"ticket\": \"refund?\", \"__expected\": \"not-contains: outage\"}\n\n{\"ticket\": \"hello\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("suite.yaml"),
        "prompts: [\"Classify: {{ ticket }}\"]\nroutes: [r]\ntests:\n  - vars: { ticket: inline }\n  - file://cases.csv\n  - file://more.jsonl\n",
    )
    .unwrap();
    let doc = resolve(&dir.join("suite.yaml")).unwrap();
    let s = Suite::from_document(&doc).unwrap();
    assert_eq!(s.tests.len(), 5);
    assert_eq!(s.tests[1].vars["ticket"], "charged, twice");
    assert_eq!(s.tests[1].description.as_deref(), Some("double charge"));
    assert_eq!(s.tests[1].asserts[0].kind, Kind::Icontains);
    // A plain __expected is `equals`; a row without a description is named by its row.
    assert_eq!(s.tests[2].asserts[0].kind, Kind::Equals);
    assert_eq!(s.tests[2].description.as_deref(), Some("cases.csv row 3"));
    assert!(s.tests[3].asserts[0].negate);
    assert_eq!(s.tests[4].description.as_deref(), Some("more.jsonl line 3"));
    assert!(s.tests[4].asserts.is_empty());
    // The document is self-contained: its fingerprint is the version's identity.
    assert_eq!(
        fingerprint(&doc),
        fingerprint(&resolve(&dir.join("suite.yaml")).unwrap())
    );

    // A row without a variable the prompt uses is refused with the row named.
    std::fs::write(dir.join("cases.csv"), "ticket,team\na,b\n").unwrap();
    std::fs::write(
        dir.join("suite.yaml"),
        "prompts: [\"{{ ticket }} for {{ team }}\"]\nroutes: [r]\ntests: file://cases.csv\n",
    )
    .unwrap();
    assert!(Suite::from_document(&resolve(&dir.join("suite.yaml")).unwrap()).is_ok());
    std::fs::write(
        dir.join("more.jsonl"),
        "{\"ticket\": \"a\", \"team\": \"b\"}\n{\"ticket\": \"c\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("suite.yaml"),
        "prompts: [\"{{ ticket }} for {{ team }}\"]\nroutes: [r]\ntests: [file://more.jsonl]\n",
    )
    .unwrap();
    let e = Suite::from_document(&resolve(&dir.join("suite.yaml")).unwrap()).unwrap_err();
    let p: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        p,
        [
            "tests[1].vars: missing variable `team` (\"more.jsonl line 2\"), used by prompts[0] (`prompts[0]`)"
        ]
    );

    // Unreadable, unknown-format and broken datasets name the file and the row.
    for (file, body, want) in [
        ("missing.csv", None, "cannot read the dataset `missing.csv`"),
        (
            "cases.txt",
            Some("a\n"),
            "a dataset is a .csv or .jsonl file",
        ),
        (
            "bad.jsonl",
            Some("{\"a\": 1}\n[1]\nnot json\n"),
            "`bad.jsonl` line 2: expected an object",
        ),
        ("ragged.csv", Some("a,b\n1,2\n3\n"), "`ragged.csv` row 3"),
        ("empty.csv", Some("a,b\n"), "`empty.csv` has no rows"),
    ] {
        if let Some(body) = body {
            std::fs::write(dir.join(file), body).unwrap();
        }
        std::fs::write(
            dir.join("suite.yaml"),
            format!("prompts: [hi]\nroutes: [r]\ntests: [file://{file}]\n"),
        )
        .unwrap();
        let e = resolve(&dir.join("suite.yaml")).unwrap_err().to_string();
        assert!(e.contains("tests[0]") && e.contains(want), "{file}: {e}");
    }
    // Datasets stay beside the suite.
    for (reference, want) in [
        (
            "file:///etc/hostname",
            "must be a path inside the suite's folder",
        ),
        (
            "file://../x.csv",
            "must be a path inside the suite's folder",
        ),
        ("file://.", "must be a path inside the suite's folder"),
    ] {
        std::fs::write(
            dir.join("suite.yaml"),
            format!("prompts: [hi]\nroutes: [r]\ntests: ['{reference}']\n"),
        )
        .unwrap();
        let e = resolve(&dir.join("suite.yaml")).unwrap_err().to_string();
        assert!(e.contains(want), "{reference}: {e}");
    }
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("suite.yaml"),
        "prompts: [hi]\nroutes: [r]\ntests: ['file://sub']\n",
    )
    .unwrap();
    assert!(
        resolve(&dir.join("suite.yaml"))
            .unwrap_err()
            .to_string()
            .contains("not a regular file")
    );
    // A dataset reference that was never inlined is refused by the document check too.
    let p = problems("prompts: [hi]\nroutes: [r]\ntests: [file://x.csv]\n");
    has(&p, "tests[0]: the dataset `file://x.csv` is not inlined");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pattern_prompts_are_references() {
    let s = Suite::from_yaml(
        "prompts: [{ id: t, pattern: triage@production }, \"plain {{ x }}\"]\nroutes: [r]\ntests: [{ vars: { x: 1 } }]\n",
    )
    .unwrap();
    assert_eq!(s.prompts[0].pattern.as_deref(), Some("triage@production"));
    assert!(s.prompts[0].messages.is_empty());
    assert_eq!(s.patterns(), ["triage@production"]);
    let p = problems(
        "prompts: [{ pattern: \"triage@\" }, { pattern: triage, raw: hi }]\nroutes: [r]\ntests: [{ vars: {} }]\n",
    );
    has(
        &p,
        "prompts[0].pattern: `triage@` is not a pattern reference",
    );
    has(
        &p,
        "prompts[1]: give a `pattern` or the prompt's own `raw`/`messages`, not both",
    );
}

#[test]
fn hostile_templates_are_refused_or_bounded() {
    // A chain of unary operators used to overflow the parser's stack and abort the server.
    let deep = format!("{{{{ {}t }}}}", "-".repeat(6000));
    let p = problems(&format!(
        "prompts: [hi]\nroutes: [r]\ntests:\n  - vars: {{ t: 1 }}\n    assert: [{{ type: contains, value: '{deep}' }}]\n"
    ));
    has(
        &p,
        "tests[0].assert[0].value: not a valid template: more than 8 operators in a row",
    );
    let long = format!("{{{{ x }}}}{}", "a".repeat(20_000));
    has(
        &problems(&format!(
            "prompts: ['{long}']\nroutes: [r]\ntests: [{{ vars: {{ x: 1 }} }}]\n"
        )),
        "a template may be at most 16384 bytes",
    );
    let chain = format!("{{{{ {}t }}}}", "-".repeat(20));
    has(
        &problems(&format!(
            "prompts: ['{chain}']\nroutes: [r]\ntests: [{{ vars: {{ t: 1 }} }}]\n"
        )),
        "more than 8 operators in a row",
    );
    let nots = format!("{{{{ {}t }}}}", "not ".repeat(20));
    has(
        &problems(&format!(
            "prompts: ['{nots}']\nroutes: [r]\ntests: [{{ vars: {{ t: 1 }} }}]\n"
        )),
        "more than 8 operators in a row",
    );
    let nested = format!("{{{{ {}1{} }}}}", "(".repeat(40), ")".repeat(40));
    has(
        &problems(&format!(
            "prompts: ['{nested}']\nroutes: [r]\ntests: [{{ vars: {{}} }}]\n"
        )),
        "nested more than 32 deep",
    );
    // Ordinary templates with operators still pass.
    assert!(Suite::from_yaml("prompts: ['{{ -x + (y - 1) }} and {% if not z %}no{% endif %}']\nroutes: [r]\ntests: [{ vars: { x: 1, y: 2, z: false } }]\n").is_ok());
    // Work and output are bounded when rendering.
    let vars: std::collections::BTreeMap<String, serde_json::Value> = [(
        "xs".to_string(),
        serde_json::json!((0..300).collect::<Vec<_>>()),
    )]
    .into();
    let loops = tollgate_eval::suite::render(
        "{% for a in xs %}{% for b in xs %}{% for c in xs %}x{% endfor %}{% endfor %}{% endfor %}",
        &vars,
    );
    assert!(loops.is_err(), "{:?}", loops.map(|s| s.len()));
    let wide = tollgate_eval::suite::render("{% for a in xs %}{{ a }}{% endfor %}", &vars).unwrap();
    assert!(wide.len() > 300);
}

#[test]
fn long_operator_chains_do_not_overflow_the_parser() {
    for chain in [
        format!("{{{{ {}x }}}}", "x if y else ".repeat(1300)),
        format!("{{{{ {}x }}}}", "x ** ".repeat(3000)),
        format!("{{{{ {}x }}}}", "x ~ ".repeat(3000)),
        format!(
            "{{{{ {}x }}}}",
            "x|lower|".repeat(1500).trim_end_matches('|').to_string() + "|lower"
        ),
        format!("{{{{ x{} }}}}", ".a".repeat(5000)),
    ] {
        let yaml =
            format!("prompts: ['{chain}']\nroutes: [r]\ntests: [{{ vars: {{ x: 1, y: 1 }} }}]\n");
        // Refused or accepted; never a crash.
        let _ = Suite::from_yaml(&yaml);
    }
}

#[test]
fn a_suite_is_capped_in_cases_and_list_values() {
    let mut yaml = String::from("prompts: [");
    for i in 0..101 {
        yaml.push_str(&format!("\"p{i}\", "));
    }
    yaml.push_str("]\nroutes: [r]\ntests:\n");
    for _ in 0..100 {
        yaml.push_str("  - vars: {}\n");
    }
    has(&problems(&yaml), "the suite makes 10100 cases");
    let values: Vec<String> = (0..33).map(|i| format!("v{i}")).collect();
    has(
        &problems(&format!(
            "prompts: [hi]\nroutes: [r]\ntests: [{{ assert: [{{ type: contains-any, value: [{}] }}] }}]\n",
            values.join(", ")
        )),
        "tests[0].assert[0].value: at most 32 values",
    );
}
