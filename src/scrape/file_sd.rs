//! File-based service discovery (`file_sd_configs`): JSON or YAML files, each a list of
//! `{targets: [...], labels: {...}}`, matched by the config's globs. Groups carry
//! `__meta_filepath` like Prometheus's. A watcher task polls the files' modification times
//! (cheap, and works on every filesystem) and re-reads on change and every refresh_interval; a
//! file that fails to read or parse keeps its previous targets and logs why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::target::{TargetGroup, ADDRESS_LABEL};

#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("invalid glob {pattern:?}: {reason}")]
    Glob { pattern: String, reason: String },
    #[error("{path}: group {index}: {reason}")]
    Invalid {
        path: String,
        index: usize,
        reason: String,
    },
}

pub type Result<T> = std::result::Result<T, FileSdError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// The files the patterns match now, sorted.
pub fn expand(patterns: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in patterns {
        let pattern = p.display().to_string();
        let paths = glob::glob(&pattern).map_err(|e| FileSdError::Glob {
            pattern: pattern.clone(),
            reason: e.to_string(),
        })?;
        out.extend(paths.flatten());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Parses one file's text; the extension picks JSON or YAML.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<TargetGroup>> {
    let name = path.display().to_string();
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let raw: Vec<RawGroup> = if is_json {
        serde_json::from_str(text).map_err(|e| FileSdError::Parse {
            path: name.clone(),
            reason: e.to_string(),
        })?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_norway::from_str(text).map_err(|e| FileSdError::Parse {
            path: name.clone(),
            reason: e.to_string(),
        })?
    };
    groups_from_raw(raw, &name, "__meta_filepath").map_err(|(index, reason)| FileSdError::Invalid {
        path: name.clone(),
        index,
        reason,
    })
}

/// Target groups as file and HTTP discovery receive them (Prometheus's `targetgroup.Group`
/// JSON): targets must be host names (no `/`), label names valid. Each group gets
/// `<meta_label>: <origin>` and the source `<origin>:<index>`; `Err` names the group.
pub(super) fn groups_from_raw(
    raw: Vec<RawGroup>,
    origin: &str,
    meta_label: &str,
) -> std::result::Result<Vec<TargetGroup>, (usize, String)> {
    let mut out = Vec::with_capacity(raw.len());
    for (index, g) in raw.into_iter().enumerate() {
        for t in &g.targets {
            if t.contains('/') {
                return Err((index, format!("{t:?} is not a valid hostname")));
            }
        }
        for k in g.labels.keys() {
            if !crate::config::is_valid_label_name(k) {
                return Err((index, format!("invalid label name {k:?}")));
            }
        }
        let mut labels = g.labels;
        labels.insert(meta_label.to_string(), origin.to_string());
        let targets = g
            .targets
            .into_iter()
            .map(|a| BTreeMap::from([(ADDRESS_LABEL.to_string(), a)]))
            .collect();
        out.push(TargetGroup {
            source: format!("{origin}:{index}"),
            targets,
            labels,
        });
    }
    Ok(out)
}

/// Every group the files matching `patterns` hold now, read once (the dry run and the
/// http_sd endpoint, which have no running discovery); a file that cannot be read or parsed
/// is named in the second list and the others still count.
pub fn read_once(patterns: &[PathBuf]) -> (Vec<TargetGroup>, Vec<String>) {
    let (mut groups, mut errors) = (Vec::new(), Vec::new());
    let paths = match expand(patterns) {
        Ok(p) => p,
        Err(e) => return (groups, vec![e.to_string()]),
    };
    for path in paths {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))
            .and_then(|text| parse_file(&path, &text).map_err(|e| e.to_string()));
        match parsed {
            Ok(g) => groups.extend(g),
            Err(e) => errors.push(e),
        }
    }
    (groups, errors)
}

/// Remembers each file's groups and modification time between polls.
#[derive(Default)]
pub struct FileSdState {
    files: BTreeMap<PathBuf, (Option<SystemTime>, Vec<TargetGroup>)>,
    last_full: Option<std::time::Instant>,
}

impl FileSdState {
    /// Re-reads changed files (all of them once `refresh` has passed); returns the groups
    /// of every file when anything changed, `None` when nothing did.
    pub fn poll(&mut self, patterns: &[PathBuf], refresh: Duration) -> Option<Vec<TargetGroup>> {
        let full = self.last_full.is_none_or(|t| t.elapsed() >= refresh);
        if full {
            self.last_full = Some(std::time::Instant::now());
        }
        let paths = match expand(patterns) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "file_sd: cannot list files");
                return None;
            }
        };
        let mut changed =
            paths.len() != self.files.len() || !paths.iter().all(|p| self.files.contains_key(p));
        self.files.retain(|p, _| paths.contains(p));
        for p in &paths {
            let mtime = std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let known = self.files.get(p).map(|(m, _)| *m);
            if !full && known == Some(mtime) {
                continue;
            }
            let read = std::fs::read_to_string(p)
                .map_err(|source| FileSdError::Io {
                    path: p.display().to_string(),
                    source,
                })
                .and_then(|text| parse_file(p, &text));
            match read {
                Ok(groups) => {
                    let old = self.files.insert(p.clone(), (mtime, groups.clone()));
                    if old.is_none_or(|(_, g)| g != groups) {
                        changed = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "file_sd: keeping the previous targets of this file");
                    let entry = self.files.entry(p.clone()).or_insert((None, Vec::new()));
                    entry.0 = mtime;
                }
            }
        }
        changed.then(|| {
            self.files
                .values()
                .flat_map(|(_, g)| g.iter().cloned())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_files_give_groups_with_filepath() {
        let g = parse_file(
            Path::new("/x/a.json"),
            r#"[{"targets":["h:1","h:2"],"labels":{"env":"p"}}]"#,
        )
        .expect("json");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].targets.len(), 2);
        assert_eq!(
            g[0].labels.get("__meta_filepath").map(String::as_str),
            Some("/x/a.json")
        );
        assert_eq!(g[0].labels.get("env").map(String::as_str), Some("p"));
        let y = parse_file(Path::new("/x/a.yml"), "- targets: ['h:3']\n").expect("yaml");
        assert_eq!(
            y[0].targets[0].get(ADDRESS_LABEL).map(String::as_str),
            Some("h:3")
        );
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let e = parse_file(Path::new("a.json"), "[{").expect_err("bad json");
        assert!(e.to_string().contains("a.json"), "{e}");
        let e =
            parse_file(Path::new("a.json"), r#"[{"targets":["http://h/x"]}]"#).expect_err("url");
        assert!(e.to_string().contains("not a valid hostname"), "{e}");
    }

    #[test]
    fn poll_reports_changes_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("t.json");
        std::fs::write(&f, r#"[{"targets":["a:1"]}]"#).expect("write");
        let mut st = FileSdState::default();
        let pats = vec![dir.path().join("*.json")];
        let first = st
            .poll(&pats, Duration::from_secs(3600))
            .expect("first poll sees the file");
        assert_eq!(first.len(), 1);
        assert!(st.poll(&pats, Duration::from_secs(3600)).is_none());
        std::fs::remove_file(&f).expect("rm");
        let gone = st
            .poll(&pats, Duration::from_secs(3600))
            .expect("removal is a change");
        assert!(gone.is_empty());
    }
}
