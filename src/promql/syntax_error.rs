//! Locates a syntax error that the promql-parser crate reports only as "invalid promql query"
//! (its LR parser's diagnostics are dropped), and words it like Prometheus's yacc parser:
//! `unexpected <token>` at the token, with Prometheus's context for label matchers,
//! aggregations and grouping clauses. The crate's lexer gives the tokens; the crate's parser
//! decides, for each prefix of them, whether some short completion makes a query, so the
//! first token after which none does is the unexpected one. This only runs on the error path,
//! and only for queries short enough that re-parsing some of their prefixes is cheap.

use promql_parser::parser::token::{self, TokenId, TokenType};
use promql_parser::parser::{lexer, parse};

use crate::gocompat::go_quote;

/// What the crate says for any syntax error of its grammar.
pub(crate) const INVALID_QUERY: &str = "invalid promql query";

/// Longer queries keep the crate's message (each probe parses a prefix a few dozen times).
const MAX_DIAGNOSED_LEN: usize = 16 * 1024;

/// Text tried at the cut to see whether a prefix can still become a query.
const MIDDLES: [&str; 10] = [
    "", " 1", " foo", "\"b\"", "=\"b\"", "a", " (a)", " 5m", " (foo)", "(foo)",
];
/// Text tried after the brackets are closed (an aggregation still needs its body).
const TAILS: [&str; 3] = ["", " (foo)", " foo"];

struct Tok {
    id: TokenId,
    start: usize,
    end: usize,
}

