//! Step 3 of the pipeline: admit the request for its use case.
//!
//! The route must be one the key may call (hidden routes answer 404, like `/v1/models` hides them;
//! a route of the use case outside the key's scopes answers 403). The use case's stage decides
//! whether traffic flows: `proposed` and `retired` get 403 saying why; `pilot` gets traffic within
//! its caps — distinct end users (`x-tollgate-user`) and requests per UTC day — and 429 with code
//! `pilot_cap_reached` past them; `production` flows. Caps count in this process (shared counters
//! across replicas come with the Redis issue).

use crate::auth::{KeyEntry, RouteAccess};
use crate::budgets::Budgeter;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::limits::RateLimiter;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tollgate_config::Config;
use tollgate_meter::Meter;
use tollgate_store::Stage;
use tollgate_types::clock::Clock;

/// Step 3 as one value: what admitting a request reads, and nothing else of the gateway — the
/// route table, stage and pilot caps, rate limits, budgets, and the prices a budget reservation
/// is costed at.
#[derive(Debug)]
pub struct Gate {
    config: Arc<Config>,
    routes_by_name: HashMap<String, usize>,
    /// Stage and pilot-cap checks.
    pub admission: Admission,
    /// Rate-limit counters.
    pub limiter: Arc<RateLimiter>,
    /// Budgets and their spend.
    pub budgeter: Arc<Budgeter>,
    meter: Arc<Meter>,
}

impl Gate {
    /// A gate over `config`'s routes, reading `clock` for pilot days.
    pub fn new(
        config: Arc<Config>,
        meter: Arc<Meter>,
        limiter: Arc<RateLimiter>,
        budgeter: Arc<Budgeter>,
        clock: Clock,
    ) -> Gate {
        let routes_by_name = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Gate {
            config,
            routes_by_name,
            admission: Admission::with_clock(clock),
            limiter,
            budgeter,
            meter,
        }
    }

    /// The route a client's `model` names.
    pub fn route_index(&self, model: &str) -> Option<usize> {
        self.routes_by_name.get(model).copied()
    }

    /// The route named by `model` (or 404), stage and caps, rate limits, budgets. `reserve`
    /// gives (prompt tokens, output tokens) for the first deployment's model; it is called only
    /// when a token limit or a budget needs the count. Returns the route and whether tokens were
    /// reserved, in which case the answer must not be longer than the reserved output.
    pub fn admit(
        &self,
        ctx: &mut RequestContext,
        caller: &KeyEntry,
        headers: &HeaderMap,
        model: &str,
        reserve: impl FnOnce(&str) -> (u64, u64),
    ) -> Result<(usize, bool), ApiError> {
        let route = self
            .route_index(model)
            .ok_or_else(|| ApiError::ModelNotFound(model.to_string()))?;
        let end_user = headers.get("x-tollgate-user").and_then(|v| v.to_str().ok());
        let counted = self.admission.admit(caller, model, end_user)?;
        // A request the rate limits or a budget refuse is not served: it gives back the pilot
        // cap's count it took (attack 2026-12-04e F1).
        self.limit_and_reserve(ctx, caller, route, reserve)
            .inspect_err(|_| {
                if let Some(day) = counted {
                    self.admission
                        .give_back(caller, end_user.unwrap_or(""), day);
                }
            })
            .map(|reserved| {
                ctx.end_user = end_user.map(str::to_string);
                ctx.route = Some(route);
                (route, reserved)
            })
    }

    /// The rate limits and the budgets of an admitted request: whether tokens were reserved.
    fn limit_and_reserve(
        &self,
        ctx: &mut RequestContext,
        caller: &KeyEntry,
        route: usize,
        reserve: impl FnOnce(&str) -> (u64, u64),
    ) -> Result<bool, ApiError> {
        let limited = !(caller.key_limits.is_empty() && caller.use_case_limits.is_empty());
        let token_limited = caller.key_limits.tokens_per_minute.is_some()
            || caller.use_case_limits.tokens_per_minute.is_some();
        let budgeted = self.budgeter.applies_to(caller);
        let (input, output) = if token_limited || budgeted {
            reserve(&self.config.routes[route].deployments[0].model)
        } else {
            (0, 0)
        };
        if limited {
            // An evaluation key is held to its own limits, not to the use case's: its runs have
            // their own bound on concurrency and their own budget, and must not use up what the
            // use case's production traffic is allowed.
            let use_case_limits = if caller.evaluation {
                Default::default()
            } else {
                caller.use_case_limits
            };
            let scopes = [
                (format!("key:{}", caller.key_id), caller.key_limits),
                (format!("use_case:{}", caller.use_case_id), use_case_limits),
            ];
            ctx.permit = self.limiter.acquire(&scopes, input + output)?;
        }
        if budgeted {
            // The most any deployment the request may reach (fallbacks included) would charge.
            let plan = crate::routing::plan_deployments(&self.config, route);
            let max_cost = self.meter.max_cost(plan, input, output);
            ctx.budget = self.budgeter.reserve(caller, max_cost.nanos())?;
        }
        Ok(token_limited || budgeted)
    }
}

