//! The rollups the KPIs read: folded from each batch of records in the ledger writer's
//! transaction, and summed over a scope and a window for a report.

use super::{R, SqliteStore, multirow};
use crate::model::{
    KpiData, KpiScope, LATENCY_BOUNDS_MS, RequestRecord, RunPair, SloWindow, Stage,
    UseCaseEvidence, latency_bucket,
};
use crate::queries::{KpiQueries, SloQueries};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};
use std::collections::HashMap;

/// Histogram buckets kept per row.
const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The first 64 bits of a hex pseudonym, as the integer the daily tables keep (another text is
/// hashed to 64 bits).
fn short_id(h: &str) -> i64 {
    match h.get(..16).and_then(|x| u64::from_str_radix(x, 16).ok()) {
        Some(v) => v as i64,
        None => {
            use std::hash::{Hash, Hasher};
            let mut s = std::collections::hash_map::DefaultHasher::new();
            h.hash(&mut s);
            s.finish() as i64
        }
    }
}

/// The columns of `rollups_kpi_hourly` a batch adds to, after its key (hour, pod, use case):
/// the counters, both histograms, and the sessions that began.
static HOURLY_COLUMNS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    COUNTERS
        .iter()
        .map(|c| c.to_string())
        .chain((0..BUCKETS).map(|k| format!("l{k}")))
        .chain((0..BUCKETS).map(|k| format!("t{k}")))
        .chain(["sessions".to_string()])
        .collect()
});

