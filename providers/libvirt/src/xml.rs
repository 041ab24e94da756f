//! Domain, pool and volume XML: written with escaping, read with roxmltree.

use ballast_sdk::{ProviderError, Value};
use std::collections::BTreeMap;

/// The namespace of ballast's ownership mark in domain `<metadata>`.
pub const OWNER_NS: &str = "urn:x-ballast:ownership:1";

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

pub fn parse(xml: &str) -> Result<roxmltree::Document<'_>, ProviderError> {
    roxmltree::Document::parse(xml)
        .map_err(|e| ProviderError::new(format!("libvirt returned XML that does not parse: {e}")))
}

pub fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

pub fn child_text(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(n, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
}

/// A size element (`<memory unit='KiB'>131072</memory>`) in MiB.
pub fn size_mib(n: roxmltree::Node<'_, '_>) -> Option<f64> {
    let v: f64 = n.text()?.trim().parse().ok()?;
    let factor = match n.attribute("unit").unwrap_or("KiB") {
        "b" | "bytes" => 1.0 / (1024.0 * 1024.0),
        "KiB" | "k" | "K" => 1.0 / 1024.0,
        "MiB" | "M" | "m" => 1.0,
        "GiB" | "G" | "g" => 1024.0,
        "KB" => 1000.0 / (1024.0 * 1024.0),
        "MB" => 1_000_000.0 / (1024.0 * 1024.0),
        "GB" => 1e9 / (1024.0 * 1024.0),
        _ => return None,
    };
    Some((v * factor).round())
}

/// An object value from optional string fields; absent ones are null.
pub fn object(fields: &[(&str, Option<String>)]) -> Value {
    Value::Map(
        fields
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.clone().map(Value::String).unwrap_or_default(),
                )
            })
            .collect::<BTreeMap<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_convert_to_mib() {
        let doc = parse("<d><a unit='KiB'>131072</a><b unit='GiB'>2</b><c>65536</c></d>").unwrap();
        let root = doc.root_element();
        assert_eq!(size_mib(child(root, "a").unwrap()), Some(128.0));
        assert_eq!(size_mib(child(root, "b").unwrap()), Some(2048.0));
        assert_eq!(size_mib(child(root, "c").unwrap()), Some(64.0));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("a<b & 'c'"), "a&lt;b &amp; &apos;c&apos;");
    }
}
