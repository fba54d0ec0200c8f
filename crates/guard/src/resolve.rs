//! Scoring and overlap resolution.
//!
//! - Context: a context word of the entity type within about five words before the match (or
//!   three after it) adds 0.35, and makes the score at least 0.4.
//! - Threshold: candidates under the caller's threshold for their type go; so do those the
//!   allow-list covers.
//! - Overlaps: validated beats unvalidated, then longer beats contained, then the higher score
//!   wins; what is left never overlaps.

use crate::normalize::{ceil_boundary, floor_boundary};
use crate::{Candidate, Entity};

/// Bytes looked at before and after a match for context words.
const BEFORE: usize = 48;
const AFTER: usize = 24;

/// Whether a context word of `entity` is near `start..end` of `t` — or heads its column, when
/// the match is a cell of a table (CSV, TSV, Markdown: the header names what a column holds).
pub fn has_context(t: &str, start: usize, end: usize, entity: Entity) -> bool {
    has_context_in(t, start, end, entity, &mut Headers::default())
}

/// [`has_context`], with the table headers already found in `t` remembered in `headers`.
pub fn has_context_in(
    t: &str,
    start: usize,
    end: usize,
    entity: Entity,
    headers: &mut Headers,
) -> bool {
    let words = entity.context();
    if words.is_empty() {
        return false;
    }
    let s = floor_boundary(t, start.saturating_sub(BEFORE));
    let e = ceil_boundary(t, (end + AFTER).min(t.len()));
    mentions(&t[s..start], words)
        || mentions(&t[end..e], words)
        || headers
            .cell_above(t, start)
            .is_some_and(|cell| mentions(cell, words))
}

/// Whether `text` mentions one of `words`: a one-word context as a whole word (letter case
/// ignored), a longer one (`date of birth`, `ph.`) as a part, with `_` and `-` read as spaces
/// (`date_of_birth`). No allocation for one-word contexts, which are most.
fn mentions(text: &str, words: &[&str]) -> bool {
    fn simple(w: &str) -> bool {
        w.chars().all(char::is_alphanumeric)
    }
    let hit = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .any(|tok| {
            words.iter().any(|w| {
                simple(w)
                    && (tok.eq_ignore_ascii_case(w)
                        || (!tok.is_ascii() && tok.to_lowercase() == *w))
            })
        });
    if hit {
        return true;
    }
    if words.iter().all(|w| simple(w)) {
        return false;
    }
    let lower = text.to_lowercase().replace(['_', '-'], " ");
    words.iter().any(|w| !simple(w) && lower.contains(*w))
}

/// The header lines of the tables of one text, found once: for each line start, the start of
/// the header line of the table block it belongs to (`None`: not in a table, or the header).
#[derive(Debug, Default)]
pub struct Headers {
    header_of: std::collections::HashMap<usize, Option<usize>>,
    /// Where SQL's `VALUES` occurs in the text (found on first need).
    values: Option<Vec<usize>>,
}

/// The longest line read as a table row, in bytes.
const MAX_ROW: usize = 4096;

/// The most lines looked at above a cell for its table's header.
const MAX_HEADER_DISTANCE: usize = 10_000;

