//! What both planes share at the HTTP edge, and nothing else.
//!
//! - [`error`]: [`ApiError`](error::ApiError), every way a request can fail, and the one place that
//!   turns it into a status and OpenAI's error body. `/v1` and `/admin/v1` answer errors alike.
//! - [`extract`]: reading a body (size-limited) and parsing it as JSON with the path of the field at
//!   fault.
//! - [`bearer`]: the token of `Authorization: Bearer …`.
//! - [`DataPlane`]: the one interface through which the control plane tells the data plane that the
//!   store changed (so it refreshes its snapshots) and reads the live state only the data plane
//!   has (budget spend with requests in flight), and counts failed admin logins in its metrics.
//!   The planes never hold each other.

pub mod error;
pub mod extract;

use axum::http::HeaderMap;
use error::ApiError;
use std::future::Future;
use std::pin::Pin;
use tollgate_store::{BudgetStatus, StoreError};

/// What changed in the store, so the data plane knows which snapshot to refresh, and how much
/// of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// Use cases (stage, routes, caps, limits) or pods: the whole key snapshot.
    Keys,
    /// One key (issued, revoked, rotated): only its entry.
    Key(String),
    /// One budget (created or deleted): only its state.
    Budget(String),
    /// A guard policy (a use case's or the org default's): the policy snapshot.
    Policies,
    /// A pattern (a version added, a label moved): the pattern snapshot.
    Patterns,
    /// Data keys were destroyed (an erasure): forget the ones held in memory, and every
    /// conversation's tokens.
    PayloadKeys,
}

/// A boxed future, so [`DataPlane`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The data plane as the control plane sees it: a snapshot to refresh and live budget states.
pub trait DataPlane: Send + Sync + 'static {
    /// Reloads the snapshot `changed` belongs to; returns once requests see the change.
    fn refresh(&self, changed: Changed) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Where every budget stands now, reservations of requests in flight included.
    fn budget_statuses(&self) -> Vec<BudgetStatus>;

    /// Raises an alert through the data plane's channel (the log and the webhooks): `kind`, a
    /// message for a person, machine-readable details (never a key, a prompt or a response).
    fn alert(&self, kind: &'static str, message: String, details: serde_json::Value);

    /// Counts a failed admin authentication in the metrics `/metrics` serves (the control plane
    /// has no registry of its own; a guessing attack should show on the same dashboard).
    fn admin_auth_failed(&self, failure: AuthFailure);

    /// Returns once the request records and outcome events accepted before the call are in the
    /// store (or cannot be written now, or a short bound has passed): reports read their own
    /// traffic.
    fn settled(&self) -> BoxFuture<'_, ()>;
}

/// How an admin authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// An unknown, expired or revoked token, or a disabled user's: 401.
    Rejected,
    /// The client was over its failure budget and was refused before its token was checked: 429.
    Throttled,
}

impl AuthFailure {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Rejected => "rejected",
            AuthFailure::Throttled => "throttled",
        }
    }
}

/// The token of `Authorization: Bearer <token>`. The scheme is read in any letter case (RFC 9110
/// §11.1: `bearer`, `BEARER`); a missing header, another scheme or an empty token is
/// [`ApiError::MissingKey`]; two `Authorization` headers are refused ([`ApiError::TwoKeys`])
/// rather than one of them read silently.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut all = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let value = all.next().ok_or(ApiError::MissingKey)?;
    if all.next().is_some() {
        return Err(ApiError::TwoKeys);
    }
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or(ApiError::MissingKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_token_is_read_in_any_case_and_once() {
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("authorization", HeaderValue::from_str(v).unwrap());
            }
            bearer(&h).map(str::to_string).map_err(|e| e.to_string())
        };
        for v in [
            "Bearer tg_k",
            "bearer tg_k",
            "BEARER tg_k",
            "BeArEr   tg_k  ",
        ] {
            assert_eq!(with(&[v]), Ok("tg_k".to_string()), "{v:?}");
        }
        let missing = Err(ApiError::MissingKey.to_string());
        assert_eq!(with(&[]), missing);
        for v in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer   ",
            "Bearertg_k",
            "tg_k",
        ] {
            assert_eq!(with(&[v]), missing, "{v:?}");
        }
        assert_eq!(
            with(&["Bearer tg_a", "Bearer tg_b"]),
            Err(ApiError::TwoKeys.to_string())
        );
    }
}
