//! `TimestampRouter` (TimestampRouter.java): the topic becomes `topic.format` (default
//! `${topic}-${timestamp}`) with `${topic}` replaced by the topic and then `${timestamp}` by the
//! record's timestamp formatted with `timestamp.format` (a `SimpleDateFormat` pattern, default
//! `yyyyMMdd`, always in UTC). A record without a timestamp is an error.
//!
//! Java builds the `SimpleDateFormat` lazily, on the first record, so a bad pattern is accepted
//! at configuration and fails every record with an `IllegalArgumentException`; ksim does the same.

use crate::connect::smt::config::{Default, Key, Type, Values};
use crate::connect::smt::date_format::{DateFormat, PatternError};
use crate::connect::smt::error::{BuildError, RecordError};
use crate::connect::smt::record::Record;

pub const CONFIG: &[Key] = &[
    Key::new("topic.format", Type::String, Default::String("${topic}-${timestamp}")),
    Key::new("timestamp.format", Type::String, Default::String("yyyyMMdd")),
];

#[derive(Clone, Debug)]
pub struct TimestampRouter {
    topic_format: String,
    /// `Err` holds the `IllegalArgumentException` message of a pattern Java refuses.
    timestamp_format: Result<DateFormat, String>,
}

impl TimestampRouter {
    pub fn configure(values: &Values) -> Result<TimestampRouter, BuildError> {
        let pattern = values.string("timestamp.format").unwrap_or_default();
        let timestamp_format = match DateFormat::compile(&pattern) {
            Ok(format) => Ok(format),
            Err(PatternError::Illegal(message)) => Err(message),
            Err(PatternError::Unsupported(letter)) => {
                return Err(BuildError::Unsupported(format!(
                    "the week-based SimpleDateFormat letter '{letter}' in timestamp.format={pattern}"
                )))
            }
        };
        Ok(TimestampRouter { topic_format: values.string("topic.format").unwrap_or_default(), timestamp_format })
    }

    pub fn apply(&self, mut record: Record) -> Result<Record, RecordError> {
        let Some(timestamp) = record.timestamp else {
            return Err(RecordError::data(format!("Timestamp missing on record: {}", record.java_to_string())));
        };
        let format = self.timestamp_format.as_ref().map_err(|e| RecordError::illegal_argument(e.clone()))?;
        let topic = record.topic.clone().unwrap_or_else(|| "null".into());
        let updated = self.topic_format.replace("${topic}", &topic).replace("${timestamp}", &format.format(timestamp));
        record.topic = Some(updated);
        Ok(record)
    }
}
