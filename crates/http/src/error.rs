//! [`ApiError`]: every way a `/v1` request can fail, and the one place that turns it into an HTTP
//! status and OpenAI's error body (`{"error":{"message","type","param","code"}}`).
//!
//! The statuses are the ones OpenAI's SDKs map to exception classes: 400 `BadRequestError`,
//! 401 `AuthenticationError`, 403 `PermissionDeniedError`, 404 `NotFoundError`, 413, 422,
//! 429 `RateLimitError`, 5xx `InternalServerError`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tollgate_providers::ProviderError;
use tollgate_store::StoreError;
use tollgate_types::openai::{ErrorBody, ErrorDetail};
use tollgate_types::text::{ECHO_CHARS, clip};

/// The `x-ratelimit-*` headers of a rate-limit answer, in OpenAI's style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitHeaders {
    /// `requests` or `tokens`.
    pub kind: &'static str,
    /// The limit per minute.
    pub limit: u64,
    /// What is left of it now.
    pub remaining: u64,
}

impl LimitHeaders {
    /// The header names of a kind, as (limit, remaining, reset).
    fn names(&self) -> [&'static str; 3] {
        if self.kind == "tokens" {
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ]
        } else {
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ]
        }
    }

    /// The three headers of this limit, the window resetting in `reset_secs` (OpenAI writes the
    /// reset as a duration, e.g. `17s`).
    pub fn headers(&self, reset_secs: u64) -> [(&'static str, HeaderValue); 3] {
        let [limit, remaining, reset] = self.names();
        [
            (limit, HeaderValue::from(self.limit)),
            (remaining, HeaderValue::from(self.remaining)),
            (
                reset,
                HeaderValue::from_str(&format!("{reset_secs}s"))
                    .unwrap_or(HeaderValue::from_static("60s")),
            ),
        ]
    }
}

