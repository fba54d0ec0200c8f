//! Tollgate's configuration, read in two phases.
//!
//! 1. **Raw** ([`raw::RawConfig`]): the YAML file as written. Strings get `${ENV}` interpolation
//!    ([`env`]), then serde reads the tree with unknown fields rejected; a type error names the path
//!    of the mistake (`routes[0].deployments[1].weight`).
//! 2. **Validated** ([`Config`]): names resolved to indices, URLs parsed, defaults applied, every
//!    problem collected with its path. The gateway only ever sees this type.
//!
//! Secrets live in [`Secret`], which prints as `***` everywhere.
//!
//! ```
//! let cfg = tollgate_config::Config::from_yaml_str(r#"
//! providers:
//!   - { name: sim, type: openai_compatible, base_url: "http://127.0.0.1:4010/v1" }
//! routes:
//!   - name: gpt-4o-mini
//!     deployments: [{ provider: sim, model: gpt-4o-mini }]
//! "#, &|_| None).unwrap();
//! assert_eq!(cfg.routes[0].deployments[0].model, "gpt-4o-mini");
//! ```

pub mod env;
pub mod raw;
mod secret;
mod validate;

pub use raw::ProviderKind;
pub use secret::Secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{0}")]
    Syntax(String),
    /// The file is YAML but not a valid configuration; one line per problem, each with its path.
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// One validation problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a path into the file (`routes[2].fallbacks[0]`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The validated configuration the gateway runs on.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listener and limits.
    pub server: Server,
    /// Upstream providers, referred to by index.
    pub providers: Vec<Provider>,
    /// Routes, in file order.
    pub routes: Vec<Route>,
    /// Alert webhooks: (URL, signing secret).
    pub webhooks: Vec<(String, Option<Secret>)>,
    /// The audit chain.
    pub audit: Audit,
    /// OTLP traces, when configured.
    pub traces: Option<Traces>,
}

/// Validated `telemetry.traces:`.
#[derive(Debug, Clone)]
pub struct Traces {
    /// The collector's traces URL (ending in `/v1/traces`).
    pub endpoint: String,
    /// Share of unparented requests traced, 0 to 1.
    pub sample_ratio: f64,
    /// `service.name`.
    pub service_name: String,
    /// Headers of every export.
    pub headers: Vec<(String, Secret)>,
    /// Time one export may take.
    pub timeout: Duration,
    /// Spans waiting for export at most.
    pub queue_spans: u64,
    /// Whether spans carry masked content.
    pub capture_content: bool,
}

/// Validated `audit:`.
#[derive(Debug, Clone)]
pub struct Audit {
    /// The checkpoint signing key's file (`<data_dir>/audit-signing-key` by default).
    pub signing_key_file: PathBuf,
    /// A checkpoint after this many new entries.
    pub checkpoint_every: u64,
    /// … or after this long.
    pub checkpoint_interval: Duration,
    /// The payloads' master key file (`<data_dir>/master-key` by default).
    pub master_key_file: PathBuf,
}

/// Validated `server:`.
#[derive(Debug, Clone)]
pub struct Server {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Graceful-shutdown wait.
    pub shutdown_grace: Duration,
    /// Key snapshot reload interval.
    pub key_refresh: Duration,
    /// Longest time a connection may go without a request in flight (the time to send a request
    /// head, and the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Longest time a request body may take to arrive once reading starts.
    pub body_read_timeout: Duration,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// The bearer token `/metrics` requires, if any (never empty).
    pub metrics_token: Option<Secret>,
    /// The threads that serve requests.
    pub request_threads: RequestThreads,
}

/// How requests are spread over threads (`server.request_threads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestThreads {
    /// This many threads, each serving the connections given to it from start to end (a
    /// connection never moves): no thread wakes another to share its work, which on a small
    /// machine is most of what a request costs beyond its own work.
    Own(usize),
    /// One pool of threads that take work from each other (tokio's work-stealing runtime).
    Shared,
}

/// A validated provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Unique name.
    pub name: String,
    /// Dialect.
    pub kind: ProviderKind,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// Key, if any.
    pub api_key: Option<Secret>,
    /// Azure `api-version`.
    pub api_version: String,
    /// Anthropic `anthropic-version`.
    pub anthropic_version: String,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// The account's request quota per minute at this provider, if stated.
    pub quota_requests_per_minute: Option<u64>,
    /// … and its token quota per minute.
    pub quota_tokens_per_minute: Option<u64>,
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The model name clients send.
    pub name: String,
    /// Deployments with weight > 0 come first; at least one exists.
    pub deployments: Vec<Deployment>,
    /// Indices into [`Config::routes`], tried in order.
    pub fallbacks: Vec<usize>,
    /// Per-attempt timeout (streams: until the first event).
    pub attempt_timeout: Duration,
    /// Overall deadline for all attempts.
    pub deadline: Duration,
    /// Retries of one deployment before moving on.
    pub retries: u32,
    /// First backoff.
    pub backoff: Duration,
    /// Longest silence inside a stream.
    pub stream_idle_timeout: Duration,
    /// Longest a stream may go on in all.
    pub stream_timeout: Duration,
}

