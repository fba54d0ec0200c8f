//! The Tollgate gateway: the governed request pipeline and the HTTP server around it.
//!
//! - [`Gateway`] holds what every request shares: the validated config, one provider and one
//!   pooled HTTP client per configured provider, the key table, metrics, and the tracker of
//!   background tasks (stream relays) that shutdown waits for.
//! - [`router`] builds the axum app: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`,
//!   `/healthz`, `/readyz`, `/metrics`, behind tower-http layers for the request id and panics;
//!   [`router_with`] serves other routes beside them (the binary adds the control plane's).
//! - `Gateway` implements [`tollgate_http::DataPlane`]: the control plane tells it through that
//!   interface when keys or budgets changed, and never holds the gateway itself.
//! - [`pipeline`] is the recipe of one governed request, step by step.
//! - [`serve`] runs the app on a listener with a graceful shutdown; [`server`] is its accept loop
//!   (connection limit, request-head and body timeouts, `TCP_NODELAY`, the client's address).
//!
//! ```no_run
//! # async fn run(cfg: tollgate_config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let gw = tollgate_gateway::Gateway::open(cfg).await?;
//! let listener = tokio::net::TcpListener::bind(gw.config.server.listen).await?;
//! tollgate_gateway::serve(gw, axum::Router::new(), listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod admit;
pub mod alerts;
pub mod answer_walk;
pub mod auth;
pub mod budgets;
pub mod checkpoints;
pub mod context;
pub mod feedback;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod patterns;
pub mod payloads;
pub mod pipeline;
pub mod policies;
pub mod record;
pub mod relay;
pub mod routing;
pub mod server;
pub mod settle;
pub mod shield;
pub mod slo;
pub mod traces;
pub mod vault;

pub use tollgate_http::{error, extract};
pub use tollgate_store::keys;

