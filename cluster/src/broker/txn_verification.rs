//! Transaction verification at the partition leader (KIP-890 part 1, Kafka 3.6+,
//! `transaction.partition.verification.enable`, on by default).
//!
//! Before KIP-890 a partition leader appended any transactional batch whose producer epoch was
//! not stale. A produce delayed in the network could land after its transaction had been
//! aborted: the leader took it as the start of a new transaction, one the coordinator never heard
//! of, so no marker would ever close it. That *hanging transaction* pins the partition's last
//! stable offset: read_committed consumers stop there, and the log cleaner cannot pass it, until
//! an operator aborts it by hand (`kafka-transactions.sh abort`).
//!
//! With verification, a transactional batch for a producer with no transaction open here in its
//! epoch waits while the leader asks the producer's transaction coordinator whether this
//! partition is in the producer's ongoing transaction (`ReplicaManager.appendRecords` ->
//! `AddPartitionsToTxnManager.verifyTransaction`: AddPartitionsToTxn v4+ with `verifyOnly`).
//! The coordinator answers from its cache (`handleVerifyPartitionsInTransaction`): NONE if it
//! is; TRANSACTION_ABORTABLE if it is not; PRODUCER_FENCED for another epoch, which the leader
//! turns into INVALID_PRODUCER_EPOCH, the error producers expect from a partition. Only then does
//! the batch append. Meanwhile a *verification guard* (`VerificationGuard`, kept in the
//! partition's producer state) stands for the question asked: a marker for the producer removes
//! it, and a verified batch whose guard is gone is refused with INVALID_TXN_STATE ("Record was not
//! part of an ongoing transaction", `UnifiedLog.analyzeAndValidateProducerState`). A batch of a
//! transaction already open here needs no question (`UnifiedLog.hasOngoingTransaction`).
//!
//! ksim sends one question per produce request (its produce requests hold one partition); Kafka
//! batches the questions of all partitions of a request, and keeps at most one per
//! `transactional.id` in flight per coordinator.
//!
//! **Transaction version 2** (KIP-890 part 2) turns the question into the addition itself. A
//! version 2 client (Produce v12+) never sends AddPartitionsToTxn, so the leader's call is not
//! verify-only: the coordinator adds the partition to the producer's transaction, starting one if
//! the id was idle (`ReplicaManager.maybeSendPartitionsToTransactionCoordinator` with
//! `TransactionSupportedOperation.ADD_PARTITION`). The call is made whatever
//! `transaction.partition.verification.enable` says (the setting only gates the older clients'
//! verification), and a CONCURRENT_TRANSACTIONS answer (the previous transaction's markers are
//! still being written) reaches the producer as it is, which retries. The group coordinator does
//! the same for a version 2 TxnOffsetCommit, which no AddOffsetsToTxn preceded: it adds the
//! group's `__consumer_offsets` partition before it writes the offsets.

use super::{Broker, Outstanding};
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::time::SimTime;
use crate::topic::TopicPartition;
use crate::txn::TRANSACTION_STATE_TOPIC;

/// A held produce request, as `on_verified` takes it apart.
struct Held {
    client: NodeId,
    correlation_id: u64,
    request: ProduceRequest,
    guard: u64,
}

/// A request held until the transaction coordinator answers: a produce request (with its
/// verification guard), or a version 2 TxnOffsetCommit whose offsets partition is being added.
#[derive(Clone, Debug)]
pub(super) enum PendingVerification {
    Produce { client: NodeId, correlation_id: u64, request: ProduceRequest, guard: u64 },
    TxnOffsetCommit { client: NodeId, correlation_id: u64, request: TxnOffsetCommitRequest },
}

