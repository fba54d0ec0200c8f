//! The admin API's wire types: what it accepts (unknown fields rejected) and what it answers (times
//! as RFC 3339). Each derives its OpenAPI schema.

use serde::{Deserialize, Serialize};
use tollgate_store as m;
use tollgate_store::{Limits, OrgRole, PilotCaps, PodRole, Scores, Slo, Stage, ValueModel};
use tollgate_types::time::rfc3339;
use utoipa::ToSchema;

/// A pod.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pod {
    /// `pod_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<m::Pod> for Pod {
    fn from(p: m::Pod) -> Self {
        Pod {
            id: p.id,
            name: p.name,
            description: p.description,
            created_at: rfc3339(p.created_at),
        }
    }
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// `usr_…`.
    pub id: String,
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
    /// Org-wide role.
    pub org_role: Option<OrgRole>,
    /// RFC 3339.
    pub created_at: String,
    /// Whether the user is disabled: their personal tokens do not authenticate.
    pub disabled: bool,
    /// RFC 3339: since when the user is disabled.
    pub disabled_at: Option<String>,
}

impl From<m::User> for User {
    fn from(u: m::User) -> Self {
        User {
            id: u.id,
            email: u.email,
            name: u.name,
            org_role: u.org_role,
            created_at: rfc3339(u.created_at),
            disabled: u.disabled_at.is_some(),
            disabled_at: u.disabled_at.map(rfc3339),
        }
    }
}

/// A pod membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    /// The pod.
    pub pod_id: String,
    /// The user.
    pub user_id: String,
    /// Role in the pod.
    pub role: PodRole,
    /// RFC 3339.
    pub since: String,
}

impl From<m::Membership> for Member {
    fn from(x: m::Membership) -> Self {
        Member {
            pod_id: x.pod_id,
            user_id: x.user_id,
            role: x.role,
            since: rfc3339(x.created_at),
        }
    }
}

/// A use case.
#[derive(Debug, Serialize, ToSchema)]
pub struct UseCase {
    /// `uc_…`.
    pub id: String,
    /// Owning pod.
    pub pod_id: String,
    /// Name (unique in the pod).
    pub name: String,
    /// Description.
    pub description: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Value model.
    pub value_model: ValueModel,
    /// Scores, 1–5.
    pub scores: Scores,
    /// Priority 0–100, derived from the scores.
    pub priority: u32,
    /// Routes its keys may call.
    pub routes: Vec<String>,
    /// Caps during the pilot.
    pub pilot_caps: PilotCaps,
    /// Rate limits of the whole use case.
    pub limits: Limits,
    /// Service-level objective over 5-minute windows (`{}`: none).
    pub slo: Slo,
    /// Stage changes a platform admin made past an unmet gate, with why and what was unmet.
    pub gate_overrides: Vec<GateOverride>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A stage change a platform admin made past an unmet gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct GateOverride {
    /// The stage change, `stg_…`.
    pub stage_change_id: String,
    /// Who.
    pub actor: String,
    /// From.
    pub from: Stage,
    /// To.
    pub to: Stage,
    /// Why the gate was overridden.
    pub reason: String,
    /// The checklist lines that were not met.
    pub unmet: Vec<String>,
    /// RFC 3339.
    pub at: String,
}

impl From<m::UseCase> for UseCase {
    fn from(u: m::UseCase) -> Self {
        UseCase {
            priority: u.scores.priority(),
            id: u.id,
            pod_id: u.pod_id,
            name: u.name,
            description: u.description,
            stage: u.stage,
            value_model: u.value_model,
            scores: u.scores,
            routes: u.routes,
            pilot_caps: u.pilot_caps,
            limits: u.limits,
            slo: u.slo,
            gate_overrides: u
                .gate_overrides
                .into_iter()
                .map(|o| GateOverride {
                    stage_change_id: o.stage_change_id,
                    actor: o.actor,
                    from: o.from,
                    to: o.to,
                    reason: o.reason,
                    unmet: o.unmet,
                    at: rfc3339(o.at),
                })
                .collect(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
        }
    }
}

/// A virtual key (never its secret part).
#[derive(Debug, Serialize, ToSchema)]
pub struct Key {
    /// `key_…`.
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// The person it was issued to.
    pub user_id: Option<String>,
    /// Name.
    pub name: String,
    /// Visible start of the key.
    pub prefix: String,
    /// Routes it is limited to (`null`: all of the use case's).
    pub scopes: Option<Vec<String>>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// RFC 3339: revocation, or the end of the grace period after a rotation.
    pub revoked_at: Option<String>,
    /// The key that replaced it.
    pub replaced_by: Option<String>,
    /// Rate limits of this key.
    pub limits: Limits,
    /// Whether it authenticates now.
    pub active: bool,
    /// RFC 3339.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
}

impl From<m::ApiKey> for Key {
    fn from(k: m::ApiKey) -> Self {
        Key {
            active: k.is_active(m::now_ms()),
            id: k.id,
            use_case_id: k.use_case_id,
            user_id: k.user_id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            expires_at: k.expires_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
            replaced_by: k.replaced_by,
            limits: k.limits,
            created_at: rfc3339(k.created_at),
            created_by: k.created_by,
        }
    }
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    /// The key record.
    pub key: Key,
    /// The full key (`tg_…`). Store it now: it is not shown again.
    pub secret: String,
}

/// A rotation: the old key (valid until the end of the grace period) and the new one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotation {
    /// The old key.
    pub old: Key,
    /// The new key.
    pub new: NewKey,
}

/// A personal admin token just created.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    /// `tok_…`.
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Visible start.
    pub prefix: String,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// The full token (`tgu_…`). Store it now: it is not shown again.
    pub secret: String,
}