use axum::Router;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::task::TaskTracker;
use tollgate_config::Config;
use tollgate_providers::ProviderError;
use tollgate_types::clock::Clock;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An HTTP client could not be created.
    #[error("cannot create the HTTP client for provider {provider}: {source}")]
    Client {
        /// Provider name.
        provider: String,
        /// Why.
        source: ProviderError,
    },
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] tollgate_store::StoreError),
    /// The key secret could not be loaded.
    #[error(transparent)]
    Secret(#[from] keys::SecretError),
    /// A price in the config is wrong, or the built-in catalog is unreadable.
    #[error("invalid prices:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Prices(Vec<tollgate_config::Problem>),
    /// The payloads' master key cannot be loaded.
    #[error(transparent)]
    Payload(#[from] tollgate_payload::PayloadError),
    /// The audit chain's signing key cannot be loaded.
    #[error(transparent)]
    Audit(#[from] tollgate_audit::AuditError),
    /// The OTLP exporter cannot be built.
    #[error(transparent)]
    Traces(#[from] traces::TracesError),
}

/// Everything requests share: the composition root of the data plane. Each pipeline step is a
/// part of its own that holds only what the step needs — [`auth::Keyring`] (authenticate),
/// [`admit::Gate`] (admit), [`routing::Upstreams`] (route), [`settle::Books`] (settle and record) —
/// Outcome events the feedback queue holds before `POST /v1/feedback` answers 503.
pub const OUTCOME_QUEUE: usize = 65_536;
/// Outcome events per write.
pub const OUTCOME_BATCH: usize = 2_048;
/// The longest a report waits for the records and events queued before it to be written (see
/// [`tollgate_http::DataPlane::settled`]); past it, the report reads what the store has.
const SETTLE_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// and the gateway wires them together.
#[derive(Debug)]
pub struct Gateway {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The store (organization, use cases, keys).
    pub store: tollgate_store::Store,
    /// Step 1: the in-memory snapshot of active keys.
    pub keyring: Arc<auth::Keyring>,
    /// Fingerprints of request content, keyed with the server secret.
    pub prompts: keys::PromptHasher,
    /// Step 3: stage and pilot caps, rate limits, budgets.
    pub gate: admit::Gate,
    /// Between steps 3 and 4, and in 5: the policies in force.
    pub policies: Arc<policies::PolicyBook>,
    /// Step 2: the patterns requests may be built from.
    pub patterns: Arc<patterns::PatternBook>,
    /// Signs the audit chain's checkpoints.
    pub checkpoints: Arc<checkpoints::Checkpointer>,
    /// The conversations' reversible tokens.
    pub vault: Arc<vault::Vault>,
    /// The organization's key of the guard's `hash` action (derived from the server secret: the
    /// same value hashes alike across restarts and instances). Each use case hashes under its own
    /// key derived from this one (`tollgate_guard::policy::scoped_key`).
    pub guard_key: Arc<[u8]>,
    /// Step 4: the providers and their HTTP clients.
    pub upstreams: routing::Upstreams,
    /// Step 6: prices, alerts and the ledger.
    pub books: Arc<settle::Books>,
    /// The writer of outcome and feedback events (`POST /v1/feedback`).
    pub outcomes: tollgate_ledger::outcomes::OutcomeWriter,
    /// Metrics registry.
    pub metrics: Arc<metrics::Metrics>,
    /// Background tasks (stream relays) that shutdown waits for.
    pub tasks: TaskTracker,
    /// The one clock every part of the data plane reads.
    pub clock: Clock,
    /// Unix time of start (the `created` of `/v1/models`).
    pub started_unix: u64,
    /// Where heavy requests take turns for their CPU work (see [`context::HeavyLane`]).
    pub heavy: context::HeavyLane,
    ready: AtomicBool,
}

impl Gateway {
    /// Opens the store in `server.data_dir` (creating and migrating it), loads the key secret, and
    /// builds the gateway.
    pub async fn open(config: Config) -> Result<Arc<Gateway>, GatewayError> {
        Self::open_with_clock(config, Clock::system()).await
    }

    /// [`Gateway::open`] reading `clock` for every time it needs (tests set a manual clock to
    /// check minute, day and month boundaries on purpose).
    pub async fn open_with_clock(
        config: Config,
        clock: Clock,
    ) -> Result<Arc<Gateway>, GatewayError> {
        let dir = config.server.data_dir.clone();
        let store = tollgate_store::Store::open(&dir.join("tollgate.db")).await?;
        let secret = keys::KeySecret::load(&dir)?;
        Self::new(config, store, secret, clock).await
    }

    /// Builds a gateway for `config` on an open store.
    pub async fn new(
        config: Config,
        store: tollgate_store::Store,
        secret: keys::KeySecret,
        clock: Clock,
    ) -> Result<Arc<Gateway>, GatewayError> {
        let config = Arc::new(config);
        let metrics = Arc::new(metrics::Metrics::new());
        let upstreams = routing::Upstreams::new(config.clone(), metrics.clone())?;
        let catalog = tollgate_meter::Catalog::builtin().map_err(|e| {
            GatewayError::Prices(vec![tollgate_config::Problem {
                path: "(built-in catalog)".into(),
                message: e.to_string(),
            }])
        })?;
        let meter = Arc::new(
            tollgate_meter::Meter::from_config(&config, catalog).map_err(GatewayError::Prices)?,
        );
        for (r, d) in meter.unpriced() {
            let route = &config.routes[r];
            tracing::warn!(route = %route.name, model = %route.deployments[d].model, "no price for this deployment: its requests are served but flagged unpriced; add `price:` to the deployment");
        }
        let points: Vec<tollgate_store::PricePointRow> = meter
            .price_points()
            .into_iter()
            .map(|p| tollgate_store::PricePointRow {
                id: p.id.clone(),
                provider: p.provider.clone(),
                provider_kind: p.provider_kind.clone(),
                publisher: p.publisher.clone(),
                model: p.model.clone(),
                source: p.source.clone(),
                currency: "USD".into(),
                contracted: p.contracted.map(|c| c.by_kind()),
                list: p.list.map(|c| c.by_kind()),
            })
            .collect();
        // The ledger names these by id; the FOCUS export reads the prices from them.
        tollgate_store::LedgerQueries::save_price_points(&store, &points).await?;
        let prompts = secret.prompt_hasher();
        let guard_key: Arc<[u8]> = Arc::from(secret.hash("tollgate guard hash v1").into_bytes());
        let policy_book = Arc::new(policies::PolicyBook::new(store.clone()));
        if let Err(e) = policy_book.reload().await {
            tracing::warn!(error = %e, "cannot load policies at start; the built-in default applies until the database answers");
        }
        let pattern_book = Arc::new(patterns::PatternBook::new(store.clone()));
        if let Err(e) = pattern_book.reload().await {
            tracing::warn!(error = %e, "cannot load patterns at start; requests naming one are refused until the database answers");
        }
        let keyring = auth::Keyring::load(store.clone(), secret, clock.clone()).await;
        let alert_http = tollgate_providers::http_client(std::time::Duration::from_secs(5))
            .map_err(|source| GatewayError::Client {
                provider: "alerts".into(),
                source,
            })?;
        let alerts = alerts::Alerter::start(config.webhooks.clone(), alert_http, clock.clone());
        let budgeter = budgets::Budgeter::new(store.clone(), alerts.clone(), clock.clone());
        let slo = Arc::new(slo::SloTracker::new(
            store.clone(),
            alerts.clone(),
            clock.clone(),
        ));
        if let Err(e) = budgeter.reload().await {
            tracing::warn!(error = %e, "cannot load budgets at start; retrying with the key refresh");
        }
        let ledger = tollgate_ledger::Ledger::start_on_thread(
            store.clone(),
            tollgate_ledger::LedgerConfig {
                spill_dir: Some(config.server.data_dir.join("ledger-spill")),
                ..Default::default()
            },
        );
        let outcomes = tollgate_ledger::outcomes::OutcomeWriter::start(
            store.clone(),
            OUTCOME_QUEUE,
            OUTCOME_BATCH,
        );
        let limiter = Arc::new(limits::RateLimiter::with_clock(clock.clone()));
        let traces = traces::Traces::start(&config, metrics.clone())?;
        let checkpointer = Arc::new(checkpoints::Checkpointer::load(
            &config.audit,
            store.clone(),
            clock.clone(),
        )?);
        Ok(Arc::new(Gateway {
            gate: admit::Gate::new(
                config.clone(),
                meter.clone(),
                limiter,
                budgeter,
                clock.clone(),
            ),
            books: Arc::new(
                settle::Books::new(
                    config.clone(),
                    meter,
                    metrics.clone(),
                    alerts,
                    ledger,
                    keyring.secret().pseudonym_key().as_bytes(),
                    payloads::Sealer::new(tollgate_payload::MasterKey::load(
                        &config.audit.master_key_file,
                    )?),
                )
                .with_traces(traces)
                .with_slo(slo),
            ),
            upstreams,
            outcomes,
            policies: policy_book,
            patterns: pattern_book,
            vault: Arc::new(vault::Vault::new(vault::VaultLimits::default())),
            checkpoints: checkpointer,
            guard_key,
            store,
            keyring,
            prompts,
            clock,
            config,
            metrics,
            tasks: TaskTracker::new(),
            started_unix: tollgate_types::unix_now(),
            heavy: context::HeavyLane::for_this_machine(),
            ready: AtomicBool::new(true),
        }))
    }

    /// Retention: destroys the data keys whose day has passed (their payloads become
    /// unreadable; the audit chain, which covers only digests, still verifies). How many.
    pub async fn retention_sweep(&self) -> Result<u64, tollgate_store::StoreError> {
        use tollgate_store::PayloadQueries;
        let now = self.clock.now_ms();
        let n = self
            .store
            .destroy_expired_keys(now.div_euclid(86_400_000), now)
            .await?;
        if n > 0 {
            tracing::info!(keys = n, "retention: expired data keys destroyed");
        }
        Ok(n)
    }

    /// Whether `/readyz` says ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Request ids: `req_` + a UUIDv7 (time-ordered), unless the client sent one.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeRequestIdV7;

impl MakeRequestId for MakeRequestIdV7 {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&new_request_id())
            .ok()
            .map(RequestId::new)
    }
}

/// A new request id: `req_` + a UUIDv7.
pub fn new_request_id() -> String {
    format!("req_{}", uuid::Uuid::now_v7().simple())
}

/// The data plane as the control plane sees it: a snapshot refresh and the live budget states.
impl tollgate_http::DataPlane for Gateway {
    fn refresh(
        &self,
        changed: tollgate_http::Changed,
    ) -> tollgate_http::BoxFuture<'_, Result<(), tollgate_store::StoreError>> {
        Box::pin(async move {
            match changed {
                tollgate_http::Changed::Keys => self.keyring.reload().await.map(|_| ()),
                tollgate_http::Changed::Key(id) => self.keyring.reload_key(&id).await,
                tollgate_http::Changed::Budget(id) => self.gate.budgeter.reload_one(&id).await,
                tollgate_http::Changed::Policies => self.policies.reload().await,
                tollgate_http::Changed::Patterns => self.patterns.reload().await,
                tollgate_http::Changed::PayloadKeys => {
                    self.books.sealer.forget_keys();
                    self.vault.clear();
                    Ok(())
                }
            }
        })
    }

    fn budget_statuses(&self) -> Vec<tollgate_store::BudgetStatus> {
        self.gate.budgeter.statuses()
    }

    fn alert(&self, kind: &'static str, message: String, details: serde_json::Value) {
        self.books
            .alerts
            .raise(alerts::Alert::new(kind, message, details));
    }

    fn admin_auth_failed(&self, failure: tollgate_http::AuthFailure) {
        self.metrics.admin_auth_failed(failure.as_str());
    }

    fn settled(&self) -> tollgate_http::BoxFuture<'_, ()> {
        Box::pin(async move {
            let both = async {
                tokio::join!(self.books.ledger.settled(), self.outcomes.settled());
            };
            // A report waits for a batch write, not for a slow database.
            let _ = tokio::time::timeout(SETTLE_BOUND, both).await;
        })
    }
}

