//! Numbers: one scan for digit runs feeds every numeric recognizer.
//!
//! A *number token* is a run of digit groups joined by one separator each (space, `-`, `.`, `/`,
//! `_` between digits, a run of up to three spaces, or parentheses around a group, as in
//! `+1 (415) 555-0132`), optionally led by `+`. A token glued to a letter or `_` on either side is
//! part of an identifier (`order12345`, `x86_64`) and is skipped. Each recognizer says which
//! separators it takes (a phone number one space, dash or dot; a card also the others). A group longer than 24 digits is no identifier of any kind and ends the token, so a
//! megabyte of digits costs one pass and yields nothing.
//!
//! Recognizers look at every run of up to six consecutive groups of a token (a card number may
//! follow a year: `in 2023 4111 1111 1111 1111`), so a value is found wherever it starts.

use crate::validate as v;
use crate::{Candidate, Entity, GuardConfig, Pack, Region};

/// Most digits in one group.
const MAX_GROUP_DIGITS: usize = 24;
/// Most groups one recognizer looks at together (`+33 1 23 45 67 89`).
const MAX_SPAN_GROUPS: usize = 6;
/// Groups kept per window; windows overlap by [`MAX_SPAN_GROUPS`].
const WINDOW: usize = 12;
/// Most digits any numeric entity has.
const MAX_DIGITS: usize = 19;

#[derive(Debug, Clone, Copy)]
struct Group {
    start: usize,
    end: usize,
}

/// Scans `t` for number tokens and classifies each.
pub fn scan(t: &str, cfg: &GuardConfig, out: &mut Vec<Candidate>) {
    let ctx = Ctx {
        packs: cfg.packs.iter().fold(0, |m, p| m | (1 << *p as u16)),
        regions: Region::ALL
            .iter()
            .filter(|r| cfg.phone_regions.contains(r))
            .copied()
            .collect(),
    };
    let b = t.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut groups: Vec<Group> = Vec::with_capacity(WINDOW);
    let mut scratch = (
        String::with_capacity(2 * MAX_DIGITS),
        Vec::with_capacity(MAX_SPAN_GROUPS),
    );
    while i < n {
        // Straight to the next digit (eight bytes at a time); a token may start one byte before
        // it, at a `+` or `(`.
        let d = crate::swar::next_digit(b, i);
        if d >= n {
            break;
        }
        i = if d > i && matches!(b[d - 1], b'+' | b'(') {
            d - 1
        } else {
            d
        };
        let c = b[i];
        // A UUID is an identifier, whatever its groups' digits look like.
        if t.get(i..i + 36).is_some_and(crate::shapes::uuid_like) {
            i += 36;
            continue;
        }
        let glued = i > 0 && is_word(b[i - 1]);
        // After a dash or an underscore that follows a letter or digit (`ORD-12345678`,
        // `xoxb-1981…`): part of an identifier too.
        let joined = i > 1 && matches!(b[i - 1], b'-' | b'_') && b[i - 2].is_ascii_alphanumeric();
        if joined && b[i - 1] == b'_' {
            // A card number glued to a word by `_` (`card_4111111111111111`): a whole block of
            // 13–19 digits passing Luhn is a card, identifier or not.
            let mut j = i;
            while j < n && b[j].is_ascii_digit() {
                j += 1;
            }
            if (13..=19).contains(&(j - i))
                && (j == n || !is_word(b[j]))
                && v::credit_card(&t[i..j])
            {
                out.push(Candidate::new(
                    Entity::CreditCard,
                    i,
                    j,
                    1.0,
                    true,
                    "luhn_glued",
                ));
                i = j;
                continue;
            }
        }
        if glued || joined {
            // Inside an identifier (`order12345`, `x+1`): skip the rest of it.
            i += 1;
            while i < n && is_word(b[i]) {
                i += 1;
            }
            continue;
        }
        let token_start = i;
        let plus = c == b'+';
        let mut paren_open = c == b'(';
        if plus || paren_open {
            i += 1;
        }
        groups.clear();
        let mut glued = false;
        loop {
            let gs = i;
            while i < n && b[i].is_ascii_digit() {
                i += 1;
            }
            let ge = i;
            if ge - gs > MAX_GROUP_DIGITS {
                // A long digit run: no entity; it ends the token, and what came before stands.
                glued = true;
                break;
            }
            groups.push(Group { start: gs, end: ge });
            if groups.len() == WINDOW {
                let w = Window {
                    plus_at: plus.then_some(token_start),
                    last: false,
                };
                classify(t, w, &groups, &ctx, &mut scratch, out);
                groups.drain(..WINDOW - MAX_SPAN_GROUPS);
            }
            // The separator, if the token goes on.
            let mut j = i;
            if paren_open && j < n && b[j] == b')' {
                paren_open = false;
                j += 1;
                if j < n && matches!(b[j], b' ' | b'-' | b'.') {
                    j += 1;
                }
            } else if j < n && b[j] == b' ' {
                // A run of spaces is one gap (`4111  1111`): up to three. (Not tabs: a row of a
                // tab-separated table is no number.)
                j += 1;
                while j < n && j - i < 3 && b[j] == b' ' {
                    j += 1;
                }
            } else if j < n
                && (matches!(b[j], b'-' | b'.' | b'/')
                    || (b[j] == b'_' && j + 1 < n && b[j + 1].is_ascii_digit()))
            {
                // (An underscore between digits separates groups, `4111_1111`; before a letter
                // it glues the number to a word, `2023_report`.)
                j += 1;
            } else {
                if j < n && is_word(b[j]) {
                    glued = true;
                }
                break;
            }
            if j < n && b[j] == b'(' && !paren_open && j + 1 < n && b[j + 1].is_ascii_digit() {
                paren_open = true;
                j += 1;
            }
            if j < n && b[j].is_ascii_digit() {
                i = j;
            } else {
                break;
            }
        }
        if glued {
            // Glued to a word on the right (`12345abc`): skip the word, keep nothing of it. What
            // came before the last group still counts (`call 555 0132x` loses only `0132x`).
            groups.pop();
            while i < n && is_word(b[i]) {
                i += 1;
            }
        }
        if !groups.is_empty() {
            let w = Window {
                plus_at: plus.then_some(token_start),
                last: true,
            };
            classify(t, w, &groups, &ctx, &mut scratch, out);
        }
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// One run of consecutive groups.
struct Span<'a> {
    t: &'a str,
    groups: &'a [Group],
    /// Whether the run starts at the token's first group behind a `+`.
    plus: bool,
    digits: &'a str,
    lens: &'a [usize],
    /// The one separator every gap uses (`""` for a single group), if they agree.
    sep: Option<&'a str>,
    /// Whether a gap holds a parenthesis.
    gap_parens: bool,
    /// Whether every gap is one a phone number may have (spaces, dashes, dots, parentheses).
    phone_gaps: bool,
    /// The run is the tail of a number written with `+`.
    plus_tail: bool,
    /// The run is part of a longer number (see `classify`): only a card may be found in it.
    fragment: bool,
}

/// What every recognizer of one scan reads: the config, and its packs as a bit set.
struct Ctx {
    packs: u16,
    /// The configured phone regions, in [`Region::ALL`] order (read from the config's set once
    /// per scan, not once per candidate).
    regions: Vec<Region>,
}

impl Ctx {
    fn on(&self, p: Pack) -> bool {
        self.packs & (1 << p as u16) != 0
    }
}

impl Span<'_> {
    fn shape(&self, lens: &[usize]) -> bool {
        self.lens == lens
    }

    fn bare(&self) -> bool {
        self.groups.len() == 1
    }

    /// Whether the run starts with `(` right before its first group.
    fn paren_first(&self) -> bool {
        let s = self.groups[0].start;
        s > 0 && self.t.as_bytes()[s - 1] == b'('
    }
}