impl Headers {
    /// The header cell above the cell of `t` that holds `at`, if that cell is in a table: lines
    /// above it with the same number of one delimiter (tab, `|`, `;` or `,`), the first of them
    /// the header.
    pub fn cell_above<'t>(&mut self, t: &'t str, at: usize) -> Option<&'t str> {
        let b = t.as_bytes();
        // A table row is a line of reasonable length: looking further costs a pass over the
        // text per match (one long line of prose would make the scan quadratic).
        let from = at.saturating_sub(MAX_ROW);
        let ls = match memchr::memrchr(b'\n', &b[from..at]) {
            Some(i) => from + i + 1,
            None if from == 0 => 0,
            None => return None,
        };
        let to = (at + MAX_ROW).min(t.len());
        let le = match memchr::memchr(b'\n', &b[at..to]) {
            Some(i) => at + i,
            None if to == t.len() => t.len(),
            None => return None,
        };
        let line = &b[ls..le];
        if let Some(column) = self.sql_column(t, ls, at) {
            return Some(column);
        }
        let delim = [b'\t', b'|', b';', b',']
            .into_iter()
            .find(|d| line.contains(d))?;
        let cells = count(line, delim);
        let col = count(&b[ls..at], delim);
        let header = self.header_of(t, ls, delim, cells)?;
        let he = memchr::memchr(b'\n', &b[header..]).map_or(t.len(), |i| header + i);
        t[header..he].split(char::from(delim)).nth(col)
    }

    /// The column an SQL `INSERT INTO t (a, b, c) VALUES (…), (…)` names for the value at `at`
    /// (in a tuple that starts on the line at `ls`).
    fn sql_column<'t>(&mut self, t: &'t str, ls: usize, at: usize) -> Option<&'t str> {
        let b = t.as_bytes();
        // The tuple `at` is in, and how many values come before it in the tuple.
        let (mut quoted, mut open, mut index) = (false, None, 0);
        for (i, c) in b[ls..at].iter().enumerate() {
            match c {
                b'\'' => quoted = !quoted,
                b'(' if !quoted => (open, index) = (Some(ls + i), 0),
                b')' if !quoted => open = None,
                b',' if !quoted && open.is_some() => index += 1,
                _ => {}
            }
        }
        let open = open?;
        // The last `VALUES` before the tuple, and the column list right before it.
        let values = self.values.get_or_insert_with(|| {
            let mut at: Vec<usize> = ["VALUES", "values", "Values"]
                .iter()
                .flat_map(|k| memchr::memmem::find_iter(b, k.as_bytes()).collect::<Vec<_>>())
                .collect();
            at.sort_unstable();
            at
        });
        let v = values[..values.partition_point(|&p| p < open)]
            .last()
            .copied()?;
        let columns = t[..v].trim_end().strip_suffix(')')?;
        let lp = columns.rfind('(')?;
        if columns.len() - lp > MAX_ROW || columns[lp..].contains(['\'', '\n']) {
            return None;
        }
        columns[lp + 1..]
            .split(',')
            .nth(index)
            .map(|c| c.trim().trim_matches(['`', '"', '[', ']']))
    }

    /// The start of the header line of the block the line at `ls` is in.
    fn header_of(&mut self, t: &str, ls: usize, delim: u8, cells: usize) -> Option<usize> {
        if let Some(h) = self.header_of.get(&ls) {
            return *h;
        }
        let b = t.as_bytes();
        // Walk up while the lines match; stop at a line already known.
        let mut visited = Vec::new();
        let mut top: Option<usize> = None;
        let mut cur = ls;
        let mut known: Option<Option<usize>> = None;
        while cur > 0 && visited.len() < MAX_HEADER_DISTANCE {
            let prev_end = cur - 1;
            let from = prev_end.saturating_sub(MAX_ROW);
            let prev = match memchr::memrchr(b'\n', &b[from..prev_end]) {
                Some(i) => from + i + 1,
                None if from == 0 => 0,
                None => break,
            };
            let line = &b[prev..prev_end];
            if count(line, delim) != cells {
                break;
            }
            visited.push(cur);
            if let Some(h) = self.header_of.get(&prev) {
                known = Some(h.or(Some(prev)));
                break;
            }
            top = Some(prev);
            cur = prev;
        }
        let header = match known {
            Some(h) => h,
            None => top,
        };
        for l in visited {
            self.header_of.insert(l, header);
        }
        self.header_of.entry(ls).or_insert(header);
        header
    }
}

fn count(line: &[u8], delim: u8) -> usize {
    line.iter().filter(|&&c| c == delim).count()
}

/// Words that, right before a number, say what it is when it is no personal data.
const OTHER_NUMBERS: &[&str] = &[
    "tracking",
    "track",
    "trace",
    "sendungsnummer",
    "parcel",
    "shipment",
    "awb",
    "ean",
    "gtin",
    "upc",
    "barcode",
    "isbn",
    "issn",
    "sku",
    "size",
    "bytes",
    "batch",
    "lot",
    "serial",
    "placeholder",
    "version",
    "build",
    "release",
    "checksum",
    "port",
    "pid",
];

