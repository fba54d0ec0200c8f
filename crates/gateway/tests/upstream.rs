//! Tier 3: the gateway against the simulator (and a capturing upstream), over real sockets.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tollgate_simulator::SimConfig;

#[tokio::test]
async fn chat_complete_and_streamed_say_the_same() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&two_route_config(&s.url)).await;
    for route in ["m", "c"] {
        let body =
            json!({"model": route, "messages": user("Say something"), "max_tokens": 12, "seed": 7});
        let full: Value = g.post(body.clone()).await.json().await.unwrap();
        let text = full["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!text.is_empty(), "{route}: {full}");
        assert_eq!(full["object"], "chat.completion");
        assert!(full["usage"]["completion_tokens"].as_u64().unwrap() > 0);

        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        let resp = g.post(streamed).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let events = sse_data(resp).await;
        assert_eq!(
            events.last().map(String::as_str),
            Some("[DONE]"),
            "{route}: {events:?}"
        );
        assert_eq!(streamed_text(&events), text, "{route}");
        // The client did not ask for usage: no usage-only chunk reaches it.
        assert!(
            events.iter().all(|e| !e.contains("\"choices\":[]")),
            "{route}: {events:?}"
        );
    }
}

#[tokio::test]
async fn the_usage_chunk_reaches_clients_that_ask_for_it() {
    let s = sim(SimConfig {
        cached_tokens: 2,
        reasoning_tokens: 3,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&two_route_config(&s.url)).await;
    for route in ["m", "c"] {
        let events = sse_data(
            g.post(json!({"model": route, "stream": true, "stream_options": {"include_usage": true}, "messages": user("hi")}))
                .await,
        )
        .await;
        let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        assert_eq!(usage_chunk["choices"], json!([]), "{route}");
        assert!(
            usage_chunk["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
            "{route}"
        );
    }
    let metrics = g.metrics().await;
    assert!(
        metrics.contains("tollgate_tokens_total{token_type=\"cached_input\",route=\"m\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_tokens_total{token_type=\"reasoning\",route=\"m\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tollgate_tokens_total{token_type=\"cached_input\",route=\"c\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn tools_work_on_both_paths_streamed_and_not() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&two_route_config(&s.url)).await;
    let tools = json!([{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "express": {"type": "boolean"}}, "required": ["order_id"]}}}]);
    for route in ["m", "c"] {
        let full: Value = g
            .post(json!({"model": route, "tools": tools, "messages": user("Where is my order?")}))
            .await
            .json()
            .await
            .unwrap();
        let choice = &full["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{route}: {full}");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "lookup_order");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(
            args["order_id"].is_string() && args["express"].is_boolean(),
            "{route}: {args}"
        );

        // Streamed: the argument pieces join to the same JSON.
        let events = sse_data(g.post(json!({"model": route, "stream": true, "tools": tools, "messages": user("Where is my order?")})).await).await;
        let mut name = String::new();
        let mut joined = String::new();
        for e in events.iter().filter(|e| *e != "[DONE]") {
            let v: Value = serde_json::from_str(e).unwrap();
            if let Some(tc) = v["choices"][0]["delta"]["tool_calls"].get(0) {
                name.push_str(tc["function"]["name"].as_str().unwrap_or(""));
                joined.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        assert_eq!(name, "lookup_order", "{route}");
        assert_eq!(
            serde_json::from_str::<Value>(&joined).unwrap(),
            args,
            "{route}"
        );

        // The tool result goes back and the model answers in text.
        let follow = json!({"model": route, "tools": tools, "messages": [
            {"role": "user", "content": "Where is my order?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "{\"status\":\"shipped\"}"}
        ]});
        let answer: Value = g.post(follow).await.json().await.unwrap();
        assert_eq!(
            answer["choices"][0]["finish_reason"], "stop",
            "{route}: {answer}"
        );
        assert!(
            answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .len()
                > 3
        );
    }
}

#[tokio::test]
async fn json_modes_n_stop_and_logprobs_pass_through() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&two_route_config(&s.url)).await;
    let schema = json!({"type": "json_schema", "json_schema": {"name": "t", "schema": {"type": "object", "properties": {"sentiment": {"enum": ["pos", "neg"]}}}}});
    let v: Value = g
        .post(json!({"model": "m", "response_format": schema, "messages": user("rate")}))
        .await
        .json()
        .await
        .unwrap();
    let answer: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(answer["sentiment"] == "pos" || answer["sentiment"] == "neg");
    let v: Value = g
        .post(json!({"model": "m", "n": 3, "logprobs": true, "messages": user("hi")}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"].as_array().unwrap().len(), 3);
    assert!(v["choices"][2]["logprobs"]["content"][0]["logprob"].is_number());
    // Anthropic cannot do n > 1 and it is the route's only deployment: a clear 400.
    let resp = g
        .post(json!({"model": "c", "n": 2, "messages": user("hi")}))
        .await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "unsupported_by_route");
}

#[tokio::test]
async fn embeddings_and_azure_deployments() {
    let s = sim(SimConfig {
        api_key: Some("azure-secret".into()),
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        r#"
providers:
  - {{ name: az, type: azure_openai, base_url: "{}", api_key: azure-secret, api_version: "2024-10-21" }}
routes:
  - name: emb
    deployments: [{{ provider: az, model: my-embedding-deployment }}]
  - name: chat
    deployments: [{{ provider: az, model: my-4o-deployment }}]
"#,
        s.url
    ))
    .await;
    let client = reqwest::Client::new();
    let v: Value = client
        .post(format!("{}/v1/embeddings", g.url))
        .bearer_auth(&g.key)
        .json(&json!({"model": "emb", "input": ["a", "b"], "dimensions": 8}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 8);
    let chat: Value = g
        .post(json!({"model": "chat", "messages": user("hi")}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chat["object"], "chat.completion", "{chat}");
}

#[tokio::test]
async fn unknown_fields_reach_the_provider_untouched() {
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(1);
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |body: axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body.0).await;
                axum::Json(json!({"id": "x", "object": "chat.completion", "created": 1, "model": "up", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}))
            }
        }),
    );
    let url = serve_upstream(app).await;
    let g = gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: up, model: upstream-model }}] }}]\n"
    ))
    .await;
    let sent = json!({"model": "r", "messages": [{"role": "user", "content": "x", "cache_control": {"type": "ephemeral"}}],
        "frequency_penalty": 0.5, "top_k": 3, "metadata": {"team": "a"}, "seed": 1, "stop": ["\n"], "parallel_tool_calls": false});
    let resp = g.post(sent.clone()).await;
    assert_eq!(resp.status(), 200);
    let got = rx.recv().await.unwrap();
    let mut expected = sent;
    expected["model"] = json!("upstream-model");
    assert_eq!(got, expected);
}

