//! `tollgate audit verify | export`: the audit chain, offline, from the data directory a config
//! names.
//!
//! `verify` walks the chain (or `--from`/`--to` a range of it) and its checkpoints, recomputing
//! every hash from the rows and checking every signature, and names the first broken link (exit
//! status 1; 2 when it cannot run). `export` writes the entries, checkpoints and public key for
//! an external verifier (`docs/audit-chain.md` has the procedure; `scripts/verify_audit_export.py`
//! is one).

use anyhow::{Context, bail};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use tollgate_store::ChainQueries;

/// `tollgate audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the chain and its signed checkpoints; name the first broken link.
    Verify {
        /// The configuration file (its data directory and signing key).
        #[arg(long, default_value = "tollgate.yaml")]
        config: PathBuf,
        /// First entry to check (the whole chain by default).
        #[arg(long)]
        from: Option<i64>,
        /// Last entry to check.
        #[arg(long)]
        to: Option<i64>,
        /// The checkpoints' public key (64 hex digits, or a file holding them); by default the
        /// one of the signing key the config names.
        #[arg(long)]
        public_key: Option<String>,
        /// Checkpoints kept outside the store (the `checkpoints.jsonl` of an earlier `audit
        /// export`), checked beside the stored ones: the chain's end deleted with its latest
        /// checkpoints is found only this way.
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
    /// Re-wrap every live data key of stored payloads under a new master key (all or nothing);
    /// then point `audit.master_key_file` (or `TOLLGATE_MASTER_KEY`) at the new key and restart.
    RotateMasterKey {
        /// The configuration file (its data directory and current master key).
        #[arg(long, default_value = "tollgate.yaml")]
        config: PathBuf,
        /// The new key: a file of 32 bytes as 64 hex digits or base64 (`openssl rand -hex 32`).
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Write the chain for an external verifier: entries.jsonl, checkpoints.jsonl, public-key.txt.
    Export {
        /// The configuration file.
        #[arg(long, default_value = "tollgate.yaml")]
        config: PathBuf,
        /// The directory to write to (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
}

/// The checkpoints of a file of `{"text", "signature", "key_id"}` lines (an export's
/// `checkpoints.jsonl`); a line that is not one is named by its number.
fn kept_checkpoints(
    path: &std::path::Path,
) -> anyhow::Result<Vec<tollgate_audit::SignedCheckpoint>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                anyhow::anyhow!(
                    "{} line {}: not a checkpoint of an export (`{{\"text\", \"signature\", \"key_id\"}}`): {e}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

async fn open(
    config: &std::path::Path,
) -> anyhow::Result<(tollgate_config::Config, tollgate_store::Store)> {
    let cfg = tollgate_config::Config::from_file(config)?;
    let db = cfg.server.data_dir.join("tollgate.db");
    if !db.exists() {
        bail!(
            "no database at {} (is `server.data_dir` right?)",
            db.display()
        );
    }
    let store = tollgate_store::Store::open(&db).await?;
    Ok((cfg, store))
}

fn public_key(
    given: Option<&str>,
    cfg: &tollgate_config::Config,
) -> anyhow::Result<tollgate_audit::VerifyingKey> {
    match given {
        Some(g) => {
            let text = if std::path::Path::new(g).is_file() {
                std::fs::read_to_string(g).with_context(|| format!("cannot read {g}"))?
            } else {
                g.to_string()
            };
            tollgate_audit::verifying_key_from_hex(&text)
                .context("--public-key: not an Ed25519 public key (64 hex digits)")
        }
        None => {
            let path = &cfg.audit.signing_key_file;
            if !path.exists() {
                bail!("no signing key at {} (give --public-key)", path.display());
            }
            Ok(tollgate_audit::Signer::load_or_create(path)?.verifying_key())
        }
    }
}

/// Runs an audit command; the exit status.
pub async fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify {
            config,
            from,
            to,
            public_key: given,
            checkpoints,
        } => {
            let kept = match &checkpoints {
                Some(path) => kept_checkpoints(path)?,
                None => Vec::new(),
            };
            let (cfg, store) = open(&config).await?;
            let key = public_key(given.as_deref(), &cfg)?;
            let tty = std::io::stderr().is_terminal();
            // The server secret keys the end users' pseudonyms: with it, each stored end user's
            // id is checked against the chain. Never created here.
            let secret = if std::env::var_os("TOLLGATE_KEY_SECRET").is_some()
                || cfg.server.data_dir.join("key-secret").exists()
            {
                Some(tollgate_store::keys::KeySecret::load(&cfg.server.data_dir)?)
            } else {
                None
            };
            let report = tollgate_store::chain::verify_with(
                &store,
                key,
                secret.as_ref(),
                from,
                to,
                &kept,
                |done, total| {
                    if tty {
                        eprint!("\rchecked {done} of {total} entries");
                    }
                },
            )
            .await?;
            if tty {
                eprintln!();
            }
            let (head, _) = store.chain_head().await?;
            match &report.broken {
                None => {
                    outln!(
                        "OK: {} entries checked ({}..={}), {} checkpoints, signed through entry {}; {} entries after the last checkpoint (key {})",
                        report.entries,
                        from.unwrap_or(1),
                        report.last,
                        report.checkpoints,
                        report.signed_through,
                        head.saturating_sub(report.signed_through.max(0)),
                        tollgate_audit::key_id(&key),
                    );
                    Ok(0)
                }
                Some(b) => {
                    outln!("BROKEN at {b}");
                    Ok(1)
                }
            }
        }
        AuditCommand::RotateMasterKey {
            config,
            new_key_file,
        } => {
            use tollgate_store::PayloadQueries;
            let (cfg, store) = open(&config).await?;
            let old = tollgate_payload::MasterKey::load(&cfg.audit.master_key_file)?;
            let text = std::fs::read_to_string(&new_key_file)
                .with_context(|| format!("cannot read {}", new_key_file.display()))?;
            let new = tollgate_payload::MasterKey::from_text(&text).with_context(|| {
                format!(
                    "{}: not 32 bytes as 64 hex digits or base64",
                    new_key_file.display()
                )
            })?;
            if new.id() == old.id() {
                bail!("the new key is the current key");
            }
            let (done, _) = store
                .rotate_master_key("cli", &new.id(), |id, w| new.rewrap(&old, id, w).ok())
                .await?;
            outln!(
                "re-wrapped {done} data keys from master key {} to {}; now point audit.master_key_file (or TOLLGATE_MASTER_KEY) at {} and restart",
                old.id(),
                new.id(),
                new_key_file.display()
            );
            Ok(0)
        }
        AuditCommand::Export { config, out } => {
            let (cfg, store) = open(&config).await?;
            let key = public_key(None, &cfg)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let file = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
                let p = out.join(name);
                Ok(std::io::BufWriter::new(
                    std::fs::File::create(&p)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                ))
            };
            let mut entries = file("entries.jsonl")?;
            let (mut next, mut n) = (1, 0u64);
            loop {
                let page = store.chain_page(next, 2000).await?;
                let Some(last) = page.last() else { break };
                next = last.seq + 1;
                for row in &page {
                    let line =
                        serde_json::json!({"seq": row.seq, "hash": row.hash, "entry": row.body});
                    writeln!(entries, "{line}")?;
                    n += 1;
                }
            }
            entries.flush()?;
            let mut cps = file("checkpoints.jsonl")?;
            let checkpoints = store.checkpoints().await?;
            for c in &checkpoints {
                let line = serde_json::json!({"text": c.text, "signature": c.signature, "key_id": c.key_id});
                writeln!(cps, "{line}")?;
            }
            cps.flush()?;
            std::fs::write(
                out.join("public-key.txt"),
                format!("{}\n", tollgate_audit::hex(key.as_bytes())),
            )?;
            outln!(
                "exported {n} entries and {} checkpoints to {} (key {})",
                checkpoints.len(),
                out.display(),
                tollgate_audit::key_id(&key)
            );
            Ok(0)
        }
    }
}
