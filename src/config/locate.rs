//! Finds where a key path (`scrape_configs[1].scrape_timeout`) sits in block-style YAML text,
//! so errors found after parsing (by `Config::validate`) can still point at a line. It reads
//! indentation only; for flow-style or unusual layouts it returns the deepest part of the path
//! it could place, or nothing.

/// One path step: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            steps.push(Step::Key(name.to_string()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                steps.push(Step::Index(i));
            }
        }
    }
    steps
}

#[derive(Debug)]
enum Token<'a> {
    Dash,
    Content(&'a str),
}

/// Lines split into tokens: each `- ` sequence marker is its own token, followed by the
/// content at its own column. Positions are 0-based (line, column).
fn tokenize(text: &str) -> Vec<(usize, usize, Token<'_>)> {
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let mut col = line.len() - line.trim_start_matches(' ').len();
        let mut rest = &line[col..];
        if rest.is_empty() || rest.starts_with('#') || rest.starts_with("---") {
            continue;
        }
        while rest == "-" || rest.starts_with("- ") {
            out.push((ln, col, Token::Dash));
            let after = rest[1..].trim_start_matches(' ');
            col += rest.len() - after.len();
            rest = after;
        }
        if !rest.is_empty() && !rest.starts_with('#') {
            out.push((ln, col, Token::Content(rest)));
        }
    }
    out
}

fn key_of(content: &str) -> Option<&str> {
    let end = content.find(':')?;
    let key = content[..end].trim_end();
    Some(key.trim_matches(|c| c == '"' || c == '\''))
}

/// 1-based (line, column) of `path` in `text`, or of its longest prefix that can be found.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    locate_full(text, path).map(|(pos, _)| pos)
}

/// Like [`locate`], also saying whether the whole path was found.
pub fn locate_full(text: &str, path: &str) -> Option<((usize, usize), bool)> {
    let tokens = tokenize(text);
    let steps = parse_path(path);
    let total = steps.len();
    let mut start = 0usize;
    let mut parent_col: Option<usize> = None;
    let mut parent_is_key = false;
    let mut found: Option<(usize, usize)> = None;
    let mut depth = 0;
    for step in steps {
        // YAML lets a sequence sit at the same indentation as the key that holds it.
        let in_block = |i: usize| match parent_col {
            None => true,
            Some(p) => {
                tokens[i].1 > p
                    || (parent_is_key && tokens[i].1 == p && matches!(tokens[i].2, Token::Dash))
            }
        };
        let block: Vec<usize> = (start..tokens.len()).take_while(|&i| in_block(i)).collect();
        let Some(&first) = block.first() else { break };
        let block_col = tokens[first].1;
        let hit = block.iter().copied().filter(|&i| tokens[i].1 == block_col);
        let pos = match &step {
            Step::Key(name) => hit.into_iter().find(
                |&i| matches!(tokens[i].2, Token::Content(c) if key_of(c) == Some(name.as_str())),
            ),
            Step::Index(n) => hit.filter(|&i| matches!(tokens[i].2, Token::Dash)).nth(*n),
        };
        let Some(i) = pos else { break };
        found = Some((tokens[i].0 + 1, tokens[i].1 + 1));
        start = i + 1;
        parent_col = Some(tokens[i].1);
        parent_is_key = matches!(step, Step::Key(_));
        depth += 1;
    }
    found.map(|pos| (pos, depth == total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    scrape_timeout: 5s\n  # comment\n  - job_name: b\n    static_configs:\n      - targets: [x]\n      - targets:\n        - 'h:1'\n    scrape_timeout: 9s\nnode:\n  web_listen: bad\n";

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(locate(TEXT, "global.scrape_interval"), Some((2, 3)));
        assert_eq!(
            locate(TEXT, "scrape_configs[0].scrape_timeout"),
            Some((5, 5))
        );
        assert_eq!(
            locate(TEXT, "scrape_configs[1].scrape_timeout"),
            Some((12, 5))
        );
        assert_eq!(locate(TEXT, "scrape_configs[1].job_name"), Some((7, 5)));
        assert_eq!(
            locate(TEXT, "scrape_configs[1].static_configs[1].targets[0]"),
            Some((11, 9))
        );
        assert_eq!(locate(TEXT, "node.web_listen"), Some((14, 3)));
        let flush = "scrape_configs:\n- job_name: a\n- job_name: b\n  static_configs:\n  - targets: [x]\nrule_files: []\n";
        assert_eq!(
            locate_full(flush, "scrape_configs[1].static_configs[0].targets"),
            Some(((5, 5), true))
        );
        assert_eq!(locate_full(flush, "rule_files"), Some(((6, 1), true)));
    }

    #[test]
    fn falls_back_to_longest_prefix() {
        assert_eq!(locate(TEXT, "scrape_configs[1].nope"), Some((7, 3)));
        assert_eq!(locate(TEXT, "missing.key"), None);
    }
}
