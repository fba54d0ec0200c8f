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

/// A name the caller sent is quoted back to 64 characters, and what shows nothing in it (a
/// direction override) is written as its escape.
#[tokio::test]
async fn names_are_quoted_back_short_and_visible() {
    let (router, key, _) = app().await;
    let long = "P".repeat(3000);
    for reference in [format!("{long}@x"), format!("{long}@")] {
        let body =
            serde_json::json!({"model": "gpt-4o-mini", "pattern": reference, "messages": []});
        let (st, _, v) = call(
            router.clone(),
            post(&key, "/v1/chat/completions", body.to_string()),
        )
        .await;
        let message = v["error"]["message"].as_str().unwrap();
        assert_eq!(st, StatusCode::BAD_REQUEST, "{message}");
        assert!(
            message.contains(&"P".repeat(64)) && message.chars().count() < 200,
            "{message}"
        );
    }
    let body = serde_json::json!({"model": "gpt\u{202e}-4o", "messages": [{"role": "user", "content": "x"}]});
    let (st, _, v) = call(router, post(&key, "/v1/chat/completions", body.to_string())).await;
    let message = v["error"]["message"].as_str().unwrap();
    assert_eq!(st, StatusCode::NOT_FOUND, "{message}");
    assert!(
        message.contains("gpt\\u{202e}-4o") && !message.contains('\u{202e}'),
        "{message}"
    );
}

/// A body of the wrong shape is told in JSON's words — an object, an array, a string — never
/// by the names of the gateway's Rust types.
#[tokio::test]
async fn wrong_shapes_are_told_in_json_words() {
    let (router, key, _) = app().await;
    for (body, says) in [
        ("null", "expected an object, found null"),
        ("[]", "expected an object, found an array"),
        (
            r#"{"model":"gpt-4o-mini","messages":[1]}"#,
            "expected an object, found a number",
        ),
        (
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":5}]}"#,
            "a string or an array of content parts",
        ),
        (
            r#"{"model":"gpt-4o-mini","messages":[],"stop":5}"#,
            "a string or an array of strings",
        ),
        (
            r#"{"model":"gpt-4o-mini","messages":[],"stream":true,"stream_options":5}"#,
            "expected an object, found a number",
        ),
    ] {
        let (st, _, v) = call(router.clone(), post(&key, "/v1/chat/completions", body)).await;
        let message = v["error"]["message"].as_str().unwrap();
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {message}");
        assert!(message.contains(says), "{body}: {message}");
        for rust in [
            "struct",
            "enum",
            "untagged",
            "ChatMessage",
            "MessageContent",
        ] {
            assert!(!message.contains(rust), "{body}: {message}");
        }
    }
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
            "`messages` is missing or empty",
            Some("messages"),
        ),
        (
            "empty messages (the attack of 2026-12-04 was told the field was missing)",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "`messages` is missing or empty",
            Some("messages"),
        ),
        (
            "missing role (found by fuzzing: the param was `messages[0]`)",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"content":"x"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "missing field `role`",
            Some("messages[0].role"),
        ),
        (
            "repeated field (found by fuzzing: the param was null)",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","model":"x","messages":[{"role":"user","content":"x"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "duplicate field `model`",
            Some("model"),
        ),
        (
            "role of the wrong type (found by fuzzing: was \"not valid JSON\", no param)",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"role":1,"content":"x"}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid value for `messages[0].role`",
            Some("messages[0].role"),
        ),
        (
            "nesting past serde_json's recursion limit",
            post(
                &key,
                "/v1/chat/completions",
                format!(
                    r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"x"}}],"x":{}{}}}"#,
                    "[".repeat(1000),
                    "]".repeat(1000)
                ),
            ),
            StatusCode::BAD_REQUEST,
            "the request body nests arrays and objects more than 127 levels deep",
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
            "user message without content",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":null}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "a `user` message needs `content`",
            Some("messages[0].content"),
        ),
        (
            "an output cap of 0",
            post(
                &key,
                "/v1/chat/completions",
                r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
            ),
            StatusCode::BAD_REQUEST,
            "`max_tokens` must be at least 1",
            Some("max_tokens"),
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
            "embeddings input of floats",
            post(
                &key,
                "/v1/embeddings",
                r#"{"model":"gpt-4o-mini","input":[1.5, -2]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "a string, an array of strings, an array of token ids",
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
        gw.books
            .ledger
            .stats()
            .queued
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing refused reaches the ledger"
    );
}

