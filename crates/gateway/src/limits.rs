//! Rate limits, part of step 3 (*admit*): requests per minute, tokens per minute and concurrent
//! requests, per key and per use case.
//!
//! Windows are calendar minutes (UTC). Tokens are **reserved before the call** — the prompt
//! counted with the tokenizer plus the output cap (`max_tokens`, or 4,096 when the client sets
//! none) — and **settled after it** with the real usage, so concurrent requests cannot overrun a
//! token limit the way counting after the fact does. A [`Permit`] holds the reservation and the
//! concurrency slot; settling it, or dropping it (errors, shutdown), gives back what was not used.
//! Counters live in this process; limits shared across replicas come with the Redis issue.

use crate::error::{ApiError, LimitHeaders};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate_store::Limits;

/// Output tokens reserved when the client sets no `max_tokens`.
pub const DEFAULT_OUTPUT_RESERVATION: u64 = 4096;

#[derive(Debug, Default)]
struct Bucket {
    minute: i64,
    requests: u32,
    tokens: u64,
    in_flight: u32,
}

/// Counters of every limited key and use case.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// The clock windows are read from.
    clock: tollgate_types::clock::Clock,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// An admitted request's share of its limits.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<RateLimiter>,
    scopes: Vec<String>,
    reserved: u64,
    minute: i64,
    settled: bool,
    /// The tightest request and token limits after this request, for the answer's headers.
    headers: Vec<LimitHeaders>,
}

/// Keeps the limit with the least left of each kind.
fn tightest(out: &mut Vec<LimitHeaders>, l: LimitHeaders) {
    match out.iter_mut().find(|h| h.kind == l.kind) {
        Some(h) if h.remaining > l.remaining => *h = l,
        Some(_) => {}
        None => out.push(l),
    }
}

fn until_next_minute(now: i64) -> Duration {
    Duration::from_millis(u64::try_from(60_000 - now.rem_euclid(60_000)).unwrap_or(1000))
}

impl RateLimiter {
    /// A limiter reading `clock` (the default reads the system's).
    pub fn with_clock(clock: tollgate_types::clock::Clock) -> RateLimiter {
        RateLimiter {
            clock,
            ..RateLimiter::default()
        }
    }

    /// Takes a request and `tokens` reserved tokens from every scope, or none if any limit would be
    /// passed. `scopes` are (name, limits) pairs, e.g. the key's and the use case's.
    pub fn acquire(
        self: &Arc<Self>,
        scopes: &[(String, Limits)],
        tokens: u64,
    ) -> Result<Option<Permit>, ApiError> {
        let limited: Vec<&(String, Limits)> =
            scopes.iter().filter(|(_, l)| !l.is_empty()).collect();
        if limited.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let minute = now.div_euclid(60_000);
        let mut buckets = self.buckets.lock().map_err(|_| ApiError::Internal)?;
        for (name, l) in &limited {
            let b = buckets.entry(name.clone()).or_default();
            if b.minute != minute {
                *b = Bucket {
                    minute,
                    requests: 0,
                    tokens: 0,
                    in_flight: b.in_flight,
                };
            }
            let what = name.split(':').next().unwrap_or("key");
            if let Some(max) = l.requests_per_minute
                && b.requests >= max
            {
                return Err(ApiError::RateLimited {
                    message: format!(
                        "rate limit reached: this {what} may make {max} requests per minute"
                    ),
                    code: "rate_limit_requests",
                    retry_after: Some(until_next_minute(now)),
                    limit: Some(LimitHeaders {
                        kind: "requests",
                        limit: u64::from(max),
                        remaining: 0,
                    }),
                });
            }
            if let Some(max) = l.tokens_per_minute
                && b.tokens.saturating_add(tokens) > max
            {
                return Err(ApiError::RateLimited {
                    message: format!(
                        "rate limit reached: this {what} may use {max} tokens per minute; {} are in use or reserved and this request needs up to {tokens}",
                        b.tokens
                    ),
                    code: "rate_limit_tokens",
                    retry_after: Some(until_next_minute(now)),
                    limit: Some(LimitHeaders {
                        kind: "tokens",
                        limit: max,
                        remaining: max.saturating_sub(b.tokens),
                    }),
                });
            }
            if let Some(max) = l.concurrent_requests
                && b.in_flight >= max
            {
                return Err(ApiError::RateLimited {
                    message: format!(
                        "rate limit reached: this {what} may have {max} requests in flight"
                    ),
                    code: "rate_limit_concurrency",
                    retry_after: Some(Duration::from_secs(1)),
                    limit: None,
                });
            }
        }
        let mut headers = Vec::with_capacity(2);
        for (name, l) in &limited {
            if let Some(b) = buckets.get_mut(name) {
                b.requests += 1;
                b.tokens = b.tokens.saturating_add(tokens);
                b.in_flight += 1;
                if let Some(max) = l.requests_per_minute {
                    tightest(
                        &mut headers,
                        LimitHeaders {
                            kind: "requests",
                            limit: u64::from(max),
                            remaining: u64::from(max.saturating_sub(b.requests)),
                        },
                    );
                }
                if let Some(max) = l.tokens_per_minute {
                    tightest(
                        &mut headers,
                        LimitHeaders {
                            kind: "tokens",
                            limit: max,
                            remaining: max.saturating_sub(b.tokens),
                        },
                    );
                }
            }
        }
        Ok(Some(Permit {
            limiter: self.clone(),
            scopes: limited.iter().map(|(n, _)| n.clone()).collect(),
            reserved: tokens,
            minute,
            settled: false,
            headers,
        }))
    }

