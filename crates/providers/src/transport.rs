//! The HTTP client every provider shares.
//!
//! Direct connections (no proxy named in the environment) go through hyper's pooled client with
//! rustls (Mozilla's roots, ALPN offering HTTP/2 and HTTP/1.1), with nothing on top: the request
//! is built once from a URI parsed when the provider was built, and the answer's body is read as
//! hyper hands it over. That is the request path's client. reqwest, which it replaced there, added
//! its redirect, proxy and wrapper layers to every request — about 6 % of the gateway's CPU under
//! load, the URL parsed twice per request among them (docs/decisions/0014).
//!
//! When the environment names a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, in either case),
//! requests go through reqwest instead, which reads those variables (and `NO_PROXY`) and tunnels
//! as it always did: proxying is not reimplemented here.
//!
//! Either way: `TCP_NODELAY` (small requests must not wait for delayed ACKs), a connect timeout,
//! no overall timeout (the router times each attempt itself), and redirects never followed (a
//! request carrying a provider key and a prompt must not be re-sent to wherever a `Location`
//! header points; a 3xx is an upstream error).

use crate::ProviderError;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::error::Error as StdError;
use std::time::Duration;

/// hyper's pooled client over TCP or TLS.
type Lean =
    hyper_util::client::legacy::Client<TimedConnect<HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// How many times a request the provider refused unprocessed on HTTP/2 is sent again (as reqwest
/// did): a graceful GOAWAY or REFUSED_STREAM means the server never saw it.
const H2_RESENDS: usize = 2;

/// The environment variables that name a proxy (reqwest reads the same ones).
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `env` names a proxy: then requests go through reqwest, which honours it.
pub fn proxy_configured(env: impl Fn(&str) -> Option<String>) -> bool {
    PROXY_VARS
        .iter()
        .any(|v| env(v).is_some_and(|s| !s.trim().is_empty()))
}

/// The client to providers (cheap to clone: the pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Inner,
}

// One client per configured provider, built at start and never moved per request: the size of
// hyper's client beside reqwest's handle does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Inner {
    Lean(Shards),
    Proxied(reqwest::Client),
}

/// The pools: one for the main runtime and one per request thread (`server.request_threads`
/// is at most 64); a thread past them would share.
const SHARDS: usize = 65;

/// hyper's client, one pool per request runtime, each made when its runtime first sends. A
/// pooled connection is served by a task of the runtime that opened it: a request from another
/// runtime would hand each exchange to that runtime's thread and back, two wake-ups per request
/// on a machine where a wake-up costs tens of µs.
#[derive(Clone)]
struct Shards {
    pools: std::sync::Arc<[std::sync::OnceLock<Lean>]>,
    build: std::sync::Arc<dyn Fn() -> Lean + Send + Sync>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made = self.pools.iter().filter(|p| p.get().is_some()).count();
        f.debug_struct("Shards").field("pools_made", &made).finish()
    }
}

impl Shards {
    fn new(build: impl Fn() -> Lean + Send + Sync + 'static) -> Shards {
        Shards {
            pools: (0..SHARDS).map(|_| std::sync::OnceLock::new()).collect(),
            build: std::sync::Arc::new(build),
        }
    }

    /// The pool of the calling thread's runtime.
    fn here(&self) -> &Lean {
        self.pools[SHARD.with(std::cell::Cell::get) % self.pools.len()]
            .get_or_init(|| (self.build)())
    }
}

