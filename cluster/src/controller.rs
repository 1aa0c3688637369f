//! The KRaft controller: the single writer of the cluster's metadata.
//!
//! Brokers register with the controller and then heartbeat every `broker.heartbeat.interval.ms`.
//! A broker that stays silent for `broker.session.timeout.ms` is **fenced**: the controller moves
//! the leadership of its partitions to another in-sync replica and removes it from every ISR
//! (except that an ISR never becomes empty: its last member stays, so that a clean election is
//! possible when it returns). A fenced broker is unfenced once it heartbeats again and has caught
//! up with the metadata log.
//!
//! **Leader election** picks the first replica in assignment order that is in the ISR and
//! unfenced. If there is none and `unclean.leader.election.enable=true`, it picks the first live
//! replica at all (an *unclean* election: records only the old ISR had are lost). Otherwise the
//! partition stays offline. Every new leader gets a new, higher **leader epoch**; every change to a
//! partition bumps its **partition epoch**, which AlterPartition requests must match.
//!
//! The controller never tells a broker what to do directly: it appends records to the metadata log
//! and brokers replay it (see [`crate::metadata`]). While the controller is down nothing changes:
//! no broker is fenced, no leader is elected, no ISR changes.
//!
//! A controller either runs alone (ksim's single dedicated controller: its log is its own, and
//! brokers long-poll it with MetadataFetch) or as one voter of a KRaft quorum ([`quorum`]): then
//! the metadata log is the Raft log, only the Raft leader writes it, and it answers brokers once
//! the quorum has committed what it wrote.

mod quorum;
pub use quorum::QuorumSetup;
/// How Raft ids map to nodes, shared with brokers observing the quorum.
pub mod quorum_wire {
    pub use super::quorum::{emit_raft_out, observer_raft_id, raft_id, raft_peer};
}

use crate::config::{BrokerConfig, TopicConfig};
use crate::effects::{Effects, Input, StateMachine};
use crate::error::ErrorCode;
use crate::invariant::{debug_check, ensure};
use crate::metadata::{ElectionKind, MetadataImage, MetadataRecord, PartitionImage};
use crate::node::NodeId;
use crate::note::{FenceReason, Note};
use crate::partition_change::{self, ChangeRules, Changed};
use crate::protocol::*;
use crate::raft::RaftDisk;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::BTreeMap;

/// A topic to create once the cluster is up, as an operator's `kafka-topics.sh --create` would.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: usize,
    /// Explicit replica lists, partition by partition; empty: let the controller place them.
    pub assignment: Vec<Vec<BrokerId>>,
    pub config: TopicConfig,
}

/// What a controller's disk holds: the metadata log (a lone controller's), or the Raft log and
/// `quorum-state` (a quorum member's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControllerDisk {
    pub log: Vec<MetadataRecord>,
    pub raft: RaftDisk<MetadataRecord>,
}

#[derive(Clone, Debug)]
struct Session {
    last_heartbeat: SimTime,
    /// The broker is caught up once its metadata offset reaches this (its registration record).
    caught_up_offset: i64,
    /// The metadata offset the broker reported in its last heartbeat.
    metadata_offset: i64,
    /// In controlled shutdown: the log end after its leaderships moved. It may stop once every
    /// active broker has replayed that far (`BrokerHeartbeatManager.controlledShutdownOffset`).
    controlled_shutdown_offset: Option<i64>,
}

impl Session {
    fn new(now: SimTime, caught_up_offset: i64) -> Session {
        Session { last_heartbeat: now, caught_up_offset, metadata_offset: -1, controlled_shutdown_offset: None }
    }
}

pub struct Controller {
    id: i32,
    config: BrokerConfig,
    log: Vec<MetadataRecord>,
    image: MetadataImage,
    /// Topics to create once `expected_brokers` are all unfenced.
    pending_topics: Vec<TopicSpec>,
    expected_brokers: usize,
    // ---- volatile ----
    sessions: BTreeMap<BrokerId, Session>,
    /// Long-polling metadata fetches: broker -> (node, correlation id, offset asked for).
    waiting_fetches: BTreeMap<BrokerId, (NodeId, u64, i64)>,
    /// The balance task (preferred-leader election) is scheduled.
    balance_scheduled: bool,
    /// In a quorum: the Raft member and what the controller built on it.
    quorum: Option<quorum::QuorumMember>,
}

impl Controller {
    pub fn new(
        id: i32,
        config: BrokerConfig,
        expected_brokers: usize,
        topics: Vec<TopicSpec>,
        disk: ControllerDisk,
    ) -> Self {
        Self::with_quorum(id, config, expected_brokers, topics, disk, None)
    }

    /// A controller that is one voter of `quorum` (or alone, with `None`).
    pub fn with_quorum(
        id: i32,
        config: BrokerConfig,
        expected_brokers: usize,
        topics: Vec<TopicSpec>,
        disk: ControllerDisk,
        quorum: Option<QuorumSetup>,
    ) -> Self {
        let ControllerDisk { log: lone_log, raft: raft_disk } = disk;
        let quorum = quorum.map(|setup| quorum::QuorumMember::new(id, setup, raft_disk));
        // A quorum member starts from nothing it has not seen committed: the records below the
        // high watermark are replayed as the quorum tells it where that is.
        let log = if quorum.is_some() { Vec::new() } else { lone_log };
        let mut image = MetadataImage::default();
        for record in &log {
            image.apply(record);
        }
        // Topics already in the recovered log are not created again.
        let pending_topics = topics.into_iter().filter(|t| !image.topics.contains_key(&t.name)).collect();
        Controller {
            id,
            config,
            log,
            image,
            pending_topics,
            expected_brokers,
            sessions: BTreeMap::new(),
            waiting_fetches: BTreeMap::new(),
            balance_scheduled: false,
            quorum,
        }
    }

    pub fn node_id(&self) -> NodeId {
        NodeId::Controller(self.id)
    }

    pub fn into_disk(self) -> ControllerDisk {
        match self.quorum {
            Some(q) => ControllerDisk { log: Vec::new(), raft: q.raft.into_disk() },
            None => ControllerDisk { log: self.log, raft: RaftDisk::default() },
        }
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    /// The image is the fold of the whole log (one offset per record), and satisfies
    /// [`MetadataImage::check_invariants`].
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_quorum_invariants().map_err(|e| format!("quorum: {e}"))?;
        ensure(self.image.next_offset == self.log.len() as i64, || {
            format!("image at offset {}, log holds {} records", self.image.next_offset, self.log.len())
        })?;
        self.image.check_invariants().map_err(|e| format!("metadata image: {e}"))
    }

