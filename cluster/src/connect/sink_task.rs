//! A sink task: take the records its consumer read, convert and transform each one, write it to
//! the external store, and commit the consumer's offsets on the flush interval.
//!
//! Kafka's `WorkerSinkTask`:
//! - Its consumer is a member of the group `connect-<connector>` (`SinkUtils.consumerGroupId`),
//!   subscribed to the connector's `topics`; the group spreads the partitions over the
//!   connector's tasks, wherever they run.
//! - Each record is converted (`convertAndTransformRecord`: key converter, value converter,
//!   then the transformation chain) under the `RetryWithToleranceOperator`; one that fails is
//!   skipped or fails the task ([`super::errors`]). The rest go to `SinkTask.put`.
//! - Every `offset.flush.interval.ms` (60 s, `WorkerSinkTask.commitOffsets`) the task flushes the
//!   connector and commits the consumer's position. A crash between a write and the next commit
//!   makes the group hand those records out again: the store sees them twice. An upserting store
//!   rewrites the same entry (no trace left); an appending store holds them twice.

use super::connector::{ConnectorConfig, SinkSettings};
use super::errors::{judge, ErrorPolicy, Failure, Origin, Stage, Verdict};
use super::smt::{Chain, Record, Value};

/// One record as the task's consumer returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
}

/// What the task does with one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Write this to the store: the entry's key and what the store holds.
    Write { key: String, value: String },
    /// A transformation dropped the record (a `Filter`): nothing is written.
    Dropped,
    /// The record failed and is skipped (`errors.tolerance=all`); with a dead letter queue its
    /// original key and value go there with these headers.
    Skipped { failure: Failure, dead_letter: Option<(String, Vec<(String, String)>)> },
    /// The record failed and the task stops.
    TaskFailed(Failure),
}

pub struct SinkTask {
    pub connector: String,
    pub task: u32,
    settings: SinkSettings,
    chain: Chain,
    errors: ErrorPolicy,
    failed: Option<Failure>,
}

const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
const DATA_EXCEPTION: &str = "org.apache.kafka.connect.errors.DataException";

impl SinkTask {
    pub fn new(config: &ConnectorConfig, task: u32) -> SinkTask {
        SinkTask {
            connector: config.name.clone(),
            task,
            settings: config.sink().expect("a sink connector").clone(),
            chain: config.chain.clone(),
            errors: config.errors.clone(),
            failed: None,
        }
    }

    pub fn settings(&self) -> &SinkSettings {
        &self.settings
    }

    /// The consumer group of the connector's tasks.
    pub fn group_id(connector: &str) -> String {
        format!("connect-{connector}")
    }

    pub fn failed(&self) -> Option<&Failure> {
        self.failed.as_ref()
    }

    /// Convert and transform one record, and decide what happens to it.
    pub fn process(&mut self, record: &Incoming) -> Outcome {
        let origin = Origin { topic: record.topic.clone(), partition: record.partition, offset: record.offset };
        let failed = |stage: Stage, executing_class: &str, exception_class: &str, message: String| Failure {
            stage,
            executing_class: executing_class.to_string(),
            exception_class: exception_class.to_string(),
            message,
        };
        // JsonConverter.toConnectData with schemas.enable=false.
        let convert = |text: &Option<String>, stage: Stage| -> Result<Value, Failure> {
            match text {
                None => Ok(Value::Null),
                Some(t) => Value::from_json(t).map_err(|_| {
                    failed(
                        stage,
                        JSON_CONVERTER,
                        DATA_EXCEPTION,
                        "Converting byte[] to Kafka Connect data failed due to serialization error: ".into(),
                    )
                }),
            }
        };
        let converted = convert(&record.key, Stage::KeyConverter).and_then(|key| {
            let value = convert(&Some(record.value.clone()), Stage::ValueConverter)?;
            Ok(Record::sink(&record.topic, record.partition, record.offset, key, value, None))
        });
        let transformed = converted.and_then(|r| {
            self.chain.apply(r).map_err(|e| {
                failed(
                    Stage::Transformation,
                    "org.apache.kafka.connect.runtime.TransformationChain",
                    &format!("org.apache.kafka.connect.errors.{}", e.exception),
                    e.message,
                )
            })
        });
        let record_out = match transformed {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::Dropped,
            Err(failure) => return self.judge(failure, &origin),
        };
        let value = if self.settings.upsert { record_out.value.to_json() } else { record_out.value.java_to_string() };
        // The store's own rule: an upserting store needs a key to write by. Its refusal is a
        // TASK_PUT failure: only the errant record reporter (KIP-610) can tolerate it.
        if self.settings.upsert && record_out.key == Value::Null {
            let failure = failed(
                Stage::TaskPut,
                "ksim.connect.KeyValueSinkTask",
                "org.apache.kafka.connect.errors.ConnectException",
                format!("record {}-{}@{} has no key to upsert by", record.topic, record.partition, record.offset),
            );
            if self.settings.uses_errant_record_reporter {
                return self.judge(failure, &origin);
            }
            self.failed = Some(failure.clone());
            return Outcome::TaskFailed(failure);
        }
        let key = match &record_out.key {
            Value::String(s) => s.clone(),
            other => other.to_json(),
        };
        Outcome::Write { key, value }
    }

