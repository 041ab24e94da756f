//! A loaded configuration: its files, variable values and dependency graph.

use ballast_lang::config::{self, Config};
use ballast_lang::diag::Diags;
use ballast_lang::eval::Scope;
use ballast_lang::graph::{Graph, Node};
use ballast_lang::vars::{VarInputs, Vars};
use ballast_sdk::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The loaded configuration, variables and graph of one directory.
pub struct Workspace {
    pub cfg: Config,
    pub vars: Vars,
    pub graph: Graph,
}

/// What is sensitive: attributes per resource (`type.name`), and locals.
#[derive(Debug, Default)]
pub struct Secrets {
    pub attrs: HashMap<String, BTreeSet<String>>,
    pub locals: BTreeSet<String>,
}

impl Workspace {
    /// Loads `dir`'s configuration with the given variable inputs (the caller reads the
    /// environment and passes what it found in `inputs.env`).
    pub fn load(dir: &Path, inputs: &VarInputs) -> Result<Workspace, Diags> {
        let mut cfg = config::load(dir)?;
        let vars = ballast_lang::vars::resolve(&mut cfg, inputs)?;
        ballast_lang::modules::expand(&mut cfg, &vars)?;
        let graph = Graph::build(&cfg)?;
        Ok(Workspace { cfg, vars, graph })
    }

    /// [`Workspace::load`] for `validate`: the graph's errors (undeclared names, function
    /// calls, cycles) are returned beside the workspace rather than instead of it, so that
    /// validation reports them with everything else it finds.
    pub fn load_for_validate(
        dir: &Path,
        inputs: &VarInputs,
    ) -> Result<(Workspace, Vec<ballast_lang::diag::Diag>), Diags> {
        let mut cfg = config::load(dir)?;
        let vars = ballast_lang::vars::resolve(&mut cfg, inputs)?;
        ballast_lang::modules::expand(&mut cfg, &vars)?;
        let (graph, problems) = match Graph::build(&cfg) {
            Ok(g) => (g, Vec::new()),
            Err(d) => (Graph::default(), d.0),
        };
        Ok((Workspace { cfg, vars, graph }, problems))
    }

    /// A workspace whose variables are not resolved (for `graph`, which needs none).
    pub fn unresolved(dir: &Path) -> Result<Workspace, Diags> {
        let mut cfg = config::load(dir)?;
        let vars = Vars::default();
        ballast_lang::modules::expand(&mut cfg, &vars)?;
        let graph = Graph::build(&cfg)?;
        Ok(Workspace { cfg, vars, graph })
    }

    /// An evaluation scope over this workspace's variables and the given values, in the
    /// root module.
    pub fn scope<'a>(
        &'a self,
        locals: &'a HashMap<String, Value>,
        values: &'a HashMap<String, Value>,
        secrets: Option<&'a Secrets>,
    ) -> Scope<'a> {
        self.scope_in("", locals, values, secrets)
    }

    /// [`Workspace::scope`] in a module instance (`module.net["a"].`).
    pub fn scope_in<'a>(
        &'a self,
        module: &'a str,
        locals: &'a HashMap<String, Value>,
        values: &'a HashMap<String, Value>,
        secrets: Option<&'a Secrets>,
    ) -> Scope<'a> {
        let mut scope = Scope::new(
            &self.cfg,
            &self.vars.values,
            &self.vars.sensitive,
            locals,
            values,
        );
        scope.module = module;
        scope.sensitive_attrs = secrets.map(|s| &s.attrs);
        scope.sensitive_locals = secrets.map(|s| &s.locals);
        scope
    }

    /// Evaluates a value node of the graph (a local, a module's input variable or a
    /// module's output) into `locals`, under its key; `None` for other nodes (resources,
    /// the root's outputs). A sensitive result is recorded in `secrets`.
    pub fn eval_value_node(
        &self,
        node: &Node,
        locals: &mut HashMap<String, Value>,
        values: &HashMap<String, Value>,
        secrets: &mut Secrets,
    ) -> Option<Result<(), Diags>> {
        let cfg = &self.cfg;
        let (key, result) = match node {
            Node::Local(key) => {
                let scope = self.scope_in(cfg.module_of(key), locals, values, Some(secrets));
                let r = scope
                    .eval(&cfg.locals[key])
                    .map(|v| (v, scope.take_sensitive()));
                (key, r.map_err(Diags::from))
            }
            Node::Var(key) => {
                let mv = &cfg.module_vars[key];
                let mut scope = self.scope_in(&mv.caller, locals, values, Some(secrets));
                scope.count_index = mv.count_index;
                scope.each = mv.each.clone();
                let raw = match (&mv.value, &mv.variable.default) {
                    (Some(e), _) | (None, Some(e)) => scope.eval(e),
                    (None, None) => Ok(Value::Null),
                };
                let sensitive = scope.take_sensitive() || mv.variable.sensitive;
                drop(scope);
                let r = raw
                    .and_then(|v| ballast_lang::modules::convert_var(cfg, key, v))
                    .map_err(Diags::from)
                    .and_then(|v| {
                        // Its validations see the value, in the module.
                        let mut with = locals.clone();
                        with.insert(key.clone(), v.clone());
                        let scope = self.scope_in(cfg.module_of(key), &with, values, None);
                        let failed = scope.failed_conditions(
                            &mv.variable.validations,
                            &format!("invalid value for {key}"),
                        );
                        if failed.is_empty() {
                            Ok(v)
                        } else {
                            Err(Diags(failed))
                        }
                    });
                (key, r.map(|v| (v, sensitive)))
            }
            Node::Output(key) if !cfg.module_of(key).is_empty() => {
                let o = &cfg.outputs[key];
                let scope = self.scope_in(&o.module, locals, values, Some(secrets));
                let failed =
                    scope.failed_conditions(&o.preconditions, &format!("precondition of {key}"));
                let r = if !failed.is_empty() {
                    Err(Diags(failed))
                } else {
                    match scope.eval(&o.value) {
                        Ok(_) if scope.take_sensitive() && !o.sensitive => Err(Diags::from(
                            ballast_lang::diag::Diag::at(
                                format!("{key} uses a sensitive value, so it must say so"),
                                &cfg.sources,
                                &o.value.span(),
                            )
                            .with_help(
                                "add sensitive = true to the output block, as Terraform requires",
                            ),
                        )),
                        Ok(v) => Ok((v, o.sensitive)),
                        Err(d) => Err(Diags::from(d)),
                    }
                };
                (key, r)
            }
            _ => return None,
        };
        Some(match result {
            Ok((v, sensitive)) => {
                if sensitive {
                    secrets.locals.insert(key.clone());
                }
                locals.insert(key.clone(), v);
                Ok(())
            }
            Err(d) => {
                locals.insert(key.clone(), Value::Unknown);
                Err(d)
            }
        })
    }
}
