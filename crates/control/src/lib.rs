//! The control plane: `/admin/v1`, REST over the store, described by OpenAPI 3.1 at
//! `/admin/v1/openapi.json` (generated from the handlers by utoipa).
//!
//! It depends on the store, the meter and the shared HTTP edge, never on the request pipeline.
//! When a change must reach requests (a key revoked, a budget created), it tells the data plane
//! through [`tollgate_http::DataPlane`] and answers once the snapshot is refreshed; the binary
//! composes the two routers into one server.
//!
//! One module per resource: [`pods`], [`users`], [`use_cases`], [`keys`], [`budgets`],
//! [`audit`], [`reports`] (spend, forecast, advice, and the FOCUS export with [`focus`]); the
//! role table in [`access`]; wire types in [`dto`].
//!
//! Authentication: `Authorization: Bearer <token>`, either the bootstrap admin token
//! (`TOLLGATE_ADMIN_TOKEN`; when unset, generated on first start, printed once, stored hashed) or a
//! personal token (`tgu_…`) of a user that is not disabled (its lifecycle — at most
//! [`users::MAX_TOKEN_LIFETIME_DAYS`], listed, revoked — is in [`users`]). Every route checks the
//! caller's role ([`access`]); every change is written to the audit trail by the store, in the same
//! transaction.

pub mod access;
pub mod audit;
pub mod budgets;
mod common;
pub mod dto;
pub mod evals;
pub mod focus;
pub mod gates;
pub mod keys;
pub mod kpis;
pub mod patterns;
pub mod payloads;
pub mod pods;
pub mod policies;
pub mod portfolio;
mod query;
pub mod reports;
pub mod use_cases;
pub mod users;

use access::Principal;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tollgate_http::error::ApiError;
use tollgate_http::{AuthFailure, Changed, DataPlane, bearer};
use tollgate_store::keys::KeySecret;
use tollgate_store::{AuditQueries, KeyQueries, Store, StoreError, UserQueries};
use tollgate_types::clock::Clock;
use utoipa::OpenApi;

/// Shortest `TOLLGATE_ADMIN_TOKEN` accepted at start.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 24;

/// Largest admin request body, bytes: admin objects are small, and every string field has its
/// own length limit, so a page of any list stays small too.
pub const ADMIN_MAX_BODY_BYTES: usize = 64 * 1024;

/// What every admin request shares.
pub struct Control {
    /// The store.
    pub store: Store,
    /// The server secret tokens and keys are hashed with.
    pub secret: KeySecret,
    /// The data plane, told about changes.
    pub plane: Arc<dyn DataPlane>,
    /// The built-in price catalog (cheaper candidates for the advice).
    pub catalog: tollgate_meter::Catalog,
    /// Largest body accepted, bytes.
    pub max_body_bytes: usize,
    /// The routes of the config (use cases may name only these).
    routes: HashSet<String>,
    /// Per route: the providers it can reach (its deployments and its fallbacks'), with their
    /// request quota per minute if stated — what the throughput KPI's headroom is measured
    /// against.
    pub(crate) route_providers: HashMap<String, Vec<(String, Option<u64>)>>,
    /// HMAC of the bootstrap admin token.
    admin_token_hash: String,
    /// The bootstrap admin token, only when this start generated it (to print once).
    pub new_admin_token: std::sync::Mutex<Option<String>>,
    /// Failed authentications per client address, for throttling and the log.
    failed_auth: FailedAuth,
    /// Refused payload reads audited per person and hour.
    pub(crate) denied_reads: DeniedReads,
    /// The clock reports, expiries and throttling read.
    pub clock: Clock,
    /// The master key that opens stored payloads' data keys (auditors' reads).
    pub master_key: tollgate_payload::MasterKey,
    /// Where this server's own `/v1` answers (set once it listens): where evaluation runs send
    /// their cases.
    gateway_url: std::sync::OnceLock<String>,
    /// Evaluation runs in progress on this server, with their live counts.
    pub(crate) running: evals::Running,
    /// The data directory (an organization's own fairness lists live in `fairness/`).
    pub(crate) data_dir: std::path::PathBuf,
    /// The runtime the control plane was opened on: evaluation runs go there, not onto the
    /// request thread that served the call starting them (`server.request_threads`), whose
    /// clients they would share it with and which stops with the server.
    pub(crate) background: tokio::runtime::Handle,
}

