//! People: who the caller is (`/me`), users, and their personal tokens.
//!
//! The lifecycle of a personal token (`tgu_…`): a platform admin issues one to anyone, a user to
//! themself; it lives at most [`MAX_TOKEN_LIFETIME_DAYS`] (the default too), and a token issued to
//! its own user by a request authenticated with a personal token expires no later than that token,
//! so no chain of tokens outlives its first link; a user holds at most [`MAX_ACTIVE_TOKENS`]
//! active ones. The user themself or a platform admin lists and revokes them; a revoked token
//! answers 401 from the next request on. A platform admin can disable
//! a user (every token of theirs answers 401 at once, and works again when they are enabled, if it
//! has not expired) and change their org role (it applies from their next request). Every change is
//! audited (`token.create`, `token.revoke`, `user.update`), never with a secret.

use crate::common::*;

/// The longest a personal token lives, in days: `expires_at` defaults to this far ahead and may
/// not be later. Tokens issued before the limit existed were given this long from the upgrade
/// (store migration 6).
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 90;

/// The most personal tokens a user may hold at once (neither revoked nor expired): enough for
/// every machine and tool of a person, and a bound on what a stolen token can mint.
pub const MAX_ACTIVE_TOKENS: usize = 20;

/// [`MAX_TOKEN_LIFETIME_DAYS`] in milliseconds.
const MAX_TOKEN_LIFETIME_MS: i64 = MAX_TOKEN_LIFETIME_DAYS * 24 * 3600 * 1000;

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
    params(("after" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200")),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Users the caller may see.
pub async fn list_users(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<UserPage>> {
    let page = list_query(&q, "usr")?;
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
    // Characters, as the document's `maxLength` counts them.
    if req.email.chars().count() > 254
        || email.split('@').count() != 2
        || email.starts_with('@')
        || email.ends_with('@')
        || email.contains(char::is_whitespace)
        || email.chars().any(tollgate_types::text::is_control_or_bidi)
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

/// `user {id}` is not found (or not visible to the caller): 404.
fn missing_user(id: &str) -> impl FnOnce(m::StoreError) -> ApiError + '_ {
    move |e| match e {
        m::StoreError::NotFound(_) => ApiError::Missing(format!("user {id}")),
        e => e.into(),
    }
}

#[utoipa::path(patch, path = "/admin/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Renames a user, changes their org role, or disables or enables them (platform admin). A disabled
/// user's tokens answer 401 at once; a new org role applies from their next request. Audited as
/// `user.update` with each changed field's old and new value.
///
/// A platform admin cannot disable themself or give up their own `platform_admin` role (400), so
/// no one locks themself out by mistake; another platform admin, or the bootstrap admin token
/// (which never depends on a user), can. Nothing stops disabling the last platform admin: the
/// bootstrap admin token always remains.
pub async fn update_user(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<User>> {
    if visible_users(&gw, &p)
        .await?
        .is_some_and(|ids| !ids.contains(&id))
    {
        return Err(ApiError::Missing(format!("user {id}")));
    }
    p.require_admin()?;
    let req: UpdateUser = body(&gw, &headers, b).await?;
    if let Some(name) = &req.name {
        name_ok("name", name)?;
    }
    if p.is_user(&id) {
        if req.disabled == Some(true) {
            return Err(ApiError::invalid(
                "you cannot disable yourself: another platform admin or the bootstrap admin token can",
                Some("disabled".into()),
            ));
        }
        if req
            .org_role
            .is_some_and(|r| r != Some(m::OrgRole::PlatformAdmin))
        {
            return Err(ApiError::invalid(
                "you cannot give up your own platform_admin role: another platform admin or the bootstrap admin token can",
                Some("org_role".into()),
            ));
        }
    }
    let patch = m::UserPatch {
        name: req.name,
        org_role: req.org_role,
        disabled: req.disabled,
    };
    let u = gw
        .store
        .update_user(&p.actor(), &id, &patch)
        .await
        .map_err(missing_user(&id))?;
    Ok(Json(u.into()))
}

/// The user `id` whose tokens the caller manages: themself, or anyone for a platform admin. Users
/// the caller cannot see answer 404 like unknown ones; users they see but may not manage, 403.
async fn token_owner(gw: &Control, p: &Principal, id: &str) -> Result<m::User> {
    if !p.is_user(id) {
        if visible_users(gw, p)
            .await?
            .is_some_and(|ids| !ids.iter().any(|u| u == id))
        {
            return Err(ApiError::Missing(format!("user {id}")));
        }
        p.require_admin()?;
    }
    gw.store.get_user(id).await.map_err(missing_user(id))
}

#[utoipa::path(get, path = "/admin/v1/users/{id}/tokens", tag = "users",
    params(("id" = String, Path), ("after" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200")),
    responses((status = 200, body = TokenPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// A user's personal tokens, revoked and expired ones too, oldest first; never a secret or a hash
/// (the user themself or a platform admin).
pub async fn list_tokens(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<TokenPage>> {
    token_owner(&gw, &p, &id).await?;
    let page = list_query(&q, "tok")?;
    Ok(Json(gw.store.list_tokens(&id, &page).await?.into()))
}

#[utoipa::path(post, path = "/admin/v1/users/{id}/tokens/{token_id}/revoke", tag = "users",
    params(("id" = String, Path), ("token_id" = String, Path)),
    responses((status = 200, body = Token), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Revokes a personal token now: the next request with it answers 401 (the user themself or a
/// platform admin; a token may revoke itself). Audited as `token.revoke`; revoking a revoked token
/// changes nothing.
pub async fn revoke_token(
    State(gw): Gw,
    p: Principal,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<Json<Token>> {
    token_owner(&gw, &p, &id).await?;
    let t = gw
        .store
        .revoke_token(&p.actor(), &id, &token_id, gw.clock.now_ms())
        .await
        .map_err(|e| match e {
            m::StoreError::NotFound(_) => ApiError::Missing(format!("token {token_id}")),
            e => e.into(),
        })?;
    Ok(Json(t.into()))
}

#[utoipa::path(post, path = "/admin/v1/users/{id}/tokens", tag = "users", params(("id" = String, Path)), request_body = CreateToken,
    responses((status = 201, body = NewToken), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, description = "the user is disabled, or holds the most active tokens allowed", body = ErrorResponse)))]
/// Issues a personal admin token (a platform admin for anyone; a user for themselves). It expires
/// at `expires_at`, at most [`MAX_TOKEN_LIFETIME_DAYS`] away (the default); issued to its own user
/// through a personal token, no later than that token (the default is clamped to it).
pub async fn create_token(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    let user = token_owner(&gw, &p, &id).await?;
    let req: CreateToken = body(&gw, &headers, b).await?;
    name_ok("name", &req.name)?;
    if user.disabled_at.is_some() {
        return Err(ApiError::Conflict {
            message: format!("user {id} is disabled: enable them before issuing a token"),
            code: "user_disabled",
        });
    }
    let expires_at = token_expiry(&p, &id, req.expires_at.as_deref(), gw.clock.now_ms())?;
    let k = tollgate_store::keys::generate(&gw.secret, "tgu");
    let token = m::UserToken {
        id: m::new_id("tok"),
        user_id: id.clone(),
        name: req.name.clone(),
        prefix: k.prefix.clone(),
        hash: k.hash,
        expires_at: Some(expires_at),
        revoked_at: None,
        created_at: gw.clock.now_ms(),
    };
    gw.store
        .create_token(&p.actor(), &token, MAX_ACTIVE_TOKENS)
        .await
        .map_err(|e| match e {
            m::StoreError::Conflict(message) => ApiError::Conflict {
                message,
                code: "too_many_tokens",
            },
            e => e.into(),
        })?;
    Ok(created(NewToken {
        id: token.id,
        user_id: id,
        name: req.name,
        prefix: k.prefix,
        expires_at: Some(tollgate_types::time::rfc3339(expires_at)),
        secret: k.plaintext,
    }))
}

/// When a new token of user `id` expires: `asked` if given (in the future, within the maximum
/// lifetime, and — issued to its own user through a personal token — not after that token), else
/// the latest time allowed.
fn token_expiry(p: &Principal, id: &str, asked: Option<&str>, now: i64) -> Result<i64> {
    let max = now + MAX_TOKEN_LIFETIME_MS;
    // A token never issues its own user one that outlives it: otherwise a stolen short-lived
    // token could mint itself a long-lived successor.
    let parent = match p {
        Principal::User {
            token_expires_at, ..
        } if p.is_user(id) => *token_expires_at,
        _ => None,
    };
    let latest = parent.map_or(max, |t| t.min(max));
    let Some(t) = future_time("expires_at", asked, now)? else {
        return Ok(latest);
    };
    if t > max {
        return Err(ApiError::invalid(
            format!("`expires_at` must be at most {MAX_TOKEN_LIFETIME_DAYS} days away"),
            Some("expires_at".into()),
        ));
    }
    if t > latest {
        return Err(ApiError::invalid(
            format!(
                "`expires_at` must not be after {}, when the token you are using expires: a token cannot issue one that outlives it",
                tollgate_types::time::rfc3339(latest)
            ),
            Some("expires_at".into()),
        ));
    }
    Ok(t)
}
