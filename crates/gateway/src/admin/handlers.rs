//! Admin API handlers: check the role, validate, call the store, reload the key snapshot when keys
//! or use cases changed, answer.

use super::access::Principal;
use super::dto::*;
use super::time::parse_rfc3339;
use crate::Gateway;
use crate::error::ApiError;
use crate::extract::{parse_json, read_body};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_store::{
    self as m, AuditQueries, BudgetQueries, KeyQueries, LedgerQueries, PageRequest, PodQueries,
    UseCaseQueries, UserQueries,
};

type Result<T> = std::result::Result<T, ApiError>;
type Gw = State<Arc<Gateway>>;

async fn body<T: DeserializeOwned>(gw: &Gateway, headers: &HeaderMap, body: Body) -> Result<T> {
    let bytes = read_body(headers, body, gw.config.server.max_body_bytes).await?;
    parse_json(&bytes)
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn name_ok(field: &str, v: &str) -> Result<()> {
    let n = v.trim().chars().count();
    if n == 0 || n > 100 || v.trim() != v {
        return Err(ApiError::invalid(
            format!("`{field}` must be 1–100 characters without leading or trailing spaces"),
            Some(field.into()),
        ));
    }
    Ok(())
}

fn text_ok(field: &str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            format!("`{field}` must be at most {max} characters"),
            Some(field.into()),
        ));
    }
    Ok(())
}

fn future_time(field: &str, v: Option<&str>) -> Result<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    let t = parse_rfc3339(v).ok_or_else(|| {
        ApiError::invalid(
            format!("`{field}` must be an RFC 3339 time like 2030-01-31T00:00:00Z"),
            Some(field.into()),
        )
    })?;
    if t <= m::now_ms() {
        return Err(ApiError::invalid(
            format!("`{field}` must be in the future"),
            Some(field.into()),
        ));
    }
    Ok(Some(t))
}

/// List query parameters: `after`, `limit`, and the filters an endpoint names.
fn list_query(q: &HashMap<String, String>, filters: &[&str]) -> Result<PageRequest> {
    for k in q.keys() {
        if k != "after" && k != "limit" && !filters.contains(&k.as_str()) {
            return Err(ApiError::invalid(
                format!("unknown query parameter `{k}`"),
                Some(k.clone()),
            ));
        }
    }
    let limit = match q.get("limit") {
        None => 0,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "`limit` must be a whole number from 1 to 200",
                    Some("limit".into()),
                )
            })?,
    };
    Ok(PageRequest {
        after: q.get("after").cloned(),
        limit,
    })
}

fn check_scores(s: &Option<m::Scores>) -> Result<()> {
    if let Some(field) = s.as_ref().and_then(m::Scores::out_of_range) {
        return Err(ApiError::invalid(
            format!("`scores.{field}` must be from 1 to 5"),
            Some(format!("scores.{field}")),
        ));
    }
    Ok(())
}

fn check_caps(c: &Option<m::PilotCaps>) -> Result<()> {
    if let Some(c) = c
        && (c.max_end_users_per_day == Some(0) || c.max_requests_per_day == Some(0))
    {
        return Err(ApiError::invalid(
            "pilot caps must be at least 1 (leave a cap out for none)",
            Some("pilot_caps".into()),
        ));
    }
    Ok(())
}

fn check_limits(field: &str, l: &Option<m::Limits>) -> Result<()> {
    if let Some(l) = l
        && (l.requests_per_minute == Some(0)
            || l.tokens_per_minute == Some(0)
            || l.concurrent_requests == Some(0))
    {
        return Err(ApiError::invalid(
            "limits must be at least 1 (leave a limit out for none)",
            Some(field.into()),
        ));
    }
    Ok(())
}

fn check_routes(gw: &Gateway, field: &str, routes: &[String]) -> Result<()> {
    for (i, r) in routes.iter().enumerate() {
        if gw.route_index(r).is_none() {
            return Err(ApiError::invalid(
                format!("unknown route `{r}`: routes come from the gateway's config"),
                Some(format!("{field}[{i}]")),
            ));
        }
    }
    Ok(())
}

// ---- me ----

#[utoipa::path(get, path = "/admin/v1/me", tag = "me", responses((status = 200, body = Me), (status = 401, body = ErrorResponse)))]
/// Who the token belongs to.
pub async fn me(p: Principal) -> Json<Me> {
    let (org_role, pods) = match &p {
        Principal::Admin => (Some(m::OrgRole::PlatformAdmin), Vec::new()),
        Principal::User { org_role, pods, .. } => (
            *org_role,
            pods.iter()
                .map(|(pod_id, role)| PodMembership {
                    pod_id: pod_id.clone(),
                    role: *role,
                })
                .collect(),
        ),
    };
    Json(Me {
        actor: p.actor(),
        org_role,
        pods,
    })
}

// ---- pods ----

