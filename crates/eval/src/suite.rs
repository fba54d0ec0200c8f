//! Suites: the YAML a promptfoo user reads at a glance, checked with the path of every mistake.
//!
//! ```yaml
//! description: Ticket triage
//! prompts:
//!   - "Classify this ticket as billing, outage or other: {{ ticket }}"
//!   - id: with-system
//!     messages:
//!       - { role: system, content: "You triage support tickets." }
//!       - { role: user, content: "{{ ticket }}" }
//! routes: [gpt-4o-mini, claude-haiku]     # the matrix's columns
//! pass_rate: 0.9                          # the run passes when ≥ 90 % of its cases pass
//! judge: { route: judge-pinned }          # for llm-rubric
//! embedding: { route: embed-small }       # for similar
//! params: { temperature: 0, max_tokens: 200, seed: 7 }
//! defaultTest:
//!   assert: [{ type: latency, threshold: 5000 }]
//! tests:
//!   - description: refund
//!     vars: { ticket: "I was charged twice" }
//!     assert:
//!       - { type: icontains, value: billing, weight: 2 }
//!       - { type: not-contains, value: outage }
//!   - file://cases.csv                     # one case per row: columns are vars,
//!                                          # __expected and __description as in promptfoo
//! ```
//!
//! Checking happens in two steps. [`resolve`] reads a suite file and inlines the datasets it names
//! (CSV or JSONL, relative to the suite), so what is stored and versioned is one self-contained
//! document. [`Suite::from_document`] checks a document — every problem, each with its path
//! (`tests[3].assert[1].value`), not only the first — and gives the typed suite the runner uses.
//! Templates are MiniJinja (Jinja syntax, as promptfoo's Nunjucks): a variable a prompt uses that
//! a case does not define is a mistake found here, before anything is sent.

use crate::assertion::{Assertion, Kind};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// One problem in a suite: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where (`tests[3].assert[1].value`; empty for the document itself).
    pub path: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a suite was refused: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SuiteError {
    /// The problems, in document order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the suite has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl SuiteError {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        SuiteError {
            problems: vec![Problem {
                path: path.into(),
                message: message.into(),
            }],
        }
    }
}

/// A message's role in a chat prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `system`.
    System,
    /// `user`.
    User,
    /// `assistant` (a few-shot example).
    Assistant,
}

impl Role {
    /// The OpenAI wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One prompt of the suite: the matrix's rows are its tests × its prompts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prompt {
    /// Its name in reports: the `id` given, else `prompts[i]`.
    pub id: String,
    /// The messages, as templates (a plain string prompt is one user message).
    pub messages: Vec<(Role, String)>,
    /// The variables its templates read, sorted.
    pub variables: BTreeSet<String>,
    /// A pattern reference (`triage@production`) instead of messages: the gateway renders it
    /// with the test's variables, and the ledger keeps the version used.
    pub pattern: Option<String>,
}

/// Request parameters sent with every case.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Params {
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `seed`, so providers that honour it (and the simulator) answer the same twice.
    pub seed: Option<i64>,
}

/// One test: variables, the checks its outputs must pass, and where it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestCase {
    /// Its name in reports.
    pub description: Option<String>,
    /// The variables (the suite's `defaultTest.vars` under its own).
    pub vars: BTreeMap<String, Value>,
    /// `defaultTest.assert` then its own.
    pub asserts: Vec<Assertion>,
    /// The weighted score it must reach to pass; without one, every assertion must pass.
    pub threshold: Option<f64>,
}

/// A checked suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Suite {
    /// What the suite checks.
    pub description: Option<String>,
    /// The prompts.
    pub prompts: Vec<Prompt>,
    /// The routes every case is sent to (the matrix's columns).
    pub routes: Vec<String>,
    /// The tests.
    pub tests: Vec<TestCase>,
    /// The share of cases that must pass for the run to pass (0–1; 1 when not given).
    pub pass_rate: f64,
    /// The pinned route `llm-rubric` asks, unless an assertion names its own.
    pub judge_route: Option<String>,
    /// The route `similar` embeds through, unless an assertion names its own.
    pub embedding_route: Option<String>,
    /// Sent with every case.
    pub params: Params,
}

