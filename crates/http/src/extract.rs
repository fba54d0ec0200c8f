//! Reading a request body into a typed request, with a specific error for each way it can be bad.
//!
//! Order of checks: size (from `Content-Length` first, then while reading), emptiness, UTF-8, JSON
//! syntax, then types (serde, with the path of the field at fault as `param`).

use crate::error::ApiError;
use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tollgate_types::text::{ECHO_CHARS, clip};

/// The error of a request body that did not arrive in time: the server's body wrapper gives it
/// when `server.body_read_timeout_ms` is over, and [`read_body`] answers it with a 408.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyReadTimeout(pub Duration);

/// The body read timeout somewhere in `e`'s chain of causes, if it is one.
fn body_timeout(e: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    std::iter::successors(Some(e), |e| e.source())
        .find_map(|e| e.downcast_ref::<BodyReadTimeout>())
        .map(|t| t.0)
}

/// Refuses a JSON body that gives a key twice anywhere (`labels.a`, say): a parsed value keeps
/// only the last of them, so what its writer meant is not guessed. 400 naming the key's path.
pub fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    match std::str::from_utf8(bytes).ok().and_then(duplicate_key) {
        Some(path) => Err(ApiError::invalid(
            format!("`{path}` is given twice; give each key once"),
            Some(path),
        )),
        None => Ok(()),
    }
}

/// Refuses a body that is not a JSON object: serde reads a struct from an array too (positional
/// fields), and every body of these APIs is an object.
pub fn require_object(bytes: &[u8]) -> Result<(), ApiError> {
    refuse_bom(bytes)?;
    // Only another JSON value is "not an object": anything else (a stray byte, text that is
    // not UTF-8) is told by the parser, as on `/v1`.
    let starts_a_value =
        |b: &u8| matches!(b, b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n');
    if bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(starts_a_value)
    {
        return Err(ApiError::invalid(
            "the request body must be a JSON object",
            None,
        ));
    }
    Ok(())
}

/// Refuses a body declared as something other than JSON in UTF-8: the admin API reads
/// `application/json` and `application/…+json`, with no parameter but `charset=utf-8`. A body
/// sent as a form (curl's `-d` without a type) or as `text/plain` is told so, not read as JSON by
/// luck. (The `/v1` endpoints read any body as JSON, as OpenAI-compatible clients expect.)
pub fn require_json_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    const SEND: &str = "send the body as `content-type: application/json`";
    let refuse = |why: String| Err(ApiError::UnsupportedMediaType(format!("{why}; {SEND}")));
    let mut given = headers.get_all(axum::http::header::CONTENT_TYPE).iter();
    let Some(value) = given.next() else {
        return refuse("the request has a body but no content type".into());
    };
    if given.next().is_some() {
        return refuse("the request gives more than one content type".into());
    }
    let Ok(text) = value.to_str() else {
        return refuse("the content type is not plain ASCII text".into());
    };
    let text = text.to_ascii_lowercase();
    let mut parts = text.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("");
    let json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|s| s.ends_with("+json") && s.len() > "+json".len());
    if !json {
        let shown = clip(essence, ECHO_CHARS);
        return refuse(format!("the content type `{shown}` is not JSON"));
    }
    // Only `charset=utf-8`, bare or quoted whole (a quote is not a separator to look past).
    for p in parts.filter(|p| !p.is_empty()) {
        let ok = p.split_once('=').is_some_and(|(k, v)| {
            k.trim() == "charset" && matches!(v.trim(), "utf-8" | "\"utf-8\"")
        });
        if !ok {
            let shown = clip(p, ECHO_CHARS);
            return refuse(format!(
                "the content type parameter `{shown}` is not taken: JSON is read as UTF-8 only"
            ));
        }
    }
    Ok(())
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::BodyTooLarge { limit })
        }
        Err(e) => Err(match body_timeout(e.as_ref()) {
            Some(after) => ApiError::BodyTimeout(after),
            None => ApiError::invalid("the request body could not be read", None),
        }),
    }
}

/// The UTF-8 byte-order mark. JSON text must not begin with one (RFC 8259, 8.1); told apart
/// here because serde's words for it ("expected value at line 1 column 1") point nowhere.
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn refuse_bom(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.trim_ascii_start().starts_with(BOM) {
        return Err(ApiError::invalid(
            "the request body starts with a byte-order mark (U+FEFF); send the JSON without one",
            None,
        ));
    }
    Ok(())
}

/// How deep serde_json reads nested arrays and objects (the body's own object is the first
/// level): its fixed limit of 128 refuses the 128th.
const MAX_DEPTH: usize = 127;

