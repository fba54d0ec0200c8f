//! The meter: what a request costs.
//!
//! - [`Money`]: integer nano-USD; decimal strings are parsed exactly, never through floats.
//! - [`Catalog`]: the dated, versioned, sourced price list shipped in the binary.
//! - [`Tokens`] and [`cost`]: usage split by kind (uncached input, cache read, cache write, output,
//!   reasoning) times the price of each kind, summed in integers and rounded once.
//! - [`Meter`]: the price of every deployment of the config, resolved once at start: a contract or
//!   self-hosted price from the config wins; else the catalog entry of the upstream model; else the
//!   deployment is *unpriced* — still served, but its requests are flagged, counted and alerted on,
//!   never silently free.
//!
//! ```
//! use tollgate_meter::{Catalog, Tokens, cost};
//! let catalog = Catalog::builtin().unwrap();
//! let prices = catalog.lookup("gpt-4o-mini-2024-07-18").unwrap().prices;
//! let c = cost(&prices, &Tokens { input: 1_000, output: 500, ..Default::default() });
//! assert_eq!(c.nanos(), 1_000 * 150 + 500 * 600); // $0.15 and $0.60 per 1M tokens
//! ```

pub mod catalog;
pub mod cost;
pub mod estimate;
pub mod forecast;
pub mod money;
pub mod period;

pub use catalog::{Catalog, CatalogError, PriceEntry, Prices};
pub use cost::{KINDS, Tokens, cost, split};
pub use money::Money;

use tollgate_config::{Config, Problem};
use tollgate_types::openai::Usage;

/// Where a deployment's prices come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    /// The built-in catalog's entry for the upstream model.
    Catalog {
        /// The entry's model name.
        entry: String,
        /// Its prices.
        prices: Prices,
    },
    /// The config's `price:` (contract or self-hosted).
    Override {
        /// The prices.
        prices: Prices,
        /// Priced from a GPU-hour cost and a throughput.
        self_hosted: bool,
    },
    /// No price known.
    Unpriced,
}

/// The prices a deployment is charged at, as the ledger keeps them (FOCUS calls this a SKU price):
/// what is paid (`contracted`: the catalog's list price, or the config's contract or self-hosted
/// price) and the list price it compares with. Its `id` is stable for the same prices, so a
/// restart with an unchanged config finds the same point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricePoint {
    /// `cat:<catalog version>:<provider>/<type>:<model>`, `ovr:<hash>` or
    /// `none:<provider>/<type>:<model>` — the provider's type is part of it, so a provider name
    /// reused for another type of provider gets points of its own.
    pub id: String,
    /// The config's provider name.
    pub provider: String,
    /// Its type (`openai`, `azure_openai`, `anthropic`, `openai_compatible`).
    pub provider_kind: String,
    /// Who publishes the model, from the catalog (`openai`, `anthropic`, …), if known.
    pub publisher: Option<String>,
    /// The upstream model.
    pub model: String,
    /// `catalog:<version>`, `override`, `self_hosted` or `unpriced`.
    pub source: String,
    /// The prices paid; `None` when unpriced.
    pub contracted: Option<Prices>,
    /// The catalog's list prices for the model, if it has them.
    pub list: Option<Prices>,
}

/// FNV-1a: a stable fingerprint for price-point ids (not a security hash).
fn fingerprint(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The cost of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Tokens by kind.
    pub tokens: Tokens,
    /// The cost; `None` when the deployment is unpriced.
    pub cost: Option<Money>,
    /// The cost by token kind ([`KINDS`] order), adding up to `cost` exactly (zeros if unpriced).
    pub split: [u64; 5],
    /// `catalog:<version>`, `override`, or `unpriced`.
    pub price_source: String,
    /// The usage was estimated with the tokenizer, not reported by the provider.
    pub estimated: bool,
}

