//! Step 6 of the pipeline, *measure*: usage → tokens by kind → cost → metrics.
//!
//! Called once per answered request: for complete answers when the answer arrives, for streams
//! when the relay has driven the upstream to its end. When the provider reported no usage (a cut
//! stream, a server without usage), the tokens are counted with the tokenizer and the charge is
//! marked estimated. Unpriced deployments are counted (`tollgate_unpriced_requests_total`), never
//! treated as free.

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
    usage: Option<Usage>,
    estimate: impl FnOnce(&str) -> Usage,
) -> Charge {
    let model = &gw.config.routes[target.route].deployments[target.deployment].model;
    let (usage, estimated) = match usage {
        Some(u) => (u, false),
        // Counting is bounded and should never fail; if it ever did, the request is still
        // recorded (records = admitted), marked estimated, and the failure logged.
        None => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| estimate(model))) {
            Ok(u) => (u, true),
            Err(_) => {
                tracing::error!(
                    route = route_name,
                    "token estimation failed; the request is recorded without tokens"
                );
                (Usage::default(), true)
            }
        },
    };
    gw.metrics.usage(op, provider_otel, route_name, &usage);
    let mut charge = gw.meter.charge(target.route, target.deployment, &usage);
    charge.estimated = estimated;
    if estimated {
        gw.metrics.estimated(route_name);
    }
    match charge.cost {
        Some(c) => gw.metrics.cost(route_name, c.nanos()),
        None => {
            gw.metrics.unpriced(route_name);
            gw.alerts
                .unpriced(target.route, target.deployment, route_name, model);
        }
    }
    charge
}
