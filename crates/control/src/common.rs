//! What every resource module of the admin API shares: imports, the body reader, field checks,
//! paging. Each handler checks the role, validates, calls the store, tells the data plane when
//! keys, use cases or budgets changed, and answers.

pub(crate) use crate::Control;
pub(crate) use crate::access::Principal;
pub(crate) use crate::dto::*;
pub(crate) use crate::{budgets::*, pods::*, use_cases::*, users::visible_users};
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
    body_and_value(gw, headers, body).await.map(|(t, _)| t)
}

/// [`body`], and the body as a JSON value: what a partial update needs to tell a field left out
/// from one given as `null`.
pub(crate) async fn body_and_value<T: DeserializeOwned>(
    gw: &Control,
    headers: &HeaderMap,
    body: Body,
) -> Result<(T, serde_json::Value)> {
    let bytes = read_body(headers, body, gw.max_body_bytes).await?;
    // A body there is must say it is JSON (an empty one is told as empty, below).
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        tollgate_http::extract::require_json_type(headers)?;
    }
    // serde reads a struct from an array too (`[null, null]` is an `UpdatePod`).
    tollgate_http::extract::require_object(&bytes)?;
    // The text first: its syntax, keys given twice (which a parsed value would merge), types.
    let text = parse_json::<T>(&bytes);
    let Ok(mut value) = parse_json::<serde_json::Value>(&bytes) else {
        return text.map(|t| (t, serde_json::Value::Null));
    };
    // JSON Schema, and so the OpenAPI document, counts `2.0` as an integer: whole numbers
    // written with a fraction are read as integers.
    let floats = whole_floats_to_integers(&mut value);
    match &text {
        // The text failed, and whole numbers were written with a fraction: the value, with
        // them as integers, decides. (Matching the error's wording instead broke when the
        // wording changed: `151.0` for an integer field became a 400 again.)
        Err(ApiError::InvalidRequest { .. })
            if floats && tollgate_http::extract::parse_value::<T>(value.clone()).is_ok() => {}
        Err(_) => return text.map(|t| (t, serde_json::Value::Null)),
        Ok(_) => {}
    }
    // A key given twice anywhere (the parsed value keeps only the last one, so a free-form
    // field like a policy would silently lose the first).
    tollgate_http::extract::refuse_duplicate_keys(&bytes)?;
    // Then the value, where (as the document says) only an object is a struct.
    tollgate_http::extract::parse_value(value.clone()).map(|t| (t, value))
}

/// Turns every whole float of `v` that an integer type holds exactly (`2.0`, `-0.0`) into an
/// integer; whether any changed.
fn whole_floats_to_integers(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= 2f64.powi(53))
            else {
                return false;
            };
            // Exact: |f| <= 2^53, so the cast neither rounds nor saturates.
            *v = Value::from(f as i64);
            true
        }
        Value::Array(items) => {
            let mut any = false;
            for x in items {
                any |= whole_floats_to_integers(x);
            }
            any
        }
        Value::Object(fields) => {
            let mut any = false;
            for x in fields.values_mut() {
                any |= whole_floats_to_integers(x);
            }
            any
        }
        _ => false,
    }
}

pub(crate) fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// Whether `c` must never appear in a name: control and bidirectional-override characters.
pub(crate) fn forbidden_char(c: char) -> bool {
    tollgate_types::text::is_control_or_bidi(c)
}

/// A name: 1–100 characters, no leading or trailing spaces, no control or bidi characters, and
/// nothing invisible (a zero-width space would make `pod​-a` a second `pod-a` no one can tell
/// apart).
pub(crate) fn name_ok(field: &str, v: &str) -> Result<()> {
    let n = v.trim().chars().count();
    if n == 0 || n > 100 || v.trim() != v {
        return Err(ApiError::invalid(
            format!("`{field}` must be 1–100 characters without leading or trailing spaces"),
            Some(field.into()),
        ));
    }
    no_forbidden_chars(field, v)?;
    if v.contains(tollgate_types::text::is_invisible) {
        return Err(ApiError::invalid(
            format!("`{field}` must not contain invisible characters (zero-width spaces, joiners)"),
            Some(field.into()),
        ));
    }
    Ok(())
}

