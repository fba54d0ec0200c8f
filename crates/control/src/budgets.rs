//! Budgets: create, read with their live spend, delete.

use crate::common::*;
use std::collections::HashSet;
use tollgate_store::{KeyFilter, UseCaseFilter};

/// The pod a budget's scope belongs to (`None` for org budgets), or 404 if the scope is gone.
pub(crate) async fn budget_pod(
    gw: &Control,
    scope: &str,
    scope_id: &str,
) -> Result<Option<String>> {
    Ok(match scope {
        "pod" => Some(
            gw.store
                .get_pod(scope_id)
                .await
                .map_err(|_| ApiError::Missing(format!("pod {scope_id}")))?
                .id,
        ),
        "use_case" | "use_case_eval" => Some(
            gw.store
                .get_use_case(scope_id)
                .await
                .map_err(|_| ApiError::Missing(format!("use case {scope_id}")))?
                .pod_id,
        ),
        "key" => {
            let k = gw
                .store
                .get_key(scope_id)
                .await
                .map_err(|_| ApiError::Missing(format!("key {scope_id}")))?;
            Some(gw.store.get_use_case(&k.use_case_id).await?.pod_id)
        }
        _ => None,
    })
}

pub(crate) async fn budget_visible(gw: &Control, p: &Principal, b: &m::Budget) -> bool {
    if p.reads_all() {
        return true;
    }
    match budget_pod(gw, &b.scope, &b.scope_id).await {
        Ok(Some(pod)) => p.can_read(&pod),
        _ => false,
    }
}

/// The scopes of some pods: the pods, their use cases and their keys (revoked ones too). Read in
/// a few pages per kind, so a list of many budgets takes no store lookup per budget.
struct Scopes {
    pods: HashSet<String>,
    use_cases: HashSet<String>,
    keys: HashSet<String>,
}

impl Scopes {
    async fn of_pods(gw: &Control, pods: Vec<String>) -> Result<Scopes> {
        let mut use_cases = HashSet::new();
        let mut req = PageRequest {
            after: None,
            limit: 200,
        };
        let filter = UseCaseFilter {
            pod_ids: Some(pods.clone()),
            stage: None,
        };
        loop {
            let page = gw.store.list_use_cases(&filter, &req).await?;
            use_cases.extend(page.items.into_iter().map(|u| u.id));
            match page.next {
                Some(n) => req.after = Some(n),
                None => break,
            }
        }
        let mut keys = HashSet::new();
        req.after = None;
        let filter = KeyFilter {
            pod_ids: Some(pods.clone()),
            use_case_id: None,
            include_inactive: true,
        };
        loop {
            let page = gw.store.list_keys(&filter, &req).await?;
            keys.extend(page.items.into_iter().map(|k| k.id));
            match page.next {
                Some(n) => req.after = Some(n),
                None => break,
            }
        }
        Ok(Scopes {
            pods: pods.into_iter().collect(),
            use_cases,
            keys,
        })
    }

    /// Whether `b`'s scope is one of them (an org budget is in no pod).
    fn holds(&self, b: &m::Budget) -> bool {
        match b.scope.as_str() {
            "pod" => self.pods.contains(&b.scope_id),
            "use_case" | "use_case_eval" => self.use_cases.contains(&b.scope_id),
            "key" => self.keys.contains(&b.scope_id),
            _ => false,
        }
    }
}

pub(crate) fn require_budget_role(p: &Principal) -> Result<()> {
    if p.manages_budgets() {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: "only platform admins and finops manage budgets".into(),
            code: "role_forbids",
        })
    }
}

