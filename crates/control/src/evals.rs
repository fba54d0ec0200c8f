//! Evaluation suites and runs.
//!
//! A suite is stored per use case and name as immutable versions (a new one only when the
//! document changes), checked with the path of every mistake and against the routes the use case
//! may call. A run is started here and executed by the server: it mints an evaluation key for the
//! use case (so every case goes through the gateway itself — its policy, its eval budget, the
//! ledger and the audit chain — tagged as evaluation and kept out of production KPIs), sends the
//! cases to this server's own `/v1` with a bound on concurrency, stores the report, and revokes
//! the key. The server runs it, not the caller, so a run's figures are evidence a gate can trust.

use crate::common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tollgate_eval as ev;
use tollgate_store::{EvalQueries, FairnessQueries};
use utoipa::ToSchema;

/// Cases in flight at once when the request does not say.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The most cases in flight a run may ask for.
pub const MAX_CONCURRENCY: usize = 64;
/// How long a run's evaluation key lives at most (it is revoked when the run ends).
const EVAL_KEY_TTL_MS: i64 = 24 * 3_600_000;

/// `PUT /use-cases/{id}/suites/{name}`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSuite {
    /// The suite document (YAML read as JSON), datasets inlined: `prompts`, `routes`, `tests`,
    /// `defaultTest`, `pass_rate`, `judge`, `embedding`, `params`, `description`.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
}

/// A suite version as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SuiteView {
    /// The use case.
    pub use_case_id: String,
    /// The suite's name.
    pub name: String,
    /// Its version (1, 2, …).
    pub version: i64,
    /// SHA-256 of the document's canonical JSON.
    pub fingerprint: String,
    /// Whether this request stored a new version (only on `PUT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    /// When it was stored, RFC 3339.
    pub created_at: String,
    /// Who stored it.
    pub created_by: String,
    /// What it checks.
    pub description: Option<String>,
    /// Its routes.
    pub routes: Vec<String>,
    /// Prompts.
    pub prompts: usize,
    /// Tests.
    pub tests: usize,
    /// Cases a run sends (tests × prompts × routes).
    pub cases: usize,
    /// The share of cases a run must pass.
    pub pass_rate: f64,
    /// The document (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub document: Option<serde_json::Value>,
}

/// `POST /use-cases/{id}/eval-runs`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The suite's name.
    #[schema(min_length = 1, max_length = 100)]
    pub suite: String,
    /// Its version; the latest when left out.
    #[schema(minimum = 1)]
    pub version: Option<i64>,
    /// Cases in flight at once (1–64, default 8).
    #[schema(minimum = 1, maximum = 64)]
    pub concurrency: Option<u64>,
}

/// `GET /use-cases/{id}/eval-runs` filters.
/// (Described here for the document; the handler reads the query itself, so every route words
/// a bad number alike: [`whole_number`].)
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only runs of this suite (a name: an empty one is refused, not read as "every suite").
    #[param(min_length = 1)]
    pub suite: Option<String>,
    /// At most this many (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Only runs older than this one (the id of the last run of an earlier answer: the next
    /// page).
    pub before: Option<String>,
}

/// `GET /use-cases/{id}/fairness-runs` filters (as [`RunFilter`]).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FairnessFilter {
    /// At most this many (1–200, default 200).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Only runs older than this one (the id of the last run of an earlier answer: the next
    /// page).
    pub before: Option<String>,
}

/// A page of a use case's runs: a `before` that is not one of its runs (another use case's, or
/// none) is refused — never read as the start or the end of the list.
fn paged<T>(
    before: Option<&String>,
    r: std::result::Result<Vec<T>, m::StoreError>,
) -> Result<Vec<T>> {
    match r {
        Err(m::StoreError::NotFound(_)) if before.is_some() => Err(ApiError::invalid(
            "`before` must be the id of one of this use case's runs",
            Some("before".into()),
        )),
        r => Ok(r?),
    }
}

/// The run a run is compared with: the latest finished run of the same suite with the pattern
/// versions labelled `production` now (suites of patterns), else the latest made while the use
/// case was in production.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Champion {
    /// Its id.
    pub run_id: String,
    /// Its pass rate.
    pub pass_rate: f64,
    /// This run's pass rate minus the champion's (−1 to 1).
    pub delta: f64,
}

/// A run as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RunView {
    /// `run_…`.
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// The suite's name.
    pub suite: String,
    /// The version run.
    pub suite_version: i64,
    /// The use case's stage when it ran.
    pub stage: String,
    /// `manual` or `scheduled`.
    pub trigger: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: Option<String>,
    /// Who started it.
    pub created_by: String,
    /// Cases to send.
    pub cases_total: u64,
    /// Cases judged so far.
    pub cases_done: u64,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Could not be judged.
    pub errors: u64,
    /// passed ÷ cases, when done.
    pub pass_rate: Option<f64>,
    /// The share it had to reach.
    pub threshold: f64,
    /// Whether it did, when done.
    pub passed_threshold: Option<bool>,
    /// What its cases cost, USD.
    pub cost_usd: String,
    /// What judging and embeddings cost, USD.
    pub scoring_cost_usd: String,
    /// The routes it sent to.
    pub routes: Vec<String>,
    /// The models that answered.
    pub models: Vec<String>,
    /// The pattern versions its prompts used, pinned at its start.
    pub patterns: Vec<String>,
    /// The champion it is compared with, when there is one.
    pub champion: Option<Champion>,
    /// Why it failed.
    pub error: Option<String>,
    /// The full report (cases, assertions, outputs), when done; not in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

/// A running run's counts, as its cases are judged.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    done: AtomicU64,
    passed: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
    /// Set once the run has ended: recorded, and its key revoked.
    ended: tokio::sync::watch::Sender<bool>,
}

/// Runs in progress on this server: run id → (use case, counts).
#[derive(Debug, Default)]
pub(crate) struct Running(std::sync::Mutex<HashMap<String, (String, Arc<Progress>)>>);

/// Runs (evaluation and fairness) a use case may have in progress at once on one server.
pub const MAX_RUNS_IN_FLIGHT: usize = 4;

