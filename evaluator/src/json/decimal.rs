//! Conversion of decimal numbers to the nearest f64: Eisel–Lemire for
//! up to 19 digits, and a reader of the usual shape of numbers (Python's
//! reprs of times and scores) that takes a whole number at once with SSE2
//! instead of a digit at a time.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// `10^k` for `k` in `0..=19`.
#[cfg(target_arch = "x86_64")]
const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        t[k] = t[k - 1] * 10;
        k += 1;
    }
    t
};

/// Where the parts of a number of the usual shape lie.
#[cfg(target_arch = "x86_64")]
struct Shape {
    negative: bool,
    /// Offset of the first digit.
    start: usize,
    /// Digits before the '.' (1..=8).
    n_int: usize,
    /// Digits after it (1..=18; 19 in all at most).
    n_frac: usize,
}

#[cfg(target_arch = "x86_64")]
impl Shape {
    /// The offset after the number.
    fn end(&self) -> usize {
        self.start + self.n_int + 1 + self.n_frac
    }
}

/// The shape of a number of the usual shape, `-?D{1,8}.D{1,18}` with at
/// most 19 digits and no exponent, at `pos` of `b`, which it checks as
/// JSON does; `None` for any other shape, and within 32 bytes of either
/// end of `b`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn usual_shape(b: &[u8], pos: usize) -> Option<Shape> {
    let negative = b.get(pos) == Some(&b'-');
    let start = pos + negative as usize;
    // Every read of the number lies in start - 16 .. start + 32.
    if start < 16 || start + 32 > b.len() {
        return None;
    }
    let w: &[u8; 32] = b[start..start + 32].try_into().expect("32 bytes");
    let digit = digit_mask(&w[..16]) | digit_mask(&w[16..]) << 16;
    let n_int = (!digit).trailing_zeros() as usize;
    // No digit, a leading zero, more than 8 digits, or no fraction.
    if n_int == 0 || n_int > 8 || (n_int > 1 && w[0] == b'0') || w[n_int] != b'.' {
        return None;
    }
    let n_frac = (!(digit >> (n_int + 1))).trailing_zeros() as usize;
    // n_frac <= 18 leaves the byte after the number within `w`.
    if n_frac == 0 || n_int + n_frac > 19 || w[n_int + 1 + n_frac] | 0x20 == b'e' {
        return None;
    }
    Some(Shape {
        negative,
        start,
        n_int,
        n_frac,
    })
}

/// Reads a number of the usual shape (see `usual_shape`) at `pos` of `b`:
/// its value correctly rounded and the offset after it. `None` for any
/// other shape; the general reader takes those (and reports what is not
/// JSON).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn short_decimal(b: &[u8], pos: usize) -> Option<(f64, usize)> {
    let shape = usual_shape(b, pos)?;
    let Shape {
        negative,
        start: s,
        n_int,
        n_frac,
    } = shape;
    let (f, end) = (s + n_int + 1, shape.end());
    let last16 = last_digits16(
        b[end - 16..end].try_into().expect("16 bytes"),
        n_frac.min(16),
    );
    // The fraction's first one or two digits when it has 17 or 18
    // (selected by arithmetic: the lengths vary from number to number).
    let (d0, d1) = (
        b[f].wrapping_sub(b'0') as u64,
        b[f + 1].wrapping_sub(b'0') as u64,
    );
    let top = d0 * (n_frac == 17) as u64 + (d0 * 10 + d1) * (n_frac == 18) as u64;
    let int = last_digits8(
        b[s + n_int - 8..s + n_int].try_into().expect("8 bytes"),
        n_int,
    );
    let mantissa = int * POW10_U64[n_frac] + top * POW10_U64[16] + last16;
    let v = if mantissa == 0 {
        0.0
    } else {
        eisel_lemire(mantissa, -(n_frac as i32))
    };
    Some((if negative { -v } else { v }, end))
}

/// The offset after a number of the usual shape at `pos` of `b`, checked
/// but not converted (for numbers that are skipped).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn short_decimal_end(b: &[u8], pos: usize) -> Option<usize> {
    usual_shape(b, pos).map(|shape| shape.end())
}

/// Elsewhere the general reader reads every number.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn short_decimal(_: &[u8], _: usize) -> Option<(f64, usize)> {
    None
}