/// A failed `/v1` request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not what the endpoint takes (bad JSON, wrong types, missing fields).
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, for a person.
        message: String,
        /// The field at fault (`messages[0].role`), if known.
        param: Option<String>,
        /// Machine-readable code.
        code: &'static str,
    },
    /// The body did not arrive within `server.body_read_timeout_ms` (the client stalled).
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    BodyTimeout(Duration),
    /// The body is larger than `server.max_body_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// No `Authorization: Bearer` header.
    #[error("missing API key: send it as `Authorization: Bearer <key>`")]
    MissingKey,
    /// The key is not known.
    #[error("invalid API key")]
    InvalidKey,
    /// Two `Authorization` headers: which one is meant is not guessed.
    #[error("send one `Authorization` header: this request has more than one")]
    TwoKeys,
    /// The key may not do this (stage, scope).
    #[error("{message}")]
    Forbidden {
        /// Why, for a person.
        message: String,
        /// Machine-readable code.
        code: &'static str,
    },
    /// A cap or limit was reached.
    #[error("{message}")]
    RateLimited {
        /// Why, for a person.
        message: String,
        /// Machine-readable code.
        code: &'static str,
        /// When to try again.
        retry_after: Option<Duration>,
        /// The rate limit that was hit, for OpenAI's `x-ratelimit-*` headers.
        limit: Option<LimitHeaders>,
    },
    /// An admin object does not exist (or the caller may not know it does); what it names is
    /// quoted as the store's own 404s are ([`tollgate_store::NOT_FOUND_CHARS`]).
    #[error("{} not found", clip(.0, tollgate_store::NOT_FOUND_CHARS))]
    Missing(String),
    /// The change conflicts with what exists (a duplicate name, a stage that does not allow it).
    #[error("{message}")]
    Conflict {
        /// Why, for a person.
        message: String,
        /// Machine-readable code.
        code: &'static str,
    },
    /// The store failed.
    #[error("{0}")]
    Store(tollgate_store::StoreError),
    /// The model (route) does not exist.
    #[error("the model `{}` does not exist or you do not have access to it", clip(.0, ECHO_CHARS))]
    ModelNotFound(String),
    /// No such endpoint.
    #[error("unknown endpoint {} {}", clip(method, ECHO_CHARS), clip(path, 256))]
    NotFound {
        /// Method.
        method: String,
        /// Path.
        path: String,
    },
    /// Endpoint exists, method does not.
    #[error(
        "method {} is not allowed on {}",
        clip(method, ECHO_CHARS),
        clip(path, 256)
    )]
    MethodNotAllowed {
        /// Method.
        method: String,
        /// Path.
        path: String,
    },
    /// Every attempt upstream failed; the last error decides the answer.
    #[error("{0}")]
    Upstream(ProviderError),
    /// The use case's policy blocks what the request carries: the types found, never the values.
    #[error("the request contains {} that this use case's policy does not allow to be sent: remove it and try again", .0.join(", "))]
    PolicyViolation(Vec<String>),
    /// The use case's policy cannot be applied (a stored policy that does not compile), so the
    /// request is refused rather than sent unguarded.
    #[error("the use case's policy cannot be applied: {0}")]
    PolicyUnavailable(String),
    /// The object existed and was destroyed on purpose (a payload whose key was shredded).
    #[error("{message}")]
    Gone {
        /// What happened, for a person.
        message: String,
        /// Machine-readable code.
        code: &'static str,
    },
    /// The body is declared as something other than JSON (`Content-Type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The gateway is shutting down or not ready.
    #[error("the gateway is not ready: {0}")]
    Unavailable(&'static str),
    /// A bug: something that should not happen did.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 400 for a body problem.
    pub fn invalid(message: impl Into<String>, param: Option<String>) -> Self {
        ApiError::InvalidRequest {
            message: message.into(),
            param,
            code: "invalid_request",
        }
    }

    /// Status, OpenAI error type, code, and a `Retry-After` to send.
    fn parts(
        &self,
    ) -> (
        StatusCode,
        &'static str,
        Option<&'static str>,
        Option<Duration>,
    ) {
        const INVALID: &str = "invalid_request_error";
        let (status, kind, code) = match self {
            ApiError::InvalidRequest { code, .. } => (StatusCode::BAD_REQUEST, INVALID, *code),
            ApiError::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, INVALID, "body_too_large")
            }
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, INVALID, "request_timeout"),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID,
                "unsupported_media_type",
            ),
            ApiError::MissingKey => (StatusCode::UNAUTHORIZED, INVALID, "missing_api_key"),
            ApiError::InvalidKey => (StatusCode::UNAUTHORIZED, INVALID, "invalid_api_key"),
            ApiError::TwoKeys => (StatusCode::UNAUTHORIZED, INVALID, "ambiguous_api_key"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, "permission_error", *code),
            ApiError::ModelNotFound(_) => (StatusCode::NOT_FOUND, INVALID, "model_not_found"),
            ApiError::Missing(_) => (StatusCode::NOT_FOUND, INVALID, "not_found"),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, INVALID, *code),
            ApiError::Store(e) => match e {
                StoreError::NotFound(_) => (StatusCode::NOT_FOUND, INVALID, "not_found"),
                StoreError::Conflict(_) => (StatusCode::CONFLICT, INVALID, "already_exists"),
                StoreError::Invalid(_) => (StatusCode::CONFLICT, INVALID, "invalid_state"),
                StoreError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "store_unavailable",
                ),
                StoreError::Backend(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "store_error",
                ),
            },
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, INVALID, "unknown_url"),
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                INVALID,
                "method_not_allowed",
            ),
            ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "server_error", "not_ready")
            }
            ApiError::PolicyViolation(_) => (StatusCode::BAD_REQUEST, INVALID, "policy_violation"),
            ApiError::Gone { code, .. } => (StatusCode::GONE, INVALID, *code),
            ApiError::PolicyUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "policy_unavailable",
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal_error",
            ),
            ApiError::Upstream(e) => return upstream_parts(e),
            ApiError::RateLimited {
                code, retry_after, ..
            } => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some(*code),
                    *retry_after,
                );
            }
        };
        (status, kind, Some(code), None)
    }

    /// A short stable name for the `tollgate_errors_total` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyTimeout(_) => "request_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::MissingKey | ApiError::InvalidKey | ApiError::TwoKeys => "authentication",
            ApiError::Forbidden { code, .. } | ApiError::RateLimited { code, .. } => code,
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::Missing(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::Store(StoreError::Unavailable(_)) => "store_unavailable",
            ApiError::Store(_) => "store",
            ApiError::NotFound { .. } | ApiError::MethodNotAllowed { .. } => "not_found",
            ApiError::Upstream(e) => e.kind(),
            ApiError::Unavailable(_) => "unavailable",
            ApiError::PolicyViolation(_) => "policy_violation",
            ApiError::Gone { code, .. } => code,
            ApiError::PolicyUnavailable(_) => "policy_unavailable",
            ApiError::Internal => "internal",
        }
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn param(&self) -> Option<String> {
        match self {
            ApiError::InvalidRequest { param, .. } => param.clone(),
            ApiError::ModelNotFound(_) => Some("model".into()),
            _ => None,
        }
    }
}

/// How an upstream failure is told to the client.
fn upstream_parts(
    e: &ProviderError,
) -> (
    StatusCode,
    &'static str,
    Option<&'static str>,
    Option<Duration>,
) {
    match e {
        ProviderError::Status {
            status,
            retry_after,
            ..
        } => match status {
            429 => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("upstream_rate_limited"),
                *retry_after,
            ),
            // The gateway's credentials at the provider are wrong: not the client's fault.
            401 | 403 => (
                StatusCode::BAD_GATEWAY,
                "server_error",
                Some("upstream_auth_failed"),
                None,
            ),
            400..=499 => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid_request_error",
                Some("upstream_rejected_request"),
                None,
            ),
            _ => (
                StatusCode::BAD_GATEWAY,
                "server_error",
                Some("upstream_error"),
                *retry_after,
            ),
        },
        ProviderError::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            Some("upstream_timeout"),
            None,
        ),
        ProviderError::Connect(_) => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("upstream_unreachable"),
            None,
        ),
        ProviderError::Unsupported(_) => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("unsupported_by_route"),
            None,
        ),
        ProviderError::Truncated => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("upstream_stream_truncated"),
            None,
        ),
        ProviderError::InvalidResponse(_) => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("upstream_invalid_response"),
            None,
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("upstream_error"),
            None,
        ),
    }
}