/// A personal admin token (never its secret or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// `tok_…`.
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Visible start of the token.
    pub prefix: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// RFC 3339.
    pub revoked_at: Option<String>,
    /// Whether it is neither revoked nor expired (it authenticates unless its user is disabled).
    pub active: bool,
}

impl From<m::UserToken> for Token {
    fn from(t: m::UserToken) -> Self {
        Token {
            active: t.is_active(m::now_ms()),
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            prefix: t.prefix,
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

/// A stage change.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageChange {
    /// `stg_…`.
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// From.
    pub from: Stage,
    /// To.
    pub to: Stage,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

impl From<m::StageChange> for StageChange {
    fn from(c: m::StageChange) -> Self {
        StageChange {
            id: c.id,
            use_case_id: c.use_case_id,
            from: c.from,
            to: c.to,
            actor: c.actor,
            reason: c.reason,
            at: rfc3339(c.at),
        }
    }
}

/// An audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Sequence number.
    pub seq: i64,
    /// RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Object type.
    pub object_type: String,
    /// Object id.
    pub object_id: String,
    /// Details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<m::AuditEvent> for AuditEvent {
    fn from(e: m::AuditEvent) -> Self {
        AuditEvent {
            seq: e.seq,
            at: rfc3339(e.at),
            actor: e.actor,
            action: e.action,
            object_type: e.object_type,
            object_id: e.object_id,
            details: e.details,
        }
    }
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `admin` or a user id.
    pub actor: String,
    /// Org-wide role.
    pub org_role: Option<OrgRole>,
    /// Pod memberships.
    pub pods: Vec<PodMembership>,
}

/// One membership of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct PodMembership {
    /// The pod.
    pub pod_id: String,
    /// The role.
    pub role: PodRole,
}

macro_rules! page {
    ($name:ident, $item:ty) => {
        /// A page of a list; pass `next` as `after` for the following page.
        #[derive(Debug, ::serde::Serialize, ::utoipa::ToSchema)]
        pub struct $name {
            /// The items.
            pub items: Vec<$item>,
            /// Cursor of the next page; `null` on the last.
            pub next: Option<String>,
        }

        impl<T: Into<$item>> From<::tollgate_store::Page<T>> for $name {
            fn from(p: ::tollgate_store::Page<T>) -> Self {
                $name {
                    items: p.items.into_iter().map(Into::into).collect(),
                    next: p.next,
                }
            }
        }
    };
}
pub(crate) use page;

page!(PodPage, Pod);
page!(UserPage, User);
page!(UseCasePage, UseCase);
page!(KeyPage, Key);
page!(TokenPage, Token);
page!(BudgetPage, Budget);
page!(MemberPage, Member);
page!(StageChangePage, StageChange);

/// `POST /pods`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePod {
    /// Unique name, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: String,
    /// What it does.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub description: String,
}

