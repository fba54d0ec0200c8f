//! Slow, stalled and idle clients, the connection limit, and the `/metrics` token, over real
//! sockets on port 0.
//!
//! Waits are for events (a socket closing, a request answering) with generous deadlines that only
//! guard against hanging; nothing here measures speed. The tests that hold hundreds of sockets
//! take turns ([`HEAVY`]) so the process stays far under a 1,024 file-descriptor limit.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_simulator::SimConfig;

/// Held by the tests that open hundreds of sockets, one at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long any single wait may take before the test fails (a guard, not a measurement).
const GUARD: Duration = Duration::from_secs(60);

/// How many connections stall halfway through a request head.
const HALF_HEADERS: usize = 300;

/// How many connections stall halfway through a request body.
const HALF_BODIES: usize = 20;

fn config_with(sim_url: &str, server: &str) -> String {
    format!(
        "server: {{ {server} }}\nproviders: [{{ name: sim, type: openai_compatible, base_url: \"{sim_url}/v1\" }}]\nroutes: [{{ name: m, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n"
    )
}

fn addr(g: &Gw) -> String {
    g.url.trim_start_matches("http://").to_string()
}

/// A connection that has sent `bytes` and then stalls.
async fn stalled(addr: &str, bytes: &[u8]) -> TcpStream {
    stalled_many(addr, [bytes.to_vec()]).await.remove(0)
}

/// Connections that have each sent their bytes and then stall; fails the test unless all are
/// connected within [`GUARD`] (a server that stops accepting fills its listen backlog).
async fn stalled_many(addr: &str, sends: impl IntoIterator<Item = Vec<u8>>) -> Vec<TcpStream> {
    let deadline = tokio::time::Instant::now() + GUARD;
    let mut all = Vec::new();
    for bytes in sends {
        let mut s = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .expect("connecting took too long: the server accepts nothing")
            .unwrap();
        if !bytes.is_empty() {
            s.write_all(&bytes).await.unwrap();
        }
        all.push(s);
    }
    all
}

/// Half a request head: no blank line ever comes.
fn half_header(addr: &str) -> Vec<u8> {
    format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nx-slow: ").into_bytes()
}

/// A whole chat request head (with a valid key) and a tenth of its body.
fn half_body(addr: &str, key: &str) -> Vec<u8> {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"model\": \"m\", \"messages\": [{{\"role\": \"user\", \"content\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    )
    .into_bytes()
}

/// Reads until the server closes the connection; returns what it sent before. Fails the test if
/// the connection is still open after [`GUARD`].
async fn read_until_closed(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open (received so far: {:?})",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            // Closing with unread input makes the kernel send a reset instead of a FIN.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    }
}

