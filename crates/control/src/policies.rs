//! Guard policies: the org default and each use case's own, versioned.
//!
//! Risk officers and platform admins write them; everyone reads the org default, and the policy
//! of a use case whose pod they may read. Each write is a new version (the old ones stay, for the
//! ledger's `policy` field to point at), checked first — every mistake named by its path
//! (`policy.entities.EMAIL`) — and stored in its canonical form (every default written out), so
//! an export says exactly what is in force. The data plane's snapshot is refreshed before the
//! answer: the next request is governed by the new version.

use crate::common::*;
use tollgate_guard::Policy;
use tollgate_store::PolicyQueries;

fn require_policy_role(p: &Principal) -> Result<()> {
    if p.manages_policies() {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: "only risk officers and platform admins change policies".into(),
            code: "role_forbids",
        })
    }
}

/// Checks a policy document and gives its canonical JSON.
fn checked(doc: &serde_json::Value) -> Result<String> {
    if !doc.is_object() {
        return Err(ApiError::invalid(
            "`policy` must be an object (see docs/policies.md)",
            Some("policy".into()),
        ));
    }
    let bad = |e: tollgate_guard::PolicyError| {
        let path = if e.path.is_empty() || e.path == "." {
            "policy".to_string()
        } else {
            format!("policy.{}", e.path)
        };
        // The document was re-written before it was read: a position in it would point
        // nowhere in the client's body. The path says where.
        let message = match e.message.rsplit_once(" at line ") {
            Some((head, pos))
                if pos.split_once(" column ").is_some_and(|(l, c)| {
                    [l, c]
                        .iter()
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                }) =>
            {
                head
            }
            _ => &e.message,
        };
        ApiError::invalid(format!("{path}: {message}"), Some(path))
    };
    let policy = Policy::from_yaml(&doc.to_string()).map_err(bad)?;
    policy.guard().map_err(bad)?;
    serde_json::to_string(&policy).map_err(|_| ApiError::Internal)
}

fn view(scope: &str, source: &str, v: Option<&m::PolicyVersion>) -> Result<PolicyView> {
    let policy = match v.and_then(|v| v.document.as_deref()) {
        Some(doc) => serde_json::from_str(doc).map_err(|_| ApiError::Internal)?,
        None => serde_json::to_value(Policy::default()).map_err(|_| ApiError::Internal)?,
    };
    Ok(PolicyView {
        scope: scope.to_string(),
        source: source.to_string(),
        version: v.map(|v| v.version),
        policy: Some(policy),
        created_at: v.map(|v| tollgate_types::time::rfc3339(v.created_at)),
        created_by: v.map(|v| v.created_by.clone()),
        note: v.map(|v| v.note.clone()),
    })
}

fn history(scope: &str, versions: Vec<m::PolicyVersion>) -> Result<Vec<PolicyView>> {
    versions
        .iter()
        .map(|v| {
            let source = if v.document.is_none() {
                "removed"
            } else if scope == "default" {
                "default"
            } else {
                "use_case"
            };
            let mut out = view(scope, source, Some(v))?;
            if v.document.is_none() {
                out.policy = None;
            }
            Ok(out)
        })
        .collect()
}

async fn default_version(gw: &Control) -> Result<Option<m::PolicyVersion>> {
    Ok(gw.store.latest_policy("").await?)
}

#[utoipa::path(get, path = "/admin/v1/policies/default", tag = "policies",
    responses((status = 200, body = PolicyView), (status = 401, body = ErrorResponse)))]
/// The org default policy (the built-in one until a policy is stored).
pub async fn get_default_policy(State(gw): Gw, _p: Principal) -> Result<Json<PolicyView>> {
    let v = default_version(&gw).await?;
    let source = if v.is_some() { "default" } else { "builtin" };
    Ok(Json(view("default", source, v.as_ref())?))
}

