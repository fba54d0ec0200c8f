//! Assertions: what a case's output must satisfy, each with a weight.
//!
//! The deterministic ones (`equals`, the `contains` family, `starts-with`, `regex`, `is-json`,
//! `contains-json` with an optional JSON Schema, `levenshtein`) and the ceilings (`latency`,
//! `cost`) are judged here from the output alone; `similar` embeds the output and the expected
//! text through the gateway, and `llm-rubric` asks a pinned judge route for a verdict that must
//! parse strictly — an answer that is not the verdict asked for is an error, never a pass.
//! Every type but the ceilings and `llm-rubric` can be negated with `not-` (`not-icontains`).
//! Values are templates: `{{ var }}` reads the case's variables.

use crate::suite::{Checker, Role, join, kind_of, render, variables_of};
use crate::text;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// An assertion type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The output is the value (JSON-equal when the value is a mapping or a list).
    Equals,
    /// The output contains the value.
    Contains,
    /// … ignoring case.
    Icontains,
    /// … one of the values.
    ContainsAny,
    /// … every value.
    ContainsAll,
    /// … one of the values, ignoring case.
    IcontainsAny,
    /// … every value, ignoring case.
    IcontainsAll,
    /// The output starts with the value.
    StartsWith,
    /// The output matches the regular expression.
    Regex,
    /// The whole output is JSON (valid against the schema, if one is given).
    IsJson,
    /// The output contains JSON (valid against the schema, if one is given).
    ContainsJson,
    /// The output is within `threshold` edits (default 5) of the value.
    Levenshtein,
    /// The answer came within `threshold` milliseconds.
    Latency,
    /// The answer cost at most `threshold` US dollars.
    Cost,
    /// The output's embedding is within cosine `threshold` (default 0.75) of the value's.
    Similar,
    /// A pinned judge route grades the output against the rubric.
    LlmRubric,
}

const KINDS: &[(&str, Kind)] = &[
    ("equals", Kind::Equals),
    ("contains", Kind::Contains),
    ("icontains", Kind::Icontains),
    ("contains-any", Kind::ContainsAny),
    ("contains-all", Kind::ContainsAll),
    ("icontains-any", Kind::IcontainsAny),
    ("icontains-all", Kind::IcontainsAll),
    ("starts-with", Kind::StartsWith),
    ("regex", Kind::Regex),
    ("is-json", Kind::IsJson),
    ("contains-json", Kind::ContainsJson),
    ("levenshtein", Kind::Levenshtein),
    ("latency", Kind::Latency),
    ("cost", Kind::Cost),
    ("similar", Kind::Similar),
    ("llm-rubric", Kind::LlmRubric),
];

impl Kind {
    /// `name` (optionally `not-` prefixed) as a type and whether it is negated.
    pub fn parse(name: &str) -> Option<(Kind, bool)> {
        let (negate, base) = match name.strip_prefix("not-") {
            Some(b) => (true, b),
            None => (false, name),
        };
        let kind = KINDS.iter().find(|(n, _)| *n == base).map(|(_, k)| *k)?;
        if negate && !kind.negatable() {
            return None;
        }
        Some((kind, negate))
    }

    /// The type's name in suites.
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    fn negatable(self) -> bool {
        !matches!(self, Kind::Latency | Kind::Cost | Kind::LlmRubric)
    }

    fn is_list(self) -> bool {
        matches!(
            self,
            Kind::ContainsAny | Kind::ContainsAll | Kind::IcontainsAny | Kind::IcontainsAll
        )
    }
}

/// What an assertion compares with.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Expect {
    /// Nothing (`is-json` without a schema, the ceilings).
    Nothing,
    /// A text template.
    Text(String),
    /// Several text templates (`-any`, `-all`, `similar` with a list).
    List(Vec<String>),
    /// A JSON value `equals` compares with after parsing the output.
    Json(Value),
}