/// Failed authentications a client may make per second before it is throttled.
pub const AUTH_FAILURES_PER_SECOND: u32 = 10;

/// Failed admin authentications, counted per client address in one-second windows. Past
/// [`AUTH_FAILURES_PER_SECOND`], the client's requests answer 429 (`Retry-After: 1`) without
/// their token being checked, until the next second. Each client's first failure of a window is
/// logged (address and count, never the token); so is the start of a throttle.
#[derive(Debug, Default)]
struct FailedAuth {
    /// (the current second, failures per client in it); other seconds are forgotten.
    window: std::sync::Mutex<(
        i64,
        std::collections::HashMap<Option<std::net::IpAddr>, u32>,
    )>,
    /// Failures since start.
    total: std::sync::atomic::AtomicU64,
}

impl FailedAuth {
    fn count(&self, client: Option<std::net::IpAddr>, now_ms: i64, add: u32) -> u32 {
        let second = now_ms.div_euclid(1000);
        let Ok(mut w) = self.window.lock() else {
            return 0;
        };
        if w.0 != second {
            *w = (second, std::collections::HashMap::new());
        }
        if add == 0 {
            return w.1.get(&client).copied().unwrap_or(0);
        }
        let n = w.1.entry(client).or_insert(0);
        *n += add;
        *n
    }

    /// 429 when `client` is over its budget this second.
    fn check(&self, client: Option<std::net::IpAddr>, now_ms: i64) -> Result<(), ApiError> {
        if self.count(client, now_ms, 0) >= AUTH_FAILURES_PER_SECOND {
            return Err(throttled());
        }
        Ok(())
    }

    /// Counts a failure and returns what to answer: 401, or 429 once over the budget.
    fn failed(&self, client: Option<std::net::IpAddr>, now_ms: i64) -> ApiError {
        let total = self
            .total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let n = self.count(client, now_ms, 1);
        let from = client.map(|c| c.to_string()).unwrap_or_default();
        if n == 1 {
            tracing::warn!(client = %from, total, "admin authentication failed: unknown, expired or revoked token");
        }
        if n == AUTH_FAILURES_PER_SECOND {
            tracing::warn!(client = %from, failures = n, "admin authentication throttled: too many failures this second");
        }
        ApiError::InvalidKey
    }

    /// Failed authentications since start.
    fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Refused payload reads one person may add to the audit trail per clock hour. A refused read is
/// worth an entry, but anyone who can see a record can ask for its payload: without a bound, a
/// pod viewer could grow the audit trail (and its chain) without end.
pub const DENIED_READS_AUDITED_PER_HOUR: u32 = 10;

/// Counts refused payload reads per person in the current clock hour (other hours forgotten).
#[derive(Debug, Default)]
pub(crate) struct DeniedReads {
    window: std::sync::Mutex<(i64, std::collections::HashMap<String, u32>)>,
}

impl DeniedReads {
    /// Counts one refusal of `actor`'s: whether it is to be audited (the first
    /// [`DENIED_READS_AUDITED_PER_HOUR`] of the hour are; the moment the bound is reached is
    /// logged, with the actor and never a record's content).
    pub(crate) fn audit(&self, actor: &str, now_ms: i64) -> bool {
        let hour = now_ms.div_euclid(3_600_000);
        let Ok(mut w) = self.window.lock() else {
            return true;
        };
        if w.0 != hour {
            *w = (hour, std::collections::HashMap::new());
        }
        let n = w.1.entry(actor.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        if *n == DENIED_READS_AUDITED_PER_HOUR + 1 {
            tracing::warn!(
                actor,
                limit = DENIED_READS_AUDITED_PER_HOUR,
                "refused payload reads: the rest of this hour's are not audited"
            );
        }
        *n <= DENIED_READS_AUDITED_PER_HOUR
    }
}

fn throttled() -> ApiError {
    ApiError::RateLimited {
        message: "too many failed authentications from this address; try again in a second".into(),
        code: "too_many_failed_authentications",
        retry_after: Some(std::time::Duration::from_secs(1)),
        limit: None,
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The store failed.
    #[error("cannot open the control plane's store: {0}")]
    Store(#[from] StoreError),
    /// `TOLLGATE_ADMIN_TOKEN` is too short to resist guessing.
    #[error(
        "TOLLGATE_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters (generate one with `openssl rand -base64 32`, or unset it and Tollgate generates one)"
    )]
    WeakAdminToken,
    /// The built-in catalog is unreadable.
    #[error("the built-in price catalog is unreadable: {0}")]
    Catalog(String),
    /// The payloads' master key cannot be loaded.
    #[error(transparent)]
    MasterKey(#[from] tollgate_payload::PayloadError),
}

impl Control {
    /// Tells the control plane where the gateway it sits beside listens (`0.0.0.0` and `[::]`
    /// are reached on loopback), so evaluation runs can send their cases through it. Only the
    /// first call counts.
    pub fn set_gateway_address(&self, addr: std::net::SocketAddr) {
        let ip = match addr.ip() {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            }
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
                std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            }
            ip => ip,
        };
        let _ = self.gateway_url.set(format!(
            "http://{}",
            std::net::SocketAddr::new(ip, addr.port())
        ));
    }

