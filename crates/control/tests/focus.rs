//! The FOCUS 1.2 export: every mandatory column is present with the right type, the values follow
//! the specification's rules, and the money adds up to the ledger to the nano-dollar.
//!
//! The column facts below are written from the FOCUS 1.2 specification (its column definitions and
//! the FinOps Foundation's validator rules for 1.2), independently of the exporter's own column
//! table, so a column dropped or mistyped there fails here.

// A test crate: helpers outside #[test] fns may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../gateway/tests/common/mod.rs"]
mod common;
mod planes;

use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use tollgate_simulator::SimConfig;
use tollgate_store::LedgerQueries;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Str,
    Dec,
    Time,
    Json,
}

/// FOCUS 1.2's mandatory columns, their types, and whether they may be null.
const MANDATORY: [(&str, Ty, bool); 21] = [
    ("BilledCost", Ty::Dec, false),
    ("BillingAccountId", Ty::Str, false),
    ("BillingAccountName", Ty::Str, true),
    ("BillingCurrency", Ty::Str, false),
    ("BillingPeriodEnd", Ty::Time, false),
    ("BillingPeriodStart", Ty::Time, false),
    ("ChargeCategory", Ty::Str, false),
    ("ChargeClass", Ty::Str, true),
    ("ChargeDescription", Ty::Str, true),
    ("ChargePeriodEnd", Ty::Time, false),
    ("ChargePeriodStart", Ty::Time, false),
    ("ContractedCost", Ty::Dec, false),
    ("EffectiveCost", Ty::Dec, false),
    ("InvoiceIssuerName", Ty::Str, false),
    ("ListCost", Ty::Dec, false),
    // Null only for Tax rows; every row here is Usage.
    ("PricingQuantity", Ty::Dec, false),
    ("PricingUnit", Ty::Str, false),
    ("ProviderName", Ty::Str, false),
    ("PublisherName", Ty::Str, false),
    ("ServiceCategory", Ty::Str, false),
    ("ServiceName", Ty::Str, false),
];

/// Conditional and recommended columns whose condition holds for an LLM gateway (it measures
/// usage, publishes unit prices per SKU, has resources, sub-accounts and tags), with their types;
/// on Usage rows none of these may be null.
const APPLICABLE: [(&str, Ty); 18] = [
    ("ChargeFrequency", Ty::Str),
    ("ConsumedQuantity", Ty::Dec),
    ("ConsumedUnit", Ty::Str),
    ("ContractedUnitPrice", Ty::Dec),
    ("ListUnitPrice", Ty::Dec),
    ("PricingCategory", Ty::Str),
    ("ResourceId", Ty::Str),
    ("ResourceName", Ty::Str),
    ("ResourceType", Ty::Str),
    ("ServiceSubcategory", Ty::Str),
    ("SkuId", Ty::Str),
    ("SkuMeter", Ty::Str),
    ("SkuPriceDetails", Ty::Json),
    ("SkuPriceId", Ty::Str),
    ("SubAccountId", Ty::Str),
    ("SubAccountName", Ty::Str),
    ("SubAccountType", Ty::Str),
    ("Tags", Ty::Json),
];

/// A FOCUS decimal → (digits, scale): plain numbers only (no sign here, no exponent, no units).
fn dec(s: &str) -> (u128, u32) {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(
        !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()),
        "decimal {s:?}"
    );
    assert!(frac.bytes().all(|b| b.is_ascii_digit()), "decimal {s:?}");
    assert!(
        s.split_once('.').is_none() || !frac.is_empty(),
        "decimal {s:?}"
    );
    (format!("{whole}{frac}").parse().unwrap(), frac.len() as u32)
}

/// `a` at scale `sa` equals `b` at scale `sb`.
fn same(a: (u128, u32), b: (u128, u32)) -> bool {
    let scale = a.1.max(b.1);
    a.0 * 10u128.pow(scale - a.1) == b.0 * 10u128.pow(scale - b.1)
}

fn nanos(s: &str) -> u64 {
    let (d, scale) = dec(s);
    assert!(scale <= 9, "{s} has more than 9 decimals");
    u64::try_from(d * 10u128.pow(9 - scale)).unwrap()
}

fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[19] == b'Z'
        && b[10] == b'T'
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
}

fn ms(s: &str) -> i64 {
    tollgate_types::time::parse_rfc3339(s).unwrap()
}

