//! Phase one (interpolate + parse) and phase two (validate) of reading the configuration.

use crate::env::interpolate;
use crate::raw::{ProviderKind, RawConfig};
use crate::{Config, ConfigError, Deployment, Problem, Provider, Route, Server};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Unset variables, by the path of the value that named them.
pub(crate) type Unset = HashMap<String, Vec<String>>;

/// Parses YAML, interpolates every string value, and reads the tree into [`RawConfig`].
pub(crate) fn parse_raw(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(RawConfig, Unset), ConfigError> {
    let mut tree: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ConfigError::Syntax(format!("YAML syntax error: {e}")))?;
    if tree.is_null() {
        tree = serde_yaml::Value::Mapping(Default::default());
    }
    let mut unset = Unset::new();
    let mut problems = Vec::new();
    interpolate_tree(&mut tree, String::new(), lookup, &mut unset, &mut problems);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let raw: RawConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Invalid(vec![Problem {
            path: if path == "." {
                "(top level)".into()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }])
    })?;
    Ok((raw, unset))
}

fn interpolate_tree(
    v: &mut serde_yaml::Value,
    path: String,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Unset,
    problems: &mut Vec<Problem>,
) {
    match v {
        serde_yaml::Value::String(s) if s.contains('$') => match interpolate(s, lookup) {
            Ok((expanded, missing)) => {
                *s = expanded;
                if !missing.is_empty() {
                    unset.insert(path, missing);
                }
            }
            Err(message) => problems.push(Problem { path, message }),
        },
        serde_yaml::Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, format!("{path}[{i}]"), lookup, unset, problems);
            }
        }
        serde_yaml::Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let child = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                interpolate_tree(item, child, lookup, unset, problems);
            }
        }
        _ => {}
    }
}

struct Collector<'a> {
    problems: Vec<Problem>,
    unset: &'a Unset,
}

impl Collector<'_> {
    fn push(&mut self, path: String, message: impl Into<String>) {
        let mut message = message.into();
        if let Some(vars) = self.unset.get(&path) {
            message.push_str(&format!(
                " (environment variable {} is not set)",
                vars.join(", ")
            ));
        }
        self.problems.push(Problem { path, message });
    }
}

fn ms(value: Option<u64>, default: u64, path: String, c: &mut Collector<'_>) -> Duration {
    let v = value.unwrap_or(default);
    if v == 0 {
        c.push(path, "must be greater than 0");
    }
    Duration::from_millis(v)
}

/// A quota: more than 0 when given.
fn quota(v: Option<u64>, path: String, c: &mut Collector<'_>) -> Option<u64> {
    if v == Some(0) {
        c.push(
            path,
            "must be greater than 0 (leave it out when there is none)",
        );
    }
    v.filter(|&q| q > 0)
}

/// The largest `server.max_connections` accepted.
const MAX_CONNECTIONS: u64 = 1_000_000;

/// The most `server.request_threads` accepted.
const MAX_REQUEST_THREADS: u64 = 64;

/// The threads `auto` gives: one per core the process may use, at most this many.
const AUTO_REQUEST_THREADS: usize = 16;

/// `server.request_threads`, or what it says is wrong.
fn request_threads(v: Option<&serde_yaml::Value>) -> Result<crate::RequestThreads, String> {
    use serde_yaml::Value;
    let n = match v {
        None | Some(Value::Null) => return Ok(auto_request_threads()),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| threads_expected(n))?,
        Some(Value::String(w)) => match w.trim() {
            "auto" => return Ok(auto_request_threads()),
            "shared" => return Ok(crate::RequestThreads::Shared),
            w => w
                .parse::<u64>()
                .map_err(|_| threads_expected(format_args!("`{w}`")))?,
        },
        Some(Value::Bool(b)) => return Err(threads_expected(b)),
        Some(Value::Sequence(_)) => return Err(threads_expected("a list")),
        Some(Value::Mapping(_)) => return Err(threads_expected("a map")),
        Some(Value::Tagged(t)) => {
            return Err(threads_expected(format_args!("a value tagged {}", t.tag)));
        }
    };
    if !(1..=MAX_REQUEST_THREADS).contains(&n) {
        return Err(threads_expected(n));
    }
    Ok(crate::RequestThreads::Own(
        usize::try_from(n).unwrap_or(AUTO_REQUEST_THREADS),
    ))
}