    pub fn log(&self) -> &[MetadataRecord] {
        &self.log
    }

    fn append(&mut self, record: MetadataRecord, fx: &mut Effects) {
        self.image.apply(&record);
        match &record {
            MetadataRecord::RegisterBroker { broker_id, broker_epoch, .. } => {
                fx.note(Note::BrokerRegistered { broker: *broker_id, broker_epoch: *broker_epoch })
            }
            MetadataRecord::UnfenceBroker { broker_id, .. } => fx.note(Note::BrokerUnfenced { broker: *broker_id }),
            MetadataRecord::Partition {
                partition, isr, elr, leader, leader_epoch, partition_epoch, election, ..
            } => fx.note(Note::PartitionChanged {
                partition: partition.clone(),
                leader: *leader,
                leader_epoch: *leader_epoch,
                isr: isr.clone(),
                elr: elr.clone(),
                partition_epoch: *partition_epoch,
                election: *election,
            }),
            MetadataRecord::BrokerInControlledShutdown { broker_id, .. } => {
                fx.note(Note::ControlledShutdownStarted { broker: *broker_id })
            }
            MetadataRecord::FenceBroker { .. } | MetadataRecord::Topic { .. } | MetadataRecord::NoOp => {}
        }
        if let Some(q) = &mut self.quorum {
            assert!(q.active_epoch.is_some(), "controller-{}: only the active controller writes metadata", self.id);
            q.to_replicate.push(record.clone());
        }
        self.log.push(record);
    }

    /// Answer every broker waiting for new metadata.
    fn answer_waiting_fetches(&mut self, fx: &mut Effects) {
        let waiting = std::mem::take(&mut self.waiting_fetches);
        for (broker, (node, correlation_id, offset)) in waiting {
            fx.cancel_timer(Timer::MetadataFetchExpiry(broker));
            self.send_metadata(node, correlation_id, offset, fx);
        }
    }

    fn send_metadata(&self, to: NodeId, correlation_id: u64, from_offset: i64, fx: &mut Effects) {
        let start = (from_offset.max(0) as usize).min(self.log.len());
        let body = Response::MetadataFetch(MetadataFetchResponse {
            records: self.log[start..].to_vec(),
            base_offset: start as i64,
        });
        fx.send(to, Message::Response { correlation_id, body });
    }

    // ---- elections ----------------------------------------------------------------------------

    fn unclean_enabled(&self, tp: &TopicPartition) -> bool {
        self.image
            .topic_config(&tp.topic)
            .map_or(self.config.topic_defaults.unclean_leader_election_enable, |c| c.unclean_leader_election_enable)
    }

    /// `ReplicationControlManager.getTopicEffectiveMinIsr`: the topic's `min.insync.replicas`,
    /// capped by its replication factor.
    fn effective_min_isr(&self, tp: &TopicPartition, replication_factor: usize) -> usize {
        let configured = self
            .image
            .topic_config(&tp.topic)
            .map_or(self.config.topic_defaults.min_insync_replicas, |c| c.min_insync_replicas);
        self.config.effective_min_isr(configured, replication_factor)
    }

    /// Change a partition towards `target_isr` (Kafka's `PartitionChangeBuilder`, see
    /// [`partition_change`]): elect a leader if it needs one, keep the ELR, and append the record
    /// if anything changed. `removing` (a broker being fenced) and `unclean_shutdown` (a broker
    /// that restarted uncleanly) may not lead.
    fn change_partition(
        &mut self,
        tp: &TopicPartition,
        target_isr: Vec<BrokerId>,
        removing: Option<BrokerId>,
        unclean_shutdown: Option<BrokerId>,
        fx: &mut Effects,
    ) {
        let p = self.image.partitions[tp].clone();
        let image = &self.image;
        // `isAcceptableLeader`: active (unfenced and not in controlled shutdown), not the broker
        // being removed, not one that restarted uncleanly.
        let acceptable = |id: BrokerId| Some(id) != removing && Some(id) != unclean_shutdown && image.is_active(id);
        let rules = ChangeRules {
            min_isr: self.effective_min_isr(tp, p.replicas.len()),
            elr_enabled: self.config.eligible_leader_replicas_enabled,
            unclean_enabled: self.unclean_enabled(tp),
            unclean_shutdown,
            acceptable: &acceptable,
        };
        if let Some(changed) = partition_change::build(&p, target_isr, &rules) {
            self.write_partition(tp, &p, changed, fx);
        }
    }

    fn write_partition(&mut self, tp: &TopicPartition, p: &PartitionImage, changed: Changed, fx: &mut Effects) {
        let leader_changed = changed.leader != p.leader;
        let record = MetadataRecord::Partition {
            partition: tp.clone(),
            replicas: p.replicas.clone(),
            isr: changed.isr,
            elr: changed.elr,
            last_known_leader: changed.last_known_leader,
            leader: changed.leader,
            leader_epoch: if leader_changed { p.leader_epoch + 1 } else { p.leader_epoch },
            partition_epoch: p.partition_epoch + 1,
            election: if leader_changed { changed.election } else { None },
        };
        self.append(record, fx);
    }

