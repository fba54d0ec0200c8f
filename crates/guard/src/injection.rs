//! Prompt-injection signs: override phrases, injected role markers, hidden characters (Unicode
//! tag characters, bidirectional controls, runs of zero-width characters), and instructions or
//! secrets hidden in encoded blobs (decoded and scanned again by the guard).
//!
//! Heuristics, not a classifier: they catch the common, cheap attacks that appear pasted into
//! prompts and documents, and each finding names the rule that fired.

use crate::normalize::{ceil_boundary, floor_boundary};
use crate::{Candidate, Entity, Finding};
use aho_corasick::AhoCorasick;
use base64::Engine;
use regex::Regex;

/// How many times a blob inside a decoded blob is decoded again.
pub const MAX_DECODE_DEPTH: u8 = 2;
/// Shortest base64 run worth decoding.
pub(crate) const MIN_BLOB: usize = 32;
/// Most blobs decoded per text, and most decoded bytes in all.
const MAX_BLOBS: usize = 64;
const MAX_DECODED: usize = 1 << 20;

/// Compiled injection patterns. The phrase regex runs only in windows around a trigger word
/// every phrase contains (found by one Aho-Corasick pass), never over the whole text.
#[derive(Debug)]
pub struct Injection {
    phrases: Regex,
    lines: Regex,
    markers: AhoCorasick,
}

/// A word every override phrase contains (case-insensitive); the phrase is searched for within
/// [`AROUND`] bytes of it.
pub const TRIGGERS: &[&str] = &[
    "instruction",
    "prompt",
    "rule",
    "direction",
    "guideline",
    "directive",
    "context",
    "message",
    "command",
    "training",
    "dan",
    "mode",
    "jailbr",
    "unrestricted",
    "unfiltered",
    "free of",
    "anything",
    "restriction",
    "filter",
    "guardrail",
    "polic",
    "safeguard",
    "limit",
    "evil",
    "from now on",
    // Role lines (`system:`): the line regex runs only if one of these occurs.
    "system",
];
const AROUND: usize = 160;

impl Default for Injection {
    fn default() -> Self {
        Self::new()
    }
}

const MARKERS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "[INST]",
    "[/INST]",
    "<<SYS>>",
    "<</SYS>>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|begin_of_text|>",
];

impl Injection {
    /// Compiles the patterns.
    // Built-in constants; a test compiles them.
    #[allow(clippy::expect_used)]
    pub fn new() -> Injection {
        let w = r"[\s\p{P}]+";
        let phrases = [
            format!(
                r"(?:ignore|disregard|forget|skip|override){w}(?:(?:all|any|the|every|of|your|my){w}){{0,3}}(?:previous|prior|above|earlier|preceding|former|original|system|initial)?{w}?(?:instructions?|prompts?|rules|directions|guidelines|directives|context|messages|commands|training)"
            ),
            format!(
                r"you{w}are{w}now{w}(?:in{w})?(?:dan|developer{w}mode|jailbroken|unrestricted|unfiltered|an{w}unfiltered|free{w}of)"
            ),
            format!(r"do{w}anything{w}now"),
            format!(
                r"(?:enable|activate|enter|switch{w}to){w}(?:developer|god|dan|jailbreak|unrestricted){w}mode"
            ),
            format!(
                r"(?:reveal|print|show|repeat|output|leak|display|dump){w}(?:me{w})?(?:your|the){w}(?:full{w})?(?:system|initial|hidden|original|secret){w}(?:prompt|instructions|message)"
            ),
            format!(
                r"(?:override|bypass|disable|ignore){w}(?:your|the|all|any){w}(?:safety{w}|content{w}|security{w})?(?:rules|filters|guidelines|restrictions|guardrails|policies|safeguards)"
            ),
            format!(r"new{w}instructions{w}?:"),
            format!(
                r"(?:pretend|imagine){w}(?:that{w})?(?:you{w}are|to{w}be|you're){w}(?:an?{w})?(?:ai{w}|assistant{w}|model{w})?(?:without|with{w}no){w}(?:any{w})?(?:restrictions|rules|filters|limits)"
            ),
            format!(r"act{w}as{w}(?:an?{w})?(?:unrestricted|unfiltered|jailbroken|evil)"),
            format!(
                r"from{w}now{w}on{w}you{w}(?:will|must|are|shall){w}(?:ignore|disregard|answer{w}without|not{w}follow)"
            ),
        ];
        let phrases =
            Regex::new(&format!("(?i){}", phrases.join("|"))).expect("built-in pattern compiles");
        let lines = Regex::new(r"(?im)^[ \t]{0,3}(?:#{1,4}[ \t]*)?(?:system|system prompt|instruction|instructions)[ \t]*:[ \t]*\S")
            .expect("built-in pattern compiles");
        let markers = AhoCorasick::new(MARKERS).expect("built-in markers compile");
        Injection {
            phrases,
            lines,
            markers,
        }
    }

