//! Anthropic's Messages API behind OpenAI's chat format, both directions, streams and tools included.
//!
//! Request: system and developer messages become `system`; tool results become `tool_result`
//! blocks in a user turn; assistant tool calls become `tool_use` blocks; consecutive turns of one
//! role are merged; `max_tokens` defaults to 4,096 (Anthropic requires it); JSON modes become a
//! system instruction (Anthropic has no `response_format`). `seed` and `logprobs` have no Anthropic
//! equivalent and are dropped; `n` > 1 is refused so the router can try another deployment.
//! Fields Tollgate does not know (`top_k`, `thinking`, ...) pass through.
//!
//! Answer: text blocks join into `content`, `tool_use` blocks become `tool_calls`, stop reasons map
//! to finish reasons, and usage maps cache reads to `cached_tokens` and cache writes to
//! `cache_creation_tokens`, with `prompt_tokens` counting all three kinds of input.

use crate::{ChatReply, ChatStream, Chunk, Complete, ProviderApi, ProviderError, SseReader, Via};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tollgate_config::Provider as ProviderConfig;
use tollgate_types::anthropic as an;
use tollgate_types::openai::{
    self as oa, ChatCompletionRequest, ChunkChoice, Delta, EmbeddingsRequest, Role,
};

/// Output cap sent when the client set none; Anthropic requires one.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// An Anthropic endpoint.
#[derive(Debug, Clone)]
pub struct Anthropic {
    messages_url: crate::Endpoint,
    api_key: Option<tollgate_config::Secret>,
    version: String,
}

impl Anthropic {
    pub(crate) fn new(cfg: &ProviderConfig) -> Self {
        let base = cfg.base_url.trim_end_matches("/v1");
        Anthropic {
            messages_url: crate::Endpoint::new(format!("{base}/v1/messages")),
            api_key: cfg.api_key.clone(),
            version: cfg.anthropic_version.clone(),
        }
    }
}

impl ProviderApi for Anthropic {
    async fn chat(
        &self,
        http: Via<'_>,
        req: &ChatCompletionRequest,
        model: &str,
    ) -> Result<ChatReply, ProviderError> {
        let body = to_messages_request(req, model)?;
        let body = serde_json::to_vec(&body)
            .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode request: {e}")))?;
        let mut b = http
            .post(&self.messages_url)
            .header("anthropic-version", &self.version);
        if let Some(k) = &self.api_key {
            b = b.header("x-api-key", k.expose());
        }
        let resp = crate::send_json(b, body).await?;
        if req.is_stream() {
            return Ok(ChatReply::Stream(ChatStream::Anthropic(
                AnthropicStream::new(SseReader::new(resp)),
            )));
        }
        let bytes = resp.bytes(crate::MAX_CHAT_ANSWER_BYTES).await?;
        complete(&bytes).map(ChatReply::Complete)
    }

    async fn embeddings(
        &self,
        _http: Via<'_>,
        _req: &EmbeddingsRequest,
        _model: &str,
    ) -> Result<Complete, ProviderError> {
        Err(ProviderError::Unsupported(
            "Anthropic does not offer embeddings".into(),
        ))
    }
}

