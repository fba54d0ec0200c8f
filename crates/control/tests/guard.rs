//! The guard end to end: policies written through the admin API (who may, what is kept), and
//! requests through the gateway to the simulator — values tokenized, masked or blocked on the
//! way in, tokens put back on the way out (complete and streamed, OpenAI and Anthropic), the
//! conversation's tokens kept across turns, and the findings on the ledger and in the metrics.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use serde_json::{Value, json};
use tollgate_simulator::SimConfig;
use tollgate_store::{AuditQueries, RequestRecord};

fn findings(r: &RequestRecord) -> Vec<(String, String, String, u64)> {
    let v: Value = serde_json::from_str(r.guard.as_deref().unwrap()).unwrap();
    let mut out: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_string(),
                f["action"].as_str().unwrap().to_string(),
                f["direction"].as_str().unwrap().to_string(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn f(t: &str, a: &str, d: &str, n: u64) -> (String, String, String, u64) {
    (t.into(), a.into(), d.into(), n)
}

const EMAIL: &str = "ann@example.org";
const CARD: &str = "4111 1111 1111 1111";
const PHONE: &str = "+44 20 7946 0958";
const AWS: &str = "AKIAIOSFODNN7EXAMPLE";

#[tokio::test]
async fn values_never_reach_the_model_and_come_back_to_the_client() {
    let s = common::sim(SimConfig {
        echo: true,
        ..Default::default()
    })
    .await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    let (st, v) = api
        .call(
            reqwest::Method::PUT,
            &format!("/admin/v1/use-cases/{uc}/policy"),
            &admin,
            Some(json!({"policy": {"entities": {"EMAIL_ADDRESS": "tokenize", "CREDIT_CARD": "tokenize", "PHONE_NUMBER": "mask"}}, "note": "pilot with customer data"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["version"], 1);
    assert_eq!(v["source"], "use_case");
    // Every field written out: the defaults say secrets block.
    assert_eq!(v["policy"]["secrets"], "block");

    let prompt = format!("Please write to {EMAIL} about card {CARD} or call {PHONE} today");
    let shown = format!("Please write to {EMAIL} about card {CARD} or call <PHONE_NUMBER> today");
    let client = reqwest::Client::new();
    let ask = |route: &str, stream: bool, text: &str, session: Option<&str>| {
        let mut req = client
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&json!({"model": route, "stream": stream, "messages": common::user(text)}));
        if let Some(s) = session {
            req = req.header("x-tollgate-session", s);
        }
        req.send()
    };

    // Streamed, on both dialects: the model sees tokens and masks, the client its values.
    for route in ["m", "c"] {
        let before = s.sim.received().len();
        let resp = ask(route, true, &prompt, None).await.unwrap();
        assert_eq!(resp.status(), 200);
        let events = common::sse_data(resp).await;
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        // Nothing comes after the chunk that finishes the choice (clients may stop there).
        let finished_at = events
            .iter()
            .position(|e| {
                serde_json::from_str::<Value>(e)
                    .is_ok_and(|v| !v["choices"][0]["finish_reason"].is_null())
            })
            .unwrap();
        assert_eq!(
            common::streamed_text(&events[finished_at + 1..]),
            "",
            "{route}: {events:?}"
        );
        assert_eq!(common::streamed_text(&events), shown, "{route}");
        let seen = s.sim.received();
        assert_eq!(seen.len(), before + 1);
        let upstream = seen.last().unwrap();
        for value in [EMAIL, CARD, PHONE, "4111", "ann@"] {
            assert!(
                !upstream.contains(value),
                "{route}: the model saw {value}: {upstream}"
            );
        }
        assert!(
            upstream.contains("<EMAIL_ADDRESS_1>")
                && upstream.contains("<CREDIT_CARD_1>")
                && upstream.contains("<PHONE_NUMBER>"),
            "{upstream}"
        );
    }
    // Complete.
    let resp = ask("m", false, &prompt, None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], shown);

    // Tool-call arguments, tool results and text parts are guarded too.
    let resp = client
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "messages": [
            {"role": "user", "content": "look me up"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": format!("{{\"email\": \"{EMAIL}\"}}")}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": format!("card on file: {CARD}")},
            {"role": "user", "content": [{"type": "text", "text": format!("and phone {PHONE}")}]}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "and phone <PHONE_NUMBER>"
    );
    let upstream = s.sim.received().last().unwrap().clone();
    for value in [EMAIL, CARD, PHONE] {
        assert!(
            !upstream.contains(value),
            "the model saw {value}: {upstream}"
        );
    }
    assert!(
        upstream.contains(r#"{"email": "<EMAIL_ADDRESS_1>"}"#)
            && upstream.contains("card on file: <CREDIT_CARD_1>"),
        "{upstream}"
    );

    // Fields the gateway does not model are guarded too: a name, a refusal, a legacy
    // function call, an image URL's query.
    let resp = client
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "messages": [
            {"role": "user", "name": "ann", "content": [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": format!("https://img.example.com/a.png?card={CARD}")}}]},
            {"role": "assistant", "content": null, "refusal": format!("I will not mail {EMAIL}"), "function_call": {"name": "f", "arguments": format!("{{\"to\": \"{EMAIL}\"}}")}},
            {"role": "user", "name": format!("{PHONE}"), "content": "ok"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let upstream = s.sim.received_bodies().last().unwrap().clone();
    for value in [EMAIL, CARD, PHONE] {
        assert!(
            !upstream.contains(value),
            "the model saw {value}: {upstream}"
        );
    }
    assert!(
        upstream.contains("\"refusal\"") && upstream.contains("img.example.com"),
        "{upstream}"
    );

    // A conversation keeps its tokens: the second turn's new e-mail is the second token, the
    // first e-mail is the first again.
    let turn1 = ask("m", false, &format!("mail {EMAIL}"), Some("conv-1"))
        .await
        .unwrap();
    assert_eq!(turn1.status(), 200);
    let turn2 = ask(
        "m",
        true,
        &format!("mail bob@example.net then {EMAIL}"),
        Some("conv-1"),
    )
    .await
    .unwrap();
    assert_eq!(
        common::streamed_text(&common::sse_data(turn2).await),
        format!("mail bob@example.net then {EMAIL}")
    );
    assert_eq!(
        s.sim.received().last().unwrap(),
        "mail <EMAIL_ADDRESS_2> then <EMAIL_ADDRESS_1>"
    );
    assert!(
        !g.gw.vault.stores_bytes(EMAIL.as_bytes()),
        "the vault holds values only encrypted"
    );

    // Tokens never serve as a way in: another key of the use case naming the same session gets
    // a conversation of its own, and a token typed by a client (to fish for the value behind it)
    // is never unmasked — not even in its own conversation.
    let (st, k2) = api
        .call(
            reqwest::Method::POST,
            "/admin/v1/keys",
            &admin,
            Some(json!({"use_case_id": uc, "name": "another app"})),
        )
        .await;
    assert_eq!(st, 201, "{k2}");
    for key in [g.key.as_str(), k2["secret"].as_str().unwrap()] {
        let resp = client
            .post(g.chat_url())
            .bearer_auth(key)
            .header("x-tollgate-session", "conv-1")
            .json(&json!({"model": "m", "messages": common::user("echo <EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_2>")}))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(
            !answer.contains(EMAIL) && !answer.contains("bob@"),
            "a token typed by a client came back as a value: {answer}"
        );
        assert_eq!(
            answer.replace('\u{2060}', ""),
            "echo <EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_2>"
        );
    }
    // The other key's conversation numbers its own tokens from 1.
    let resp = client
        .post(g.chat_url())
        .bearer_auth(k2["secret"].as_str().unwrap())
        .header("x-tollgate-session", "conv-1")
        .json(&json!({"model": "m", "messages": common::user("mail carol@example.net")}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(s.sim.received().last().unwrap(), "mail <EMAIL_ADDRESS_1>");

    // Blocked: a secret (the policy's default for secrets) — 400, the type named, never the value.
    let before = s.count();
    let resp = ask(
        "m",
        true,
        &format!("my key is {AWS} and mail {EMAIL}"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["code"], "policy_violation", "{text}");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SECRET_AWS_KEY"),
        "{text}"
    );
    assert!(!text.contains(AWS) && !text.contains(EMAIL), "{text}");
    assert_eq!(
        s.count(),
        before,
        "a blocked request never reaches the provider"
    );

    // The ledger: the policy version and counts per type, action and direction; no value.
    let recs = planes::records(&g, 11).await;
    assert_eq!(recs.len(), 11);
    for r in &recs {
        assert_eq!(r.policy.as_deref(), Some("use_case@1"));
        let json = serde_json::to_string(r).unwrap();
        for value in [EMAIL, CARD, PHONE, AWS, "bob@example.net"] {
            assert!(!json.contains(value), "{json}");
        }
    }
    let blocked = recs.iter().find(|r| r.status == 400).unwrap();
    assert_eq!(blocked.outcome, "policy_violation");
    assert_eq!(
        findings(blocked),
        vec![
            f("EMAIL_ADDRESS", "tokenize", "input", 1),
            f("SECRET_AWS_KEY", "block", "input", 1)
        ]
    );
    let g1: Value = serde_json::from_str(blocked.guard.as_deref().unwrap()).unwrap();
    assert_eq!(
        g1["output"], "not_run",
        "a blocked request's answer was never scanned"
    );
    let streamed = recs
        .iter()
        .filter(|r| r.stream && r.status == 200 && r.route == "m")
        .min_by_key(|r| r.id.clone())
        .unwrap();
    assert_eq!(
        findings(streamed),
        vec![
            f("CREDIT_CARD", "tokenize", "input", 1),
            f("EMAIL_ADDRESS", "tokenize", "input", 1),
            f("PHONE_NUMBER", "mask", "input", 1),
        ]
    );
    let g2: Value = serde_json::from_str(streamed.guard.as_deref().unwrap()).unwrap();
    assert_eq!(
        (g2["input"].as_str(), g2["output"].as_str()),
        (Some("ran"), Some("ran"))
    );
    let metrics = g.metrics().await;
    for line in [
        r#"tollgate_guard_findings_total{direction="input",entity_type="EMAIL_ADDRESS",action="tokenize"} 11"#,
        r#"tollgate_guard_findings_total{direction="input",entity_type="SECRET_AWS_KEY",action="block"} 1"#,
        "tollgate_guard_blocked_requests_total 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[tokio::test]
async fn answers_are_guarded_on_the_way_out_complete_and_streamed() {
    let s = common::sim(SimConfig {
        echo: true,
        ..Default::default()
    })
    .await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    // Nothing scanned on the way in: what the model writes back is masked on the way out.
    api.put_default_policy(
        &admin,
        json!({"scan": {"input": false, "tool_arguments": false, "tool_results": false}, "entities": {"PHONE_NUMBER": "hash"}}),
    )
    .await;
    let text = format!("call {PHONE} or write {EMAIL}; my card is {CARD}, key {AWS} thanks");
    // Each use case hashes under its own key: the same number under another use case is
    // another hash, so hashes cannot be matched across use cases.
    let hash_in = |uc: &str| {
        tollgate_guard::policy::hashed(
            tollgate_guard::Entity::PhoneNumber,
            PHONE,
            &tollgate_guard::policy::scoped_key(&g.gw.guard_key, uc),
        )
    };
    let phone = hash_in(&g.use_case.id);
    let want = format!(
        "call {phone} or write <EMAIL_ADDRESS>; my card is <CREDIT_CARD>, key <SECRET_AWS_KEY> thanks"
    );
    for stream in [false, true] {
        let resp = reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&json!({"model": "m", "stream": stream, "messages": common::user(&text)}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let got = if stream {
            common::streamed_text(&common::sse_data(resp).await)
        } else {
            resp.json::<Value>().await.unwrap()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(got, want, "stream: {stream}");
        // The model did see the values: the input side was off.
        assert!(s.sim.received().last().unwrap().contains(EMAIL));
    }
    let recs = planes::records(&g, 2).await;
    for r in &recs {
        assert_eq!(r.policy.as_deref(), Some("default@1"));
        let g: Value = serde_json::from_str(r.guard.as_deref().unwrap()).unwrap();
        assert_eq!(
            (g["input"].as_str(), g["output"].as_str()),
            (Some("off"), Some("ran"))
        );
        assert_eq!(
            findings(r),
            vec![
                f("CREDIT_CARD", "mask", "output", 1),
                f("EMAIL_ADDRESS", "mask", "output", 1),
                f("PHONE_NUMBER", "hash", "output", 1),
                f("SECRET_AWS_KEY", "mask", "output", 1),
            ]
        );
    }
    let (other, other_key) = common::use_case_with_key(
        &g.gw,
        tollgate_store::Stage::Production,
        &["m"],
        Default::default(),
        None,
    )
    .await;
    let v: Value = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&other_key)
        .json(&json!({"model": "m", "messages": common::user(&text)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let theirs = hash_in(&other.id);
    assert_ne!(theirs, phone);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        want.replace(&phone, &theirs)
    );
}

#[tokio::test]
async fn who_may_read_and_write_policies_and_what_is_kept() {
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    let post = async |path: &str, body: Value| {
        let (st, v) = api
            .call(reqwest::Method::POST, path, &admin, Some(body))
            .await;
        assert!(st == 201 || st == 200, "{path}: {v}");
        v["id"].as_str().unwrap().to_string()
    };
    let pod_a = post("/admin/v1/pods", json!({"name": "pod-a"})).await;
    let pod_b = post("/admin/v1/pods", json!({"name": "pod-b"})).await;
    let uc_a = post(
        "/admin/v1/use-cases",
        json!({"pod_id": pod_a, "name": "a", "routes": ["m"]}),
    )
    .await;
    let uc_b = post(
        "/admin/v1/use-cases",
        json!({"pod_id": pod_b, "name": "b", "routes": ["m"]}),
    )
    .await;
    let everyone = planes::people(&api, &admin, &pod_a).await;
    let doc = json!({"policy": {"entities": {"EMAIL_ADDRESS": "hash"}}});
    use reqwest::Method as M;
    for (who, token) in &everyone {
        let writer = matches!(*who, "bootstrap" | "platform_admin" | "risk_officer");
        let reads_all = matches!(
            *who,
            "bootstrap" | "platform_admin" | "risk_officer" | "finops" | "auditor"
        );
        let reads_a = reads_all || matches!(*who, "lead" | "builder" | "viewer");
        // The org default: everyone reads it; only writers change it.
        assert_eq!(
            api.call(M::GET, "/admin/v1/policies/default", token, None)
                .await
                .0,
            200,
            "{who}"
        );
        assert_eq!(
            api.call(M::GET, "/admin/v1/policies/default/versions", token, None)
                .await
                .0,
            200,
            "{who}"
        );
        let (st, _) = api
            .call(
                M::PUT,
                "/admin/v1/policies/default",
                token,
                Some(doc.clone()),
            )
            .await;
        assert_eq!(st, if writer { 200 } else { 403 }, "{who} PUT default");
        for (uc, readable) in [(&uc_a, reads_a), (&uc_b, reads_all)] {
            let path = format!("/admin/v1/use-cases/{uc}/policy");
            let hidden = if readable { None } else { Some(404) };
            let (st, _) = api.call(M::GET, &path, token, None).await;
            assert_eq!(st, hidden.unwrap_or(200), "{who} GET {path}");
            let (st, _) = api
                .call(M::GET, &format!("{path}/versions"), token, None)
                .await;
            assert_eq!(st, hidden.unwrap_or(200), "{who} GET versions");
            let (st, _) = api.call(M::PUT, &path, token, Some(doc.clone())).await;
            assert_eq!(
                st,
                hidden.unwrap_or(if writer { 200 } else { 403 }),
                "{who} PUT {path}"
            );
            // Someone must have a policy to remove: the admin writes one first.
            api.call(M::PUT, &path, &admin, Some(doc.clone())).await;
            let (st, _) = api.call(M::DELETE, &path, token, None).await;
            assert_eq!(
                st,
                hidden.unwrap_or(if writer { 204 } else { 403 }),
                "{who} DELETE {path}"
            );
        }
    }
    // What is kept: every version, who wrote it and why; removal is a version too; the use case
    // falls back to the org default.
    // (The last person could not remove the admin's last setup: the admin does.)
    let (st, _) = api
        .call(
            M::DELETE,
            &format!("/admin/v1/use-cases/{uc_a}/policy"),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (_, versions) = api
        .call(
            M::GET,
            &format!("/admin/v1/use-cases/{uc_a}/policy/versions"),
            &admin,
            None,
        )
        .await;
    assert_eq!(versions["next"], Value::Null, "{versions}");
    let versions = versions["items"].as_array().unwrap();
    let numbers: Vec<i64> = versions
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=numbers.len() as i64).collect::<Vec<_>>());
    assert!(numbers.len() > 4, "{numbers:?}");
    // Read a page at a time: the same versions, in order, each page at most `limit`.
    let (items, _) = api
        .walk(
            &format!("/admin/v1/use-cases/{uc_a}/policy/versions"),
            &admin,
            2,
            numbers.len(),
        )
        .await;
    let paged: Vec<i64> = items
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(paged, numbers);
    for (query, param) in [
        ("after=-1", "after"),
        ("after=v2", "after"),
        ("limit=0", "limit"),
    ] {
        let (st, v) = api
            .call(
                M::GET,
                &format!("/admin/v1/policies/default/versions?{query}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(st, 400, "{query}: {v}");
        assert_eq!(v["error"]["param"], param, "{query}: {v}");
    }
    assert_eq!(versions.last().unwrap()["source"], "removed");
    assert!(
        versions.iter().any(|v| v["created_by"] != "admin"),
        "writers other than the bootstrap admin are named"
    );
    let (_, now) = api
        .call(
            M::GET,
            &format!("/admin/v1/use-cases/{uc_a}/policy"),
            &admin,
            None,
        )
        .await;
    assert_eq!(now["source"], "default");
    assert_eq!(now["policy"]["entities"]["EMAIL_ADDRESS"], "hash");
    // Removing what is not there changes nothing.
    let (st, _) = api
        .call(
            M::DELETE,
            &format!("/admin/v1/use-cases/{uc_a}/policy"),
            &admin,
            None,
        )
        .await;
    assert_eq!(st, 204);
    // The audit trail has every change with its version and the actor.
    let events = g.gw.store.list_audit(0, 10_000).await.unwrap();
    let sets = events.iter().filter(|e| e.action == "policy.set").count();
    let removes = events
        .iter()
        .filter(|e| e.action == "policy.remove")
        .count();
    assert_eq!(
        sets,
        3 + 2 * 3 + 2 * everyone.len(),
        "3 writers × (default + 2 use cases) + the admin's setups"
    );
    assert_eq!(
        removes,
        3 * 2 + 1,
        "3 writers × 2 use cases, and the admin's"
    );
    assert!(
        events.iter().any(|e| e.action == "policy.set"
            && e.object_id == uc_b
            && e.details["version"].is_i64())
    );
}

#[tokio::test]
async fn bad_policies_are_refused_with_the_path_of_the_mistake() {
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    for (body, param, says) in [
        (
            json!({"policy": {"entities": {"EMAIL": "mask"}}}),
            "policy.entities.EMAIL",
            "unknown entity type",
        ),
        (
            json!({"policy": {"entities": {"EMAIL_ADDRESS": "scramble"}}}),
            "policy.entities.EMAIL_ADDRESS",
            "expected an action",
        ),
        (
            json!({"policy": {"threshold": 2}}),
            "policy.threshold",
            "from 0 to 1",
        ),
        (
            json!({"policy": {"entities": {"PHONE_NUMBER": {"action": "mask", "threshold": -0.5}}}}),
            "policy.entities.PHONE_NUMBER",
            "from 0 to 1",
        ),
        (
            json!({"policy": {"guard": {"custom_terms": ["ok", ""]}}}),
            "policy.guard.custom_terms[1]",
            "",
        ),
        (
            json!({"policy": {"retention_days": 0}}),
            "policy.retention_days",
            "from 1 to",
        ),
        (
            json!({"policy": {"logging": "everything"}}),
            "policy.logging",
            "unknown variant",
        ),
        (
            json!({"policy": "mask everything"}),
            "policy",
            "must be an object",
        ),
        (
            json!({"policy": {}, "colour": 1}),
            "colour",
            "unknown field",
        ),
        (
            json!({"policy": {}, "note": "x".repeat(501)}),
            "note",
            "at most 500",
        ),
    ] {
        let (st, v) = api
            .call(
                reqwest::Method::PUT,
                "/admin/v1/policies/default",
                &admin,
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, 400, "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {v}");
        // No position inside the policy: the document read is not the client's text, so it
        // would point nowhere.
        assert!(
            !(param.starts_with("policy.") && message.contains(" at line ")),
            "{body}: {v}"
        );
    }
    // A key given twice (a parsed body would keep the last one, silently).
    for (raw, param) in [
        (
            r#"{"policy": {"entities": {"EMAIL_ADDRESS": "mask", "EMAIL_ADDRESS": "block"}}}"#,
            "policy.entities.EMAIL_ADDRESS",
        ),
        (
            r#"{"policy": {"guard": {"denied_terms": ["a"], "denied_terms": []}}}"#,
            "policy.guard.denied_terms",
        ),
    ] {
        let resp = reqwest::Client::new()
            .put(format!("{}/admin/v1/policies/default", g.url))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{raw}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["param"], param, "{raw}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("given twice"),
            "{raw}: {v}"
        );
    }
    // Nothing was stored: still the built-in policy.
    let (_, v) = api
        .call(
            reqwest::Method::GET,
            "/admin/v1/policies/default",
            &admin,
            None,
        )
        .await;
    assert_eq!(v["source"], "builtin");
    assert_eq!(v["version"], Value::Null);
}

/// Every field of a request the provider reads is guarded, not only the messages' contents: a
/// value in any of them is blocked under a blocking policy (nothing sent upstream), and masked
/// where it stood under a masking one; inline binary data (a base64 `data:` URL, long base64
/// audio) passes untouched, but a field named `data` or a non-base64 `data:` URL is text.
#[tokio::test]
async fn every_field_the_provider_reads_is_guarded() {
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    let set = async |action: &str| {
        let (st, v) = api
            .call(
                reqwest::Method::PUT,
                &format!("/admin/v1/use-cases/{uc}/policy"),
                &admin,
                Some(json!({"policy": {"entities": {"EMAIL_ADDRESS": action}}})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    };
    let base = || json!({"model": "m", "messages": common::user("hello")});
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut with = |name: &'static str, edit: &dyn Fn(&mut Value)| {
        let mut b = base();
        edit(&mut b);
        cases.push((name, b));
    };
    with("user", &|b| b["user"] = json!(EMAIL));
    with("metadata", &|b| b["metadata"] = json!({"customer": EMAIL}));
    with("stop", &|b| b["stop"] = json!(["\n", EMAIL]));
    with("prediction", &|b| {
        b["prediction"] = json!({"type": "content", "content": EMAIL})
    });
    with(
        "tool description",
        &|b| b["tools"] = json!([{"type": "function", "function": {"name": "f", "description": format!("mail {EMAIL}")}}]),
    );
    with(
        "tool parameters",
        &|b| b["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"to": {"type": "string", "enum": [EMAIL]}}}}}]),
    );
    with(
        "response schema",
        &|b| b["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "s", "schema": {"description": EMAIL}}}),
    );
    with("tool call id and name", &|b| {
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": format!("call {EMAIL}"), "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": format!("call {EMAIL}"), "content": "done"}
        ])
    });
    with(
        "a field named data",
        &|b| b["messages"] = json!([{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "x", "data": EMAIL}]}]),
    );
    with(
        "a data: URL that is not base64",
        &|b| b["messages"] = json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("data:text/plain,{EMAIL}")}}]}]),
    );
    with(
        "an image detail",
        &|b| b["messages"] = json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": EMAIL}}]}]),
    );
    with("a message field the gateway does not model", &|b| {
        b["messages"] = json!([{"role": "user", "content": "hi", "x_note": {"who": EMAIL}}])
    });
    // A value cut in two: across a message's text parts, and across two messages.
    let (head, tail) = EMAIL.split_at(4);
    with("split across text parts", &|b| {
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": format!("mail {head}")}, {"type": "text", "text": tail}]}
        ])
    });
    with("split across messages", &|b| {
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "user", "content": format!("mail {head}")},
            {"role": "user", "content": format!("{tail} please")}
        ])
    });
    with("split with an empty part and blanks at the edges", &|b| {
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": format!("mail {head} ")}, {"type": "text", "text": ""}, {"type": "text", "text": format!("\n {tail}")}]}
        ])
    });
    with("split across a tool result and a user message", &|b| {
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": format!("mail {head}")},
            {"role": "user", "content": format!("{tail} please")}
        ])
    });
    with("split across two tool calls' arguments", &|b| {
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": format!("{{\"to\":\"{head}")}},
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": format!("{tail}\"}}")}}
            ]}
        ])
    });
    with("a text file inline", &|b| {
        use base64::Engine;
        let file =
            base64::engine::general_purpose::STANDARD.encode(format!("name,mail\nann,{EMAIL}\n"));
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "file", "file": {"file_data": format!("data:text/csv;base64,{file}")}}]}
        ])
    });
    with("a JSON escape in tool arguments", &|b| {
        let escaped = EMAIL.replace('@', "\\u0040");
        b["messages"] = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": format!("{{\"to\":\"{escaped}\"}}")}}
            ]}
        ])
    });
    let client = reqwest::Client::new();
    set("block").await;
    for (name, body) in &cases {
        let before = s.sim.received_bodies().len();
        let resp = client
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "policy_violation", "{name}: {v}");
        assert!(!v.to_string().contains(EMAIL), "{name}: {v}");
        assert_eq!(
            s.sim.received_bodies().len(),
            before,
            "{name}: sent upstream"
        );
    }
    // A short secret is text even when it is all base64 letters (an AWS key id in `data`).
    let resp = client
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "x", "data": AWS}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "secrets block by default");
    // Embeddings: `user` and unmodelled fields too.
    for body in [
        json!({"model": "m", "input": "hello", "user": EMAIL}),
        json!({"model": "m", "input": "hello", "metadata": {"who": EMAIL}}),
    ] {
        let resp = client
            .post(format!("{}/v1/embeddings", g.url))
            .bearer_auth(&g.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
    }
    // Masked where it stood; inline binary data untouched.
    set("mask").await;
    let audio = "UklGR".to_string() + &"AAAA".repeat(2000);
    for (name, mut body) in cases {
        body["messages"][0]["content"] = json!([
            {"type": "text", "text": "hi"},
            {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]);
        let resp = client
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name}");
        let upstream = s.sim.received_bodies().last().unwrap().clone();
        assert!(!upstream.contains(EMAIL), "{name}: {upstream}");
        if name.starts_with("split") {
            assert!(!upstream.contains(head), "{name}: {upstream}");
        }
        if name == "a text file inline" {
            // Masked inside the file, which goes on in base64.
            use base64::Engine;
            let masked = base64::engine::general_purpose::STANDARD
                .encode("name,mail\nann,<EMAIL_ADDRESS>\n");
            assert!(upstream.contains(&masked), "{name}: {upstream}");
            continue;
        }
        if !matches!(
            name,
            "a field named data"
                | "a data: URL that is not base64"
                | "an image detail"
                | "a message field the gateway does not model"
        ) {
            assert!(upstream.contains("<EMAIL_ADDRESS>"), "{name}: {upstream}");
        }
        assert!(upstream.contains(&audio), "{name}: audio changed");
        assert!(
            upstream.contains("data:image/png;base64,iVBORw0KGgo="),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_providers_error_text_is_masked_before_the_client_sees_it() {
    // A provider that repeats values in its error (as some do: "invalid input: …").
    let s = common::sim(SimConfig {
        error_rate: 1.0,
        error_status: 400,
        error_message: format!("rejected {AWS}, card {CARD}, mail {EMAIL}, at +1 (415) 555-2671"),
        ..Default::default()
    })
    .await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    // Masked whatever the action: under a policy that hashes e-mails, the error shows the mask,
    // not a hash (the text is the provider's, not an answer).
    planes::Http::new(&g.url)
        .put_default_policy(&admin, json!({"entities": {"EMAIL_ADDRESS": "hash"}}))
        .await;
    let chat = |stream: bool| {
        reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&json!({"model": "m", "stream": stream, "messages": common::user("hello")}))
    };
    let embed = reqwest::Client::new()
        .post(format!("{}/v1/embeddings", g.url))
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "input": "hello"}));
    for (stream, req) in [(false, chat(false)), (true, chat(true)), (false, embed)] {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(
            status.is_client_error() || status.is_server_error(),
            "{body}"
        );
        for value in [AWS, "4111", EMAIL, "555-2671"] {
            assert!(
                !body.contains(value),
                "stream {stream}: {value} shown in {body}"
            );
        }
        for mask in [
            "<SECRET_AWS_KEY>",
            "<CREDIT_CARD>",
            "<EMAIL_ADDRESS>",
            "<PHONE_NUMBER>",
        ] {
            assert!(body.contains(mask), "stream {stream}: no {mask} in {body}");
        }
    }
}