    fn judge(&mut self, failure: Failure, origin: &Origin) -> Outcome {
        match judge(&self.errors, &failure, origin, &self.connector, self.task) {
            Verdict::FailTask => {
                self.failed = Some(failure.clone());
                Outcome::TaskFailed(failure)
            }
            Verdict::Skip { dead_letter } => Outcome::Skipped { failure, dead_letter },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(extra: &str) -> SinkTask {
        let text =
            format!("name=crm\nconnector.class=ksim.connect.KeyValueSinkConnector\ntopics=users\nstore=crm\n{extra}");
        let props = crate::connect::properties::to_map(&crate::connect::properties::parse(&text).unwrap());
        SinkTask::new(&ConnectorConfig::parse(&props).unwrap(), 0)
    }

    fn incoming(key: Option<&str>, value: &str) -> Incoming {
        Incoming { topic: "users".into(), partition: 0, offset: 4, key: key.map(str::to_string), value: value.into() }
    }

    #[test]
    fn a_keyed_json_record_is_upserted_by_its_key() {
        let out = task("").process(&incoming(Some("1"), r#"{"id":1,"name":"ann"}"#));
        assert_eq!(out, Outcome::Write { key: "1".into(), value: r#"{"id":1,"name":"ann"}"#.into() });
    }

    #[test]
    fn a_record_that_is_not_json_fails_the_task_by_default() {
        let mut t = task("");
        assert!(
            matches!(t.process(&incoming(Some("1"), "record-0")), Outcome::TaskFailed(f) if f.stage == Stage::ValueConverter)
        );
        assert!(t.failed().is_some());
    }

    #[test]
    fn with_tolerance_all_it_goes_to_the_dead_letter_queue_with_its_context() {
        let mut t = task(
            "errors.tolerance=all\nerrors.deadletterqueue.topic.name=dlq-crm\nerrors.deadletterqueue.context.headers.enable=true",
        );
        let Outcome::Skipped { dead_letter: Some((topic, headers)), .. } = t.process(&incoming(Some("1"), "record-0"))
        else {
            panic!("expected a dead letter")
        };
        assert_eq!(topic, "dlq-crm");
        assert!(headers.contains(&("__connect.errors.stage".into(), "VALUE_CONVERTER".into())));
        assert!(headers.contains(&("__connect.errors.offset".into(), "4".into())));
    }

    #[test]
    fn a_store_refusal_reaches_the_dead_letter_queue_only_through_the_errant_record_reporter() {
        let dlq = "errors.tolerance=all\nerrors.deadletterqueue.topic.name=dlq-crm\n";
        assert!(
            matches!(task(dlq).process(&incoming(None, "{}")), Outcome::TaskFailed(f) if f.stage == Stage::TaskPut)
        );
        let with_reporter = format!("{dlq}ksim.errant.record.reporter=true");
        assert!(matches!(
            task(&with_reporter).process(&incoming(None, "{}")),
            Outcome::Skipped { dead_letter: Some(_), .. }
        ));
    }

    #[test]
    fn a_file_sink_appends_the_values_java_string() {
        let text = "name=audit\nconnector.class=org.apache.kafka.connect.file.FileStreamSinkConnector\ntopics=users\nfile=audit.log";
        let props = crate::connect::properties::to_map(&crate::connect::properties::parse(text).unwrap());
        let mut t = SinkTask::new(&ConnectorConfig::parse(&props).unwrap(), 0);
        assert_eq!(
            t.process(&incoming(None, r#"{"id":1}"#)),
            Outcome::Write { key: "null".into(), value: "{id=1}".into() }
        );
    }
}
