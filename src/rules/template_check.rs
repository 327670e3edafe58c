//! The built-in parse check of alert label and annotation templates, so `strata check rules`
//! reports the template mistakes promtool 2.42 reports (`template: __alert_A:1: unclosed
//! action`) before the template engine exists. It lexes Go `text/template` actions as Go 1.20
//! does — delimiters, comments, quoted, raw and character strings, parentheses, function
//! names (Go's builtins and Prometheus 2.42's), variables (`$labels`, `$value`, ... and those
//! declared with `:=`, scoped to their control structure), and the nesting of `if`/`range`/
//! `with`/`define`/`block` with `else` and `end` — and words each error as Go's parser does.
//! The full parse (pipelines, operand syntax, `define` scopes) comes with the template engine
//! (`src/rules/template/`), which plugs in through `file::TemplateCheck`.

/// Go's `text/template` builtins and Prometheus 2.42's template functions.
const FUNCTIONS: &[&str] = &[
    "and",
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "urlquery",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "tmpl",
];

/// Words that are not function names.
const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template",
    "with", "true", "false",
];

/// The variables Prometheus declares before the user's text (`$` is Go's own).
const PREDECLARED: &[&str] = &["$", "$labels", "$externalLabels", "$externalURL", "$value"];

/// Checks `text`, a label or annotation of alerting rule `alert`; `Err` is Go's message,
/// `template: __alert_<alert>:<line>: <problem>`.
pub fn check_delimiters(alert: &str, text: &str) -> Result<(), String> {
    let name = format!("__alert_{alert}");
    Lexer {
        s: text.as_bytes(),
        pos: 0,
        stack: Vec::new(),
        vars: PREDECLARED.iter().map(|v| v.to_string()).collect(),
    }
    .run()
    .map_err(|(line, msg)| format!("template: {name}:{line}: {}", msg.replace("{NAME}", &name)))
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    /// Open control structures (`if`, `range`, ...) waiting for their `end`, each with the
    /// number of variables declared when it opened (its own go out of scope at `end`).
    stack: Vec<(&'static str, usize)>,
    /// The variables in scope, `$` included.
    vars: Vec<String>,
}

type LexResult<T> = Result<T, (usize, String)>;

impl Lexer<'_> {
    fn line_at(&self, pos: usize) -> usize {
        1 + self.s[..pos.min(self.s.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn rest(&self) -> &[u8] {
        &self.s[self.pos.min(self.s.len())..]
    }

    fn run(mut self) -> LexResult<()> {
        while let Some(i) = find(self.rest(), b"{{") {
            self.pos += i + 2;
            self.action()?;
        }
        if !self.stack.is_empty() {
            return Err((self.line_at(self.s.len()), "unexpected EOF".to_string()));
        }
        Ok(())
    }

    /// One action, from just after `{{` to just after its `}}`.
    fn action(&mut self) -> LexResult<()> {
        let start = self.pos - 2;
        // `{{- ` trims the text before; the marker needs a space after it.
        if self.rest().starts_with(b"- ") || self.rest().starts_with(b"-\t") {
            self.pos += 1;
        }
        let after_space = self.pos + self.rest().iter().take_while(|b| is_space(**b)).count();
        if self.s[after_space.min(self.s.len())..].starts_with(b"/*") {
            return self.comment(after_space);
        }
        let mut depth = 0usize;
        let mut first_word = true;
        loop {
            let rest = self.rest();
            let Some(&c) = rest.first() else {
                let line = self.line_at(self.s.len());
                let start_line = self.line_at(start);
                let msg = if line == start_line {
                    "unclosed action".to_string()
                } else {
                    format!("unclosed action started at {{NAME}}:{start_line}")
                };
                return Err((line, msg));
            };
            if rest.starts_with(b"}}") || at_trim_right(rest) {
                if depth > 0 {
                    return Err((self.line_at(self.pos), "unclosed left paren".to_string()));
                }
                self.pos += find(rest, b"}}").map(|i| i + 2).unwrap_or(rest.len());
                return Ok(());
            }
            match c {
                b'"' => self.quoted(b'"', "unterminated quoted string")?,
                b'\'' => self.quoted(b'\'', "unterminated character constant")?,
                b'`' => {
                    let from = self.pos;
                    match find(&rest[1..], b"`") {
                        Some(i) => self.pos += i + 2,
                        None => {
                            return Err((
                                self.line_at(from),
                                "unterminated raw quoted string".to_string(),
                            ))
                        }
                    }
                }
                b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' => {
                    if depth == 0 {
                        return Err((
                            self.line_at(self.pos),
                            "unexpected \")\" in command".to_string(),
                        ));
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                b'}' => {
                    return Err((
                        self.line_at(self.pos),
                        "unexpected \"}\" in operand".to_string(),
                    ))
                }
                b'.' => {
                    // A field: the name after it is not a function.
                    self.pos += 1;
                    self.skip_word();
                    first_word = false;
                }
                b'$' => {
                    self.variable()?;
                    first_word = false;
                }
                c if c.is_ascii_digit() => {
                    self.skip_word();
                    first_word = false;
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let from = self.pos;
                    self.skip_word();
                    let word = String::from_utf8_lossy(&self.s[from..self.pos]).into_owned();
                    self.word(&word, from, first_word && depth == 0)?;
                    first_word = false;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// A keyword or function name; `leading` when it starts the action (where keywords act).
    fn word(&mut self, word: &str, from: usize, leading: bool) -> LexResult<()> {
        if KEYWORDS.contains(&word) {
            if !leading {
                return Ok(());
            }
            match word {
                "if" | "range" | "with" | "define" | "block" => {
                    let kind = KEYWORDS
                        .iter()
                        .find(|k| **k == word)
                        .copied()
                        .unwrap_or("if");
                    self.stack.push((kind, self.vars.len()));
                }
                "end" => self.close(from)?,
                "else" => self.else_branch(from)?,
                _ => {}
            }
            return Ok(());
        }
        if FUNCTIONS.contains(&word) {
            return Ok(());
        }
        Err((
            self.line_at(from),
            format!("function \"{word}\" not defined"),
        ))
    }

    /// `{{end}}` closes the innermost open structure.
    fn close(&mut self, from: usize) -> LexResult<()> {
        match self.stack.pop() {
            Some((_, declared)) => {
                self.vars.truncate(declared);
                Ok(())
            }
            None => Err((self.line_at(from), "unexpected {{end}}".to_string())),
        }
    }

    /// `{{else}}` belongs inside `if`, `range` or `with`.
    fn else_branch(&self, from: usize) -> LexResult<()> {
        match self.stack.last() {
            Some(&("if" | "range" | "with", _)) => Ok(()),
            _ => Err((self.line_at(from), "unexpected {{else}}".to_string())),
        }
    }

    /// `$name`: declared by `:=` (also `$i, $e :=` in `range`), assigned by `=`, else it
    /// must be in scope.
    fn variable(&mut self) -> LexResult<()> {
        let from = self.pos;
        let name = self.var_name();
        let after = self.skip_spaces_from(self.pos);
        let rest = &self.s[after..];
        if rest.starts_with(b":=") {
            self.vars.push(name);
            return Ok(());
        }
        if rest.starts_with(b"=") && !rest.starts_with(b"==") {
            // Go's parser does not check the target of an assignment.
            return Ok(());
        }
        if rest.starts_with(b",") {
            let second = self.skip_spaces_from(after + 1);
            if self.s.get(second) == Some(&b'$') {
                self.pos = second;
                let other = self.var_name();
                let after = self.skip_spaces_from(self.pos);
                if self.s[after..].starts_with(b":=") {
                    self.vars.push(name);
                    self.vars.push(other);
                    return Ok(());
                }
                self.pos = second;
            }
        }
        if self.vars.contains(&name) {
            return Ok(());
        }
        Err((self.line_at(from), format!("undefined variable \"{name}\"")))
    }

    /// Reads `$` and the name after it.
    fn var_name(&mut self) -> String {
        let from = self.pos;
        self.pos += 1;
        self.skip_word();
        String::from_utf8_lossy(&self.s[from..self.pos]).into_owned()
    }

    fn skip_spaces_from(&self, mut at: usize) -> usize {
        while at < self.s.len() && matches!(self.s[at], b' ' | b'\t') {
            at += 1;
        }
        at.min(self.s.len())
    }

    fn skip_word(&mut self) {
        while let Some(&c) = self.rest().first() {
            if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// A `"..."` or `'.'` literal with backslash escapes; it may not span lines.
    fn quoted(&mut self, quote: u8, unterminated: &str) -> LexResult<()> {
        let from = self.pos;
        self.pos += 1;
        loop {
            match self.rest().first() {
                None | Some(b'\n') => return Err((self.line_at(from), unterminated.to_string())),
                Some(b'\\') => self.pos += 2,
                Some(&c) if c == quote => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// `{{/* ... */}}`: the comment must close and be followed by the right delimiter.
    fn comment(&mut self, at: usize) -> LexResult<()> {
        let line = self.line_at(at);
        let body = &self.s[at + 2..];
        let Some(end) = find(body, b"*/") else {
            return Err((line, "unclosed comment".to_string()));
        };
        self.pos = at + 2 + end + 2;
        let rest = self.rest();
        if rest.starts_with(b"}}") {
            self.pos += 2;
            return Ok(());
        }
        if at_trim_right(rest) {
            self.pos += find(rest, b"}}").map(|i| i + 2).unwrap_or(rest.len());
            return Ok(());
        }
        Err((line, "comment ends before closing delimiter".to_string()))
    }
}

/// ` -}}`: a space, the trim marker and the right delimiter.
fn at_trim_right(s: &[u8]) -> bool {
    s.len() >= 4 && is_space(s[0]) && &s[1..4] == b"-}}"
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::check_delimiters as check;

    /// Each message was printed by promtool 2.42 for the same annotation text.
    #[test]
    fn matches_promtool_messages() {
        let cases = [
            ("{{ $labels.x", "template: __alert_A:1: unclosed action"),
            (
                "{{ $labels.x\n\n",
                "template: __alert_A:3: unclosed action started at __alert_A:1",
            ),
            ("x\n{{/* c ", "template: __alert_A:2: unclosed comment"),
            (
                "{{ humanise $value }}",
                "template: __alert_A:1: function \"humanise\" not defined",
            ),
            (
                "a\n\n{{ (1 }}",
                "template: __alert_A:3: unclosed left paren",
            ),
            (
                "{{ 1) }}",
                "template: __alert_A:1: unexpected \")\" in command",
            ),
            (
                "{{ 'a",
                "template: __alert_A:1: unterminated character constant",
            ),
            (
                "{{ `abc",
                "template: __alert_A:1: unterminated raw quoted string",
            ),
            ("{{ end }}", "template: __alert_A:1: unexpected {{end}}"),
            ("{{ if 1 }}", "template: __alert_A:1: unexpected EOF"),
            (
                "{{ 1 }",
                "template: __alert_A:1: unexpected \"}\" in operand",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(check("A", text).unwrap_err(), want, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{{", "}}", "{{-", " -}}", "/*", "*/", "\"", "'", "`", "\\", "(", ")",
                    "$x", ":=", ",", "=", "$labels", ".a", "if", "else", "end", "range", "x",
                    " ", "\n", "}", "é", "define",
                ]),
                0..40,
            )
        ) {
            let _ = check("A", &parts.concat());
        }
    }

    #[test]
    fn accepts_valid_templates() {
        let ok = [
            "",
            "plain text } {",
            "{{ $labels.instance }} down",
            "{{ .Foo.bar }} {{ $x := 1 }}{{ printf \"%s\" (humanize 1) | toUpper }}",
            "{{ nil }}",
            "{{- if gt $value 1.0 -}} high {{- else -}} low {{- end }}",
            "{{ range $i, $e := query \"up\" }}{{ $e.Labels.job }}{{ end }}",
            "{{/* a comment */}}{{ \"}}\" }}{{ `raw }}` }}",
            "{{ define \"x\" }}y{{ end }}{{ template \"x\" }}",
            "{{ with $labels.a }}{{ . }}{{ else }}none{{ end }}",
            "{{ $x := 1 }}{{ $x }}",
            "{{ range $i, $e := $labels }}{{ $i }}{{ $e }}{{ end }}",
            "{{ $x = 1 }}",
            "{{ with $x := 1 }}{{ $x }}{{ end }}",
            "{{ $externalLabels.cluster }} {{ $externalURL }} {{ $ }}",
        ];
        for text in ok {
            assert_eq!(check("A", text), Ok(()), "{text:?}");
        }
    }
}
