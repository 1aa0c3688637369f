//! `InsertField$Key` / `InsertField$Value` (InsertField.java): add fields from the record's
//! metadata (`topic.field`, `partition.field`, `offset.field`, `timestamp.field`) or a fixed
//! string (`static.field` with `static.value`).
//!
//! A field name may end in `!` (required) or `?` (optional, the default); the suffix only
//! matters for schemas, and is stripped. Schemaless: the topic is always put; the partition and
//! timestamp only when the record has them; the offset only exists on a `SinkRecord`, so
//! `offset.field` fails every source record ("Only SinkRecord supported for [field insertion],
//! ..."). A null key or value (a tombstone) passes through untouched.

use crate::connect::smt::config::{ConfigException, Default, Key, Type, Values};
use crate::connect::smt::data::Value;
use crate::connect::smt::error::RecordError;
use crate::connect::smt::record::Record;
use crate::connect::smt::transforms::{require_map, Side};

pub const CONFIG: &[Key] = &[
    Key::new("topic.field", Type::String, Default::Null),
    Key::new("partition.field", Type::String, Default::Null),
    Key::new("offset.field", Type::String, Default::Null),
    Key::new("timestamp.field", Type::String, Default::Null),
    Key::new("static.field", Type::String, Default::Null),
    Key::new("static.value", Type::String, Default::Null),
    Key::new("replace.null.with.default", Type::Boolean, Default::Boolean(true)),
];

const PURPOSE: &str = "field insertion";

#[derive(Clone, Debug)]
pub struct InsertField {
    topic: Option<String>,
    partition: Option<String>,
    offset: Option<String>,
    timestamp: Option<String>,
    static_field: Option<(String, String)>,
}

/// `InsertionSpec.parse`: the field name without its `?` / `!` suffix.
fn field_name(spec: Option<String>) -> Option<String> {
    spec.map(|s| s.strip_suffix(['?', '!']).map_or(s.clone(), str::to_string))
}

impl InsertField {
    pub fn configure(values: &Values) -> Result<InsertField, ConfigException> {
        let topic = field_name(values.string("topic.field"));
        let partition = field_name(values.string("partition.field"));
        let offset = field_name(values.string("offset.field"));
        let timestamp = field_name(values.string("timestamp.field"));
        let static_field = field_name(values.string("static.field"));
        let static_value = values.string("static.value");
        if topic.is_none() && partition.is_none() && offset.is_none() && timestamp.is_none() && static_field.is_none() {
            return Err(ConfigException::new("No field insertion configured"));
        }
        let static_field = match (static_field, static_value) {
            (Some(field), Some(value)) => Some((field, value)),
            (Some(_), None) => {
                // Java prints the InsertionSpec object itself, which has no toString: its class
                // name and identity hash code, which differs from run to run.
                return Err(ConfigException::invalid(
                    "static.value",
                    "null",
                    "No value specified for static field: org.apache.kafka.connect.transforms.InsertField$InsertionSpec@<identity hash>",
                ));
            }
            (None, _) => None,
        };
        Ok(InsertField { topic, partition, offset, timestamp, static_field })
    }

    pub fn apply(&self, side: Side, record: Record) -> Result<Record, RecordError> {
        let value = side.of(&record);
        if *value == Value::Null {
            return Ok(record);
        }
        let mut updated = require_map(value, PURPOSE)?.clone();
        if let Some(field) = &self.topic {
            updated.insert(field.clone(), record.topic.clone().map_or(Value::Null, Value::String));
        }
        if let (Some(field), Some(partition)) = (&self.partition, record.partition) {
            updated.insert(field.clone(), Value::Int32(partition));
        }
        if let Some(field) = &self.offset {
            // Requirements.requireSinkRecord.
            let Some(sink) = &record.sink else {
                return Err(RecordError::data(format!(
                    "Only SinkRecord supported for [{PURPOSE}], found: org.apache.kafka.connect.source.SourceRecord"
                )));
            };
            updated.insert(field.clone(), Value::Int64(sink.offset));
        }
        if let (Some(field), Some(timestamp)) = (&self.timestamp, record.timestamp) {
            updated.insert(field.clone(), Value::Int64(timestamp));
        }
        if let Some((field, value)) = &self.static_field {
            updated.insert(field.clone(), Value::String(value.clone()));
        }
        Ok(side.with(record, Value::Map(updated)))
    }
}
