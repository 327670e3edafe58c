//! The error type of the PromQL engine and its mapping to the Prometheus HTTP API `errorType`.

/// Every way a query can fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromqlError {
    /// The query text does not parse (Prometheus `bad_data`); the text is Prometheus's
    /// `<line>:<col>: parse error: <what>` where the position is known.
    #[error("{0}")]
    Parse(String),
    /// Other invalid request parameters, e.g. a non-positive step (Prometheus `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (Prometheus `execution`).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its deadline (Prometheus `timeout`).
    #[error("query timed out in {0}")]
    Timeout(String),
    /// The query was canceled by its caller (Prometheus `canceled`).
    #[error("query was canceled in {0}")]
    Canceled(String),
    /// Reading from storage failed (Prometheus `execution`).
    #[error("{0}")]
    Storage(String),
}

/// What kind of failure a `PromqlError` is: what a caller (the HTTP API's error mapping, the
/// rule evaluator) decides on, instead of matching message texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The query text does not parse; the API reports it as a bad `query` parameter.
    Parse,
    /// Invalid request parameters (Prometheus `bad_data`).
    BadData,
    /// Evaluation or storage failed (Prometheus `execution`).
    Execution,
    /// The query ran past its deadline (Prometheus `timeout`).
    Timeout,
    /// The caller canceled the query (Prometheus `canceled`).
    Canceled,
}

impl PromqlError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PromqlError::Parse(_) => ErrorKind::Parse,
            PromqlError::BadData(_) => ErrorKind::BadData,
            PromqlError::Execution(_) | PromqlError::Storage(_) => ErrorKind::Execution,
            PromqlError::Timeout(_) => ErrorKind::Timeout,
            PromqlError::Canceled(_) => ErrorKind::Canceled,
        }
    }

    /// The `errorType` string of the Prometheus HTTP API.
    pub fn error_type(&self) -> &'static str {
        match self.kind() {
            ErrorKind::Parse | ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
        }
    }

    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        PromqlError::Execution(msg.into())
    }

    /// A parse error without a known position.
    pub(crate) fn parse(msg: impl std::fmt::Display) -> Self {
        PromqlError::Parse(format!("parse error: {msg}"))
    }

    /// A parse error of the `promql-parser` crate for `query`, worded and positioned like
    /// Prometheus's where the crate's message allows it: the crate reports no positions, so
    /// only errors whose place follows from the message get one (the end of the input for an
    /// unclosed construct, the call for an unknown function or a wrong argument count).
    pub(crate) fn from_parser(query: &str, msg: &str) -> Self {
        if msg == crate::promql::syntax_error::INVALID_QUERY {
            if let Some((offset, text)) = crate::promql::syntax_error::locate(query) {
                let (line, col) = line_col(query, offset);
                return PromqlError::Parse(format!("{line}:{col}: parse error: {text}"));
            }
        }
        let text = prometheus_wording(msg);
        match error_offset(query, msg) {
            Some(offset) => {
                let (line, col) = line_col(query, offset);
                PromqlError::Parse(format!("{line}:{col}: parse error: {text}"))
            }
            None => PromqlError::Parse(format!("parse error: {text}")),
        }
    }
}

/// The crate names value types and quotes names differently from Prometheus.
fn prometheus_wording(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("ParseFloatError. ") {
        // Go's strconv wording, for a number literal the lexer accepted.
        let literal = rest.split(" can't be parsed").next().unwrap_or(rest);
        return format!(
            "error parsing number: strconv.ParseFloat: parsing \"{literal}\": invalid syntax"
        );
    }
    let mut out = String::with_capacity(msg.len() + 16);
    let mut rest = msg;
    // 'name' -> "name" (function names and tokens in the crate's messages); a single quoted
    // character stays in single quotes, as Go prints a rune.
    while let Some(i) = rest.find('\'') {
        let Some(j) = rest[i + 1..].find('\'') else {
            break;
        };
        let inner = &rest[i + 1..i + 1 + j];
        let q = if inner.chars().count() == 1 {
            '\''
        } else {
            '"'
        };
        out.push_str(&rest[..i]);
        out.push(q);
        out.push_str(inner);
        out.push(q);
        rest = &rest[i + 2 + j..];
    }
    out.push_str(rest);
    for (from, to) in [
        (
            "unexpected end of input inside brackets",
            "unclosed left bracket",
        ),
        ("type matrix", "type range vector"),
        ("type vector", "type instant vector"),
        ("got matrix", "got range vector"),
        ("got vector", "got instant vector"),
        ("in aggregation expression", "in aggregation parameter"),
        (
            "of type scalar or vector, got: string",
            "of type scalar or instant vector, got \"string\"",
        ),
    ] {
        out = out.replace(from, to);
    }
    out
}

