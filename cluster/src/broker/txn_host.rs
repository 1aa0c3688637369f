//! Hosting the transaction coordinator, and writing transaction markers.
//!
//! A `transactional.id`'s coordinator is the leader of the `__transaction_state` partition
//! `abs(javaStringHashCode(transactional.id)) % transaction.state.log.num.partitions`
//! (`TransactionStateManager.partitionFor`). Kafka creates that topic (50 partitions, RF 3,
//! `min.insync.replicas` 2) the first time a client asks FindCoordinator for a transaction
//! coordinator (`KafkaApis.getOrCreateInternalTopic`), so a cluster without transactions never
//! has it. When this broker becomes leader of one of its partitions it loads the transactions
//! stored there and finishes any it finds prepared (`TransactionStateManager.
//! loadTransactionsForTxnTopicPartition`); when it stops leading it forgets them.
//!
//! The coordinator ([`crate::txn::coordinator`]) is pure; this file carries out its effects: its
//! writes go to `__transaction_state` with `acks=all` (refused with NOT_ENOUGH_REPLICAS below
//! `min.insync.replicas`, as `TransactionStateManager.appendTransactionToLog` does through the
//! replica manager) and complete once the high watermark passes them; its markers go as
//! WriteTxnMarkers requests to each partition's leader (`TransactionMarkerChannelManager`, through
//! the network even when the leader is this broker).
//!
//! As a partition leader, a broker appends the marker it is asked to write as a control batch
//! (`ReplicaManager.appendRecords` with `AppendOrigin.COORDINATOR` and `acks=all`), after the
//! checks of `ProducerAppendInfo.appendEndTxnMarker`: a marker from a coordinator older than the
//! last one this partition saw for the producer is TRANSACTION_COORDINATOR_FENCED, one with an
//! epoch older than the producer's is INVALID_PRODUCER_EPOCH.

use super::purgatory::{DelayedProduce, DelayedWrite, WriteCompletion};
use super::{Broker, Outstanding};
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::node::NodeId;
use crate::note::{Note, TxnBatch};
use crate::protocol::*;
use crate::record::{ControlMarker, ControlType, Record, RecordBatch};
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::TopicPartition;
use crate::txn::{
    Reply, TransactionCoordinator, TransactionResult, TxnEffect, TxnTransitMetadata, TRANSACTION_STATE_TOPIC,
};
use std::collections::BTreeSet;

/// The broker's `request.timeout.ms`, which bounds a coordinator's write to
/// `__transaction_state` (`TransactionConfig.requestTimeoutMs`).
const TXN_WRITE_TIMEOUT_MS: u64 = 30_000;
/// How soon the marker channel sends again what failed (`retry.backoff.ms` of its client).
const TXN_MARKER_RETRY_BACKOFF_MS: u64 = 100;

/// Hands out producer ids as for idempotent producers (see `on_init_producer_id`): for an
/// InitProducerId, and for a transaction version 2 EndTxn whose epochs ran out.
fn producer_id_allocator(broker_epoch: i64, next: &mut i64) -> impl FnMut() -> i64 + '_ {
    move || {
        *next += 1;
        broker_epoch.max(0) * 1000 + *next
    }
}

impl Broker {
    /// The transaction coordinator this broker hosts.
    pub fn txn_coordinator(&self) -> &TransactionCoordinator {
        &self.txn_coordinator
    }

