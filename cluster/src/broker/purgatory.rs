//! Purgatory: requests that cannot be answered yet.
//!
//! Kafka parks a request that is waiting for something in a `DelayedOperationPurgatory` and
//! completes it when the thing happens or its timeout fires, whichever comes first:
//! - a fetch with nothing new to return waits up to its `max.wait.ms` (a follower's up to
//!   `replica.fetch.wait.max.ms`) for records to arrive (for a consumer: for the high watermark
//!   to move);
//! - an `acks=all` produce waits until the high watermark passes its records, or its
//!   `request.timeout.ms`; it fails with NOT_LEADER_OR_FOLLOWER if this broker stops leading;
//! - a group coordinator's write to `__consumer_offsets` waits, like an `acks=all` produce, until it
//!   is committed, or `offsets.commit.timeout.ms`.
//!
//! Every event that could complete one (an append, a follower's fetch, an ISR change, a role
//! change) tries the waiting operations of that partition again.

use super::Broker;
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::fetch_session::FetchContext;
use crate::group::coordinator::Completion;
use crate::node::NodeId;
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::TopicPartition;

#[derive(Clone, Debug)]
pub(super) struct DelayedFetch {
    pub(super) client: NodeId,
    pub(super) correlation_id: u64,
    /// Every partition the fetch covers (a session's all, for an incremental fetch).
    pub(super) request: FetchRequest,
    pub(super) context: FetchContext,
}

#[derive(Clone, Debug)]
pub(super) struct DelayedProduce {
    pub(super) client: NodeId,
    pub(super) correlation_id: u64,
    pub(super) partition: TopicPartition,
    pub(super) leader_epoch: i32,
    pub(super) base_offset: i64,
    /// The HW must reach this (the offset after the batch).
    pub(super) required_offset: i64,
    /// A transaction marker (WriteTxnMarkers, appended with acks=all) of this producer id and
    /// type, not a produce.
    pub(super) marker: Option<(i64, crate::record::ControlType)>,
}

/// Who waits for a coordinator's write.
#[derive(Clone, Debug)]
pub(super) enum WriteCompletion {
    Group(Completion),
    /// The transaction coordinator's write with this id.
    Txn(u64),
}

/// A group coordinator's write to `__consumer_offsets`, waiting to be committed.
#[derive(Clone, Debug)]
pub(super) struct DelayedWrite {
    pub(super) partition: TopicPartition,
    pub(super) required_offset: i64,
    pub(super) completion: WriteCompletion,
}

impl Broker {
    /// Park an acks=all produce in purgatory until the high watermark passes it, or its timeout.
    pub(super) fn delay_produce(&mut self, now: SimTime, delayed: DelayedProduce, timeout_ms: u64, fx: &mut Effects) {
        let id = self.next_id();
        self.delayed_produces.insert(id, delayed);
        fx.set_timer(Timer::DelayedProduceExpiry(id), now.plus_ms(timeout_ms));
    }

    pub(super) fn try_complete_delayed_produces(&mut self, tp: &TopicPartition, fx: &mut Effects) {
        let ids: Vec<u64> =
            self.delayed_produces.iter().filter(|(_, d)| &d.partition == tp).map(|(id, _)| *id).collect();
        for id in ids {
            let d = &self.delayed_produces[&id];
            let min_isr = self.effective_min_isr(tp);
            let Some(replica) = self.replicas.get(tp) else { continue };
            // Kafka's `Partition.checkEnoughReplicasReachOffset`.
            let error = if !replica.is_leader() || replica.leader_epoch != d.leader_epoch {
                ErrorCode::NotLeaderOrFollower
            } else if replica.high_watermark >= d.required_offset {
                if replica.maximal_isr().len() >= min_isr {
                    ErrorCode::None
                } else {
                    ErrorCode::NotEnoughReplicasAfterAppend
                }
            } else {
                continue;
            };
            let log_start_offset = replica.log.log_start_offset();
            let d = self.delayed_produces.remove(&id).expect("present");
            fx.cancel_timer(Timer::DelayedProduceExpiry(id));
            let base_offset = if error.is_none() { d.base_offset } else { -1 };
            if let (ErrorCode::None, Some((producer_id, control)), true) =
                (error, d.marker, tp.topic == crate::group::coordinator::OFFSETS_TOPIC)
            {
                // KafkaApis.handleWriteTxnMarkersRequest: once a marker in __consumer_offsets is
                // committed, the group coordinator completes the transaction's offsets.
                let committed = control == crate::record::ControlType::Commit;
                self.coordinator.on_txn_completed(tp.partition, producer_id, committed, fx);
            }
            Self::answer_delayed_produce(d, error, base_offset, log_start_offset, fx);
        }
    }

