//! Patterns on the request path: every pattern version compiled once into an in-memory snapshot
//! (reloaded when the control plane changes one, and on the refresh tick), so a request naming
//! `"pattern": "triage@production"` with its `variables` is rendered without a database read.
//! The rendered messages come first, then any the request sends; the record keeps the version.

use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tollgate_eval::pattern::{Selector, Template, parse_reference};
use tollgate_http::error::ApiError;
use tollgate_store::{PatternQueries, Store, StoreError};
use tollgate_types::text::{ECHO_CHARS, clip};

#[derive(Debug, Default)]
struct Entry {
    versions: BTreeMap<i64, Arc<Template>>,
    labels: BTreeMap<String, i64>,
}

/// The patterns the gateway renders.
#[derive(Debug)]
pub struct PatternBook {
    store: Store,
    snapshot: ArcSwap<HashMap<String, Entry>>,
}

impl PatternBook {
    /// An empty book over `store` (call [`PatternBook::reload`]).
    pub fn new(store: Store) -> PatternBook {
        PatternBook {
            store,
            snapshot: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Reads every pattern and compiles its versions (a version that no longer compiles is left
    /// out, and logged).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let old = self.snapshot.load_full();
        let mut map = HashMap::new();
        for p in self.store.list_patterns().await? {
            let mut e = Entry {
                labels: p.labels.clone(),
                ..Entry::default()
            };
            for v in &p.versions {
                // Versions never change: one compiled before is reused, so the refresh tick only
                // compiles what is new.
                if let Some(t) = old.get(&p.name).and_then(|o| o.versions.get(&v.version)) {
                    e.versions.insert(v.version, t.clone());
                    continue;
                }
                match Template::compile(&v.messages, &v.schema) {
                    Ok(t) => {
                        e.versions.insert(v.version, Arc::new(t));
                    }
                    Err(err) => {
                        tracing::error!(pattern = %p.name, version = v.version, "a stored pattern version does not compile: {err}");
                    }
                }
            }
            map.insert(p.name, e);
        }
        self.snapshot.store(Arc::new(map));
        Ok(())
    }

    /// Renders `reference` with `variables`: `name@version` of what was used and the messages.
    pub fn render(
        &self,
        reference: &serde_json::Value,
        variables: &serde_json::Value,
    ) -> Result<(String, Vec<tollgate_types::openai::ChatMessage>), ApiError> {
        let Some(reference) = reference.as_str() else {
            return Err(ApiError::invalid(
                "`pattern` must be a string: `name@label` or `name@version`",
                Some("pattern".into()),
            ));
        };
        let (name, sel) =
            parse_reference(reference).map_err(|e| ApiError::invalid(e, Some("pattern".into())))?;
        let snap = self.snapshot.load();
        let missing = |what: String| ApiError::InvalidRequest {
            message: what,
            param: Some("pattern".into()),
            code: "pattern_not_found",
        };
        let entry = snap
            .get(&name)
            .ok_or_else(|| missing(format!("there is no pattern `{}`", clip(&name, ECHO_CHARS))))?;
        let version = match &sel {
            Selector::Version(v) => *v,
            Selector::Label(l) => *entry.labels.get(l).ok_or_else(|| {
                missing(format!(
                    "pattern `{}` has no label `{}`",
                    clip(&name, ECHO_CHARS),
                    clip(l, ECHO_CHARS)
                ))
            })?,
        };
        let template = entry
            .versions
            .get(&version)
            .ok_or_else(|| missing(format!("pattern `{name}` has no version {version}")))?;
        let messages = template
            .render(variables)
            .map_err(|p| ApiError::invalid(format!("{}: {}", p.path, p.message), Some(p.path)))?;
        use tollgate_eval::suite::Role as R;
        use tollgate_types::openai::{ChatMessage, Role};
        Ok((
            format!("{name}@{version}"),
            messages
                .into_iter()
                .map(|(r, text)| {
                    let role = match r {
                        R::System => Role::System,
                        R::User => Role::User,
                        R::Assistant => Role::Assistant,
                    };
                    ChatMessage::text(role, text)
                })
                .collect(),
        ))
    }
}
