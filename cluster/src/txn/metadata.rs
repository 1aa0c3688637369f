//! What a transaction coordinator knows of one `transactional.id` (Kafka's `TransactionMetadata`),
//! and the record it writes to `__transaction_state` for each change (`TxnTransitMetadata`).
//!
//! Every change goes in two steps. `prepare_*` checks the move against the state table
//! ([`super::state`]), remembers the target as the *pending state* and returns the new metadata
//! to write; nothing else changes yet. Once the write is replicated, [`TransactionMetadata::
//! complete_transition_to`] applies it, after checking what Kafka checks (the epoch moved by at
//! most one, the partitions only grew, ...). If the write fails the pending state is dropped.
//! While a state is pending, the coordinator answers CONCURRENT_TRANSACTIONS.
//!
//! **Transaction versions.** Each change records the `clientTransactionVersion` it was made
//! under (the client's EndTxn version, or the server's feature level for the coordinator's own
//! aborts). Under the classic protocol (versions 0 and 1) the producer epoch changes only at
//! InitProducerId and when a transaction is fenced. Under version 2 (KIP-890 part 2,
//! `TransactionVersion.supportsEpochBump`) `prepare_abort_or_commit` also bumps it, so every
//! transaction has an epoch of its own and its markers carry it; when the bump would reach the
//! last epoch, the coordinator takes a new producer id (`nextProducerId`), which the Complete*
//! record installs at epoch 0.

