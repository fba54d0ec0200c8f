//! `POST /v1/feedback`: what an application reports became of a request or a session — an
//! outcome (`success`, `failure`, `escalated`, `abandoned`), a rating, whether the output was
//! accepted (and edited), the value it produced, the minutes it saved, free labels.
//!
//! Authenticated with the data-plane key; an event may only name a request or a session of the
//! key's own use case — anything else is 404, exactly like a reference that does not exist, so a
//! key learns nothing of other use cases. A reference is checked against the requests admitted
//! lately ([`RecentRefs`], so feedback posted the moment an answer ends is not refused because
//! its record is still queued) and then the ledger. Accepted events (202) go to the outcome
//! writer, off the request path; an `event_id` makes posting idempotent (a second event with
//! the same id in the same use case is not counted, and is answered with the same `id` as the
//! first), and a request has at most
//! [`tollgate_store::MAX_EVENTS_PER_REQUEST`] events, a session
//! [`tollgate_store::MAX_EVENTS_PER_SESSION`] (more are accepted like duplicates and not
//! stored). The KPIs count each request and session once, as its latest event says
//! ([`tollgate_store::OutcomeState`]), so one answer cannot stand for many; a session speaks
//! for its requests (what it reports replaces what they report of the same). Only answered
//! production requests may be named: one refused or failed, or an evaluation run's, is 404, and
//! an evaluation key posts nothing. A full queue answers 503: nothing accepted is dropped.

use crate::Gateway;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::extract::{parse_json, read_body};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use tollgate_store::{Outcome, OutcomeEvent, OutcomeQueries};

/// References kept per generation of [`RecentRefs`] (two generations are kept).
pub const RECENT_PER_GENERATION: usize = 1 << 17;
/// Labels one event may carry.
pub const MAX_LABELS: usize = 20;
/// The largest feedback body, bytes. The largest valid event — 20 labels of 64-character names
/// and 256-character values, every character written as a `\uXXXX` escape — is about 36 KiB, so
/// this leaves room; a body of many megabytes is refused before it is parsed, and parsing what is
/// let in takes microseconds (never a worker's time from the other requests).
pub const MAX_FEEDBACK_BYTES: usize = 64 * 1024;
/// How far back an event's `at` may be, in days.
pub const MAX_BACKDATE_DAYS: i64 = 90;
/// How far ahead of the gateway's clock an event's `at` may be (clock skew), in ms.
const MAX_AHEAD_MS: i64 = 5 * 60 * 1000;

/// The requests and sessions admitted lately, per use case, as 64-bit keyed fingerprints with
/// the time each was first seen — a request's with its session's pseudonym (one copy per
/// session, shared) and whether it has been answered — in two generations of at most
/// [`RECENT_PER_GENERATION`] each (about 60 bytes an entry, some 15 MB full): when one fills,
/// the older is forgotten. Older references are looked up in the ledger. Outcomes are about
/// answers in production: evaluation requests are not noted, and a request may be named once it
/// is answered — a complete answer when it is recorded with a 2xx, a stream once it starts — and
/// never if it ends without an answer.
#[derive(Debug, Default)]
pub struct RecentRefs {
    gens: Mutex<(HashMap<u64, Seen>, HashMap<u64, Seen>)>,
    keys: std::collections::hash_map::RandomState,
}

/// When a reference was first seen; a request's session pseudonym and whether it was answered
/// (a session's own pseudonym, shared with its requests).
#[derive(Debug, Clone)]
struct Seen {
    at: i64,
    session: Option<Arc<str>>,
    answered: bool,
}

impl RecentRefs {
    fn fingerprint(&self, kind: u8, use_case: &str, reference: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        kind.hash(&mut h);
        use_case.hash(&mut h);
        reference.hash(&mut h);
        h.finish()
    }

    /// The entry of `f` in the newer generation (moved there from the older one), made with
    /// `new` when there is none; a full newer generation becomes the older first.
    fn entry(
        g: &mut (HashMap<u64, Seen>, HashMap<u64, Seen>),
        f: u64,
        new: impl FnOnce() -> Seen,
    ) -> &mut Seen {
        if !g.0.contains_key(&f) && g.0.len() >= RECENT_PER_GENERATION {
            let full = std::mem::take(&mut g.0);
            g.1 = full;
        }
        let (newer, older) = g;
        newer
            .entry(f)
            .or_insert_with(|| older.remove(&f).unwrap_or_else(new))
    }