/// `PATCH /pods/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePod {
    /// New name.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub description: Option<String>,
}

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique e-mail: one `@` between non-empty parts, no spaces inside (around it they are
    /// trimmed).
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\u000b\u000c\r\u0085 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t\n\u000b\u000c\r\u0085 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@\t\n\u000b\u000c\r\u0085 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+[\t\n\u000b\u000c\r\u0085 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    /// Name, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: String,
    /// Org-wide role.
    #[serde(default)]
    pub org_role: Option<OrgRole>,
}

/// `PATCH /users/{id}` (absent fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New name, 1–100 characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: Option<String>,
    /// New org-wide role; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<OrgRole>)]
    pub org_role: Option<Option<OrgRole>>,
    /// `true` disables the user (their personal tokens stop at once), `false` enables them.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A field that may be `null`: absent is `None`, `null` is `Some(None)`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PUT /pods/{id}/members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    /// Role in the pod.
    pub role: PodRole,
}

/// `POST /use-cases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUseCase {
    /// Owning pod.
    pub pod_id: String,
    /// Name, unique in the pod, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: String,
    /// Description.
    #[serde(default)]
    #[schema(
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub description: String,
    /// Value model.
    #[serde(default)]
    pub value_model: Option<ValueModel>,
    /// Scores (default 3 each).
    #[serde(default)]
    pub scores: Option<Scores>,
    /// Routes from the gateway's config.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Caps during the pilot.
    #[serde(default)]
    pub pilot_caps: Option<PilotCaps>,
    /// Rate limits of the whole use case.
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// `PATCH /use-cases/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUseCase {
    /// New name.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    #[schema(
        max_length = 4000,
        pattern = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub description: Option<String>,
    /// New value model.
    #[serde(default)]
    pub value_model: Option<ValueModel>,
    /// New scores.
    #[serde(default)]
    pub scores: Option<Scores>,
    /// New routes.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// New pilot caps.
    #[serde(default)]
    pub pilot_caps: Option<PilotCaps>,
    /// New rate limits.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// New service-level objective (`{}` removes it).
    #[serde(default)]
    pub slo: Option<Slo>,
}

/// `POST /use-cases/{id}/stage`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeStage {
    /// The new stage.
    pub to: Stage,
    /// Why (recorded with who and when): not blank, at most 2000 characters.
    #[schema(
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*[^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\t\n \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    pub reason: String,
    /// Move past an unmet gate (platform admins only; the reason and the unmet lines are
    /// audited and shown on the use case ever after).
    #[serde(default, rename = "override")]
    #[schema(rename = "override")]
    pub override_gate: bool,
}

/// `POST /keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The use case it serves.
    pub use_case_id: String,
    /// A name to recognise it, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: String,
    /// Limit to these routes (a subset of the use case's).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Expiry, RFC 3339, in the future.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// The person it is issued to.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Rate limits of this key.
    #[serde(default)]
    pub limits: Option<Limits>,
}

/// `POST /keys/{id}/rotate`.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old key keeps working, seconds (0–604800; default 3600).
    #[serde(default)]
    #[schema(maximum = 604800)]
    pub grace_seconds: Option<u64>,
}

