//! The price catalog: dated, versioned entries with their source, shipped in the binary
//! (`data/catalog.yaml`), looked up by model name.

use crate::money::parse_decimal;
use serde::Deserialize;

/// Prices of one model, in nano-USD per 1,000,000 tokens (that keeps sub-nano per-token prices
/// exact: $0.00875 per 1M tokens is 8,750,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prices {
    /// Uncached input.
    pub input: u64,
    /// Input read from the provider's prompt cache.
    pub cached_input: u64,
    /// Input written to the provider's prompt cache.
    pub cache_write: u64,
    /// Output (reasoning excluded).
    pub output: u64,
    /// Reasoning output.
    pub reasoning: u64,
}

/// How an entry's model name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// The same name.
    Exact,
    /// The name, or the name followed by `-` and more (dated snapshots).
    Prefix,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEntry {
    /// Provider family (`openai`, `anthropic`, `google`, `mistral`, `bedrock`).
    pub provider: String,
    /// Model name or prefix.
    pub model: String,
    /// Matching rule.
    pub matching: Match,
    /// The prices.
    pub prices: Prices,
    /// First day these prices apply.
    pub effective_from: String,
    /// Where they come from.
    pub source: String,
    /// Last day they were compared with the source.
    pub verified_at: String,
    /// A cheaper model of the same provider for the same kinds of work, named by cost advice.
    pub cheaper: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    provider: String,
    model: String,
    #[serde(rename = "match")]
    matching: Match,
    input: String,
    #[serde(default)]
    cached_input: Option<String>,
    #[serde(default)]
    cache_write: Option<String>,
    output: String,
    #[serde(default)]
    reasoning: Option<String>,
    effective_from: String,
    source: String,
    verified_at: String,
    #[serde(default)]
    cheaper: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    version: String,
    entries: Vec<RawEntry>,
}

/// A catalog that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("price catalog: {0}")]
pub struct CatalogError(pub String);

/// USD per 1M tokens (decimal string) → nano-USD per 1M tokens.
pub fn per_mtok(s: &str) -> Result<u64, String> {
    parse_decimal(s, 9)
}

/// Token prices from their decimal strings; absent cache and reasoning prices fall back to input
/// and output.
pub fn prices_from(
    input: &str,
    cached_input: Option<&str>,
    cache_write: Option<&str>,
    output: &str,
    reasoning: Option<&str>,
) -> Result<Prices, String> {
    let input = per_mtok(input).map_err(|e| format!("input: {e}"))?;
    let output = per_mtok(output).map_err(|e| format!("output: {e}"))?;
    let opt = |v: Option<&str>, name: &str, default: u64| -> Result<u64, String> {
        v.map(|s| per_mtok(s).map_err(|e| format!("{name}: {e}")))
            .transpose()
            .map(|x| x.unwrap_or(default))
    };
    Ok(Prices {
        input,
        cached_input: opt(cached_input, "cached_input", input)?,
        cache_write: opt(cache_write, "cache_write", input)?,
        output,
        reasoning: opt(reasoning, "reasoning", output)?,
    })
}

/// The catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Version stamped on every cost computed from it.
    pub version: String,
    entries: Vec<PriceEntry>,
}

impl Catalog {
    /// The catalog shipped in this binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Self::parse(include_str!("../data/catalog.yaml"))
    }

    /// Parses a catalog document.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog =
            serde_yaml::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
        let mut entries = Vec::with_capacity(raw.entries.len());
        for (i, e) in raw.entries.into_iter().enumerate() {
            let prices = prices_from(
                &e.input,
                e.cached_input.as_deref(),
                e.cache_write.as_deref(),
                &e.output,
                e.reasoning.as_deref(),
            )
            .map_err(|m| CatalogError(format!("entries[{i}] ({}): {m}", e.model)))?;
            entries.push(PriceEntry {
                provider: e.provider,
                model: e.model,
                matching: e.matching,
                prices,
                effective_from: e.effective_from,
                source: e.source,
                verified_at: e.verified_at,
                cheaper: e.cheaper,
            });
        }
        for e in &entries {
            if let Some(c) = &e.cheaper {
                let Some(other) = entries.iter().find(|o| &o.model == c) else {
                    return Err(CatalogError(format!(
                        "{}: cheaper model {c:?} is not in the catalog",
                        e.model
                    )));
                };
                if other.prices.input >= e.prices.input || other.prices.output >= e.prices.output {
                    return Err(CatalogError(format!(
                        "{}: cheaper model {c:?} is not cheaper",
                        e.model
                    )));
                }
            }
        }
        Ok(Catalog {
            version: raw.version,
            entries,
        })
    }

    /// The entry for `model`: an exact name first, else the longest matching prefix.
    pub fn lookup(&self, model: &str) -> Option<&PriceEntry> {
        self.entries.iter().find(|e| e.model == model).or_else(|| {
            self.entries
                .iter()
                .filter(|e| {
                    e.matching == Match::Prefix
                        && model
                            .strip_prefix(e.model.as_str())
                            .is_some_and(|rest| rest.starts_with('-'))
                })
                .max_by_key(|e| e.model.len())
        })
    }

    /// Every entry.
    pub fn entries(&self) -> &[PriceEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_parses_and_every_entry_is_dated_and_sourced() {
        let c = Catalog::builtin().unwrap();
        assert!(!c.version.is_empty());
        assert!(c.entries().len() >= 20);
        for e in c.entries() {
            assert!(e.source.starts_with("https://"), "{}", e.model);
            assert_eq!(e.verified_at.len(), 10, "{}", e.model);
            assert!(e.prices.input > 0, "{}", e.model);
        }
        for family in ["openai", "anthropic", "google", "mistral", "bedrock"] {
            assert!(c.entries().iter().any(|e| e.provider == family), "{family}");
            assert!(
                c.entries()
                    .iter()
                    .any(|e| e.provider == family && e.cheaper.is_some()),
                "{family} has a premium model with a cheaper candidate"
            );
        }
    }

    #[test]
    fn lookup_prefers_exact_then_the_longest_prefix() {
        let c = Catalog::builtin().unwrap();
        assert_eq!(c.lookup("gpt-4o-mini").unwrap().model, "gpt-4o-mini");
        assert_eq!(
            c.lookup("gpt-4o-mini-2024-07-18").unwrap().model,
            "gpt-4o-mini"
        );
        assert_eq!(c.lookup("gpt-4o-2024-08-06").unwrap().model, "gpt-4o");
        assert_eq!(
            c.lookup("claude-3-5-haiku-latest").unwrap().model,
            "claude-3-5-haiku"
        );
        // Models whose names extend a shorter entry have entries of their own.
        assert_eq!(c.lookup("o3-mini-2025-01-31").unwrap().model, "o3-mini");
        assert_eq!(c.lookup("o3-pro").unwrap().model, "o3-pro");
        assert_eq!(c.lookup("o3-2025-04-16").unwrap().model, "o3");
        assert_eq!(c.lookup("gpt-5-pro").unwrap().model, "gpt-5-pro");
        assert!(c.lookup("gpt-4ox").is_none());
        assert!(c.lookup("llama-3.1-70b").is_none());
        let p = c.lookup("claude-sonnet-4-5-20250929").unwrap().prices;
        assert_eq!(
            (p.input, p.cache_write, p.cached_input, p.output),
            (3_000_000_000, 3_750_000_000, 300_000_000, 15_000_000_000)
        );
    }
}
