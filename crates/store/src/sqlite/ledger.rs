//! The ledger tables: batched multi-row inserts of request records and the hourly rollups they
//! feed, in one transaction.

use super::multirow::{self, CHUNK_SIZES};
use super::{R, SqliteStore};
use crate::model::{
    DuplicatePrompts, FocusCounts, FocusRollup, PricePointRow, RequestRecord, Totals,
};
use crate::queries::LedgerQueries;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use std::collections::{HashMap, HashSet};

const COLUMNS: &str = "id, request_id, at, key_id, use_case_id, pod_id, end_user, endpoint, route, provider, model, stream, attempts, status, outcome, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nano_usd, price_source, usage_source, latency_ms, ttft_ms, price_id, prompt_hash, cost_input, cost_cached_input, cost_cache_write, cost_output, cost_reasoning, policy, guard, end_user_hash, payload_ref, session_hash, purpose, pattern, first_choice_cost_nano_usd";
const PER_ROW: usize = 40;

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

/// The INSERT of `rows` request records (one row of placeholders each).
fn insert_sql(rows: usize) -> String {
    multirow::sql(
        &format!("INSERT INTO request_records ({COLUMNS})"),
        PER_ROW,
        rows,
        "",
    )
}

/// The INSERT of each of the chunk sizes, built once (the widest statements the ledger runs).
static CHUNK_SQL: std::sync::LazyLock<[String; CHUNK_SIZES.len()]> =
    std::sync::LazyLock::new(|| CHUNK_SIZES.map(insert_sql));

