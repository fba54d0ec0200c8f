//! The audit chain in SQLite: entries appended in the writer's transaction of the rows they
//! stand for, checkpoints written under the same lock, and pages of entries with their content
//! rebuilt from the rows for the verifier.

use super::{R, SqliteStore};
use crate::StoreError;
use crate::model::{AuditEvent, ChainRow, CheckpointRow, RecordSide, RequestRecord};
use crate::queries::ChainQueries;
use serde_json::{Value, json};
use sqlx::{Row, SqliteConnection};
use std::collections::{HashMap, HashSet};
use tollgate_audit::{GENESIS, Hash, entry_bytes, entry_hash_of_bytes, hex, unhex};

/// What an entry says of the row it stands for (before its `seq` is known): the canonical
/// bytes of the row's chained fields, written before the transaction that appends it.
pub(crate) struct Link {
    kind: &'static str,
    reference: String,
    data: Vec<u8>,
}

/// The chained fields of a request record: all of it but the end user's id (its keyed
/// pseudonym stands in), so the id can be erased.
fn record_data(r: &RequestRecord) -> Value {
    let mut v = json!({
        "request_id": r.request_id, "at": r.at, "key_id": r.key_id, "use_case_id": r.use_case_id,
        "pod_id": r.pod_id, "end_user_hash": r.end_user_hash, "endpoint": r.endpoint, "route": r.route,
        "provider": r.provider, "model": r.model, "stream": r.stream, "attempts": r.attempts,
        "status": r.status, "outcome": r.outcome, "input_tokens": r.input_tokens,
        "cached_input_tokens": r.cached_input_tokens, "cache_write_tokens": r.cache_write_tokens,
        "output_tokens": r.output_tokens, "reasoning_tokens": r.reasoning_tokens,
        "cost_nano_usd": r.cost_nano_usd, "cost_split": r.cost_split, "price_source": r.price_source,
        "price_id": r.price_id, "usage_source": r.usage_source, "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms, "prompt_hash": r.prompt_hash, "policy": r.policy, "guard": r.guard, "payload_ref": r.payload_ref,
    });
    // Only evaluation records carry a purpose, so production records keep the bytes they were
    // chained with before purposes existed.
    if r.evaluation {
        v["purpose"] = json!("evaluation");
    }
    if let Some(p) = &r.pattern {
        v["pattern"] = json!(p);
    }
    v
}

fn audit_data(e: &AuditEvent) -> Value {
    json!({
        "at": e.at, "actor": e.actor, "action": e.action, "object_type": e.object_type,
        "object_id": e.object_id, "details": e.details,
    })
}

/// The canonical bytes of [`record_data`], written field by field (keys in byte order) without
/// building the JSON value: this runs for every request on the ledger writer. A test holds the
/// two to the same bytes.
fn record_canonical(r: &RequestRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(768);
    let mut c = tollgate_audit::Canon::object(&mut out);
    c.int("at", r.at)
        .int("attempts", r.attempts)
        .int("cache_write_tokens", r.cache_write_tokens)
        .int("cached_input_tokens", r.cached_input_tokens)
        .opt_int("cost_nano_usd", r.cost_nano_usd)
        .ints("cost_split", &r.cost_split)
        .opt_str("end_user_hash", r.end_user_hash.as_deref())
        .str("endpoint", &r.endpoint)
        .opt_str("guard", r.guard.as_deref())
        .int("input_tokens", r.input_tokens)
        .str("key_id", &r.key_id)
        .int("latency_ms", r.latency_ms)
        .opt_str("model", r.model.as_deref())
        .str("outcome", &r.outcome)
        .int("output_tokens", r.output_tokens);
    if let Some(p) = &r.pattern {
        c.str("pattern", p);
    }
    c.opt_str("payload_ref", r.payload_ref.as_deref())
        .str("pod_id", &r.pod_id)
        .opt_str("policy", r.policy.as_deref())
        .opt_str("price_id", r.price_id.as_deref())
        .str("price_source", &r.price_source)
        .opt_str("prompt_hash", r.prompt_hash.as_deref())
        .opt_str("provider", r.provider.as_deref());
    if r.evaluation {
        c.str("purpose", "evaluation");
    }
    c.int("reasoning_tokens", r.reasoning_tokens)
        .str("request_id", &r.request_id)
        .str("route", &r.route)
        .int("status", r.status)
        .bool("stream", r.stream)
        .opt_int("ttft_ms", r.ttft_ms)
        .str("usage_source", &r.usage_source)
        .str("use_case_id", &r.use_case_id)
        .end();
    out
}