/// `POST /users/{id}/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name to recognise it, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]{0,98}[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069 \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$"
    )]
    pub name: String,
    /// Expiry, RFC 3339, in the future and at most 90 days away (default: 90 days). A token
    /// issued to its own user by a caller using a personal token expires no later than that token.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Every error: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// For a person.
    pub message: String,
    /// Class (`invalid_request_error`, `permission_error`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The field at fault.
    pub param: Option<String>,
    /// Machine-readable code.
    pub code: Option<String>,
}

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// One key.
    Key,
    /// One use case's production traffic (its keys; not its evaluation runs).
    UseCase,
    /// One use case's evaluation runs (the keys the server mints for them).
    UseCaseEval,
    /// One pod.
    Pod,
    /// The whole organization.
    Org,
}

/// A budget's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// A calendar day.
    Day,
    /// A week from Monday.
    Week,
    /// A calendar month.
    Month,
    /// No reset.
    Lifetime,
}

/// Soft budgets alert; hard budgets also reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMode {
    /// Alerts at 50, 80 and 100 %.
    Soft,
    /// Alerts, and rejects requests that could pass it (429 `budget_exceeded`).
    Hard,
}

/// `POST /budgets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBudget {
    /// What it limits.
    pub scope: BudgetScope,
    /// The key, use case or pod id (absent for `org`).
    #[serde(default)]
    pub scope_id: Option<String>,
    /// The limit in USD, a decimal string (`"250"`, `"12.50"`): more than 0, at most 9 decimals.
    #[schema(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([0-9]+(\.[0-9]*)?|\.[0-9]+)[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub amount_usd: String,
    /// The period.
    pub period: BudgetPeriod,
    /// IANA time zone periods align to (default `UTC`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Soft or hard.
    pub mode: BudgetMode,
}

/// A budget and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Budget {
    /// `bud_…`.
    pub id: String,
    /// What it limits.
    pub scope: String,
    /// The key, use case or pod id (`null` for org).
    pub scope_id: Option<String>,
    /// The period.
    pub period: String,
    /// Time zone of the periods.
    pub time_zone: String,
    /// Soft or hard.
    pub mode: String,
    /// The limit, USD.
    pub amount_usd: String,
    /// The limit, nano-USD.
    pub amount_nano_usd: u64,
    /// Spent in the current period, nano-USD.
    pub spent_nano_usd: u64,
    /// Reserved by requests in flight, nano-USD.
    pub reserved_nano_usd: u64,
    /// Start of the current period, RFC 3339.
    pub period_start: Option<String>,
    /// End of the current period, RFC 3339 (`null` for lifetime).
    pub period_end: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
}

impl Budget {
    /// From the budgeter's status of a budget.
    pub fn from_status(s: tollgate_store::BudgetStatus) -> Self {
        let b = s.budget;
        Budget {
            amount_usd: tollgate_meter::Money(b.amount_nano_usd).usd(),
            id: b.id,
            scope_id: (!b.scope_id.is_empty()).then_some(b.scope_id),
            scope: b.scope,
            period: b.period.clone(),
            time_zone: b.time_zone,
            mode: b.mode,
            amount_nano_usd: b.amount_nano_usd,
            spent_nano_usd: s.spent_nano_usd,
            reserved_nano_usd: s.reserved_nano_usd,
            period_start: (b.period != "lifetime").then(|| rfc3339(s.period_start)),
            period_end: (s.period_end != i64::MAX).then(|| rfc3339(s.period_end)),
            created_at: rfc3339(b.created_at),
            created_by: b.created_by,
        }
    }
}

/// One group of a spend report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpendRow {
    /// The pod, use case, key, route or model id, or the day (`YYYY-MM-DD`).
    pub group: String,
    /// The pod's, use case's or key's name, when the group is one.
    pub name: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Requests on unpriced deployments.
    pub unpriced: u64,
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Cache-read input tokens.
    pub cached_input_tokens: u64,
    /// Cache-write input tokens.
    pub cache_write_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Cost, nano-USD.
    pub cost_nano_usd: u64,
    /// Cost, USD (decimal string).
    pub cost_usd: String,
}

