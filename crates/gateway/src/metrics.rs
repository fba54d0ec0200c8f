//! Prometheus metrics: Tollgate's own (`tollgate_*`) and OpenTelemetry's GenAI names translated to
//! Prometheus (`gen_ai_client_*`).
//!
//! Each gateway owns its registry (no global recorder), so several gateways in one process — tests,
//! the demo — never mix their numbers. Label values come from config (route and provider names)
//! or fixed sets, so cardinality stays bounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tollgate_types::openai::Usage;

/// Labels of `tollgate_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `chat`, `embeddings`, `models`.
    pub endpoint: &'static str,
    /// Route name, or empty when none was resolved.
    pub route: String,
    /// HTTP status.
    pub status: u16,
}

/// Labels of the request-duration and overhead histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `chat` or `embeddings`.
    pub endpoint: &'static str,
    /// Whether the answer was streamed.
    pub stream: bool,
}

/// Labels of upstream attempt metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// Provider name from config.
    pub provider: String,
    /// `ok` or the error kind (`timeout`, `status_5xx`, ...).
    pub outcome: &'static str,
}

/// Labels of `tollgate_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Error kind.
    pub kind: &'static str,
}

/// Labels of GenAI token metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `input` or `output` (GenAI conventions).
    pub gen_ai_token_type: &'static str,
    /// `chat` or `embeddings`.
    pub gen_ai_operation_name: &'static str,
    /// `openai`, `anthropic`, `azure.ai.openai`.
    pub gen_ai_provider_name: &'static str,
    /// The route the client asked for.
    pub gen_ai_request_model: String,
}

/// Labels of `tollgate_tokens_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenTypeLabels {
    /// `input`, `cached_input`, `cache_write`, `output`, `reasoning`.
    pub token_type: &'static str,
    /// The route.
    pub route: String,
}

/// Labels of GenAI operation metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `chat` or `embeddings`.
    pub gen_ai_operation_name: &'static str,
    /// Provider (GenAI name).
    pub gen_ai_provider_name: &'static str,
    /// The route.
    pub gen_ai_request_model: String,
}

/// Labels of the per-use-case series: the use case's and its pod's ids (never a key, a user or
/// a request id), capped (see [`UseCaseLabeler`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UseCaseLabels {
    /// `uc_…`, or `other` past the cap.
    pub use_case: &'static str,
    /// `pod_…`, or `other` past the cap.
    pub pod: &'static str,
}

/// Labels of `tollgate_use_case_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UseCaseRequestLabels {
    /// `uc_…`, or `other`.
    pub use_case: &'static str,
    /// `pod_…`, or `other`.
    pub pod: &'static str,
    /// The route (from config).
    pub route: &'static str,
    /// The provider that answered last (from config), empty when none was tried.
    pub provider: &'static str,
    /// HTTP status.
    pub status: u16,
}

/// Labels of `tollgate_use_case_tokens_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UseCaseTokenLabels {
    /// `uc_…`, or `other`.
    pub use_case: &'static str,
    /// `pod_…`, or `other`.
    pub pod: &'static str,
    /// `input` or `output`.
    pub token_type: &'static str,
}

/// Labels of `tollgate_use_case_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UseCaseErrorLabels {
    /// `uc_…`, or `other`.
    pub use_case: &'static str,
    /// `pod_…`, or `other`.
    pub pod: &'static str,
    /// The outcome (`upstream_error`, `policy_violation`, `stream_error` …).
    pub kind: &'static str,
}

/// Most distinct use cases (and, apart, pods) the per-use-case series name; the rest are summed
/// under `other`, so an organization with thousands of use cases cannot blow up the metrics.
pub const USE_CASE_LABELS: usize = 1_000;

/// Gives use cases and pods their label values, the first [`USE_CASE_LABELS`] of each by name,
/// the rest `other`; and routes, providers and outcomes theirs. Each value is interned once (a
/// bounded set: the caps, and names from config), so recording a request allocates nothing.
#[derive(Debug, Default)]
pub struct UseCaseLabeler {
    seen: std::sync::Mutex<[std::collections::HashMap<String, &'static str>; 3]>,
}

impl UseCaseLabeler {
    fn intern(&self, set: usize, v: &str, cap: usize) -> &'static str {
        let Ok(mut seen) = self.seen.lock() else {
            return "other";
        };
        let map = &mut seen[set];
        if let Some(s) = map.get(v) {
            return s;
        }
        if map.len() >= cap {
            return "other";
        }
        // Leaked once per distinct value; the number of values is bounded by `cap`.
        let s: &'static str = Box::leak(v.to_string().into_boxed_str());
        map.insert(v.to_string(), s);
        s
    }

