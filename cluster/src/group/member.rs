//! A consumer's side of the group protocol.
//!
//! The member finds its coordinator (FindCoordinator), joins (JoinGroup, twice for a new member:
//! KIP-394), and if it is chosen leader computes everyone's assignment with the agreed assignor;
//! then it syncs (SyncGroup) to learn its own share. From then on it heartbeats every
//! `heartbeat.interval.ms`; an answer of REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION or
//! UNKNOWN_MEMBER_ID sends it back to join.
//!
//! **Eager** rebalancing (range, round-robin, sticky) revokes *every* partition before rejoining:
//! the whole group stops reading until the rebalance ends. **Cooperative** rebalancing
//! (cooperative-sticky, KIP-429) keeps its partitions while rejoining; after the sync it revokes
//! only the partitions that move elsewhere, and if it revoked any, rejoins at once so that a
//! follow-up rebalance can give them to their new owner.
//!
//! If the application does not call `poll` within `max.poll.interval.ms`, the member leaves the
//! group on its own (its partitions go to others) and rejoins at the next poll. A static member
//! (`group.instance.id`) sends no LeaveGroup, then or when the consumer closes: its place waits
//! for it until its session times out. FENCED_INSTANCE_ID and INCONSISTENT_GROUP_PROTOCOL are
//! fatal: the member stops for good.

use crate::client_metadata::ClientMetadata;
use crate::config::ConsumerConfig;
use crate::connect::worker_coordinator::WorkerCoordinator;
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::group::assignor::{AssignorKind, MemberSubscription, RebalanceProtocol};
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not in the group (not subscribed, or kicked out until the next poll).
    Idle,
    Joining,
    Syncing,
    Stable,
}

/// What the consumer must do as a result of a membership change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberEvent {
    /// Start reading these partitions (look up their committed offsets first).
    Assigned(Vec<TopicPartition>),
    /// Stop reading these partitions. `lost`: without committing first.
    Revoked { partitions: Vec<TopicPartition>, lost: bool },
    /// A commit came back.
    Committed { error: ErrorCode, offsets: Vec<(TopicPartition, i64)> },
    /// Committed offsets for partitions just assigned (-1: none).
    CommittedOffsets(Vec<(TopicPartition, i64)>),
}

#[derive(Clone, Debug)]
enum Pending {
    FindCoordinator,
    Join,
    Sync,
    Heartbeat,
    Leave,
    /// The offsets, and the generation they were committed in.
    Commit(Vec<(TopicPartition, i64)>, i32),
    OffsetFetch(Vec<TopicPartition>),
}

pub struct GroupMember {
    group_id: String,
    client_id: String,
    instance_id: Option<String>,
    config: ConsumerConfig,
    topics: Vec<String>,
    pub phase: Phase,
    coordinator: Option<BrokerId>,
    /// Since when the member has been looking for its coordinator (a worker revokes its
    /// assignment once it has looked for `heartbeat.interval.ms`).
    coordinator_unknown_since: Option<SimTime>,
    /// The last heartbeat answer that kept the session alive (`Heartbeat.receiveHeartbeat`),
    /// or when the member became Stable (`resetTimeouts`).
    heartbeat_answered_at: SimTime,
    member_id: String,
    generation: i32,
    /// Partitions owned now.
    owned: Vec<TopicPartition>,
    /// What an eager member owned before it revoked everything to rejoin: the eager `sticky`
    /// assignor still wants it (Kafka sends it in the subscription's user data).
    previous: Vec<TopicPartition>,
    /// Requests in flight: what, and to which broker.
    pending: BTreeMap<u64, (Pending, BrokerId)>,
    /// The application called poll at this time (for `max.poll.interval.ms`).
    last_poll: SimTime,
    /// A follow-up join is needed once the current exchange ends.
    rejoin_needed: bool,
    /// The application's rebalance listener still handles a revocation (a Streams thread
    /// commits its revoked tasks in `onPartitionsRevoked`): the member rejoins only after it
    /// returns, as Java's `ConsumerCoordinator.onJoinPrepare` runs the listener before the
    /// JoinGroup is sent.
    pub listener_busy: bool,
    retry_at: SimTime,
    /// A fatal error ended this member for good (FENCED_INSTANCE_ID, INCONSISTENT_GROUP_PROTOCOL):
    /// it does nothing more, as the Java consumer, whose every later `poll` throws, does nothing.
    failed: Option<ErrorCode>,
    /// Left the group because the application did not poll in time; its partitions are given up
    /// at the next poll, as Kafka's `onPartitionsLost` does.
    kicked_out_at: Option<SimTime>,
    /// An OffsetFetch answered UNSTABLE_OFFSET_COMMIT: ask again for these partitions at this
    /// time (`ConsumerCoordinator.fetchCommittedOffsets` retries after `retry.backoff.ms`).
    refetch: Option<(Vec<TopicPartition>, SimTime)>,
    /// The protocol the group agreed on at the last JoinGroup.
    protocol_name: Option<String>,
    /// A Connect worker's membership (`WorkerCoordinator`) instead of a consumer's
    /// (`ConsumerCoordinator`): protocol type `connect`, no partitions.
    worker: Option<WorkerCoordinator>,
}

