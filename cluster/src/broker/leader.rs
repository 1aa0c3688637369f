//! The leader's side of replication: appending, serving fetches, moving the high watermark.
//!
//! Only the leader of the current leader epoch takes produce requests (KIP-320 fences requests that
//! name another epoch: FENCED_LEADER_EPOCH if older, UNKNOWN_LEADER_EPOCH if newer). An `acks=all`
//! produce is refused with NOT_ENOUGH_REPLICAS if the ISR is smaller than `min.insync.replicas`
//! *before* appending; once appended it waits in purgatory until the high watermark passes it.
//!
//! Followers fetch from their log end; each fetch tells the leader how far that follower has
//! replicated. The leader moves the high watermark to the smallest log end offset among the
//! in-sync replicas, and asks the controller (AlterPartition) to add a follower that caught up, or
//! to drop one that has lagged longer than `replica.lag.time.max.ms`. Consumers read only below the
//! high watermark; followers read to the log end.
//!
//! A follower that lost its place asks OffsetsForLeaderEpoch: the leader answers with the end
//! offset of the largest epoch it has that is not after the asked one (KIP-101, KIP-279).

use super::purgatory::{DelayedFetch, DelayedProduce};
use super::replica::{PendingIsr, Replica, SequenceCheck};
use super::{Broker, Outstanding};
use crate::config::Acks;
use crate::effects::Effects;
use crate::epoch_cache::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};
use crate::error::ErrorCode;
use crate::fetch_session::{FetchContext, Fetcher, SessionChange};
use crate::node::NodeId;
use crate::note::{IsrChangeReason, Note, TxnBatch};
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};

/// `replica.fetch.response.max.bytes` / `max.partition.fetch.bytes`.
const FETCH_MAX_BYTES: usize = 1024 * 1024;

impl Broker {
    pub(super) fn validate_leader(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: i32,
    ) -> Result<&Replica, ErrorCode> {
        let replica = self.replicas.get(tp).ok_or(ErrorCode::NotLeaderOrFollower)?;
        Self::check_leader(replica, current_leader_epoch)?;
        Ok(replica)
    }

