//! Records and record batches: what producers send and what logs hold.
//!
//! Kafka writes records in batches. A batch carries the epoch of the leader that appended it (the
//! leader epoch that KIP-101 truncation relies on) and, for an idempotent producer, its producer id
//! and the sequence number of its first record, which is how a broker recognises a retried batch.

use serde::{Deserialize, Serialize};

/// One record. Keys and values are text in ksim, so a learner can read them in the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: Option<String>,
    pub value: String,
}

impl Record {
    /// Bytes this record takes in a batch, approximately as Kafka's v2 format counts them
    /// (a varint-framed record: attributes, deltas, key and value lengths, plus the payload).
    pub fn size_bytes(&self) -> usize {
        const RECORD_OVERHEAD_BYTES: usize = 8;
        RECORD_OVERHEAD_BYTES + self.key.as_ref().map_or(0, |k| k.len()) + self.value.len()
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
    pub records: Vec<Record>,
    /// Written inside a transaction (the batch attribute `isTransactional`): its records count
    /// for `read_committed` consumers only once the transaction's COMMIT marker follows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_transactional: bool,
    /// A control batch: one transaction marker (the batch attribute `isControlBatch`, its one
    /// record a `EndTransactionMarker`). Markers take an offset and are never given to
    /// applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlMarker>,
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
            records,
            is_transactional: false,
            control: None,
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
            vec![Record { key: None, value: value.to_string() }],
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

    /// The offset after this batch's last record.
    pub fn next_offset(&self) -> i64 {
        self.base_offset + self.len()
    }

    pub fn last_offset(&self) -> i64 {
        self.next_offset() - 1
    }

    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            NO_SEQUENCE
        } else {
            self.base_sequence.wrapping_add(self.records.len() as i32 - 1)
        }
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    pub fn size_bytes(&self) -> usize {
        BATCH_OVERHEAD_BYTES + self.records.iter().map(Record::size_bytes).sum::<usize>()
    }
}