fn protocol_of(strategies: &[String]) -> RebalanceProtocol {
    // Kafka picks COOPERATIVE only if every configured assignor supports it.
    let all_cooperative = strategies
        .iter()
        .all(|s| AssignorKind::from_str(s).map(|k| k.protocol() == RebalanceProtocol::Cooperative).unwrap_or(false));
    if all_cooperative && !strategies.is_empty() {
        RebalanceProtocol::Cooperative
    } else {
        RebalanceProtocol::Eager
    }
}

impl GroupMember {
    pub fn new(group_id: String, client_id: String, config: ConsumerConfig) -> Self {
        GroupMember {
            group_id,
            client_id,
            instance_id: config.group_instance_id.clone(),
            config,
            topics: Vec::new(),
            phase: Phase::Idle,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            owned: Vec::new(),
            previous: Vec::new(),
            pending: BTreeMap::new(),
            last_poll: SimTime::ZERO,
            rejoin_needed: false,
            listener_busy: false,
            coordinator_unknown_since: None,
            heartbeat_answered_at: SimTime::ZERO,
            retry_at: SimTime::ZERO,
            failed: None,
            kicked_out_at: None,
            refetch: None,
            protocol_name: None,
            worker: None,
        }
    }

    /// A Connect worker's group member (`WorkerGroupMember`): it joins at once.
    pub fn new_worker(group_id: String, client_id: String, config: ConsumerConfig, worker: WorkerCoordinator) -> Self {
        let mut member = GroupMember::new(group_id, client_id, config);
        member.worker = Some(worker);
        member.phase = Phase::Joining;
        member
    }

    /// The worker's side of its group, for a Connect worker's member.
    pub fn worker(&self) -> Option<&WorkerCoordinator> {
        self.worker.as_ref()
    }

    /// Whether the member wants to be in its group: subscribed, or a worker that has not left.
    fn wants_group(&self) -> bool {
        !self.topics.is_empty() || self.worker.as_ref().is_some_and(|w| w.active)
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn owned(&self) -> &[TopicPartition] {
        &self.owned
    }

    /// `group.instance.id`, for a static member.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    fn protocol(&self) -> RebalanceProtocol {
        protocol_of(&self.config.partition_assignment_strategy)
    }

    fn name(&self) -> String {
        if self.member_id.is_empty() {
            self.client_id.clone()
        } else {
            self.member_id.clone()
        }
    }

    pub fn subscribe(&mut self, topics: Vec<String>, now: SimTime) {
        self.topics = topics;
        self.last_poll = now;
        if self.phase == Phase::Idle {
            self.phase = Phase::Joining;
        } else {
            self.rejoin_needed = true;
        }
    }

    /// Kicked out for not polling in time: the next `drive` after a poll gives up every owned
    /// partition as lost.
    pub fn kicked_out(&self) -> bool {
        self.kicked_out_at.is_some()
    }

    /// The application polled: it is alive. A member that was kicked out rejoins.
    pub fn on_poll(&mut self, now: SimTime) {
        self.last_poll = now;
        if self.phase == Phase::Idle && self.wants_group() && self.kicked_out_at.is_none() && self.failed.is_none() {
            self.phase = Phase::Joining;
        }
    }

    fn send(
        &mut self,
        to: BrokerId,
        now: SimTime,
        body: Request,
        what: Pending,
        next_correlation: &mut u64,
        fx: &mut Effects,
    ) {
        let id = *next_correlation;
        *next_correlation += 1;
        self.pending.insert(id, (what, to));
        // A JoinGroup may wait for the whole rebalance: Kafka allows it the rebalance timeout plus 5 s.
        let timeout_ms = if matches!(body, Request::JoinGroup(_)) {
            self.config.request_timeout_ms.max(self.config.max_poll_interval_ms + 5_000)
        } else {
            self.config.request_timeout_ms
        };
        fx.set_timer(Timer::RequestTimeout(id), now.plus_ms(timeout_ms));
        fx.send(NodeId::Broker(to), Message::Request { correlation_id: id, body });
    }

    fn waiting_for(&self, f: impl Fn(&Pending) -> bool) -> bool {
        self.pending.values().any(|(p, _)| f(p))
    }

