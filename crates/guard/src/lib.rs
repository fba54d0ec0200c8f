//! The guard engine: finds personal data, secrets, prompt-injection signs and operator terms in
//! text.
//!
//! Synchronous, no I/O, no async, no knowledge of HTTP: the gateway, the CLI (`tollgate guard
//! scan`) and the evaluation harness all call the same [`Guard::scan`].
//!
//! How a scan works (`../shared/reference/pii.md`):
//!
//! 1. **Normalize** ([`normalize`]): NFKC per character, invisible characters removed; spans are
//!    always reported in the original text's byte offsets.
//! 2. **Recognize**, each family in one linear pass with a cheap trigger, so adding a pattern does
//!    not add a pass over the text:
//!    - [`numbers`]: one scan for digit runs (with their separators and parentheses) feeds cards,
//!      SSNs, phones, IPv4, dates and the numeric national ids;
//!    - [`words`]: one scan for alphanumeric words feeds IBANs, wallets, prefixed tokens and the
//!      alphanumeric national ids;
//!    - [`shapes`]: e-mail around each `@`, credentials around each `://`, PEM blocks, JWTs,
//!      secret keywords, MAC and IPv6 addresses, written dates;
//!    - [`injection`]: hidden characters, override phrases, role markers, encoded blobs (decoded
//!      and scanned again);
//!    - [`dict`]: operator dictionaries (custom and denied terms, the allow-list) in one
//!      Aho-Corasick automaton.
//! 3. **Validate** ([`validate`]): a checksum that passes makes the score 1.0; one that fails
//!    drops the candidate.
//! 4. **Score and resolve** ([`resolve`]): context words a few words before a weak match add 0.35
//!    (at least 0.4); matches under the caller's threshold go; overlaps are resolved — validated
//!    beats unvalidated, longer beats contained, higher score wins; the allow-list removes what it
//!    covers.

pub mod dict;
pub mod entity;
pub mod injection;
pub mod normalize;
pub mod numbers;
pub mod policy;
pub mod resolve;
pub mod shapes;
pub mod stream;
pub mod swar;
pub mod triggers;
pub mod validate;
pub mod words;

pub use entity::{Entity, Pack, UnknownEntity};
pub use policy::{Action, Applied, Policy, PolicyError, Rule, SessionTokens, Tokenizer};

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The default score threshold: a finding scoring less is not reported.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// What one scan found: an entity type at a span of the original text. Never the value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The entity type.
    #[serde(rename = "type")]
    pub entity: Entity,
    /// Start, in bytes of the original text.
    pub start: usize,
    /// End (exclusive), in bytes of the original text.
    pub end: usize,
    /// 0.0–1.0.
    pub score: f32,
    /// Whether a checksum or a structural validator confirmed it.
    pub validated: bool,
    /// Which recognizer found it (`luhn`, `e164`, `override_phrase`, …).
    pub rule: &'static str,
}

/// A match before scoring and resolution, in normalized-text offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The entity type.
    pub entity: Entity,
    /// Start, in bytes of the normalized text.
    pub start: usize,
    /// End, in bytes of the normalized text.
    pub end: usize,
    /// Score before context.
    pub score: f32,
    /// Whether a validator confirmed it.
    pub validated: bool,
    /// The recognizer.
    pub rule: &'static str,
}

impl Candidate {
    fn new(
        entity: Entity,
        start: usize,
        end: usize,
        score: f32,
        validated: bool,
        rule: &'static str,
    ) -> Self {
        Candidate {
            entity,
            start,
            end,
            score,
            validated,
            rule,
        }
    }
}

/// Phone-number regions whose national formats (without `+`) are recognized. Numbers in E.164
/// form (`+44 20 7946 0958`) are recognized for every country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Region {
    /// United States and Canada (NANP).
    Us,
    /// United Kingdom.
    Gb,
    /// Germany.
    De,
    /// France.
    Fr,
    /// India.
    In,
    /// Australia.
    Au,
    /// Spain.
    Es,
    /// Italy.
    It,
    /// Netherlands.
    Nl,
}

impl Region {
    /// Every region, in declaration order (the order national formats are tried in).
    pub const ALL: [Region; 9] = [
        Region::Us,
        Region::Gb,
        Region::De,
        Region::Fr,
        Region::In,
        Region::Au,
        Region::Es,
        Region::It,
        Region::Nl,
    ];
}