#[utoipa::path(get, path = "/admin/v1/pods", tag = "pods",
    params(("after" = Option<String>, Query, description = "cursor"), ("limit" = Option<u32>, Query, description = "1–200")),
    responses((status = 200, body = PodPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Pods the caller may read.
pub async fn list_pods(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PodPage>> {
    let page = list_query(&q, &[])?;
    let visible = p.visible_pods();
    Ok(Json(
        gw.store.list_pods(visible.as_deref(), &page).await?.into(),
    ))
}

#[utoipa::path(post, path = "/admin/v1/pods", tag = "pods", request_body = CreatePod,
    responses((status = 201, body = Pod), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Creates a pod (platform admin).
pub async fn create_pod(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    p.require_admin()?;
    let req: CreatePod = body(&gw, &headers, b).await?;
    name_ok("name", &req.name)?;
    text_ok("description", &req.description, 2000)?;
    Ok(created(Pod::from(
        gw.store
            .create_pod(&p.actor(), &req.name, &req.description)
            .await?,
    )))
}

async fn readable_pod(gw: &Gateway, p: &Principal, id: &str) -> Result<m::Pod> {
    if !p.can_read(id) {
        return Err(ApiError::Missing(format!("pod {id}")));
    }
    gw.store.get_pod(id).await.map_err(|e| match e {
        m::StoreError::NotFound(_) => ApiError::Missing(format!("pod {id}")),
        e => e.into(),
    })
}

#[utoipa::path(get, path = "/admin/v1/pods/{id}", tag = "pods", params(("id" = String, Path)),
    responses((status = 200, body = Pod), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One pod.
pub async fn get_pod(State(gw): Gw, p: Principal, Path(id): Path<String>) -> Result<Json<Pod>> {
    Ok(Json(readable_pod(&gw, &p, &id).await?.into()))
}

#[utoipa::path(patch, path = "/admin/v1/pods/{id}", tag = "pods", params(("id" = String, Path)), request_body = UpdatePod,
    responses((status = 200, body = Pod), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Renames or re-describes a pod (its lead, or a platform admin).
pub async fn update_pod(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<Pod>> {
    readable_pod(&gw, &p, &id).await?;
    p.check(&id, &format!("pod {id}"), p.can_manage(&id))?;
    let req: UpdatePod = body(&gw, &headers, b).await?;
    if let Some(n) = &req.name {
        name_ok("name", n)?;
    }
    if let Some(d) = &req.description {
        text_ok("description", d, 2000)?;
    }
    Ok(Json(
        gw.store
            .update_pod(
                &p.actor(),
                &id,
                req.name.as_deref(),
                req.description.as_deref(),
            )
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/admin/v1/pods/{id}/members", tag = "pods", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Member>), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Members of a pod.
pub async fn list_members(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Member>>> {
    readable_pod(&gw, &p, &id).await?;
    Ok(Json(
        gw.store
            .list_members(&id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(put, path = "/admin/v1/pods/{id}/members/{user_id}", tag = "pods", params(("id" = String, Path), ("user_id" = String, Path)), request_body = SetMember,
    responses((status = 200, body = Member), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Adds a member or changes their role (the pod's lead, or a platform admin).
pub async fn set_member(
    State(gw): Gw,
    p: Principal,
    Path((id, user_id)): Path<(String, String)>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<Member>> {
    readable_pod(&gw, &p, &id).await?;
    p.check(&id, &format!("pod {id}"), p.can_manage(&id))?;
    let req: SetMember = body(&gw, &headers, b).await?;
    gw.store
        .get_user(&user_id)
        .await
        .map_err(|_| ApiError::Missing(format!("user {user_id}")))?;
    Ok(Json(
        gw.store
            .set_member(&p.actor(), &id, &user_id, req.role)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/admin/v1/pods/{id}/members/{user_id}", tag = "pods", params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Removes a member (the pod's lead, or a platform admin).
pub async fn remove_member(
    State(gw): Gw,
    p: Principal,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    readable_pod(&gw, &p, &id).await?;
    p.check(&id, &format!("pod {id}"), p.can_manage(&id))?;
    gw.store
        .remove_member(&p.actor(), &id, &user_id)
        .await
        .map_err(|e| match e {
            m::StoreError::NotFound(_) => {
                ApiError::Missing(format!("member {user_id} of pod {id}"))
            }
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- users ----

/// Users the caller may see: everyone for org-wide roles; else the members of their pods.
async fn visible_users(gw: &Gateway, p: &Principal) -> Result<Option<Vec<String>>> {
    let Some(pods) = p.visible_pods() else {
        return Ok(None);
    };
    let mut ids = Vec::new();
    for pod in pods {
        ids.extend(
            gw.store
                .list_members(&pod)
                .await?
                .into_iter()
                .map(|m| m.user_id),
        );
    }
    if let Principal::User { id, .. } = p {
        ids.push(id.clone());
    }
    Ok(Some(ids))
}

#[utoipa::path(get, path = "/admin/v1/users", tag = "users",
    params(("after" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Users the caller may see.
pub async fn list_users(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<UserPage>> {
    let page = list_query(&q, &[])?;
    let ids = visible_users(&gw, &p).await?;
    Ok(Json(
        gw.store.list_users(ids.as_deref(), &page).await?.into(),
    ))
}

#[utoipa::path(post, path = "/admin/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Creates a user (platform admin).
pub async fn create_user(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    p.require_admin()?;
    let req: CreateUser = body(&gw, &headers, b).await?;
    let email = req.email.trim();
    if email.len() > 254
        || email.split('@').count() != 2
        || email.starts_with('@')
        || email.ends_with('@')
        || email.contains(char::is_whitespace)
    {
        return Err(ApiError::invalid(
            "`email` must be an e-mail address",
            Some("email".into()),
        ));
    }
    name_ok("name", &req.name)?;
    Ok(created(User::from(
        gw.store
            .create_user(&p.actor(), email, &req.name, req.org_role)
            .await?,
    )))
}

#[utoipa::path(get, path = "/admin/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One user.
pub async fn get_user(State(gw): Gw, p: Principal, Path(id): Path<String>) -> Result<Json<User>> {
    if let Some(ids) = visible_users(&gw, &p).await?
        && !ids.contains(&id)
    {
        return Err(ApiError::Missing(format!("user {id}")));
    }
    let u = gw
        .store
        .get_user(&id)
        .await
        .map_err(|_| ApiError::Missing(format!("user {id}")))?;
    Ok(Json(u.into()))
}

#[utoipa::path(post, path = "/admin/v1/users/{id}/tokens", tag = "users", params(("id" = String, Path)), request_body = CreateToken,
    responses((status = 201, body = NewToken), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Issues a personal admin token (a platform admin for anyone; a user for themselves).
pub async fn create_token(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    let own = matches!(&p, Principal::User { id: me, .. } if *me == id);
    if !own {
        if visible_users(&gw, &p)
            .await?
            .is_some_and(|ids| !ids.contains(&id))
        {
            return Err(ApiError::Missing(format!("user {id}")));
        }
        p.require_admin()?;
    }
    let req: CreateToken = body(&gw, &headers, b).await?;
    name_ok("name", &req.name)?;
    let expires_at = future_time("expires_at", req.expires_at.as_deref())?;
    gw.store
        .get_user(&id)
        .await
        .map_err(|_| ApiError::Missing(format!("user {id}")))?;
    let k = crate::keys::generate(gw.keyring.secret(), "tgu");
    let token = m::UserToken {
        id: m::new_id("tok"),
        user_id: id.clone(),
        name: req.name.clone(),
        prefix: k.prefix.clone(),
        hash: k.hash,
        expires_at,
        revoked_at: None,
        created_at: m::now_ms(),
    };
    gw.store.create_token(&p.actor(), &token).await?;
    Ok(created(NewToken {
        id: token.id,
        user_id: id,
        name: req.name,
        prefix: k.prefix,
        expires_at: expires_at.map(super::time::rfc3339),
        secret: k.plaintext,
    }))
}

// ---- use cases ----

async fn readable_use_case(gw: &Gateway, p: &Principal, id: &str) -> Result<m::UseCase> {
    let uc = gw.store.get_use_case(id).await.map_err(|e| match e {
        m::StoreError::NotFound(_) => ApiError::Missing(format!("use case {id}")),
        e => e.into(),
    })?;
    if !p.can_read(&uc.pod_id) {
        return Err(ApiError::Missing(format!("use case {id}")));
    }
    Ok(uc)
}

/// A use case the caller may change: 404 if they cannot see it, 403 if they may only read it.
async fn managed_use_case(gw: &Gateway, p: &Principal, id: &str) -> Result<m::UseCase> {
    let uc = readable_use_case(gw, p, id).await?;
    p.check(
        &uc.pod_id,
        &format!("use case {id}"),
        p.can_manage(&uc.pod_id),
    )?;
    Ok(uc)
}

/// Checks the fields of a new or changed use case (absent fields are not checked).
fn check_use_case(gw: &Gateway, u: &m::UseCasePatch) -> Result<()> {
    if let Some(n) = &u.name {
        name_ok("name", n)?;
    }
    if let Some(d) = &u.description {
        text_ok("description", d, 4000)?;
    }
    check_scores(&u.scores)?;
    check_caps(&u.pilot_caps)?;
    check_limits("limits", &u.limits)?;
    if let Some(r) = &u.routes {
        check_routes(gw, "routes", r)?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/admin/v1/use-cases", tag = "use cases",
    params(("after" = Option<String>, Query), ("limit" = Option<u32>, Query), ("pod_id" = Option<String>, Query), ("stage" = Option<String>, Query, description = "proposed | pilot | production | retired")),
    responses((status = 200, body = UseCasePage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Use cases the caller may read, filtered.
pub async fn list_use_cases(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<UseCasePage>> {
    let page = list_query(&q, &["pod_id", "stage"])?;
    let stage = match q.get("stage") {
        None => None,
        Some(s) => Some(m::Stage::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "`stage` must be proposed, pilot, production or retired",
                Some("stage".into()),
            )
        })?),
    };
    let pod_ids = match (q.get("pod_id"), p.visible_pods()) {
        (Some(pod), Some(v)) => Some(if v.contains(pod) {
            vec![pod.clone()]
        } else {
            Vec::new()
        }),
        (Some(pod), None) => Some(vec![pod.clone()]),
        (None, v) => v,
    };
    let filter = m::UseCaseFilter { pod_ids, stage };
    Ok(Json(gw.store.list_use_cases(&filter, &page).await?.into()))
}

#[utoipa::path(post, path = "/admin/v1/use-cases", tag = "use cases", request_body = CreateUseCase,
    responses((status = 201, body = UseCase), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Proposes a use case in a pod (its lead, or a platform admin).
pub async fn create_use_case(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    let req: CreateUseCase = body(&gw, &headers, b).await?;
    readable_pod(&gw, &p, &req.pod_id).await?;
    p.check(
        &req.pod_id,
        &format!("pod {}", req.pod_id),
        p.can_manage(&req.pod_id),
    )?;
    check_use_case(
        &gw,
        &m::UseCasePatch {
            name: Some(req.name.clone()),
            description: Some(req.description.clone()),
            value_model: None,
            scores: req.scores,
            routes: Some(req.routes.clone()),
            pilot_caps: req.pilot_caps,
            limits: req.limits,
        },
    )?;
    let uc = gw
        .store
        .create_use_case(
            &p.actor(),
            &req.pod_id,
            &req.name,
            &req.description,
            &req.value_model.unwrap_or_default(),
            &req.scores.unwrap_or_default(),
            &req.routes,
            &req.pilot_caps.unwrap_or_default(),
            &req.limits.unwrap_or_default(),
        )
        .await?;
    Ok(created(UseCase::from(uc)))
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}", tag = "use cases", params(("id" = String, Path)),
    responses((status = 200, body = UseCase), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One use case.
pub async fn get_use_case(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<UseCase>> {
    Ok(Json(readable_use_case(&gw, &p, &id).await?.into()))
}

#[utoipa::path(patch, path = "/admin/v1/use-cases/{id}", tag = "use cases", params(("id" = String, Path)), request_body = UpdateUseCase,
    responses((status = 200, body = UseCase), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Changes a use case (its pod's lead, or a platform admin).
pub async fn update_use_case(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<UseCase>> {
    managed_use_case(&gw, &p, &id).await?;
    let req: UpdateUseCase = body(&gw, &headers, b).await?;
    let patch = m::UseCasePatch {
        name: req.name,
        description: req.description,
        value_model: req.value_model,
        scores: req.scores,
        routes: req.routes,
        pilot_caps: req.pilot_caps,
        limits: req.limits,
    };
    check_use_case(&gw, &patch)?;
    let uc = gw.store.update_use_case(&p.actor(), &id, &patch).await?;
    let _ = gw.keyring.reload().await;
    Ok(Json(uc.into()))
}

#[utoipa::path(post, path = "/admin/v1/use-cases/{id}/stage", tag = "use cases", params(("id" = String, Path)), request_body = ChangeStage,
    responses((status = 200, body = UseCase), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Moves a use case to another stage, recording who, when and why (its pod's lead, or a platform
/// admin). Allowed: proposed→pilot|retired, pilot→production|proposed|retired, production→pilot|retired.
pub async fn change_stage(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<UseCase>> {
    managed_use_case(&gw, &p, &id).await?;
    let req: ChangeStage = body(&gw, &headers, b).await?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::invalid(
            "`reason` must say why the stage changes",
            Some("reason".into()),
        ));
    }
    text_ok("reason", &req.reason, 2000)?;
    let (uc, _) = gw
        .store
        .change_stage(&p.actor(), &id, req.to, &req.reason)
        .await
        .map_err(|e| match e {
            m::StoreError::Invalid(message) => ApiError::Conflict {
                message,
                code: "stage_transition_not_allowed",
            },
            e => e.into(),
        })?;
    let _ = gw.keyring.reload().await;
    Ok(Json(uc.into()))
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/stage-changes", tag = "use cases", params(("id" = String, Path)),
    responses((status = 200, body = Vec<StageChange>), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// The stage history of a use case.
pub async fn list_stage_changes(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<StageChange>>> {
    readable_use_case(&gw, &p, &id).await?;
    Ok(Json(
        gw.store
            .list_stage_changes(&id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

// ---- keys ----

#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys",
    params(("after" = Option<String>, Query), ("limit" = Option<u32>, Query), ("use_case_id" = Option<String>, Query), ("include_inactive" = Option<bool>, Query)),
    responses((status = 200, body = KeyPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Keys of the use cases the caller may read (never their secrets).
pub async fn list_keys(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<KeyPage>> {
    let page = list_query(&q, &["use_case_id", "include_inactive"])?;
    let include_inactive = match q.get("include_inactive").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "`include_inactive` must be true or false",
                Some("include_inactive".into()),
            ));
        }
    };
    let filter = m::KeyFilter {
        pod_ids: p.visible_pods(),
        use_case_id: q.get("use_case_id").cloned(),
        include_inactive,
    };
    Ok(Json(gw.store.list_keys(&filter, &page).await?.into()))
}

#[utoipa::path(post, path = "/admin/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = NewKey), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Issues a key for a use case; the secret is in this answer only (the pod's lead or builders, or
/// a platform admin).
pub async fn create_key(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    let req: CreateKey = body(&gw, &headers, b).await?;
    let uc = readable_use_case(&gw, &p, &req.use_case_id).await?;
    p.check(
        &uc.pod_id,
        &format!("use case {}", uc.id),
        p.can_issue_keys(&uc.pod_id),
    )?;
    name_ok("name", &req.name)?;
    if let Some(scopes) = &req.scopes {
        for (i, s) in scopes.iter().enumerate() {
            if !uc.routes.contains(s) {
                return Err(ApiError::invalid(
                    format!("scope `{s}` is not one of the use case's routes"),
                    Some(format!("scopes[{i}]")),
                ));
            }
        }
    }
    let expires_at = future_time("expires_at", req.expires_at.as_deref())?;
    if let Some(user) = &req.user_id {
        gw.store.get_user(user).await.map_err(|_| {
            ApiError::invalid(format!("unknown user `{user}`"), Some("user_id".into()))
        })?;
    }
    check_limits("limits", &req.limits)?;
    let (mut record, secret) = crate::keys::new_api_key(
        gw.keyring.secret(),
        &uc.id,
        req.user_id,
        &req.name,
        req.scopes,
        expires_at,
        &p.actor(),
    );
    record.limits = req.limits.unwrap_or_default();
    let key = gw.store.create_key(&p.actor(), &record).await?;
    let _ = gw.keyring.reload().await;
    Ok(created(NewKey {
        key: key.into(),
        secret,
    }))
}

async fn key_for_change(gw: &Gateway, p: &Principal, id: &str) -> Result<m::ApiKey> {
    let key = gw.store.get_key(id).await.map_err(|e| match e {
        m::StoreError::NotFound(_) => ApiError::Missing(format!("key {id}")),
        e => e.into(),
    })?;
    let uc = gw.store.get_use_case(&key.use_case_id).await?;
    p.check(
        &uc.pod_id,
        &format!("key {id}"),
        p.can_issue_keys(&uc.pod_id),
    )?;
    Ok(key)
}

#[utoipa::path(get, path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = Key), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One key (never its secret).
pub async fn get_key(State(gw): Gw, p: Principal, Path(id): Path<String>) -> Result<Json<Key>> {
    let key = gw
        .store
        .get_key(&id)
        .await
        .map_err(|_| ApiError::Missing(format!("key {id}")))?;
    let uc = gw.store.get_use_case(&key.use_case_id).await?;
    if !p.can_read(&uc.pod_id) {
        return Err(ApiError::Missing(format!("key {id}")));
    }
    Ok(Json(key.into()))
}

#[utoipa::path(post, path = "/admin/v1/keys/{id}/revoke", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = Key), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Revokes a key now; the next request with it is rejected.
pub async fn revoke_key(State(gw): Gw, p: Principal, Path(id): Path<String>) -> Result<Json<Key>> {
    key_for_change(&gw, &p, &id).await?;
    let key = gw.store.revoke_key(&p.actor(), &id, m::now_ms()).await?;
    let _ = gw.keyring.reload().await;
    Ok(Json(key.into()))
}

#[utoipa::path(post, path = "/admin/v1/keys/{id}/rotate", tag = "keys", params(("id" = String, Path)), request_body = RotateKey,
    responses((status = 201, body = Rotation), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Issues a replacement key; the old one keeps working for the grace period, then stops.
pub async fn rotate_key(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    let old = key_for_change(&gw, &p, &id).await?;
    let req: RotateKey = body(&gw, &headers, b).await?;
    let grace = req.grace_seconds.unwrap_or(3600);
    if grace > 604_800 {
        return Err(ApiError::invalid(
            "`grace_seconds` must be from 0 to 604800 (7 days)",
            Some("grace_seconds".into()),
        ));
    }
    let (mut record, secret) = crate::keys::new_api_key(
        gw.keyring.secret(),
        &old.use_case_id,
        old.user_id.clone(),
        &old.name,
        old.scopes.clone(),
        old.expires_at,
        &p.actor(),
    );
    record.limits = old.limits;
    let until = m::now_ms() + i64::try_from(grace).unwrap_or(0) * 1000;
    let (old, new) = gw
        .store
        .rotate_key(&p.actor(), &id, &record, until)
        .await
        .map_err(|e| match e {
            m::StoreError::Invalid(message) => ApiError::Conflict {
                message,
                code: "key_not_rotatable",
            },
            e => e.into(),
        })?;
    let _ = gw.keyring.reload().await;
    Ok(created(Rotation {
        old: old.into(),
        new: NewKey {
            key: new.into(),
            secret,
        },
    }))
}

// ---- audit ----

#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit",
    params(("after" = Option<i64>, Query, description = "sequence number"), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = Vec<AuditEvent>), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
/// The audit trail, oldest first (platform admins, auditors, risk officers).
pub async fn list_audit(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<AuditEvent>>> {
    if !p.reads_audit() {
        return Err(ApiError::Forbidden {
            message: "only platform admins, auditors and risk officers read the audit trail".into(),
            code: "role_forbids",
        });
    }
    let page = list_query(&q, &[])?;
    let after = match q.get("after") {
        None => 0,
        Some(a) => a.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::invalid("`after` must be a sequence number", Some("after".into()))
        })?,
    };
    Ok(Json(
        gw.store
            .list_audit(after, page.size())
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

// ---- budgets ----

/// The pod a budget's scope belongs to (`None` for org budgets), or 404 if the scope is gone.
async fn budget_pod(gw: &Gateway, scope: &str, scope_id: &str) -> Result<Option<String>> {
    Ok(match scope {
        "pod" => Some(
            gw.store
                .get_pod(scope_id)
                .await
                .map_err(|_| ApiError::Missing(format!("pod {scope_id}")))?
                .id,
        ),
        "use_case" => Some(
            gw.store
                .get_use_case(scope_id)
                .await
                .map_err(|_| ApiError::Missing(format!("use case {scope_id}")))?
                .pod_id,
        ),
        "key" => {
            let k = gw
                .store
                .get_key(scope_id)
                .await
                .map_err(|_| ApiError::Missing(format!("key {scope_id}")))?;
            Some(gw.store.get_use_case(&k.use_case_id).await?.pod_id)
        }
        _ => None,
    })
}

async fn budget_visible(gw: &Gateway, p: &Principal, b: &m::Budget) -> bool {
    if p.reads_all() {
        return true;
    }
    match budget_pod(gw, &b.scope, &b.scope_id).await {
        Ok(Some(pod)) => p.can_read(&pod),
        _ => false,
    }
}

fn require_budget_role(p: &Principal) -> Result<()> {
    if p.manages_budgets() {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: "only platform admins and finops manage budgets".into(),
            code: "role_forbids",
        })
    }
}

#[utoipa::path(get, path = "/admin/v1/budgets", tag = "budgets",
    responses((status = 200, body = Vec<Budget>), (status = 401, body = ErrorResponse)))]
/// Budgets the caller may read, with their spend in the current period.
pub async fn list_budgets(State(gw): Gw, p: Principal) -> Result<Json<Vec<Budget>>> {
    let mut out = Vec::new();
    for s in gw.budgeter.statuses() {
        if budget_visible(&gw, &p, &s.budget).await {
            out.push(Budget::from_status(s));
        }
    }
    Ok(Json(out))
}

#[utoipa::path(post, path = "/admin/v1/budgets", tag = "budgets", request_body = CreateBudget,
    responses((status = 201, body = Budget), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Creates a budget (platform admins and finops).
pub async fn create_budget(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    require_budget_role(&p)?;
    let req: CreateBudget = body(&gw, &headers, b).await?;
    let amount = tollgate_meter::Money::parse_usd(&req.amount_usd).map_err(|e| {
        ApiError::invalid(
            format!("`amount_usd` must be a non-negative USD amount: {e}"),
            Some("amount_usd".into()),
        )
    })?;
    if amount.nanos() == 0 {
        return Err(ApiError::invalid(
            "`amount_usd` must be greater than 0",
            Some("amount_usd".into()),
        ));
    }
    let time_zone = req.time_zone.clone().unwrap_or_else(|| "UTC".into());
    tollgate_meter::period::time_zone(&time_zone)
        .map_err(|e| ApiError::invalid(e, Some("time_zone".into())))?;
    let (scope, period, mode) = (
        serde_json::to_value(req.scope)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        serde_json::to_value(req.period)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        serde_json::to_value(req.mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    );
    let scope_id = match (req.scope, req.scope_id) {
        (BudgetScope::Org, None) => String::new(),
        (BudgetScope::Org, Some(_)) => {
            return Err(ApiError::invalid(
                "an org budget takes no `scope_id`",
                Some("scope_id".into()),
            ));
        }
        (_, None) => {
            return Err(ApiError::invalid(
                format!("a {scope} budget needs `scope_id`"),
                Some("scope_id".into()),
            ));
        }
        (_, Some(id)) => {
            budget_pod(&gw, &scope, &id).await?;
            id
        }
    };
    let budget = m::Budget {
        id: m::new_id("bud"),
        scope,
        scope_id,
        period,
        time_zone,
        amount_nano_usd: amount.nanos(),
        mode,
        created_at: m::now_ms(),
        created_by: p.actor(),
    };
    gw.store.create_budget(&p.actor(), &budget).await?;
    gw.budgeter.reload().await?;
    let status = gw
        .budgeter
        .statuses()
        .into_iter()
        .find(|s| s.budget.id == budget.id)
        .ok_or(ApiError::Internal)?;
    Ok(created(Budget::from_status(status)))
}

async fn visible_budget(gw: &Gateway, p: &Principal, id: &str) -> Result<crate::budgets::Status> {
    match gw
        .budgeter
        .statuses()
        .into_iter()
        .find(|s| s.budget.id == id)
    {
        Some(s) if budget_visible(gw, p, &s.budget).await => Ok(s),
        _ => Err(ApiError::Missing(format!("budget {id}"))),
    }
}

#[utoipa::path(get, path = "/admin/v1/budgets/{id}", tag = "budgets", params(("id" = String, Path)),
    responses((status = 200, body = Budget), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One budget and its spend in the current period.
pub async fn get_budget(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Budget>> {
    Ok(Json(Budget::from_status(
        visible_budget(&gw, &p, &id).await?,
    )))
}

#[utoipa::path(delete, path = "/admin/v1/budgets/{id}", tag = "budgets", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Deletes a budget (platform admins and finops).
pub async fn delete_budget(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    visible_budget(&gw, &p, &id).await?;
    require_budget_role(&p)?;
    gw.store.delete_budget(&p.actor(), &id).await?;
    gw.budgeter.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- reports ----

/// A calendar month (UTC) given as `2026-11` → its [start, end) in Unix ms.
fn month_bounds(month: &str) -> Result<(i64, i64)> {
    let bad = || ApiError::invalid("`month` must look like 2026-11", Some("month".into()));
    let start = parse_rfc3339(&format!("{month}-01T00:00:00Z"))
        .filter(|_| month.len() == 7)
        .ok_or_else(bad)?;
    tollgate_meter::period::bounds(tollgate_meter::period::Period::Month, "UTC", start)
        .map_err(|_| bad())
}

/// Rejects query parameters other than `allowed`.
fn only_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<()> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(
            format!("unknown query parameter `{k}`"),
            Some(k.clone()),
        )),
        None => Ok(()),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[utoipa::path(get, path = "/admin/v1/reports/spend", tag = "reports",
    params(
        ("by" = String, Query, description = "pod | use_case | key | route | model | day"),
        ("from" = Option<String>, Query, description = "RFC 3339; rounded down to the hour (required unless `month`)"),
        ("to" = Option<String>, Query, description = "RFC 3339, after `from`; rounded up to the hour (required unless `month`)"),
        ("month" = Option<String>, Query, description = "instead of from/to: a calendar month (UTC), e.g. 2026-11 — showback"),
        ("format" = Option<String>, Query, description = "json (default) | csv"),
    ),
    responses((status = 200, body = SpendReport), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Spend over a time range, grouped, from the hourly rollups (never a scan of raw requests). Pod
/// members see their pods' spend; org-wide roles see everything.
pub async fn spend_report(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    only_params(&q, &["by", "from", "to", "month", "format"])?;
    let by = q.get("by").map(String::as_str).unwrap_or("");
    if !["pod", "use_case", "key", "route", "model", "day"].contains(&by) {
        return Err(ApiError::invalid(
            "`by` must be pod, use_case, key, route, model or day",
            Some("by".into()),
        ));
    }
    let time = |name: &str| -> Result<i64> {
        let v = q.get(name).ok_or_else(|| {
            ApiError::invalid(
                format!("`{name}` is required (RFC 3339)"),
                Some(name.into()),
            )
        })?;
        parse_rfc3339(v).ok_or_else(|| {
            ApiError::invalid(
                format!("`{name}` must be an RFC 3339 time like 2026-11-01T00:00:00Z"),
                Some(name.into()),
            )
        })
    };
    let (from, to) = match q.get("month") {
        // Showback for a calendar month (UTC): `month=2026-11`.
        Some(month) => {
            if q.contains_key("from") || q.contains_key("to") {
                return Err(ApiError::invalid(
                    "give either `month` or `from` and `to`, not both",
                    Some("month".into()),
                ));
            }
            month_bounds(month)?
        }
        None => (time("from")?, time("to")?),
    };
    if to <= from {
        return Err(ApiError::invalid(
            "`to` must be after `from`",
            Some("to".into()),
        ));
    }
    let csv = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "`format` must be json or csv",
                Some("format".into()),
            ));
        }
    };
    let (from_hour, to_hour) = (
        from.div_euclid(3_600_000),
        (to + 3_599_999).div_euclid(3_600_000),
    );
    let visible = p.visible_pods();
    let groups = gw
        .store
        .spend_by(by, from_hour, to_hour, visible.as_deref())
        .await?;
    let mut rows = Vec::with_capacity(groups.len());
    let mut total = m::Totals::default();
    for (group, t) in groups {
        let name = match by {
            "pod" => gw.store.get_pod(&group).await.ok().map(|x| x.name),
            "use_case" => gw.store.get_use_case(&group).await.ok().map(|x| x.name),
            _ => None,
        };
        let group = if by == "day" {
            group
                .parse::<i64>()
                .map(|d| super::time::rfc3339(d * 86_400_000)[..10].to_string())
                .unwrap_or(group)
        } else {
            group
        };
        total.add(&t);
        rows.push(SpendRow::new(group, name, &t));
    }
    let report = SpendReport {
        by: by.to_string(),
        from: super::time::rfc3339(from_hour * 3_600_000),
        to: super::time::rfc3339(to_hour * 3_600_000),
        rows,
        total: SpendRow::new("total".into(), None, &total),
    };
    if !csv {
        return Ok(Json(report).into_response());
    }
    let mut out = String::from(
        "group,name,requests,errors,unpriced,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_nano_usd,cost_usd\n",
    );
    for r in report.rows.iter().chain(std::iter::once(&report.total)) {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&r.group),
            csv_field(r.name.as_deref().unwrap_or("")),
            r.requests,
            r.errors,
            r.unpriced,
            r.input_tokens,
            r.cached_input_tokens,
            r.cache_write_tokens,
            r.output_tokens,
            r.reasoning_tokens,
            r.cost_nano_usd,
            r.cost_usd
        ));
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        out,
    )
        .into_response())
}

#[utoipa::path(get, path = "/admin/v1/reports/focus", tag = "reports",
    params(
        ("month" = String, Query, description = "the billing period: a calendar month (UTC), e.g. 2026-11"),
        ("format" = Option<String>, Query, description = "csv (default) | json"),
    ),
    responses(
        (status = 200, description = "FOCUS 1.2 rows as CSV (header row first; a null is an empty field); the `x-tollgate-focus-*` headers carry the row count, the billed total and the spend not in the export", content_type = "text/csv"),
        (status = 200, body = FocusExport, content_type = "application/json"),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// A month of spend in FOCUS 1.2 columns (one row per hour × pod × use case × deployment × token
/// kind), from the ledger's rollups. Pod members see their pods' rows; org-wide roles see all.
/// The billed total equals the spend report of the month to the nano-dollar; spend recorded
/// before the FOCUS rollups existed is reported as `not_exported`, never silently dropped.
pub async fn focus_export(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    only_params(&q, &["month", "format"])?;
    let month = q.get("month").ok_or_else(|| {
        ApiError::invalid(
            "`month` is required, e.g. month=2026-11",
            Some("month".into()),
        )
    })?;
    let (start, end) = month_bounds(month)?;
    let csv = match q.get("format").map(String::as_str) {
        None | Some("csv") => true,
        Some("json") => false,
        Some(_) => {
            return Err(ApiError::invalid(
                "`format` must be csv or json",
                Some("format".into()),
            ));
        }
    };
    let (from_h, to_h) = (start / 3_600_000, end / 3_600_000);
    let visible = p.visible_pods();
    // Counts and totals first, from one snapshot (records written meanwhile never look like a
    // gap); then the rows, streamed a day at a time so a large month never sits in memory.
    let counts = gw
        .store
        .focus_summary(from_h, to_h, visible.as_deref())
        .await?;
    let summary = FocusSummary {
        rows: counts.rows,
        billed_nano_usd: counts.billed_nano_usd,
        billed_usd: tollgate_meter::Money(counts.billed_nano_usd).usd(),
        spend_report_nano_usd: counts.spend_nano_usd,
        not_exported_nano_usd: counts.spend_nano_usd.saturating_sub(counts.billed_nano_usd),
    };
    if summary.not_exported_nano_usd > 0 {
        tracing::warn!(month = %month, not_exported_nano_usd = summary.not_exported_nano_usd, "FOCUS export: part of the month's spend was recorded before the FOCUS rollups existed and is not in the export");
    }
    let (head, tail) = if csv {
        (super::focus::csv_header(), String::new())
    } else {
        // The document without its rows, `{…,"rows":[]}`, cut open before `]}`; the rows are
        // streamed in between.
        let empty = serde_json::to_string(&FocusExport {
            version: "1.2".into(),
            month: month.clone(),
            billing_period_start: super::time::rfc3339(start),
            billing_period_end: super::time::rfc3339(end),
            summary: summary.clone(),
            rows: Vec::new(),
        })
        .map_err(|_| ApiError::Internal)?;
        let head = empty
            .strip_suffix("]}")
            .ok_or(ApiError::Internal)?
            .to_string();
        (head, "]}".to_string())
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(2);
    let store = gw.store.clone();
    gw.tasks.spawn(async move {
        if tx.send(Ok(head.into())).await.is_err() {
            return;
        }
        let mut first = true;
        for day in (from_h..to_h).step_by(24) {
            let rollups = match store
                .focus_rollups(day, (day + 24).min(to_h), visible.as_deref())
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    // The client sees the body end in an error, never a short export that looks whole.
                    tracing::warn!(error = %e, "FOCUS export failed midway");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let lines = super::focus::lines(&rollups, start, end);
            if lines.is_empty() {
                continue;
            }
            let chunk = if csv {
                super::focus::csv_rows(&lines)
            } else {
                let mut out = String::new();
                for row in super::focus::to_json(&lines) {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::Object(row).to_string());
                }
                out
            };
            if tx.send(Ok(chunk.into())).await.is_err() {
                return; // the client left
            }
        }
        if !tail.is_empty() {
            let _ = tx.send(Ok(tail.into())).await;
        }
    });
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    let mut resp = (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert("x-tollgate-focus-rows", summary.rows.into());
    h.insert(
        "x-tollgate-focus-billed-nano-usd",
        summary.billed_nano_usd.into(),
    );
    h.insert(
        "x-tollgate-focus-not-exported-nano-usd",
        summary.not_exported_nano_usd.into(),
    );
    Ok(resp)
}

#[utoipa::path(get, path = "/admin/v1/reports/forecast", tag = "reports",
    params(("by" = Option<String>, Query, description = "pod | use_case (default: only the total)")),
    responses((status = 200, body = Forecast), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Month-end spend forecast (UTC month): spend so far this month plus the hourly rate of the last
/// 7 days (or of the month so far, if it began less than 7 days ago) times the hours left.
pub async fn forecast(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Forecast>> {
    only_params(&q, &["by"])?;
    let by = match q.get("by").map(String::as_str) {
        None => None,
        Some(b @ ("pod" | "use_case")) => Some(b),
        Some(_) => {
            return Err(ApiError::invalid(
                "`by` must be pod or use_case",
                Some("by".into()),
            ));
        }
    };
    let now = m::now_ms();
    let (start, end) =
        tollgate_meter::period::bounds(tollgate_meter::period::Period::Month, "UTC", now)
            .map_err(|_| ApiError::Internal)?;
    let (start_h, end_h, now_h) = (start / 3_600_000, end / 3_600_000, now / 3_600_000);
    let window_start_h = (now_h + 1 - 7 * 24).max(start_h);
    let window_hours = now_h + 1 - window_start_h;
    let hours_left = end_h - (now_h + 1);
    let visible = p.visible_pods();
    let group_by = by.unwrap_or("pod");
    let spent = gw
        .store
        .spend_by(group_by, start_h, now_h + 1, visible.as_deref())
        .await?;
    let window = gw
        .store
        .spend_by(group_by, window_start_h, now_h + 1, visible.as_deref())
        .await?;
    let row = |group: String, name: Option<String>, spent: u64, win: u64| {
        let extra = u128::from(win) * u128::try_from(hours_left.max(0)).unwrap_or(0)
            / u128::try_from(window_hours.max(1)).unwrap_or(1);
        let forecast = spent.saturating_add(u64::try_from(extra).unwrap_or(u64::MAX));
        ForecastRow {
            group,
            name,
            spent_nano_usd: spent,
            window_spent_nano_usd: win,
            forecast_nano_usd: forecast,
            forecast_usd: tollgate_meter::Money(forecast).usd(),
        }
    };
    let (mut total_spent, mut total_window) = (0u64, 0u64);
    let mut rows = Vec::new();
    for (group, t) in &spent {
        let win = window
            .iter()
            .find(|(g, _)| g == group)
            .map_or(0, |(_, w)| w.cost_nano_usd);
        total_spent += t.cost_nano_usd;
        total_window += win;
        if by.is_some() {
            let name = match group_by {
                "pod" => gw.store.get_pod(group).await.ok().map(|x| x.name),
                _ => gw.store.get_use_case(group).await.ok().map(|x| x.name),
            };
            rows.push(row(group.clone(), name, t.cost_nano_usd, win));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.forecast_nano_usd));
    Ok(Json(Forecast {
        method: "spend so far this month + (spend in the trailing window ÷ its hours) × hours left; the window is the last 7 days, or the month so far if shorter".into(),
        month_start: super::time::rfc3339(start),
        month_end: super::time::rfc3339(end),
        window_hours,
        hours_left,
        rows,
        total: row("total".into(), None, total_spent, total_window),
    }))
}

#[utoipa::path(get, path = "/admin/v1/reports/advice", tag = "reports",
    responses((status = 200, body = Advice), (status = 401, body = ErrorResponse)))]
/// Cost advice: identical requests an exact cache would answer, premium-model spend with a cheaper
/// candidate (both over the last 30 days), keys idle for 30 days, and budgets that will run out
/// before their period ends.
pub async fn advice(State(gw): Gw, p: Principal) -> Result<Json<Advice>> {
    const DAY: i64 = 86_400_000;
    let now = m::now_ms();
    let window_start = now - 30 * DAY;
    let usd = |n: u64| tollgate_meter::Money(n).usd();
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut name_of = async |id: &str| -> Option<String> {
        if let Some(n) = names.get(id) {
            return n.clone();
        }
        let n = gw.store.get_use_case(id).await.ok().map(|u| u.name);
        names.insert(id.to_string(), n.clone());
        n
    };
    let visible = p.visible_pods();
    let mut duplicate_prompts = Vec::new();
    for d in gw
        .store
        .duplicate_prompts(window_start, now + 1, visible.as_deref())
        .await?
    {
        if d.duplicates == 0 {
            continue;
        }
        duplicate_prompts.push(DuplicatePromptAdvice {
            name: name_of(&d.use_case_id).await,
            share_percent: format!(
                "{:.1}",
                d.duplicates as f64 * 100.0 / d.requests.max(1) as f64
            ),
            duplicate_cost_usd: usd(d.duplicate_cost_nano_usd),
            use_case_id: d.use_case_id,
            requests: d.requests,
            duplicates: d.duplicates,
            duplicate_cost_nano_usd: d.duplicate_cost_nano_usd,
        });
    }
    let catalog = gw.meter.catalog();
    let mut premium_models = Vec::new();
    for (use_case_id, model, t) in gw
        .store
        .spend_by_use_case_and_model(
            window_start.div_euclid(3_600_000),
            now.div_euclid(3_600_000) + 1,
            visible.as_deref(),
        )
        .await?
    {
        let Some(cheaper) = catalog
            .lookup(&model)
            .and_then(|e| e.cheaper.as_deref())
            .and_then(|c| catalog.lookup(c))
        else {
            continue;
        };
        let tokens = tollgate_meter::Tokens {
            input: t.input_tokens,
            cached_input: t.cached_input_tokens,
            cache_write: t.cache_write_tokens,
            output: t.output_tokens,
            reasoning: t.reasoning_tokens,
        };
        let on_cheaper = tollgate_meter::cost(&cheaper.prices, &tokens).nanos();
        if t.cost_nano_usd <= on_cheaper {
            continue;
        }
        let saving = t.cost_nano_usd - on_cheaper;
        premium_models.push(PremiumModelAdvice {
            name: name_of(&use_case_id).await,
            use_case_id,
            model,
            spend_nano_usd: t.cost_nano_usd,
            cheaper_model: cheaper.model.clone(),
            cost_on_cheaper_nano_usd: on_cheaper,
            saving_nano_usd: saving,
            saving_usd: usd(saving),
        });
    }
    premium_models.sort_by_key(|a| std::cmp::Reverse(a.saving_nano_usd));
    let last_used: HashMap<String, i64> = gw.store.keys_last_used().await?.into_iter().collect();
    let filter = m::KeyFilter {
        pod_ids: p.visible_pods(),
        ..Default::default()
    };
    let mut idle_keys = Vec::new();
    let mut page = m::PageRequest {
        after: None,
        limit: 200,
    };
    loop {
        let keys = gw.store.list_keys(&filter, &page).await?;
        for k in keys.items {
            let last_ms = last_used.get(&k.id).map(|h| h * 3_600_000);
            if last_ms.unwrap_or(k.created_at) < now - 30 * DAY {
                idle_keys.push(IdleKey {
                    last_used: last_ms.map(super::time::rfc3339),
                    created_at: super::time::rfc3339(k.created_at),
                    key_id: k.id,
                    use_case_id: k.use_case_id,
                    name: k.name,
                    prefix: k.prefix,
                });
            }
        }
        match keys.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let mut budgets_at_risk = Vec::new();
    for s in gw.budgeter.statuses() {
        if s.period_end == i64::MAX || !budget_visible(&gw, &p, &s.budget).await {
            continue;
        }
        let window_start = (now - 7 * DAY).max(s.period_start);
        let window_ms = (now - window_start).max(3_600_000);
        let recent = gw
            .store
            .spend_since(&s.budget.scope, &s.budget.scope_id, window_start)
            .await?;
        let spent = s.spent_nano_usd;
        let rate = |ms: i64| {
            u128::from(recent) * u128::try_from(ms.max(0)).unwrap_or(0)
                / u128::try_from(window_ms).unwrap_or(1)
        };
        let projected =
            u64::try_from(u128::from(spent) + rate(s.period_end - now)).unwrap_or(u64::MAX);
        let amount = s.budget.amount_nano_usd;
        if projected > amount && recent > 0 {
            let left = u128::from(amount.saturating_sub(spent));
            let ms_to_out =
                i64::try_from(left * u128::try_from(window_ms).unwrap_or(1) / u128::from(recent))
                    .unwrap_or(i64::MAX);
            budgets_at_risk.push(BudgetAtRisk {
                runs_out_at: super::time::rfc3339(now.saturating_add(ms_to_out)),
                period_end: super::time::rfc3339(s.period_end),
                budget_id: s.budget.id,
                scope: s.budget.scope,
                scope_id: s.budget.scope_id,
                amount_nano_usd: amount,
                spent_nano_usd: spent,
                projected_nano_usd: projected,
            });
        }
    }
    Ok(Json(Advice {
        method: "duplicate_prompts: successful requests of the last 30 days whose route, messages and parameters (not `stream` or `user`) equal an earlier request's, by a keyed fingerprint; the saving is each set's cost less one request at the set's average cost. premium_models: spend of the last 30 days on a model the catalog pairs with a cheaper one, against the same tokens at the cheaper model's list prices — check quality with an evaluation before switching. idle_keys: active keys with no request for 30 days. budgets_at_risk: spend so far plus the rate of the last 7 days (or of the period so far) to the period's end exceeds the budget.".into(),
        window_start: super::time::rfc3339(window_start),
        duplicate_prompts,
        premium_models,
        idle_keys,
        budgets_at_risk,
    }))
}
