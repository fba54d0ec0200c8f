//! Scheduled evaluation runs.

use super::{R, SqliteStore, audit};
use crate::StoreError;
use crate::model::{EvalSchedule, Page, PageRequest};
use crate::queries::ScheduleQueries;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

fn schedule(r: &SqliteRow) -> R<EvalSchedule> {
    Ok(EvalSchedule {
        use_case_id: r.try_get("use_case_id")?,
        suite: r.try_get("suite")?,
        every_minutes: r.try_get("every_minutes")?,
        tolerance: r.try_get("tolerance")?,
        next_at: r.try_get("next_at")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

impl ScheduleQueries for SqliteStore {
    async fn put_schedule(&self, actor: &str, s: &EvalSchedule) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO eval_schedules (use_case_id, suite, every_minutes, tolerance, next_at, created_at, created_by)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (use_case_id, suite) DO UPDATE SET every_minutes = excluded.every_minutes,
                   tolerance = excluded.tolerance, next_at = excluded.next_at,
                   created_at = excluded.created_at, created_by = excluded.created_by",
            )
            .bind(&s.use_case_id)
            .bind(&s.suite)
            .bind(s.every_minutes)
            .bind(s.tolerance)
            .bind(s.next_at)
            .bind(s.created_at)
            .bind(&s.created_by)
            .execute(&mut *c)
            .await?;
            audit(
                c,
                actor,
                "eval.schedule",
                "use_case",
                &s.use_case_id,
                serde_json::json!({"suite": s.suite, "every_minutes": s.every_minutes, "tolerance": s.tolerance}),
            )
            .await
        })
        .await
    }

    async fn delete_schedule(&self, actor: &str, use_case_id: &str, suite: &str) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            let n = sqlx::query("DELETE FROM eval_schedules WHERE use_case_id = ? AND suite = ?")
                .bind(use_case_id)
                .bind(suite)
                .execute(&mut *c)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("schedule of suite {suite}")));
            }
            audit(
                c,
                actor,
                "eval.unschedule",
                "use_case",
                use_case_id,
                serde_json::json!({"suite": suite}),
            )
            .await
        })
        .await
    }

    async fn list_schedules(&self, use_case_id: &str, req: &PageRequest) -> R<Page<EvalSchedule>> {
        let size = req.size();
        let rows = sqlx::query(
            "SELECT * FROM eval_schedules WHERE use_case_id = ? AND suite > ? ORDER BY suite LIMIT ?",
        )
        .bind(use_case_id)
        .bind(req.after.clone().unwrap_or_default())
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(schedule).collect::<R<Vec<_>>>()?;
        Ok(super::page(items, size, |s| s.suite.clone()))
    }

    async fn get_schedule(&self, use_case_id: &str, suite: &str) -> R<Option<EvalSchedule>> {
        sqlx::query("SELECT * FROM eval_schedules WHERE use_case_id = ? AND suite = ?")
            .bind(use_case_id)
            .bind(suite)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(schedule)
            .transpose()
    }

    async fn take_due_schedules(&self, now: i64) -> R<Vec<EvalSchedule>> {
        self.write(async |c: &mut SqliteConnection| {
            let rows =
                sqlx::query("SELECT * FROM eval_schedules WHERE next_at <= ? ORDER BY next_at")
                    .bind(now)
                    .fetch_all(&mut *c)
                    .await?;
            let due: Vec<EvalSchedule> = rows.iter().map(schedule).collect::<R<_>>()?;
            for s in &due {
                // The next run is a cadence after now (runs missed while stopped are not made up).
                sqlx::query(
                    "UPDATE eval_schedules SET next_at = ? WHERE use_case_id = ? AND suite = ?",
                )
                .bind(now + s.every_minutes * 60_000)
                .bind(&s.use_case_id)
                .bind(&s.suite)
                .execute(&mut *c)
                .await?;
            }
            Ok(due)
        })
        .await
    }
}