thread_local! {
    /// The request runtime this thread serves (0: the main runtime).
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the calling thread as serving request runtime `i` (see [`Shards`]): its requests use
/// that runtime's connection pool.
pub fn set_shard(i: usize) {
    SHARD.with(|s| s.set(i));
}

impl Client {
    /// The client for this process: through reqwest when the environment names a proxy, hyper
    /// directly otherwise.
    pub fn new(connect_timeout: Duration) -> Result<Client, ProviderError> {
        if proxy_configured(|v| std::env::var(v).ok()) {
            Client::proxied(connect_timeout)
        } else {
            Client::direct(connect_timeout)
        }
    }

    /// hyper's client, connecting directly (no proxy).
    pub fn direct(connect_timeout: Duration) -> Result<Client, ProviderError> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        // Per address tried; the whole of DNS, TCP and TLS is bounded by `TimedConnect` below.
        tcp.set_connect_timeout(Some(connect_timeout));
        // A connection a NAT or load balancer dropped silently is found within about a minute,
        // and a write the peer never acknowledges fails after 30 s (reqwest's defaults).
        tcp.set_keepalive(Some(Duration::from_secs(15)));
        tcp.set_keepalive_interval(Some(Duration::from_secs(15)));
        tcp.set_keepalive_retries(Some(3));
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        tcp.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ProviderError::Transport(format!("cannot set up TLS: {e}")))?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(tcp);
        let lean = Shards::new(move || {
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(1024)
                .build(TimedConnect {
                    inner: tls.clone(),
                    timeout: connect_timeout,
                })
        });
        Ok(Client {
            inner: Inner::Lean(lean),
        })
    }

    /// reqwest's client, which reads the proxy variables of the environment.
    pub fn proxied(connect_timeout: Duration) -> Result<Client, ProviderError> {
        Client::reqwest(reqwest::Client::builder(), connect_timeout)
    }

    /// reqwest's client from `builder`, set up as every provider's is.
    fn reqwest(
        builder: reqwest::ClientBuilder,
        connect_timeout: Duration,
    ) -> Result<Client, ProviderError> {
        let c = builder
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ProviderError::Transport(format!("cannot set up the client: {e}")))?;
        Ok(Client {
            inner: Inner::Proxied(c),
        })
    }

    /// Whether requests go through reqwest (a proxy is configured).
    pub fn is_proxied(&self) -> bool {
        matches!(self.inner, Inner::Proxied(_))
    }

    /// A POST to `url`.
    pub(crate) fn post<'a>(&'a self, url: &'a Endpoint) -> Post<'a> {
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
        if let Endpoint::Parsed {
            basic: Some(auth), ..
        } = url
        {
            headers.insert(http::header::AUTHORIZATION, auth.clone());
        }
        Post {
            client: self,
            url,
            headers,
            bad_header: None,
        }
    }
}

const USER_AGENT: &str = concat!("tollgate/", env!("CARGO_PKG_VERSION"));

/// An upstream URL, parsed once when the provider is built: parsing it on every request (host
/// normalisation included) showed as 2 % of the gateway's CPU under load. A URL that does not parse
/// is kept as written, so its error surfaces on the request that uses it.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Parsed.
    Parsed {
        /// For hyper.
        uri: Uri,
        /// The same URL for reqwest (a proxy configured).
        url: reqwest::Url,
        /// `Basic` credentials the URL carried (`https://user:pass@host/`), sent as a header as
        /// reqwest does; the URI no longer holds them.
        basic: Option<HeaderValue>,
    },
    /// As written (it does not parse).
    Raw(String),
}

impl Endpoint {
    /// `url`, parsed if it parses.
    pub fn new(url: String) -> Endpoint {
        let Ok(mut parsed) = reqwest::Url::parse(&url) else {
            return Endpoint::Raw(url);
        };
        let basic = basic_credentials(&mut parsed);
        match Uri::try_from(parsed.as_str()) {
            Ok(uri) => Endpoint::Parsed {
                uri,
                url: parsed,
                basic,
            },
            Err(_) => Endpoint::Raw(url),
        }
    }
}