    /// The label values of `use_case` and `pod`.
    pub fn labels(&self, use_case: &str, pod: &str) -> (&'static str, &'static str) {
        (
            self.intern(0, use_case, USE_CASE_LABELS),
            self.intern(1, pod, USE_CASE_LABELS),
        )
    }

    /// The label value of a name from config or a fixed set (route, provider, outcome).
    pub fn name(&self, v: &str) -> &'static str {
        self.intern(2, v, 10_000)
    }
}

/// Every metric of one gateway.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<EndpointLabels, Histogram>,
    overhead: Family<EndpointLabels, Histogram>,
    upstream_duration: Family<AttemptLabels, Histogram>,
    attempts: Family<AttemptLabels, Counter>,
    fallbacks: Counter,
    errors: Family<ErrorLabels, Counter>,
    token_usage: Family<TokenLabels, Histogram>,
    tokens: Family<TokenTypeLabels, Counter>,
    operation_duration: Family<OperationLabels, Histogram>,
    time_to_first_chunk: Family<OperationLabels, Histogram>,
    cost: Family<RouteLabels, Counter>,
    unpriced: Family<RouteLabels, Counter>,
    estimated: Family<RouteLabels, Counter>,
    budget_alerts: Family<ThresholdLabels, Gauge<u64, AtomicU64>>,
    ledger_written: Gauge<u64, AtomicU64>,
    ledger_dropped: Gauge<u64, AtomicU64>,
    ledger_pending: Gauge<u64, AtomicU64>,
    ledger_spilled: Gauge<u64, AtomicU64>,
    ledger_replayed: Gauge<u64, AtomicU64>,
    connections_open: Gauge,
    /// Told when a connection opens or closes (tests wait on the count by event).
    connections_changed: tollgate_types::progress::Progress,
    connections_timed_out: Counter,
    admin_auth_failures: Family<OutcomeLabels, Counter>,
    guard_findings: Family<GuardLabels, Counter>,
    guard_blocked: Counter,
    feedback: Family<OutcomeLabels, Counter>,
    trace_spans: Family<OutcomeLabels, Counter>,
    use_case_requests: Family<UseCaseRequestLabels, Counter>,
    use_case_tokens: Family<UseCaseTokenLabels, Counter>,
    use_case_cost: Family<UseCaseLabels, Counter>,
    use_case_errors: Family<UseCaseErrorLabels, Counter>,
    use_case_refusals: Family<UseCaseErrorLabels, Counter>,
    budget_burn: Family<BudgetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    feedback_pending: Gauge<u64, AtomicU64>,
    feedback_refused: Gauge<u64, AtomicU64>,
    feedback_stored: Gauge<u64, AtomicU64>,
    feedback_duplicates: Gauge<u64, AtomicU64>,
    labeler: UseCaseLabeler,
}

/// Labels of `tollgate_guard_findings_total`: a bounded set (entity types × actions × 2).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    /// `input` or `output`.
    pub direction: &'static str,
    /// The entity type (`EMAIL_ADDRESS`).
    pub entity_type: &'static str,
    /// The action taken (`mask`).
    pub action: &'static str,
}

/// An outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Admin authentication failures: `rejected` or `throttled`; feedback events: `success`,
    /// `failure`, `escalated`, `abandoned`, or `none` (a rating, acceptance or value alone).
    pub outcome: &'static str,
}

/// Labels of the budget gauges: the budget's id and what it covers (`org`, `pod`, `use_case`,
/// `key`) — budgets are few, made by people.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// `bud_…`.
    pub budget: String,
    /// Its scope.
    pub scope: String,
}

/// A budget threshold label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThresholdLabels {
    /// 50, 80 or 100 (%).
    pub threshold: u64,
}

/// A route label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route the client asked for.
    pub route: String,
}

