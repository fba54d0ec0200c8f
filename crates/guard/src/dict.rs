//! Operator dictionaries: custom terms (`CUSTOM_TERM`), denied terms (`DENIED_TERM`) and the
//! allow-list, each matched whole-word and case-insensitively in one Aho-Corasick automaton.
//! The allow-list beats everything: a value it covers is never reported, whatever found it.

use crate::normalize::Normalized;
use crate::{Candidate, Entity, GuardConfig, GuardError, MAX_TERM_BYTES};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Compiled dictionaries.
#[derive(Debug, Default)]
pub struct Dictionaries {
    terms: Option<(AhoCorasick, Vec<Entity>)>,
    allow: Option<AhoCorasick>,
}

fn prepare(list: &'static str, terms: &[String]) -> Result<Vec<String>, GuardError> {
    terms
        .iter()
        .enumerate()
        .map(|(index, t)| {
            let err = |message: &str| GuardError::Term {
                list,
                index,
                message: message.to_string(),
            };
            let t = t.trim();
            if t.is_empty() {
                return Err(err("a term must not be empty"));
            }
            if t.len() > MAX_TERM_BYTES {
                return Err(err(&format!("a term is at most {MAX_TERM_BYTES} bytes")));
            }
            if t.chars().any(char::is_control) {
                return Err(err("a term must not contain control characters"));
            }
            let normalized = Normalized::new(t).text.to_lowercase();
            // Invisible characters go in normalization: a term of nothing else would match
            // nothing, or everything.
            if normalized.trim().is_empty() {
                return Err(err(
                    "a term must have a visible character (invisible characters are ignored)",
                ));
            }
            Ok(normalized)
        })
        .collect()
}

// Only the size limits of the builder can fail, and the lists are bounded by the policy's limits.
fn automaton(terms: &[String]) -> Result<AhoCorasick, GuardError> {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(terms)
        .map_err(|e| GuardError::Term {
            list: "terms",
            index: 0,
            message: e.to_string(),
        })
}

impl Dictionaries {
    /// Compiles the dictionaries of `cfg`.
    pub fn new(cfg: &GuardConfig) -> Result<Dictionaries, GuardError> {
        let denied = prepare("denied_terms", &cfg.denied_terms)?;
        let custom = prepare("custom_terms", &cfg.custom_terms)?;
        let allow = prepare("allow", &cfg.allow)?;
        let mut kinds = vec![Entity::DeniedTerm; denied.len()];
        kinds.extend(std::iter::repeat_n(Entity::CustomTerm, custom.len()));
        let all: Vec<String> = denied.into_iter().chain(custom).collect();
        Ok(Dictionaries {
            terms: if all.is_empty() {
                None
            } else {
                Some((automaton(&all)?, kinds))
            },
            allow: if allow.is_empty() {
                None
            } else {
                Some(automaton(&allow)?)
            },
        })
    }

    /// Appends the dictionary terms of `t`.
    pub fn scan(&self, t: &str, out: &mut Vec<Candidate>) {
        let Some((ac, kinds)) = &self.terms else {
            return;
        };
        for m in ac.find_iter(t) {
            if whole_word(t, m.start(), m.end()) {
                let entity = kinds[m.pattern().as_usize()];
                out.push(Candidate::new(
                    entity,
                    m.start(),
                    m.end(),
                    1.0,
                    false,
                    "dictionary",
                ));
            }
        }
    }

    /// Spans of `t` the allow-list covers.
    pub fn allowed_spans(&self, t: &str) -> Vec<(usize, usize)> {
        let Some(ac) = &self.allow else {
            return Vec::new();
        };
        ac.find_iter(t)
            .filter(|m| whole_word(t, m.start(), m.end()))
            .map(|m| (m.start(), m.end()))
            .collect()
    }
}

fn whole_word(t: &str, s: usize, e: usize) -> bool {
    let b = t.as_bytes();
    if s >= e || e > b.len() {
        return false;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (s == 0 || !word(b[s - 1]) || !word(b[s])) && (e == b.len() || !word(b[e]) || !word(b[e - 1]))
}
