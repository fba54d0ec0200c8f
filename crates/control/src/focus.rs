//! The FOCUS 1.2 export: a month of LLM spend in the FinOps Open Cost and Usage Specification's
//! columns, so FinOps tools read it beside the cloud bills.
//!
//! One row per hour × pod × use case × deployment (route, provider, model, price point) × token
//! kind, from the ledger's FOCUS rollups (never the raw records). Money is exact: `BilledCost` and
//! `EffectiveCost` are the ledger's nano-dollar costs split by token kind (the parts add up to each
//! request's cost, see `tollgate_meter::split`), so they sum to the spend report to the
//! nano-dollar; `ListCost` and `ContractedCost` are unit price × quantity, written exactly (up to
//! 15 decimals) as FOCUS defines them. `ContractedCost` differs from `BilledCost` by the
//! per-request rounding only; `ListCost` uses the catalog's list price, so for a deployment with a
//! contract price it also shows the discount.
//!
//! Mapping (why each value is what it is):
//! - the gateway is the view of the organization; each configured provider is a billing account
//!   (`BillingAccountId`/`Name` = provider name), each use case a sub-account (`SubAccount*`),
//!   each deployment a resource (`ResourceId` = `route/provider/model`, `ResourceType`
//!   `LLM Deployment`);
//! - `ProviderName`, `InvoiceIssuerName` and `ServiceName` follow the provider's type (OpenAI,
//!   Microsoft for Azure OpenAI, Anthropic; the provider's own name for OpenAI-compatible and
//!   self-hosted servers); `PublisherName` is the model's publisher from the catalog;
//! - `SkuId` is the model, `SkuMeter` the token kind (`Input Tokens`, …), `PricingUnit`
//!   `1000000 Tokens` (catalog prices are per 1M tokens), `ConsumedUnit` `Tokens`;
//! - `SkuPriceId` names the SKU price, not the amount ([`sku_price_id`]): the provider (its type
//!   for OpenAI, Azure OpenAI and Anthropic; the configured provider for OpenAI-compatible and
//!   self-hosted servers, which are providers of their own), the model and the token kind. FOCUS
//!   1.2 excludes unit price amounts, effective dates (the catalog version) and contract or account
//!   elements from it, so it stays the same across billing accounts and over time, and a price
//!   change shows as a new `ListUnitPrice`/`ContractedUnitPrice` under the same id.
//!   `SkuPriceDetails` holds only what is the same for every charge of that id (the token kind);
//!   the catalog version is in `x_PriceSource` (`catalog:<version>`) and `x_PricePointId`;
//! - `PricingCategory` is `Standard` for catalog and contract prices, `Other` for self-hosted and
//!   unpriced deployments; unpriced rows carry their tokens, `x_Unpriced` = `true`, and null
//!   (unknown) unit prices and list and contracted costs — and null `BilledCost`/`EffectiveCost`
//!   unless the ledger holds a cost — never a 0 that FinOps tools would read as free. FOCUS 1.2
//!   declares those cost columns not nullable and forbids 0 as a stand-in for unknown; there is no
//!   conformant value for a cost nobody knows, so these rows are flagged and counted
//!   (`unpriced_rows`) rather than made to look free;
//! - `InvoiceId` is null: the gateway knows no provider invoice. The export is allocation
//!   (showback/chargeback) data, not an invoice, and must not be loaded beside a provider's
//!   invoice data and counted twice;
//! - `Tags` carry the pod, use case and stage under the provider prefix `tollgate/` (FOCUS asks
//!   provider-defined keys to be prefixed);
//! - custom columns (`x_…`) come after the FOCUS columns; `x_RequestCount` is the requests of the
//!   row's deployment-hour (hour × pod × use case × route × price point, named by
//!   `x_PricePointId`) and is the same on each of its token-kind rows, so a filter on one token
//!   kind keeps the count; it must not be summed across the token kinds of one deployment-hour
//!   (count each deployment-hour once).
//!
//! Date-times are `YYYY-MM-DDTHH:MM:SSZ` (UTC); decimals are plain (`0.00015`), never in
//! exponent form; a null is an empty CSV field and `null` in JSON.

