//! The demo's sample organization: three pods, five use cases across every stage, their people and
//! keys. Seeding is idempotent: pods, people and use cases are found by name on later runs; demo
//! keys are issued fresh each run (their secrets cannot be shown twice) and the previous run's
//! demo keys are revoked.

use anyhow::Context;
use tollgate_gateway::Gateway;
use tollgate_store::*;

/// A use case of the demo and a key for it.
pub struct DemoKey {
    /// Use case name.
    pub use_case: String,
    /// Its stage.
    pub stage: Stage,
    /// The key's secret.
    pub secret: String,
}

struct Spec {
    pod: &'static str,
    name: &'static str,
    description: &'static str,
    stage: Stage,
    routes: &'static [&'static str],
    value: ValueModel,
    scores: Scores,
    caps: PilotCaps,
}

fn specs() -> Vec<Spec> {
    let value =
        |driver: &str, kpi: &str, unit: &str, baseline: f64, target: f64, usd: u64, users: u64| {
            ValueModel {
                driver: driver.into(),
                kpi: kpi.into(),
                kpi_unit: unit.into(),
                baseline,
                target,
                value_per_outcome_nano_usd: usd * 1_000_000_000,
                eligible_users: users,
                ..ValueModel::default()
            }
        };
    let s = |impact, feasibility, data_readiness, risk, time_to_impact| Scores {
        impact,
        feasibility,
        data_readiness,
        risk,
        time_to_impact,
    };
    let mut specs = vec![
        Spec {
            pod: "customer-service",
            name: "ticket-triage",
            description: "Classifies and routes incoming support tickets",
            stage: Stage::Production,
            routes: &[
                "chat-default",
                "gpt-4o-mini",
                "chat-resilient",
                "text-embedding-3-small",
            ],
            value: value("efficiency", "handling time", "minutes", 9.0, 6.0, 2, 120),
            scores: s(5, 4, 4, 2, 5),
            caps: PilotCaps::default(),
        },
        Spec {
            pod: "customer-service",
            name: "reply-drafting",
            description: "Drafts replies for agents to review",
            stage: Stage::Pilot,
            routes: &["claude-haiku", "chat-default"],
            value: value(
                "experience",
                "first-contact resolution",
                "%",
                64.0,
                75.0,
                5,
                120,
            ),
            scores: s(4, 4, 3, 3, 4),
            caps: PilotCaps {
                max_end_users_per_day: Some(25),
                max_requests_per_day: Some(2_000),
            },
        },
        Spec {
            pod: "finance",
            name: "invoice-extraction",
            description: "Extracts fields from supplier invoices",
            stage: Stage::Production,
            routes: &["claude-sonnet", "claude-haiku", "chat-default"],
            value: value(
                "efficiency",
                "invoices processed per hour",
                "invoices/h",
                12.0,
                40.0,
                1,
                30,
            ),
            scores: s(4, 5, 4, 2, 4),
            caps: PilotCaps::default(),
        },
        Spec {
            pod: "finance",
            name: "spend-forecast-assistant",
            description: "Answers questions about month-end spend forecasts",
            stage: Stage::Proposed,
            routes: &["chat-default"],
            value: value("risk", "forecast error", "%", 12.0, 8.0, 0, 15),
            scores: s(3, 3, 2, 3, 2),
            caps: PilotCaps::default(),
        },
        Spec {
            pod: "hr",
            name: "leave-policy-bot",
            description: "Answered leave-policy questions; replaced by the HR portal",
            stage: Stage::Retired,
            routes: &["chat-default"],
            value: value(
                "experience",
                "questions answered",
                "count",
                0.0,
                500.0,
                0,
                900,
            ),
            scores: s(2, 5, 5, 1, 5),
            caps: PilotCaps::default(),
        },
    ];
    // Volume, minutes per task and owner of the use cases that have traffic.
    for sp in &mut specs {
        let (volume, before, after, owner) = match sp.name {
            "ticket-triage" => (6_000, 9.0, 6.0, "Casey Lead <cs-lead@example.com>"),
            "reply-drafting" => (1_500, 12.0, 7.0, "Casey Lead <cs-lead@example.com>"),
            "invoice-extraction" => (2_500, 6.0, 1.5, "Fran Lead <fin-lead@example.com>"),
            _ => continue,
        };
        sp.value.volume_per_month = volume;
        sp.value.baseline_minutes_per_task = before;
        sp.value.assisted_minutes_per_task = after;
        sp.value.owner = owner.into();
    }
    specs
}

