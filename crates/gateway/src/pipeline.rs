//! The governed request, read top to bottom.
//!
//! Every `/v1` request passes these steps in this order; each is a small function or type with one
//! job, and all share one typed [`RequestContext`]:
//!
//! 1. **authenticate** — `Authorization: Bearer` → [`crate::auth::KeyEntry`] from the in-memory
//!    key snapshot; before the body is read, so unauthenticated clients cost nothing.
//! 2. **parse** — the body becomes a typed request once ([`crate::extract`]); later steps never
//!    re-read JSON. Unknown fields are kept for the provider.
//! 3. **admit** — the model must name a route the key may call; the use case's stage and pilot
//!    caps must let the request through ([`crate::admit`]).
//! 4. **route** — retries and fallback over the route's deployments ([`crate::routing`]).
//! 5. **respond** — a complete JSON answer, or a relayed stream ([`crate::relay`]).
//! 6. **measure** — usage, durations and the gateway's own overhead go to [`crate::metrics`].
//!
//! Later issues add their steps at fixed places: limits and budget reservation in *admit*; the
//! input guard and the cache between *admit* and *route*; the output guard in *respond*;
//! settlement and the ledger record in *measure*.

use crate::Gateway;
use crate::auth::RouteAccess;
use crate::context::{RequestContext, heavy};
use crate::error::ApiError;
use crate::extract::{parse_json, read_body};
use crate::relay::{self, StreamJob};
use crate::routing::{Answer, Call, Target};
use crate::shield;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tollgate_providers::Provider;
use tollgate_types::openai::{ChatCompletionRequest, EmbeddingsRequest, Model, ModelList};

/// `POST /v1/chat/completions`.
pub async fn chat(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    let mut ctx = RequestContext::new(request_id(&headers), gw.clock.now_ms());
    ctx.endpoint = "chat";
    ctx.trace = gw.books.traces.as_ref().map(|t| t.begin(&headers));
    // 1-3: until the request is admitted, an error is answered here and leaves no record.
    let (req, route) = match prepare_chat(&gw, &mut ctx, &headers, body).await {
        Ok(p) => p,
        Err(e) => return gw.answer_refusal("chat", &ctx, e),
    };
    // 4-6 run in a task of their own: they finish, and the request is priced and recorded, even
    // if the client leaves.
    finish_admitted(gw, ctx, Work::Chat(req, route)).await
}

async fn prepare_chat(
    gw: &Arc<Gateway>,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ChatCompletionRequest, usize), ApiError> {
    // 1. authenticate
    let caller = gw.keyring.authenticate(headers)?;
    ctx.caller = Some(caller.clone());
    ctx.session = session_header(headers);
    // 2. parse
    let bytes = read_body(headers, body, gw.config.server.max_body_bytes).await?;
    ctx.body_bytes = bytes.len();
    ctx.heavy_turn = gw.heavy.enter(bytes.len()).await;
    let mut req: ChatCompletionRequest = heavy(bytes.len(), || parse_json(&bytes))?;
    // A pattern's messages come first, then any the request sends.
    match (req.extra.remove("pattern"), req.extra.remove("variables")) {
        (Some(reference), variables) => {
            let variables = variables.unwrap_or_else(|| serde_json::json!({}));
            let (used, mut messages) = gw.patterns.render(&reference, &variables)?;
            messages.append(&mut req.messages);
            req.messages = messages;
            ctx.pattern = Some(used);
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "`variables` are given without a `pattern` to fill in",
                Some("variables".into()),
            ));
        }
        (None, None) => {}
    }
    validate_chat(&req)?;
    ctx.stream = req.is_stream();
    if let Some(t) = ctx.trace.as_mut().filter(|t| t.sampled) {
        t.params = crate::traces::RequestParams {
            max_tokens: req.output_cap().map(u64::from),
            temperature: req.temperature,
            top_p: req.top_p,
        };
    }
    // 3. admit: the reservation covers the prompt (an upper bound) and the output cap of every
    // choice (`max_tokens`, or the default when the client sets none).
    let choices = u64::from(req.n.unwrap_or(1).max(1));
    let (route, reserved) = gw.gate.admit(ctx, &caller, headers, &req.model, |model| {
        (
            tollgate_meter::estimate::chat_prompt_bound(model, &req),
            req.output_cap()
                .map_or(crate::limits::DEFAULT_OUTPUT_RESERVATION, u64::from)
                * choices,
        )
    })?;
    // The fingerprint leaves out how the answer is delivered and who asked for it.
    let delivery = (
        req.stream.take(),
        req.stream_options.take(),
        req.user.take(),
    );
    ctx.prompt_hash = gw.prompts.fingerprint(&req);
    (req.stream, req.stream_options, req.user) = delivery;
    // A reservation holds only if the answer cannot be longer than what it covers: a request
    // without an output cap gets the one its reservation assumed, sent upstream.
    if reserved && req.output_cap().is_none() {
        req.max_tokens = Some(crate::limits::DEFAULT_OUTPUT_RESERVATION as u32);
    }
    Ok((req, route))
}

