//! People: who the caller is (`/me`), users, and their personal tokens.

use crate::common::*;

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

/// Users the caller may see: everyone for org-wide roles; else the members of their pods.
pub(crate) async fn visible_users(gw: &Control, p: &Principal) -> Result<Option<Vec<String>>> {
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
    let k = tollgate_store::keys::generate(&gw.secret, "tgu");
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
        expires_at: expires_at.map(tollgate_types::time::rfc3339),
        secret: k.plaintext,
    }))
}
