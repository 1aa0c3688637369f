//! Kafka's built-in transformations (`connect/transforms/src/main/java/org/apache/kafka/connect/transforms/`),
//! schemaless paths only, one file each.
//!
//! Most come in two concrete classes, `$Key` and `$Value`: the same code applied to the record's
//! key or to its value ([`Side`]). The abstract outer class (`MaskField` without a suffix) cannot
//! be instantiated, and Kafka says so with a hint (`Utils.ensureConcreteSubclass`).

pub mod cast;
pub mod extract_field;
pub mod flatten;
pub mod hoist_field;
pub mod insert_field;
pub mod mask_field;
pub mod regex_router;
pub mod replace_field;
pub mod timestamp_router;
pub mod value_to_key;

use super::config::{Key, Values};
use super::data::{Map, Value};
use super::error::{BuildError, RecordError};
use super::record::Record;

/// Which part of the record a `$Key` / `$Value` transform works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Key,
    Value,
}

impl Side {
    /// `operatingValue(record)`.
    pub fn of(self, record: &Record) -> &Value {
        match self {
            Side::Key => &record.key,
            Side::Value => &record.value,
        }
    }

    /// `newRecord(record, ..., updatedValue)`: the record with this side replaced, everything
    /// else (topic, partition, timestamp, headers, the other side) kept.
    pub fn with(self, mut record: Record, value: Value) -> Record {
        match self {
            Side::Key => record.key = value,
            Side::Value => record.value = value,
        }
        record
    }
}

/// `Requirements.requireMap(value, purpose)`.
pub fn require_map<'a>(value: &'a Value, purpose: &str) -> Result<&'a Map, RecordError> {
    match value {
        Value::Map(map) => Ok(map),
        other => Err(RecordError::data(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            other.java_class_name()
        ))),
    }
}

/// The built-in transformations, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cast,
    ExtractField,
    Filter,
    Flatten,
    HoistField,
    InsertField,
    MaskField,
    RegexRouter,
    ReplaceField,
    TimestampRouter,
    ValueToKey,
}

const PACKAGE: &str = "org.apache.kafka.connect.transforms.";

/// The transformations that come as `$Key` / `$Value`, by simple name.
const SIDED: &[(&str, Kind)] = &[
    ("Cast", Kind::Cast),
    ("ExtractField", Kind::ExtractField),
    ("Flatten", Kind::Flatten),
    ("HoistField", Kind::HoistField),
    ("InsertField", Kind::InsertField),
    ("MaskField", Kind::MaskField),
    ("ReplaceField", Kind::ReplaceField),
];

/// The ones that do not.
const UNSIDED: &[(&str, Kind)] = &[
    ("Filter", Kind::Filter),
    ("RegexRouter", Kind::RegexRouter),
    ("TimestampRouter", Kind::TimestampRouter),
    ("ValueToKey", Kind::ValueToKey),
];

/// Kafka's other built-ins, which ksim does not implement yet.
pub const NOT_IN_KSIM: &[&str] = &[
    "DropHeaders",
    "HeaderFrom$Key",
    "HeaderFrom$Value",
    "InsertHeader",
    "SetSchemaMetadata$Key",
    "SetSchemaMetadata$Value",
    "TimestampConverter$Key",
    "TimestampConverter$Value",
];

/// What a class name in `transforms.<alias>.type` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    Transformation(Kind, Option<Side>),
    /// An abstract class; its concrete `$Key` / `$Value` classes.
    Abstract(String),
    /// A built-in transformation ksim does not implement.
    NotInKsim,
    /// Not a transformation class ksim knows (it may be a predicate's class).
    Unknown,
}

/// Look up a transformation class by its full name.
pub fn class(name: &str) -> Class {
    let Some(simple) = name.strip_prefix(PACKAGE) else { return Class::Unknown };
    if NOT_IN_KSIM.contains(&simple) || ["HeaderFrom", "SetSchemaMetadata", "TimestampConverter"].contains(&simple) {
        return Class::NotInKsim;
    }
    if let Some((_, kind)) = UNSIDED.iter().find(|(n, _)| *n == simple) {
        return Class::Transformation(*kind, None);
    }
    for (base, kind) in SIDED {
        if simple == *base {
            // `klass.getClasses()`, which lists member classes in no specified order; ksim
            // names them in declaration order.
            return Class::Abstract(format!("{PACKAGE}{base}$Key, {PACKAGE}{base}$Value"));
        }
        match simple.strip_prefix(base) {
            Some("$Key") => return Class::Transformation(*kind, Some(Side::Key)),
            Some("$Value") => return Class::Transformation(*kind, Some(Side::Value)),
            _ => {}
        }
    }
    Class::Unknown
}

