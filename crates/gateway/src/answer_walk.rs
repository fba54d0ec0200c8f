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
//! each choice's `message`, its legacy `text` and any field of a choice no one models (a
//! provider's extension), except a `role`, `type` or `finish_reason` whose value is one of the
//! tags providers send ([`is_tag`]: `assistant`, `text`, `stop` …; any other value is read).
//! Where a key is repeated, every copy is read (the tree would keep only the last, and a
//! client's parser may keep the first).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Whether `s`, the value of a `role`, `type` or `finish_reason`, is one of the tags providers
/// send there: not read for personal data (a known word, read on every answer for nothing). Any
/// other value is read like a text (a tag no one sends may carry anything).
pub fn is_tag(s: &str) -> bool {
    matches!(
        s,
        // Roles.
        "assistant" | "user" | "system" | "tool" | "developer" | "function"
        // Content parts, tool calls, annotations, reasoning blocks.
        | "text" | "refusal" | "image_url" | "image" | "input_audio" | "audio" | "output_audio"
        | "file" | "output_text" | "reasoning" | "thinking" | "redacted_thinking" | "tool_use"
        | "tool_result" | "function_call" | "custom" | "url_citation" | "json_object"
        | "json_schema"
        // Finish reasons.
        | "stop" | "length" | "tool_calls" | "content_filter" | "error" | "end_turn"
        | "max_tokens" | "stop_sequence"
        // Reasoning blocks (OpenRouter's `reasoning_details`).
        | "reasoning.text" | "reasoning.summary" | "reasoning.encrypted"
    )
}

/// Whether `k`, a key of the answer's top level, is one of the fields every answer carries about
/// itself (its id, object, creation time, model, fingerprint, tier, usage): not read. Any other
/// field outside `choices` (a provider's citations, search results, notes …) is read like a
/// message.
pub fn is_meta_key(k: &str) -> bool {
    matches!(
        k,
        "id" | "object" | "created" | "model" | "system_fingerprint" | "service_tier" | "usage"
    )
}

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
    /// Inside a choice's `message`, or a field of a choice no one models: every string is a
    /// text.
    Message,
    /// The value of a `role` or `type` inside a message, or of a choice's `finish_reason`: a
    /// text unless it is a tag ([`is_tag`]); an object or array there is read like a message.
    Tag,
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
            (At::Top, Key::Meta) => At::Other,
            // A field outside `choices` no one models is read.
            (At::Top, _) => At::Message,
            // `choices` that is not an array (an object of choices): read whole.
            (At::Choices, _) => At::Message,
            (At::Choice, Key::Message) => At::Message,
            (At::Choice, Key::Text) => At::Text,
            (At::Choice, Key::Logprobs) => At::Logprobs,
            (At::Choice, Key::FinishReason) => At::Tag,
            // A field no one models (a provider's extension) is read.
            (At::Choice, _) => At::Message,
            (At::Message | At::Tag | At::Text, Key::RoleOrType) => At::Tag,
            // A legacy `text` that is an object is read whole, like a message.
            (At::Message | At::Tag | At::Text, _) => At::Message,
            _ => At::Other,
        }
    }

    /// Where the elements of an array sitting at `self` sit.
    fn element(self) -> At {
        match self {
            At::Choices => At::Choice,
            // A document or a choice that is an array, a legacy `text` that is one: read whole.
            At::Top | At::Choice | At::Message | At::Tag | At::Text => At::Message,
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
    FinishReason,
    Meta,
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
            "finish_reason" => Key::FinishReason,
            k if is_meta_key(k) => Key::Meta,
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
            // A string where a document, `choices` or a choice should be is read too.
            At::Message | At::Text | At::Top | At::Choices | At::Choice => self.t.text(s, at),
            At::Tag if !is_tag(s) => self.t.text(s, at),
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

    /// The texts are the message's strings (not the tags of `role` and `type`, at any depth), the
    /// legacy `text` and the fields no one models outside the choices (not `id`, `model`,
    /// `usage` …), each with where it starts when it is the answer's bytes as they are.
    #[test]
    fn the_texts_are_those_the_guard_reads() {
        let body = r#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi ann","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}],"refusal":null},"logprobs":null},{"text":"legacy","message":"plain"}],"usage":{"prompt_tokens":3},"text":"top"}"#;
        let s = seen(body);
        let texts: Vec<&str> = s.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["hi ann", "c1", "f", r#"{"a":1}"#, "legacy", "plain", "top"]
        );
        for (t, at) in &s.texts {
            match at {
                Some(i) => assert_eq!(&body[*i..*i + t.len()], t, "{t}"),
                None => assert_eq!(t, r#"{"a":1}"#, "only the escaped one has no place"),
            }
        }
        assert!(!s.logprobs, "null log probabilities are none");
    }

    /// A `role`, `type` or `finish_reason` is read unless it is a tag providers send; a field
    /// of a choice no one models is read whole; the index and log probabilities are not texts.
    #[test]
    fn odd_tags_and_fields_no_one_models_are_texts() {
        let s = seen(
            r#"{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"u@x.org","content":[{"type":"reasoning.text","text":"a"},{"type":"odd tag"},{"type":{"k":"in a tag"}}]},"x_ext":{"k":["v",1]},"finish_reason":"why","logprobs":null}]}"#,
        );
        let texts: Vec<&str> = s.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["u@x.org", "a", "odd tag", "in a tag", "v", "why"]);
        for tag in [
            "assistant",
            "text",
            "function",
            "stop",
            "tool_calls",
            "reasoning.summary",
        ] {
            assert!(is_tag(tag), "{tag}");
        }
        for odd in [
            "",
            "reasoning.",
            "reasoning.A",
            "reasoning.project_falcon",
            "reasoning.x@y",
            "Assistant",
            "stop ",
        ] {
            assert!(!is_tag(odd), "{odd:?}");
        }
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
