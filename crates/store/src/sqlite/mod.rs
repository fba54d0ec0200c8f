//! The embedded SQLite backend: one file, WAL journal, a small pool, migrations at start.

mod budgets;
mod chain;
mod evals;
mod gates;
mod kpis;
mod ledger;
mod multirow;
mod outcomes;
mod patterns;
mod payloads;
mod policies;
mod rows;
mod schedules;

use crate::StoreError;
use crate::model::*;
use crate::queries::*;
use rows::*;
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::time::Duration;

type R<T> = Result<T, StoreError>;

/// Migrations in order; each runs once, in one transaction with its version row.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_ledger.sql")),
    (3, include_str!("../../migrations/sqlite/0003_limits.sql")),
    (4, include_str!("../../migrations/sqlite/0004_budgets.sql")),
    (5, include_str!("../../migrations/sqlite/0005_focus.sql")),
    (
        6,
        include_str!("../../migrations/sqlite/0006_user_lifecycle.sql"),
    ),
    (7, include_str!("../../migrations/sqlite/0007_policies.sql")),
    (8, include_str!("../../migrations/sqlite/0008_chain.sql")),
    (9, include_str!("../../migrations/sqlite/0009_payloads.sql")),
    (
        10,
        include_str!("../../migrations/sqlite/0010_outcomes.sql"),
    ),
    (11, include_str!("../../migrations/sqlite/0011_kpis.sql")),
    (12, include_str!("../../migrations/sqlite/0012_slo.sql")),
    (13, include_str!("../../migrations/sqlite/0013_evals.sql")),
    (
        14,
        include_str!("../../migrations/sqlite/0014_fairness.sql"),
    ),
    (
        15,
        include_str!("../../migrations/sqlite/0015_patterns.sql"),
    ),
    (
        16,
        include_str!("../../migrations/sqlite/0016_run_patterns.sql"),
    ),
    (
        17,
        include_str!("../../migrations/sqlite/0017_eval_schedules.sql"),
    ),
    (18, include_str!("../../migrations/sqlite/0018_gates.sql")),
    (
        19,
        include_str!("../../migrations/sqlite/0019_routing_savings.sql"),
    ),
    (
        20,
        include_str!("../../migrations/sqlite/0020_outcome_subjects.sql"),
    ),
    (
        21,
        include_str!("../../migrations/sqlite/0021_sessions_stand_for_requests.sql"),
    ),
    (
        22,
        include_str!("../../migrations/sqlite/0022_sessions_per_hour.sql"),
    ),
    (
        23,
        include_str!("../../migrations/sqlite/0023_event_ids_nfc.sql"),
    ),
];

/// The version whose data step runs in Rust: stored event ids rewritten in NFC
/// ([`nfc_event_ids`]).
const NFC_EVENT_IDS: i64 = 23;

/// A SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection of its own for the ledger writer's batches. SQLite drops a connection's
    /// page cache whenever another connection has written, so batches spread over the shared
    /// pool re-read the ledger's hot pages (the tables' right edges, the rollups, the chain's
    /// head) from the WAL each time; on its own connection they stay cached between batches.
    ledger: SqlitePool,
}

/// Each connection's page cache (`PRAGMA cache_size`, KiB when negative): 16 MiB instead of
/// SQLite's 2 MiB, so the ledger's indexes and rollups stay in memory as the tables grow.
const CACHE_KIB: &str = "-16384";

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    ///
    /// Two processes starting on one new file race for it: SQLite answers "database is locked"
    /// without waiting when one switches the file to WAL while the other holds a lock, so an open
    /// that meets a lock is tried again (for up to ~6 s) before it fails.
    ///
    /// The database holds e-mails, end-user ids and the ledger: its directory is made (or
    /// tightened to) 0700 and the database, its WAL and shared-memory files 0600, at every open.
    pub async fn open(path: &Path) -> R<Self> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            private_dir(dir)?;
        }
        let mut wait = Duration::from_millis(20);
        let store = loop {
            match Self::open_once(path).await {
                Err(StoreError::Unavailable(m))
                    if (m.contains("locked") || m.contains("busy"))
                        && wait < Duration::from_secs(3) =>
                {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                other => break other?,
            }
        };
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            private_file(Path::new(&file))?;
        }
        Ok(store)
    }

    async fn open_once(path: &Path) -> R<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Erased and destroyed content (an end user's id, a data key) is overwritten on
            // disk, not left in free pages.
            .pragma("secure_delete", "ON")
            .pragma("cache_size", CACHE_KIB);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts.clone())
            .await?;
        // The ledger's connection runs each table's multi-row statements in up to nine chunk
        // sizes (`multirow`): some 100 distinct statements, all kept prepared.
        let ledger = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(opts.statement_cache_capacity(256));
        let store = SqliteStore { pool, ledger };
        store.migrate().await?;
        Ok(store)
    }

    /// Closes the pools; every later call answers `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
        self.ledger.close().await;
    }

    async fn migrate(&self) -> R<()> {
        // IMMEDIATE takes the write lock at once: a second process starting on the same directory
        // waits (busy_timeout), then finds the migrations applied.
        self.write(async |conn| apply_migrations(conn).await).await
    }

    /// One row by id, mapped, or `NotFound("<what> <id>")`.
    async fn one<T>(
        &self,
        sql: &'static str,
        id: &str,
        map: fn(&SqliteRow) -> R<T>,
        what: &str,
    ) -> R<T> {
        sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| map(&r))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("{what} {id}")))
    }

    /// A page of rows ordered by id; `sql` binds `?1` the cursor, `?2` the id filter (JSON array
    /// or NULL), `?3` the page size + 1.
    async fn id_page<T>(
        &self,
        sql: &'static str,
        ids: Option<&[String]>,
        req: &PageRequest,
        map: fn(&SqliteRow) -> R<T>,
        id_of: fn(&T) -> String,
    ) -> R<Page<T>> {
        let size = req.size();
        let rows = sqlx::query(sql)
            .bind(req.after.clone().unwrap_or_default())
            .bind(id_filter(ids))
            .bind(i64::from(size) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(map).collect::<R<Vec<_>>>()?;
        Ok(page(items, size, id_of))
    }

    /// Runs `f` in a transaction (`BEGIN IMMEDIATE`, so writers queue instead of failing).
    async fn write<T, F>(&self, f: F) -> R<T>
    where
        F: AsyncFnOnce(&mut SqliteConnection) -> R<T>,
    {
        Self::write_on(&self.pool, f).await
    }

    /// [`Self::write`] on the ledger writer's own connection.
    async fn write_ledger<T, F>(&self, f: F) -> R<T>
    where
        F: AsyncFnOnce(&mut SqliteConnection) -> R<T>,
    {
        Self::write_on(&self.ledger, f).await
    }

    /// A connection never goes back to its pool inside a transaction. A `COMMIT` that fails
    /// (disk full, an I/O error, a deferred constraint) may leave the transaction open; it is
    /// rolled back, and a connection whose `ROLLBACK` (or `BEGIN`) fails is closed rather than
    /// reused. Before this, one `COMMIT` that failed on a full disk left the ledger's only
    /// connection inside its transaction: every later `BEGIN` failed ("cannot start a transaction
    /// within a transaction") and the ledger wrote nothing more after the disk had room again.
    async fn write_on<T, F>(pool: &SqlitePool, f: F) -> R<T>
    where
        F: AsyncFnOnce(&mut SqliteConnection) -> R<T>,
    {
        let mut tx = Open {
            conn: pool.acquire().await?,
            open: true,
        };
        if let Err(e) = sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *tx.conn)
            .await
        {
            return Err(e.into());
        }
        let result = match f(&mut tx.conn).await {
            Ok(v) => match sqlx::raw_sql("COMMIT").execute(&mut *tx.conn).await {
                Ok(_) => {
                    tx.open = false;
                    return Ok(v);
                }
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        };
        // Already rolled back by SQLite (it does so on some errors), or the connection is
        // broken: either way a fresh one is cheaper than doubt (`tx` stays open: closed on drop).
        if sqlx::raw_sql("ROLLBACK")
            .execute(&mut *tx.conn)
            .await
            .is_ok()
        {
            tx.open = false;
        }
        result
    }
}

