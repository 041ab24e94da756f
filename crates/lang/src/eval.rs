//! Evaluates HCL expressions to [`Value`]s.
//!
//! Unknown values ("known after apply") propagate through every operation. Reading a sensitive
//! variable marks the evaluation as sensitive, so the engine can redact what it produced.

use crate::config::{BodyExpr, Config, Expr, Validation};
use crate::convert::{to_bool, to_number, to_string};
use crate::diag::{Diag, SrcSpan};
use crate::funcs;
use ballast_sdk::{format_number, Number, Value};
use hcl_edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::template::{Directive, Element, Template};
use hcl_edit::Span;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Everything an expression can refer to.
pub struct Scope<'a> {
    pub cfg: &'a Config,
    /// The module instance expressions are in (`module.net["a"].`; empty at the root):
    /// `var.`, `local.`, resources and `module.` are looked up within it.
    pub module: &'a str,
    pub vars: &'a BTreeMap<String, Value>,
    pub sensitive_vars: &'a BTreeSet<String>,
    pub locals: &'a HashMap<String, Value>,
    /// Resource values by `type.name`: an object, a list (count) or a map (for_each).
    pub resources: &'a HashMap<String, Value>,
    pub count_index: Option<usize>,
    pub each: Option<(Value, Value)>,
    /// Sensitive attributes of resources, by `type.name`: reading one marks the result sensitive.
    pub sensitive_attrs: Option<&'a HashMap<String, BTreeSet<String>>>,
    /// Locals whose value came from something sensitive.
    pub sensitive_locals: Option<&'a BTreeSet<String>>,
    /// `self` in a postcondition: the object after apply (or as planned).
    pub self_value: Option<Value>,
    bindings: RefCell<Vec<(String, Value)>>,
    sensitive: Cell<bool>,
}

type R = Result<Value, Diag>;

impl<'a> Scope<'a> {
    pub fn new(
        cfg: &'a Config,
        vars: &'a BTreeMap<String, Value>,
        sensitive_vars: &'a BTreeSet<String>,
        locals: &'a HashMap<String, Value>,
        resources: &'a HashMap<String, Value>,
    ) -> Self {
        Scope {
            cfg,
            module: "",
            vars,
            sensitive_vars,
            locals,
            resources,
            count_index: None,
            each: None,
            sensitive_attrs: None,
            sensitive_locals: None,
            self_value: None,
            bindings: RefCell::new(Vec::new()),
            sensitive: Cell::new(false),
        }
    }

    /// Whether anything sensitive was read since the last call; resets the flag.
    pub fn take_sensitive(&self) -> bool {
        self.sensitive.replace(false)
    }

    pub fn eval(&self, e: &Expr) -> R {
        self.ev(&e.expr, e.file)
    }

    /// Evaluates a block body to an object; nested blocks become lists of objects.
    /// The sensitive parts come back as path patterns: `password`, and inside nested blocks
    /// `user.*.password` (each block is an element of a list until the schema says it is a
    /// single block), so that only they are hidden.
    pub fn eval_body(&self, body: &BodyExpr) -> Result<(Value, BTreeSet<String>), Diag> {
        let mut out = BTreeMap::new();
        let mut sensitive = BTreeSet::new();
        for (k, e) in &body.attrs {
            self.take_sensitive();
            out.insert(k.clone(), self.eval(e)?);
            if self.take_sensitive() {
                sensitive.insert(k.clone());
            }
        }
        for (k, b) in &body.blocks {
            let (v, s) = self.eval_body(b)?;
            sensitive.extend(s.iter().map(|p| format!("{k}.*.{p}")));
            match out
                .entry(k.clone())
                .or_insert_with(|| Value::List(Vec::new()))
            {
                Value::List(items) => items.push(v),
                _ => {
                    return Err(Diag::new(format!(
                        "\"{k}\" is set both as an attribute and as a block"
                    )))
                }
            }
        }
        Ok((Value::Map(out), sensitive))
    }

    fn span(&self, expr: &impl Span, file: usize) -> SrcSpan {
        SrcSpan {
            file,
            range: expr.span().unwrap_or(0..0),
        }
    }

    fn err(&self, msg: impl Into<String>, expr: &impl Span, file: usize) -> Diag {
        Diag::at(msg, &self.cfg.sources, &self.span(expr, file))
    }

