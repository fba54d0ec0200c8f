//! Stored payloads: auditors read one with a reason (the read is audited, and so part of the
//! audit chain, before anything is opened); an end user's payloads are erased by destroying their
//! data keys.

use crate::common::*;
use tollgate_store::PayloadQueries;

#[utoipa::path(post, path = "/admin/v1/payloads/{record_id}/read", tag = "payloads", params(("record_id" = String, Path)), request_body = ReadPayload,
    responses((status = 200, body = PayloadView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 410, body = ErrorResponse)))]
/// Opens a request's stored payload (auditors, risk officers, platform admins), with a reason
/// that goes to the audit trail first. 410 once its key was destroyed (retention or erasure).
pub async fn read_payload(
    State(gw): Gw,
    p: Principal,
    Path(record_id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<PayloadView>> {
    // The request is read first, as on every other route (415, 400 before any lookup): what a
    // malformed request learns does not depend on whether the record exists.
    let req: ReadPayload = body(&gw, &headers, b).await?;
    let reason = req.reason.trim();
    if reason.chars().count() < 3
        || req.reason.chars().count() > 500
        || reason.chars().any(forbidden_char)
    {
        return Err(ApiError::invalid(
            "`reason` must say why, in 3 to 500 characters without control characters",
            Some("reason".into()),
        ));
    }
    let what = format!("payload of record {record_id}");
    let stored = gw
        .store
        .get_payload(&record_id)
        .await?
        .ok_or_else(|| ApiError::Missing(what.clone()))?;
    let pod = gw.store.get_use_case(&stored.use_case_id).await?.pod_id;
    if let Err(e) = p.check(&pod, &what, p.reads_payloads()) {
        // A refused attempt on a payload the caller can see is worth knowing of too (up to a
        // bound per person and hour, so it cannot be used to flood the trail).
        if matches!(e, ApiError::Forbidden { .. })
            && gw.denied_reads.audit(&p.actor(), gw.clock.now_ms())
        {
            gw.store
                .append_audit(
                    &p.actor(),
                    "payload.read_denied",
                    "record",
                    &record_id,
                    serde_json::json!({}),
                )
                .await?;
        }
        return Err(e);
    }
    // Audited before it is opened: a read that is not recorded does not happen.
    gw.store
        .append_audit(
            &p.actor(),
            "payload.read",
            "record",
            &record_id,
            serde_json::json!({"reason": reason, "mode": stored.mode}),
        )
        .await?;
    let mut view = PayloadView {
        record_id: record_id.clone(),
        mode: stored.mode.clone(),
        prompt: None,
        answer: None,
        prompt_bytes: stored.prompt_bytes,
        answer_bytes: stored.answer_bytes,
        at: tollgate_types::time::rfc3339(stored.at),
    };
    let (Some(key_id), Some(sealed)) = (&stored.data_key_id, &stored.sealed) else {
        return Ok(Json(view));
    };
    let key = gw
        .store
        .get_data_key(key_id)
        .await?
        .ok_or(ApiError::Internal)?;
    let Some(wrapped) = key.wrapped else {
        let (at, why) = key.destroyed.unwrap_or_default();
        return Err(ApiError::Gone {
            message: format!(
                "the payload of record {record_id} was made unreadable on {} ({why}): its data key was destroyed",
                tollgate_types::time::rfc3339(at)
            ),
            code: "payload_erased",
        });
    };
    let dk = gw.master_key.unwrap_key(key_id, &wrapped).map_err(|e| {
        tracing::error!(record_id, error = %e, "a stored data key does not open under the master key");
        ApiError::Internal
    })?;
    let plain = dk
        .open(
            sealed,
            &tollgate_payload::binding(&record_id, &stored.use_case_id, &stored.end_user_hash),
        )
        .map_err(|e| {
            tracing::error!(record_id, error = %e, "a stored payload does not open");
            ApiError::Internal
        })?;
    let v: serde_json::Value = serde_json::from_slice(&plain).map_err(|_| ApiError::Internal)?;
    view.prompt = v["prompt"].as_str().map(str::to_string);
    view.answer = v["answer"].as_str().map(str::to_string);
    Ok(Json(view))
}

#[utoipa::path(post, path = "/admin/v1/erasure", tag = "payloads", request_body = EraseEndUser,
    responses((status = 200, body = Erasure), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
/// Erases an end user (risk officers and platform admins): their data keys are destroyed, so
/// every payload stored for them is unreadable, and their id is removed from the ledger (its
/// keyed pseudonym stays, so counts and the audit chain still hold). Audited.
pub async fn erase_end_user(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<Erasure>> {
    if !p.erases() {
        return Err(ApiError::Forbidden {
            message: "only risk officers and platform admins erase end users".into(),
            code: "role_forbids",
        });
    }
    let req: EraseEndUser = body(&gw, &headers, b).await?;
    // The ids requests carry are header values: never empty, never control characters.
    if req.end_user.is_empty()
        || req.end_user.chars().count() > 256
        || req.end_user.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "`end_user` must be the id the requests carried (1 to 256 characters, no control characters)",
            Some("end_user".into()),
        ));
    }
    let hash = gw.secret.end_user_pseudonym(&req.end_user);
    // The person's requests answered before the erasure are in the store first, so it reaches
    // them too (not only the ones the ledger had written).
    gw.plane.settled().await;
    let (keys, records) = gw
        .store
        .erase_end_user(&p.actor(), &hash, gw.clock.now_ms())
        .await?;
    // The data plane forgets the keys it holds, so none of them seals anything again.
    gw.plane.refresh(Changed::PayloadKeys).await?;
    Ok(Json(Erasure {
        end_user_hash: hash,
        keys_destroyed: keys,
        records,
    }))
}
