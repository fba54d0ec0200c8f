//! Guarding an answer as it is written: the output side of a policy over a text that arrives in
//! pieces (a streamed answer), with the same result however the pieces are cut.
//!
//! [`OutputFilter`] takes the model's text piece by piece and gives back what may be shown: new
//! personal data and secrets the model wrote are masked (hashed, redacted) as the policy's
//! [`Policy::output_action`] says, and the conversation's tokens (`<EMAIL_ADDRESS_1>`) are put
//! back to their values — so the user never sees a token and nothing unscanned is shown.
//!
//! How (`../shared/reference/pii.md`, "Unmasking inside a stream"): the text is cut into
//! *segments* at places that depend on the text alone — the first whitespace at least
//! [`SEGMENT`] bytes after the last cut (a run without whitespace is cut after [`MAX_RUN`] bytes,
//! never inside a `<token>`), later when a PEM block is open. A segment is released once
//! [`LOOKAHEAD`] more bytes have arrived (or the text has ended): it is scanned in a window with
//! [`CONTEXT`] bytes before it (context words) and the lookahead after it (a card number whose
//! last group has not arrived yet), a finding that starts in the segment extends it to the
//! finding's end, and the segment is masked, then unmasked. Every decision depends only on bytes
//! already present, so feeding the whole text at once and feeding it in any chunks give the same
//! output (property-tested): the complete answer goes through this filter too.
//!
//! What it costs: a segment's text reaches the client at most about `SEGMENT + LOOKAHEAD` bytes
//! (some 40 tokens) later than without a guard, and each byte is scanned about
//! `(CONTEXT + SEGMENT + LOOKAHEAD) / SEGMENT` times (2.3).

use crate::policy::{Tokenizer, apply_with};
use crate::{Action, Entity, Finding, Guard, Policy, SessionTokens};
use std::collections::BTreeMap;

/// The least length of a segment, in bytes: larger segments mean fewer scans per byte
/// (`(CONTEXT + SEGMENT + LOOKAHEAD) / SEGMENT`, about 2.3 here) and a longer hold-back.
pub const SEGMENT: usize = 96;
/// How far past a segment the scan looks before releasing it, in bytes: longer than any entity
/// written with spaces (a spaced IBAN is 42 bytes).
pub const LOOKAHEAD: usize = 64;
/// How much released text the next window sees for context words, in bytes.
pub const CONTEXT: usize = 64;
/// The longest run without whitespace kept in one piece (a JWT — they reach a few KiB with
/// many claims —, a URL with credentials). Longer runs are released in pieces of this size.
pub const MAX_RUN: usize = 8 * 1024;
/// The longest PEM block held back whole.
pub const MAX_PEM: usize = 16 * 1024;
/// The longest token (`<SECRET_GITHUB_TOKEN_123>`), so a forced cut never splits one.
const MAX_TOKEN: usize = 64;

/// What the filter needs from its request: the policy, its guard, the hash key, and the
/// conversation's tokens to put back.
#[derive(Clone, Copy)]
pub struct Output<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// Its guard.
    pub guard: &'a Guard,
    /// The key of `hash` actions.
    pub hash_key: &'a [u8],
    /// The conversation's tokens, if any were given.
    pub tokens: Option<&'a SessionTokens>,
    /// Whether the policy scans answers (`scan.output`); tokens are put back either way.
    pub scan: bool,
    /// Mask every finding whatever its action (the `masked` payload log: no value in clear,
    /// allowed ones included).
    pub mask_all: bool,
    /// The gateway's own credentials: masked wherever they appear, whatever the policy and
    /// even when it does not scan answers.
    pub credentials: Option<&'a Credentials>,
}

/// The rule of a finding that is one of the gateway's own [`Credentials`].
pub const CREDENTIAL_RULE: &str = "gateway_credential";

/// The gateway's own credentials (provider keys, webhook secrets), found by their text — each
/// character as is or behind a JSON escape (`\u0073`, `\/`), as a provider's JSON may write it
/// and as the arguments of a tool call (JSON inside a string) carry it.
///
/// A provider that echoes the key it was sent into an answer would show it to the client: the
/// output filter masks each occurrence as `<SECRET_GENERIC>` (counted as such), whatever the
/// policy. A credential holds no whitespace, so a segment cut (made at a space, tab or line
/// break, never at a form feed, which the search reads as nothing) never splits
/// one; only a run longer than [`MAX_RUN`] is cut inside, and such a cut waits for a
/// credential's [`Credentials::reach`] after it, so one across it is found whole.
#[derive(Default, Clone)]
pub struct Credentials {
    secrets: Vec<Vec<u8>>,
    longest: usize,
    /// Every form written as is, found in one pass (overlapping matches).
    plain: Option<aho_corasick::AhoCorasick>,
    /// Whether every character of every form reads as itself ([`fold_char`]): then an
    /// occurrence as written is also one in the text as it reads.
    read_as_written: bool,
    /// The forms by their first byte (indexes into `secrets`): where a start of one may be.
    by_first: Vec<Vec<usize>>,
}

/// What [`Credentials::spans_across_blanks`] found.
#[derive(Debug, Default)]
pub struct AcrossBlanks {
    /// The occurrences, by start, overlapping ones merged.
    pub spans: Vec<(usize, usize)>,
    /// The longest start of one that may still be under way — more text is needed to tell —
    /// as its place and its length read (blanks left out).
    pub open: Option<(usize, usize)>,
    /// Bytes read.
    pub read: usize,
}

impl AcrossBlanks {
    /// Whether one may still be under way.
    pub fn pending(&self) -> bool {
        self.open.is_some()
    }

    /// Takes a start of one at `at`, `len` long, if it begins sooner than the one kept.
    fn open_at(&mut self, at: usize, len: usize) {
        if self.open.is_none_or(|(a, _)| at < a) {
            self.open = Some((at, len));
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} forms)", self.secrets.len())
    }
}

/// The ways a secret is searched for in an answer: as it is, reversed, in hex (either case),
/// percent-encoded (every byte, or as a URL's query writes it, either case), and in base64 and
/// base64url — there as the characters that only the secret's bytes decide, at each of the three
/// places it can start in a base64 group, so it is found inside a longer encoded text too.
/// Spelled out with spaces or HTML entities it is not found; invisible characters between its
/// characters, look-alike forms of them and some of them percent-encoded are read through
/// ([`fold_at`]).
pub fn written_forms(secret: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    if secret.is_empty() {
        return Vec::new();
    }
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_vec(), secret.iter().rev().copied().collect()];
    let hex = |upper: bool, every: bool, prefix: &str| -> Vec<u8> {
        let mut out = String::with_capacity(secret.len() * 3);
        for &b in secret {
            if !every && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                out.push(b as char);
            } else if upper {
                out.push_str(&format!("{prefix}{b:02X}"));
            } else {
                out.push_str(&format!("{prefix}{b:02x}"));
            }
        }
        out.into_bytes()
    };
    for upper in [false, true] {
        forms.push(hex(upper, true, ""));
        forms.push(hex(upper, true, "%"));
        forms.push(hex(upper, false, "%"));
    }
    let n = secret.len();
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(secret);
            let encoded = engine.encode(&bytes).into_bytes();
            // Characters whose six bits all come from the secret.
            let (from, to) = ((8 * offset).div_ceil(6), (8 * (offset + n)) / 6);
            forms.push(encoded[from..to.min(encoded.len())].to_vec());
        }
    }
    forms
}

/// The longest form of one byte in JSON (`\u0073`).
const ESCAPED: usize = 6;

/// The bytes a credential's character may take as an answer spells it ([`Credentials::reach`]).
const REACH: usize = 16;

impl Credentials {
    /// The shortest text taken as a credential: a shorter one (`test`, `x`) would mask
    /// ordinary words in every answer.
    pub const MIN_LEN: usize = 8;

    /// The credentials among `secrets` ([`Self::MIN_LEN`] bytes or longer, without whitespace).
    pub fn new<'s>(secrets: impl IntoIterator<Item = &'s str>) -> Credentials {
        Self::from_bytes(secrets.into_iter().map(str::as_bytes))
    }

    /// [`Self::new`] for secrets that may not be text (a webhook's decoded signing key): each
    /// is searched as it is written, when it is text, and in the encodings an answer may carry
    /// it in ([`written_forms`]).
    pub fn from_bytes<'s>(secrets: impl IntoIterator<Item = &'s [u8]>) -> Credentials {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        for secret in secrets {
            if secret.len() >= Self::MIN_LEN && !secret.iter().any(u8::is_ascii_whitespace) {
                kept.extend(written_forms(secret));
            }
        }
        // Only text can be in an answer, and a form that is text starts on a character.
        kept.retain(|f| f.len() >= Self::MIN_LEN && std::str::from_utf8(f).is_ok());
        // A form that itself holds what an answer's reading folds (`%41`, a Cyrillic `е`, an
        // accent) is also searched as it reads: an answer that spells it otherwise reads the
        // same.
        let folded: Vec<Vec<u8>> = kept
            .iter()
            .map(|f| last_reading(f))
            .filter(|g| g.len() >= Self::MIN_LEN && std::str::from_utf8(g).is_ok())
            .collect();
        kept.extend(folded);
        kept.sort_unstable();
        kept.dedup();
        let plain = (!kept.is_empty())
            .then(|| aho_corasick::AhoCorasick::new(&kept).ok())
            .flatten();
        // (Answers are read folded only when there are credentials to find: the table of
        // readings is built here, with the configuration, not on a request.)
        let read_as_written = kept.is_empty()
            || kept.iter().all(|f| {
                String::from_utf8_lossy(f)
                    .chars()
                    .all(|c| c.is_ascii_graphic() || (!c.is_ascii() && reading(c) == AS_ITSELF))
            });
        let mut by_first = vec![Vec::new(); 256];
        for (i, f) in kept.iter().enumerate() {
            by_first[usize::from(f[0])].push(i);
        }
        Credentials {
            read_as_written,
            longest: kept.iter().map(Vec::len).max().unwrap_or(0),
            secrets: kept,
            plain,
            by_first,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The most bytes one occurrence can take (every character escaped).
    pub fn longest_written(&self) -> usize {
        self.longest * ESCAPED
    }

    /// The most bytes an occurrence is looked for in: every character escaped, or spelled in
    /// four bytes with an invisible character (three) beside it, or percent-encoded (twelve) —
    /// [`REACH`] bytes a character. A search that ends sooner after a place an occurrence may
    /// start in misses it.
    pub fn reach(&self) -> usize {
        self.longest * REACH
    }

    /// Whether one of them may be in the JSON text `json`: written as is or behind escapes —
    /// also escaped twice, as in a tool call's arguments, which only parsing reveals.
    pub fn may_be_in_json(&self, json: &[u8]) -> bool {
        !self.is_empty() && !self.spans(json).is_empty()
    }

    /// Whether the JSON text `json` may hold log probabilities — which can spell a credential
    /// one token at a time, so no search of the text finds it: their key written as is, or
    /// any escape that could hide it.
    pub fn may_be_spelled_in_json(&self, json: &[u8]) -> bool {
        !self.is_empty()
            && (memchr::memmem::find(json, b"logprob").is_some()
                || memchr::memmem::find(json, b"\\u").is_some())
    }

    /// Whether `text` shows one of them once its blanks are left out — spaces, tabs and line
    /// breaks, also as the JSON escapes a raw answer writes them in (`\n`, `\u000a`) — or, read
    /// also without hex separators (`:`, `-`, `,`, `0x`, `\x`), in hex: base64 wrapped over lines as
    /// MIME and PEM wrap it, a key cut by a line break or spelled with spaces, hex in pairs.
    ///
    /// Such an occurrence has no place in the text that could be cut out alone (its pieces
    /// stand between the words around them), so a caller withholds the whole text it is in.
    /// Only the forms as written are searched (no folding): this is the wider, coarser net
    /// under [`Self::spans`].
    pub fn shows_across_blanks(&self, text: &[u8]) -> bool {
        let Some(ac) = &self.plain else {
            return false;
        };
        let blank = |b: &u8| b.is_ascii_whitespace() || *b == b'\\';
        if text.iter().any(blank) && ac.is_match(&without_blanks(text, false)) {
            return true;
        }
        let separated = text
            .iter()
            .any(|b| matches!(b, b':' | b'-' | b',' | b'x' | b'X') || b.is_ascii_whitespace());
        separated && ac.is_match(&without_blanks(text, true))
    }

    /// The occurrences across blanks ([`Self::shows_across_blanks`], in either reading) that
    /// start before `limit` in `hay`, each as `(start, end)` from its first character to its
    /// last (the blanks between them inside) and no longer than [`Self::across_reach`] — and,
    /// unless `ended`, the longest start of one that may still be under way
    /// ([`AcrossBlanks::open`]): it begins before `limit` and reaches the end of `hay` (or ends
    /// where a blank's escape may be completing), where more text may complete it.
    ///
    /// So a stream that waits while one is pending finds, before it shows `hay[..limit]`,
    /// every occurrence that starts there, however its text is cut into pieces.
    pub fn spans_across_blanks(&self, hay: &[u8], limit: usize, ended: bool) -> AcrossBlanks {
        let mut found = AcrossBlanks::default();
        let Some(ac) = &self.plain else {
            return found;
        };
        let limit = limit.min(hay.len());
        let longest = self.across_reach();
        for hex in [false, true] {
            let stop = (limit + longest).min(hay.len());
            // Without separators (nor a `0` at the end that may begin `0x`) the hex reading is
            // the plain one.
            if hex
                && !hay[..stop]
                    .iter()
                    .any(|b| matches!(b, b':' | b'-' | b',' | b'x' | b'X'))
                && !(stop == hay.len() && hay.last() == Some(&b'0'))
            {
                continue;
            }
            // Bytes from `settled` on may read otherwise once more text follows (`\` then
            // `n`, `0` then `x`): a stream waits before it takes them as they read now.
            let settled = if ended {
                hay.len()
            } else {
                settled_end(hay, hex)
            };
            // First without places: almost every text holds no occurrence and no start of one.
            let (text, kept_before, whole, read) = self.blank_reading(hay, limit, hex, None);
            found.read += read;
            let unsettled = settled < hay.len();
            // (An end that may still read otherwise is rare: it is read with places.)
            let suspect = ac.is_match(&text)
                || !ended && (unsettled || whole && self.may_open(&text, kept_before));
            if !suspect {
                continue;
            }
            let mut from = Vec::new();
            let (text, _, whole, read) = self.blank_reading(hay, limit, hex, Some(&mut from));
            found.read += read;
            for m in ac.find_overlapping_iter(&text) {
                let (a, b) = (from[m.start()], from[m.end() - 1] + 1);
                if a >= limit || b - a > longest {
                    continue;
                }
                if b > settled {
                    found.open_at(a, m.end() - m.start());
                } else {
                    found.spans.push((a, b));
                }
            }
            if ended {
                continue;
            }
            let opens = |kept: usize| self.opens_before(&text[..kept], &from, limit, hay.len());
            if let Some((a, n)) = whole.then(|| opens(text.len())).flatten() {
                found.open_at(a, n);
            }
            if let Some((a, n)) = unsettled
                .then(|| opens(from.partition_point(|&f| f < settled)))
                .flatten()
            {
                found.open_at(a, n);
            }
        }
        found.spans = merged(found.spans);
        found
    }

    /// The most bytes an occurrence across blanks takes in a stream: four per character of
    /// the longest form (a space after each character is two, a JSON `\n` escape three, hex
    /// pairs as `0x41, ` three per hex digit).
    pub fn across_reach(&self) -> usize {
        self.longest * 4
    }

    /// `hay`'s blank-free reading ([`without_blanks`]) as far as an occurrence that starts
    /// before `limit` can reach, with `from`, each kept byte's place in `hay`: the reading,
    /// how many of its bytes come from before `limit`, whether it read all of `hay`, and how
    /// many bytes it read.
    fn blank_reading(
        &self,
        hay: &[u8],
        limit: usize,
        hex: bool,
        from: Option<&mut Vec<usize>>,
    ) -> (Vec<u8>, usize, bool, usize) {
        let stop = (limit + self.across_reach()).min(hay.len());
        read_without_blanks(hay, limit, stop, self.longest, hex, from)
    }

    /// Whether the reading `text` may end with a start of one of the forms that begins among
    /// its first `kept_before` bytes (a cheap, wider test than [`Self::opens_before`]).
    fn may_open(&self, text: &[u8], kept_before: usize) -> bool {
        let from = (text.len() + 1).saturating_sub(self.longest);
        (from..kept_before.min(text.len())).any(|j| {
            self.by_first[usize::from(text[j])].iter().any(|&f| {
                let form = &self.secrets[f];
                form.len() > text.len() - j && form.starts_with(&text[j..])
            })
        })
    }

    /// The longest start of one of the forms that a blank-free reading (`text`, its bytes'
    /// places `from`) ends with, that begins before `limit` and is still short enough to become
    /// one ([`Self::across_reach`]) in a hay of `len` bytes: its place and length (read).
    fn opens_before(
        &self,
        text: &[u8],
        from: &[usize],
        limit: usize,
        len: usize,
    ) -> Option<(usize, usize)> {
        let from = &from[..text.len()];
        // Only starts at least this long begin before `limit`.
        let least = text
            .len()
            .saturating_sub(from.partition_point(|&f| f < limit))
            + 1;
        let mut longest: Option<usize> = None;
        for secret in &self.secrets {
            let shortest = least.max(longest.map_or(0, |n| n + 1));
            for n in (shortest..secret.len().min(text.len() + 1)).rev() {
                let a = from[text.len() - n];
                if text[text.len() - n] == secret[0]
                    && a < limit
                    && len - a <= self.across_reach()
                    && text.ends_with(&secret[..n])
                {
                    longest = Some(n);
                    break;
                }
            }
        }
        longest.map(|n| (from[text.len() - n], n))
    }

    /// Every occurrence in `hay` as `(start, end)`, by start; overlapping ones merged.
    pub fn spans(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        self.spans_starting_before(hay, hay.len())
    }

    /// The occurrences in `hay` that start before `limit` — also with invisible characters
    /// (zero-width spaces, soft hyphens, joiners, as UTF-8 or as JSON escapes) between the
    /// characters: then each span covers the invisible characters inside it.
    fn spans_starting_before(&self, hay: &[u8], limit: usize) -> Vec<(usize, usize)> {
        if !needs_fold(hay) {
            return self.raw_spans(hay, limit);
        }
        let (readings, decoded) = readings_of(hay);
        // What is found as written is also found as it reads — unless reading it decoded
        // something (`%41`, `\\u0041` — it may stand right before an occurrence, or be part of
        // one), or a credential holds a character that does not read as itself: then `hay` is
        // searched as written too.
        let mut spans = if decoded || !self.read_as_written {
            self.raw_spans(hay, limit)
        } else {
            Vec::new()
        };
        // Each reading, not only the last: reading again may decode what an occurrence begins
        // with (`%25` then `4` and a zero-width space before a hex key `4f3c…`: the second
        // reading takes `%4f` for `O`).
        for (made, text) in readings.iter().enumerate() {
            if self.raw_spans(text, text.len()).is_empty() {
                continue;
            }
            let (text, from) = fold_mapped(hay, made + 1);
            let text_limit = from.partition_point(|f| f.0 < limit);
            spans.extend(
                self.raw_spans(&text, text_limit)
                    .into_iter()
                    .map(|(a, b)| (from[a].0, from[b - 1].1)),
            );
        }
        merged(spans)
    }

    /// [`Self::spans_starting_before`] of the bytes as they are.
    ///
    /// Occurrences written as is come from one automaton pass over `hay`; one with a JSON
    /// escape in it holds a backslash, so only the stretches that end at a backslash and are
    /// no longer than an occurrence can be ([`Self::longest_written`]) are read form by form.
    fn raw_spans(&self, hay: &[u8], limit: usize) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let limit = limit.min(hay.len());
        match &self.plain {
            Some(ac) => {
                for m in ac.find_overlapping_iter(hay) {
                    if m.start() < limit {
                        spans.push((m.start(), m.end()));
                    }
                }
                let reach = self.longest_written();
                let mut stretch: Option<(usize, usize)> = None;
                for p in memchr::memchr_iter(b'\\', hay) {
                    let from = p.saturating_sub(reach);
                    match &mut stretch {
                        Some((_, end)) if from <= *end => *end = p + 1,
                        _ => {
                            if let Some((a, b)) = stretch {
                                self.escaped_spans(hay, a, b.min(limit), &mut spans);
                            }
                            stretch = Some((from, p + 1));
                        }
                    }
                }
                if let Some((a, b)) = stretch {
                    self.escaped_spans(hay, a, b.min(limit), &mut spans);
                }
            }
            None => self.escaped_spans(hay, 0, limit, &mut spans),
        }
        merged(spans)
    }
}

