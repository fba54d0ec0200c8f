//! Upstream providers: one trait ([`ProviderApi`]), one module per API dialect, one enum
//! ([`Provider`]) built from config that dispatches to them.
//!
//! Every provider answers in OpenAI's format, whatever it speaks upstream:
//! - a complete answer is [`ChatReply::Complete`]: the JSON body to send the client, plus usage;
//! - a stream is [`ChatReply::Stream`]: [`ChatStream::next`] yields [`Chunk`]s whose `data` is the
//!   JSON of one `chat.completion.chunk`, ends with `Ok(None)` only when the upstream sent its end
//!   marker, and yields [`ProviderError::Truncated`] when the connection ended before it.
//!
//! Errors are classified ([`ErrorClass`]) so the router knows whether to retry, move on, or stop.
//! Providers do no timing, retrying or logging: that is the router's job.
//!
//! See `README.md` in this crate for the checklist of adding a provider.

mod anthropic;
mod azure_openai;
mod error;
mod openai;
pub mod sse;
pub mod transport;

pub use error::{ErrorClass, ProviderError};
pub use transport::{Client, Endpoint};

use bytes::Bytes;
use std::future::Future;
use std::time::Duration;
use tollgate_config::{Provider as ProviderConfig, ProviderKind};
use tollgate_types::openai::{ChatCompletionRequest, EmbeddingsRequest, Usage};

/// What every provider can do. Implemented by each dialect module and dispatched by [`Provider`].
pub trait ProviderApi {
    /// Sends a chat request with `model` as the upstream model.
    fn chat(
        &self,
        http: Via<'_>,
        req: &ChatCompletionRequest,
        model: &str,
    ) -> impl Future<Output = Result<ChatReply, ProviderError>> + Send;

    /// Sends an embeddings request; the answer is OpenAI's embeddings JSON.
    fn embeddings(
        &self,
        http: Via<'_>,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> impl Future<Output = Result<Complete, ProviderError>> + Send;
}

/// A complete answer in OpenAI's format.
#[derive(Debug, Clone)]
pub struct Complete {
    /// The JSON body for the client.
    pub body: Bytes,
    /// Usage, if the provider reported it.
    pub usage: Option<Usage>,
}

/// A chat answer: complete or streamed.
#[derive(Debug)]
pub enum ChatReply {
    /// Non-streamed.
    Complete(Complete),
    /// Streamed.
    Stream(ChatStream),
}

/// One streamed chunk in OpenAI's format.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// JSON of one `chat.completion.chunk`.
    pub data: Bytes,
    /// Usage carried by this chunk, if any.
    pub usage: Option<Usage>,
    /// The chunk has no choices and only carries usage: a client that did not ask for usage
    /// must not see it.
    pub usage_only: bool,
}

/// A stream of chunks from one upstream response.
#[derive(Debug)]
pub enum ChatStream {
    /// OpenAI wire (OpenAI, Azure, compatible servers).
    OpenAi(openai::OpenAiStream),
    /// Anthropic events translated to chunks.
    Anthropic(anthropic::AnthropicStream),
}

impl ChatStream {
    /// The next chunk; `Ok(None)` once the upstream's end marker arrived.
    pub async fn next(&mut self) -> Result<Option<Chunk>, ProviderError> {
        match self {
            ChatStream::OpenAi(s) => s.next().await,
            ChatStream::Anthropic(s) => s.next().await,
        }
    }
}

/// A configured provider.
#[derive(Debug, Clone)]
pub enum Provider {
    /// OpenAI or an OpenAI-compatible server.
    OpenAi(openai::OpenAi),
    /// Azure OpenAI.
    Azure(azure_openai::AzureOpenAi),
    /// Anthropic.
    Anthropic(anthropic::Anthropic),
}

impl Provider {
    /// Builds the provider a config entry describes.
    pub fn from_config(cfg: &ProviderConfig) -> Provider {
        match cfg.kind {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                Provider::OpenAi(openai::OpenAi::new(cfg))
            }
            ProviderKind::AzureOpenai => Provider::Azure(azure_openai::AzureOpenAi::new(cfg)),
            ProviderKind::Anthropic => Provider::Anthropic(anthropic::Anthropic::new(cfg)),
        }
    }

    /// `gen_ai.provider.name` in OpenTelemetry's GenAI conventions.
    pub fn otel_name(kind: ProviderKind) -> &'static str {
        match kind {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => "openai",
            ProviderKind::AzureOpenai => "azure.ai.openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

impl ProviderApi for Provider {
    async fn chat(
        &self,
        http: Via<'_>,
        req: &ChatCompletionRequest,
        model: &str,
    ) -> Result<ChatReply, ProviderError> {
        match self {
            Provider::OpenAi(p) => p.chat(http, req, model).await,
            Provider::Azure(p) => p.chat(http, req, model).await,
            Provider::Anthropic(p) => p.chat(http, req, model).await,
        }
    }

    async fn embeddings(
        &self,
        http: Via<'_>,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<Complete, ProviderError> {
        match self {
            Provider::OpenAi(p) => p.embeddings(http, req, model).await,
            Provider::Azure(p) => p.embeddings(http, req, model).await,
            Provider::Anthropic(p) => p.embeddings(http, req, model).await,
        }
    }
}

/// How one attempt is sent: the pooled HTTP client, and the W3C `traceparent` naming the
/// attempt's span when the gateway traces (so the provider's own spans join the caller's trace).
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// The client (see [`Client`]).
    pub http: &'a Client,
    /// `traceparent` to send, if any.
    pub traceparent: Option<&'a str>,
    /// The caller's `tracestate`, passed on with `traceparent`.
    pub tracestate: Option<&'a str>,
}