/// OpenAI chat request → Anthropic Messages request.
pub(crate) fn to_messages_request(
    req: &ChatCompletionRequest,
    model: &str,
) -> Result<an::MessagesRequest, ProviderError> {
    if req.n.unwrap_or(1) > 1 {
        return Err(ProviderError::Unsupported(
            "Anthropic does not support n > 1".into(),
        ));
    }
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<an::Message> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                if let Some(c) = &m.content {
                    system.push(c.joined_text());
                }
                continue;
            }
            Role::User => ("user", user_blocks(m.content.as_ref())),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if let Some(c) = &m.content {
                    let text = c.joined_text();
                    if !text.is_empty() {
                        blocks.push(an::ContentBlock::Text { text });
                    }
                }
                for call in m.tool_calls.iter().flatten() {
                    let input = serde_json::from_str(&call.function.arguments)
                        .unwrap_or_else(|_| Value::Object(Map::new()));
                    blocks.push(an::ContentBlock::ToolUse {
                        id: call.id.clone(),
                        name: call.function.name.clone(),
                        input,
                    });
                }
                ("assistant", blocks)
            }
            Role::Tool | Role::Function => {
                let text = m
                    .content
                    .as_ref()
                    .map(|c| c.joined_text())
                    .unwrap_or_default();
                let id = m
                    .tool_call_id
                    .clone()
                    .or_else(|| m.name.clone())
                    .unwrap_or_default();
                (
                    "user",
                    vec![an::ContentBlock::ToolResult {
                        tool_use_id: id,
                        content: Some(Value::String(text)),
                        is_error: None,
                    }],
                )
            }
        };
        match turns.last_mut() {
            Some(last) if last.role == role => {
                if let an::MessageContent::Blocks(b) = &mut last.content {
                    b.extend(blocks);
                }
            }
            _ => turns.push(an::Message {
                role: role.into(),
                content: an::MessageContent::Blocks(blocks),
            }),
        }
    }
    if let Some(rf) = &req.response_format {
        match rf.kind.as_str() {
            "json_object" => {
                system.push("Respond with a single JSON object and nothing else.".into())
            }
            "json_schema" => {
                let schema = rf
                    .json_schema
                    .as_ref()
                    .and_then(|s| s.get("schema"))
                    .cloned()
                    .unwrap_or(Value::Null);
                system.push(format!(
                    "Respond with a single JSON object that matches this JSON schema, and nothing else: {schema}"
                ));
            }
            _ => {}
        }
    }
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .map(|t| an::Tool {
                name: t.function.name.clone(),
                description: t.function.description.clone(),
                input_schema: t
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
            .collect()
    });
    let mut tool_choice = req.tool_choice.as_ref().map(|tc| match tc {
        Value::String(s) if s == "required" => json!({"type": "any"}),
        Value::String(s) if s == "none" => json!({"type": "none"}),
        Value::Object(o) => match o.get("function").and_then(|f| f.get("name")) {
            Some(name) => json!({"type": "tool", "name": name}),
            None => json!({"type": "auto"}),
        },
        _ => json!({"type": "auto"}),
    });
    if req.parallel_tool_calls == Some(false) && req.tools.is_some() {
        let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(o) = tc.as_object_mut() {
            o.insert("disable_parallel_tool_use".into(), Value::Bool(true));
        }
    }
    let mut m = an::MessagesRequest {
        model: model.to_string(),
        messages: turns,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        max_tokens: req.output_cap().unwrap_or(DEFAULT_MAX_TOKENS),
        stop_sequences: req.stop.as_ref().map(|s| s.as_slice().to_vec()),
        temperature: req.temperature,
        top_p: req.top_p,
        tools,
        tool_choice,
        stream: req.stream.filter(|s| *s),
        metadata: req.user.as_ref().map(|u| json!({"user_id": u})),
        extra: req.extra.clone(),
    };
    // A passed-through field named like one the translation sets (`metadata` beside `user`)
    // gives way: the upstream must not see the key twice.
    for (key, set) in [
        ("system", m.system.is_some()),
        ("stop_sequences", m.stop_sequences.is_some()),
        ("metadata", m.metadata.is_some()),
    ] {
        if set {
            m.extra.remove(key);
        }
    }
    Ok(m)
}

fn user_blocks(content: Option<&oa::MessageContent>) -> Vec<an::ContentBlock> {
    match content {
        None => Vec::new(),
        Some(oa::MessageContent::Text(t)) => vec![an::ContentBlock::Text { text: t.clone() }],
        Some(oa::MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| match p.kind.as_str() {
                "text" => p.text.clone().map(|text| an::ContentBlock::Text { text }),
                "image_url" => {
                    let url = p.image_url.as_ref()?.get("url")?.as_str()?;
                    Some(an::ContentBlock::Image {
                        source: image_source(url),
                    })
                }
                _ => None,
            })
            .collect(),
    }
}

/// `data:image/png;base64,AAAA` → a base64 source; anything else → a URL source.
fn image_source(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
    {
        let media_type = meta.trim_end_matches(";base64");
        return json!({"type": "base64", "media_type": media_type, "data": data});
    }
    json!({"type": "url", "url": url})
}

/// Anthropic stop reason → OpenAI finish reason.
fn finish_reason(stop: Option<&str>) -> Option<String> {
    stop.map(|s| {
        match s {
            "end_turn" | "stop_sequence" | "pause_turn" => "stop",
            "max_tokens" => "length",
            "tool_use" => "tool_calls",
            "refusal" => "content_filter",
            other => other,
        }
        .to_string()
    })
}

/// Anthropic usage → OpenAI usage (`prompt_tokens` counts cached and cache-written input too).
/// Sums saturate: counts near `u64::MAX` from an upstream must not wrap (or panic).
fn to_usage(u: &an::Usage) -> oa::Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let write = u.cache_creation_input_tokens.unwrap_or(0);
    let prompt = u.input_tokens.saturating_add(read).saturating_add(write);
    oa::Usage {
        prompt_tokens: prompt,
        completion_tokens: u.output_tokens,
        total_tokens: prompt.saturating_add(u.output_tokens),
        prompt_tokens_details: (read > 0 || write > 0).then(|| oa::PromptTokensDetails {
            cached_tokens: Some(read),
            cache_creation_tokens: (write > 0).then_some(write),
            audio_tokens: None,
        }),
        completion_tokens_details: None,
    }
}

