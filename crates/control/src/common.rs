//! What every resource module of the admin API shares: imports, the body reader, field checks,
//! paging. Each handler checks the role, validates, calls the store, tells the data plane when
//! keys, use cases or budgets changed, and answers.

pub(crate) use crate::Control;
pub(crate) use crate::access::Principal;
pub(crate) use crate::dto::*;
pub(crate) use crate::{budgets::*, pods::*, use_cases::*};
pub(crate) use axum::Json;
pub(crate) use axum::body::Body;
pub(crate) use axum::extract::{Path, Query, State};
pub(crate) use axum::http::{HeaderMap, StatusCode};
pub(crate) use axum::response::{IntoResponse, Response};
pub(crate) use serde::de::DeserializeOwned;
pub(crate) use std::collections::HashMap;
pub(crate) use std::sync::Arc;
pub(crate) use tollgate_http::Changed;
pub(crate) use tollgate_http::error::ApiError;
pub(crate) use tollgate_http::extract::{parse_json, read_body};
pub(crate) use tollgate_store::{
    self as m, AuditQueries, BudgetQueries, KeyQueries, LedgerQueries, PageRequest, PodQueries,
    UseCaseQueries, UserQueries,
};
pub(crate) use tollgate_types::time::parse_rfc3339;

pub(crate) type Result<T> = std::result::Result<T, ApiError>;
pub(crate) type Gw = State<Arc<Control>>;

pub(crate) async fn body<T: DeserializeOwned>(
    gw: &Control,
    headers: &HeaderMap,
    body: Body,
) -> Result<T> {
    let bytes = read_body(headers, body, gw.max_body_bytes).await?;
    parse_json(&bytes)
}

pub(crate) fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

pub(crate) fn name_ok(field: &str, v: &str) -> Result<()> {
    let n = v.trim().chars().count();
    if n == 0 || n > 100 || v.trim() != v {
        return Err(ApiError::invalid(
            format!("`{field}` must be 1–100 characters without leading or trailing spaces"),
            Some(field.into()),
        ));
    }
    Ok(())
}

pub(crate) fn text_ok(field: &str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            format!("`{field}` must be at most {max} characters"),
            Some(field.into()),
        ));
    }
    Ok(())
}

pub(crate) fn future_time(field: &str, v: Option<&str>) -> Result<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    let t = parse_rfc3339(v).ok_or_else(|| {
        ApiError::invalid(
            format!("`{field}` must be an RFC 3339 time like 2030-01-31T00:00:00Z"),
            Some(field.into()),
        )
    })?;
    if t <= m::now_ms() {
        return Err(ApiError::invalid(
            format!("`{field}` must be in the future"),
            Some(field.into()),
        ));
    }
    Ok(Some(t))
}

/// List query parameters: `after`, `limit`, and the filters an endpoint names.
pub(crate) fn list_query(q: &HashMap<String, String>, filters: &[&str]) -> Result<PageRequest> {
    for k in q.keys() {
        if k != "after" && k != "limit" && !filters.contains(&k.as_str()) {
            return Err(ApiError::invalid(
                format!("unknown query parameter `{k}`"),
                Some(k.clone()),
            ));
        }
    }
    let limit = match q.get("limit") {
        None => 0,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "`limit` must be a whole number from 1 to 200",
                    Some("limit".into()),
                )
            })?,
    };
    Ok(PageRequest {
        after: q.get("after").cloned(),
        limit,
    })
}

pub(crate) fn check_scores(s: &Option<m::Scores>) -> Result<()> {
    if let Some(field) = s.as_ref().and_then(m::Scores::out_of_range) {
        return Err(ApiError::invalid(
            format!("`scores.{field}` must be from 1 to 5"),
            Some(format!("scores.{field}")),
        ));
    }
    Ok(())
}

pub(crate) fn check_caps(c: &Option<m::PilotCaps>) -> Result<()> {
    if let Some(c) = c
        && (c.max_end_users_per_day == Some(0) || c.max_requests_per_day == Some(0))
    {
        return Err(ApiError::invalid(
            "pilot caps must be at least 1 (leave a cap out for none)",
            Some("pilot_caps".into()),
        ));
    }
    Ok(())
}

pub(crate) fn check_limits(field: &str, l: &Option<m::Limits>) -> Result<()> {
    if let Some(l) = l
        && (l.requests_per_minute == Some(0)
            || l.tokens_per_minute == Some(0)
            || l.concurrent_requests == Some(0))
    {
        return Err(ApiError::invalid(
            "limits must be at least 1 (leave a limit out for none)",
            Some(field.into()),
        ));
    }
    Ok(())
}

pub(crate) fn check_routes(gw: &Control, field: &str, routes: &[String]) -> Result<()> {
    for (i, r) in routes.iter().enumerate() {
        if !gw.has_route(r) {
            return Err(ApiError::invalid(
                format!("unknown route `{r}`: routes come from the gateway's config"),
                Some(format!("{field}[{i}]")),
            ));
        }
    }
    Ok(())
}
