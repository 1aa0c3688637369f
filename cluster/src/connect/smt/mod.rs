//! # Single message transforms
//!
//! Kafka Connect can change each record on its way through a connector: a source connector's
//! records on their way into Kafka, a sink connector's on their way out. A connector's
//! configuration lists *transformations* (`transforms=...`), applied one after the other; each
//! gets the record and returns a new one, or nothing to drop it. *Predicates* (`predicates=...`)
//! make a transformation conditional. Typical uses: mask personal data before it reaches Kafka,
//! add where a record came from (lineage), drop fields, route records to other topics, cast
//! types for the target system.
//!
//! This module is that engine, without a Connect worker around it: [`Chain::from_properties`]
//! builds the chain from a connector's settings exactly as Kafka's `ConnectorConfig` does (with
//! its `ConfigException` messages), and [`Chain::apply`] runs one [`Record`] through it (with the
//! transforms' `DataException` messages). Records are schemaless (JSON with
//! `schemas.enable=false`), their values typed as Connect's `JsonConverter` types them.
//!
//! The map:
//! - [`chain`]: the chain, its configuration rounds, predicates and `negate`.
//! - [`transforms`]: the built-in transformations, one file each; [`predicates`] the built-in
//!   predicates.
//! - [`record`], [`data`]: the record and its schemaless values.
//! - [`config`]: Kafka's `ConfigDef` rules (parsing, defaults, validators, messages);
//!   [`error`]: what can fail.
//! - [`java_regex`], [`java_number`], [`date_format`]: the Java library behaviour transforms rely
//!   on (`java.util.regex`, `Long.parseLong` and friends, `SimpleDateFormat`).

pub mod chain;
pub mod config;
pub mod data;
pub mod date_format;
pub mod error;
pub mod java_number;
pub mod java_regex;
pub mod predicates;
pub mod record;
pub mod transforms;

pub use chain::Chain;
pub use config::{ConfigException, Props};
pub use data::{Map, Value};
pub use error::{BuildError, RecordError};
pub use record::Record;
