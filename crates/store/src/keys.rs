//! Virtual key material: generation, the keyed hash that is all the store keeps, and the server
//! secret behind it.
//!
//! A key is `tg_` + 43 base62 characters (32 random bytes). The store keeps HMAC-SHA-256(secret,
//! key) in hex and a visible prefix (`tg_` + 8 characters) to recognise it; the full key is shown
//! once, at creation. The secret comes from `TOLLGATE_KEY_SECRET` (required when several replicas
//! share a database) or from `<data_dir>/key-secret`, created with mode 0600 on first start. A stolen
//! database alone therefore does not let anyone test guessed keys offline.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The server secret keys are hashed with.
#[derive(Clone)]
pub struct KeySecret([u8; 32]);

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(***)")
    }
}

/// Why the secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `TOLLGATE_KEY_SECRET` is too short.
    #[error("TOLLGATE_KEY_SECRET must be at least 32 characters")]
    TooShort,
    /// The secret file could not be read or written.
    #[error("cannot use the key secret file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl KeySecret {
    /// A secret derived from given material (tests, `TOLLGATE_KEY_SECRET`).
    pub fn from_material(material: &[u8]) -> Self {
        use sha2::Digest;
        KeySecret(Sha256::digest(material).into())
    }

    /// From `TOLLGATE_KEY_SECRET`, else `<data_dir>/key-secret` (created if missing).
    pub fn load(data_dir: &Path) -> Result<Self, SecretError> {
        if let Ok(v) = std::env::var("TOLLGATE_KEY_SECRET") {
            if v.len() < 32 {
                return Err(SecretError::TooShort);
            }
            return Ok(Self::from_material(v.as_bytes()));
        }
        let path = data_dir.join("key-secret");
        let err = |source| SecretError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => Ok(Self::from_material(&bytes)),
            Ok(_) => Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "shorter than 32 bytes",
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(err)?;
                let mut bytes = [0u8; 48];
                rand::rng().fill_bytes(&mut bytes);
                let text = base62(&bytes);
                write_private(&path, text.as_bytes()).map_err(err)?;
                // Another process may have won the race: use whatever is on disk now.
                let on_disk = std::fs::read(&path).map_err(err)?;
                Ok(Self::from_material(&on_disk))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// HMAC-SHA-256 of `key`, hex.
    pub fn hash(&self, key: &str) -> String {
        // A 32-byte key is always a valid HMAC key; the error branch cannot happen.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(key.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The key of end users' pseudonyms (records, the audit chain, erasure).
    pub fn pseudonym_key(&self) -> String {
        self.hash("tollgate end user pseudonym v1")
    }

    /// An end user's pseudonym: HMAC-SHA-256 of the id under [`KeySecret::pseudonym_key`], hex.
    pub fn end_user_pseudonym(&self, id: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.pseudonym_key().as_bytes()) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The hasher of prompt fingerprints, keyed with a key derived from this secret (so a
    /// fingerprint cannot be checked against a guessed prompt without the secret).
    pub fn prompt_hasher(&self) -> PromptHasher {
        let derived = self.hash("tollgate prompt fingerprint v1");
        PromptHasher(Hmac::<Sha256>::new_from_slice(derived.as_bytes()).ok())
    }
}

/// Keyed fingerprints of request content, for counting identical requests (what an exact cache
/// would have answered). 128 bits of HMAC-SHA-256, in hex; never the content itself.
#[derive(Clone)]
pub struct PromptHasher(Option<Hmac<Sha256>>);

impl std::fmt::Debug for PromptHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PromptHasher(***)")
    }
}

struct MacWriter<'a>(&'a mut Hmac<Sha256>);

impl std::io::Write for MacWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl PromptHasher {
    /// The fingerprint of `body` as JSON (field order is the type's, so equal requests hash
    /// equal whatever order the client sent).
    pub fn fingerprint<T: serde::Serialize>(&self, body: &T) -> Option<String> {
        let mut mac = self.0.clone()?;
        serde_json::to_writer(MacWriter(&mut mac), body).ok()?;
        Some(hex(&mac.finalize().into_bytes()[..16]))
    }
}

/// Writes `bytes` to a new file only its owner can read (0600), replacing a file of that name.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    write_private(path, bytes)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    tollgate_types::fs::write_private_new(path, bytes)
}

pub use tollgate_types::fs::hex;

/// Base62 of a big-endian number (leading zero bytes count as digits, so the length is fixed for a
/// given input length).
fn base62(bytes: &[u8]) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let digits = (bytes.len() * 8 * 1000).div_ceil(5954); // log2(62) ≈ 5.954
    let mut out = Vec::with_capacity(digits);
    for _ in 0..digits {
        let mut rem: u32 = 0;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 62) as u8;
            rem = cur % 62;
        }
        out.push(BASE62[rem as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A freshly generated secret credential.
#[derive(Debug)]
pub struct NewKey {
    /// The full key, to show once.
    pub plaintext: String,
    /// Its visible prefix.
    pub prefix: String,
    /// Its keyed hash, to store.
    pub hash: String,
}

/// Generates a key with the given prefix (`tg` for API keys, `tgu` for personal tokens).
pub fn generate(secret: &KeySecret, kind: &str) -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plaintext = format!("{kind}_{}", base62(&bytes));
    let prefix = plaintext.chars().take(kind.len() + 1 + 8).collect();
    let hash = secret.hash(&plaintext);
    NewKey {
        plaintext,
        prefix,
        hash,
    }
}

/// A new API key record for `use_case_id` (no rate limits; set `limits` before storing it) and its
/// plaintext (to show once).
pub fn new_api_key(
    secret: &KeySecret,
    use_case_id: &str,
    user_id: Option<String>,
    name: &str,
    scopes: Option<Vec<String>>,
    expires_at: Option<i64>,
    created_by: &str,
) -> (crate::ApiKey, String) {
    let k = generate(secret, "tg");
    let record = crate::ApiKey {
        id: crate::new_id("key"),
        use_case_id: use_case_id.to_string(),
        user_id,
        name: name.to_string(),
        prefix: k.prefix,
        hash: k.hash,
        scopes,
        expires_at,
        revoked_at: None,
        replaced_by: None,
        limits: crate::Limits::default(),
        created_at: crate::now_ms(),
        created_by: created_by.to_string(),
        evaluation: false,
    };
    (record, k.plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_base62_and_hashed_with_the_secret() {
        let s = KeySecret::from_material(b"test secret material, long enough!");
        let k = generate(&s, "tg");
        assert!(k.plaintext.starts_with("tg_"));
        assert_eq!(k.plaintext.len(), 3 + 43);
        assert!(k.plaintext[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(k.plaintext.starts_with(&k.prefix) && k.prefix.len() == 11);
        assert_eq!(s.hash(&k.plaintext), k.hash);
        assert_ne!(
            KeySecret::from_material(b"another secret").hash(&k.plaintext),
            k.hash
        );
        assert_ne!(generate(&s, "tg").plaintext, k.plaintext);
    }

    #[test]
    fn the_secret_file_is_created_once() {
        let dir = std::env::temp_dir().join(format!("tollgate-secret-{}", std::process::id()));
        let a = KeySecret::load(&dir).unwrap();
        let b = KeySecret::load(&dir).unwrap();
        assert_eq!(a.hash("x"), b.hash("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("key-secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
