//! Normalization before scanning, with spans reported in the original text's offsets.
//!
//! Text is scanned after NFKC compatibility folding (full-width digits, mathematical letters,
//! ligatures become their plain forms) and with invisible characters removed (zero-width space,
//! joiners, word joiner, BOM, soft hyphen, Unicode tag characters, bidirectional controls), so
//! `４１１１ １１１１…` or `4111\u{200B}1111…` cannot slip a card number past the patterns.
//! Every normalized byte remembers the original character it came from, so a finding's span
//! covers exactly the original characters, invisible ones inside it included.
//!
//! Folding is per character (NFKC of each character on its own, not across characters): what
//! the patterns look at is ASCII-shaped, and per-character folding keeps the offset map exact.
//! ASCII text is already normal and is scanned as it is, without a copy.

use std::borrow::Cow;
use unicode_normalization::UnicodeNormalization;

/// Characters removed before scanning: they change no meaning a pattern cares about and are the
/// usual way to split a value so a scanner misses it.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E007F}')
}

/// The zeros of the scripts' decimal digits that NFKC leaves as they are (Unicode category Nd,
/// each block of ten in order): Arabic-Indic, Extended Arabic-Indic, NKo, Devanagari, Bengali,
/// Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada, Malayalam, Sinhala, Thai, Lao, Tibetan,
/// Myanmar (two), Khmer, Mongolian, Limbu, New Tai Lue, Tai Tham (two), Balinese, Sundanese,
/// Lepcha, Ol Chiki, Vai, Saurashtra, Kayah Li, Javanese, Myanmar Tai Laing, Cham, Meetei Mayek.
/// A card written `٤١١١ ١١١١ …` is the same card.
const DIGIT_ZEROS: [u32; 35] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
];

/// The value of a decimal digit of one of [`DIGIT_ZEROS`]' scripts.
fn decimal_digit(c: char) -> Option<u8> {
    let u = c as u32;
    // The table is sorted: the last zero at or below `u`.
    let i = DIGIT_ZEROS.partition_point(|&z| z <= u).checked_sub(1)?;
    let d = u - DIGIT_ZEROS[i];
    (d < 10).then_some(d as u8)
}

/// Text as the recognizers see it, and the way back to the original offsets.
#[derive(Debug)]
pub struct Normalized<'a> {
    /// The normalized text.
    pub text: Cow<'a, str>,
    /// For each byte of `text`: (start, end) in the original of the character it came from.
    /// Empty when `text` is the original.
    map: Vec<(u32, u32)>,
    original_len: usize,
}

impl<'a> Normalized<'a> {
    /// Normalizes `original`.
    pub fn new(original: &'a str) -> Normalized<'a> {
        if original.is_ascii() {
            return Normalized {
                text: Cow::Borrowed(original),
                map: Vec::new(),
                original_len: original.len(),
            };
        }
        let mut text = String::with_capacity(original.len());
        let mut map = Vec::with_capacity(original.len());
        let mut buf = [0u8; 4];
        for (i, c) in original.char_indices() {
            if is_invisible(c) {
                continue;
            }
            let (start, end) = (i as u32, (i + c.len_utf8()) as u32);
            if c.is_ascii() {
                text.push(c);
                map.push((start, end));
                continue;
            }
            if let Some(d) = decimal_digit(c) {
                text.push(char::from(b'0' + d));
                map.push((start, end));
                continue;
            }
            for n in std::iter::once(c).nfkc() {
                if is_invisible(n) {
                    continue;
                }
                let s = n.encode_utf8(&mut buf);
                text.push_str(s);
                map.extend(std::iter::repeat_n((start, end), s.len()));
            }
        }
        Normalized {
            text: Cow::Owned(text),
            map,
            original_len: original.len(),
        }
    }

    /// Whether the normalized text is the original.
    pub fn is_identity(&self) -> bool {
        matches!(self.text, Cow::Borrowed(_))
    }

    /// The original span of the normalized span `start..end` (byte offsets).
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        if self.is_identity() {
            return (start, end);
        }
        let s = self
            .map
            .get(start)
            .map_or(self.original_len, |m| m.0 as usize);
        let e = if end == 0 {
            s
        } else {
            self.map
                .get(end - 1)
                .map_or(self.original_len, |m| m.1 as usize)
        };
        (s, e.max(s))
    }
}

/// The largest character boundary of `t` at or before `i`.
pub(crate) fn floor_boundary(t: &str, i: usize) -> usize {
    let mut i = i.min(t.len());
    while i > 0 && !t.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest character boundary of `t` at or after `i` (at most its length).
pub(crate) fn ceil_boundary(t: &str, i: usize) -> usize {
    let mut i = i.min(t.len());
    while !t.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_borrowed() {
        let n = Normalized::new("plain text 123");
        assert!(n.is_identity());
        assert_eq!(n.original_span(6, 10), (6, 10));
    }

    #[test]
    fn fullwidth_and_invisible_characters_fold_with_exact_spans() {
        let original = "card ４１\u{200B}１１ end";
        let n = Normalized::new(original);
        assert_eq!(n.text, "card 4111 end");
        let (s, e) = n.original_span(5, 9);
        assert_eq!(&original[s..e], "４１\u{200B}１１");
    }

    #[test]
    fn other_scripts_digits_fold_to_ascii() {
        let original = "card ٤١١١ ۱۱۱۱ ४१११ ১১১১ ๑๑๑๑ end";
        let n = Normalized::new(original);
        assert_eq!(n.text, "card 4111 1111 4111 1111 1111 end");
        let (s, e) = n.original_span(5, 9);
        assert_eq!(&original[s..e], "٤١١١");
        // Each block's ten digits, and nothing past them.
        for zero in DIGIT_ZEROS {
            for d in 0..10 {
                let c = char::from_u32(zero + d).unwrap();
                assert_eq!(decimal_digit(c), Some(d as u8), "U+{:04X}", zero + d);
            }
        }
        for c in ['a', '٪', '\u{066A}', '\u{09F0}', 'ß'] {
            assert_eq!(decimal_digit(c), None, "{c}");
        }
    }

    #[test]
    fn ligatures_expand_and_map_to_the_whole_character() {
        let original = "ﬁle@x.io";
        let n = Normalized::new(original);
        assert_eq!(n.text, "file@x.io");
        let (s, e) = n.original_span(0, n.text.len());
        assert_eq!(&original[s..e], original);
    }
}
