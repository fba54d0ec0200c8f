//! Words: one scan for runs of `[A-Za-z0-9_-]` feeds the recognizers of alphanumeric values —
//! prefixed tokens (`AKIA…`, `ghp_…`, `sk-…`), wallet addresses, IBANs (compact, or in groups of
//! four), UK National Insurance numbers, Italian fiscal codes, Spanish NIF and NIE.
//!
//! Each recognizer checks a prefix and a length before anything costlier, so ordinary prose
//! costs a few comparisons a word.

use crate::validate as v;
use crate::{Candidate, Entity, GuardConfig, Pack};

/// A word byte (`[A-Za-z0-9_-]`).
const W: u8 = 1;
/// A digit.
const D: u8 = 2;

/// The class of each byte (`W`, `W | D`, or 0), as a table: the scan's inner loop is one load
/// per byte, and it learns on the way whether the word holds a digit.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_digit() {
            t[c] = W | D;
        } else if b.is_ascii_alphabetic() || b == b'_' || b == b'-' {
            t[c] = W;
        }
        c += 1;
    }
    t
};

/// Words this short and without a digit are nothing any recognizer here looks for (every value
/// under 14 characters holds a digit; the two-letter NINO prefix is the one exception, checked
/// apart). Most prose is such words, so they cost the loop and one comparison.
const SHORT_WITHOUT_DIGITS: usize = 14;

/// Cheap shape checks before a validator (which may allocate) runs.
fn digits_at(b: &[u8], r: std::ops::Range<usize>) -> bool {
    b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit))
}

/// Which alphanumeric packs are on, read once per scan.
#[derive(Clone, Copy)]
struct On {
    it: bool,
    es: bool,
    uk: bool,
}

/// Scans `t` word by word.
pub fn scan(t: &str, cfg: &GuardConfig, out: &mut Vec<Candidate>) {
    let on = On {
        it: cfg.packs.contains(&Pack::It),
        es: cfg.packs.contains(&Pack::Es),
        uk: cfg.packs.contains(&Pack::Uk),
    };
    let b = t.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        if CLASS[usize::from(b[i])] == 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut seen = 0;
        while i < n {
            let class = CLASS[usize::from(b[i])];
            if class == 0 {
                break;
            }
            seen |= class;
            i += 1;
        }
        // The common case first: a short word of letters without dashes at its edges, which no
        // recognizer here wants (the checks below skip it too, after more work). Two letters
        // may start a SendGrid key (`SG.`) or be a NINO's prefix; four may be a third of a
        // dotted MAC address.
        let raw = i - start;
        if seen & D == 0
            && raw < SHORT_WITHOUT_DIGITS
            && !(raw == 2 && (on.uk || b[start] == b'S'))
            && !(raw == 4 && b.get(i) == Some(&b'.'))
            && b[start] != b'-'
            && b[i - 1] != b'-'
        {
            continue;
        }
        // Dashes at the edges belong to the text around the word — unless they end a token
        // whose alphabet has them (a Google API key may end in `-`).
        let (mut s, mut e) = (start, i);
        while s < e && b[s] == b'-' {
            s += 1;
        }
        while e > s && b[e - 1] == b'-' {
            e -= 1;
        }
        if e < i
            && i - s >= 20
            && let Some((entity, rule)) = prefixed_token(&t[s..i])
        {
            out.push(Candidate::new(entity, s, i, 0.95, false, rule));
            continue;
        }
        let len = e - s;
        // A SendGrid key (`SG.` 22 `.` 43) is three words to this loop.
        if len == 2
            && &b[s..e] == b"SG"
            && s == start
            && let Some(end) = sendgrid_key(b, s)
        {
            out.push(Candidate::new(
                Entity::SecretGeneric,
                s,
                end,
                0.95,
                false,
                "sendgrid_key",
            ));
            i = end;
            continue;
        }
        // A MAC address in Cisco's dotted form (`0090.07d7.b320`) is three words of four.
        if len == 4
            && b.get(e) == Some(&b'.')
            && s == start
            && e == i
            && let Some(end) = cisco_mac(b, s)
        {
            out.push(Candidate::new(
                Entity::MacAddress,
                s,
                end,
                0.6,
                false,
                "mac_dotted",
            ));
            i = end;
            continue;
        }
        if seen & D == 0 && len < SHORT_WITHOUT_DIGITS && !(on.uk && len == 2) {
            continue;
        }
        // Nothing here is shorter than an IBAN group of four, but for the two letters a spaced
        // NINO starts with.
        if len < 4 && !(on.uk && len == 2) {
            continue;
        }
        if s < e {
            let found = out.len();
            word(t, s, e, on, out);
            if out.len() == found && len > 20 {
                glued(t, s, e, on, out);
            }
        }
    }
}

