//! What a task does when a record fails (KIP-298, `RetryWithToleranceOperator` and
//! `DeadLetterQueueReporter` in `connect/runtime/.../errors/`).
//!
//! A record passes through *stages*: a sink task converts its key and value (`KEY_CONVERTER`,
//! `VALUE_CONVERTER`), runs the transformations (`TRANSFORMATION`), then hands it to the
//! connector (`TASK_PUT`). A failure in a converter or a transformation is *tolerable*: with
//! `errors.tolerance=all` the record is skipped (and, for a sink connector with
//! `errors.deadletterqueue.topic.name`, its original bytes go to that topic); with `none` (the
//! default) the task fails and stops. Only a `RetriableException` is retried, for up to
//! `errors.retry.timeout` (0: never), with backoff up to `errors.retry.delay.max.ms`: a record
//! that is not JSON stays not JSON, so conversion and transformation failures are never retried.
//!
//! A failure inside the connector's own write (`TASK_PUT`) is not the operator's to tolerate:
//! it fails the task, unless the connector itself reports the record to the *errant record
//! reporter* (KIP-610), which puts it through the same tolerance and dead letter queue.
//!
//! With `errors.deadletterqueue.context.headers.enable=true` the dead letter record carries
//! where it came from and why it failed in `__connect.errors.*` headers
//! (`DeadLetterQueueReporter.populateContextHeaders`).

use super::smt::{ConfigException, Props};
use crate::record::{Header, Record};

/// `errors.*` of one connector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorPolicy {
    /// `errors.tolerance=all`.
    pub tolerate_all: bool,
    /// `errors.retry.timeout` (ms, 0: no retries; -1: forever).
    pub retry_timeout_ms: i64,
    /// `errors.retry.delay.max.ms` (60000).
    pub retry_delay_max_ms: u64,
    /// `errors.log.enable`.
    pub log_enable: bool,
    /// `errors.deadletterqueue.topic.name` (sink connectors only; empty: none).
    pub dlq_topic: Option<String>,
    /// `errors.deadletterqueue.context.headers.enable` (false).
    pub dlq_context_headers: bool,
}

impl ErrorPolicy {
    /// Read the settings. A source connector has no dead letter queue: `SourceConnectorConfig`
    /// does not define the `errors.deadletterqueue.*` keys, so they are ignored there.
    pub fn parse(props: &Props, sink: bool) -> Result<ErrorPolicy, ConfigException> {
        let tolerate_all = match props.get("errors.tolerance").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "none" => false,
            Some(v) if v == "all" => true,
            Some(_) => {
                return Err(ConfigException::invalid(
                    "errors.tolerance",
                    &props["errors.tolerance"],
                    "String must be one of (case insensitive): NONE, ALL",
                ))
            }
        };
        let long = |key: &str, default: i64| -> Result<i64, ConfigException> {
            match props.get(key) {
                None => Ok(default),
                Some(raw) => {
                    raw.trim().parse().map_err(|_| ConfigException::invalid(key, raw, "Not a number of type LONG"))
                }
            }
        };
        let flag = |key: &str| props.get(key).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let dlq_topic =
            if sink { props.get("errors.deadletterqueue.topic.name").map(|t| t.trim().to_string()) } else { None };
        Ok(ErrorPolicy {
            tolerate_all,
            retry_timeout_ms: long("errors.retry.timeout", 0)?,
            retry_delay_max_ms: long("errors.retry.delay.max.ms", 60_000)?.max(0) as u64,
            log_enable: flag("errors.log.enable"),
            dlq_topic: dlq_topic.filter(|t| !t.is_empty()),
            dlq_context_headers: sink && flag("errors.deadletterqueue.context.headers.enable"),
        })
    }
}

/// `Stage`: where in a task's pipeline a record failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    Transformation,
    TaskPut,
}

impl Stage {
    /// `Stage.name()`, as the `__connect.errors.stage` header carries it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::TaskPut => "TASK_PUT",
        }
    }
}

/// One failure of one record: what the operator decides from, and what the headers report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    /// The class that was executing (`__connect.errors.class.name`).
    pub executing_class: String,
    /// The exception's fully qualified class.
    pub exception_class: String,
    pub message: String,
}

/// Where a failed record came from (a sink record's topic, partition and offset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What the task does with a failed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `errors.tolerance=none`, or a failure no tolerance covers: the task fails.
    FailTask,
    /// Skip it; with `dead_letter`, send its original key and value to the dead letter queue
    /// with these headers.
    Skip { dead_letter: Option<(String, Vec<(String, String)>)> },
}

/// `RetryWithToleranceOperator.execute` for a failure that retrying cannot fix, then the
/// reporters: the verdict for one failed record.
pub fn judge(policy: &ErrorPolicy, failure: &Failure, origin: &Origin, connector: &str, task: u32) -> Verdict {
    // TOLERABLE_EXCEPTIONS: converters and transformations tolerate every exception; other
    // stages only RetriableException, which ksim's stores never throw. A TASK_PUT failure
    // reaches here only through the errant record reporter, which tolerates it.
    if !policy.tolerate_all {
        return Verdict::FailTask;
    }
    let dead_letter = policy.dlq_topic.as_ref().map(|topic| {
        let headers =
            if policy.dlq_context_headers { context_headers(failure, origin, connector, task) } else { Vec::new() };
        (topic.clone(), headers)
    });
    Verdict::Skip { dead_letter }
}

