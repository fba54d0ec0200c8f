//! Every KPI on constructed facts, against values computed by hand (the arithmetic is in the
//! comments), and each one's "n/a" case.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tollgate_store::{OutcomeRollup, Stage, latency_bucket};
use tollgate_value::kpis::{BudgetBurn, Retention};
use tollgate_value::{Facts, ForecastCheck, Kpi, UseCaseFacts, compute};

const DAY: i64 = 86_400_000;
const USD: u64 = 1_000_000_000;

/// A histogram with `n` requests at each of these latencies (ms).
fn hist(points: &[(u64, u64)]) -> Vec<u64> {
    let mut h = vec![0; 29];
    for (ms, n) in points {
        h[latency_bucket(*ms)] += n;
    }
    h
}

/// Thirty days of one scope, every number chosen so the KPIs come out round.
fn facts() -> Facts {
    Facts {
        from_ms: 0,
        to_ms: 30 * DAY,
        requests: 1_000,
        answered: 950,
        errors: 30,
        fallbacks: 20,
        streams: 400,
        streams_cancelled: 40,
        guard_blocked: 10,
        guard_flagged: 90,
        cache_hits: None,
        cache_saved_nano_usd: 0,
        tokens: 2_000_000,
        cost_nano_usd: 50 * USD,
        premium_requests: 250,
        routing_savings_nano_usd: Some(5 * USD as i64),
        routing_priced: 900,
        latency: hist(&[(100, 500), (300, 450), (2_000, 50)]),
        ttft: hist(&[(50, 380), (1_000, 20)]),
        active_users: 80,
        daily_active_avg: 20.0,
        weekly_active: 50,
        monthly_active: 80,
        retention: Some(Retention {
            cohort: 40,
            retained: 10,
        }),
        sessions: 200,
        session_requests: 600,
        peak_requests_per_minute: 120,
        peak_tokens_per_minute: 60_000,
        quota_requests_per_minute: Some(600),
        providers_without_quota: Vec::new(),
        outcomes: OutcomeRollup {
            events: 500,
            success: 300,
            failure: 100,
            escalated: 50,
            abandoned: 50,
            rated: 200,
            positive: 150,
            rating_sum: 800,
            with_acceptance: 100,
            accepted_unedited: 60,
            accepted_edited: 20,
            success_unvalued: 200,
            value_nano_usd: 100 * USD,
            minutes_saved_milli: 600_000,
            ..OutcomeRollup::default()
        },
        eligible_users: 200,
        // 200 unvalued successes × $2.
        modelled_value_nano_usd: 400 * USD,
        // 300 successes × (9 − 6) minutes.
        modelled_minutes_milli: 900_000,
        // $60 of $200 spent 3 days into the budgets' periods: $20 a day, 7 days left.
        budget: Some(BudgetBurn {
            amount_nano_usd: 200 * USD,
            spent_nano_usd: 60 * USD,
            days_elapsed: 3.0,
        }),
        forecast: Some(ForecastCheck {
            month: "2026-11".into(),
            spent_before_nano_usd: 20 * USD,
            forecast_nano_usd: 55 * USD,
            actual_nano_usd: 50 * USD,
        }),
        slo_windows: Some((8_640, 8_208)),
        eval: Some(((90, 100), Some((80, 100)))),
        judge: Some((42.5, 50)),
        fairness_flags_per_release: None,
        use_cases: vec![
            UseCaseFacts {
                id: "a".into(),
                stage: Some(Stage::Production),
                pilot_at: Some(0),
                production_at: Some(10 * DAY),
                has_kpi: true,
                has_baseline: true,
                outcomes_30d: 5,
            },
            UseCaseFacts {
                id: "b".into(),
                stage: Some(Stage::Production),
                pilot_at: Some(0),
                production_at: Some(30 * DAY),
                has_kpi: true,
                has_baseline: false,
                outcomes_30d: 9,
            },
            UseCaseFacts {
                id: "c".into(),
                stage: Some(Stage::Pilot),
                pilot_at: Some(5 * DAY),
                ..UseCaseFacts::default()
            },
            UseCaseFacts {
                id: "d".into(),
                stage: Some(Stage::Proposed),
                ..UseCaseFacts::default()
            },
        ],
    }
}