    /// Partitions whose ISR (or, with `in_elr`, ELR) holds `broker`, in order.
    fn partitions_with(&self, broker: BrokerId, in_elr: bool) -> Vec<TopicPartition> {
        self.image
            .partitions
            .iter()
            .filter(|(_, p)| if in_elr { p.elr.contains(&broker) } else { p.isr.contains(&broker) })
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Move leadership and ISR membership away from a fenced broker
    /// (`ReplicationControlManager.handleBrokerFenced`). Without ELR the last ISR member stays in
    /// the ISR, so it can be elected cleanly when it returns; with ELR the ISR may empty and the
    /// ELR says who may lead.
    fn fence(&mut self, broker: BrokerId, reason: FenceReason, fx: &mut Effects) {
        let Some(b) = self.image.brokers.get(&broker) else { return };
        let epoch = b.broker_epoch;
        fx.note(Note::BrokerFenced { broker, reason });
        self.append(MetadataRecord::FenceBroker { broker_id: broker, broker_epoch: epoch }, fx);
        self.remove_from_isrs(broker, fx);
    }

    /// `generateLeaderAndIsrUpdates` with `broker` as the broker to remove: it leaves every ISR
    /// it is in, and the partitions it led elect another leader (fencing, controlled shutdown).
    fn remove_from_isrs(&mut self, broker: BrokerId, fx: &mut Effects) {
        for tp in self.partitions_with(broker, false) {
            let target: Vec<BrokerId> =
                self.image.partitions[&tp].isr.iter().copied().filter(|id| *id != broker).collect();
            self.change_partition(&tp, target, Some(broker), None, fx);
        }
    }

    /// A broker re-registered after an unclean shutdown (`ReplicationControlManager.handleBrokerShutdown`
    /// with ELR on): it may have lost records it had acknowledged as a follower, so it leaves every
    /// ISR and ELR and may not lead until it rejoins the ISR the ordinary way.
    fn unclean_shutdown(&mut self, broker: BrokerId, fx: &mut Effects) {
        for in_elr in [false, true] {
            for tp in self.partitions_with(broker, in_elr) {
                let target: Vec<BrokerId> =
                    self.image.partitions[&tp].isr.iter().copied().filter(|id| *id != broker).collect();
                self.change_partition(&tp, target, None, Some(broker), fx);
            }
        }
    }

    /// A broker came back: give leaderless partitions a leader if it can be one.
    fn elect_leaderless(&mut self, fx: &mut Effects) {
        let leaderless: Vec<(TopicPartition, PartitionImage)> = self
            .image
            .partitions
            .iter()
            .filter(|(_, p)| p.leader.is_none())
            .map(|(tp, p)| (tp.clone(), p.clone()))
            .collect();
        for (tp, p) in leaderless {
            self.change_partition(&tp, p.isr.clone(), None, None, fx);
        }
    }

    /// Preferred-leader election (`auto.leader.rebalance.enable`), KRaft style
    /// (`ReplicationControlManager.maybeBalancePartitionLeaders`): every imbalanced partition (its
    /// leader is not its preferred, first-assigned replica) whose preferred replica is in the ISR
    /// and active gets it back as leader. Unlike the ZooKeeper controller, KRaft ignores
    /// `leader.imbalance.per.broker.percentage`: one imbalanced partition is enough.
    fn rebalance_leaders(&mut self, fx: &mut Effects) {
        let candidates: Vec<(TopicPartition, PartitionImage)> = self
            .image
            .partitions
            .iter()
            .filter(|(_, p)| {
                let Some(&preferred) = p.replicas.first() else { return false };
                p.leader != Some(preferred) && p.isr.contains(&preferred) && self.image.is_active(preferred)
            })
            .map(|(tp, p)| (tp.clone(), p.clone()))
            .collect();
        for (tp, p) in candidates {
            let changed = Changed {
                leader: p.replicas.first().copied(),
                isr: p.isr.clone(),
                elr: p.elr.clone(),
                last_known_leader: None,
                election: Some(ElectionKind::Preferred),
            };
            self.write_partition(&tp, &p, changed, fx);
        }
    }

    /// `QuorumController.maybeScheduleNextBalancePartitionLeaders`: after every change, if the
    /// balance task is not scheduled and some partition is imbalanced (`imbalancedPartitions`: its
    /// leader is not its first replica), schedule it `leader.imbalance.check.interval.seconds`
    /// from now. So the preferred leader returns that long after the imbalance appeared (or after
    /// the previous run), not on a fixed tick counted from the controller's start.
    fn maybe_schedule_balance(&mut self, now: SimTime, fx: &mut Effects) {
        if self.balance_scheduled || !self.config.auto_leader_rebalance_enable {
            return;
        }
        let imbalanced =
            self.image.partitions.values().any(|p| p.replicas.first().is_some_and(|r| p.leader != Some(*r)));
        if imbalanced {
            self.balance_scheduled = true;
            fx.set_timer(
                Timer::LeaderImbalanceCheck,
                now.plus_ms(self.config.leader_imbalance_check_interval_seconds * 1000),
            );
        }
    }

    // ---- topics ---------------------------------------------------------------------------------

    /// Kafka's rack-unaware replica placement (`AdminUtils.assignReplicasToBrokersRackUnaware`):
    /// the first replica of partition p goes to broker `(start + p) mod n`, the others follow at
    /// a shift that grows every n partitions, so leaders and followers spread evenly. `start` and
    /// the initial shift are random, as in Kafka. (KRaft's `StripedReplicaPlacer` also stripes
    /// partitions across brokers from a random start; ksim uses the classic algorithm, which is
    /// documented and easy to follow by hand.)
    pub fn place_replicas(
        brokers: &[BrokerId],
        partitions: i32,
        replication_factor: usize,
        rng: &mut dyn rand_core::RngCore,
    ) -> Vec<Vec<BrokerId>> {
        let n = brokers.len();
        assert!(n > 0 && replication_factor <= n, "placement needs at least {replication_factor} brokers, has {n}");
        let start = (rng.next_u32() as usize) % n;
        let mut shift = (rng.next_u32() as usize) % n;
        let mut out = Vec::with_capacity(partitions as usize);
        for p in 0..partitions as usize {
            if p > 0 && p % n == 0 {
                shift += 1;
            }
            let first = (p + start) % n;
            let mut replicas = vec![brokers[first]];
            for j in 0..replication_factor.saturating_sub(1) {
                let index = (first + 1 + (shift + j) % (n - 1).max(1)) % n;
                replicas.push(brokers[index]);
            }
            out.push(replicas);
        }
        out
    }

    fn create_topic(
        &mut self,
        spec: &TopicSpec,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) -> Result<(), (ErrorCode, String)> {
        if self.image.topics.contains_key(&spec.name) {
            return Err((ErrorCode::None, format!("topic {} already exists", spec.name)));
        }
        let live = self.image.live_brokers();
        let assignment = if spec.assignment.is_empty() {
            if live.len() < spec.replication_factor {
                return Err((
                    ErrorCode::NotEnoughReplicas,
                    format!(
                        "replication factor {} is larger than the {} live broker(s)",
                        spec.replication_factor,
                        live.len()
                    ),
                ));
            }
            Self::place_replicas(&live, spec.partitions, spec.replication_factor, rng)
        } else {
            spec.assignment.clone()
        };
        fx.note(Note::TopicCreated { topic: spec.name.clone(), assignment: assignment.clone() });
        self.append(
            MetadataRecord::Topic { name: spec.name.clone(), partitions: spec.partitions, config: spec.config.clone() },
            fx,
        );
        for (i, replicas) in assignment.into_iter().enumerate() {
            let tp = TopicPartition::new(spec.name.clone(), i as i32);
            let isr: Vec<BrokerId> = replicas.iter().copied().filter(|id| self.image.is_unfenced(*id)).collect();
            let leader = isr.first().copied();
            self.append(
                MetadataRecord::Partition {
                    partition: tp,
                    replicas,
                    isr,
                    elr: Vec::new(),
                    last_known_leader: None,
                    leader,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    election: leader.map(|_| ElectionKind::Clean),
                },
                fx,
            );
        }
        Ok(())
    }

    fn maybe_create_pending_topics(&mut self, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        if self.pending_topics.is_empty() || self.image.live_brokers().len() < self.expected_brokers {
            return;
        }
        for spec in std::mem::take(&mut self.pending_topics) {
            // Validation happened before the run; a failure here is reported in the trace.
            let _ = self.create_topic(&spec, rng, fx);
        }
    }

    // ---- requests -------------------------------------------------------------------------------

    fn schedule_session_check(&self, fx: &mut Effects) {
        let next = self
            .sessions
            .iter()
            .filter(|(id, _)| self.image.is_unfenced(**id))
            .map(|(_, s)| s.last_heartbeat.plus_ms(self.config.broker_session_timeout_ms))
            .min();
        match next {
            Some(at) => fx.set_timer(Timer::SessionCheck, at.plus_us(1)),
            None => fx.cancel_timer(Timer::SessionCheck),
        }
    }

    fn on_request(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        body: Request,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        let offsets_before = self.log.len();
        let response = match body {
            Request::BrokerRegistration(r) => Some(Response::BrokerRegistration(self.register_broker(now, r, fx))),
            Request::BrokerHeartbeat(r) => Some(Response::BrokerHeartbeat(self.broker_heartbeat(now, r, rng, fx))),
            Request::AlterPartition(r) => Some(Response::AlterPartition(self.alter_partition(r, fx))),
            Request::MetadataFetch(r) => {
                if (r.fetch_offset as usize) < self.log.len() || r.max_wait_ms == 0 {
                    self.send_metadata(from, correlation_id, r.fetch_offset, fx);
                } else {
                    let waiting = (from, correlation_id, r.fetch_offset);
                    if let Some((old_node, old_id, old_offset)) = self.waiting_fetches.insert(r.broker_id, waiting) {
                        // A newer fetch supersedes an older one from the same broker.
                        self.send_metadata(old_node, old_id, old_offset, fx);
                    }
                    fx.set_timer(Timer::MetadataFetchExpiry(r.broker_id), now.plus_ms(r.max_wait_ms));
                }
                None
            }
            Request::CreateTopics(r) => {
                let spec = TopicSpec {
                    name: r.name.clone(),
                    partitions: r.partitions,
                    replication_factor: r.replication_factor,
                    assignment: r.assignment,
                    config: r.config,
                };
                let (error, message) = match self.create_topic(&spec, rng, fx) {
                    Ok(()) => (ErrorCode::None, None),
                    Err((error, message)) => (error, Some(message)),
                };
                Some(Response::CreateTopics(CreateTopicsResponse { name: r.name, error, message }))
            }
            // Data-plane requests are for brokers.
            _ => None,
        };
        if let Some(body) = response {
            self.reply(from, correlation_id, body, fx);
        }
        if self.log.len() > offsets_before {
            self.answer_waiting_fetches(fx);
        }
        self.schedule_session_check(fx);
    }

    /// `ClusterControlManager.registerBroker`: while the registered incarnation of this broker id
    /// still has a valid session (unfenced, heard from within `broker.session.timeout.ms`:
    /// `BrokerHeartbeatManager.hasValidSession`), a *different* incarnation is refused with
    /// DUPLICATE_BROKER_REGISTRATION. So a broker killed and restarted within the session timeout
    /// is not registered (nor its old incarnation fenced) until that session expires: failover
    /// after a fast crash and restart takes the full `broker.session.timeout.ms`.
    fn register_broker(
        &mut self,
        now: SimTime,
        r: BrokerRegistrationRequest,
        fx: &mut Effects,
    ) -> BrokerRegistrationResponse {
        if let Some(existing) = self.image.brokers.get(&r.broker_id) {
            if existing.incarnation != r.incarnation && self.has_valid_session(now, r.broker_id) {
                fx.note(Note::RegistrationRejected { broker: r.broker_id });
                return BrokerRegistrationResponse { error: ErrorCode::DuplicateBrokerRegistration, broker_epoch: -1 };
            }
        }
        if self.image.is_unfenced(r.broker_id) {
            // The old registration's session has just expired but the session check has not run
            // yet, or the same incarnation registers again: its leaderships move first.
            self.fence(r.broker_id, FenceReason::Reregistered, fx);
        }
        // KIP-966 unclean-shutdown detection (`ClusterControlManager.registerBroker`): a new
        // incarnation whose `previousBrokerEpoch` (read from the clean-shutdown file it wrote on a
        // controlled shutdown) is not the epoch the controller holds did not shut down cleanly.
        // With ELR on it leaves every ISR and ELR before it registers. (Without ELR, or after a
        // clean shutdown, Kafka handles it as a fencing, which the fencing above or the session
        // timeout already did.)
        if let Some(b) = self.image.brokers.get(&r.broker_id) {
            let restarted = b.incarnation != r.incarnation;
            if restarted && b.broker_epoch != r.previous_broker_epoch && self.config.eligible_leader_replicas_enabled {
                self.unclean_shutdown(r.broker_id, fx);
            }
        }
        let broker_epoch = self.next_record_offset();
        self.append(
            MetadataRecord::RegisterBroker {
                broker_id: r.broker_id,
                broker_epoch,
                incarnation: r.incarnation,
                rack: r.rack,
            },
            fx,
        );
        self.sessions.insert(r.broker_id, Session::new(now, self.log.len() as i64));
        BrokerRegistrationResponse { error: ErrorCode::None, broker_epoch }
    }

    /// `BrokerHeartbeatManager.hasValidSession` (Kafka 3.x): a fenced broker has none; an unfenced
    /// one has one until `broker.session.timeout.ms` passes without a heartbeat.
    fn has_valid_session(&self, now: SimTime, broker: BrokerId) -> bool {
        self.image.is_unfenced(broker)
            && self
                .sessions
                .get(&broker)
                .is_some_and(|s| now.ms_since(s.last_heartbeat) < self.config.broker_session_timeout_ms)
    }

    /// `ReplicationControlManager.processBrokerHeartbeat` with the state machine of
    /// `BrokerHeartbeatManager.calculateNextBrokerState`: FENCED → UNFENCED once caught up with
    /// the registration record; UNFENCED + `want_shut_down` → CONTROLLED_SHUTDOWN if it leads
    /// anything (else SHUTDOWN_NOW); CONTROLLED_SHUTDOWN → SHUTDOWN_NOW once it leads nothing and
    /// every active broker has replayed the metadata past its controlled-shutdown offset;
    /// a fenced broker that wants to shut down may at once. SHUTDOWN_NOW fences it
    /// (`handleBrokerFenced`) and answers `should_shut_down`.
    fn broker_heartbeat(
        &mut self,
        now: SimTime,
        r: BrokerHeartbeatRequest,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) -> BrokerHeartbeatResponse {
        let current = self.image.brokers.get(&r.broker_id).map(|b| b.broker_epoch);
        let Some(session) = self.sessions.get_mut(&r.broker_id).filter(|_| current == Some(r.broker_epoch)) else {
            return BrokerHeartbeatResponse {
                error: ErrorCode::StaleBrokerEpoch,
                is_caught_up: false,
                is_fenced: true,
                should_shut_down: false,
            };
        };
        session.last_heartbeat = now;
        session.metadata_offset = r.current_metadata_offset;
        let caught_up = r.current_metadata_offset >= session.caught_up_offset;
        let mut should_shut_down = false;
        if !self.image.is_unfenced(r.broker_id) {
            if r.want_shut_down {
                should_shut_down = true;
            } else if caught_up {
                self.append(MetadataRecord::UnfenceBroker { broker_id: r.broker_id, broker_epoch: r.broker_epoch }, fx);
                self.elect_leaderless(fx);
                self.maybe_create_pending_topics(rng, fx);
            }
        } else if r.want_shut_down {
            let in_shutdown = self.sessions[&r.broker_id].controlled_shutdown_offset.is_some();
            if !in_shutdown && self.leads_anything(r.broker_id) {
                self.enter_controlled_shutdown(r.broker_id, r.broker_epoch, fx);
                let offset = self.log.len() as i64;
                self.sessions.get_mut(&r.broker_id).expect("present").controlled_shutdown_offset = Some(offset);
            } else if !self.leads_anything(r.broker_id)
                && self.sessions[&r.broker_id].controlled_shutdown_offset.unwrap_or(i64::MIN)
                    <= self.lowest_active_offset(r.broker_id)
            {
                self.fence(r.broker_id, FenceReason::ControlledShutdown, fx);
                should_shut_down = true;
            }
        }
        BrokerHeartbeatResponse {
            error: ErrorCode::None,
            is_caught_up: caught_up,
            is_fenced: !self.image.is_unfenced(r.broker_id),
            should_shut_down,
        }
    }

    /// `BrokersToIsrs.hasLeaderships`.
    fn leads_anything(&self, broker: BrokerId) -> bool {
        self.image.partitions.values().any(|p| p.leader == Some(broker))
    }

    /// `BrokerHeartbeatManager.lowestActiveOffset`: the least metadata offset reported by an
    /// active broker (unfenced, not shutting down), other than `except`.
    fn lowest_active_offset(&self, except: BrokerId) -> i64 {
        self.sessions
            .iter()
            .filter(|(id, _)| **id != except && self.image.is_active(**id))
            .map(|(_, s)| s.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// `ReplicationControlManager.handleBrokerInControlledShutdown`: mark the broker as shutting
    /// down, then remove it from every ISR it is in and elect new leaders for the partitions it
    /// led (`generateLeaderAndIsrUpdates` with it as the broker to remove). As with fencing, an
    /// ISR keeps its last member; a partition whose only ISR member is the leaving broker is left
    /// without a leader (it is no longer eligible).
    fn enter_controlled_shutdown(&mut self, broker: BrokerId, broker_epoch: i64, fx: &mut Effects) {
        if !self.image.brokers.get(&broker).is_some_and(|b| b.in_controlled_shutdown) {
            self.append(MetadataRecord::BrokerInControlledShutdown { broker_id: broker, broker_epoch }, fx);
        }
        self.remove_from_isrs(broker, fx);
    }

    fn alter_partition(&mut self, r: AlterPartitionRequest, fx: &mut Effects) -> AlterPartitionResponse {
        let reject = |error: ErrorCode, p: Option<&PartitionImage>| AlterPartitionResponse {
            partition: r.partition.clone(),
            error,
            leader: p.and_then(|p| p.leader),
            leader_epoch: p.map_or(-1, |p| p.leader_epoch),
            isr: p.map_or_else(Vec::new, |p| p.isr.clone()),
            partition_epoch: p.map_or(-1, |p| p.partition_epoch),
        };
        if self.image.brokers.get(&r.broker_id).map(|b| b.broker_epoch) != Some(r.broker_epoch) {
            return reject(ErrorCode::StaleBrokerEpoch, None);
        }
        let Some(p) = self.image.partitions.get(&r.partition).cloned() else {
            return reject(ErrorCode::UnknownTopicOrPartition, None);
        };
        if p.leader != Some(r.broker_id) {
            return reject(ErrorCode::NotLeaderOrFollower, Some(&p));
        }
        if r.leader_epoch != p.leader_epoch {
            return reject(ErrorCode::FencedLeaderEpoch, Some(&p));
        }
        if r.partition_epoch != p.partition_epoch {
            return reject(ErrorCode::InvalidUpdateVersion, Some(&p));
        }
        // KIP-841: only unfenced replicas not in controlled shutdown may join the ISR
        // (`ReplicationControlManager.validateAlterPartitionData`, `isEligibleReplica`).
        if r.new_isr.iter().any(|id| !p.isr.contains(id) && !self.image.is_active(*id))
            || !r.new_isr.contains(&r.broker_id)
        {
            return reject(ErrorCode::IneligibleReplica, Some(&p));
        }
        self.change_partition(&r.partition, r.new_isr.clone(), None, None, fx);
        let now = &self.image.partitions[&r.partition];
        AlterPartitionResponse {
            partition: r.partition.clone(),
            error: ErrorCode::None,
            leader: now.leader,
            leader_epoch: now.leader_epoch,
            isr: now.isr.clone(),
            partition_epoch: now.partition_epoch,
        }
    }

    fn on_timer(&mut self, now: SimTime, timer: Timer, fx: &mut Effects) {
        let offsets_before = self.log.len();
        match timer {
            Timer::SessionCheck => {
                let expired: Vec<BrokerId> = self
                    .sessions
                    .iter()
                    .filter(|(id, s)| {
                        self.image.is_unfenced(**id)
                            && now.ms_since(s.last_heartbeat) >= self.config.broker_session_timeout_ms
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for broker in expired {
                    self.fence(broker, FenceReason::SessionTimeout, fx);
                }
            }
            Timer::LeaderImbalanceCheck => {
                self.balance_scheduled = false;
                self.rebalance_leaders(fx);
            }
            Timer::MetadataFetchExpiry(broker) => {
                if let Some((node, correlation_id, offset)) = self.waiting_fetches.remove(&broker) {
                    self.send_metadata(node, correlation_id, offset, fx);
                }
            }
            Timer::WriteNoOp => self.write_no_op(now, fx),
            other => panic!("controller got a timer it never sets: {other:?}"),
        }
        if self.log.len() > offsets_before {
            self.answer_waiting_fetches(fx);
        }
        self.schedule_session_check(fx);
    }
}

impl StateMachine for Controller {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        match input {
            Input::Start if self.is_quorum_member() => self.quorum_start(now, rng, fx),
            Input::Start => {
                // A (re)started controller gives every registered broker a fresh session.
                let registered: Vec<BrokerId> = self.image.brokers.keys().copied().collect();
                for id in registered {
                    self.sessions.insert(id, Session::new(now, 0));
                }
                self.schedule_session_check(fx);
            }
            Input::Message { from, message: Message::Request { correlation_id, body } } => {
                if self.is_active() {
                    self.on_request(now, from, correlation_id, body, rng, fx)
                } else if let Some(answer) = quorum::not_controller_answer(&body) {
                    // `QuorumController`: only the active controller handles broker requests.
                    fx.send(from, Message::Response { correlation_id, body: answer });
                }
            }
            Input::Message { from, message: Message::Raft(m) } => self.quorum_message(now, from, m, rng, fx),
            Input::Message { .. } => {}
            Input::Timer(Timer::Raft(timer)) => self.quorum_timer(now, timer, rng, fx),
            Input::Timer(timer) if self.is_active() => self.on_timer(now, timer, fx),
            // A timer of an activity this controller renounced.
            Input::Timer(_) => {}
            // The controller has no controlled shutdown of its own in ksim: it stops at once.
            Input::Shutdown => fx.exit(),
            // Only clients time their connection setup.
            Input::ConnectionEstablished { .. } => {}
            Input::ConnectionClosed { peer } => {
                if let Some(broker) = peer.broker_id() {
                    if let Some((node, _, _)) = self.waiting_fetches.get(&broker) {
                        if *node == peer {
                            self.waiting_fetches.remove(&broker);
                            fx.cancel_timer(Timer::MetadataFetchExpiry(broker));
                        }
                    }
                }
            }
        }
        self.quorum_settle(now, rng, fx);
        if self.is_active() {
            self.maybe_schedule_balance(now, fx);
        }
        debug_check(self.node_id(), || self.check_invariants());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn placement_spreads_leaders_and_never_repeats_a_broker() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let brokers = [1, 2, 3];
        let assignment = Controller::place_replicas(&brokers, 6, 3, &mut rng);
        for replicas in &assignment {
            let mut sorted = replicas.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "{replicas:?}");
        }
        let mut leaders: Vec<BrokerId> = assignment.iter().map(|r| r[0]).collect();
        leaders.sort();
        assert_eq!(leaders, vec![1, 1, 2, 2, 3, 3], "each broker leads two of six partitions");
    }
}

#[cfg(test)]
mod election_tests {
    use super::*;
    use crate::version::KafkaVersion;
    use rand_chacha::rand_core::SeedableRng;

    /// A controller with brokers 1, 2, 3 registered, unfenced, and `payments` (RF 3, replicas
    /// [1, 2, 3]) created.
    struct Harness {
        controller: Controller,
        rng: rand_chacha::ChaCha8Rng,
        now: SimTime,
        epochs: BTreeMap<BrokerId, i64>,
    }

    impl Harness {
        /// Kafka 4.0 without ELR, as before KIP-966.
        fn new(unclean: bool) -> Harness {
            let config = TopicConfig { unclean_leader_election_enable: unclean, ..TopicConfig::default() };
            Harness::with(config, BrokerConfig::for_version(KafkaVersion::new(4, 0)))
        }

        fn with(config: TopicConfig, broker_config: BrokerConfig) -> Harness {
            let spec = TopicSpec {
                name: "payments".into(),
                partitions: 1,
                replication_factor: 3,
                assignment: vec![vec![1, 2, 3]],
                config,
            };
            let controller = Controller::new(3000, broker_config, 3, vec![spec], ControllerDisk::default());
            let mut h = Harness {
                controller,
                rng: rand_chacha::ChaCha8Rng::seed_from_u64(1),
                now: SimTime::ZERO,
                epochs: BTreeMap::new(),
            };
            h.input(Input::Start);
            for id in [1, 2, 3] {
                h.register(id);
            }
            for id in [1, 2, 3] {
                h.heartbeat(id);
            }
            h
        }

        fn input(&mut self, input: Input) -> Effects {
            let mut fx = Effects::default();
            self.controller.handle(self.now, input, &mut self.rng, &mut fx);
            fx
        }

        fn request(&mut self, from: BrokerId, body: Request) -> Response {
            let fx = self.input(Input::Message {
                from: NodeId::Broker(from),
                message: Message::Request { correlation_id: 9, body },
            });
            fx.sends
                .into_iter()
                .find_map(|(to, m)| match m {
                    Message::Response { correlation_id: 9, body } if to == NodeId::Broker(from) => Some(body),
                    _ => None,
                })
                .expect("the controller answers")
        }

        fn register(&mut self, id: BrokerId) {
            let r = self.register_incarnation(id, 1);
            assert_eq!(r.error, ErrorCode::None);
        }

        fn register_incarnation(&mut self, id: BrokerId, incarnation: u64) -> BrokerRegistrationResponse {
            let r = self.request(
                id,
                Request::BrokerRegistration(BrokerRegistrationRequest {
                    broker_id: id,
                    incarnation,
                    previous_broker_epoch: -1,
                    rack: None,
                }),
            );
            let Response::BrokerRegistration(r) = r else { panic!("{r:?}") };
            if r.error.is_none() {
                self.epochs.insert(id, r.broker_epoch);
            }
            r
        }

        fn heartbeat(&mut self, id: BrokerId) -> BrokerHeartbeatResponse {
            self.heartbeat_wanting(id, false)
        }

        fn heartbeat_wanting(&mut self, id: BrokerId, want_shut_down: bool) -> BrokerHeartbeatResponse {
            let offset = self.controller.log().len() as i64;
            let epoch = self.epochs[&id];
            let r = self.request(
                id,
                Request::BrokerHeartbeat(BrokerHeartbeatRequest {
                    broker_id: id,
                    broker_epoch: epoch,
                    current_metadata_offset: offset,
                    want_shut_down,
                }),
            );
            let Response::BrokerHeartbeat(r) = r else { panic!("{r:?}") };
            r
        }

        /// Let `ms` pass with only `alive` heartbeating, then run the session check.
        fn silence(&mut self, ms: u64, alive: &[BrokerId]) {
            let end = self.now.plus_ms(ms);
            while self.now < end {
                self.now = self.now.plus_ms(1_000).min(end);
                for id in alive {
                    self.heartbeat(*id);
                }
                self.input(Input::Timer(Timer::SessionCheck));
            }
        }

        fn partition(&self) -> PartitionImage {
            self.controller.image().partitions[&TopicPartition::new("payments", 0)].clone()
        }
    }

    #[test]
    fn topic_creation_elects_the_first_assigned_replica() {
        let h = Harness::new(false);
        let p = h.partition();
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (Some(1), 0, vec![1, 2, 3]));
    }

    #[test]
    fn a_silent_leader_is_fenced_and_the_next_isr_replica_takes_over() {
        let mut h = Harness::new(false);
        h.silence(10_000, &[2, 3]);
        let p = h.partition();
        assert_eq!(p.leader, Some(2), "first replica in assignment order that is in the ISR");
        assert_eq!(p.leader_epoch, 1, "a new leader means a new epoch");
        assert_eq!(p.isr, vec![2, 3], "the fenced broker leaves the ISR");
    }

    #[test]
    fn the_last_isr_member_stays_in_the_isr_and_the_partition_goes_offline() {
        let mut h = Harness::new(false);
        h.silence(10_000, &[1]); // brokers 2 and 3 go silent: ISR shrinks to [1]
        assert_eq!(h.partition().isr, vec![1]);
        h.heartbeat(2);
        h.silence(10_000, &[2]); // now broker 1 goes silent
        let p = h.partition();
        assert_eq!((p.leader, p.isr.clone()), (None, vec![1]), "no clean candidate; ISR keeps its last member");
    }

    /// KIP-966 (Kafka 4.1: ELR on), RF 3, min ISR 2. Brokers 3 then 2 go silent: the ISR shrinks
    /// to [1] and broker 2, removed while the ISR fell below min ISR, joins the ELR (broker 3 left
    /// while two were still in sync). Then broker 1 goes silent: the ISR empties, broker 1 joins the
    /// ELR, and broker 2, once it heartbeats again, is elected from the ELR with an ISR of itself.
    fn elr_harness() -> Harness {
        let config = TopicConfig { min_insync_replicas: 2, ..TopicConfig::default() };
        Harness::with(config, BrokerConfig::for_version(KafkaVersion::new(4, 1)))
    }

    #[test]
    fn with_elr_a_replica_removed_below_min_isr_is_elected_when_the_isr_empties() {
        let mut h = elr_harness();
        h.silence(10_000, &[1, 2]);
        assert_eq!((h.partition().isr, h.partition().elr), (vec![1, 2], vec![]), "at min ISR: no ELR");
        h.silence(10_000, &[1]);
        assert_eq!((h.partition().isr, h.partition().elr), (vec![1], vec![2]), "below min ISR: 2 joins the ELR");
        h.silence(10_000, &[]);
        let p = h.partition();
        assert_eq!((p.leader, p.isr.clone(), p.elr.clone()), (None, vec![], vec![1, 2]), "the ISR may be empty");
        h.heartbeat(2);
        let p = h.partition();
        assert_eq!((p.leader, p.isr.clone(), p.elr.clone()), (Some(2), vec![2], vec![1]), "2 leads from the ELR");
    }

    #[test]
    fn with_elr_a_broker_that_restarts_uncleanly_leaves_the_elr() {
        let mut h = elr_harness();
        h.silence(10_000, &[1, 2]);
        h.silence(10_000, &[1]);
        h.silence(10_000, &[]);
        assert_eq!(h.partition().elr, vec![1, 2]);
        // Broker 2 restarts (a new incarnation) without a clean-shutdown file.
        let r = h.request(
            2,
            Request::BrokerRegistration(BrokerRegistrationRequest {
                broker_id: 2,
                incarnation: 2,
                previous_broker_epoch: -1,
                rack: None,
            }),
        );
        let Response::BrokerRegistration(r) = r else { panic!("{r:?}") };
        h.epochs.insert(2, r.broker_epoch);
        assert_eq!(h.partition().elr, vec![1], "an unclean shutdown is no longer eligible");
        h.heartbeat(2);
        assert_eq!(h.partition().leader, None, "so it does not lead: the partition waits for broker 1");
    }

    #[test]
    fn unclean_election_picks_a_live_out_of_sync_replica() {
        let mut h = Harness::new(true);
        h.silence(10_000, &[1]);
        h.silence(10_000, &[2]);
        let p = h.partition();
        assert_eq!(p.leader, Some(2), "with unclean.leader.election.enable, an out-of-sync replica leads");
        assert_eq!(p.isr, vec![2]);
    }

    #[test]
    fn alter_partition_is_fenced_by_leader_and_partition_epoch() {
        let mut h = Harness::new(false);
        let p = h.partition();
        let alter = |leader_epoch, partition_epoch, new_isr: Vec<BrokerId>, epoch| {
            Request::AlterPartition(AlterPartitionRequest {
                broker_id: 1,
                broker_epoch: epoch,
                partition: TopicPartition::new("payments", 0),
                leader_epoch,
                partition_epoch,
                new_isr,
            })
        };
        let e1 = h.epochs[&1];
        let cases = [
            (alter(p.leader_epoch + 1, p.partition_epoch, vec![1, 2], e1), ErrorCode::FencedLeaderEpoch),
            (alter(p.leader_epoch, p.partition_epoch + 5, vec![1, 2], e1), ErrorCode::InvalidUpdateVersion),
            (alter(p.leader_epoch, p.partition_epoch, vec![1, 2], e1 + 100), ErrorCode::StaleBrokerEpoch),
            (alter(p.leader_epoch, p.partition_epoch, vec![1, 2], e1), ErrorCode::None),
        ];
        for (request, expected) in cases {
            let Response::AlterPartition(r) = h.request(1, request) else { panic!() };
            assert_eq!(r.error, expected);
        }
        assert_eq!(h.partition().isr, vec![1, 2]);
        assert_eq!(h.partition().partition_epoch, p.partition_epoch + 1);
    }

    #[test]
    fn preferred_leader_takes_leadership_back() {
        let mut h = Harness::new(false);
        h.silence(10_000, &[2, 3]);
        assert_eq!(h.partition().leader, Some(2));
        // Broker 1 returns and rejoins the ISR.
        h.register(1);
        h.heartbeat(1);
        let p = h.partition();
        let epoch = h.epochs[&2];
        let r = h.request(
            2,
            Request::AlterPartition(AlterPartitionRequest {
                broker_id: 2,
                broker_epoch: epoch,
                partition: TopicPartition::new("payments", 0),
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr: vec![2, 3, 1],
            }),
        );
        assert!(matches!(r, Response::AlterPartition(AlterPartitionResponse { error: ErrorCode::None, .. })));
        h.input(Input::Timer(Timer::LeaderImbalanceCheck));
        assert_eq!(h.partition().leader, Some(1));
    }

    /// `ClusterControlManager.registerBroker`: a restarted broker (new incarnation) is refused
    /// while its old incarnation's session is valid; the old one is fenced only when the session
    /// expires, and then the new one registers.
    #[test]
    fn a_fast_restart_is_refused_until_the_old_session_expires() {
        let mut h = Harness::new(false);
        h.now = h.now.plus_ms(1_000);
        let r = h.register_incarnation(1, 2);
        assert_eq!(r.error, ErrorCode::DuplicateBrokerRegistration);
        assert_eq!(h.partition().leader, Some(1), "nothing moves while the old session is valid");
        h.silence(7_000, &[2, 3]);
        assert_eq!(h.register_incarnation(1, 2).error, ErrorCode::DuplicateBrokerRegistration);
        assert_eq!(h.partition().leader, Some(1));
        h.silence(2_000, &[2, 3]); // 9 s since broker 1's last heartbeat: its session expires
        assert_eq!(h.partition().leader, Some(2), "fenced at broker.session.timeout.ms");
        assert_eq!(h.register_incarnation(1, 2).error, ErrorCode::None);
    }

    /// The same incarnation registering again (it lost its epoch) is not a duplicate.
    #[test]
    fn the_same_incarnation_may_register_again() {
        let mut h = Harness::new(false);
        assert_eq!(h.register_incarnation(1, 1).error, ErrorCode::None);
    }

    /// `BrokerHeartbeatManager.calculateNextBrokerState`: UNFENCED + want_shut_down with
    /// leaderships → CONTROLLED_SHUTDOWN (leaderships move, ISR shrinks); SHUTDOWN_NOW once it
    /// leads nothing and the active brokers have replayed the change.
    #[test]
    fn controlled_shutdown_moves_leadership_before_letting_the_broker_go() {
        let mut h = Harness::new(false);
        let r = h.heartbeat_wanting(1, true);
        assert!(!r.should_shut_down, "it still led payments-0 when it asked");
        let p = h.partition();
        assert_eq!((p.leader, p.isr.clone()), (Some(2), vec![2, 3]), "leadership moved, broker 1 left the ISR");
        assert!(h.controller.image().is_unfenced(1) && !h.controller.image().is_active(1));
        // Brokers 2 and 3 have not reported replaying the change yet.
        assert!(!h.heartbeat_wanting(1, true).should_shut_down);
        h.heartbeat(2);
        h.heartbeat(3);
        let r = h.heartbeat_wanting(1, true);
        assert!(r.should_shut_down && r.is_fenced, "{r:?}");
    }

    /// A broker that leads nothing is let go at once.
    #[test]
    fn a_broker_leading_nothing_shuts_down_at_once() {
        let mut h = Harness::new(false);
        let r = h.heartbeat_wanting(3, true);
        assert!(r.should_shut_down);
        assert_eq!(h.partition().isr, vec![1, 2]);
    }

    /// `QuorumController.maybeScheduleNextBalancePartitionLeaders`: no balance task while leaders
    /// are balanced; one `leader.imbalance.check.interval.seconds` after an imbalance appears.
    #[test]
    fn the_balance_task_is_scheduled_when_an_imbalance_appears() {
        let balance_timer = |fx: &Effects| {
            fx.timer_ops.iter().find_map(|op| match op {
                crate::effects::TimerOp::Set(Timer::LeaderImbalanceCheck, at) => Some(*at),
                _ => None,
            })
        };
        let mut h = Harness::new(false);
        assert!(!h.controller.balance_scheduled, "balanced from the start: nothing scheduled");
        h.now = h.now.plus_ms(100_000);
        let r = h.heartbeat_wanting(1, true); // moves payments-0 away from its preferred leader
        assert!(!r.should_shut_down);
        assert!(h.controller.balance_scheduled);
        // The heartbeat's effects set the timer 300 s after the imbalance appeared.
        let mut fx = Effects::default();
        h.controller.balance_scheduled = false;
        h.controller.maybe_schedule_balance(h.now, &mut fx);
        assert_eq!(balance_timer(&fx), Some(h.now.plus_ms(300_000)));
    }

    #[test]
    fn invariant_the_image_is_the_fold_of_the_log() {
        let mut h = Harness::new(false);
        assert_eq!(h.controller.check_invariants(), Ok(()));
        h.controller.image.next_offset += 1;
        assert!(h.controller.check_invariants().unwrap_err().contains("log holds"));
        h.controller.image.next_offset -= 1;
        let tp = TopicPartition::new("payments", 0);
        h.controller.image.partitions.get_mut(&tp).expect("created").isr = vec![2, 3];
        assert!(h.controller.check_invariants().unwrap_err().contains("not in the ISR"));
    }
}
