//! Relaying a committed stream to the client.
//!
//! A task, tracked by the gateway so shutdown waits for it, drives the upstream stream to its end
//! and hands SSE frames to the response body through a small bounded channel. Chunks go out the
//! moment they arrive (no batching, no delay). If the client disconnects, the task keeps reading
//! the upstream to the end — so usage, and later cost and the ledger record, stay right — and
//! simply stops forwarding. If the upstream stream breaks (cut connection, missing `[DONE]`,
//! an error event, silence longer than the route's idle timeout), the client gets an error event
//! and no `[DONE]`: never a silent, truncated 200.

use crate::context::RequestContext;
use crate::error::error_json;
use crate::settle::Books;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;
use tollgate_providers::{ChatStream, Chunk, ProviderError};
use tollgate_types::openai::Usage;

/// Everything the relay task needs to finish the request's bookkeeping.
#[derive(Debug)]
pub struct StreamJob {
    /// The request so far.
    pub ctx: RequestContext,
    /// First chunk, already read by the router.
    pub first: Option<Chunk>,
    /// The rest of the upstream stream.
    pub rest: ChatStream,
    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    pub client_wants_usage: bool,
    /// Longest allowed silence between chunks.
    pub idle_timeout: Duration,
    /// Longest the stream may go on in all, from its first chunk.
    pub total_timeout: Duration,
    /// Route name, for metrics.
    pub route_name: String,
    /// `gen_ai.provider.name` of the deployment that answered.
    pub provider_otel: &'static str,
    /// The deployment that answered.
    pub target: crate::routing::Target,
    /// The request (to estimate usage if the provider reports none).
    pub req: tollgate_types::openai::ChatCompletionRequest,
    /// Response headers to add (`x-tollgate-*`).
    pub headers: Vec<(&'static str, HeaderValue)>,
    /// What the client may be told of an upstream error.
    pub redactor: crate::routing::Redactor,
    /// The policy's guard over an upstream error's text.
    pub errors: crate::shield::OutputGuard,
    /// The output guard, when the policy scans answers or tokens are to be put back.
    pub shield: Option<crate::shield::StreamShield>,
}

fn frame(data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(data);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

fn error_frame(e: &ProviderError) -> Bytes {
    let code = match e {
        ProviderError::Truncated => "upstream_stream_truncated",
        ProviderError::Timeout => "upstream_stream_idle_timeout",
        ProviderError::StreamTooLong(_) => "stream_timeout",
        ProviderError::InvalidResponse(_) => "upstream_invalid_response",
        _ => "upstream_stream_error",
    };
    frame(&error_json(e.to_string(), "server_error", None, Some(code)))
}

/// Starts relaying in a task of `tasks` (which shutdown waits for) and returns the streaming
/// response; the task settles and records the request through `books` when the stream ends.
pub fn start(books: &Arc<Books>, tasks: &TaskTracker, job: StreamJob) -> Response {
    // The answer starts here: feedback may name the request from now on (an application may
    // report an abandoned stream before it ends).
    if let Some(caller) = &job.ctx.caller {
        books
            .recent
            .answered(&caller.use_case_id, &job.ctx.request_id);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let overhead = job.ctx.overhead();
    let headers = job.headers.clone();
    let books = books.clone();
    let out = Out {
        tx,
        cut: cut.clone(),
    };
    tasks.spawn(async move { drive(books, job, out, overhead).await });
    // After the last frame: an error if the client was cut off, so the connection is closed
    // without the final chunk and the client can tell its answer is incomplete.
    use tokio_stream::StreamExt;
    let end = tokio_stream::iter(std::iter::once_with(move || {
        cut.load(std::sync::atomic::Ordering::Acquire)
    }))
    .filter_map(|cut| {
        cut.then(|| {
            Err(std::io::Error::other(
                "the client stopped reading the stream",
            ))
        })
    });
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<Bytes, std::io::Error>);
    let body = Body::from_stream(frames.chain(end));
    let mut resp = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response();
    for (k, v) in headers {
        resp.headers_mut().insert(k, v);
    }
    resp
}

/// The client's side of the relay: frames to its body, and whether it was cut off.
struct Out {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    cut: Arc<std::sync::atomic::AtomicBool>,
}

async fn drive(books: Arc<Books>, mut job: StreamJob, tx: Out, overhead: Duration) {
    let first_chunk_at = job.ctx.received.elapsed();
    let mut client_gone = false;
    let mut guard = OutputGuard::for_request(&job.req);
    let mut usage: Option<Usage> = None;
    let mut seen: Vec<Bytes> = Vec::new();
    let mut next = job.first.take().map(Ok);
    // A stream that never stops (chunks coming faster than the idle timeout, for ever) is cut
    // here; the upstream is dropped with it.
    let deadline = tokio::time::Instant::now() + job.total_timeout;
    let outcome: Result<(), ProviderError> = loop {
        let item = match next.take() {
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(e)) => Err(e),
            None if tokio::time::Instant::now() >= deadline => {
                Err(ProviderError::StreamTooLong(job.total_timeout))
            }
            None => {
                let wait = (tokio::time::Instant::now() + job.idle_timeout).min(deadline);
                match tokio::time::timeout_at(wait, job.rest.next()).await {
                    Ok(r) => r,
                    Err(_) if wait == deadline => {
                        Err(ProviderError::StreamTooLong(job.total_timeout))
                    }
                    Err(_) => Err(ProviderError::Timeout),
                }
            }
        };
        match item {
            Ok(Some(chunk)) => {
                if let Some(u) = chunk.usage.clone() {
                    usage = Some(u);
                }
                if guard.over(&chunk) {
                    // The upstream ignored the output cap the reservation relies on: stop here,
                    // dropping (and so cancelling) the upstream stream.
                    let e = ProviderError::StreamError(
                        "the provider kept streaming past the request's output cap".into(),
                    );
                    send(&tx, error_frame(&e), &mut client_gone, job.idle_timeout).await;
                    break Err(e);
                }
                // Kept (a refcount each) in case the provider never reports usage.
                seen.push(chunk.data.clone());
                if chunk.usage_only && !job.client_wants_usage {
                    continue;
                }
                let data = match job.shield.as_mut().map(|s| s.try_rewrite(&chunk.data)) {
                    Some(Ok(data)) => data,
                    Some(Err(e)) => {
                        // What the output guard still holds was read: it goes out first.
                        if let Some(last) = job.shield.as_mut().and_then(|s| s.finish()) {
                            send(&tx, frame(&last), &mut client_gone, job.idle_timeout).await;
                        }
                        send(&tx, error_frame(&e), &mut client_gone, job.idle_timeout).await;
                        break Err(e);
                    }
                    None => chunk.data.clone(),
                };
                send(&tx, frame(&data), &mut client_gone, job.idle_timeout).await;
            }
            Ok(None) => {
                // What the output guard still holds goes out before the end.
                if let Some(last) = job.shield.as_mut().and_then(|s| s.finish()) {
                    send(&tx, frame(&last), &mut client_gone, job.idle_timeout).await;
                }
                // `[DONE]` goes out once the request is recorded (below).
                break Ok(());
            }
            Err(e) => {
                // The text the model wrote before failing is the client's: what the output
                // guard still holds is scanned and goes out before the error.
                if let Some(last) = job.shield.as_mut().and_then(|s| s.finish()) {
                    send(&tx, frame(&last), &mut client_gone, job.idle_timeout).await;
                }
                send(
                    &tx,
                    error_frame(&job.errors.clean_error(job.redactor.redact(e.clone()))),
                    &mut client_gone,
                    job.idle_timeout,
                )
                .await;
                break Err(e);
            }
        }
    };
    match job.shield.as_mut() {
        Some(s) => {
            s.report_into(&mut job.ctx.guard);
            if let (Some(p), Some(a)) = (job.ctx.payload.as_mut(), s.answer_for_log()) {
                p.answer = a;
            }
        }
        None => job.ctx.guard.output = crate::shield::Ran::Off,
    }
    let total = job.ctx.received.elapsed();
    let charge = books.settle(
        "chat",
        job.provider_otel,
        &job.route_name,
        job.target,
        usage,
        |model| {
            let text = tollgate_meter::estimate::chunks_text(seen.iter().map(|b| b.as_ref()));
            tollgate_meter::estimate::chat_usage(model, &job.req, &text)
        },
    );
    books.metrics.operation(
        "chat",
        job.provider_otel,
        &job.route_name,
        total,
        Some(first_chunk_at),
    );
    books.metrics.request(
        "chat",
        &job.route_name,
        200,
        true,
        first_chunk_at,
        Some(overhead),
    );
    if let Err(e) = &outcome {
        books.metrics.error(e.kind());
        tracing::warn!(request_id = %job.ctx.request_id, route = %job.route_name, error = e.kind(), client_gone, "stream ended with an upstream error");
    } else if client_gone {
        tracing::debug!(request_id = %job.ctx.request_id, "client disconnected; upstream stream drained to the end");
    }
    let outcome_name = match (&outcome, client_gone) {
        (Err(e), _) => e.kind(),
        (Ok(()), true) => "client_disconnected",
        (Ok(()), false) => "ok",
    };
    books.record(
        &mut job.ctx,
        200,
        outcome_name,
        Some(&charge),
        Some(first_chunk_at),
    );
    // The end of the stream reaches the client after its record is queued: a report asked once
    // the stream has ended includes it (`DataPlane::settled`).
    if outcome.is_ok() {
        send(
            &tx,
            Bytes::from_static(b"data: [DONE]\n\n"),
            &mut client_gone,
            job.idle_timeout,
        )
        .await;
    }
    drop(tx);
}

/// Stops a stream whose upstream ignores the request's output cap. Only the cap's reservation
/// is at stake, so the limits are generous (a chunk carries about one token; a token is rarely
/// longer than a few bytes): more than twice the cap in chunks, or more than 1 KiB of chunk data
/// per capped token, and the stream is certainly past the cap.
#[derive(Debug)]
struct OutputGuard {
    max_chunks: Option<u64>,
    max_bytes: Option<u64>,
    chunks: u64,
    bytes: u64,
}

impl OutputGuard {
    fn for_request(req: &tollgate_types::openai::ChatCompletionRequest) -> Self {
        let cap = req
            .output_cap()
            .map(|c| u64::from(c) * u64::from(req.n.unwrap_or(1).max(1)));
        OutputGuard {
            max_chunks: cap.map(|c| 2 * c + 64),
            max_bytes: cap.map(|c| c * 1024 + 64 * 1024),
            chunks: 0,
            bytes: 0,
        }
    }

