//! Shapes: values found around a trigger character or literal — e-mail addresses around `@`,
//! credentials around `://`, PEM private keys, JWTs, values after secret keywords, `Bearer`
//! tokens, MAC and IPv6 addresses, dates written with month names.

use crate::validate as v;
use crate::{Candidate, Entity};
use memchr::memmem;
use regex::Regex;
use std::sync::OnceLock;

/// Compiled patterns of this module. The regexes run only in small windows around what a fast
/// literal search found (a secret keyword, `bearer`, a month name), never over the whole text.
#[derive(Debug)]
pub struct Shapes {
    keyword: Regex,
    bearer: Regex,
    date: Regex,
}

/// The literals this module's regexes wait for, in the order of their trigger ids: secret
/// keywords (0..=6), `bearer` (7), month-name prefixes (8..). Searched for, case-insensitively,
/// by [`crate::triggers`] in one pass with the other families' trigger words.
pub fn trigger_words() -> Vec<&'static str> {
    let mut pats: Vec<&str> = KEYWORDS.to_vec();
    pats.push("bearer");
    pats.extend_from_slice(MONTHS3);
    pats.extend_from_slice(AT_WORDS);
    pats
}

/// An `@` written so a plain scan misses it: in brackets (`ann [at] example [dot] org`),
/// percent-encoded or as an HTML character reference.
const AT_WORDS: &[&str] = &["[at]", "(at)", "{at}", "%40", "&#64;", "&#x40;", "&commat;"];
/// The first trigger id of [`AT_WORDS`].
const AT_FIRST: usize = BEARER + 1 + MONTHS3.len();

const KEYWORDS: [&str; 12] = [
    "key",
    "secret",
    "token",
    "passw",
    "pwd",
    "credential",
    "auth",
    // Password in other languages (`Passwort` is found by `passw`).
    "kennwort",
    "contrase",
    "mot de passe",
    "wachtwoord",
    "senha",
];
const BEARER: usize = KEYWORDS.len();
/// Prefixes of month names, ASCII-case-insensitive: English (and the Dutch, German and
/// Portuguese names that share them), then German, Spanish, French, Italian, Portuguese and Dutch
/// names that do not — long enough not to fire on common English words (`out`, `set`, `ago`).
const MONTHS3: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
    "dec", // English
    "mär", "maerz", "mai", "okt", "dez", // German
    "enero", "abril", "agosto", "dic", // Spanish
    "févr", "fevr", "avril", "juin", "juil", "août", "aout", "déc", // French
    "genn", "magg", "giugn", "lugl", "sett", "ottob", // Italian
    "fever", "outub", "maart", "mei", // Portuguese, Dutch
];
/// Bytes of text a regex looks at after its trigger.
const WINDOW: usize = 400;

impl Default for Shapes {
    fn default() -> Self {
        Self::new()
    }
}

// The patterns are constants, compiled once; a test compiles them.
#[allow(clippy::expect_used)]
fn compile(p: &str) -> Regex {
    Regex::new(p).expect("built-in pattern compiles")
}

impl Shapes {
    /// Compiles the patterns.
    pub fn new() -> Shapes {
        Shapes {
            // A secret keyword, then `=`, `:`, `=>` or `:=`, then the value.
            // A secret keyword, then an assignment (`=`, `:`, `=>`, `:=`, `->`) — or, in prose
            // and logs, a verb or nothing (`the password is …`, `Passwort ist …`, `api key …`),
            // where the value itself must look like a secret — then the value.
            keyword: compile(
                r#"(?i)^(?:key|secret|token|passw(?:or)?[dt]|passwd|pwd|credential|auth|kennwort|contrase(?:ñ|n)a|mot de passe|wachtwoord|senha)[a-z0-9_.-]{0,40}["']?(?:\s{0,4}(?P<strong>=>|:=|->|=|:)\s{0,4}|[ \t]{1,4}(?:(?:is|ist|es|est|è|lautet|was|war)[ \t]{1,4})?)["'\[]?(?P<v>[^\s"'<>{}(),;`\[\]]{6,256})"#,
            ),
            bearer: compile(r"(?i)^bearer\s+([A-Za-z0-9_\-.~+/]{16,512}=*)"),
            date: compile(
                r"(?i)(?-u:\b)(?:[0-9]{1,2}(?:st|nd|rd|th|er|º)?\.?(?:\s{1,3}|-)(?:de\s{1,3})?[a-zß-öø-ÿ]{3,10}\.?,?(?:\s{1,3}|-)(?:de\s{1,3})?[0-9]{4}|[a-zß-öø-ÿ]{3,10}\.?\s{1,3}[0-9]{1,2}(?:st|nd|rd|th)?,?\s{1,3}[0-9]{4})(?-u:\b)",
            ),
        }
    }

