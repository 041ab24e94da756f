//! Numbers as the language has them: arbitrary-precision decimals, as Terraform's
//! (cty keeps a `big.Float` of 512 bits).
//!
//! A [`Number`] is a finite decimal, kept normalised (no trailing zeros) and rounded to
//! [`PRECISION`] significant digits (512 bits are about 154 decimal digits), so sums and
//! products of literals are exact (`0.1 + 0.2` is `0.3`, `9007199254740993` stays
//! itself) and division is correct to that many digits. The decimal exponent is bounded
//! by [`MAX_EXPONENT`]: a larger result is an error (not a hang or gigabytes of digits),
//! a smaller one is zero. There is no infinity and no NaN: what would produce one is an
//! error where it is computed.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use bigdecimal::num_bigint::{BigInt, BigUint, Sign};
use bigdecimal::{BigDecimal, RoundingMode, ToPrimitive, Zero};

/// Significant decimal digits kept (512 bits ≈ 154.1 digits).
pub const PRECISION: u64 = 155;

/// The largest decimal exponent a number may have (its leading digit's place).
pub const MAX_EXPONENT: i64 = 10_000;

/// Non-integers with more significant digits than this print through `f64`'s shortest
/// form (`1/3` prints `0.3333333333333333`); their full value is kept and written to JSON.
const PLAIN_DIGITS: u64 = 40;

#[derive(Clone, Default)]
pub struct Number(BigDecimal);

impl Number {
    pub fn zero() -> Number {
        Number(BigDecimal::zero())
    }

    /// Normalises, rounds to [`PRECISION`] digits and checks the exponent bound.
    fn finish(d: BigDecimal) -> Result<Number, String> {
        if d.is_zero() {
            return Ok(Number::zero());
        }
        let d = if d.digits() > PRECISION {
            d.with_prec(PRECISION)
        } else {
            d
        };
        let d = d.normalized();
        let exp = adjusted_exponent(&d);
        if exp > MAX_EXPONENT {
            return Err(format!(
                "number is too large (more than {MAX_EXPONENT} decimal digits)"
            ));
        }
        if exp < -MAX_EXPONENT {
            return Ok(Number::zero());
        }
        Ok(Number(d))
    }