/// A pooled connection that may be inside a transaction. Dropped while `open` — its `BEGIN`,
/// `COMMIT` or `ROLLBACK` failed, or the future writing was dropped half-way (a client that left
/// an admin request, a task aborted at shutdown) — it is closed, not returned to the pool:
/// closing rolls SQLite's transaction back. Returned to the pool inside `BEGIN IMMEDIATE`, it
/// kept the database's write lock, and every other writer — the ledger first — failed with
/// "database is locked" until the process ended.
struct Open {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    open: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

async fn apply_migrations(conn: &mut SqliteConnection) -> R<()> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        sqlx::raw_sql(*sql).execute(&mut *conn).await?;
        if *version == NFC_EVENT_IDS {
            nfc_event_ids(conn).await?;
        }
        sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Store version 23: every stored feedback event id that is not in Unicode's composed form
/// (NFC) is rewritten in it, as the gateway keeps new ones, so a repeat of it is met; one whose
/// composed form another event of its use case already holds is left (both were counted).
/// Only ids with a byte outside printable ASCII are read: ASCII is its own NFC.
async fn nfc_event_ids(conn: &mut SqliteConnection) -> R<()> {
    use unicode_normalization::UnicodeNormalization;
    let rows = sqlx::query(
        "SELECT id, event_id FROM outcome_events
          WHERE event_id IS NOT NULL AND event_id GLOB '*[^ -~]*'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let (id, event_id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        let composed: String = event_id.nfc().collect();
        if composed != event_id {
            sqlx::query("UPDATE OR IGNORE outcome_events SET event_id = ? WHERE id = ?")
                .bind(composed)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Writes an audit event on the connection of the change it records.
async fn audit(
    conn: &mut SqliteConnection,
    actor: &str,
    action: &str,
    object_type: &str,
    object_id: &str,
    details: serde_json::Value,
) -> R<()> {
    let at = now_ms();
    let seq = sqlx::query("INSERT INTO audit_events (at, actor, action, object_type, object_id, details) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(object_type)
        .bind(object_id)
        .bind(details.to_string())
        .execute(&mut *conn)
        .await?
        .last_insert_rowid();
    let event = AuditEvent {
        seq,
        at,
        actor: actor.to_string(),
        action: action.to_string(),
        object_type: object_type.to_string(),
        object_id: object_id.to_string(),
        details,
    };
    chain::append(conn, &[chain::audit_link(&event)]).await
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// `ids` as a JSON array for `json_each`, or NULL for "no filter".
fn id_filter(ids: Option<&[String]>) -> Option<String> {
    ids.map(|ids| json(&ids))
}

fn page<T>(mut items: Vec<T>, size: u32, id: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() > size as usize {
        items.truncate(size as usize);
        items.last().map(id)
    } else {
        None
    };
    Page { items, next }
}

fn conflict(e: StoreError, msg: impl FnOnce() -> String) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(msg()),
        other => other,
    }
}

/// The pod other than `except` whose name is not `name` but reads as `key` does — read inside
/// the write that would add or rename one, so no other write comes between.
async fn look_alike(
    c: &mut SqliteConnection,
    except: Option<&str>,
    name: &str,
    key: NameKey,
) -> R<Option<Pod>> {
    let wanted = key(name);
    for row in sqlx::query("SELECT * FROM pods ORDER BY id")
        .fetch_all(&mut *c)
        .await?
    {
        let other = pod(&row)?;
        if Some(other.id.as_str()) != except && other.name != name && key(&other.name) == wanted {
            return Ok(Some(other));
        }
    }
    Ok(None)
}

/// A name key by which no two different names read the same: only the exact name is taken
/// (which the table's unique index refuses).
fn exact(name: &str) -> String {
    name.to_owned()
}

/// A look-alike where none can be.
fn no_look_alike(other: Pod) -> StoreError {
    StoreError::Conflict(format!("a pod named {:?} already exists", other.name))
}

impl PodQueries for SqliteStore {
    async fn create_pod(&self, actor: &str, name: &str, description: &str) -> R<Pod> {
        self.create_pod_unlike(actor, name, description, exact)
            .await?
            .map_err(no_look_alike)
    }

    async fn create_pod_unlike(
        &self,
        actor: &str,
        name: &str,
        description: &str,
        key: NameKey,
    ) -> R<Result<Pod, Pod>> {
        let pod = Pod {
            id: new_id("pod"),
            name: name.to_string(),
            description: description.to_string(),
            created_at: now_ms(),
        };
        self.write(async |c: &mut SqliteConnection| {
            if let Some(other) = look_alike(c, None, name, key).await? {
                return Ok(Err(other));
            }
            sqlx::query("INSERT INTO pods (id, name, description, created_at) VALUES (?, ?, ?, ?)")
                .bind(&pod.id)
                .bind(&pod.name)
                .bind(&pod.description)
                .bind(pod.created_at)
                .execute(&mut *c)
                .await?;
            audit(
                c,
                actor,
                "pod.create",
                "pod",
                &pod.id,
                serde_json::json!({"name": name}),
            )
            .await?;
            Ok(Ok(pod))
        })
        .await
        .map_err(|e| conflict(e, || format!("a pod named {name:?} already exists")))
    }

    async fn get_pod(&self, id: &str) -> R<Pod> {
        self.one("SELECT * FROM pods WHERE id = ?", id, pod, "pod")
            .await
    }

    async fn list_pods(&self, ids: Option<&[String]>, req: &PageRequest) -> R<Page<Pod>> {
        self.id_page(
            "SELECT * FROM pods WHERE id > ?1 AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2))) ORDER BY id LIMIT ?3",
            ids,
            req,
            pod,
            |x| x.id.clone(),
        )
        .await
    }

    async fn update_pod(
        &self,
        actor: &str,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> R<Pod> {
        self.update_pod_unlike(actor, id, name, description, exact)
            .await?
            .map_err(no_look_alike)
    }

    async fn update_pod_unlike(
        &self,
        actor: &str,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        key: NameKey,
    ) -> R<Result<Pod, Pod>> {
        let n = self
            .write(async |c: &mut SqliteConnection| {
                if let Some(name) = name
                    && let Some(other) = look_alike(c, Some(id), name, key).await?
                {
                    return Ok(Err(other));
                }
                let done = sqlx::query("UPDATE pods SET name = COALESCE(?, name), description = COALESCE(?, description) WHERE id = ?")
                    .bind(name)
                    .bind(description)
                    .bind(id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                if done > 0 {
                    audit(c, actor, "pod.update", "pod", id, serde_json::json!({"name": name, "description": description})).await?;
                }
                Ok(Ok(done))
            })
            .await
            .map_err(|e| conflict(e, || format!("a pod named {:?} already exists", name.unwrap_or_default())))?;
        match n {
            Err(other) => Ok(Err(other)),
            Ok(0) => Err(StoreError::NotFound(format!("pod {id}"))),
            Ok(_) => Ok(Ok(self.get_pod(id).await?)),
        }
    }
}

impl UserQueries for SqliteStore {
    async fn create_user(
        &self,
        actor: &str,
        email: &str,
        name: &str,
        org_role: Option<OrgRole>,
    ) -> R<User> {
        let user = User {
            id: new_id("usr"),
            email: email.to_string(),
            name: name.to_string(),
            org_role,
            created_at: now_ms(),
            disabled_at: None,
        };
        self.write(async |c: &mut SqliteConnection| {
            // One person, one user: an address that differs only in letter case
            // (`ALICE@example.com`) is the same address to every mail system in use.
            let taken: Option<String> =
                sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = lower(?) LIMIT 1")
                    .bind(&user.email)
                    .fetch_optional(&mut *c)
                    .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict(String::new()));
            }
            sqlx::query(
                "INSERT INTO users (id, email, name, org_role, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&user.id)
            .bind(&user.email)
            .bind(&user.name)
            .bind(org_role.map(OrgRole::as_str))
            .bind(user.created_at)
            .execute(&mut *c)
            .await?;
            audit(
                c,
                actor,
                "user.create",
                "user",
                &user.id,
                serde_json::json!({"email": email, "org_role": org_role}),
            )
            .await
        })
        .await
        .map_err(|e| conflict(e, || format!("a user with e-mail {email:?} already exists")))?;
        Ok(user)
    }

    async fn get_user(&self, id: &str) -> R<User> {
        self.one("SELECT * FROM users WHERE id = ?", id, user, "user")
            .await
    }

    async fn list_users(&self, ids: Option<&[String]>, req: &PageRequest) -> R<Page<User>> {
        self.id_page(
            "SELECT * FROM users WHERE id > ?1 AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2))) ORDER BY id LIMIT ?3",
            ids,
            req,
            user,
            |x| x.id.clone(),
        )
        .await
    }

    async fn update_user(&self, actor: &str, id: &str, patch: &UserPatch) -> R<User> {
        self.write(async |c: &mut SqliteConnection| {
            let old = sqlx::query("SELECT * FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
                .map(|r| user(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
            let mut new = old.clone();
            let mut changes = serde_json::Map::new();
            if let Some(name) = &patch.name
                && *name != old.name
            {
                changes.insert(
                    "name".into(),
                    serde_json::json!({"from": old.name, "to": name}),
                );
                new.name = name.clone();
            }
            if let Some(role) = patch.org_role
                && role != old.org_role
            {
                changes.insert(
                    "org_role".into(),
                    serde_json::json!({"from": old.org_role, "to": role}),
                );
                new.org_role = role;
            }
            if let Some(disabled) = patch.disabled
                && disabled != old.disabled_at.is_some()
            {
                changes.insert(
                    "disabled".into(),
                    serde_json::json!({"from": !disabled, "to": disabled}),
                );
                new.disabled_at = disabled.then(now_ms);
            }
            if changes.is_empty() {
                return Ok(old);
            }
            sqlx::query("UPDATE users SET name = ?, org_role = ?, disabled_at = ? WHERE id = ?")
                .bind(&new.name)
                .bind(new.org_role.map(OrgRole::as_str))
                .bind(new.disabled_at)
                .bind(id)
                .execute(&mut *c)
                .await?;
            audit(
                c,
                actor,
                "user.update",
                "user",
                id,
                serde_json::json!({"changes": changes}),
            )
            .await?;
            Ok(new)
        })
        .await
    }

    async fn set_member(
        &self,
        actor: &str,
        pod_id: &str,
        user_id: &str,
        role: PodRole,
    ) -> R<Membership> {
        let m = Membership {
            pod_id: pod_id.to_string(),
            user_id: user_id.to_string(),
            role,
            created_at: now_ms(),
        };
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO memberships (pod_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (pod_id, user_id) DO UPDATE SET role = excluded.role",
            )
            .bind(pod_id)
            .bind(user_id)
            .bind(role.as_str())
            .bind(m.created_at)
            .execute(&mut *c)
            .await?;
            audit(
                c,
                actor,
                "member.set",
                "pod",
                pod_id,
                serde_json::json!({"user_id": user_id, "role": role}),
            )
            .await
        })
        .await?;
        Ok(m)
    }

    async fn remove_member(&self, actor: &str, pod_id: &str, user_id: &str) -> R<()> {
        let n = self
            .write(async |c: &mut SqliteConnection| {
                let n = sqlx::query("DELETE FROM memberships WHERE pod_id = ? AND user_id = ?")
                    .bind(pod_id)
                    .bind(user_id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                if n > 0 {
                    audit(
                        c,
                        actor,
                        "member.remove",
                        "pod",
                        pod_id,
                        serde_json::json!({"user_id": user_id}),
                    )
                    .await?;
                }
                Ok(n)
            })
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "member {user_id} of pod {pod_id}"
            )));
        }
        Ok(())
    }

    async fn list_members(&self, pod_id: &str) -> R<Vec<Membership>> {
        let rows =
            sqlx::query("SELECT * FROM memberships WHERE pod_id = ? ORDER BY created_at, user_id")
                .bind(pod_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(membership).collect()
    }

    async fn list_members_page(&self, pod_id: &str, req: &PageRequest) -> R<Page<Membership>> {
        let size = req.size();
        let rows = sqlx::query(
            "SELECT * FROM memberships WHERE pod_id = ?1 AND user_id > ?2 ORDER BY user_id LIMIT ?3",
        )
        .bind(pod_id)
        .bind(req.after.clone().unwrap_or_default())
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(membership).collect::<R<Vec<_>>>()?;
        Ok(page(items, size, |m| m.user_id.clone()))
    }

    async fn memberships_of(&self, user_id: &str) -> R<Vec<Membership>> {
        let rows = sqlx::query("SELECT * FROM memberships WHERE user_id = ? ORDER BY pod_id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(membership).collect()
    }
}

impl UseCaseQueries for SqliteStore {
    async fn create_use_case(
        &self,
        actor: &str,
        pod_id: &str,
        name: &str,
        description: &str,
        value_model: &ValueModel,
        scores: &Scores,
        routes: &[String],
        pilot_caps: &PilotCaps,
        limits: &Limits,
    ) -> R<UseCase> {
        let now = now_ms();
        let uc = UseCase {
            id: new_id("uc"),
            pod_id: pod_id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            stage: Stage::Proposed,
            value_model: value_model.clone(),
            scores: *scores,
            routes: routes.to_vec(),
            pilot_caps: *pilot_caps,
            limits: *limits,
            slo: Slo::default(),
            gate_overrides: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO use_cases (id, pod_id, name, description, stage, value_model, scores, priority, routes, pilot_caps, limits, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&uc.id)
            .bind(&uc.pod_id)
            .bind(&uc.name)
            .bind(&uc.description)
            .bind(uc.stage.as_str())
            .bind(json(&uc.value_model))
            .bind(json(&uc.scores))
            .bind(i64::from(uc.scores.priority()))
            .bind(json(&uc.routes))
            .bind(json(&uc.pilot_caps))
            .bind(json(&uc.limits))
            .bind(now)
            .bind(now)
            .execute(&mut *c)
            .await?;
            audit(c, actor, "use_case.create", "use_case", &uc.id, serde_json::json!({"pod_id": pod_id, "name": name})).await
        })
        .await
        .map_err(|e| conflict(e, || format!("the pod already has a use case named {name:?}")))?;
        Ok(uc)
    }

    async fn get_use_case(&self, id: &str) -> R<UseCase> {
        self.one(
            "SELECT * FROM use_cases WHERE id = ?",
            id,
            use_case,
            "use case",
        )
        .await
    }

    async fn list_use_cases(&self, filter: &UseCaseFilter, req: &PageRequest) -> R<Page<UseCase>> {
        let size = req.size();
        let rows = sqlx::query(
            "SELECT * FROM use_cases WHERE id > ?1
               AND (?2 IS NULL OR pod_id IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR stage = ?3)
             ORDER BY id LIMIT ?4",
        )
        .bind(req.after.clone().unwrap_or_default())
        .bind(id_filter(filter.pod_ids.as_deref()))
        .bind(filter.stage.map(Stage::as_str))
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(use_case).collect::<R<Vec<_>>>()?;
        Ok(page(items, size, |u| u.id.clone()))
    }

    async fn update_use_case(&self, actor: &str, id: &str, patch: &UseCasePatch) -> R<UseCase> {
        /// What the write found.
        enum Done {
            Updated,
            Missing,
            ChangedSince,
        }
        let done = self
            .write(async |c: &mut SqliteConnection| {
                let Some(old) = sqlx::query(
                    "SELECT name, description, value_model, scores, routes, pilot_caps, limits, slo,
                         updated_at FROM use_cases WHERE id = ?",
                )
                .bind(id)
                .fetch_optional(&mut *c)
                .await?
                else {
                    return Ok(Done::Missing);
                };
                let updated_at: i64 = old.try_get("updated_at")?;
                if patch.unchanged_since.is_some_and(|t| t != updated_at) {
                    return Ok(Done::ChangedSince);
                }
                // Each field given, as it was and as it becomes: the audit keeps both for the
                // fields that change, so a value overwritten can be read back.
                let text = |v: Option<String>| v.map(serde_json::Value::String);
                let parsed = |col: &str| -> R<serde_json::Value> {
                    let t: Option<String> = old.try_get(col)?;
                    Ok(t.and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or(serde_json::Value::Null))
                };
                let given: [(&str, Option<serde_json::Value>, serde_json::Value); 8] = [
                    (
                        "name",
                        text(patch.name.clone()),
                        text(old.try_get("name")?).unwrap_or_default(),
                    ),
                    (
                        "description",
                        text(patch.description.clone()),
                        text(old.try_get("description")?).unwrap_or_default(),
                    ),
                    (
                        "value_model",
                        patch.value_model.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        parsed("value_model")?,
                    ),
                    (
                        "scores",
                        patch.scores.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        parsed("scores")?,
                    ),
                    (
                        "routes",
                        patch.routes.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        parsed("routes")?,
                    ),
                    (
                        "pilot_caps",
                        patch.pilot_caps.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        parsed("pilot_caps")?,
                    ),
                    (
                        "limits",
                        patch.limits.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        parsed("limits")?,
                    ),
                    (
                        "slo",
                        patch.slo.as_ref().and_then(|v| serde_json::to_value(v).ok()),
                        parsed("slo")?,
                    ),
                ];
                let fields: Vec<&str> = given
                    .iter()
                    .filter(|(_, new, _)| new.is_some())
                    .map(|(f, _, _)| *f)
                    .collect();
                let changes: serde_json::Map<String, serde_json::Value> = given
                    .into_iter()
                    .filter_map(|(f, new, was)| {
                        let new = new?;
                        (new != was).then(|| {
                            (f.to_string(), serde_json::json!({"before": was, "after": new}))
                        })
                    })
                    .collect();
                // A patch that changes nothing is not a change: nothing is written, not even
                // `updated_at`, and the audit trail records nothing.
                if changes.is_empty() {
                    return Ok(Done::Updated);
                }
                sqlx::query(
                    "UPDATE use_cases SET name = COALESCE(?, name), description = COALESCE(?, description),
                       value_model = COALESCE(?, value_model), scores = COALESCE(?, scores), priority = COALESCE(?, priority),
                       routes = COALESCE(?, routes), pilot_caps = COALESCE(?, pilot_caps), limits = COALESCE(?, limits),
                       slo = COALESCE(?, slo), updated_at = MAX(?, updated_at + 1)
                     WHERE id = ?",
                )
                .bind(patch.name.as_deref())
                .bind(patch.description.as_deref())
                .bind(patch.value_model.as_ref().map(json))
                .bind(patch.scores.as_ref().map(json))
                .bind(patch.scores.map(|s| i64::from(s.priority())))
                .bind(patch.routes.as_ref().map(json))
                .bind(patch.pilot_caps.as_ref().map(json))
                .bind(patch.limits.as_ref().map(json))
                .bind(patch.slo.as_ref().map(json))
                .bind(now_ms())
                .bind(id)
                .execute(&mut *c)
                .await?;
                audit(
                    c,
                    actor,
                    "use_case.update",
                    "use_case",
                    id,
                    serde_json::json!({"fields": fields, "changes": changes}),
                )
                .await?;
                Ok(Done::Updated)
            })
            .await
            .map_err(|e| conflict(e, || format!("the pod already has a use case named {:?}", patch.name.as_deref().unwrap_or_default())))?;
        match done {
            Done::Missing => Err(StoreError::NotFound(format!("use case {id}"))),
            Done::ChangedSince => Err(StoreError::Conflict(format!(
                "use case {id} was changed by someone else meanwhile; read it again and retry"
            ))),
            Done::Updated => self.get_use_case(id).await,
        }
    }

    async fn change_stage(
        &self,
        actor: &str,
        id: &str,
        to: Stage,
        reason: &str,
    ) -> R<(UseCase, StageChange)> {
        let change = self
            .write(async |c: &mut SqliteConnection| {
                move_stage(
                    c,
                    actor,
                    id,
                    None,
                    to,
                    reason,
                    serde_json::Value::Null,
                    None,
                )
                .await
            })
            .await?;
        Ok((self.get_use_case(id).await?, change))
    }

    async fn list_stage_changes(&self, id: &str, req: &PageRequest) -> R<Page<StageChange>> {
        let size = req.size();
        // The history is read in time order (ids break ties), so the cursor is the (time, id)
        // of the change `after` names: ids alone need not follow the times (a restored or
        // imported history keeps its times).
        let (at, after) = match &req.after {
            None => (i64::MIN, String::new()),
            Some(a) => {
                let at: Option<i64> = sqlx::query_scalar(
                    "SELECT at FROM stage_changes WHERE id = ? AND use_case_id = ?",
                )
                .bind(a)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                let at = at.ok_or_else(|| {
                    StoreError::Invalid(format!("{a} is not a stage change of use case {id}"))
                })?;
                (at, a.clone())
            }
        };
        let rows = sqlx::query(
            "SELECT * FROM stage_changes WHERE use_case_id = ? AND (at > ? OR (at = ? AND id > ?))
             ORDER BY at, id LIMIT ?",
        )
        .bind(id)
        .bind(at)
        .bind(at)
        .bind(&after)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(stage_change).collect::<R<Vec<_>>>()?;
        Ok(page(items, size, |c| c.id.clone()))
    }
}

/// Moves use case `id` to `to` — from `expected` if given (`Invalid` when it is elsewhere now) —
/// recording the change, closing its open promotion request, and auditing it with `checklist`
/// (when not null) and the `overridden` lines (kept on the use case too).
#[allow(clippy::too_many_arguments)]
pub(super) async fn move_stage(
    c: &mut SqliteConnection,
    actor: &str,
    id: &str,
    expected: Option<Stage>,
    to: Stage,
    reason: &str,
    checklist: serde_json::Value,
    overridden: Option<Vec<String>>,
) -> R<StageChange> {
    let row = sqlx::query("SELECT stage, gate_overrides FROM use_cases WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("use case {id}")))?;
    let from = parse_stage(&row.try_get::<String, _>("stage")?)?;
    if let Some(e) = expected
        && e != from
    {
        return Err(StoreError::Invalid(format!(
            "the use case moved from {} to {} meanwhile",
            e.as_str(),
            from.as_str()
        )));
    }
    if !from.can_move_to(to) {
        return Err(StoreError::Invalid(format!(
            "a use case cannot move from {} to {}",
            from.as_str(),
            to.as_str()
        )));
    }
    let change = StageChange {
        id: new_id("stg"),
        use_case_id: id.to_string(),
        from,
        to,
        actor: actor.to_string(),
        reason: reason.to_string(),
        at: now_ms(),
    };
    let mut overrides: Vec<GateOverride> = from_json(
        "gate overrides",
        &row.try_get::<String, _>("gate_overrides")?,
    )?;
    if let Some(unmet) = &overridden {
        overrides.push(GateOverride {
            stage_change_id: change.id.clone(),
            actor: actor.to_string(),
            from,
            to,
            reason: reason.to_string(),
            unmet: unmet.clone(),
            at: change.at,
        });
    }
    sqlx::query("UPDATE use_cases SET stage = ?, gate_overrides = ?, updated_at = MAX(?, updated_at + 1) WHERE id = ?")
        .bind(to.as_str())
        .bind(json(&overrides))
        .bind(change.at)
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO stage_changes (id, use_case_id, from_stage, to_stage, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(&change.id)
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(actor)
        .bind(reason)
        .bind(change.at)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "UPDATE promotion_requests SET closed_at = ? WHERE use_case_id = ? AND closed_at IS NULL",
    )
    .bind(change.at)
    .bind(id)
    .execute(&mut *c)
    .await?;
    let mut details = serde_json::json!({"from": from, "to": to, "reason": reason});
    if !checklist.is_null() {
        details["gate"] = checklist;
    }
    if let Some(unmet) = overridden {
        details["override"] = serde_json::json!({"unmet": unmet});
    }
    audit(c, actor, "use_case.stage", "use_case", id, details).await?;
    Ok(change)
}

async fn insert_key(c: &mut SqliteConnection, k: &ApiKey) -> R<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, use_case_id, user_id, name, prefix, hash, scopes, expires_at, revoked_at, replaced_by, limits, created_at, created_by, purpose)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&k.id)
    .bind(&k.use_case_id)
    .bind(k.user_id.as_deref())
    .bind(&k.name)
    .bind(&k.prefix)
    .bind(&k.hash)
    .bind(k.scopes.as_ref().map(json))
    .bind(k.expires_at)
    .bind(k.revoked_at)
    .bind(k.replaced_by.as_deref())
    .bind(json(&k.limits))
    .bind(k.created_at)
    .bind(&k.created_by)
    .bind(if k.evaluation { "evaluation" } else { "production" })
    .execute(&mut *c)
    .await?;
    Ok(())
}

impl KeyQueries for SqliteStore {
    async fn create_key(&self, actor: &str, key: &ApiKey) -> R<ApiKey> {
        self.write(async |c: &mut SqliteConnection| {
            insert_key(c, key).await?;
            audit(c, actor, "key.create", "key", &key.id, serde_json::json!({"use_case_id": key.use_case_id, "prefix": key.prefix, "scopes": key.scopes, "expires_at": key.expires_at, "evaluation": key.evaluation})).await
        })
        .await?;
        Ok(key.clone())
    }

    async fn get_key(&self, id: &str) -> R<ApiKey> {
        self.one("SELECT * FROM api_keys WHERE id = ?", id, api_key, "key")
            .await
    }

    async fn list_keys(&self, filter: &KeyFilter, req: &PageRequest) -> R<Page<ApiKey>> {
        let size = req.size();
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT k.* FROM api_keys k JOIN use_cases u ON u.id = k.use_case_id
             WHERE k.id > ?1
               AND (?2 IS NULL OR u.pod_id IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR k.use_case_id = ?3)
               AND (?4 OR ((k.revoked_at IS NULL OR k.revoked_at > ?5) AND (k.expires_at IS NULL OR k.expires_at > ?5)))
             ORDER BY k.id LIMIT ?6",
        )
        .bind(req.after.clone().unwrap_or_default())
        .bind(id_filter(filter.pod_ids.as_deref()))
        .bind(filter.use_case_id.as_deref())
        .bind(filter.include_inactive)
        .bind(now)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(api_key).collect::<R<Vec<_>>>()?;
        Ok(page(items, size, |k| k.id.clone()))
    }

    async fn revoke_key(&self, actor: &str, id: &str, at: i64) -> R<ApiKey> {
        let n = self
            .write(async |c: &mut SqliteConnection| {
                let n = sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND (revoked_at IS NULL OR revoked_at > ?)")
                    .bind(at)
                    .bind(id)
                    .bind(at)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                if n > 0 {
                    audit(c, actor, "key.revoke", "key", id, serde_json::json!({"at": at})).await?;
                }
                Ok(n)
            })
            .await?;
        let key = self.get_key(id).await?;
        if n == 0 && key.revoked_at.is_none() {
            return Err(StoreError::NotFound(format!("key {id}")));
        }
        Ok(key)
    }

    async fn rotate_key(
        &self,
        actor: &str,
        old_id: &str,
        new: &ApiKey,
        old_until: i64,
    ) -> R<(ApiKey, ApiKey)> {
        self.write(async |c: &mut SqliteConnection| {
            let n = sqlx::query(
                "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, ?1), ?1), replaced_by = ?2
                 WHERE id = ?3 AND replaced_by IS NULL AND (revoked_at IS NULL OR revoked_at > ?4)",
            )
            .bind(old_until)
            .bind(&new.id)
            .bind(old_id)
            .bind(now_ms())
            .execute(&mut *c)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Invalid(format!("key {old_id} is revoked, already rotated, or does not exist")));
            }
            insert_key(c, new).await?;
            audit(c, actor, "key.rotate", "key", old_id, serde_json::json!({"new_key_id": new.id, "old_valid_until": old_until})).await
        })
        .await?;
        Ok((self.get_key(old_id).await?, self.get_key(&new.id).await?))
    }