/// The 400 of a body serde_json could not read as JSON. Two of its messages are reworded,
/// because they name something other than what is wrong: text nested past [`MAX_DEPTH`] is
/// JSON, only too deep ("recursion limit exceeded"), and an escaped half of a UTF-16 surrogate
/// pair is "unexpected end of hex escape" when text follows it.
fn not_json(text: &str, e: &serde_json::Error) -> ApiError {
    let at = format!("at line {} column {}", e.line(), e.column());
    let said = e.to_string();
    let message = if said.starts_with("recursion limit exceeded") {
        format!(
            "the request body nests arrays and objects more than {MAX_DEPTH} levels deep ({at})"
        )
    } else if let Some(escape) = (said.contains("hex escape") || said.contains("surrogate"))
        .then(|| lone_surrogate(text))
        .flatten()
    {
        format!(
            "the request body is not valid JSON: `{escape}` is half of a UTF-16 surrogate pair, not a character ({at})"
        )
    } else {
        format!("the request body is not valid JSON: {said}")
    };
    ApiError::invalid(message, None)
}

/// The first `\uXXXX` escape in `text` that is half of a surrogate pair without its other half,
/// as written.
fn lone_surrogate(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let escape = |at: usize| text.get(at..at + 6);
    // The code unit of a `\u` escape starting at `at`, if one does.
    let unit = |at: usize| -> Option<u16> {
        if bytes.get(at + 1) != Some(&b'u') {
            return None;
        }
        u16::from_str_radix(text.get(at + 2..at + 6)?, 16).ok()
    };
    // Where the escape of a leading half still waiting for its trailing half starts.
    let mut lead = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            if let Some(at) = lead {
                return escape(at);
            }
            i += 1;
            continue;
        }
        match (lead, unit(i)) {
            (Some(_), Some(0xDC00..=0xDFFF)) => {
                lead = None;
                i += 6;
            }
            (Some(at), _) => return escape(at),
            (None, Some(0xD800..=0xDBFF)) => {
                lead = Some(i);
                i += 6;
            }
            (None, Some(0xDC00..=0xDFFF)) => return escape(i),
            (None, Some(_)) => i += 6,
            // Another escape (`\\`, `\"` …): two characters.
            (None, None) => i += 2,
        }
    }
    lead.and_then(escape)
}

/// Parses a JSON body into `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_bom(bytes)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the request body is empty; expected a JSON object",
            None,
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::invalid(
            format!(
                "the request body is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            None,
        )
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let at = e.path().clone();
        let inner = e.into_inner();
        if !matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        ) {
            return invalid_value(path, &inner);
        }
        // Whether the text is JSON, and if not, where it stops being — told by reading it as
        // JSON alone: the typed read may have stopped earlier, on a type its words call syntax.
        let parsed = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(parsed) => parsed,
            Err(syntax) => return not_json(text, &syntax),
        };
        // The text is JSON after all: serde_json calls a wrong type where an enum goes
        // (`"role": 1`, `"to": null`) a syntax error, in words ("expected value at line 1
        // column 7") that name neither what was wanted nor what came. The field is at fault.
        let found = found_at(&parsed, &at).unwrap_or("something else");
        let what = match path.as_str() {
            "." => "the request body".to_string(),
            p => format!("`{p}`"),
        };
        ApiError::invalid(
            format!(
                "invalid value for {what}: expected one of its names as a string, found {found}"
            ),
            (path != ".").then_some(path),
        )
    })?;
    de.end().map_err(|e| not_json(text, &e))?;
    Ok(value)
}

/// The path (`policy.entities.EMAIL_ADDRESS`, `items[2].name`) of the first key that an object
/// of the JSON `text` gives twice, if any. A parsed value keeps only the last of them, so a
/// body like `{"entities": {"EMAIL_ADDRESS": "mask", "EMAIL_ADDRESS": "block"}}` would be taken
/// for something its writer may not have meant. `None` too when `text` is not JSON.
pub fn duplicate_key(text: &str) -> Option<String> {
    let mut path = Vec::new();
    let mut found = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = serde::de::DeserializeSeed::deserialize(
        dup::Walk {
            path: &mut path,
            found: &mut found,
        },
        &mut de,
    );
    found
}

mod dup {
    //! The walk of [`super::duplicate_key`].

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

