//! The organizational objects the store keeps (SPEC §3): pods, users and memberships, use cases
//! with their stage, value model and scores, keys, personal tokens, stage changes, audit events.
//!
//! Times are Unix milliseconds (UTC); the admin API shows them as RFC 3339.

use serde::{Deserialize, Serialize};

/// A role inside one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PodRole {
    /// Manages the pod: members, use cases, keys.
    Lead,
    /// Builds apps: issues keys for the pod's use cases.
    Builder,
    /// Brings domain knowledge; reads the pod.
    DomainExpert,
    /// Reads the pod's numbers.
    Analyst,
    /// Reads the pod.
    Viewer,
}

/// An org-wide role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrgRole {
    /// Everything.
    PlatformAdmin,
    /// Reads everything; owns budgets (later).
    Finops,
    /// Reads everything; owns policies and approvals (later).
    RiskOfficer,
    /// Reads everything.
    Auditor,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The name used in the API and the database.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            /// Parses the name used in the API and the database.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

str_enum!(PodRole { Lead => "lead", Builder => "builder", DomainExpert => "domain_expert", Analyst => "analyst", Viewer => "viewer" });
str_enum!(OrgRole { PlatformAdmin => "platform_admin", Finops => "finops", RiskOfficer => "risk_officer", Auditor => "auditor" });
str_enum!(Stage { Proposed => "proposed", Pilot => "pilot", Production => "production", Retired => "retired" });

/// Lifecycle stage of a use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Stage {
    /// Proposed: no traffic.
    Proposed,
    /// Pilot: traffic within pilot caps.
    Pilot,
    /// Production: normal traffic.
    Production,
    /// Retired: no traffic.
    Retired,
}

impl Stage {
    /// Whether `self → to` is an allowed transition.
    pub fn can_move_to(self, to: Stage) -> bool {
        use Stage::*;
        matches!(
            (self, to),
            (Proposed, Pilot)
                | (Proposed, Retired)
                | (Pilot, Production)
                | (Pilot, Proposed)
                | (Pilot, Retired)
                | (Production, Pilot)
                | (Production, Retired)
        )
    }
}

/// A pod: one business domain's team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    /// `pod_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// What the pod does.
    pub description: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

/// A person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `usr_…`.
    pub id: String,
    /// Unique e-mail.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Org-wide role, if any.
    pub org_role: Option<OrgRole>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// When the user was disabled, Unix ms; `None`: enabled. A disabled user's personal tokens
    /// do not authenticate.
    pub disabled_at: Option<i64>,
}

/// A user's role in a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// The pod.
    pub pod_id: String,
    /// The user.
    pub user_id: String,
    /// The role.
    pub role: PodRole,
    /// Since, Unix ms.
    pub created_at: i64,
}

/// How a use case turns into business value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValueModel {
    /// The value driver: `efficiency`, `revenue`, `experience` or `risk` (empty: not set yet).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^(|efficiency|revenue|experience|risk)$")
    )]
    pub driver: String,
    /// Primary KPI name.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
        )
    )]
    pub kpi: String,
    /// Its unit.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
        )
    )]
    pub kpi_unit: String,
    /// Baseline value of the KPI.
    #[serde(default)]
    pub baseline: f64,
    /// Target value of the KPI.
    #[serde(default)]
    pub target: f64,
    /// Value of one successful outcome, nano-USD.
    #[serde(default)]
    pub value_per_outcome_nano_usd: u64,
    /// People who could use it.
    #[serde(default)]
    pub eligible_users: u64,
    /// Tasks a month it is expected to handle at full scale.
    #[serde(default)]
    pub volume_per_month: u64,
    /// Minutes one task takes without it (the time-saved baseline).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub baseline_minutes_per_task: f64,
    /// Minutes one task takes with it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub assisted_minutes_per_task: f64,
    /// Who answers for its value (a name or an e-mail address).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
        )
    )]
    pub owner: String,
}

impl ValueModel {
    /// The value drivers a use case may name.
    pub const DRIVERS: [&'static str; 4] = ["efficiency", "revenue", "experience", "risk"];
}

/// Prioritization scores, each 1–5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scores {
    /// Business impact (5 = highest).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub impact: u8,
    /// Technical feasibility (5 = easiest).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub feasibility: u8,
    /// Data readiness (5 = ready).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub data_readiness: u8,
    /// Risk (5 = riskiest).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub risk: u8,
    /// Time to impact (5 = fastest).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub time_to_impact: u8,
}

impl Default for Scores {
    fn default() -> Self {
        Scores {
            impact: 3,
            feasibility: 3,
            data_readiness: 3,
            risk: 3,
            time_to_impact: 3,
        }
    }
}

impl Scores {
    /// The first score outside 1–5, by name.
    pub fn out_of_range(&self) -> Option<&'static str> {
        [
            ("impact", self.impact),
            ("feasibility", self.feasibility),
            ("data_readiness", self.data_readiness),
            ("risk", self.risk),
            ("time_to_impact", self.time_to_impact),
        ]
        .into_iter()
        .find(|(_, v)| !(1..=5).contains(v))
        .map(|(n, _)| n)
    }

    /// Priority 0–100: value (impact 40 %, time to impact 20 %) and ease (feasibility 20 %, data
    /// readiness 20 %), each scored 1–5, then discounted 10 % per risk step above 1.
    pub fn priority(&self) -> u32 {
        let weighted = 40 * u32::from(self.impact)
            + 20 * u32::from(self.time_to_impact)
            + 20 * u32::from(self.feasibility)
            + 20 * u32::from(self.data_readiness);
        // weighted is 100..=500; map to 0..=100, then apply the risk discount.
        let base = (weighted.saturating_sub(100)) / 4;
        base * (10 - u32::from(self.risk.clamp(1, 5) - 1)) / 10
    }
}

