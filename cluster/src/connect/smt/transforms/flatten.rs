//! `Flatten$Key` / `Flatten$Value` (Flatten.java): nested maps become top-level fields named
//! `outer<delimiter>inner` (default delimiter `.`); arrays and their contents stay as they are;
//! a null field stays, a null key or value passes through. (Java builds the result as a
//! `LinkedHashMap`, so its order follows the input's.)

use crate::connect::smt::config::{Default, Key, Type, Values};
use crate::connect::smt::data::{Map, Value};
use crate::connect::smt::error::RecordError;
use crate::connect::smt::record::Record;
use crate::connect::smt::transforms::{require_map, Side};

pub const CONFIG: &[Key] = &[Key::new("delimiter", Type::String, Default::String("."))];

const PURPOSE: &str = "flattening";

#[derive(Clone, Debug)]
pub struct Flatten {
    delimiter: String,
}

impl Flatten {
    pub fn configure(values: &Values) -> Flatten {
        Flatten { delimiter: values.string("delimiter").unwrap_or_default() }
    }

    pub fn apply(&self, side: Side, record: Record) -> Result<Record, RecordError> {
        let value = side.of(&record);
        if *value == Value::Null {
            return Ok(record);
        }
        let map = require_map(value, PURPOSE)?;
        let mut flat = Map::new();
        self.flatten(map, "", &mut flat);
        Ok(side.with(record, Value::Map(flat)))
    }

    fn flatten(&self, map: &Map, prefix: &str, out: &mut Map) {
        for (key, value) in map.iter() {
            let name = if prefix.is_empty() { key.to_string() } else { format!("{prefix}{}{key}", self.delimiter) };
            match value {
                Value::Map(inner) => self.flatten(inner, &name, out),
                other => out.insert(name, other.clone()),
            }
        }
    }
}