async fn insert_chunk(c: &mut SqliteConnection, rows: &[RequestRecord]) -> R<()> {
    // Built only from the constant fragments above; every value is bound.
    let mut q = match CHUNK_SIZES.iter().position(|&n| n == rows.len()) {
        Some(k) => sqlx::query(AssertSqlSafe(CHUNK_SQL[k].as_str())),
        None => sqlx::query(AssertSqlSafe(insert_sql(rows.len()))),
    };
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
            .bind(r.ttft_ms.map(i))
            .bind(r.price_id.clone())
            .bind(r.prompt_hash.clone());
        for c in r.cost_split {
            q = q.bind(i(c));
        }
        q = q
            .bind(r.policy.clone())
            .bind(r.guard.clone())
            .bind(r.end_user_hash.clone())
            .bind(r.payload_ref.clone())
            .bind(r.session_hash.clone())
            .bind(if r.evaluation {
                "evaluation"
            } else {
                "production"
            })
            .bind(r.pattern.clone())
            .bind(r.first_choice_cost_nano_usd.map(i));
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

/// Inserts `records` (cut into the cached statement sizes) and folds them into both rollups.
async fn insert_all(
    c: &mut SqliteConnection,
    records: &[RequestRecord],
    links: &[super::chain::Link],
) -> R<()> {
    for chunk in multirow::chunks(records) {
        insert_chunk(c, chunk).await?;
    }
    fold_rollups(c, records).await?;
    fold_focus(c, records).await?;
    super::kpis::fold(c, records).await?;
    super::payloads::insert(c, records).await?;
    super::chain::append(c, links).await
}

type FocusKey = (i64, String, String, String, String);

#[derive(Default)]
struct FocusSums {
    requests: u64,
    tokens: [u64; 5],
    cost: [u64; 5],
}

fn tokens_of(r: &RequestRecord) -> [u64; 5] {
    [
        r.input_tokens,
        r.cached_input_tokens,
        r.cache_write_tokens,
        r.output_tokens,
        r.reasoning_tokens,
    ]
}

async fn fold_focus(c: &mut SqliteConnection, rows: &[RequestRecord]) -> R<()> {
    let mut groups: HashMap<FocusKey, FocusSums> = HashMap::new();
    for r in rows {
        let key = (
            r.at.div_euclid(3_600_000),
            r.pod_id.clone(),
            r.use_case_id.clone(),
            r.route.clone(),
            r.price_id.clone().unwrap_or_default(),
        );
        let g = groups.entry(key).or_default();
        g.requests += 1;
        for (k, n) in tokens_of(r).into_iter().enumerate() {
            g.tokens[k] += n;
            g.cost[k] += r.cost_split[k];
        }
    }
    let groups: Vec<(FocusKey, FocusSums)> = groups.into_iter().collect();
    multirow::execute(
        c,
        (
            "INSERT INTO rollups_focus (hour, pod_id, use_case_id, route, price_id, requests,
                 input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
                 cost_input, cost_cached_input, cost_cache_write, cost_output, cost_reasoning)",
            16,
            "ON CONFLICT (hour, pod_id, use_case_id, route, price_id) DO UPDATE SET
                 requests = MIN(requests + excluded.requests, 9223372036854775807),
                 input_tokens = MIN(input_tokens + excluded.input_tokens, 9223372036854775807),
                 cached_input_tokens = MIN(cached_input_tokens + excluded.cached_input_tokens, 9223372036854775807),
                 cache_write_tokens = MIN(cache_write_tokens + excluded.cache_write_tokens, 9223372036854775807),
                 output_tokens = MIN(output_tokens + excluded.output_tokens, 9223372036854775807),
                 reasoning_tokens = MIN(reasoning_tokens + excluded.reasoning_tokens, 9223372036854775807),
                 cost_input = MIN(cost_input + excluded.cost_input, 9223372036854775807),
                 cost_cached_input = MIN(cost_cached_input + excluded.cost_cached_input, 9223372036854775807),
                 cost_cache_write = MIN(cost_cache_write + excluded.cost_cache_write, 9223372036854775807),
                 cost_output = MIN(cost_output + excluded.cost_output, 9223372036854775807),
                 cost_reasoning = MIN(cost_reasoning + excluded.cost_reasoning, 9223372036854775807)",
        ),
        &groups,
        |mut q, ((hour, pod, uc, route, price), g)| {
            q = q
                .bind(hour)
                .bind(pod)
                .bind(uc)
                .bind(route)
                .bind(price)
                .bind(i(g.requests));
            for v in g.tokens.iter().chain(&g.cost) {
                q = q.bind(i(*v));
            }
            q
        },
    )
    .await?;
    Ok(())
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
    let groups: Vec<(RollupKey, Totals)> = groups.into_iter().collect();
    multirow::execute(
        c,
        (
            "INSERT INTO rollups_hourly (hour, pod_id, use_case_id, key_id, route, model, requests, errors, unpriced,
                 input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost_nano_usd)",
            15,
            "ON CONFLICT (hour, pod_id, use_case_id, key_id, route, model) DO UPDATE SET
                 requests = MIN(requests + excluded.requests, 9223372036854775807), errors = MIN(errors + excluded.errors, 9223372036854775807),
                 unpriced = MIN(unpriced + excluded.unpriced, 9223372036854775807), input_tokens = MIN(input_tokens + excluded.input_tokens, 9223372036854775807),
                 cached_input_tokens = MIN(cached_input_tokens + excluded.cached_input_tokens, 9223372036854775807),
                 cache_write_tokens = MIN(cache_write_tokens + excluded.cache_write_tokens, 9223372036854775807),
                 output_tokens = MIN(output_tokens + excluded.output_tokens, 9223372036854775807),
                 reasoning_tokens = MIN(reasoning_tokens + excluded.reasoning_tokens, 9223372036854775807),
                 cost_nano_usd = MIN(cost_nano_usd + excluded.cost_nano_usd, 9223372036854775807)",
        ),
        &groups,
        |q, ((hour, pod, uc, key, route, model), t)| {
            q.bind(hour)
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
        },
    )
    .await?;
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