/// Caps that hold while a use case is in pilot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PilotCaps {
    /// Most distinct end users (`x-tollgate-user`) per day.
    #[serde(default)]
    // u32: utoipa says int32, whose maximum is lower.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u64, format = Int64))]
    pub max_end_users_per_day: Option<u32>,
    /// Most requests per day.
    #[serde(default)]
    // u32: utoipa says int32, whose maximum is lower.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u64, format = Int64))]
    pub max_requests_per_day: Option<u32>,
}

/// Rate limits of a key or a use case; absent fields mean no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // u32: utoipa says int32, whose maximum is lower.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u64, format = Int64))]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) per minute, reserved before the call and settled after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // u32: utoipa says int32, whose maximum is lower.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4294967295_u64, format = Int64))]
    pub concurrent_requests: Option<u32>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        self.requests_per_minute.is_none()
            && self.tokens_per_minute.is_none()
            && self.concurrent_requests.is_none()
    }
}

/// A use case, owned by one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCase {
    /// `uc_…`.
    pub id: String,
    /// Owning pod.
    pub pod_id: String,
    /// Name, unique within the pod.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Value model.
    pub value_model: ValueModel,
    /// Scores.
    pub scores: Scores,
    /// Routes its keys may call; empty: none.
    pub routes: Vec<String>,
    /// Pilot caps.
    pub pilot_caps: PilotCaps,
    /// Rate limits of the whole use case.
    pub limits: Limits,
    /// Its service-level objective (empty: none).
    pub slo: Slo,
    /// Stage changes a platform admin made past an unmet gate (kept for ever).
    #[serde(default)]
    pub gate_overrides: Vec<GateOverride>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
}

/// A stage change made past an unmet gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOverride {
    /// The stage change, `stg_…`.
    pub stage_change_id: String,
    /// Who (a platform admin).
    pub actor: String,
    /// From.
    pub from: Stage,
    /// To.
    pub to: Stage,
    /// Why they overrode the gate.
    pub reason: String,
    /// The checklist lines that were not met.
    pub unmet: Vec<String>,
    /// When, Unix ms.
    pub at: i64,
}

/// Someone asked for a use case to move up a stage; open until its stage changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRequest {
    /// `prq_…`.
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// Its stage when asked.
    pub from: Stage,
    /// The stage asked for.
    pub to: Stage,
    /// Who asked.
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// When, Unix ms.
    pub at: i64,
    /// When the stage changed (closing it), Unix ms.
    pub closed_at: Option<i64>,
}

/// A sign-off of a promotion request in one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// `apr_…`.
    pub id: String,
    /// The request.
    pub request_id: String,
    /// The use case.
    pub use_case_id: String,
    /// `lead` or `risk_officer`.
    pub role: String,
    /// Who.
    pub user_id: String,
    /// What they said.
    pub note: String,
    /// When, Unix ms.
    pub at: i64,
}

/// A virtual API key, as stored: never the key itself, only its keyed hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `key_…`.
    pub id: String,
    /// The use case it belongs to.
    pub use_case_id: String,
    /// The person it was issued to, if any.
    pub user_id: Option<String>,
    /// A name to recognise it.
    pub name: String,
    /// The visible start of the key (`tg_AbC123`).
    pub prefix: String,
    /// HMAC-SHA-256 of the key, hex.
    #[serde(skip_serializing)]
    pub hash: String,
    /// Routes it may call (a subset of the use case's); `None`: all of them.
    pub scopes: Option<Vec<String>>,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Revocation time, Unix ms.
    pub revoked_at: Option<i64>,
    /// After a rotation: the key that replaced this one.
    pub replaced_by: Option<String>,
    /// Rate limits of this key.
    pub limits: Limits,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Who created it (user id or `admin`).
    pub created_by: String,
    /// Minted by the server for an evaluation run: its requests are tagged as evaluation, held
    /// to the use case's eval budget instead of its production ones, and kept out of production
    /// KPIs.
    #[serde(default)]
    pub evaluation: bool,
}

impl ApiKey {
    /// Whether it authenticates at `now` (Unix ms).
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none_or(|t| t > now) && self.expires_at.is_none_or(|t| t > now)
    }
}

/// A personal admin token (for the admin API), stored hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserToken {
    /// `tok_…`.
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Visible start.
    pub prefix: String,
    /// Keyed hash, hex.
    #[serde(skip_serializing)]
    pub hash: String,
    /// Expiry, Unix ms.
    pub expires_at: Option<i64>,
    /// Revocation time, Unix ms.
    pub revoked_at: Option<i64>,
    /// Creation time, Unix ms.
    pub created_at: i64,
}

impl UserToken {
    /// Whether it is neither revoked nor expired at `now` (Unix ms). Whether it authenticates
    /// also depends on its user not being disabled.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none_or(|t| t > now) && self.expires_at.is_none_or(|t| t > now)
    }
}

/// One recorded stage change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageChange {
    /// `stg_…`.
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// From.
    pub from: Stage,
    /// To.
    pub to: Stage,
    /// Who (user id or `admin`).
    pub actor: String,
    /// Why.
    pub reason: String,
    /// When, Unix ms.
    pub at: i64,
}

/// One version of a guard policy: the org default's (`scope_id` empty) or a use case's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// `""` for the org default, else the use case's id.
    pub scope_id: String,
    /// 1, 2, … per scope.
    pub version: i64,
    /// The policy as JSON; `None`: this version removed the use case's own policy.
    pub document: Option<String>,
    /// When, Unix ms.
    pub created_at: i64,
    /// Who.
    pub created_by: String,
    /// Why (free text from the writer).
    pub note: String,
}