fn kpi(f: &Facts, number: u8) -> Kpi {
    let all = compute(f);
    assert_eq!(all.len(), 25);
    let k = all[usize::from(number) - 1].clone();
    assert_eq!(k.number, number);
    k
}

/// `value` of KPI `number` is `want` (to 1e-9).
fn is(f: &Facts, number: u8, value: &str, want: f64) {
    let k = kpi(f, number);
    assert_eq!(k.not_available, None, "{k:?}");
    let got = k
        .get(value)
        .unwrap_or_else(|| panic!("KPI {number} has no {value}: {k:?}"));
    assert!(
        (got - want).abs() < 1e-9,
        "KPI {number} {value}: {got} ≠ {want}"
    );
}

/// KPI `number` of `f` is n/a, saying `why`, with no values.
fn na(f: &Facts, number: u8, why: &str) {
    let k = kpi(f, number);
    assert!(k.values.is_empty(), "{k:?}");
    let reason = k.not_available.unwrap_or_default();
    assert!(
        reason.contains(why),
        "KPI {number}: {reason:?} does not say {why:?}"
    );
}

#[test]
fn k01_active_users() {
    let f = facts();
    is(&f, 1, "dau", 20.0);
    is(&f, 1, "wau", 50.0);
    is(&f, 1, "mau", 80.0);
    is(&f, 1, "window", 80.0);
    assert_eq!(kpi(&f, 1).basis, 1_000);
    na(
        &Facts {
            active_users: 0,
            ..f
        },
        1,
        "x-tollgate-user",
    );
}

#[test]
fn k02_penetration() {
    let f = facts();
    // 80 ÷ 200.
    is(&f, 2, "penetration", 0.4);
    na(
        &Facts {
            eligible_users: 0,
            ..f.clone()
        },
        2,
        "eligible users",
    );
    na(
        &Facts {
            active_users: 0,
            ..f
        },
        2,
        "x-tollgate-user",
    );
}

#[test]
fn k03_stickiness_and_retention() {
    let f = facts();
    // 20 ÷ 80; 10 ÷ 40.
    is(&f, 3, "stickiness", 0.25);
    is(&f, 3, "week4_retention", 0.25);
    let short = Facts {
        retention: None,
        ..f.clone()
    };
    assert_eq!(kpi(&short, 3).get("week4_retention"), None);
    // No one in the first week: no retention to read (not 0 ÷ 0).
    let empty_cohort = Facts {
        retention: Some(Retention {
            cohort: 0,
            retained: 0,
        }),
        ..f.clone()
    };
    assert_eq!(kpi(&empty_cohort, 3).get("week4_retention"), None);
    is(&empty_cohort, 3, "stickiness", 0.25);
    // Users in the window, none in its last 30 days: said so (not "no end user named").
    na(
        &Facts {
            monthly_active: 0,
            ..f.clone()
        },
        3,
        "last 30 days of the window",
    );
    na(
        &Facts {
            monthly_active: 0,
            active_users: 0,
            ..f
        },
        3,
        "x-tollgate-user",
    );
}

