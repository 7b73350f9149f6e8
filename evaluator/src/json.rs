//! A small, strict JSON pull parser over a byte slice.
//!
//! The evaluator reads tens of megabytes of JSON whose shape it knows; a pull
//! parser lets it read floats straight into its own types (correctly rounded,
//! by `str::parse::<f64>`), skip what it does not need, and cut the
//! `results` object into per-video byte ranges that are parsed on all cores.
//! Errors carry the byte offset; [`line_column`] turns it into a position.

use std::borrow::Cow;

use tcanet_cli::{found_non_finite, non_finite_literal};

mod decimal;

use decimal::{eisel_lemire, MAX_POW10};

/// A JSON syntax or shape error at a byte offset of the input.
#[derive(Debug, Clone)]
pub(crate) struct JsonError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What went wrong, for a human.
    pub message: String,
}

/// Where the parts of a number literal are.
struct NumberSpan {
    start: usize,
    negative: bool,
    /// The digits (integer then fraction) as an integer, wrapped when
    /// there are more than 19.
    mantissa: u64,
    /// How many digits.
    digits: u32,
    /// The exponent minus the number of fraction digits.
    exp10: i64,
}

/// Result of a parser step.
pub(crate) type JResult<T> = Result<T, JsonError>;

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Deepest nesting accepted (guards the recursion of [`Parser::skip_value`]).
pub(crate) const MAX_DEPTH: usize = 256;

/// A cursor over JSON text.
pub(crate) struct Parser<'a> {
    /// The whole input.
    pub bytes: &'a [u8],
    /// Current byte offset.
    pub pos: usize,
    /// Where the key last read by [`Parser::next_key`] starts.
    pub key_at: usize,
}

impl<'a> Parser<'a> {
    /// A parser at `pos` of `bytes`.
    pub fn new(bytes: &'a [u8], pos: usize) -> Self {
        Parser {
            bytes,
            pos,
            key_at: pos,
        }
    }

    /// An error at the current position.
    pub fn error(&self, message: impl Into<String>) -> JsonError {
        JsonError {
            offset: self.pos,
            message: message.into(),
        }
    }