/// One checked assertion.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Assertion {
    /// The type.
    pub kind: Kind,
    /// `not-`: passes when the check fails.
    pub negate: bool,
    /// The value.
    pub expect: Expect,
    /// A JSON Schema (`is-json`, `contains-json`).
    pub schema: Option<Value>,
    /// The type's threshold (edits, cosine, milliseconds, dollars, judge score).
    pub threshold: Option<f64>,
    /// Its share of the test's score (0: reported, but neither scores nor decides).
    pub weight: f64,
    /// The route `similar` or `llm-rubric` uses instead of the suite's.
    pub route: Option<String>,
    /// A name to report it under.
    pub metric: Option<String>,
}

/// The result of one assertion on one output.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// Passed (after negation).
    pub pass: bool,
    /// 0–1 (a similarity or the judge's score where there is one, else 1 or 0).
    pub score: f64,
    /// Why, in words.
    pub reason: String,
}

/// What an assertion looks at besides the output.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The output text.
    pub output: &'a str,
    /// How long the answer took.
    pub latency_ms: u64,
    /// What it cost in nano-USD, when the deployment is priced.
    pub cost_nanos: Option<u64>,
}

/// The calls `similar` and `llm-rubric` make through the gateway.
pub trait Services: Sync {
    /// The embedding of `text` through `route`.
    fn embed(
        &self,
        route: &str,
        text: &str,
    ) -> impl Future<Output = Result<Vec<f32>, String>> + Send;
    /// The answer of `route` to `messages` (temperature 0): the judge's verdict.
    fn judge(
        &self,
        route: &str,
        messages: Vec<(Role, String)>,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

impl Assertion {
    /// Checks one assertion of a suite document.
    pub(crate) fn check(
        c: &mut Checker,
        env: &minijinja::Environment<'_>,
        path: &str,
        v: &Value,
    ) -> Option<Assertion> {
        let m = c.object(path, v)?;
        c.only_keys(
            path,
            m,
            &["type", "value", "threshold", "weight", "route", "metric"],
        );
        let tpath = join(path, "type");
        let name = match m.get("type") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                c.add(
                    &tpath,
                    format!("expected a type name, got {}", kind_of(other)),
                );
                return None;
            }
            None => {
                c.add(&tpath, format!("required: one of {}", type_names()));
                return None;
            }
        };
        let Some((kind, negate)) = Kind::parse(&name) else {
            let why = match name.strip_prefix("not-").and_then(Kind::parse) {
                Some((k, _)) => format!("`{}` cannot be negated", k.name()),
                None => format!("unknown assertion type `{name}`"),
            };
            c.add(
                &tpath,
                format!(
                    "{why}; the types are {} (`not-` negates all but latency, cost and llm-rubric)",
                    type_names()
                ),
            );
            return None;
        };
        let vpath = join(path, "value");
        let value = m.get("value");
        let mut schema = None;
        let expect = match (kind, value) {
            (Kind::Latency | Kind::Cost, Some(_)) => {
                c.add(
                    &vpath,
                    format!("{} takes a `threshold`, not a value", kind.name()),
                );
                Expect::Nothing
            }
            (Kind::Latency | Kind::Cost, None) => Expect::Nothing,
            (Kind::IsJson | Kind::ContainsJson, None) => Expect::Nothing,
            (Kind::IsJson | Kind::ContainsJson, Some(Value::Object(s))) => {
                let s = Value::Object(s.clone());
                if let Err(e) = jsonschema::validator_for(&s) {
                    c.add(&vpath, format!("not a valid JSON Schema: {e}"));
                }
                schema = Some(s);
                Expect::Nothing
            }
            (Kind::IsJson | Kind::ContainsJson, Some(other)) => {
                c.add(
                    &vpath,
                    format!("expected a JSON Schema (a mapping), got {}", kind_of(other)),
                );
                Expect::Nothing
            }
            (_, None) => {
                c.add(
                    &vpath,
                    format!("required: what {} compares with", kind.name()),
                );
                return None;
            }
            (Kind::Equals, Some(v @ (Value::Object(_) | Value::Array(_)))) => {
                Expect::Json(v.clone())
            }
            (k, Some(Value::Array(list))) if k.is_list() || k == Kind::Similar => {
                let mut out = Vec::new();
                for (i, x) in list.iter().enumerate() {
                    if let Some(s) = scalar_text(x) {
                        out.push(s);
                    } else {
                        c.add(
                            &format!("{vpath}[{i}]"),
                            format!("expected text, got {}", kind_of(x)),
                        );
                    }
                }
                if list.is_empty() {
                    c.add(&vpath, "the list must not be empty");
                }
                if list.len() > crate::suite::MAX_LIST_VALUES {
                    c.add(
                        &vpath,
                        format!(
                            "at most {} values (each may cost a request)",
                            crate::suite::MAX_LIST_VALUES
                        ),
                    );
                }
                Expect::List(out)
            }
            (k, Some(Value::String(s))) if k.is_list() => {
                // promptfoo accepts a comma-separated string.
                let items: Vec<String> = s
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect();
                if items.is_empty() {
                    c.add(
                        &vpath,
                        "expected a list (or comma-separated text), got nothing",
                    );
                }
                Expect::List(items)
            }
            (_, Some(x)) => match scalar_text(x) {
                Some(s) => Expect::Text(s),
                None => {
                    c.add(&vpath, format!("expected text, got {}", kind_of(x)));
                    return None;
                }
            },
        };
        if let (Kind::Regex, Expect::Text(re)) = (kind, &expect)
            && !re.contains("{{")
            && let Err(e) = regex::Regex::new(re)
        {
            c.add(&vpath, format!("not a valid regular expression: {e}"));
        }
        // Templates in the value must parse.
        match &expect {
            Expect::Text(s) => {
                variables_of(env, c, &vpath, s);
            }
            Expect::List(list) => {
                for (i, s) in list.iter().enumerate() {
                    variables_of(env, c, &format!("{vpath}[{i}]"), s);
                }
            }
            _ => {}
        }

        let hpath = join(path, "threshold");
        let threshold = m.get("threshold").and_then(|t| c.number(&hpath, t));
        match (kind, threshold) {
            (Kind::Latency | Kind::Cost, None) => c.add(
                &hpath,
                if kind == Kind::Latency {
                    "required: the most milliseconds the answer may take"
                } else {
                    "required: the most US dollars the answer may cost"
                },
            ),
            (Kind::Latency | Kind::Cost | Kind::Levenshtein, Some(t)) if t < 0.0 => {
                c.add(&hpath, format!("must not be negative, got {t}"))
            }
            (Kind::Similar | Kind::LlmRubric, Some(t)) if !(0.0..=1.0).contains(&t) => {
                c.add(&hpath, format!("a score between 0 and 1, got {t}"))
            }
            (
                Kind::Equals
                | Kind::Contains
                | Kind::Icontains
                | Kind::ContainsAny
                | Kind::ContainsAll
                | Kind::IcontainsAny
                | Kind::IcontainsAll
                | Kind::StartsWith
                | Kind::Regex
                | Kind::IsJson
                | Kind::ContainsJson,
                Some(_),
            ) => c.add(&hpath, format!("{} takes no threshold", kind.name())),
            _ => {}
        }
        let wpath = join(path, "weight");
        let weight = match m.get("weight") {
            None => 1.0,
            Some(w) => match c.number(&wpath, w) {
                Some(w) if (0.0..=1000.0).contains(&w) => w,
                Some(w) => {
                    c.add(&wpath, format!("must be between 0 and 1000, got {w}"));
                    1.0
                }
                None => 1.0,
            },
        };
        let route = match m.get("route") {
            None => None,
            Some(r) => {
                let rpath = join(path, "route");
                if !matches!(kind, Kind::Similar | Kind::LlmRubric) {
                    c.add(
                        &rpath,
                        format!("{} sends nothing: it takes no route", kind.name()),
                    );
                }
                c.string(&rpath, r)
            }
        };
        let metric = m
            .get("metric")
            .and_then(|x| c.string(&join(path, "metric"), x));
        Some(Assertion {
            kind,
            negate,
            expect,
            schema,
            threshold,
            weight,
            route,
            metric,
        })
    }