pub(super) fn record(r: &sqlx::sqlite::SqliteRow) -> R<RequestRecord> {
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
        first_choice_cost_nano_usd: r
            .try_get::<Option<i64>, _>("first_choice_cost_nano_usd")?
            .map(u),
        price_source: r.try_get("price_source")?,
        usage_source: r.try_get("usage_source")?,
        latency_ms: u(r.try_get("latency_ms")?),
        ttft_ms: r.try_get::<Option<i64>, _>("ttft_ms")?.map(u),
        price_id: r.try_get("price_id")?,
        prompt_hash: r.try_get("prompt_hash")?,
        policy: r.try_get("policy")?,
        guard: r.try_get("guard")?,
        end_user_hash: r.try_get("end_user_hash")?,
        payload_ref: r.try_get("payload_ref")?,
        session_hash: r.try_get("session_hash")?,
        evaluation: r.try_get::<String, _>("purpose")? == "evaluation",
        pattern: r.try_get("pattern")?,
        payload: None,
        cost_split: [
            u(r.try_get("cost_input")?),
            u(r.try_get("cost_cached_input")?),
            u(r.try_get("cost_cache_write")?),
            u(r.try_get("cost_output")?),
            u(r.try_get("cost_reasoning")?),
        ],
    })
}

impl LedgerQueries for SqliteStore {
    async fn insert_records(&self, records: &[RequestRecord]) -> R<()> {
        if records.is_empty() {
            return Ok(());
        }
        let links = super::chain::record_links(records).await;
        self.write_ledger(async |c: &mut SqliteConnection| insert_all(c, records, &links).await)
            .await
    }