/// An upstream that echoes the credential it was sent: a 401 answers with it in its body, a 400
/// quotes it in its message, and a stream reports it in an error event. No client ever sees it.
#[tokio::test]
async fn upstream_error_text_never_carries_the_gateways_credentials() {
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(
            move |headers: HeaderMap, body: axum::Json<Value>| async move {
                let auth = headers["authorization"].to_str().unwrap().to_string();
                let msg = format!("key {auth} is not allowed here");
                match body.0["messages"][0]["content"].as_str().unwrap() {
                    "401" => (
                        axum::http::StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": {"message": msg}})),
                    )
                        .into_response(),
                    "403" => (
                        axum::http::StatusCode::FORBIDDEN,
                        axum::Json(json!({"error": {"message": msg}})),
                    )
                        .into_response(),
                    "400" => (
                        axum::http::StatusCode::BAD_REQUEST,
                        axum::Json(json!({"error": {"message": msg}})),
                    )
                        .into_response(),
                    _ => (
                        [("content-type", "text/event-stream")],
                        format!(
                        "data: {}\n\ndata: {}\n\n",
                        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": null}]}),
                        json!({"error": {"message": msg}})
                    ),
                    )
                        .into_response(),
                }
            },
        ),
    );
    let url = serve_upstream(app).await;
    let secret = "sk-upstream-secret-4242424242";
    let g = gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\", api_key: \"{secret}\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: up, model: m }}], retries: 0 }}]\n"
    ))
    .await;
    for (content, stream, status) in [
        ("401", false, 502),
        ("403", false, 502),
        ("400", false, 400),
        ("sse", true, 200),
    ] {
        let resp = g
            .post(json!({"model": "r", "stream": stream, "messages": [{"role": "user", "content": content}]}))
            .await;
        assert_eq!(resp.status(), status, "{content}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains(secret), "{content}: {text}");
        assert!(!text.contains("4242424242"), "{content}: {text}");
        if content == "400" {
            assert!(text.contains("key Bearer *** is not allowed"), "{text}");
        }
        if matches!(content, "401" | "403") {
            assert!(
                !text.contains("is not allowed"),
                "a {content}'s body is never forwarded: {text}"
            );
        }
    }
}

/// The provider key of the gateways [`keyed_gateway`] makes.
const KEYED_SECRET: &str = "gwkey.Q7zXw2RbN4tVy8Lc";

/// A gateway whose one route goes to the upstream at `url` with the provider key
/// [`KEYED_SECRET`], and `more` configuration after it.
async fn keyed_gateway(url: &str, more: &str) -> Gw {
    gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\", api_key: \"{KEYED_SECRET}\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: up, model: m }}], retries: 0 }}]\n{more}"
    ))
    .await
}

