//! A broker's life: start, registration, heartbeats, and following the metadata log.
//!
//! A KRaft broker starts *fenced*. It registers with the controller (BrokerRegistration), which
//! answers with a broker epoch unique to this incarnation, then replicates the cluster metadata log
//! by long-polling the controller, and heartbeats every `broker.heartbeat.interval.ms`. The
//! controller unfences it once it has caught up with that log; a broker that stops heartbeating is
//! fenced again and loses its leaderships.
//!
//! Every partition record in the metadata log is a decision the controller took: who leads, in
//! which leader epoch, with which ISR. The broker applies a whole batch to its image first and then
//! *reconciles* each touched partition with the final state only, becoming leader or follower as
//! the image says (Kafka's `ReplicaManager.applyDelta`), so replaying an old stretch of the log
//! never makes it leader of an epoch that is already over.
//!
//! The same image answers clients' Metadata requests and backs InitProducerId.

use super::replica::{FollowerPhase, FollowerProgress, LeaderState, Replica, Role};
use super::{
    Broker, Outstanding, CONTROLLED_SHUTDOWN_FIRST_RETRY_MS, CONTROLLED_SHUTDOWN_TIMEOUT_MS,
    CONTROLLER_RETRY_BACKOFF_MS, RECONNECT_BACKOFF_MAX_MS,
};
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::log::Log;
use crate::metadata::MetadataRecord;
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::BTreeSet;

/// KRaft's metadata fetch long-poll.
const METADATA_FETCH_MAX_WAIT_MS: u64 = 500;

impl Broker {
    pub(super) fn start(&mut self, now: SimTime, fx: &mut Effects) {
        self.started_at = now;
        self.started = true;
        for replica in self.replicas.values() {
            fx.note(Note::Recovered {
                partition: replica.partition.clone(),
                log_end_offset: replica.log_end_offset(),
                high_watermark: replica.high_watermark,
            });
        }
        self.register(now, fx);
        let interval_ms = self.config.replica_high_watermark_checkpoint_interval_ms;
        fx.set_timer(Timer::HighWatermarkCheckpoint, now.plus_ms(interval_ms));
        fx.set_timer(Timer::RetentionCheck, now.plus_ms(self.config.log_retention_check_interval_ms));
        fx.set_timer(Timer::IsrCheck, now.plus_ms((self.config.replica_lag_time_max_ms / 2).max(1)));
    }

    pub(super) fn register(&mut self, now: SimTime, fx: &mut Effects) {
        if self.has_outstanding(&Outstanding::Registration) {
            return;
        }
        // With a quorum, wait until the observer knows the leader (it registers then).
        if self.observer.as_ref().is_some_and(|o| o.raft.leader().is_none()) {
            return;
        }
        let body = Request::BrokerRegistration(BrokerRegistrationRequest {
            broker_id: self.id,
            incarnation: self.incarnation,
            // Kafka writes a clean-shutdown file only on a controlled shutdown; every way a ksim
            // broker stops (a crash, a power failure) leaves none, so every restart is unclean.
            previous_broker_epoch: -1,
            rack: self.rack.clone(),
        });
        self.request(now, self.controller, Outstanding::Registration, body, fx);
    }

