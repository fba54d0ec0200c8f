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
use tollgate_config::RequestThreads;
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
    runtimes: &RequestRuntimes,
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
        let (handle, load) = runtimes.pick().unzip();
        let conn = Conn {
            gw: gw.clone(),
            app: app.clone(),
            addr,
            limits,
            builder: builder.clone(),
            _slot: slot,
            _load: load,
        };
        let Some(handle) = handle else {
            connections.spawn(connection(conn, tcp, stop.clone(), abandon.clone()));
            continue;
        };
        // Off this runtime's reactor, onto the request thread's: the socket's readiness wakes
        // the thread that serves it, not this one.
        let Ok(tcp) = tcp.into_std() else { continue };
        let (stop, abandon) = (stop.clone(), abandon.clone());
        connections.spawn_on(
            async move {
                if let Ok(tcp) = TcpStream::from_std(tcp) {
                    connection(conn, tcp, stop, abandon).await;
                }
            },
            &handle,
        );
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// The request threads of `server.request_threads`: each a tokio runtime with one worker, given
/// whole connections — the fewest open first — that it serves from start to end, with its own
/// pool of connections to providers (`tollgate_providers::transport::set_shard`).
///
/// Why: on a small machine most of what a request costs beyond its own work was threads waking
/// each other. tokio's shared runtime wakes an idle worker whenever work arrives so it can steal
/// some, and a pooled provider connection opened by one worker is served by that worker's task
/// whatever worker the request is on. With a connection's socket, its requests and their
/// provider connections on one thread, a request's bytes wake that thread and no second one to
/// share the work (the accept loop still hands over each new connection, and the ledger's
/// thread each batch). Side by side at 2,000 requests/s (bench/README.md, thirty-first
/// session): 12–17 % less CPU per request. A request's heavy work (a very large prompt) still
/// steps aside (`block_in_place` in [`crate::context::heavy`]: the runtime is multi-threaded
/// with one worker), so the thread's other connections are not held up behind it.
pub(crate) struct RequestRuntimes {
    runtimes: Vec<(tokio::runtime::Runtime, Arc<std::sync::atomic::AtomicUsize>)>,
}

impl RequestRuntimes {
    /// Starts the threads `threads` asks for (none for `shared`: connections are served by the
    /// calling runtime).
    pub(crate) fn start(threads: RequestThreads) -> std::io::Result<RequestRuntimes> {
        let n = match threads {
            RequestThreads::Own(n) => n,
            RequestThreads::Shared => 0,
        };
        // Each runtime goes in as it is made: if a later one cannot be, those made so far are
        // shut down by `Drop`, never dropped in async context.
        let mut made = RequestRuntimes {
            runtimes: Vec::with_capacity(n),
        };
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(format!("tollgate-req-{i}"))
                // Provider connections opened here stay here (0 is the main runtime's pool).
                .on_thread_start(move || tollgate_providers::transport::set_shard(i + 1))
                .enable_all()
                .build()?;
            made.runtimes.push((rt, Arc::default()));
        }
        Ok(made)
    }

    /// The runtime with the fewest connections, and the count the connection holds there;
    /// `None` when connections are served by the calling runtime.
    fn pick(&self) -> Option<(tokio::runtime::Handle, Load)> {
        use std::sync::atomic::Ordering;
        let (rt, open) = self
            .runtimes
            .iter()
            .min_by_key(|(_, open)| open.load(Ordering::Relaxed))?;
        open.fetch_add(1, Ordering::Relaxed);
        Some((rt.handle().clone(), Load(open.clone())))
    }

    /// Stops the threads (what still runs there has outlived the shutdown grace) and waits,
    /// briefly, for them to end.
    pub(crate) async fn stop(mut self) {
        // All at once: one deadline for all of them, however many there are.
        let stopping: Vec<_> = self
            .runtimes
            .drain(..)
            .map(|(rt, _)| tokio::task::spawn_blocking(move || rt.shutdown_timeout(CLOSE_GRACE)))
            .collect();
        for s in stopping {
            let _ = s.await;
        }
    }
}

impl Drop for RequestRuntimes {
    fn drop(&mut self) {
        // `serve` dropped before its end, in async context: without waiting.
        for (rt, _) in self.runtimes.drain(..) {
            rt.shutdown_background();
        }
    }
}

/// One open connection on a request runtime, counted while it lives.
struct Load(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What one connection task owns. The slot is given back when the task ends.
struct Conn {
    gw: Arc<Gateway>,
    app: Router,
    addr: SocketAddr,
    limits: Limits,
    builder: Builder<TokioExecutor>,
    _slot: OwnedSemaphorePermit,
    /// Counted on its request runtime while it is open.
    _load: Option<Load>,
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
