//! Step 6 of the pipeline, *measure*: usage → tokens by kind → cost → metrics.
//!
//! Called once per answered request: for complete answers when the answer arrives, for streams
//! when the relay has driven the upstream to its end. Unpriced deployments are counted
//! (`tollgate_unpriced_requests_total`), never treated as free.

use crate::Gateway;
use crate::routing::Target;
use tollgate_meter::Charge;
use tollgate_types::openai::Usage;

/// Records usage and cost; returns the charge (for the request record).
pub fn settle(
    gw: &Gateway,
    op: &'static str,
    provider_otel: &'static str,
    route_name: &str,
    target: Target,
    usage: Option<&Usage>,
) -> Option<Charge> {
    let usage = usage?;
    gw.metrics.usage(op, provider_otel, route_name, usage);
    let charge = gw.meter.charge(target.route, target.deployment, usage);
    match charge.cost {
        Some(c) => gw.metrics.cost(route_name, c.nanos()),
        None => gw.metrics.unpriced(route_name),
    }
    Some(charge)
}