async fn pod_named(gw: &Gateway, name: &str, description: &str) -> anyhow::Result<Pod> {
    let pods = gw
        .store
        .list_pods(
            None,
            &PageRequest {
                after: None,
                limit: 200,
            },
        )
        .await?;
    if let Some(p) = pods.items.into_iter().find(|p| p.name == name) {
        return Ok(p);
    }
    Ok(gw.store.create_pod("demo", name, description).await?)
}

async fn user(
    gw: &Gateway,
    email: &str,
    name: &str,
    role: Option<OrgRole>,
) -> anyhow::Result<User> {
    let users = gw
        .store
        .list_users(
            None,
            &PageRequest {
                after: None,
                limit: 200,
            },
        )
        .await?;
    if let Some(u) = users.items.into_iter().find(|u| u.email == email) {
        return Ok(u);
    }
    Ok(gw.store.create_user("demo", email, name, role).await?)
}

/// Seeds the sample organization and returns one fresh key per use case.
pub async fn seed(gw: &Gateway) -> anyhow::Result<Vec<DemoKey>> {
    let pods = [
        (
            "customer-service",
            "Front-line support: tickets, chat, e-mail",
        ),
        ("finance", "Accounts payable, planning and reporting"),
        ("hr", "People operations"),
    ];
    let mut pod_ids = std::collections::HashMap::new();
    for (name, description) in pods {
        pod_ids.insert(name, pod_named(gw, name, description).await?.id);
    }
    user(
        gw,
        "platform@example.com",
        "Pat Platform",
        Some(OrgRole::PlatformAdmin),
    )
    .await?;
    user(gw, "finops@example.com", "Fin Ops", Some(OrgRole::Finops)).await?;
    user(
        gw,
        "risk@example.com",
        "Riley Risk",
        Some(OrgRole::RiskOfficer),
    )
    .await?;
    for (pod, email, name, role) in [
        (
            "customer-service",
            "cs-lead@example.com",
            "Casey Lead",
            PodRole::Lead,
        ),
        (
            "customer-service",
            "cs-builder@example.com",
            "Sam Builder",
            PodRole::Builder,
        ),
        (
            "finance",
            "fin-lead@example.com",
            "Fran Lead",
            PodRole::Lead,
        ),
        ("hr", "hr-lead@example.com", "Harper Lead", PodRole::Lead),
    ] {
        let u = user(gw, email, name, None).await?;
        gw.store
            .set_member("demo", &pod_ids[pod], &u.id, role)
            .await?;
    }
    let existing = use_cases(gw).await?;
    let old_keys = gw
        .store
        .list_keys(
            &KeyFilter::default(),
            &PageRequest {
                after: None,
                limit: 200,
            },
        )
        .await?
        .items;
    for k in old_keys
        .iter()
        .filter(|k| k.name == "demo" && k.created_by == "demo")
    {
        gw.store.revoke_key("demo", &k.id, now_ms()).await?;
    }
    let mut out = Vec::new();
    for spec in specs() {
        let pod_id = &pod_ids[spec.pod];
        let uc = match existing
            .iter()
            .find(|u| u.pod_id == *pod_id && u.name == spec.name)
        {
            Some(u) => u.clone(),
            None => {
                let routes: Vec<String> = spec.routes.iter().map(|r| r.to_string()).collect();
                let uc = gw
                    .store
                    .create_use_case(
                        "demo",
                        pod_id,
                        spec.name,
                        spec.description,
                        &spec.value,
                        &spec.scores,
                        &routes,
                        &spec.caps,
                        &Limits::default(),
                    )
                    .await?;
                let path: &[Stage] = match spec.stage {
                    Stage::Proposed => &[],
                    Stage::Pilot => &[Stage::Pilot],
                    Stage::Production => &[Stage::Pilot, Stage::Production],
                    Stage::Retired => &[Stage::Pilot, Stage::Retired],
                };
                for to in path {
                    gw.store
                        .change_stage("demo", &uc.id, *to, "demo seed")
                        .await?;
                }
                gw.store.get_use_case(&uc.id).await?
            }
        };
        let (record, secret) = tollgate_gateway::keys::new_api_key(
            gw.keyring.secret(),
            &uc.id,
            None,
            "demo",
            None,
            None,
            "demo",
        );
        gw.store
            .create_key("demo", &record)
            .await
            .context("cannot store a demo key")?;
        out.push(DemoKey {
            use_case: uc.name,
            stage: uc.stage,
            secret,
        });
    }
    gw.keyring.reload().await?;
    Ok(out)
}