const TOP_KEYS: &[&str] = &[
    "description",
    "prompts",
    "routes",
    "tests",
    "defaultTest",
    "pass_rate",
    "judge",
    "embedding",
    "params",
];

/// Collects problems while a document is walked.
#[derive(Default)]
pub(crate) struct Checker {
    pub(crate) problems: Vec<Problem>,
}

impl Checker {
    pub(crate) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Flags keys of `map` not in `known`, naming the ones that are.
    pub(crate) fn only_keys(&mut self, path: &str, map: &Map<String, Value>, known: &[&str]) {
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                let hint = match k.as_str() {
                    "providers" => " (Tollgate sends cases to routes: use `routes`)".to_string(),
                    "default_test" | "defaulttest" => " (did you mean `defaultTest`?)".to_string(),
                    "asserts" | "assertions" => " (did you mean `assert`?)".to_string(),
                    _ => String::new(),
                };
                self.add(
                    &join(path, k),
                    format!("unknown field{hint}; expected one of: {}", known.join(", ")),
                );
            }
        }
    }

    pub(crate) fn string(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.add(path, format!("expected a string, got {}", kind_of(other)));
                None
            }
        }
    }

    pub(crate) fn number(&mut self, path: &str, v: &Value) -> Option<f64> {
        match v.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.add(path, format!("expected a number, got {}", kind_of(v)));
                None
            }
        }
    }

    pub(crate) fn object<'v>(
        &mut self,
        path: &str,
        v: &'v Value,
    ) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.add(path, format!("expected a mapping, got {}", kind_of(other)));
                None
            }
        }
    }
}

/// `a.b`, or `b` when `a` is the document.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// How a value's type is named in messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// How much work one template rendering may do (MiniJinja's fuel: roughly one unit per
/// instruction). Templates are written by people, rendered on the server — a suite's for every
/// case, a pattern's on the request path — so a loop cannot run away with a core.
pub const TEMPLATE_FUEL: u64 = 50_000;

/// The template environment every suite and pattern renders with: Jinja syntax, a variable that
/// is not defined is an error rather than an empty string, and a bounded amount of work.
pub(crate) fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

/// The largest dataset file read, in bytes.
pub const MAX_DATASET_BYTES: u64 = 50_000_000;
/// The most cases (tests × prompts × routes) a suite may make.
pub const MAX_CASES: usize = 10_000;
/// The most values a list assertion (`contains-any`, `similar`, …) may hold.
pub const MAX_LIST_VALUES: usize = 32;

/// The longest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// The most text one rendering may produce, in bytes (a template that would write more fails).
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;

/// The most tokens one `{{ … }}` or `{% … %}` tag may hold.
pub const MAX_TAG_TOKENS: usize = 64;

/// Refuses templates whose shape could exhaust the parser's stack before MiniJinja sees them: too
/// long, a tag of more than [`MAX_TAG_TOKENS`] tokens (operator chains such as `a ** b ** …` or
/// `x if y else …` are parsed recursively), brackets nested more than 32 deep, or more than 8
/// unary operators (`-`, `+`, `~`, `!`, `not`) in a row. (A few kilobytes of `{{ ------…x }}`
/// overflowed a worker's stack and took the whole server down.)
pub(crate) fn template_shape(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "a template may be at most {MAX_TEMPLATE_BYTES} bytes, this one is {}",
            text.len()
        ));
    }
    let b = text.as_bytes();
    let (mut i, mut in_tag) = (0usize, false);
    let (mut depth, mut unary, mut tokens) = (0usize, 0usize, 0usize);
    while i < b.len() {
        let two = &b[i..b.len().min(i + 2)];
        if !in_tag {
            if two == b"{{" || two == b"{%" {
                (in_tag, depth, unary, tokens) = (true, 0, 0, 0);
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        if (two == b"}}" || two == b"%}") && depth == 0 {
            in_tag = false;
            i += 2;
            continue;
        }
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        tokens += 1;
        if tokens > MAX_TAG_TOKENS {
            return Err(format!(
                "a tag may hold at most {MAX_TAG_TOKENS} tokens; split the expression"
            ));
        }
        if c == b'"' || c == b'\'' {
            // A string literal is one token.
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            unary = 0;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if &b[start..i] == b"not" {
                unary += 1;
            } else {
                unary = 0;
            }
        } else {
            match c {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    unary = 0;
                    if depth > 32 {
                        return Err("brackets are nested more than 32 deep".into());
                    }
                }
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    unary = 0;
                }
                b'-' | b'+' | b'~' | b'!' => unary += 1,
                _ => unary = 0,
            }
            i += 1;
        }
        if unary > 8 {
            return Err("more than 8 operators in a row".into());
        }
    }
    Ok(())
}

