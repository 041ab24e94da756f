//! The canonical layout of configuration files. Indentation is set from the nesting (two
//! spaces per level), trailing blanks go, and the `=` of consecutive one-line attributes are
//! aligned. Comments and everything inside strings and heredocs are kept as they are.
//! [`format_text`] is pure; the `fmt` command (in the binary) decides what to write.

/// One output line: indentation level, text, kept verbatim (heredoc body), and whether it
/// opens brackets that close on a later line.
struct Line {
    depth: usize,
    text: String,
    verbatim: bool,
    opens: bool,
}

/// Reformats one file's text.
pub fn format_text(text: &str) -> String {
    let mut lines: Vec<Line> = Vec::new();
    // Open brackets per indentation level: a line opening several brackets indents once.
    let mut levels: Vec<usize> = Vec::new();
    let mut heredoc: Option<String> = None;
    for raw in text.lines() {
        if let Some(end) = &heredoc {
            lines.push(Line {
                depth: 0,
                text: raw.to_string(),
                verbatim: true,
                opens: false,
            });
            if raw.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let normalized = normalize_line(raw.trim());
        let (opens, closes_first, closes_total, doc) = scan(&normalized);
        let depth = levels_after_closing(&levels, closes_first).len();
        levels = levels_after_closing(&levels, closes_total);
        if opens > 0 {
            levels.push(opens);
        }
        lines.push(Line {
            depth,
            text: normalized,
            verbatim: false,
            opens: opens > 0 || doc.is_some(),
        });
        heredoc = doc;
    }
    align(&mut lines);
    let mut out = String::new();
    let mut blank = 0;
    for l in lines {
        if l.verbatim {
            out.push_str(&l.text);
            out.push('\n');
            continue;
        }
        if l.text.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
            out.push('\n');
            continue;
        }
        blank = 0;
        out.push_str(&"  ".repeat(l.depth));
        out.push_str(&l.text);
        out.push('\n');
    }
    let trimmed = out.trim_end_matches('\n');
    format!("{}\n", trimmed.trim_start_matches('\n'))
}

/// The indentation levels left after `closes` closing brackets.
fn levels_after_closing(levels: &[usize], mut closes: usize) -> Vec<usize> {
    let mut out = levels.to_vec();
    while closes > 0 {
        match out.last_mut() {
            Some(top) if *top <= closes => {
                closes -= *top;
                out.pop();
            }
            Some(top) => {
                *top -= closes;
                closes = 0;
            }
            None => break,
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    Word,
    Str,
    Punct,
    /// A comment or a heredoc opener: the rest of the line, kept as it is.
    Rest,
}

/// The end of a string literal starting at `start` (a `"`), past nested interpolations.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'$' | b'%' if b.get(i + 1) == Some(&b'{') => i = interp_end(b, i + 2),
            _ => i += 1,
        }
    }
    b.len()
}

fn interp_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i);
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// Splits a line into tokens, each with whether whitespace preceded it.
fn tokenize(line: &str) -> Vec<(Tok, String, bool)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' {
            space = true;
            i += 1;
            continue;
        }
        let start = i;
        let kind = if c == b'#'
            || (c == b'/' && matches!(b.get(i + 1), Some(b'/') | Some(b'*')))
            || (c == b'<' && b.get(i + 1) == Some(&b'<'))
        {
            i = b.len();
            Tok::Rest
        } else if c == b'"' {
            i = string_end(b, i);
            Tok::Str
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || matches!(b[i], b'_' | b'.' | b'-')
                    || b[i] >= 0x80)
            {
                i += 1;
            }
            Tok::Word
        } else {
            let two = line.get(i..i + 2).unwrap_or("");
            let three = line.get(i..i + 3).unwrap_or("");
            i += if three == "..." {
                3
            } else if ["==", "!=", "<=", ">=", "=>", "&&", "||"].contains(&two) {
                2
            } else {
                1
            };
            Tok::Punct
        };
        out.push((kind, line[start..i].to_string(), space));
        space = false;
    }
    out
}