/// `spans` by start, overlapping ones merged.
fn merged(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a < last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

impl Credentials {
    /// The occurrences, escaped or not, that start in `from..to` of `hay`, form by form.
    fn escaped_spans(&self, hay: &[u8], from: usize, to: usize, spans: &mut Vec<(usize, usize)>) {
        for secret in &self.secrets {
            let mut at = from;
            while let Some(i) =
                memchr::memchr2(secret[0], b'\\', &hay[at.min(to)..to]).map(|i| at + i)
            {
                // A run of backslashes is read once: only its last few can begin an escape
                // ([`written_at`]), so the search goes on from there.
                let run = hay[i..to].iter().take_while(|&&b| b == b'\\').count();
                if run > 8 {
                    at = i + run - 8;
                    continue;
                }
                match written_at(hay, i, secret) {
                    Some(end) => {
                        spans.push((i, end));
                        at = end;
                    }
                    None => at = i + 1,
                }
            }
        }
    }

    /// The length of the longest end of `hay` that begins one of the credentials (written as
    /// is) without being all of it: what must be held back until the next piece shows whether
    /// a credential follows.
    /// Also as it reads ([`fold_at`]): then the length covers the characters folded.
    pub fn open_prefix(&self, hay: &[u8]) -> usize {
        let raw = self.plain_open_prefix(hay);
        if !needs_fold(hay) {
            return raw;
        }
        match self.plain_open_prefix(&last_reading(hay)) {
            0 => raw,
            open => {
                let (kept, from) = fold_mapped(hay, PASSES);
                raw.max(hay.len() - from[kept.len() - open].0)
            }
        }
    }

    /// Where the earliest start of a credential ([`Self::open_prefix`], at least `least` bytes)
    /// at the end of `hay` begins — also one that ends just before an escape or encoding that
    /// has not arrived whole (`\`, `\u00`, `%6`, `&zwn`), which may be its next character.
    pub fn open_start(&self, hay: &[u8], least: usize) -> Option<usize> {
        let mut earliest: Option<usize> = None;
        // How many of the last bytes may be such an unfinished escape: from the first `\`,
        // `%` or `&` among them.
        let near = hay.len().saturating_sub(UNFINISHED);
        let unfinished = hay[near..]
            .iter()
            .position(|b| matches!(b, b'\\' | b'%' | b'&'))
            .map_or(0, |p| hay.len() - (near + p));
        for k in 0..=unfinished {
            let part = &hay[..hay.len() - k];
            let open = self.open_prefix(part);
            if open >= least.max(1) {
                let at = part.len() - open;
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        earliest
    }

    /// [`Self::open_prefix`] of the bytes as they are.
    fn plain_open_prefix(&self, hay: &[u8]) -> usize {
        let mut best = 0;
        for secret in &self.secrets {
            let most = (secret.len() - 1).min(hay.len());
            for len in (best + 1..=most).rev() {
                if hay[hay.len() - len] == secret[0] && hay.ends_with(&secret[..len]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

/// The gateway's credentials in a text that arrives as a sequence of *items* the gateway passes
/// on one by one and cannot rewrite once sent — the pieces of a streamed field no filter holds
/// back (a tool call's name, a field a provider adds to its deltas) or the tokens of a stream's
/// log probabilities — each carrying its text and a payload (`T`) of its own.
///
/// A credential cut across items (one character per chunk) is found in the items' joined text:
/// items that end with the start of a credential ([`Credentials::open_prefix`], at least
/// [`HOLD_FROM`] bytes of it) are held until the next items show whether it goes on; an item
/// that holds part of a whole occurrence has that part masked (the first one shows
/// `<SECRET_GENERIC>`). At most `HOLD_FROM - 1` bytes of a credential are shown before its
/// start is held, and only a text ending exactly like the start of a credential is delayed.
/// One written across blanks ([`Credentials::spans_across_blanks`]: a character and a space
/// per item) is held and masked alike, after at most `HOLD_FROM - 1` of its characters.
#[derive(Debug)]
pub struct CredentialHold<T> {
    /// The end of what was released, as written, for occurrences that start in it.
    tail: String,
    /// Items not released yet.
    held: Vec<(String, T)>,
    /// Occurrences masked.
    found: u32,
}

/// The least length of a credential's start that is held back: shorter starts are shown (they
/// are too short to tell anything), so an ordinary text is almost never delayed.
pub const HOLD_FROM: usize = 3;

impl<T> Default for CredentialHold<T> {
    fn default() -> Self {
        CredentialHold {
            tail: String::new(),
            held: Vec::new(),
            found: 0,
        }
    }
}

impl<T> CredentialHold<T> {
    /// How many occurrences were masked so far.
    pub fn found(&self) -> u32 {
        self.found
    }

    /// Whether items are held.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes the next items; gives those that may be shown now, in order, each with its text
    /// (masked where a credential was) and whether it was changed.
    pub fn push(
        &mut self,
        creds: &Credentials,
        items: impl IntoIterator<Item = (String, T)>,
    ) -> Vec<(String, T, bool)> {
        self.held.extend(items);
        self.release(creds, false)
    }

    /// The text has ended: every held item, masked where a credential is whole (an unfinished
    /// start is no credential).
    pub fn finish(&mut self, creds: &Credentials) -> Vec<(String, T, bool)> {
        self.release(creds, true)
    }

    /// Releases what may be shown (at the end, everything).
    fn release(&mut self, creds: &Credentials, last: bool) -> Vec<(String, T, bool)> {
        if creds.is_empty() {
            return std::mem::take(&mut self.held)
                .into_iter()
                .map(|(t, p)| (t, p, false))
                .collect();
        }
        let mut joined = self.tail.clone();
        let base = joined.len();
        // Where each held item starts in `joined`.
        let mut starts = Vec::with_capacity(self.held.len());
        for (text, _) in &self.held {
            starts.push(joined.len());
            joined.push_str(text);
        }
        // Also written across blanks (a key spelled one character and a space per item).
        let across = creds.spans_across_blanks(joined.as_bytes(), joined.len(), last);
        let mut spans = creds.spans(joined.as_bytes());
        spans.extend(across.spans);
        let spans: Vec<(usize, usize)> = merged(spans)
            .into_iter()
            .filter(|&(_, b)| b > base)
            .collect();
        // What is open at the end — also inside an occurrence just masked, since another may
        // begin in its last characters.
        let mut hold_at = match creds.open_start(joined.as_bytes(), HOLD_FROM) {
            Some(at) if !last => at,
            _ => joined.len(),
        };
        if let Some((at, _)) = across.open.filter(|&(_, read)| read >= HOLD_FROM) {
            hold_at = hold_at.min(at);
        }
        let ends: Vec<usize> = starts
            .iter()
            .zip(&self.held)
            .map(|(s, (t, _))| s + t.len())
            .collect();
        let n = self.held.len();
        // The first item held; earlier still if an occurrence crosses it, so that an occurrence
        // is always masked in one release (held items keep their own text, and are read again
        // with the tail next time).
        let mut cut = (0..n).find(|&i| ends[i] > hold_at).unwrap_or(n);
        loop {
            let c = if cut < n { starts[cut] } else { joined.len() };
            match spans.iter().find(|&&(a, b)| a < c && c < b) {
                // Never past the first item: an occurrence that began in the tail is held whole
                // from there.
                Some(&(a, _)) if cut > 0 => cut = (0..n).find(|&i| ends[i] > a).unwrap_or(0),
                _ => break,
            }
        }
        let released_end = if cut < n { starts[cut] } else { joined.len() };
        let spans: Vec<(usize, usize)> =
            spans.into_iter().filter(|s| s.1 <= released_end).collect();
        let mut items = std::mem::take(&mut self.held);
        self.held = items.split_off(cut);
        let mut out = Vec::with_capacity(items.len());
        for (i, (text, payload)) in items.into_iter().enumerate() {
            let (start, end) = (starts[i], ends[i]);
            let mut shown = String::new();
            let mut at = start;
            let mut changed = false;
            for &(a, b) in &spans {
                let (from, to) = (a.max(start), b.min(end));
                if from >= to && !(start..end).contains(&a.max(base)) {
                    continue;
                }
                changed = true;
                shown.push_str(&joined[at..from]);
                // The mark goes where the occurrence's first unreleased byte was.
                if (start..end).contains(&a.max(base)) {
                    shown.push('<');
                    shown.push_str(Entity::SecretGeneric.as_str());
                    shown.push('>');
                }
                at = to.max(at);
            }
            if !changed {
                out.push((text, payload, false));
                continue;
            }
            shown.push_str(&joined[at..end]);
            out.push((shown, payload, true));
        }
        self.found += u32::try_from(spans.len()).unwrap_or(u32::MAX);
        self.keep_tail(creds, &joined[base..released_end]);
        out
    }

    /// Keeps the end of what was released, as it was written (masked occurrences too: another
    /// one may overlap them): enough for an occurrence that starts in it — as far as one
    /// written across blanks reaches ([`Credentials::across_reach`]), since what was released
    /// never ends with `HOLD_FROM` characters of a start (blanks left out).
    fn keep_tail(&mut self, creds: &Credentials, released: &str) {
        self.tail.push_str(released);
        let keep = creds.across_reach();
        if self.tail.len() > keep {
            // (What was released of an occurrence is under `HOLD_FROM` bytes as written — a
            // start, folded or not, is held from that length — so bytes as written suffice.)
            let cut = floor_boundary(&self.tail, self.tail.len() - keep);
            self.tail.drain(..cut);
        }
    }
}

/// `hay`'s readings ([`fold_at`]) one after the other — read again while something in it still
/// folds, [`PASSES`] times at most (a full-width `％` then the byte it encodes, an escaped `%`
/// then the byte, a percent-encoded invisible character) — and whether one of them decoded
/// something written in ASCII. (Occurrences are rare: the search reads without a map, and
/// reads again with one, [`fold_mapped`], only to place one it found.)
fn readings_of(hay: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let (first, mut more, mut decoded) = fold_once(hay, None);
    let mut made = vec![first];
    while let Some(last) = made.last().filter(|_| made.len() < PASSES) {
        if !more || !needs_fold(last) {
            break;
        }
        let (again, again_more, again_decoded) = fold_once(last, None);
        more = again_more;
        decoded |= again_decoded;
        made.push(again);
    }
    (made, decoded)
}

/// The last of `hay`'s readings: how it reads in the end.
fn last_reading(hay: &[u8]) -> Vec<u8> {
    readings_of(hay).0.pop().unwrap_or_default()
}

/// The most readings [`readings_of`] makes.
const PASSES: usize = 3;

/// The `passes`-th of `hay`'s readings (as [`readings_of`] makes them, the same stop) and, for
/// each byte of it, the bytes of `hay` it came from: `(folded, from)`.
fn fold_mapped(hay: &[u8], passes: usize) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut from = Vec::with_capacity(hay.len());
    let (mut kept, mut more, _) = fold_once(hay, Some(&mut from));
    let mut back = Vec::new();
    for _ in 1..passes {
        if !more || !needs_fold(&kept) {
            break;
        }
        back.clear();
        let again;
        (again, more, _) = fold_once(&kept, Some(&mut back));
        from = back
            .iter()
            .map(|&(a, b)| (from[a].0, from[b - 1].1))
            .collect();
        kept = again;
    }
    (kept, from)
}

/// One reading of [`readings_of`]; whether it read an encoding's own sign (`%`, `\\`, `&`) out of
/// something — only then may another reading find more; and whether it decoded something
/// written in ASCII (a percent, escape or HTML encoding).
fn fold_once(hay: &[u8], mut map: Option<&mut Vec<(usize, usize)>>) -> (Vec<u8>, bool, bool) {
    let mut kept = Vec::with_capacity(hay.len());
    let mut more = false;
    let mut decoded = false;
    let mut i = 0;
    while i < hay.len() {
        let b = hay[i];
        if !SPECIAL[usize::from(b)] {
            // A run of ASCII that reads as itself, at once.
            let n = hay[i..]
                .iter()
                .position(|&b| SPECIAL[usize::from(b)])
                .unwrap_or(hay.len() - i);
            kept.extend_from_slice(&hay[i..i + n]);
            if let Some(m) = map.as_deref_mut() {
                m.extend((i..i + n).map(|k| (k, k + 1)));
            }
            i += n;
            continue;
        }
        if b >= 0x80 {
            // Characters in another script (most of an answer in one), one after the other:
            // each decoded and looked up, and written without a branch on how it reads (which,
            // in such a text, follows no pattern a processor can learn) — copied, then cut to
            // the one ASCII character it reads as, or to nothing.
            let table = readings();
            while i < hay.len() && hay[i] >= 0x80 {
                let before = kept.len();
                let n = match char_at(hay, i) {
                    Some((c, n)) => {
                        let r = match table.get(c as usize) {
                            Some(&r) => r,
                            None => reading(c),
                        };
                        if r == SEVERAL {
                            compat(c, &mut kept);
                            more |= kept[before..]
                                .iter()
                                .any(|b| matches!(b, b'%' | b'\\' | b'&'));
                        } else {
                            match hay.get(i..i + 4) {
                                // Four bytes at once: a copy of a known length is one move.
                                Some(four) => kept.extend_from_slice(
                                    &<[u8; 4]>::try_from(four).unwrap_or_default(),
                                ),
                                None => kept.extend_from_slice(&hay[i..i + n]),
                            }
                            let ascii = r >= b' ';
                            kept[before] = if ascii { r } else { kept[before] };
                            kept.truncate(
                                before + usize::from(ascii) + usize::from(r == AS_ITSELF) * n,
                            );
                            more |= matches!(r, b'%' | b'\\' | b'&');
                        }
                        n
                    }
                    // A byte that is no part of a character reads as nothing ([`fold_at`]).
                    None => 1,
                };
                if let Some(m) = map.as_deref_mut() {
                    m.extend(std::iter::repeat_n((i, i + n), kept.len() - before));
                }
                i += n;
            }
            continue;
        }
        let before = kept.len();
        let n = match fold_at(hay, i, &mut kept) {
            Some(n) => {
                decoded = true;
                more |= kept[before..]
                    .iter()
                    .any(|b| matches!(b, b'%' | b'\\' | b'&'));
                n
            }
            None => {
                // A character kept as it is, whole.
                let n = utf8_width(b).min(hay.len() - i);
                kept.extend_from_slice(&hay[i..i + n]);
                n
            }
        };
        if let Some(m) = map.as_deref_mut() {
            m.extend(std::iter::repeat_n((i, i + n), kept.len() - before));
        }
        i += n;
    }
    (kept, more, decoded)
}

/// The length of the UTF-8 character a byte begins (1 for ASCII and for a byte that begins
/// none).
fn utf8_width(b: u8) -> usize {
    match b {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// Whether `hay` holds something [`fold_at`] folds: then it is searched folded too. One pass
/// over the bytes, stopping at each that may not read as itself ([`SPECIAL`]).
fn needs_fold(hay: &[u8]) -> bool {
    let mut scratch = Vec::new();
    let mut at = 0;
    while let Some(i) = hay[at..]
        .iter()
        .position(|&b| SPECIAL[usize::from(b)])
        .map(|k| at + k)
    {
        at = if hay[i] >= 0x80 {
            // A character in another script: one that is not UTF-8 reads as nothing.
            let Some((c, n)) = char_at(hay, i) else {
                return true;
            };
            if fold_char(c, &mut scratch) {
                return true;
            }
            i + n
        } else {
            // An encoding's sign, or a control character.
            scratch.clear();
            if fold_at(hay, i, &mut scratch).is_some() {
                return true;
            }
            i + 1
        };
    }
    false
}

/// The bytes that may not read as themselves: those that begin a character in another script,
/// an encoding's sign (`%`, `&`, `\`) and the control characters that show as nothing.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte >= 0x80 || matches!(byte, b'%' | b'&' | b'\\') || hidden_control(byte);
        b += 1;
    }
    table
};

/// `text` without its blanks (ASCII whitespace; the JSON escapes `\n`, `\r`, `\t` and `\u`
/// of one of them, behind any number of backslashes) — and, with `hex`, without the
/// separators of a hex dump too (`:`, `-`, `,`, `0x`, `\x`).
fn without_blanks(text: &[u8], hex: bool) -> Vec<u8> {
    // (A limit at the end: read to the end, never stopping early.)
    read_without_blanks(text, text.len(), text.len(), 0, hex, None).0
}

/// [`without_blanks`] of `hay[..stop]`, with `from`, each kept byte's place in `hay` — stopping
/// early once `longest` bytes are kept past `limit` (an occurrence that starts before `limit`
/// ends within them): the reading, how many of its bytes come from before `limit`, whether it
/// read all of `hay`, and how many bytes it read.
fn read_without_blanks(
    hay: &[u8],
    limit: usize,
    stop: usize,
    longest: usize,
    hex: bool,
    mut from: Option<&mut Vec<usize>>,
) -> (Vec<u8>, usize, bool, usize) {
    let mut text = Vec::with_capacity(stop.min(limit + 2 * longest));
    // Bytes kept before `limit`: an occurrence that starts there ends within `longest`
    // kept bytes after them.
    let mut kept_before = None;
    let special = |b: &u8| {
        b.is_ascii_whitespace() || *b == b'\\' || hex && matches!(b, b':' | b'-' | b',' | b'0')
    };
    let mut i = 0;
    while i < stop {
        if i >= limit {
            let at = *kept_before.get_or_insert(text.len());
            if text.len() >= at + longest {
                return (text, at, false, i);
            }
        }
        // A run of ordinary bytes, not past `limit` when it starts before it.
        let bound = if i < limit { limit } else { stop };
        let run = hay[i..bound].iter().position(special).unwrap_or(bound - i);
        if run > 0 {
            text.extend_from_slice(&hay[i..i + run]);
            if let Some(f) = from.as_deref_mut() {
                f.extend(i..i + run);
            }
            i += run;
            continue;
        }
        match blank_at(hay, i, hex) {
            Blank::Skip(n) => i += n,
            Blank::Keep(n) => {
                text.extend_from_slice(&hay[i..i + n]);
                if let Some(f) = from.as_deref_mut() {
                    f.extend(i..i + n);
                }
                i += n;
            }
        }
    }
    let at = kept_before.unwrap_or(text.len());
    (text, at, stop == hay.len(), i)
}

/// Where the blank-free reading of `hay` ([`without_blanks`]) is settled: from there on, a
/// byte may read otherwise once more text follows — a run of backslashes whose escape is not
/// complete (`\`, `\u00`), and, with `hex`, a last `0` that may begin `0x`.
fn settled_end(hay: &[u8], hex: bool) -> usize {
    let n = hay.len();
    let near = n.saturating_sub(5);
    if let Some(p) = hay[near..]
        .iter()
        .rposition(|&b| b == b'\\')
        .map(|p| near + p)
    {
        let rest = &hay[p + 1..];
        if rest.is_empty() || (rest[0] == b'u' && rest.len() < 5) {
            // The run's last piece may still become a blank ([`blank_at`] reads a long run
            // ESCAPE_RUN + 1 at a time, from where the reading met it): twice that covers it.
            let run = hay[..=p]
                .iter()
                .rev()
                .take(2 * (ESCAPE_RUN + 1))
                .take_while(|&&b| b == b'\\')
                .count();
            return p + 1 - run;
        }
    }
    if hex && hay.last() == Some(&b'0') {
        return n - 1;
    }
    n
}

/// The most bytes of an escape or encoding that may end a text unfinished
/// ([`Credentials::open_start`]): `\\\\u00` behind a few backslashes, `&zwnj` and the like.
const UNFINISHED: usize = 12;

/// The longest run of backslashes that escapes a blank ([`blank_at`]).
const ESCAPE_RUN: usize = 16;

/// What [`without_blanks`] does at `text[i..]`.
enum Blank {
    /// Leaves out this many bytes (a blank, an escape of one, a separator).
    Skip(usize),
    /// Keeps this many bytes (one, or a run of backslashes that escapes no blank).
    Keep(usize),
}

/// The blank (or, with `hex`, hex separator) at `text[i..]`, if any.
fn blank_at(text: &[u8], i: usize, hex: bool) -> Blank {
    let b = text[i];
    if b.is_ascii_whitespace() {
        return Blank::Skip(1);
    }
    if b == b'\\' {
        // A run of backslashes, then what it escapes: only a run of at most ESCAPE_RUN escapes
        // (JSON inside JSON, a few levels deep); a longer one is kept ESCAPE_RUN + 1 at a time,
        // so each look costs a few bytes however long the run.
        let run = text[i..]
            .iter()
            .take(ESCAPE_RUN + 1)
            .take_while(|&&c| c == b'\\')
            .count();
        if run > ESCAPE_RUN {
            return Blank::Keep(run);
        }
        let skip = match &text[i + run..] {
            [b'n' | b'r' | b't', ..] => 1,
            [b'u', a, b, c, d, ..]
                if *a == b'0'
                    && *b == b'0'
                    && matches!(
                        (c.to_ascii_lowercase(), d.to_ascii_lowercase()),
                        (b'0', b'9' | b'a' | b'd') | (b'2', b'0')
                    ) =>
            {
                5
            }
            [b'x' | b'X', ..] if hex => 1,
            _ => return Blank::Keep(run),
        };
        return Blank::Skip(run + skip);
    }
    if hex {
        if matches!(b, b':' | b'-' | b',') {
            return Blank::Skip(1);
        }
        if b == b'0' && matches!(text.get(i + 1), Some(b'x' | b'X')) {
            return Blank::Skip(2);
        }
    }
    Blank::Keep(1)
}

/// How a text may spell a credential so that a search of its bytes misses it, undone one
/// character at a time: when the character (or JSON escape) at `hay[i..]` is one of these, its
/// length, and what it reads as pushed onto `out`.
///
/// - Invisible characters — every default-ignorable code point (zero-width spaces and
///   joiners, soft hyphen, variation selectors, tags, fillers, bidirectional controls) — and a
///   lone surrogate escape (`\ud800`, which decodes to nothing a reader sees): nothing.
/// - Characters whose compatibility form is ASCII (full-width `Ｚ`, mathematical `𝐙`, circled
///   `Ⓩ`, superscripts, ligatures), other scripts' digits and dash look-alikes: that ASCII.
/// - A percent-encoded byte (`%5A`), as an address may carry some characters encoded and the
///   rest not: the byte, when it is printable ASCII.
///
/// JSON escapes count with any number of backslashes (`\u200b`, or `\\u200b` inside a tool
/// call's arguments, which are JSON inside a JSON string).
fn fold_at(hay: &[u8], i: usize, out: &mut Vec<u8>) -> Option<usize> {
    let b = *hay.get(i)?;
    let (c, len) = match b {
        b'%' => percent_at(hay, i)?,
        b'&' => html_ref_at(hay, i)?,
        b'\\' => match escape_at(hay, i)? {
            (None, len) => return Some(len),
            (Some(c), len) => (c, len),
        },
        0x80.. => match char_at(hay, i) {
            Some(c) => c,
            // A byte that is no part of a character (the answer is not UTF-8): a client
            // decoding it sees a replacement character, which hides nothing.
            None => return Some(1),
        },
        // A terminal's escape sequence (`ESC [ 0 m`) draws nothing; nor does a control
        // character.
        0x1B => return Some(csi_len(hay, i)),
        b if hidden_control(b) => return Some(1),
        _ => return None,
    };
    if c.is_ascii() {
        // An encoded ASCII character (`%71`, `\\u0071`, `&#113;`) reads as itself — a printable
        // one: no credential holds another — or, a control character, as nothing.
        if hidden_control(c as u8) {
            return Some(len);
        }
        if !c.is_ascii_graphic() {
            return None;
        }
        out.push(c as u8);
        return Some(len);
    }
    fold_char(c, out).then_some(len)
}

/// Whether an ASCII byte is a control character other than a line break or a tab: it shows as
/// nothing (a terminal's bell, a NUL, a backspace, DEL).
const fn hidden_control(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F
}

/// The length of the terminal escape sequence at `hay[i..]` (ESC, then `[`, parameters and one
/// final letter: `ESC [ 0 m`, at most 16 bytes), or 1 for an ESC alone.
fn csi_len(hay: &[u8], i: usize) -> usize {
    if hay.get(i + 1) != Some(&b'[') {
        return 1;
    }
    match hay
        .iter()
        .skip(i + 2)
        .take(14)
        .position(|b| (0x40..=0x7E).contains(b))
    {
        Some(k)
            if hay[i + 2..i + 2 + k]
                .iter()
                .all(|b| (0x20..=0x3F).contains(b)) =>
        {
            k + 3
        }
        _ => 1,
    }
}

/// The UTF-8 character at `hay[i..]` and its length, if one is there (checked as
/// `str::from_utf8` checks: no overlong form, no surrogate, nothing above U+10FFFF) — read
/// here, without building a `str`, as every character of an answer in another script comes by.
#[inline]
fn char_at(hay: &[u8], i: usize) -> Option<(char, usize)> {
    let b = *hay.get(i)?;
    let (width, lead, least) = match b {
        0xC2..=0xDF => (2, b & 0x1F, 0x80),
        0xE0..=0xEF => (3, b & 0x0F, 0x800),
        0xF0..=0xF4 => (4, b & 0x07, 0x10000),
        _ => return None,
    };
    let tail = hay.get(i + 1..i + width)?;
    let mut u = u32::from(lead);
    for &t in tail {
        if t & 0xC0 != 0x80 {
            return None;
        }
        u = (u << 6) | u32::from(t & 0x3F);
    }
    if u < least {
        return None;
    }
    Some((char::from_u32(u)?, width))
}

/// The character percent-encoded at `hay[i..]` (`%71`, or the two to four `%XX` of one UTF-8
/// character), and the length of its encoding.
fn percent_at(hay: &[u8], i: usize) -> Option<(char, usize)> {
    let byte = |at: usize| -> Option<u8> {
        let h = hay.get(at..at + 3)?;
        (h[0] == b'%').then_some(())?;
        Some((hex_digit(h[1])? << 4) | hex_digit(h[2])?)
    };
    let first = byte(i)?;
    let width = match first {
        0x00..=0x7F => return Some((char::from(first), 3)),
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    let mut bytes = [first, 0, 0, 0];
    for (k, slot) in bytes.iter_mut().enumerate().take(width).skip(1) {
        *slot = byte(i + 3 * k)?;
    }
    let c = std::str::from_utf8(&bytes[..width]).ok()?.chars().next()?;
    Some((c, 3 * width))
}

/// The character an HTML numeric reference at `hay[i..]` stands for (`&#113;`, `&#x71;`), and
/// the reference's length.
fn html_ref_at(hay: &[u8], i: usize) -> Option<(char, usize)> {
    if hay.get(i + 1) != Some(&b'#') {
        return named_ref_at(hay, i);
    }
    let rest = hay.get(i + 2..)?;
    let (radix, digits) = match rest.first()? {
        b'x' | b'X' => (16, &rest[1..]),
        _ => (10, rest),
    };
    let n = digits
        .iter()
        .take(8)
        .take_while(|b| (**b as char).is_digit(radix))
        .count();
    if n == 0 || digits.get(n) != Some(&b';') {
        return None;
    }
    let v = u32::from_str_radix(std::str::from_utf8(&digits[..n]).ok()?, radix).ok()?;
    let len = 2 + usize::from(radix == 16) + n + 1;
    Some((char::from_u32(v)?, len))
}

/// What a character reads as, when [`fold_at`] folds it (pushed onto `out`): one look-up in
/// [`readings`].
#[inline]
fn fold_char(c: char, out: &mut Vec<u8>) -> bool {
    match reading(c) {
        AS_ITSELF => false,
        NOTHING => true,
        SEVERAL => {
            compat(c, out);
            true
        }
        a => {
            out.push(a);
            true
        }
    }
}

/// What a character that reads as [`SEVERAL`] ASCII characters reads as (its compatibility
/// form, pushed onto `out`).
fn compat(c: char, out: &mut Vec<u8>) {
    use unicode_normalization::UnicodeNormalization;
    out.extend(std::iter::once(c).nfkc().map(|n| n as u8));
}

/// How `c` reads, as [`readings`] has it.
#[inline]
fn reading(c: char) -> u8 {
    match readings().get(c as usize) {
        Some(&r) => r,
        // Above the table only the tags and their variation selectors fold (to nothing).
        None if crate::normalize::is_invisible(c) => NOTHING,
        None => AS_ITSELF,
    }
}

/// The character an HTML named reference at `hay[i..]` stands for — those of the characters a
/// key is written with and of the invisible ones (`&sol;`, `&hyphen;`, `&shy;`,
/// `&ZeroWidthSpace;`) — and the reference's length.
fn named_ref_at(hay: &[u8], i: usize) -> Option<(char, usize)> {
    let name_len = hay
        .get(i + 1..)?
        .iter()
        .take(24)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if hay.get(i + 1 + name_len) != Some(&b';') {
        return None;
    }
    let c = match &hay[i + 1..i + 1 + name_len] {
        b"sol" => '/',
        b"bsol" => '\\',
        b"hyphen" | b"dash" | b"minus" => '-',
        b"plus" => '+',
        b"equals" => '=',
        b"lowbar" | b"UnderBar" => '_',
        b"period" => '.',
        b"colon" => ':',
        b"percnt" => '%',
        b"num" => '#',
        b"commat" => '@',
        b"excl" => '!',
        b"quest" => '?',
        b"ast" | b"midast" => '*',
        b"tilde" => '~',
        b"dollar" => '$',
        b"amp" | b"AMP" => '&',
        b"shy" => '\u{AD}',
        b"ZeroWidthSpace"
        | b"NegativeVeryThinSpace"
        | b"NegativeThinSpace"
        | b"NegativeMediumSpace"
        | b"NegativeThickSpace" => '\u{200B}',
        b"zwnj" => '\u{200C}',
        b"zwj" => '\u{200D}',
        b"lrm" => '\u{200E}',
        b"rlm" => '\u{200F}',
        b"NoBreak" => '\u{2060}',
        b"af" | b"ApplyFunction" => '\u{2061}',
        b"it" | b"InvisibleTimes" => '\u{2062}',
        b"ic" | b"InvisibleComma" => '\u{2063}',
        _ => return None,
    };
    Some((c, name_len + 2))
}

/// In [`readings`]: a character read as itself.
const AS_ITSELF: u8 = 0;
/// In [`readings`]: a character read as nothing.
const NOTHING: u8 = 1;
/// In [`readings`]: a character read as the several ASCII characters of its compatibility form
/// (a ligature: `ﬃ` is `ffi`).
const SEVERAL: u8 = 2;

/// How each code point below U+20000 reads ([`fold_char`]): [`AS_ITSELF`], [`NOTHING`],
/// [`SEVERAL`] or the one printable ASCII character it reads as — by Unicode's tables, worked
/// out once for all of them so that reading an answer costs one look-up per character:
///
/// - nothing: a default-ignorable code point (zero-width spaces and joiners, soft hyphen,
///   variation selectors, fillers, bidirectional controls), the replacement character a
///   decoder shows for bytes that are not UTF-8 (it hides nothing), a nonspacing or enclosing
///   mark (a reader takes it for a mark on the character before) or a format character;
/// - its compatibility form, when that is one ASCII character (full-width `Ｚ`, mathematical
///   `𝐙`, circled `Ⓩ`, superscripts);
/// - else the ASCII character Unicode's confusables draw it as (the prototype of UTS #39's
///   skeleton, as pod names are compared: Cyrillic `р` and `а`, Greek `Ζ`, Cherokee `Ꭹ`, Latin
///   `ɑ` — `раssword` reads as `password`), a capital or a digit drawn like `l` or `O` read as
///   the capital or digit it is;
/// - else a Latin letter with accents (`é`, `ñ`): its letter;
/// - else other scripts' digits as their value, dash look-alikes as `-`;
/// - else, in the blocks of letter-like forms and ligatures, a compatibility form of several
///   printable ASCII characters.
///
/// Letters the confusables map to several characters or to none (`χ`, `ж`) read as
/// themselves. Built when credentials are first built ([`Credentials::from_bytes`]), so no
/// request waits for it (≈ 130,000 code points).
fn readings() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Box<[u8]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        use crate::normalize::{decimal_digit, is_dash, is_invisible};
        use unicode_general_category::{GeneralCategory, get_general_category};
        use unicode_normalization::UnicodeNormalization;
        let mut table = vec![AS_ITSELF; 0x20000].into_boxed_slice();
        let mut buf = [0u8; 4];
        for u in 0x80u32..0x20000 {
            let Some(c) = char::from_u32(u) else {
                continue;
            };
            let nothing = is_invisible(c)
                || c == '\u{FFFD}'
                || matches!(
                    get_general_category(c),
                    GeneralCategory::NonspacingMark
                        | GeneralCategory::EnclosingMark
                        | GeneralCategory::Format
                );
            // The compatibility form first (`１` is `1`, where the confusables' prototype of
            // a one is `l`), then the prototype.
            let mut one = || {
                single_ascii(std::iter::once(c).nfkc())
                    .or_else(|| single_ascii(unicode_security::skeleton(c.encode_utf8(&mut buf))))
            };
            // A Latin letter with accents (`é`, `ñ`, `ǘ`): its letter, as the accents, written
            // apart, read as nothing.
            let accented = |c: char| {
                let mut parts = std::iter::once(c).nfd();
                let base = parts.next().filter(char::is_ascii_alphabetic)?;
                parts
                    .all(|m| get_general_category(m) == GeneralCategory::NonspacingMark)
                    .then_some(base as u8)
            };
            let several = || {
                // Only the blocks with characters whose compatibility form is ASCII (Latin-1's
                // superscripts and ordinals, phonetic modifiers, super- and subscripts,
                // letter-like and enclosed forms, ligatures, full-width forms, mathematical
                // letters and digits, enclosed supplements).
                matches!(u, 0xA0..=0x2FF | 0x1D00..=0x1DBF | 0x2070..=0x24FF | 0xFB00..=0xFB06
                    | 0xFF00..=0xFFEF | 0x1D400..=0x1D7FF | 0x1F100..=0x1F1FF)
                    && std::iter::once(c).nfkc().all(|n| n.is_ascii_graphic())
            };
            table[u as usize] = if nothing {
                NOTHING
            } else if let Some(a) = one() {
                match a {
                    b'l' if c.is_uppercase() => b'I',
                    b'l' if c.is_numeric() => b'1',
                    b'O' if c.is_numeric() => b'0',
                    a => a,
                }
            } else if let Some(a) = accented(c) {
                a
            } else if let Some(d) = decimal_digit(c) {
                b'0' + d
            } else if is_dash(c) {
                b'-'
            } else if several() {
                SEVERAL
            } else {
                AS_ITSELF
            };
        }
        table
    })
}

/// The one printable ASCII character `chars` holds, if that is all it holds.
fn single_ascii(mut chars: impl Iterator<Item = char>) -> Option<u8> {
    match (chars.next(), chars.next()) {
        (Some(a), None) if a.is_ascii_graphic() => Some(a as u8),
        _ => None,
    }
}

/// The value of an ASCII hex digit.
fn hex_digit(h: u8) -> Option<u8> {
    (h as char).to_digit(16).map(|d| d as u8)
}

/// The JSON escape at `hay[i..]` — one to eight backslashes, `u`, four hex digits; a surrogate
/// pair as two — as the character it stands for (`None` for a lone surrogate), and its length.
fn escape_at(hay: &[u8], i: usize) -> Option<(Option<char>, usize)> {
    let unit = |at: usize| -> Option<(u32, usize)> {
        let slashes = backslashes(hay, at);
        let rest = hay.get(at + slashes..at + slashes + 5)?;
        if slashes == 0 || rest[0] != b'u' {
            return None;
        }
        let v = rest[1..]
            .iter()
            .try_fold(0u32, |v, &h| Some(v * 16 + u32::from(hex_digit(h)?)))?;
        Some((v, slashes + 5))
    };
    let (u, len) = unit(i)?;
    match u {
        0xD800..=0xDBFF => match unit(i + len) {
            Some((low @ 0xDC00..=0xDFFF, more)) => Some((
                char::from_u32(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)),
                len + more,
            )),
            _ => Some((None, len)),
        },
        0xDC00..=0xDFFF => Some((None, len)),
        u => Some((Some(char::from_u32(u)?), len)),
    }
}

/// How many backslashes begin `hay[at..]`, up to eight: an escape escaped more often than that
/// is no escape (and reading a long run of backslashes to its end at each of them would take
/// quadratic time).
fn backslashes(hay: &[u8], at: usize) -> usize {
    hay.get(at..)
        .map_or(0, |h| h.iter().take(8).take_while(|&&b| b == b'\\').count())
}

/// Where `secret` ends if it is written at `at` of `hay`, each byte as is, as `\uXXXX` (an ASCII
/// byte) or, for `/`, as `\/`.
fn written_at(hay: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let mut j = at;
    for &c in secret {
        if hay.get(j) == Some(&c) {
            j += 1;
            continue;
        }
        if hay.get(j) != Some(&b'\\') {
            return None;
        }
        // An escape, escaped again a few times at most (`\\u0073`, `\\/`: JSON inside a JSON
        // string) — as `escape_at` reads them.
        match escape_at(hay, j) {
            Some((Some(e), len)) if c.is_ascii() && e as u32 == u32::from(c) => j += len,
            Some(_) => return None,
            None if c == b'/' => {
                let slashes = backslashes(hay, j);
                if hay.get(j + slashes) != Some(&b'/') {
                    return None;
                }
                j += slashes + 1;
            }
            None => return None,
        }
    }
    Some(j)
}

impl Output<'_> {
    /// What is done to a finding of `entity`.
    fn action(&self, entity: Entity) -> Action {
        if self.mask_all {
            Action::Mask
        } else {
            self.policy.output_action(entity)
        }
    }
}

/// One answer's text (one choice's content, or one tool call's arguments) on its way out.
#[derive(Debug, Default, Clone)]
pub struct OutputFilter {
    /// Released text kept for context (its first `emitted` bytes), then the text not yet released.
    buf: String,
    /// How many bytes at the front of `buf` are released.
    emitted: usize,
    /// Findings acted on, per type and action.
    counts: BTreeMap<(Entity, Action), u32>,
    /// Bytes scanned and bytes moved so far: what the filter's time grows with (a test holds it
    /// linear in the text's length).
    work: u64,
    /// The credentials across blanks found ahead of the segments ([`Self::across_blanks`]).
    across: Option<AcrossMemo>,
    /// While a credential's start is pending (a segment could not be released): the buffer
    /// length before which releasing is not tried again — the text held has to grow by half
    /// (and a look-ahead) first, so a long wait costs a few tries, not one per piece.
    retry_at: usize,
}

/// Credentials across blanks found in `[from, until)` of a filter's buffer: every occurrence
/// that starts there, as `(start, end)` in the buffer.
#[derive(Debug, Default, Clone)]
struct AcrossMemo {
    from: usize,
    until: usize,
    spans: Vec<(usize, usize)>,
}

/// How far ahead of a segment [`OutputFilter`] reads for credentials across blanks when it
/// holds that much text.
const ACROSS_AHEAD: usize = 4096;

/// Never used: answers get no new tokens.
struct NoTokens;

impl Tokenizer for NoTokens {
    fn token(&mut self, entity: Entity, _: &str) -> String {
        format!("<{}>", entity.as_str())
    }
}

fn floor_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl OutputFilter {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next piece of the answer; returns what may be shown now (often empty).
    pub fn feed(&mut self, out: &Output<'_>, piece: &str) -> String {
        self.buf.push_str(piece);
        let mut shown = String::new();
        if self.buf.len() < self.retry_at {
            return shown;
        }
        self.retry_at = 0;
        let reach = out.credentials.map_or(0, Credentials::reach);
        while let Some(end) = self.next_cut(false, reach) {
            if !self.release(out, end, false, &mut shown) {
                let held = self.buf.len() - self.emitted;
                self.retry_at = self.buf.len() + (held / 2).max(LOOKAHEAD);
                break;
            }
        }
        shown
    }

    /// The answer has ended: everything left, guarded.
    pub fn finish(&mut self, out: &Output<'_>) -> String {
        let mut shown = String::new();
        while let Some(end) = self.next_cut(true, 0) {
            self.release(out, end, true, &mut shown);
        }
        shown
    }

    /// Whether text is held back.
    pub fn is_holding(&self) -> bool {
        self.buf.len() > self.emitted
    }

    /// Bytes scanned and moved so far.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// Findings acted on so far, per type and action taken.
    pub fn counts(&self) -> &BTreeMap<(Entity, Action), u32> {
        &self.counts
    }

    /// Where the next segment ends, or `None` if that is not known yet (or nothing is left).
    /// A cut inside a run without whitespace waits for `reach` bytes after it (a credential's
    /// most, [`Credentials::reach`]): one may start before the cut and go on past it, and is
    /// only found whole — so the output does not depend on how the pieces arrive.
    fn next_cut(&self, last: bool, reach: usize) -> Option<usize> {
        let (start, len, bytes) = (self.emitted, self.buf.len(), self.buf.as_bytes());
        if start >= len {
            return None;
        }
        let target = start + SEGMENT;
        let mut forced = false;
        let mut end = if target >= len {
            if !last {
                return None;
            }
            len
        } else {
            let limit = len.min(target + MAX_RUN);
            // (Not at a form feed: the search for credentials reads it as nothing, so one may
            // go on across it.)
            match bytes[target..limit]
                .iter()
                .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            {
                Some(i) => target + i,
                None if len >= target + MAX_RUN => {
                    forced = true;
                    self.forced_cut(target + MAX_RUN)
                }
                None if last => len,
                None => return None,
            }
        };
        // A PEM block that begins in the segment is released whole, up to MAX_PEM bytes.
        if let Some(b) = find(&bytes[start..end], Pem::Begin).map(|i| start + i) {
            let within = &bytes[b..len.min(b + MAX_PEM)];
            match find(within, Pem::End) {
                Some(e) => {
                    let after = b + e + 8;
                    let close = find(&bytes[after..len.min(b + MAX_PEM)], Pem::Dashes)
                        .map(|i| after + i + 5);
                    match close {
                        Some(c) => end = end.max(c),
                        None if last || len >= b + MAX_PEM => end = end.max(len.min(b + MAX_PEM)),
                        None => return None,
                    }
                }
                None if last || len >= b + MAX_PEM => {}
                None => return None,
            }
            end = floor_boundary(&self.buf, end);
        }
        let ahead = if forced {
            LOOKAHEAD.max(reach)
        } else {
            LOOKAHEAD
        };
        if !last && len < end + ahead {
            return None;
        }
        Some(end)
    }

    /// A cut inside a run without whitespace: on a character boundary, before a `<` that may
    /// open a token.
    fn forced_cut(&self, at: usize) -> usize {
        let at = floor_boundary(&self.buf, at);
        let from = floor_boundary(&self.buf, at.saturating_sub(MAX_TOKEN));
        match self.buf[from..at].rfind('<') {
            Some(i) if !self.buf[from + i..at].contains('>') && from + i > self.emitted => from + i,
            _ => at,
        }
    }

    /// The occurrences of the credentials `c` as written (behind escapes, folded) that start
    /// in `[from, end)` of the buffer, in buffer places.
    fn written_credentials(
        &mut self,
        c: &Credentials,
        from: usize,
        end: usize,
    ) -> Vec<(usize, usize)> {
        // One that starts before `end` reaches at most a form's length past it — unless it
        // holds a byte that may not read as itself (an escape, another script), which only such
        // a byte in its first form-length bytes allows: then its full reach.
        let plain = floor_boundary(&self.buf, end + c.longest);
        let to = if self.buf.as_bytes()[from..plain]
            .iter()
            .any(|&b| SPECIAL[usize::from(b)])
        {
            floor_boundary(&self.buf, end + c.reach())
        } else {
            plain
        };
        self.work += (to - from) as u64;
        c.spans_starting_before(&self.buf.as_bytes()[from..to], end - from)
            .into_iter()
            .map(|(a, b)| (from + a, from + b))
            .collect()
    }

    /// The occurrences of the credentials `c` written across blanks that start in
    /// `[from, end)` of the buffer, in buffer places — or `None` while one may be under way
    /// (unless the text has ended, `last`).
    ///
    /// With much text held (a complete answer), it reads up to [`ACROSS_AHEAD`] bytes ahead
    /// once and keeps what it found for the segments that follow, so each byte is read about
    /// once rather than once per segment plus a form's length.
    fn across_blanks(
        &mut self,
        c: &Credentials,
        from: usize,
        end: usize,
        last: bool,
    ) -> Option<Vec<(usize, usize)>> {
        let within = |spans: &[(usize, usize)]| -> Vec<(usize, usize)> {
            spans
                .iter()
                .copied()
                .filter(|&(a, _)| from <= a && a < end)
                .collect()
        };
        if let Some(m) = &self.across
            && m.from <= from
            && end <= m.until
        {
            return Some(within(&m.spans));
        }
        // Ahead only as far as a whole occurrence's reach is held after it: nothing that
        // starts before then can still be under way.
        let until =
            end.max((from + ACROSS_AHEAD).min(self.buf.len().saturating_sub(c.across_reach())));
        let found = c.spans_across_blanks(&self.buf.as_bytes()[from..], until - from, last);
        self.work += found.read as u64;
        if found.pending() {
            return None;
        }
        let spans: Vec<(usize, usize)> = found
            .spans
            .into_iter()
            .map(|(a, b)| (from + a, from + b))
            .collect();
        let now = within(&spans);
        self.across = (until > end).then_some(AcrossMemo { from, until, spans });
        Some(now)
    }

    /// Scans the window around `[emitted, end)`, masks and unmasks the segment into `shown`.
    /// Unless the text has ended (`last`), releases nothing and says `false` while one of the
    /// gateway's credentials written across blanks may be under way from the segment.
    fn release(&mut self, out: &Output<'_>, end: usize, last: bool, shown: &mut String) -> bool {
        let start = self.emitted;
        let cut = end;
        let mut end = end;
        // Findings in segment offsets, each with whether it is counted now: one that started in
        // released text was counted then.
        let mut mine: Vec<(Finding, bool)> = Vec::new();
        if out.scan {
            // The segment with CONTEXT bytes of released text before it and LOOKAHEAD after.
            let window_start = floor_boundary(&self.buf, start.saturating_sub(CONTEXT));
            let window_end = floor_boundary(&self.buf, end + LOOKAHEAD);
            let window = &self.buf[window_start..window_end];
            self.work += window.len() as u64;
            let findings = out
                .guard
                .scan_with(window, |e| Some(out.policy.threshold(e)));
            for mut f in findings {
                f.start += window_start;
                f.end += window_start;
                if f.end <= start || f.start >= end {
                    continue;
                }
                // A finding that starts in the segment takes the segment to its end.
                end = end.max(f.end);
                let counted = f.start >= start;
                let f = Finding {
                    start: f.start.max(start) - start,
                    end: f.end - start,
                    ..f
                };
                mine.push((f, counted));
            }
        }
        if let Some(c) = out.credentials.filter(|c| !c.is_empty()) {
            // Occurrences that start in the segment take it to their end, and win over any
            // finding of the policy they overlap — as written, and across blanks. Each one found
            // takes the segment to its end, where another may start: searched again from where
            // the last search stopped, until none goes further.
            let mut creds: Vec<(usize, usize)> = Vec::new();
            let mut from = start;
            loop {
                let written = self.written_credentials(c, from, end);
                let Some(across) = self.across_blanks(c, from, end, last) else {
                    return false;
                };
                let far = written
                    .iter()
                    .chain(&across)
                    .map(|s| s.1)
                    .max()
                    .unwrap_or(end);
                creds.extend(
                    written
                        .into_iter()
                        .chain(across)
                        .map(|(a, b)| (a - start, b - start)),
                );
                if far <= end {
                    break;
                }
                (from, end) = (end, far);
            }
            // One as written that starts where a finding or an occurrence took the segment past
            // its cut (a cut at a blank never splits one) and is not whole yet is waited for —
            // also when what has come ends inside an escape that may be part of it.
            if end > cut && !last {
                let len = self.buf.len();
                let tail = floor_boundary(&self.buf, cut.max(len.saturating_sub(c.reach())));
                if c.open_start(&self.buf.as_bytes()[tail..], 1)
                    .is_some_and(|a| tail + a < end)
                {
                    return false;
                }
            }
            let creds = merged(creds);
            if !creds.is_empty() {
                mine.retain(|(f, _)| !creds.iter().any(|&(a, b)| f.start < b && a < f.end));
                for &(a, b) in &creds {
                    let f = Finding {
                        entity: Entity::SecretGeneric,
                        start: a,
                        end: b,
                        score: 1.0,
                        validated: true,
                        rule: CREDENTIAL_RULE,
                    };
                    mine.push((f, true));
                }
                mine.sort_by_key(|(f, _)| f.start);
            }
        }
        let action = |f: &Finding| {
            if f.rule == CREDENTIAL_RULE {
                Action::Mask
            } else {
                out.action(f.entity)
            }
        };
        for (f, counted) in &mine {
            if *counted {
                *self.counts.entry((f.entity, action(f))).or_insert(0) += 1;
            }
        }
        let mine: Vec<Finding> = mine.into_iter().map(|(f, _)| f).collect();
        let segment = &self.buf[start..end];
        let masked = if mine.is_empty() {
            segment.to_string()
        } else {
            apply_with(segment, &mine, action, out.hash_key, &mut NoTokens).text
        };
        match out.tokens {
            Some(t) if !t.is_empty() => shown.push_str(&t.unmask(&masked)),
            _ => shown.push_str(&masked),
        }
        // Keep CONTEXT bytes of released text for the next window. Dropping the released text
        // moves what is held; done only once it is most of the buffer, so a large text fed at
        // once costs linear time, not a move of the rest per segment.
        let keep_from = floor_boundary(&self.buf, end.saturating_sub(CONTEXT));
        if keep_from > 4096 && keep_from * 2 > self.buf.len() {
            self.work += (self.buf.len() - keep_from) as u64;
            self.buf.drain(..keep_from);
            self.emitted = end - keep_from;
            // (What was read ahead is read again, in the moved text's places.)
            self.across = None;
        } else {
            self.emitted = end;
        }
        true
    }
}

/// The PEM markers the cuts look for.
#[derive(Clone, Copy)]
enum Pem {
    Begin,
    End,
    Dashes,
}

/// The first `marker` in `hay` (SIMD finders built once).
fn find(hay: &[u8], marker: Pem) -> Option<usize> {
    use memchr::memmem::Finder;
    use std::sync::OnceLock;
    static F: OnceLock<[Finder<'static>; 3]> = OnceLock::new();
    let f = F.get_or_init(|| {
        [
            Finder::new(b"-----BEGIN"),
            Finder::new(b"-----END"),
            Finder::new(b"-----"),
        ]
    });
    f[marker as usize].find(hay)
}

/// The output side of a policy over a complete text: the same as feeding it to an
/// [`OutputFilter`] at once.
pub fn guard_output(out: &Output<'_>, text: &str) -> (String, BTreeMap<(Entity, Action), u32>) {
    let mut f = OutputFilter::new();
    let mut shown = f.feed(out, text);
    shown.push_str(&f.finish(out));
    (shown, f.counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn setup() -> &'static (Policy, Guard, SessionTokens) {
        static S: std::sync::OnceLock<(Policy, Guard, SessionTokens)> = std::sync::OnceLock::new();
        S.get_or_init(|| {
            let p = Policy::from_yaml("entities: { PHONE_NUMBER: hash }").unwrap();
            let g = p.guard().unwrap();
            let mut t = SessionTokens::default();
            t.token(Entity::EmailAddress, "ann@example.org");
            t.token(Entity::CreditCard, "4111 1111 1111 1111");
            (p, g, t)
        })
    }

    /// However a text arrives — whole, or in small pieces — the filter's work (bytes scanned
    /// plus bytes moved) stays a small multiple of its length: a large answer or prompt cannot
    /// hold a worker for a time that grows with its square. (About 2.3 scans of each byte for
    /// the policy, about 1.8 for the credentials as written, one per reading across blanks,
    /// and the moves.)
    #[test]
    fn work_is_linear_in_the_length() {
        let o = out();
        let text =
            "call +44 20 7946 0958 or mail ann@example.org, order 12345 shipped. ".repeat(8_000);
        // A run of backslashes (each read as the start of an escape) is read once too.
        let backslashes = format!("{} end", "\\".repeat(400_000));
        let (shown, _) = guard_output(&o, &backslashes);
        assert_eq!(shown, backslashes);
        let mut f = OutputFilter::new();
        f.feed(&o, &backslashes);
        f.finish(&o);
        assert!(f.work() < 9 * backslashes.len() as u64, "{}", f.work());
        for piece in [text.len(), 4096, 7] {
            let mut f = OutputFilter::new();
            let mut shown = String::new();
            for chunk in text.as_bytes().chunks(piece) {
                shown.push_str(&f.feed(&o, std::str::from_utf8(chunk).unwrap()));
            }
            shown.push_str(&f.finish(&o));
            assert!(!shown.contains("7946 0958"), "the phone number is hashed");
            assert!(
                f.work() < 9 * text.len() as u64,
                "pieces of {piece}: {} bytes of work for {} bytes",
                f.work(),
                text.len()
            );
        }
    }

    /// The gateway's credentials of these tests: one in no known shape, one shaped like an
    /// OpenAI key (so the policy finds it too), and one too short to be taken.
    const CRED: &str = "gw-cred-Zq81x7Lm3";
    const CRED_SHAPED: &str = "sk-proj-GatewayKey0123456789abcdefABCDEF01";

    fn credentials() -> &'static Credentials {
        static C: std::sync::OnceLock<Credentials> = std::sync::OnceLock::new();
        C.get_or_init(|| Credentials::new([CRED, CRED_SHAPED, "short", ""]))
    }

    fn out() -> Output<'static> {
        let (p, g, t) = setup();
        Output {
            policy: p,
            guard: g,
            hash_key: b"k",
            tokens: Some(t),
            scan: true,
            mask_all: false,
            credentials: Some(credentials()),
        }
    }

    #[test]
    fn tokens_come_back_and_new_values_are_masked() {
        let text = "Dear <EMAIL_ADDRESS_1>, your card <CREDIT_CARD_1> is active. Our colleague bob@example.net (card 5500 0000 0000 0004) will call +44 20 7946 0958.";
        let (shown, counts) = guard_output(&out(), text);
        let phone = crate::policy::hashed(Entity::PhoneNumber, "+44 20 7946 0958", b"k");
        assert_eq!(
            shown,
            format!(
                "Dear ann@example.org, your card 4111 1111 1111 1111 is active. Our colleague <EMAIL_ADDRESS> (card <CREDIT_CARD>) will call {phone}."
            )
        );
        assert_eq!(counts[&(Entity::EmailAddress, Action::Mask)], 1);
        assert_eq!(counts[&(Entity::CreditCard, Action::Mask)], 1);
        assert_eq!(counts[&(Entity::PhoneNumber, Action::Hash)], 1);
    }

    #[test]
    fn nothing_is_shown_before_it_is_scanned() {
        // A card number arriving digit group by digit group: no group of it is shown before
        // the number is whole and masked.
        let o = out();
        let mut f = OutputFilter::new();
        let mut shown = String::new();
        for piece in [
            "Your new card number is ",
            "5500 ",
            "0000 ",
            "0000 ",
            "0004",
            " and it works everywhere, we hope, and then some more words follow here.",
        ] {
            shown.push_str(&f.feed(&o, piece));
            assert!(!shown.contains("5500"), "{shown:?}");
        }
        shown.push_str(&f.finish(&o));
        assert_eq!(
            shown,
            "Your new card number is <CREDIT_CARD> and it works everywhere, we hope, and then some more words follow here."
        );
    }

    #[test]
    fn a_pem_block_is_held_until_it_ends() {
        let o = out();
        let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n".repeat(8);
        let pem = format!(
            "Here it is:\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\nkeep it safe, and do not share it with anyone at all please."
        );
        let mut f = OutputFilter::new();
        let mut shown = String::new();
        for piece in pem.as_bytes().chunks(7) {
            shown.push_str(&f.feed(&o, std::str::from_utf8(piece).unwrap()));
            assert!(!shown.contains("MIIEow"), "{shown:?}");
        }
        shown.push_str(&f.finish(&o));
        assert!(shown.contains("<SECRET_PRIVATE_KEY>"), "{shown}");
        assert!(!shown.contains("MIIEow"));
    }

    /// A value that straddles a segment's cut (the cut falls between a card number's groups)
    /// is masked whole: the segment is taken to the value's end, so no group is shown.
    #[test]
    fn a_value_across_a_cut_is_masked_whole() {
        let o = out();
        for lead in 80..SEGMENT + 4 {
            let text = format!(
                "{} card 4111 1111 1111 1111 was charged today",
                "a".repeat(lead)
            );
            let (shown, _) = guard_output(&o, &text);
            assert!(
                !shown.contains("4111") && !shown.contains("1111 was"),
                "lead {lead}: {shown}"
            );
            assert!(
                shown.contains("card <CREDIT_CARD> was"),
                "lead {lead}: {shown}"
            );
        }
    }

    /// A JWT of several KiB (many claims) streamed in small pieces is held whole and masked
    /// whole: no part of its payload or signature is shown.
    #[test]
    fn a_long_jwt_streamed_is_masked_whole() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let claims = format!(
            "{{\"sub\":\"1234567890\",\"roles\":\"{}\"}}",
            "admin,".repeat(600)
        );
        let jwt = format!(
            "{}.{}.{}",
            b64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"),
            b64(&claims),
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        );
        assert!(jwt.len() > 4000);
        let o = out();
        let mut f = OutputFilter::new();
        let mut shown = String::new();
        let text = format!("token: {jwt} done");
        for piece in text.as_bytes().chunks(50) {
            shown.push_str(&f.feed(&o, std::str::from_utf8(piece).unwrap()));
        }
        shown.push_str(&f.finish(&o));
        assert_eq!(shown, "token: <SECRET_JWT> done");
    }

    #[test]
    fn a_token_in_a_long_run_is_never_cut() {
        let run = format!(
            "{}<EMAIL_ADDRESS_1>{}",
            "a".repeat(SEGMENT + MAX_RUN - 5),
            "b".repeat(300)
        );
        let (shown, _) = guard_output(&out(), &run);
        assert_eq!(shown, run.replace("<EMAIL_ADDRESS_1>", "ann@example.org"));
    }

    #[test]
    fn context_words_of_released_text_still_count() {
        // The cut falls after "security": the next segment sees "my social security" as context.
        let lead = "word ".repeat(17);
        assert_eq!(lead.len() + "my social security".len(), SEGMENT + 7);
        let text = format!("{lead}my social security number is 123456789 thanks");
        let text = text.as_str();
        let o = out();
        let mut f = OutputFilter::new();
        let mut shown = String::new();
        for w in text.split_inclusive(' ') {
            shown.push_str(&f.feed(&o, w));
        }
        shown.push_str(&f.finish(&o));
        assert_eq!(
            shown,
            format!("{lead}my social security number is <US_SSN> thanks")
        );
    }

    /// The gateway's own credentials are masked wherever they appear — streamed a byte at a
    /// time, inside a word, with the policy's scan off — and counted once each as
    /// `SECRET_GENERIC`, also when the policy's own finding (an OpenAI key's shape) overlaps.
    #[test]
    fn the_gateway_credentials_are_masked_whatever_the_policy() {
        let text = format!(
            "the key is {CRED} and token={CRED}, also {CRED_SHAPED}. short and gw-cred-Zq81x7Lm are fine"
        );
        for scan in [true, false] {
            let o = Output { scan, ..out() };
            let mut f = OutputFilter::new();
            let mut shown = String::new();
            for b in text.as_bytes().chunks(1) {
                shown.push_str(&f.feed(&o, std::str::from_utf8(b).unwrap()));
            }
            shown.push_str(&f.finish(&o));
            assert_eq!(
                shown,
                "the key is <SECRET_GENERIC> and token=<SECRET_GENERIC>, also <SECRET_GENERIC>. short and gw-cred-Zq81x7Lm are fine",
                "scan {scan}"
            );
            assert_eq!(
                f.counts().get(&(Entity::SecretGeneric, Action::Mask)),
                Some(&3),
                "scan {scan}: {:?}",
                f.counts()
            );
            assert_eq!(f.counts().len(), 1, "{:?}", f.counts());
        }
        // Without credentials, only the policy acts (on the shaped one).
        let o = Output {
            credentials: None,
            ..out()
        };
        let (shown, _) = guard_output(&o, &text);
        assert!(shown.contains(CRED), "{shown}");
        assert!(!shown.contains(CRED_SHAPED), "{shown}");
    }

    /// A credential is found written as is, behind `\u` escapes (either case of hex), with
    /// `\/` for `/`, and escaped twice (JSON inside a JSON string, as tool arguments are); a
    /// near miss is not.
    #[test]
    fn credentials_are_found_behind_json_escapes() {
        let c = Credentials::new(["ab/cd+ef=gh/IJ9k"]);
        for (hay, found) in [
            ("x ab/cd+ef=gh/IJ9k y", true),
            (r"x \u0061b\/cd+ef=gh\/IJ9k y", true),
            (r"x \u0041b/cd+ef=gh/IJ9k y", false),
            (r"x \u0061\u0062\u002F\u0063d+ef=gh/IJ9k", true),
            (
                r#"{"arguments":"{\"k\":\"\\u0061b\\/cd+ef=gh/IJ9k\"}"}"#,
                true,
            ),
            ("x ab/cd+ef=gh/IJ9 y", false),
            (r"x \u006", false),
        ] {
            assert_eq!(!c.spans(hay.as_bytes()).is_empty(), found, "{hay}");
            assert_eq!(c.may_be_in_json(hay.as_bytes()), found, "{hay}");
        }
        let hay = r"k=\u0061b\/cd+ef=gh/IJ9k!";
        assert_eq!(c.spans(hay.as_bytes()), [(2, hay.len() - 1)]);
    }

    /// A credential is found in every form of [`written_forms`], at any place inside a longer
    /// base64 text, and a key that is not text (a webhook's decoded signing key) by its
    /// encodings; an ordinary text is left alone.
    #[test]
    fn credentials_are_found_in_their_encoded_forms() {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let key = "ab/cd+ef=gh/IJ9kLmN0";
        let c = Credentials::new([key]);
        let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        let mut forms = vec![
            STANDARD.encode(key),
            URL_SAFE.encode(key),
            hex.clone(),
            hex.to_uppercase(),
            key.bytes().map(|b| format!("%{b:02X}")).collect(),
            "ab%2fcd%2bef%3dgh%2fIJ9kLmN0".to_string(),
            key.chars().rev().collect(),
        ];
        for pad in ["", "x", "xy"] {
            forms.push(STANDARD.encode(format!("{pad}{key}tail")));
            forms.push(URL_SAFE.encode(format!("{pad}{key}tail")));
        }
        for form in &forms {
            let text = format!("see {form} here");
            assert_eq!(c.spans(text.as_bytes()).len(), 1, "{form}");
        }
        let ordinary = "see aGVsbG8gd29ybGQ= and 48656c6c6f and %41%42 here";
        assert!(c.spans(ordinary.as_bytes()).is_empty());
        let binary: Vec<u8> = (0u8..24).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        let c = Credentials::from_bytes([binary.as_slice()]);
        assert!(!c.is_empty());
        for form in [
            STANDARD.encode(&binary),
            binary
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ] {
            assert_eq!(c.spans(format!("k={form}").as_bytes()).len(), 1, "{form}");
        }
    }

    /// A credential with invisible characters between its characters — as UTF-8 or as JSON
    /// escapes — is found, its span covering them, and masked whole in a stream however cut.
    #[test]
    fn credentials_are_found_across_invisible_characters() {
        let c = credentials();
        for sep in [
            "\u{200B}", "\u{00AD}", "\u{2060}", "\u{FEFF}", "\\u200b", "\\u00AD",
        ] {
            let spaced: String = CRED
                .chars()
                .map(|ch| ch.to_string())
                .collect::<Vec<_>>()
                .join(sep);
            let text = format!("k\u{200B}={spaced}!");
            let start = text.find('g').unwrap();
            assert_eq!(c.spans(text.as_bytes()), [(start, text.len() - 1)], "{sep}");
            let mut f = OutputFilter::new();
            let o = out();
            let mut shown = String::new();
            for piece in text.split_inclusive(['x', '-']) {
                shown.push_str(&f.feed(&o, piece));
            }
            shown.push_str(&f.finish(&o));
            assert_eq!(shown, "k\u{200B}=<SECRET_GENERIC>!", "{sep}");
        }
        // Invisible characters elsewhere change nothing.
        assert!(c.spans("a\u{200B}b gw-cred".as_bytes()).is_empty());
    }

    /// Every other way to spell a credential that a reader (or a decoder) reads as it: any
    /// default-ignorable character between its characters (variation selectors, the grapheme
    /// joiner, tags, fillers — also as surrogate-pair escapes, and escaped twice as in tool
    /// arguments), a lone surrogate escape, full-width and other compatibility forms, some
    /// characters percent-encoded; ordinary text in other scripts is left alone.
    #[test]
    fn what_is_found_as_written_is_found_in_a_text_that_also_folds() {
        // An occurrence right after an encoding that reads as something else (`%41` reads as
        // `A`, swallowing the credential's first characters in the folded text), and a
        // credential holding a letter that itself reads as another (Cyrillic `а`): only the
        // text as written shows them.
        let c = Credentials::new(["41bcdefghijk"]);
        let text = "x%41bcdefghijk y";
        assert_eq!(c.spans(text.as_bytes()), [(2, 14)]);
        let text = "x\u{FF05}41bcdefghijk y";
        assert_eq!(c.spans(text.as_bytes()), [(4, 16)]);
        let c = Credentials::new(["p\u{0430}ssword-2026"]);
        let text = "k=p\u{0430}ssword-2026 \u{00FC}";
        assert_eq!(c.spans(text.as_bytes()), [(2, 16)]);
        // In an answer in another script, read folded, a credential written as is is found
        // once, where it is.
        let c = credentials();
        let text = format!("Ключ: {CRED} готов, ещё ключ {CRED}.");
        let first = text.find(CRED).unwrap();
        let second = text.rfind(CRED).unwrap();
        assert_eq!(
            c.spans(text.as_bytes()),
            [(first, first + CRED.len()), (second, second + CRED.len())]
        );
    }

    /// Attack helper 38 C2–C4: a hex key after an encoded percent sign the second reading would
    /// take with the key's first two digits; credentials that themselves hold what a reading
    /// folds, spelled otherwise; control characters and terminal escapes between a key's
    /// characters.
    #[test]
    fn credentials_read_at_every_reading_and_by_their_own_folds_are_found() {
        let hex = "4f3ca9b8d7e6f5a4b3c2d1e0f9a8b7c6";
        let c = Credentials::new([hex]);
        for spelled in [
            format!("%254\u{200B}{}", &hex[1..]),
            format!("\u{FF05}4\u{200B}{}", &hex[1..]),
        ] {
            let text = format!("Вот ваш ключ: {spelled} конец");
            let at = text.find('4').unwrap();
            let end = text.find(" конец").unwrap();
            assert_eq!(c.spans(text.as_bytes()), [(at, end)], "{spelled}");
        }
        for (secret, spelled) in [
            ("pw%41bc-77889900xyz", "pw%41b\u{200B}c-77889900xyz"),
            ("pw%41bc-77889900xyz", "pwAbc-77889900xyz"),
            (
                "sk-t\u{0435}st-K\u{0435}y-998877",
                "sk\u{200B}-t\u{0435}st-K\u{0435}y-998877",
            ),
            (
                "sk-t\u{0435}st-K\u{0435}y-998877",
                "sk-test-Key-99887\u{FF17}",
            ),
            (
                "cl\u{E9}-secr\u{E8}te-2468",
                "cle\u{301}-secre\u{300}te-2468",
            ),
            ("tok&amp;en-55667788", "tok&amp;e\u{200B}n-55667788"),
            // A capital and a zero Unicode draws like `l` and `O` (Greek capital iota, NKo
            // zero), a ligature, a letter that reads as itself beside an invisible character.
            ("Iq0-token-88xy", "\u{399}q\u{7C0}-token-88xy"),
            ("gw-office-Zq81x7Lm3", "gw-o\u{FB03}ce-Zq81x7Lm3"),
            ("key-\u{436}-Zq81x7Lm3", "key-\u{436}-Zq81x7Lm3"),
        ] {
            let c = Credentials::new([secret]);
            let text = format!("x {spelled} y");
            assert_eq!(
                c.spans(text.as_bytes()),
                [(2, 2 + spelled.len())],
                "{secret} as {spelled}"
            );
        }
        let c = credentials();
        for sep in [
            "\u{7}",
            "\u{0}",
            "\u{7F}",
            "\u{8}",
            "\u{1B}[0m",
            "\\u0007",
            "\\u001b",
        ] {
            let text = format!(
                "k={}!",
                CRED.chars().map(String::from).collect::<Vec<_>>().join(sep)
            );
            assert_eq!(c.spans(text.as_bytes()), [(2, text.len() - 1)], "{sep:?}");
        }
        // A byte that is no character right before the key, an overlong encoding inside it.
        let mut bytes = b"k=\xCC".to_vec();
        bytes.extend_from_slice(CRED.as_bytes());
        assert_eq!(c.spans(&bytes), [(3, bytes.len())]);
        let mut bytes = b"k=".to_vec();
        bytes.extend_from_slice(&CRED.as_bytes()[..5]);
        bytes.extend_from_slice(b"\xE0\x80\xAF");
        bytes.extend_from_slice(&CRED.as_bytes()[5..]);
        assert_eq!(c.spans(&bytes), [(2, bytes.len())]);
        // A letter that reads as itself in the credential, an invisible character before it.
        let own = Credentials::new(["key-\u{436}-Zq81x7Lm3"]);
        let text = "\u{200B} key-\u{436}-Zq81x7Lm3";
        assert_eq!(own.spans(text.as_bytes()), [(4, text.len())]);
        // … and only that letter: another in its place is another text.
        let text = "\u{200B} key-\u{444}-Zq81x7Lm3";
        assert!(own.spans(text.as_bytes()).is_empty());
        // Line breaks and tabs stay text: a key is not joined across them.
        let text = format!("k={}\n{}!", &CRED[..6], &CRED[6..]);
        assert!(c.spans(text.as_bytes()).is_empty());
    }

    #[test]
    fn credentials_are_found_through_every_ignorable_and_look_alike_spelling() {
        let c = credentials();
        let join = |sep: &str| -> String {
            CRED.chars()
                .map(|ch| ch.to_string())
                .collect::<Vec<_>>()
                .join(sep)
        };
        for sep in [
            "\u{FE0F}",
            "\u{034F}",
            "\u{E0020}",
            "\u{180E}",
            "\u{3164}",
            "\u{1D173}",
            "\\udb40\\udc20",
            "\\\\u200b",
            "\\ud800",
            "\\uDFFF",
            // Attack 2026-12-02c C3, C6: a percent-encoded zero-width space, format characters
            // outside the default-ignorable set, a combining mark.
            "%E2%80%8B",
            "\u{FFF9}",
            "\u{13430}",
            "\u{0301}",
            "\u{302A}",
            "\u{1DA00}",
            "&shy;",
            "&ZeroWidthSpace;",
        ] {
            let text = format!("k={}!", join(sep));
            assert_eq!(c.spans(text.as_bytes()), [(2, text.len() - 1)], "{sep:?}");
        }
        // Bytes that are not UTF-8 between its characters (a client decodes each as U+FFFD),
        // and the replacement character itself.
        let mut garbled = b"k=".to_vec();
        for (i, b) in CRED.bytes().enumerate() {
            if i > 0 {
                garbled.push(0xFF);
            }
            garbled.push(b);
        }
        garbled.push(b'!');
        assert_eq!(c.spans(&garbled), [(2, garbled.len() - 1)]);
        let replaced = format!("k={}!", join("\u{FFFD}"));
        assert_eq!(c.spans(replaced.as_bytes()), [(2, replaced.len() - 1)]);
        // Letters Unicode's confusables give as the same as `b` and `2` (re-test of attack
        // 2026-12-02c C5).
        let shaped = format!(
            "k={}!",
            CRED_SHAPED
                .replace('b', "\u{042C}")
                .replace('2', "\u{14BF}")
        );
        assert_eq!(c.spans(shaped.as_bytes()), [(2, shaped.len() - 1)]);
        let full_width: String = CRED
            .chars()
            .map(|ch| char::from_u32(ch as u32 + 0xFEE0).unwrap())
            .collect();
        let math_digits: String = CRED
            .chars()
            .map(|ch| match ch.to_digit(10) {
                Some(d) => char::from_u32(0x1D7CE + d).unwrap(),
                None => ch,
            })
            .collect();
        let percent: String = CRED
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if i % 2 == 0 {
                    format!("%{b:02X}")
                } else {
                    char::from(b).to_string()
                }
            })
            .collect();
        for spelled in [
            full_width,
            math_digits,
            percent,
            format!("\\uff47{}", &CRED[1..]),
            // Attack 2026-12-02c C3, C4, C5, C12: a full-width percent sign, an escaped one
            // inside a tool's arguments, Cyrillic and Greek letters drawn like Latin ones,
            // HTML references.
            format!("\u{FF05}67{}", &CRED[1..]),
            format!("\\\\u002567{}", &CRED[1..]),
            CRED.replace('e', "\u{0435}")
                .replace('Z', "\u{0396}")
                .replace('x', "\u{0445}"),
            format!("&#x67;&#119;{}", &CRED[2..]),
            CRED.replace('-', "&hyphen;"),
            format!("\u{24D6}{}", &CRED[1..]),
            // Encoded twice: an HTML reference written as HTML, a percent sign percent-encoded.
            format!("&amp;#x67;{}", &CRED[1..]),
            format!("g&amp;#119;{}", &CRED[2..]),
            format!("%2567{}", &CRED[1..]),
            // Helper 39's survivors: three readings (`％` → `%25` → `%67` → `g`), eight
            // backslashes, digits Unicode draws like `l` (Arabic-Indic one) or no confusable
            // covers (Devanagari eight), an em dash.
            format!("\u{FF05}2567{}", &CRED[1..]),
            format!("{}u0067{}", "\\".repeat(8), &CRED[1..]),
            CRED.replace('1', "\u{661}"),
            CRED.replace('8', "\u{96E}"),
            CRED.replacen('-', "\u{2014}", 1),
        ] {
            let text = format!("k={spelled}!");
            assert_eq!(c.spans(text.as_bytes()), [(2, text.len() - 1)], "{spelled}");
        }
        for ordinary in [
            "日本語のテキスト、ＡＢＣと①と%41%42と\\ud800。",
            "ｇｗ－ｃｒｅｄ and gw-cred\u{FE0F}-Zq8",
        ] {
            assert!(c.spans(ordinary.as_bytes()).is_empty(), "{ordinary}");
        }
    }

    /// A hold reads its pieces as they read too: a start spelled with an invisible character
    /// after it, in mathematical letters, or one full-width character per piece is held like a
    /// plain one (review of 2026-12-02, helper 35, 1).
    #[test]
    fn a_hold_sees_a_folded_start() {
        let (shown, h) = held_through(&["gw-cred-Zq81x7Lm\u{200B}", "3"]);
        assert_eq!(shown, "<SECRET_GENERIC>");
        assert_eq!(h.found(), 1);
        let bold: String = CRED
            .chars()
            .map(|c| match c {
                'a'..='z' => char::from_u32(0x1D41A + (c as u32 - 'a' as u32)).unwrap(),
                'A'..='Z' => char::from_u32(0x1D400 + (c as u32 - 'A' as u32)).unwrap(),
                '0'..='9' => char::from_u32(0x1D7CE + (c as u32 - '0' as u32)).unwrap(),
                c => c,
            })
            .collect();
        let last = bold.char_indices().last().unwrap().0;
        let (shown, _) = held_through(&[&bold[..last], &bold[last..]]);
        assert_eq!(shown, "<SECRET_GENERIC>");
        let wide: Vec<String> = CRED
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap().to_string())
            .collect();
        let items: Vec<&str> = wide.iter().map(String::as_str).collect();
        let (shown, h) = held_through(&items);
        assert!(
            shown.ends_with("<SECRET_GENERIC>") && shown.chars().count() <= 18,
            "{shown}"
        );
        assert_eq!(h.found(), 1);
        // A long spelling: two zero-width spaces after each character of a 41-character key,
        // one character per piece (attack 2026-12-02c C1).
        let spaced: Vec<String> = CRED_SHAPED
            .chars()
            .map(|c| format!("{c}\u{200B}\u{200B}"))
            .collect();
        let items: Vec<&str> = spaced.iter().map(String::as_str).collect();
        let (shown, h) = held_through(&items);
        assert_eq!(shown, "<SECRET_GENERIC>\u{200B}\u{200B}");
        assert_eq!(h.found(), 1);
    }

    /// An escape escaped a few times is read; a long run of backslashes is not (reading it to
    /// its end at each backslash took quadratic time: review of 2026-12-02, helper 35, 2), and
    /// a credential right after a long run is still found (attack 2026-12-02c C7).
    #[test]
    fn escapes_are_read_through_a_few_backslashes_only() {
        assert_eq!(written_at(br"\\u0067", 0, b"g"), Some(7));
        let many = format!("{}u0067", "\\".repeat(9));
        assert_eq!(written_at(many.as_bytes(), 0, b"g"), None);
        let run = "\\".repeat(8192);
        for (text, at) in [
            (format!("{run}{CRED}"), run.len()),
            (format!("{run}\\\\u0067{}", &CRED[1..]), run.len() - 8),
        ] {
            let spans = credentials().spans(text.as_bytes());
            assert_eq!(spans.len(), 1, "{}", &text[run.len() - 4..]);
            assert!(spans[0].0 >= at && spans[0].1 == text.len(), "{spans:?}");
        }
    }

    /// A credential across the forced cut of a run without whitespace longer than `MAX_RUN` is
    /// found whole (the segment is taken to its end), and the search does not read past its
    /// limit (it used to panic there).
    #[test]
    fn a_credential_across_a_forced_cut_is_masked_whole() {
        let o = out();
        let run = "a".repeat(SEGMENT + MAX_RUN - 5);
        let text = format!("{run}{CRED} tail");
        let (shown, _) = guard_output(&o, &text);
        assert_eq!(shown, format!("{run}<SECRET_GENERIC> tail"));
    }

    /// A credential written across blanks in a streamed answer — cut by a line break (also as
    /// the JSON escape a tool call's arguments carry), spelled with spaces, base64 wrapped over
    /// lines, hex in pairs with or without separators — is masked from its first character to
    /// its last, whatever the policy and however the text is cut into pieces; the text around
    /// it comes out as it was (attack 2026-12-02b B5, in streams).
    #[test]
    fn a_credential_across_blanks_is_masked_in_a_stream_however_it_is_cut() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(CRED_SHAPED);
        let hex: Vec<String> = CRED.bytes().map(|b| format!("{b:02x}")).collect();
        let spaced: String = CRED.chars().map(|c| format!("{c} ")).collect();
        let shaped_spaced: String = CRED_SHAPED.chars().map(|c| format!("{c} ")).collect();
        let shaped_hex: Vec<String> = CRED_SHAPED.bytes().map(|b| format!("{b:02x}")).collect();
        let cases = [
            (format!("{}\n{}", &CRED[..6], &CRED[6..]), String::new()),
            (format!("{}\n{}", &CRED[..6], &CRED[6..]), String::new()),
            (
                format!("{}\r\n{}", &CRED_SHAPED[..20], &CRED_SHAPED[20..]),
                String::new(),
            ),
            (spaced.trim_end().to_string(), String::new()),
            (
                format!("{}\n{}\n{}", &b64[..20], &b64[20..40], &b64[40..]),
                String::new(),
            ),
            (hex.join(" "), String::new()),
            (hex.join(":").to_uppercase(), String::new()),
            (hex.join("-"), String::new()),
            (
                hex.iter().map(|h| format!("0x{h}, ")).collect::<String>(),
                "0x".into(),
            ),
            (
                hex.iter().map(|h| format!("\\x{h}")).collect::<String>(),
                "\\x".into(),
            ),
            // Longer than the look-ahead past a segment's cut: the start is held until the
            // rest shows whether it is one.
            (shaped_spaced.trim_end().to_string(), String::new()),
            (
                shaped_hex
                    .iter()
                    .map(|h| format!("0x{h}, "))
                    .collect::<String>(),
                "0x".into(),
            ),
            (shaped_hex.join("\\n"), String::new()),
        ];
        // Enough prose around it for several segments before and after.
        let before =
            "the order shipped today and the invoice is attached, thanks for your patience. "
                .repeat(3);
        let after = " and that is all we have on file for this account today, regards.".repeat(3);
        for (i, (written, lead)) in cases.iter().enumerate() {
            // The first case as a raw line break, the second as the JSON escape.
            let written = if i == 0 {
                written.replace("\\n", "\n")
            } else {
                written.clone()
            };
            let written = written.trim_end_matches(", ");
            let text = format!("{before}{written}{after}");
            let want = format!("{before}{lead}<SECRET_GENERIC>{after}");
            for scan in [true, false] {
                let o = Output { scan, ..out() };
                for piece in [text.len(), 1, 3, 16] {
                    let mut f = OutputFilter::new();
                    let mut shown = String::new();
                    for chunk in text.as_bytes().chunks(piece) {
                        shown.push_str(&f.feed(&o, std::str::from_utf8(chunk).unwrap()));
                    }
                    shown.push_str(&f.finish(&o));
                    assert_eq!(shown, want, "case {i}, scan {scan}, pieces of {piece}");
                    assert_eq!(
                        f.counts().get(&(Entity::SecretGeneric, Action::Mask)),
                        Some(&1),
                        "case {i}, scan {scan}, pieces of {piece}: {:?}",
                        f.counts()
                    );
                }
            }
        }
        // A long answer with many: each masked, also where the filter has let go of the text
        // before it (read ahead and moved) — at once, as a complete answer, and in pieces.
        let text: String = cases
            .iter()
            .map(|(w, _)| format!("{before}{}{after} ", w.trim_end_matches(", ")))
            .collect::<String>()
            .repeat(6);
        let want: String = cases
            .iter()
            .map(|(_, lead)| format!("{before}{lead}<SECRET_GENERIC>{after} "))
            .collect::<String>()
            .repeat(6);
        for piece in [text.len(), 4096, 999] {
            let o = out();
            let mut f = OutputFilter::new();
            let mut shown = String::new();
            for chunk in text.as_bytes().chunks(piece) {
                shown.push_str(&f.feed(&o, std::str::from_utf8(chunk).unwrap()));
            }
            shown.push_str(&f.finish(&o));
            assert!(shown == want, "pieces of {piece}");
            let n = u32::try_from(cases.len() * 6).unwrap();
            assert_eq!(f.counts()[&(Entity::SecretGeneric, Action::Mask)], n);
        }
        // Words that do not join into one, and a credential's start alone, pass untouched.
        for text in [
            format!("{before}{} and more {}{after}", &CRED[..9], &b64[..12]),
            format!("{before}a: b - c 0x1f \\x20 line\nbreak{after}"),
        ] {
            let (shown, counts) = guard_output(
                &Output {
                    scan: false,
                    ..out()
                },
                &text,
            );
            assert_eq!(shown, text);
            assert!(counts.is_empty(), "{counts:?}");
        }
    }

    /// What a stream waits on: a start of a credential across blanks that begins before the
    /// limit and reaches the end of what has come — also when the end may still turn into a
    /// blank (`\`, `\u00`) or, in hex, a separator (`0` of `0x`); not once the text has ended,
    /// nor a start that began after the limit or no longer goes on like one.
    #[test]
    fn a_start_across_blanks_is_pending_until_it_is_told() {
        let c = credentials();
        let hex: String = CRED_SHAPED.bytes().map(|b| format!("{b:02x} ")).collect();
        let start = &CRED_SHAPED[..24];
        // The start cut by a space, then `tail`.
        let split = |tail: &str| format!("say {} {}{tail}", &start[..10], &start[10..]);
        for (hay, limit, ended, pending) in [
            (split(""), 6, false, true),
            (split(""), 6, true, false),
            (split("\\"), 6, false, true),
            (split("\\u00"), 6, false, true),
            (split("\\u0041"), 6, false, false),
            (format!("say {}", &hex[..30]), 6, false, true),
            (format!("say {}0", &hex[..29]), 6, false, true),
            (format!("say {}", &hex[..30]), 6, true, false),
            // Begins after the limit.
            (split(""), 4, false, false),
            // Goes on otherwise.
            (split("q"), 6, false, false),
        ] {
            let found = c.spans_across_blanks(hay.as_bytes(), limit, ended);
            assert_eq!(
                found.pending(),
                pending,
                "{hay:?} up to {limit}, ended {ended}"
            );
            assert!(found.spans.is_empty(), "{hay:?}: {:?}", found.spans);
        }
        // A whole one: its place, from its first character to its last.
        let hay = split(&format!("\\n{} and more", &CRED_SHAPED[24..]));
        let found = c.spans_across_blanks(hay.as_bytes(), 6, false);
        let end = hay.find(" and more").unwrap();
        assert_eq!((found.open, found.spans), (None, vec![(4, end)]));
        assert!(found.read > 0);
        // The place of an open start, and its length read.
        assert_eq!(
            c.spans_across_blanks(split("").as_bytes(), 6, false).open,
            Some((4, 24))
        );
        // A limit past the end is the end.
        let found = c.spans_across_blanks(hay.as_bytes(), hay.len() + 50, true);
        assert_eq!(found.spans, vec![(4, end)]);
    }

    /// Feeds `text` to a filter in two pieces cut at `cut` (the whole text at once when `cut` is
    /// its length); gives what was shown and the filter.
    fn fed_in_two(o: &Output<'_>, text: &str, cut: usize) -> (String, OutputFilter) {
        let mut f = OutputFilter::new();
        let mut shown = f.feed(o, &text[..cut]);
        shown.push_str(&f.feed(o, &text[cut..]));
        shown.push_str(&f.finish(o));
        (shown, f)
    }

    /// Found by review (2026-12-04): a start held before a long escape of a blank (a run of
    /// backslashes, `\\u000a`), a key as written that begins inside an occurrence across blanks
    /// (its reversed form, read through a zero-width space), and a text that ends in a long run
    /// of backslashes — each masked the same however the text is cut in two.
    #[test]
    fn what_review_found_is_masked_however_the_text_is_cut() {
        let o = Output {
            scan: false,
            ..out()
        };
        let p = "a".repeat(95);
        let spaced: String = CRED.chars().map(|c| format!("{c} ")).collect();
        let reversed: String = CRED.chars().rev().skip(1).collect();
        let escaped =
            |t: &str| -> String { t.chars().map(|c| format!("\\u{:04x}", c as u32)).collect() };
        let spaced_shaped: String = CRED_SHAPED.chars().map(|c| format!("{c} ")).collect();
        let reversed_shaped: String = CRED_SHAPED.chars().rev().skip(1).collect();
        let tail = " and that is all we have on file for this account today";
        for text in [
            format!(
                "{p}g{}w-cred{}n-Zq81x7Lm3{tail}",
                " ".repeat(70),
                "\\".repeat(12)
            ),
            format!("{p}g{}w-cred\\\\u000a-Zq81x7Lm3{tail}", " ".repeat(70)),
            format!("{p}{}\u{200B}{reversed}{tail}", spaced.trim_end()),
            // …past the look-ahead of the segment's first cut.
            format!(
                "{p}{}\u{200B}{reversed_shaped}{tail}",
                spaced_shaped.trim_end()
            ),
            format!("{p} {}{tail}", "\\".repeat(40)),
            // Found by the second review: the reversed key escaped (cut inside an escape), and
            // a key as written across a form feed (which a segment is no longer cut at).
            format!("{p}{}{}{tail}", spaced.trim_end(), escaped(&reversed)),
            format!("{} gw\u{C}{}{tail}", "a".repeat(93), escaped(&CRED[2..])),
        ] {
            let (whole, _) = fed_in_two(&o, &text, text.len());
            assert!(
                !credentials().shows_across_blanks(whole.as_bytes()),
                "{whole}"
            );
            assert!(credentials().spans(whole.as_bytes()).is_empty(), "{whole}");
            assert!(!whole.contains(&reversed_shaped[5..]), "{whole}");
            assert!(
                !whole.contains("x7Lm") && !whole.contains("mL7x"),
                "{whole}"
            );
            for cut in 0..=text.len() {
                if text.is_char_boundary(cut) {
                    let (shown, _) = fed_in_two(&o, &text, cut);
                    assert_eq!(shown, whole, "cut at {cut} of {text:?}");
                }
            }
        }
        // In held items: a start that ends in an unfinished escape is held.
        let (shown, h) = held_through(&["say ", "gw-cred\u{200B}-Zq81x7L", "\\", "u006d3 ok"]);
        assert_eq!(shown, "say <SECRET_GENERIC> ok");
        assert_eq!(h.found(), 1);
        // In held items: a start that ends in backslashes is held.
        let backslashes = format!("gw-cred-Zq81x7Lm{}", "\\".repeat(6));
        let (shown, h) = held_through(&["say ", &backslashes, "n3 ok"]);
        assert!(
            !credentials().shows_across_blanks(shown.as_bytes()),
            "{shown}"
        );
        assert_eq!(shown, "say <SECRET_GENERIC> ok");
        assert_eq!(h.found(), 1);
    }

    /// A long chain of occurrences across blanks that overlap one another (the key, then its
    /// reverse sharing a character, again and again) costs work linear in its length — at
    /// once or streamed in small pieces, while its last one stays open — and is masked whole.
    #[test]
    fn a_chain_of_overlapping_occurrences_costs_linear_work() {
        let o = Output {
            scan: false,
            ..out()
        };
        let link: String = "gw-cred-Zq81x7Lm3mL7x18qZ-derc-w"
            .chars()
            .map(|c| format!("{c} "))
            .collect();
        let text = format!("{}g", link.repeat(200));
        for piece in [text.len(), 16] {
            let mut f = OutputFilter::new();
            let mut shown = String::new();
            for chunk in text.as_bytes().chunks(piece) {
                shown.push_str(&f.feed(&o, std::str::from_utf8(chunk).unwrap()));
            }
            shown.push_str(&f.finish(&o));
            assert_eq!(shown, "<SECRET_GENERIC>", "pieces of {piece}");
            assert!(
                f.work() < 40 * text.len() as u64,
                "pieces of {piece}: {} bytes of work for {}",
                f.work(),
                text.len()
            );
        }
    }

    /// Pushes `items` one at a time through a hold; gives the joined text shown.
    fn held_through(items: &[&str]) -> (String, CredentialHold<usize>) {
        let mut h = CredentialHold::default();
        let mut shown = String::new();
        for (i, item) in items.iter().enumerate() {
            for (t, _, _) in h.push(credentials(), [(item.to_string(), i)]) {
                shown.push_str(&t);
            }
        }
        for (t, _, _) in h.finish(credentials()) {
            shown.push_str(&t);
        }
        (shown, h)
    }

    /// A credential spelled across blanks over items — a character and a space each, or with
    /// long runs of blanks between its first characters — is masked; what is shown of it
    /// before the mark is at most `HOLD_FROM - 1` of its characters.
    #[test]
    fn a_credential_across_blanks_over_items_is_masked() {
        let spaced: Vec<String> = CRED.chars().map(|c| format!("{c} ")).collect();
        let mut items: Vec<&str> = vec!["say "];
        items.extend(spaced.iter().map(String::as_str));
        items.push("ok");
        let (shown, h) = held_through(&items);
        assert_eq!(shown, "say g w <SECRET_GENERIC> ok");
        assert_eq!(h.found(), 1);
        let gap = " ".repeat(100);
        let (shown, h) = held_through(&["say g", &gap, "w", &gap, "-cred-Zq81x7Lm3", " ok"]);
        assert_eq!(shown, format!("say g{gap}w{gap}<SECRET_GENERIC> ok"));
        assert_eq!(h.found(), 1);
    }

    #[test]
    fn a_credential_one_character_per_item_is_masked() {
        let mut items = vec!["call "];
        let chars: Vec<String> = CRED.chars().map(String::from).collect();
        items.extend(chars.iter().map(String::as_str));
        items.push(" done");
        let (shown, h) = held_through(&items);
        assert_eq!(shown, "call gw<SECRET_GENERIC> done");
        assert_eq!(h.found(), 1);
        assert!(!h.is_holding());
    }

    /// Occurrences that overlap — the reversed credential, whose last character begins the
    /// credential, then the credential — are both masked, one character per item: what the
    /// first mask covered is still read for the second.
    #[test]
    fn overlapping_occurrences_are_both_masked() {
        let reversed: String = CRED.chars().rev().collect();
        let text = format!("{reversed}{}", &CRED[1..]);
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let items: Vec<&str> = chars.iter().map(String::as_str).collect();
        let (shown, h) = held_through(&items);
        // Two characters of each show before its start is held: never three.
        assert_eq!(shown, "3m<SECRET_GENERIC>w<SECRET_GENERIC>");
        assert_eq!(h.found(), 2);
        assert!(written_forms(b"").is_empty());
    }

    #[test]
    fn held_items_come_out_in_order_with_their_payloads() {
        let mut h = CredentialHold::default();
        // No start of a credential: out at once, unchanged.
        let out = h.push(credentials(), [("get_weather".to_string(), 1)]);
        assert_eq!(out, [("get_weather".to_string(), 1, false)]);
        // "gw-" begins CRED: held, and what follows with it.
        assert!(h.push(credentials(), [("x gw-".to_string(), 2)]).is_empty());
        assert!(h.push(credentials(), [("cr".to_string(), 3)]).is_empty());
        assert!(h.is_holding());
        // It does not go on as CRED: everything held comes out as it was, in order.
        let out = h.push(credentials(), [("owd".to_string(), 4)]);
        assert_eq!(
            out,
            [
                ("x gw-".to_string(), 2, false),
                ("cr".to_string(), 3, false),
                ("owd".to_string(), 4, false)
            ]
        );
        // A start left open at the end is no credential: released by finish.
        assert!(h.push(credentials(), [("gw-c".to_string(), 5)]).is_empty());
        assert_eq!(h.finish(credentials()), [("gw-c".to_string(), 5, false)]);
        assert_eq!(h.found(), 0);
    }

    #[test]
    fn an_occurrence_across_items_is_marked_once_and_flagged_in_each() {
        let mut h = CredentialHold::default();
        let (a, b) = CRED.split_at(6);
        let out = h.push(
            credentials(),
            [
                (format!("k={a}"), 'a'),
                (format!("{b}!"), 'b'),
                ("end".to_string(), 'c'),
            ],
        );
        assert_eq!(
            out,
            [
                ("k=<SECRET_GENERIC>".to_string(), 'a', true),
                ("!".to_string(), 'b', true),
                ("end".to_string(), 'c', false)
            ]
        );
        assert_eq!(h.found(), 1);
    }

    #[test]
    fn open_prefix_is_the_longest_start_of_a_credential_at_the_end() {
        let c = credentials();
        assert_eq!(c.open_prefix(b"x gw-cr"), 5);
        // Folded: the held length covers the full-width characters whole.
        assert_eq!(c.open_prefix("x \u{FF47}\u{FF57}\u{FF0D}".as_bytes()), 9);
        assert_eq!(c.open_prefix(b"x sk-proj-Gat"), 11);
        assert_eq!(c.open_prefix(b"get_weather"), 0);
        // A whole credential is not open (its last character begins its reversed form).
        assert_eq!(c.open_prefix(CRED.as_bytes()), 1);
        assert_eq!(c.open_prefix(b""), 0);
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("<EMAIL_ADDRESS_1>".to_string()),
            Just("<CREDIT_CARD_1>".to_string()),
            Just("<EMAIL_ADDRESS_9>".to_string()),
            Just("bob@example.net".to_string()),
            Just("5500 0000 0000 0004".to_string()),
            Just("+44 20 7946 0958".to_string()),
            Just("AKIAIOSFODNN7EXAMPLE".to_string()),
            Just("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----".to_string()),
            Just("é".to_string()),
            Just(CRED.to_string()),
            Just(CRED_SHAPED.to_string()),
            Just(format!("key={CRED}")),
            Just("<".to_string()),
            Just("\n".to_string()),
            // A credential's pieces, which the join's spaces and the blanks below put together
            // across blanks; its hex pairs; and what may begin a blank or a separator.
            Just(CRED[..8].to_string()),
            Just(CRED[8..].to_string()),
            Just(CRED_SHAPED[..30].to_string()),
            Just(CRED_SHAPED[30..].to_string()),
            Just("67:77:2d:63:72:65:64:2d".to_string()),
            Just("5a:71:38:31:78:37:4c:6d:33".to_string()),
            Just("\\n".to_string()),
            Just("\\".to_string()),
            Just("\\u00".to_string()),
            Just("0".to_string()),
            Just("x".to_string()),
            Just(CRED_SHAPED.chars().map(|c| format!("{c} ")).collect::<String>()),
            Just(CRED_SHAPED[..20].chars().map(|c| format!("{c}  ")).collect::<String>()),
            Just(CRED_SHAPED[20..].chars().map(|c| format!("{c}\\n")).collect::<String>()),
            "[a-z]{1,12}",
            "[0-9]{1,6}",
            " {1,3}",
            "[a-zA-Z0-9+/]{40,80}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// However the answer is cut into pieces, what is shown equals the complete answer
        /// guarded at once; nothing is held after the end.
        #[test]
        fn streamed_output_equals_the_complete_answer_guarded(
            parts in proptest::collection::vec(piece(), 0..40),
            cuts in proptest::collection::vec(0usize..200, 0..30),
        ) {
            let o = out();
            let text = parts.join(" ");
            let (whole, whole_counts) = guard_output(&o, &text);
            let mut bounds: Vec<usize> = cuts
                .into_iter()
                .map(|c| floor_boundary(&text, c * text.len() / 200))
                .collect();
            bounds.push(0);
            bounds.push(text.len());
            bounds.sort_unstable();
            bounds.dedup();
            let mut f = OutputFilter::new();
            let mut shown = String::new();
            for w in bounds.windows(2) {
                shown.push_str(&f.feed(&o, &text[w[0]..w[1]]));
            }
            shown.push_str(&f.finish(&o));
            prop_assert_eq!(&shown, &whole);
            prop_assert_eq!(f.counts(), &whole_counts);
            prop_assert!(!f.is_holding());
            prop_assert!(!shown.contains(CRED) && !shown.contains(CRED_SHAPED), "{}", shown);
            prop_assert!(!o.credentials.unwrap().shows_across_blanks(shown.as_bytes()), "{}", shown);
        }

        /// However a text is cut into items and pushed, no credential is shown, each
        /// occurrence shows one mark after at most `HOLD_FROM - 1` of its bytes, every other
        /// byte is shown as it was, and nothing is held after the end.
        #[test]
        fn a_hold_shows_no_credential_however_the_items_are_cut(
            parts in proptest::collection::vec(prop_oneof![
                Just(CRED.to_string()),
                Just(CRED_SHAPED.to_string()),
                Just("gw-".to_string()),
                Just("gw-cred-Zq".to_string()),
                Just("sk-proj-".to_string()),
                Just("é".to_string()),
                Just("g w - c r e d".to_string()),
                Just("-Zq81 x7Lm3".to_string()),
                Just(" \n ".to_string()),
                "[a-z_ ]{1,12}",
            ], 0..12),
            cuts in proptest::collection::vec(0usize..100, 0..40),
            group in 1usize..4,
        ) {
            let c = credentials();
            let text = parts.concat();
            let mut bounds: Vec<usize> = cuts
                .into_iter()
                .map(|x| floor_boundary(&text, x * text.len() / 100))
                .collect();
            bounds.push(0);
            bounds.push(text.len());
            bounds.sort_unstable();
            bounds.dedup();
            let items: Vec<(String, usize)> = bounds
                .windows(2)
                .enumerate()
                .map(|(i, w)| (text[w[0]..w[1]].to_string(), i))
                .collect();
            let mut h = CredentialHold::default();
            let mut out = Vec::new();
            for g in items.chunks(group) {
                out.extend(h.push(c, g.to_vec()));
            }
            out.extend(h.finish(c));
            prop_assert!(!h.is_holding());
            let order: Vec<usize> = out.iter().map(|x| x.1).collect();
            prop_assert_eq!(order, (0..items.len()).collect::<Vec<_>>());
            let shown: String = out.iter().map(|x| x.0.as_str()).collect();
            prop_assert!(!shown.contains(CRED) && !shown.contains(CRED_SHAPED), "{}", shown);
            prop_assert!(!c.shows_across_blanks(shown.as_bytes()), "{}", shown);
            let mut spans = c.spans(text.as_bytes());
            spans.extend(c.spans_across_blanks(text.as_bytes(), text.len(), true).spans);
            let spans = merged(spans);
            prop_assert_eq!(h.found() as usize, spans.len());
            // Walk the text and what was shown side by side.
            let mark = "<SECRET_GENERIC>";
            let (mut i, mut j) = (0, 0);
            for (a, b) in spans {
                prop_assert_eq!(&shown[i..i + (a - j)], &text[j..a]);
                i += a - j;
                let k = shown[i..].find(mark).unwrap();
                prop_assert!(
                    without_blanks(&shown.as_bytes()[i..i + k], false).len() < HOLD_FROM
                        && text[a..b].starts_with(&shown[i..i + k]),
                    "{}",
                    shown
                );
                i += k + mark.len();
                j = b;
            }
            prop_assert_eq!(&shown[i..], &text[j..]);
        }

        /// The one-pass search (an automaton for the plain forms, form by form only near
        /// backslashes) finds exactly what reading every form at every place finds.
        #[test]
        fn the_one_pass_search_finds_what_the_form_by_form_search_finds(
            parts in proptest::collection::vec(prop_oneof![
                Just(CRED.to_string()),
                Just(r"\u0067w-cred-Zq81x7Lm3".to_string()),
                Just(r"gw-cred-Zq81x7L\u006d3".to_string()),
                Just(r"gw-cred-Zq81x7L\\u006D3".to_string()),
                Just(CRED_SHAPED.to_string()),
                Just(r"\n".to_string()),
                Just(r"\\".to_string()),
                Just("\u{200B}".to_string()),
                "[a-z0-9 ]{1,40}",
                "[a-z]{300,400}",
            ], 0..16),
            cut in 0usize..100,
        ) {
            let c = credentials();
            let hay = parts.concat();
            let limit = cut * hay.len() / 100;
            let mut every = Vec::new();
            c.escaped_spans(hay.as_bytes(), 0, limit, &mut every);
            prop_assert_eq!(c.raw_spans(hay.as_bytes(), limit), merged(every));
        }

        /// Without findings, the filter only puts tokens back: exactly what unmasking the
        /// complete text gives.
        #[test]
        fn unmasking_alone_equals_unmasking_the_whole(
            parts in proptest::collection::vec(prop_oneof![
                Just("<EMAIL_ADDRESS_1>".to_string()),
                Just("<CREDIT_CARD_1>".to_string()),
                Just("<".to_string()),
                "[a-z ]{1,30}",
            ], 0..40),
            chunk in 1usize..20,
        ) {
            let (p, g, t) = setup();
            let o = Output { policy: p, guard: g, hash_key: b"k", tokens: Some(t), scan: false, mask_all: false, credentials: None };
            let text = parts.concat();
            let mut f = OutputFilter::new();
            let mut shown = String::new();
            for piece in text.as_bytes().chunks(chunk) {
                shown.push_str(&f.feed(&o, std::str::from_utf8(piece).unwrap()));
            }
            shown.push_str(&f.finish(&o));
            prop_assert_eq!(shown, t.unmask(&text));
        }
    }
}