/// The link of a request record.
pub(crate) fn record_link(r: &RequestRecord) -> Link {
    Link {
        kind: "request",
        reference: r.id.clone(),
        data: record_canonical(r),
    }
}

/// The links of `records`, made a few at a time with a yield between, so a large batch does not
/// hold a runtime worker (requests wait on it) for its whole length.
pub(crate) async fn record_links(records: &[RequestRecord]) -> Vec<Link> {
    let mut out = Vec::with_capacity(records.len());
    for chunk in records.chunks(32) {
        out.extend(chunk.iter().map(record_link));
        tokio::task::yield_now().await;
    }
    out
}

/// The link of an audit event.
pub(crate) fn audit_link(e: &AuditEvent) -> Link {
    Link {
        kind: "audit",
        reference: e.seq.to_string(),
        data: tollgate_audit::canonical(&audit_data(e)),
    }
}

/// An entry's content: its place, what it stands for, and that row's fields.
fn body(seq: i64, kind: &str, reference: &str, data: Value) -> Value {
    json!({"seq": seq, "kind": kind, "ref": reference, "data": data})
}

async fn head(c: &mut SqliteConnection) -> R<(i64, Hash)> {
    let row = sqlx::query("SELECT seq, hash FROM chain_entries ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *c)
        .await?;
    match row {
        None => Ok((0, GENESIS)),
        Some(r) => {
            let seq: i64 = r.try_get(0)?;
            let h: String = r.try_get(1)?;
            let h = unhex(&h).ok_or_else(|| {
                StoreError::Backend(format!("chain entry {seq} has a malformed hash"))
            })?;
            Ok((seq, h))
        }
    }
}

/// Appends `links` to the chain on the writer's connection (inside its transaction).
pub(crate) async fn append(c: &mut SqliteConnection, links: &[Link]) -> R<()> {
    if links.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev) = head(c).await?;
    let mut rows = Vec::with_capacity(links.len());
    for l in links {
        seq += 1;
        prev = entry_hash_of_bytes(&prev, &entry_bytes(seq, l.kind, &l.reference, &l.data));
        rows.push((seq, l.kind, l.reference.as_str(), hex(&prev)));
    }
    super::multirow::execute(
        c,
        ("INSERT INTO chain_entries (seq, kind, ref, hash)", 4, ""),
        &rows,
        |q, (s, k, r, h)| q.bind(s).bind(*k).bind(*r).bind(h),
    )
    .await?;
    Ok(())
}

fn checkpoint_row(r: &sqlx::sqlite::SqliteRow) -> R<CheckpointRow> {
    Ok(CheckpointRow {
        size: r.try_get("size")?,
        at: r.try_get("at")?,
        text: r.try_get("text")?,
        signature: r.try_get("signature")?,
        key_id: r.try_get("key_id")?,
    })
}

impl ChainQueries for SqliteStore {
    async fn chain_head(&self) -> R<(i64, String)> {
        let mut c = self.pool.acquire().await?;
        let (seq, h) = head(&mut c).await?;
        Ok((seq, hex(&h)))
    }