use super::state::TransactionState::{self, *};
use crate::error::ErrorCode;
use crate::topic::TopicPartition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The epoch of a producer id nobody has used yet (`RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;

/// One state of a `transactional.id` as written to `__transaction_state` (its value; the key is
/// the `transactional.id`). Kafka's `TxnTransitMetadata`, and what `TransactionLog.valueToBytes`
/// stores of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnTransitMetadata {
    pub producer_id: i64,
    /// The producer id before this change (`prevProducerId`).
    pub prev_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId gets its answer again.
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: u64,
    pub state: TransactionState,
    pub topic_partitions: BTreeSet<TopicPartition>,
    /// When the first partition was added, -1 when no transaction runs.
    pub txn_start_timestamp_ms: i64,
    pub txn_last_update_timestamp_ms: i64,
    /// The producer id a transaction version 2 EndTxn took because the bumped epoch would be
    /// the last one (`nextProducerId`), installed with the Complete* record; -1 otherwise.
    #[serde(default = "no_producer_id", skip_serializing_if = "is_no_producer_id")]
    pub next_producer_id: i64,
    /// The transaction version of the change (`clientTransactionVersion`): 2 bumps the epoch at
    /// every EndTxn. (Kafka writes it from transaction version 1 on, a tagged field.)
    #[serde(default, skip_serializing_if = "is_classic")]
    pub client_transaction_version: u8,
}

fn no_producer_id() -> i64 {
    NO_PRODUCER_ID
}

fn is_no_producer_id(id: &i64) -> bool {
    *id == NO_PRODUCER_ID
}

fn is_classic(version: &u8) -> bool {
    *version == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub prev_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub txn_timeout_ms: u64,
    pub state: TransactionState,
    pub topic_partitions: BTreeSet<TopicPartition>,
    pub txn_start_timestamp_ms: i64,
    pub txn_last_update_timestamp_ms: i64,
    pub next_producer_id: i64,
    pub client_transaction_version: u8,
    /// The state a prepared change is taking this id to, until its write completes or fails.
    pub pending_state: Option<TransactionState>,
    /// A fence whose write failed: the epoch was already bumped in memory, so the next fence
    /// does not bump it again (the bumped epoch was never handed to anyone).
    pub has_failed_epoch_fence: bool,
}

/// Whether a producer id has used up its epochs: the last one, `Short.MAX_VALUE`, is kept so the
/// coordinator can always fence (`TransactionMetadata.isEpochExhausted`).
pub fn is_epoch_exhausted(producer_epoch: i16) -> bool {
    producer_epoch >= i16::MAX - 1
}

impl TransactionMetadata {
    /// A `transactional.id` seen for the first time: a fresh producer id, no epoch yet, Empty
    /// (how `TransactionCoordinator.handleInitProducerId` creates it).
    pub fn new(transactional_id: &str, producer_id: i64, txn_timeout_ms: u64, now_ms: i64) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            prev_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            txn_timeout_ms,
            state: Empty,
            topic_partitions: BTreeSet::new(),
            txn_start_timestamp_ms: -1,
            txn_last_update_timestamp_ms: now_ms,
            next_producer_id: NO_PRODUCER_ID,
            client_transaction_version: 0,
            pending_state: None,
            has_failed_epoch_fence: false,
        }
    }

    /// The metadata a coordinator rebuilds from the last record of this id in its partition
    /// (`TransactionLog.readTxnRecordValue` during loading).
    pub fn from_log(transactional_id: &str, record: &TxnTransitMetadata) -> Self {
        TransactionMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id: record.producer_id,
            prev_producer_id: record.prev_producer_id,
            producer_epoch: record.producer_epoch,
            last_producer_epoch: record.last_producer_epoch,
            txn_timeout_ms: record.txn_timeout_ms,
            state: record.state,
            topic_partitions: record.topic_partitions.clone(),
            txn_start_timestamp_ms: record.txn_start_timestamp_ms,
            txn_last_update_timestamp_ms: record.txn_last_update_timestamp_ms,
            next_producer_id: record.next_producer_id,
            client_transaction_version: record.client_transaction_version,
            pending_state: None,
            has_failed_epoch_fence: false,
        }
    }

    pub fn pending_transition_in_progress(&self) -> bool {
        self.pending_state.is_some()
    }

    pub fn is_producer_epoch_exhausted(&self) -> bool {
        is_epoch_exhausted(self.producer_epoch)
    }

    fn has_pending_transaction(&self) -> bool {
        matches!(self.state, Ongoing | PrepareAbort | PrepareCommit)
    }

    /// The current metadata as a transit record, to change a few fields of.
    fn transit(&self, state: TransactionState) -> TxnTransitMetadata {
        TxnTransitMetadata {
            producer_id: self.producer_id,
            prev_producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            txn_timeout_ms: self.txn_timeout_ms,
            state,
            topic_partitions: self.topic_partitions.clone(),
            txn_start_timestamp_ms: self.txn_start_timestamp_ms,
            txn_last_update_timestamp_ms: self.txn_last_update_timestamp_ms,
            next_producer_id: self.next_producer_id,
            client_transaction_version: self.client_transaction_version,
        }
    }

    /// Bump the epoch of an ongoing transaction to fence its producer, before aborting it
    /// (`prepareFenceProducerEpoch`). The bump is not bumped again after a failed fence.
    pub fn prepare_fence_producer_epoch(&mut self) -> TxnTransitMetadata {
        let mut data = self.transit(PrepareEpochFence);
        if !self.has_failed_epoch_fence && self.producer_epoch != i16::MAX {
            data.producer_epoch = self.producer_epoch + 1;
        }
        self.prepare_transition_to(data)
    }

    /// InitProducerId on an idle id: a new epoch (`prepareIncrementProducerEpoch`).
    /// `expected_epoch` is the epoch a producer that already had one sends (KIP-360): its own
    /// epoch bumps it, the previous one repeats the last answer (a retry), any other is fenced.
    pub fn prepare_increment_producer_epoch(
        &mut self,
        txn_timeout_ms: u64,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<TxnTransitMetadata, ErrorCode> {
        assert!(!self.is_producer_epoch_exhausted(), "epochs of producer {} are exhausted", self.producer_id);
        let mut data = self.transit(Empty);
        let bumped = self.producer_epoch + 1;
        match expected_epoch {
            None => {
                data.producer_epoch = bumped;
                data.last_producer_epoch = NO_PRODUCER_EPOCH;
            }
            Some(expected) if self.producer_epoch == NO_PRODUCER_EPOCH || expected == self.producer_epoch => {
                data.producer_epoch = bumped;
                data.last_producer_epoch = self.producer_epoch;
            }
            Some(expected) if expected == self.last_producer_epoch => {}
            Some(_) => return Err(ErrorCode::ProducerFenced),
        }
        data.txn_timeout_ms = txn_timeout_ms;
        data.topic_partitions = BTreeSet::new();
        data.txn_start_timestamp_ms = -1;
        data.txn_last_update_timestamp_ms = now_ms;
        Ok(self.prepare_transition_to(data))
    }

    /// InitProducerId when the epochs are exhausted: a new producer id at epoch 0
    /// (`prepareProducerIdRotation`).
    pub fn prepare_producer_id_rotation(
        &mut self,
        new_producer_id: i64,
        txn_timeout_ms: u64,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> TxnTransitMetadata {
        assert!(!self.has_pending_transaction(), "cannot rotate producer ids while a transaction is pending");
        let mut data = self.transit(Empty);
        data.producer_id = new_producer_id;
        data.producer_epoch = 0;
        data.last_producer_epoch = if record_last_epoch { self.producer_epoch } else { NO_PRODUCER_EPOCH };
        data.txn_timeout_ms = txn_timeout_ms;
        data.topic_partitions = BTreeSet::new();
        data.txn_start_timestamp_ms = -1;
        data.txn_last_update_timestamp_ms = now_ms;
        self.prepare_transition_to(data)
    }

    /// AddPartitionsToTxn: the transaction is Ongoing with these partitions too; the first
    /// partition starts its clock (`prepareAddPartitions`, which records the client's
    /// transaction version).
    pub fn prepare_add_partitions(
        &mut self,
        added: &BTreeSet<TopicPartition>,
        client_transaction_version: u8,
        now_ms: i64,
    ) -> TxnTransitMetadata {
        let mut data = self.transit(Ongoing);
        data.client_transaction_version = client_transaction_version;
        if matches!(self.state, Empty | CompleteAbort | CompleteCommit) {
            data.txn_start_timestamp_ms = now_ms;
        }
        data.topic_partitions.extend(added.iter().cloned());
        data.txn_last_update_timestamp_ms = now_ms;
        self.prepare_transition_to(data)
    }

    /// EndTxn (or a fence): PrepareCommit or PrepareAbort (`prepareAbortOrCommit`). Under the
    /// classic protocol the epoch stays; under transaction version 2 it is bumped (the previous
    /// one kept as `last_producer_epoch`), except past the last epoch for an abort, which goes
    /// through unbumped so a broken producer can still be cleaned up. `next_producer_id` is the
    /// id to continue with when the bump used up the epochs. A version 2 abort may end a
    /// transaction no partition was added to (`no_partition_added`): its start time is now.
    pub fn prepare_abort_or_commit(
        &mut self,
        state: TransactionState,
        client_transaction_version: u8,
        next_producer_id: i64,
        no_partition_added: bool,
        now_ms: i64,
    ) -> TxnTransitMetadata {
        assert!(matches!(state, PrepareCommit | PrepareAbort), "EndTxn prepares a commit or an abort, not {state}");
        let mut data = self.transit(state);
        if client_transaction_version >= 2 {
            if !(self.producer_epoch == i16::MAX && state == PrepareAbort) {
                data.producer_epoch = self.producer_epoch + 1;
            }
            data.last_producer_epoch = self.producer_epoch;
        }
        if no_partition_added {
            data.txn_start_timestamp_ms = now_ms;
        }
        data.next_producer_id = next_producer_id;
        data.client_transaction_version = client_transaction_version;
        data.txn_last_update_timestamp_ms = now_ms;
        self.prepare_transition_to(data)
    }

    /// Every marker is written: CompleteCommit or CompleteAbort, no partitions
    /// (`prepareComplete`).
    pub fn prepare_complete(&mut self, now_ms: i64) -> TxnTransitMetadata {
        self.has_failed_epoch_fence = false;
        let state = if self.state == PrepareCommit { CompleteCommit } else { CompleteAbort };
        let mut data = self.transit(state);
        // An epoch overflow under transaction version 2: the new producer id at epoch 0, the last
        // epoch kept at the one the client last saw.
        if self.client_transaction_version >= 2 && self.next_producer_id != NO_PRODUCER_ID {
            data.producer_id = self.next_producer_id;
            data.producer_epoch = 0;
        }
        data.next_producer_id = NO_PRODUCER_ID;
        data.topic_partitions = BTreeSet::new();
        data.txn_last_update_timestamp_ms = now_ms;
        self.prepare_transition_to(data)
    }

    /// A marker was written: the partition is done (`removePartition`).
    pub fn remove_partition(&mut self, tp: &TopicPartition) {
        assert!(
            matches!(self.state, PrepareCommit | PrepareAbort),
            "markers are only written for a prepared transaction, {} is {}",
            self.transactional_id,
            self.state
        );
        self.topic_partitions.remove(tp);
    }

    /// `prepareTransitionTo`: a bug in the coordinator if another change is pending or the move
    /// is not in the table, as Kafka's IllegalStateException.
    fn prepare_transition_to(&mut self, data: TxnTransitMetadata) -> TxnTransitMetadata {
        assert!(
            self.pending_state.is_none(),
            "{}: preparing {} while {:?} is pending",
            self.transactional_id,
            data.state,
            self.pending_state
        );
        assert!(data.producer_id >= 0, "illegal producer id {}", data.producer_id);
        assert!(data.state == Dead || data.producer_epoch >= 0, "illegal producer epoch {}", data.producer_epoch);
        assert!(
            data.state.can_follow(self.state),
            "{}: {} may not follow {}",
            self.transactional_id,
            data.state,
            self.state
        );
        self.pending_state = Some(data.state);
        data
    }

    /// The write of `transit` is replicated: apply it (`completeTransitionTo`), after Kafka's
    /// checks: the epoch same or bumped by one (or 0 on a new producer id), partitions only
    /// added until the prepare, which keeps them, and the timeout unchanged within a transaction.
    pub fn complete_transition_to(&mut self, transit: &TxnTransitMetadata) {
        let to = self.pending_state.unwrap_or_else(|| {
            panic!("{}: completing a transition to {} with none pending", self.transactional_id, transit.state)
        });
        assert_eq!(to, transit.state, "{}: the pending state is not the one written", self.transactional_id);
        // `validProducerEpoch`: under transaction version 2 a prepare bumped the epoch (the old one
        // is its last epoch), and a completion after an epoch overflow moved to a new producer id.
        let tv2 = transit.client_transaction_version >= 2;
        let same_epoch = if tv2 && matches!(to, CompleteCommit | CompleteAbort) && transit.producer_epoch == 0 {
            transit.last_producer_epoch == self.last_producer_epoch && transit.prev_producer_id == self.producer_id
        } else if tv2 && matches!(to, PrepareCommit | PrepareAbort) {
            transit.last_producer_epoch == self.producer_epoch && transit.producer_id == self.producer_id
        } else {
            transit.producer_epoch == self.producer_epoch && transit.producer_id == self.producer_id
        };
        // A version 2 abort of an idle id sets a start time of its own.
        let empty_abort = to == PrepareAbort && tv2 && matches!(self.state, Empty | CompleteCommit | CompleteAbort);
        let valid = match to {
            Empty => {
                let bumped = transit.producer_epoch == self.producer_epoch.wrapping_add(1)
                    || (transit.producer_epoch == 0 && transit.producer_id != self.producer_id);
                (transit.producer_epoch == self.producer_epoch || bumped)
                    && transit.topic_partitions.is_empty()
                    && transit.txn_start_timestamp_ms == -1
            }
            Ongoing => {
                same_epoch
                    && transit.topic_partitions.is_superset(&self.topic_partitions)
                    && transit.txn_timeout_ms == self.txn_timeout_ms
            }
            PrepareCommit | PrepareAbort => {
                same_epoch
                    && transit.topic_partitions == self.topic_partitions
                    && transit.txn_timeout_ms == self.txn_timeout_ms
                    && (transit.txn_start_timestamp_ms == self.txn_start_timestamp_ms || empty_abort)
            }
            CompleteCommit | CompleteAbort => {
                same_epoch && transit.txn_timeout_ms == self.txn_timeout_ms && transit.txn_start_timestamp_ms != -1
            }
            // Only ever pending: a fence continues as PrepareAbort before anything is written.
            PrepareEpochFence => false,
            Dead => false,
        };
        assert!(valid, "{}: unexpected metadata completing {to}: {transit:?} over {self:?}", self.transactional_id);
        self.producer_id = transit.producer_id;
        self.prev_producer_id = transit.prev_producer_id;
        self.producer_epoch = transit.producer_epoch;
        self.last_producer_epoch = transit.last_producer_epoch;
        self.txn_timeout_ms = transit.txn_timeout_ms;
        self.topic_partitions = transit.topic_partitions.clone();
        self.txn_start_timestamp_ms = transit.txn_start_timestamp_ms;
        self.txn_last_update_timestamp_ms = transit.txn_last_update_timestamp_ms;
        self.next_producer_id = transit.next_producer_id;
        self.client_transaction_version = transit.client_transaction_version;
        self.pending_state = None;
        self.state = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(names: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
        names.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect()
    }

    fn initialised() -> TransactionMetadata {
        let mut m = TransactionMetadata::new("tx", 1000, 60_000, 0);
        let t = m.prepare_increment_producer_epoch(60_000, None, 0).unwrap();
        m.complete_transition_to(&t);
        m
    }

    #[test]
    fn a_new_id_gets_epoch_zero_and_each_init_bumps_it() {
        let mut m = initialised();
        assert_eq!((m.state, m.producer_epoch, m.last_producer_epoch), (Empty, 0, NO_PRODUCER_EPOCH));
        let t = m.prepare_increment_producer_epoch(60_000, None, 5).unwrap();
        m.complete_transition_to(&t);
        assert_eq!(m.producer_epoch, 1);
    }

    #[test]
    fn a_change_is_applied_only_when_completed_and_blocks_others_meanwhile() {
        let mut m = initialised();
        let t = m.prepare_add_partitions(&tps(&[("a", 0)]), 0, 10);
        assert_eq!(m.state, Empty, "nothing changes before the write completes");
        assert!(m.pending_transition_in_progress());
        m.complete_transition_to(&t);
        assert_eq!((m.state, m.txn_start_timestamp_ms), (Ongoing, 10));
        let t = m.prepare_add_partitions(&tps(&[("b", 1)]), 0, 20);
        m.complete_transition_to(&t);
        assert_eq!(m.topic_partitions, tps(&[("a", 0), ("b", 1)]));
        assert_eq!(m.txn_start_timestamp_ms, 10, "adding partitions keeps the start time");
    }

    #[test]
    #[should_panic(expected = "pending")]
    fn preparing_twice_is_a_coordinator_bug() {
        let mut m = initialised();
        m.prepare_add_partitions(&tps(&[("a", 0)]), 0, 10);
        m.prepare_add_partitions(&tps(&[("b", 0)]), 0, 11);
    }

    #[test]
    #[should_panic(expected = "may not follow")]
    fn committing_an_empty_transaction_is_a_coordinator_bug() {
        let mut m = initialised();
        m.prepare_abort_or_commit(PrepareCommit, 0, NO_PRODUCER_ID, false, 10);
    }

    #[test]
    fn a_retried_init_with_the_previous_epoch_repeats_the_answer_and_a_stale_one_is_fenced() {
        let mut m = initialised();
        let t = m.prepare_increment_producer_epoch(60_000, Some(0), 1).unwrap();
        m.complete_transition_to(&t);
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (1, 0));
        // a retry of that call: the previous epoch gets the current one again
        let t = m.prepare_increment_producer_epoch(60_000, Some(0), 2).unwrap();
        assert_eq!(t.producer_epoch, 1);
        m.complete_transition_to(&t);
        // anything else is a zombie
        assert_eq!(m.prepare_increment_producer_epoch(60_000, Some(7), 3), Err(ErrorCode::ProducerFenced));
        assert!(!m.pending_transition_in_progress(), "a refused init prepares nothing");
    }

    #[test]
    fn a_fence_bumps_the_epoch_once_even_if_its_write_failed() {
        let mut m = initialised();
        let t = m.prepare_add_partitions(&tps(&[("a", 0)]), 0, 10);
        m.complete_transition_to(&t);
        let fence = m.prepare_fence_producer_epoch();
        assert_eq!(fence.producer_epoch, 1);
        // the abort that follows puts the bumped epoch in memory before its write
        // (TransactionCoordinator.endTransaction), and that write fails
        m.pending_state = None;
        m.producer_epoch = fence.producer_epoch;
        m.has_failed_epoch_fence = true;
        assert_eq!(m.prepare_fence_producer_epoch().producer_epoch, 1, "the failed bump is not repeated");
    }

    #[test]
    fn commit_keeps_the_partitions_until_the_markers_are_written() {
        let mut m = initialised();
        let t = m.prepare_add_partitions(&tps(&[("a", 0), ("a", 1)]), 0, 10);
        m.complete_transition_to(&t);
        let t = m.prepare_abort_or_commit(PrepareCommit, 0, NO_PRODUCER_ID, false, 20);
        m.complete_transition_to(&t);
        assert_eq!((m.state, m.topic_partitions.len()), (PrepareCommit, 2));
        m.remove_partition(&TopicPartition::new("a", 0));
        m.remove_partition(&TopicPartition::new("a", 1));
        let t = m.prepare_complete(30);
        m.complete_transition_to(&t);
        assert_eq!((m.state, m.producer_epoch), (CompleteCommit, 0));
        assert!(m.topic_partitions.is_empty());
    }

    #[test]
    fn exhausted_epochs_rotate_the_producer_id() {
        let mut m = initialised();
        m.producer_epoch = i16::MAX - 1;
        assert!(m.is_producer_epoch_exhausted());
        let t = m.prepare_producer_id_rotation(2000, 60_000, 5, true);
        m.complete_transition_to(&t);
        assert_eq!((m.producer_id, m.producer_epoch, m.last_producer_epoch), (2000, 0, i16::MAX - 1));
    }

    #[test]
    fn under_transaction_version_2_every_end_bumps_the_epoch_and_the_markers_carry_it() {
        let mut m = initialised();
        let t = m.prepare_add_partitions(&tps(&[("a", 0)]), 2, 10);
        m.complete_transition_to(&t);
        let t = m.prepare_abort_or_commit(PrepareCommit, 2, NO_PRODUCER_ID, false, 20);
        assert_eq!((t.producer_epoch, t.last_producer_epoch), (1, 0), "the commit takes the next epoch");
        m.complete_transition_to(&t);
        assert_eq!(m.producer_epoch, 1, "PrepareCommit holds the bumped epoch: the markers carry it");
        m.remove_partition(&TopicPartition::new("a", 0));
        let t = m.prepare_complete(30);
        m.complete_transition_to(&t);
        assert_eq!((m.state, m.producer_id, m.producer_epoch), (CompleteCommit, 1000, 1));
        // an abort of a transaction no partition reached (a version 2 client cannot know)
        let t = m.prepare_abort_or_commit(PrepareAbort, 2, NO_PRODUCER_ID, true, 40);
        assert_eq!((t.producer_epoch, t.txn_start_timestamp_ms), (2, 40));
        m.complete_transition_to(&t);
        assert_eq!((m.state, m.producer_epoch), (PrepareAbort, 2));
    }

    #[test]
    fn a_version_2_end_at_the_last_epoch_continues_under_the_next_producer_id_at_epoch_0() {
        let mut m = initialised();
        m.producer_epoch = i16::MAX - 1;
        let t = m.prepare_add_partitions(&tps(&[("a", 0)]), 2, 10);
        m.complete_transition_to(&t);
        let t = m.prepare_abort_or_commit(PrepareCommit, 2, 2000, false, 20);
        assert_eq!((t.producer_epoch, t.next_producer_id), (i16::MAX, 2000));
        m.complete_transition_to(&t);
        m.remove_partition(&TopicPartition::new("a", 0));
        let t = m.prepare_complete(30);
        assert_eq!((t.producer_id, t.producer_epoch, t.last_producer_epoch), (2000, 0, i16::MAX - 1));
        m.complete_transition_to(&t);
        assert_eq!((m.producer_id, m.prev_producer_id, m.next_producer_id), (2000, 1000, NO_PRODUCER_ID));
    }

    #[test]
    fn a_classic_end_keeps_the_epoch() {
        let mut m = initialised();
        let t = m.prepare_add_partitions(&tps(&[("a", 0)]), 0, 10);
        m.complete_transition_to(&t);
        let t = m.prepare_abort_or_commit(PrepareAbort, 0, NO_PRODUCER_ID, false, 20);
        assert_eq!(t.producer_epoch, 0);
    }
}
