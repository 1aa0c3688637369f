//! The producer's side of transactions: the Java client's `TransactionManager`.
//!
//! A producer with a `transactional.id` goes through these states (`TransactionManager.State`):
//!
//! ```text
//! Uninitialized --initTransactions--> Initializing --InitProducerId--> Ready
//! Ready --beginTransaction--> InTransaction --commitTransaction--> CommittingTransaction --EndTxn--> Ready
//!                                  |         --abortTransaction---> AbortingTransaction  --EndTxn--> Ready
//!                                  +-- a failed send ---> AbortableError --abortTransaction--> AbortingTransaction
//! any --PRODUCER_FENCED, INVALID_PRODUCER_EPOCH (coordinator), INVALID_TXN_STATE--> FatalError
//! ```
//!
//! `initTransactions` finds the coordinator (FindCoordinator, key type TRANSACTION) and sends
//! InitProducerId with the `transactional.id`: the coordinator bumps the epoch, fencing any older
//! producer with the same id. Before the first record to a partition, the producer adds the
//! partition to the transaction (AddPartitionsToTxn); records to it wait until that is done
//! (`isSendToPartitionAllowed`). `commitTransaction` first flushes: EndTxn goes only once every
//! record is acknowledged. `abortTransaction` fails the records not yet sent
//! (`abortUndrainedBatches`) and waits for the ones in flight. The coordinator's answers get the
//! handlers' reactions: NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE look the coordinator up
//! again and retry, CONCURRENT_TRANSACTIONS retries after `retry.backoff.ms` (the previous
//! transaction is still completing), PRODUCER_FENCED and INVALID_PRODUCER_EPOCH are fatal as
//! ProducerFencedException, INVALID_TXN_STATE is fatal. A record that fails inside a transaction
//! makes it abortable: commit then fails, and the application must abort.
//!
//! After an aborted transaction whose records failed, the producer bumps its epoch with
//! InitProducerId carrying its producer id and epoch (KIP-360, `epochBumpRequired`), so its
//! sequence numbers start again at 0.
//!
//! **Transaction version 2** (KIP-890 part 2): a client that finds `transaction.version` at 2
//! among the cluster's finalized features (`maybeUpdateTransactionV2Enabled`, from ApiVersions)
//! adds no partition itself. `maybeAddPartition` marks the partition as in the transaction at
//! once (the leader adds it when the first batch arrives), `sendOffsetsToTransaction` sends its
//! TxnOffsetCommit without an AddOffsetsToTxn (the group coordinator adds the offsets
//! partition), and EndTxn goes as v5, whose answer carries the producer id and epoch the
//! coordinator bumped to: the next transaction runs under them, its sequence numbers from 0
//! (`EndTxnHandler`: `setProducerIdAndEpoch`, `resetSequenceNumbers`). Since every EndTxn bumps
//! the epoch, failed records need no InitProducerId bump of the client's own
//! (`needToTriggerEpochBumpFromClient` is false under version 2).

use crate::error::ErrorCode;
use crate::record::NO_PRODUCER_ID;
use crate::time::SimTime;
use crate::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;

/// `TransactionManager.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientTxnState {
    Uninitialized,
    Initializing,
    Ready,
    InTransaction,
    CommittingTransaction,
    AbortingTransaction,
    AbortableError,
    FatalError,
}

impl fmt::Display for ClientTxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A request to the transaction coordinator, queued until it can be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnRequestKind {
    FindCoordinator,
    /// `bump`: send the current producer id and epoch (KIP-360).
    InitProducerId {
        bump: bool,
    },
    AddPartitions(BTreeSet<TopicPartition>),
    /// `sendOffsetsToTransaction`, first step: AddOffsetsToTxn for the group.
    AddOffsets(String),
    /// Its second step, to the group's coordinator: TxnOffsetCommit.
    TxnOffsetCommit(PendingOffsets),
    /// FindCoordinator (key type GROUP) for the group of a TxnOffsetCommit.
    FindGroupCoordinator(String),
    EndTxn {
        commit: bool,
    },
}

