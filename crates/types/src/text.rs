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

/// `s` cut to `max` characters, with an ellipsis when cut. A character that shows nothing
/// ([`is_invisible`]: a direction override, a zero-width space) and a control character but a
/// line break or a tab (NUL, escape, carriage return — which a terminal or a log reader would
/// act on) are written as their escape (`\u{202e}`, `\u{0}`): a value quoted back must read as
/// what it is.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)) + 3);
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if is_invisible(c) || (c.is_control() && !matches!(c, '\n' | '\t')) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// serde's message and the position it ends with (` at line 3 column 7`), if it ends with one.
pub fn split_position(text: &str) -> (&str, Option<&str>) {
    match text.rfind(" at line ") {
        Some(i)
            if text[i + " at line ".len()..]
                .split_once(" column ")
                .is_some_and(|(l, c)| [l, c].iter().all(|n| n.parse::<u64>().is_ok())) =>
        {
            (&text[..i], Some(&text[i..]))
        }
        _ => (text, None),
    }
}

/// serde's words for a value of the wrong type (`invalid type: integer `1`, expected a string
/// at line 1 column 15`) in Tollgate's (`expected a string, found a number`): what was wanted
/// first, what came as a kind of value (never the value itself, which may be long), and no
/// position (the caller gives the field's path). The API's JSON errors and the policy file's
/// YAML errors say the same.
pub fn serde_message(text: &str) -> String {
    let (text, _) = split_position(text);
    // A name the caller gave that serde does not know is quoted, but never at length.
    for prefix in ["unknown variant `", "unknown field `"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let cut = ["`, expected ", "`, there are no "]
                .iter()
                .find_map(|sep| rest.rfind(sep));
            if let Some(end) = cut {
                return format!("{prefix}{}{}", clip(&rest[..end], ECHO_CHARS), &rest[end..]);
            }
        }
    }
    // A whole number out of an unsigned type's range: `invalid value: integer `-5`, expected u32`.
    if let Some((n, ty)) = text
        .strip_prefix("invalid value: integer `")
        .and_then(|r| r.split_once("`, expected "))
    {
        let bits = match ty {
            "u8" => Some(u64::from(u8::MAX)),
            "u16" => Some(u64::from(u16::MAX)),
            "u32" => Some(u64::from(u32::MAX)),
            "u64" | "usize" => Some(u64::MAX),
            _ => None,
        };
        if let Some(max) = bits {
            return if n.starts_with('-') {
                "expected a whole number, 0 or more, found a negative number".to_string()
            } else {
                format!("expected a whole number from 0 to {max}, found a larger one")
            };
        }
    }
    let Some(rest) = text.strip_prefix("invalid type: ") else {
        return text.to_string();
    };
    let Some((found, expected)) = rest.rsplit_once(", expected ") else {
        return text.to_string();
    };
    let kind = match found {
        "null" | "unit value" => "null",
        "map" => "an object",
        "sequence" => "an array",
        f if f.starts_with("boolean") => "a boolean",
        f if f.starts_with("integer") || f.starts_with("floating point") => "a number",
        f if f.starts_with("string") || f.starts_with("character") => "a string",
        _ => return text.to_string(),
    };
    let expected = match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        // serde_yaml's words for a name (an enum's) given as anything but a string.
        "a YAML tag starting with '!'" => "one of its names as a string",
        // serde's words name the Rust type (`struct ChatMessage`, `a map`); the caller wrote JSON.
        "a map" => "an object",
        "a sequence" => "an array",
        e if e.starts_with("struct ")
            || e.starts_with("internally tagged enum ")
            || e.starts_with("adjacently tagged enum ") =>
        {
            "an object"
        }
        e if e.starts_with("enum ") => "one of its names as a string",
        other => other,
    };
    format!("expected {expected}, found {kind}")
}

