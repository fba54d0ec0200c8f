//! Patterns: immutable versions and movable labels.

use super::{R, SqliteStore, audit};
use crate::StoreError;
use crate::model::{Pattern, PatternVersion};
use crate::queries::PatternQueries;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use std::collections::BTreeMap;

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
    async fn patterns_where(&self, name: Option<&str>) -> R<Vec<Pattern>> {
        let heads =
            sqlx::query("SELECT * FROM patterns WHERE (?1 IS NULL OR name = ?1) ORDER BY name")
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
        let versions = sqlx::query(
            "SELECT * FROM pattern_versions WHERE (?1 IS NULL OR name = ?1) ORDER BY name, version",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let labels = sqlx::query(
            "SELECT name, label, version FROM pattern_labels WHERE (?1 IS NULL OR name = ?1)",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(heads.len());
        for h in &heads {
            let n: String = h.try_get("name")?;
            let mut vs = Vec::new();
            for v in versions
                .iter()
                .filter(|v| v.try_get::<String, _>("name").ok().as_ref() == Some(&n))
            {
                vs.push(version(v)?);
            }
            let mut ls = BTreeMap::new();
            for l in labels
                .iter()
                .filter(|l| l.try_get::<String, _>("name").ok().as_ref() == Some(&n))
            {
                ls.insert(l.try_get("label")?, l.try_get("version")?);
            }
            out.push(Pattern {
                name: n,
                pod_id: h.try_get("pod_id")?,
                description: h.try_get("description")?,
                created_at: h.try_get("created_at")?,
                created_by: h.try_get("created_by")?,
                versions: vs,
                labels: ls,
            });
        }
        Ok(out)
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
}