fn price_point(
    catalog: &Catalog,
    pricing: &Pricing,
    provider: &str,
    kind: &str,
    model: &str,
) -> PricePoint {
    let entry = catalog.lookup(model);
    let (id, source, contracted) = match pricing {
        Pricing::Catalog { prices, .. } => (
            format!("cat:{}:{provider}/{kind}:{model}", catalog.version),
            format!("catalog:{}", catalog.version),
            Some(*prices),
        ),
        Pricing::Override {
            prices,
            self_hosted,
        } => {
            let list = entry.map(|e| e.prices.by_kind()).unwrap_or_default();
            let text: Vec<String> = prices
                .by_kind()
                .iter()
                .chain(list.iter())
                .map(u64::to_string)
                .collect();
            let mut parts: Vec<&str> = vec![provider, kind, model];
            parts.extend(text.iter().map(String::as_str));
            (
                format!("ovr:{:016x}", fingerprint(&parts)),
                if *self_hosted {
                    "self_hosted"
                } else {
                    "override"
                }
                .to_string(),
                Some(*prices),
            )
        }
        Pricing::Unpriced => (
            format!("none:{provider}/{kind}:{model}"),
            "unpriced".to_string(),
            None,
        ),
    };
    PricePoint {
        id,
        provider: provider.to_string(),
        provider_kind: kind.to_string(),
        publisher: entry.map(|e| e.provider.clone()),
        model: model.to_string(),
        source,
        contracted,
        list: entry.map(|e| e.prices),
    }
}

/// Prices of every deployment of a config.
#[derive(Debug, Clone)]
pub struct Meter {
    catalog: Catalog,
    /// `[route][deployment]`.
    pricing: Vec<Vec<Pricing>>,
    /// `[route][deployment]`.
    points: Vec<Vec<PricePoint>>,
}

/// USD per GPU hour and tokens per second → nano-USD per 1M tokens.
fn gpu_price(gpu_hour_usd: &str, tokens_per_second: u64) -> Result<u64, String> {
    let hour_nanos =
        money::parse_decimal(gpu_hour_usd, 9).map_err(|e| format!("gpu_hour_usd: {e}"))?;
    if tokens_per_second == 0 {
        return Err("tokens_per_second must be greater than 0".into());
    }
    let per_mtok = u128::from(hour_nanos) * 1_000_000 / (u128::from(tokens_per_second) * 3600);
    u64::try_from(per_mtok).map_err(|_| "gpu_hour_usd is too large".into())
}

fn override_prices(p: &tollgate_config::raw::PriceConfig) -> Result<Prices, String> {
    match (&p.gpu_hour_usd, p.tokens_per_second, &p.input, &p.output) {
        (Some(hour), Some(tps), None, None) => {
            let per = gpu_price(hour, tps)?;
            Ok(Prices { input: per, cached_input: per, cache_write: per, output: per, reasoning: per })
        }
        (Some(_), None, _, _) | (None, Some(_), _, _) => Err("gpu_hour_usd and tokens_per_second go together".into()),
        (Some(_), Some(_), _, _) => Err("give either token prices or gpu_hour_usd with tokens_per_second, not both".into()),
        (None, None, Some(input), Some(output)) => catalog::prices_from(input, p.cached_input.as_deref(), p.cache_write.as_deref(), output, p.reasoning.as_deref()),
        (None, None, _, _) => Err("needs `input` and `output` (USD per 1M tokens), or `gpu_hour_usd` and `tokens_per_second`".into()),
    }
}