use tollgate_store::{FocusRollup, PricePointRow};

/// The FOCUS data type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// Text.
    String,
    /// A decimal number, written exactly.
    Decimal,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    DateTime,
    /// A flat JSON object (key-value format).
    Json,
}

/// The columns of the export, in order: FOCUS 1.2 columns (mandatory, then the conditional and
/// recommended ones that apply to an LLM gateway), then Tollgate's `x_` columns.
pub const COLUMNS: &[(&str, ColumnType)] = &[
    ("BilledCost", ColumnType::Decimal),
    ("BillingAccountId", ColumnType::String),
    ("BillingAccountName", ColumnType::String),
    ("BillingCurrency", ColumnType::String),
    ("BillingPeriodEnd", ColumnType::DateTime),
    ("BillingPeriodStart", ColumnType::DateTime),
    ("ChargeCategory", ColumnType::String),
    ("ChargeClass", ColumnType::String),
    ("ChargeDescription", ColumnType::String),
    ("ChargeFrequency", ColumnType::String),
    ("ChargePeriodEnd", ColumnType::DateTime),
    ("ChargePeriodStart", ColumnType::DateTime),
    ("ConsumedQuantity", ColumnType::Decimal),
    ("ConsumedUnit", ColumnType::String),
    ("ContractedCost", ColumnType::Decimal),
    ("ContractedUnitPrice", ColumnType::Decimal),
    ("EffectiveCost", ColumnType::Decimal),
    ("InvoiceId", ColumnType::String),
    ("InvoiceIssuerName", ColumnType::String),
    ("ListCost", ColumnType::Decimal),
    ("ListUnitPrice", ColumnType::Decimal),
    ("PricingCategory", ColumnType::String),
    ("PricingQuantity", ColumnType::Decimal),
    ("PricingUnit", ColumnType::String),
    ("ProviderName", ColumnType::String),
    ("PublisherName", ColumnType::String),
    ("ResourceId", ColumnType::String),
    ("ResourceName", ColumnType::String),
    ("ResourceType", ColumnType::String),
    ("ServiceCategory", ColumnType::String),
    ("ServiceName", ColumnType::String),
    ("ServiceSubcategory", ColumnType::String),
    ("SkuId", ColumnType::String),
    ("SkuMeter", ColumnType::String),
    ("SkuPriceDetails", ColumnType::Json),
    ("SkuPriceId", ColumnType::String),
    ("SubAccountId", ColumnType::String),
    ("SubAccountName", ColumnType::String),
    ("SubAccountType", ColumnType::String),
    ("Tags", ColumnType::Json),
    ("x_PodId", ColumnType::String),
    ("x_PodName", ColumnType::String),
    ("x_UseCaseId", ColumnType::String),
    ("x_Route", ColumnType::String),
    ("x_TokenKind", ColumnType::String),
    ("x_RequestCount", ColumnType::Decimal),
    ("x_PriceSource", ColumnType::String),
    ("x_PricePointId", ColumnType::String),
    ("x_Unpriced", ColumnType::String),
];

/// One exported row: a value (or null) per column of [`COLUMNS`].
pub type Line = Vec<Option<String>>;

/// The SKU meter of each token kind (`tollgate_meter::KINDS` order).
const METERS: [&str; 5] = [
    "Input Tokens",
    "Cached Input Tokens",
    "Cache Write Tokens",
    "Output Tokens",
    "Reasoning Tokens",
];