#[test]
fn k04_usage_intensity() {
    let f = facts();
    // 1,000 ÷ 80; 600 ÷ 200.
    is(&f, 4, "requests_per_user", 12.5);
    is(&f, 4, "turns_per_session", 3.0);
    na(
        &Facts {
            active_users: 0,
            sessions: 0,
            session_requests: 0,
            ..f.clone()
        },
        4,
        "no request named an end user (x-tollgate-user), and no request named a session",
    );
    // End users but no session begun in the window: turns per session is n/a, and says why.
    let k = kpi(
        &Facts {
            sessions: 0,
            ..f.clone()
        },
        4,
    );
    assert!(k.get("requests_per_user").is_some(), "{k:?}");
    assert_eq!(k.get("turns_per_session"), None, "{k:?}");
    let input = k
        .inputs
        .iter()
        .find(|(name, _)| *name == "turns_per_session");
    assert!(
        input.is_some_and(|(_, v)| v.starts_with("n/a: no session began in the window")),
        "{input:?}"
    );
    // Requests of sessions that began before the window: none began in it.
    na(
        &Facts {
            active_users: 0,
            sessions: 0,
            ..f
        },
        4,
        "no session began in the window (its 600 requests naming a session",
    );
}

#[test]
fn k05_abandonment() {
    let f = facts();
    // 40 ÷ 400.
    is(&f, 5, "abandonment", 0.1);
    na(&Facts { streams: 0, ..f }, 5, "no streamed requests");
}

#[test]
fn k06_eval_pass_rate() {
    let f = facts();
    // 90 ÷ 100, minus 80 ÷ 100.
    is(&f, 6, "pass_rate", 0.9);
    is(&f, 6, "delta_vs_champion", 0.1);
    // A champion run with no cases: nothing to compare with (not 0 ÷ 0).
    let empty_champion = Facts {
        eval: Some(((8, 10), Some((0, 0)))),
        ..f.clone()
    };
    is(&empty_champion, 6, "pass_rate", 0.8);
    assert_eq!(kpi(&empty_champion, 6).get("delta_vs_champion"), None);
    na(&Facts { eval: None, ..f }, 6, "no evaluation runs");
}

#[test]
fn k07_online_judge() {
    let f = facts();
    // 42.5 ÷ 50.
    is(&f, 7, "mean_score", 0.85);
    na(&Facts { judge: None, ..f }, 7, "no judge scores");
}

#[test]
fn k08_satisfaction_and_coverage() {
    let f = facts();
    // 150 ÷ 200; 800 ÷ 200; 200 ÷ 950.
    is(&f, 8, "satisfaction", 0.75);
    is(&f, 8, "mean_rating", 4.0);
    is(&f, 8, "feedback_coverage", 200.0 / 950.0);
    let mut none = f.clone();
    none.outcomes.rated = 0;
    na(&none, 8, "no ratings");
}

#[test]
fn k09_acceptance() {
    let f = facts();
    // 60 ÷ 100; (60 + 20) ÷ 100.
    is(&f, 9, "acceptance", 0.6);
    is(&f, 9, "accepted_any", 0.8);
    let mut none = f.clone();
    none.outcomes.with_acceptance = 0;
    na(&none, 9, "accepted");
}

#[test]
fn k10_safety_incidents() {
    let f = facts();
    // (10 + 90) ÷ 1,000; 10 ÷ 1,000.
    is(&f, 10, "incident_rate", 0.1);
    is(&f, 10, "block_rate", 0.01);
    na(&Facts::default(), 10, "no requests");
}

#[test]
fn k11_latency() {
    let f = facts();
    // 500 at 100 ms, 450 at 300 ms, 50 at 2 s: the 500th is in the 100 ms bucket, the 950th
    // in the 300 ms one. TTFT: the 380th of 400 is in the 50 ms bucket.
    is(&f, 11, "p50_ms", 100.0);
    is(&f, 11, "p95_ms", 300.0);
    is(&f, 11, "ttft_p95_ms", 50.0);
    // One more slow request moves p95 to the 2 s bucket: 951st of 1,001.
    let mut slower = f.clone();
    slower.latency = hist(&[(100, 500), (300, 450), (2_000, 51)]);
    is(&slower, 11, "p95_ms", 2_000.0);
    // Past the last bound: reported as the last bound (300 s), a number.
    let off_scale = Facts {
        latency: hist(&[(400_000, 3)]),
        ..f.clone()
    };
    is(&off_scale, 11, "p50_ms", 300_000.0);
    na(&Facts::default(), 11, "no requests");
}

