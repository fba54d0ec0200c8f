//! `GET /admin/v1/portfolio`: every use case the caller may read placed by value and
//! feasibility, with a priority under configurable weights, quadrants, the stage pipeline, and
//! the value-versus-feasibility bubble chart (`format=svg`; bubble area = spend in the window,
//! colour = stage). Computed by `tollgate-value`.

use crate::common::*;
use tollgate_value::portfolio::{self as pf, Weights};

const DAY_MS: i64 = 86_400_000;

/// Two decimals, for a report people read.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
const HOUR_MS: i64 = 3_600_000;

#[utoipa::path(get, path = "/admin/v1/portfolio", tag = "reports",
    params(
        ("weights" = Option<String>, Query, description = "priority weights, e.g. impact=35,feasibility=25,data_readiness=20,risk=10,time_to_impact=10 (the defaults; others keep theirs)"),
        ("window" = Option<String>, Query, pattern = "^(day|week|month)$", description = "spend over the last day, 7 days or 30 days (default month)"),
        ("format" = Option<String>, Query, pattern = "^(json|svg)$", description = "json (default) | svg: the bubble chart"),
    ),
    responses((status = 200, description = "the portfolio as JSON, or the chart as SVG with `format=svg`", content((PortfolioReport = "application/json"), (String = "image/svg+xml"))),
        (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
/// The portfolio of the use cases the caller may read: priority, quadrant and spend of each, the
/// stage pipeline; or the bubble chart as SVG.
pub async fn portfolio(
    State(gw): Gw,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    // What was asked before this report is in it (the ledger's last batch is written first).
    gw.plane.settled().await;
    let weights = match q.get("weights") {
        Some(spec) => {
            Weights::parse(spec).map_err(|e| ApiError::invalid(e, Some("weights".into())))?
        }
        None => Weights::default(),
    };
    let days = match q.get("window").map(String::as_str).unwrap_or("month") {
        "day" => 1,
        "week" => 7,
        "month" => 30,
        _ => {
            return Err(ApiError::invalid(
                "`window` must be day, week or month",
                Some("window".into()),
            ));
        }
    };
    let svg = match q.get("format").map(String::as_str).unwrap_or("json") {
        "json" => false,
        "svg" => true,
        _ => {
            return Err(ApiError::invalid(
                "`format` must be json or svg",
                Some("format".into()),
            ));
        }
    };
    let to = gw.clock.now_ms();
    let from = to - days * DAY_MS;
    let pods = p.visible_pods();
    let filter = m::UseCaseFilter {
        pod_ids: pods.clone(),
        stage: None,
    };
    let mut page = PageRequest {
        after: None,
        limit: 200,
    };
    let mut use_cases = Vec::new();
    loop {
        let pg = gw.store.list_use_cases(&filter, &page).await?;
        use_cases.extend(pg.items);
        match pg.next {
            Some(a) => page.after = Some(a),
            None => break,
        }
    }
    let spend: HashMap<String, u64> = gw
        .store
        .spend_by(
            "use_case",
            from.div_euclid(HOUR_MS),
            (to + HOUR_MS - 1).div_euclid(HOUR_MS),
            pods.as_deref(),
        )
        .await?
        .into_iter()
        .map(|(id, t)| (id, t.cost_nano_usd))
        .collect();
    let mut bubbles: Vec<pf::Bubble> = use_cases
        .iter()
        .map(|uc| {
            let value = pf::value_score(&uc.scores, &weights);
            let feasibility = pf::feasibility_score(&uc.scores, &weights);
            pf::Bubble {
                id: uc.id.clone(),
                name: uc.name.clone(),
                pod_id: uc.pod_id.clone(),
                stage: uc.stage,
                value,
                feasibility,
                priority: pf::priority(&uc.scores, &weights),
                quadrant: pf::quadrant(value, feasibility),
                spend_nano_usd: spend.get(&uc.id).copied().unwrap_or(0),
            }
        })
        .collect();
    bubbles.sort_by(|a, b| b.priority.total_cmp(&a.priority).then(a.id.cmp(&b.id)));
    if svg {
        let body = pf::svg(
            &bubbles,
            &format!(
                "Portfolio: value vs feasibility, spend over {} to {}",
                tollgate_types::time::rfc3339(from),
                tollgate_types::time::rfc3339(to)
            ),
        );
        return Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                "image/svg+xml; charset=utf-8",
            )],
            body,
        )
            .into_response());
    }
    let mut pipeline = StagePipeline::default();
    let mut quadrants = std::collections::BTreeMap::new();
    for q in ["quick_win", "strategic_bet", "fill_in", "deprioritize"] {
        quadrants.insert(q.to_string(), 0);
    }
    for b in &bubbles {
        match b.stage {
            m::Stage::Proposed => pipeline.proposed += 1,
            m::Stage::Pilot => pipeline.pilot += 1,
            m::Stage::Production => pipeline.production += 1,
            m::Stage::Retired => pipeline.retired += 1,
        }
        *quadrants.entry(b.quadrant.to_string()).or_insert(0) += 1;
    }
    Ok(Json(PortfolioReport {
        from: tollgate_types::time::rfc3339(from),
        to: tollgate_types::time::rfc3339(to),
        weights: PriorityWeights {
            impact: weights.impact,
            feasibility: weights.feasibility,
            data_readiness: weights.data_readiness,
            risk: weights.risk,
            time_to_impact: weights.time_to_impact,
        },
        pipeline,
        quadrants,
        use_cases: bubbles
            .into_iter()
            .map(|b| PortfolioUseCase {
                id: b.id,
                name: b.name,
                pod_id: b.pod_id,
                stage: b.stage,
                value: round2(b.value),
                feasibility: round2(b.feasibility),
                priority: round2(b.priority),
                quadrant: b.quadrant.into(),
                spend_usd: tollgate_meter::Money::from_nanos(b.spend_nano_usd).usd(),
            })
            .collect(),
    })
    .into_response())
}
