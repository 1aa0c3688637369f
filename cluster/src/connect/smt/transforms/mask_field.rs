//! `MaskField$Key` / `MaskField$Value` (MaskField.java): replace each listed field's value with
//! the "null value" of its type, or with `replacement` converted to that type (KIP-437).
//!
//! The whole value goes: a string becomes `""` (or the replacement), a number `0`, a boolean
//! `false`, a list `[]`, a map `{}`. There is no partial mask: `1.2.3.95` becomes `""`, never
//! `1.2.3.XXX` (a `regex` option that would have done that, KAFKA-10466 / apache/kafka#9259, was
//! closed unmerged; a partial mask needs a custom transform). A field that is absent, or null,
//! becomes (or stays) null: `applySchemaless` puts `masked(value.get(field))` for every listed
//! field, so an absent field is added as null.
//!
//! With `replacement` (numeric and string fields only): a string field gets the replacement as
//! it is; a numeric field gets it converted as Connect's `Values.convertToLong` etc. convert text
//! (`new BigDecimal(text)`, truncated to the field's type); a boolean, list or map field cannot
//! take one ("Cannot mask value of type ... with custom replacement.").

use crate::connect::smt::config::{non_empty_list, non_empty_string, Default, Key, Type, Values};
use crate::connect::smt::data::{Map, Value};
use crate::connect::smt::error::RecordError;
use crate::connect::smt::java_number::BigDecimal;
use crate::connect::smt::transforms::require_map;

pub const CONFIG: &[Key] = &[
    Key::validated("fields", Type::List, Default::Required, non_empty_list),
    Key::validated("replacement", Type::String, Default::Null, non_empty_string),
    // Only schema'd records read this (a Struct field's default); kept so the key is accepted.
    Key::new("replace.null.with.default", Type::Boolean, Default::Boolean(true)),
];

const PURPOSE: &str = "mask fields";

#[derive(Clone, Debug)]
pub struct MaskField {
    /// Java keeps them in a `HashSet`; ksim in the order configured, without repeats.
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    pub fn configure(values: &Values) -> MaskField {
        let mut fields: Vec<String> = Vec::new();
        for field in values.list("fields") {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        MaskField { fields, replacement: values.string("replacement") }
    }

    /// `applySchemaless` on the operating value.
    pub fn apply(&self, value: &Value) -> Result<Value, RecordError> {
        let map = require_map(value, PURPOSE)?;
        let mut updated = map.clone();
        for field in &self.fields {
            updated.insert(field.clone(), self.masked(&map.get_or_null(field))?);
        }
        Ok(Value::Map(updated))
    }

    fn masked(&self, value: &Value) -> Result<Value, RecordError> {
        if *value == Value::Null {
            return Ok(Value::Null);
        }
        match &self.replacement {
            None => Ok(null_value(value)),
            Some(replacement) => with_replacement(value, replacement),
        }
    }
}

/// `maskWithNullValue`: `PRIMITIVE_VALUE_MAPPING`, then an empty list or map.
fn null_value(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Boolean(_) => Value::Boolean(false),
        Value::Int8(_) => Value::Int8(0),
        Value::Int16(_) => Value::Int16(0),
        Value::Int32(_) => Value::Int32(0),
        Value::Int64(_) => Value::Int64(0),
        Value::Float32(_) => Value::Float32(0.0),
        Value::Float64(_) => Value::Float64(0.0),
        Value::String(_) => Value::String(String::new()),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::Map(_) => Value::Map(Map::new()),
    }
}

/// `maskWithCustomReplacement`: `REPLACEMENT_MAPPING_FUNC` by the field's class.
fn with_replacement(value: &Value, replacement: &str) -> Result<Value, RecordError> {
    // Values.asLong / asDouble: new BigDecimal(text), or this DataException.
    let number = || {
        BigDecimal::parse(replacement).ok_or_else(|| {
            RecordError::data(format!("Unable to convert {replacement} (class java.lang.String) to a number"))
        })
    };
    Ok(match value {
        Value::Int8(_) => Value::Int8(number()?.long_value() as i8),
        Value::Int16(_) => Value::Int16(number()?.long_value() as i16),
        Value::Int32(_) => Value::Int32(number()?.long_value() as i32),
        Value::Int64(_) => Value::Int64(number()?.long_value()),
        Value::Float32(_) => Value::Float32(number()?.double_value() as f32),
        Value::Float64(_) => Value::Float64(number()?.double_value()),
        Value::String(_) => Value::String(replacement.to_string()),
        other => {
            return Err(RecordError::data(format!(
                "Cannot mask value of type {} with custom replacement.",
                other.java_class()
            )))
        }
    })
}
