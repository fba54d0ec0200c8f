//! Traces over OTLP: one span per governed request and one child per upstream attempt, with the
//! GenAI semantic conventions (`gen_ai.*`) and Tollgate's own attributes (`tollgate.*`: use case,
//! pod, stage, cost, attempts, guard findings).
//!
//! **Why spans are built when a request ends.** The pipeline already times everything a span
//! needs (arrival from the injected clock, each attempt's start and length on the
//! [`RequestContext`]), so nothing is carried through the request path but two ids: the request's
//! trace context ([`TraceCtx`]) and each attempt's span id. Spans are then made in one go — with
//! explicit ids and timestamps — by the code that writes the request's record, and handed to the
//! SDK's batch processor, which exports them from a thread of its own. A request that is not
//! sampled costs two random numbers and a `traceparent` header.
//!
//! **Only authenticated requests are traced** (whatever their `traceparent` says), so no one
//! without a key can fill the export queue; when the queue (`queue_spans`, 2,048) has no room, a request's
//! spans are dropped and counted, never waited for.
//!
//! **Sampling** is decided once, at arrival: a request whose `traceparent` says sampled is traced,
//! one that says not sampled is not, and one without a (valid) parent is traced with probability
//! `sample_ratio`, decided from its trace id so every service sampling by ratio agrees.
//!
//! **Propagation.** Each attempt sends `traceparent` (the trace's id, the attempt span's id, the
//! sampled flag) and the caller's `tracestate` — when it is valid W3C trace state, in canonical
//! form — to the provider, so a provider that traces joins
//! the caller's trace under the attempt's span. Tracing off, nothing is read or sent.
//!
//! **Content** (`gen_ai.input.messages`, `gen_ai.output.messages`) is opt-in twice: the config's
//! `capture_content`, and a policy that logs `masked` text — what is added is that masked text.
//! Text a policy logs `full` stays in the encrypted, crypto-shreddable payload store only.

use crate::context::RequestContext;
use crate::metrics::Metrics;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tollgate_config::Config;
use tollgate_meter::Charge;

/// The longest `tracestate` passed on (W3C: 512 characters at least must be propagated).
const MAX_TRACESTATE: usize = 512;

/// Spans per export request.
const EXPORT_BATCH: usize = 128;

/// The most characters of prompt or answer added to a span when content is captured.
pub const MAX_CONTENT_CHARS: usize = 16 * 1024;

/// One request's place in a trace, decided at arrival.
#[derive(Debug, Clone)]
pub struct TraceCtx {
    /// The trace: the caller's, or a new one.
    pub trace_id: u128,
    /// The caller's span, when a valid `traceparent` came in.
    pub parent: Option<u64>,
    /// The request's own span.
    pub span_id: u64,
    /// Whether spans are recorded and exported.
    pub sampled: bool,
    /// The caller's `tracestate`, passed on unchanged.
    pub state: Option<String>,
    /// `gen_ai.request.*` parameters, set when the body is parsed.
    pub params: RequestParams,
}

/// The request parameters the GenAI conventions recommend on a span.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestParams {
    /// `max_tokens` / `max_completion_tokens`.
    pub max_tokens: Option<u64>,
    /// `temperature`.
    pub temperature: Option<f64>,
    /// `top_p`.
    pub top_p: Option<f64>,
}

impl TraceCtx {
    /// The `traceparent` naming span `span_id` of this trace.
    pub fn traceparent(&self, span_id: u64) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            span_id,
            u8::from(self.sampled)
        )
    }
}

/// A span id: random, never zero (zero is invalid).
pub fn new_span_id() -> u64 {
    fastrand::u64(1..)
}