#[test]
fn k12_errors_and_fallbacks() {
    let f = facts();
    is(&f, 12, "error_rate", 0.03);
    is(&f, 12, "fallback_rate", 0.02);
    na(&Facts::default(), 12, "no requests");
}

#[test]
fn k13_slo_attainment() {
    let f = facts();
    // 8,208 of 8,640 five-minute windows.
    is(&f, 13, "attainment", 0.95);
    na(
        &Facts {
            slo_windows: None,
            ..f.clone()
        },
        13,
        "no SLO is set",
    );
    na(
        &Facts {
            slo_windows: Some((0, 0)),
            ..f
        },
        13,
        "no traffic",
    );
}

#[test]
fn k14_throughput_and_headroom() {
    let f = facts();
    // 120 ÷ 60; 60,000 ÷ 60; 1 − 120 ÷ 600.
    is(&f, 14, "peak_rps", 2.0);
    is(&f, 14, "peak_tps", 1_000.0);
    is(&f, 14, "headroom", 0.8);
    // A quota of 0 (every provider's): no headroom to read (not 1 − 120 ÷ 0).
    let k = kpi(
        &Facts {
            quota_requests_per_minute: Some(0),
            ..f.clone()
        },
        14,
    );
    assert!(
        k.get("headroom").is_none() && k.get("peak_rps").is_some(),
        "{k:?}"
    );
    na(&Facts::default(), 14, "no requests");
    // A provider without a stated quota: the peaks, and why there is no headroom.
    let k = kpi(
        &Facts {
            quota_requests_per_minute: None,
            providers_without_quota: vec!["anthropic-eu".into()],
            ..f
        },
        14,
    );
    assert!(
        k.get("headroom").is_none() && k.get("peak_rps").is_some(),
        "{k:?}"
    );
    assert!(
        k.inputs
            .iter()
            .any(|(n, v)| *n == "headroom" && v.contains("provider(s) anthropic-eu")),
        "{k:?}"
    );
}

#[test]
fn k15_cache() {
    let f = facts();
    na(&f, 15, "no response cache");
    let cached = Facts {
        cache_hits: Some(250),
        cache_saved_nano_usd: 3 * USD,
        ..f
    };
    // 250 ÷ 1,000.
    is(&cached, 15, "hit_rate", 0.25);
    is(&cached, 15, "saved", 3.0);
}

#[test]
fn k16_spend_and_burn() {
    let f = facts();
    // $50 in the window; budgets: $60 of $200 in 3 days is $20 a day, $140 left lasts 7 days.
    is(&f, 16, "spend", 50.0);
    is(&f, 16, "burn", 0.3);
    is(&f, 16, "days_to_exhaustion", 7.0);
    assert_eq!(
        kpi(
            &Facts {
                budget: None,
                ..f.clone()
            },
            16
        )
        .get("burn"),
        None
    );
    let k = kpi(&f, 16);
    assert_eq!(k.values[0].nano_usd, Some(50_000_000_000));
    // Spent at the very start of the periods (no time gone by): no daily rate, so no days to
    // exhaustion (not 0 days), and the burn still reads.
    let at_start = Facts {
        budget: Some(BudgetBurn {
            days_elapsed: 0.0,
            ..f.budget.unwrap()
        }),
        ..f.clone()
    };
    is(&at_start, 16, "burn", 0.3);
    assert_eq!(kpi(&at_start, 16).get("days_to_exhaustion"), None);
    // Nothing spent yet: a burn of 0 and no days to exhaustion (not $200 ÷ $0 a day).
    let unspent = Facts {
        budget: Some(BudgetBurn {
            spent_nano_usd: 0,
            ..f.budget.unwrap()
        }),
        ..f.clone()
    };
    is(&unspent, 16, "burn", 0.0);
    assert_eq!(kpi(&unspent, 16).get("days_to_exhaustion"), None);
    na(&Facts::default(), 16, "no requests");
}

