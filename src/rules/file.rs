//! Prometheus rule files: the typed groups (`RuleGroups` → `RuleGroup` → `Rule`) and their
//! validation, as Prometheus 2.42's `model/rulefmt` does it (`Parse`, `RuleGroups.Validate`,
//! `RuleNode.Validate`, `testTemplateParsing`). A file either parses into typed groups or
//! yields every error promtool would print, each formatted like promtool's
//! `<file>: [line:col: ]group "<g>", rule <n>, "<name>": <problem>`. Expressions are checked
//! with Strata's PromQL parser and kept as their text. Template checks of alerting-rule labels
//! and annotations go through a [`TemplateCheck`] so the template engine can plug in.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::locate::{self, Step};
use super::yaml::{self, RawRule};

/// Every way a rule file can be wrong, each displayed as one line (or block) of promtool's
/// `check rules` output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read.
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    /// The YAML does not decode (syntax, unknown field, wrong type, bad duration); `message`
    /// is yaml.v3's wording, e.g. `yaml: unmarshal errors:\n  line 6: field bogus not found
    /// in type rulefmt.RuleNode`.
    #[error("{file}: {message}")]
    Yaml { file: String, message: String },
    /// A group without a name; `pos` is the group's mapping.
    #[error("{file}: {}:{}: Groupname must not be empty", pos.0, pos.1)]
    EmptyGroupName { file: String, pos: (usize, usize) },
    /// A second group with the same name in one file.
    #[error("{file}: {}:{}: groupname: \"{name}\" is repeated in the same file", pos.0, pos.1)]
    DuplicateGroup {
        file: String,
        name: String,
        pos: (usize, usize),
    },
    /// A rule's own problem. `index` is 1-based; `name` is the alert name if set, else the
    /// record name.
    #[error(
        "{file}: {}group {}, rule {index}, {}: {problem}",
        fmt_pos(pos),
        go_quote(group),
        go_quote(name)
    )]
    Rule {
        file: String,
        group: String,
        index: usize,
        name: String,
        pos: NodePos,
        problem: RuleProblem,
    },
}

pub type Result<T> = std::result::Result<T, Vec<FileError>>;

/// Where a rule error points, as promtool prints it: nowhere (label and template errors),
/// one node, or two (`record` and `alert` both set). An absent node is at 0:0, as a zero
/// yaml.v3 node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePos {
    None,
    One(usize, usize),
    Two((usize, usize), (usize, usize)),
}

fn fmt_pos(p: &NodePos) -> String {
    match p {
        NodePos::None => String::new(),
        NodePos::One(l, c) => format!("{l}:{c}: "),
        NodePos::Two((l, c), (l2, c2)) => format!("{l}:{c}: {l2}:{c2}: "),
    }
}

/// What is wrong with one rule; the texts are rulefmt's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    #[error("only one of 'record' and 'alert' must be set")]
    BothRecordAndAlert,
    #[error("one of 'record' or 'alert' must be set")]
    NeitherRecordNorAlert,
    #[error("field 'expr' must be set in rule")]
    MissingExpr,
    /// The parser's message, e.g. `1:7: parse error: unclosed left parenthesis`.
    #[error("could not parse expression: {0}")]
    BadExpr(String),
    /// `annotations`, `for` or `keep_firing_for` on a recording rule.
    #[error("invalid field '{0}' in recording rule")]
    InvalidRecordingField(&'static str),
    #[error("invalid recording rule name: {0}")]
    InvalidRecordName(String),
    #[error("invalid label name: {0}")]
    InvalidLabelName(String),
    #[error("invalid annotation name: {0}")]
    InvalidAnnotationName(String),
    /// A label or annotation template that does not parse: `label "team": template:
    /// __alert_A:1: unclosed action`.
    #[error("{kind} {}: {message}", go_quote(key))]
    Template {
        kind: &'static str,
        key: String,
        message: String,
    },
}

/// The parse check of a label or annotation template of alerting rule `alert`: `Err` is Go's
/// `text/template` parse error text, e.g. `template: __alert_A:1: unclosed action`. The
/// template engine provides the full check; [`template_check::check_delimiters`] is the
/// built-in one.
pub trait TemplateCheck {
    fn check(&self, alert: &str, text: &str) -> std::result::Result<(), String>;
}