/// `DeadLetterQueueReporter.populateContextHeaders`, in its order. ksim leaves out the stack
/// trace header's Java frames and writes the exception's one line instead.
pub fn context_headers(failure: &Failure, origin: &Origin, connector: &str, task: u32) -> Vec<(String, String)> {
    let h = |k: &str, v: String| (format!("__connect.errors.{k}"), v);
    vec![
        h("topic", origin.topic.clone()),
        h("partition", origin.partition.to_string()),
        h("offset", origin.offset.to_string()),
        h("connector.name", connector.to_string()),
        h("task.id", task.to_string()),
        h("stage", failure.stage.name().to_string()),
        h("class.name", failure.executing_class.clone()),
        h("exception.class.name", failure.exception_class.clone()),
        h("exception.message", failure.message.clone()),
        h("exception.stacktrace", format!("{}: {}", failure.exception_class, failure.message)),
    ]
}

/// The record `DeadLetterQueueReporter.report` sends to the dead letter queue: the consumed
/// record's key, value and headers as they were read, then each context header (when enabled)
/// whose key the record does not carry already (its `add` logs "Header already contains the
/// key" and skips it).
pub fn dead_letter_record(original: &Record, context: &[Header]) -> Record {
    let mut record = original.clone();
    for (key, value) in context {
        if !record.headers.iter().any(|(k, _)| k == key) {
            record.headers.push((key.clone(), value.clone()));
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_letter_record_keeps_the_original_headers_and_never_repeats_a_context_key() {
        let original = Record {
            key: Some("1".into()),
            value: Some("not json".into()),
            headers: vec![("trace-id".into(), "abc".into()), ("__connect.errors.stage".into(), "EARLIER".into())],
        };
        let context = context_headers(&failure(), &Origin { topic: "users".into(), partition: 0, offset: 4 }, "crm", 0);
        let sent = dead_letter_record(&original, &context);
        assert_eq!((sent.key.as_deref(), sent.value.as_deref()), (Some("1"), Some("not json")), "the original bytes");
        assert_eq!(sent.headers[0], ("trace-id".to_string(), "abc".to_string()), "the original headers first");
        let stages: Vec<&str> =
            sent.headers.iter().filter(|(k, _)| k == "__connect.errors.stage").map(|(_, v)| v.as_str()).collect();
        assert_eq!(stages, vec!["EARLIER"], "a key the record already has is not added again");
        assert_eq!(sent.headers.len(), 2 + context.len() - 1);
    }

    fn policy(text: &str) -> ErrorPolicy {
        let props = crate::connect::properties::to_map(&crate::connect::properties::parse(text).unwrap());
        ErrorPolicy::parse(&props, true).unwrap()
    }

    fn failure() -> Failure {
        Failure {
            stage: Stage::ValueConverter,
            executing_class: "org.apache.kafka.connect.json.JsonConverter".into(),
            exception_class: "org.apache.kafka.connect.errors.DataException".into(),
            message: "bad".into(),
        }
    }

    #[test]
    fn tolerance_none_fails_the_task_and_all_skips_to_the_dead_letter_queue() {
        let origin = Origin { topic: "users".into(), partition: 0, offset: 7 };
        assert_eq!(judge(&policy(""), &failure(), &origin, "c", 0), Verdict::FailTask);
        assert_eq!(
            judge(&policy("errors.tolerance=all"), &failure(), &origin, "c", 0),
            Verdict::Skip { dead_letter: None }
        );
        let Verdict::Skip { dead_letter: Some((topic, headers)) } = judge(
            &policy("errors.tolerance=all\nerrors.deadletterqueue.topic.name=dlq\nerrors.deadletterqueue.context.headers.enable=true"),
            &failure(),
            &origin,
            "c",
            1,
        ) else {
            panic!("expected a dead letter")
        };
        assert_eq!(topic, "dlq");
        assert_eq!(headers[0], ("__connect.errors.topic".to_string(), "users".to_string()));
        assert_eq!(headers[2].1, "7");
        assert_eq!(headers[5].1, "VALUE_CONVERTER");
    }

    #[test]
    fn a_source_connector_has_no_dead_letter_queue() {
        let props = crate::connect::properties::to_map(
            &crate::connect::properties::parse("errors.tolerance=all\nerrors.deadletterqueue.topic.name=dlq").unwrap(),
        );
        assert_eq!(ErrorPolicy::parse(&props, false).unwrap().dlq_topic, None);
        assert!(ErrorPolicy::parse(
            &crate::connect::smt::Props::from([("errors.tolerance".into(), "some".into())]),
            true
        )
        .is_err());
    }
}