    /// Appends the shapes found in `t`; `hits` are where the [`trigger_words`] occur in it.
    /// `blobs` are the text's runs of base64 of at least [`crate::injection::MIN_BLOB`]
    /// characters ([`crate::injection::runs`]), found once for this and the injection family.
    pub fn scan(
        &self,
        t: &str,
        hits: &[crate::triggers::Hit],
        blobs: &[(usize, usize, usize)],
        out: &mut Vec<Candidate>,
    ) {
        emails(t, out);
        credentials_in_urls(t, out);
        pem_keys(t, out);
        jwts(t, out);
        if find(t, &needles().slack).is_some() {
            slack_webhooks(t, out);
        }
        let b = t.as_bytes();
        let mut date_done = 0;
        for h in hits {
            let p = h.start;
            let id = h.id;
            if id < BEARER {
                self.keyword_at(t, p, out);
            } else if id >= AT_FIRST {
                obfuscated_email(t, p, h.end, out);
            } else if id == BEARER {
                if p > 0 && b[p - 1].is_ascii_alphanumeric() {
                    continue;
                }
                if let Some(c) = self.bearer.captures(window(t, p, WINDOW))
                    && let Some(m) = c.get(1)
                    && v::entropy(m.as_str()) >= 3.0
                {
                    out.push(Candidate::new(
                        Entity::SecretGeneric,
                        p + m.start(),
                        p + m.end(),
                        0.85,
                        false,
                        "bearer_token",
                    ));
                }
            } else if p >= date_done && (p == 0 || !b[p - 1].is_ascii_alphabetic()) {
                // (A month name starts a word: `summary`, `email` and `settings` are skipped.)
                // A written date: the day may come before the month name (`12 March 1985`).
                let ws = crate::normalize::floor_boundary(t, p.saturating_sub(8));
                for d in self.date.find_iter(window(t, ws, 48)) {
                    let (ds, de) = (ws + d.start(), ws + d.end());
                    if de > date_done && has_month(d.as_str()) {
                        out.push(Candidate::new(
                            Entity::DateOfBirth,
                            ds,
                            de,
                            0.3,
                            false,
                            "date_words",
                        ));
                        date_done = de;
                    }
                }
            }
        }
        colon_addresses(t, out);
        aws_secret_keys(t, blobs, out);
    }

    fn keyword_at(&self, t: &str, p: usize, out: &mut Vec<Candidate>) {
        let Some(c) = self.keyword.captures(window(t, p, WINDOW)) else {
            return;
        };
        let (Some(all), Some(value)) = (c.get(0), c.name("v")) else {
            return;
        };
        // Without an assignment sign the value alone must look like a secret.
        let prose = c.name("strong").is_none();
        let keyword = all.as_str()[..value.start()].to_ascii_lowercase();
        // Punctuation that ends a sentence is not part of the value; in a URL's query string
        // (`?key=…&callback=…`) the value ends at the next parameter.
        let mut val = value
            .as_str()
            .trim_end_matches(['.', ',', '!', '?', ':', ';']);
        if p > 0
            && matches!(t.as_bytes()[p - 1], b'?' | b'&')
            && let Some(amp) = val.find('&')
        {
            val = &val[..amp];
        }
        let (vs, ve) = (p + value.start(), p + value.start() + val.len());
        // A UUID or a dotted name in code (`os.environ.get`) is no generic secret.
        if uuid_like(val) || dotted_name(val) {
            return;
        }
        let is_password = ["pass", "pwd", "kennwort", "contrase", "wachtwoord", "senha"]
            .iter()
            .any(|k| keyword.contains(k));
        let ident = t[identifier_start(t, p)..p].to_ascii_lowercase();
        let aws = ident.contains("aws") || keyword.contains("aws");
        if prose {
            if !(val.len() >= 8 && classes(val) >= 2 && val.bytes().any(|c| c.is_ascii_digit())) {
                return;
            }
            // A bare `key` is a secret only as an API, access or signing key (a cache, sort or
            // partition key followed by its value is not).
            if keyword.starts_with("key") && !secret_key_before(t, p) {
                return;
            }
        }
        if is_password {
            if plausible_password(val) {
                out.push(Candidate::new(
                    Entity::SecretGeneric,
                    vs,
                    ve,
                    0.8,
                    false,
                    "password_assignment",
                ));
            }
        } else if val.len() >= 16 && v::entropy(val) >= 3.0 && mixed(val) {
            let entity = if aws {
                Entity::SecretAwsKey
            } else {
                Entity::SecretGeneric
            };
            out.push(Candidate::new(
                entity,
                vs,
                ve,
                0.8,
                false,
                "secret_assignment",
            ));
        }
    }
}