/// Takes the user name and password out of `url`, as a `Basic` header value (marked sensitive),
/// decoded as reqwest decoded them: a name or password that is not UTF-8 once decoded sends none.
fn basic_credentials(url: &mut reqwest::Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode(s.as_bytes())
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let user = decode(url.username());
    let pass = url.password().map(decode);
    // Both setters only fail on URLs without a host, which a provider's URL always has.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let user = user?;
    let pass = match pass {
        Some(p) => Some(p?),
        None => None,
    };
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{user}:{}", pass.unwrap_or_default()));
    let mut v = HeaderValue::from_str(&format!("Basic {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// A POST being prepared.
#[derive(Debug)]
pub(crate) struct Post<'a> {
    client: &'a Client,
    url: &'a Endpoint,
    headers: HeaderMap,
    /// The name of a header whose value could not be sent (a control character in a configured
    /// key, say): the request fails with it, naming the header, never its value.
    bad_header: Option<&'static str>,
}

impl Post<'_> {
    /// Adds a header.
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(mut v) => {
                if is_credential(name) {
                    v.set_sensitive(true);
                }
                self.headers.insert(HeaderName::from_static(name), v);
            }
            Err(_) => self.bad_header = Some(name),
        }
        self
    }

    /// Sends `body` as JSON; the answer, whatever its status.
    pub(crate) async fn send_json(mut self, body: Vec<u8>) -> Result<Response, ProviderError> {
        if let Some(name) = self.bad_header {
            return Err(ProviderError::Transport(format!(
                "the {name} header's configured value cannot be sent in HTTP"
            )));
        }
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let (uri, url) = match self.url {
            Endpoint::Parsed { uri, url, .. } => (uri, url),
            Endpoint::Raw(_) => {
                return Err(ProviderError::Transport(
                    "the provider's URL is not a valid URL".into(),
                ));
            }
        };
        match &self.client.inner {
            Inner::Lean(c) => {
                let c = c.here();
                let body = Bytes::from(body);
                let mut resends = 0;
                let resp = loop {
                    let mut req = http::Request::new(Full::new(body.clone()));
                    *req.method_mut() = http::Method::POST;
                    *req.uri_mut() = uri.clone();
                    *req.headers_mut() = self.headers.clone();
                    match c.request(req).await {
                        Ok(resp) => break resp,
                        Err(e) if resends < H2_RESENDS && refused_unprocessed(&e) => resends += 1,
                        Err(e) => return Err(lean_error(e)),
                    }
                };
                let (parts, body) = resp.into_parts();
                Ok(Response {
                    status: parts.status,
                    headers: parts.headers,
                    body: ResponseBody(Body::Lean(body)),
                })
            }
            Inner::Proxied(c) => {
                let resp = c
                    .post(url.clone())
                    .headers(self.headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(ProviderError::from_reqwest)?;
                Ok(Response::from(resp))
            }
        }
    }
}

/// Headers whose values are credentials (kept out of any `Debug` output).
fn is_credential(name: &str) -> bool {
    matches!(name, "authorization" | "api-key" | "x-api-key")
}

/// A provider's answer: status and headers read, the body still to come.
#[derive(Debug)]
pub(crate) struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: ResponseBody,
}

/// The body of an answer, read piece by piece (a stream keeps only this, not the headers).
#[derive(Debug)]
pub(crate) struct ResponseBody(Body);

#[derive(Debug)]
enum Body {
    Lean(hyper::body::Incoming),
    Proxied(reqwest::Body),
}

impl From<reqwest::Response> for Response {
    fn from(resp: reqwest::Response) -> Self {
        let (parts, body) = http::Response::from(resp).into_parts();
        Response {
            status: parts.status,
            headers: parts.headers,
            body: ResponseBody(Body::Proxied(body)),
        }
    }
}

impl Response {
    /// The status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body, to read piece by piece.
    pub(crate) fn into_body(self) -> ResponseBody {
        self.body
    }

    /// The next piece of the body (see [`ResponseBody::chunk`]).
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        self.body.chunk().await
    }

    /// The whole body, if it is at most `limit` bytes (a larger one is refused as soon as it
    /// shows: its `content-length`, or the bytes read). A transport failure mid-body is an
    /// answer that could not be read.
    pub(crate) async fn bytes(mut self, limit: usize) -> Result<Bytes, ProviderError> {
        let too_long = || {
            ProviderError::InvalidResponse(format!(
                "the answer is longer than the {} MiB the gateway reads",
                limit >> 20
            ))
        };
        let declared = self
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_long());
        }
        let first = match self.chunk().await {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Bytes::new()),
            Err(e) => return Err(ProviderError::InvalidResponse(e)),
        };
        if first.len() > limit {
            return Err(too_long());
        }
        // Most answers arrive in one piece: no copy then.
        let mut all: Option<Vec<u8>> = None;
        loop {
            match self.chunk().await {
                Ok(Some(more)) => {
                    let v = all.get_or_insert_with(|| first.to_vec());
                    if v.len() + more.len() > limit {
                        return Err(too_long());
                    }
                    v.extend_from_slice(&more);
                }
                Ok(None) => return Ok(all.map(Bytes::from).unwrap_or(first)),
                Err(e) => return Err(ProviderError::InvalidResponse(e)),
            }
        }
    }
}

