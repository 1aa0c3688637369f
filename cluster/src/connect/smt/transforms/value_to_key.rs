//! `ValueToKey` (ValueToKey.java): the key becomes a map of the listed fields of the value (an
//! absent field as null). The value must be a map: a null value is an error here, not a pass.

use crate::connect::smt::config::{non_empty_list, Default, Key, Type, Values};
use crate::connect::smt::data::{Map, Value};
use crate::connect::smt::error::RecordError;
use crate::connect::smt::record::Record;
use crate::connect::smt::transforms::require_map;

pub const CONFIG: &[Key] = &[
    Key::validated("fields", Type::List, Default::Required, non_empty_list),
    Key::new("replace.null.with.default", Type::Boolean, Default::Boolean(true)),
];

const PURPOSE: &str = "copying fields from value to key";

#[derive(Clone, Debug)]
pub struct ValueToKey {
    fields: Vec<String>,
}

impl ValueToKey {
    pub fn configure(values: &Values) -> ValueToKey {
        ValueToKey { fields: values.list("fields") }
    }

    pub fn apply(&self, mut record: Record) -> Result<Record, RecordError> {
        let value = require_map(&record.value, PURPOSE)?;
        let key: Map = self.fields.iter().map(|f| (f.clone(), value.get_or_null(f))).collect();
        record.key = Value::Map(key);
        Ok(record)
    }
}