    /// Appends the injection signs of normalized text `t`; `hits` are where the [`TRIGGERS`]
    /// occur in it.
    pub fn scan(&self, t: &str, hits: &[crate::triggers::Hit], out: &mut Vec<Candidate>) {
        // Windows around the triggers, merged where they overlap.
        let mut windows: Vec<(usize, usize)> = Vec::new();
        let mut role_words = false;
        for h in hits {
            if matches!(TRIGGERS[h.id], "system" | "instruction") {
                role_words = true;
            }
            let (s, e) = (
                floor_boundary(t, h.start.saturating_sub(AROUND)),
                ceil_boundary(t, h.end + AROUND),
            );
            match windows.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => windows.push((s, e)),
            }
        }
        for (ws, we) in windows {
            for m in self.phrases.find_iter(&t[ws..we]) {
                out.push(Candidate::new(
                    Entity::PromptInjection,
                    ws + m.start(),
                    ws + m.end(),
                    0.85,
                    false,
                    "override_phrase",
                ));
            }
        }
        for m in self.markers.find_iter(t) {
            out.push(Candidate::new(
                Entity::PromptInjection,
                m.start(),
                m.end(),
                0.7,
                false,
                "role_marker",
            ));
        }
        for m in self.lines.find_iter(if role_words { t } else { "" }) {
            let end = m.end().saturating_sub(1).max(m.start());
            out.push(Candidate::new(
                Entity::PromptInjection,
                m.start(),
                end,
                0.6,
                false,
                "role_line",
            ));
        }
    }
}

fn is_tag(c: char) -> bool {
    ('\u{E0000}'..='\u{E007F}').contains(&c)
}
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Hidden characters in the original text, one finding per run: Unicode tag characters (0.9:
/// text no one sees but a model reads), bidirectional controls (0.6), and zero-width characters
/// when there are four or more in the text (0.5).
pub fn hidden_characters(
    original: &str,
    threshold: &dyn Fn(Entity) -> Option<f32>,
) -> Vec<Finding> {
    let Some(th) = threshold(Entity::PromptInjection) else {
        return Vec::new();
    };
    if original.is_ascii() {
        return Vec::new();
    }
    let zero_widths = original.chars().filter(|&c| is_zero_width(c)).count();
    let mut out = Vec::new();
    let mut run: Option<(usize, usize, f32, &'static str)> = None;
    for (i, c) in original.char_indices() {
        let kind = if is_tag(c) {
            Some((0.9, "unicode_tags"))
        } else if is_bidi(c) {
            Some((0.6, "bidi_control"))
        } else if is_zero_width(c) && zero_widths >= 4 {
            Some((0.5, "zero_width"))
        } else {
            None
        };
        match (kind, &mut run) {
            (Some((_, rule)), Some(r)) if r.3 == rule && r.1 == i => r.1 = i + c.len_utf8(),
            (Some((score, rule)), _) => {
                if let Some(r) = run.take() {
                    out.push(r);
                }
                run = Some((i, i + c.len_utf8(), score, rule));
            }
            (None, _) => {
                if let Some(r) = run.take() {
                    out.push(r);
                }
            }
        }
        if out.len() >= 100 {
            break;
        }
    }
    out.extend(run);
    out.into_iter()
        .filter(|r| r.2 >= th)
        .map(|(start, end, score, rule)| Finding {
            entity: Entity::PromptInjection,
            start,
            end,
            score,
            validated: false,
            rule,
        })
        .collect()
}

static B64: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
        c += 1;
    }
    t
};

fn b64_char(c: u8) -> bool {
    B64[c as usize]
}

