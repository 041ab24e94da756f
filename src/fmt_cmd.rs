//! `fmt`: rewrites the configuration files in the canonical layout
//! ([`ballast_lang::format::format_text`]). A file that does not parse is reported and left
//! alone; a file whose formatted text would parse to a different AST is never written.
//!
//! As Terraform's: the files that change are listed; `-check` writes nothing and exits 3
//! when any would change; `-diff` prints a unified diff of each change; `-recursive` also
//! formats the files of subdirectories (hidden ones, such as `.ballast` or `.git`, are left
//! out). The flags combine: `-check -diff` shows what would change and writes nothing.

use crate::ui::Ui;
use anyhow::{Context, Result};
use ballast_lang::format::format_text;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub check: bool,
    pub diff: bool,
    pub recursive: bool,
}

/// The files `fmt` formats: configuration (`*.hcl`, `*.tf`) and variables files
/// (`*.vars.hcl`, `*.tfvars`).
fn formattable(name: &str) -> bool {
    name.ends_with(".hcl") || name.ends_with(".tf") || name.ends_with(".tfvars")
}

/// The files to format under `dir`, sorted, descending into subdirectories when asked.
fn files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if path.is_dir() {
            if recursive && !name.starts_with('.') {
                files(&path, recursive, out)?;
            }
        } else if formattable(&name) && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

pub fn run(dir: &Path, flags: Flags, ui: &Ui) -> Result<i32> {
    let mut found = Vec::new();
    files(dir, flags.recursive, &mut found)?;
    let mut changed = 0usize;
    let mut failed = false;
    for path in found {
        // Named relative to the directory, as Terraform lists them (sub/main.tf).
        let name = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if let Err(e) = hcl_edit::parser::parse_body(&text) {
            ui.error(&ballast_lang::config::parse_error(&name, &e).to_string());
            failed = true;
            continue;
        }
        let formatted = format_text(&text);
        if formatted == text {
            continue;
        }
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
        if !flags.check {
            std::fs::write(&path, &formatted)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        changed += 1;
        ui.out(&name);
        if flags.diff {
            ui.out(&unified_diff(&name, &text, &formatted));
        }
    }
    Ok(if failed {
        1
    } else if flags.check && changed > 0 {
        3
    } else {
        0
    })
}

/// A unified diff (`--- old/NAME`, `+++ new/NAME`, hunks with three lines of context), as
/// `terraform fmt -diff` prints it.
pub fn unified_diff(name: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = line_ops(&a, &b);
    let mut out = format!("--- old/{name}\n+++ new/{name}\n");
    const CONTEXT: usize = 3;
    // Hunks: runs of changes with their context, merged when the context overlaps.
    let changes: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(..)))
        .map(|(i, _)| i)
        .collect();
    let mut i = 0;
    while i < changes.len() {
        let start = changes[i].saturating_sub(CONTEXT);
        let mut end = changes[i];
        while i + 1 < changes.len() && changes[i + 1] <= end + 2 * CONTEXT + 1 {
            i += 1;
            end = changes[i];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let (mut a_start, mut b_start) = (None, None);
        let (mut a_len, mut b_len) = (0, 0);
        let mut body = String::new();
        for op in hunk {
            match op {
                Op::Same(x, y) => {
                    a_start.get_or_insert(*x);
                    b_start.get_or_insert(*y);
                    a_len += 1;
                    b_len += 1;
                    body.push_str(&format!(" {}\n", a[*x]));
                }
                Op::Del(x, y) => {
                    a_start.get_or_insert(*x);
                    b_start.get_or_insert(*y);
                    a_len += 1;
                    body.push_str(&format!("-{}\n", a[*x]));
                }
                Op::Ins(x, y) => {
                    a_start.get_or_insert(*x);
                    b_start.get_or_insert(*y);
                    b_len += 1;
                    body.push_str(&format!("+{}\n", b[*y]));
                }
            }
        }
        // Line numbers are 1-based; an empty side starts at the line before.
        let at = |start: Option<usize>, len: usize| {
            let s = start.unwrap_or(0);
            if len == 0 {
                format!("{s},0")
            } else {
                format!("{},{len}", s + 1)
            }
        };
        out.push_str(&format!(
            "@@ -{} +{} @@\n{body}",
            at(a_start, a_len),
            at(b_start, b_len)
        ));
        i += 1;
    }
    out.trim_end_matches('\n').to_string()
}

/// One line of an edit script, with the positions in the old and new text it stands at.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Same(usize, usize),
    Del(usize, usize),
    Ins(usize, usize),
}

/// The shortest edit script between two lists of lines (longest common subsequence).
/// Configuration files are small; past 4,000 lines on both sides, the common prefix and
/// suffix are kept and the middle is replaced as a whole.
fn line_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops: Vec<Op> = (0..prefix).map(|i| Op::Same(i, i)).collect();
    if am.len().saturating_mul(bm.len()) > 16_000_000 {
        ops.extend((0..am.len()).map(|i| Op::Del(prefix + i, prefix)));
        ops.extend((0..bm.len()).map(|j| Op::Ins(prefix + am.len(), prefix + j)));
    } else {
        // lcs[i][j]: the longest common subsequence of am[i..] and bm[j..].
        let w = bm.len() + 1;
        let mut lcs = vec![0u32; (am.len() + 1) * w];
        for i in (0..am.len()).rev() {
            for j in (0..bm.len()).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < am.len() || j < bm.len() {
            if i < am.len() && j < bm.len() && am[i] == bm[j] {
                ops.push(Op::Same(prefix + i, prefix + j));
                i += 1;
                j += 1;
            } else if i < am.len() && (j == bm.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])
            {
                // Deletions before insertions, as diff(1) prints them.
                ops.push(Op::Del(prefix + i, prefix + j));
                i += 1;
            } else {
                ops.push(Op::Ins(prefix + i, prefix + j));
                j += 1;
            }
        }
    }
    let (a_end, b_end) = (a.len() - suffix, b.len() - suffix);
    ops.extend((0..suffix).map(|k| Op::Same(a_end + k, b_end + k)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_has_hunks_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nB\nc\nd\ne\nf\ng\nH\n";
        assert_eq!(
            unified_diff("x.tf", old, new),
            "--- old/x.tf\n+++ new/x.tf\n@@ -1,8 +1,8 @@\n a\n-b\n+B\n c\n d\n e\n f\n g\n-h\n+H"
        );
        let d = unified_diff(
            "x.tf",
            "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n",
            "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n",
        );
        assert!(d.ends_with("@@ -8,3 +8,4 @@\n 8\n 9\n 10\n+11"), "{d}");
    }
}
