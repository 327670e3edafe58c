//! The functions templates can call: Go's builtins (`and`, `or`, `not`, `len`, `index`,
//! `slice`, `print*`, `html`, `js`, `urlquery`, `eq`…`ge`, `call`) and Prometheus 2.42's
//! (`query`, `first`, `label`, `value`, `humanize*`, `toTime`, `reReplaceAll`, `stripPort`,
//! …), each with its Go parameter types (which decide argument errors) and Go's error texts.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::fmt::{format_float_v, format_g, quote, sprint, sprintf, sprintln};
use super::value::{SampleValue, Value};
use super::QueryFunc;

/// What the Prometheus functions read: the query callback, the evaluation time and the
/// external URL (`None` stands for Prometheus's nil URL, as in `promtool test rules`).
pub(crate) struct Env<'a> {
    pub query: &'a dyn QueryFunc,
    pub ts_ms: i64,
    pub external_url: Option<&'a str>,
}

/// A Go parameter type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param {
    Any,
    Rv,
    Str,
    Sample,
    Samples,
}

impl Param {
    pub fn type_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Rv => "reflect.Value",
            Param::Str => "string",
            Param::Sample => "*template.sample",
            Param::Samples => "template.queryResult",
        }
    }
}

type Impl = fn(&Env<'_>, Vec<Value>) -> Result<Value, String>;

pub(crate) struct Func {
    pub params: &'static [Param],
    pub variadic: Option<Param>,
    pub call: Impl,
}

const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

fn f(params: &'static [Param], variadic: Option<Param>, call: Impl) -> Func {
    Func {
        params,
        variadic,
        call,
    }
}

fn arg(a: &[Value], i: usize) -> Value {
    a.get(i).cloned().unwrap_or(Value::Nil)
}

fn s(a: &[Value], i: usize) -> String {
    a.get(i)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn sample(a: &[Value], i: usize) -> Result<Rc<SampleValue>, String> {
    match a.get(i) {
        Some(Value::Sample(s)) => Ok(s.clone()),
        _ => Err(NIL_DEREF.into()),
    }
}

fn samples(a: &[Value], i: usize) -> Rc<Vec<Rc<SampleValue>>> {
    match a.get(i) {
        Some(Value::Samples(s)) => s.clone(),
        _ => Rc::new(Vec::new()),
    }
}

/// Whether a template may name the function (the parser's check).
pub(crate) fn has_function(name: &str) -> bool {
    lookup(name).is_some()
}

pub(crate) fn lookup(name: &str) -> Option<Func> {
    use Param::*;
    Some(match name {
        "and" | "or" => f(&[Rv], Some(Rv), |_, a| Ok(arg(&a, 0))),
        "call" => f(&[Rv], Some(Rv), |_, a| match arg(&a, 0) {
            Value::Nil => Err("call of nil".into()),
            v => Err(format!("non-function of type {}", v.type_name())),
        }),
        "html" => f(&[], Some(Any), |_, a| {
            Ok(Value::Str(html_escape(&eval_args(&a))))
        }),
        "js" => f(&[], Some(Any), |_, a| {
            Ok(Value::Str(js_escape(&eval_args(&a))))
        }),
        "urlquery" => f(&[], Some(Any), |_, a| {
            Ok(Value::Str(query_escape(&eval_args(&a))))
        }),
        "print" => f(&[], Some(Any), |_, a| Ok(Value::Str(sprint(&a)))),
        "println" => f(&[], Some(Any), |_, a| Ok(Value::Str(sprintln(&a)))),
        "printf" => f(&[Str], Some(Any), |_, a| {
            Ok(Value::Str(sprintf(&s(&a, 0), a.get(1..).unwrap_or(&[]))))
        }),
        "len" => f(&[Rv], None, |_, a| go_len(&arg(&a, 0))),
        "not" => f(&[Rv], None, |_, a| Ok(Value::Bool(!arg(&a, 0).truth()))),
        "index" => f(&[Rv], Some(Rv), |_, a| go_index(&a)),
        "slice" => f(&[Rv], Some(Rv), |_, a| go_slice(&a)),
        "eq" => f(&[Rv], Some(Rv), |_, a| {
            eq(&arg(&a, 0), a.get(1..).unwrap_or(&[])).map(Value::Bool)
        }),
        "ne" => f(&[Rv, Rv], None, |_, a| {
            eq(&arg(&a, 0), &a[1..]).map(|b| Value::Bool(!b))
        }),
        "lt" => f(&[Rv, Rv], None, |_, a| {
            lt(&arg(&a, 0), &arg(&a, 1)).map(Value::Bool)
        }),
        "le" => f(&[Rv, Rv], None, |_, a| {
            le(&arg(&a, 0), &arg(&a, 1)).map(Value::Bool)
        }),
        "gt" => f(&[Rv, Rv], None, |_, a| {
            le(&arg(&a, 0), &arg(&a, 1)).map(|b| Value::Bool(!b))
        }),
        "ge" => f(&[Rv, Rv], None, |_, a| {
            lt(&arg(&a, 0), &arg(&a, 1)).map(|b| Value::Bool(!b))
        }),
        // Prometheus 2.42 (template/template.go NewTemplateExpander).
        "query" => f(&[Str], None, |env, a| {
            let res = env.query.query(&s(&a, 0), env.ts_ms)?;
            Ok(Value::Samples(Rc::new(
                res.into_iter()
                    .map(|q| {
                        Rc::new(SampleValue {
                            labels: Rc::new(q.labels),
                            value: q.value,
                        })
                    })
                    .collect(),
            )))
        }),
        "first" => f(&[Samples], None, |_, a| match samples(&a, 0).first() {
            Some(s) => Ok(Value::Sample(s.clone())),
            None => Err("first() called on vector with no elements".into()),
        }),
        "label" => f(&[Str, Sample], None, |_, a| {
            Ok(Value::Str(
                sample(&a, 1)?
                    .labels
                    .get(&s(&a, 0))
                    .cloned()
                    .unwrap_or_default(),
            ))
        }),
        "value" => f(&[Sample], None, |_, a| {
            Ok(Value::Float(sample(&a, 0)?.value))
        }),
        "strvalue" => f(&[Sample], None, |_, a| {
            Ok(Value::Str(
                sample(&a, 0)?
                    .labels
                    .get("__value__")
                    .cloned()
                    .unwrap_or_default(),
            ))
        }),
        "args" => f(&[], Some(Any), |_, a| {
            let m: BTreeMap<String, Value> = a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v))
                .collect();
            Ok(Value::AnyMap(Rc::new(m)))
        }),
        "reReplaceAll" => f(&[Str, Str, Str], None, |_, a| {
            let pat = s(&a, 0);
            let re = regex::Regex::new(&pat).map_err(|e| {
                format!(
                    "regexp: Compile({}): {}",
                    backquote(&pat),
                    regex_error(&pat, &e)
                )
            })?;
            Ok(Value::Str(
                re.replace_all(&s(&a, 2), s(&a, 1).as_str()).into_owned(),
            ))
        }),
        "safeHtml" => f(&[Str], None, |_, a| Ok(Value::Html(s(&a, 0)))),
        "match" => f(&[Str, Str], None, |_, a| {
            let pat = s(&a, 0);
            let re = regex::Regex::new(&pat).map_err(|e| regex_error(&pat, &e))?;
            Ok(Value::Bool(re.is_match(&s(&a, 1))))
        }),
        "title" => f(&[Str], None, |_, a| Ok(Value::Str(title(&s(&a, 0))))),
        "toUpper" => f(&[Str], None, |_, a| {
            Ok(Value::Str(map_chars(&s(&a, 0), true)))
        }),
        "toLower" => f(&[Str], None, |_, a| {
            Ok(Value::Str(map_chars(&s(&a, 0), false)))
        }),
        "graphLink" => f(&[Str], None, |_, a| {
            Ok(Value::Str(format!(
                "/graph?g0.expr={}&g0.tab=0",
                query_escape(&s(&a, 0))
            )))
        }),
        "tableLink" => f(&[Str], None, |_, a| {
            Ok(Value::Str(format!(
                "/graph?g0.expr={}&g0.tab=1",
                query_escape(&s(&a, 0))
            )))
        }),
        "sortByLabel" => f(&[Str, Samples], None, |_, a| {
            let by = s(&a, 0);
            let mut v: Vec<Rc<SampleValue>> = samples(&a, 1).as_ref().clone();
            v.sort_by(|x, y| {
                x.labels
                    .get(&by)
                    .cmp(&y.labels.get(&by))
                    .then(std::cmp::Ordering::Equal)
            });
            v.sort_by(|x, y| {
                x.labels
                    .get(&by)
                    .map(String::as_str)
                    .unwrap_or("")
                    .cmp(y.labels.get(&by).map(String::as_str).unwrap_or(""))
            });
            Ok(Value::Samples(Rc::new(v)))
        }),
        "stripPort" => f(&[Str], None, |_, a| {
            let hp = s(&a, 0);
            Ok(Value::Str(match split_host_port(&hp) {
                Some((h, _)) => h,
                None => hp,
            }))
        }),
        "stripDomain" => f(&[Str], None, |_, a| Ok(Value::Str(strip_domain(&s(&a, 0))))),
        "humanize" => f(&[Any], None, |_, a| {
            Ok(Value::Str(humanize(to_float(&arg(&a, 0))?)))
        }),
        "humanize1024" => f(&[Any], None, |_, a| {
            Ok(Value::Str(humanize1024(to_float(&arg(&a, 0))?)))
        }),
        "humanizeDuration" => f(&[Any], None, |_, a| {
            Ok(Value::Str(humanize_duration(to_float(&arg(&a, 0))?)))
        }),
        "humanizePercentage" => f(&[Any], None, |_, a| {
            Ok(Value::Str(format!(
                "{}%",
                format_g(to_float(&arg(&a, 0))? * 100.0, 4)
            )))
        }),
        "humanizeTimestamp" => f(&[Any], None, |_, a| {
            let v = to_float(&arg(&a, 0))?;
            if v.is_nan() || v.is_infinite() {
                return Ok(Value::Str(format_g(v, 4)));
            }
            let (secs, nanos) = float_to_time(v)?;
            Ok(Value::Str(go_time_string(secs, nanos)))
        }),
        "toTime" => f(&[Any], None, |_, a| {
            let v = to_float(&arg(&a, 0))?;
            if v.is_nan() || v.is_infinite() {
                return Err("value is NaN or Inf".into());
            }
            let (secs, nanos) = float_to_time(v)?;
            Ok(Value::Time { secs, nanos })
        }),
        "pathPrefix" => f(&[], None, |env, _| match env.external_url {
            Some(u) => Ok(Value::Str(url_path(u))),
            None => Err(NIL_DEREF.into()),
        }),
        "externalURL" => f(&[], None, |env, _| match env.external_url {
            Some(u) => Ok(Value::Str(u.to_string())),
            None => Err(NIL_DEREF.into()),
        }),
        "parseDuration" => f(&[Str], None, |_, a| {
            let d = s(&a, 0);
            match crate::gocompat::parse_duration(&d) {
                Ok(ms) => Ok(Value::Float(ms as f64 / 1000.0)),
                Err(_) if d.is_empty() => Err("empty duration string".into()),
                Err(_) => Err(format!("not a valid duration string: {}", quote(&d))),
            }
        }),
        _ => return None,
    })
}