/// A request's stored content, sealed: what the ledger writes beside its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPayload {
    /// `metadata`, `masked` or `full`.
    pub mode: String,
    /// The data key (absent for `metadata`).
    pub data_key_id: Option<String>,
    /// The data key, wrapped, when this instance made it for this payload's batch (stored once;
    /// later payloads name it only).
    pub new_key: Option<NewDataKey>,
    /// nonce ‖ ciphertext (absent for `metadata`).
    pub sealed: Option<Vec<u8>>,
    /// SHA-256 of `sealed`, hex.
    pub digest: Option<String>,
    /// Prompt size, bytes.
    pub prompt_bytes: u64,
    /// Answer size, bytes.
    pub answer_bytes: u64,
    /// The end user's pseudonym (`""` without one).
    pub end_user_hash: String,
}

/// A data key as stored: wrapped by the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDataKey {
    /// `dek_…`.
    pub id: String,
    /// Its use case.
    pub use_case_id: String,
    /// Its end user's pseudonym (`""` without one).
    pub end_user_hash: String,
    /// The day (since 1970-01-01 UTC) after which it is destroyed.
    pub expires_day: i64,
    /// Wrapped by the master key.
    pub wrapped: Vec<u8>,
    /// The master key's id.
    pub kek_id: String,
    /// When, Unix ms.
    pub created_at: i64,
}

/// A stored payload as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    /// The record.
    pub record_id: String,
    /// Its use case.
    pub use_case_id: String,
    /// Its end user's pseudonym.
    pub end_user_hash: String,
    /// `metadata`, `masked`, `full`.
    pub mode: String,
    /// The data key's id.
    pub data_key_id: Option<String>,
    /// The ciphertext.
    pub sealed: Option<Vec<u8>>,
    /// Its digest.
    pub digest: Option<String>,
    /// Sizes.
    pub prompt_bytes: u64,
    /// Sizes.
    pub answer_bytes: u64,
    /// When, Unix ms.
    pub at: i64,
}

/// A data key as read back: `wrapped` is `None` once destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDataKey {
    /// `dek_…`.
    pub id: String,
    /// Wrapped by the master key, or `None` once destroyed.
    pub wrapped: Option<Vec<u8>>,
    /// The master key's id.
    pub kek_id: String,
    /// When it was destroyed, and why.
    pub destroyed: Option<(i64, String)>,
}

/// One entry of the audit chain, its content rebuilt from the row it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    /// Its place in the chain, from 1.
    pub seq: i64,
    /// `request` or `audit`.
    pub kind: String,
    /// The record's id or the audit event's seq.
    pub reference: String,
    /// The stored hash, hex.
    pub hash: String,
    /// `{seq, kind, ref, data}` as hashed; `None` when the row is gone.
    pub body: Option<serde_json::Value>,
}

/// What verification checks of a request record beyond its chain entry: the end user's id
/// against the pseudonym the chain covers (the id itself is left out of the chain so it can be
/// erased), and the sealed payload against the digest the chain covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSide {
    /// The record.
    pub id: String,
    /// The end user's id, unless erased.
    pub end_user: Option<String>,
    /// The pseudonym the chain covers.
    pub end_user_hash: Option<String>,
    /// `full:<data key>:<digest>`, `masked:…`, `metadata`, or none.
    pub payload_ref: Option<String>,
    /// Whether the data key named by `payload_ref` still exists unshredded.
    pub key_live: bool,
    /// The stored payload's ciphertext, if its row is there.
    pub sealed: Option<Vec<u8>>,
}

/// A signed checkpoint of the audit chain as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRow {
    /// The last entry it covers.
    pub size: i64,
    /// When, Unix ms.
    pub at: i64,
    /// The signed text.
    pub text: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
    /// The signing key's id.
    pub key_id: String,
}

/// One audit event: an admin action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sequence number (append order).
    pub seq: i64,
    /// When, Unix ms.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What (`pod.create`, `key.revoke`, ...).
    pub action: String,
    /// Object type.
    pub object_type: String,
    /// Object id.
    pub object_id: String,
    /// Details (never a key or a secret).
    pub details: serde_json::Value,
}

