//! Evaluation suites (immutable versions) and runs, and fairness probe runs.

use super::{R, SqliteStore, audit};
use crate::StoreError;
use crate::model::{EvalRun, FairnessRun, Page, PageRequest, SuiteVersion};
use crate::queries::{EvalQueries, FairnessQueries};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn suite(r: &SqliteRow) -> R<SuiteVersion> {
    let doc: String = r.try_get("document")?;
    Ok(SuiteVersion {
        use_case_id: r.try_get("use_case_id")?,
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        fingerprint: r.try_get("fingerprint")?,
        document: serde_json::from_str(&doc)
            .map_err(|e| StoreError::Backend(format!("a stored suite is not JSON: {e}")))?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn run(r: &SqliteRow, with_report: bool) -> R<EvalRun> {
    let report: Option<String> = if with_report {
        r.try_get("report")?
    } else {
        None
    };
    Ok(EvalRun {
        id: r.try_get("id")?,
        use_case_id: r.try_get("use_case_id")?,
        pod_id: r.try_get("pod_id")?,
        suite: r.try_get("suite")?,
        suite_version: r.try_get("suite_version")?,
        stage: r.try_get("stage")?,
        trigger: r.try_get("trigger")?,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        created_by: r.try_get("created_by")?,
        cases_total: u(r.try_get("cases_total")?),
        cases_done: u(r.try_get("cases_done")?),
        passed: u(r.try_get("passed")?),
        failed: u(r.try_get("failed")?),
        errors: u(r.try_get("errors")?),
        pass_rate: r.try_get("pass_rate")?,
        threshold: r.try_get("threshold")?,
        passed_threshold: r
            .try_get::<Option<i64>, _>("passed_threshold")?
            .map(|v| v != 0),
        cost_nano_usd: u(r.try_get("cost_nano_usd")?),
        scoring_cost_nano_usd: u(r.try_get("scoring_cost_nano_usd")?),
        routes: list(&r.try_get::<String, _>("routes")?),
        models: list(&r.try_get::<String, _>("models")?),
        patterns: list(&r.try_get::<String, _>("patterns")?),
        report: report
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Backend(format!("a stored report is not JSON: {e}")))?,
        error: r.try_get("error")?,
    })
}

const RUN_COLUMNS: &str = "id, use_case_id, pod_id, suite, suite_version, stage, trigger, status, started_at, finished_at, created_by, cases_total, cases_done, passed, failed, errors, pass_rate, threshold, passed_threshold, cost_nano_usd, scoring_cost_nano_usd, routes, models, patterns, error";

impl EvalQueries for SqliteStore {
    async fn put_suite(
        &self,
        actor: &str,
        use_case_id: &str,
        name: &str,
        fingerprint: &str,
        document: &serde_json::Value,
        at: i64,
    ) -> R<(SuiteVersion, bool)> {
        self.write(async |c: &mut SqliteConnection| {
            let latest = sqlx::query(
                "SELECT * FROM eval_suites WHERE use_case_id = ? AND name = ? ORDER BY version DESC LIMIT 1",
            )
            .bind(use_case_id)
            .bind(name)
            .fetch_optional(&mut *c)
            .await?;
            let latest = latest.as_ref().map(suite).transpose()?;
            if let Some(l) = latest.as_ref().filter(|l| l.fingerprint == fingerprint) {
                return Ok((l.clone(), false));
            }
            let v = SuiteVersion {
                use_case_id: use_case_id.to_string(),
                name: name.to_string(),
                version: latest.map_or(1, |l| l.version + 1),
                fingerprint: fingerprint.to_string(),
                document: document.clone(),
                created_at: at,
                created_by: actor.to_string(),
            };
            sqlx::query(
                "INSERT INTO eval_suites (use_case_id, name, version, fingerprint, document, created_at, created_by)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&v.use_case_id)
            .bind(&v.name)
            .bind(v.version)
            .bind(&v.fingerprint)
            .bind(v.document.to_string())
            .bind(v.created_at)
            .bind(&v.created_by)
            .execute(&mut *c)
            .await?;
            audit(
                c,
                actor,
                "suite.version",
                "use_case",
                use_case_id,
                serde_json::json!({"suite": name, "version": v.version, "fingerprint": fingerprint}),
            )
            .await?;
            Ok((v, true))
        })
        .await
    }

    async fn get_suite(
        &self,
        use_case_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> R<SuiteVersion> {
        let row = sqlx::query(
            "SELECT * FROM eval_suites WHERE use_case_id = ?1 AND name = ?2 AND (?3 IS NULL OR version = ?3)
             ORDER BY version DESC LIMIT 1",
        )
        .bind(use_case_id)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => suite(&r),
            None => Err(StoreError::NotFound(match version {
                Some(v) => format!("suite {name} version {v}"),
                None => format!("suite {name}"),
            })),
        }
    }

    async fn list_suites(&self, use_case_id: &str) -> R<Vec<SuiteVersion>> {
        let rows = sqlx::query(
            "SELECT s.* FROM eval_suites s
             JOIN (SELECT name, MAX(version) AS v FROM eval_suites WHERE use_case_id = ?1 GROUP BY name) l
               ON l.name = s.name AND l.v = s.version
             WHERE s.use_case_id = ?1 ORDER BY s.name",
        )
        .bind(use_case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(suite).collect()
    }

    async fn list_suites_page(
        &self,
        use_case_id: &str,
        req: &PageRequest,
    ) -> R<Page<SuiteVersion>> {
        let size = req.size();
        let rows = sqlx::query(
            "SELECT s.* FROM eval_suites s
             JOIN (SELECT name, MAX(version) AS v FROM eval_suites
                   WHERE use_case_id = ?1 AND name > ?2 GROUP BY name) l
               ON l.name = s.name AND l.v = s.version
             WHERE s.use_case_id = ?1 ORDER BY s.name LIMIT ?3",
        )
        .bind(use_case_id)
        .bind(req.after.clone().unwrap_or_default())
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(suite).collect::<R<Vec<_>>>()?;
        Ok(super::page(items, size, |s| s.name.clone()))
    }

    async fn create_run(&self, actor: &str, r: &EvalRun) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO eval_runs (id, use_case_id, pod_id, suite, suite_version, stage, trigger, status, started_at, created_by, cases_total, threshold, routes, patterns)
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.use_case_id)
            .bind(&r.pod_id)
            .bind(&r.suite)
            .bind(r.suite_version)
            .bind(&r.stage)
            .bind(&r.trigger)
            .bind(r.started_at)
            .bind(&r.created_by)
            .bind(i(r.cases_total))
            .bind(r.threshold)
            .bind(serde_json::to_string(&r.routes).unwrap_or_default())
            .bind(serde_json::to_string(&r.patterns).unwrap_or_default())
            .execute(&mut *c)
            .await?;
            audit(
                c,
                actor,
                "eval.start",
                "use_case",
                &r.use_case_id,
                serde_json::json!({"run": r.id, "suite": r.suite, "version": r.suite_version, "trigger": r.trigger, "cases": r.cases_total, "patterns": r.patterns}),
            )
            .await
        })
        .await
    }

    async fn run_progress(
        &self,
        id: &str,
        done: u64,
        passed: u64,
        failed: u64,
        errors: u64,
    ) -> R<()> {
        sqlx::query(
            "UPDATE eval_runs SET cases_done = ?, passed = ?, failed = ?, errors = ? WHERE id = ? AND status = 'running'",
        )
        .bind(i(done))
        .bind(i(passed))
        .bind(i(failed))
        .bind(i(errors))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_run(&self, r: &EvalRun) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            let changed = sqlx::query(
                "UPDATE eval_runs SET status = ?, finished_at = ?, cases_done = ?, passed = ?, failed = ?, errors = ?,
                   pass_rate = ?, passed_threshold = ?, cost_nano_usd = ?, scoring_cost_nano_usd = ?, models = ?,
                   report = ?, error = ?
                 WHERE id = ? AND status = 'running'",
            )
            .bind(&r.status)
            .bind(r.finished_at)
            .bind(i(r.cases_done))
            .bind(i(r.passed))
            .bind(i(r.failed))
            .bind(i(r.errors))
            .bind(r.pass_rate)
            .bind(r.passed_threshold.map(i64::from))
            .bind(i(r.cost_nano_usd))
            .bind(i(r.scoring_cost_nano_usd))
            .bind(serde_json::to_string(&r.models).unwrap_or_default())
            .bind(r.report.as_ref().map(ToString::to_string))
            .bind(r.error.as_deref())
            .bind(&r.id)
            .execute(&mut *c)
            .await?
            .rows_affected();
            if changed == 0 {
                return Err(StoreError::Invalid(format!("run {} is not running", r.id)));
            }
            audit(
                c,
                &r.created_by,
                "eval.finish",
                "use_case",
                &r.use_case_id,
                serde_json::json!({"run": r.id, "suite": r.suite, "version": r.suite_version, "status": r.status,
                    "cases": r.cases_done, "passed": r.passed, "failed": r.failed, "errors": r.errors,
                    "pass_rate": r.pass_rate, "passed_threshold": r.passed_threshold,
                    "cost_nano_usd": r.cost_nano_usd + r.scoring_cost_nano_usd, "error": r.error}),
            )
            .await
        })
        .await
    }

    async fn get_run(&self, id: &str) -> R<EvalRun> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS}, report FROM eval_runs WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("run {id}")))?;
        run(&row, true)
    }

    async fn list_runs(
        &self,
        use_case_id: &str,
        suite: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> R<Vec<EvalRun>> {
        cursor_of(&self.pool, "eval_runs", use_case_id, before).await?;
        // In the list's own order: a run started at the same instant is placed by its id.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM eval_runs WHERE use_case_id = ?1 AND (?2 IS NULL OR suite = ?2)
             AND (?3 IS NULL OR (started_at, id) < (SELECT started_at, id FROM eval_runs WHERE id = ?3))
             ORDER BY started_at DESC, id DESC LIMIT ?4"
        )))
        .bind(use_case_id)
        .bind(suite)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| run(r, false)).collect()
    }

    async fn fail_interrupted_runs(&self, at: i64) -> R<u64> {
        let orphans: Vec<String> = sqlx::query(
            "SELECT id FROM api_keys WHERE purpose = 'evaluation' AND revoked_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        for id in orphans {
            self.write(async |c: &mut SqliteConnection| {
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(&id)
                .execute(&mut *c)
                .await?;
                audit(
                    c,
                    "system",
                    "key.revoke",
                    "key",
                    &id,
                    serde_json::json!({"at": at, "why": "its evaluation run ended with a stop"}),
                )
                .await
            })
            .await?;
        }
        let mut n = 0;
        for table in ["eval_runs", "fairness_runs"] {
            n += sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET status = 'failed', finished_at = ?, error = 'the server stopped during the run'
                 WHERE status = 'running'"
            )))
            .bind(at)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(n)
    }
}