fn latency_buckets() -> Histogram {
    // 0.5 ms … ~65 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

fn overhead_buckets() -> Histogram {
    // 10 µs … ~160 ms: the interesting range is well under a millisecond.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 15))
}

fn token_buckets() -> Histogram {
    // 1, 4, 16, … ×4, as the GenAI conventions advise.
    Histogram::new(exponential_buckets(1.0, 4.0, 14))
}

fn genai_duration_buckets() -> Histogram {
    // 0.01 … 81.92 s ×2, as the GenAI conventions advise.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration = Family::<EndpointLabels, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        let overhead = Family::<EndpointLabels, Histogram>::new_with_constructor(
            overhead_buckets as fn() -> Histogram,
        );
        let upstream_duration = Family::<AttemptLabels, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        let fallbacks = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let token_usage = Family::<TokenLabels, Histogram>::new_with_constructor(
            token_buckets as fn() -> Histogram,
        );
        let tokens = Family::<TokenTypeLabels, Counter>::default();
        let operation_duration = Family::<OperationLabels, Histogram>::new_with_constructor(
            genai_duration_buckets as fn() -> Histogram,
        );
        let time_to_first_chunk = Family::<OperationLabels, Histogram>::new_with_constructor(
            genai_duration_buckets as fn() -> Histogram,
        );
        registry.register(
            "tollgate_requests",
            "Requests answered, by endpoint, route and status",
            requests.clone(),
        );
        registry.register(
            "tollgate_request_duration_seconds",
            "Time from request to the end of the answer (streams: to the first byte)",
            request_duration.clone(),
        );
        registry.register(
            "tollgate_gateway_overhead_seconds",
            "Time the gateway adds: total time minus time waiting on upstreams and backoff",
            overhead.clone(),
        );
        registry.register(
            "tollgate_upstream_duration_seconds",
            "Time of each upstream attempt (streams: to the first chunk)",
            upstream_duration.clone(),
        );
        registry.register(
            "tollgate_upstream_attempts",
            "Upstream attempts, by provider and outcome",
            attempts.clone(),
        );
        registry.register(
            "tollgate_fallbacks",
            "Requests answered by another deployment than the first one tried",
            fallbacks.clone(),
        );
        registry.register(
            "tollgate_errors",
            "Requests that ended in an error, by kind",
            errors.clone(),
        );
        registry.register(
            "tollgate_tokens",
            "Tokens, by type and route",
            tokens.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens used per operation (GenAI semantic conventions)",
            token_usage.clone(),
        );
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "Duration of GenAI operations",
            operation_duration.clone(),
        );
        registry.register(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to the first streamed chunk",
            time_to_first_chunk.clone(),
        );
        let cost = Family::<RouteLabels, Counter>::default();
        let unpriced = Family::<RouteLabels, Counter>::default();
        let estimated = Family::<RouteLabels, Counter>::default();
        registry.register(
            "tollgate_estimated_usage_requests",
            "Requests whose usage the provider did not report, counted with the tokenizer",
            estimated.clone(),
        );
        registry.register(
            "tollgate_cost_nano_usd",
            "Cost of answered requests, nano-USD, by route",
            cost.clone(),
        );
        registry.register(
            "tollgate_unpriced_requests",
            "Requests served by a deployment without a price",
            unpriced.clone(),
        );
        let budget_alerts = Family::<ThresholdLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "tollgate_budget_alerts",
            "Budget thresholds crossed since start, by threshold",
            budget_alerts.clone(),
        );
        let ledger_written = Gauge::<u64, AtomicU64>::default();
        let ledger_dropped = Gauge::<u64, AtomicU64>::default();
        let ledger_pending = Gauge::<u64, AtomicU64>::default();
        let ledger_spilled = Gauge::<u64, AtomicU64>::default();
        let ledger_replayed = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "tollgate_ledger_records_spilled",
            "Request records the database could not take, written to the local spill file since start",
            ledger_spilled.clone(),
        );
        registry.register(
            "tollgate_ledger_records_replayed",
            "Spilled request records written back to the database since start",
            ledger_replayed.clone(),
        );
        registry.register(
            "tollgate_ledger_records_written",
            "Request records written to the ledger since start",
            ledger_written.clone(),
        );
        registry.register(
            "tollgate_ledger_records_dropped",
            "Request records dropped (queue full or database down at shutdown); should stay 0",
            ledger_dropped.clone(),
        );
        registry.register(
            "tollgate_ledger_queue_depth",
            "Request records accepted but not yet written",
            ledger_pending.clone(),
        );
        let connections_open = Gauge::default();
        let connections_timed_out = Counter::default();
        registry.register(
            "tollgate_connections_open",
            "Client connections open now (at most server.max_connections)",
            connections_open.clone(),
        );
        registry.register(
            "tollgate_connections_timed_out",
            "Client connections closed because no complete request head arrived within server.header_read_timeout_ms (slow or idle clients)",
            connections_timed_out.clone(),
        );
        let admin_auth_failures = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tollgate_admin_auth_failures",
            "Failed /admin/v1 authentications: rejected tokens (401), and requests refused unchecked while their address was throttled (429)",
            admin_auth_failures.clone(),
        );
        let guard_findings = Family::<GuardLabels, Counter>::default();
        registry.register(
            "tollgate_guard_findings",
            "What the guard found in requests (input) and answers (output), by entity type and the action taken; never a value",
            guard_findings.clone(),
        );
        let guard_blocked = Counter::default();
        registry.register(
            "tollgate_guard_blocked_requests",
            "Requests refused with policy_violation",
            guard_blocked.clone(),
        );
        let feedback = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tollgate_feedback_events",
            "Outcome and feedback posts accepted (202) at POST /v1/feedback, by outcome; a repeated event id is accepted and counted again, and stored once (tollgate_feedback_stored, tollgate_feedback_duplicates)",
            feedback.clone(),
        );
        let trace_spans = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tollgate_trace_spans",
            "Spans sent to the OTLP collector (`exported`), lost to a failed export (`failed`), or dropped for a full export queue (`dropped`)",
            trace_spans.clone(),
        );
        let use_case_requests = Family::<UseCaseRequestLabels, Counter>::default();
        registry.register(
            "tollgate_use_case_requests",
            "Governed requests by use case, pod, route, provider and status (use cases and pods past the first 1,000 as `other`)",
            use_case_requests.clone(),
        );
        let use_case_tokens = Family::<UseCaseTokenLabels, Counter>::default();
        registry.register(
            "tollgate_use_case_tokens",
            "Tokens by use case, pod and type (input: every input kind; output: output and reasoning)",
            use_case_tokens.clone(),
        );
        let use_case_cost = Family::<UseCaseLabels, Counter>::default();
        registry.register(
            "tollgate_use_case_cost_nano_usd",
            "What requests cost, nano-USD, by use case and pod",
            use_case_cost.clone(),
        );
        let use_case_errors = Family::<UseCaseErrorLabels, Counter>::default();
        registry.register(
            "tollgate_use_case_errors",
            "Requests that did not end well, by use case, pod and outcome",
            use_case_errors.clone(),
        );
        let use_case_refusals = Family::<UseCaseErrorLabels, Counter>::default();
        registry.register(
            "tollgate_use_case_refusals",
            "Requests of a known use case refused before they were admitted (pilot caps, stage, rate limits, budgets, policy), by use case, pod and error code",
            use_case_refusals.clone(),
        );
        let budget_burn =
            Family::<BudgetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "tollgate_budget_burn_ratio",
            "Spent (and reserved by requests in flight) ÷ amount of each budget in its current period",
            budget_burn.clone(),
        );
        let feedback_pending = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "tollgate_feedback_pending",
            "Feedback events accepted and not yet written",
            feedback_pending.clone(),
        );
        let feedback_refused = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "tollgate_feedback_refused",
            "Feedback events refused with 503 because the queue was full, since start",
            feedback_refused.clone(),
        );
        let feedback_stored = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "tollgate_feedback_stored",
            "Feedback events stored (each counted in the KPIs), since start",
            feedback_stored.clone(),
        );
        let feedback_duplicates = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "tollgate_feedback_duplicates",
            "Feedback events accepted and not stored, since start: their event id was stored before, or their request or session had had the most events allowed",
            feedback_duplicates.clone(),
        );
        Metrics {
            budget_burn,
            feedback_pending,
            feedback_stored,
            feedback_duplicates,
            feedback_refused,
            use_case_refusals,
            use_case_requests,
            use_case_tokens,
            use_case_cost,
            use_case_errors,
            labeler: UseCaseLabeler::default(),
            feedback,
            trace_spans,
            guard_findings,
            guard_blocked,
            admin_auth_failures,
            connections_open,
            connections_changed: Default::default(),
            connections_timed_out,
            budget_alerts,
            ledger_written,
            ledger_dropped,
            ledger_pending,
            ledger_spilled,
            ledger_replayed,
            cost,
            unpriced,
            estimated,
            registry,
            requests,
            request_duration,
            overhead,
            upstream_duration,
            attempts,
            fallbacks,
            errors,
            token_usage,
            tokens,
            operation_duration,
            time_to_first_chunk,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// One answered request.
    pub fn request(
        &self,
        endpoint: &'static str,
        route: &str,
        status: u16,
        stream: bool,
        total: Duration,
        overhead: Option<Duration>,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                route: route.to_string(),
                status,
            })
            .inc();
        let l = EndpointLabels { endpoint, stream };
        self.request_duration
            .get_or_create(&l)
            .observe(total.as_secs_f64());
        if let Some(o) = overhead {
            self.overhead.get_or_create(&l).observe(o.as_secs_f64());
        }
    }

    /// One upstream attempt.
    pub fn attempt(&self, provider: &str, outcome: &'static str, took: Duration) {
        let l = AttemptLabels {
            provider: provider.to_string(),
            outcome,
        };
        self.attempts.get_or_create(&l).inc();
        self.upstream_duration
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }

    /// A request answered by a later deployment.
    pub fn fallback(&self) {
        self.fallbacks.inc();
    }

    /// A request that ended in an error.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&ErrorLabels { kind }).inc();
    }

    /// Usage of one answered operation.
    pub fn usage(&self, op: &'static str, provider: &'static str, route: &str, usage: &Usage) {
        let token = |t: &'static str| TokenLabels {
            gen_ai_token_type: t,
            gen_ai_operation_name: op,
            gen_ai_provider_name: provider,
            gen_ai_request_model: route.to_string(),
        };
        self.token_usage
            .get_or_create(&token("input"))
            .observe(usage.prompt_tokens as f64);
        if op == "chat" {
            self.token_usage
                .get_or_create(&token("output"))
                .observe(usage.completion_tokens as f64);
        }
        for (t, n) in [
            ("input", usage.prompt_tokens),
            ("cached_input", usage.cached_tokens()),
            ("cache_write", usage.cache_write_tokens()),
            ("output", usage.completion_tokens),
            ("reasoning", usage.reasoning_tokens()),
        ] {
            if n > 0 {
                self.tokens
                    .get_or_create(&TokenTypeLabels {
                        token_type: t,
                        route: route.to_string(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// Cost of one request.
    pub fn cost(&self, route: &str, nanos: u64) {
        self.cost
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .inc_by(nanos);
    }

    /// The ledger writer's counters, copied at scrape time.
    pub fn set_ledger(&self, l: &tollgate_ledger::LedgerStats) {
        use std::sync::atomic::Ordering::Relaxed;
        self.ledger_written.set(l.written.load(Relaxed));
        self.ledger_dropped.set(l.dropped.load(Relaxed));
        self.ledger_pending.set(l.pending());
        self.ledger_spilled.set(l.spilled.load(Relaxed));
        self.ledger_replayed.set(l.replayed.load(Relaxed));
    }

    /// The budgets' burn, copied at scrape time: (id, scope, spent + reserved, amount).
    pub fn set_budgets(&self, budgets: &[(String, String, u64, u64)]) {
        for (id, scope, used, amount) in budgets {
            let ratio = if *amount == 0 {
                0.0
            } else {
                *used as f64 / *amount as f64
            };
            self.budget_burn
                .get_or_create(&BudgetLabels {
                    budget: id.clone(),
                    scope: scope.clone(),
                })
                .set(ratio);
        }
    }

    /// The outcome writer's queue, copied at scrape time.
    pub fn set_feedback(&self, o: &tollgate_ledger::outcomes::OutcomeStats) {
        use std::sync::atomic::Ordering::Relaxed;
        self.feedback_pending.set(o.pending());
        self.feedback_refused.set(o.refused.load(Relaxed));
        self.feedback_stored.set(o.stored.load(Relaxed));
        self.feedback_duplicates.set(o.duplicates.load(Relaxed));
    }

    /// A client connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_open.inc();
        self.connections_changed.changed();
    }

    /// A failed admin authentication (`rejected` or `throttled`).
    pub fn admin_auth_failed(&self, outcome: &'static str) {
        self.admin_auth_failures
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// What the guard did to one request.
    pub fn guard(&self, report: &crate::shield::GuardReport, blocked: bool) {
        for ((e, a, d), n) in &report.counts {
            self.guard_findings
                .get_or_create(&GuardLabels {
                    direction: d,
                    entity_type: e.as_str(),
                    action: a.as_str(),
                })
                .inc_by(u64::from(*n));
        }
        if blocked {
            self.guard_blocked.inc();
        }
    }

    /// One recorded request of a use case: its status, tokens, cost and, when it did not end
    /// well, its outcome.
    #[allow(clippy::too_many_arguments)]
    pub fn use_case_request(
        &self,
        use_case: &str,
        pod: &str,
        route: &str,
        provider: &str,
        status: u16,
        outcome: &str,
        tokens: (u64, u64),
        cost_nanos: u64,
    ) {
        let (use_case, pod) = self.labeler.labels(use_case, pod);
        self.use_case_requests
            .get_or_create(&UseCaseRequestLabels {
                use_case,
                pod,
                route: self.labeler.name(route),
                provider: self.labeler.name(provider),
                status,
            })
            .inc();
        for (token_type, n) in [("input", tokens.0), ("output", tokens.1)] {
            if n > 0 {
                self.use_case_tokens
                    .get_or_create(&UseCaseTokenLabels {
                        use_case,
                        pod,
                        token_type,
                    })
                    .inc_by(n);
            }
        }
        if cost_nanos > 0 {
            self.use_case_cost
                .get_or_create(&UseCaseLabels { use_case, pod })
                .inc_by(cost_nanos);
        }
        if !matches!(outcome, "ok" | "client_disconnected") {
            self.use_case_errors
                .get_or_create(&UseCaseErrorLabels {
                    use_case,
                    pod,
                    kind: self.labeler.name(outcome),
                })
                .inc();
        }
    }

    /// A request of a known use case refused before admission, with its error code
    /// (`pilot_cap_reached`, `rate_limit_exceeded`, `budget_exceeded` …).
    pub fn use_case_refusal(&self, use_case: &str, pod: &str, code: &str) {
        let (use_case, pod) = self.labeler.labels(use_case, pod);
        self.use_case_refusals
            .get_or_create(&UseCaseErrorLabels {
                use_case,
                pod,
                kind: self.labeler.name(code),
            })
            .inc();
    }

    /// A feedback event was accepted.
    pub fn feedback(&self, outcome: &'static str) {
        self.feedback
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// `n` spans were exported (`exported`), lost to a failed export (`failed`) or dropped for a
    /// full queue (`dropped`).
    pub fn trace_spans(&self, outcome: &'static str, n: u64) {
        self.trace_spans
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(n);
    }

    /// A client connection was closed.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
        self.connections_changed.changed();
    }

    /// A client connection was closed for sending no complete request head in time.
    pub fn connection_timed_out(&self) {
        self.connections_timed_out.inc();
    }

    /// Client connections open now.
    pub fn connections_open(&self) -> i64 {
        self.connections_open.get()
    }

    /// Returns once `holds` is true of the client connections open, checked now and after
    /// connections open or close (every change wakes a check; changes close together may be
    /// checked together).
    pub async fn until_connections(&self, mut holds: impl FnMut(i64) -> bool) {
        self.connections_changed
            .until(|| holds(self.connections_open.get()))
            .await;
    }

    /// A request whose usage was estimated.
    pub fn estimated(&self, route: &str) {
        self.estimated
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .inc();
    }

    /// Budget alerts so far, copied at scrape time.
    pub fn set_budget_alerts(&self, alerts: &[(String, u64)]) {
        for t in [50, 80, 100] {
            let n = alerts.iter().filter(|(_, x)| *x == t).count() as u64;
            self.budget_alerts
                .get_or_create(&ThresholdLabels { threshold: t })
                .set(n);
        }
    }

    /// A request on an unpriced deployment.
    pub fn unpriced(&self, route: &str) {
        self.unpriced
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .inc();
    }

    /// Duration (and for streams, time to first chunk) of one operation.
    pub fn operation(
        &self,
        op: &'static str,
        provider: &'static str,
        route: &str,
        total: Duration,
        first_chunk: Option<Duration>,
    ) {
        let l = OperationLabels {
            gen_ai_operation_name: op,
            gen_ai_provider_name: provider,
            gen_ai_request_model: route.to_string(),
        };
        self.operation_duration
            .get_or_create(&l)
            .observe(total.as_secs_f64());
        if let Some(t) = first_chunk {
            self.time_to_first_chunk
                .get_or_create(&l)
                .observe(t.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_prometheus_names() {
        let m = Metrics::new();
        m.request(
            "chat",
            "r",
            200,
            false,
            Duration::from_millis(3),
            Some(Duration::from_micros(80)),
        );
        m.usage(
            "chat",
            "openai",
            "r",
            &Usage {
                prompt_tokens: 5,
                completion_tokens: 7,
                total_tokens: 12,
                ..Default::default()
            },
        );
        m.error("timeout");
        let text = m.render();
        for name in [
            "tollgate_requests_total{endpoint=\"chat\",route=\"r\",status=\"200\"} 1",
            "tollgate_gateway_overhead_seconds_bucket",
            "gen_ai_client_token_usage_count{gen_ai_token_type=\"output\"",
            "tollgate_tokens_total{token_type=\"output\",route=\"r\"} 7",
            "tollgate_errors_total{kind=\"timeout\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    /// The per-use-case series: their names, types and labels (use case, pod, route, provider,
    /// status — never a key, a user or a request id), and at most 1,000 use cases and pods by name
    /// with 5,000 of them sending traffic, the rest summed under `other`.
    #[test]
    fn use_case_series_are_labelled_and_capped() {
        let m = Metrics::new();
        m.use_case_request("uc_a", "pod_1", "m", "sim", 200, "ok", (10, 4), 1_500);
        m.use_case_request(
            "uc_a",
            "pod_1",
            "m",
            "sim",
            502,
            "upstream_error",
            (0, 0),
            0,
        );
        let text = m.render();
        for line in [
            "# TYPE tollgate_use_case_requests counter",
            "tollgate_use_case_requests_total{use_case=\"uc_a\",pod=\"pod_1\",route=\"m\",provider=\"sim\",status=\"200\"} 1",
            "tollgate_use_case_requests_total{use_case=\"uc_a\",pod=\"pod_1\",route=\"m\",provider=\"sim\",status=\"502\"} 1",
            "# TYPE tollgate_use_case_tokens counter",
            "tollgate_use_case_tokens_total{use_case=\"uc_a\",pod=\"pod_1\",token_type=\"input\"} 10",
            "tollgate_use_case_tokens_total{use_case=\"uc_a\",pod=\"pod_1\",token_type=\"output\"} 4",
            "tollgate_use_case_cost_nano_usd_total{use_case=\"uc_a\",pod=\"pod_1\"} 1500",
            "tollgate_use_case_errors_total{use_case=\"uc_a\",pod=\"pod_1\",kind=\"upstream_error\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        for i in 0..5_000 {
            m.use_case_request(
                &format!("uc_{i}"),
                &format!("pod_{}", i % 2_000),
                "m",
                "sim",
                200,
                "ok",
                (1, 1),
                1,
            );
        }
        let text = m.render();
        let values = |label: &str| -> std::collections::HashSet<String> {
            text.lines()
                .filter(|l| l.starts_with("tollgate_use_case_requests_total{"))
                .filter_map(|l| {
                    let v = l.split(&format!("{label}=\"")).nth(1)?;
                    Some(v.split('"').next()?.to_string())
                })
                .collect()
        };
        let (ucs, pods) = (values("use_case"), values("pod"));
        assert_eq!(ucs.len(), USE_CASE_LABELS + 1, "1,000 named and `other`");
        assert!(ucs.contains("other") && ucs.contains("uc_a"));
        assert_eq!(pods.len(), USE_CASE_LABELS + 1);
        // Every request is still counted: the named ones and `other` add up to 5,002.
        let total: u64 = text
            .lines()
            .filter(|l| l.starts_with("tollgate_use_case_requests_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(total, 5_002);
        for forbidden in ["key", "user", "request_id"] {
            assert!(
                !text.contains(&format!("{forbidden}=\"")),
                "a {forbidden} label"
            );
        }
    }
}