/// One admitted request, as the ledger keeps it. Never a prompt, a response or a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// `rec_…` (time-ordered).
    pub id: String,
    /// The `x-request-id` the client saw.
    pub request_id: String,
    /// Arrival, Unix ms.
    pub at: i64,
    /// The key.
    pub key_id: String,
    /// Its use case.
    pub use_case_id: String,
    /// Its pod.
    pub pod_id: String,
    /// `x-tollgate-user`, if sent.
    pub end_user: Option<String>,
    /// `chat` or `embeddings`.
    pub endpoint: String,
    /// The route asked for.
    pub route: String,
    /// Provider of the deployment that answered (or was tried last).
    pub provider: Option<String>,
    /// Its upstream model.
    pub model: Option<String>,
    /// Streamed.
    pub stream: bool,
    /// Upstream attempts.
    pub attempts: u32,
    /// HTTP status sent (200 for streams that started).
    pub status: u16,
    /// `ok`, `client_disconnected`, or the error kind.
    pub outcome: String,
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Cache-read input tokens.
    pub cached_input_tokens: u64,
    /// Cache-write input tokens.
    pub cache_write_tokens: u64,
    /// Output tokens (reasoning excluded).
    pub output_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Cost, nano-USD; `None` when unpriced.
    pub cost_nano_usd: Option<u64>,
    /// What the same tokens would have cost at the prices of the route's first deployment
    /// (the requested route's, whichever deployment or fallback answered), nano-USD: KPI 19's
    /// routing savings. `None` when the request is unpriced, or that deployment is. Not covered
    /// by the audit chain (derived from the config's prices, as the charge's split is not).
    #[serde(default)]
    pub first_choice_cost_nano_usd: Option<u64>,
    /// `catalog:<version>`, `override`, `unpriced`, or `none` (no usage).
    pub price_source: String,
    /// `reported` by the provider, `estimated`, or `none`.
    pub usage_source: String,
    /// Time to the end of the answer, ms.
    pub latency_ms: u64,
    /// Time to the first streamed chunk, ms.
    pub ttft_ms: Option<u64>,
    /// The price point charged (see [`PricePointRow`]); `None` when no deployment was tried.
    #[serde(default)]
    pub price_id: Option<String>,
    /// The cost by token kind — input, cached input, cache write, output, reasoning — in nano-USD,
    /// adding up to `cost_nano_usd` exactly.
    #[serde(default)]
    pub cost_split: [u64; 5],
    /// A keyed fingerprint of the request's content (route, messages, parameters; not `stream`
    /// or `user`): equal for requests an exact cache would answer alike. Never the prompt.
    #[serde(default)]
    pub prompt_hash: Option<String>,
    /// A keyed pseudonym of `end_user` (what the audit chain covers, so the id itself can be
    /// erased).
    #[serde(default)]
    pub end_user_hash: Option<String>,
    /// What of the content was stored (`metadata`, or `full:<data key>:<digest>`,
    /// `masked:…`): covered by the audit chain, never the content itself.
    #[serde(default)]
    pub payload_ref: Option<String>,
    /// The sealed payload to store with the record (written by the ledger with it).
    #[serde(default)]
    pub payload: Option<SealedPayload>,
    /// The policy the request was governed by: `use_case@<version>`, `default@<version>`, or
    /// `builtin` (no policy stored anywhere).
    #[serde(default)]
    pub policy: Option<String>,
    /// What the guard did, as JSON: whether each direction was scanned (`ran`, `off`, `not_run`)
    /// and counts per entity type, action and direction — never a value.
    #[serde(default)]
    pub guard: Option<String>,
    /// A keyed pseudonym of the conversation (`x-tollgate-session`) the request belonged to:
    /// what feedback about a session is checked against. Not covered by the audit chain.
    #[serde(default)]
    pub session_hash: Option<String>,
    /// Sent with an evaluation key: kept out of production KPIs and SLOs, charged to the eval
    /// budget; chained (as `purpose: evaluation`) so the tag cannot be changed afterwards.
    #[serde(default)]
    pub evaluation: bool,
    /// The pattern version the request was built from (`triage@3`), if any; chained.
    #[serde(default)]
    pub pattern: Option<String>,
}

/// What an application reports became of a request or a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The task was done.
    Success,
    /// It was not.
    Failure,
    /// A person had to take over.
    Escalated,
    /// The user gave up.
    Abandoned,
}

impl Outcome {
    /// Every outcome, in order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Escalated,
        Outcome::Abandoned,
    ];

    /// Its name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Escalated => "escalated",
            Outcome::Abandoned => "abandoned",
        }
    }

    /// The outcome named `s`.
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// An outcome or feedback event an application posted (`POST /v1/feedback`) about one of its
/// use case's requests or sessions. Never a prompt or an answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    /// `fbk_…`: with an `event_id`, 32 hex digits of a hash of the use case and the NFC event
    /// id (every post of it has the same id); without, time-ordered.
    pub id: String,
    /// The client's idempotency id: stored once per use case.
    pub event_id: Option<String>,
    /// When it happened, Unix ms.
    pub at: i64,
    /// The use case (of the key that posted it, and of what it names).
    pub use_case_id: String,
    /// Its pod.
    pub pod_id: String,
    /// The key that posted it.
    pub key_id: String,
    /// The request it is about (`x-request-id`).
    pub request_id: Option<String>,
    /// The session it is about, as a keyed pseudonym.
    pub session_hash: Option<String>,
    /// What became of it.
    pub outcome: Option<Outcome>,
    /// The user's rating, 1–5 (4 and 5 are positive).
    pub rating: Option<u8>,
    /// Whether the output was accepted.
    pub accepted: Option<bool>,
    /// Whether it was edited before use.
    pub edited: Option<bool>,
    /// The value the application reports, nano-USD.
    pub value_nano_usd: Option<u64>,
    /// Minutes of work saved, in thousandths of a minute.
    pub minutes_saved_milli: Option<u64>,
    /// Free labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Upper bounds (ms, inclusive) of the latency histogram buckets the rollups keep; a last,
/// unbounded bucket follows. Quantiles read from them are "at most" the bound of their bucket.
pub const LATENCY_BOUNDS_MS: [u64; 28] = [
    1, 2, 5, 10, 20, 50, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000,
    5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 120_000, 300_000,
];

/// The bucket of a latency in ms: the first bound it does not exceed, or the last bucket.
pub fn latency_bucket(ms: u64) -> usize {
    LATENCY_BOUNDS_MS.partition_point(|b| *b < ms)
}

/// The length of an SLO window.
pub const SLO_WINDOW_MS: i64 = 5 * 60_000;

/// A use case's service-level objective, judged over 5-minute windows: the latency p95 (streams:
/// time to first token) and the share of requests failing on the gateway's or a provider's side
/// (5xx). Each target is optional; an SLO with neither is no SLO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Latency p95 target, ms (1 to 600,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 600000))]
    pub latency_p95_ms: Option<u32>,
    /// Highest share of requests answered 5xx, percent (0 to 100; judged in parts per million).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub max_error_rate_pct: Option<f64>,
    /// Share of windows that must meet both targets, percent (50 to 99.99; 99 when left out):
    /// what burn alerts measure against. Alone, without a target, it sets no SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 50, maximum = 99.99))]
    pub objective_pct: Option<f64>,
}

