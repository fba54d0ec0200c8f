//! Step 6 of the pipeline, *measure*: usage → tokens by kind → cost → metrics.
//!
//! Called once per answered request: for complete answers when the answer arrives, for streams
//! when the relay has driven the upstream to its end. When the provider reported no usage (a cut
//! stream, a server without usage), the tokens are counted with the tokenizer and the charge is
//! marked estimated. Unpriced deployments are counted (`tollgate_unpriced_requests_total`), never
//! treated as free.

use crate::alerts::Alerter;
use crate::metrics::Metrics;
use crate::routing::Target;
use std::sync::Arc;
use tollgate_config::Config;
use tollgate_ledger::Ledger;
use tollgate_meter::{Charge, Meter};
use tollgate_types::openai::Usage;

/// Most tokens of one kind one request is charged for. No model reads or writes 100 million
/// tokens in one request (128 choices of the longest outputs stay far below); a larger count
/// is a provider's bug or a hostile upstream, and is clamped so no ledger total can overflow.
pub const MAX_PLAUSIBLE_TOKENS: u64 = 100_000_000;

/// Step 6 as one value: what pricing and recording an answered request needs — the prices, the
/// metrics, the alert channel (unpriced deployments) and the ledger — and nothing else of the
/// gateway. [`Books::settle`] prices; [`Books::record`](crate::record) writes the record.
#[derive(Debug)]
pub struct Books {
    pub(crate) config: Arc<Config>,
    /// Prices of every deployment.
    pub meter: Arc<Meter>,
    pub(crate) metrics: Arc<Metrics>,
    /// The alert channel (log and webhooks).
    pub alerts: Arc<Alerter>,
    /// The request ledger's writer.
    pub ledger: Ledger,
    /// Keys the end-user pseudonyms of records (HMAC-SHA-256, derived from the server secret).
    pub(crate) pseudonyms: hmac::Hmac<sha2::Sha256>,
    /// Seals what requests store of their content.
    pub sealer: crate::payloads::Sealer,
    /// The requests and sessions admitted lately, for feedback that names them before their
    /// records are written.
    pub recent: crate::feedback::RecentRefs,
    /// The tracer, when `telemetry.traces` is configured.
    pub traces: Option<crate::traces::Traces>,
    /// The use cases' SLO windows.
    pub slo: Option<Arc<crate::slo::SloTracker>>,
}

impl Books {
    /// Books over these parts.
    pub fn new(
        config: Arc<Config>,
        meter: Arc<Meter>,
        metrics: Arc<Metrics>,
        alerts: Arc<Alerter>,
        ledger: Ledger,
        pseudonym_key: &[u8],
        sealer: crate::payloads::Sealer,
    ) -> Books {
        use hmac::Mac;
        Books {
            config,
            meter,
            metrics,
            alerts,
            ledger,
            sealer,
            traces: None,
            slo: None,
            recent: crate::feedback::RecentRefs::default(),
            pseudonyms: hmac::Hmac::<sha2::Sha256>::new_from_slice(pseudonym_key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    /// These books, tracing requests with `traces`.
    pub fn with_traces(mut self, traces: Option<crate::traces::Traces>) -> Books {
        self.traces = traces;
        self
    }

    /// These books, counting requests into their use cases' SLO windows with `slo`.
    pub fn with_slo(mut self, slo: Arc<crate::slo::SloTracker>) -> Books {
        self.slo = Some(slo);
        self
    }

    /// Queues the spans of a finished request, when the gateway traces.
    pub fn trace(&self, ctx: &crate::context::RequestContext, end: crate::traces::Ending<'_>) {
        if let Some(t) = &self.traces {
            t.end(&self.config, ctx, end);
        }
    }

    /// Exports the spans queued so far and waits for it (off the runtime's workers).
    pub async fn flush_traces(self: &Arc<Self>) {
        if self.traces.is_some() {
            let books = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(t) = &books.traces {
                    t.flush();
                }
            })
            .await;
        }
    }

    /// Exports what is queued and stops the span exporter (shutdown).
    pub async fn shutdown_traces(self: &Arc<Self>) {
        if self.traces.is_some() {
            let books = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(t) = &books.traces {
                    t.shutdown();
                }
            })
            .await;
        }
    }

    /// The keyed pseudonym of an end user's id (hex): the same id, the same pseudonym; not
    /// reversible by guessing ids without the server secret.
    pub fn pseudonym(&self, id: &str) -> String {
        use hmac::Mac;
        let mut mac = self.pseudonyms.clone();
        mac.update(id.as_bytes());
        tollgate_store::keys::hex(&mac.finalize().into_bytes())
    }

    /// The keyed pseudonym of a session id (`x-tollgate-session`), apart from end users' ones.
    pub fn session_pseudonym(&self, session: &str) -> String {
        self.pseudonym(&format!("session\u{0}{session}"))
    }

    /// Notes an admitted request (it will have a record) so feedback may name it at once —
    /// not an evaluation run's: outcomes are about production answers.
    pub fn admitted(&self, ctx: &mut crate::context::RequestContext) {
        ctx.session_hash = ctx.session.as_deref().map(|s| self.session_pseudonym(s));
        if let Some(caller) = ctx.caller.as_ref().filter(|c| !c.evaluation) {
            self.recent.note(
                &caller.use_case_id,
                &ctx.request_id,
                ctx.session_hash.as_deref(),
                ctx.received_at_ms,
            );
        }
    }

    /// Records usage and cost; returns the charge (for the request record).
    pub fn settle(
        &self,
        op: &'static str,
        provider_otel: &'static str,
        route_name: &str,
        target: Target,
        usage: Option<Usage>,
        estimate: impl FnOnce(&str) -> Usage,
    ) -> Charge {
        let model = &self.config.routes[target.route].deployments[target.deployment].model;
        let (usage, estimated) = match usage {
            Some(u) => (u, false),
            // Counting is bounded and should never fail; if it ever did, the request is still
            // recorded (records = admitted), marked estimated, and the failure logged.
            None => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| estimate(model))) {
                    Ok(u) => (u, true),
                    Err(_) => {
                        tracing::error!(
                            route = route_name,
                            "token estimation failed; the request is recorded without tokens"
                        );
                        (Usage::default(), true)
                    }
                }
            }
        };
        let (usage, implausible) = usage.clamped(MAX_PLAUSIBLE_TOKENS);
        if implausible {
            tracing::warn!(
                route = route_name,
                max = MAX_PLAUSIBLE_TOKENS,
                "the provider reported more tokens than any request can use; counts clamped"
            );
            self.metrics.error("implausible_usage");
        }
        self.metrics.usage(op, provider_otel, route_name, &usage);
        let mut charge = self.meter.charge(target.route, target.deployment, &usage);
        charge.estimated = estimated;
        if estimated {
            self.metrics.estimated(route_name);
        }
        match charge.cost {
            Some(c) => self.metrics.cost(route_name, c.nanos()),
            None => {
                self.metrics.unpriced(route_name);
                self.alerts
                    .unpriced(target.route, target.deployment, route_name, model);
            }
        }
        charge
    }
}