    /// Send whatever the membership needs next. Returns events for the consumer.
    pub fn drive(
        &mut self,
        now: SimTime,
        metadata: &ClientMetadata,
        next_correlation: &mut u64,
        fx: &mut Effects,
    ) -> Vec<MemberEvent> {
        let mut events = Vec::new();
        if self.failed.is_some() {
            return events;
        }
        if !self.wants_group() || now < self.retry_at {
            if now < self.retry_at {
                fx.set_timer(Timer::ConsumerWakeup, self.retry_at);
            }
            return events;
        }
        // max.poll.interval.ms: a stuck application must not hold partitions forever.
        if matches!(self.phase, Phase::Stable | Phase::Syncing | Phase::Joining)
            && now.ms_since(self.last_poll) > self.config.max_poll_interval_ms
        {
            fx.note(Note::PollIntervalExceeded {
                group: self.group_id.clone(),
                member: self.name(),
                waited_ms: now.ms_since(self.last_poll),
                static_member: self.instance_id.is_some(),
            });
            // Kafka's handlePollTimeoutExpiry -> maybeLeaveGroup: a dynamic member leaves; a static
            // one sends nothing (KIP-345), keeps its place until its session times out, and on
            // its next poll rejoins under its instance id: the coordinator gives it its old
            // partitions back without a rebalance if the group is still Stable.
            self.maybe_leave_group(now, next_correlation, fx);
            // The application still believes it owns its partitions until it polls again; a
            // commit it makes meanwhile is rejected (it is no longer a member).
            self.member_id.clear();
            self.generation = -1;
            self.phase = Phase::Idle;
            self.kicked_out_at = Some(now);
            return events;
        }
        if let Some(at) = self.kicked_out_at {
            if self.last_poll > at {
                // The application polled again: its partitions are lost; it rejoins.
                self.kicked_out_at = None;
                if !self.owned.is_empty() {
                    fx.note(Note::PartitionsRevoked {
                        group: self.group_id.clone(),
                        member: self.name(),
                        generation: self.generation,
                        partitions: self.owned.clone(),
                        lost: true,
                        kept: 0,
                    });
                    events.push(self.lose_all());
                }
                self.phase = Phase::Joining;
            } else {
                return events;
            }
        }
        // Without a coordinator nothing else can happen: find it first. Finding a new
        // coordinator does not change membership: a Stable member keeps its generation and
        // simply heartbeats to the new one.
        if self.coordinator.is_none() {
            if let (Some(worker), Some(since)) = (self.worker.as_mut(), self.coordinator_unknown_since) {
                // `WorkerCoordinator.poll`: discovery gets `heartbeat.interval.ms`; a worker that
                // still has no coordinator then stops what it runs (KAFKA-9184).
                // (The worker polls its membership on every loop, so no timer is needed.)
                if now >= since.plus_ms(self.config.heartbeat_interval_ms) {
                    let mut notes = Vec::new();
                    worker.on_coordinator_unreachable(&mut notes);
                    if !notes.is_empty() {
                        // With no assignment left the worker must rejoin once it finds the
                        // coordinator, after it has stopped everything.
                        self.rejoin_needed = true;
                        self.listener_busy = true;
                    }
                    for note in notes {
                        fx.note(Note::Connect(Box::new(note)));
                    }
                }
            }
            if self.phase != Phase::Idle && !self.waiting_for(|p| matches!(p, Pending::FindCoordinator)) {
                let brokers = metadata.known_brokers();
                if let Some(&broker) = brokers.get((*next_correlation as usize) % brokers.len().max(1)) {
                    let body = Request::FindCoordinator(FindCoordinatorRequest {
                        group_id: self.group_id.clone(),
                        key_type: CoordinatorType::Group,
                    });
                    self.send(broker, now, body, Pending::FindCoordinator, next_correlation, fx);
                }
            }
            return events;
        }
        match self.phase {
            Phase::Idle | Phase::Syncing => {}
            Phase::Joining => {
                // A commit of revoked partitions must land before we rejoin (onJoinPrepare).
                if !self.waiting_for(|p| matches!(p, Pending::Join)) && !self.commit_in_flight() && !self.listener_busy
                {
                    self.send_join(now, next_correlation, fx, &mut events);
                }
            }
            Phase::Stable => {
                if let Some(worker) = self.worker.as_mut() {
                    // The leader's delay ran out (`DistributedHerder.tick`: `member.requestRejoin()`
                    // once `scheduledRebalance` passed).
                    if worker.take_due_rejoin(now) {
                        self.rejoin_needed = true;
                    } else if let Some(at) = worker.rejoin_at() {
                        fx.set_timer(Timer::ConsumerWakeup, at);
                    }
                }
                if self.rejoin_needed && !self.waiting_for(|p| matches!(p, Pending::Commit(..))) && !self.listener_busy
                {
                    self.rejoin_needed = false;
                    self.phase = Phase::Joining;
                    self.send_join(now, next_correlation, fx, &mut events);
                } else if self.refetch.is_some() && !self.waiting_for(|p| matches!(p, Pending::OffsetFetch(_))) {
                    self.maybe_refetch(now, next_correlation, fx);
                }
            }
        }
        events
    }