impl Slo {
    /// Whether any target is set.
    pub fn is_set(&self) -> bool {
        self.latency_p95_ms.is_some() || self.max_error_rate_pct.is_some()
    }

    /// The objective, percent.
    pub fn objective(&self) -> f64 {
        self.objective_pct.unwrap_or(99.0)
    }

    /// The error target in parts per million (exact comparisons).
    pub fn max_error_ppm(&self) -> Option<u32> {
        self.max_error_rate_pct
            .map(|p| (p.clamp(0.0, 100.0) * 10_000.0).round() as u32)
    }

    /// What is wrong with it, as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(ms) = self.latency_p95_ms
            && !(1..=600_000).contains(&ms)
        {
            out.push(("latency_p95_ms", "must be between 1 and 600000".to_string()));
        }
        if let Some(p) = self.max_error_rate_pct
            && (!p.is_finite() || !(0.0..=100.0).contains(&p))
        {
            out.push((
                "max_error_rate_pct",
                "must be between 0 and 100".to_string(),
            ));
        }
        if let Some(p) = self.objective_pct
            && (!p.is_finite() || !(50.0..=99.99).contains(&p))
        {
            out.push(("objective_pct", "must be between 50 and 99.99".to_string()));
        }
        out
    }
}

/// One use case's 5-minute window, with the targets in force when it closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SloWindow {
    /// The use case.
    pub use_case_id: String,
    /// Its pod.
    pub pod_id: String,
    /// Start, Unix ms (a multiple of [`SLO_WINDOW_MS`]).
    pub start: i64,
    /// Requests recorded.
    pub requests: u64,
    /// Of which answered 5xx.
    pub errors: u64,
    /// Of which slower than the latency target.
    pub slow: u64,
    /// The latency target, ms.
    pub latency_target_ms: Option<u32>,
    /// The error target, parts per million.
    pub max_error_ppm: Option<u32>,
}

impl SloWindow {
    /// Whether the latency target held: p95 (nearest rank) at or under it, i.e. at most
    /// `requests - ceil(0.95 · requests)` requests slower.
    pub fn latency_met(&self) -> bool {
        self.latency_target_ms.is_none()
            || self.slow <= self.requests - (self.requests * 95).div_ceil(100)
    }

    /// Whether the error target held: errors ÷ requests at or under it.
    pub fn errors_met(&self) -> bool {
        self.max_error_ppm.is_none_or(|ppm| {
            u128::from(self.errors) * 1_000_000 <= u128::from(ppm) * u128::from(self.requests)
        })
    }

    /// Whether the window met its SLO.
    pub fn met(&self) -> bool {
        self.latency_met() && self.errors_met()
    }
}

/// What a KPI report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KpiScope {
    /// Every use case.
    Portfolio,
    /// One pod's use cases.
    Pod(String),
    /// One use case.
    UseCase(String),
}

/// What the store's rollups say of a scope over a window, for the KPIs (see `tollgate-value`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KpiData {
    /// Requests recorded.
    pub requests: u64,
    /// Answered (200 and ended well, or the client left).
    pub answered: u64,
    /// Failed on the gateway's or a provider's side (5xx, broken streams).
    pub errors: u64,
    /// Answered after more than one attempt.
    pub fallbacks: u64,
    /// Streamed.
    pub streams: u64,
    /// Streams the client left before the end.
    pub streams_cancelled: u64,
    /// Refused by a guard policy.
    pub guard_blocked: u64,
    /// With guard findings acted on, not refused.
    pub guard_flagged: u64,
    /// Requests that named a session.
    pub session_requests: u64,
    /// Requests priced both where they went and at their route's first deployment's prices.
    pub routing_priced: u64,
    /// What those would have cost at the first deployments' prices, nano-USD.
    pub first_choice_nano_usd: u64,
    /// What those cost, nano-USD.
    pub first_choice_paid_nano_usd: u64,
    /// Latency histogram (buckets of [`LATENCY_BOUNDS_MS`], then one unbounded).
    pub latency: Vec<u64>,
    /// Streams' time to first token, same buckets.
    pub ttft: Vec<u64>,
    /// Cost, nano-USD (what production keys spent: evaluation runs are left out).
    pub cost_nano_usd: u64,
    /// Tokens of every kind (production keys).
    pub tokens: u64,
    /// Requests per model served (production keys), by model name.
    pub requests_by_model: Vec<(String, u64)>,
    /// Distinct end users in the window.
    pub active_users: u64,
    /// Distinct end users in the window's last 7 days.
    pub weekly_active: u64,
    /// Distinct end users in the 30 days before the window's end.
    pub monthly_active: u64,
    /// Σ over the window's days of that day's distinct end users.
    pub user_days: u64,
    /// Days in the window (UTC days touched).
    pub days: u64,
    /// Sessions that began in the window (their first request's hour): each counted once.
    pub sessions: u64,
    /// Users active in the window's first week (windows of 35 days or more).
    pub retention_cohort: Option<u64>,
    /// Of them, active in its fifth week.
    pub retention_kept: u64,
    /// The busiest minute's requests.
    pub peak_requests_per_minute: u64,
    /// The busiest minute's tokens.
    pub peak_tokens_per_minute: u64,
    /// 5-minute SLO windows with traffic in the window, and how many met their SLO.
    pub slo_windows: (u64, u64),
}