    pub(super) fn on_find_txn_coordinator(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        transactional_id: &str,
        fx: &mut Effects,
    ) {
        let (error, coordinator) = if self.image.topics.contains_key(TRANSACTION_STATE_TOPIC) {
            let p = self.txn_coordinator.partition_for(transactional_id);
            let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, p);
            match self.image.partitions.get(&tp).and_then(|p| p.leader) {
                Some(leader) => (ErrorCode::None, Some(leader)),
                None => (ErrorCode::CoordinatorNotAvailable, None),
            }
        } else {
            if Self::internal_topic_request_due(self.txn_topic_requested, now) {
                self.txn_topic_requested = Some(now);
                // TransactionLog's topic configs: compacted, its own min ISR, 100 MiB segments.
                let mut config = self.config.internal_topic_config(self.config.transaction_state_log_segment_bytes);
                config.min_insync_replicas = self.config.transaction_state_log_min_isr;
                let body = Request::CreateTopics(CreateTopicsRequest {
                    name: TRANSACTION_STATE_TOPIC.to_string(),
                    partitions: self.config.transaction_state_log_num_partitions,
                    replication_factor: self.config.transaction_state_log_replication_factor,
                    assignment: Vec::new(),
                    config,
                });
                let correlation = self.next_id();
                fx.send(self.controller, Message::Request { correlation_id: correlation, body });
            }
            (ErrorCode::CoordinatorNotAvailable, None)
        };
        let body = Response::FindCoordinator(FindCoordinatorResponse { error, coordinator });
        Self::respond(from, correlation_id, body, fx);
    }

    /// InitProducerId (with a `transactional.id`), AddPartitionsToTxn, EndTxn.
    pub(super) fn on_txn_request(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        body: Request,
        fx: &mut Effects,
    ) {
        let reply = Reply { client: from, correlation_id };
        let now_ms = now.as_ms() as i64;
        let mut out = Vec::new();
        match body {
            Request::InitProducerIdTransactional(r) => {
                let mut allocate = producer_id_allocator(self.broker_epoch, &mut self.next_producer_id);
                let expected = (r.producer_id >= 0).then_some((r.producer_id, r.producer_epoch));
                self.txn_coordinator.handle_init_producer_id(
                    now_ms,
                    reply,
                    &r.transactional_id,
                    r.transaction_timeout_ms,
                    expected,
                    &mut allocate,
                    &mut out,
                );
            }
            Request::AddPartitionsToTxn(r) if r.verify_only => {
                let partitions: BTreeSet<TopicPartition> = r.partitions.into_iter().collect();
                let error = self.txn_coordinator.verify_partitions(
                    &r.transactional_id,
                    r.producer_id,
                    r.producer_epoch,
                    &partitions,
                );
                let body = Response::AddPartitionsToTxn(AddPartitionsToTxnResponse { error });
                return Self::respond(from, correlation_id, body, fx);
            }
            Request::AddPartitionsToTxn(r) => {
                // From a broker: a partition leader or group coordinator adding a transaction
                // version 2 client's partition (`KafkaApis.handleAddPartitionsToTxnRequest` passes
                // `TransactionVersion.TV_2` for those); from a client: the classic protocol.
                let client_transaction_version = if matches!(from, NodeId::Broker(_)) { 2 } else { 0 };
                let partitions: BTreeSet<TopicPartition> = r.partitions.into_iter().collect();
                self.txn_coordinator.handle_add_partitions(
                    now_ms,
                    reply,
                    &r.transactional_id,
                    r.producer_id,
                    r.producer_epoch,
                    &partitions,
                    client_transaction_version,
                    &mut out,
                );
            }
            Request::AddOffsetsToTxn(r) => {
                // The group's `__consumer_offsets` partition joins the transaction
                // (`TransactionCoordinator.handleAddPartitionsToTransaction` with
                // `groupCoordinator.partitionFor(groupId)`), so the markers reach the offsets.
                let partition = self.offsets_partition(&r.group_id).unwrap_or_else(|| {
                    crate::partitioner::group_coordinator_partition(
                        &r.group_id,
                        self.config.offsets_topic_num_partitions,
                    )
                });
                let partitions = BTreeSet::from([TopicPartition::new(OFFSETS_TOPIC, partition)]);
                self.txn_add_offsets_replies.insert((from, correlation_id));
                self.txn_coordinator.handle_add_partitions(
                    now_ms,
                    reply,
                    &r.transactional_id,
                    r.producer_id,
                    r.producer_epoch,
                    &partitions,
                    0,
                    &mut out,
                );
            }
            Request::EndTxn(r) => {
                let result = if r.committed { TransactionResult::Commit } else { TransactionResult::Abort };
                let mut allocate = producer_id_allocator(self.broker_epoch, &mut self.next_producer_id);
                self.txn_coordinator.handle_end_txn(
                    now_ms,
                    reply,
                    &r.transactional_id,
                    r.producer_id,
                    r.producer_epoch,
                    result,
                    if r.transaction_v2 { 2 } else { 0 },
                    &mut allocate,
                    &mut out,
                );
            }
            _ => unreachable!("only transaction coordinator requests are routed here"),
        }
        self.apply_txn_effects(now, out, fx);
    }

    fn apply_txn_effects(&mut self, now: SimTime, effects: Vec<TxnEffect>, fx: &mut Effects) {
        let mut queue = effects;
        // Each round's effects may lead to more (a write refused at once); a bound catches a loop.
        for _ in 0..64 {
            if queue.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for effect in queue {
                self.apply_txn_effect(now, effect, &mut next, fx);
            }
            queue = next;
        }
        assert!(queue.is_empty(), "broker-{}: transaction coordinator effects did not settle", self.id);
        // Armed once, not moved: a producer retrying every few ms must not keep pushing the
        // markers' retry back (a fuzz seed starved a COMMIT marker that way).
        if self.txn_coordinator.has_retries() && !self.txn_retry_armed {
            self.txn_retry_armed = true;
            fx.set_timer(Timer::TxnMarkerRetry, now.plus_ms(TXN_MARKER_RETRY_BACKOFF_MS));
        }
    }

    fn apply_txn_effect(&mut self, now: SimTime, effect: TxnEffect, next: &mut Vec<TxnEffect>, fx: &mut Effects) {
        match effect {
            TxnEffect::InitProducerId { reply, error, producer_id, producer_epoch } => {
                let body = Response::InitProducerId(InitProducerIdResponse { error, producer_id, producer_epoch });
                Self::respond(reply.client, reply.correlation_id, body, fx);
            }
            TxnEffect::AddPartitionsToTxn { reply, error } => {
                let body = if self.txn_add_offsets_replies.remove(&(reply.client, reply.correlation_id)) {
                    Response::AddOffsetsToTxn(AddOffsetsToTxnResponse { error })
                } else {
                    Response::AddPartitionsToTxn(AddPartitionsToTxnResponse { error })
                };
                Self::respond(reply.client, reply.correlation_id, body, fx);
            }
            TxnEffect::EndTxn { reply, error, producer_id, producer_epoch } => {
                let body = Response::EndTxn(EndTxnResponse { error, producer_id, producer_epoch });
                Self::respond(reply.client, reply.correlation_id, body, fx);
            }
            TxnEffect::StateChanged { metadata, loaded } => fx.note(Note::TxnStateChanged {
                transactional_id: metadata.transactional_id,
                state: metadata.state.to_string(),
                producer_id: metadata.producer_id,
                producer_epoch: metadata.producer_epoch,
                partitions: metadata.topic_partitions.into_iter().collect(),
                loaded,
            }),
            TxnEffect::Append { write, partition, transactional_id, record } => {
                if let Err(error) = self.txn_append(now, write, partition, &transactional_id, &record, fx) {
                    self.txn_coordinator.on_append_done(now.as_ms() as i64, write, error, next);
                }
            }
            TxnEffect::WriteMarker {
                transactional_id,
                partition,
                producer_id,
                producer_epoch,
                coordinator_epoch,
                result,
            } => {
                let leader = self.image.partitions.get(&partition).and_then(|p| p.leader);
                let Some(leader) = leader else {
                    let error = ErrorCode::NotLeaderOrFollower;
                    self.txn_coordinator.on_marker_written(
                        &transactional_id,
                        &partition,
                        coordinator_epoch,
                        error,
                        next,
                    );
                    return;
                };
                let body = Request::WriteTxnMarkers(WriteTxnMarkersRequest {
                    transactional_id: transactional_id.clone(),
                    producer_id,
                    producer_epoch,
                    coordinator_epoch,
                    result: match result {
                        TransactionResult::Commit => ControlType::Commit,
                        TransactionResult::Abort => ControlType::Abort,
                    },
                    partition: partition.clone(),
                });
                let what = Outstanding::WriteTxnMarker { transactional_id, partition, coordinator_epoch };
                self.request(now, NodeId::Broker(leader), what, body, fx);
            }
        }
    }

    /// Append a coordinator record to `__transaction_state` with acks=all, or say why not.
    fn txn_append(
        &mut self,
        now: SimTime,
        write: u64,
        partition: i32,
        transactional_id: &str,
        record: &TxnTransitMetadata,
        fx: &mut Effects,
    ) -> Result<(), ErrorCode> {
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition);
        let config = self.topic_config(&tp);
        let min_isr = self.effective_min_isr(&tp);
        let replica = self.replicas.get_mut(&tp).filter(|r| r.is_leader()).ok_or(ErrorCode::NotLeaderOrFollower)?;
        if replica.isr.len() < min_isr {
            return Err(ErrorCode::NotEnoughReplicas);
        }
        let value = serde_json::to_string(record).expect("transaction records serialize");
        let records = vec![Record { key: Some(transactional_id.to_string()), value: Some(value), headers: Vec::new() }];
        let batch = RecordBatch::new_unassigned(-1, -1, -1, now.as_ms(), records);
        let epoch = replica.leader_epoch;
        let base_offset = replica.log.append_as_leader(batch, epoch, &config, now.as_ms());
        fx.note(Note::Appended {
            partition: tp.clone(),
            base_offset,
            count: 1,
            leader_epoch: epoch,
            as_leader: true,
            transactional: Vec::new(),
        });
        let id = self.next_id();
        let completion = WriteCompletion::Txn(write);
        self.delayed_writes
            .insert(id, DelayedWrite { partition: tp.clone(), required_offset: base_offset + 1, completion });
        fx.set_timer(Timer::CoordinatorWriteExpiry(id), now.plus_ms(TXN_WRITE_TIMEOUT_MS));
        self.maybe_advance_hw(now, &tp, fx);
        self.try_complete_delayed_fetches(now, Some(&tp), fx);
        Ok(())
    }

    /// A `__transaction_state` write completed or failed.
    pub(super) fn on_txn_write_done(&mut self, now: SimTime, write: u64, error: ErrorCode, fx: &mut Effects) {
        let mut out = Vec::new();
        self.txn_coordinator.on_append_done(now.as_ms() as i64, write, error, &mut out);
        self.apply_txn_effects(now, out, fx);
    }

    pub(super) fn on_marker_answer(
        &mut self,
        now: SimTime,
        transactional_id: &str,
        partition: &TopicPartition,
        coordinator_epoch: i32,
        error: ErrorCode,
        fx: &mut Effects,
    ) {
        let mut out = Vec::new();
        self.txn_coordinator.on_marker_written(transactional_id, partition, coordinator_epoch, error, &mut out);
        self.apply_txn_effects(now, out, fx);
    }

    pub(super) fn on_txn_marker_retry(&mut self, now: SimTime, fx: &mut Effects) {
        self.txn_retry_armed = false;
        let mut out = Vec::new();
        self.txn_coordinator.retry(&mut out);
        self.apply_txn_effects(now, out, fx);
    }

    pub(super) fn on_txn_abort_timed_out(&mut self, now: SimTime, fx: &mut Effects) {
        if !self.txn_coordinator.coordinates_any() {
            return;
        }
        let mut out = Vec::new();
        self.txn_coordinator.abort_timed_out_transactions(now.as_ms() as i64, &mut out);
        self.apply_txn_effects(now, out, fx);
        let interval_ms = self.txn_coordinator.config.abort_timed_out_transaction_cleanup_interval_ms;
        fx.set_timer(Timer::TxnAbortTimedOut, now.plus_ms(interval_ms));
    }

    /// Became leader of a `__transaction_state` partition: load it (its coordinator epoch is
    /// the partition's leader epoch) and start the timeout sweep.
    pub(super) fn load_txn_partition(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let replica = &self.replicas[tp];
        let coordinator_epoch = replica.leader_epoch;
        let records: Vec<(String, TxnTransitMetadata)> = replica
            .log
            .batches()
            .flat_map(|b| b.records.iter())
            .filter_map(|r| {
                Some((r.key.clone()?, serde_json::from_str::<TxnTransitMetadata>(r.value.as_deref()?).ok()?))
            })
            .collect();
        let was_coordinating = self.txn_coordinator.coordinates_any();
        let mut out = Vec::new();
        self.txn_coordinator.load(tp.partition, coordinator_epoch, records, now.as_ms() as i64, &mut out);
        self.apply_txn_effects(now, out, fx);
        if !was_coordinating {
            let interval_ms = self.txn_coordinator.config.abort_timed_out_transaction_cleanup_interval_ms;
            fx.set_timer(Timer::TxnAbortTimedOut, now.plus_ms(interval_ms));
        }
    }

    pub(super) fn unload_txn_partition(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let mut out = Vec::new();
        self.txn_coordinator.unload(tp.partition, &mut out);
        self.apply_txn_effects(now, out, fx);
    }

    /// WriteTxnMarkers as the partition's leader (`KafkaApis.handleWriteTxnMarkersRequest`).
    pub(super) fn on_write_txn_markers(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        request: WriteTxnMarkersRequest,
        fx: &mut Effects,
    ) {
        let tp = request.partition.clone();
        let answer = |error: ErrorCode, fx: &mut Effects| {
            let body = Response::WriteTxnMarkers(WriteTxnMarkersResponse { partition: tp.clone(), error });
            Self::respond(from, correlation_id, body, fx);
        };
        let config = self.topic_config(&tp);
        let min_isr = self.effective_min_isr(&tp);
        let replica = match self.validate_leader(&tp, -1) {
            Ok(r) => r,
            Err(error) => return answer(error, fx),
        };
        if replica.isr.len() < min_isr {
            return answer(ErrorCode::NotEnoughReplicas, fx);
        }
        if let Err(error) = replica.check_marker(request.producer_id, request.producer_epoch, request.coordinator_epoch)
        {
            return answer(error, fx);
        }
        let marker = ControlMarker { control_type: request.result, coordinator_epoch: request.coordinator_epoch };
        let batch = RecordBatch::new_marker(request.producer_id, request.producer_epoch, now.as_ms(), marker);
        let replica = self.replicas.get_mut(&tp).expect("validated");
        // A produce verified before this marker must not open a transaction after it.
        replica.verification_guards.remove(&request.producer_id);
        let epoch = replica.leader_epoch;
        let base_offset = replica.log.append_as_leader(batch, epoch, &config, now.as_ms());
        let appended = replica.log.read(base_offset, base_offset + 1, 0).remove(0);
        replica.remember_producer_batch(&appended);
        let transactional = TxnBatch::of(&appended).into_iter().collect();
        fx.note(Note::Appended {
            partition: tp.clone(),
            base_offset,
            count: 1,
            leader_epoch: epoch,
            as_leader: true,
            transactional,
        });
        fx.note(Note::MarkerWritten {
            partition: tp.clone(),
            producer_id: request.producer_id,
            producer_epoch: request.producer_epoch,
            control: request.result,
            offset: base_offset,
        });
        let delayed = DelayedProduce {
            client: from,
            correlation_id,
            partition: tp.clone(),
            leader_epoch: epoch,
            base_offset,
            required_offset: base_offset + 1,
            marker: Some((request.producer_id, request.result)),
        };
        self.delay_produce(now, delayed, TXN_WRITE_TIMEOUT_MS, fx);
        self.maybe_advance_hw(now, &tp, fx);
        self.try_complete_delayed_fetches(now, Some(&tp), fx);
    }
}