/// A validated deployment.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Index into [`Config::providers`].
    pub provider: usize,
    /// Upstream model (Azure: deployment name).
    pub model: String,
    /// Weight.
    pub weight: u32,
    /// Price override, as written (checked by the meter, which owns prices).
    pub price: Option<raw::PriceConfig>,
}

impl Config {
    /// Reads, interpolates with the process environment, and validates a file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text, &|name| std::env::var(name).ok())
    }

    /// Parses and validates YAML text, with `lookup` for `${VAR}`.
    pub fn from_yaml_str(
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (raw, unset) = validate::parse_raw(text, lookup)?;
        validate::validate(raw, &unset)
    }

    /// Looks a route up by the model name a client sends.
    pub fn route_index(&self, name: &str) -> Option<usize> {
        self.routes.iter().position(|r| r.name == name)
    }

    /// A human summary of what would be served; secrets show as `***`.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "listen:    {}", self.server.listen);
        let _ = writeln!(s, "data_dir:  {}", self.server.data_dir.display());
        let _ = writeln!(s, "max body:  {} bytes", self.server.max_body_bytes);
        let _ = writeln!(
            s,
            "clients:   at most {} connections; request head within {} ms, body within {} ms",
            self.server.max_connections,
            self.server.header_read_timeout.as_millis(),
            self.server.body_read_timeout.as_millis()
        );
        let _ = writeln!(
            s,
            "requests:  {}",
            match self.server.request_threads {
                RequestThreads::Own(1) => "one thread".to_string(),
                RequestThreads::Own(n) => format!("{n} threads, each serving its own connections"),
                RequestThreads::Shared => "threads sharing their work".to_string(),
            }
        );
        let _ = writeln!(
            s,
            "metrics:   {}",
            match &self.server.metrics_token {
                Some(t) => format!("bearer token {t}"),
                None => "open (no server.metrics_token)".into(),
            }
        );
        let _ = writeln!(
            s,
            "traces:    {}",
            match &self.traces {
                Some(t) => format!(
                    "OTLP to {} ({} % of unparented requests{})",
                    t.endpoint,
                    (t.sample_ratio * 1e6).round() / 1e4,
                    if t.capture_content {
                        ", masked content"
                    } else {
                        ""
                    }
                ),
                None => "off (no telemetry.traces)".into(),
            }
        );
        let _ = writeln!(s, "providers:");
        for p in &self.providers {
            let key = match &p.api_key {
                Some(k) => format!("key {k}"),
                None => "no key".into(),
            };
            let _ = writeln!(
                s,
                "  {:<16} {:<18} {}  ({key})",
                p.name,
                p.kind.as_str(),
                url_shown(&p.base_url)
            );
        }
        let _ = writeln!(s, "routes:");
        for r in &self.routes {
            let deps: Vec<String> = r
                .deployments
                .iter()
                .map(|d| {
                    format!(
                        "{}/{} w{}",
                        self.providers[d.provider].name, d.model, d.weight
                    )
                })
                .collect();
            let _ = write!(s, "  {:<24} -> {}", r.name, deps.join(", "));
            if !r.fallbacks.is_empty() {
                let names: Vec<&str> = r
                    .fallbacks
                    .iter()
                    .map(|&i| self.routes[i].name.as_str())
                    .collect();
                let _ = write!(s, "  then {}", names.join(", "));
            }
            let _ = writeln!(
                s,
                "  [attempt {}ms, deadline {}ms, retries {}]",
                r.attempt_timeout.as_millis(),
                r.deadline.as_millis(),
                r.retries
            );
        }
        s
    }
}
/// `url` with a password it carries (`https://user:pass@host`) shown as `***`.
fn url_shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string().trim_end_matches('/').to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_hides_a_password_in_a_base_url() {
        let cfg = Config::from_yaml_str(
            "providers:\n  - { name: p, type: openai_compatible, base_url: \"http://admin:hunter2pass@127.0.0.1:9/v1\" }\n",
            &|_| None,
        )
        .unwrap();
        let s = cfg.summary();
        assert!(!s.contains("hunter2pass"), "{s}");
        assert!(s.contains("http://admin:***@127.0.0.1:9/v1"), "{s}");
        // Without a password the URL is shown as written.
        assert_eq!(url_shown("https://h.example/v1"), "https://h.example/v1");
    }
}
