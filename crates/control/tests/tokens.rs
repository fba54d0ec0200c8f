//! The lifecycle of personal admin tokens and of the people who hold them: tokens listed (never a
//! secret) and revoked (401 from the next call), at most 90 days long, never outliving the token
//! that issued them; users disabled (every token 401 at once) and enabled again, their org role
//! changed (seen on the next call), and a platform admin unable to lock themself out; all audited.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tollgate_control::Control;
use tollgate_control::users::{MAX_ACTIVE_TOKENS, MAX_TOKEN_LIFETIME_DAYS};
use tollgate_store::now_ms;
use tollgate_types::time::{parse_rfc3339, rfc3339};

const CONFIG: &str = r#"
providers:
  - { name: nowhere, type: openai_compatible, base_url: "http://127.0.0.1:9/v1" }
routes:
  - name: chat
    deployments: [{ provider: nowhere, model: m }]
"#;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

struct Api {
    router: axum::Router,
    control: Arc<Control>,
    admin: String,
}

impl Api {
    async fn new() -> Api {
        Self::with(common::gateway_only(CONFIG).await).await
    }

    /// Both planes on `clock`.
    async fn at(clock: tollgate_types::clock::Clock) -> Api {
        Self::with(common::gateway_only_at(CONFIG, clock).await).await
    }

