//! Operator dictionaries: custom terms (`CUSTOM_TERM`), denied terms (`DENIED_TERM`) and the
//! allow-list, each matched whole-word and case-insensitively. The allow-list beats everything:
//! a value it covers is never reported, whatever found it.
//!
//! Terms are matched the way people get around a literal list: between a term's words any run
//! of blanks, line breaks, dashes, underscores, dots or slashes, or none at all (`Project
//! Falcon` also as `Project  Falcon`, `project-falcon`, `Project\nFalcon`, `ProjectFalcon`); dash
//! look-alikes (`‐`, `–`, `−`) as dashes; and Cyrillic and Greek letters that look like Latin
//! ones as those (`іnternal` with a Cyrillic `і`), accents added to letters left out. A term
//! may stand inside an identifier at a word's edge (`project_falcon_config`,
//! `ProjectFalconAPI`). Inside a word nothing is skipped, so `the rapist` is not `therapist`.

use crate::normalize::Normalized;
use crate::{Candidate, Entity, GuardConfig, GuardError, MAX_TERM_BYTES};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::borrow::Cow;

/// Compiled dictionaries.
#[derive(Debug, Default)]
pub struct Dictionaries {
    terms: Option<Terms>,
    allow: Option<AhoCorasick>,
}

/// The custom and denied terms: one search for all of them, and each on its own to tell which
/// one matched.
#[derive(Debug)]
struct Terms {
    any: regex::Regex,
    each: Vec<(regex::Regex, Entity)>,
}

/// What may stand between two words of a term: blanks and line breaks, a dash, underscore or
/// slash with blanks around it or not, a dot alone — or nothing. (A dot with a blank after it
/// ends a sentence: `one project. Falcon is a bird` is no `Project Falcon`.)
const BETWEEN_WORDS: &str = r"(?:\s{0,4}[\-_/]?\s{0,4}|\.)";

/// A term's pattern: its words (as [`fold`] writes them), with [`BETWEEN_WORDS`] between them.
fn term_pattern(term: &str) -> String {
    let folded = fold(term).0;
    folded
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '_' | '.' | '/'))
        .filter(|w| !w.is_empty())
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(BETWEEN_WORDS)
}

/// The ASCII letter a Cyrillic or Greek look-alike stands for, a dash look-alike's dash.
fn look_alike(c: char) -> Option<char> {
    Some(match c {
        'а' | 'А' | 'α' | 'Α' => 'a',
        'В' | 'Β' | 'в' => 'b',
        'с' | 'С' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'Е' | 'Ε' | 'ё' => 'e',
        'Н' | 'Η' | 'һ' => 'h',
        'і' | 'І' | 'ι' | 'Ι' | 'ӏ' => 'i',
        'ј' | 'Ј' => 'j',
        'К' | 'к' | 'Κ' | 'κ' => 'k',
        'М' | 'Μ' | 'м' => 'm',
        'Ν' | 'п' => 'n',
        'о' | 'О' | 'ο' | 'Ο' | 'σ' => 'o',
        'р' | 'Р' | 'ρ' | 'Ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' | 'Ѕ' => 's',
        'Т' | 'Τ' | 'т' | 'τ' => 't',
        'υ' | 'ս' => 'u',
        'ν' | 'ѵ' => 'v',
        'ԝ' | 'ѡ' => 'w',
        'х' | 'Х' | 'Χ' | 'χ' => 'x',
        'у' | 'У' | 'Υ' | 'γ' => 'y',
        'Ζ' => 'z',
        'ı' => 'i',
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' => '-',
        _ => return None,
    })
}

