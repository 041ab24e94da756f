//! `format` and `formatlist`: the verbs, flags, widths, precisions and explicit argument
//! indexes that Terraform documents, with the semantics of go-cty's implementation
//! (cty/function/stdlib/format.go): numbers are formatted as Go formats a `big.Float` /
//! `big.Int`, strings are measured in grapheme clusters.

use crate::convert::to_string;
use ballast_sdk::{Number, Value};

/// The largest width or precision: more is a mistake, and would exhaust memory.
const MAX_WIDTH: usize = 1_000_000;

/// One `%...` sequence.
#[derive(Default)]
struct Verb {
    raw: String,
    offset: usize,
    arg: usize,
    mode: char,
    zero: bool,
    sharp: bool,
    plus: bool,
    minus: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Formats `spec` with `args` (the arguments after the format string).
pub fn format(spec: &str, args: &[Value]) -> Result<String, String> {
    let b = spec.as_bytes();
    let mut out = String::new();
    let mut next_arg = 1usize;
    let mut highest = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let ch = spec[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8().max(1);
            continue;
        }
        if b.get(i + 1) == Some(&b'%') {
            out.push('%');
            i += 2;
            continue;
        }
        let start = i;
        i += 1;
        let mut v = Verb {
            offset: start,
            arg: next_arg,
            ..Verb::default()
        };
        while let Some(&c) = b.get(i) {
            match c {
                b'0' => v.zero = true,
                b'#' => v.sharp = true,
                b'-' => v.minus = true,
                b'+' => v.plus = true,
                b' ' => v.space = true,
                _ => break,
            }
            i += 1;
        }
        if matches!(b.get(i), Some(b'1'..=b'9')) {
            let (n, j) = digits(b, i);
            v.width = Some(n);
            i = j;
        }
        if b.get(i) == Some(&b'.') {
            let (n, j) = digits(b, i + 1);
            v.prec = Some(n);
            i = j;
        }
        if b.get(i) == Some(&b'[') {
            if !matches!(b.get(i + 1), Some(b'1'..=b'9')) {
                return Err(bad_char(spec, i + 1));
            }
            let (n, j) = digits(b, i + 1);
            if b.get(j) != Some(&b']') {
                return Err(bad_char(spec, j));
            }
            v.arg = n;
            i = j + 1;
        }
        match b.get(i) {
            Some(c) if c.is_ascii_alphabetic() => v.mode = *c as char,
            Some(_) => return Err(bad_char(spec, i)),
            None => return Err(format!("invalid format string starting at offset {start}")),
        }
        i += 1;
        v.raw = spec[start..i].to_string();
        if v.width.unwrap_or(0) > MAX_WIDTH || v.prec.unwrap_or(0) > MAX_WIDTH {
            return Err(format!(
                "the width or precision of {} at {start} is larger than {MAX_WIDTH}",
                go_quote(&v.raw)
            ));
        }
        highest = highest.max(v.arg);
        append(&v, &mut out, args)?;
        next_arg = v.arg + 1;
    }
    if highest < args.len() {
        return Err(if highest == 0 {
            "too many arguments; no verbs in format string".to_string()
        } else {
            format!("too many arguments; only {highest} used by format string")
        });
    }
    Ok(out)
}

/// `formatlist`: lists (all of one length) are iterated, other arguments repeated.
pub fn formatlist(spec: &str, args: &[Value]) -> Result<Vec<String>, String> {
    let mut len: Option<(usize, usize)> = None;
    for (i, a) in args.iter().enumerate() {
        if let Value::List(l) = a {
            match len {
                None => len = Some((l.len(), i)),
                Some((n, j)) if n != l.len() => {
                    return Err(format!(
                        "argument {} has length {}, which is inconsistent with argument {} of length {n}",
                        i + 2,
                        l.len(),
                        j + 2
                    ))
                }
                _ => {}
            }
        }
    }
    let n = len.map_or(1, |(n, _)| n);
    let mut out = Vec::with_capacity(n);
    for it in 0..n {
        let row: Vec<Value> = args
            .iter()
            .map(|a| match a {
                Value::List(l) => l.get(it).cloned().unwrap_or(Value::Null),
                other => other.clone(),
            })
            .collect();
        out.push(format(spec, &row).map_err(|e| format!("error on format iteration {it}: {e}"))?);
    }
    Ok(out)
}

