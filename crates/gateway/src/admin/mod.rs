//! The control plane: `/admin/v1`, REST over the store, described by OpenAPI 3.1 at
//! `/admin/v1/openapi.json` (generated from the handlers by utoipa).
//!
//! Authentication: `Authorization: Bearer <token>`, either the bootstrap admin token
//! (`TOLLGATE_ADMIN_TOKEN`; when unset, generated on first start, printed once, stored hashed) or a
//! personal token (`tgu_…`) of a user. Every route checks the caller's role ([`access`]); every
//! change is written to the audit trail by the store, in the same transaction.

pub mod access;
pub mod dto;
pub mod focus;
mod handlers;
pub mod time;

use crate::Gateway;
use crate::auth::bearer;
use crate::error::ApiError;
use access::Principal;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use std::sync::Arc;
use tollgate_store::{AuditQueries, KeyQueries, UserQueries, now_ms};
use utoipa::OpenApi;

/// The OpenAPI document of the admin API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate admin API", description = "Pods, users, use cases, stages and virtual keys."),
    paths(
        handlers::me,
        handlers::list_pods, handlers::create_pod, handlers::get_pod, handlers::update_pod,
        handlers::list_members, handlers::set_member, handlers::remove_member,
        handlers::list_users, handlers::create_user, handlers::get_user, handlers::create_token,
        handlers::list_use_cases, handlers::create_use_case, handlers::get_use_case, handlers::update_use_case,
        handlers::change_stage, handlers::list_stage_changes,
        handlers::list_keys, handlers::create_key, handlers::get_key, handlers::revoke_key, handlers::rotate_key,
        handlers::list_audit,
        handlers::list_budgets, handlers::create_budget, handlers::get_budget, handlers::delete_budget,
        handlers::spend_report, handlers::focus_export, handlers::forecast, handlers::advice,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

async fn openapi(_: Principal) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
        .into_response()
}

/// The `/admin/v1` routes.
pub fn router() -> Router<Arc<Gateway>> {
    use handlers::*;
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/me", get(me))
        .route("/admin/v1/pods", get(list_pods).post(create_pod))
        .route("/admin/v1/pods/{id}", get(get_pod).patch(update_pod))
        .route("/admin/v1/pods/{id}/members", get(list_members))
        .route(
            "/admin/v1/pods/{id}/members/{user_id}",
            put(set_member).delete(remove_member),
        )
        .route("/admin/v1/users", get(list_users).post(create_user))
        .route("/admin/v1/users/{id}", get(get_user))
        .route("/admin/v1/users/{id}/tokens", post(create_token))
        .route(
            "/admin/v1/use-cases",
            get(list_use_cases).post(create_use_case),
        )
        .route(
            "/admin/v1/use-cases/{id}",
            get(get_use_case).patch(update_use_case),
        )
        .route("/admin/v1/use-cases/{id}/stage", post(change_stage))
        .route(
            "/admin/v1/use-cases/{id}/stage-changes",
            get(list_stage_changes),
        )
        .route("/admin/v1/keys", get(list_keys).post(create_key))
        .route("/admin/v1/keys/{id}", get(get_key))
        .route("/admin/v1/keys/{id}/revoke", post(revoke_key))
        .route("/admin/v1/keys/{id}/rotate", post(rotate_key))
        .route("/admin/v1/audit", get(list_audit))
        .route("/admin/v1/budgets", get(list_budgets).post(create_budget))
        .route(
            "/admin/v1/budgets/{id}",
            get(get_budget).delete(delete_budget),
        )
        .route("/admin/v1/reports/spend", get(spend_report))
        .route("/admin/v1/reports/focus", get(focus_export))
        .route("/admin/v1/reports/forecast", get(forecast))
        .route("/admin/v1/reports/advice", get(advice))
}

impl FromRequestParts<Arc<Gateway>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(ApiError::MissingKey)?;
        let hash = gw.keyring.secret().hash(token);
        if hash == gw.admin_token_hash {
            return Ok(Principal::Admin);
        }
        let Some(t) = gw.store.token_by_hash(&hash, now_ms()).await? else {
            return Err(ApiError::InvalidKey);
        };
        let user = gw.store.get_user(&t.user_id).await?;
        let pods = gw
            .store
            .memberships_of(&user.id)
            .await?
            .into_iter()
            .map(|m| (m.pod_id, m.role))
            .collect();
        Ok(Principal::User {
            id: user.id,
            org_role: user.org_role,
            pods,
        })
    }
}

/// The bootstrap admin token's hash: from `TOLLGATE_ADMIN_TOKEN`, else the one stored on an
/// earlier start, else a new one. Returns the hash and, only when it was just generated, the token.
pub async fn bootstrap_token(
    store: &tollgate_store::Store,
    secret: &crate::keys::KeySecret,
) -> Result<(String, Option<String>), tollgate_store::StoreError> {
    if let Ok(t) = std::env::var("TOLLGATE_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok((secret.hash(t.trim()), None));
    }
    if let Some(h) = store.get_setting("admin_token_hmac").await? {
        return Ok((h, None));
    }
    let k = crate::keys::generate(secret, "tga");
    let stored = store.init_setting("admin_token_hmac", &k.hash).await?;
    if stored == k.hash {
        store
            .append_audit(
                "system",
                "admin_token.generate",
                "settings",
                "admin_token_hmac",
                serde_json::json!({"prefix": k.prefix}),
            )
            .await?;
        Ok((stored, Some(k.plaintext)))
    } else {
        // Another instance generated it first; it printed it.
        Ok((stored, None))
    }
}
