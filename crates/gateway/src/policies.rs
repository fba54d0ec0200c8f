//! The policies in force: an in-memory snapshot of every use case's policy and the org default,
//! compiled into guards, swapped whole when the store changes (like the key snapshot: no database
//! query on the request path).
//!
//! A use case without a policy of its own gets the org default; without an org default stored,
//! the built-in one ([`Policy::default`]: personal data masked, secrets and denied terms
//! blocked). A stored policy that does not compile (a guard version that reads it differently)
//! is not skipped: its use cases' requests are refused with 503 `policy_unavailable` until it is
//! fixed, never sent unguarded.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_guard::{Guard, Policy};
use tollgate_store::{PolicyQueries, PolicyVersion, Store, StoreError};

/// A policy ready to apply.
#[derive(Debug)]
pub struct Governed {
    /// The policy.
    pub policy: Policy,
    /// Its guard.
    pub guard: Guard,
    /// Which policy, for the ledger: `use_case@3`, `default@2`, `builtin`.
    pub label: String,
}

type Compiled = Result<Arc<Governed>, String>;

#[derive(Debug)]
struct PolicySet {
    default: Compiled,
    use_cases: HashMap<String, Compiled>,
}

/// The snapshot.
#[derive(Debug)]
pub struct PolicyBook {
    store: Store,
    set: ArcSwap<PolicySet>,
    writer: tokio::sync::Mutex<()>,
}

fn compile(v: &PolicyVersion, label: String) -> Compiled {
    let doc = v.document.as_deref().unwrap_or_default();
    let policy = Policy::from_yaml(doc).map_err(|e| e.to_string())?;
    let guard = policy.guard().map_err(|e| e.to_string())?;
    Ok(Arc::new(Governed {
        policy,
        guard,
        label,
    }))
}

/// The built-in default, compiled once.
pub fn builtin() -> Arc<Governed> {
    static B: std::sync::OnceLock<Arc<Governed>> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let policy = Policy::default();
        let guard = policy
            .guard()
            .unwrap_or_else(|e| unreachable!("the built-in policy compiles: {e}"));
        Arc::new(Governed {
            policy,
            guard,
            label: "builtin".into(),
        })
    })
    .clone()
}

impl PolicyBook {
    /// A snapshot of `store`'s policies (empty, that is the built-in default, until loaded).
    pub fn new(store: Store) -> PolicyBook {
        PolicyBook {
            store,
            set: ArcSwap::from_pointee(PolicySet {
                default: Ok(builtin()),
                use_cases: HashMap::new(),
            }),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    /// Reloads every policy from the store; on failure the last snapshot stays.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _w = self.writer.lock().await;
        let versions = self.store.current_policies().await?;
        let mut set = PolicySet {
            default: Ok(builtin()),
            use_cases: HashMap::new(),
        };
        let old = self.set.load();
        for v in &versions {
            let label = if v.scope_id.is_empty() {
                format!("default@{}", v.version)
            } else {
                format!("use_case@{}", v.version)
            };
            // Unchanged policies keep their compiled guard.
            let prior = if v.scope_id.is_empty() {
                Some(&old.default)
            } else {
                old.use_cases.get(&v.scope_id)
            };
            let compiled = match prior {
                Some(Ok(g)) if g.label == label => Ok(g.clone()),
                _ => compile(v, label),
            };
            if let Err(e) = &compiled {
                tracing::error!(scope = %if v.scope_id.is_empty() { "default" } else { &v.scope_id }, version = v.version, error = %e, "a stored policy does not compile: its requests are refused until it is replaced");
            }
            if v.scope_id.is_empty() {
                set.default = compiled;
            } else {
                set.use_cases.insert(v.scope_id.clone(), compiled);
            }
        }
        self.set.store(Arc::new(set));
        Ok(())
    }

    /// The policy `use_case` is governed by.
    pub fn for_use_case(&self, use_case: &str) -> Result<Arc<Governed>, String> {
        let set = self.set.load();
        set.use_cases.get(use_case).unwrap_or(&set.default).clone()
    }
}