fn eval_args(a: &[Value]) -> String {
    if let [Value::Str(s)] = a {
        return s.clone();
    }
    sprint(a)
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\0' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

fn js_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '"' => o.push_str("\\\""),
            '<' => o.push_str("\\u003C"),
            '>' => o.push_str("\\u003E"),
            '&' => o.push_str("\\u0026"),
            '=' => o.push_str("\\u003D"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) >= 0x80 && (c.is_control() || c.is_whitespace()) => {
                o.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => o.push(c),
        }
    }
    o
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(char::from(b))
            }
            b' ' => o.push('+'),
            b => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

fn go_len(v: &Value) -> Result<Value, String> {
    let n = match v {
        Value::Str(s) | Value::Html(s) => s.len(),
        Value::StrMap(m) => m.len(),
        Value::AnyMap(m) => m.len(),
        Value::Samples(s) => s.len(),
        Value::Nil => return Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Value::Sample(_) => return Err("len of type template.sample".into()),
        Value::Time { .. } => return Err("len of type time.Time".into()),
        v => return Err(format!("len of type {}", v.type_name())),
    };
    Ok(Value::Int(n as i64))
}

fn index_arg(v: &Value, cap: usize) -> Result<usize, String> {
    let x = match v {
        Value::Int(i) => *i,
        Value::Byte(b) => i64::from(*b),
        Value::Nil => return Err("cannot index slice/array with nil".into()),
        v => {
            return Err(format!(
                "cannot index slice/array with type {}",
                v.type_name()
            ))
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn go_index(a: &[Value]) -> Result<Value, String> {
    let mut item = arg(a, 0);
    if let Value::Nil = item {
        return Err("index of untyped nil".into());
    }
    for idx in a.iter().skip(1) {
        item = match &item {
            Value::Str(s) | Value::Html(s) => {
                let x = index_arg(idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Byte(*b),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Samples(v) => {
                let x = index_arg(idx, v.len())?;
                match v.get(x) {
                    Some(s) => Value::Sample(s.clone()),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::StrMap(_) | Value::AnyMap(_) => {
                let key = match idx {
                    Value::Str(k) => k.clone(),
                    Value::Nil => return Err("value is nil; should be of type string".into()),
                    v => {
                        return Err(format!(
                            "value has type {}; should be string",
                            v.type_name()
                        ))
                    }
                };
                match &item {
                    Value::StrMap(m) => Value::Str(m.get(&key).cloned().unwrap_or_default()),
                    Value::AnyMap(m) => m.get(&key).cloned().unwrap_or(Value::Nil),
                    _ => Value::Nil,
                }
            }
            Value::Nil => return Err("index of nil pointer".into()),
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

fn go_slice(a: &[Value]) -> Result<Value, String> {
    let item = arg(a, 0);
    let idx = a.get(1..).unwrap_or(&[]);
    if let Value::Nil = item {
        return Err("slice of untyped nil".into());
    }
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match &item {
        Value::Str(s) | Value::Html(s) => {
            if idx.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::Samples(v) => v.len(),
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    let mut bounds = [0, len, len];
    for (i, x) in idx.iter().enumerate() {
        bounds[i] = index_arg(x, len)?;
    }
    if bounds[0] > bounds[1] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    if idx.len() == 3 && bounds[1] > bounds[2] {
        return Err(format!(
            "invalid slice index: {} > {}",
            bounds[1], bounds[2]
        ));
    }
    Ok(match item {
        // Byte-wise like Go; a cut inside a UTF-8 sequence cannot be kept in a Rust string.
        Value::Str(s) => {
            Value::Str(String::from_utf8_lossy(&s.as_bytes()[bounds[0]..bounds[1]]).into_owned())
        }
        Value::Html(s) => {
            Value::Html(String::from_utf8_lossy(&s.as_bytes()[bounds[0]..bounds[1]]).into_owned())
        }
        Value::Samples(v) => Value::Samples(Rc::new(v[bounds[0]..bounds[1]].to_vec())),
        v => v,
    })
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Invalid,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Byte(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Str(_) | Value::Html(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

fn int_uint_eq(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Int(i), Value::Byte(u)) | (Value::Byte(u), Value::Int(i)) => {
            Some(*i == i64::from(*u))
        }
        _ => None,
    }
}

fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = kind(a);
    for b in rest {
        let k2 = kind(b);
        let truth = if k1 != k2 {
            match int_uint_eq(a, b) {
                Some(t) => t,
                None => {
                    if !matches!(a, Value::Nil) && !matches!(b, Value::Nil) {
                        return Err("incompatible types for comparison".into());
                    }
                    false
                }
            }
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Byte(x), Value::Byte(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (x, y) if k1 == Kind::Str => x.as_str() == y.as_str(),
                (Value::Nil, Value::Nil) => true,
                (Value::Nil, _) | (_, Value::Nil) => false,
                (Value::Sample(x), Value::Sample(y)) => Rc::ptr_eq(x, y),
                (
                    Value::Time {
                        secs: s1,
                        nanos: n1,
                    },
                    Value::Time {
                        secs: s2,
                        nanos: n2,
                    },
                ) => s1 == s2 && n1 == n2,
                (_, y) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        super::fmt::sprint_one(y),
                        y.type_name()
                    ))
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (kind(a), kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (a, b) {
            (Value::Int(i), Value::Byte(u)) => Ok(*i < i64::from(*u)),
            (Value::Byte(u), Value::Int(i)) => Ok(i64::from(*u) < *i),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    Ok(match (a, b) {
        (Value::Bool(_), _) => return Err("invalid type for comparison".into()),
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Byte(x), Value::Byte(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (x, y) => x.as_str() < y.as_str(),
    })
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// Prometheus's `convertToFloat`.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s),
        v => Err(format!("can't convert {} to float", v.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text and the special values.
fn parse_go_float(s: &str) -> Result<f64, String> {
    let bad = |what: &str| format!("strconv.ParseFloat: parsing {}: {what}", quote(s));
    let body = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let special = matches!(body.as_str(), "inf" | "infinity" | "nan");
    if !special
        && !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
    {
        return Err(bad("invalid syntax"));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_infinite() && !special => Err(bad("value out of range")),
        Ok(v) => Ok(v),
        Err(_) => Err(bad("invalid syntax")),
    }
}

fn scale(mut v: f64, up: bool, base: f64, prefixes: &[&'static str]) -> (f64, &'static str) {
    let mut prefix = "";
    for p in prefixes {
        if (up && v.abs() < base) || (!up && v.abs() >= 1.0) {
            break;
        }
        prefix = p;
        if up {
            v /= base;
        } else {
            v *= base;
        }
    }
    (v, prefix)
}

const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    let (v, p) = if v.abs() >= 1.0 {
        scale(v, true, 1000.0, &["k", "M", "G", "T", "P", "E", "Z", "Y"])
    } else {
        scale(v, false, 1000.0, &SMALL)
    };
    format!("{}{p}", format_g(v, 4))
}

fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    let (v, p) = scale(
        v,
        true,
        1024.0,
        &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
    );
    format!("{}{p}", format_g(v, 4))
}

fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        // Go's int64 conversion saturates differently, but such durations are absurd.
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", format_g(v, 4));
    }
    let (v, p) = scale(v, false, 1000.0, &SMALL);
    format!("{}{p}s", format_g(v, 4))
}

/// Prometheus's `floatToTime`: seconds to a time at millisecond precision.
fn float_to_time(v: f64) -> Result<(i64, u32), String> {
    let ns = v * 1e9;
    if ns >= 9.223372036854776e18 || ns < -9.223372036854776e18 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float_v(v)
        ));
    }
    let ms = (ns as i64) / 1_000_000;
    let mut secs = ms / 1000;
    let mut nanos = (ms % 1000) * 1_000_000;
    if nanos < 0 {
        secs -= 1;
        nanos += 1_000_000_000;
    }
    Ok((secs, nanos as u32))
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's `time.Time.String()` of a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`.
pub(crate) fn go_time_string(secs: i64, nanos: u32) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86400));
    let sod = secs.rem_euclid(86400);
    let mut s = if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    };
    s.push_str(&format!(
        "-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    ));
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Methods of `*time.Time` a template may call without arguments.
pub(crate) fn time_method(name: &str, secs: i64, nanos: u32) -> Option<Value> {
    let n = i64::from(nanos);
    Some(match name {
        "Unix" => Value::Int(secs),
        "UnixMilli" => Value::Int(secs * 1000 + n / 1_000_000),
        "UnixMicro" => Value::Int(secs * 1_000_000 + n / 1000),
        "UnixNano" => Value::Int(secs.saturating_mul(1_000_000_000).saturating_add(n)),
        "String" => Value::Str(go_time_string(secs, nanos)),
        "Nanosecond" => Value::Int(n),
        "Second" => Value::Int(secs.rem_euclid(60)),
        "Minute" => Value::Int(secs.rem_euclid(3600) / 60),
        "Hour" => Value::Int(secs.rem_euclid(86400) / 3600),
        "Day" => Value::Int(i64::from(civil(secs.div_euclid(86400)).2)),
        "Year" => Value::Int(civil(secs.div_euclid(86400)).0),
        _ => return None,
    })
}

fn title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_sep(prev) { one_upper(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

fn one_upper(c: char) -> char {
    let mut u = c.to_uppercase();
    match (u.next(), u.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// Go's `strings.ToUpper`/`ToLower`: one rune for one rune.
fn map_chars(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            if upper {
                one_upper(c)
            } else {
                let mut l = c.to_lowercase();
                match (l.next(), l.next()) {
                    (Some(x), None) => x,
                    _ => c,
                }
            }
        })
        .collect()
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    let i = hp.rfind(':')?;
    let (host, j, k) = if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        (hp[1..end].to_string(), 1, end + 1)
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host.to_string(), 0, 0)
    };
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, hp[i + 1..].to_string()))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or_else(|| (hp.to_string(), String::new()));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or_default().to_string();
    if port.is_empty() {
        return host;
    }
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn url_path(u: &str) -> String {
    let rest = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => return u.split(['?', '#']).next().unwrap_or_default().to_string(),
    };
    match rest.find('/') {
        Some(i) => rest[i..]
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    }
}

fn backquote(s: &str) -> String {
    if s.contains('`') || s.chars().any(|c| c.is_control() && c != '\t') {
        quote(s)
    } else {
        format!("`{s}`")
    }
}

/// Go's `regexp/syntax` wording for the common mistakes; others keep the Rust text.
fn regex_error(pat: &str, e: &regex::Error) -> String {
    let m = e.to_string();
    let code = if m.contains("unclosed group") {
        "missing closing )"
    } else if m.contains("unopened group") {
        "unexpected )"
    } else if m.contains("unclosed character class") {
        "missing closing ]"
    } else if m.contains("repetition operator missing expression") {
        "missing argument to repetition operator"
    } else {
        return format!(
            "error parsing regexp: {}",
            m.lines().last().unwrap_or_default().trim()
        );
    };
    format!("error parsing regexp: {code}: `{pat}`")
}