/// An upstream that echoes the gateway's key in successful answers — as content, inside a tool
/// call's arguments, behind JSON escapes, and streamed one character per chunk — never shows it to
/// a client: it is masked as `<SECRET_GENERIC>`, with the policy scanning answers and with a
/// policy that does not. (The key has no known shape: only the gateway knows it is a secret.)
#[tokio::test]
async fn a_key_echoed_in_a_successful_answer_is_masked() {
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(
            move |headers: HeaderMap, body: axum::Json<Value>| async move {
                let auth = headers["authorization"].to_str().unwrap();
                let key = auth.trim_start_matches("Bearer ").to_string();
                let escaped: String = key.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
                // Escaped inside the arguments' JSON, then again in the answer's.
                let twice: String = key.chars().map(|c| format!("\\\\u{:04X}", c as u32)).collect();
                if body.0["stream"] == json!(true) {
                    let mut sse = String::new();
                    for piece in ["your key: ".to_string()]
                        .into_iter()
                        .chain(key.chars().map(String::from))
                        .chain([" ok".to_string()])
                    {
                        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": key, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
                        sse.push_str(&format!("data: {chunk}\n\n"));
                    }
                    sse.push_str("data: [DONE]\n\n");
                    return ([("content-type", "text/event-stream")], sse).into_response();
                }
                let answer = format!(
                    r#"{{"id":"x","object":"chat.completion","created":1,"model":"{key}","system_fingerprint":"{escaped}","x_{key}":1,"choices":[{{"index":0,"message":{{"role":"assistant","content":"{key}","content":"plain {key} and escaped {escaped}","tool_calls":[{{"id":"t","type":"function","function":{{"name":"f","arguments":"{{\"k\":\"{key}\",\"e\":\"{twice}\"}}"}}}}]}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}}}"#
                );
                ([("content-type", "application/json")], answer).into_response()
            },
        ),
    );
    let g = keyed_gateway(&serve_upstream(app).await, "").await;
    for scan_output in [true, false] {
        g.set_policy(json!({ "scan": { "output": scan_output } }))
            .await;

        let resp = g
            .post(json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(resp.status(), 200, "scan {scan_output}");
        let answer: Value = resp.json().await.unwrap();
        let text = answer.to_string();
        // Not in any form: its tail is never written escaped.
        assert!(!text.contains("RbN4tVy8Lc"), "scan {scan_output}: {text}");
        assert_eq!(answer["model"], "<SECRET_GENERIC>", "scan {scan_output}");
        assert_eq!(answer["system_fingerprint"], "<SECRET_GENERIC>");
        assert_eq!(answer["x_<SECRET_GENERIC>"], 1, "{text}");
        assert_eq!(
            answer["choices"][0]["message"]["content"],
            "plain <SECRET_GENERIC> and escaped <SECRET_GENERIC>",
            "scan {scan_output}"
        );
        assert_eq!(
            answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            r#"{"k":"<SECRET_GENERIC>","e":"<SECRET_GENERIC>"}"#
        );

        let resp = g
            .post(json!({"model": "r", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(resp.status(), 200);
        let events = sse_data(resp).await;
        let shown = streamed_text(&events);
        assert_eq!(
            shown, "your key: <SECRET_GENERIC> ok",
            "scan {scan_output}: {events:?}"
        );
        assert!(
            events.iter().all(|e| !e.contains("RbN4tVy8Lc")),
            "scan {scan_output}: {events:?}"
        );
    }
}

/// An upstream that writes the gateway's credentials encoded — base64 and base64url (also
/// inside a longer encoded text), hex, percent-encoded, reversed — or a webhook's signing key
/// (the base64 part of its `whsec_` secret, the key it decodes to), or the key with a zero-width
/// space after each character, into a successful answer,
/// complete or streamed, never shows them: each is masked, under a policy that scans answers
/// and one that does not (attack 2026-12-02 A5, A6).
#[tokio::test]
async fn a_credential_echoed_encoded_in_a_successful_answer_is_masked() {
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let webhook_key = "hook-signing-key-7Hq2Xv9Lp4";
    let whsec = format!("whsec_{}", STANDARD.encode(webhook_key));
    let hook_b64 = STANDARD.encode(webhook_key);
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let (webhook_key, hook_b64) = (webhook_key.to_string(), hook_b64.clone());
            async move {
                let key = headers["authorization"].to_str().unwrap()["Bearer ".len()..].to_string();
                let hex: String = key.bytes().map(|b| format!("{b:02X}")).collect();
                let pct: String = key.bytes().map(|b| format!("%{b:02x}")).collect();
                let inner = STANDARD.encode(format!("xy{key}z"));
                let split: String = key.chars().flat_map(|c| [c, '\u{200B}']).collect();
                let text = format!(
                    "b64 {} url {} inner {inner} hex {hex} pct {pct} rev {} hook {hook_b64} hookkey {webhook_key} zw {split} end",
                    STANDARD.encode(&key),
                    URL_SAFE_NO_PAD.encode(&key),
                    key.chars().rev().collect::<String>(),
                );
                if body.0["stream"] == json!(true) {
                    let mut sse = String::new();
                    let chars: Vec<char> = text.chars().collect();
                    for piece in chars.chunks(5) {
                        let piece: String = piece.iter().collect();
                        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
                        sse.push_str(&format!("data: {chunk}\n\n"));
                    }
                    sse.push_str("data: [DONE]\n\n");
                    return ([("content-type", "text/event-stream")], sse).into_response();
                }
                axum::Json(json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}))
                .into_response()
            }
        }),
    );
    let secret = KEYED_SECRET;
    let g = keyed_gateway(
        &serve_upstream(app).await,
        &format!("alerts: {{ webhooks: [{{ url: \"http://127.0.0.1:1/hook\", secret: \"{whsec}\" }}] }}\n"),
    )
    .await;
    // Pieces of each form that no mask may leave behind.
    let hex: String = secret.bytes().map(|b| format!("{b:02X}")).collect();
    let pct: String = secret.bytes().map(|b| format!("%{b:02x}")).collect();
    let b64 = STANDARD.encode(secret);
    let inner = STANDARD.encode(format!("xy{secret}z"));
    let leaks = [
        secret.to_string(),
        b64[2..20].to_string(),
        URL_SAFE_NO_PAD.encode(secret)[2..20].to_string(),
        inner[4..22].to_string(),
        hex[4..30].to_string(),
        pct[6..40].to_string(),
        secret.chars().rev().collect::<String>()[2..14].to_string(),
        STANDARD.encode(webhook_key)[2..20].to_string(),
        webhook_key[2..].to_string(),
        "R\u{200B}b\u{200B}N\u{200B}4".to_string(),
    ];
    for scan_output in [true, false] {
        g.set_policy(json!({ "scan": { "output": scan_output } }))
            .await;
        for stream in [false, true] {
            let resp = g
                .post(json!({"model": "r", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
                .await;
            assert_eq!(resp.status(), 200, "scan {scan_output}, stream {stream}");
            let shown = if stream {
                streamed_text(&sse_data(resp).await)
            } else {
                let v: Value = resp.json().await.unwrap();
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            for leak in &leaks {
                assert!(
                    !shown.contains(leak.as_str()),
                    "scan {scan_output}, stream {stream}: {leak} in {shown}"
                );
            }
            assert_eq!(
                shown.matches("<SECRET_GENERIC>").count(),
                9,
                "scan {scan_output}, stream {stream}: {shown}"
            );
            assert!(
                shown.starts_with("b64 ") && shown.ends_with(" end"),
                "{shown}"
            );
        }
    }
}

/// An upstream that writes the gateway's key across blanks — cut by a line break, spelled
/// with a space after each character, in hex pairs with colons — into a successful answer,
/// complete or streamed three characters per chunk, never shows it: each is masked from its
/// first character to its last and the words around it come through, under a policy that scans
/// answers and one that does not (attack 2026-12-02b B5).
#[tokio::test]
async fn a_key_echoed_across_blanks_is_masked_in_answers_and_streams() {
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(
            move |headers: HeaderMap, body: axum::Json<Value>| async move {
                let auth = headers["authorization"].to_str().unwrap();
                let key = auth.trim_start_matches("Bearer ").to_string();
                let spaced: Vec<String> = key.chars().map(String::from).collect();
                let hex: Vec<String> = key.bytes().map(|b| format!("{b:02x}")).collect();
                let text = format!(
                    "one {}\n{} two {} three {} four",
                    &key[..7],
                    &key[7..],
                    spaced.join(" "),
                    hex.join(":")
                );
                if body.0["stream"] == json!(true) {
                    let mut sse = String::new();
                    let chars: Vec<char> = text.chars().collect();
                    for piece in chars.chunks(3) {
                        let piece: String = piece.iter().collect();
                        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
                        sse.push_str(&format!("data: {chunk}\n\n"));
                    }
                    sse.push_str("data: [DONE]\n\n");
                    return ([("content-type", "text/event-stream")], sse).into_response();
                }
                let answer = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
                ([("content-type", "application/json")], answer.to_string()).into_response()
            },
        ),
    );
    let g = keyed_gateway(&serve_upstream(app).await, "").await;
    let want = "one <SECRET_GENERIC> two <SECRET_GENERIC> three <SECRET_GENERIC> four";
    for scan_output in [true, false] {
        g.set_policy(json!({ "scan": { "output": scan_output } }))
            .await;
        let resp = g
            .post(json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(resp.status(), 200, "scan {scan_output}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(
            answer["choices"][0]["message"]["content"], want,
            "scan {scan_output}"
        );
        let resp = g
            .post(json!({"model": "r", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(resp.status(), 200);
        let events = sse_data(resp).await;
        assert_eq!(
            streamed_text(&events),
            want,
            "scan {scan_output}: {events:?}"
        );
    }
}

/// An upstream that answers with a redirect is not followed: the request (the provider key, the
/// prompt) is never re-sent to where `Location` points; the client gets an upstream error.
#[tokio::test]
async fn a_redirecting_upstream_is_not_followed() {
    use axum::response::IntoResponse;
    use axum::routing::post;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let hits = Arc::new(AtomicU32::new(0));
    let counted = hits.clone();
    let elsewhere = axum::Router::new().route(
        "/stolen",
        post(move || async move {
            counted.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"error": {"message": "should never be reached"}}))
        }),
    );
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/stolen", other.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(other, elsewhere).await.unwrap() });
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let target = target.clone();
            async move {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [("location", target)],
                )
                    .into_response()
            }
        }),
    );
    let url = serve_upstream(app).await;
    let g = gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\", api_key: \"sk-up-1\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: up, model: m }}], retries: 0 }}]\n"
    ))
    .await;
    let resp = g
        .post(json!({"model": "r", "messages": user("a secret prompt")}))
        .await;
    assert_eq!(resp.status(), 502, "{:?}", resp.text().await);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
}

