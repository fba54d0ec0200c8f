//! The HTTP server around the app: an accept loop on hyper-util's server (HTTP/1.1, and HTTP/2
//! with prior knowledge, h2c), with what `axum::serve` lacks against slow or idle clients.
//!
//! - **Connection limit** (`server.max_connections`): a connection is accepted only with a free
//!   slot; above the limit new connections wait in the kernel's listen backlog until one closes
//!   (when the backlog is full too, the kernel drops new attempts, which clients retry until their
//!   connect timeout). Nothing is read from a
//!   connection that is not accepted, and an `accept` error (out of file descriptors) pauses the
//!   loop for a second instead of ending it.
//! - **Request-head timeout** (`server.header_read_timeout_ms`): a connection with no request in
//!   flight — just opened, idle between keep-alive requests, or halfway through sending a request
//!   head — is closed once that lasts longer than the timeout. It is asked to close gracefully
//!   (HTTP/2: `GOAWAY`), and dropped if it has not closed [`CLOSE_GRACE`] later.
//! - **Body timeout** (`server.body_read_timeout_ms`): a request body must have arrived in full
//!   within the timeout of the first read of it; otherwise reading it fails with
//!   [`BodyReadTimeout`], which the body reader answers with an OpenAI-shaped 408, and the
//!   connection is closed after that answer (its unread body leaves it unusable).
//! - Every accepted socket gets `TCP_NODELAY`; every request carries the client's address as
//!   `ConnectInfo<SocketAddr>` (the control plane throttles failed logins by it).
//! - **Graceful shutdown**: when `stop` turns true the listener is closed, every connection is asked
//!   to close once its requests are answered, and `run` returns when all have closed. Dropping
//!   the future of `run` closes the connections that remain.

use crate::Gateway;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tollgate_http::extract::BodyReadTimeout;

/// How long a connection that timed out may take to close gracefully before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the server enforces on client connections (from `server:`).
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_connections: usize,
}