/// The evaluation and lifecycle evidence of the use cases of a scope
/// ([`KpiQueries::use_case_evidence`](crate::KpiQueries::use_case_evidence)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UseCaseEvidence {
    /// (use case, stage, when it first entered that stage), Unix ms.
    pub first_entered: Vec<(String, Stage, i64)>,
    /// Per use case with a finished evaluation run in the window: its latest.
    pub latest_runs: Vec<RunPair>,
    /// Per use case with finished fairness runs in the window: (use case, runs, gaps flagged).
    pub fairness: Vec<(String, u64, u64)>,
}

/// A use case's latest finished evaluation run in a window, and its champion: the newest
/// finished run of the same suite made in production and started no later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPair {
    /// The use case.
    pub use_case_id: String,
    /// (cases passed, cases done) of the latest run.
    pub latest: (u64, u64),
    /// The same of its champion, if it has one.
    pub champion: Option<(u64, u64)>,
}

/// Outcome events one request may have (a rating, then an outcome, then a correction …); more
/// are not stored, so one request cannot stand for many.
pub const MAX_EVENTS_PER_REQUEST: u64 = 5;
/// Outcome events one session may have.
pub const MAX_EVENTS_PER_SESSION: u64 = 50;

/// What is known of one subject — a request or a session — from its events: each field as the
/// latest event that gave it said (an outcome reported as `escalated` and later as `success` is
/// one success). What the rollups count, so one answer or one session stands for one outcome,
/// one rating and one value however many events name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeState {
    /// The latest outcome.
    pub outcome: Option<Outcome>,
    /// The latest rating.
    pub rating: Option<u8>,
    /// The latest acceptance, with its `edited`.
    pub accepted: Option<(bool, bool)>,
    /// The latest reported value, nano-USD.
    pub value_nano_usd: Option<u64>,
    /// The latest reported minutes saved, thousandths.
    pub minutes_saved_milli: Option<u64>,
}

impl OutcomeState {
    /// This state with `e`'s fields over it.
    pub fn merged(self, e: &OutcomeEvent) -> OutcomeState {
        OutcomeState {
            outcome: e.outcome.or(self.outcome),
            rating: e.rating.or(self.rating),
            accepted: e
                .accepted
                .map(|a| (a, e.edited.unwrap_or(false)))
                .or(self.accepted),
            value_nano_usd: e.value_nano_usd.or(self.value_nano_usd),
            minutes_saved_milli: e.minutes_saved_milli.or(self.minutes_saved_milli),
        }
    }

    /// Whether it reports what was achieved: an outcome, a value or minutes saved.
    pub fn reports_achievement(&self) -> bool {
        self.outcome.is_some()
            || self.value_nano_usd.is_some()
            || self.minutes_saved_milli.is_some()
    }

    /// This state of a request without what its session reports (`session`, if it has been
    /// reported on): a session speaks for its requests — for what they achieved (outcome,
    /// value and minutes saved, together) if it reports any of that, for their rating if it
    /// rates, for their acceptance if it says one.
    pub fn without(self, session: Option<&OutcomeState>) -> OutcomeState {
        let mut own = self;
        if let Some(by) = session {
            if by.reports_achievement() {
                own.outcome = None;
                own.value_nano_usd = None;
                own.minutes_saved_milli = None;
            }
            if by.rating.is_some() {
                own.rating = None;
            }
            if by.accepted.is_some() {
                own.accepted = None;
            }
        }
        own
    }

    /// What one subject in this state adds to a rollup (`subjects` 1, `events` 0).
    pub fn counts(&self) -> OutcomeRollup {
        let mut r = OutcomeRollup {
            subjects: 1,
            ..OutcomeRollup::default()
        };
        match self.outcome {
            Some(Outcome::Success) => {
                r.success = 1;
                r.success_unvalued = u64::from(self.value_nano_usd.is_none());
                r.success_untimed = u64::from(self.minutes_saved_milli.is_none());
            }
            Some(Outcome::Failure) => r.failure = 1,
            Some(Outcome::Escalated) => r.escalated = 1,
            Some(Outcome::Abandoned) => r.abandoned = 1,
            None => {}
        }
        if let Some(rating) = self.rating {
            r.rated = 1;
            r.rating_sum = u64::from(rating);
            r.positive = u64::from(rating >= 4);
        }
        if let Some((accepted, edited)) = self.accepted {
            r.with_acceptance = 1;
            r.accepted_unedited = u64::from(accepted && !edited);
            r.accepted_edited = u64::from(accepted && edited);
        }
        r.value_nano_usd = self.value_nano_usd.unwrap_or(0);
        r.minutes_saved_milli = self.minutes_saved_milli.unwrap_or(0);
        r
    }
}

/// Outcome events of one use case in one hour, summed (what the KPIs read). `events` counts the
/// events stored in the hour; every other count is of *subjects* (requests and sessions reported
/// on), each counted in the hour of its first event as its latest state says ([`OutcomeState`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRollup {
    /// Unix hours (UTC).
    pub hour: i64,
    /// The pod.
    pub pod_id: String,
    /// The use case.
    pub use_case_id: String,
    /// Events stored.
    pub events: u64,
    /// Requests and sessions reported on.
    pub subjects: u64,
    /// Subjects whose outcome is `success`.
    pub success: u64,
    /// … `failure`.
    pub failure: u64,
    /// … `escalated`.
    pub escalated: u64,
    /// … `abandoned`.
    pub abandoned: u64,
    /// Subjects with a rating.
    pub rated: u64,
    /// Ratings of 4 or 5.
    pub positive: u64,
    /// The ratings, summed.
    pub rating_sum: u64,
    /// Subjects whose output was said to be accepted or not.
    pub with_acceptance: u64,
    /// Accepted without edits.
    pub accepted_unedited: u64,
    /// Accepted after edits.
    pub accepted_edited: u64,
    /// Successes without a reported value (valued at the use case's value per outcome).
    pub success_unvalued: u64,
    /// Successes without reported minutes saved (timed at the use case's minutes per task).
    pub success_untimed: u64,
    /// Reported values, nano-USD.
    pub value_nano_usd: u64,
    /// Minutes saved, thousandths.
    pub minutes_saved_milli: u64,
}

