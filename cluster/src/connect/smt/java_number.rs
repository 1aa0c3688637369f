//! Java's number parsing, which decides what `Cast` and `MaskField`'s `replacement` accept.
//!
//! - `Byte.parseByte` / `Short.parseShort` / `Integer.parseInt` / `Long.parseLong`: an optional
//!   `+` or `-`, then decimal digits, in range; nothing else (no spaces, no `1.0`).
//! - `Double.parseDouble` / `Float.parseFloat`: surrounding whitespace trimmed, `NaN`,
//!   `Infinity`, or a decimal with an optional exponent and an optional `f`/`d` suffix. (Java's
//!   hexadecimal floats, `0x1p3`, are not read here.)
//! - `new BigDecimal(s)` (Connect's `Values.asLong` / `asDouble`): a sign, digits with an
//!   optional point, an optional exponent; `longValue()` truncates toward zero and keeps the low
//!   64 bits.

/// `Long.parseLong(s)` with a range check for the narrower types; `None` where Java throws
/// `NumberFormatException`.
pub fn parse_integer(s: &str, min: i64, max: i64) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = value * 10 + i128::from(b - b'0');
        if value > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    (i128::from(min)..=i128::from(max)).contains(&value).then_some(value as i64)
}

/// `Double.parseDouble(s)`.
pub fn parse_double(s: &str) -> Option<f64> {
    let t = super::config::java_trim(s);
    let (sign, body) = match t.as_bytes().first()? {
        b'-' => (-1.0, &t[1..]),
        b'+' => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    match body {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
    if !is_decimal(body) {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

/// `Boolean.parseBoolean(s)`: `true` in any case, everything else false.
pub fn parse_boolean(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// `digits[.digits][e[+-]digits]` with at least one digit before the exponent.
fn is_decimal(s: &str) -> bool {
    let (significand, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut seen_point = false;
    let mut digits = 0;
    for c in significand.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' if !seen_point => seen_point = true,
            _ => return false,
        }
    }
    if digits == 0 {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// A number as `new BigDecimal(s)` reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct BigDecimal {
    text: String,
    negative: bool,
    /// Every digit, point removed.
    digits: String,
    /// The value is `digits × 10^shift`.
    shift: i64,
}

impl BigDecimal {
    /// `new BigDecimal(s)`; `None` where Java throws `NumberFormatException`.
    pub fn parse(s: &str) -> Option<BigDecimal> {
        let (negative, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if !is_decimal(body) {
            return None;
        }
        let (significand, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        let fraction_len = significand.split_once('.').map_or(0, |(_, f)| f.len()) as i64;
        let digits: String = significand.chars().filter(|c| *c != '.').collect();
        Some(BigDecimal { text: s.to_string(), negative, digits, shift: i64::from(exponent) - fraction_len })
    }

    /// `longValue()`: the integer part, low 64 bits.
    pub fn long_value(&self) -> i64 {
        let kept = if self.shift >= 0 {
            self.digits.len()
        } else {
            self.digits.len().saturating_sub(self.shift.unsigned_abs() as usize)
        };
        let mut value: u64 = 0;
        for b in self.digits.bytes().take(kept) {
            value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        }
        // 10^64 is a multiple of 2^64: past 64 zeros nothing is left in the low bits.
        for _ in 0..self.shift.clamp(0, 64) {
            value = value.wrapping_mul(10);
        }
        let value = value as i64;
        if self.negative {
            value.wrapping_neg()
        } else {
            value
        }
    }

    /// `doubleValue()`: the nearest double.
    pub fn double_value(&self) -> f64 {
        self.text.parse::<f64>().expect("a BigDecimal's text is a valid float literal")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_as_java_parses_them() {
        assert_eq!(parse_integer("127", -128, 127), Some(127));
        assert_eq!(parse_integer("128", -128, 127), None);
        assert_eq!(parse_integer("+5", -128, 127), Some(5));
        assert_eq!(parse_integer(" 5", -128, 127), None);
        assert_eq!(parse_integer("1.0", i64::MIN, i64::MAX), None);
        assert_eq!(parse_integer("-9223372036854775808", i64::MIN, i64::MAX), Some(i64::MIN));
        assert_eq!(parse_integer("9223372036854775808", i64::MIN, i64::MAX), None);
    }

    #[test]
    fn doubles_and_big_decimals() {
        assert_eq!(parse_double(" 42.5 "), Some(42.5));
        assert_eq!(parse_double("1e3f"), Some(1000.0));
        assert_eq!(parse_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double("inf"), None);
        assert_eq!(parse_double("foo"), None);
        let b = |s: &str| BigDecimal::parse(s).unwrap().long_value();
        assert_eq!(b("123.9"), 123);
        assert_eq!(b("-123.9"), -123);
        assert_eq!(b("1e3"), 1000);
        assert_eq!(b("12345e-2"), 123);
        assert_eq!(b("18446744073709551617"), 1);
        assert_eq!(b("1e100"), 0);
        assert!(BigDecimal::parse("foo").is_none());
        assert!(BigDecimal::parse(" 1").is_none());
        assert_eq!(BigDecimal::parse("123.0").unwrap().double_value(), 123.0);
    }
}