/// `(offset, byte)` of every byte of `query` outside string literals, and where a string
/// literal that never closes opens.
fn scan_code(query: &str) -> (Vec<(usize, u8)>, Option<usize>) {
    let mut out = Vec::with_capacity(query.len());
    let mut open: Option<(usize, u8)> = None;
    let mut escaped = false;
    for (i, b) in query.bytes().enumerate() {
        if let Some((_, q)) = open {
            // Backquoted (raw) strings have no escapes.
            if escaped {
                escaped = false;
            } else if b == b'\\' && q != b'`' {
                escaped = true;
            } else if b == q {
                open = None;
            }
            continue;
        }
        if matches!(b, b'"' | b'\'' | b'`') {
            open = Some((i, b));
            continue;
        }
        out.push((i, b));
    }
    (out, open.map(|(i, _)| i))
}

fn code_bytes(query: &str) -> Vec<(usize, u8)> {
    scan_code(query).0
}

/// Where the lexer stopped, for its character-level errors (which Prometheus locates).
fn lexer_error_offset(query: &str, msg: &str) -> Option<usize> {
    let code = code_bytes(query);
    if let Some(c) = msg.strip_prefix("unexpected character inside braces: '") {
        let c = *c.as_bytes().first()?;
        let mut depth = 0i32;
        for &(i, b) in &code {
            match b {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ if b == c && depth > 0 => return Some(i),
                _ => {}
            }
        }
        return None;
    }
    if let Some(c) = msg.strip_prefix("unexpected character after '!': '") {
        let c = *c.as_bytes().first()?;
        return code
            .windows(2)
            .find(|w| w[0].1 == b'!' && w[1].1 == c && w[1].0 == w[0].0 + 1)
            .map(|w| w[0].0);
    }
    if msg.starts_with("unexpected right parenthesis") {
        // Prometheus points just past the parenthesis that closes nothing.
        let mut depth = 0i32;
        for &(i, b) in &code {
            match b {
                b'(' => depth += 1,
                b')' if depth == 0 => return Some(i + 1),
                b')' => depth -= 1,
                _ => {}
            }
        }
        return None;
    }
    if msg.starts_with("ranges only allowed for vector selectors") {
        // A range on a parenthesised or function expression: `...)[5m]`.
        return code
            .windows(2)
            .find(|w| w[0].1 == b')' && w[1].1 == b'[')
            .map(|w| w[1].0);
    }
    if msg.starts_with("vector selector must contain at least one non-empty matcher") {
        // A selector without a metric name: a `{` that follows no identifier.
        let mut prev: Option<u8> = None;
        for &(i, b) in &code {
            if b == b'{' && !prev.is_some_and(is_ident_byte) {
                return Some(i);
            }
            if !b.is_ascii_whitespace() {
                prev = Some(b);
            }
        }
        return None;
    }
    if let Some(rest) = msg.strip_prefix("ParseFloatError. ") {
        let literal = rest.split(" can't be parsed").next()?;
        return call_free_token_offset(query, literal);
    }
    if msg.starts_with("unterminated quoted string") {
        return scan_code(query).1;
    }
    let first = query.len() - query.trim_start().len();
    if msg.starts_with("unary expression only allowed") {
        return query[first..].starts_with(['-', '+']).then_some(first);
    }
    // Prometheus points at the start of the binary expression; without parentheses the
    // query has one level, which starts where the query does.
    let binary = msg.starts_with("binary expression must contain only")
        || msg.contains("not allowed in binary scalar expression");
    if binary && !code.iter().any(|&(_, b)| b == b'(') {
        return Some(first);
    }
    None
}

