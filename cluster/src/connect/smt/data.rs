//! Connect's data as a schemaless record carries it.
//!
//! A sink connector configured with `value.converter=org.apache.kafka.connect.json.JsonConverter`
//! and `value.converter.schemas.enable=false` hands each transform plain Java objects, typed as
//! `JsonConverter.convertToConnect` types them: an integral JSON number is a `Long` (INT64), any
//! other number a `Double` (FLOAT64), then `String`, `Boolean`, `null`, a `List` (ARRAY) and a
//! `Map` (MAP). Transforms can make the narrower types too (`Cast` to `int8` gives a `Byte`), so
//! [`Value`] has every primitive of `ConnectSchema.SCHEMA_TYPE_CLASSES` that JSON can reach.
//!
//! Java builds these maps as `HashMap`s, whose iteration order is a hash accident. ksim keeps a
//! map's fields in insertion order instead (a field replaced in place keeps its position, a new
//! one goes last): deterministic, and it reads the way the record was written.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// One value of a schemaless Connect record.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    /// `Byte` (INT8): only `Cast` makes one.
    Int8(i8),
    /// `Short` (INT16).
    Int16(i16),
    /// `Integer` (INT32): the record's partition, `Cast` to `int32`.
    Int32(i32),
    /// `Long` (INT64): every integral JSON number.
    Int64(i64),
    /// `Float` (FLOAT32).
    Float32(f32),
    /// `Double` (FLOAT64): every other JSON number.
    Float64(f64),
    String(String),
    Array(Vec<Value>),
    Map(Map),
}

/// A schemaless Connect map (`Map<String, Object>`), fields in insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    pub fn new() -> Map {
        Map::default()
    }

    /// `Map.get`: the value of `key`, `None` when absent (Java cannot tell absent from null here;
    /// callers that need Java's answer use [`Map::get_or_null`]).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `Map.get` as Java answers it: `null` for an absent key.
    pub fn get_or_null(&self, key: &str) -> Value {
        self.get(key).cloned().unwrap_or(Value::Null)
    }

    /// `Map.put`: replaces the value in place, or appends a new field.
    pub fn insert(&mut self, key: String, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Map {
        let mut map = Map::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl Value {
    /// `ConnectSchema.schemaType(value.getClass())`: the Connect type of a value; `None` for null.
    pub fn schema_type(&self) -> Option<&'static str> {
        Some(match self {
            Value::Null => return None,
            Value::Boolean(_) => "BOOLEAN",
            Value::Int8(_) => "INT8",
            Value::Int16(_) => "INT16",
            Value::Int32(_) => "INT32",
            Value::Int64(_) => "INT64",
            Value::Float32(_) => "FLOAT32",
            Value::Float64(_) => "FLOAT64",
            Value::String(_) => "STRING",
            Value::Array(_) => "ARRAY",
            Value::Map(_) => "MAP",
        })
    }

    /// `value.getClass().getName()`, as Kafka's messages print it (`"null"` for null, as
    /// `Requirements.nullSafeClassName` does). Lists are the `ArrayList`s and maps the `HashMap`s
    /// JsonConverter builds.
    pub fn java_class_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "java.lang.Boolean",
            Value::Int8(_) => "java.lang.Byte",
            Value::Int16(_) => "java.lang.Short",
            Value::Int32(_) => "java.lang.Integer",
            Value::Int64(_) => "java.lang.Long",
            Value::Float32(_) => "java.lang.Float",
            Value::Float64(_) => "java.lang.Double",
            Value::String(_) => "java.lang.String",
            Value::Array(_) => "java.util.ArrayList",
            Value::Map(_) => "java.util.HashMap",
        }
    }

    /// `String.valueOf(value.getClass())`: `class java.lang.String`.
    pub fn java_class(&self) -> String {
        format!("class {}", self.java_class_name())
    }

    /// `String.valueOf(value)`: what Java's `toString` prints (`{a=1, b=x}` for a map, `[1, 2]`
    /// for a list, `1.0E10` for a double).
    pub fn java_to_string(&self) -> String {
        let mut out = String::new();
        self.write_java(&mut out);
        out
    }

    fn write_java(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int8(v) => out.push_str(&v.to_string()),
            Value::Int16(v) => out.push_str(&v.to_string()),
            Value::Int32(v) => out.push_str(&v.to_string()),
            Value::Int64(v) => out.push_str(&v.to_string()),
            Value::Float32(v) => out.push_str(&java_float_to_string(*v)),
            Value::Float64(v) => out.push_str(&java_double_to_string(*v)),
            Value::String(s) => out.push_str(s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_java(out);
                }
                out.push(']');
            }
            Value::Map(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push('=');
                    v.write_java(out);
                }
                out.push('}');
            }
        }
    }

    /// The value as JSON, compact, as JsonConverter (Jackson) writes it: floating-point numbers
    /// in Java's `toString` form (`1.0`, `1.0E10`), NaN and infinities as strings (Jackson's
    /// `WRITE_NAN_AS_STRINGS`, on by default).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int8(v) => out.push_str(&v.to_string()),
            Value::Int16(v) => out.push_str(&v.to_string()),
            Value::Int32(v) => out.push_str(&v.to_string()),
            Value::Int64(v) => out.push_str(&v.to_string()),
            Value::Float32(v) if v.is_finite() => out.push_str(&java_float_to_string(*v)),
            Value::Float64(v) if v.is_finite() => out.push_str(&java_double_to_string(*v)),
            Value::Float32(v) => write_json_string(out, &java_float_to_string(*v)),
            Value::Float64(v) => write_json_string(out, &java_double_to_string(*v)),
            Value::String(s) => write_json_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Map(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, k);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// Parse JSON as JsonConverter with `schemas.enable=false` reads it: integral numbers are
    /// `Long`, other numbers `Double`, objects keep their fields in order (a repeated field keeps
    /// its first position and its last value, as Jackson's `ObjectNode.set` leaves it).
    ///
    /// One difference: an integral number outside a Java long is an error here, where Jackson
    /// reads a `BigInteger` and `asLong` keeps its low 64 bits.
    pub fn from_json(text: &str) -> Result<Value, String> {
        serde_json::from_str::<Value>(text).map_err(|e| e.to_string())
    }
}

pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string always serializes"));
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        struct JsonVisitor;

        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Boolean(v))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int64(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                i64::try_from(v).map(Value::Int64).map_err(|_| {
                    E::custom(format!("the integer {v} is beyond a Java long (at most 9223372036854775807)"))
                })
            }

            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float64(v))
            }

            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::String(v.to_string()))
            }

            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::String(v))
            }

            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }

            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(item);
                }
                Ok(Value::Array(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    map.insert(key, value);
                }
                Ok(Value::Map(map))
            }
        }

        deserializer.deserialize_any(JsonVisitor)
    }
}

/// `Double.toString(d)`: the shortest digits that read back as `d` (JDK 19+, JDK-4511638), in
/// plain notation for 10^-3 <= |d| < 10^7 and as `d.dddE±n` otherwise.
pub fn java_double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    java_decimal(d == 0.0, d.is_sign_negative(), &format!("{:e}", d.abs()), d.abs() >= 1e-3 && d.abs() < 1e7)
}

/// `Float.toString(f)`: as [`java_double_to_string`], with the shortest digits of a float.
pub fn java_float_to_string(f: f32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    java_decimal(f == 0.0, f.is_sign_negative(), &format!("{:e}", f.abs()), f.abs() >= 1e-3 && f.abs() < 1e7)
}

/// Lay out `scientific` (Rust's shortest `{:e}` form, `1.2345e6`) the way Java does.
fn java_decimal(zero: bool, negative: bool, scientific: &str, plain: bool) -> String {
    let sign = if negative { "-" } else { "" };
    if zero {
        return format!("{sign}0.0");
    }
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} has a decimal exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !plain {
        let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
        return format!("{sign}{}.{rest}E{exponent}", &digits[..1]);
    }
    if exponent >= 0 {
        let point = exponent as usize + 1;
        if digits.len() <= point {
            format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java_prints_them() {
        for (d, java) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (42.5, "42.5"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1234567.0, "1234567.0"),
            (1e7, "1.0E7"),
            (1.5e10, "1.5E10"),
            (123.456, "123.456"),
            (-2.5e-5, "-2.5E-5"),
            (100.0, "100.0"),
        ] {
            assert_eq!(java_double_to_string(d), java, "{d}");
        }
        assert_eq!(java_float_to_string(0.1), "0.1");
        assert_eq!(java_float_to_string(123.0), "123.0");
        assert_eq!(java_double_to_string(f64::NAN), "NaN");
    }

    #[test]
    fn json_numbers_are_typed_as_json_converter_types_them() {
        let v = Value::from_json(r#"{"b": 1, "a": 1.0, "c": [true, null, "x"], "b": 2}"#).unwrap();
        let Value::Map(map) = &v else { panic!("{v:?}") };
        let fields: Vec<(&str, &Value)> = map.iter().collect();
        assert_eq!(fields[0], ("b", &Value::Int64(2)));
        assert_eq!(fields[1], ("a", &Value::Float64(1.0)));
        assert_eq!(v.to_json(), r#"{"b":2,"a":1.0,"c":[true,null,"x"]}"#);
        assert_eq!(v.java_to_string(), "{b=2, a=1.0, c=[true, null, x]}");
        assert!(Value::from_json("18446744073709551615").unwrap_err().contains("beyond a Java long"));
    }
}
