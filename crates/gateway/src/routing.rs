//! Step 4 of the pipeline: send the request upstream, with retries and fallback.
//!
//! The plan is a list of targets: the requested route's deployments in weighted-random order
//! (weight-0 deployments last, as standbys), then each fallback route's deployments the same way.
//! [`Upstreams::send`] walks it in a plain loop:
//!
//! - each attempt has the route's `attempt_timeout` (streams: until the first chunk), cut short by
//!   the overall `deadline` of the requested route;
//! - a retryable error (429, 5xx, timeout, refused connection, cut stream) retries the same
//!   deployment up to `retries` times with exponential backoff and jitter, honouring `Retry-After`
//!   when the deadline leaves room for it, then moves on;
//! - an error that only this deployment has (its credentials, `n` > 1 on Anthropic) moves on;
//! - an error in the request itself (400, 422) ends the loop at once: no one else would do better.
//!
//! Every attempt is recorded on the [`RequestContext`]. For streams, the first chunk is read inside
//! the attempt: until a byte goes to the client, a failed stream falls back like any other error.

use crate::context::{Attempt, RequestContext};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_config::Config;
use tollgate_providers::{
    ChatReply, ChatStream, Chunk, Complete, ErrorClass, Provider, ProviderApi, ProviderError, Via,
};
use tollgate_types::openai::{ChatCompletionRequest, EmbeddingsRequest};

/// What to send.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// A chat completion.
    Chat(&'a ChatCompletionRequest),
    /// Embeddings.
    Embeddings(&'a EmbeddingsRequest),
}

/// A successful attempt.
// One `Answer` lives briefly per request; boxing the stream would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Answer {
    /// A complete answer.
    Complete(Complete),
    /// A stream whose first chunk has arrived (`None`: it ended at once, correctly).
    Stream {
        /// The first chunk.
        first: Option<Chunk>,
        /// The rest.
        rest: ChatStream,
    },
}

/// One place to try: (route index, deployment index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Route index.
    pub route: usize,
    /// Deployment index within the route.
    pub deployment: usize,
}

/// The order in which targets are tried for `route`.
pub fn plan(cfg: &tollgate_config::Config, route: usize) -> Vec<Target> {
    let mut out = Vec::new();
    for r in std::iter::once(route).chain(cfg.routes[route].fallbacks.iter().copied()) {
        let deps = &cfg.routes[r].deployments;
        let mut weighted: Vec<usize> = (0..deps.len()).filter(|&i| deps[i].weight > 0).collect();
        // Weighted shuffle: pick by weight among those left, one by one.
        while !weighted.is_empty() {
            let total: u64 = weighted.iter().map(|&i| u64::from(deps[i].weight)).sum();
            let mut ticket = fastrand::u64(..total.max(1));
            let mut pick = 0;
            for (k, &i) in weighted.iter().enumerate() {
                let w = u64::from(deps[i].weight);
                if ticket < w {
                    pick = k;
                    break;
                }
                ticket -= w;
            }
            out.push(Target {
                route: r,
                deployment: weighted.remove(pick),
            });
        }
        out.extend(
            (0..deps.len())
                .filter(|&i| deps[i].weight == 0)
                .map(|i| Target {
                    route: r,
                    deployment: i,
                }),
        );
    }
    out
}

/// Every (route, deployment) a request for `route` may reach: its own and its fallbacks'.
pub fn plan_deployments(
    cfg: &tollgate_config::Config,
    route: usize,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    std::iter::once(route)
        .chain(cfg.routes[route].fallbacks.iter().copied())
        .flat_map(move |r| (0..cfg.routes[r].deployments.len()).map(move |d| (r, d)))
}

/// One attempt at one provider.
async fn attempt(
    http: Via<'_>,
    provider: &Provider,
    model: &str,
    call: Call<'_>,
) -> Result<Answer, ProviderError> {
    match call {
        Call::Embeddings(req) => provider
            .embeddings(http, req, model)
            .await
            .map(Answer::Complete),
        Call::Chat(req) => match provider.chat(http, req, model).await? {
            ChatReply::Complete(c) => Ok(Answer::Complete(c)),
            ChatReply::Stream(mut rest) => {
                let first = rest.next().await?;
                Ok(Answer::Stream { first, rest })
            }
        },
    }
}

/// Backoff before retry number `retry` (0-based): `base · 2^retry`, ±25 % jitter, at least what
/// the provider asked for.
fn backoff(base: Duration, retry: u32, asked: Option<Duration>) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.min(10));
    let jitter = 0.75 + fastrand::f64() * 0.5;
    let ours = exp.mul_f64(jitter);
    asked.map_or(ours, |a| a.max(ours))
}

/// Blanks every configured credential (provider keys, webhook secrets) out of upstream text
/// before a client sees it: some providers echo the key they were sent in their errors.
/// The same credentials, found by their exact text, are masked out of answers by the output
/// guard ([`Redactor::credentials`]).
#[derive(Debug, Clone, Default)]
pub struct Redactor(Arc<[String]>, Arc<tollgate_guard::stream::Credentials>);

