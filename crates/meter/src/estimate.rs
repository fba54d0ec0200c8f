//! Token counts when the provider reports none (a cut stream, a server without usage): counted
//! with tiktoken (`o200k_base` for OpenAI's current models, `cl100k_base` for everything else, an
//! approximation for non-OpenAI tokenizers), and always marked *estimated* on the record.

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

/// Tokens of `text` for `model`.
pub fn count(model: &str, text: &str) -> u64 {
    let o200k_family = ["gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"]
        .iter()
        .any(|p| model.starts_with(p));
    let bpe = if o200k_family { o200k() } else { cl100k() };
    match bpe {
        Some(b) => b.encode_ordinary(text).len() as u64,
        // The encodings ship inside tiktoken-rs; if one ever failed to load, fall back to the
        // usual four characters per token rather than counting nothing.
        None => (text.chars().count() as u64).div_ceil(4),
    }
}

/// Input tokens of a chat request, with OpenAI's per-message overhead (3 per message, 1 per
/// name, 3 to prime the answer).
pub fn chat_prompt(model: &str, req: &ChatCompletionRequest) -> u64 {
    let mut n = 3;
    for m in &req.messages {
        n += 3;
        if let Some(c) = &m.content {
            n += count(model, &c.joined_text());
        }
        if let Some(name) = &m.name {
            n += 1 + count(model, name);
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
    fn counts_with_the_model_family_tokenizer() {
        let text = "Tollgate measures every request exactly.";
        let a = count("gpt-4o-mini", text);
        let b = count("claude-3-5-haiku", text);
        assert!((5..=12).contains(&a), "{a}");
        assert!((5..=12).contains(&b), "{b}");
        assert_eq!(count("gpt-4o", ""), 0);
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
