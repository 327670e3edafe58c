//! The YAML layer of rule files: strict deserialisation of `groups:` into raw structs, and the
//! positions of nodes for error messages. Prometheus 2.42 decodes with yaml.v3 and
//! `KnownFields(true)`, so an unknown key is an error worded
//! `field X not found in type rulefmt.RuleNode`, and a wrong scalar type is
//! `cannot unmarshal !!str \`abc\` into int`; those texts are reproduced here. The values of
//! `record`, `alert` and `expr` are kept as their raw scalar text, as a yaml.v3 `Node.Value` is.
//!
//! serde_norway does not expose node positions, only the position of an error. [`locate`]
//! therefore finds a node by deserialising the document once more with a probe that fails
//! exactly at that node; it runs only when a message needs a position, i.e. on the error path.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::gocompat;

/// Starts a message produced by this module inside a serde_norway error; what follows up to
/// [`END`] is the message, and the kind byte says how promtool prints it.
const START: char = '\u{1}';
const END: char = '\u{2}';
/// yaml.v3 collects type errors as `yaml: unmarshal errors:\n  line N: ...`.
const KIND_UNMARSHAL: char = 'U';
/// Errors of a field's own unmarshaller (durations) are printed bare.
const KIND_PLAIN: char = 'P';
/// The probe's marker: the error position is the position of the node looked for.
const PROBE: &str = "\u{1}probe\u{2}";

/// The whole file, as yaml.v3 decodes it into `rulefmt.RuleGroups`.
#[derive(Debug, Default)]
pub(crate) struct RawGroups {
    pub groups: Vec<RawGroup>,
}

#[derive(Debug, Default)]
pub(crate) struct RawGroup {
    pub name: String,
    pub interval_ms: Option<u64>,
    pub limit: i64,
    pub rules: Vec<RawRule>,
}

/// One rule as `rulefmt.RuleNode` holds it: `record`, `alert` and `expr` are raw node texts
/// (`None` when the key is absent, which yaml.v3 reports at position 0:0).
#[derive(Debug, Default)]
pub(crate) struct RawRule {
    pub record: Option<String>,
    pub alert: Option<String>,
    pub expr: Option<String>,
    pub for_ms: u64,
    pub keep_firing_for_ms: u64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Decodes the first YAML document of `text` (an empty file is an empty rule set, as yaml.v3
/// ignores `io.EOF`). The error is the text promtool prints after `<file>: `.
pub(crate) fn decode(text: &str) -> Result<RawGroups, String> {
    let Some(doc) = serde_norway::Deserializer::from_str(text).next() else {
        return Ok(RawGroups::default());
    };
    match doc.deserialize_any(GroupsVisitor) {
        Ok(g) => Ok(g),
        Err(e) => Err(render_error(&e)),
    }
}

/// Turns a serde_norway error into promtool's wording: this module's own messages by their
/// kind, YAML syntax errors as `yaml: line N: problem`.
fn render_error(e: &serde_norway::Error) -> String {
    let raw = e.to_string();
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    if let Some(start) = raw.find(START) {
        let rest = &raw[start + START.len_utf8()..];
        let end = rest.find(END).unwrap_or(rest.len());
        let body = &rest[..end];
        let mut chars = body.chars();
        let kind = chars.next();
        let msg = chars.as_str();
        if kind == Some(KIND_PLAIN) {
            return msg.to_string();
        }
        return format!("yaml: unmarshal errors:\n  line {line}: {msg}");
    }
    // serde's own type errors (a sequence where a string belongs).
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let tag = if rest.starts_with("sequence") {
            "!!seq"
        } else if rest.starts_with("map") {
            "!!map"
        } else {
            "!!str"
        };
        return format!(
            "yaml: unmarshal errors:\n  line {line}: cannot unmarshal {tag} into string"
        );
    }
    syntax_error(&raw)
}

/// A libyaml error as yaml.v3 words it. serde_norway prints `problem at line L column C[,
/// context at line L2 column C2]` (1-based); yaml.v3 prints `yaml: line N: problem`, where N
/// is the context mark's 0-based line (or else the problem's), plus one for scanner errors.
fn syntax_error(raw: &str) -> String {
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

fn unmarshal_error<E: de::Error>(msg: impl fmt::Display) -> E {
    E::custom(format!("{START}{KIND_UNMARSHAL}{msg}{END}"))
}

fn plain_error<E: de::Error>(msg: impl fmt::Display) -> E {
    E::custom(format!("{START}{KIND_PLAIN}{msg}{END}"))
}

fn unknown_field<E: de::Error>(field: &str, ty: &str) -> E {
    unmarshal_error(format!("field {field} not found in type rulefmt.{ty}"))
}

/// A map key checked against the known fields of `ty`; an unknown one fails at the key, so
/// the error carries the key's line as yaml.v3's does.
struct FieldSeed {
    known: &'static [&'static str],
    ty: &'static str,
}

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = &'static str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a field of rulefmt.{}", self.ty)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match self.known.iter().find(|k| **k == v) {
            Some(k) => Ok(k),
            None => Err(unknown_field(v, self.ty)),
        }
    }
}

