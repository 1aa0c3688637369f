//! A source task: poll the external system, run each record through the transformation chain,
//! convert it, hand it to the producer, and remember how far it got.
//!
//! Kafka's `WorkerSourceTask` (and `AbstractWorkerSourceTask.sendRecords`) with
//! `SubmittedRecords` and `OffsetStorageWriter`:
//! - Each polled record carries a *source offset* (here the row id). The task submits it to the
//!   producer; a record the chain drops is not submitted (`recordDropped`).
//! - The producer acknowledges records in any order across partitions; an offset becomes
//!   *committable* only when it and every record submitted before it are acknowledged
//!   (`SubmittedRecords.committableOffsets`): an offset never gets ahead of an unwritten record.
//! - Every `offset.flush.interval.ms` (60 s) the worker flushes the committable offset to the
//!   offset store (`OffsetStorageWriter.beginFlush`/`doFlush`): the `connect-offsets` topic in
//!   distributed mode, a local file in standalone mode. A restarted task resumes after the last
//!   *flushed* offset, so every record produced since that flush is produced again:
//!   at-least-once.
//!
//! The exactly-once variant (KIP-618, `ExactlyOnceWorkerSourceTask`) writes the records and the
//! offset in one producer transaction: the worker drives that with the same task, committing
//! the batch's offset inside the transaction instead of on the flush interval.

use super::connector::{ConnectorConfig, SourceSettings};
use super::errors::ErrorPolicy;
use super::external::SourceTable;
use super::smt::{Chain, Map, Record, Value};
use std::collections::VecDeque;

/// A record the task hands to the producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Submission number, for the acknowledgement.
    pub seq: u64,
    pub topic: String,
    /// The key as the JSON converter serialized it (`None`: a null key).
    pub key: Option<String>,
    pub value: String,
    /// The record's source offset (row id).
    pub offset: i64,
}

/// What one poll produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    pub records: Vec<Outgoing>,
    /// Rows the chain dropped (a `Filter`, say): read, never sent.
    pub dropped: Vec<i64>,
    /// Rows a transformation failed on and `errors.tolerance=all` skipped: (row id, why).
    pub skipped: Vec<(i64, String)>,
    /// The task failed (`errors.tolerance=none`): why.
    pub failed: Option<String>,
}

pub struct SourceTask {
    pub connector: String,
    pub task: u32,
    settings: SourceSettings,
    chain: Chain,
    errors: ErrorPolicy,
    /// The last row id read (in memory; a restart goes back to the offset store's).
    position: i64,
    next_seq: u64,
    /// Submitted records in submission order: (seq, offset, acknowledged).
    submitted: VecDeque<(u64, i64, bool)>,
    /// The highest offset whose record, and every record submitted before it, is acknowledged.
    committable: Option<i64>,
    /// The offset of the last flush that completed.
    flushed: Option<i64>,
    /// A flush in progress: the offset being written.
    flushing: Option<i64>,
    failed: Option<String>,
}

impl SourceTask {
    /// A task of `config` (a source connector) resuming after `committed` (`None`: from the start).
    pub fn new(config: &ConnectorConfig, task: u32, committed: Option<i64>) -> SourceTask {
        let settings = config.source().expect("a source connector").clone();
        SourceTask {
            connector: config.name.clone(),
            task,
            settings,
            chain: config.chain.clone(),
            errors: config.errors.clone(),
            position: committed.unwrap_or(0),
            next_seq: 0,
            submitted: VecDeque::new(),
            committable: None,
            flushed: committed,
            flushing: None,
            failed: None,
        }
    }

    pub fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn position(&self) -> i64 {
        self.position
    }

    /// `{"table":"users"}`: the task's one source partition.
    pub fn source_partition(&self) -> String {
        let mut m = Map::new();
        m.insert("table".into(), Value::String(self.settings.table.clone()));
        Value::Map(m).to_json()
    }

