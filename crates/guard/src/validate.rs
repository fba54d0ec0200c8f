//! Validators: the checksums and structure rules that turn a pattern match into a validated
//! finding (score 1.0), or drop it.
//!
//! Every function takes the candidate's significant characters only (digits, or the alphanumeric
//! characters with separators removed) and never panics, whatever it is given.

use sha2::{Digest, Sha256};

/// Decimal digits of `s` as numbers; `None` if any character is not an ASCII digit.
fn digits(s: &str) -> Option<Digits> {
    let b = s.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = |c: &u8| u32::from(c - b'0');
    Some(if b.len() <= STACK_DIGITS {
        let mut buf = [0u32; STACK_DIGITS];
        for (d, c) in buf.iter_mut().zip(b) {
            *d = value(c);
        }
        Digits::Stack(buf, b.len())
    } else {
        Digits::Heap(b.iter().map(value).collect())
    })
}

/// Every identifier checked here has fewer digits: they stay on the stack.
const STACK_DIGITS: usize = 32;

/// The digits of a string as numbers. Validators run for every candidate of the number scan, so
/// they must not allocate.
enum Digits {
    Stack([u32; STACK_DIGITS], usize),
    Heap(Vec<u32>),
}

impl std::ops::Deref for Digits {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        match self {
            Digits::Stack(buf, n) => &buf[..*n],
            Digits::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Digits {
    fn deref_mut(&mut self) -> &mut [u32] {
        match self {
            Digits::Stack(buf, n) => &mut buf[..*n],
            Digits::Heap(v) => v,
        }
    }
}

/// Luhn (mod 10): cards, Canadian SIN, Swedish personnummer, US NPI.
pub fn luhn(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether every digit of `s` is the same (`0000 0000 0000 0000` passes Luhn but is no card).
pub fn one_repeated_digit(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(|f| b.iter().all(|x| x == f))
}

/// Payment-card issuer prefixes (IIN ranges) and their lengths.
pub fn card_issuer(s: &str) -> Option<&'static str> {
    let n = s.len();
    // The leading `k` digits as a number (0 if they are not all digits), each read once.
    let lead = |k: usize| {
        s.as_bytes()
            .get(..k)
            .filter(|x| x.iter().all(u8::is_ascii_digit))
            .map_or(0, |x| {
                x.iter().fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
            })
    };
    let (p2, p3, p4, p6) = (lead(2), lead(3), lead(4), lead(6));
    let p = |k: usize| match k {
        2 => p2,
        3 => p3,
        4 => p4,
        _ => p6,
    };
    match () {
        _ if s.starts_with('4') && matches!(n, 13 | 16 | 19) => Some("visa"),
        _ if (51..=55).contains(&p(2)) && n == 16 => Some("mastercard"),
        _ if (2221..=2720).contains(&p(4)) && n == 16 => Some("mastercard"),
        _ if matches!(p(2), 34 | 37) && n == 15 => Some("amex"),
        _ if (p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)))
            && (16..=19).contains(&n) =>
        {
            Some("discover")
        }
        _ if (622_126..=622_925).contains(&p(6)) && (16..=19).contains(&n) => Some("discover"),
        _ if (3528..=3589).contains(&p(4)) && (16..=19).contains(&n) => Some("jcb"),
        _ if ((300..=305).contains(&p(3)) || p(2) == 36 || p(2) == 38 || p(2) == 39)
            && (14..=19).contains(&n) =>
        {
            Some("diners")
        }
        _ if p(2) == 62 && (16..=19).contains(&n) => Some("unionpay"),
        // Maestro allows 12-19 digits, but under 16 the numbers are rare and most 12- and 13-digit
        // numbers starting 5 or 6 are barcodes and tracking numbers.
        _ if (p(2) == 50 || (56..=69).contains(&p(2))) && (16..=19).contains(&n) => Some("maestro"),
        _ if p(4) == 2200 || p(4) == 2201 || (2202..=2204).contains(&p(4)) && n == 16 => {
            Some("mir")
        }
        _ => None,
    }
}