/// Looks at every run of up to [`MAX_SPAN_GROUPS`] groups starting in this window: all of them in
/// the token's last window, the first `WINDOW - MAX_SPAN_GROUPS` in the others (the rest start
/// again in the next window, which keeps them).
/// Where a window of groups sits in its token.
#[derive(Clone, Copy)]
struct Window {
    /// The token's `+`, if it has one.
    plus_at: Option<usize>,
    /// The token's last window.
    last: bool,
}

fn classify(
    t: &str,
    w: Window,
    groups: &[Group],
    ctx: &Ctx,
    scratch: &mut (String, Vec<usize>),
    out: &mut Vec<Candidate>,
) {
    let Window { plus_at, last } = w;
    let (digits, lens) = scratch;
    let starts = if last {
        groups.len()
    } else {
        groups.len().min(WINDOW - MAX_SPAN_GROUPS)
    };
    // In a `+` token, the groups of its phone number: runs starting inside them are parts of it.
    let phone_groups = match plus_at {
        Some(p) if groups.first().is_some_and(|g| g.start == p + 1) => e164_groups(t, groups),
        _ => 0,
    };
    // Each gap of the window described once: its text, and what the runs ask of it.
    let mut gaps = [Gap::NONE; WINDOW];
    for (k, w) in groups.windows(2).enumerate() {
        gaps[k] = Gap::of(&t[w[0].end..w[1].start]);
    }
    for a in 0..starts {
        // Runs from here hold too few digits to be anything (under 4; under 7 with spaces
        // alone between the groups): skip them without building them.
        let reach = &groups[a..groups.len().min(a + MAX_SPAN_GROUPS)];
        let most: usize = reach.iter().map(|g| g.end - g.start).sum();
        let spaced = gaps[a..a + reach.len() - 1].iter().all(|g| g.text == " ");
        if most < 4 || (spaced && most < 7) {
            continue;
        }
        digits.clear();
        lens.clear();
        let mut spaces_only = true;
        // What the gaps so far have in common, kept up as the run grows by a group (so no run
        // compares its gaps again).
        let mut sep = Some("");
        let mut gap_parens = false;
        let mut phone_gaps = true;
        for (k, g) in groups[a..].iter().enumerate().take(MAX_SPAN_GROUPS) {
            if k > 0 {
                let gap = &gaps[a + k - 1];
                spaces_only &= gap.text == " ";
                sep = if k == 1 {
                    Some(gap.text)
                } else {
                    sep.filter(|s| *s == gap.text)
                };
                gap_parens |= gap.parens;
                phone_gaps &= gap.phone;
            }
            digits.push_str(&t[g.start..g.end]);
            lens.push(g.end - g.start);
            if digits.len() > MAX_DIGITS {
                break;
            }
            // Nothing numeric has fewer than 4 digits (`1.2.3.4`), and with spaces alone between
            // the groups nothing has fewer than 7 (a phone number).
            if digits.len() < 4 || (spaces_only && digits.len() < 7) {
                continue;
            }
            let plus = a == 0 && plus_at.is_some_and(|p| groups[0].start == p + 1);
            // A run that is part of a longer number: the tail of a `+` number (`+61 416 895
            // 471` holds no 9-digit national id), or a stretch of a run of equal groups with
            // the same separator (`4124 4687 9770 0233` holds no 12-digit Aadhaar).
            let plus_tail = !plus && a < phone_groups;
            let continues = |gap: &Gap<'_>, len: usize, neighbour: &Group| {
                sep == Some(gap.text) && neighbour.end - neighbour.start == len
            };
            let spaced_run = k > 0 && sep.is_some_and(|x| !x.is_empty());
            let before = spaced_run && a > 0 && continues(&gaps[a - 1], lens[0], &groups[a - 1]);
            let after = spaced_run
                && a + k + 1 < groups.len()
                && continues(&gaps[a + k], lens[k], &groups[a + k + 1]);
            let fragment = plus_tail || before || after;
            let span = Span {
                t,
                groups: &groups[a..=a + k],
                plus,
                plus_tail,
                fragment,

                digits,
                lens,
                sep,
                gap_parens,
                phone_gaps,
            };
            recognize(&span, ctx, out);
        }
    }
}