    fn ev(&self, expr: &Expression, file: usize) -> R {
        Ok(match expr {
            Expression::Null(_) => Value::Null,
            Expression::Bool(b) => Value::Bool(*b.value()),
            Expression::Number(n) => Value::Number(literal_number(n)),
            Expression::String(s) => Value::String(s.value().clone()),
            Expression::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.ev(item, file)?);
                }
                Value::List(out)
            }
            Expression::Object(obj) => {
                let mut out = BTreeMap::new();
                for (k, v) in obj.iter() {
                    let key = match k {
                        ObjectKey::Ident(id) => id.as_str().to_string(),
                        ObjectKey::Expression(e) => match self.ev(e, file)? {
                            Value::Unknown => return Ok(Value::Unknown),
                            other => to_string(&other).map_err(|m| {
                                self.err(format!("invalid object key: {m}"), e, file)
                            })?,
                        },
                    };
                    out.insert(key, self.ev(v.expr(), file)?);
                }
                Value::Map(out)
            }
            Expression::StringTemplate(t) => self.template(t, file)?,
            Expression::HeredocTemplate(h) => match h.indent() {
                // hcl-edit dedents the top-level lines of a <<- heredoc; do the same inside
                // %{for} and %{if} bodies, as HCL does.
                Some(n) if n > 0 => {
                    let mut t = h.template.clone();
                    dedent_nested(&mut t, n);
                    self.template(&t, file)?
                }
                _ => self.template(&h.template, file)?,
            },
            Expression::Parenthesis(p) => self.ev(p.inner(), file)?,
            Expression::Variable(v) => self.root(v.as_str(), None, expr, file)?,
            Expression::Traversal(t) => self.traversal(t, file)?,
            Expression::Conditional(c) => match self.ev(&c.cond_expr, file)? {
                // Both results convert to their common type, as Terraform's do (a number and
                // a string give a string); the other branch is evaluated for its type only.
                Value::Bool(b) => {
                    let (chosen_expr, other_expr) = if b {
                        (&c.true_expr, &c.false_expr)
                    } else {
                        (&c.false_expr, &c.true_expr)
                    };
                    let chosen = self.ev(chosen_expr, file)?;
                    // What the other branch reads (a sensitive value) does not mark the result.
                    let marked = self.take_sensitive();
                    let other = self.ev(other_expr, file).ok();
                    self.sensitive.set(marked);
                    match other {
                        Some(o) => {
                            let (tv, fv) = if b { (&chosen, &o) } else { (&o, &chosen) };
                            let pair = crate::convert::unify(vec![tv.clone(), fv.clone()])
                                .map_err(|_| {
                                    self.err(
                                        format!(
                                            "the true and false result expressions must have consistent types; the 'true' value is {}, but the 'false' value is {}",
                                            tv.type_name(),
                                            fv.type_name()
                                        ),
                                        expr,
                                        file,
                                    )
                                })?;
                            pair.into_iter().nth(usize::from(!b)).unwrap_or(chosen)
                        }
                        None => chosen,
                    }
                }
                Value::Unknown => Value::Unknown,
                other => {
                    return Err(self.err(
                        format!("the condition must be a bool, not a {}", other.type_name()),
                        &c.cond_expr,
                        file,
                    ))
                }
            },
            Expression::FuncCall(call) if matches!(call.name.name.as_str(), "try" | "can") => {
                let name = call.name.name.as_str();
                if name == "can" && call.args.len() != 1 {
                    return Err(self.err("can() takes exactly one expression", expr, file));
                }
                let mut last = None;
                for a in call.args.iter() {
                    match self.ev(a, file) {
                        Ok(v) => return Ok(if name == "can" { Value::Bool(true) } else { v }),
                        Err(d) => last = Some(d),
                    }
                }
                match (name, last) {
                    ("can", _) => Value::Bool(false),
                    (_, Some(d)) => {
                        return Err(self.err(
                            format!(
                                "try(): no expression succeeded; the last failed with: {}",
                                d.message
                            ),
                            expr,
                            file,
                        ))
                    }
                    (_, None) => {
                        return Err(self.err("try() needs at least one expression", expr, file))
                    }
                }
            }
            Expression::FuncCall(call) if call.name.name.as_str() == "convert" => {
                // convert(value, type): the second argument is a type constraint, as in a
                // variable's `type`.
                funcs::check_arity("convert", call.args.len())
                    .map_err(|m| self.err(format!("convert(): {m}"), expr, file))?;
                let mut it = call.args.iter();
                let (Some(value), Some(ty)) = (it.next(), it.next()) else {
                    return Err(self.err("convert(): takes 2 arguments", expr, file));
                };
                let v = self.ev(value, file)?;
                let t = crate::types::parse(ty, &|d| self.ev(d, file).map_err(|d| d.message))
                    .map_err(|m| self.err(format!("convert(): argument 2: {m}"), ty, file))?;
                crate::types::convert(v, &t, "")
                    .map_err(|m| self.err(format!("convert(): {m}"), expr, file))?
            }
            Expression::FuncCall(call)
                if matches!(
                    call.name.name.as_str(),
                    "sensitive" | "nonsensitive" | "issensitive"
                ) =>
            {
                let name = call.name.name.as_str();
                funcs::check_arity(name, call.args.len())
                    .map_err(|m| self.err(format!("{name}(): {m}"), expr, file))?;
                let Some(arg) = call.args.iter().next() else {
                    return Err(self.err(format!("{name}(): takes 1 argument, got 0"), expr, file));
                };
                // Sensitivity is a mark on the evaluation: save what was read before the
                // argument, see whether the argument reads something sensitive, then mark.
                let before = self.take_sensitive();
                let v = self.ev(arg, file)?;
                let inner = self.take_sensitive();
                match name {
                    "sensitive" => {
                        self.sensitive.set(true);
                        v
                    }
                    "nonsensitive" => {
                        self.sensitive.set(before);
                        v
                    }
                    _ => {
                        self.sensitive.set(before);
                        if v == Value::Unknown && !inner {
                            Value::Unknown
                        } else {
                            Value::Bool(inner)
                        }
                    }
                }
            }
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                if !call.args.expand_final() {
                    funcs::check_arity(name, call.args.len())
                        .map_err(|m| self.err(format!("{name}(): {m}"), expr, file))?;
                }
                let mut args = Vec::with_capacity(call.args.len());
                for a in call.args.iter() {
                    args.push(self.ev(a, file)?);
                }
                if call.args.expand_final() {
                    match args.pop() {
                        Some(Value::List(rest)) => args.extend(rest),
                        Some(Value::Unknown) => return Ok(Value::Unknown),
                        _ => {
                            return Err(self.err(
                                "the final argument before ... must be a list",
                                expr,
                                file,
                            ))
                        }
                    }
                }
                funcs::call(name, args, self as &dyn funcs::Context)
                    .map_err(|m| self.err(format!("{name}(): {m}"), expr, file))?
            }
            Expression::UnaryOp(op) => {
                let v = self.ev(&op.expr, file)?;
                match (op.operator.value(), v) {
                    (_, Value::Unknown) => Value::Unknown,
                    (UnaryOperator::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnaryOperator::Neg, v) => Value::Number(
                        to_number(&v)
                            .map_err(|m| self.err(m, &op.expr, file))?
                            .neg(),
                    ),
                    (UnaryOperator::Not, v) => {
                        return Err(self.err(
                            format!("! needs a bool, not a {}", v.type_name()),
                            &op.expr,
                            file,
                        ))
                    }
                }
            }
            Expression::BinaryOp(op) => {
                let l = self.ev(&op.lhs_expr, file)?;
                let op_kind = *op.operator.value();
                // Short-circuit what is decided regardless of the other side.
                match (op_kind, &l) {
                    (BinaryOperator::And, Value::Bool(false)) => return Ok(Value::Bool(false)),
                    (BinaryOperator::Or, Value::Bool(true)) => return Ok(Value::Bool(true)),
                    _ => {}
                }
                let r = self.ev(&op.rhs_expr, file)?;
                binary(op_kind, l, r).map_err(|m| self.err(m, expr, file))?
            }
            Expression::ForExpr(f) => self.for_expr(f, file)?,
        })
    }

    fn template(&self, t: &Template, file: usize) -> R {
        // A template that is exactly one interpolation yields the value itself, with its type.
        if let (1, Some(Element::Interpolation(i))) = (t.len(), t.get(0)) {
            if !i.strip.strip_start() && !i.strip.strip_end() {
                return self.ev(&i.expr, file);
            }
        }
        let mut out = String::new();
        match self.render(t, file, false, &mut out)? {
            true => Ok(Value::String(out)),
            false => Ok(Value::Unknown),
        }
    }

    /// Renders a template into `out`; `strip_lead` trims the whitespace its first literal starts
    /// with (a `~}` just before it). Returns false when the result is unknown.
    fn render(
        &self,
        t: &Template,
        file: usize,
        strip_lead: bool,
        out: &mut String,
    ) -> Result<bool, Diag> {
        let mut strip_next = strip_lead;
        for el in t.iter() {
            match el {
                Element::Literal(s) => {
                    let text: &str = s.value();
                    out.push_str(if strip_next { text.trim_start() } else { text });
                    strip_next = false;
                }
                Element::Interpolation(i) => {
                    if i.strip.strip_start() {
                        trim_end(out);
                    }
                    match self.ev(&i.expr, file)? {
                        Value::Unknown => return Ok(false),
                        v => out.push_str(&to_string(&v).map_err(|m| {
                            self.err(format!("cannot interpolate: {m}"), &i.expr, file)
                        })?),
                    }
                    strip_next = i.strip.strip_end();
                }
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(ifd) => {
                        if ifd.if_expr.strip.strip_start() {
                            trim_end(out);
                        }
                        let (branch, lead, trail) = match self.ev(&ifd.if_expr.cond_expr, file)? {
                            Value::Bool(true) => {
                                let trail = match &ifd.else_expr {
                                    Some(e) => e.strip.strip_start(),
                                    None => ifd.endif_expr.strip.strip_start(),
                                };
                                (
                                    Some(&ifd.if_expr.template),
                                    ifd.if_expr.strip.strip_end(),
                                    trail,
                                )
                            }
                            Value::Bool(false) => match &ifd.else_expr {
                                Some(e) => (
                                    Some(&e.template),
                                    e.strip.strip_end(),
                                    ifd.endif_expr.strip.strip_start(),
                                ),
                                None => (None, false, false),
                            },
                            Value::Unknown => return Ok(false),
                            other => {
                                return Err(self.err(
                                    format!(
                                        "the %{{if}} condition must be a bool, not a {}",
                                        other.type_name()
                                    ),
                                    &ifd.if_expr.cond_expr,
                                    file,
                                ))
                            }
                        };
                        if let Some(t) = branch {
                            if !self.render(t, file, lead, out)? {
                                return Ok(false);
                            }
                            if trail {
                                trim_end(out);
                            }
                        }
                        strip_next = ifd.endif_expr.strip.strip_end();
                    }
                    Directive::For(fd) => {
                        let f = &fd.for_expr;
                        if f.strip.strip_start() {
                            trim_end(out);
                        }
                        let coll = self.ev(&f.collection_expr, file)?;
                        let items = match iterate(&coll) {
                            Ok(Some(items)) => items,
                            Ok(None) => return Ok(false),
                            Err(m) => return Err(self.err(m, &f.collection_expr, file)),
                        };
                        for (k, v) in items {
                            let n = self.bind(
                                f.key_var.as_ref().map(|i| i.as_str()),
                                f.value_var.as_str(),
                                k,
                                v,
                            );
                            let r = self.render(&f.template, file, f.strip.strip_end(), out);
                            self.unbind(n);
                            if !r? {
                                return Ok(false);
                            }
                            if fd.endfor_expr.strip.strip_start() {
                                trim_end(out);
                            }
                        }
                        strip_next = fd.endfor_expr.strip.strip_end();
                    }
                },
            }
        }
        Ok(true)
    }

    /// Evaluates `condition`/`error_message` blocks; each false condition becomes a
    /// diagnostic "`what`: message" at the condition. Unknown conditions are skipped.
    pub fn failed_conditions(&self, conds: &[Validation], what: &str) -> Vec<Diag> {
        let mut out = Vec::new();
        for c in conds {
            match self.eval(&c.condition) {
                Ok(Value::Bool(true)) | Ok(Value::Unknown) => {}
                Ok(Value::Bool(false)) => {
                    let msg = match self.eval(&c.error_message) {
                        Ok(Value::String(m)) => m,
                        Ok(other) => other.to_string(),
                        Err(d) => d.message,
                    };
                    out.push(Diag::at(
                        format!("{what}: {msg}"),
                        &self.cfg.sources,
                        &c.condition.span(),
                    ));
                }
                Ok(other) => out.push(Diag::at(
                    format!(
                        "a condition must be true or false, not {}",
                        other.type_name()
                    ),
                    &self.cfg.sources,
                    &c.condition.span(),
                )),
                Err(d) => out.push(d),
            }
        }
        out
    }

    fn bind(&self, key_var: Option<&str>, value_var: &str, k: Value, v: Value) -> usize {
        let mut b = self.bindings.borrow_mut();
        let mut n = 1;
        if let Some(kv) = key_var {
            b.push((kv.to_string(), k));
            n += 1;
        }
        b.push((value_var.to_string(), v));
        n
    }

    fn unbind(&self, n: usize) {
        let mut b = self.bindings.borrow_mut();
        let len = b.len();
        b.truncate(len - n);
    }

    fn for_expr(&self, f: &hcl_edit::expr::ForExpr, file: usize) -> R {
        let coll = self.ev(&f.intro.collection_expr, file)?;
        let items = match iterate(&coll) {
            Ok(Some(items)) => items,
            Ok(None) => return Ok(Value::Unknown),
            Err(m) => return Err(self.err(m, &f.intro.collection_expr, file)),
        };
        let key_var = f.intro.key_var.as_ref().map(|i| i.as_str());
        let value_var = f.intro.value_var.as_str();
        let mut list = Vec::new();
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in items {
            let n = self.bind(key_var, value_var, k, v);
            let r = (|| -> Result<Step, Diag> {
                if let Some(c) = &f.cond {
                    match self.ev(&c.expr, file)? {
                        Value::Bool(true) => {}
                        Value::Bool(false) => return Ok(Step::Skip),
                        Value::Unknown => return Ok(Step::Unknown),
                        other => {
                            return Err(self.err(
                                format!(
                                    "the for condition must be a bool, not a {}",
                                    other.type_name()
                                ),
                                &c.expr,
                                file,
                            ))
                        }
                    }
                }
                let key = match &f.key_expr {
                    Some(ke) => Some(self.ev(ke, file)?),
                    None => None,
                };
                Ok(Step::Item(key, self.ev(&f.value_expr, file)?))
            })();
            self.unbind(n);
            match r {
                Err(d) => return Err(d),
                Ok(Step::Unknown) => return Ok(Value::Unknown),
                Ok(Step::Skip) => {}
                Ok(Step::Item(None, v)) => list.push(v),
                Ok(Step::Item(Some(k), v)) => {
                    if k == Value::Unknown {
                        return Ok(Value::Unknown);
                    }
                    let key = to_string(&k)
                        .map_err(|m| self.err(format!("invalid key: {m}"), &f.value_expr, file))?;
                    if f.grouping {
                        if let Value::List(l) =
                            map.entry(key).or_insert_with(|| Value::List(Vec::new()))
                        {
                            l.push(v);
                        }
                    } else if map.insert(key.clone(), v).is_some() {
                        return Err(self.err(
                            format!("duplicate key \"{key}\" in the for expression; add ... to group values"),
                            &f.value_expr,
                            file,
                        ));
                    }
                }
            }
        }
        Ok(if f.key_expr.is_some() {
            Value::Map(map)
        } else {
            Value::List(list)
        })
    }

    /// The value a bare name (or the first part of a traversal) stands for.
    fn root(&self, name: &str, next: Option<&str>, expr: &Expression, file: usize) -> R {
        if let Some((_, v)) = self.bindings.borrow().iter().rev().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        let need = |what: &str| self.err(format!("{name} must be followed by {what}"), expr, file);
        match name {
            "var" if !self.module.is_empty() => {
                let n = next.ok_or_else(|| need("a variable name, as in var.NAME"))?;
                let key = format!("{}var.{n}", self.module);
                if self.sensitive_locals.is_some_and(|s| s.contains(&key)) {
                    self.sensitive.set(true);
                }
                match self.locals.get(&key) {
                    Some(v) => Ok(v.clone()),
                    None if self.cfg.module_vars.contains_key(&key) => Ok(Value::Unknown),
                    None => Err(self.err(
                        format!("no variable named \"{n}\" is declared in this module"),
                        expr,
                        file,
                    )),
                }
            }
            "var" => {
                let n = next.ok_or_else(|| need("a variable name, as in var.NAME"))?;
                match self.vars.get(n) {
                    Some(v) => {
                        if self.sensitive_vars.contains(n) {
                            self.sensitive.set(true);
                        }
                        Ok(v.clone())
                    }
                    None => {
                        Err(self.err(format!("no variable named \"{n}\" is declared"), expr, file))
                    }
                }
            }
            "local" => {
                let n = next.ok_or_else(|| need("a name, as in local.NAME"))?;
                let key = format!("{}{n}", self.module);
                if self.sensitive_locals.is_some_and(|s| s.contains(&key)) {
                    self.sensitive.set(true);
                }
                match self.locals.get(&key) {
                    Some(v) => Ok(v.clone()),
                    None if self.cfg.locals.contains_key(&key) => Ok(Value::Unknown),
                    None => Err(self.err(
                        format!("no local value named \"{n}\" is declared"),
                        expr,
                        file,
                    )),
                }
            }
            "count" => match (next, self.count_index) {
                (Some("index"), Some(i)) => Ok(Value::from(i)),
                (Some("index"), None) => Err(self.err(
                    "count.index is only valid in a resource with count",
                    expr,
                    file,
                )),
                _ => Err(need("index")),
            },
            "each" => match (next, &self.each) {
                (Some("key"), Some((k, _))) => Ok(k.clone()),
                (Some("value"), Some((_, v))) => Ok(v.clone()),
                (Some("key" | "value"), None) => {
                    Err(self.err("each is only valid in a resource with for_each", expr, file))
                }
                _ => Err(need("key or value")),
            },
            "self" => match (&self.self_value, next) {
                (None, _) => Err(self.err("self is only valid in a postcondition", expr, file)),
                (Some(v), None) => Ok(v.clone()),
                (Some(Value::Unknown), Some(_)) => Ok(Value::Unknown),
                (Some(v), Some(attr)) => match v.as_map().and_then(|m| m.get(attr)) {
                    Some(x) => Ok(x.clone()),
                    None => Err(self.err(format!("self has no attribute \"{attr}\""), expr, file)),
                },
            },
            "terraform" | "ballast" => match next {
                Some("workspace") => Ok(Value::String(if self.cfg.workspace.is_empty() {
                    "default".to_string()
                } else {
                    self.cfg.workspace.clone()
                })),
                _ => Err(need("workspace")),
            },
            "path" => match next {
                Some("module") => {
                    let dir = match self.cfg.modules.get(self.module) {
                        Some(m) => &m.dir,
                        None => &self.cfg.dir,
                    };
                    Ok(Value::String(dir.display().to_string()))
                }
                Some("root" | "cwd") => Ok(Value::String(self.cfg.dir.display().to_string())),
                _ => Err(need("module, root or cwd")),
            },
            "module" => {
                let n = next.ok_or_else(|| need("a module name, as in module.NAME"))?;
                let key = format!("{}module.{n}", self.module);
                let Some(call) = self.cfg.calls.get(&key) else {
                    return Err(self.err(
                        format!("no module call named \"{n}\" is declared"),
                        expr,
                        file,
                    ));
                };
                Ok(self.module_value(call))
            }
            "data" => {
                let t = next.ok_or_else(|| need("a type and a name, as in data.TYPE.NAME"))?;
                let declared: BTreeMap<String, Value> = self
                    .cfg
                    .resources
                    .iter()
                    .filter(|r| r.data && r.type_name == t && r.module == self.module)
                    .map(|r| {
                        let v = self.resources.get(&r.addr()).cloned();
                        (r.name.clone(), v.unwrap_or(Value::Unknown))
                    })
                    .collect();
                if declared.is_empty() {
                    return Err(self.err(
                        format!("no data block of type \"{t}\" is declared"),
                        expr,
                        file,
                    ));
                }
                Ok(Value::Map(declared))
            }
            type_name => {
                let Some(n) = next else {
                    return Err(self.err(format!("unknown name \"{type_name}\""), expr, file));
                };
                let addr = format!("{}{type_name}.{n}", self.module);
                match self.resources.get(&addr) {
                    Some(v) => Ok(v.clone()),
                    None if self.cfg.resource(&addr).is_some() => Ok(Value::Unknown),
                    None => Err(self.err(
                        format!("reference to undeclared resource {addr}"),
                        expr,
                        file,
                    )),
                }
            }
        }
    }

    /// What `module.NAME` is: an object of the instance's outputs, a list of them (count)
    /// or a map (for_each). An output not evaluated yet is unknown; reading a sensitive one
    /// marks the result sensitive.
    fn module_value(&self, call: &crate::config::CallInstances) -> Value {
        let outputs = |prefix: &str| {
            Value::Map(
                call.outputs
                    .iter()
                    .map(|o| {
                        let key = format!("{prefix}output.{o}");
                        if self.sensitive_locals.is_some_and(|s| s.contains(&key)) {
                            self.sensitive.set(true);
                        }
                        let v = self.locals.get(&key).cloned().unwrap_or(Value::Unknown);
                        (o.clone(), v)
                    })
                    .collect(),
            )
        };
        match call.kind {
            crate::config::Expansion::Single => call
                .instances
                .first()
                .map(|(_, p)| outputs(p))
                .unwrap_or(Value::Null),
            crate::config::Expansion::Count => {
                Value::List(call.instances.iter().map(|(_, p)| outputs(p)).collect())
            }
            crate::config::Expansion::ForEach => Value::Map(
                call.instances
                    .iter()
                    .filter_map(|(k, p)| Some((k.as_ref()?.as_str()?.to_string(), outputs(p))))
                    .collect(),
            ),
        }
    }

    fn traversal(&self, t: &hcl_edit::expr::Traversal, file: usize) -> R {
        if let Some(v) = self.resource_traversal(t, file)? {
            return Ok(v);
        }
        let mut ops = t.operators.iter().map(|o| o.value()).peekable();
        let mut v = match &t.expr {
            Expression::Variable(id) => {
                let name = id.as_str();
                let bound = self.bindings.borrow().iter().any(|(n, _)| n == name);
                let next = match ops.peek() {
                    Some(TraversalOperator::GetAttr(a)) if !bound => Some(a.as_str()),
                    _ => None,
                };
                let v = self.root(name, next, &t.expr, file)?;
                if next.is_some() {
                    ops.next();
                }
                v
            }
            other => self.ev(other, file)?,
        };
        let rest: Vec<&TraversalOperator> = ops.collect();
        self.mark_sensitive_read(t, &rest);
        v = self.apply_ops(v, &rest, t, file)?;
        Ok(v)
    }

    /// `type.name[...].attr...` walked by reference, cloning only what it ends on: reading
    /// one instance of a counted resource must not copy all of them. `None` when `t` is not
    /// a resource reference (the general path handles it).
    fn resource_traversal(
        &self,
        t: &hcl_edit::expr::Traversal,
        file: usize,
    ) -> Result<Option<Value>, Diag> {
        let Expression::Variable(root) = &t.expr else {
            return Ok(None);
        };
        let name = root.as_str();
        let ops: Vec<&TraversalOperator> = t.operators.iter().map(|o| o.value()).collect();
        let Some(TraversalOperator::GetAttr(res)) = ops.first() else {
            return Ok(None);
        };
        if matches!(
            name,
            "var"
                | "local"
                | "count"
                | "each"
                | "path"
                | "self"
                | "module"
                | "terraform"
                | "ballast"
        ) || self.bindings.borrow().iter().any(|(n, _)| n == name)
        {
            return Ok(None);
        }
        let Some((key, used)) = resource_key(name, res.as_str(), &ops) else {
            return Ok(None);
        };
        let key = format!("{}{key}", self.module);
        let Some(base) = self.resources.get(&key) else {
            return Ok(None);
        };
        let rest = &ops[used..];
        self.mark_sensitive_read(t, rest);
        let mut cur = base;
        let mut k = 0;
        while k < rest.len() {
            let next = match (rest[k], cur) {
                (_, Value::Unknown) => return Ok(Some(Value::Unknown)),
                (TraversalOperator::GetAttr(a), Value::Map(m)) => m.get(a.as_str()),
                (TraversalOperator::Index(ie), Value::List(l)) => match self.ev(ie, file)? {
                    Value::Number(n) => n.as_usize().and_then(|i| l.get(i)),
                    _ => None,
                },
                (TraversalOperator::Index(ie), Value::Map(m)) => match self.ev(ie, file)? {
                    Value::String(s) => m.get(&s),
                    _ => None,
                },
                _ => None,
            };
            match next {
                Some(v) => cur = v,
                None => break,
            }
            k += 1;
        }
        // Whatever is left (splats, or an error to report) goes the general way.
        self.apply_ops(cur.clone(), &rest[k..], t, file).map(Some)
    }

    /// Marks the evaluation sensitive when it reads a sensitive attribute of a resource
    /// (or a whole resource object that has one).
    fn mark_sensitive_read(&self, t: &hcl_edit::expr::Traversal, rest: &[&TraversalOperator]) {
        let (Some(map), Expression::Variable(root)) = (self.sensitive_attrs, &t.expr) else {
            return;
        };
        let ops: Vec<&TraversalOperator> = t.operators.iter().map(|o| o.value()).collect();
        let Some(TraversalOperator::GetAttr(name)) = ops.first() else {
            return;
        };
        let Some((key, _)) = resource_key(root.as_str(), name.as_str(), &ops) else {
            return;
        };
        let Some(attrs) = map.get(&format!("{}{key}", self.module)) else {
            return;
        };
        if attrs.is_empty() {
            return;
        }
        let attr = rest.iter().find_map(|op| match op {
            TraversalOperator::GetAttr(a) => Some(a.as_str()),
            _ => None,
        });
        // Patterns may name nested attributes (`cloud_init.password`): reading the object
        // that holds one is reading it.
        let holds = |a: &str| {
            attrs
                .iter()
                .any(|p| p == a || p.strip_prefix(a).is_some_and(|r| r.starts_with('.')))
        };
        if attr.is_none_or(holds) {
            self.sensitive.set(true);
        }
    }

    fn apply_ops(
        &self,
        mut v: Value,
        ops: &[&TraversalOperator],
        t: &hcl_edit::expr::Traversal,
        file: usize,
    ) -> R {
        for (i, op) in ops.iter().enumerate() {
            if v == Value::Unknown {
                return Ok(Value::Unknown);
            }
            v = match op {
                TraversalOperator::GetAttr(a) => match &v {
                    Value::Map(m) => match m.get(a.as_str()) {
                        Some(x) => x.clone(),
                        None => {
                            return Err(self.err(
                                format!("this object has no attribute \"{}\"", a.as_str()),
                                t,
                                file,
                            ))
                        }
                    },
                    Value::Null => {
                        return Err(self.err(
                            format!("cannot read \"{}\" of null", a.as_str()),
                            t,
                            file,
                        ))
                    }
                    other => {
                        return Err(self.err(
                            format!(
                                "cannot read attribute \"{}\" of a {}",
                                a.as_str(),
                                other.type_name()
                            ),
                            t,
                            file,
                        ))
                    }
                },
                TraversalOperator::Index(ie) => {
                    let idx = self.ev(ie, file)?;
                    index(&v, &idx).map_err(|m| self.err(m, ie, file))?
                }
                TraversalOperator::LegacyIndex(n) => {
                    index(&v, &Value::from(*n.value())).map_err(|m| self.err(m, t, file))?
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let items = match v {
                        Value::List(items) => items,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    let rest = &ops[i + 1..];
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.apply_ops(item, rest, t, file)?);
                    }
                    return Ok(Value::List(out));
                }
            };
        }
        Ok(v)
    }
}