/// Elsewhere the general reader skips every number.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn short_decimal_end(_: &[u8], _: usize) -> Option<usize> {
    None
}

/// Bit i set when byte i of the 16 is an ASCII digit.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn digit_mask(w: &[u8]) -> u32 {
    let v = load16(w.try_into().expect("16 bytes"));
    // SAFETY: SSE2 is part of every x86_64 target.
    unsafe {
        let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        // d <= 9 as an unsigned byte: a digit.
        let is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
        _mm_movemask_epi8(is_digit) as u32
    }
}

/// The value of the last `k` (0..=16) of 16 bytes, which are digits, the
/// first most significant: the bytes before them count as '0'.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn last_digits16(w: &[u8; 16], k: usize) -> u64 {
    const LANES: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    let (v, lanes) = (load16(w), load16(&LANES));
    // SAFETY: SSE2 is part of every x86_64 target.
    let both = unsafe {
        let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let keep = _mm_cmpgt_epi8(lanes, _mm_set1_epi8(15 - k as i8));
        let d = _mm_and_si128(d, keep);
        // Pairs, fours, then eights of digits, by multiply-adds of 16-bit
        // lanes with (10, 1), (100, 1) and (10000, 1).
        let zero = _mm_setzero_si128();
        let tens = _mm_set1_epi32(0x0001_000A);
        let pairs = _mm_packs_epi32(
            _mm_madd_epi16(_mm_unpacklo_epi8(d, zero), tens),
            _mm_madd_epi16(_mm_unpackhi_epi8(d, zero), tens),
        );
        let fours = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_0064));
        let eights = _mm_madd_epi16(_mm_packs_epi32(fours, fours), _mm_set1_epi32(0x0001_2710));
        _mm_cvtsi128_si64(eights) as u64
    };
    (both & 0xFFFF_FFFF) * 100_000_000 + (both >> 32)
}

/// 16 bytes as an SSE2 vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn load16(w: &[u8; 16]) -> __m128i {
    // SAFETY: reads the 16 bytes of `w`; SSE2 loads need no alignment.
    unsafe { _mm_loadu_si128(w.as_ptr().cast()) }
}

/// The value of the last `k` (0..=8) of 8 bytes, which are digits, the
/// first most significant: the bytes before them count as '0'.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn last_digits8(w: &[u8; 8], k: usize) -> u64 {
    let x = u64::from_le_bytes(*w);
    // The last k bytes are the high ones of the little-endian word.
    let keep = u64::MAX.checked_shl(64 - 8 * k as u32).unwrap_or(0);
    let x = ((x & keep) | (0x3030_3030_3030_3030 & !keep)) - 0x3030_3030_3030_3030;
    // Pairs, fours, then all eight (the first byte most significant).
    let x = (x * 10 + (x >> 8)) & 0x00FF_00FF_00FF_00FF;
    let x = (x * 100 + (x >> 16)) & 0x0000_FFFF_0000_FFFF;
    (x * 10_000 + (x >> 32)) & 0xFFFF_FFFF
}

/// Largest |power of ten| handled by [`eisel_lemire`].
pub(super) const MAX_POW10: i32 = 22;

/// `5^q` for `q` in `-22..=22`, as the 128 most significant bits of its
/// binary expansion (top bit set), truncated for `q >= 0` and rounded up
/// for `q < 0` (the reciprocal `2^b / 5^-q + 1`), as Eisel–Lemire needs.
const POW5_128: [u128; 2 * MAX_POW10 as usize + 1] = {
    let mut t = [0u128; 2 * MAX_POW10 as usize + 1];
    let mut q = -MAX_POW10;
    while q <= MAX_POW10 {
        let mut p5: u128 = 1;
        let mut i = 0;
        while i < q.unsigned_abs() {
            p5 *= 5;
            i += 1;
        }
        t[(q + MAX_POW10) as usize] = if q >= 0 {
            p5 << p5.leading_zeros()
        } else {
            // floor(2^b / 5^k) + 1 with b = bits(5^k) + 127: a quotient in
            // [2^127, 2^128), by long division one bit at a time.
            let z = 128 - (p5 - 1).leading_zeros(); // smallest z: 2^z >= 5^k
            let b = z + 127;
            let mut quotient: u128 = 0;
            let mut rem: u128 = 0;
            let mut bit = b as i32;
            while bit >= 0 {
                rem = rem * 2 + if bit == b as i32 { 1 } else { 0 };
                quotient = quotient.wrapping_shl(1);
                if rem >= p5 {
                    rem -= p5;
                    quotient |= 1;
                }
                bit -= 1;
            }
            quotient + 1
        };
        q += 1;
    }
    t
};

