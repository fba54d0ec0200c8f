//! The cost of one request: tokens by kind × prices, summed exactly in integers, rounded once.

use crate::catalog::Prices;
use crate::money::Money;
use tollgate_types::openai::Usage;

/// Tokens by kind, each counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Uncached input.
    pub input: u64,
    /// Input read from the prompt cache.
    pub cached_input: u64,
    /// Input written to the prompt cache.
    pub cache_write: u64,
    /// Output, reasoning excluded.
    pub output: u64,
    /// Reasoning output.
    pub reasoning: u64,
}

impl Tokens {
    /// Splits OpenAI-shaped usage, where `prompt_tokens` includes cached and cache-written input
    /// and `completion_tokens` includes reasoning.
    pub fn from_usage(u: &Usage) -> Tokens {
        let cached = u.cached_tokens().min(u.prompt_tokens);
        let write = u.cache_write_tokens().min(u.prompt_tokens - cached);
        let reasoning = u.reasoning_tokens().min(u.completion_tokens);
        Tokens {
            input: u.prompt_tokens - cached - write,
            cached_input: cached,
            cache_write: write,
            output: u.completion_tokens - reasoning,
            reasoning,
        }
    }

    /// All input tokens.
    pub fn total_input(&self) -> u64 {
        self.input + self.cached_input + self.cache_write
    }

    /// All output tokens.
    pub fn total_output(&self) -> u64 {
        self.output + self.reasoning
    }

    /// The counts in the order of [`KINDS`].
    pub fn by_kind(&self) -> [u64; 5] {
        [
            self.input,
            self.cached_input,
            self.cache_write,
            self.output,
            self.reasoning,
        ]
    }
}

/// The token kinds, in the order of [`Tokens::by_kind`] and [`split`].
pub const KINDS: [&str; 5] = [
    "input",
    "cached_input",
    "cache_write",
    "output",
    "reasoning",
];

impl Prices {
    /// The prices in the order of [`KINDS`].
    pub fn by_kind(&self) -> [u64; 5] {
        [
            self.input,
            self.cached_input,
            self.cache_write,
            self.output,
            self.reasoning,
        ]
    }
}

/// Σ tokens × price per 1M tokens, divided by 1M once at the end, rounded half up.
pub fn cost(prices: &Prices, t: &Tokens) -> Money {
    let sum: u128 = u128::from(t.input) * u128::from(prices.input)
        + u128::from(t.cached_input) * u128::from(prices.cached_input)
        + u128::from(t.cache_write) * u128::from(prices.cache_write)
        + u128::from(t.output) * u128::from(prices.output)
        + u128::from(t.reasoning) * u128::from(prices.reasoning);
    Money(u64::try_from((sum + 500_000) / 1_000_000).unwrap_or(u64::MAX))
}