fn check_type(col: &str, ty: Ty, v: &str) {
    match ty {
        Ty::Str => assert!(!v.trim().is_empty(), "{col}: empty string"),
        Ty::Dec => {
            dec(v);
        }
        Ty::Time => assert!(is_time(v), "{col}: {v:?} is not YYYY-MM-DDTHH:MM:SSZ"),
        Ty::Json => {
            let o: Value = serde_json::from_str(v).unwrap_or_else(|e| panic!("{col}: {e}: {v}"));
            let o = o
                .as_object()
                .unwrap_or_else(|| panic!("{col}: not an object"));
            for (k, x) in o {
                assert!(
                    !x.is_object() && !x.is_array(),
                    "{col}: {k} is nested (key-value format is flat)"
                );
            }
        }
    }
}

async fn admin_get(g: &Gw, token: &str, path_and_query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path_and_query}", g.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_focus_export_has_every_mandatory_column_with_its_type_and_adds_up() {
    away_from_month_end().await;
    let s = sim(SimConfig {
        cached_tokens: 3,
        cache_write_tokens: 2,
        reasoning_tokens: 5,
        ..SimConfig::default()
    })
    .await;
    let (g, admin) = planes::serve(&format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{0}/v1" }}
  - {{ name: ant, type: anthropic, base_url: "{0}", api_key: k }}
routes:
  - name: mini
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: sonnet
    deployments: [{{ provider: ant, model: claude-sonnet-4-5 }}]
  - name: contract
    deployments: [{{ provider: sim, model: gpt-4o, price: {{ input: "2.00", output: "8.00" }} }}]
  - name: local
    deployments: [{{ provider: sim, model: llama-70b, price: {{ gpu_hour_usd: "3.60", tokens_per_second: 1000 }} }}]
  - name: free
    deployments: [{{ provider: sim, model: my-finetune }}]
"#,
        s.url
    ))
    .await;
    let routes = ["mini", "sonnet", "contract", "local", "free"];
    for route in routes {
        for stream in [false, true] {
            let resp = g
                .post(json!({"model": route, "messages": user("Summarise the quarterly report"), "max_tokens": 20, "stream": stream}))
                .await;
            assert_eq!(resp.status(), 200, "{route}");
            resp.bytes().await.unwrap();
        }
    }
    // Two more requests earlier in the month (first hour, and ten days in), written to the ledger
    // directly: the export streams the month a day at a time, and must find every day.
    let month_start = tollgate_meter::period::bounds(
        tollgate_meter::period::Period::Month,
        "UTC",
        tollgate_store::now_ms(),
    )
    .unwrap()
    .0;
    let mini = g.gw.meter.price_point(0, 0).unwrap().id.clone();
    let earlier: Vec<tollgate_store::RequestRecord> =
        [3_600_000i64, 10 * 86_400_000 + 5 * 3_600_000]
            .iter()
            .map(|offset| tollgate_store::RequestRecord {
                id: tollgate_store::new_id("rec"),
                at: month_start + offset,
                key_id: "key_earlier".into(),
                use_case_id: g.use_case.id.clone(),
                pod_id: g.use_case.pod_id.clone(),
                endpoint: "chat".into(),
                route: "mini".into(),
                status: 200,
                outcome: "ok".into(),
                input_tokens: 1_000,
                output_tokens: 100,
                cost_nano_usd: Some(1_000 * 150 + 100 * 600),
                price_id: Some(mini.clone()),
                cost_split: [150_000, 0, 0, 60_000, 0],
                ..Default::default()
            })
            .collect();
    g.gw.store.insert_records(&earlier).await.unwrap();
    let expected = (routes.len() * 2 + earlier.len()) as u64;
    for _ in 0..200 {
        if g.gw.store.count_records(0, i64::MAX).await.unwrap() == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ledger = g.gw.store.record_totals(0, i64::MAX).await.unwrap();
    assert_eq!(ledger.requests, expected);

    let now = tollgate_store::now_ms();
    let month = &tollgate_types::time::rfc3339(now)[..7];
    let resp = admin_get(
        &g,
        &admin,
        &format!("/admin/v1/reports/focus?month={month}"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let header = |name: &str| -> u64 { resp.headers()[name].to_str().unwrap().parse().unwrap() };
    let (rows_header, billed_header, not_exported) = (
        header("x-tollgate-focus-rows"),
        header("x-tollgate-focus-billed-nano-usd"),
        header("x-tollgate-focus-not-exported-nano-usd"),
    );
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let columns: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<HashMap<String, String>> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), columns.len(), "every row has every column");
            columns
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect();
    assert_eq!(rows.len() as u64, rows_header);
    assert_eq!(
        ms(&rows[0]["ChargePeriodStart"]),
        month_start + 3_600_000,
        "rows in time order, from the first day of the month"
    );
    assert!(
        rows.iter()
            .any(|r| ms(&r["ChargePeriodStart"]) == month_start + 10 * 86_400_000 + 5 * 3_600_000)
    );

    // Presence: every mandatory column, and the applicable conditional ones; custom columns last.
    for (c, _, _) in MANDATORY {
        assert!(
            columns.iter().any(|x| x == c),
            "mandatory column {c} is missing"
        );
    }
    for (c, _) in APPLICABLE {
        assert!(columns.iter().any(|x| x == c), "column {c} is missing");
    }
    let first_custom = columns.iter().position(|c| c.starts_with("x_")).unwrap();
    assert!(columns[first_custom..].iter().all(|c| c.starts_with("x_")));
    for c in &columns[..first_custom] {
        assert!(
            c.chars().next().unwrap().is_ascii_uppercase()
                && c.chars().all(|ch| ch.is_ascii_alphanumeric()),
            "{c} is not a FOCUS (PascalCase) column name"
        );
    }

    // Types, nulls and allowed values, row by row.
    assert!(!rows.is_empty());
    let (start, end) = (
        ms(&format!("{month}-01T00:00:00Z")),
        tollgate_meter::period::bounds(tollgate_meter::period::Period::Month, "UTC", now)
            .unwrap()
            .1,
    );
    for row in &rows {
        for (c, ty, nullable) in MANDATORY {
            let v = &row[c];
            if v.is_empty() {
                assert!(nullable, "{c} is null in {row:?}");
            } else {
                check_type(c, ty, v);
            }
        }
        for (c, ty) in APPLICABLE {
            assert!(!row[c].is_empty(), "{c} is null on a Usage row: {row:?}");
            check_type(c, ty, &row[c]);
        }
        assert_eq!(row["ChargeCategory"], "Usage");
        assert_eq!(row["ChargeClass"], "", "no corrections");
        assert_eq!(row["ChargeFrequency"], "Usage-Based");
        assert_eq!(row["BillingCurrency"], "USD");
        assert_eq!(row["ServiceCategory"], "AI and Machine Learning");
        assert_eq!(row["ServiceSubcategory"], "Generative AI");
        assert!(
            ["Standard", "Committed", "Dynamic", "Other"]
                .contains(&row["PricingCategory"].as_str())
        );
        assert_eq!(row["ConsumedUnit"], "Tokens");
        assert_eq!(row["PricingUnit"], "1000000 Tokens");
        // Periods: the billing period is the month; the charge period one hour inside it.
        assert_eq!(ms(&row["BillingPeriodStart"]), start);
        assert_eq!(ms(&row["BillingPeriodEnd"]), end);
        let (cs, ce) = (ms(&row["ChargePeriodStart"]), ms(&row["ChargePeriodEnd"]));
        assert_eq!(ce - cs, 3_600_000);
        assert!(start <= cs && ce <= end);
        // Quantities and prices: PricingQuantity is ConsumedQuantity in millions; costs are unit
        // price × pricing quantity, exactly.
        let consumed = dec(&row["ConsumedQuantity"]);
        assert_eq!(consumed.1, 0, "tokens are whole");
        assert!(same(dec(&row["PricingQuantity"]), (consumed.0, 6)));
        for (cost, price) in [
            ("ListCost", "ListUnitPrice"),
            ("ContractedCost", "ContractedUnitPrice"),
        ] {
            let (p, ps) = dec(&row[price]);
            let (q, qs) = dec(&row["PricingQuantity"]);
            assert!(
                same(dec(&row[cost]), (p * q, ps + qs)),
                "{cost} ≠ {price} × PricingQuantity: {row:?}"
            );
        }
        // Billed = effective (no commitments; cache discounts are already in the per-kind price),
        // and within a nano-dollar per request (of this deployment-hour, at most all of them) of
        // the contracted cost.
        assert_eq!(row["BilledCost"], row["EffectiveCost"]);
        let requests = ledger.requests;
        let contracted = dec(&row["ContractedCost"]);
        let billed = u128::from(nanos(&row["BilledCost"])) * 1_000_000;
        let contracted_fm = contracted.0 * 10u128.pow(15 - contracted.1);
        assert!(
            billed.abs_diff(contracted_fm) <= u128::from(requests) * 1_000_000,
            "{row:?}"
        );
        // SKU price ids belong to exactly one SKU.
        assert!(row["SkuPriceId"].ends_with(&format!(":{}", row["x_TokenKind"])));
    }

    // The money adds up: Σ BilledCost is the ledger's cost to the nano-dollar, and tokens by kind
    // are the ledger's tokens.
    let billed: u64 = rows.iter().map(|r| nanos(&r["BilledCost"])).sum();
    let requests: u64 = rows
        .iter()
        .map(|r| r["x_RequestCount"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        requests, ledger.requests,
        "x_RequestCount adds up to the requests"
    );
    assert_eq!(billed, ledger.cost_nano_usd);
    assert_eq!(billed, billed_header);
    assert_eq!(not_exported, 0);
    let tokens = |kind: &str| -> u64 {
        rows.iter()
            .filter(|r| r["x_TokenKind"] == kind)
            .map(|r| r["ConsumedQuantity"].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(tokens("input"), ledger.input_tokens);
    assert_eq!(tokens("cached_input"), ledger.cached_input_tokens);
    assert_eq!(tokens("cache_write"), ledger.cache_write_tokens);
    assert_eq!(tokens("output"), ledger.output_tokens);
    assert_eq!(tokens("reasoning"), ledger.reasoning_tokens);

    // Each kind of deployment maps as documented.
    let find = |route: &str, kind: &str| -> &HashMap<String, String> {
        rows.iter()
            .find(|r| r["x_Route"] == route && r["x_TokenKind"] == kind)
            .unwrap_or_else(|| panic!("no {route}/{kind} row"))
    };
    let mini = find("mini", "input");
    assert_eq!(mini["SkuId"], "gpt-4o-mini");
    assert_eq!(mini["ListUnitPrice"], "0.15");
    assert_eq!(mini["ContractedUnitPrice"], "0.15");
    assert_eq!(mini["PublisherName"], "OpenAI");
    assert_eq!(mini["PricingCategory"], "Standard");
    assert_eq!(mini["SubAccountId"], g.use_case.id);
    let tags: Value = serde_json::from_str(&mini["Tags"]).unwrap();
    assert_eq!(tags["tollgate/stage"], "production");
    let write = find("sonnet", "cache_write");
    assert_eq!(write["ProviderName"], "Anthropic");
    assert_eq!(write["ServiceName"], "Anthropic API");
    assert_eq!(write["SkuMeter"], "Cache Write Tokens");
    assert_eq!(write["ListUnitPrice"], "3.75");
    assert_eq!(
        nanos(&write["BilledCost"]),
        write["ConsumedQuantity"].parse::<u64>().unwrap() * 3750
    );
    assert_eq!(find("sonnet", "cached_input")["ListUnitPrice"], "0.3");
    let contract = find("contract", "input");
    assert_eq!(contract["ContractedUnitPrice"], "2");
    assert_eq!(contract["ListUnitPrice"], "2.5", "the catalog's list price");
    assert!(nanos(&contract["ListCost"]) > nanos(&contract["ContractedCost"]));
    let local = find("local", "output");
    assert_eq!(local["PricingCategory"], "Other");
    assert_eq!(local["ProviderName"], "sim");
    assert_eq!(local["x_PriceSource"], "self_hosted");
    let free = find("free", "input");
    assert_eq!(free["x_Unpriced"], "true");
    assert_eq!(free["BilledCost"], "0");
    assert_eq!(mini["x_Unpriced"], "false");

    // JSON: the same rows, JSON columns as objects.
    let v: Value = admin_get(
        &g,
        &admin,
        &format!("/admin/v1/reports/focus?month={month}&format=json"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["version"], "1.2");
    assert_eq!(v["rows"].as_array().unwrap().len(), rows.len());
    assert!(v["rows"][0]["Tags"].is_object());
    assert_eq!(v["summary"]["billed_nano_usd"], ledger.cost_nano_usd);
    assert!(v["rows"][0]["ChargeClass"].is_null());

    // A month without traffic: a header and no rows.
    let empty = admin_get(&g, &admin, "/admin/v1/reports/focus?month=2001-01")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(empty.lines().count(), 1);

    // Bad input gets specific errors.
    for (q, needle) in [
        ("", "`month` is required"),
        ("month=2026-13", "`month` must look like 2026-11"),
        ("month=nov", "`month` must look like 2026-11"),
        (
            &format!("month={month}&format=xml") as &str,
            "`format` must be csv or json",
        ),
        (
            &format!("month={month}&by=pod") as &str,
            "unknown query parameter `by`",
        ),
    ] {
        let resp = admin_get(&g, &admin, &format!("/admin/v1/reports/focus?{q}")).await;
        assert_eq!(resp.status(), 400, "{q}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{q}: {v}"
        );
    }
    let resp = admin_get(
        &g,
        "tgu_wrong",
        &format!("/admin/v1/reports/focus?month={month}"),
    )
    .await;
    assert_eq!(resp.status(), 401);
}
