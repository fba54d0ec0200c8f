//! Outcome and feedback events: stored once per client event id, summed into hourly rollups in
//! the same transaction.

use super::{R, SqliteStore};
use crate::model::{
    MAX_EVENTS_PER_REQUEST, MAX_EVENTS_PER_SESSION, Outcome, OutcomeEvent, OutcomeRollup,
    OutcomeState,
};
use crate::queries::OutcomeQueries;
use sqlx::{Row, SqliteConnection};
use std::collections::BTreeMap;

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Unix hours of a Unix-ms time.
fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(3_600_000)
}

async fn insert_one(c: &mut SqliteConnection, e: &OutcomeEvent) -> R<bool> {
    let labels = serde_json::to_string(&e.labels).unwrap_or_else(|_| "{}".into());
    let done = sqlx::query(
        "INSERT INTO outcome_events (id, event_id, at, use_case_id, pod_id, key_id, request_id,
             session_hash, outcome, rating, accepted, edited, value_nano_usd, minutes_saved_milli, labels)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING",
    )
    .bind(&e.id)
    .bind(&e.event_id)
    .bind(e.at)
    .bind(&e.use_case_id)
    .bind(&e.pod_id)
    .bind(&e.key_id)
    .bind(&e.request_id)
    .bind(&e.session_hash)
    .bind(e.outcome.map(Outcome::as_str))
    .bind(e.rating.map(i64::from))
    .bind(e.accepted)
    .bind(e.edited)
    .bind(e.value_nano_usd.map(i))
    .bind(e.minutes_saved_milli.map(i))
    .bind(labels)
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the request or session `e` names has had its most events already.
async fn over_limit(c: &mut SqliteConnection, e: &OutcomeEvent) -> R<bool> {
    let (sql, value, max) = match (&e.request_id, &e.session_hash) {
        (Some(r), _) => (
            "SELECT COUNT(*) FROM outcome_events WHERE use_case_id = ? AND request_id = ?",
            r,
            MAX_EVENTS_PER_REQUEST,
        ),
        (None, Some(s)) => (
            // The session's own events (its requests' events carry it too).
            "SELECT COUNT(*) FROM outcome_events
             WHERE use_case_id = ? AND session_hash = ? AND request_id IS NULL",
            s,
            MAX_EVENTS_PER_SESSION,
        ),
        (None, None) => return Ok(false),
    };
    let n: i64 = sqlx::query(sql)
        .bind(&e.use_case_id)
        .bind(value)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
    Ok(u(n) >= max)
}

/// The rollup columns, in the order of [`columns`].
const COLS: [&str; 16] = [
    "events",
    "subjects",
    "success",
    "failure",
    "escalated",
    "abandoned",
    "rated",
    "positive",
    "rating_sum",
    "with_acceptance",
    "accepted_unedited",
    "accepted_edited",
    "success_unvalued",
    "success_untimed",
    "value_nano_usd",
    "minutes_saved_milli",
];

fn columns(r: &OutcomeRollup) -> [i64; COLS.len()] {
    [
        r.events,
        r.subjects,
        r.success,
        r.failure,
        r.escalated,
        r.abandoned,
        r.rated,
        r.positive,
        r.rating_sum,
        r.with_acceptance,
        r.accepted_unedited,
        r.accepted_edited,
        r.success_unvalued,
        r.success_untimed,
        r.value_nano_usd,
        r.minutes_saved_milli,
    ]
    .map(i)
}

/// The upsert adding a (signed) change to one (hour, use case) row, built once.
static ROLLUP_UPSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO rollups_outcomes_hourly (hour, pod_id, use_case_id, {}) VALUES (?, ?, ?, {})
         ON CONFLICT (hour, use_case_id) DO UPDATE SET {}",
        COLS.join(", "),
        vec!["?"; COLS.len()].join(", "),
        COLS.iter()
            .map(|c| format!("{c} = MIN({c} + excluded.{c}, 9223372036854775807)"))
            .collect::<Vec<_>>()
            .join(", ")
    )
});

/// What a batch changes in one (hour, use case) row: its pod and a signed change per column.
type Change = (String, [i64; COLS.len()]);

async fn add_rollup(c: &mut SqliteConnection, hour: i64, uc: &str, ch: &Change) -> R<()> {
    if ch.1.iter().all(|v| *v == 0) {
        return Ok(());
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(ROLLUP_UPSERT.as_str()))
        .bind(hour)
        .bind(&ch.0)
        .bind(uc);
    for v in ch.1 {
        q = q.bind(v);
    }
    q.execute(&mut *c).await?;
    Ok(())
}

/// The change to `e`'s use case's row of `hour`.
fn change<'a>(
    changes: &'a mut BTreeMap<(i64, String), Change>,
    hour: i64,
    e: &OutcomeEvent,
) -> &'a mut [i64; COLS.len()] {
    &mut changes
        .entry((hour, e.use_case_id.clone()))
        .or_insert_with(|| (e.pod_id.clone(), [0; COLS.len()]))
        .1
}