#[utoipa::path(get, path = "/admin/v1/budgets", tag = "budgets",
    params(("after" = Option<String>, Query, description = "cursor"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size, 1–200")),
    responses((status = 200, body = BudgetPage), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// Budgets the caller may read, oldest first, with their spend in the current period; a page at
/// a time, like every other list.
pub async fn list_budgets(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<BudgetPage>> {
    let page = list_query(&q, "bud")?;
    let size = page.size() as usize;
    let mut statuses = gw.plane.budget_statuses();
    // Ids are time-ordered: the cursor is the last id shown.
    statuses.sort_by(|a, b| a.budget.id.cmp(&b.budget.id));
    let visible = match p.visible_pods() {
        None => None,
        Some(pods) => Some(Scopes::of_pods(&gw, pods).await?),
    };
    let mut items: Vec<Budget> = Vec::new();
    let mut next = None;
    for s in statuses {
        if page.after.as_ref().is_some_and(|a| s.budget.id <= *a) {
            continue;
        }
        if visible.as_ref().is_some_and(|v| !v.holds(&s.budget)) {
            continue;
        }
        if items.len() == size {
            next = items.last().map(|b| b.id.clone());
            break;
        }
        items.push(Budget::from_status(s));
    }
    Ok(Json(BudgetPage { items, next }))
}

#[utoipa::path(post, path = "/admin/v1/budgets", tag = "budgets", request_body = CreateBudget,
    responses((status = 201, body = Budget), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Creates a budget (platform admins and finops).
pub async fn create_budget(
    State(gw): Gw,
    p: Principal,
    headers: HeaderMap,
    b: Body,
) -> Result<Response> {
    require_budget_role(&p)?;
    let req: CreateBudget = body(&gw, &headers, b).await?;
    let amount = tollgate_meter::Money::parse_usd(&req.amount_usd).map_err(|e| {
        ApiError::invalid(
            format!("`amount_usd` must be a non-negative USD amount: {e}"),
            Some("amount_usd".into()),
        )
    })?;
    if amount.nanos() == 0 {
        return Err(ApiError::invalid(
            "`amount_usd` must be greater than 0",
            Some("amount_usd".into()),
        ));
    }
    // The store keeps amounts as signed 64-bit nano-USD: refuse what it cannot hold, never clamp.
    if amount.nanos() > i64::MAX as u64 {
        return Err(ApiError::invalid(
            format!(
                "`amount_usd` must be at most {} USD",
                tollgate_meter::Money(i64::MAX as u64).usd()
            ),
            Some("amount_usd".into()),
        ));
    }
    let time_zone = req.time_zone.clone().unwrap_or_else(|| "UTC".into());
    tollgate_meter::period::time_zone(&time_zone)
        .map_err(|e| ApiError::invalid(e, Some("time_zone".into())))?;
    let (scope, period, mode) = (
        serde_json::to_value(req.scope)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        serde_json::to_value(req.period)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        serde_json::to_value(req.mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    );
    let scope_id = match (req.scope, req.scope_id) {
        (BudgetScope::Org, None) => String::new(),
        (BudgetScope::Org, Some(_)) => {
            return Err(ApiError::invalid(
                "an org budget takes no `scope_id`",
                Some("scope_id".into()),
            ));
        }
        (_, None) => {
            return Err(ApiError::invalid(
                format!("a {scope} budget needs `scope_id`"),
                Some("scope_id".into()),
            ));
        }
        (_, Some(id)) => {
            budget_pod(&gw, &scope, &id).await?;
            id
        }
    };
    let budget = m::Budget {
        id: m::new_id("bud"),
        scope,
        scope_id,
        period,
        time_zone,
        amount_nano_usd: amount.nanos(),
        mode,
        created_at: gw.clock.now_ms(),
        created_by: p.actor(),
    };
    gw.store.create_budget(&p.actor(), &budget).await?;
    // The answer shows the live status, so the data plane must have the budget first.
    gw.plane.refresh(Changed::Budget(budget.id.clone())).await?;
    let status = gw
        .plane
        .budget_statuses()
        .into_iter()
        .find(|s| s.budget.id == budget.id)
        .ok_or(ApiError::Internal)?;
    Ok(created(Budget::from_status(status)))
}

pub(crate) async fn visible_budget(
    gw: &Control,
    p: &Principal,
    id: &str,
) -> Result<m::BudgetStatus> {
    match gw
        .plane
        .budget_statuses()
        .into_iter()
        .find(|s| s.budget.id == id)
    {
        Some(s) if budget_visible(gw, p, &s.budget).await => Ok(s),
        _ => Err(ApiError::Missing(format!("budget {id}"))),
    }
}

#[utoipa::path(get, path = "/admin/v1/budgets/{id}", tag = "budgets", params(("id" = String, Path)),
    responses((status = 200, body = Budget), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// One budget and its spend in the current period.
pub async fn get_budget(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Budget>> {
    Ok(Json(Budget::from_status(
        visible_budget(&gw, &p, &id).await?,
    )))
}

#[utoipa::path(delete, path = "/admin/v1/budgets/{id}", tag = "budgets", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
/// Deletes a budget (platform admins and finops).
pub async fn delete_budget(
    State(gw): Gw,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    visible_budget(&gw, &p, &id).await?;
    require_budget_role(&p)?;
    gw.store.delete_budget(&p.actor(), &id).await?;
    gw.changed(Changed::Budget(id)).await;
    Ok(StatusCode::NO_CONTENT)
}
