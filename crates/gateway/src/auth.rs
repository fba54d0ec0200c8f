//! Step 1 of the pipeline: authenticate the caller from an in-memory snapshot of active keys.
//!
//! No database query happens on the request path. The [`Keyring`] holds a snapshot — key hash →
//! [`KeyEntry`] (key, use case, pod, stage, routes, caps) — swapped atomically when it is reloaded:
//! right after each admin change on this instance, and every few seconds for changes made
//! elsewhere. If a reload fails (database down), the last snapshot stays in force: known keys keep
//! working, and unknown keys get 503 (we cannot tell whether they are valid), never 401.

use crate::error::ApiError;
use arc_swap::ArcSwap;
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_store::keys::KeySecret;
use tollgate_store::{KeyQueries, Limits, PilotCaps, Stage, Store, StoreError, now_ms};

/// What a key gives access to: everything the pipeline needs about the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyEntry {
    /// `key_…`.
    pub key_id: String,
    /// Visible prefix of the key.
    pub prefix: String,
    /// The use case.
    pub use_case_id: String,
    /// Its name.
    pub use_case_name: String,
    /// Its pod.
    pub pod_id: String,
    /// Its stage.
    pub stage: Stage,
    /// Routes of the use case.
    pub routes: Vec<String>,
    /// Narrower scopes of this key, if any.
    pub scopes: Option<Vec<String>>,
    /// Expiry or end of the rotation grace period, Unix ms.
    pub valid_until: Option<i64>,
    /// Pilot caps of the use case.
    pub pilot_caps: PilotCaps,
    /// Rate limits of this key.
    pub key_limits: Limits,
    /// Rate limits of the use case.
    pub use_case_limits: Limits,
}

/// Whether a key may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Yes.
    Allowed,
    /// The route is the use case's, but this key is scoped to others.
    OutOfScope,
    /// The key cannot even see it.
    Hidden,
}

impl KeyEntry {
    /// Whether this key may call `route`.
    pub fn access(&self, route: &str) -> RouteAccess {
        if !self.routes.iter().any(|r| r == route) {
            RouteAccess::Hidden
        } else if self
            .scopes
            .as_ref()
            .is_some_and(|s| !s.iter().any(|r| r == route))
        {
            RouteAccess::OutOfScope
        } else {
            RouteAccess::Allowed
        }
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    by_hash: HashMap<String, Arc<KeyEntry>>,
    /// The last reload succeeded.
    healthy: bool,
}

/// The in-memory key table.
#[derive(Debug)]
pub struct Keyring {
    store: Store,
    secret: KeySecret,
    snapshot: ArcSwap<Snapshot>,
}

impl Keyring {
    /// A keyring over `store`, loaded once (a failed first load leaves it empty and unhealthy).
    pub async fn load(store: Store, secret: KeySecret) -> Arc<Keyring> {
        let ring = Arc::new(Keyring {
            store,
            secret,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
        });
        if let Err(e) = ring.reload().await {
            tracing::warn!(error = %e, "cannot load keys at start; unknown keys get 503 until the database answers");
        }
        ring
    }

    /// The secret keys are hashed with.
    pub fn secret(&self) -> &KeySecret {
        &self.secret
    }

    /// Reloads the snapshot from the store. On failure the old entries stay and the ring is
    /// marked unhealthy.
    pub async fn reload(&self) -> Result<usize, StoreError> {
        match self.store.active_keys(now_ms()).await {
            Ok(rows) => {
                let by_hash: HashMap<String, Arc<KeyEntry>> = rows
                    .into_iter()
                    .map(|(k, uc)| {
                        let valid_until = match (k.expires_at, k.revoked_at) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                        let entry = KeyEntry {
                            key_id: k.id,
                            prefix: k.prefix,
                            use_case_id: uc.id,
                            use_case_name: uc.name,
                            pod_id: uc.pod_id,
                            stage: uc.stage,
                            routes: uc.routes,
                            scopes: k.scopes,
                            valid_until,
                            pilot_caps: uc.pilot_caps,
                            key_limits: k.limits,
                            use_case_limits: uc.limits,
                        };
                        (k.hash, Arc::new(entry))
                    })
                    .collect();
                let n = by_hash.len();
                self.snapshot.store(Arc::new(Snapshot {
                    by_hash,
                    healthy: true,
                }));
                Ok(n)
            }
            Err(e) => {
                let old = self.snapshot.load_full();
                if old.healthy {
                    tracing::warn!(error = %e, "cannot reload keys; serving known keys from the last snapshot");
                }
                self.snapshot.store(Arc::new(Snapshot {
                    by_hash: old.by_hash.clone(),
                    healthy: false,
                }));
                Err(e)
            }
        }
    }

    /// Whether the last reload succeeded.
    pub fn is_healthy(&self) -> bool {
        self.snapshot.load().healthy
    }

    /// Checks `Authorization: Bearer <key>`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<KeyEntry>, ApiError> {
        let key = bearer(headers).ok_or(ApiError::MissingKey)?;
        let hash = self.secret.hash(key);
        let snap = self.snapshot.load();
        match snap.by_hash.get(&hash) {
            Some(entry) if entry.valid_until.is_none_or(|t| t > now_ms()) => Ok(entry.clone()),
            Some(_) => Err(ApiError::InvalidKey),
            None if !snap.healthy => Err(ApiError::Unavailable(
                "keys cannot be checked while the database is unavailable",
            )),
            None => Err(ApiError::InvalidKey),
        }
    }
}

pub use tollgate_http::bearer;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(scopes: Option<Vec<&str>>) -> KeyEntry {
        KeyEntry {
            key_id: "key_1".into(),
            prefix: "tg_x".into(),
            use_case_id: "uc_1".into(),
            use_case_name: "u".into(),
            pod_id: "pod_1".into(),
            stage: Stage::Production,
            routes: vec!["a".into(), "b".into()],
            scopes: scopes.map(|s| s.into_iter().map(String::from).collect()),
            valid_until: None,
            pilot_caps: PilotCaps::default(),
            key_limits: Limits::default(),
            use_case_limits: Limits::default(),
        }
    }

    #[test]
    fn route_access() {
        assert_eq!(entry(None).access("a"), RouteAccess::Allowed);
        assert_eq!(entry(None).access("z"), RouteAccess::Hidden);
        assert_eq!(entry(Some(vec!["a"])).access("b"), RouteAccess::OutOfScope);
        assert_eq!(entry(Some(vec!["a"])).access("a"), RouteAccess::Allowed);
    }
}