/// What `server.request_threads` takes, and what it `got`.
fn threads_expected(got: impl std::fmt::Display) -> String {
    format!("must be `auto`, `shared` or a number from 1 to {MAX_REQUEST_THREADS} (got {got})")
}

fn auto_request_threads() -> crate::RequestThreads {
    crate::RequestThreads::Own(
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(AUTO_REQUEST_THREADS),
    )
}

/// The shortest `server.metrics_token` accepted.
const MIN_METRICS_TOKEN_CHARS: usize = 16;

/// Checks everything and builds the runtime [`Config`].
pub(crate) fn validate(raw: RawConfig, unset: &Unset) -> Result<Config, ConfigError> {
    let mut c = Collector {
        problems: Vec::new(),
        unset,
    };

    let listen: SocketAddr = match raw.server.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            c.push(
                "server.listen".into(),
                format!(
                    "{:?} is not an address like 127.0.0.1:4000",
                    raw.server.listen
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
    };
    if raw.server.max_body_bytes == 0 {
        c.push("server.max_body_bytes".into(), "must be greater than 0");
    }
    if raw.server.data_dir.trim().is_empty() {
        c.push("server.data_dir".into(), "must not be empty");
    }
    if !(1..=MAX_CONNECTIONS).contains(&raw.server.max_connections) {
        c.push(
            "server.max_connections".into(),
            format!("must be between 1 and {MAX_CONNECTIONS}"),
        );
    }
    // An empty token (say, from an unset variable) must not silently leave `/metrics` open.
    let metrics_token = match raw.server.metrics_token {
        Some(t) if t.expose().chars().count() < MIN_METRICS_TOKEN_CHARS => {
            let what = if t.is_empty() {
                "must not be empty (remove the field to leave /metrics open)".to_string()
            } else {
                format!("must be at least {MIN_METRICS_TOKEN_CHARS} characters long")
            };
            c.push("server.metrics_token".into(), what);
            None
        }
        t => t,
    };
    let request_threads =
        request_threads(raw.server.request_threads.as_ref()).unwrap_or_else(|why| {
            c.push("server.request_threads".into(), why);
            crate::RequestThreads::Shared
        });
    let server = Server {
        listen,
        data_dir: PathBuf::from(&raw.server.data_dir),
        max_body_bytes: usize::try_from(raw.server.max_body_bytes).unwrap_or(usize::MAX),
        shutdown_grace: Duration::from_millis(raw.server.shutdown_grace_ms),
        key_refresh: ms(
            Some(raw.server.key_refresh_ms),
            5_000,
            "server.key_refresh_ms".into(),
            &mut c,
        ),
        header_read_timeout: ms(
            Some(raw.server.header_read_timeout_ms),
            10_000,
            "server.header_read_timeout_ms".into(),
            &mut c,
        ),
        body_read_timeout: ms(
            Some(raw.server.body_read_timeout_ms),
            30_000,
            "server.body_read_timeout_ms".into(),
            &mut c,
        ),
        max_connections: usize::try_from(raw.server.max_connections).unwrap_or(1),
        metrics_token,
        request_threads,
    };

    let mut providers = Vec::new();
    let mut provider_index = HashMap::new();
    for (i, p) in raw.providers.into_iter().enumerate() {
        let at = |field: &str| format!("providers[{i}].{field}");
        if p.name.trim().is_empty() {
            c.push(at("name"), "must not be empty");
        } else if provider_index.insert(p.name.clone(), i).is_some() {
            c.push(at("name"), format!("duplicate provider name {:?}", p.name));
        }
        let default_base = match p.kind {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::AzureOpenai | ProviderKind::OpenaiCompatible => None,
        };
        let base_url = match p
            .base_url
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(default_base)
        {
            None => {
                c.push(
                    at("base_url"),
                    format!("required for type {}", p.kind.as_str()),
                );
                String::new()
            }
            Some(u) => match url::Url::parse(u) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() =>
                {
                    u.trim_end_matches('/').to_string()
                }
                _ => {
                    c.push(at("base_url"), format!("{u:?} is not an http(s) URL"));
                    String::new()
                }
            },
        };
        let api_key = p.api_key.filter(|k| !k.is_empty());
        if api_key.is_none() && p.kind != ProviderKind::OpenaiCompatible {
            c.push(
                at("api_key"),
                format!("required for type {}", p.kind.as_str()),
            );
        }
        providers.push(Provider {
            name: p.name,
            kind: p.kind,
            base_url,
            api_key,
            api_version: p.api_version.unwrap_or_else(|| "2024-10-21".into()),
            anthropic_version: p.anthropic_version.unwrap_or_else(|| "2023-06-01".into()),
            connect_timeout: ms(
                p.connect_timeout_ms,
                5_000,
                at("connect_timeout_ms"),
                &mut c,
            ),
            quota_requests_per_minute: quota(
                p.quota.and_then(|q| q.requests_per_minute),
                at("quota.requests_per_minute"),
                &mut c,
            ),
            quota_tokens_per_minute: quota(
                p.quota.and_then(|q| q.tokens_per_minute),
                at("quota.tokens_per_minute"),
                &mut c,
            ),
        });
    }

    let mut route_index: HashMap<String, usize> = HashMap::new();
    for (i, r) in raw.routes.iter().enumerate() {
        // The first route of a name wins; later duplicates are reported below.
        route_index.entry(r.name.clone()).or_insert(i);
    }
    let mut seen_routes = HashSet::new();
    let mut routes = Vec::new();
    for (i, r) in raw.routes.into_iter().enumerate() {
        let at = |field: &str| format!("routes[{i}].{field}");
        if r.name.trim().is_empty() {
            c.push(at("name"), "must not be empty");
        } else if !seen_routes.insert(r.name.clone()) {
            c.push(at("name"), format!("duplicate route name {:?}", r.name));
        }
        if r.deployments.is_empty() {
            c.push(at("deployments"), "a route needs at least one deployment");
        }
        let mut deployments = Vec::new();
        for (j, d) in r.deployments.into_iter().enumerate() {
            let dat = |field: &str| format!("routes[{i}].deployments[{j}].{field}");
            match provider_index.get(&d.provider) {
                Some(&p) => deployments.push(Deployment {
                    provider: p,
                    model: d.model.clone(),
                    weight: d.weight,
                    price: d.price.clone(),
                }),
                None => c.push(
                    dat("provider"),
                    format!("unknown provider {:?}", d.provider),
                ),
            }
            if d.model.trim().is_empty() {
                c.push(dat("model"), "must not be empty");
            }
        }
        if !deployments.is_empty() && deployments.iter().all(|d| d.weight == 0) {
            c.push(
                at("deployments"),
                "at least one deployment needs a weight above 0",
            );
        }
        // Weighted deployments first, so the router's pick only looks at a prefix.
        deployments.sort_by_key(|d| d.weight == 0);
        let mut fallbacks = Vec::new();
        for (j, f) in r.fallbacks.iter().enumerate() {
            let fat = format!("routes[{i}].fallbacks[{j}]");
            match route_index.get(f) {
                None => c.push(fat, format!("unknown route {f:?}")),
                Some(&k) if k == i => c.push(fat, "a route cannot fall back to itself"),
                Some(&k) if fallbacks.contains(&k) => c.push(fat, format!("{f:?} is listed twice")),
                Some(&k) => fallbacks.push(k),
            }
        }
        routes.push(Route {
            name: r.name,
            deployments,
            fallbacks,
            attempt_timeout: ms(
                r.attempt_timeout_ms,
                60_000,
                at("attempt_timeout_ms"),
                &mut c,
            ),
            deadline: ms(r.deadline_ms, 120_000, at("deadline_ms"), &mut c),
            retries: r.retries.unwrap_or(1),
            backoff: Duration::from_millis(r.backoff_ms.unwrap_or(100)),
            stream_idle_timeout: ms(
                r.stream_idle_timeout_ms,
                60_000,
                at("stream_idle_timeout_ms"),
                &mut c,
            ),
            stream_timeout: ms(
                r.stream_timeout_ms,
                900_000,
                at("stream_timeout_ms"),
                &mut c,
            ),
        });
    }

    let mut webhooks = Vec::new();
    for (i, w) in raw.alerts.webhooks.into_iter().enumerate() {
        match url::Url::parse(&w.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                webhooks.push((w.url, w.secret.filter(|s| !s.is_empty())))
            }
            _ => c.push(
                format!("alerts.webhooks[{i}].url"),
                format!("{:?} is not an http(s) URL", w.url),
            ),
        }
    }

    let checkpoint_every = raw.audit.checkpoint_every.unwrap_or(1000);
    if checkpoint_every == 0 {
        c.push("audit.checkpoint_every".to_string(), "must be at least 1");
    }
    let checkpoint_interval = ms(
        raw.audit.checkpoint_interval_ms,
        300_000,
        "audit.checkpoint_interval_ms".to_string(),
        &mut c,
    );
    let audit = crate::Audit {
        signing_key_file: raw
            .audit
            .signing_key_file
            .map(PathBuf::from)
            .unwrap_or_else(|| server.data_dir.join("audit-signing-key")),
        checkpoint_every,
        checkpoint_interval,
        master_key_file: raw
            .audit
            .master_key_file
            .map(PathBuf::from)
            .unwrap_or_else(|| server.data_dir.join("master-key")),
    };

    let traces = raw.telemetry.traces.map(|t| traces(t, &mut c));

    if c.problems.is_empty() {
        Ok(Config {
            server,
            providers,
            routes,
            webhooks,
            audit,
            traces,
        })
    } else {
        Err(ConfigError::Invalid(c.problems))
    }
}

