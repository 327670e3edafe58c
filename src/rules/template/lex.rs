//! The lexer of Go's `text/template` (delimiters `{{` `}}`): turns template text into items
//! (text, delimiters, and the words of actions), with Go's trim markers (`{{- ` and ` -}}`),
//! comments and item texts, so the parser can word its errors exactly as Go does. The lexer
//! stops at the first error item, which the parser reports when it reaches it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords (Go prints them as `<word>` in errors).
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub typ: ItemType,
    /// Byte offset in the template text.
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl fmt::Display for Item {
    /// Go's `item.String`, which parse errors quote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.typ {
            ItemType::Eof => write!(f, "EOF"),
            ItemType::Error => write!(f, "{}", self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", super::fmt::quote(&head))
            }
            _ => write!(f, "{}", super::fmt::quote(&self.val)),
        }
    }
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

/// Go's `isSpace`: the characters a trim marker eats and actions separate words with.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

fn has_right_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

struct Lexer<'a> {
    input: &'a str,
    start: usize,
    pos: usize,
    paren_depth: i32,
    items: Vec<Item>,
    done: bool,
}

/// Lexes the whole text; the last item is `Eof` or `Error`.
pub(crate) fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer {
        input,
        start: 0,
        pos: 0,
        paren_depth: 0,
        items: Vec::new(),
        done: false,
    };
    l.run();
    l.items
}