/// A spend report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpendReport {
    /// The grouping.
    pub by: String,
    /// Start, RFC 3339 (rounded down to the hour).
    pub from: String,
    /// End, RFC 3339 (rounded up to the hour).
    pub to: String,
    /// One row per group, most expensive first.
    pub rows: Vec<SpendRow>,
    /// The sum of the rows.
    pub total: SpendRow,
}

impl SpendRow {
    /// A row from rollup totals.
    pub fn new(group: String, name: Option<String>, t: &tollgate_store::Totals) -> Self {
        SpendRow {
            group,
            name,
            requests: t.requests,
            errors: t.errors,
            unpriced: t.unpriced,
            input_tokens: t.input_tokens,
            cached_input_tokens: t.cached_input_tokens,
            cache_write_tokens: t.cache_write_tokens,
            output_tokens: t.output_tokens,
            reasoning_tokens: t.reasoning_tokens,
            cost_nano_usd: t.cost_nano_usd,
            cost_usd: tollgate_meter::Money(t.cost_nano_usd).usd(),
        }
    }
}

/// One group of a month-end forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastRow {
    /// The pod or use case id, or `total`.
    pub group: String,
    /// Its name, when known.
    pub name: Option<String>,
    /// Spent since the month began, nano-USD.
    pub spent_nano_usd: u64,
    /// Spent in the trailing window, nano-USD.
    pub window_spent_nano_usd: u64,
    /// Forecast for the whole month, nano-USD.
    pub forecast_nano_usd: u64,
    /// Forecast, USD.
    pub forecast_usd: String,
}

/// A month-end forecast.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forecast {
    /// How it is computed.
    pub method: String,
    /// Month start, RFC 3339 (UTC).
    pub month_start: String,
    /// Month end, RFC 3339 (UTC).
    pub month_end: String,
    /// Minutes in the trailing window the rate comes from (up to the end of the current minute).
    pub window_minutes: i64,
    /// Minutes left in the month after the current one.
    pub minutes_left: i64,
    /// One row per group, most expensive forecast first.
    pub rows: Vec<ForecastRow>,
    /// The sum of the rows.
    pub total: ForecastRow,
}

/// A key nobody used for 30 days.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdleKey {
    /// The key.
    pub key_id: String,
    /// Its use case.
    pub use_case_id: String,
    /// Its name.
    pub name: String,
    /// Its visible prefix.
    pub prefix: String,
    /// The hour it was last used in (RFC 3339), `null` if never.
    pub last_used: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// Identical requests of a use case: what an exact-match cache would have saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicatePromptAdvice {
    /// The use case.
    pub use_case_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its successful requests in the window.
    pub requests: u64,
    /// Of these, requests identical to an earlier one (same route, messages and parameters).
    pub duplicates: u64,
    /// `duplicates ÷ requests`, in percent, one decimal.
    pub share_percent: String,
    /// What the duplicates cost, nano-USD: what an exact cache would have saved.
    pub duplicate_cost_nano_usd: u64,
    /// The same, in USD.
    pub duplicate_cost_usd: String,
}

/// Spend of a use case on a premium model that the catalog pairs with a cheaper one.
#[derive(Debug, Serialize, ToSchema)]
pub struct PremiumModelAdvice {
    /// The use case.
    pub use_case_id: String,
    /// Its name.
    pub name: Option<String>,
    /// The upstream model it spent on.
    pub model: String,
    /// What it spent on it in the window, nano-USD.
    pub spend_nano_usd: u64,
    /// The catalog's cheaper candidate.
    pub cheaper_model: String,
    /// The same tokens at the candidate's list prices, nano-USD.
    pub cost_on_cheaper_nano_usd: u64,
    /// `spend − cost on cheaper`, nano-USD.
    pub saving_nano_usd: u64,
    /// The same, in USD.
    pub saving_usd: String,
}