    fn send_join(&mut self, now: SimTime, next_correlation: &mut u64, fx: &mut Effects, events: &mut Vec<MemberEvent>) {
        let Some(coordinator) = self.coordinator else { return };
        // The next assignment fetches its own committed offsets.
        self.refetch = None;
        if let Some(worker) = self.worker.as_mut() {
            // `WorkerCoordinator.onJoinPrepare` (eager: stop everything), then `metadata()`. The
            // herder stops the work before the JoinGroup goes out: wait for the worker.
            if !worker.on_join_prepare().is_empty() {
                self.listener_busy = true;
                return;
            }
            let body = Request::JoinGroup(JoinGroupRequest {
                group_id: self.group_id.clone(),
                client_id: self.client_id.clone(),
                member_id: self.member_id.clone(),
                group_instance_id: None,
                session_timeout_ms: self.config.session_timeout_ms,
                rebalance_timeout_ms: self.config.max_poll_interval_ms,
                protocol_type: ProtocolType::Connect,
                protocols: worker.metadata(),
            });
            self.send(coordinator, now, body, Pending::Join, next_correlation, fx);
            return;
        }
        if self.protocol() == RebalanceProtocol::Eager && !self.owned.is_empty() {
            // Eager: give everything up before joining. (The consumer commits first if it
            // auto-commits: see `Consumer::on_member_events`.)
            let partitions = std::mem::take(&mut self.owned);
            self.previous = partitions.clone();
            fx.note(Note::PartitionsRevoked {
                group: self.group_id.clone(),
                member: self.name(),
                generation: self.generation,
                partitions: partitions.clone(),
                lost: false,
                kept: 0,
            });
            events.push(MemberEvent::Revoked { partitions, lost: false });
            // The consumer commits the revoked partitions now; drive() joins once that is done.
            return;
        }
        let owned =
            if self.protocol() == RebalanceProtocol::Eager { self.previous.clone() } else { self.owned.clone() };
        let subscription =
            Subscription { topics: self.topics.clone(), owned_partitions: owned, generation: self.generation };
        let protocols = self
            .config
            .partition_assignment_strategy
            .iter()
            .map(|s| (s.clone(), MemberMetadata::Consumer(subscription.clone())))
            .collect();
        let body = Request::JoinGroup(JoinGroupRequest {
            group_id: self.group_id.clone(),
            client_id: self.client_id.clone(),
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.max_poll_interval_ms,
            protocol_type: ProtocolType::Consumer,
            protocols,
        });
        self.send(coordinator, now, body, Pending::Join, next_correlation, fx);
    }

    /// Give up every partition without committing (kicked out, or the generation is gone).
    fn lose_all(&mut self) -> MemberEvent {
        let partitions = std::mem::take(&mut self.owned);
        MemberEvent::Revoked { partitions, lost: true }
    }

    fn rejoin_from_scratch(&mut self, fx: &mut Effects, events: &mut Vec<MemberEvent>, reset_member: bool) {
        if !self.owned.is_empty() {
            fx.note(Note::PartitionsRevoked {
                group: self.group_id.clone(),
                member: self.name(),
                generation: self.generation,
                partitions: self.owned.clone(),
                lost: true,
                kept: 0,
            });
            events.push(self.lose_all());
        }
        if reset_member {
            self.member_id.clear();
        }
        self.generation = -1;
        self.phase = Phase::Joining;
    }

    /// A fatal error: give up every partition and take no further part. FENCED_INSTANCE_ID (a
    /// newer process holds our `group.instance.id`) is fatal to the Java consumer from a
    /// JoinGroup, SyncGroup or Heartbeat, and from an OffsetCommit of the current generation
    /// (`AbstractCoordinator`'s and `ConsumerCoordinator`'s response handlers:
    /// FencedInstanceIdException); INCONSISTENT_GROUP_PROTOCOL and INVALID_SESSION_TIMEOUT from a
    /// JoinGroup are too (`JoinGroupResponseHandler` raises them; `poll()` throws).
    fn fail(&mut self, error: ErrorCode, fx: &mut Effects, events: &mut Vec<MemberEvent>) {
        let member = self.name();
        self.rejoin_from_scratch(fx, events, true);
        self.failed = Some(error);
        self.phase = Phase::Idle;
        fx.note(Note::MemberFailed { group: self.group_id.clone(), member, error });
    }

    /// The error that put this member out of the group for good, if one did: the application's
    /// `poll` throws it.
    pub fn fatal_error(&self) -> Option<ErrorCode> {
        self.failed
    }

    /// The coordinator moved or died: find it again. A sync in flight is lost, so rejoin.
    fn coordinator_lost(&mut self, now: SimTime) {
        self.coordinator = None;
        self.coordinator_unknown_since.get_or_insert(now);
        if self.phase == Phase::Syncing {
            self.phase = Phase::Joining;
        }
        self.retry_at = now.plus_ms(self.config.retry_backoff_ms);
    }

