//! Records and record batches: what producers send and what logs hold.
//!
//! Kafka writes records in batches. A batch carries the epoch of the leader that appended it (the
//! leader epoch that KIP-101 truncation relies on) and, for an idempotent producer, its producer id
//! and the sequence number of its first record, which is how a broker recognises a retried batch.
//!
//! A record whose value is null is a *tombstone*: on a compacted topic it deletes its key. The log
//! cleaner (see [`crate::log`]) removes records from batches but never renumbers them: a cleaned
//! batch keeps its base offset and its last offset (Kafka's v2 format keeps `baseOffset` and
//! `lastOffsetDelta` when `MemoryRecords.filterTo` rewrites a batch), and each record keeps its own
//! offset, so a reader sees gaps.

use serde::{Deserialize, Serialize};

/// One record. Keys and values are text in ksim, so a learner can read them in the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: Option<String>,
    /// `None` is a null value: a tombstone (Confluent.Kafka: `Value = null`).
    pub value: Option<String>,
    /// The record's headers, in order (KIP-82: a key may repeat): the producer sets them, the
    /// log keeps them, a consumer receives them. Kafka's header values are bytes; ksim's are
    /// text. Confluent.Kafka: `Message.Headers`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
}

/// One record header: its key and its value.
pub type Header = (String, String);

impl Record {
    /// Bytes this record takes in a batch, approximately as Kafka's v2 format counts them
    /// (a varint-framed record: attributes, deltas, key and value lengths, plus the payload).
    pub fn size_bytes(&self) -> usize {
        const RECORD_OVERHEAD_BYTES: usize = 8;
        // Each header: a varint key length, the key, a varint value length, the value.
        const HEADER_OVERHEAD_BYTES: usize = 2;
        let headers: usize = self.headers.iter().map(|(k, v)| HEADER_OVERHEAD_BYTES + k.len() + v.len()).sum();
        RECORD_OVERHEAD_BYTES
            + self.key.as_ref().map_or(0, |k| k.len())
            + self.value.as_ref().map_or(0, |v| v.len())
            + headers
    }

    /// A record with a key and a value.
    pub fn keyed(key: Option<&str>, value: &str) -> Self {
        Record { key: key.map(str::to_string), value: Some(value.to_string()), headers: Vec::new() }
    }

    /// A record with no key (the common case in ksim's own workloads).
    pub fn unkeyed(value: impl Into<String>) -> Self {
        Record { key: None, value: Some(value.into()), headers: Vec::new() }
    }

    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The value as the trace and the narration print it: a tombstone reads `null`.
    pub fn value_text(&self) -> &str {
        self.value.as_deref().unwrap_or("null")
    }
}

/// A batch's records, shared rather than copied: the producer's in-flight batch, the leader's
/// log, every follower's copy and each fetch that reads it hold the same records (a follower
/// appends what it fetched unchanged, as Kafka's replicas hold the same bytes). Cloning a batch
/// is cheap; changing its records (the log cleaner, a producer building a batch) copies them
/// first if anyone else holds them. Serialized as the list of records it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records(std::sync::Arc<Vec<Record>>);

impl Records {
    /// The records to change: copied first if another batch shares them.
    pub fn make_mut(&mut self) -> &mut Vec<Record> {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl std::ops::Deref for Records {
    type Target = Vec<Record>;
    fn deref(&self) -> &Vec<Record> {
        &self.0
    }
}

impl From<Vec<Record>> for Records {
    fn from(records: Vec<Record>) -> Self {
        Records(std::sync::Arc::new(records))
    }
}

impl FromIterator<Record> for Records {
    fn from_iter<I: IntoIterator<Item = Record>>(iter: I) -> Self {
        Records::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = &'a Record;
    type IntoIter = std::slice::Iter<'a, Record>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The records themselves: taken if this batch held them alone, copied if it shared them.
impl IntoIterator for Records {
    type Item = Record;
    type IntoIter = std::vec::IntoIter<Record>;
    fn into_iter(self) -> Self::IntoIter {
        std::sync::Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone()).into_iter()
    }
}

impl Serialize for Records {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Record>::deserialize(deserializer).map(Records::from)
    }
}

/// Producer id and epoch of a producer that has none (idempotence off): Kafka writes -1.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_SEQUENCE: i32 = -1;

/// The header Kafka's v2 batch format spends before the first record.
pub const BATCH_OVERHEAD_BYTES: usize = 61;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch {
    /// Offset of the first record; assigned by the leader on append.
    pub base_offset: i64,
    /// Epoch of the leader that appended this batch.
    pub leader_epoch: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence number of the first record, per producer and partition.
    pub base_sequence: i32,
    /// When the producer created the batch (Kafka's `CreateTime`, the default timestamp type);
    /// time-based retention compares against it.
    pub timestamp_ms: u64,
    pub records: Records,
    /// Written inside a transaction (the batch attribute `isTransactional`): its records count
    /// for `read_committed` consumers only once the transaction's COMMIT marker follows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_transactional: bool,
    /// A control batch: one transaction marker (the batch attribute `isControlBatch`, its one
    /// record a `EndTransactionMarker`). Markers take an offset and are never given to
    /// applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlMarker>,
    /// Set once the log cleaner has removed records from this batch: the offset of each record
    /// still in it, and the batch's original extent. `None`: the records are consecutive from the
    /// base offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaned: Option<CleanedLayout>,
    /// KIP-534's `deleteHorizonMs` (a v2 batch header field, flagged by the `hasDeleteHorizonMs`
    /// attribute): the first cleaning that kept this batch's tombstones or marker sets it to
    /// `now + delete.retention.ms`; a later cleaning past it may remove them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_horizon_ms: Option<u64>,
}

/// Where a cleaned batch's remaining records sit (Kafka keeps each record's `offsetDelta` and the
/// batch's `lastOffsetDelta` when it rewrites a batch: `MemoryRecords.buildRetainedRecordsInto`
/// overrides the last offset with the original one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanedLayout {
    /// Offset delta of each record still in the batch, in order.
    pub offset_deltas: Vec<i64>,
    /// The delta of the batch's original last record: the batch still ends where it ended.
    pub last_offset_delta: i64,
}

/// Which way a transaction ended (`ControlRecordType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ControlType {
    Commit,
    Abort,
}