/// A free text: at most `max` characters; line breaks and tabs are fine, other control and bidi
/// characters are not.
pub(crate) fn text_ok(field: &str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            format!("`{field}` must be at most {max} characters"),
            Some(field.into()),
        ));
    }
    if v.contains(|c| forbidden_char(c) && !matches!(c, '\n' | '\t')) {
        return Err(ApiError::invalid(
            format!("`{field}` must not contain control or bidirectional-override characters"),
            Some(field.into()),
        ));
    }
    Ok(())
}

fn no_forbidden_chars(field: &str, v: &str) -> Result<()> {
    if v.contains(forbidden_char) {
        return Err(ApiError::invalid(
            format!("`{field}` must not contain control or bidirectional-override characters"),
            Some(field.into()),
        ));
    }
    Ok(())
}

/// The value model's texts are short labels; its numbers are finite.
/// The most one successful outcome may be worth, USD: what one feedback event may report
/// (`tollgate_gateway::feedback::MAX_EVENT_VALUE_USD`).
pub(crate) const MAX_VALUE_PER_OUTCOME_USD: u64 = 10_000_000;

pub(crate) fn check_value_model(v: &Option<m::ValueModel>) -> Result<()> {
    let Some(v) = v else { return Ok(()) };
    if !v.driver.is_empty() && !m::ValueModel::DRIVERS.contains(&v.driver.as_str()) {
        return Err(ApiError::invalid(
            format!(
                "`value_model.driver` must be one of {} (or empty)",
                m::ValueModel::DRIVERS.join(", ")
            ),
            Some("value_model.driver".into()),
        ));
    }
    for (field, text) in [
        ("value_model.kpi", &v.kpi),
        ("value_model.kpi_unit", &v.kpi_unit),
        ("value_model.owner", &v.owner),
    ] {
        text_ok(field, text, 200)?;
        no_forbidden_chars(field, text)?;
    }
    // One outcome worth more than a single feedback event may report is a typo, and its
    // products (× outcomes, × volume) must stay exact sums.
    if v.value_per_outcome_nano_usd > MAX_VALUE_PER_OUTCOME_USD * 1_000_000_000 {
        return Err(ApiError::invalid(
            format!(
                "`value_model.value_per_outcome_nano_usd` must be at most {} (USD {MAX_VALUE_PER_OUTCOME_USD}, as one feedback event's value)",
                MAX_VALUE_PER_OUTCOME_USD * 1_000_000_000
            ),
            Some("value_model.value_per_outcome_nano_usd".into()),
        ));
    }
    // Integers beyond i64 are not kept (and not documented: the document says int64).
    for (field, n) in [
        (
            "value_model.value_per_outcome_nano_usd",
            v.value_per_outcome_nano_usd,
        ),
        ("value_model.eligible_users", v.eligible_users),
        ("value_model.volume_per_month", v.volume_per_month),
    ] {
        if i64::try_from(n).is_err() {
            return Err(ApiError::invalid(
                format!("`{field}` must be at most {}", i64::MAX),
                Some(field.into()),
            ));
        }
    }
    for (field, x) in [
        ("value_model.baseline", v.baseline),
        ("value_model.target", v.target),
    ] {
        if !x.is_finite() {
            return Err(ApiError::invalid(
                format!("`{field}` must be a finite number"),
                Some(field.into()),
            ));
        }
    }
    for (field, x) in [
        (
            "value_model.baseline_minutes_per_task",
            v.baseline_minutes_per_task,
        ),
        (
            "value_model.assisted_minutes_per_task",
            v.assisted_minutes_per_task,
        ),
    ] {
        // A task of more than a million minutes (about two years) is a typo, and the KPIs
        // multiply it by every success.
        if !(x.is_finite() && (0.0..=1_000_000.0).contains(&x)) {
            return Err(ApiError::invalid(
                format!("`{field}` must be a number of minutes, 0 to 1,000,000"),
                Some(field.into()),
            ));
        }
    }
    Ok(())
}

