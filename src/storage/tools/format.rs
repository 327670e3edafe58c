//! Go-compatible text of label sets for the promtool-style tools: `strconv.Quote` for label
//! values and `Labels.String()`. Output must match promtool byte for byte. Numbers and
//! durations come from `crate::gocompat`.

use crate::storage::model::Labels;

use crate::gocompat::go_quote;

/// A label set as Prometheus' `Labels.String()`: `{a="1", b="2"}`.
pub fn go_labels(ls: &Labels) -> String {
    let mut out = String::from("{");
    for (i, l) in ls.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&l.name);
        out.push('=');
        out.push_str(&go_quote(&l.value));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("a\"b\\c\nd\x01é"), "\"a\\\"b\\\\c\\nd\\x01é\"");
        assert_eq!(
            go_labels(&Labels::from_pairs([("__name__", "x"), ("a", "b")])),
            "{__name__=\"x\", a=\"b\"}"
        );
    }
}
