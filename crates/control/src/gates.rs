//! Stage gates on the admin API: the organization's gate settings, the checklist of a use case's
//! next stage with the evidence behind each line, promotion requests and approvals, and the
//! gated stage change itself (in [`change_stage`](crate::use_cases::change_stage)).
//!
//! Who may do what:
//! - anyone who can read the use case reads its checklist; anyone authenticated reads the gates;
//! - a platform admin changes the gates, and only a platform admin overrides one (with a reason,
//!   audited, kept on the use case);
//! - the pod's members who build and evaluate (lead, builder, domain expert) ask for a promotion;
//! - a lead of the pod approves as `lead`, a risk officer as `risk_officer` — a person signs a
//!   request once, and never their own.
//!
//! Every decision is audited with its checklist: a refusal as `use_case.gate_refused`, a move as
//! `use_case.stage` (with `gate`, and `override` when one was used).

use crate::common::*;
use tollgate_store::{
    BudgetQueries, EvalQueries, FairnessQueries, GateQueries, OutcomeQueries, PolicyQueries,
};
use tollgate_types::time::rfc3339;
use tollgate_value::gates::{self as g, Approver, Checklist, Evidence, GateConfig, Line};
use utoipa::ToSchema;

/// The setting the gates are stored under.
const SETTING: &str = "gates";

/// The organization's gates (the defaults until a platform admin sets them).
pub(crate) async fn config(gw: &Control) -> Result<GateConfig> {
    match gw.store.get_setting(SETTING).await? {
        None => Ok(GateConfig::default()),
        Some(s) => serde_json::from_str(&s).map_err(|e| {
            tracing::error!(error = %e, "the stored gate settings are unreadable");
            ApiError::Internal
        }),
    }
}

/// The stage a use case in `from` moves up to, if any.
pub(crate) fn next_up(from: m::Stage) -> Option<m::Stage> {
    match from {
        m::Stage::Proposed => Some(m::Stage::Pilot),
        m::Stage::Pilot => Some(m::Stage::Production),
        _ => None,
    }
}

#[utoipa::path(get, path = "/admin/v1/gates", tag = "gates",
    responses((status = 200, body = GateConfig), (status = 401, body = ErrorResponse)))]
/// What entering pilot and production takes in this organization.
pub async fn get_gates(State(gw): Gw, _p: Principal) -> Result<Json<GateConfig>> {
    Ok(Json(config(&gw).await?))
}

#[utoipa::path(put, path = "/admin/v1/gates", tag = "gates", request_body = g::GateConfigInput,
    responses((status = 200, body = GateConfig), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
/// Sets the gates (platform admins; audited as `gates.update` with the old and new settings).
/// Parts left out take their defaults.
pub async fn put_gates(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Json<GateConfig>> {
    p.require_admin()?;
    let new: GateConfig = body(&gw, &headers, b).await?;
    if let Some((path, message)) = new.problem() {
        return Err(ApiError::invalid(format!("`{path}` {message}"), Some(path)));
    }
    let old = config(&gw).await?;
    let text = serde_json::to_string(&new).map_err(|_| ApiError::Internal)?;
    gw.store
        .put_setting(
            &p.actor(),
            SETTING,
            &text,
            "gates.update",
            serde_json::json!({"from": old, "to": new}),
        )
        .await?;
    Ok(Json(new))
}

/// `GET /use-cases/{id}/gate`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GateQuery {
    /// `pilot` or `production`; by default the stage above the use case's.
    #[param(pattern = "^(pilot|production)$")]
    pub to: Option<String>,
}

/// A promotion request as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PromotionRequestView {
    /// `prq_…`.
    pub id: String,
    /// The use case.
    pub use_case_id: String,
    /// Its stage when asked.
    pub from: m::Stage,
    /// The stage asked for.
    pub to: m::Stage,
    /// Who asked (they may not approve it).
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

impl From<m::PromotionRequest> for PromotionRequestView {
    fn from(r: m::PromotionRequest) -> Self {
        PromotionRequestView {
            id: r.id,
            use_case_id: r.use_case_id,
            from: r.from,
            to: r.to,
            requested_by: r.requested_by,
            reason: r.reason,
            at: rfc3339(r.at),
        }
    }
}

/// An approval as served.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ApprovalView {
    /// `apr_…`.
    pub id: String,
    /// The request it signs.
    pub request_id: String,
    /// The use case.
    pub use_case_id: String,
    /// `lead` or `risk_officer`.
    pub role: String,
    /// Who.
    pub user_id: String,
    /// What they said.
    pub note: String,
    /// RFC 3339.
    pub at: String,
}