/// `t[start..]`, at most about `len` bytes of it (cut at a character boundary).
fn window(t: &str, start: usize, len: usize) -> &str {
    &t[start..crate::normalize::floor_boundary(t, start + len)]
}

fn hexish(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// MAC (`00:1A:2B:3C:4D:5E`) and IPv6 addresses: found around each `:` that has a hex digit or a
/// colon beside it, by extending over hex digits, colons and dots, then parsing.
fn colon_addresses(t: &str, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let mut from = 0;
    while let Some(k) = memchr::memchr(b':', &b[from..]) {
        let c = from + k;
        from = c + 1;
        let mut s = c;
        while s > 0 && c - s < 45 && hexish(b[s - 1]) {
            s -= 1;
        }
        let mut e = c + 1;
        while e < b.len() && e - c < 45 && hexish(b[e]) {
            e += 1;
        }
        from = from.max(e);
        while s < c && b[s] == b'.' {
            s += 1;
        }
        while e > c + 1 && b[e - 1] == b'.' {
            e -= 1;
        }
        let bad_before = s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'_');
        let bad_after = e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_');
        if bad_before || bad_after {
            continue;
        }
        let cand = &t[s..e];
        if v::mac_address(cand, b':') {
            out.push(Candidate::new(Entity::MacAddress, s, e, 0.6, false, "mac"));
            continue;
        }
        ipv6(t, s, e, out);
    }
}

/// Where the identifier ending at `end` starts (`aws_secret_access_key` before `=`).
fn identifier_start(t: &str, end: usize) -> usize {
    let b = t.as_bytes();
    let mut s = end;
    while s > 0
        && end - s < 64
        && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'_' | b'.' | b'-'))
    {
        s -= 1;
    }
    s
}

/// AWS secret access keys: 40 base64 characters without padding, mixing cases and digits
/// (`wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`). The shape alone is weak: reported with a context
/// word (`aws`, `secret`, a column so named).
fn aws_secret_keys(t: &str, blobs: &[(usize, usize, usize)], out: &mut Vec<Candidate>) {
    for &(s, end, padded) in blobs {
        let w = &t[s..end];
        if end - s == 40
            && padded == end
            && w.bytes().any(|c| c.is_ascii_uppercase())
            && w.bytes().any(|c| c.is_ascii_lowercase())
            && w.bytes().any(|c| c.is_ascii_digit())
            && v::entropy(w) >= 4.0
        {
            out.push(Candidate::new(
                Entity::SecretAwsKey,
                s,
                end,
                0.3,
                false,
                "aws_secret_shape",
            ));
        }
    }
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn uuid_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// `os.environ.get`, `config.db.password`: names joined by dots, no digits.
fn dotted_name(s: &str) -> bool {
    s.contains('.')
        && s.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_')
        })
}

/// Whether the word before the keyword at `p` makes a `key` a secret one (`API key`,
/// `access_key`, `private-key`).
fn secret_key_before(t: &str, p: usize) -> bool {
    let before = &t.as_bytes()[p.saturating_sub(12)..p];
    let before = before
        .strip_suffix(b" ")
        .or_else(|| before.strip_suffix(b"_"))
        .or_else(|| before.strip_suffix(b"-"))
        .unwrap_or(before);
    [
        "api", "access", "secret", "private", "signing", "license", "licence", "auth",
    ]
    .iter()
    .any(|w| {
        before.len() >= w.len()
            && before[before.len() - w.len()..].eq_ignore_ascii_case(w.as_bytes())
            && before
                .len()
                .checked_sub(w.len() + 1)
                .is_none_or(|k| !before[k].is_ascii_alphabetic())
    })
}

/// How many of letters, digits and other characters `s` has.
fn classes(s: &str) -> usize {
    let b = s.as_bytes();
    usize::from(b.iter().any(u8::is_ascii_alphabetic))
        + usize::from(b.iter().any(u8::is_ascii_digit))
        + usize::from(b.iter().any(|c| !c.is_ascii_alphanumeric()))
}

fn mixed(s: &str) -> bool {
    s.bytes().any(|c| c.is_ascii_digit()) && s.bytes().any(|c| c.is_ascii_alphabetic())
}