impl funcs::Context for Scope<'_> {
    fn dir(&self) -> &std::path::Path {
        &self.cfg.dir
    }

    fn render_template(&self, text: &str, vars: BTreeMap<String, Value>) -> Result<Value, String> {
        // A template that renders a template (itself, through templatefile) would recurse
        // until the stack overflows: a few levels are allowed, then it is an error.
        thread_local! {
            static DEPTH: Cell<usize> = const { Cell::new(0) };
        }
        struct Level;
        impl Drop for Level {
            fn drop(&mut self) {
                DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
            }
        }
        if DEPTH.with(|d| d.get()) >= MAX_TEMPLATE_DEPTH {
            return Err(format!(
                "templates render templates more than {MAX_TEMPLATE_DEPTH} levels deep (does a template call templatefile on itself?)"
            ));
        }
        DEPTH.with(|d| d.set(d.get() + 1));
        let _level = Level;
        let t = hcl_edit::parser::parse_template(text)
            .map_err(|e| format!("invalid template: {}", e.message()))?;
        let (v, s, l, r) = (
            BTreeMap::new(),
            BTreeSet::new(),
            HashMap::new(),
            HashMap::new(),
        );
        let inner = Scope::new(self.cfg, &v, &s, &l, &r);
        inner.bindings.borrow_mut().extend(vars);
        match inner.template(&t, usize::MAX).map_err(|d| d.message)? {
            v @ (Value::String(_) | Value::Unknown) => Ok(v),
            // A template of one interpolation yields its value; the template functions
            // return strings.
            v => to_string(&v)
                .map(Value::String)
                .map_err(|m| format!("invalid template result: {m}")),
        }
    }
}

