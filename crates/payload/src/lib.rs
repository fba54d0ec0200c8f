//! Envelope encryption of stored payloads (prompts and answers), and what makes erasing them a
//! matter of destroying a key (`../shared/reference/audit.md`).
//!
//! - The **master key** ([`MasterKey`], 32 bytes from `TOLLGATE_MASTER_KEY` or a file, generated
//!   0600 when absent) never encrypts a payload: it wraps data keys.
//! - A **data key** ([`DataKey`]) is random, one per (use case, end-user pseudonym, retention
//!   day): every payload that must be gone on the same day for the same person shares it.
//!   Stored only wrapped (XChaCha20-Poly1305 under the master key, bound to the data key's id).
//!   Retention destroys the keys whose day has passed; erasing an end user destroys theirs
//!   (crypto-shredding): the ciphertexts stay, unreadable, and the audit chain — which covers
//!   only their digests — still verifies.
//! - A **payload** is sealed with XChaCha20-Poly1305 (random 192-bit nonces, safe at any
//!   count) under its data key, with the record id, use case and end-user pseudonym as associated
//!   data: a ciphertext moved to another record does not open.
//! - Rotating the master key re-wraps data keys ([`MasterKey::rewrap`]); payloads are not
//!   touched.
//!
//! Key material is zeroed when dropped and never printed (`Debug` shows ids only).

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The master key cannot be read or written.
    #[error("master key {path}: {message}")]
    MasterKey {
        /// Where.
        path: String,
        /// Why.
        message: String,
    },
    /// A wrapped key or a ciphertext does not open under this key (another master key, another
    /// record, or altered bytes).
    #[error("{0} does not open: wrong key, another record, or altered")]
    Open(&'static str),
}

/// The master (key-encrypting) key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok()?;
        }
        return Some(out);
    }
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
}

use tollgate_types::fs::hex;

impl MasterKey {
    /// A master key of these bytes.
    pub fn from_bytes(key: [u8; 32]) -> MasterKey {
        MasterKey { key }
    }

    /// From text: 64 hex digits or base64 of 32 bytes.
    pub fn from_text(text: &str) -> Option<MasterKey> {
        decode_key(text).map(MasterKey::from_bytes)
    }

    /// `TOLLGATE_MASTER_KEY` if set, else the file at `path` (32 bytes as hex or base64),
    /// generated (0600) when it does not exist.
    pub fn load(path: &Path) -> Result<MasterKey, PayloadError> {
        let shown = path.display().to_string();
        let err = |message: String| PayloadError::MasterKey {
            path: shown.clone(),
            message,
        };
        if let Ok(v) = std::env::var("TOLLGATE_MASTER_KEY") {
            return MasterKey::from_text(&v).ok_or_else(|| PayloadError::MasterKey {
                path: "TOLLGATE_MASTER_KEY".into(),
                message: "not 32 bytes as 64 hex digits or base64".into(),
            });
        }
        match std::fs::read_to_string(path) {
            Ok(text) => MasterKey::from_text(&text)
                .ok_or_else(|| err("not 32 bytes as 64 hex digits or base64".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                tollgate_types::fs::write_private_new(path, hex(&key).as_bytes())
                    .map_err(|e| err(e.to_string()))?;
                key.zeroize();
                // Another process may have won the race: use what is on disk.
                let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
                MasterKey::from_text(&text).ok_or_else(|| err("unreadable after writing".into()))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The key's id: hex of the first 8 bytes of SHA-256 of it (safe to store and print).
    pub fn id(&self) -> String {
        hex(&Sha256::digest(self.key)[..8])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }

    /// A new random data key with id `id`, and its wrapped form to store.
    pub fn new_data_key(&self, id: &str) -> (DataKey, Vec<u8>) {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let dk = DataKey {
            id: id.to_string(),
            key,
        };
        let wrapped = self.wrap(&dk);
        (dk, wrapped)
    }

    /// The data key sealed under this master key: nonce ‖ ciphertext, bound to the key's id.
    pub fn wrap(&self, dk: &DataKey) -> Vec<u8> {
        seal(&self.cipher(), &dk.key, dk.id.as_bytes())
    }

    /// Opens a wrapped data key.
    pub fn unwrap_key(&self, id: &str, wrapped: &[u8]) -> Result<DataKey, PayloadError> {
        let mut plain = open(&self.cipher(), wrapped, id.as_bytes(), "a data key")?;
        let key =
            <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| PayloadError::Open("a data key"));
        plain.zeroize();
        Ok(DataKey {
            id: id.to_string(),
            key: key?,
        })
    }

    /// Re-wraps a data key from `old` to this master key (rotation).
    pub fn rewrap(
        &self,
        old: &MasterKey,
        id: &str,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, PayloadError> {
        Ok(self.wrap(&old.unwrap_key(id, wrapped)?))
    }
}

/// A data key, in memory only while in use.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey {
    #[zeroize(skip)]
    id: String,
    key: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

/// What a payload is bound to: a ciphertext opens only for the record it was sealed for.
pub fn binding(record_id: &str, use_case: &str, end_user_hash: &str) -> Vec<u8> {
    format!("tollgate payload v1\n{record_id}\n{use_case}\n{end_user_hash}").into_bytes()
}

impl DataKey {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.key).into())
    }

    /// Seals `plain` bound to `aad` ([`binding`]): nonce ‖ ciphertext.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        seal(&self.cipher(), plain, aad)
    }

