//! `HoistField$Key` / `HoistField$Value` (HoistField.java): wrap the whole key or value, null
//! included, in a map with one field, `field`.

use crate::connect::smt::config::{Default, Key, Type, Values};
use crate::connect::smt::data::{Map, Value};

pub const CONFIG: &[Key] = &[Key::new("field", Type::String, Default::Required)];

#[derive(Clone, Debug)]
pub struct HoistField {
    field: String,
}

impl HoistField {
    pub fn configure(values: &Values) -> HoistField {
        HoistField { field: values.string("field").unwrap_or_default() }
    }

    pub fn apply(&self, value: &Value) -> Value {
        Value::Map(Map::from_iter([(self.field.clone(), value.clone())]))
    }
}