/// What an admitted request ends with.
pub enum Finished {
    /// A complete answer and its charge.
    Complete {
        /// The response.
        response: Response,
        /// What it cost.
        charge: tollgate_meter::Charge,
    },
    /// A stream: the relay records it when it ends.
    Streaming(Response),
}

async fn route_chat(
    gw: &Arc<Gateway>,
    ctx: &mut RequestContext,
    mut req: ChatCompletionRequest,
    route: usize,
) -> Result<Finished, ApiError> {
    // the input guard (between admit and route): values masked or tokenized in place, or refused
    let gov = gw.policy_for(ctx)?;
    let original = (gov.policy.logging == tollgate_guard::policy::Logging::Full)
        .then(|| serde_json::to_string(&req.messages).unwrap_or_default());
    let og = gw.guard_input(ctx, gov.clone(), |g| shield::guard_chat(g, &mut req))?;
    Gateway::draft_payload(ctx, &gov, original, || {
        og.answer_for_log(&serde_json::to_string(&req.messages).unwrap_or_default())
    });
    // 4. route
    let (answer, target) = gw
        .upstreams
        .send(ctx, route, Call::Chat(&req))
        .await
        .map_err(|e| ApiError::Upstream(og.clean_error(e)))?;
    // 5. respond and 6. measure (for streams, at their end)
    let provider_otel = gw.provider_otel(target);
    let route_name = gw.config.routes[route].name.clone();
    let tollgate_headers = gw.answer_headers(ctx, target);
    match answer {
        Answer::Complete(c) => {
            let charge = gw.books.settle(
                "chat",
                provider_otel,
                &route_name,
                target,
                c.usage.clone(),
                |model| {
                    tollgate_meter::estimate::chat_usage(
                        model,
                        &req,
                        &tollgate_meter::estimate::answer_text(&c.body),
                    )
                },
            );
            gw.metrics.operation(
                "chat",
                provider_otel,
                &route_name,
                ctx.received.elapsed(),
                None,
            );
            // the output guard (a large answer's reading steps aside from the thread's other
            // connections, as a large prompt's does)
            let (raw, report) = (c.body, &mut ctx.guard);
            let body = crate::context::heavy(raw.len(), || shield::guard_answer(&og, raw, report))?;
            if let Some(p) = ctx.payload.as_mut() {
                p.answer = og.answer_for_log(&shield::answer_text(&body));
            }
            let mut tollgate_headers = tollgate_headers;
            cost_header(&mut tollgate_headers, &charge);
            let response = gw.complete_response("chat", ctx, &route_name, body, tollgate_headers);
            Ok(Finished::Complete { response, charge })
        }
        Answer::Stream { first, rest } => Ok(Finished::Streaming(relay::start(
            &gw.books,
            &gw.tasks,
            StreamJob {
                ctx: std::mem::replace(ctx, RequestContext::new(String::new(), 0)),
                first,
                rest,
                client_wants_usage: req
                    .stream_options
                    .as_ref()
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false),
                idle_timeout: gw.config.routes[target.route].stream_idle_timeout,
                total_timeout: gw.config.routes[target.route].stream_timeout,
                route_name,
                provider_otel,
                target,
                req,
                headers: tollgate_headers,
                redactor: gw.upstreams.redactor.clone(),
                errors: og.clone(),
                shield: Some(shield::StreamShield::new(og)).filter(|s| s.is_active()),
            },
        ))),
    }
}

/// The rest of an admitted request: steps 4-6 of one endpoint.
// Moved once into the task that runs it; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Work {
    Chat(ChatCompletionRequest, usize),
    Embeddings(EmbeddingsRequest, usize),
}

