//! Token counts when the provider reports none (a cut stream, a server without usage): counted
//! with tiktoken (`o200k_base` for OpenAI's current models, `cl100k_base` for everything else, an
//! approximation for non-OpenAI tokenizers), and always marked *estimated* on the record.
//!
//! Counting is bounded, whatever the input: the tokenizer only ever sees pieces of at most
//! [`PIECE_BYTES`] (its pattern recursion on one huge run of spaces overflowed the stack), and
//! text beyond [`EXACT_LIMIT_BYTES`] is estimated at four bytes a token instead of tokenized, so
//! one request can never hold a worker for long. Reservations before a request is sent use
//! [`chat_prompt_bound`], an upper bound computed from byte lengths for short and large prompts.

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;
use tollgate_types::openai::{ChatCompletionRequest, EmbeddingInput, EmbeddingsRequest, Usage};

fn o200k() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().ok()).as_ref()
}

fn cl100k() -> Option<&'static CoreBPE> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

/// The largest piece of text the tokenizer is given at once, bytes.
pub const PIECE_BYTES: usize = 8 * 1024;

/// Text up to this size is tokenized; beyond it, estimated at four bytes a token.
pub const EXACT_LIMIT_BYTES: usize = 1024 * 1024;

/// Prompts up to this size are counted exactly for reservations; larger ones are bounded by bytes.
pub const EXACT_RESERVATION_BYTES: usize = 16 * 1024;

/// Prompts up to this size are held at their byte length, not counted: the hold is then at most
/// about 800 tokens more than the count — a fifth of the default output hold
/// (`DEFAULT_OUTPUT_RESERVATION`, 4,096) — and the tokenizer, which costs more on the request
/// path than the whole guard for a short prompt, is not run. The charge is never affected: it
/// is the provider's reported usage.
pub const BYTES_RESERVATION_BELOW: usize = 1024;

/// Tokens of `text` for `model`. Bounded in time and stack for any input (see the module docs).
pub fn count(model: &str, text: &str) -> u64 {
    if text.len() > EXACT_LIMIT_BYTES {
        return (text.len() as u64).div_ceil(4);
    }
    let o200k_family = ["gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"]
        .iter()
        .any(|p| model.starts_with(p));
    let bpe = if o200k_family { o200k() } else { cl100k() };
    match bpe {
        Some(b) => pieces(text)
            .map(|piece| b.encode_ordinary(piece).len() as u64)
            .sum(),
        // The encodings ship inside tiktoken-rs; if one ever failed to load, fall back to the
        // usual four characters per token rather than counting nothing.
        None => (text.chars().count() as u64).div_ceil(4),
    }
}

/// `text` cut into pieces of at most [`PIECE_BYTES`], at a whitespace boundary when one is near
/// the end of the piece (so words are rarely split), always at a character boundary.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= PIECE_BYTES {
            return Some(std::mem::take(&mut rest));
        }
        let mut end = PIECE_BYTES;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        // Prefer to cut after whitespace in the last quarter of the piece (which starts at a
        // character boundary too).
        let mut quarter = PIECE_BYTES * 3 / 4;
        while !rest.is_char_boundary(quarter) {
            quarter += 1;
        }
        if let Some(ws) = rest[quarter..end].rfind(char::is_whitespace) {
            let at = quarter + ws;
            let after = at + rest[at..].chars().next().map_or(1, char::len_utf8);
            if after > 0 && after <= end {
                end = after;
            }
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// An upper bound of a chat request's input tokens, for reservations on the request path: the
/// exact count for prompts of 1 to 16 KiB, and for shorter ([`BYTES_RESERVATION_BELOW`]) and
/// longer ones the UTF-8 byte length of every counted text plus the per-message overhead (a
/// token is never shorter than one byte).
pub fn chat_prompt_bound(model: &str, req: &ChatCompletionRequest) -> u64 {
    let (overhead, bytes) = prompt_size(req);
    if (BYTES_RESERVATION_BELOW..=EXACT_RESERVATION_BYTES).contains(&bytes) {
        return chat_prompt(model, req);
    }
    overhead + bytes as u64
}

/// Input tokens of a chat request, with OpenAI's per-message overhead (3 per message, 1 per
/// name, 3 to prime the answer). Prompts whose texts add up to more than [`EXACT_LIMIT_BYTES`]
/// are estimated at four bytes a token.
pub fn chat_prompt(model: &str, req: &ChatCompletionRequest) -> u64 {
    let (overhead, bytes) = prompt_size(req);
    if bytes > EXACT_LIMIT_BYTES {
        return overhead + (bytes as u64).div_ceil(4);
    }
    let mut n = overhead;
    for m in &req.messages {
        if let Some(c) = &m.content {
            n += count(model, &c.joined_text());
        }
        if let Some(name) = &m.name {
            n += count(model, name);
        }
        for call in m.tool_calls.iter().flatten() {
            n += count(model, &call.function.name) + count(model, &call.function.arguments);
        }
    }
    if let Some(tools) = &req.tools {
        let text = serde_json::to_string(tools).unwrap_or_default();
        n += count(model, &text);
    }
    n
}

/// (per-message overhead tokens, UTF-8 bytes of every counted text) of a chat request.
fn prompt_size(req: &ChatCompletionRequest) -> (u64, usize) {
    let mut bytes = 0usize;
    let mut overhead = 3u64;
    for m in &req.messages {
        overhead += 3;
        if let Some(c) = &m.content {
            bytes += c.text_len();
        }
        if let Some(name) = &m.name {
            overhead += 1;
            bytes += name.len();
        }
        for call in m.tool_calls.iter().flatten() {
            bytes += call.function.name.len() + call.function.arguments.len();
        }
    }
    if let Some(tools) = &req.tools {
        bytes += serde_json::to_vec(tools).map_or(0, |v| v.len());
    }
    (overhead, bytes)
}

/// Estimated usage of a chat answer from its request and the text it produced.
pub fn chat_usage(model: &str, req: &ChatCompletionRequest, output_text: &str) -> Usage {
    let prompt = chat_prompt(model, req);
    let completion = count(model, output_text);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        ..Usage::default()
    }
}

