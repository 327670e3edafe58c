//! `strata tools rules test FILE...`: rule unit tests with the output and exit code of
//! promtool 2.42's `test rules` (`cmd/promtool/unittest.go` `RulesUnitTest`): per file
//! `Unit Testing:  <f>` on stdout, then `  SUCCESS`, or `  FAILED:` and each failure on
//! stderr with a blank line on stdout after each; a blank line closes every file. Exit 1
//! when any file failed. The tests run through `rules::unittest`.

use std::io::{self, Write};
use std::path::PathBuf;

use crate::rules::unittest;

/// Tests `paths` in order, writing promtool's report; returns the exit code.
pub fn run(paths: &[PathBuf], out: &mut impl Write, err: &mut impl Write) -> io::Result<i32> {
    let mut failed = false;
    for path in paths {
        writeln!(out, "Unit Testing:  {}", path.display())?;
        let outcome = unittest::test_file(path);
        for w in &outcome.warnings {
            out.flush()?;
            writeln!(err, "{w}")?;
        }
        if outcome.failures.is_empty() {
            writeln!(out, "  SUCCESS")?;
        } else {
            out.flush()?;
            writeln!(err, "  FAILED:")?;
            for f in &outcome.failures {
                writeln!(err, "{f}")?;
                err.flush()?;
                writeln!(out)?;
            }
            failed = true;
        }
        writeln!(out)?;
    }
    Ok(if failed { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::Path;

    const DIR: &str = "tests/rules/unittest";

    /// Runs one corpus file by its full path and strips the directory from the output, as
    /// the expected files were recorded from inside it (the working directory is shared by
    /// all tests, so it is not changed).
    fn run_one(name: &str) -> (String, String, i32) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(&[dir.join(format!("{name}.yml"))], &mut out, &mut err);
        let prefix = format!("{}/", dir.display());
        let strip = |b: Vec<u8>| String::from_utf8(b).unwrap().replace(&prefix, "");
        (strip(out), strip(err), code.unwrap())
    }

    fn expected(name: &str, ext: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(DIR)
            .join("expected")
            .join(format!("{name}.{ext}"));
        std::fs::read_to_string(p).unwrap()
    }

    /// Every corpus file gives promtool 2.42's exit code, stdout and stderr byte for byte.
    #[test]
    fn corpus_matches_promtool() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n.strip_suffix(".yml").map(str::to_string)
            })
            .collect();
        names.sort();
        assert!(names.len() >= 8, "{names:?}");
        let mut mismatches = Vec::new();
        for name in &names {
            let (out, err, code) = run_one(name);
            let rc: i32 = expected(name, "rc").trim().parse().unwrap();
            if code != rc || out != expected(name, "stdout") || err != expected(name, "stderr") {
                mismatches.push(format!(
                    "{name}: exit {code} (promtool {rc})\n--- stdout\n{out}--- stderr\n{err}"
                ));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn missing_file_fails() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(&[PathBuf::from("/nonexistent/t.yml")], &mut out, &mut err).unwrap();
        assert_eq!(code, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Unit Testing:  /nonexistent/t.yml\n\n\n"
        );
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "  FAILED:\nopen /nonexistent/t.yml: no such file or directory\n"
        );
    }
}