/// The runs of base64 characters in `b` at least `min` long: (start, end, end with up to two `=`
/// of padding).
///
/// Runs shorter than `min` are skipped without reading most of their bytes: a run of at least
/// `min` starting at or after `i` covers the byte `min - 1` ahead, so when that byte is no
/// base64, everything up to it is skipped. Invariant: `i` is 0 or follows a byte that is no
/// base64 (so no run starts before `i` and reaches it).
pub(crate) fn runs(b: &[u8], min: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while min > 0 && i + min <= b.len() {
            let probe = i + min - 1;
            if !b64_char(b[probe]) {
                i = probe + 1;
                continue;
            }
            // The run through `probe`: back to its start (at `i` at the earliest), on to its end.
            let mut s = probe;
            while s > i && b64_char(b[s - 1]) {
                s -= 1;
            }
            let mut run_end = probe + 1;
            while run_end < b.len() && b64_char(b[run_end]) {
                run_end += 1;
            }
            // Up to two `=` of padding belong to it.
            let mut e = run_end;
            while e < b.len() && e - run_end < 2 && b[e] == b'=' {
                e += 1;
            }
            // `b[run_end]` is no base64 (nor is `=`): the next run starts after it.
            i = e.max(run_end + 1);
            if run_end - s >= min {
                return Some((s, run_end, e));
            }
        }
        None
    })
}

/// Base64 runs of normalized text `t` that decode to readable text: (start, end, decoded).
pub fn decoded_blobs(t: &str) -> Vec<(usize, usize, String)> {
    let runs: Vec<_> = runs(t.as_bytes(), MIN_BLOB).collect();
    decoded_runs(t, &runs)
}

/// [`decoded_blobs`] of the runs of base64 already found in `t` (`runs(t, MIN_BLOB)`).
pub fn decoded_runs(t: &str, runs: &[(usize, usize, usize)]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut decoded_total = 0;
    for &(s, run_end, e) in runs {
        if out.len() >= MAX_BLOBS || decoded_total >= MAX_DECODED {
            break;
        }
        let run = &t[s..run_end];
        // Words and identifiers are not blobs: a blob mixes cases and digits.
        let has = |f: fn(&u8) -> bool| run.as_bytes().iter().any(f);
        if !(has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit))
        {
            continue;
        }
        let take = run.len().min(4 * ((MAX_DECODED - decoded_total) / 3)) & !3;
        let piece = &run[..take.max(4).min(run.len())];
        let engine = if piece.contains(['-', '_']) {
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
        } else {
            &base64::engine::general_purpose::STANDARD_NO_PAD
        };
        let Ok(bytes) = engine.decode(piece.trim_end_matches('=')) else {
            continue;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let printable = text
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
            .count();
        if text.len() >= 16 && printable * 10 >= text.chars().count() * 9 {
            decoded_total += text.len();
            out.push((s, e, text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The runs a byte-by-byte scan finds: (start, end with padding, run length).
    fn runs_byte_by_byte(t: &str) -> Vec<(usize, usize)> {
        let b = t.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if !b64_char(b[i]) {
                i += 1;
                continue;
            }
            let s = i;
            while i < b.len() && b64_char(b[i]) {
                i += 1;
            }
            let mut e = i;
            while e < b.len() && e - i < 2 && b[e] == b'=' {
                e += 1;
            }
            if i - s >= MIN_BLOB {
                out.push((s, e));
            }
            i = e.max(i);
        }
        out
    }

    /// A blob that decodes to readable text, `len` base64 characters long.
    fn blob(seed: u8, len: usize) -> String {
        let text: String = (0..len)
            .map(|k| char::from(b'a' + ((k + usize::from(seed)) % 26) as u8))
            .collect();
        let mut enc = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        enc.truncate(len);
        enc
    }

    proptest! {
        /// Skipping ahead finds exactly the blobs a scan of every byte finds.
        #[test]
        fn skipping_ahead_finds_every_blob(parts in proptest::collection::vec(
            prop_oneof![
                Just(" ".to_string()),
                Just("=".to_string()),
                Just("==".to_string()),
                "[a-zA-Z0-9+/]{1,40}",
                (any::<u8>(), 28usize..70).prop_map(|(s, n)| blob(s, n)),
            ],
            0..30,
        )) {
            let t: String = parts.concat();
            let want: Vec<(usize, usize)> = runs_byte_by_byte(&t)
                .into_iter()
                .filter(|&(s, e)| {
                    // Only runs that decode to readable text are reported.
                    decoded_blobs(&t[s..e]).len() == 1
                })
                .collect();
            let got: Vec<(usize, usize)> = decoded_blobs(&t).iter().map(|(s, e, _)| (*s, *e)).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_blob_of_exactly_the_minimum_length_is_found_anywhere() {
        let b = blob(3, MIN_BLOB);
        assert_eq!(decoded_blobs(&b).len(), 1);
        for pad in 0..40 {
            let t = format!("{}{b} x", " ".repeat(pad));
            assert_eq!(decoded_blobs(&t).len(), 1, "after {pad} spaces");
            assert_eq!(decoded_blobs(&t)[0].0, pad);
        }
        assert!(decoded_blobs(&b[1..]).is_empty(), "one short");
    }
}