/// A payment card number: issuer range, Luhn, not one repeated digit.
pub fn credit_card(s: &str) -> bool {
    (12..=19).contains(&s.len()) && !one_repeated_digit(s) && card_issuer(s).is_some() && luhn(s)
}

/// IBAN lengths per country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// An IBAN (separators removed, any case): the country's length, digits where they must be,
/// and mod 97 = 1.
pub fn iban(s: &str) -> bool {
    let s = s.to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() < 15 || b.len() > 34 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    if !(b[0].is_ascii_uppercase() && b[1].is_ascii_uppercase()) {
        return false;
    }
    if !(b[2].is_ascii_digit() && b[3].is_ascii_digit()) {
        return false;
    }
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == &b[..2]) else {
        return false;
    };
    if b.len() != len {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(&b[..4]) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// A US social security number (9 digits): area not 000, 666 or 9xx; group not 00; serial not
/// 0000; and not the well-known advertising numbers.
pub fn us_ssn(s: &str) -> bool {
    if s.len() != 9 || digits(s).is_none() {
        return false;
    }
    let (area, group, serial) = (&s[..3], &s[3..5], &s[5..]);
    !(area == "000"
        || area == "666"
        || area.starts_with('9')
        || group == "00"
        || serial == "0000"
        || s == "078051120"
        || s == "219099999"
        || one_repeated_digit(s))
}

/// A US ITIN: 9xx-[50-65|70-88|90-92|94-99]-xxxx.
pub fn us_itin(s: &str) -> bool {
    if s.len() != 9 || digits(s).is_none() || !s.starts_with('9') {
        return false;
    }
    let g: u32 = s[3..5].parse().unwrap_or(0);
    matches!(g, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

/// A US NPI (10 digits): Luhn over `80840` + the number.
pub fn us_npi(s: &str) -> bool {
    s.len() == 10 && matches!(s.as_bytes()[0], b'1' | b'2') && luhn(&format!("80840{s}"))
}

/// An ABA routing number (9 digits): weights 3, 7, 1, sum mod 10 = 0, a valid Federal Reserve
/// prefix.
pub fn aba_routing(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 9 {
        return false;
    }
    let prefix = d[0] * 10 + d[1];
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) || one_repeated_digit(s) {
        return false;
    }
    let w = [3, 7, 1];
    d.iter().enumerate().map(|(i, x)| x * w[i % 3]).sum::<u32>() % 10 == 0
}

/// UK NHS number (10 digits): mod 11 check digit.
pub fn uk_nhs(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 10 || one_repeated_digit(s) {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, x)| x * (10 - i as u32))
        .sum();
    let check = 11 - sum % 11;
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == d[9]
}

/// UK National Insurance number (letters and digits, separators removed): the prefix rules of
/// HMRC (no D, F, I, Q, U, V; no O second; not BG, GB, KN, NK, NT, TN, ZZ) and suffix A-D.
pub fn uk_nino(s: &str) -> bool {
    let b = s.to_ascii_uppercase().into_bytes();
    if b.len() != 9 {
        return false;
    }
    let bad1 = b"DFIQUV";
    let bad2 = b"DFIQUVO";
    if !b[0].is_ascii_uppercase()
        || !b[1].is_ascii_uppercase()
        || bad1.contains(&b[0])
        || bad2.contains(&b[1])
    {
        return false;
    }
    let prefix = &b[..2];
    if [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"]
        .iter()
        .any(|p| &p[..] == prefix)
    {
        return false;
    }
    b[2..8].iter().all(u8::is_ascii_digit) && (b'A'..=b'D').contains(&b[8])
}

/// Canadian SIN (9 digits): Luhn, not starting with 0 or 8.
pub fn ca_sin(s: &str) -> bool {
    s.len() == 9 && !matches!(s.as_bytes()[0], b'0' | b'8') && !one_repeated_digit(s) && luhn(s)
}

const NIF_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Spanish NIF (DNI): 8 digits and the letter of their value mod 23.
pub fn es_nif(s: &str) -> bool {
    let b = s.to_ascii_uppercase().into_bytes();
    if b.len() != 9 || !b[..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n: u32 = std::str::from_utf8(&b[..8])
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    NIF_LETTERS[(n % 23) as usize] == b[8]
}

/// Spanish NIE: X, Y or Z (as 0, 1, 2), 7 digits, and the letter mod 23.
pub fn es_nie(s: &str) -> bool {
    let b = s.to_ascii_uppercase().into_bytes();
    if b.len() != 9 {
        return false;
    }
    let lead = match b[0] {
        b'X' => '0',
        b'Y' => '1',
        b'Z' => '2',
        _ => return false,
    };
    let mut d = String::with_capacity(9);
    d.push(lead);
    d.push_str(std::str::from_utf8(&b[1..8]).unwrap_or("x"));
    d.push(b[8] as char);
    es_nif(&d)
}

/// Italian codice fiscale (16 characters): the layout (with omocodia letters in digit places)
/// and the check character.
pub fn it_fiscal_code(s: &str) -> bool {
    let b = s.to_ascii_uppercase().into_bytes();
    if b.len() != 16 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    const OMO: &[u8] = b"LMNPQRSTUV";
    let digitish = |c: u8| c.is_ascii_digit() || OMO.contains(&c);
    let letters = [0, 1, 2, 3, 4, 5, 8, 11, 15];
    let digit_places = [6, 7, 9, 10, 12, 13, 14];
    if !letters.iter().all(|&i| b[i].is_ascii_uppercase())
        || !digit_places.iter().all(|&i| digitish(b[i]))
    {
        return false;
    }
    if !b"ABCDEHLMPRST".contains(&b[8]) {
        return false;
    }
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let value = |c: u8| -> usize {
        if c.is_ascii_digit() {
            usize::from(c - b'0')
        } else {
            usize::from(c - b'A')
        }
    };
    let mut sum = 0u32;
    for (i, &c) in b[..15].iter().enumerate() {
        let v = value(c);
        // Positions are 1-based in the specification: odd positions use the table.
        sum += if i % 2 == 0 { ODD[v] } else { v as u32 };
    }
    b[15] == b'A' + (sum % 26) as u8
}

/// Polish PESEL (11 digits): weights 1, 3, 7, 9 and a valid birth date.
pub fn pl_pesel(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 11 || one_repeated_digit(s) {
        return false;
    }
    let w = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = d[..10].iter().zip(w).map(|(x, w)| x * w).sum();
    if (10 - sum % 10) % 10 != d[10] {
        return false;
    }
    let month = (d[2] * 10 + d[3]) % 20;
    let day = d[4] * 10 + d[5];
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// German tax id (Steuerliche Identifikationsnummer, 11 digits): ISO 7064 MOD 11,10, first
/// digit not 0, and in the first ten digits one digit twice or thrice, the others at most once.
pub fn de_tax_id(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[x as usize] += 1;
    }
    let repeated = counts.iter().filter(|&&c| c > 1).count();
    if repeated != 1 || counts.iter().any(|&c| c > 3) {
        return false;
    }
    let mut product = 10;
    for &x in &d[..10] {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == d[10]
}

/// Swedish personnummer (10 or 12 digits, `YYMMDD-NNNC`): a valid date (or coordination
/// number, day + 60) and Luhn over the last 10 digits.
pub fn se_personnummer(s: &str) -> bool {
    if digits(s).is_none() || !(s.len() == 10 || s.len() == 12) {
        return false;
    }
    let ten = &s[s.len() - 10..];
    let month: u32 = ten[2..4].parse().unwrap_or(0);
    let day: u32 = ten[4..6].parse().unwrap_or(0);
    let day = if day > 60 { day - 60 } else { day };
    (1..=12).contains(&month) && (1..=31).contains(&day) && luhn(ten)
}

const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// Verhoeff checksum over all digits of `s`.
pub fn verhoeff(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    let mut c = 0u8;
    for (i, &x) in d.iter().rev().enumerate() {
        c = VERHOEFF_D[c as usize][VERHOEFF_P[i % 8][x as usize] as usize];
    }
    !d.is_empty() && c == 0
}

/// Indian Aadhaar (12 digits): first digit 2-9, Verhoeff, not a palindrome-like repeat.
pub fn in_aadhaar(s: &str) -> bool {
    s.len() == 12
        && !matches!(s.as_bytes()[0], b'0' | b'1')
        && !one_repeated_digit(s)
        && verhoeff(s)
}

/// Australian TFN (8 or 9 digits): weighted sum mod 11 = 0.
pub fn au_tfn(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    let w: &[u32] = match d.len() {
        9 => &[1, 4, 3, 7, 5, 8, 6, 9, 10],
        8 => &[10, 7, 8, 4, 6, 3, 5, 1],
        _ => return false,
    };
    !one_repeated_digit(s) && d.iter().zip(w).map(|(x, w)| x * w).sum::<u32>() % 11 == 0
}

/// Australian ABN (11 digits): subtract 1 from the first digit, weights, mod 89 = 0.
pub fn au_abn(s: &str) -> bool {
    let Some(mut d) = digits(s) else { return false };
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    d[0] -= 1;
    let w = [10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
    d.iter().zip(w).map(|(x, w)| x * w).sum::<u32>() % 89 == 0
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Base58Check (Bitcoin P2PKH / P2SH addresses): decodes to 25 bytes whose last four are the
/// double SHA-256 of the rest, version byte 0 or 5.
pub fn base58check(s: &str) -> bool {
    if s.len() > 64 {
        return false;
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(32);
    for c in s.bytes() {
        let Some(v) = BASE58.iter().position(|&x| x == c) else {
            return false;
        };
        let mut carry = v as u32;
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut full = vec![0u8; zeros];
    full.extend(bytes);
    // Bitcoin P2PKH 0 and P2SH 5, Litecoin 48 (`L…`) and 50 (`M…`).
    if full.len() != 25 || !matches!(full[0], 0 | 5 | 48 | 50) {
        return false;
    }
    let hash = Sha256::digest(Sha256::digest(&full[..21]));
    hash[..4] == full[21..]
}

/// Bech32 / Bech32m segwit address (`bc1…`, `tb1…`): charset, one case, checksum of the right
/// variant for the witness version.
pub fn bech32_address(s: &str) -> bool {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    if s.len() < 14 || s.len() > 90 {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if lower != s && s.to_ascii_uppercase() != s {
        return false;
    }
    let Some(sep) = lower.rfind('1') else {
        return false;
    };
    let (hrp, data) = (&lower[..sep], &lower[sep + 1..]);
    if !matches!(hrp, "bc" | "tb" | "ltc") || data.len() < 7 {
        return false;
    }
    let mut values = Vec::with_capacity(data.len());
    for c in data.bytes() {
        let Some(v) = CHARSET.iter().position(|&x| x == c) else {
            return false;
        };
        values.push(v as u32);
    }
    let polymod = |vals: &[u32]| -> u32 {
        const GEN: [u32; 5] = [
            0x3b6a_57b2,
            0x2650_8e6d,
            0x1ea1_19fa,
            0x3d42_33dd,
            0x2a14_62b3,
        ];
        let mut chk = 1u32;
        for &v in vals {
            let b = chk >> 25;
            chk = ((chk & 0x01ff_ffff) << 5) ^ v;
            for (i, g) in GEN.iter().enumerate() {
                if (b >> i) & 1 == 1 {
                    chk ^= g;
                }
            }
        }
        chk
    };
    let mut all: Vec<u32> = hrp.bytes().map(|c| u32::from(c) >> 5).collect();
    all.push(0);
    all.extend(hrp.bytes().map(|c| u32::from(c) & 31));
    all.extend(&values);
    let check = polymod(&all);
    match values[0] {
        0 => check == 1,
        1..=16 => check == 0x2bc8_30a3,
        _ => false,
    }
}

/// EIP-55 mixed-case checksum of an Ethereum address (`0x` + 40 hex digits). All-lower and
/// all-upper addresses carry no checksum and return `None`.
pub fn eip55(s: &str) -> Option<bool> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(false);
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    if !(has_lower && has_upper) {
        return None;
    }
    let lower = hex.to_ascii_lowercase();
    let hash = sha3::Keccak256::digest(lower.as_bytes());
    Some(hex.bytes().enumerate().all(|(i, c)| {
        if !c.is_ascii_alphabetic() {
            return true;
        }
        let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
        (nibble >= 8) == c.is_ascii_uppercase()
    }))
}

/// A MAC address of six hex pairs joined by `sep` (`00:1A:2B:3C:4D:5E`), neither all zero nor
/// the broadcast address.
pub fn mac_address(s: &str, sep: u8) -> bool {
    let b = s.as_bytes();
    let shaped = b.len() == 17
        && b.iter().enumerate().all(|(i, c)| {
            if i % 3 == 2 {
                *c == sep
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let all = |f: fn(&u8) -> bool| b.iter().filter(|c| **c != sep).all(f);
    shaped && !all(|c| *c == b'0') && !all(|c| c.eq_ignore_ascii_case(&b'f'))
}

/// Shannon entropy of `s` in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a JWT's first segment decodes (base64url) to a JSON object with an `alg`.
pub fn jwt_header(token: &str) -> bool {
    use base64::Engine;
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('='))
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .is_ok_and(|m| m.contains_key("alg") || m.contains_key("typ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_accept_known_values_and_reject_one_digit_off() {
        type Case = (fn(&str) -> bool, &'static str, &'static str);
        let cases: &[Case] = &[
            (credit_card, "4111111111111111", "4111111111111112"),
            (credit_card, "378282246310005", "378282246310006"),
            (credit_card, "5555555555554444", "5555555555554443"),
            (iban, "GB82WEST12345698765432", "GB82WEST12345698765433"),
            (iban, "DE89370400440532013000", "DE89370400440532013001"),
            (us_ssn, "123456789", "000456789"),
            (uk_nhs, "9434765919", "9434765918"),
            (ca_sin, "130692544", "130692545"),
            (es_nif, "12345678Z", "12345678A"),
            (es_nie, "X1234567L", "X1234567M"),
            (it_fiscal_code, "RSSMRA85T10A562S", "RSSMRA85T10A562T"),
            (pl_pesel, "44051401359", "44051401358"),
            (de_tax_id, "86095742719", "86095742718"),
            (se_personnummer, "8112189876", "8112189877"),
            (au_tfn, "123456782", "123456783"),
            (au_abn, "51824753556", "51824753557"),
            (us_npi, "1234567893", "1234567894"),
            (aba_routing, "011000015", "011000016"),
            (
                base58check,
                "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
                "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",
            ),
            (
                base58check,
                "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
                "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLz",
            ),
            (
                bech32_address,
                "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
                "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdp",
            ),
            (
                bech32_address,
                "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
                "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3298",
            ),
            (uk_nino, "AB123456C", "GB123456C"),
        ];
        for (f, good, bad) in cases {
            assert!(f(good), "{good} should pass");
            assert!(!f(bad), "{bad} should fail");
        }
    }

    #[test]
    fn verhoeff_and_eip55_vectors() {
        assert!(verhoeff("123451"));
        assert!(!verhoeff("123452"));
        assert_eq!(
            eip55("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Some(true)
        );
        assert_eq!(
            eip55("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"),
            Some(true)
        );
        assert_eq!(
            eip55("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            Some(false)
        );
        assert_eq!(eip55("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"), None);
    }

    #[test]
    fn cards_reject_repeats_and_unknown_issuers() {
        assert!(!credit_card("0000000000000000"));
        assert!(!credit_card("1234567812345670"), "no issuer starts with 1");
        assert!(!credit_card(""));
        assert!(!credit_card("4"));
    }

    #[test]
    fn jwt_header_must_decode() {
        assert!(jwt_header(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.sig"
        ));
        assert!(!jwt_header("eyJub3Rqc29u.x.y"));
    }
}