    async fn active_keys(&self, now: i64) -> R<Vec<(ApiKey, UseCase)>> {
        let rows = sqlx::query(
            "SELECT k.id AS k_id, k.use_case_id AS k_use_case_id, k.user_id AS k_user_id, k.name AS k_name, k.prefix AS k_prefix,
                    k.hash AS k_hash, k.scopes AS k_scopes, k.expires_at AS k_expires_at, k.revoked_at AS k_revoked_at,
                    k.replaced_by AS k_replaced_by, k.limits AS k_limits, k.created_at AS k_created_at, k.created_by AS k_created_by, k.purpose AS k_purpose, u.*
             FROM api_keys k JOIN use_cases u ON u.id = k.use_case_id
             WHERE (k.revoked_at IS NULL OR k.revoked_at > ?1) AND (k.expires_at IS NULL OR k.expires_at > ?1)",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((prefixed_api_key(r)?, use_case(r)?)))
            .collect()
    }

    async fn create_token(
        &self,
        actor: &str,
        token: &UserToken,
        max_active: usize,
    ) -> R<UserToken> {
        self.write(async |c: &mut SqliteConnection| {
            let active: i64 = sqlx::query(
                "SELECT COUNT(*) FROM user_tokens WHERE user_id = ?1 AND revoked_at IS NULL
                 AND (expires_at IS NULL OR expires_at > ?2)",
            )
            .bind(&token.user_id)
            .bind(token.created_at)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
            if usize::try_from(active).unwrap_or(usize::MAX) >= max_active {
                return Err(StoreError::Conflict(format!(
                    "user {} holds {max_active} active personal tokens, the most allowed: revoke one before issuing another",
                    token.user_id
                )));
            }
            sqlx::query("INSERT INTO user_tokens (id, user_id, name, prefix, hash, expires_at, revoked_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&token.id)
                .bind(&token.user_id)
                .bind(&token.name)
                .bind(&token.prefix)
                .bind(&token.hash)
                .bind(token.expires_at)
                .bind(token.revoked_at)
                .bind(token.created_at)
                .execute(&mut *c)
                .await?;
            audit(c, actor, "token.create", "user", &token.user_id, serde_json::json!({"token_id": token.id, "prefix": token.prefix, "expires_at": token.expires_at})).await
        })
        .await?;
        Ok(token.clone())
    }

    async fn token_by_hash(&self, hash: &str, now: i64) -> R<Option<UserToken>> {
        let row = sqlx::query(
            "SELECT * FROM user_tokens WHERE hash = ?1 AND (revoked_at IS NULL OR revoked_at > ?2) AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_token(&r)).transpose()
    }

    async fn list_tokens(&self, user_id: &str, req: &PageRequest) -> R<Page<UserToken>> {
        let size = req.size();
        let rows = sqlx::query(
            "SELECT * FROM user_tokens WHERE id > ?1 AND user_id = ?2 ORDER BY id LIMIT ?3",
        )
        .bind(req.after.clone().unwrap_or_default())
        .bind(user_id)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(user_token).collect::<R<Vec<_>>>()?;
        Ok(page(items, size, |t| t.id.clone()))
    }

    async fn revoke_token(
        &self,
        actor: &str,
        user_id: &str,
        token_id: &str,
        at: i64,
    ) -> R<UserToken> {
        self.write(async |c: &mut SqliteConnection| {
            let n = sqlx::query(
                "UPDATE user_tokens SET revoked_at = ?1
                 WHERE id = ?2 AND user_id = ?3 AND (revoked_at IS NULL OR revoked_at > ?1)",
            )
            .bind(at)
            .bind(token_id)
            .bind(user_id)
            .execute(&mut *c)
            .await?
            .rows_affected();
            let token = sqlx::query("SELECT * FROM user_tokens WHERE id = ? AND user_id = ?")
                .bind(token_id)
                .bind(user_id)
                .fetch_optional(&mut *c)
                .await?
                .map(|r| user_token(&r))
                .transpose()?
                .ok_or_else(|| StoreError::NotFound(format!("token {token_id}")))?;
            if n > 0 {
                audit(
                    c,
                    actor,
                    "token.revoke",
                    "user",
                    user_id,
                    serde_json::json!({"token_id": token_id, "prefix": token.prefix, "at": at}),
                )
                .await?;
            }
            Ok(token)
        })
        .await
    }
}

impl AuditQueries for SqliteStore {
    async fn list_audit(&self, after: i64, limit: u32) -> R<Vec<AuditEvent>> {
        let rows = sqlx::query("SELECT * FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_event).collect()
    }

    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        object_type: &str,
        object_id: &str,
        details: serde_json::Value,
    ) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            audit(c, actor, action, object_type, object_id, details).await
        })
        .await
    }