/// Runs the rest of an admitted request, hands its response to the client, and records it —
/// `client_disconnected` when the client was gone by then. It runs in the connection's own task
/// (no task of its own, no channel back: one hop less per request); if the client leaves first,
/// what is left of it goes on as a tracked task ([`Detachable`]), so the upstream call still
/// ends, is priced and recorded, and shutdown waits for it.
async fn finish_admitted(gw: Arc<Gateway>, mut ctx: RequestContext, work: Work) -> Response {
    gw.books.admitted(&mut ctx);
    let left = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = gw.tasks.clone();
    let gone = left.clone();
    let rest = async move {
        let result = match work {
            Work::Chat(req, route) => route_chat(&gw, &mut ctx, req, route).await,
            Work::Embeddings(req, route) => route_embeddings(&gw, &mut ctx, req, route).await,
        };
        match result {
            Ok(Finished::Complete { response, charge }) => {
                // Queued before the answer leaves, so a report asked once it has arrived
                // includes it (`DataPlane::settled`).
                let outcome = if gone.load(std::sync::atomic::Ordering::Acquire) {
                    "client_disconnected"
                } else {
                    "ok"
                };
                gw.books.record(&mut ctx, 200, outcome, Some(&charge), None);
                response
            }
            Ok(Finished::Streaming(response)) => response,
            Err(e) => {
                let (status, kind) = (e.status().as_u16(), e.kind());
                gw.books.record(&mut ctx, status, kind, None, None);
                gw.answer_error(ctx.endpoint, &ctx, e)
            }
        }
    };
    Detachable {
        rest: Some(Box::pin(rest)),
        tasks,
        left,
    }
    .await
}

/// A request's remaining work, polled by the connection's task; dropped before it is done (the
/// client left, or the connection was closed at shutdown), it is not cancelled: it goes on as a
/// tracked task of its own, with `left` set so its record says the client was gone.
struct Detachable<F: std::future::Future<Output = Response> + Send + 'static> {
    rest: Option<std::pin::Pin<Box<F>>>,
    tasks: tokio_util::task::TaskTracker,
    left: Arc<std::sync::atomic::AtomicBool>,
}

impl<F: std::future::Future<Output = Response> + Send + 'static> std::future::Future
    for Detachable<F>
{
    type Output = Response;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Response> {
        let Some(rest) = self.rest.as_mut() else {
            // Polled again after its answer: there is no other.
            return std::task::Poll::Ready(ApiError::Internal.into_response());
        };
        let response = std::task::ready!(rest.as_mut().poll(cx));
        self.rest = None;
        std::task::Poll::Ready(response)
    }
}

impl<F: std::future::Future<Output = Response> + Send + 'static> Drop for Detachable<F> {
    fn drop(&mut self) {
        if let Some(rest) = self.rest.take() {
            self.left.store(true, std::sync::atomic::Ordering::Release);
            // (Outside a runtime — a runtime being torn down — there is nothing to run it on.)
            if tokio::runtime::Handle::try_current().is_ok() {
                self.tasks.spawn(async move {
                    let _ = rest.await;
                });
            }
        }
    }
}

/// `x-tollgate-cost-usd`: what a complete answer cost, exactly (`0.000123`), when its deployment
/// is priced — so a caller (the evaluation runner among them) need not price it again.
fn cost_header(h: &mut Vec<(&'static str, HeaderValue)>, charge: &tollgate_meter::Charge) {
    if let Some(cost) = charge.cost
        && let Ok(v) = HeaderValue::from_str(&cost.usd())
    {
        h.push(("x-tollgate-cost-usd", v));
    }
}

/// Checks what serde cannot: the rules OpenAI enforces beyond types.
fn validate_chat(req: &ChatCompletionRequest) -> Result<(), ApiError> {
    if req.model.trim().is_empty() {
        return Err(ApiError::invalid(
            "`model` must not be empty",
            Some("model".into()),
        ));
    }
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "`messages` is missing or empty: a chat request needs at least one message, or a `pattern`",
            Some("messages".into()),
        ));
    }
    if let Some(n) = req.n
        && (n == 0 || n > 128)
    {
        return Err(ApiError::invalid(
            "`n` must be between 1 and 128",
            Some("n".into()),
        ));
    }
    if req.stream_options.is_some() && !req.is_stream() {
        return Err(ApiError::invalid(
            "`stream_options` is only allowed when `stream` is true",
            Some("stream_options".into()),
        ));
    }
    // A cap of 0 asks for an answer of nothing (OpenAI refuses it too).
    for (name, cap) in [
        ("max_tokens", req.max_tokens),
        ("max_completion_tokens", req.max_completion_tokens),
    ] {
        if cap == Some(0) {
            return Err(ApiError::invalid(
                format!("`{name}` must be at least 1"),
                Some(name.into()),
            ));
        }
    }
    for (i, m) in req.messages.iter().enumerate() {
        // Only an assistant's message may be without content (it calls tools instead).
        if m.content.is_none() && m.role != tollgate_types::openai::Role::Assistant {
            return Err(ApiError::invalid(
                format!("a `{}` message needs `content`", m.role.name()),
                Some(format!("messages[{i}].content")),
            ));
        }
        if m.role == tollgate_types::openai::Role::Tool && m.tool_call_id.is_none() {
            return Err(ApiError::invalid(
                "a `tool` message needs `tool_call_id`",
                Some(format!("messages[{i}].tool_call_id")),
            ));
        }
    }
    Ok(())
}

