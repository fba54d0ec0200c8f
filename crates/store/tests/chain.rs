//! The audit chain over a real SQLite file: every request record and every audit event becomes an
//! entry in the same transaction; checkpoints are signed; and tampering with the database itself
//! — a modified, deleted, inserted or reordered row or entry, a forged checkpoint — is named by
//! the verifier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sqlx::Executor;
use tollgate_audit::Signer;
use tollgate_store::chain::{Cadence, checkpoint, verify, verify_with};
use tollgate_store::*;

fn temp_db(name: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!(
            "tollgate-chain-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ))
        .join("tollgate.db")
}

fn record(i: u64) -> RequestRecord {
    RequestRecord {
        id: format!("rec_{i:04}"),
        request_id: format!("req_{i}"),
        at: 1_000 + i as i64,
        key_id: "key_a".into(),
        use_case_id: "uc_a".into(),
        pod_id: "pod_a".into(),
        end_user_hash: Some(format!("u{i}")),
        endpoint: "chat".into(),
        route: "m".into(),
        status: 200,
        outcome: "ok".into(),
        input_tokens: 100 + i,
        output_tokens: 50 + i,
        cost_nano_usd: Some(1_000 + i),
        cost_split: [1_000 + i, 0, 0, 0, 0],
        price_source: "catalog:test".into(),
        usage_source: "reported".into(),
        guard: Some(r#"{"input":"ran","output":"ran","findings":[]}"#.into()),
        policy: Some("builtin".into()),
        ..Default::default()
    }
}

const CADENCE: Cadence = Cadence {
    every: 10,
    interval_ms: 60_000,
};

/// A store with audit events and 30 records (40 entries), checkpointed every 10 entries as they
/// were written, plus its signer and a raw connection to tamper with.
async fn chained(name: &str) -> (Store, Signer, sqlx::SqlitePool) {
    let path = temp_db(name);
    let store = Store::open(&path).await.unwrap();
    let signer = Signer::from_bytes(&[3; 32]);
    assert!(
        checkpoint(&store, &signer, CADENCE, 0, false)
            .await
            .unwrap()
            .is_some(),
        "the first checkpoint is always due"
    );
    for p in 0..10 {
        store
            .create_pod("admin", &format!("pod-{p}"), "")
            .await
            .unwrap();
    }
    for batch in 0..3 {
        let recs: Vec<RequestRecord> = (0..10).map(|i| record(batch * 10 + i)).collect();
        store.insert_records(&recs).await.unwrap();
        assert!(
            checkpoint(&store, &signer, CADENCE, 1 + batch as i64, false)
                .await
                .unwrap()
                .is_some()
        );
    }
    // Not due: nothing new, not long since.
    assert!(
        checkpoint(&store, &signer, CADENCE, 10, false)
            .await
            .unwrap()
            .is_none()
    );
    // Silence is checkpointed after the interval.
    assert!(
        checkpoint(&store, &signer, CADENCE, 70_000, false)
            .await
            .unwrap()
            .is_some()
    );
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // The append-only triggers refuse changes...
    assert!(
        raw.execute("DELETE FROM chain_entries WHERE seq = 1")
            .await
            .is_err()
    );
    assert!(
        raw.execute("UPDATE chain_checkpoints SET at = 0")
            .await
            .is_err()
    );
    // ... but whoever has the file can drop them: the tests below play that part.
    for t in [
        "chain_entries_no_update",
        "chain_entries_no_delete",
        "chain_checkpoints_no_update",
        "chain_checkpoints_no_delete",
        "audit_events_no_update",
        "audit_events_no_delete",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}")))
            .execute(&raw)
            .await
            .unwrap();
    }
    (store, signer, raw)
}

async fn check(store: &Store, signer: &Signer) -> tollgate_audit::Report {
    verify(store, signer.verifying_key(), None, None, None, |_, _| {})
        .await
        .unwrap()
}

#[tokio::test]
async fn every_record_and_event_is_an_entry_and_the_chain_verifies() {
    let (store, signer, _raw) = chained("ok").await;
    let (head, _) = store.chain_head().await.unwrap();
    assert_eq!(head, 40, "10 audit events and 30 records");
    let page = store.chain_page(1, 100).await.unwrap();
    assert_eq!(page.iter().filter(|r| r.kind == "audit").count(), 10);
    assert_eq!(page.iter().filter(|r| r.kind == "request").count(), 30);
    // The chain covers the pseudonym, not an end user's id.
    let rec = page.iter().find(|r| r.kind == "request").unwrap();
    assert_eq!(rec.body.as_ref().unwrap()["data"]["end_user_hash"], "u0");
    assert!(rec.body.as_ref().unwrap()["data"].get("end_user").is_none());
    let r = check(&store, &signer).await;
    assert_eq!(r.broken, None, "{r:?}");
    assert_eq!((r.entries, r.checkpoints, r.signed_through), (40, 5, 40));
    // A range verifies on its own.
    let r = verify(
        &store,
        signer.verifying_key(),
        None,
        Some(15),
        Some(33),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!((r.broken, r.entries), (None, 19));
    // Another key: every checkpoint is a forgery.
    let other = Signer::from_bytes(&[4; 32]);
    assert!(
        check(&store, &other)
            .await
            .broken
            .unwrap()
            .problem
            .contains("forged")
    );
}

#[tokio::test]
async fn a_modified_record_or_event_is_named() {
    let (store, signer, raw) = chained("modified").await;
    raw.execute("UPDATE request_records SET cost_nano_usd = 1 WHERE id = 'rec_0013'")
        .await
        .unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    // Entries: 10 audit events, then records 0.. → rec_0013 is entry 24.
    assert_eq!(b.seq, 24, "{b}");
    assert!(b.problem.contains("rec_0013"), "{b}");
    let (store, signer, raw) = chained("modified-event").await;
    raw.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3")
        .await
        .unwrap();
    assert_eq!(check(&store, &signer).await.broken.unwrap().seq, 3);
}

#[tokio::test]
async fn a_deleted_entry_or_row_is_named() {
    let (store, signer, raw) = chained("deleted").await;
    raw.execute("DELETE FROM chain_entries WHERE seq = 17")
        .await
        .unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert_eq!(b.seq, 17, "{b}");
    assert!(b.problem.contains("missing"), "{b}");
    let (store, signer, raw) = chained("deleted-row").await;
    raw.execute("DELETE FROM request_records WHERE id = 'rec_0020'")
        .await
        .unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert_eq!(b.seq, 31, "{b}");
    assert!(b.problem.contains("gone"), "{b}");
}

#[tokio::test]
async fn entries_cut_off_at_the_end_are_named() {
    // The last entries (and the rows behind them) deleted: the checkpoint over them says so.
    let (store, signer, raw) = chained("cut-end").await;
    raw.execute("DELETE FROM chain_entries WHERE seq > 35")
        .await
        .unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert_eq!(b.seq, 40, "{b}");
    assert!(b.problem.contains("chain ends at 35"), "{b}");
    // Everything deleted.
    let (store, signer, raw) = chained("cut-all").await;
    raw.execute("DELETE FROM chain_entries").await.unwrap();
    assert!(check(&store, &signer).await.broken.is_some());
    // A range that ends before the cut still verifies on its own.
    let (store, signer, raw) = chained("cut-range").await;
    raw.execute("DELETE FROM chain_entries WHERE seq > 35")
        .await
        .unwrap();
    let r = verify(
        &store,
        signer.verifying_key(),
        None,
        None,
        Some(30),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(r.broken, None, "{r:?}");
}

#[tokio::test]
async fn a_row_outside_the_chain_is_named() {
    let (store, signer, raw) = chained("unchained").await;
    raw.execute("INSERT INTO audit_events (at, actor, action, object_type, object_id, details) VALUES (5, 'admin', 'pod.create', 'pod', 'pod_fake', '{}')").await.unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert!(b.problem.contains("not in the chain"), "{b}");
    let (store, signer, raw) = chained("unchained-record").await;
    raw.execute("INSERT INTO request_records (id, request_id, at, key_id, use_case_id, pod_id, endpoint, route, stream, attempts, status, outcome, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, price_source, usage_source, latency_ms) VALUES ('rec_fake', 'r', 1, 'k', 'u', 'p', 'chat', 'm', 0, 1, 200, 'ok', 0, 0, 0, 0, 0, 'none', 'none', 1)").await.unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert!(b.problem.contains("rec_fake"), "{b}");
}

#[tokio::test]
async fn an_inserted_entry_is_named() {
    let (store, signer, raw) = chained("inserted").await;
    // Room at 12 (numbers moved up through negatives, so the key never collides), then a forged
    // audit event and its entry there.
    raw.execute("UPDATE chain_entries SET seq = -(seq + 1) WHERE seq >= 12")
        .await
        .unwrap();
    raw.execute("UPDATE chain_entries SET seq = -seq WHERE seq < 0")
        .await
        .unwrap();
    raw.execute("INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, details) VALUES (999, 5, 'admin', 'pod.create', 'pod', 'pod_fake', '{}')").await.unwrap();
    let fake = format!(
        "INSERT INTO chain_entries (seq, kind, ref, hash) VALUES (12, 'audit', '999', '{}')",
        "ab".repeat(32)
    );
    sqlx::query(sqlx::AssertSqlSafe(fake))
        .execute(&raw)
        .await
        .unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert_eq!(b.seq, 12, "{b}");
}

#[tokio::test]
async fn reordered_entries_are_named() {
    let (store, signer, raw) = chained("reordered").await;
    raw.execute("UPDATE chain_entries SET ref = CASE ref WHEN 'rec_0005' THEN 'rec_0006' ELSE 'rec_0005' END WHERE ref IN ('rec_0005', 'rec_0006')").await.unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert_eq!(b.seq, 16, "{b}");
}

#[tokio::test]
async fn a_forged_checkpoint_is_named() {
    let (store, signer, raw) = chained("forged").await;
    raw.execute(
        "UPDATE chain_checkpoints SET text = replace(text, 'size 20', 'size 19') WHERE size = 20",
    )
    .await
    .unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert!(b.problem.contains("forged"), "{b}");
    // A checkpoint removed: the next one does not follow.
    let (store, signer, raw) = chained("removed-cp").await;
    raw.execute("DELETE FROM chain_checkpoints WHERE size = 20")
        .await
        .unwrap();
    let b = check(&store, &signer).await.broken.unwrap();
    assert!(b.problem.contains("does not follow"), "{b}");
}

/// Policies are enforced from their table, which the chain does not hold: a version edited in
/// the database, or one inserted without its audit event, is named — the events that set them
/// are in the chain (attack 2026-12-04e F3: an edit turned the secrets guard on and off and
/// verify said OK).
#[tokio::test]
async fn a_policy_edited_in_the_database_is_named() {
    for (tamper, named) in [
        (
            "UPDATE policies SET document = replace(document, 'block', 'allow') WHERE scope_id = ''",
            "the org default policy, version 1",
        ),
        (
            "UPDATE policies SET document = NULL WHERE scope_id = 'uc_x' AND version = 1",
            "the policy of use case uc_x, version 1",
        ),
        (
            "INSERT INTO policies (scope_id, version, document, created_at, created_by) VALUES ('uc_x', 3, '{}', 1, 'x')",
            "the policy of use case uc_x, version 3",
        ),
    ] {
        let (store, signer, raw) = chained("policy").await;
        store
            .put_policy("admin", "", Some(r#"{"secrets": "block"}"#), "first", 1)
            .await
            .unwrap();
        store
            .put_policy("admin", "uc_x", Some(r#"{"default": "mask"}"#), "", 2)
            .await
            .unwrap();
        store
            .put_policy("admin", "uc_x", None, "removed", 3)
            .await
            .unwrap();
        let report = check(&store, &signer).await;
        assert!(report.broken.is_none(), "{report:?}");
        raw.execute("DROP TRIGGER policies_no_update")
            .await
            .unwrap();
        raw.execute(sqlx::AssertSqlSafe(tamper)).await.unwrap();
        let b = check(&store, &signer).await.broken.unwrap();
        assert!(
            b.problem.contains(named) && b.problem.contains("not the one its audit event set"),
            "{tamper}: {b}"
        );
    }
}

/// The chain's end and its latest checkpoints deleted together leave a shorter chain that is
/// consistent in itself: verify alone cannot tell. Given the checkpoints kept outside (an
/// earlier export's), it names the cut; kept checkpoints that still hold verify, and a kept
/// one that is forged is named (attack 2026-12-04e F2).
#[tokio::test]
async fn a_cut_end_with_its_checkpoints_is_named_by_a_kept_checkpoint() {
    let (store, signer, raw) = chained("cut-kept").await;
    let kept: Vec<tollgate_audit::SignedCheckpoint> = store
        .checkpoints()
        .await
        .unwrap()
        .iter()
        .map(|c| tollgate_audit::SignedCheckpoint {
            text: c.text.clone(),
            signature: c.signature.clone(),
            key_id: c.key_id.clone(),
        })
        .collect();
    let with = |kept: Vec<tollgate_audit::SignedCheckpoint>| {
        let (store, key) = (&store, signer.verifying_key());
        async move {
            verify_with(store, key, None, None, None, &kept, |_, _| {})
                .await
                .unwrap()
        }
    };
    assert_eq!(with(kept.clone()).await.broken, None, "nothing cut yet");
    // The last batch's entries, their records and the checkpoints over them: gone.
    raw.execute("DELETE FROM chain_entries WHERE seq > 30")
        .await
        .unwrap();
    raw.execute("DELETE FROM request_records WHERE id IN (SELECT id FROM request_records ORDER BY id DESC LIMIT 10)")
        .await
        .unwrap();
    raw.execute("DELETE FROM chain_checkpoints WHERE size > 30")
        .await
        .unwrap();
    let alone = check(&store, &signer).await;
    assert_eq!(alone.broken, None, "consistent in itself: {alone:?}");
    let b = with(kept.clone()).await.broken.unwrap();
    assert!(b.problem.contains("chain ends at 30"), "{b}");
    // The kept checkpoints up to the cut hold.
    let before: Vec<_> = kept
        .iter()
        .filter(|k| tollgate_audit::Checkpoint::parse(&k.text).unwrap().size <= 30)
        .cloned()
        .collect();
    assert_eq!(with(before).await.broken, None);
    // A kept checkpoint with another signature is named, not trusted.
    let mut forged = kept.last().unwrap().clone();
    forged.signature = kept[0].signature.clone();
    assert!(with(vec![forged]).await.broken.is_some());
}
