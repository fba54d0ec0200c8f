//! Stored payloads end to end: what each logging mode keeps, sealed (no plaintext in the
//! database), read back only by auditors with a reason (audited), erased by destroying keys —
//! retention and an end user's erasure — with the audit chain still verifying after both.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use serde_json::{Value, json};
use std::time::Duration;
use tollgate_simulator::SimConfig;
use tollgate_store::{AuditQueries, LedgerQueries, PayloadQueries, RequestRecord};
use tollgate_types::clock::Clock;

const EMAIL: &str = "ann@example.org";
const CARD: &str = "4111 1111 1111 1111";

/// Signs the chain's state now and verifies the whole chain against every checkpoint.
async fn assert_chain_verifies(g: &common::Gw) {
    g.gw.checkpoints.checkpoint(true).await.unwrap();
    let report = chain_report(g).await;
    assert_eq!(report.broken, None, "{report:?}");
}

/// The whole chain verified with the server secret (end users' ids checked too).
async fn chain_report(g: &common::Gw) -> tollgate_store::chain::Report {
    tollgate_store::chain::verify(
        &g.gw.store,
        g.gw.checkpoints.verifying_key(),
        Some(g.gw.keyring.secret()),
        None,
        None,
        |_, _| {},
    )
    .await
    .unwrap()
}

/// What the chain covers by reference is checked too: an end user's id rewritten on a record
/// (the id is left out of the chain so it can be erased; its keyed pseudonym is in), and a sealed
/// payload replaced or deleted while its data key lives.
#[tokio::test]
async fn the_chain_catches_a_rewritten_end_user_and_a_replaced_or_deleted_payload() {
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    // alice's request stores nothing (her id is on the record only), bob's a full payload,
    // carol's a masked one.
    for (user, logging) in [("alice", "none"), ("bob", "full"), ("carol", "masked")] {
        set_policy(&api, &admin, &g, json!({ "logging": logging })).await;
        chat_as(&g, Some(user), "hello").await;
    }
    let recs = planes::records(&g, 3).await;
    let of = |u: &str| {
        recs.iter()
            .find(|r| r.end_user.as_deref() == Some(u))
            .unwrap()
    };
    assert!(of("alice").payload_ref.is_none());
    let (bob, carol) = (of("bob").id.clone(), of("carol").id.clone());
    assert_chain_verifies(&g).await;
    let raw = raw_db(&g).await;
    let exec = async |sql: &str| {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&raw)
            .await
            .unwrap();
    };
    let broken = async || chain_report(&g).await.broken.map(|b| b.problem);

    exec("UPDATE request_records SET end_user = 'mallory' WHERE end_user = 'alice'").await;
    let problem = broken().await.expect("a rewritten end user is caught");
    assert!(problem.contains("end user"), "{problem}");
    exec("UPDATE request_records SET end_user = 'alice' WHERE end_user = 'mallory'").await;
    assert_eq!(broken().await, None, "put back, it verifies again");

    for id in [&carol, &bob] {
        let original: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT hex(sealed) FROM payloads WHERE record_id = '{id}'"
        )))
        .fetch_one(&raw)
        .await
        .unwrap();
        exec(&format!(
            "UPDATE payloads SET sealed = zeroblob(length(sealed)) WHERE record_id = '{id}'"
        ))
        .await;
        let problem = broken().await.expect("a replaced payload is caught");
        assert!(
            problem.contains(id.as_str()) && problem.contains("replaced"),
            "{problem}"
        );
        exec(&format!(
            "UPDATE payloads SET sealed = x'{original}' WHERE record_id = '{id}'"
        ))
        .await;
        assert_eq!(broken().await, None, "put back, it verifies again");
    }
    exec(&format!("DELETE FROM payloads WHERE record_id = '{bob}'")).await;
    let problem = broken().await.expect("a deleted payload is caught");
    assert!(problem.contains("missing"), "{problem}");
    raw.close().await;
}