/// The demo organization's use cases (a few; one page holds them).
pub(crate) async fn use_cases(gw: &Gateway) -> anyhow::Result<Vec<tollgate_store::UseCase>> {
    Ok(gw
        .store
        .list_use_cases(
            &UseCaseFilter::default(),
            &PageRequest {
                after: None,
                limit: 200,
            },
        )
        .await?
        .items)
}

/// Gives every demo use case a $5 monthly eval budget (runs need one) and writes a sample suite
/// for the first piloting or production use case beside the data; returns (use case id, suite
/// path) to print.
pub async fn evaluations(
    gw: &Gateway,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<(String, std::path::PathBuf)>> {
    use tollgate_store::BudgetQueries;
    let budgets = gw.store.list_budgets().await?;
    let ucs = use_cases(gw).await?;
    for uc in &ucs {
        if budgets
            .iter()
            .any(|b| b.scope == "use_case_eval" && b.scope_id == uc.id)
        {
            continue;
        }
        gw.store
            .create_budget(
                "demo",
                &tollgate_store::Budget {
                    id: tollgate_store::new_id("bud"),
                    scope: "use_case_eval".into(),
                    scope_id: uc.id.clone(),
                    period: "month".into(),
                    time_zone: "UTC".into(),
                    amount_nano_usd: 5_000_000_000,
                    mode: "hard".into(),
                    created_at: gw.clock.now_ms(),
                    created_by: "demo".into(),
                },
            )
            .await?;
    }
    gw.gate.budgeter.reload().await?;
    let Some(uc) = ucs
        .iter()
        .find(|u| matches!(u.stage, Stage::Pilot | Stage::Production) && !u.routes.is_empty())
    else {
        return Ok(None);
    };
    let path = data_dir.join("demo-suite.yaml");
    let suite = format!(
        "# A sample evaluation suite: tollgate eval run {} --use-case {}\n\
         description: answers name the customer and stay short\n\
         prompts:\n  - \"Write a one-line reply to {{{{ customer }}}} about: {{{{ issue }}}}\"\n\
         routes: [{}]\n\
         pass_rate: 0.5\n\
         params: {{ temperature: 0, max_tokens: 40, seed: 7 }}\n\
         defaultTest:\n  assert:\n    - {{ type: latency, threshold: 10000 }}\n    - {{ type: cost, threshold: 0.01 }}\n\
         tests:\n\
         \x20 - vars: {{ customer: Ada, issue: a late delivery }}\n    assert: [{{ type: levenshtein, value: \"Dear Ada\", threshold: 400 }}]\n\
         \x20 - vars: {{ customer: Grace, issue: a double charge }}\n    assert: [{{ type: not-icontains, value: \"password\" }}]\n",
        path.display(),
        uc.id,
        uc.routes[0]
    );
    std::fs::write(&path, suite)?;
    Ok(Some((uc.id.clone(), path)))
}
