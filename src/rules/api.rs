//! Rule groups written through Mimir's ruler config API, as pure code: a posted body (exactly
//! one group in YAML) is parsed and validated as `promtool check rules` checks a file's group
//! (`file::parse`: YAML shape and fields, PromQL, templates, names, duplicates), with error
//! positions relative to the body; groups render back to YAML as Mimir answers them (a group,
//! or a map namespace → list of groups); [`ApiGroups`] keeps this node's copy of every API
//! group and hands them to the RuleEvaluator beside the rule-file groups. An API group's
//! `file` is its namespace (what Mimir shows as `file` in `/api/v1/rules`), so its key is
//! `<namespace>;<name>`. Also the selectors of an expression, for a dry run's "matches no
//! series" warnings. No I/O: the bucket and HTTP are the caller's.

use std::collections::BTreeMap;

use parking_lot::RwLock;
use promql_parser::parser::Expr;
use serde::Serialize;

use super::file::{default_template_check, parse, Rule, RuleGroup, RuleKind};
use super::group::group_key;
use super::manager::{GroupDefs, SharedRules};

/// What can be wrong with a posted group or a stored one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiRulesError {
    /// The body is not one valid rule group; each problem in promtool's words.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The namespace and group name are those of a rule-file group.
    #[error("rule group {group:?} is already defined in rule file {file:?}")]
    Conflict { file: String, group: String },
    /// The namespace and group name make the key of another API group.
    #[error("namespace {namespace:?} already has a group {group:?} with the same key")]
    Ambiguous { namespace: String, group: String },
    /// A stored document whose name is not `[namespace, group]`.
    #[error("stored rule group {0:?} is not named [namespace, group]")]
    BadName(Vec<String>),
    /// A stored document whose group name differs from the name it is stored under.
    #[error("stored rule group {stored:?} holds a group named {found:?}")]
    Misnamed { stored: String, found: String },
    #[error("cannot render rule group: {0}")]
    Render(String),
}

pub type Result<T> = std::result::Result<T, ApiRulesError>;

/// API groups: namespace → group name → group.
pub type Namespaces = BTreeMap<String, BTreeMap<String, RuleGroup>>;

/// Parses and validates a posted body holding exactly one rule group. The body is checked as
/// the one group of a rule file would be; positions in the errors point into the body.
pub fn parse_group(body: &str) -> Result<RuleGroup> {
    if body.trim().is_empty() {
        return Err(ApiRulesError::Invalid(vec![
            "the body holds no rule group".to_string()
        ]));
    }
    let wrapped = wrap_as_file(body);
    let check = default_template_check();
    match parse("", &wrapped, &check) {
        Ok(mut groups) => match (groups.groups.pop(), groups.groups.is_empty()) {
            (Some(g), true) => Ok(g),
            _ => Err(ApiRulesError::Invalid(vec![
                "the body must hold exactly one rule group".to_string(),
            ])),
        },
        Err(errs) => Err(ApiRulesError::Invalid(
            errs.iter()
                .map(|e| unwrap_message(&e.to_string()))
                .collect(),
        )),
    }
}