    /// Parses a number as the language writes it: an optional sign, digits, an optional
    /// fraction and an optional exponent (`-1.5e3`). Exact: no trip through `f64`.
    pub fn parse(s: &str) -> Result<Number, String> {
        let bad = || format!("{s:?} is not a valid number");
        let body = s.strip_prefix(['-', '+']).unwrap_or(s);
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let (int, frac) = match mantissa.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (mantissa, None),
        };
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if !digits(int)
            || frac.is_some_and(|f| !digits(f))
            || (int.is_empty() && frac.unwrap_or("").is_empty())
        {
            return Err(bad());
        }
        let exp: i64 = match exponent {
            None => 0,
            Some(e) => {
                let e_digits = e.strip_prefix(['-', '+']).unwrap_or(e);
                if e_digits.is_empty() || !digits(e_digits) {
                    return Err(bad());
                }
                // Anything past the bound is decided without building the number.
                match e.parse::<i64>() {
                    Ok(v) if v.abs() <= 4 * MAX_EXPONENT => v,
                    _ if e.starts_with('-') => -4 * MAX_EXPONENT - 1,
                    _ => 4 * MAX_EXPONENT + 1,
                }
            }
        };
        let all: String = int.chars().chain(frac.unwrap_or("").chars()).collect();
        let all = all.trim_start_matches('0');
        if all.is_empty() {
            return Ok(Number::zero());
        }
        // value = all × 10^(exp - len(frac)); the leading digit's place bounds it first.
        let e0 = exp - frac.unwrap_or("").len() as i64;
        let lead = all.len() as i64 - 1 + e0;
        if lead > MAX_EXPONENT {
            return Err(format!(
                "number is too large (more than {MAX_EXPONENT} decimal digits)"
            ));
        }
        if lead < -MAX_EXPONENT {
            return Ok(Number::zero());
        }
        // Only the digits that can matter after rounding (plus guards for the rounding).
        let keep = (PRECISION as usize + 2).min(all.len());
        let (head, tail) = all.split_at(keep);
        let mut head = head.to_string();
        let mut place = e0 + tail.len() as i64;
        if tail.bytes().any(|b| b != b'0') {
            // A sticky digit so that rounding sees what was cut.
            head.push('1');
            place -= 1;
        }
        let int_val = BigInt::from_str(&head).map_err(|_| bad())?;
        let int_val = if s.starts_with('-') {
            -int_val
        } else {
            int_val
        };
        Number::finish(BigDecimal::new(int_val, -place))
    }

    /// The number from an `f64`, through its shortest decimal form (`0.1` is `0.1`).
    /// NaN is zero and the infinities saturate at `±f64::MAX`.
    pub fn from_f64(f: f64) -> Number {
        let f = if f.is_nan() {
            0.0
        } else if f.is_infinite() {
            f64::MAX.copysign(f)
        } else {
            f
        };
        Number::parse(&format!("{f:e}")).unwrap_or_default()
    }

    /// The number from an `f64`, or an error when it is infinite or NaN.
    pub fn try_from_f64(f: f64) -> Result<Number, String> {
        if f.is_finite() {
            Ok(Number::from_f64(f))
        } else if f.is_nan() {
            Err("the result is not a number".into())
        } else {
            Err("the result is infinite".into())
        }
    }

    /// The nearest `f64` (infinite past `f64::MAX`).
    pub fn as_f64(&self) -> f64 {
        let (int, scale) = self.0.as_bigint_and_exponent();
        format!("{int}e{}", -scale).parse().unwrap_or(0.0)
    }

    pub fn is_integer(&self) -> bool {
        self.0.is_integer()
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        self.0.sign() == Sign::Minus
    }

    /// The value when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        if self.is_integer() && adjusted_exponent(&self.0) < 20 {
            self.0.to_i64()
        } else {
            None
        }
    }

    /// The value when it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        if self.is_integer() && adjusted_exponent(&self.0) < 21 {
            self.0.to_u64()
        } else {
            None
        }
    }

    pub fn as_usize(&self) -> Option<usize> {
        self.as_u64().and_then(|n| usize::try_from(n).ok())
    }

    /// The integer part as a big integer (towards zero).
    pub fn trunc_bigint(&self) -> BigInt {
        let (int, _) = self
            .0
            .with_scale_round(0, RoundingMode::Down)
            .into_bigint_and_exponent();
        int
    }

    /// The magnitude's digits in `radix` and whether it is negative, for an integer.
    pub fn integer_digits(&self, radix: u32) -> Option<(bool, String)> {
        if !self.is_integer() {
            return None;
        }
        let i = self.trunc_bigint();
        Some((i.sign() == Sign::Minus, i.magnitude().to_str_radix(radix)))
    }

    pub fn from_bigint(i: BigInt) -> Result<Number, String> {
        Number::finish(BigDecimal::new(i, 0))
    }

    pub fn add(&self, o: &Number) -> Result<Number, String> {
        Number::finish(&self.0 + &o.0)
    }

    pub fn sub(&self, o: &Number) -> Result<Number, String> {
        Number::finish(&self.0 - &o.0)
    }

    pub fn mul(&self, o: &Number) -> Result<Number, String> {
        Number::finish(&self.0 * &o.0)
    }

    pub fn neg(&self) -> Number {
        Number(-self.0.clone())
    }

    pub fn abs(&self) -> Number {
        Number(self.0.abs())
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> Number {
        Number::from(match self.0.sign() {
            Sign::Minus => -1i64,
            Sign::NoSign => 0,
            Sign::Plus => 1,
        })
    }

    /// Division rounded to [`PRECISION`] digits; division by zero is an error.
    pub fn div(&self, o: &Number) -> Result<Number, String> {
        if o.is_zero() {
            return Err("division by zero".into());
        }
        if self.is_zero() {
            return Ok(Number::zero());
        }
        let (a, sa) = self.0.as_bigint_and_exponent();
        let (b, sb) = o.0.as_bigint_and_exponent();
        let neg = (a.sign() == Sign::Minus) != (b.sign() == Sign::Minus);
        // a/b × 10^(sb - sa); scale a so that the quotient has PRECISION + 2 digits.
        let k = (PRECISION as i64 + 2 + digit_count(&b) - digit_count(&a)).max(0);
        let a = a.magnitude() * BigUint::from(10u8).pow(k as u32);
        let b = b.magnitude();
        let mut q = &a / b;
        let mut extra = 0;
        if !(&a % b).is_zero() {
            // A sticky digit so that rounding sees the remainder.
            q = q * 10u8 + 1u8;
            extra = 1;
        }
        let q = BigInt::from_biguint(if neg { Sign::Minus } else { Sign::Plus }, q);
        Number::finish(BigDecimal::new(q, sa - sb + k + extra))
    }

    /// The remainder with the sign of the dividend, as Terraform's `%` (`-7 % 3` is `-1`).
    pub fn rem(&self, o: &Number) -> Result<Number, String> {
        if o.is_zero() {
            return Err("division by zero".into());
        }
        let s = self
            .0
            .fractional_digit_count()
            .max(o.0.fractional_digit_count());
        let (a, _) = self.0.with_scale(s).into_bigint_and_exponent();
        let (b, _) = o.0.with_scale(s).into_bigint_and_exponent();
        Number::finish(BigDecimal::new(a % b, s))
    }

    pub fn floor(&self) -> Number {
        Number(self.0.with_scale_round(0, RoundingMode::Floor).normalized())
    }

    pub fn ceil(&self) -> Number {
        Number(
            self.0
                .with_scale_round(0, RoundingMode::Ceiling)
                .normalized(),
        )
    }

    /// Rounded to `scale` digits after the point, half away from zero.
    pub fn round_to(&self, scale: i64) -> Number {
        Number(self.0.with_scale_round(scale, RoundingMode::HalfUp))
    }

    /// `self` to an integer power, exact up to [`PRECISION`] digits (`2^64` is
    /// 18446744073709551616); an error past [`MAX_EXPONENT`].
    pub fn powi(&self, e: i64) -> Result<Number, String> {
        if e == 0 {
            return Ok(Number::from(1i64));
        }
        if self.is_zero() {
            return if e < 0 {
                Err("the result is infinite".into())
            } else {
                Ok(Number::zero())
            };
        }
        let mut base = self.clone();
        let mut n = e.unsigned_abs();
        let mut acc = Number::from(1i64);
        while n > 0 {
            if n & 1 == 1 {
                acc = acc.mul(&base)?;
            }
            n >>= 1;
            if n > 0 {
                base = base.mul(&base)?;
            }
        }
        if e < 0 {
            Number::from(1i64).div(&acc)
        } else {
            Ok(acc)
        }
    }

    /// Every digit, without an exponent (`1e20` is `100000000000000000000`): what JSON
    /// gets, as cty writes `Text('f', -1)`.
    pub fn to_plain_string(&self) -> String {
        plain(&self.0)
    }

    /// The JSON number this is exactly, when `serde_json` can hold it without
    /// `arbitrary_precision`: an integer of `i64`/`u64`, or an `f64` whose shortest form
    /// is this number.
    pub fn to_json_exact(&self) -> Option<serde_json::Number> {
        if let Some(i) = self.as_i64() {
            return Some(i.into());
        }
        if let Some(u) = self.as_u64() {
            return Some(u.into());
        }
        let f = self.as_f64();
        if f.is_finite() && Number::from_f64(f) == *self {
            return serde_json::Number::from_f64(f);
        }
        None
    }

    /// As JSON for providers and documents: exact when [`Number::to_json_exact`] is,
    /// else the nearest `f64`.
    pub fn to_json(&self) -> serde_json::Value {
        match self.to_json_exact() {
            Some(n) => serde_json::Value::Number(n),
            None => serde_json::Number::from_f64(self.as_f64())
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
        }
    }

    /// The number a JSON number stands for (a `serde_json::Number` holds an integer or an
    /// `f64`).
    pub fn from_json(n: &serde_json::Number) -> Number {
        if let Some(i) = n.as_i64() {
            Number::from(i)
        } else if let Some(u) = n.as_u64() {
            Number::from(u)
        } else {
            Number::from_f64(n.as_f64().unwrap_or(0.0))
        }
    }
}