/// A transaction marker (`EndTransactionMarker`): the outcome, and the epoch of the coordinator
/// that wrote it, so a partition can refuse a marker from a deposed coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlMarker {
    pub control_type: ControlType,
    pub coordinator_epoch: i32,
}

impl RecordBatch {
    pub fn new_unassigned(
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        timestamp_ms: u64,
        records: Vec<Record>,
    ) -> Self {
        RecordBatch {
            base_offset: -1,
            leader_epoch: -1,
            producer_id,
            producer_epoch,
            base_sequence,
            timestamp_ms,
            records: records.into(),
            is_transactional: false,
            control: None,
            cleaned: None,
            delete_horizon_ms: None,
        }
    }

    /// A transaction marker for a producer (`MemoryRecords.withEndTransactionMarker`): one control
    /// record, transactional, with no sequence. Its record reads `COMMIT` or `ABORT` in the trace.
    pub fn new_marker(producer_id: i64, producer_epoch: i16, timestamp_ms: u64, marker: ControlMarker) -> Self {
        let value = match marker.control_type {
            ControlType::Commit => "COMMIT",
            ControlType::Abort => "ABORT",
        };
        let mut batch = RecordBatch::new_unassigned(
            producer_id,
            producer_epoch,
            NO_SEQUENCE,
            timestamp_ms,
            vec![Record::unkeyed(value)],
        );
        batch.is_transactional = true;
        batch.control = Some(marker);
        batch
    }

    pub fn is_control(&self) -> bool {
        self.control.is_some()
    }

    pub fn len(&self) -> i64 {
        self.records.len() as i64
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The offset after this batch's last record (its original last record, if cleaned).
    pub fn next_offset(&self) -> i64 {
        self.base_offset + self.cleaned.as_ref().map_or(self.len(), |c| c.last_offset_delta + 1)
    }

    /// The offset of the `index`-th record still in the batch.
    pub fn offset_of(&self, index: usize) -> i64 {
        self.base_offset + self.cleaned.as_ref().map_or(index as i64, |c| c.offset_deltas[index])
    }

    /// Each record still in the batch with its offset.
    pub fn records_with_offsets(&self) -> impl Iterator<Item = (i64, &Record)> {
        self.records.iter().enumerate().map(|(i, r)| (self.offset_of(i), r))
    }

    /// The record at `offset`, if this batch still holds it.
    pub fn record_at(&self, offset: i64) -> Option<&Record> {
        let delta = offset - self.base_offset;
        let index = match &self.cleaned {
            None => usize::try_from(delta).ok()?,
            Some(c) => c.offset_deltas.binary_search(&delta).ok()?,
        };
        self.records.get(index)
    }

    /// Keep only the records `keep` says to keep, with their offsets, as the log cleaner rewrites
    /// a batch. The batch's base and last offsets do not change.
    pub fn retain_records(&mut self, mut keep: impl FnMut(i64, &Record) -> bool) -> usize {
        let last_offset_delta = self.next_offset() - 1 - self.base_offset;
        let mut offset_deltas = Vec::with_capacity(self.records.len());
        let mut records = Vec::with_capacity(self.records.len());
        let before = self.records.len();
        for (i, record) in std::mem::take(&mut self.records).into_iter().enumerate() {
            let offset = self.offset_of(i);
            if keep(offset, &record) {
                offset_deltas.push(offset - self.base_offset);
                records.push(record);
            }
        }
        let removed = before - records.len();
        self.records = records.into();
        if removed > 0 {
            self.cleaned = Some(CleanedLayout { offset_deltas, last_offset_delta });
        }
        removed
    }

    pub fn last_offset(&self) -> i64 {
        self.next_offset() - 1
    }

    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            NO_SEQUENCE
        } else {
            // The batch's extent, not its record count: a cleaned batch keeps its sequence range
            // (`DefaultRecordBatch.lastSequence` is `baseSequence + lastOffsetDelta`).
            self.base_sequence.wrapping_add((self.next_offset() - self.base_offset - 1) as i32)
        }
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    pub fn size_bytes(&self) -> usize {
        BATCH_OVERHEAD_BYTES + self.records.iter().map(Record::size_bytes).sum::<usize>()
    }
}