impl<F> TemplateCheck for F
where
    F: Fn(&str, &str) -> std::result::Result<(), String>,
{
    fn check(&self, alert: &str, text: &str) -> std::result::Result<(), String> {
        self(alert, text)
    }
}

/// All groups of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroups {
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated in order at one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    /// `None`: the config's `global.evaluation_interval`.
    pub interval: Option<Duration>,
    /// Most series (recording) or alerts (alerting) a rule may produce; 0 or less: no limit.
    pub limit: i64,
    pub rules: Vec<Rule>,
}

/// Recording or alerting, with the name that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    Record(String),
    Alert(String),
}

/// One rule. `expr` has been parsed by Strata's PromQL parser and is kept as written;
/// `for`, `keep_firing_for` and `annotations` are always empty for recording rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub expr: String,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The alert name or the recorded metric name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Record(n) | RuleKind::Alert(n) => n,
        }
    }

    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alert(_))
    }

    /// The expression's syntax tree (it parsed when the file was loaded).
    pub fn parsed_expr(&self) -> crate::promql::Result<promql_parser::parser::Expr> {
        crate::promql::engine::parse_query(&self.expr, 0, 0)
    }
}

impl RuleGroups {
    /// How many rules all groups hold (promtool's `N rules found`).
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }
}

/// Reads and parses `path`; errors name the path as given.
pub fn parse_file(path: &Path, templates: &dyn TemplateCheck) -> Result<RuleGroups> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        vec![FileError::Read {
            file: file.clone(),
            message: go_io_error(&file, &e),
        }]
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            return Err(vec![FileError::Yaml {
                file,
                message: "yaml: invalid leading UTF-8 octet".to_string(),
            }])
        }
    };
    parse(&file, &text, templates)
}

/// Go's `*PathError` text for a failed read, e.g. `open x.yml: no such file or directory`.
pub(crate) fn go_io_error(file: &str, e: &std::io::Error) -> String {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            // Rust appends ` (os error N)`; Go does not.
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    };
    if e.raw_os_error() == Some(21) {
        return format!("read {file}: is a directory");
    }
    format!("open {file}: {what}")
}

/// Parses and validates the text of a rule file named `file` (the name only labels errors).
pub fn parse(file: &str, text: &str, templates: &dyn TemplateCheck) -> Result<RuleGroups> {
    let raw = yaml::decode(text).map_err(|messages| {
        messages
            .into_iter()
            .map(|message| FileError::Yaml {
                file: file.to_string(),
                message,
            })
            .collect::<Vec<_>>()
    })?;
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    let mut groups = Vec::with_capacity(raw.groups.len());
    for (j, g) in raw.groups.into_iter().enumerate() {
        let group_pos = || locate_or_zero(text, &[Step::Key("groups".into()), Step::Index(j)]);
        if g.name.is_empty() {
            errs.push(FileError::EmptyGroupName {
                file: file.to_string(),
                pos: group_pos(),
            });
        }
        if !seen.insert(g.name.clone()) {
            errs.push(FileError::DuplicateGroup {
                file: file.to_string(),
                name: g.name.clone(),
                pos: group_pos(),
            });
        }
        let mut rules = Vec::with_capacity(g.rules.len());
        for (i, r) in g.rules.into_iter().enumerate() {
            let at = |key: &str| {
                let path = [
                    Step::Key("groups".into()),
                    Step::Index(j),
                    Step::Key("rules".into()),
                    Step::Index(i),
                    Step::Key(key.into()),
                ];
                locate_or_zero(text, &path)
            };
            let problems = validate_rule(&r, templates);
            if problems.is_empty() {
                rules.push(typed_rule(r));
                continue;
            }
            let name = match (&r.alert, &r.record) {
                (Some(a), _) if !a.is_empty() => a.clone(),
                (_, Some(rec)) => rec.clone(),
                _ => String::new(),
            };
            for (problem, pos) in problems {
                let pos = match pos {
                    Where::Nowhere => NodePos::None,
                    Where::Key(k) => {
                        let (l, c) = at(k);
                        NodePos::One(l, c)
                    }
                    Where::RecordAndAlert => NodePos::Two(at("record"), at("alert")),
                };
                errs.push(FileError::Rule {
                    file: file.to_string(),
                    group: g.name.clone(),
                    index: i + 1,
                    name: name.clone(),
                    pos,
                    problem,
                });
            }
        }
        groups.push(RuleGroup {
            name: g.name,
            interval: g.interval_ms.map(Duration::from_millis),
            limit: g.limit,
            rules,
        });
    }
    if errs.is_empty() {
        Ok(RuleGroups { groups })
    } else {
        Err(errs)
    }
}

