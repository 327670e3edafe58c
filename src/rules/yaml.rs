//! Decoding a rule file's YAML into raw structs the way Prometheus 2.42 does it with yaml.v3:
//! strictly (`KnownFields`: an unknown key is `field X not found in type rulefmt.RuleNode`),
//! collecting every type error (`line 3: cannot unmarshal !!str \`abc\` into int`) and
//! duplicate key (`mapping key "expr" already defined at line 5`) and going on, but stopping
//! at the first bad duration (`not a valid duration string: "5x"`), which yaml.v3 reports
//! alone. Scalars decode into strings as written (`1.50` stays `1.50`), and `record`, `alert`
//! and `expr` keep a yaml.v3 `Node.Value`: any scalar's text (`null` too), `""` for a
//! sequence or mapping. Prometheus decodes the file a second time into
//! `ruleGroups{Groups []yaml.Node}`; that decode's errors (a wrong shape of the top two
//! levels) are reported too.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::locate::{self, Step};
use crate::gocompat;

/// Marks the message of an error this module raises to stop decoding (a bad duration).
const ABORT: char = '\u{1}';

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

/// One rule as `rulefmt.RuleNode` holds it: `record`, `alert` and `expr` are node texts
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

/// A type error found while decoding: where (its node) and what.
struct TypeError {
    path: Vec<Step>,
    message: String,
}

/// What the visitors share: the text (to look up positions and raw scalars) and the errors
/// found so far, of the typed decode and of Prometheus's second decode.
struct Ctx<'t> {
    text: &'t str,
    errors: RefCell<Vec<TypeError>>,
    second: RefCell<Vec<TypeError>>,
}

impl Ctx<'_> {
    fn error(&self, path: &[Step], message: String) {
        self.errors.borrow_mut().push(TypeError {
            path: path.to_vec(),
            message,
        });
    }

    /// yaml.v3's `terror`: `cannot unmarshal !!tag \`value\` into <go type>`.
    fn type_error(&self, path: &[Step], node: &Node, into: &str) {
        self.error(
            path,
            format!("cannot unmarshal {} into {into}", self.describe(path, node)),
        );
    }

    /// A node as yaml.v3 names it in a type error: the tag, and for a scalar its text
    /// (longer than 10 bytes: the first 7 and `...`).
    fn describe(&self, path: &[Step], node: &Node) -> String {
        let (tag, value) = match node {
            Node::Str(s) => ("!!str", s.clone()),
            Node::Int(n) => ("!!int", n.to_string()),
            Node::Float(f) => ("!!float", self.raw(path, || gocompat::format_float_g(*f))),
            Node::Bool(b) => ("!!bool", self.raw(path, || b.to_string())),
            Node::Null => ("!!null", self.raw(path, String::new)),
            Node::Seq => return "!!seq".to_string(),
            Node::Map => return "!!map".to_string(),
        };
        if value.len() > 10 {
            let mut cut = 7;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{tag} `{}...`", &value[..cut])
        } else {
            format!("{tag} `{value}`")
        }
    }

    /// The scalar's text as written, or `fallback` if it cannot be found.
    fn raw(&self, path: &[Step], fallback: impl FnOnce() -> String) -> String {
        locate::raw_scalar(self.text, path).unwrap_or_else(fallback)
    }

    /// A scalar as yaml.v3 decodes it into a string: as written; null is `""`.
    fn scalar_text(&self, path: &[Step], node: &Node) -> Option<String> {
        match node {
            Node::Str(s) => Some(s.clone()),
            Node::Int(n) => Some(n.to_string()),
            Node::Float(f) => Some(self.raw(path, || gocompat::format_float_g(*f))),
            Node::Bool(b) => Some(self.raw(path, || b.to_string())),
            Node::Null => Some(String::new()),
            Node::Seq | Node::Map => None,
        }
    }
}

/// Decodes the first YAML document of `text` (an empty file is an empty rule set, as yaml.v3
/// ignores `io.EOF`). The errors are the texts promtool prints after `<file>: `.
pub(crate) fn decode(text: &str) -> Result<RawGroups, Vec<String>> {
    let Some(doc) = serde_norway::Deserializer::from_str(text).next() else {
        return Ok(RawGroups::default());
    };
    let ctx = Ctx {
        text,
        errors: RefCell::new(Vec::new()),
        second: RefCell::new(Vec::new()),
    };
    let top = Expect(Top {
        ctx: &ctx,
        path: Vec::new(),
    });
    let decoded = doc.deserialize_any(top);
    let groups = match decoded {
        Ok(g) => g,
        Err(e) => {
            let raw = e.to_string();
            if let Some(i) = raw.find(ABORT) {
                let msg = &raw[i + ABORT.len_utf8()..];
                let end = msg.find(ABORT).unwrap_or(msg.len());
                return Err(vec![msg[..end].to_string()]);
            }
            // A syntax error fails both decodes alike.
            let msg = locate::syntax_error(&raw);
            return Err(vec![msg.clone(), msg]);
        }
    };
    let mut out = Vec::new();
    for list in [ctx.errors.into_inner(), ctx.second.into_inner()] {
        if list.is_empty() {
            continue;
        }
        let mut msg = String::from("yaml: unmarshal errors:");
        for e in list {
            let line = locate::locate(text, &e.path).map(|p| p.line).unwrap_or(0);
            msg.push_str(&format!("\n  line {line}: {}", e.message));
        }
        out.push(msg);
    }
    if out.is_empty() {
        Ok(groups)
    } else {
        Err(out)
    }
}

