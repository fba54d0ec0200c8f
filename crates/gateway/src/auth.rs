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
use tollgate_store::{KeyQueries, Limits, PilotCaps, Stage, Store, StoreError, UseCaseQueries};

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
    /// The use case's SLO (empty: none).
    pub slo: tollgate_store::Slo,
    /// An evaluation key (minted by the server for a run): its requests are tagged as
    /// evaluation, charged to the use case's eval budget rather than its production ones, exempt
    /// from pilot caps, allowed before the pilot starts, and kept out of SLO windows.
    pub evaluation: bool,
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

/// Shards of the key table: a change to one key copies one shard (1/64 of the keys), so issuing
/// a key costs about the same with a hundred or a hundred thousand of them.
const SHARDS: usize = 64;

type Shard = HashMap<String, Arc<KeyEntry>>;

/// The in-memory key table: keyed hashes → entries, in shards that are swapped whole (readers
/// never wait).
#[derive(Debug)]
pub struct Keyring {
    store: Store,
    secret: KeySecret,
    clock: tollgate_types::clock::Clock,
    shards: Vec<ArcSwap<Shard>>,
    /// The last full reload succeeded.
    healthy: std::sync::atomic::AtomicBool,
    /// Serialises writers, so a full reload never puts back what a later single-key change
    /// replaced.
    writer: tokio::sync::Mutex<()>,
    /// Full reloads done, successful or not (with `progress`, what tests wait on to see another
    /// instance's change arrive).
    reloads: std::sync::atomic::AtomicU64,
    progress: tollgate_types::progress::Progress,
}

fn shard_of(hash: &str) -> usize {
    // The hash is hex of an HMAC: its first two digits are uniform.
    usize::from_str_radix(hash.get(..2).unwrap_or("0"), 16).unwrap_or(0) % SHARDS
}

fn entry_of(k: tollgate_store::ApiKey, uc: tollgate_store::UseCase) -> (String, Arc<KeyEntry>) {
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
        slo: uc.slo,
        evaluation: k.evaluation,
    };
    (k.hash, Arc::new(entry))
}

impl Keyring {
    /// A keyring over `store`, loaded once (a failed first load leaves it empty and unhealthy).
    pub async fn load(
        store: Store,
        secret: KeySecret,
        clock: tollgate_types::clock::Clock,
    ) -> Arc<Keyring> {
        let ring = Arc::new(Keyring {
            store,
            secret,
            clock,
            shards: (0..SHARDS)
                .map(|_| ArcSwap::from_pointee(Shard::new()))
                .collect(),
            healthy: std::sync::atomic::AtomicBool::new(false),
            writer: tokio::sync::Mutex::new(()),
            reloads: Default::default(),
            progress: Default::default(),
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

    /// Reloads every key from the store. On failure the old entries stay and the ring is marked
    /// unhealthy.
    pub async fn reload(&self) -> Result<usize, StoreError> {
        let _writing = self.writer.lock().await;
        let done = self.reload_all().await;
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.progress.changed();
        done
    }

    /// Full reloads done so far, successful or not.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Returns once more than `seen` full reloads have been done (by event, not by polling).
    pub async fn reloaded_since(&self, seen: u64) {
        self.progress.until(|| self.reloads() > seen).await;
    }

    async fn reload_all(&self) -> Result<usize, StoreError> {
        match self.store.active_keys(self.clock.now_ms()).await {
            Ok(rows) => {
                let mut shards: Vec<Shard> = (0..SHARDS).map(|_| Shard::new()).collect();
                let n = rows.len();
                for (k, uc) in rows {
                    let (hash, entry) = entry_of(k, uc);
                    shards[shard_of(&hash)].insert(hash, entry);
                }
                for (slot, shard) in self.shards.iter().zip(shards) {
                    slot.store(Arc::new(shard));
                }
                self.healthy
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                if self
                    .healthy
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(error = %e, "cannot reload keys; serving known keys from the last snapshot");
                }
                Err(e)
            }
        }
    }

    /// Loads one key (issued, revoked, rotated) into the table: one shard is copied, not the
    /// table. A key that is no longer active leaves it.
    pub async fn reload_key(&self, key_id: &str) -> Result<(), StoreError> {
        let _writing = self.writer.lock().await;
        let key = self.store.get_key(key_id).await?;
        let uc = self.store.get_use_case(&key.use_case_id).await?;
        let active = key.is_active(self.clock.now_ms());
        let (hash, entry) = entry_of(key, uc);
        let slot = &self.shards[shard_of(&hash)];
        let mut shard = Shard::clone(&slot.load());
        if active {
            shard.insert(hash, entry);
        } else {
            shard.remove(&hash);
        }
        slot.store(Arc::new(shard));
        Ok(())
    }

    /// Whether the last reload succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.load().len()).sum()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks `Authorization: Bearer <key>`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<KeyEntry>, ApiError> {
        let key = bearer(headers)?;
        let hash = self.secret.hash(key);
        let shard = self.shards[shard_of(&hash)].load();
        match shard.get(&hash) {
            Some(entry) if entry.valid_until.is_none_or(|t| t > self.clock.now_ms()) => {
                Ok(entry.clone())
            }
            Some(_) => Err(ApiError::InvalidKey),
            None if !self.is_healthy() => Err(ApiError::Unavailable(
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
            slo: Default::default(),
            evaluation: false,
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