fn fallback_config(first: &str, second: &str, extra: &str) -> String {
    format!(
        r#"
providers:
  - {{ name: first, type: openai_compatible, base_url: "{first}/v1" }}
  - {{ name: second, type: openai_compatible, base_url: "{second}/v1" }}
routes:
  - name: main
    deployments: [{{ provider: first, model: m }}]
    fallbacks: [backup]
    backoff_ms: 10
    {extra}
  - name: backup
    deployments: [{{ provider: second, model: m }}]
"#
    )
}

/// With the first deployment failing in each way, requests succeed through the next one, streamed
/// or not.
#[tokio::test]
async fn fallback_on_500_429_timeouts_and_refused_connections() {
    let good = sim(SimConfig::default()).await;
    let e500 = sim(SimConfig {
        error_rate: 1.0,
        error_status: 500,
        ..SimConfig::default()
    })
    .await;
    let e429 = sim(SimConfig {
        error_rate: 1.0,
        error_status: 429,
        ..SimConfig::default()
    })
    .await;
    let slow = sim(SimConfig {
        latency: Duration::from_secs(5),
        ttft: Duration::from_secs(5),
        ..SimConfig::default()
    })
    .await;
    // A port bound but not listening, held for the whole test (a port closed again could be
    // taken by another test meanwhile): a connection to it is refused.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let refused = format!("http://{}", held.local_addr().unwrap());
    let cases = [
        ("500", e500.url.clone(), "retries: 1"),
        ("429", e429.url.clone(), "retries: 1"),
        (
            "timeout",
            slow.url.clone(),
            "attempt_timeout_ms: 200\n    retries: 0",
        ),
        ("refused", refused, "retries: 1"),
    ];
    // (The slow deployment would answer after 5 s: its attempt is known to have been cut by
    // its 200 ms timeout because the answer came from the fallback with two attempts.)
    for (name, first, extra) in cases {
        let g = gateway(&fallback_config(&first, &good.url, extra)).await;
        for stream in [false, true] {
            let resp = g
                .post(json!({"model": "main", "stream": stream, "messages": user("hello")}))
                .await;
            assert_eq!(resp.status(), 200, "{name} stream={stream}");
            assert_eq!(resp.headers()["x-tollgate-provider"], "second", "{name}");
            assert_eq!(resp.headers()["x-tollgate-route"], "backup", "{name}");
            let attempts: usize = resp.headers()["x-tollgate-attempts"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let expected = if name == "timeout" { 2 } else { 3 };
            assert_eq!(attempts, expected, "{name}: retried once then fell back");
            if stream {
                let events = sse_data(resp).await;
                assert_eq!(events.last().unwrap(), "[DONE]", "{name}");
            } else {
                let v: Value = resp.json().await.unwrap();
                assert!(v["choices"][0]["message"]["content"].is_string(), "{name}");
            }
        }
        assert!(
            g.metrics().await.contains("tollgate_fallbacks_total 2"),
            "{name}"
        );
    }
    assert_eq!(
        e500.count(),
        4,
        "the 500 deployment was tried twice per request"
    );
}

#[tokio::test]
async fn retry_after_is_honoured_and_429_reaches_the_client_when_all_fail() {
    let busy = sim(SimConfig {
        error_rate: 1.0,
        error_status: 429,
        retry_after: Some(1),
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        "providers: [{{ name: p, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: r, retries: 1, backoff_ms: 1, deployments: [{{ provider: p, model: m }}] }}]\n",
        busy.url
    ))
    .await;
    let started = Instant::now();
    let resp = g.post(json!({"model": "r", "messages": user("x")})).await;
    let waited = started.elapsed();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?} despite Retry-After: 1"
    );
    assert_eq!(busy.count(), 2);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn a_bad_request_upstream_is_not_retried_elsewhere() {
    let bad = sim(SimConfig {
        error_rate: 1.0,
        error_status: 400,
        ..SimConfig::default()
    })
    .await;
    let good = sim(SimConfig::default()).await;
    let g = gateway(&fallback_config(&bad.url, &good.url, "retries: 2")).await;
    let resp = g
        .post(json!({"model": "main", "messages": user("x")}))
        .await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "the provider answered 400: simulated upstream error"
    );
    assert_eq!((bad.count(), good.count()), (1, 0));
}

