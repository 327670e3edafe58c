//! Go's `regexp` (RE2 syntax) on top of the `regex` crate, for `match` and `reReplaceAll`: the
//! pattern is translated where the two differ (Go's `\d \w \s \b` are ASCII-only, a `{` that
//! starts no valid repeat is a literal) and checked for what Go refuses and the crate accepts
//! (stacked repetition `a**`, `(?<`), and the crate's errors are reworded as Go's
//! (`error parsing regexp: missing closing ): `(``).

use regex::Regex;

/// A compiled Go pattern: the crate's regex (with capture names removed, since Go allows
/// names the crate refuses: duplicates, a leading digit) and the group names by index.
pub(crate) struct GoRegex {
    re: Regex,
    names: Vec<String>,
}

/// Compiles a pattern as Go's `regexp.Compile` would accept it; the error is Go's text.
pub(crate) fn compile(pat: &str) -> Result<GoRegex, String> {
    let mut names = vec![String::new()];
    let translated =
        translate(pat, &mut names).map_err(|e| format!("error parsing regexp: {e}"))?;
    let re = Regex::new(&translated).map_err(|e| reword(pat, &e))?;
    Ok(GoRegex { re, names })
}

impl GoRegex {
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }

    /// Go's `ReplaceAllString`: `$1`, `$name`, `${name}` expand (the first group of that
    /// name; unknown ones to nothing), `$$` is a `$`.
    pub(crate) fn replace_all(&self, text: &str, repl: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for caps in self.re.captures_iter(text) {
            let Some(m) = caps.get(0) else { continue };
            out.push_str(&text[last..m.start()]);
            self.expand(&mut out, repl, &caps);
            last = m.end();
        }
        out.push_str(&text[last..]);
        out
    }

    fn expand(&self, out: &mut String, tmpl: &str, caps: &regex::Captures<'_>) {
        let mut rest = tmpl;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('$') {
                out.push('$');
                rest = r;
                continue;
            }
            let (name, after) = if let Some(r) = rest.strip_prefix('{') {
                match r.find('}') {
                    Some(j)
                        if j > 0
                            && r[..j]
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'_') =>
                    {
                        (&r[..j], &r[j + 1..])
                    }
                    _ => {
                        out.push('$');
                        continue;
                    }
                }
            } else {
                let n = rest
                    .bytes()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    .count();
                if n == 0 {
                    out.push('$');
                    continue;
                }
                (&rest[..n], &rest[n..])
            };
            rest = after;
            let index = match name.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => self.names.iter().position(|x| x == name),
            };
            if let Some(m) = index.and_then(|i| caps.get(i)) {
                out.push_str(m.as_str());
            }
        }
        out.push_str(rest);
    }
}

/// Where a valid Go repeat `{n}`, `{n,}` or `{n,m}` starting at `i` ends.
fn repeat_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let start = j;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    if j == start {
        return None;
    }
    if j < b.len() && b[j] == b',' {
        j += 1;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
    }
    (j < b.len() && b[j] == b'}').then_some(j + 1)
}

fn class_escape(c: u8, in_class: bool) -> Option<&'static str> {
    Some(match (c, in_class) {
        (b'd', false) => "[0-9]",
        (b'D', false) => "[^0-9]",
        (b'w', false) => "[0-9A-Za-z_]",
        (b'W', false) => "[^0-9A-Za-z_]",
        (b's', false) => "[\\t\\n\\f\\r ]",
        (b'S', false) => "[^\\t\\n\\f\\r ]",
        (b'b', false) => "(?-u:\\b)",
        (b'B', false) => "(?-u:\\B)",
        (b'd', true) => "0-9",
        (b'w', true) => "0-9A-Za-z_",
        (b's', true) => "\\t\\n\\f\\r ",
        _ => return None,
    })
}

