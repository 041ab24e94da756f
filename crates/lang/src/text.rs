//! Text measured as Terraform measures it: in grapheme clusters (user-perceived characters,
//! Unicode UAX #29 extended grapheme clusters), not bytes or code points.
//!
//! The segmentation is the regular expression of UAX #29 table 1b, over the Unicode
//! properties that the `regex` crate carries (Grapheme_Cluster_Break, Extended_Pictographic).

use regex::Regex;
use std::sync::OnceLock;

fn cluster() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        let hangul = r"\p{gcb=L}*(?:\p{gcb=V}+|\p{gcb=LV}\p{gcb=V}*|\p{gcb=LVT})\p{gcb=T}*|\p{gcb=L}+|\p{gcb=T}+";
        let ri = r"\p{gcb=RI}\p{gcb=RI}";
        let xpicto =
            r"\p{Extended_Pictographic}(?:\p{gcb=Extend}*\p{gcb=ZWJ}\p{Extended_Pictographic})*";
        let core = format!(r"(?:{hangul}|{ri}|{xpicto}|[^\p{{gcb=Control}}\r\n])");
        let post = r"[\p{gcb=Extend}\p{gcb=ZWJ}\p{gcb=SpacingMark}]";
        let pattern = format!(r"(?s)\r\n|\p{{gcb=Control}}|\r|\n|\p{{gcb=Prepend}}*{core}{post}*|.");
        Regex::new(&pattern).ok()
    })
    .as_ref()
}

/// The grapheme clusters of `s`, in order.
pub fn graphemes(s: &str) -> Vec<&str> {
    let Some(re) = cluster() else {
        // Only if the Unicode tables were left out of the build: fall back to code points.
        return s
            .char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect();
    };
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < s.len() {
        let end = match re.find_at(s, pos) {
            Some(m) if m.start() == pos && m.end() > pos => m.end(),
            _ => pos + s[pos..].chars().next().map_or(1, char::len_utf8),
        };
        out.push(&s[pos..end]);
        pos = end;
    }
    out
}

/// The length of `s` in grapheme clusters.
pub fn len(s: &str) -> usize {
    graphemes(s).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters() {
        assert_eq!(len("hello"), 5);
        assert_eq!(len("héllo"), 5);
        // e + combining acute accent
        assert_eq!(len("e\u{301}"), 1);
        // a dancer with a skin tone modifier
        assert_eq!(len("💃🏿"), 1);
        // family: man ZWJ woman ZWJ girl
        assert_eq!(len("👨\u{200d}👩\u{200d}👧"), 1);
        // two flags
        assert_eq!(len("🇬🇧🇫🇷"), 2);
        assert_eq!(len("\r\n"), 1);
        assert_eq!(len("한국어"), 3);
        assert_eq!(len("\u{1100}\u{1161}\u{11a8}"), 1);
    }
}
