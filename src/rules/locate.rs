//! Positions of YAML nodes and yaml.v3's wording of syntax errors, for the rule-file error
//! messages promtool prints. serde_norway exposes no node positions, only the position of an
//! error, so [`locate`] deserialises the document once more with a probe that fails exactly at
//! the node wanted (a value, or a mapping key) and reads the position off that error. It runs
//! only when a message needs a position or a scalar's raw text is needed (a float or boolean
//! where a string belongs), so valid files with string values are parsed once.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The probe's marker: an error carrying it is positioned at the node looked for.
const PROBE: &str = "\u{1}probe\u{2}";

/// One step of a path to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The value of a mapping key (the first occurrence).
    Key(String),
    /// An item of a sequence.
    Index(usize),
    /// The key node itself, at its `n`th occurrence (0-based) in the mapping; a path's last
    /// step.
    KeyNode(String, usize),
}

/// Where a node starts: 1-based line and column (yaml.v3's `Node.Line`/`Node.Column`) and
/// the byte index into the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
    pub index: usize,
}

/// The node at `path` in the first document of `text`, if there is one.
pub(crate) fn locate(text: &str, path: &[Step]) -> Option<Pos> {
    let doc = serde_norway::Deserializer::from_str(text).next()?;
    match (Probe { path }).deserialize(doc) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(PROBE) => e.location().map(|l| Pos {
            line: l.line(),
            column: l.column(),
            index: l.index(),
        }),
        Err(_) => None,
    }
}

/// The raw text of the plain scalar at `path` (a number, boolean or null as written:
/// `1.50`, `True`, `~`), which serde_norway has already converted; `None` if the node is
/// not there. Such scalars are single tokens, ended by blanks, flow indicators or a comment.
pub(crate) fn raw_scalar(text: &str, path: &[Step]) -> Option<String> {
    let pos = locate(text, path)?;
    let rest = text.get(pos.index..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#'))
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// Walks `path` and fails at its end, so that serde_norway stamps that node's position on
/// the error.
struct Probe<'p> {
    path: &'p [Step],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Probe<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(PROBE))
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any node")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(PROBE));
        };
        let Step::Index(want) = *first else {
            return Ok(());
        };
        let mut i = 0;
        loop {
            if i == want {
                seq.next_element_seed(Probe { path: rest })?;
                return Ok(());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(PROBE));
        };
        match first {
            Step::Key(want) => {
                while let Some(k) = map.next_key_seed(KeySeed { fail_on: None })? {
                    if k == *want {
                        map.next_value_seed(Probe { path: rest })?;
                        return Ok(());
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Step::KeyNode(want, nth) => {
                let mut seen = 0;
                loop {
                    let fail_on = (seen == *nth).then_some(want.as_str());
                    let Some(k) = map.next_key_seed(KeySeed { fail_on })? else {
                        break;
                    };
                    if k == *want {
                        seen += 1;
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Step::Index(_) => {}
        }
        Ok(())
    }
}

/// A mapping key as text; fails (with the probe marker) on the key `fail_on`.
struct KeySeed<'a> {
    fail_on: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if self.fail_on == Some(v) {
            return Err(E::custom(PROBE));
        }
        Ok(v.to_string())
    }
}

/// A libyaml error as yaml.v3 words it. serde_norway prints `problem at line L column C[,
/// context at line L2 column C2]` (1-based); yaml.v3 prints `yaml: line N: problem`, where N
/// is the context mark's 0-based line (or else the problem's), plus one for scanner errors,
/// and no line when that is 0.
pub(crate) fn syntax_error(raw: &str) -> String {
    let (problem, rest) = match raw.find(" at line ") {
        Some(i) => (&raw[..i], &raw[i + " at line ".len()..]),
        None => match raw.find(", ") {
            Some(i) => (&raw[..i], &raw[i..]),
            None => (raw, ""),
        },
    };
    let problem_line = leading_number(rest);
    let context = rest.find(", ").map(|i| &rest[i + 2..]);
    let scanner = context.is_some_and(|c| c.starts_with("while scanning"));
    let context_line = context.map(|c| match c.find(" at line ") {
        Some(i) => leading_number(&c[i + " at line ".len()..]),
        None => problem_line,
    });
    let zero_based = |l: usize| l.saturating_sub(1);
    let mut line = 0;
    if let Some(cl) = context_line.map(zero_based).filter(|l| *l != 0) {
        line = cl;
    } else if zero_based(problem_line) != 0 {
        line = zero_based(problem_line);
    }
    if line != 0 && scanner {
        line += 1;
    }
    if line == 0 {
        format!("yaml: {problem}")
    } else {
        format!("yaml: line {line}: {problem}")
    }
}

fn leading_number(s: &str) -> usize {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.to_string())
    }

    #[test]
    fn locates_values_keys_and_raw_scalars() {
        let text = "groups:\n  - name: g\n    limit: 1.50\n    limit: 2\n";
        let p = locate(text, &[key("groups"), Step::Index(0)]).unwrap();
        assert_eq!((p.line, p.column), (2, 5));
        let p = locate(text, &[key("groups"), Step::Index(0), key("name")]).unwrap();
        assert_eq!((p.line, p.column), (2, 11));
        let second = Step::KeyNode("limit".into(), 1);
        let p = locate(text, &[key("groups"), Step::Index(0), second]).unwrap();
        assert_eq!((p.line, p.column), (4, 5));
        assert_eq!(
            raw_scalar(text, &[key("groups"), Step::Index(0), key("limit")]).unwrap(),
            "1.50"
        );
        assert_eq!(locate(text, &[key("nope")]), None);
    }

    #[test]
    fn syntax_errors_are_worded_like_yaml_v3() {
        assert_eq!(
            syntax_error("did not find expected '-' indicator at line 5 column 8, while parsing a block collection at line 4 column 7"),
            "yaml: line 3: did not find expected '-' indicator"
        );
        assert_eq!(
            syntax_error("found character that cannot start any token at line 7 column 14, while scanning for the next token"),
            "yaml: line 7: found character that cannot start any token"
        );
        assert_eq!(
            syntax_error("found character that cannot start any token at line 1 column 1, while scanning for the next token"),
            "yaml: found character that cannot start any token"
        );
    }
}