fn plausible_password(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 6
        && !b.iter().all(|&c| c == b[0])
        && !s.starts_with('$')
        && !s.starts_with('%')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "password"
                | "required"
                | "optional"
                | "string"
                | "none"
                | "null"
                | "undefined"
                | "redacted"
                | "hidden"
                | "********"
        )
}

/// Whether `s` (a date the pattern found) names a month, in English, German, Spanish, French,
/// Italian, Portuguese or Dutch, in full or abbreviated (`Sept.`, `févr.`, `Okt`).
fn has_month(s: &str) -> bool {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    const OTHER: &[&str] = &[
        // German
        "januar",
        "februar",
        "märz",
        "maerz",
        "mai",
        "juni",
        "juli",
        "oktober",
        "dezember",
        "okt",
        "dez",
        "mär", // Spanish
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "setiembre",
        "octubre",
        "noviembre",
        "diciembre",
        "ene",
        "abr",
        "ago",
        "dic", // French
        "janvier",
        "février",
        "fevrier",
        "mars",
        "avril",
        "juin",
        "juillet",
        "août",
        "aout",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
        "decembre",
        "janv",
        "févr",
        "fevr",
        "avr",
        "juil",
        "déc", // Italian
        "gennaio",
        "febbraio",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "settembre",
        "ottobre",
        "dicembre",
        "gen",
        "mag",
        "giu",
        "lug",
        "set",
        "ott", // Portuguese
        "janeiro",
        "fevereiro",
        "março",
        "maio",
        "junho",
        "julho",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
        "fev",
        "out", // Dutch
        "januari",
        "februari",
        "maart",
        "augustus",
        "mei",
    ];
    s.split(|c: char| !c.is_alphabetic()).any(|w| {
        let w = w.to_lowercase();
        w == "sept"
            || OTHER.contains(&w.as_str())
            || MONTHS
                .iter()
                .any(|m| *m == w || (w.len() == 3 && m.starts_with(w.as_str())))
    })
}

fn ipv6(t: &str, s: usize, e: usize, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let bad_before =
        s > 0 && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b':' | b'.' | b'_'));
    let bad_after = e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_' || b[e] == b':');
    if bad_before || bad_after {
        return;
    }
    let cand = &t[s..e];
    let hex_digits = cand.bytes().filter(u8::is_ascii_hexdigit).count();
    if hex_digits < 4 || cand.parse::<std::net::Ipv6Addr>().is_err() {
        return;
    }
    out.push(Candidate::new(Entity::IpAddress, s, e, 0.6, false, "ipv6"));
}

/// Whether `ip` is loopback, private, link-local, unspecified or documentation space.
pub fn is_private_ip(ip: &str) -> bool {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || (o[0] == 192 && o[1] == 0 && o[2] == 2)
                || (o[0] == 198 && o[1] == 51 && o[2] == 100)
                || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        }
        Ok(std::net::IpAddr::V6(a)) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8
        }
        Err(_) => false,
    }
}

fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

/// The start of the letter or digit outside ASCII that ends at `i`, if one does.
fn letter_before(t: &str, i: usize) -> Option<usize> {
    if t.as_bytes()[i - 1] < 0x80 {
        return None;
    }
    let c = t[..i].chars().next_back()?;
    c.is_alphanumeric().then(|| i - c.len_utf8())
}

/// The end of the letter or digit outside ASCII that starts at `i`, if one does.
fn letter_at(t: &str, i: usize) -> Option<usize> {
    if t.as_bytes()[i] < 0x80 {
        return None;
    }
    let c = t[i..].chars().next()?;
    c.is_alphanumeric().then(|| i + c.len_utf8())
}

fn domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