/// The consumer's group metadata as `sendOffsetsToTransaction` takes it
/// (`ConsumerGroupMetadata`: group id, generation, member id, `group.instance.id`; KIP-447).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadata {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// The offsets of a `sendOffsetsToTransaction` call and the group metadata they go with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOffsets {
    pub offsets: Vec<(TopicPartition, i64)>,
    pub group: GroupMetadata,
}

/// What the producer must do after a coordinator's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    Nothing,
    /// initTransactions (or an epoch bump) completed.
    Initialized,
    /// commitTransaction / abortTransaction completed; `producer_id` and `producer_epoch` are
    /// the ones the transaction ran under (under transaction version 2 the manager already holds
    /// the next ones).
    Ended {
        committed: bool,
        records: Vec<(TopicPartition, i64)>,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// sendOffsetsToTransaction completed: the group coordinator holds the offsets pending.
    OffsetsSent {
        group: String,
        offsets: Vec<(TopicPartition, i64)>,
    },
    /// The producer is now in this error.
    Failed {
        error: ErrorCode,
        fatal: bool,
    },
}

#[derive(Clone, Debug)]
pub struct TransactionManager {
    pub transactional_id: String,
    pub transaction_timeout_ms: u64,
    pub state: ClientTxnState,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator: Option<BrokerId>,
    /// The coordinator of the group a TxnOffsetCommit goes to.
    pub group_coordinator: Option<BrokerId>,
    /// The group's offsets partition is in the transaction (AddOffsetsToTxn succeeded), so an
    /// abort needs an EndTxn even with no record sent (`transactionStarted`).
    pub offsets_added: bool,
    /// The offsets waiting for AddOffsetsToTxn to succeed before their TxnOffsetCommit goes.
    pub offsets_to_commit: Option<PendingOffsets>,
    /// Partitions the coordinator has added to the current transaction.
    pub partitions: BTreeSet<TopicPartition>,
    /// Partitions with records, not yet added (`newPartitionsInTransaction`).
    pub new_partitions: BTreeSet<TopicPartition>,
    /// Requests waiting to be sent, in order (`pendingRequests`).
    pub queue: VecDeque<TxnRequestKind>,
    /// The request on the wire: correlation id, what, and to whom.
    pub in_flight: Option<(u64, TxnRequestKind, BrokerId)>,
    /// No request goes before this (`retry.backoff.ms` after a retriable error).
    pub retry_at: SimTime,
    /// The error that made the transaction abortable or the producer unusable.
    pub last_error: Option<ErrorCode>,
    /// Where the current transaction's records went.
    pub records: Vec<(TopicPartition, i64)>,
    /// A record failed in this transaction: after the abort, bump the epoch.
    pub epoch_bump_required: bool,
    /// The cluster finalized `transaction.version` 2 (`isTransactionV2Enabled`).
    pub transaction_v2: bool,
}