/// The upsert of (hour, use case) rows of `rollups_kpi_hourly`, built once: its head and its
/// `ON CONFLICT` tail, around the rows' values.
static HOURLY_UPSERT: std::sync::LazyLock<(String, String)> = std::sync::LazyLock::new(|| {
    let cols = &*HOURLY_COLUMNS;
    (
        format!(
            "INSERT INTO rollups_kpi_hourly (hour, pod_id, use_case_id, {})",
            cols.join(", ")
        ),
        format!(
            "ON CONFLICT (hour, use_case_id) DO UPDATE SET {}",
            // Capped like the spend rollup's cost: sums of nano-USD stay integers at any volume.
            cols.iter()
                .map(|c| format!("{c} = MIN({c} + excluded.{c}, 9223372036854775807)"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
});

/// Counts of one (hour, use case).
#[derive(Default)]
struct Hour {
    pod: String,
    n: [u64; COUNTERS.len()],
    latency: [u64; BUCKETS],
    ttft: [u64; BUCKETS],
    /// Sessions whose first request is in this hour.
    began: u64,
}

/// The counters of [`Hour::n`], in column order.
const COUNTERS: [&str; 12] = [
    "requests",
    "answered",
    "errors",
    "fallbacks",
    "streams",
    "streams_cancelled",
    "guard_blocked",
    "guard_flagged",
    "with_session",
    "routing_priced",
    "first_choice_nano_usd",
    "first_choice_paid_nano_usd",
];

/// Whether a record was answered (a 200 that ended well, or whose client left).
pub(crate) fn answered(r: &RequestRecord) -> bool {
    r.status == 200 && matches!(r.outcome.as_str(), "ok" | "client_disconnected")
}

/// Whether a record failed on the gateway's or a provider's side: a 5xx, or a stream that broke.
pub(crate) fn failed(r: &RequestRecord) -> bool {
    r.status >= 500 || r.status == 200 && !answered(r)
}

fn counters(r: &RequestRecord) -> [u64; COUNTERS.len()] {
    let blocked = r.outcome == "policy_violation";
    // The guard's report lists findings with their action; a request with findings that was not
    // refused had something masked, hashed, tokenized or redacted.
    let flagged = !blocked && r.guard.as_deref().is_some_and(|g| g.contains("\"action\""));
    // KPI 19: only requests priced both where they went and on the route's first deployment.
    let (first, paid) = match (r.first_choice_cost_nano_usd, r.cost_nano_usd) {
        (Some(first), Some(paid)) => (Some(first), paid),
        _ => (None, 0),
    };
    [
        1,
        u64::from(answered(r)),
        u64::from(failed(r)),
        u64::from(answered(r) && r.attempts > 1),
        u64::from(r.stream),
        u64::from(r.stream && r.outcome == "client_disconnected"),
        u64::from(blocked),
        u64::from(flagged),
        u64::from(r.session_hash.is_some()),
        u64::from(first.is_some()),
        first.unwrap_or(0),
        paid,
    ]
}

/// Folds a batch of records into the KPI rollups.
pub(super) async fn fold(c: &mut SqliteConnection, rows: &[RequestRecord]) -> R<()> {
    let mut hours: HashMap<(i64, &str), Hour> = HashMap::new();
    let mut users: std::collections::HashSet<(i64, &str, &str, i64)> = Default::default();
    // Each session of the batch with the hour of its first request in it.
    let mut sessions: HashMap<(&str, i64), i64> = HashMap::new();
    let mut minutes: HashMap<(String, i64), (u64, u64)> = HashMap::new();
    // Evaluation traffic is not production: it stays out of every KPI rollup.
    for r in rows.iter().filter(|r| !r.evaluation) {
        let uc = r.use_case_id.as_str();
        let h = hours.entry((r.at.div_euclid(HOUR_MS), uc)).or_default();
        h.pod.clone_from(&r.pod_id);
        for (k, v) in counters(r).into_iter().enumerate() {
            h.n[k] = h.n[k].saturating_add(v);
        }
        h.latency[latency_bucket(r.latency_ms)] += 1;
        if let (true, Some(t)) = (r.stream, r.ttft_ms) {
            h.ttft[latency_bucket(t)] += 1;
        }
        let day = r.at.div_euclid(DAY_MS);
        if let Some(user) = r.end_user_hash.as_deref() {
            users.insert((day, uc, &r.pod_id, short_id(user)));
        }
        if let Some(session) = r.session_hash.as_deref() {
            let hour = r.at.div_euclid(HOUR_MS);
            sessions
                .entry((uc, short_id(session)))
                .and_modify(|h| *h = (*h).min(hour))
                .or_insert(hour);
        }
        let tokens = r.input_tokens
            + r.cached_input_tokens
            + r.cache_write_tokens
            + r.output_tokens
            + r.reasoning_tokens;
        let minute = r.at.div_euclid(MINUTE_MS);
        for scope in [
            format!("u:{uc}"),
            format!("p:{}", r.pod_id),
            "o".to_string(),
        ] {
            let m = minutes.entry((scope, minute)).or_default();
            m.0 += 1;
            m.1 = m.1.saturating_add(tokens);
        }
    }
    // A session's first request adds its row, and one to the sessions of its hour (a row the
    // upsert below adds to: the request is in it). Only the rows inserted come back.
    let sessions: Vec<((&str, i64), i64)> = sessions.into_iter().collect();
    let first_seen = multirow::fetch(
        c,
        (
            "INSERT INTO sessions_seen (use_case_id, session)",
            2,
            "ON CONFLICT DO NOTHING RETURNING use_case_id, session",
        ),
        &sessions,
        |q, ((uc, session), _)| q.bind(*uc).bind(*session),
    )
    .await?;
    let first_seen: std::collections::HashSet<(String, i64)> = first_seen
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<R<_>>()?;
    for ((uc, session), hour) in &sessions {
        if first_seen.contains(&(uc.to_string(), *session))
            && let Some(h) = hours.get_mut(&(*hour, *uc))
        {
            h.began += 1;
        }
    }
    let hours: Vec<((i64, &str), Hour)> = hours.into_iter().collect();
    let (head, tail) = &*HOURLY_UPSERT;
    multirow::execute(
        c,
        (head, 3 + HOURLY_COLUMNS.len(), tail),
        &hours,
        |mut q, ((hour, uc), h)| {
            q = q.bind(hour).bind(&h.pod).bind(*uc);
            for v in h.n.iter().chain(&h.latency).chain(&h.ttft) {
                q = q.bind(i(*v));
            }
            q.bind(i(h.began))
        },
    )
    .await?;
    // A user's first request of a day in a scope adds a row, and one to that day's count (what
    // DAU reads without a DISTINCT).
    let users: Vec<(String, i64, i64)> = users
        .into_iter()
        .flat_map(|(day, uc, pod, user)| {
            [format!("u:{uc}"), format!("p:{pod}"), "o".to_string()].map(|scope| (scope, day, user))
        })
        .collect::<std::collections::HashSet<_>>()
        .into_iter()
        .collect();
    let first_of_day = multirow::fetch(
        c,
        (
            "INSERT INTO users_daily (scope, day, user)",
            3,
            "ON CONFLICT DO NOTHING RETURNING scope, day",
        ),
        &users,
        |q, (scope, day, user)| q.bind(scope).bind(day).bind(user),
    )
    .await?;
    let mut daily: HashMap<(String, i64), u64> = HashMap::new();
    for row in first_of_day {
        *daily.entry((row.try_get(0)?, row.try_get(1)?)).or_default() += 1;
    }
    let daily: Vec<((String, i64), u64)> = daily.into_iter().collect();
    multirow::execute(
        c,
        (
            "INSERT INTO rollups_daily (scope, day, users)",
            3,
            "ON CONFLICT (scope, day) DO UPDATE SET users = users + excluded.users",
        ),
        &daily,
        |q, ((scope, day), users)| q.bind(scope).bind(day).bind(i(*users)),
    )
    .await?;
    let minutes: Vec<((String, i64), (u64, u64))> = minutes.into_iter().collect();
    multirow::execute(
        c,
        (
            "INSERT INTO rollups_minute (scope, minute, requests, tokens)",
            4,
            "ON CONFLICT (scope, minute) DO UPDATE SET
                 requests = requests + excluded.requests, tokens = MIN(tokens + excluded.tokens, 9223372036854775807)",
        ),
        &minutes,
        |q, ((scope, minute), (n, tokens))| q.bind(scope).bind(minute).bind(i(*n)).bind(i(*tokens)),
    )
    .await?;
    Ok(())
}

/// The `WHERE` fragment of a scope (its value bound as `?1`).
fn scope_sql(scope: &KpiScope) -> (&'static str, &str) {
    match scope {
        KpiScope::Portfolio => ("?1 = ?1", ""),
        KpiScope::Pod(p) => ("pod_id = ?1", p.as_str()),
        KpiScope::UseCase(u) => ("use_case_id = ?1", u.as_str()),
    }
}

impl KpiQueries for SqliteStore {
    async fn kpi_data(&self, scope: &KpiScope, from_ms: i64, to_ms: i64) -> R<KpiData> {
        let (filter, value) = scope_sql(scope);
        let (h0, h1) = (
            from_ms.div_euclid(HOUR_MS),
            (to_ms + HOUR_MS - 1).div_euclid(HOUR_MS),
        );
        let (d0, d1) = (
            from_ms.div_euclid(DAY_MS),
            (to_ms + DAY_MS - 1).div_euclid(DAY_MS),
        );
        let mut d = KpiData::default();
        let sums: Vec<String> = COUNTERS
            .iter()
            .map(|c| format!("SUM({c})"))
            .chain((0..BUCKETS).map(|k| format!("SUM(l{k})")))
            .chain((0..BUCKETS).map(|k| format!("SUM(t{k})")))
            .chain(["SUM(sessions)".to_string()])
            .collect();
        let sql = format!(
            "SELECT {} FROM rollups_kpi_hourly WHERE {filter} AND hour >= ?2 AND hour < ?3",
            sums.join(", ")
        );
        // Built only from constant column names and the scope's constant fragment.
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(value)
            .bind(h0)
            .bind(h1)
            .fetch_one(&self.pool)
            .await?;
        let g = |k: usize| -> R<u64> { Ok(u(row.try_get::<Option<i64>, _>(k)?.unwrap_or(0))) };
        let mut n = [0u64; COUNTERS.len()];
        for (k, slot) in n.iter_mut().enumerate() {
            *slot = g(k)?;
        }
        [
            d.requests,
            d.answered,
            d.errors,
            d.fallbacks,
            d.streams,
            d.streams_cancelled,
            d.guard_blocked,
            d.guard_flagged,
            d.session_requests,
            d.routing_priced,
            d.first_choice_nano_usd,
            d.first_choice_paid_nano_usd,
        ] = n;
        let h = COUNTERS.len();
        d.latency = (0..BUCKETS).map(|k| g(h + k)).collect::<R<_>>()?;
        d.ttft = (0..BUCKETS).map(|k| g(h + BUCKETS + k)).collect::<R<_>>()?;
        d.sessions = g(h + 2 * BUCKETS)?;

        // Money, tokens and requests per model from the spend rollup, with what evaluation keys
        // spent left out as the KPI rollup leaves their requests out: every ratio then has its
        // numerator and denominator from the same production traffic.
        let money = format!(
            "SELECT model, SUM(requests), SUM(cost_nano_usd),
                    SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens + reasoning_tokens)
             FROM rollups_hourly WHERE {filter} AND hour >= ?2 AND hour < ?3
               AND key_id NOT IN (SELECT id FROM api_keys WHERE purpose = 'evaluation')
             GROUP BY model ORDER BY model"
        );
        let rows = sqlx::query(AssertSqlSafe(money))
            .bind(value)
            .bind(h0)
            .bind(h1)
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            d.cost_nano_usd = d
                .cost_nano_usd
                .saturating_add(u(row.try_get::<Option<i64>, _>(2)?.unwrap_or(0)));
            d.tokens = d
                .tokens
                .saturating_add(u(row.try_get::<Option<i64>, _>(3)?.unwrap_or(0)));
            d.requests_by_model.push((
                row.try_get(0)?,
                u(row.try_get::<Option<i64>, _>(1)?.unwrap_or(0)),
            ));
        }

        let scope_key = match scope {
            KpiScope::Portfolio => "o".to_string(),
            KpiScope::Pod(p) => format!("p:{p}"),
            KpiScope::UseCase(u) => format!("u:{u}"),
        };
        let users = async |a: i64, b: i64| -> R<u64> {
            let row = sqlx::query(
                "SELECT COUNT(DISTINCT user) FROM users_daily WHERE scope = ?1 AND day >= ?2 AND day < ?3",
            )
            .bind(&scope_key)
            .bind(a)
            .bind(b)
            .fetch_one(&self.pool)
            .await?;
            Ok(u(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0)))
        };
        d.active_users = users(d0, d1).await?;
        d.weekly_active = users((d1 - 7).max(d0), d1).await?;
        d.monthly_active = if d1 - d0 == 30 {
            d.active_users
        } else {
            users(d1 - 30, d1).await?
        };
        let row = sqlx::query(
            "SELECT SUM(users) FROM rollups_daily WHERE scope = ?1 AND day >= ?2 AND day < ?3",
        )
        .bind(&scope_key)
        .bind(d0)
        .bind(d1)
        .fetch_one(&self.pool)
        .await?;
        d.user_days = u(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0));
        d.days = u(d1 - d0);
        // Retention: users active in the window's first week, and of them in its fifth.
        if d1 - d0 >= 35 {
            d.retention_cohort = Some(users(d0, d0 + 7).await?);
            let row = sqlx::query(
                "SELECT COUNT(DISTINCT user) FROM users_daily WHERE scope = ?1 AND day >= ?2 AND day < ?3
                 AND user IN (SELECT user FROM users_daily WHERE scope = ?1 AND day >= ?4 AND day < ?5)",
            )
            .bind(&scope_key)
            .bind(d0 + 28)
            .bind(d0 + 35)
            .bind(d0)
            .bind(d0 + 7)
            .fetch_one(&self.pool)
            .await?;
            d.retention_kept = u(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0));
        }
        let (m0, m1) = (
            from_ms.div_euclid(MINUTE_MS),
            (to_ms + MINUTE_MS - 1).div_euclid(MINUTE_MS),
        );
        let row = sqlx::query(
            "SELECT MAX(requests), MAX(tokens) FROM rollups_minute WHERE scope = ?1 AND minute >= ?2 AND minute < ?3",
        )
        .bind(&scope_key)
        .bind(m0)
        .bind(m1)
        .fetch_one(&self.pool)
        .await?;
        d.peak_requests_per_minute = u(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0));
        d.peak_tokens_per_minute = u(row.try_get::<Option<i64>, _>(1)?.unwrap_or(0));
        let slo = format!(
            "SELECT COUNT(*), SUM({SLO_MET}) FROM slo_windows
             WHERE {filter} AND window_start >= ?2 AND window_start < ?3 AND requests > 0"
        );
        let row = sqlx::query(AssertSqlSafe(slo))
            .bind(value)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&self.pool)
            .await?;
        d.slo_windows = (
            u(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0)),
            u(row.try_get::<Option<i64>, _>(1)?.unwrap_or(0)),
        );
        Ok(d)
    }

    async fn use_case_evidence(
        &self,
        scope: &KpiScope,
        from_ms: i64,
        to_ms: i64,
    ) -> R<UseCaseEvidence> {
        let (filter, value) = scope_sql(scope);
        let mut e = UseCaseEvidence::default();
        // `stage_changes` has no pod: the scope is read from its use case (`pod_id` and
        // `use_case_id` name columns of one table each).
        let stages = format!(
            "SELECT use_case_id, to_stage, MIN(at) FROM stage_changes
             JOIN use_cases ON use_cases.id = stage_changes.use_case_id
             WHERE {filter} GROUP BY use_case_id, to_stage ORDER BY use_case_id, to_stage"
        );
        for row in sqlx::query(AssertSqlSafe(stages))
            .bind(value)
            .fetch_all(&self.pool)
            .await?
        {
            let stage: String = row.try_get(1)?;
            if let Some(stage) = Stage::parse(&stage) {
                e.first_entered
                    .push((row.try_get(0)?, stage, row.try_get(2)?));
            }
        }
        // The latest run in the list's own order (a run started at the same instant is placed
        // by its id), and the champion by the same order.
        let runs = format!(
            "WITH latest AS (
                 SELECT id, use_case_id, suite, started_at, passed, cases_done FROM (
                     SELECT id, use_case_id, suite, started_at, passed, cases_done,
                            ROW_NUMBER() OVER (PARTITION BY use_case_id ORDER BY started_at DESC, id DESC) AS n
                     FROM eval_runs
                     WHERE {filter} AND status = 'done' AND started_at >= ?2 AND started_at < ?3)
                 WHERE n = 1)
             SELECT l.use_case_id, l.passed, l.cases_done, c.passed, c.cases_done
             FROM latest l LEFT JOIN eval_runs c ON c.id = (
                 SELECT x.id FROM eval_runs x
                 WHERE x.use_case_id = l.use_case_id AND x.suite = l.suite AND x.id <> l.id
                   AND x.status = 'done' AND x.stage = 'production' AND x.started_at <= l.started_at
                 ORDER BY x.started_at DESC, x.id DESC LIMIT 1)
             ORDER BY l.use_case_id"
        );
        for row in sqlx::query(AssertSqlSafe(runs))
            .bind(value)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await?
        {
            let champion = match (
                row.try_get::<Option<i64>, _>(3)?,
                row.try_get::<Option<i64>, _>(4)?,
            ) {
                (Some(p), Some(d)) => Some((u(p), u(d))),
                _ => None,
            };
            e.latest_runs.push(RunPair {
                use_case_id: row.try_get(0)?,
                latest: (u(row.try_get(1)?), u(row.try_get(2)?)),
                champion,
            });
        }
        let fairness = format!(
            "SELECT use_case_id, COUNT(*),
                    SUM(CASE WHEN json_valid(report) THEN COALESCE(json_array_length(report, '$.flags'), 0) ELSE 0 END)
             FROM fairness_runs
             WHERE {filter} AND status = 'done' AND started_at >= ?2 AND started_at < ?3
             GROUP BY use_case_id ORDER BY use_case_id"
        );
        for row in sqlx::query(AssertSqlSafe(fairness))
            .bind(value)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await?
        {
            e.fairness.push((
                row.try_get(0)?,
                u(row.try_get(1)?),
                u(row.try_get::<Option<i64>, _>(2)?.unwrap_or(0)),
            ));
        }
        Ok(e)
    }
}