/// Whether `s` shows nothing a person could read: only whitespace and invisible characters.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's names of Rust types become the JSON the caller should have written.
    #[test]
    fn serde_messages_name_json_not_rust_types() {
        for (serde, ours) in [
            (
                "invalid type: null, expected struct ChatCompletionRequest",
                "expected an object, found null",
            ),
            (
                "invalid type: integer `1`, expected struct ChatMessage at line 1 column 40",
                "expected an object, found a number",
            ),
            (
                "invalid type: string \"x\", expected internally tagged enum ContentPart",
                "expected an object, found a string",
            ),
            (
                "invalid type: sequence, expected a map",
                "expected an object, found an array",
            ),
            (
                "invalid type: map, expected a sequence",
                "expected an array, found an object",
            ),
            (
                "invalid type: integer `3`, expected enum Role",
                "expected one of its names as a string, found a number",
            ),
        ] {
            assert_eq!(serde_message(serde), ours, "{serde}");
        }
    }

    #[test]
    fn clip_cuts_by_characters_and_marks_the_cut() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("a", 0), "…");
        // What shows nothing is shown as its escape, counted as one character.
        assert_eq!(clip("gpt\u{202e}-4o", 64), "gpt\\u{202e}-4o");
        assert_eq!(clip("a\u{200b}bc", 2), "a\\u{200b}…");
        assert_eq!(clip("line\nnext", 64), "line\nnext");
        // Control characters a terminal would act on, too (attack 21, F4).
        assert_eq!(
            clip("uc_\0\u{1b}[2J\r\u{85}", 64),
            "uc_\\u{0}\\u{1b}[2J\\u{d}\\u{85}"
        );
    }

    #[test]
    fn serde_messages_say_what_was_wanted_and_what_came() {
        // A name the caller gave is quoted to 64 characters.
        let variant_in = format!(
            "unknown variant `{}`, expected `a` or `b`",
            "v".repeat(5000)
        );
        let variant_out = format!("unknown variant `{}…`, expected `a` or `b`", "v".repeat(64));
        let field_in = format!("unknown field `{}`, expected one of `a`", "f".repeat(100));
        let field_out = format!("unknown field `{}…`, expected one of `a`", "f".repeat(64));
        for (said, says) in [
            (
                "invalid type: integer `1`, expected a string at line 1 column 15",
                "expected a string, found a number",
            ),
            (
                "invalid type: string \"a, expected b\", expected u32",
                "expected a whole number, 0 or more, found a string",
            ),
            (
                "invalid type: map, expected a YAML tag starting with '!'",
                "expected one of its names as a string, found an object",
            ),
            (
                "invalid type: sequence, expected i64",
                "expected a whole number, found an array",
            ),
            (
                "invalid type: unit value, expected f64",
                "expected a number, found null",
            ),
            (
                "invalid type: boolean `true`, expected a map",
                "expected an object, found a boolean",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "expected a whole number, 0 or more, found a negative number",
            ),
            (
                "invalid value: integer `300`, expected u8",
                "expected a whole number from 0 to 255, found a larger one",
            ),
            (variant_in.as_str(), variant_out.as_str()),
            (field_in.as_str(), field_out.as_str()),
            (
                "unknown field `x`, there are no fields",
                "unknown field `x`, there are no fields",
            ),
            // Not about a type: the words stay, only a position goes.
            (
                "invalid value: integer `-1`, expected i8 at line 1 column 3",
                "invalid value: integer `-1`, expected i8",
            ),
            (
                "trailing characters at line 1 column 9",
                "trailing characters",
            ),
            ("x at line one column 2", "x at line one column 2"),
            (
                "invalid type: newtype struct, expected a string",
                "invalid type: newtype struct, expected a string",
            ),
        ] {
            assert_eq!(serde_message(said), says, "{said}");
        }
        assert_eq!(
            split_position("bad at line 3 column 7"),
            ("bad", Some(" at line 3 column 7"))
        );
        assert_eq!(split_position("bad at line 3"), ("bad at line 3", None));
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