fn emails(t: &str, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let mut from = 0;
    while let Some(k) = memchr::memchr(b'@', &b[from..]) {
        let at = from + k;
        from = at + 1;
        let mut s = at;
        while s > 0 && at - s < 64 {
            if local_char(b[s - 1]) {
                s -= 1;
            } else if let Some(k) = letter_before(t, s) {
                // Internationalized addresses (`jörg.müller@web.de`, RFC 6531).
                s = k;
            } else {
                break;
            }
        }
        // Longer than a local part may be: no address.
        if s > 0 && local_char(b[s - 1]) {
            continue;
        }
        // Quotes, dots and dashes before it belong to the text around it (`('ann@x.org'`).
        while s < at && matches!(b[s], b'.' | b'\'' | b'-') {
            s += 1;
        }
        if s == at {
            continue;
        }
        let mut e = at + 1;
        while e < b.len() && e - at <= 253 {
            if domain_char(b[e]) {
                e += 1;
            } else if let Some(k) = letter_at(t, e) {
                e = k;
            } else {
                break;
            }
        }
        // A plain `@` with the domain's dots written out (`zed@example[dot]com`).
        let after = &b[e.min(b.len())..(e + 6).min(b.len())];
        let after = after.strip_prefix(b" ").unwrap_or(after);
        let dot = |d: &[u8]| after.get(..5).is_some_and(|a| a.eq_ignore_ascii_case(d));
        if dot(b"[dot]") || dot(b"(dot)") || dot(b"{dot}") {
            obfuscated_email(t, at, at + 1, out);
            continue;
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        let domain = &t[at + 1..e];
        let labels: Vec<&str> = domain.split('.').collect();
        let ok_labels = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
            });
        if !ok_labels {
            continue;
        }
        let Some(tld) = labels.last() else { continue };
        if tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()) && is_tld(tld) {
            out.push(Candidate::new(
                Entity::EmailAddress,
                s,
                e,
                1.0,
                true,
                "email_tld",
            ));
        }
    }
}

/// An e-mail address whose `@` is written as the text at `at..after` (one of [`AT_WORDS`]), with
/// dots in the domain written plainly or as `[dot]`, `(dot)`, `{dot}`, spaces allowed around the
/// bracketed words: `zed.victim [at] corp-example [dot] com`, `ann%40example.org`.
fn obfuscated_email(t: &str, at: usize, after: usize, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    // The local part, ending at the `@` (or one space before a bracketed one).
    let mut s = at;
    if s > 0 && b[s - 1] == b' ' && b[at] != b'%' && b[at] != b'&' {
        s -= 1;
    }
    let end_local = s;
    while s > 0 && end_local - s < 64 && (local_char(b[s - 1]) && b[s - 1] != b'%') {
        s -= 1;
    }
    while s < end_local && matches!(b[s], b'.' | b'\'' | b'-') {
        s += 1;
    }
    if s == end_local || (s > 0 && b[s - 1].is_ascii_alphanumeric()) {
        return;
    }
    // The domain: labels joined by `.` or a bracketed `dot`.
    let mut e = after;
    if e < b.len() && b[e] == b' ' && b[at] != b'%' && b[at] != b'&' {
        e += 1;
    }
    let mut labels = 0;
    let mut last_label: (usize, usize);
    loop {
        let ls = e;
        while e < b.len() && e - after <= 253 && (b[e].is_ascii_alphanumeric() || b[e] == b'-') {
            e += 1;
        }
        if e == ls {
            return;
        }
        labels += 1;
        last_label = (ls, e);
        if e + 1 < b.len() && b[e] == b'.' && b[e + 1].is_ascii_alphanumeric() {
            e += 1;
            continue;
        }
        // ` [dot] `, `(dot)`: the brackets' dot, with a space on either side or none.
        let sp = usize::from(e < b.len() && b[e] == b' ');
        let word = t.get(e + sp..e + sp + 5).unwrap_or_default();
        if matches!(
            word.to_ascii_lowercase().as_str(),
            "[dot]" | "(dot)" | "{dot}"
        ) {
            let mut next = e + sp + 5;
            if next < b.len() && b[next] == b' ' {
                next += 1;
            }
            if next < b.len() && b[next].is_ascii_alphanumeric() {
                e = next;
                continue;
            }
        }
        break;
    }
    let tld = &t[last_label.0..last_label.1];
    if labels >= 2 && tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()) && is_tld(tld)
    {
        out.push(Candidate::new(
            Entity::EmailAddress,
            s,
            e,
            0.9,
            false,
            "email_obfuscated",
        ));
    }
}

/// Country-code top-level domains (ISO 3166 alpha-2 and the few others in use) and the generic
/// ones mail is commonly sent from. The reserved names of RFC 2606 (`example`, `test`,
/// `invalid`, `localhost`) are not public and not listed.
const CC_TLDS: &str = "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw";
const G_TLDS: &str = "com net org edu gov mil int info biz name pro aero asia cat coop jobs mobi museum post tel travel arpa app dev page cloud online site tech store shop blog xyz top club email company solutions services agency digital network systems software support global group media news live life world today space website link click help host press studio design art health care finance bank insurance law legal consulting capital ventures partners management marketing academy education school university training institute foundation church community center city london nyc paris berlin tokyo amsterdam wien swiss bayern quebec scot wales africa ltd llc inc gmbh limited plus business fun games social team zone one work works tools codes guru ninja rocks photo photos video film music audio radio events house homes properties realty estate rent cars auto fit fitness yoga golf football beer wine pizza cafe restaurant bar kitchen coffee farm garden green eco energy solar exchange market trade money credit loans tax fund investments financial bio science technology engineering engineer mail chat forum wiki review reviews email consulting google apple amazon microsoft me ai io co tv fm gg ly sh to";