    async fn chain_page(&self, from_seq: i64, limit: u32) -> R<Vec<ChainRow>> {
        let rows = sqlx::query(
            "SELECT seq, kind, ref, hash FROM chain_entries WHERE seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(from_seq)
        .bind(i64::from(limit.clamp(1, 5000)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        let (mut record_ids, mut event_seqs) = (Vec::new(), Vec::new());
        for r in &rows {
            let (seq, kind, reference, hash): (i64, String, String, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            match kind.as_str() {
                "request" => record_ids.push(reference.clone()),
                "audit" => event_seqs.push(reference.parse::<i64>().unwrap_or(-1)),
                _ => {}
            }
            out.push(ChainRow {
                seq,
                kind,
                reference,
                hash,
                body: None,
            });
        }
        let records: HashMap<String, Value> = if record_ids.is_empty() {
            HashMap::new()
        } else {
            sqlx::query(
                "SELECT * FROM request_records WHERE id IN (SELECT value FROM json_each(?1))",
            )
            .bind(super::json(&record_ids))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| super::ledger::record(r).map(|rec| (rec.id.clone(), record_data(&rec))))
            .collect::<R<_>>()?
        };
        let events: HashMap<String, Value> = if event_seqs.is_empty() {
            HashMap::new()
        } else {
            sqlx::query("SELECT * FROM audit_events WHERE seq IN (SELECT value FROM json_each(?1))")
                .bind(super::json(&event_seqs))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| super::rows::audit_event(r).map(|e| (e.seq.to_string(), audit_data(&e))))
                .collect::<R<_>>()?
        };
        for row in &mut out {
            let data = match row.kind.as_str() {
                "request" => records.get(&row.reference),
                "audit" => events.get(&row.reference),
                _ => None,
            };
            row.body = data.map(|d| body(row.seq, &row.kind, &row.reference, d.clone()));
        }
        Ok(out)
    }

    async fn chain_hashes(&self, from_seq: i64, to_seq: i64) -> R<Vec<String>> {
        let rows =
            sqlx::query("SELECT hash FROM chain_entries WHERE seq >= ? AND seq <= ? ORDER BY seq")
                .bind(from_seq)
                .bind(to_seq)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn write_checkpoint(
        &self,
        make: impl FnOnce(Option<&CheckpointRow>, (i64, Hash), &[Hash]) -> Option<CheckpointRow> + Send,
    ) -> R<Option<CheckpointRow>> {
        self.write(async |c: &mut SqliteConnection| {
            let last = sqlx::query("SELECT * FROM chain_checkpoints ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *c)
                .await?
                .map(|r| checkpoint_row(&r))
                .transpose()?;
            let (size, head_hash) = head(c).await?;
            let from = last.as_ref().map_or(1, |l| l.size + 1);
            let leaves: Vec<Hash> = sqlx::query("SELECT hash FROM chain_entries WHERE seq >= ? AND seq <= ? ORDER BY seq")
                .bind(from)
                .bind(size)
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| {
                    let h: String = r.try_get(0)?;
                    unhex(&h).ok_or_else(|| StoreError::Backend("a chain entry has a malformed hash".into()))
                })
                .collect::<R<_>>()?;
            let Some(cp) = make(last.as_ref(), (size, head_hash), &leaves) else {
                return Ok(None);
            };
            sqlx::query("INSERT INTO chain_checkpoints (size, at, text, signature, key_id) VALUES (?, ?, ?, ?, ?)")
                .bind(cp.size)
                .bind(cp.at)
                .bind(&cp.text)
                .bind(&cp.signature)
                .bind(&cp.key_id)
                .execute(&mut *c)
                .await?;
            Ok(Some(cp))
        })
        .await
    }

    async fn unaudited_policy(&self) -> R<Option<(String, i64)>> {
        let row = sqlx::query(
            "SELECT p.scope_id, p.version FROM policies p
              WHERE NOT EXISTS (
                SELECT 1 FROM audit_events e
                 WHERE e.action IN ('policy.set', 'policy.remove')
                   AND e.object_id = CASE WHEN p.scope_id = '' THEN 'default' ELSE p.scope_id END
                   AND json_valid(e.details)
                   AND json_extract(e.details, '$.version') = p.version
                   AND json_extract(e.details, '$.document') IS p.document)
              ORDER BY p.scope_id, p.version LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    async fn unchained_row(&self) -> R<Option<(String, String)>> {
        let record = sqlx::query(
            "SELECT id FROM request_records WHERE id NOT IN (SELECT ref FROM chain_entries WHERE kind = 'request') LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = record {
            return Ok(Some(("request record".into(), r.try_get(0)?)));
        }
        let event = sqlx::query(
            "SELECT seq FROM audit_events WHERE CAST(seq AS TEXT) NOT IN (SELECT ref FROM chain_entries WHERE kind = 'audit') LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match event {
            Some(r) => Some(("audit event".into(), r.try_get::<i64, _>(0)?.to_string())),
            None => None,
        })
    }

    async fn record_sides(&self, after: &str, limit: u32) -> R<Vec<RecordSide>> {
        let rows = sqlx::query(
            "SELECT r.id, r.end_user, r.end_user_hash, r.payload_ref, p.sealed
               FROM request_records r LEFT JOIN payloads p ON p.record_id = r.id
              WHERE r.id > ?1
                AND (r.end_user IS NOT NULL OR r.payload_ref LIKE 'full:%' OR r.payload_ref LIKE 'masked:%')
              ORDER BY r.id LIMIT ?2",
        )
        .bind(after)
        .bind(i64::from(limit.clamp(1, 5000)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(RecordSide {
                id: r.try_get(0)?,
                end_user: r.try_get(1)?,
                end_user_hash: r.try_get(2)?,
                payload_ref: r.try_get(3)?,
                key_live: false,
                sealed: r.try_get(4)?,
            });
        }
        // Which of the named data keys are still there (not shredded).
        let keys: Vec<&str> = out
            .iter()
            .filter_map(|s| s.payload_ref.as_deref()?.split(':').nth(1))
            .collect();
        if !keys.is_empty() {
            let live: HashSet<String> = sqlx::query(
                "SELECT id FROM data_keys WHERE wrapped IS NOT NULL AND id IN (SELECT value FROM json_each(?1))",
            )
            .bind(super::json(&keys))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
            for s in &mut out {
                s.key_live = s
                    .payload_ref
                    .as_deref()
                    .and_then(|p| p.split(':').nth(1))
                    .is_some_and(|k| live.contains(k));
            }
        }
        Ok(out)
    }

    async fn chain_seq_of_record(&self, id: &str) -> R<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT seq FROM chain_entries WHERE kind = 'request' AND ref = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn checkpoints(&self) -> R<Vec<CheckpointRow>> {
        let rows = sqlx::query("SELECT * FROM chain_checkpoints ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(checkpoint_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field-by-field writer and the JSON value the verifier rebuilds from a row give the same
    /// bytes — for empty, full and awkward records (a field dropped or misspelled here fails).
    #[test]
    fn record_bytes_are_the_canonical_bytes_of_the_record_data() {
        let empty = RequestRecord::default();
        let full = RequestRecord {
            id: "rec_1".into(),
            request_id: "req \"1\"\n".into(),
            at: -5,
            key_id: "key_1".into(),
            use_case_id: "uc_1".into(),
            pod_id: "pod_é".into(),
            end_user: Some("not covered".into()),
            endpoint: "/v1/chat/completions".into(),
            route: "r\u{1}".into(),
            provider: Some("sim".into()),
            model: Some("gpt-4o-mini".into()),
            stream: true,
            attempts: u32::MAX,
            status: 503,
            outcome: "ok".into(),
            input_tokens: 1,
            cached_input_tokens: 2,
            cache_write_tokens: 3,
            output_tokens: 4,
            reasoning_tokens: 5,
            cost_nano_usd: Some(u64::MAX),
            first_choice_cost_nano_usd: Some(9),
            price_source: "catalog:1".into(),
            usage_source: "reported".into(),
            latency_ms: 6,
            ttft_ms: Some(7),
            price_id: Some("pp_1".into()),
            cost_split: [1, 2, 3, 4, u64::MAX],
            prompt_hash: Some("ab".into()),
            end_user_hash: Some("cd".into()),
            payload_ref: Some("full:k:d".into()),
            payload: None,
            policy: Some("default@1".into()),
            guard: Some("{\"input\":\"ran\"}".into()),
            session_hash: Some("not covered".into()),
            evaluation: true,
            pattern: Some("triage@3".into()),
        };
        // A production record is chained as before purposes existed; an evaluation one says so.
        assert!(
            !String::from_utf8(record_canonical(&empty))
                .unwrap()
                .contains("purpose")
        );
        assert!(
            String::from_utf8(record_canonical(&full))
                .unwrap()
                .contains(r#""purpose":"evaluation""#)
        );
        for r in [empty, full] {
            assert_eq!(
                String::from_utf8(record_canonical(&r)).unwrap(),
                String::from_utf8(tollgate_audit::canonical(&record_data(&r))).unwrap()
            );
        }
    }
}
