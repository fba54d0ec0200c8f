//! The configuration file as written: serde structs with defaults, unknown fields rejected.
//!
//! These types mirror `tollgate.yaml` one to one. [`crate::Config`] is what the gateway runs on;
//! [`crate::validate`] turns one into the other.

use crate::Secret;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listener and limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Upstream providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Routes: the model names clients send.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Where alerts go besides the log.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// The tamper-evident audit chain.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Traces sent out over OTLP (off unless configured).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `telemetry:`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP traces; absent, nothing is traced and no `traceparent` is read or sent.
    #[serde(default)]
    pub traces: Option<TracesConfig>,
}

/// `telemetry.traces:` — one span per request and one per upstream attempt, exported over
/// OTLP/HTTP (protobuf) in batches off the request path.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// The collector: a base URL (`http://127.0.0.1:4318`, `/v1/traces` is appended) or the full
    /// URL of its traces endpoint (a path ending in `/v1/traces`).
    pub endpoint: String,
    /// Share of requests without a sampled parent that are traced, 0 to 1 (default 0.1). A request
    /// whose `traceparent` says sampled is always traced; one that says not sampled never is.
    #[serde(default)]
    pub sample_ratio: Option<f64>,
    /// `service.name` of the spans (default `tollgate`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// Headers sent with every export (an `authorization` token, say); never logged.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
    /// Time one export may take, ms (default 10,000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Spans waiting for export at most (default 2,048); a request whose spans find no room has
    /// them dropped and counted, never waits.
    #[serde(default)]
    pub queue_spans: Option<u64>,
    /// Adds the prompt and answer (`gen_ai.input.messages`, `gen_ai.output.messages`) to spans of
    /// requests whose policy logs `masked` text — the text after the policy's actions. Off by
    /// default; text logged `full` never goes to traces (a trace store is out of reach of
    /// crypto-shredding).
    #[serde(default)]
    pub capture_content: bool,
}

/// `audit:`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The Ed25519 key that signs checkpoints: a file of 32 bytes (raw, hex or base64); generated
    /// (0600) into `<data_dir>/audit-signing-key` when not set and absent.
    #[serde(default)]
    pub signing_key_file: Option<String>,
    /// A checkpoint after this many new entries (1000 by default).
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// … or after this long, even when nothing happened (300000 ms by default).
    #[serde(default)]
    pub checkpoint_interval_ms: Option<u64>,
    /// The master key that wraps the data keys of stored payloads: a file of 32 bytes (hex or
    /// base64); `TOLLGATE_MASTER_KEY` overrides it; generated (0600) into `<data_dir>/master-key`
    /// when not set and absent.
    #[serde(default)]
    pub master_key_file: Option<String>,
}

/// `alerts:`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Webhooks that receive every alert as a JSON POST (retried with backoff).
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// One webhook.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL to POST to.
    pub url: String,
    /// When set, the key that signs each delivery (Standard Webhooks: a `webhook-signature`
    /// header, HMAC-SHA256); it is never sent itself.
    #[serde(default)]
    pub secret: Option<Secret>,
}

/// `server:`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, `127.0.0.1:4000` by default; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the embedded database and local files live.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// Largest request body accepted, in bytes (10 MiB by default).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// How long a graceful shutdown waits for in-flight requests, in milliseconds.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// How often the key snapshot is reloaded from the store, in milliseconds (changes made through
    /// this instance's admin API apply at once).
    #[serde(default = "default_key_refresh_ms")]
    pub key_refresh_ms: u64,
    /// How long a connection may go without a request in flight before it is closed, in
    /// milliseconds (10,000 by default): a client must send a complete request head within this
    /// time of connecting or of its previous answer, so it also closes idle keep-alive connections.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// How long a request body may take to arrive once the gateway starts reading it, in
    /// milliseconds (30,000 by default); a slower body is answered 408 and its connection closed.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Most client connections open at once (10,000 by default); more wait in the listen backlog
    /// until one closes. Keep it under the process's file-descriptor limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: u64,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`; unset, it is open.
    #[serde(default)]
    pub metrics_token: Option<Secret>,
    /// The threads that serve requests: `auto` (the default: one per core, at most 16), a
    /// number from 1 to 64 — each thread serves the connections given to it from start to end,
    /// with its own pool of connections to providers — or `shared`: one pool of threads that
    /// take work from each other.
    /// (Read as any YAML value, so that a wrong one is named with what it was.)
    #[serde(default)]
    pub request_threads: Option<serde_yaml::Value>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            data_dir: default_data_dir(),
            max_body_bytes: default_max_body_bytes(),
            shutdown_grace_ms: default_shutdown_grace_ms(),
            key_refresh_ms: default_key_refresh_ms(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_connections: default_max_connections(),
            metrics_token: None,
            request_threads: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:4000".into()
}
fn default_data_dir() -> String {
    "./tollgate-data".into()
}
fn default_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_shutdown_grace_ms() -> u64 {
    30_000
}
fn default_key_refresh_ms() -> u64 {
    5_000
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_body_read_timeout_ms() -> u64 {
    30_000
}
fn default_max_connections() -> u64 {
    10_000
}

/// The upstream API dialect of a provider.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// api.openai.com.
    Openai,
    /// Azure OpenAI: deployment URLs and `api-version`.
    AzureOpenai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Any server speaking OpenAI's API: vLLM, Ollama, LM Studio, TGI, the simulator.
    OpenaiCompatible,
}

