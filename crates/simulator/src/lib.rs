//! `tollgate simulate`: a fake LLM upstream that speaks OpenAI's and Anthropic's APIs.
//!
//! It is a product feature (load tests, demos, trying Tollgate without a provider account) and the
//! upstream of Tollgate's own tests. Output is deterministic: the same request and seed give the
//! same words. Knobs ([`SimConfig`]) set latency, time to first token, tokens per second, an
//! error rate with its status, a truncated-stream rate, a rate of streams failing halfway with
//! an error event, whether usage is reported, and the cached, cache-write and reasoning token
//! counts it claims.
//!
//! Endpoints: `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`,
//! `POST /v1/messages` (Anthropic), Azure's `/openai/deployments/{name}/...`, and `GET /sim/stats`
//! (request counters, for tests).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = tollgate_simulator::Simulator::new(tollgate_simulator::SimConfig::default());
//! println!("simulator on {}", listener.local_addr()?);
//! sim.serve(listener, std::future::pending()).await
//! # }
//! ```

// Handlers return `Result<_, Response>` so an early error is one `?`; the size of an axum
// `Response` on the error path does not matter in a test upstream.
#![allow(clippy::result_large_err)]

mod anthropic;
mod generate;
mod openai;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The simulator's knobs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Delay before a complete (non-streamed) answer.
    pub latency: Duration,
    /// Delay before the first streamed event.
    pub ttft: Duration,
    /// Pace of streamed tokens; 0 sends them all at once.
    pub tokens_per_second: f64,
    /// Share of requests answered with `error_status` (0.0–1.0).
    pub error_rate: f64,
    /// Status of injected errors.
    pub error_status: u16,
    /// `Retry-After` seconds on injected errors.
    pub retry_after: Option<u64>,
    /// The message of injected errors (tests of what a client is told of a provider's error).
    pub error_message: String,
    /// Share of streams cut halfway, without their end marker (0.0–1.0).
    pub truncate_rate: f64,
    /// Share of streams that stop halfway with an error event carrying `error_message`
    /// (a provider failing mid-answer) (0.0–1.0).
    pub stream_error_rate: f64,
    /// Report usage at all.
    pub usage: bool,
    /// Input tokens reported as read from the prompt cache.
    pub cached_tokens: u64,
    /// Input tokens reported as written to the prompt cache (Anthropic).
    pub cache_write_tokens: u64,
    /// Output tokens reported as reasoning.
    pub reasoning_tokens: u64,
    /// Seed mixed into every generation.
    pub seed: u64,
    /// Output length when the client sets no cap.
    pub default_output_tokens: u32,
    /// Required API key, if any (Bearer, `x-api-key` or `api-key`).
    pub api_key: Option<String>,
    /// Answer chat requests with the last user message's text, in pieces of a few characters
    /// (tests of what reaches the model and what comes back).
    pub echo: bool,
    /// A planted bias: answers differ for prompts that name certain people (fairness tests).
    pub bias: Option<Bias>,
}

/// A planted bias: a chat request whose messages contain one of `words` (a whole word, any case)
/// is answered with `answer`; every other one with `otherwise` when set, else as usual. What
/// `tollgate simulate --bias-words … --bias-answer …` sets, so a fairness probe has something to
/// find — and, left off, shows it finds nothing in unbiased answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bias {
    /// The words (names, usually) that trigger the other answer.
    pub words: Vec<String>,
    /// The answer they get.
    pub answer: String,
    /// The answer everyone else gets (`None`: the usual generated text).
    pub otherwise: Option<String>,
}