    async fn with(gw: Arc<tollgate_gateway::Gateway>) -> Api {
        let (router, control, admin) = planes::app(&gw).await;
        Api {
            router,
            control,
            admin,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        planes::call(&self.router, method, path, token, body).await
    }

    /// A successful call as `token`.
    async fn ok_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), path, token, body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    /// A successful call as the bootstrap admin.
    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let admin = self.admin.clone();
        self.ok_as(&admin, method, path, Some(body)).await
    }

    /// A new user (`org_role` may be null), a viewer of `pod` if given.
    async fn user(&self, email: &str, org_role: Value, pod: Option<&str>) -> String {
        let id = self
            .ok(
                Method::POST,
                "/admin/v1/users",
                json!({"email": email, "name": email, "org_role": org_role}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        if let Some(pod) = pod {
            self.ok(
                Method::PUT,
                &format!("/admin/v1/pods/{pod}/members/{id}"),
                json!({"role": "viewer"}),
            )
            .await;
        }
        id
    }

    /// A token for `user` issued by the bootstrap admin: (its id, its secret).
    async fn token(&self, user: &str, body: Value) -> (String, String) {
        let t = self
            .ok(
                Method::POST,
                &format!("/admin/v1/users/{user}/tokens"),
                body,
            )
            .await;
        (
            t["id"].as_str().unwrap().to_string(),
            t["secret"].as_str().unwrap().to_string(),
        )
    }

    /// The status of `/me` for `token`.
    async fn me(&self, token: &str) -> StatusCode {
        self.call(Method::GET, "/admin/v1/me", token, None).await.0
    }

    /// The audit trail, as the bootstrap admin.
    async fn audit(&self) -> Vec<Value> {
        let admin = self.admin.clone();
        self.ok_as(&admin, Method::GET, "/admin/v1/audit?limit=200", None)
            .await
            .as_array()
            .unwrap()
            .clone()
    }
}

/// Pod A; Ana and Bo, viewers of A; Root, a platform admin; Fin, finops; Stranger, in no pod.
struct People {
    ana: String,
    bo: String,
    root: String,
    fin: String,
    stranger: String,
}

async fn people(api: &Api) -> People {
    let pod = api
        .ok(Method::POST, "/admin/v1/pods", json!({"name": "pod-a"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    People {
        ana: api.user("ana@example.com", Value::Null, Some(&pod)).await,
        bo: api.user("bo@example.com", Value::Null, Some(&pod)).await,
        root: api
            .user("root@example.com", json!("platform_admin"), None)
            .await,
        fin: api.user("fin@example.com", json!("finops"), None).await,
        stranger: api.user("stranger@example.com", Value::Null, None).await,
    }
}

fn expiry(v: &Value) -> i64 {
    parse_rfc3339(v["expires_at"].as_str().unwrap()).unwrap()
}

/// A user's tokens are shown to them and to platform admins, with what the record holds and never
/// a secret or a hash; pod mates and org-wide readers get 403, people who cannot see the user 404
/// exactly like an unknown user.
#[tokio::test]
async fn tokens_are_listed_to_their_user_and_to_platform_admins() {
    let api = Api::new().await;
    let p = people(&api).await;
    let (t1, ana1) = api.token(&p.ana, json!({"name": "laptop"})).await;
    let (t2, ana2) = api.token(&p.ana, json!({"name": "ci"})).await;
    api.ok(
        Method::POST,
        &format!("/admin/v1/users/{}/tokens/{t2}/revoke", p.ana),
        json!(null),
    )
    .await;
    let (_, root) = api.token(&p.root, json!({"name": "root"})).await;
    let (_, bo) = api.token(&p.bo, json!({"name": "bo"})).await;
    let (_, fin) = api.token(&p.fin, json!({"name": "fin"})).await;
    let (_, stranger) = api.token(&p.stranger, json!({"name": "s"})).await;
    let list = format!("/admin/v1/users/{}/tokens", p.ana);

    for (who, token) in [("ana", &ana1), ("root", &root), ("bootstrap", &api.admin)] {
        let (s, v) = api.call(Method::GET, &list, token, None).await;
        assert_eq!(s, StatusCode::OK, "{who}: {v}");
        let items = v["items"].as_array().unwrap();
        let ids: Vec<&str> = items.iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [t1.as_str(), t2.as_str()], "{who}");
        let first = &items[0];
        assert_eq!(first["user_id"], p.ana.as_str());
        assert_eq!(first["name"], "laptop");
        assert!(ana1.starts_with(first["prefix"].as_str().unwrap()));
        assert!(first["created_at"].is_string() && first["expires_at"].is_string());
        assert_eq!(
            (&first["revoked_at"], &first["active"]),
            (&Value::Null, &json!(true))
        );
        assert!(items[1]["revoked_at"].is_string());
        assert_eq!(items[1]["active"], false);
        let mut fields: Vec<&String> = first.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "active",
                "created_at",
                "expires_at",
                "id",
                "name",
                "prefix",
                "revoked_at",
                "user_id"
            ],
            "never a secret or a hash"
        );
        let text = v.to_string();
        for secret in [&ana1, &ana2] {
            assert!(!text.contains(secret.as_str()), "{who}: a secret shown");
            assert!(
                !text.contains(&api.control.secret.hash(secret)),
                "{who}: a hash shown"
            );
        }
    }
    // Pages.
    let (_, v) = api
        .call(Method::GET, &format!("{list}?limit=1"), &ana1, None)
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["next"], t1.as_str());
    let (_, v) = api
        .call(Method::GET, &format!("{list}?after={t1}"), &ana1, None)
        .await;
    assert_eq!(v["items"][0]["id"], t2.as_str());

    for (who, token, want) in [
        ("bo, a pod mate", &bo, StatusCode::FORBIDDEN),
        ("fin, finops", &fin, StatusCode::FORBIDDEN),
        ("a stranger", &stranger, StatusCode::NOT_FOUND),
    ] {
        let (s, v) = api.call(Method::GET, &list, token, None).await;
        assert_eq!(s, want, "{who}: {v}");
        assert!(!v.to_string().contains(&t1), "{who}: {v}");
    }
    // The stranger's 404 is the one of an unknown user.
    let (_, hidden) = api.call(Method::GET, &list, &stranger, None).await;
    let unknown_id = "usr_01a22b000ec8716d9db95649180028f0";
    let (s, unknown) = api
        .call(
            Method::GET,
            &format!("/admin/v1/users/{unknown_id}/tokens"),
            &stranger,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        hidden.to_string().replace(&p.ana, "ID"),
        unknown.to_string().replace(unknown_id, "ID")
    );
    let (s, _) = api
        .call(
            Method::GET,
            &format!("/admin/v1/users/{unknown_id}/tokens"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "unknown to the admin too");
}

/// A revoked token answers 401 from its next call; its user or a platform admin revokes it (a
/// token may revoke itself), no one else, and only through the user it belongs to.
#[tokio::test]
async fn a_revoked_token_answers_401_on_its_next_call() {
    let api = Api::new().await;
    let p = people(&api).await;
    let (t1, ana1) = api.token(&p.ana, json!({"name": "1"})).await;
    let (t2, ana2) = api.token(&p.ana, json!({"name": "2"})).await;
    let (t3, ana3) = api.token(&p.ana, json!({"name": "3"})).await;
    let (tb, bo) = api.token(&p.bo, json!({"name": "bo"})).await;
    let (_, root) = api.token(&p.root, json!({"name": "root"})).await;
    let revoke = |user: &str, token: &str| format!("/admin/v1/users/{user}/tokens/{token}/revoke");
    assert_eq!(api.me(&ana1).await, StatusCode::OK);

    // Not by a pod mate; not through another user's path.
    let (s, v) = api
        .call(Method::POST, &revoke(&p.ana, &t1), &bo, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = api
        .call(Method::POST, &revoke(&p.ana, &tb), &ana1, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "Bo's token through Ana: {v}");
    let (s, v) = api
        .call(Method::POST, &revoke(&p.ana, &tb), &root, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "even for an admin: {v}");
    let (s, _) = api
        .call(Method::POST, &revoke(&p.ana, "tok_nope"), &ana1, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(api.me(&ana1).await, StatusCode::OK);
    assert_eq!(api.me(&bo).await, StatusCode::OK);

    // By its user, with another of her tokens.
    let (s, v) = api
        .call(Method::POST, &revoke(&p.ana, &t1), &ana2, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["id"].as_str(), &v["active"]),
        (Some(t1.as_str()), &json!(false))
    );
    let revoked_at = v["revoked_at"].as_str().unwrap().to_string();
    assert_eq!(api.me(&ana1).await, StatusCode::UNAUTHORIZED);
    assert_eq!(api.me(&ana2).await, StatusCode::OK, "her other tokens work");
    // Twice: nothing changes.
    let (s, v) = api
        .call(Method::POST, &revoke(&p.ana, &t1), &ana2, None)
        .await;
    assert_eq!(
        (s, v["revoked_at"].as_str()),
        (StatusCode::OK, Some(revoked_at.as_str()))
    );

    // A token revokes itself.
    let (s, _) = api
        .call(Method::POST, &revoke(&p.ana, &t2), &ana2, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.me(&ana2).await, StatusCode::UNAUTHORIZED);

    // A platform admin revokes anyone's.
    let (s, _) = api
        .call(Method::POST, &revoke(&p.ana, &t3), &root, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api.call(Method::GET, "/admin/v1/pods", &ana3, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(api.me(&bo).await, StatusCode::OK, "others are untouched");
}

/// `expires_at` defaults to 90 days ahead and may not be later; in the past it is refused.
#[tokio::test]
async fn tokens_expire_after_at_most_90_days() {
    assert_eq!(MAX_TOKEN_LIFETIME_DAYS, 90);
    let api = Api::new().await;
    let p = people(&api).await;
    let path = format!("/admin/v1/users/{}/tokens", p.ana);
    let before = now_ms();
    let v = api
        .ok(Method::POST, &path, json!({"name": "default"}))
        .await;
    let after = now_ms();
    let e = expiry(&v);
    assert!(
        (before + 90 * DAY_MS..=after + 90 * DAY_MS).contains(&e),
        "default expiry {}",
        v["expires_at"]
    );
    let listed = api
        .ok_as(&api.admin.clone(), Method::GET, &path, None)
        .await;
    assert_eq!(listed["items"][0]["expires_at"], v["expires_at"]);

    let at = rfc3339(now_ms() + 89 * DAY_MS);
    let v = api
        .ok(
            Method::POST,
            &path,
            json!({"name": "89d", "expires_at": at}),
        )
        .await;
    assert_eq!(v["expires_at"], at.as_str());

    for (asked, why, says) in [
        (
            rfc3339(now_ms() + 91 * DAY_MS),
            "past the maximum",
            "at most 90 days",
        ),
        (rfc3339(now_ms() - 1000), "in the past", "in the future"),
        ("next week".to_string(), "not a time", "RFC 3339"),
    ] {
        let (s, v) = api
            .call(
                Method::POST,
                &path,
                &api.admin,
                Some(json!({"name": "x", "expires_at": asked})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
        assert_eq!(v["error"]["param"], "expires_at", "{why}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{why}: {v}"
        );
    }
    // Through a personal token with a longer life left, the maximum is what refuses.
    let (_, root) = api.token(&p.root, json!({"name": "root"})).await;
    let (s, v) = api
        .call(
            Method::POST,
            &format!("/admin/v1/users/{}/tokens", p.root),
            &root,
            Some(json!({"name": "x", "expires_at": rfc3339(now_ms() + 91 * DAY_MS)})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 90 days"),
        "{v}"
    );
}

/// A token expiring in an hour cannot issue its user one expiring in two, and one asked without an
/// expiry ends when it does; tokens a platform admin issues to others are not bound by its own.
#[tokio::test]
async fn a_token_cannot_mint_one_that_outlives_itself() {
    let api = Api::new().await;
    let p = people(&api).await;
    let in_1h = rfc3339(now_ms() + HOUR_MS);
    let (_, short) = api
        .token(&p.ana, json!({"name": "short", "expires_at": in_1h}))
        .await;
    let own = format!("/admin/v1/users/{}/tokens", p.ana);

    let (s, v) = api
        .call(
            Method::POST,
            &own,
            &short,
            Some(json!({"name": "longer", "expires_at": rfc3339(now_ms() + 2 * HOUR_MS)})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["param"], "expires_at");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&in_1h),
        "{v}"
    );

    let (s, child) = api
        .call(Method::POST, &own, &short, Some(json!({"name": "child"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{child}");
    assert_eq!(child["expires_at"], in_1h.as_str(), "clamped to its parent");
    let child_secret = child["secret"].as_str().unwrap();
    let (s, grandchild) = api
        .call(
            Method::POST,
            &own,
            child_secret,
            Some(json!({"name": "grandchild"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        grandchild["expires_at"],
        in_1h.as_str(),
        "and so on down the chain"
    );

    let in_30m = rfc3339(now_ms() + HOUR_MS / 2);
    let (s, v) = api
        .call(
            Method::POST,
            &own,
            &short,
            Some(json!({"name": "shorter", "expires_at": in_30m})),
        )
        .await;
    assert_eq!(
        (s, v["expires_at"].as_str()),
        (StatusCode::CREATED, Some(in_30m.as_str()))
    );

    // A platform admin using a short token: their own new tokens are bound by it, those they issue
    // to others only by the maximum lifetime.
    let (_, root_short) = api
        .token(&p.root, json!({"name": "short", "expires_at": in_1h}))
        .await;
    let (s, v) = api
        .call(
            Method::POST,
            &format!("/admin/v1/users/{}/tokens", p.root),
            &root_short,
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(
        (s, v["expires_at"].as_str()),
        (StatusCode::CREATED, Some(in_1h.as_str()))
    );
    let (s, v) = api
        .call(
            Method::POST,
            &own,
            &root_short,
            Some(json!({"name": "for ana"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(expiry(&v) > now_ms() + 89 * DAY_MS, "{v}");
}

/// Disabling a user stops every token of theirs at once; enabling them brings back those neither
/// revoked nor expired. A disabled user is not issued new tokens.
#[tokio::test]
async fn a_disabled_user_is_locked_out_until_enabled() {
    let api = Api::new().await;
    let p = people(&api).await;
    let (_, ana1) = api.token(&p.ana, json!({"name": "1"})).await;
    let (_, ana2) = api.token(&p.ana, json!({"name": "2"})).await;
    let (t3, ana3) = api.token(&p.ana, json!({"name": "3"})).await;
    api.ok(
        Method::POST,
        &format!("/admin/v1/users/{}/tokens/{t3}/revoke", p.ana),
        json!(null),
    )
    .await;
    let (_, root) = api.token(&p.root, json!({"name": "root"})).await;
    let user = format!("/admin/v1/users/{}", p.ana);

    let v = api
        .ok_as(&root, Method::PATCH, &user, Some(json!({"disabled": true})))
        .await;
    assert_eq!(v["disabled"], true);
    assert!(v["disabled_at"].is_string());
    for token in [&ana1, &ana2] {
        assert_eq!(api.me(token).await, StatusCode::UNAUTHORIZED);
    }
    let (s, _) = api.call(Method::GET, "/admin/v1/pods", &ana1, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let shown = api.ok_as(&root, Method::GET, &user, None).await;
    assert_eq!(shown["disabled"], true);
    let (s, v) = api
        .call(
            Method::POST,
            &format!("{user}/tokens"),
            &root,
            Some(json!({"name": "new"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "user_disabled");

    let v = api
        .ok_as(
            &root,
            Method::PATCH,
            &user,
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(
        (&v["disabled"], &v["disabled_at"]),
        (&json!(false), &Value::Null)
    );
    for token in [&ana1, &ana2] {
        assert_eq!(api.me(token).await, StatusCode::OK);
    }
    assert_eq!(
        api.me(&ana3).await,
        StatusCode::UNAUTHORIZED,
        "revoked stays revoked"
    );
}

/// A new org role applies from the user's next call; only a platform admin changes users.
#[tokio::test]
async fn an_org_role_change_applies_on_the_next_call() {
    let api = Api::new().await;
    let p = people(&api).await;
    let (_, ana) = api.token(&p.ana, json!({"name": "ana"})).await;
    let (_, bo) = api.token(&p.bo, json!({"name": "bo"})).await;
    let (_, fin) = api.token(&p.fin, json!({"name": "fin"})).await;
    let (_, root) = api.token(&p.root, json!({"name": "root"})).await;
    let user = format!("/admin/v1/users/{}", p.ana);
    let me = api.ok_as(&ana, Method::GET, "/admin/v1/me", None).await;
    assert_eq!(me["org_role"], Value::Null);
    let (s, _) = api.call(Method::GET, "/admin/v1/audit", &ana, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let v = api
        .ok_as(
            &root,
            Method::PATCH,
            &user,
            Some(json!({"org_role": "auditor", "name": "Ana A"})),
        )
        .await;
    assert_eq!(
        (&v["org_role"], &v["name"]),
        (&json!("auditor"), &json!("Ana A"))
    );
    let me = api.ok_as(&ana, Method::GET, "/admin/v1/me", None).await;
    assert_eq!(me["org_role"], "auditor");
    let (s, _) = api.call(Method::GET, "/admin/v1/audit", &ana, None).await;
    assert_eq!(s, StatusCode::OK, "the new role's rights at once");

    api.ok_as(&root, Method::PATCH, &user, Some(json!({"org_role": null})))
        .await;
    let me = api.ok_as(&ana, Method::GET, "/admin/v1/me", None).await;
    assert_eq!(me["org_role"], Value::Null);
    let (s, _) = api.call(Method::GET, "/admin/v1/audit", &ana, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The name stays when only the role changes.
    let shown = api.ok_as(&root, Method::GET, &user, None).await;
    assert_eq!(shown["name"], "Ana A");

    // Only platform admins: others who see the user get 403, others 404.
    let promote = json!({"org_role": "platform_admin"});
    for (who, token, target, want) in [
        ("bo, a pod mate", &bo, &p.ana, StatusCode::FORBIDDEN),
        ("fin, finops", &fin, &p.ana, StatusCode::FORBIDDEN),
        ("ana herself", &ana, &p.ana, StatusCode::FORBIDDEN),
        ("bo, of a stranger", &bo, &p.stranger, StatusCode::NOT_FOUND),
    ] {
        let (s, v) = api
            .call(
                Method::PATCH,
                &format!("/admin/v1/users/{target}"),
                token,
                Some(promote.clone()),
            )
            .await;
        assert_eq!(s, want, "{who}: {v}");
    }
    let me = api.ok_as(&ana, Method::GET, "/admin/v1/me", None).await;
    assert_eq!(me["org_role"], Value::Null, "no one promoted themself");
}

/// A platform admin cannot disable themself or give up their own role (400); another platform
/// admin, or the bootstrap token, can.
#[tokio::test]
async fn a_platform_admin_cannot_lock_themself_out() {
    let api = Api::new().await;
    let p = people(&api).await;
    let (_, root) = api.token(&p.root, json!({"name": "root"})).await;
    let own = format!("/admin/v1/users/{}", p.root);
    for (body, param) in [
        (json!({"disabled": true}), "disabled"),
        (json!({"org_role": "finops"}), "org_role"),
        (json!({"org_role": null}), "org_role"),
        (json!({"name": "Root", "disabled": true}), "disabled"),
    ] {
        let (s, v) = api
            .call(Method::PATCH, &own, &root, Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}");
    }
    let me = api.ok_as(&root, Method::GET, "/admin/v1/me", None).await;
    assert_eq!(me["org_role"], "platform_admin", "nothing changed");
    // Keeping the role, renaming, enabling: fine.
    let v = api
        .ok_as(
            &root,
            Method::PATCH,
            &own,
            Some(json!({"org_role": "platform_admin", "name": "Root 2", "disabled": false})),
        )
        .await;
    assert_eq!(v["name"], "Root 2");

    // The bootstrap token can.
    api.ok(Method::PATCH, &own, json!({"disabled": true})).await;
    assert_eq!(api.me(&root).await, StatusCode::UNAUTHORIZED);
    api.ok(Method::PATCH, &own, json!({"disabled": false}))
        .await;
    assert_eq!(api.me(&root).await, StatusCode::OK);
}

/// Bad input on the new routes gets a 400 naming the field.
#[tokio::test]
async fn bad_input_on_users_and_tokens() {
    let api = Api::new().await;
    let p = people(&api).await;
    let user = format!("/admin/v1/users/{}", p.ana);
    let tokens = format!("{user}/tokens");
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"name": ""})),
            "name",
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"name": "x".repeat(101)})),
            "name",
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"name": " Ana"})),
            "name",
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"name": "A\u{202E}na"})),
            "name",
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"org_role": "boss"})),
            "org_role",
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"disabled": "yes"})),
            "disabled",
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"email": "a@b.c"})),
            "email",
        ),
        (
            Method::POST,
            tokens.clone(),
            Some(json!({"name": "x".repeat(101)})),
            "name",
        ),
        (
            Method::POST,
            tokens.clone(),
            Some(json!({"name": "t", "lifetime": 5})),
            "lifetime",
        ),
        (Method::GET, format!("{tokens}?limit=0"), None, "limit"),
        (Method::GET, format!("{tokens}?user=x"), None, "user"),
    ];
    for (method, path, body, param) in cases {
        let (s, v) = api
            .call(method.clone(), &path, &api.admin, body.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path} {body:?}: {v}");
        assert_eq!(v["error"]["param"], param, "{method} {path} {body:?}: {v}");
    }
    let shown = api
        .ok_as(&api.admin.clone(), Method::GET, &user, None)
        .await;
    assert_eq!(shown["name"], "ana@example.com", "nothing changed");
    let (s, _) = api
        .call(
            Method::PATCH,
            "/admin/v1/users/usr_nope",
            &api.admin,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Every action of the lifecycle is in the audit trail, by whom and on whom, with what changed,
/// and no secret or hash anywhere in it.
#[tokio::test]
async fn every_lifecycle_action_is_audited_without_secrets() {
    let api = Api::new().await;
    let p = people(&api).await;
    let (_, root) = api.token(&p.root, json!({"name": "root"})).await;
    let (t1, ana1) = api.token(&p.ana, json!({"name": "1"})).await;
    let child = api
        .ok_as(
            &ana1,
            Method::POST,
            &format!("/admin/v1/users/{}/tokens", p.ana),
            Some(json!({"name": "child"})),
        )
        .await;
    let child_secret = child["secret"].as_str().unwrap().to_string();
    let user = format!("/admin/v1/users/{}", p.ana);
    api.ok_as(
        &root,
        Method::POST,
        &format!("{user}/tokens/{t1}/revoke"),
        None,
    )
    .await;
    api.ok_as(
        &root,
        Method::PATCH,
        &user,
        Some(json!({"disabled": true, "org_role": "finops"})),
    )
    .await;
    api.ok_as(
        &root,
        Method::PATCH,
        &user,
        Some(json!({"disabled": false, "name": "Ana B"})),
    )
    .await;
    // A change that changes nothing is not an event.
    api.ok_as(&root, Method::PATCH, &user, Some(json!({"name": "Ana B"})))
        .await;

    let events = api.audit().await;
    let of = |action: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["action"] == action && e["object_id"] == p.ana.as_str())
            .collect()
    };
    let created = of("token.create");
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(
        created[1]["actor"],
        p.ana.as_str(),
        "issued by her own token"
    );
    assert_eq!(created[1]["details"]["token_id"], child["id"]);
    assert_eq!(
        created[1]["details"]["expires_at"],
        parse_rfc3339(child["expires_at"].as_str().unwrap()).unwrap()
    );
    let revoked = of("token.revoke");
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        (
            &revoked[0]["actor"],
            &revoked[0]["object_type"],
            &revoked[0]["details"]["token_id"]
        ),
        (&json!(p.root), &json!("user"), &json!(t1))
    );
    let updates = of("user.update");
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(updates[0]["actor"], p.root.as_str());
    assert_eq!(
        updates[0]["details"]["changes"],
        json!({"disabled": {"from": false, "to": true}, "org_role": {"from": null, "to": "finops"}})
    );
    assert_eq!(
        updates[1]["details"]["changes"],
        json!({"disabled": {"from": true, "to": false}, "name": {"from": "ana@example.com", "to": "Ana B"}})
    );

    let text = serde_json::to_string(&events).unwrap();
    for secret in [&root, &ana1, &child_secret] {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in the audit trail"
        );
        assert!(
            !text.contains(&api.control.secret.hash(secret)),
            "a token hash in the audit trail"
        );
    }
}

