//! The dependency graph of locals, resources and outputs, from references and `depends_on`.

use crate::config::{BodyExpr, Config, Expr};
use crate::diag::{Diag, Diags, SrcSpan};
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::template::{Directive, Element, Template};
use hcl_edit::Span;
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// A local value, by its key (`name`, or `module.net["a"].name` in a module).
    Local(String),
    Resource(String),
    /// An output: `name` at the root, `module.net["a"].output.name` in a module.
    Output(String),
    /// A module instance's input variable: `module.net["a"].var.name`.
    Var(String),
}

impl Node {
    pub fn name(&self) -> String {
        match self {
            Node::Local(n) => {
                let (m, name) = crate::address::split_module(n);
                format!("{m}local.{name}")
            }
            Node::Resource(a) | Node::Var(a) => a.clone(),
            Node::Output(n) if n.contains('.') => n.clone(),
            Node::Output(n) => format!("output.{n}"),
        }
    }
}

/// A reference found in an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    /// `var.x`, `local.x`, `type.name`, `count.index`, `each.key`, ...
    pub root: String,
    pub name: Option<String>,
    /// For `type.name[...].attr...`: the attribute read (after any index or splat).
    pub attr: Option<String>,
    pub span: SrcSpan,
}

/// A function call found in an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub args: usize,
    /// The last argument is expanded (`f(list...)`): the count is not known statically.
    pub expanded: bool,
    pub span: SrcSpan,
}

#[derive(Default)]
struct Found {
    refs: Vec<Ref>,
    calls: Vec<Call>,
}

/// Every reference in an expression, skipping names bound by `for` expressions.
pub fn refs(e: &Expr) -> Vec<Ref> {
    let mut out = Found::default();
    let mut bound = Vec::new();
    walk(&e.expr, e.file, &mut bound, &mut out);
    out.refs
}

/// Every function call in an expression.
pub fn calls(e: &Expr) -> Vec<Call> {
    let mut out = Found::default();
    let mut bound = Vec::new();
    walk(&e.expr, e.file, &mut bound, &mut out);
    out.calls
}

/// Checks that every function called in `e` exists and gets a number of arguments it takes:
/// what `validate` must say without evaluating anything.
pub fn check_calls(e: &Expr, cfg: &Config, diags: &mut Vec<Diag>) {
    for c in calls(e) {
        let problem = if c.expanded {
            if crate::funcs::is_known(&c.name) {
                continue;
            }
            crate::funcs::check_arity(&c.name, 0).err()
        } else {
            crate::funcs::check_arity(&c.name, c.args).err()
        };
        if let Some(m) = problem {
            diags.push(Diag::at(
                format!("{}(): {m}", c.name),
                &cfg.sources,
                &c.span,
            ));
        }
    }
}

fn body_calls(b: &BodyExpr, cfg: &Config, diags: &mut Vec<Diag>) {
    for (_, e) in &b.attrs {
        check_calls(e, cfg, diags);
    }
    for (_, nested) in &b.blocks {
        body_calls(nested, cfg, diags);
    }
}

fn body_refs(b: &BodyExpr, out: &mut Vec<Ref>) {
    for (_, e) in &b.attrs {
        out.extend(refs(e));
    }
    for (_, nested) in &b.blocks {
        body_refs(nested, out);
    }
}