/// A gap between two groups, described once per window.
#[derive(Clone, Copy)]
struct Gap<'a> {
    text: &'a str,
    /// It holds a parenthesis.
    parens: bool,
    /// A phone number may have it (spaces, dashes, dots, parentheses).
    phone: bool,
}

impl<'a> Gap<'a> {
    const NONE: Gap<'static> = Gap {
        text: "",
        parens: false,
        phone: false,
    };

    fn of(text: &'a str) -> Gap<'a> {
        // Most gaps are one space, dash or dot.
        if let [c] = text.as_bytes() {
            return Gap {
                text,
                parens: matches!(c, b'(' | b')'),
                phone: matches!(c, b' ' | b'-' | b'.' | b'(' | b')'),
            };
        }
        Gap {
            text,
            parens: text.contains(['(', ')']),
            phone: matches!(
                text,
                " " | "-" | "." | " (" | ") " | ")" | "(" | ")-" | ")."
            ),
        }
    }
}

fn push(
    out: &mut Vec<Candidate>,
    s: &Span<'_>,
    entity: Entity,
    score: f32,
    validated: bool,
    rule: &'static str,
) {
    let mut start = s.groups[0].start;
    let mut end = s.groups[s.groups.len() - 1].end;
    let b = s.t.as_bytes();
    if s.plus || s.paren_first() {
        start -= 1;
    }
    if entity == Entity::PhoneNumber
        && s.paren_first()
        && s.groups.len() == 1
        && end < b.len()
        && b[end] == b')'
    {
        end += 1;
    }
    out.push(Candidate::new(entity, start, end, score, validated, rule));
}

