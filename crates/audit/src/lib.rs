//! The tamper-evident audit chain: every ledger record and every admin audit event is an entry
//! whose hash covers its content and the previous entry's hash, and signed checkpoints make the
//! chain's state at a point provable (`../shared/reference/audit.md`).
//!
//! - **Entries** ([`entry_hash`]): `hash = SHA-256(prev_hash ‖ canonical(entry))`, where the
//!   entry is a JSON object (its `seq`, `kind`, `ref` and the fields of the row it stands for) and
//!   [`canonical`] writes it with object keys sorted, no whitespace — the same bytes whoever
//!   writes it. The first entry's previous hash is 32 zero bytes ([`GENESIS`]).
//! - **Checkpoints** ([`Checkpoint`]): after every N entries or T minutes (also when nothing
//!   happened, so silence is provable), a short text naming the chain's size, the hash of its
//!   last entry (`head`, which covers everything before), the RFC 6962 Merkle root of the entries
//!   since the previous checkpoint, and the previous checkpoint's hash — signed with Ed25519.
//!   Rewriting the chain consistently (recomputing every hash after a change) is possible for
//!   anyone with the database; producing a checkpoint that agrees with the rewrite is not,
//!   without the signing key.
//! - **Verification** ([`Verifier`]): recomputes every hash from the rows, checks that sequence
//!   numbers run without a gap, every signature, every checkpoint against the entries it covers and
//!   the checkpoints' own chain, and names the first broken link.
//!
//! The chain covers metadata only (never a prompt or an answer: those are stored, if at all,
//! encrypted, and the chain names their ciphertext), so destroying a key to erase data never
//! breaks it. The procedure for an external verifier is in `docs/audit-chain.md`.

pub use ed25519_dalek::VerifyingKey;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The previous hash of the first entry, and of the first checkpoint.
pub const GENESIS: Hash = [0; 32];

/// What can go wrong with the signing key.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The key file cannot be read or written.
    #[error("audit signing key {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key file holds no key.
    #[error("audit signing key {path}: {message}")]
    BadKey {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

pub use tollgate_types::fs::hex;

/// A hash from 64 hex digits.
pub fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The canonical bytes of a JSON value: object keys sorted by their UTF-8 bytes, no whitespace,
/// strings escaped as JSON (RFC 8259) writes them with the fewest escapes, integers as they are.
/// (Entries hold no floating-point numbers.)
pub fn canonical(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        Value::Number(n) => write_display(n, out),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Null => out.extend_from_slice(b"null"),
    }
}

/// `x` as its `Display` writes it, without an intermediate `String`.
fn write_display(x: &impl std::fmt::Display, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{x}");
}

/// A JSON object written canonically field by field, without building a [`Value`]: the same
/// bytes as [`canonical`] of the equivalent object, for writers on a hot path (the ledger's
/// records). Fields must be added in the order of their keys' UTF-8 bytes (checked in debug
/// builds), since nothing is sorted here.
#[derive(Debug)]
pub struct Canon<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    last: &'static str,
}