/// Estimated usage of an embeddings request.
pub fn embeddings_usage(model: &str, req: &EmbeddingsRequest) -> Usage {
    let prompt = match &req.input {
        EmbeddingInput::One(t) => count(model, t),
        EmbeddingInput::Many(v) => v.iter().map(|t| count(model, t)).sum(),
        EmbeddingInput::Tokens(t) => t.len() as u64,
        EmbeddingInput::ManyTokens(v) => v.iter().map(|t| t.len() as u64).sum(),
    };
    Usage {
        prompt_tokens: prompt,
        total_tokens: prompt,
        ..Usage::default()
    }
}

/// Tokens a budget or token limit reserves for an embeddings request: an upper bound, cheap to
/// compute on the request path. Inputs adding up to [`EXACT_RESERVATION_BYTES`] are counted
/// exactly, larger ones by bytes (no tokenizer makes more tokens than bytes); every text input adds
/// [`PER_INPUT_RESERVATION`] for what a provider may count per input. Token-array inputs are their
/// length.
pub fn embeddings_prompt_bound(model: &str, req: &EmbeddingsRequest) -> u64 {
    let texts: Vec<&str> = match &req.input {
        EmbeddingInput::One(t) => vec![t.as_str()],
        EmbeddingInput::Many(v) => v.iter().map(String::as_str).collect(),
        EmbeddingInput::Tokens(t) => return t.len() as u64,
        EmbeddingInput::ManyTokens(v) => return v.iter().map(|t| t.len() as u64).sum(),
    };
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let per_input = PER_INPUT_RESERVATION * texts.len() as u64;
    if bytes <= EXACT_RESERVATION_BYTES {
        texts.iter().map(|t| count(model, t)).sum::<u64>() + per_input
    } else {
        bytes as u64 + per_input
    }
}

/// The text that token ids stand for in `cl100k_base`, the encoding of OpenAI's embedding
/// models (`text-embedding-3-*`, `ada-002`), which decode token-array inputs with it; `None`
/// when an id is not in it. Bytes that do not form UTF-8 on their own (an id that is part of a
/// character) read as U+FFFD.
pub fn embedding_tokens_text(ids: &[u32]) -> Option<String> {
    let bytes = cl100k()?.decode_bytes(ids).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `text` as `cl100k_base` token ids (the inverse of [`embedding_tokens_text`] for valid text;
/// special tokens such as `<|endoftext|>` stay special tokens).
pub fn embedding_text_tokens(text: &str) -> Vec<u32> {
    cl100k().map_or_else(Vec::new, |b| b.encode_with_special_tokens(text))
}

/// Tokens reserved per embeddings input beyond its text (some servers count a few per input).
pub const PER_INPUT_RESERVATION: u64 = 4;

/// The text of a complete OpenAI chat answer (contents and tool-call arguments), for estimation.
pub fn answer_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let mut out = String::new();
    for choice in v["choices"].as_array().into_iter().flatten() {
        push_message_text(&mut out, &choice["message"]);
    }
    out
}

/// The text of streamed chunks (delta contents and tool-call argument pieces), for estimation.
pub fn chunks_text<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut out = String::new();
    for data in chunks {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            for choice in v["choices"].as_array().into_iter().flatten() {
                push_message_text(&mut out, &choice["delta"]);
            }
        }
    }
    out
}