impl ProviderKind {
    /// The name used in config and telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::AzureOpenai => "azure_openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenaiCompatible => "openai_compatible",
        }
    }
}

/// One entry of `providers:`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name routes refer to.
    pub name: String,
    /// API dialect.
    #[serde(rename = "type")]
    pub kind: ProviderKind,
    /// Base URL. Defaults: `https://api.openai.com/v1`, `https://api.anthropic.com`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// API key (required except for `openai_compatible`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Azure `api-version` (default `2024-10-21`).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Anthropic `anthropic-version` header (default `2023-06-01`).
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// Connect timeout in milliseconds (default 5,000).
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// The provider's rate limits for this account, as the provider states them: what the
    /// throughput KPI measures headroom against.
    #[serde(default)]
    pub quota: Option<QuotaConfig>,
}

/// `quota:` of a provider.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Requests per minute.
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
}

/// One entry of `routes:`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The model name clients send.
    pub name: String,
    /// Where it can go, picked by weight.
    pub deployments: Vec<DeploymentConfig>,
    /// Other routes tried in order when every deployment of this one failed.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Time one attempt may take (for streams: until the first event), ms. Default 60,000.
    #[serde(default)]
    pub attempt_timeout_ms: Option<u64>,
    /// Time all attempts together may take, backoff included, ms. Default 120,000.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Retries of the same deployment on a retryable error before moving on. Default 1.
    #[serde(default)]
    pub retries: Option<u32>,
    /// First backoff between retries, ms; doubles each time, with jitter. Default 100.
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// Longest silence inside a stream before it is cut with an error event, ms. Default 60,000.
    #[serde(default)]
    pub stream_idle_timeout_ms: Option<u64>,
    /// Longest a stream may go on in all, from its first event, before it is cut with an error
    /// event (the upstream is then dropped: a provider that never stops cannot hold a
    /// connection and a worker for ever), ms. Default 900,000 (15 minutes).
    #[serde(default)]
    pub stream_timeout_ms: Option<u64>,
}

/// One entry of `deployments:`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Provider name.
    pub provider: String,
    /// Upstream model (for Azure: the deployment name).
    pub model: String,
    /// Share of traffic among the route's deployments (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Contract or self-hosted prices; they win over the built-in catalog.
    #[serde(default)]
    pub price: Option<PriceConfig>,
}

/// `price:` of a deployment: token prices in USD per 1,000,000 tokens (decimal strings), or a
/// self-hosted model's GPU-hour cost and measured throughput.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Uncached input, USD per 1M tokens.
    #[serde(default)]
    pub input: Option<String>,
    /// Prompt-cache reads (default: `input`).
    #[serde(default)]
    pub cached_input: Option<String>,
    /// Prompt-cache writes (default: `input`).
    #[serde(default)]
    pub cache_write: Option<String>,
    /// Output, USD per 1M tokens.
    #[serde(default)]
    pub output: Option<String>,
    /// Reasoning output (default: `output`).
    #[serde(default)]
    pub reasoning: Option<String>,
    /// Self-hosted: cost of one GPU hour, USD.
    #[serde(default)]
    pub gpu_hour_usd: Option<String>,
    /// Self-hosted: tokens (input and output) the deployment processes per second.
    #[serde(default)]
    pub tokens_per_second: Option<u64>,
}

fn default_weight() -> u32 {
    1
}