/// [`SloWindow::met`] in SQL: 1 when the window met its SLO, else 0.
const SLO_MET: &str = "(latency_target_ms IS NULL OR slow <= requests - (requests * 95 + 99) / 100)
     AND (max_error_ppm IS NULL OR errors * 1000000 <= max_error_ppm * requests)";

impl SqliteStore {
    /// Inserts `windows` in one transaction; a stored window takes the targets given and has
    /// its counts updated by `counts` (an `ON CONFLICT … DO UPDATE SET` list).
    async fn upsert_slo_windows(&self, windows: &[SloWindow], counts: &str) -> R<()> {
        if windows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO slo_windows (use_case_id, pod_id, window_start, requests, errors, slow, latency_target_ms, max_error_ppm)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (use_case_id, window_start) DO UPDATE SET {counts},
               latency_target_ms = excluded.latency_target_ms, max_error_ppm = excluded.max_error_ppm"
        );
        self.write(async |c: &mut SqliteConnection| {
            for w in windows {
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(&w.use_case_id)
                    .bind(&w.pod_id)
                    .bind(w.start)
                    .bind(i(w.requests))
                    .bind(i(w.errors))
                    .bind(i(w.slow))
                    .bind(w.latency_target_ms)
                    .bind(w.max_error_ppm)
                    .execute(&mut *c)
                    .await?;
            }
            Ok(())
        })
        .await
    }
}

