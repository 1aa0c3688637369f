//! `RegexRouter` (RegexRouter.java): when the *whole* topic matches `regex`
//! (`Matcher.matches()`), the topic becomes `Matcher.replaceFirst(replacement)` (`$1` is the
//! first group); otherwise the record is left alone. Java regex semantics: see `java_regex`.

use crate::connect::smt::config::{ConfigException, Default, Key, Parsed, Type, Values};
use crate::connect::smt::error::{BuildError, RecordError};
use crate::connect::smt::java_regex::JavaPattern;
use crate::connect::smt::record::Record;

pub const CONFIG: &[Key] = &[
    Key::validated("regex", Type::String, Default::Required, regex_validator),
    Key::new("replacement", Type::String, Default::Required),
];

/// `RegexValidator` (connect/transforms/util).
pub fn regex_validator(name: &str, value: &Parsed) -> Result<(), ConfigException> {
    match value {
        Parsed::String(s) => JavaPattern::compile(s)
            .map(|_| ())
            .map_err(|e| ConfigException::invalid(name, s, &format!("Invalid regex: {e}"))),
        _ => Ok(()),
    }
}

#[derive(Clone, Debug)]
pub struct RegexRouter {
    regex: JavaPattern,
    replacement: String,
}

impl RegexRouter {
    pub fn configure(values: &Values) -> Result<RegexRouter, BuildError> {
        let source = values.string("regex").unwrap_or_default();
        let regex = JavaPattern::compile(&source)
            .map_err(|e| ConfigException::invalid("regex", &source, &format!("Invalid regex: {e}")))?;
        Ok(RegexRouter { regex, replacement: values.string("replacement").unwrap_or_default() })
    }

    pub fn apply(&self, mut record: Record) -> Result<Record, RecordError> {
        let Some(topic) = &record.topic else {
            return Err(RecordError {
                exception: "NullPointerException",
                message: "RegexRouter: the record has no topic".into(),
            });
        };
        if self.regex.matches(topic) {
            record.topic = Some(self.regex.replace_first(topic, &self.replacement)?);
        }
        Ok(record)
    }
}