    /// The entry of `f`, in either generation.
    fn find(g: &mut (HashMap<u64, Seen>, HashMap<u64, Seen>), f: u64) -> Option<&mut Seen> {
        let (newer, older) = g;
        newer.get_mut(&f).or_else(|| older.get_mut(&f))
    }

    fn first(&self, f: u64) -> Option<Seen> {
        Self::find(&mut *self.gens.lock().ok()?, f).cloned()
    }

    /// Notes a request of `use_case` admitted at `at` (Unix ms), and its session's pseudonym.
    pub fn note(&self, use_case: &str, request_id: &str, session_hash: Option<&str>, at: i64) {
        let Ok(mut g) = self.gens.lock() else {
            return;
        };
        let session = session_hash.map(|s| {
            let e = Self::entry(&mut g, self.fingerprint(1, use_case, s), || Seen {
                at,
                session: Some(Arc::from(s)),
                answered: false,
            });
            e.at = e.at.min(at);
            e.session.clone()
        });
        let e = Self::entry(&mut g, self.fingerprint(0, use_case, request_id), || Seen {
            at,
            session: session.flatten(),
            answered: false,
        });
        e.at = e.at.min(at);
    }

    /// Notes that a request of `use_case` was answered: from now on feedback may name it, and
    /// its session (a session with no answer is nothing to report on either).
    pub fn answered(&self, use_case: &str, request_id: &str) {
        let f = self.fingerprint(0, use_case, request_id);
        let Ok(mut g) = self.gens.lock() else {
            return;
        };
        let Some(e) = Self::find(&mut g, f) else {
            return;
        };
        e.answered = true;
        if let Some(s) = e.session.clone()
            && let Some(e) = Self::find(&mut g, self.fingerprint(1, use_case, &s))
        {
            e.answered = true;
        }
    }

    /// When `use_case` had the answered request `request_id` lately (the first time, if its id
    /// came more than once), and the pseudonym of the session it was part of.
    pub fn request_at(&self, use_case: &str, request_id: &str) -> Option<(i64, Option<String>)> {
        self.first(self.fingerprint(0, use_case, request_id))
            .filter(|s| s.answered)
            .map(|s| (s.at, s.session.map(|h| h.to_string())))
    }

    /// When `use_case` had a request of the session with this pseudonym lately (the earliest
    /// remembered), once one of its requests has been answered.
    pub fn session_at(&self, use_case: &str, session_hash: &str) -> Option<i64> {
        self.first(self.fingerprint(1, use_case, session_hash))
            .filter(|s| s.answered)
            .map(|s| s.at)
    }
}

/// The body of `POST /v1/feedback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    request_id: Option<String>,
    session_id: Option<String>,
    event_id: Option<String>,
    #[serde(default, deserialize_with = "tollgate_http::extract::optional_name")]
    outcome: Option<Outcome>,
    rating: Option<i64>,
    accepted: Option<bool>,
    edited: Option<bool>,
    value_usd: Option<Box<serde_json::value::RawValue>>,
    minutes_saved: Option<Box<serde_json::value::RawValue>>,
    labels: Option<BTreeMap<String, String>>,
    at: Option<String>,
}

fn invalid(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::invalid(message, Some(param.into()))
}

/// A short id-like text: 1–`max` characters, none of them a control character.
fn id_text(v: &str, param: &str, max: usize) -> Result<(), ApiError> {
    if v.is_empty() || v.chars().count() > max {
        return Err(invalid(
            format!("`{param}` must be 1 to {max} characters"),
            param,
        ));
    }
    if v.chars().any(|c| c.is_control() || invisible(c)) {
        return Err(invalid(
            format!("`{param}` must not contain control or invisible characters"),
            param,
        ));
    }
    Ok(())
}

/// A decimal given as a JSON number or a string, as the text the client wrote (a number is
/// read from its own digits, never through a float).
fn decimal_text(
    v: &serde_json::value::RawValue,
    param: &str,
    what: &str,
) -> Result<String, ApiError> {
    let raw = v.get().trim();
    if raw.starts_with('"') {
        // A string is digits, a point and digits at most (a minus is let through to be told
        // it is one): no spaces, `+`, exponents, `inf`, `.5` or `5.`.
        let text = serde_json::from_str::<String>(raw).unwrap_or_default();
        let unsigned = text.strip_prefix('-').unwrap_or(&text);
        let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, "1"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(whole) && digits(frac)) {
            return Err(invalid(
                format!(
                    "`{param}` must be {what}: a number or a decimal string such as \"12.50\", got {:?}",
                    tollgate_types::text::clip(&text, tollgate_types::text::ECHO_CHARS)
                ),
                param,
            ));
        }
        return Ok(text);
    }
    if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Ok(raw.to_string());
    }
    Err(invalid(
        format!("`{param}` must be a number or a decimal string such as \"12.50\""),
        param,
    ))
}

