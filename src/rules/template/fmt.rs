//! Go's `fmt` as templates reach it: `print`, `println`, `printf` and the printing of action
//! values (`%v`), with Go's verbs, flags, width and precision, Go's float digits (`%g`
//! shortest: `1e+06`, `+Inf`), its map and struct forms (`map[a:b]`, `{...}`) and its
//! complaints about mistakes (`%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA int=1)`). Also
//! `strconv.Quote`, which errors and `%q` use.

use super::float::format_float_signed;
pub(crate) use super::float::{format_float_v, format_g};
use super::value::Value;

pub(crate) use crate::gocompat::go_quote as quote;
use crate::gocompat::{go_escape_char as escape_char, is_print};

/// Go's `strconv.QuoteToASCII` (`%+q`).
pub(crate) fn quote_ascii(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii() {
            escape_char(&mut out, c, '"');
        } else if (c as u32) < 0x10000 {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push_str(&format!("\\U{:08x}", c as u32));
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune`.
pub(crate) fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    escape_char(&mut out, c, '\'');
    out.push('\'');
    out
}

/// Go's `%#U`: `U+0023 '#'`.
pub(crate) fn format_unicode_sharp(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

struct Printer {
    buf: String,
    f: Flags,
}

impl Printer {
    fn pad(&mut self, s: &str) {
        let n = s.chars().count();
        let w = self.f.wid.unwrap_or(0);
        if w <= n {
            self.buf.push_str(s);
            return;
        }
        let fill = if self.f.zero && !self.f.minus {
            '0'
        } else {
            ' '
        };
        let padding: String = std::iter::repeat_n(fill, w - n).collect();
        if self.f.minus {
            self.buf.push_str(s);
            self.buf.push_str(&padding);
        } else {
            self.buf.push_str(&padding);
            self.buf.push_str(s);
        }
    }

    fn bad_verb(&mut self, v: &Value, verb: char) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if let Value::Nil = v {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(v.type_name());
            self.buf.push('=');
            self.print(v, 'v', 0);
        }
        self.buf.push(')');
    }

    fn print(&mut self, v: &Value, verb: char, depth: usize) {
        if verb == 'T' {
            let t = v.type_name().to_string();
            self.pad(&t);
            return;
        }
        match v {
            Value::Nil => {
                if verb == 'v' {
                    self.pad("<nil>");
                } else {
                    self.bad_verb(v, verb);
                }
            }
            Value::Bool(b) => {
                if verb == 't' || verb == 'v' {
                    self.pad(if *b { "true" } else { "false" });
                } else {
                    self.bad_verb(v, verb);
                }
            }
            Value::Int(i) => self.integer(v, i.unsigned_abs(), *i < 0, verb),
            Value::Byte(b) => self.integer(v, u64::from(*b), false, verb),
            Value::Float(x) => self.float(v, *x, verb),
            Value::Str(s) | Value::Html(s) => self.string(v, s, verb),
            Value::Time { secs, nanos } => {
                let s = super::prom::go_time_string(*secs, *nanos);
                if matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
                    self.string(v, &s, verb);
                } else if matches!(verb, 'd' | 'b' | 'o' | 'O') {
                    // Go prints the struct behind the pointer: wall (nanoseconds), ext
                    // (seconds since year 1) and the nil UTC location.
                    self.buf.push_str("&{");
                    self.integer(v, u64::from(*nanos), false, verb);
                    self.buf.push(' ');
                    let ext = secs.saturating_add(62_135_596_800);
                    self.integer(v, ext.unsigned_abs(), ext < 0, verb);
                    self.buf.push(' ');
                    self.integer(v, 0, false, verb);
                    self.buf.push('}');
                } else {
                    self.bad_verb(&Value::Str(s), verb);
                }
            }
            Value::StrMap(m) => {
                self.buf.push_str("map[");
                for (i, (k, val)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.string(&Value::Nil, k, verb);
                    self.buf.push(':');
                    self.string(&Value::Nil, val, verb);
                }
                self.buf.push(']');
            }
            Value::AnyMap(m) => {
                self.buf.push_str("map[");
                for (i, (k, val)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.string(&Value::Nil, k, verb);
                    self.buf.push(':');
                    self.print(val, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Sample(s) => {
                if depth > 0 {
                    // Go prints a nested pointer as its address, which is no stable text.
                    self.buf.push_str("0xc000010000");
                    return;
                }
                self.buf.push_str("&{");
                self.print(&Value::StrMap(s.labels.clone()), verb, depth + 1);
                self.buf.push(' ');
                self.print(&Value::Float(s.value), verb, depth + 1);
                self.buf.push('}');
            }
            Value::Samples(list) => {
                self.buf.push('[');
                for (i, s) in list.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print(&Value::Sample(s.clone()), verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Data(d) => {
                self.buf.push('{');
                self.print(&Value::StrMap(d.labels.clone()), verb, depth + 1);
                self.buf.push(' ');
                self.print(&Value::StrMap(d.external_labels.clone()), verb, depth + 1);
                self.buf.push(' ');
                self.string(&Value::Nil, &d.external_url, verb);
                self.buf.push(' ');
                self.print(&Value::Float(d.value), verb, depth + 1);
                self.buf.push('}');
            }
        }
    }

    /// Prints a string-kind value; `orig` is the value for mistakes (Nil: a plain string).
    fn string(&mut self, orig: &Value, s: &str, verb: char) {
        match verb {
            'v' | 's' => {
                let t: String = match self.f.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.to_string(),
                };
                self.pad(&t);
            }
            'x' | 'X' => {
                let mut t = String::new();
                let bytes = s.as_bytes();
                let bytes = match self.f.prec {
                    Some(p) if p < bytes.len() => &bytes[..p],
                    _ => bytes,
                };
                for (i, b) in bytes.iter().enumerate() {
                    if self.f.space && i > 0 {
                        t.push(' ');
                    }
                    if self.f.sharp && (self.f.space || i == 0) {
                        t.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    if verb == 'x' {
                        t.push_str(&format!("{b:02x}"));
                    } else {
                        t.push_str(&format!("{b:02X}"));
                    }
                }
                self.pad(&t);
            }
            'q' => {
                let s: String = match self.f.prec {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.to_string(),
                };
                let s = s.as_str();
                let t = if self.f.sharp
                    && !s.contains('`')
                    && s.chars().all(|c| c == '\t' || !c.is_control())
                {
                    format!("`{s}`")
                } else if self.f.plus {
                    quote_ascii(s)
                } else {
                    quote(s)
                };
                self.pad(&t);
            }
            _ => {
                let v = match orig {
                    Value::Nil => Value::Str(s.to_string()),
                    o => o.clone(),
                };
                self.bad_verb(&v, verb);
            }
        }
    }

    fn integer(&mut self, orig: &Value, u: u64, negative: bool, verb: char) {
        let (base, upper) = match verb {
            'v' | 'd' => (10, false),
            'b' => (2, false),
            'o' | 'O' => (8, false),
            'x' => (16, false),
            'X' => (16, true),
            'c' => {
                let c = char::from_u32(u as u32)
                    .filter(|_| !negative && u <= 0x10ffff)
                    .unwrap_or('\u{fffd}');
                self.pad(&c.to_string());
                return;
            }
            'q' => {
                let c = char::from_u32(u as u32)
                    .filter(|_| !negative && u <= 0x10ffff)
                    .unwrap_or('\u{fffd}');
                self.pad(&quote_rune(c));
                return;
            }
            'U' => {
                let mut s = format!("U+{u:04X}");
                if self.f.sharp {
                    if let Some(c) = char::from_u32(u as u32).filter(|c| is_print(*c)) {
                        s.push_str(&format!(" '{c}'"));
                    }
                }
                self.pad(&s);
                return;
            }
            _ => {
                self.bad_verb(orig, verb);
                return;
            }
        };
        let mut digits = match base {
            2 => format!("{u:b}"),
            8 => format!("{u:o}"),
            16 if upper => format!("{u:X}"),
            16 => format!("{u:x}"),
            _ => u.to_string(),
        };
        let mut prec = 0;
        if let Some(p) = self.f.prec {
            if p == 0 && u == 0 {
                let saved = self.f.zero;
                self.f.zero = false;
                self.pad("");
                self.f.zero = saved;
                return;
            }
            prec = p;
        } else if self.f.zero && !self.f.minus {
            if let Some(w) = self.f.wid {
                prec = w;
                if negative || self.f.plus || self.f.space {
                    prec = prec.saturating_sub(1);
                }
            }
        }
        while digits.len() < prec {
            digits.insert(0, '0');
        }
        if self.f.sharp {
            match base {
                2 => digits.insert_str(0, "0b"),
                8 if !digits.starts_with('0') => digits.insert(0, '0'),
                16 => digits.insert_str(0, if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            digits.insert_str(0, "0o");
        }
        if negative {
            digits.insert(0, '-');
        } else if self.f.plus {
            digits.insert(0, '+');
        } else if self.f.space {
            digits.insert(0, ' ');
        }
        let saved = self.f.zero;
        self.f.zero = false;
        self.pad(&digits);
        self.f.zero = saved;
    }

    fn float(&mut self, orig: &Value, v: f64, verb: char) {
        let num = match verb {
            'v' => format_float_signed(v, 'g', self.f.prec),
            'g' | 'G' | 'x' | 'X' => format_float_signed(v, verb, self.f.prec),
            'f' | 'F' | 'e' | 'E' => format_float_signed(v, verb, Some(self.f.prec.unwrap_or(6))),
            _ => {
                self.bad_verb(orig, verb);
                return;
            }
        };
        let mut num = num;
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        if num[1..].starts_with('I') || num[1..].starts_with('N') {
            let saved = self.f.zero;
            self.f.zero = false;
            if num[1..].starts_with('N') && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = saved;
            return;
        }
        if self.f.plus || !num.starts_with('+') {
            let w = self.f.wid.unwrap_or(0);
            if self.f.zero && !self.f.minus && w > num.len() {
                self.buf.push_str(&num[..1]);
                self.buf.push_str(&"0".repeat(w - num.len()));
                self.buf.push_str(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }
}

/// Go's `%v` of one value, as a template action prints it (`fmt.Fprint`).
pub(crate) fn sprint_one(v: &Value) -> String {
    sprint(std::slice::from_ref(v))
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
    };
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_) | Value::Html(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print(a, 'v', 0);
        prev_string = is_string;
    }
    p.buf
}

/// Go's `fmt.Sprintln`: always spaces, then a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
    };
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print(a, 'v', 0);
    }
    p.buf.push('\n');
    p.buf
}

fn parse_num(b: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    let mut n: usize = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(usize::from(b[i] - b'0'));
        if n > 1_000_000 {
            return (None, b.len());
        }
        i += 1;
    }
    if i == start {
        (None, i)
    } else {
        (Some(n), i)
    }
}

fn int_from_arg(args: &[Value], n: &mut usize) -> Option<i64> {
    let v = match args.get(*n) {
        Some(Value::Int(i)) => Some(*i),
        Some(Value::Byte(b)) => Some(i64::from(*b)),
        _ => None,
    };
    if *n < args.len() {
        *n += 1;
    }
    v.filter(|v| v.unsigned_abs() <= 1_000_000)
}

/// Go's `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
    };
    let b = format.as_bytes();
    let end = b.len();
    let mut i = 0;
    let mut arg_num = 0;
    let mut reordered = false;
    while i < end {
        let lasti = i;
        while i < end && b[i] != b'%' {
            i += 1;
        }
        if i > lasti {
            p.buf.push_str(&format[lasti..i]);
        }
        if i >= end {
            break;
        }
        i += 1;
        p.f = Flags::default();
        while i < end {
            match b[i] {
                b'#' => p.f.sharp = true,
                b'0' => p.f.zero = !p.f.minus,
                b'+' => p.f.plus = true,
                b'-' => {
                    p.f.minus = true;
                    p.f.zero = false;
                }
                b' ' => p.f.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut good_arg = true;
        // Explicit argument indexes: `%[2]d`.
        let arg_index =
            |i: &mut usize, arg_num: &mut usize, good: &mut bool, reordered: &mut bool| {
                if *i < end && b[*i] == b'[' {
                    *reordered = true;
                    match format[*i..].find(']') {
                        Some(close) => {
                            let n = format[*i + 1..*i + close].parse::<usize>().ok();
                            match n {
                                Some(n) if n >= 1 && n <= args.len() => *arg_num = n - 1,
                                _ => *good = false,
                            }
                            *i += close + 1;
                        }
                        None => {
                            *good = false;
                        }
                    }
                    return true;
                }
                false
            };
        let mut after_index = arg_index(&mut i, &mut arg_num, &mut good_arg, &mut reordered);
        if i < end && b[i] == b'*' {
            i += 1;
            match int_from_arg(args, &mut arg_num) {
                Some(w) => {
                    if w < 0 {
                        p.f.minus = true;
                        p.f.zero = false;
                    }
                    p.f.wid = Some(w.unsigned_abs() as usize);
                }
                None => p.buf.push_str("%!(BADWIDTH)"),
            }
            after_index = false;
        } else {
            let (w, ni) = parse_num(b, i);
            p.f.wid = w;
            i = ni;
            if after_index && w.is_some() {
                good_arg = false;
            }
        }
        if i + 1 < end && b[i] == b'.' {
            i += 1;
            if after_index {
                good_arg = false;
            }
            after_index = arg_index(&mut i, &mut arg_num, &mut good_arg, &mut reordered);
            if i < end && b[i] == b'*' {
                i += 1;
                match int_from_arg(args, &mut arg_num) {
                    // Go drops a negative precision and complains as if none was given.
                    Some(pr) if pr >= 0 => p.f.prec = Some(pr as usize),
                    _ => p.buf.push_str("%!(BADPREC)"),
                }
                after_index = false;
            } else {
                let (pr, ni) = parse_num(b, i);
                p.f.prec = Some(pr.unwrap_or(0));
                i = ni;
            }
        }
        if !after_index {
            arg_index(&mut i, &mut arg_num, &mut good_arg, &mut reordered);
        }
        if i >= end {
            p.buf.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('%');
        i += verb.len_utf8();
        if verb == '%' {
            p.buf.push('%');
        } else if !good_arg {
            p.buf.push_str(&format!("%!{verb}(BADINDEX)"));
        } else if arg_num >= args.len() {
            p.buf.push_str(&format!("%!{verb}(MISSING)"));
        } else {
            let a = args[arg_num].clone();
            p.print(&a, verb, 0);
            arg_num += 1;
        }
    }
    if !reordered && arg_num < args.len() {
        p.f = Flags::default();
        p.buf.push_str("%!(EXTRA ");
        for (k, a) in args[arg_num..].iter().enumerate() {
            if k > 0 {
                p.buf.push_str(", ");
            }
            if let Value::Nil = a {
                p.buf.push_str("<nil>");
            } else {
                p.buf.push_str(a.type_name());
                p.buf.push('=');
                p.print(a, 'v', 0);
            }
        }
        p.buf.push(')');
    }
    p.buf
}