impl From<m::Approval> for ApprovalView {
    fn from(a: m::Approval) -> Self {
        ApprovalView {
            id: a.id,
            request_id: a.request_id,
            use_case_id: a.use_case_id,
            role: a.role,
            user_id: a.user_id,
            note: a.note,
            at: rfc3339(a.at),
        }
    }
}

/// A use case's checklist for its next stage.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct GateView {
    /// The use case.
    pub use_case_id: String,
    /// Its stage now.
    pub stage: m::Stage,
    /// The stage the checklist is for.
    pub to: m::Stage,
    /// Every line met: the move would be allowed now.
    pub met: bool,
    /// The lines: the evidence asked for, then the approvals.
    pub lines: Vec<Line>,
    /// The open promotion request, if someone has asked.
    pub request: Option<PromotionRequestView>,
    /// Its approvals.
    pub approvals: Vec<ApprovalView>,
}

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Gathers what the store says about `uc` for `gate`, and the open request with its approvals.
async fn evidence(
    gw: &Control,
    uc: &m::UseCase,
    to: m::Stage,
    gate: &g::Gate,
) -> Result<(Evidence, Option<m::PromotionRequest>, Vec<m::Approval>)> {
    let now = gw.clock.now_ms();
    let v = &uc.value_model;
    let mut budgets: Vec<g::BudgetFact> = gw
        .store
        .list_budgets()
        .await?
        .into_iter()
        .filter(|b| b.scope == "use_case" && b.scope_id == uc.id)
        .map(|b| g::BudgetFact {
            id: b.id,
            period: b.period,
            amount_nano_usd: b.amount_nano_usd,
        })
        .collect();
    budgets.sort_by_key(|b| (b.period != "month", b.id.clone()));
    let policies = gw.store.current_policies().await?;
    let policy = policies
        .iter()
        .find(|p| p.scope_id == uc.id)
        .map(|p| format!("its own policy v{}", p.version))
        .or_else(|| {
            policies
                .iter()
                .find(|p| p.scope_id.is_empty())
                .map(|p| format!("the org default policy v{}", p.version))
        });
    // Every suite at its latest version, with the latest finished run of that version.
    let runs = gw.store.list_runs(&uc.id, None, None, 500).await?;
    let mut suites = Vec::new();
    for v in gw.store.list_suites(&uc.id).await? {
        let run = runs.iter().find(|r| {
            r.suite == v.name
                && r.suite_version == v.version
                && r.status == "done"
                && r.pass_rate.is_some()
        });
        let run = match run {
            None => None,
            Some(r) => {
                let view = crate::evals::run_view(gw, r.clone()).await?;
                Some(g::EvalFact {
                    run_id: view.id,
                    suite: view.suite,
                    suite_version: view.suite_version,
                    pass_rate: view.pass_rate.unwrap_or(0.0),
                    threshold: view.threshold,
                    champion: view.champion.map(|c| (c.run_id, c.delta)),
                    finished_at: view.finished_at.unwrap_or_default(),
                })
            }
        };
        suites.push(g::SuiteFact {
            suite: v.name,
            version: v.version,
            run,
        });
    }
    let fairness = gw
        .store
        .list_fairness_runs(&uc.id, None, 200)
        .await?
        .into_iter()
        .find(|r| r.status == "done")
        .map(|r| g::FairnessFact {
            samples: r
                .probe
                .get("samples")
                .and_then(|s| s.as_u64())
                .unwrap_or(tollgate_eval::fairness::DEFAULT_SAMPLES as u64),
            run_id: r.id,
            flagged: r.flagged.unwrap_or(true),
            finished_at: r.finished_at.map(rfc3339).unwrap_or_default(),
        });
    let month_ago = now - 30 * DAY_MS;
    let spent_30d_nano_usd = gw.store.spend_since("use_case", &uc.id, month_ago).await?;
    let window_start = now - i64::from(gate.outcome_days) * DAY_MS;
    let (mut outcomes_30d, mut outcomes_recent) = (0, 0);
    for r in gw
        .store
        .outcome_rollups(
            month_ago.min(window_start).div_euclid(HOUR_MS),
            now.div_euclid(HOUR_MS) + 1,
        )
        .await?
        .into_iter()
        .filter(|r| r.use_case_id == uc.id)
    {
        if r.hour >= month_ago.div_euclid(HOUR_MS) {
            outcomes_30d += r.outcomes();
        }
        if r.hour >= window_start.div_euclid(HOUR_MS) {
            outcomes_recent += r.outcomes();
        }
    }
    // Only a request for this very move counts.
    let request = gw
        .store
        .open_promotion_request(&uc.id)
        .await?
        .filter(|r| r.from == uc.stage && r.to == to);
    let approvals = match &request {
        Some(r) => gw.store.list_approvals(&r.id).await?,
        None => Vec::new(),
    };
    // An approval counts while its signer still holds the role and the account is active.
    let mut holding = Vec::new();
    for a in &approvals {
        if still_holds(gw, a, &uc.pod_id).await? {
            holding.push(a.clone());
        }
    }
    let ev = Evidence {
        owner: v.owner.clone(),
        kpi: v.kpi.clone(),
        baseline: v.baseline,
        volume_per_month: v.volume_per_month,
        budgets,
        policy,
        suites,
        fairness,
        spent_30d_nano_usd,
        outcomes_30d,
        outcomes_recent,
        requester: request.as_ref().map(|r| r.requested_by.clone()),
        approvals: holding
            .iter()
            .filter_map(|a| {
                Some(g::ApprovalFact {
                    role: Approver::parse(&a.role)?,
                    user_id: a.user_id.clone(),
                    at: rfc3339(a.at),
                    note: a.note.clone(),
                })
            })
            .collect(),
    };
    Ok((ev, request, approvals))
}

