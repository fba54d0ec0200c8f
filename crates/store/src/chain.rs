//! Driving the audit chain over a store: writing checkpoints when they are due, verifying the
//! chain (or a range of it) against its checkpoints, and exporting it for an external verifier.

use crate::keys::KeySecret;
use crate::model::{CheckpointRow, RecordSide};
use crate::queries::ChainQueries;
use crate::{Store, StoreError};
use sha2::{Digest as _, Sha256};
/// What [`verify`] found.
pub use tollgate_audit::{Break, Report};
use tollgate_audit::{
    Checkpoint, Entry, GENESIS, SignedCheckpoint, Signer, Verifier, checkpoint_hash, merkle_root,
    unhex,
};

/// When checkpoints are written.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// After this many new entries.
    pub every: u64,
    /// Or after this long, ms (even with nothing new: silence is provable).
    pub interval_ms: i64,
}

/// Writes a checkpoint if one is due at `now` (or `force`); the checkpoint written, if any.
/// The first checkpoint of a store is always due.
pub async fn checkpoint(
    store: &Store,
    signer: &Signer,
    cadence: Cadence,
    now: i64,
    force: bool,
) -> Result<Option<CheckpointRow>, StoreError> {
    store
        .write_checkpoint(|last, (size, head), leaves| {
            let due = match last {
                None => true,
                Some(l) => {
                    force
                        || u64::try_from(size - l.size).unwrap_or(0) >= cadence.every
                        || now - l.at >= cadence.interval_ms
                }
            };
            if !due {
                return None;
            }
            let cp = Checkpoint {
                size,
                from: last.map_or(1, |l| l.size + 1),
                head,
                root: merkle_root(leaves),
                prev: last.map_or(GENESIS, |l| checkpoint_hash(&l.text)),
                at: now,
            };
            let signed = signer.sign(&cp);
            Some(CheckpointRow {
                size,
                at: now,
                text: signed.text,
                signature: signed.signature,
                key_id: signed.key_id,
            })
        })
        .await
}

fn signed(c: &CheckpointRow) -> SignedCheckpoint {
    SignedCheckpoint {
        text: c.text.clone(),
        signature: c.signature.clone(),
        key_id: c.key_id.clone(),
    }
}

/// Verifies entries `from..=to` (the whole chain by default) and every checkpoint over them,
/// with the public key `key`; names the first broken link. Over the whole chain it also checks
/// what the chain covers by reference: sealed payloads against their digests, and — given the
/// server `secret` that keys the pseudonyms — end users' ids against their pseudonyms.
pub async fn verify(
    store: &Store,
    key: tollgate_audit::VerifyingKey,
    secret: Option<&KeySecret>,
    from: Option<i64>,
    to: Option<i64>,
    progress: impl FnMut(i64, i64),
) -> Result<Report, StoreError> {
    verify_with(store, key, secret, from, to, &[], progress).await
}

