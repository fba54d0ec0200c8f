//! Stage gates: the gate settings, promotion requests and approvals, gated stage changes.

use super::{R, SqliteStore, audit, move_stage, parse_stage};
use crate::StoreError;
use crate::model::{Approval, PromotionRequest, Stage, StageChange, UseCase};
use crate::queries::{GateQueries, UseCaseQueries};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

fn request(r: &SqliteRow) -> R<PromotionRequest> {
    Ok(PromotionRequest {
        id: r.try_get("id")?,
        use_case_id: r.try_get("use_case_id")?,
        from: parse_stage(&r.try_get::<String, _>("from_stage")?)?,
        to: parse_stage(&r.try_get::<String, _>("to_stage")?)?,
        requested_by: r.try_get("requested_by")?,
        reason: r.try_get("reason")?,
        at: r.try_get("at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

fn approval(r: &SqliteRow) -> R<Approval> {
    Ok(Approval {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        use_case_id: r.try_get("use_case_id")?,
        role: r.try_get("role")?,
        user_id: r.try_get("user_id")?,
        note: r.try_get("note")?,
        at: r.try_get("at")?,
    })
}

impl GateQueries for SqliteStore {
    async fn put_setting(
        &self,
        actor: &str,
        name: &str,
        value: &str,
        action: &str,
        details: serde_json::Value,
    ) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *c)
            .await?;
            audit(c, actor, action, "setting", name, details).await
        })
        .await
    }

    async fn create_promotion_request(&self, r: &PromotionRequest) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            // Read in the same transaction: a stage change between the caller's read and this
            // write must not leave a request open for a move that is no longer the next one.
            let now = stage_of(c, &r.use_case_id).await?;
            if now != r.from {
                return Err(StoreError::Invalid(format!(
                    "the use case moved to {} meanwhile",
                    now.as_str()
                )));
            }
            sqlx::query(
                "INSERT INTO promotion_requests (id, use_case_id, from_stage, to_stage, requested_by, reason, at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.use_case_id)
            .bind(r.from.as_str())
            .bind(r.to.as_str())
            .bind(&r.requested_by)
            .bind(&r.reason)
            .bind(r.at)
            .execute(&mut *c)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(
                    "a promotion of this use case has been requested already".into(),
                ),
                e => e,
            })?;
            audit(
                c,
                &r.requested_by,
                "use_case.promotion_request",
                "use_case",
                &r.use_case_id,
                serde_json::json!({"request_id": r.id, "from": r.from, "to": r.to, "reason": r.reason}),
            )
            .await
        })
        .await
    }

    async fn open_promotion_request(&self, use_case_id: &str) -> R<Option<PromotionRequest>> {
        let row = sqlx::query(
            "SELECT * FROM promotion_requests WHERE use_case_id = ? AND closed_at IS NULL",
        )
        .bind(use_case_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(request).transpose()
    }

    async fn add_approval(&self, a: &Approval) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            let from: Option<String> = sqlx::query(
                "SELECT from_stage FROM promotion_requests WHERE id = ? AND closed_at IS NULL",
            )
            .bind(&a.request_id)
            .fetch_optional(&mut *c)
            .await?
            .map(|r| r.try_get("from_stage"))
            .transpose()?;
            let Some(from) = from else {
                return Err(StoreError::Invalid(
                    "the promotion request is closed".into(),
                ));
            };
            if stage_of(c, &a.use_case_id).await?.as_str() != from {
                return Err(StoreError::Invalid(
                    "the promotion request is for another stage than the use case's now".into(),
                ));
            }
            let signed = sqlx::query(
                "SELECT user_id, role FROM approvals WHERE request_id = ? AND (user_id = ? OR role = ?)",
            )
            .bind(&a.request_id)
            .bind(&a.user_id)
            .bind(&a.role)
            .fetch_optional(&mut *c)
            .await?;
            if let Some(row) = signed {
                let (user, role): (String, String) = (row.try_get("user_id")?, row.try_get("role")?);
                return Err(StoreError::Conflict(if user == a.user_id {
                    format!("{user} has approved this request already (as {role}); one person signs once")
                } else {
                    format!("the {role} approval was given already, by {user}")
                }));
            }
            sqlx::query(
                "INSERT INTO approvals (id, request_id, use_case_id, role, user_id, note, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&a.id)
            .bind(&a.request_id)
            .bind(&a.use_case_id)
            .bind(&a.role)
            .bind(&a.user_id)
            .bind(&a.note)
            .bind(a.at)
            .execute(&mut *c)
            .await?;
            audit(
                c,
                &a.user_id,
                "use_case.approve",
                "use_case",
                &a.use_case_id,
                serde_json::json!({"request_id": a.request_id, "approval_id": a.id, "role": a.role, "note": a.note}),
            )
            .await
        })
        .await
    }

    async fn list_approvals(&self, request_id: &str) -> R<Vec<Approval>> {
        let rows = sqlx::query("SELECT * FROM approvals WHERE request_id = ? ORDER BY at, id")
            .bind(request_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(approval).collect()
    }

    #[allow(clippy::too_many_arguments)]
    async fn change_stage_gated(
        &self,
        actor: &str,
        id: &str,
        from: Stage,
        to: Stage,
        reason: &str,
        request_id: Option<&str>,
        checklist: serde_json::Value,
        overridden: Option<Vec<String>>,
    ) -> R<(UseCase, StageChange)> {
        let change = self
            .write(async |c: &mut SqliteConnection| {
                if let Some(rid) = request_id {
                    let open = sqlx::query(
                        "SELECT 1 FROM promotion_requests WHERE id = ? AND closed_at IS NULL",
                    )
                    .bind(rid)
                    .fetch_optional(&mut *c)
                    .await?;
                    if open.is_none() {
                        return Err(StoreError::Invalid(
                            "the promotion request the gate counted was closed meanwhile; look at the gate again".into(),
                        ));
                    }
                }
                move_stage(c, actor, id, Some(from), to, reason, checklist, overridden).await
            })
            .await?;
        Ok((self.get_use_case(id).await?, change))
    }

    async fn withdraw_promotion_request(&self, actor: &str, r: &PromotionRequest) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            let n = sqlx::query(
                "UPDATE promotion_requests SET closed_at = ? WHERE id = ? AND closed_at IS NULL",
            )
            .bind(crate::model::now_ms())
            .bind(&r.id)
            .execute(&mut *c)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "open promotion request {}",
                    r.id
                )));
            }
            audit(
                c,
                actor,
                "use_case.promotion_withdraw",
                "use_case",
                &r.use_case_id,
                serde_json::json!({"request_id": r.id, "to": r.to}),
            )
            .await
        })
        .await
    }
}

/// A use case's stage, read in the caller's transaction.
async fn stage_of(c: &mut SqliteConnection, id: &str) -> R<Stage> {
    let row = sqlx::query("SELECT stage FROM use_cases WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("use case {id}")))?;
    parse_stage(&row.try_get::<String, _>("stage")?)
}
