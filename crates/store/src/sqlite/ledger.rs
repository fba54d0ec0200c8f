//! The ledger tables: batched multi-row inserts of request records and the hourly rollups they
//! feed, in one transaction.

use super::{R, SqliteStore};
use crate::model::{RequestRecord, Totals};
use crate::queries::LedgerQueries;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use std::collections::HashMap;

const COLUMNS: &str = "id, request_id, at, key_id, use_case_id, pod_id, end_user, endpoint, route, provider, model, stream, attempts, status, outcome, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nano_usd, price_source, usage_source, latency_ms, ttft_ms";
const PER_ROW: usize = 25;
/// Rows per INSERT statement, largest first (25 binds each, well under SQLite's limit of 32,766).
/// A batch is cut into these sizes so only five distinct statements exist, and each stays in the
/// connection's prepared-statement cache instead of being prepared again for every odd batch size.
const CHUNK_SIZES: [usize; 5] = [256, 64, 16, 4, 1];

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Whether a record counts as an error in rollups.
pub(crate) fn is_error(r: &RequestRecord) -> bool {
    r.outcome != "ok" && r.outcome != "client_disconnected"
}

async fn insert_chunk(c: &mut SqliteConnection, rows: &[RequestRecord]) -> R<()> {
    let placeholders = format!("({})", vec!["?"; PER_ROW].join(", "));
    let sql = format!(
        "INSERT INTO request_records ({COLUMNS}) VALUES {}",
        vec![placeholders.as_str(); rows.len()].join(", ")
    );
    // Built only from the constant fragments above; every value is bound.
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for r in rows {
        q = q
            .bind(r.id.clone())
            .bind(r.request_id.clone())
            .bind(r.at)
            .bind(r.key_id.clone())
            .bind(r.use_case_id.clone())
            .bind(r.pod_id.clone())
            .bind(r.end_user.clone())
            .bind(r.endpoint.clone())
            .bind(r.route.clone())
            .bind(r.provider.clone())
            .bind(r.model.clone())
            .bind(r.stream)
            .bind(i64::from(r.attempts))
            .bind(i64::from(r.status))
            .bind(r.outcome.clone())
            .bind(i(r.input_tokens))
            .bind(i(r.cached_input_tokens))
            .bind(i(r.cache_write_tokens))
            .bind(i(r.output_tokens))
            .bind(i(r.reasoning_tokens))
            .bind(r.cost_nano_usd.map(i))
            .bind(r.price_source.clone())
            .bind(r.usage_source.clone())
            .bind(i(r.latency_ms))
            .bind(r.ttft_ms.map(i));
    }
    q.execute(&mut *c).await?;
    Ok(())
}

type RollupKey = (i64, String, String, String, String, String);

fn add(t: &mut Totals, r: &RequestRecord) {
    t.requests += 1;
    t.errors += u64::from(is_error(r));
    t.unpriced += u64::from(r.price_source == "unpriced");
    t.input_tokens += r.input_tokens;
    t.cached_input_tokens += r.cached_input_tokens;
    t.cache_write_tokens += r.cache_write_tokens;
    t.output_tokens += r.output_tokens;
    t.reasoning_tokens += r.reasoning_tokens;
    t.cost_nano_usd += r.cost_nano_usd.unwrap_or(0);
}

async fn fold_rollups(c: &mut SqliteConnection, rows: &[RequestRecord]) -> R<()> {
    let mut groups: HashMap<RollupKey, Totals> = HashMap::new();
    for r in rows {
        let key = (
            r.at.div_euclid(3_600_000),
            r.pod_id.clone(),
            r.use_case_id.clone(),
            r.key_id.clone(),
            r.route.clone(),
            r.model.clone().unwrap_or_default(),
        );
        add(groups.entry(key).or_default(), r);
    }
    for ((hour, pod, uc, key, route, model), t) in groups {
        sqlx::query(
            "INSERT INTO rollups_hourly (hour, pod_id, use_case_id, key_id, route, model, requests, errors, unpriced,
                 input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nano_usd)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (hour, pod_id, use_case_id, key_id, route, model) DO UPDATE SET
                 requests = requests + excluded.requests, errors = errors + excluded.errors,
                 unpriced = unpriced + excluded.unpriced, input_tokens = input_tokens + excluded.input_tokens,
                 cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
                 cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
                 output_tokens = output_tokens + excluded.output_tokens,
                 reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
                 cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd",
        )
        .bind(hour)
        .bind(pod)
        .bind(uc)
        .bind(key)
        .bind(route)
        .bind(model)
        .bind(i(t.requests))
        .bind(i(t.errors))
        .bind(i(t.unpriced))
        .bind(i(t.input_tokens))
        .bind(i(t.cached_input_tokens))
        .bind(i(t.cache_write_tokens))
        .bind(i(t.output_tokens))
        .bind(i(t.reasoning_tokens))
        .bind(i(t.cost_nano_usd))
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

fn totals(r: &sqlx::sqlite::SqliteRow) -> R<Totals> {
    let g = |c: &str| -> R<u64> { Ok(u(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0))) };
    Ok(Totals {
        requests: g("requests")?,
        errors: g("errors")?,
        unpriced: g("unpriced")?,
        input_tokens: g("input_tokens")?,
        cached_input_tokens: g("cached_input_tokens")?,
        cache_write_tokens: g("cache_write_tokens")?,
        output_tokens: g("output_tokens")?,
        reasoning_tokens: g("reasoning_tokens")?,
        cost_nano_usd: g("cost_nano_usd")?,
    })
}