    /// The replica leads, in the epoch the fetcher names (KIP-320: -1 is not checked).
    fn check_leader(replica: &Replica, current_leader_epoch: i32) -> Result<(), ErrorCode> {
        if !replica.is_leader() {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if current_leader_epoch >= 0 {
            if current_leader_epoch < replica.leader_epoch {
                return Err(ErrorCode::FencedLeaderEpoch);
            }
            if current_leader_epoch > replica.leader_epoch {
                return Err(ErrorCode::UnknownLeaderEpoch);
            }
        }
        Ok(())
    }

    pub(super) fn validate_fetch(&self, request: &FetchRequest, p: &FetchPartition) -> Result<&Replica, ErrorCode> {
        let replica = self.replicas.get(&p.partition).ok_or(ErrorCode::NotLeaderOrFollower)?;
        Self::check_fetch(replica, request, p)?;
        Ok(replica)
    }

    fn check_fetch(replica: &Replica, request: &FetchRequest, p: &FetchPartition) -> Result<(), ErrorCode> {
        Self::check_leader(replica, p.current_leader_epoch)?;
        if p.fetch_offset < replica.log.log_start_offset() || p.fetch_offset > replica.log_end_offset() {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        if let Some((follower, _)) = request.replica {
            if !replica.replicas.contains(&follower) {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
        }
        Ok(())
    }

    pub(super) fn on_produce(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        request: ProduceRequest,
        fx: &mut Effects,
    ) {
        if let Some(request) = self.maybe_verify_transaction(now, from, correlation_id, request, fx) {
            self.append_produce(now, from, correlation_id, request, fx);
        }
    }

    /// A produce request's checks and append, once any verification is done.
    pub(super) fn append_produce(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        request: ProduceRequest,
        fx: &mut Effects,
    ) {
        let tp = request.partition.clone();
        let config = self.topic_config(&tp);
        let reply = |error: ErrorCode, base_offset: i64, log_start_offset: i64, fx: &mut Effects| {
            if request.acks != Acks::None {
                let body =
                    Response::Produce(ProduceResponse { partition: tp.clone(), error, base_offset, log_start_offset });
                Self::respond(from, correlation_id, body, fx);
            }
        };
        let min_isr = self.effective_min_isr(&tp);
        let replica = match self.validate_leader(&tp, -1) {
            Ok(r) => r,
            Err(error) => return reply(error, -1, -1, fx),
        };
        // `min.insync.replicas` is checked before appending (`Partition.appendRecordsToLeader`,
        // against `effectiveMinIsr` since 3.7); an acks=1 write ignores it.
        if request.acks == Acks::All && replica.isr.len() < min_isr {
            return reply(ErrorCode::NotEnoughReplicas, -1, replica.log.log_start_offset(), fx);
        }
        // A compacted topic keeps the latest record per key, so a record without one has no
        // place in it: `LogValidator.validateKey` refuses the batch ("Compacted topic cannot
        // accept message without key") with INVALID_RECORD, before the producer-state checks.
        if config.cleanup_policy.compact() && request.batch.records.iter().any(|r| r.key.is_none()) {
            return reply(ErrorCode::InvalidRecord, -1, replica.log.log_start_offset(), fx);
        }
        match replica.check_sequence(&request.batch) {
            // A retry of a batch already in the log: answer with where it went, but an acks=all
            // retry still waits, like the first attempt, until the batch is committed (Kafka
            // completes the delayed produce against the original batch's last offset).
            SequenceCheck::Duplicate(base_offset) => {
                let required_offset = base_offset + request.batch.len();
                if request.acks != Acks::All || replica.high_watermark >= required_offset {
                    return reply(ErrorCode::None, base_offset, replica.log.log_start_offset(), fx);
                }
                let delayed = DelayedProduce {
                    client: from,
                    correlation_id,
                    partition: tp.clone(),
                    leader_epoch: replica.leader_epoch,
                    base_offset,
                    required_offset,
                    marker: None,
                };
                return self.delay_produce(now, delayed, request.timeout_ms, fx);
            }
            SequenceCheck::OutOfOrder { .. } => {
                return reply(ErrorCode::OutOfOrderSequenceNumber, -1, replica.log.log_start_offset(), fx);
            }
            // A zombie's write after its successor's epoch reached this partition (Kafka 2.7+
            // answers INVALID_PRODUCER_EPOCH rather than PRODUCER_FENCED to a produce, KIP-588).
            SequenceCheck::StaleEpoch => {
                return reply(ErrorCode::InvalidProducerEpoch, -1, replica.log.log_start_offset(), fx);
            }
            SequenceCheck::Append => {}
        }
        let replica = self.replicas.get_mut(&tp).expect("validated");
        if request.batch.is_transactional {
            // The transaction is ongoing here now: the guard has done its job.
            replica.verification_guards.remove(&request.batch.producer_id);
        }
        let count = request.batch.len();
        let epoch = replica.leader_epoch;
        let base_offset = replica.log.append_as_leader(request.batch, epoch, &config, now.as_ms());
        let appended = replica.log.read(base_offset, base_offset + 1, 0).remove(0);
        replica.remember_producer_batch(&appended);
        let log_start_offset = replica.log.log_start_offset();
        let transactional = TxnBatch::of(&appended).into_iter().collect();
        fx.note(Note::Appended {
            partition: tp.clone(),
            base_offset,
            count,
            leader_epoch: epoch,
            as_leader: true,
            transactional,
        });
        match request.acks {
            Acks::None => {}
            Acks::Leader => reply(ErrorCode::None, base_offset, log_start_offset, fx),
            Acks::All => {
                let delayed = DelayedProduce {
                    client: from,
                    correlation_id,
                    partition: tp.clone(),
                    leader_epoch: epoch,
                    base_offset,
                    required_offset: base_offset + count,
                    marker: None,
                };
                self.delay_produce(now, delayed, request.timeout_ms, fx);
            }
        }
        self.maybe_advance_hw(now, &tp, fx);
        self.try_complete_delayed_fetches(now, Some(&tp), fx);
    }

    pub(super) fn on_fetch(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        request: FetchRequest,
        fx: &mut Effects,
    ) {
        // `FetchManager.newContext`: an incremental fetch covers every partition of its session.
        let (context, covered) = self.fetch_sessions.new_context(&request, now.as_ms());
        if let FetchContext::SessionError(error) = context {
            // `SessionErrorContext`: answered at once, with no partitions.
            Self::respond(from, correlation_id, Response::Fetch(FetchResponse::session_error(error)), fx);
            return;
        }
        let request = FetchRequest { partitions: covered, forgotten: Vec::new(), ..request };
        if let Some((follower, _)) = request.replica {
            self.record_follower_fetches(now, follower, &request, fx);
        }
        // A fetch that covers no partition (a session closed with the final epoch) is answered
        // at once (`KafkaApis.handleFetchRequest`: nothing interesting).
        if request.max_wait_ms == 0 || request.partitions.is_empty() || self.fetch_can_complete(&request) {
            self.answer_fetch(now, from, correlation_id, &request, &context, fx);
        } else {
            let id = self.next_id();
            fx.set_timer(Timer::DelayedFetchExpiry(id), now.plus_ms(request.max_wait_ms));
            self.delayed_fetches.insert(id, DelayedFetch { client: from, correlation_id, request, context });
        }
    }

    pub(super) fn record_follower_fetches(
        &mut self,
        now: SimTime,
        follower: BrokerId,
        request: &FetchRequest,
        fx: &mut Effects,
    ) {
        for p in &request.partitions {
            let Some(replica) = self.replicas.get_mut(&p.partition) else { continue };
            if Self::check_fetch(replica, request, p).is_err() {
                continue;
            }
            replica.record_follower_fetch(follower, p.fetch_offset, now.as_ms());
            // The cheap part of `maybe_expand_isr` first: a follower already in the ISR (nearly
            // always) needs nothing more.
            if replica.may_join_isr(follower) {
                self.maybe_expand_isr(now, &p.partition, follower, fx);
            }
            self.maybe_advance_hw(now, &p.partition, fx);
        }
    }

    pub(super) fn answer_fetch(
        &mut self,
        now: SimTime,
        to: NodeId,
        correlation_id: u64,
        request: &FetchRequest,
        context: &FetchContext,
        fx: &mut Effects,
    ) {
        // A follower's fetch state was recorded when the fetch arrived; a delayed fetch that
        // completes later does not record it again (`ReplicaManager.readFromLog` passes
        // `updateFetchState = !readFromPurgatory`).
        let mut partitions = Vec::with_capacity(request.partitions.len());
        for p in &request.partitions {
            let answer = match self.validate_fetch(request, p) {
                Err(error) => FetchedPartition {
                    partition: p.partition.clone(),
                    error,
                    high_watermark: -1,
                    log_start_offset: self.replicas.get(&p.partition).map_or(-1, |r| r.log.log_start_offset()),
                    batches: Vec::new(),
                    last_stable_offset: None,
                    aborted_transactions: Vec::new(),
                },
                Ok(replica) => {
                    // Consumers never see past the high watermark, read_committed ones not past
                    // the last stable offset; followers read to the log end.
                    let committed = request.isolation_level == IsolationLevel::ReadCommitted;
                    let limit = Self::fetch_limit(request, replica);
                    let batches = replica.log.read(p.fetch_offset, limit, FETCH_MAX_BYTES);
                    // The aborted transactions among what is returned (`UnifiedLog.read` with
                    // `FetchIsolation.TXN_COMMITTED`: collectAbortedTransactions up to the end of
                    // the fetched data).
                    let upto = batches.last().map_or(p.fetch_offset, |b| b.next_offset());
                    FetchedPartition {
                        partition: p.partition.clone(),
                        error: ErrorCode::None,
                        high_watermark: replica.high_watermark,
                        log_start_offset: replica.log.log_start_offset(),
                        batches,
                        last_stable_offset: committed.then(|| replica.log.last_stable_offset(replica.high_watermark)),
                        aborted_transactions: if committed {
                            replica.log.aborted_transactions(p.fetch_offset, upto)
                        } else {
                            Vec::new()
                        },
                    }
                }
            };
            debug_assert!(answer.batches.iter().all(|b| b.base_offset >= 0));
            partitions.push(answer);
        }
        // A full fetch may open a session; an incremental one answers only what is new.
        let mut changes = Vec::new();
        let privileged = request.replica.is_some();
        let now_ms = now.as_ms();
        let body = match self.fetch_sessions.respond(
            context,
            Fetcher { node: to, privileged },
            &request.partitions,
            partitions,
            now_ms,
            &mut changes,
        ) {
            Ok((session_id, partitions)) => FetchResponse { error: ErrorCode::None, session_id, partitions },
            Err(error) => FetchResponse::session_error(error),
        };
        for change in changes {
            match change {
                SessionChange::Evicted(session) => {
                    let id = session.id();
                    fx.note(Note::FetchSessionEvicted { session_id: id, owner: session.owner(), fetcher: to });
                    // A fetch of the evicted session waiting in purgatory is answered from the
                    // session as it was, as Kafka's context still holds it.
                    for d in self.delayed_fetches.values_mut() {
                        if matches!(d.context, FetchContext::Incremental { id: waiting, .. } if waiting == id) {
                            d.context = FetchContext::Evicted(session.clone());
                        }
                    }
                }
                SessionChange::NotCreated => fx.note(Note::FetchSessionRefused { fetcher: to }),
            }
        }
        Self::respond(to, correlation_id, Response::Fetch(body), fx);
    }

    /// How far a fetch may read: a follower to the log end, a consumer to the high watermark,
    /// a read_committed consumer to the last stable offset.
    pub(super) fn fetch_limit(request: &FetchRequest, replica: &Replica) -> i64 {
        if request.replica.is_some() {
            replica.log_end_offset()
        } else if request.isolation_level == IsolationLevel::ReadCommitted {
            replica.log.last_stable_offset(replica.high_watermark)
        } else {
            replica.high_watermark
        }
    }

    pub(super) fn on_list_offsets(
        &mut self,
        from: NodeId,
        correlation_id: u64,
        request: ListOffsetsRequest,
        fx: &mut Effects,
    ) {
        let partitions = request
            .partitions
            .iter()
            .map(|(tp, spec, epoch)| match self.validate_leader(tp, *epoch) {
                Err(error) => (tp.clone(), error, -1, -1),
                Ok(replica) => {
                    let offset = match spec {
                        OffsetSpec::Earliest => replica.log.log_start_offset(),
                        // read_committed: the last stable offset (`UnifiedLog.fetchOffsetByTimestamp`
                        // with `IsolationLevel.READ_COMMITTED`).
                        OffsetSpec::Latest if request.isolation_level == IsolationLevel::ReadCommitted => {
                            replica.log.last_stable_offset(replica.high_watermark)
                        }
                        OffsetSpec::Latest => replica.high_watermark,
                    };
                    (tp.clone(), ErrorCode::None, offset, replica.leader_epoch)
                }
            })
            .collect();
        Self::respond(from, correlation_id, Response::ListOffsets(ListOffsetsResponse { partitions }), fx);
    }

    pub(super) fn on_offsets_for_leader_epoch(
        &mut self,
        from: NodeId,
        correlation_id: u64,
        request: OffsetsForLeaderEpochRequest,
        fx: &mut Effects,
    ) {
        let partitions = request
            .partitions
            .iter()
            .map(|(tp, current_epoch, asked_epoch)| match self.validate_leader(tp, *current_epoch) {
                Err(error) => EpochEndOffset {
                    partition: tp.clone(),
                    error,
                    leader_epoch: UNDEFINED_EPOCH,
                    end_offset: UNDEFINED_OFFSET,
                },
                Ok(replica) => {
                    let (leader_epoch, end_offset) =
                        replica.log.epoch_cache().end_offset_for(*asked_epoch, replica.log_end_offset());
                    EpochEndOffset { partition: tp.clone(), error: ErrorCode::None, leader_epoch, end_offset }
                }
            })
            .collect();
        let body = Response::OffsetsForLeaderEpoch(OffsetsForLeaderEpochResponse { partitions });
        Self::respond(from, correlation_id, body, fx);
    }

    pub(super) fn maybe_advance_hw(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let lag_max = self.config.replica_lag_time_max_ms;
        // Strict min ISR (KAFKA-15583, 3.7+): `Partition.maybeIncrementLeaderHW` returns early
        // while `isUnderMinIsr`, so nothing becomes committed, or visible to consumers, while
        // fewer than `min.insync.replicas` replicas are in sync. acks=1 writes still append.
        let (config, image) = (&self.config, &self.image);
        let Some(replica) = self.replicas.get_mut(tp) else { return };
        // The high watermark never passes the log end: at the log end there is nothing to do
        // (the common case, on every partition of every fetch).
        if replica.high_watermark >= replica.log_end_offset() {
            return;
        }
        // The effective minimum is capped by the replication factor, so a full ISR needs no look
        // at the topic's config.
        if config.kafka_version.strict_min_isr() && replica.isr.len() < replica.replicas.len() {
            let min_insync = image
                .topic_config(&tp.topic)
                .map_or(config.topic_defaults.min_insync_replicas, |c| c.min_insync_replicas);
            if replica.isr.len() < config.effective_min_isr(min_insync, replica.replicas.len()) {
                return;
            }
        }
        if let Some(hw) = replica.maybe_advance_high_watermark(now.as_ms(), lag_max, |id| image.is_unfenced(id)) {
            fx.note(Note::HighWatermark { partition: tp.clone(), high_watermark: hw, on_leader: true });
            self.try_complete_delayed_produces(tp, fx);
            self.try_complete_delayed_writes(now, tp, fx);
            self.try_complete_delayed_fetches(now, Some(tp), fx);
        }
    }

    pub(super) fn after_isr_change(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        self.maybe_advance_hw(now, tp, fx);
        self.try_complete_delayed_produces(tp, fx);
    }

    pub(super) fn alter_isr(
        &mut self,
        now: SimTime,
        tp: &TopicPartition,
        pending: PendingIsr,
        reason: IsrChangeReason,
        fx: &mut Effects,
    ) {
        let replica = self.replicas.get_mut(tp).expect("caller checked the replica");
        let new_isr = match &pending {
            PendingIsr::Expand(isr) | PendingIsr::Shrink(isr) => isr.clone(),
        };
        let body = Request::AlterPartition(AlterPartitionRequest {
            broker_id: self.id,
            broker_epoch: self.broker_epoch,
            partition: tp.clone(),
            leader_epoch: replica.leader_epoch,
            partition_epoch: replica.partition_epoch,
            new_isr: new_isr.clone(),
        });
        if let Some(state) = replica.leader_state_mut() {
            state.pending_isr = Some(pending);
        }
        fx.note(Note::IsrChangeRequested { partition: tp.clone(), isr: new_isr, reason });
        self.request(now, self.controller, Outstanding::AlterPartition(tp.clone()), body, fx);
    }

    pub(super) fn maybe_shrink_isr(&mut self, now: SimTime, fx: &mut Effects) {
        let lag_max = self.config.replica_lag_time_max_ms;
        let mut shrinks = Vec::new();
        for (tp, replica) in &self.replicas {
            let Some(state) = replica.leader_state() else { continue };
            if state.pending_isr.is_some() {
                continue;
            }
            let lagging = replica.out_of_sync_followers(now.as_ms(), lag_max);
            if let Some(&(follower, ago)) = lagging.first() {
                let new_isr: Vec<BrokerId> =
                    replica.isr.iter().copied().filter(|id| !lagging.iter().any(|(l, _)| l == id)).collect();
                shrinks.push((tp.clone(), new_isr, follower, ago));
            }
        }
        for (tp, new_isr, follower, ago) in shrinks {
            let reason = IsrChangeReason::FollowerLagged { follower, caught_up_ms_ago: ago };
            self.alter_isr(now, &tp, PendingIsr::Shrink(new_isr), reason, fx);
        }
    }

    pub(super) fn maybe_expand_isr(&mut self, now: SimTime, tp: &TopicPartition, follower: BrokerId, fx: &mut Effects) {
        let Some(replica) = self.replicas.get(tp) else { return };
        // KIP-841: only an unfenced broker that is not shutting down may join the ISR
        // (`Partition.isReplicaIsrEligible`).
        if !replica.may_join_isr(follower) || !self.image.is_active(follower) {
            return;
        }
        let mut new_isr = replica.isr.clone();
        new_isr.push(follower);
        self.alter_isr(now, tp, PendingIsr::Expand(new_isr), IsrChangeReason::FollowerCaughtUp { follower }, fx);
    }

    pub(super) fn on_alter_partition_answer(
        &mut self,
        now: SimTime,
        tp: &TopicPartition,
        r: AlterPartitionResponse,
        fx: &mut Effects,
    ) {
        let Some(replica) = self.replicas.get_mut(tp) else { return };
        let Some(state) = replica.leader_state_mut() else { return };
        state.pending_isr = None;
        if r.error.is_none() {
            if r.leader_epoch == replica.leader_epoch && r.partition_epoch >= replica.partition_epoch {
                replica.isr = r.isr;
                replica.partition_epoch = r.partition_epoch;
            }
            self.after_isr_change(now, tp, fx);
        } else {
            fx.note(Note::IsrChangeFailed { partition: tp.clone(), error: r.error });
        }
    }
}