#[tokio::test]
async fn the_deadline_bounds_all_attempts() {
    let slow = sim(SimConfig {
        latency: Duration::from_secs(5),
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        "providers: [{{ name: p, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: r, retries: 5, backoff_ms: 1, attempt_timeout_ms: 150, deadline_ms: 400, deployments: [{{ provider: p, model: m }}] }}]\n",
        slow.url
    ))
    .await;
    let started = Instant::now();
    let resp = g.post(json!({"model": "r", "messages": user("x")})).await;
    assert_eq!(resp.status(), 504);
    // Not given up before the deadline; and the deadline, not the six attempts of 150 ms the
    // retries allow (nor the upstream's 5 s), ended it: three attempts fit in 400 ms (one more
    // is allowed for a timer's slack).
    // (No upper bound on the time taken: a loaded machine may be slow to answer after it.)
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(390), "{took:?}");
    assert!((1..=4).contains(&slow.count()), "{} attempts", slow.count());
}

/// A stream cut before any byte reached the client falls back; one cut after ends with an error
/// event, never a silent 200 with `[DONE]`.
#[tokio::test]
async fn truncated_streams() {
    let cut = sim(SimConfig {
        truncate_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let good = sim(SimConfig::default()).await;
    // Cut after the first chunk was relayed: the client sees an error event.
    let g = gateway(&format!(
        "providers: [{{ name: p, type: openai_compatible, base_url: \"{}/v1\" }}, {{ name: a, type: anthropic, api_key: k, base_url: \"{}\" }}]\nroutes: [{{ name: r, retries: 0, deployments: [{{ provider: p, model: m }}] }}, {{ name: ra, retries: 0, deployments: [{{ provider: a, model: m }}] }}]\n",
        cut.url, cut.url
    ))
    .await;
    for route in ["r", "ra"] {
        let resp = g
            .post(json!({"model": route, "stream": true, "max_tokens": 20, "messages": user("x")}))
            .await;
        assert_eq!(resp.status(), 200);
        let events = sse_data(resp).await;
        assert!(!events.iter().any(|e| e == "[DONE]"), "{route}: {events:?}");
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(
            last["error"]["code"], "upstream_stream_truncated",
            "{route}: {events:?}"
        );
    }
    assert!(
        g.metrics()
            .await
            .contains("tollgate_errors_total{kind=\"truncated\"} 2")
    );

    // Cut before the first chunk: nothing was sent, so the router falls back.
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async { ([("content-type", "text/event-stream")], "") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let empty_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let g = gateway(&fallback_config(&empty_url, &good.url, "retries: 0")).await;
    let resp = g
        .post(json!({"model": "main", "stream": true, "messages": user("x")}))
        .await;
    assert_eq!(resp.headers()["x-tollgate-provider"], "second");
    assert_eq!(sse_data(resp).await.last().unwrap(), "[DONE]");
}

/// A streamed chat request (`x`) through a gateway whose one route `r`, with the extra
/// settings `route` (`stream_timeout_ms: 300, `), sends it to the upstream at `upstream`: the
/// gateway, the events, and the last of them read as JSON (`null` when it is not).
async fn streamed_through(upstream: &str, route: &str) -> (Gw, Vec<String>, Value) {
    let g = gateway(&format!(
        "providers: [{{ name: up, type: openai_compatible, base_url: \"{upstream}/v1\" }}]\nroutes: [{{ name: r, {route}deployments: [{{ provider: up, model: m }}] }}]\n"
    ))
    .await;
    let events = sse_data(
        g.post(json!({"model": "r", "stream": true, "messages": user("x")}))
            .await,
    )
    .await;
    let last = serde_json::from_str(events.last().unwrap()).unwrap_or(Value::Null);
    (g, events, last)
}

#[tokio::test]
async fn a_stalled_stream_is_cut_by_the_idle_timeout() {
    let slow = sim(SimConfig {
        tokens_per_second: 2.0,
        ..SimConfig::default()
    })
    .await;
    let (_, events, last) =
        streamed_through(&slow.url, "retries: 0, stream_idle_timeout_ms: 150, ").await;
    assert_eq!(
        last["error"]["code"], "upstream_stream_idle_timeout",
        "{events:?}"
    );
}

/// When the client goes away mid-stream, the relay still reads the upstream to its end, so the
/// usage is counted.
#[tokio::test]
async fn a_disconnected_client_does_not_stop_metering() {
    let s = sim(SimConfig {
        tokens_per_second: 100.0,
        default_output_tokens: 60,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&two_route_config(&s.url)).await;
    let mut resp = g
        .post(json!({"model": "m", "stream": true, "max_tokens": 30, "messages": user("x")}))
        .await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(resp);
    // The relay counts the usage before it queues the record: once the record is written, the
    // tokens are counted.
    g.gw.books.ledger.written_at_least(1).await;
    let m = g.metrics().await;
    assert!(
        m.contains("tollgate_tokens_total{token_type=\"output\",route=\"m\"} 30"),
        "usage not counted:\n{m}"
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let s = sim(SimConfig {
        latency: Duration::from_millis(400),
        ttft: Duration::from_millis(100),
        tokens_per_second: 50.0,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&two_route_config(&s.url)).await;
    let url = g.chat_url();
    let key = g.key.clone();
    let complete = tokio::spawn({
        let (url, key) = (url.clone(), key.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "m", "messages": user("x")}))
                .send()
                .await
                .unwrap()
        }
    });
    let streamed = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(url)
            .bearer_auth(key)
            .json(&json!({"model": "m", "stream": true, "max_tokens": 15, "messages": user("x")}))
            .send()
            .await
            .unwrap();
        sse_data(r).await
    });
    // Both requests are in flight (the upstream has them) before the shutdown starts.
    s.received(2).await;
    g.stop.send(true).unwrap();
    let resp = complete.await.unwrap();
    assert_eq!(resp.status(), 200);
    let events = streamed.await.unwrap();
    assert_eq!(events.last().unwrap(), "[DONE]");
    tokio::time::timeout(Duration::from_secs(60), g.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!g.gw.is_ready());
}

#[tokio::test]
async fn upstream_credentials_are_sent_and_their_rejection_is_a_502() {
    let s = sim(SimConfig {
        api_key: Some("right".into()),
        ..SimConfig::default()
    })
    .await;
    for (key, status) in [("right", 200), ("wrong", 502)] {
        let g = gateway(&format!(
            "providers: [{{ name: p, type: openai, base_url: \"{}/v1\", api_key: {key} }}, {{ name: a, type: anthropic, base_url: \"{}\", api_key: {key} }}]\nroutes: [{{ name: r, deployments: [{{ provider: p, model: m }}] }}, {{ name: ra, deployments: [{{ provider: a, model: m }}] }}]\n",
            s.url, s.url
        ))
        .await;
        for route in ["r", "ra"] {
            let resp = g.post(json!({"model": route, "messages": user("x")})).await;
            assert_eq!(resp.status(), status, "{route} with key {key}");
        }
    }
}

#[tokio::test]
async fn metrics_report_overhead_and_genai_names() {
    let s = sim(SimConfig::default()).await;
    let g = gateway(&two_route_config(&s.url)).await;
    for _ in 0..3 {
        assert_eq!(
            g.post(json!({"model": "m", "messages": user("x")}))
                .await
                .status(),
            200
        );
    }
    let m = g.metrics().await;
    for needle in [
        "tollgate_gateway_overhead_seconds_count{endpoint=\"chat\",stream=\"false\"} 3",
        "tollgate_requests_total{endpoint=\"chat\",route=\"m\",status=\"200\"} 3",
        "tollgate_upstream_attempts_total{provider=\"sim\",outcome=\"ok\"} 3",
        "gen_ai_client_token_usage_count{gen_ai_token_type=\"input\",gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"m\"} 3",
        "gen_ai_client_operation_duration_seconds_count",
    ] {
        assert!(m.contains(needle), "missing {needle}\n{m}");
    }
}

/// Attack 2026-12-01h F7: a stream that never stops — chunks well inside the idle timeout, for
/// ever — is cut at the route's `stream_timeout_ms` with an error event (no `[DONE]`), the
/// upstream dropped, and the request recorded with what was streamed.
#[tokio::test]
async fn a_stream_that_never_ends_is_cut_at_the_routes_total_time() {
    let s = sim(SimConfig {
        // Ten seconds of answer, a chunk every half millisecond.
        tokens_per_second: 2_000.0,
        default_output_tokens: 20_000,
        ..SimConfig::default()
    })
    .await;
    let (g, events, last) = streamed_through(&s.url, "stream_timeout_ms: 300, ").await;
    assert_eq!(last["error"]["code"], "stream_timeout", "{last}");
    let message = last["error"]["message"].as_str().unwrap();
    assert!(message.contains("300 ms"), "{message}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
    // What came before the cut is the client's, and is paid for (estimated: the upstream's
    // usage chunk never came).
    assert!(events.len() > 2, "{events:?}");
    let record = records(&g.gw, 1).await.remove(0);
    assert_eq!(record.outcome, "stream_timeout", "{record:?}");
    assert_eq!(record.usage_source, "estimated", "{record:?}");
    assert!(
        record.output_tokens > 0 && record.output_tokens < 20_000,
        "{record:?}"
    );

    // An upstream that falls silent for longer than the time left (the idle timeout is a
    // minute, the next token a hundred seconds away): cut when the time is up, not when the
    // silence ends.
    let slow = sim(SimConfig {
        tokens_per_second: 0.01,
        ..SimConfig::default()
    })
    .await;
    let (_, events, last) = streamed_through(&slow.url, "stream_timeout_ms: 300, ").await;
    assert_eq!(last["error"]["code"], "stream_timeout", "{events:?}");

    // An upstream whose chunks are all there at once (read from a buffer, never waited for):
    // cut too, once the time is up.
    use axum::response::IntoResponse;
    let mut body = String::new();
    for _ in 0..20_000 {
        body.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"},\"finish_reason\":null}]}\n\n");
    }
    body.push_str("data: [DONE]\n\n");
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let body = body.clone();
            async move { ([("content-type", "text/event-stream")], body).into_response() }
        }),
    );
    let url = serve_upstream(app).await;
    let (_, events, last) = streamed_through(&url, "stream_timeout_ms: 1, retries: 0, ").await;
    assert_eq!(
        last["error"]["code"],
        "stream_timeout",
        "{} events",
        events.len()
    );
    assert!(events.len() < 20_000, "{} events", events.len());
}

