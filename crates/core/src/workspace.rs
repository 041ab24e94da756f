//! A loaded configuration: its files, variable values and dependency graph.

use ballast_lang::config::{self, Config};
use ballast_lang::diag::Diags;
use ballast_lang::eval::Scope;
use ballast_lang::graph::Graph;
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
        let graph = Graph::build(&cfg)?;
        Ok(Workspace { cfg, vars, graph })
    }

    /// A workspace whose variables are not resolved (for `graph`, which needs none).
    pub fn unresolved(dir: &Path) -> Result<Workspace, Diags> {
        let cfg = config::load(dir)?;
        let graph = Graph::build(&cfg)?;
        Ok(Workspace {
            cfg,
            vars: Vars::default(),
            graph,
        })
    }

    /// An evaluation scope over this workspace's variables and the given values.
    pub fn scope<'a>(
        &'a self,
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
        scope.sensitive_attrs = secrets.map(|s| &s.attrs);
        scope.sensitive_locals = secrets.map(|s| &s.locals);
        scope
    }
}