/// Whether the connection is still open with nothing received (without waiting).
fn open_and_silent(s: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

async fn healthz(g: &Gw) -> reqwest::StatusCode {
    tokio::time::timeout(GUARD, reqwest::get(format!("{}/healthz", g.url)))
        .await
        .expect("/healthz did not answer")
        .unwrap()
        .status()
}

async fn chat_ok(g: &Gw) {
    let resp = tokio::time::timeout(
        GUARD,
        g.post(json!({"model": "m", "messages": user("Say something"), "max_tokens": 8})),
    )
    .await
    .expect("the chat request did not answer");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert!(
        !v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{v}"
    );
}

/// Hundreds of connections stalled in a request head or body do not keep real requests from
/// being answered, and (with timeouts longer than the test) they stay open meanwhile.
#[tokio::test]
async fn stalled_clients_do_not_block_real_requests() {
    let _turn = HEAVY.lock().await;
    let s = sim(SimConfig::default()).await;
    let g = gateway(&config_with(
        &s.url,
        "header_read_timeout_ms: 600000, body_read_timeout_ms: 600000",
    ))
    .await;
    let a = addr(&g);
    let heads = stalled_many(&a, (0..HALF_HEADERS).map(|_| half_header(&a))).await;
    let bodies = stalled_many(&a, (0..HALF_BODIES).map(|_| half_body(&a, &g.key))).await;
    let held = (HALF_HEADERS + HALF_BODIES) as i64;
    g.gw.metrics.until_connections(|n| n >= held).await;

    assert_eq!(healthz(&g).await, 200);
    chat_ok(&g).await;

    // They were (and are) all still open and unanswered while the real requests were served.
    for c in heads.iter().chain(&bodies) {
        assert!(
            open_and_silent(c),
            "a stalled connection was answered or closed"
        );
    }
    assert!(g.gw.metrics.connections_open() >= held);
}

/// With short timeouts, connections that stall in the request head (or send nothing, or half an
/// HTTP/2 preface) are closed without an answer; a stalled body is answered with an OpenAI-shaped
/// 408 and closed; idle keep-alive connections, HTTP/1.1 and h2c alike, are closed too. The server
/// answers throughout.
#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let _turn = HEAVY.lock().await;
    let s = sim(SimConfig::default()).await;
    let g = gateway(&config_with(
        &s.url,
        "header_read_timeout_ms: 1000, body_read_timeout_ms: 300",
    ))
    .await;
    let a = addr(&g);

    // h2c (HTTP/2 with prior knowledge) is served; its client keeps the connection pooled.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2.get(format!("{}/healthz", g.url)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);

    // An HTTP/1.1 keep-alive connection, answered once, then idle.
    let mut kept = stalled(
        &a,
        format!("GET /healthz HTTP/1.1\r\nhost: {a}\r\n\r\n").as_bytes(),
    )
    .await;
    let mut answer = Vec::new();
    while !answer.ends_with(br#"{"status":"ok"}"#) {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(GUARD, kept.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));

    let silent = stalled_many(
        &a,
        (0..HALF_HEADERS).map(|i| match i % 10 {
            0 => Vec::new(),                     // says nothing at all
            1 => b"PRI * HTTP/2.0\r\n".to_vec(), // half the HTTP/2 preface
            _ => half_header(&a),                // half a request head
        }),
    )
    .await;
    let bodies = stalled_many(&a, (0..HALF_BODIES).map(|_| half_body(&a, &g.key))).await;

    let silent = futures_util::future::join_all(silent.into_iter().map(read_until_closed)).await;
    for got in &silent {
        assert!(
            got.is_empty(),
            "a stalled head got an answer: {:?}",
            String::from_utf8_lossy(got)
        );
    }
    let bodies = futures_util::future::join_all(bodies.into_iter().map(read_until_closed)).await;
    for got in &bodies {
        let text = String::from_utf8_lossy(got);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        let json = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert_eq!(v["error"]["code"], "request_timeout", "{v}");
    }
    let idle = read_until_closed(kept).await;
    assert!(idle.is_empty(), "{:?}", String::from_utf8_lossy(&idle));

    // The h2c connection is closed too (its client would keep it for 90 s): nothing is left open.
    g.gw.metrics.until_connections(|n| n == 0).await;
    let timed_out: u64 =
        g.gw.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("tollgate_connections_timed_out_total "))
            .and_then(|n| n.parse().ok())
            .unwrap();
    // The stalled heads, the keep-alive and the h2c connection (a 408 is an answer, not a timeout).
    assert!(
        timed_out > HALF_HEADERS as u64,
        "{timed_out} timeouts counted"
    );
    drop(h2);

    // And the server still answers.
    assert_eq!(healthz(&g).await, 200);
    chat_ok(&g).await;
}

