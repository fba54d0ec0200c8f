//! Policies: what governance does with what the guard finds — per entity type an action and a
//! threshold — and applying them to a text.
//!
//! A policy is a document (YAML or JSON) that a use case carries (the org's default otherwise):
//!
//! ```yaml
//! threshold: 0.5               # the least score acted on, for types without their own
//! default: mask                # the action for types without a rule
//! secrets: block               # the action for every SECRET_* type without a rule
//! entities:
//!   EMAIL_ADDRESS: tokenize    # an action …
//!   PHONE_NUMBER: { action: mask, threshold: 0.7 }   # … or an action and a threshold
//!   DATE_OF_BIRTH: allow
//! scan: { input: true, tool_arguments: true, tool_results: true, output: true }
//! logging: none                # none | metadata | masked | full
//! retention_days: 30
//! guard: { packs: [uk], custom_terms: [Project Falcon], denied_terms: [internal-only] }
//! ```
//!
//! Actions: `allow` (found and counted, text unchanged), `mask` (`<EMAIL_ADDRESS>`), `redact`
//! (removed), `hash` (`<EMAIL_ADDRESS#kdjfbeapcmnl>`: a keyed hash, the same for the same value,
//! letters only so the mask itself is never found again), `tokenize` (`<EMAIL_ADDRESS_1>`,
//! reversible: the same value gets the same token within a conversation, and answers are
//! unmasked), `block` (the request is refused, naming the types, never the values). Without a
//! rule, denied terms are blocked, prompt-injection signs allowed (counted), secrets blocked and
//! everything else masked.

use crate::{DEFAULT_THRESHOLD, Entity, Finding, Guard, GuardConfig, GuardError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What to do with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Leave it; count it.
    Allow,
    /// Replace it with `<TYPE>`.
    Mask,
    /// Remove it.
    Redact,
    /// Replace it with `<TYPE#…>`, a keyed hash of the value.
    Hash,
    /// Replace it with `<TYPE_n>`, reversibly.
    Tokenize,
    /// Refuse the request.
    Block,
}

impl Action {
    /// Every action, in the order counts are reported.
    pub const ALL: [Action; 6] = [
        Action::Allow,
        Action::Mask,
        Action::Redact,
        Action::Hash,
        Action::Tokenize,
        Action::Block,
    ];

    /// The name (`mask`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Mask => "mask",
            Action::Redact => "redact",
            Action::Hash => "hash",
            Action::Tokenize => "tokenize",
            Action::Block => "block",
        }
    }
}

/// One entity type's rule: written as an action alone (`mask`) or with a threshold
/// (`{ action: mask, threshold: 0.7 }`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// The least score acted on (the policy's threshold when absent).
    pub threshold: Option<f32>,
}

/// Written the way it is read: the action alone when there is no threshold of its own.
impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        match self.threshold {
            None => self.action.serialize(s),
            Some(t) => {
                let mut st = s.serialize_struct("Rule", 2)?;
                st.serialize_field("action", &self.action)?;
                st.serialize_field("threshold", &t)?;
                st.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Action(Action),
            Full(Full),
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            action: Action,
            #[serde(default)]
            threshold: Option<f64>,
        }
        let raw = serde_json::Value::deserialize(d)?;
        let hint = "expected an action (allow, mask, redact, hash, tokenize, block) or { action, threshold }";
        match Raw::deserialize(raw) {
            Ok(Raw::Action(action)) => Ok(Rule {
                action,
                threshold: None,
            }),
            Ok(Raw::Full(f)) => {
                let threshold = f
                    .threshold
                    .map(|t| {
                        if (0.0..=1.0).contains(&t) {
                            Ok(t as f32)
                        } else {
                            Err(format!("threshold must be from 0 to 1; got {t}"))
                        }
                    })
                    .transpose()
                    .map_err(serde::de::Error::custom)?;
                Ok(Rule {
                    action: f.action,
                    threshold,
                })
            }
            Err(_) => Err(serde::de::Error::custom(hint)),
        }
    }
}

/// Which parts of a request and its answer are scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    /// Message contents on the way in.
    pub input: bool,
    /// Tool-call arguments the client sends back (assistant messages).
    pub tool_arguments: bool,
    /// Tool results (`tool` messages).
    pub tool_results: bool,
    /// Answers on the way out.
    pub output: bool,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            input: true,
            tool_arguments: true,
            tool_results: true,
            output: true,
        }
    }
}

/// What of a request's content is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Logging {
    /// Nothing (the default).
    #[default]
    None,
    /// Sizes and findings, no text.
    Metadata,
    /// The text after the policy's actions.
    Masked,
    /// The text as sent (encrypted at rest).
    Full,
}

/// A policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The least score acted on, for types without their own.
    pub threshold: f32,
    /// The action for types without a rule (secrets, denied terms and injection signs aside).
    pub default: Action,
    /// The action for `SECRET_*` types without a rule.
    pub secrets: Action,
    /// Rules per entity type.
    pub entities: BTreeMap<Entity, Rule>,
    /// What is scanned.
    pub scan: Scope,
    /// What is stored.
    pub logging: Logging,
    /// Days stored content is kept.
    pub retention_days: u32,
    /// What to look for beyond the built-in types.
    pub guard: GuardConfig,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            threshold: DEFAULT_THRESHOLD,
            default: Action::Mask,
            secrets: Action::Block,
            entities: BTreeMap::new(),
            scan: Scope::default(),
            logging: Logging::None,
            retention_days: 30,
            guard: GuardConfig::default(),
        }
    }
}