/// A value glued into a longer identifier that matched nothing whole: the parts after and
/// before each `_` (`call_AKIA…`, `x_ghp_…`, `AKIA…_x`), and an AWS key id glued to letters or
/// digits (`xAKIA…`). The first found is kept.
fn glued(t: &str, s: usize, e: usize, on: On, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let cuts = b[s + 1..e - 1]
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'_')
        .map(|(k, _)| s + 1 + k);
    for p in cuts {
        for (a, z) in [(p + 1, e), (s, p)] {
            if z - a >= 4 {
                let found = out.len();
                word(t, a, z, on, out);
                if out.len() > found {
                    return;
                }
            }
        }
    }
    let upper_digit = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    for k in s + 1..e.saturating_sub(19) {
        let key = &b[k..k + 20];
        if matches!(&key[..4], b"AKIA" | b"ASIA" | b"ABIA" | b"ACCA")
            && key.iter().all(|&c| upper_digit(c))
            && (k + 20 == e || !upper_digit(b[k + 20]))
        {
            out.push(Candidate::new(
                Entity::SecretAwsKey,
                k,
                k + 20,
                0.95,
                false,
                "aws_access_key_id_glued",
            ));
            return;
        }
    }
}

/// `SG.<22>.<43>` (letters, digits, `_`, `-`) at `s`, standing alone: its end.
fn sendgrid_key(b: &[u8], s: usize) -> Option<usize> {
    let end = s + 69;
    let shaped = b.get(s..end)?.iter().enumerate().skip(2).all(|(k, &c)| {
        if k == 2 || k == 25 {
            c == b'.'
        } else {
            token_char(c)
        }
    });
    let alone = b.get(end).is_none_or(|&c| {
        !token_char(c) && c != b'.' || c == b'.' && b.get(end + 1).is_none_or(|&n| !token_char(n))
    });
    let before = s == 0 || !token_char(b[s - 1]);
    (shaped && alone && before).then_some(end)
}

/// `hhhh.hhhh.hhhh` at `s`, standing alone: its end.
fn cisco_mac(b: &[u8], s: usize) -> Option<usize> {
    let end = s + 14;
    let shaped = b.get(s..end)?.iter().enumerate().all(|(k, c)| {
        if k == 4 || k == 9 {
            *c == b'.'
        } else {
            c.is_ascii_hexdigit()
        }
    });
    let alone = b
        .get(end)
        .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != b'.');
    let hex = |k: usize| b[s + k].is_ascii_digit();
    // All digits (`1234.5678.9012`) is more likely a number than a MAC address.
    let digits_only = (0..14).filter(|&k| k != 4 && k != 9).all(hex);
    (shaped && alone && !digits_only).then_some(end)
}