impl Running {
    fn get(&self, id: &str) -> Option<Arc<Progress>> {
        self.0.lock().ok()?.get(id).map(|(_, p)| p.clone())
    }
    /// Registers a run, unless its use case has [`MAX_RUNS_IN_FLIGHT`] already.
    fn insert(&self, id: &str, use_case_id: &str, p: Arc<Progress>) -> Result<()> {
        let mut m = self.0.lock().map_err(|_| ApiError::Internal)?;
        if m.values().filter(|(uc, _)| uc == use_case_id).count() >= MAX_RUNS_IN_FLIGHT {
            return Err(ApiError::Conflict {
                message: format!(
                    "use case {use_case_id} has {MAX_RUNS_IN_FLIGHT} runs in progress: wait for one to end"
                ),
                code: "too_many_runs",
            });
        }
        m.insert(id.to_string(), (use_case_id.to_string(), p));
        Ok(())
    }
    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

/// Where a run of `uc` sends its cases: 503 while this server does not know the gateway's
/// address, 409 without an eval budget.
fn ready_to_send(gw: &Control, uc: &m::UseCase) -> Result<String> {
    let base = gw.gateway_url().ok_or(ApiError::Unavailable(
        "evaluation runs need the gateway's own address, which this server does not know",
    ))?;
    require_eval_budget(gw, uc)?;
    Ok(base)
}

/// 409 unless the use case has an eval budget (scope `use_case_eval`): evaluation spend must have
/// a deliberate ceiling of its own, so runs cannot use up what the pod's and the org's budgets
/// leave for production.
fn require_eval_budget(gw: &Control, uc: &m::UseCase) -> Result<()> {
    let has = gw
        .plane
        .budget_statuses()
        .iter()
        .any(|b| b.budget.scope == "use_case_eval" && b.budget.scope_id == uc.id);
    if has {
        Ok(())
    } else {
        Err(ApiError::Conflict {
            message: format!(
                "use case {} has no eval budget: create one first (POST /admin/v1/budgets with scope use_case_eval)",
                uc.id
            ),
            code: "eval_budget_required",
        })
    }
}

/// A use case the caller may evaluate: 404 if they cannot see it, 403 if they may only read it.
async fn evaluated_use_case(gw: &Control, p: &Principal, id: &str) -> Result<m::UseCase> {
    let uc = readable_use_case(gw, p, id).await?;
    p.check(
        &uc.pod_id,
        &format!("use case {id}"),
        p.can_evaluate(&uc.pod_id),
    )?;
    Ok(uc)
}

/// The problems of a suite as one 400: every problem in the message, the first one's path as
/// `param`.
fn suite_error(e: ev::SuiteError) -> ApiError {
    let param = e.problems.first().map(|p| p.path.clone());
    ApiError::invalid(e.to_string(), param.filter(|p| !p.is_empty()))
}

fn checked(doc: &serde_json::Value, uc: &m::UseCase) -> Result<ev::Suite> {
    let suite = ev::Suite::from_document(doc).map_err(suite_error)?;
    suite.check_routes(doc, &uc.routes).map_err(suite_error)?;
    Ok(suite)
}

/// Resolves each pattern prompt of `suite` to the version it names now (`triage@production` →
/// `triage@2`), and checks every test defines the variables that version requires (its schema's
/// `required`, less those with a default): the problems with their paths, or the pinned suite and
/// the versions it uses.
async fn pin_patterns(gw: &Control, suite: &ev::Suite) -> Result<(ev::Suite, Vec<String>)> {
    use tollgate_store::PatternQueries;
    let mut pinned = suite.clone();
    let mut used = Vec::new();
    let mut problems = Vec::new();
    for (i, prompt) in pinned.prompts.iter_mut().enumerate() {
        let Some(reference) = prompt.pattern.clone() else {
            continue;
        };
        let path = format!("prompts[{i}].pattern");
        let mut fail = |message: String| {
            problems.push(ev::Problem {
                path: path.clone(),
                message,
            })
        };
        let Ok((name, sel)) = ev::pattern::parse_reference(&reference) else {
            fail(format!("`{reference}` is not a pattern reference"));
            continue;
        };
        let p = match gw.store.get_pattern(&name).await {
            Ok(p) => p,
            Err(m::StoreError::NotFound(_)) => {
                fail(format!("there is no pattern `{name}`"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let version = match &sel {
            ev::pattern::Selector::Version(v) => Some(*v),
            ev::pattern::Selector::Label(l) => p.labels.get(l).copied(),
        };
        let Some(v) = version.and_then(|v| p.versions.iter().find(|x| x.version == v)) else {
            fail(format!(
                "pattern `{name}` has no version `{reference}` names"
            ));
            continue;
        };
        let defaults: Vec<&String> = v.schema["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, p)| p.get("default").is_some())
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default();
        let required: Vec<String> = v.schema["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for (ti, t) in suite.tests.iter().enumerate() {
            for r in required.iter().filter(|r| !defaults.contains(r)) {
                if !t.vars.contains_key(r) {
                    problems.push(ev::Problem {
                        path: format!("tests[{ti}].vars"),
                        message: format!(
                            "missing variable `{r}`, which pattern `{name}@{}` requires",
                            v.version
                        ),
                    });
                }
            }
        }
        let pin = format!("{name}@{}", v.version);
        prompt.pattern = Some(pin.clone());
        if !used.contains(&pin) {
            used.push(pin);
        }
    }
    if problems.is_empty() {
        Ok((pinned, used))
    } else {
        Err(suite_error(ev::SuiteError { problems }))
    }
}

fn suite_view(v: m::SuiteVersion, suite: &ev::Suite, full: bool) -> SuiteView {
    SuiteView {
        use_case_id: v.use_case_id,
        name: v.name,
        version: v.version,
        fingerprint: v.fingerprint,
        created: None,
        created_at: tollgate_types::time::rfc3339(v.created_at),
        created_by: v.created_by,
        description: suite.description.clone(),
        routes: suite.routes.clone(),
        prompts: suite.prompts.len(),
        tests: suite.tests.len(),
        cases: suite.case_count(),
        pass_rate: suite.pass_rate,
        document: full.then_some(v.document),
    }
}

/// A stored version as a suite (stored versions were checked when stored).
fn stored(v: &m::SuiteVersion) -> Result<ev::Suite> {
    ev::Suite::from_document(&v.document).map_err(|e| {
        tracing::error!(suite = %v.name, version = v.version, "a stored suite no longer checks: {e}");
        ApiError::Internal
    })
}

#[utoipa::path(put, path = "/admin/v1/use-cases/{id}/suites/{name}", tag = "evaluations",
    params(("id" = String, Path), ("name" = String, Path)), request_body = PutSuite,
    responses((status = 200, body = SuiteView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Stores a suite as the next version of `name` (pod leads, builders and domain experts): checked
/// with the path of every mistake and against the use case's routes; the same document again
/// stores nothing (`created: false`).
pub async fn put_suite(
    State(gw): Gw,
    p: Principal,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<SuiteView>> {
    let uc = evaluated_use_case(&gw, &p, &id).await?;
    name_ok("name", &name)?;
    let req: PutSuite = body(&gw, &headers, b).await?;
    let suite = checked(&req.document, &uc)?;
    pin_patterns(&gw, &suite).await?;
    let fingerprint = ev::suite::fingerprint(&req.document);
    let (v, created) = gw
        .store
        .put_suite(
            &p.actor(),
            &uc.id,
            &name,
            &fingerprint,
            &req.document,
            gw.clock.now_ms(),
        )
        .await?;
    let mut view = suite_view(v, &suite, false);
    view.created = Some(created);
    Ok(Json(view))
}

/// A page of a use case's suites; pass `next` as `after` for the following page.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SuitePage {
    /// The latest version of each suite, by name.
    pub items: Vec<SuiteView>,
    /// Cursor of the next page (the last suite's name); `null` on the last.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/suites", tag = "evaluations",
    params(("id" = String, Path), ("after" = Option<String>, Query, min_length = 1, max_length = 100, description = "cursor: the `next` of an earlier page (a suite's name)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200 (default 50)")),
    responses((status = 200, body = SuitePage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// The latest version of each of a use case's suites, by name, a page at a time.
pub async fn list_suites(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SuitePage>> {
    let after = name_cursor(&q, "a suite's name", |a| name_ok("after", a))?;
    let limit = page_limit(&q, 0)?;
    let uc = readable_use_case(&gw, &p, &id).await?;
    let page = gw
        .store
        .list_suites_page(&uc.id, &PageRequest { after, limit })
        .await?;
    let mut items = Vec::new();
    for v in page.items {
        let s = stored(&v)?;
        items.push(suite_view(v, &s, false));
    }
    Ok(Json(SuitePage {
        items,
        next: page.next,
    }))
}

/// `GET /use-cases/{id}/suites/{name}` options.
/// (Described here for the document; the handler reads the query itself: [`whole_number`].)
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuiteQuery {
    /// A version; the latest when left out.
    #[param(minimum = 1)]
    pub version: Option<i64>,
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/suites/{name}", tag = "evaluations",
    params(("id" = String, Path), ("name" = String, Path), SuiteQuery),
    responses((status = 200, body = SuiteView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// A suite version with its document (the latest unless `version` is given).
pub async fn get_suite(
    State(gw): Gw,
    p: Principal,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SuiteView>> {
    let version = whole_number(&q, "version", 1, i64::MAX)?;
    let uc = readable_use_case(&gw, &p, &id).await?;
    let v = suite_or_404(&gw, &uc.id, &name, version).await?;
    let s = stored(&v)?;
    Ok(Json(suite_view(v, &s, true)))
}

async fn suite_or_404(
    gw: &Control,
    use_case_id: &str,
    name: &str,
    version: Option<i64>,
) -> Result<m::SuiteVersion> {
    gw.store
        .get_suite(use_case_id, name, version)
        .await
        .map_err(|e| match e {
            m::StoreError::NotFound(what) => ApiError::Missing(what),
            e => e.into(),
        })
}

#[utoipa::path(post, path = "/admin/v1/use-cases/{id}/eval-runs", tag = "evaluations",
    params(("id" = String, Path)), request_body = StartRun,
    responses((status = 202, body = RunView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
/// Starts a run of a stored suite (pod leads, builders and domain experts). The server sends
/// every case through the gateway as an evaluation of the use case and stores the report; poll
/// `GET /admin/v1/eval-runs/{run_id}` for progress and results.
pub async fn start_run(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<(StatusCode, Json<RunView>)> {
    let uc = evaluated_use_case(&gw, &p, &id).await?;
    let req: StartRun = body(&gw, &headers, b).await?;
    name_ok("suite", &req.suite)?;
    if req.version.is_some_and(|v| v < 1) {
        return Err(ApiError::invalid(
            "`version` is a number from 1",
            Some("version".into()),
        ));
    }
    let concurrency = concurrency(req.concurrency)?;
    if uc.stage == m::Stage::Retired {
        return Err(ApiError::Conflict {
            message: format!("use case {id} is retired: it is not evaluated any more"),
            code: "use_case_retired",
        });
    }
    let v = suite_or_404(&gw, &uc.id, &req.suite, req.version).await?;
    // The routes and the patterns' labels may have changed since the suite was stored; the run
    // uses the pattern versions labelled now, pinned for all its cases.
    let suite = checked(&v.document, &uc)?;
    let (suite, patterns) = pin_patterns(&gw, &suite).await?;
    let base = ready_to_send(&gw, &uc)?;
    let run = start(
        &gw,
        &p.actor(),
        &uc,
        v,
        (suite, patterns),
        "manual",
        concurrency,
        base,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(run_view(&gw, run).await?)))
}

/// Records a run, mints its evaluation key and starts it in the background; the run as recorded.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    gw: &Arc<Control>,
    actor: &str,
    uc: &m::UseCase,
    v: m::SuiteVersion,
    (suite, patterns): (ev::Suite, Vec<String>),
    trigger: &str,
    concurrency: usize,
    base: String,
) -> Result<m::EvalRun> {
    let now = gw.clock.now_ms();
    let run = m::EvalRun {
        id: m::new_id("run"),
        use_case_id: uc.id.clone(),
        pod_id: uc.pod_id.clone(),
        suite: v.name.clone(),
        suite_version: v.version,
        stage: uc.stage.as_str().to_string(),
        trigger: trigger.to_string(),
        status: "running".into(),
        started_at: now,
        created_by: actor.to_string(),
        cases_total: suite.case_count() as u64,
        threshold: suite.pass_rate,
        routes: suite.routes.clone(),
        patterns,
        ..m::EvalRun::default()
    };
    let (progress, key, plaintext) =
        register(gw, actor, &uc.id, &run.id, gw.store.create_run(actor, &run)).await?;
    let ended = progress.clone();
    let work = {
        let (gw, run) = (gw.clone(), run.clone());
        async move {
            let target = GatewayTarget::new(base, plaintext);
            execute(&gw, run, &suite, &target, concurrency, progress).await;
        }
    };
    let failed = run.clone();
    launch(
        gw,
        ended,
        &run.id,
        actor,
        key.id,
        work,
        async move |gw: Arc<Control>| {
            let mut failed = failed;
            failed.status = "failed".into();
            failed.finished_at = Some(gw.clock.now_ms());
            failed.error = Some(STOPPED_UNEXPECTEDLY.into());
            let _ = gw.store.finish_run(&failed).await;
        },
    );
    Ok(run)
}

/// Why a run whose task died is recorded as failed.
const STOPPED_UNEXPECTEDLY: &str = "the run stopped unexpectedly";

/// `concurrency` as asked (1–64), or the default.
fn concurrency(asked: Option<u64>) -> Result<usize> {
    match asked {
        None => Ok(DEFAULT_CONCURRENCY),
        Some(n) if (1..=MAX_CONCURRENCY as u64).contains(&n) => Ok(n as usize),
        Some(_) => Err(ApiError::invalid(
            format!("`concurrency` must be between 1 and {MAX_CONCURRENCY}"),
            Some("concurrency".into()),
        )),
    }
}

/// Enters a run in the in-progress list (409 past [`MAX_RUNS_IN_FLIGHT`]), records it with
/// `create`, and mints its evaluation key; a failure takes it out of the list again.
async fn register(
    gw: &Control,
    actor: &str,
    use_case_id: &str,
    run_id: &str,
    create: impl Future<Output = std::result::Result<(), m::StoreError>>,
) -> Result<(Arc<Progress>, m::ApiKey, String)> {
    let progress = Arc::new(Progress::default());
    gw.running.insert(run_id, use_case_id, progress.clone())?;
    let made = async {
        create.await?;
        mint_key(gw, actor, use_case_id, run_id).await
    }
    .await;
    match made {
        Ok((key, plaintext)) => Ok((progress, key, plaintext)),
        Err(e) => {
            gw.running.remove(run_id);
            Err(e)
        }
    }
}

/// Runs `work` (which records the run's end) in the background. If it dies instead (a panic),
/// `fail` records the run as failed; either way the run leaves the in-progress list and its
/// evaluation key is revoked, in the name of whoever started it.
fn launch<Fail, Failed>(
    gw: &Arc<Control>,
    progress: Arc<Progress>,
    run_id: &str,
    actor: &str,
    key_id: String,
    work: impl Future<Output = ()> + Send + 'static,
    fail: Fail,
) where
    Fail: FnOnce(Arc<Control>) -> Failed + Send + 'static,
    Failed: Future<Output = ()> + Send + 'static,
{
    let (gw, run_id, actor) = (gw.clone(), run_id.to_string(), actor.to_string());
    let task = gw.background.spawn(work);
    let background = gw.background.clone();
    background.spawn(async move {
        if task.await.is_err() {
            fail(gw.clone()).await;
        }
        finish_key(&gw, &actor, &key_id).await;
        progress.ended.send_replace(true);
        gw.running.remove(&run_id);
    });
}

/// Mints the evaluation key a run sends its cases with (stored hashed, like every key; its
/// plaintext lives only in the run's task) and tells the data plane.
async fn mint_key(
    gw: &Control,
    actor: &str,
    use_case_id: &str,
    run_id: &str,
) -> Result<(m::ApiKey, String)> {
    let now = gw.clock.now_ms();
    let (mut key, plaintext) = tollgate_store::keys::new_api_key(
        &gw.secret,
        use_case_id,
        None,
        &format!("evaluation {run_id}"),
        None,
        Some(now + EVAL_KEY_TTL_MS),
        actor,
    );
    key.evaluation = true;
    key.created_at = now;
    gw.store.create_key(actor, &key).await?;
    gw.plane.refresh(Changed::Key(key.id.clone())).await?;
    Ok((key, plaintext))
}

/// Revokes a run's evaluation key, in the name of whoever started the run.
async fn finish_key(gw: &Control, actor: &str, key_id: &str) {
    if let Err(e) = gw.store.revoke_key(actor, key_id, gw.clock.now_ms()).await {
        tracing::warn!(key = %key_id, "cannot revoke an evaluation key: {e}");
    }
    let _ = gw.plane.refresh(Changed::Key(key_id.to_string())).await;
}

/// Runs the suite and records the result.
async fn execute(
    gw: &Control,
    mut run: m::EvalRun,
    suite: &ev::Suite,
    target: &GatewayTarget,
    concurrency: usize,
    progress: Arc<Progress>,
) {
    let counts = progress.clone();
    let on_case = move |c: &ev::CaseResult, _: usize, _: usize| {
        match c.status {
            ev::Status::Pass => counts.passed.fetch_add(1, Ordering::Relaxed),
            ev::Status::Fail => counts.failed.fetch_add(1, Ordering::Relaxed),
            ev::Status::Error => counts.errors.fetch_add(1, Ordering::Relaxed),
        };
        counts.done.fetch_add(1, Ordering::Relaxed);
    };
    let work = ev::run(suite, target, ev::RunOptions { concurrency }, &on_case);
    tokio::pin!(work);
    // Other instances read the run's progress from the store: written once a second.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let report = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = tick.tick() => {
                let _ = gw.store.run_progress(
                    &run.id,
                    progress.done.load(Ordering::Relaxed),
                    progress.passed.load(Ordering::Relaxed),
                    progress.failed.load(Ordering::Relaxed),
                    progress.errors.load(Ordering::Relaxed),
                ).await;
            }
        }
    };
    let s = &report.summary;
    run.status = "done".into();
    run.finished_at = Some(gw.clock.now_ms());
    run.cases_done = s.cases as u64;
    run.passed = s.passed as u64;
    run.failed = s.failed as u64;
    run.errors = s.errors as u64;
    run.pass_rate = Some(s.pass_rate);
    run.passed_threshold = Some(s.passed_threshold);
    run.cost_nano_usd = s.cost_nano_usd;
    run.scoring_cost_nano_usd = s.scoring_cost_nano_usd;
    let mut models: Vec<String> = report
        .cases
        .iter()
        .filter_map(|c| c.model.clone())
        .collect();
    models.sort();
    models.dedup();
    run.models = models;
    run.report = serde_json::to_value(&report).ok();
    if let Err(e) = gw.store.finish_run(&run).await {
        tracing::error!(run = %run.id, "cannot record the end of an evaluation run: {e}");
    }
    if run.trigger == "scheduled" {
        check_regression(gw, &run).await;
    }
    tracing::info!(run = %run.id, use_case = %run.use_case_id, suite = %run.suite, cases = s.cases, passed = s.passed, "evaluation run done");
}

/// The gateway this server runs, as the runner's target: every case is a real `/v1` request
/// with the run's evaluation key (public for the throughput benchmark).
pub struct GatewayTarget {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl GatewayTarget {
    /// A target sending to the gateway at `base` (`http://host:port`) with `key`.
    pub fn new(base: String, key: String) -> GatewayTarget {
        GatewayTarget {
            http: reqwest::Client::new(),
            base,
            key,
        }
    }

    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<(serde_json::Value, u64, Option<u64>, Option<String>), String> {
        let started = Instant::now();
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("the gateway could not be reached: {e}"))?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("x-request-id");
        let cost = header("x-tollgate-cost-usd")
            .and_then(|c| tollgate_meter::Money::parse_usd(&c).ok())
            .map(|m| m.nanos());
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| format!("the gateway's answer is not JSON: {e}"))?;
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !status.is_success() {
            return Err(format!(
                "{} {}: {}",
                status.as_u16(),
                v["error"]["code"].as_str().unwrap_or("error"),
                v["error"]["message"].as_str().unwrap_or_default()
            ));
        }
        Ok((v, latency, cost, request_id))
    }
}

impl ev::Target for GatewayTarget {
    async fn chat(&self, call: ev::ChatCall<'_>) -> std::result::Result<ev::Answer, String> {
        let messages: Vec<serde_json::Value> = call
            .messages
            .iter()
            .map(|(r, t)| serde_json::json!({"role": r.as_str(), "content": t}))
            .collect();
        let mut body = serde_json::json!({"model": call.route, "messages": messages});
        if let Some(p) = call.pattern {
            body["pattern"] = p.into();
            body["variables"] = serde_json::to_value(call.variables).unwrap_or_default();
        }
        if let Some(t) = call.params.temperature {
            body["temperature"] = t.into();
        }
        if let Some(m) = call.params.max_tokens {
            body["max_tokens"] = m.into();
        }
        if let Some(s) = call.params.seed {
            body["seed"] = s.into();
        }
        let (v, latency_ms, cost_nanos, request_id) =
            self.post("/v1/chat/completions", &body).await?;
        Ok(ev::Answer {
            text: v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            latency_ms,
            cost_nanos,
            request_id,
            model: v["model"].as_str().map(str::to_string),
        })
    }

    async fn embed(
        &self,
        route: &str,
        text: &str,
    ) -> std::result::Result<(Vec<f32>, Option<u64>), String> {
        let (v, _, cost, _) = self
            .post(
                "/v1/embeddings",
                &serde_json::json!({"model": route, "input": text}),
            )
            .await?;
        let vector = v["data"][0]["embedding"]
            .as_array()
            .ok_or("the embeddings answer has no vector")?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or("the embeddings answer has a value that is not a number")?;
        Ok((vector, cost))
    }
}

/// The versions labelled `production` now of the patterns in `used` (`triage@2` → `triage@5`);
/// `None` when the run used no pattern, or one of them has no production label.
async fn production_patterns(gw: &Control, used: &[String]) -> Result<Option<Vec<String>>> {
    use tollgate_store::PatternQueries;
    if used.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for u in used {
        let name = u.split('@').next().unwrap_or(u);
        let Ok(p) = gw.store.get_pattern(name).await else {
            return Ok(None);
        };
        let Some(v) = p.labels.get("production") else {
            return Ok(None);
        };
        out.push(format!("{name}@{v}"));
    }
    Ok(Some(out))
}

pub(crate) async fn run_view(gw: &Control, r: m::EvalRun) -> Result<RunView> {
    let mut r = r;
    if r.status == "running"
        && let Some(p) = gw.running.get(&r.id)
    {
        r.cases_done = p.done.load(Ordering::Relaxed);
        r.passed = p.passed.load(Ordering::Relaxed);
        r.failed = p.failed.load(Ordering::Relaxed);
        r.errors = p.errors.load(Ordering::Relaxed);
    }
    // The champion: the latest finished run of the same suite with the pattern versions labelled
    // `production` now (for a suite of patterns), else the latest made while the use case was in
    // production.
    let production = production_patterns(gw, &r.patterns).await?;
    let champion = match (r.status.as_str(), r.pass_rate) {
        ("done", Some(rate)) => gw
            .store
            .list_runs(&r.use_case_id, Some(&r.suite), None, 200)
            .await?
            .into_iter()
            .find(|c| {
                c.id != r.id
                    && c.status == "done"
                    && c.started_at <= r.started_at
                    && match &production {
                        // Suites of patterns name their versions by label, so the version
                        // that runs the production pattern differs from the one under test.
                        Some(prod) => &c.patterns == prod,
                        // Otherwise only a run of the same cases compares (attack L7).
                        None => c.stage == "production" && c.suite_version == r.suite_version,
                    }
            })
            .and_then(|c| {
                Some(Champion {
                    run_id: c.id,
                    pass_rate: c.pass_rate?,
                    delta: rate - c.pass_rate?,
                })
            }),
        _ => None,
    };
    let usd = |n: u64| tollgate_meter::Money::from_nanos(n).usd();
    Ok(RunView {
        id: r.id,
        use_case_id: r.use_case_id,
        suite: r.suite,
        suite_version: r.suite_version,
        stage: r.stage,
        trigger: r.trigger,
        status: r.status,
        started_at: tollgate_types::time::rfc3339(r.started_at),
        finished_at: r.finished_at.map(tollgate_types::time::rfc3339),
        created_by: r.created_by,
        cases_total: r.cases_total,
        cases_done: r.cases_done,
        passed: r.passed,
        failed: r.failed,
        errors: r.errors,
        pass_rate: r.pass_rate,
        threshold: r.threshold,
        passed_threshold: r.passed_threshold,
        cost_usd: usd(r.cost_nano_usd),
        scoring_cost_usd: usd(r.scoring_cost_nano_usd),
        routes: r.routes,
        models: r.models,
        patterns: r.patterns,
        champion,
        error: r.error,
        report: r.report,
    })
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/eval-runs", tag = "evaluations",
    params(("id" = String, Path), RunFilter),
    responses((status = 200, body = Vec<RunView>), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// A use case's runs, newest first, without their reports.
pub async fn list_runs(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<RunView>>> {
    let limit = page_limit(&q, 50)?;
    let uc = readable_use_case(&gw, &p, &id).await?;
    let before = q.get("before");
    let suite = filter_param(&q, "suite")?;
    let runs = gw
        .store
        .list_runs(&uc.id, suite, before.map(String::as_str), limit)
        .await;
    let mut out = Vec::new();
    for r in paged(before, runs)? {
        out.push(run_view(&gw, r).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/admin/v1/eval-runs/{run_id}", tag = "evaluations",
    params(("run_id" = String, Path)),
    responses((status = 200, body = RunView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One run: its progress while it runs; its totals, the champion it is compared with and its
/// full report when done.
pub async fn get_run(
    State(gw): Gw,
    p: Principal,
    Path(run_id): Path<String>,
) -> Result<Json<RunView>> {
    let r = gw.store.get_run(&run_id).await.map_err(|e| match e {
        m::StoreError::NotFound(_) => ApiError::Missing(format!("run {run_id}")),
        e => e.into(),
    })?;
    if !p.can_read(&r.pod_id) {
        return Err(ApiError::Missing(format!("run {run_id}")));
    }
    Ok(Json(run_view(&gw, r).await?))
}

/// `POST /use-cases/{id}/fairness-runs`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartFairness {
    /// The probe: `route`, `prompts` (with `{{ name }}` or attribute words), and optionally
    /// `system`, `params` (`temperature`, `max_tokens`), `samples` (2–50, default 10),
    /// `attributes` (default: all in the lists), `thresholds`, `seed`.
    #[schema(value_type = Object)]
    pub probe: serde_json::Value,
    /// Calls in flight at once (1–64, default 8).
    #[schema(minimum = 1, maximum = 64)]
    pub concurrency: Option<u64>,
}

/// A fairness run as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FairnessRunView {
    /// `fair_…`.
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: Option<String>,
    /// Who started it.
    pub created_by: String,
    /// The route probed.
    pub route: String,
    /// The policy in force when it ran.
    pub policy: String,
    /// SHA-256 of the prompt set.
    pub prompt_set_hash: String,
    /// Calls to make.
    pub calls_total: u64,
    /// Calls made so far.
    pub calls_done: u64,
    /// Whether a gap was flagged, when done.
    pub flagged: Option<bool>,
    /// The models that answered.
    pub models: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The probe (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub probe: Option<serde_json::Value>,
    /// The report, when done (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

/// The word lists, names and lexicon the probe uses: the data directory's `fairness/*.yaml`
/// where present (an organization's edits), else the ones shipped with the binary.
fn lexicon(gw: &Control) -> Result<ev::fairness::Lexicon> {
    let dir = gw.data_dir.join("fairness");
    let read = |name: &str, builtin: &'static str| -> Result<String> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(builtin.to_string()),
            Err(e) => Err(ApiError::Conflict {
                message: format!("cannot read {}: {e}", path.display()),
                code: "fairness_lists_unreadable",
            }),
        }
    };
    let attributes = read("attributes.yaml", ev::fairness::ATTRIBUTES_YAML)?;
    let names = read("names.yaml", ev::fairness::NAMES_YAML)?;
    let sentiment = read("sentiment.yaml", ev::fairness::SENTIMENT_YAML)?;
    ev::fairness::Lexicon::from_yaml(&attributes, &names, &sentiment).map_err(|e| {
        ApiError::Conflict {
            message: format!("the fairness lists in {} are not valid: {e}", dir.display()),
            code: "fairness_lists_invalid",
        }
    })
}

/// The policy governing the use case now, as records name it (`use_case@3`, `default@2`,
/// `builtin`).
async fn policy_label(gw: &Control, use_case_id: &str) -> Result<String> {
    Ok(match crate::policies::in_force(gw, use_case_id).await? {
        (source, Some(v)) => format!("{source}@{}", v.version),
        (source, None) => source.to_string(),
    })
}

fn fairness_view(gw: &Control, r: m::FairnessRun, full: bool) -> FairnessRunView {
    let calls_done = match (r.status.as_str(), gw.running.get(&r.id)) {
        ("running", Some(p)) => p.done.load(Ordering::Relaxed),
        ("done", _) => r.calls_total,
        _ => r
            .report
            .as_ref()
            .and_then(|rep| rep["calls"].as_u64())
            .unwrap_or(0),
    };
    FairnessRunView {
        id: r.id,
        use_case_id: r.use_case_id,
        status: r.status,
        started_at: tollgate_types::time::rfc3339(r.started_at),
        finished_at: r.finished_at.map(tollgate_types::time::rfc3339),
        created_by: r.created_by,
        route: r.route,
        policy: r.policy,
        prompt_set_hash: r.prompt_set_hash,
        calls_total: r.calls_total,
        calls_done,
        flagged: r.flagged,
        models: r.models,
        error: r.error,
        probe: full.then_some(r.probe),
        report: if full { r.report } else { None },
    }
}

#[utoipa::path(post, path = "/admin/v1/use-cases/{id}/fairness-runs", tag = "evaluations",
    params(("id" = String, Path)), request_body = StartFairness,
    responses((status = 202, body = FairnessRunView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
/// Starts a counterfactual fairness probe of a use case (pod leads, builders and domain
/// experts): every variant of every prompt is sent `samples` times through the gateway as an
/// evaluation; the report (gaps per group pair with bootstrap intervals against the noise
/// baseline, flags) is stored with the prompt set's hash, the models and the policy in force.
pub async fn start_fairness(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<(StatusCode, Json<FairnessRunView>)> {
    let uc = evaluated_use_case(&gw, &p, &id).await?;
    let req: StartFairness = body(&gw, &headers, b).await?;
    let concurrency = concurrency(req.concurrency)?;
    let lex = lexicon(&gw)?;
    let probe = ev::fairness::Probe::from_document(&req.probe, &lex).map_err(|e| {
        let param = e.problems.first().map(|p| format!("probe.{}", p.path));
        ApiError::invalid(e.to_string(), param)
    })?;
    if !uc.routes.contains(&probe.route) {
        return Err(ApiError::invalid(
            format!(
                "no route `{}` the use case may call (its routes: {})",
                probe.route,
                uc.routes.join(", ")
            ),
            Some("probe.route".into()),
        ));
    }
    if uc.stage == m::Stage::Retired {
        return Err(ApiError::Conflict {
            message: format!("use case {id} is retired: it is not evaluated any more"),
            code: "use_case_retired",
        });
    }
    let (vars, _) = ev::fairness::variants(&probe, &lex);
    if vars.len() * probe.samples > ev::fairness::MAX_CALLS {
        return Err(ApiError::invalid(
            format!(
                "the probe makes {} calls (variants × samples); at most {}",
                vars.len() * probe.samples,
                ev::fairness::MAX_CALLS
            ),
            Some("probe.prompts".into()),
        ));
    }
    if vars.is_empty() {
        return Err(ApiError::invalid(
            "no prompt has a name (`{{ name }}` or a listed one) or an attribute word to vary: \
             nothing to probe",
            Some("probe.prompts".into()),
        ));
    }
    let base = ready_to_send(&gw, &uc)?;
    let actor = p.actor();
    let run = m::FairnessRun {
        id: m::new_id("fair"),
        use_case_id: uc.id.clone(),
        pod_id: uc.pod_id.clone(),
        status: "running".into(),
        started_at: gw.clock.now_ms(),
        created_by: actor.clone(),
        route: probe.route.clone(),
        policy: policy_label(&gw, &uc.id).await?,
        prompt_set_hash: ev::fairness::prompt_set_hash(&probe),
        probe: req.probe.clone(),
        calls_total: (vars.len() * probe.samples) as u64,
        ..m::FairnessRun::default()
    };
    let (progress, key, plaintext) = register(
        &gw,
        &actor,
        &uc.id,
        &run.id,
        gw.store.create_fairness_run(&actor, &run),
    )
    .await?;
    let ended = progress.clone();
    let work = {
        let gw = gw.clone();
        let run = run.clone();
        async move {
            let target = GatewayTarget::new(base, plaintext);
            let counts = progress.clone();
            let on_call = move |_: usize, _: usize| {
                counts.done.fetch_add(1, Ordering::Relaxed);
            };
            let report = ev::fairness::run(&probe, &lex, &target, concurrency, &on_call).await;
            let mut done = run;
            done.finished_at = Some(gw.clock.now_ms());
            if report.inconclusive {
                // Too many calls failed: neither flagged nor cleared.
                done.status = "failed".into();
                done.error = Some(format!(
                    "{} of {} calls failed, so the gaps mean nothing; the first: {}",
                    report.failed_calls,
                    report.calls,
                    report.first_error.as_deref().unwrap_or("?")
                ));
            } else {
                done.status = "done".into();
                done.flagged = Some(report.flagged);
            }
            done.models = report.models.clone();
            done.report = serde_json::to_value(&report).ok();
            if let Err(e) = gw.store.finish_fairness_run(&done).await {
                tracing::error!(run = %done.id, "cannot record the end of a fairness run: {e}");
            }
            tracing::info!(run = %done.id, use_case = %done.use_case_id, flagged = report.flagged, "fairness run done");
        }
    };
    let failed = run.clone();
    launch(
        &gw,
        ended,
        &run.id,
        &actor,
        key.id,
        work,
        async move |gw: Arc<Control>| {
            let mut failed = failed;
            failed.status = "failed".into();
            failed.finished_at = Some(gw.clock.now_ms());
            failed.error = Some(STOPPED_UNEXPECTEDLY.into());
            let _ = gw.store.finish_fairness_run(&failed).await;
        },
    );
    Ok((StatusCode::ACCEPTED, Json(fairness_view(&gw, run, true))))
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/fairness-runs", tag = "evaluations",
    params(("id" = String, Path), FairnessFilter),
    responses((status = 200, body = Vec<FairnessRunView>), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// A use case's fairness runs, newest first, without their reports.
pub async fn list_fairness(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<FairnessRunView>>> {
    let limit = page_limit(&q, 200)?;
    let uc = readable_use_case(&gw, &p, &id).await?;
    let before = q.get("before");
    let runs = gw
        .store
        .list_fairness_runs(&uc.id, before.map(String::as_str), limit)
        .await;
    Ok(Json(
        paged(before, runs)?
            .into_iter()
            .map(|r| fairness_view(&gw, r, false))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/admin/v1/fairness-runs/{run_id}", tag = "evaluations",
    params(("run_id" = String, Path)),
    responses((status = 200, body = FairnessRunView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One fairness run, with its probe and, when done, its report.
pub async fn get_fairness(
    State(gw): Gw,
    p: Principal,
    Path(run_id): Path<String>,
) -> Result<Json<FairnessRunView>> {
    let r = gw
        .store
        .get_fairness_run(&run_id)
        .await
        .map_err(|e| match e {
            m::StoreError::NotFound(_) => ApiError::Missing(format!("fairness run {run_id}")),
            e => e.into(),
        })?;
    if !p.can_read(&r.pod_id) {
        return Err(ApiError::Missing(format!("fairness run {run_id}")));
    }
    Ok(Json(fairness_view(&gw, r, true)))
}

/// `PUT /use-cases/{id}/eval-schedules/{suite}`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSchedule {
    /// Minutes between runs (5 to 43,200, thirty days).
    #[schema(minimum = 5, maximum = 43200)]
    pub every_minutes: i64,
    /// The drop in pass rate since the previous run that raises an alert (0–1, default 0.05).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub tolerance: Option<f64>,
}

/// A schedule as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ScheduleView {
    /// The use case.
    pub use_case_id: String,
    /// The suite (its latest version runs).
    pub suite: String,
    /// Minutes between runs.
    pub every_minutes: i64,
    /// The drop in pass rate that raises an alert.
    pub tolerance: f64,
    /// When the next run is due, RFC 3339.
    pub next_at: String,
    /// Who set it.
    pub created_by: String,
}

impl From<m::EvalSchedule> for ScheduleView {
    fn from(s: m::EvalSchedule) -> Self {
        ScheduleView {
            use_case_id: s.use_case_id,
            suite: s.suite,
            every_minutes: s.every_minutes,
            tolerance: s.tolerance,
            next_at: tollgate_types::time::rfc3339(s.next_at),
            created_by: s.created_by,
        }
    }
}

/// The drop in pass rate that raises an alert when a schedule does not say.
pub const DEFAULT_TOLERANCE: f64 = 0.05;

#[utoipa::path(put, path = "/admin/v1/use-cases/{id}/eval-schedules/{suite}", tag = "evaluations",
    params(("id" = String, Path), ("suite" = String, Path)), request_body = PutSchedule,
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Runs a suite on a cadence while the use case is in production (its pod's lead or a platform
/// admin: scheduled runs spend its eval budget). After each run, a `eval_regression` alert goes to
/// the webhooks when the pass rate is under the suite's or dropped by more than the tolerance.
pub async fn put_schedule(
    State(gw): Gw,
    p: Principal,
    Path((id, suite)): Path<(String, String)>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<ScheduleView>> {
    use tollgate_store::ScheduleQueries;
    let uc = managed_use_case(&gw, &p, &id).await?;
    let req: PutSchedule = body(&gw, &headers, b).await?;
    if !(5..=43_200).contains(&req.every_minutes) {
        return Err(ApiError::invalid(
            "`every_minutes` must be between 5 and 43200",
            Some("every_minutes".into()),
        ));
    }
    let tolerance = req.tolerance.unwrap_or(DEFAULT_TOLERANCE);
    if !(0.0..=1.0).contains(&tolerance) {
        return Err(ApiError::invalid(
            "`tolerance` must be between 0 and 1",
            Some("tolerance".into()),
        ));
    }
    suite_or_404(&gw, &uc.id, &suite, None).await?;
    let now = gw.clock.now_ms();
    let s = m::EvalSchedule {
        use_case_id: uc.id.clone(),
        suite,
        every_minutes: req.every_minutes,
        tolerance,
        next_at: now + req.every_minutes * 60_000,
        created_at: now,
        created_by: p.actor(),
    };
    gw.store.put_schedule(&p.actor(), &s).await?;
    Ok(Json(s.into()))
}

crate::dto::page!(SchedulePage, ScheduleView);

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/eval-schedules", tag = "evaluations",
    params(("id" = String, Path), ("after" = Option<String>, Query, min_length = 1, max_length = 100, description = "cursor: the `next` of an earlier page (a suite's name)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200 (default 50)")),
    responses((status = 200, body = SchedulePage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// A use case's scheduled suites, by suite name, a page at a time.
pub async fn list_schedules(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SchedulePage>> {
    use tollgate_store::ScheduleQueries;
    let after = name_cursor(&q, "a suite's name", |a| name_ok("after", a))?;
    let limit = page_limit(&q, 0)?;
    let uc = readable_use_case(&gw, &p, &id).await?;
    let page = gw
        .store
        .list_schedules(&uc.id, &PageRequest { after, limit })
        .await?;
    Ok(Json(page.into()))
}

#[utoipa::path(delete, path = "/admin/v1/use-cases/{id}/eval-schedules/{suite}", tag = "evaluations",
    params(("id" = String, Path), ("suite" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Stops running a suite on a schedule.
pub async fn delete_schedule(
    State(gw): Gw,
    p: Principal,
    Path((id, suite)): Path<(String, String)>,
) -> Result<StatusCode> {
    use tollgate_store::ScheduleQueries;
    let uc = managed_use_case(&gw, &p, &id).await?;
    gw.store
        .delete_schedule(&p.actor(), &uc.id, &suite)
        .await
        .map_err(|e| match e {
            m::StoreError::NotFound(what) => ApiError::Missing(what),
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

impl Control {
    /// Waits until run `id` (evaluation or fairness) started on this server has ended — its
    /// result recorded and its key revoked; returns at once for a run not in progress here.
    pub async fn wait_for_run(&self, id: &str) {
        let Some(p) = self.running.get(id) else {
            return;
        };
        let mut ended = p.ended.subscribe();
        let _ = ended.wait_for(|e| *e).await;
    }

    /// Starts the runs whose schedules are due (on this control plane's clock): only for use
    /// cases in production; a run that cannot start raises an `eval_schedule_failed` alert.
    /// Returns the runs started.
    pub async fn run_due(self: &Arc<Self>) -> Vec<String> {
        use tollgate_store::ScheduleQueries;
        let due = match self.store.take_due_schedules(self.clock.now_ms()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("cannot read the evaluation schedules: {e}");
                return Vec::new();
            }
        };
        let mut started = Vec::new();
        for s in due {
            match self.start_scheduled(&s).await {
                Ok(Some(id)) => started.push(id),
                Ok(None) => {}
                Err(e) => self.plane.alert(
                    "eval_schedule_failed",
                    format!(
                        "the scheduled run of suite `{}` on use case {} could not start: {e}",
                        s.suite, s.use_case_id
                    ),
                    serde_json::json!({"use_case_id": s.use_case_id, "suite": s.suite, "error": e.to_string()}),
                ),
            }
        }
        started
    }

    async fn start_scheduled(self: &Arc<Self>, s: &m::EvalSchedule) -> Result<Option<String>> {
        let uc = self.store.get_use_case(&s.use_case_id).await?;
        if uc.stage != m::Stage::Production {
            return Ok(None);
        }
        let base = ready_to_send(self, &uc)?;
        let v = suite_or_404(self, &uc.id, &s.suite, None).await?;
        let suite = checked(&v.document, &uc)?;
        let pinned = pin_patterns(self, &suite).await?;
        let run = start(
            self,
            "scheduler",
            &uc,
            v,
            pinned,
            "scheduled",
            DEFAULT_CONCURRENCY,
            base,
        )
        .await?;
        Ok(Some(run.id))
    }

    /// Starts [`Control::run_due`] every `every` (the binary's serve and demo call this).
    pub fn spawn_scheduler(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.run_due().await;
            }
        })
    }
}

/// After a scheduled run: an `eval_regression` alert when its pass rate is under the suite's, or
/// dropped by more than the schedule's tolerance since the previous finished run of the suite.
async fn check_regression(gw: &Control, run: &m::EvalRun) {
    use tollgate_store::ScheduleQueries;
    let Some(rate) = run.pass_rate else {
        return;
    };
    let tolerance = gw
        .store
        .get_schedule(&run.use_case_id, &run.suite)
        .await
        .ok()
        .flatten()
        .map_or(DEFAULT_TOLERANCE, |s| s.tolerance);
    let previous = gw
        .store
        .list_runs(&run.use_case_id, Some(&run.suite), None, 50)
        .await
        .ok()
        .and_then(|runs| {
            runs.into_iter()
                .find(|r| r.id != run.id && r.status == "done" && r.started_at <= run.started_at)
        });
    let drop = previous
        .as_ref()
        .and_then(|p| p.pass_rate)
        .map(|p| p - rate);
    let under = run.passed_threshold == Some(false);
    let dropped = drop.is_some_and(|d| d > tolerance);
    if !(under || dropped) {
        return;
    }
    let mut why = Vec::new();
    if under {
        why.push(format!(
            "its pass rate {:.1} % is under the suite's {:.1} %",
            rate * 100.0,
            run.threshold * 100.0
        ));
    }
    if let (true, Some(d)) = (dropped, drop) {
        why.push(format!(
            "it dropped {:.1} points since the previous run (tolerance {:.1})",
            d * 100.0,
            tolerance * 100.0
        ));
    }
    gw.plane.alert(
        "eval_regression",
        format!(
            "scheduled evaluation of suite `{}` on use case {}: {}",
            run.suite,
            run.use_case_id,
            why.join("; ")
        ),
        serde_json::json!({
            "use_case_id": run.use_case_id, "pod_id": run.pod_id, "suite": run.suite,
            "run": run.id, "pass_rate": rate, "threshold": run.threshold,
            "previous_run": previous.as_ref().map(|p| p.id.clone()),
            "previous_pass_rate": previous.as_ref().and_then(|p| p.pass_rate),
            "tolerance": tolerance,
        }),
    );
}