fn digits(b: &[u8], mut i: usize) -> (usize, usize) {
    let mut n = 0usize;
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
        i += 1;
    }
    (n, i)
}

fn bad_char(spec: &str, at: usize) -> String {
    match spec.get(at..).and_then(|s| s.chars().next()) {
        Some(c) => format!(
            "unrecognized format character {} at offset {at}",
            go_rune(c)
        ),
        None => format!("invalid format string starting at offset {at}"),
    }
}

fn go_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '\\' => "'\\\\'".into(),
        c => format!("'{c}'"),
    }
}

fn append(v: &Verb, out: &mut String, args: &[Value]) -> Result<(), String> {
    let Some(arg) = v.arg.checked_sub(1).and_then(|i| args.get(i)) else {
        return Err(format!(
            "not enough arguments for {} at {}: need index {} but have {} total",
            go_quote(&v.raw),
            v.offset,
            v.arg,
            args.len()
        ));
    };
    let unsupported = |m: &str| {
        format!(
            "unsupported value for {} at {}: {m}",
            go_quote(&v.raw),
            v.offset
        )
    };
    if v.mode != 'v' && arg.is_null() {
        return Err(unsupported("null value cannot be formatted"));
    }
    match v.mode {
        'v' => {
            let text = match arg {
                Value::String(s) if !v.sharp => s.clone(),
                Value::Number(n) if !v.sharp => float(n, 'g', None),
                other => json(other),
            };
            out.push_str(&pad(v, &text));
        }
        't' => {
            let b = match arg {
                Value::Bool(b) => *b,
                Value::String(s) if s == "true" || s == "false" => s == "true",
                _ => return Err(unsupported("a bool is required")),
            };
            out.push_str(if b { "true" } else { "false" });
        }
        'b' | 'd' | 'o' | 'x' | 'X' | 'e' | 'E' | 'f' | 'g' | 'G' => {
            let n = number(arg).map_err(|m| unsupported(&m))?;
            if matches!(v.mode, 'b' | 'd' | 'o' | 'x' | 'X') {
                if !n.is_integer() {
                    return Err(unsupported("an integer is required"));
                }
                out.push_str(&integer(v, &n));
            } else {
                out.push_str(&float_verb(v, &n));
            }
        }
        's' | 'q' => {
            let s = match arg {
                Value::List(_) | Value::Map(_) => return Err(unsupported("string required")),
                other => to_string(other).map_err(|m| unsupported(&m))?,
            };
            let s = match v.prec {
                Some(p) if p > 0 => crate::text::graphemes(&s)
                    .into_iter()
                    .take(p)
                    .collect::<String>(),
                _ => s,
            };
            let text = if v.mode == 'q' { json_string(&s) } else { s };
            out.push_str(&pad(v, &text));
        }
        other => {
            return Err(format!(
                "unsupported format verb {} in {} at offset {}",
                go_rune(other),
                go_quote(&v.raw),
                v.offset
            ))
        }
    }
    Ok(())
}

fn number(v: &Value) -> Result<Number, String> {
    match v {
        Value::Number(n) => Ok(n.clone()),
        Value::String(s) => Number::parse(s.trim()).map_err(|_| "a number is required".to_string()),
        _ => Err("number required".to_string()),
    }
}