    /// Where the gateway answers, once known.
    pub fn gateway_url(&self) -> Option<String> {
        self.gateway_url.get().cloned()
    }

    /// The control plane over `store` for `config`, telling `plane` about changes. Sets up the
    /// bootstrap admin token (see [`bootstrap_token`]).
    pub async fn new(
        config: &tollgate_config::Config,
        store: Store,
        secret: KeySecret,
        plane: Arc<dyn DataPlane>,
    ) -> Result<Arc<Control>, ControlError> {
        Self::new_with_clock(config, store, secret, plane, Clock::system()).await
    }

    /// [`Control::new`] reading `clock` (the data plane's, so both planes see one time).
    pub async fn new_with_clock(
        config: &tollgate_config::Config,
        store: Store,
        secret: KeySecret,
        plane: Arc<dyn DataPlane>,
        clock: Clock,
    ) -> Result<Arc<Control>, ControlError> {
        let (admin_token_hash, new_admin_token) = bootstrap_token(&store, &secret).await?;
        // Runs a stopped server left behind will not finish: record them as failed.
        match tollgate_store::EvalQueries::fail_interrupted_runs(&store, clock.now_ms()).await {
            Ok(n) => {
                if n > 0 {
                    tracing::warn!(
                        runs = n,
                        "evaluation runs interrupted by a stop were marked failed"
                    );
                }
                // Their evaluation keys were revoked: the data plane must stop taking them now.
                if let Err(e) = plane.refresh(tollgate_http::Changed::Keys).await {
                    tracing::warn!("cannot reload the keys after revoking evaluation keys: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot check for interrupted evaluation runs: {e}"),
        }
        let catalog =
            tollgate_meter::Catalog::builtin().map_err(|e| ControlError::Catalog(e.to_string()))?;
        Ok(Arc::new(Control {
            background: tokio::runtime::Handle::current(),
            store,
            secret,
            plane,
            catalog,
            max_body_bytes: config.server.max_body_bytes.min(ADMIN_MAX_BODY_BYTES),
            routes: config.routes.iter().map(|r| r.name.clone()).collect(),
            route_providers: config
                .routes
                .iter()
                .map(|r| {
                    let mut reach: Vec<(String, Option<u64>)> = Vec::new();
                    for d in std::iter::once(r)
                        .chain(r.fallbacks.iter().map(|&f| &config.routes[f]))
                        .flat_map(|r| &r.deployments)
                    {
                        let p = &config.providers[d.provider];
                        if !reach.iter().any(|(n, _)| *n == p.name) {
                            reach.push((p.name.clone(), p.quota_requests_per_minute));
                        }
                    }
                    (r.name.clone(), reach)
                })
                .collect(),
            admin_token_hash,
            new_admin_token: std::sync::Mutex::new(new_admin_token),
            failed_auth: FailedAuth::default(),
            denied_reads: DeniedReads::default(),
            clock,
            master_key: tollgate_payload::MasterKey::load(&config.audit.master_key_file)?,
            gateway_url: std::sync::OnceLock::new(),
            running: evals::Running::default(),
            data_dir: config.server.data_dir.clone(),
        }))
    }

    /// Failed admin authentications since start.
    pub fn failed_authentications(&self) -> u64 {
        self.failed_auth.total()
    }

    /// Whether the config has a route named `name`.
    pub fn has_route(&self, name: &str) -> bool {
        self.routes.contains(name)
    }

    /// The bootstrap admin token, if this start generated it; `None` after the first call.
    pub fn take_new_admin_token(&self) -> Option<String> {
        self.new_admin_token.lock().ok().and_then(|mut t| t.take())
    }

    /// Tells the data plane that `changed` changed. A failed refresh is not the caller's error:
    /// the data plane also refreshes on its own timer.
    pub(crate) async fn changed(&self, changed: Changed) {
        if let Err(e) = self.plane.refresh(changed.clone()).await {
            tracing::warn!(error = %e, ?changed, "the data plane could not refresh its snapshot; it retries on its timer");
        }
    }
}

/// The OpenAPI document of the admin API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate admin API", description = "Pods, users, use cases, stages and virtual keys."),
    paths(
        users::me,
        pods::list_pods, pods::create_pod, pods::get_pod, pods::update_pod,
        pods::list_members, pods::set_member, pods::remove_member,
        users::list_users, users::create_user, users::get_user, users::update_user,
        users::create_token, users::list_tokens, users::revoke_token,
        use_cases::list_use_cases, use_cases::create_use_case, use_cases::get_use_case, use_cases::update_use_case,
        use_cases::change_stage, use_cases::list_stage_changes,
        keys::list_keys, keys::create_key, keys::get_key, keys::revoke_key, keys::rotate_key,
        audit::list_audit,
        budgets::list_budgets, budgets::create_budget, budgets::get_budget, budgets::delete_budget,
        reports::spend_report, reports::focus_export, reports::forecast, reports::advice, kpis::kpis, portfolio::portfolio,
        policies::get_default_policy, policies::put_default_policy, policies::default_policy_versions,
        policies::get_use_case_policy, policies::put_use_case_policy, policies::delete_use_case_policy,
        policies::use_case_policy_versions,
        payloads::read_payload, payloads::erase_end_user,
        evals::put_suite, evals::list_suites, evals::get_suite,
        evals::start_run, evals::list_runs, evals::get_run,
        evals::start_fairness, evals::list_fairness, evals::get_fairness,
        evals::put_schedule, evals::list_schedules, evals::delete_schedule,
        patterns::list_patterns, patterns::create_pattern, patterns::get_pattern,
        patterns::create_version, patterns::move_label,
        gates::get_gates, gates::put_gates, gates::get_gate, gates::request_promotion, gates::withdraw_promotion, gates::approve,
    ),
    modifiers(&BearerAuth, &CommonResponses),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Answers any operation may give besides its own: 400 for a query parameter it does not take,
/// 429 while the client is throttled for failed authentications (whatever its token), 500 for
/// an internal error (`store_error`, `internal`: the details in the server's log), 503 while the
/// database is unavailable (`store_unavailable`), and, where a body goes, 413 for one over the
/// limit and 415 for one not declared as JSON.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorResponse")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let body = op.request_body.is_some();
                let r = &mut op.responses.responses;
                r.entry("429".into()).or_insert_with(|| {
                    error("too many failed authentications from this address: retry after a second").into()
                });
                r.entry("400".into()).or_insert_with(|| {
                    error("a query parameter the operation does not take, or one given twice")
                        .into()
                });
                r.entry("500".into()).or_insert_with(|| {
                    error("an internal error (`store_error`, `internal`); the details are in the server's log, never in the answer").into()
                });
                r.entry("503".into()).or_insert_with(|| {
                    error("the database is unavailable (`store_unavailable`): retry later").into()
                });
                if body {
                    r.entry("413".into())
                        .or_insert_with(|| error("the body is larger than the limit").into());
                    r.entry("415".into()).or_insert_with(|| {
                        error("the body is not declared as JSON (`content-type: application/json`)")
                            .into()
                    });
                }
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

async fn openapi(
    axum::extract::State(gw): axum::extract::State<Arc<Control>>,
    _: Principal,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        served_openapi_json(&gw.routes),
    )
        .into_response()
}

/// The document as this instance serves it: route names come from its config, so the fields
/// that take them (a use case's `routes`, a key's `scopes`) list them.
pub fn served_openapi_json(routes: &HashSet<String>) -> String {
    let Ok(mut doc) = serde_json::to_value(ApiDoc::openapi()) else {
        return openapi_json();
    };
    let mut names: Vec<&String> = routes.iter().collect();
    names.sort();
    if !names.is_empty() {
        let schemas = &mut doc["components"]["schemas"];
        for (schema, field) in [
            ("CreateUseCase", "routes"),
            ("UpdateUseCase", "routes"),
            ("CreateKey", "scopes"),
        ] {
            if let Some(items) = schemas[schema]["properties"][field].get_mut("items") {
                items["enum"] = serde_json::json!(names);
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| openapi_json())
}

/// The `/admin/v1` routes, ready to be served (or merged beside the data plane's).
pub fn router(control: Arc<Control>) -> Router {
    use audit::*;
    use budgets::*;
    use keys::*;
    use payloads::*;
    use pods::*;
    use policies::*;
    use reports::*;
    use use_cases::*;
    use users::*;
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/me", get(me))
        .route("/admin/v1/pods", get(list_pods).post(create_pod))
        .route("/admin/v1/pods/{id}", get(get_pod).patch(update_pod))
        .route("/admin/v1/pods/{id}/members", get(list_members))
        .route(
            "/admin/v1/pods/{id}/members/{user_id}",
            put(set_member).delete(remove_member),
        )
        .route("/admin/v1/users", get(list_users).post(create_user))
        .route("/admin/v1/users/{id}", get(get_user).patch(update_user))
        .route(
            "/admin/v1/users/{id}/tokens",
            get(list_tokens).post(create_token),
        )
        .route(
            "/admin/v1/users/{id}/tokens/{token_id}/revoke",
            post(revoke_token),
        )
        .route(
            "/admin/v1/use-cases",
            get(list_use_cases).post(create_use_case),
        )
        .route(
            "/admin/v1/use-cases/{id}",
            get(get_use_case).patch(update_use_case),
        )
        .route("/admin/v1/use-cases/{id}/stage", post(change_stage))
        .route(
            "/admin/v1/use-cases/{id}/stage-changes",
            get(list_stage_changes),
        )
        .route("/admin/v1/keys", get(list_keys).post(create_key))
        .route("/admin/v1/keys/{id}", get(get_key))
        .route("/admin/v1/keys/{id}/revoke", post(revoke_key))
        .route("/admin/v1/keys/{id}/rotate", post(rotate_key))
        .route("/admin/v1/audit", get(list_audit))
        .route("/admin/v1/budgets", get(list_budgets).post(create_budget))
        .route(
            "/admin/v1/budgets/{id}",
            get(get_budget).delete(delete_budget),
        )
        .route("/admin/v1/reports/spend", get(spend_report))
        .route("/admin/v1/kpis", get(kpis::kpis))
        .route("/admin/v1/portfolio", get(portfolio::portfolio))
        .route("/admin/v1/reports/focus", get(focus_export))
        .route("/admin/v1/reports/forecast", get(forecast))
        .route("/admin/v1/reports/advice", get(advice))
        .route(
            "/admin/v1/policies/default",
            get(get_default_policy).put(put_default_policy),
        )
        .route(
            "/admin/v1/policies/default/versions",
            get(default_policy_versions),
        )
        .route(
            "/admin/v1/use-cases/{id}/policy",
            get(get_use_case_policy)
                .put(put_use_case_policy)
                .delete(delete_use_case_policy),
        )
        .route(
            "/admin/v1/use-cases/{id}/policy/versions",
            get(use_case_policy_versions),
        )
        .route("/admin/v1/payloads/{record_id}/read", post(read_payload))
        .route("/admin/v1/erasure", post(erase_end_user))
        .route("/admin/v1/use-cases/{id}/suites", get(evals::list_suites))
        .route(
            "/admin/v1/use-cases/{id}/suites/{name}",
            get(evals::get_suite).put(evals::put_suite),
        )
        .route(
            "/admin/v1/use-cases/{id}/eval-runs",
            get(evals::list_runs).post(evals::start_run),
        )
        .route("/admin/v1/eval-runs/{run_id}", get(evals::get_run))
        .route(
            "/admin/v1/use-cases/{id}/fairness-runs",
            get(evals::list_fairness).post(evals::start_fairness),
        )
        .route("/admin/v1/fairness-runs/{run_id}", get(evals::get_fairness))
        .route(
            "/admin/v1/use-cases/{id}/eval-schedules",
            get(evals::list_schedules),
        )
        .route(
            "/admin/v1/use-cases/{id}/eval-schedules/{suite}",
            put(evals::put_schedule).delete(evals::delete_schedule),
        )
        .route(
            "/admin/v1/gates",
            get(gates::get_gates).put(gates::put_gates),
        )
        .route("/admin/v1/use-cases/{id}/gate", get(gates::get_gate))
        .route(
            "/admin/v1/use-cases/{id}/promotion-requests",
            post(gates::request_promotion).delete(gates::withdraw_promotion),
        )
        .route("/admin/v1/use-cases/{id}/approvals", post(gates::approve))
        .route(
            "/admin/v1/patterns",
            get(patterns::list_patterns).post(patterns::create_pattern),
        )
        .route("/admin/v1/patterns/{name}", get(patterns::get_pattern))
        .route(
            "/admin/v1/patterns/{name}/versions",
            post(patterns::create_version),
        )
        .route(
            "/admin/v1/patterns/{name}/labels/{label}",
            put(patterns::move_label),
        )
        .with_state(control)
}

impl FromRequestParts<Arc<Control>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Control>,
    ) -> Result<Self, Self::Rejection> {
        let who = authenticate(parts, gw).await?;
        // Only a caller who may use the API learns which query parameters an operation takes.
        query::check(&parts.method, &parts.uri)?;
        Ok(who)
    }
}

/// The caller of an admin request, from its bearer token (the bootstrap admin token or a
/// person's token), throttled per client address after failures.
async fn authenticate(parts: &Parts, gw: &Arc<Control>) -> Result<Principal, ApiError> {
    let token = bearer(&parts.headers)?;
    // A client over its failure budget is refused before its token is even checked, so
    // guessing cannot go faster than the budget allows, right guesses included.
    let client = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let now = gw.clock.now_ms();
    if let Err(e) = gw.failed_auth.check(client, now) {
        gw.plane.admin_auth_failed(AuthFailure::Throttled);
        return Err(e);
    }
    let hash = gw.secret.hash(token);
    if hash == gw.admin_token_hash {
        return Ok(Principal::Admin);
    }
    let Some(t) = gw.store.token_by_hash(&hash, now).await? else {
        gw.plane.admin_auth_failed(AuthFailure::Rejected);
        return Err(gw.failed_auth.failed(client, now));
    };
    let user = gw.store.get_user(&t.user_id).await?;
    if user.disabled_at.is_some() {
        gw.plane.admin_auth_failed(AuthFailure::Rejected);
        return Err(gw.failed_auth.failed(client, now));
    }
    let pods = gw
        .store
        .memberships_of(&user.id)
        .await?
        .into_iter()
        .map(|m| (m.pod_id, m.role))
        .collect();
    Ok(Principal::User {
        id: user.id,
        org_role: user.org_role,
        pods,
        token_id: t.id,
        token_expires_at: t.expires_at,
    })
}

/// The bootstrap admin token's hash: from `TOLLGATE_ADMIN_TOKEN`, else the one stored on an
/// earlier start, else a new one. Returns the hash and, only when it was just generated, the token.
pub async fn bootstrap_token(
    store: &tollgate_store::Store,
    secret: &KeySecret,
) -> Result<(String, Option<String>), ControlError> {
    if let Ok(t) = std::env::var("TOLLGATE_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        let t = t.trim();
        if t.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            return Err(ControlError::WeakAdminToken);
        }
        return Ok((secret.hash(t), None));
    }
    if let Some(h) = store.get_setting("admin_token_hmac").await? {
        return Ok((h, None));
    }
    let k = tollgate_store::keys::generate(secret, "tga");
    let stored = store.init_setting("admin_token_hmac", &k.hash).await?;
    if stored == k.hash {
        store
            .append_audit(
                "system",
                "admin_token.generate",
                "settings",
                "admin_token_hmac",
                serde_json::json!({"prefix": k.prefix}),
            )
            .await?;
        Ok((stored, Some(k.plaintext)))
    } else {
        // Another instance generated it first; it printed it.
        Ok((stored, None))
    }
}
