//! Relabeling rules as Prometheus writes them (`relabel_configs`, `metric_relabel_configs`,
//! `alert_relabel_configs`): the action enum, the anchored regex, and the per-action field
//! checks Prometheus's `relabel.Config.UnmarshalYAML` performs, run while deserialising so an
//! error carries the rule's position in the file. Applying rules lives in `crate::scrape`.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// True for a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A label name checked at load time (`source_labels` entries, `labeldrop` targets...).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LabelName(String);

impl LabelName {
    pub fn new(name: &str) -> Result<Self, String> {
        if is_valid_label_name(name) {
            Ok(LabelName(name.to_string()))
        } else {
            Err(format!("{name:?} is not a valid label name"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LabelName::new(&s).map_err(serde::de::Error::custom)
    }
}

/// What a relabel rule does. Prometheus reads the action case-insensitively.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| format!("unknown relabel action {s:?}"))
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A regex anchored at both ends as Prometheus does (`^(?:re)$`), keeping the text the user
/// wrote for printing and for the "unchanged from default" checks.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    source: String,
    regex: Regex,
}

pub const DEFAULT_REGEX: &str = "(.*)";

impl RelabelRegex {
    pub fn new(source: &str) -> Result<Self, String> {
        let anchored = format!("^(?:{source})$");
        let regex = Regex::new(&anchored).map_err(|e| format!("invalid regex {source:?}: {e}"))?;
        Ok(RelabelRegex {
            source: source.to_string(),
            regex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The anchored, compiled form.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl Default for RelabelRegex {
    // The one allowed `expect` outside tests: the pattern is a constant that compiles (the
    // unit tests build it), and `Default` cannot return an error.
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        static DEFAULT: OnceLock<RelabelRegex> = OnceLock::new();
        DEFAULT
            .get_or_init(|| RelabelRegex {
                source: DEFAULT_REGEX.to_string(),
                // A constant pattern: compiling it cannot fail.
                regex: Regex::new("^(?:(.*))$").expect("default relabel regex compiles"),
            })
            .clone()
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelabelRegex::new(&s).map_err(serde::de::Error::custom)
    }
}

pub const DEFAULT_SEPARATOR: &str = ";";
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabeling rule. Built only through deserialisation or [`RelabelConfig::validated`]
/// so every instance has passed Prometheus's checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRelabelConfig")]
pub struct RelabelConfig {
    pub source_labels: Vec<LabelName>,
    pub separator: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

/// The rule as written, before the per-action checks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelabelConfig {
    #[serde(default, deserialize_with = "super::nullable::or_default")]
    pub source_labels: Vec<LabelName>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default)]
    pub regex: RelabelRegex,
    #[serde(default)]
    pub modulus: u64,
    #[serde(default)]
    pub target_label: String,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

impl Default for RawRelabelConfig {
    fn default() -> Self {
        RawRelabelConfig {
            source_labels: Vec::new(),
            separator: default_separator(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_string()
}

fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.to_string()
}

/// Prometheus's `relabelTarget`: label-name characters plus `$1` / `${name}` references.
fn is_valid_relabel_target(s: &str) -> bool {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(s))
}

impl TryFrom<RawRelabelConfig> for RelabelConfig {
    type Error = String;

    fn try_from(c: RawRelabelConfig) -> Result<Self, String> {
        RelabelConfig::validated(c)
    }
}

impl RelabelConfig {
    /// Runs Prometheus's per-action checks; the message matches Prometheus's wording.
    pub fn validated(c: RawRelabelConfig) -> Result<Self, String> {
        use Action::*;
        let a = c.action;
        if c.modulus == 0 && a == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && c.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        let templated_target = matches!(a, Replace | Lowercase | Uppercase | KeepEqual | DropEqual);
        if templated_target && !is_valid_relabel_target(&c.target_label) {
            return Err(format!(
                "{:?} is invalid 'target_label' for {a} action",
                c.target_label
            ));
        }
        let no_replacement = matches!(a, Lowercase | Uppercase | KeepEqual | DropEqual);
        if no_replacement && c.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == LabelMap && !is_valid_relabel_target(&c.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {a} action",
                c.replacement
            ));
        }
        if a == HashMod && !is_valid_label_name(&c.target_label) {
            return Err(format!(
                "{:?} is invalid 'target_label' for {a} action",
                c.target_label
            ));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (c.regex.as_str() != DEFAULT_REGEX
                || c.modulus != 0
                || c.separator != DEFAULT_SEPARATOR
                || c.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!c.source_labels.is_empty()
                || !c.target_label.is_empty()
                || c.modulus != 0
                || c.separator != DEFAULT_SEPARATOR
                || c.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(RelabelConfig {
            source_labels: c.source_labels,
            separator: c.separator,
            regex: c.regex,
            modulus: c.modulus,
            target_label: c.target_label,
            replacement: c.replacement,
            action: c.action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RelabelConfig, String> {
        serde_norway::from_str::<RelabelConfig>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_prometheus() {
        let c = parse("target_label: x").unwrap();
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex.as_str(), "(.*)");
        assert_eq!(c.replacement, "$1");
        assert!(c.regex.regex().is_match("anything"));
    }

    #[test]
    fn regex_is_anchored() {
        let c = parse("target_label: x\nregex: 'a|b'").unwrap();
        assert!(c.regex.regex().is_match("a"));
        assert!(!c.regex.regex().is_match("ab"));
        assert!(!c.regex.regex().is_match("xa"));
    }

    #[test]
    fn action_is_case_insensitive_and_unknown_refused() {
        assert_eq!(
            parse("action: Keep\nsource_labels: [a]").unwrap().action,
            Action::Keep
        );
        let e = parse("action: frobnicate").unwrap_err();
        assert!(e.contains("unknown relabel action \"frobnicate\""), "{e}");
    }

    #[test]
    fn per_action_rules() {
        let cases = [
            ("action: replace", "requires 'target_label' value"),
            (
                "action: hashmod\ntarget_label: x",
                "requires non-zero modulus",
            ),
            (
                "action: hashmod\nmodulus: 2",
                "requires 'target_label' value",
            ),
            (
                "action: hashmod\nmodulus: 2\ntarget_label: '${1}x'",
                "is invalid 'target_label' for hashmod",
            ),
            (
                "action: replace\ntarget_label: '1abc'",
                "is invalid 'target_label' for replace",
            ),
            (
                "action: lowercase\ntarget_label: x\nreplacement: y",
                "'replacement' can not be set for lowercase",
            ),
            ("action: uppercase", "requires 'target_label' value"),
            (
                "action: labelmap\nreplacement: '-x'",
                "is invalid 'replacement' for labelmap",
            ),
            (
                "action: keepequal\ntarget_label: x\nregex: a",
                "keepequal action requires only",
            ),
            (
                "action: dropequal\ntarget_label: x\nseparator: ','",
                "dropequal action requires only",
            ),
            (
                "action: labeldrop\nregex: a\ntarget_label: x",
                "labeldrop action requires only 'regex'",
            ),
            (
                "action: labelkeep\nsource_labels: [a]",
                "labelkeep action requires only 'regex'",
            ),
            (
                "source_labels: ['0bad']\ntarget_label: x",
                "\"0bad\" is not a valid label name",
            ),
            ("target_label: x\nregex: '(a'", "invalid regex \"(a\""),
            ("target_label: x\nfoo: 1", "unknown field `foo`"),
        ];
        for (yaml, want) in cases {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml:?}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn valid_rules_accepted() {
        for yaml in [
            "action: replace\ntarget_label: '${1}_x'\nsource_labels: [a, b]",
            "action: hashmod\nmodulus: 4\ntarget_label: __tmp_hash\nsource_labels: [__address__]",
            "action: labelmap\nregex: '__meta_(.+)'",
            "action: labeldrop\nregex: 'tmp_.*'",
            "action: keepequal\nsource_labels: [a]\ntarget_label: b",
            "action: lowercase\nsource_labels: [a]\ntarget_label: b",
            "action: keep\nsource_labels: [job]\nregex: node",
        ] {
            assert!(parse(yaml).is_ok(), "{yaml:?}: {:?}", parse(yaml));
        }
    }
}