/// A budget that will run out before its period ends at the current rate.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetAtRisk {
    /// The budget.
    pub budget_id: String,
    /// What it limits.
    pub scope: String,
    /// The key, use case or pod id (empty for org).
    pub scope_id: String,
    /// The limit, nano-USD.
    pub amount_nano_usd: u64,
    /// Spent in the period, nano-USD.
    pub spent_nano_usd: u64,
    /// Projected spend at the period's end, nano-USD.
    pub projected_nano_usd: u64,
    /// When it runs out at the current rate, RFC 3339.
    pub runs_out_at: String,
    /// End of the period, RFC 3339.
    pub period_end: String,
}

/// Totals of a FOCUS export, read when it starts (in the `x-tollgate-focus-*` headers, and in the
/// JSON form's `summary`). The rows are streamed a day at a time after it, so for the current
/// month, requests recorded meanwhile may add to them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FocusSummary {
    /// Rows exported.
    pub rows: u64,
    /// Of these, rows of unpriced deployments (`x_Unpriced` = `true`): their unit prices and
    /// list and contracted costs are null (unknown, never 0), and so are `BilledCost` and
    /// `EffectiveCost` when the ledger holds no cost for them. FOCUS 1.2 declares those cost
    /// columns not nullable, so a strict validator flags these rows; price the deployment (a
    /// `price:` in the config) to make them whole.
    pub unpriced_rows: u64,
    /// Σ `BilledCost` (of the rows where it is known), nano-USD.
    pub billed_nano_usd: u64,
    /// The same, in USD.
    pub billed_usd: String,
    /// The month's spend in the spend report (same pods), nano-USD.
    pub spend_report_nano_usd: u64,
    /// Spend recorded before the FOCUS rollups existed (store version 5), not in the export.
    pub not_exported_nano_usd: u64,
}

impl FocusSummary {
    /// The summary of the store's counts: what the spend report holds beyond what the FOCUS
    /// rollups hold was recorded before they existed, and is named as not exported.
    pub fn from_counts(counts: &m::FocusCounts) -> FocusSummary {
        FocusSummary {
            rows: counts.rows,
            unpriced_rows: counts.unpriced_rows,
            billed_nano_usd: counts.billed_nano_usd,
            billed_usd: tollgate_meter::Money(counts.billed_nano_usd).usd(),
            spend_report_nano_usd: counts.spend_nano_usd,
            not_exported_nano_usd: counts.spend_nano_usd.saturating_sub(counts.billed_nano_usd),
        }
    }
}

/// `GET /admin/v1/reports/focus?format=json` (streamed; this type describes its shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct FocusExport {
    /// FOCUS version of the columns.
    pub version: String,
    /// The month asked for.
    pub month: String,
    /// Inclusive start.
    pub billing_period_start: String,
    /// Exclusive end.
    pub billing_period_end: String,
    /// Totals and reconciliation with the spend report.
    pub summary: FocusSummary,
    /// One object per row, keyed by column name; decimals as strings (exact).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Cost advice (`GET /admin/v1/reports/advice`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Advice {
    /// How each list is computed.
    pub method: String,
    /// Start of the window the duplicate and premium-model advice read (RFC 3339; 30 days back).
    pub window_start: String,
    /// Use cases sending identical requests, most costly first.
    pub duplicate_prompts: Vec<DuplicatePromptAdvice>,
    /// Premium-model spend with a cheaper candidate, largest saving first.
    pub premium_models: Vec<PremiumModelAdvice>,
    /// Active keys with no request for 30 days (revoke them).
    pub idle_keys: Vec<IdleKey>,
    /// Budgets that will run out before their period ends, at the rate of the last 7 days (or of
    /// the period so far, if shorter).
    pub budgets_at_risk: Vec<BudgetAtRisk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_beyond_the_focus_rollups_is_named_not_exported() {
        let s = FocusSummary::from_counts(&m::FocusCounts {
            rows: 4,
            unpriced_rows: 1,
            billed_nano_usd: 1_500_000_000,
            spend_nano_usd: 1_750_000_001,
        });
        assert_eq!(
            (
                s.rows,
                s.unpriced_rows,
                s.billed_nano_usd,
                s.spend_report_nano_usd
            ),
            (4, 1, 1_500_000_000, 1_750_000_001)
        );
        assert_eq!(s.billed_usd, "1.50");
        assert_eq!(s.not_exported_nano_usd, 250_000_001);
        // Never negative: requests recorded between the two reads can make the export the larger.
        let s = FocusSummary::from_counts(&m::FocusCounts {
            billed_nano_usd: 9,
            spend_nano_usd: 7,
            ..Default::default()
        });
        assert_eq!(s.not_exported_nano_usd, 0);
    }
}

