//! Execution of a parsed template over the alert data, as Go's `text/template` executes it:
//! variables and their scopes, pipelines, field access on maps and structs, function calls
//! with Go's argument checking and typing, `if`/`with`/`range` (maps in key order,
//! `break`/`continue`), `template`/`block`, and Go's error texts with the failing node's
//! position and text (`template: NAME:1:115: executing "NAME" at <gt $value 1>: ...`).

use super::funcs::{self, Env, Func, Param};
use super::node::{template_node_string, Arg, Command, Control, Node, Pipe};
use super::parse::Tree;
use super::value::Value;
use super::{fmt as gofmt, TemplateError};

/// Go allows 100000 nested template calls; ours stops far earlier so that recursion fits a
/// thread's stack (1 MiB in a debug build, see the tests), with Go's message: only runaway
/// recursion reaches either limit.
const MAX_EXEC_DEPTH: usize = 100;

/// The node execution is at, for error messages.
#[derive(Clone, Copy)]
enum Cur<'t> {
    None,
    Arg(&'t Arg),
    Cmd(&'t Command),
    Pipe(&'t Pipe),
    Template(usize, &'t str, Option<&'t Pipe>),
}

enum Flow {
    Normal,
    Break,
    Continue,
}

type EResult<T> = Result<T, TemplateError>;

pub(crate) struct State<'t, 'e> {
    tree: &'t Tree,
    parse_name: &'t str,
    text: &'t str,
    tmpl_name: &'t str,
    vars: Vec<(String, Value)>,
    cur: Cur<'t>,
    depth: usize,
    env: &'e Env<'e>,
    out: String,
}

pub(crate) fn execute(
    tree: &Tree,
    name: &str,
    text: &str,
    data: Value,
    env: &Env<'_>,
) -> EResult<String> {
    let Some(root) = tree.templates.get(name) else {
        return Err(TemplateError::Exec(format!(
            "template: {name}: {} is an incomplete or empty template",
            gofmt::quote(name)
        )));
    };
    let mut s = State {
        tree,
        parse_name: name,
        text,
        tmpl_name: name,
        vars: vec![("$".into(), data.clone())],
        cur: Cur::None,
        depth: 0,
        env,
        out: String::new(),
    };
    s.walk_list(&data, root)?;
    Ok(s.out)
}

impl<'t> State<'t, '_> {
    fn errorf(&self, msg: impl std::fmt::Display) -> TemplateError {
        let (pos, ctx) = match self.cur {
            Cur::None => {
                return TemplateError::Exec(format!("template: {}: {msg}", self.tmpl_name));
            }
            Cur::Arg(a) => (a.pos(), a.to_string()),
            Cur::Cmd(c) => (c.pos, c.to_string()),
            Cur::Pipe(p) => (p.pos, p.to_string()),
            Cur::Template(pos, name, pipe) => (pos, template_node_string(name, pipe)),
        };
        let before = &self.text[..pos.min(self.text.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => pos - (nl + 1),
            None => pos,
        };
        TemplateError::Exec(format!(
            "template: {}:{line}:{col}: executing {} at <{ctx}>: {msg}",
            self.parse_name,
            gofmt::quote(self.tmpl_name)
        ))
    }

    fn walk_list(&mut self, dot: &Value, nodes: &'t [Node]) -> EResult<Flow> {
        for n in nodes {
            match self.walk(dot, n)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> EResult<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.print_value(&v);
                }
            }
            Node::Control {
                kind: Control::Range,
                pipe,
                list,
                else_list,
            } => return self.walk_range(dot, pipe, list, else_list.as_deref()),
            Node::Control {
                kind,
                pipe,
                list,
                else_list,
            } => {
                let mark = self.vars.len();
                let v = self.eval_pipeline(dot, pipe)?;
                let flow = if v.truth() {
                    let d = if *kind == Control::With {
                        v
                    } else {
                        dot.clone()
                    };
                    self.walk_list(&d, list)?
                } else if let Some(e) = else_list {
                    self.walk_list(dot, e)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Template { pos, name, pipe } => {
                self.cur = Cur::Template(*pos, name, pipe.as_ref());
                let Some(root) = self.tree.templates.get(name.as_str()) else {
                    return Err(self.errorf(format!("template {} not defined", gofmt::quote(name))));
                };
                if self.depth >= MAX_EXEC_DEPTH {
                    return Err(self.errorf("exceeded maximum template depth (100000)"));
                }
                let new_dot = match pipe {
                    Some(p) => self.eval_pipeline(dot, p)?,
                    None => Value::Nil,
                };
                let saved_vars =
                    std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let saved_name = std::mem::replace(&mut self.tmpl_name, name.as_str());
                self.depth += 1;
                let r = self.walk_list(&new_dot, root);
                self.depth -= 1;
                self.tmpl_name = saved_name;
                self.vars = saved_vars;
                r?;
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn print_value(&mut self, v: &Value) {
        match v {
            Value::Nil => self.out.push_str("<no value>"),
            // Go prints the pointed-to struct of a top-level pointer, without `&`.
            Value::Sample(s) => {
                let m = gofmt::sprint_one(&Value::StrMap(s.labels.clone()));
                let f = gofmt::format_float_v(s.value);
                self.out.push_str(&format!("{{{m} {f}}}"));
            }
            v => self.out.push_str(&gofmt::sprint_one(v)),
        }
    }

    fn walk_range(
        &mut self,
        dot: &Value,
        pipe: &'t Pipe,
        list: &'t [Node],
        else_list: Option<&'t [Node]>,
    ) -> EResult<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, pipe)?;
        let inner = self.vars.len();
        let items: Vec<(Value, Value)> = match &val {
            Value::StrMap(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
            Value::AnyMap(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::Samples(s) => s
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::Sample(s.clone())))
                .collect(),
            Value::Nil => Vec::new(),
            v => {
                return Err(
                    self.errorf(format!("range can't iterate over {}", gofmt::sprint_one(v)))
                )
            }
        };
        if items.is_empty() {
            if let Some(e) = else_list {
                let r = self.walk_list(dot, e);
                self.vars.truncate(mark);
                return r;
            }
        }
        for (index, elem) in items {
            if !pipe.decl.is_empty() {
                if let Some(top) = self.vars.last_mut() {
                    top.1 = elem.clone();
                }
            }
            if pipe.decl.len() > 1 {
                let n = self.vars.len();
                if n >= 2 {
                    self.vars[n - 2].1 = index;
                }
            }
            let r = self.walk_list(&elem, list);
            self.vars.truncate(inner);
            if let Flow::Break = r? {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> EResult<Value> {
        self.cur = Cur::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for v in &pipe.decl {
            if pipe.is_assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == v) {
                    Some(slot) => slot.1 = value.clone(),
                    None => return Err(self.errorf(format!("undefined variable: {v}"))),
                }
            } else {
                self.vars.push((v.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Value>) -> EResult<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(|a| a.to_string()).unwrap_or_default();
            return Err(self.errorf(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &'t Command,
        fin: Option<Value>,
    ) -> EResult<Value> {
        let Some(first) = cmd.args.first() else {
            return Ok(Value::Nil);
        };
        match first {
            Arg::Field { ident, .. } => {
                self.cur = Cur::Arg(first);
                return self.eval_field_chain(dot.clone(), ident, Some(&cmd.args), fin);
            }
            Arg::Chain { .. } => return self.eval_chain(dot, first, Some(&cmd.args), fin),
            Arg::Identifier { .. } => {
                return self.eval_function(dot, first, Cur::Cmd(cmd), Some(&cmd.args), fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { .. } => return self.eval_variable(first, Some(&cmd.args), fin),
            _ => {}
        }
        self.cur = Cur::Arg(first);
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.errorf("nil is not a command")),
            Arg::Number { .. } => self.ideal_constant(first),
            Arg::Str { text, .. } => Ok(Value::Str(text.clone())),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                gofmt::quote(&first.to_string())
            ))),
        }
    }

    fn ideal_constant(&mut self, arg: &'t Arg) -> EResult<Value> {
        self.cur = Cur::Arg(arg);
        let Arg::Number { num, .. } = arg else {
            return Ok(Value::Nil);
        };
        let t = &num.text;
        let hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        if num.is_float && !hex_int && !t.starts_with('\'') && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Value::Float(num.float));
        }
        if num.is_int {
            return Ok(Value::Int(num.int));
        }
        if num.is_uint {
            return Err(self.errorf(format!("{t} overflows int")));
        }
        Ok(Value::Nil)
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        chain: &'t Arg,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.cur = Cur::Arg(chain);
        let Arg::Chain { node, fields, .. } = chain else {
            return Ok(Value::Nil);
        };
        if let Arg::Nil { .. } = node.as_ref() {
            return Err(self.errorf(format!("indirection through explicit nil in {chain}")));
        }
        let recv = self.eval_arg(dot, Param::Any, node)?;
        self.eval_field_chain(recv, fields, args, fin)
    }

    fn eval_variable(
        &mut self,
        var: &'t Arg,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.cur = Cur::Arg(var);
        let Arg::Variable { ident, .. } = var else {
            return Ok(Value::Nil);
        };
        let name = ident.first().map(String::as_str).unwrap_or("$");
        let value = match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => v.clone(),
            None => return Err(self.errorf(format!("undefined variable: {name}"))),
        };
        if ident.len() == 1 {
            self.not_a_function(args.unwrap_or(&[]), &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(value, &ident[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        mut recv: Value,
        ident: &'t [String],
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        let n = ident.len();
        for name in ident.iter().take(n.saturating_sub(1)) {
            recv = self.eval_field(name, None, None, recv)?;
        }
        match ident.last() {
            Some(last) => self.eval_field(last, args, fin, recv),
            None => Ok(recv),
        }
    }

    fn eval_field(
        &mut self,
        name: &str,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
        recv: Value,
    ) -> EResult<Value> {
        // Go's evalField does not move the error position: an error names the node evaluated
        // last (for `(toTime 0).Foo`, the `0`).
        let has_args = args.map_or(0, <[Arg]>::len) > 1 || fin.is_some();
        if let Value::Time { secs, nanos } = &recv {
            if let Some(v) = super::prom::time_method(name, *secs, *nanos) {
                let got =
                    args.map_or(0, |a| a.len().saturating_sub(1)) + usize::from(fin.is_some());
                if got != 0 {
                    return Err(
                        self.errorf(format!("wrong number of args for {name}: want 0 got {got}"))
                    );
                }
                return Ok(v);
            }
        }
        let field = match &recv {
            Value::Nil => return Ok(Value::Nil),
            Value::Data(d) => match name {
                "Labels" => Some(Value::StrMap(d.labels.clone())),
                "ExternalLabels" => Some(Value::StrMap(d.external_labels.clone())),
                "ExternalURL" => Some(Value::Str(d.external_url.clone())),
                "Value" => Some(Value::Float(d.value)),
                _ => None,
            },
            Value::Sample(s) => match name {
                "Labels" => Some(Value::StrMap(s.labels.clone())),
                "Value" => Some(Value::Float(s.value)),
                _ => None,
            },
            Value::StrMap(m) => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                return Ok(Value::Str(m.get(name).cloned().unwrap_or_default()));
            }
            Value::AnyMap(m) => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                return Ok(m.get(name).cloned().unwrap_or(Value::Nil));
            }
            _ => None,
        };
        match field {
            Some(v) => {
                if has_args {
                    return Err(self.errorf(format!(
                        "{name} has arguments but cannot be invoked as function"
                    )));
                }
                Ok(v)
            }
            None => Err(self.errorf(format!(
                "can't evaluate field {name} in type {}",
                recv.type_name()
            ))),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'t Arg,
        node: Cur<'t>,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        self.cur = Cur::Arg(ident);
        let Arg::Identifier { name, .. } = ident else {
            return Ok(Value::Nil);
        };
        let Some(func) = funcs::lookup(name) else {
            return Err(self.errorf(format!("{} is not a defined function", gofmt::quote(name))));
        };
        self.eval_call(dot, &func, node, name, args, fin)
    }

    fn eval_call(
        &mut self,
        dot: &Value,
        func: &Func,
        node: Cur<'t>,
        name: &str,
        args: Option<&'t [Arg]>,
        fin: Option<Value>,
    ) -> EResult<Value> {
        let args: &'t [Arg] = match args {
            Some(a) if !a.is_empty() => &a[1..],
            _ => &[],
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = func.params.len();
        if func.variadic.is_some() {
            if num_in < num_fixed {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {num_fixed} got {}",
                    args.len()
                )));
            }
        } else if num_in != num_fixed {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {num_fixed} got {num_in}"
            )));
        }
        if name == "and" || name == "or" {
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, Param::Rv, a)?;
                if v.truth() == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let p = func
                .params
                .get(i)
                .copied()
                .or(func.variadic)
                .unwrap_or(Param::Any);
            argv.push(self.eval_arg(dot, p, a)?);
        }
        if let Some(f) = fin {
            let p = if num_in - 1 < num_fixed {
                func.params.get(num_in - 1).copied().unwrap_or(Param::Any)
            } else {
                func.variadic.unwrap_or(Param::Any)
            };
            argv.push(self.validate_type(f, p)?);
        }
        match (func.call)(self.env, argv) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.cur = node;
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    fn validate_type(&self, v: Value, p: Param) -> EResult<Value> {
        if let Value::Nil = v {
            return match p {
                Param::Any | Param::Rv | Param::Sample | Param::Samples => Ok(Value::Nil),
                _ => Err(self.errorf(format!("invalid value; expected {}", p.type_name()))),
            };
        }
        let ok = match p {
            Param::Any | Param::Rv => true,
            Param::Str => matches!(v, Value::Str(_)),
            Param::Sample => matches!(v, Value::Sample(_)),
            Param::Samples => matches!(v, Value::Samples(_)),
        };
        if ok {
            Ok(v)
        } else {
            Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                p.type_name(),
                v.type_name()
            )))
        }
    }

    fn eval_arg(&mut self, dot: &Value, p: Param, arg: &'t Arg) -> EResult<Value> {
        self.cur = Cur::Arg(arg);
        let v = match arg {
            Arg::Dot { .. } => dot.clone(),
            Arg::Nil { .. } => {
                return match p {
                    Param::Any | Param::Rv | Param::Sample | Param::Samples => Ok(Value::Nil),
                    _ => Err(self.errorf(format!("cannot assign nil to {}", p.type_name()))),
                }
            }
            Arg::Field { ident, .. } => {
                self.eval_field_chain(dot.clone(), ident, Some(std::slice::from_ref(arg)), None)?
            }
            Arg::Variable { .. } => self.eval_variable(arg, None, None)?,
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe)?,
            Arg::Identifier { .. } => self.eval_function(dot, arg, Cur::Arg(arg), None, None)?,
            Arg::Chain { .. } => self.eval_chain(dot, arg, None, None)?,
            Arg::Bool { val, .. } => match p {
                Param::Any | Param::Rv => return Ok(Value::Bool(*val)),
                _ => return Err(self.literal_mismatch(p, arg)),
            },
            Arg::Str { text, .. } => match p {
                Param::Any | Param::Rv | Param::Str => return Ok(Value::Str(text.clone())),
                _ => return Err(self.literal_mismatch(p, arg)),
            },
            Arg::Number { .. } => match p {
                Param::Any | Param::Rv => return self.ideal_constant(arg),
                _ => return Err(self.literal_mismatch(p, arg)),
            },
        };
        self.validate_type(v, p)
    }

    fn literal_mismatch(&self, p: Param, arg: &Arg) -> TemplateError {
        match p {
            Param::Str => self.errorf(format!("expected string; found {arg}")),
            _ => self.errorf(format!(
                "can't handle {arg} for arg of type {}",
                p.type_name()
            )),
        }
    }
}