/// The place of the leading digit (0 for 1..9, -1 for 0.1..0.9); 0 for zero.
fn adjusted_exponent(d: &BigDecimal) -> i64 {
    if d.is_zero() {
        return 0;
    }
    let (int, scale) = d.as_bigint_and_exponent();
    digit_count(&int) - 1 - scale
}

fn digit_count(i: &BigInt) -> i64 {
    if i.is_zero() {
        1
    } else {
        i.magnitude().to_str_radix(10).len() as i64
    }
}

fn plain(d: &BigDecimal) -> String {
    let (int, scale) = d.as_bigint_and_exponent();
    let neg = int.sign() == Sign::Minus;
    let digits = int.magnitude().to_str_radix(10);
    let mut out = String::with_capacity(digits.len() + 4);
    if neg {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(&digits);
        if digits != "0" {
            out.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        }
    } else {
        let scale = scale as usize;
        if digits.len() > scale {
            let (i, f) = digits.split_at(digits.len() - scale);
            out.push_str(i);
            out.push('.');
            out.push_str(f);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', scale - digits.len()));
            out.push_str(&digits);
        }
    }
    out
}

/// Integers with every digit; other numbers exactly up to 40 significant digits, longer
/// ones (results of division, roots) in `f64`'s shortest form, as Terraform shows `1/3`.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_integer() || self.0.digits() <= PLAIN_DIGITS {
            return f.write_str(&plain(&self.0));
        }
        let x = self.as_f64();
        if x.is_normal() {
            write!(f, "{x}")
        } else {
            f.write_str(&plain(&self.0.with_prec(17).normalized()))
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&plain(&self.0))
    }
}

impl PartialEq for Number {
    fn eq(&self, o: &Number) -> bool {
        self.0 == o.0
    }
}
impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, o: &Number) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Number {
    fn cmp(&self, o: &Number) -> Ordering {
        self.0.cmp(&o.0)
    }
}