/// `n / 10^scale` as a plain decimal, trailing zeros trimmed (`150000, 9` → `0.00015`).
pub fn decimal(n: u128, scale: u32) -> String {
    let unit = 10u128.pow(scale);
    let (whole, frac) = (n / unit, n % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = scale as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `2026-11-01T00:00:00Z` (FOCUS date-times have no fraction).
fn datetime(ms: i64) -> String {
    let mut s = tollgate_types::time::rfc3339(ms);
    // `…:00.000Z` → `…:00Z`
    s.replace_range(19..23, "");
    s
}

/// (ProviderName — also the invoice issuer —, ServiceName) of a provider.
fn provider_names(kind: &str, provider: &str, source: &str) -> (String, String) {
    if source == "self_hosted" {
        return (provider.to_string(), format!("{provider} (self-hosted)"));
    }
    match kind {
        "openai" => ("OpenAI".into(), "OpenAI API".into()),
        "azure_openai" => ("Microsoft".into(), "Azure OpenAI".into()),
        "anthropic" => ("Anthropic".into(), "Anthropic API".into()),
        _ => (
            provider.to_string(),
            format!("{provider} (OpenAI-compatible)"),
        ),
    }
}

/// The publisher of a model from its catalog family (Bedrock hosts several publishers).
fn publisher_name(family: Option<&str>, model: &str, fallback: &str) -> String {
    match family {
        Some("openai") => "OpenAI".into(),
        Some("anthropic") => "Anthropic".into(),
        Some("google") => "Google".into(),
        Some("mistral") => "Mistral AI".into(),
        Some("bedrock") => match model.split('.').next() {
            Some("anthropic") => "Anthropic".into(),
            Some("meta") => "Meta".into(),
            Some("mistral") => "Mistral AI".into(),
            Some("cohere") => "Cohere".into(),
            _ => "Amazon".into(),
        },
        _ => fallback.to_string(),
    }
}

/// The `SkuPriceId` of a token kind of a price point: `<provider>:<model>:<token kind>`, where
/// the provider is the provider's type for the providers with a published price list (`openai`,
/// `azure_openai`, `anthropic`), and `<type>/<name>` (`self_hosted/<name>` for a self-hosted
/// price) for servers that are providers of their own — as `ProviderName` names them. It holds no
/// unit price, catalog version or account: FOCUS 1.2 asks the id to stay the same across billing
/// accounts and over time, and to exclude amounts, effective dates and contract elements (a
/// contract price is a `ContractedUnitPrice` under the same id). The provider name is escaped
/// (`%`, `:`, `/`), so the first `:` ends the provider and the last one begins the token kind.
pub fn sku_price_id(price: Option<&PricePointRow>, token_kind: &str) -> String {
    let Some(p) = price else {
        return format!("unknown:unknown:{token_kind}");
    };
    let name = || {
        p.provider
            .replace('%', "%25")
            .replace(':', "%3A")
            .replace('/', "%2F")
    };
    let provider = match (p.source.as_str(), p.provider_kind.as_str()) {
        ("self_hosted", _) => format!("self_hosted/{}", name()),
        (_, kind @ ("openai" | "azure_openai" | "anthropic")) => kind.to_string(),
        (_, kind) => format!("{kind}/{}", name()),
    };
    format!("{provider}:{}:{token_kind}", p.model)
}

/// The rows of a billing period `[start, end)` (Unix ms) from its rollups. Kinds with neither
/// tokens nor cost are left out.
pub fn lines(rollups: &[FocusRollup], start: i64, end: i64) -> Vec<Line> {
    let mut out = Vec::new();
    let (period_start, period_end) = (datetime(start), datetime(end));
    for r in rollups {
        let (provider, kind, publisher, model, source) = match &r.price {
            Some(p) => (
                p.provider.as_str(),
                p.provider_kind.as_str(),
                p.publisher.as_deref(),
                p.model.as_str(),
                p.source.as_str(),
            ),
            None => ("unknown", "unknown", None, "unknown", "unpriced"),
        };
        let contracted = r.price.as_ref().and_then(|p| p.contracted);
        // Without a list price, the price paid is the list (a self-hosted or private model).
        let list = r.price.as_ref().and_then(|p| p.list).or(contracted);
        let unpriced = contracted.is_none();
        let (provider_name, service) = provider_names(kind, provider, source);
        let publisher = publisher_name(publisher, model, &provider_name);
        let category = if source.starts_with("catalog:") || source == "override" {
            "Standard"
        } else {
            "Other"
        };
        let sub_account_name = if r.use_case_name.is_empty() {
            r.use_case_id.clone()
        } else {
            r.use_case_name.clone()
        };
        let tags = serde_json::json!({
            "tollgate/pod": r.pod_name,
            "tollgate/use_case": sub_account_name,
            "tollgate/stage": r.stage,
        })
        .to_string();
        // The requests of the deployment-hour, on each of its token-kind rows (see the module
        // documentation: never summed across token kinds).
        let requests = r.requests.to_string();
        for (k, meter) in METERS.iter().enumerate() {
            let (tokens, billed) = (r.tokens[k], r.cost[k]);
            if tokens == 0 && billed == 0 {
                continue;
            }
            let token_kind = tollgate_meter::KINDS[k];
            // Unknown prices are null, never 0 (FOCUS: no placeholder for a missing value).
            let unit = |p: Option<[u64; 5]>| p.map(|p| p[k]);
            let (list_unit, contracted_unit) = (unit(list), unit(contracted));
            let price = |u: Option<u64>| u.map(|per_mtok| decimal(u128::from(per_mtok), 9));
            let times = |u: Option<u64>| {
                u.map(|per_mtok| decimal(u128::from(tokens) * u128::from(per_mtok), 15))
            };
            // The ledger's cost is known when the point has prices, or when the ledger holds a
            // cost anyway (a point that was never stored); an unpriced row's 0 is not a cost.
            let billed = (!unpriced || billed > 0).then(|| decimal(u128::from(billed), 9));
            // Only what every charge of this SkuPriceId shares: no amounts, dates or accounts.
            let details = serde_json::json!({ "x_TokenKind": token_kind }).to_string();
            let values: [(&str, Option<String>); 49] = [
                ("BilledCost", billed.clone()),
                ("BillingAccountId", Some(provider.to_string())),
                ("BillingAccountName", Some(provider.to_string())),
                ("BillingCurrency", Some("USD".into())),
                ("BillingPeriodEnd", Some(period_end.clone())),
                ("BillingPeriodStart", Some(period_start.clone())),
                ("ChargeCategory", Some("Usage".into())),
                ("ChargeClass", None),
                (
                    "ChargeDescription",
                    Some(format!("{meter} of {model} on route {}", r.route)),
                ),
                ("ChargeFrequency", Some("Usage-Based".into())),
                ("ChargePeriodEnd", Some(datetime((r.hour + 1) * 3_600_000))),
                ("ChargePeriodStart", Some(datetime(r.hour * 3_600_000))),
                ("ConsumedQuantity", Some(tokens.to_string())),
                ("ConsumedUnit", Some("Tokens".into())),
                ("ContractedCost", times(contracted_unit)),
                ("ContractedUnitPrice", price(contracted_unit)),
                ("EffectiveCost", billed),
                // Allocation data, not an invoice: the gateway knows no provider invoice.
                ("InvoiceId", None),
                ("InvoiceIssuerName", Some(provider_name.clone())),
                ("ListCost", times(list_unit)),
                ("ListUnitPrice", price(list_unit)),
                ("PricingCategory", Some(category.into())),
                ("PricingQuantity", Some(decimal(u128::from(tokens), 6))),
                ("PricingUnit", Some("1000000 Tokens".into())),
                ("ProviderName", Some(provider_name.clone())),
                ("PublisherName", Some(publisher.clone())),
                (
                    "ResourceId",
                    Some(format!("{}/{provider}/{model}", r.route)),
                ),
                ("ResourceName", Some(r.route.clone())),
                ("ResourceType", Some("LLM Deployment".into())),
                ("ServiceCategory", Some("AI and Machine Learning".into())),
                ("ServiceName", Some(service.clone())),
                ("ServiceSubcategory", Some("Generative AI".into())),
                ("SkuId", Some(model.to_string())),
                ("SkuMeter", Some((*meter).to_string())),
                ("SkuPriceDetails", Some(details)),
                (
                    "SkuPriceId",
                    Some(sku_price_id(r.price.as_ref(), token_kind)),
                ),
                ("SubAccountId", Some(r.use_case_id.clone())),
                ("SubAccountName", Some(sub_account_name.clone())),
                ("SubAccountType", Some("Use Case".into())),
                ("Tags", Some(tags.clone())),
                ("x_PodId", Some(r.pod_id.clone())),
                ("x_PodName", Some(r.pod_name.clone())),
                ("x_UseCaseId", Some(r.use_case_id.clone())),
                ("x_Route", Some(r.route.clone())),
                ("x_TokenKind", Some(token_kind.into())),
                ("x_RequestCount", Some(requests.clone())),
                ("x_PriceSource", Some(source.to_string())),
                ("x_PricePointId", Some(r.price_id.clone())),
                ("x_Unpriced", Some(unpriced.to_string())),
            ];
            debug_assert!(values.iter().zip(COLUMNS).all(|((a, _), (b, _))| a == b));
            out.push(values.into_iter().map(|(_, v)| v).collect());
        }
    }
    out
}

/// The CSV header row.
pub fn csv_header() -> String {
    let mut out = COLUMNS
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

/// CSV rows; a null is an empty field.
pub fn csv_rows(lines: &[Line]) -> String {
    let mut out = String::with_capacity(lines.len() * 800);
    for l in lines {
        let fields: Vec<String> = l
            .iter()
            .map(|v| {
                v.as_deref()
                    .map(crate::reports::csv_field)
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// JSON objects, one per row: decimals as strings (exact), JSON columns as objects, nulls as null.
pub fn to_json(lines: &[Line]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    lines
        .iter()
        .map(|l| {
            COLUMNS
                .iter()
                .zip(l)
                .map(|((name, ty), v)| {
                    let value = match (v, ty) {
                        (None, _) => serde_json::Value::Null,
                        (Some(s), ColumnType::Json) => serde_json::from_str(s)
                            .unwrap_or_else(|_| serde_json::Value::String(s.clone())),
                        (Some(s), _) => serde_json::Value::String(s.clone()),
                    };
                    ((*name).to_string(), value)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_plain() {
        assert_eq!(decimal(150_000, 9), "0.00015");
        assert_eq!(decimal(2_500_000_000, 9), "2.5");
        assert_eq!(decimal(0, 9), "0");
        assert_eq!(decimal(7, 15), "0.000000000000007");
        assert_eq!(decimal(1_234_567, 6), "1.234567");
        assert_eq!(datetime(1_793_491_200_000), "2026-11-01T00:00:00Z");
    }

    fn point(provider: &str, kind: &str, source: &str, prices: Option<[u64; 5]>) -> PricePointRow {
        PricePointRow {
            id: format!("{source}:{provider}/{kind}:m"),
            provider: provider.into(),
            provider_kind: kind.into(),
            publisher: None,
            model: "m".into(),
            source: source.into(),
            currency: "USD".into(),
            contracted: prices,
            list: prices,
        }
    }

    fn rollup(price: Option<PricePointRow>, tokens: [u64; 5], cost: [u64; 5]) -> FocusRollup {
        FocusRollup {
            hour: 498_192,
            pod_id: "pod_a".into(),
            pod_name: "A".into(),
            use_case_id: "uc_a".into(),
            use_case_name: "a".into(),
            stage: "production".into(),
            route: "r".into(),
            price_id: price.as_ref().map_or("gone".into(), |p| p.id.clone()),
            price,
            requests: 7,
            tokens,
            cost,
        }
    }

    fn col<'a>(line: &'a Line, name: &str) -> Option<&'a str> {
        let i = COLUMNS.iter().position(|(c, _)| *c == name).unwrap();
        line[i].as_deref()
    }

    #[test]
    fn sku_price_ids_name_the_sku_price_not_the_amount_account_or_version() {
        let p = |provider, kind, source, input| {
            let row = point(provider, kind, source, Some([input, 0, 0, 0, 0]));
            sku_price_id(Some(&row), "input")
        };
        let a = p("ant", "anthropic", "catalog:2026-11-01", 3_000);
        assert_eq!(a, "anthropic:m:input");
        assert_eq!(a, p("ant-eu", "anthropic", "catalog:2027-01-01", 3_000));
        assert_eq!(a, p("ant", "anthropic", "override", 2_000));
        assert_eq!(
            p("vllm", "openai_compatible", "catalog:x", 1),
            "openai_compatible/vllm:m:input"
        );
        assert_eq!(
            p("gpu:a/b%", "openai_compatible", "self_hosted", 1),
            "self_hosted/gpu%3Aa%2Fb%25:m:input"
        );
        assert_eq!(sku_price_id(None, "output"), "unknown:unknown:output");
    }

    #[test]
    fn unknown_prices_are_null_and_every_row_carries_its_requests() {
        // Unpriced: tokens, no prices, no cost.
        let unpriced = lines(
            &[rollup(
                Some(point("p", "openai_compatible", "unpriced", None)),
                [10, 0, 0, 5, 0],
                [0; 5],
            )],
            0,
            1,
        );
        assert_eq!(unpriced.len(), 2);
        for l in &unpriced {
            for c in [
                "BilledCost",
                "EffectiveCost",
                "ListCost",
                "ContractedCost",
                "ListUnitPrice",
                "ContractedUnitPrice",
                "InvoiceId",
            ] {
                assert_eq!(col(l, c), None, "{c}");
            }
            assert_eq!(col(l, "x_Unpriced"), Some("true"));
            assert_eq!(col(l, "x_RequestCount"), Some("7"));
        }
        // A price point that was never stored, with a cost in the ledger: the cost is known, the
        // prices are not.
        let gone = lines(&[rollup(None, [10, 0, 0, 5, 0], [1_500, 0, 0, 0, 0])], 0, 1);
        assert_eq!(col(&gone[0], "BilledCost"), Some("0.0000015"));
        assert_eq!(col(&gone[0], "ListUnitPrice"), None);
        assert_eq!(col(&gone[1], "BilledCost"), None);
        // Priced, and free at 0: a known 0 is written.
        let free = point("p", "openai_compatible", "override", Some([0; 5]));
        let l = lines(&[rollup(Some(free), [10, 0, 0, 0, 0], [0; 5])], 0, 1);
        assert_eq!(col(&l[0], "BilledCost"), Some("0"));
        assert_eq!(col(&l[0], "ListCost"), Some("0"));
        assert_eq!(col(&l[0], "x_Unpriced"), Some("false"));
    }

    #[test]
    fn custom_columns_come_last_and_focus_names_are_pascal_case() {
        let first_custom = COLUMNS
            .iter()
            .position(|(c, _)| c.starts_with("x_"))
            .unwrap_or(COLUMNS.len());
        assert!(
            COLUMNS[first_custom..]
                .iter()
                .all(|(c, _)| c.starts_with("x_"))
        );
        for (c, _) in &COLUMNS[..first_custom] {
            assert!(
                c.chars().next().is_some_and(|ch| ch.is_ascii_uppercase()),
                "{c}"
            );
            assert!(c.chars().all(|ch| ch.is_ascii_alphanumeric()), "{c}");
        }
    }
}
