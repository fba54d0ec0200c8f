//! The runner: every test × prompt × route of a suite sent through a [`Target`] with a bound on
//! how many are in flight, each output judged by its assertions, the results in a fixed order
//! (test, prompt, route) whatever order the answers came in — so a deterministic upstream gives
//! the same report twice.

use crate::assertion::{Observed, Services};
use crate::suite::{Params, Role, Suite, render};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most characters of an output a report keeps.
pub const MAX_REPORTED_OUTPUT: usize = 4_000;

/// One chat call of a case.
#[derive(Debug, Clone)]
pub struct ChatCall<'a> {
    /// The route (the `model` of the request).
    pub route: &'a str,
    /// The rendered messages.
    pub messages: Vec<(Role, String)>,
    /// The suite's parameters.
    pub params: &'a Params,
    /// A pattern to render (`triage@2`) with `variables`, before `messages`.
    pub pattern: Option<&'a str>,
    /// The pattern's variables.
    pub variables: Option<&'a BTreeMap<String, Value>>,
}

/// What came back for one call.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Answer {
    /// The output text (the first choice's content).
    pub text: String,
    /// How long the call took, in milliseconds.
    pub latency_ms: u64,
    /// What it cost in nano-USD, when the deployment is priced.
    pub cost_nanos: Option<u64>,
    /// The gateway's request id (`x-request-id`), to find it in the ledger.
    pub request_id: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
}

/// Where cases are sent: the gateway (over HTTP, or in-process), or a fake in tests.
pub trait Target: Sync {
    /// Sends one chat call.
    fn chat(&self, call: ChatCall<'_>) -> impl Future<Output = Result<Answer, String>> + Send;
    /// Embeds `text` through `route`: the vector and its cost in nano-USD, when known.
    fn embed(
        &self,
        route: &str,
        text: &str,
    ) -> impl Future<Output = Result<(Vec<f32>, Option<u64>), String>> + Send;
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its assertions passed (or its score reached the threshold).
    Pass,
    /// They did not.
    Fail,
    /// It could not be judged: the call failed, a template did not render, a verdict did not
    /// parse. Never counted as a pass.
    Error,
}

/// One assertion's result on one case.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AssertionResult {
    /// The type as written (`not-icontains`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its metric name, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Its weight.
    pub weight: f64,
    /// Passed.
    pub pass: bool,
    /// 0–1.
    pub score: f64,
    /// Why.
    pub reason: String,
}

/// One case: a test, a prompt and a route.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseResult {
    /// The test's index in the suite.
    pub test: usize,
    /// The test's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The prompt's id.
    pub prompt: String,
    /// The route.
    pub route: String,
    /// The test's variables.
    pub vars: BTreeMap<String, Value>,
    /// How it ended.
    pub status: Status,
    /// The weighted score of its assertions (0–1; 0 on error).
    pub score: f64,
    /// The output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why it could not be judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Latency of the answer, in milliseconds.
    pub latency_ms: u64,
    /// Cost of the answer in nano-USD, when priced.
    #[serde(
        rename = "cost_nano_usd",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cost_nanos: Option<u64>,
    /// The gateway's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The model that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Each assertion's result.
    pub assertions: Vec<AssertionResult>,
}

/// One route's column of the matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RouteSummary {
    /// The route.
    pub route: String,
    /// Cases sent to it.
    pub cases: usize,
    /// Passed.
    pub passed: usize,
    /// Its pass rate (0–1).
    pub pass_rate: f64,
    /// What its cases cost, in nano-USD.
    pub cost_nano_usd: u64,
}

/// The totals of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Cases.
    pub cases: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Could not be judged.
    pub errors: usize,
    /// passed ÷ cases (0–1; 0 for an empty run).
    pub pass_rate: f64,
    /// The suite's `pass_rate` the run had to reach.
    pub threshold: f64,
    /// `pass_rate ≥ threshold`.
    pub passed_threshold: bool,
    /// What the cases cost, in nano-USD (priced answers only).
    pub cost_nano_usd: u64,
    /// What judging and embedding cost on top, in nano-USD.
    pub scoring_cost_nano_usd: u64,
    /// Cases whose cost is not known (unpriced deployments).
    pub unpriced: usize,
    /// Per route.
    pub routes: Vec<RouteSummary>,
}

