//! Step 1 of the pipeline: authenticate the caller.
//!
//! Today the keys come from `auth.keys` in the config; only their SHA-256 digests are kept in
//! memory. The store-backed virtual keys (use case, pod, scopes) replace this table later behind
//! the same `authenticate` call. With no keys configured, `/v1` is open.

use crate::error::ApiError;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use tollgate_config::Secret;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// `/v1` is open: no keys configured.
    Anonymous,
    /// A configured key; the first 8 hex digits of its digest identify it without revealing it.
    StaticKey(String),
}

/// The table of accepted keys, by digest.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    digests: HashSet<[u8; 32]>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Authenticator {
    /// A table holding the digests of `keys`.
    pub fn new(keys: &[Secret]) -> Self {
        Authenticator {
            digests: keys.iter().map(|k| digest(k.expose())).collect(),
        }
    }

    /// Whether any key is required.
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks `Authorization: Bearer <key>`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.is_open() {
            return Ok(Caller::Anonymous);
        }
        let key = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::MissingKey)?;
        let d = digest(key);
        if self.digests.contains(&d) {
            Ok(Caller::StaticKey(
                d[..4].iter().map(|b| format!("{b:02x}")).collect(),
            ))
        } else {
            Err(ApiError::InvalidKey)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", auth.parse().unwrap());
        h
    }

    #[test]
    fn checks_bearer_keys() {
        let a = Authenticator::new(&[Secret::new("tg_good")]);
        assert!(matches!(
            a.authenticate(&headers("Bearer tg_good")),
            Ok(Caller::StaticKey(_))
        ));
        assert!(matches!(
            a.authenticate(&headers("Bearer tg_bad")),
            Err(ApiError::InvalidKey)
        ));
        assert!(matches!(
            a.authenticate(&HeaderMap::new()),
            Err(ApiError::MissingKey)
        ));
        assert!(matches!(
            a.authenticate(&headers("Basic x")),
            Err(ApiError::MissingKey)
        ));
    }

    #[test]
    fn open_without_keys() {
        assert_eq!(
            Authenticator::new(&[])
                .authenticate(&HeaderMap::new())
                .unwrap(),
            Caller::Anonymous
        );
    }
}