/// Why a policy cannot be used, with the path of the mistake (`entities.PHONE_NUMBER`,
/// `guard.custom_terms[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// Where.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Bytes on either side of a seam between two pieces that [`Policy::apply_seams`] reads: as
/// long as an e-mail address may be. A longer token cut in two (a JWT, a PEM key) is left to
/// what each piece's own scan finds of it.
pub const SEAM_REACH: usize = 256;

/// Bytes a seam is read along a run without blanks that crosses it, on either side (as long as
/// the longest token the stream filter holds whole).
pub const SEAM_RUN: usize = 8 * 1024;

/// A piece's core: its text without the blanks and invisible characters at its edges.
#[derive(Debug, Clone, Copy)]
struct Core {
    piece: usize,
    start: usize,
    end: usize,
}

/// The cores of `pieces`, leaving out pieces with none or with only separators.
fn cores(pieces: &[&mut String]) -> Vec<Core> {
    pieces
        .iter()
        .enumerate()
        .filter_map(|(piece, p)| core_of(piece, p))
        .collect()
}

#[cfg(test)]
thread_local! {
    /// How many pieces [`core_of`] has read on this thread (a test holds it linear).
    static CORE_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The core of `p`, the piece at `piece`: `None` if it has none or only separators.
fn core_of(piece: usize, p: &str) -> Option<Core> {
    #[cfg(test)]
    CORE_READS.with(|n| n.set(n.get() + 1));
    let edge = |c: char| c.is_whitespace() || crate::normalize::is_invisible(c);
    let start = p.len() - p.trim_start_matches(edge).len();
    let end = p.trim_end_matches(edge).len();
    let core = p.get(start..end)?;
    let only_separators = core.chars().all(|c| {
        edge(c)
            || matches!(
                c,
                '-' | '_' | ',' | '|' | ':' | ';' | '/' | '\\' | '‐'..='―'
            )
    });
    (!core.is_empty() && !only_separators).then_some(Core { piece, start, end })
}

/// The longest retention a policy may ask for, in days (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

impl Policy {
    /// Reads a policy from YAML (JSON is YAML too), naming the path of a mistake.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let p: Policy = serde_path_to_error::deserialize(de).map_err(|e| {
            let message = e.inner().to_string();
            // serde_yaml starts its message with the part of the path it knows; the path is
            // given whole already.
            let message = match message.split_once(": ") {
                Some((head, rest)) if !head.contains([' ', '`']) => rest.to_string(),
                _ => message,
            };
            // In the words the admin API uses for its JSON; a file keeps its line and column.
            let (words, at) = tollgate_types::text::split_position(&message);
            let message = format!(
                "{}{}",
                tollgate_types::text::serde_message(words),
                at.unwrap_or("")
            );
            PolicyError {
                path: e.path().to_string(),
                message,
            }
        })?;
        p.validate()?;
        Ok(p)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let err = |path: &str, message: String| PolicyError {
            path: path.into(),
            message,
        };
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(err(
                "threshold",
                format!("must be from 0 to 1; got {}", self.threshold),
            ));
        }
        if !(1..=MAX_RETENTION_DAYS).contains(&self.retention_days) {
            return Err(err(
                "retention_days",
                format!(
                    "must be from 1 to {MAX_RETENTION_DAYS} (days a stored payload stays readable); got {}",
                    self.retention_days
                ),
            ));
        }
        Ok(())
    }

    /// The action for `entity` when found at or above its threshold.
    pub fn action(&self, entity: Entity) -> Action {
        if let Some(r) = self.entities.get(&entity) {
            return r.action;
        }
        match entity {
            Entity::DeniedTerm => Action::Block,
            Entity::PromptInjection => Action::Allow,
            e if e.is_secret() => self.secrets,
            _ => self.default,
        }
    }

    /// The least score acted on for `entity`.
    pub fn threshold(&self, entity: Entity) -> f32 {
        self.entities
            .get(&entity)
            .and_then(|r| r.threshold)
            .unwrap_or(self.threshold)
    }

    /// Compiles the guard this policy scans with.
    pub fn guard(&self) -> Result<Guard, PolicyError> {
        self.validate()?;
        Guard::new(self.guard.clone()).map_err(|e| match e {
            GuardError::Term {
                list,
                index,
                message,
            } => PolicyError {
                path: format!("guard.{list}[{index}]"),
                message,
            },
        })
    }

    /// Scans `text` with `guard` (compiled from this policy) and applies the actions.
    pub fn apply(
        &self,
        guard: &Guard,
        text: &str,
        hash_key: &[u8],
        tokens: &mut dyn Tokenizer,
    ) -> Applied {
        let findings = guard.scan_with(text, |e| Some(self.threshold(e)));
        self.apply_findings(text, &findings, hash_key, tokens)
    }

    /// Applies the actions to `findings` of `text` (sorted, not overlapping, as a scan gives).
    pub fn apply_findings(
        &self,
        text: &str,
        findings: &[Finding],
        hash_key: &[u8],
        tokens: &mut dyn Tokenizer,
    ) -> Applied {
        apply_with(text, findings, |f| self.action(f.entity), hash_key, tokens)
    }

    /// Applies the actions to values split across `pieces` — consecutive texts a provider reads
    /// together (a message's text parts, the messages of a conversation, tool calls' arguments)
    /// that were each already guarded on their own: `card 4111 1111` + `1111 1111`, `zed@` +
    /// `example.com`.
    ///
    /// The pieces are read glued as they are (any cut of one text), and then by their *cores*:
    /// a piece without the blanks and invisible characters at its edges, a piece with no core
    /// or only separators (`-`, `_`, `,`, `|` …) read as nothing between its neighbours. The
    /// cores are read glued, and with a space where a letter or digit meets a letter or digit,
    /// all together (a value cut in many pieces), and, with three cores or more, each seam on
    /// its own too (so a word glued on at another seam does not hide a value at this one). Each
    /// seam is read within [`SEAM_REACH`] bytes, or further along a run without blanks that
    /// crosses it (a long token cut in two), up to [`SEAM_RUN`]. A value that crosses a seam
    /// gets its action: its first piece's share is replaced by the mask, hash or token, the
    /// other pieces' shares are removed. Values inside one piece are not looked at again.
    pub fn apply_seams(
        &self,
        guard: &Guard,
        pieces: &mut [&mut String],
        hash_key: &[u8],
        tokens: &mut dyn Tokenizer,
    ) -> Applied {
        let mut out = Applied {
            text: String::new(),
            blocked: BTreeSet::new(),
            counts: BTreeMap::new(),
        };
        let first = cores(pieces);
        if first.len() < 2 {
            return out;
        }
        // The pieces as they are, glued (any cut of one text); then their cores, glued (when
        // that differs) and with a space; then, with three cores or more, each seam on its own.
        // (separator, whole pieces or cores, which seams: all together or one at a time)
        let trimmed = first.len() != pieces.len()
            || first
                .iter()
                .any(|c| c.start > 0 || c.end < pieces[c.piece].len());
        let mut passes = vec![("", false)];
        if trimmed {
            passes.push(("", true));
        }
        passes.push((" ", true));
        for (sep, trim) in passes {
            // As the pieces are now (an earlier pass may have changed one, or emptied it: there
            // are fewer cores then).
            let all = if trim {
                cores(pieces)
            } else {
                (0..pieces.len())
                    .map(|piece| Core {
                        piece,
                        start: 0,
                        end: pieces[piece].len(),
                    })
                    .collect()
            };
            if all.len() >= 2 {
                self.apply_group(guard, pieces, &all, sep, hash_key, tokens, &mut out);
            }
        }
        if first.len() >= 3 {
            // Each seam on its own, between the cores as the passes above left them. Only the
            // two pieces of a seam are read again before it (a seam's pass changes no other):
            // reading every piece again before each seam cost time in the square of their
            // number (20,000 one-word messages took 17 s).
            let all = cores(pieces);
            for k in 1..all.len() {
                let pair: Vec<Core> = [all[k - 1].piece, all[k].piece]
                    .into_iter()
                    .filter_map(|i| core_of(i, pieces[i]))
                    .collect();
                if pair.len() == 2 {
                    self.apply_group(guard, pieces, &pair, "", hash_key, tokens, &mut out);
                }
            }
        }
        out
    }

    /// One pass of [`Policy::apply_seams`]: `group`'s cores joined by `sep`, read around each
    /// seam, and the values that cross one acted on.
    #[allow(clippy::too_many_arguments)]
    fn apply_group(
        &self,
        guard: &Guard,
        pieces: &mut [&mut String],
        group: &[Core],
        sep: &str,
        hash_key: &[u8],
        tokens: &mut dyn Tokenizer,
        out: &mut Applied,
    ) {
        let mut joined = String::new();
        // Where each core lies in `joined`.
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(group.len());
        for (k, c) in group.iter().enumerate() {
            if k > 0 {
                joined.push_str(sep);
            }
            let at = joined.len();
            joined.push_str(&pieces[c.piece][c.start..c.end]);
            spans.push((at, joined.len()));
        }
        let touches = |f: &Finding, k: usize| f.start < spans[k].1 && f.end > spans[k].0;
        let b = joined.as_bytes();
        // The stretches around the seams, merged where they meet. Joined with a space, a seam
        // matters only between two letters or digits (`4111 1111` + `1111 1111`, `Project` +
        // `Falcon`): a value is never cut at a space beside punctuation.
        let mut stretches: Vec<(usize, usize)> = Vec::new();
        for k in 1..group.len() {
            let (end_before, seam) = (spans[k - 1].1, spans[k].0);
            if !sep.is_empty() {
                let before = joined[..end_before].chars().next_back();
                let after = joined[seam..].chars().next();
                if !(before.is_some_and(char::is_alphanumeric)
                    && after.is_some_and(char::is_alphanumeric))
                {
                    continue;
                }
            }
            // Out to the reach, or along a run without blanks that crosses the seam.
            let mut a = end_before;
            while a > 0 && end_before - a < SEAM_RUN && !b[a - 1].is_ascii_whitespace() {
                a -= 1;
            }
            let mut z = seam;
            while z < b.len() && z - seam < SEAM_RUN && !b[z].is_ascii_whitespace() {
                z += 1;
            }
            let a = crate::normalize::floor_boundary(
                &joined,
                a.min(end_before.saturating_sub(SEAM_REACH)),
            );
            let z = crate::normalize::ceil_boundary(&joined, z.max(seam + SEAM_REACH));
            match stretches.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(z),
                _ => stretches.push((a, z)),
            }
        }
        let mut crossing: Vec<Finding> = Vec::new();
        for (a, z) in stretches {
            for mut f in guard.scan_with(&joined[a..z], |e| Some(self.threshold(e))) {
                f.start += a;
                f.end += a;
                let touched: Vec<usize> = (0..group.len()).filter(|&k| touches(&f, k)).collect();
                // A value that one piece holds on its own is that piece's (found, or allowed,
                // there): `mail ` + `ann@example.org` glued is no `mailann@…` across the seam.
                let own = || {
                    touched.iter().any(|&k| {
                        let (js, je) = spans[k];
                        guard
                            .scan_with(&joined[js..je], |e| Some(self.threshold(e)))
                            .iter()
                            .any(|g| {
                                g.entity == f.entity && js + g.start < f.end && f.start < js + g.end
                            })
                    })
                };
                if touched.len() >= 2
                    && self.action(f.entity) != Action::Allow
                    && !crossing.iter().any(|g| g.start < f.end && f.start < g.end)
                    && !own()
                {
                    crossing.push(f);
                }
            }
        }
        crossing.sort_by_key(|f| f.start);
        // Last first: what lies before a finding's start is then as it was.
        for f in crossing.iter().rev() {
            let applied = self.apply_findings(&joined, std::slice::from_ref(f), hash_key, tokens);
            for (k, n) in &applied.counts {
                *out.counts.entry(*k).or_insert(0) += n;
            }
            out.blocked.extend(&applied.blocked);
            let tail = joined.len() - f.end;
            let replacement = &applied.text[f.start..applied.text.len() - tail];
            let mut first = true;
            for (k, c) in group.iter().enumerate() {
                if !touches(f, k) {
                    continue;
                }
                let (js, je) = spans[k];
                let range = c.start + f.start.max(js) - js..c.start + f.end.min(je) - js;
                pieces[c.piece].replace_range(range, if first { replacement } else { "" });
                first = false;
            }
        }
    }

    /// The action taken on an answer's `entity`: nothing can be refused or handed a new token
    /// once the model has written it, so `block` and `tokenize` mask.
    pub fn output_action(&self, entity: Entity) -> Action {
        match self.action(entity) {
            Action::Block | Action::Tokenize => Action::Mask,
            a => a,
        }
    }
}

