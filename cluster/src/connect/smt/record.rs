//! The record a transform sees: a `SourceRecord` (a source connector made it, on its way to
//! Kafka) or a `SinkRecord` (read from Kafka, on its way to a sink connector; it has an offset).
//! Schemaless: `keySchema` and `valueSchema` are null.

use super::data::Value;

/// One Connect record (`ConnectRecord`), without schemas.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// `topic()`: may be null in Java (a predicate handles that); the CLI always sets one.
    pub topic: Option<String>,
    /// `kafkaPartition()`: null when a source connector leaves it to the producer.
    pub partition: Option<i32>,
    pub key: Value,
    pub value: Value,
    /// `timestamp()`: null when the record has none.
    pub timestamp: Option<i64>,
    /// `headers()`: each header's key and (string) value, in order; keys may repeat.
    pub headers: Vec<(String, String)>,
    /// `Some` for a `SinkRecord`.
    pub sink: Option<SinkPart>,
}

/// What a `SinkRecord` adds: its offset, and where it was read from (KIP-793: `originalTopic()`
/// and friends keep the values from before any transform rerouted the record).
#[derive(Clone, Debug, PartialEq)]
pub struct SinkPart {
    pub offset: i64,
    pub original_topic: Option<String>,
    pub original_partition: Option<i32>,
    pub original_offset: i64,
}

impl Record {
    /// A `SourceRecord`.
    pub fn source(topic: &str, partition: Option<i32>, key: Value, value: Value, timestamp: Option<i64>) -> Record {
        Record { topic: Some(topic.to_string()), partition, key, value, timestamp, headers: Vec::new(), sink: None }
    }

    /// A `SinkRecord` read at `offset`.
    pub fn sink(topic: &str, partition: i32, offset: i64, key: Value, value: Value, timestamp: Option<i64>) -> Record {
        Record {
            topic: Some(topic.to_string()),
            partition: Some(partition),
            key,
            value,
            timestamp,
            headers: Vec::new(),
            sink: Some(SinkPart {
                offset,
                original_topic: Some(topic.to_string()),
                original_partition: Some(partition),
                original_offset: offset,
            }),
        }
    }

    /// The same record with these headers.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Record {
        self.headers = headers;
        self
    }

    /// `SinkRecord.toString()` / `SourceRecord.toString()`, which Kafka puts in some messages
    /// (TimestampRouter's "Timestamp missing on record: ..."). Headers print as strings with a
    /// `Schema{STRING}`; a sink task's `SimpleHeaderConverter` would infer a type from each
    /// header's text instead.
    pub fn java_to_string(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
        let head = match &self.sink {
            Some(sink) => format!(
                "SinkRecord{{kafkaOffset={}, timestampType={}, originalTopic={}, originalKafkaPartition={}, originalKafkaOffset={}}}",
                sink.offset,
                if self.timestamp.is_some() { "CreateTime" } else { "NoTimestampType" },
                opt(sink.original_topic.clone()),
                opt(sink.original_partition.map(|p| p.to_string())),
                sink.original_offset
            ),
            None => "SourceRecord{sourcePartition=null, sourceOffset=null}".to_string(),
        };
        let headers = if self.headers.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self
                .headers
                .iter()
                .map(|(k, v)| format!("ConnectHeader(key={k}, value={v}, schema=Schema{{STRING}})"))
                .collect();
            format!("[{}]", list.join(", "))
        };
        format!(
            "{head} ConnectRecord{{topic='{}', kafkaPartition={}, key={}, keySchema=null, value={}, valueSchema=null, timestamp={}, headers=ConnectHeaders(headers={headers})}}",
            opt(self.topic.clone()),
            opt(self.partition.map(|p| p.to_string())),
            self.key.java_to_string(),
            self.value.java_to_string(),
            opt(self.timestamp.map(|t| t.to_string())),
        )
    }
}
