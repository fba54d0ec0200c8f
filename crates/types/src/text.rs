//! Characters that must never reach a person's screen as they are: control characters (ESC
//! sequences move the cursor and recolour terminals; a bare CR breaks CSV rows) and the Unicode
//! bidirectional controls that make text read differently from what it is ("Trojan Source").
//! The control plane refuses them in names; the CLI escapes them in what it prints.

/// Whether `c` is a control character or a bidirectional control.
pub fn is_control_or_bidi(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `c` shows nothing: zero-width spaces and joiners, direction marks and isolates, word
/// joiners, the byte-order mark, the soft hyphen.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{061c}' | '\u{feff}' | '\u{00ad}' | '\u{180e}')
}

/// The most characters of a caller's unknown name (an enum value, a query parameter, a key)
/// an error echoes back: enough to recognise it, never the whole of a long value.
pub const ECHO_CHARS: usize = 64;

/// `s` cut to `max` characters, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Whether `s` shows nothing a person could read: only whitespace and invisible characters.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_by_characters_and_marks_the_cut() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("a", 0), "…");
    }

    #[test]
    fn invisible_text_is_blank() {
        assert!(is_blank(" \u{200b}\u{feff}\u{2060}\u{00ad}\t"));
        assert!(!is_blank(" a\u{200b}"));
    }

    #[test]
    fn controls_and_bidi_overrides_are_caught() {
        for c in [
            '\u{1b}', '\r', '\u{0}', '\u{9b}', '\u{202e}', '\u{2067}', '\u{200f}',
        ] {
            assert!(is_control_or_bidi(c), "{c:?}");
        }
        for c in ['a', 'é', '漢', '🎉', ' ', '\u{200d}'] {
            assert!(!is_control_or_bidi(c), "{c:?}");
        }
    }
}