impl Redactor {
    /// A redactor for every non-empty credential of `config`: provider keys and webhook
    /// secrets — of a `whsec_<base64>` secret also its base64 part and the signing key it
    /// decodes to, with which alerts could be forged.
    pub fn for_config(config: &Config) -> Redactor {
        let mut secrets: Vec<String> = config
            .providers
            .iter()
            .filter_map(|p| p.api_key.as_ref())
            .chain(config.webhooks.iter().filter_map(|(_, s)| s.as_ref()))
            .map(|s| s.expose().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for (_, secret) in &config.webhooks {
            let Some(secret) = secret.as_ref().map(|s| s.expose()) else {
                continue;
            };
            if let Some(encoded) = secret.strip_prefix("whsec_") {
                let key = crate::alerts::signing_key(secret);
                // Error texts are searched for these too (case-insensitively, by their first
                // characters): only ASCII ones long enough not to blank ordinary words.
                let min = tollgate_guard::stream::Credentials::MIN_LEN;
                if encoded.len() >= min {
                    secrets.push(encoded.to_string());
                }
                if key.len() >= min && key.is_ascii() {
                    secrets.push(String::from_utf8_lossy(&key).into_owned());
                }
                keys.push(key);
            }
        }
        let credentials = tollgate_guard::stream::Credentials::from_bytes(
            secrets
                .iter()
                .map(String::as_bytes)
                .chain(keys.iter().map(Vec::as_slice)),
        );
        Redactor(secrets.into(), Arc::new(credentials))
    }

    /// `e` with every credential blanked out of its text: what a client may be told.
    pub fn redact(&self, e: ProviderError) -> ProviderError {
        e.redact(&self.0)
    }

    /// The credentials the output guard masks out of every answer.
    pub fn credentials(&self) -> &Arc<tollgate_guard::stream::Credentials> {
        &self.1
    }
}

/// Step 4 as one value: the configured providers, one pooled HTTP client each, and the attempt
/// metrics — what sending a request upstream needs, and nothing else of the gateway.
#[derive(Debug)]
pub struct Upstreams {
    config: Arc<Config>,
    providers: Vec<Provider>,
    clients: Vec<tollgate_providers::Client>,
    metrics: Arc<Metrics>,
    /// What a client may be told of upstream errors.
    pub redactor: Redactor,
}

impl Upstreams {
    /// One provider and one HTTP client per `config.providers` entry, same order.
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
    ) -> Result<Upstreams, crate::GatewayError> {
        let providers = config.providers.iter().map(Provider::from_config).collect();
        let clients = config
            .providers
            .iter()
            .map(|p| {
                tollgate_providers::Client::new(p.connect_timeout).map_err(|source| {
                    crate::GatewayError::Client {
                        provider: p.name.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Upstreams {
            redactor: Redactor::for_config(&config),
            config,
            providers,
            clients,
            metrics,
        })
    }

    /// Sends `call` along the plan of `route` until one attempt succeeds. The error, if all
    /// fail, is the last attempt's, redacted.
    pub async fn send(
        &self,
        ctx: &mut RequestContext,
        route: usize,
        call: Call<'_>,
    ) -> Result<(Answer, Target), ProviderError> {
        self.walk(ctx, route, call)
            .await
            .map_err(|e| self.redactor.redact(e))
    }

    async fn walk(
        &self,
        ctx: &mut RequestContext,
        route: usize,
        call: Call<'_>,
    ) -> Result<(Answer, Target), ProviderError> {
        let cfg = &self.config;
        let deadline = Instant::now() + cfg.routes[route].deadline;
        let mut last = ProviderError::Timeout;
        'targets: for target in plan(cfg, route) {
            let r = &cfg.routes[target.route];
            let dep = &r.deployments[target.deployment];
            let provider = &self.providers[dep.provider];
            let provider_name = cfg.providers[dep.provider].name.as_str();
            for retry in 0..=r.retries {
                let now = Instant::now();
                let Some(remaining) = deadline
                    .checked_duration_since(now)
                    .filter(|d| !d.is_zero())
                else {
                    break 'targets;
                };
                let limit = r.attempt_timeout.min(remaining);
                let span_id = ctx
                    .trace
                    .as_ref()
                    .map_or(0, |_| crate::traces::new_span_id());
                let traceparent = ctx.trace.as_ref().map(|t| t.traceparent(span_id));
                let via = Via {
                    http: &self.clients[dep.provider],
                    traceparent: traceparent.as_deref(),
                    tracestate: ctx.trace.as_ref().and_then(|t| t.state.as_deref()),
                };
                let result =
                    match tokio::time::timeout(limit, attempt(via, provider, &dep.model, call))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(ProviderError::Timeout),
                    };
                let took = now.elapsed();
                ctx.upstream_time += took;
                self.metrics.attempt(
                    provider_name,
                    result.as_ref().err().map_or("ok", ProviderError::kind),
                    took,
                );
                ctx.attempts.push(Attempt {
                    route: target.route,
                    deployment: target.deployment,
                    provider: dep.provider,
                    started: now.duration_since(ctx.received),
                    took,
                    error: result.as_ref().err().cloned(),
                    span_id,
                });
                let err = match result {
                    Ok(answer) => {
                        let first = &ctx.attempts[0];
                        if (first.route, first.deployment) != (target.route, target.deployment) {
                            self.metrics.fallback();
                        }
                        return Ok((answer, target));
                    }
                    Err(e) => e,
                };
                let class = err.class();
                let asked = err.retry_after();
                last = err;
                match class {
                    ErrorClass::Fatal => return Err(last),
                    ErrorClass::NextDeployment => continue 'targets,
                    ErrorClass::Retry if retry < r.retries => {
                        let wait = backoff(r.backoff, retry, asked);
                        let left = deadline.saturating_duration_since(Instant::now());
                        // A wait the deadline cannot afford: try the next deployment instead.
                        if wait >= left {
                            continue 'targets;
                        }
                        tokio::time::sleep(wait).await;
                        ctx.backoff_time += wait;
                    }
                    ErrorClass::Retry => continue 'targets,
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> tollgate_config::Config {
        tollgate_config::Config::from_yaml_str(yaml, &|_| None).unwrap()
    }

    #[test]
    fn plan_lists_the_route_then_its_fallbacks_with_standbys_last() {
        let cfg = config(
            r#"
providers: [{ name: p, type: openai_compatible, base_url: "http://127.0.0.1:1" }]
routes:
  - name: a
    deployments: [{ provider: p, model: standby, weight: 0 }, { provider: p, model: x, weight: 3 }, { provider: p, model: y, weight: 1 }]
    fallbacks: [b]
  - name: b
    deployments: [{ provider: p, model: z }]
"#,
        );
        let mut first_x = 0;
        for _ in 0..400 {
            let p = plan(&cfg, 0);
            assert_eq!(p.len(), 4);
            let models: Vec<&str> = p
                .iter()
                .map(|t| cfg.routes[t.route].deployments[t.deployment].model.as_str())
                .collect();
            assert_eq!(&models[2..], &["standby", "z"]);
            if models[0] == "x" {
                first_x += 1;
            }
        }
        // Weight 3 vs 1: about 300 of 400; the bounds are far beyond chance.
        assert!(
            (240..=360).contains(&first_x),
            "x first {first_x} times of 400"
        );
    }

    /// The route step on its own, no gateway: every deployment of the plan is tried once (no
    /// retries configured), in the plan's order, each attempt recorded; the error the caller gets
    /// is the last one, with configured credentials blanked.
    #[tokio::test]
    async fn upstreams_walk_the_plan_without_a_gateway() {
        // Port 1 on loopback: nothing listens, so every attempt is refused at once.
        let cfg = Arc::new(config(
            r#"
providers:
  - { name: p, type: openai_compatible, base_url: "http://127.0.0.1:1", api_key: "sk-test-0123456789" }
routes:
  - name: a
    retries: 0
    deployments: [{ provider: p, model: x }]
    fallbacks: [b]
  - name: b
    retries: 0
    deployments: [{ provider: p, model: y }]
"#,
        ));
        let metrics = Arc::new(Metrics::new());
        let up = Upstreams::new(cfg, metrics).unwrap();
        let mut ctx = RequestContext::new("req_1".into(), 0);
        let req: ChatCompletionRequest =
            serde_json::from_str(r#"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#)
                .unwrap();
        let err = up.send(&mut ctx, 0, Call::Chat(&req)).await.unwrap_err();
        assert_eq!(err.kind(), "connect");
        let tried: Vec<(usize, usize)> = ctx
            .attempts
            .iter()
            .map(|a| (a.route, a.deployment))
            .collect();
        assert_eq!(tried, vec![(0, 0), (1, 0)]);
        // The redactor knows the configured key.
        let echoed = ProviderError::StreamError("bad key sk-test-0123456789".into());
        assert_eq!(
            up.redactor.redact(echoed).to_string(),
            ProviderError::StreamError("bad key ***".into()).to_string()
        );
    }

    /// Webhook secrets are credentials too: an upstream that echoes one is redacted.
    #[test]
    fn the_redactor_knows_provider_keys_and_webhook_secrets() {
        let cfg = config(
            r#"
providers: [{ name: p, type: openai_compatible, base_url: "http://127.0.0.1:1", api_key: "sk-provider-0123456789" }]
routes: [{ name: a, deployments: [{ provider: p, model: x }] }]
alerts: { webhooks: [{ url: "http://127.0.0.1:1/hook", secret: "whsec-0123456789abcdef" }] }
"#,
        );
        let r = Redactor::for_config(&cfg);
        let e = ProviderError::StreamError("sk-provider-0123456789 whsec-0123456789abcdef".into());
        assert_eq!(
            r.redact(e).to_string(),
            ProviderError::StreamError("*** ***".into()).to_string()
        );
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let base = Duration::from_millis(100);
        let b0 = backoff(base, 0, None);
        let b2 = backoff(base, 2, None);
        assert!(b0 >= Duration::from_millis(75) && b0 <= Duration::from_millis(125));
        assert!(b2 >= Duration::from_millis(300) && b2 <= Duration::from_millis(500));
        assert_eq!(
            backoff(base, 0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}
