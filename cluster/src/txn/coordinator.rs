//! The transaction coordinator of the `__transaction_state` partitions a broker leads: Kafka's
//! `TransactionCoordinator` (the request handlers), the cache of its `TransactionStateManager`
//! (loading a partition, writing changes, the timed-out transactions) and the bookkeeping of its
//! `TransactionMarkerChannelManager` (which markers are still to be written).
//!
//! It is sans-IO: each handler appends [`TxnEffect`]s for its host (the broker,
//! `broker/txn_host.rs`) to carry out: answer a client, append a record to a
//! `__transaction_state` partition, write a marker to a partition. The host reports back with
//! [`TransactionCoordinator::on_append_done`] and [`TransactionCoordinator::on_marker_written`].
//!
//! The classic flow (transaction versions 0 and 1):
//! 1. **InitProducerId** with a `transactional.id` bumps the producer epoch (writing Empty).
//!    If a transaction was still Ongoing, its producer is *fenced*: the epoch is bumped, the
//!    transaction aborted (PrepareAbort, markers, CompleteAbort), and the new producer told
//!    CONCURRENT_TRANSACTIONS, so it retries once the abort is complete.
//! 2. **AddPartitionsToTxn** before the first record to each partition: Ongoing.
//! 3. **EndTxn** writes PrepareCommit or PrepareAbort and answers the producer at once: the
//!    decision is durable. Then the markers are written, one per partition, and once every
//!    partition has its marker the coordinator writes CompleteCommit or CompleteAbort.
//! 4. A transaction Ongoing for longer than its `transaction.timeout.ms` is fenced and aborted by
//!    the sweep every `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
//! 5. A broker that becomes leader of a `__transaction_state` partition loads the last state of
//!    each id in it, and writes the markers of every transaction it finds prepared.
//!
//! **Transaction version 2** (KIP-890 part 2, `transaction.version=2`, the default of a new 4.0
//! cluster) changes steps 2 and 3. The client sends no AddPartitionsToTxn: the leader of each
//! partition the producer writes to adds it (AddPartitionsToTxn from a broker, not verify-only,
//! `AddPartitionsToTxnManager` with `TransactionSupportedOperation.ADD_PARTITION`), starting the
//! transaction if the id was idle. Every EndTxn (v5) bumps the producer epoch
//! (`TransactionMetadata.prepareAbortOrCommit`): the markers carry the new epoch, EndTxn's
//! answer hands it (and, when the epochs ran out, a new producer id) to the producer for its next
//! transaction, and anything still in flight from the old epoch is fenced. The epoch rules of
//! EndTxn change with it (`TransactionCoordinator.endTransaction`): a retry is recognised by the
//! epoch one below the current, and an abort is accepted from an idle id, since the client
//! cannot know whether a leader added a partition. The coordinator's own aborts (a fence, the
//! timeout sweep) use the cluster's level, so under version 2 a fenced transaction's abort
//! bumps the epoch twice: once to fence, once to end.

use super::metadata::{is_epoch_exhausted, TransactionMetadata, TxnTransitMetadata, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use super::state::TransactionResult;
use super::state::TransactionState::{self, *};
use crate::error::ErrorCode;
use crate::node::NodeId;
use crate::partitioner::group_coordinator_partition;
use crate::topic::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

/// The internal topic holding every transaction's state (`Topic.TRANSACTION_STATE_TOPIC_NAME`).
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The coordinator's broker configs, with Kafka's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnCoordinatorConfig {
    /// `transaction.state.log.num.partitions`.
    pub num_partitions: i32,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask.
    pub max_timeout_ms: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// The cluster's finalized `transaction.version` (`TransactionStateManager.
    /// transactionVersionLevel`), which the coordinator's own aborts run under.
    pub transaction_version: u8,
}

impl Default for TxnCoordinatorConfig {
    fn default() -> Self {
        TxnCoordinatorConfig {
            num_partitions: 50,
            max_timeout_ms: 900_000,
            abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transaction_version: crate::version::KafkaVersion::CURRENT.default_transaction_version(),
        }
    }
}

/// Where an answer goes: the client and its request's correlation id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub client: NodeId,
    pub correlation_id: u64,
}

/// What the coordinator asks of its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnEffect {
    InitProducerId {
        reply: Reply,
        error: ErrorCode,
        producer_id: i64,
        producer_epoch: i16,
    },
    AddPartitionsToTxn {
        reply: Reply,
        error: ErrorCode,
    },
    /// EndTxn's answer; v5 (transaction version 2) carries the producer id and epoch for the
    /// next transaction, -1 otherwise.
    EndTxn {
        reply: Reply,
        error: ErrorCode,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// Append `record` under key `transactional_id` to `__transaction_state` partition
    /// `partition`, and report with `on_append_done(write, ..)` once it is replicated or failed.
    Append {
        write: u64,
        partition: i32,
        transactional_id: String,
        record: TxnTransitMetadata,
    },
    /// A change was written and applied (`loaded`: found by a new coordinator), for the trace.
    StateChanged {
        metadata: TransactionMetadata,
        loaded: bool,
    },
    /// Write a `result` marker for the producer to `partition` (WriteTxnMarkers to its leader),
    /// and report with `on_marker_written`.
    WriteMarker {
        transactional_id: String,
        partition: TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        result: TransactionResult,
    },
}

