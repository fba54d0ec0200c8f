//! OpenAI's API, and every server that speaks it (vLLM, Ollama, LM Studio, TGI, the simulator).
//!
//! The request goes out as the client sent it, with only `model` replaced by the deployment's
//! upstream model (and, on streams, `stream_options.include_usage` set); unknown fields pass
//! through. Complete answers pass back as bytes (only usage is
//! read); streamed chunks pass back one by one, and `[DONE]` marks the end.

use crate::transport::Post;
use crate::{
    ChatReply, ChatStream, Chunk, Complete, Endpoint, ProviderApi, ProviderError, SseReader, Via,
};
use bytes::Bytes;
use tollgate_config::Provider as ProviderConfig;
use tollgate_types::openai::{ChatCompletionRequest, EmbeddingsRequest, UsageProbe};

/// OpenAI or an OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAi {
    chat_url: Endpoint,
    embeddings_url: Endpoint,
    /// `Bearer <key>`, precomputed; absent for servers without auth.
    auth: Option<String>,
}

impl OpenAi {
    pub(crate) fn new(cfg: &ProviderConfig) -> Self {
        OpenAi {
            chat_url: Endpoint::new(format!("{}/chat/completions", cfg.base_url)),
            embeddings_url: Endpoint::new(format!("{}/embeddings", cfg.base_url)),
            auth: cfg
                .api_key
                .as_ref()
                .map(|k| format!("Bearer {}", k.expose())),
        }
    }

    fn post<'a>(&'a self, http: Via<'a>, url: &'a Endpoint) -> Post<'a> {
        let b = http.post(url);
        match &self.auth {
            Some(a) => b.header("authorization", a),
            None => b,
        }
    }
}

impl ProviderApi for OpenAi {
    async fn chat(
        &self,
        http: Via<'_>,
        req: &ChatCompletionRequest,
        model: &str,
    ) -> Result<ChatReply, ProviderError> {
        send_chat(self.post(http, &self.chat_url), req, model).await
    }

    async fn embeddings(
        &self,
        http: Via<'_>,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<Complete, ProviderError> {
        send_embeddings(self.post(http, &self.embeddings_url), req, model).await
    }
}

/// Sends a chat request in OpenAI's wire format over a prepared request (URL and auth set).
pub(crate) async fn send_chat(
    builder: Post<'_>,
    req: &ChatCompletionRequest,
    model: &str,
) -> Result<ChatReply, ProviderError> {
    let mut upstream = req.clone();
    upstream.model = model.to_string();
    // OpenAI's reasoning models refuse `max_tokens`; they take the same cap as
    // `max_completion_tokens`.
    if upstream.max_completion_tokens.is_none()
        && ["o1", "o3", "o4", "gpt-5"]
            .iter()
            .any(|p| model.starts_with(p))
    {
        upstream.max_completion_tokens = upstream.max_tokens.take();
    }
    if req.is_stream() {
        // Always ask for the usage chunk, so streamed requests are metered from real usage; the
        // relay hides it from clients that did not ask (`Chunk::usage_only`).
        upstream
            .stream_options
            .get_or_insert_with(Default::default)
            .include_usage = Some(true);
    }
    let body = serde_json::to_vec(&upstream)
        .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode request: {e}")))?;
    let resp = crate::send_json(builder, body).await?;
    if req.is_stream() {
        return Ok(ChatReply::Stream(ChatStream::OpenAi(OpenAiStream {
            reader: SseReader::new(resp),
        })));
    }
    let body = resp.bytes(crate::MAX_CHAT_ANSWER_BYTES).await?;
    let probe: UsageProbe = serde_json::from_slice(&body)
        .map_err(|e| ProviderError::InvalidResponse(format!("not a chat completion: {e}")))?;
    Ok(ChatReply::Complete(Complete {
        body,
        usage: probe.usage,
    }))
}

/// Sends an embeddings request in OpenAI's wire format over a prepared request.
pub(crate) async fn send_embeddings(
    builder: Post<'_>,
    req: &EmbeddingsRequest,
    model: &str,
) -> Result<Complete, ProviderError> {
    let mut upstream = req.clone();
    upstream.model = model.to_string();
    let body = serde_json::to_vec(&upstream)
        .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode request: {e}")))?;
    let resp = crate::send_json(builder, body).await?;
    let body = resp.bytes(crate::MAX_EMBEDDINGS_ANSWER_BYTES).await?;
    let probe: UsageProbe = serde_json::from_slice(&body)
        .map_err(|e| ProviderError::InvalidResponse(format!("not an embeddings answer: {e}")))?;
    Ok(Complete {
        body,
        usage: probe.usage,
    })
}

/// Chunks of an OpenAI-wire stream, passed through as they come.
#[derive(Debug)]
pub struct OpenAiStream {
    reader: SseReader,
}

impl OpenAiStream {
    pub(crate) async fn next(&mut self) -> Result<Option<Chunk>, ProviderError> {
        loop {
            let Some(event) = self.reader.next_event().await? else {
                return Err(ProviderError::Truncated);
            };
            let data = event.data;
            if data == "[DONE]" {
                return Ok(None);
            }
            if data.trim().is_empty() {
                continue;
            }
            // Usage is only parsed when the chunk mentions it: most chunks are plain deltas.
            let (usage, usage_only) = if data.contains("\"usage\"") || data.contains("\"error\"") {
                let v: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                    ProviderError::InvalidResponse(format!("bad stream chunk: {e}"))
                })?;
                if let Some(err) = v.get("error") {
                    let msg = err
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("stream error");
                    return Err(ProviderError::StreamError(msg.to_string()));
                }
                let usage = v
                    .get("usage")
                    .filter(|u| !u.is_null())
                    .and_then(|u| serde_json::from_value(u.clone()).ok());
                let no_choices = v
                    .get("choices")
                    .and_then(|c| c.as_array())
                    .is_none_or(|c| c.is_empty());
                let usage_only = usage.is_some() && no_choices;
                (usage, usage_only)
            } else {
                (None, false)
            };
            return Ok(Some(Chunk {
                data: Bytes::from(data),
                usage,
                usage_only,
            }));
        }
    }
}