/// The most inputs one embeddings request may hold (OpenAI's limit too).
pub const MAX_EMBEDDING_INPUTS: usize = 2_048;

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = RequestContext::new(request_id(&headers), gw.clock.now_ms());
    ctx.endpoint = "embeddings";
    ctx.trace = gw.books.traces.as_ref().map(|t| t.begin(&headers));
    let (req, route) = match prepare_embeddings(&gw, &mut ctx, &headers, body).await {
        Ok(p) => p,
        Err(e) => return gw.answer_refusal("embeddings", &ctx, e),
    };
    finish_admitted(gw, ctx, Work::Embeddings(req, route)).await
}

async fn prepare_embeddings(
    gw: &Arc<Gateway>,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
    body: Body,
) -> Result<(EmbeddingsRequest, usize), ApiError> {
    let caller = gw.keyring.authenticate(headers)?;
    ctx.caller = Some(caller.clone());
    ctx.session = session_header(headers);
    let bytes = read_body(headers, body, gw.config.server.max_body_bytes).await?;
    ctx.body_bytes = bytes.len();
    ctx.heavy_turn = gw.heavy.enter(bytes.len()).await;
    let mut req: EmbeddingsRequest = heavy(bytes.len(), || parse_json(&bytes))?;
    if req.input.is_empty() {
        return Err(ApiError::invalid(
            "`input` must not be empty",
            Some("input".into()),
        ));
    }
    if req.input.len() > MAX_EMBEDDING_INPUTS {
        return Err(ApiError::invalid(
            format!(
                "`input` holds {} items; at most {MAX_EMBEDDING_INPUTS} are allowed in one request",
                req.input.len()
            ),
            Some("input".into()),
        ));
    }
    let (route, _) = gw.gate.admit(ctx, &caller, headers, &req.model, |model| {
        (
            tollgate_meter::estimate::embeddings_prompt_bound(model, &req),
            0,
        )
    })?;
    let user = req.user.take();
    ctx.prompt_hash = gw.prompts.fingerprint(&req);
    req.user = user;
    Ok((req, route))
}

async fn route_embeddings(
    gw: &Arc<Gateway>,
    ctx: &mut RequestContext,
    mut req: EmbeddingsRequest,
    route: usize,
) -> Result<Finished, ApiError> {
    let gov = gw.policy_for(ctx)?;
    let original = (gov.policy.logging == tollgate_guard::policy::Logging::Full)
        .then(|| serde_json::to_string(&req.input).unwrap_or_default());
    let og = gw.guard_input(ctx, gov.clone(), |g| shield::guard_embeddings(g, &mut req))?;
    Gateway::draft_payload(ctx, &gov, original, || {
        og.answer_for_log(&serde_json::to_string(&req.input).unwrap_or_default())
    });
    ctx.guard.output = shield::Ran::Off;
    let (answer, target) = gw
        .upstreams
        .send(ctx, route, Call::Embeddings(&req))
        .await
        .map_err(|e| ApiError::Upstream(og.clean_error(e)))?;
    let Answer::Complete(c) = answer else {
        return Err(ApiError::Internal);
    };
    let route_name = gw.config.routes[route].name.clone();
    let provider_otel = gw.provider_otel(target);
    let charge = gw.books.settle(
        "embeddings",
        provider_otel,
        &route_name,
        target,
        c.usage.clone(),
        |model| tollgate_meter::estimate::embeddings_usage(model, &req),
    );
    gw.metrics.operation(
        "embeddings",
        provider_otel,
        &route_name,
        ctx.received.elapsed(),
        None,
    );
    let mut h = gw.answer_headers(ctx, target);
    cost_header(&mut h, &charge);
    // Vectors hold no text to guard, but a provider's JSON around them could echo a credential.
    let body = shield::blank_credentials_in(c.body, &og.credentials)?;
    let response = gw.complete_response("embeddings", ctx, &route_name, body, h);
    Ok(Finished::Complete { response, charge })
}

