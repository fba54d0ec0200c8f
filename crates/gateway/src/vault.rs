//! The token vault: what each conversation's reversible tokens stand for, so the same value gets
//! the same token on every turn (`x-tollgate-session`) and answers can be unmasked.
//!
//! - **Encrypted**: a conversation's pairs are kept only as ChaCha20-Poly1305 ciphertext under a
//!   key made at start and never written anywhere (a memory dump shows no value in the clear
//!   between requests; a restart forgets every conversation, which only means new token numbers).
//! - **Scoped**: a conversation is found by a keyed hash of its use case and session id, so one
//!   use case can never read another's tokens, even with the same session id.
//! - **Expiring**: a conversation untouched for [`VaultLimits::ttl_ms`] is gone.
//! - **Bounded**: at most [`VaultLimits::max_sessions`] conversations of at most
//!   [`VaultLimits::max_bytes_per_session`] bytes; when full, the conversation closest to expiry
//!   makes room. A conversation over its size starts afresh (new tokens; nothing is lost but
//!   token numbering).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use tollgate_guard::{Entity, SessionTokens};

/// The vault's bounds.
#[derive(Debug, Clone, Copy)]
pub struct VaultLimits {
    /// How long a conversation is kept after its last request, ms.
    pub ttl_ms: i64,
    /// Conversations held at most.
    pub max_sessions: usize,
    /// The largest conversation, in bytes of its pairs.
    pub max_bytes_per_session: usize,
}

impl Default for VaultLimits {
    fn default() -> Self {
        VaultLimits {
            ttl_ms: 3_600_000,
            max_sessions: 10_000,
            max_bytes_per_session: 64 * 1024,
        }
    }
}

struct Sealed {
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
    expires_at: i64,
}

/// The vault.
pub struct Vault {
    cipher: ChaCha20Poly1305,
    lookup: Hmac<Sha256>,
    limits: VaultLimits,
    sessions: Mutex<HashMap<[u8; 32], Sealed>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Where a conversation's tokens live in the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionId([u8; 32]);

impl Vault {
    /// An empty vault with a fresh key.
    pub fn new(limits: VaultLimits) -> Vault {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mut lookup_key = [0u8; 32];
        rand::rng().fill_bytes(&mut lookup_key);
        Vault {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            lookup: <Hmac<Sha256> as Mac>::new_from_slice(&lookup_key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The vault's place for `session` of `use_case`.
    pub fn session(&self, use_case: &str, session: &str) -> SessionId {
        let mut mac = self.lookup.clone();
        mac.update(use_case.as_bytes());
        mac.update(&[0]);
        mac.update(session.as_bytes());
        SessionId(mac.finalize().into_bytes().into())
    }

    /// The conversation's tokens (empty if unknown or expired).
    pub fn open(&self, id: SessionId, now_ms: i64) -> SessionTokens {
        let mut tokens = SessionTokens::default();
        let sealed = {
            let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&id.0) {
                Some(s) if s.expires_at > now_ms => (s.nonce, s.ciphertext.clone()),
                _ => return tokens,
            }
        };
        if let Some(pairs) = self.unseal(id, &sealed.0, &sealed.1) {
            tokens.absorb(pairs);
        }
        tokens
    }

    fn unseal(
        &self,
        id: SessionId,
        nonce: &[u8; 12],
        ciphertext: &[u8],
    ) -> Option<Vec<(Entity, String, String)>> {
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &id.0,
                },
            )
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }

    /// Stores the conversation's tokens: merged with what another request of it stored
    /// meanwhile (pairs already there win), and kept for the TTL from `now_ms`.
    pub fn save(&self, id: SessionId, tokens: &SessionTokens, now_ms: i64) {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut merged = SessionTokens::default();
        if let Some(s) = map.get(&id.0)
            && s.expires_at > now_ms
            && let Some(pairs) = self.unseal(id, &s.nonce, &s.ciphertext)
        {
            merged.absorb(pairs);
        }
        merged.absorb(tokens.entries());
        let Ok(mut plain) = serde_json::to_vec(&merged.entries()) else {
            return;
        };
        if plain.len() > self.limits.max_bytes_per_session {
            // Too large: this conversation starts afresh with the request's own pairs.
            plain = serde_json::to_vec(&tokens.entries()).unwrap_or_default();
            if plain.len() > self.limits.max_bytes_per_session {
                map.remove(&id.0);
                return;
            }
        }
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let Ok(ciphertext) = self.cipher.encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &id.0,
            },
        ) else {
            return;
        };
        if !map.contains_key(&id.0) && map.len() >= self.limits.max_sessions {
            map.retain(|_, s| s.expires_at > now_ms);
            if map.len() >= self.limits.max_sessions
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires_at)
                    .map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.0,
            Sealed {
                nonce,
                ciphertext,
                expires_at: now_ms.saturating_add(self.limits.ttl_ms),
            },
        );
    }

    /// Forgets every conversation (after an erasure: an erased end user's values must not come
    /// back from a token). Conversations go on with new token numbers.
    pub fn clear(&self) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Conversations held (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether no conversation is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether any stored byte contains `needle` (tests: values are never kept in the clear).
    pub fn stores_bytes(&self, needle: &[u8]) -> bool {
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.values()
            .any(|s| s.ciphertext.windows(needle.len()).any(|w| w == needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_guard::Tokenizer;

    fn tokens(values: &[&str]) -> SessionTokens {
        let mut t = SessionTokens::default();
        for v in values {
            t.token(Entity::EmailAddress, v);
        }
        t
    }

    #[test]
    fn a_conversation_keeps_its_tokens_and_only_its_use_case_sees_them() {
        let v = Vault::new(VaultLimits::default());
        let id = v.session("uc_a", "s1");
        v.save(id, &tokens(&["ann@example.org"]), 0);
        let back = v.open(id, 1);
        assert_eq!(back.value("<EMAIL_ADDRESS_1>"), Some("ann@example.org"));
        assert!(v.open(v.session("uc_b", "s1"), 1).is_empty());
        assert!(!v.stores_bytes(b"ann@example.org"));
        // Use case and session are kept apart: `ab` + `c` is not `a` + `bc`.
        v.save(v.session("ab", "c"), &tokens(&["bob@example.org"]), 0);
        assert!(v.open(v.session("a", "bc"), 1).is_empty());
        assert!(!v.open(v.session("ab", "c"), 1).is_empty());
        // A later turn adds a value: numbered after the first.
        let mut more = back.clone();
        more.token(Entity::EmailAddress, "bob@example.org");
        v.save(id, &more, 2);
        assert_eq!(
            v.open(id, 3).value("<EMAIL_ADDRESS_2>"),
            Some("bob@example.org")
        );
    }

    #[test]
    fn conversations_expire_and_the_vault_stays_bounded() {
        let v = Vault::new(VaultLimits {
            ttl_ms: 1000,
            max_sessions: 3,
            max_bytes_per_session: 200,
        });
        let id = v.session("uc", "s");
        v.save(id, &tokens(&["a@example.org"]), 0);
        assert!(!v.open(id, 999).is_empty());
        assert!(v.open(id, 1000).is_empty(), "expired at the TTL");
        for i in 0..10 {
            v.save(
                v.session("uc", &format!("s{i}")),
                &tokens(&["a@example.org"]),
                i,
            );
        }
        assert_eq!(v.len(), 3);
        // The newest stay.
        assert!(!v.open(v.session("uc", "s9"), 10).is_empty());
        assert!(v.open(v.session("uc", "s0"), 10).is_empty());
        // Too large for a conversation: not kept.
        let big: Vec<String> = (0..20).map(|i| format!("user{i}@example.org")).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        let id = v.session("uc", "big");
        v.save(id, &tokens(&big), 20);
        assert!(v.open(id, 21).is_empty());
        // Full, with two expired conversations: a new one sweeps every expired one, not just
        // the oldest.
        let v = Vault::new(VaultLimits {
            ttl_ms: 1000,
            max_sessions: 3,
            max_bytes_per_session: 200,
        });
        for i in 0..2 {
            v.save(
                v.session("uc", &format!("old{i}")),
                &tokens(&["a@example.org"]),
                0,
            );
        }
        let live = v.session("uc", "live");
        v.save(live, &tokens(&["a@example.org"]), 500);
        assert_eq!(v.len(), 3);
        v.save(v.session("uc", "new"), &tokens(&["a@example.org"]), 1200);
        assert_eq!(v.len(), 2, "both expired conversations swept");
        assert!(!v.open(live, 1200).is_empty());
    }

    #[test]
    fn concurrent_turns_merge_and_the_first_pair_wins() {
        let v = Vault::new(VaultLimits::default());
        let id = v.session("uc", "s");
        v.save(id, &tokens(&["a@example.org"]), 0);
        let base = v.open(id, 1);
        let (mut one, mut two) = (base.clone(), base.clone());
        one.token(Entity::EmailAddress, "b@example.org");
        two.token(Entity::EmailAddress, "c@example.org");
        v.save(id, &one, 2);
        v.save(id, &two, 3);
        let t = v.open(id, 4);
        assert_eq!(t.value("<EMAIL_ADDRESS_2>"), Some("b@example.org"));
        assert_eq!(t.len(), 2, "c's token number was taken: it is not kept");
    }
}
