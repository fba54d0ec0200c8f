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

#[cfg(test)]
mod tests {
    use super::*;

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
