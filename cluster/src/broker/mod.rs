//! A Kafka broker (KRaft mode).
//!
//! On start, a broker recovers its partitions from disk, registers with the controller, and
//! replicates the cluster metadata log from it. It stays *fenced* (no leadership) until it has
//! caught up with that log; then it heartbeats every `broker.heartbeat.interval.ms` to stay alive.
//! For every partition the metadata names it a replica of, it acts on what the metadata says:
//! leader for the current leader epoch, or follower of the current leader (see [`replica`]).
//!
//! Requests that cannot be answered at once wait in *purgatory*: a follower's fetch with no new
//! data waits up to `replica.fetch.wait.max.ms`, an `acks=all` produce waits until the high
//! watermark passes its records or its timeout expires.
//!
//! What survives a crash is [`BrokerDisk`]: the logs (including records still only in the page
//! cache, which a process crash does not lose) and the high-watermark checkpoint. A power failure
//! loses whatever was never flushed ([`BrokerDisk::lose_unflushed`]).

pub mod replica;

use crate::group::coordinator::{Append, Completion, CoordinatorConfig, GroupCoordinator, OFFSETS_TOPIC};
use crate::partitioner::group_coordinator_partition;

use crate::config::{Acks, BrokerConfig, TopicConfig};
use crate::effects::{Effects, Input, StateMachine};
use crate::epoch_cache::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};
use crate::error::ErrorCode;
use crate::log::{Log, TruncateReason};
use crate::metadata::{MetadataImage, MetadataRecord};
use crate::node::NodeId;
use crate::note::{IsrChangeReason, Note};
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use replica::{FollowerPhase, FollowerProgress, LeaderState, PendingIsr, Replica, Role, SequenceCheck};
use std::collections::{BTreeMap, BTreeSet};

/// `replica.socket.timeout.ms`: how long a follower waits for a fetch response from its leader.
const REPLICA_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// `controller.quorum.request.timeout.ms`: how long a broker waits for the controller.
const CONTROLLER_REQUEST_TIMEOUT_MS: u64 = 2_000;
/// How long to wait before asking the controller again after a failure.
const CONTROLLER_RETRY_BACKOFF_MS: u64 = 100;
/// KRaft's metadata fetch long-poll.
const METADATA_FETCH_MAX_WAIT_MS: u64 = 500;
/// `replica.fetch.response.max.bytes` / `max.partition.fetch.bytes`.
const FETCH_MAX_BYTES: usize = 1024 * 1024;

/// What a broker's disk holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerDisk {
    pub logs: BTreeMap<TopicPartition, Log>,
    /// `replication-offset-checkpoint`: the high watermark of every partition, as last written.
    pub high_watermark_checkpoints: BTreeMap<TopicPartition, i64>,
}