/// `w × 10^q` correctly rounded to the nearest f64 (ties to even), for
/// `w > 0` and `|q| <= 22`: the Eisel–Lemire algorithm (Lemire, "Number
/// Parsing at a Gigabyte per Second", 2021), which for exponents in
/// `-27..=55` never needs its slow fallback. No subnormal or infinite
/// result is possible in this range.
#[inline(always)]
pub(super) fn eisel_lemire(w: u64, q: i32) -> f64 {
    debug_assert!(w > 0 && q.abs() <= MAX_POW10);
    const MANTISSA_BITS: i32 = 52;
    let lz = w.leading_zeros();
    let w = w << lz;
    let pow5 = POW5_128[(q + MAX_POW10) as usize];
    let (p_hi, p_lo) = ((pow5 >> 64) as u64, pow5 as u64);
    // The product's top 128 bits, the low word's contribution added only
    // when the top word alone cannot decide the 55 bits kept.
    let first = (w as u128) * (p_hi as u128);
    let (mut lo, mut hi) = (first as u64, (first >> 64) as u64);
    let mask = u64::MAX >> (MANTISSA_BITS + 3);
    if hi & mask == mask {
        let second_hi = ((w as u128 * p_lo as u128) >> 64) as u64;
        lo = lo.wrapping_add(second_hi);
        if second_hi > lo {
            hi += 1;
        }
    }
    let upper = (hi >> 63) as i32;
    let shift = upper + 64 - MANTISSA_BITS - 3;
    let mut mantissa = hi >> shift;
    // floor(q × log2(10)) + 63, then the exponent's bias.
    let mut power2 = ((q.wrapping_mul(152_170 + 65_536) >> 16) + 63) + upper - lz as i32 + 1023;
    debug_assert!(power2 > 0);
    // An exact halfway case between two floats rounds to even.
    if lo <= 1 && (-4..=23).contains(&q) && mantissa & 3 == 1 && (mantissa << shift) == hi {
        mantissa &= !1;
    }
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if mantissa >= 2 << MANTISSA_BITS {
        mantissa = 1 << MANTISSA_BITS;
        power2 += 1;
    }
    mantissa &= !(1 << MANTISSA_BITS);
    f64::from_bits(((power2 as u64) << MANTISSA_BITS) | mantissa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Parser;

    /// A small deterministic generator.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// `n` pseudo-random decimal digits.
        fn digits(&mut self, n: u64) -> String {
            (0..n)
                .map(|_| char::from(b'0' + (self.next() % 10) as u8))
                .collect()
        }
    }

    #[test]
    fn short_decimals_read_as_the_general_path_and_std() {
        // Numbers of every length around the limits (8 integer digits, 19
        // in all, 16 and 32 bytes), in the places they appear in files,
        // near both ends of the input, each read by the parser (which
        // takes the fast path where it applies) and by the general path.
        let mut rng = XorShift(777);
        let heads = ["", "[", "{\"results\": {\"v\": [{\"segment\": ["];
        let tails = [
            "",
            ", 1.5]",
            "], \"score\": 0.25}, {\"segment\": [1, 2], \"score\": 0.5}",
            "e3, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]",
            "E-2 , 1.5, 2.5, 3.5, 4.5, 5.5, 6.5]",
            ".5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]",
            "x234567890123456789012345678901234",
        ];
        let mut fast = 0;
        for _ in 0..30_000 {
            let int = match rng.next() % 4 {
                0 => "0".to_string(),
                1 => {
                    let n = 1 + rng.next() % 3;
                    format!("0{}", rng.digits(n))
                }
                _ => {
                    let n = 1 + rng.next() % 10;
                    format!("{}{}", 1 + rng.next() % 9, rng.digits(n - 1))
                }
            };
            let frac_len = rng.next() % 24;
            let frac = rng.digits(frac_len);
            let sign = if rng.next().is_multiple_of(3) {
                "-"
            } else {
                ""
            };
            let dot = if frac.is_empty() && rng.next().is_multiple_of(2) {
                ""
            } else {
                "."
            };
            let number = format!("{sign}{int}{dot}{frac}");
            for head in heads {
                for tail in tails {
                    let text = format!("{head}{number}{tail}");
                    let bytes = text.as_bytes();
                    let (mut a, mut b) = (
                        Parser::new(bytes, head.len()),
                        Parser::new(bytes, head.len()),
                    );
                    match (a.number("a number"), b.number_general("a number")) {
                        (Ok(x), Ok(y)) => {
                            assert_eq!(x.to_bits(), y.to_bits(), "{text}");
                            assert_eq!(a.pos, b.pos, "{text}");
                            let std: f64 = text[head.len()..b.pos].parse().unwrap();
                            assert_eq!(x.to_bits(), std.to_bits(), "{text}");
                        }
                        (Err(x), Err(y)) => assert_eq!(x.offset, y.offset, "{text}"),
                        (x, y) => panic!("{text}: {x:?} vs {y:?}"),
                    }
                    let read = short_decimal(bytes, head.len());
                    assert_eq!(short_decimal_end(bytes, head.len()), read.map(|r| r.1));
                    fast += read.is_some() as usize;
                }
            }
        }
        if cfg!(target_arch = "x86_64") {
            assert!(fast > 20_000, "the fast path was taken {fast} times");
        } else {
            assert_eq!(fast, 0, "there is no fast path off x86_64");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn last_digits_of_words() {
        for text in [
            "", "7", "[12", "x1234567", "12345678", "0.034567", "99999999",
        ] {
            let mut bytes = [b'x'; 8];
            bytes[8 - text.len()..].copy_from_slice(text.as_bytes());
            let k = text.bytes().rev().take_while(u8::is_ascii_digit).count();
            let want: u64 = text[text.len() - k..].parse().unwrap_or(0);
            assert_eq!(last_digits8(&bytes, k), want, "{text}");
        }
        #[cfg(target_arch = "x86_64")]
        for text in [
            "",
            "5",
            "[0.25, 3.0000001",
            "0123456789012345",
            "-9999999999999999",
        ] {
            let text = &text[text.len().saturating_sub(16)..];
            let mut bytes = [b' '; 16];
            bytes[16 - text.len()..].copy_from_slice(text.as_bytes());
            let k = text.bytes().rev().take_while(u8::is_ascii_digit).count();
            let want: u64 = text[text.len() - k..].parse().unwrap_or(0);
            assert_eq!(last_digits16(&bytes, k), want, "{text}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn digit_masks() {
        let w = *b"12.5x\x00\xff/:90 \xb0-7,";
        let want = w
            .iter()
            .enumerate()
            .map(|(i, c)| (c.is_ascii_digit() as u32) << i)
            .sum::<u32>();
        assert_eq!(digit_mask(&w), want);
    }

    #[test]
    fn pow5_table_has_the_known_entries() {
        // 5^0, 5^1, 5^-1 and 5^-2 as the 128-bit significands Eisel–Lemire
        // uses (5^-k rounded up).
        let at = |q: i32| POW5_128[(q + MAX_POW10) as usize];
        assert_eq!(at(0), 1 << 127);
        assert_eq!(at(1), 0xa000_0000_0000_0000u128 << 64);
        assert_eq!(at(-1), 0xcccc_cccc_cccc_cccc_cccc_cccc_cccc_cccd);
        assert_eq!(at(-2), 0xa3d7_0a3d_70a3_d70a_3d70_a3d7_0a3d_70a4);
        assert!(POW5_128.iter().all(|&x| x >> 127 == 1));
    }

    #[test]
    fn eisel_lemire_on_positive_exponents_and_halfway_cases() {
        let mut x: u64 = 4242;
        for i in 0..100_000u64 {
            crate::numeric::xorshift64(&mut x);
            // Mantissas near 2^53..2^64 with trailing bits that make ties.
            let m = match i % 3 {
                0 => x % 10_000_000_000_000_000_000,
                1 => ((x >> 11) | 1) << 11,
                _ => (1u64 << 53) + (x % 4) * 2 + 1,
            }
            .max(1);
            let q = (x >> 50) as i32 % 23;
            let q = if i % 2 == 0 { q } else { -q };
            let text = format!("{m}e{q}");
            let want: f64 = text.parse().unwrap();
            assert_eq!(eisel_lemire(m, q).to_bits(), want.to_bits(), "{text}");
        }
    }
}