impl TransactionManager {
    /// `transaction_v2`: the cluster's finalized `transaction.version` is 2, as the client learns
    /// it from ApiVersions before `initTransactions`.
    pub fn new(transactional_id: String, transaction_timeout_ms: u64, transaction_v2: bool) -> Self {
        TransactionManager {
            transactional_id,
            transaction_timeout_ms,
            state: ClientTxnState::Uninitialized,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            coordinator: None,
            group_coordinator: None,
            offsets_added: false,
            offsets_to_commit: None,
            partitions: BTreeSet::new(),
            new_partitions: BTreeSet::new(),
            queue: VecDeque::new(),
            in_flight: None,
            retry_at: SimTime::ZERO,
            last_error: None,
            records: Vec::new(),
            epoch_bump_required: false,
            transaction_v2,
        }
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    /// The state an application call needs, as the Java client checks it
    /// (`maybeFailWithError`, then `transitionTo`'s legality): an error state names its error.
    fn require(&self, allowed: &[ClientTxnState], call: &str) -> Result<(), String> {
        if allowed.contains(&self.state) {
            return Ok(());
        }
        Err(match (self.state, self.last_error) {
            (ClientTxnState::FatalError, Some(e)) => format!("{call}: the producer failed with {e} and must be closed"),
            (ClientTxnState::AbortableError, Some(e)) => {
                format!("{call}: the transaction failed with {e}; abortTransaction() it")
            }
            (state, _) => format!("{call}: invalid transition attempted from state {state} (IllegalStateException)"),
        })
    }

    /// `initTransactions()`.
    pub fn init_transactions(&mut self) -> Result<(), String> {
        self.require(&[ClientTxnState::Uninitialized], "initTransactions")?;
        self.state = ClientTxnState::Initializing;
        self.queue.push_back(TxnRequestKind::InitProducerId { bump: false });
        Ok(())
    }

    /// `beginTransaction()`: local only; the coordinator hears of it with the first partition.
    pub fn begin_transaction(&mut self) -> Result<(), String> {
        self.require(&[ClientTxnState::Ready], "beginTransaction")?;
        self.state = ClientTxnState::InTransaction;
        self.records.clear();
        Ok(())
    }

    /// `send()` is allowed only inside a transaction (`failIfNotReadyForSend`).
    pub fn check_send(&self) -> Result<(), String> {
        self.require(&[ClientTxnState::InTransaction], "send")
    }

    /// `sendOffsetsToTransaction(offsets, groupMetadata)`: AddOffsetsToTxn to the transaction
    /// coordinator, then (`AddOffsetsToTxnHandler` on success) TxnOffsetCommit to the group's
    /// coordinator; the call returns once the latter is answered.
    /// Under transaction version 2 the TxnOffsetCommit goes at once ("the client will skip
    /// sending AddOffsetsToTxn"), and the transaction counts as started.
    pub fn send_offsets_to_transaction(&mut self, offsets: PendingOffsets) -> Result<(), String> {
        self.require(&[ClientTxnState::InTransaction], "sendOffsetsToTransaction")?;
        if self.transaction_v2 {
            self.offsets_added = true;
            self.queue.push_back(TxnRequestKind::TxnOffsetCommit(offsets));
            return Ok(());
        }
        self.queue.push_back(TxnRequestKind::AddOffsets(offsets.group.group_id.clone()));
        self.offsets_to_commit = Some(offsets);
        Ok(())
    }

    /// `commitTransaction()`: EndTxn(commit) goes once every record is acknowledged.
    pub fn begin_commit(&mut self) -> Result<(), String> {
        self.require(&[ClientTxnState::InTransaction], "commitTransaction")?;
        self.state = ClientTxnState::CommittingTransaction;
        self.queue.push_back(TxnRequestKind::EndTxn { commit: true });
        Ok(())
    }

    /// `abortTransaction()`. A transaction that never added a partition ends locally
    /// (`beginAbort` when `!transactionStarted`): returns whether an EndTxn is needed.
    pub fn begin_abort(&mut self) -> Result<bool, String> {
        self.require(&[ClientTxnState::InTransaction, ClientTxnState::AbortableError], "abortTransaction")?;
        self.state = ClientTxnState::AbortingTransaction;
        self.new_partitions.clear();
        self.queue.retain(|r| {
            !matches!(
                r,
                TxnRequestKind::AddPartitions(_)
                    | TxnRequestKind::AddOffsets(_)
                    | TxnRequestKind::TxnOffsetCommit(_)
                    | TxnRequestKind::FindGroupCoordinator(_)
            )
        });
        self.offsets_to_commit = None;
        let adding =
            matches!(self.in_flight, Some((_, TxnRequestKind::AddPartitions(_) | TxnRequestKind::AddOffsets(_), _)));
        if self.partitions.is_empty() && !self.offsets_added && !adding {
            return Ok(false);
        }
        self.queue.push_back(TxnRequestKind::EndTxn { commit: false });
        Ok(true)
    }

    /// A record for `tp` is on its way (`maybeAddPartition`). Under transaction version 2 the
    /// partition is in the transaction at once: its leader will add it.
    pub fn maybe_add_partition(&mut self, tp: &TopicPartition) {
        if self.state == ClientTxnState::InTransaction && !self.partitions.contains(tp) {
            if self.transaction_v2 {
                self.partitions.insert(tp.clone());
            } else {
                self.new_partitions.insert(tp.clone());
            }
        }
    }

    /// Records to `tp` may go out (`isSendToPartitionAllowed`).
    pub fn is_send_to_partition_allowed(&self, tp: &TopicPartition) -> bool {
        !matches!(self.state, ClientTxnState::AbortableError | ClientTxnState::FatalError)
            && self.partitions.contains(tp)
    }

    /// Whether the producer is failing unsent records (aborting, or after an error).
    pub fn is_aborting(&self) -> bool {
        matches!(
            self.state,
            ClientTxnState::AbortingTransaction | ClientTxnState::AbortableError | ClientTxnState::FatalError
        )
    }

    /// The next request to send, if any may go now: pending partitions first, and an EndTxn
    /// only when `flushed` (no record incomplete).
    pub fn next_request(&mut self, now: SimTime, flushed: bool) -> Option<TxnRequestKind> {
        if self.in_flight.is_some() || now < self.retry_at || self.state == ClientTxnState::FatalError {
            return None;
        }
        if !self.new_partitions.is_empty() && !self.queue.iter().any(|r| matches!(r, TxnRequestKind::AddPartitions(_)))
        {
            let added = std::mem::take(&mut self.new_partitions);
            // AddPartitionsToTxn goes before an EndTxn already queued (commit flushes first).
            let at =
                self.queue.iter().position(|r| matches!(r, TxnRequestKind::EndTxn { .. })).unwrap_or(self.queue.len());
            self.queue.insert(at, TxnRequestKind::AddPartitions(added));
        }
        let next = self.queue.front()?.clone();
        if let TxnRequestKind::TxnOffsetCommit(offsets) = &next {
            if self.group_coordinator.is_none() {
                let find = TxnRequestKind::FindGroupCoordinator(offsets.group.group_id.clone());
                self.queue.push_front(find.clone());
                return Some(find);
            }
            return Some(next);
        }
        if matches!(next, TxnRequestKind::FindGroupCoordinator(_)) {
            return Some(next);
        }
        if self.coordinator.is_none() && next != TxnRequestKind::FindCoordinator {
            self.queue.push_front(TxnRequestKind::FindCoordinator);
            return self.queue.front().cloned();
        }
        if matches!(next, TxnRequestKind::EndTxn { .. }) && !flushed {
            return None;
        }
        Some(next)
    }

    /// The request went out.
    pub fn sent(&mut self, correlation_id: u64, kind: TxnRequestKind, broker: BrokerId) {
        let front = self.queue.pop_front();
        assert_eq!(front.as_ref(), Some(&kind), "the request sent is the one at the head of the queue");
        self.in_flight = Some((correlation_id, kind, broker));
    }

    fn retry(&mut self, kind: TxnRequestKind, now: SimTime, backoff_ms: u64) {
        self.queue.push_front(kind);
        self.retry_at = now.plus_ms(backoff_ms);
    }

    fn lookup_coordinator(&mut self, kind: TxnRequestKind, now: SimTime, backoff_ms: u64) {
        self.coordinator = None;
        self.retry(kind, now, backoff_ms);
    }

    fn fatal(&mut self, error: ErrorCode) -> TxnOutcome {
        self.state = ClientTxnState::FatalError;
        self.last_error = Some(error);
        self.queue.clear();
        TxnOutcome::Failed { error, fatal: true }
    }

    /// A record of the transaction failed for good (`maybeTransitionToErrorState`).
    pub fn on_record_failed(&mut self, error: ErrorCode) -> TxnOutcome {
        match self.state {
            ClientTxnState::FatalError | ClientTxnState::AbortableError => TxnOutcome::Nothing,
            ClientTxnState::AbortingTransaction => {
                self.epoch_bump_required = !self.transaction_v2;
                TxnOutcome::Nothing
            }
            _ => {
                self.epoch_bump_required = !self.transaction_v2;
                self.state = ClientTxnState::AbortableError;
                self.last_error = Some(error);
                // A commit waiting for its records fails: the application must abort.
                self.queue.retain(|r| !matches!(r, TxnRequestKind::EndTxn { commit: true }));
                TxnOutcome::Failed { error, fatal: false }
            }
        }
    }

    /// A record of the transaction was acknowledged.
    pub fn on_record_acked(&mut self, tp: &TopicPartition, offset: i64) {
        self.records.push((tp.clone(), offset));
    }

    /// The request in flight got no answer (a timeout, a closed connection): look the
    /// coordinator up again and retry (`NetworkClient` disconnects are retriable).
    pub fn on_request_failed(&mut self, now: SimTime, backoff_ms: u64) {
        if let Some((_, kind, _)) = self.in_flight.take() {
            if matches!(kind, TxnRequestKind::TxnOffsetCommit(_) | TxnRequestKind::FindGroupCoordinator(_)) {
                self.group_coordinator = None;
                self.retry(kind, now, backoff_ms);
            } else {
                self.lookup_coordinator(kind, now, backoff_ms);
            }
        }
    }

    /// FindCoordinator's answer (`FindCoordinatorHandler`).
    pub fn on_find_coordinator(
        &mut self,
        now: SimTime,
        error: ErrorCode,
        coordinator: Option<BrokerId>,
        backoff_ms: u64,
    ) {
        let Some((_, kind, _)) = self.in_flight.take() else { return };
        match (error, coordinator, &kind) {
            (ErrorCode::None, Some(broker), TxnRequestKind::FindGroupCoordinator(_)) => {
                self.group_coordinator = Some(broker)
            }
            (ErrorCode::None, Some(broker), _) => self.coordinator = Some(broker),
            _ => self.retry(kind, now, backoff_ms),
        }
    }

    /// InitProducerId's answer (`InitProducerIdHandler`).
    pub fn on_init_producer_id(
        &mut self,
        now: SimTime,
        error: ErrorCode,
        producer_id: i64,
        producer_epoch: i16,
        backoff_ms: u64,
    ) -> TxnOutcome {
        let Some((_, kind, _)) = self.in_flight.take() else { return TxnOutcome::Nothing };
        match error {
            ErrorCode::None => {
                self.producer_id = producer_id;
                self.producer_epoch = producer_epoch;
                self.state = ClientTxnState::Ready;
                self.last_error = None;
                self.epoch_bump_required = false;
                TxnOutcome::Initialized
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.lookup_coordinator(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::ConcurrentTransactions | ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut => {
                self.retry(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => self.fatal(ErrorCode::ProducerFenced),
            other => self.fatal(other),
        }
    }

    /// AddPartitionsToTxn's answer (`AddPartitionsToTxnHandler`).
    pub fn on_add_partitions(&mut self, now: SimTime, error: ErrorCode, backoff_ms: u64) -> TxnOutcome {
        let Some((_, kind, _)) = self.in_flight.take() else { return TxnOutcome::Nothing };
        let TxnRequestKind::AddPartitions(added) = &kind else { unreachable!("an AddPartitions answer") };
        match error {
            ErrorCode::None => {
                self.partitions.extend(added.iter().cloned());
                TxnOutcome::Nothing
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.lookup_coordinator(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::ConcurrentTransactions | ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut => {
                // The previous transaction is completing. Java retries AddPartitions sooner
                // (`ADD_PARTITIONS_RETRY_BACKOFF_MS`, 20 ms) when this is the first partition.
                let backoff = if self.partitions.is_empty() { backoff_ms.min(20) } else { backoff_ms };
                self.retry(kind, now, backoff);
                TxnOutcome::Nothing
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => self.fatal(ErrorCode::ProducerFenced),
            ErrorCode::InvalidTxnState => self.fatal(error),
            other => {
                if self.state == ClientTxnState::AbortingTransaction {
                    return TxnOutcome::Nothing;
                }
                self.state = ClientTxnState::AbortableError;
                self.last_error = Some(other);
                self.queue.retain(|r| !matches!(r, TxnRequestKind::EndTxn { commit: true }));
                TxnOutcome::Failed { error: other, fatal: false }
            }
        }
    }

    /// AddOffsetsToTxn's answer (`AddOffsetsToTxnHandler`): on success the TxnOffsetCommit goes
    /// next; the errors are AddPartitionsToTxn's.
    pub fn on_add_offsets(&mut self, now: SimTime, error: ErrorCode, backoff_ms: u64) -> TxnOutcome {
        let Some((_, kind, _)) = self.in_flight.take() else { return TxnOutcome::Nothing };
        match error {
            ErrorCode::None => {
                self.offsets_added = true;
                if let Some(offsets) = self.offsets_to_commit.take() {
                    self.queue.push_front(TxnRequestKind::TxnOffsetCommit(offsets));
                }
                TxnOutcome::Nothing
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.lookup_coordinator(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::ConcurrentTransactions | ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut => {
                self.retry(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => self.fatal(ErrorCode::ProducerFenced),
            other => self.fatal(other),
        }
    }

    /// TxnOffsetCommit's answer (`TxnOffsetCommitHandler`): the group coordinator moved or is
    /// loading: retry; the group metadata is stale (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION as a
    /// CommitFailedException, FENCED_INSTANCE_ID): the transaction must be aborted; a fenced
    /// producer is fatal.
    pub fn on_txn_offset_commit(&mut self, now: SimTime, error: ErrorCode, backoff_ms: u64) -> TxnOutcome {
        let Some((_, kind, _)) = self.in_flight.take() else { return TxnOutcome::Nothing };
        let TxnRequestKind::TxnOffsetCommit(offsets) = &kind else { unreachable!("a TxnOffsetCommit answer") };
        match error {
            ErrorCode::None => {
                TxnOutcome::OffsetsSent { group: offsets.group.group_id.clone(), offsets: offsets.offsets.clone() }
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable | ErrorCode::RequestTimedOut => {
                self.group_coordinator = None;
                self.retry(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            // CONCURRENT_TRANSACTIONS: under transaction version 2 the group coordinator's
            // addition of the offsets partition met the previous transaction's markers still
            // being written (`ConcurrentTransactionsException` is retriable).
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::ConcurrentTransactions => {
                self.retry(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::FencedInstanceId | ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                if self.state == ClientTxnState::AbortingTransaction {
                    return TxnOutcome::Nothing;
                }
                self.state = ClientTxnState::AbortableError;
                self.last_error = Some(error);
                self.queue.retain(|r| !matches!(r, TxnRequestKind::EndTxn { commit: true }));
                TxnOutcome::Failed { error, fatal: false }
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => self.fatal(ErrorCode::ProducerFenced),
            other => self.fatal(other),
        }
    }

    /// EndTxn's answer (`EndTxnHandler`); v5's `producer_id` and `producer_epoch` (not -1) are
    /// the next transaction's.
    pub fn on_end_txn(
        &mut self,
        now: SimTime,
        error: ErrorCode,
        (producer_id, producer_epoch): (i64, i16),
        backoff_ms: u64,
    ) -> TxnOutcome {
        let Some((_, kind, _)) = self.in_flight.take() else { return TxnOutcome::Nothing };
        let TxnRequestKind::EndTxn { commit } = kind else { unreachable!("an EndTxn answer") };
        match error {
            ErrorCode::None => {
                let outcome = self.complete_transaction(commit);
                if producer_id != NO_PRODUCER_ID {
                    self.producer_id = producer_id;
                    self.producer_epoch = producer_epoch;
                }
                outcome
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.lookup_coordinator(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::ConcurrentTransactions | ErrorCode::CoordinatorLoadInProgress | ErrorCode::RequestTimedOut => {
                self.retry(kind, now, backoff_ms);
                TxnOutcome::Nothing
            }
            ErrorCode::InvalidProducerEpoch | ErrorCode::ProducerFenced => self.fatal(ErrorCode::ProducerFenced),
            other => self.fatal(other),
        }
    }

    /// The transaction is over (`completeTransaction`); after failed records, bump the epoch.
    pub fn complete_transaction(&mut self, committed: bool) -> TxnOutcome {
        self.partitions.clear();
        self.offsets_added = false;
        self.offsets_to_commit = None;
        self.new_partitions.clear();
        self.last_error = None;
        let records = std::mem::take(&mut self.records);
        let (producer_id, producer_epoch) = (self.producer_id, self.producer_epoch);
        if self.epoch_bump_required {
            self.state = ClientTxnState::Initializing;
            self.queue.push_back(TxnRequestKind::InitProducerId { bump: true });
        } else {
            self.state = ClientTxnState::Ready;
        }
        TxnOutcome::Ended { committed, records, producer_id, producer_epoch }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn initialised() -> TransactionManager {
        initialised_as(false)
    }

    fn initialised_as(transaction_v2: bool) -> TransactionManager {
        let mut t = TransactionManager::new("tx".into(), 60_000, transaction_v2);
        t.init_transactions().unwrap();
        t.coordinator = Some(1);
        let kind = t.next_request(SimTime::ZERO, true).unwrap();
        t.sent(1, kind, 1);
        assert_eq!(t.on_init_producer_id(SimTime::ZERO, ErrorCode::None, 7, 0, 100), TxnOutcome::Initialized);
        t
    }

    #[test]
    fn records_wait_for_their_partition_to_be_added_and_commit_for_every_record() {
        let mut t = initialised();
        t.begin_transaction().unwrap();
        let tp = TopicPartition::new("a", 0);
        t.maybe_add_partition(&tp);
        assert!(!t.is_send_to_partition_allowed(&tp));
        t.begin_commit().unwrap();
        let add = t.next_request(SimTime::ZERO, false).unwrap();
        assert!(matches!(add, TxnRequestKind::AddPartitions(_)), "partitions are added before the EndTxn");
        t.sent(2, add, 1);
        t.on_add_partitions(SimTime::ZERO, ErrorCode::None, 100);
        assert!(t.is_send_to_partition_allowed(&tp));
        assert_eq!(t.next_request(SimTime::ZERO, false), None, "EndTxn waits for the records");
        assert_eq!(t.next_request(SimTime::ZERO, true), Some(TxnRequestKind::EndTxn { commit: true }));
    }

    #[test]
    fn producer_fenced_and_invalid_producer_epoch_are_fatal_concurrent_transactions_retried() {
        let mut t = initialised();
        t.begin_transaction().unwrap();
        t.partitions.insert(TopicPartition::new("a", 0));
        t.begin_commit().unwrap();
        let end = t.next_request(SimTime::ZERO, true).unwrap();
        t.sent(3, end.clone(), 1);
        assert_eq!(t.on_end_txn(SimTime::ZERO, ErrorCode::ConcurrentTransactions, (-1, -1), 100), TxnOutcome::Nothing);
        assert_eq!(t.next_request(SimTime::from_ms(50), true), None, "backs off retry.backoff.ms");
        let again = t.next_request(SimTime::from_ms(100), true).unwrap();
        t.sent(4, again, 1);
        let outcome = t.on_end_txn(SimTime::from_ms(100), ErrorCode::InvalidProducerEpoch, (-1, -1), 100);
        assert_eq!(outcome, TxnOutcome::Failed { error: ErrorCode::ProducerFenced, fatal: true });
        assert!(t.begin_transaction().is_err());
    }

    #[test]
    fn a_failed_record_makes_the_transaction_abortable_and_the_abort_bumps_the_epoch() {
        let mut t = initialised();
        t.begin_transaction().unwrap();
        t.partitions.insert(TopicPartition::new("a", 0));
        assert_eq!(
            t.on_record_failed(ErrorCode::InvalidProducerEpoch),
            TxnOutcome::Failed { error: ErrorCode::InvalidProducerEpoch, fatal: false }
        );
        assert!(t.begin_commit().is_err(), "commit is refused: abort first");
        assert!(t.begin_abort().unwrap());
        let end = t.next_request(SimTime::ZERO, true).unwrap();
        t.sent(5, end, 1);
        assert!(matches!(
            t.on_end_txn(SimTime::ZERO, ErrorCode::None, (-1, -1), 100),
            TxnOutcome::Ended { committed: false, .. }
        ));
        assert_eq!(t.state, ClientTxnState::Initializing);
        assert_eq!(t.next_request(SimTime::ZERO, true), Some(TxnRequestKind::InitProducerId { bump: true }));
    }

    #[test]
    fn send_offsets_adds_the_group_then_commits_to_the_group_coordinator_and_a_stale_generation_is_abortable() {
        let mut t = initialised();
        t.begin_transaction().unwrap();
        let group =
            GroupMetadata { group_id: "g".into(), generation: 3, member_id: "m-1".into(), group_instance_id: None };
        let offsets = PendingOffsets { offsets: vec![(TopicPartition::new("in", 0), 10)], group };
        t.send_offsets_to_transaction(offsets.clone()).unwrap();
        let add = t.next_request(SimTime::ZERO, false).unwrap();
        assert_eq!(add, TxnRequestKind::AddOffsets("g".into()));
        t.sent(2, add, 1);
        assert_eq!(t.on_add_offsets(SimTime::ZERO, ErrorCode::None, 100), TxnOutcome::Nothing);
        // The group's coordinator is looked up first (key type GROUP), then the commit goes there.
        let find = t.next_request(SimTime::ZERO, false).unwrap();
        assert_eq!(find, TxnRequestKind::FindGroupCoordinator("g".into()));
        t.sent(3, find, 1);
        t.on_find_coordinator(SimTime::ZERO, ErrorCode::None, Some(2), 100);
        assert_eq!(t.group_coordinator, Some(2));
        let commit = t.next_request(SimTime::ZERO, false).unwrap();
        assert_eq!(commit, TxnRequestKind::TxnOffsetCommit(offsets.clone()));
        t.sent(4, commit.clone(), 2);
        assert_eq!(t.on_txn_offset_commit(SimTime::ZERO, ErrorCode::NotCoordinator, 100), TxnOutcome::Nothing);
        assert_eq!(t.group_coordinator, None, "NOT_COORDINATOR: look the group coordinator up again");
        t.group_coordinator = Some(2);
        let again = t.next_request(SimTime::from_ms(100), false).unwrap();
        t.sent(5, again, 2);
        assert_eq!(
            t.on_txn_offset_commit(SimTime::from_ms(100), ErrorCode::IllegalGeneration, 100),
            TxnOutcome::Failed { error: ErrorCode::IllegalGeneration, fatal: false }
        );
        assert!(t.begin_commit().is_err(), "CommitFailedException: abort first");
        assert!(t.begin_abort().unwrap(), "the offsets partition is in the transaction: EndTxn(abort) is needed");
    }

    #[test]
    fn tv2_adds_no_partitions_sends_offsets_without_add_offsets_and_takes_the_epoch_end_txn_returns() {
        let mut t = initialised_as(true);
        t.begin_transaction().unwrap();
        let tp = TopicPartition::new("out", 0);
        t.maybe_add_partition(&tp);
        assert!(t.is_send_to_partition_allowed(&tp), "no AddPartitionsToTxn: the leader adds it");
        let group =
            GroupMetadata { group_id: "g".into(), generation: 1, member_id: "m-1".into(), group_instance_id: None };
        let offsets = PendingOffsets { offsets: vec![(TopicPartition::new("in", 0), 5)], group };
        t.send_offsets_to_transaction(offsets.clone()).unwrap();
        t.group_coordinator = Some(2);
        let commit = t.next_request(SimTime::ZERO, false).unwrap();
        assert_eq!(commit, TxnRequestKind::TxnOffsetCommit(offsets), "no AddOffsetsToTxn");
        t.sent(2, commit, 2);
        assert!(matches!(t.on_txn_offset_commit(SimTime::ZERO, ErrorCode::None, 100), TxnOutcome::OffsetsSent { .. }));
        t.begin_commit().unwrap();
        let end = t.next_request(SimTime::ZERO, true).unwrap();
        assert_eq!(end, TxnRequestKind::EndTxn { commit: true });
        t.sent(3, end, 1);
        let outcome = t.on_end_txn(SimTime::ZERO, ErrorCode::None, (7, 1), 100);
        assert!(
            matches!(outcome, TxnOutcome::Ended { committed: true, producer_id: 7, producer_epoch: 0, .. }),
            "the transaction ran under epoch 0"
        );
        assert_eq!((t.state, t.producer_id, t.producer_epoch), (ClientTxnState::Ready, 7, 1), "the next runs under 1");
    }

    #[test]
    fn tv2_a_failed_record_needs_no_epoch_bump_of_the_clients_own() {
        let mut t = initialised_as(true);
        t.begin_transaction().unwrap();
        t.maybe_add_partition(&TopicPartition::new("a", 0));
        t.on_record_failed(ErrorCode::RequestTimedOut);
        assert!(t.begin_abort().unwrap(), "the partition may have been added: EndTxn(abort)");
        let end = t.next_request(SimTime::ZERO, true).unwrap();
        t.sent(4, end, 1);
        t.on_end_txn(SimTime::ZERO, ErrorCode::None, (7, 1), 100);
        assert_eq!(t.state, ClientTxnState::Ready, "the abort's bump is the coordinator's");
        assert_eq!(t.producer_epoch, 1);
    }
}
