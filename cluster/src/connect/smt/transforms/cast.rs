//! `Cast$Key` / `Cast$Value` (Cast.java): cast fields (`spec=a:int32,b:string`) or the whole key
//! or value (`spec=int64`) to `int8`, `int16`, `int32`, `int64`, `float32`, `float64`,
//! `boolean` or `string`.
//!
//! Numbers narrow as Java's `Number.byteValue()` etc. do (a long wraps: 300 as int8 is 44; a
//! double goes through int first and saturates); strings parse with `Byte.parseByte`,
//! `Double.parseDouble`... ("Value (x) was out of range for requested data type" when they do
//! not parse); a number is true when its `longValue()` is not 0 (so 0.5 is false); a string is
//! true when it is `true` in any case; anything becomes a string by its Java `toString`. Lists
//! and maps cannot be cast. A field the spec names but the value lacks is added as null; a null
//! key or value passes through.

use crate::connect::smt::config::{java_split, java_trim, ConfigException, Default, Key, Parsed, Type, Values};
use crate::connect::smt::data::Value;
use crate::connect::smt::error::RecordError;
use crate::connect::smt::java_number::{parse_boolean, parse_double, parse_integer};
use crate::connect::smt::record::Record;
use crate::connect::smt::transforms::{require_map, Side};

pub const CONFIG: &[Key] = &[
    Key::validated("spec", Type::List, Default::Required, validate_spec),
    Key::new("replace.null.with.default", Type::Boolean, Default::Boolean(true)),
];

const PURPOSE: &str = "cast types";

/// `Schema.Type`, in declaration order (the order `EnumSet.toString` prints).
const SCHEMA_TYPES: [&str; 12] =
    ["INT8", "INT16", "INT32", "INT64", "FLOAT32", "FLOAT64", "BOOLEAN", "STRING", "BYTES", "ARRAY", "MAP", "STRUCT"];
const SUPPORTED_INPUT: &str = "[INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]";
const SUPPORTED_OUTPUT: &str = "[INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]";

/// A type `Cast` can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
}

#[derive(Clone, Debug)]
pub struct Cast {
    /// `Some` for a whole-value cast.
    whole: Option<Target>,
    /// Per field; a repeated field keeps its last type (`HashMap.put`).
    fields: Vec<(String, Target)>,
}

fn validate_spec(_name: &str, value: &Parsed) -> Result<(), ConfigException> {
    match value {
        Parsed::List(items) if items.is_empty() => {
            Err(ConfigException::new("Must specify at least one field to cast."))
        }
        Parsed::List(items) => parse_spec(items).map(|_| ()),
        _ => Ok(()),
    }
}

/// `Schema.Type.valueOf(text.trim().toUpperCase(Locale.ROOT))`, then `validCastType(OUTPUT)`.
fn target(text: &str) -> Result<Target, ConfigException> {
    let name = java_trim(text).to_ascii_uppercase();
    if !SCHEMA_TYPES.contains(&name.as_str()) {
        return Err(ConfigException::new(format!("Invalid type found in casting spec: {}", java_trim(text))));
    }
    Ok(match name.as_str() {
        "INT8" => Target::Int8,
        "INT16" => Target::Int16,
        "INT32" => Target::Int32,
        "INT64" => Target::Int64,
        "FLOAT32" => Target::Float32,
        "FLOAT64" => Target::Float64,
        "BOOLEAN" => Target::Boolean,
        "STRING" => Target::String,
        other => {
            return Err(ConfigException::new(format!(
                "Cast transformation does not support casting to {other}; supported types are {SUPPORTED_OUTPUT}"
            )))
        }
    })
}

/// `parseFieldTypes`.
fn parse_spec(mappings: &[String]) -> Result<Cast, ConfigException> {
    let mut cast = Cast { whole: None, fields: Vec::new() };
    for mapping in mappings {
        let parts = java_split(mapping, ':');
        match parts.len() {
            // Kafka reports this with ReplaceField's key name, as its code does.
            n if n > 2 => {
                return Err(ConfigException::invalid(
                    "renames",
                    &format!("[{}]", mappings.join(", ")),
                    &format!("Invalid rename mapping: {mapping}"),
                ))
            }
            1 => cast.whole = Some(target(parts[0])?),
            // ":" splits to nothing; Java then fails on parts[1] with an
            // ArrayIndexOutOfBoundsException. ksim words it as the missing type it is.
            0 => return Err(ConfigException::new("Invalid type found in casting spec: ")),
            _ => {
                let field = java_trim(parts[0]).to_string();
                let ty = target(parts[1])?;
                match cast.fields.iter_mut().find(|(f, _)| *f == field) {
                    Some(entry) => entry.1 = ty,
                    None => cast.fields.push((field, ty)),
                }
            }
        }
    }
    if cast.whole.is_some() && mappings.len() > 1 {
        return Err(ConfigException::new(
            "Cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec",
        ));
    }
    Ok(cast)
}

impl Cast {
    pub fn configure(values: &Values) -> Result<Cast, ConfigException> {
        parse_spec(&values.list("spec"))
    }