struct GroupsVisitor;

impl<'de> Visitor<'de> for GroupsVisitor {
    type Value = RawGroups;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping with `groups`")
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawGroups, E> {
        Ok(RawGroups::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<RawGroups, E> {
        Ok(RawGroups::default())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawGroups, E> {
        Err(scalar_type_error(v, "rulefmt.RuleGroups"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<RawGroups, A::Error> {
        Err(unmarshal_error(
            "cannot unmarshal !!seq into rulefmt.RuleGroups",
        ))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawGroups, A::Error> {
        let mut out = RawGroups::default();
        let seed = || FieldSeed {
            known: &["groups"],
            ty: "RuleGroups",
        };
        while let Some(_key) = map.next_key_seed(seed())? {
            out.groups = map.next_value_seed(ListSeed {
                item: GroupVisitor,
                ty: "[]rulefmt.RuleGroup",
            })?;
        }
        Ok(out)
    }
}

/// A YAML sequence of items each decoded by `V` (`null` is an empty list, as in Go); `ty`
/// names the Go type in type errors.
struct ListSeed<V> {
    item: V,
    ty: &'static str,
}

impl<'de, V> DeserializeSeed<'de> for ListSeed<V>
where
    V: Visitor<'de> + Copy,
{
    type Value = Vec<V::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, V> Visitor<'de> for ListSeed<V>
where
    V: Visitor<'de> + Copy,
{
    type Value = Vec<V::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Err(scalar_type_error(v, self.ty))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(unmarshal_error(format!(
            "cannot unmarshal !!int `{v}` into {}",
            self.ty
        )))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(unmarshal_error(format!(
            "cannot unmarshal !!int `{v}` into {}",
            self.ty
        )))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let v = gocompat::format_float_g(v);
        Err(unmarshal_error(format!(
            "cannot unmarshal !!float `{v}` into {}",
            self.ty
        )))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Err(unmarshal_error(format!(
            "cannot unmarshal !!bool `{v}` into {}",
            self.ty
        )))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(unmarshal_error(format!(
            "cannot unmarshal !!map into {}",
            self.ty
        )))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(MapSeed(self.item))? {
            out.push(item);
        }
        Ok(out)
    }
}

/// Decodes one item with a map visitor (`deserialize_any`, so a scalar item is a type error).
struct MapSeed<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for MapSeed<V> {
    type Value = V::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0)
    }
}

fn scalar_type_error<E: de::Error>(v: &str, into: &str) -> E {
    unmarshal_error(format!("cannot unmarshal !!str `{v}` into {into}"))
}

#[derive(Clone, Copy)]
struct GroupVisitor;

impl<'de> Visitor<'de> for GroupVisitor {
    type Value = RawGroup;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a rule group")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawGroup, E> {
        Err(scalar_type_error(v, "rulefmt.RuleGroup"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawGroup, E> {
        Ok(RawGroup::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawGroup, A::Error> {
        let mut g = RawGroup::default();
        let seed = || FieldSeed {
            known: &["name", "interval", "limit", "rules"],
            ty: "RuleGroup",
        };
        while let Some(key) = map.next_key_seed(seed())? {
            match key {
                "name" => g.name = map.next_value_seed(Text)?,
                "interval" => g.interval_ms = Some(map.next_value_seed(DurationSeed)?),
                "limit" => g.limit = map.next_value_seed(IntSeed)?,
                _ => {
                    g.rules = map.next_value_seed(ListSeed {
                        item: RuleVisitor,
                        ty: "[]rulefmt.RuleNode",
                    })?
                }
            }
        }
        Ok(g)
    }
}

#[derive(Clone, Copy)]
struct RuleVisitor;

impl<'de> Visitor<'de> for RuleVisitor {
    type Value = RawRule;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a rule")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRule, E> {
        Err(scalar_type_error(v, "rulefmt.RuleNode"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawRule, E> {
        Ok(RawRule::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRule, A::Error> {
        let mut r = RawRule::default();
        let seed = || FieldSeed {
            known: &[
                "record",
                "alert",
                "expr",
                "for",
                "keep_firing_for",
                "labels",
                "annotations",
            ],
            ty: "RuleNode",
        };
        while let Some(key) = map.next_key_seed(seed())? {
            match key {
                "record" => r.record = Some(map.next_value_seed(Text)?),
                "alert" => r.alert = Some(map.next_value_seed(Text)?),
                "expr" => r.expr = Some(map.next_value_seed(Text)?),
                "for" => r.for_ms = map.next_value_seed(DurationSeed)?,
                "keep_firing_for" => r.keep_firing_for_ms = map.next_value_seed(DurationSeed)?,
                "labels" => r.labels = map.next_value_seed(StringMap)?,
                _ => r.annotations = map.next_value_seed(StringMap)?,
            }
        }
        Ok(r)
    }
}

/// A scalar's raw text (yaml.v3 decodes any scalar into a string field as written).
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A Prometheus duration (`model.Duration`), in milliseconds.
struct DurationSeed;

impl<'de> DeserializeSeed<'de> for DurationSeed {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        let s = d.deserialize_str(TextVisitor)?;
        gocompat::parse_duration(&s).map_err(plain_error)
    }
}

/// A Go `int`: an integer scalar, `null` as 0, anything else a yaml.v3 type error.
struct IntSeed;

impl<'de> DeserializeSeed<'de> for IntSeed {
    type Value = i64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IntSeed {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .map_err(|_| unmarshal_error(format!("cannot unmarshal !!int `{v}` into int")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // yaml.v3 accepts a float that is a whole number.
        if v.fract() == 0.0 && v.abs() < 9.2e18 {
            return Ok(v as i64);
        }
        Err(unmarshal_error(format!(
            "cannot unmarshal !!float `{}` into int",
            gocompat::format_float_g(v)
        )))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<i64, E> {
        Err(unmarshal_error(format!(
            "cannot unmarshal !!bool `{v}` into int"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        Err(scalar_type_error(v, "int"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
    fn visit_none<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<i64, A::Error> {
        Err(unmarshal_error("cannot unmarshal !!seq into int"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<i64, A::Error> {
        Err(unmarshal_error("cannot unmarshal !!map into int"))
    }
}

/// `map[string]string`: keys and values as their raw text; `null` is an empty map.
struct StringMap;

impl<'de> DeserializeSeed<'de> for StringMap {
    type Value = BTreeMap<String, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringMap {
    type Value = BTreeMap<String, String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Err(scalar_type_error(v, "map[string]string"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(unmarshal_error(
            "cannot unmarshal !!seq into map[string]string",
        ))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(k) = map.next_key_seed(Text)? {
            let v = map.next_value_seed(Text)?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// One step of a path to a node: a mapping key or a sequence index.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The 1-based `(line, column)` of the node at `path` in the first document of `text`, as
/// yaml.v3's `Node.Line`/`Node.Column` report it; `None` when there is no such node.
pub(crate) fn locate(text: &str, path: &[Step<'_>]) -> Option<(usize, usize)> {
    let doc = serde_norway::Deserializer::from_str(text).next()?;
    match (Probe { path }).deserialize(doc) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(PROBE) => e.location().map(|l| (l.line(), l.column())),
        Err(_) => None,
    }
}

/// Walks `path` and fails at its end, so that serde_norway stamps that node's position on
/// the error.
struct Probe<'a, 'p> {
    path: &'p [Step<'a>],
}

impl<'de> DeserializeSeed<'de> for Probe<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_, '_> {
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
        let Step::Key(want) = *first else {
            return Ok(());
        };
        while let Some(k) = map.next_key_seed(Text)? {
            if k == want {
                map.next_value_seed(Probe { path: rest })?;
                return Ok(());
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

impl Probe<'_, '_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(PROBE))
        } else {
            Ok(())
        }
    }
}