#[test]
fn k17_unit_costs() {
    let f = facts();
    let k = kpi(&f, 17);
    let nano = |n: &str| k.values.iter().find(|m| m.name == n).unwrap().nano_usd;
    // $50 ÷ 1,000; $50 × 1,000 ÷ 2,000,000; $50 ÷ 80.
    assert_eq!(nano("per_request"), Some(50_000_000));
    assert_eq!(nano("per_1k_tokens"), Some(25_000_000));
    assert_eq!(nano("per_active_user"), Some(625_000_000));
    na(&Facts::default(), 17, "no requests");
}

#[test]
fn k18_cost_per_successful_outcome() {
    let f = facts();
    // $50 ÷ 300, in whole nano-USD.
    let k = kpi(&f, 18);
    assert_eq!(k.values[0].nano_usd, Some(166_666_666));
    assert_eq!(k.basis, 300);
    let mut none = f.clone();
    none.outcomes.success = 0;
    na(&none, 18, "no successful outcomes");
}

#[test]
fn k19_model_mix() {
    let f = facts();
    is(&f, 19, "premium_share", 0.25);
    is(&f, 19, "routing_savings", 5.0);
    let k = kpi(&f, 19);
    assert!(
        k.inputs
            .iter()
            .any(|(n, v)| *n == "priced_on_first_deployment" && v == "900")
    );
    // A fallback to a dearer deployment is a negative saving, kept exact.
    let dearer = Facts {
        routing_savings_nano_usd: Some(-1_500_000_001),
        ..f.clone()
    };
    let k = kpi(&dearer, 19);
    let m = k
        .values
        .iter()
        .find(|m| m.name == "routing_savings")
        .unwrap();
    assert_eq!(m.nano_usd, Some(-1_500_000_001));
    // Nothing to price on the first deployments: the share stands, the savings are n/a.
    let unpriced = Facts {
        routing_savings_nano_usd: None,
        ..f
    };
    let k = kpi(&unpriced, 19);
    is(&unpriced, 19, "premium_share", 0.25);
    assert!(k.values.iter().all(|m| m.name != "routing_savings"));
    assert!(
        k.inputs
            .iter()
            .any(|(n, v)| *n == "routing_savings" && v.starts_with("n/a"))
    );
    na(&Facts::default(), 19, "no requests");
}

#[test]
fn k20_forecast_accuracy() {
    let f = facts();
    // |55 − 50| ÷ 50.
    is(&f, 20, "error", 0.1);
    // Over the actual: |45 − 50| ÷ 50, the same error.
    let under = |forecast: u64, spent_before: u64, actual: u64| Facts {
        forecast: Some(ForecastCheck {
            month: "2026-11".into(),
            spent_before_nano_usd: spent_before,
            forecast_nano_usd: forecast,
            actual_nano_usd: actual,
        }),
        ..f.clone()
    };
    is(&under(45 * USD, 20 * USD, 50 * USD), 20, "error", 0.1);
    is(&under(0, 1, 4), 20, "error", 1.0);
    na(
        &Facts {
            forecast: None,
            ..f.clone()
        },
        20,
        "no complete month",
    );
    na(&under(5, 0, 0), 20, "nothing was spent in 2026-11");
    // A use case that began after the 15th had no forecast made from its spend.
    na(&under(0, 0, 50 * USD), 20, "before its 15th");
}

