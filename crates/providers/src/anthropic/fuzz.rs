//! Structured fuzzing of the Anthropic translation, both ways.
//!
//! - Any valid OpenAI chat request translates without a panic, into a request that Anthropic's
//!   types read back, no key twice, with alternating user and assistant turns.
//! - Any answer body and any stream — valid, or valid JSON with wrong types at any field, numbers
//!   at the edges (`u64::MAX` usage, `-0`, `1e400`), unknown events, non-JSON data — becomes
//!   OpenAI JSON or a [`ProviderError`], never a panic.

use super::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select};

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        // `PROPTEST_CASES=5000` for a longer hunt.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(CASES),
        ..ProptestConfig::default()
    }
}

// ---- Values --------------------------------------------------------------------------------

/// Text, with what breaks naive code now and then: NUL, bidi overrides, emoji, combining marks.
fn text() -> BoxedStrategy<String> {
    let odd = select(vec![
        "\u{0}",
        "\u{202E}",
        "\u{1F600}",
        "\u{1F469}\u{200D}\u{1F467}",
        "e\u{301}\u{302}",
        "\u{FEFF}",
        "\u{10FFFF}",
        "\"\\\n\r",
        "data:image/png;base64,",
        ",",
    ]);
    prop_oneof![
        6 => "[a-zA-Z0-9 ]{0,12}",
        2 => vec(odd, 1..4).prop_map(|v| v.concat()),
        1 => any::<String>(),
        1 => (1usize..5_000).prop_map(|n| "\u{1F600}".repeat(n)),
    ]
    .boxed()
}

/// A token count: small, or at the edges of `u64`.
fn tokens() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..10_000, 1 => Just(u64::MAX), 1 => Just(u64::MAX / 2 + 1), 1 => any::<u64>()]
}

/// Any JSON value, shallow.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(vec![1e308, -0.0, 5e-324, 1.5]).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-z_]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// JSON of the wrong type for almost any field, or a number at the edges.
fn wrong() -> impl Strategy<Value = Value> {
    select(vec![
        json!("x"),
        json!(""),
        json!(-1),
        json!(1.5),
        json!(-0.0),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!([{}]),
        json!({"type": "text"}),
    ])
}

/// Raw text no `Value` holds, spliced in place of a marker.
fn raw() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "18446744073709551616",
            "1e400",
            "-0",
            "\"\\ud800\"",
            "NaN",
            "4294967296",
        ])
        .prop_map(str::to_string),
        select(vec![127usize, 128, 10_000]).prop_map(|d| format!(
            "{}{}",
            "[".repeat(d),
            "]".repeat(d)
        )),
    ]
}

/// Every path to a node of `v`, the root (empty path) first.
fn paths(v: &Value) -> Vec<Vec<Value>> {
    fn walk(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        out.push(at.clone());
        match v {
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    at.push(Value::from(i));
                    walk(x, at, out);
                    at.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    at.push(Value::from(k.as_str()));
                    walk(x, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Value::Number(i) => v.get_mut(i.as_u64()? as usize),
        Value::String(k) => v.get_mut(k.as_str()),
        _ => None,
    })
}

/// What to do to one node of a valid JSON value.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    Raw(String),
}

fn mutation() -> impl Strategy<Value = (Index, Mutation)> {
    let m = prop_oneof![
        6 => wrong().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        1 => json_value().prop_map(Mutation::Replace),
        1 => raw().prop_map(Mutation::Raw),
    ];
    (any::<Index>(), m)
}

