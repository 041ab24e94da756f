//! Durations as Terraform writes them in `timeouts` blocks: "30s", "20m", "1h30m", "500ms".

use std::time::Duration;

/// Parses a sequence of `<number><unit>` with units h, m, s, ms (Go's notation).
pub fn parse(s: &str) -> Result<Duration, String> {
    let bad = || format!("\"{s}\" is not a duration");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(Duration::try_from_secs_f64(n * secs).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("20"), Err("\"20\" is not a duration".into()));
        assert_eq!(parse("5x"), Err("\"5x\" is not a duration".into()));
        assert_eq!(parse(""), Err("\"\" is not a duration".into()));
        // No overflow panic: each part fits, their sum does not.
        let huge = "5000000000000000000s".repeat(5);
        assert_eq!(parse(&huge), Err(format!("\"{huge}\" is not a duration")));
    }
}
