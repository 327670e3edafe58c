//! Config errors and how they are shown: every error names the file, the key path
//! (`scrape_configs[0].scrape_interval`), the line and column, and quotes the lines around
//! the problem with a caret, which is what `strata check config` prints.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A problem found in a config value outside any source text (e.g. `validate()` on a
    /// config built in code, or after a command-line override).
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// A problem tied to a place in a config file.
    #[error("{0}")]
    Located(Box<LocatedError>),
}

pub type Result<T> = std::result::Result<T, ConfigError>;

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key path the error is about, when known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Located(l) => l.key.as_deref(),
        }
    }

    /// The 1-based line the error is at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Located(l) => l.line,
            _ => None,
        }
    }
}

/// An error at a position in a named config source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedError {
    pub source_name: String,
    /// Key path such as `scrape_configs[0].scrape_interval`; `None` for YAML syntax errors.
    pub key: Option<String>,
    pub message: String,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based.
    pub column: Option<usize>,
    /// A few source lines with a caret under the column; empty when the position is unknown.
    pub snippet: String,
}

impl LocatedError {
    pub fn new(
        source_name: &str,
        text: &str,
        key: Option<String>,
        message: String,
        pos: Option<(usize, usize)>,
    ) -> Self {
        let snippet = match pos {
            Some((line, column)) => snippet(text, line, column),
            None => String::new(),
        };
        LocatedError {
            source_name: source_name.to_string(),
            key,
            message,
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            snippet,
        }
    }
}

impl fmt::Display for LocatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source_name)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        f.write_str(": ")?;
        let mut message = self.message.as_str();
        if let Some(k) = self.key.as_deref().filter(|k| !k.is_empty()) {
            write!(f, "{k}: ")?;
            // A value's own parser may already have named its key: say it once.
            message = message
                .strip_prefix(k)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(message);
        }
        f.write_str(message)?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

/// Up to two lines before and one after `line`, numbered, with a caret under `column`.
pub fn snippet(text: &str, line: usize, column: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if line == 0 || line > lines.len() {
        return String::new();
    }
    let first = line.saturating_sub(2).max(1);
    let last = (line + 1).min(lines.len());
    let width = last.to_string().len();
    let mut out = String::new();
    for n in first..=last {
        let content = lines.get(n - 1).copied().unwrap_or("");
        let marker = if n == line { '>' } else { ' ' };
        out.push_str(&format!("{marker} {n:>width$} | {content}\n"));
        if n == line {
            let pad = column.saturating_sub(1);
            out.push_str(&format!("  {:>width$} | {}^\n", "", " ".repeat(pad)));
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_marks_line_and_column() {
        let text = "a: 1\nb: 2\nc: 3\nd: 4\n";
        let s = snippet(text, 3, 4);
        assert_eq!(
            s,
            "  1 | a: 1\n  2 | b: 2\n> 3 | c: 3\n    |    ^\n  4 | d: 4"
        );
        assert_eq!(snippet(text, 9, 1), "");
    }

    #[test]
    fn located_display_has_file_line_column_key() {
        let e = LocatedError::new(
            "p.yml",
            "x: 1\n",
            Some("x".into()),
            "bad".into(),
            Some((1, 4)),
        );
        let shown = e.to_string();
        assert!(shown.starts_with("p.yml:1:4: x: bad\n"), "{shown}");
        assert!(shown.contains("> 1 | x: 1"));
    }
}