    pub(super) struct Walk<'a> {
        pub(super) path: &'a mut Vec<String>,
        pub(super) found: &'a mut Option<String>,
    }

    impl Walk<'_> {
        fn here(&self, last: &str) -> String {
            let mut out = String::new();
            for part in self.path.iter().map(String::as_str).chain([last]) {
                if !out.is_empty() && !part.starts_with('[') {
                    out.push('.');
                }
                out.push_str(part);
            }
            out
        }
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if self.found.is_some() {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                if !seen.insert(key.clone()) {
                    *self.found = Some(self.here(&key));
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                self.path.push(key);
                map.next_value_seed(Walk {
                    path: &mut *self.path,
                    found: &mut *self.found,
                })?;
                self.path.pop();
            }
            Ok(())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0usize;
            loop {
                self.path.push(format!("[{i}]"));
                let more = seq.next_element_seed(Walk {
                    path: &mut *self.path,
                    found: &mut *self.found,
                })?;
                self.path.pop();
                if more.is_none() {
                    return Ok(());
                }
                i += 1;
            }
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
}

/// Reads an optional name — a field of a unit-variant enum — from a string only, for bodies read
/// straight from their text ([`parse_json`]): serde's derive would also take `{"name": null}`.
/// An unknown name is named in the error, but never at length (by [`parse_json`]'s wording).
pub fn optional_name<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::{Error, Visitor};
    struct Name<T>(std::marker::PhantomData<T>);
    impl<'de, T: DeserializeOwned> Visitor<'de> for Name<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("one of its names as a string")
        }
        fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            d.deserialize_str(self)
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<Option<T>, E> {
            // serde's own message; [`parse_json`] quotes the name in it to `ECHO_CHARS`.
            let read = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s);
            T::deserialize(read).map(Some).map_err(E::custom)
        }
    }
    d.deserialize_option(Name(std::marker::PhantomData))
}

/// What kind of JSON value sits at `path` in `value` (`null`, `a number` …), if it is there.
fn found_at(value: &serde_json::Value, path: &serde_path_to_error::Path) -> Option<&'static str> {
    use serde_path_to_error::Segment;
    let mut here = value;
    for segment in path.iter() {
        here = match segment {
            Segment::Seq { index } => here.get(index)?,
            Segment::Map { key } | Segment::Enum { variant: key } => here.get(key)?,
            Segment::Unknown => return None,
        };
    }
    Some(match here {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    })
}

/// The field a serde message names after one of `kinds` (`missing field `, `duplicate field `
/// …, each ending in a backquote), if it names one.
pub fn field_named<'a>(message: &'a str, kinds: &[&str]) -> Option<&'a str> {
    kinds
        .iter()
        .find_map(|k| message.find(k).map(|i| &message[i + k.len()..]))
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
}

/// The 400 of JSON that is not what the endpoint takes; `path` is where serde found the
/// mistake (`.` for the body itself).
fn invalid_value(path: String, inner: &serde_json::Error) -> ApiError {
    let at = (path != ".").then_some(path);
    let text = tollgate_types::text::serde_message(&inner.to_string());
    let message = match &at {
        // The field is named by the message itself.
        _ if text.starts_with("unknown field `") => text.clone(),
        Some(p) => format!("invalid value for `{p}`: {text}"),
        None => format!("invalid request body: {text}"),
    };
    // serde names a missing or repeated field only in its message; that field is the param.
    let field = field_named(&text, &["missing field `", "duplicate field `"]);
    let field = field.map(|f| clip(f, ECHO_CHARS));
    let param = match (at, field) {
        (Some(p), Some(f)) => Some(format!("{p}.{f}")),
        (None, Some(f)) => Some(f),
        (at, None) => at,
    };
    ApiError::invalid(message, param)
}

/// Reads a parsed JSON value into `T` as its OpenAPI schema describes it: a struct only from
/// an object (serde's derive also reads one from an array of its fields in order, so
/// `[null, null]` would pass for a struct of two optional fields), a name (an enum's) only from
/// a string (serde also reads `{"name": null}`). Errors as [`parse_json`]'s.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(strict::Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        invalid_value(path, e.inner())
    })
}

mod strict {
    //! A `serde_json::Value` deserializer that refuses an array where a struct goes, and an
    //! object where a name goes.