/// The caller's `tracestate` headers, combined, if they are valid W3C trace state (at most 32
/// list members `key=value`, keys lowercase as the recommendation says, values printable ASCII
/// without `,` and `=`, no key twice), in canonical form (members joined by `,`, empty ones and
/// surrounding spaces dropped); `None` otherwise — an invalid trace state is not passed on.
pub fn clean_tracestate(headers: &http::HeaderMap) -> Option<String> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for value in headers.get_all("tracestate") {
        let value = value.to_str().ok()?;
        if value.len() > MAX_TRACESTATE {
            return None;
        }
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, val) = member.split_once('=')?;
            if !tracestate_key(key)
                || !tracestate_value(val)
                || members.iter().any(|(k, _)| *k == key)
            {
                return None;
            }
            members.push((key, val));
        }
    }
    if members.is_empty() || members.len() > 32 {
        return None;
    }
    let out = members
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    (out.len() <= MAX_TRACESTATE).then_some(out)
}

/// A W3C trace-state key: `lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`, or
/// `tenant@system` (a tenant of at most 241 characters starting with a letter or digit, a system
/// of at most 14 starting with a letter).
fn tracestate_key(key: &str) -> bool {
    let rest = |s: &[u8]| {
        s.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
        })
    };
    match key.split_once('@') {
        None => {
            let b = key.as_bytes();
            (1..=256).contains(&b.len()) && b[0].is_ascii_lowercase() && rest(&b[1..])
        }
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && rest(&t[1..])
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && rest(&s[1..])
        }
    }
}

/// A W3C trace-state value: 1 to 256 printable ASCII characters but `,` and `=`, not ending in a
/// space.
fn tracestate_value(v: &str) -> bool {
    (1..=256).contains(&v.len())
        && !v.ends_with(' ')
        && v.bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

/// Reads a W3C `traceparent`: `(trace id, parent span id, sampled)`, or `None` when it is absent
/// or malformed (then the request starts a trace of its own). Versions after `00` are read by
/// their first four fields, as the recommendation says; `ff` is invalid.
pub fn parse_traceparent(value: &str) -> Option<(u128, u64, bool)> {
    let value = value.trim();
    let mut parts = value.splitn(5, '-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four fields; later versions may add more.
    if version == "00" && rest.is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let span_id = u64::from_str_radix(span, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && span_id != 0).then_some((trace_id, span_id, flags & 1 == 1))
}

/// What the end of a request adds to its span.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    /// The HTTP status answered.
    pub status: u16,
    /// `ok`, `client_disconnected`, or the error's kind.
    pub outcome: &'a str,
    /// What it cost, when it was priced.
    pub charge: Option<&'a Charge>,
    /// Time to the first chunk (streams).
    pub ttft: Option<Duration>,
}

/// The tracer: decides sampling, and builds and queues spans.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Traces without a parent are sampled when the low 64 bits of their id fall under this (at
    /// ratio 1, all but one id in 2^64).
    bound: u64,
    capture_content: bool,
    /// `server.address` and `server.port` of each provider, by index.
    servers: Vec<Option<(String, i64)>>,
    /// Spans queued and not yet exported (or failed).
    in_flight: Arc<AtomicU64>,
    /// How many may be (`telemetry.traces.queue_spans`).
    queue_spans: u64,
    metrics: Arc<Metrics>,
    /// When a drop was last logged.
    dropped_logged: Mutex<Option<Instant>>,
}

/// Counts what the exporter sent and failed to send (`tollgate_trace_spans_total`).
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    metrics: Arc<Metrics>,
    in_flight: Arc<AtomicU64>,
}