/// The largest value one event may report, USD (ten million): more is a mistake, and sums of
/// such values must stay exact.
pub const MAX_EVENT_VALUE_USD: u64 = 10_000_000;

/// Characters that show nothing or turn text around (format characters): not allowed in ids and
/// labels, where two ids that look the same would count as two.
fn invisible(c: char) -> bool {
    tollgate_types::text::is_invisible(c)
}

/// The id of the event a use case posts with `event_id` (NFC): the same for every post of it,
/// so a repeated post is answered with the id of the one that counts (it is not counted again).
fn idempotent_id(use_case_id: &str, event_id: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(use_case_id.as_bytes());
    h.update([0]);
    h.update(event_id.as_bytes());
    let hex = tollgate_store::keys::hex(&h.finalize());
    format!("fbk_{}", &hex[..32])
}

/// The event a body describes, checked (the reference is checked by the caller).
fn event_of(b: FeedbackBody, now: i64) -> Result<(OutcomeEvent, Option<String>), ApiError> {
    let session = match (&b.request_id, &b.session_id) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either `request_id` or `session_id`, not both",
                "session_id",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "say what the feedback is about: `request_id` (the `x-request-id` of an answer) or `session_id` (its `x-tollgate-session`)",
                "request_id",
            ));
        }
        (Some(r), None) => {
            id_text(r, "request_id", 256)?;
            None
        }
        (None, Some(s)) => {
            id_text(s, "session_id", 256)?;
            Some(s.clone())
        }
    };
    // Ids that read the same are the same id: `é` written as one character or as `e` and a
    // combining accent (Unicode's composed form, NFC), checked as kept.
    let event_id = b.event_id.as_deref().map(|e| {
        use unicode_normalization::UnicodeNormalization;
        e.nfc().collect::<String>()
    });
    if let Some(e) = &event_id {
        id_text(e, "event_id", 128)?;
    }
    let rating = match b.rating {
        None => None,
        Some(r @ 1..=5) => Some(r as u8),
        Some(r) => {
            return Err(invalid(
                format!("`rating` must be 1 to 5 (4 and 5 count as positive), got {r}"),
                "rating",
            ));
        }
    };
    if b.edited.is_some() && b.accepted.is_none() {
        return Err(invalid(
            "`edited` says how an accepted output was used: give `accepted` too",
            "edited",
        ));
    }
    let value = match &b.value_usd {
        None => None,
        Some(v) => {
            let text = decimal_text(v, "value_usd", "an amount in USD")?;
            let nanos = tollgate_meter::money::parse_decimal(&text, 9)
                .map_err(|e| {
                    invalid(
                        format!("`value_usd` must be a non-negative amount in USD with at most 9 decimals: {e}"),
                        "value_usd",
                    )
                })?;
            if nanos > MAX_EVENT_VALUE_USD * 1_000_000_000 {
                return Err(invalid(
                    format!("`value_usd` is at most {MAX_EVENT_VALUE_USD} for one event"),
                    "value_usd",
                ));
            }
            Some(nanos)
        }
    };
    let minutes = match &b.minutes_saved {
        None => None,
        Some(v) => {
            let text = decimal_text(v, "minutes_saved", "a number of minutes")?;
            let m: f64 = text.trim().parse().map_err(|_| {
                invalid(
                    format!(
                        "`minutes_saved` must be a number of minutes, got {:?}",
                        tollgate_types::text::clip(&text, tollgate_types::text::ECHO_CHARS)
                    ),
                    "minutes_saved",
                )
            })?;
            if !(0.0..=1_000_000.0).contains(&m) {
                return Err(invalid(
                    "`minutes_saved` must be between 0 and 1,000,000",
                    "minutes_saved",
                ));
            }
            Some((m * 1000.0).round() as u64)
        }
    };
    let labels = b.labels.unwrap_or_default();
    if labels.len() > MAX_LABELS {
        return Err(invalid(format!("at most {MAX_LABELS} labels"), "labels"));
    }
    for (k, v) in &labels {
        if k.is_empty()
            || k.len() > 64
            || !k
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        {
            return Err(invalid(
                format!(
                    "label names are 1 to 64 of a-z, A-Z, 0-9, `_`, `-` and `.`; got {:?}",
                    tollgate_types::text::clip(k, tollgate_types::text::ECHO_CHARS)
                ),
                &format!("labels.{k}"),
            ));
        }
        if v.chars().count() > 256 || v.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(invalid(
                "a label's value is at most 256 characters, none of them a control or invisible character",
                &format!("labels.{k}"),
            ));
        }
    }
    if b.outcome.is_none()
        && rating.is_none()
        && b.accepted.is_none()
        && value.is_none()
        && minutes.is_none()
    {
        return Err(invalid(
            "the feedback reports nothing: give at least one of `outcome`, `rating`, `accepted`, `value_usd` and `minutes_saved`",
            "outcome",
        ));
    }
    let at = match &b.at {
        None => now,
        Some(t) => {
            let at = tollgate_types::time::parse_rfc3339(t).ok_or_else(|| {
                invalid(
                    format!(
                        "`at` must be an RFC 3339 time such as 2026-11-30T12:00:00Z, got {t:?}"
                    ),
                    "at",
                )
            })?;
            if at > now + MAX_AHEAD_MS || at < now - MAX_BACKDATE_DAYS * 86_400_000 {
                return Err(invalid(
                    format!(
                        "`at` must be within the last {MAX_BACKDATE_DAYS} days and not in the future"
                    ),
                    "at",
                ));
            }
            at
        }
    };
    Ok((
        OutcomeEvent {
            id: tollgate_store::new_id("fbk"),
            event_id,
            at,
            request_id: b.request_id,
            outcome: b.outcome,
            rating,
            accepted: b.accepted,
            edited: b.edited,
            value_nano_usd: value,
            minutes_saved_milli: minutes,
            labels,
            ..OutcomeEvent::default()
        },
        session,
    ))
}

