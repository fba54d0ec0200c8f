//! Guard policies: an append-only line of versions per scope (the org default is scope `""`).

use super::{R, SqliteStore, audit};
use crate::StoreError;
use crate::model::{Page, PageRequest, PolicyVersion};
use crate::queries::PolicyQueries;
use sqlx::{Row, SqliteConnection};

fn version(r: &sqlx::sqlite::SqliteRow) -> R<PolicyVersion> {
    Ok(PolicyVersion {
        scope_id: r.try_get("scope_id")?,
        version: r.try_get("version")?,
        document: r.try_get("document")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        note: r.try_get("note")?,
    })
}

impl PolicyQueries for SqliteStore {
    async fn put_policy(
        &self,
        actor: &str,
        scope_id: &str,
        document: Option<&str>,
        note: &str,
        at: i64,
    ) -> R<PolicyVersion> {
        if scope_id.is_empty() && document.is_none() {
            return Err(StoreError::Invalid(
                "the org default policy can be replaced, not removed".into(),
            ));
        }
        self.write(async |c: &mut SqliteConnection| {
            // The version is read and written in the writer's transaction: two writers never
            // get the same number.
            let last: Option<(i64, Option<String>)> = sqlx::query(
                "SELECT version, document FROM policies WHERE scope_id = ? ORDER BY version DESC LIMIT 1",
            )
            .bind(scope_id)
            .fetch_optional(&mut *c)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?;
            if document.is_none() && last.as_ref().is_none_or(|(_, d)| d.is_none()) {
                return Err(StoreError::NotFound(format!("a policy of use case {scope_id}")));
            }
            let v = PolicyVersion {
                scope_id: scope_id.to_string(),
                version: last.map_or(1, |(n, _)| n + 1),
                document: document.map(str::to_string),
                created_at: at,
                created_by: actor.to_string(),
                note: note.to_string(),
            };
            sqlx::query(
                "INSERT INTO policies (scope_id, version, document, created_at, created_by, note) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&v.scope_id)
            .bind(v.version)
            .bind(&v.document)
            .bind(v.created_at)
            .bind(&v.created_by)
            .bind(&v.note)
            .execute(&mut *c)
            .await?;
            let (action, object_type, object_id) = match (scope_id, document) {
                ("", _) => ("policy.set", "policy", "default"),
                (_, Some(_)) => ("policy.set", "use_case", scope_id),
                (_, None) => ("policy.remove", "use_case", scope_id),
            };
            // The audit event says which version and why, and what the document says (a policy
            // holds no secret: terms and thresholds).
            audit(
                c,
                actor,
                action,
                object_type,
                object_id,
                serde_json::json!({"version": v.version, "note": v.note, "document": v.document}),
            )
            .await?;
            Ok(v)
        })
        .await
    }

    async fn current_policies(&self) -> R<Vec<PolicyVersion>> {
        let rows = sqlx::query(
            "SELECT p.* FROM policies p
               JOIN (SELECT scope_id, MAX(version) AS version FROM policies GROUP BY scope_id) last
                 ON p.scope_id = last.scope_id AND p.version = last.version
              WHERE p.document IS NOT NULL ORDER BY p.scope_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version).collect()
    }

    async fn policy_versions_page(
        &self,
        scope_id: &str,
        after: i64,
        limit: u32,
    ) -> R<Page<PolicyVersion>> {
        let size = PageRequest { after: None, limit }.size();
        let rows = sqlx::query(
            "SELECT * FROM policies WHERE scope_id = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
        )
        .bind(scope_id)
        .bind(after)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(version).collect::<R<Vec<_>>>()?;
        Ok(super::page(items, size, |v| v.version.to_string()))
    }

    async fn latest_policy(&self, scope_id: &str) -> R<Option<PolicyVersion>> {
        sqlx::query("SELECT * FROM policies WHERE scope_id = ? ORDER BY version DESC LIMIT 1")
            .bind(scope_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(version)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest version of a scope is its last (a removal too), whatever the other scopes
    /// hold; a scope with none has none.
    #[tokio::test]
    async fn the_latest_policy_is_the_scopes_newest_version() {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-store-latest-policy-{}-{}",
            std::process::id(),
            super::super::now_ms()
        ));
        let store = SqliteStore::open(&dir.join("t.db")).await.unwrap();
        assert!(store.latest_policy("").await.unwrap().is_none());
        for (scope, doc, at) in [
            ("", Some("{}"), 1),
            ("uc_a", Some("{\"a\":1}"), 2),
            ("", Some("{\"b\":2}"), 3),
            ("uc_a", None, 4),
            ("uc_b", Some("{\"c\":3}"), 5),
        ] {
            store.put_policy("t", scope, doc, "", at).await.unwrap();
        }
        let got = |v: Option<PolicyVersion>| v.map(|v| (v.version, v.document));
        assert_eq!(
            got(store.latest_policy("").await.unwrap()),
            Some((2, Some("{\"b\":2}".to_string())))
        );
        assert_eq!(
            got(store.latest_policy("uc_a").await.unwrap()),
            Some((2, None))
        );
        assert_eq!(
            got(store.latest_policy("uc_b").await.unwrap()),
            Some((1, Some("{\"c\":3}".to_string())))
        );
        assert!(store.latest_policy("uc_c").await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