impl Meter {
    /// Resolves every deployment's prices; a bad `price:` is reported with its path.
    pub fn from_config(cfg: &Config, catalog: Catalog) -> Result<Meter, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut pricing = Vec::with_capacity(cfg.routes.len());
        let mut points = Vec::with_capacity(cfg.routes.len());
        for (i, r) in cfg.routes.iter().enumerate() {
            let mut row = Vec::with_capacity(r.deployments.len());
            let mut point_row = Vec::with_capacity(r.deployments.len());
            for (j, d) in r.deployments.iter().enumerate() {
                let p = match &d.price {
                    Some(p) => match override_prices(p) {
                        Ok(prices) => Pricing::Override {
                            prices,
                            self_hosted: p.gpu_hour_usd.is_some(),
                        },
                        Err(message) => {
                            problems.push(Problem {
                                path: format!("routes[{i}].deployments[{j}].price"),
                                message,
                            });
                            Pricing::Unpriced
                        }
                    },
                    None => match catalog.lookup(&d.model) {
                        Some(e) => Pricing::Catalog {
                            entry: e.model.clone(),
                            prices: e.prices,
                        },
                        None => Pricing::Unpriced,
                    },
                };
                let provider = &cfg.providers[d.provider];
                point_row.push(price_point(
                    &catalog,
                    &p,
                    &provider.name,
                    provider.kind.as_str(),
                    &d.model,
                ));
                row.push(p);
            }
            pricing.push(row);
            points.push(point_row);
        }
        if problems.is_empty() {
            Ok(Meter {
                catalog,
                pricing,
                points,
            })
        } else {
            Err(problems)
        }
    }

    /// The catalog in use.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// How a deployment is priced.
    pub fn pricing(&self, route: usize, deployment: usize) -> &Pricing {
        self.pricing
            .get(route)
            .and_then(|r| r.get(deployment))
            .unwrap_or(&Pricing::Unpriced)
    }

    /// The price point of a deployment.
    pub fn price_point(&self, route: usize, deployment: usize) -> Option<&PricePoint> {
        self.points.get(route).and_then(|r| r.get(deployment))
    }

    /// Every distinct price point of the config.
    pub fn price_points(&self) -> Vec<&PricePoint> {
        let mut out: Vec<&PricePoint> = Vec::new();
        for p in self.points.iter().flatten() {
            if !out.iter().any(|o| o.id == p.id) {
                out.push(p);
            }
        }
        out
    }

    /// Deployments without a price, as (route, deployment) indices.
    pub fn unpriced(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, r) in self.pricing.iter().enumerate() {
            for (j, p) in r.iter().enumerate() {
                if *p == Pricing::Unpriced {
                    out.push((i, j));
                }
            }
        }
        out
    }

    /// The most a request of `input` tokens with an output cap of `output` tokens can cost on any
    /// of `deployments` (route, deployment) — the amount a budget reserves before the call.
    /// Output is priced at the higher of the output and reasoning prices; unpriced deployments
    /// count 0.
    pub fn max_cost(
        &self,
        deployments: impl IntoIterator<Item = (usize, usize)>,
        input: u64,
        output: u64,
    ) -> Money {
        deployments
            .into_iter()
            .filter_map(|(r, d)| match self.pricing(r, d) {
                Pricing::Catalog { prices, .. } | Pricing::Override { prices, .. } => {
                    let p = Prices {
                        output: prices.output.max(prices.reasoning),
                        ..*prices
                    };
                    Some(cost(
                        &p,
                        &Tokens {
                            input,
                            output,
                            ..Tokens::default()
                        },
                    ))
                }
                Pricing::Unpriced => None,
            })
            .max()
            .unwrap_or(Money::ZERO)
    }

    /// What `tokens` cost on a deployment; `None` when it is unpriced. (KPI 19 prices a
    /// request's tokens at its route's first deployment to measure what routing saved.)
    pub fn cost_of(&self, route: usize, deployment: usize, tokens: &Tokens) -> Option<Money> {
        match self.pricing(route, deployment) {
            Pricing::Catalog { prices, .. } | Pricing::Override { prices, .. } => {
                Some(cost(prices, tokens))
            }
            Pricing::Unpriced => None,
        }
    }

    /// The charge of `usage` on a deployment.
    pub fn charge(&self, route: usize, deployment: usize, usage: &Usage) -> Charge {
        let tokens = Tokens::from_usage(usage);
        match self.pricing(route, deployment) {
            Pricing::Catalog { prices, .. } => Charge {
                tokens,
                cost: Some(cost(prices, &tokens)),
                split: split(prices, &tokens),
                price_source: format!("catalog:{}", self.catalog.version),
                estimated: false,
            },
            Pricing::Override { prices, .. } => Charge {
                tokens,
                cost: Some(cost(prices, &tokens)),
                split: split(prices, &tokens),
                price_source: "override".into(),
                estimated: false,
            },
            Pricing::Unpriced => Charge {
                tokens,
                cost: None,
                split: [0; 5],
                price_source: "unpriced".into(),
                estimated: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(yaml: &str) -> Result<Meter, Vec<Problem>> {
        let cfg = Config::from_yaml_str(yaml, &|_| None).unwrap();
        Meter::from_config(&cfg, Catalog::builtin().unwrap())
    }

    const PROVIDERS: &str =
        "providers: [{ name: p, type: openai_compatible, base_url: \"http://127.0.0.1:1/v1\" }]\n";

    #[test]
    fn overrides_win_self_hosted_is_priced_and_unknown_models_are_unpriced() {
        let m = meter(&format!(
            "{PROVIDERS}routes:\n  - name: r\n    deployments:\n      - {{ provider: p, model: gpt-4o-mini }}\n      - {{ provider: p, model: gpt-4o-mini, price: {{ input: \"0.10\", output: \"0.40\" }} }}\n      - {{ provider: p, model: llama-70b, price: {{ gpu_hour_usd: \"3.60\", tokens_per_second: 1000 }} }}\n      - {{ provider: p, model: llama-70b }}\n"
        ))
        .unwrap();
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            total_tokens: 2_000_000,
            ..Default::default()
        };
        let c0 = m.charge(0, 0, &usage);
        assert_eq!(c0.cost, Some(Money::parse_usd("0.75").unwrap()));
        assert!(c0.price_source.starts_with("catalog:"));
        assert_eq!(
            m.charge(0, 1, &usage).cost,
            Some(Money::parse_usd("0.50").unwrap())
        );
        // $3.60 per hour at 1,000 tokens/s = $1 per 1M tokens.
        assert_eq!(
            m.charge(0, 2, &usage).cost,
            Some(Money::parse_usd("2").unwrap())
        );
        let c3 = m.charge(0, 3, &usage);
        assert_eq!((c3.cost, c3.price_source.as_str()), (None, "unpriced"));
        assert_eq!(m.unpriced(), vec![(0, 3)]);
        // The same tokens priced on each deployment, as KPI 19 prices a request's tokens on its
        // route's first deployment: what a charge there would be, or nothing when unpriced.
        for d in 0..4 {
            assert_eq!(
                m.cost_of(0, d, &c0.tokens),
                m.charge(0, d, &usage).cost,
                "{d}"
            );
        }
        assert_eq!(m.cost_of(0, 3, &c0.tokens), None);
        assert_eq!(m.cost_of(9, 0, &c0.tokens), None, "no such route");

        // Price points: what is paid and the list price it compares with.
        let p0 = m.price_point(0, 0).unwrap();
        assert_eq!(
            p0.id,
            format!(
                "cat:{}:p/openai_compatible:gpt-4o-mini",
                m.catalog().version
            )
        );
        assert_eq!(p0.contracted, p0.list);
        assert_eq!(p0.publisher.as_deref(), Some("openai"));
        let p1 = m.price_point(0, 1).unwrap();
        assert!(p1.id.starts_with("ovr:"), "{}", p1.id);
        assert_eq!(p1.source, "override");
        assert_eq!(p1.contracted.unwrap().input, 100_000_000);
        assert_eq!(
            p1.list.unwrap().input,
            150_000_000,
            "the catalog's list price"
        );
        let p2 = m.price_point(0, 2).unwrap();
        assert_eq!((p2.source.as_str(), p2.list), ("self_hosted", None));
        let p3 = m.price_point(0, 3).unwrap();
        assert_eq!(
            (p3.id.as_str(), p3.contracted),
            ("none:p/openai_compatible:llama-70b", None)
        );
        assert_eq!(m.price_points().len(), 4);
        // The same config gives the same ids.
        let again = meter(&format!(
            "{PROVIDERS}routes:\n  - name: other\n    deployments:\n      - {{ provider: p, model: gpt-4o-mini, price: {{ input: \"0.10\", output: \"0.40\" }} }}\n"
        ))
        .unwrap();
        assert_eq!(again.price_point(0, 0).unwrap().id, p1.id);
        let split = m.charge(0, 1, &usage).split;
        assert_eq!(
            split.iter().sum::<u64>(),
            m.charge(0, 1, &usage).cost.unwrap().nanos()
        );
    }

    /// A reservation prices output at the higher of the output and reasoning prices: 10 input
    /// tokens at $1/M and 5 output tokens at $8/M (reasoning; output is $2/M) = 10,000 + 40,000.
    #[test]
    fn max_cost_prices_output_at_the_reasoning_price_when_higher() {
        let m = meter(&format!(
            "{PROVIDERS}routes:\n  - name: r\n    deployments:\n      - {{ provider: p, model: thinker, price: {{ input: \"1\", output: \"2\", reasoning: \"8\" }} }}\n"
        ))
        .unwrap();
        assert_eq!(m.max_cost([(0, 0)], 10, 5), Money(50_000));
    }

    #[test]
    fn bad_prices_are_reported_with_their_path() {
        let problems = meter(&format!(
            "{PROVIDERS}routes:\n  - name: r\n    deployments:\n      - {{ provider: p, model: x, price: {{ input: \"-1\", output: \"1\" }} }}\n      - {{ provider: p, model: x, price: {{ gpu_hour_usd: \"2\" }} }}\n      - {{ provider: p, model: x, price: {{ input: \"1\" }} }}\n"
        ))
        .unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("routes[0].deployments[0].price: input"),
            "{text:?}"
        );
        assert!(text[1].contains("go together"), "{text:?}");
        assert!(text[2].contains("needs `input` and `output`"), "{text:?}");
    }
}
