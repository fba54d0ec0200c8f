//! One reading of a complete chat answer (OpenAI JSON) that finds the texts the output guard
//! reads without building the answer as a tree.
//!
//! Why: the output guard runs on every answer under an active policy, and nearly every answer
//! leaves it unchanged. Parsing each one into a `serde_json::Value` (a map, a string and a
//! vector per node, then dropped) was a quarter of the gateway's allocator work at 2,000
//! requests/s. This walk reads the same bytes with serde_json's own parser — the document is
//! checked as strictly as the tree would check it: numbers in range, strings UTF-8 with paired
//! surrogate escapes, no trailing bytes — and hands each text to the caller where it lies in
//! the answer, so an unchanged answer goes out as the provider's bytes and a changed one is
//! spliced in place.
//!
//! The texts are those [`crate::shield::guard_answer`]'s tree pass reads: every string inside
//! each choice's `message` (except the values of `role` and `type` keys, at any depth) and each
//! choice's legacy `text`. Where a key is repeated, every copy is read (the tree would keep only
//! the last, and a client's parser may keep the first).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// What the walk reports.
pub trait Texts {
    /// A text the output guard reads. `at` is where its characters start in the answer when
    /// they are the answer's bytes as they are (no escape in the string), `None` otherwise.
    fn text(&mut self, s: &str, at: Option<usize>);
    /// A choice carries log probabilities (anything but `null`).
    fn logprobs(&mut self);
}

/// Walks `body` (a complete answer), reporting to `t`; the parser's error when `body` is not
/// one JSON document.
pub fn walk(body: &[u8], t: &mut impl Texts) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    Walk {
        at: At::Top,
        base: body.as_ptr() as usize,
        t,
    }
    .deserialize(&mut de)?;
    de.end()
}

/// Where a value sits in the answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum At {
    /// The document.
    Top,
    /// `choices`.
    Choices,
    /// One element of `choices`.
    Choice,
    /// Inside a choice's `message`: every string is a text.
    Message,
    /// A choice's legacy `text`.
    Text,
    /// A choice's `logprobs`.
    Logprobs,
    /// Anything else: read (to check it) and passed over.
    Other,
}

impl At {
    /// Where the value of key `k` of an object sitting at `self` sits.
    fn key(self, k: Key) -> At {
        match (self, k) {
            (At::Top, Key::Choices) => At::Choices,
            (At::Choice, Key::Message) => At::Message,
            (At::Choice, Key::Text) => At::Text,
            (At::Choice, Key::Logprobs) => At::Logprobs,
            (At::Message, Key::RoleOrType) => At::Other,
            (At::Message, _) => At::Message,
            _ => At::Other,
        }
    }

    /// Where the elements of an array sitting at `self` sit.
    fn element(self) -> At {
        match self {
            At::Choices => At::Choice,
            At::Message => At::Message,
            _ => At::Other,
        }
    }
}

/// The keys the walk tells apart.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    Choices,
    Message,
    Text,
    Logprobs,
    RoleOrType,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Key, E> {
        Ok(match s {
            "choices" => Key::Choices,
            "message" => Key::Message,
            "text" => Key::Text,
            "logprobs" => Key::Logprobs,
            "role" | "type" => Key::RoleOrType,
            _ => Key::Other,
        })
    }
}

/// One value at `at`.
struct Walk<'t, T> {
    at: At,
    /// The answer's first byte's address (for a borrowed string's offset).
    base: usize,
    t: &'t mut T,
}

impl<T> Walk<'_, T> {
    fn child(&mut self, at: At) -> Walk<'_, T> {
        Walk {
            at,
            base: self.base,
            t: self.t,
        }
    }
}

impl<'de, T: Texts> DeserializeSeed<'de> for Walk<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<T: Texts> Walk<'_, T> {
    /// A scalar other than `null`.
    fn scalar(self) {
        if self.at == At::Logprobs {
            self.t.logprobs();
        }
    }

    fn string(self, s: &str, at: Option<usize>) {
        match self.at {
            At::Message | At::Text => self.t.text(s, at),
            At::Logprobs => self.t.logprobs(),
            _ => {}
        }
    }
}