    /// The variables its value's templates read.
    pub(crate) fn variables(&self, env: &minijinja::Environment<'_>) -> BTreeSet<String> {
        let texts: Vec<&String> = match &self.expect {
            Expect::Text(s) => vec![s],
            Expect::List(l) => l.iter().collect(),
            _ => Vec::new(),
        };
        texts
            .into_iter()
            .filter(|t| crate::suite::template_shape(t).is_ok())
            .filter_map(|t| env.template_from_str(t).ok())
            .flat_map(|t| t.undeclared_variables(false))
            .collect()
    }

    /// The type as written (`not-icontains`).
    pub fn type_name(&self) -> String {
        if self.negate {
            format!("not-{}", self.kind.name())
        } else {
            self.kind.name().to_string()
        }
    }

    /// Judges `seen` against this assertion; `Err` when it cannot be judged (a template that
    /// does not render, a judge whose verdict does not parse, a cost that is not known).
    pub async fn evaluate<S: Services>(
        &self,
        seen: Observed<'_>,
        vars: &BTreeMap<String, Value>,
        services: &S,
        judge_route: Option<&str>,
        embedding_route: Option<&str>,
    ) -> Result<Verdict, String> {
        let texts = match &self.expect {
            Expect::Text(t) => vec![render(t, vars)?],
            Expect::List(l) => l
                .iter()
                .map(|t| render(t, vars))
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        let out = seen.output;
        let (pass, score, reason) = match self.kind {
            Kind::Similar => {
                let route = self
                    .route
                    .as_deref()
                    .or(embedding_route)
                    .ok_or("similar has no embedding route")?;
                let threshold = self.threshold.unwrap_or(0.75);
                let got = services.embed(route, out).await?;
                let mut best = f64::NEG_INFINITY;
                for t in &texts {
                    let want = services.embed(route, t).await?;
                    best = best.max(text::cosine(&got, &want)?);
                }
                let pass = best >= threshold;
                let score = best.clamp(0.0, 1.0);
                let reason = format!("cosine similarity {best:.4} against threshold {threshold}");
                return Ok(self.finish(pass, score, reason));
            }
            Kind::LlmRubric => {
                let route = self
                    .route
                    .as_deref()
                    .or(judge_route)
                    .ok_or("llm-rubric has no judge route")?;
                let rubric = texts.first().map(String::as_str).unwrap_or_default();
                let answer = services.judge(route, judge_messages(out, rubric)).await?;
                let v = parse_verdict(&answer)?;
                let pass = v.pass && self.threshold.is_none_or(|t| v.score >= t);
                return Ok(Verdict {
                    pass,
                    score: v.score,
                    reason: format!("judge `{route}`: {}", v.reason),
                });
            }
            kind => self.check_output(kind, out, &texts, seen)?,
        };
        Ok(self.finish(pass, score, reason))
    }

    /// The deterministic types and the ceilings.
    fn check_output(
        &self,
        kind: Kind,
        out: &str,
        texts: &[String],
        seen: Observed<'_>,
    ) -> Result<(bool, f64, String), String> {
        let first = texts.first().map(String::as_str).unwrap_or_default();
        let lower = |s: &str| s.to_lowercase();
        let quoted = |s: &str| format!("\"{}\"", text::clip(s, 80));
        let r = match kind {
            Kind::Equals => match &self.expect {
                Expect::Json(want) => match serde_json::from_str::<Value>(out.trim()) {
                    Ok(got) if &got == want => (true, "the output is the expected JSON".into()),
                    Ok(_) => (
                        false,
                        "the output is JSON, but not the expected JSON".into(),
                    ),
                    Err(_) => (false, "the output is not JSON".into()),
                },
                _ if out == first => (true, format!("the output is {}", quoted(first))),
                _ => (false, format!("the output is not {}", quoted(first))),
            },
            Kind::Contains => (out.contains(first), format!("contains {}", quoted(first))),
            Kind::Icontains => (
                lower(out).contains(&lower(first)),
                format!("contains {} (any case)", quoted(first)),
            ),
            Kind::StartsWith => (
                out.starts_with(first),
                format!("starts with {}", quoted(first)),
            ),
            Kind::ContainsAny | Kind::IcontainsAny | Kind::ContainsAll | Kind::IcontainsAll => {
                let fold = matches!(kind, Kind::IcontainsAny | Kind::IcontainsAll);
                let hay = if fold { lower(out) } else { out.to_string() };
                let found: Vec<&String> = texts
                    .iter()
                    .filter(|t| {
                        if fold {
                            hay.contains(&lower(t))
                        } else {
                            hay.contains(t.as_str())
                        }
                    })
                    .collect();
                let any = matches!(kind, Kind::ContainsAny | Kind::IcontainsAny);
                let pass = if any {
                    !found.is_empty()
                } else {
                    found.len() == texts.len()
                };
                (
                    pass,
                    format!(
                        "contains {} of {} values{}",
                        found.len(),
                        texts.len(),
                        if fold { " (any case)" } else { "" }
                    ),
                )
            }
            Kind::Regex => {
                let re = regex::Regex::new(first)
                    .map_err(|e| format!("not a valid regular expression: {e}"))?;
                (
                    re.is_match(out),
                    format!("matches /{}/", text::clip(first, 80)),
                )
            }
            Kind::IsJson => match serde_json::from_str::<Value>(out.trim()) {
                Ok(v) => match &self.schema {
                    None => (true, "the output is JSON".into()),
                    Some(s) => match schema_errors(s, &v)? {
                        None => (true, "the output is JSON valid against the schema".into()),
                        Some(e) => (false, format!("the output is JSON but {e}")),
                    },
                },
                Err(e) => (false, format!("the output is not JSON: {e}")),
            },
            Kind::ContainsJson => {
                let found = text::json_values(out);
                if found.is_empty() {
                    (false, "the output contains no JSON".into())
                } else {
                    match &self.schema {
                        None => (
                            true,
                            format!("the output contains {} JSON value(s)", found.len()),
                        ),
                        Some(s) => {
                            let mut last = String::new();
                            let mut ok = false;
                            for v in &found {
                                match schema_errors(s, v)? {
                                    None => {
                                        ok = true;
                                        break;
                                    }
                                    Some(e) => last = e,
                                }
                            }
                            if ok {
                                (
                                    true,
                                    "the output contains JSON valid against the schema".into(),
                                )
                            } else {
                                (false, format!("no JSON in the output is valid: {last}"))
                            }
                        }
                    }
                }
            }
            Kind::Levenshtein => {
                let max = self.threshold.unwrap_or(5.0);
                let d = text::levenshtein(out, first);
                (
                    d as f64 <= max,
                    format!("{d} edit(s) from the value, at most {max}"),
                )
            }
            Kind::Latency => {
                let max = self.threshold.unwrap_or(0.0);
                (
                    seen.latency_ms as f64 <= max,
                    format!("answered in {} ms, at most {max} ms", seen.latency_ms),
                )
            }
            Kind::Cost => {
                let max = self.threshold.unwrap_or(0.0);
                let Some(nanos) = seen.cost_nanos else {
                    return Err(
                        "the answer's cost is not known (the deployment has no price)".into(),
                    );
                };
                // Compared in nano-USD, the unit every cost is kept in.
                let max_nanos = (max * 1e9).round();
                (
                    nanos as f64 <= max_nanos,
                    format!("cost ${} , at most ${max}", text::usd(nanos)),
                )
            }
            Kind::Similar | Kind::LlmRubric => return Err("not a local assertion".into()),
        };
        Ok((r.0, if r.0 { 1.0 } else { 0.0 }, r.1))
    }

    fn finish(&self, pass: bool, score: f64, reason: String) -> Verdict {
        if self.negate {
            Verdict {
                pass: !pass,
                score: if self.kind == Kind::Similar {
                    1.0 - score
                } else {
                    1.0 - score.round()
                },
                reason: format!("not: {reason}"),
            }
        } else {
            Verdict {
                pass,
                score,
                reason,
            }
        }
    }
}

/// A scalar as text (numbers and booleans as written).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn type_names() -> String {
    KINDS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The first few ways `v` breaks `schema`, or `None` when it is valid.
fn schema_errors(schema: &Value, v: &Value) -> Result<Option<String>, String> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| format!("not a valid JSON Schema: {e}"))?;
    let found: Vec<jsonschema::ValidationError<'_>> = validator.iter_errors(v).take(3).collect();
    // A schema pattern that runs out of backtracking cannot judge the output: an error, not a
    // fail.
    if let Some(e) = found.iter().find(|e| {
        matches!(
            e.kind(),
            jsonschema::error::ValidationErrorKind::BacktrackLimitExceeded { .. }
        )
    }) {
        return Err(format!("the schema's pattern cannot be checked: {e}"));
    }
    let errors: Vec<String> = found
        .iter()
        .map(|e| {
            let at = e.instance_path().to_string();
            format!(
                "{} {e}",
                if at.is_empty() {
                    "at the top:".to_string()
                } else {
                    format!("at {at}:")
                }
            )
        })
        .collect();
    Ok(if errors.is_empty() {
        None
    } else {
        Some(format!("fails the schema: {}", errors.join("; ")))
    })
}

