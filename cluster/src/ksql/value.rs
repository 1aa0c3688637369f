//! SQL types and values as ksqlDB has them for the subset ksim runs: `INT` (Java `int`), `BIGINT`
//! (Java `long`), `DOUBLE`, `STRING`/`VARCHAR` and `BOOLEAN`, each of which may be NULL.
//!
//! Arithmetic wraps as Java's does (ksqlDB compiles `a + b` on two INTs to Java `int` addition),
//! and a division by zero yields NULL: ksqlDB's generated code throws `ArithmeticException`, the
//! row's expression evaluates to NULL and the error goes to the processing log
//! (`io.confluent.ksql.execution.codegen.ExpressionMetadata` / `SqlToJavaVisitor`).

use std::cmp::Ordering;
use std::fmt;

/// A column's declared type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SqlType {
    Integer,
    Bigint,
    Double,
    String,
    Boolean,
}

impl SqlType {
    /// The type named in a column definition (`INT`, `VARCHAR`, ...), as ksqlDB's `SqlTypeParser`
    /// accepts it (case-insensitive; `INTEGER`/`INT`, `STRING`/`VARCHAR`).
    pub fn from_name(name: &str) -> Option<SqlType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "INT" | "INTEGER" => SqlType::Integer,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "STRING" | "VARCHAR" => SqlType::String,
            "BOOLEAN" => SqlType::Boolean,
            _ => return None,
        })
    }

    /// The name ksqlDB prints for the type (`DESCRIBE`, error messages).
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Integer => "INTEGER",
            SqlType::Bigint => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::String => "STRING",
            SqlType::Boolean => "BOOLEAN",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, SqlType::Integer | SqlType::Bigint | SqlType::Double)
    }

    /// The wider of two numeric types, as ksqlDB widens INT to BIGINT to DOUBLE in arithmetic.
    pub fn widen(self, other: SqlType) -> SqlType {
        self.max(other)
    }
}

/// One value of a row. INT and BIGINT are both held as `i64`; the type decides how they wrap.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Double(f64),
    String(String),
    Boolean(bool),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Parse a CSV field as `ty`: an empty field is NULL. `Err` says what was expected.
    pub fn parse(field: &str, ty: SqlType) -> Result<Value, String> {
        if field.is_empty() {
            return Ok(Value::Null);
        }
        let text = field.trim();
        match ty {
            SqlType::Integer => text
                .parse::<i32>()
                .map(|v| Value::Int(v.into()))
                .map_err(|_| format!("expected an INTEGER, found {field:?}")),
            SqlType::Bigint => {
                text.parse::<i64>().map(Value::Int).map_err(|_| format!("expected a BIGINT, found {field:?}"))
            }
            SqlType::Double => match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Value::Double(v)),
                _ => Err(format!("expected a DOUBLE, found {field:?}")),
            },
            SqlType::String => Ok(Value::String(field.to_string())),
            SqlType::Boolean => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Boolean(true)),
                "false" => Ok(Value::Boolean(false)),
                _ => Err(format!("expected a BOOLEAN (true or false), found {field:?}")),
            },
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Double(v) => Some(*v),
            _ => None,
        }
    }

    /// SQL comparison: `None` when either side is NULL (or the two cannot be compared).
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Boolean(a), Value::Boolean(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    /// The value as the CSV output prints it: NULL as an empty field, a DOUBLE as Java's
    /// `Double.toString` does (`100.0`, `1.0E7`), a string quoted only when it holds a comma,
    /// a quote or a line break.
    pub fn to_csv(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(v) => v.to_string(),
            Value::Double(v) => java_double(*v),
            Value::Boolean(v) => v.to_string(),
            Value::String(s) => csv_field(s),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Double(v) => f.write_str(&java_double(*v)),
            Value::String(s) => f.write_str(s),
            Value::Boolean(v) => write!(f, "{v}"),
        }
    }
}

/// A text field for CSV: quoted (with quotes doubled) only when it holds a comma, a quote or a
/// line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Java's `Double.toString`: plain notation with at least one fractional digit for magnitudes in
/// [10^-3, 10^7), computerized scientific notation (`1.0E7`, `1.5E-4`) otherwise.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let magnitude = v.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exponent) = s.split_once('e').expect("`{:e}` always writes an exponent");
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        format!("{mantissa}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java_prints_them() {
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(12345678.9), "1.23456789E7");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(-2.25), "-2.25");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn empty_fields_are_null_and_bad_numbers_are_errors() {
        assert_eq!(Value::parse("", SqlType::Bigint), Ok(Value::Null));
        assert_eq!(Value::parse("42", SqlType::Integer), Ok(Value::Int(42)));
        assert!(Value::parse("4000000000", SqlType::Integer).unwrap_err().contains("INTEGER"));
        assert!(Value::parse("x", SqlType::Double).is_err());
        assert_eq!(Value::parse("TRUE", SqlType::Boolean), Ok(Value::Boolean(true)));
    }
}