/// How deep templates may render templates (templatefile, templatestring).
const MAX_TEMPLATE_DEPTH: usize = 8;

fn trim_end(out: &mut String) {
    let len = out.trim_end().len();
    out.truncate(len);
}

/// Removes up to `n` leading spaces after each newline in the literals of directive bodies.
fn dedent_nested(t: &mut Template, n: usize) {
    fn lines(t: &mut Template, n: usize) {
        for el in t.iter_mut() {
            match el {
                Element::Literal(s) => {
                    let mut text = String::with_capacity(s.len());
                    for (i, part) in s.value().split('\n').enumerate() {
                        if i > 0 {
                            text.push('\n');
                            let spaces = part.len() - part.trim_start_matches(' ').len();
                            text.push_str(&part[spaces.min(n)..]);
                        } else {
                            text.push_str(part);
                        }
                    }
                    *s.value_mut() = text;
                }
                Element::Directive(d) => nested(d, n),
                Element::Interpolation(_) => {}
            }
        }
    }
    fn nested(d: &mut Directive, n: usize) {
        match d {
            Directive::If(i) => {
                lines(&mut i.if_expr.template, n);
                if let Some(e) = &mut i.else_expr {
                    lines(&mut e.template, n);
                }
            }
            Directive::For(f) => lines(&mut f.for_expr.template, n),
        }
    }
    for el in t.iter_mut() {
        if let Element::Directive(d) = el {
            nested(d, n);
        }
    }
}