    /// Opens what [`DataKey::seal`] sealed with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, PayloadError> {
        open(&self.cipher(), sealed, aad, "a payload")
    }
}

/// SHA-256 of a ciphertext, hex: what the audit chain covers instead of the payload.
pub fn digest(sealed: &[u8]) -> String {
    hex(&Sha256::digest(sealed))
}

fn seal(cipher: &XChaCha20Poly1305, plain: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 24];
    rand::rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(24 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open(
    cipher: &XChaCha20Poly1305,
    sealed: &[u8],
    aad: &[u8],
    what: &'static str,
) -> Result<Vec<u8>, PayloadError> {
    if sealed.len() < 24 + 16 {
        return Err(PayloadError::Open(what));
    }
    let (nonce, ct) = sealed.split_at(24);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| PayloadError::Open(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_opens_only_for_its_record_and_key() {
        let kek = MasterKey::from_bytes([1; 32]);
        let (dk, wrapped) = kek.new_data_key("dk_1");
        let aad = binding("rec_1", "uc_a", "u1");
        let sealed = dk.seal(b"the prompt", &aad);
        assert!(!sealed.windows(10).any(|w| w == b"the prompt"));
        let back = kek.unwrap_key("dk_1", &wrapped).unwrap();
        assert_eq!(back.open(&sealed, &aad).unwrap(), b"the prompt");
        // Moved to another record, or altered: does not open.
        assert!(back.open(&sealed, &binding("rec_2", "uc_a", "u1")).is_err());
        let mut bent = sealed.clone();
        bent[30] ^= 1;
        assert!(back.open(&bent, &aad).is_err());
        // The wrapped key is bound to its id and its master key.
        assert!(kek.unwrap_key("dk_2", &wrapped).is_err());
        assert!(
            MasterKey::from_bytes([2; 32])
                .unwrap_key("dk_1", &wrapped)
                .is_err()
        );
        // Nothing of the key shows in Debug.
        assert_eq!(format!("{back:?}"), "DataKey(dk_1)");
    }

    #[test]
    fn rotation_rewraps_keys_and_payloads_still_open() {
        let (old, new) = (
            MasterKey::from_bytes([1; 32]),
            MasterKey::from_bytes([9; 32]),
        );
        let (dk, wrapped) = old.new_data_key("dk_1");
        let sealed = dk.seal(b"answer", b"aad");
        let rewrapped = new.rewrap(&old, "dk_1", &wrapped).unwrap();
        assert!(old.unwrap_key("dk_1", &rewrapped).is_err());
        let dk2 = new.unwrap_key("dk_1", &rewrapped).unwrap();
        assert_eq!(dk2.open(&sealed, b"aad").unwrap(), b"answer");
        assert_ne!(old.id(), new.id());
    }

    #[test]
    fn a_master_key_file_is_generated_private() {
        let dir = std::env::temp_dir().join(format!("tollgate-kek-{}", std::process::id()));
        let path = dir.join("master-key");
        let _ = std::fs::remove_file(&path);
        let a = MasterKey::load(&path).unwrap();
        let b = MasterKey::load(&path).unwrap();
        assert_eq!(a.id(), b.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(&path, "short").unwrap();
        assert!(MasterKey::load(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