/// Any node, its content skipped: what a field got when it was not what it wanted.
enum Node {
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    Null,
    Seq,
    Map,
}

struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any node")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Node::Seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Node::Map)
    }
}

/// A collection (struct, list or map) of Go type `go_type()`: a mapping goes to `map`, a
/// sequence to `seq`; by default either is a type error, as is any scalar. `null` is the
/// zero value.
trait Container: Sized {
    type Out: Default;
    fn ctx(&self) -> &Ctx<'_>;
    fn path(&self) -> &[Step];
    fn go_type(&self) -> &'static str;
    /// The second decode's type at this node, if it has one (the top two levels).
    fn second_go_type(&self) -> Option<&'static str> {
        None
    }
    fn map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.wrong(&Node::Map);
        Ok(Self::Out::default())
    }
    fn seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.wrong(&Node::Seq);
        Ok(Self::Out::default())
    }
    fn wrong(&self, node: &Node) {
        let ctx = self.ctx();
        ctx.type_error(self.path(), node, self.go_type());
        if let Some(second) = self.second_go_type() {
            let msg = format!(
                "cannot unmarshal {} into {second}",
                ctx.describe(self.path(), node)
            );
            ctx.second.borrow_mut().push(TypeError {
                path: self.path().to_vec(),
                message: msg,
            });
        }
    }
}

/// Drives a [`Container`] from serde's visitor calls.
struct Expect<C>(C);

