//! A byte cursor over an exposition body that counts lines and reads the small tokens both
//! formats share (names, quoted label values), returning borrowed `&str`s.

use super::{ParseError, Result};

pub(super) struct Cursor<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
    /// 1-based line of `pos`.
    pub line: usize,
    /// Byte range of the last sample's series text (name and labels up to its value), set
    /// by the sample parsers when it lies on one line.
    pub series: Option<(usize, usize)>,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor {
            buf,
            pos: 0,
            line: 1,
            series: None,
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub fn starts_with(&self, s: &[u8]) -> bool {
        self.rest().starts_with(s)
    }

    /// Advances over `n` bytes that contain no newline.
    pub fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Consumes one byte when it is `b`.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
            }
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs; true when any were skipped.
    pub fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Bytes up to (not including) the next newline or the end.
    pub fn take_line(&mut self) -> &'a [u8] {
        let rest = self.rest();
        let n = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    /// Skips to just past the next newline (or to the end).
    pub fn skip_line(&mut self) {
        self.take_line();
        self.eat(b'\n');
    }

    /// The longest run of bytes satisfying `f`, as text (only ASCII predicates are used).
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.iter().position(|&b| !f(b)).unwrap_or(rest.len());
        self.pos += n;
        // Every predicate accepts ASCII only, so this slice is valid UTF-8.
        std::str::from_utf8(&rest[..n]).unwrap_or("")
    }

    /// A metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`, or `None` without consuming.
    pub fn metric_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
            _ => return None,
        }
        Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
    }

    /// A label name `[a-zA-Z_][a-zA-Z0-9_]*`, or `None` without consuming.
    pub fn label_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
            _ => return None,
        }
        Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_'))
    }

    /// A double-quoted value with backslash escapes, returned raw (still escaped) without
    /// the quotes. `allow_newline` is the text format's leniency. `None` (nothing consumed)
    /// when there is no complete quoted string here.
    pub fn quoted(&mut self, allow_newline: bool) -> Option<&'a [u8]> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let mut i = 1;
        let mut newlines = 0;
        while i < rest.len() {
            match rest[i] {
                b'"' => {
                    self.pos += i + 1;
                    self.line += newlines;
                    return Some(&rest[1..i]);
                }
                // A backslash escapes any byte but a newline (lex's `\\.`).
                b'\\' => {
                    if matches!(rest.get(i + 1), None | Some(b'\n')) {
                        return None;
                    }
                    i += 2;
                }
                b'\n' if !allow_newline => return None,
                b'\n' => {
                    newlines += 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        None
    }

    /// Describes what is at the cursor for an error message, the way Prometheus names the
    /// unexpected token.
    pub fn describe(&self) -> String {
        let rest = self.rest();
        match rest.first() {
            None => "EOF".to_string(),
            Some(b'\n') => "linebreak".to_string(),
            Some(_) => {
                let n = rest
                    .iter()
                    .position(|&b| b == b'\n' || b == b' ' || b == b'\t')
                    .unwrap_or(rest.len())
                    .clamp(1, 24);
                format!("{:?}", String::from_utf8_lossy(&rest[..n]))
            }
        }
    }

    pub fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::Syntax {
            line: self.line,
            message: message.into(),
        }
    }

    /// "expected X, got Y" at the cursor.
    pub fn expected(&self, what: &str) -> ParseError {
        self.error(format!("{what}, got {}", self.describe()))
    }
}

/// Text from raw bytes, or an error naming what held invalid UTF-8.
pub(super) fn utf8<'a>(raw: &'a [u8], line: usize, what: &'static str) -> Result<&'a str> {
    std::str::from_utf8(raw).map_err(|_| ParseError::InvalidUtf8 { line, what })
}