fn recognize(s: &Span<'_>, ctx: &Ctx, out: &mut Vec<Candidate>) {
    let d = s.digits;
    let n = d.len();
    let sep = s.sep;
    // Under 7 digits only an IPv4 address (four dotted groups) or a date (three groups) can be
    // anything: most runs of a long sequence end here.
    let dotted_quad = s.groups.len() == 4 && sep == Some(".");
    let date_like = s.groups.len() == 3 && matches!(sep, Some("/" | "-" | "."));
    if n < 7 && !dotted_quad && !date_like {
        return;
    }
    let plain_sep = matches!(sep, Some("" | " " | "-"));
    let no_parens = !s.paren_first() && !s.gap_parens;

    // Payment cards: one block, or the card layouts with one separator throughout — spaces or
    // dashes, and in the 4-4-4-4 layout also dots, slashes, underscores or runs of spaces
    // (`4111.1111.1111.1111`, `4111  1111  1111  1111`). Groups two or three spaces apart are
    // also how a space-aligned table's columns look: such a card needs a context word.
    let wide = sep.is_some_and(|x| x.len() > 1);
    let card_sep = plain_sep || matches!(sep, Some("." | "/" | "_")) || wide;
    if (12..=19).contains(&n) && card_sep && no_parens && !s.plus && !s.plus_tail {
        let fours =
            s.lens[..s.lens.len() - 1].iter().all(|&l| l == 4) && s.lens[s.lens.len() - 1] <= 4;
        let layout = s.bare() || fours || plain_sep && (s.shape(&[4, 6, 5]) || s.shape(&[4, 6, 4]));
        if layout && v::credit_card(d) {
            if wide {
                push(out, s, Entity::CreditCard, 0.3, true, "luhn_wide");
            } else {
                push(out, s, Entity::CreditCard, 1.0, true, "luhn");
            }
        }
    }

    if s.fragment {
        return;
    }

    // US SSN and ITIN: 3-2-4 with one separator; bare 9 digits only with context.
    if n == 9 && no_parens && !s.plus {
        let formatted = s.shape(&[3, 2, 4]) && matches!(sep, Some("-" | " "));
        if formatted || s.bare() {
            let (score, rule) = if formatted {
                (0.5, "ssn_format")
            } else {
                (0.15, "ssn_bare")
            };
            if v::us_ssn(d) {
                push(out, s, Entity::UsSsn, score, false, rule);
            } else if v::us_itin(d) {
                push(out, s, Entity::UsItin, score, false, rule);
            }
        }
    }

    phone(s, ctx, out);

    // IPv4: four dotted groups of 0-255 without leading zeros.
    if dotted_quad && s.lens.iter().all(|&l| l <= 3) && !after_version(s) {
        let ok = s.groups.iter().all(|g| {
            let part = &s.t[g.start..g.end];
            part.parse::<u16>().is_ok_and(|x| x <= 255)
                && !(part.len() > 1 && part.starts_with('0'))
        });
        // `1.8.4.38` is far more often a version or a reference than an address: with three
        // one-digit groups first it needs context (`IP`, `host`, `DNS` …) to count.
        let versionlike = s.lens[..3].iter().all(|&l| l == 1);
        if ok && versionlike {
            push(out, s, Entity::IpAddress, 0.3, false, "ipv4_versionlike");
        } else if ok {
            push(out, s, Entity::IpAddress, 0.6, false, "ipv4");
        }
    }

    // Dates, for DATE_OF_BIRTH (only with context).
    if date_like && date(s) {
        push(out, s, Entity::DateOfBirth, 0.3, false, "date");
    }

    national(s, sep, ctx, out);
}

/// Whether the word before the run says it is a version (`version 6.9.1.26`, `Version: 5.1.8.88`).
fn after_version(s: &Span<'_>) -> bool {
    let start = s.groups[0].start;
    let from = crate::normalize::floor_boundary(s.t, start.saturating_sub(24));
    let before = s.t[from..start].to_ascii_lowercase();
    let word = before
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    matches!(
        word,
        "version" | "ver" | "release" | "build" | "firmware" | "fw"
    )
}

fn date(s: &Span<'_>) -> bool {
    let part = |k: usize| {
        s.t[s.groups[k].start..s.groups[k].end]
            .parse::<u32>()
            .unwrap_or(0)
    };
    let (a, b, c) = (part(0), part(1), part(2));
    let year_ok = |y: u32| (1900..=2099).contains(&y);
    let day_month = |d: u32, m: u32| (1..=31).contains(&d) && (1..=12).contains(&m);
    match (s.lens[0], s.lens[1], s.lens[2]) {
        (1 | 2, 1 | 2, 4) => year_ok(c) && (day_month(a, b) || day_month(b, a)),
        (4, 1 | 2, 1 | 2) => year_ok(a) && day_month(c, b),
        _ => false,
    }
}

