//! # Kafka Connect
//!
//! Connect moves data between Kafka and other systems: *source* connectors write records into
//! Kafka, *sink* connectors read them out, and Connect workers run their tasks. So far ksim has
//! the part that needs no worker:
//! - [`smt`]: single message transforms, the chain a connector applies to each record;
//! - [`properties`]: Java's `.properties` syntax, in which connector configurations are written.

pub mod properties;
pub mod smt;
