//! Outcome and feedback events: stored once per client event id, summed into hourly rollups in
//! the same transaction.

use super::{R, SqliteStore};
use crate::model::{
    MAX_EVENTS_PER_REQUEST, MAX_EVENTS_PER_SESSION, Outcome, OutcomeEvent, OutcomeRollup,
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
            "SELECT COUNT(*) FROM outcome_events WHERE use_case_id = ? AND session_hash = ?",
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

async fn add_rollup(c: &mut SqliteConnection, r: &OutcomeRollup) -> R<()> {
    sqlx::query(
        "INSERT INTO rollups_outcomes_hourly (hour, pod_id, use_case_id, events, success, failure,
             escalated, abandoned, rated, positive, rating_sum, with_acceptance, accepted_unedited,
             accepted_edited, success_unvalued, success_untimed, value_nano_usd, minutes_saved_milli)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (hour, use_case_id) DO UPDATE SET
             events = MIN(events + excluded.events, 9223372036854775807), success = MIN(success + excluded.success, 9223372036854775807),
             failure = MIN(failure + excluded.failure, 9223372036854775807), escalated = MIN(escalated + excluded.escalated, 9223372036854775807),
             abandoned = MIN(abandoned + excluded.abandoned, 9223372036854775807), rated = MIN(rated + excluded.rated, 9223372036854775807),
             positive = MIN(positive + excluded.positive, 9223372036854775807), rating_sum = MIN(rating_sum + excluded.rating_sum, 9223372036854775807),
             with_acceptance = MIN(with_acceptance + excluded.with_acceptance, 9223372036854775807),
             accepted_unedited = MIN(accepted_unedited + excluded.accepted_unedited, 9223372036854775807),
             accepted_edited = MIN(accepted_edited + excluded.accepted_edited, 9223372036854775807),
             success_unvalued = MIN(success_unvalued + excluded.success_unvalued, 9223372036854775807),
             success_untimed = MIN(success_untimed + excluded.success_untimed, 9223372036854775807),
             value_nano_usd = MIN(value_nano_usd + excluded.value_nano_usd, 9223372036854775807),
             minutes_saved_milli = MIN(minutes_saved_milli + excluded.minutes_saved_milli, 9223372036854775807)",
    )
    .bind(r.hour)
    .bind(&r.pod_id)
    .bind(&r.use_case_id)
    .bind(i(r.events))
    .bind(i(r.success))
    .bind(i(r.failure))
    .bind(i(r.escalated))
    .bind(i(r.abandoned))
    .bind(i(r.rated))
    .bind(i(r.positive))
    .bind(i(r.rating_sum))
    .bind(i(r.with_acceptance))
    .bind(i(r.accepted_unedited))
    .bind(i(r.accepted_edited))
    .bind(i(r.success_unvalued))
    .bind(i(r.success_untimed))
    .bind(i(r.value_nano_usd))
    .bind(i(r.minutes_saved_milli))
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
            let mut rollups: BTreeMap<(i64, String), OutcomeRollup> = BTreeMap::new();
            let mut stored = 0;
            for e in events {
                if over_limit(c, e).await? || !insert_one(c, e).await? {
                    continue;
                }
                stored += 1;
                let hour = hour_of(e.at);
                rollups
                    .entry((hour, e.use_case_id.clone()))
                    .or_insert_with(|| OutcomeRollup {
                        hour,
                        pod_id: e.pod_id.clone(),
                        use_case_id: e.use_case_id.clone(),
                        ..OutcomeRollup::default()
                    })
                    .add(e);
            }
            for r in rollups.values() {
                add_rollup(c, r).await?;
            }
            Ok(stored)
        })
        .await
    }

    async fn request_known(&self, use_case_id: &str, request_id: &str) -> R<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM request_records WHERE use_case_id = ? AND request_id = ? LIMIT 1",
        )
        .bind(use_case_id)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn session_known(&self, use_case_id: &str, session_hash: &str) -> R<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM request_records WHERE use_case_id = ? AND session_hash = ? LIMIT 1",
        )
        .bind(use_case_id)
        .bind(session_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
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