/// Whether `d` (the digits after a `+`) is an E.164 number: a calling code and a national number
/// of a length that code allows.
fn e164(d: &str) -> bool {
    let n = d.len();
    if !(7..=15).contains(&n) {
        return false;
    }
    // Calling codes are a prefix code: at most one of the first one, two or three digits is one.
    let d = d.as_bytes();
    let Some((cc, lo, hi)) = (1..=3).find_map(|len| calling_code(&d[..len])) else {
        return false;
    };
    let national = &d[cc.len()..];
    (usize::from(lo)..=usize::from(hi)).contains(&national.len())
        // The trunk prefix `0` is dropped after a calling code (Italy keeps it).
        && (national.first() != Some(&b'0') || cc == "39")
        // NANP: area code and exchange start with 2-9.
        && (cc != "1" || (national[0] >= b'2' && national[3] >= b'2'))
}

/// Where a calling code of `len` digits and value `v` sits in [`BY_CODE`]: one slot per code of
/// one, two and three digits (`7`, `07` and `007` are three codes).
const fn code_slot(len: usize, v: usize) -> usize {
    match len {
        1 => v,
        2 => 10 + v,
        _ => 110 + v,
    }
}

/// [`CALLING_CODES`] by slot ([`code_slot`]): an index, not a hash, per `+` number.
static BY_CODE: [Option<(&str, u8, u8)>; 1110] = {
    let mut t: [Option<(&str, u8, u8)>; 1110] = [None; 1110];
    let mut i = 0;
    while i < CALLING_CODES.len() {
        let (cc, lo, hi) = CALLING_CODES[i];
        let b = cc.as_bytes();
        let mut v = 0;
        let mut k = 0;
        while k < b.len() {
            v = v * 10 + (b[k] - b'0') as usize;
            k += 1;
        }
        t[code_slot(b.len(), v)] = Some((cc, lo, hi));
        i += 1;
    }
    t
};

/// The calling code `prefix` (one to three digits) is, with the national number lengths it
/// allows.
fn calling_code(prefix: &[u8]) -> Option<(&'static str, u8, u8)> {
    if prefix.is_empty() || prefix.len() > 3 {
        return None;
    }
    let mut v = 0;
    for &c in prefix {
        v = v * 10 + usize::from(c.checked_sub(b'0').filter(|x| *x < 10)?);
    }
    BY_CODE[code_slot(prefix.len(), v)]
}

/// How many groups from the start of a `+` token make its phone number: its longest E.164
/// number, or, when none is valid, as many groups as an E.164 number could have (15 digits).
fn e164_groups(t: &str, groups: &[Group]) -> usize {
    let (mut best, mut most) = (0, 0);
    for k in 0..groups.len().min(MAX_SPAN_GROUPS) {
        let Some(digits) = international(t, &groups[..=k]) else {
            break;
        };
        most = k + 1;
        if e164(digits.as_str()) {
            best = k + 1;
        }
    }
    if best > 0 { best } else { most }
}

/// Up to 15 digits on the stack (an E.164 number's most).
struct Digits {
    buf: [u8; 15],
    len: usize,
}