/// With `max_connections: 50`, 60 idle connections never make the server hold more than 50;
/// the connections over the limit wait (unaccepted, in the listen backlog) for a slot, which
/// the head timeout frees, so `/healthz` — queued behind them — is still answered, and every
/// idle connection is closed in its turn.
#[tokio::test]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let _turn = HEAVY.lock().await;
    let s = sim(SimConfig::default()).await;
    let g = gateway(&config_with(
        &s.url,
        "max_connections: 50, header_read_timeout_ms: 2000",
    ))
    .await;
    let a = addr(&g);
    let idle = stalled_many(&a, (0..60).map(|_| Vec::new())).await;
    let url = format!("{}/healthz", g.url);
    let health = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    // Every change of the count while /healthz waits is checked against the limit.
    let mut most = 0;
    let watched = g.gw.metrics.until_connections(|open| {
        assert!(open <= 50, "{open} connections open, over the limit of 50");
        most = most.max(open);
        false
    });
    let answered = tokio::select! {
        a = health => a,
        () = watched => unreachable!("the watch never ends"),
    };
    assert_eq!(answered.unwrap().unwrap(), 200);
    assert_eq!(most, 50, "the limit was reached while /healthz waited");
    for got in futures_util::future::join_all(idle.into_iter().map(read_until_closed)).await {
        assert!(got.is_empty());
    }
    assert_eq!(healthz(&g).await, 200);
}

/// `/metrics` with `server.metrics_token`: the token is required (OpenAI-shaped 401 without it,
/// or with another one, an API key included); without the setting it is open.
#[tokio::test]
async fn metrics_token_guards_metrics() {
    let s = sim(SimConfig::default()).await;
    let token = "scrape-me-0123456789abcdef";
    let g = gateway(&config_with(&s.url, &format!("metrics_token: {token}"))).await;
    let url = format!("{}/metrics", g.url);
    let client = reqwest::Client::new();
    for (auth, code) in [
        (None, "missing_api_key"),
        (Some("wrong-token-0123456789abcdef"), "invalid_api_key"),
        (Some(g.key.as_str()), "invalid_api_key"),
    ] {
        let mut req = client.get(&url);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    let resp = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("tollgate_connections_open")
    );

    let open = gateway(&config_with(&s.url, "")).await;
    let resp = reqwest::get(format!("{}/metrics", open.url)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("tollgate_connections_open")
    );
}

/// Handlers see the client's address (`ConnectInfo<SocketAddr>`), as the control plane's login
/// throttle needs.
#[tokio::test]
async fn handlers_see_the_client_address() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    let s = sim(SimConfig::default()).await;
    let whoami = axum::Router::new().route(
        "/whoami",
        axum::routing::get(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() },
        ),
    );
    let g = serve_gateway(gateway_only(&config_with(&s.url, "")).await, whoami).await;
    let a = addr(&g);
    let client = stalled(
        &a,
        format!("GET /whoami HTTP/1.1\r\nhost: {a}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    let me = client.local_addr().unwrap().to_string();
    let answer = String::from_utf8(read_until_closed(client).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&format!("\r\n\r\n{me}")), "{answer}");
}

/// Graceful shutdown on the new server: a stream in flight when shutdown starts is answered to
/// its end, an idle keep-alive connection is closed at once (long before its head timeout), the
/// server returns, and the listener is closed.
#[tokio::test]
async fn shutdown_finishes_streams_closes_idle_connections_and_stops_accepting() {
    let s = sim(SimConfig {
        tokens_per_second: 20.0,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&config_with(&s.url, "header_read_timeout_ms: 600000")).await;
    let a = addr(&g);

    let mut kept = stalled(
        &a,
        format!("GET /healthz HTTP/1.1\r\nhost: {a}\r\n\r\n").as_bytes(),
    )
    .await;
    let mut answer = Vec::new();
    while !answer.ends_with(br#"{"status":"ok"}"#) {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(GUARD, kept.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }

    let mut resp = g
        .post(json!({"model": "m", "stream": true, "max_tokens": 40, "messages": user("Go on")}))
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.chunk().await.unwrap().unwrap().to_vec();
    assert!(!String::from_utf8_lossy(&body).contains("[DONE]"));
    g.stop.send(true).unwrap();
    while let Some(chunk) = tokio::time::timeout(GUARD, resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    assert!(read_until_closed(kept).await.is_empty());
    let Gw { task, .. } = g;
    tokio::time::timeout(GUARD, task)
        .await
        .expect("serve did not return")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(&a).await.is_err(), "still accepting");
}

/// A connection still busy when `server.shutdown_grace_ms` is over (here a request whose body
/// never comes) is closed when `serve` returns, as the log line says.
#[tokio::test]
async fn connections_left_after_the_grace_period_are_closed() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&config_with(
        &s.url,
        "shutdown_grace_ms: 300, body_read_timeout_ms: 600000, header_read_timeout_ms: 600000",
    ))
    .await;
    let a = addr(&g);
    let busy = stalled(&a, &half_body(&a, &g.key)).await;
    g.gw.metrics.until_connections(|n| n == 1).await;
    g.stop.send(true).unwrap();
    let Gw { task, .. } = g;
    tokio::time::timeout(GUARD, task)
        .await
        .expect("serve did not return")
        .unwrap()
        .unwrap();
    assert!(read_until_closed(busy).await.is_empty());
}

