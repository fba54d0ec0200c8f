//! Patterns: versioned prompt templates every use case may build requests from
//! (`"pattern": "triage@production"` on `/v1`), owned by a pod. Versions are immutable; labels
//! (`production`, `staging`, any other) point at one and are moved only by the owning pod's lead
//! or a platform admin — audited, with the version the label pointed at before.

use crate::common::*;
use tollgate_store::PatternQueries;
use utoipa::ToSchema;

/// `POST /patterns`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePattern {
    /// Unique name: letters, digits, `.`, `_`, `-` (1–100).
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]+$")]
    pub name: String,
    /// The pod that owns it.
    pub pod_id: String,
    /// What it is for, and how to use it.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
}

/// `POST /patterns/{name}/versions`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePatternVersion {
    /// `[{role, content}]`: the contents are MiniJinja templates.
    #[schema(value_type = Vec<Object>)]
    pub messages: serde_json::Value,
    /// The JSON Schema of the variables; every variable the messages use must be in its
    /// `properties`.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// Why this version.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: String,
}

/// `PUT /patterns/{name}/labels/{label}`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveLabel {
    /// The version the label points at from now on.
    #[schema(minimum = 1)]
    pub version: i64,
}

/// A pattern as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PatternView {
    /// Its name.
    pub name: String,
    /// The owning pod.
    pub pod_id: String,
    /// What it is for.
    pub description: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// Label → version.
    pub labels: std::collections::BTreeMap<String, i64>,
    /// Its versions, oldest first.
    pub versions: Vec<PatternVersionView>,
}

/// A pattern version as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PatternVersionView {
    /// 1, 2, …
    pub version: i64,
    /// `[{role, content}]`.
    #[schema(value_type = Vec<Object>)]
    pub messages: serde_json::Value,
    /// The variables' JSON Schema.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// Why this version.
    pub note: String,
    /// When, RFC 3339.
    pub created_at: String,
    /// Who.
    pub created_by: String,
}

fn version_view(v: m::PatternVersion) -> PatternVersionView {
    PatternVersionView {
        version: v.version,
        messages: v.messages,
        schema: v.schema,
        note: v.note,
        created_at: tollgate_types::time::rfc3339(v.created_at),
        created_by: v.created_by,
    }
}

fn view(p: m::Pattern) -> PatternView {
    PatternView {
        name: p.name,
        pod_id: p.pod_id,
        description: p.description,
        created_at: tollgate_types::time::rfc3339(p.created_at),
        created_by: p.created_by,
        labels: p.labels,
        versions: p.versions.into_iter().map(version_view).collect(),
    }
}

fn slug_ok(field: &str, v: &str, max: usize) -> Result<()> {
    let ok = !v.is_empty()
        && v.chars().count() <= max
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!("`{field}` must be 1–{max} letters, digits, `.`, `_` or `-`"),
            Some(field.into()),
        ))
    }
}

async fn pattern_or_404(gw: &Control, name: &str) -> Result<m::Pattern> {
    gw.store.get_pattern(name).await.map_err(|e| match e {
        m::StoreError::NotFound(_) => ApiError::Missing(format!("pattern {name}")),
        e => e.into(),
    })
}