/// Whether `text`, an RFC 3339 time that does not parse, would parse in a year in range with
/// the same calendar (a leap year for a leap year): only its year, or the instant its offset
/// moves it to (before 1970, or past 9999), is wrong, not how it is written. `2027-02-29` is a
/// date that does not exist, not a year out of range.
pub(crate) fn only_the_year_is_out_of_range(text: &str) -> bool {
    let Some(year) = text
        .get(..4)
        .filter(|y| y.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|y| y.parse::<u32>().ok())
    else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let stand_in = if leap { "2000" } else { "2001" };
    text.get(4..)
        .is_some_and(|rest| parse_rfc3339(&format!("{stand_in}{rest}")).is_some())
}

/// An RFC 3339 time given as `field`, in Unix ms. A time written right but before 1970 (the
/// ledger's times are after the Unix epoch) or after 9999 is told so, not called malformed.
pub(crate) fn time_param(field: &str, v: &str) -> Result<i64> {
    time_until(field, v, "9999-12-31T23:59:59.999Z")
}

/// [`time_param`], whose latest time is written `last` in its error.
fn time_until(field: &str, v: &str, last: &str) -> Result<i64> {
    parse_rfc3339(v).ok_or_else(|| {
        let message = if !only_the_year_is_out_of_range(v) {
            format!("`{field}` must be an RFC 3339 time like 2026-11-01T00:00:00Z")
        } else if v.get(..4).is_some_and(|year| year >= "5000") {
            // Its year, or the instant its offset moves it to, is past 9999 (a year before
            // 1970 is before; the offset moves an instant by less than a day).
            format!("`{field}` must be at most {last}")
        } else {
            format!("`{field}` must be from 1970-01-01T00:00:00Z on")
        };
        ApiError::invalid(message, Some(field.into()))
    })
}

/// The last hour a report's window may reach: its `to` is rounded up to a whole hour, and that
/// hour must still be a time (9999-12-31T23:00:00Z, not the year 10000).
pub(crate) const LAST_REPORT_HOUR_MS: i64 = 253_402_297_200_000;

/// A report's `from` or `to` ([`time_param`]), at most [`LAST_REPORT_HOUR_MS`].
pub(crate) fn report_time(field: &str, v: &str) -> Result<i64> {
    let t = time_until(field, v, "9999-12-31T23:00:00Z")?;
    if t > LAST_REPORT_HOUR_MS {
        return Err(ApiError::invalid(
            format!("`{field}` must be at most 9999-12-31T23:00:00Z"),
            Some(field.into()),
        ));
    }
    Ok(t)
}

/// A report's `from` and `to` ([`report_time`]), `to` at least a millisecond after `from` —
/// times are read to the millisecond, so one a nanosecond later is the same time, and told so.
pub(crate) fn report_range(from: &str, to: &str) -> Result<(i64, i64)> {
    let (f, t) = (report_time("from", from)?, report_time("to", to)?);
    if t <= f {
        return Err(ApiError::invalid(
            if t == f && from != to {
                "`to` must be after `from`: read to the millisecond, they are the same time"
            } else {
                "`to` must be after `from`"
            },
            Some("to".into()),
        ));
    }
    Ok((f, t))
}

/// An optional RFC 3339 time that must be after `now` (the control plane's clock).
pub(crate) fn future_time(field: &str, v: Option<&str>, now: i64) -> Result<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    let t = time_param(field, v)?;
    if t <= now {
        return Err(ApiError::invalid(
            format!("`{field}` must be in the future"),
            Some(field.into()),
        ));
    }
    Ok(Some(t))
}

