//! The parser of Go's `text/template`: items from [`super::lex`] become a tree of nodes (text,
//! actions, `if`/`range`/`with`, `template`/`block`/`define`, `break`/`continue`) with Go's
//! checks (defined functions, declared variables) and Go's error texts
//! (`template: NAME:LINE: MSG`). Nodes keep their byte positions and print as Go prints them,
//! because execution errors quote both (`NAME:1:115: executing "NAME" at <gt $value 1>`).

use std::collections::HashMap;
use std::fmt;

use super::lex::{lex, Item, ItemType};
use super::TemplateError;

/// Go has no nesting limit (its stacks grow); ours bounds recursion so no input overflows the
/// stack.
const MAX_DEPTH: usize = 1000;

#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub text: String,
    pub is_int: bool,
    pub int: i64,
    pub is_uint: bool,
    pub is_float: bool,
    pub float: f64,
}

/// An operand (Go's Field, Variable, Identifier, Dot, Nil, Bool, Number, String, Pipe and
/// Chain nodes).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        ident: Vec<String>,
    },
    Variable {
        pos: usize,
        ident: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        num: Number,
    },
    Str {
        pos: usize,
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Chain { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { ident, .. } => {
                for i in ident {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { ident, .. } => write!(f, "{}", ident.join(".")),
            Arg::Identifier { name, .. } => write!(f, "{name}"),
            Arg::Dot { .. } => write!(f, "."),
            Arg::Nil { .. } => write!(f, "nil"),
            Arg::Bool { val, .. } => write!(f, "{val}"),
            Arg::Number { num, .. } => write!(f, "{}", num.text),
            Arg::Str { quoted, .. } => write!(f, "{quoted}"),
            Arg::Pipe(p) => write!(f, "{p}"),
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(f, "{} := ", self.decl.join(", "))?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                write!(f, " | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    If,
    With,
    Range,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    Control {
        kind: Control,
        pipe: Pipe,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// Prints a `{{template}}` node as Go does (the context of its errors).
pub(crate) fn template_node_string(name: &str, pipe: Option<&Pipe>) -> String {
    match pipe {
        Some(p) => format!("{{{{template {} {p}}}}}", super::fmt::quote(name)),
        None => format!("{{{{template {}}}}}", super::fmt::quote(name)),
    }
}

/// What terminated an item list.
enum End {
    End,
    Else,
}

/// The parsed templates: the main one and every `define`/`block`, by name.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub templates: HashMap<String, Vec<Node>>,
}

fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| match n {
        Node::Text(t) => t.trim_matches(|c: char| c.is_whitespace()).is_empty(),
        _ => false,
    })
}

pub(crate) fn parse(
    name: &str,
    text: &str,
    has_function: &dyn Fn(&str) -> bool,
) -> Result<Tree, TemplateError> {
    let mut p = Parser {
        name,
        items: lex(text),
        idx: 0,
        last_line: 1,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        has_function,
        templates: HashMap::new(),
    };
    let root = p.parse_top()?;
    p.add(name.to_string(), root)?;
    Ok(Tree {
        templates: p.templates,
    })
}

struct Parser<'a> {
    name: &'a str,
    items: Vec<Item>,
    idx: usize,
    last_line: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    has_function: &'a dyn Fn(&str) -> bool,
    templates: HashMap<String, Vec<Node>>,
}

type PResult<T> = Result<T, TemplateError>;

impl Parser<'_> {
    fn errorf(&self, msg: impl fmt::Display) -> TemplateError {
        TemplateError::Parse(format!(
            "template: {}:{}: {}",
            self.name, self.last_line, msg
        ))
    }

    fn next(&mut self) -> Item {
        let i = self.idx.min(self.items.len().saturating_sub(1));
        let item = self.items.get(i).cloned().unwrap_or(Item {
            typ: ItemType::Eof,
            pos: 0,
            val: String::new(),
            line: 1,
        });
        self.idx += 1;
        self.last_line = item.line;
        item
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn peek(&mut self) -> Item {
        let it = self.next();
        self.backup();
        it
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.typ != ItemType::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.backup();
        it
    }

    fn unexpected(&self, item: &Item, context: &str) -> TemplateError {
        if item.typ == ItemType::Error {
            return self.errorf(&item.val);
        }
        self.errorf(format!("unexpected {item} in {context}"))
    }

    fn expect(&mut self, typ: ItemType, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.typ != typ {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.errorf("max expression depth exceeded"));
        }
        Ok(())
    }

    fn add(&mut self, name: String, root: Vec<Node>) -> PResult<()> {
        match self.templates.get(&name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return Err(self.errorf(format!(
                        "template: multiple definition of template {}",
                        super::fmt::quote(&name)
                    )));
                }
            }
            _ => {
                self.templates.insert(name, root);
            }
        }
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        loop {
            let t = self.peek();
            if t.typ == ItemType::Eof {
                return Ok(root);
            }
            if t.typ == ItemType::LeftDelim {
                let mark = self.idx;
                self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = mark;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::End => return Err(self.errorf("unexpected {{end}}")),
                Parsed::Else => return Err(self.errorf("unexpected {{else}}")),
            }
        }
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let t = self.next_non_space();
        if t.typ != ItemType::String && t.typ != ItemType::RawString {
            return Err(self.unexpected(&t, context));
        }
        let name = unquote(&t.val).ok_or_else(|| self.errorf("invalid syntax"))?;
        self.expect(ItemType::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let End::Else = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add(name, list)
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, End)> {
        self.enter()?;
        let mut list = Vec::new();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                Parsed::End => {
                    self.depth -= 1;
                    return Ok((list, End::End));
                }
                Parsed::Else => {
                    self.depth -= 1;
                    return Ok((list, End::Else));
                }
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let t = self.next_non_space();
        match t.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text(t.val))),
            ItemType::LeftDelim => self.action(),
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let t = self.next_non_space();
        match t.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.control(Control::If).map(Parsed::Node),
            ItemType::Range => return self.control(Control::Range).map(Parsed::Node),
            ItemType::With => return self.control(Control::With).map(Parsed::Node),
            ItemType::Template => return self.template_control().map(Parsed::Node),
            ItemType::Break | ItemType::Continue => {
                let word = if t.typ == ItemType::Break {
                    "break"
                } else {
                    "continue"
                };
                let n = self.next_non_space();
                if n.typ != ItemType::RightDelim {
                    return Err(self.unexpected(&n, &format!("{{{{{word}}}}}")));
                }
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                return Ok(Parsed::Node(if t.typ == ItemType::Break {
                    Node::Break
                } else {
                    Node::Continue
                }));
            }
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action(pipe)))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If {
            return Ok(Parsed::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else)
    }

    fn control(&mut self, kind: Control) -> PResult<Node> {
        let context = match kind {
            Control::If => "if",
            Control::With => "with",
            Control::Range => "range",
        };
        let saved_vars = self.vars.len();
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if kind == Control::Range {
            self.range_depth += 1;
        }
        let body = self.item_list();
        if kind == Control::Range {
            self.range_depth -= 1;
        }
        let (list, end) = body?;
        let mut else_list = None;
        if let End::Else = end {
            if kind == Control::If && self.peek().typ == ItemType::If {
                self.next();
                else_list = Some(vec![self.control(Control::If)?]);
            } else {
                let (l, end) = self.item_list()?;
                if let End::Else = end {
                    return Err(self.errorf("expected end; found {{else}}"));
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(saved_vars);
        Ok(Node::Control {
            kind,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, t: &Item, context: &str) -> PResult<String> {
        match t.typ {
            ItemType::String | ItemType::RawString => {
                unquote(&t.val).ok_or_else(|| self.errorf("invalid syntax"))
            }
            _ => Err(self.unexpected(t, context)),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            Some(self.pipeline(context, ItemType::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe,
        })
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let body = self.item_list();
        self.vars = saved_vars;
        self.range_depth = saved_range;
        let (list, end) = body?;
        if let End::Else = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add(name.clone(), list)?;
        Ok(Node::Template {
            pos: t.pos,
            name,
            pipe: Some(pipe),
        })
    }

    /// Go's `pipeline`: commands up to `end` (the right delimiter, or `)` in parentheses).
    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        self.enter()?;
        let first = self.peek_non_space();
        let mut pipe = Pipe {
            pos: first.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            let mark = self.idx;
            self.next_non_space();
            let after = self.peek();
            let next = self.peek_non_space();
            if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                pipe.is_assign = next.typ == ItemType::Assign;
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val);
            } else if next.typ == ItemType::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val);
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space().typ {
                        ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                            continue
                        }
                        _ => return Err(self.errorf("range can only initialize variables")),
                    }
                }
                return Err(self.errorf(format!("too many declarations in {context}")));
            } else {
                let _ = after;
                self.idx = mark;
            }
            break;
        }
        loop {
            let t = self.next_non_space();
            match t.typ {
                typ if typ == end => {
                    self.check_pipeline(&pipe, context)?;
                    self.depth -= 1;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(
                    Arg::Bool { .. }
                        | Arg::Dot { .. }
                        | Arg::Nil { .. }
                        | Arg::Number { .. }
                        | Arg::Str { .. }
                )
            ) {
                return Err(self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.typ {
                ItemType::Space => continue,
                ItemType::Error => return Err(self.errorf(&t.val)),
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.errorf(format!("unexpected {t} in operand"))),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next();
            fields.push(f.val.trim_start_matches('.').to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut ident, .. } => {
                ident.extend(fields);
                Arg::Field {
                    pos: chain_pos,
                    ident,
                }
            }
            Arg::Variable { mut ident, .. } => {
                ident.extend(fields);
                Arg::Variable {
                    pos: chain_pos,
                    ident,
                }
            }
            Arg::Bool { .. }
            | Arg::Str { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return Err(self.errorf(format!(
                    "unexpected . after term {}",
                    super::fmt::quote(&node.to_string())
                )))
            }
            other => Arg::Chain {
                pos: chain_pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        Ok(Some(match t.typ {
            ItemType::Error => return Err(self.errorf(&t.val)),
            ItemType::Identifier => {
                if !(self.has_function)(&t.val) {
                    return Err(self.errorf(format!(
                        "function {} not defined",
                        super::fmt::quote(&t.val)
                    )));
                }
                Arg::Identifier {
                    pos: t.pos,
                    name: t.val,
                }
            }
            ItemType::Dot => Arg::Dot { pos: t.pos },
            ItemType::Nil => Arg::Nil { pos: t.pos },
            ItemType::Variable => {
                if !self.vars.iter().any(|v| *v == t.val) {
                    return Err(
                        self.errorf(format!("undefined variable {}", super::fmt::quote(&t.val)))
                    );
                }
                Arg::Variable {
                    pos: t.pos,
                    ident: vec![t.val],
                }
            }
            ItemType::Field => Arg::Field {
                pos: t.pos,
                ident: vec![t.val.trim_start_matches('.').to_string()],
            },
            ItemType::Bool => Arg::Bool {
                pos: t.pos,
                val: t.val == "true",
            },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                let num = new_number(&t.val, t.typ).map_err(|e| self.errorf(e))?;
                Arg::Number { pos: t.pos, num }
            }
            ItemType::LeftParen => {
                let pipe = self.pipeline("parenthesized pipeline", ItemType::RightParen)?;
                Arg::Pipe(Box::new(pipe))
            }
            ItemType::String | ItemType::RawString => {
                let text = unquote(&t.val).ok_or_else(|| self.errorf("invalid syntax"))?;
                Arg::Str {
                    pos: t.pos,
                    quoted: t.val,
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Parsed {
    Node(Node),
    End,
    Else,
}

/// Go's `strconv.Unquote` for the three literal forms the lexer produces.
pub(crate) fn unquote(s: &str) -> Option<String> {
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Some(raw.replace('\r', ""));
    }
    let quote = s.chars().next()?;
    let body = s.strip_prefix(quote)?.strip_suffix(quote)?;
    if s.len() < 2 {
        return None;
    }
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    let mut bytes: Vec<u8> = Vec::new();
    let flush = |bytes: &mut Vec<u8>, out: &mut String| {
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(bytes));
            bytes.clear();
        }
    };
    while let Some(c) = chars.next() {
        if c == quote || (c == '\n') {
            return None;
        }
        if c != '\\' {
            flush(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '\'' if quote == '\'' => Some('\''),
            '"' if quote == '"' => Some('"'),
            _ => None,
        };
        if let Some(c) = simple {
            flush(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        match e {
            'x' => {
                let h: String = (0..2).filter_map(|_| chars.next()).collect();
                let b = u8::from_str_radix(&h, 16).ok().filter(|_| h.len() == 2)?;
                bytes.push(b);
            }
            '0'..='7' => {
                let mut o = String::from(e);
                for _ in 0..2 {
                    o.push(chars.next()?);
                }
                let v = u32::from_str_radix(&o, 8).ok()?;
                bytes.push(u8::try_from(v).ok()?);
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let h: String = (0..n).filter_map(|_| chars.next()).collect();
                if h.len() != n {
                    return None;
                }
                let c = char::from_u32(u32::from_str_radix(&h, 16).ok()?)?;
                flush(&mut bytes, &mut out);
                out.push(c);
            }
            _ => return None,
        }
    }
    flush(&mut bytes, &mut out);
    if quote == '\'' && out.chars().count() != 1 {
        return None;
    }
    Some(out)
}

fn strip_underscores(s: &str) -> Option<String> {
    if s.contains('_') {
        if s.starts_with('_') || s.ends_with('_') || s.contains("__") {
            return None;
        }
        return Some(s.replace('_', ""));
    }
    Some(s.to_string())
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign).
fn parse_uint0(s: &str) -> Option<u64> {
    let s = strip_underscores(s)?;
    let lower = s.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h.to_string(), 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o.to_string(), 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b.to_string(), 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (lower[1..].to_string(), 8)
    } else {
        (lower, 10)
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

fn parse_go_float(s: &str) -> Option<f64> {
    let s = strip_underscores(s)?;
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(&s)),
    };
    let lower = body.to_ascii_lowercase();
    let v = if let Some(h) = lower.strip_prefix("0x") {
        let (mant, exp) = h.split_once('p')?;
        let exp: i32 = exp.parse().ok()?;
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        let mut v = 0f64;
        for c in ip.chars().chain(fp.chars()) {
            v = v * 16.0 + f64::from(c.to_digit(16)?);
        }
        v * 2f64.powi(exp - 4 * i32::try_from(fp.len()).ok()?)
    } else {
        if lower.is_empty()
            || !lower
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
        {
            return None;
        }
        lower.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Go's `parse.newNumber`: which of int, uint and float a literal can be.
fn new_number(text: &str, typ: ItemType) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        is_int: false,
        int: 0,
        is_uint: false,
        is_float: false,
        float: 0.0,
    };
    if typ == ItemType::CharConstant {
        let c = unquote(text)
            .and_then(|s| s.chars().next())
            .ok_or_else(|| format!("malformed character constant: {text}"))?;
        let v = u32::from(c);
        n.is_int = true;
        n.int = i64::from(v);
        n.is_uint = true;
        n.is_float = true;
        n.float = f64::from(v);
        return Ok(n);
    }
    if typ == ItemType::Complex || text.ends_with('i') {
        return Err(format!(
            "complex constants are not supported: {}",
            super::fmt::quote(text)
        ));
    }
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let u = parse_uint0(body);
    if !neg {
        if let Some(u) = u {
            n.is_uint = true;
            let _ = u;
        }
    }
    if let Some(u) = u {
        let i = if neg {
            if u <= 1u64 << 63 {
                Some((u as i128).wrapping_neg() as i64)
            } else {
                None
            }
        } else {
            i64::try_from(u).ok()
        };
        if let Some(i) = i {
            n.is_int = true;
            n.int = i;
            if i == 0 {
                n.is_uint = true;
            }
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = u.unwrap_or(0) as f64;
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", super::fmt::quote(text)));
        }
        n.is_float = true;
        n.float = f;
        if f.fract() == 0.0 && f >= -9.223372036854776e18 && f < 9.223372036854776e18 {
            n.is_int = true;
            n.int = f as i64;
        }
        if f.fract() == 0.0 && f >= 0.0 && f < 1.8446744073709552e19 {
            n.is_uint = true;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!(
            "illegal number syntax: {}",
            super::fmt::quote(text)
        ));
    }
    Ok(n)
}
