//! Transactions: what `read_committed` consumers return, who holds each producer epoch, and
//! whether committed transactions stay.
//!
//! - **read-aborted** (a promise): a `read_committed` consumer never returns a record of a
//!   transaction that was aborted or is still undecided. The broker serves it only below the last
//!   stable offset (`UnifiedLog.lastStableOffset`), which no undecided transaction's first offset
//!   is below, and it drops the batches the aborted-transaction index names
//!   (`CompletedFetch`). So every transactional record it returns has its COMMIT marker committed
//!   (below a high watermark) already. Markers are never returned to anyone.
//! - **two-producers-in-epoch** (an invariant): the coordinator hands each epoch of a
//!   `transactional.id` to one producer (`InitProducerId` bumps it and fences the rest), so no
//!   two clients ever initialise with the same producer id and epoch.
//! - **committed-transaction-lost** (a promise under the acknowledged-write conditions:
//!   `acks=all`, `min.insync.replicas` >= 2, clean elections; otherwise a lesson): at the end,
//!   every committed transaction's records are in the partition leader's log, followed by their
//!   COMMIT marker.
//!
//! The checker learns which offsets hold transactional records and markers as replicas commit
//! them ([`super::replication`]), so it also knows which offsets a consumer may legitimately step
//! over: every marker, and for a `read_committed` consumer the records of aborted transactions.

use super::{Checker, Finding, Rule};
use crate::nodes::Nodes;
use ksim_cluster::node::NodeId;
use ksim_cluster::record::{ControlType, RecordBatch};
use ksim_cluster::topic::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

/// A committed transactional batch's record, or a marker, at one offset: the producer id, and
/// the marker's type for a marker.
type TxnRecord = (i64, Option<ControlType>);

#[derive(Default)]
pub(super) struct Transactions {
    /// Consumers that read `read_committed`.
    pub(super) read_committed: BTreeSet<NodeId>,
    /// Transactional records and markers seen below a high watermark, by partition and offset.
    records: BTreeMap<TopicPartition, BTreeMap<i64, TxnRecord>>,
    /// (transactional.id, producer id, epoch) -> the client it was given to.
    epochs: BTreeMap<(String, i64, i16), NodeId>,
    /// Committed transactions.
    committed: Vec<CommittedTxn>,
}

/// A transaction its producer committed: the client, its `transactional.id` and producer id,
/// and where its records went.
struct CommittedTxn {
    client: NodeId,
    transactional_id: String,
    producer_id: i64,
    records: Vec<(TopicPartition, i64)>,
}

impl Transactions {
    pub(super) fn new(read_committed: BTreeSet<NodeId>) -> Self {
        Transactions { read_committed, ..Transactions::default() }
    }

    /// A replica has this batch's record at `offset` below its high watermark.
    pub(super) fn on_committed_record(&mut self, tp: &TopicPartition, offset: i64, batch: &RecordBatch) {
        if batch.is_transactional {
            let kind = batch.control.map(|m| m.control_type);
            self.records.entry(tp.clone()).or_default().insert(offset, (batch.producer_id, kind));
        }
    }

    /// How the transaction of the record at `offset` ended, as far as committed markers tell:
    /// the producer's first marker after it.
    fn fate(&self, tp: &TopicPartition, offset: i64, producer_id: i64) -> Option<ControlType> {
        let records = self.records.get(tp)?;
        records
            .range(offset + 1..)
            .find(|(_, (pid, kind))| *pid == producer_id && kind.is_some())
            .and_then(|(_, r)| r.1)
    }

    /// Whether a consumer may step over `offset` without returning it: a marker, or, read
    /// committed, an aborted transaction's record.
    pub(super) fn may_skip(&self, tp: &TopicPartition, offset: i64, read_committed: bool) -> bool {
        match self.records.get(tp).and_then(|r| r.get(&offset)) {
            Some((_, Some(_))) => true,
            Some((pid, None)) => read_committed && self.fate(tp, offset, *pid) == Some(ControlType::Abort),
            None => false,
        }
    }
}