/// A client that sends a streamed request and never reads the answer cannot hold the upstream:
/// after the route's idle timeout without accepting data it is dropped, the upstream is drained
/// to its end, and the request is recorded with the real usage.
#[tokio::test]
async fn a_client_that_never_reads_a_stream_cannot_hold_the_upstream() {
    use tokio::io::AsyncWriteExt;
    let s = sim(SimConfig {
        default_output_tokens: 200_000,
        ..SimConfig::default()
    })
    .await;
    let g = gateway(&format!(
        "providers: [{{ name: sim, type: openai_compatible, base_url: \"{}/v1\" }}]\nroutes: [{{ name: m, stream_idle_timeout_ms: 300, deployments: [{{ provider: sim, model: gpt-4o-mini }}] }}]\n",
        s.url
    ))
    .await;
    let body =
        json!({"model": "m", "stream": true, "messages": user("Tell me everything")}).to_string();
    let addr = g.url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        g.key,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    // The socket is held open and never read.
    let record = records(&g.gw, 1).await.remove(0);
    assert_eq!(record.outcome, "client_disconnected", "{record:?}");
    // Drained to the end: the upstream's own usage chunk, its last, was read (far more output than
    // any socket buffer holds).
    assert_eq!(record.usage_source, "reported", "{record:?}");
    assert!(record.output_tokens > 100_000, "{record:?}");
    // What the client finally reads ends abruptly — no final chunk, no `[DONE]` — so it can
    // tell it was cut off rather than given a complete answer.
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        socket.read_to_end(&mut seen),
    )
    .await
    .expect("the gateway closes the connection");
    let _ = read;
    let tail = String::from_utf8_lossy(&seen[seen.len().saturating_sub(64)..]).to_string();
    assert!(!seen.is_empty(), "the start of the stream was sent");
    assert!(
        !tail.ends_with("0\r\n\r\n") && !tail.contains("[DONE]"),
        "the cut stream ended like a complete one: {tail:?}"
    );
}