    /// Counts `chunk`; true once the stream is past the cap.
    fn over(&mut self, chunk: &Chunk) -> bool {
        self.chunks += 1;
        self.bytes += chunk.data.len() as u64;
        self.max_chunks.is_some_and(|m| self.chunks > m)
            || self.max_bytes.is_some_and(|m| self.bytes > m)
    }
}

/// Forwards a frame unless the client is gone; notes when it goes. A client that accepts nothing
/// for `patience` (the route's stream idle timeout: as long as the upstream may be silent) is
/// treated as gone, so it can never hold the upstream: the relay drains the upstream to its end
/// without it, and the request is recorded.
async fn send(tx: &Out, bytes: Bytes, gone: &mut bool, patience: Duration) {
    if *gone {
        return;
    }
    match tokio::time::timeout(patience, tx.tx.send(bytes)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => *gone = true,
        Err(_) => {
            tracing::debug!("the client stopped reading the stream; it is dropped");
            tx.cut.store(true, std::sync::atomic::Ordering::Release);
            *gone = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> tollgate_types::openai::ChatCompletionRequest {
        serde_json::from_str(body).unwrap()
    }

    fn chunk(len: usize) -> Chunk {
        Chunk {
            data: Bytes::from(vec![b'x'; len]),
            usage: None,
            usage_only: false,
        }
    }

    /// Counts chunks of `len` bytes until the guard trips; the number of the chunk that tripped it.
    fn trips_at(guard: &mut OutputGuard, len: usize, most: u64) -> Option<u64> {
        (1..=most).find(|_| guard.over(&chunk(len)))
    }

    #[test]
    fn the_output_guard_allows_twice_the_cap_in_chunks_and_trips_on_the_next() {
        let req = request(r#"{"model":"m","messages":[],"max_tokens":10}"#);
        let mut g = OutputGuard::for_request(&req);
        assert_eq!(trips_at(&mut g, 1, 1000), Some(2 * 10 + 64 + 1));
    }

    #[test]
    fn the_output_guard_scales_with_n() {
        // Four choices of 10 tokens each: 4 × 10 × 2 + 64 chunks are allowed.
        let req = request(r#"{"model":"m","messages":[],"max_tokens":10,"n":4}"#);
        let mut g = OutputGuard::for_request(&req);
        assert_eq!(trips_at(&mut g, 1, 1000), Some(2 * 40 + 64 + 1));
    }

    #[test]
    fn the_output_guard_trips_on_bytes_past_one_kib_per_capped_token() {
        // 10 tokens: 10 KiB + 64 KiB of chunk data at most; chunks of 1 KiB trip on the 75th.
        let req = request(r#"{"model":"m","messages":[],"max_tokens":10}"#);
        let mut g = OutputGuard::for_request(&req);
        assert_eq!(trips_at(&mut g, 1024, 1000), Some(10 + 64 + 1));
    }

    #[test]
    fn a_request_without_a_cap_is_never_cut() {
        let req = request(r#"{"model":"m","messages":[]}"#);
        let mut g = OutputGuard::for_request(&req);
        assert_eq!(trips_at(&mut g, 64 * 1024, 10_000), None);
    }
}