/// Pads to the width in grapheme clusters, with spaces or (flag 0) zeros.
fn pad(v: &Verb, s: &str) -> String {
    let Some(w) = v.width else {
        return s.to_string();
    };
    let n = crate::text::len(s);
    if n >= w {
        return s.to_string();
    }
    let fill = if v.zero { "0" } else { " " }.repeat(w - n);
    if v.minus {
        format!("{s}{fill}")
    } else {
        format!("{fill}{s}")
    }
}

/// Go's `big.Int` formatting: [left pad][sign][prefix][zero pad][digits][right pad].
fn integer(v: &Verb, n: &Number) -> String {
    let radix = match v.mode {
        'b' => 2,
        'o' => 8,
        'x' | 'X' => 16,
        _ => 10,
    };
    let (neg, digits) = n.integer_digits(radix).unwrap_or_default();
    let digits = if v.mode == 'X' {
        digits.to_ascii_uppercase()
    } else {
        digits
    };
    let sign = if neg {
        "-"
    } else if v.plus {
        "+"
    } else if v.space {
        " "
    } else {
        ""
    };
    let prefix = match (v.sharp, v.mode) {
        (true, 'b') => "0b",
        (true, 'o') => "0",
        (true, 'x') => "0x",
        (true, 'X') => "0X",
        _ => "",
    };
    let mut zeros = 0;
    if let Some(p) = v.prec {
        if digits.len() < p {
            zeros = p - digits.len();
        } else if digits == "0" && p == 0 {
            return String::new();
        }
    }
    let length = sign.len() + prefix.len() + zeros + digits.len();
    let (mut left, mut right) = (0, 0);
    if let Some(w) = v.width.filter(|w| *w > length) {
        let d = w - length;
        if v.minus {
            right = d;
        } else if v.zero && v.prec.is_none() {
            zeros = d;
        } else {
            left = d;
        }
    }
    format!(
        "{}{sign}{prefix}{}{digits}{}",
        " ".repeat(left),
        "0".repeat(zeros),
        " ".repeat(right)
    )
}

/// Go's `big.Float` formatting for %e, %E, %f, %g, %G with the flags.
fn float_verb(v: &Verb, n: &Number) -> String {
    let body = float(n, v.mode, v.prec);
    let (sign, digits) = match body.strip_prefix('-') {
        Some(rest) => ("-", rest.to_string()),
        None if v.plus => ("+", body),
        None if v.space => (" ", body),
        None => ("", body),
    };
    let padding = v
        .width
        .filter(|w| *w > sign.len() + digits.len())
        .map_or(0, |w| w - sign.len() - digits.len());
    if v.zero {
        format!("{sign}{}{digits}", "0".repeat(padding))
    } else if v.minus {
        format!("{sign}{digits}{}", " ".repeat(padding))
    } else {
        format!("{}{sign}{digits}", " ".repeat(padding))
    }
}

/// A decimal: 0.mant × 10^exp, mant without trailing zeros.
struct Decimal {
    mant: Vec<u8>,
    exp: i32,
}

impl Decimal {
    /// The digits of a number written in plain decimal (`-12.5`, `0.003`, `100`).
    fn of(plain: &str) -> Decimal {
        let plain = plain.trim_start_matches('-');
        let (int, frac) = plain.split_once('.').unwrap_or((plain, ""));
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let zeros = all.iter().take_while(|d| **d == b'0').count();
        let mut mant = all[zeros..].to_vec();
        while mant.last() == Some(&b'0') {
            mant.pop();
        }
        if mant.is_empty() {
            return Decimal { mant, exp: 0 };
        }
        let exp = int.len() as i32 - zeros as i32;
        Decimal { mant, exp }
    }