/// `t` with look-alikes replaced ([`look_alike`]), and for each byte of the result the span of
/// `t` it came from (empty when nothing changed: the spans are `t`'s own).
fn fold(t: &str) -> (Cow<'_, str>, Vec<(u32, u32)>) {
    if t.is_ascii() || !t.chars().any(|c| look_alike(c).is_some() || combining(c)) {
        return (Cow::Borrowed(t), Vec::new());
    }
    let mut out = String::with_capacity(t.len());
    let mut map: Vec<(u32, u32)> = Vec::with_capacity(t.len());
    for (i, c) in t.char_indices() {
        let span = (i as u32, (i + c.len_utf8()) as u32);
        if combining(c) {
            // An accent added to a letter (`Pro\u{301}ject`) belongs to the letter before it:
            // that letter's span is stretched over it.
            let len = out.chars().next_back().map_or(0, char::len_utf8);
            let n = map.len();
            for m in &mut map[n - len..] {
                m.1 = span.1;
            }
            continue;
        }
        let c = look_alike(c).unwrap_or(c);
        out.push(c);
        map.extend(std::iter::repeat_n(span, c.len_utf8()));
    }
    (Cow::Owned(out), map)
}

/// A combining diacritical mark (U+0300–U+036F): read as part of the letter before it.
fn combining(c: char) -> bool {
    ('\u{300}'..='\u{36F}').contains(&c)
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
            if term_pattern(&normalized).is_empty() {
                return Err(err(
                    "a term must have a letter or digit (separators alone match anything)",
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

fn term_regex(pattern: &str) -> Result<regex::Regex, GuardError> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 24)
        .build()
        .map_err(|e| GuardError::Term {
            list: "terms",
            index: 0,
            message: e.to_string(),
        })
}

impl Terms {
    fn new(terms: &[String], kinds: Vec<Entity>) -> Result<Terms, GuardError> {
        // Longer terms first: the search takes the first alternative that matches at a place.
        let mut order: Vec<usize> = (0..terms.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(terms[i].len()));
        let patterns: Vec<String> = order.iter().map(|&i| term_pattern(&terms[i])).collect();
        let any = term_regex(&format!(
            "(?:{})",
            patterns
                .iter()
                .map(|p| format!("(?:{p})"))
                .collect::<Vec<_>>()
                .join("|")
        ))?;
        let each = order
            .iter()
            .zip(&patterns)
            .map(|(&i, p)| Ok((term_regex(&format!("^(?:{p})$"))?, kinds[i])))
            .collect::<Result<_, GuardError>>()?;
        Ok(Terms { any, each })
    }
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
                Some(Terms::new(&all, kinds)?)
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
        let Some(terms) = &self.terms else {
            return;
        };
        let (folded, map) = fold(t);
        let back = |s: usize, e: usize| match map.is_empty() {
            true => (s, e),
            false => (map[s].0 as usize, map[e - 1].1 as usize),
        };
        for m in terms.any.find_iter(&folded) {
            if !whole_word(&folded, m.start(), m.end()) {
                continue;
            }
            let Some((_, entity)) = terms.each.iter().find(|(re, _)| re.is_match(m.as_str()))
            else {
                continue;
            };
            let (s, e) = back(m.start(), m.end());
            out.push(Candidate::new(*entity, s, e, 1.0, false, "dictionary"));
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

/// Whether `s..e` of `t` starts and ends at word boundaries: beside a character that is not a
/// letter or digit (`_` separates words of an identifier: `project_falcon_config`), or where
/// a small letter meets a capital (`ProjectFalconAPI`).
fn whole_word(t: &str, s: usize, e: usize) -> bool {
    let b = t.as_bytes();
    if s >= e || e > b.len() {
        return false;
    }
    let word = |c: u8| c.is_ascii_alphanumeric();
    let camel = |x: u8, y: u8| x.is_ascii_lowercase() && y.is_ascii_uppercase();
    let starts = s == 0 || !word(b[s - 1]) || !word(b[s]) || camel(b[s - 1], b[s]);
    let ends = e == b.len() || !word(b[e]) || !word(b[e - 1]) || camel(b[e - 1], b[e]);
    starts && ends
}
