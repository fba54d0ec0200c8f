//! Operational endpoints and fallbacks: `/healthz`, `/readyz`, `/metrics`, unknown paths.

use crate::Gateway;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// Readiness: configured, not shutting down, and able to record what it serves — a gateway
/// whose ledger can write neither to the database nor to a spill file says so (503), so a load
/// balancer sends traffic to an instance that keeps its records.
pub async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if !gw.is_ready() {
        ApiError::Unavailable("shutting down").into_response()
    } else if gw
        .books
        .ledger
        .stats()
        .stalled
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        ApiError::Unavailable("the ledger cannot write request records").into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response()
    }
}

/// Prometheus text exposition. With `server.metrics_token` set, only for
/// `Authorization: Bearer <token>` (else an OpenAI-shaped 401); open otherwise.
pub async fn metrics(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Some(token) = &gw.config.server.metrics_token {
        // Compared as keyed hashes, so the comparison takes no longer for a better guess.
        let secret = gw.keyring.secret();
        match tollgate_http::bearer(&headers) {
            Err(e) => return e.into_response(),
            Ok(given) if secret.hash(given) != secret.hash(token.expose()) => {
                return ApiError::InvalidKey.into_response();
            }
            Ok(_) => {}
        }
    }
    gw.metrics.set_ledger(gw.books.ledger.stats());
    gw.metrics.set_feedback(gw.outcomes.stats());
    let budgets: Vec<(String, String, u64, u64)> = gw
        .gate
        .budgeter
        .statuses()
        .into_iter()
        .map(|s| {
            (
                s.budget.id.clone(),
                s.budget.scope.clone(),
                s.spent_nano_usd.saturating_add(s.reserved_nano_usd),
                s.budget.amount_nano_usd,
            )
        })
        .collect();
    gw.metrics.set_budgets(&budgets);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics.render(),
    )
        .into_response()
}

/// Any path the gateway does not serve.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::NotFound {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
    .into_response()
}

/// A known path with the wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
    .into_response()
}

/// The body of a handler panic (a bug): OpenAI-shaped 500, never a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal.into_response()
}

/// Longest value accepted in a header Tollgate stores or echoes (`x-request-id`,
/// `x-tollgate-user`, `x-tollgate-session`), bytes.
pub const MAX_ID_HEADER_BYTES: usize = 256;

/// Headers whose values end up in the ledger or in the response, so their size is capped.
const ID_HEADERS: [&str; 3] = ["x-request-id", "x-tollgate-user", "x-tollgate-session"];

/// The outermost layer: refuses a request whose id headers are too long or not visible ASCII,
/// before anything stores or echoes them, and one whose query string gives a parameter twice
/// (read as one value, the repeat would silently win: `?use_case_id=A&use_case_id=B` reporting
/// on B). The refusal carries a fresh request id, never the client's.
pub async fn check_request_head(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(why) = body_coding(&req) {
        let mut resp = ApiError::UnsupportedMediaType(why).into_response();
        if let Ok(id) = axum::http::HeaderValue::from_str(&crate::new_request_id()) {
            resp.headers_mut().insert("x-request-id", id);
        }
        return resp;
    }
    if let Some((message, param, code)) = head_problem(&req) {
        let mut resp = ApiError::InvalidRequest {
            message,
            param: Some(param),
            code,
        }
        .into_response();
        if let Ok(id) = axum::http::HeaderValue::from_str(&crate::new_request_id()) {
            resp.headers_mut().insert("x-request-id", id);
        }
        return resp;
    }
    next.run(req).await
}

/// Why the body cannot be read, when a coding of it is one the server does not decode: a
/// `content-encoding` other than `identity` (a gzip body was read as text and refused as invalid
/// UTF-8, and a plain body labelled gzip was taken), or a `transfer-encoding` other than
/// `chunked` (the HTTP layer takes the chunks off and leaves any other coding: a body sent as
/// `gzip, chunked` was read as plain JSON — attack 2026-12-04e F7).
fn body_coding(req: &axum::extract::Request) -> Option<String> {
    let codings = |name: axum::http::HeaderName, plain: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .flat_map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case(plain))
            .map(|c| tollgate_types::text::clip(&c, tollgate_types::text::ECHO_CHARS))
    };
    if let Some(c) = codings(axum::http::header::CONTENT_ENCODING, "identity") {
        return Some(format!(
            "the request body's `content-encoding` is `{c}`; send it uncompressed (no `content-encoding`, or `identity`)"
        ));
    }
    codings(axum::http::header::TRANSFER_ENCODING, "chunked").map(|c| {
        format!(
            "the request body's `transfer-encoding` includes `{c}`; send it uncompressed (`chunked` alone, or a `content-length`)"
        )
    })
}

/// What is wrong with a request's id headers or query string, if anything: the message, the
/// param and the code.
fn head_problem(req: &axum::extract::Request) -> Option<(String, String, &'static str)> {
    for name in ID_HEADERS {
        for value in req.headers().get_all(name) {
            let bytes = value.as_bytes();
            let problem = if bytes.len() > MAX_ID_HEADER_BYTES {
                format!(
                    "the `{name}` header is {} bytes long; at most {MAX_ID_HEADER_BYTES} are accepted",
                    bytes.len()
                )
            } else if bytes.iter().any(|b| !(0x20..0x7f).contains(b)) {
                format!("the `{name}` header must be printable ASCII")
            } else {
                continue;
            };
            return Some((problem, name.to_string(), "invalid_header"));
        }
    }
    let query = req.uri().query()?;
    let mut seen = std::collections::HashSet::new();
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| k)
        .find(|k| !seen.insert(k.clone()))
        .map(|k| {
            let k = tollgate_types::text::clip(&k, tollgate_types::text::ECHO_CHARS);
            (
                format!("the query parameter `{k}` is given twice; give it once"),
                k,
                "invalid_request",
            )
        })
}

/// Gives every client error the OpenAI shape. axum's own rejections (a path segment that is not
/// UTF-8, a query that does not parse, a 405 of the admin routes) answer `text/plain` or nothing;
/// clients and SDKs expect `{"error": {...}}` everywhere. The text axum wrote becomes the message.
pub async fn shape_client_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_lowercase()
    } else {
        text
    };
    // axum's words for a query value its type does not take (`Failed to deserialize query
    // string: limit: invalid digit found in string`) name the parameter; the answer does too.
    let (message, query_param) = match message.strip_prefix("Failed to deserialize query string: ")
    {
        Some(rest) => match rest.split_once(": ") {
            Some((name, why)) if !name.is_empty() && !name.contains(' ') => (
                format!("invalid value for query parameter `{name}`: {why}"),
                Some(name.to_string()),
            ),
            _ => (format!("invalid query string: {rest}"), None),
        },
        None => (message, None),
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        _ => "invalid_request",
    };
    // A query string that names a field twice, or one the endpoint does not take, says which.
    let param = query_param.or_else(|| {
        tollgate_http::extract::field_named(
            &message,
            &["duplicate field `", "unknown field `", "missing field `"],
        )
        .map(str::to_string)
    });
    let body = crate::error::error_json(message, "invalid_request_error", param, Some(code));
    let mut out = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
