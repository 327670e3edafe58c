//! Strata's rules: what the RuleEvaluator role runs, as pure code beside the actor. This
//! module owns Prometheus rule files (parsing and promtool-compatible validation, `file`),
//! the rule-group schedule (slot and offset maths, `schedule`), the alert state machine of
//! an alerting rule (`alerting`: pending/firing/resolved, `for`, `keep_firing_for`, ALERTS
//! series, resend and restore logic) and the output of recording rules (`recording`). The
//! Go `text/template` engine with Prometheus's template functions that expands alert labels
//! and annotations is `template`; `template_check` gives the parse checks promtool makes
//! when a file is loaded. `api` holds the groups written through Mimir's ruler config API.
//! `group` runs a group's rules at a timestamp and `manager` loads the
//! files into groups. No I/O beyond reading a rule file,
//! no actors, no HTTP: PromQL parsing, the label model, time and Go-compatible formatting
//! are all it uses.

pub mod alerting;
pub mod api;
pub mod file;
pub mod group;
mod locate;
pub mod manager;
pub mod metrics;
pub mod notifier;
pub mod recording;
pub mod schedule;
pub mod template;
pub mod template_check;
pub mod unittest;
mod yaml;

pub use file::{parse, parse_file, Rule, RuleGroup, RuleGroups, RuleKind, TemplateCheck};