    /// Commit these offsets (the consumer's positions) to the coordinator.
    pub fn commit(
        &mut self,
        now: SimTime,
        offsets: Vec<(TopicPartition, i64)>,
        next_correlation: &mut u64,
        fx: &mut Effects,
    ) -> bool {
        let Some(coordinator) = self.coordinator.filter(|_| self.failed.is_none()) else { return false };
        if offsets.is_empty() {
            return false;
        }
        let body = Request::OffsetCommit(OffsetCommitRequest {
            group_id: self.group_id.clone(),
            generation: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            offsets: offsets.clone(),
        });
        let generation = self.generation;
        self.send(coordinator, now, body, Pending::Commit(offsets, generation), next_correlation, fx);
        true
    }

    /// Whether a commit must fail at once because this member is not part of an active group
    /// (`ConsumerCoordinator.sendOffsetCommitRequest`: with no stable generation "the only thing
    /// we can do is fail the commit and let the user rejoin the group in poll()":
    /// RebalanceInProgressException while rebalancing, CommitFailedException otherwise). A member
    /// kicked out by `max.poll.interval.ms` is in the second case; it does not wait for a
    /// coordinator. Notes the failure.
    pub fn refuse_commit(&self, fx: &mut Effects) -> Option<ErrorCode> {
        let error = match self.phase {
            Phase::Stable => return None,
            // The rebalance listener runs in `onJoinPrepare`, before `initiateJoinGroup` leaves
            // the generation: its commit goes out with the generation it still holds.
            Phase::Joining if self.listener_busy => return None,
            Phase::Joining | Phase::Syncing => ErrorCode::RebalanceInProgress,
            // CommitFailedException: the generation is gone (ILLEGAL_GENERATION is its nearest
            // Kafka error code).
            Phase::Idle => ErrorCode::IllegalGeneration,
        };
        fx.note(Note::CommitFailed { group: self.group_id.clone(), member: self.name(), error });
        Some(error)
    }

    pub fn commit_in_flight(&self) -> bool {
        self.waiting_for(|p| matches!(p, Pending::Commit(..)))
    }

    /// Ask for the committed offsets of newly assigned partitions.
    pub fn fetch_offsets(
        &mut self,
        now: SimTime,
        partitions: Vec<TopicPartition>,
        next_correlation: &mut u64,
        fx: &mut Effects,
    ) {
        let Some(coordinator) = self.coordinator else {
            // Asked once a coordinator is found.
            self.refetch = Some((partitions, now));
            return;
        };
        let body = Request::OffsetFetch(OffsetFetchRequest {
            group_id: self.group_id.clone(),
            partitions: partitions.clone(),
            require_stable: true,
        });
        self.send(coordinator, now, body, Pending::OffsetFetch(partitions), next_correlation, fx);
    }

    /// Send an OffsetFetch that waits for a transaction to end, once its backoff is over.
    fn maybe_refetch(&mut self, now: SimTime, next_correlation: &mut u64, fx: &mut Effects) {
        let Some((partitions, at)) = self.refetch.take() else { return };
        if now < at || self.coordinator.is_none() {
            fx.set_timer(Timer::ConsumerWakeup, at.max(now.plus_ms(1)));
            self.refetch = Some((partitions, at));
            return;
        }
        // Only partitions still owned.
        let partitions: Vec<TopicPartition> = partitions.into_iter().filter(|tp| self.owned.contains(tp)).collect();
        if !partitions.is_empty() {
            self.fetch_offsets(now, partitions, next_correlation, fx);
        }
    }

    pub fn heartbeat_due(&mut self, now: SimTime, next_correlation: &mut u64, fx: &mut Effects) {
        // The heartbeat thread's session check (`Heartbeat.sessionTimeoutExpired`): no answer for
        // a whole session, so the coordinator may be gone or cut off: find it again. (Before
        // `request.timeout.ms` when the session is shorter, as a Connect worker's 10 s is.)
        if self.phase == Phase::Stable
            && self.coordinator.is_some()
            && now.ms_since(self.heartbeat_answered_at) >= self.config.session_timeout_ms
        {
            fx.note(Note::CoordinatorUnreachable {
                group: self.group_id.clone(),
                member: self.name(),
                session_timeout_ms: self.config.session_timeout_ms,
            });
            self.coordinator_lost(now);
            self.heartbeat_answered_at = now;
        }
        if matches!(self.phase, Phase::Stable | Phase::Syncing)
            && !self.waiting_for(|p| matches!(p, Pending::Heartbeat))
        {
            if let Some(coordinator) = self.coordinator {
                let body = Request::Heartbeat(HeartbeatRequest {
                    group_id: self.group_id.clone(),
                    generation: self.generation,
                    member_id: self.member_id.clone(),
                    group_instance_id: self.instance_id.clone(),
                });
                self.send(coordinator, now, body, Pending::Heartbeat, next_correlation, fx);
            }
        }
        if self.wants_group() && self.failed.is_none() {
            fx.set_timer(Timer::GroupHeartbeat, now.plus_ms(self.config.heartbeat_interval_ms));
        }
    }

