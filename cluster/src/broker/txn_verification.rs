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

use super::{Broker, Outstanding};
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::time::SimTime;
use crate::topic::TopicPartition;
use crate::txn::TRANSACTION_STATE_TOPIC;

/// A produce request held until its coordinator answers.
#[derive(Clone, Debug)]
pub(super) struct PendingVerification {
    client: NodeId,
    correlation_id: u64,
    request: ProduceRequest,
    guard: u64,
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
        if !self.config.transaction_partition_verification_enable || !request.batch.is_transactional {
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
            verify_only: true,
        });
        let id = self.next_id();
        self.request(now, NodeId::Broker(coordinator), Outstanding::VerifyTxn(id), body, fx);
        self.verifications.insert(id, PendingVerification { client: from, correlation_id, request, guard });
        None
    }

    /// The coordinator's answer, or NETWORK_EXCEPTION for none (`AddPartitionsToTxnManager`'s
    /// response handler).
    pub(super) fn on_verified(&mut self, now: SimTime, id: u64, error: ErrorCode, fx: &mut Effects) {
        let Some(pending) = self.verifications.remove(&id) else { return };
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
        if let Some(replica) = self.replicas.get_mut(&pending.request.partition) {
            if replica.verification_guards.get(&producer_id) == Some(&(producer_epoch, pending.guard)) {
                replica.verification_guards.remove(&producer_id);
            }
        }
        self.refuse_unverified(pending.client, pending.correlation_id, &pending.request, error, fx);
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