/// Replaces each of `findings` in `text` as `action_of` its type says.
pub(crate) fn apply_with(
    text: &str,
    findings: &[Finding],
    action_of: impl Fn(&Finding) -> Action,
    hash_key: &[u8],
    tokens: &mut dyn Tokenizer,
) -> Applied {
    let mut out = Applied {
        text: String::with_capacity(text.len()),
        blocked: BTreeSet::new(),
        counts: BTreeMap::new(),
    };
    let mut at = 0;
    for f in findings {
        let action = action_of(f);
        *out.counts.entry((f.entity, action)).or_insert(0) += 1;
        if action == Action::Block {
            out.blocked.insert(f.entity);
        }
        if f.start < at || f.end > text.len() {
            continue;
        }
        let value = &text[f.start..f.end];
        out.text.push_str(&text[at..f.start]);
        match action {
            Action::Allow | Action::Block => out.text.push_str(value),
            Action::Mask => {
                out.text.push('<');
                out.text.push_str(f.entity.as_str());
                out.text.push('>');
            }
            Action::Redact => {}
            Action::Hash => out.text.push_str(&hashed(f.entity, value, hash_key)),
            Action::Tokenize => out.text.push_str(&tokens.token(f.entity, value)),
        }
        at = f.end;
    }
    out.text.push_str(&text[at..]);
    out
}

