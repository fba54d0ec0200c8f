//! Sealed payloads and their data keys: written by the ledger beside their records; read back
//! for auditors; keys destroyed by retention and erasure, re-wrapped by master-key rotation.

use super::{R, SqliteStore, audit, multirow};
use crate::model::{RequestRecord, StoredDataKey, StoredPayload};
use crate::queries::PayloadQueries;
use sqlx::{Row, SqliteConnection};

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Writes the payloads of `records` (and the data keys first used by them) on the ledger's
/// connection.
pub(crate) async fn insert(c: &mut SqliteConnection, records: &[RequestRecord]) -> R<()> {
    let sealed: Vec<(&RequestRecord, &crate::model::SealedPayload)> = records
        .iter()
        .filter_map(|r| Some((r, r.payload.as_ref()?)))
        .collect();
    if sealed.is_empty() {
        return Ok(());
    }
    // The keys first: a payload's key is in the table before the payload.
    let keys: Vec<_> = sealed
        .iter()
        .filter_map(|(_, p)| p.new_key.as_ref())
        .collect();
    multirow::execute(
        c,
        (
            // Never over a destroyed key's row: a destroyed key stays destroyed.
            "INSERT OR IGNORE INTO data_keys (id, use_case_id, end_user_hash, expires_day, wrapped, kek_id, created_at)",
            7,
            "",
        ),
        &keys,
        |q, k| {
            q.bind(&k.id)
                .bind(&k.use_case_id)
                .bind(&k.end_user_hash)
                .bind(k.expires_day)
                .bind(&k.wrapped)
                .bind(&k.kek_id)
                .bind(k.created_at)
        },
    )
    .await?;
    multirow::execute(
        c,
        (
            "INSERT OR IGNORE INTO payloads (record_id, use_case_id, end_user_hash, mode, data_key_id, sealed, digest, prompt_bytes, answer_bytes, at)",
            10,
            "",
        ),
        &sealed,
        |q, (r, p)| {
            q.bind(&r.id)
                .bind(&r.use_case_id)
                .bind(&p.end_user_hash)
                .bind(&p.mode)
                .bind(&p.data_key_id)
                .bind(&p.sealed)
                .bind(&p.digest)
                .bind(i(p.prompt_bytes))
                .bind(i(p.answer_bytes))
                .bind(r.at)
        },
    )
    .await?;
    Ok(())
}

async fn destroy(c: &mut SqliteConnection, filter: &str, arg: &str, at: i64, why: &str) -> R<u64> {
    // `filter` is one of two constant fragments; the value is bound.
    let sql = format!(
        "UPDATE data_keys SET wrapped = NULL, destroyed_at = ?1, destroyed_why = ?2 WHERE wrapped IS NOT NULL AND {filter}"
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(at)
        .bind(why)
        .bind(arg)
        .execute(&mut *c)
        .await?
        .rows_affected())
}

impl PayloadQueries for SqliteStore {
    async fn get_payload(&self, record_id: &str) -> R<Option<StoredPayload>> {
        let row = sqlx::query("SELECT * FROM payloads WHERE record_id = ?")
            .bind(record_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(StoredPayload {
                record_id: r.try_get("record_id")?,
                use_case_id: r.try_get("use_case_id")?,
                end_user_hash: r.try_get("end_user_hash")?,
                mode: r.try_get("mode")?,
                data_key_id: r.try_get("data_key_id")?,
                sealed: r.try_get("sealed")?,
                digest: r.try_get("digest")?,
                prompt_bytes: u64::try_from(r.try_get::<i64, _>("prompt_bytes")?).unwrap_or(0),
                answer_bytes: u64::try_from(r.try_get::<i64, _>("answer_bytes")?).unwrap_or(0),
                at: r.try_get("at")?,
            })
        })
        .transpose()
    }

    async fn get_data_key(&self, id: &str) -> R<Option<StoredDataKey>> {
        let row = sqlx::query("SELECT * FROM data_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let at: Option<i64> = r.try_get("destroyed_at")?;
            let why: Option<String> = r.try_get("destroyed_why")?;
            Ok(StoredDataKey {
                id: r.try_get("id")?,
                wrapped: r.try_get("wrapped")?,
                kek_id: r.try_get("kek_id")?,
                destroyed: at.map(|a| (a, why.unwrap_or_default())),
            })
        })
        .transpose()
    }

    async fn destroy_expired_keys(&self, today: i64, at: i64) -> R<u64> {
        self.write(async |c: &mut SqliteConnection| {
            let n = destroy(c, "expires_day < ?3", &today.to_string(), at, "retention").await?;
            if n > 0 {
                audit(
                    c,
                    "system",
                    "data_key.destroy",
                    "data_keys",
                    "retention",
                    serde_json::json!({"keys": n, "expired_before_day": today}),
                )
                .await?;
            }
            Ok(n)
        })
        .await
    }

    async fn erase_end_user(&self, actor: &str, end_user_hash: &str, at: i64) -> R<(u64, u64)> {
        let out = self.write(async |c: &mut SqliteConnection| {
            let keys = destroy(c, "end_user_hash = ?3", end_user_hash, at, "erasure").await?;
            // The id itself goes too; its pseudonym (what the audit chain covers) stays.
            let records = sqlx::query(
                "UPDATE request_records SET end_user = NULL WHERE end_user_hash = ? AND end_user IS NOT NULL",
            )
            .bind(end_user_hash)
            .execute(&mut *c)
            .await?
            .rows_affected();
            audit(
                c,
                actor,
                "end_user.erase",
                "end_user",
                end_user_hash,
                serde_json::json!({"keys_destroyed": keys, "records": records}),
            )
            .await?;
            Ok((keys, records))
        })
        .await?;
        // The old pages may still be in the write-ahead log: fold it into the file (where
        // `secure_delete` zeroed them) and empty it.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(out)
    }

    async fn rotate_master_key(
        &self,
        actor: &str,
        new_kek_id: &str,
        rewrap: impl Fn(&str, &[u8]) -> Option<Vec<u8>> + Send + Sync,
    ) -> R<(u64, u64)> {
        self.write(async |c: &mut SqliteConnection| {
            let rows = sqlx::query("SELECT id, wrapped FROM data_keys WHERE wrapped IS NOT NULL")
                .fetch_all(&mut *c)
                .await?;
            let (mut done, mut failed) = (0u64, 0u64);
            for r in &rows {
                let id: String = r.try_get(0)?;
                let wrapped: Vec<u8> = r.try_get(1)?;
                match rewrap(&id, &wrapped) {
                    Some(w) => {
                        sqlx::query("UPDATE data_keys SET wrapped = ?, kek_id = ? WHERE id = ?")
                            .bind(w)
                            .bind(new_kek_id)
                            .bind(&id)
                            .execute(&mut *c)
                            .await?;
                        done += 1;
                    }
                    None => failed += 1,
                }
            }
            if failed > 0 {
                // All or nothing: a half-rotated table would need both keys.
                return Err(crate::StoreError::Invalid(format!(
                    "{failed} data keys do not open under the current master key; nothing was changed"
                )));
            }
            audit(
                c,
                actor,
                "master_key.rotate",
                "data_keys",
                new_kek_id,
                serde_json::json!({"keys": done, "kek_id": new_kek_id}),
            )
            .await?;
            Ok((done, failed))
        })
        .await
    }
}