impl Bias {
    /// The answer to `text`: `Some` when the bias decides it.
    pub fn answer_for(&self, text: &str) -> Option<String> {
        let lower = text.to_lowercase();
        let hit = lower
            .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '\'')
            .any(|w| self.words.iter().any(|b| b.to_lowercase() == w));
        if hit {
            Some(self.answer.clone())
        } else {
            self.otherwise.clone()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency: Duration::ZERO,
            ttft: Duration::ZERO,
            tokens_per_second: 0.0,
            error_rate: 0.0,
            error_status: 500,
            retry_after: None,
            error_message: "simulated upstream error".into(),
            truncate_rate: 0.0,
            stream_error_rate: 0.0,
            usage: true,
            cached_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
            seed: 0,
            default_output_tokens: 24,
            api_key: None,
            echo: false,
            bias: None,
        }
    }
}

/// Request counters, readable in-process and at `GET /sim/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Chat requests (OpenAI and Azure).
    pub chat: AtomicU64,
    /// Messages requests (Anthropic).
    pub messages: AtomicU64,
    /// Embeddings requests.
    pub embeddings: AtomicU64,
    /// Errors injected.
    pub errors: AtomicU64,
    /// Streams truncated.
    pub truncated: AtomicU64,
    /// Streams stopped by an error event.
    pub stream_errors: AtomicU64,
    /// Told after each request counted.
    progress: tollgate_types::progress::Progress,
}

impl Stats {
    /// Returns once `holds` is true of the counters, checked now and after each request counted
    /// (tests wait on "the upstream has the request" without polling).
    pub async fn until(&self, holds: impl Fn(&Stats) -> bool) {
        self.progress.until(|| holds(self)).await;
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "chat": self.chat.load(Ordering::Relaxed),
            "messages": self.messages.load(Ordering::Relaxed),
            "embeddings": self.embeddings.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "truncated": self.truncated.load(Ordering::Relaxed),
            "stream_errors": self.stream_errors.load(Ordering::Relaxed),
        })
    }
}

/// Shared state of one simulator.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    pub(crate) stats: Stats,
    /// The text of the last [`RECEIVED`] chat requests, oldest first.
    pub(crate) received: std::sync::Mutex<std::collections::VecDeque<String>>,
    /// The whole bodies of the last chat and embeddings requests, as JSON.
    pub(crate) bodies: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Shared {
    /// Keeps a request's text for [`Simulator::received`].
    pub(crate) fn remember(&self, text: String) {
        let mut r = self.received.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() >= RECEIVED {
            r.pop_front();
        }
        r.push_back(text);
    }

    /// Keeps a request's whole body for [`Simulator::received_bodies`].
    pub(crate) fn remember_body(&self, body: String) {
        let mut r = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() >= RECEIVED {
            r.pop_front();
        }
        r.push_back(body);
    }
}

/// How many chat requests' texts the simulator keeps for [`Simulator::received`].
pub const RECEIVED: usize = 256;

/// A simulator: its knobs and counters.
#[derive(Debug, Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

/// Which wire an error must be shaped for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dialect {
    OpenAi,
    Anthropic,
}

impl Simulator {
    /// A simulator with these knobs.
    pub fn new(cfg: SimConfig) -> Self {
        Simulator {
            shared: Arc::new(Shared {
                cfg,
                stats: Stats::default(),
                received: Default::default(),
                bodies: Default::default(),
            }),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// The whole bodies (JSON) of the last chat and embeddings requests it received: every
    /// field a provider would have seen.
    pub fn received_bodies(&self) -> Vec<String> {
        let r = self.shared.bodies.lock().unwrap_or_else(|e| e.into_inner());
        r.iter().cloned().collect()
    }

    /// Every text (message contents, tool-call arguments) of the last chat requests it
    /// received, one string per request: what a provider would have seen.
    pub fn received(&self) -> Vec<String> {
        let r = self
            .shared
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        r.iter().cloned().collect()
    }

    /// The axum router serving every endpoint.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(openai::chat))
            .route("/chat/completions", post(openai::chat))
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(openai::azure_chat),
            )
            .route("/v1/embeddings", post(openai::embeddings))
            .route("/embeddings", post(openai::embeddings))
            .route(
                "/openai/deployments/{deployment}/embeddings",
                post(openai::azure_embeddings),
            )
            .route("/v1/models", get(openai::models))
            .route("/v1/messages", post(anthropic::messages))
            .route("/sim/stats", get(stats))
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn stats(axum::extract::State(s): axum::extract::State<Arc<Shared>>) -> Response {
    axum::Json(s.stats.to_json()).into_response()
}

impl Shared {
    /// Checks the key, if one is required.
    pub(crate) fn authorize(&self, headers: &HeaderMap, dialect: Dialect) -> Result<(), Response> {
        let Some(want) = &self.cfg.api_key else {
            return Ok(());
        };
        let got = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()));
        if got == Some(want.as_str()) {
            Ok(())
        } else {
            Err(error_response(
                StatusCode::UNAUTHORIZED,
                "invalid API key",
                None,
                dialect,
            ))
        }
    }