/// A personal token works until its `expires_at` and not a millisecond after (on a manual clock).
#[tokio::test]
async fn an_expired_token_no_longer_authenticates() {
    let clock = tollgate_types::clock::Clock::manual(now_ms());
    let api = Api::at(clock.clone()).await;
    let p = people(&api).await;
    let (_, short) = api
        .token(
            &p.ana,
            json!({"name": "short", "expires_at": rfc3339(clock.now_ms() + HOUR_MS)}),
        )
        .await;
    let me = |t: String| {
        let api = &api;
        async move { api.call(Method::GET, "/admin/v1/me", &t, None).await.0 }
    };
    assert_eq!(me(short.clone()).await, StatusCode::OK);
    clock.advance(std::time::Duration::from_millis(HOUR_MS as u64 - 1));
    assert_eq!(
        me(short.clone()).await,
        StatusCode::OK,
        "the last millisecond"
    );
    clock.advance(std::time::Duration::from_millis(1));
    assert_eq!(me(short).await, StatusCode::UNAUTHORIZED, "expired");
}

/// The limits on `expires_at` are exact (on a manual clock): now is refused as not in the future,
/// the next millisecond and exactly 90 days are accepted, a millisecond past 90 days is refused.
#[tokio::test]
async fn token_expiry_limits_are_exact_to_the_millisecond() {
    let clock = tollgate_types::clock::Clock::manual(now_ms());
    let api = Api::at(clock.clone()).await;
    let p = people(&api).await;
    let path = format!("/admin/v1/users/{}/tokens", p.ana);
    let now = clock.now_ms();
    for (at, want) in [
        (now, StatusCode::BAD_REQUEST),
        (now + 1, StatusCode::CREATED),
        (now + 90 * DAY_MS, StatusCode::CREATED),
        (now + 90 * DAY_MS + 1, StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = api
            .call(
                Method::POST,
                &path,
                &api.admin,
                Some(json!({"name": "edge", "expires_at": rfc3339(at)})),
            )
            .await;
        assert_eq!(s, want, "expires_at = now + {} ms: {v}", at - now);
        if s == StatusCode::CREATED {
            assert_eq!(expiry(&v), at);
        } else {
            assert_eq!(v["error"]["param"], "expires_at");
        }
    }
}

/// A user holds at most 20 active tokens: the 21st is refused (409 `too_many_tokens`) whoever
/// asks, and a token that expires (on a manual clock) or is revoked makes room for one more.
#[tokio::test]
async fn a_user_holds_at_most_20_active_tokens() {
    assert_eq!(MAX_ACTIVE_TOKENS, 20);
    let clock = tollgate_types::clock::Clock::manual(now_ms());
    let api = Api::at(clock.clone()).await;
    let p = people(&api).await;
    let path = format!("/admin/v1/users/{}/tokens", p.ana);
    let (_, short) = api
        .token(
            &p.ana,
            json!({"name": "short", "expires_at": rfc3339(clock.now_ms() + HOUR_MS)}),
        )
        .await;
    let mut ids = Vec::new();
    for i in 1..MAX_ACTIVE_TOKENS {
        ids.push(api.token(&p.ana, json!({"name": format!("t{i}")})).await.0);
    }
    let refused = |token: String| {
        let (api, path) = (&api, &path);
        async move {
            let (s, v) = api
                .call(
                    Method::POST,
                    path,
                    &token,
                    Some(json!({"name": "one more"})),
                )
                .await;
            assert_eq!(s, StatusCode::CONFLICT, "{v}");
            assert_eq!(v["error"]["code"], "too_many_tokens", "{v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("20 active"),
                "{v}"
            );
        }
    };
    // Neither the admin nor Ana herself gets a 21st.
    refused(api.admin.clone()).await;
    refused(short.clone()).await;
    // Another user is not affected.
    api.token(&p.bo, json!({"name": "bo's"})).await;
    // Revoked: room for one.
    api.ok(
        Method::POST,
        &format!("{path}/{}/revoke", ids[0]),
        json!({}),
    )
    .await;
    api.token(&p.ana, json!({"name": "after revoke"})).await;
    refused(api.admin.clone()).await;
    // Expired: room for one.
    clock.advance(std::time::Duration::from_millis(HOUR_MS as u64));
    api.token(&p.ana, json!({"name": "after expiry"})).await;
    refused(api.admin.clone()).await;
    // Every token is still listed, revoked and expired ones too.
    let listed = api
        .ok_as(&api.admin.clone(), Method::GET, &path, None)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 22);
    // Thirty asked at once: exactly twenty issued.
    let fin_path = format!("/admin/v1/users/{}/tokens", p.fin);
    let statuses = futures_util::future::join_all((0..30).map(|i| {
        let (api, path) = (&api, &fin_path);
        async move {
            api.call(
                Method::POST,
                path,
                &api.admin,
                Some(json!({"name": format!("race{i}")})),
            )
            .await
            .0
        }
    }))
    .await;
    let issued = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((issued, refused), (20, 10), "{statuses:?}");
}

/// Every page of a user's tokens is counted: with 200 expired tokens filling the first page of
/// the list, the 20 active ones on the next still hold the limit.
#[tokio::test]
async fn active_tokens_past_the_first_page_count_too() {
    let clock = tollgate_types::clock::Clock::manual(now_ms());
    let api = Api::at(clock.clone()).await;
    let p = people(&api).await;
    let path = format!("/admin/v1/users/{}/tokens", p.ana);
    for round in 0..10 {
        for i in 0..MAX_ACTIVE_TOKENS {
            let at = rfc3339(clock.now_ms() + 1);
            api.token(
                &p.ana,
                json!({"name": format!("old {round}.{i}"), "expires_at": at}),
            )
            .await;
        }
        clock.advance(std::time::Duration::from_millis(1));
    }
    for i in 0..MAX_ACTIVE_TOKENS {
        api.token(&p.ana, json!({"name": format!("t{i}")})).await;
    }
    let (s, v) = api
        .call(
            Method::POST,
            &path,
            &api.admin,
            Some(json!({"name": "one more"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "too_many_tokens", "{v}");
}