    async fn insert_records_once(&self, records: &[RequestRecord]) -> R<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let ids = super::json(&ids);
        self.write_ledger(async |c: &mut SqliteConnection| {
            let known: HashSet<String> = sqlx::query(
                "SELECT id FROM request_records WHERE id IN (SELECT value FROM json_each(?1))",
            )
            .bind(ids.clone())
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?;
            // Skip stored ids, and repeats within the batch (a batch spilled twice).
            let mut seen = known;
            let fresh: Vec<RequestRecord> = records
                .iter()
                .filter(|r| seen.insert(r.id.clone()))
                .cloned()
                .collect();
            let links: Vec<_> = fresh.iter().map(super::chain::record_link).collect();
            insert_all(c, &fresh, &links).await?;
            Ok(fresh.len() as u64)
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
            .bind(super::id_filter(pod_ids))
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

    async fn save_price_points(&self, points: &[PricePointRow]) -> R<()> {
        if points.is_empty() {
            return Ok(());
        }
        self.write(async |c: &mut SqliteConnection| {
            for p in points {
                let mut q = sqlx::query(
                    "INSERT OR IGNORE INTO price_points (id, provider, provider_kind, publisher, model, source, currency,
                         contracted_input, contracted_cached_input, contracted_cache_write, contracted_output, contracted_reasoning,
                         list_input, list_cached_input, list_cache_write, list_output, list_reasoning, first_seen)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(p.id.clone())
                .bind(p.provider.clone())
                .bind(p.provider_kind.clone())
                .bind(p.publisher.clone())
                .bind(p.model.clone())
                .bind(p.source.clone())
                .bind(p.currency.clone());
                for prices in [p.contracted, p.list] {
                    for k in 0..5 {
                        q = q.bind(prices.map(|v| i(v[k])));
                    }
                }
                q.bind(crate::now_ms()).execute(&mut *c).await?;
            }
            Ok(())
        })
        .await
    }

    async fn focus_rollups(
        &self,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> R<Vec<FocusRollup>> {
        let rows = sqlx::query(
            "SELECT f.*, COALESCE(p.name, '') AS pod_name, COALESCE(u.name, '') AS use_case_name,
                    COALESCE(u.stage, '') AS stage, pp.id AS pp_id, pp.provider, pp.provider_kind,
                    pp.publisher, pp.model, pp.source, pp.currency,
                    pp.contracted_input, pp.contracted_cached_input, pp.contracted_cache_write,
                    pp.contracted_output, pp.contracted_reasoning, pp.list_input, pp.list_cached_input,
                    pp.list_cache_write, pp.list_output, pp.list_reasoning
             FROM rollups_focus f
             LEFT JOIN pods p ON p.id = f.pod_id
             LEFT JOIN use_cases u ON u.id = f.use_case_id
             LEFT JOIN price_points pp ON pp.id = f.price_id
             WHERE f.hour >= ?1 AND f.hour < ?2
               AND (?3 IS NULL OR f.pod_id IN (SELECT value FROM json_each(?3)))
             ORDER BY f.hour, f.pod_id, f.use_case_id, f.route, f.price_id",
        )
        .bind(from_hour)
        .bind(to_hour)
        .bind(super::id_filter(pod_ids))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(focus_row).collect()
    }

    async fn focus_summary(
        &self,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> R<FocusCounts> {
        let row = sqlx::query(
            "SELECT
               (SELECT COALESCE(SUM((input_tokens > 0 OR cost_input > 0)
                                  + (cached_input_tokens > 0 OR cost_cached_input > 0)
                                  + (cache_write_tokens > 0 OR cost_cache_write > 0)
                                  + (output_tokens > 0 OR cost_output > 0)
                                  + (reasoning_tokens > 0 OR cost_reasoning > 0)), 0)
                FROM rollups_focus WHERE hour >= ?1 AND hour < ?2
                  AND (?3 IS NULL OR pod_id IN (SELECT value FROM json_each(?3)))) AS rows,
               (SELECT COALESCE(SUM((f.input_tokens > 0 OR f.cost_input > 0)
                                  + (f.cached_input_tokens > 0 OR f.cost_cached_input > 0)
                                  + (f.cache_write_tokens > 0 OR f.cost_cache_write > 0)
                                  + (f.output_tokens > 0 OR f.cost_output > 0)
                                  + (f.reasoning_tokens > 0 OR f.cost_reasoning > 0)), 0)
                FROM rollups_focus f LEFT JOIN price_points pp ON pp.id = f.price_id
                WHERE f.hour >= ?1 AND f.hour < ?2
                  AND (?3 IS NULL OR f.pod_id IN (SELECT value FROM json_each(?3)))
                  AND (pp.id IS NULL OR pp.contracted_input IS NULL OR pp.contracted_cached_input IS NULL
                       OR pp.contracted_cache_write IS NULL OR pp.contracted_output IS NULL
                       OR pp.contracted_reasoning IS NULL)) AS unpriced_rows,
               (SELECT COALESCE(SUM(cost_input + cost_cached_input + cost_cache_write + cost_output + cost_reasoning), 0)
                FROM rollups_focus WHERE hour >= ?1 AND hour < ?2
                  AND (?3 IS NULL OR pod_id IN (SELECT value FROM json_each(?3)))) AS focus,
               (SELECT COALESCE(SUM(cost_nano_usd), 0)
                FROM rollups_hourly WHERE hour >= ?1 AND hour < ?2
                  AND (?3 IS NULL OR pod_id IN (SELECT value FROM json_each(?3)))) AS spend",
        )
        .bind(from_hour)
        .bind(to_hour)
        .bind(super::id_filter(pod_ids))
        .fetch_one(&self.pool)
        .await?;
        Ok(FocusCounts {
            rows: u(row.try_get("rows")?),
            unpriced_rows: u(row.try_get("unpriced_rows")?),
            billed_nano_usd: u(row.try_get("focus")?),
            spend_nano_usd: u(row.try_get("spend")?),
        })
    }

    async fn spend_by_use_case_and_model(
        &self,
        from_hour: i64,
        to_hour: i64,
        pod_ids: Option<&[String]>,
    ) -> R<Vec<(String, String, Totals)>> {
        let rows = sqlx::query(
            "SELECT use_case_id, model, SUM(requests) AS requests, SUM(errors) AS errors, SUM(unpriced) AS unpriced,
                    SUM(input_tokens) AS input_tokens, SUM(cached_input_tokens) AS cached_input_tokens,
                    SUM(cache_write_tokens) AS cache_write_tokens, SUM(output_tokens) AS output_tokens,
                    SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost_nano_usd) AS cost_nano_usd
             FROM rollups_hourly
             WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR pod_id IN (SELECT value FROM json_each(?3)))
             GROUP BY use_case_id, model ORDER BY cost_nano_usd DESC, use_case_id, model",
        )
        .bind(from_hour)
        .bind(to_hour)
        .bind(super::id_filter(pod_ids))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("use_case_id")?,
                    r.try_get::<String, _>("model")?,
                    totals(r)?,
                ))
            })
            .collect()
    }

    async fn duplicate_prompts(
        &self,
        from: i64,
        to: i64,
        pod_ids: Option<&[String]>,
    ) -> R<Vec<DuplicatePrompts>> {
        let rows = sqlx::query(
            "SELECT use_case_id, SUM(n) AS requests, SUM(n - 1) AS duplicates, SUM(cost - cost / n) AS saved
             FROM (SELECT use_case_id, prompt_hash, COUNT(*) AS n, SUM(COALESCE(cost_nano_usd, 0)) AS cost
                   FROM request_records
                   WHERE at >= ?1 AND at < ?2 AND prompt_hash IS NOT NULL AND status = 200
                     AND (?3 IS NULL OR pod_id IN (SELECT value FROM json_each(?3)))
                   GROUP BY use_case_id, prompt_hash)
             GROUP BY use_case_id ORDER BY saved DESC, use_case_id",
        )
        .bind(from)
        .bind(to)
        .bind(super::id_filter(pod_ids))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DuplicatePrompts {
                    use_case_id: r.try_get("use_case_id")?,
                    requests: u(r.try_get("requests")?),
                    duplicates: u(r.try_get("duplicates")?),
                    duplicate_cost_nano_usd: u(r.try_get("saved")?),
                })
            })
            .collect()
    }
}