#[test]
fn k21_task_success_and_containment() {
    let f = facts();
    // 500 requests and sessions with an outcome, more than the 200 sessions: 300 ÷ 500 tasks;
    // (500 − 50) ÷ 500.
    is(&f, 21, "task_success", 0.6);
    is(&f, 21, "containment", 0.9);
    // More sessions than outcomes: 300 ÷ 1,000 sessions.
    is(
        &Facts {
            sessions: 1_000,
            ..f.clone()
        },
        21,
        "task_success",
        0.3,
    );
    na(&Facts::default(), 21, "no outcomes");
    // Outcomes but no session begun in the window: no task success; containment still.
    for (session_requests, why) in [
        (0, "n/a: no request named a session"),
        (600, "n/a: no session began in the window (its 600 requests"),
    ] {
        let k = kpi(
            &Facts {
                sessions: 0,
                session_requests,
                ..f.clone()
            },
            21,
        );
        assert_eq!(k.get("task_success"), None, "{k:?}");
        assert!(k.get("containment").is_some(), "{k:?}");
        let input = k.inputs.iter().find(|(name, _)| *name == "task_success");
        assert!(
            input.is_some_and(|(_, v)| v.starts_with(why)),
            "{input:?} does not say {why:?}"
        );
    }
}

#[test]
fn k22_time_saved() {
    let f = facts();
    // (600 reported + 900 modelled) minutes = 25 hours.
    is(&f, 22, "hours", 25.0);
    na(&Facts::default(), 22, "no outcomes");
}

#[test]
fn k23_value_roi_payback() {
    let f = facts();
    // value $100 + $400 = $500; net $450; ROI 450 ÷ 50 = 9; monthly net $450 (30 days), so
    // payback = $50 ÷ $450 a month.
    is(&f, 23, "value", 500.0);
    is(&f, 23, "net_value", 450.0);
    is(&f, 23, "roi", 9.0);
    is(&f, 23, "payback_months", 50.0 / 450.0);
    let k = kpi(&f, 23);
    assert_eq!(k.values[0].nano_usd, Some(500_000_000_000));
    // Costs more than it brings: no payback.
    let mut losing = f.clone();
    losing.cost_nano_usd = 600 * USD;
    assert_eq!(kpi(&losing, 23).get("payback_months"), None);
    is(&losing, 23, "roi", (500.0 - 600.0) / 600.0);
    // Brings exactly what it costs: no payback either (not $500 ÷ $0 a month).
    let even = Facts {
        cost_nano_usd: 500 * USD,
        ..f.clone()
    };
    is(&even, 23, "net_value", 0.0);
    assert_eq!(kpi(&even, 23).get("payback_months"), None);
    // Past what int64 nano-USD holds, the value stops there — and its USD says the same amount
    // as its nano-USD (the outside attack's F4: $10,000,000,899 beside 9,223,372,036,854,775,807).
    let mut huge = f.clone();
    huge.modelled_value_nano_usd = u64::MAX;
    let k = kpi(&huge, 23);
    let value = k.values.iter().find(|m| m.name == "value").unwrap();
    assert_eq!(value.nano_usd, Some(i128::from(i64::MAX)));
    assert_eq!(value.value, i64::MAX as f64 / 1e9);
    na(&Facts::default(), 23, "no outcomes");
}

#[test]
fn k24_conversion_and_time_to_production() {
    let f = facts();
    // 3 piloted (a, b, c), 2 reached production after 10 and 30 days.
    is(&f, 24, "conversion", 2.0 / 3.0);
    is(&f, 24, "median_days_to_production", 20.0);
    na(
        &Facts {
            use_cases: vec![f.use_cases[3].clone()],
            ..f
        },
        24,
        "entered pilot",
    );
}

#[test]
fn k25_kpi_coverage() {
    let f = facts();
    // a is covered; b has no baseline.
    is(&f, 25, "coverage", 0.5);
    assert_eq!(kpi(&f, 25).basis, 2);
    na(&Facts::default(), 25, "no use case is in production");
}

#[test]
fn every_kpi_is_na_on_empty_facts_never_a_zero() {
    for k in compute(&Facts::default()) {
        assert!(
            k.not_available.is_some() && k.values.is_empty(),
            "KPI {} ({}) gave values on no data: {k:?}",
            k.number,
            k.id
        );
    }
}