/// `PUT /policies/default`, `PUT /use-cases/{id}/policy`: a new version of a guard policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    /// The policy: `threshold`, `default`, `secrets`, `entities` (per type an action, or an
    /// action and a threshold), `scan`, `logging`, `retention_days`, `guard` (packs, custom,
    /// denied and allowed terms, injection). Absent fields take their defaults. See
    /// `docs/policies.md`.
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
    /// Why (kept with the version and in the audit trail), at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

/// A guard policy version as served.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// `default`, or the use case's id.
    pub scope: String,
    /// Where the policy in force comes from: `use_case` (its own), `default` (the org default),
    /// `builtin` (no policy stored); in histories, `removed` for a version that removed a use
    /// case's own policy.
    pub source: String,
    /// The version (`null` for the built-in policy).
    pub version: Option<i64>,
    /// The policy, every field written out (`null` for a removal).
    #[schema(value_type = Option<Object>)]
    pub policy: Option<serde_json::Value>,
    /// When the version was stored, RFC 3339.
    pub created_at: Option<String>,
    /// Who stored it.
    pub created_by: Option<String>,
    /// Why.
    pub note: Option<String>,
}

/// `POST /payloads/{record_id}/read`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadPayload {
    /// Why it is read (kept in the audit trail with who read it): 3 to 500 characters.
    #[schema(min_length = 3, max_length = 500)]
    pub reason: String,
}

/// A stored payload, opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayloadView {
    /// The request record.
    pub record_id: String,
    /// `metadata`, `masked` or `full`.
    pub mode: String,
    /// The prompt (JSON of the messages or the input); `null` for `metadata`.
    pub prompt: Option<String>,
    /// The answer's text; `null` for `metadata`.
    pub answer: Option<String>,
    /// Sizes, bytes.
    pub prompt_bytes: u64,
    /// Sizes, bytes.
    pub answer_bytes: u64,
    /// When the request arrived, RFC 3339.
    pub at: String,
}

/// `POST /erasure`: make one end user's stored payloads unreadable.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseEndUser {
    /// The id the requests carried in `x-tollgate-user`.
    #[schema(min_length = 1, max_length = 256)]
    pub end_user: String,
}

/// What an erasure did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erasure {
    /// The end user's pseudonym (what the ledger and the audit chain keep).
    pub end_user_hash: String,
    /// Data keys destroyed.
    pub keys_destroyed: u64,
    /// Records whose end-user id was removed.
    pub records: u64,
}

/// One value of a KPI.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiMeasure {
    /// What it is (`dau`, `p95_ms`, `roi`).
    pub name: String,
    /// The number: a ratio (0.25 is 25 %), a count, a duration; USD for money.
    pub value: f64,
    /// For money: the exact amount in nano-USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_usd: Option<i64>,
    /// `ratio`, `users`, `ms`, `usd`, `days`, `hours`, `months`, `requests/s` …
    pub unit: String,
}

/// One input a KPI was computed from.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiInput {
    /// Its name.
    pub name: String,
    /// Its value, as text (money in USD).
    pub value: String,
}