/// A text after a policy's actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The text with masks, hashes and tokens in place of values.
    pub text: String,
    /// Types whose action is `block` that were found: the request must be refused.
    pub blocked: BTreeSet<Entity>,
    /// How many findings per type and action (never a value).
    pub counts: BTreeMap<(Entity, Action), u32>,
}

/// HMAC-SHA-256 of `msg` under `key` (RFC 2104), by hand to keep the guard's dependencies to
/// what it already has.
fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.map(|x| x ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `hash` key of one scope (a use case) derived from the organization's key: the same value
/// hashes differently in two use cases, so a key holder of one cannot confirm guesses of values
/// seen hashed in another's prompts or provider logs.
pub fn scoped_key(key: &[u8], scope: &str) -> [u8; 32] {
    hmac(key, format!("tollgate hash scope\0{scope}").as_bytes())
}

/// `<TYPE#…>`: an HMAC-SHA-256 of the value under `key`, its first 12 nibbles written as the
/// letters `a`–`p` (no digit, so the mask is never mistaken for a number).
pub fn hashed(entity: Entity, value: &str, key: &[u8]) -> String {
    let mac = hmac(key, value.as_bytes());
    let letters: String = mac[..6]
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|n| char::from(b'a' + n))
        .collect();
    format!("<{}#{letters}>", entity.as_str())
}