impl<'a> Canon<'a> {
    /// Opens an object at the end of `out`.
    pub fn object(out: &'a mut Vec<u8>) -> Canon<'a> {
        out.push(b'{');
        Canon {
            out,
            first: true,
            last: "",
        }
    }

    fn key(&mut self, k: &'static str) -> &mut Vec<u8> {
        debug_assert!(
            self.first || self.last.as_bytes() < k.as_bytes(),
            "canonical keys out of order: {} then {k}",
            self.last
        );
        self.last = k;
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        write_string(k, self.out);
        self.out.push(b':');
        self.out
    }

    /// A string field.
    pub fn str(&mut self, k: &'static str, v: &str) -> &mut Self {
        let out = self.key(k);
        write_string(v, out);
        self
    }

    /// A string field, `null` when absent.
    pub fn opt_str(&mut self, k: &'static str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    /// An integer field.
    pub fn int(&mut self, k: &'static str, v: impl Into<i128>) -> &mut Self {
        let out = self.key(k);
        write_display(&v.into(), out);
        self
    }

    /// An integer field, `null` when absent.
    pub fn opt_int(&mut self, k: &'static str, v: Option<impl Into<i128>>) -> &mut Self {
        match v {
            Some(v) => self.int(k, v),
            None => self.null(k),
        }
    }

    /// An array of integers.
    pub fn ints(&mut self, k: &'static str, v: &[u64]) -> &mut Self {
        let out = self.key(k);
        out.push(b'[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_display(x, out);
        }
        out.push(b']');
        self
    }

    /// A boolean field.
    pub fn bool(&mut self, k: &'static str, v: bool) -> &mut Self {
        let out = self.key(k);
        out.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    /// A `null` field.
    pub fn null(&mut self, k: &'static str) -> &mut Self {
        self.key(k).extend_from_slice(b"null");
        self
    }

    /// Closes the object.
    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Runs of bytes that need no escape are copied whole (every byte of a multi-byte character
    // is >= 0x80, so cutting at ASCII bytes keeps characters whole).
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if esc.is_empty() {
            write_display(&format_args!("\\u{b:04x}"), out);
        } else {
            out.extend_from_slice(esc);
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// An entry's hash: SHA-256 of the previous hash and the entry's canonical bytes.
pub fn entry_hash(prev: &Hash, entry: &Value) -> Hash {
    entry_hash_of_bytes(prev, &canonical(entry))
}

/// [`entry_hash`] of an entry already written canonically.
pub fn entry_hash_of_bytes(prev: &Hash, canonical_entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical_entry);
    h.finalize().into()
}

/// The canonical bytes of the entry `{"seq", "kind", "ref", "data"}` from the canonical bytes of
/// its `data` — the same bytes [`canonical`] writes for the whole object (keys in order: data,
/// kind, ref, seq), without building it. Writers precompute `data` off their transaction.
pub fn entry_bytes(seq: i64, kind: &str, reference: &str, data_canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_canonical.len() + kind.len() + reference.len() + 48);
    out.extend_from_slice(b"{\"data\":");
    out.extend_from_slice(data_canonical);
    out.extend_from_slice(b",\"kind\":");
    write_string(kind, &mut out);
    out.extend_from_slice(b",\"ref\":");
    write_string(reference, &mut out);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.push(b'}');
    out
}

/// The RFC 6962 Merkle tree hash of `leaves` (entry hashes): a leaf is SHA-256(0x00 ‖ leaf), a
/// node SHA-256(0x01 ‖ left ‖ right), split at the largest power of two below the count; no
/// leaves: SHA-256 of nothing.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(leaves[0]);
            h.finalize().into()
        }
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let (l, r) = (merkle_root(&leaves[..k]), merkle_root(&leaves[k..]));
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            h.finalize().into()
        }
    }
}

/// The state of the chain at a point, as signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence number of the last entry covered (0: none yet).
    pub size: i64,
    /// The first entry since the previous checkpoint (`size + 1` when none is new).
    pub from: i64,
    /// The last entry's hash ([`GENESIS`] when the chain is empty).
    pub head: Hash,
    /// The Merkle root of the entries `from..=size`.
    pub root: Hash,
    /// The previous checkpoint's hash ([`GENESIS`] for the first).
    pub prev: Hash,
    /// When, Unix ms.
    pub at: i64,
}

const HEADER: &str = "tollgate audit checkpoint v1";

impl Checkpoint {
    /// The signed text: one `name value` line each, in this order.
    pub fn text(&self) -> String {
        format!(
            "{HEADER}\nsize {}\nfrom {}\nhead {}\nroot {}\nprev {}\ntime {}\n",
            self.size,
            self.from,
            hex(&self.head),
            hex(&self.root),
            hex(&self.prev),
            self.at
        )
    }

    /// Reads a checkpoint's text back (exactly as [`Checkpoint::text`] writes it).
    pub fn parse(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err("not a tollgate checkpoint".into());
        }
        let mut field = |name: &str| -> Result<String, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| format!("no `{name}` line"))
        };
        let int = |s: String, name: &str| s.parse::<i64>().map_err(|_| format!("bad {name}"));
        let hash = |s: String, name: &str| unhex(&s).ok_or_else(|| format!("bad {name}"));
        let cp = Checkpoint {
            size: int(field("size")?, "size")?,
            from: int(field("from")?, "from")?,
            head: hash(field("head")?, "head")?,
            root: hash(field("root")?, "root")?,
            prev: hash(field("prev")?, "prev")?,
            at: int(field("time")?, "time")?,
        };
        if cp.text() != text {
            return Err("not in canonical form".into());
        }
        Ok(cp)
    }
}

/// A checkpoint's hash: SHA-256 of its text (the next checkpoint's `prev`).
pub fn checkpoint_hash(text: &str) -> Hash {
    Sha256::digest(text.as_bytes()).into()
}

/// A checkpoint as stored and exported: its text, the Ed25519 signature (base64) and the id of
/// the key that made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedCheckpoint {
    /// [`Checkpoint::text`].
    pub text: String,
    /// Base64 of the 64-byte signature over the text's bytes.
    pub signature: String,
    /// [`key_id`] of the signing key.
    pub key_id: String,
}

/// A key's id: hex of the first 8 bytes of SHA-256 of its 32-byte public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..8])
}

