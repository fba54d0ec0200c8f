//! Row → model mapping for the SQLite backend.

use crate::StoreError;
use crate::model::*;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

type R<T> = Result<T, StoreError>;

fn bad(what: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("unreadable {what} {value:?} in the database"))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> R<T> {
    serde_json::from_str(s).map_err(|_| bad(what, s))
}

pub(super) fn parse_stage(s: &str) -> R<Stage> {
    Stage::parse(s).ok_or_else(|| bad("stage", s))
}

pub(super) fn pod(r: &SqliteRow) -> R<Pod> {
    Ok(Pod {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) fn user(r: &SqliteRow) -> R<User> {
    let role: Option<String> = r.try_get("org_role")?;
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        org_role: role
            .map(|s| OrgRole::parse(&s).ok_or_else(|| bad("org role", &s)))
            .transpose()?,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}

pub(super) fn membership(r: &SqliteRow) -> R<Membership> {
    let role: String = r.try_get("role")?;
    Ok(Membership {
        pod_id: r.try_get("pod_id")?,
        user_id: r.try_get("user_id")?,
        role: PodRole::parse(&role).ok_or_else(|| bad("pod role", &role))?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) fn use_case(r: &SqliteRow) -> R<UseCase> {
    Ok(UseCase {
        id: r.try_get("id")?,
        pod_id: r.try_get("pod_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        stage: parse_stage(&r.try_get::<String, _>("stage")?)?,
        value_model: from_json("value model", &r.try_get::<String, _>("value_model")?)?,
        scores: from_json("scores", &r.try_get::<String, _>("scores")?)?,
        routes: from_json("routes", &r.try_get::<String, _>("routes")?)?,
        pilot_caps: from_json("pilot caps", &r.try_get::<String, _>("pilot_caps")?)?,
        limits: from_json("limits", &r.try_get::<String, _>("limits")?)?,
        slo: from_json("slo", &r.try_get::<String, _>("slo")?)?,
        gate_overrides: from_json("gate overrides", &r.try_get::<String, _>("gate_overrides")?)?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn key_with(r: &SqliteRow, p: &str) -> R<ApiKey> {
    let col = |c: &str| format!("{p}{c}");
    let scopes: Option<String> = r.try_get(col("scopes").as_str())?;
    Ok(ApiKey {
        id: r.try_get(col("id").as_str())?,
        use_case_id: r.try_get(col("use_case_id").as_str())?,
        user_id: r.try_get(col("user_id").as_str())?,
        name: r.try_get(col("name").as_str())?,
        prefix: r.try_get(col("prefix").as_str())?,
        hash: r.try_get(col("hash").as_str())?,
        scopes: scopes.map(|s| from_json("scopes", &s)).transpose()?,
        expires_at: r.try_get(col("expires_at").as_str())?,
        revoked_at: r.try_get(col("revoked_at").as_str())?,
        replaced_by: r.try_get(col("replaced_by").as_str())?,
        limits: from_json("limits", &r.try_get::<String, _>(col("limits").as_str())?)?,
        created_at: r.try_get(col("created_at").as_str())?,
        created_by: r.try_get(col("created_by").as_str())?,
        evaluation: r.try_get::<String, _>(col("purpose").as_str())? == "evaluation",
    })
}

pub(super) fn api_key(r: &SqliteRow) -> R<ApiKey> {
    key_with(r, "")
}

/// A key whose columns were selected as `k_<column>` (joined with its use case).
pub(super) fn prefixed_api_key(r: &SqliteRow) -> R<ApiKey> {
    key_with(r, "k_")
}

pub(super) fn user_token(r: &SqliteRow) -> R<UserToken> {
    Ok(UserToken {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        hash: r.try_get("hash")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) fn stage_change(r: &SqliteRow) -> R<StageChange> {
    Ok(StageChange {
        id: r.try_get("id")?,
        use_case_id: r.try_get("use_case_id")?,
        from: parse_stage(&r.try_get::<String, _>("from_stage")?)?,
        to: parse_stage(&r.try_get::<String, _>("to_stage")?)?,
        actor: r.try_get("actor")?,
        reason: r.try_get("reason")?,
        at: r.try_get("at")?,
    })
}

pub(super) fn audit_event(r: &SqliteRow) -> R<AuditEvent> {
    Ok(AuditEvent {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        object_type: r.try_get("object_type")?,
        object_id: r.try_get("object_id")?,
        details: from_json("audit details", &r.try_get::<String, _>("details")?)?,
    })
}
