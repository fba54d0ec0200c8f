//! Virtual keys: issue (shown once), read, revoke, rotate with a grace period.

use crate::common::*;

#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys",
    params(("after" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200"), ("use_case_id" = Option<String>, Query, min_length = 1), ("include_inactive" = Option<bool>, Query)),
    responses((status = 200, body = KeyPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Keys of the use cases the caller may read (never their secrets).
pub async fn list_keys(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<KeyPage>> {
    let page = list_query(&q, "key")?;
    let use_case_id = filter_param(&q, "use_case_id")?.map(str::to_string);
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
        use_case_id,
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
    let expires_at = future_time("expires_at", req.expires_at.as_deref(), gw.clock.now_ms())?;
    // A key's person must be a member of the use case's pod. Unknown ids and people of other
    // pods get the same answer, so the call reveals nothing about who exists elsewhere.
    if let Some(user) = &req.user_id
        && !gw
            .store
            .list_members(&uc.pod_id)
            .await?
            .iter()
            .any(|m| m.user_id == *user)
    {
        return Err(ApiError::invalid(
            format!("`{user}` is not a member of the use case's pod"),
            Some("user_id".into()),
        ));
    }
    check_limits("limits", &req.limits)?;
    let (mut record, secret) = tollgate_store::keys::new_api_key(
        &gw.secret,
        &uc.id,
        req.user_id,
        &req.name,
        req.scopes,
        expires_at,
        &p.actor(),
    );
    record.limits = req.limits.unwrap_or_default();
    let key = gw.store.create_key(&p.actor(), &record).await?;
    gw.changed(Changed::Key(key.id.clone())).await;
    Ok(created(NewKey {
        key: key.into(),
        secret,
    }))
}

pub(crate) async fn key_for_change(gw: &Control, p: &Principal, id: &str) -> Result<m::ApiKey> {
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
    let key = gw
        .store
        .revoke_key(&p.actor(), &id, gw.clock.now_ms())
        .await?;
    gw.changed(Changed::Key(key.id.clone())).await;
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
    let (mut record, secret) = tollgate_store::keys::new_api_key(
        &gw.secret,
        &old.use_case_id,
        old.user_id.clone(),
        &old.name,
        old.scopes.clone(),
        old.expires_at,
        &p.actor(),
    );
    record.limits = old.limits;
    let until = gw.clock.now_ms() + i64::try_from(grace).unwrap_or(0) * 1000;
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
    gw.changed(Changed::Key(old.id.clone())).await;
    gw.changed(Changed::Key(new.id.clone())).await;
    Ok(created(Rotation {
        old: old.into(),
        new: NewKey {
            key: new.into(),
            secret,
        },
    }))
}