/// The data plane's axum app alone (`/v1`, health, metrics).
pub fn router(gw: Arc<Gateway>) -> Router {
    router_with(gw, Router::new())
}

/// The data plane's axum app with `other` routes served beside it (the control plane's
/// `/admin/v1`, composed by the binary). Layers, outermost first, cover both: request id (set,
/// then copied to the response) after id headers and the query are checked (too long or not
/// printable, a query parameter given twice: 400, see
/// [`ops::check_request_head`]), then panic → OpenAI-shaped 500. Unknown paths answer the
/// OpenAI-shaped 404.
pub fn router_with(gw: Arc<Gateway>, other: Router) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(pipeline::chat))
        .route("/v1/embeddings", post(pipeline::embeddings))
        .route("/v1/feedback", post(feedback::post))
        .route("/v1/models", get(pipeline::models))
        .route("/v1/models/{model}", get(pipeline::model))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(gw)
        .merge(other)
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(ops::check_request_head))
                .layer(axum::middleware::from_fn(ops::shape_client_errors))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestIdV7))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(ops::panic_response)),
        )
}

/// Serves `gw` (and `other` routes beside it, see [`router_with`]) on `listener` until
/// `shutdown` resolves, then stops accepting, lets in-flight requests and stream relays finish for
/// up to `server.shutdown_grace`, and returns. Connections are limited, timed and given the
/// client's address as [`server`] describes.
pub async fn serve(
    gw: Arc<Gateway>,
    other: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let grace = gw.config.server.shutdown_grace;
    // Until the end: what requests leave running (the rest of a request whose client left, stream
    // relays) runs there, and is waited for below.
    let runtimes =
        server::RequestRuntimes::start(gw.config.server.request_threads).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start the request threads: {e}"))
        })?;
    let server = server::run(
        gw.clone(),
        router_with(gw.clone(), other),
        listener,
        &runtimes,
        rx,
    );
    // Pick up key changes made by other instances; changes made here reload at once.
    let ring = gw.keyring.clone();
    let budgeter = gw.gate.budgeter.clone();
    let policies = gw.policies.clone();
    let patterns = gw.patterns.clone();
    let checkpointer = gw.checkpoints.clone();
    let sweeper = gw.clone();
    let slo = gw.books.slo.clone();
    // The first checkpoint of a store is always due; later ones when the cadence says.
    checkpointer.tick().await;
    let every = gw.config.server.key_refresh;
    let refresher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let _ = ring.reload().await;
            let _ = budgeter.reload().await;
            let _ = policies.reload().await;
            let _ = patterns.reload().await;
            checkpointer.tick().await;
            let _ = sweeper.retention_sweep().await;
            if let Some(s) = &slo {
                s.tick().await;
            }
        }
    });
    let gw2 = gw.clone();
    let deadline = async move {
        shutdown.await;
        gw2.ready.store(false, Ordering::Relaxed);
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = tx.send(true);
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
    refresher.abort();
    gw.tasks.close();
    if tokio::time::timeout(grace, gw.tasks.wait()).await.is_err() {
        tracing::warn!("stream relays still running after the grace period");
    }
    // Every admitted request has queued its record by now: write them all, and the feedback.
    gw.books.ledger.shutdown().await;
    gw.outcomes.shutdown().await;
    gw.books.shutdown_traces().await;
    if let Some(s) = &gw.books.slo {
        s.flush().await;
    }
    // ... and the chain's state at the end is signed.
    gw.checkpoints.checkpoint(true).await;
    runtimes.stop().await;
    Ok(())
}