    pub(super) fn send_heartbeat(&mut self, now: SimTime, fx: &mut Effects) {
        if self.broker_epoch < 0 {
            return;
        }
        // A heartbeat still unanswered is superseded: the controller only cares about the latest.
        let stale: Vec<u64> =
            self.outstanding.iter().filter(|(_, (_, w))| *w == Outstanding::Heartbeat).map(|(id, _)| *id).collect();
        for id in stale {
            self.outstanding.remove(&id);
            fx.cancel_timer(Timer::RequestTimeout(id));
        }
        self.heartbeat_awaits_controller = false;
        let body = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
            broker_id: self.id,
            broker_epoch: self.broker_epoch,
            current_metadata_offset: self.image.next_offset,
            want_shut_down: self.shutting_down,
        });
        self.request(now, self.controller, Outstanding::Heartbeat, body, fx);
    }

    /// Registration failed (refused, timed out, connection lost): try again after
    /// `BrokerLifecycleManager.resendExponentialBackoff`, 100 ms doubling per failure up to
    /// `broker.session.timeout.ms` (Kafka adds 2% jitter; ksim keeps it exact).
    pub(super) fn retry_registration_later(&mut self, now: SimTime, fx: &mut Effects) {
        let backoff_ms = (CONTROLLER_RETRY_BACKOFF_MS << self.failed_registrations.min(20))
            .min(self.config.broker_session_timeout_ms.max(CONTROLLER_RETRY_BACKOFF_MS));
        self.failed_registrations += 1;
        fx.set_timer(Timer::ControllerRetry, now.plus_ms(backoff_ms));
    }

    /// A heartbeat got no answer. Kafka's `BrokerLifecycleManager` always has one next
    /// communication scheduled: after a timeout it heartbeats again at once
    /// (`BrokerHeartbeatResponseHandler.onTimeout` → `scheduleNextCommunicationImmediately`).
    /// A lost connection or NOT_CONTROLLER never reaches it: the controller channel
    /// (`NodeToControllerRequestThread.handleResponse`) forgets the controller, puts the request
    /// back at the head of its queue and sends it to the next controller it learns of, retrying a
    /// controller that is gone after the reconnect backoff (`reconnect.backoff.ms` doubling to
    /// `reconnect.backoff.max.ms`, 1 s). So a broker whose active controller died heartbeats the
    /// new one as soon as its observer knows it, not after an ever longer backoff: before this,
    /// a broker could back off past its fresh session on the new controller and be fenced for it.
    /// Without a retry at all, a heartbeat whose answer was lost (the broker paused with it in
    /// flight) ended the broker's heartbeats for good.
    pub(super) fn heartbeat_failed(&mut self, now: SimTime, timed_out: bool, fx: &mut Effects) {
        let wait_ms = if timed_out {
            0
        } else {
            let backoff_ms = (CONTROLLER_RETRY_BACKOFF_MS << self.failed_registrations.min(20))
                .min(RECONNECT_BACKOFF_MAX_MS.max(CONTROLLER_RETRY_BACKOFF_MS));
            self.failed_registrations += 1;
            self.heartbeat_awaits_controller = true;
            backoff_ms
        };
        fx.set_timer(Timer::BrokerHeartbeat, now.plus_ms(wait_ms));
    }

    /// The observer learned of a new active controller: a heartbeat waiting in the controller
    /// channel goes to it now.
    pub(super) fn on_new_controller(&mut self, now: SimTime, fx: &mut Effects) {
        if self.heartbeat_awaits_controller && self.broker_epoch >= 0 {
            fx.cancel_timer(Timer::BrokerHeartbeat);
            self.send_heartbeat(now, fx);
        }
    }

    /// Asked to stop (`BrokerServer.shutdown`). With `controlled.shutdown.enable` and a running
    /// (registered, unfenced) broker, enter `PENDING_CONTROLLED_SHUTDOWN`: heartbeat at once with
    /// `want_shut_down`, and stop only when the controller answers `should_shut_down` (it has
    /// moved the leaderships away) or after five minutes. Otherwise stop now
    /// (`BrokerLifecycleManager.BeginControlledShutdownEvent`: "Skipping controlled shutdown").
    pub(super) fn begin_shutdown(&mut self, now: SimTime, fx: &mut Effects) {
        if self.shutting_down {
            return;
        }
        if !self.config.controlled_shutdown_enable || self.broker_epoch < 0 || self.fenced {
            fx.exit();
            return;
        }
        self.shutting_down = true;
        fx.note(Note::ShutdownRequested);
        fx.set_timer(Timer::ControlledShutdownTimeout, now.plus_ms(CONTROLLED_SHUTDOWN_TIMEOUT_MS));
        self.send_heartbeat(now, fx);
    }

    /// The controller's answer to a heartbeat sent in controlled shutdown
    /// (`BrokerLifecycleManager.BrokerHeartbeatResponseEvent`, `PENDING_CONTROLLED_SHUTDOWN`).
    pub(super) fn on_shutdown_answer(&mut self, now: SimTime, should_shut_down: bool, fx: &mut Effects) {
        if should_shut_down {
            fx.exit();
            return;
        }
        let wait_ms = if self.got_shutdown_response {
            self.config.broker_heartbeat_interval_ms
        } else {
            CONTROLLED_SHUTDOWN_FIRST_RETRY_MS
        };
        self.got_shutdown_response = true;
        fx.set_timer(Timer::BrokerHeartbeat, now.plus_ms(wait_ms));
    }

    pub(super) fn fetch_metadata(&mut self, now: SimTime, fx: &mut Effects) {
        // With a quorum the observer replicates the metadata log (see `observer`).
        if self.broker_epoch < 0 || self.observer.is_some() || self.has_outstanding(&Outstanding::MetadataFetch) {
            return;
        }
        let body = Request::MetadataFetch(MetadataFetchRequest {
            broker_id: self.id,
            fetch_offset: self.image.next_offset,
            max_wait_ms: METADATA_FETCH_MAX_WAIT_MS,
        });
        self.request(now, self.controller, Outstanding::MetadataFetch, body, fx);
    }

    pub(super) fn on_metadata(&mut self, now: SimTime, response: MetadataFetchResponse, fx: &mut Effects) {
        if response.base_offset != self.image.next_offset {
            // A stale answer to an earlier fetch; the next fetch asks from the right place.
            return;
        }
        let mut touched = BTreeSet::new();
        for record in &response.records {
            self.image.apply(record);
            match record {
                MetadataRecord::Partition { partition, .. } => {
                    touched.insert(partition.clone());
                }
                MetadataRecord::FenceBroker { broker_id, .. } | MetadataRecord::UnfenceBroker { broker_id, .. }
                    if *broker_id == self.id =>
                {
                    self.fenced = matches!(record, MetadataRecord::FenceBroker { .. });
                }
                _ => {}
            }
        }
        // Act only on the final state: replaying an old log must not make us leader of old epochs.
        for tp in touched {
            self.reconcile(now, &tp, fx);
        }
    }

    /// Bring one partition in line with the metadata image.
    pub(super) fn reconcile(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let Some(p) = self.image.partitions.get(tp).cloned() else { return };
        if !p.replicas.contains(&self.id) {
            return;
        }
        let replica =
            self.replicas.entry(tp.clone()).or_insert_with(|| Replica::new(tp.clone(), Log::new(now.as_ms()), 0));
        replica.replicas = p.replicas.clone();
        if p.leader == Some(self.id) {
            if replica.is_leader() && replica.leader_epoch == p.leader_epoch {
                if p.partition_epoch > replica.partition_epoch {
                    replica.isr = p.isr.clone();
                    replica.partition_epoch = p.partition_epoch;
                    if let Some(state) = replica.leader_state_mut() {
                        state.pending_isr = None;
                    }
                    self.after_isr_change(now, tp, fx);
                }
            } else if p.leader_epoch >= replica.leader_epoch {
                self.become_leader(now, tp, p.leader_epoch, p.partition_epoch, p.isr.clone(), fx);
            }
        } else if p.leader_epoch > replica.leader_epoch || replica.is_leader() || replica.role == Role::Offline {
            self.become_follower(now, tp, p.leader, p.leader_epoch, p.partition_epoch, p.isr.clone(), fx);
        } else {
            replica.isr = p.isr.clone();
            replica.partition_epoch = p.partition_epoch;
        }
    }

    pub(super) fn become_leader(
        &mut self,
        now: SimTime,
        tp: &TopicPartition,
        epoch: i32,
        partition_epoch: i32,
        isr: Vec<BrokerId>,
        fx: &mut Effects,
    ) {
        let me = self.id;
        let replica = self.replicas.get_mut(tp).expect("reconcile created the replica");
        replica.leader_epoch = epoch;
        replica.partition_epoch = partition_epoch;
        replica.isr = isr;
        replica.log.assign_epoch_start(epoch);
        let followers = replica
            .replicas
            .iter()
            .filter(|id| **id != me)
            .map(|id| {
                let caught_up = if replica.isr.contains(id) { now.as_ms() } else { 0 };
                (
                    *id,
                    FollowerProgress {
                        log_end_offset: -1,
                        last_caught_up_ms: caught_up,
                        last_fetch_leader_log_end: -1,
                        last_fetch_ms: 0,
                    },
                )
            })
            .collect();
        replica.role =
            Role::Leader(LeaderState { epoch_start_offset: replica.log_end_offset(), followers, pending_isr: None });
        if tp.topic == OFFSETS_TOPIC {
            // Leading a __consumer_offsets partition makes this broker coordinator of its groups.
            self.coordinator.load_batches(tp.partition, replica.log.batches(), now, fx);
        }
        if tp.topic == crate::txn::TRANSACTION_STATE_TOPIC {
            self.load_txn_partition(now, tp, fx);
        }
        let replica = self.replicas.get_mut(tp).expect("present");
        fx.note(Note::BecameLeader {
            partition: tp.clone(),
            leader_epoch: epoch,
            log_end_offset: replica.log_end_offset(),
            high_watermark: replica.high_watermark,
        });
        self.maybe_advance_hw(now, tp, fx);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn become_follower(
        &mut self,
        now: SimTime,
        tp: &TopicPartition,
        leader: Option<BrokerId>,
        epoch: i32,
        partition_epoch: i32,
        isr: Vec<BrokerId>,
        fx: &mut Effects,
    ) {
        let replica = self.replicas.get_mut(tp).expect("reconcile created the replica");
        let was_leader = replica.is_leader();
        replica.leader_epoch = epoch;
        replica.partition_epoch = partition_epoch;
        replica.isr = isr;
        replica.role = Role::Follower { leader, phase: FollowerPhase::Truncating };
        fx.note(Note::BecameFollower { partition: tp.clone(), leader, leader_epoch: epoch });
        if was_leader {
            self.fail_delayed_produces(tp, ErrorCode::NotLeaderOrFollower, fx);
            if tp.topic == OFFSETS_TOPIC {
                self.fail_delayed_writes(now, tp, fx);
                self.coordinator.unload(tp.partition, fx);
            }
            if tp.topic == crate::txn::TRANSACTION_STATE_TOPIC {
                self.fail_delayed_writes(now, tp, fx);
                self.unload_txn_partition(now, tp, fx);
            }
        }
        self.try_complete_delayed_fetches(now, Some(tp), fx);
    }

    pub(super) fn on_metadata_request(
        &mut self,
        from: NodeId,
        correlation_id: u64,
        request: MetadataRequest,
        fx: &mut Effects,
    ) {
        let names: Vec<String> = if request.topics.is_empty() {
            self.image.topics.keys().filter(|t| !t.starts_with("__")).cloned().collect()
        } else {
            request.topics.clone()
        };
        let topics = names
            .into_iter()
            .map(|name| match self.image.topics.get(&name) {
                None => TopicMetadata { name, error: ErrorCode::UnknownTopicOrPartition, partitions: Vec::new() },
                Some(topic) => {
                    let partitions = (0..topic.partitions)
                        .filter_map(|i| {
                            let p = self.image.partitions.get(&TopicPartition::new(name.clone(), i))?;
                            Some(PartitionMetadata {
                                partition: i,
                                leader: p.leader,
                                leader_epoch: p.leader_epoch,
                                replicas: p.replicas.clone(),
                                isr: p.isr.clone(),
                            })
                        })
                        .collect();
                    TopicMetadata { name, error: ErrorCode::None, partitions }
                }
            })
            .collect();
        let body = Response::Metadata(MetadataResponse { brokers: self.image.live_brokers(), topics });
        Self::respond(from, correlation_id, body, fx);
    }

    pub(super) fn on_init_producer_id(&mut self, from: NodeId, correlation_id: u64, fx: &mut Effects) {
        // Kafka brokers hand out ids from blocks the controller allocates; a broker epoch is unique
        // per registration, so `epoch * 1000 + n` is unique across the cluster's history.
        let (error, producer_id) = if self.broker_epoch < 0 {
            (ErrorCode::CoordinatorNotAvailable, -1)
        } else {
            self.next_producer_id += 1;
            (ErrorCode::None, self.broker_epoch * 1000 + self.next_producer_id)
        };
        let body = Response::InitProducerId(InitProducerIdResponse { error, producer_id, producer_epoch: 0 });
        Self::respond(from, correlation_id, body, fx);
    }
}
