//! Go's builtin template functions with their Go semantics and error texts: `len`, `index`,
//! `slice`, `eq`/`lt`/`le` (and through them `ne`, `gt`, `ge`), and the escapers behind
//! `html`, `js` and `urlquery`.

use std::rc::Rc;

use super::fmt::sprint;
use super::value::Value;

pub(crate) fn eval_args(a: &[Value]) -> String {
    if let [Value::Str(s)] = a {
        return s.clone();
    }
    sprint(a)
}

pub(crate) fn html_escape(s: &str) -> String {
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

pub(crate) fn js_escape(s: &str) -> String {
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
pub(crate) fn query_escape(s: &str) -> String {
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

pub(crate) fn go_len(v: &Value) -> Result<Value, String> {
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

pub(crate) fn go_index(a: &[Value]) -> Result<Value, String> {
    let mut item = a.first().cloned().unwrap_or(Value::Nil);
    if let Value::Nil = item {
        return Err("index of untyped nil".into());
    }
    for idx in a.iter().skip(1) {
        item = match &item {
            Value::Str(s) | Value::Html(s) => {
                let x = index_arg(idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Byte(*b),
                    // Go 1.19 lets reflect panic for an index equal to the length.
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::Samples(v) => {
                let x = index_arg(idx, v.len())?;
                match v.get(x) {
                    Some(s) => Value::Sample(s.clone()),
                    None => return Err("reflect: slice index out of range".into()),
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
            // Go indirects pointers first, so it names the pointed-to type.
            Value::Sample(_) => return Err("can't index item of type template.sample".into()),
            Value::Time { .. } => return Err("can't index item of type time.Time".into()),
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

pub(crate) fn go_slice(a: &[Value]) -> Result<Value, String> {
    let item = a.first().cloned().unwrap_or(Value::Nil);
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

pub(crate) fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
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

pub(crate) fn lt(a: &Value, b: &Value) -> Result<bool, String> {
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

pub(crate) fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}