/// A writer that refuses to grow past [`MAX_RENDERED_BYTES`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED_BYTES {
            return Err(std::io::Error::other("too much output"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `template` with `ctx` in `env`, its output bounded by [`MAX_RENDERED_BYTES`].
pub(crate) fn render_bounded(
    env: &minijinja::Environment<'_>,
    template: &str,
    ctx: minijinja::Value,
) -> Result<String, String> {
    template_shape(template)?;
    let t = env
        .template_from_str(template)
        .map_err(|e| template_error(&e))?;
    let mut out = Capped(Vec::new());
    match t.render_captured_to(ctx, &mut out) {
        Ok(_) => String::from_utf8(out.0).map_err(|_| "the output is not UTF-8".to_string()),
        Err(e) if e.kind() == minijinja::ErrorKind::WriteFailure => Err(format!(
            "the output would be longer than {MAX_RENDERED_BYTES} bytes"
        )),
        Err(e) => Err(template_error(&e)),
    }
}

/// The variables `template` reads; a syntax error is a problem at `path`.
pub(crate) fn variables_of(
    env: &minijinja::Environment<'_>,
    c: &mut Checker,
    path: &str,
    template: &str,
) -> BTreeSet<String> {
    if let Err(e) = template_shape(template) {
        c.add(path, format!("not a valid template: {e}"));
        return BTreeSet::new();
    }
    match env.template_from_str(template) {
        Ok(t) => t.undeclared_variables(false).into_iter().collect(),
        Err(e) => {
            c.add(
                path,
                format!("not a valid template: {}", template_error(&e)),
            );
            BTreeSet::new()
        }
    }
}

/// A template error's message without MiniJinja's source dump.
pub(crate) fn template_error(e: &minijinja::Error) -> String {
    let mut s = e.kind().to_string();
    if let Some(d) = e.detail() {
        s.push_str(": ");
        s.push_str(d);
    }
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
}

/// Renders `template` with `vars` (strict: an undefined variable is an error; bounded work and
/// output).
pub fn render(template: &str, vars: &BTreeMap<String, Value>) -> Result<String, String> {
    render_bounded(
        &environment(),
        template,
        minijinja::Value::from_serialize(vars),
    )
}

impl Suite {
    /// Parses and checks a suite written in YAML (or JSON) with its datasets already inlined.
    pub fn from_yaml(text: &str) -> Result<Suite, SuiteError> {
        let doc: Value = serde_yaml::from_str(text)
            .map_err(|e| SuiteError::one("", format!("not valid YAML: {e}")))?;
        Suite::from_document(&doc)
    }

    /// Checks a suite document (datasets inlined; see [`resolve`]): every problem with its path.
    pub fn from_document(doc: &Value) -> Result<Suite, SuiteError> {
        let mut c = Checker::default();
        let env = environment();
        let Some(top) = c.object("", doc) else {
            return Err(SuiteError {
                problems: c.problems,
            });
        };
        c.only_keys("", top, TOP_KEYS);
        let description = top
            .get("description")
            .and_then(|v| c.string("description", v));

        // prompts
        let mut prompts = Vec::new();
        match top.get("prompts") {
            None => c.add("prompts", "required: at least one prompt"),
            Some(Value::Array(list)) if list.is_empty() => {
                c.add("prompts", "required: at least one prompt")
            }
            Some(Value::Array(list)) => {
                for (i, p) in list.iter().enumerate() {
                    if let Some(p) = prompt(&mut c, &env, &format!("prompts[{i}]"), i, p) {
                        prompts.push(p);
                    }
                }
                let mut seen = BTreeSet::new();
                for (i, p) in prompts.iter().enumerate() {
                    if !seen.insert(p.id.clone()) {
                        c.add(
                            &format!("prompts[{i}].id"),
                            format!("`{}` names two prompts", p.id),
                        );
                    }
                }
            }
            Some(other) => c.add(
                "prompts",
                format!("expected a list of prompts, got {}", kind_of(other)),
            ),
        }

        // routes
        let mut routes = Vec::new();
        match top.get("routes") {
            None => c.add("routes", "required: the routes to send every case to"),
            Some(Value::String(s)) => routes.push(s.clone()),
            Some(Value::Array(list)) if list.is_empty() => {
                c.add("routes", "required: at least one route")
            }
            Some(Value::Array(list)) => {
                for (i, r) in list.iter().enumerate() {
                    let path = format!("routes[{i}]");
                    if let Some(r) = c.string(&path, r) {
                        if r.trim().is_empty() {
                            c.add(&path, "a route name must not be empty");
                        } else if routes.contains(&r) {
                            c.add(&path, format!("`{r}` is listed twice"));
                        } else {
                            routes.push(r);
                        }
                    }
                }
            }
            Some(other) => c.add(
                "routes",
                format!("expected a list of route names, got {}", kind_of(other)),
            ),
        }

        let pass_rate = match top.get("pass_rate") {
            None => 1.0,
            Some(v) => match c.number("pass_rate", v) {
                Some(n) if (0.0..=1.0).contains(&n) => n,
                Some(n) => {
                    c.add(
                        "pass_rate",
                        format!("must be between 0 and 1 (a share), got {n}"),
                    );
                    1.0
                }
                None => 1.0,
            },
        };
        let judge_route = top.get("judge").and_then(|v| route_ref(&mut c, "judge", v));
        let embedding_route = top
            .get("embedding")
            .and_then(|v| route_ref(&mut c, "embedding", v));
        let params = top
            .get("params")
            .map(|v| params(&mut c, v))
            .unwrap_or_default();

        // defaultTest
        let mut default = RawTest::default();
        if let Some(d) = top.get("defaultTest") {
            default = test(&mut c, &env, "defaultTest", d, true);
        }

        // tests
        let mut tests = Vec::new();
        match top.get("tests") {
            None => c.add("tests", "required: at least one test"),
            Some(Value::Array(list)) if list.is_empty() => {
                c.add("tests", "required: at least one test")
            }
            Some(Value::Array(list)) => {
                for (i, t) in list.iter().enumerate() {
                    let path = format!("tests[{i}]");
                    if let Value::String(s) = t
                        && s.starts_with("file://")
                    {
                        c.add(
                            &path,
                            format!(
                                "the dataset `{s}` is not inlined: check the suite from its file \
                                 (`tollgate eval run FILE` reads datasets beside it)"
                            ),
                        );
                        continue;
                    }
                    let raw = test(&mut c, &env, &path, t, false);
                    tests.push((path, raw));
                }
            }
            Some(Value::String(s)) if s.starts_with("file://") => c.add(
                "tests",
                format!("the dataset `{s}` is not inlined: check the suite from its file"),
            ),
            Some(other) => c.add(
                "tests",
                format!("expected a list of tests, got {}", kind_of(other)),
            ),
        }

        // Each test's variables against each prompt's; the routes assertions need.
        let mut merged = Vec::new();
        for (path, raw) in tests {
            let mut vars = default.vars.clone();
            vars.extend(raw.vars.clone());
            for (pi, p) in prompts.iter().enumerate() {
                for v in &p.variables {
                    if !vars.contains_key(v) {
                        let from = raw
                            .description
                            .as_deref()
                            .map(|d| format!(" (\"{d}\")"))
                            .unwrap_or_default();
                        c.add(
                            &format!("{path}.vars"),
                            format!(
                                "missing variable `{v}`{from}, used by prompts[{pi}] (`{}`)",
                                p.id
                            ),
                        );
                    }
                }
            }
            let mut asserts = default.asserts.clone();
            asserts.extend(raw.asserts.iter().cloned());
            for (apath, a) in default
                .assert_paths
                .iter()
                .chain(raw.assert_paths.iter())
                .zip(&asserts)
            {
                for v in a.variables(&env) {
                    if !vars.contains_key(&v) {
                        c.add(
                            &format!("{apath}.value"),
                            format!("uses variable `{v}`, which {path} does not define"),
                        );
                    }
                }
                match a.kind {
                    Kind::LlmRubric if a.route.is_none() && judge_route.is_none() => c.add(
                        apath,
                        "llm-rubric needs a pinned judge route: set `judge: { route: NAME }` \
                         on the suite or `route` on the assertion",
                    ),
                    Kind::Similar if a.route.is_none() && embedding_route.is_none() => c.add(
                        apath,
                        "similar needs an embedding route: set `embedding: { route: NAME }` on \
                         the suite or `route` on the assertion",
                    ),
                    _ => {}
                }
            }
            merged.push(TestCase {
                description: raw.description,
                vars,
                asserts,
                threshold: raw.threshold.or(default.threshold),
            });
        }

        let cases = merged.len() * prompts.len() * routes.len();
        if cases > MAX_CASES {
            c.add(
                "",
                format!(
                    "the suite makes {cases} cases (tests × prompts × routes); a run may send at most {MAX_CASES}"
                ),
            );
        }
        if c.problems.is_empty() {
            Ok(Suite {
                description,
                prompts,
                routes,
                tests: merged,
                pass_rate,
                judge_route,
                embedding_route,
                params,
            })
        } else {
            Err(SuiteError {
                problems: c.problems,
            })
        }
    }

    /// Every route the suite sends to: its routes, then the judge's and the embeddings' routes.
    pub fn routes_used(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.routes.iter().cloned().collect();
        all.extend(self.judge_route.iter().cloned());
        all.extend(self.embedding_route.iter().cloned());
        for t in &self.tests {
            for a in &t.asserts {
                all.extend(a.route.iter().cloned());
            }
        }
        all
    }

    /// Problems for every route the suite uses that `known` does not have (`known` lists the
    /// routes the use case may call), each at the first place it is named.
    pub fn check_routes(&self, doc: &Value, known: &[String]) -> Result<(), SuiteError> {
        let mut problems = Vec::new();
        for r in self.routes_used() {
            if !known.contains(&r) {
                problems.push(Problem {
                    path: where_named(doc, &r),
                    message: format!(
                        "no route `{r}` the use case may call (its routes: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SuiteError { problems })
        }
    }

    /// The pattern references its prompts use.
    pub fn patterns(&self) -> Vec<&str> {
        self.prompts
            .iter()
            .filter_map(|p| p.pattern.as_deref())
            .collect()
    }

    /// How many cases a run sends (tests × prompts × routes).
    pub fn case_count(&self) -> usize {
        self.tests.len() * self.prompts.len() * self.routes.len()
    }
}

/// The path where route `r` is first named in `doc`.
fn where_named(doc: &Value, r: &str) -> String {
    fn walk(v: &Value, path: &str, r: &str) -> Option<String> {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = join(path, k);
                    if (k == "route" || path.ends_with("routes")) && x.as_str() == Some(r) {
                        return Some(p);
                    }
                    if let Some(found) = walk(x, &p, r) {
                        return Some(found);
                    }
                }
                None
            }
            Value::Array(list) => list.iter().enumerate().find_map(|(i, x)| {
                let p = format!("{path}[{i}]");
                if path.ends_with("routes") && x.as_str() == Some(r) {
                    Some(p)
                } else {
                    walk(x, &p, r)
                }
            }),
            _ => None,
        }
    }
    walk(doc, "", r).unwrap_or_else(|| "routes".to_string())
}

fn route_ref(c: &mut Checker, path: &str, v: &Value) -> Option<String> {
    let m = c.object(path, v)?;
    c.only_keys(path, m, &["route"]);
    match m.get("route") {
        None => {
            c.add(&join(path, "route"), "required: the route's name");
            None
        }
        Some(r) => c
            .string(&join(path, "route"), r)
            .filter(|r| !r.trim().is_empty()),
    }
}

fn params(c: &mut Checker, v: &Value) -> Params {
    let mut out = Params::default();
    let Some(m) = c.object("params", v) else {
        return out;
    };
    c.only_keys("params", m, &["temperature", "max_tokens", "seed"]);
    if let Some(t) = m.get("temperature") {
        match c.number("params.temperature", t) {
            Some(n) if (0.0..=2.0).contains(&n) => out.temperature = Some(n),
            Some(n) => c.add(
                "params.temperature",
                format!("must be between 0 and 2, got {n}"),
            ),
            None => {}
        }
    }
    if let Some(t) = m.get("max_tokens") {
        match t.as_u64() {
            Some(n) if n > 0 && n <= u64::from(u32::MAX) => out.max_tokens = Some(n),
            _ => c.add(
                "params.max_tokens",
                "must be a whole number from 1 to 4294967295",
            ),
        }
    }
    if let Some(t) = m.get("seed") {
        match t.as_i64() {
            Some(n) => out.seed = Some(n),
            None => c.add("params.seed", "must be a whole number"),
        }
    }
    out
}

fn prompt(
    c: &mut Checker,
    env: &minijinja::Environment<'_>,
    path: &str,
    index: usize,
    v: &Value,
) -> Option<Prompt> {
    let default_id = format!("prompts[{index}]");
    match v {
        Value::String(s) => {
            if s.trim().is_empty() {
                c.add(path, "a prompt must not be empty");
                return None;
            }
            let variables = variables_of(env, c, path, s);
            Some(Prompt {
                id: default_id,
                messages: vec![(Role::User, s.clone())],
                variables,
                pattern: None,
            })
        }
        Value::Object(m) => {
            c.only_keys(path, m, &["id", "raw", "messages", "pattern"]);
            let id = match m.get("id") {
                Some(v) => c.string(&join(path, "id"), v).unwrap_or(default_id),
                None => default_id,
            };
            if let Some(p) = m.get("pattern") {
                let pp = join(path, "pattern");
                if m.contains_key("raw") || m.contains_key("messages") {
                    c.add(
                        path,
                        "give a `pattern` or the prompt's own `raw`/`messages`, not both",
                    );
                    return None;
                }
                let reference = c.string(&pp, p)?;
                if let Err(e) = crate::pattern::parse_reference(&reference) {
                    c.add(&pp, e);
                    return None;
                }
                return Some(Prompt {
                    id,
                    messages: Vec::new(),
                    variables: BTreeSet::new(),
                    pattern: Some(reference),
                });
            }
            let mut messages = Vec::new();
            let mut variables = BTreeSet::new();
            match (m.get("raw"), m.get("messages")) {
                (Some(_), Some(_)) => {
                    c.add(
                        path,
                        "give either `raw` (one user message) or `messages`, not both",
                    );
                    return None;
                }
                (None, None) => {
                    c.add(
                        path,
                        "required: `raw` (one user message), `messages`, or a `pattern`",
                    );
                    return None;
                }
                (Some(raw), None) => {
                    let p = join(path, "raw");
                    let s = c.string(&p, raw)?;
                    variables = variables_of(env, c, &p, &s);
                    messages.push((Role::User, s));
                }
                (None, Some(Value::Array(list))) if !list.is_empty() => {
                    for (i, msg) in list.iter().enumerate() {
                        let p = format!("{path}.messages[{i}]");
                        let Some(mm) = c.object(&p, msg) else {
                            continue;
                        };
                        c.only_keys(&p, mm, &["role", "content"]);
                        let role = match mm.get("role").and_then(Value::as_str) {
                            Some("system") => Some(Role::System),
                            Some("user") => Some(Role::User),
                            Some("assistant") => Some(Role::Assistant),
                            _ => {
                                c.add(
                                    &join(&p, "role"),
                                    "required: one of system, user, assistant",
                                );
                                None
                            }
                        };
                        let content = match mm.get("content") {
                            Some(v) => c.string(&join(&p, "content"), v),
                            None => {
                                c.add(&join(&p, "content"), "required: the message's text");
                                None
                            }
                        };
                        if let (Some(role), Some(content)) = (role, content) {
                            variables.extend(variables_of(env, c, &join(&p, "content"), &content));
                            messages.push((role, content));
                        }
                    }
                    if !messages.iter().any(|(r, _)| *r == Role::User) {
                        c.add(&join(path, "messages"), "needs at least one user message");
                    }
                }
                (None, Some(_)) => {
                    c.add(
                        &join(path, "messages"),
                        "expected a non-empty list of {role, content}",
                    );
                    return None;
                }
            }
            Some(Prompt {
                id,
                messages,
                variables,
                pattern: None,
            })
        }
        other => {
            c.add(
                path,
                format!(
                    "expected a prompt (a string, or a mapping with `raw` or `messages`), got {}",
                    kind_of(other)
                ),
            );
            None
        }
    }
}

#[derive(Default)]
struct RawTest {
    description: Option<String>,
    vars: BTreeMap<String, Value>,
    asserts: Vec<Assertion>,
    assert_paths: Vec<String>,
    threshold: Option<f64>,
}

fn test(
    c: &mut Checker,
    env: &minijinja::Environment<'_>,
    path: &str,
    v: &Value,
    is_default: bool,
) -> RawTest {
    let mut out = RawTest::default();
    let Some(m) = c.object(path, v) else {
        return out;
    };
    if is_default {
        c.only_keys(path, m, &["vars", "assert", "threshold"]);
    } else {
        c.only_keys(path, m, &["description", "vars", "assert", "threshold"]);
    }
    if let Some(d) = m.get("description") {
        out.description = c.string(&join(path, "description"), d);
    }
    if let Some(vars) = m.get("vars") {
        let p = join(path, "vars");
        if let Some(vm) = c.object(&p, vars) {
            for (k, v) in vm {
                match v {
                    Value::Object(_) | Value::Null => c.add(
                        &join(&p, k),
                        format!(
                            "a variable is text, a number, a boolean or a list, got {}",
                            kind_of(v)
                        ),
                    ),
                    _ => {
                        out.vars.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    if let Some(t) = m.get("threshold") {
        let p = join(path, "threshold");
        match c.number(&p, t) {
            Some(n) if (0.0..=1.0).contains(&n) => out.threshold = Some(n),
            Some(n) => c.add(
                &p,
                format!("a test's threshold is a score between 0 and 1, got {n}"),
            ),
            None => {}
        }
    }
    match m.get("assert") {
        None => {}
        Some(Value::Array(list)) => {
            for (i, a) in list.iter().enumerate() {
                let p = format!("{path}.assert[{i}]");
                if let Some(a) = Assertion::check(c, env, &p, a) {
                    out.asserts.push(a);
                    out.assert_paths.push(p);
                }
            }
        }
        Some(other) => c.add(
            &join(path, "assert"),
            format!("expected a list of assertions, got {}", kind_of(other)),
        ),
    }
    out
}

/// Why a suite file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The suite or a dataset could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// What was read is not a suite.
    #[error(transparent)]
    Suite(#[from] SuiteError),
}

/// Reads the suite at `file` and inlines the datasets its `tests` name (`file://cases.csv`,
/// `file://cases.jsonl`, relative to the suite's directory): each row becomes a test whose vars are
/// the row's columns, with promptfoo's `__expected` (an assertion: `icontains: refund`, or a plain
/// value for `equals`) and `__description`. The result is the self-contained document that is
/// checked, stored and versioned.
pub fn resolve(file: &Path) -> Result<Value, ResolveError> {
    let text = std::fs::read_to_string(file).map_err(|e| ResolveError::Read {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    let mut doc: Value = serde_yaml::from_str(&text)
        .map_err(|e| ResolveError::Suite(SuiteError::one("", format!("not valid YAML: {e}"))))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let Some(top) = doc.as_object_mut() else {
        return Ok(doc);
    };
    let tests = match top.remove("tests") {
        Some(Value::String(s)) if s.starts_with("file://") => vec![Value::String(s)],
        Some(Value::Array(list)) => list,
        Some(other) => {
            top.insert("tests".into(), other);
            return Ok(doc);
        }
        None => return Ok(doc),
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, t) in tests.into_iter().enumerate() {
        match t {
            Value::String(s) if s.starts_with("file://") => {
                let rel = &s["file://".len()..];
                // A dataset lives beside the suite: no absolute path, no `..`, a regular file of
                // at most 50 MB (a suite is uploaded with its datasets inlined).
                let path = std::path::Path::new(rel);
                let outside = path.is_absolute()
                    || path
                        .components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_)));
                if outside {
                    problems.push(Problem {
                        path: format!("tests[{i}]"),
                        message: format!(
                            "the dataset `{rel}` must be a path inside the suite's folder (no absolute path, no `..`)"
                        ),
                    });
                    continue;
                }
                let full = base.join(path);
                match std::fs::metadata(&full) {
                    Ok(m) if !m.is_file() => {
                        problems.push(Problem {
                            path: format!("tests[{i}]"),
                            message: format!("the dataset `{rel}` is not a regular file"),
                        });
                        continue;
                    }
                    Ok(m) if m.len() > MAX_DATASET_BYTES => {
                        problems.push(Problem {
                            path: format!("tests[{i}]"),
                            message: format!(
                                "the dataset `{rel}` is larger than {} MB",
                                MAX_DATASET_BYTES / 1_000_000
                            ),
                        });
                        continue;
                    }
                    _ => {}
                }
                match read_dataset(&full, rel) {
                    Ok(rows) => out.extend(rows),
                    Err(p) => problems.extend(p.into_iter().map(|message| Problem {
                        path: format!("tests[{i}]"),
                        message,
                    })),
                }
            }
            other => out.push(other),
        }
    }
    if !problems.is_empty() {
        return Err(SuiteError { problems }.into());
    }
    top.insert("tests".into(), Value::Array(out));
    Ok(doc)
}

/// The rows of a CSV or JSONL dataset as tests; problems name the row.
fn read_dataset(path: &Path, name: &str) -> Result<Vec<Value>, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read the dataset `{name}`: {e}")])?;
    let lower = name.to_ascii_lowercase();
    let mut rows: Vec<(usize, Map<String, Value>)> = Vec::new();
    let mut problems = Vec::new();
    if lower.ends_with(".csv") {
        let mut r = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(text.as_bytes());
        let headers = match r.headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(vec![format!("`{name}`: {e}")]),
        };
        for (i, rec) in r.records().enumerate() {
            // Row numbers as a spreadsheet shows them: the header is row 1.
            let row = i + 2;
            match rec {
                Ok(rec) => {
                    let mut m = Map::new();
                    for (h, v) in headers.iter().zip(rec.iter()) {
                        m.insert(h.trim().to_string(), Value::String(v.to_string()));
                    }
                    rows.push((row, m));
                }
                Err(e) => problems.push(format!("`{name}` row {row}: {e}")),
            }
        }
    } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(m)) => rows.push((i + 1, m)),
                Ok(other) => problems.push(format!(
                    "`{name}` line {}: expected an object of variables, got {}",
                    i + 1,
                    kind_of(&other)
                )),
                Err(e) => problems.push(format!("`{name}` line {}: not JSON: {e}", i + 1)),
            }
        }
    } else {
        return Err(vec![format!(
            "`{name}`: a dataset is a .csv or .jsonl file"
        )]);
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push(format!("`{name}` has no rows"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let unit = if lower.ends_with(".csv") {
        "row"
    } else {
        "line"
    };
    Ok(rows
        .into_iter()
        .map(|(row, mut m)| {
            let mut test = Map::new();
            let description = match m.remove("__description") {
                Some(Value::String(d)) if !d.is_empty() => d,
                _ => format!("{name} {unit} {row}"),
            };
            test.insert("description".into(), Value::String(description));
            if let Some(e) = m.remove("__expected") {
                let asserts = match e {
                    Value::String(s) if s.is_empty() => Vec::new(),
                    Value::String(s) => vec![expected(&s)],
                    other => vec![serde_json::json!({"type": "equals", "value": other})],
                };
                if !asserts.is_empty() {
                    test.insert("assert".into(), Value::Array(asserts));
                }
            }
            test.insert("vars".into(), Value::Object(m));
            Value::Object(test)
        })
        .collect())
}

/// promptfoo's `__expected` cell: `type: value` for a known assertion type, else a value that
/// must be equal.
fn expected(s: &str) -> Value {
    if let Some((kind, value)) = s.split_once(':') {
        let kind = kind.trim();
        if Kind::parse(kind).is_some() {
            let value = value.trim();
            return if value.is_empty() {
                serde_json::json!({ "type": kind })
            } else {
                serde_json::json!({ "type": kind, "value": value })
            };
        }
    }
    serde_json::json!({ "type": "equals", "value": s })
}

/// The version identity of a checked document: SHA-256 of its canonical JSON (keys sorted).
pub fn fingerprint(doc: &Value) -> String {
    use sha2::Digest;
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let keys: BTreeMap<&String, &Value> = m.iter().collect();
                out.push('{');
                for (i, (k, v)) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(v, out);
                }
                out.push('}');
            }
            Value::Array(list) => {
                out.push('[');
                for (i, x) in list.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    canonical(doc, &mut s);
    let digest = sha2::Sha256::digest(s.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