    /// An error at a given offset.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> JsonError {
        JsonError {
            offset,
            message: message.into(),
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&c) = self.bytes.get(self.pos) {
            // Every blank is at most b' '; most bytes are above it.
            if c > b' ' || !(c == b' ' || c == b'\n' || c == b'\r' || c == b'\t') {
                break;
            }
            self.pos += 1;
        }
    }

    /// The next non-blank byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    /// The bytes from the current position on.
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// Describes the token at the current position for error messages.
    pub fn describe_here(&mut self) -> String {
        let next = self.peek();
        if let Some(literal) = non_finite_literal(self.rest()) {
            return literal.into();
        }
        match next {
            None => "the end of the file".into(),
            Some(b'{') => "an object".into(),
            Some(b'[') => "an array".into(),
            Some(b'"') => "a string".into(),
            Some(b't') | Some(b'f') => "a boolean".into(),
            Some(b'n') => "null".into(),
            Some(c) if c == b'-' || c.is_ascii_digit() => "a number".into(),
            Some(c) => format!("'{}'", char::from(c).escape_default()),
        }
    }

    /// Fails with "expected X, found Y" at the current position.
    pub fn expected<T>(&mut self, what: &str) -> JResult<T> {
        self.peek();
        if let Some(literal) = non_finite_literal(self.rest()) {
            return Err(self.error(format!("expected {what}, {}", found_non_finite(literal))));
        }
        let found = self.describe_here();
        Err(self.error(format!("expected {what}, found {found}")))
    }

    /// Consumes `c` or fails with "expected `what`".
    #[inline]
    pub fn expect_byte(&mut self, c: u8, what: &str) -> JResult<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.expected(what)
        }
    }

    /// Consumes `{`.
    pub fn begin_object(&mut self, what: &str) -> JResult<()> {
        self.expect_byte(b'{', what)
    }

    /// Consumes `[`.
    pub fn begin_array(&mut self, what: &str) -> JResult<()> {
        self.expect_byte(b'[', what)
    }

    /// The next key of an object begun with [`Parser::begin_object`], with
    /// its `:` consumed, or `None` at the closing brace. `first` must start
    /// `true` for each object.
    pub fn next_key(&mut self, first: &mut bool) -> JResult<Option<Cow<'a, str>>> {
        if !self.key_start(first)? {
            return Ok(None);
        }
        let key = self.string()?;
        self.expect_byte(b':', "':' after the key")?;
        Ok(Some(key))
    }

    /// As [`Parser::next_key`], recognising the `known` keys (plain ASCII,
    /// no escapes) straight from the bytes.
    #[inline]
    pub fn next_key_among(
        &mut self,
        first: &mut bool,
        known: &[&'static str],
    ) -> JResult<Option<Cow<'a, str>>> {
        if !self.key_start(first)? {
            return Ok(None);
        }
        let at = self.pos + 1;
        let word = load8(self.bytes, at);
        for k in known {
            let k_len = k.len();
            let hit = match word {
                // The key and its closing quote in one masked 8-byte compare.
                Some(w) if k_len < 8 => w & low_bytes(k_len + 1) == key_word(k),
                _ => {
                    let rest = &self.bytes[at..];
                    rest.get(k_len) == Some(&b'"') && &rest[..k_len] == k.as_bytes()
                }
            };
            if hit {
                self.pos += k_len + 2;
                self.expect_byte(b':', "':' after the key")?;
                return Ok(Some(Cow::Borrowed(k)));
            }
        }
        let key = self.string()?;
        self.expect_byte(b':', "':' after the key")?;
        Ok(Some(key))
    }

    /// As [`Parser::next_key`], without reading the key.
    fn skip_key(&mut self, first: &mut bool) -> JResult<bool> {
        if !self.key_start(first)? {
            return Ok(false);
        }
        self.skip_string()?;
        self.expect_byte(b':', "':' after the key")?;
        Ok(true)
    }

    /// Moves to the next key's opening quote (`true`) or past the closing
    /// brace (`false`).
    #[inline]
    fn key_start(&mut self, first: &mut bool) -> JResult<bool> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(false);
            }
            Some(b',') if !*first => {
                self.pos += 1;
                if self.peek() != Some(b'"') {
                    return self.expected("a key (a string) after ','");
                }
            }
            Some(b'"') if *first => {}
            _ if *first => return self.expected("a key (a string) or '}'"),
            _ => return self.expected("',' or '}'"),
        }
        *first = false;
        self.key_at = self.pos;
        Ok(true)
    }

    /// Moves past a string, checking escapes and control bytes (not UTF-8:
    /// skipped strings are never used).
    pub fn skip_string(&mut self) -> JResult<()> {
        self.expect_byte(b'"', "a string")?;
        let open = self.pos - 1;
        let b = self.bytes;
        let mut i = self.pos;
        loop {
            while let Some(x) = load8(b, i) {
                let stop = has_zero_byte(x ^ 0x2222_2222_2222_2222)
                    | has_zero_byte(x ^ 0x5C5C_5C5C_5C5C_5C5C)
                    | has_byte_below(x, 0x20);
                if stop != 0 {
                    i += (stop.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match b.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        self.hex4(i + 2)?;
                        i += 6;
                    }
                    Some(_) => return Err(self.error_at(i, "invalid escape in a string")),
                    None => return Err(self.error_at(open, "unterminated string")),
                },
                Some(&c) if c < 0x20 => {
                    return Err(self.error_at(i, "control character inside a string"))
                }
                Some(_) => i += 1,
                None => return Err(self.error_at(open, "unterminated string")),
            }
        }
    }

    /// Whether an array begun with [`Parser::begin_array`] has another
    /// element (its `,` consumed); `false` at the closing bracket.
    pub fn next_element(&mut self, first: &mut bool) -> JResult<bool> {
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b',') if !*first => {
                self.pos += 1;
                if self.peek() == Some(b']') {
                    return self.expected("a value after ','");
                }
                Ok(true)
            }
            None => self.expected("a value or ']'"),
            _ if *first => {
                *first = false;
                Ok(true)
            }
            _ => self.expected("',' or ']'"),
        }
    }

    /// A string value.
    #[inline]
    pub fn string(&mut self) -> JResult<Cow<'a, str>> {
        self.expect_byte(b'"', "a string")?;
        let start = self.pos;
        let b = self.bytes;
        let mut i = start;
        let mut ascii = true;
        // Eight bytes at a time (SWAR) to the first '"', '\\' or control byte.
        while let Some(x) = load8(b, i) {
            let stop = has_zero_byte(x ^ 0x2222_2222_2222_2222)
                | has_zero_byte(x ^ 0x5C5C_5C5C_5C5C_5C5C)
                | has_byte_below(x, 0x20);
            if stop != 0 {
                let k = (stop.trailing_zeros() / 8) as usize;
                // Only the bytes before the stop count for ASCII.
                let before = if k == 0 {
                    0
                } else {
                    x & (u64::MAX >> (64 - 8 * k))
                };
                ascii &= before & 0x8080_8080_8080_8080 == 0;
                i += k;
                break;
            }
            ascii &= x & 0x8080_8080_8080_8080 == 0;
            i += 8;
        }
        while let Some(&c) = b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                break;
            }
            ascii &= c < 0x80;
            i += 1;
        }
        match b.get(i) {
            Some(b'"') => {
                let raw = &b[start..i];
                let s = if ascii {
                    // SAFETY: every byte is ASCII, hence valid UTF-8.
                    unsafe { std::str::from_utf8_unchecked(raw) }
                } else {
                    std::str::from_utf8(raw).map_err(|e| {
                        self.error_at(start + e.valid_up_to(), "invalid UTF-8 in a string")
                    })?
                };
                self.pos = i + 1;
                Ok(Cow::Borrowed(s))
            }
            Some(b'\\') => self.string_with_escapes(start).map(Cow::Owned),
            Some(_) => Err(self.error_at(i, "control character inside a string")),
            None => Err(self.error_at(start - 1, "unterminated string")),
        }
    }

    fn string_with_escapes(&mut self, start: usize) -> JResult<String> {
        let mut out: Vec<u8> = Vec::new();
        let mut i = start;
        loop {
            let Some(&c) = self.bytes.get(i) else {
                return Err(self.error_at(start - 1, "unterminated string"));
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.bytes.get(i + 1) else {
                        return Err(self.error_at(start - 1, "unterminated string"));
                    };
                    i += 2;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hi = self.hex4(i)?;
                            i += 4;
                            let code = if (0xD800..0xDC00).contains(&hi)
                                && self.bytes.get(i) == Some(&b'\\')
                                && self.bytes.get(i + 1) == Some(&b'u')
                            {
                                let lo = self.hex4(i + 2)?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    i += 6;
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    0xFFFD
                                }
                            } else {
                                hi
                            };
                            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.error_at(i - 2, "invalid escape in a string")),
                    }
                }
                c if c < 0x20 => return Err(self.error_at(i, "control character inside a string")),
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        String::from_utf8(out).map_err(|_| self.error_at(start, "invalid UTF-8 in a string"))
    }

    fn hex4(&self, at: usize) -> JResult<u32> {
        let digits = self
            .bytes
            .get(at..at + 4)
            .ok_or_else(|| self.error_at(at, "truncated \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let x = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error_at(at, "invalid \\u escape"))?;
            v = v * 16 + x;
        }
        Ok(v)
    }

    /// A number, correctly rounded to the nearest f64 (as Python's `float`).
    /// Out-of-range literals such as `1e400` give an infinity, which callers
    /// reject as non-finite.
    #[inline(always)]
    pub fn number(&mut self, what: &str) -> JResult<f64> {
        self.skip_ws();
        if let Some((v, end)) = decimal::short_decimal(self.bytes, self.pos) {
            self.pos = end;
            return Ok(v);
        }
        self.number_general(what)
    }

    /// [`Parser::number`] for any number JSON allows.
    #[inline(never)]
    fn number_general(&mut self, what: &str) -> JResult<f64> {
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        let n = self.scan_number(what)?;
        let b = self.bytes;
        // Clinger's fast path: a mantissa of at most 2^53 (all digits, at
        // most 19 so it did not wrap) and a power of ten of at most 22: one
        // correctly rounded operation.
        if n.digits <= 19 && n.mantissa <= (1u64 << 53) && n.exp10.abs() <= 22 {
            let m = n.mantissa as f64;
            let v = if n.exp10 >= 0 {
                m * POW10[n.exp10 as usize]
            } else {
                m / POW10[(-n.exp10) as usize]
            };
            return Ok(if n.negative { -v } else { v });
        }
        // Up to 19 digits times a power of ten within ±22 (the usual shape
        // of Python's 17-digit reprs): Eisel–Lemire, exact in this range.
        if n.digits <= 19 && n.mantissa != 0 && n.exp10.abs() <= MAX_POW10 as i64 {
            let v = eisel_lemire(n.mantissa, n.exp10 as i32);
            return Ok(if n.negative { -v } else { v });
        }
        // SAFETY: the span holds only ASCII digits, signs, '.' and 'e'.
        let text = unsafe { std::str::from_utf8_unchecked(&b[n.start..self.pos]) };
        text.parse()
            .map_err(|_| self.error_at(n.start, "invalid number"))
    }

    /// Moves past a number, checking its syntax; returns its parts.
    #[inline]
    fn scan_number(&mut self, what: &str) -> JResult<NumberSpan> {
        self.skip_ws();
        let b = self.bytes;
        let start = self.pos;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let (mut mantissa, mut digits) = (0u64, 0u32);
        match b.get(i) {
            Some(b'0') => {
                i += 1;
                digits = 1;
            }
            Some(c) if c.is_ascii_digit() => {
                i = take_digits(b, i, &mut mantissa, &mut digits);
            }
            _ => return self.expected(what),
        }
        let (mut frac_start, mut frac_end) = (i, i);
        if b.get(i) == Some(&b'.') {
            frac_start = i + 1;
            i = take_digits(b, frac_start, &mut mantissa, &mut digits);
            if i == frac_start {
                return Err(self.error_at(i, "expected a digit after '.' in a number"));
            }
            frac_end = i;
        }
        let mut exp10: i64 = -((frac_end - frac_start) as i64);
        if matches!(b.get(i), Some(b'e') | Some(b'E')) {
            i += 1;
            let mut sign = 1;
            if matches!(b.get(i), Some(b'+') | Some(b'-')) {
                if b[i] == b'-' {
                    sign = -1;
                }
                i += 1;
            }
            let first = i;
            let mut e: i64 = 0;
            while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                e = (e * 10 + (c - b'0') as i64).min(1 << 20);
                i += 1;
            }
            if i == first {
                return Err(self.error_at(i, "expected a digit in the exponent of a number"));
            }
            exp10 += sign * e;
        }
        self.pos = i;
        Ok(NumberSpan {
            start,
            negative,
            mantissa,
            digits,
            exp10,
        })
    }

    fn literal(&mut self, word: &[u8]) -> JResult<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.expected("a JSON value")
        }
    }

    /// Moves past a number, checking its syntax.
    #[inline]
    pub fn skip_number(&mut self) -> JResult<()> {
        self.skip_ws();
        if let Some(end) = decimal::short_decimal_end(self.bytes, self.pos) {
            self.pos = end;
            return Ok(());
        }
        self.scan_number("a number").map(|_| ())
    }

    /// Whether the next bytes are `lit` (not consumed).
    #[inline]
    pub fn at(&self, lit: &[u8]) -> bool {
        self.bytes.get(self.pos..self.pos + lit.len()) == Some(lit)
    }

    /// Skips one value, checking its syntax.
    pub fn skip_value(&mut self) -> JResult<()> {
        self.skip_value_depth(0)
    }

    fn skip_value_depth(&mut self, depth: usize) -> JResult<()> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut first = true;
                while self.skip_key(&mut first)? {
                    self.skip_value_depth(depth + 1)?;
                }
                Ok(())
            }
            Some(b'[') => {
                self.pos += 1;
                let mut first = true;
                while self.next_element(&mut first)? {
                    self.skip_value_depth(depth + 1)?;
                }
                Ok(())
            }
            Some(b'"') => self.skip_string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.skip_number(),
            _ => self.expected("a JSON value"),
        }
    }

    /// Fails unless only blanks remain.
    pub fn end(&mut self) -> JResult<()> {
        if self.peek().is_some() {
            return Err(self.error("unexpected data after the end of the JSON value"));
        }
        Ok(())
    }
}