fn walk(e: &Expression, file: usize, bound: &mut Vec<String>, out: &mut Found) {
    let span = |x: &dyn Span| SrcSpan {
        file,
        range: x.span().unwrap_or(0..0),
    };
    match e {
        Expression::Null(_)
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_) => {}
        Expression::Array(items) => items.iter().for_each(|i| walk(i, file, bound, out)),
        Expression::Object(obj) => {
            for (k, v) in obj.iter() {
                if let ObjectKey::Expression(k) = k {
                    walk(k, file, bound, out);
                }
                walk(v.expr(), file, bound, out);
            }
        }
        Expression::StringTemplate(t) => walk_template(t, file, bound, out),
        Expression::HeredocTemplate(h) => walk_template(&h.template, file, bound, out),
        Expression::Parenthesis(p) => walk(p.inner(), file, bound, out),
        Expression::Variable(v) => {
            if !bound.iter().any(|b| b == v.as_str()) {
                out.refs.push(Ref {
                    root: v.as_str().to_string(),
                    name: None,
                    attr: None,
                    span: span(e),
                });
            }
        }
        Expression::Traversal(t) => {
            match &t.expr {
                Expression::Variable(v) if !bound.iter().any(|b| b == v.as_str()) => {
                    let mut ops = t.operators.iter().map(|o| o.value());
                    let mut name = match ops.next() {
                        Some(TraversalOperator::GetAttr(a)) => Some(a.as_str().to_string()),
                        _ => None,
                    };
                    // data.TYPE.NAME names a data block by its type and name.
                    if v.as_str() == "data" {
                        name = match (name, ops.next()) {
                            (Some(t), Some(TraversalOperator::GetAttr(n))) => {
                                Some(format!("{t}.{}", n.as_str()))
                            }
                            _ => None,
                        };
                    }
                    // The first attribute after indexes and splats: what is read of it.
                    let attr = ops.find_map(|o| match o {
                        TraversalOperator::GetAttr(a) => Some(a.as_str().to_string()),
                        _ => None,
                    });
                    out.refs.push(Ref {
                        root: v.as_str().to_string(),
                        name,
                        attr,
                        span: span(e),
                    });
                }
                other => walk(other, file, bound, out),
            }
            for op in &t.operators {
                if let TraversalOperator::Index(i) = op.value() {
                    walk(i, file, bound, out);
                }
            }
        }
        Expression::Conditional(c) => {
            walk(&c.cond_expr, file, bound, out);
            walk(&c.true_expr, file, bound, out);
            walk(&c.false_expr, file, bound, out);
        }
        Expression::FuncCall(f) => {
            out.calls.push(Call {
                name: f.name.name.as_str().to_string(),
                args: f.args.len(),
                expanded: f.args.expand_final(),
                span: span(e),
            });
            // The second argument of convert() is a type constraint, not an expression.
            let n = if f.name.name.as_str() == "convert" {
                1
            } else {
                usize::MAX
            };
            f.args
                .iter()
                .take(n)
                .for_each(|a| walk(a, file, bound, out))
        }
        Expression::UnaryOp(op) => walk(&op.expr, file, bound, out),
        Expression::BinaryOp(op) => {
            walk(&op.lhs_expr, file, bound, out);
            walk(&op.rhs_expr, file, bound, out);
        }
        Expression::ForExpr(f) => {
            walk(&f.intro.collection_expr, file, bound, out);
            let n = bound.len();
            if let Some(k) = &f.intro.key_var {
                bound.push(k.as_str().to_string());
            }
            bound.push(f.intro.value_var.as_str().to_string());
            if let Some(k) = &f.key_expr {
                walk(k, file, bound, out);
            }
            walk(&f.value_expr, file, bound, out);
            if let Some(c) = &f.cond {
                walk(&c.expr, file, bound, out);
            }
            bound.truncate(n);
        }
    }
}

fn walk_template(t: &Template, file: usize, bound: &mut Vec<String>, out: &mut Found) {
    for el in t.iter() {
        match el {
            Element::Literal(_) => {}
            Element::Interpolation(i) => walk(&i.expr, file, bound, out),
            Element::Directive(d) => match d.as_ref() {
                Directive::If(i) => {
                    walk(&i.if_expr.cond_expr, file, bound, out);
                    walk_template(&i.if_expr.template, file, bound, out);
                    if let Some(e) = &i.else_expr {
                        walk_template(&e.template, file, bound, out);
                    }
                }
                Directive::For(f) => {
                    let fe = &f.for_expr;
                    walk(&fe.collection_expr, file, bound, out);
                    let n = bound.len();
                    if let Some(k) = &fe.key_var {
                        bound.push(k.as_str().to_string());
                    }
                    bound.push(fe.value_var.as_str().to_string());
                    walk_template(&fe.template, file, bound, out);
                    bound.truncate(n);
                }
            },
        }
    }
}