/// Whether the signer of `a` still holds its role on `pod` and is not disabled.
async fn still_holds(gw: &Control, a: &m::Approval, pod: &str) -> Result<bool> {
    let user = match gw.store.get_user(&a.user_id).await {
        Ok(u) => u,
        Err(m::StoreError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if user.disabled_at.is_some() {
        return Ok(false);
    }
    Ok(match Approver::parse(&a.role) {
        Some(Approver::Lead) => gw
            .store
            .memberships_of(&a.user_id)
            .await?
            .iter()
            .any(|m| m.pod_id == pod && m.role == m::PodRole::Lead),
        Some(Approver::RiskOfficer) => user.org_role == Some(m::OrgRole::RiskOfficer),
        None => false,
    })
}

/// The checklist of `uc` for entering `to`, with the open request and its approvals.
pub(crate) async fn judge(
    gw: &Control,
    uc: &m::UseCase,
    to: m::Stage,
) -> Result<(Checklist, Option<m::PromotionRequest>, Vec<m::Approval>)> {
    let cfg = config(gw).await?;
    let Some(gate) = cfg.gate(to.as_str()) else {
        return Ok((
            Checklist {
                to: to.as_str().into(),
                met: true,
                lines: Vec::new(),
            },
            None,
            Vec::new(),
        ));
    };
    // The evidence includes every request and outcome event accepted before it is judged.
    gw.plane.settled().await;
    let (ev, request, approvals) = evidence(gw, uc, to, gate).await?;
    Ok((g::checklist(to.as_str(), gate, &ev), request, approvals))
}

#[utoipa::path(get, path = "/admin/v1/use-cases/{id}/gate", tag = "gates",
    params(("id" = String, Path), GateQuery),
    responses((status = 200, body = GateView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// The checklist of a use case's next stage (or `to`): each line with the evidence it rests on
/// — run ids, figures, who approved when — and whether the move would be allowed now.
pub async fn get_gate(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<GateQuery>,
) -> Result<Json<GateView>> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    let to = match q.to.as_deref() {
        None => next_up(uc.stage).ok_or_else(|| ApiError::Conflict {
            message: format!(
                "a use case in {} has no stage above it to be gated",
                uc.stage.as_str()
            ),
            code: "stage_transition_not_allowed",
        })?,
        Some("pilot") => m::Stage::Pilot,
        Some("production") => m::Stage::Production,
        Some(_) => {
            return Err(ApiError::invalid(
                "`to` must be pilot or production",
                Some("to".into()),
            ));
        }
    };
    if next_up(uc.stage) != Some(to) {
        return Err(ApiError::Conflict {
            message: format!(
                "a use case in {} does not move up to {}: its gate is not the next one",
                uc.stage.as_str(),
                to.as_str()
            ),
            code: "stage_transition_not_allowed",
        });
    }
    let (c, request, approvals) = judge(&gw, &uc, to).await?;
    Ok(Json(GateView {
        use_case_id: uc.id,
        stage: uc.stage,
        to,
        met: c.met,
        lines: c.lines,
        request: request.map(Into::into),
        approvals: approvals.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /use-cases/{id}/promotion-requests`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPromotion {
    /// The stage above the use case's: `pilot` or `production`.
    pub to: m::Stage,
    /// Why: not blank, at most 2000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

pub(crate) fn reason_ok(reason: &str) -> Result<()> {
    if tollgate_types::text::is_blank(reason) {
        return Err(ApiError::invalid(
            "`reason` must say why",
            Some("reason".into()),
        ));
    }
    text_ok("reason", reason, 2000)
}

/// Opens a promotion request of `uc` to `to` by `actor`.
pub(crate) async fn open_request(
    gw: &Control,
    actor: &str,
    uc: &m::UseCase,
    to: m::Stage,
    reason: &str,
) -> Result<m::PromotionRequest> {
    if next_up(uc.stage) != Some(to) {
        return Err(ApiError::Conflict {
            message: format!(
                "a use case in {} cannot be promoted to {}",
                uc.stage.as_str(),
                to.as_str()
            ),
            code: "stage_transition_not_allowed",
        });
    }
    let r = m::PromotionRequest {
        id: m::new_id("prq"),
        use_case_id: uc.id.clone(),
        from: uc.stage,
        to,
        requested_by: actor.to_string(),
        reason: reason.to_string(),
        at: gw.clock.now_ms(),
        closed_at: None,
    };
    gw.store
        .create_promotion_request(&r)
        .await
        .map_err(|e| match e {
            m::StoreError::Conflict(message) => ApiError::Conflict {
                message,
                code: "promotion_requested",
            },
            m::StoreError::Invalid(message) => ApiError::Conflict {
                message,
                code: "stage_transition_not_allowed",
            },
            e => e.into(),
        })?;
    Ok(r)
}

#[utoipa::path(post, path = "/admin/v1/use-cases/{id}/promotion-requests", tag = "gates",
    params(("id" = String, Path)), request_body = RequestPromotion,
    responses((status = 201, body = PromotionRequestView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Asks for a use case to move up a stage (its pod's lead, builders and domain experts, or a
/// platform admin). Approvals sign this request; whoever asked may not approve it. It closes when
/// the stage changes; a use case has one open at a time (409 `promotion_requested`).
pub async fn request_promotion(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    p.check(
        &uc.pod_id,
        &format!("use case {id}"),
        p.can_evaluate(&uc.pod_id),
    )?;
    let req: RequestPromotion = body(&gw, &headers, b).await?;
    reason_ok(&req.reason)?;
    let r = open_request(&gw, &p.actor(), &uc, req.to, &req.reason).await?;
    Ok(created(PromotionRequestView::from(r)))
}

#[utoipa::path(delete, path = "/admin/v1/use-cases/{id}/promotion-requests", tag = "gates",
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Withdraws the open promotion request, its approvals with it (whoever asked, a lead of the pod,
/// or a platform admin; audited as `use_case.promotion_withdraw`). 409 `no_promotion_request`
/// when none is open.
pub async fn withdraw_promotion(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    let request = gw.store.open_promotion_request(&uc.id).await?;
    let allowed =
        p.can_manage(&uc.pod_id) || request.as_ref().is_some_and(|r| p.is_user(&r.requested_by));
    p.check(&uc.pod_id, &format!("use case {id}"), allowed)?;
    let Some(request) = request else {
        return Err(ApiError::Conflict {
            message: "no promotion of this use case is requested".into(),
            code: "no_promotion_request",
        });
    };
    gw.store
        .withdraw_promotion_request(&p.actor(), &request)
        .await
        .map_err(|e| match e {
            m::StoreError::NotFound(_) => ApiError::Conflict {
                message: "the promotion request was closed meanwhile".into(),
                code: "no_promotion_request",
            },
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /use-cases/{id}/approvals`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The role signed as: `lead` (a lead of the use case's pod) or `risk_officer`.
    pub role: Approver,
    /// What the approver says (at most 2000 characters).
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

#[utoipa::path(post, path = "/admin/v1/use-cases/{id}/approvals", tag = "gates",
    params(("id" = String, Path)), request_body = Approve,
    responses((status = 201, body = ApprovalView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
/// Approves the open promotion request in a role the gate asks for: `lead` by a lead of the
/// pod, `risk_officer` by a risk officer. A person signs a request once and never their own
/// (403 `own_request`); each role is signed once (409 `already_approved`). Audited as
/// `use_case.approve`.
pub async fn approve(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    let uc = readable_use_case(&gw, &p, &id).await?;
    let req: Approve = body(&gw, &headers, b).await?;
    let note = req.note.unwrap_or_default();
    text_ok("note", &note, 2000)?;
    let holds = match req.role {
        Approver::Lead => p.pod_role(&uc.pod_id) == Some(m::PodRole::Lead),
        Approver::RiskOfficer => p.has_org_role(m::OrgRole::RiskOfficer),
    };
    if !holds {
        return Err(ApiError::Forbidden {
            message: format!(
                "only a {} may approve as `{}`",
                match req.role {
                    Approver::Lead => "lead of the use case's pod",
                    Approver::RiskOfficer => "risk officer",
                },
                req.role.as_str()
            ),
            code: "role_forbids",
        });
    }
    let Some(request) = gw.store.open_promotion_request(&uc.id).await? else {
        return Err(ApiError::Conflict {
            message: "nobody has asked for this use case's promotion: there is nothing to approve"
                .into(),
            code: "no_promotion_request",
        });
    };
    if request.from != uc.stage {
        return Err(ApiError::Conflict {
            message: format!(
                "the open request is for a move from {}, and the use case is in {} now",
                request.from.as_str(),
                uc.stage.as_str()
            ),
            code: "no_promotion_request",
        });
    }
    let cfg = config(&gw).await?;
    let wanted = cfg
        .gate(request.to.as_str())
        .is_some_and(|g| g.approvals.contains(&req.role));
    if !wanted {
        return Err(ApiError::Conflict {
            message: format!(
                "the gate to {} does not ask for a `{}` approval",
                request.to.as_str(),
                req.role.as_str()
            ),
            code: "approval_not_required",
        });
    }
    if p.is_user(&request.requested_by) {
        return Err(ApiError::Forbidden {
            message: "you asked for this promotion: someone else must approve it".into(),
            code: "own_request",
        });
    }
    let a = m::Approval {
        id: m::new_id("apr"),
        request_id: request.id,
        use_case_id: uc.id,
        role: req.role.as_str().into(),
        user_id: p.actor(),
        note,
        at: gw.clock.now_ms(),
    };
    gw.store.add_approval(&a).await.map_err(|e| match e {
        m::StoreError::Conflict(message) => ApiError::Conflict {
            message,
            code: "already_approved",
        },
        m::StoreError::Invalid(message) => ApiError::Conflict {
            message,
            code: "no_promotion_request",
        },
        e => e.into(),
    })?;
    Ok(created(ApprovalView::from(a)))
}

/// Why a gate refused, in one sentence per unmet line.
pub(crate) fn refusal(c: &Checklist) -> String {
    let unmet: Vec<String> = c
        .lines
        .iter()
        .filter(|l| !l.met)
        .map(|l| format!("{}: {}", l.check, l.evidence))
        .collect();
    format!("the gate to {} is not met — {}", c.to, unmet.join("; "))
}