impl OutcomeRollup {
    /// Subjects with an outcome.
    pub fn outcomes(&self) -> u64 {
        self.success + self.failure + self.escalated + self.abandoned
    }

    /// Adds `other`'s counts (sums of money and minutes saturate).
    pub fn merge(&mut self, other: &OutcomeRollup) {
        self.events += other.events;
        self.subjects += other.subjects;
        self.success += other.success;
        self.failure += other.failure;
        self.escalated += other.escalated;
        self.abandoned += other.abandoned;
        self.rated += other.rated;
        self.positive += other.positive;
        self.rating_sum += other.rating_sum;
        self.with_acceptance += other.with_acceptance;
        self.accepted_unedited += other.accepted_unedited;
        self.accepted_edited += other.accepted_edited;
        self.success_unvalued += other.success_unvalued;
        self.success_untimed += other.success_untimed;
        self.value_nano_usd = self.value_nano_usd.saturating_add(other.value_nano_usd);
        self.minutes_saved_milli = self
            .minutes_saved_milli
            .saturating_add(other.minutes_saved_milli);
    }
}

/// A price point as stored: the prices a deployment charges, and the list prices they compare
/// with, in nano-USD per 1,000,000 tokens by kind (input, cached input, cache write, output,
/// reasoning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricePointRow {
    /// `cat:…`, `ovr:…` or `none:…`.
    pub id: String,
    /// The config's provider name.
    pub provider: String,
    /// Its type (`openai`, `azure_openai`, `anthropic`, `openai_compatible`).
    pub provider_kind: String,
    /// The model's publisher from the catalog, if known.
    pub publisher: Option<String>,
    /// The upstream model.
    pub model: String,
    /// `catalog:<version>`, `override`, `self_hosted` or `unpriced`.
    pub source: String,
    /// ISO 4217.
    pub currency: String,
    /// Prices paid; `None` when unpriced.
    pub contracted: Option<[u64; 5]>,
    /// List prices; `None` when the catalog has none.
    pub list: Option<[u64; 5]>,
}

/// Identical requests of one use case over a range (see
/// [`LedgerQueries::duplicate_prompts`](crate::LedgerQueries::duplicate_prompts)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicatePrompts {
    /// Use case id.
    pub use_case_id: String,
    /// Successful requests with a fingerprint.
    pub requests: u64,
    /// Of these, requests identical to an earlier one (all but one of each set).
    pub duplicates: u64,
    /// What the duplicates cost, nano-USD (each set's cost less one request at its average).
    pub duplicate_cost_nano_usd: u64,
}

/// The size and totals of a FOCUS export (see
/// [`LedgerQueries::focus_summary`](crate::LedgerQueries::focus_summary)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FocusCounts {
    /// Rows: token kinds with tokens or cost, over the rollups.
    pub rows: u64,
    /// Of these, rows whose price point is unpriced or was never stored (no contracted prices):
    /// their unit prices are unknown.
    pub unpriced_rows: u64,
    /// Σ cost in the FOCUS rollups, nano-USD.
    pub billed_nano_usd: u64,
    /// Σ cost in the hourly rollups (the spend report), nano-USD.
    pub spend_nano_usd: u64,
}

/// One row of the FOCUS rollup joined with its price point and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FocusRollup {
    /// Unix hour.
    pub hour: i64,
    /// Pod id.
    pub pod_id: String,
    /// Pod name (empty if deleted).
    pub pod_name: String,
    /// Use case id.
    pub use_case_id: String,
    /// Use case name (empty if deleted).
    pub use_case_name: String,
    /// Its current stage.
    pub stage: String,
    /// Route.
    pub route: String,
    /// The price point, if it was stored.
    pub price: Option<PricePointRow>,
    /// The price point's id.
    pub price_id: String,
    /// Requests.
    pub requests: u64,
    /// Tokens by kind.
    pub tokens: [u64; 5],
    /// Cost by kind, nano-USD.
    pub cost: [u64; 5],
}

/// Totals of a set of requests (a rollup row, or a sum of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
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
}

impl Totals {
    /// Adds `other` to these totals.
    pub fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.unpriced += other.unpriced;
        self.input_tokens += other.input_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_nano_usd += other.cost_nano_usd;
    }
}

/// A spending limit over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// `bud_…`.
    pub id: String,
    /// `key`, `use_case`, `pod` or `org`.
    pub scope: String,
    /// The key, use case or pod id; empty for `org`.
    pub scope_id: String,
    /// `day`, `week`, `month` or `lifetime`.
    pub period: String,
    /// IANA time zone the periods are aligned in.
    pub time_zone: String,
    /// The limit, nano-USD.
    pub amount_nano_usd: u64,
    /// `soft` (alerts) or `hard` (rejects with 429 `budget_exceeded`).
    pub mode: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
}

/// Where a budget stands now: its current period and what is spent and reserved in it. The data
/// plane keeps these live (requests in flight included); the control plane reads them through
/// its snapshot interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetStatus {
    /// The budget.
    pub budget: Budget,
    /// Current period, Unix ms.
    pub period_start: i64,
    /// End of the current period, Unix ms (`i64::MAX` for lifetime).
    pub period_end: i64,
    /// Spent in the period, nano-USD.
    pub spent_nano_usd: u64,
    /// Reserved by requests in flight, nano-USD.
    pub reserved_nano_usd: u64,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Paging: items after the id `after` (ids are time-ordered), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Cursor from the previous page.
    pub after: Option<String>,
    /// Page size (1–200; default 50).
    pub limit: u32,
}