const DAY_MS: i64 = 86_400_000;

/// Time until the next UTC day, when pilot caps reset.
fn until_tomorrow(now: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(DAY_MS - now.rem_euclid(DAY_MS)).unwrap_or(1000))
}

#[derive(Debug, Default)]
struct PilotDay {
    day: i64,
    requests: u32,
    /// Each end user served today and how many of their requests were counted.
    users: HashMap<String, u32>,
}

/// Pilot-cap counters, per use case, for the current UTC day.
#[derive(Debug, Default)]
pub struct Admission {
    pilots: Mutex<HashMap<String, PilotDay>>,
    /// The clock days are read from (the default reads the system's).
    clock: Clock,
}

impl Admission {
    /// Admission reading `clock`.
    pub fn with_clock(clock: Clock) -> Admission {
        Admission {
            clock,
            ..Admission::default()
        }
    }

    /// Admits a request of `entry` for `route` from `end_user`: which UTC day's pilot caps
    /// counted it (`None` when none did), for [`Admission::give_back`].
    pub fn admit(
        &self,
        entry: &KeyEntry,
        route: &str,
        end_user: Option<&str>,
    ) -> Result<Option<i64>, ApiError> {
        match entry.access(route) {
            RouteAccess::Allowed => {}
            RouteAccess::Hidden => return Err(ApiError::ModelNotFound(route.to_string())),
            RouteAccess::OutOfScope => {
                return Err(ApiError::Forbidden {
                    message: format!("this key is not scoped for the model `{route}`"),
                    code: "route_not_in_key_scope",
                });
            }
        }
        match entry.stage {
            Stage::Production => Ok(None),
            // An evaluation is how a use case earns its next stage: the server's evaluation keys
            // may call a proposed or piloting use case's routes, outside its pilot caps.
            Stage::Proposed | Stage::Pilot if entry.evaluation => Ok(None),
            Stage::Proposed => Err(ApiError::Forbidden {
                message: format!(
                    "use case `{}` is proposed: it gets no traffic until it is moved to pilot",
                    entry.use_case_name
                ),
                code: "use_case_not_live",
            }),
            Stage::Retired => Err(ApiError::Forbidden {
                message: format!(
                    "use case `{}` is retired and gets no traffic",
                    entry.use_case_name
                ),
                code: "use_case_retired",
            }),
            Stage::Pilot => self.pilot(entry, end_user.unwrap_or("")),
        }
    }