/// [`cost`] split by token kind (in the order of [`KINDS`]) so that the parts add up to the whole
/// exactly: each part is its exact amount rounded down, and the nano-dollars that rounding the
/// whole once adds go to the parts with the largest remainders (ties to the earlier kind). Reports
/// that break a cost down by kind (the FOCUS export) therefore sum to the ledger to the nano-dollar.
pub fn split(prices: &Prices, t: &Tokens) -> [u64; 5] {
    let exact: Vec<u128> = t
        .by_kind()
        .iter()
        .zip(prices.by_kind())
        .map(|(&n, p)| u128::from(n) * u128::from(p))
        .collect();
    let mut parts = [0u64; 5];
    let mut floors = 0u128;
    for (part, e) in parts.iter_mut().zip(&exact) {
        let f = e / 1_000_000;
        *part = u64::try_from(f).unwrap_or(u64::MAX);
        floors += f;
    }
    let mut left = u128::from(cost(prices, t).0).saturating_sub(floors);
    let mut order: Vec<usize> = (0..5).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(exact[k] % 1_000_000));
    for k in order {
        if left == 0 {
            break;
        }
        // Only a part with a remainder is rounded up: the whole rounds up at most once per part.
        if !exact[k].is_multiple_of(1_000_000) {
            parts[k] += 1;
            left -= 1;
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use tollgate_types::openai::{CompletionTokensDetails, PromptTokensDetails};

    #[test]
    fn cached_cache_write_and_reasoning_tokens_are_priced_per_kind() {
        let c = Catalog::builtin().unwrap();
        let sonnet = c.lookup("claude-sonnet-4-5").unwrap().prices;
        let u = Usage {
            prompt_tokens: 1_000_000 + 200_000 + 100_000,
            completion_tokens: 50_000,
            total_tokens: 0,
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(200_000),
                cache_creation_tokens: Some(100_000),
                audio_tokens: None,
            }),
            completion_tokens_details: None,
        };
        let t = Tokens::from_usage(&u);
        assert_eq!(
            t,
            Tokens {
                input: 1_000_000,
                cached_input: 200_000,
                cache_write: 100_000,
                output: 50_000,
                reasoning: 0
            }
        );
        // $3 + 0.2 × $0.30 + 0.1 × $3.75 + 0.05 × $15 = $3 + $0.06 + $0.375 + $0.75
        assert_eq!(cost(&sonnet, &t), Money::parse_usd("4.185").unwrap());

        let o4 = c.lookup("o4-mini").unwrap().prices;
        let u = Usage {
            prompt_tokens: 1000,
            completion_tokens: 3000,
            total_tokens: 4000,
            prompt_tokens_details: None,
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: Some(2000),
                ..Default::default()
            }),
        };
        // 1000 × $1.10/M + 3000 × $4.40/M (reasoning at the output price) = $0.0011 + $0.0132
        assert_eq!(
            cost(&o4, &Tokens::from_usage(&u)),
            Money::parse_usd("0.0143").unwrap()
        );
    }

    #[test]
    fn inconsistent_usage_never_counts_a_token_twice_or_underflows() {
        // Providers sometimes report details larger than the totals they belong to: each part is
        // clamped to what is left, so the kinds always add up to the totals reported.
        let u = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(4),
                cache_creation_tokens: Some(50),
                audio_tokens: None,
            }),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: Some(9),
                ..Default::default()
            }),
        };
        let t = Tokens::from_usage(&u);
        assert_eq!(
            t,
            Tokens {
                input: 0,
                cached_input: 4,
                cache_write: 6,
                output: 0,
                reasoning: 5
            }
        );
        assert_eq!((t.total_input(), t.total_output()), (10, 5));
        let u = Usage {
            prompt_tokens: 3,
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(7),
                cache_creation_tokens: Some(7),
                audio_tokens: None,
            }),
            ..Default::default()
        };
        let t = Tokens::from_usage(&u);
        assert_eq!((t.input, t.cached_input, t.cache_write), (0, 3, 0));
    }

    #[test]
    fn sub_nano_prices_round_once() {
        // $0.00875 per 1M tokens is 8.75 nano-USD per token: one token rounds to 9.
        let p = Prices {
            input: 8_750_000,
            cached_input: 8_750_000,
            cache_write: 8_750_000,
            output: 0,
            reasoning: 0,
        };
        assert_eq!(
            cost(
                &p,
                &Tokens {
                    input: 1,
                    ..Default::default()
                }
            ),
            Money(9)
        );
        assert_eq!(
            cost(
                &p,
                &Tokens {
                    input: 1000,
                    ..Default::default()
                }
            ),
            Money(8750)
        );
        // $0.0004 per 1M tokens is 0.4 nano-USD per token: rounded once over the whole request.
        let q = Prices {
            input: 400_000,
            output: 400_000,
            ..Prices::default()
        };
        assert_eq!(
            cost(
                &q,
                &Tokens {
                    input: 1,
                    ..Default::default()
                }
            ),
            Money(0)
        );
        assert_eq!(
            cost(
                &q,
                &Tokens {
                    input: 2,
                    output: 2,
                    ..Default::default()
                }
            ),
            Money(2)
        );
    }

    #[test]
    fn a_split_adds_up_to_the_cost() {
        // 1 token at 0.4 + 1 at 0.4 + 1 at 0.3 nano: 1.1 rounds to 1, given to the first 0.4.
        let p = Prices {
            input: 400_000,
            cached_input: 400_000,
            cache_write: 300_000,
            ..Prices::default()
        };
        let t = Tokens {
            input: 1,
            cached_input: 1,
            cache_write: 1,
            ..Default::default()
        };
        assert_eq!(cost(&p, &t), Money(1));
        assert_eq!(split(&p, &t), [1, 0, 0, 0, 0]);
    }

    proptest::proptest! {
        /// The parts of a split always add up to the cost, and each is within a nano-dollar of its
        /// exact amount.
        #[test]
        fn splits_add_up(t in proptest::array::uniform5(0u64..50_000_000), p in proptest::array::uniform5(0u64..200_000_000_000)) {
            let prices = Prices { input: p[0], cached_input: p[1], cache_write: p[2], output: p[3], reasoning: p[4] };
            let tokens = Tokens { input: t[0], cached_input: t[1], cache_write: t[2], output: t[3], reasoning: t[4] };
            let parts = split(&prices, &tokens);
            proptest::prop_assert_eq!(parts.iter().sum::<u64>(), cost(&prices, &tokens).0);
            for k in 0..5 {
                let exact = u128::from(t[k]) * u128::from(p[k]);
                let part = u128::from(parts[k]) * 1_000_000;
                proptest::prop_assert!(part + 1_000_000 > exact && part < exact + 1_000_000);
            }
        }

        /// Costs add up: the cost of a sum of token counts is within rounding of the sum of costs.
        #[test]
        fn costs_add_up(a in 0u64..10_000_000, b in 0u64..10_000_000, pi in 0u64..100_000_000_000) {
            let p = Prices { input: pi, cached_input: pi / 2, cache_write: pi, output: pi * 4, reasoning: pi * 4 };
            let ta = Tokens { input: a, output: b, ..Default::default() };
            let tb = Tokens { input: b, output: a, ..Default::default() };
            let both = Tokens { input: a + b, output: a + b, ..Default::default() };
            let sum = cost(&p, &ta).0 + cost(&p, &tb).0;
            let whole = cost(&p, &both).0;
            proptest::prop_assert!(sum.abs_diff(whole) <= 1);
        }
    }
}