impl<'de, C: Container> DeserializeSeed<'de> for Expect<C> {
    type Value = C::Out;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<C::Out, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, C: Container> Visitor<'de> for Expect<C> {
    type Value = C::Out;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0.go_type())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<C::Out, A::Error> {
        self.0.map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<C::Out, A::Error> {
        self.0.seq(seq)
    }
    fn visit_unit<E: de::Error>(self) -> Result<C::Out, E> {
        Ok(C::Out::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<C::Out, E> {
        Ok(C::Out::default())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<C::Out, E> {
        self.0.wrong(&Node::Bool(v));
        Ok(C::Out::default())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<C::Out, E> {
        self.0.wrong(&Node::Int(v.into()));
        Ok(C::Out::default())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<C::Out, E> {
        self.0.wrong(&Node::Int(v.into()));
        Ok(C::Out::default())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<C::Out, E> {
        self.0.wrong(&Node::Float(v));
        Ok(C::Out::default())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<C::Out, E> {
        self.0.wrong(&Node::Str(v.to_string()));
        Ok(C::Out::default())
    }
}

fn child(path: &[Step], step: Step) -> Vec<Step> {
    let mut p = path.to_vec();
    p.push(step);
    p
}

/// Reads a struct's keys: unknown ones and repeated ones are recorded (at the key) and
/// skipped; `field` decodes the value of each known key.
fn read_struct<'de, A, F>(
    ctx: &Ctx<'_>,
    path: &[Step],
    ty: &str,
    known: &[&'static str],
    mut map: A,
    mut field: F,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    F: FnMut(&mut A, &'static str, Vec<Step>) -> Result<(), A::Error>,
{
    // yaml.v3 reports a mapping's repeated keys before the errors inside it.
    let first_error = ctx.errors.borrow().len();
    let mut repeated = 0;
    let mut seen: Vec<String> = Vec::new();
    while let Some(key) = map.next_key_seed(NodeSeed)? {
        let key_path = child(path, Step::Key(String::new()));
        let name = ctx.scalar_text(&key_path, &key).unwrap_or_default();
        let count = seen.iter().filter(|k| **k == name).count();
        if count > 0 {
            let here = child(path, Step::KeyNode(name.clone(), count));
            let first = child(path, Step::KeyNode(name.clone(), 0));
            let first_line = locate::locate(ctx.text, &first)
                .map(|p| p.line)
                .unwrap_or(0);
            ctx.errors.borrow_mut().insert(
                first_error + repeated,
                TypeError {
                    path: here,
                    message: format!(
                        "mapping key {} already defined at line {first_line}",
                        super::file::go_quote(&name)
                    ),
                },
            );
            repeated += 1;
        }
        seen.push(name.clone());
        match known.iter().find(|k| **k == name) {
            Some(k) => field(&mut map, k, child(path, Step::Key(name.clone())))?,
            None => {
                ctx.error(
                    &child(path, Step::KeyNode(name.clone(), count)),
                    format!("field {name} not found in type rulefmt.{ty}"),
                );
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(())
}

struct Top<'c, 't> {
    ctx: &'c Ctx<'t>,
    path: Vec<Step>,
}

impl Container for Top<'_, '_> {
    type Out = RawGroups;
    fn ctx(&self) -> &Ctx<'_> {
        self.ctx
    }
    fn path(&self) -> &[Step] {
        &self.path
    }
    fn go_type(&self) -> &'static str {
        "rulefmt.RuleGroups"
    }
    fn second_go_type(&self) -> Option<&'static str> {
        Some("rulefmt.ruleGroups")
    }
    fn map<'de, A: MapAccess<'de>>(self, map: A) -> Result<RawGroups, A::Error> {
        let mut out = RawGroups::default();
        let ctx = self.ctx;
        read_struct(
            ctx,
            &self.path,
            "RuleGroups",
            &["groups"],
            map,
            |m, _, path| {
                out.groups = m.next_value_seed(Expect(GroupList { ctx, path }))?;
                Ok(())
            },
        )?;
        Ok(out)
    }
}

struct GroupList<'c, 't> {
    ctx: &'c Ctx<'t>,
    path: Vec<Step>,
}

impl Container for GroupList<'_, '_> {
    type Out = Vec<RawGroup>;
    fn ctx(&self) -> &Ctx<'_> {
        self.ctx
    }
    fn path(&self) -> &[Step] {
        &self.path
    }
    fn go_type(&self) -> &'static str {
        "[]rulefmt.RuleGroup"
    }
    fn second_go_type(&self) -> Option<&'static str> {
        Some("[]yaml.Node")
    }
    fn seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RawGroup>, A::Error> {
        let mut out = Vec::new();
        loop {
            let path = child(&self.path, Step::Index(out.len()));
            let Some(g) = seq.next_element_seed(Expect(Group {
                ctx: self.ctx,
                path,
            }))?
            else {
                return Ok(out);
            };
            out.push(g);
        }
    }
}

struct Group<'c, 't> {
    ctx: &'c Ctx<'t>,
    path: Vec<Step>,
}

impl Container for Group<'_, '_> {
    type Out = RawGroup;
    fn ctx(&self) -> &Ctx<'_> {
        self.ctx
    }
    fn path(&self) -> &[Step] {
        &self.path
    }
    fn go_type(&self) -> &'static str {
        "rulefmt.RuleGroup"
    }
    fn map<'de, A: MapAccess<'de>>(self, map: A) -> Result<RawGroup, A::Error> {
        let mut g = RawGroup::default();
        let ctx = self.ctx;
        let known = ["name", "interval", "limit", "rules"];
        read_struct(ctx, &self.path, "RuleGroup", &known, map, |m, key, path| {
            match key {
                "name" => g.name = string_value(ctx, m, &path)?,
                "interval" => g.interval_ms = Some(duration_value(ctx, m, &path)?),
                "limit" => g.limit = int_value(ctx, m, &path)?,
                _ => g.rules = m.next_value_seed(Expect(RuleList { ctx, path }))?,
            }
            Ok(())
        })?;
        Ok(g)
    }
}

struct RuleList<'c, 't> {
    ctx: &'c Ctx<'t>,
    path: Vec<Step>,
}

impl Container for RuleList<'_, '_> {
    type Out = Vec<RawRule>;
    fn ctx(&self) -> &Ctx<'_> {
        self.ctx
    }
    fn path(&self) -> &[Step] {
        &self.path
    }
    fn go_type(&self) -> &'static str {
        "[]rulefmt.RuleNode"
    }
    fn seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RawRule>, A::Error> {
        let mut out = Vec::new();
        loop {
            let path = child(&self.path, Step::Index(out.len()));
            let Some(r) = seq.next_element_seed(Expect(RuleNode {
                ctx: self.ctx,
                path,
            }))?
            else {
                return Ok(out);
            };
            out.push(r);
        }
    }
}

struct RuleNode<'c, 't> {
    ctx: &'c Ctx<'t>,
    path: Vec<Step>,
}

impl Container for RuleNode<'_, '_> {
    type Out = RawRule;
    fn ctx(&self) -> &Ctx<'_> {
        self.ctx
    }
    fn path(&self) -> &[Step] {
        &self.path
    }
    fn go_type(&self) -> &'static str {
        "rulefmt.RuleNode"
    }
    fn map<'de, A: MapAccess<'de>>(self, map: A) -> Result<RawRule, A::Error> {
        let mut r = RawRule::default();
        let ctx = self.ctx;
        let known = [
            "record",
            "alert",
            "expr",
            "for",
            "keep_firing_for",
            "labels",
            "annotations",
        ];
        read_struct(ctx, &self.path, "RuleNode", &known, map, |m, key, path| {
            match key {
                "record" => r.record = Some(node_value(ctx, m, &path)?),
                "alert" => r.alert = Some(node_value(ctx, m, &path)?),
                "expr" => r.expr = Some(node_value(ctx, m, &path)?),
                "for" => r.for_ms = duration_value(ctx, m, &path)?,
                "keep_firing_for" => r.keep_firing_for_ms = duration_value(ctx, m, &path)?,
                "labels" => r.labels = m.next_value_seed(Expect(StringMap { ctx, path }))?,
                _ => r.annotations = m.next_value_seed(Expect(StringMap { ctx, path }))?,
            }
            Ok(())
        })?;
        Ok(r)
    }
}

