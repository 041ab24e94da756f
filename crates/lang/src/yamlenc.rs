//! `yamlencode` with Terraform's exact output style: that of go-cty-yaml, which drives the
//! libyaml emitter with every string double-quoted (keys too), strings holding a newline as
//! literal block scalars, block sequences not indented under their key, two-space indents,
//! long double-quoted strings folded at 80 columns, and `...` after a lone plain scalar.

use ballast_sdk::{format_number, Value};

const WIDTH: usize = 80;
const INDENT: usize = 2;

pub fn encode(v: &Value) -> Result<String, String> {
    let mut out = String::new();
    match v {
        Value::List(l) if !l.is_empty() => seq(l, 0, false, &mut out)?,
        Value::Map(m) if !m.is_empty() => map(m, 0, false, &mut out)?,
        _ => {
            scalar(v, INDENT, false, &mut out)?;
            out.push('\n');
            if matches!(v, Value::Null | Value::Bool(_) | Value::Number(_)) {
                out.push_str("...\n");
            }
        }
    }
    Ok(out)
}

fn column(out: &str) -> usize {
    out.rsplit('\n').next().map_or(0, |l| l.chars().count())
}

/// A block mapping whose keys sit at `indent`; `inline`: the first key continues a `- ` line.
fn map(
    m: &std::collections::BTreeMap<String, Value>,
    indent: usize,
    inline: bool,
    out: &mut String,
) -> Result<(), String> {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(inline && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        double_quoted(k, indent + INDENT, false, out);
        out.push(':');
        match v {
            Value::Map(inner) if !inner.is_empty() => {
                out.push('\n');
                map(inner, indent + INDENT, false, out)?;
            }
            Value::List(items) if !items.is_empty() => {
                out.push('\n');
                seq(items, indent, false, out)?;
            }
            other => {
                out.push(' ');
                scalar(other, indent + INDENT, true, out)?;
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// A block sequence whose dashes sit at `indent`.
fn seq(items: &[Value], indent: usize, inline: bool, out: &mut String) -> Result<(), String> {
    for (i, v) in items.iter().enumerate() {
        if !(inline && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match v {
            Value::Map(inner) if !inner.is_empty() => map(inner, indent + INDENT, true, out)?,
            Value::List(inner) if !inner.is_empty() => seq(inner, indent + INDENT, true, out)?,
            other => {
                scalar(other, indent + INDENT, true, out)?;
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// A scalar (or an empty collection) at the current position; `indent` is where its
/// continuation lines go.
fn scalar(v: &Value, indent: usize, _in_block: bool, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&format_number(n)),
        Value::String(s) if s.contains('\n') && block_allowed(s) => literal(s, indent, out),
        Value::String(s) => double_quoted(s, indent, true, out),
        Value::List(_) => out.push_str("[]"),
        Value::Map(_) => out.push_str("{}"),
        Value::Unknown => return Err("cannot serialize unknown value as YAML".into()),
    }
    Ok(())
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && c != '\u{feff}'
}

/// libyaml's analysis: a literal block is not allowed for trailing spaces, a space before a
/// line break, or characters that must be escaped.
fn block_allowed(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    if chars.last() == Some(&' ') {
        return false;
    }
    for (i, c) in chars.iter().enumerate() {
        if !is_printable(*c) || *c == '\u{feff}' {
            return false;
        }
        if *c == ' ' && chars.get(i + 1).is_some_and(|n| is_break(*n)) {
            return false;
        }
    }
    true
}

fn literal(s: &str, indent: usize, out: &mut String) {
    out.push('|');
    if s.starts_with([' ', '\t']) || s.starts_with(is_break) {
        out.push_str(&INDENT.to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    match chars.as_slice() {
        [.., last] if !is_break(*last) => out.push('-'),
        [_] => out.push('+'),
        [.., prev, _] if is_break(*prev) => out.push('+'),
        _ => {}
    }
    out.push('\n');
    let mut at_line_start = true;
    for c in chars {
        if is_break(c) {
            out.push('\n');
            at_line_start = true;
        } else {
            if at_line_start {
                out.push_str(&" ".repeat(indent));
                at_line_start = false;
            }
            out.push(c);
        }
    }
    // The content ends with the line break that closes its last line.
    if !out.ends_with('\n') {
        return;
    }
    out.pop();
}

fn double_quoted(s: &str, indent: usize, allow_breaks: bool, out: &mut String) {
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    let mut col = column(out);
    let mut spaces = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !is_printable(c) || is_break(c) || c == '"' || c == '\\' || c == '\u{feff}' {
            let esc = match c {
                '\0' => "\\0".to_string(),
                '\u{7}' => "\\a".into(),
                '\u{8}' => "\\b".into(),
                '\t' => "\\t".into(),
                '\n' => "\\n".into(),
                '\u{b}' => "\\v".into(),
                '\u{c}' => "\\f".into(),
                '\r' => "\\r".into(),
                '\u{1b}' => "\\e".into(),
                '"' => "\\\"".into(),
                '\\' => "\\\\".into(),
                '\u{85}' => "\\N".into(),
                '\u{a0}' => "\\_".into(),
                '\u{2028}' => "\\L".into(),
                '\u{2029}' => "\\P".into(),
                c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                c => format!("\\U{:08X}", c as u32),
            };
            col += esc.chars().count();
            out.push_str(&esc);
            spaces = false;
        } else if c == ' ' {
            if allow_breaks && !spaces && col > WIDTH && i != 0 && i != chars.len() - 1 {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                    col += 1;
                }
            } else {
                out.push(' ');
                col += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            col += 1;
            spaces = false;
        }
        i += 1;
    }
    out.push('"');
}