    use super::{ECHO_CHARS, clip};
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor};
    use serde_json::{Error, Value};

    pub(super) struct Strict(pub(super) Value);

    impl<'de> de::Deserializer<'de> for Strict {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Array(items) => {
                    let len = items.len();
                    let mut seq = Seq(items.into_iter());
                    let out = visitor.visit_seq(&mut seq)?;
                    match seq.0.len() {
                        0 => Ok(out),
                        _ => Err(de::Error::invalid_length(len, &"fewer elements")),
                    }
                }
                Value::Object(fields) => visitor.visit_map(Map {
                    fields: fields.into_iter(),
                    value: None,
                }),
                other => other.deserialize_any(visitor),
            }
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0 {
                Value::Null => visitor.visit_none(),
                _ => visitor.visit_some(self),
            }
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match self.0 {
                Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
                _ => self.deserialize_any(visitor),
            }
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Error> {
            match self.0 {
                // serde reads `{"production": null}` as the name `production` too; the API
                // takes names as strings only (none of its names carries data).
                Value::Object(_) => Err(de::Error::invalid_type(
                    Unexpected::Map,
                    &"one of its names as a string",
                )),
                // An unknown name is named in the answer, but never at length.
                Value::String(s)
                    if s.chars().nth(ECHO_CHARS).is_some() && !variants.contains(&s.as_str()) =>
                {
                    Err(de::Error::custom(format_args!(
                        "unknown variant `{}`, expected one of {}",
                        clip(&s, ECHO_CHARS),
                        variants
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
                other => other.deserialize_enum(name, variants, visitor),
            }
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
        }
    }

    struct Seq(std::vec::IntoIter<Value>);

    impl<'de> SeqAccess<'de> for Seq {
        type Error = Error;

        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, Error> {
            self.0
                .next()
                .map(|v| seed.deserialize(Strict(v)))
                .transpose()
        }

        fn size_hint(&self) -> Option<usize> {
            Some(self.0.len())
        }
    }

    struct Map {
        fields: serde_json::map::IntoIter,
        value: Option<Value>,
    }

    impl<'de> MapAccess<'de> for Map {
        type Error = Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Error> {
            match self.fields.next() {
                Some((k, v)) => {
                    self.value = Some(v);
                    seed.deserialize(Value::String(k)).map(Some)
                }
                None => Ok(None),
            }
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
            match self.value.take() {
                Some(v) => seed.deserialize(Strict(v)),
                None => Err(de::Error::custom("a value was read before its key")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_types::openai::ChatCompletionRequest;

    fn err(body: &[u8]) -> (String, Option<String>) {
        match parse_json::<ChatCompletionRequest>(body) {
            Err(ApiError::InvalidRequest { message, param, .. }) => (message, param),
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn a_key_given_twice_is_named_by_its_path() {
        let cases = [
            (r#"{"a": 1, "a": 2}"#, Some("a")),
            (
                r#"{"policy": {"entities": {"EMAIL_ADDRESS": "mask", "EMAIL_ADDRESS": "block"}}}"#,
                Some("policy.entities.EMAIL_ADDRESS"),
            ),
            (
                r#"{"items": [{"n": 1}, {"n": 2, "m": [], "n": 3}]}"#,
                Some("items[1].n"),
            ),
            (r#"[[], [{"x": {"y": 1, "y": 1}}]]"#, Some("[1][0].x.y")),
            // The first key given twice is named, not a later one.
            (r#"{"a": 1, "a": 2, "b": 1, "b": 2}"#, Some("a")),
            // The same key in two objects, or the same value twice, is fine.
            (r#"{"a": {"k": 1}, "b": {"k": 1}, "c": [1, 1]}"#, None),
            (r#"{"a": "\u0061", "b": 1}"#, None),
            // Escapes are read: `"\u0061"` is the key `a`.
            (r#"{"a": 1, "\u0061": 2}"#, Some("a")),
            ("not json", None),
        ];
        for (text, want) in cases {
            assert_eq!(duplicate_key(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn each_kind_of_bad_body_has_its_message() {
        assert!(err(b"").0.contains("empty"));
        assert!(err(b"{\"model\":").0.contains("not valid JSON"));
        assert!(
            err(b"{\"model\":\"m\",\"messages\":[]} x")
                .0
                .contains("not valid JSON")
        );
        assert!(err(b"{\"model\":\"\xff\"}").0.contains("not valid UTF-8"));
        let (msg, param) = err(br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#);
        assert_eq!(param.as_deref(), Some("messages[0].role"), "{msg}");
        let (msg, param) = err(br#"{"model":"m","messages":[],"max_tokens":"ten"}"#);
        assert_eq!(param.as_deref(), Some("max_tokens"), "{msg}");
        // A wrong type for a message's role (read as a string only) says what came, at its path.
        for (role, found) in [
            ("null", "null"),
            ("5", "a number"),
            ("{}", "an object"),
            (r#"{"user": null}"#, "an object"),
            ("[]", "an array"),
            ("true", "a boolean"),
        ] {
            let body = format!(r#"{{"model":"m","messages":[{{"role":{role},"content":"x"}}]}}"#);
            let (msg, param) = err(body.as_bytes());
            assert_eq!(param.as_deref(), Some("messages[0].role"), "{msg}");
            assert_eq!(
                msg,
                format!(
                    "invalid value for `messages[0].role`: expected one of its names as a string, found {found}"
                )
            );
        }
        // An unknown role is named, but not echoed at length.
        let long = "r".repeat(100_000);
        let (msg, _) =
            err(format!(r#"{{"model":"m","messages":[{{"role":"{long}"}}]}}"#).as_bytes());
        assert!(msg.len() < 400, "{} bytes", msg.len());
        assert!(
            msg.contains(&format!("unknown variant `{}…`", "r".repeat(64))),
            "{msg}"
        );
        // (`messages` may be left out for a pattern: `model` is the required field.)
        let (msg, _) = err(br#"{"messages":[]}"#);
        assert!(msg.contains("missing field `model`"), "{msg}");
    }

    /// A body of exactly the limit is read, by its declared length and by what arrives; one byte
    /// more is refused either way.
    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
        let declared = |n: usize| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(axum::http::header::CONTENT_LENGTH, n.into());
            h
        };
        let none = axum::http::HeaderMap::new();
        for headers in [declared(16), none.clone()] {
            let got = read_body(&headers, Body::from(vec![b'x'; 16]), 16).await;
            assert_eq!(got.unwrap().len(), 16);
        }
        for headers in [declared(17), none] {
            let got = read_body(&headers, Body::from(vec![b'x'; 17]), 16).await;
            assert!(matches!(got, Err(ApiError::BodyTooLarge { limit: 16 })));
        }
    }

    /// Found by schemathesis on the admin API: serde's derive reads a struct from an array of
    /// its fields, so `[null, null]` passed for an object of two optional fields.
    #[test]
    fn a_struct_is_read_only_from_an_object() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Caps {
            a: Option<u32>,
            b: Option<u32>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            name: String,
            caps: Option<Caps>,
            tags: Vec<String>,
        }
        let ok = serde_json::json!({"name": "n", "caps": {"a": 1}, "tags": ["x"]});
        assert!(parse_value::<Body>(ok).is_ok());
        for (body, param) in [
            (serde_json::json!(["n", null, []]), None),
            (
                serde_json::json!({"name": "n", "caps": [null, null], "tags": []}),
                Some("caps"),
            ),
            (
                serde_json::json!({"name": "n", "caps": [], "tags": []}),
                Some("caps"),
            ),
        ] {
            match parse_value::<Body>(body.clone()) {
                Err(ApiError::InvalidRequest { param: p, .. }) => {
                    assert_eq!(p.as_deref(), param, "{body}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    /// serde_json calls a wrong type where a derived enum goes a syntax error ("expected value
    /// at line 1 column 7"): the answer says what came instead, at the field's path.
    #[test]
    fn a_wrong_type_where_a_name_goes_says_what_came() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[allow(dead_code)]
        enum Stage {
            Pilot,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Move {
            moves: Vec<Stage>,
        }
        for (to, found) in [
            ("null", "found null"),
            ("5", "found a number"),
            ("[]", "found an array"),
            ("true", "found a boolean"),
        ] {
            let body = format!(r#"{{"moves": ["pilot", {to}]}}"#);
            match parse_json::<Move>(body.as_bytes()) {
                Err(ApiError::InvalidRequest { message, param, .. }) => {
                    assert_eq!(param.as_deref(), Some("moves[1]"), "{body}");
                    assert_eq!(
                        message,
                        format!(
                            "invalid value for `moves[1]`: expected one of its names as a string, {found}"
                        )
                    );
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    /// `optional_name` reads a name from a string or nothing from null, and nothing else.
    #[test]
    fn an_optional_name_is_read_from_a_string_only() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Outcome {
            Success,
            Failure,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Event {
            #[serde(default, deserialize_with = "optional_name")]
            outcome: Option<Outcome>,
        }
        let read = |text: &str| parse_json::<Event>(text.as_bytes()).map(|e| e.outcome);
        assert_eq!(
            read(r#"{"outcome": "failure"}"#).ok(),
            Some(Some(Outcome::Failure))
        );
        assert_eq!(read(r#"{"outcome": null}"#).ok(), Some(None));
        assert_eq!(read(r#"{}"#).ok(), Some(None));
        let long = "s".repeat(100_000);
        for (text, want) in [
            (
                r#"{"outcome": {"success": null}}"#.to_string(),
                "expected one of its names as a string, found an object".to_string(),
            ),
            (
                r#"{"outcome": 1}"#.to_string(),
                "expected one of its names as a string, found a number".to_string(),
            ),
            (
                r#"{"outcome": "won"}"#.to_string(),
                "unknown variant `won`, expected `success` or `failure`".to_string(),
            ),
            (
                format!(r#"{{"outcome": "{long}"}}"#),
                format!(
                    "unknown variant `{}…`, expected `success` or `failure`",
                    "s".repeat(64)
                ),
            ),
        ] {
            match read(&text) {
                Err(ApiError::InvalidRequest { message, param, .. }) => {
                    assert_eq!(param.as_deref(), Some("outcome"));
                    assert!(message.contains(&want), "{message}");
                    assert!(message.len() < 300, "{} bytes", message.len());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// A name is read only from a string: serde's `{"name": null}` spelling of a name, or any
    /// other object, is refused at the field's path (found by an outside attack: a stage move
    /// with `"to": {"production": null}` moved the use case).
    #[test]
    fn a_name_is_read_only_from_a_string() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Stage {
            Pilot,
            Production,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Move {
            to: Stage,
            back: Option<Stage>,
        }
        // An unknown name is named, but not echoed at length.
        let long = "p".repeat(100_000);
        match parse_value::<Move>(serde_json::json!({ "to": long })) {
            Err(ApiError::InvalidRequest { message, param, .. }) => {
                assert_eq!(param.as_deref(), Some("to"));
                assert!(message.len() < 300, "{} bytes", message.len());
                let want = format!(
                    "unknown variant `{}…`, expected one of `pilot`, `production`",
                    "p".repeat(64)
                );
                assert!(message.contains(&want), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Counted in characters: 40 two-byte ones are echoed whole, 65 are cut after 64.
        for (name, shown) in [
            ("é".repeat(40), "é".repeat(40)),
            ("é".repeat(65), format!("{}…", "é".repeat(64))),
        ] {
            match parse_value::<Move>(serde_json::json!({ "to": name })) {
                Err(ApiError::InvalidRequest { message, .. }) => {
                    assert!(
                        message.contains(&format!("unknown variant `{shown}`, expected")),
                        "{message}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let ok = parse_value::<Move>(serde_json::json!({"to": "production", "back": "pilot"}));
        assert_eq!(
            ok.map(|m| (m.to, m.back)).ok(),
            Some((Stage::Production, Some(Stage::Pilot)))
        );
        for (body, param) in [
            (serde_json::json!({"to": {"production": null}}), "to"),
            (
                serde_json::json!({"to": "pilot", "back": {"pilot": null}}),
                "back",
            ),
            (serde_json::json!({"to": {"a": 1}}), "to"),
            (serde_json::json!({"to": {}}), "to"),
        ] {
            match parse_value::<Move>(body.clone()) {
                Err(ApiError::InvalidRequest {
                    param: p, message, ..
                }) => {
                    assert_eq!(p.as_deref(), Some(param), "{body}");
                    assert!(
                        message.contains("expected one of its names as a string, found an object"),
                        "{body}: {message}"
                    );
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    /// Found by the gateway's request fuzzing: these name the field at fault, not the body.
    #[test]
    fn the_field_at_fault_is_the_param() {
        let cases: [(&[u8], &str); 6] = [
            // serde_json calls these syntax errors, though the body is valid JSON.
            (
                br#"{"model":"m","messages":[{"role":1}]}"#,
                "messages[0].role",
            ),
            (
                br#"{"model":"m","messages":[{"role":null}]}"#,
                "messages[0].role",
            ),
            (
                br#"{"model":"m","messages":[{"role":{}}]}"#,
                "messages[0].role",
            ),
            // serde names these fields only in its message.
            (br#"{"messages":[]}"#, "model"),
            (
                br#"{"model":"m","messages":[{"content":"x"}]}"#,
                "messages[0].role",
            ),
            (br#"{"model":"m","model":"n","messages":[]}"#, "model"),
        ];
        for (body, param) in cases {
            let (msg, got) = err(body);
            assert_eq!(got.as_deref(), Some(param), "{msg}");
            assert!(!msg.contains("not valid JSON"), "{msg}");
        }
        // Text that is not JSON stays a syntax error without a param: no string (a lone
        // surrogate escape), no number (out of range), control characters.
        for body in [
            &br#"{"model":"m","messages":[{"role":NaN}]}"#[..],
            br#"{"model":"m","messages":[{"content":"\ud800"}]}"#,
            br#"{"model":"m","messages":[],"x":["\udc00"]}"#,
            br#"{"model":"m","messages":[],"temperature":1e400}"#,
            b"{\"model\":\"m\",\"messages\":[{\"content\":\"\0\"}]}",
        ] {
            let (msg, got) = err(body);
            assert_eq!(got, None, "{msg}");
            assert!(msg.contains("not valid JSON"), "{msg}");
        }
    }

    /// JSON is `application/json` or `application/…+json`, with at most `charset=utf-8`;
    /// anything else, or nothing, is a 415 that says what to send.
    #[test]
    fn the_admin_body_must_be_declared_json() {
        let check = |value: Option<&str>| {
            let mut h = axum::http::HeaderMap::new();
            if let Some(v) = value {
                h.insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_str(v).unwrap(),
                );
            }
            require_json_type(&h).map_err(|e| match e {
                ApiError::UnsupportedMediaType(m) => m,
                other => panic!("{other:?}"),
            })
        };
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/merge-patch+json",
            "application/json;",
        ] {
            assert_eq!(check(Some(ok)), Ok(()), "{ok}");
        }
        for (bad, says) in [
            (None, "the request has a body but no content type"),
            (
                Some("text/plain"),
                "the content type `text/plain` is not JSON",
            ),
            (
                Some("application/x-www-form-urlencoded"),
                "the content type `application/x-www-form-urlencoded` is not JSON",
            ),
            (
                Some("application/jsonx"),
                "the content type `application/jsonx` is not JSON",
            ),
            (
                Some("application/+json"),
                "the content type `application/+json` is not JSON",
            ),
            (
                Some("application/json; charset=latin1"),
                "the content type parameter `charset=latin1` is not taken",
            ),
            (
                Some("application/json; boundary=x"),
                "parameter `boundary=x`",
            ),
            // A quote is part of the value, not a way past the separator.
            (
                Some("application/json; charset=\"utf-8"),
                "parameter `charset=\"utf-8` is not taken",
            ),
            (
                Some("application/json; charset=\"utf-8;x=1\""),
                "parameter `charset=\"utf-8` is not taken",
            ),
        ] {
            let got = check(bad).unwrap_err();
            assert!(got.contains(says), "{bad:?}: {got}");
            assert!(
                got.ends_with("send the body as `content-type: application/json`"),
                "{got}"
            );
        }
        // Two content types, whichever comes first, and one that is not ASCII text.
        for (first, second) in [
            ("application/json", "text/plain"),
            ("text/plain", "application/json"),
        ] {
            let mut h = axum::http::HeaderMap::new();
            for v in [first, second] {
                h.append(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static(v),
                );
            }
            match require_json_type(&h) {
                Err(ApiError::UnsupportedMediaType(m)) => {
                    assert!(
                        m.starts_with("the request gives more than one content type"),
                        "{m}"
                    )
                }
                other => panic!("{other:?}"),
            }
        }
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_bytes(b"application/js\xc3\xa9on").unwrap(),
        );
        match require_json_type(&h) {
            Err(ApiError::UnsupportedMediaType(m)) => {
                assert!(
                    m.starts_with("the content type is not plain ASCII text"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        let status = ApiError::UnsupportedMediaType(String::new()).status();
        assert_eq!(status, axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    /// A value of the wrong type is told as what was wanted and the JSON kind that came —
    /// never the value itself, and without serde's line and column (the path is the place);
    /// an unknown field is named once, not as "invalid value" of itself.
    #[test]
    fn wrong_types_say_what_was_wanted_and_what_came() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            id: Option<String>,
            n: Option<u32>,
            d: Option<i64>,
            x: Option<f64>,
            ok: Option<bool>,
        }
        let long = "z".repeat(10_000);
        for (body, want, param) in [
            (
                r#"{"id": 1}"#.to_string(),
                "invalid value for `id`: expected a string, found a number",
                Some("id"),
            ),
            (
                format!(r#"{{"n": "{long}"}}"#),
                "invalid value for `n`: expected a whole number, 0 or more, found a string",
                Some("n"),
            ),
            (
                r#"{"d": [1]}"#.to_string(),
                "invalid value for `d`: expected a whole number, found an array",
                Some("d"),
            ),
            (
                r#"{"x": {"a": 1}}"#.to_string(),
                "invalid value for `x`: expected a number, found an object",
                Some("x"),
            ),
            (
                r#"{"ok": "yes"}"#.to_string(),
                "invalid value for `ok`: expected a boolean, found a string",
                Some("ok"),
            ),
            (
                r#"{"target_id": "b"}"#.to_string(),
                "unknown field `target_id`, expected one of `id`, `n`, `d`, `x`, `ok`",
                Some("target_id"),
            ),
        ] {
            for got in [
                parse_json::<Body>(body.as_bytes()),
                parse_value::<Body>(serde_json::from_str(&body).unwrap()),
            ] {
                match got {
                    Err(ApiError::InvalidRequest {
                        message, param: p, ..
                    }) => {
                        assert_eq!(message, want);
                        assert_eq!(p.as_deref(), param, "{message}");
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    /// Three bodies serde_json describes by a symptom are told by their cause: a lone half of
    /// a surrogate pair (serde: "unexpected end of hex escape" when text follows it), nesting
    /// past its depth (valid JSON: "recursion limit exceeded"), and a byte-order mark (serde:
    /// "expected value at line 1 column 1"; the admin API said "must be a JSON object").
    #[test]
    fn misleading_syntax_errors_name_their_cause() {
        let err = |b: &[u8]| match parse_json::<ChatCompletionRequest>(b) {
            Err(ApiError::InvalidRequest { message, param, .. }) => (message, param),
            other => panic!("{other:?}"),
        };
        for (body, escape) in [
            (
                r#"{"model":"m","messages":[{"content":"hi \ud800 x"}]}"#,
                r"\ud800",
            ),
            (
                r#"{"model":"m","messages":[{"content":"\uDBFF"}]}"#,
                r"\uDBFF",
            ),
            (
                r#"{"model":"m","messages":[{"content":"a\\\udc00"}]}"#,
                r"\udc00",
            ),
            (
                r#"{"model":"m","messages":[{"content":"\ud83d\ud83d\ude00"}]}"#,
                r"\ud83d",
            ),
            (
                r#"{"model":"m","messages":[{"content":"\ud800\n"}]}"#,
                r"\ud800",
            ),
        ] {
            let (msg, param) = err(body.as_bytes());
            assert_eq!(param, None, "{msg}");
            assert!(
                msg.starts_with(&format!(
                    "the request body is not valid JSON: `{escape}` is half of a UTF-16 surrogate pair, not a character (at line 1 column "
                )),
                "{body}: {msg}"
            );
        }
        // A whole pair, and an escaped backslash before `u`, are text.
        let ok = parse_json::<ChatCompletionRequest>(
            br#"{"model":"m","messages":[{"role":"user","content":"\ud83d\ude00 \\ud800"}]}"#,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let nested = |depth: usize| {
            format!(
                r#"{{"model":"m","messages":[],"x":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        // 127 levels with the body's own object are read; one more is refused.
        let ok = parse_json::<ChatCompletionRequest>(nested(126).as_bytes());
        assert!(ok.is_ok(), "{ok:?}");
        for depth in [127, 50_000] {
            let (msg, param) = err(nested(depth).as_bytes());
            assert_eq!(param, None, "{msg}");
            assert!(
                msg.starts_with(
                    "the request body nests arrays and objects more than 127 levels deep (at line 1 column "
                ),
                "{msg}"
            );
        }
        // Where the typed read stops first on a type serde_json calls a syntax error (an enum
        // given an array: "expected value"), text too deep is still told as too deep (attack
        // 21, F5: the gates' checks).
        #[derive(Debug, serde::Deserialize)]
        enum Kind {
            #[allow(dead_code)]
            A,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Doc {
            #[allow(dead_code)]
            kind: Kind,
        }
        let deep = format!(r#"{{"kind":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        match parse_json::<Doc>(deep.as_bytes()) {
            Err(ApiError::InvalidRequest { message, .. }) => {
                assert!(message.contains("more than 127 levels deep"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let bom = b"\xEF\xBB\xBF{\"model\":\"m\",\"messages\":[]}";
        let want =
            "the request body starts with a byte-order mark (U+FEFF); send the JSON without one";
        assert_eq!(err(bom), (want.to_string(), None));
        match require_object(bom) {
            Err(ApiError::InvalidRequest { message, .. }) => assert_eq!(message, want),
            other => panic!("{other:?}"),
        }
        // After whitespace too; and a body that is not a JSON value at all is not "not an
        // object": the parser says what it is, as on /v1.
        let spaced = b" \n\xEF\xBB\xBF{}";
        assert_eq!(err(spaced), (want.to_string(), None));
        assert!(require_object(spaced).is_err());
        for stray in [&b"\xff{}"[..], b"\x00{}", b" x{}"] {
            assert!(require_object(stray).is_ok(), "{stray:?}");
        }
        for value in [
            &b"[]"[..],
            b" \"x\"",
            b"1",
            b"-1",
            b"true",
            b"null",
            b"false",
        ] {
            match require_object(value) {
                Err(ApiError::InvalidRequest { message, .. }) => {
                    assert_eq!(message, "the request body must be a JSON object")
                }
                other => panic!("{value:?}: {other:?}"),
            }
        }
    }
}
