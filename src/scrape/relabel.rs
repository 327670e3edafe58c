//! Applies relabeling rules to a label set with Prometheus's semantics (`relabel.Process`):
//! rules run in order on the result of the previous one, `keep`/`drop`/`keepequal`/
//! `dropequal` can drop the whole set, `replace` expands `$1`/`${name}` references with Go's
//! `Regexp.Expand` rules and skips a target label that is invalid after expansion, `hashmod`
//! uses the last 8 bytes of the MD5 of the joined source values. Pure functions, no I/O.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use regex::Regex;

use crate::config::{is_valid_label_name, Action, RelabelConfig, DEFAULT_REGEX};
use crate::storage::model::{Label, Labels};

/// A label set being rewritten: a name → value map where setting an empty value deletes,
/// like Prometheus's `labels.Builder`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelsBuilder {
    map: BTreeMap<String, String>,
}

impl LabelsBuilder {
    pub fn new(labels: &Labels) -> Self {
        let map = labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        LabelsBuilder { map }
    }

    /// The value of `name`, "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.map.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.map.remove(name);
        } else {
            self.map.insert(name.to_string(), value.to_string());
        }
    }

    pub fn del(&mut self, name: &str) {
        self.map.remove(name);
    }

    pub fn labels(&self) -> Labels {
        Labels::new(
            self.map
                .iter()
                .map(|(n, v)| Label::new(n.as_str(), v.as_str()))
                .collect(),
        )
    }

    /// A copy of the current pairs, so a rule can iterate while it edits.
    fn snapshot(&self) -> Vec<(String, String)> {
        self.map
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }
}

/// Applies `cfgs` in order; `None` when a rule dropped the set.
pub fn process(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    if cfgs.is_empty() {
        return Some(labels.clone());
    }
    let mut b = LabelsBuilder::new(labels);
    if process_builder(&mut b, cfgs) {
        Some(b.labels())
    } else {
        None
    }
}

/// Like [`process`] on a builder the caller owns; false when the set was dropped.
pub fn process_builder(b: &mut LabelsBuilder, cfgs: &[RelabelConfig]) -> bool {
    cfgs.iter().all(|cfg| relabel(cfg, b))
}

fn relabel(cfg: &RelabelConfig, b: &mut LabelsBuilder) -> bool {
    let values: Vec<&str> = cfg
        .source_labels
        .iter()
        .map(|n| b.get(n.as_str()))
        .collect();
    let val = values.join(&cfg.separator);
    let re = cfg.regex.regex();
    match cfg.action {
        Action::Drop => return !re.is_match(&val),
        Action::Keep => return re.is_match(&val),
        Action::DropEqual => return b.get(&cfg.target_label) != val,
        Action::KeepEqual => return b.get(&cfg.target_label) == val,
        Action::Replace => replace(cfg, b, &val),
        Action::Lowercase => b.set(&cfg.target_label, &go_lowercase(&val)),
        Action::Uppercase => b.set(&cfg.target_label, &go_uppercase(&val)),
        Action::HashMod => {
            let modulus = cfg.modulus.max(1);
            b.set(&cfg.target_label, &(hash_of(&val) % modulus).to_string());
        }
        Action::LabelMap => {
            for (name, value) in b.snapshot() {
                if let Some(caps) = re.captures(&name) {
                    let new_name = expand(re, &cfg.replacement, &caps);
                    b.set(&new_name, &value);
                }
            }
        }
        Action::LabelDrop => {
            for (name, _) in b.snapshot() {
                if re.is_match(&name) {
                    b.del(&name);
                }
            }
        }
        Action::LabelKeep => {
            for (name, _) in b.snapshot() {
                if !re.is_match(&name) {
                    b.del(&name);
                }
            }
        }
    }
    true
}

fn replace(cfg: &RelabelConfig, b: &mut LabelsBuilder, val: &str) {
    // Prometheus's fast path: nothing to expand, so set the literal pair.
    if val.is_empty()
        && cfg.regex.as_str() == DEFAULT_REGEX
        && !cfg.target_label.contains('$')
        && !cfg.replacement.contains('$')
    {
        b.set(&cfg.target_label, &cfg.replacement);
        return;
    }
    let re = cfg.regex.regex();
    let Some(caps) = re.captures(val) else { return };
    let target = expand(re, &cfg.target_label, &caps);
    if !is_valid_label_name(&target) {
        return;
    }
    let res = expand(re, &cfg.replacement, &caps);
    if res.is_empty() {
        b.del(&target);
    } else {
        b.set(&target, &res);
    }
}

/// The value `hashmod` reduces: the last 8 bytes of the MD5 digest, big-endian.
pub fn hash_of(val: &str) -> u64 {
    let digest = Md5::digest(val.as_bytes());
    let mut last8 = [0u8; 8];
    for (dst, src) in last8.iter_mut().zip(digest.iter().skip(8)) {
        *dst = *src;
    }
    u64::from_be_bytes(last8)
}

/// Go's `unicode.ToLower` per character (simple case mapping, no context rules).
fn go_lowercase(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Go's `unicode.ToUpper` per character: a character whose uppercase is several characters
/// (`ß`) has no simple mapping and stays as it is.
fn go_uppercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Go's `Regexp.Expand`: `$$` is `$`; `$name` takes the longest run of letters, digits and
/// `_`; `${name}` is explicit; a name of digits without a leading zero is a group number;
/// an unknown group expands to nothing; a malformed reference is kept as text.
pub fn expand(re: &Regex, template: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = extract_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        match group_number(name) {
            Some(n) => {
                if let Some(m) = caps.get(n) {
                    out.push_str(m.as_str());
                }
            }
            None => {
                if let Some(m) = re
                    .capture_names()
                    .position(|c| c == Some(name))
                    .and_then(|i| caps.get(i))
                {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a reference name (after `$`) from the rest of the template.
fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (body, braced) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphabetic() || c.is_numeric() || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if braced {
        let after = body[end..].strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, &body[end..]))
    }
}

/// Go treats an all-ASCII-digit name below 1e8 without a leading zero as a group number.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    let mut num: usize = 0;
    for b in name.bytes() {
        if num >= 100_000_000 {
            return None;
        }
        num = num * 10 + usize::from(b - b'0');
    }
    Some(num)
}

#[cfg(test)]
mod tests;