/// The top-level domains above, as a set (built once).
static TLDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| CC_TLDS.split(' ').chain(G_TLDS.split(' ')).collect());

fn is_tld(tld: &str) -> bool {
    // Lowercased on the stack: no TLD is longer than 16 bytes.
    let mut buf = [0u8; 16];
    let Some(dst) = buf.get_mut(..tld.len()) else {
        return false;
    };
    dst.copy_from_slice(tld.as_bytes());
    dst.make_ascii_lowercase();
    std::str::from_utf8(dst).is_ok_and(|l| TLDS.contains(l))
}

/// The literals the shapes search for, each a SIMD substring finder built once (`str::find` with
/// a `&str` is not SIMD, and building a finder per call cost more than the search on short texts).
struct Needles {
    slack: memmem::Finder<'static>,
    scheme: memmem::Finder<'static>,
    pem: memmem::Finder<'static>,
    jwt: memmem::Finder<'static>,
    pem_end: memmem::Finder<'static>,
}

fn needles() -> &'static Needles {
    static N: OnceLock<Needles> = OnceLock::new();
    N.get_or_init(|| Needles {
        slack: memmem::Finder::new("hooks.slack.com/services/"),
        scheme: memmem::Finder::new("://"),
        pem: memmem::Finder::new("-----BEGIN "),
        jwt: memmem::Finder::new("eyJ"),
        pem_end: memmem::Finder::new("-----END "),
    })
}

/// The first match of `needle` in `h`.
fn find(h: &str, needle: &memmem::Finder<'_>) -> Option<usize> {
    needle.find(h.as_bytes())
}

const DB_SCHEMES: &[&str] = &[
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "mongodb+srv",
    "redis",
    "rediss",
    "amqp",
    "amqps",
    "mssql",
    "sqlserver",
    "oracle",
    "clickhouse",
    "cockroachdb",
    "snowflake",
    "kafka",
    "nats",
    "ldap",
    "ldaps",
    "smtp",
    "smtps",
    "couchdb",
    "neo4j",
    "cassandra",
    "memcached",
    "elasticsearch",
    "mqtt",
    "db2",
    "sybase",
    "jdbc",
];

fn credentials_in_urls(t: &str, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let mut from = 0;
    while let Some(k) = find(&t[from..], &needles().scheme) {
        let sep = from + k;
        from = sep + 3;
        let mut s = sep;
        while s > 0
            && sep - s < 32
            && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'.' | b'-' | b':'))
        {
            s -= 1;
        }
        while s < sep && !b[s].is_ascii_alphabetic() {
            s += 1;
        }
        if s == sep {
            continue;
        }
        let mut e = sep + 3;
        while e < b.len() && e - sep < 1024 && !url_end(b[e]) && !matches!(b[e], b'/' | b'?' | b'#')
        {
            e += 1;
        }
        // The span is the whole URL (path, query and fragment too), without the punctuation
        // that ends a sentence around it.
        let mut full = e;
        while full < b.len() && full - sep < 4096 && !url_end(b[full]) {
            full += 1;
        }
        while full > e
            && matches!(
                b[full - 1],
                b'.' | b',' | b';' | b':' | b')' | b']' | b'!' | b'?'
            )
        {
            full -= 1;
        }
        let authority = &t[sep + 3..e];
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let (userinfo, host) = (&authority[..at], &authority[at + 1..]);
        let Some((_, password)) = userinfo.split_once(':') else {
            continue;
        };
        if password.is_empty() || host.is_empty() {
            continue;
        }
        let scheme = t[s..sep].to_ascii_lowercase();
        let last = scheme.rsplit(':').next().unwrap_or("");
        let entity = if DB_SCHEMES.contains(&last) || scheme.starts_with("jdbc") {
            Entity::SecretConnectionString
        } else {
            Entity::UrlWithCredentials
        };
        out.push(Candidate::new(entity, s, full, 1.0, true, "userinfo"));
    }
}

/// Bytes that end a URL written in text.
fn url_end(c: u8) -> bool {
    matches!(
        c,
        b'"' | b'\''
            | b'<'
            | b'>'
            | b'`'
            | b' '
            | b'\t'
            | b'\r'
            | b'\n'
            | b'{'
            | b'}'
            | b'|'
            | b'\\'
    )
}