/// Serves `app` on `listener` until `stop` turns true (or its sender is dropped), then stops
/// accepting, lets every connection finish the requests it has, and returns once all are closed.
pub(crate) async fn run(
    gw: Arc<Gateway>,
    app: Router,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let s = &gw.config.server;
    let limits = Limits {
        header_read_timeout: s.header_read_timeout,
        body_read_timeout: s.body_read_timeout,
        max_connections: s.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    // Connections still open when this future is dropped (the shutdown grace is over) are closed.
    let abandon = CancellationToken::new();
    let _abandon_on_drop = abandon.clone().drop_guard();
    let mut builder = Builder::new(TokioExecutor::new());
    // As `axum::serve` does (extended CONNECT, for WebSockets over HTTP/2).
    builder.http2().enable_connect_protocol();
    loop {
        // A free slot first: over the limit, new connections wait in the listen backlog.
        let slot = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (tcp, addr) = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, say: wait for some to close instead of spinning.
                    tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
                    tokio::select! {
                        () = stopped(&mut stop) => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        // Small responses must not wait for the client's delayed ACK (Nagle).
        let _ = tcp.set_nodelay(true);
        connections.spawn(connection(
            Conn {
                gw: gw.clone(),
                app: app.clone(),
                addr,
                limits,
                builder: builder.clone(),
                _slot: slot,
            },
            tcp,
            stop.clone(),
            abandon.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// What one connection task owns. The slot is given back when the task ends.
struct Conn {
    gw: Arc<Gateway>,
    app: Router,
    addr: SocketAddr,
    limits: Limits,
    builder: Builder<TokioExecutor>,
    _slot: OwnedSemaphorePermit,
}

/// Serves one connection until it closes, the server stops (gracefully), it has had no request
/// in flight for the head timeout, or the server abandons it.
async fn connection(
    conn: Conn,
    tcp: TcpStream,
    mut stop: watch::Receiver<bool>,
    abandon: CancellationToken,
) {
    let metrics = &conn.gw.metrics;
    metrics.connection_opened();
    let _closed = OnDrop(|| metrics.connection_closed());
    let (activity, watch_activity) = watch::channel(Activity::default());
    let service = ConnService {
        app: conn.app.clone(),
        addr: conn.addr,
        body_read_timeout: conn.limits.body_read_timeout,
        activity: Arc::new(activity),
    };
    let http = conn
        .builder
        .serve_connection_with_upgrades(TokioIo::new(tcp), service);
    tokio::pin!(http);
    let idle = idle_too_long(watch_activity, conn.limits.header_read_timeout);
    let abandoned = abandon.cancelled();
    let stopping = stopped(&mut stop);
    tokio::pin!(idle, abandoned, stopping);
    let mut stopped_yet = false;
    loop {
        tokio::select! {
            _ = http.as_mut() => return,
            () = &mut abandoned => return,
            () = &mut stopping, if !stopped_yet => {
                stopped_yet = true;
                http.as_mut().graceful_shutdown();
            }
            () = &mut idle => {
                metrics.connection_timed_out();
                http.as_mut().graceful_shutdown();
                tokio::select! {
                    _ = http.as_mut() => {}
                    () = &mut abandoned => {}
                    () = tokio::time::sleep(CLOSE_GRACE) => {}
                }
                return;
            }
        }
    }
}

/// Resolves once `stop` is true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs `f` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// Errors of `accept` that concern one connection only (axum's `serve` treats them alike).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// The requests of one connection: how many are in flight (until their answer's body has been
/// sent or dropped), and how many have started.
#[derive(Debug, Default)]
struct Activity {
    in_flight: usize,
    started: u64,
}

/// Resolves once the connection has gone `limit` without a request in flight: from its start,
/// or from the end of its last answer. A request that starts resets the clock.
async fn idle_too_long(mut activity: watch::Receiver<Activity>, limit: Duration) {
    loop {
        let idle = activity.wait_for(|a| a.in_flight == 0).await.is_ok();
        if !idle {
            return std::future::pending().await;
        }
        let seen = activity.borrow().started;
        let next = async { activity.wait_for(|a| a.started != seen).await.is_ok() };
        match tokio::time::timeout(limit, next).await {
            Ok(true) => continue,
            Ok(false) => return std::future::pending().await,
            Err(_) => return,
        }
    }
}

/// A request in flight on its connection; dropping it ends the request.
struct InFlight(Arc<watch::Sender<Activity>>);

impl InFlight {
    fn start(activity: &Arc<watch::Sender<Activity>>) -> InFlight {
        activity.send_modify(|a| {
            a.in_flight += 1;
            a.started += 1;
        });
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .send_modify(|a| a.in_flight = a.in_flight.saturating_sub(1));
    }
}

/// The app as hyper calls it for one connection.
#[derive(Clone)]
struct ConnService {
    app: Router,
    addr: SocketAddr,
    body_read_timeout: Duration,
    activity: Arc<watch::Sender<Activity>>,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<AnswerBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(&self.activity);
        req.extensions_mut().insert(ConnectInfo(self.addr));
        let limit = self.body_read_timeout;
        let req = req.map(|body| Body::new(TimedBody::new(body, limit)));
        let answer = tower::ServiceExt::oneshot(self.app.clone(), req);
        Box::pin(async move {
            let resp = answer.await?;
            Ok(resp.map(|body| AnswerBody {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// An answer's body, holding its request in flight until it is sent (or dropped).
struct AnswerBody {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails with [`BodyReadTimeout`] unless it has arrived in full within its
/// limit of the first read.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration) -> TimedBody {
        TimedBody {
            inner,
            limit,
            deadline: None,
            timer: None,
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let limit = this.limit;
        let deadline = *this.deadline.get_or_insert_with(|| Instant::now() + limit);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimeout(limit))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
