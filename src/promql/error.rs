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

impl PromqlError {
    /// The `errorType` string of the Prometheus HTTP API.
    pub fn error_type(&self) -> &'static str {
        match self {
            PromqlError::Parse(_) | PromqlError::BadData(_) => "bad_data",
            PromqlError::Execution(_) | PromqlError::Storage(_) => "execution",
            PromqlError::Timeout(_) => "timeout",
            PromqlError::Canceled(_) => "canceled",
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
    let mut out = String::with_capacity(msg.len() + 16);
    let mut rest = msg;
    // 'name' -> "name" (function names and tokens in the crate's messages).
    while let Some(i) = rest.find('\'') {
        let Some(j) = rest[i + 1..].find('\'') else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push('"');
        out.push_str(&rest[i + 1..i + 1 + j]);
        out.push('"');
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
    ] {
        out = out.replace(from, to);
    }
    out
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
    if let Some(rest) = msg.strip_prefix("expected type ") {
        // Prometheus points at the offending argument; the crate does not say which one,
        // so only a call with a single argument is located.
        let name = rest
            .split("call to function '")
            .nth(1)?
            .split('\'')
            .next()?;
        return single_argument_offset(query, call_offset(query, name)? + name.len());
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
    let open = after_name + query[after_name..].find('(')?;
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for b in query.bytes().skip(open) {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'"' | b'\'' | b'`' => quote = Some(b),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => return None,
            _ => {}
        }
    }
    let arg = open + 1;
    let skipped = query[arg..].len() - query[arg..].trim_start().len();
    Some(arg + skipped)
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
    fn types_are_named_like_prometheus_and_located_only_when_unambiguous() {
        assert_eq!(
            text("rate(foo)", "expected type matrix in call to function 'rate', got vector"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
        );
        assert_eq!(
            text(
                "clamp(a, b, c)",
                "expected type scalar in call to function 'clamp', got vector"
            ),
            "parse error: expected type scalar in call to function \"clamp\", got instant vector"
        );
        assert_eq!(
            text("up[5m", "unexpected end of input inside brackets"),
            "1:6: parse error: unclosed left bracket"
        );
        assert_eq!(
            text("foo bar", "invalid promql query"),
            "parse error: invalid promql query"
        );
    }
}