fn record(r: &sqlx::sqlite::SqliteRow) -> R<RequestRecord> {
    Ok(RequestRecord {
        id: r.try_get("id")?,
        request_id: r.try_get("request_id")?,
        at: r.try_get("at")?,
        key_id: r.try_get("key_id")?,
        use_case_id: r.try_get("use_case_id")?,
        pod_id: r.try_get("pod_id")?,
        end_user: r.try_get("end_user")?,
        endpoint: r.try_get("endpoint")?,
        route: r.try_get("route")?,
        provider: r.try_get("provider")?,
        model: r.try_get("model")?,
        stream: r.try_get("stream")?,
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
        status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
        outcome: r.try_get("outcome")?,
        input_tokens: u(r.try_get("input_tokens")?),
        cached_input_tokens: u(r.try_get("cached_input_tokens")?),
        cache_write_tokens: u(r.try_get("cache_write_tokens")?),
        output_tokens: u(r.try_get("output_tokens")?),
        reasoning_tokens: u(r.try_get("reasoning_tokens")?),
        cost_nano_usd: r.try_get::<Option<i64>, _>("cost_nano_usd")?.map(u),
        price_source: r.try_get("price_source")?,
        usage_source: r.try_get("usage_source")?,
        latency_ms: u(r.try_get("latency_ms")?),
        ttft_ms: r.try_get::<Option<i64>, _>("ttft_ms")?.map(u),
    })
}

impl LedgerQueries for SqliteStore {
    async fn insert_records(&self, records: &[RequestRecord]) -> R<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(async |c: &mut SqliteConnection| {
            let mut rest = records;
            for size in CHUNK_SIZES {
                while rest.len() >= size {
                    let (chunk, tail) = rest.split_at(size);
                    insert_chunk(c, chunk).await?;
                    rest = tail;
                }
            }
            fold_rollups(c, records).await
        })
        .await
    }

    async fn count_records(&self, from: i64, to: i64) -> R<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM request_records WHERE at >= ? AND at < ?")
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(u(n))
    }

    async fn record_totals(&self, from: i64, to: i64) -> R<Totals> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS requests,
                    SUM(CASE WHEN outcome NOT IN ('ok', 'client_disconnected') THEN 1 ELSE 0 END) AS errors,
                    SUM(CASE WHEN price_source = 'unpriced' THEN 1 ELSE 0 END) AS unpriced,
                    SUM(input_tokens) AS input_tokens, SUM(cached_input_tokens) AS cached_input_tokens,
                    SUM(cache_write_tokens) AS cache_write_tokens, SUM(output_tokens) AS output_tokens,
                    SUM(reasoning_tokens) AS reasoning_tokens, SUM(COALESCE(cost_nano_usd, 0)) AS cost_nano_usd
             FROM request_records WHERE at >= ? AND at < ?",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        totals(&row)
    }

    async fn rollup_totals(&self, from_hour: i64, to_hour: i64) -> R<Totals> {
        let row = sqlx::query(
            "SELECT SUM(requests) AS requests, SUM(errors) AS errors, SUM(unpriced) AS unpriced,
                    SUM(input_tokens) AS input_tokens, SUM(cached_input_tokens) AS cached_input_tokens,
                    SUM(cache_write_tokens) AS cache_write_tokens, SUM(output_tokens) AS output_tokens,
                    SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost_nano_usd) AS cost_nano_usd
             FROM rollups_hourly WHERE hour >= ? AND hour < ?",
        )
        .bind(from_hour)
        .bind(to_hour)
        .fetch_one(&self.pool)
        .await?;
        totals(&row)
    }

    async fn spend_by(
        &self,
        by: &str,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> R<Vec<(String, Totals)>> {
        // The group expression comes from this fixed list, never from the caller.
        let group = match by {
            "pod" => "pod_id",
            "use_case" => "use_case_id",
            "key" => "key_id",
            "route" => "route",
            "model" => "model",
            "day" => "CAST(hour / 24 AS TEXT)",
            other => {
                return Err(crate::StoreError::Invalid(format!(
                    "unknown grouping {other:?}"
                )));
            }
        };
        let sql = format!(
            "SELECT {group} AS grp, SUM(requests) AS requests, SUM(errors) AS errors, SUM(unpriced) AS unpriced,
                    SUM(input_tokens) AS input_tokens, SUM(cached_input_tokens) AS cached_input_tokens,
                    SUM(cache_write_tokens) AS cache_write_tokens, SUM(output_tokens) AS output_tokens,
                    SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost_nano_usd) AS cost_nano_usd
             FROM rollups_hourly
             WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR pod_id IN (SELECT value FROM json_each(?3)))
             GROUP BY grp ORDER BY cost_nano_usd DESC, grp"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(from_hour)
            .bind(to_hour)
            .bind(pod_ids.map(|ids| serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("grp")?, totals(r)?)))
            .collect()
    }

    async fn keys_last_used(&self) -> R<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT key_id, MAX(hour) AS last FROM rollups_hourly GROUP BY key_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("key_id")?,
                    r.try_get::<i64, _>("last")?,
                ))
            })
            .collect()
    }

    async fn list_records(&self, from: i64, to: i64, limit: u32) -> R<Vec<RequestRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM request_records WHERE at >= ? AND at < ? ORDER BY at, id LIMIT ?",
        )
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }
}