    /// An injected error, when the dice say so.
    pub(crate) fn injected_error(&self, dialect: Dialect) -> Option<Response> {
        if self.cfg.error_rate <= 0.0 || fastrand::f64() >= self.cfg.error_rate {
            return None;
        }
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        let status = StatusCode::from_u16(self.cfg.error_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Some(error_response(
            status,
            &self.cfg.error_message,
            self.cfg.retry_after,
            dialect,
        ))
    }

    /// Whether this stream is to be cut.
    pub(crate) fn truncate(&self) -> bool {
        let cut = self.cfg.truncate_rate > 0.0 && fastrand::f64() < self.cfg.truncate_rate;
        if cut {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        cut
    }

    /// Whether this stream is to stop with an error event.
    pub(crate) fn stream_error(&self) -> bool {
        let fail = self.cfg.stream_error_rate > 0.0 && fastrand::f64() < self.cfg.stream_error_rate;
        if fail {
            self.stats.stream_errors.fetch_add(1, Ordering::Relaxed);
        }
        fail
    }
}

/// An error in the dialect's shape.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    retry_after: Option<u64>,
    dialect: Dialect,
) -> Response {
    let body = match dialect {
        Dialect::OpenAi => serde_json::json!({"error": {
            "message": message,
            "type": if status.as_u16() == 429 { "rate_limit_error" } else if status.is_client_error() { "invalid_request_error" } else { "server_error" },
            "param": null,
            "code": null,
        }}),
        Dialect::Anthropic => serde_json::json!({"type": "error", "error": {
            "type": match status.as_u16() {
                401 => "authentication_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400..=499 => "invalid_request_error",
                _ => "api_error",
            },
            "message": message,
        }}),
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}

/// Parses a JSON body or answers 400 in the dialect's shape.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: &[u8],
    dialect: Dialect,
) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            &format!("invalid request body: {e}"),
            None,
            dialect,
        )
    })
}

/// A streamed body: all at once when there is no pacing, else paced by a task.
pub(crate) fn sse_body(
    shared: &Shared,
    events: Vec<bytes::Bytes>,
    token_events: std::ops::Range<usize>,
) -> Response {
    let cfg = &shared.cfg;
    let headers = [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-cache"),
    ];
    if cfg.ttft.is_zero() && cfg.tokens_per_second <= 0.0 {
        let mut all = Vec::with_capacity(events.iter().map(|e| e.len()).sum());
        for e in &events {
            all.extend_from_slice(e);
        }
        return (headers, all).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::convert::Infallible>>(16);
    let ttft = cfg.ttft;
    let gap = if cfg.tokens_per_second > 0.0 {
        Duration::from_secs_f64(1.0 / cfg.tokens_per_second)
    } else {
        Duration::ZERO
    };
    tokio::spawn(async move {
        tokio::time::sleep(ttft).await;
        for (i, e) in events.into_iter().enumerate() {
            if i > token_events.start && i < token_events.end && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (headers, body).into_response()
}