/// One iteration of a for expression.
enum Step {
    Skip,
    Unknown,
    Item(Option<Value>, Value),
}

/// Pairs (key, value) of a list (index keys) or a map; `None` when unknown.
pub fn iterate(v: &Value) -> Result<Option<Vec<(Value, Value)>>, String> {
    match v {
        Value::List(items) => Ok(Some(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::from(i), x.clone()))
                .collect(),
        )),
        Value::Map(m) => Ok(Some(
            m.iter()
                .map(|(k, x)| (Value::String(k.clone()), x.clone()))
                .collect(),
        )),
        Value::Unknown => Ok(None),
        other => Err(format!("cannot iterate over a {}", other.type_name())),
    }
}

fn index(v: &Value, idx: &Value) -> R2 {
    match (v, idx) {
        (_, Value::Unknown) | (Value::Unknown, _) => Ok(Value::Unknown),
        (Value::List(items), i) => {
            let n = to_number(i)?;
            match n.as_usize().and_then(|k| items.get(k)) {
                Some(x) => Ok(x.clone()),
                None => Err(format!(
                    "index {} is out of range for a list of {} elements",
                    format_number(&n),
                    items.len()
                )),
            }
        }
        (Value::Map(m), k) => {
            let key = to_string(k)?;
            m.get(&key)
                .cloned()
                .ok_or_else(|| format!("the map has no key \"{key}\""))
        }
        (other, _) => Err(format!("cannot index a {}", other.type_name())),
    }
}