/// A streamed chunk the gateway cannot read (a lone surrogate escape) ends the stream with an
/// `upstream_invalid_response` error event after what came before it — never a chunk dropped in
/// silence and the stream going on (attack 2026-12-02c C8). (Bytes that are not UTF-8 are read
/// as the SSE standard says, each as a replacement character.)
#[tokio::test]
async fn an_unreadable_stream_chunk_ends_the_stream_with_an_error() {
    use axum::response::IntoResponse;
    use axum::routing::post;
    let chunk = |content: &str| {
        format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
        )
    };
    let mut bad_surrogate = chunk("hello ");
    bad_surrogate.push_str(&chunk("a\\ud800b"));
    bad_surrogate.push_str(&chunk(" after"));
    bad_surrogate.push_str("data: [DONE]\n\n");
    {
        let body = bad_surrogate.into_bytes();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            post(move || {
                let body = body.clone();
                async move { ([("content-type", "text/event-stream")], body).into_response() }
            }),
        );
        let url = serve_upstream(app).await;
        let g = gateway(&format!(
            "providers: [{{ name: up, type: openai_compatible, base_url: \"{url}/v1\" }}]\nroutes: [{{ name: r, deployments: [{{ provider: up, model: m }}], retries: 0 }}]\n"
        ))
        .await;
        let resp = g
            .post(json!({"model": "r", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(resp.status(), 200);
        let events = sse_data(resp).await;
        assert_eq!(streamed_text(&events), "hello ", "{events:?}");
        let errors: Vec<Value> = events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter(|v| v.get("error").is_some())
            .collect();
        assert_eq!(errors.len(), 1, "{events:?}");
        assert_eq!(errors[0]["error"]["code"], "upstream_invalid_response");
        assert!(
            events.iter().all(|e| e != "{}" && !e.contains("after")),
            "{events:?}"
        );
    }
}