/// The checkpoint signer.
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &key_id(&self.key.verifying_key()))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer of 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Signer {
        Signer {
            key: SigningKey::from_bytes(bytes),
        }
    }

    /// The key in `path` (32 raw bytes, or their hex or base64); a new one is generated into it
    /// (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Signer, AuditError> {
        let shown = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim().to_string();
                let raw: Option<[u8; 32]> = if bytes.len() == 32 {
                    bytes.as_slice().try_into().ok()
                } else if let Some(h) = unhex(&text) {
                    Some(h)
                } else {
                    base64::engine::general_purpose::STANDARD
                        .decode(&text)
                        .ok()
                        .and_then(|b| b.as_slice().try_into().ok())
                };
                raw.map(|b| Signer::from_bytes(&b))
                    .ok_or_else(|| AuditError::BadKey {
                        path: shown,
                        message: "not a 32-byte Ed25519 secret key (raw, hex or base64)".into(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
                tollgate_types::fs::write_private_new(path, hex(&bytes).as_bytes()).map_err(
                    |source| AuditError::KeyFile {
                        path: shown.clone(),
                        source,
                    },
                )?;
                // Another process may have won the race: use what is on disk.
                Signer::load_or_create(path)
            }
            Err(source) => Err(AuditError::KeyFile {
                path: shown,
                source,
            }),
        }
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs a checkpoint.
    pub fn sign(&self, cp: &Checkpoint) -> SignedCheckpoint {
        let text = cp.text();
        let sig: Signature = self.key.sign(text.as_bytes());
        SignedCheckpoint {
            text,
            signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
            key_id: key_id(&self.key.verifying_key()),
        }
    }
}

/// A public key from 64 hex digits.
pub fn verifying_key_from_hex(s: &str) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(&unhex(s.trim())?).ok()
}

/// One entry as the verifier reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its sequence number.
    pub seq: i64,
    /// The hash stored with it.
    pub hash: Hash,
    /// Its content, rebuilt from the row it stands for; `None` if that row is gone.
    pub body: Option<Value>,
    /// What it stands for (`request rec_…`, `audit 17`), to name it in a report.
    pub what: String,
}

/// The first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The entry (or checkpoint size) where the chain breaks.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.problem)
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The last entry covered by a checked checkpoint.
    pub signed_through: i64,
    /// The last entry checked.
    pub last: i64,
    /// The first broken link, if any.
    pub broken: Option<Break>,
}

/// Walks entries in order against the checkpoints: [`Verifier::entry`] for each, then
/// [`Verifier::finish`].
#[derive(Debug)]
pub struct Verifier {
    checkpoints: std::collections::VecDeque<(Checkpoint, Hash)>,
    prev: Hash,
    next_seq: i64,
    leaves: Vec<Hash>,
    leaves_from: i64,
    report: Report,
}

impl Verifier {
    /// A verifier of the entries from `first_seq` on (whose previous hash is `prev`: [`GENESIS`]
    /// from the start), against `checkpoints` (any order) signed by `key`. Checkpoints are
    /// checked first: a bad signature or a broken checkpoint chain is reported at once.
    pub fn new(
        key: VerifyingKey,
        first_seq: i64,
        prev: Hash,
        checkpoints: &[SignedCheckpoint],
        from_the_start: bool,
    ) -> Verifier {
        let mut v = Verifier {
            checkpoints: Default::default(),
            prev,
            next_seq: first_seq,
            leaves: Vec::new(),
            leaves_from: first_seq,
            report: Report {
                last: first_seq - 1,
                ..Default::default()
            },
        };
        let mut parsed: Vec<(Checkpoint, Hash)> = Vec::new();
        for sc in checkpoints {
            let cp = match Checkpoint::parse(&sc.text) {
                Ok(cp) => cp,
                Err(e) => {
                    v.fail(0, format!("a checkpoint cannot be read: {e}"));
                    return v;
                }
            };
            let sig = base64::engine::general_purpose::STANDARD
                .decode(&sc.signature)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
                .map(|b| Signature::from_bytes(&b));
            let ok = sig.is_some_and(|s| key.verify(sc.text.as_bytes(), &s).is_ok());
            if !ok {
                v.fail(
                    cp.size,
                    format!(
                        "the checkpoint at {} (time {}) is not signed by key {}: forged or altered",
                        cp.size,
                        cp.at,
                        key_id(&key)
                    ),
                );
                return v;
            }
            parsed.push((cp, checkpoint_hash(&sc.text)));
        }
        parsed.sort_by_key(|(cp, _)| (cp.size, cp.at));
        let mut prev_cp: Option<(Checkpoint, Hash)> = None;
        for (cp, h) in &parsed {
            let expected_prev = prev_cp.map(|p| p.1);
            let expected_from = prev_cp.map_or(1, |p| p.0.size + 1);
            match expected_prev {
                Some(p) if cp.prev != p => {
                    v.fail(cp.size, format!("the checkpoint at {} (time {}) does not follow the one before it: a checkpoint is missing or was replaced", cp.size, cp.at));
                    return v;
                }
                None if from_the_start && cp.prev != GENESIS => {
                    v.fail(
                        cp.size,
                        format!(
                            "the first checkpoint (at {}) names a previous one: the first was removed",
                            cp.size
                        ),
                    );
                    return v;
                }
                _ => {}
            }
            if (expected_prev.is_some() || from_the_start) && cp.from != expected_from {
                v.fail(
                    cp.size,
                    format!(
                        "the checkpoint at {} starts at entry {} where {} was expected",
                        cp.size, cp.from, expected_from
                    ),
                );
                return v;
            }
            prev_cp = Some((*cp, *h));
        }
        // Only the checkpoints this range can check.
        v.checkpoints = parsed
            .into_iter()
            .filter(|(cp, _)| cp.from >= first_seq && cp.size >= first_seq - 1)
            .collect();
        v.report.checkpoints = 0;
        // Checkpoints over no entry at the very start (an empty chain's) are checked now.
        v.check_due();
        v
    }