type R2 = Result<Value, String>;

fn binary(op: BinaryOperator, l: Value, r: Value) -> R2 {
    use BinaryOperator::*;
    if l == Value::Unknown || r == Value::Unknown {
        return Ok(Value::Unknown);
    }
    Ok(match op {
        Eq => Value::Bool(l == r),
        NotEq => Value::Bool(l != r),
        And => Value::Bool(to_bool(&l)? && to_bool(&r)?),
        Or => Value::Bool(to_bool(&l)? || to_bool(&r)?),
        Less | LessEq | Greater | GreaterEq => {
            let (a, b) = (to_number(&l)?, to_number(&r)?);
            Value::Bool(match op {
                Less => a < b,
                LessEq => a <= b,
                Greater => a > b,
                _ => a >= b,
            })
        }
        Plus | Minus | Mul | Div | Mod => {
            let (a, b) = (to_number(&l)?, to_number(&r)?);
            Value::Number(match op {
                Plus => a.add(&b)?,
                Minus => a.sub(&b)?,
                Mul => a.mul(&b)?,
                Div => a.div(&b)?,
                _ => a.rem(&b)?,
            })
        }
    })
}

/// A number literal from its source text, exactly (hcl-edit's value went through `f64`
/// for anything but a `u64`); the value hcl-edit parsed when the text is not a plain
/// number (a comment between `-` and the digits).
pub(crate) fn literal_number(n: &hcl_edit::Formatted<hcl_edit::Number>) -> Number {
    let exact = n.as_repr().and_then(|r| {
        let t: &str = r;
        let (neg, body) = match t.trim().strip_prefix('-') {
            Some(rest) => (true, rest.trim()),
            None => (false, t.trim()),
        };
        Number::parse(body)
            .ok()
            .map(|x| if neg { x.neg() } else { x })
    });
    exact.unwrap_or_else(|| Number::from_f64(n.as_f64().unwrap_or(0.0)))
}