/// Types found by the number scan, which a name before the number can overrule.
fn named_otherwise(e: Entity) -> bool {
    matches!(
        e,
        Entity::CreditCard
            | Entity::PhoneNumber
            | Entity::IpAddress
            | Entity::UsSsn
            | Entity::UsItin
    ) || e.pack().is_some()
}

/// Whether the word right before `start` (across spaces and `:`, `#`, `=`, `"`, `(`) is one of
/// [`OTHER_NUMBERS`].
fn named_before(t: &str, start: usize) -> bool {
    let from = floor_boundary(t, start.saturating_sub(32));
    let before =
        t[from..start].trim_end_matches([' ', ':', '#', '=', '"', '\'', '(', '\t', '-', '.', '&']);
    let word = before
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    !word.is_empty() && OTHER_NUMBERS.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// Whether a column header names its numbers as something else (`tracking_number`, `EAN`).
fn names_other_number(header: &str) -> bool {
    header
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| OTHER_NUMBERS.iter().any(|o| w.eq_ignore_ascii_case(o)))
}

/// Scores, filters and resolves `cands` into non-overlapping findings, sorted by start.
pub fn resolve(
    t: &str,
    mut cands: Vec<Candidate>,
    threshold: &dyn Fn(Entity) -> Option<f32>,
    allowed: &[(usize, usize)],
) -> Vec<Candidate> {
    let mut headers = Headers::default();
    for c in &mut cands {
        // Context only matters where it can lift a match over its threshold.
        let needs =
            threshold(c.entity).is_some_and(|th| c.score < th && (c.score + 0.35).max(0.4) >= th);
        if needs && has_context_in(t, c.start, c.end, c.entity, &mut headers) {
            c.score = (c.score + 0.35).clamp(0.4, 1.0);
        }
    }
    // A number named right before it as something else (`tracking 6968 3584 8743`,
    // `EAN 4000539649752`, `size=37199682B`) is that, whatever checksum it passes.
    cands.retain(|c| {
        !(named_otherwise(c.entity)
            && (named_before(t, c.start)
                || headers
                    .cell_above(t, c.start)
                    .is_some_and(names_other_number)))
    });
    // A four-part version in a table's version column is no IP address.
    cands.retain(|c| {
        c.entity != Entity::IpAddress
            || !headers.cell_above(t, c.start).is_some_and(|h| {
                let h = h.to_ascii_lowercase();
                ["version", "release", "build", "firmware"]
                    .iter()
                    .any(|w| h.contains(w))
            })
    });
    cands.retain(|c| {
        c.start < c.end
            && threshold(c.entity).is_some_and(|th| c.score >= th)
            && !allowed.iter().any(|&(s, e)| s <= c.start && c.end <= e)
    });
    // Two types claiming the same span with the same score (a 12-digit number that passes two
    // checksums): the one with a context word near it wins (`Aadhaar 6207 6448 1730` is no card).
    cands.sort_by_key(|c| (c.start, c.end));
    let mut ctx = vec![false; cands.len()];
    for i in 0..cands.len() {
        let same = |j: usize| cands[j].start == cands[i].start && cands[j].end == cands[i].end;
        if (i > 0 && same(i - 1)) || (i + 1 < cands.len() && same(i + 1)) {
            ctx[i] = has_context_in(
                t,
                cands[i].start,
                cands[i].end,
                cands[i].entity,
                &mut headers,
            );
        }
    }
    let mut order: Vec<(Candidate, bool)> = cands.into_iter().zip(ctx).collect();
    order.sort_by(|(a, actx), (b, bctx)| {
        b.validated
            .cmp(&a.validated)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(b.score.total_cmp(&a.score))
            .then(bctx.cmp(actx))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Candidate> = Vec::with_capacity(order.len());
    // Accepted spans, sorted by start, for the overlap check.
    let mut spans: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for (c, _) in order {
        let before = spans.range(..c.end).next_back();
        if before.is_some_and(|(_, &e)| e > c.start) {
            continue;
        }
        spans.insert(c.start, c.end);
        kept.push(c);
    }
    kept.sort_by_key(|c| (c.start, c.end));
    kept
}