    pub(super) fn fail_delayed_produces(&mut self, tp: &TopicPartition, error: ErrorCode, fx: &mut Effects) {
        let ids: Vec<u64> =
            self.delayed_produces.iter().filter(|(_, d)| &d.partition == tp).map(|(id, _)| *id).collect();
        for id in ids {
            let d = self.delayed_produces.remove(&id).expect("present");
            fx.cancel_timer(Timer::DelayedProduceExpiry(id));
            Self::answer_delayed_produce(d, error, -1, -1, fx);
        }
    }

    /// Answer a produce (or a marker write) that waited in purgatory.
    pub(super) fn answer_delayed_produce(
        d: DelayedProduce,
        error: ErrorCode,
        base_offset: i64,
        log_start_offset: i64,
        fx: &mut Effects,
    ) {
        let body = if d.marker.is_some() {
            Response::WriteTxnMarkers(WriteTxnMarkersResponse { partition: d.partition, error })
        } else {
            Response::Produce(ProduceResponse { partition: d.partition, error, base_offset, log_start_offset })
        };
        Self::respond(d.client, d.correlation_id, body, fx);
    }

    /// Complete every delayed fetch that now has something to return (restricted to those that
    /// include `tp`, if given).
    pub(super) fn try_complete_delayed_fetches(&mut self, now: SimTime, tp: Option<&TopicPartition>, fx: &mut Effects) {
        let ready: Vec<u64> = self
            .delayed_fetches
            .iter()
            .filter(|(_, d)| match tp {
                None => self.fetch_can_complete(&d.request),
                Some(tp) => {
                    // The partition number first: a fetch names many partitions of one topic, and
                    // comparing the topic's name for each of them was a large share of the run.
                    let named = d
                        .request
                        .partitions
                        .iter()
                        .find(|p| p.partition.partition == tp.partition && p.partition.topic == tp.topic);
                    // The partition that changed usually decides; the others are read only when
                    // it does not (the answer is the same: any partition with data completes it).
                    named.is_some_and(|p| {
                        self.partition_can_complete(&d.request, p) || self.fetch_can_complete(&d.request)
                    })
                }
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let d = self.delayed_fetches.remove(&id).expect("present");
            fx.cancel_timer(Timer::DelayedFetchExpiry(id));
            self.answer_fetch(now, d.client, d.correlation_id, &d.request, &d.context, fx);
        }
    }

    pub(super) fn fetch_can_complete(&self, request: &FetchRequest) -> bool {
        request.partitions.iter().any(|p| self.partition_can_complete(request, p))
    }

    /// The partition has something for the fetch: records below its limit, or an error.
    fn partition_can_complete(&self, request: &FetchRequest, p: &FetchPartition) -> bool {
        match self.validate_fetch(request, p) {
            Err(_) => true,
            Ok(replica) => p.fetch_offset < Self::fetch_limit(request, replica),
        }
    }

    /// A coordinator's write is committed (`None`) or failed: tell the coordinator that made it.
    pub(super) fn on_coordinator_write_done(
        &mut self,
        now: SimTime,
        completion: WriteCompletion,
        error: ErrorCode,
        fx: &mut Effects,
    ) {
        match completion {
            WriteCompletion::Group(completion) => {
                // The group coordinator hears NOT_COORDINATOR for a lost leadership.
                let error = if error == ErrorCode::NotLeaderOrFollower { ErrorCode::NotCoordinator } else { error };
                self.coordinator.on_append_done(now, completion, error, fx)
            }
            WriteCompletion::Txn(write) => self.on_txn_write_done(now, write, error, fx),
        }
    }

    pub(super) fn try_complete_delayed_writes(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let hw = self.replicas.get(tp).map_or(-1, |r| r.high_watermark);
        let done: Vec<u64> = self
            .delayed_writes
            .iter()
            .filter(|(_, w)| &w.partition == tp && hw >= w.required_offset)
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            let w = self.delayed_writes.remove(&id).expect("listed");
            fx.cancel_timer(Timer::CoordinatorWriteExpiry(id));
            self.on_coordinator_write_done(now, w.completion, ErrorCode::None, fx);
        }
    }

    pub(super) fn fail_delayed_writes(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let failed: Vec<u64> =
            self.delayed_writes.iter().filter(|(_, w)| &w.partition == tp).map(|(id, _)| *id).collect();
        for id in failed {
            let w = self.delayed_writes.remove(&id).expect("listed");
            fx.cancel_timer(Timer::CoordinatorWriteExpiry(id));
            self.on_coordinator_write_done(now, w.completion, ErrorCode::NotLeaderOrFollower, fx);
        }
    }
}