    /// Read the next batch from `table` and run it through the chain.
    pub fn poll(&mut self, table: &SourceTable, now_ms: i64) -> Polled {
        let mut out = Polled::default();
        if self.failed.is_some() {
            return out;
        }
        let rows: Vec<(i64, Value)> = table.rows_after(self.position, self.settings.batch_max_rows).to_vec();
        for (id, row) in rows {
            self.position = id;
            let record = Record::source(&self.settings.topic, None, Value::Null, row, Some(now_ms));
            match self.chain.apply(record) {
                Ok(Some(r)) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.submitted.push_back((seq, id, false));
                    let key = (r.key != Value::Null).then(|| r.key.to_json());
                    let topic = r.topic.clone().unwrap_or_else(|| self.settings.topic.clone());
                    out.records.push(Outgoing { seq, topic, key, value: r.value.to_json(), offset: id });
                }
                Ok(None) => out.dropped.push(id),
                Err(error) if self.errors.tolerate_all => out.skipped.push((id, error.to_string())),
                Err(error) => {
                    let why = format!("a transformation failed on row {id} ({error}) with errors.tolerance=none");
                    self.failed = Some(why.clone());
                    out.failed = Some(why);
                    return out;
                }
            }
        }
        out
    }

    /// The producer acknowledged submission `seq`.
    pub fn acked(&mut self, seq: u64) {
        if let Some(entry) = self.submitted.iter_mut().find(|(s, _, _)| *s == seq) {
            entry.2 = true;
        }
        while let Some(&(_, offset, true)) = self.submitted.front() {
            self.committable = Some(offset);
            self.submitted.pop_front();
        }
    }

    /// The producer gave up on submission `seq`: `errors.tolerance` does not cover the producer
    /// (`KAFKA_PRODUCE` is not a tolerable stage), so the task fails.
    pub fn send_failed(&mut self, seq: u64, error: &str) -> String {
        let why = format!("the producer failed to send record {seq}: {error}");
        self.failed = Some(why.clone());
        why
    }

    /// `OffsetStorageWriter.beginFlush`: the offset to write now, if there is a new one.
    pub fn begin_flush(&mut self) -> Option<i64> {
        if self.flushing.is_some() || self.failed.is_some() {
            return None;
        }
        let offset = self.committable.filter(|c| Some(*c) != self.flushed)?;
        self.flushing = Some(offset);
        Some(offset)
    }

    /// The flush finished: written (`ok`) or not (`cancelFlush`: tried again next interval).
    pub fn flush_done(&mut self, ok: bool) {
        if let Some(offset) = self.flushing.take() {
            if ok {
                self.flushed = Some(offset);
            }
        }
    }

    /// Records submitted and not yet acknowledged.
    pub fn outstanding(&self) -> usize {
        self.submitted.iter().filter(|(_, _, acked)| !acked).count()
    }

    pub fn flushed(&self) -> Option<i64> {
        self.flushed
    }
}

/// The offset store's key for a connector's source partition, as `OffsetStorageWriter`
/// serializes it with the worker's internal JSON converter: `["connector",{"table":"users"}]`.
pub fn offset_key(connector: &str, source_partition: &str) -> String {
    format!("[{},{source_partition}]", Value::String(connector.to_string()).to_json())
}

/// The offset store's value: `{"incrementing":42}`.
pub fn offset_value(offset: i64) -> String {
    format!("{{\"incrementing\":{offset}}}")
}

/// Read back an offset value written by [`offset_value`].
pub fn parse_offset_value(value: &str) -> Option<i64> {
    match Value::from_json(value).ok()? {
        Value::Map(m) => match m.get("incrementing") {
            Some(Value::Int64(n)) => Some(*n),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> ConnectorConfig {
        let text = format!("name=users-source\nconnector.class=ksim.connect.TableSourceConnector\ntable=users\nbatch.max.rows=2\n{extra}");
        let props = crate::connect::properties::to_map(&crate::connect::properties::parse(&text).unwrap());
        ConnectorConfig::parse(&props).unwrap()
    }

    fn table(n: i64) -> SourceTable {
        let mut t = SourceTable::default();
        for id in 1..=n {
            t.insert(id, Value::from_json(&format!("{{\"id\":{id},\"gender\":\"f\",\"ip\":\"1.2.3.{id}\"}}")).unwrap());
        }
        t
    }

    #[test]
    fn an_offset_is_committable_only_once_every_earlier_record_is_acknowledged() {
        let mut task = SourceTask::new(&config(""), 0, None);
        let polled = task.poll(&table(3), 0);
        assert_eq!(polled.records.len(), 2);
        task.acked(1);
        assert_eq!(task.begin_flush(), None, "record 0 is not acknowledged yet");
        task.acked(0);
        assert_eq!(task.begin_flush(), Some(2));
        task.flush_done(true);
        assert_eq!(task.begin_flush(), None, "nothing new to flush");
        assert_eq!(task.poll(&table(3), 0).records[0].offset, 3);
    }

    #[test]
    fn a_restarted_task_resumes_after_the_flushed_offset_and_sends_again() {
        let mut task = SourceTask::new(&config(""), 0, Some(1));
        let polled = task.poll(&table(3), 0);
        assert_eq!(polled.records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn the_chain_masks_before_the_record_leaves_the_task() {
        let mut task = SourceTask::new(
            &config("transforms=drop,mask\ntransforms.drop.type=org.apache.kafka.connect.transforms.ReplaceField$Value\ntransforms.drop.exclude=gender\ntransforms.mask.type=org.apache.kafka.connect.transforms.MaskField$Value\ntransforms.mask.fields=ip"),
            0,
            None,
        );
        let polled = task.poll(&table(1), 0);
        assert_eq!(polled.records[0].value, r#"{"id":1,"ip":""}"#);
        assert_eq!(polled.records[0].key, None);
    }

    #[test]
    fn offsets_are_stored_under_connector_and_partition() {
        assert_eq!(offset_key("users-source", r#"{"table":"users"}"#), r#"["users-source",{"table":"users"}]"#);
        assert_eq!(parse_offset_value(&offset_value(42)), Some(42));
        assert_eq!(parse_offset_value("nope"), None);
    }
}
