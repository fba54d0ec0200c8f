//! Budgets and the spend they are compared with.

use super::{R, SqliteStore, audit};
use crate::StoreError;
use crate::model::Budget;
use crate::queries::BudgetQueries;
use sqlx::{Row, SqliteConnection};

fn budget(r: &sqlx::sqlite::SqliteRow) -> R<Budget> {
    Ok(Budget {
        id: r.try_get("id")?,
        scope: r.try_get("scope")?,
        scope_id: r.try_get("scope_id")?,
        period: r.try_get("period")?,
        time_zone: r.try_get("time_zone")?,
        amount_nano_usd: u64::try_from(r.try_get::<i64, _>("amount_nano_usd")?).unwrap_or(0),
        mode: r.try_get("mode")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// What an audit event says of a budget.
fn details(b: &Budget) -> serde_json::Value {
    serde_json::json!({"scope": b.scope, "scope_id": b.scope_id, "period": b.period, "time_zone": b.time_zone, "amount_nano_usd": b.amount_nano_usd, "mode": b.mode})
}

/// The column a scope filters on (a fixed set: never user text in SQL).
fn column(scope: &str) -> R<&'static str> {
    match scope {
        "key" => Ok("key_id"),
        "use_case" | "use_case_eval" => Ok("use_case_id"),
        "pod" => Ok("pod_id"),
        "org" => Ok("''"),
        other => Err(StoreError::Invalid(format!(
            "unknown budget scope {other:?}"
        ))),
    }
}

impl BudgetQueries for SqliteStore {
    async fn create_budget(&self, actor: &str, b: &Budget) -> R<Budget> {
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO budgets (id, scope, scope_id, period, time_zone, amount_nano_usd, mode, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&b.id)
            .bind(&b.scope)
            .bind(&b.scope_id)
            .bind(&b.period)
            .bind(&b.time_zone)
            .bind(i64::try_from(b.amount_nano_usd).map_err(|_| {
                StoreError::Invalid(format!(
                    "a budget amount of {} nano-USD is larger than the store can hold",
                    b.amount_nano_usd
                ))
            })?)
            .bind(&b.mode)
            .bind(b.created_at)
            .bind(&b.created_by)
            .execute(&mut *c)
            .await?;
            audit(c, actor, "budget.create", "budget", &b.id, details(b)).await
        })
        .await?;
        Ok(b.clone())
    }

    async fn list_budgets(&self) -> R<Vec<Budget>> {
        let rows = sqlx::query("SELECT * FROM budgets ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(budget).collect()
    }

    async fn get_budget(&self, id: &str) -> R<Budget> {
        sqlx::query("SELECT * FROM budgets WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| budget(&r))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("budget {id}")))
    }

    async fn delete_budget(&self, actor: &str, id: &str) -> R<()> {
        let n = self
            .write(async |c: &mut SqliteConnection| {
                // The audit event says what was deleted, as the create event said what was made.
                let Some(row) = sqlx::query("SELECT * FROM budgets WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?
                else {
                    return Ok(0);
                };
                let old = budget(&row)?;
                let n = sqlx::query("DELETE FROM budgets WHERE id = ?")
                    .bind(id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                audit(c, actor, "budget.delete", "budget", id, details(&old)).await?;
                Ok(n)
            })
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("budget {id}")));
        }
        Ok(())
    }

    async fn spend_since(&self, scope: &str, scope_id: &str, from: i64) -> R<u64> {
        let col = column(scope)?;
        let first_full_hour =
            from.div_euclid(3_600_000) + i64::from(from.rem_euclid(3_600_000) != 0);
        let hour_start_ms = first_full_hour * 3_600_000;
        let filter = if col == "''" {
            "1 = 1 OR ?2 = ''".to_string()
        } else {
            format!("{col} = ?2")
        };
        // A use case's production budgets count what its production keys spent; its eval budget
        // what the evaluation keys the server minted for its runs spent.
        let filter = match scope {
            "use_case" => format!(
                "{filter} AND key_id NOT IN (SELECT id FROM api_keys WHERE purpose = 'evaluation')"
            ),
            "use_case_eval" => format!(
                "{filter} AND key_id IN (SELECT id FROM api_keys WHERE purpose = 'evaluation')"
            ),
            _ => filter,
        };
        // `col` comes from the fixed list above; the scope id and times are bound.
        // Summed as whole USD and the nano-USD beyond them, so no sum can overflow (SQLite's
        // SUM fails on overflow, and a budget whose spend cannot be read must not open up);
        // the total saturates.
        let split = "COALESCE(SUM(cost_nano_usd / 1000000000), 0), COALESCE(SUM(cost_nano_usd % 1000000000), 0)";
        let rollups = format!("SELECT {split} FROM rollups_hourly WHERE hour >= ?1 AND ({filter})");
        let records = format!(
            "SELECT {split} FROM request_records WHERE at >= ?1 AND at < ?3 AND ({filter})"
        );
        let a = sqlx::query(sqlx::AssertSqlSafe(rollups))
            .bind(first_full_hour)
            .bind(scope_id)
            .fetch_one(&self.pool)
            .await?;
        let b = sqlx::query(sqlx::AssertSqlSafe(records))
            .bind(from)
            .bind(scope_id)
            .bind(hour_start_ms)
            .fetch_one(&self.pool)
            .await?;
        let total = |r: &sqlx::sqlite::SqliteRow| -> R<i128> {
            let units: i64 = r.try_get(0)?;
            let nanos: i64 = r.try_get(1)?;
            Ok(i128::from(units) * 1_000_000_000 + i128::from(nanos))
        };
        let sum = (total(&a)? + total(&b)?).max(0);
        Ok(u64::try_from(sum).unwrap_or(u64::MAX))
    }
}