/// What the judge is asked: grade `output` against `rubric`, answering with the verdict object
/// alone.
pub fn judge_messages(output: &str, rubric: &str) -> Vec<(Role, String)> {
    vec![
        (
            Role::System,
            "You grade an output against a rubric. Answer with one JSON object and nothing else: \
             {\"reason\": \"<one sentence>\", \"pass\": true or false, \"score\": <a number from \
             0 to 1>}."
                .to_string(),
        ),
        (
            Role::User,
            format!("<Output>\n{output}\n</Output>\n<Rubric>\n{rubric}\n</Rubric>"),
        ),
    ]
}

/// A judge's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeVerdict {
    /// Passed.
    pub pass: bool,
    /// 0–1 (1 or 0 from `pass` when the judge gave none).
    pub score: f64,
    /// The judge's reason.
    pub reason: String,
}

/// Parses a judge's answer strictly: exactly one JSON object (alone, or alone in one fenced code
/// block) with a boolean `pass`, an optional `score` from 0 to 1 and an optional text `reason`.
/// Anything else is an error naming what was wrong — a verdict is never guessed from prose.
pub fn parse_verdict(answer: &str) -> Result<JudgeVerdict, String> {
    let mut body = answer.trim();
    if let Some(rest) = body.strip_prefix("```") {
        let rest = rest.strip_prefix("json").unwrap_or(rest);
        body = rest
            .strip_suffix("```")
            .ok_or("the judge's verdict is not parseable: an unclosed code block")?
            .trim();
    }
    let v: Value = serde_json::from_str(body).map_err(|_| {
        format!(
            "the judge's verdict is not parseable: expected one JSON object {{\"pass\", \"score\", \
             \"reason\"}}, got \"{}\"",
            text::clip(answer, 120)
        )
    })?;
    let Value::Object(m) = v else {
        return Err(format!(
            "the judge's verdict is not parseable: expected a JSON object, got {}",
            kind_of(&v)
        ));
    };
    let pass = match m.get("pass") {
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "the judge's verdict is not parseable: `pass` must be true or false, got {}",
                kind_of(other)
            ));
        }
        None => return Err("the judge's verdict is not parseable: no `pass`".into()),
    };
    let score = match m.get("score") {
        None | Some(Value::Null) => {
            if pass {
                1.0
            } else {
                0.0
            }
        }
        Some(s) => match s.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => x,
            _ => {
                return Err(format!(
                    "the judge's verdict is not parseable: `score` must be a number from 0 to 1, got {s}"
                ));
            }
        },
    };
    let reason = match m.get("reason") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(format!(
                "the judge's verdict is not parseable: `reason` must be text, got {}",
                kind_of(other)
            ));
        }
    };
    Ok(JudgeVerdict {
        pass,
        score,
        reason,
    })
}