/// Headers of the export requests the exporter sets itself.
const PROTOCOL_HEADERS: [&str; 11] = [
    "host",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Unicode's explicit direction marks and overrides (which can make a name read differently).
fn is_bidi(ch: char) -> bool {
    matches!(ch, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The longest `telemetry.traces.service_name` accepted.
const MAX_SERVICE_NAME: usize = 128;

fn traces(t: crate::raw::TracesConfig, c: &mut Collector<'_>) -> crate::Traces {
    let at = |field: &str| format!("telemetry.traces.{field}");
    let endpoint = match url::Url::parse(t.endpoint.trim()) {
        Ok(mut u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if u.query().is_some() || u.fragment().is_some() {
                c.push(at("endpoint"), "must not carry a query or a fragment");
            }
            if !u.username().is_empty() || u.password().is_some() {
                c.push(
                    at("endpoint"),
                    "must not carry a user or password (put credentials in `headers`, which are never shown)",
                );
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            if !u.path().ends_with("/v1/traces") {
                let path = format!("{}/v1/traces", u.path().trim_end_matches('/'));
                u.set_path(&path);
            }
            u.to_string()
        }
        _ => {
            c.push(
                at("endpoint"),
                format!(
                    "{:?} is not an http(s) URL like http://127.0.0.1:4318",
                    t.endpoint
                ),
            );
            String::new()
        }
    };
    let sample_ratio = t.sample_ratio.unwrap_or(0.1);
    if !(0.0..=1.0).contains(&sample_ratio) {
        c.push(at("sample_ratio"), "must be between 0 and 1");
    }
    let service_name = t.service_name.unwrap_or_else(|| "tollgate".into());
    if service_name.trim().is_empty()
        || service_name.chars().count() > MAX_SERVICE_NAME
        || service_name
            .chars()
            .any(|ch| ch.is_control() || is_bidi(ch))
    {
        c.push(
            at("service_name"),
            format!(
                "must be 1 to {MAX_SERVICE_NAME} characters, without control or direction characters"
            ),
        );
    }
    let mut headers: Vec<(String, crate::Secret)> = Vec::new();
    for (name, value) in t.headers {
        let path = at(&format!("headers.{name}"));
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            c.push(path, "is not a valid header name");
        } else if PROTOCOL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            c.push(
                path,
                "is set by the exporter itself (the HTTP protocol's headers cannot be overridden)",
            );
        } else if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            c.push(path, "is given twice (header names are case-insensitive)");
        } else if c.unset.contains_key(&path) {
            c.push(path, "must be set");
        } else if value.expose().trim().is_empty() {
            c.push(path, "must not be empty");
        } else if http::HeaderValue::from_str(value.expose()).is_err() {
            c.push(
                path,
                "is not a valid header value (one line of visible characters)",
            );
        } else {
            headers.push((name, value));
        }
    }
    let timeout = ms(t.timeout_ms, 10_000, at("timeout_ms"), c);
    let queue_spans = t.queue_spans.unwrap_or(2_048);
    if !(1..=1_000_000).contains(&queue_spans) {
        c.push(at("queue_spans"), "must be between 1 and 1000000");
    }
    crate::Traces {
        queue_spans,
        endpoint,
        sample_ratio,
        service_name,
        headers,
        timeout,
        capture_content: t.capture_content,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, ConfigError};

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_str(yaml, &|n| {
            (n == "SIM_API_KEY").then(|| "sekret".to_string())
        })
    }

    fn problems(yaml: &str) -> Vec<String> {
        match load(yaml) {
            Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    const SMALLEST: &str = r#"
server:
  listen: 127.0.0.1:4000
  data_dir: ./tollgate-data
providers:
  - name: sim
    type: openai_compatible
    base_url: http://127.0.0.1:4010/v1
    api_key: ${SIM_API_KEY}
routes:
  - name: gpt-4o-mini
    deployments:
      - { provider: sim, model: gpt-4o-mini, weight: 1 }
    fallbacks: [backup-route]
  - name: backup-route
    deployments:
      - { provider: sim, model: other }
"#;

    #[test]
    fn the_smallest_config_of_the_spec_loads() {
        let cfg = load(SMALLEST).unwrap();
        assert_eq!(
            cfg.providers[0].api_key.as_ref().unwrap().expose(),
            "sekret"
        );
        assert_eq!(cfg.routes[0].fallbacks, vec![1]);
        assert_eq!(cfg.server.max_body_bytes, 10 * 1024 * 1024);
        assert!(!cfg.summary().contains("sekret"));
        assert!(cfg.summary().contains("***"));
    }

    #[test]
    fn a_routes_stream_time_is_bounded_by_default_and_may_be_set() {
        let cfg = load(SMALLEST).unwrap();
        assert_eq!(cfg.routes[0].stream_timeout.as_millis(), 900_000);
        let yaml = SMALLEST.replace(
            "    fallbacks: [backup-route]\n",
            "    fallbacks: [backup-route]\n    stream_timeout_ms: 1800000\n",
        );
        assert_eq!(
            load(&yaml).unwrap().routes[0].stream_timeout.as_millis(),
            1_800_000
        );
        let p = problems(&SMALLEST.replace(
            "    fallbacks: [backup-route]\n",
            "    fallbacks: [backup-route]\n    stream_timeout_ms: 0\n",
        ));
        assert_eq!(p, ["routes[0].stream_timeout_ms: must be greater than 0"]);
    }

    #[test]
    fn unset_optional_key_is_fine_for_openai_compatible() {
        let cfg = Config::from_yaml_str(SMALLEST, &|_| None).unwrap();
        assert!(cfg.providers[0].api_key.is_none());
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        let p = problems(
            "routes:\n  - name: a\n    deployments: [{ provider: x, model: m, wieght: 2 }]\n",
        );
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("routes[0].deployments[0]"), "{p:?}");
        assert!(p[0].contains("unknown field `wieght`"), "{p:?}");
    }

    #[test]
    fn wrong_types_name_the_path() {
        let p = problems("server:\n  max_body_bytes: lots\n");
        assert!(p[0].starts_with("server.max_body_bytes"), "{p:?}");
    }

    #[test]
    fn every_semantic_problem_is_listed() {
        let p = problems(
            r#"
server: { listen: "nowhere" }
providers:
  - { name: oa, type: openai }
  - { name: oa, type: azure_openai, api_key: k }
routes:
  - name: r
    deployments: [{ provider: ghost, model: m }]
    fallbacks: [r, nope]
  - name: r
    deployments: []
"#,
        );
        let joined = p.join("\n");
        for needle in [
            "server.listen",
            "providers[0].api_key: required for type openai",
            "providers[1].name: duplicate provider name",
            "providers[1].base_url: required for type azure_openai",
            "routes[0].deployments[0].provider: unknown provider \"ghost\"",
            "routes[0].fallbacks[0]: a route cannot fall back to itself",
            "routes[0].fallbacks[1]: unknown route \"nope\"",
            "routes[1].name: duplicate route name",
            "routes[1].deployments: a route needs at least one deployment",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
    }

    #[test]
    fn a_required_key_from_an_unset_variable_names_the_variable() {
        let p = problems(
            "providers:\n  - { name: oa, type: openai, api_key: \"${OPENAI_API_KEY}\" }\n",
        );
        assert!(p[0].contains("OPENAI_API_KEY is not set"), "{p:?}");
    }

    #[test]
    fn alert_webhooks_must_be_urls() {
        let p = problems("alerts:\n  webhooks: [{ url: \"not a url\" }]\n");
        assert!(p[0].starts_with("alerts.webhooks[0].url"), "{p:?}");
        let p = problems("alerts:\n  webhooks: [{ url: \"http://x\", retries: 3 }]\n");
        assert!(p[0].contains("unknown field `retries`"), "{p:?}");
        let cfg = load(
            "alerts:\n  webhooks: [{ url: \"https://hooks.example.com/t\", secret: s3cret }]\n",
        )
        .unwrap();
        assert_eq!(cfg.webhooks.len(), 1);
        assert_eq!(format!("{:?}", cfg.webhooks[0].1), "Some(***)");
    }

    /// `server.request_threads`: one per core by default (at most 16), a number, `shared`, or
    /// from a variable; anything else is named with the value it got.
    #[test]
    fn request_threads_are_auto_a_number_or_shared() {
        let cores = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(16);
        let cfg = load("server: {}\n").unwrap();
        assert_eq!(
            cfg.server.request_threads,
            crate::RequestThreads::Own(cores)
        );
        for (v, want) in [
            ("auto", crate::RequestThreads::Own(cores)),
            ("3", crate::RequestThreads::Own(3)),
            ("64", crate::RequestThreads::Own(64)),
            ("shared", crate::RequestThreads::Shared),
            ("'2'", crate::RequestThreads::Own(2)),
        ] {
            let cfg = load(&format!("server:\n  request_threads: {v}\n")).unwrap();
            assert_eq!(cfg.server.request_threads, want, "{v}");
        }
        let cfg = Config::from_yaml_str("server:\n  request_threads: ${THREADS:-auto}\n", &|n| {
            (n == "THREADS").then(|| "shared".to_string())
        })
        .unwrap();
        assert_eq!(cfg.server.request_threads, crate::RequestThreads::Shared);
        assert!(
            cfg.summary().contains("threads sharing their work"),
            "{}",
            cfg.summary()
        );
        for (v, got) in [
            ("0", "0"),
            ("65", "65"),
            ("many", "`many`"),
            ("-1", "-1"),
            ("1.5", "1.5"),
            ("true", "true"),
            ("'-1'", "`-1`"),
            ("[1]", "a list"),
            ("{a: 1}", "a map"),
            ("1e1", "10.0"),
            ("!x 2", "a value tagged !x"),
        ] {
            let p = problems(&format!("server:\n  request_threads: {v}\n")).join("\n");
            assert!(
                p.contains(&format!(
                    "server.request_threads: must be `auto`, `shared` or a number from 1 to 64 (got {got})"
                )),
                "{v}: {p}"
            );
        }
    }

    #[test]
    fn server_timeouts_connection_limit_and_metrics_token() {
        let cfg = load("server: {}\n").unwrap();
        assert_eq!(cfg.server.header_read_timeout.as_millis(), 10_000);
        assert_eq!(cfg.server.body_read_timeout.as_millis(), 30_000);
        assert_eq!(cfg.server.max_connections, 10_000);
        assert!(cfg.server.metrics_token.is_none());

        let cfg = Config::from_yaml_str(
            "server:\n  header_read_timeout_ms: 200\n  body_read_timeout_ms: 300\n  max_connections: 50\n  metrics_token: ${METRICS_TOKEN}\n",
            &|n| (n == "METRICS_TOKEN").then(|| "scrape-token-0123456789".to_string()),
        )
        .unwrap();
        assert_eq!(cfg.server.header_read_timeout.as_millis(), 200);
        assert_eq!(cfg.server.body_read_timeout.as_millis(), 300);
        assert_eq!(cfg.server.max_connections, 50);
        let token = cfg.server.metrics_token.as_ref().unwrap();
        assert_eq!(token.expose(), "scrape-token-0123456789");
        assert!(!cfg.summary().contains("scrape-token"));

        let p = problems(
            "server:\n  header_read_timeout_ms: 0\n  body_read_timeout_ms: 0\n  max_connections: 0\n",
        )
        .join("\n");
        for needle in [
            "server.header_read_timeout_ms: must be greater than 0",
            "server.body_read_timeout_ms: must be greater than 0",
            "server.max_connections: must be between 1 and",
        ] {
            assert!(p.contains(needle), "missing {needle:?} in:\n{p}");
        }
        // A token from an unset variable must not leave `/metrics` open without a word.
        let p = problems("server:\n  metrics_token: ${METRICS_TOKEN}\n");
        assert!(
            p[0].starts_with("server.metrics_token: must not be empty"),
            "{p:?}"
        );
        assert!(p[0].contains("METRICS_TOKEN is not set"), "{p:?}");
        let p = problems("server:\n  metrics_token: short\n");
        assert!(p[0].contains("at least 16 characters"), "{p:?}");
    }

    #[test]
    fn traces_are_off_by_default_and_checked_when_set() {
        let cfg = load("server: {}\n").unwrap();
        assert!(cfg.traces.is_none());
        assert!(cfg.summary().contains("traces:    off"));

        let cfg = Config::from_yaml_str(
            "telemetry:\n  traces:\n    endpoint: http://127.0.0.1:4318\n    headers: { authorization: \"Bearer ${OTLP_TOKEN}\" }\n",
            &|n| (n == "OTLP_TOKEN").then(|| "otlp-secret-123".to_string()),
        )
        .unwrap();
        let t = cfg.traces.as_ref().unwrap();
        assert_eq!(t.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(t.sample_ratio, 0.1);
        assert_eq!(t.service_name, "tollgate");
        assert_eq!(t.timeout.as_millis(), 10_000);
        assert!(!t.capture_content);
        assert_eq!(t.headers[0].1.expose(), "Bearer otlp-secret-123");
        let summary = cfg.summary();
        assert!(
            summary.contains("OTLP to http://127.0.0.1:4318/v1/traces (10 %"),
            "{summary}"
        );
        assert!(!summary.contains("otlp-secret"), "{summary}");
        // a full traces URL is kept as written
        let cfg = load(
            "telemetry:\n  traces: { endpoint: \"https://otel.example.com/ingest/v1/traces\", sample_ratio: 1 }\n",
        )
        .unwrap();
        assert_eq!(
            cfg.traces.unwrap().endpoint,
            "https://otel.example.com/ingest/v1/traces"
        );

        let p = problems(
            "telemetry:\n  traces:\n    endpoint: collector:4318\n    sample_ratio: 1.5\n    service_name: \"\"\n    timeout_ms: 0\n    queue_spans: 0\n    headers: { \"bad header\": x, host: h, Auth: a, AUTH: b, x-empty: \" \", x-unset: \"Bearer ${UNSET_TOKEN}\" }\n",
        )
        .join("\n");
        for needle in [
            "telemetry.traces.endpoint: \"collector:4318\" is not an http(s) URL",
            "telemetry.traces.sample_ratio: must be between 0 and 1",
            "telemetry.traces.service_name: must be 1 to 128 characters",
            "telemetry.traces.timeout_ms: must be greater than 0",
            "telemetry.traces.queue_spans: must be between 1 and 1000000",
            "telemetry.traces.headers.bad header: is not a valid header name",
            "telemetry.traces.headers.host: is set by the exporter itself",
            "telemetry.traces.headers.Auth: is given twice",
            "telemetry.traces.headers.x-empty: must not be empty",
            "telemetry.traces.headers.x-unset: must be set (environment variable UNSET_TOKEN is not set)",
        ] {
            assert!(p.contains(needle), "missing {needle:?} in:\n{p}");
        }
        // credentials in the URL would be shown and logged: refused, and not echoed
        let p = problems("telemetry:\n  traces: { endpoint: \"http://user:s3cret-pw@c:4318\" }\n");
        assert!(p[0].contains("must not carry a user or password"), "{p:?}");
        assert!(!p.join(" ").contains("s3cret-pw"), "{p:?}");
        let p = problems(
            "telemetry:\n  traces: { endpoint: \"http://c:4318\", service_name: \"a\\u202eb\" }\n",
        );
        assert!(
            p[0].contains("without control or direction characters"),
            "{p:?}"
        );
        let p = problems("telemetry:\n  traces: { endpoint: \"http://c:4318\", sampling: 1 }\n");
        assert!(p[0].contains("unknown field `sampling`"), "{p:?}");
        let p = problems("telemetry:\n  traces: {}\n");
        assert!(p[0].contains("missing field `endpoint`"), "{p:?}");
    }

    #[test]
    fn provider_quotas_are_read_and_checked() {
        let cfg = load(
            "providers:\n  - { name: p, type: openai_compatible, base_url: \"http://h/v1\", quota: { requests_per_minute: 600 } }\n",
        )
        .unwrap();
        assert_eq!(cfg.providers[0].quota_requests_per_minute, Some(600));
        assert_eq!(cfg.providers[0].quota_tokens_per_minute, None);
        let p = problems(
            "providers:\n  - { name: p, type: openai_compatible, base_url: \"http://h/v1\", quota: { requests_per_minute: 0, rpm: 5 } }\n",
        );
        assert!(p[0].contains("unknown field `rpm`"), "{p:?}");
        let p = problems(
            "providers:\n  - { name: p, type: openai_compatible, base_url: \"http://h/v1\", quota: { tokens_per_minute: 0 } }\n",
        );
        assert!(
            p[0].starts_with("providers[0].quota.tokens_per_minute: must be greater than 0"),
            "{p:?}"
        );
    }

    #[test]
    fn yaml_syntax_errors_are_reported() {
        assert!(matches!(load("routes: [\n"), Err(ConfigError::Syntax(_))));
    }
}
