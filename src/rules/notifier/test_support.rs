//! Test helpers shared by the notifier's test modules: a relabeler standing in for
//! `scrape::relabel::process` (which `rules` does not import) covering the actions the tests
//! use, and config parsing from YAML.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::config::{Action, AlertingConfig, RelabelConfig};
use crate::storage::model::{Label, Labels};

/// `keep`, `drop`, `labeldrop`, `labelkeep` and `replace` with Prometheus's semantics.
pub fn relabel(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    let mut pairs: Vec<Label> = labels.as_slice().to_vec();
    for cfg in cfgs {
        let get = |pairs: &[Label], n: &str| {
            pairs
                .iter()
                .find(|l| l.name == n)
                .map(|l| l.value.to_string())
                .unwrap_or_default()
        };
        let val: Vec<String> = cfg
            .source_labels
            .iter()
            .map(|n| get(&pairs, n.as_str()))
            .collect();
        let val = val.join(&cfg.separator);
        let re = cfg.regex.regex();
        match cfg.action {
            Action::Keep if !re.is_match(&val) => return None,
            Action::Drop if re.is_match(&val) => return None,
            Action::LabelDrop => pairs.retain(|l| !re.is_match(&l.name)),
            Action::LabelKeep => pairs.retain(|l| re.is_match(&l.name)),
            Action::Replace => {
                if let Some(caps) = re.captures(&val) {
                    let mut out = String::new();
                    caps.expand(&cfg.replacement, &mut out);
                    pairs.retain(|l| l.name != cfg.target_label.as_str());
                    pairs.push(Label::new(cfg.target_label.as_str(), out));
                }
            }
            _ => {}
        }
        pairs = Labels::new(pairs).into_vec();
    }
    Some(Labels::new(pairs))
}

pub fn relabel_configs(yaml: &str) -> Vec<RelabelConfig> {
    serde_norway::from_str(yaml).unwrap()
}

pub fn alerting(yaml: &str) -> AlertingConfig {
    serde_norway::from_str(yaml).unwrap()
}
