//! A small, strict JSON pull parser over a byte slice.
//!
//! The evaluator reads tens of megabytes of JSON whose shape it knows; a pull
//! parser lets it read floats straight into its own types (correctly rounded,
//! by `str::parse::<f64>`), skip what it does not need, and cut the
//! `results` object into per-video byte ranges that are parsed on all cores.
//! Errors carry the byte offset; [`line_column`] turns it into a position.

use std::borrow::Cow;

/// A JSON syntax or shape error at a byte offset of the input.
#[derive(Debug, Clone)]
pub(crate) struct JsonError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What went wrong, for a human.
    pub message: String,
}

/// Result of a parser step.
pub(crate) type JResult<T> = Result<T, JsonError>;

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

/// Deepest nesting accepted (guards the recursion of [`Parser::skip_value`]).
const MAX_DEPTH: usize = 256;

/// A cursor over JSON text.
pub(crate) struct Parser<'a> {
    /// The whole input.
    pub bytes: &'a [u8],
    /// Current byte offset.
    pub pos: usize,
}

impl<'a> Parser<'a> {
    /// A parser at `pos` of `bytes`.
    pub fn new(bytes: &'a [u8], pos: usize) -> Self {
        Parser { bytes, pos }
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
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The next non-blank byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    /// Describes the token at the current position for error messages.
    pub fn describe_here(&mut self) -> String {
        match self.peek() {
            None => "the end of the file".into(),
            Some(b'{') => "an object".into(),
            Some(b'[') => "an array".into(),
            Some(b'"') => "a string".into(),
            Some(b't') | Some(b'f') => "a boolean".into(),
            Some(b'n') => "null".into(),
            Some(b'N') => "NaN".into(),
            Some(b'I') => "Infinity".into(),
            Some(b'-') if self.bytes.get(self.pos + 1) == Some(&b'I') => "-Infinity".into(),
            Some(c) if c == b'-' || c.is_ascii_digit() => "a number".into(),
            Some(c) => format!("'{}'", char::from(c).escape_default()),
        }
    }

    /// Fails with "expected X, found Y" at the current position.
    pub fn expected<T>(&mut self, what: &str) -> JResult<T> {
        let found = self.describe_here();
        if found == "NaN" || found.ends_with("Infinity") {
            return Err(self.error(format!(
                "expected {what}, found {found}, which is not valid JSON \
                 (Python's json module writes it for non-finite floats; \
                 fix the writer or replace it with a finite number)"
            )));
        }
        Err(self.error(format!("expected {what}, found {found}")))
    }

    /// Consumes `c` or fails.
    #[inline]
    fn expect_byte(&mut self, c: u8, what: &str) -> JResult<()> {
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
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
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
        let key = self.string()?;
        self.expect_byte(b':', "':' after the key")?;
        Ok(Some(key))
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
    pub fn string(&mut self) -> JResult<Cow<'a, str>> {
        self.expect_byte(b'"', "a string")?;
        let start = self.pos;
        let rest = &self.bytes[start..];
        match memchr::memchr2(b'"', b'\\', rest) {
            Some(i) if rest[i] == b'"' => {
                let raw = &rest[..i];
                if let Some(j) = raw.iter().position(|&c| c < 0x20) {
                    return Err(self.error_at(start + j, "control character inside a string"));
                }
                let s = std::str::from_utf8(raw)
                    .map_err(|e| self.error_at(start + e.valid_up_to(), "invalid UTF-8 in a string"))?;
                self.pos = start + i + 1;
                Ok(Cow::Borrowed(s))
            }
            Some(_) => self.string_with_escapes(start).map(Cow::Owned),
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
                c if c < 0x20 => {
                    return Err(self.error_at(i, "control character inside a string"))
                }
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
    #[inline]
    pub fn number(&mut self, what: &str) -> JResult<f64> {
        self.skip_ws();
        let b = self.bytes;
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(c) if c.is_ascii_digit() => {
                while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                }
            }
            _ => return self.expected(what),
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let digits = i;
            while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            if i == digits {
                return Err(self.error_at(i, "expected a digit after '.' in a number"));
            }
        }
        if matches!(b.get(i), Some(b'e') | Some(b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+') | Some(b'-')) {
                i += 1;
            }
            let digits = i;
            while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            if i == digits {
                return Err(self.error_at(i, "expected a digit in the exponent of a number"));
            }
        }
        // The span holds only ASCII digits, signs, '.', 'e'.
        let text = std::str::from_utf8(&b[start..i]).expect("ASCII number");
        let v: f64 = text
            .parse()
            .map_err(|_| self.error_at(start, "invalid number"))?;
        self.pos = i;
        Ok(v)
    }

    fn literal(&mut self, word: &[u8]) -> JResult<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.expected("a JSON value")
        }
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
                while self.next_key(&mut first)?.is_some() {
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
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number("a number").map(|_| ()),
            _ => self.expected("a JSON value"),
        }
    }

    /// Moves past one object or array by bracket matching only (strings
    /// respected, nothing else checked): a fast pre-scan for values that
    /// are parsed in full afterwards. Fails on unbalanced brackets or an
    /// unterminated string.
    pub fn scan_container(&mut self) -> JResult<()> {
        let start = self.pos;
        let b = self.bytes;
        let mut stack: Vec<u8> = Vec::with_capacity(8);
        let mut i = self.pos;
        loop {
            let Some(&c) = b.get(i) else {
                return Err(self.error_at(start, "unterminated array or object"));
            };
            match c {
                b'"' => {
                    let mut j = i + 1;
                    loop {
                        match memchr::memchr2(b'"', b'\\', &b[j..]) {
                            Some(k) if b[j + k] == b'\\' => j += k + 2,
                            Some(k) => {
                                j += k + 1;
                                break;
                            }
                            None => return Err(self.error_at(i, "unterminated string")),
                        }
                    }
                    i = j;
                    continue;
                }
                b'[' => stack.push(b']'),
                b'{' => stack.push(b'}'),
                b']' | b'}' => {
                    if stack.pop() != Some(c) {
                        return Err(self.error_at(i, format!("unexpected '{}'", c as char)));
                    }
                    if stack.is_empty() {
                        self.pos = i + 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            i += 1;
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