/// `map[string]string`.
struct StringMap<'c, 't> {
    ctx: &'c Ctx<'t>,
    path: Vec<Step>,
}

impl Container for StringMap<'_, '_> {
    type Out = BTreeMap<String, String>;
    fn ctx(&self) -> &Ctx<'_> {
        self.ctx
    }
    fn path(&self) -> &[Step] {
        &self.path
    }
    fn go_type(&self) -> &'static str {
        "map[string]string"
    }
    fn map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut out = BTreeMap::new();
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        while let Some(key) = map.next_key_seed(NodeSeed)? {
            let key_path = child(&self.path, Step::Key(String::new()));
            let k = match self.ctx.scalar_text(&key_path, &key) {
                Some(k) => k,
                None => {
                    self.ctx.type_error(&key_path, &key, "string");
                    String::new()
                }
            };
            let n = count.entry(k.clone()).or_insert(0);
            *n += 1;
            let path = child(&self.path, Step::Key(k.clone()));
            let v = string_value(self.ctx, &mut map, &path)?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// A string field: any scalar as written (null: `""`); a collection is a type error.
fn string_value<'de, A: MapAccess<'de>>(
    ctx: &Ctx<'_>,
    map: &mut A,
    path: &[Step],
) -> Result<String, A::Error> {
    let node = map.next_value_seed(NodeSeed)?;
    Ok(match ctx.scalar_text(path, &node) {
        Some(s) => s,
        None => {
            ctx.type_error(path, &node, "string");
            String::new()
        }
    })
}

/// A `yaml.Node` field's `Value`: a scalar's text as written (`null` and `~` included), `""`
/// for a collection.
fn node_value<'de, A: MapAccess<'de>>(
    ctx: &Ctx<'_>,
    map: &mut A,
    path: &[Step],
) -> Result<String, A::Error> {
    let node = map.next_value_seed(NodeSeed)?;
    Ok(match node {
        Node::Null => {
            let raw = ctx.raw(path, String::new);
            let is_null = matches!(raw.as_str(), "~" | "null" | "Null" | "NULL");
            if is_null {
                raw
            } else {
                String::new()
            }
        }
        Node::Seq | Node::Map => String::new(),
        other => ctx.scalar_text(path, &other).unwrap_or_default(),
    })
}

/// A Go `int`: integers, floats truncated (as yaml.v3 does), null as 0; else a type error.
fn int_value<'de, A: MapAccess<'de>>(
    ctx: &Ctx<'_>,
    map: &mut A,
    path: &[Step],
) -> Result<i64, A::Error> {
    let node = map.next_value_seed(NodeSeed)?;
    match node {
        Node::Int(n) => match i64::try_from(n) {
            Ok(v) => return Ok(v),
            Err(_) => ctx.type_error(path, &node, "int"),
        },
        Node::Float(f) if f.is_finite() && f.abs() < 9.2e18 => return Ok(f as i64),
        Node::Null => return Ok(0),
        _ => ctx.type_error(path, &node, "int"),
    }
    Ok(0)
}

/// A `model.Duration`: its scalar text parsed (an invalid one stops the decode, as the
/// unmarshaller's error does in yaml.v3); null is 0; a collection is a type error.
fn duration_value<'de, A: MapAccess<'de>>(
    ctx: &Ctx<'_>,
    map: &mut A,
    path: &[Step],
) -> Result<u64, A::Error> {
    let node = map.next_value_seed(NodeSeed)?;
    if matches!(node, Node::Null) {
        return Ok(0);
    }
    let Some(text) = ctx.scalar_text(path, &node) else {
        ctx.type_error(path, &node, "string");
        return Ok(0);
    };
    gocompat::parse_duration(&text).map_err(|e| de::Error::custom(format!("{ABORT}{e}{ABORT}")))
}