impl PageRequest {
    /// The limit, clamped to 1–200 (0 means the default, 50).
    pub fn size(&self) -> u32 {
        if self.limit == 0 {
            50
        } else {
            self.limit.clamp(1, 200)
        }
    }
}

/// A new id with a human prefix: `pod_` + UUIDv7 (time-ordered, so ids sort by creation).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_rewards_value_and_ease_and_discounts_risk() {
        let best = Scores {
            impact: 5,
            feasibility: 5,
            data_readiness: 5,
            risk: 1,
            time_to_impact: 5,
        };
        let worst = Scores {
            impact: 1,
            feasibility: 1,
            data_readiness: 1,
            risk: 5,
            time_to_impact: 1,
        };
        assert_eq!(best.priority(), 100);
        assert_eq!(worst.priority(), 0);
        let risky = Scores { risk: 5, ..best };
        assert_eq!(risky.priority(), 60);
        assert!(Scores::default().priority() > 0);
    }

    #[test]
    fn stage_transitions() {
        assert!(Stage::Proposed.can_move_to(Stage::Pilot));
        assert!(Stage::Pilot.can_move_to(Stage::Production));
        assert!(!Stage::Proposed.can_move_to(Stage::Production));
        assert!(!Stage::Retired.can_move_to(Stage::Pilot));
    }
}

/// One version of an evaluation suite: the checked, self-contained document (datasets inlined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteVersion {
    /// The use case it belongs to.
    pub use_case_id: String,
    /// Its name within the use case.
    pub name: String,
    /// 1, 2, …: a new one only when the document changes.
    pub version: i64,
    /// SHA-256 of the document's canonical JSON.
    pub fingerprint: String,
    /// The suite document.
    pub document: serde_json::Value,
    /// When stored, Unix ms.
    pub created_at: i64,
    /// Who stored it.
    pub created_by: String,
}

/// An evaluation run: its progress while it runs, its totals and report when done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalRun {
    /// `run_…` (time-ordered).
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// Its pod.
    pub pod_id: String,
    /// The suite's name.
    pub suite: String,
    /// The suite version run.
    pub suite_version: i64,
    /// The use case's stage when it ran.
    pub stage: String,
    /// `manual` or `scheduled`.
    pub trigger: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms.
    pub finished_at: Option<i64>,
    /// Who started it (`scheduler` for scheduled runs).
    pub created_by: String,
    /// Cases to send.
    pub cases_total: u64,
    /// Cases judged so far.
    pub cases_done: u64,
    /// Passed so far.
    pub passed: u64,
    /// Failed so far.
    pub failed: u64,
    /// Not judged so far (errors).
    pub errors: u64,
    /// passed ÷ cases, when done.
    pub pass_rate: Option<f64>,
    /// The suite's pass rate to reach.
    pub threshold: f64,
    /// Whether it reached it, when done.
    pub passed_threshold: Option<bool>,
    /// What its cases cost, nano-USD.
    pub cost_nano_usd: u64,
    /// What judging and embeddings cost, nano-USD.
    pub scoring_cost_nano_usd: u64,
    /// The routes it sent to.
    pub routes: Vec<String>,
    /// The models that answered.
    pub models: Vec<String>,
    /// The pattern versions its prompts used (`triage@2`), pinned at its start.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The full report (JSON), when done.
    pub report: Option<serde_json::Value>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A fairness probe run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FairnessRun {
    /// `fair_…` (time-ordered).
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// Its pod.
    pub pod_id: String,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Start, Unix ms.
    pub started_at: i64,
    /// End, Unix ms.
    pub finished_at: Option<i64>,
    /// Who started it.
    pub created_by: String,
    /// The route probed.
    pub route: String,
    /// The policy in force when it ran (`use_case@N`, `default@N`, `builtin`).
    pub policy: String,
    /// SHA-256 of the prompt set.
    pub prompt_set_hash: String,
    /// The probe document.
    pub probe: serde_json::Value,
    /// Calls to make.
    pub calls_total: u64,
    /// Whether a gap was flagged, when done.
    pub flagged: Option<bool>,
    /// The models that answered.
    pub models: Vec<String>,
    /// The report, when done.
    pub report: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A pattern: a versioned prompt template shared by use cases, owned by a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// Its name (unique).
    pub name: String,
    /// The pod that owns it (its lead moves the labels).
    pub pod_id: String,
    /// What it is for.
    pub description: String,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Its versions, oldest first.
    pub versions: Vec<PatternVersion>,
    /// Its labels: label → version.
    pub labels: std::collections::BTreeMap<String, i64>,
}

/// One immutable version of a pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternVersion {
    /// The pattern.
    pub name: String,
    /// 1, 2, …
    pub version: i64,
    /// `[{role, content}]`, the contents MiniJinja templates.
    pub messages: serde_json::Value,
    /// The JSON Schema its variables must satisfy.
    pub schema: serde_json::Value,
    /// Why this version.
    pub note: String,
    /// When, Unix ms.
    pub created_at: i64,
    /// Who.
    pub created_by: String,
}

/// A suite a production use case runs on a cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSchedule {
    /// The use case.
    pub use_case_id: String,
    /// The suite's name (its latest version runs).
    pub suite: String,
    /// Minutes between runs.
    pub every_minutes: i64,
    /// The drop in pass rate since the previous run that raises an alert (0–1).
    pub tolerance: f64,
    /// When the next run is due, Unix ms.
    pub next_at: i64,
    /// When set, Unix ms.
    pub created_at: i64,
    /// Who set it.
    pub created_by: String,
}