/// Who waits for an EndTxn-like change, and what they hear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndCaller {
    /// The producer's EndTxn.
    Client(Reply),
    /// An InitProducerId that fenced an ongoing transaction: it hears CONCURRENT_TRANSACTIONS
    /// once the abort is prepared, and retries.
    InitFence(Reply),
    /// The timed-out-transaction sweep: nobody.
    Timeout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum AfterWrite {
    InitProducerId(Reply),
    AddPartitions(Reply),
    EndTxn {
        caller: EndCaller,
        result: TransactionResult,
        epoch_fence: bool,
    },
    /// The Complete* record after every marker: nobody waits.
    Complete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingWrite {
    transactional_id: String,
    coordinator_epoch: i32,
    transit: TxnTransitMetadata,
    after: AfterWrite,
}

/// A transaction whose markers are being written (`PendingCompleteTxn`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingMarkers {
    coordinator_epoch: i32,
    result: TransactionResult,
    /// The Complete* record prepared before the markers went out.
    complete: TxnTransitMetadata,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransactionCoordinator {
    pub config: TxnCoordinatorConfig,
    /// The `__transaction_state` partitions this broker leads, with their coordinator epoch (the
    /// partition's leader epoch when it was loaded).
    partitions: BTreeMap<i32, i32>,
    /// Every `transactional.id` of those partitions.
    transactions: BTreeMap<String, TransactionMetadata>,
    writes: BTreeMap<u64, PendingWrite>,
    next_write: u64,
    markers: BTreeMap<String, PendingMarkers>,
    /// Markers and Complete* writes to try again at the next [`Self::retry`].
    retry_markers: BTreeSet<(String, TopicPartition)>,
    retry_completions: BTreeSet<String>,
}

/// The coordinator's error for a failed `__transaction_state` append
/// (`TransactionStateManager.appendTransactionToLog`): the client retries on
/// COORDINATOR_NOT_AVAILABLE, and looks the coordinator up again on NOT_COORDINATOR.
fn append_error(error: ErrorCode) -> ErrorCode {
    use ErrorCode::*;
    match error {
        UnknownTopicOrPartition | NotEnoughReplicas | NotEnoughReplicasAfterAppend | RequestTimedOut => {
            CoordinatorNotAvailable
        }
        NotLeaderOrFollower => NotCoordinator,
        other => other,
    }
}

impl TransactionCoordinator {
    pub fn new(config: TxnCoordinatorConfig) -> Self {
        TransactionCoordinator { config, ..Default::default() }
    }

    /// The `__transaction_state` partition of a `transactional.id`:
    /// `Utils.abs(transactionalId.hashCode) % transaction.state.log.num.partitions`
    /// (`TransactionStateManager.partitionFor`), the same hash as a group's.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        group_coordinator_partition(transactional_id, self.config.num_partitions)
    }

    pub fn coordinates_any(&self) -> bool {
        !self.partitions.is_empty()
    }

    pub fn coordinates(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// What this coordinator knows of a `transactional.id`.
    pub fn transaction(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.transactions.get(transactional_id)
    }

    pub fn transactions(&self) -> impl Iterator<Item = &TransactionMetadata> {
        self.transactions.values()
    }

    fn coordinator_epoch(&self, transactional_id: &str) -> Option<i32> {
        self.partitions.get(&self.partition_for(transactional_id)).copied()
    }

    fn write(
        &mut self,
        transactional_id: &str,
        coordinator_epoch: i32,
        transit: TxnTransitMetadata,
        after: AfterWrite,
        out: &mut Vec<TxnEffect>,
    ) {
        let write = self.next_write;
        self.next_write += 1;
        out.push(TxnEffect::Append {
            write,
            partition: self.partition_for(transactional_id),
            transactional_id: transactional_id.to_string(),
            record: transit.clone(),
        });
        self.writes.insert(
            write,
            PendingWrite { transactional_id: transactional_id.to_string(), coordinator_epoch, transit, after },
        );
    }

    // ---- loading ------------------------------------------------------------------------------

    /// This broker became leader of `partition` at `coordinator_epoch`: rebuild its transactions
    /// from its records, the last per id winning (`loadTransactionMetadata`), and write the
    /// markers of the prepared ones (`loadTransactionsForTxnTopicPartition`).
    pub fn load(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        records: impl IntoIterator<Item = (String, TxnTransitMetadata)>,
        now_ms: i64,
        out: &mut Vec<TxnEffect>,
    ) {
        self.unload(partition, out);
        self.partitions.insert(partition, coordinator_epoch);
        let mut loaded: BTreeMap<String, TxnTransitMetadata> = BTreeMap::new();
        for (id, record) in records {
            assert_eq!(self.partition_for(&id), partition, "{id} was written to the wrong partition");
            loaded.insert(id, record);
        }
        for (id, record) in loaded {
            let mut metadata = TransactionMetadata::from_log(&id, &record);
            let result = match metadata.state {
                PrepareCommit => Some(TransactionResult::Commit),
                PrepareAbort => Some(TransactionResult::Abort),
                _ => None,
            };
            out.push(TxnEffect::StateChanged { metadata: metadata.clone(), loaded: true });
            let complete = result.map(|_| metadata.prepare_complete(now_ms));
            self.transactions.insert(id.clone(), metadata);
            if let (Some(result), Some(complete)) = (result, complete) {
                self.send_markers(&id, coordinator_epoch, result, complete, out);
            }
        }
    }

    /// This broker no longer leads `partition`: forget its transactions; writes still pending
    /// answer NOT_COORDINATOR (`removeTransactionsForTxnTopicPartition`).
    pub fn unload(&mut self, partition: i32, out: &mut Vec<TxnEffect>) {
        if self.partitions.remove(&partition).is_none() {
            return;
        }
        let ids: Vec<String> =
            self.transactions.keys().filter(|id| self.partition_for(id) == partition).cloned().collect();
        for id in &ids {
            self.transactions.remove(id);
            self.markers.remove(id);
            self.retry_completions.remove(id);
        }
        self.retry_markers.retain(|(id, _)| !ids.contains(id));
        let writes: Vec<u64> =
            self.writes.iter().filter(|(_, w)| ids.contains(&w.transactional_id)).map(|(k, _)| *k).collect();
        for write in writes {
            let w = self.writes.remove(&write).expect("listed above");
            Self::answer_failed_write(&w.after, ErrorCode::NotCoordinator, out);
        }
    }

    fn answer_failed_write(after: &AfterWrite, error: ErrorCode, out: &mut Vec<TxnEffect>) {
        match *after {
            AfterWrite::InitProducerId(reply) | AfterWrite::EndTxn { caller: EndCaller::InitFence(reply), .. } => out
                .push(TxnEffect::InitProducerId {
                    reply,
                    error,
                    producer_id: NO_PRODUCER_ID,
                    producer_epoch: NO_PRODUCER_EPOCH,
                }),
            AfterWrite::AddPartitions(reply) => out.push(TxnEffect::AddPartitionsToTxn { reply, error }),
            AfterWrite::EndTxn { caller: EndCaller::Client(reply), .. } => out.push(TxnEffect::EndTxn {
                reply,
                error,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
            }),
            AfterWrite::EndTxn { caller: EndCaller::Timeout, .. } | AfterWrite::Complete => {}
        }
    }

    // ---- InitProducerId -----------------------------------------------------------------------

    /// InitProducerId with a `transactional.id` (`handleInitProducerId`). `expected` is the
    /// producer id and epoch a producer that already had one sends when it re-initialises
    /// (KIP-360); `new_producer_id` hands out a fresh producer id.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_init_producer_id(
        &mut self,
        now_ms: i64,
        reply: Reply,
        transactional_id: &str,
        txn_timeout_ms: u64,
        expected: Option<(i64, i16)>,
        new_producer_id: &mut dyn FnMut() -> i64,
        out: &mut Vec<TxnEffect>,
    ) {
        let error = |error| TxnEffect::InitProducerId {
            reply,
            error,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
        };
        if transactional_id.is_empty() {
            out.push(error(ErrorCode::InvalidRequest));
            return;
        }
        if txn_timeout_ms == 0 || txn_timeout_ms > self.config.max_timeout_ms {
            out.push(error(ErrorCode::InvalidTransactionTimeout));
            return;
        }
        let Some(coordinator_epoch) = self.coordinator_epoch(transactional_id) else {
            out.push(error(ErrorCode::NotCoordinator));
            return;
        };
        let metadata = self
            .transactions
            .entry(transactional_id.to_string())
            .or_insert_with(|| TransactionMetadata::new(transactional_id, new_producer_id(), txn_timeout_ms, now_ms));
        // prepareInitProducerIdTransit
        let valid_producer_id = |(producer_id, epoch): (i64, i16)| {
            metadata.producer_epoch == NO_PRODUCER_EPOCH
                || producer_id == metadata.producer_id
                || (producer_id == metadata.prev_producer_id && is_epoch_exhausted(epoch))
        };
        if metadata.pending_transition_in_progress() {
            out.push(error(ErrorCode::ConcurrentTransactions));
            return;
        }
        if !expected.is_none_or(valid_producer_id) {
            out.push(error(ErrorCode::ProducerFenced));
            return;
        }
        let transit = match metadata.state {
            PrepareAbort | PrepareCommit => {
                out.push(error(ErrorCode::ConcurrentTransactions));
                return;
            }
            CompleteAbort | CompleteCommit | Empty => {
                if metadata.is_producer_epoch_exhausted()
                    && expected.is_none_or(|(_, epoch)| epoch == metadata.producer_epoch)
                {
                    metadata.prepare_producer_id_rotation(new_producer_id(), txn_timeout_ms, now_ms, expected.is_some())
                } else {
                    match metadata.prepare_increment_producer_epoch(txn_timeout_ms, expected.map(|e| e.1), now_ms) {
                        Ok(t) => t,
                        Err(e) => {
                            out.push(error(e));
                            return;
                        }
                    }
                }
            }
            Ongoing => {
                // Fence the ongoing transaction's producer and abort it; this epoch is never
                // handed out, the caller retries and gets the next one.
                let fence = metadata.prepare_fence_producer_epoch();
                let (producer_id, epoch) = (fence.producer_id, fence.producer_epoch);
                // Not from the client: the cluster's transaction version (a fence allocates no
                // producer id).
                let tv = self.config.transaction_version;
                self.end_transaction(
                    now_ms,
                    transactional_id,
                    (producer_id, epoch),
                    TransactionResult::Abort,
                    EndCaller::InitFence(reply),
                    tv,
                    new_producer_id,
                    out,
                );
                return;
            }
            Dead | PrepareEpochFence => panic!("{transactional_id} found in {}, never a settled state", metadata.state),
        };
        self.write(transactional_id, coordinator_epoch, transit, AfterWrite::InitProducerId(reply), out);
    }

    // ---- AddPartitionsToTxn -------------------------------------------------------------------

    /// AddPartitionsToTxn (`handleAddPartitionsToTransaction`): from a classic client
    /// (`client_transaction_version` 0), or from a partition leader or group coordinator adding
    /// a version 2 client's partition (2).
    #[allow(clippy::too_many_arguments)]
    pub fn handle_add_partitions(
        &mut self,
        now_ms: i64,
        reply: Reply,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
        client_transaction_version: u8,
        out: &mut Vec<TxnEffect>,
    ) {
        let answer = |error| TxnEffect::AddPartitionsToTxn { reply, error };
        let Some(coordinator_epoch) = self.coordinator_epoch(transactional_id) else {
            out.push(answer(ErrorCode::NotCoordinator));
            return;
        };
        let Some(metadata) = self.transactions.get_mut(transactional_id) else {
            out.push(answer(ErrorCode::InvalidProducerIdMapping));
            return;
        };
        let refusal = if metadata.producer_id != producer_id {
            Some(ErrorCode::InvalidProducerIdMapping)
        } else if metadata.producer_epoch != producer_epoch {
            Some(ErrorCode::ProducerFenced)
        } else if metadata.pending_transition_in_progress() || matches!(metadata.state, PrepareCommit | PrepareAbort) {
            Some(ErrorCode::ConcurrentTransactions)
        } else if metadata.state == Ongoing && partitions.is_subset(&metadata.topic_partitions) {
            // nothing new: no write
            Some(ErrorCode::None)
        } else {
            None
        };
        if let Some(error) = refusal {
            out.push(answer(error));
            return;
        }
        let transit = metadata.prepare_add_partitions(partitions, client_transaction_version, now_ms);
        self.write(transactional_id, coordinator_epoch, transit, AfterWrite::AddPartitions(reply), out);
    }

    /// A partition leader's verification (AddPartitionsToTxn v4+ with `verifyOnly`, KIP-890 part
    /// 1; `handleVerifyPartitionsInTransaction`): are these partitions in the producer's ongoing
    /// transaction? Nothing is written. Kafka answers per partition; ksim's leaders verify one
    /// partition at a time, so the worst error stands for all: TRANSACTION_ABORTABLE for a
    /// partition not in the transaction (none is, once the transaction has completed).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TopicPartition>,
    ) -> ErrorCode {
        if transactional_id.is_empty() {
            return ErrorCode::InvalidRequest;
        }
        if self.coordinator_epoch(transactional_id).is_none() {
            return ErrorCode::NotCoordinator;
        }
        let Some(metadata) = self.transactions.get(transactional_id) else {
            return ErrorCode::InvalidProducerIdMapping;
        };
        if metadata.producer_id != producer_id {
            ErrorCode::InvalidProducerIdMapping
        } else if metadata.producer_epoch != producer_epoch {
            ErrorCode::ProducerFenced
        } else if matches!(metadata.state, PrepareCommit | PrepareAbort) {
            ErrorCode::ConcurrentTransactions
        } else if !partitions.is_subset(&metadata.topic_partitions) {
            ErrorCode::TransactionAbortable
        } else {
            ErrorCode::None
        }
    }

    // ---- EndTxn -------------------------------------------------------------------------------

    /// EndTxn from the producer (`handleEndTransaction`); `client_transaction_version` is 2 for
    /// EndTxn v5, the version a transaction version 2 client sends. `new_producer_id` hands out
    /// the next producer id when a version 2 bump would use up the epochs.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_end_txn(
        &mut self,
        now_ms: i64,
        reply: Reply,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: TransactionResult,
        client_transaction_version: u8,
        new_producer_id: &mut dyn FnMut() -> i64,
        out: &mut Vec<TxnEffect>,
    ) {
        let refuse =
            |error| TxnEffect::EndTxn { reply, error, producer_id: NO_PRODUCER_ID, producer_epoch: NO_PRODUCER_EPOCH };
        if transactional_id.is_empty() {
            out.push(refuse(ErrorCode::InvalidRequest));
            return;
        }
        if self.coordinator_epoch(transactional_id).is_none() {
            out.push(refuse(ErrorCode::NotCoordinator));
            return;
        }
        self.end_transaction(
            now_ms,
            transactional_id,
            (producer_id, producer_epoch),
            result,
            EndCaller::Client(reply),
            client_transaction_version,
            new_producer_id,
            out,
        );
    }

    /// `endTransaction`. The classic epoch rules (`endTransactionWithTV1`): a client must send
    /// the current epoch; the coordinator's own aborts (a fence, a timeout) send the bumped one.
    /// Under transaction version 2 the table changes, because the epoch moves at every end: the
    /// epoch one below the current is a retry of an EndTxn that completed (answered NONE if it
    /// asked for what happened, INVALID_TXN_STATE otherwise), and an idle id (Empty,
    /// CompleteCommit, CompleteAbort) accepts an abort at the current epoch, bumping it.
    #[allow(clippy::too_many_arguments)]
    fn end_transaction(
        &mut self,
        now_ms: i64,
        transactional_id: &str,
        (producer_id, producer_epoch): (i64, i16),
        result: TransactionResult,
        caller: EndCaller,
        client_transaction_version: u8,
        new_producer_id: &mut dyn FnMut() -> i64,
        out: &mut Vec<TxnEffect>,
    ) {
        use TransactionResult::{Abort, Commit};
        let from_client = matches!(caller, EndCaller::Client(_));
        let tv2 = client_transaction_version >= 2;
        let coordinator_epoch = self.coordinator_epoch(transactional_id).expect("checked by the callers");
        let Some(metadata) = self.transactions.get_mut(transactional_id) else {
            Self::answer_end(caller, ErrorCode::InvalidProducerIdMapping, None, out);
            return;
        };
        let fencing = metadata.pending_state == Some(PrepareEpochFence);
        let fence_epoch_valid =
            (!from_client || producer_epoch == metadata.producer_epoch) && producer_epoch >= metadata.producer_epoch;
        // Transaction version 2's retries: the epoch this EndTxn bumped from, or the last epoch of
        // a producer id it rotated away from.
        let retry_on_overflow = tv2
            && !fencing
            && metadata.prev_producer_id == producer_id
            && producer_epoch == i16::MAX - 1
            && metadata.producer_epoch == 0;
        let retry_on_epoch_bump = tv2 && !fencing && metadata.producer_epoch == producer_epoch.wrapping_add(1);
        let is_retry = retry_on_epoch_bump || retry_on_overflow;
        let valid_epoch = if fencing || !tv2 {
            fence_epoch_valid
        } else {
            match metadata.state {
                Ongoing | Empty | Dead | PrepareEpochFence => producer_epoch == metadata.producer_epoch,
                PrepareCommit | PrepareAbort => retry_on_epoch_bump,
                CompleteCommit | CompleteAbort => is_retry || producer_epoch == metadata.producer_epoch,
            }
        };
        // What to prepare: the state, and whether no partition was added (a version 2 abort of
        // an idle id).
        let refusal_or_prepare: Result<(TransactionState, bool), ErrorCode> =
            if metadata.producer_id != producer_id && !retry_on_overflow {
                Err(ErrorCode::InvalidProducerIdMapping)
            } else if !valid_epoch {
                Err(ErrorCode::ProducerFenced)
            } else if metadata.pending_transition_in_progress() && !fencing {
                Err(ErrorCode::ConcurrentTransactions)
            } else {
                match (metadata.state, result) {
                    (Ongoing, _) => Ok((result.prepare_state(), false)),
                    // a retried EndTxn whose first attempt completed
                    (CompleteCommit, Commit) | (CompleteAbort, Abort) if !tv2 || is_retry => Err(ErrorCode::None),
                    // version 2: a new abort of an idle id
                    (CompleteCommit | CompleteAbort | Empty, Abort) if tv2 && !is_retry => Ok((PrepareAbort, true)),
                    (PrepareCommit, Commit) | (PrepareAbort, Abort) => Err(ErrorCode::ConcurrentTransactions),
                    (CompleteCommit | CompleteAbort | PrepareCommit | PrepareAbort | Empty, _) => {
                        Err(ErrorCode::InvalidTxnState)
                    }
                    (Dead | PrepareEpochFence, _) => {
                        panic!("{transactional_id} found in {}, never a settled state", metadata.state)
                    }
                }
            };
        let (state, no_partition_added) = match refusal_or_prepare {
            Ok(prepare) => prepare,
            Err(error) => {
                if fencing {
                    // the fence goes no further: nothing was written
                    metadata.pending_state = None;
                }
                let current = (metadata.producer_id, metadata.producer_epoch);
                let answer = (tv2 && error.is_none()).then_some(current);
                Self::answer_end(caller, error, answer, out);
                return;
            }
        };
        // `generateTxnTransitMetadataForTxnCompletion`: a version 2 bump that would use up the
        // epochs continues under a new producer id.
        let next_producer_id =
            if tv2 && !fencing && metadata.is_producer_epoch_exhausted() { new_producer_id() } else { NO_PRODUCER_ID };
        let mut epoch_fence = false;
        if fencing && state == PrepareAbort {
            // Make way for PrepareAbort with the bumped epoch.
            epoch_fence = true;
            metadata.pending_state = None;
            metadata.producer_epoch = producer_epoch;
            metadata.last_producer_epoch = NO_PRODUCER_EPOCH;
        }
        let transit = metadata.prepare_abort_or_commit(
            state,
            client_transaction_version,
            next_producer_id,
            no_partition_added,
            now_ms,
        );
        self.write(
            transactional_id,
            coordinator_epoch,
            transit,
            AfterWrite::EndTxn { caller, result, epoch_fence },
            out,
        );
    }

    /// Answer whoever waits for an EndTxn-like change; `next` is the producer id and epoch an
    /// EndTxn v5 answer carries.
    fn answer_end(caller: EndCaller, error: ErrorCode, next: Option<(i64, i16)>, out: &mut Vec<TxnEffect>) {
        match caller {
            EndCaller::Client(reply) => {
                let (producer_id, producer_epoch) = next.unwrap_or((NO_PRODUCER_ID, NO_PRODUCER_EPOCH));
                out.push(TxnEffect::EndTxn { reply, error, producer_id, producer_epoch })
            }
            EndCaller::InitFence(reply) => out.push(TxnEffect::InitProducerId {
                reply,
                error: if error.is_none() { ErrorCode::ConcurrentTransactions } else { error },
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
            }),
            EndCaller::Timeout => {}
        }
    }

    // ---- writes -------------------------------------------------------------------------------

    /// The host's report on an [`TxnEffect::Append`]: `error` is the append's own error (NONE once
    /// replicated to the ISR).
    pub fn on_append_done(&mut self, now_ms: i64, write: u64, error: ErrorCode, out: &mut Vec<TxnEffect>) {
        let Some(w) = self.writes.remove(&write) else { return };
        let mut error = append_error(error);
        let still_ours = self.coordinator_epoch(&w.transactional_id) == Some(w.coordinator_epoch);
        let Some(metadata) = self.transactions.get_mut(&w.transactional_id).filter(|_| still_ours) else {
            Self::answer_failed_write(&w.after, ErrorCode::NotCoordinator, out);
            return;
        };
        if error.is_none() {
            metadata.complete_transition_to(&w.transit);
            out.push(TxnEffect::StateChanged { metadata: metadata.clone(), loaded: false });
        } else if w.after == AfterWrite::Complete && error == ErrorCode::CoordinatorNotAvailable {
            // TransactionMarkerChannelManager retries the Complete* write, its pending state kept.
            self.retry_completions.insert(w.transactional_id.clone());
            self.writes.insert(write, w);
            return;
        } else {
            metadata.pending_state = None;
            if let AfterWrite::EndTxn { epoch_fence: true, .. } = w.after {
                metadata.has_failed_epoch_fence = true;
            }
        }
        match w.after {
            AfterWrite::InitProducerId(reply) => out.push(TxnEffect::InitProducerId {
                reply,
                error,
                producer_id: if error.is_none() { w.transit.producer_id } else { NO_PRODUCER_ID },
                producer_epoch: if error.is_none() { w.transit.producer_epoch } else { NO_PRODUCER_EPOCH },
            }),
            AfterWrite::AddPartitions(reply) => out.push(TxnEffect::AddPartitionsToTxn { reply, error }),
            AfterWrite::EndTxn { caller, result, .. } => {
                if error.is_none() {
                    // sendTxnMarkersCallback: the decision is written; answer, then send markers.
                    let m = self.transactions.get_mut(&w.transactional_id).expect("present above");
                    if m.producer_id != w.transit.producer_id {
                        error = ErrorCode::InvalidProducerIdMapping;
                    } else if m.producer_epoch != w.transit.producer_epoch {
                        error = ErrorCode::ProducerFenced;
                    } else if m.pending_transition_in_progress() {
                        error = ErrorCode::ConcurrentTransactions;
                    } else {
                        let complete = m.prepare_complete(now_ms);
                        // Version 2: the producer continues with the id and epoch the Complete*
                        // record will hold (a new id at epoch 0 after an overflow).
                        let next = (w.transit.client_transaction_version >= 2)
                            .then_some((complete.producer_id, complete.producer_epoch));
                        Self::answer_end(caller, ErrorCode::None, next, out);
                        self.send_markers(&w.transactional_id, w.coordinator_epoch, result, complete, out);
                        return;
                    }
                }
                Self::answer_end(caller, error, None, out);
            }
            AfterWrite::Complete => {
                self.markers.remove(&w.transactional_id);
            }
        }
    }

    // ---- markers (TransactionMarkerChannelManager) --------------------------------------------

    fn send_markers(
        &mut self,
        transactional_id: &str,
        coordinator_epoch: i32,
        result: TransactionResult,
        complete: TxnTransitMetadata,
        out: &mut Vec<TxnEffect>,
    ) {
        let metadata = &self.transactions[transactional_id];
        self.markers.insert(transactional_id.to_string(), PendingMarkers { coordinator_epoch, result, complete });
        if metadata.topic_partitions.is_empty() {
            self.maybe_write_completion(transactional_id, out);
            return;
        }
        for partition in metadata.topic_partitions.clone() {
            self.marker_effect(transactional_id, partition, out);
        }
    }

    fn marker_effect(&self, transactional_id: &str, partition: TopicPartition, out: &mut Vec<TxnEffect>) {
        let metadata = &self.transactions[transactional_id];
        let pending = &self.markers[transactional_id];
        out.push(TxnEffect::WriteMarker {
            transactional_id: transactional_id.to_string(),
            partition,
            producer_id: metadata.producer_id,
            producer_epoch: metadata.producer_epoch,
            coordinator_epoch: pending.coordinator_epoch,
            result: pending.result,
        });
    }

    /// The host's report on a [`TxnEffect::WriteMarker`] (`TransactionMarkerRequestCompletionHandler`).
    pub fn on_marker_written(
        &mut self,
        transactional_id: &str,
        partition: &TopicPartition,
        coordinator_epoch: i32,
        error: ErrorCode,
        out: &mut Vec<TxnEffect>,
    ) {
        use ErrorCode::*;
        let Some(pending) = self.markers.get(transactional_id) else { return };
        if pending.coordinator_epoch != coordinator_epoch
            || self.coordinator_epoch(transactional_id) != Some(coordinator_epoch)
        {
            // a newer coordinator finishes this transaction
            self.markers.remove(transactional_id);
            return;
        }
        match error {
            None => {
                let metadata = self.transactions.get_mut(transactional_id).expect("markers of a known id");
                metadata.remove_partition(partition);
                self.maybe_write_completion(transactional_id, out);
            }
            UnknownTopicOrPartition
            | NotLeaderOrFollower
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | RequestTimedOut
            | NetworkException => {
                self.retry_markers.insert((transactional_id.to_string(), partition.clone()));
            }
            InvalidProducerEpoch | TransactionCoordinatorFenced => {
                self.markers.remove(transactional_id);
            }
            other => panic!("unexpected {other} writing a marker for {transactional_id} to {partition}"),
        }
    }

    /// Once every partition has its marker, write Complete* (`maybeWriteTxnCompletion`).
    fn maybe_write_completion(&mut self, transactional_id: &str, out: &mut Vec<TxnEffect>) {
        let metadata = &self.transactions[transactional_id];
        if !metadata.topic_partitions.is_empty() {
            return;
        }
        let pending = &self.markers[transactional_id];
        let (epoch, complete) = (pending.coordinator_epoch, pending.complete.clone());
        self.write(transactional_id, epoch, complete, AfterWrite::Complete, out);
    }

    /// Markers and Complete* writes that failed for a retriable reason go out again; the host
    /// calls this after the marker channel's backoff.
    pub fn retry(&mut self, out: &mut Vec<TxnEffect>) {
        for (id, partition) in std::mem::take(&mut self.retry_markers) {
            if self.markers.contains_key(&id) {
                self.marker_effect(&id, partition, out);
            }
        }
        for id in std::mem::take(&mut self.retry_completions) {
            let write = self.writes.iter().find(|(_, w)| w.transactional_id == id && w.after == AfterWrite::Complete);
            if let Some((&write, w)) = write {
                out.push(TxnEffect::Append {
                    write,
                    partition: self.partition_for(&id),
                    transactional_id: id.clone(),
                    record: w.transit.clone(),
                });
            }
        }
    }

    pub fn has_retries(&self) -> bool {
        !self.retry_markers.is_empty() || !self.retry_completions.is_empty()
    }

    // ---- timeouts -----------------------------------------------------------------------------

    /// The periodic sweep (`abortTimedOutTransactions`): fence and abort every transaction
    /// Ongoing for longer than its `transaction.timeout.ms`, none with a change pending.
    pub fn abort_timed_out_transactions(&mut self, now_ms: i64, out: &mut Vec<TxnEffect>) {
        let timed_out: Vec<String> = self
            .transactions
            .values()
            .filter(|m| {
                !m.pending_transition_in_progress()
                    && m.state == Ongoing
                    && m.txn_start_timestamp_ms + (m.txn_timeout_ms as i64) < now_ms
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in timed_out {
            let metadata = self.transactions.get_mut(&id).expect("listed above");
            let fence = metadata.prepare_fence_producer_epoch();
            let tv = self.config.transaction_version;
            let mut no_new_producer_id = || unreachable!("an epoch fence takes no new producer id");
            self.end_transaction(
                now_ms,
                &id,
                (fence.producer_id, fence.producer_epoch),
                TransactionResult::Abort,
                EndCaller::Timeout,
                tv,
                &mut no_new_producer_id,
                out,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode as E;
    use crate::txn::state::TransactionState;

    const ID: &str = "payments-tx";

    /// A coordinator leading every `__transaction_state` partition, with a producer id counter;
    /// its clients speak transaction version `tv`.
    struct Harness {
        c: TransactionCoordinator,
        next_pid: i64,
        now_ms: i64,
        correlation: u64,
        tv: u8,
    }

    fn reply(correlation_id: u64) -> Reply {
        Reply { client: NodeId::Client(1), correlation_id }
    }

    impl Harness {
        /// The classic protocol (transaction version 0), cluster and clients.
        fn new() -> Self {
            Self::with_version(0)
        }

        /// Transaction version 2, cluster and clients.
        fn tv2() -> Self {
            Self::with_version(2)
        }

        fn with_version(tv: u8) -> Self {
            let config = TxnCoordinatorConfig { transaction_version: tv, ..TxnCoordinatorConfig::default() };
            let mut c = TransactionCoordinator::new(config);
            let mut out = Vec::new();
            for p in 0..c.config.num_partitions {
                c.load(p, 0, Vec::new(), 0, &mut out);
            }
            assert!(out.is_empty());
            Harness { c, next_pid: 1000, now_ms: 0, correlation: 0, tv }
        }

        fn reply(&mut self) -> Reply {
            self.correlation += 1;
            reply(self.correlation)
        }

        fn init(&mut self, expected: Option<(i64, i16)>) -> Vec<TxnEffect> {
            let mut out = Vec::new();
            let r = self.reply();
            let pid = &mut self.next_pid;
            let mut alloc = || {
                *pid += 1;
                *pid
            };
            self.c.handle_init_producer_id(self.now_ms, r, ID, 60_000, expected, &mut alloc, &mut out);
            out
        }

        fn add(&mut self, pid: i64, epoch: i16, tps: &[(&str, i32)]) -> Vec<TxnEffect> {
            let mut out = Vec::new();
            let r = self.reply();
            let set = tps.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect();
            self.c.handle_add_partitions(self.now_ms, r, ID, pid, epoch, &set, self.tv, &mut out);
            out
        }

        fn end(&mut self, pid: i64, epoch: i16, result: TransactionResult) -> Vec<TxnEffect> {
            let mut out = Vec::new();
            let r = self.reply();
            let next = &mut self.next_pid;
            let mut alloc = || {
                *next += 1;
                *next
            };
            self.c.handle_end_txn(self.now_ms, r, ID, pid, epoch, result, self.tv, &mut alloc, &mut out);
            out
        }

        /// Complete every append in `effects` (and the ones they lead to), writing every marker
        /// too; returns all the effects seen.
        fn settle(&mut self, effects: Vec<TxnEffect>) -> Vec<TxnEffect> {
            let mut seen = Vec::new();
            let mut queue = effects;
            for _ in 0..100 {
                if queue.is_empty() {
                    return seen;
                }
                let mut next = Vec::new();
                for e in queue {
                    match &e {
                        TxnEffect::Append { write, .. } => {
                            self.c.on_append_done(self.now_ms, *write, E::None, &mut next)
                        }
                        TxnEffect::WriteMarker { transactional_id, partition, coordinator_epoch, .. } => self
                            .c
                            .on_marker_written(transactional_id, partition, *coordinator_epoch, E::None, &mut next),
                        _ => {}
                    }
                    seen.push(e);
                }
                queue = next;
            }
            panic!("effects did not settle");
        }

        fn state(&self) -> TransactionState {
            self.c.transaction(ID).unwrap().state
        }

        fn epoch(&self) -> i16 {
            self.c.transaction(ID).unwrap().producer_epoch
        }
    }

    fn init_answer(effects: &[TxnEffect]) -> (ErrorCode, i64, i16) {
        effects
            .iter()
            .find_map(|e| match e {
                TxnEffect::InitProducerId { error, producer_id, producer_epoch, .. } => {
                    Some((*error, *producer_id, *producer_epoch))
                }
                _ => None,
            })
            .expect("an InitProducerId answer")
    }

    fn end_answer(effects: &[TxnEffect]) -> ErrorCode {
        end_answer_with_epoch(effects).0
    }

    /// EndTxn's error, producer id and epoch.
    fn end_answer_with_epoch(effects: &[TxnEffect]) -> (ErrorCode, i64, i16) {
        effects
            .iter()
            .find_map(|e| match e {
                TxnEffect::EndTxn { error, producer_id, producer_epoch, .. } => {
                    Some((*error, *producer_id, *producer_epoch))
                }
                _ => None,
            })
            .expect("an EndTxn answer")
    }

    fn add_answer(effects: &[TxnEffect]) -> ErrorCode {
        effects
            .iter()
            .find_map(|e| match e {
                TxnEffect::AddPartitionsToTxn { error, .. } => Some(*error),
                _ => None,
            })
            .expect("an AddPartitionsToTxn answer")
    }

    fn markers(effects: &[TxnEffect]) -> Vec<(String, TransactionResult, i16)> {
        effects
            .iter()
            .filter_map(|e| match e {
                TxnEffect::WriteMarker { partition, result, producer_epoch, .. } => {
                    Some((partition.to_string(), *result, *producer_epoch))
                }
                _ => None,
            })
            .collect()
    }

    fn begun() -> (Harness, i64) {
        let mut h = Harness::new();
        let init = h.init(None);
        let (_, pid, epoch) = init_answer(&h.settle(init));
        assert_eq!(epoch, 0);
        let add = h.add(pid, 0, &[("orders", 0), ("orders", 1)]);
        assert_eq!(add_answer(&h.settle(add)), E::None);
        assert_eq!(h.state(), Ongoing);
        (h, pid)
    }

    #[test]
    fn the_partition_of_a_transactional_id_is_javas_string_hash_mod_50() {
        let c = TransactionCoordinator::new(TxnCoordinatorConfig::default());
        // "payments-tx".hashCode() in Java is -1_539_523_292; abs % 50 = 42.
        assert_eq!(crate::partitioner::java_string_hash_code(ID), -1_539_523_292);
        assert_eq!(c.partition_for(ID), 42);
    }

    #[test]
    fn commit_answers_once_prepared_then_writes_one_marker_per_partition_then_completes() {
        let (mut h, pid) = begun();
        let end = h.end(pid, 0, TransactionResult::Commit);
        // the PrepareCommit append, no answer yet
        assert!(matches!(end.as_slice(), [TxnEffect::Append { record, .. }] if record.state == PrepareCommit));
        let mut out = Vec::new();
        let TxnEffect::Append { write, .. } = end[0] else { unreachable!() };
        h.c.on_append_done(0, write, E::None, &mut out);
        assert_eq!(end_answer(&out), E::None, "the producer hears of its commit once PrepareCommit is written");
        assert_eq!(
            markers(&out),
            vec![("orders-0".into(), TransactionResult::Commit, 0), ("orders-1".into(), TransactionResult::Commit, 0)]
        );
        assert_eq!(h.state(), PrepareCommit);
        // meanwhile the producer's next transaction must wait
        assert_eq!(add_answer(&h.add(pid, 0, &[("orders", 0)])), E::ConcurrentTransactions);
        let seen = h.settle(out);
        assert!(seen.iter().any(|e| matches!(e, TxnEffect::Append { record, .. } if record.state == CompleteCommit)));
        assert_eq!(h.state(), CompleteCommit);
        // a retried commit is answered NONE, an abort now is refused
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::None);
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Abort)), E::InvalidTxnState);
    }

    #[test]
    fn a_second_init_fences_the_ongoing_transaction_aborts_it_and_asks_for_a_retry() {
        let (mut h, pid) = begun();
        let fence = h.init(None);
        let seen = h.settle(fence);
        assert_eq!(init_answer(&seen).0, E::ConcurrentTransactions, "the new producer retries");
        assert_eq!(
            markers(&seen),
            vec![("orders-0".into(), TransactionResult::Abort, 1), ("orders-1".into(), TransactionResult::Abort, 1)],
            "the abort markers carry the bumped epoch"
        );
        assert_eq!((h.state(), h.epoch()), (CompleteAbort, 1));
        // the zombie's commit is fenced
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::ProducerFenced);
        assert_eq!(add_answer(&h.add(pid, 0, &[("orders", 2)])), E::ProducerFenced);
        // the retry gets the next epoch
        let retry = h.init(None);
        assert_eq!(init_answer(&h.settle(retry)), (E::None, pid, 2));
    }

    #[test]
    fn requests_during_a_pending_write_get_concurrent_transactions() {
        let (mut h, pid) = begun();
        let prepare = h.end(pid, 0, TransactionResult::Abort);
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Abort)), E::ConcurrentTransactions);
        assert_eq!(init_answer(&h.init(None)).0, E::ConcurrentTransactions);
        h.settle(prepare);
        assert_eq!(h.state(), CompleteAbort);
    }

    #[test]
    fn a_failed_write_drops_the_pending_state_and_answers_the_coordinators_error() {
        let (mut h, pid) = begun();
        let prepare = h.end(pid, 0, TransactionResult::Commit);
        let TxnEffect::Append { write, .. } = prepare[0] else { unreachable!() };
        let mut out = Vec::new();
        h.c.on_append_done(0, write, E::NotEnoughReplicas, &mut out);
        assert_eq!(end_answer(&out), E::CoordinatorNotAvailable);
        assert_eq!(h.state(), Ongoing, "still undecided: the producer retries its commit");
        let retry = h.end(pid, 0, TransactionResult::Commit);
        h.settle(retry);
        assert_eq!(h.state(), CompleteCommit);
    }

    #[test]
    fn add_partitions_with_nothing_new_writes_nothing_and_an_unknown_producer_id_is_refused() {
        let (mut h, pid) = begun();
        assert_eq!(
            h.add(pid, 0, &[("orders", 1)]),
            vec![TxnEffect::AddPartitionsToTxn { reply: reply(3), error: E::None }]
        );
        assert_eq!(add_answer(&h.add(pid + 7, 0, &[("orders", 1)])), E::InvalidProducerIdMapping);
        assert_eq!(end_answer(&h.end(pid + 7, 0, TransactionResult::Commit)), E::InvalidProducerIdMapping);
    }

    #[test]
    fn committing_with_nothing_added_is_an_invalid_txn_state() {
        let mut h = Harness::new();
        let init = h.init(None);
        let (_, pid, _) = init_answer(&h.settle(init));
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::InvalidTxnState);
    }

    #[test]
    fn a_timeout_above_the_brokers_maximum_is_refused() {
        let mut h = Harness::new();
        let mut out = Vec::new();
        let mut alloc = || 1;
        h.c.handle_init_producer_id(0, reply(1), ID, 900_001, None, &mut alloc, &mut out);
        assert_eq!(init_answer(&out).0, E::InvalidTransactionTimeout);
        assert!(h.c.transaction(ID).is_none());
    }

    #[test]
    fn the_sweep_aborts_a_transaction_older_than_its_timeout_and_fences_its_producer() {
        let (mut h, pid) = begun();
        let mut out = Vec::new();
        h.c.abort_timed_out_transactions(60_000, &mut out);
        assert!(out.is_empty(), "60 s is not past a 60 s timeout");
        h.c.abort_timed_out_transactions(60_001, &mut out);
        let seen = h.settle(out);
        assert_eq!(markers(&seen).len(), 2);
        assert_eq!((h.state(), h.epoch()), (CompleteAbort, 1));
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::ProducerFenced);
    }

    #[test]
    fn a_new_leader_loads_a_prepared_commit_and_writes_its_markers_again() {
        let (mut h, pid) = begun();
        let prepare = h.end(pid, 0, TransactionResult::Commit);
        let TxnEffect::Append { ref record, .. } = prepare[0] else { unreachable!() };
        let written = vec![(ID.to_string(), record.clone())];
        // the old coordinator dies with its markers unwritten; another broker leads the partition
        let mut c = TransactionCoordinator::new(TxnCoordinatorConfig { transaction_version: 0, ..Default::default() });
        let mut out = Vec::new();
        c.load(c.partition_for(ID), 1, written, 5, &mut out);
        assert_eq!(markers(&out).len(), 2);
        let epochs: Vec<i32> = out
            .iter()
            .filter_map(|e| match e {
                TxnEffect::WriteMarker { coordinator_epoch, .. } => Some(*coordinator_epoch),
                _ => None,
            })
            .collect();
        assert_eq!(epochs, vec![1, 1], "the new coordinator writes with its own epoch");
        assert_eq!(c.transaction(ID).unwrap().pending_state, Some(CompleteCommit));
    }

    #[test]
    fn markers_from_a_deposed_coordinator_are_dropped_and_retriable_errors_retried() {
        let (mut h, pid) = begun();
        let prepare = h.end(pid, 0, TransactionResult::Abort);
        let TxnEffect::Append { write, .. } = prepare[0] else { unreachable!() };
        let mut out = Vec::new();
        h.c.on_append_done(0, write, E::None, &mut out);
        let tp0 = TopicPartition::new("orders", 0);
        let mut next = Vec::new();
        h.c.on_marker_written(ID, &tp0, 0, E::NotLeaderOrFollower, &mut next);
        assert!(next.is_empty() && h.c.has_retries());
        h.c.retry(&mut next);
        assert_eq!(markers(&next), vec![("orders-0".into(), TransactionResult::Abort, 0)]);
        // the partition moves away: the pending state goes with it
        let mut gone = Vec::new();
        h.c.unload(h.c.partition_for(ID), &mut gone);
        assert!(h.c.transaction(ID).is_none());
        h.c.on_marker_written(ID, &tp0, 0, E::None, &mut gone);
        assert!(gone.is_empty());
    }

    fn begun_tv2() -> (Harness, i64) {
        let mut h = Harness::tv2();
        let init = h.init(None);
        let (_, pid, epoch) = init_answer(&h.settle(init));
        assert_eq!(epoch, 0);
        // the partition leaders add the partitions (a broker's AddPartitionsToTxn, version 2)
        let add = h.add(pid, 0, &[("orders", 0), ("orders", 1)]);
        assert_eq!(add_answer(&h.settle(add)), E::None);
        (h, pid)
    }

    #[test]
    fn tv2_commit_bumps_the_epoch_the_markers_carry_it_and_end_txn_hands_it_to_the_producer() {
        let (mut h, pid) = begun_tv2();
        let end = h.end(pid, 0, TransactionResult::Commit);
        let seen = h.settle(end);
        assert_eq!(end_answer_with_epoch(&seen), (E::None, pid, 1), "EndTxn v5 answers the next epoch");
        assert_eq!(
            markers(&seen),
            vec![("orders-0".into(), TransactionResult::Commit, 1), ("orders-1".into(), TransactionResult::Commit, 1)],
            "the markers carry the bumped epoch"
        );
        assert_eq!((h.state(), h.epoch()), (CompleteCommit, 1));
        // a retry of that EndTxn (the old epoch) hears NONE and the current epoch again
        assert_eq!(end_answer_with_epoch(&h.end(pid, 0, TransactionResult::Commit)), (E::None, pid, 1));
        // the next transaction, at the new epoch, is started by a leader's add; a late add or
        // produce of the old epoch is fenced
        assert_eq!(add_answer(&h.add(pid, 0, &[("orders", 2)])), E::ProducerFenced);
        let add = h.add(pid, 1, &[("orders", 2)]);
        assert_eq!(add_answer(&h.settle(add)), E::None);
        assert_eq!((h.state(), h.epoch()), (Ongoing, 1));
        let end = h.end(pid, 1, TransactionResult::Abort);
        assert_eq!(end_answer_with_epoch(&h.settle(end)), (E::None, pid, 2), "an abort bumps it too");
    }

    #[test]
    fn tv2_accepts_an_abort_with_nothing_added_and_refuses_a_commit() {
        let mut h = Harness::tv2();
        let init = h.init(None);
        let (_, pid, _) = init_answer(&h.settle(init));
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::InvalidTxnState);
        let abort = h.end(pid, 0, TransactionResult::Abort);
        let seen = h.settle(abort);
        assert_eq!(end_answer_with_epoch(&seen), (E::None, pid, 1));
        assert!(markers(&seen).is_empty(), "no partition, no marker");
        assert_eq!((h.state(), h.epoch()), (CompleteAbort, 1));
        // the retry of that abort (epoch 0) is NONE; a commit retried as abort's epoch is refused
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Abort)), E::None);
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::InvalidTxnState);
        // an epoch two below is a zombie
        let abort = h.end(pid, 1, TransactionResult::Abort);
        h.settle(abort);
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Abort)), E::ProducerFenced);
    }

    #[test]
    fn tv2_a_prepared_end_is_concurrent_for_its_retry_and_fenced_for_the_same_epoch_again() {
        let (mut h, pid) = begun_tv2();
        let prepare = h.end(pid, 0, TransactionResult::Commit);
        let TxnEffect::Append { write, .. } = prepare[0] else { unreachable!() };
        let mut out = Vec::new();
        h.c.on_append_done(0, write, E::None, &mut out);
        assert_eq!(h.state(), PrepareCommit);
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::ConcurrentTransactions);
        assert_eq!(end_answer(&h.end(pid, 1, TransactionResult::Commit)), E::ProducerFenced);
        // the next transaction's first add waits for the markers
        assert_eq!(add_answer(&h.add(pid, 1, &[("orders", 0)])), E::ConcurrentTransactions);
        h.settle(out);
        assert_eq!(h.state(), CompleteCommit);
    }

    #[test]
    fn tv2_a_fence_bumps_once_to_fence_and_once_to_abort() {
        let (mut h, pid) = begun_tv2();
        let fence = h.init(None);
        let seen = h.settle(fence);
        assert_eq!(init_answer(&seen).0, E::ConcurrentTransactions);
        assert_eq!(
            markers(&seen),
            vec![("orders-0".into(), TransactionResult::Abort, 2), ("orders-1".into(), TransactionResult::Abort, 2)],
            "the fence takes epoch 1, the version 2 abort epoch 2"
        );
        assert_eq!(end_answer(&h.end(pid, 0, TransactionResult::Commit)), E::ProducerFenced);
        let retry = h.init(None);
        assert_eq!(init_answer(&h.settle(retry)), (E::None, pid, 3));
    }

    #[test]
    fn tv2_an_end_at_the_last_epoch_hands_over_a_new_producer_id_at_epoch_0() {
        let (mut h, pid) = begun_tv2();
        let m = h.c.transactions.get_mut(ID).unwrap();
        m.producer_epoch = i16::MAX - 1;
        let end = h.end(pid, i16::MAX - 1, TransactionResult::Commit);
        let seen = h.settle(end);
        let (error, new_pid, epoch) = end_answer_with_epoch(&seen);
        assert_eq!((error, epoch), (E::None, 0));
        assert_ne!(new_pid, pid, "a new producer id");
        assert_eq!(markers(&seen)[0].2, i16::MAX, "the markers still go out under the old id's last epoch");
        let m = h.c.transaction(ID).unwrap();
        assert_eq!((m.producer_id, m.producer_epoch, m.prev_producer_id), (new_pid, 0, pid));
        // a retry with the old id and its last client epoch is recognised
        assert_eq!(end_answer_with_epoch(&h.end(pid, i16::MAX - 1, TransactionResult::Commit)), (E::None, new_pid, 0));
    }
}