/// A whole-number query parameter `name` from `lo` to `hi` (`None` when it is not given), with
/// one wording on every route: a value that is not a number, is empty, or is out of range gets
/// the same message, naming the range (`i64::MAX` as `hi` for no upper bound).
pub(crate) fn whole_number(
    q: &HashMap<String, String>,
    name: &str,
    lo: i64,
    hi: i64,
) -> Result<Option<i64>> {
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    // Digits, after a minus sign at most: Rust's parser also takes a leading `+`.
    v.strip_prefix('-')
        .unwrap_or(v)
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| v.parse::<i64>().ok())
        .flatten()
        .filter(|n| (lo..=hi).contains(n))
        .map(Some)
        .ok_or_else(|| {
            let range = if hi == i64::MAX {
                format!("{lo} or more")
            } else {
                format!("from {lo} to {hi}")
            };
            ApiError::invalid(
                format!("`{name}` must be a whole number {range}"),
                Some(name.into()),
            )
        })
}

/// A list's filter `name` (`suite`, `use_case_id`, `pod_id`): `None` when left out; an empty
/// value is refused, named — not read as "no filter", nor as a name nothing has.
pub(crate) fn filter_param<'q>(
    q: &'q HashMap<String, String>,
    name: &str,
) -> Result<Option<&'q str>> {
    match q.get(name).map(String::as_str) {
        Some("") => Err(ApiError::invalid(
            format!("`{name}` must not be empty (leave it out for no filter)"),
            Some(name.into()),
        )),
        v => Ok(v),
    }
}

/// The cursor `after` of a list paged by name: the `next` of an earlier page, so a name of its
/// kind (`valid` holds the rule such names follow; `what` says which, as "a suite's name") —
/// anything else was never a page's `next` and is refused, not read as "from the start".
pub(crate) fn name_cursor(
    q: &HashMap<String, String>,
    what: &str,
    valid: impl Fn(&str) -> Result<()>,
) -> Result<Option<String>> {
    let after = q.get("after").cloned();
    if let Some(a) = &after {
        valid(a).map_err(|_| {
            ApiError::invalid(
                format!("`after` must be the `next` of an earlier page ({what})"),
                Some("after".into()),
            )
        })?;
    }
    Ok(after)
}

/// A page's size: `limit`, 1–200 (`default` when it is not given).
pub(crate) fn page_limit(q: &HashMap<String, String>, default: u32) -> Result<u32> {
    Ok(whole_number(q, "limit", 1, 200)?.map_or(default, |n| n as u32))
}

/// A list's page: `after` and `limit` (a name the operation does not take was refused before,
/// by [`crate::query`]). `after` is the `next` of an earlier page — an id (`pod_0193…`): a
/// cursor that cannot be one is refused, not read as "from the start" (or "after everything").
pub(crate) fn list_query(q: &HashMap<String, String>, kind: &str) -> Result<PageRequest> {
    let after = q.get("after").cloned();
    if let Some(a) = &after {
        // Exactly the shape of an id the store issues for this list (`pod_` and 32 lower-case
        // hex digits for pods): an id of another kind, or changed in case or length, was never
        // this list's `next`, and is refused rather than read as a place in the list.
        let issued = a.split_once('_').is_some_and(|(of, rest)| {
            of == kind
                && rest.len() == 32
                && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if !issued {
            return Err(ApiError::invalid(
                "`after` must be the `next` of an earlier page",
                Some("after".into()),
            ));
        }
    }
    Ok(PageRequest {
        after,
        limit: page_limit(q, 0)?,
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
    if let Some(t) = l.and_then(|l| l.tokens_per_minute)
        && i64::try_from(t).is_err()
    {
        return Err(ApiError::invalid(
            format!("`tokens_per_minute` must be at most {}", i64::MAX),
            Some(format!("{field}.tokens_per_minute")),
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