/// High bit set in each byte of `v` that is zero (exact for the lowest one).
#[inline]
fn has_zero_byte(v: u64) -> u64 {
    v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080
}

/// High bit set in each byte of `v` below `n` (n <= 128; exact for the
/// lowest one).
#[inline]
fn has_byte_below(v: u64, n: u8) -> u64 {
    v.wrapping_sub(0x0101_0101_0101_0101 * n as u64) & !v & 0x8080_8080_8080_8080
}

/// A mask of the `n` (1..=8) lowest bytes of a little-endian word.
#[inline]
fn low_bytes(n: usize) -> u64 {
    u64::MAX >> (64 - 8 * n)
}

/// A key shorter than 8 bytes followed by its closing quote, as a
/// little-endian word (the rest zero).
#[inline]
fn key_word(k: &str) -> u64 {
    let mut w = b'"' as u64;
    for &c in k.as_bytes().iter().rev() {
        w = (w << 8) | c as u64;
    }
    w
}

#[inline]
fn load8(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
}

/// Whether 8 bytes (a little-endian load) are all ASCII digits.
#[inline]
fn all_digits8(x: u64) -> bool {
    ((x & 0xF0F0_F0F0_F0F0_F0F0)
        | ((x.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4))
        == 0x3333_3333_3333_3333
}

/// The value of 8 ASCII digits (a little-endian load), most significant
/// first in memory.
#[inline]
fn parse_digits8(x: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064; // 100 + (1000000 << 32)
    const MUL2: u64 = 0x0000_2710_0000_0001; // 1 + (10000 << 32)
    let x = x.wrapping_sub(0x3030_3030_3030_3030);
    let x = x.wrapping_mul(10).wrapping_add(x >> 8);
    ((x & MASK).wrapping_mul(MUL1)).wrapping_add(((x >> 16) & MASK).wrapping_mul(MUL2)) >> 32
}

/// Moves past the digits at `i`, appending them to `mantissa` (wrapping)
/// and counting them; returns the index of the first non-digit.
#[inline]
fn take_digits(b: &[u8], mut i: usize, mantissa: &mut u64, digits: &mut u32) -> usize {
    while let Some(x) = load8(b, i) {
        if !all_digits8(x) {
            break;
        }
        *mantissa = mantissa
            .wrapping_mul(100_000_000)
            .wrapping_add(parse_digits8(x));
        *digits += 8;
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(d as u64);
        *digits += 1;
        i += 1;
    }
    i
}

/// Where in `bytes`, at or after `from`, the next `"KEY": [` that follows
/// `],` starts (the `"` of KEY): a guess at the start of a video in the
/// `results` object, which the caller verifies by parsing up to it.
pub(crate) fn next_video_key(bytes: &[u8], from: usize) -> Option<usize> {
    let ws = |b: &[u8], mut k: usize| {
        while k < b.len() && matches!(b[k], b' ' | b'\n' | b'\r' | b'\t') {
            k += 1;
        }
        k
    };
    let mut i = from;
    while i < bytes.len() {
        let j = i + memchr::memchr(b']', &bytes[i..])?;
        i = j + 1;
        let mut k = ws(bytes, j + 1);
        if bytes.get(k) != Some(&b',') {
            continue;
        }
        k = ws(bytes, k + 1);
        if bytes.get(k) != Some(&b'"') {
            continue;
        }
        let key_at = k;
        k += 1;
        while k < bytes.len() && bytes[k] != b'"' && k - key_at < 4096 {
            k += if bytes[k] == b'\\' { 2 } else { 1 };
        }
        k = ws(bytes, k + 1);
        if bytes.get(k) != Some(&b':') {
            continue;
        }
        k = ws(bytes, k + 1);
        if bytes.get(k) == Some(&b'[') {
            return Some(key_at);
        }
    }
    None
}

/// A fast, non-cryptographic hasher (the Fx hash of rustc) for maps keyed
/// by video ids and labels read from local files.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> f64 {
        let mut p = Parser::new(text.as_bytes(), 0);
        let v = p.number("a number").unwrap();
        assert_eq!(p.pos, text.len(), "{text}");
        v
    }

    #[test]
    fn numbers_are_correctly_rounded_like_std() {
        // Fast path and fallback against the standard library's parser.
        let mut x: u64 = 12345;
        let mut next = || crate::numeric::xorshift64(&mut x);
        for _ in 0..20_000 {
            let int = next() % 100_000;
            let frac_len = (next() % 21) as usize;
            let frac: String = (0..frac_len)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let exp = match next() % 4 {
                0 => format!("e{}", (next() % 40) as i64 - 20),
                1 => format!("E+{}", next() % 25),
                _ => String::new(),
            };
            let sign = if next() % 3 == 0 { "-" } else { "" };
            let text = if frac.is_empty() {
                format!("{sign}{int}{exp}")
            } else {
                format!("{sign}{int}.{frac}{exp}")
            };
            let want: f64 = text.parse().unwrap();
            assert_eq!(parse(&text).to_bits(), want.to_bits(), "{text}");
        }
        for text in [
            "0",
            "-0.0",
            "0.05",
            "9007199254740993",
            "1e400",
            "123456789012345678901234",
            "0.1e-330",
            "9007199254740992.5",
            "0.000000000000000000001234567890123456789",
            "100000000000000000000.5",
            "0.41675073409051616",
            "104.33388064885202",
            "12345678.12345678e-5",
            "9999999999999999999e-21",
            "1234567890123456789e-1",
            "0.9999999999999999999",
            "0.30000000000000004",
            "0.1",
            "2.2250738585072014e-3",
        ] {
            let want: f64 = text.parse().unwrap();
            assert_eq!(parse(text).to_bits(), want.to_bits(), "{text}");
        }
    }

    #[test]
    fn eisel_lemire_path_matches_std() {
        let mut x: u64 = 987654321;
        for i in 0..200_000u64 {
            crate::numeric::xorshift64(&mut x);
            let m = x % 10_000_000_000_000_000_000;
            let m = if i % 3 == 0 { m | (1 << 53) } else { m };
            let k = 1 + (x >> 40) % 21;
            let digits = m.to_string();
            // Both as m e-k and as a decimal fraction of the same digits.
            for text in [
                format!("{digits}e-{k}"),
                if (k as usize) < digits.len() {
                    let (a, b) = digits.split_at(digits.len() - k as usize);
                    format!("{a}.{b}")
                } else {
                    format!("0.{}{digits}", "0".repeat(k as usize - digits.len()))
                },
            ] {
                let want: f64 = text.parse().unwrap();
                assert_eq!(parse(&text).to_bits(), want.to_bits(), "{text}");
            }
        }
    }

    #[test]
    fn bad_numbers_and_tokens_are_errors() {
        for text in [
            "NaN",
            "Infinity",
            "-Infinity",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "+1",
        ] {
            let mut p = Parser::new(text.as_bytes(), 0);
            let r = p.number("a number");
            assert!(r.is_err() || p.pos != text.len(), "{text} accepted");
        }
        let mut p = Parser::new(b"NaN", 0);
        let e = p.number("a number").unwrap_err();
        assert!(
            e.message.contains("NaN") && e.message.contains("not valid JSON"),
            "{}",
            e.message
        );
    }

    #[test]
    fn strings_with_escapes() {
        let mut p = Parser::new(br#""a\"b\\c\u00e9\ud83d\ude00" "#, 0);
        assert_eq!(p.string().unwrap(), "a\"b\\c\u{e9}\u{1F600}");
        let mut p = Parser::new(b"\"abc", 0);
        assert!(p.string().unwrap_err().message.contains("unterminated"));
    }

    #[test]
    fn skipping_checks_syntax() {
        let ok = br#"{"a": [1, -2.5e3, "x\"y\u00e9", {"b": null}, true, false], "c": {}} "#;
        let mut p = Parser::new(ok, 0);
        p.skip_value().unwrap();
        p.end().unwrap();
        for bad in [
            &br#"{"a": [1, 2,]}"#[..],
            br#"{"a" 1}"#,
            br#"{"a": "x\qy"}"#,
            br#"{"a": [1 2]}"#,
            br#"{"a": "x"#,
            b"{\"a\": \"x\ny\"}",
            br#"{"a": NaN}"#,
        ] {
            let mut p = Parser::new(bad, 0);
            assert!(p.skip_value().is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn line_and_column() {
        let text = b"{\n  \"a\": 1,\n  \"b\": x\n}";
        let at = text.iter().position(|&c| c == b'x').unwrap();
        assert_eq!(line_column(text, at), (3, 8));
    }
}