/// A run's results.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// The suite's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The totals.
    pub summary: Summary,
    /// Every case, in order: test, then prompt, then route.
    pub cases: Vec<CaseResult>,
}

/// How a run runs.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Cases in flight at once (at least 1).
    pub concurrency: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { concurrency: 8 }
    }
}

/// The calls the assertions make, through the target, with their cost added up.
struct Scoring<'a, T> {
    target: &'a T,
    cost: AtomicU64,
    params: Params,
}

impl<T: Target> Services for Scoring<'_, T> {
    async fn embed(&self, route: &str, text: &str) -> Result<Vec<f32>, String> {
        let (v, cost) = self.target.embed(route, text).await?;
        self.cost.fetch_add(cost.unwrap_or(0), Ordering::Relaxed);
        Ok(v)
    }

    async fn judge(&self, route: &str, messages: Vec<(Role, String)>) -> Result<String, String> {
        let a = self
            .target
            .chat(ChatCall {
                route,
                messages,
                params: &self.params,
                pattern: None,
                variables: None,
            })
            .await
            .map_err(|e| format!("the judge `{route}` did not answer: {e}"))?;
        self.cost
            .fetch_add(a.cost_nanos.unwrap_or(0), Ordering::Relaxed);
        Ok(a.text)
    }
}

/// Runs every case of `suite` through `target`, calling `progress` after each with the number
/// done and the total.
pub async fn run<T: Target>(
    suite: &Suite,
    target: &T,
    options: RunOptions,
    progress: &(dyn Fn(&CaseResult, usize, usize) + Sync),
) -> RunReport {
    let scoring = Scoring {
        target,
        cost: AtomicU64::new(0),
        // The judge answers at temperature 0, with the suite's seed, so it judges the same twice.
        params: Params {
            temperature: Some(0.0),
            max_tokens: None,
            seed: suite.params.seed,
        },
    };
    let total = suite.case_count();
    let mut order = Vec::with_capacity(total);
    for (ti, _) in suite.tests.iter().enumerate() {
        for (pi, _) in suite.prompts.iter().enumerate() {
            for (ri, _) in suite.routes.iter().enumerate() {
                order.push((ti, pi, ri));
            }
        }
    }
    let done = AtomicU64::new(0);
    let scoring_ref = &scoring;
    let done_ref = &done;
    let mut results: Vec<((usize, usize, usize), CaseResult)> =
        futures_util::stream::iter(order.into_iter().map(|idx| async move {
            let r = one_case(suite, target, scoring_ref, idx).await;
            let n = done_ref.fetch_add(1, Ordering::Relaxed) + 1;
            progress(&r, usize::try_from(n).unwrap_or(usize::MAX), total);
            (idx, r)
        }))
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(idx, _)| *idx);
    let cases: Vec<CaseResult> = results.into_iter().map(|(_, r)| r).collect();
    let summary = summarize(suite, &cases, scoring.cost.load(Ordering::Relaxed));
    RunReport {
        description: suite.description.clone(),
        summary,
        cases,
    }
}

