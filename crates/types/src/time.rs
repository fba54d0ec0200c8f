//! RFC 3339 (UTC, `Z`) ⇄ Unix milliseconds: the wire format of the admin API, alerts and exports.

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-29T21:50:00.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` or with a `±HH:MM` offset.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse::<i64>().ok())
    };
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    // Tollgate's times are after the Unix epoch; year 0000 and friends are typos.
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &frac[..digits];
        millis = format!("{f:0<3}")[..3].parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            // RFC 3339: time-numoffset = ("+" / "-") time-hour ":" time-minute (00-23, 00-59).
            let digits = |t: &str| {
                t.bytes()
                    .all(|c| c.is_ascii_digit())
                    .then(|| t.parse::<i64>().ok())
                    .flatten()
            };
            let (oh, om) = (digits(&o[1..3])?, digits(&o[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let (_, m2, d2) = civil_from_days(days);
    if (m2, d2) != (mo as u32, d as u32) {
        return None; // 31 February and friends
    }
    let at = ((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + millis;
    // The instant, not only the written year, is in range: `1970-01-01T00:00:00+14:00` is in
    // 1969, and `9999-12-31T23:00:00-05:00` in the year 10000.
    (0..=LAST_MS).contains(&at).then_some(at)
}

/// The last millisecond Tollgate's times may name: 9999-12-31T23:59:59.999Z.
pub const LAST_MS: i64 = 253_402_300_799_999;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for ms in [0, 1_795_986_324_123, 951_782_400_000, 253_402_300_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_rfc3339("2026-11-29T22:00:00+01:00"),
            parse_rfc3339("2026-11-29T21:00:00Z")
        );
        assert_eq!(parse_rfc3339("2026-02-31T00:00:00Z"), None);
        // The instant must be in range, whatever year is written.
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00+14:00"), None);
        assert_eq!(parse_rfc3339("1970-01-01T14:00:00+14:00"), Some(0));
        assert_eq!(parse_rfc3339("9999-12-31T23:00:00-05:00"), None);
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59.999Z"), Some(LAST_MS));
        assert_eq!(parse_rfc3339("tomorrow"), None);
        // Offsets are 00:00 to 23:59, digits only; years from 1970.
        assert_eq!(parse_rfc3339("2026-11-29T22:00:00+99:00"), None);
        assert_eq!(parse_rfc3339("2026-11-29T22:00:00+01:60"), None);
        assert_eq!(parse_rfc3339("2026-11-29T22:00:00++1:00"), None);
        assert!(parse_rfc3339("2026-11-29T22:00:00+23:59").is_some());
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }
}
