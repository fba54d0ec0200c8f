//! Patterns: immutable versions and movable labels.

use super::{R, SqliteStore, audit};
use crate::StoreError;
use crate::model::{Page, PageRequest, Pattern, PatternVersion};
use crate::queries::PatternQueries;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use std::collections::{BTreeMap, HashMap};

fn json(text: &str, what: &str) -> R<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("a stored pattern {what} is not JSON: {e}")))
}

fn version(r: &SqliteRow) -> R<PatternVersion> {
    Ok(PatternVersion {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        messages: json(&r.try_get::<String, _>("messages")?, "template")?,
        schema: json(&r.try_get::<String, _>("schema")?, "schema")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

impl SqliteStore {
    /// The patterns whose head rows are `heads` (in their order), with their versions and labels:
    /// three queries, and each version and label matched to its pattern by name once.
    async fn patterns_of(&self, heads: Vec<SqliteRow>) -> R<Vec<Pattern>> {
        let names = heads
            .iter()
            .map(|h| h.try_get::<String, _>("name"))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = serde_json::to_string(&names)
            .map_err(|e| StoreError::Backend(format!("pattern names: {e}")))?;
        let mut versions: HashMap<String, Vec<PatternVersion>> = HashMap::new();
        for v in sqlx::query(
            "SELECT * FROM pattern_versions WHERE name IN (SELECT value FROM json_each(?1)) ORDER BY name, version",
        )
        .bind(&filter)
        .fetch_all(&self.pool)
        .await?
        {
            let v = version(&v)?;
            versions.entry(v.name.clone()).or_default().push(v);
        }
        let mut labels: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
        for l in sqlx::query(
            "SELECT name, label, version FROM pattern_labels WHERE name IN (SELECT value FROM json_each(?1))",
        )
        .bind(&filter)
        .fetch_all(&self.pool)
        .await?
        {
            labels
                .entry(l.try_get("name")?)
                .or_default()
                .insert(l.try_get("label")?, l.try_get("version")?);
        }
        heads
            .iter()
            .zip(names)
            .map(|(h, name)| {
                Ok(Pattern {
                    versions: versions.remove(&name).unwrap_or_default(),
                    labels: labels.remove(&name).unwrap_or_default(),
                    pod_id: h.try_get("pod_id")?,
                    description: h.try_get("description")?,
                    created_at: h.try_get("created_at")?,
                    created_by: h.try_get("created_by")?,
                    name,
                })
            })
            .collect()
    }

    async fn patterns_where(&self, name: Option<&str>) -> R<Vec<Pattern>> {
        let heads =
            sqlx::query("SELECT * FROM patterns WHERE (?1 IS NULL OR name = ?1) ORDER BY name")
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
        self.patterns_of(heads).await
    }
}

impl PatternQueries for SqliteStore {
    async fn create_pattern(
        &self,
        actor: &str,
        name: &str,
        pod_id: &str,
        description: &str,
        at: i64,
    ) -> R<Pattern> {
        self.write(async |c: &mut SqliteConnection| {
            sqlx::query(
                "INSERT INTO patterns (name, pod_id, description, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(name)
            .bind(pod_id)
            .bind(description)
            .bind(at)
            .bind(actor)
            .execute(&mut *c)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("a pattern named {name} exists")),
                e => e,
            })?;
            audit(c, actor, "pattern.create", "pattern", name, serde_json::json!({"pod_id": pod_id})).await
        })
        .await?;
        self.get_pattern(name).await
    }

    async fn add_pattern_version(
        &self,
        actor: &str,
        name: &str,
        messages: &serde_json::Value,
        schema: &serde_json::Value,
        note: &str,
        at: i64,
    ) -> R<PatternVersion> {
        self.write(async |c: &mut SqliteConnection| {
            let next: i64 = sqlx::query(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM pattern_versions WHERE name = ?",
            )
            .bind(name)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
            sqlx::query(
                "INSERT INTO pattern_versions (name, version, messages, schema, note, created_at, created_by)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(name)
            .bind(next)
            .bind(messages.to_string())
            .bind(schema.to_string())
            .bind(note)
            .bind(at)
            .bind(actor)
            .execute(&mut *c)
            .await?;
            audit(c, actor, "pattern.version", "pattern", name, serde_json::json!({"version": next, "note": note})).await?;
            Ok(PatternVersion {
                name: name.to_string(),
                version: next,
                messages: messages.clone(),
                schema: schema.clone(),
                note: note.to_string(),
                created_at: at,
                created_by: actor.to_string(),
            })
        })
        .await
    }

    async fn move_pattern_label(
        &self,
        actor: &str,
        name: &str,
        label: &str,
        version: i64,
        at: i64,
    ) -> R<()> {
        self.write(async |c: &mut SqliteConnection| {
            let exists = sqlx::query("SELECT 1 FROM pattern_versions WHERE name = ? AND version = ?")
                .bind(name)
                .bind(version)
                .fetch_optional(&mut *c)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("pattern {name} version {version}")));
            }
            let from: Option<i64> = sqlx::query("SELECT version FROM pattern_labels WHERE name = ? AND label = ?")
                .bind(name)
                .bind(label)
                .fetch_optional(&mut *c)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            sqlx::query(
                "INSERT INTO pattern_labels (name, label, version, moved_at, moved_by) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (name, label) DO UPDATE SET version = excluded.version, moved_at = excluded.moved_at, moved_by = excluded.moved_by",
            )
            .bind(name)
            .bind(label)
            .bind(version)
            .bind(at)
            .bind(actor)
            .execute(&mut *c)
            .await?;
            audit(c, actor, "pattern.label", "pattern", name, serde_json::json!({"label": label, "from": from, "to": version})).await
        })
        .await
    }

    async fn get_pattern(&self, name: &str) -> R<Pattern> {
        self.patterns_where(Some(name))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("pattern {name}")))
    }

    async fn list_patterns(&self) -> R<Vec<Pattern>> {
        self.patterns_where(None).await
    }

    async fn list_patterns_page(&self, req: &PageRequest) -> R<Page<Pattern>> {
        let size = req.size();
        let heads = sqlx::query("SELECT * FROM patterns WHERE name > ?1 ORDER BY name LIMIT ?2")
            .bind(req.after.clone().unwrap_or_default())
            .bind(i64::from(size) + 1)
            .fetch_all(&self.pool)
            .await?;
        Ok(super::page(self.patterns_of(heads).await?, size, |p| {
            p.name.clone()
        }))
    }
}
