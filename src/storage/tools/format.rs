//! Go-compatible text of label sets for the promtool-style tools: `strconv.Quote` for label
//! values and `Labels.String()`. Output must match promtool byte for byte. Numbers and
//! durations come from `crate::gocompat`.

use crate::storage::model::Labels;

/// Go `strconv.Quote` body (without the surrounding quotes). Printability of non-ASCII is
/// approximated: C1 controls, U+00AD and the Unicode line/paragraph separators are escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (0x80..0xa0).contains(&(c as u32))
                || c == '\u{ad}'
                || c == '\u{2028}'
                || c == '\u{2029}'
                || c == '\u{feff}' =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A label set as Prometheus' `Labels.String()`: `{a="1", b="2"}`.
pub fn go_labels(ls: &Labels) -> String {
    let mut out = String::from("{");
    for (i, l) in ls.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&l.name);
        out.push_str("=\"");
        out.push_str(&go_quote(&l.value));
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("a\"b\\c\nd\x01é"), "a\\\"b\\\\c\\nd\\x01é");
        assert_eq!(
            go_labels(&Labels::from_pairs([("__name__", "x"), ("a", "b")])),
            "{__name__=\"x\", a=\"b\"}"
        );
    }
}