impl Digits {
    fn as_str(&self) -> &str {
        // Only ASCII digits are ever put in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The digits of a number written after `+`, without the national trunk prefix some write in
/// parentheses after the calling code (`+44 (0)20 7946 0958`); `None` past 15 digits (no E.164
/// number is longer).
fn international(t: &str, groups: &[Group]) -> Option<Digits> {
    let trunk = groups.len() > 2
        && &t[groups[1].start..groups[1].end] == "0"
        && t[groups[0].end..groups[1].start].ends_with('(')
        && t[groups[1].end..groups[2].start].starts_with(')');
    let mut d = Digits {
        buf: [0; 15],
        len: 0,
    };
    for (k, g) in groups.iter().enumerate() {
        if trunk && k == 1 {
            continue;
        }
        let part = t.as_bytes().get(g.start..g.end)?;
        d.buf
            .get_mut(d.len..d.len + part.len())?
            .copy_from_slice(part);
        d.len += part.len();
    }
    Some(d)
}

/// E.164 country calling codes and the national number lengths they allow.
const CALLING_CODES: &[(&str, u8, u8)] = &[
    ("1", 10, 10),
    ("7", 10, 10),
    ("20", 8, 10),
    ("27", 9, 9),
    ("30", 10, 10),
    ("31", 9, 9),
    ("32", 8, 9),
    ("33", 9, 9),
    ("34", 9, 9),
    ("36", 8, 9),
    ("39", 6, 11),
    ("40", 9, 9),
    ("41", 9, 9),
    ("43", 4, 13),
    ("44", 9, 10),
    ("45", 8, 8),
    ("46", 7, 10),
    ("47", 8, 8),
    ("48", 9, 9),
    ("49", 6, 13),
    ("51", 8, 9),
    ("52", 10, 10),
    ("53", 8, 8),
    ("54", 10, 11),
    ("55", 10, 11),
    ("56", 9, 9),
    ("57", 8, 10),
    ("58", 10, 10),
    ("60", 7, 10),
    ("61", 9, 9),
    ("62", 7, 12),
    ("63", 8, 10),
    ("64", 8, 10),
    ("65", 8, 8),
    ("66", 8, 9),
    ("81", 9, 10),
    ("82", 8, 10),
    ("84", 9, 10),
    ("86", 8, 11),
    ("90", 10, 10),
    ("91", 10, 10),
    ("92", 9, 10),
    ("93", 9, 9),
    ("94", 9, 9),
    ("95", 7, 10),
    ("98", 10, 10),
    ("212", 9, 9),
    ("213", 9, 9),
    ("216", 8, 8),
    ("218", 9, 9),
    ("220", 7, 7),
    ("221", 9, 9),
    ("225", 8, 10),
    ("229", 8, 8),
    ("233", 9, 9),
    ("234", 8, 10),
    ("237", 9, 9),
    ("250", 9, 9),
    ("251", 9, 9),
    ("254", 9, 9),
    ("255", 9, 9),
    ("256", 9, 9),
    ("260", 9, 9),
    ("263", 9, 9),
    ("351", 9, 9),
    ("352", 6, 11),
    ("353", 7, 9),
    ("354", 7, 9),
    ("355", 8, 9),
    ("356", 8, 8),
    ("357", 8, 8),
    ("358", 6, 10),
    ("359", 8, 9),
    ("370", 8, 8),
    ("371", 8, 8),
    ("372", 7, 8),
    ("380", 9, 9),
    ("381", 8, 9),
    ("385", 8, 9),
    ("386", 8, 8),
    ("420", 9, 9),
    ("421", 9, 9),
    ("852", 8, 8),
    ("853", 8, 8),
    ("855", 8, 9),
    ("880", 10, 10),
    ("886", 9, 9),
    ("960", 7, 7),
    ("961", 7, 8),
    ("962", 8, 9),
    ("963", 9, 9),
    ("964", 10, 10),
    ("965", 8, 8),
    ("966", 9, 9),
    ("967", 9, 9),
    ("968", 8, 8),
    ("970", 9, 9),
    ("971", 8, 9),
    ("972", 8, 9),
    ("973", 8, 8),
    ("974", 8, 8),
    ("977", 8, 10),
    ("994", 9, 9),
    ("995", 9, 9),
    ("998", 9, 9),
];

fn phone(s: &Span<'_>, ctx: &Ctx, out: &mut Vec<Candidate>) {
    let d = s.digits;
    let n = d.len();
    // No dates or versions: a phone's gaps are spaces, dashes, dots or parentheses, and a dotted
    // one has at least three groups of 2-4 (`415.555.0132`).
    if !s.phone_gaps {
        return;
    }
    // A date (`04.07.1950`) or an IPv4 address (`3.82.241.239`) is no phone number, whatever
    // words are near it.
    let dotted_quad = s.groups.len() == 4 && s.sep == Some(".") && s.lens.iter().all(|&l| l <= 3);
    let dated = s.groups.len() == 3 && matches!(s.sep, Some("/" | "-" | ".")) && date(s);
    if !s.plus && (dotted_quad || dated) {
        return;
    }
    if s.plus {
        if international(s.t, s.groups).is_some_and(|d| e164(d.as_str())) {
            push(out, s, Entity::PhoneNumber, 0.75, false, "e164");
        }
        return;
    }
    let b = d.as_bytes();
    let mut best: Option<(f32, &'static str)> = None;
    let mut offer = |score: f32, rule: &'static str| {
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, rule));
        }
    };
    let grouped = if s.bare() { 0.2 } else { 0.4 };
    let sep = s.sep;
    let dotted_ok = sep != Some(".") || s.groups.len() >= 3;
    if !dotted_ok {
        return;
    }
    for r in &ctx.regions {
        match r {
            Region::Us => {
                let nanp = |x: &[u8]| x.len() == 10 && x[0] >= b'2' && x[3] >= b'2';
                if nanp(b) && (s.bare() || s.shape(&[3, 3, 4])) {
                    if s.paren_first() {
                        offer(0.5, "nanp_paren");
                    } else {
                        offer(grouped, "nanp");
                    }
                } else if n == 11 && b[0] == b'1' && nanp(&b[1..]) && s.shape(&[1, 3, 3, 4]) {
                    offer(0.4, "nanp");
                }
            }
            Region::Gb => {
                if (10..=11).contains(&n) && b[0] == b'0' && b[1] != b'0' && s.groups.len() <= 4 {
                    offer(grouped, "gb");
                }
            }
            Region::De => {
                if (7..=13).contains(&n) && b[0] == b'0' && b[1] != b'0' && s.groups.len() <= 4 {
                    offer(if s.bare() { 0.2 } else { 0.3 }, "de");
                }
            }
            Region::Fr => {
                if n == 10 && b[0] == b'0' && b[1] != b'0' {
                    if s.shape(&[2, 2, 2, 2, 2]) {
                        offer(0.5, "fr_pairs");
                    } else if s.bare() {
                        offer(0.2, "fr");
                    }
                }
            }
            Region::In => {
                if n == 10 && b[0] >= b'6' && (s.bare() || s.shape(&[5, 5])) {
                    offer(grouped, "in");
                }
            }
            Region::Au => {
                if n == 10
                    && b[0] == b'0'
                    && matches!(b[1], b'2' | b'3' | b'4' | b'7' | b'8')
                    && (s.bare() || s.shape(&[4, 3, 3]) || s.shape(&[2, 4, 4]))
                {
                    offer(grouped, "au");
                }
            }
            Region::Es => {
                if n == 9
                    && matches!(b[0], b'6' | b'7' | b'8' | b'9')
                    && (s.bare() || s.shape(&[3, 3, 3]) || s.shape(&[3, 2, 2, 2]))
                {
                    offer(grouped, "es");
                }
            }
            Region::It => {
                // Landlines 0 and an area code (`06`, `02`), mobiles 3; never `00`.
                if (9..=11).contains(&n)
                    && (b[0] == b'3' || (b[0] == b'0' && b[1] != b'0'))
                    && s.groups.len() <= 4
                {
                    offer(if s.bare() { 0.2 } else { 0.3 }, "it");
                }
            }
            Region::Nl => {
                if n == 10
                    && b[0] == b'0'
                    && b[1] != b'0'
                    && (s.bare()
                        || s.shape(&[2, 8])
                        || s.shape(&[3, 7])
                        || s.shape(&[4, 6])
                        || s.shape(&[2, 4, 4]))
                {
                    offer(grouped, "nl");
                }
            }
        }
    }
    if let Some((score, rule)) = best {
        push(out, s, Entity::PhoneNumber, score, false, rule);
    }
}