/// `GET /v1/models`: the routes this key may call.
pub async fn models(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let caller = match gw.keyring.authenticate(&headers) {
        Ok(c) => c,
        Err(e) => {
            let ctx = RequestContext::new(request_id(&headers), gw.clock.now_ms());
            return gw.answer_error("models", &ctx, e);
        }
    };
    let data = gw
        .config
        .routes
        .iter()
        .filter(|r| caller.access(&r.name) == RouteAccess::Allowed)
        .map(|r| gw.model_entry(&r.name))
        .collect();
    axum::Json(ModelList {
        object: "list".into(),
        data,
    })
    .into_response()
}

/// `GET /v1/models/{model}`.
pub async fn model(
    State(gw): State<Arc<Gateway>>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    let ctx = RequestContext::new(request_id(&headers), gw.clock.now_ms());
    let caller = match gw.keyring.authenticate(&headers) {
        Ok(c) => c,
        Err(e) => return gw.answer_error("models", &ctx, e),
    };
    match gw
        .gate
        .route_index(&model)
        .filter(|_| caller.access(&model) == RouteAccess::Allowed)
    {
        Some(i) => axum::Json(gw.model_entry(&gw.config.routes[i].name)).into_response(),
        None => gw.answer_error("models", &ctx, ApiError::ModelNotFound(model)),
    }
}

fn session_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-tollgate-session")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

impl Gateway {
    /// The input guard: the caller's policy, its conversation's tokens (from the vault when the
    /// request names a session), `check` applied to the request; new tokens go back to the
    /// vault. Gives what the output guard needs.
    fn policy_for(
        &self,
        ctx: &mut RequestContext,
    ) -> Result<Arc<crate::policies::Governed>, ApiError> {
        let use_case = ctx
            .caller
            .as_ref()
            .map(|c| c.use_case_id.as_str())
            .unwrap_or_default();
        let gov = self
            .policies
            .for_use_case(use_case)
            .map_err(ApiError::PolicyUnavailable)?;
        ctx.guard.policy = Some(gov.label.clone());
        Ok(gov)
    }

    /// What the request will store: `original` (the prompt before the guard, asked for only
    /// when the policy logs it in full) or `guarded` (after).
    fn draft_payload(
        ctx: &mut RequestContext,
        gov: &crate::policies::Governed,
        original: Option<String>,
        guarded: impl FnOnce() -> String,
    ) {
        use tollgate_guard::policy::Logging;
        let mode = gov.policy.logging;
        if mode == Logging::None {
            return;
        }
        ctx.payload = Some(crate::payloads::PayloadDraft {
            mode,
            retention_days: gov.policy.retention_days,
            prompt: match (mode, original) {
                (Logging::Full, Some(o)) => o,
                _ => guarded(),
            },
            answer: String::new(),
        });
    }

