//! Use cases: the registry, stage changes and their history.

use crate::common::*;

pub(crate) async fn readable_use_case(gw: &Control, p: &Principal, id: &str) -> Result<m::UseCase> {
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
pub(crate) async fn managed_use_case(gw: &Control, p: &Principal, id: &str) -> Result<m::UseCase> {
    let uc = readable_use_case(gw, p, id).await?;
    p.check(
        &uc.pod_id,
        &format!("use case {id}"),
        p.can_manage(&uc.pod_id),
    )?;
    Ok(uc)
}

/// Checks the fields of a new or changed use case (absent fields are not checked).
pub(crate) fn check_use_case(gw: &Control, u: &m::UseCasePatch) -> Result<()> {
    if let Some(n) = &u.name {
        name_ok("name", n)?;
    }
    if let Some(d) = &u.description {
        text_ok("description", d, 4000)?;
    }
    check_value_model(&u.value_model)?;
    check_scores(&u.scores)?;
    check_caps(&u.pilot_caps)?;
    check_limits("limits", &u.limits)?;
    if let Some(r) = &u.routes {
        check_routes(gw, "routes", r)?;
    }
    if let Some(s) = &u.slo {
        check_slo(s)?;
    }
    Ok(())
}

/// An SLO's first problem, with the path of its field.
fn check_slo(s: &m::Slo) -> Result<()> {
    match s.problems().into_iter().next() {
        Some((field, message)) => Err(ApiError::invalid(
            format!("`slo.{field}` {message}"),
            Some(format!("slo.{field}")),
        )),
        None => Ok(()),
    }
}

#[utoipa::path(get, path = "/admin/v1/use-cases", tag = "use cases",
    params(("after" = Option<String>, Query), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200"), ("pod_id" = Option<String>, Query, min_length = 1), ("stage" = Option<String>, Query, pattern = "^(proposed|pilot|production|retired)$", description = "proposed | pilot | production | retired")),
    responses((status = 200, body = UseCasePage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Use cases the caller may read, filtered.
pub async fn list_use_cases(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<UseCasePage>> {
    let page = list_query(&q, "uc")?;
    let stage = match q.get("stage") {
        None => None,
        Some(s) => Some(m::Stage::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "`stage` must be proposed, pilot, production or retired",
                Some("stage".into()),
            )
        })?),
    };
    let pod_ids = match (filter_param(&q, "pod_id")?, p.visible_pods()) {
        (Some(pod), Some(v)) => Some(if v.iter().any(|v| v == pod) {
            vec![pod.to_string()]
        } else {
            Vec::new()
        }),
        (Some(pod), None) => Some(vec![pod.to_string()]),
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
            value_model: req.value_model.clone(),
            scores: req.scores,
            routes: Some(req.routes.clone()),
            pilot_caps: req.pilot_caps,
            limits: req.limits,
            slo: None,
            unchanged_since: None,
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
    let mut current = managed_use_case(&gw, &p, &id).await?;
    let (req, given): (UpdateUseCase, serde_json::Value) = body_and_value(&gw, &headers, b).await?;
    // The value model, pilot caps, limits and SLO are merged into the stored ones field by
    // field (a field left out keeps its value, `null` clears it), then written only if no one
    // changed the use case meanwhile — else read again and merged again.
    let mut tries = 0;
    loop {
        let patch = m::UseCasePatch {
            name: req.name.clone(),
            description: req.description.clone(),
            value_model: merged(&given, "value_model", &current.value_model)?,
            scores: req.scores,
            routes: req.routes.clone(),
            pilot_caps: merged(&given, "pilot_caps", &current.pilot_caps)?,
            limits: merged(&given, "limits", &current.limits)?,
            // `{}` removes the SLO, as it always has; so does clearing both its targets (an
            // objective alone is no SLO, and must not come back with a later target).
            slo: match given.get("slo") {
                Some(serde_json::Value::Object(o)) if o.is_empty() => Some(m::Slo::default()),
                _ => match merged(&given, "slo", &current.slo)? {
                    // Checked as given (an objective out of range is told, even with no target).
                    Some(s) if s.latency_p95_ms.is_none() && s.max_error_rate_pct.is_none() => {
                        check_slo(&s)?;
                        Some(m::Slo::default())
                    }
                    other => other,
                },
            },
            unchanged_since: Some(current.updated_at),
        };
        check_use_case(&gw, &patch)?;
        match gw.store.update_use_case(&p.actor(), &id, &patch).await {
            Ok(uc) => {
                gw.changed(Changed::Keys).await;
                return Ok(Json(uc.into()));
            }
            Err(m::StoreError::Conflict(message)) => {
                let now = gw.store.get_use_case(&id).await?;
                tries += 1;
                // Each try loses only to a write that succeeded meanwhile: many writers at once
                // on one use case still each get through within this many.
                if now.updated_at == current.updated_at || tries >= 64 {
                    return Err(m::StoreError::Conflict(message).into());
                }
                current = now;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Field `field` of a partial update merged into `current`: the fields given replace theirs (a
/// field given as `null` is cleared: no limit, no target), the rest are kept. `None` when the
/// update leaves the field out or gives it as `null` (as for every other field of a use case:
/// a client that writes unset fields as `null` changes nothing).
fn merged<T>(given: &serde_json::Value, field: &str, current: &T) -> Result<Option<T>>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    let over = match given.get(field) {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Object(o)) => o,
        // The typed body has already refused anything else.
        Some(_) => {
            return Err(ApiError::invalid(
                format!("`{field}` must be an object"),
                Some(field.into()),
            ));
        }
    };
    let mut value = serde_json::to_value(current).map_err(|_| ApiError::Internal)?;
    let serde_json::Value::Object(fields) = &mut value else {
        return Err(ApiError::Internal);
    };
    for (k, v) in over {
        if v.is_null() {
            fields.remove(k);
        } else {
            fields.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| ApiError::invalid(format!("`{field}`: {e}"), Some(field.into())))
}

#[utoipa::path(post, path = "/admin/v1/use-cases/{id}/stage", tag = "use cases", params(("id" = String, Path)), request_body = ChangeStage,
    responses((status = 200, body = UseCase), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Moves a use case to another stage, recording who, when and why (its pod's lead, or a platform
/// admin). Allowed: proposed→pilot|retired, pilot→production|proposed|retired, production→pilot|retired.
///
/// Moving up (into pilot or production) passes the organization's gate: unless every line of the
/// checklist (`GET …/gate`) is met, the answer is 409 `gate_unmet` naming the unmet lines, and
/// the refusal is audited with its checklist. Approvals sign a promotion request
/// (`POST …/promotion-requests`). A platform admin
/// may pass an unmet gate with `"override": true`: the reason and the unmet lines are audited and
/// shown on the use case ever after.
pub async fn change_stage(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<UseCase>> {
    let uc = managed_use_case(&gw, &p, &id).await?;
    let req: ChangeStage = body(&gw, &headers, b).await?;
    crate::gates::reason_ok(&req.reason)?;
    if req.override_gate && !p.is_admin() {
        return Err(ApiError::Forbidden {
            message: "only a platform admin may override a gate".into(),
            code: "role_forbids",
        });
    }
    let not_allowed = |e: m::StoreError| match e {
        m::StoreError::Invalid(message) => ApiError::Conflict {
            message,
            code: "stage_transition_not_allowed",
        },
        e => e.into(),
    };
    if !uc.stage.can_move_to(req.to) {
        return Err(not_allowed(m::StoreError::Invalid(format!(
            "a use case cannot move from {} to {}",
            uc.stage.as_str(),
            req.to.as_str()
        ))));
    }
    let gated = crate::gates::next_up(uc.stage) == Some(req.to);
    let (checklist, overridden, request_id) = if gated {
        let (c, request, _) = crate::gates::judge(&gw, &uc, req.to).await?;
        let json = serde_json::to_value(&c).map_err(|_| ApiError::Internal)?;
        if !c.met && !req.override_gate {
            gw.store
                .append_audit(
                    &p.actor(),
                    "use_case.gate_refused",
                    "use_case",
                    &uc.id,
                    serde_json::json!({"from": uc.stage, "to": req.to, "reason": req.reason, "gate": json}),
                )
                .await?;
            return Err(ApiError::Conflict {
                message: crate::gates::refusal(&c),
                code: "gate_unmet",
            });
        }
        (json, (!c.met).then(|| c.unmet()), request.map(|r| r.id))
    } else {
        (serde_json::Value::Null, None, None)
    };
    use tollgate_store::GateQueries;
    let (uc, _) = gw
        .store
        .change_stage_gated(
            &p.actor(),
            &id,
            uc.stage,
            req.to,
            &req.reason,
            request_id.as_deref(),
            checklist,
            overridden,
        )
        .await
        .map_err(not_allowed)?;
    gw.changed(Changed::Keys).await;
    Ok(Json(uc.into()))
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/stage-changes", tag = "use cases",
    params(("id" = String, Path), ("after" = Option<String>, Query, min_length = 36, max_length = 36, description = "cursor: the `next` of an earlier page (a stage change's id, `stg_…`)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200 (default 50)")),
    responses((status = 200, body = StageChangePage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// The stage history of a use case, oldest first, a page at a time.
pub async fn list_stage_changes(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<StageChangePage>> {
    let req = list_query(&q, "stg")?;
    readable_use_case(&gw, &p, &id).await?;
    let page = gw
        .store
        .list_stage_changes(&id, &req)
        .await
        .map_err(|e| match e {
            // A well-formed id that is not one of this use case's changes: not a place in it.
            tollgate_store::StoreError::Invalid(_) => ApiError::invalid(
                "`after` must be the `next` of an earlier page of this use case's stage changes",
                Some("after".into()),
            ),
            other => other.into(),
        })?;
    Ok(Json(page.into()))
}
