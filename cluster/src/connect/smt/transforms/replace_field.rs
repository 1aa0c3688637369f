//! `ReplaceField$Key` / `ReplaceField$Value` (ReplaceField.java): keep or drop fields, and
//! rename them.
//!
//! A field stays when it is not in `exclude` and either `include` is empty or lists it
//! (`exclude` wins); a kept field is renamed by `renames` (`old:new,...`). Kafka 4.0 removed the
//! pre-2.7 names `blacklist` and `whitelist` (KIP-629; KAFKA-17530): they are ignored like any
//! unknown key. A null value (a tombstone) passes through untouched.

use crate::connect::smt::config::{java_split, ConfigException, Default, Key, Parsed, Type, Values};
use crate::connect::smt::data::{Map, Value};
use crate::connect::smt::error::RecordError;
use crate::connect::smt::record::Record;
use crate::connect::smt::transforms::{require_map, Side};

pub const CONFIG: &[Key] = &[
    Key::new("exclude", Type::List, Default::EmptyList),
    Key::new("include", Type::List, Default::EmptyList),
    Key::validated("renames", Type::List, Default::EmptyList, validate_renames),
    Key::new("replace.null.with.default", Type::Boolean, Default::Boolean(true)),
];

const PURPOSE: &str = "field replacement";

#[derive(Clone, Debug)]
pub struct ReplaceField {
    exclude: Vec<String>,
    include: Vec<String>,
    /// `old -> new`; a repeated `old` keeps its last mapping, as Java's `HashMap.put` does.
    renames: Vec<(String, String)>,
}

fn validate_renames(_name: &str, value: &Parsed) -> Result<(), ConfigException> {
    match value {
        Parsed::List(items) => parse_renames(items).map(|_| ()),
        _ => Ok(()),
    }
}

/// `parseRenameMappings`. Its message names `renames` whatever the key is called in the
/// connector's configuration (the code passes `ConfigName.RENAMES`).
fn parse_renames(mappings: &[String]) -> Result<Vec<(String, String)>, ConfigException> {
    let mut renames: Vec<(String, String)> = Vec::new();
    for mapping in mappings {
        let parts = java_split(mapping, ':');
        if parts.len() != 2 {
            return Err(ConfigException::invalid(
                "renames",
                &format!("[{}]", mappings.join(", ")),
                &format!("Invalid rename mapping: {mapping}"),
            ));
        }
        match renames.iter_mut().find(|(old, _)| old == parts[0]) {
            Some(entry) => entry.1 = parts[1].to_string(),
            None => renames.push((parts[0].to_string(), parts[1].to_string())),
        }
    }
    Ok(renames)
}

impl ReplaceField {
    pub fn configure(values: &Values) -> Result<ReplaceField, ConfigException> {
        Ok(ReplaceField {
            exclude: values.list("exclude"),
            include: values.list("include"),
            renames: parse_renames(&values.list("renames"))?,
        })
    }

    /// `filter(fieldName)`.
    fn keeps(&self, field: &str) -> bool {
        !self.exclude.iter().any(|f| f == field) && (self.include.is_empty() || self.include.iter().any(|f| f == field))
    }

    /// `renamed(fieldName)`.
    fn renamed(&self, field: &str) -> String {
        self.renames.iter().find(|(old, _)| old == field).map_or(field, |(_, new)| new.as_str()).to_string()
    }

    pub fn apply(&self, side: Side, record: Record) -> Result<Record, RecordError> {
        let value = side.of(&record);
        if *value == Value::Null {
            return Ok(record);
        }
        let map = require_map(value, PURPOSE)?;
        let updated: Map =
            map.iter().filter(|(k, _)| self.keeps(k)).map(|(k, v)| (self.renamed(k), v.clone())).collect();
        Ok(side.with(record, Value::Map(updated)))
    }
}