const FAIR_COLUMNS: &str = "id, use_case_id, pod_id, status, started_at, finished_at, created_by, route, policy, prompt_set_hash, probe, calls_total, flagged, models, error";

fn fairness(r: &SqliteRow, with_report: bool) -> R<FairnessRun> {
    let report: Option<String> = if with_report {
        r.try_get("report")?
    } else {
        None
    };
    let json = |t: &str, what: &str| {
        serde_json::from_str(t)
            .map_err(|e| StoreError::Backend(format!("a stored {what} is not JSON: {e}")))
    };
    Ok(FairnessRun {
        id: r.try_get("id")?,
        use_case_id: r.try_get("use_case_id")?,
        pod_id: r.try_get("pod_id")?,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        created_by: r.try_get("created_by")?,
        route: r.try_get("route")?,
        policy: r.try_get("policy")?,
        prompt_set_hash: r.try_get("prompt_set_hash")?,
        probe: json(&r.try_get::<String, _>("probe")?, "probe")?,
        calls_total: u(r.try_get("calls_total")?),
        flagged: r.try_get::<Option<i64>, _>("flagged")?.map(|v| v != 0),
        models: list(&r.try_get::<String, _>("models")?),
        report: report.map(|t| json(&t, "report")).transpose()?,
        error: r.try_get("error")?,
    })
}

