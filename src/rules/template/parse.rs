//! The parser of Go's `text/template`: items from [`super::lex`] become a tree of nodes (text,
//! actions, `if`/`range`/`with`, `template`/`block`/`define`, `break`/`continue`) with Go's
//! checks (defined functions, declared variables) and Go's error texts
//! (`template: NAME:LINE: MSG`). Nodes keep their byte positions and print as Go prints them,
//! because execution errors quote both (`NAME:1:115: executing "NAME" at <gt $value 1>`).

use std::collections::HashMap;
use std::fmt;

use super::literal::{new_number, unquote};
use super::node::{Arg, Command, Control, Node, Pipe};

use super::lex::{lex, Item, ItemType};
use super::TemplateError;

/// Go has no nesting limit (its stacks grow); ours bounds recursion so that no input overflows
/// a thread's stack (a test shows the limit fits in 1 MiB in a debug build). Real templates nest
/// a handful of levels.
const MAX_DEPTH: usize = 100;

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
        action_line: 0,
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
    /// The line of the action being parsed (0: none), for lexer errors.
    action_line: usize,
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
            return self.lex_error(item);
        }
        self.errorf(format!("unexpected {item} in {context}"))
    }

    /// A lexer error; inside an action that began on an earlier line Go names that line.
    fn lex_error(&self, item: &Item) -> TemplateError {
        if self.action_line != 0 && self.action_line != item.line {
            let extra = format!(" in action started at {}:{}", self.name, self.action_line);
            let extra = if item.val.ends_with(" action") {
                &extra[" in action".len()..]
            } else {
                extra.as_str()
            };
            return self.errorf(format!("{}{extra}", item.val));
        }
        self.errorf(&item.val)
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
            ItemType::LeftDelim => {
                self.action_line = t.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
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
                ItemType::Error => return Err(self.lex_error(&t)),
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
            ItemType::Error => return Err(self.lex_error(&t)),
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
                if !self.vars.contains(&t.val) {
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