async fn one_case<T: Target>(
    suite: &Suite,
    target: &T,
    scoring: &Scoring<'_, T>,
    (ti, pi, ri): (usize, usize, usize),
) -> CaseResult {
    let test = &suite.tests[ti];
    let prompt = &suite.prompts[pi];
    let route = &suite.routes[ri];
    let mut case = CaseResult {
        test: ti,
        description: test.description.clone(),
        prompt: prompt.id.clone(),
        route: route.clone(),
        vars: test.vars.clone(),
        status: Status::Error,
        score: 0.0,
        output: None,
        error: None,
        latency_ms: 0,
        cost_nanos: None,
        request_id: None,
        model: None,
        assertions: Vec::new(),
    };
    let mut messages = Vec::with_capacity(prompt.messages.len());
    for (role, template) in &prompt.messages {
        match render(template, &test.vars) {
            Ok(text) => messages.push((*role, text)),
            Err(e) => {
                case.error = Some(format!("prompt `{}` does not render: {e}", prompt.id));
                return case;
            }
        }
    }
    let answer = match target
        .chat(ChatCall {
            route,
            messages,
            params: &suite.params,
            pattern: prompt.pattern.as_deref(),
            variables: prompt.pattern.as_ref().map(|_| &test.vars),
        })
        .await
    {
        Ok(a) => a,
        Err(e) => {
            case.error = Some(e);
            return case;
        }
    };
    case.latency_ms = answer.latency_ms;
    case.cost_nanos = answer.cost_nanos;
    case.request_id = answer.request_id.clone();
    case.model = answer.model.clone();
    let seen = Observed {
        output: &answer.text,
        latency_ms: answer.latency_ms,
        cost_nanos: answer.cost_nanos,
    };
    let mut errors = Vec::new();
    let (mut weighted, mut weights) = (0.0, 0.0);
    let mut all_pass = true;
    for a in &test.asserts {
        match a
            .evaluate(
                seen,
                &test.vars,
                scoring,
                suite.judge_route.as_deref(),
                suite.embedding_route.as_deref(),
            )
            .await
        {
            Ok(v) => {
                if a.weight > 0.0 {
                    weighted += v.score * a.weight;
                    weights += a.weight;
                    all_pass &= v.pass;
                }
                case.assertions.push(AssertionResult {
                    type_name: a.type_name(),
                    metric: a.metric.clone(),
                    weight: a.weight,
                    pass: v.pass,
                    score: v.score,
                    reason: v.reason,
                });
            }
            Err(e) => {
                errors.push(format!("{}: {e}", a.type_name()));
                case.assertions.push(AssertionResult {
                    type_name: a.type_name(),
                    metric: a.metric.clone(),
                    weight: a.weight,
                    pass: false,
                    score: 0.0,
                    reason: e,
                });
            }
        }
    }
    // The report keeps the start of long outputs: the assertions judged them whole.
    case.output = Some(crate::text::clip(&answer.text, MAX_REPORTED_OUTPUT));
    if !errors.is_empty() {
        case.error = Some(errors.join("; "));
        return case;
    }
    case.score = if weights > 0.0 {
        weighted / weights
    } else if all_pass {
        1.0
    } else {
        0.0
    };
    let pass = match test.threshold {
        Some(t) => case.score >= t,
        None => all_pass,
    };
    case.status = if pass { Status::Pass } else { Status::Fail };
    case
}

fn summarize(suite: &Suite, cases: &[CaseResult], scoring_cost: u64) -> Summary {
    let count = |s: Status| cases.iter().filter(|c| c.status == s).count();
    let passed = count(Status::Pass);
    let rate = |p: usize, n: usize| if n == 0 { 0.0 } else { p as f64 / n as f64 };
    let pass_rate = rate(passed, cases.len());
    let routes = suite
        .routes
        .iter()
        .map(|r| {
            let mine: Vec<&CaseResult> = cases.iter().filter(|c| &c.route == r).collect();
            let p = mine.iter().filter(|c| c.status == Status::Pass).count();
            RouteSummary {
                route: r.clone(),
                cases: mine.len(),
                passed: p,
                pass_rate: rate(p, mine.len()),
                cost_nano_usd: mine.iter().filter_map(|c| c.cost_nanos).sum(),
            }
        })
        .collect();
    Summary {
        cases: cases.len(),
        passed,
        failed: count(Status::Fail),
        errors: count(Status::Error),
        pass_rate,
        threshold: suite.pass_rate,
        passed_threshold: !cases.is_empty() && pass_rate >= suite.pass_rate,
        cost_nano_usd: cases.iter().filter_map(|c| c.cost_nanos).sum(),
        scoring_cost_nano_usd: scoring_cost,
        unpriced: cases
            .iter()
            .filter(|c| c.status != Status::Error && c.cost_nanos.is_none())
            .count(),
        routes,
    }
}
