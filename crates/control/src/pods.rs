//! Pods and their members.

use crate::common::*;

#[utoipa::path(get, path = "/admin/v1/pods", tag = "pods",
    params(("after" = Option<String>, Query, description = "cursor"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200")),
    responses((status = 200, body = PodPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Pods the caller may read.
pub async fn list_pods(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PodPage>> {
    let page = list_query(&q, "pod")?;
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
    match gw
        .store
        .create_pod_unlike(&p.actor(), &req.name, &req.description, name_key)
        .await?
    {
        Ok(pod) => Ok(created(Pod::from(pod))),
        Err(other) => Err(name_taken(&p, &req.name, &other)),
    }
}

/// A pod name as people read it: invisible characters and blanks dropped, compatibility forms
/// (full-width letters, ligatures) and dash look-alikes folded, case folded (`ß` as `ss`), then
/// reduced to its confusable skeleton (Unicode TS #39: Cyrillic `р` and Greek `Α` read as `p`
/// and `A`, composed and decomposed accents alike).
pub(crate) fn name_key(name: &str) -> String {
    let lower = |s: &str| -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars().flat_map(char::to_lowercase) {
            match c {
                // Blanks, however many and whichever: `finance  team` is `finance team`.
                c if c.is_whitespace() => {}
                c if tollgate_guard::normalize::is_dash(c) => out.push('-'),
                'ß' => out.push_str("ss"),
                'ς' => out.push('σ'),
                c => out.push(c),
            }
        }
        out
    };
    // The skeleton before case is folded (Cherokee capitals are drawn like Latin ones, their
    // small letters are not), and again after (small letters drawn like other small letters).
    let skeleton = |s: &str| lower(&unicode_security::skeleton(s).collect::<String>());
    // But a capital the skeleton reads as `l` (Latin `I`, Cyrillic `І`, Greek `Ι`) is a
    // capital i first: `BILLING` is `billing`, not `bllllng`.
    let mut one = [0u8; 4];
    let mut capital_i =
        |c: char| c.is_uppercase() && unicode_security::skeleton(c.encode_utf8(&mut one)).eq(['l']);
    let text: String = tollgate_guard::normalize::Normalized::new(name)
        .text
        .chars()
        .map(|c| if capital_i(c) { 'i' } else { c })
        .collect();
    skeleton(&skeleton(&text))
}

/// The refusal of `name` because pod `other` has a name that reads the same ([`name_key`]):
/// `POD-A` or `pod‑A` beside `pod-A` would be told apart by no report. (The store checks it
/// inside the write that adds or renames a pod, so two requests at once cannot both pass.) The
/// pod it collides with is named only to a caller who may read it.
fn name_taken(p: &Principal, name: &str, other: &m::Pod) -> ApiError {
    let which = if p.can_read(&other.id) {
        format!("pod {} is named \"{}\"", other.id, other.name)
    } else {
        "another pod has a name".to_string()
    };
    ApiError::Conflict {
        message: format!(
            "{which} which reads the same as \"{name}\" (names are compared ignoring case and look-alike characters)"
        ),
        code: "name_taken",
    }
}

pub(crate) async fn readable_pod(gw: &Control, p: &Principal, id: &str) -> Result<m::Pod> {
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
    match gw
        .store
        .update_pod_unlike(
            &p.actor(),
            &id,
            req.name.as_deref(),
            req.description.as_deref(),
            name_key,
        )
        .await?
    {
        Ok(pod) => Ok(Json(pod.into())),
        Err(other) => Err(name_taken(
            &p,
            req.name.as_deref().unwrap_or_default(),
            &other,
        )),
    }
}

#[utoipa::path(get, path = "/admin/v1/pods/{id}/members", tag = "pods",
    params(("id" = String, Path), ("after" = Option<String>, Query, description = "cursor: the `next` of an earlier page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200 (default 50)")),
    responses((status = 200, body = MemberPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Members of a pod, a page at a time by user id.
pub async fn list_members(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<MemberPage>> {
    let page = list_query(&q, "usr")?;
    readable_pod(&gw, &p, &id).await?;
    Ok(Json(gw.store.list_members_page(&id, &page).await?.into()))
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
    // A lead adds people they can already see (members of their pods); a platform admin adds
    // anyone. An id the caller may not see answers exactly like an unknown one.
    let missing = || ApiError::Missing(format!("user {user_id}"));
    if visible_users(&gw, &p)
        .await?
        .is_some_and(|ids| !ids.contains(&user_id))
    {
        return Err(missing());
    }
    gw.store.get_user(&user_id).await.map_err(|_| missing())?;
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
