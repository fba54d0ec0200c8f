//! Byte classes eight at a time ("SIMD within a register"): the number scan, which looks for
//! digits in every byte of a text, tests a `u64` of eight bytes in a few instructions instead of
//! one test and branch per byte. (The word scan tried the same for a word's end and lost: words
//! are short, so a load of eight bytes per word costs more than the bytes' own loop.)
//!
//! The tests are exact per byte (the bit tricks of *Bit Twiddling Hacks*, "determine if a word
//! has a byte between m and n", with the high bit masked off first so no carry crosses a byte),
//! so the first set flag is the first byte of the class. A proptest holds them to the naive
//! loops.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES * 0x80;
const LOW7: u64 = ONES * 0x7F;

/// For each byte of `x`: its high bit set when the byte is strictly between `m` and `n`
/// (`m < n <= 128`), every other bit clear.
#[inline(always)]
const fn between(x: u64, m: u64, n: u64) -> u64 {
    let lo = x & LOW7;
    (ONES * (127 + n) - lo) & !x & (lo + ONES * (127 - m)) & HIGH
}

/// For each byte of `x`: its high bit set when the byte is `c`.
#[inline(always)]
const fn equal(x: u64, c: u8) -> u64 {
    let y = x ^ (ONES * c as u64);
    !(((y & LOW7) + LOW7) | y) & HIGH
}

/// Whether each byte of `x` is plain text: printable ASCII (`0x20`–`0x7E`), tab, line feed or
/// carriage return.
#[inline(always)]
pub fn all_printable(x: u64) -> bool {
    let printable = between(x, 0x1F, 0x7F);
    printable == HIGH || printable | equal(x, b'\t') | equal(x, b'\n') | equal(x, b'\r') == HIGH
}

#[inline(always)]
fn load(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// The first index at or after `i` whose byte is an ASCII digit (`b.len()` if none).
pub fn next_digit(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let m = between(load(b, i), 0x2F, 0x3A);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_digit(b: &[u8], i: usize) -> usize {
        (i..b.len())
            .find(|&j| b[j].is_ascii_digit())
            .unwrap_or(b.len())
    }

    #[test]
    fn every_byte_is_classed_as_the_naive_test_says() {
        for c in 0..=255u8 {
            let mut b = [b' '; 16];
            b[3] = c;
            assert_eq!(next_digit(&b, 0), naive_digit(&b, 0), "byte {c:#x}");
            let mut d = [b'7'; 16];
            d[..5].fill(c);
            assert_eq!(next_digit(&d, 0), naive_digit(&d, 0), "byte {c:#x}");
            let mut p = [b'a'; 8];
            p[6] = c;
            assert_eq!(
                all_printable(u64::from_le_bytes(p)),
                (0x20..0x7F).contains(&c) || matches!(c, b'\t' | b'\n' | b'\r'),
                "byte {c:#x}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_same_as_the_naive_loop(
            b in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'Z'), Just(b'5'), Just(b'-'), Just(b'_'), Just(b' '),
                    Just(b'@'), Just(b'['), Just(b'`'), Just(b'{'), Just(b'/'), Just(b':'),
                    Just(0xC3u8), Just(0xE1u8), Just(0xFFu8), any::<u8>()],
                0..40),
            at in 0usize..40,
        ) {
            let i = at.min(b.len());
            prop_assert_eq!(next_digit(&b, i), naive_digit(&b, i));
        }
    }
}