fn national(s: &Span<'_>, sep: Option<&str>, ctx: &Ctx, out: &mut Vec<Candidate>) {
    if ctx.packs == 0 || s.plus || s.paren_first() {
        return;
    }
    let d = s.digits;
    let n = d.len();
    let spaced = matches!(sep, Some(" " | "-"));
    let on = |p: Pack| ctx.on(p);
    // (formatted in the official layout: 1.0; bare: 0.4, context needed) for weak checksums.
    let weak = |formatted: bool| if formatted { 1.0 } else { 0.4 };
    // NHS numbers are written `943 476 5919`; with dashes (`994-950-7758`) the same shape is more
    // often a phone number, so only context makes it an NHS number.
    if on(Pack::Uk) && n == 10 && s.shape(&[3, 3, 4]) && sep == Some("-") && v::uk_nhs(d) {
        push(out, s, Entity::UkNhs, 0.4, false, "mod11_dashed");
    } else if on(Pack::Uk)
        && n == 10
        && (s.bare() || s.shape(&[3, 3, 4]) && sep == Some(" "))
        && v::uk_nhs(d)
    {
        push(out, s, Entity::UkNhs, weak(!s.bare()), true, "mod11");
    }
    if on(Pack::Ca) && n == 9 && (s.bare() || s.shape(&[3, 3, 3]) && spaced) && v::ca_sin(d) {
        push(out, s, Entity::CaSin, weak(!s.bare()), true, "luhn");
    }
    if on(Pack::Pl) && n == 11 && s.bare() && v::pl_pesel(d) {
        push(out, s, Entity::PlPesel, 1.0, true, "pesel");
    }
    if on(Pack::De)
        && n == 11
        && (s.bare() || s.shape(&[2, 3, 3, 3]) && sep == Some(" "))
        && v::de_tax_id(d)
    {
        push(out, s, Entity::DeTaxId, 1.0, true, "iso7064");
    }
    if on(Pack::Se)
        && (s.shape(&[6, 4]) || s.shape(&[8, 4]))
        && sep == Some("-")
        && v::se_personnummer(d)
    {
        push(out, s, Entity::SePersonnummer, 1.0, true, "luhn");
    } else if on(Pack::Se) && s.bare() && (n == 10 || n == 12) && v::se_personnummer(d) {
        push(out, s, Entity::SePersonnummer, 0.4, true, "luhn");
    }
    if on(Pack::In) && n == 12 && (s.bare() || s.shape(&[4, 4, 4]) && spaced) && v::in_aadhaar(d) {
        push(out, s, Entity::InAadhaar, weak(!s.bare()), true, "verhoeff");
    }
    if on(Pack::Au) {
        if (n == 9 && (s.bare() || s.shape(&[3, 3, 3]) && sep == Some(" ")) || n == 8 && s.bare())
            && v::au_tfn(d)
        {
            push(out, s, Entity::AuTfn, weak(!s.bare()), true, "mod11");
        }
        if n == 11 && (s.bare() || s.shape(&[2, 3, 3, 3]) && sep == Some(" ")) && v::au_abn(d) {
            push(
                out,
                s,
                Entity::AuAbn,
                if s.bare() { 0.8 } else { 1.0 },
                true,
                "mod89",
            );
        }
    }
    if on(Pack::Us) {
        if n == 10 && s.bare() && v::us_npi(d) {
            push(out, s, Entity::UsNpi, 0.4, true, "luhn");
        }
        if n == 9 && s.bare() && v::aba_routing(d) {
            push(out, s, Entity::AbaRoutingNumber, 0.4, true, "aba");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, cfg: &GuardConfig) -> Vec<(Entity, String, &'static str)> {
        let mut out = Vec::new();
        scan(text, cfg, &mut out);
        out.into_iter()
            .map(|c| (c.entity, text[c.start..c.end].to_string(), c.rule))
            .collect()
    }

    /// The calling codes form a prefix code (no code starts another, none twice) of one to three
    /// digits, which the table lookup relies on; and numbers check out as before.
    #[test]
    fn calling_codes_are_a_prefix_code_and_e164_uses_them() {
        for (i, (a, _, _)) in CALLING_CODES.iter().enumerate() {
            assert!(
                (1..=3).contains(&a.len()) && a.bytes().all(|c| c.is_ascii_digit()),
                "{a}"
            );
            for (j, (b, _, _)) in CALLING_CODES.iter().enumerate() {
                assert!(i == j || !b.starts_with(a), "{a} is a prefix of {b}");
            }
        }
        for (d, ok) in [
            ("442079460958", true),   // +44 20 7946 0958
            ("14155550132", true),    // +1 415 555 0132
            ("14151550132", false),   // NANP exchange starting with 1
            ("390612345678", true),   // Italy keeps the 0
            ("4402079460958", false), // trunk 0 after +44
            ("440207946095", false),  // trunk 0, of a length +44 allows otherwise
            ("44123456789", true),    // +44 with nine national digits, the fewest it allows
            ("61434945994", true),    // +61 434 945 994
            ("353861234567", true),   // +353 86 123 4567 (a three-digit code)
            ("85212345678", true),    // +852 1234 5678
            ("8521234567", false),    // one digit short for Hong Kong
            ("4420794609", false),    // too short for +44
            ("999123456789", false),  // no such code
            ("123", false),
        ] {
            assert_eq!(e164(d), ok, "{d}");
        }
    }

    #[test]
    fn a_card_after_a_year_is_found_where_it_starts() {
        let f = found(
            "in 2023 4111 1111 1111 1111 was used",
            &GuardConfig::default(),
        );
        assert!(
            f.iter()
                .any(|(e, s, _)| *e == Entity::CreditCard && s == "4111 1111 1111 1111"),
            "{f:?}"
        );
    }

    #[test]
    fn identifiers_and_long_runs_are_skipped() {
        let cfg = GuardConfig::default();
        // A `+` or `(` glued to a word once looped forever.
        assert!(found("h+0' x(1 y+44 20 7946 0958", &cfg).is_empty());
        assert!(found("order4111111111111111 x", &cfg).is_empty());
        assert!(found("4111111111111111abc", &cfg).is_empty());
        let long = "9".repeat(1000);
        assert!(found(&long, &cfg).is_empty());
    }

    #[test]
    fn phones_in_their_formats() {
        let cfg = GuardConfig::default();
        let f = found(
            "call +1 (415) 555-0132 or (415) 555-0133 or +44 20 7946 0958",
            &cfg,
        );
        let phones: Vec<&str> = f
            .iter()
            .filter(|x| x.0 == Entity::PhoneNumber)
            .map(|x| x.1.as_str())
            .collect();
        assert!(phones.contains(&"+1 (415) 555-0132"), "{phones:?}");
        assert!(phones.contains(&"(415) 555-0133"), "{phones:?}");
        assert!(phones.contains(&"+44 20 7946 0958"), "{phones:?}");
    }

    #[test]
    fn windows_cover_long_space_separated_sequences() {
        let mut text = String::new();
        for k in 0..40 {
            text.push_str(&format!("{k} "));
        }
        text.push_str("4111 1111 1111 1111");
        let f = found(&text, &GuardConfig::default());
        assert!(
            f.iter()
                .any(|(e, s, _)| *e == Entity::CreditCard && s == "4111 1111 1111 1111"),
            "{f:?}"
        );
    }
}