impl ResponseBody {
    /// The next piece of the body, `None` at its end (trailers are skipped). The error is the
    /// transport's, in words that name no URL or header.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            let frame = match &mut self.0 {
                Body::Lean(b) => b.frame().await.map(|f| f.map_err(|e| chain(&e))),
                Body::Proxied(b) => b
                    .frame()
                    .await
                    .map(|f| f.map_err(|e| chain(&e.without_url()))),
            };
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(f)) => match f.into_data() {
                    Ok(data) if !data.is_empty() => return Ok(Some(data)),
                    _ => {}
                },
            }
        }
    }
}

/// Whether the provider refused the request on HTTP/2 before processing it — a graceful GOAWAY
/// (`NO_ERROR`, the connection being retired) or `REFUSED_STREAM` — so it is safe to send again
/// (RFC 9113 §8.7).
fn refused_unprocessed(e: &hyper_util::client::legacy::Error) -> bool {
    sources(e)
        .filter_map(|s| s.downcast_ref::<h2::Error>())
        .any(|h| {
            h.is_remote()
                && ((h.is_go_away() && h.reason() == Some(h2::Reason::NO_ERROR))
                    || (h.is_reset() && h.reason() == Some(h2::Reason::REFUSED_STREAM)))
        })
}

/// Bounds the whole of making a connection — DNS, TCP, TLS — by the provider's connect
/// timeout, as reqwest did (hyper's own timeout covers only each TCP connect). A stalled TLS
/// handshake or DNS lookup is then a `Timeout` within seconds, and the router moves on.
#[derive(Debug, Clone)]
struct TimedConnect<C> {
    inner: C,
    timeout: Duration,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl<C> tower_service::Service<Uri> for TimedConnect<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(done) => done.map_err(Into::into),
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the connection was not made within the connect timeout",
                )) as BoxError),
            }
        })
    }
}

