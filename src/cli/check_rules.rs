//! `strata check rules FILE...`: validates Prometheus rule files with the output and exit
//! code of promtool 2.42's `check rules` (`cmd/promtool/main.go` `CheckRules`): per file
//! `Checking <f>` and `  SUCCESS: N rules found` on stdout, or `  FAILED:` and one error per
//! line on stderr, then a blank line; exit 1 when any file has errors. The default lint
//! (`duplicate-rules`: two rules with the same name and labels across the file) is reported
//! as a failure but, as promtool's non-fatal lint, keeps exit code 0.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::rules::file::{self, RuleGroups};

/// Checks `paths` in order, writing promtool's report; returns the exit code.
pub fn run(paths: &[PathBuf], out: &mut impl Write, err: &mut impl Write) -> io::Result<i32> {
    let templates = file::default_template_check();
    let mut failed = false;
    for path in paths {
        writeln!(out, "Checking {}", path.display())?;
        match file::parse_file(path, &templates) {
            Ok(groups) => match duplicate_rules_lint(&groups) {
                None => writeln!(out, "  SUCCESS: {} rules found", groups.rule_count())?,
                Some(lint) => {
                    // promtool writes the FAILED block to stderr, the rest to stdout.
                    out.flush()?;
                    writeln!(err, "  FAILED:")?;
                    writeln!(err, "{lint}")?;
                }
            },
            Err(errors) => {
                out.flush()?;
                writeln!(err, "  FAILED:")?;
                for e in errors {
                    writeln!(err, "{e}")?;
                }
                failed = true;
            }
        }
        writeln!(out)?;
    }
    Ok(if failed { 1 } else { 0 })
}

/// promtool's `checkDuplicates`: rules with the same alert/record name and labels, each
/// reported once, in (name, labels) order.
fn duplicate_rules_lint(groups: &RuleGroups) -> Option<String> {
    let mut rules: Vec<(&str, &BTreeMap<String, String>)> = Vec::new();
    for g in &groups.groups {
        for r in &g.rules {
            rules.push((r.name(), &r.labels));
        }
    }
    rules.sort();
    let mut dups: Vec<(&str, &BTreeMap<String, String>)> = Vec::new();
    for w in rules.windows(2) {
        if w[0] == w[1] && dups.last() != Some(&w[1]) {
            dups.push(w[1]);
        }
    }
    if dups.is_empty() {
        return None;
    }
    let mut msg = format!("lint error {} duplicate rule(s) found.\n", dups.len());
    for (metric, labels) in dups {
        msg.push_str(&format!("Metric: {metric}\nLabel(s):\n"));
        for (k, v) in labels {
            msg.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    msg.push_str("Might cause inconsistency while recording expressions");
    Some(msg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::Path;

    /// Runs the check from the repository root (paths in messages are as given).
    fn check(paths: &[&str]) -> (String, String, i32) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(cwd, root, "cargo runs unit tests in the package root");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&paths, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            code,
        )
    }

    #[test]
    fn good_files_succeed() {
        let (out, err, code) = check(&["tests/rules/good/ok.yml", "tests/rules/good/empty.yml"]);
        assert_eq!(
            out,
            "Checking tests/rules/good/ok.yml\n  SUCCESS: 3 rules found\n\n\
             Checking tests/rules/good/empty.yml\n  SUCCESS: 0 rules found\n\n"
        );
        assert_eq!(err, "");
        assert_eq!(code, 0);
    }

    /// Every `tests/rules/bad/X.yml` has `X.expected`: promtool 2.42's stderr for it (run
    /// from the repository root with the same relative path), with the exit code on the first
    /// line. Files whose PromQL error text differs from Strata's parser are listed in
    /// `tests/rules/README.md`.
    #[test]
    fn bad_files_match_promtool() {
        let dir = Path::new("tests/rules/bad");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yml"))
            .collect();
        names.sort();
        assert!(names.len() >= 15);
        for name in names {
            let path = format!("tests/rules/bad/{name}");
            let expected = std::fs::read_to_string(path.replace(".yml", ".expected")).unwrap();
            let (code_line, want_err) = expected.split_once('\n').unwrap();
            let (out, err, code) = check(&[&path]);
            assert_eq!(out, format!("Checking {path}\n\n"), "{path}");
            assert_eq!(err, want_err, "{path}");
            assert_eq!(
                code.to_string(),
                code_line.trim_start_matches("exit "),
                "{path}"
            );
        }
    }

    #[test]
    fn missing_file_fails() {
        let (_, err, code) = check(&["tests/rules/nope.yml"]);
        assert_eq!(
            err,
            "  FAILED:\ntests/rules/nope.yml: open tests/rules/nope.yml: no such file or directory\n"
        );
        assert_eq!(code, 1);
    }
}