fn slack_webhooks(t: &str, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let mut from = 0;
    let needle = "hooks.slack.com/services/";
    while let Some(k) = t[from..].find(needle) {
        let s = from + k;
        let mut e = s + needle.len();
        while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'/') {
            e += 1;
        }
        from = e.max(s + 1);
        let start = if t[..s].ends_with("https://") {
            s - 8
        } else {
            s
        };
        if e - s > needle.len() + 20 {
            out.push(Candidate::new(
                Entity::SecretSlackToken,
                start,
                e,
                0.95,
                false,
                "slack_webhook",
            ));
        }
    }
}

fn pem_keys(t: &str, out: &mut Vec<Candidate>) {
    let mut from = 0;
    while let Some(k) = find(&t[from..], &needles().pem) {
        let s = from + k;
        from = s + 11;
        let Some(head_end) = t[from..].find("-----").map(|x| from + x) else {
            return;
        };
        let label = &t[from..head_end];
        if head_end - from > 64 || !label.contains("PRIVATE KEY") {
            continue;
        }
        let body = head_end + 5;
        let limit = (body + 65_536).min(t.len());
        let window = &t[body..limit];
        let e = match window.find("-----END ") {
            Some(x) => {
                let end_label = body + x + 9;
                t[end_label..limit]
                    .find("-----")
                    .map_or(limit, |y| end_label + y + 5)
            }
            None => {
                body + window
                    .bytes()
                    .take_while(|c| {
                        c.is_ascii_alphanumeric()
                            || matches!(
                                c,
                                b'+' | b'/' | b'=' | b'\n' | b'\r' | b' ' | b':' | b'-' | b','
                            )
                    })
                    .count()
            }
        };
        out.push(Candidate::new(
            Entity::SecretPrivateKey,
            s,
            e,
            1.0,
            true,
            "pem",
        ));
        from = e.max(from);
    }
    pem_tails(t, out);
}

/// The second half of a private key whose `BEGIN` line is elsewhere (a key cut in two, across
/// two messages or parts): its base64 lines and its `-----END … PRIVATE KEY-----` line, found
/// from the end marker back over the body.
fn pem_tails(t: &str, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let mut from = 0;
    let covered = out
        .iter()
        .filter(|c| c.rule == "pem")
        .map(|c| (c.start, c.end))
        .collect::<Vec<_>>();
    while let Some(k) = find(&t[from..], &needles().pem_end) {
        let s = from + k;
        from = s + 9;
        let Some(label_end) = t[from..].find("-----").map(|x| from + x) else {
            return;
        };
        if label_end - from > 64 || !t[from..label_end].contains("PRIVATE KEY") {
            continue;
        }
        let e = label_end + 5;
        if covered.iter().any(|&(cs, ce)| cs <= s && s < ce) {
            continue;
        }
        // Back over whole lines of base64 (a key's body has nothing else on its lines).
        let body_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
        let mut start = s;
        loop {
            let line_end = match start.checked_sub(1) {
                Some(p) if b[p] == b'\n' => p - usize::from(p > 0 && b[p - 1] == b'\r'),
                _ => break,
            };
            let mut line_start = line_end;
            while line_start > 0 && body_char(b[line_start - 1]) {
                line_start -= 1;
            }
            let whole = line_start == 0 || b[line_start - 1] == b'\n';
            if line_start == line_end || !whole || s - line_start > 65_536 {
                break;
            }
            start = line_start;
        }
        // Some key material before the marker: a bare `-----END …-----` line is only a marker.
        if b[start..s]
            .iter()
            .filter(|c| c.is_ascii_alphanumeric())
            .count()
            >= 40
        {
            out.push(Candidate::new(
                Entity::SecretPrivateKey,
                start,
                e,
                1.0,
                true,
                "pem_tail",
            ));
        }
        from = e;
    }
}