/// `groups:` and the body as its one item: every line two columns right, one line down.
fn wrap_as_file(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + body.lines().count() * 2 + 16);
    out.push_str("groups:\n");
    for (i, line) in body.lines().enumerate() {
        // A leading document marker would end the wrapping document; it stays a blank line.
        let line = if i == 0 && line.trim_end() == "---" {
            ""
        } else {
            line
        };
        out.push_str(if i == 0 { "- " } else { "  " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A message about the wrapped file as one about the body: no file name, lines one up and
/// columns two left (`3:7:` and `line 3` both).
fn unwrap_message(msg: &str) -> String {
    let msg = msg.strip_prefix(": ").unwrap_or(msg);
    let mut out = String::with_capacity(msg.len());
    let bytes = msg.as_bytes();
    let mut i = 0;
    // `L:C: ` at the start (or twice, for `record` and `alert` both).
    while let Some((line, col, used)) = position_at(&msg[i..]) {
        out.push_str(&format!(
            "{}:{}: ",
            line.saturating_sub(1),
            col.saturating_sub(2)
        ));
        i += used;
    }
    while i < bytes.len() {
        let rest = &msg[i..];
        if let Some(after) = rest.strip_prefix("line ") {
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse::<usize>() {
                out.push_str(&format!("line {}", n.saturating_sub(1)));
                i += 5 + digits.len();
                continue;
            }
        }
        let Some(c) = rest.chars().next() else {
            break;
        };
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `L:C: ` at the start of `s`: (L, C, bytes used).
fn position_at(s: &str) -> Option<(usize, usize, usize)> {
    let l: String = s.chars().take_while(char::is_ascii_digit).collect();
    let rest = s.get(l.len()..)?.strip_prefix(':')?;
    let c: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest.get(c.len()..)?.strip_prefix(": ")?;
    Some((l.parse().ok()?, c.parse().ok()?, l.len() + c.len() + 3))
}

/// A group as Mimir's YAML shows it (rulefmt's field order, empty fields left out).
#[derive(Serialize)]
struct GroupOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    limit: i64,
    rules: Vec<RuleOut<'a>>,
}

#[derive(Serialize)]
struct RuleOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a str>,
    expr: &'a str,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn duration(d: std::time::Duration) -> Option<String> {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    (ms > 0).then(|| crate::gocompat::format_duration(ms))
}

fn group_out(g: &RuleGroup) -> GroupOut<'_> {
    GroupOut {
        name: &g.name,
        interval: g.interval.and_then(duration),
        limit: g.limit,
        rules: g.rules.iter().map(rule_out).collect(),
    }
}

fn rule_out(r: &Rule) -> RuleOut<'_> {
    let (record, alert) = match &r.kind {
        RuleKind::Record(n) => (Some(n.as_str()), None),
        RuleKind::Alert(n) => (None, Some(n.as_str())),
    };
    RuleOut {
        record,
        alert,
        expr: &r.expr,
        for_: duration(r.for_),
        keep_firing_for: duration(r.keep_firing_for),
        labels: &r.labels,
        annotations: &r.annotations,
    }
}

/// One group as YAML (`GET .../{namespace}/{group}`, and what is stored in the bucket).
pub fn render_group(g: &RuleGroup) -> Result<String> {
    serde_norway::to_string(&group_out(g)).map_err(|e| ApiRulesError::Render(e.to_string()))
}

/// Namespaces as YAML: a map namespace → list of groups (`GET /config/v1/rules`).
pub fn render_namespaces(ns: &Namespaces) -> Result<String> {
    let out: BTreeMap<&str, Vec<GroupOut<'_>>> = ns
        .iter()
        .map(|(name, groups)| (name.as_str(), groups.values().map(group_out).collect()))
        .collect();
    serde_norway::to_string(&out).map_err(|e| ApiRulesError::Render(e.to_string()))
}

/// The evaluator's definitions of API groups: key `<namespace>;<group>`, file the namespace.
pub fn group_defs(ns: &Namespaces) -> GroupDefs {
    let mut defs = GroupDefs::new();
    for (namespace, groups) in ns {
        for (name, g) in groups {
            defs.insert(group_key(namespace, name), (namespace.clone(), g.clone()));
        }
    }
    defs
}

/// The API groups of stored documents (`[namespace, group]` → group YAML). A document that
/// does not parse is left out and reported; the others apply.
pub fn from_documents(
    docs: &crate::apiconfig::Documents,
) -> (Namespaces, Vec<(Vec<String>, ApiRulesError)>) {
    let mut out = Namespaces::new();
    let mut bad = Vec::new();
    for (name, text) in docs {
        let [namespace, group] = name.as_slice() else {
            bad.push((name.clone(), ApiRulesError::BadName(name.clone())));
            continue;
        };
        match parse_group(text) {
            Ok(g) if &g.name == group => {
                out.entry(namespace.clone())
                    .or_default()
                    .insert(group.clone(), g);
            }
            Ok(g) => bad.push((
                name.clone(),
                ApiRulesError::Misnamed {
                    stored: group.clone(),
                    found: g.name,
                },
            )),
            Err(e) => bad.push((name.clone(), e)),
        }
    }
    (out, bad)
}

/// This node's copy of the API groups, and the hand-over to the RuleEvaluator: every change
/// replaces the API part of the evaluator's definitions (the rule-file part stays).
pub struct ApiGroups {
    groups: RwLock<Namespaces>,
    rules: SharedRules,
}

impl ApiGroups {
    pub fn new(rules: SharedRules) -> Self {
        ApiGroups {
            groups: RwLock::new(Namespaces::new()),
            rules,
        }
    }

    /// Every API group as this node last applied them.
    pub fn snapshot(&self) -> Namespaces {
        self.groups.read().clone()
    }

    /// Refuses a group whose key is a rule-file group's (an API group may not shadow it) or
    /// another API group's (`a;b` + `c` and `a` + `b;c` both make the key `a;b;c`).
    pub fn conflict(&self, namespace: &str, group: &str) -> Result<()> {
        let key = group_key(namespace, group);
        let view = self.rules.read();
        if let Some((file, _)) = view.file_groups.get(&key) {
            return Err(ApiRulesError::Conflict {
                file: file.clone(),
                group: group.to_string(),
            });
        }
        match view.api_groups.get(&key) {
            Some((ns, g)) if ns != namespace || g.name != group => Err(ApiRulesError::Ambiguous {
                namespace: ns.clone(),
                group: g.name.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Replaces the whole set (a sync from the bucket).
    pub fn replace(&self, all: Namespaces) {
        let mut groups = self.groups.write();
        self.rules.write().set_api_groups(group_defs(&all));
        *groups = all;
    }

    /// Adds or replaces one group.
    pub fn put(&self, namespace: &str, group: RuleGroup) {
        self.change(|all| {
            all.entry(namespace.to_string())
                .or_default()
                .insert(group.name.clone(), group);
        });
    }

    /// Removes one group; `false` if there was none.
    pub fn remove_group(&self, namespace: &str, group: &str) -> bool {
        let mut removed = false;
        self.change(|all| {
            if let Some(groups) = all.get_mut(namespace) {
                removed = groups.remove(group).is_some();
                if groups.is_empty() {
                    all.remove(namespace);
                }
            }
        });
        removed
    }

    /// Removes a namespace; the names of the groups it held.
    pub fn remove_namespace(&self, namespace: &str) -> Vec<String> {
        let mut removed = Vec::new();
        self.change(|all| {
            if let Some(groups) = all.remove(namespace) {
                removed = groups.into_keys().collect();
            }
        });
        removed
    }

    fn change(&self, f: impl FnOnce(&mut Namespaces)) {
        let mut groups = self.groups.write();
        f(&mut groups);
        self.rules.write().set_api_groups(group_defs(&groups));
    }
}

/// A selector of an expression and the query that says whether it matches any series now:
/// `count(<vector selector>)` or `count(last_over_time(<matrix selector>))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorProbe {
    pub selector: String,
    pub query: String,
}

/// Every distinct selector of `expr`, in order of appearance.
pub fn selector_probes(expr: &Expr) -> Vec<SelectorProbe> {
    let mut out: Vec<SelectorProbe> = Vec::new();
    walk(expr, &mut |probe| {
        if !out.iter().any(|p| p.selector == probe.selector) {
            out.push(probe);
        }
    });
    out
}

fn walk(expr: &Expr, found: &mut dyn FnMut(SelectorProbe)) {
    match expr {
        Expr::VectorSelector(vs) => {
            let selector = vs.to_string();
            found(SelectorProbe {
                query: format!("count({selector})"),
                selector,
            });
        }
        Expr::MatrixSelector(ms) => {
            let selector = ms.to_string();
            found(SelectorProbe {
                query: format!("count(last_over_time({selector}))"),
                selector,
            });
        }
        Expr::Subquery(sq) => walk(&sq.expr, found),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, found);
            }
            walk(&a.expr, found);
        }
        Expr::Unary(u) => walk(&u.expr, found),
        Expr::Binary(b) => {
            walk(&b.lhs, found);
            walk(&b.rhs, found);
        }
        Expr::Paren(p) => walk(&p.expr, found),
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, found);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