/// The resource a traversal reads (`type.name`, or `data.type.name`) and how many of its
/// operators name it.
fn resource_key(root: &str, first: &str, ops: &[&TraversalOperator]) -> Option<(String, usize)> {
    if root != "data" {
        return Some((format!("{root}.{first}"), 1));
    }
    match ops.get(1) {
        Some(TraversalOperator::GetAttr(n)) => Some((format!("data.{first}.{}", n.as_str()), 2)),
        _ => None,
    }
}

/// Says whether a resource's attribute holds a list (or tuple) rather than a set, from its
/// type's schema: called with the resource key (`TYPE.NAME`, `data.TYPE.NAME`) and the
/// attribute's name; `None` when it cannot tell.
pub type AttrIsList<'a> = &'a dyn Fn(&str, &str) -> Option<bool>;

/// Whether a list value that `e` evaluates to is a list or tuple in Terraform's type system
/// rather than a set (values do not keep the difference). `for_each` takes a set of strings
/// but not a list, as in Terraform. Only what is certain counts: a resource attribute is a
/// list when `attr_is_list` says so from its schema; a function whose result may be either
/// is taken to be a set.
pub fn is_list_not_set(cfg: &Config, e: &Expression, attr_is_list: AttrIsList<'_>) -> bool {
    is_list_at(cfg, e, 0, attr_is_list)
}