    /// Gives back what [`Admission::admit`] counted on `day` for a request of `entry`
    /// from `user` that was then refused (a rate limit, a budget): its request, and its end
    /// user when it was their only one. A day already over keeps its counts (they are gone).
    pub fn give_back(&self, entry: &KeyEntry, user: &str, day: i64) {
        let Ok(mut pilots) = self.pilots.lock() else {
            return;
        };
        let Some(d) = pilots.get_mut(&entry.use_case_id).filter(|d| d.day == day) else {
            return;
        };
        d.requests = d.requests.saturating_sub(1);
        if let Some(n) = d.users.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                d.users.remove(user);
            }
        }
    }

    fn pilot(&self, entry: &KeyEntry, user: &str) -> Result<Option<i64>, ApiError> {
        let caps = entry.pilot_caps;
        if caps.max_requests_per_day.is_none() && caps.max_end_users_per_day.is_none() {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let today = now / DAY_MS;
        let mut pilots = self.pilots.lock().map_err(|_| ApiError::Internal)?;
        let day = pilots.entry(entry.use_case_id.clone()).or_default();
        if day.day != today {
            *day = PilotDay {
                day: today,
                ..PilotDay::default()
            };
        }
        if let Some(max) = caps.max_requests_per_day
            && day.requests >= max
        {
            return Err(ApiError::RateLimited {
                message: format!(
                    "pilot cap reached: use case `{}` may make {max} requests per day during its pilot",
                    entry.use_case_name
                ),
                code: "pilot_cap_reached",
                retry_after: Some(until_tomorrow(now)),
                limit: None,
            });
        }
        if let Some(max) = caps.max_end_users_per_day
            && !day.users.contains_key(user)
            && day.users.len() >= max as usize
        {
            return Err(ApiError::RateLimited {
                message: format!(
                    "pilot cap reached: use case `{}` may serve {max} distinct end users per day during its pilot",
                    entry.use_case_name
                ),
                code: "pilot_cap_reached",
                retry_after: Some(until_tomorrow(now)),
                limit: None,
            });
        }
        // Every end user is counted (the cap on them may be set later in the day).
        *day.users.entry(user.to_string()).or_insert(0) += 1;
        day.requests += 1;
        Ok(Some(today))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_store::PilotCaps;

    fn entry(stage: Stage, caps: PilotCaps) -> KeyEntry {
        KeyEntry {
            key_id: "key_1".into(),
            prefix: "tg_x".into(),
            use_case_id: "uc_1".into(),
            use_case_name: "triage".into(),
            pod_id: "pod_1".into(),
            stage,
            routes: vec!["r".into()],
            scopes: None,
            valid_until: None,
            pilot_caps: caps,
            key_limits: Default::default(),
            use_case_limits: Default::default(),
            slo: Default::default(),
            evaluation: false,
        }
    }

    #[test]
    fn stages_decide_traffic() {
        let a = Admission::default();
        assert!(
            a.admit(&entry(Stage::Production, PilotCaps::default()), "r", None)
                .is_ok()
        );
        assert!(matches!(
            a.admit(&entry(Stage::Proposed, PilotCaps::default()), "r", None),
            Err(ApiError::Forbidden {
                code: "use_case_not_live",
                ..
            })
        ));
        assert!(matches!(
            a.admit(&entry(Stage::Retired, PilotCaps::default()), "r", None),
            Err(ApiError::Forbidden {
                code: "use_case_retired",
                ..
            })
        ));
        assert!(matches!(
            a.admit(&entry(Stage::Production, PilotCaps::default()), "x", None),
            Err(ApiError::ModelNotFound(_))
        ));
    }

    #[test]
    fn pilot_caps_hold() {
        // The last second of a UTC day: the caps hold to its end, and reset at midnight.
        let clock = Clock::manual(1_796_083_199_000); // 2026-11-30T23:59:59Z
        let a = Admission::with_clock(clock.clone());
        let e = entry(
            Stage::Pilot,
            PilotCaps {
                max_requests_per_day: Some(3),
                max_end_users_per_day: Some(2),
            },
        );
        assert!(a.admit(&e, "r", Some("ann")).is_ok());
        assert!(a.admit(&e, "r", Some("bob")).is_ok());
        assert!(
            matches!(
                a.admit(&e, "r", Some("cy")),
                Err(ApiError::RateLimited { .. })
            ),
            "a third user"
        );
        assert!(a.admit(&e, "r", Some("ann")).is_ok(), "a known user");
        assert!(
            matches!(
                a.admit(&e, "r", Some("bob")),
                Err(ApiError::RateLimited { .. })
            ),
            "a fourth request"
        );
        let Err(ApiError::RateLimited { retry_after, .. }) = a.admit(&e, "r", Some("ann")) else {
            panic!("still capped in the same day");
        };
        assert_eq!(retry_after, Some(std::time::Duration::from_secs(1)));
        clock.advance(std::time::Duration::from_secs(1));
        assert!(a.admit(&e, "r", Some("cy")).is_ok(), "a new day");
        assert!(a.admit(&e, "r", Some("dee")).is_ok());
    }

    /// A request counted and then refused by a rate limit or a budget gives its count back: its
    /// request, and its end user when it was their only one (attack 2026-12-04e F1); a count
    /// of a day that is over is not taken from the next.
    #[test]
    fn a_refused_request_gives_its_pilot_count_back() {
        let clock = Clock::manual(1_796_083_199_000); // 2026-11-30T23:59:59Z
        let a = Admission::with_clock(clock.clone());
        let e = entry(
            Stage::Pilot,
            PilotCaps {
                max_requests_per_day: Some(2),
                max_end_users_per_day: Some(1),
            },
        );
        let day = a.admit(&e, "r", Some("ann")).unwrap().unwrap();
        a.give_back(&e, "ann", day);
        // Ann's only request was given back: bob is the day's one user, with both requests.
        let day = a.admit(&e, "r", Some("bob")).unwrap().unwrap();
        assert!(a.admit(&e, "r", Some("bob")).is_ok());
        assert!(a.admit(&e, "r", Some("bob")).is_err(), "two requests");
        // One of bob's two given back: one more request, and he is still the day's user.
        a.give_back(&e, "bob", day);
        assert!(a.admit(&e, "r", Some("ann")).is_err(), "bob still counts");
        assert!(a.admit(&e, "r", Some("bob")).is_ok());
        assert!(a.admit(&e, "r", Some("bob")).is_err());
        // Production and evaluation requests are not counted.
        assert!(matches!(
            a.admit(&entry(Stage::Production, PilotCaps::default()), "r", None),
            Ok(None)
        ));
        // Given back after midnight: the new day's counts stay.
        clock.advance(std::time::Duration::from_secs(1));
        assert!(a.admit(&e, "r", Some("cy")).is_ok());
        a.give_back(&e, "cy", day);
        assert!(
            a.admit(&e, "r", Some("dee")).is_err(),
            "cy is still today's user"
        );
    }
}
