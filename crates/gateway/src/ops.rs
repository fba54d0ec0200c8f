//! Operational endpoints and fallbacks: `/healthz`, `/readyz`, `/metrics`, unknown paths.

use crate::Gateway;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
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

/// Readiness: configured and not shutting down.
pub async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if gw.is_ready() {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response()
    } else {
        ApiError::Unavailable("shutting down").into_response()
    }
}

/// Prometheus text exposition.
pub async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    gw.metrics.set_ledger(gw.ledger.stats());
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