/// The subject an event is about: `r:` and its request id, or `s:` and its session pseudonym.
fn subject_of(e: &OutcomeEvent) -> Option<String> {
    match (&e.request_id, &e.session_hash) {
        (Some(r), _) => Some(format!("r:{r}")),
        (None, Some(s)) => Some(format!("s:{s}")),
        (None, None) => None,
    }
}

/// A subject as stored: the hour of its first event, its state, and (a request's) the pseudonym
/// of its session.
struct Stored {
    hour: i64,
    state: OutcomeState,
    session: Option<String>,
}

/// The state of a stored subject row.
fn state_of(row: &sqlx::sqlite::SqliteRow) -> R<OutcomeState> {
    let accepted: Option<bool> = row.try_get("accepted")?;
    let edited: Option<bool> = row.try_get("edited")?;
    Ok(OutcomeState {
        outcome: row
            .try_get::<Option<String>, _>("outcome")?
            .as_deref()
            .and_then(Outcome::parse),
        rating: row
            .try_get::<Option<i64>, _>("rating")?
            .and_then(|r| u8::try_from(r).ok()),
        accepted: accepted.map(|a| (a, edited.unwrap_or(false))),
        value_nano_usd: row.try_get::<Option<i64>, _>("value_nano_usd")?.map(u),
        minutes_saved_milli: row.try_get::<Option<i64>, _>("minutes_saved_milli")?.map(u),
    })
}

/// A subject, if it has had an event.
async fn load_subject(c: &mut SqliteConnection, uc: &str, subject: &str) -> R<Option<Stored>> {
    let Some(row) = sqlx::query(
        "SELECT hour, outcome, rating, accepted, edited, value_nano_usd, minutes_saved_milli, session
         FROM outcome_subjects WHERE use_case_id = ? AND subject = ?",
    )
    .bind(uc)
    .bind(subject)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Stored {
        hour: row.try_get("hour")?,
        state: state_of(&row)?,
        session: row.try_get("session")?,
    }))
}

/// What the session with this pseudonym reports in use case `uc`, if it has had an event.
async fn session_state(
    c: &mut SqliteConnection,
    uc: &str,
    session: Option<&str>,
) -> R<Option<OutcomeState>> {
    match session {
        Some(s) => Ok(load_subject(c, uc, &format!("s:{s}"))
            .await?
            .map(|b| b.state)),
        None => Ok(None),
    }
}

/// What a request in `state` counts for while its session reports `session` (if it has been
/// reported on): a session speaks for its requests, so what the session reports is left out of
/// the request's — one answer is never counted both on its own and as part of its session.
/// What the conversation achieved (its outcome, value and minutes saved) is one report: a session
/// that gives any of it speaks for all of it (else a request's success left without its value
/// would be valued again by the value model beside the session's value); ratings and acceptance
/// each on their own. A request left with nothing counts for nothing, not even as a subject.
fn request_counts(state: OutcomeState, session: Option<&OutcomeState>) -> [i64; COLS.len()] {
    let own = state.without(session);
    if own == OutcomeState::default() {
        [0; COLS.len()]
    } else {
        columns(&own.counts())
    }
}

/// Which parts a state reports: what was achieved (outcome, value, minutes), a rating, an
/// acceptance.
fn reported(s: Option<&OutcomeState>) -> [bool; 3] {
    s.map_or([false; 3], |s| {
        [
            s.reports_achievement(),
            s.rating.is_some(),
            s.accepted.is_some(),
        ]
    })
}

/// The requests of session `session` reported on so far, each as its first hour and state:
/// what they counted for until the session's own first event.
async fn requests_of(
    c: &mut SqliteConnection,
    uc: &str,
    session: &str,
) -> R<Vec<(i64, OutcomeState)>> {
    let rows = sqlx::query(
        "SELECT hour, outcome, rating, accepted, edited, value_nano_usd, minutes_saved_milli
         FROM outcome_subjects WHERE use_case_id = ? AND session = ?",
    )
    .bind(uc)
    .bind(session)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("hour")?, state_of(r)?)))
        .collect()
}

async fn save_subject(
    c: &mut SqliteConnection,
    e: &OutcomeEvent,
    subject: &str,
    hour: i64,
    s: &OutcomeState,
    session: Option<&str>,
) -> R<()> {
    sqlx::query(
        "INSERT INTO outcome_subjects (use_case_id, subject, pod_id, hour, outcome, rating, accepted,
             edited, value_nano_usd, minutes_saved_milli, session)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (use_case_id, subject) DO UPDATE SET outcome = excluded.outcome,
             rating = excluded.rating, accepted = excluded.accepted, edited = excluded.edited,
             value_nano_usd = excluded.value_nano_usd, minutes_saved_milli = excluded.minutes_saved_milli,
             session = excluded.session",
    )
    .bind(&e.use_case_id)
    .bind(subject)
    .bind(&e.pod_id)
    .bind(hour)
    .bind(s.outcome.map(Outcome::as_str))
    .bind(s.rating.map(i64::from))
    .bind(s.accepted.map(|a| a.0))
    .bind(s.accepted.map(|a| a.1))
    .bind(s.value_nano_usd.map(i))
    .bind(s.minutes_saved_milli.map(i))
    .bind(session)
    .execute(&mut *c)
    .await?;
    Ok(())
}