/// The longest error message an answer carries, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// The longest `param` an answer carries (a path into the body), in characters.
pub const MAX_PARAM_CHARS: usize = 256;

/// The OpenAI-shaped body of an error, as JSON bytes.
pub fn error_json(
    message: String,
    kind: &str,
    param: Option<String>,
    code: Option<&str>,
) -> Vec<u8> {
    // Whatever a message or a param quotes of the request (an id, a path, a name), an answer
    // stays small: the places that echo clip to `ECHO_CHARS`, and this bounds the rest.
    let body = ErrorBody {
        error: ErrorDetail {
            message: clip(&message, MAX_MESSAGE_CHARS),
            kind: kind.into(),
            param: param.map(|p| clip(&p, MAX_PARAM_CHARS)),
            code: code.map(str::to_string),
        },
    };
    serde_json::to_vec(&body).unwrap_or_else(|_| br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.to_vec())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, code, retry_after) = self.parts();
        let limit = match &self {
            ApiError::RateLimited { limit, .. } => *limit,
            _ => None,
        };
        // What the database said stays in the server's log: it names tables and types, which
        // are no business of a client's.
        let message = match &self {
            ApiError::Store(StoreError::Backend(detail)) => {
                tracing::error!(error = %detail, "database error");
                "internal database error (the details are in the server's log)".to_string()
            }
            _ => self.to_string(),
        };
        let body = error_json(message, kind, self.param(), code);
        let mut resp = (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(wait) = retry_after {
            let secs = wait.as_secs_f64().ceil().max(0.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            if let Some(l) = limit {
                for (name, value) in l.headers(secs) {
                    resp.headers_mut().insert(name, value);
                }
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No answer quotes the request at length: an unknown model, method or path is clipped where
    /// it is named, and any message or param is bounded where the body is written.
    #[test]
    fn answers_never_quote_the_request_at_length() {
        let long = "M".repeat(3000);
        let model = ApiError::ModelNotFound(long.clone()).to_string();
        assert!(model.contains(&format!("`{}…`", "M".repeat(64))), "{model}");
        assert!(model.len() < 200, "{model}");
        let nf = ApiError::NotFound {
            method: long.clone(),
            path: format!("/admin/v1/{long}"),
        }
        .to_string();
        assert!(nf.len() < 400, "{} bytes", nf.len());
        // An id the caller sent, named in a 404, is quoted to 64 characters after what it is.
        let id = "V".repeat(5000);
        for missing in [
            ApiError::Missing(format!("use case {id}")).to_string(),
            ApiError::Store(StoreError::NotFound(format!("pod {id}"))).to_string(),
        ] {
            assert!(missing.contains(&"V".repeat(64)), "{missing}");
            assert!(missing.ends_with("… not found"), "{missing}");
            assert!(missing.chars().count() < 120, "{missing}");
        }
        assert_eq!(
            ApiError::Missing("use case uc_1".into()).to_string(),
            "use case uc_1 not found"
        );
        let body = error_json(long.clone(), "x", Some(long.clone()), None);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        let param = v["error"]["param"].as_str().unwrap();
        assert_eq!(
            message.chars().count(),
            MAX_MESSAGE_CHARS + 1,
            "cut, with its ellipsis"
        );
        assert_eq!(param.chars().count(), MAX_PARAM_CHARS + 1);
        let short = error_json("fine".into(), "x", Some("a.b".into()), None);
        let v: serde_json::Value = serde_json::from_slice(&short).unwrap();
        assert_eq!(
            (v["error"]["message"].as_str(), v["error"]["param"].as_str()),
            (Some("fine"), Some("a.b"))
        );
    }

    #[test]
    fn upstream_statuses_map_to_what_sdks_expect() {
        let s = |status| {
            ApiError::Upstream(ProviderError::Status {
                status,
                message: "m".into(),
                retry_after: None,
            })
            .status()
        };
        assert_eq!(s(429), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(s(400), StatusCode::BAD_REQUEST);
        assert_eq!(s(401), StatusCode::BAD_GATEWAY);
        assert_eq!(s(503), StatusCode::BAD_GATEWAY);
        assert_eq!(
            ApiError::Upstream(ProviderError::Timeout).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }

    /// An upstream answer the gateway cannot read says so in its code (attack 2026-12-02c C9).
    #[test]
    fn an_unreadable_answer_has_its_own_code() {
        let e = ApiError::Upstream(ProviderError::InvalidResponse("not UTF-8".into()));
        let (status, kind, code, _) = e.parts();
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            (kind, code),
            ("server_error", Some("upstream_invalid_response"))
        );
    }

    #[test]
    fn retry_after_is_sent_on_429() {
        let e = ApiError::Upstream(ProviderError::Status {
            status: 429,
            message: "slow".into(),
            retry_after: Some(Duration::from_millis(1500)),
        });
        let resp = e.into_response();
        assert_eq!(resp.headers()["retry-after"], "2");
    }
}