impl BrokerDisk {
    /// A power failure: every log loses what never reached the disk. Returns, per partition, the
    /// offset it was cut back to and how many records went.
    pub fn lose_unflushed(&mut self) -> Vec<(TopicPartition, i64, i64)> {
        let mut lost = Vec::new();
        for (tp, log) in &mut self.logs {
            let removed = log.lose_unflushed();
            if removed > 0 {
                lost.push((tp.clone(), log.log_end_offset(), removed));
            }
        }
        lost
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outstanding {
    Registration,
    Heartbeat,
    MetadataFetch,
    AlterPartition(TopicPartition),
    /// A follower's fetch, with the leader epoch each partition was fetched at.
    Fetch {
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
    },
    EpochQuery {
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
    },
}

#[derive(Clone, Debug, Default)]
struct Fetcher {
    in_flight: Option<u64>,
    backoff_until: SimTime,
}

#[derive(Clone, Debug)]
struct DelayedFetch {
    client: NodeId,
    correlation_id: u64,
    request: FetchRequest,
}

#[derive(Clone, Debug)]
struct DelayedProduce {
    client: NodeId,
    correlation_id: u64,
    partition: TopicPartition,
    leader_epoch: i32,
    base_offset: i64,
    /// The HW must reach this (the offset after the batch).
    required_offset: i64,
}

/// A group coordinator's write to `__consumer_offsets`, waiting to be committed.
#[derive(Clone, Debug)]
struct DelayedWrite {
    partition: TopicPartition,
    required_offset: i64,
    completion: Completion,
}

/// `offsets.commit.timeout.ms`.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

pub struct Broker {
    id: BrokerId,
    config: BrokerConfig,
    rack: Option<String>,
    controller: NodeId,
    incarnation: u64,
    replicas: BTreeMap<TopicPartition, Replica>,
    // ---- volatile: gone with the process ----
    started: bool,
    broker_epoch: i64,
    fenced: bool,
    image: MetadataImage,
    outstanding: BTreeMap<u64, (NodeId, Outstanding)>,
    fetchers: BTreeMap<BrokerId, Fetcher>,
    delayed_fetches: BTreeMap<u64, DelayedFetch>,
    delayed_produces: BTreeMap<u64, DelayedProduce>,
    delayed_writes: BTreeMap<u64, DelayedWrite>,
    coordinator: GroupCoordinator,
    offsets_topic_requested: bool,
    next_id: u64,
    next_producer_id: i64,
}

impl Broker {
    /// A broker process about to start on `disk`. `incarnation` must differ between restarts.
    pub fn new(
        id: BrokerId,
        config: BrokerConfig,
        rack: Option<String>,
        controller: NodeId,
        incarnation: u64,
        disk: BrokerDisk,
    ) -> Self {
        let coordinator_config =
            CoordinatorConfig { initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms };
        let mut replicas = BTreeMap::new();
        for (tp, log) in disk.logs {
            let checkpoint = disk.high_watermark_checkpoints.get(&tp).copied().unwrap_or(0);
            replicas.insert(tp.clone(), Replica::new(tp, log, checkpoint));
        }
        Broker {
            id,
            config,
            rack,
            controller,
            incarnation,
            replicas,
            started: false,
            broker_epoch: -1,
            fenced: true,
            image: MetadataImage::default(),
            outstanding: BTreeMap::new(),
            fetchers: BTreeMap::new(),
            delayed_fetches: BTreeMap::new(),
            delayed_produces: BTreeMap::new(),
            delayed_writes: BTreeMap::new(),
            coordinator: GroupCoordinator::new(coordinator_config),
            offsets_topic_requested: false,
            next_id: 1,
            next_producer_id: 0,
        }
    }

    pub fn id(&self) -> BrokerId {
        self.id
    }

    /// What survives this process: its logs and checkpoints.
    pub fn into_disk(self) -> BrokerDisk {
        let mut disk = BrokerDisk::default();
        for (tp, replica) in self.replicas {
            disk.high_watermark_checkpoints.insert(tp.clone(), replica.checkpointed_high_watermark);
            disk.logs.insert(tp, replica.log);
        }
        disk
    }

    pub fn replica(&self, tp: &TopicPartition) -> Option<&Replica> {
        self.replicas.get(tp)
    }

    pub fn replicas(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.values()
    }

    /// The state and generation of a group this broker coordinates.
    pub fn group_state(&self, group: &str) -> Option<(crate::group::coordinator::GroupState, i32)> {
        self.coordinator.group_state(group)
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    pub fn metadata(&self) -> &MetadataImage {
        &self.image
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn topic_config(&self, tp: &TopicPartition) -> TopicConfig {
        self.image.topic_config(&tp.topic).cloned().unwrap_or_else(|| self.config.topic_defaults.clone())
    }

    fn request(&mut self, now: SimTime, to: NodeId, what: Outstanding, body: Request, fx: &mut Effects) -> u64 {
        let correlation_id = self.next_id();
        let timeout_ms = if matches!(to, NodeId::Controller(_)) {
            CONTROLLER_REQUEST_TIMEOUT_MS
        } else {
            REPLICA_REQUEST_TIMEOUT_MS
        };
        self.outstanding.insert(correlation_id, (to, what));
        fx.set_timer(Timer::RequestTimeout(correlation_id), now.plus_ms(timeout_ms));
        fx.send(to, Message::Request { correlation_id, body });
        correlation_id
    }

    fn respond(to: NodeId, correlation_id: u64, body: Response, fx: &mut Effects) {
        fx.send(to, Message::Response { correlation_id, body });
    }

    fn has_outstanding(&self, what: &Outstanding) -> bool {
        self.outstanding.values().any(|(_, w)| w == what)
    }

    // ---- lifecycle and the controller ----------------------------------------------------------

    fn start(&mut self, now: SimTime, fx: &mut Effects) {
        self.started = true;
        for replica in self.replicas.values() {
            fx.note(Note::Recovered {
                partition: replica.partition.clone(),
                log_end_offset: replica.log_end_offset(),
                high_watermark: replica.high_watermark,
            });
        }
        self.register(now, fx);
        fx.set_timer(Timer::OsWriteback, now.plus_ms(self.config.os_writeback_interval_ms));
        fx.set_timer(Timer::RetentionCheck, now.plus_ms(self.config.log_retention_check_interval_ms));
        fx.set_timer(Timer::IsrCheck, now.plus_ms((self.config.replica_lag_time_max_ms / 2).max(1)));
    }

    fn register(&mut self, now: SimTime, fx: &mut Effects) {
        if self.has_outstanding(&Outstanding::Registration) {
            return;
        }
        let body = Request::BrokerRegistration(BrokerRegistrationRequest {
            broker_id: self.id,
            incarnation: self.incarnation,
            rack: self.rack.clone(),
        });
        self.request(now, self.controller, Outstanding::Registration, body, fx);
    }

    fn send_heartbeat(&mut self, now: SimTime, fx: &mut Effects) {
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
        let body = Request::BrokerHeartbeat(BrokerHeartbeatRequest {
            broker_id: self.id,
            broker_epoch: self.broker_epoch,
            current_metadata_offset: self.image.next_offset,
        });
        self.request(now, self.controller, Outstanding::Heartbeat, body, fx);
    }

    fn fetch_metadata(&mut self, now: SimTime, fx: &mut Effects) {
        if self.broker_epoch < 0 || self.has_outstanding(&Outstanding::MetadataFetch) {
            return;
        }
        let body = Request::MetadataFetch(MetadataFetchRequest {
            broker_id: self.id,
            fetch_offset: self.image.next_offset,
            max_wait_ms: METADATA_FETCH_MAX_WAIT_MS,
        });
        self.request(now, self.controller, Outstanding::MetadataFetch, body, fx);
    }

    fn on_metadata(&mut self, now: SimTime, response: MetadataFetchResponse, fx: &mut Effects) {
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
    fn reconcile(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
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

    fn become_leader(
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
            let records: Vec<crate::record::Record> =
                replica.log.batches().flat_map(|b| b.records.iter().cloned()).collect();
            self.coordinator.load(tp.partition, records.into_iter(), now, fx);
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
    fn become_follower(
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
        }
        self.try_complete_delayed_fetches(now, Some(tp), fx);
    }

    // ---- high watermark, ISR, purgatory ---------------------------------------------------------

    fn maybe_advance_hw(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let lag_max = self.config.replica_lag_time_max_ms;
        let image = &self.image;
        let Some(replica) = self.replicas.get_mut(tp) else { return };
        if let Some(hw) = replica.maybe_advance_high_watermark(now.as_ms(), lag_max, |id| image.is_unfenced(id)) {
            fx.note(Note::HighWatermark { partition: tp.clone(), high_watermark: hw, on_leader: true });
            self.try_complete_delayed_produces(tp, fx);
            self.try_complete_delayed_writes(now, tp, fx);
            self.try_complete_delayed_fetches(now, Some(tp), fx);
        }
    }

    fn after_isr_change(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        self.maybe_advance_hw(now, tp, fx);
        self.try_complete_delayed_produces(tp, fx);
    }

    fn alter_isr(
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

    fn maybe_shrink_isr(&mut self, now: SimTime, fx: &mut Effects) {
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

    fn maybe_expand_isr(&mut self, now: SimTime, tp: &TopicPartition, follower: BrokerId, fx: &mut Effects) {
        let Some(replica) = self.replicas.get(tp) else { return };
        // KIP-841: only an unfenced broker may join the ISR.
        if !replica.may_join_isr(follower) || !self.image.is_unfenced(follower) {
            return;
        }
        let mut new_isr = replica.isr.clone();
        new_isr.push(follower);
        self.alter_isr(now, tp, PendingIsr::Expand(new_isr), IsrChangeReason::FollowerCaughtUp { follower }, fx);
    }

    fn try_complete_delayed_produces(&mut self, tp: &TopicPartition, fx: &mut Effects) {
        let ids: Vec<u64> =
            self.delayed_produces.iter().filter(|(_, d)| &d.partition == tp).map(|(id, _)| *id).collect();
        for id in ids {
            let d = &self.delayed_produces[&id];
            let Some(replica) = self.replicas.get(tp) else { continue };
            let error = if !replica.is_leader() || replica.leader_epoch != d.leader_epoch {
                ErrorCode::NotLeaderOrFollower
            } else if replica.high_watermark >= d.required_offset {
                let min_isr = self.image.topic_config(&tp.topic).map_or(1, |c| c.min_insync_replicas);
                if replica.maximal_isr().len() >= min_isr {
                    ErrorCode::None
                } else {
                    ErrorCode::NotEnoughReplicasAfterAppend
                }
            } else {
                continue;
            };
            let d = self.delayed_produces.remove(&id).expect("present");
            fx.cancel_timer(Timer::DelayedProduceExpiry(id));
            let base_offset = if error.is_none() { d.base_offset } else { -1 };
            let log_start_offset = replica.log.log_start_offset();
            let body =
                Response::Produce(ProduceResponse { partition: d.partition, error, base_offset, log_start_offset });
            Self::respond(d.client, d.correlation_id, body, fx);
        }
    }

    fn try_complete_delayed_writes(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
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
            self.coordinator.on_append_done(now, w.completion, ErrorCode::None, fx);
        }
    }

    fn fail_delayed_writes(&mut self, now: SimTime, tp: &TopicPartition, fx: &mut Effects) {
        let failed: Vec<u64> =
            self.delayed_writes.iter().filter(|(_, w)| &w.partition == tp).map(|(id, _)| *id).collect();
        for id in failed {
            let w = self.delayed_writes.remove(&id).expect("listed");
            fx.cancel_timer(Timer::CoordinatorWriteExpiry(id));
            self.coordinator.on_append_done(now, w.completion, ErrorCode::NotCoordinator, fx);
        }
    }

    /// Append a coordinator's records to `__consumer_offsets` and wait for them to commit.
    fn coordinator_append(&mut self, now: SimTime, append: Append, fx: &mut Effects) {
        let tp = TopicPartition::new(OFFSETS_TOPIC, append.partition);
        let config = self.topic_config(&tp);
        let Some(replica) = self.replicas.get_mut(&tp).filter(|r| r.is_leader()) else {
            self.coordinator.on_append_done(now, append.completion, ErrorCode::NotCoordinator, fx);
            return;
        };
        let epoch = replica.leader_epoch;
        let count = append.records.len() as i64;
        let batch = crate::record::RecordBatch::new_unassigned(-1, -1, -1, now.as_ms(), append.records);
        let base_offset = replica.log.append_as_leader(batch, epoch, &config, now.as_ms());
        fx.note(Note::Appended { partition: tp.clone(), base_offset, count, leader_epoch: epoch, as_leader: true });
        let id = self.next_id();
        self.delayed_writes.insert(
            id,
            DelayedWrite { partition: tp.clone(), required_offset: base_offset + count, completion: append.completion },
        );
        fx.set_timer(Timer::CoordinatorWriteExpiry(id), now.plus_ms(OFFSETS_COMMIT_TIMEOUT_MS));
        self.maybe_advance_hw(now, &tp, fx);
        self.try_complete_delayed_fetches(now, Some(&tp), fx);
    }

    /// The `__consumer_offsets` partition of a group, if the topic exists.
    fn offsets_partition(&self, group: &str) -> Option<i32> {
        let partitions = self.image.topics.get(OFFSETS_TOPIC)?.partitions;
        Some(group_coordinator_partition(group, partitions))
    }

    fn on_find_coordinator(&mut self, now: SimTime, from: NodeId, correlation_id: u64, group: &str, fx: &mut Effects) {
        let (error, coordinator) = match self.offsets_partition(group) {
            None => {
                // Kafka creates __consumer_offsets the first time a client looks for a coordinator.
                if !self.offsets_topic_requested {
                    self.offsets_topic_requested = true;
                    let mut config = self.config.topic_defaults.clone();
                    config.segment_bytes = 100 * 1024 * 1024;
                    let body = Request::CreateTopics(CreateTopicsRequest {
                        name: OFFSETS_TOPIC.to_string(),
                        partitions: self.config.offsets_topic_num_partitions,
                        replication_factor: self.config.offsets_topic_replication_factor,
                        assignment: Vec::new(),
                        config,
                    });
                    let correlation = self.next_id();
                    fx.send(self.controller, Message::Request { correlation_id: correlation, body });
                }
                (ErrorCode::CoordinatorNotAvailable, None)
            }
            Some(p) => match self.image.partitions.get(&TopicPartition::new(OFFSETS_TOPIC, p)).and_then(|p| p.leader) {
                Some(leader) => (ErrorCode::None, Some(leader)),
                None => (ErrorCode::CoordinatorNotAvailable, None),
            },
        };
        let _ = now;
        Self::respond(
            from,
            correlation_id,
            Response::FindCoordinator(FindCoordinatorResponse { error, coordinator }),
            fx,
        );
    }

    /// Route a group request to the coordinator if this broker coordinates the group.
    fn on_group_request(&mut self, now: SimTime, from: NodeId, correlation_id: u64, body: Request, fx: &mut Effects) {
        let group = match &body {
            Request::JoinGroup(r) => r.group_id.clone(),
            Request::SyncGroup(r) => r.group_id.clone(),
            Request::Heartbeat(r) => r.group_id.clone(),
            Request::LeaveGroup(r) => r.group_id.clone(),
            Request::OffsetCommit(r) => r.group_id.clone(),
            Request::OffsetFetch(r) => r.group_id.clone(),
            _ => unreachable!("only group requests are routed here"),
        };
        let partition = self.offsets_partition(&group).filter(|p| self.coordinator.coordinates(*p));
        let Some(partition) = partition else {
            let error = ErrorCode::NotCoordinator;
            let response = match body {
                Request::JoinGroup(r) => Response::JoinGroup(JoinGroupResponse {
                    error,
                    generation: -1,
                    protocol: None,
                    leader: String::new(),
                    member_id: r.member_id,
                    members: Vec::new(),
                }),
                Request::SyncGroup(_) => Response::SyncGroup(SyncGroupResponse { error, assignment: Vec::new() }),
                Request::Heartbeat(_) => Response::Heartbeat(HeartbeatResponse { error }),
                Request::LeaveGroup(_) => Response::LeaveGroup(LeaveGroupResponse { error }),
                Request::OffsetCommit(_) => Response::OffsetCommit(OffsetCommitResponse { error }),
                _ => Response::OffsetFetch(OffsetFetchResponse { error, offsets: Vec::new() }),
            };
            Self::respond(from, correlation_id, response, fx);
            return;
        };
        let append = match body {
            Request::JoinGroup(r) => self.coordinator.join(now, from, correlation_id, partition, r, fx),
            Request::SyncGroup(r) => self.coordinator.sync(from, correlation_id, r, fx),
            Request::Heartbeat(r) => {
                self.coordinator.heartbeat(now, from, correlation_id, r, fx);
                None
            }
            Request::LeaveGroup(r) => self.coordinator.leave(now, from, correlation_id, r, fx),
            Request::OffsetCommit(r) => self.coordinator.commit(from, correlation_id, partition, r, fx),
            Request::OffsetFetch(r) => {
                self.coordinator.fetch_offsets(from, correlation_id, r, fx);
                None
            }
            _ => None,
        };
        if let Some(append) = append {
            self.coordinator_append(now, append, fx);
        }
    }

    fn fail_delayed_produces(&mut self, tp: &TopicPartition, error: ErrorCode, fx: &mut Effects) {
        let ids: Vec<u64> =
            self.delayed_produces.iter().filter(|(_, d)| &d.partition == tp).map(|(id, _)| *id).collect();
        for id in ids {
            let d = self.delayed_produces.remove(&id).expect("present");
            fx.cancel_timer(Timer::DelayedProduceExpiry(id));
            let body = Response::Produce(ProduceResponse {
                partition: d.partition,
                error,
                base_offset: -1,
                log_start_offset: -1,
            });
            Self::respond(d.client, d.correlation_id, body, fx);
        }
    }

    /// Complete every delayed fetch that now has something to return (restricted to those that
    /// include `tp`, if given).
    fn try_complete_delayed_fetches(&mut self, now: SimTime, tp: Option<&TopicPartition>, fx: &mut Effects) {
        let ready: Vec<u64> = self
            .delayed_fetches
            .iter()
            .filter(|(_, d)| tp.is_none_or(|tp| d.request.partitions.iter().any(|p| &p.partition == tp)))
            .filter(|(_, d)| self.fetch_can_complete(&d.request))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let d = self.delayed_fetches.remove(&id).expect("present");
            fx.cancel_timer(Timer::DelayedFetchExpiry(id));
            self.answer_fetch(now, d.client, d.correlation_id, &d.request, fx);
        }
    }

    fn fetch_can_complete(&self, request: &FetchRequest) -> bool {
        request.partitions.iter().any(|p| match self.validate_fetch(request, p) {
            Err(_) => true,
            Ok(replica) => {
                let limit = if request.replica.is_some() { replica.log_end_offset() } else { replica.high_watermark };
                p.fetch_offset < limit
            }
        })
    }

    // ---- serving requests -----------------------------------------------------------------------

    fn validate_leader(&self, tp: &TopicPartition, current_leader_epoch: i32) -> Result<&Replica, ErrorCode> {
        let replica = self.replicas.get(tp).ok_or(ErrorCode::NotLeaderOrFollower)?;
        if !replica.is_leader() {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        // KIP-320: the fetcher's epoch must be ours (-1: not checked).
        if current_leader_epoch >= 0 {
            if current_leader_epoch < replica.leader_epoch {
                return Err(ErrorCode::FencedLeaderEpoch);
            }
            if current_leader_epoch > replica.leader_epoch {
                return Err(ErrorCode::UnknownLeaderEpoch);
            }
        }
        Ok(replica)
    }

    fn validate_fetch(&self, request: &FetchRequest, p: &FetchPartition) -> Result<&Replica, ErrorCode> {
        let replica = self.validate_leader(&p.partition, p.current_leader_epoch)?;
        if p.fetch_offset < replica.log.log_start_offset() || p.fetch_offset > replica.log_end_offset() {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        if let Some((follower, _)) = request.replica {
            if !replica.replicas.contains(&follower) {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
        }
        Ok(replica)
    }

    fn on_produce(
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
        let replica = match self.validate_leader(&tp, -1) {
            Ok(r) => r,
            Err(error) => return reply(error, -1, -1, fx),
        };
        // `min.insync.replicas` is checked before appending; an acks=1 write ignores it.
        if request.acks == Acks::All && replica.isr.len() < config.min_insync_replicas {
            return reply(ErrorCode::NotEnoughReplicas, -1, replica.log.log_start_offset(), fx);
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
                };
                return self.delay_produce(now, delayed, request.timeout_ms, fx);
            }
            SequenceCheck::OutOfOrder { .. } => {
                return reply(ErrorCode::OutOfOrderSequenceNumber, -1, replica.log.log_start_offset(), fx);
            }
            SequenceCheck::Append => {}
        }
        let replica = self.replicas.get_mut(&tp).expect("validated");
        let count = request.batch.len();
        let epoch = replica.leader_epoch;
        let base_offset = replica.log.append_as_leader(request.batch, epoch, &config, now.as_ms());
        let appended = replica.log.read(base_offset, base_offset + 1, 0).remove(0);
        replica.remember_producer_batch(&appended);
        let log_start_offset = replica.log.log_start_offset();
        fx.note(Note::Appended { partition: tp.clone(), base_offset, count, leader_epoch: epoch, as_leader: true });
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
                };
                self.delay_produce(now, delayed, request.timeout_ms, fx);
            }
        }
        self.maybe_advance_hw(now, &tp, fx);
        self.try_complete_delayed_fetches(now, Some(&tp), fx);
    }

    /// Park an acks=all produce in purgatory until the high watermark passes it, or its timeout.
    fn delay_produce(&mut self, now: SimTime, delayed: DelayedProduce, timeout_ms: u64, fx: &mut Effects) {
        let id = self.next_id();
        self.delayed_produces.insert(id, delayed);
        fx.set_timer(Timer::DelayedProduceExpiry(id), now.plus_ms(timeout_ms));
    }

    fn on_fetch(&mut self, now: SimTime, from: NodeId, correlation_id: u64, request: FetchRequest, fx: &mut Effects) {
        if let Some((follower, _)) = request.replica {
            self.record_follower_fetches(now, follower, &request, fx);
        }
        if request.max_wait_ms == 0 || self.fetch_can_complete(&request) {
            self.answer_fetch(now, from, correlation_id, &request, fx);
        } else {
            let id = self.next_id();
            fx.set_timer(Timer::DelayedFetchExpiry(id), now.plus_ms(request.max_wait_ms));
            self.delayed_fetches.insert(id, DelayedFetch { client: from, correlation_id, request });
        }
    }

    fn record_follower_fetches(&mut self, now: SimTime, follower: BrokerId, request: &FetchRequest, fx: &mut Effects) {
        for p in &request.partitions {
            if self.validate_fetch(request, p).is_err() {
                continue;
            }
            let replica = self.replicas.get_mut(&p.partition).expect("validated");
            replica.record_follower_fetch(follower, p.fetch_offset, now.as_ms());
            self.maybe_expand_isr(now, &p.partition, follower, fx);
            self.maybe_advance_hw(now, &p.partition, fx);
        }
    }

    fn answer_fetch(
        &mut self,
        now: SimTime,
        to: NodeId,
        correlation_id: u64,
        request: &FetchRequest,
        fx: &mut Effects,
    ) {
        if let Some((follower, _)) = request.replica {
            // Kafka updates the follower's state again when a delayed fetch completes.
            self.record_follower_fetches(now, follower, request, fx);
        }
        let mut partitions = Vec::with_capacity(request.partitions.len());
        for p in &request.partitions {
            let answer = match self.validate_fetch(request, p) {
                Err(error) => FetchedPartition {
                    partition: p.partition.clone(),
                    error,
                    high_watermark: -1,
                    log_start_offset: self.replicas.get(&p.partition).map_or(-1, |r| r.log.log_start_offset()),
                    batches: Vec::new(),
                },
                Ok(replica) => {
                    // Consumers never see past the high watermark; followers read to the log end.
                    let limit =
                        if request.replica.is_some() { replica.log_end_offset() } else { replica.high_watermark };
                    FetchedPartition {
                        partition: p.partition.clone(),
                        error: ErrorCode::None,
                        high_watermark: replica.high_watermark,
                        log_start_offset: replica.log.log_start_offset(),
                        batches: replica.log.read(p.fetch_offset, limit, FETCH_MAX_BYTES),
                    }
                }
            };
            debug_assert!(answer.batches.iter().all(|b| b.base_offset >= 0));
            partitions.push(answer);
        }
        Self::respond(to, correlation_id, Response::Fetch(FetchResponse { partitions }), fx);
    }

    fn on_list_offsets(&mut self, from: NodeId, correlation_id: u64, request: ListOffsetsRequest, fx: &mut Effects) {
        let partitions = request
            .partitions
            .iter()
            .map(|(tp, spec, epoch)| match self.validate_leader(tp, *epoch) {
                Err(error) => (tp.clone(), error, -1, -1),
                Ok(replica) => {
                    let offset = match spec {
                        OffsetSpec::Earliest => replica.log.log_start_offset(),
                        OffsetSpec::Latest => replica.high_watermark,
                    };
                    (tp.clone(), ErrorCode::None, offset, replica.leader_epoch)
                }
            })
            .collect();
        Self::respond(from, correlation_id, Response::ListOffsets(ListOffsetsResponse { partitions }), fx);
    }

    fn on_offsets_for_leader_epoch(
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

    fn on_metadata_request(&mut self, from: NodeId, correlation_id: u64, request: MetadataRequest, fx: &mut Effects) {
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

    fn on_init_producer_id(&mut self, from: NodeId, correlation_id: u64, fx: &mut Effects) {
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

    // ---- following --------------------------------------------------------------------------

    /// Send whatever fetches and epoch queries are due, one request in flight per leader.
    fn drive_fetchers(&mut self, now: SimTime, fx: &mut Effects) {
        if self.broker_epoch < 0 {
            return;
        }
        // Per leader: the partitions that must first ask where their log diverges (with the
        // epoch to ask about and the current leader epoch), and the ones that fetch.
        type EpochQueries = Vec<(TopicPartition, i32, i32)>;
        let mut by_leader: BTreeMap<BrokerId, (EpochQueries, Vec<FetchPartition>)> = BTreeMap::new();
        for (tp, replica) in self.replicas.iter_mut() {
            let Some((leader, phase)) = replica.follower_of() else { continue };
            let entry = by_leader.entry(leader).or_default();
            match phase {
                FollowerPhase::Truncating => match replica.log.latest_epoch() {
                    Some(epoch) => entry.0.push((tp.clone(), replica.leader_epoch, epoch)),
                    None => {
                        // Nothing written with any epoch: nothing can have diverged.
                        replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::Fetching };
                        entry.1.push(FetchPartition {
                            partition: tp.clone(),
                            fetch_offset: replica.log_end_offset(),
                            current_leader_epoch: replica.leader_epoch,
                        });
                    }
                },
                FollowerPhase::Fetching => entry.1.push(FetchPartition {
                    partition: tp.clone(),
                    fetch_offset: replica.log_end_offset(),
                    current_leader_epoch: replica.leader_epoch,
                }),
                FollowerPhase::AwaitingMetadata => {}
            }
        }
        for (leader, (queries, fetches)) in by_leader {
            let fetcher = self.fetchers.entry(leader).or_default();
            if fetcher.in_flight.is_some() || now < fetcher.backoff_until || (queries.is_empty() && fetches.is_empty())
            {
                continue;
            }
            let to = NodeId::Broker(leader);
            let id = if !queries.is_empty() {
                let epochs = queries.iter().map(|(tp, e, _)| (tp.clone(), *e)).collect();
                let body = Request::OffsetsForLeaderEpoch(OffsetsForLeaderEpochRequest {
                    replica_id: self.id,
                    partitions: queries,
                });
                self.request(now, to, Outstanding::EpochQuery { leader, epochs }, body, fx)
            } else {
                let epochs = fetches.iter().map(|p| (p.partition.clone(), p.current_leader_epoch)).collect();
                let body = Request::Fetch(FetchRequest {
                    replica: Some((self.id, self.broker_epoch)),
                    max_wait_ms: self.config.replica_fetch_wait_max_ms,
                    partitions: fetches,
                });
                self.request(now, to, Outstanding::Fetch { leader, epochs }, body, fx)
            };
            self.fetchers.entry(leader).or_default().in_flight = Some(id);
        }
    }

    fn fetcher_failed(&mut self, now: SimTime, leader: BrokerId, fx: &mut Effects) {
        let fetcher = self.fetchers.entry(leader).or_default();
        fetcher.in_flight = None;
        fetcher.backoff_until = now.plus_ms(self.config.replica_fetch_backoff_ms);
        fx.set_timer(Timer::FetchBackoff(leader), fetcher.backoff_until);
    }

    /// The replica is still following `leader` in the epoch the request was sent for.
    fn still_following(&self, tp: &TopicPartition, leader: BrokerId, epoch: i32, phase: FollowerPhase) -> bool {
        self.replicas.get(tp).is_some_and(|r| r.leader_epoch == epoch && r.follower_of() == Some((leader, &phase)))
    }

    fn on_epoch_answer(
        &mut self,
        now: SimTime,
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
        response: OffsetsForLeaderEpochResponse,
        fx: &mut Effects,
    ) {
        self.fetchers.entry(leader).or_default().in_flight = None;
        let mut backoff = false;
        for answer in response.partitions {
            let tp = answer.partition.clone();
            let Some(&epoch) = epochs.get(&tp) else { continue };
            if !self.still_following(&tp, leader, epoch, FollowerPhase::Truncating) {
                continue;
            }
            let replica = self.replicas.get_mut(&tp).expect("still following");
            match answer.error {
                ErrorCode::None => {}
                ErrorCode::FencedLeaderEpoch => {
                    replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::AwaitingMetadata };
                    continue;
                }
                _ => {
                    backoff = true;
                    continue;
                }
            }
            let log_end = replica.log_end_offset();
            // Kafka's `getOffsetTruncationState`.
            let (target, done, reason) = if answer.end_offset == UNDEFINED_OFFSET {
                (replica.high_watermark, true, TruncateReason::ToHighWatermark)
            } else {
                let (my_epoch, my_end) = replica.log.epoch_cache().end_offset_for(answer.leader_epoch, log_end);
                if my_epoch == UNDEFINED_EPOCH {
                    (answer.end_offset.min(log_end), true, TruncateReason::DivergedFromLeader)
                } else if my_epoch != answer.leader_epoch {
                    // KIP-279: we never saw the leader's epoch; cut back to the end of our largest
                    // earlier epoch and ask again about that one.
                    (my_end.min(log_end), false, TruncateReason::DivergedFromLeader)
                } else {
                    (my_end.min(answer.end_offset).min(log_end), true, TruncateReason::DivergedFromLeader)
                }
            };
            self.truncate(&tp, target, reason, fx);
            if done {
                let replica = self.replicas.get_mut(&tp).expect("present");
                replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::Fetching };
            }
        }
        if backoff {
            self.fetcher_failed(now, leader, fx);
        }
    }

    fn truncate(&mut self, tp: &TopicPartition, offset: i64, reason: TruncateReason, fx: &mut Effects) {
        let replica = self.replicas.get_mut(tp).expect("caller checked");
        let removed = replica.log.truncate_to(offset);
        if removed > 0 {
            replica.high_watermark = replica.high_watermark.min(replica.log_end_offset());
            replica.rebuild_producer_state();
            fx.note(Note::Truncated { partition: tp.clone(), to_offset: replica.log_end_offset(), removed, reason });
        }
    }

    fn on_fetch_answer(
        &mut self,
        now: SimTime,
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
        response: FetchResponse,
        fx: &mut Effects,
    ) {
        self.fetchers.entry(leader).or_default().in_flight = None;
        let mut backoff = false;
        for answer in response.partitions {
            let tp = answer.partition.clone();
            let Some(&epoch) = epochs.get(&tp) else { continue };
            if !self.still_following(&tp, leader, epoch, FollowerPhase::Fetching) {
                continue;
            }
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("still following");
            match answer.error {
                ErrorCode::None => {
                    let mut first: Option<(i64, i32)> = None;
                    let mut count = 0;
                    for batch in answer.batches {
                        if batch.next_offset() <= replica.log_end_offset() {
                            continue;
                        }
                        if batch.base_offset != replica.log_end_offset() {
                            break;
                        }
                        first.get_or_insert((batch.base_offset, batch.leader_epoch));
                        count += batch.len();
                        replica.remember_producer_batch(&batch);
                        replica.log.append_as_follower(batch, &config, now.as_ms());
                    }
                    if let Some((base_offset, leader_epoch)) = first {
                        fx.note(Note::Appended {
                            partition: tp.clone(),
                            base_offset,
                            count,
                            leader_epoch,
                            as_leader: false,
                        });
                    }
                    let hw = answer.high_watermark.min(replica.log_end_offset());
                    if hw > replica.high_watermark {
                        replica.high_watermark = hw;
                        fx.note(Note::HighWatermark { partition: tp.clone(), high_watermark: hw, on_leader: false });
                    }
                    if answer.log_start_offset > replica.log.log_start_offset() {
                        replica.log.advance_log_start_offset(answer.log_start_offset);
                        fx.note(Note::LogStartMoved {
                            partition: tp.clone(),
                            log_start_offset: replica.log.log_start_offset(),
                        });
                    }
                }
                ErrorCode::OffsetOutOfRange => {
                    if replica.log_end_offset() < answer.log_start_offset {
                        // Everything we have is older than the leader keeps: start over at its start.
                        replica.log = Log::new_at(answer.log_start_offset, now.as_ms());
                        replica.high_watermark = answer.log_start_offset;
                        replica.producers.clear();
                        fx.note(Note::LogStartMoved {
                            partition: tp.clone(),
                            log_start_offset: answer.log_start_offset,
                        });
                    } else {
                        replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::Truncating };
                    }
                }
                ErrorCode::FencedLeaderEpoch => {
                    replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::AwaitingMetadata };
                }
                _ => backoff = true,
            }
        }
        if backoff {
            self.fetcher_failed(now, leader, fx);
        }
    }

    // ---- dispatch ---------------------------------------------------------------------------

    fn on_request(&mut self, now: SimTime, from: NodeId, correlation_id: u64, body: Request, fx: &mut Effects) {
        match body {
            Request::Produce(r) => self.on_produce(now, from, correlation_id, r, fx),
            Request::Fetch(r) => self.on_fetch(now, from, correlation_id, r, fx),
            Request::ListOffsets(r) => self.on_list_offsets(from, correlation_id, r, fx),
            Request::Metadata(r) => self.on_metadata_request(from, correlation_id, r, fx),
            Request::OffsetsForLeaderEpoch(r) => self.on_offsets_for_leader_epoch(from, correlation_id, r, fx),
            Request::InitProducerId => self.on_init_producer_id(from, correlation_id, fx),
            Request::FindCoordinator(r) => self.on_find_coordinator(now, from, correlation_id, &r.group_id, fx),
            body @ (Request::JoinGroup(_)
            | Request::SyncGroup(_)
            | Request::Heartbeat(_)
            | Request::LeaveGroup(_)
            | Request::OffsetCommit(_)
            | Request::OffsetFetch(_)) => self.on_group_request(now, from, correlation_id, body, fx),
            // Controller APIs sent to a broker: Kafka answers NOT_CONTROLLER; ksim's clients never
            // send them here, so there is nothing to answer.
            Request::BrokerRegistration(_)
            | Request::BrokerHeartbeat(_)
            | Request::AlterPartition(_)
            | Request::MetadataFetch(_)
            | Request::CreateTopics(_) => {}
        }
    }

    fn on_response(&mut self, now: SimTime, correlation_id: u64, body: Response, fx: &mut Effects) {
        let Some((_, what)) = self.outstanding.remove(&correlation_id) else {
            return; // timed out earlier, superseded, or not tracked (CreateTopics)
        };
        fx.cancel_timer(Timer::RequestTimeout(correlation_id));
        match (what, body) {
            (Outstanding::Registration, Response::BrokerRegistration(r)) => {
                if r.error.is_none() {
                    self.broker_epoch = r.broker_epoch;
                    self.fetch_metadata(now, fx);
                    self.send_heartbeat(now, fx);
                } else {
                    fx.set_timer(Timer::ControllerRetry, now.plus_ms(CONTROLLER_RETRY_BACKOFF_MS));
                }
            }
            (Outstanding::Heartbeat, Response::BrokerHeartbeat(r)) => {
                if r.error == ErrorCode::StaleBrokerEpoch {
                    self.broker_epoch = -1;
                    self.register(now, fx);
                } else if r.error.is_none() {
                    self.fenced = r.is_fenced;
                }
                fx.set_timer(Timer::BrokerHeartbeat, now.plus_ms(self.config.broker_heartbeat_interval_ms));
            }
            (Outstanding::MetadataFetch, Response::MetadataFetch(r)) => {
                self.on_metadata(now, r, fx);
                self.fetch_metadata(now, fx);
            }
            (Outstanding::AlterPartition(tp), Response::AlterPartition(r)) => {
                self.on_alter_partition_answer(now, &tp, r, fx)
            }
            (Outstanding::Fetch { leader, epochs }, Response::Fetch(r)) => {
                self.on_fetch_answer(now, leader, epochs, r, fx)
            }
            (Outstanding::EpochQuery { leader, epochs }, Response::OffsetsForLeaderEpoch(r)) => {
                self.on_epoch_answer(now, leader, epochs, r, fx)
            }
            (what, body) => panic!("broker-{}: response {} does not answer {what:?}", self.id, body.api()),
        }
    }

    fn on_alter_partition_answer(
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

    /// A request got no answer (timeout) or its connection closed.
    fn on_request_failed(&mut self, now: SimTime, what: Outstanding, fx: &mut Effects) {
        match what {
            Outstanding::Registration | Outstanding::MetadataFetch => {
                fx.set_timer(Timer::ControllerRetry, now.plus_ms(CONTROLLER_RETRY_BACKOFF_MS));
            }
            Outstanding::Heartbeat => {}
            Outstanding::AlterPartition(tp) => {
                // Clear the pending change; the next ISR check or fetch asks again.
                if let Some(state) = self.replicas.get_mut(&tp).and_then(|r| r.leader_state_mut()) {
                    state.pending_isr = None;
                }
            }
            Outstanding::Fetch { leader, .. } | Outstanding::EpochQuery { leader, .. } => {
                self.fetcher_failed(now, leader, fx)
            }
        }
    }

    fn on_timer(&mut self, now: SimTime, timer: Timer, fx: &mut Effects) {
        match timer {
            Timer::RequestTimeout(id) => {
                if let Some((_, what)) = self.outstanding.remove(&id) {
                    self.on_request_failed(now, what, fx);
                }
            }
            Timer::BrokerHeartbeat => {
                self.send_heartbeat(now, fx);
                fx.set_timer(Timer::BrokerHeartbeat, now.plus_ms(self.config.broker_heartbeat_interval_ms));
            }
            Timer::ControllerRetry => {
                if self.broker_epoch < 0 {
                    self.register(now, fx);
                } else {
                    self.fetch_metadata(now, fx);
                }
            }
            Timer::FetchBackoff(_) => {}
            Timer::DelayedFetchExpiry(id) => {
                if let Some(d) = self.delayed_fetches.remove(&id) {
                    self.answer_fetch(now, d.client, d.correlation_id, &d.request, fx);
                }
            }
            Timer::DelayedProduceExpiry(id) => {
                if let Some(d) = self.delayed_produces.remove(&id) {
                    let body = Response::Produce(ProduceResponse {
                        partition: d.partition,
                        error: ErrorCode::RequestTimedOut,
                        base_offset: -1,
                        log_start_offset: -1,
                    });
                    Self::respond(d.client, d.correlation_id, body, fx);
                }
            }
            Timer::IsrCheck => {
                self.maybe_shrink_isr(now, fx);
                fx.set_timer(Timer::IsrCheck, now.plus_ms((self.config.replica_lag_time_max_ms / 2).max(1)));
            }
            Timer::RetentionCheck => {
                self.apply_retention(now, fx);
                fx.set_timer(Timer::RetentionCheck, now.plus_ms(self.config.log_retention_check_interval_ms));
            }
            Timer::OsWriteback => {
                self.writeback(now, fx);
                fx.set_timer(Timer::OsWriteback, now.plus_ms(self.config.os_writeback_interval_ms));
            }
            Timer::CoordinatorWriteExpiry(id) => {
                if let Some(w) = self.delayed_writes.remove(&id) {
                    self.coordinator.on_append_done(now, w.completion, ErrorCode::RequestTimedOut, fx);
                }
            }
            timer @ (Timer::GroupRebalance(_) | Timer::GroupSessionCheck(_)) => {
                if let Some(append) = self.coordinator.on_timer(now, &timer, fx) {
                    self.coordinator_append(now, append, fx);
                }
            }
            other => panic!("broker-{} got a timer it never sets: {other:?}", self.id),
        }
    }

    fn apply_retention(&mut self, now: SimTime, fx: &mut Effects) {
        let tps: Vec<TopicPartition> = self.replicas.keys().cloned().collect();
        for tp in tps {
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("listed");
            if let Some(start) = replica.log.apply_retention(&config, now.as_ms(), replica.high_watermark) {
                fx.note(Note::LogStartMoved { partition: tp.clone(), log_start_offset: start });
            }
        }
    }

    /// The OS writes dirty pages back, and Kafka checkpoints high watermarks (both roughly every
    /// five seconds in a real deployment).
    fn writeback(&mut self, now: SimTime, fx: &mut Effects) {
        let tps: Vec<TopicPartition> = self.replicas.keys().cloned().collect();
        for tp in tps {
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("listed");
            replica.log.maybe_flush_by_config(&config, now.as_ms());
            if replica.log.flushed_offset() < replica.log_end_offset() {
                replica.log.flush();
                fx.note(Note::Flushed { partition: tp.clone(), offset: replica.log.flushed_offset() });
            }
            replica.checkpointed_high_watermark = replica.high_watermark;
        }
    }

    fn on_connection_closed(&mut self, now: SimTime, peer: NodeId, fx: &mut Effects) {
        let failed: Vec<u64> = self.outstanding.iter().filter(|(_, (to, _))| *to == peer).map(|(id, _)| *id).collect();
        for id in failed {
            let (_, what) = self.outstanding.remove(&id).expect("listed");
            fx.cancel_timer(Timer::RequestTimeout(id));
            self.on_request_failed(now, what, fx);
        }
        // Requests from the peer that wait in purgatory have no one to answer to.
        let fetches: Vec<u64> =
            self.delayed_fetches.iter().filter(|(_, d)| d.client == peer).map(|(id, _)| *id).collect();
        for id in fetches {
            self.delayed_fetches.remove(&id);
            fx.cancel_timer(Timer::DelayedFetchExpiry(id));
        }
        let produces: Vec<u64> =
            self.delayed_produces.iter().filter(|(_, d)| d.client == peer).map(|(id, _)| *id).collect();
        for id in produces {
            self.delayed_produces.remove(&id);
            fx.cancel_timer(Timer::DelayedProduceExpiry(id));
        }
    }
}

impl StateMachine for Broker {
    fn handle(&mut self, now: SimTime, input: Input, _rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        match input {
            Input::Start => self.start(now, fx),
            Input::Message { from, message: Message::Request { correlation_id, body } } => {
                self.on_request(now, from, correlation_id, body, fx)
            }
            Input::Message { message: Message::Response { correlation_id, body }, .. } => {
                self.on_response(now, correlation_id, body, fx)
            }
            Input::Timer(timer) => self.on_timer(now, timer, fx),
            Input::ConnectionClosed { peer } => self.on_connection_closed(now, peer, fx),
        }
        self.drive_fetchers(now, fx);
    }
}
