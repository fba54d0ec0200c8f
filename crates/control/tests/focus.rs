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

/// Columns with no known value on a row of an unpriced deployment (`x_Unpriced` = `true`): null
/// there, never 0. FOCUS 1.2 declares these not nullable on Usage rows, and its null-handling
/// rule forbids 0 (or any placeholder) for a missing value "regardless of whether the column
/// allows nulls"; a cost nobody knows has no conformant value, so the export leaves it null, flags
/// the row and counts it (`unpriced_rows`) rather than make it look free.
const UNKNOWN_WHEN_UNPRICED: [&str; 6] = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ListUnitPrice",
    "ContractedUnitPrice",
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
    // Both planes read one manual clock, mid-month: the records' hours and the month exported are
    // fixed, whatever the day the test runs (month boundaries have their own test).
    let clock = tollgate_types::clock::Clock::manual(1_795_176_000_000); // 2026-11-20T12:00:00Z
    let s = sim(SimConfig {
        cached_tokens: 3,
        cache_write_tokens: 2,
        reasoning_tokens: 5,
        ..SimConfig::default()
    })
    .await;
    let (g, admin) = planes::serve_at(&format!(
        r#"
providers:
  - {{ name: sim, type: openai_compatible, base_url: "{0}/v1" }}
  - {{ name: ant, type: anthropic, base_url: "{0}", api_key: k }}
  - {{ name: ant2, type: anthropic, base_url: "{0}", api_key: k2 }}
routes:
  - name: mini
    deployments: [{{ provider: sim, model: gpt-4o-mini }}]
  - name: sonnet
    deployments: [{{ provider: ant, model: claude-sonnet-4-5 }}]
  - name: sonnet2
    deployments: [{{ provider: ant2, model: claude-sonnet-4-5 }}]
  - name: sonnet-contract
    deployments: [{{ provider: ant2, model: claude-sonnet-4-5, price: {{ input: "2.40", output: "12.00" }} }}]
  - name: contract
    deployments: [{{ provider: sim, model: gpt-4o, price: {{ input: "2.00", output: "8.00" }} }}]
  - name: local
    deployments: [{{ provider: sim, model: llama-70b, price: {{ gpu_hour_usd: "3.60", tokens_per_second: 1000 }} }}]
  - name: free
    deployments: [{{ provider: sim, model: my-finetune }}]
"#,
        s.url
    ), clock.clone())
    .await;
    let routes = [
        "mini",
        "sonnet",
        "sonnet2",
        "sonnet-contract",
        "contract",
        "local",
        "free",
    ];
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
        clock.now_ms(),
    )
    .unwrap()
    .0;
    // The second is priced by an older catalog (another version, other prices) — over time, the
    // same SKU price keeps its SkuPriceId.
    let mini = g.gw.books.meter.price_point(0, 0).unwrap().id.clone();
    let catalog_version = g.gw.books.meter.catalog().version.clone();
    let older = tollgate_store::PricePointRow {
        id: "cat:2000-01-01:sim/openai_compatible:gpt-4o-mini".into(),
        provider: "sim".into(),
        provider_kind: "openai_compatible".into(),
        publisher: Some("openai".into()),
        model: "gpt-4o-mini".into(),
        source: "catalog:2000-01-01".into(),
        currency: "USD".into(),
        contracted: Some([
            100_000_000,
            50_000_000,
            100_000_000,
            400_000_000,
            400_000_000,
        ]),
        list: Some([
            100_000_000,
            50_000_000,
            100_000_000,
            400_000_000,
            400_000_000,
        ]),
    };
    g.gw.store
        .save_price_points(std::slice::from_ref(&older))
        .await
        .unwrap();
    let older_hour = month_start + 10 * 86_400_000 + 5 * 3_600_000;
    let earlier: Vec<tollgate_store::RequestRecord> = [
        (
            month_start + 3_600_000,
            mini.clone(),
            [150_000, 0, 0, 60_000, 0],
        ),
        (older_hour, older.id.clone(), [100_000, 0, 0, 40_000, 0]),
    ]
    .into_iter()
    .map(|(at, price_id, split)| tollgate_store::RequestRecord {
        id: tollgate_store::new_id("rec"),
        at,
        key_id: "key_earlier".into(),
        use_case_id: g.use_case.id.clone(),
        pod_id: g.use_case.pod_id.clone(),
        endpoint: "chat".into(),
        route: "mini".into(),
        status: 200,
        outcome: "ok".into(),
        input_tokens: 1_000,
        output_tokens: 100,
        cost_nano_usd: Some(split.iter().sum()),
        price_id: Some(price_id),
        cost_split: split,
        ..Default::default()
    })
    .collect();
    g.gw.store.insert_records(&earlier).await.unwrap();
    let expected = (routes.len() * 2 + earlier.len()) as u64;
    g.gw.books
        .ledger
        .written_at_least((routes.len() * 2) as u64)
        .await;
    let ledger = g.gw.store.record_totals(0, i64::MAX).await.unwrap();
    assert_eq!(ledger.requests, expected);

    let now = clock.now_ms();
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
    let (rows_header, unpriced_header, billed_header, not_exported) = (
        header("x-tollgate-focus-rows"),
        header("x-tollgate-focus-unpriced-rows"),
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
            .any(|r| ms(&r["ChargePeriodStart"]) == older_hour)
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
    // InvoiceId (recommended in 1.2) is there, and null: the export is allocation data, not an
    // invoice (FOCUS: null when the charge is not associated with an invoice).
    assert!(
        columns[..first_custom].iter().any(|c| c == "InvoiceId"),
        "InvoiceId is missing"
    );
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
        assert!(["true", "false"].contains(&row["x_Unpriced"].as_str()));
        let unpriced = row["x_Unpriced"] == "true";
        let unknown = |c: &str| unpriced && UNKNOWN_WHEN_UNPRICED.contains(&c);
        for (c, ty, nullable) in MANDATORY {
            let v = &row[c];
            if v.is_empty() {
                assert!(nullable || unknown(c), "{c} is null in {row:?}");
            } else {
                check_type(c, ty, v);
            }
        }
        for (c, ty) in APPLICABLE {
            if unknown(c) {
                continue; // checked below
            }
            assert!(!row[c].is_empty(), "{c} is null on a Usage row: {row:?}");
            check_type(c, ty, &row[c]);
        }
        if unpriced {
            // Unknown, so null — a 0 would read as free in every FinOps tool.
            for c in UNKNOWN_WHEN_UNPRICED {
                assert_eq!(row[c], "", "{c} of an unpriced row must be null: {row:?}");
            }
        }
        assert_eq!(row["InvoiceId"], "", "no provider invoice: {row:?}");
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
        // SKU price ids belong to exactly one SKU and token kind, and name no catalog version.
        assert!(row["SkuPriceId"].ends_with(&format!(":{}", row["x_TokenKind"])));
        assert!(!row["SkuPriceId"].contains(&catalog_version), "{row:?}");
        if unpriced {
            continue; // no prices to check
        }
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
    }
    // FOCUS: a SkuPriceId has one parent SkuId, and every charge of it shares its SkuPriceDetails
    // (no amounts, dates or accounts in them).
    let mut skus: HashMap<&str, (&str, &str)> = HashMap::new();
    for row in &rows {
        let this = (row["SkuId"].as_str(), row["SkuPriceDetails"].as_str());
        let first = *skus.entry(row["SkuPriceId"].as_str()).or_insert(this);
        assert_eq!(first, this, "{}", row["SkuPriceId"]);
    }

    // Unpriced rows are counted, in the header and (below) the JSON summary.
    let unpriced_rows = rows.iter().filter(|r| r["x_Unpriced"] == "true").count() as u64;
    assert!(unpriced_rows > 0);
    assert_eq!(unpriced_header, unpriced_rows);

    // The money adds up: Σ BilledCost (null on unpriced rows) is the ledger's cost to the
    // nano-dollar, and tokens by kind are the ledger's tokens.
    let billed: u64 = rows
        .iter()
        .filter(|r| !r["BilledCost"].is_empty())
        .map(|r| nanos(&r["BilledCost"]))
        .sum();
    assert_eq!(billed, ledger.cost_nano_usd);

    // x_RequestCount: each row carries the requests of its deployment-hour (hour × pod × use case
    // × route × price point), the same on every token kind of it, so a filter on one token kind
    // keeps the count; counting each deployment-hour once gives the ledger's requests.
    let count = |r: &HashMap<String, String>| r["x_RequestCount"].parse::<u64>().unwrap();
    let mut per_charge: HashMap<[&str; 5], u64> = HashMap::new();
    for r in &rows {
        let key = [
            "ChargePeriodStart",
            "x_PodId",
            "x_UseCaseId",
            "x_Route",
            "x_PricePointId",
        ]
        .map(|c| r[c].as_str());
        let first = *per_charge.entry(key).or_insert(count(r));
        assert_eq!(first, count(r), "one count per deployment-hour: {r:?}");
    }
    assert_eq!(per_charge.values().sum::<u64>(), ledger.requests);
    for kind in ["input", "output"] {
        // Every request of this test has input and output tokens.
        let by_kind: u64 = rows
            .iter()
            .filter(|r| r["x_TokenKind"] == kind)
            .map(count)
            .sum();
        assert_eq!(by_kind, ledger.requests, "requests on the {kind} rows");
    }
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
    assert_eq!(free["PricingCategory"], "Other");
    for c in UNKNOWN_WHEN_UNPRICED {
        assert_eq!(free[c], "", "{c} is unknown, not 0");
    }
    assert_ne!(free["ConsumedQuantity"], "0", "its usage is still exported");
    assert_eq!(mini["x_Unpriced"], "false");

    // SkuPriceId: the SKU price, the same across billing accounts (two Anthropic providers) and
    // over time (another catalog version); the price itself is in the unit price columns.
    let sonnet = find("sonnet", "input");
    let sonnet2 = find("sonnet2", "input");
    assert_ne!(sonnet["BillingAccountId"], sonnet2["BillingAccountId"]);
    assert_ne!(sonnet["x_PricePointId"], sonnet2["x_PricePointId"]);
    assert_eq!(
        sonnet2["SkuPriceId"], sonnet["SkuPriceId"],
        "one SKU price on two billing accounts"
    );
    assert_eq!(sonnet["SkuPriceId"], "anthropic:claude-sonnet-4-5:input");
    assert_eq!(sonnet2["ListUnitPrice"], sonnet["ListUnitPrice"]);
    // A contract price for the same SKU is a negotiated price of the same SKU price: FOCUS 1.2
    // keeps unit price amounts and contract elements out of SkuPriceId, and shows them in
    // ContractedUnitPrice.
    let negotiated = find("sonnet-contract", "input");
    assert_eq!(negotiated["SkuPriceId"], sonnet["SkuPriceId"]);
    assert_eq!(negotiated["ContractedUnitPrice"], "2.4");
    assert_eq!(negotiated["ListUnitPrice"], "3");
    let then = rows
        .iter()
        .find(|r| ms(&r["ChargePeriodStart"]) == older_hour && r["x_TokenKind"] == "input")
        .unwrap();
    assert_eq!(then["x_PricePointId"], older.id);
    assert_eq!(then["x_PriceSource"], "catalog:2000-01-01");
    assert_eq!(then["ListUnitPrice"], "0.1");
    assert_eq!(
        then["SkuPriceId"], mini["SkuPriceId"],
        "one SKU price over catalog versions"
    );
    assert_eq!(
        mini["SkuPriceId"],
        "openai_compatible/sim:gpt-4o-mini:input"
    );
    // Different SKU prices: another token kind, model or provider.
    let ids: std::collections::BTreeSet<&str> = [
        &sonnet["SkuPriceId"],
        &find("sonnet", "output")["SkuPriceId"],
        &mini["SkuPriceId"],
        &find("mini", "output")["SkuPriceId"],
        &find("contract", "input")["SkuPriceId"],
        &find("local", "input")["SkuPriceId"],
    ]
    .into_iter()
    .map(String::as_str)
    .collect();
    assert_eq!(ids.len(), 6, "{ids:?}");

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
    assert_eq!(v["summary"]["unpriced_rows"], unpriced_rows);
    assert!(v["rows"][0]["ChargeClass"].is_null());
    assert!(v["rows"][0]["InvoiceId"].is_null());
    let free = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["x_Route"] == "free")
        .unwrap();
    for c in UNKNOWN_WHEN_UNPRICED {
        assert!(free[c].is_null(), "{c}: {free}");
    }

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
