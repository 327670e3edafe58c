//! The functions templates can call: Go's builtins (`and`, `or`, `not`, `len`, `index`,
//! `slice`, `print*`, `html`, `js`, `urlquery`, `eq`…`ge`, `call`) and Prometheus 2.42's
//! (`query`, `first`, `label`, `value`, `humanize*`, `toTime`, `reReplaceAll`, `stripPort`,
//! …), each with its Go parameter types (which decide argument errors) and Go's error texts.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::builtins::*;
use super::fmt::{format_g, quote, sprint, sprintf, sprintln};
use super::prom::*;
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
            // Prometheus uses MustCompile: the panic text names the pattern.
            let re = super::goregex::compile(&pat)
                .map_err(|e| format!("regexp: Compile({}): {e}", backquote(&pat)))?;
            Ok(Value::Str(re.replace_all(&s(&a, 2), &s(&a, 1))))
        }),
        "safeHtml" => f(&[Str], None, |_, a| Ok(Value::Html(s(&a, 0)))),
        "match" => f(&[Str, Str], None, |_, a| {
            let pat = s(&a, 0);
            let re = super::goregex::compile(&pat)?;
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