/// `POST /v1/feedback`.
pub async fn post(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    let ctx = RequestContext::new(
        headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        gw.clock.now_ms(),
    );
    match accept(&gw, &headers, body).await {
        Ok(e) => {
            gw.metrics
                .feedback(e.outcome.map_or("none", Outcome::as_str));
            gw.metrics.request(
                "feedback",
                "",
                StatusCode::ACCEPTED.as_u16(),
                false,
                ctx.received.elapsed(),
                None,
            );
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({
                    "object": "feedback",
                    "id": e.id,
                    "event_id": e.event_id,
                    "status": "accepted",
                })),
            )
                .into_response()
        }
        Err(e) => gw.answer_error("feedback", &ctx, e),
    }
}

async fn accept(gw: &Gateway, headers: &HeaderMap, body: Body) -> Result<OutcomeEvent, ApiError> {
    let caller = gw.keyring.authenticate(headers)?;
    if caller.evaluation {
        // Outcomes are about production answers: an evaluation run's key reports none (its
        // requests are scored by the run).
        return Err(ApiError::Forbidden {
            message: "an evaluation key cannot post feedback: outcomes are reported on production answers, with the use case's own key".into(),
            code: "evaluation_key",
        });
    }
    let limit = MAX_FEEDBACK_BYTES.min(gw.config.server.max_body_bytes);
    let bytes = read_body(headers, body, limit).await?;
    // An object, not an array of positional fields (which serde would also take).
    tollgate_http::extract::require_object(&bytes)?;
    // A key given twice (a label, say) would keep only the last: refused, not guessed.
    tollgate_http::extract::refuse_duplicate_keys(&bytes)?;
    let (mut event, session) = event_of(parse_json(&bytes)?, gw.clock.now_ms())?;
    let uc = caller.use_case_id.as_str();
    let recent = &gw.books.recent;
    // When the request (a session's first request) was made, and a request's session: from the
    // requests admitted lately, and from the ledger when they do not have it or have only a
    // later one than the event's time (the same id may have come before).
    let lately = match (&event.request_id, &session) {
        (Some(r), _) => recent.request_at(uc, r),
        (None, Some(s)) => {
            let h = gw.books.session_pseudonym(s);
            let at = recent.session_at(uc, &h);
            event.session_hash = Some(h);
            at.map(|t| (t, None))
        }
        (None, None) => None,
    };
    let first = match lately {
        Some((t, s)) if t <= event.at => Some((t, s)),
        _ => {
            let stored = match (&event.request_id, &event.session_hash) {
                (Some(r), _) => gw.store.request_first_at(uc, r).await?,
                (None, Some(h)) => gw.store.session_first_at(uc, h).await?.map(|t| (t, None)),
                (None, None) => None,
            };
            match (lately, stored) {
                (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
                (a, b) => a.or(b),
            }
        }
    };
    let what = match &event.request_id {
        Some(r) => format!("answered request {r:?} of this key's use case"),
        None => "that session of this key's use case".into(),
    };
    let Some((first, request_session)) = first else {
        return Err(ApiError::Missing(what));
    };
    // A request's event carries its session: once the session is reported on, the session
    // stands for its requests (`OutcomeQueries::insert_outcomes`).
    if event.request_id.is_some() {
        event.session_hash = request_session;
    }
    // An outcome happens after the answer it reports on: an `at` before it would put the event
    // in hours (or a closed month) before the request, even before the use case.
    if event.at < first {
        return Err(invalid(
            format!(
                "`at` must not be before the {} it reports on ({})",
                if event.request_id.is_some() {
                    "request"
                } else {
                    "session's first request"
                },
                tollgate_types::time::rfc3339(first)
            ),
            "at",
        ));
    }
    if let Some(e) = &event.event_id {
        event.id = idempotent_id(&caller.use_case_id, e);
    }
    event.use_case_id = caller.use_case_id.clone();
    event.pod_id = caller.pod_id.clone();
    event.key_id = caller.key_id.clone();
    gw.outcomes
        .submit(event.clone())
        .map_err(|_| ApiError::Unavailable("the feedback queue is full; try again in a moment"))?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the caller wrote is quoted back to 64 characters, however long it was.
    #[test]
    fn bad_values_are_quoted_short() {
        let long = "9".repeat(5000);
        for body in [
            serde_json::json!({"request_id": "req_1", "value_usd": long}),
            serde_json::json!({"request_id": "req_1", "minutes_saved": "x".repeat(5000)}),
            serde_json::json!({"request_id": "req_1", "labels": {"k".repeat(5000): "v"}}),
        ] {
            let b: FeedbackBody = serde_json::from_value(body).unwrap();
            let message = event_of(b, 0).unwrap_err().to_string();
            assert!(message.chars().count() < 200, "{message}");
            assert!(message.contains('…'), "{message}");
        }
    }

    #[test]
    fn recent_refs_keep_two_generations_apart_by_use_case_and_kind() {
        let r = RecentRefs::default();
        r.note("uc_a", "req-1", Some("s1"), 100);
        r.note("uc_a", "req-2", Some("s1"), 200);
        // Not named before it is answered, nor its session.
        assert_eq!(r.request_at("uc_a", "req-1"), None);
        assert_eq!(r.session_at("uc_a", "s1"), None);
        r.answered("uc_a", "req-1");
        r.answered("uc_a", "req-2");
        assert_eq!(
            r.request_at("uc_a", "req-1"),
            Some((100, Some("s1".into())))
        );
        // A session is as old as its first request remembered.
        assert_eq!(r.session_at("uc_a", "s1"), Some(100));
        // Another use case, or the other kind of reference: unknown.
        assert_eq!(r.request_at("uc_b", "req-1"), None);
        assert_eq!(r.session_at("uc_a", "req-1"), None);
        assert_eq!(r.request_at("uc_a", "s1"), None);
        // One generation later it is still known — and a request id seen again later keeps its
        // first time (and its answer); two generations later it is forgotten.
        for i in 0..RECENT_PER_GENERATION {
            r.note("uc_a", &format!("x{i}"), None, 300);
        }
        r.note("uc_a", "req-1", None, 400);
        assert_eq!(
            r.request_at("uc_a", "req-1"),
            Some((100, Some("s1".into())))
        );
        for i in 0..RECENT_PER_GENERATION {
            r.note("uc_a", &format!("y{i}"), None, 500);
        }
        assert_eq!(r.request_at("uc_a", "req-2"), None);
        assert_eq!(r.session_at("uc_a", "s1"), None);
        assert_eq!(
            r.request_at("uc_a", "req-1"),
            Some((100, Some("s1".into())))
        );
        let last = format!("y{}", RECENT_PER_GENERATION - 1);
        r.answered("uc_a", &last);
        assert_eq!(r.request_at("uc_a", &last), Some((500, None)));
        // A request that is never answered is never named; a second request with the same id
        // that is answered makes it known (an id the client chose may come twice).
        r.note("uc_a", "req-3", Some("s3"), 600);
        assert_eq!(r.request_at("uc_a", "req-3"), None);
        assert_eq!(r.session_at("uc_a", "s3"), None);
        r.note("uc_a", "req-3", Some("s3"), 700);
        r.answered("uc_a", "req-3");
        assert_eq!(
            r.request_at("uc_a", "req-3"),
            Some((600, Some("s3".into())))
        );
        // Its session too, now that one of its requests was answered.
        assert_eq!(r.session_at("uc_a", "s3"), Some(600));
    }
}