/// A query parameter given twice is refused on every route, named (percent-decoded) as the
/// param: read as one value, the repeat would silently win. Different parameters, and a
/// parameter once, pass.
#[tokio::test]
async fn a_query_parameter_given_twice_is_refused_and_named() {
    let (router, key, _) = app().await;
    for (path, param) in [
        ("/v1/models?x=1&x=2", "x"),
        ("/healthz?a=1&b=2&a=3", "a"),
        ("/admin/v1/audit?limit=1&limit=2", "limit"),
        ("/v1/models?use%5Fcase=1&use_case=2", "use_case"),
    ] {
        let (status, headers, b) = call(router.clone(), get(&key, path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(b["error"]["param"], param, "{path}: {b}");
        assert_eq!(
            b["error"]["message"],
            format!("the query parameter `{param}` is given twice; give it once"),
            "{path}"
        );
        assert!(headers.contains_key("x-request-id"), "{path}");
    }
    for path in ["/healthz?a=1&b=2", "/healthz?a=1", "/healthz?"] {
        let (status, _, _) = call(router.clone(), get(&key, path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

/// A compressed body is refused with a 415 naming its `content-encoding`, before it is read or
/// authenticated (it was read as text: a gzip body got "not valid UTF-8", and a plain body
/// labelled gzip was taken). `identity` is no encoding; nothing of the refused request is recorded.
#[tokio::test]
async fn a_compressed_body_is_refused_naming_its_encoding() {
    let (router, key, gw) = app().await;
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    for (coding, named) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("identity, deflate", "deflate"),
        ("GZIP", "GZIP"),
    ] {
        for path in ["/v1/chat/completions", "/v1/embeddings", "/admin/v1/pods"] {
            let mut req = post(&key, path, body);
            req.headers_mut()
                .insert("content-encoding", coding.parse().unwrap());
            let (status, headers, b) = call(router.clone(), req).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {coding}: {b}"
            );
            assert_eq!(b["error"]["code"], "unsupported_media_type", "{path}");
            let message = b["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("`{named}`")), "{message}");
            assert!(headers.contains_key("x-request-id"), "{path}");
        }
    }
    // A transfer coding other than `chunked` is refused the same way, naming it (attack
    // 2026-12-04e F7: `gzip, chunked` had its chunks taken off and the rest read as plain).
    for (coding, named) in [("gzip, chunked", "gzip"), ("deflate,chunked", "deflate")] {
        let mut req = post(&key, "/v1/chat/completions", body);
        req.headers_mut()
            .insert("transfer-encoding", coding.parse().unwrap());
        let (status, _, b) = call(router.clone(), req).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{coding}: {b}");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`transfer-encoding` includes `{named}`")),
            "{message}"
        );
    }
    // `identity` (any case) passes on to the route: here, a chat request whose upstream is
    // unreachable — anything but 415.
    let mut req = post(&key, "/v1/chat/completions", body);
    req.headers_mut()
        .insert("content-encoding", "Identity".parse().unwrap());
    let (status, _, b) = call(router.clone(), req).await;
    assert_ne!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    assert_eq!(
        gw.books
            .ledger
            .stats()
            .queued
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "only the identity request was admitted"
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
    let (status, _, _) = call(router.clone(), get(&key, "/v1/models/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A path segment that is not UTF-8: axum's own rejection, in the OpenAI shape like the rest.
    let (status, headers, body) = call(router, get(&key, "/v1/models/%FF")).await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
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

/// Whatever bytes arrive — random, or random from JSON's alphabet — the answer is a 4xx with an
/// OpenAI-shaped body, never a panic.
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
        cases: 256,
        ..ProptestConfig::default()
    });
    let alphabet: Vec<u8> = br#"{}[]":,0123456789.-+eE \u\"abtrnfl"#.to_vec();
    let bodies = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(proptest::sample::select(alphabet), 0..300),
    ];
    runner
        .run(&bodies, |body| {
            let resp = rt.block_on(router.clone().oneshot(post(
                &key,
                "/v1/chat/completions",
                body,
            )));
            let resp = resp.unwrap();
            let status = resp.status();
            let bytes = rt.block_on(resp.into_body().collect()).unwrap().to_bytes();
            prop_assert!(status.is_client_error(), "{}", status);
            fuzz::check_error_shape(&bytes)?;
            Ok(())
        })
        .unwrap();
}

/// Structured fuzzing of `/v1`: requests built from the shapes of `tollgate_types::openai` (every
/// field, both routes, streams, tools, content parts, embeddings), then broken on purpose, sent
/// through the in-process app whose routes answer from the simulator (`m`: OpenAI wire, `c`:
/// Anthropic), each on a tokio worker thread as in production (2 MiB of stack).
///
/// A request is a [`fuzz::Doc`]: JSON that can also hold what `serde_json::Value` cannot —
/// duplicate keys and raw text (lone surrogate escapes, numbers past every range, 10,000 levels of
/// nesting).
mod fuzz {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::option;
    use proptest::prelude::*;
    use proptest::sample::{Index, select};
    use proptest::test_runner::{TestCaseError, TestRunner};
    use serde_json::{Map, json};
    use std::time::Duration;
    use tollgate_simulator::SimConfig;
    use tollgate_store::{Budget, BudgetQueries, Limits, UseCasePatch, UseCaseQueries};

    /// Cases per property: enough to reach every field, few enough for a debug build.
    const CASES: u32 = 256;

    // ---- JSON that `serde_json::Value` cannot hold -------------------------------------------

    /// A JSON document whose objects may repeat keys and whose leaves are raw JSON text.
    #[derive(Debug, Clone)]
    pub enum Doc {
        Raw(String),
        Arr(Vec<Doc>),
        Obj(Vec<(String, Doc)>),
    }

    /// One step of a path: an object key or an array index.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Seg {
        Key(String),
        Idx(usize),
    }

    impl Doc {
        pub fn of(v: &Value) -> Doc {
            match v {
                Value::Array(a) => Doc::Arr(a.iter().map(Doc::of).collect()),
                Value::Object(o) => {
                    Doc::Obj(o.iter().map(|(k, v)| (k.clone(), Doc::of(v))).collect())
                }
                leaf => Doc::Raw(leaf.to_string()),
            }
        }

        pub fn render(&self) -> String {
            let mut out = String::new();
            self.write(&mut out);
            out
        }

        fn write(&self, out: &mut String) {
            match self {
                Doc::Raw(r) => out.push_str(r),
                Doc::Arr(items) => {
                    out.push('[');
                    for (i, d) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        d.write(out);
                    }
                    out.push(']');
                }
                Doc::Obj(fields) => {
                    out.push('{');
                    for (i, (k, d)) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Value::from(k.as_str()).to_string());
                        out.push(':');
                        d.write(out);
                    }
                    out.push('}');
                }
            }
        }

        /// The path of every node, the root (empty path) first.
        pub fn paths(&self) -> Vec<Vec<Seg>> {
            let mut out = Vec::new();
            self.walk(&mut Vec::new(), &mut out);
            out
        }

        fn walk(&self, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
            out.push(at.clone());
            match self {
                Doc::Raw(_) => {}
                Doc::Arr(items) => {
                    for (i, d) in items.iter().enumerate() {
                        at.push(Seg::Idx(i));
                        d.walk(at, out);
                        at.pop();
                    }
                }
                Doc::Obj(fields) => {
                    for (k, d) in fields {
                        at.push(Seg::Key(k.clone()));
                        d.walk(at, out);
                        at.pop();
                    }
                }
            }
        }

        pub fn get_mut(&mut self, path: &[Seg]) -> Option<&mut Doc> {
            let Some((first, rest)) = path.split_first() else {
                return Some(self);
            };
            let child = match (self, first) {
                (Doc::Arr(items), Seg::Idx(i)) => items.get_mut(*i)?,
                (Doc::Obj(fields), Seg::Key(k)) => {
                    &mut fields.iter_mut().find(|(name, _)| name == k)?.1
                }
                _ => return None,
            };
            child.get_mut(rest)
        }

        /// Removes the node at `path` (not the root).
        pub fn remove(&mut self, path: &[Seg]) {
            let Some((last, parent)) = path.split_last() else {
                return;
            };
            match (self.get_mut(parent), last) {
                (Some(Doc::Arr(items)), Seg::Idx(i)) if *i < items.len() => {
                    items.remove(*i);
                }
                (Some(Doc::Obj(fields)), Seg::Key(k)) => {
                    if let Some(i) = fields.iter().position(|(name, _)| name == k) {
                        fields.remove(i);
                    }
                }
                _ => {}
            }
        }

        /// Repeats the node at `path` right after itself: a duplicate key, or a repeated element.
        pub fn duplicate(&mut self, path: &[Seg], with: Option<Doc>) {
            let Some((last, parent)) = path.split_last() else {
                return;
            };
            match (self.get_mut(parent), last) {
                (Some(Doc::Arr(items)), Seg::Idx(i)) if *i < items.len() => {
                    let d = with.unwrap_or_else(|| items[*i].clone());
                    items.insert(*i + 1, d);
                }
                (Some(Doc::Obj(fields)), Seg::Key(k)) => {
                    if let Some(i) = fields.iter().position(|(name, _)| name == k) {
                        let d = with.unwrap_or_else(|| fields[i].1.clone());
                        fields.insert(i + 1, (k.clone(), d));
                    }
                }
                _ => {}
            }
        }
    }

    /// `path` as serde_path_to_error writes it (`messages[0].role`).
    pub fn serde_path(path: &[Seg]) -> String {
        let mut out = String::new();
        for s in path {
            match s {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Idx(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// `path` with indices erased (`messages[].role`), to look up in [`field`].
    fn pattern(path: &[Seg]) -> String {
        let mut out = String::new();
        for s in path {
            match s {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Idx(_) => out.push_str("[]"),
            }
        }
        out
    }

    /// A nest of `depth` arrays (`[[[]]]`) or objects (`{"a":{"a":{}}}`), as raw JSON text; never
    /// a `Value`, whose recursive drop could not take 10,000 levels.
    pub fn nest(depth: usize, objects: bool) -> String {
        if objects {
            format!(
                "{}{{}}{}",
                r#"{"a":"#.repeat(depth.saturating_sub(1)),
                "}".repeat(depth.saturating_sub(1))
            )
        } else {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        }
    }

    // ---- What serde expects where ------------------------------------------------------------

    /// The serde type at a place in a request.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Ty {
        Str,
        Bool,
        U32,
        I64,
        F64,
        Role,
        /// A struct: only a JSON object (or, for one without `flatten`, a long enough array).
        Struct,
        Seq,
        /// `#[serde(untagged)]`: an error anywhere inside is reported at the enum itself.
        Untagged,
        /// `serde_json::Value`, or a field the struct keeps in `extra` / ignores: anything goes.
        Any,
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Endpoint {
        Chat,
        Embeddings,
    }

    impl Endpoint {
        pub fn path(self) -> &'static str {
            match self {
                Endpoint::Chat => "/v1/chat/completions",
                Endpoint::Embeddings => "/v1/embeddings",
            }
        }
    }

    /// (type, required) of the field at `pattern`, read off `tollgate_types::openai`; `None` for
    /// a place the types do not describe field by field (the inside of `input`).
    fn field(endpoint: Endpoint, pattern: &str) -> Option<(Ty, bool)> {
        use Ty::*;
        let f = match (endpoint, pattern) {
            (_, "model") => (Str, true),
            (_, "user") => (Str, false),
            (Endpoint::Embeddings, "input") => (Untagged, true),
            (Endpoint::Embeddings, "encoding_format") => (Str, false),
            (Endpoint::Embeddings, "dimensions") => (U32, false),
            (Endpoint::Embeddings, p) if p.starts_with("input") => return None,
            (Endpoint::Embeddings, _) => (Any, false),
            (_, "messages") => (Seq, true),
            (_, "messages[]") => (Struct, true),
            (_, "messages[].role") => (Role, true),
            (_, "messages[].content") => (Untagged, false),
            (_, "messages[].content[]") => (Struct, true),
            (_, "messages[].content[].type") => (Str, true),
            (_, "messages[].content[].text") => (Str, false),
            (_, "messages[].name") => (Str, false),
            (_, "messages[].tool_calls") => (Seq, false),
            (_, "messages[].tool_calls[]") => (Struct, true),
            (_, "messages[].tool_calls[].id") => (Str, true),
            (_, "messages[].tool_calls[].type") => (Str, true),
            (_, "messages[].tool_calls[].function") => (Struct, true),
            (_, "messages[].tool_calls[].function.name") => (Str, true),
            (_, "messages[].tool_calls[].function.arguments") => (Str, true),
            (_, "messages[].tool_call_id") => (Str, false),
            (_, "stream" | "logprobs" | "parallel_tool_calls") => (Bool, false),
            (_, "stream_options") => (Struct, false),
            (_, "stream_options.include_usage") => (Bool, false),
            (_, "max_tokens" | "max_completion_tokens" | "n" | "top_logprobs") => (U32, false),
            (_, "temperature" | "top_p") => (F64, false),
            (_, "seed") => (I64, false),
            (_, "stop") => (Untagged, false),
            (_, "stop[]") => (Str, true),
            (_, "tools") => (Seq, false),
            (_, "tools[]") => (Struct, true),
            (_, "tools[].type") => (Str, true),
            (_, "tools[].function") => (Struct, true),
            (_, "tools[].function.name") => (Str, true),
            (_, "tools[].function.description") => (Str, false),
            (_, "response_format") => (Struct, false),
            (_, "response_format.type") => (Str, true),
            // `tool_choice`, `parameters`, `json_schema`, `image_url` are `Value`s; every other
            // key is kept in `extra` (or ignored by the structs without one).
            _ => (Any, false),
        };
        Some(f)
    }

    /// What serde makes of the node at `path`: its type, whether it is required, and the
    /// `param` an error there must carry (the innermost untagged enum around it, else itself).
    /// `None` when the node is in a place anything may go, or the types do not say.
    pub fn typed(endpoint: Endpoint, path: &[Seg]) -> Option<(Ty, bool, String)> {
        let mut reported_at: Option<String> = None;
        let mut last = None;
        for i in 1..=path.len() {
            let (ty, required) = field(endpoint, &pattern(&path[..i]))?;
            if ty == Ty::Any {
                return None;
            }
            if ty == Ty::Untagged && reported_at.is_none() {
                reported_at = Some(serde_path(&path[..i]));
            }
            last = Some((ty, required));
        }
        let (ty, required) = last?;
        Some((
            ty,
            required,
            reported_at.unwrap_or_else(|| serde_path(path)),
        ))
    }

    /// Raw JSON that a field of type `ty` never accepts.
    pub fn wrong_values(ty: Ty, required: bool) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = match ty {
            Ty::Str => vec!["5", "true", "[]", "{}", "1.5", "-0"],
            Ty::Bool => vec![r#""true""#, "1", "0", "[]", "{}", r#""yes""#],
            Ty::U32 => vec![
                r#""1""#,
                "-1",
                "4294967296",
                "18446744073709551615",
                "1.5",
                "-0",
                "1e3",
                "true",
                "[]",
                "{}",
            ],
            Ty::I64 => vec![
                r#""1""#,
                "9223372036854775808",
                "18446744073709551615",
                "-9223372036854775809",
                "1.5",
                "-0",
                "true",
                "[]",
            ],
            Ty::F64 => vec![
                r#""1.0""#,
                r#""NaN""#,
                r#""Infinity""#,
                r#""-0""#,
                "true",
                "[]",
                "{}",
            ],
            Ty::Role => vec![r#""robot""#, r#""""#, r#""USER""#, r#""user ""#, "1", "{}"],
            Ty::Struct => vec![r#""x""#, "1", "[]", "true", "1.5"],
            Ty::Seq => vec![r#""x""#, "1", "{}", "true"],
            Ty::Untagged => vec!["1", "true", "{}", "-0"],
            Ty::Any => vec![],
        };
        if required {
            v.push("null");
        }
        v
    }

    // ---- Valid requests --------------------------------------------------------------------

    /// A bit of text: mostly words, sometimes what breaks naive code — NUL, bidi overrides,
    /// 4-byte emoji and ZWJ sequences, combining marks, BOM, noncharacters, line separators,
    /// escapes, tokenizer special tokens.
    fn piece() -> BoxedStrategy<String> {
        let odd = select(vec![
            "\u{0}",
            "\u{1}\u{1f}\u{7f}",
            "\u{202E}",
            "\u{202D}\u{2066}\u{2069}",
            "\u{1F600}",
            "\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "e\u{301}\u{302}\u{303}\u{304}",
            "\u{FEFF}",
            "\u{FFFD}",
            "\u{FFFF}",
            "\u{10FFFF}",
            "\u{2028}\u{2029}",
            "\"\\/\n\r\t\u{8}\u{c}",
            "<|endoftext|>",
            "<|im_start|>",
            "\u{5D0}\u{5D1}\u{627}",
            "\u{E000}",
        ]);
        prop_oneof![
            6 => "[a-zA-Z0-9 ,.?]{0,16}",
            3 => odd.prop_map(str::to_string),
            1 => any::<String>(),
        ]
        .boxed()
    }

    /// Text: a few pieces, or now and then a very long run (up to ~80 KB; often 8–16 KB, where
    /// prompts are tokenized in pieces) after a piece that shifts where its characters fall.
    pub fn text() -> BoxedStrategy<String> {
        let run = (
            piece(),
            prop_oneof![1usize..20_000, 2_000usize..8_000],
            select(vec![
                "x",
                "\u{e9}",
                "\u{1F600}",
                "e\u{301}",
                "\u{202E}",
                " ",
            ]),
        );
        prop_oneof![
            12 => vec(piece(), 0..5).prop_map(|p| p.concat()),
            1 => run.prop_map(|(lead, n, s)| lead + &s.repeat(n)),
        ]
        .boxed()
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_]{0,20}"
    }

    /// A key no request type knows, so it lands in `extra`.
    fn extra_key() -> impl Strategy<Value = String> {
        prop_oneof![
            "x_[a-z]{1,8}",
            Just("frequency_penalty".to_string()),
            Just("metadata".to_string()),
            Just("top_k".to_string()),
            Just("logit_bias".to_string()),
        ]
    }

    /// Any JSON value, shallow.
    pub fn json_value() -> BoxedStrategy<Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                .map(Value::Number)),
            select(vec![
                1e308,
                -1e308,
                -0.0,
                5e-324,
                f64::MAX,
                f64::MIN_POSITIVE
            ])
            .prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                btree_map("[a-z]{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
    }

    /// A JSON schema for tool parameters or `json_schema`, sometimes not a schema at all.
    fn schema() -> BoxedStrategy<Value> {
        prop_oneof![
            Just(json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]})),
            Just(json!({"type": "object"})),
            Just(json!({})),
            Just(json!({"type": ["string", "null"]})),
            Just(json!({"type": "array", "items": {"type": "number"}})),
            Just(json!({"enum": []})),
            (1usize..60).prop_map(|d| {
                let mut s = json!({"type": "string"});
                for _ in 0..d {
                    s = json!({"type": "object", "properties": {"a": s}});
                }
                s
            }),
            json_value(),
        ]
        .boxed()
    }

    fn content() -> BoxedStrategy<Value> {
        let url = prop_oneof![
            Just("https://example.com/cat.png".to_string()),
            Just("data:image/png;base64,iVBORw0KGgo=".to_string()),
            Just("data:,".to_string()),
            Just("data:image/png;base64".to_string()),
            text(),
        ];
        let part = prop_oneof![
            4 => text().prop_map(|t| json!({"type": "text", "text": t})),
            1 => text().prop_map(|t| json!({"type": "text", "text": t, "cache_control": {"type": "ephemeral"}})),
            1 => url.prop_map(|u| json!({"type": "image_url", "image_url": {"url": u, "detail": "low"}})),
            1 => Just(json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}})),
            1 => Just(json!({"type": "text"})),
        ];
        prop_oneof![
            3 => text().prop_map(Value::String),
            1 => vec(part, 0..4).prop_map(Value::Array),
        ]
        .boxed()
    }

    fn tool_call() -> impl Strategy<Value = Value> {
        let arguments = prop_oneof![
            Just("{}".to_string()),
            Just(r#"{"city":"Oslo","days":3}"#.to_string()),
            text(),
            (1usize..64, any::<bool>()).prop_map(|(d, o)| nest(d, o)),
        ];
        (name(), name(), arguments).prop_map(|(id, name, args)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
        })
    }

    fn message() -> BoxedStrategy<Value> {
        let role = select(vec![
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ]);
        (
            role,
            option::weighted(0.9, content()),
            any::<bool>(),
            option::weighted(0.2, name()),
            option::weighted(0.4, vec(tool_call(), 1..3)),
            name(),
            option::weighted(0.1, json_value()),
        )
            .prop_map(
                |(role, content, null_content, name, calls, call_id, extra)| {
                    let mut m = Map::new();
                    m.insert("role".into(), role.into());
                    // Only an assistant's message may be without content.
                    let content = match content {
                        None if role != "assistant" => Some(Value::String("hi".into())),
                        c => c,
                    };
                    match content {
                        Some(c) => {
                            m.insert("content".into(), c);
                        }
                        None if null_content => {
                            m.insert("content".into(), Value::Null);
                        }
                        None => {}
                    }
                    if let Some(n) = name {
                        m.insert("name".into(), n.into());
                    }
                    if let (Some(c), "assistant") = (calls, role) {
                        m.insert("tool_calls".into(), Value::Array(c));
                    }
                    if role == "tool" {
                        m.insert("tool_call_id".into(), call_id.into());
                    }
                    if let Some(x) = extra {
                        m.insert("refusal".into(), x);
                    }
                    Value::Object(m)
                },
            )
            .boxed()
    }

    fn tool() -> impl Strategy<Value = Value> {
        (
            name(),
            option::of(text()),
            option::weighted(0.7, schema()),
            option::of(any::<bool>()),
        )
            .prop_map(|(name, description, parameters, strict)| {
                let mut f = Map::new();
                f.insert("name".into(), name.into());
                if let Some(d) = description {
                    f.insert("description".into(), d.into());
                }
                if let Some(p) = parameters {
                    f.insert("parameters".into(), p);
                }
                if let Some(s) = strict {
                    f.insert("strict".into(), s.into());
                }
                json!({"type": "function", "function": f})
            })
    }

    /// A number for an `f64` field: ordinary, or at the edges of the type.
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => 0.0f64..2.0,
            1 => select(vec![1e308, -1e308, -0.0, 5e-324, f64::MAX, f64::MIN, f64::EPSILON]),
            1 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ]
    }

    /// A `u32` for a token cap: small, or at the edges.
    /// An output cap: 1 or more (a cap of 0 is refused).
    fn cap() -> impl Strategy<Value = u32> {
        prop_oneof![4 => 1u32..64, 1 => Just(u32::MAX), 1 => 1u32..]
    }

    /// A valid chat request: every field of `ChatCompletionRequest` now and then, both routes.
    pub fn chat_request() -> BoxedStrategy<Value> {
        let sampling = (
            option::of(cap()),
            option::weighted(0.3, cap()),
            option::weighted(0.3, 1u32..=3),
            option::of(float()),
            option::weighted(0.3, float()),
            option::weighted(0.3, any::<i64>()),
        );
        let stop = prop_oneof![
            text().prop_map(Value::from),
            vec(text(), 0..5).prop_map(|v| json!(v)),
        ];
        let tool_choice = prop_oneof![
            select(vec!["auto", "none", "required"]).prop_map(Value::from),
            name().prop_map(|n| json!({"type": "function", "function": {"name": n}})),
            json_value(),
        ];
        let response_format = prop_oneof![
            Just(json!({"type": "text"})),
            Just(json!({"type": "json_object"})),
            Just(json!({"type": "json_schema"})),
            schema().prop_map(|s| json!({"type": "json_schema", "json_schema": {"name": "out", "schema": s, "strict": true}})),
        ];
        let more = (
            option::weighted(0.3, stop),
            option::weighted(0.2, any::<bool>()),
            option::weighted(0.2, 0u32..=20),
            option::weighted(0.3, vec(tool(), 0..3)),
            option::weighted(0.3, tool_choice),
            option::weighted(0.2, any::<bool>()),
            option::weighted(0.3, response_format),
            option::weighted(0.2, text()),
        );
        (
            select(vec!["m", "c"]),
            vec(message(), 1..5),
            option::of(any::<bool>()),
            option::of(option::of(any::<bool>())),
            sampling,
            more,
            btree_map(extra_key(), json_value(), 0..3),
        )
            .prop_map(
                |(route, messages, stream, options, sampling, more, extra)| {
                    let mut r = Map::new();
                    r.insert("model".into(), route.into());
                    r.insert("messages".into(), Value::Array(messages));
                    if let Some(s) = stream {
                        r.insert("stream".into(), s.into());
                        // `stream_options` is only allowed with `stream: true`.
                        if let (true, Some(o)) = (s, options) {
                            let o = o.map_or(json!({}), |u| json!({"include_usage": u}));
                            r.insert("stream_options".into(), o);
                        }
                    }
                    let (max_tokens, max_completion, n, temperature, top_p, seed) = sampling;
                    let (stop, logprobs, top_logprobs, tools, tool_choice, parallel, format, user) =
                        more;
                    let mut put = |k: &str, v: Option<Value>| {
                        if let Some(v) = v {
                            r.insert(k.into(), v);
                        }
                    };
                    put("max_tokens", max_tokens.map(Value::from));
                    put("max_completion_tokens", max_completion.map(Value::from));
                    put("n", n.map(Value::from));
                    put("temperature", temperature.map(Value::from));
                    put("top_p", top_p.map(Value::from));
                    put("seed", seed.map(Value::from));
                    put("stop", stop);
                    put("logprobs", logprobs.map(Value::from));
                    put("top_logprobs", top_logprobs.map(Value::from));
                    put("tools", tools.map(Value::Array));
                    put("tool_choice", tool_choice);
                    put("parallel_tool_calls", parallel.map(Value::from));
                    put("response_format", format);
                    put("user", user.map(Value::from));
                    for (k, v) in extra {
                        r.insert(k, v);
                    }
                    Value::Object(r)
                },
            )
            .boxed()
    }

    /// A valid embeddings request: each shape of `input`, both routes.
    pub fn embeddings_request() -> BoxedStrategy<Value> {
        let input = prop_oneof![
            text().prop_map(Value::from),
            vec(text(), 1..4).prop_map(|v| json!(v)),
            // Ids of cl100k_base's ordinary tokens (ids outside it are refused, as the guard
            // cannot read them: `embeddings_token_ids_are_read_as_their_text`).
            vec(0u32..100_000, 1..8).prop_map(|v| json!(v)),
            vec(vec(0u32..100_000, 0..5), 1..3).prop_map(|v| json!(v)),
        ];
        (
            select(vec!["m", "c"]),
            input,
            option::of(select(vec!["float", "base64"])),
            option::weighted(0.3, 1u32..=3072),
            option::weighted(0.2, text()),
        )
            .prop_map(|(route, input, format, dims, user)| {
                let mut r = json!({"model": route, "input": input});
                if let Some(f) = format {
                    r["encoding_format"] = f.into();
                }
                if let Some(d) = dims {
                    r["dimensions"] = d.into();
                }
                if let Some(u) = user {
                    r["user"] = u.into();
                }
                r
            })
            .boxed()
    }

    pub fn request() -> BoxedStrategy<(Endpoint, Value)> {
        prop_oneof![
            5 => chat_request().prop_map(|r| (Endpoint::Chat, r)),
            1 => embeddings_request().prop_map(|r| (Endpoint::Embeddings, r)),
        ]
        .boxed()
    }

    // ---- The app, and what every answer must look like -------------------------------------

    pub struct Harness {
        rt: tokio::runtime::Runtime,
        router: axum::Router,
        /// A key without limits or budgets.
        pub plain: String,
        /// A key with rate limits and a hard budget, so requests are tokenized and reserved.
        pub metered: String,
        _sim: common::Sim,
    }

    pub struct Answer {
        pub status: StatusCode,
        pub content_type: String,
        pub body: bytes::Bytes,
    }

    impl Answer {
        pub fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap_or(Value::Null)
        }

        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body[..self.body.len().min(2000)]).into_owned()
        }
    }

    pub fn harness() -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (router, plain, metered, sim) = rt.block_on(async {
            let sim = common::sim(SimConfig::default()).await;
            let yaml = format!(
                "server: {{ max_body_bytes: 1048576 }}\n{}",
                common::two_route_config(&sim.url)
            );
            let gw = common::gateway_only(&yaml).await;
            let routes = ["m", "c"];
            let (_, plain) = common::use_case_with_key(
                &gw,
                Stage::Production,
                &routes,
                PilotCaps::default(),
                None,
            )
            .await;
            let (uc, metered) = common::use_case_with_key(
                &gw,
                Stage::Production,
                &routes,
                PilotCaps::default(),
                None,
            )
            .await;
            let limits = Limits {
                requests_per_minute: Some(1_000_000),
                tokens_per_minute: Some(5_000_000_000),
                concurrent_requests: Some(64),
            };
            let patch = UseCasePatch {
                limits: Some(limits),
                ..UseCasePatch::default()
            };
            gw.store
                .update_use_case("test", &uc.id, &patch)
                .await
                .unwrap();
            let budget = Budget {
                id: tollgate_store::new_id("bud"),
                scope: "use_case".into(),
                scope_id: uc.id.clone(),
                period: "lifetime".into(),
                time_zone: "UTC".into(),
                amount_nano_usd: 1_000_000_000_000,
                mode: "hard".into(),
                created_at: 0,
                created_by: "test".into(),
            };
            gw.store.create_budget("test", &budget).await.unwrap();
            gw.keyring.reload().await.unwrap();
            gw.gate.budgeter.reload().await.unwrap();
            (tollgate_gateway::router(gw), plain, metered, sim)
        });
        Harness {
            rt,
            router,
            plain,
            metered,
            _sim: sim,
        }
    }

    impl Harness {
        /// Sends `body` on a worker thread (as the server does) and reads the whole answer.
        pub fn send(&self, key: &str, endpoint: Endpoint, body: Vec<u8>) -> Answer {
            let req = post(key, endpoint.path(), body);
            let router = self.router.clone();
            let task = self.rt.spawn(async move {
                let resp = router.oneshot(req).await.unwrap();
                let status = resp.status();
                let content_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                Answer {
                    status,
                    content_type,
                    body,
                }
            });
            self.rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await })
                .expect("the gateway answered within 60 s")
                .expect("the request task did not panic")
        }

        pub fn run<S: Strategy>(
            &self,
            strategy: &S,
            test: impl Fn(S::Value) -> Result<(), TestCaseError>,
        ) {
            let mut runner = TestRunner::new(ProptestConfig {
                // `PROPTEST_CASES=5000` for a longer hunt.
                cases: std::env::var("PROPTEST_CASES")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(CASES),
                // Shrinking re-runs whole requests; a few hundred steps find the small case.
                max_shrink_iters: 512,
                ..ProptestConfig::default()
            });
            if let Err(e) = runner.run(strategy, test) {
                panic!("{e}");
            }
        }
    }

    /// `{"error":{"message","type","param","code"}}` and nothing else.
    pub fn check_error_shape(body: &[u8]) -> Result<(), TestCaseError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            TestCaseError::fail(format!(
                "error body is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            ))
        })?;
        let Some(top) = v.as_object() else {
            return Err(TestCaseError::fail(format!(
                "error body is not an object: {v}"
            )));
        };
        prop_assert_eq!(top.len(), 1, "{}", v);
        let e = v["error"].as_object().cloned().unwrap_or_default();
        prop_assert_eq!(e.len(), 4, "{}", v);
        prop_assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            v
        );
        prop_assert!(e["type"].is_string(), "{}", v);
        prop_assert!(e["param"].is_string() || e["param"].is_null(), "{}", v);
        prop_assert!(e["code"].is_string() || e["code"].is_null(), "{}", v);
        Ok(())
    }

    /// Every answer: a success whose body is a real answer, or a 4xx with OpenAI's error body.
    /// Never a 5xx (the upstream is the simulator, which does not fail unless told to).
    pub fn check_answer(endpoint: Endpoint, a: &Answer) -> Result<(), TestCaseError> {
        prop_assert!(!a.status.is_server_error(), "{}: {}", a.status, a.text());
        if !a.status.is_success() {
            prop_assert!(a.status.is_client_error(), "{}: {}", a.status, a.text());
            prop_assert!(
                a.content_type.starts_with("application/json"),
                "{}",
                a.content_type
            );
            return check_error_shape(&a.body);
        }
        prop_assert_eq!(a.status, StatusCode::OK);
        if a.content_type.starts_with("text/event-stream") {
            let text = String::from_utf8(a.body.to_vec())
                .map_err(|e| TestCaseError::fail(format!("stream is not UTF-8: {e}")))?;
            let events: Vec<&str> = text
                .split("\n\n")
                .filter_map(|ev| ev.strip_prefix("data: "))
                .collect();
            prop_assert_eq!(events.last().copied(), Some("[DONE]"), "{}", text);
            for ev in &events[..events.len() - 1] {
                let chunk: Value = serde_json::from_str(ev)
                    .map_err(|e| TestCaseError::fail(format!("chunk is not JSON ({e}): {ev}")))?;
                prop_assert_eq!(&chunk["object"], "chat.completion.chunk", "{}", ev);
            }
            return Ok(());
        }
        let v = a.json();
        match endpoint {
            Endpoint::Chat => {
                prop_assert_eq!(&v["object"], "chat.completion", "{}", v);
                prop_assert!(v["choices"][0]["message"].is_object(), "{}", v);
            }
            Endpoint::Embeddings => {
                prop_assert_eq!(&v["object"], "list", "{}", v);
                prop_assert!(v["data"].is_array(), "{}", v);
            }
        }
        Ok(())
    }

    // ---- Properties --------------------------------------------------------------------------

    /// A valid request gets a real answer: 200 on the OpenAI route; on the Anthropic route too,
    /// except `n` > 1 and embeddings, which that route cannot do (400 `unsupported_by_route`); the
    /// metered key may also be refused by its limits or budget (429).
    #[test]
    fn valid_requests_get_real_answers() {
        let h = harness();
        h.run(&(request(), any::<bool>()), |((endpoint, req), metered)| {
            let key = if metered { &h.metered } else { &h.plain };
            let body = serde_json::to_vec(&req).unwrap();
            let a = h.send(key, endpoint, body);
            check_answer(endpoint, &a)?;
            let unsupported = req["model"] == "c"
                && (endpoint == Endpoint::Embeddings || req["n"].as_u64().is_some_and(|n| n > 1));
            let e = a.json();
            // Admission (limits, budgets) comes before the route is tried.
            if metered && a.status == StatusCode::TOO_MANY_REQUESTS {
                let code = e["error"]["code"].as_str().unwrap_or_default();
                prop_assert!(
                    ["budget_exceeded", "rate_limit_tokens"].contains(&code),
                    "{}",
                    e
                );
            } else if unsupported {
                prop_assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", e);
                prop_assert_eq!(&e["error"]["code"], "unsupported_by_route");
            } else {
                prop_assert_eq!(a.status, StatusCode::OK, "{}", a.text());
            }
            Ok(())
        });
    }

    /// One mutation of a valid request that serde must refuse — a wrong type at a typed field
    /// (huge and negative numbers, `-0`, NaN-like strings, unknown roles, null for a required
    /// field), a required field removed, a known key repeated — is a 400 whose `param` names the
    /// field (or the untagged enum around it: `messages[0].content`, `stop`, `input`).
    #[test]
    fn invalid_requests_name_the_field() {
        let h = harness();
        let strategy = (
            request(),
            any::<Index>(),
            any::<Index>(),
            0u8..3,
            any::<bool>(),
        );
        h.run(&strategy, |((endpoint, req), at, which, op, metered)| {
            let mut doc = Doc::of(&req);
            let candidates: Vec<(Vec<Seg>, (Ty, bool, String))> = doc
                .paths()
                .into_iter()
                .filter_map(|p| typed(endpoint, &p).map(|t| (p, t)))
                .collect();
            let (path, (ty, required, param)) = at.get(&candidates).clone();
            let parent_is_struct = path.len() == 1
                || typed(endpoint, &path[..path.len() - 1]).is_some_and(|t| t.0 == Ty::Struct);
            let field_key = matches!(path.last(), Some(Seg::Key(_))) && parent_is_struct;
            let what = match op {
                1 if field_key && required => {
                    doc.remove(&path);
                    "removed".to_string()
                }
                2 if field_key => {
                    doc.duplicate(&path, None);
                    "repeated".to_string()
                }
                _ => {
                    let raw = *which.get(&wrong_values(ty, required));
                    *doc.get_mut(&path).unwrap() = Doc::Raw(raw.to_string());
                    format!("set to {raw}")
                }
            };
            let body = doc.render();
            let key = if metered { &h.metered } else { &h.plain };
            let a = h.send(key, endpoint, body.clone().into_bytes());
            check_answer(endpoint, &a)?;
            let e = a.json();
            prop_assert_eq!(
                a.status,
                StatusCode::BAD_REQUEST,
                "{} {}: {}\n{}",
                serde_path(&path),
                what,
                e,
                body
            );
            prop_assert_eq!(
                e["error"]["param"].as_str(),
                Some(param.as_str()),
                "{} {}: {}\n{}",
                serde_path(&path),
                what,
                e,
                body
            );
            Ok(())
        });
    }

    /// Found by fuzzing: a character across byte 6,144 of a text between 8 and 16 KB panicked
    /// the tokenizer's splitter (a 500) when a key's limits or budget needed the prompt counted;
    /// `metadata` beside `user` went to the Anthropic route twice (a 400 from the upstream).
    #[test]
    fn found_by_fuzzing() {
        let h = harness();
        let text = format!("a{}", "\u{e9}".repeat(5_000));
        let req = json!({"model": "m", "messages": [{"role": "user", "content": text}]});
        let a = h.send(&h.metered, Endpoint::Chat, req.to_string().into_bytes());
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let req = json!({"model": "c", "user": "u", "metadata": {"k": "v"},
                         "messages": [{"role": "user", "content": "x"}]});
        let a = h.send(&h.plain, Endpoint::Chat, req.to_string().into_bytes());
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    }

    /// Raw JSON no well-behaved client sends.
    fn hostile_raw() -> BoxedStrategy<String> {
        let fixed = select(vec![
            r#""\ud800""#,
            r#""\udc00""#,
            r#""a\ud800b""#,
            r#""\ud800\u0041""#,
            r#""\ud83d\ude00""#,
            r#""\u0000""#,
            r#""a\u0000b\u202e""#,
            "\"\u{0}\"",
            "\"\t\"",
            r#""\x""#,
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "1e308",
            "-1e308",
            "1e400",
            "1e-400",
            "-0",
            "-0.0",
            "5e-324",
            "1.7976931348623157e308",
            "123456789012345678901234567890",
            "NaN",
            "Infinity",
            "-Infinity",
            r#""NaN""#,
            r#""-Infinity""#,
            "01",
            "1.",
            ".5",
            "+1",
            "0x10",
            "\"\"",
            "[]",
            "{}",
            "null",
            "true",
            "[null]",
            "{\"\":null}",
        ]);
        prop_oneof![
            4 => fixed.prop_map(str::to_string),
            1 => (1usize..12_000, any::<bool>()).prop_map(|(d, o)| nest(d, o)),
            1 => select(vec![126usize, 127, 128, 129, 10_000, 100_000])
                .prop_flat_map(|d| (Just(d), any::<bool>()))
                .prop_map(|(d, o)| nest(d, o)),
            1 => (1usize..200_000).prop_map(|n| Value::from("\u{1F600}".repeat(n / 4)).to_string()),
        ]
        .boxed()
    }

    #[derive(Debug, Clone)]
    enum Hostile {
        Replace(String),
        Remove,
        Duplicate(Option<String>),
    }

    /// Damage to the text as a whole.
    #[derive(Debug, Clone)]
    enum Tail {
        None,
        Truncate(Index),
        Bom,
        Append(&'static str),
        NulAt(Index),
    }

    /// One to three hostile mutations anywhere in a valid request (typed fields, `extra`,
    /// `Value`s, the root), perhaps damage to the text: the answer is a success or a 4xx with
    /// OpenAI's error body — never a 5xx, a panic, a stack overflow or a hang.
    #[test]
    fn hostile_json_never_crashes() {
        let h = harness();
        let op = prop_oneof![
            6 => hostile_raw().prop_map(Hostile::Replace),
            1 => Just(Hostile::Remove),
            2 => option::of(hostile_raw()).prop_map(Hostile::Duplicate),
        ];
        let tail = prop_oneof![
            8 => Just(Tail::None),
            1 => any::<Index>().prop_map(Tail::Truncate),
            1 => Just(Tail::Bom),
            1 => select(vec!["x", "}", "]", " \n\t", ",", "{}", "\u{0}"]).prop_map(Tail::Append),
            1 => any::<Index>().prop_map(Tail::NulAt),
        ];
        let strategy = (
            request(),
            vec((any::<Index>(), op), 1..4),
            tail,
            any::<bool>(),
        );
        h.run(&strategy, |((endpoint, req), ops, tail, metered)| {
            let mut doc = Doc::of(&req);
            for (at, op) in &ops {
                let paths = doc.paths();
                let path = at.get(&paths).clone();
                match op {
                    Hostile::Replace(raw) => {
                        if let Some(node) = doc.get_mut(&path) {
                            *node = Doc::Raw(raw.clone());
                        }
                    }
                    Hostile::Remove => doc.remove(&path),
                    Hostile::Duplicate(with) => doc.duplicate(&path, with.clone().map(Doc::Raw)),
                }
            }
            let mut body = doc.render().into_bytes();
            match tail {
                Tail::None => {}
                Tail::Truncate(i) => body.truncate(i.index(body.len() + 1)),
                Tail::Bom => body = [b"\xEF\xBB\xBF".as_slice(), &body].concat(),
                Tail::Append(s) => body.extend_from_slice(s.as_bytes()),
                Tail::NulAt(i) => {
                    let at = i.index(body.len() + 1);
                    body.insert(at, 0);
                }
            }
            let key = if metered { &h.metered } else { &h.plain };
            let a = h.send(key, endpoint, body.clone());
            check_answer(endpoint, &a).map_err(|e| {
                TestCaseError::fail(format!(
                    "{e}\nbody: {}",
                    String::from_utf8_lossy(&body[..body.len().min(3000)])
                ))
            })
        });
    }

    /// serde_json's recursion limit (127 levels read) is a 400 that says so, wherever the nesting is —
    /// `extra`, a message's `extra`, `tool_choice`, tool parameters, `json_schema`, an image part —
    /// and however deep (up to 100,000 levels), never a stack overflow; one level less is a
    /// request like any other (200), translated for the Anthropic route too.
    #[test]
    fn nesting_depth_is_bounded_by_a_400() {
        let h = harness();
        // (where, how many containers enclose it)
        let places: Vec<(&str, usize)> = vec![
            ("extra", 1),
            ("message_extra", 3),
            ("tool_choice", 1),
            ("parameters", 4),
            ("json_schema", 2),
            ("image_url", 5),
        ];
        let depth = prop_oneof![
            1usize..16,
            100usize..140,
            select(vec![1_000usize, 10_000, 100_000]),
        ];
        let strategy = (
            select(vec!["m", "c"]),
            select(places),
            depth,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            text(),
        );
        h.run(&strategy, |(route, (place, enclosing), depth, objects, stream, metered, text)| {
            const MARK: &str = "\u{E000}nest\u{E000}";
            let mut req = json!({
                "model": route,
                "messages": [{"role": "user", "content": text}],
                "max_tokens": 16,
                "stream": stream,
            });
            match place {
                "extra" => req["x_deep"] = MARK.into(),
                "message_extra" => req["messages"][0]["x_deep"] = MARK.into(),
                "tool_choice" => req["tool_choice"] = MARK.into(),
                "parameters" => {
                    req["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": MARK}}]);
                }
                "json_schema" => req["response_format"] = json!({"type": "json_schema", "json_schema": MARK}),
                _ => {
                    req["messages"][0]["content"] =
                        json!([{"type": "text", "text": text}, {"type": "image_url", "image_url": MARK}]);
                }
            }
            let mark = Value::from(MARK).to_string();
            let body = req.to_string().replacen(&mark, &nest(depth, objects), 1);
            let key = if metered { &h.metered } else { &h.plain };
            let a = h.send(key, Endpoint::Chat, body.into_bytes());
            check_answer(Endpoint::Chat, &a)?;
            let e = a.json();
            if enclosing + depth <= 127 {
                prop_assert_eq!(a.status, StatusCode::OK, "{} levels at {}: {}", depth, place, a.text());
            } else {
                prop_assert_eq!(a.status, StatusCode::BAD_REQUEST, "{} levels at {}: {}", depth, place, e);
                let message = e["error"]["message"].as_str().unwrap_or_default();
                prop_assert!(
                    message.starts_with("the request body nests arrays and objects more than 127 levels deep"),
                    "{}",
                    message
                );
            }
            Ok(())
        });
    }
}