/// Consistent with `Eq`: numbers are kept normalised, so equal numbers have equal digits
/// and scale.
impl Hash for Number {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let (int, scale) = self.0.normalized().into_bigint_and_exponent();
        int.hash(h);
        if !int.is_zero() {
            scale.hash(h);
        }
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Number {
        Number::from_f64(f)
    }
}
impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number(BigDecimal::from(i).normalized())
    }
}
impl From<u64> for Number {
    fn from(u: u64) -> Number {
        Number(BigDecimal::from(u).normalized())
    }
}
impl From<i32> for Number {
    fn from(i: i32) -> Number {
        Number::from(i as i64)
    }
}
impl From<u32> for Number {
    fn from(u: u32) -> Number {
        Number::from(u as u64)
    }
}
impl From<usize> for Number {
    fn from(u: usize) -> Number {
        Number::from(u as u64)
    }
}

impl FromStr for Number {
    type Err = String;
    fn from_str(s: &str) -> Result<Number, String> {
        Number::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    #[test]
    fn exact_arithmetic() {
        assert_eq!(n("0.1").add(&n("0.2")).unwrap(), n("0.3"));
        assert_eq!(n("0.1").add(&n("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(n("9007199254740993").to_string(), "9007199254740993");
        assert_eq!(n("1e20").to_string(), "100000000000000000000");
        assert_eq!(n("2").powi(64).unwrap().to_string(), "18446744073709551616");
        assert_eq!(
            n("1").div(&n("3")).unwrap().to_string(),
            "0.3333333333333333"
        );
        assert_eq!(
            n("2").div(&n("3")).unwrap().to_string(),
            "0.6666666666666666"
        );
        assert_eq!(
            n("-1").div(&n("3")).unwrap().to_string(),
            "-0.3333333333333333"
        );
        assert_eq!(n("1").div(&n("4")).unwrap().to_string(), "0.25");
        assert_eq!(n("10").rem(&n("3")).unwrap().to_string(), "1");
        assert_eq!(n("-7").rem(&n("3")).unwrap().to_string(), "-1");
        assert_eq!(n("7.5").rem(&n("2")).unwrap().to_string(), "1.5");
        assert_eq!(n("-2.5").floor().to_string(), "-3");
        assert_eq!(n("2.5").ceil().to_string(), "3");
        assert!(n("9007199254740993") > n("9007199254740992"));
        assert_eq!(n("1.50"), n("1.5"));
        assert_eq!(n("0.5e1").as_i64(), Some(5));
        assert_eq!(n("1.5").as_i64(), None);
        assert_eq!(n("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(n("-0").to_string(), "0");
        assert_eq!(n("1e-7").to_string(), "0.0000001");
        assert_eq!(Number::from(0.1f64), n("0.1"));
        assert_eq!(n("0.1").as_f64(), 0.1);
    }

    #[test]
    fn third_is_kept_to_the_precision() {
        let third = n("1").div(&n("3")).unwrap();
        assert_eq!(third.to_plain_string().len(), 2 + PRECISION as usize);
        assert_eq!(
            third.mul(&n("3")).unwrap().to_plain_string(),
            format!("0.{}", "9".repeat(PRECISION as usize))
        );
    }

    #[test]
    fn huge_exponents_are_bounded() {
        assert!(Number::parse("1e1000000").is_err());
        assert!(Number::parse("1e99999999999999999999999").is_err());
        assert_eq!(n("1e-1000000"), Number::zero());
        assert!(n("10").powi(1_000_000).is_err());
        assert!(n("10").powi(i64::MAX).is_err());
        assert_eq!(n("0.1").powi(1_000_000).unwrap(), Number::zero());
        assert_eq!(n("1").powi(i64::MIN).unwrap(), n("1"));
        let big = n("9.9e10000");
        assert!(big.mul(&big).is_err());
        assert!(big.add(&big).is_err());
    }

    #[test]
    fn parse_rejects_what_is_not_a_number() {
        for s in [
            "", "-", ".", "1e", "1e+", "abc", "1.2.3", "0x10", " 1", "1 ",
        ] {
            assert!(Number::parse(s).is_err(), "{s:?}");
        }
        assert_eq!(n(".5"), n("0.5"));
        assert_eq!(n("5."), n("5"));
        assert_eq!(n("+5"), n("5"));
    }

    #[test]
    fn json_is_exact_when_it_can_be() {
        assert_eq!(
            n("9007199254740993").to_json().to_string(),
            "9007199254740993"
        );
        assert_eq!(n("0.3").to_json().to_string(), "0.3");
        assert!(n("1e30").to_json_exact().is_some());
        assert!(n("123456789012345678901234567890")
            .to_json_exact()
            .is_none());
        assert!(n("1").div(&n("3")).unwrap().to_json_exact().is_none());
    }
}
