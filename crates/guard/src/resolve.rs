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

/// Whether a context word of `entity` is near `start..end` of `t`: a one-word context must be
/// a whole word of the window, a longer one (`date of birth`, `ph.`) a part of it; letter case
/// is ignored. No allocation for one-word contexts, which are most.
pub fn has_context(t: &str, start: usize, end: usize, entity: Entity) -> bool {
    let words = entity.context();
    if words.is_empty() {
        return false;
    }
    let s = floor_boundary(t, start.saturating_sub(BEFORE));
    let e = ceil_boundary(t, (end + AFTER).min(t.len()));
    let (before, after) = (&t[s..start], &t[end..e]);
    let mut tokens = before
        .split(|c: char| !c.is_alphanumeric())
        .chain(after.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty());
    fn simple(w: &str) -> bool {
        w.chars().all(char::is_alphanumeric)
    }
    let hit = tokens.any(|tok| {
        words.iter().any(|w| {
            simple(w)
                && (tok.eq_ignore_ascii_case(w) || (!tok.is_ascii() && tok.to_lowercase() == *w))
        })
    });
    if hit {
        return true;
    }
    if words.iter().all(|w| simple(w)) {
        return false;
    }
    // Field names join their words with `_` or `-` (`date_of_birth`, `social-security`).
    let window = format!("{before} {after}")
        .to_lowercase()
        .replace(['_', '-'], " ");
    words.iter().any(|w| !simple(w) && window.contains(*w))
}

/// Scores, filters and resolves `cands` into non-overlapping findings, sorted by start.
pub fn resolve(
    t: &str,
    mut cands: Vec<Candidate>,
    threshold: &dyn Fn(Entity) -> Option<f32>,
    allowed: &[(usize, usize)],
) -> Vec<Candidate> {
    for c in &mut cands {
        // Context only matters where it can lift a match over its threshold.
        let needs =
            threshold(c.entity).is_some_and(|th| c.score < th && (c.score + 0.35).max(0.4) >= th);
        if needs && has_context(t, c.start, c.end, c.entity) {
            c.score = (c.score + 0.35).clamp(0.4, 1.0);
        }
    }
    cands.retain(|c| {
        c.start < c.end
            && threshold(c.entity).is_some_and(|th| c.score >= th)
            && !allowed.iter().any(|&(s, e)| s <= c.start && c.end <= e)
    });
    // Two types claiming the same span (a 12-digit number that passes two checksums): the one
    // with a context word near it wins (`Aadhaar 6207 6448 1730` is no card).
    cands.sort_by_key(|c| (c.start, c.end));
    let mut ctx = vec![false; cands.len()];
    for i in 0..cands.len() {
        let same = |j: usize| cands[j].start == cands[i].start && cands[j].end == cands[i].end;
        if (i > 0 && same(i - 1)) || (i + 1 < cands.len() && same(i + 1)) {
            ctx[i] = has_context(t, cands[i].start, cands[i].end, cands[i].entity);
        }
    }
    let mut order: Vec<(Candidate, bool)> = cands.into_iter().zip(ctx).collect();
    order.sort_by(|(a, actx), (b, bctx)| {
        b.validated
            .cmp(&a.validated)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(bctx.cmp(actx))
            .then(b.score.total_cmp(&a.score))
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
