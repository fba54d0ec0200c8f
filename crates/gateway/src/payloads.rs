//! Storing what a request carried, as its policy's logging mode says — `none` (the default:
//! nothing), `metadata` (sizes only), `masked` (the prompt as the provider saw it, the answer with
//! every finding masked), `full` (the prompt as the client sent it, the answer as the client got
//! it) — sealed under a data key of (use case, end user, retention day) before it leaves the
//! request, so no plaintext ever reaches the ledger queue, its spill files or the database.
//!
//! Data keys are made here (random, wrapped by the master key) and kept unwrapped in memory for
//! reuse; the ledger stores each new key's wrapped form with the first payload that uses it.

use std::collections::HashMap;
use std::sync::Mutex;
use tollgate_guard::policy::Logging;
use tollgate_payload::{DataKey, MasterKey, binding, digest};
use tollgate_store::{NewDataKey, SealedPayload};

/// A day in ms.
const DAY_MS: i64 = 86_400_000;

/// What a request will store, gathered as it goes.
#[derive(Debug, Clone)]
pub struct PayloadDraft {
    /// `metadata`, `masked` or `full`.
    pub mode: Logging,
    /// Days the payload is kept.
    pub retention_days: u32,
    /// The prompt (JSON of the messages or the input).
    pub prompt: String,
    /// The answer's text, as it was shown.
    pub answer: String,
}

/// Seals payloads.
pub struct Sealer {
    master: MasterKey,
    keys: Mutex<HashMap<(String, String, i64), DataKey>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer under `master`.
    pub fn new(master: MasterKey) -> Sealer {
        Sealer {
            master,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets every data key held (after an erasure, so no destroyed key is used again).
    pub fn forget_keys(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Seals `draft` for record `record_id`, made at `at` (Unix ms).
    pub fn seal(
        &self,
        draft: &PayloadDraft,
        record_id: &str,
        use_case: &str,
        end_user_hash: &str,
        at: i64,
    ) -> SealedPayload {
        let mut out = SealedPayload {
            mode: match draft.mode {
                Logging::None => "none",
                Logging::Metadata => "metadata",
                Logging::Masked => "masked",
                Logging::Full => "full",
            }
            .to_string(),
            prompt_bytes: draft.prompt.len() as u64,
            answer_bytes: draft.answer.len() as u64,
            end_user_hash: end_user_hash.to_string(),
            ..Default::default()
        };
        if !matches!(draft.mode, Logging::Masked | Logging::Full) {
            return out;
        }
        let day = (at + i64::from(draft.retention_days) * DAY_MS).div_euclid(DAY_MS);
        let slot = (use_case.to_string(), end_user_hash.to_string(), day);
        let key = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            // Keys of days already past are never used again.
            let today = at.div_euclid(DAY_MS);
            keys.retain(|k, _| k.2 >= today);
            match keys.get(&slot) {
                Some(k) => k.clone(),
                None => {
                    let id = tollgate_store::new_id("dek");
                    let (k, wrapped) = self.master.new_data_key(&id);
                    out.new_key = Some(NewDataKey {
                        id,
                        use_case_id: use_case.to_string(),
                        end_user_hash: end_user_hash.to_string(),
                        expires_day: day,
                        wrapped,
                        kek_id: self.master.id(),
                        created_at: at,
                    });
                    keys.insert(slot, k.clone());
                    k
                }
            }
        };
        let plain = serde_json::json!({"prompt": draft.prompt, "answer": draft.answer}).to_string();
        let sealed = key.seal(
            plain.as_bytes(),
            &binding(record_id, use_case, end_user_hash),
        );
        // A key made by an earlier payload may have been lost with it (a dropped record): every
        // payload carries its key's wrapped form in memory; the store writes it once.
        if out.new_key.is_none() {
            out.new_key = Some(NewDataKey {
                id: key.id().to_string(),
                use_case_id: use_case.to_string(),
                end_user_hash: end_user_hash.to_string(),
                expires_day: day,
                wrapped: self.master.wrap(&key),
                kek_id: self.master.id(),
                created_at: at,
            });
        }
        out.digest = Some(digest(&sealed));
        out.data_key_id = Some(key.id().to_string());
        out.sealed = Some(sealed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(prompt: &str) -> PayloadDraft {
        PayloadDraft {
            mode: Logging::Full,
            retention_days: 1,
            prompt: prompt.into(),
            answer: "ok".into(),
        }
    }

    /// A key made for an earlier payload is reused, and the later payload carries it too (the
    /// earlier one may be dropped before the store writes its key): the second opens with
    /// nothing but its own payload. Keys of days gone are no longer held.
    #[test]
    fn every_payload_carries_its_key_and_past_days_keys_are_let_go() {
        let master = MasterKey::from_bytes([3; 32]);
        let sealer = Sealer::new(MasterKey::from_bytes([3; 32]));
        let first = sealer.seal(&draft("one"), "rec_1", "uc", "eu", 1_000);
        let second = sealer.seal(&draft("two"), "rec_2", "uc", "eu", 2_000);
        assert_eq!(first.data_key_id, second.data_key_id, "the key is reused");
        let carried = second.new_key.expect("the reused key is carried");
        assert_eq!(Some(&carried.id), second.data_key_id.as_ref());
        assert_eq!(carried.expires_day, 1);
        let key = master.unwrap_key(&carried.id, &carried.wrapped).unwrap();
        let plain = key
            .open(
                second.sealed.as_deref().unwrap(),
                &binding("rec_2", "uc", "eu"),
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["prompt"], "two");
        // Two days on, the first day's key is not held any more.
        let later = sealer.seal(&draft("three"), "rec_3", "uc", "eu", 2 * DAY_MS + 5);
        assert_ne!(later.data_key_id, second.data_key_id);
        let held = sealer.keys.lock().unwrap();
        assert_eq!(held.len(), 1);
        assert!(held.keys().all(|k| k.2 == 3), "{:?}", held.keys());
    }
}
