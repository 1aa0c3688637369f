//! Kafka's built-in predicates (`connect/transforms/.../predicates/`, KIP-585): a transform with
//! `predicate=<alias>` runs only on records the predicate holds for (or, with `negate=true`,
//! only on those it does not).

use super::config::{non_empty_string, ConfigException, Default, Key, Parsed, Type, Values};
use super::java_regex::JavaPattern;
use super::record::Record;
use super::transforms::regex_router::regex_validator;

const PACKAGE: &str = "org.apache.kafka.connect.transforms.predicates.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    TopicNameMatches,
    HasHeaderKey,
    RecordIsTombstone,
}

/// A predicate class by its full name.
pub fn class(name: &str) -> Option<Kind> {
    match name.strip_prefix(PACKAGE)? {
        "TopicNameMatches" => Some(Kind::TopicNameMatches),
        "HasHeaderKey" => Some(Kind::HasHeaderKey),
        "RecordIsTombstone" => Some(Kind::RecordIsTombstone),
        _ => None,
    }
}

/// `ConfigDef.CompositeValidator.of(new NonEmptyString(), new RegexValidator())`.
fn pattern_validator(name: &str, value: &Parsed) -> Result<(), ConfigException> {
    non_empty_string(name, value)?;
    regex_validator(name, value)
}

const TOPIC_NAME_MATCHES: &[Key] = &[Key::validated("pattern", Type::String, Default::Required, pattern_validator)];
const HAS_HEADER_KEY: &[Key] = &[Key::validated("name", Type::String, Default::Required, non_empty_string)];

pub fn config_def(kind: Kind) -> &'static [Key] {
    match kind {
        Kind::TopicNameMatches => TOPIC_NAME_MATCHES,
        Kind::HasHeaderKey => HAS_HEADER_KEY,
        Kind::RecordIsTombstone => &[],
    }
}

/// A configured predicate.
#[derive(Clone, Debug)]
pub enum Predicate {
    /// True when the *whole* topic name matches (`Matcher.matches()`); false for a null topic.
    TopicNameMatches(JavaPattern),
    /// True when at least one header has this key.
    HasHeaderKey(String),
    /// True when the value is null.
    RecordIsTombstone,
}

impl Predicate {
    pub fn configure(kind: Kind, values: &Values) -> Result<Predicate, ConfigException> {
        Ok(match kind {
            Kind::TopicNameMatches => {
                let pattern = values.string("pattern").unwrap_or_default();
                let compiled = JavaPattern::compile(&pattern).map_err(|e| {
                    ConfigException::invalid(
                        "pattern",
                        &pattern,
                        &format!("entry must be a Java-compatible regular expression: {e}"),
                    )
                })?;
                Predicate::TopicNameMatches(compiled)
            }
            Kind::HasHeaderKey => Predicate::HasHeaderKey(values.string("name").unwrap_or_default()),
            Kind::RecordIsTombstone => Predicate::RecordIsTombstone,
        })
    }

    /// `predicate.test(record)`.
    pub fn test(&self, record: &Record) -> bool {
        match self {
            Predicate::TopicNameMatches(pattern) => record.topic.as_deref().is_some_and(|t| pattern.matches(t)),
            Predicate::HasHeaderKey(name) => record.headers.iter().any(|(k, _)| k == name),
            Predicate::RecordIsTombstone => record.value == super::data::Value::Null,
        }
    }
}
