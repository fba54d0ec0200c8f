//! Wire types shared by every Tollgate crate.
//!
//! Tollgate speaks OpenAI's HTTP API to its clients and several provider dialects to its upstreams.
//! This crate holds the serde types of those wire formats and nothing else: no I/O, no policy
//! (and the few primitives every crate shares: the clock, progress, text checks).
//!
//! - [`openai`]: chat completions (request, response, stream chunk), embeddings, models and the
//!   error body every `/v1` error uses.
//! - [`anthropic`]: the Messages API, its responses and its stream events.
//! - [`clock`]: the one injectable clock every time-dependent part reads.
//! - [`progress`]: waiting for background work's counters by event, not by polling.
//! - [`text`]: the characters never shown to a person as they are (control, bidi).
//! - [`time`]: RFC 3339 (UTC) ⇄ Unix milliseconds, the wire format of every time Tollgate writes.
//!
//! Requests keep every field the gateway does not know in an `extra` map (`#[serde(flatten)]`), so a
//! parameter a provider understands but Tollgate does not is passed through untouched.
//!
//! ```
//! use tollgate_types::openai::ChatCompletionRequest;
//! let req: ChatCompletionRequest = serde_json::from_str(
//!     r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"top_k":3}"#,
//! ).unwrap();
//! assert_eq!(req.model, "gpt-4o-mini");
//! assert_eq!(req.extra["top_k"], 3); // unknown to Tollgate, kept for the provider
//! ```

pub mod anthropic;
pub mod clock;
pub mod fs;
pub mod openai;
pub mod progress;
pub mod text;
pub mod time;

/// Seconds since the Unix epoch, as OpenAI's `created` fields carry it.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
