//! `fmt`: the canonical layout. Files are parsed first (a file that does not parse is
//! reported and left alone); then indentation is set from the nesting (two spaces per level),
//! trailing blanks go, and the `=` of consecutive one-line attributes are aligned.
//! Comments and everything inside strings and heredocs are kept as they are.

use crate::ui::Ui;
use anyhow::{Context, Result};
use std::path::Path;

/// Reformats one file's text.
pub fn format_text(text: &str) -> String {
    let mut lines: Vec<(usize, String, bool)> = Vec::new(); // (depth, content, verbatim)
    let mut depth: usize = 0;
    let mut heredoc: Option<String> = None;
    for raw in text.lines() {
        if let Some(end) = &heredoc {
            lines.push((0, raw.to_string(), true));
            if raw.trim() == end {
                heredoc = None;
                // Closing markers of indented heredocs keep their own indentation.
            }
            continue;
        }
        let line = raw.trim();
        let (opens, closes_first, closes_total, doc) = scan(line);
        let this_depth = depth.saturating_sub(closes_first);
        lines.push((this_depth, line.to_string(), false));
        depth = (depth + opens).saturating_sub(closes_total);
        heredoc = doc;
    }
    align(&mut lines);
    let mut out = String::new();
    let mut blank = 0;
    for (d, l, verbatim) in lines {
        if verbatim {
            out.push_str(&l);
            out.push('\n');
            continue;
        }
        if l.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
            out.push('\n');
            continue;
        }
        blank = 0;
        out.push_str(&"  ".repeat(d));
        out.push_str(&l);
        out.push('\n');
    }
    let trimmed = out.trim_end_matches('\n');
    format!("{}\n", trimmed.trim_start_matches('\n'))
}

/// Counts brackets outside strings and comments: (opened, closed before any open, closed in
/// total, heredoc delimiter started on this line).
fn scan(line: &str) -> (usize, usize, usize, Option<String>) {
    let (mut opens, mut closes, mut leading_closes) = (0usize, 0usize, 0usize);
    let mut seen_open = false;
    let mut in_str = false;
    let mut interp = 0usize;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if in_str {
            match c {
                '\\' => i += 1,
                '"' if interp == 0 => in_str = false,
                '$' | '%' if b.get(i + 1) == Some(&b'{') => {
                    interp += 1;
                    i += 1;
                }
                '}' if interp > 0 => interp -= 1,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            '"' => in_str = true,
            '#' => break,
            '/' if b.get(i + 1) == Some(&b'/') => break,
            '<' if b.get(i + 1) == Some(&b'<') => {
                let rest = line[i + 2..].trim_start_matches('-');
                let delim: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !delim.is_empty() {
                    return (opens, leading_closes, closes, Some(delim));
                }
            }
            '{' | '[' | '(' => {
                opens += 1;
                seen_open = true;
            }
            '}' | ']' | ')' => {
                if opens > 0 {
                    opens -= 1;
                } else {
                    closes += 1;
                    if !seen_open {
                        leading_closes += 1;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (opens, leading_closes, closes, None)
}

/// Aligns `=` across runs of consecutive single-line attributes at the same depth.
fn align(lines: &mut [(usize, String, bool)]) {
    let key_of = |l: &str| -> Option<usize> {
        let eq = l.find('=')?;
        let key = l[..eq].trim_end();
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '"')
            && !l[eq..].starts_with("==");
        ok.then_some(key.len())
    };
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        while j < lines.len()
            && !lines[j].2
            && lines[j].0 == lines[i].0
            && key_of(&lines[j].1).is_some()
        {
            j += 1;
        }
        if j > i + 1 {
            let width = lines[i..j]
                .iter()
                .filter_map(|l| key_of(&l.1))
                .max()
                .unwrap_or(0);
            for l in &mut lines[i..j] {
                if let Some(eq) = l.1.find('=') {
                    let key = l.1[..eq].trim_end().to_string();
                    let rest = l.1[eq + 1..].trim_start().to_string();
                    l.1 = format!("{key:width$} = {rest}");
                }
            }
        } else if j == i + 1 {
            if let Some(eq) = lines[i].1.find('=') {
                let key = lines[i].1[..eq].trim_end().to_string();
                let rest = lines[i].1[eq + 1..].trim_start().to_string();
                lines[i].1 = format!("{key} = {rest}");
            }
        }
        i = j.max(i + 1);
    }
}

/// Formats every `.hcl` file of `dir`; with `check`, changes nothing and exits 3 if any would change.
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
            ui.error(&crate::config::parse_error(&name, &e).to_string());
            failed = true;
            continue;
        }
        let formatted = format_text(&text);
        if formatted != text {
            if hcl_edit::parser::parse_body(&formatted).is_err() {
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

#[cfg(test)]
mod tests {
    use super::format_text;

    fn check(input: &str, expect: &str) {
        assert_eq!(format_text(input), expect, "input:\n{input}");
    }

    #[test]
    fn canonical_layout() {
        check(
            "resource \"a\" \"b\" {\ninput=1\n    long_name   = \"x\" # keep\n  nested {\n x = [\n1,\n]\n}\n}\n\n\n",
            "resource \"a\" \"b\" {\n  input     = 1\n  long_name = \"x\" # keep\n  nested {\n    x = [\n      1,\n    ]\n  }\n}\n",
        );
        check(
            "a = \"{ not a brace\"\nb = 2\n",
            "a = \"{ not a brace\"\nb = 2\n",
        );
        check(
            "x = <<EOT\n  keep {\nEOT\ny = 1\n",
            "x = <<EOT\n  keep {\nEOT\ny = 1\n",
        );
    }
}
