//! Diagnostics that point at the configuration: file:line:column and the offending snippet.

use std::fmt;
use std::ops::Range;

/// The text of every configuration file, so that byte spans can be shown as locations.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<Source>,
}

#[derive(Clone, Debug)]
struct Source {
    name: String,
    text: String,
}

/// A byte range in one source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrcSpan {
    pub file: usize,
    pub range: Range<usize>,
}

impl Sources {
    pub fn add(&mut self, name: String, text: String) -> usize {
        self.files.push(Source { name, text });
        self.files.len() - 1
    }

    pub fn locate(&self, span: &SrcSpan) -> Loc {
        let Some(src) = self.files.get(span.file) else {
            return Loc::default();
        };
        let mut start = span.range.start.min(src.text.len());
        while !src.text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &src.text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line_end = src.text[start..]
            .find('\n')
            .map(|i| start + i)
            .unwrap_or(src.text.len());
        let col = src.text[line_start..start].chars().count() + 1;
        let mut end = span.range.end.clamp(start, line_end);
        while !src.text.is_char_boundary(end) {
            end -= 1;
        }
        Loc {
            file: src.name.clone(),
            line,
            col,
            text: src.text[line_start..line_end].to_string(),
            width: src.text[start..end].chars().count().max(1),
        }
    }
}

/// A location, resolved for display.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub text: String,
    pub width: usize,
}

/// One problem with the configuration or the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    pub message: String,
    pub loc: Option<Loc>,
    pub help: Option<String>,
}

impl Diag {
    pub fn new(message: impl Into<String>) -> Self {
        Diag {
            message: message.into(),
            loc: None,
            help: None,
        }
    }

    pub fn at(message: impl Into<String>, sources: &Sources, span: &SrcSpan) -> Self {
        Diag {
            message: message.into(),
            loc: Some(sources.locate(span)),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(loc) = &self.loc {
            let n = loc.line.to_string();
            let pad = " ".repeat(n.len());
            write!(f, "\n{pad}--> {}:{}:{}", loc.file, loc.line, loc.col)?;
            let (text, col, width) = window(&loc.text, loc.col, loc.width);
            write!(f, "\n{pad} |\n{n} | {text}")?;
            let lead: String = text
                .chars()
                .take(col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{pad} | {lead}{}", "^".repeat(width))?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// The widest source line a diagnostic shows, in characters.
pub const MAX_SHOWN: usize = 120;

/// Cuts a long source line to [`MAX_SHOWN`] characters around the column, marking each cut
/// with "…"; returns the text, the column in it and the width of the marker.
fn window(text: &str, col: usize, width: usize) -> (String, usize, usize) {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= MAX_SHOWN {
        return (text.to_string(), col, width);
    }
    let at = col.saturating_sub(1).min(chars.len());
    // Show some context before the column, and as much of the marked text as fits.
    let start = at.saturating_sub(MAX_SHOWN / 3);
    let end = (start + MAX_SHOWN).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    let col = at - start + 1 + usize::from(start > 0);
    let width = width.min(end.saturating_sub(at)).max(1);
    (out, col, width)
}

/// One or more diagnostics, as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diags(pub Vec<Diag>);

impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "\n\nerror: ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diags {}
impl std::error::Error for Diag {}

impl From<Diag> for Diags {
    fn from(d: Diag) -> Self {
        Diags(vec![d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_source_line_is_cut_to_a_readable_width() {
        let mut s = Sources::default();
        let line = format!("a = [{}nope{}]", "1, ".repeat(100), ", 2".repeat(100));
        let at = line.find("nope").unwrap_or(0);
        let f = s.add("main.hcl".into(), line);
        let d = Diag::at(
            "unknown thing",
            &s,
            &SrcSpan {
                file: f,
                range: at..at + 4,
            },
        );
        let text = d.to_string();
        let shown = text.lines().nth(3).unwrap_or_default();
        assert!(shown.chars().count() <= MAX_SHOWN + 6, "{text}");
        assert!(shown.contains("… 1, 1,") && shown.ends_with('…'), "{text}");
        let marker = text.lines().nth(4).unwrap_or_default();
        // The marker sits under "nope".
        let col = marker.find('^').unwrap_or(0);
        assert_eq!(
            &shown[..].chars().skip(col).take(4).collect::<String>(),
            "nope",
            "{text}"
        );
    }

    #[test]
    fn span_inside_a_character_does_not_panic() {
        let mut s = Sources::default();
        let f = s.add("main.hcl".into(), "a = \"é\"\n".into());
        let d = Diag::at(
            "x",
            &s,
            &SrcSpan {
                file: f,
                range: 6..7,
            },
        );
        assert!(d.to_string().contains("main.hcl:1:"));
    }

    #[test]
    fn points_at_line_and_column() {
        let mut s = Sources::default();
        let f = s.add("main.hcl".into(), "a = 1\nbad = nope\n".into());
        let d = Diag::at(
            "unknown thing",
            &s,
            &SrcSpan {
                file: f,
                range: 12..16,
            },
        );
        assert_eq!(
            d.to_string(),
            "unknown thing\n --> main.hcl:2:7\n  |\n2 | bad = nope\n  |       ^^^^"
        );
    }
}