/// A node's position; (0, 0) for an absent node, as yaml.v3 reports a zero node.
fn locate_or_zero(text: &str, path: &[Step]) -> (usize, usize) {
    locate::locate(text, path).map_or((0, 0), |p| (p.line, p.column))
}

/// Which node a problem is reported at.
enum Where {
    Nowhere,
    Key(&'static str),
    RecordAndAlert,
}

/// `RuleNode.Validate` of 2.42, in its order. Labels and annotations are checked in key
/// order (Go walks its maps in random order).
fn validate_rule(r: &RawRule, templates: &dyn TemplateCheck) -> Vec<(RuleProblem, Where)> {
    let mut out = Vec::new();
    let record = r.record.as_deref().unwrap_or("");
    let alert = r.alert.as_deref().unwrap_or("");
    if !record.is_empty() && !alert.is_empty() {
        out.push((RuleProblem::BothRecordAndAlert, Where::RecordAndAlert));
    }
    if record.is_empty() && alert.is_empty() {
        out.push((RuleProblem::NeitherRecordNorAlert, Where::Key("record")));
    }
    let expr = r.expr.as_deref().unwrap_or("");
    if expr.is_empty() {
        out.push((RuleProblem::MissingExpr, Where::Key("expr")));
    } else if let Err(e) = crate::promql::engine::parse_query(expr, 0, 0) {
        out.push((RuleProblem::BadExpr(e.to_string()), Where::Key("expr")));
    }
    if !record.is_empty() {
        if !r.annotations.is_empty() {
            out.push((
                RuleProblem::InvalidRecordingField("annotations"),
                Where::Key("record"),
            ));
        }
        if r.for_ms != 0 {
            out.push((
                RuleProblem::InvalidRecordingField("for"),
                Where::Key("record"),
            ));
        }
        if r.keep_firing_for_ms != 0 {
            out.push((
                RuleProblem::InvalidRecordingField("keep_firing_for"),
                Where::Key("record"),
            ));
        }
        if !is_valid_metric_name(record) {
            out.push((
                RuleProblem::InvalidRecordName(record.to_string()),
                Where::Key("record"),
            ));
        }
    }
    for k in r.labels.keys() {
        if !is_valid_label_name(k) || k == "__name__" {
            out.push((RuleProblem::InvalidLabelName(k.clone()), Where::Nowhere));
        }
    }
    for k in r.annotations.keys() {
        if !is_valid_label_name(k) {
            out.push((
                RuleProblem::InvalidAnnotationName(k.clone()),
                Where::Nowhere,
            ));
        }
    }
    // Templates are parse-checked for alerting rules only: recording labels are literal.
    if !alert.is_empty() {
        let maps = [("label", &r.labels), ("annotation", &r.annotations)];
        for (kind, map) in maps {
            for (k, v) in map {
                if let Err(message) = templates.check(alert, v) {
                    out.push((
                        RuleProblem::Template {
                            kind,
                            key: k.clone(),
                            message,
                        },
                        Where::Nowhere,
                    ));
                }
            }
        }
    }
    out
}

fn typed_rule(r: RawRule) -> Rule {
    let alert = r.alert.unwrap_or_default();
    let kind = if alert.is_empty() {
        RuleKind::Record(r.record.unwrap_or_default())
    } else {
        RuleKind::Alert(alert)
    };
    Rule {
        kind,
        expr: r.expr.unwrap_or_default(),
        for_: Duration::from_millis(r.for_ms),
        keep_firing_for: Duration::from_millis(r.keep_firing_for_ms),
        labels: r.labels,
        annotations: r.annotations,
    }
}

/// `model.IsValidMetricName`: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `model.LabelName.IsValid`: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The rule-file template check: Go's `text/template` parser with Prometheus's functions
/// (`rules::template`), as `rulefmt`'s `testTemplateParsing` runs it.
pub fn default_template_check() -> impl TemplateCheck {
    |alert: &str, text: &str| {
        super::template::check_alert_template(alert, text).map_err(|e| e.to_string())
    }
}

pub use crate::gocompat::go_quote;

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleKind::Record(n) => write!(f, "record {n}"),
            RuleKind::Alert(n) => write!(f, "alert {n}"),
        }
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
