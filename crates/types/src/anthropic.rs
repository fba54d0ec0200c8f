//! Anthropic's Messages API: request, response and stream events.
//!
//! The gateway translates OpenAI chat requests into these and the answers back; the simulator serves
//! them. Only what the translation needs is typed; unknown request fields ride in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/messages` request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessagesRequest {
    /// Upstream model id.
    pub model: String,
    /// Alternating user and assistant turns.
    pub messages: Vec<Message>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Required cap on output tokens.
    pub max_tokens: u32,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `{"type":"auto"|"any"|"tool"|"none", "name"?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Stream the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `{user_id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Other fields, passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A turn.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// The turn's blocks.
    pub content: MessageContent,
}

/// Content of a turn: a string or blocks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged, expecting = "a string or an array of content blocks")]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

/// A content block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// `{type: base64|url, media_type, data|url}`.
        source: Value,
    },
    /// A call the model makes.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments.
        input: Value,
    },
    /// The answer to a call.
    ToolResult {
        /// The call answered.
        tool_use_id: String,
        /// Result text or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Value>,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
    },
    /// Extended thinking.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// Signature.
        #[serde(default)]
        signature: Option<String>,
    },
}

/// A tool definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the input.
    pub input_schema: Value,
}

/// A complete answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessagesResponse {
    /// Message id.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: String,
    /// Blocks of the answer.
    pub content: Vec<ContentBlock>,
    /// The model that answered.
    pub model: String,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`.
    pub stop_reason: Option<String>,
    /// The stop sequence hit, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: Usage,
}

/// Anthropic usage. `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

/// One event of a Messages stream (`event: <type>` + `data: {"type": <type>, ...}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// First event: the message shell with input usage.
    MessageStart {
        /// The shell.
        message: MessagesResponse,
    },
    /// A block begins.
    ContentBlockStart {
        /// Block position.
        index: u32,
        /// The block's start (empty text, or tool_use with empty input).
        content_block: ContentBlock,
    },
    /// A block grows.
    ContentBlockDelta {
        /// Block position.
        index: u32,
        /// The increment.
        delta: BlockDelta,
    },
    /// A block ends.
    ContentBlockStop {
        /// Block position.
        index: u32,
    },
    /// Top-level changes: stop reason and output usage.
    MessageDelta {
        /// Stop reason.
        delta: MessageDeltaBody,
        /// Cumulative output usage.
        #[serde(default)]
        usage: Option<Usage>,
    },
    /// Last event.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error inside the stream.
    Error {
        /// `{type, message}`.
        error: Value,
    },
}

/// Increment of a block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More tool-input JSON.
    InputJsonDelta {
        /// A piece of JSON.
        partial_json: String,
    },
    /// More thinking.
    ThinkingDelta {
        /// The text.
        thinking: String,
    },
    /// Thinking signature.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
}

/// Body of `message_delta`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessageDeltaBody {
    /// Stop reason.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence hit.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// Anthropic's error body: `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorResponse {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorDetail,
}

/// Anthropic error detail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `overloaded_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_events_parse_by_type() {
        let e: StreamEvent = serde_json::from_str(
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#,
        )
        .unwrap();
        assert!(matches!(
            e,
            StreamEvent::ContentBlockDelta {
                index: 1,
                delta: BlockDelta::InputJsonDelta { .. }
            }
        ));
        let stop: StreamEvent = serde_json::from_str(r#"{"type":"message_stop"}"#).unwrap();
        assert_eq!(stop, StreamEvent::MessageStop);
    }
}
