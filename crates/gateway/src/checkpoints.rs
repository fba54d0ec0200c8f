//! Signing the audit chain's state: a checkpoint after every `audit.checkpoint_every` new
//! entries or `audit.checkpoint_interval_ms` (even when nothing happened), one at start and one at
//! shutdown. The entries themselves are written by the store with the rows they cover; this part
//! only holds the key and the cadence.

use std::sync::Arc;
use tollgate_audit::Signer;
use tollgate_store::Store;
use tollgate_store::chain::Cadence;
use tollgate_types::clock::Clock;

/// The checkpoint writer.
#[derive(Debug)]
pub struct Checkpointer {
    store: Store,
    signer: Arc<Signer>,
    cadence: Cadence,
    clock: Clock,
}

impl Checkpointer {
    /// Loads the signing key (generating it, 0600, if the file does not exist).
    pub fn load(
        config: &tollgate_config::Audit,
        store: Store,
        clock: Clock,
    ) -> Result<Checkpointer, tollgate_audit::AuditError> {
        Ok(Checkpointer {
            store,
            signer: Arc::new(Signer::load_or_create(&config.signing_key_file)?),
            cadence: Cadence {
                every: config.checkpoint_every,
                interval_ms: i64::try_from(config.checkpoint_interval.as_millis())
                    .unwrap_or(i64::MAX),
            },
            clock,
        })
    }

    /// The public key that verifies this instance's checkpoints.
    pub fn verifying_key(&self) -> tollgate_audit::VerifyingKey {
        self.signer.verifying_key()
    }

    /// Writes a checkpoint if one is due (or `force`); failures are logged, never fatal (the
    /// entries are safe in the store; the next tick signs them).
    pub async fn checkpoint(&self, force: bool) -> Option<tollgate_store::CheckpointRow> {
        match tollgate_store::chain::checkpoint(
            &self.store,
            &self.signer,
            self.cadence,
            self.clock.now_ms(),
            force,
        )
        .await
        {
            Ok(c) => {
                if let Some(c) = &c {
                    tracing::debug!(size = c.size, "audit checkpoint signed");
                }
                c
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot write an audit checkpoint; retrying on the next tick");
                None
            }
        }
    }

    /// The periodic check.
    pub async fn tick(&self) {
        self.checkpoint(false).await;
    }
}