    fn fail(&mut self, seq: i64, problem: String) {
        if self.report.broken.is_none() {
            self.report.broken = Some(Break { seq, problem });
        }
    }

    /// Whether a break was found (later entries are not looked at).
    pub fn is_broken(&self) -> bool {
        self.report.broken.is_some()
    }

    /// Checks the next entry.
    pub fn entry(&mut self, e: &Entry) {
        if self.is_broken() {
            return;
        }
        if e.seq != self.next_seq {
            let problem = if e.seq > self.next_seq {
                format!(
                    "is missing: entry {} comes after entry {} (deleted or reordered?)",
                    e.seq,
                    self.next_seq - 1
                )
            } else {
                format!(
                    "appears again after entry {} (inserted or reordered?)",
                    self.next_seq - 1
                )
            };
            let at = self.next_seq.min(e.seq.max(self.next_seq));
            self.fail(at, problem);
            return;
        }
        let Some(body) = &e.body else {
            self.fail(
                e.seq,
                format!("the row it stands for ({}) is gone (deleted?)", e.what),
            );
            return;
        };
        let computed = entry_hash(&self.prev, body);
        if computed != e.hash {
            self.fail(
                e.seq,
                format!(
                    "its content ({}) does not match its hash, or the entry before it changed (modified, inserted or reordered?)",
                    e.what
                ),
            );
            return;
        }
        self.prev = computed;
        self.leaves.push(computed);
        self.next_seq += 1;
        self.report.entries += 1;
        self.report.last = e.seq;
        self.check_due();
    }

    /// Checks every checkpoint whose last entry has been seen.
    fn check_due(&mut self) {
        while let Some((cp, _)) = self.checkpoints.front().copied() {
            if cp.size > self.report.last {
                break;
            }
            self.checkpoints.pop_front();
            if cp.size < self.leaves_from - 1 {
                continue;
            }
            // The leaves since the previous checkpoint: from cp.from to cp.size.
            let skip = usize::try_from(cp.from - self.leaves_from).unwrap_or(usize::MAX);
            let take = usize::try_from(cp.size - cp.from + 1).unwrap_or(0);
            let leaves: Vec<Hash> = self.leaves.iter().skip(skip).take(take).copied().collect();
            // Checked when its last entry has just been seen: `prev` is that entry's hash.
            if self.prev != cp.head || leaves.len() != take || merkle_root(&leaves) != cp.root {
                self.fail(
                    cp.size,
                    format!(
                        "does not match the checkpoint signed at time {} over entries {}..={}: the chain was rewritten after it was signed",
                        cp.at, cp.from, cp.size
                    ),
                );
                return;
            }
            self.report.checkpoints += 1;
            self.report.signed_through = cp.size;
            self.leaves.clear();
            self.leaves_from = cp.size + 1;
        }
    }

    /// Ends the walk: checkpoints naming entries that never came are a break.
    pub fn finish(mut self) -> Report {
        if !self.is_broken()
            && let Some((cp, _)) = self.checkpoints.front().copied()
        {
            self.fail(
                cp.size,
                format!(
                    "is named by the checkpoint signed at time {} but the chain ends at {} (entries deleted at the end?)",
                    cp.at, self.report.last
                ),
            );
        }
        self.report
    }
}

#[cfg(test)]
mod tests;