/// A hyper client error as a [`ProviderError`]: a connect timeout is a timeout (as reqwest
/// classed it), other connect failures (refused, DNS, TLS) are `Connect`, the rest `Transport`.
fn lean_error(e: hyper_util::client::legacy::Error) -> ProviderError {
    let timed_out = sources(&e).any(|s| {
        s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    if timed_out {
        ProviderError::Timeout
    } else if e.is_connect() {
        ProviderError::Connect(chain(&e))
    } else {
        ProviderError::Transport(chain(&e))
    }
}

/// `e` and its sources, outermost first.
fn sources<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// What went wrong, in words: the causes under the outermost error, which are the informative
/// ones (hyper's outermost says only "client error (Connect)", reqwest's "error sending
/// request"), at most the three innermost distinct. No URL or header is in any of them.
pub(crate) fn chain(e: &(dyn StdError + 'static)) -> String {
    // rustls' words for a certificate can name the host and every name on the certificate: a
    // client is told the kind of failure only.
    if let Some(tls) = sources(e).find_map(tls_error) {
        return match tls {
            rustls::Error::InvalidCertificate(_) => {
                "the provider's TLS certificate was not accepted"
            }
            _ => "the TLS handshake with the provider failed",
        }
        .to_string();
    }
    let all: Vec<String> = sources(e).map(|s| s.to_string()).collect();
    let causes = if all.len() > 1 { &all[1..] } else { &all[..] };
    // A layer's text often repeats its source's: keep one of each.
    let mut out: Vec<&str> = Vec::new();
    for p in causes.iter().rev() {
        if out.len() == 3 {
            break;
        }
        if !out.iter().any(|o| o.contains(p.as_str()) || p.contains(*o)) {
            out.push(p);
        }
    }
    out.reverse();
    out.join(": ")
}

/// The rustls error `e` is, or wraps in `io::Error`s (tokio-rustls hands it over in one, and
/// hyper-rustls may wrap that again).
fn tls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = e;
    loop {
        if let Some(tls) = cur.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cur = cur.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Each request thread sends through its own pool; threads that never said which they
    /// serve (the main runtime's) share the first, and more threads than pools share them.
    #[test]
    fn each_request_thread_has_a_pool_of_its_own() {
        let client = Client::direct(Duration::from_secs(1)).unwrap();
        let Inner::Lean(shards) = &client.inner else {
            panic!("not the direct client");
        };
        let pool = |shard: Option<usize>| {
            let shards = shards.clone();
            std::thread::spawn(move || {
                if let Some(i) = shard {
                    set_shard(i);
                }
                std::ptr::from_ref(shards.here()) as usize
            })
            .join()
            .unwrap()
        };
        let at = |i: usize| {
            shards.pools[i]
                .get()
                .map(|p| std::ptr::from_ref(p) as usize)
        };
        let main = pool(None);
        assert_eq!(Some(main), at(0));
        assert_eq!(pool(Some(0)), main);
        let one = pool(Some(1));
        assert_eq!(Some(one), at(1));
        assert_ne!(one, main);
        // The 64th request thread (`request_threads: 64`) has a pool of its own too.
        let last = pool(Some(64));
        assert_eq!(Some(last), at(64));
        assert!(![main, one].contains(&last));
        // Made only when used.
        assert!(at(2).is_none());
        assert_eq!(pool(Some(SHARDS + 1)), one);
    }

    /// The error of a request that must fail.
    async fn failure(client: &Client, url: &Endpoint) -> ProviderError {
        match client.post(url).send_json(b"{}".to_vec()).await {
            Ok(resp) => panic!("answered {}", resp.status()),
            Err(e) => e,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A one-connection HTTP/1.1 server: reads one request (headers and a `content-length`
    /// body), answers `answer` as written, and hands back what it read.
    async fn serve_once(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/v1/chat/completions",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
                assert!(n > 0, "the client closed before its request was whole");
            }
            sock.write_all(answer.as_bytes()).await.unwrap();
            sock.shutdown().await.unwrap();
            String::from_utf8_lossy(&got).to_string()
        });
        (url, task)
    }

    /// `client`'s answer to `{}` posted to a [`serve_once`] server answering `answer`, and the
    /// server's task (what it read).
    async fn answer_of(
        client: &Client,
        answer: &'static str,
    ) -> (Response, tokio::task::JoinHandle<String>) {
        let (url, server) = serve_once(answer).await;
        let resp = client
            .post(&Endpoint::new(url))
            .send_json(b"{}".to_vec())
            .await
            .unwrap();
        (resp, server)
    }

    /// The direct client, and reqwest's set up as behind a proxy but told to ignore the
    /// environment's proxies, so the test does not depend on the machine it runs on.
    fn both(timeout: Duration) -> [(&'static str, Client); 2] {
        [
            ("direct", Client::direct(timeout).unwrap()),
            (
                "reqwest",
                Client::reqwest(reqwest::Client::builder().no_proxy(), timeout).unwrap(),
            ),
        ]
    }

    #[test]
    fn both_clients_send_the_same_request_and_read_a_chunked_body_whole() {
        let rt = runtime();
        for (name, client) in both(Duration::from_secs(5)) {
            rt.block_on(async {
                let (url, server) = serve_once(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
                     6\r\n{\"a\":1\r\n1\r\n}\r\n0\r\n\r\n",
                )
                .await;
                let url = Endpoint::new(url);
                let resp = client
                    .post(&url)
                    .header("authorization", "Bearer sk-test")
                    .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
                    .send_json(br#"{"model":"m"}"#.to_vec())
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{name}");
                assert_eq!(resp.headers()["content-type"], "application/json", "{name}");
                assert_eq!(&resp.bytes(1 << 20).await.unwrap()[..], br#"{"a":1}"#, "{name}");
                let request = server.await.unwrap().to_ascii_lowercase();
                assert!(request.starts_with("post /v1/chat/completions http/1.1\r\n"), "{name}: {request}");
                for line in [
                    "content-type: application/json",
                    "authorization: bearer sk-test",
                    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                    concat!("user-agent: tollgate/", env!("CARGO_PKG_VERSION")),
                    "content-length: 13",
                    "host: 127.0.0.1:",
                ] {
                    assert!(request.contains(line), "{name}: {line} not in {request}");
                }
                assert!(request.ends_with(r#"{"model":"m"}"#), "{name}: {request}");
            });
        }
    }

    #[test]
    fn both_clients_hand_back_an_error_status_with_its_headers_and_body() {
        let rt = runtime();
        for (name, client) in both(Duration::from_secs(5)) {
            rt.block_on(async {
                let (resp, server) = answer_of(
                    &client,
                    "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 28\r\n\r\n\
                     {\"error\":{\"message\":\"slow\"}}",
                )
                .await;
                assert_eq!(resp.status().as_u16(), 429, "{name}");
                match crate::error::status_error(resp).await {
                    ProviderError::Status {
                        status,
                        message,
                        retry_after,
                    } => {
                        assert_eq!(status, 429, "{name}");
                        assert_eq!(message, "slow", "{name}");
                        assert_eq!(retry_after, Some(Duration::from_secs(7)), "{name}");
                    }
                    other => panic!("{name}: {other:?}"),
                }
                server.await.unwrap();
            });
        }
    }

    #[test]
    fn an_answer_longer_than_the_limit_is_refused_declared_or_not() {
        let rt = runtime();
        for (name, client) in both(Duration::from_secs(5)) {
            rt.block_on(async {
                // Declared too long: refused before the body is read.
                let (resp, server) = answer_of(&client, "HTTP/1.1 200 OK\r\ncontent-length: 2000\r\n\r\n").await;
                let err = resp.bytes(1000).await.unwrap_err();
                assert!(err.to_string().contains("longer than"), "{name}: {err}");
                server.await.unwrap();
                // Not declared: refused once the chunks read pass it; at the limit, read.
                for (size, ok) in [(1000, true), (1001, false)] {
                    let body = "a".repeat(size);
                    let answer: &'static str = Box::leak(
                        format!(
                            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                            500,
                            &body[..500],
                            size - 500,
                            &body[500..]
                        )
                        .into_boxed_str(),
                    );
                    let (resp, server) = answer_of(&client, answer).await;
                    let got = resp.bytes(1000).await;
                    assert_eq!(got.is_ok(), ok, "{name} {size}: {got:?}");
                    server.await.unwrap();
                }
            });
        }
    }

    #[test]
    fn a_redirect_is_an_error_of_its_own_never_followed() {
        let rt = runtime();
        for (name, client) in both(Duration::from_secs(5)) {
            rt.block_on(async {
                let (resp, server) = answer_of(&client, "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n",).await;
                let err = crate::error::status_error(resp).await;
                assert_eq!(err.kind(), "status_unexpected", "{name}");
                assert_eq!(err.class(), crate::ErrorClass::NextDeployment, "{name}");
                assert!(err.to_string().contains("redirect"), "{name}: {err}");
                assert!(!err.to_string().contains("elsewhere"), "{name}: {err}");
                server.await.unwrap();
            });
        }
    }

    #[test]
    fn a_body_cut_short_is_an_answer_that_could_not_be_read_and_a_refused_port_is_connect() {
        let rt = runtime();
        for (name, client) in both(Duration::from_secs(5)) {
            rt.block_on(async {
                let (resp, server) = answer_of(
                    &client,
                    "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\":",
                )
                .await;
                let err = resp.bytes(1 << 20).await.unwrap_err();
                assert!(
                    matches!(err, ProviderError::InvalidResponse(_)),
                    "{name}: {err:?}"
                );
                server.await.unwrap();

                // A port held bound but not listening: the connection is refused.
                let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let port = held.local_addr().unwrap().port();
                drop(held);
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket
                    .bind(format!("127.0.0.1:{port}").parse().unwrap())
                    .unwrap();
                let url = Endpoint::new(format!("http://127.0.0.1:{port}/v1"));
                let err = failure(&client, &url).await;
                assert!(matches!(err, ProviderError::Connect(_)), "{name}: {err:?}");
                // The cause is told (not just "client error"), and not the address.
                assert!(err.to_string().contains("refused"), "{name}: {err}");
                assert!(
                    !err.to_string().contains(&port.to_string()),
                    "{name}: {err}"
                );
                drop(socket);
            });
        }
    }

    #[test]
    fn a_connect_that_does_not_finish_in_time_is_a_timeout_for_both_clients() {
        let rt = runtime();
        rt.block_on(async {
            // A listener that never accepts, its queue filled: further SYNs are dropped, so a
            // connect neither succeeds nor fails until the client gives up.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(0).unwrap();
            let addr = listener.local_addr().unwrap();
            let mut fillers = Vec::new();
            for _ in 0..4 {
                let s = tokio::net::TcpSocket::new_v4().unwrap();
                if let Ok(Ok(c)) =
                    tokio::time::timeout(Duration::from_millis(300), s.connect(addr)).await
                {
                    fillers.push(c);
                }
            }
            for (name, client) in both(Duration::from_millis(200)) {
                let url = Endpoint::new(format!("http://{addr}/v1"));
                // The outer bound only turns a hang (a kernel that accepted anyway) into a failure.
                let err = tokio::time::timeout(Duration::from_secs(60), failure(&client, &url))
                    .await
                    .expect("the connect timeout did not fire");
                assert!(matches!(err, ProviderError::Timeout), "{name}: {err:?}");
            }
            drop(listener);
        });
    }

    #[test]
    fn a_tls_handshake_that_stalls_is_a_timeout_within_the_connect_timeout() {
        let rt = runtime();
        rt.block_on(async {
            // Accepts, reads the ClientHello, and never answers it.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let mut held = Vec::new();
                loop {
                    let (mut sock, _) = listener.accept().await.unwrap();
                    let mut buf = [0u8; 512];
                    let _ = sock.read(&mut buf).await;
                    held.push(sock);
                }
            });
            for (name, client) in both(Duration::from_millis(300)) {
                let url = Endpoint::new(format!("https://localhost:{port}/v1/chat/completions"));
                let err = tokio::time::timeout(Duration::from_secs(60), failure(&client, &url))
                    .await
                    .expect("the connect timeout did not cover the handshake");
                assert!(matches!(err, ProviderError::Timeout), "{name}: {err:?}");
            }
            server.abort();
        });
    }

    #[test]
    fn a_certificate_no_public_root_signed_is_refused_in_words_that_name_no_host() {
        let rt = runtime();
        rt.block_on(async {
            // A real TLS server with a self-signed certificate for localhost and
            // untrusted.example (tests/data, made with openssl for this test only).
            let cert = rustls::pki_types::CertificateDer::from(
                include_bytes!("../tests/data/cert.der").to_vec(),
            );
            let key = rustls::pki_types::PrivateKeyDer::try_from(
                include_bytes!("../tests/data/key.der").to_vec(),
            )
            .unwrap();
            let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (sock, _) = listener.accept().await.unwrap();
                // The client aborts the handshake when it sees the certificate.
                acceptor.accept(sock).await.err().map(|e| e.to_string())
            });
            let client = Client::direct(Duration::from_secs(5)).unwrap();
            let url = Endpoint::new(format!("https://localhost:{port}/v1/chat/completions"));
            let err = failure(&client, &url).await;
            assert!(matches!(err, ProviderError::Connect(_)), "{err:?}");
            let text = err.to_string();
            assert!(text.contains("TLS certificate was not accepted"), "{text}");
            assert!(
                !text.contains("localhost") && !text.contains("untrusted"),
                "{text}"
            );
            let seen = server.await.unwrap();
            assert!(seen.is_some(), "the server saw a completed handshake");
        });
    }

    #[test]
    fn https_urls_are_spoken_to_in_tls_offering_h2_and_http1_with_the_host_name() {
        let rt = runtime();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut hello = vec![0u8; 5];
                sock.read_exact(&mut hello).await.unwrap();
                let len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
                let mut rest = vec![0u8; len];
                sock.read_exact(&mut rest).await.unwrap();
                hello.extend_from_slice(&rest);
                hello // then the connection closes mid-handshake
            });
            let client = Client::direct(Duration::from_secs(5)).unwrap();
            let url = Endpoint::new(format!("https://localhost:{port}/v1/chat/completions"));
            let err = failure(&client, &url).await;
            assert!(matches!(err, ProviderError::Connect(_)), "{err:?}");
            assert!(err.to_string().contains("tls"), "{err}");
            let hello = server.await.unwrap();
            // A TLS handshake record, a ClientHello.
            assert_eq!(hello[0], 0x16, "not a TLS handshake: {hello:?}");
            assert_eq!(hello[5], 0x01, "not a ClientHello");
            let has = |needle: &[u8]| hello.windows(needle.len()).any(|w| w == needle);
            assert!(has(b"\x02h2"), "ALPN h2 not offered");
            assert!(has(b"\x08http/1.1"), "ALPN http/1.1 not offered");
            assert!(has(b"localhost"), "no SNI");
        });
    }

    #[test]
    fn a_proxy_in_the_environment_is_seen_in_either_case_and_blank_is_none() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(!proxy_configured(env(&[])));
        assert!(!proxy_configured(env(&[("HTTPS_PROXY", "  ")])));
        for name in PROXY_VARS {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(vec![(name, "http://proxy:3128")].into_boxed_slice());
            assert!(proxy_configured(env(pairs)), "{name}");
        }
    }

    #[test]
    fn credentials_in_a_url_become_a_basic_header_and_leave_the_uri() {
        let Endpoint::Parsed { uri, basic, .. } =
            Endpoint::new("https://us%40er:p%3Ass@llm.example/v1/chat".into())
        else {
            panic!("parses");
        };
        assert_eq!(uri.to_string(), "https://llm.example/v1/chat");
        let basic = basic.expect("credentials");
        assert!(basic.is_sensitive());
        let token = basic.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        assert_eq!(decoded, b"us@er:p:ss");
        assert!(!format!("{basic:?}").contains(token));
    }

    #[test]
    fn credentials_that_do_not_decode_to_utf8_are_not_sent_and_leave_the_uri_anyway() {
        let Endpoint::Parsed { uri, basic, .. } =
            Endpoint::new("https://%FF%FE:pw@llm.example/v1".into())
        else {
            panic!("parses");
        };
        assert_eq!(uri.to_string(), "https://llm.example/v1");
        assert!(basic.is_none());
        // A `%` that starts no escape is kept as written, as reqwest kept it.
        let Endpoint::Parsed { basic, .. } = Endpoint::new("https://u:50%25%2@llm.example/".into())
        else {
            panic!("parses");
        };
        let token = basic.unwrap().to_str().unwrap()["Basic ".len()..].to_string();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        assert_eq!(decoded, b"u:50%%2");
    }

    #[test]
    fn a_url_without_credentials_has_no_basic_header() {
        let Endpoint::Parsed { uri, basic, .. } = Endpoint::new("http://127.0.0.1:9/v1".into())
        else {
            panic!("parses");
        };
        assert_eq!(uri.to_string(), "http://127.0.0.1:9/v1");
        assert!(basic.is_none());
        assert!(matches!(
            Endpoint::new("not a url".into()),
            Endpoint::Raw(_)
        ));
    }

    #[test]
    fn credential_headers_are_hidden_from_debug_output() {
        let client = Client::direct(Duration::from_secs(1)).unwrap();
        let url = Endpoint::new("http://127.0.0.1:9/v1".into());
        let post = client
            .post(&url)
            .header("x-api-key", "sk-secret-value-1234")
            .header("anthropic-version", "2023-06-01");
        let shown = format!("{post:?}");
        assert!(!shown.contains("sk-secret-value-1234"), "{shown}");
        assert!(shown.contains("2023-06-01"), "{shown}");
    }

    #[test]
    fn a_header_value_that_cannot_be_sent_fails_the_request_naming_only_the_header() {
        let client = Client::direct(Duration::from_secs(1)).unwrap();
        let url = Endpoint::new("http://127.0.0.1:9/v1".into());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(
                client
                    .post(&url)
                    .header("api-key", "line\nbreak-secret")
                    .send_json(b"{}".to_vec()),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("api-key"), "{text}");
        assert!(!text.contains("break-secret"), "{text}");
    }
}