fn push_message_text(out: &mut String, m: &serde_json::Value) {
    if let Some(t) = m["content"].as_str() {
        out.push_str(t);
    }
    for call in m["tool_calls"].as_array().into_iter().flatten() {
        out.push_str(call["function"]["name"].as_str().unwrap_or_default());
        out.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_token_ids_read_as_their_text_and_back() {
        let text = "mail ann@example.org, card 4111 1111 1111 1111 — déjà vu";
        let ids = embedding_text_tokens(text);
        assert!(ids.len() > 5);
        assert_eq!(embedding_tokens_text(&ids).as_deref(), Some(text));
        // An id outside the vocabulary cannot be read.
        assert_eq!(embedding_tokens_text(&[u32::MAX]), None);
        assert_eq!(embedding_tokens_text(&[]).as_deref(), Some(""));
        // A special token read and written back is the special token again.
        let eot = embedding_text_tokens("<|endoftext|>");
        assert_eq!(eot.len(), 1);
        assert_eq!(
            embedding_tokens_text(&eot).as_deref(),
            Some("<|endoftext|>")
        );
        // Ids that hold part of a character read as U+FFFD, not as unreadable.
        let crab = embedding_text_tokens("🦀");
        assert!(crab.len() > 1, "{crab:?}");
        assert_eq!(
            embedding_tokens_text(&crab[..1]).as_deref(),
            Some("\u{FFFD}")
        );
    }

    #[test]
    fn counts_with_the_model_family_tokenizer() {
        let text = "Tollgate measures every request exactly.";
        let a = count("gpt-4o-mini", text);
        let b = count("claude-3-5-haiku", text);
        assert!((5..=12).contains(&a), "{a}");
        assert!((5..=12).contains(&b), "{b}");
        assert_eq!(count("gpt-4o", ""), 0);
    }

    #[test]
    fn huge_and_pathological_texts_are_counted_without_blowing_up() {
        // One million spaces overflowed the tokenizer's stack when given at once.
        let spaces = " ".repeat(1_000_000);
        let n = count("gpt-4o-mini", &spaces);
        assert!(n > 0 && n <= 1_000_000, "{n}");
        let n = count("claude-3-5-haiku", &spaces);
        assert!(n > 0 && n <= 1_000_000, "{n}");
        // Beyond the exact limit, four bytes a token.
        let huge = "a".repeat(EXACT_LIMIT_BYTES + 4);
        assert_eq!(count("gpt-4o", &huge), (EXACT_LIMIT_BYTES as u64 + 4) / 4);
        // Pieces cover the text exactly, at character boundaries, within the size limit.
        let text = "héllo wörld ".repeat(5_000) + &"x".repeat(20_000) + "🎉".repeat(3_000).as_str();
        let parts: Vec<&str> = pieces(&text).collect();
        assert_eq!(parts.concat(), text);
        assert!(
            parts
                .iter()
                .all(|p| p.len() <= PIECE_BYTES && !p.is_empty())
        );
        // Counting in pieces stays close to counting at once on ordinary text.
        let prose = "The quick brown fox jumps over the lazy dog. ".repeat(2_000);
        let whole = o200k().unwrap().encode_ordinary(&prose).len() as u64;
        let pieced = count("gpt-4o", &prose);
        assert!(pieced.abs_diff(whole) * 100 <= whole, "{pieced} vs {whole}");
    }

    /// Found by the gateway's request fuzzing (a 500 on a metered key): a character across
    /// the start of a piece's last quarter panicked.
    #[test]
    fn a_character_across_the_last_quarter_is_no_panic() {
        for lead in ["", "a", "ab", "abc"] {
            for c in ["é", "€", "🎉"] {
                let text = format!("{lead}{}", c.repeat(PIECE_BYTES));
                let parts: Vec<&str> = pieces(&text).collect();
                assert_eq!(parts.concat(), text);
                assert!(count("gpt-4o", &text) > 0);
            }
        }
    }

    #[test]
    fn the_reservation_bound_is_never_below_the_count() {
        let small: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"Hello there, general Kenobi"}]}"#,
        )
        .unwrap();
        // Under 1 KiB: held at its bytes (27) plus the overhead (3 + 3), above the count.
        assert_eq!(chat_prompt_bound("gpt-4o", &small), 3 + 3 + 27);
        assert!(chat_prompt_bound("gpt-4o", &small) > chat_prompt("gpt-4o", &small));
        // From 1 KiB (exactly) to 16 KiB: counted.
        for text in ["a".repeat(1024), "word ".repeat(250), "word ".repeat(1_000)] {
            let medium: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
                "model": "m", "messages": [{"role": "user", "content": text}]
            }))
            .unwrap();
            assert_eq!(
                chat_prompt_bound("gpt-4o", &medium),
                chat_prompt("gpt-4o", &medium),
                "{} bytes",
                text.len()
            );
        }
        let text = "word ".repeat(10_000);
        let big: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": text}]
        }))
        .unwrap();
        let bound = chat_prompt_bound("gpt-4o", &big);
        assert!(bound >= chat_prompt("gpt-4o", &big));
        assert_eq!(bound, 3 + 3 + 50_000);
    }

    #[test]
    fn chat_usage_counts_messages_and_output() {
        let req: ChatCompletionRequest = serde_json::from_str(r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello there"}]}"#).unwrap();
        let u = chat_usage("gpt-4o-mini", &req, "Hi! How can I help?");
        assert!(u.prompt_tokens >= 3 + 2 * 3 + 4, "{u:?}");
        assert!(u.completion_tokens >= 5, "{u:?}");
        assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
        let text = chunks_text([
            br#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#.as_slice(),
            br#"{"choices":[{"index":0,"delta":{"content":" there"}}]}"#.as_slice(),
        ]);
        assert_eq!(text, "Hi there");
        assert_eq!(answer_text(br#"{"choices":[{"message":{"content":"ok","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}}]}"#), "okf{}");
    }
}