fn all(w: &str, f: impl Fn(u8) -> bool) -> bool {
    w.bytes().all(f)
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn word(t: &str, s: usize, e: usize, on: On, out: &mut Vec<Candidate>) {
    let w = &t[s..e];
    let len = w.len();
    let mut push = |entity, score, validated, rule| {
        out.push(Candidate::new(entity, s, e, score, validated, rule))
    };
    if len >= 20
        && let Some((entity, rule)) = prefixed_token(w)
    {
        push(entity, 0.95, false, rule);
        return;
    }
    let first = w.as_bytes()[0];
    // Wallets.
    if (26..=35).contains(&len) && matches!(first, b'1' | b'3' | b'L' | b'M') && v::base58check(w) {
        push(Entity::CryptoWallet, 1.0, true, "base58check");
        return;
    }
    if (14..=74).contains(&len)
        && (w.starts_with("bc1")
            || w.starts_with("BC1")
            || w.starts_with("tb1")
            || w.starts_with("ltc1")
            || w.starts_with("LTC1"))
        && v::bech32_address(w)
    {
        push(Entity::CryptoWallet, 1.0, true, "bech32");
        return;
    }
    if len == 42 && (w.starts_with("0x") || w.starts_with("0X")) {
        match v::eip55(w) {
            Some(true) => push(Entity::CryptoWallet, 1.0, true, "eip55"),
            None if all(&w[2..], |c| c.is_ascii_hexdigit()) => {
                push(Entity::CryptoWallet, 0.6, false, "eth_hex")
            }
            _ => {}
        }
        return;
    }
    // IBAN, compact.
    if (15..=34).contains(&len) && iban_head(w) && all(w, alnum) && v::iban(w) {
        push(Entity::IbanCode, 1.0, true, "mod97");
        return;
    }
    // Alphanumeric national ids.
    let wb = w.as_bytes();
    if on.it
        && len == 16
        && wb[..6].iter().all(u8::is_ascii_alphabetic)
        && all(w, alnum)
        && v::it_fiscal_code(w)
    {
        push(Entity::ItFiscalCode, 1.0, true, "check_char");
        return;
    }
    if on.es
        && (9..=11).contains(&len)
        && wb[len - 1].is_ascii_alphabetic()
        && (wb[0].is_ascii_digit() || matches!(wb[0], b'X' | b'Y' | b'Z' | b'x' | b'y' | b'z'))
    {
        let mut buf = [0u8; 11];
        let mut k = 0;
        for c in w.bytes().filter(|&c| c != b'-') {
            buf[k] = c;
            k += 1;
        }
        if let (9, Ok(compact)) = (k, std::str::from_utf8(&buf[..k])) {
            if v::es_nif(compact) {
                push(Entity::EsNif, 1.0, true, "mod23");
                return;
            }
            if v::es_nie(compact) {
                push(Entity::EsNie, 1.0, true, "mod23");
                return;
            }
        }
    }
    // A MAC address with dashes (`00-1A-2B-3C-4D-5E`) is one word here.
    if v::mac_address(w, b'-') {
        push(Entity::MacAddress, 0.6, false, "mac");
        return;
    }
    if on.uk && len == 9 && digits_at(wb, 2..8) && v::uk_nino(w) {
        push(Entity::UkNino, 0.6, false, "nino");
        return;
    }
    // Values written in groups: an IBAN in fours, a NINO in pairs.
    if len == 4 && iban_head(w) {
        spaced_iban(t, s, e, out);
    } else if len == 2 && on.uk && w.bytes().all(|c| c.is_ascii_alphabetic()) {
        spaced_nino(t, s, out);
    }
}

fn iban_head(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 4
        && b[0].is_ascii_alphabetic()
        && b[1].is_ascii_alphabetic()
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
}

/// The words after `e` separated by exactly one space, at most `max` of them: (start, end).
fn next_words(t: &str, mut e: usize, max: usize) -> Vec<(usize, usize)> {
    let b = t.as_bytes();
    let mut words = Vec::new();
    while words.len() < max && e + 1 < b.len() && b[e] == b' ' && b[e + 1].is_ascii_alphanumeric() {
        let s = e + 1;
        let mut k = s;
        while k < b.len() && b[k].is_ascii_alphanumeric() {
            k += 1;
        }
        if k < b.len() && (b[k] == b'_' || b[k] == b'-') {
            break;
        }
        words.push((s, k));
        e = k;
    }
    words
}

fn spaced_iban(t: &str, s: usize, e: usize, out: &mut Vec<Candidate>) {
    let groups = next_words(t, e, 8);
    let mut compact = t[s..e].to_string();
    let mut ends = Vec::new();
    for &(gs, ge) in &groups {
        if ge - gs > 4 {
            break;
        }
        compact.push_str(&t[gs..ge]);
        ends.push((compact.len(), ge));
        if ge - gs < 4 || compact.len() >= 34 {
            break;
        }
    }
    // The longest run of groups that is a valid IBAN (a short word after it is not part of it).
    for &(clen, end) in ends.iter().rev() {
        if clen >= 15 && v::iban(&compact[..clen]) {
            out.push(Candidate::new(Entity::IbanCode, s, end, 1.0, true, "mod97"));
            return;
        }
    }
}

fn spaced_nino(t: &str, s: usize, out: &mut Vec<Candidate>) {
    let e = s + 2;
    // `AB 12 34 56 C`: the next group is digits (most two-letter words are followed by a word).
    let b = t.as_bytes();
    if !(b.get(e) == Some(&b' ') && b.get(e + 1).is_some_and(u8::is_ascii_digit)) {
        return;
    }
    let words = next_words(t, e, 4);
    let mut compact = t[s..e].to_string();
    for (k, &(ws, we)) in words.iter().enumerate() {
        compact.push_str(&t[ws..we]);
        if compact.len() == 9 && v::uk_nino(&compact) {
            out.push(Candidate::new(Entity::UkNino, s, we, 0.6, false, "nino"));
            return;
        }
        if compact.len() > 9 || k == 3 {
            return;
        }
    }
}

/// Tokens whose prefix names their issuer.
fn prefixed_token(w: &str) -> Option<(Entity, &'static str)> {
    let len = w.len();
    let rest = |p: &str| &w[p.len()..];
    let b = w.as_bytes();
    if len == 20
        && ["AKIA", "ASIA", "ABIA", "ACCA"]
            .iter()
            .any(|p| w.starts_with(p))
        && all(w, |c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Some((Entity::SecretAwsKey, "aws_access_key_id"));
    }
    if len == 40
        && ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]
            .iter()
            .any(|p| w.starts_with(p))
        && all(rest("ghp_"), alnum)
    {
        return Some((Entity::SecretGithubToken, "github_token"));
    }
    if w.starts_with("github_pat_")
        && len >= 40
        && all(rest("github_pat_"), |c| alnum(c) || c == b'_')
    {
        return Some((Entity::SecretGithubToken, "github_pat"));
    }
    if len >= 15
        && b.len() > 5
        && w.starts_with("xox")
        && matches!(b[3], b'a' | b'b' | b'p' | b'r' | b's' | b'e')
        && b[4] == b'-'
    {
        return Some((Entity::SecretSlackToken, "slack_token"));
    }
    if w.starts_with("xapp-") && len >= 20 {
        return Some((Entity::SecretSlackToken, "slack_app_token"));
    }
    for p in ["sk_live_", "sk_test_", "rk_live_", "rk_test_"] {
        if w.starts_with(p) && len >= p.len() + 16 && all(rest(p), alnum) {
            return Some((Entity::SecretStripeKey, "stripe_key"));
        }
    }
    if w.starts_with("sk-ant-") && len >= 40 && all(w, token_char) {
        return Some((Entity::SecretAnthropicKey, "anthropic_key"));
    }
    if w.starts_with("sk-") && len >= 23 && all(w, token_char) {
        let r = rest("sk-");
        if r.bytes().any(|c| c.is_ascii_digit()) && r.bytes().any(|c| c.is_ascii_alphabetic()) {
            return Some((Entity::SecretOpenaiKey, "openai_key"));
        }
    }
    if len == 39 && w.starts_with("AIza") && all(w, token_char) {
        return Some((Entity::SecretGoogleApiKey, "google_api_key"));
    }
    // Tollgate's own credentials: a virtual key (`tg_`), a personal token (`tgu_`), a generated
    // admin token (`tga_`), each 43 base62 characters. One pasted into a prompt would otherwise
    // reach the provider as it was written.
    for p in ["tg_", "tgu_", "tga_"] {
        if w.starts_with(p) && len == p.len() + 43 && all(rest(p), alnum) {
            return Some((Entity::SecretGeneric, "tollgate_key"));
        }
    }
    // Mailgun: `key-` and 32 hexadecimal digits.
    if len == 36 && w.starts_with("key-") && all(rest("key-"), |c| c.is_ascii_hexdigit()) {
        return Some((Entity::SecretGeneric, "mailgun_key"));
    }
    for (p, min) in [
        ("glpat-", 26),
        ("npm_", 40),
        ("hf_", 34),
        ("shpat_", 38),
        ("shpss_", 38),
        ("dop_v1_", 71),
        ("pypi-AgEI", 60),
        ("glptt-", 46),
        ("sq0atp-", 29),
        ("xoxe.xoxp-", 30),
    ] {
        if w.starts_with(p) && len >= min && all(w, token_char) {
            return Some((Entity::SecretGeneric, "known_prefix"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, cfg: &GuardConfig) -> Vec<(Entity, String)> {
        let mut out = Vec::new();
        scan(text, cfg, &mut out);
        out.into_iter()
            .map(|c| (c.entity, text[c.start..c.end].to_string()))
            .collect()
    }

    /// Tollgate's own keys and tokens are credentials like any provider's; a word of the same
    /// prefix and another length, or with other characters, is not one.
    #[test]
    fn tollgates_own_keys_are_secrets() {
        let body = "7mQ2xR9vL4kP8nT1wZ6yB3cD5fG0hJ2aS4dF6gH8jK1";
        assert_eq!(body.len(), 43);
        for prefix in ["tg_", "tgu_", "tga_"] {
            let key = format!("{prefix}{body}");
            assert_eq!(
                found(&format!("my key is {key}, use it"), &GuardConfig::default()),
                [(Entity::SecretGeneric, key.clone())],
                "{key}"
            );
        }
        for not in [
            format!("tg_{}", &body[..42]),
            format!("tg_{body}x"),
            format!("tgx_{body}"),
            format!("tg_{}-", &body[..42]),
        ] {
            assert!(
                found(&format!("see {not} here"), &GuardConfig::default())
                    .iter()
                    .all(|(e, _)| *e != Entity::SecretGeneric),
                "{not}"
            );
        }
    }

    #[test]
    fn tokens_wallets_and_ibans() {
        let cfg = GuardConfig {
            packs: Pack::ALL.iter().copied().collect(),
            ..GuardConfig::default()
        };
        let text = "key AKIAIOSFODNN7EXAMPLE and ghp_0123456789abcdefghijABCDEFGHIJ012345 pay 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 to GB82 WEST 1234 5698 7654 32 and DE89370400440532013000; NI AB 12 34 56 C, CF RSSMRA85T10A562S, DNI 12345678-Z";
        let f = found(text, &cfg);
        let want = [
            (Entity::SecretAwsKey, "AKIAIOSFODNN7EXAMPLE"),
            (
                Entity::SecretGithubToken,
                "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            ),
            (Entity::CryptoWallet, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
            (Entity::IbanCode, "GB82 WEST 1234 5698 7654 32"),
            (Entity::IbanCode, "DE89370400440532013000"),
            (Entity::UkNino, "AB 12 34 56 C"),
            (Entity::ItFiscalCode, "RSSMRA85T10A562S"),
            (Entity::EsNif, "12345678-Z"),
        ];
        for (e, s) in want {
            assert!(
                f.iter().any(|(fe, fs)| *fe == e && fs == s),
                "{e} {s} not in {f:?}"
            );
        }
    }

    #[test]
    fn dashed_mac_addresses() {
        let f = found(
            "nic 00-1A-2B-3C-4D-5E, not 00-00-00-00-00-00",
            &GuardConfig::default(),
        );
        assert_eq!(
            f,
            vec![(Entity::MacAddress, "00-1A-2B-3C-4D-5E".to_string())]
        );
    }

    #[test]
    fn a_short_word_after_an_iban_is_not_part_of_it() {
        let f = found(
            "GB82 WEST 1234 5698 7654 32 and more",
            &GuardConfig::default(),
        );
        assert_eq!(
            f,
            vec![(Entity::IbanCode, "GB82 WEST 1234 5698 7654 32".to_string())]
        );
    }
}