    async fn get_setting(&self, name: &str) -> R<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
    }

    async fn init_setting(&self, name: &str, value: &str) -> R<String> {
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *c)
            .await?;
            let v: String = sqlx::query("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_one(&mut *c)
                .await?
                .try_get("value")?;
            Ok(v)
        })
        .await
    }
}

/// Creates `dir` (0700) or tightens it to 0700, warning when it was open to others.
pub fn private_dir(dir: &Path) -> R<()> {
    let err = |e: std::io::Error| {
        StoreError::Unavailable(format!("cannot secure {}: {e}", dir.display()))
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:o}"),
                "the data directory was open to other users; it is now 0700"
            );
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(err)?;
    Ok(())
}

/// Tightens `file` to 0600 if it exists and is open to others.
pub fn private_file(file: &Path) -> R<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(file) else {
            return Ok(());
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| StoreError::Unavailable(format!("cannot secure {}: {e}", file.display())),
            )?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write whose future is dropped inside its transaction (a client that left, a task
    /// aborted at shutdown) does not keep the write lock: the next writes go through at once,
    /// on the main pool and on the ledger's connection, and the dropped write left nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_dropped_inside_its_transaction_does_not_keep_the_write_lock() {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-store-dropped-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store = SqliteStore::open(&dir.join("t.db")).await.unwrap();
        store
            .write(async |c: &mut SqliteConnection| {
                sqlx::raw_sql("CREATE TABLE t (x INTEGER)")
                    .execute(c)
                    .await?;
                Ok(())
            })
            .await
            .unwrap();
        for _ in 0..3 {
            let (inside, is_inside) = tokio::sync::oneshot::channel::<()>();
            let s = store.clone();
            let dropped = tokio::spawn(async move {
                s.write(async |c: &mut SqliteConnection| {
                    sqlx::raw_sql("INSERT INTO t VALUES (1)")
                        .execute(&mut *c)
                        .await?;
                    let _ = inside.send(());
                    std::future::pending::<()>().await;
                    Ok(())
                })
                .await
            });
            is_inside.await.unwrap();
            dropped.abort();
            assert!(dropped.await.unwrap_err().is_cancelled());
            // Within the busy timeout (5 s), or "database is locked".
            store
                .write(async |c: &mut SqliteConnection| {
                    sqlx::raw_sql("INSERT INTO t VALUES (2)").execute(c).await?;
                    Ok(())
                })
                .await
                .expect("the main pool writes");
            store
                .write_ledger(async |c: &mut SqliteConnection| {
                    sqlx::raw_sql("INSERT INTO t VALUES (3)").execute(c).await?;
                    Ok(())
                })
                .await
                .expect("the ledger writes");
        }
        let rows: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![2, 2, 2, 3, 3, 3],
            "the dropped writes left nothing"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A `COMMIT` that fails leaves SQLite's transaction open (here a deferred foreign key, checked
    /// at `COMMIT`; on a full disk, the write of the WAL). The ledger's one connection must not stay
    /// inside it: the next write goes through, and the failed one left nothing behind.
    #[tokio::test]
    async fn a_failed_commit_does_not_leave_the_ledger_connection_in_its_transaction() {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-store-commit-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store = SqliteStore::open(&dir.join("t.db")).await.unwrap();
        // Temporary tables live on the ledger pool's one connection.
        sqlx::raw_sql(
            "CREATE TEMP TABLE p (id INTEGER PRIMARY KEY); \
             CREATE TEMP TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .execute(&store.ledger)
        .await
        .unwrap();
        let orphan = store
            .write_ledger(async |c: &mut SqliteConnection| {
                sqlx::raw_sql("INSERT INTO c VALUES (7)").execute(c).await?;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(orphan.to_string().contains("FOREIGN KEY"), "{orphan}");
        store
            .write_ledger(async |c: &mut SqliteConnection| {
                sqlx::raw_sql("INSERT INTO p VALUES (8); INSERT INTO c VALUES (8)")
                    .execute(c)
                    .await?;
                Ok(())
            })
            .await
            .unwrap();
        let kept: Vec<i64> = sqlx::query_scalar("SELECT p FROM c")
            .fetch_all(&store.ledger)
            .await
            .unwrap();
        assert_eq!(kept, [8]);
        let record = RequestRecord {
            id: "rec_after".into(),
            ..RequestRecord::default()
        };
        store.insert_records(&[record]).await.unwrap();
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
