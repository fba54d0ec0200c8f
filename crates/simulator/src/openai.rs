//! The simulator's OpenAI (and Azure OpenAI) endpoints.

use crate::generate::{Ask, Finish, Output, count_tokens, generate, hash};
use crate::{Dialect, Shared, parse, sse_body};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tollgate_types::openai::{
    AssistantMessage, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Choice,
    ChunkChoice, CompletionTokensDetails, Delta, EmbeddingInput, EmbeddingsRequest, FunctionCall,
    FunctionCallDelta, PromptTokensDetails, Role, ToolCall, ToolCallDelta, Usage,
};

pub(crate) async fn chat(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond_chat(&s, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

pub(crate) async fn azure_chat(
    State(s): State<Arc<Shared>>,
    Path(_deployment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond_chat(&s, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

pub(crate) async fn embeddings(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond_embeddings(&s, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

pub(crate) async fn azure_embeddings(
    State(s): State<Arc<Shared>>,
    Path(_deployment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond_embeddings(&s, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

pub(crate) async fn models() -> Response {
    let data: Vec<Value> = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "tollgate-simulator"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// What the request asks the "model" to do.
pub(crate) fn ask_for(s: &Shared, req: &ChatCompletionRequest) -> (Ask, Vec<String>) {
    let texts: Vec<String> = req
        .messages
        .iter()
        .map(|m| {
            let mut t = m
                .content
                .as_ref()
                .map(|c| c.joined_text())
                .unwrap_or_default();
            for call in m.tool_calls.iter().flatten() {
                t.push_str(&call.function.arguments);
            }
            t
        })
        .collect();
    let joined = texts.concat();
    s.remember(texts.join("\n"));
    s.remember_body(serde_json::to_string(req).unwrap_or_default());
    let echo = s.cfg.echo.then(|| {
        req.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .and_then(|m| m.content.as_ref())
            .map(|c| c.joined_text())
            .unwrap_or_default()
    });
    // A planted bias answers by who the prompt names.
    let echo = echo.or_else(|| s.cfg.bias.as_ref()?.answer_for(&joined));
    // Asked to grade (Tollgate's llm-rubric prompt), it answers a verdict a test can predict.
    let echo = echo.or_else(|| {
        let system = req
            .messages
            .iter()
            .find(|m| m.role == Role::System)
            .and_then(|m| m.content.as_ref())
            .map(|c| c.joined_text())?;
        if !system.starts_with(crate::generate::JUDGE_PROMPT_START) {
            return None;
        }
        let user = req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .and_then(|m| m.content.as_ref())
            .map(|c| c.joined_text())
            .unwrap_or_default();
        Some(crate::generate::judge_verdict(&user))
    });
    let seed = hash(&[
        &s.cfg.seed.to_le_bytes(),
        &req.seed.unwrap_or(0).to_le_bytes(),
        req.model.as_bytes(),
        joined.as_bytes(),
    ]);
    let last_is_tool = matches!(
        req.messages.last().map(|m| m.role),
        Some(Role::Tool | Role::Function)
    );
    let tool = match (&req.tools, &req.tool_choice) {
        (Some(tools), choice)
            if !tools.is_empty()
                && !last_is_tool
                && choice.as_ref().and_then(|c| c.as_str()) != Some("none") =>
        {
            let wanted = choice
                .as_ref()
                .and_then(|c| c.get("function"))
                .and_then(|f| f.get("name"))
                .and_then(|n| n.as_str());
            let t = tools
                .iter()
                .find(|t| Some(t.function.name.as_str()) == wanted)
                .unwrap_or(&tools[0]);
            Some((
                t.function.name.clone(),
                t.function
                    .parameters
                    .clone()
                    .unwrap_or(json!({"type": "object"})),
            ))
        }
        _ => None,
    };
    let json = req
        .response_format
        .as_ref()
        .and_then(|rf| match rf.kind.as_str() {
            "json_object" => Some(None),
            "json_schema" => Some(
                rf.json_schema
                    .as_ref()
                    .and_then(|j| j.get("schema"))
                    .cloned(),
            ),
            _ => None,
        });
    let ask = Ask {
        seed,
        cap: req.output_cap(),
        default_len: s.cfg.default_output_tokens,
        stops: req
            .stop
            .as_ref()
            .map(|s| s.as_slice().to_vec())
            .unwrap_or_default(),
        tool,
        json,
        echo,
    };
    (ask, texts)
}

fn finish_str(f: Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

fn usage(s: &Shared, prompt: u64, outputs: &[Output]) -> Usage {
    let reasoning = s.cfg.reasoning_tokens;
    let completion = outputs.iter().map(Output::tokens).sum::<u64>() + reasoning;
    let cached = s.cfg.cached_tokens.min(prompt);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: (cached > 0).then_some(PromptTokensDetails {
            cached_tokens: Some(cached),
            cache_creation_tokens: None,
            audio_tokens: None,
        }),
        completion_tokens_details: (reasoning > 0).then_some(CompletionTokensDetails {
            reasoning_tokens: Some(reasoning),
            ..Default::default()
        }),
    }
}

fn logprobs(out: &Output) -> Value {
    let content: Vec<Value> = out
        .pieces
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"token": p, "logprob": -0.01 * (i as f64 + 1.0), "bytes": p.as_bytes(), "top_logprobs": []}))
        .collect();
    json!({"content": content, "refusal": null})
}

async fn respond_chat(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, Response> {
    s.stats.chat.fetch_add(1, Ordering::Relaxed);
    s.stats.progress.changed();
    s.authorize(headers, Dialect::OpenAi)?;
    let req: ChatCompletionRequest = parse(body, Dialect::OpenAi)?;
    if let Some(e) = s.injected_error(Dialect::OpenAi) {
        tokio::time::sleep(s.cfg.latency).await;
        return Err(e);
    }
    let (ask, texts) = ask_for(s, &req);
    let n = req.n.unwrap_or(1).clamp(1, 16);
    let outputs: Vec<Output> = (0..n).map(|i| generate(&ask, i)).collect();
    let prompt = count_tokens(&texts);
    let id = format!("chatcmpl-sim{:016x}", ask.seed);
    let created = tollgate_types::unix_now();
    let want_logprobs = req.logprobs.unwrap_or(false);

    if !req.is_stream() {
        if !s.cfg.latency.is_zero() {
            tokio::time::sleep(s.cfg.latency).await;
        }
        let choices = outputs
            .iter()
            .enumerate()
            .map(|(i, out)| Choice {
                index: i as u32,
                message: AssistantMessage {
                    role: Role::Assistant,
                    content: out.tool_call.is_none().then(|| out.text()),
                    tool_calls: out.tool_call.as_ref().map(|(id, name, args)| {
                        vec![ToolCall {
                            id: id.clone(),
                            kind: "function".into(),
                            function: FunctionCall {
                                name: name.clone(),
                                arguments: args.clone(),
                            },
                        }]
                    }),
                    refusal: None,
                },
                finish_reason: Some(finish_str(out.finish).into()),
                logprobs: want_logprobs.then(|| logprobs(out)),
            })
            .collect();
        let completion = ChatCompletion {
            id,
            object: "chat.completion".into(),
            created,
            model: req.model.clone(),
            choices,
            usage: s.cfg.usage.then(|| usage(s, prompt, &outputs)),
            system_fingerprint: Some("fp_tollgate_sim".into()),
        };
        return Ok(axum::Json(completion).into_response());
    }

    let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| -> Bytes {
        let c = ChatCompletionChunk {
            id: id.clone(),
            object: "chat.completion.chunk".into(),
            created,
            model: req.model.clone(),
            choices,
            usage,
            system_fingerprint: Some("fp_tollgate_sim".into()),
        };
        let mut v = b"data: ".to_vec();
        v.extend_from_slice(&serde_json::to_vec(&c).unwrap_or_default());
        v.extend_from_slice(b"\n\n");
        Bytes::from(v)
    };
    let delta = |index: u32, delta: Delta, finish: Option<&str>, lp: Option<Value>| ChunkChoice {
        index,
        delta,
        finish_reason: finish.map(str::to_string),
        logprobs: lp,
    };
    let mut events = Vec::new();
    let mut first_token = usize::MAX;
    for (i, out) in outputs.iter().enumerate() {
        let i = i as u32;
        events.push(chunk(
            vec![delta(
                i,
                Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    tool_calls: None,
                },
                None,
                None,
            )],
            None,
        ));
        first_token = first_token.min(events.len());
        if let Some((call_id, name, args)) = &out.tool_call {
            events.push(chunk(
                vec![delta(
                    i,
                    Delta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index: 0,
                            id: Some(call_id.clone()),
                            kind: Some("function".into()),
                            function: Some(FunctionCallDelta {
                                name: Some(name.clone()),
                                arguments: Some(String::new()),
                            }),
                        }]),
                        ..Delta::default()
                    },
                    None,
                    None,
                )],
                None,
            ));
            let bytes = args.as_bytes();
            for piece in bytes.chunks(bytes.len().div_ceil(3).max(1)) {
                events.push(chunk(
                    vec![delta(
                        i,
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: 0,
                                id: None,
                                kind: None,
                                function: Some(FunctionCallDelta {
                                    name: None,
                                    arguments: Some(String::from_utf8_lossy(piece).into_owned()),
                                }),
                            }]),
                            ..Delta::default()
                        },
                        None,
                        None,
                    )],
                    None,
                ));
            }
        }
        for (k, p) in out.pieces.iter().enumerate() {
            let lp = want_logprobs.then(|| {
                json!({"content": [{"token": p, "logprob": -0.01 * (k as f64 + 1.0), "bytes": p.as_bytes(), "top_logprobs": []}]})
            });
            events.push(chunk(
                vec![delta(
                    i,
                    Delta {
                        content: Some(p.clone()),
                        ..Delta::default()
                    },
                    None,
                    lp,
                )],
                None,
            ));
        }
        events.push(chunk(
            vec![delta(
                i,
                Delta::default(),
                Some(finish_str(out.finish)),
                None,
            )],
            None,
        ));
    }
    let token_end = events.len();
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    if include_usage && s.cfg.usage {
        events.push(chunk(Vec::new(), Some(usage(s, prompt, &outputs))));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    if s.stream_error() {
        events.truncate(((first_token + token_end) / 2).max(1));
        let e = json!({"error": {"message": s.cfg.error_message, "type": "server_error", "code": null}});
        events.push(Bytes::from(format!("data: {e}\n\n")));
    } else if s.truncate() {
        let keep = (first_token + token_end) / 2;
        events.truncate(keep.max(1));
    }
    Ok(sse_body(s, events, first_token..token_end))
}

async fn respond_embeddings(
    s: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Response> {
    s.stats.embeddings.fetch_add(1, Ordering::Relaxed);
    s.stats.progress.changed();
    s.authorize(headers, Dialect::OpenAi)?;
    let req: EmbeddingsRequest = parse(body, Dialect::OpenAi)?;
    s.remember_body(serde_json::to_string(&req).unwrap_or_default());
    if let Some(e) = s.injected_error(Dialect::OpenAi) {
        return Err(e);
    }
    if !s.cfg.latency.is_zero() {
        tokio::time::sleep(s.cfg.latency).await;
    }
    let inputs: Vec<String> = match &req.input {
        EmbeddingInput::One(t) => vec![t.clone()],
        EmbeddingInput::Many(v) => v.clone(),
        EmbeddingInput::Tokens(t) => vec![format!("{t:?}")],
        EmbeddingInput::ManyTokens(v) => v.iter().map(|t| format!("{t:?}")).collect(),
    };
    let dims = req.dimensions.unwrap_or(16).clamp(1, 4096) as usize;
    let base64 = req.encoding_format.as_deref() == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut rng =
                crate::generate::Rng::new(hash(&[&s.cfg.seed.to_le_bytes(), text.as_bytes()]));
            let raw: Vec<f32> = (0..dims)
                .map(|_| (rng.below(2000) as f32 / 1000.0) - 1.0)
                .collect();
            let norm = raw
                .iter()
                .map(|x| x * x)
                .sum::<f32>()
                .sqrt()
                .max(f32::EPSILON);
            let v: Vec<f32> = raw.iter().map(|x| x / norm).collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens = count_tokens(&inputs);
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}