/// Heavy requests take turns for their CPU work: with every turn of the lane taken, a heavy
/// request waits — it has not reached the provider — while a light one is answered; once a turn
/// is free, it is answered too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_requests_take_turns_and_light_ones_pass_them() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&two_route_config(&s.url)).await;
    let turns = g.gw.heavy.turns();
    let all = u32::try_from(turns.available_permits()).unwrap();
    let held = turns.acquire_many_owned(all).await.unwrap();
    let big = "many words of a long document ".repeat(10_000);
    assert!(big.len() >= tollgate_gateway::context::HEAVY_BYTES);
    let heavy = tokio::spawn({
        let (url, key) = (g.chat_url(), g.key.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "m", "max_tokens": 5, "messages": user(&big)}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    g.gw.heavy.until_waiting(|n| n > 0).await;
    let light = g
        .post(json!({"model": "m", "max_tokens": 5, "messages": user("hello")}))
        .await;
    assert_eq!(light.status(), 200);
    assert_eq!(s.count(), 1, "only the light request reached the provider");
    assert!(!heavy.is_finished());
    drop(held);
    assert_eq!(heavy.await.unwrap(), 200);
    assert_eq!(s.count(), 2);
    assert_eq!(g.gw.heavy.waiting(), 0);
}

/// As documented (README, "Request heads"): a request head with up to 100 header fields is
/// served; one with more is refused by the HTTP layer with a bare 431 and the connection closed.
#[tokio::test]
async fn a_head_of_more_than_100_fields_is_refused_with_431() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&config_with(&s.url, "")).await;
    let a = addr(&g);
    // `host` and `connection`, and the rest made up.
    for (fields, status) in [(100, "200"), (101, "431")] {
        let extra: String = (0..fields - 2).map(|i| format!("x-h{i}: v\r\n")).collect();
        let head =
            format!("GET /healthz HTTP/1.1\r\nhost: {a}\r\n{extra}connection: close\r\n\r\n");
        let s = stalled(&a, head.as_bytes()).await;
        let got = String::from_utf8_lossy(&read_until_closed(s).await).to_string();
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status}")),
            "{fields} fields: {got}"
        );
    }
}

/// Over a real socket, a chunked body under another transfer coding (`gzip, chunked`, whose
/// chunks hold plain JSON) is refused with 415 naming the coding, not read as JSON (attack
/// 2026-12-04e F7); `chunked` alone is served.
#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_refused() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&config_with(&s.url, "")).await;
    let a = addr(&g);
    let body = json!({"model": "m", "messages": user("hi")}).to_string();
    for (coding, status) in [("gzip, chunked", "415"), ("chunked", "200")] {
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {a}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: {coding}\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            g.key,
            body.len()
        );
        let s = stalled(&a, head.as_bytes()).await;
        let got = String::from_utf8_lossy(&read_until_closed(s).await).to_string();
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status}")),
            "{coding}: {got}"
        );
        if status == "415" {
            assert!(got.contains("`transfer-encoding` includes `gzip`"), "{got}");
        }
    }
    assert_eq!(
        s.count(),
        1,
        "only the chunked request reached the upstream"
    );
}