impl OutcomeQueries for SqliteStore {
    async fn insert_outcomes(&self, events: &[OutcomeEvent]) -> R<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        self.write(async |c: &mut SqliteConnection| {
            let mut changes: BTreeMap<(i64, String), Change> = BTreeMap::new();
            let mut stored = 0;
            for e in events {
                let Some(subject) = subject_of(e) else {
                    continue;
                };
                if over_limit(c, e).await? || !insert_one(c, e).await? {
                    continue;
                }
                stored += 1;
                change(&mut changes, hour_of(e.at), e)[0] += 1;
                // The subject is counted in its first event's hour, as its latest state says:
                // what it counted for before is taken back there. A session speaks for its
                // requests ([`request_counts`]).
                let uc = e.use_case_id.as_str();
                let before = load_subject(c, uc, &subject).await?;
                let hour = before.as_ref().map_or(hour_of(e.at), |b| b.hour);
                let was = before.as_ref().map(|b| b.state);
                let state = was.unwrap_or_default().merged(e);
                let (was, now) = match &e.request_id {
                    Some(_) => {
                        // Its session as first stored (or as this event names it).
                        let before_session = before.as_ref().and_then(|b| b.session.clone());
                        let session = before_session.clone().or_else(|| e.session_hash.clone());
                        let by = session_state(c, uc, session.as_deref()).await?;
                        let by_before = by.filter(|_| before_session.is_some());
                        save_subject(c, e, &subject, hour, &state, session.as_deref()).await?;
                        (
                            was.map(|w| request_counts(w, by_before.as_ref())),
                            request_counts(state, by.as_ref()),
                        )
                    }
                    None => {
                        save_subject(c, e, &subject, hour, &state, None).await?;
                        if let Some(s) = &e.session_hash
                            && reported(was.as_ref()) != reported(Some(&state))
                        {
                            // The session reports a field it did not: its requests no longer
                            // count for that field.
                            for (h, r) in requests_of(c, uc, s).await? {
                                let old = request_counts(r, was.as_ref());
                                let new = request_counts(r, Some(&state));
                                let row = change(&mut changes, h, e);
                                for k in 0..COLS.len() {
                                    row[k] += new[k] - old[k];
                                }
                            }
                        }
                        (was.map(|w| columns(&w.counts())), columns(&state.counts()))
                    }
                };
                let row = change(&mut changes, hour, e);
                for k in 0..COLS.len() {
                    row[k] += now[k] - was.map_or(0, |w| w[k]);
                }
            }
            for ((hour, uc), ch) in &changes {
                add_rollup(c, *hour, uc, ch).await?;
            }
            Ok(stored)
        })
        .await
    }

    async fn request_first_at(
        &self,
        use_case_id: &str,
        request_id: &str,
    ) -> R<Option<(i64, Option<String>)>> {
        // Both read through the indexes on (use_case_id, request_id) and (use_case_id,
        // session_hash). Only production requests that were answered: an evaluation run's, or
        // one refused or failed, has no outcome to report.
        let row = sqlx::query(
            "SELECT at, session_hash FROM request_records
             WHERE use_case_id = ? AND request_id = ? AND purpose = 'production'
                 AND status BETWEEN 200 AND 299
             ORDER BY at LIMIT 1",
        )
        .bind(use_case_id)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("at")?, r.try_get("session_hash")?)))
            .transpose()
    }

    async fn session_first_at(&self, use_case_id: &str, session_hash: &str) -> R<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(at) FROM request_records
             WHERE use_case_id = ? AND session_hash = ? AND purpose = 'production'
                 AND status BETWEEN 200 AND 299",
        )
        .bind(use_case_id)
        .bind(session_hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn outcome_rollups(&self, from_hour: i64, to_hour: i64) -> R<Vec<OutcomeRollup>> {
        let rows = sqlx::query(
            "SELECT * FROM rollups_outcomes_hourly WHERE hour >= ? AND hour < ?
             ORDER BY hour, use_case_id",
        )
        .bind(from_hour)
        .bind(to_hour)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| r.try_get::<i64, _>(c).map(u);
                Ok(OutcomeRollup {
                    hour: r.try_get("hour")?,
                    pod_id: r.try_get("pod_id")?,
                    use_case_id: r.try_get("use_case_id")?,
                    events: n("events")?,
                    subjects: n("subjects")?,
                    success: n("success")?,
                    failure: n("failure")?,
                    escalated: n("escalated")?,
                    abandoned: n("abandoned")?,
                    rated: n("rated")?,
                    positive: n("positive")?,
                    rating_sum: n("rating_sum")?,
                    with_acceptance: n("with_acceptance")?,
                    accepted_unedited: n("accepted_unedited")?,
                    accepted_edited: n("accepted_edited")?,
                    success_unvalued: n("success_unvalued")?,
                    success_untimed: n("success_untimed")?,
                    value_nano_usd: n("value_nano_usd")?,
                    minutes_saved_milli: n("minutes_saved_milli")?,
                })
            })
            .collect()
    }
}