fn translate(pat: &str, names: &mut Vec<String>) -> Result<String, String> {
    let b = pat.as_bytes();
    let mut out = String::with_capacity(pat.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut last_repeat: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            let e = b[i + 1];
            match class_escape(e, in_class) {
                Some(r) => out.push_str(r),
                None => out.push_str(&pat[i..i + 1 + utf8_len(b[i + 1])]),
            }
            i += 1 + utf8_len(e);
            last_repeat = None;
            continue;
        }
        if in_class {
            if c == b']' {
                in_class = false;
            }
            let n = utf8_len(c);
            out.push_str(&pat[i..i + n]);
            i += n;
            continue;
        }
        let op_end = match c {
            b'*' | b'+' | b'?' => Some(i + 1),
            b'{' => repeat_end(b, i),
            _ => None,
        };
        if let Some(mut end) = op_end {
            if c == b'{' {
                // Go refuses counts above 1000.
                let too_big = pat[i + 1..end - 1]
                    .split(',')
                    .any(|n| n.parse::<u32>().map_or(!n.is_empty(), |n| n > 1000));
                if too_big {
                    return Err(format!("invalid repeat count: `{}`", &pat[i..end]));
                }
            }
            if end < b.len() && b[end] == b'?' {
                end += 1;
            }
            if let Some(start) = last_repeat {
                return Err(format!(
                    "invalid nested repetition operator: `{}`",
                    &pat[start..end]
                ));
            }
            last_repeat = Some(i);
            out.push_str(&pat[i..end]);
            i = end;
            continue;
        }
        last_repeat = None;
        match c {
            b'{' => out.push_str("\\{"),
            b'[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if i < b.len() && b[i] == b'^' {
                    out.push('^');
                    i += 1;
                }
                if i < b.len() && b[i] == b']' {
                    out.push_str("\\]");
                    i += 1;
                }
                continue;
            }
            b'(' if pat[i..].starts_with("(?<") => {
                return Err("invalid or unsupported Perl syntax: `(?<`".into());
            }
            b'(' if pat[i..].starts_with("(?P<") => {
                let rest = &pat[i + 4..];
                let end = rest.find('>').filter(|&j| {
                    j > 0
                        && rest[..j]
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
                });
                let Some(j) = end else {
                    let text = match rest.find('>') {
                        Some(j) => &pat[i..i + 5 + j],
                        None => &pat[i..],
                    };
                    return Err(format!("invalid named capture: `{text}`"));
                };
                names.push(rest[..j].to_string());
                out.push('(');
                i += 5 + j;
                continue;
            }
            b'(' => {
                if !pat[i..].starts_with("(?") {
                    names.push(String::new());
                }
                out.push('(');
            }
            _ => {
                let n = utf8_len(c);
                out.push_str(&pat[i..i + n]);
                i += n;
                continue;
            }
        }
        i += 1;
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// The part of the pattern the crate's error points at (its `^^^` line), by characters.
fn span(pat: &str, msg: &str) -> Option<(usize, String)> {
    let lines: Vec<&str> = msg.lines().collect();
    let carets = lines.get(2)?;
    let start = carets.find('^')?.checked_sub(4)?;
    let len = carets.matches('^').count();
    let frag: String = pat.chars().skip(start).take(len).collect();
    Some((start, frag))
}

fn reword(pat: &str, e: &regex::Error) -> String {
    let m = e.to_string();
    let sp = span(pat, &m);
    let from_span_to_end = |sp: &Option<(usize, String)>| match sp {
        Some((start, _)) => pat.chars().skip(*start).collect::<String>(),
        None => pat.to_string(),
    };
    let frag =
        |sp: &Option<(usize, String)>| sp.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();
    let (code, text) = if m.contains("unclosed group") {
        ("missing closing )", pat.to_string())
    } else if m.contains("unopened group") {
        ("unexpected )", pat.to_string())
    } else if m.contains("unclosed character class") {
        ("missing closing ]", from_span_to_end(&sp))
    } else if m.contains("repetition count range")
        || m.contains("repetition quantifier") && m.contains("exceed")
    {
        ("invalid repeat count", frag(&sp))
    } else if m.contains("backreferences") || m.contains("unrecognized escape") {
        ("invalid escape sequence", frag(&sp))
    } else if m.contains("capture group name") {
        let rest = from_span_to_end(&sp);
        let start = pat
            .find("(?P<")
            .map(|i| &pat[i..])
            .unwrap_or(rest.as_str())
            .to_string();
        let text = match start.find('>') {
            Some(j) => start[..=j].to_string(),
            None => start,
        };
        ("invalid named capture", text)
    } else if m.contains("repetition operator missing expression") {
        ("missing argument to repetition operator", frag(&sp))
    } else if m.contains("invalid character class range") {
        ("invalid character class range", frag(&sp))
    } else {
        let last = m
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        return format!("error parsing regexp: {last}");
    };
    format!("error parsing regexp: {code}: `{text}`")
}