#[tokio::test]
async fn tool_results_cut_in_two_are_read_whole_when_only_tool_results_are_scanned() {
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    planes::Http::new(&g.url)
        .put_default_policy(
            &admin,
            json!({"scan": {"input": false, "tool_results": true}, "entities": {"CREDIT_CARD": "block"}}),
        )
        .await;
    let resp = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "messages": [
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "card 4111 1111"},
            {"role": "tool", "tool_call_id": "c2", "content": "1111 1111"}
        ]}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "policy_violation", "{v}");
}

#[tokio::test]
async fn a_stream_that_fails_midway_shows_what_was_written_guarded_then_the_error() {
    // The model fails halfway through its answer with an error that repeats values.
    let s = common::sim(SimConfig {
        echo: true,
        stream_error_rate: 1.0,
        error_message: format!("overloaded while reading card {CARD} for {EMAIL}"),
        ..Default::default()
    })
    .await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    planes::Http::new(&g.url)
        .put_default_policy(&admin, json!({"entities": {"EMAIL_ADDRESS": "tokenize"}}))
        .await;
    let prompt = format!(
        "Write to {EMAIL} today and ask about the parcel, then wait for the team's answer before the end of the week"
    );
    for route in ["m", "c"] {
        let resp = reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .json(&json!({"model": route, "stream": true, "messages": common::user(&prompt)}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let events = common::sse_data(resp).await;
        // The model saw a token; the first half of its echo is what it wrote.
        let upstream = s.sim.received().last().unwrap().clone();
        assert!(
            upstream.contains("<EMAIL_ADDRESS_1>") && !upstream.contains(EMAIL),
            "{upstream}"
        );
        // The last event is the error, its values masked; no end marker after a failure.
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        let message = last["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("<CREDIT_CARD>") && message.contains("<EMAIL_ADDRESS>"),
            "{route}: {last}"
        );
        assert!(!events.iter().any(|e| e == "[DONE]"), "{route}: {events:?}");
        // No text of any event shows a piece of the card. (Its strings only: an event's
        // `created` is a Unix time, and a time that contains 4111 is not the card.)
        for e in &events {
            let texts =
                serde_json::from_str::<Value>(e).map_or_else(|_| vec![e.clone()], |v| strings(&v));
            assert!(
                !texts.iter().any(|t| t.contains("4111")),
                "{route}: the card shown in {e}"
            );
        }
        // Everything written before the failure reaches the client, the token put back: what
        // the guard still held when the error came is not lost.
        let shown = common::streamed_text(&events);
        let written = upstream.chars().count().div_ceil(3) / 2 * 3;
        assert!(prompt.starts_with(&shown), "{route}: {shown:?}");
        assert!(shown.contains(EMAIL), "{route}: {shown:?}");
        assert!(
            shown.chars().count() + "<EMAIL_ADDRESS_1>".len() >= written + EMAIL.len(),
            "{route}: {} of about {written} characters shown: {shown:?}",
            shown.chars().count()
        );
    }
    // Both streams were stopped by the simulator's error event, and counted as such.
    let stats: Value = reqwest::get(format!("{}/sim/stats", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["stream_errors"], 2, "{stats}");
    assert_eq!(stats["truncated"], 0, "{stats}");
    let recs = planes::records(&g, 2).await;
    for r in &recs {
        assert_eq!(r.outcome, "stream_error", "{r:?}");
        assert_eq!(
            findings(r),
            vec![f("EMAIL_ADDRESS", "tokenize", "input", 1)]
        );
    }
}

#[tokio::test]
async fn embeddings_token_ids_are_read_as_their_text() {
    use tollgate_meter::estimate::{embedding_text_tokens, embedding_tokens_text};
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    planes::Http::new(&g.url)
        .put_default_policy(
            &admin,
            json!({"entities": {"EMAIL_ADDRESS": "mask", "CREDIT_CARD": "block"}}),
        )
        .await;
    let embed = |input: Value| {
        reqwest::Client::new()
            .post(format!("{}/v1/embeddings", g.url))
            .bearer_auth(&g.key)
            .json(&json!({"model": "m", "input": input}))
            .send()
    };
    let upstream_inputs = || -> Vec<String> {
        let body: Value = serde_json::from_str(s.sim.received_bodies().last().unwrap()).unwrap();
        body["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ids| {
                let ids: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
                embedding_tokens_text(&ids).unwrap()
            })
            .collect()
    };
    // Several token lists: the e-mail masked in the one that holds it, the other left as sent.
    let plain = embedding_text_tokens("the weather is fine");
    let resp = embed(json!([
        embedding_text_tokens(&format!("write to {EMAIL} soon")),
        plain
    ]))
    .await
    .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        upstream_inputs(),
        vec![
            "write to <EMAIL_ADDRESS> soon".to_string(),
            "the weather is fine".to_string()
        ]
    );
    let body: Value = serde_json::from_str(s.sim.received_bodies().last().unwrap()).unwrap();
    assert_eq!(
        body["input"][1],
        json!(plain),
        "untouched ids are sent as they came"
    );
    // Ids that spell the text otherwise than the tokenizer would (a few characters an id) are
    // sent as they came too when the guard changes nothing: they are not re-encoded.
    let spelled: Vec<u32> = ["the", " we", "ath", "er", " is", " f", "ine"]
        .iter()
        .flat_map(|piece| embedding_text_tokens(piece))
        .collect();
    assert_ne!(spelled, plain);
    let resp = embed(json!([spelled.clone()])).await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(upstream_inputs(), vec!["the weather is fine".to_string()]);
    let body: Value = serde_json::from_str(s.sim.received_bodies().last().unwrap()).unwrap();
    assert_eq!(body["input"][0], json!(spelled));
    // One token list with a card: refused, naming the type, before the provider sees it.
    let before = s.sim.received_bodies().len();
    let resp = embed(json!(embedding_text_tokens(&format!("card {CARD}"))))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "policy_violation", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CREDIT_CARD")
    );
    // Ids the guard cannot read are refused, not let through unscanned.
    let resp = embed(json!([[9_999_999_u32, 15]])).await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "input", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token ids outside"),
        "{v}"
    );
    assert_eq!(s.sim.received_bodies().len(), before);
    // At most 2,048 inputs, as OpenAI allows.
    let resp = embed(json!(vec![vec![15_u32]; 2_049])).await.unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "input", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2048"),
        "{v}"
    );
    let recs = planes::records(&g, 4).await;
    assert_eq!(
        recs.iter().map(findings).collect::<Vec<_>>(),
        vec![
            vec![f("EMAIL_ADDRESS", "mask", "input", 1)],
            vec![],
            vec![f("CREDIT_CARD", "block", "input", 1)],
            vec![],
        ]
    );
}

/// Every string in `v`, keys and values, however deep.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.clone()).chain(strings(v)))
            .collect(),
        _ => Vec::new(),
    }
}