/// [`verify`], with checkpoints `kept` outside the store (an earlier `tollgate audit export`'s
/// `checkpoints.jsonl`) checked beside the stored ones: the chain's end and its latest
/// checkpoints deleted together leave a shorter chain that is consistent in itself, and only a
/// checkpoint kept elsewhere shows it was longer (attack 2026-12-04e F2). A kept checkpoint is
/// checked like a stored one: its signature, its place after the one before it, and the entries
/// it names.
pub async fn verify_with(
    store: &Store,
    key: tollgate_audit::VerifyingKey,
    secret: Option<&KeySecret>,
    from: Option<i64>,
    to: Option<i64>,
    kept: &[SignedCheckpoint],
    mut progress: impl FnMut(i64, i64),
) -> Result<Report, StoreError> {
    let (head, _) = store.chain_head().await?;
    let whole = to.is_none();
    let from = from.unwrap_or(1).max(1);
    let to = to.unwrap_or(head).min(head);
    let prev = if from == 1 {
        GENESIS
    } else {
        let h = store.chain_hashes(from - 1, from - 1).await?;
        match h.first().and_then(|h| unhex(h)) {
            Some(h) => h,
            None => {
                return Ok(Report {
                    broken: Some(Break {
                        seq: from - 1,
                        problem: "is missing: the range cannot be anchored".into(),
                    }),
                    ..Default::default()
                });
            }
        }
    };
    // Checking to the end, every checkpoint counts: one naming entries past the end says the
    // end was cut off. A range stops at its own end.
    let mut cps: Vec<SignedCheckpoint> = store
        .checkpoints()
        .await?
        .iter()
        .filter(|c| whole || c.size <= to)
        .map(signed)
        .collect();
    for k in kept {
        let size = tollgate_audit::Checkpoint::parse(&k.text).map_or(i64::MAX, |c| c.size);
        if (whole || size <= to) && !cps.iter().any(|c| c.text == k.text) {
            cps.push(k.clone());
        }
    }
    let mut v = Verifier::new(key, from, prev, &cps, from == 1);
    let mut next = from;
    while next <= to && !v.is_broken() {
        let page = store.chain_page(next, 2000).await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if row.seq > to {
                break;
            }
            v.entry(&Entry {
                seq: row.seq,
                hash: unhex(&row.hash).unwrap_or([0xff; 32]),
                body: row.body.clone(),
                what: format!("{} {}", row.kind, row.reference),
            });
            if v.is_broken() {
                break;
            }
        }
        next = page.last().map_or(to + 1, |r| r.seq + 1);
        progress(next - 1, to);
    }
    let mut report = v.finish();
    // Rows the chain does not know: inserted around it.
    if whole
        && report.broken.is_none()
        && let Some((kind, reference)) = store.unchained_row().await?
    {
        report.broken = Some(Break {
            seq: report.last + 1,
            problem: format!("{kind} {reference} is in the store but not in the chain (inserted?)"),
        });
    }
    // Policies are enforced from their table; the chain covers the audit events that set them.
    // A version no event set as it is was edited in the database (attack 2026-12-04e F3).
    if whole
        && report.broken.is_none()
        && let Some((scope, version)) = store.unaudited_policy().await?
    {
        let whose = if scope.is_empty() {
            "the org default policy".to_string()
        } else {
            format!("the policy of use case {scope}")
        };
        report.broken = Some(Break {
            seq: report.last + 1,
            problem: format!(
                "{whose}, version {version}, is not the one its audit event set (edited in the database?)"
            ),
        });
    }
    if whole && report.broken.is_none() {
        report.broken = check_sides(store, secret).await?;
    }
    Ok(report)
}

/// What the chain covers only by reference, checked over the whole store: each end user's id
/// against the pseudonym in the chain (with the server secret, which keys the pseudonyms), and
/// each sealed payload whose data key is not shredded against the digest in the chain. The first
/// mismatch, as a break at the record's entry.
async fn check_sides(
    store: &Store,
    secret: Option<&KeySecret>,
) -> Result<Option<Break>, StoreError> {
    let mut after = String::new();
    loop {
        let page = store.record_sides(&after, 1000).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        after = last.id.clone();
        for side in &page {
            if let Some(problem) = side_problem(side, secret) {
                let seq = store.chain_seq_of_record(&side.id).await?.unwrap_or(0);
                return Ok(Some(Break {
                    seq,
                    problem: format!("request {}: {problem}", side.id),
                }));
            }
        }
    }
}

fn side_problem(side: &RecordSide, secret: Option<&KeySecret>) -> Option<&'static str> {
    if let (Some(secret), Some(user)) = (secret, side.end_user.as_deref())
        && side.end_user_hash.as_deref() != Some(secret.end_user_pseudonym(user).as_str())
    {
        return Some("its end user is not the one the chain covers (rewritten?)");
    }
    let mut parts = side.payload_ref.as_deref()?.splitn(3, ':');
    let (mode, digest) = (parts.next()?, parts.nth(1)?);
    if !matches!(mode, "full" | "masked") || !side.key_live {
        // Nothing sealed, or shredded: nothing left to read, nothing to check.
        return None;
    }
    match &side.sealed {
        None => Some("its stored payload is missing (deleted?)"),
        Some(sealed) if tollgate_audit::hex(&Sha256::digest(sealed)) != digest => {
            Some("its stored payload is not the one the chain covers (replaced?)")
        }
        Some(_) => None,
    }
}