    pub fn owns_request(&self, correlation_id: u64) -> bool {
        self.pending.contains_key(&correlation_id)
    }

    /// The connection to `peer` closed: if it was the coordinator, every request to it failed.
    pub fn on_connection_closed(&mut self, now: SimTime, peer: NodeId, fx: &mut Effects) -> Vec<MemberEvent> {
        let mut events = Vec::new();
        let ids: Vec<u64> =
            self.pending.iter().filter(|(_, (_, to))| NodeId::Broker(*to) == peer).map(|(id, _)| *id).collect();
        for id in ids {
            fx.cancel_timer(Timer::RequestTimeout(id));
            self.on_failure(now, id, &mut events);
        }
        if self.coordinator.map(NodeId::Broker) == Some(peer) {
            self.coordinator_lost(now);
        }
        events
    }

    /// A request failed (timeout or closed connection).
    pub fn on_failure(&mut self, now: SimTime, correlation_id: u64, events: &mut Vec<MemberEvent>) {
        let Some((what, _)) = self.pending.remove(&correlation_id) else { return };
        match what {
            Pending::Commit(offsets, _) => {
                events.push(MemberEvent::Committed { error: ErrorCode::RequestTimedOut, offsets })
            }
            Pending::Heartbeat | Pending::Leave => {}
            // Ask again once a coordinator is found.
            Pending::OffsetFetch(partitions) => self.refetch = Some((partitions, now)),
            Pending::FindCoordinator | Pending::Join | Pending::Sync => {}
        }
        self.coordinator_lost(now);
    }

    /// Handle a response to one of our requests.
    pub fn on_response(
        &mut self,
        now: SimTime,
        correlation_id: u64,
        body: Response,
        metadata: &ClientMetadata,
        next_correlation: &mut u64,
        fx: &mut Effects,
    ) -> Vec<MemberEvent> {
        let mut events = Vec::new();
        let Some((what, _)) = self.pending.remove(&correlation_id) else { return events };
        match (what, body) {
            (Pending::FindCoordinator, Response::FindCoordinator(r)) => match r.coordinator {
                Some(id) if r.error.is_none() => {
                    self.coordinator = Some(id);
                    self.coordinator_unknown_since = None;
                    // `FindCoordinatorResponseHandler`: `heartbeat.resetSessionTimeout()`.
                    self.heartbeat_answered_at = now;
                }
                _ => self.retry_at = now.plus_ms(self.config.retry_backoff_ms),
            },
            (Pending::Join, Response::JoinGroup(r)) => {
                self.on_join(now, r, metadata, next_correlation, fx, &mut events)
            }
            (Pending::Sync, Response::SyncGroup(r)) => self.on_sync(now, r, fx, &mut events),
            (Pending::Heartbeat, Response::Heartbeat(r)) => match r.error {
                ErrorCode::None => self.heartbeat_answered_at = now,
                ErrorCode::RebalanceInProgress if self.phase == Phase::Stable => {
                    self.heartbeat_answered_at = now;
                    self.rejoin_needed = true;
                }
                ErrorCode::RebalanceInProgress => self.heartbeat_answered_at = now,
                ErrorCode::IllegalGeneration => self.rejoin_from_scratch(fx, &mut events, false),
                ErrorCode::FencedInstanceId => self.fail(r.error, fx, &mut events),
                ErrorCode::UnknownMemberId => self.rejoin_from_scratch(fx, &mut events, true),
                ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => self.coordinator_lost(now),
                _ => {}
            },
            (Pending::Leave, _) => {}
            (Pending::Commit(offsets, generation), Response::OffsetCommit(r)) => {
                match r.error {
                    ErrorCode::None => {}
                    // ConsumerCoordinator.OffsetCommitResponseHandler: fatal if the generation is
                    // the one the commit was sent in; otherwise an ordinary failed commit.
                    ErrorCode::FencedInstanceId if generation == self.generation => {
                        fx.note(Note::CommitFailed {
                            group: self.group_id.clone(),
                            member: self.name(),
                            error: r.error,
                        });
                        self.fail(r.error, fx, &mut events);
                    }
                    ErrorCode::IllegalGeneration
                    | ErrorCode::UnknownMemberId
                    | ErrorCode::RebalanceInProgress
                    | ErrorCode::FencedInstanceId => {
                        fx.note(Note::CommitFailed {
                            group: self.group_id.clone(),
                            member: self.name(),
                            error: r.error,
                        });
                        // Only a failure of the current generation's commit says we are out of it.
                        if r.error != ErrorCode::RebalanceInProgress
                            && generation == self.generation
                            && self.phase == Phase::Stable
                        {
                            self.rejoin_from_scratch(fx, &mut events, r.error == ErrorCode::UnknownMemberId);
                        }
                    }
                    ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => self.coordinator_lost(now),
                    _ => {}
                }
                events.push(MemberEvent::Committed { error: r.error, offsets });
            }
            (Pending::OffsetFetch(partitions), Response::OffsetFetch(r)) => match r.error {
                ErrorCode::None => events.push(MemberEvent::CommittedOffsets(r.offsets)),
                ErrorCode::UnstableOffsetCommit => {
                    // KIP-447: a transaction holds offsets for these partitions; starting from
                    // the last committed one could redo what it is about to commit. Wait.
                    fx.note(Note::OffsetFetchUnstable {
                        group: self.group_id.clone(),
                        member: self.name(),
                        partitions: partitions.clone(),
                    });
                    let at = now.plus_ms(self.config.retry_backoff_ms);
                    self.refetch = Some((partitions, at));
                    fx.set_timer(Timer::ConsumerWakeup, at);
                }
                _ => {
                    self.refetch = Some((partitions, now.plus_ms(self.config.retry_backoff_ms)));
                    self.coordinator_lost(now);
                }
            },
            _ => {}
        }
        events
    }