/// Canonical spacing inside one line: single spaces, spaces around `=` and `=>`, a space
/// after commas and inside one-line `{ ... }`, none inside `(...)` and `[...]`.
fn normalize_line(line: &str) -> String {
    let toks = tokenize(line);
    let mut out = String::with_capacity(line.len());
    for (i, (kind, text, spaced)) in toks.iter().enumerate() {
        if i > 0 {
            let (pk, prev, _) = &toks[i - 1];
            let space = space_between(*pk, prev, *kind, text, *spaced);
            if space {
                out.push(' ');
            }
        }
        out.push_str(text);
    }
    out
}

/// Whether one space goes between two tokens (`spaced`: the source had one).
fn space_between(pk: Tok, p: &str, kind: Tok, t: &str, spaced: bool) -> bool {
    // A trailing comment, and both sides of `=`, `=>`, `:`, `?`, and after a comma.
    if (kind == Tok::Rest && t.starts_with(['#', '/'])) || matches!(t, "=" | "=>" | ":" | "?") {
        return true;
    }
    if matches!(p, "=" | "=>" | ":" | "?" | ",") {
        return !matches!(t, ")" | "]");
    }
    // Nothing inside (...) and [...], before a comma, or before `...`.
    if matches!(t, "," | ")" | "]" | "...") || matches!(p, "(" | "[") {
        return false;
    }
    // One-line objects: `{ a = 1 }`, and `{}` stays empty.
    if t == "{" {
        return !matches!(p, "(" | "[");
    }
    if p == "{" {
        return t != "}";
    }
    if t == "}" {
        return true;
    }
    // Calls and indexes hug their name: `max(1)`, `var.l[0]`.
    if (t == "(" && pk == Tok::Word) || (t == "[" && (pk == Tok::Word || matches!(p, "]" | ")"))) {
        return false;
    }
    spaced
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

/// Aligns `=` across runs of consecutive one-line attributes at the same depth (an
/// attribute whose value continues on later lines ends the run, as in Terraform).
fn align(lines: &mut [Line]) {
    let key_of = |l: &Line| -> Option<usize> {
        if l.verbatim {
            return None;
        }
        let eq = l.text.find('=')?;
        let key = l.text[..eq].trim_end();
        let ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '"')
            && !l.text[eq..].starts_with("==")
            && !l.text[eq..].starts_with("=>");
        ok.then_some(key.len())
    };
    let respace = |l: &mut Line, width: usize| {
        if let Some(eq) = l.text.find('=') {
            let key = l.text[..eq].trim_end().to_string();
            let rest = l.text[eq + 1..].trim_start().to_string();
            l.text = format!("{key:width$} = {rest}");
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let Some(_) = key_of(&lines[i]) else {
            i += 1;
            continue;
        };
        if lines[i].opens {
            let w = key_of(&lines[i]).unwrap_or(0);
            respace(&mut lines[i], w);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < lines.len()
            && !lines[j].opens
            && lines[j].depth == lines[i].depth
            && key_of(&lines[j]).is_some()
        {
            j += 1;
        }
        let width = lines[i..j].iter().filter_map(key_of).max().unwrap_or(0);
        for l in &mut lines[i..j] {
            respace(l, width);
        }
        i = j.max(i + 1);
    }
}

/// Formats every `.hcl` file of `dir`; with `check`, changes nothing and exits 3 if any would change.
#[cfg(test)]
mod tests {
    use super::format_text;

    fn check(input: &str, expect: &str) {
        assert_eq!(format_text(input), expect, "input:\n{input}");
    }

    #[test]
    fn the_examples_are_already_canonical() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
        for dir in std::fs::read_dir(root).expect("examples") {
            let dir = dir.expect("entry").path();
            for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = f.path();
                if p.extension().and_then(|e| e.to_str()) == Some("hcl") {
                    let text = std::fs::read_to_string(&p).expect("read");
                    assert_eq!(
                        format_text(&text),
                        text,
                        "{} is not in the canonical layout",
                        p.display()
                    );
                }
            }
        }
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