impl Checker {
    /// A consumer returned the record at `tp@offset`.
    pub(super) fn check_read_committed(&mut self, node: NodeId, tp: &TopicPartition, offset: i64) -> Option<Finding> {
        if !self.transactions.read_committed.contains(&node) {
            return None;
        }
        let &(pid, kind) = self.transactions.records.get(tp)?.get(&offset)?;
        let problem = match (kind, self.transactions.fate(tp, offset, pid)) {
            (Some(_), _) => "a transaction marker",
            (None, Some(ControlType::Commit)) => return None,
            (None, Some(ControlType::Abort)) => "a record of an aborted transaction",
            (None, None) => "a record of a transaction not yet decided",
        };
        self.once(Rule::ReadAborted, tp, offset).then(|| {
            Finding::promise(
                Rule::ReadAborted,
                true,
                format!("{tp}@{offset}: a read_committed consumer returned {problem} (producer id {pid})"),
            )
        })
    }

    /// A producer initialised its transactions with this producer id and epoch.
    pub(super) fn on_txn_initialized(
        &mut self,
        node: NodeId,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Option<Finding> {
        let key = (transactional_id.to_string(), producer_id, producer_epoch);
        match self.transactions.epochs.insert(key, node) {
            Some(other) if other != node => Some(Finding::bug(
                Rule::TwoProducersInEpoch,
                format!(
                    "transactional.id {transactional_id}: {} and {} were both given producer id {producer_id} epoch {producer_epoch}",
                    self.client_names.get(&other).cloned().unwrap_or_else(|| other.to_string()),
                    self.client_names.get(&node).cloned().unwrap_or_else(|| node.to_string())
                ),
            )),
            _ => None,
        }
    }

    /// A producer's commitTransaction() returned: its records are committed.
    pub(super) fn on_txn_committed(
        &mut self,
        node: NodeId,
        transactional_id: &str,
        producer_id: i64,
        records: &[(TopicPartition, i64)],
    ) {
        self.transactions.committed.push(CommittedTxn {
            client: node,
            transactional_id: transactional_id.to_string(),
            producer_id,
            records: records.to_vec(),
        });
    }

    /// At the end: committed transactions whose records or COMMIT marker the leader's log lacks.
    pub(super) fn lost_transactions(&self, nodes: &Nodes) -> Vec<Finding> {
        let leaders = crate::nodes::current_leaders(nodes);
        let mut findings = Vec::new();
        for CommittedTxn { client: node, transactional_id, producer_id: pid, records } in &self.transactions.committed {
            let mut missing: Vec<(i64, String)> = Vec::new();
            let mut partitions: BTreeSet<&TopicPartition> = BTreeSet::new();
            for (tp, offset) in records {
                let logs = crate::nodes::partition_logs(nodes, tp);
                let Some((_, log)) = leaders.get(tp).and_then(|l| logs.iter().find(|(b, _)| b == l)) else { continue };
                if *offset < log.log_start_offset() {
                    continue;
                }
                let record_there =
                    log.record_at(*offset).is_some_and(|(b, _)| b.is_transactional && b.producer_id == *pid);
                let committed_after = log.batches().any(|b| {
                    b.base_offset > *offset
                        && b.producer_id == *pid
                        && b.control.is_some_and(|m| m.control_type == ControlType::Commit)
                });
                if !(record_there && committed_after) {
                    missing.push((*offset, tp.to_string()));
                    partitions.insert(tp);
                }
            }
            if missing.is_empty() {
                continue;
            }
            let tp = partitions.iter().next().copied().cloned().expect("one at least");
            let promised = partitions.iter().all(|tp| self.durability_promised(*node, tp));
            let why = if promised {
                "Kafka promises this with acks=all, min.insync.replicas>=2 and clean elections".to_string()
            } else {
                self.why_not_promised(*node, &tp)
            };
            findings.push(Finding::promise(
                Rule::CommittedTransactionLost,
                promised,
                format!(
                    "transactional.id {transactional_id}: a committed transaction lost {} record(s) or their COMMIT marker, at {} ({why})",
                    missing.len(),
                    missing.iter().map(|(o, tp)| format!("{tp}@{o}")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        findings
    }
}
