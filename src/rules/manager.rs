//! Loading rule files into groups and the view of them that HTTP reads. `load` expands the
//! config's `rule_files` globs, parses and validates every file as `promtool check rules`
//! does (all errors of all files together) and builds the groups, keyed `file;name` as
//! Prometheus keys them. Which of the groups this node evaluates is decided by the role
//! (rendezvous hashing over the live RuleEvaluators, `owned_groups`); the evaluated groups'
//! state is published in a [`SharedRules`] after every evaluation.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::file::{default_template_check, parse_file, RuleGroup};
use super::group::Group;

/// Every group of every rule file: `file;name` → (file as written, group).
pub type GroupDefs = BTreeMap<String, (String, RuleGroup)>;

/// Reads every rule file the config names. `Err` lists every problem, one line each, in the
/// words promtool uses; nothing is loaded then.
pub fn load(paths: &[std::path::PathBuf]) -> Result<GroupDefs, Vec<String>> {
    let mut defs = GroupDefs::new();
    let mut errors = Vec::new();
    let check = default_template_check();
    for p in paths {
        match parse_file(p, &check) {
            Ok(groups) => {
                let file = p.display().to_string();
                for g in groups.groups {
                    defs.insert(super::group::group_key(&file, &g.name), (file.clone(), g));
                }
            }
            Err(errs) => errors.extend(errs.iter().map(|e| e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(defs)
    } else {
        Err(errors)
    }
}

/// The groups `me` evaluates: each group key is owned by `replication` of the `live`
/// RuleEvaluators (rendezvous hashing, so a group moves only when its owners change).
pub fn owned_groups<'a>(
    defs: &'a GroupDefs,
    me: &str,
    live: &[String],
    replication: usize,
    is_owner: impl Fn(&str, &str, &[String], usize) -> bool,
) -> Vec<&'a str> {
    defs.keys()
        .filter(|k| is_owner(k, me, live, replication))
        .map(String::as_str)
        .collect()
}

/// What the RuleEvaluator on this node is doing, for `/api/v1/rules` and `/api/v1/alerts`.
#[derive(Debug, Default, Clone)]
pub struct RulesView {
    /// The groups evaluated here, as of their last evaluation.
    pub groups: BTreeMap<String, Group>,
    /// Every group of the loaded files and the nodes evaluating it (for the cluster view).
    pub loaded: usize,
    /// The last load's problems (the previous rules stay in force when a reload fails).
    pub load_errors: Vec<String>,
    /// Groups of a successful reload, not yet taken up by the RuleEvaluator.
    pub pending: Option<GroupDefs>,
    /// The rule files' groups as last loaded.
    pub file_groups: GroupDefs,
    /// The groups written through the ruler config API (`rules::api`), keyed
    /// `<namespace>;<group>`.
    pub api_groups: GroupDefs,
    /// The `strata_rule_*` metrics (`strata_rule_files_last_reload_successful` says whether
    /// the last load of the rule files succeeded).
    pub metrics: super::metrics::RuleMetrics,
}

pub type SharedRules = Arc<RwLock<RulesView>>;

impl RulesView {
    /// New rule-file groups (a reload): the RuleEvaluator takes them up with the API groups.
    pub fn set_file_groups(&mut self, defs: GroupDefs) {
        self.file_groups = defs;
        self.pending = Some(self.all_groups());
    }

    /// New API groups: the RuleEvaluator takes them up with the rule-file groups.
    pub fn set_api_groups(&mut self, defs: GroupDefs) {
        self.api_groups = defs;
        self.pending = Some(self.all_groups());
    }

    /// The rule-file groups and the API groups together; a rule-file group wins over an API
    /// group with its key (the API refuses those, but a reload may add one later).
    pub fn all_groups(&self) -> GroupDefs {
        let mut all = self.api_groups.clone();
        for (key, def) in &self.file_groups {
            if all.insert(key.clone(), def.clone()).is_some() {
                tracing::warn!(group = %key, "a rule file defines an API rule group; the file's is evaluated");
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn loads_every_group_and_reports_every_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yml");
        std::fs::write(
            &good,
            "groups:\n- name: a\n  rules:\n  - record: x:y\n    expr: up\n- name: b\n  rules: []\n",
        )
        .unwrap();
        let bad = dir.path().join("bad.yml");
        std::fs::write(
            &bad,
            "groups:\n- name: c\n  rules:\n  - record: x\n    expr: sum(\n",
        )
        .unwrap();
        let defs = load(std::slice::from_ref(&good)).unwrap();
        let keys: Vec<&String> = defs.keys().collect();
        let g = good.display().to_string();
        assert_eq!(keys, vec![&format!("{g};a"), &format!("{g};b")]);
        let errs = load(&[good, bad]).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("bad.yml") && errs[0].contains("could not parse expression"),
            "{errs:?}"
        );
    }

    #[test]
    fn file_and_api_groups_are_handed_over_together() {
        let def = |name: &str| {
            (
                "f".to_string(),
                RuleGroup {
                    name: name.to_string(),
                    interval: None,
                    limit: 0,
                    rules: Vec::new(),
                },
            )
        };
        let mut view = RulesView::default();
        view.set_api_groups(GroupDefs::from([("ns;a".to_string(), def("a"))]));
        view.set_file_groups(GroupDefs::from([("f;b".to_string(), def("b"))]));
        let keys: Vec<String> = view.pending.take().unwrap().into_keys().collect();
        assert_eq!(keys, vec!["f;b", "ns;a"]);
        view.set_api_groups(GroupDefs::new());
        let keys: Vec<String> = view.pending.take().unwrap().into_keys().collect();
        assert_eq!(keys, vec!["f;b"]);
    }

    #[test]
    fn ownership_is_delegated_per_group_key() {
        let mut defs = GroupDefs::new();
        for k in ["f;a", "f;b", "f;c"] {
            let g = RuleGroup {
                name: k.to_string(),
                interval: None,
                limit: 0,
                rules: Vec::new(),
            };
            defs.insert(k.to_string(), ("f".to_string(), g));
        }
        let live = vec!["n1".to_string(), "n2".to_string()];
        let mine = owned_groups(&defs, "n1", &live, 1, |k, _, _, _| k != "f;b");
        assert_eq!(mine, vec!["f;a", "f;c"]);
    }
}