/// A word joiner (U+2060) after the `<` of every token-shaped text (`<EMAIL_ADDRESS_1>`) a
/// client sent, so it is never taken for one of the gateway's tokens and unmasked in the answer
/// (clients always send values; a token in their text is typed to fish for another's value).
/// `None` when there is none.
pub fn neutralize_tokens(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut cuts = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        let at = i + off;
        let rest = &b[at + 1..];
        let name = rest
            .iter()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
            .count();
        let shaped = name >= 3
            && rest.get(name) == Some(&b'>')
            && rest[..name]
                .iter()
                .rposition(|c| *c == b'_')
                .is_some_and(|u| {
                    u > 0 && u + 1 < name && rest[u + 1..name].iter().all(u8::is_ascii_digit)
                });
        if shaped {
            cuts.push(at + 1);
        }
        i = at + 1;
    }
    if cuts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 3 * cuts.len());
    let mut last = 0;
    for c in cuts {
        out.push_str(&text[last..c]);
        out.push('\u{2060}');
        last = c;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Gives reversible tokens for values: the same value the same token within one conversation.
pub trait Tokenizer {
    /// The token for `value` of type `entity`.
    fn token(&mut self, entity: Entity, value: &str) -> String;
}

/// Tokens of one conversation, in memory: `<EMAIL_ADDRESS_1>`, `<EMAIL_ADDRESS_2>`, … and back.
#[derive(Debug, Default, Clone)]
pub struct SessionTokens {
    by_value: HashMap<(Entity, String), String>,
    by_token: HashMap<String, String>,
    next: HashMap<Entity, u32>,
}

impl SessionTokens {
    /// The value a token stands for.
    pub fn value(&self, token: &str) -> Option<&str> {
        self.by_token.get(token).map(String::as_str)
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// Every pair as (type, value, token), to store the conversation's tokens elsewhere.
    pub fn entries(&self) -> Vec<(Entity, String, String)> {
        let mut out: Vec<_> = self
            .by_value
            .iter()
            .map(|((e, v), t)| (*e, v.clone(), t.clone()))
            .collect();
        out.sort_by(|a, b| a.2.cmp(&b.2));
        out
    }

    /// Adds the pairs of `entries` this conversation does not hold yet: a value it already has a
    /// token for, or a token it already gave another value, is skipped. Later tokens are numbered
    /// after every one added.
    pub fn absorb(&mut self, entries: impl IntoIterator<Item = (Entity, String, String)>) {
        for (entity, value, token) in entries {
            if self.by_value.contains_key(&(entity, value.clone()))
                || self.by_token.contains_key(&token)
            {
                continue;
            }
            let prefix = format!("<{}_", entity.as_str());
            let Some(n) = token
                .strip_prefix(&prefix)
                .and_then(|t| t.strip_suffix('>'))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let next = self.next.entry(entity).or_insert(0);
            *next = (*next).max(n);
            self.by_token.insert(token.clone(), value.clone());
            self.by_value.insert((entity, value), token);
        }
    }

    /// `text` with every token of this conversation replaced by its value.
    pub fn unmask(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let value = tail
                .find('>')
                .and_then(|close| self.value(&tail[..=close]).map(|v| (v, close)));
            match value {
                Some((v, close)) => {
                    out.push_str(v);
                    rest = &tail[close + 1..];
                }
                None => {
                    out.push('<');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

impl Tokenizer for SessionTokens {
    fn token(&mut self, entity: Entity, value: &str) -> String {
        if let Some(t) = self.by_value.get(&(entity, value.to_string())) {
            return t.clone();
        }
        let n = self.next.entry(entity).or_insert(0);
        *n += 1;
        let token = format!("<{}_{}>", entity.as_str(), n);
        self.by_value
            .insert((entity, value.to_string()), token.clone());
        self.by_token.insert(token.clone(), value.to_string());
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"a test key";

    fn policy(yaml: &str) -> Policy {
        Policy::from_yaml(yaml).unwrap()
    }

    fn seams(p: &Policy, pieces: &[&str], tokens: &mut SessionTokens) -> (Vec<String>, Applied) {
        let g = p.guard().unwrap();
        let mut owned: Vec<String> = pieces.iter().map(|s| s.to_string()).collect();
        let mut refs: Vec<&mut String> = owned.iter_mut().collect();
        let a = p.apply_seams(&g, &mut refs, KEY, tokens);
        (owned, a)
    }

    /// The seams of many pieces are read in time linear in their number: each piece's core is
    /// read a bounded number of times (it was read again before every seam: 20,000 one-word
    /// messages took 17 s of CPU). And a value cut across two of them is still found.
    #[test]
    fn many_pieces_are_read_a_bounded_number_of_times_each() {
        let p = policy("default: mask");
        let mut pieces: Vec<String> = (0..5_000).map(|i| format!("word{i}")).collect();
        pieces[2_500] = "mail zed.victim@".into();
        pieces[2_501] = "corp-example.com".into();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        CORE_READS.with(|n| n.set(0));
        let (out, _) = seams(&p, &refs, &mut SessionTokens::default());
        let reads = CORE_READS.with(|n| n.get());
        assert!(
            reads <= 8 * pieces.len(),
            "{reads} core reads for {} pieces",
            pieces.len()
        );
        assert_eq!(out[2_500], "mail <EMAIL_ADDRESS>");
        assert_eq!(out[2_501], "");
    }

    #[test]
    fn values_split_across_pieces_get_their_action() {
        let mask = policy("default: mask\nsecrets: mask");
        let mut t = SessionTokens::default();
        // Joined with a space (parts of a message), glued (an address cut in two), in four
        // pieces, and across a piece that holds nothing of it.
        for (pieces, want) in [
            (
                &["card 4111 1111", "1111 1111 thanks"][..],
                &["card <CREDIT_CARD>", " thanks"][..],
            ),
            (
                &["write zed.victim@", "corp-example.com now"],
                &["write <EMAIL_ADDRESS>", " now"],
            ),
            (
                &["4111 ", "1111 ", "1111 ", "1111"],
                &["<CREDIT_CARD>", "", "", ""],
            ),
            (
                &["key AKIAIOSF", "ODNN7EXAMPLE"],
                &["key <SECRET_AWS_KEY>", ""],
            ),
        ] {
            let (got, a) = seams(&mask, pieces, &mut t);
            assert_eq!(got, want, "{pieces:?}");
            assert_eq!(
                a.counts.values().sum::<u32>(),
                1,
                "{pieces:?}: {:?}",
                a.counts
            );
            assert!(a.blocked.is_empty());
        }
        // Blanks, invisible characters and empty or separator-only pieces at a seam hide
        // nothing; a word glued on at another seam does not either.
        for pieces in [
            &["card 4111 1111 ", "", "  1111 1111"][..],
            &["card 4111 1111\n", "-", "\n1111 1111"],
            &["4111 1111\u{200B}", "\u{200B}1111 1111"],
            &["tool", "AKIAIOSF", "ODNN7EXAMPLE"],
            &["zed.victim@\n", "   ", "corp-example.com"],
        ] {
            let (got, a) = seams(&mask, pieces, &mut t);
            assert_eq!(a.counts.values().sum::<u32>(), 1, "{pieces:?}: {got:?}");
            let joined = got.concat();
            assert!(
                !joined.contains("1111 1111")
                    && !joined.contains("ODNN")
                    && !joined.contains("corp-"),
                "{pieces:?}: {got:?}"
            );
        }
        // A long token cut in two: read along its run, past the reach.
        let jwt = format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwicGFkIjoi".to_string() + &"eHh4".repeat(400) + "In0"
        );
        let (head, tail) = jwt.split_at(jwt.len() / 2);
        let (got, a) = seams(&mask, &[head, tail], &mut t);
        assert_eq!(got, ["<SECRET_JWT>", ""], "{:?}", a.counts);
        // A long local part reaches back past 32 bytes; a value wholly inside one piece is no
        // crossing; two crossings in one pass are both acted on.
        for (pieces, want) in [
            (
                &[
                    "write zed.victim.with.a.rather.long.local.part.for.testing.purposes@",
                    "corp-example.com now",
                ][..],
                &["write <EMAIL_ADDRESS>", " now"][..],
            ),
            (&["mail ", "ann@example.org"], &["mail ", "ann@example.org"]),
            (
                &["mail ann@", "example.com and bob@", "example.org"],
                &["mail <EMAIL_ADDRESS>", " and <EMAIL_ADDRESS>", ""],
            ),
        ] {
            let (got, _) = seams(&mask, pieces, &mut t);
            assert_eq!(got, want, "{pieces:?}");
        }
        // Under block: refused, whatever the pieces.
        let block = policy("default: block");
        let (_, a) = seams(&block, &["card 4111 1111", "1111 1111"], &mut t);
        assert_eq!(a.blocked, BTreeSet::from([Entity::CreditCard]));
        // Tokenized across a seam: the value comes back whole.
        let tok = policy("entities: { EMAIL_ADDRESS: tokenize }");
        let (got, a) = seams(&tok, &["mail zed.victim@", "corp-example.com"], &mut t);
        assert_eq!(a.counts[&(Entity::EmailAddress, Action::Tokenize)], 1);
        assert_eq!(t.unmask(&got.concat()), "mail zed.victim@corp-example.com");
        // Values inside one piece (already guarded there) and pieces that share nothing: no
        // finding, nothing changed.
        for pieces in [
            &["call <PHONE_NUMBER> today", "and mail ann@example.org"][..],
            &["one piece only 4111 1111 1111 1111"],
            &["the year 2024", "was good"],
        ] {
            let (got, a) = seams(&mask, pieces, &mut t);
            assert_eq!(got, pieces, "{pieces:?}");
            assert!(a.counts.is_empty(), "{pieces:?}: {:?}", a.counts);
        }
    }

    proptest! {
        // Few cuts of one short text: 64 cases cover them well (each compiles a guard).
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// However a text is cut into pieces, a card in it does not survive the pieces' own
        /// guard plus the seams' guard.
        #[test]
        fn no_card_survives_any_cut(cuts in proptest::collection::btree_set(1usize..37, 0..6)) {
            let text = "pay with 4111 1111 1111 1111 please";
            let p = policy("default: mask");
            let g = p.guard().unwrap();
            let mut t = SessionTokens::default();
            let mut bounds: Vec<usize> = vec![0];
            bounds.extend(cuts.iter().copied().filter(|&c| c < text.len()));
            bounds.push(text.len());
            let mut owned: Vec<String> = bounds
                .windows(2)
                .map(|w| p.apply(&g, &text[w[0]..w[1]], KEY, &mut t).text)
                .collect();
            let mut refs: Vec<&mut String> = owned.iter_mut().collect();
            p.apply_seams(&g, &mut refs, KEY, &mut t);
            let joined = owned.concat();
            prop_assert!(!joined.contains("1111"), "{joined}");
            prop_assert!(g.scan(&joined).iter().all(|f| !f.validated), "{joined}");
        }
    }

    #[test]
    fn hmac_is_rfc_4231() {
        let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        // Test cases 2 (a short key) and 6 (a key longer than the block, hashed first).
        assert_eq!(
            hex(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // A key of exactly one block (64 bytes) is used as it is, not hashed first.
        assert_eq!(
            hex(hmac(
                &[0xaa; 64],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "84332a7580ed3cf75de83c644c8d2c1c262ad90e0190e5c5ae4b82b2102e8e75"
        );
        // Scopes: two use cases, two keys; the same scope, the same key.
        assert_ne!(scoped_key(KEY, "uc_a"), scoped_key(KEY, "uc_b"));
        assert_eq!(scoped_key(KEY, "uc_a"), scoped_key(KEY, "uc_a"));
    }

    /// In an answer nothing can be refused or given a new token: `block` and `tokenize` are
    /// done (and counted) as `mask`; the other actions are done as they are.
    #[test]
    fn answers_mask_what_input_would_block_or_tokenize() {
        let p = policy(
            "entities:\n  EMAIL_ADDRESS: tokenize\n  CREDIT_CARD: block\n  PHONE_NUMBER: hash\n  IP_ADDRESS: redact\n  US_SSN: allow\n  IBAN_CODE: mask\n",
        );
        for (e, input, output) in [
            (Entity::EmailAddress, Action::Tokenize, Action::Mask),
            (Entity::CreditCard, Action::Block, Action::Mask),
            (Entity::PhoneNumber, Action::Hash, Action::Hash),
            (Entity::IpAddress, Action::Redact, Action::Redact),
            (Entity::UsSsn, Action::Allow, Action::Allow),
            (Entity::IbanCode, Action::Mask, Action::Mask),
        ] {
            assert_eq!((p.action(e), p.output_action(e)), (input, output), "{e}");
        }
    }

    #[test]
    fn each_action_does_what_it_says_and_counts_never_hold_values() {
        let p = policy(
            "entities:\n  EMAIL_ADDRESS: tokenize\n  PHONE_NUMBER: { action: hash }\n  IP_ADDRESS: redact\n  CREDIT_CARD: mask\n  US_SSN: allow\n",
        );
        let g = p.guard().unwrap();
        let mut tokens = SessionTokens::default();
        let text = "ann@example.org called +44 20 7946 0958 from 203.0.113.7 with card 4111 1111 1111 1111, SSN 123-45-6789; ann@example.org again";
        let a = p.apply(&g, text, KEY, &mut tokens);
        let phone = hashed(Entity::PhoneNumber, "+44 20 7946 0958", KEY);
        assert_eq!(
            a.text,
            format!(
                "<EMAIL_ADDRESS_1> called {phone} from  with card <CREDIT_CARD>, SSN 123-45-6789; <EMAIL_ADDRESS_1> again"
            )
        );
        assert!(a.blocked.is_empty());
        assert_eq!(a.counts[&(Entity::EmailAddress, Action::Tokenize)], 2);
        assert_eq!(a.counts[&(Entity::UsSsn, Action::Allow)], 1);
        // Only tokens come back; masks, hashes and what was redacted stay as they are.
        assert_eq!(
            tokens.unmask(&a.text),
            format!(
                "ann@example.org called {phone} from  with card <CREDIT_CARD>, SSN 123-45-6789; ann@example.org again"
            )
        );
        // The hash is keyed and letters only.
        assert_ne!(
            phone,
            hashed(Entity::PhoneNumber, "+44 20 7946 0958", b"another key")
        );
        assert!(
            phone[14..phone.len() - 1]
                .bytes()
                .all(|c| c.is_ascii_lowercase()),
            "{phone}"
        );
    }

    #[test]
    fn secrets_and_denied_terms_block_by_default_and_name_only_their_types() {
        let p = policy("guard: { denied_terms: [Project Falcon] }");
        let g = p.guard().unwrap();
        let a = p.apply(
            &g,
            "key AKIAIOSFODNN7EXAMPLE about project falcon",
            KEY,
            &mut SessionTokens::default(),
        );
        assert_eq!(
            a.blocked,
            [Entity::SecretAwsKey, Entity::DeniedTerm]
                .into_iter()
                .collect()
        );
        assert_eq!(p.action(Entity::PromptInjection), Action::Allow);
        assert_eq!(p.action(Entity::EmailAddress), Action::Mask);
        let p = policy("secrets: mask\nentities: { SECRET_AWS_KEY: tokenize }\ndefault: allow");
        assert_eq!(p.action(Entity::SecretAwsKey), Action::Tokenize);
        assert_eq!(p.action(Entity::SecretJwt), Action::Mask);
        assert_eq!(p.action(Entity::EmailAddress), Action::Allow);
    }

    #[test]
    fn token_shaped_text_from_clients_is_neutralized() {
        assert_eq!(
            neutralize_tokens("see <EMAIL_ADDRESS_1>, <CREDIT_CARD_12> and <b>bold</b>"),
            Some("see <\u{2060}EMAIL_ADDRESS_1>, <\u{2060}CREDIT_CARD_12> and <b>bold</b>".into())
        );
        for text in [
            "<EMAIL_ADDRESS>",
            "<_1>",
            "<EMAIL_ADDRESS_x>",
            "a < b",
            "<<",
            "<EMAIL_ADDRESS_1",
        ] {
            assert_eq!(neutralize_tokens(text), None, "{text}");
        }
        // What is neutralized is not unmasked.
        let mut t = SessionTokens::default();
        t.token(Entity::EmailAddress, "ann@example.org");
        let typed = neutralize_tokens("<EMAIL_ADDRESS_1>").unwrap();
        assert_eq!(t.unmask(&typed), typed);
    }

    #[test]
    fn thresholds_per_type_decide_what_is_acted_on() {
        // A bare 9-digit number scores low as an SSN: acted on only under a low threshold.
        let text = "ref 123456789 here";
        let g = Guard::new(GuardConfig::default()).unwrap();
        let strict = policy("entities: { US_SSN: { action: mask, threshold: 0.1 } }");
        let lax = policy("");
        let mut t = SessionTokens::default();
        assert_eq!(
            strict.apply(&g, text, KEY, &mut t).text,
            "ref <US_SSN> here"
        );
        assert_eq!(lax.apply(&g, text, KEY, &mut t).text, text);
    }

    #[test]
    fn bad_policies_name_the_path_of_the_mistake() {
        for (yaml, path, says) in [
            (
                "entities: { EMAIL: mask }",
                "entities.EMAIL",
                "unknown entity type `EMAIL`",
            ),
            (
                "entities: { EMAIL_ADDRESS: scramble }",
                "entities.EMAIL_ADDRESS",
                "expected an action",
            ),
            (
                "entities: { EMAIL_ADDRESS: { action: mask, threshold: 7 } }",
                "entities.EMAIL_ADDRESS",
                "from 0 to 1",
            ),
            (
                "entities: { EMAIL_ADDRESS: { action: mask, colour: 1 } }",
                "entities.EMAIL_ADDRESS",
                "expected an action",
            ),
            ("default: scramble", "default", "unknown variant `scramble`"),
            ("threshold: -1", "threshold", "from 0 to 1"),
            (
                "logging: everything",
                "logging",
                "unknown variant `everything`",
            ),
            ("retention_days: 99999", "retention_days", "from 1 to 3650"),
            ("retention_days: 0", "retention_days", "from 1 to 3650"),
            (
                "scan: { inputs: true }",
                "scan.inputs",
                "unknown field `inputs`",
            ),
            (
                "guard: { packs: [mars] }",
                "guard.packs[0]",
                "unknown variant `mars`",
            ),
            // A name given as anything but a string is told in the API's words (serde_yaml:
            // "invalid type: map, expected a YAML tag starting with '!'"), the line kept.
            (
                "default: { block: null }",
                "default",
                "expected one of its names as a string, found an object at line 1 column",
            ),
            (
                "default: [mask]",
                "default",
                "expected one of its names as a string, found an array at line 1 column",
            ),
            (
                "threshold: high",
                "threshold",
                "expected a number, found a string",
            ),
        ] {
            let err = Policy::from_yaml(yaml).unwrap_err();
            assert_eq!(err.path, path, "{yaml}: {err}");
            assert!(err.message.contains(says), "{yaml}: {err}");
        }
        let p = policy("guard: { custom_terms: [fine, ''] }");
        assert_eq!(p.guard().unwrap_err().path, "guard.custom_terms[1]");
        // Terms of invisible characters only (they vanish in normalization) are refused, in
        // every list: they once made every scan panic.
        for list in ["custom_terms", "denied_terms", "allow"] {
            let p = policy(&format!(
                "guard: {{ {list}: [ok, \"\\u200b\", \"\\u00ad\\u200b\"] }}"
            ));
            let err = p.guard().unwrap_err();
            assert_eq!(err.path, format!("guard.{list}[1]"), "{err}");
            assert!(err.message.contains("visible"), "{err}");
        }
        // A policy survives its own export.
        let p = policy(
            "threshold: 0.6\nentities: { EMAIL_ADDRESS: tokenize, PHONE_NUMBER: { action: hash, threshold: 0.8 } }\nlogging: masked\n",
        );
        let again = Policy::from_yaml(&serde_yaml::to_string(&p).unwrap()).unwrap();
        assert_eq!(again, p);
    }

    fn shared() -> &'static (Policy, Guard) {
        static P: std::sync::OnceLock<(Policy, Guard)> = std::sync::OnceLock::new();
        P.get_or_init(|| {
            let p = policy("default: tokenize\nsecrets: tokenize\nguard: { packs: [uk, ca, es, it, pl, de, se, in, au, us] }");
            let g = p.guard().unwrap();
            (p, g)
        })
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("ann@example.org".to_string()),
            Just("4111 1111 1111 1111".to_string()),
            Just("+44 20 7946 0958".to_string()),
            Just("GB82 WEST 1234 5698 7654 32".to_string()),
            Just("AKIAIOSFODNN7EXAMPLE".to_string()),
            Just("203.0.113.7".to_string()),
            "[a-z]{1,8}",
            "[0-9]{1,5}",
            Just(" ".to_string()),
            Just(", ".to_string()),
        ]
    }

    proptest! {
        /// unmask(tokenize(x)) == x, and what the policy left behind holds no validated entity.
        #[test]
        fn tokens_unmask_to_the_original_and_masked_text_rescans_clean(parts in proptest::collection::vec(value(), 0..12)) {
            let (p, g) = shared();
            let text = parts.join(" ");
            let mut tokens = SessionTokens::default();
            let a = p.apply(g, &text, KEY, &mut tokens);
            prop_assert_eq!(tokens.unmask(&a.text), text);
            let again = g.scan_with(&a.text, |e| Some(p.threshold(e)));
            prop_assert!(again.iter().all(|f| !f.validated), "{:?} in {:?}", again, a.text);
        }
    }
}
