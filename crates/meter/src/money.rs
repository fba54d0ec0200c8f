//! [`Money`]: an integer count of nano-USD. Never a float, in storage or arithmetic.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Nano-USD (1e-9 USD). `u64` holds up to ~18.4 billion USD.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Money(pub u64);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From whole nano-USD.
    pub fn from_nanos(n: u64) -> Money {
        Money(n)
    }

    /// Nano-USD.
    pub fn nanos(self) -> u64 {
        self.0
    }

    /// Sum, saturating (a wrap would be a silent error in money).
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// Parses a decimal USD amount (`"12.5"`, `"0.000000001"`) exactly; more than 9 decimals or a
    /// negative amount is an error.
    pub fn parse_usd(s: &str) -> Result<Money, String> {
        parse_decimal(s, 9).map(Money)
    }
}

impl Money {
    /// The amount in USD without the sign, as the admin API writes `*_usd` fields (`12.50`).
    pub fn usd(&self) -> String {
        let s = self.to_string();
        s.trim_start_matches('$').to_string()
    }
}

impl fmt::Display for Money {
    /// `$12.345678901`, trailing zeros trimmed to at least two decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000_000;
        let frac = format!("{:09}", self.0 % 1_000_000_000);
        let trimmed = frac.trim_end_matches('0');
        let frac = if trimmed.len() < 2 {
            &frac[..2]
        } else {
            trimmed
        };
        write!(f, "${whole}.{frac}")
    }
}

/// Parses a non-negative decimal with at most `scale` fraction digits into an integer scaled by
/// 10^scale, exactly.
pub fn parse_decimal(s: &str, scale: u32) -> Result<u64, String> {
    // The caller's text, quoted to 64 characters in every error.
    // (Built only when an error is.)
    let q = || {
        format!(
            "{:?}",
            tollgate_types::text::clip(s, tollgate_types::text::ECHO_CHARS)
        )
    };
    let t = s.trim();
    if t.is_empty() || t.starts_with('-') || t.starts_with('+') {
        return Err(format!("{} is not a non-negative decimal amount", q()));
    }
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{} is not a decimal amount", q()));
    }
    if frac.len() > scale as usize {
        return Err(format!("{} has more than {scale} decimals", q()));
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| format!("{} is too large", q()))?
    };
    let f: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = scale as usize)
            .parse()
            .map_err(|_| format!("{} is not a decimal", q()))?
    };
    w.checked_mul(10u64.pow(scale))
        .and_then(|x| x.checked_add(f))
        .ok_or_else(|| format!("{} is too large", q()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An amount that does not parse is quoted back to 64 characters.
    #[test]
    fn errors_quote_the_amount_short() {
        for bad in [
            "x".repeat(5000),
            "9".repeat(5000),
            format!("1.{}", "0".repeat(5000)),
        ] {
            let e = parse_decimal(&bad, 9).unwrap_err();
            assert!(e.chars().count() < 120 && e.contains('…'), "{e}");
        }
        let e = crate::period::time_zone(&"Z".repeat(3000)).unwrap_err();
        assert!(e.chars().count() < 160 && e.contains('…'), "{e}");
    }

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!(Money::parse_usd("12.5").unwrap(), Money(12_500_000_000));
        assert_eq!(Money::parse_usd("0.000000001").unwrap(), Money(1));
        assert_eq!(Money::parse_usd(".5").unwrap(), Money(500_000_000));
        assert!(Money::parse_usd("-1").is_err());
        assert!(Money::parse_usd("1.0000000001").is_err());
        assert!(Money::parse_usd("abc").is_err());
        assert!(Money::parse_usd("").is_err());
        assert_eq!(Money(12_500_000_000).to_string(), "$12.50");
        assert_eq!(Money(1).to_string(), "$0.000000001");
        assert_eq!(Money(1_234_567_000).to_string(), "$1.234567");
    }
}