/// `v` with `mutations` applied, as JSON text.
fn mutate(mut v: Value, mutations: &[(Index, Mutation)]) -> String {
    const MARK: &str = "\u{E000}raw\u{E000}";
    let mut raws = Vec::new();
    for (at, m) in mutations {
        let all = paths(&v);
        let path = at.get(&all).clone();
        match m {
            Mutation::Replace(x) => {
                if let Some(n) = node_mut(&mut v, &path) {
                    *n = x.clone();
                }
            }
            Mutation::Raw(r) => {
                if let Some(n) = node_mut(&mut v, &path) {
                    *n = Value::from(format!("{MARK}{}", raws.len()));
                    raws.push(r.clone());
                }
            }
            Mutation::Remove => {
                if let Some((last, parent)) = path.split_last() {
                    match (node_mut(&mut v, parent), last) {
                        (Some(Value::Object(o)), Value::String(k)) => {
                            o.remove(k);
                        }
                        (Some(Value::Array(a)), Value::Number(i)) => {
                            if let Some(i) = i.as_u64().map(|i| i as usize).filter(|i| *i < a.len())
                            {
                                a.remove(i);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let mut text = v.to_string();
    for (i, r) in raws.iter().enumerate() {
        text = text.replacen(&Value::from(format!("{MARK}{i}")).to_string(), r, 1);
    }
    text
}

// ---- OpenAI requests ------------------------------------------------------------------------

fn content() -> BoxedStrategy<Value> {
    let part = prop_oneof![
        3 => text().prop_map(|t| json!({"type": "text", "text": t})),
        1 => Just(json!({"type": "text"})),
        1 => select(vec!["https://e.x/a.png", "data:image/png;base64,AAAA", "data:,", "data:x", ""])
            .prop_map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
        1 => json_value().prop_map(|x| json!({"type": "image_url", "image_url": x})),
        1 => Just(json!({"type": "input_audio", "input_audio": {"data": "AAAA"}})),
    ];
    prop_oneof![
        3 => text().prop_map(Value::from),
        2 => vec(part, 0..4).prop_map(Value::Array),
    ]
    .boxed()
}

fn message() -> impl Strategy<Value = Value> {
    let arguments = prop_oneof![
        Just("{\"a\":1}".to_string()),
        Just("[1,2]".to_string()),
        text(),
        select(vec![64usize, 127, 128, 10_000]).prop_map(|d| format!(
            "{}{}",
            "[".repeat(d),
            "]".repeat(d)
        )),
    ];
    let call = ("[a-z0-9_]{0,8}", "[a-z_]{0,8}", arguments).prop_map(|(id, name, args)| {
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
    });
    (
        select(vec![
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ]),
        option::weighted(0.85, content()),
        option::weighted(0.2, "[a-z]{0,8}"),
        option::weighted(0.4, vec(call, 0..3)),
        option::weighted(0.8, "[a-z0-9_]{0,8}"),
    )
        .prop_map(|(role, content, name, calls, call_id)| {
            let mut m = Map::new();
            m.insert("role".into(), role.into());
            if let Some(c) = content {
                m.insert("content".into(), c);
            }
            if let Some(n) = name {
                m.insert("name".into(), n.into());
            }
            if let (Some(c), "assistant") = (calls, role) {
                m.insert("tool_calls".into(), Value::Array(c));
            }
            if let (Some(id), "tool") = (call_id, role) {
                m.insert("tool_call_id".into(), id.into());
            }
            Value::Object(m)
        })
}

/// A valid chat request: every field the translation reads, and extras named like Anthropic's
/// own fields.
fn chat_request() -> impl Strategy<Value = ChatCompletionRequest> {
    let tool = ("[a-z_]{0,8}", option::of(text()), option::of(json_value())).prop_map(
        |(name, description, parameters)| {
            json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}})
        },
    );
    let tool_choice = prop_oneof![
        select(vec!["auto", "none", "required"]).prop_map(Value::from),
        "[a-z]{0,5}".prop_map(|n| json!({"type": "function", "function": {"name": n}})),
        json_value(),
    ];
    let response_format = prop_oneof![
        Just(json!({"type": "text"})),
        Just(json!({"type": "json_object"})),
        Just(json!({"type": "json_schema"})),
        json_value().prop_map(
            |s| json!({"type": "json_schema", "json_schema": {"name": "x", "schema": s}})
        ),
        json_value().prop_map(|s| json!({"type": "json_schema", "json_schema": s})),
    ];
    let stop = prop_oneof![
        text().prop_map(Value::from),
        vec(text(), 0..4).prop_map(|v| json!(v)),
    ];
    let sampling = (
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(0u32..4),
        option::of(select(vec![0.0, 1.0, -0.0, 1e308, 5e-324])),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
    );
    let extra_key = prop_oneof![
        Just("metadata".to_string()),
        Just("system".to_string()),
        Just("stop_sequences".to_string()),
        Just("top_k".to_string()),
        Just("thinking".to_string()),
        "x_[a-z]{1,5}",
    ];
    (
        vec(message(), 0..6),
        sampling,
        option::of(vec(tool, 0..3)),
        option::of(tool_choice),
        option::of(response_format),
        option::of(stop),
        option::of(text()),
        btree_map(extra_key, json_value(), 0..3),
    )
        .prop_map(
            |(messages, sampling, tools, tool_choice, format, stop, user, extra)| {
                let (max_tokens, max_completion, n, temperature, stream, parallel) = sampling;
                let mut r = json!({"model": "route", "messages": messages});
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        r[k] = v;
                    }
                };
                put("max_tokens", max_tokens.map(Value::from));
                put("max_completion_tokens", max_completion.map(Value::from));
                put("n", n.map(Value::from));
                put("temperature", temperature.map(Value::from));
                put("top_p", temperature.map(Value::from));
                put("stream", stream.map(Value::from));
                put("parallel_tool_calls", parallel.map(Value::from));
                put("tools", tools.map(Value::Array));
                put("tool_choice", tool_choice);
                put("response_format", format);
                put("stop", stop);
                put("user", user.map(Value::from));
                for (k, v) in extra {
                    r[k.as_str()] = v;
                }
                match serde_json::from_value(r.clone()) {
                    Ok(req) => req,
                    Err(e) => panic!("the generator made an invalid request ({e}): {r}"),
                }
            },
        )
}

/// The keys of a JSON object, repeats kept.
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any valid chat request translates (or, for `n` > 1, is refused as unsupported) into a
    /// Messages request with no key twice, turns Anthropic's types read back, with `user` and
    /// `assistant` turns alternating, every tool call and tool result kept, and a `max_tokens`.
    #[test]
    fn any_valid_chat_request_translates(req in chat_request()) {
        let m = match to_messages_request(&req, "claude-x") {
            Err(ProviderError::Unsupported(_)) => {
                prop_assert!(req.n.unwrap_or(1) > 1);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error: {e}"))),
            Ok(m) => m,
        };
        prop_assert!(req.n.unwrap_or(1) <= 1);
        let text = serde_json::to_string(&m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let keys: Keys = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut unique = keys.0.clone();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len(), keys.0.len(), "a key twice: {}", text);
        // (Through a `Value`: tool arguments nested 127 deep are legal input, but as `input`
        // they sit deeper than serde_json reads from text.)
        let v = serde_json::to_value(&m.messages).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let turns: Vec<an::Message> =
            serde_json::from_value(v).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(&turns, &m.messages);
        prop_assert_eq!(m.max_tokens, req.output_cap().unwrap_or(DEFAULT_MAX_TOKENS));
        for pair in m.messages.windows(2) {
            prop_assert_ne!(&pair[0].role, &pair[1].role);
        }
        let blocks: Vec<&an::ContentBlock> = m
            .messages
            .iter()
            .inspect(|t| assert!(t.role == "user" || t.role == "assistant", "{}", t.role))
            .flat_map(|t| match &t.content {
                an::MessageContent::Blocks(b) => b.iter().collect::<Vec<_>>(),
                an::MessageContent::Text(_) => Vec::new(),
            })
            .collect();
        let calls = req
            .messages
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .map(|m| m.tool_calls.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
        let uses = blocks.iter().filter(|b| matches!(b, an::ContentBlock::ToolUse { .. })).count();
        prop_assert_eq!(uses, calls);
        let results = req
            .messages
            .iter()
            .filter(|m| matches!(m.role, Role::Tool | Role::Function))
            .count();
        let kept = blocks.iter().filter(|b| matches!(b, an::ContentBlock::ToolResult { .. })).count();
        prop_assert_eq!(kept, results);
    }
}

// ---- Anthropic answers ----------------------------------------------------------------------

fn block() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(|t| json!({"type": "text", "text": t})),
        ("[a-z0-9]{0,6}", "[a-z_]{0,6}", json_value()).prop_map(
            |(id, name, input)| json!({"type": "tool_use", "id": id, "name": name, "input": input})
        ),
        text().prop_map(|t| json!({"type": "thinking", "thinking": t, "signature": "s"})),
        Just(json!({"type": "image", "source": {"type": "url", "url": "x"}})),
        Just(json!({"type": "tool_result", "tool_use_id": "t"})),
    ]
}

fn usage() -> impl Strategy<Value = Value> {
    (tokens(), tokens(), option::of(tokens()), option::of(tokens())).prop_map(|(i, o, w, r)| {
        json!({"input_tokens": i, "output_tokens": o, "cache_creation_input_tokens": w, "cache_read_input_tokens": r})
    })
}

fn stop_reason() -> impl Strategy<Value = Value> {
    prop_oneof![
        select(vec![
            "end_turn",
            "max_tokens",
            "stop_sequence",
            "tool_use",
            "pause_turn",
            "refusal"
        ])
        .prop_map(Value::from),
        Just(Value::Null),
        text().prop_map(Value::from),
    ]
}

/// A valid `MessagesResponse` body.
fn message_response() -> impl Strategy<Value = Value> {
    (
        "[a-z0-9_]{0,10}",
        vec(block(), 0..4),
        stop_reason(),
        usage(),
    )
        .prop_map(|(id, content, stop, usage)| {
            json!({"id": id, "type": "message", "role": "assistant", "content": content,
                   "model": "claude-x", "stop_reason": stop, "stop_sequence": null, "usage": usage})
        })
}

/// Checks an OpenAI completion made from an Anthropic answer.
fn check_complete(c: &Complete) -> Result<(), TestCaseError> {
    let v: oa::ChatCompletion = serde_json::from_slice(&c.body)
        .map_err(|e| TestCaseError::fail(format!("not a chat completion ({e})")))?;
    prop_assert_eq!(v.choices.len(), 1);
    let u = c
        .usage
        .as_ref()
        .ok_or_else(|| TestCaseError::fail("no usage"))?;
    prop_assert_eq!(Some(u), v.usage.as_ref());
    prop_assert!(u.total_tokens >= u.prompt_tokens && u.total_tokens >= u.completion_tokens);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// A valid answer body becomes a chat completion whose usage adds up (saturating, never
    /// wrapping, at `u64::MAX`); one with wrong types, out-of-range numbers or fields removed
    /// becomes that or `InvalidResponse`, never a panic.
    #[test]
    fn any_answer_body_translates_or_is_invalid(
        body in message_response(),
        mutations in vec(mutation(), 0..3),
    ) {
        let valid = mutations.is_empty();
        let text = mutate(body, &mutations);
        match complete(text.as_bytes()) {
            Ok(c) => check_complete(&c)?,
            Err(ProviderError::InvalidResponse(_)) if !valid => {}
            Err(e) => return Err(TestCaseError::fail(format!("{e}: {text}"))),
        }
    }
}

// ---- Anthropic streams ----------------------------------------------------------------------

/// One valid stream event.
fn event() -> impl Strategy<Value = Value> {
    let index = prop_oneof![0u32..4, Just(u32::MAX)];
    let delta = prop_oneof![
        text().prop_map(|t| json!({"type": "text_delta", "text": t})),
        text().prop_map(|t| json!({"type": "input_json_delta", "partial_json": t})),
        text().prop_map(|t| json!({"type": "thinking_delta", "thinking": t})),
        Just(json!({"type": "signature_delta", "signature": "s"})),
        Just(json!({"type": "citations_delta", "citation": {}})),
    ];
    prop_oneof![
        2 => message_response().prop_map(|m| json!({"type": "message_start", "message": m})),
        2 => (index.clone(), block()).prop_map(|(i, b)| json!({"type": "content_block_start", "index": i, "content_block": b})),
        6 => (index.clone(), delta).prop_map(|(i, d)| json!({"type": "content_block_delta", "index": i, "delta": d})),
        1 => index.prop_map(|i| json!({"type": "content_block_stop", "index": i})),
        2 => (stop_reason(), option::of(usage()))
            .prop_map(|(s, u)| json!({"type": "message_delta", "delta": {"stop_reason": s}, "usage": u})),
        1 => Just(json!({"type": "message_stop"})),
        1 => Just(json!({"type": "ping"})),
        1 => text().prop_map(|m| json!({"type": "error", "error": {"type": "overloaded_error", "message": m}})),
        1 => Just(json!({"type": "some_future_event", "x": 1})),
    ]
}

/// The data of one SSE event: a valid event, one mutated, or not JSON at all.
fn event_data() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => event().prop_map(|e| e.to_string()),
        3 => (event(), vec(mutation(), 1..3)).prop_map(|(e, m)| mutate(e, &m)),
        1 => select(vec!["", "[DONE]", "{", "null", "\"error\"", "{\"type\":\"error\"}", "{\"type\":1}"])
            .prop_map(str::to_string),
    ]
}