impl FairnessQueries for SqliteStore {
    async fn create_fairness_run(&self, actor: &str, r: &FairnessRun) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO fairness_runs (id, use_case_id, pod_id, status, started_at, created_by, route, policy, prompt_set_hash, probe, calls_total)
                 VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.use_case_id)
            .bind(&r.pod_id)
            .bind(r.started_at)
            .bind(&r.created_by)
            .bind(&r.route)
            .bind(&r.policy)
            .bind(&r.prompt_set_hash)
            .bind(r.probe.to_string())
            .bind(i(r.calls_total))
            .execute(&mut *c)
            .await?;
            audit(
                c,
                actor,
                "fairness.start",
                "use_case",
                &r.use_case_id,
                serde_json::json!({"run": r.id, "route": r.route, "prompt_set_hash": r.prompt_set_hash, "calls": r.calls_total}),
            )
            .await
        })
        .await
    }

    async fn finish_fairness_run(&self, r: &FairnessRun) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            let changed = sqlx::query(
                "UPDATE fairness_runs SET status = ?, finished_at = ?, flagged = ?, models = ?, report = ?, error = ?
                 WHERE id = ? AND status = 'running'",
            )
            .bind(&r.status)
            .bind(r.finished_at)
            .bind(r.flagged.map(i64::from))
            .bind(serde_json::to_string(&r.models).unwrap_or_default())
            .bind(r.report.as_ref().map(ToString::to_string))
            .bind(r.error.as_deref())
            .bind(&r.id)
            .execute(&mut *c)
            .await?
            .rows_affected();
            if changed == 0 {
                return Err(StoreError::Invalid(format!("fairness run {} is not running", r.id)));
            }
            audit(
                c,
                &r.created_by,
                "fairness.finish",
                "use_case",
                &r.use_case_id,
                serde_json::json!({"run": r.id, "status": r.status, "flagged": r.flagged, "error": r.error}),
            )
            .await
        })
        .await
    }

    async fn get_fairness_run(&self, id: &str) -> R<FairnessRun> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FAIR_COLUMNS}, report FROM fairness_runs WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("fairness run {id}")))?;
        fairness(&row, true)
    }

    async fn list_fairness_runs(
        &self,
        use_case_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> R<Vec<FairnessRun>> {
        cursor_of(&self.pool, "fairness_runs", use_case_id, before).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FAIR_COLUMNS} FROM fairness_runs WHERE use_case_id = ?1
             AND (?2 IS NULL OR (started_at, id) < (SELECT started_at, id FROM fairness_runs WHERE id = ?2))
             ORDER BY started_at DESC, id DESC LIMIT ?3"
        )))
        .bind(use_case_id)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| fairness(r, false)).collect()
    }
}

/// Checks a list's cursor: `before`, when given, must be one of use case `use_case_id`'s runs in
/// `table`, else `NotFound` — a run of another use case is refused as one that does not exist,
/// by the same one-row lookup on the key, so neither the answer nor its time tells them apart.
async fn cursor_of(
    pool: &sqlx::SqlitePool,
    table: &'static str,
    use_case_id: &str,
    before: Option<&str>,
) -> R<()> {
    let Some(before) = before else { return Ok(()) };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {table} WHERE id = ? AND use_case_id = ?"
    )))
    .bind(before)
    .bind(use_case_id)
    .fetch_optional(pool)
    .await?
    .map(|_| ())
    .ok_or_else(|| StoreError::NotFound(format!("run {before}")))
}