/// An Anthropic answer's body → the OpenAI chat completion for the client.
pub(crate) fn complete(bytes: &[u8]) -> Result<Complete, ProviderError> {
    let msg: an::MessagesResponse = serde_json::from_slice(bytes)
        .map_err(|e| ProviderError::InvalidResponse(format!("not an Anthropic message: {e}")))?;
    let completion = to_chat_completion(msg);
    let usage = completion.usage.clone();
    let body = serde_json::to_vec(&completion)
        .map_err(|e| ProviderError::InvalidResponse(e.to_string()))?;
    Ok(Complete {
        body: Bytes::from(body),
        usage,
    })
}

/// Anthropic message → OpenAI chat completion.
pub(crate) fn to_chat_completion(msg: an::MessagesResponse) -> oa::ChatCompletion {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in msg.content {
        match block {
            an::ContentBlock::Text { text: t } => text.push_str(&t),
            an::ContentBlock::ToolUse { id, name, input } => calls.push(oa::ToolCall {
                id,
                kind: "function".into(),
                function: oa::FunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            _ => {}
        }
    }
    oa::ChatCompletion {
        id: msg.id,
        object: "chat.completion".into(),
        created: tollgate_types::unix_now(),
        model: msg.model,
        choices: vec![oa::Choice {
            index: 0,
            message: oa::AssistantMessage {
                role: Role::Assistant,
                content: (!text.is_empty() || calls.is_empty()).then_some(text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                refusal: None,
            },
            finish_reason: finish_reason(msg.stop_reason.as_deref()),
            logprobs: None,
        }],
        usage: Some(to_usage(&msg.usage)),
        system_fingerprint: None,
    }
}

/// Anthropic stream events translated into OpenAI chunks.
#[derive(Debug)]
pub struct AnthropicStream {
    reader: SseReader,
    id: String,
    model: String,
    created: u64,
    usage: an::Usage,
    /// Anthropic block index → OpenAI tool-call index, for tool-use blocks.
    tool_index: Vec<(u32, u32)>,
    /// `message_stop` arrived: the stream is complete.
    finished: bool,
}

impl AnthropicStream {
    fn new(reader: SseReader) -> Self {
        AnthropicStream {
            reader,
            id: String::new(),
            model: String::new(),
            created: tollgate_types::unix_now(),
            usage: an::Usage::default(),
            tool_index: Vec::new(),
            finished: false,
        }
    }

    fn chunk(&self, delta: Delta, finish: Option<String>) -> Result<Chunk, ProviderError> {
        let c = oa::ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
        };
        let data =
            serde_json::to_vec(&c).map_err(|e| ProviderError::InvalidResponse(e.to_string()))?;
        Ok(Chunk {
            data: Bytes::from(data),
            usage: None,
            usage_only: false,
        })
    }

    fn usage_chunk(&self) -> Result<Chunk, ProviderError> {
        let usage = to_usage(&self.usage);
        let c = oa::ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: Some(usage.clone()),
            system_fingerprint: None,
        };
        let data =
            serde_json::to_vec(&c).map_err(|e| ProviderError::InvalidResponse(e.to_string()))?;
        Ok(Chunk {
            data: Bytes::from(data),
            usage: Some(usage),
            usage_only: true,
        })
    }

    pub(crate) async fn next(&mut self) -> Result<Option<Chunk>, ProviderError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let Some(event) = self.reader.next_event().await? else {
                return Err(ProviderError::Truncated);
            };
            let ev: an::StreamEvent = match serde_json::from_str(&event.data) {
                Ok(ev) => ev,
                // Event types added by Anthropic after this code was written are skipped.
                Err(_) if !event.data.contains("\"error\"") => continue,
                Err(e) => return Err(ProviderError::InvalidResponse(e.to_string())),
            };
            match ev {
                an::StreamEvent::MessageStart { message } => {
                    self.id = message.id;
                    self.model = message.model;
                    self.usage = message.usage;
                    let delta = Delta {
                        role: Some(Role::Assistant),
                        content: Some(String::new()),
                        tool_calls: None,
                    };
                    return self.chunk(delta, None).map(Some);
                }
                an::StreamEvent::ContentBlockStart {
                    index,
                    content_block: an::ContentBlock::ToolUse { id, name, .. },
                } => {
                    let call_index = u32::try_from(self.tool_index.len()).unwrap_or(u32::MAX);
                    self.tool_index.push((index, call_index));
                    let delta = Delta {
                        role: None,
                        content: None,
                        tool_calls: Some(vec![oa::ToolCallDelta {
                            index: call_index,
                            id: Some(id),
                            kind: Some("function".into()),
                            function: Some(oa::FunctionCallDelta {
                                name: Some(name),
                                arguments: Some(String::new()),
                            }),
                        }]),
                    };
                    return self.chunk(delta, None).map(Some);
                }
                an::StreamEvent::ContentBlockDelta { index, delta } => match delta {
                    an::BlockDelta::TextDelta { text } => {
                        return self
                            .chunk(
                                Delta {
                                    content: Some(text),
                                    ..Delta::default()
                                },
                                None,
                            )
                            .map(Some);
                    }
                    an::BlockDelta::InputJsonDelta { partial_json } => {
                        let call_index = self
                            .tool_index
                            .iter()
                            .find(|(b, _)| *b == index)
                            .map(|(_, c)| *c)
                            .unwrap_or(0);
                        let delta = Delta {
                            tool_calls: Some(vec![oa::ToolCallDelta {
                                index: call_index,
                                id: None,
                                kind: None,
                                function: Some(oa::FunctionCallDelta {
                                    name: None,
                                    arguments: Some(partial_json),
                                }),
                            }]),
                            ..Delta::default()
                        };
                        return self.chunk(delta, None).map(Some);
                    }
                    _ => continue,
                },
                an::StreamEvent::MessageDelta { delta, usage } => {
                    if let Some(u) = usage {
                        self.usage.output_tokens = u.output_tokens;
                        if u.input_tokens > 0 {
                            self.usage.input_tokens = u.input_tokens;
                        }
                    }
                    let finish = finish_reason(delta.stop_reason.as_deref());
                    return self.chunk(Delta::default(), finish).map(Some);
                }
                an::StreamEvent::MessageStop => {
                    // The usage chunk is the last one; the next call ends the stream without
                    // reading (some servers keep the connection open after `message_stop`).
                    self.finished = true;
                    return self.usage_chunk().map(Some);
                }
                an::StreamEvent::Error { error } => {
                    let msg = error
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("stream error");
                    return Err(ProviderError::StreamError(msg.to_string()));
                }
                _ => continue,
            }
        }
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn chat_becomes_messages_with_system_tools_and_results() {
        let r = req(json!({
            "model": "route",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": "Use metric units."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "wx", "arguments": "{\"city\":\"Oslo\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "12C"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "wx", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "stop": "END",
            "user": "u1",
            "top_k": 5
        }));
        let m = to_messages_request(&r, "claude-x").unwrap();
        assert_eq!(m.model, "claude-x");
        assert_eq!(m.system.as_deref(), Some("Be brief.\n\nUse metric units."));
        assert_eq!(m.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(m.stop_sequences, Some(vec!["END".to_string()]));
        assert_eq!(
            m.tool_choice,
            Some(json!({"type": "any", "disable_parallel_tool_use": true}))
        );
        assert_eq!(m.metadata, Some(json!({"user_id": "u1"})));
        assert_eq!(m.extra["top_k"], 5);
        let roles: Vec<&str> = m.messages.iter().map(|t| t.role.as_str()).collect();
        // The tool result and the next user text merge into one user turn.
        assert_eq!(roles, ["user", "assistant", "user"]);
        let v = serde_json::to_value(&m.messages).unwrap();
        assert_eq!(
            v[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
        );
        assert_eq!(
            v[1]["content"][0],
            json!({"type": "tool_use", "id": "c1", "name": "wx", "input": {"city": "Oslo"}})
        );
        assert_eq!(v[2]["content"][0]["type"], "tool_result");
        assert_eq!(
            v[2]["content"][1],
            json!({"type": "text", "text": "Thanks"})
        );
    }

    #[test]
    fn json_modes_become_instructions_and_n_is_refused() {
        let r = req(
            json!({"model": "r", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}, "max_tokens": 9}),
        );
        let m = to_messages_request(&r, "c").unwrap();
        assert!(m.system.unwrap().contains("JSON"));
        assert_eq!(m.max_tokens, 9);
        let r = req(json!({"model": "r", "messages": [{"role": "user", "content": "x"}], "n": 2}));
        assert!(matches!(
            to_messages_request(&r, "c"),
            Err(ProviderError::Unsupported(_))
        ));
    }

    #[test]
    fn answers_and_usage_map_back() {
        let msg: an::MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "t1", "name": "wx", "input": {"city": "Oslo"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
        }))
        .unwrap();
        let c = to_chat_completion(msg);
        let ch = &c.choices[0];
        assert_eq!(ch.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(ch.message.content.as_deref(), Some("Let me check."));
        assert_eq!(
            ch.message.tool_calls.as_ref().unwrap()[0]
                .function
                .arguments,
            "{\"city\":\"Oslo\"}"
        );
        let u = c.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (130, 5, 135)
        );
        assert_eq!((u.cached_tokens(), u.cache_write_tokens()), (100, 20));
    }
}
