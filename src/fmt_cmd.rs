//! `fmt`: rewrites the configuration files in the canonical layout
//! ([`ballast_lang::format::format_text`]). A file that does not parse is reported and left
//! alone; a file whose formatted text would parse to a different AST is never written.

use crate::ui::Ui;
use anyhow::{Context, Result};
use ballast_lang::format::format_text;
use std::path::Path;

pub fn run(dir: &Path, check: bool, ui: &Ui) -> Result<i32> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("hcl"))
        .collect();
    files.sort();
    let mut changed = Vec::new();
    let mut failed = false;
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if let Err(e) = hcl_edit::parser::parse_body(&text) {
            ui.error(&ballast_lang::config::parse_error(&name, &e).to_string());
            failed = true;
            continue;
        }
        let formatted = format_text(&text);
        if formatted != text {
            let same = match (
                hcl_edit::parser::parse_body(&text),
                hcl_edit::parser::parse_body(&formatted),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                ui.error(&format!(
                    "{name}: could not be formatted safely; left as it is"
                ));
                failed = true;
                continue;
            }
            if !check {
                std::fs::write(&path, &formatted)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            changed.push(name);
        }
    }
    if !changed.is_empty() {
        ui.out(&changed.join("\n"));
    }
    Ok(if failed {
        1
    } else if check && !changed.is_empty() {
        3
    } else {
        0
    })
}