    fn guard_input(
        &self,
        ctx: &mut RequestContext,
        gov: Arc<crate::policies::Governed>,
        check: impl FnOnce(&mut shield::Guarding<'_>) -> Result<(), ApiError>,
    ) -> Result<shield::OutputGuard, ApiError> {
        let use_case = ctx
            .caller
            .as_ref()
            .map(|c| c.use_case_id.clone())
            .unwrap_or_default();
        let now = self.clock.now_ms();
        // A conversation is the use case's, the key's and the end user's: another key or end
        // user of the same use case naming the same session id gets a conversation of its own.
        let owner = format!(
            "{use_case}\0{}\0{}",
            ctx.caller
                .as_ref()
                .map(|c| c.key_id.as_str())
                .unwrap_or_default(),
            ctx.end_user.as_deref().unwrap_or_default()
        );
        let session = ctx
            .session
            .as_deref()
            .map(|s| self.vault.session(&owner, s));
        let mut tokens = session
            .map(|id| self.vault.open(id, now))
            .unwrap_or_default();
        let known = tokens.len();
        let hash_key = tollgate_guard::policy::scoped_key(&self.guard_key, &use_case);
        heavy(ctx.body_bytes, || {
            check(&mut shield::Guarding {
                gov: &gov,
                hash_key: &hash_key,
                tokens: &mut tokens,
                report: &mut ctx.guard,
            })
        })?;
        // The CPU-heavy part of the request is done: the next heavy one may start.
        ctx.heavy_turn = None;
        if let Some(id) = session
            && tokens.len() > known
        {
            self.vault.save(id, &tokens, now);
        }
        Ok(shield::OutputGuard {
            capture: gov.policy.logging != tollgate_guard::policy::Logging::None,
            gov,
            hash_key: Arc::from(&hash_key[..]),
            tokens: Arc::new(tokens),
            credentials: self.upstreams.redactor.credentials().clone(),
        })
    }

    fn model_entry(&self, name: &str) -> Model {
        Model {
            id: name.to_string(),
            object: "model".into(),
            created: self.started_unix,
            owned_by: "tollgate".into(),
        }
    }

    fn provider_otel(&self, t: Target) -> &'static str {
        let p = self.config.routes[t.route].deployments[t.deployment].provider;
        Provider::otel_name(self.config.providers[p].kind)
    }

    /// `x-tollgate-*` headers: which provider and model answered, and after how many attempts;
    /// `x-ratelimit-*` headers when the key or use case has request or token limits.
    fn answer_headers(&self, ctx: &RequestContext, t: Target) -> Vec<(&'static str, HeaderValue)> {
        let dep = &self.config.routes[t.route].deployments[t.deployment];
        let mut h = Vec::with_capacity(9);
        if let Ok(v) = HeaderValue::from_str(&self.config.providers[dep.provider].name) {
            h.push(("x-tollgate-provider", v));
        }
        if let Ok(v) = HeaderValue::from_str(&self.config.routes[t.route].name) {
            h.push(("x-tollgate-route", v));
        }
        h.push(("x-tollgate-attempts", HeaderValue::from(ctx.attempts.len())));
        if let Some(p) = &ctx.permit {
            h.extend(p.headers());
        }
        h
    }

    fn complete_response(
        &self,
        endpoint: &'static str,
        ctx: &RequestContext,
        route: &str,
        body: bytes::Bytes,
        headers: Vec<(&'static str, HeaderValue)>,
    ) -> Response {
        let mut resp = (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        for (k, v) in headers {
            resp.headers_mut().insert(k, v);
        }
        self.metrics.request(
            endpoint,
            route,
            200,
            false,
            ctx.received.elapsed(),
            Some(ctx.overhead()),
        );
        resp
    }

    /// Answers a request refused before admission (no record will count it): counted per use
    /// case by its error code when the key was known, then like any error.
    fn answer_refusal(
        &self,
        endpoint: &'static str,
        ctx: &RequestContext,
        e: ApiError,
    ) -> Response {
        if let Some(caller) = &ctx.caller {
            self.metrics
                .use_case_refusal(&caller.use_case_id, &caller.pod_id, e.kind());
        }
        self.books.trace(
            ctx,
            crate::traces::Ending {
                status: e.status().as_u16(),
                outcome: e.kind(),
                charge: None,
                ttft: None,
            },
        );
        self.answer_error(endpoint, ctx, e)
    }

    /// Answers an error: counted, logged once (kind and ids only, never content), shaped.
    pub(crate) fn answer_error(
        &self,
        endpoint: &'static str,
        ctx: &RequestContext,
        e: ApiError,
    ) -> Response {
        let status = e.status();
        let route = ctx
            .route
            .map(|r| self.config.routes[r].name.as_str())
            .unwrap_or("");
        self.metrics.error(e.kind());
        self.metrics.request(
            endpoint,
            route,
            status.as_u16(),
            ctx.stream,
            ctx.received.elapsed(),
            None,
        );
        if status.is_server_error() {
            tracing::warn!(request_id = %ctx.request_id, route, status = status.as_u16(), error = e.kind(), attempts = ctx.attempts.len(), "request failed");
        } else {
            tracing::debug!(request_id = %ctx.request_id, route, status = status.as_u16(), error = e.kind(), "request rejected");
        }
        e.into_response()
    }
}