impl<E: opentelemetry_sdk::trace::SpanExporter> opentelemetry_sdk::trace::SpanExporter
    for CountingExporter<E>
{
    async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        self.in_flight.fetch_sub(n, Ordering::Relaxed);
        match &result {
            Ok(()) => self.metrics.trace_spans("exported", n),
            Err(e) => {
                self.metrics.trace_spans("failed", n);
                // The error names the collector and its status, never span content.
                tracing::warn!(spans = n, error = %e, "cannot export spans to the OTLP collector");
            }
        }
        result
    }

    fn shutdown_with_timeout(
        &mut self,
        timeout: Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.traces: cannot build the OTLP exporter: {0}")]
pub struct TracesError(String);

impl Traces {
    /// A tracer exporting to `cfg`'s collector, or `None` when tracing is not configured.
    pub fn start(config: &Config, metrics: Arc<Metrics>) -> Result<Option<Traces>, TracesError> {
        use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
        let Some(cfg) = &config.traces else {
            return Ok(None);
        };
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(cfg.endpoint.clone())
            .with_timeout(cfg.timeout)
            .with_headers(headers)
            .build()
            .map_err(|e| TracesError(e.to_string()))?;
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_service_name(cfg.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let in_flight = Arc::new(AtomicU64::new(0));
        let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(CountingExporter {
            inner: exporter,
            metrics: metrics.clone(),
            in_flight: in_flight.clone(),
        })
        .with_batch_config(
            // Small batches often: each export's encoding is a short burst on the batch thread,
            // never a long one that holds a core the request workers need.
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_max_queue_size(usize::try_from(cfg.queue_spans).unwrap_or(usize::MAX))
                .with_max_export_batch_size(EXPORT_BATCH)
                .with_scheduled_delay(Duration::from_millis(500))
                .build(),
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
            .with_resource(resource)
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "tollgate");
        Ok(Some(Traces {
            provider,
            tracer,
            bound: ratio_bound(cfg.sample_ratio),
            capture_content: cfg.capture_content,
            in_flight,
            queue_spans: cfg.queue_spans,
            metrics,
            dropped_logged: Mutex::new(None),
            servers: config
                .providers
                .iter()
                .map(|p| {
                    let u = url::Url::parse(&p.base_url).ok()?;
                    Some((
                        u.host_str()?.to_string(),
                        i64::from(u.port_or_known_default()?),
                    ))
                })
                .collect(),
        }))
    }

    /// The trace context of a request that just arrived with `headers`.
    pub fn begin(&self, headers: &http::HeaderMap) -> TraceCtx {
        let incoming = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let (trace_id, parent, sampled) = match incoming {
            Some((t, p, sampled)) => (t, Some(p), sampled),
            None => {
                let t = fastrand::u128(1..);
                (t, None, (t as u64) < self.bound)
            }
        };
        let state = incoming.and_then(|_| clean_tracestate(headers));
        TraceCtx {
            trace_id,
            parent,
            span_id: new_span_id(),
            sampled,
            state,
            params: RequestParams::default(),
        }
    }

    /// Builds and queues the spans of a finished request: nothing when it is not sampled, or when
    /// it never authenticated (anyone could send those, with a sampled `traceparent`, to fill
    /// the queue); its spans dropped, and counted, when the queue has no room for them.
    pub fn end(&self, config: &Config, ctx: &RequestContext, end: Ending<'_>) {
        let Some(tc) = ctx
            .trace
            .as_ref()
            .filter(|t| t.sampled && ctx.caller.is_some())
        else {
            return;
        };
        let spans = 1 + ctx.attempts.len() as u64;
        if self.in_flight.fetch_add(spans, Ordering::Relaxed) + spans > self.queue_spans {
            self.in_flight.fetch_sub(spans, Ordering::Relaxed);
            self.metrics.trace_spans("dropped", spans);
            let mut last = self
                .dropped_logged
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                *last = Some(Instant::now());
                tracing::warn!(
                    queue = self.queue_spans,
                    "the span export queue is full (the collector is slow or down): spans are dropped and counted in tollgate_trace_spans_total{{outcome=\"dropped\"}}"
                );
            }
            return;
        }
        let start =
            UNIX_EPOCH + Duration::from_millis(u64::try_from(ctx.received_at_ms).unwrap_or(0));
        let elapsed = ctx.received.elapsed();
        let trace_id = TraceId::from(tc.trace_id);
        let state = tc
            .state
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let route = ctx.route.map(|r| &config.routes[r]);
        let operation = if ctx.endpoint.is_empty() {
            "chat"
        } else {
            ctx.endpoint
        };
        let winner = ctx.winning_attempt();
        let provider_of = |a: &crate::context::Attempt| &config.providers[a.provider];
        let model_of = |a: &crate::context::Attempt| {
            config.routes[a.route].deployments[a.deployment]
                .model
                .as_str()
        };

        let mut attrs = Vec::with_capacity(32);
        attrs.push(KeyValue::new("gen_ai.operation.name", operation));
        if let Some(r) = route {
            attrs.push(KeyValue::new("gen_ai.request.model", r.name.clone()));
        }
        attrs.push(KeyValue::new("gen_ai.request.stream", ctx.stream));
        if let Some(a) = winner.or(ctx.attempts.last()) {
            attrs.push(KeyValue::new(
                "gen_ai.provider.name",
                tollgate_providers::Provider::otel_name(provider_of(a).kind),
            ));
        }
        if let Some(a) = winner {
            attrs.push(KeyValue::new(
                "gen_ai.response.model",
                model_of(a).to_string(),
            ));
        }
        if let Some(v) = tc.params.max_tokens {
            attrs.push(KeyValue::new("gen_ai.request.max_tokens", clamp_i64(v)));
        }
        if let Some(v) = tc.params.temperature {
            attrs.push(KeyValue::new("gen_ai.request.temperature", v));
        }
        if let Some(v) = tc.params.top_p {
            attrs.push(KeyValue::new("gen_ai.request.top_p", v));
        }
        if let Some(c) = end.charge {
            let t = c.tokens;
            attrs.push(KeyValue::new(
                "gen_ai.usage.input_tokens",
                clamp_i64(t.input + t.cached_input + t.cache_write),
            ));
            attrs.push(KeyValue::new(
                "gen_ai.usage.output_tokens",
                clamp_i64(t.output + t.reasoning),
            ));
            attrs.push(KeyValue::new(
                "gen_ai.usage.cache_read.input_tokens",
                clamp_i64(t.cached_input),
            ));
            attrs.push(KeyValue::new(
                "gen_ai.usage.cache_creation.input_tokens",
                clamp_i64(t.cache_write),
            ));
            attrs.push(KeyValue::new(
                "gen_ai.usage.reasoning.output_tokens",
                clamp_i64(t.reasoning),
            ));
            if let Some(cost) = c.cost {
                attrs.push(KeyValue::new(
                    "tollgate.cost.nano_usd",
                    clamp_i64(cost.nanos()),
                ));
                attrs.push(KeyValue::new(
                    "tollgate.cost.usd",
                    cost.nanos() as f64 / 1e9,
                ));
            }
            attrs.push(KeyValue::new(
                "tollgate.usage.source",
                if c.estimated { "estimated" } else { "reported" },
            ));
        }
        if let Some(s) = &ctx.session_hash {
            attrs.push(KeyValue::new("gen_ai.conversation.id", s.clone()));
        }
        attrs.push(KeyValue::new(
            "http.response.status_code",
            i64::from(end.status),
        ));
        attrs.push(KeyValue::new("tollgate.request_id", ctx.request_id.clone()));
        attrs.push(KeyValue::new("tollgate.outcome", end.outcome.to_string()));
        if let Some(caller) = &ctx.caller {
            attrs.push(KeyValue::new(
                "tollgate.use_case.id",
                caller.use_case_id.clone(),
            ));
            attrs.push(KeyValue::new("tollgate.pod.id", caller.pod_id.clone()));
            attrs.push(KeyValue::new("tollgate.stage", caller.stage.as_str()));
        }
        attrs.push(KeyValue::new(
            "tollgate.attempts",
            i64::try_from(ctx.attempts.len()).unwrap_or(i64::MAX),
        ));
        if let Some(a) = winner {
            attrs.push(KeyValue::new(
                "tollgate.provider",
                provider_of(a).name.clone(),
            ));
        }
        let g = &ctx.guard;
        if let Some(p) = &g.policy {
            attrs.push(KeyValue::new("tollgate.guard.policy", p.clone()));
        }
        attrs.push(KeyValue::new(
            "tollgate.guard.findings",
            i64::from(g.counts.values().fold(0u32, |a, n| a.saturating_add(*n))),
        ));
        if !g.counts.is_empty() {
            let mut types: Vec<opentelemetry::StringValue> = Vec::new();
            for (e, _, _) in g.counts.keys() {
                let name = opentelemetry::StringValue::from(e.as_str());
                if !types.contains(&name) {
                    types.push(name);
                }
            }
            attrs.push(KeyValue::new(
                "tollgate.guard.types",
                opentelemetry::Value::Array(types.into()),
            ));
        }
        attrs.push(KeyValue::new(
            "tollgate.overhead_ms",
            ctx.overhead().as_secs_f64() * 1e3,
        ));
        if let Some(t) = end.ttft {
            attrs.push(KeyValue::new(
                "gen_ai.response.time_to_first_chunk",
                t.as_secs_f64(),
            ));
        }
        if self.capture_content
            && let Some(p) = ctx
                .payload
                .as_ref()
                .filter(|p| p.mode == tollgate_guard::policy::Logging::Masked)
        {
            attrs.push(KeyValue::new(
                "gen_ai.input.messages",
                bounded(&p.prompt).to_string(),
            ));
            attrs.push(KeyValue::new(
                "gen_ai.output.messages",
                bounded(&p.answer).to_string(),
            ));
        }
        let failed = end.status >= 400;
        if failed {
            attrs.push(KeyValue::new("error.type", end.outcome.to_string()));
        }

        let name = match route {
            Some(r) => format!("{operation} {}", r.name),
            None => operation.to_string(),
        };
        let mut builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_trace_id(trace_id)
            .with_span_id(SpanId::from(tc.span_id))
            .with_start_time(start)
            .with_attributes(attrs);
        if failed {
            builder = builder.with_status(Status::error(end.outcome.to_string()));
        }
        let parent = match tc.parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                SpanId::from(p),
                TraceFlags::SAMPLED,
                true,
                state.clone(),
            )),
            None => Context::new(),
        };
        builder
            .start_with_context(&self.tracer, &parent)
            .end_with_timestamp(start + elapsed);

        // One child per upstream attempt.
        let request = Context::new().with_remote_span_context(SpanContext::new(
            trace_id,
            SpanId::from(tc.span_id),
            TraceFlags::SAMPLED,
            false,
            state,
        ));
        for (i, a) in ctx.attempts.iter().enumerate() {
            let p = provider_of(a);
            let model = model_of(a);
            let mut attrs = vec![
                KeyValue::new("gen_ai.operation.name", operation),
                KeyValue::new(
                    "gen_ai.provider.name",
                    tollgate_providers::Provider::otel_name(p.kind),
                ),
                KeyValue::new("gen_ai.request.model", model.to_string()),
                KeyValue::new("tollgate.provider", p.name.clone()),
                KeyValue::new("tollgate.route", config.routes[a.route].name.clone()),
                KeyValue::new("tollgate.attempt", i64::try_from(i + 1).unwrap_or(i64::MAX)),
            ];
            if let Some((host, port)) = self.servers.get(a.provider).and_then(Option::as_ref) {
                attrs.push(KeyValue::new("server.address", host.clone()));
                attrs.push(KeyValue::new("server.port", *port));
            }
            let mut b = self
                .tracer
                .span_builder(format!("{operation} {model}"))
                .with_kind(SpanKind::Client)
                .with_span_id(SpanId::from(a.span_id))
                .with_start_time(start + a.started);
            if let Some(e) = &a.error {
                attrs.push(KeyValue::new("error.type", e.kind()));
                b = b.with_status(Status::error(e.kind()));
            }
            b.with_attributes(attrs)
                .start_with_context(&self.tracer, &request)
                .end_with_timestamp(start + a.started + a.took);
        }
    }

    /// Exports every span queued so far (tests; shutdown). Blocks: call it off the runtime.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "cannot flush spans");
        }
    }

    /// Exports what is queued and stops the exporter. Blocks: call it off the runtime.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "cannot shut the span exporter down cleanly");
        }
    }
}