const KEYWORDS: &[&str] = &[
    "var",
    "local",
    "count",
    "each",
    "path",
    "self",
    "terraform",
    "ballast",
];

#[derive(Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// For each node, the nodes it depends on.
    pub deps: Vec<BTreeSet<usize>>,
    index: HashMap<Node, usize>,
}

impl Graph {
    pub fn id(&self, n: &Node) -> Option<usize> {
        self.index.get(n).copied()
    }

    /// Builds the graph and checks that every reference names something declared.
    pub fn build(cfg: &Config) -> Result<Graph, Diags> {
        let mut g = Graph::default();
        let add = |g: &mut Graph, n: Node| {
            let id = g.nodes.len();
            g.index.insert(n.clone(), id);
            g.nodes.push(n);
            g.deps.push(BTreeSet::new());
        };
        for name in cfg.locals.keys() {
            add(&mut g, Node::Local(name.clone()));
        }
        for r in &cfg.resources {
            add(&mut g, Node::Resource(r.addr()));
        }
        for name in cfg.outputs.keys() {
            add(&mut g, Node::Output(name.clone()));
        }
        for name in cfg.module_vars.keys() {
            add(&mut g, Node::Var(name.clone()));
        }
        let mut diags = Vec::new();
        let mut edges = Vec::new();
        // Everything a module call stands for: its instances' outputs, and (for
        // depends_on) their resources too.
        let call_nodes = |key: &str, resources: bool| -> Option<Vec<Node>> {
            let call = cfg.calls.get(key)?;
            let mut out = Vec::new();
            for (_, prefix) in &call.instances {
                out.extend(
                    call.outputs
                        .iter()
                        .map(|o| Node::Output(format!("{prefix}output.{o}"))),
                );
                if resources {
                    out.extend(
                        cfg.resources
                            .iter()
                            .filter(|r| r.module.starts_with(prefix.as_str()))
                            .map(|r| Node::Resource(r.addr())),
                    );
                }
            }
            Some(out)
        };
        let mut check = |from: usize, m: &str, rs: Vec<Ref>, diags: &mut Vec<Diag>, g: &Graph| {
            for r in rs {
                let target = match (r.root.as_str(), &r.name) {
                    ("local", Some(n)) => Some(Node::Local(format!("{m}{n}"))),
                    ("var", Some(n)) if !m.is_empty() => {
                        let key = format!("{m}var.{n}");
                        if !cfg.module_vars.contains_key(&key) {
                            diags.push(Diag::at(
                                format!("no variable named \"{n}\" is declared in this module"),
                                &cfg.sources,
                                &r.span,
                            ));
                            None
                        } else {
                            Some(Node::Var(key))
                        }
                    }
                    ("var", Some(n)) => {
                        if !cfg.variables.contains_key(n) {
                            diags.push(Diag::at(
                                format!("no variable named \"{n}\" is declared"),
                                &cfg.sources,
                                &r.span,
                            ));
                        }
                        None
                    }
                    ("module", Some(n)) => {
                        // `depends_on = [module.x]` waits for its resources too.
                        let depends = r.span.range.is_empty();
                        match call_nodes(&format!("{m}module.{n}"), depends) {
                            Some(nodes) => {
                                for t in nodes {
                                    if let Some(to) = g.id(&t) {
                                        edges.push((from, to));
                                    }
                                }
                            }
                            None => diags.push(Diag::at(
                                format!("no module call named \"{n}\" is declared"),
                                &cfg.sources,
                                &r.span,
                            )),
                        }
                        None
                    }
                    ("module", None) => {
                        diags.push(Diag::at(
                            "module must be followed by a module name, as in module.net",
                            &cfg.sources,
                            &r.span,
                        ));
                        None
                    }
                    ("data", Some(n)) => Some(Node::Resource(format!("{m}data.{n}"))),
                    ("data", None) => {
                        diags.push(Diag::at(
                            "data must be followed by a type and a name, as in data.local_file.motd",
                            &cfg.sources,
                            &r.span,
                        ));
                        None
                    }
                    (k, _) if KEYWORDS.contains(&k) => None,
                    (t, Some(n)) => Some(Node::Resource(format!("{m}{t}.{n}"))),
                    (t, None) => {
                        diags.push(Diag::at(
                            format!("unknown name \"{t}\""),
                            &cfg.sources,
                            &r.span,
                        ));
                        None
                    }
                };
                if let Some(t) = target {
                    match g.id(&t) {
                        Some(to) => edges.push((from, to)),
                        None => diags.push(Diag::at(
                            format!("reference to undeclared {}", describe(&t)),
                            &cfg.sources,
                            &r.span,
                        )),
                    }
                }
            }
        };
        for (name, e) in &cfg.locals {
            let from = g.index[&Node::Local(name.clone())];
            check(from, cfg.module_of(name), refs(e), &mut diags, &g);
            check_calls(e, cfg, &mut diags);
        }
        for (name, v) in &cfg.module_vars {
            let from = g.index[&Node::Var(name.clone())];
            if let Some(e) = &v.value {
                check(from, &v.caller, refs(e), &mut diags, &g);
                check_calls(e, cfg, &mut diags);
            }
        }
        for r in &cfg.resources {
            let from = g.index[&Node::Resource(r.addr())];
            let mut rs = Vec::new();
            body_refs(&r.body, &mut rs);
            body_calls(&r.body, cfg, &mut diags);
            for e in r.count.iter().chain(r.for_each.iter()) {
                rs.extend(refs(e));
                check_calls(e, cfg, &mut diags);
            }
            for c in r
                .lifecycle
                .preconditions
                .iter()
                .chain(r.lifecycle.postconditions.iter())
            {
                rs.extend(refs(&c.condition));
                rs.extend(refs(&c.error_message));
                check_calls(&c.condition, cfg, &mut diags);
                check_calls(&c.error_message, cfg, &mut diags);
            }
            let named = r
                .lifecycle
                .replace_triggered_by
                .iter()
                .map(|(addr, span)| (addr.split('[').next().unwrap_or(addr), span))
                .chain(r.depends_on.iter().map(|(d, span)| (d.as_str(), span)));
            for (addr, span) in named {
                rs.push(named_ref(addr, span));
            }
            check(from, &r.module, rs, &mut diags, &g);
            // A module call's depends_on, from where the call is.
            for (addr, span) in &r.module_depends_on {
                let (m, rest) = crate::address::split_module(addr);
                check(from, m, vec![named_ref(rest, span)], &mut diags, &g);
            }
        }
        for (name, o) in &cfg.outputs {
            let from = g.index[&Node::Output(name.clone())];
            let m = o.module.as_str();
            let mut rs = refs(&o.value);
            check_calls(&o.value, cfg, &mut diags);
            for c in &o.preconditions {
                rs.extend(refs(&c.condition));
                rs.extend(refs(&c.error_message));
                check_calls(&c.condition, cfg, &mut diags);
                check_calls(&c.error_message, cfg, &mut diags);
            }
            check(from, m, rs, &mut diags, &g);
        }
        for (from, to) in edges {
            g.deps[from].insert(to);
        }
        if !diags.is_empty() {
            return Err(Diags(diags));
        }
        g.order().map_err(|cycle| {
            let names: Vec<String> = cycle.iter().map(|&i| g.nodes[i].name()).collect();
            // Where each member of the cycle is declared.
            let span_of = |n: &Node| match n {
                Node::Local(name) => cfg.locals.get(name).map(|e| e.span()),
                Node::Output(name) => cfg.outputs.get(name).map(|o| o.value.span()),
                Node::Resource(a) => cfg.resource(a).map(|r| r.span.clone()),
                Node::Var(v) => cfg.module_vars.get(v).map(|v| v.variable.span.clone()),
            };
            let members = &cycle[..cycle.len().saturating_sub(1).max(1)];
            let places: Vec<String> = members
                .iter()
                .filter_map(|&i| {
                    let n = &g.nodes[i];
                    let l = cfg.sources.locate(&span_of(n)?);
                    Some(format!("{} at {}:{}:{}", n.name(), l.file, l.line, l.col))
                })
                .collect();
            let message = format!("dependency cycle: {}", names.join(" -> "));
            let d = match span_of(&g.nodes[cycle[0]]) {
                Some(span) => Diag::at(message, &cfg.sources, &span),
                None => Diag::new(message),
            };
            let help = if places.is_empty() {
                "break the cycle by removing one of these references".to_string()
            } else {
                format!(
                    "declared: {}; break the cycle by removing one of these references",
                    places.join(", ")
                )
            };
            Diags(vec![d.with_help(help)])
        })?;
        Ok(g)
    }