/// `transformation.config()`: the keys the class defines, in definition order.
pub fn config_def(kind: Kind) -> &'static [Key] {
    match kind {
        Kind::Cast => cast::CONFIG,
        Kind::ExtractField => extract_field::CONFIG,
        Kind::Filter => &[],
        Kind::Flatten => flatten::CONFIG,
        Kind::HoistField => hoist_field::CONFIG,
        Kind::InsertField => insert_field::CONFIG,
        Kind::MaskField => mask_field::CONFIG,
        Kind::RegexRouter => regex_router::CONFIG,
        Kind::ReplaceField => replace_field::CONFIG,
        Kind::TimestampRouter => timestamp_router::CONFIG,
        Kind::ValueToKey => value_to_key::CONFIG,
    }
}

/// A configured transformation.
#[derive(Clone, Debug)]
pub enum Transformation {
    Cast(Side, cast::Cast),
    ExtractField(Side, extract_field::ExtractField),
    /// `Filter.apply` returns null: the record is dropped.
    Filter,
    Flatten(Side, flatten::Flatten),
    HoistField(Side, hoist_field::HoistField),
    InsertField(Side, insert_field::InsertField),
    MaskField(Side, mask_field::MaskField),
    RegexRouter(regex_router::RegexRouter),
    ReplaceField(Side, replace_field::ReplaceField),
    TimestampRouter(timestamp_router::TimestampRouter),
    ValueToKey(value_to_key::ValueToKey),
}

impl Transformation {
    /// `transformation.configure(props)`: `values` is what the class's `ConfigDef` parsed from
    /// the settings under `transforms.<alias>.` (prefix removed).
    pub fn configure(kind: Kind, side: Option<Side>, values: &Values) -> Result<Transformation, BuildError> {
        let side = || side.expect("a $Key/$Value transformation has a side");
        Ok(match kind {
            Kind::Cast => Transformation::Cast(side(), cast::Cast::configure(values)?),
            Kind::ExtractField => Transformation::ExtractField(side(), extract_field::ExtractField::configure(values)?),
            Kind::Filter => Transformation::Filter,
            Kind::Flatten => Transformation::Flatten(side(), flatten::Flatten::configure(values)),
            Kind::HoistField => Transformation::HoistField(side(), hoist_field::HoistField::configure(values)),
            Kind::InsertField => Transformation::InsertField(side(), insert_field::InsertField::configure(values)?),
            Kind::MaskField => Transformation::MaskField(side(), mask_field::MaskField::configure(values)),
            Kind::RegexRouter => Transformation::RegexRouter(regex_router::RegexRouter::configure(values)?),
            Kind::ReplaceField => Transformation::ReplaceField(side(), replace_field::ReplaceField::configure(values)?),
            Kind::TimestampRouter => {
                Transformation::TimestampRouter(timestamp_router::TimestampRouter::configure(values)?)
            }
            Kind::ValueToKey => Transformation::ValueToKey(value_to_key::ValueToKey::configure(values)),
        })
    }

    /// `transformation.apply(record)`: the new record, or `None` to drop it.
    pub fn apply(&self, record: Record) -> Result<Option<Record>, RecordError> {
        Ok(Some(match self {
            Transformation::Cast(side, t) => t.apply(*side, record)?,
            Transformation::ExtractField(side, t) => {
                let value = t.apply(side.of(&record))?;
                side.with(record, value)
            }
            Transformation::Filter => return Ok(None),
            Transformation::Flatten(side, t) => t.apply(*side, record)?,
            Transformation::HoistField(side, t) => {
                let value = t.apply(side.of(&record));
                side.with(record, value)
            }
            Transformation::InsertField(side, t) => t.apply(*side, record)?,
            Transformation::MaskField(side, t) => {
                let value = t.apply(side.of(&record))?;
                side.with(record, value)
            }
            Transformation::RegexRouter(t) => t.apply(record)?,
            Transformation::ReplaceField(side, t) => t.apply(*side, record)?,
            Transformation::TimestampRouter(t) => t.apply(record)?,
            Transformation::ValueToKey(t) => t.apply(record)?,
        }))
    }
}