/// The sampling bound of a ratio: traces whose id's low 64 bits are below it are sampled
/// (`u64::MAX` means all).
fn ratio_bound(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio <= 0.0 {
        0
    } else {
        (ratio * (u64::MAX as f64)) as u64
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `s` cut to [`MAX_CONTENT_CHARS`] characters.
fn bounded(s: &str) -> &str {
    match s.char_indices().nth(MAX_CONTENT_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_read_as_the_recommendation_says() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(ok),
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, true))
        );
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert_eq!(parse_traceparent(unsampled).map(|t| t.2), Some(false));
        // a later version with more fields is read by its first four
        assert!(parse_traceparent(&format!("01-{}-extra", &ok[3..])).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_traceparent_is_written_with_the_sampled_flag() {
        let tc = TraceCtx {
            trace_id: 0xabc,
            parent: None,
            span_id: 1,
            sampled: true,
            state: None,
            params: RequestParams::default(),
        };
        assert_eq!(
            tc.traceparent(0x2a),
            "00-00000000000000000000000000000abc-000000000000002a-01"
        );
        let tc = TraceCtx {
            sampled: false,
            ..tc
        };
        assert!(tc.traceparent(0x2a).ends_with("-00"));
        assert_eq!(
            parse_traceparent(&tc.traceparent(7)),
            Some((0xabc, 7, false))
        );
    }

    #[test]
    fn the_ratio_bound_samples_that_share() {
        assert_eq!(ratio_bound(0.0), 0);
        assert_eq!(ratio_bound(1.0), u64::MAX);
        let b = ratio_bound(0.1);
        let sampled = (0..100_000u64)
            .filter(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) < b)
            .count();
        assert!((9_000..11_000).contains(&sampled), "{sampled}");
    }

    #[test]
    fn only_valid_trace_state_is_passed_on_in_canonical_form() {
        let state = |values: &[&str]| {
            let mut h = http::HeaderMap::new();
            for v in values {
                h.append("tracestate", v.parse().unwrap());
            }
            clean_tracestate(&h)
        };
        assert_eq!(state(&["vendor=abc"]).as_deref(), Some("vendor=abc"));
        // two headers are one list; spaces and empty members go
        assert_eq!(
            state(&["a=1 , ,b=2", " t@sys=x y"]).as_deref(),
            Some("a=1,b=2,t@sys=x y")
        );
        assert_eq!(state(&[]), None);
        for bad in [
            "UPPER=1",
            "@@@=2",
            "=empty",
            "a=",
            "a=b, x-evil: 1",
            "a=b\tc",
            "a=b ,a=c",
            "a=b=c",
            "1a@=x",
            "t@toolongsystemname=x",
        ] {
            assert_eq!(state(&[bad]), None, "{bad:?}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(state(&[&many.join(",")]), None, "33 members");
        assert!(state(&[&many[..32].join(",")]).is_some(), "32 members");
        assert_eq!(state(&[&format!("a={}", "x".repeat(257))]), None);
    }

    #[test]
    fn content_is_cut_at_a_character_boundary() {
        let s = "é".repeat(MAX_CONTENT_CHARS + 5);
        assert_eq!(bounded(&s).chars().count(), MAX_CONTENT_CHARS);
        assert_eq!(bounded("short"), "short");
    }
}