/// The first occurrence of `token` that is a whole token (no identifier byte around it).
fn call_free_token_offset(query: &str, token: &str) -> Option<usize> {
    let bytes = query.as_bytes();
    let mut from = 0;
    while let Some(i) = query[from..].find(token).map(|i| i + from) {
        let end = i + token.len();
        let before_ok = i == 0 || !is_ident_byte(bytes[i - 1]);
        let after_ok = end >= bytes.len() || !is_ident_byte(bytes[end]);
        if before_ok && after_ok {
            return Some(i);
        }
        from = end;
    }
    None
}

/// The first argument of the first parametric aggregation (`topk(k, ...)` and the like).
fn aggregation_parameter_offset(query: &str) -> Option<usize> {
    const PARAMETRIC: [&str; 6] = [
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
    ];
    let at = PARAMETRIC
        .iter()
        .filter_map(|name| call_offset(query, name).map(|i| (i, name.len())))
        .min()?;
    let open = at.0 + at.1 + query[at.0 + at.1..].find('(')?;
    let arg = open + 1;
    let skipped = query[arg..].len() - query[arg..].trim_start().len();
    Some(arg + skipped)
}

/// Byte offset in `query` the error is about, where the message pins it down.
fn error_offset(query: &str, msg: &str) -> Option<usize> {
    const AT_END: [&str; 4] = [
        "unclosed left parenthesis",
        "unclosed left bracket",
        "unclosed left brace",
        "unexpected end of input",
    ];
    if AT_END.iter().any(|p| msg.starts_with(p)) {
        return Some(query.len());
    }
    if let Some(offset) = lexer_error_offset(query, msg) {
        return Some(offset);
    }
    if msg.contains("in aggregation expression, got") {
        return aggregation_parameter_offset(query);
    }
    if let Some(rest) = msg.strip_prefix("expected type ") {
        // Prometheus points at the offending argument; the crate does not say which one.
        let name = rest
            .split("call to function '")
            .nth(1)?
            .split('\'')
            .next()?;
        let after_name = call_offset(query, name)? + name.len();
        let want = rest.split(' ').next()?;
        let got = rest.rsplit("got ").next()?.trim();
        return single_argument_offset(query, after_name)
            .or_else(|| offending_argument(query, name, after_name, want, got));
    }
    let name = if let Some(rest) = msg.strip_prefix("unknown function with name '") {
        rest.split('\'').next()
    } else if msg.contains("argument(s) in call to '") {
        msg.split("in call to '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
    } else {
        None
    }?;
    call_offset(query, name)
}

/// Where the first call `name(` starts (the name must not continue another identifier).
fn call_offset(query: &str, name: &str) -> Option<usize> {
    let bytes = query.as_bytes();
    let mut from = 0;
    while let Some(i) = query[from..].find(name).map(|i| i + from) {
        let before_ok = i == 0 || !is_ident_byte(bytes[i - 1]);
        let after = query[i + name.len()..].trim_start();
        if before_ok && after.starts_with('(') {
            return Some(i);
        }
        from = i + name.len();
    }
    None
}

/// The start of the argument of the call whose `(` follows `after_name`, when the call has
/// exactly one argument.
fn single_argument_offset(query: &str, after_name: usize) -> Option<usize> {
    match argument_spans(query, after_name)?.as_slice() {
        [(start, _)] => Some(*start),
        _ => None,
    }
}

/// The argument of the call to `name` after `after_name` that has type `got` where `want`
/// is expected: the first of type `got` which, replaced by a literal of type `want`, does not
/// cause the inverse error (as an argument that rightly has type `got` would).
fn offending_argument(
    query: &str,
    name: &str,
    after_name: usize,
    want: &str,
    got: &str,
) -> Option<usize> {
    let probe = match want {
        "scalar" => "1",
        "vector" => "foo",
        "matrix" => "foo[1m]",
        "string" => "\"a\"",
        _ => return None,
    };
    let inverse = format!("expected type {got} in call to function '{name}', got {want}");
    for (start, end) in argument_spans(query, after_name)? {
        let Ok(arg) = promql_parser::parser::parse(&query[start..end]) else {
            continue;
        };
        let arg_type = match arg.value_type() {
            promql_parser::parser::value::ValueType::Scalar => "scalar",
            promql_parser::parser::value::ValueType::Vector => "vector",
            promql_parser::parser::value::ValueType::Matrix => "matrix",
            promql_parser::parser::value::ValueType::String => "string",
        };
        if arg_type != got {
            continue;
        }
        let fixed = format!("{}{probe}{}", &query[..start], &query[end..]);
        // An argument that rightly has type `got` turns the error into its inverse; the
        // first one that does not is the culprit (later ones may keep the error alive).
        if promql_parser::parser::parse(&fixed).err().as_deref() != Some(inverse.as_str()) {
            return Some(start);
        }
    }
    None
}

/// Byte ranges of the arguments (without surrounding blanks) of the call whose `(` follows
/// `after_name`.
fn argument_spans(query: &str, after_name: usize) -> Option<Vec<(usize, usize)>> {
    let open = after_name + query[after_name..].find('(')?;
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    for (i, b) in code_bytes(query) {
        if i < open {
            continue;
        }
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    spans.push((start, i));
                    break;
                }
            }
            b',' if depth == 1 => {
                spans.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    let trimmed = spans
        .into_iter()
        .map(|(s, e)| {
            let text = &query[s..e];
            let lead = text.len() - text.trim_start().len();
            (s + lead, s + lead + text.trim().len())
        })
        .filter(|(s, e)| s < e)
        .collect();
    Some(trimmed)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// Prometheus counts lines and columns from 1, columns in bytes.
fn line_col(query: &str, offset: usize) -> (usize, usize) {
    let before = &query.as_bytes()[..offset.min(query.len())];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    (line, offset - line_start + 1)
}

impl From<crate::storage::model::QueryableError> for PromqlError {
    fn from(e: crate::storage::model::QueryableError) -> Self {
        match e {
            crate::storage::model::QueryableError::Canceled(m) => PromqlError::Canceled(m),
            other => PromqlError::Storage(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, PromqlError>;

/// The message Prometheus gives when a query would exceed `max_samples`.
pub const TOO_MANY_SAMPLES: &str =
    "query processing would load too many samples into memory in query execution";

#[cfg(test)]
mod tests {
    use super::*;

    fn text(q: &str, msg: &str) -> String {
        PromqlError::from_parser(q, msg).to_string()
    }

    #[test]
    fn unclosed_constructs_point_past_the_end_like_prometheus() {
        assert_eq!(
            text("sum(", "unclosed left parenthesis"),
            "1:5: parse error: unclosed left parenthesis"
        );
        assert_eq!(
            text("foo{", "unexpected end of input inside braces"),
            "1:5: parse error: unexpected end of input inside braces"
        );
        assert_eq!(
            text("sum(\n  rate(x[5m])", "unclosed left parenthesis"),
            "2:14: parse error: unclosed left parenthesis"
        );
    }

    #[test]
    fn calls_are_located_and_worded_like_prometheus() {
        assert_eq!(
            text(
                "1 + unknown_fn(x)",
                "unknown function with name 'unknown_fn'"
            ),
            "1:5: parse error: unknown function with name \"unknown_fn\""
        );
        assert_eq!(
            text(
                "xabs(y) + abs (foo, bar)",
                "expected 1 argument(s) in call to 'abs', got 2"
            ),
            "1:11: parse error: expected 1 argument(s) in call to \"abs\", got 2"
        );
    }

    #[test]
    fn types_are_named_like_prometheus_and_the_offending_argument_located() {
        assert_eq!(
            text("rate(foo)", "expected type matrix in call to function 'rate', got vector"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!(
            text(
                "clamp(a, b, c)",
                "expected type scalar in call to function 'clamp', got vector"
            ),
            "1:10: parse error: expected type scalar in call to function \"clamp\", got instant vector"
        );
        assert_eq!(
            text("up[5m", "unexpected end of input inside brackets"),
            "1:6: parse error: unclosed left bracket"
        );
        assert_eq!(
            text(&"x + ".repeat(5000), "invalid promql query"),
            "parse error: invalid promql query"
        );
    }

    /// The parse error of `q` as the API reports it.
    fn parsed(q: &str) -> String {
        crate::promql::engine::parse_query(q, 60_000, 0)
            .err()
            .unwrap_or_else(|| panic!("{q} parses"))
            .to_string()
    }

    // Every expected text below is what a live Prometheus 2.42 answered for the same query.
    #[test]
    fn syntax_errors_name_the_unexpected_token_like_prometheus() {
        for (q, want) in [
            ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
            ("1 +", "1:4: parse error: unexpected end of input"),
            ("foo and", "1:8: parse error: unexpected end of input"),
            ("foo == bool", "1:12: parse error: unexpected end of input"),
            ("[5m]", "1:1: parse error: unexpected \"[\""),
            ("NaN(1)", "1:4: parse error: unexpected \"(\""),
            ("offset 5m", "1:8: parse error: unexpected duration \"5m\""),
            ("foo{__name__=\"a\"}{}", "1:18: parse error: unexpected \"{\""),
            ("sum(foo) without (a) by (b)", "1:22: parse error: unexpected <by>"),
            (
                "foo * on(a) group_left(b) group_right bar",
                "1:27: parse error: unexpected <group_right>",
            ),
            (
                "sum by (a) foo",
                "1:12: parse error: unexpected identifier \"foo\" in aggregation",
            ),
            (
                "sum without() by() (foo)",
                "1:15: parse error: unexpected <by> in aggregation",
            ),
            (
                "sum(foo) by",
                "1:12: parse error: unexpected end of input in grouping opts, expected \"(\"",
            ),
            (
                "foo{a=}",
                "1:7: parse error: unexpected \"}\" in label matching, expected string",
            ),
            (
                "foo{a=\"b\" b=\"c\"}",
                "1:11: parse error: unexpected identifier \"b\" in label matching, expected \",\" or \"}\"",
            ),
        ] {
            assert_eq!(parsed(q), want, "{q}");
        }
    }

    #[test]
    fn lexer_and_check_errors_are_worded_and_located_like_prometheus() {
        for (q, want) in [
            ("foo{a~\"b\"}", "1:6: parse error: unexpected character inside braces: '~'"),
            ("foo !~ bar", "1:5: parse error: unexpected character after '!': '~'"),
            ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
            ("foo{a='b}", "1:7: parse error: unterminated quoted string"),
            (
                "{}",
                "1:1: parse error: vector selector must contain at least one non-empty matcher",
            ),
            (
                "max_over_time(rate(foo[5m])[5m])",
                "1:28: parse error: ranges only allowed for vector selectors",
            ),
            (
                "1e",
                "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax",
            ),
            (
                "histogram_quantile(foo, bar)",
                "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", got instant vector",
            ),
            (
                "clamp(foo, bar, 1)",
                "1:12: parse error: expected type scalar in call to function \"clamp\", got instant vector",
            ),
            (
                "topk(foo, bar)",
                "1:6: parse error: expected type scalar in aggregation parameter, got instant vector",
            ),
            (
                "count_values(1, foo)",
                "1:14: parse error: expected type string in aggregation parameter, got scalar",
            ),
            (
                "-\"a\"",
                "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
            ),
            (
                "foo[5m] + 1",
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "1 and 2",
                "1:1: parse error: set operator \"and\" not allowed in binary scalar expression",
            ),
        ] {
            assert_eq!(parsed(q), want, "{q}");
        }
    }
}