#[utoipa::path(put, path = "/admin/v1/policies/default", tag = "policies", request_body = PutPolicy,
    responses((status = 200, body = PolicyView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
/// Stores a new version of the org default policy (risk officers and platform admins).
pub async fn put_default_policy(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<PolicyView>> {
    require_policy_role(&p)?;
    let req: PutPolicy = body(&gw, &headers, b).await?;
    let doc = checked(&req.policy)?;
    let note = note_ok(req.note)?;
    let v = gw
        .store
        .put_policy(&p.actor(), "", Some(&doc), &note, gw.clock.now_ms())
        .await?;
    gw.plane.refresh(Changed::Policies).await?;
    Ok(Json(view("default", "default", Some(&v))?))
}

fn note_ok(note: Option<String>) -> Result<String> {
    let note = note.unwrap_or_default();
    if note.chars().count() > 500 || note.chars().any(forbidden_char) {
        return Err(ApiError::invalid(
            "`note` must be at most 500 characters, without control characters",
            Some("note".into()),
        ));
    }
    Ok(note)
}

/// A page of a policy's versions; pass `next` as `after` for the following page.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PolicyPage {
    /// The versions, oldest first.
    pub items: Vec<PolicyView>,
    /// Cursor of the next page (the last version's number); `null` on the last.
    pub next: Option<String>,
}

/// A page of the versions of scope `scope_id` (`""`: the org default), served as `scope`.
async fn versions_page(
    gw: &Control,
    q: &HashMap<String, String>,
    scope: &str,
    scope_id: &str,
) -> Result<PolicyPage> {
    let after = whole_number(q, "after", 0, i64::MAX)?.unwrap_or(0);
    let page = gw
        .store
        .policy_versions_page(scope_id, after, page_limit(q, 0)?)
        .await?;
    Ok(PolicyPage {
        items: history(scope, page.items)?,
        next: page.next,
    })
}

#[utoipa::path(get, path = "/admin/v1/policies/default/versions", tag = "policies",
    params(("after" = Option<i64>, Query, minimum = 0, description = "cursor: the `next` of an earlier page (a version number)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200 (default 50)")),
    responses((status = 200, body = PolicyPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// The versions of the org default policy, oldest first, a page at a time.
pub async fn default_policy_versions(
    State(gw): Gw,
    _p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PolicyPage>> {
    Ok(Json(versions_page(&gw, &q, "default", "").await?))
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/policy", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = PolicyView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// The policy a use case's requests are governed by: its own, else the org default, else the
/// built-in one (`source` says which).
pub async fn get_use_case_policy(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<PolicyView>> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    let (source, v) = in_force(&gw, &uc.id).await?;
    Ok(Json(view(&uc.id, source, v.as_ref())?))
}

/// The policy governing use case `use_case_id` now and where it comes from: its own version
/// (`use_case`), else the org default's (`default`), else none (`builtin`).
pub(crate) async fn in_force(
    gw: &Control,
    use_case_id: &str,
) -> Result<(&'static str, Option<m::PolicyVersion>)> {
    let own = gw.store.latest_policy(use_case_id).await?;
    if let Some(v) = own.filter(|v| v.document.is_some()) {
        return Ok(("use_case", Some(v)));
    }
    Ok(match default_version(gw).await? {
        Some(v) if v.document.is_some() => ("default", Some(v)),
        _ => ("builtin", None),
    })
}

#[utoipa::path(put, path = "/admin/v1/use-cases/{id}/policy", tag = "policies", params(("id" = String, Path)), request_body = PutPolicy,
    responses((status = 200, body = PolicyView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Stores a new version of a use case's own policy (risk officers and platform admins).
pub async fn put_use_case_policy(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<PolicyView>> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    require_policy_role(&p)?;
    let req: PutPolicy = body(&gw, &headers, b).await?;
    let doc = checked(&req.policy)?;
    let note = note_ok(req.note)?;
    let v = gw
        .store
        .put_policy(&p.actor(), &uc.id, Some(&doc), &note, gw.clock.now_ms())
        .await?;
    gw.plane.refresh(Changed::Policies).await?;
    Ok(Json(view(&uc.id, "use_case", Some(&v))?))
}

#[utoipa::path(delete, path = "/admin/v1/use-cases/{id}/policy", tag = "policies", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Removes a use case's own policy: the org default governs it again (a version of its own, so
/// the history shows when). Removing a policy the use case does not have changes nothing (204).
pub async fn delete_use_case_policy(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    require_policy_role(&p)?;
    match gw
        .store
        .put_policy(&p.actor(), &uc.id, None, "", gw.clock.now_ms())
        .await
    {
        Ok(_) => gw.plane.refresh(Changed::Policies).await?,
        // It has none of its own: nothing to remove, nothing written.
        Err(m::StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/policy/versions", tag = "policies",
    params(("id" = String, Path), ("after" = Option<i64>, Query, minimum = 0, description = "cursor: the `next` of an earlier page (a version number)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200 (default 50)")),
    responses((status = 200, body = PolicyPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// The versions of a use case's own policy, oldest first, a page at a time (`source: removed`
/// for a removal).
pub async fn use_case_policy_versions(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PolicyPage>> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    Ok(Json(versions_page(&gw, &q, &uc.id, &uc.id).await?))
}