impl<'a> Via<'a> {
    /// Sends over `http` with no trace context.
    pub fn plain(http: &'a Client) -> Via<'a> {
        Via {
            http,
            traceparent: None,
            tracestate: None,
        }
    }

    /// A POST to `url`, carrying the trace context.
    pub(crate) fn post(&self, url: &'a Endpoint) -> transport::Post<'a> {
        let b = self.http.post(url);
        match (self.traceparent, self.tracestate) {
            (Some(t), Some(s)) => b.header("traceparent", t).header("tracestate", s),
            (Some(t), None) => b.header("traceparent", t),
            _ => b,
        }
    }
}

/// A reqwest client for the gateway's other outbound calls (alert webhooks): pooled,
/// `TCP_NODELAY`, redirects not followed, proxies from the environment honoured. Providers use
/// [`Client`].
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::Transport(e.to_string()))
}

/// Sends a JSON body and turns a non-2xx answer into [`ProviderError::Status`].
async fn send_json(
    post: transport::Post<'_>,
    body: Vec<u8>,
) -> Result<transport::Response, ProviderError> {
    let resp = post.send_json(body).await?;
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(error::status_error(resp).await)
    }
}

/// The largest complete chat answer read from a provider: 16 MiB. The biggest real one (128
/// choices of a long answer) is a few MiB; a provider sending more is broken or hostile, and the
/// whole answer is held in memory.
pub const MAX_CHAT_ANSWER_BYTES: usize = 16 << 20;

/// The largest embeddings answer: 256 MiB (2,048 inputs of 3,072 dimensions as JSON numbers
/// come to about 130 MB).
pub const MAX_EMBEDDINGS_ANSWER_BYTES: usize = 256 << 20;

/// Reads SSE events off a response.
#[derive(Debug)]
pub(crate) struct SseReader {
    body: transport::ResponseBody,
    decoder: sse::SseDecoder,
    eof: bool,
}

impl SseReader {
    pub(crate) fn new(resp: transport::Response) -> Self {
        SseReader {
            body: resp.into_body(),
            decoder: sse::SseDecoder::new(),
            eof: false,
        }
    }

    /// The next event, or `None` at the end of the body.
    pub(crate) async fn next_event(&mut self) -> Result<Option<sse::SseEvent>, ProviderError> {
        loop {
            if let Some(e) = self.decoder.next_event() {
                return Ok(Some(e));
            }
            if self.eof {
                return Ok(self.decoder.finish());
            }
            if self.decoder.overflowed() {
                return Err(ProviderError::InvalidResponse(format!(
                    "a stream event longer than {} MiB",
                    sse::MAX_EVENT_BYTES >> 20
                )));
            }
            match self.body.chunk().await {
                Ok(Some(bytes)) => self.decoder.push(&bytes),
                Ok(None) => self.eof = true,
                // A connection cut mid-body is a truncated stream, whatever the transport said.
                Err(_) => return Err(ProviderError::Truncated),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(body: Vec<u8>) -> SseReader {
        let resp = reqwest::Response::from(http::Response::new(body));
        SseReader::new(transport::Response::from(resp))
    }

    #[test]
    fn a_stream_event_past_the_bound_ends_the_stream_as_unreadable() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut body = b"data: {\"ok\":1}\n\ndata: ".to_vec();
        body.resize(body.len() + sse::MAX_EVENT_BYTES + 1, b'y');
        let mut r = reader(body);
        rt.block_on(async {
            let first = r.next_event().await.unwrap().unwrap();
            assert_eq!(first.data, "{\"ok\":1}");
            let err = r.next_event().await.unwrap_err();
            assert!(
                matches!(&err, ProviderError::InvalidResponse(m) if m.contains("8 MiB")),
                "{err:?}"
            );
        });
    }
}
