//! One literal search for the trigger words of every family: the secret keywords, `bearer` and
//! month names of [`crate::shapes`] and the override-phrase words of [`crate::injection`].
//!
//! Why one: a multi-literal search costs about the same per byte for 20 literals as for 60, so
//! two searches cost twice one. The hits are handed to each family in its own trigger ids.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Where one trigger word occurs: its id in its family's list, and its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index in the family's list of trigger words.
    pub id: usize,
    /// Start, in bytes.
    pub start: usize,
    /// End (exclusive), in bytes.
    pub end: usize,
}

/// The compiled search.
#[derive(Debug)]
pub struct Triggers {
    ac: AhoCorasick,
    /// Patterns `0..shapes` are [`crate::shapes::trigger_words`]; the rest are
    /// [`crate::injection::TRIGGERS`].
    shapes: usize,
}

impl Default for Triggers {
    fn default() -> Self {
        Self::new()
    }
}

impl Triggers {
    /// Compiles the search.
    // The literals are constants; a test compiles them.
    #[allow(clippy::expect_used)]
    pub fn new() -> Triggers {
        let mut words = crate::shapes::trigger_words();
        let shapes = words.len();
        words.extend(crate::injection::TRIGGERS);
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(words)
            .expect("built-in trigger words compile");
        Triggers { ac, shapes }
    }

    /// Every occurrence in `t` (overlapping ones too: each family sees all of its own), split by
    /// family. `injection` is left empty when `with_injection` is false.
    pub fn find(
        &self,
        t: &str,
        with_injection: bool,
        shapes: &mut Vec<Hit>,
        injection: &mut Vec<Hit>,
    ) {
        for m in self.ac.find_overlapping_iter(t) {
            let id = m.pattern().as_usize();
            let hit = |id| Hit {
                id,
                start: m.start(),
                end: m.end(),
            };
            if id < self.shapes {
                shapes.push(hit(id));
            } else if with_injection {
                injection.push(hit(id - self.shapes));
            }
        }
    }
}