    pub fn apply(&self, side: Side, record: Record) -> Result<Record, RecordError> {
        let value = side.of(&record);
        if *value == Value::Null {
            return Ok(record);
        }
        if let Some(target) = self.whole {
            let cast = cast_value(value, target)?;
            return Ok(side.with(record, cast));
        }
        let map = require_map(value, PURPOSE)?;
        let mut updated = map.clone();
        for (field, target) in &self.fields {
            updated.insert(field.clone(), cast_value(&map.get_or_null(field), *target)?);
        }
        Ok(side.with(record, Value::Map(updated)))
    }
}

/// `castValueToType(null, value, targetType)`.
pub fn cast_value(value: &Value, target: Target) -> Result<Value, RecordError> {
    let Some(schema_type) = value.schema_type() else { return Ok(Value::Null) };
    if matches!(value, Value::Array(_) | Value::Map(_)) {
        return Err(RecordError::data(format!(
            "Cast transformation does not support casting from {schema_type}; supported types are {SUPPORTED_INPUT}"
        )));
    }
    let out_of_range =
        || RecordError::data(format!("Value ({}) was out of range for requested data type", value.java_to_string()));
    let integer = |min: i64, max: i64| -> Result<i64, RecordError> {
        match value {
            Value::String(s) => parse_integer(s, min, max).ok_or_else(out_of_range),
            Value::Boolean(b) => Ok(i64::from(*b)),
            _ => unreachable!("numbers are handled by the caller"),
        }
    };
    Ok(match target {
        Target::Int8 => Value::Int8(match number(value) {
            Some(n) => n.byte_value(),
            None => integer(i8::MIN.into(), i8::MAX.into())? as i8,
        }),
        Target::Int16 => Value::Int16(match number(value) {
            Some(n) => n.short_value(),
            None => integer(i16::MIN.into(), i16::MAX.into())? as i16,
        }),
        Target::Int32 => Value::Int32(match number(value) {
            Some(n) => n.int_value(),
            None => integer(i32::MIN.into(), i32::MAX.into())? as i32,
        }),
        Target::Int64 => Value::Int64(match number(value) {
            Some(n) => n.long_value(),
            None => integer(i64::MIN, i64::MAX)?,
        }),
        Target::Float32 => Value::Float32(match (number(value), value) {
            (Some(n), _) => n.float_value(),
            (None, Value::Boolean(b)) => f32::from(u8::from(*b)),
            (None, Value::String(s)) => parse_double(s).ok_or_else(out_of_range)? as f32,
            _ => unreachable!("every input type is a number, boolean or string"),
        }),
        Target::Float64 => Value::Float64(match (number(value), value) {
            (Some(n), _) => n.double_value(),
            (None, Value::Boolean(b)) => f64::from(u8::from(*b)),
            (None, Value::String(s)) => parse_double(s).ok_or_else(out_of_range)?,
            _ => unreachable!("every input type is a number, boolean or string"),
        }),
        Target::Boolean => Value::Boolean(match (number(value), value) {
            (Some(n), _) => n.long_value() != 0,
            (None, Value::Boolean(b)) => *b,
            (None, Value::String(s)) => parse_boolean(s),
            _ => unreachable!("every input type is a number, boolean or string"),
        }),
        Target::String => Value::String(value.java_to_string()),
    })
}

/// A `java.lang.Number`: integral or floating.
#[derive(Clone, Copy)]
enum Number {
    Integral(i64),
    Floating(f64),
}

fn number(value: &Value) -> Option<Number> {
    Some(match value {
        Value::Int8(v) => Number::Integral((*v).into()),
        Value::Int16(v) => Number::Integral((*v).into()),
        Value::Int32(v) => Number::Integral((*v).into()),
        Value::Int64(v) => Number::Integral(*v),
        Value::Float32(v) => Number::Floating((*v).into()),
        Value::Float64(v) => Number::Floating(*v),
        _ => return None,
    })
}

impl Number {
    /// `byteValue()`: a long wraps; a float or double narrows through `int` (JLS 5.1.3).
    fn byte_value(self) -> i8 {
        match self {
            Number::Integral(v) => v as i8,
            Number::Floating(v) => (v as i32) as i8,
        }
    }

    fn short_value(self) -> i16 {
        match self {
            Number::Integral(v) => v as i16,
            Number::Floating(v) => (v as i32) as i16,
        }
    }

    /// `intValue()`: a long wraps; a double saturates, NaN is 0 (Rust's `as` does the same).
    fn int_value(self) -> i32 {
        match self {
            Number::Integral(v) => v as i32,
            Number::Floating(v) => v as i32,
        }
    }

    fn long_value(self) -> i64 {
        match self {
            Number::Integral(v) => v,
            Number::Floating(v) => v as i64,
        }
    }

    /// `floatValue()`: rounds to the nearest float (a long directly, not through a double).
    fn float_value(self) -> f32 {
        match self {
            Number::Integral(v) => v as f32,
            Number::Floating(v) => v as f32,
        }
    }

    /// `doubleValue()`.
    fn double_value(self) -> f64 {
        match self {
            Number::Integral(v) => v as f64,
            Number::Floating(v) => v,
        }
    }
}
