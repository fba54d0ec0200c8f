//! The simulator's Anthropic Messages endpoint, complete and streamed.

use crate::generate::{Ask, Finish, count_tokens, generate, hash};
use crate::{Dialect, Shared, parse, sse_body};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tollgate_types::anthropic::{
    BlockDelta, ContentBlock, MessageContent, MessageDeltaBody, MessagesRequest, MessagesResponse,
    StreamEvent, Usage,
};

pub(crate) async fn messages(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(&s, &headers, &body).await.unwrap_or_else(|r| r)
}

fn texts(req: &MessagesRequest) -> (Vec<String>, bool) {
    let mut out: Vec<String> = req.system.iter().cloned().collect();
    let mut last_is_result = false;
    for m in &req.messages {
        last_is_result = false;
        match &m.content {
            MessageContent::Text(t) => out.push(t.clone()),
            MessageContent::Blocks(blocks) => {
                let mut t = String::new();
                for b in blocks {
                    match b {
                        ContentBlock::Text { text } => t.push_str(text),
                        ContentBlock::ToolUse { input, .. } => t.push_str(&input.to_string()),
                        ContentBlock::ToolResult { content, .. } => {
                            last_is_result = true;
                            t.push_str(&content.as_ref().map(Value::to_string).unwrap_or_default());
                        }
                        _ => {}
                    }
                }
                out.push(t);
            }
        }
    }
    (out, last_is_result)
}

fn stop_reason(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
    }
}

async fn respond(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, Response> {
    s.stats.messages.fetch_add(1, Ordering::Relaxed);
    s.stats.progress.changed();
    s.authorize(headers, Dialect::Anthropic)?;
    let req: MessagesRequest = parse(body, Dialect::Anthropic)?;
    if let Some(e) = s.injected_error(Dialect::Anthropic) {
        tokio::time::sleep(s.cfg.latency).await;
        return Err(e);
    }
    let (texts, last_is_result) = texts(&req);
    let joined = texts.concat();
    s.remember(texts.join("\n"));
    let seed = hash(&[
        &s.cfg.seed.to_le_bytes(),
        req.model.as_bytes(),
        joined.as_bytes(),
    ]);
    let choice_type = req
        .tool_choice
        .as_ref()
        .and_then(|c| c.get("type"))
        .and_then(|t| t.as_str());
    let tool = match &req.tools {
        Some(tools) if !tools.is_empty() && !last_is_result && choice_type != Some("none") => {
            let wanted = req
                .tool_choice
                .as_ref()
                .and_then(|c| c.get("name"))
                .and_then(|n| n.as_str());
            let t = tools
                .iter()
                .find(|t| Some(t.name.as_str()) == wanted)
                .unwrap_or(&tools[0]);
            Some((t.name.clone(), t.input_schema.clone()))
        }
        _ => None,
    };
    let ask = Ask {
        seed,
        cap: Some(req.max_tokens),
        default_len: s.cfg.default_output_tokens,
        stops: req.stop_sequences.clone().unwrap_or_default(),
        tool,
        json: None,
        echo: s
            .cfg
            .echo
            .then(|| texts.last().cloned().unwrap_or_default()),
    };
    let out = generate(&ask, 0);
    let prompt = count_tokens(&texts);
    let read = s.cfg.cached_tokens.min(prompt);
    let write = s.cfg.cache_write_tokens.min(prompt - read);
    let usage = |output: u64| Usage {
        input_tokens: prompt - read - write,
        output_tokens: output,
        cache_creation_input_tokens: (write > 0).then_some(write),
        cache_read_input_tokens: (read > 0).then_some(read),
    };
    let output_tokens = out.tokens() + s.cfg.reasoning_tokens;
    let id = format!("msg_sim{:016x}", seed);
    let mut content = Vec::new();
    if !out.pieces.is_empty() || out.tool_call.is_none() {
        content.push(ContentBlock::Text { text: out.text() });
    }
    if let Some((call_id, name, args)) = &out.tool_call {
        content.push(ContentBlock::ToolUse {
            id: call_id.replace("call_", "toolu_"),
            name: name.clone(),
            input: serde_json::from_str(args).unwrap_or(json!({})),
        });
    }
    let full = MessagesResponse {
        id: id.clone(),
        kind: "message".into(),
        role: "assistant".into(),
        content: content.clone(),
        model: req.model.clone(),
        stop_reason: Some(stop_reason(out.finish).into()),
        stop_sequence: None,
        usage: if s.cfg.usage {
            usage(output_tokens)
        } else {
            Usage::default()
        },
    };
    if !req.stream.unwrap_or(false) {
        if !s.cfg.latency.is_zero() {
            tokio::time::sleep(s.cfg.latency).await;
        }
        return Ok(axum::Json(full).into_response());
    }

    let event = |e: &StreamEvent| -> Bytes {
        let name = serde_json::to_value(e)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default();
        let data = serde_json::to_string(e).unwrap_or_default();
        Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
    };
    let shell = MessagesResponse {
        content: Vec::new(),
        stop_reason: None,
        usage: if s.cfg.usage {
            usage(1)
        } else {
            Usage::default()
        },
        ..full
    };
    let mut events = vec![
        event(&StreamEvent::MessageStart { message: shell }),
        event(&StreamEvent::Ping),
    ];
    let first_token = events.len();
    for (index, block) in content.iter().enumerate() {
        let index = index as u32;
        match block {
            ContentBlock::Text { .. } => {
                events.push(event(&StreamEvent::ContentBlockStart {
                    index,
                    content_block: ContentBlock::Text {
                        text: String::new(),
                    },
                }));
                for p in &out.pieces {
                    events.push(event(&StreamEvent::ContentBlockDelta {
                        index,
                        delta: BlockDelta::TextDelta { text: p.clone() },
                    }));
                }
            }
            ContentBlock::ToolUse { id, name, input } => {
                events.push(event(&StreamEvent::ContentBlockStart {
                    index,
                    content_block: ContentBlock::ToolUse {
                        id: id.clone(),
                        name: name.clone(),
                        input: json!({}),
                    },
                }));
                let args = input.to_string();
                let bytes = args.as_bytes();
                for piece in bytes.chunks(bytes.len().div_ceil(3).max(1)) {
                    events.push(event(&StreamEvent::ContentBlockDelta {
                        index,
                        delta: BlockDelta::InputJsonDelta {
                            partial_json: String::from_utf8_lossy(piece).into_owned(),
                        },
                    }));
                }
            }
            _ => {}
        }
        events.push(event(&StreamEvent::ContentBlockStop { index }));
    }
    let token_end = events.len();
    events.push(event(&StreamEvent::MessageDelta {
        delta: MessageDeltaBody {
            stop_reason: Some(stop_reason(out.finish).into()),
            stop_sequence: None,
        },
        usage: s.cfg.usage.then(|| Usage {
            output_tokens,
            ..Usage::default()
        }),
    }));
    events.push(event(&StreamEvent::MessageStop));
    if s.stream_error() {
        events.truncate(((first_token + token_end) / 2).max(1));
        let e = json!({"type": "error", "error": {"type": "api_error", "message": s.cfg.error_message}});
        events.push(Bytes::from(format!("event: error\ndata: {e}\n\n")));
    } else if s.truncate() {
        events.truncate(((first_token + token_end) / 2).max(1));
    }
    Ok(sse_body(s, events, first_token..token_end))
}
