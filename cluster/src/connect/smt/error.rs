//! What can go wrong: a configuration Kafka refuses ([`ConfigException`], before any record), a
//! record a transform rejects ([`RecordError`], usually Kafka's `DataException`), or something
//! Kafka does that ksim does not model ([`BuildError::Unsupported`], said plainly rather than
//! guessed at).

pub use super::config::ConfigException;
use std::fmt;

/// An exception a transform or predicate throws for one record. In a real task it fails the task
/// (with `errors.tolerance=none`, the default) or sends the record to the dead letter queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// The Java exception's simple class name: `DataException` for nearly everything; the
    /// JDK's `IllegalArgumentException` or `IndexOutOfBoundsException` where Kafka lets one
    /// through (a bad `$` group reference in RegexRouter's `replacement`, a bad date pattern).
    pub exception: &'static str,
    pub message: String,
}

impl RecordError {
    /// `new DataException(message)` (`org.apache.kafka.connect.errors.DataException`).
    pub fn data(message: impl Into<String>) -> RecordError {
        RecordError { exception: "DataException", message: message.into() }
    }

    pub fn illegal_argument(message: impl Into<String>) -> RecordError {
        RecordError { exception: "IllegalArgumentException", message: message.into() }
    }

    pub fn index_out_of_bounds(message: impl Into<String>) -> RecordError {
        RecordError { exception: "IndexOutOfBoundsException", message: message.into() }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.exception, self.message)
    }
}

/// Why a chain could not be built from a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// Kafka refuses this configuration, with this message.
    Config(ConfigException),
    /// Kafka would accept (or at least load) this, but ksim does not model it.
    Unsupported(String),
}

impl From<ConfigException> for BuildError {
    fn from(e: ConfigException) -> BuildError {
        BuildError::Config(e)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            BuildError::Config(e) => write!(f, "ConfigException: {e}"),
            BuildError::Unsupported(what) => write!(f, "not supported by ksim: {what}"),
        }
    }
}