    fn round(&mut self, n: i32) {
        if n < 0 || n as usize >= self.mant.len() {
            return;
        }
        let n = n as usize;
        let up = if self.mant[n] == b'5' && n + 1 == self.mant.len() {
            n > 0 && (self.mant[n - 1] - b'0') % 2 == 1
        } else {
            self.mant[n] >= b'5'
        };
        if up {
            let mut k = n;
            while k > 0 && self.mant[k - 1] >= b'9' {
                k -= 1;
            }
            if k == 0 {
                self.mant = vec![b'1'];
                self.exp += 1;
                return;
            }
            self.mant[k - 1] += 1;
            self.mant.truncate(k);
        } else {
            self.mant.truncate(n);
            while self.mant.last() == Some(&b'0') {
                self.mant.pop();
            }
        }
    }

    fn digit(&self, i: i32) -> char {
        if i < 0 {
            return '0';
        }
        self.mant.get(i as usize).map_or('0', |d| *d as char)
    }

    fn fmt_e(&self, upper: bool, prec: usize) -> String {
        let mut s = String::new();
        s.push(self.digit(0));
        if prec > 0 {
            s.push('.');
            for i in 1..=prec {
                s.push(self.digit(i as i32));
            }
        }
        s.push(if upper { 'E' } else { 'e' });
        let exp = if self.mant.is_empty() {
            0
        } else {
            self.exp - 1
        };
        s.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            s.push('0');
        }
        s.push_str(&e.to_string());
        s
    }

    fn fmt_f(&self, prec: usize) -> String {
        let mut s = String::new();
        if self.exp > 0 {
            for i in 0..self.exp {
                s.push(self.digit(i));
            }
        } else {
            s.push('0');
        }
        if prec > 0 {
            s.push('.');
            for i in 1..=prec as i32 {
                s.push(self.digit(self.exp - 1 + i));
            }
        }
        s
    }
}

/// `big.Float.Text(mode, prec)`: `prec` None is the default (6 for e/f, shortest for g).
/// Exact digits of the number; the shortest form (%g, %v) takes the digits the number
/// prints with (`1/3` has 16).
pub fn float(x: &Number, mode: char, prec: Option<usize>) -> String {
    let neg = x.is_negative();
    let upper = matches!(mode, 'E' | 'G');
    let shortest = prec.is_none() && matches!(mode, 'g' | 'G');
    let mut d = Decimal::of(&if shortest {
        x.to_string()
    } else {
        x.to_plain_string()
    });
    let mut p = prec.unwrap_or(6) as i32;
    if shortest {
        p = d.mant.len() as i32;
    } else {
        match mode {
            'e' | 'E' => d.round(1 + p),
            'f' => d.round(d.exp + p),
            _ => {
                if p == 0 {
                    p = 1;
                }
                d.round(p)
            }
        }
    }
    let body = match mode {
        'e' | 'E' => d.fmt_e(upper, p.max(0) as usize),
        'f' => d.fmt_f(p.max(0) as usize),
        _ => {
            let mut eprec = p;
            let len = d.mant.len() as i32;
            if eprec > len && len >= d.exp {
                eprec = len;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.exp - 1;
            if exp < -4 || exp >= eprec {
                if p > len {
                    p = len;
                }
                d.fmt_e(upper, (p - 1).max(0) as usize)
            } else {
                if p > d.exp {
                    p = len;
                }
                d.fmt_f((p - d.exp).max(0) as usize)
            }
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// A string as Go's `%q` of a string: used in messages that quote the format verb.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string as JSON, escaped as Go's encoding/json does (<, > and & as \u003c, \u003e, \u0026).
pub fn json_string(s: &str) -> String {
    escape_html(&serde_json::Value::String(s.to_string()).to_string())
}

/// JSON for `%v` and `jsonencode`, as cty writes it: object keys in lexical order, numbers
/// in decimal without an exponent (1e21 is 1000000000000000000000), and strings escaped as
/// Go's encoding/json escapes them.
pub fn json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null | Value::Unknown => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_plain_string()),
        Value::String(s) => out.push_str(&json_string(s)),
        Value::List(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(k));
                out.push(':');
                write_json(x, out);
            }
            out.push('}');
        }
    }
}

/// Go's encoding/json escapes these even inside strings; they can only occur inside strings.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