impl SloQueries for SqliteStore {
    async fn add_slo_windows(&self, windows: &[SloWindow]) -> R<()> {
        self.upsert_slo_windows(
            windows,
            "requests = requests + excluded.requests, errors = errors + excluded.errors,
             slow = slow + excluded.slow",
        )
        .await
    }

    async fn set_slo_windows(&self, windows: &[SloWindow]) -> R<()> {
        self.upsert_slo_windows(
            windows,
            "requests = excluded.requests, errors = excluded.errors, slow = excluded.slow",
        )
        .await
    }

    async fn slo_windows(&self, use_case_id: &str, from_ms: i64, to_ms: i64) -> R<Vec<SloWindow>> {
        let rows = sqlx::query(
            "SELECT * FROM slo_windows WHERE use_case_id = ? AND window_start >= ? AND window_start < ? ORDER BY window_start",
        )
        .bind(use_case_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SloWindow {
                    use_case_id: r.try_get("use_case_id")?,
                    pod_id: r.try_get("pod_id")?,
                    start: r.try_get("window_start")?,
                    requests: u(r.try_get("requests")?),
                    errors: u(r.try_get("errors")?),
                    slow: u(r.try_get("slow")?),
                    latency_target_ms: r.try_get("latency_target_ms")?,
                    max_error_ppm: r.try_get("max_error_ppm")?,
                })
            })
            .collect()
    }
}