    fn on_join(
        &mut self,
        now: SimTime,
        r: JoinGroupResponse,
        metadata: &ClientMetadata,
        next_correlation: &mut u64,
        fx: &mut Effects,
        events: &mut Vec<MemberEvent>,
    ) {
        match r.error {
            ErrorCode::None => {}
            ErrorCode::MemberIdRequired => {
                self.member_id = r.member_id;
                return; // drive() sends the join again, now with the id
            }
            ErrorCode::FencedInstanceId | ErrorCode::InconsistentGroupProtocol | ErrorCode::InvalidSessionTimeout => {
                return self.fail(r.error, fx, events)
            }
            ErrorCode::UnknownMemberId => {
                self.rejoin_from_scratch(fx, events, true);
                return;
            }
            ErrorCode::IllegalGeneration => {
                self.rejoin_from_scratch(fx, events, false);
                return;
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable | ErrorCode::CoordinatorLoadInProgress => {
                self.coordinator_lost(now);
                return;
            }
            _ => {
                self.retry_at = now.plus_ms(self.config.retry_backoff_ms);
                return;
            }
        }
        self.member_id = r.member_id.clone();
        self.generation = r.generation;
        self.phase = Phase::Syncing;
        let mut assignments = Vec::new();
        if r.leader == r.member_id && !r.members.is_empty() {
            if let Some(worker) = self.worker.as_mut() {
                let mut notes = Vec::new();
                assignments = worker.on_leader_elected(
                    now,
                    r.generation,
                    &r.member_id,
                    r.protocol.as_deref(),
                    &r.members,
                    &mut notes,
                );
                for note in notes {
                    fx.note(Note::Connect(Box::new(note)));
                }
            } else {
                assignments = self.assign(&r, metadata);
            }
        }
        self.protocol_name = r.protocol.clone();
        let Some(coordinator) = self.coordinator else { return };
        let body = Request::SyncGroup(SyncGroupRequest {
            group_id: self.group_id.clone(),
            generation: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            assignments,
        });
        self.send(coordinator, now, body, Pending::Sync, next_correlation, fx);
        fx.set_timer(Timer::GroupHeartbeat, now.plus_ms(self.config.heartbeat_interval_ms));
    }

    /// As the leader: run the group's assignor over every member's subscription.
    fn assign(&self, r: &JoinGroupResponse, metadata: &ClientMetadata) -> Vec<(String, MemberAssignment)> {
        let Some(kind) = r.protocol.as_deref().and_then(|p| AssignorKind::from_str(p).ok()) else { return Vec::new() };
        let mut partitions_per_topic = BTreeMap::new();
        for (_, _, md) in &r.members {
            let Some(sub) = md.subscription() else { continue };
            for topic in &sub.topics {
                if let Some(p) = metadata.partitions(topic) {
                    partitions_per_topic.insert(topic.clone(), p.len() as i32);
                }
            }
        }
        let members: Vec<MemberSubscription> = r
            .members
            .iter()
            .filter_map(|(id, instance, md)| md.subscription().map(|sub| (id, instance, sub)))
            .map(|(id, instance, sub)| MemberSubscription {
                member_id: id.clone(),
                group_instance_id: instance.clone(),
                topics: sub.topics.clone(),
                owned_partitions: sub.owned_partitions.clone(),
                generation: (sub.generation >= 0).then_some(sub.generation),
            })
            .collect();
        let assignment = kind.assign(&partitions_per_topic, &members);
        r.members.iter().map(|(id, _, _)| (id.clone(), assignment.partitions_of(id).to_vec().into())).collect()
    }

    fn on_sync(&mut self, now: SimTime, r: SyncGroupResponse, fx: &mut Effects, events: &mut Vec<MemberEvent>) {
        match r.error {
            ErrorCode::None => {}
            ErrorCode::RebalanceInProgress => {
                self.phase = Phase::Joining;
                return;
            }
            ErrorCode::IllegalGeneration => return self.rejoin_from_scratch(fx, events, false),
            ErrorCode::FencedInstanceId => return self.fail(r.error, fx, events),
            ErrorCode::UnknownMemberId => return self.rejoin_from_scratch(fx, events, true),
            _ => return self.coordinator_lost(now),
        }
        self.phase = Phase::Stable;
        self.heartbeat_answered_at = now;
        if let Some(worker) = self.worker.as_mut() {
            let mut notes = Vec::new();
            let rejoin = worker.on_join_complete(
                now,
                self.generation,
                &self.member_id,
                self.protocol_name.as_deref(),
                &r.assignment,
                &mut notes,
            );
            // A revocation is carried out before the rejoin: the worker's herder stops the
            // revoked connectors and tasks (`onRevoked`), then the member rejoins.
            let revoked = worker.revokes(&r.assignment);
            for note in notes {
                fx.note(Note::Connect(Box::new(note)));
            }
            if rejoin {
                self.rejoin_needed = true;
                self.listener_busy |= revoked;
            }
            return;
        }
        let mut new = r.assignment.partitions().to_vec();
        new.sort();
        let revoked: Vec<TopicPartition> = self.owned.iter().filter(|tp| !new.contains(tp)).cloned().collect();
        let added: Vec<TopicPartition> = new.iter().filter(|tp| !self.owned.contains(tp)).cloned().collect();
        if !revoked.is_empty() {
            fx.note(Note::PartitionsRevoked {
                group: self.group_id.clone(),
                member: self.name(),
                generation: self.generation,
                partitions: revoked.clone(),
                lost: false,
                kept: new.len() - added.len(),
            });
            events.push(MemberEvent::Revoked { partitions: revoked.clone(), lost: false });
            // Cooperative: what we gave up must now go to its new owner: rebalance again.
            if self.protocol() == RebalanceProtocol::Cooperative {
                self.rejoin_needed = true;
            }
        }
        self.owned = new;
        fx.note(Note::PartitionsAssigned {
            group: self.group_id.clone(),
            member: self.name(),
            generation: self.generation,
            partitions: added.clone(),
        });
        if !added.is_empty() {
            events.push(MemberEvent::Assigned(added));
        }
    }

    /// Kafka's `AbstractCoordinator.maybeLeaveGroup`: only a dynamic member in the group with a
    /// known coordinator sends LeaveGroup (a static member never does, KIP-345: only its session
    /// timeout ends its membership). A JoinGroup or SyncGroup still in flight is forgotten: the
    /// member is out of that exchange (`resetGenerationOnLeaveGroup`).
    fn maybe_leave_group(&mut self, now: SimTime, next_correlation: &mut u64, fx: &mut Effects) {
        self.pending.retain(|_, (what, _)| !matches!(what, Pending::Join | Pending::Sync));
        let Some(coordinator) = self.coordinator else { return };
        if self.instance_id.is_some() || self.member_id.is_empty() || self.failed.is_some() {
            return;
        }
        let body = Request::LeaveGroup(LeaveGroupRequest {
            group_id: self.group_id.clone(),
            member_id: self.member_id.clone(),
            group_instance_id: None,
        });
        self.send(coordinator, now, body, Pending::Leave, next_correlation, fx);
    }

    /// The consumer closes (`AbstractCoordinator.close`): its partitions are given up
    /// (`ConsumerCoordinator.onLeavePrepare`: revoked, or lost if the generation is gone) and it
    /// leaves the group if it is dynamic. Returns the partitions given up.
    pub fn leave(&mut self, now: SimTime, next_correlation: &mut u64, fx: &mut Effects) -> Vec<MemberEvent> {
        let mut events = Vec::new();
        if !self.owned.is_empty() {
            let lost = self.phase != Phase::Stable || self.member_id.is_empty();
            let partitions = std::mem::take(&mut self.owned);
            fx.note(Note::PartitionsRevoked {
                group: self.group_id.clone(),
                member: self.name(),
                generation: self.generation,
                partitions: partitions.clone(),
                lost,
                kept: 0,
            });
            events.push(MemberEvent::Revoked { partitions, lost });
        }
        self.maybe_leave_group(now, next_correlation, fx);
        self.topics.clear();
        if let Some(worker) = self.worker.as_mut() {
            worker.active = false;
        }
        self.phase = Phase::Idle;
        events
    }

    /// Requests to the coordinator still unanswered (a closing consumer waits for them:
    /// `ConsumerNetworkClient.awaitPendingRequests`).
    pub fn requests_in_flight(&self) -> bool {
        !self.pending.is_empty()
    }
}