impl Lexer<'_> {
    fn line_at(&self, pos: usize) -> usize {
        1 + self.input[..pos.min(self.input.len())]
            .matches('\n')
            .count()
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn emit(&mut self, typ: ItemType) {
        let val = self.input[self.start..self.pos].to_string();
        let line = self.line_at(self.start);
        self.items.push(Item {
            typ,
            pos: self.start,
            val,
            line,
        });
        self.start = self.pos;
    }

    fn error(&mut self, msg: String) {
        let line = self.line_at(self.start);
        self.items.push(Item {
            typ: ItemType::Error,
            pos: self.start,
            val: msg,
            line,
        });
        self.done = true;
    }

    fn run(&mut self) {
        while !self.done {
            self.lex_text();
        }
    }

    fn lex_text(&mut self) {
        match self.rest().find(LEFT) {
            Some(x) => {
                let delim = self.pos + x;
                let mut text_end = delim;
                if has_left_trim(&self.input[delim + LEFT.len()..]) {
                    text_end = self.input[self.start..delim]
                        .trim_end_matches(is_space)
                        .len()
                        + self.start;
                }
                if text_end > self.start {
                    self.pos = text_end;
                    self.emit(ItemType::Text);
                }
                self.pos = delim;
                self.start = delim;
                self.lex_left_delim();
            }
            None => {
                self.pos = self.input.len();
                if self.pos > self.start {
                    self.emit(ItemType::Text);
                }
                self.emit(ItemType::Eof);
                self.done = true;
            }
        }
    }

    /// After `{{` and before its text: `Some(trim)` if the right delimiter (with or without
    /// a trim marker) starts here.
    fn at_right_delim(&self) -> Option<bool> {
        let r = self.rest();
        if has_right_trim(r) && r[2..].starts_with(RIGHT) {
            return Some(true);
        }
        if r.starts_with(RIGHT) {
            return Some(false);
        }
        None
    }

    fn lex_left_delim(&mut self) {
        self.pos += LEFT.len();
        let trim = has_left_trim(self.rest());
        let after = if trim { 2 } else { 0 };
        if self.input[self.pos + after..].starts_with("/*") {
            self.pos += after;
            self.start = self.pos;
            self.lex_comment();
            return;
        }
        // The delimiter item is only the `{{`; the marker is skipped.
        let line = self.line_at(self.start);
        self.items.push(Item {
            typ: ItemType::LeftDelim,
            pos: self.start,
            val: LEFT.to_string(),
            line,
        });
        self.pos += after;
        self.start = self.pos;
        self.paren_depth = 0;
        self.lex_inside_action();
    }

    fn lex_comment(&mut self) {
        self.pos += 2;
        let Some(x) = self.rest().find("*/") else {
            self.error("unclosed comment".into());
            return;
        };
        self.pos += x + 2;
        let Some(trim) = self.at_right_delim() else {
            self.error("comment ends before closing delimiter".into());
            return;
        };
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT.len();
        if trim {
            self.pos += self.rest().len() - self.rest().trim_start_matches(is_space).len();
        }
        self.start = self.pos;
    }

    fn lex_right_delim(&mut self, trim: bool) {
        if trim {
            self.pos += 2;
            self.start = self.pos;
        }
        self.pos += RIGHT.len();
        self.emit(ItemType::RightDelim);
        if trim {
            self.pos += self.rest().len() - self.rest().trim_start_matches(is_space).len();
            self.start = self.pos;
        }
    }

    fn lex_inside_action(&mut self) {
        loop {
            if self.done {
                return;
            }
            if let Some(trim) = self.at_right_delim() {
                if self.paren_depth == 0 {
                    self.lex_right_delim(trim);
                } else {
                    self.error("unclosed left paren".into());
                }
                return;
            }
            let Some(c) = self.next() else {
                self.error("unclosed action".into());
                return;
            };
            match c {
                c if is_space(c) => {
                    self.pos -= 1;
                    self.lex_space();
                }
                '=' => self.emit(ItemType::Assign),
                ':' => {
                    if self.next() != Some('=') {
                        self.error("expected :=".into());
                        return;
                    }
                    self.emit(ItemType::Declare);
                }
                '|' => self.emit(ItemType::Pipe),
                '"' => self.lex_quote(),
                '`' => self.lex_raw_quote(),
                '$' => self.lex_field_or_variable(ItemType::Variable),
                '\'' => self.lex_char(),
                '.' => match self.peek() {
                    Some(d) if d.is_ascii_digit() => {
                        self.pos -= 1;
                        self.lex_number();
                    }
                    _ => self.lex_field_or_variable(ItemType::Field),
                },
                '+' | '-' | '0'..='9' => {
                    self.pos -= 1;
                    self.lex_number();
                }
                c if is_alnum(c) => {
                    self.pos -= c.len_utf8();
                    self.lex_identifier();
                }
                '(' => {
                    self.emit(ItemType::LeftParen);
                    self.paren_depth += 1;
                }
                ')' => {
                    self.emit(ItemType::RightParen);
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        self.error("unexpected right paren U+0029 ')'".into());
                        return;
                    }
                }
                c if c.is_ascii() && !c.is_ascii_control() => self.emit(ItemType::Char),
                c => {
                    self.error(format!(
                        "unrecognized character in action: {}",
                        super::fmt::format_unicode_sharp(c)
                    ));
                    return;
                }
            }
            if matches!(self.items.last(), Some(i) if i.typ == ItemType::RightDelim) {
                return;
            }
        }
    }

    fn lex_space(&mut self) {
        let mut n = 0;
        while let Some(c) = self.peek() {
            if !is_space(c) {
                break;
            }
            self.pos += 1;
            n += 1;
        }
        // A trim-marked right delimiter: the space before `-}}` belongs to it.
        let r = &self.input[self.pos - 1..];
        if has_right_trim(r) && r[2..].starts_with(RIGHT) {
            self.pos -= 1;
            if n == 1 {
                return;
            }
        }
        self.emit(ItemType::Space);
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with(RIGHT),
        }
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) {
        if self.at_terminator() {
            self.emit(if typ == ItemType::Variable {
                ItemType::Variable
            } else {
                ItemType::Dot
            });
            return;
        }
        let mut last = None;
        while let Some(c) = self.peek() {
            if !is_alnum(c) {
                last = Some(c);
                break;
            }
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            let c = last.unwrap_or('\u{fffd}');
            self.error(format!(
                "bad character {}",
                super::fmt::format_unicode_sharp(c)
            ));
            return;
        }
        self.emit(typ);
    }

    fn lex_identifier(&mut self) {
        while let Some(c) = self.peek() {
            if !is_alnum(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or('\u{fffd}');
            self.error(format!(
                "bad character {}",
                super::fmt::format_unicode_sharp(c)
            ));
            return;
        }
        let typ = match &self.input[self.start..self.pos] {
            "block" => ItemType::Block,
            "break" => ItemType::Break,
            "continue" => ItemType::Continue,
            "define" => ItemType::Define,
            "else" => ItemType::Else,
            "end" => ItemType::End,
            "if" => ItemType::If,
            "range" => ItemType::Range,
            "nil" => ItemType::Nil,
            "template" => ItemType::Template,
            "with" => ItemType::With,
            "true" | "false" => ItemType::Bool,
            _ => ItemType::Identifier,
        };
        self.emit(typ);
    }

    fn lex_char(&mut self) {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        self.error("unterminated character constant".into());
                        return;
                    }
                }
                None | Some('\n') => {
                    self.error("unterminated character constant".into());
                    return;
                }
                Some('\'') => break,
                _ => {}
            }
        }
        self.emit(ItemType::CharConstant);
    }

    fn lex_quote(&mut self) {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        self.error("unterminated quoted string".into());
                        return;
                    }
                }
                None | Some('\n') => {
                    self.error("unterminated quoted string".into());
                    return;
                }
                Some('"') => break,
                _ => {}
            }
        }
        self.emit(ItemType::String);
    }

    fn lex_raw_quote(&mut self) {
        loop {
            match self.next() {
                None => {
                    self.error("unterminated raw quoted string".into());
                    return;
                }
                Some('`') => break,
                _ => {}
            }
        }
        self.emit(ItemType::RawString);
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.peek() {
            Some(c) if set.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if matches!(self.peek(), Some(c) if is_alnum(c)) {
            self.next();
            return false;
        }
        true
    }

    fn lex_number(&mut self) {
        if !self.scan_number() {
            let t = self.input[self.start..self.pos].to_string();
            self.error(format!("bad number syntax: {}", super::fmt::quote(&t)));
            return;
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let t = self.input[self.start..self.pos].to_string();
                self.error(format!("bad number syntax: {}", super::fmt::quote(&t)));
                return;
            }
            self.emit(ItemType::Complex);
        } else {
            self.emit(ItemType::Number);
        }
    }
}
