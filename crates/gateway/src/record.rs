//! The request record: what the ledger keeps of every admitted request.
//!
//! "Admitted" means the request passed authenticate, parse and admit — it belongs to a use case and
//! a route. From there on exactly one record is written, whatever happens: an answer, an upstream
//! error, a client that left (complete answers: the upstream call finishes anyway and is priced;
//! streams: the relay reads the upstream to its end and prices what it reports), or shutdown
//! (which waits for in-flight work and drains the ledger queue).

use crate::context::RequestContext;
use crate::settle::Books;
use std::time::Duration;
use tollgate_meter::Charge;
use tollgate_store::{RequestRecord, new_id};

/// What a request's tokens would have cost at the prices of its route's first deployment
/// (KPI 19's routing savings): what it cost when that deployment answered; else its tokens
/// priced there — whichever deployment or fallback route answered instead. `None` when the
/// request is unpriced or that deployment is.
fn first_choice_cost(
    meter: &tollgate_meter::Meter,
    route: usize,
    last: Option<&crate::context::Attempt>,
    cost: Option<u64>,
    tokens: &tollgate_meter::Tokens,
) -> Option<u64> {
    let (last, cost) = (last?, cost?);
    if last.route == route && last.deployment == 0 {
        return Some(cost);
    }
    meter.cost_of(route, 0, tokens).map(|m| m.nanos())
}

impl Books {
    /// Settles the request's rate-limit and budget holds with what it cost, and queues its
    /// record (nothing for requests that were never admitted).
    pub fn record(
        &self,
        ctx: &mut RequestContext,
        status: u16,
        outcome: &str,
        charge: Option<&Charge>,
        ttft: Option<Duration>,
    ) {
        // Settle the rate-limit reservation with the real tokens (and free the concurrency slot).
        if let Some(hold) = ctx.budget.take() {
            hold.settle(charge.and_then(|c| c.cost).map_or(0, |m| m.nanos()));
        }
        if let Some(permit) = ctx.permit.take() {
            permit.settle(charge.map_or(0, |c| c.tokens.total_input() + c.tokens.total_output()));
        }
        // The spans first: they may carry the masked content the payload takes below.
        self.trace(
            ctx,
            crate::traces::Ending {
                status,
                outcome,
                charge,
                ttft,
            },
        );
        let (Some(caller), Some(route)) = (&ctx.caller, ctx.route) else {
            return;
        };
        let last = ctx.attempts.last();
        let deployment = last.map(|a| &self.config.routes[a.route].deployments[a.deployment]);
        let tokens = charge.map(|c| c.tokens).unwrap_or_default();
        let cost = charge.and_then(|c| c.cost).map(|m| m.nanos());
        let first_choice_cost_nano_usd = first_choice_cost(&self.meter, route, last, cost, &tokens);
        let elapsed_ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.metrics
            .guard(&ctx.guard, outcome == "policy_violation");
        self.metrics.use_case_request(
            &caller.use_case_id,
            &caller.pod_id,
            &self.config.routes[route].name,
            deployment.map_or("", |d| self.config.providers[d.provider].name.as_str()),
            status,
            outcome,
            (
                tokens.input + tokens.cached_input + tokens.cache_write,
                tokens.output + tokens.reasoning,
            ),
            charge.and_then(|c| c.cost).map_or(0, |m| m.nanos()),
        );
        let latency = ctx.received.elapsed();
        if let Some(slo) = self.slo.as_ref().filter(|_| !caller.evaluation) {
            slo.record(
                caller,
                ctx.received_at_ms,
                elapsed_ms(ttft.unwrap_or(latency)),
                status,
            );
        }
        if (200..300).contains(&status) {
            // Answered (and queued before the answer leaves): feedback may name it. One that
            // ends without an answer (refused by the policy, the provider failed) never may.
            self.recent.answered(&caller.use_case_id, &ctx.request_id);
        }
        let id = new_id("rec");
        let end_user_hash = ctx.end_user.as_deref().map(|u| self.pseudonym(u));
        let payload = ctx.payload.take().map(|d| {
            self.sealer.seal(
                &d,
                &id,
                &caller.use_case_id,
                end_user_hash.as_deref().unwrap_or_default(),
                ctx.received_at_ms,
            )
        });
        let payload_ref = payload.as_ref().map(|p| match (&p.data_key_id, &p.digest) {
            (Some(k), Some(d)) => format!("{}:{k}:{d}", p.mode),
            _ => p.mode.clone(),
        });
        self.ledger.record(RequestRecord {
            id,
            request_id: ctx.request_id.clone(),
            at: ctx.received_at_ms,
            key_id: caller.key_id.clone(),
            use_case_id: caller.use_case_id.clone(),
            pod_id: caller.pod_id.clone(),
            end_user: ctx.end_user.clone(),
            end_user_hash,
            session_hash: ctx.session_hash.clone(),
            payload_ref,
            payload,
            endpoint: ctx.endpoint.to_string(),
            route: self.config.routes[route].name.clone(),
            provider: deployment.map(|d| self.config.providers[d.provider].name.clone()),
            model: deployment.map(|d| d.model.clone()),
            stream: ctx.stream,
            attempts: u32::try_from(ctx.attempts.len()).unwrap_or(u32::MAX),
            status,
            outcome: outcome.to_string(),
            input_tokens: tokens.input,
            cached_input_tokens: tokens.cached_input,
            cache_write_tokens: tokens.cache_write,
            output_tokens: tokens.output,
            reasoning_tokens: tokens.reasoning,
            cost_nano_usd: cost,
            first_choice_cost_nano_usd,
            price_source: charge.map_or_else(|| "none".to_string(), |c| c.price_source.clone()),
            usage_source: match charge {
                Some(c) if c.estimated => "estimated",
                Some(_) => "reported",
                None => "none",
            }
            .to_string(),
            latency_ms: elapsed_ms(latency),
            ttft_ms: ttft.map(elapsed_ms),
            price_id: last
                .and_then(|a| self.meter.price_point(a.route, a.deployment))
                .map(|p| p.id.clone()),
            cost_split: charge.map(|c| c.split).unwrap_or_default(),
            prompt_hash: ctx.prompt_hash.take(),
            policy: ctx.guard.policy.clone(),
            guard: Some(ctx.guard.to_json()),
            evaluation: caller.evaluation,
            pattern: ctx.pattern.clone(),
        });
    }
}