/// `(byte offset, message)` for a query the crate rejects with `INVALID_QUERY`, the message
/// without the `parse error: ` prefix. `None` when the query is too long or its tokens
/// cannot be read.
pub(crate) fn locate(query: &str) -> Option<(usize, String)> {
    if query.len() > MAX_DIAGNOSED_LEN {
        return None;
    }
    let toks = tokens(query)?;
    // A prefix that cannot be completed stays so however it continues, so the first such
    // prefix is found by bisection: a few dozen parses even for a long query.
    let stuck = |k: usize| !viable(&query[..toks[k].end], &toks[..=k]);
    let (mut lo, mut hi) = (0, toks.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if stuck(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let Some(tok) = toks.get(lo) else {
        return Some((
            query.len(),
            format!("unexpected end of input{}", context(&toks)),
        ));
    };
    let text = format!(
        "unexpected {}{}",
        describe(tok.id, &query[tok.start..tok.end]),
        context(&toks[..lo])
    );
    Some((tok.start, text))
}

fn tokens(query: &str) -> Option<Vec<Tok>> {
    use lrpar::{Lexeme, Lexer};
    let lx = lexer(query).ok()?;
    let mut out = Vec::new();
    for lexeme in lx.iter() {
        let lexeme = lexeme.ok()?;
        if lexeme.tok_id() == token::T_EOF {
            continue;
        }
        let span = lexeme.span();
        out.push(Tok {
            id: lexeme.tok_id(),
            start: span.start(),
            end: span.end(),
        });
    }
    Some(out)
}

/// Can `prefix` (whose tokens are `toks`) be completed into a query? A completion that parses,
/// or fails only on a non-syntax check (types, argument counts), says yes.
fn viable(prefix: &str, toks: &[Tok]) -> bool {
    let mut open: Vec<char> = Vec::new();
    for t in toks {
        match t.id {
            token::T_LEFT_PAREN => open.push(')'),
            token::T_LEFT_BRACKET => open.push(']'),
            token::T_LEFT_BRACE => open.push('}'),
            token::T_RIGHT_PAREN | token::T_RIGHT_BRACKET | token::T_RIGHT_BRACE => {
                open.pop();
            }
            _ => {}
        }
    }
    let closers: String = open.iter().rev().collect();
    for middle in MIDDLES {
        for tail in TAILS {
            let candidate = format!("{prefix}{middle}{closers}{tail}");
            // The completion must not glue onto the prefix's last token (`group_right` +
            // `a` is another identifier): a token has to end where the prefix does.
            let Some(toks) = tokens(&candidate) else {
                continue;
            };
            if !toks.iter().any(|t| t.end == prefix.len()) {
                continue;
            }
            match parse(&candidate) {
                Ok(_) => return true,
                Err(e) if e != INVALID_QUERY => return true,
                Err(_) => {}
            }
        }
    }
    false
}

/// Prometheus's description of a token (`Item.desc`).
fn describe(id: TokenId, text: &str) -> String {
    let kind = TokenType::new(id);
    let quoted = go_quote(text);
    match id {
        token::T_IDENTIFIER => format!("identifier {quoted}"),
        token::T_METRIC_IDENTIFIER => format!("metric identifier {quoted}"),
        token::T_NUMBER => format!("number {quoted}"),
        token::T_DURATION => format!("duration {quoted}"),
        token::T_STRING => format!("string {quoted}"),
        _ if kind.is_operator() => format!("<op:{text}>"),
        _ if kind.is_aggregator() => format!("<aggr:{text}>"),
        _ if id > token::T_KEYWORDS_START && id < token::T_KEYWORDS_END => format!("<{text}>"),
        _ => quoted,
    }
}

/// The `" in <context>, expected <what>"` suffix Prometheus's error productions add, judged
/// from the tokens before the unexpected one.
fn context(before: &[Tok]) -> String {
    let Some(last) = before.last() else {
        return String::new();
    };
    if brace_depth(before) > 0 {
        let expected = match last.id {
            token::T_EQL | token::T_NEQ | token::T_EQL_REGEX | token::T_NEQ_REGEX => "string",
            token::T_STRING if is_matcher_name(before) => "label matching operator",
            token::T_STRING => "\",\" or \"}\"",
            token::T_IDENTIFIER | token::T_METRIC_IDENTIFIER => "label matching operator",
            _ => "identifier or \"}\"",
        };
        return format!(" in label matching, expected {expected}");
    }
    match last.id {
        token::T_BY | token::T_WITHOUT => return " in grouping opts, expected \"(\"".to_string(),
        id if TokenType::new(id).is_aggregator() => return " in aggregation".to_string(),
        token::T_RIGHT_PAREN => {}
        _ => return String::new(),
    }
    // `sum by (a) <here>`: the parenthesis closes a grouping that follows an aggregator.
    let Some(open) = matching_open(before) else {
        return String::new();
    };
    let grouped = open >= 2
        && matches!(before[open - 1].id, token::T_BY | token::T_WITHOUT)
        && TokenType::new(before[open - 2].id).is_aggregator();
    if grouped {
        " in aggregation".to_string()
    } else {
        String::new()
    }
}

fn brace_depth(toks: &[Tok]) -> i32 {
    let mut depth = 0;
    for t in toks {
        match t.id {
            token::T_LEFT_BRACE => depth += 1,
            token::T_RIGHT_BRACE => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// A string right after `{` or `,` inside braces is a quoted label name, not a value.
fn is_matcher_name(before: &[Tok]) -> bool {
    before.len() >= 2
        && matches!(
            before[before.len() - 2].id,
            token::T_LEFT_BRACE | token::T_COMMA
        )
}

/// Index of the `(` that the final `)` of `toks` closes.
fn matching_open(toks: &[Tok]) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().rev() {
        match t.id {
            token::T_RIGHT_PAREN => depth += 1,
            token::T_LEFT_PAREN => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_queries_are_located_by_bisection_and_very_long_ones_left_alone() {
        let q = format!("{}foo bar", "sum(rate(foo[5m])) + ".repeat(400));
        assert!(q.len() < MAX_DIAGNOSED_LEN);
        let (offset, text) = locate(&q).unwrap_or_else(|| panic!("not located"));
        assert_eq!(offset, q.len() - 3);
        assert_eq!(text, "unexpected identifier \"bar\"");
        let (offset, text) = locate(&q[..q.len() - 8]).unwrap_or_else(|| panic!("not located"));
        assert_eq!(
            (offset, text.as_str()),
            (q.len() - 8, "unexpected end of input")
        );
        let too_long = "x ".repeat(MAX_DIAGNOSED_LEN);
        assert_eq!(locate(&too_long), None);
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    const VALID: [&str; 4] = [
        "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))",
        "histogram_quantile(0.9, sum without (instance) (rate(x_bucket[1m] offset 5m)))",
        "a / on (job) group_left (team) b * 2 > bool 1",
        "max_over_time(deriv(foo[5m:1m])[1h:]) or vector(1)",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        // Valid queries with a piece cut out make syntax errors of every kind.
        #[test]
        fn damaged_queries_get_a_position_inside_the_query(
            which in 0..VALID.len(), from in 0usize..80, len in 1usize..6
        ) {
            let valid = VALID[which];
            let from = from.min(valid.len() - 1);
            let to = (from + len).min(valid.len());
            let q = format!("{}{}", &valid[..from], &valid[to..]);
            if let Err(e) = crate::promql::engine::parse_query(&q, 60_000, 0) {
                let text = e.to_string();
                if let Some((pos, _)) = text.split_once(": parse error") {
                    let col: usize = pos.split_once(':').map_or(0, |(_, c)| c.parse().unwrap_or(0));
                    prop_assert!(col >= 1 && col <= q.len() + 1, "{q}: {text}");
                }
            }
        }

        // Any text, valid or not, gets an answer or a located error, never a panic.
        #[test]
        fn any_query_text_is_answered_without_panicking(
            q in "[a-z_(){}\\[\\]=~!,\"'` 0-9.:+*/^@%<>é\n-]{0,48}"
        ) {
            if let Err(e) = crate::promql::engine::parse_query(&q, 60_000, 0) {
                let text = e.to_string();
                prop_assert!(!text.is_empty());
                // A position, when given, lies within the query (or just past its end).
                if let Some((pos, _)) = text.split_once(": parse error") {
                    if let Some((line, col)) = pos.split_once(':') {
                        let line: usize = line.parse().unwrap_or(0);
                        let col: usize = col.parse().unwrap_or(0);
                        let lines: Vec<&str> = q.split('\n').collect();
                        prop_assert!(line >= 1 && line <= lines.len(), "{text}");
                        prop_assert!(col >= 1 && col <= lines[line - 1].len() + 1, "{text}");
                    }
                }
            }
        }
    }
}
