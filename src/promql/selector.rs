//! Series selectors outside queries (`match[]` of the API, `--match` of the tools): parsed with
//! the PromQL parser and converted to matcher sets, with Prometheus's rule that a selector
//! must not match every series by matching only empty values.

use promql_parser::parser::Expr;

use super::fetch::matcher_sets;
use crate::storage::model::Matcher;

/// Parses a series selector into its matcher sets (one per `or` branch inside braces).
pub fn parse_series_selector(text: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = promql_parser::parser::parse(text)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "1:1: parse error: unexpected expression, expected a series selector: {text:?}"
        ));
    };
    let sets = matcher_sets(&vs).map_err(|e| e.to_string())?;
    for set in &sets {
        if set.iter().all(|m| m.matches_empty()) {
            return Err("match[] must contain at least one non-empty matcher".to_string());
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors_and_refuses_empty_matchers() {
        let sets = parse_series_selector("up{job=~\"a|b\"}").unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].len(), 2);
        assert!(parse_series_selector("{job=~\".*\"}").is_err());
        assert!(parse_series_selector("sum(up)").is_err());
        assert!(parse_series_selector("up{").is_err());
    }
}