/// One KPI of a scope over a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiValue {
    /// Its number in the KPI reference (1–25).
    pub number: u8,
    /// A stable id (`cost_per_successful_outcome`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its group (`adoption`, `quality`, `risk`, `operations`, `efficiency`, `cost`, …).
    pub group: String,
    /// How it is computed.
    pub definition: String,
    /// Its values; empty when it is not available.
    pub values: Vec<KpiMeasure>,
    /// What it was computed from.
    pub inputs: Vec<KpiInput>,
    /// How many events (requests, outcomes, use cases …) it rests on.
    pub basis: u64,
    /// Why it cannot be computed yet ("n/a: …"), when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_available: Option<String>,
}

impl From<tollgate_value::Kpi> for KpiValue {
    fn from(k: tollgate_value::Kpi) -> Self {
        KpiValue {
            number: k.number,
            id: k.id.into(),
            name: k.name.into(),
            group: k.group.into(),
            definition: k.definition.into(),
            values: k
                .values
                .into_iter()
                .map(|m| KpiMeasure {
                    name: m.name.into(),
                    value: m.value,
                    nano_usd: m.nano_usd.map(|n| {
                        i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
                    }),
                    unit: m.unit.into(),
                })
                .collect(),
            inputs: k
                .inputs
                .into_iter()
                .map(|(name, value)| KpiInput {
                    name: name.into(),
                    value,
                })
                .collect(),
            basis: k.basis,
            not_available: k.not_available,
        }
    }
}

/// The KPIs of a use case, a pod or the portfolio over a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiReport {
    /// `use_case`, `pod` or `portfolio`.
    pub scope: String,
    /// The use case's or pod's id (absent for the portfolio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<String>,
    /// Start, RFC 3339.
    pub from: String,
    /// End, RFC 3339 (exclusive).
    pub to: String,
    /// The use cases it covers.
    pub use_cases: u64,
    /// The 25 KPIs, in the reference's order.
    pub kpis: Vec<KpiValue>,
}

/// One use case in the portfolio.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortfolioUseCase {
    /// `uc_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its pod.
    pub pod_id: String,
    /// Its stage.
    pub stage: m::Stage,
    /// Value, 1–5 (impact and time to impact, weighted).
    pub value: f64,
    /// Feasibility, 1–5 (feasibility and data readiness, weighted).
    pub feasibility: f64,
    /// Priority, 0–100, under the report's weights.
    pub priority: f64,
    /// `quick_win`, `strategic_bet`, `fill_in` or `deprioritize`.
    pub quadrant: String,
    /// Spend over the window, USD.
    pub spend_usd: String,
}

/// Use cases per stage.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StagePipeline {
    /// Proposed.
    pub proposed: u64,
    /// In pilot.
    pub pilot: u64,
    /// In production.
    pub production: u64,
    /// Retired.
    pub retired: u64,
}

/// The weights of the priority score (normalized when applied).
#[derive(Debug, Serialize, ToSchema)]
pub struct PriorityWeights {
    /// Business impact.
    pub impact: f64,
    /// Technical feasibility.
    pub feasibility: f64,
    /// Data readiness.
    pub data_readiness: f64,
    /// Risk (inverse).
    pub risk: f64,
    /// Time to impact.
    pub time_to_impact: f64,
}

/// The portfolio: the use cases the caller may read, by priority, with quadrants and stages.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortfolioReport {
    /// Start of the spend window, RFC 3339.
    pub from: String,
    /// Its end, RFC 3339.
    pub to: String,
    /// The weights applied.
    pub weights: PriorityWeights,
    /// Use cases per stage.
    pub pipeline: StagePipeline,
    /// Use cases per quadrant (`quick_win`, `strategic_bet`, `fill_in`, `deprioritize`).
    pub quadrants: std::collections::BTreeMap<String, u64>,
    /// The use cases, highest priority first.
    pub use_cases: Vec<PortfolioUseCase>,
}