/// How a guard is built: what to look for beyond the built-in entity types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// National-id packs to scan for.
    pub packs: BTreeSet<Pack>,
    /// Regions whose national phone formats are recognized.
    pub phone_regions: BTreeSet<Region>,
    /// Whether to look for prompt-injection signs.
    pub injection: bool,
    /// Operator terms reported as `CUSTOM_TERM` (whole word, case-insensitive).
    pub custom_terms: Vec<String>,
    /// Operator terms reported as `DENIED_TERM`.
    pub denied_terms: Vec<String>,
    /// Values never reported, whatever finds them (the company's own support address, say).
    pub allow: Vec<String>,
    /// Loopback, private, link-local and documentation IP addresses are not reported.
    pub ignore_private_ips: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            packs: BTreeSet::new(),
            phone_regions: [Region::Us, Region::Gb].into_iter().collect(),
            injection: true,
            custom_terms: Vec::new(),
            denied_terms: Vec::new(),
            allow: Vec::new(),
            ignore_private_ips: false,
        }
    }
}

/// Why a guard could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// A dictionary term is empty or too long.
    #[error("{list}[{index}]: {message}")]
    Term {
        /// `custom_terms`, `denied_terms` or `allow`.
        list: &'static str,
        /// Index in the list.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

/// A compiled guard: build once, scan many texts from many threads.
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    shapes: shapes::Shapes,
    injection: injection::Injection,
    triggers: triggers::Triggers,
    dict: dict::Dictionaries,
}

/// Longest dictionary term, in bytes.
pub const MAX_TERM_BYTES: usize = 256;

impl Guard {
    /// Compiles a guard for `config`.
    pub fn new(config: GuardConfig) -> Result<Guard, GuardError> {
        let dict = dict::Dictionaries::new(&config)?;
        Ok(Guard {
            shapes: shapes::Shapes::new(),
            injection: injection::Injection::new(),
            triggers: triggers::Triggers::new(),
            dict,
            config,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Findings in `text` at the default threshold, sorted by start.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        self.scan_with(text, |_| Some(DEFAULT_THRESHOLD))
    }

    /// Findings in `text`: `threshold(entity)` is the least score reported for each type
    /// (`None`: the type is not reported at all). Sorted by start, never overlapping.
    pub fn scan_with(&self, text: &str, threshold: impl Fn(Entity) -> Option<f32>) -> Vec<Finding> {
        self.scan_depth(text, &threshold, 0)
    }

    fn scan_depth(
        &self,
        text: &str,
        threshold: &dyn Fn(Entity) -> Option<f32>,
        depth: u8,
    ) -> Vec<Finding> {
        let norm = normalize::Normalized::new(text);
        let t: &str = &norm.text;
        let mut cands = Vec::new();
        numbers::scan(t, &self.config, &mut cands);
        words::scan(t, &self.config, &mut cands);
        let (mut shape_hits, mut injection_hits) = (Vec::new(), Vec::new());
        self.triggers.find(
            t,
            self.config.injection,
            &mut shape_hits,
            &mut injection_hits,
        );
        // Runs of base64 long enough to be a blob or a secret key: found once for both.
        let blobs: Vec<(usize, usize, usize)> =
            injection::runs(t.as_bytes(), injection::MIN_BLOB).collect();
        self.shapes.scan(t, &shape_hits, &blobs, &mut cands);
        self.dict.scan(t, &mut cands);
        if self.config.injection {
            self.injection.scan(t, &injection_hits, &mut cands);
        }
        if self.config.ignore_private_ips {
            cands.retain(|c| {
                c.entity != Entity::IpAddress || !shapes::is_private_ip(&t[c.start..c.end])
            });
        }
        cands.retain(|c| {
            c.entity
                .pack()
                .is_none_or(|p| self.config.packs.contains(&p))
        });
        let allowed = self.dict.allowed_spans(t);
        let resolved = resolve::resolve(t, cands, threshold, &allowed);
        let mut out: Vec<Finding> = resolved
            .into_iter()
            .map(|c| {
                let (start, end) = norm.original_span(c.start, c.end);
                Finding {
                    entity: c.entity,
                    start,
                    end,
                    score: c.score,
                    validated: c.validated,
                    rule: c.rule,
                }
            })
            .collect();
        // Hidden characters are judged on the original text (normalization removes them).
        if self.config.injection {
            for f in injection::hidden_characters(text, threshold) {
                if !out.iter().any(|g| g.start < f.end && f.start < g.end) {
                    out.push(f);
                }
            }
            // Encoded blobs: decoded and scanned again; what they hide is reported on the blob.
            if depth < injection::MAX_DECODE_DEPTH {
                for (start, end, decoded) in injection::decoded_runs(t, &blobs) {
                    let inner = self.scan_depth(&decoded, threshold, depth + 1);
                    if let Some(best) = inner.iter().max_by(|a, b| a.score.total_cmp(&b.score)) {
                        let (s, e) = norm.original_span(start, end);
                        if !out.iter().any(|f| f.start < e && s < f.end) {
                            out.push(Finding {
                                entity: best.entity,
                                start: s,
                                end: e,
                                score: best.score,
                                validated: best.validated,
                                rule: "encoded_blob",
                            });
                        }
                    }
                }
            }
            out.sort_by_key(|f| (f.start, f.end));
        }
        out
    }
}

#[cfg(test)]
mod tests;