    /// A topological order (dependencies first), or the nodes of a cycle (first repeated last).
    pub fn order(&self) -> Result<Vec<usize>, Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let mut mark = vec![Mark::New; self.nodes.len()];
        let mut order = Vec::with_capacity(self.nodes.len());
        for start in 0..self.nodes.len() {
            if mark[start] != Mark::New {
                continue;
            }
            // Iterative DFS: (node, its deps still to visit).
            let mut stack: Vec<(usize, Vec<usize>)> =
                vec![(start, self.deps[start].iter().copied().collect())];
            mark[start] = Mark::Active;
            while let Some((node, pending)) = stack.last_mut() {
                match pending.pop() {
                    Some(d) => match mark[d] {
                        Mark::New => {
                            mark[d] = Mark::Active;
                            let next = self.deps[d].iter().copied().collect();
                            stack.push((d, next));
                        }
                        Mark::Active => {
                            let pos = stack.iter().position(|(n, _)| *n == d).unwrap_or(0);
                            let mut cycle: Vec<usize> =
                                stack[pos..].iter().map(|(n, _)| *n).collect();
                            cycle.push(d);
                            return Err(cycle);
                        }
                        Mark::Done => {}
                    },
                    None => {
                        let n = *node;
                        mark[n] = Mark::Done;
                        order.push(n);
                        stack.pop();
                    }
                }
            }
        }
        Ok(order)
    }

    /// The graph in Graphviz DOT.
    pub fn dot(&self) -> String {
        let mut s = String::from("digraph ballast {\n  rankdir = \"RL\";\n");
        for n in &self.nodes {
            s.push_str(&format!("  \"{}\";\n", n.name()));
        }
        for (i, deps) in self.deps.iter().enumerate() {
            for &d in deps {
                s.push_str(&format!(
                    "  \"{}\" -> \"{}\";\n",
                    self.nodes[i].name(),
                    self.nodes[d].name()
                ));
            }
        }
        s.push_str("}\n");
        s
    }
}

fn describe(n: &Node) -> String {
    match n {
        Node::Local(_) => format!("local value {}", n.name()),
        Node::Resource(a) => format!("resource {a}"),
        Node::Output(_) => format!("output {}", n.name()),
        Node::Var(v) => format!("module variable {v}"),
    }
}

/// A reference for an address named in depends_on or replace_triggered_by (`type.name`,
/// `data.type.name`, `module.name`). An empty span marks it as named there (so that a
/// module named in depends_on waits for the module's resources too).
fn named_ref(addr: &str, span: &SrcSpan) -> Ref {
    let mut parts = addr.splitn(2, '.');
    Ref {
        root: parts.next().unwrap_or_default().to_string(),
        name: parts.next().map(str::to_string),
        attr: None,
        span: SrcSpan {
            file: span.file,
            range: span.range.start..span.range.start,
        },
    }
}