fn jwt_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn jwts(t: &str, out: &mut Vec<Candidate>) {
    let b = t.as_bytes();
    let mut from = 0;
    while let Some(k) = find(&t[from..], &needles().jwt) {
        let s = from + k;
        from = s + 3;
        // Inside a longer token, but for one glued on by `_` (`x_eyJ…`): the header check
        // below is what tells a JWT.
        if s > 0 && jwt_char(b[s - 1]) && b[s - 1] != b'_' {
            continue;
        }
        let mut e = s;
        let mut dots = 0;
        let mut seg_len = 0;
        while e < b.len() && e - s < 16_384 {
            if jwt_char(b[e]) {
                seg_len += 1;
            } else if b[e] == b'.' && dots < 2 && seg_len >= 2 {
                dots += 1;
                seg_len = 0;
            } else {
                break;
            }
            e += 1;
        }
        if dots == 2 && v::jwt_header(&t[s..e]) {
            out.push(Candidate::new(Entity::SecretJwt, s, e, 1.0, true, "jwt"));
            from = e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(Entity, String)> {
        let mut out = Vec::new();
        let (mut hits, mut none) = (Vec::new(), Vec::new());
        crate::triggers::Triggers::new().find(text, false, &mut hits, &mut none);
        assert!(none.is_empty());
        let blobs: Vec<_> =
            crate::injection::runs(text.as_bytes(), crate::injection::MIN_BLOB).collect();
        Shapes::new().scan(text, &hits, &blobs, &mut out);
        out.into_iter()
            .map(|c| (c.entity, text[c.start..c.end].to_string()))
            .collect()
    }

    #[test]
    fn shapes_are_found_with_their_exact_spans() {
        let text = "mail jane.doe+x@mail.example.co.uk, not a@b or x@host.invalid; db postgres://app:s3cret@db:5432/x and https://bob:pw@example.com/p \
                    Authorization: Bearer abcDEF123456ghiJKL789 jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln mac 00:1A:2B:3C:4D:5E ip 2001:db8::8a2e:370:7334 \
                    password=Hunter2!x aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY born 12 March 1985";
        let f = found(text);
        let want = [
            (Entity::EmailAddress, "jane.doe+x@mail.example.co.uk"),
            (
                Entity::SecretConnectionString,
                "postgres://app:s3cret@db:5432/x",
            ),
            (Entity::UrlWithCredentials, "https://bob:pw@example.com/p"),
            (Entity::SecretGeneric, "abcDEF123456ghiJKL789"),
            (
                Entity::SecretJwt,
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            ),
            (Entity::MacAddress, "00:1A:2B:3C:4D:5E"),
            (Entity::IpAddress, "2001:db8::8a2e:370:7334"),
            (Entity::SecretGeneric, "Hunter2!x"),
            (
                Entity::SecretAwsKey,
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            (Entity::DateOfBirth, "12 March 1985"),
        ];
        for (e, s) in want {
            assert!(
                f.iter().any(|(fe, fs)| *fe == e && fs == s),
                "{e} {s:?} not in {f:?}"
            );
        }
        assert!(
            !f.iter().any(|(_, s)| s == "a@b" || s.contains("invalid")),
            "{f:?}"
        );
    }

    #[test]
    fn code_and_times_are_not_addresses() {
        let f = found("std::vector<int> at 12:30:45 and Foo::bar and 10:00");
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn a_pem_block_is_one_finding() {
        let text = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----\nthanks";
        let f = found(text);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].1.starts_with("-----BEGIN") && f[0].1.ends_with("KEY-----"));
    }

    /// Public halves and look-alikes are no secrets: a public key or certificate block, a
    /// three-part token whose header is no JWT header, a placeholder for a password; a key in a
    /// URL's query ends at the next parameter.
    #[test]
    fn public_blocks_placeholders_and_query_values_are_cut_right() {
        for text in [
            "key:\n-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----\nthanks",
            "cert:\n-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkq\n-----END CERTIFICATE-----\n",
        ] {
            let f = found(text);
            assert!(
                !f.iter().any(|(e, _)| *e == Entity::SecretPrivateKey),
                "{f:?}"
            );
        }
        // `{"sub":"1"}` as a header: no `alg` or `typ`, so no JWT.
        let f = found("id eyJzdWIiOiIxIn0.eyJuYW1lIjoiYSJ9.c2lnbmF0dXJl done");
        assert!(!f.iter().any(|(e, _)| *e == Entity::SecretJwt), "{f:?}");
        for placeholder in ["REDACTED", "hidden", "undefined", "********"] {
            let f = found(&format!("password={placeholder} here"));
            assert!(f.is_empty(), "{placeholder}: {f:?}");
        }
        let f = found("GET https://api.example.com/v1?key=Zx81kQ2mN4pL7vR9tY3w&callback=fn now");
        assert!(
            f.contains(&(Entity::SecretGeneric, "Zx81kQ2mN4pL7vR9tY3w".to_string())),
            "{f:?}"
        );
        assert!(!f.iter().any(|(_, s)| s.contains("callback")), "{f:?}");
    }
}
