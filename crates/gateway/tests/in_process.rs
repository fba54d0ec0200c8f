//! Tier 2: the axum app driven in-process (no sockets): edges, errors, operations endpoints.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tollgate_store::{PilotCaps, Stage};
use tower::ServiceExt;

const CONFIG: &str = r#"
server: { max_body_bytes: 4096 }
providers:
  - { name: nowhere, type: openai_compatible, base_url: "http://127.0.0.1:9/v1" }
routes:
  - name: gpt-4o-mini
    deployments: [{ provider: nowhere, model: gpt-4o-mini }]
"#;

/// The app in-process, with a production use case allowed every route, and its key.
async fn app() -> (
    axum::Router,
    String,
    std::sync::Arc<tollgate_gateway::Gateway>,
) {
    let gw = common::gateway_only(CONFIG).await;
    let (_, key) = common::use_case_with_key(
        &gw,
        Stage::Production,
        &["gpt-4o-mini"],
        PilotCaps::default(),
        None,
    )
    .await;
    (tollgate_gateway::router(gw.clone()), key, gw)
}

async fn call(app: axum::Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn post(key: &str, path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(body.into())
        .unwrap()
}

/// Each kind of bad input gets its own status, an OpenAI-shaped body, and a request id.
#[tokio::test]
async fn bad_input_gets_specific_openai_shaped_errors() {
    let (router, key, _) = app().await;
    let huge = format!(
        r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(5000)
    );
    // (name, request, status, text the message must contain, expected `param`)
    type Case<'a> = (&'a str, Request<Body>, StatusCode, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            post(&key, "/v1/chat/completions", "{\"model\": "),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
            None,
        ),
        (
            "trailing garbage",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[]}}"#,
            ),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
            None,
        ),
        (
            "wrong type",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":"hi"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid value for `messages`",
            Some("messages"),
        ),
        (
            "wrong nested type",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "temperature",
            Some("temperature"),
        ),
        (
            "unknown role",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"role":"robot","content":"x"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "unknown variant `robot`",
            Some("messages[0].role"),
        ),
        (
            "missing messages",
            post(&key, "/v1/chat/completions", r#"{"model":"gpt-4o-mini"}"#),
            StatusCode::BAD_REQUEST,
            "missing field `messages`",
            None,
        ),
        (
            "no messages",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "at least one message",
            Some("messages"),
        ),
        (
            "empty body",
            post(&key, "/v1/chat/completions", ""),
            StatusCode::BAD_REQUEST,
            "empty",
            None,
        ),
        (
            "not an object",
            post(&key, "/v1/chat/completions", "[1,2]"),
            StatusCode::BAD_REQUEST,
            "invalid request body",
            None,
        ),
        (
            "invalid UTF-8",
            post(
                &key,
                "/v1/chat/completions",
                &b"{\"model\":\"\xc3\x28\",\"messages\":[]}"[..],
            ),
            StatusCode::BAD_REQUEST,
            "not valid UTF-8",
            None,
        ),
        (
            "unknown model",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}"#,
            ),
            StatusCode::NOT_FOUND,
            "`gpt-9` does not exist",
            Some("model"),
        ),
        (
            "body over the limit",
            post(&key, "/v1/chat/completions", huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 4096 bytes",
            None,
        ),
        (
            "n out of range",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","n":0,"messages":[{"role":"user","content":"x"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "`n`",
            Some("n"),
        ),
        (
            "stream_options without stream",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "stream_options",
            Some("stream_options"),
        ),
        (
            "tool message without id",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"role":"tool","content":"x"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "tool_call_id",
            Some("messages[0].tool_call_id"),
        ),
        (
            "embeddings without input",
            post(
                &key,
                "/v1/embeddings",
                r#"{"model":"gpt-4o-mini","input":[]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "`input`",
            Some("input"),
        ),
        (
            "unknown path",
            post(&key, "/v1/completionz", "{}"),
            StatusCode::NOT_FOUND,
            "unknown endpoint POST /v1/completionz",
            None,
        ),
        (
            "wrong method",
            Request::get("/v1/chat/completions")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "not allowed",
            None,
        ),
    ];
    for (name, req, status, needle, param) in cases {
        let (got, headers, body) = call(router.clone(), req).await;
        assert_eq!(got, status, "{name}: {body}");
        let err = &body["error"];
        let message = err["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no error.message in {body}"));
        assert!(
            message.contains(needle),
            "{name}: {message:?} lacks {needle:?}"
        );
        assert!(
            err["type"].is_string() && err.get("code").is_some() && err.get("param").is_some(),
            "{name}: {body}"
        );
        if let Some(p) = param {
            assert_eq!(err["param"], p, "{name}");
        }
        assert!(
            headers["x-request-id"]
                .to_str()
                .unwrap()
                .starts_with("req_"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_client_request_id_is_kept() {
    let (router, _, _) = app().await;
    let req = Request::get("/healthz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(router, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-request-id"], "abc-123");
    assert_eq!(body["status"], "ok");
}

/// Id headers are stored (ledger) and echoed (response): a value over 256 bytes, or one that is not
/// printable ASCII, is refused with a specific 400 that echoes nothing of it.
#[tokio::test]
async fn oversized_id_headers_are_refused_not_stored_or_echoed() {
    let (router, key, gw) = app().await;
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    for name in ["x-request-id", "x-tollgate-user", "x-tollgate-session"] {
        let long = "a".repeat(257);
        let mut req = post(&key, "/v1/chat/completions", body);
        req.headers_mut().insert(name, long.parse().unwrap());
        let (status, headers, b) = call(router.clone(), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(b["error"]["code"], "invalid_header", "{name}");
        assert_eq!(b["error"]["param"], name);
        let id = headers["x-request-id"].to_str().unwrap();
        assert!(id.starts_with("req_") && id.len() < 64, "{name}: {id}");
        assert!(!b.to_string().contains(&long));

        let mut req = Request::get("/healthz").body(Body::empty()).unwrap();
        req.headers_mut()
            .insert(name, http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        let (status, _, b) = call(router.clone(), req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name} non-ASCII");
        assert_eq!(b["error"]["param"], name);
    }
    // 256 bytes is still fine (the upstream is unreachable here: anything but a 400 will do).
    let mut req = Request::get("/healthz").body(Body::empty()).unwrap();
    req.headers_mut()
        .insert("x-request-id", "b".repeat(256).parse().unwrap());
    let (status, headers, _) = call(router.clone(), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-request-id"].len(), 256);
    assert_eq!(
        gw.ledger
            .stats()
            .queued
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing refused reaches the ledger"
    );
}

fn get(key: &str, path: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn models_lists_the_keys_routes_and_retrieves_one() {
    let (router, key, _) = app().await;
    let (status, _, body) = call(router.clone(), get(&key, "/v1/models")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "gpt-4o-mini");
    let (status, _, body) = call(router.clone(), get(&key, "/v1/models/gpt-4o-mini")).await;
    assert_eq!(
        (status, body["id"].as_str()),
        (StatusCode::OK, Some("gpt-4o-mini"))
    );
    let (status, _, _) = call(router, get(&key, "/v1/models/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_is_always_required() {
    let (router, _, _) = app().await;
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#;
    let req = Request::post("/v1/chat/completions")
        .body(Body::from(body))
        .unwrap();
    let (status, _, err) = call(router.clone(), req).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_api_key"))
    );
    let (status, _, err) = call(
        router.clone(),
        post("tg_wrong", "/v1/chat/completions", body),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );
    let (status, _, _) = call(
        router,
        Request::get("/v1/models").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let (router, key, _) = app().await;
    let (status, _, body) = call(
        router.clone(),
        Request::get("/readyz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    let _ = call(router.clone(), post(&key, "/v1/chat/completions", "{")).await;
    let resp = router
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("tollgate_errors_total{kind=\"invalid_request\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tollgate_requests_total{endpoint=\"chat\",route=\"\",status=\"400\"} 1"),
        "{text}"
    );
}

/// Whatever bytes arrive, the answer is a 4xx with an OpenAI-shaped body, never a panic.
#[test]
fn arbitrary_bodies_never_crash() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (router, key, _) = rt.block_on(app());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..300), |body| {
            let (status, _, json) = rt.block_on(call(
                router.clone(),
                post(&key, "/v1/chat/completions", body),
            ));
            prop_assert!(status.is_client_error(), "{}", status);
            prop_assert!(json["error"]["message"].is_string());
            Ok(())
        })
        .unwrap();
}
