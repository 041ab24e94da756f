//! Timestamps for `formatdate`, `timeadd`, `timecmp`, `timestamp` and `plantimestamp`: RFC 3339
//! in and out, as go-cty (cty/function/stdlib/datetime.go) and Terraform
//! (internal/lang/funcs/datetime.go) read and write them.

/// An instant with the UTC offset it was written with.
#[derive(Clone, Copy, Debug)]
pub struct Time {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    pub nanos: u32,
    /// Offset from UTC in seconds; `None` for `Z`.
    pub offset: Option<i32>,
}

fn bad(detail: &str) -> String {
    format!("not a valid RFC3339 timestamp: {detail}")
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(m: u32, y: i64) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn num(s: &str, at: usize, n: usize, what: &str) -> Result<u32, String> {
    let part = s
        .get(at..at + n)
        .ok_or_else(|| bad(&format!("end of string before {what}")))?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(&format!("cannot use {part:?} as {what}")));
    }
    part.parse()
        .map_err(|_| bad(&format!("cannot use {part:?} as {what}")))
}

fn expect(s: &str, at: usize, c: u8, layout: &str) -> Result<(), String> {
    match s.as_bytes().get(at) {
        Some(b) if *b == c => Ok(()),
        Some(_) if c == b'T' => Err(bad("missing required time introducer 'T'")),
        Some(_) => Err(bad(&format!(
            "found {:?} where {layout:?} is expected",
            s.get(at..).unwrap_or("")
        ))),
        None => Err(bad(&format!("end of string where {layout:?} is expected"))),
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`.
pub fn parse(s: &str) -> Result<Time, String> {
    let year = num(s, 0, 4, "year")?;
    expect(s, 4, b'-', "-")?;
    let month = num(s, 5, 2, "month")?;
    expect(s, 7, b'-', "-")?;
    let day = num(s, 8, 2, "day of month")?;
    expect(s, 10, b'T', "T")?;
    let hour = num(s, 11, 2, "hour")?;
    expect(s, 13, b':', ":")?;
    let minute = num(s, 14, 2, "minute")?;
    expect(s, 16, b':', ":")?;
    let second = num(s, 17, 2, "second")?;
    let mut i = 19;
    let mut nanos = 0u32;
    if s.as_bytes().get(i) == Some(&b'.') {
        let frac: String = s[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if frac.is_empty() {
            return Err(bad("cannot use \".\" as fractional seconds"));
        }
        i += 1 + frac.len();
        let mut digits: String = frac.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().unwrap_or(0);
    }
    let offset = match s.as_bytes().get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            None
        }
        Some(sign @ (b'+' | b'-')) => {
            let neg = *sign == b'-';
            let hh = num(s, i + 1, 2, "UTC offset")?;
            expect(s, i + 3, b':', ":")?;
            let mm = num(s, i + 4, 2, "UTC offset")?;
            i += 6;
            let secs = (hh * 3600 + mm * 60) as i32;
            Some(if neg { -secs } else { secs })
        }
        Some(_) => {
            return Err(bad(&format!(
                "found {:?} where \"Z07:00\" is expected",
                &s[i..]
            )))
        }
        None => return Err(bad("end of string where \"Z07:00\" is expected")),
    };
    if i != s.len() {
        return Err(bad(&format!("extra text: {:?}", &s[i..])));
    }
    if !(1..=12).contains(&month) {
        return Err(bad("month out of range"));
    }
    if day < 1 || day > days_in(month, i64::from(year)) {
        return Err(bad("day out of range"));
    }
    if hour > 23 {
        return Err(bad("hour must be between 0 and 23 inclusive"));
    }
    if minute > 59 {
        return Err(bad("minute out of range"));
    }
    if second > 59 {
        return Err(bad("second out of range"));
    }
    let local = days_from_civil(i64::from(year), month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second);
    Ok(Time {
        unix: local - i64::from(offset.unwrap_or(0)),
        nanos,
        offset,
    })
}

/// The civil fields in the time's own offset: (year, month, day, hour, minute, second, weekday 0=Sunday).
fn fields(t: &Time) -> (i64, u32, u32, u32, u32, u32, u32) {
    let local = t.unix + i64::from(t.offset.unwrap_or(0));
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as u32;
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60, weekday)
}

fn offset_text(t: &Time, colon: bool, z: bool) -> String {
    match t.offset {
        None if z => "Z".into(),
        off => {
            let o = off.unwrap_or(0);
            let sign = if o < 0 { '-' } else { '+' };
            let (h, m) = (o.abs() / 3600, o.abs() / 60 % 60);
            if colon {
                format!("{sign}{h:02}:{m:02}")
            } else {
                format!("{sign}{h:02}{m:02}")
            }
        }
    }
}

/// RFC 3339 without fractional seconds, in the time's own offset (Go's time.RFC3339).
pub fn rfc3339(t: &Time) -> String {
    let (y, mo, d, h, mi, s, _) = fields(t);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}",
        offset_text(t, true, true)
    )
}

/// Now, in UTC.
pub fn now() -> Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Time {
        unix: d.as_secs() as i64,
        nanos: d.subsec_nanos(),
        offset: None,
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `formatdate(spec, timestamp)`.
pub fn format(spec: &str, t: &Time) -> Result<String, String> {
    let (y, mo, d, h, mi, s, wd) = fields(t);
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            let mut lit = String::new();
            loop {
                match chars.get(j) {
                    None => return Err("unterminated literal '".into()),
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        lit.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some(ch) => {
                        lit.push(*ch);
                        j += 1;
                    }
                }
            }
            out.push_str(&lit);
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let tok: String = chars[i..i + n].iter().collect();
        let bad_len = |m: &str| format!("invalid date format verb {tok:?}: {m}");
        match (c, n) {
            ('Y', 2) => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            ('Y', 4) => out.push_str(&format!("{y:04}")),
            ('Y', _) => return Err(bad_len("year must either be \"YY\" or \"YYYY\"")),
            ('M', 1) => out.push_str(&mo.to_string()),
            ('M', 2) => out.push_str(&format!("{mo:02}")),
            ('M', 3) => out.push_str(&MONTHS[(mo - 1) as usize][..3]),
            ('M', 4) => out.push_str(MONTHS[(mo - 1) as usize]),
            ('M', _) => return Err(bad_len("month must be \"M\", \"MM\", \"MMM\", or \"MMMM\"")),
            ('D', 1) => out.push_str(&d.to_string()),
            ('D', 2) => out.push_str(&format!("{d:02}")),
            ('D', _) => return Err(bad_len("day of month must either be \"D\" or \"DD\"")),
            ('E', 3) => out.push_str(&DAYS[wd as usize][..3]),
            ('E', 4) => out.push_str(DAYS[wd as usize]),
            ('E', _) => return Err(bad_len("day of week must either be \"EEE\" or \"EEEE\"")),
            ('h', 1) => out.push_str(&h.to_string()),
            ('h', 2) => out.push_str(&format!("{h:02}")),
            ('h', _) => return Err(bad_len("24-hour must either be \"h\" or \"hh\"")),
            ('H', _) => {
                let h12 = if h % 12 == 0 { 12 } else { h % 12 };
                match n {
                    1 => out.push_str(&h12.to_string()),
                    2 => out.push_str(&format!("{h12:02}")),
                    _ => return Err(bad_len("12-hour must either be \"H\" or \"HH\"")),
                }
            }
            ('A' | 'a', 2) => {
                let pm = h >= 12;
                out.push_str(match (c, pm) {
                    ('A', false) => "AM",
                    ('A', true) => "PM",
                    (_, false) => "am",
                    (_, true) => "pm",
                });
            }
            ('A' | 'a', _) => return Err(bad_len(&format!("must be \"{c}{c}\""))),
            ('m', 1) => out.push_str(&mi.to_string()),
            ('m', 2) => out.push_str(&format!("{mi:02}")),
            ('m', _) => return Err(bad_len("minute must either be \"m\" or \"mm\"")),
            ('s', 1) => out.push_str(&s.to_string()),
            ('s', 2) => out.push_str(&format!("{s:02}")),
            ('s', _) => return Err(bad_len("second must either be \"s\" or \"ss\"")),
            ('Z', 1) => out.push_str(&offset_text(t, true, true)),
            ('Z', 3) => {
                let o = offset_text(t, false, false);
                out.push_str(if o == "+0000" { "UTC" } else { &o });
            }
            ('Z', 4) => out.push_str(&offset_text(t, false, false)),
            ('Z', 5) => out.push_str(&offset_text(t, true, false)),
            ('Z', _) => return Err(bad_len("timezone must be Z, ZZZZ, or ZZZZZ")),
            _ => return Err(format!("invalid date format verb {tok:?}")),
        }
        i += n;
    }
    Ok(out)
}

/// Go's time.ParseDuration, in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    let neg = rest.starts_with('-');
    if rest.starts_with(['-', '+']) {
        rest = &rest[1..];
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let n = &rest[..n_end];
        if n.is_empty() || n == "." {
            return Err(invalid());
        }
        let value: f64 = n.parse().map_err(|_| invalid())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * scale;
        rest = &rest[u_end..];
    }
    if total > 9.223_372_036_854_776e18 {
        return Err(invalid());
    }
    let t = total.round() as i128;
    Ok(if neg { -t } else { t })
}

/// `t` plus `nanos` nanoseconds, in the same offset.
pub fn add(t: &Time, nanos: i128) -> Time {
    let total = i128::from(t.unix) * 1_000_000_000 + i128::from(t.nanos) + nanos;
    Time {
        unix: total.div_euclid(1_000_000_000) as i64,
        nanos: total.rem_euclid(1_000_000_000) as u32,
        offset: t.offset,
    }
}

/// -1, 0 or 1.
pub fn cmp(a: &Time, b: &Time) -> i32 {
    match (a.unix, a.nanos).cmp(&(b.unix, b.nanos)) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }
}
