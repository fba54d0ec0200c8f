//! Normalization before scanning, with spans reported in the original text's offsets.
//!
//! Text is scanned after NFKC compatibility folding (full-width digits, mathematical letters,
//! ligatures become their plain forms), with other scripts' digits as ASCII digits, dash
//! look-alikes as `-`, JSON `\uXXXX` escapes as the characters they stand for, and with
//! invisible and control characters removed (zero-width space,
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
/// usual way to split a value so a scanner misses it — control characters and every
/// default-ignorable code point (Unicode's `Default_Ignorable_Code_Point`).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        // Control characters (tab, line feed and carriage return are text), the line and
        // paragraph separators and the blank Braille pattern: `4111\u{0}1111` is one number.
        '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}'
        | '\u{2028}' | '\u{2029}' | '\u{2800}'
        | '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Whether `c` is a dash (Unicode's dash punctuation) or a sign that looks like one: what a
/// reader takes for `-` in a name or a key.
pub fn is_dash(c: char) -> bool {
    matches!(
        c,
        '\u{058A}'
            | '\u{05BE}'
            | '\u{1400}'
            | '\u{1806}'
            | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2E17}'
            | '\u{2E1A}'
            | '\u{2E3A}'
            | '\u{2E3B}'
            | '\u{2E40}'
            | '\u{2E5D}'
            | '\u{301C}'
            | '\u{3030}'
            | '\u{30A0}'
            | '\u{FE31}'
            | '\u{FE32}'
            | '\u{FE58}'
            | '\u{FE63}'
            | '\u{FF0D}'
            | '\u{10EAD}'
            | '\u{02D7}'
            | '\u{2043}'
            | '\u{2212}'
            | '\u{2796}'
            | '\u{30FC}'
            | '\u{FF70}'
    )
}

/// Whether `t` is normal as it is: ASCII without control characters (but tab, line feed and
/// carriage return) and without a JSON `\u` escape. Eight bytes at a time: this runs over every
/// text scanned.
fn plain(t: &str) -> bool {
    let b = t.as_bytes();
    let mut chunks = b.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        if !crate::swar::all_printable(u64::from_le_bytes(w)) {
            return false;
        }
    }
    chunks.remainder().iter().all(|&c| printable(c)) && memchr::memmem::find(b, b"\\u").is_none()
}

/// A byte of plain text: printable ASCII, tab, line feed or carriage return.
fn printable(c: u8) -> bool {
    (0x20..0x7F).contains(&c) || matches!(c, b'\t' | b'\n' | b'\r')
}

/// The character a JSON escape at the start of `s` stands for (`\u0041`, or a surrogate pair
/// `\uD83D\uDE00`), and the escape's length in bytes. A lone surrogate is no character: `None`.
fn json_escape(s: &str) -> Option<(char, usize)> {
    let unit = |s: &str| -> Option<u32> {
        let hex = s.strip_prefix("\\u")?.get(..4)?;
        if hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(hex, 16).ok()
        } else {
            None
        }
    };
    let u = unit(s)?;
    if (0xD800..0xDC00).contains(&u) {
        let low = unit(s.get(6..)?)?;
        if !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        let c = char::from_u32(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00))?;
        return Some((c, 12));
    }
    char::from_u32(u).map(|c| (c, 6))
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
pub(crate) fn decimal_digit(c: char) -> Option<u8> {
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
        if plain(original) {
            return Normalized {
                text: Cow::Borrowed(original),
                map: Vec::new(),
                original_len: original.len(),
            };
        }
        let mut text = String::with_capacity(original.len());
        let mut map = Vec::with_capacity(original.len());
        let mut buf = [0u8; 4];
        let mut chars = original.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            // A JSON escape (`\u0040`, a surrogate pair) is the character it stands for: tool
            // arguments are JSON text, and the tool reads them unescaped.
            let (c, len) = match json_escape(&original[i..]) {
                Some((decoded, len)) => {
                    while chars.peek().is_some_and(|&(j, _)| j < i + len) {
                        chars.next();
                    }
                    (decoded, len)
                }
                None => (c, c.len_utf8()),
            };
            if is_invisible(c) {
                continue;
            }
            let (start, end) = (i as u32, (i + len) as u32);
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
            // Dashes that look like a hyphen-minus are one (`4111–1111`, `+44‐20`).
            if matches!(
                c,
                '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}'
            ) {
                text.push('-');
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
    fn json_escapes_and_control_characters() {
        // Tool arguments are JSON text: `\u0040` is an `@`, a surrogate pair one character.
        let original = r#"{"q":"zed.victim\u0040corp-example.com","e":"\ud83d\ude00 \u0041KIA"}"#;
        let n = Normalized::new(original);
        assert_eq!(
            n.text,
            r#"{"q":"zed.victim@corp-example.com","e":"😀 AKIA"}"#
        );
        let at = n.text.find('@').unwrap();
        let (s, e) = n.original_span(at, at + 1);
        assert_eq!(&original[s..e], r"\u0040");
        // A lone surrogate or a short escape is left as it is.
        for kept in [r"\ud83d x", r"\u12", r"\uXYZW"] {
            assert_eq!(Normalized::new(kept).text, kept);
        }
        // Control characters hide nothing: `4111\u{0}1111` is one number.
        for c in ['\u{0}', '\u{7}', '\u{7F}', '\u{85}', '\u{2028}', '\u{2800}'] {
            let t = format!("4111{c}1111");
            assert_eq!(Normalized::new(&t).text, "41111111", "{c:?}");
        }
        // Dash look-alikes are dashes.
        assert_eq!(
            Normalized::new("4111–1111—1111‐1111").text,
            "4111-1111-1111-1111"
        );
        // Tab, line feed and carriage return are text; plain ASCII is not copied.
        assert!(Normalized::new("a\tb\nc\r\nd").is_identity());
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