fn is_list_at(cfg: &Config, e: &Expression, depth: usize, attr: AttrIsList<'_>) -> bool {
    if depth > 32 {
        return false;
    }
    match e {
        Expression::Array(_) => true,
        Expression::ForExpr(f) => f.key_expr.is_none(),
        Expression::Parenthesis(p) => is_list_at(cfg, p.inner(), depth + 1, attr),
        Expression::Conditional(c) => {
            is_list_at(cfg, &c.true_expr, depth + 1, attr)
                && is_list_at(cfg, &c.false_expr, depth + 1, attr)
        }
        Expression::FuncCall(call) => matches!(
            call.name.name.as_str(),
            "tolist"
                | "concat"
                | "split"
                | "keys"
                | "values"
                | "distinct"
                | "flatten"
                | "range"
                | "compact"
                | "sort"
                | "reverse"
                | "slice"
                | "chunklist"
                | "formatlist"
                | "regexall"
                | "matchkeys"
                | "coalescelist"
        ),
        Expression::Traversal(t) if t.operators.len() > 1 => {
            // TYPE.NAME[KEY].ATTR or data.TYPE.NAME.ATTR: what the schema says ATTR is.
            let Expression::Variable(root) = &t.expr else {
                return false;
            };
            let ops: Vec<&TraversalOperator> = t.operators.iter().map(|o| o.value()).collect();
            let (Some(TraversalOperator::GetAttr(first)), Some(TraversalOperator::GetAttr(last))) =
                (ops.first(), ops.last())
            else {
                return false;
            };
            if ["var", "local", "each", "count", "path", "module", "self"].contains(&root.as_str())
            {
                return false;
            }
            match resource_key(root.as_str(), first.as_str(), &ops) {
                Some((key, used)) if ops.len() > used => attr(&key, last.as_str()).unwrap_or(false),
                _ => false,
            }
        }
        Expression::Traversal(t) if t.operators.len() == 1 => {
            let Expression::Variable(root) = &t.expr else {
                return false;
            };
            let Some(TraversalOperator::GetAttr(name)) = t.operators.first().map(|o| o.value())
            else {
                return false;
            };
            match root.as_str() {
                "local" => cfg
                    .locals
                    .get(name.as_str())
                    .is_some_and(|l| is_list_at(cfg, &l.expr, depth + 1, attr)),
                "var" => match cfg.variables.get(name.as_str()).map(|v| v.ty.as_ref()) {
                    // No declared type: a list given as its value is a tuple.
                    Some(None) => true,
                    Some(Some(ty)) => matches!(
                        crate::types::parse(&ty.expr, &|_| Err(String::new())),
                        Ok(crate::types::Type::List(_) | crate::types::Type::Tuple(_))
                    ),
                    None => false,
                },
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates `src` with `var.n = 3`, `var.names = ["a", "b"]` and `var.later` unknown,
    /// and compares the result's HCL rendering (or the error message) with `expect`.
    fn check(src: &str, expect: &str) {
        let cfg = Config::default();
        let mut vars = BTreeMap::new();
        vars.insert("n".to_string(), Value::from(3i64));
        vars.insert(
            "names".to_string(),
            Value::List(vec!["a".into(), "b".into()]),
        );
        vars.insert("later".to_string(), Value::Unknown);
        let (sens, locals, res) = (BTreeSet::new(), HashMap::new(), HashMap::new());
        let scope = Scope::new(&cfg, &vars, &sens, &locals, &res);
        let expr = hcl_edit::parser::parse_expr(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let got = match scope.eval(&Expr { expr, file: 0 }) {
            Ok(v) => v.to_string(),
            Err(d) => format!("error: {}", d.message),
        };
        assert_eq!(got, expect, "for {src}");
    }

    #[test]
    fn expressions() {
        check("1 + var.n * 2", "7");
        check("\"${var.n} items\"", "\"3 items\"");
        check("var.n > 2 ? \"big\" : \"small\"", "\"big\"");
        check("[for s in var.names : upper(s)]", "[\"A\", \"B\"]");
        check("{for i, s in var.names : s => i}", "{ a = 0, b = 1 }");
        check("[for s in var.names : s if s != \"a\"]", "[\"b\"]");
        check(
            "{for s in [\"x\", \"y\", \"x\"] : s => 1...}",
            "{ x = [1, 1], y = [1] }",
        );
        check("[{a = 1}, {a = 2}][*].a", "[1, 2]");
        check("var.names[1]", "\"b\"");
        check("!true || false", "false");
        check("-var.n", "-3");
        check("\"5\" + 1", "6");
        check("\"%{if var.n == 3}three%{else}other%{endif}\"", "\"three\"");
        check("\"%{for s in var.names}<${s}>%{endfor}\"", "\"<a><b>\"");
    }

    #[test]
    fn unknowns_propagate() {
        check("var.later", "(known after apply)");
        check("\"x-${var.later}\"", "(known after apply)");
        check("var.later + 1", "(known after apply)");
        check("upper(var.later)", "(known after apply)");
        check("false && var.later", "false");
        check("var.later ? 1 : 2", "(known after apply)");
        check("[for s in var.later : s]", "(known after apply)");
    }

    #[test]
    fn strip_markers_and_heredoc_dedent() {
        check("\"a  ${~ \"b\" ~}  c\"", "\"abc\"");
        check(
            "\"%{ for s in var.names ~}\n  ${s}\n%{ endfor ~}\"",
            "\"a\\nb\\n\"",
        );
        check(
            "<<-EOT\n    head\n    %{ for s in var.names ~}\n    - ${s}\n    %{ endfor ~}\n  EOT",
            "\"head\\n- a\\n- b\\n\"",
        );
        check("<<EOT\n  kept ${var.n}\nEOT", "\"  kept 3\\n\"");
    }

    #[test]
    fn errors_name_the_problem() {
        check("var.nope", "error: no variable named \"nope\" is declared");
        check(
            "var.names[5]",
            "error: index 5 is out of range for a list of 2 elements",
        );
        check("1 / 0", "error: division by zero");
        check(
            "nosuch(1)",
            "error: nosuch(): there is no function named \"nosuch\"",
        );
        check(
            "length(1)",
            "error: length(): argument must be a string, a collection type, or a structural type",
        );
        check("{a = 1}.b", "error: this object has no attribute \"b\"");
        check(
            "count.index",
            "error: count.index is only valid in a resource with count",
        );
    }
}