/// Drives an Anthropic stream over `body` to its end: the chunks and how it ended.
async fn drive(body: String) -> (Vec<Chunk>, Result<(), ProviderError>) {
    let resp = crate::transport::Response::from(reqwest::Response::from(http::Response::new(body)));
    let mut s = AnthropicStream::new(SseReader::new(resp));
    let mut chunks = Vec::new();
    loop {
        match s.next().await {
            Ok(Some(c)) => chunks.push(c),
            Ok(None) => return (chunks, Ok(())),
            Err(e) => return (chunks, Err(e)),
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any sequence of events — valid, mutated, unknown, not JSON — becomes OpenAI chunks that
    /// parse, and then an end: `Ok(None)` right after the usage chunk of a `message_stop`, or a
    /// `ProviderError`; never a panic.
    #[test]
    fn any_stream_translates_or_fails_cleanly(events in vec(event_data(), 0..12)) {
        let body: String = events.iter().map(|d| format!("data: {d}\n\n")).collect();
        let rt = tokio::runtime::Builder::new_current_thread().build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (chunks, end) = rt.block_on(drive(body.clone()));
        for c in &chunks {
            let chunk: oa::ChatCompletionChunk = serde_json::from_slice(&c.data)
                .map_err(|e| TestCaseError::fail(format!("not a chunk ({e})")))?;
            prop_assert_eq!(c.usage_only, chunk.choices.is_empty());
            prop_assert_eq!(c.usage_only, c.usage.is_some());
            if let Some(u) = &c.usage {
                prop_assert!(u.total_tokens >= u.prompt_tokens && u.total_tokens >= u.completion_tokens);
            }
        }
        match end {
            Ok(()) => prop_assert!(chunks.last().is_some_and(|c| c.usage_only), "{}", body),
            Err(ProviderError::Truncated | ProviderError::StreamError(_) | ProviderError::InvalidResponse(_)) => {}
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        }
    }
}

/// Found by fuzzing: `metadata` among a request's extra fields beside `user` (which becomes
/// Anthropic's `metadata`) was sent upstream twice, and the upstream refused the duplicate key.
#[test]
fn a_passed_through_field_never_repeats_a_translated_one() {
    let r: ChatCompletionRequest = serde_json::from_value(json!({
        "model": "r", "user": "u1", "stop": "END",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}],
        "metadata": {"k": "v"}, "system": "mine", "stop_sequences": ["mine"], "top_k": 3
    }))
    .unwrap();
    let m = to_messages_request(&r, "c").unwrap();
    let text = serde_json::to_string(&m).unwrap();
    for key in ["\"metadata\"", "\"system\"", "\"stop_sequences\""] {
        assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
    }
    assert_eq!(m.metadata, Some(json!({"user_id": "u1"})));
    assert_eq!(m.extra["top_k"], 3);
    // Without the translated field, the passed-through one goes as it came.
    let r: ChatCompletionRequest = serde_json::from_value(json!({
        "model": "r", "messages": [{"role": "user", "content": "x"}], "metadata": {"user_id": "u2"}
    }))
    .unwrap();
    let m = to_messages_request(&r, "c").unwrap();
    assert_eq!(m.extra["metadata"], json!({"user_id": "u2"}));
}

/// Found by fuzzing: usage near `u64::MAX` overflowed the sum of input kinds (a panic in debug
/// builds, a wrapped count in release) in answers and in streams; the sums saturate.
#[test]
fn usage_at_the_edge_of_u64_saturates() {
    let body = json!({
        "id": "m", "type": "message", "role": "assistant", "content": [], "model": "c",
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": u64::MAX, "output_tokens": 5, "cache_read_input_tokens": 1}
    });
    let c = complete(body.to_string().as_bytes()).unwrap();
    let u = c.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.total_tokens), (u64::MAX, u64::MAX));
    assert_eq!(u.cached_tokens(), 1);
    let events = [
        json!({"type": "message_start", "message": body}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": u64::MAX}}),
        json!({"type": "message_stop"}),
    ];
    let sse: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (chunks, end) = rt.block_on(drive(sse));
    assert!(end.is_ok(), "{end:?}");
    let u = chunks.last().unwrap().usage.clone().unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (u64::MAX, u64::MAX, u64::MAX)
    );
}