fn five(r: &sqlx::sqlite::SqliteRow, cols: [&str; 5]) -> R<[u64; 5]> {
    let mut out = [0u64; 5];
    for (o, c) in out.iter_mut().zip(cols) {
        *o = u(r.try_get(c)?);
    }
    Ok(out)
}

fn five_opt(r: &sqlx::sqlite::SqliteRow, cols: [&str; 5]) -> R<Option<[u64; 5]>> {
    let mut out = [0u64; 5];
    for (o, c) in out.iter_mut().zip(cols) {
        match r.try_get::<Option<i64>, _>(c)? {
            Some(v) => *o = u(v),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn focus_row(r: &sqlx::sqlite::SqliteRow) -> R<FocusRollup> {
    let price = match r.try_get::<Option<String>, _>("pp_id")? {
        Some(id) => Some(PricePointRow {
            id,
            provider: r.try_get("provider")?,
            provider_kind: r.try_get("provider_kind")?,
            publisher: r.try_get("publisher")?,
            model: r.try_get("model")?,
            source: r.try_get("source")?,
            currency: r.try_get("currency")?,
            contracted: five_opt(
                r,
                [
                    "contracted_input",
                    "contracted_cached_input",
                    "contracted_cache_write",
                    "contracted_output",
                    "contracted_reasoning",
                ],
            )?,
            list: five_opt(
                r,
                [
                    "list_input",
                    "list_cached_input",
                    "list_cache_write",
                    "list_output",
                    "list_reasoning",
                ],
            )?,
        }),
        None => None,
    };
    Ok(FocusRollup {
        hour: r.try_get("hour")?,
        pod_id: r.try_get("pod_id")?,
        pod_name: r.try_get("pod_name")?,
        use_case_id: r.try_get("use_case_id")?,
        use_case_name: r.try_get("use_case_name")?,
        stage: r.try_get("stage")?,
        route: r.try_get("route")?,
        price,
        price_id: r.try_get("price_id")?,
        requests: u(r.try_get("requests")?),
        tokens: five(
            r,
            [
                "input_tokens",
                "cached_input_tokens",
                "cache_write_tokens",
                "output_tokens",
                "reasoning_tokens",
            ],
        )?,
        cost: five(
            r,
            [
                "cost_input",
                "cost_cached_input",
                "cost_cache_write",
                "cost_output",
                "cost_reasoning",
            ],
        )?,
    })
}