impl Broker {
    /// Let a produce request through, or hold it for verification (`None`: held, or refused).
    pub(super) fn maybe_verify_transaction(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        request: ProduceRequest,
        fx: &mut Effects,
    ) -> Option<ProduceRequest> {
        let required = self.config.transaction_partition_verification_enable || request.transaction_v2;
        if !required || !request.batch.is_transactional {
            return Some(request);
        }
        let Some(transactional_id) = request.transactional_id.clone() else { return Some(request) };
        let (producer_id, producer_epoch) = (request.batch.producer_id, request.batch.producer_epoch);
        let tp = request.partition.clone();
        let replica = match self.replicas.get(&tp) {
            Some(r) if r.is_leader() && !r.has_ongoing_transaction(producer_id, producer_epoch) => r,
            // Not the leader (the append path answers that), or a transaction already open here.
            _ => return Some(request),
        };
        // `maybeStartTransactionVerification`: one guard per producer and epoch.
        let guard = match replica.verification_guards.get(&producer_id) {
            Some(&(epoch, guard)) if epoch == producer_epoch => guard,
            _ => self.next_id(),
        };
        let state = TopicPartition::new(TRANSACTION_STATE_TOPIC, self.txn_coordinator.partition_for(&transactional_id));
        // `AddPartitionsToTxnManager.getTransactionCoordinator`: no topic or no leader yet.
        let Some(coordinator) = self.image.partitions.get(&state).and_then(|p| p.leader) else {
            self.refuse_unverified(from, correlation_id, &request, ErrorCode::CoordinatorNotAvailable, fx);
            return None;
        };
        self.replicas
            .get_mut(&tp)
            .expect("found above")
            .verification_guards
            .insert(producer_id, (producer_epoch, guard));
        let body = Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactional_id,
            producer_id,
            producer_epoch,
            partitions: vec![tp],
            verify_only: !request.transaction_v2,
        });
        let id = self.next_id();
        self.request(now, NodeId::Broker(coordinator), Outstanding::VerifyTxn(id), body, fx);
        self.verifications.insert(id, PendingVerification::Produce { client: from, correlation_id, request, guard });
        None
    }

    /// A version 2 TxnOffsetCommit for the group of `__consumer_offsets` partition `partition`:
    /// add that partition to the producer's transaction first, unless the producer already has a
    /// transaction open there in this epoch. Returns the request if it may go on now.
    pub(super) fn maybe_add_offsets_partition(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        partition: i32,
        request: TxnOffsetCommitRequest,
        fx: &mut Effects,
    ) -> Option<TxnOffsetCommitRequest> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let (producer_id, producer_epoch) = (request.producer_id, request.producer_epoch);
        if !request.transaction_v2
            || self.replicas.get(&tp).is_some_and(|r| r.has_ongoing_transaction(producer_id, producer_epoch))
        {
            return Some(request);
        }
        let state =
            TopicPartition::new(TRANSACTION_STATE_TOPIC, self.txn_coordinator.partition_for(&request.transactional_id));
        let Some(coordinator) = self.image.partitions.get(&state).and_then(|p| p.leader) else {
            let body = Response::TxnOffsetCommit(TxnOffsetCommitResponse { error: ErrorCode::CoordinatorNotAvailable });
            Self::respond(from, correlation_id, body, fx);
            return None;
        };
        let body = Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            transactional_id: request.transactional_id.clone(),
            producer_id,
            producer_epoch,
            partitions: vec![tp],
            verify_only: false,
        });
        let id = self.next_id();
        self.request(now, NodeId::Broker(coordinator), Outstanding::VerifyTxn(id), body, fx);
        self.verifications.insert(id, PendingVerification::TxnOffsetCommit { client: from, correlation_id, request });
        None
    }

    /// The coordinator's answer, or NETWORK_EXCEPTION for none (`AddPartitionsToTxnManager`'s
    /// response handler).
    pub(super) fn on_verified(&mut self, now: SimTime, id: u64, error: ErrorCode, fx: &mut Effects) {
        let Some(pending) = self.verifications.remove(&id) else { return };
        let (client, correlation_id, request, guard) = match pending {
            PendingVerification::Produce { client, correlation_id, request, guard } => {
                (client, correlation_id, request, guard)
            }
            PendingVerification::TxnOffsetCommit { client, correlation_id, request } => {
                return self.on_offsets_partition_added(now, client, correlation_id, request, error, fx);
            }
        };
        let pending = Held { client, correlation_id, request, guard };
        let (producer_id, producer_epoch) = (pending.request.batch.producer_id, pending.request.batch.producer_epoch);
        let error = match error {
            // "Producers expect to handle INVALID_PRODUCER_EPOCH in this scenario."
            ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
            ErrorCode::None => {
                let replica = self.replicas.get(&pending.request.partition);
                let guarded = replica
                    .and_then(|r| r.verification_guards.get(&producer_id))
                    .is_some_and(|&g| g == (producer_epoch, pending.guard));
                // A batch verified together with an earlier one of the same transaction finds the
                // guard gone, cleared by that batch's append, and the transaction open here: the
                // guard is only consulted for a producer with no ongoing transaction
                // (`UnifiedLog.analyzeAndValidateProducerState`: `batch.isTransactional &&
                // !hasOngoingTransaction(..) && batchMissingRequiredVerification(..)`).
                let open = replica.is_some_and(|r| r.has_ongoing_transaction(producer_id, producer_epoch));
                if guarded || open || !replica.is_some_and(|r| r.is_leader()) {
                    // Verified (a replica that lost leadership meanwhile answers NOT_LEADER).
                    return self.append_produce(now, pending.client, pending.correlation_id, pending.request, fx);
                }
                // A marker came between the question and the answer.
                ErrorCode::InvalidTxnState
            }
            other => other,
        };
        // The guard stays: a refusal does not clear the partition's verification state (Kafka's
        // `VerificationStateEntry` goes with a marker or an append, or expires), and other
        // batches of the producer may be waiting on the same guard. Under transaction version 2
        // a CONCURRENT_TRANSACTIONS answer to one of them is common (the previous transaction's
        // markers are still being written); clearing the shared guard then made the next
        // batch's successful addition fail with INVALID_TXN_STATE (transaction-coordinator-
        // failover, seed 1).
        self.refuse_unverified(pending.client, pending.correlation_id, &pending.request, error, fx);
    }

    /// The coordinator's answer to a version 2 TxnOffsetCommit's addition: on NONE the group
    /// coordinator writes the offsets; otherwise the client hears an error it handles
    /// (`CoordinatorPartitionWriter` maps the coordinator's errors as the produce path does, and
    /// `GroupCoordinatorService` turns a retriable one into COORDINATOR_NOT_AVAILABLE).
    fn on_offsets_partition_added(
        &mut self,
        now: SimTime,
        client: NodeId,
        correlation_id: u64,
        request: TxnOffsetCommitRequest,
        error: ErrorCode,
        fx: &mut Effects,
    ) {
        let error = match error {
            ErrorCode::None => {
                return self.route_group_request(
                    now,
                    client,
                    correlation_id,
                    Request::TxnOffsetCommit(request),
                    true,
                    fx,
                )
            }
            ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
            ErrorCode::NetworkException
            | ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress => ErrorCode::CoordinatorNotAvailable,
            other => other,
        };
        fx.note(Note::TxnVerificationFailed {
            partition: TopicPartition::new(OFFSETS_TOPIC, self.offsets_partition(&request.group_id).unwrap_or(-1)),
            transactional_id: request.transactional_id.clone(),
            producer_id: request.producer_id,
            producer_epoch: request.producer_epoch,
            error,
        });
        Self::respond(client, correlation_id, Response::TxnOffsetCommit(TxnOffsetCommitResponse { error }), fx);
    }

    fn refuse_unverified(
        &self,
        client: NodeId,
        correlation_id: u64,
        request: &ProduceRequest,
        error: ErrorCode,
        fx: &mut Effects,
    ) {
        fx.note(Note::TxnVerificationFailed {
            partition: request.partition.clone(),
            transactional_id: request.transactional_id.clone().unwrap_or_default(),
            producer_id: request.batch.producer_id,
            producer_epoch: request.batch.producer_epoch,
            error,
        });
        if request.acks != crate::config::Acks::None {
            let body = Response::Produce(ProduceResponse {
                partition: request.partition.clone(),
                error,
                base_offset: -1,
                log_start_offset: -1,
            });
            Self::respond(client, correlation_id, body, fx);
        }
    }
}