/// A page of the pattern library; pass `next` as `after` for the following page.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PatternPage {
    /// The patterns, by name.
    pub items: Vec<PatternView>,
    /// Cursor of the next page (the last pattern's name); `null` on the last.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/patterns", tag = "patterns",
    params(("after" = Option<String>, Query, description = "cursor: the `next` of an earlier page", min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]+$"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200 (default 50)")),
    responses((status = 200, body = PatternPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// The pattern library by name, a page at a time: each pattern with its versions and labels
/// (readable by everyone with a token: patterns are shared across pods).
pub async fn list_patterns(
    State(gw): Gw,
    _p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PatternPage>> {
    let after = name_cursor(&q, "a pattern's name", |a| slug_ok("after", a, 100))?;
    let page = gw
        .store
        .list_patterns_page(&PageRequest {
            after,
            limit: page_limit(&q, 0)?,
        })
        .await?;
    Ok(Json(PatternPage {
        items: page.items.into_iter().map(view).collect(),
        next: page.next,
    }))
}

#[utoipa::path(get, path = "/admin/v1/patterns/{name}", tag = "patterns", params(("name" = String, Path)),
    responses((status = 200, body = PatternView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One pattern, its versions and labels.
pub async fn get_pattern(
    State(gw): Gw,
    _p: Principal,
    Path(name): Path<String>,
) -> Result<Json<PatternView>> {
    Ok(Json(view(pattern_or_404(&gw, &name).await?)))
}

#[utoipa::path(post, path = "/admin/v1/patterns", tag = "patterns", request_body = CreatePattern,
    responses((status = 201, body = PatternView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Creates a pattern owned by a pod (its leads, builders and domain experts).
pub async fn create_pattern(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<(StatusCode, Json<PatternView>)> {
    let req: CreatePattern = body(&gw, &headers, b).await?;
    slug_ok("name", &req.name, 100)?;
    text_ok("description", &req.description, 2000)?;
    let pod = gw
        .store
        .get_pod(&req.pod_id)
        .await
        .map_err(|_| ApiError::Missing(format!("pod {}", req.pod_id)))?;
    p.check(&pod.id, &format!("pod {}", pod.id), p.can_evaluate(&pod.id))?;
    let created = gw
        .store
        .create_pattern(
            &p.actor(),
            &req.name,
            &pod.id,
            &req.description,
            gw.clock.now_ms(),
        )
        .await
        .map_err(|e| match e {
            m::StoreError::Conflict(msg) => ApiError::Conflict {
                message: msg,
                code: "already_exists",
            },
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(view(created))))
}

#[utoipa::path(post, path = "/admin/v1/patterns/{name}/versions", tag = "patterns", params(("name" = String, Path)),
    request_body = CreatePatternVersion,
    responses((status = 201, body = PatternVersionView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Adds an immutable version (the owning pod's leads, builders and domain experts): its messages'
/// templates and its variables' schema are checked, with the path of every mistake.
pub async fn create_version(
    State(gw): Gw,
    p: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<(StatusCode, Json<PatternVersionView>)> {
    let pat = pattern_or_404(&gw, &name).await?;
    p.check(
        &pat.pod_id,
        &format!("pattern {name}"),
        p.can_evaluate(&pat.pod_id),
    )?;
    let req: CreatePatternVersion = body(&gw, &headers, b).await?;
    text_ok("note", &req.note, 500)?;
    tollgate_eval::pattern::Template::compile(&req.messages, &req.schema).map_err(|e| {
        let param = e.problems.first().map(|p| p.path.clone());
        ApiError::invalid(e.to_string(), param)
    })?;
    let v = gw
        .store
        .add_pattern_version(
            &p.actor(),
            &name,
            &req.messages,
            &req.schema,
            &req.note,
            gw.clock.now_ms(),
        )
        .await?;
    gw.plane.refresh(Changed::Patterns).await?;
    Ok((StatusCode::CREATED, Json(version_view(v))))
}

#[utoipa::path(put, path = "/admin/v1/patterns/{name}/labels/{label}", tag = "patterns",
    params(("name" = String, Path), ("label" = String, Path)), request_body = MoveLabel,
    responses((status = 200, body = PatternView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Points a label at a version (the owning pod's lead or a platform admin only; audited with the
/// version it pointed at before). Requests naming `name@label` use the new version at once.
pub async fn move_label(
    State(gw): Gw,
    p: Principal,
    Path((name, label)): Path<(String, String)>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<PatternView>> {
    let pat = pattern_or_404(&gw, &name).await?;
    p.check(
        &pat.pod_id,
        &format!("pattern {name}"),
        p.can_manage(&pat.pod_id),
    )?;
    slug_ok("label", &label, 40)?;
    if label.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "a label cannot be a number (`name@3` names version 3)",
            Some("label".into()),
        ));
    }
    let req: MoveLabel = body(&gw, &headers, b).await?;
    gw.store
        .move_pattern_label(&p.actor(), &name, &label, req.version, gw.clock.now_ms())
        .await
        .map_err(|e| match e {
            m::StoreError::NotFound(what) => {
                ApiError::invalid(format!("{what} does not exist"), Some("version".into()))
            }
            e => e.into(),
        })?;
    gw.plane.refresh(Changed::Patterns).await?;
    Ok(Json(view(pattern_or_404(&gw, &name).await?)))
}
