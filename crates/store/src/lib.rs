//! Tollgate's store: the organization and its keys, behind one `*Queries` trait per domain.
//!
//! - [`model`]: pods, users, memberships, use cases (stage, value model, scores, derived priority),
//!   keys and personal tokens (stored only as keyed hashes), stage changes, audit events.
//! - [`queries`]: the traits ([`PodQueries`], [`UserQueries`], [`UseCaseQueries`], [`KeyQueries`],
//!   [`AuditQueries`]). Every mutation writes its audit event in the same transaction.
//! - [`keys`]: key material: generation, the server secret, and the keyed hashes that are all the
//!   store keeps of keys, tokens and prompt fingerprints.
//! - [`sqlite`]: the embedded default, one file in the data directory, WAL, migrations applied at
//!   start (safe when two processes start on the same directory).
//!
//! The request path never calls the store: the gateway loads a snapshot of active keys and
//! refreshes it in the background.
//!
//! ```no_run
//! # async fn run() -> Result<(), tollgate_store::StoreError> {
//! use tollgate_store::{PodQueries, Store};
//! let store = Store::open(std::path::Path::new("./tollgate-data/tollgate.db")).await?;
//! let pod = store.create_pod("admin", "customer-service", "Front-line support").await?;
//! # Ok(()) }
//! ```

pub mod chain;
pub mod keys;
pub mod model;
pub mod queries;
pub mod sqlite;

pub use model::*;
pub use queries::*;

/// How much of what a [`StoreError::NotFound`] names is quoted: the longest description
/// ("a policy of use case ", 21 characters) and an id of [`tollgate_types::text::ECHO_CHARS`].
pub const NOT_FOUND_CHARS: usize = 24 + tollgate_types::text::ECHO_CHARS;

/// A store failure, by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist. What it names ("use case <id>") is quoted to
    /// [`NOT_FOUND_CHARS`]: the id is the caller's, and a 60,000-character id must not come
    /// back whole in the answer.
    #[error("{} not found", tollgate_types::text::clip(.0, NOT_FOUND_CHARS))]
    NotFound(String),
    /// It would break a uniqueness rule (duplicate name, e-mail).
    #[error("{0}")]
    Conflict(String),
    /// The change is not allowed (a stage transition, say).
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached (closed, locked, unreadable, disk full).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database reported.
    #[error("database error: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Invalid(
                format!("a referenced object does not exist ({})", db.message()),
            ),
            sqlx::Error::Database(db) => {
                // SQLITE_BUSY / LOCKED / READONLY / CANTOPEN / IOERR / FULL / NOTADB.
                let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0) & 0xff;
                if matches!(code, 5 | 6 | 8 | 10 | 13 | 14 | 26) {
                    StoreError::Unavailable(db.message().to_string())
                } else {
                    StoreError::Backend(db.message().to_string())
                }
            }
            sqlx::Error::PoolClosed
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

/// The store the gateway uses. SQLite is the only backend today; when Postgres arrives this
/// becomes an enum that dispatches every `*Queries` call to its backend.
pub type Store = sqlite::SqliteStore;