/// Sets the use case's policy (asserting it was taken).
async fn set_policy(api: &planes::Http, admin: &str, g: &common::Gw, policy: Value) {
    let (st, v) = api
        .call(
            reqwest::Method::PUT,
            &format!("/admin/v1/use-cases/{}/policy", g.use_case.id),
            admin,
            Some(json!({ "policy": policy })),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

/// One chat request with the use case's key, as `user` if given (asserting it was answered).
async fn chat_as(g: &common::Gw, user: Option<&str>, text: &str) {
    let mut req = reqwest::Client::new()
        .post(g.chat_url())
        .bearer_auth(&g.key)
        .json(&json!({"model": "m", "messages": common::user(text)}));
    if let Some(u) = user {
        req = req.header("x-tollgate-user", u);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
}

/// A second connection to the gateway's database, to tamper with it.
async fn raw_db(g: &common::Gw) -> sqlx::SqlitePool {
    let db = g.gw.config.server.data_dir.join("tollgate.db");
    sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap()
}

async fn token_for(
    api: &planes::Http,
    admin: &str,
    name: &str,
    org_role: Value,
    pod: Option<&str>,
) -> String {
    let (st, u) = api
        .call(
            reqwest::Method::POST,
            "/admin/v1/users",
            admin,
            Some(
                json!({"email": format!("{name}@example.com"), "name": name, "org_role": org_role}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    let uid = u["id"].as_str().unwrap();
    if let Some(pod) = pod {
        api.call(
            reqwest::Method::PUT,
            &format!("/admin/v1/pods/{pod}/members/{uid}"),
            admin,
            Some(json!({"role": "lead"})),
        )
        .await;
    }
    let (_, t) = api
        .call(
            reqwest::Method::POST,
            &format!("/admin/v1/users/{uid}/tokens"),
            admin,
            Some(json!({"name": "t"})),
        )
        .await;
    t["secret"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn payloads_are_sealed_read_with_a_reason_and_shredded() {
    let s = common::sim(SimConfig {
        echo: true,
        ..Default::default()
    })
    .await;
    // 2026-11-30T12:00:00Z.
    let clock = Clock::manual(1_796_040_000_000);
    let (g, admin) = planes::serve_at(&common::two_route_config(&s.url), clock.clone()).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    let pod = g.use_case.pod_id.clone();
    let auditor = token_for(&api, &admin, "auditor", json!("auditor"), None).await;
    let lead = token_for(&api, &admin, "lead", Value::Null, Some(&pod)).await;
    let finops = token_for(&api, &admin, "finops", json!("finops"), None).await;

    let chat = async |user: &str, stream: bool| {
        let resp = reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .header("x-tollgate-user", user)
            .json(&json!({"model": "m", "stream": stream, "messages": common::user(&format!("mail {EMAIL} card {CARD}"))}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    };
    let set_policy = async |logging: &str| {
        let (st, v) = api
            .call(reqwest::Method::PUT, &format!("/admin/v1/use-cases/{uc}/policy"), &admin,
                Some(json!({"policy": {"entities": {"EMAIL_ADDRESS": "tokenize", "CREDIT_CARD": "mask"}, "logging": logging, "retention_days": 1}})))
            .await;
        assert_eq!(st, 200, "{v}");
    };
    // One request per logging mode; `full` twice (streamed too) and for a second end user.
    for mode in ["none", "metadata", "masked", "full"] {
        set_policy(mode).await;
        chat("alice", false).await;
    }
    chat("alice", true).await;
    chat("bob", false).await;
    let recs = planes::records(&g, 6).await;
    let refs: Vec<Option<String>> = recs.iter().map(|r| r.payload_ref.clone()).collect();
    assert_eq!(refs[0], None, "none stores nothing");
    assert_eq!(refs[1].as_deref(), Some("metadata"));
    for r in &refs[2..] {
        let r = r.as_deref().unwrap();
        assert!(
            r.starts_with("masked:dek_") || r.starts_with("full:dek_"),
            "{r}"
        );
    }
    assert!(g.gw.store.get_payload(&recs[0].id).await.unwrap().is_none());

    // Nothing readable at rest: not the e-mail, not the card, not the answer.
    let db = std::fs::read(g.gw.config.server.data_dir.join("tollgate.db")).unwrap();
    let wal =
        std::fs::read(g.gw.config.server.data_dir.join("tollgate.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        for needle in [EMAIL.as_bytes(), b"4111 1111", b"mail <EMAIL"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} found at rest",
                String::from_utf8_lossy(needle)
            );
        }
    }

    let read = async |token: &str, rec: &str, reason: Option<&str>| {
        let body = reason.map_or(json!({}), |r| json!({"reason": r}));
        api.call(
            reqwest::Method::POST,
            &format!("/admin/v1/payloads/{rec}/read"),
            token,
            Some(body),
        )
        .await
    };
    // A read without its reason is refused before the record is looked up: the same 400 for a
    // record that exists, one that does not, and a caller who may not read.
    for (token, rec) in [
        (&admin, recs[5].id.as_str()),
        (&admin, "rec_missing"),
        (&lead, recs[5].id.as_str()),
    ] {
        let (st, v) = read(token, rec, None).await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (400, Some("reason")),
            "{rec}: {v}"
        );
    }
    // Who may read: auditors (and admins, risk officers), with a reason.
    let (st, _) = read(&lead, &recs[5].id, Some("curious")).await;
    assert_eq!(st, 403, "a pod lead may not read payloads");
    let (st, _) = read(&finops, &recs[5].id, Some("curious")).await;
    assert_eq!(st, 403);
    let denied = g.gw.store.list_audit(0, 1000).await.unwrap();
    assert_eq!(
        denied
            .iter()
            .filter(|e| e.action == "payload.read_denied")
            .count(),
        2,
        "refused reads are audited too"
    );
    // Up to a bound per person and hour: a pod member asking again and again cannot flood the
    // trail. The lead has had 1 of the hour; 14 more make 10 audited; the next hour counts anew.
    let denied_count = async || {
        g.gw.store
            .list_audit(0, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "payload.read_denied")
            .count()
    };
    for _ in 0..14 {
        assert_eq!(read(&lead, &recs[5].id, Some("curious")).await.0, 403);
    }
    assert_eq!(
        denied_count().await,
        1 + tollgate_control::DENIED_READS_AUDITED_PER_HOUR as usize
    );
    clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(read(&lead, &recs[5].id, Some("curious")).await.0, 403);
    assert_eq!(
        denied_count().await,
        2 + tollgate_control::DENIED_READS_AUDITED_PER_HOUR as usize
    );
    // Someone who cannot see the record gets 404 — as for a record that does not exist — and
    // no audit entry (it would tell them the record exists).
    let outsider = token_for(&api, &admin, "outsider", Value::Null, None).await;
    assert_eq!(read(&outsider, &recs[5].id, Some("curious")).await.0, 404);
    assert_eq!(
        denied_count().await,
        2 + tollgate_control::DENIED_READS_AUDITED_PER_HOUR as usize
    );
    let (st, v) = read(&auditor, &recs[5].id, None).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = read(&auditor, &recs[5].id, Some("  ")).await;
    assert_eq!((st, v["error"]["param"].as_str()), (400, Some("reason")));
    let (st, _) = read(&auditor, "rec_nope", Some("checking a complaint")).await;
    assert_eq!(st, 404);

    // What each mode kept.
    let (st, full) = read(&auditor, &recs[3].id, Some("complaint #4411")).await;
    assert_eq!(st, 200, "{full}");
    assert_eq!(full["mode"], "full");
    assert!(
        full["prompt"].as_str().unwrap().contains(EMAIL),
        "full keeps the prompt as sent: {full}"
    );
    assert_eq!(
        full["answer"],
        format!("mail {EMAIL} card <CREDIT_CARD>"),
        "and the answer as shown"
    );
    let (_, streamed) = read(&auditor, &recs[4].id, Some("complaint #4411")).await;
    assert_eq!(
        streamed["answer"], full["answer"],
        "a streamed answer is kept as shown too"
    );
    let (_, masked) = read(&auditor, &recs[2].id, Some("complaint #4411")).await;
    assert_eq!(masked["mode"], "masked");
    let prompt = masked["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("<EMAIL_ADDRESS_1>")
            && prompt.contains("<CREDIT_CARD>")
            && !prompt.contains(EMAIL),
        "{prompt}"
    );
    assert_eq!(
        masked["answer"], "mail <EMAIL_ADDRESS> card <CREDIT_CARD>",
        "masked: every finding masked, the user's own too"
    );
    let (_, meta) = read(&auditor, &recs[1].id, Some("complaint #4411")).await;
    assert_eq!(
        (meta["prompt"].clone(), meta["answer"].clone()),
        (Value::Null, Value::Null)
    );
    assert!(meta["prompt_bytes"].as_u64().unwrap() > 10);
    // Each read is in the audit trail with who and why.
    let events = g.gw.store.list_audit(0, 1000).await.unwrap();
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e.action == "payload.read")
        .collect();
    assert_eq!(reads.len(), 4, "every read with a reason, and only those");
    assert!(
        reads
            .iter()
            .all(|e| e.details["reason"] == "complaint #4411" && e.actor != "admin")
    );
    assert!(reads.iter().any(|e| e.object_id == recs[3].id));

    // Erasure: bob's payloads are unreadable; alice's are not.
    let (st, _) = api
        .call(
            reqwest::Method::POST,
            "/admin/v1/erasure",
            &auditor,
            Some(json!({"end_user": "bob"})),
        )
        .await;
    assert_eq!(st, 403, "auditors read; they do not erase");
    for bad in ["", "bob\u{0}", "bob\nalice"] {
        let (st, v) = api
            .call(
                reqwest::Method::POST,
                "/admin/v1/erasure",
                &admin,
                Some(json!({"end_user": bad})),
            )
            .await;
        assert_eq!(
            (st, v["error"]["param"].as_str()),
            (400, Some("end_user")),
            "{bad:?}: {v}"
        );
    }
    let (st, e) = api
        .call(
            reqwest::Method::POST,
            "/admin/v1/erasure",
            &admin,
            Some(json!({"end_user": "bob"})),
        )
        .await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(
        (e["keys_destroyed"].as_u64(), e["records"].as_u64()),
        (Some(1), Some(1))
    );
    let (st, v) = read(&auditor, &recs[5].id, Some("after erasure")).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (410, Some("payload_erased")),
        "{v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("erasure"));
    assert_eq!(
        read(&auditor, &recs[3].id, Some("after erasure")).await.0,
        200
    );
    let after: Vec<RequestRecord> = g.gw.store.list_records(0, i64::MAX, 1000).await.unwrap();
    let bob = after.iter().find(|r| r.id == recs[5].id).unwrap();
    assert_eq!(bob.end_user, None, "the id is gone");
    assert_eq!(
        bob.end_user_hash, recs[5].end_user_hash,
        "its pseudonym stays"
    );
    // Bob's next request gets a new key (the old one is never used again).
    chat("bob", false).await;
    let recs2 = planes::records(&g, 7).await;
    let (st, _) = read(&auditor, &recs2[6].id, Some("new request after erasure")).await;
    assert_eq!(st, 200);

    // The chain verifies after erasure.
    assert_chain_verifies(&g).await;

    // Retention: a day and a bit later every key of these payloads has passed its day.
    assert_eq!(
        g.gw.retention_sweep().await.unwrap(),
        0,
        "nothing expired yet"
    );
    clock.advance(Duration::from_secs(2 * 86_400));
    let destroyed = g.gw.retention_sweep().await.unwrap();
    assert!(destroyed >= 2, "{destroyed}");
    let (st, v) = read(&auditor, &recs[3].id, Some("after retention")).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (410, Some("payload_erased")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retention")
    );
    let events = g.gw.store.list_audit(0, 1000).await.unwrap();
    assert!(
        events.iter().any(|e| e.action == "data_key.destroy"),
        "destroying keys is itself audited"
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "end_user.erase" && !e.details.to_string().contains("bob"))
    );
    assert_chain_verifies(&g).await;
}

#[tokio::test]
async fn rotating_the_master_key_rewraps_every_live_key() {
    use tollgate_payload::MasterKey;
    let s = common::sim(SimConfig::default()).await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    api.call(
        reqwest::Method::PUT,
        &format!("/admin/v1/use-cases/{uc}/policy"),
        &admin,
        Some(json!({"policy": {"logging": "full"}})),
    )
    .await;
    for u in ["a", "b", "c"] {
        let r = reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .header("x-tollgate-user", u)
            .json(&json!({"model": "m", "messages": common::user("hello")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let recs = planes::records(&g, 3).await;
    let old = MasterKey::load(&g.gw.config.audit.master_key_file).unwrap();
    let new = MasterKey::from_bytes([42; 32]);
    let (done, failed) =
        g.gw.store
            .rotate_master_key("test", &new.id(), |id, w| new.rewrap(&old, id, w).ok())
            .await
            .unwrap();
    assert_eq!((done, failed), (3, 0));
    for r in &recs {
        let p = g.gw.store.get_payload(&r.id).await.unwrap().unwrap();
        let k =
            g.gw.store
                .get_data_key(p.data_key_id.as_deref().unwrap())
                .await
                .unwrap()
                .unwrap();
        assert_eq!(k.kek_id, new.id());
        let w = k.wrapped.unwrap();
        assert!(
            old.unwrap_key(&k.id, &w).is_err(),
            "the old master key no longer opens it"
        );
        let dk = new.unwrap_key(&k.id, &w).unwrap();
        let plain = dk
            .open(
                p.sealed.as_ref().unwrap(),
                &tollgate_payload::binding(&r.id, &p.use_case_id, &p.end_user_hash),
            )
            .unwrap();
        assert!(String::from_utf8(plain).unwrap().contains("hello"));
    }
    // A rotation with the wrong current key changes nothing.
    let wrong = MasterKey::from_bytes([7; 32]);
    assert!(
        g.gw.store
            .rotate_master_key("test", "x", |id, w| MasterKey::from_bytes([8; 32])
                .rewrap(&wrong, id, w)
                .ok())
            .await
            .is_err()
    );
    let events = g.gw.store.list_audit(0, 1000).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "master_key.rotate")
            .count(),
        1
    );
}

#[tokio::test]
async fn masked_logging_masks_what_the_input_scope_leaves_and_erasure_forgets_conversations() {
    let s = common::sim(SimConfig {
        echo: true,
        ..Default::default()
    })
    .await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    let uc = g.use_case.id.clone();
    let policy = async |p: Value| {
        let (st, v) = api
            .call(
                reqwest::Method::PUT,
                &format!("/admin/v1/use-cases/{uc}/policy"),
                &admin,
                Some(json!({"policy": p})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    };
    let chat = async |text: &str, session: &str| {
        let resp = reqwest::Client::new()
            .post(g.chat_url())
            .bearer_auth(&g.key)
            .header("x-tollgate-user", "dora")
            .header("x-tollgate-session", session)
            .json(&json!({"model": "m", "messages": [{"role": "system", "content": format!("sys {EMAIL}")}, {"role": "user", "content": text}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    };
    // Nothing scanned on the way in, and the phone number allowed, yet the masked log holds no
    // value.
    policy(json!({"logging": "masked", "scan": {"input": false}, "entities": {"PHONE_NUMBER": "allow"}})).await;
    chat(&format!("x {EMAIL} {CARD} call +44 20 7946 0958"), "s0").await;
    let recs = planes::records(&g, 1).await;
    let (st, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/admin/v1/payloads/{}/read", recs[0].id),
            &admin,
            Some(json!({"reason": "masked check"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let all = v.to_string();
    assert!(
        !all.contains(EMAIL) && !all.contains(CARD) && !all.contains("7946 0958"),
        "{all}"
    );
    assert!(
        all.contains("<EMAIL_ADDRESS>")
            && all.contains("<CREDIT_CARD>")
            && all.contains("<PHONE_NUMBER>"),
        "{all}"
    );

    // A conversation's tokens are forgotten with an erasure.
    policy(json!({"entities": {"EMAIL_ADDRESS": "tokenize"}})).await;
    chat("mail eve@example.net", "s1").await;
    chat("mail fay@example.net", "s1").await;
    assert!(
        s.sim
            .received()
            .last()
            .unwrap()
            .ends_with("mail <EMAIL_ADDRESS_3>"),
        "{:?}",
        s.sim.received().last()
    );
    let (st, _) = api
        .call(
            reqwest::Method::POST,
            "/admin/v1/erasure",
            &admin,
            Some(json!({"end_user": "dora"})),
        )
        .await;
    assert_eq!(st, 200);
    chat("mail fay@example.net", "s1").await;
    assert!(
        s.sim
            .received()
            .last()
            .unwrap()
            .ends_with("mail <EMAIL_ADDRESS_2>"),
        "numbered afresh: {:?}",
        s.sim.received().last()
    );
}

/// A read that cannot be recorded does not happen: when writing the `payload.read` audit event
/// fails, the payload is not opened and nothing of it is answered; once the audit trail takes
/// writes again, the same read succeeds.
#[tokio::test]
async fn a_read_that_cannot_be_audited_does_not_open_the_payload() {
    let s = common::sim(SimConfig {
        echo: true,
        ..Default::default()
    })
    .await;
    let (g, admin) = planes::serve(&common::two_route_config(&s.url)).await;
    let api = planes::Http::new(&g.url);
    set_policy(&api, &admin, &g, json!({"logging": "full"})).await;
    chat_as(&g, None, "the secret plan is tulips").await;
    let rec = planes::records(&g, 1).await.remove(0);
    let raw = raw_db(&g).await;
    sqlx::query(
        "CREATE TRIGGER no_reads BEFORE INSERT ON audit_events WHEN NEW.action = 'payload.read' \
         BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END",
    )
    .execute(&raw)
    .await
    .unwrap();
    let read = async || {
        api.call(
            reqwest::Method::POST,
            &format!("/admin/v1/payloads/{}/read", rec.id),
            &admin,
            Some(json!({"reason": "complaint #12"})),
        )
        .await
    };
    let (st, v) = read().await;
    assert!(st >= 500, "{st}: {v}");
    assert!(!v.to_string().contains("tulips"), "{v}");
    sqlx::query("DROP TRIGGER no_reads")
        .execute(&raw)
        .await
        .unwrap();
    let (st, v) = read().await;
    assert_eq!(st, 200, "{v}");
    assert!(v["prompt"].as_str().unwrap().contains("tulips"), "{v}");
    raw.close().await;
}
