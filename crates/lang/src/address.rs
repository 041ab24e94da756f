//! Module paths in addresses: `module.net["a"].module.vm[0].` before `type.name[key]`.

/// The end of the bracketed key that starts at `s[0] == '['` (the index after `]`), with
/// quoted keys and their escapes honoured.
pub fn key_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let mut i = 1;
    if b.get(1) == Some(&b'"') {
        i = 2;
        let mut esc = false;
        while i < b.len() {
            match (esc, b[i]) {
                (false, b'\\') => esc = true,
                (false, b'"') => break,
                _ => esc = false,
            }
            i += 1;
        }
        i += 1;
    }
    while i < b.len() && b[i] != b']' {
        i += 1;
    }
    (i < b.len()).then_some(i + 1)
}

/// Splits an address into its module instance path (`module.a["x"].module.b.`, empty at the
/// root) and the rest (`type.name[key]`, `data.type.name`).
pub fn split_module(address: &str) -> (&str, &str) {
    let mut at = 0;
    while let Some(rest) = address[at..].strip_prefix("module.") {
        let name_len = rest.find(['.', '[']).unwrap_or(rest.len());
        let mut end = at + "module.".len() + name_len;
        if address[end..].starts_with('[') {
            match key_end(&address[end..]) {
                Some(k) => end += k,
                None => break,
            }
        }
        if !address[end..].starts_with('.') {
            break;
        }
        at = end + 1;
    }
    (&address[..at], &address[at..])
}
