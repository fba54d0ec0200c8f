//! The audit trail, read-only.

use crate::common::*;

#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit",
    params(("after" = Option<i64>, Query, minimum = 0, description = "sequence number"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200")),
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
    // Its cursor is a sequence number, not an id.
    let page = PageRequest {
        after: None,
        limit: page_limit(&q, 0)?,
    };
    let after = whole_number(&q, "after", 0, i64::MAX)?.unwrap_or(0);
    Ok(Json(
        gw.store
            .list_audit(after, page.size())
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}