    /// Tokens counted against `scope` in the current minute (for tests and metrics).
    pub fn tokens_in_use(&self, scope: &str) -> u64 {
        let minute = self.clock.now_ms().div_euclid(60_000);
        self.buckets
            .lock()
            .ok()
            .and_then(|b| {
                b.get(scope)
                    .filter(|b| b.minute == minute)
                    .map(|b| b.tokens)
            })
            .unwrap_or(0)
    }

    fn adjust(&self, p: &Permit, used: u64) {
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        let minute = self.clock.now_ms().div_euclid(60_000);
        for name in &p.scopes {
            if let Some(b) = buckets.get_mut(name) {
                if b.minute == p.minute {
                    // Replace the reservation by what was used.
                    b.tokens = b.tokens.saturating_sub(p.reserved).saturating_add(used);
                } else if b.minute == minute {
                    // The window turned during the request: count the use in the new one.
                    b.tokens = b.tokens.saturating_add(used);
                }
            }
        }
    }
}

impl Permit {
    /// OpenAI-style `x-ratelimit-*` headers for a successful answer: the limit, what is left of it
    /// after this request's reservation, and when the window resets — of the tightest scope.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, axum::http::HeaderValue)> + '_ {
        // When the answer goes out, not when the request was admitted.
        let reset = until_next_minute(self.limiter.clock.now_ms())
            .as_secs_f64()
            .ceil() as u64;
        self.headers.iter().flat_map(move |l| l.headers(reset))
    }

    /// Settles the reservation with the tokens really used.
    pub fn settle(mut self, used: u64) {
        self.limiter.adjust(&self, used);
        self.settled = true;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled {
            // Not settled (an error, a cancelled request): give the whole reservation back.
            self.limiter.adjust(self, 0);
        }
        if let Ok(mut buckets) = self.limiter.buckets.lock() {
            for name in &self.scopes {
                if let Some(b) = buckets.get_mut(name) {
                    b.in_flight = b.in_flight.saturating_sub(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(l: Limits) -> Vec<(String, Limits)> {
        vec![("key:k1".to_string(), l)]
    }

    use tollgate_types::clock::Clock;

    /// 2026-11-30T12:00:00Z.
    const NOON: i64 = 1_796_040_000_000;

    #[test]
    fn requests_tokens_and_concurrency() {
        let r = Arc::new(RateLimiter::with_clock(Clock::manual(NOON)));
        let rpm = scope(Limits {
            requests_per_minute: Some(2),
            ..Default::default()
        });
        let a = r.acquire(&rpm, 0).unwrap();
        let b = r.acquire(&rpm, 0).unwrap();
        assert!(matches!(
            r.acquire(&rpm, 0),
            Err(ApiError::RateLimited {
                code: "rate_limit_requests",
                ..
            })
        ));
        drop((a, b));

        let tpm = vec![(
            "use_case:u1".to_string(),
            Limits {
                tokens_per_minute: Some(100),
                ..Default::default()
            },
        )];
        let p1 = r.acquire(&tpm, 60).unwrap().unwrap();
        assert!(matches!(
            r.acquire(&tpm, 60),
            Err(ApiError::RateLimited {
                code: "rate_limit_tokens",
                ..
            })
        ));
        p1.settle(10);
        assert_eq!(
            r.tokens_in_use("use_case:u1"),
            10,
            "the reservation is replaced by the real use"
        );
        let p2 = r.acquire(&tpm, 60).unwrap().unwrap();
        drop(p2);
        assert_eq!(
            r.tokens_in_use("use_case:u1"),
            10,
            "an unsettled permit gives its reservation back"
        );
        // A reservation that fills the limit exactly is allowed; one more token is not.
        let full = r.acquire(&tpm, 90).unwrap().unwrap();
        assert_eq!(r.tokens_in_use("use_case:u1"), 100);
        assert!(matches!(
            r.acquire(&tpm, 1),
            Err(ApiError::RateLimited {
                code: "rate_limit_tokens",
                ..
            })
        ));
        drop(full);

        let conc = scope(Limits {
            concurrent_requests: Some(1),
            ..Default::default()
        });
        let r2 = Arc::new(RateLimiter::with_clock(Clock::manual(NOON)));
        let c1 = r2.acquire(&conc, 0).unwrap();
        assert!(matches!(
            r2.acquire(&conc, 0),
            Err(ApiError::RateLimited {
                code: "rate_limit_concurrency",
                ..
            })
        ));
        drop(c1);
        assert!(r2.acquire(&conc, 0).is_ok());
        assert!(
            r.acquire(&[("key:free".into(), Limits::default())], 1_000_000)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn answers_carry_the_tightest_limit_of_each_kind() {
        let clock = Clock::manual(NOON + 43_000);
        let r = Arc::new(RateLimiter::with_clock(clock.clone()));
        let scopes = vec![
            (
                "key:k".to_string(),
                Limits {
                    requests_per_minute: Some(10),
                    tokens_per_minute: Some(5_000),
                    ..Default::default()
                },
            ),
            (
                "use_case:u".to_string(),
                Limits {
                    requests_per_minute: Some(3),
                    tokens_per_minute: Some(1_000),
                    ..Default::default()
                },
            ),
        ];
        let _first = r.acquire(&scopes, 100).unwrap().unwrap();
        let p = r.acquire(&scopes, 100).unwrap().unwrap();
        let h: Vec<(String, String)> = p
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let get = |name: &str| h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(get("x-ratelimit-remaining-requests"), Some("1"));
        assert_eq!(get("x-ratelimit-limit-tokens"), Some("1000"));
        assert_eq!(get("x-ratelimit-remaining-tokens"), Some("800"));
        // 43 s into the minute: the window resets in 17 s.
        assert_eq!(get("x-ratelimit-reset-tokens"), Some("17s"));
        assert_eq!(h.len(), 6);
        // The reset is computed when the answer goes out.
        clock.set(NOON + 59_400);
        let reset: Vec<String> = p
            .headers()
            .filter(|(k, _)| *k == "x-ratelimit-reset-requests")
            .map(|(_, v)| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(reset, ["1s"]);
    }

    /// The minute boundary on purpose: a window full at 12:00:59.999 is empty at 12:01:00.000, and
    /// a request admitted in the old window settles its use into the new one.
    #[test]
    fn the_window_turns_exactly_at_the_minute() {
        let clock = Clock::manual(NOON + 59_999);
        let r = Arc::new(RateLimiter::with_clock(clock.clone()));
        let limits = scope(Limits {
            requests_per_minute: Some(1),
            tokens_per_minute: Some(100),
            ..Default::default()
        });
        let old = r.acquire(&limits, 50).unwrap().unwrap();
        let refused = r.acquire(&limits, 10);
        let Err(ApiError::RateLimited { retry_after, .. }) = refused else {
            panic!("the window is full: {refused:?}");
        };
        assert_eq!(retry_after, Some(Duration::from_millis(1)));
        clock.advance(Duration::from_millis(1));
        let new = r.acquire(&limits, 10).unwrap().unwrap();
        assert_eq!(r.tokens_in_use("key:k1"), 10, "a new window");
        old.settle(30);
        assert_eq!(
            r.tokens_in_use("key:k1"),
            40,
            "the old window's request counts its use in the window it ended in"
        );
        drop(new);
    }

    /// Requests in flight are not forgotten when the minute turns: a concurrency limit of 1 still
    /// refuses a second request while the first is running.
    #[test]
    fn requests_in_flight_survive_the_minute() {
        let clock = Clock::manual(NOON + 59_999);
        let r = Arc::new(RateLimiter::with_clock(clock.clone()));
        let limits = scope(Limits {
            concurrent_requests: Some(1),
            ..Default::default()
        });
        let running = r.acquire(&limits, 0).unwrap();
        clock.advance(Duration::from_millis(1));
        assert!(
            matches!(r.acquire(&limits, 0), Err(ApiError::RateLimited { .. })),
            "still one in flight in the new minute"
        );
        drop(running);
        assert!(r.acquire(&limits, 0).is_ok());
    }
}