impl<'de, T: Texts> Visitor<'de> for Walk<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.scalar();
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        // The characters as they are in the answer: where they start.
        let at = (s.as_ptr() as usize).checked_sub(self.base);
        self.string(s, at);
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        // Unescaped into the parser's scratch: not the answer's bytes.
        self.string(s, None);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.at == At::Logprobs {
            self.t.logprobs();
        }
        let at = self.at.element();
        while seq.next_element_seed(self.child(at))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if self.at == At::Logprobs {
            self.t.logprobs();
        }
        while let Some(k) = map.next_key_seed(KeySeed)? {
            let at = self.at.key(k);
            map.next_value_seed(self.child(at))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug)]
    struct Seen {
        texts: Vec<(String, Option<usize>)>,
        logprobs: bool,
    }

    impl Texts for Seen {
        fn text(&mut self, s: &str, at: Option<usize>) {
            self.texts.push((s.to_string(), at));
        }
        fn logprobs(&mut self) {
            self.logprobs = true;
        }
    }

    fn seen(body: &str) -> Seen {
        let mut s = Seen::default();
        walk(body.as_bytes(), &mut s).unwrap();
        s
    }

    /// The texts are the message's strings (not `role`'s or `type`'s, at any depth) and the
    /// legacy `text`, each with where it starts when it is the answer's bytes as they are.
    #[test]
    fn the_texts_are_those_the_guard_reads() {
        let body = r#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi ann","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}],"refusal":null},"logprobs":null},{"text":"legacy","message":"plain"}],"usage":{"prompt_tokens":3},"text":"top"}"#;
        let s = seen(body);
        let texts: Vec<&str> = s.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["hi ann", "c1", "f", r#"{"a":1}"#, "legacy", "plain"]
        );
        for (t, at) in &s.texts {
            match at {
                Some(i) => assert_eq!(&body[*i..*i + t.len()], t, "{t}"),
                None => assert_eq!(t, r#"{"a":1}"#, "only the escaped one has no place"),
            }
        }
        assert!(!s.logprobs, "null log probabilities are none");
    }

    #[test]
    fn log_probabilities_are_told() {
        for lp in [r#"{"content":[]}"#, "[]", "0", "false", r#""x""#] {
            let s = seen(&format!(r#"{{"choices":[{{"logprobs":{lp}}}]}}"#));
            assert!(s.logprobs, "{lp}");
        }
        // Not a choice's.
        assert!(!seen(r#"{"logprobs":{"content":[]},"choices":[]}"#).logprobs);
    }

    /// Repeated keys: every copy is read.
    #[test]
    fn every_copy_of_a_repeated_key_is_read() {
        let s = seen(
            r#"{"choices":[{"message":{"content":"one","content":"two"}}],"choices":[{"text":"three"}]}"#,
        );
        let texts: Vec<&str> = s.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three"]);
    }

    /// What the tree would refuse, the walk refuses.
    #[test]
    fn it_checks_the_document_as_the_tree_does() {
        for bad in [
            r#"{"choices":[{"message":{"content":"\ud800"}}]}"#,
            r#"{"usage":{"n":1e400}}"#,
            r#"{"a":1} x"#,
            r#"{"a":1,}"#,
            r#"{"a":"\x"}"#,
            "",
        ] {
            let tree = serde_json::from_str::<serde_json::Value>(bad).is_err();
            let mut s = Seen::default();
            assert!(tree, "{bad}");
            assert!(walk(bad.as_bytes(), &mut s).is_err(), "{bad}");
        }
        // A lone surrogate away from the texts too.
        let mut s = Seen::default();
        assert!(walk(br#"{"id":"\udc00","choices":[]}"#, &mut s).is_err());
    }
}
