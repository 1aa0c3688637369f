//! The group coordinator: how a consumer group agrees who reads which partition.
//!
//! Each group belongs to one partition of the internal topic `__consumer_offsets`
//! (`abs(hashCode(group.id)) % offsets.topic.num.partitions`), and the broker leading that
//! partition is the group's coordinator. Everything the coordinator must remember (the group's
//! generation and assignment, the committed offsets) it appends to that partition, so when the
//! broker fails, the new leader of the partition replays it and carries on as coordinator.
//!
//! The classic protocol, as the group sees it:
//! 1. **Join.** Members send JoinGroup. A new member first gets MEMBER_ID_REQUIRED with an id to
//!    use (KIP-394). When a member joins, leaves or dies, the group goes to *PreparingRebalance*
//!    and waits (up to the rebalance timeout, `max.poll.interval.ms`) for every member to rejoin.
//!    A brand-new group waits `group.initial.rebalance.delay.ms` for more members first.
//! 2. **Assign.** The coordinator bumps the *generation*, picks a leader among the members and
//!    sends it everyone's subscriptions. The group is *CompletingRebalance*.
//! 3. **Sync.** The leader computes the assignment with the agreed assignor and sends it in its
//!    SyncGroup; the coordinator stores it and answers every member's SyncGroup with its share.
//!    The group is *Stable*.
//! 4. **Stay alive.** Members heartbeat within `session.timeout.ms`; a member that does not is
//!    removed, and the group rebalances. Requests from an old generation get ILLEGAL_GENERATION,
//!    from a removed member UNKNOWN_MEMBER_ID, and a heartbeat during a rebalance
//!    REBALANCE_IN_PROGRESS: that is how a member learns it must rejoin.
//!
//! Static members (`group.instance.id`, KIP-345) keep their identity across restarts: one that
//! rejoins within the session timeout gets its old assignment back without a rebalance.

use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::record::Record;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::TopicPartition;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    client: NodeId,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    protocols: Vec<(String, Subscription)>,
    assignment: Vec<TopicPartition>,
    #[serde(skip)]
    join: Option<u64>,
    #[serde(skip)]
    sync: Option<u64>,
    #[serde(skip)]
    last_seen: SimTime,
}

#[derive(Clone, Debug)]
struct Group {
    id: String,
    partition: i32,
    state: GroupState,
    generation: i32,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    pending: BTreeSet<String>,
    offsets: BTreeMap<TopicPartition, i64>,
    next_member: u64,
    /// A brand-new group is waiting `group.initial.rebalance.delay.ms` for more members.
    initial_delay_until: Option<SimTime>,
    rebalance_deadline: SimTime,
}

/// The durable form of a group, as written to `__consumer_offsets`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct GroupRecord {
    generation: i32,
    /// The member-id counter, so ids stay unique after a coordinator failover.
    #[serde(default)]
    next_member: u64,
    protocol: Option<String>,
    leader: Option<String>,
    members: Vec<Member>,
}

/// What to do once a write to `__consumer_offsets` is committed.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    Sync { group: String, generation: i32 },
    Commit { group: String, client: NodeId, correlation_id: u64, offsets: Vec<(TopicPartition, i64)> },
}

/// A write the broker must append to `__consumer_offsets-partition` as leader.
#[derive(Clone, Debug, PartialEq)]
pub struct Append {
    pub partition: i32,
    pub records: Vec<Record>,
    pub completion: Completion,
}

#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub initial_rebalance_delay_ms: u64,
}

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    /// `__consumer_offsets` partitions this broker leads (and so coordinates).
    partitions: BTreeSet<i32>,
    groups: BTreeMap<String, Group>,
}

fn group_key(group: &str) -> String {
    format!("group/{group}")
}

fn offset_key(group: &str, tp: &TopicPartition) -> String {
    format!("offset/{group}/{}/{}", tp.topic, tp.partition)
}

fn respond(to: NodeId, correlation_id: u64, body: Response, fx: &mut Effects) {
    fx.send(to, Message::Response { correlation_id, body });
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        GroupCoordinator { config, partitions: BTreeSet::new(), groups: BTreeMap::new() }
    }

    pub fn coordinates(&self, partition: i32) -> bool {
        self.partitions.contains(&partition)
    }

    pub fn group_state(&self, group: &str) -> Option<(GroupState, i32)> {
        self.groups.get(group).map(|g| (g.state, g.generation))
    }

    /// Become coordinator for the groups of `__consumer_offsets-partition`, replaying its log.
    pub fn load(&mut self, partition: i32, records: impl Iterator<Item = Record>, now: SimTime, fx: &mut Effects) {
        self.partitions.insert(partition);
        let mut loaded: BTreeMap<String, Group> = BTreeMap::new();
        for record in records {
            let Some(key) = record.key else { continue };
            if let Some(group) = key.strip_prefix("group/") {
                let Ok(r) = serde_json::from_str::<GroupRecord>(&record.value) else { continue };
                let g = loaded.entry(group.to_string()).or_insert_with(|| Group::new(group, partition));
                g.generation = r.generation;
                g.next_member = g.next_member.max(r.next_member);
                g.protocol = r.protocol;
                g.leader = r.leader;
                g.members = r
                    .members
                    .into_iter()
                    .map(|mut m| {
                        m.last_seen = now;
                        (m.member_id.clone(), m)
                    })
                    .collect();
                g.state = if g.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
            } else if let Some(rest) = key.strip_prefix("offset/") {
                let mut parts = rest.rsplitn(3, '/');
                let (Some(p), Some(topic), Some(group)) = (parts.next(), parts.next(), parts.next()) else { continue };
                let (Ok(p), Ok(offset)) = (p.parse::<i32>(), record.value.parse::<i64>()) else { continue };
                let g = loaded.entry(group.to_string()).or_insert_with(|| Group::new(group, partition));
                g.offsets.insert(TopicPartition::new(topic, p), offset);
            }
        }
        for (id, group) in loaded {
            fx.note(Note::GroupLoaded {
                group: id.clone(),
                generation: group.generation,
                members: group.members.len(),
                offsets: group.offsets.len(),
            });
            self.groups.insert(id, group);
        }
        let ids: Vec<String> =
            self.groups.iter().filter(|(_, g)| g.partition == partition).map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.schedule_session_check(&id, fx);
        }
    }

    /// No longer coordinator for this partition: forget its groups, tell waiting members.
    pub fn unload(&mut self, partition: i32, fx: &mut Effects) {
        self.partitions.remove(&partition);
        let ids: Vec<String> =
            self.groups.iter().filter(|(_, g)| g.partition == partition).map(|(id, _)| id.clone()).collect();
        for id in ids {
            let group = self.groups.remove(&id).expect("listed");
            for m in group.members.values() {
                if let Some(c) = m.join {
                    respond(m.client, c, join_error(ErrorCode::NotCoordinator, &m.member_id), fx);
                }
                if let Some(c) = m.sync {
                    respond(m.client, c, sync_error(ErrorCode::NotCoordinator), fx);
                }
            }
            fx.cancel_timer(Timer::GroupRebalance(id.clone()));
            fx.cancel_timer(Timer::GroupSessionCheck(id));
        }
    }

    fn group_mut(&mut self, group: &str, partition: i32) -> &mut Group {
        self.groups.entry(group.to_string()).or_insert_with(|| Group::new(group, partition))
    }

    fn note_state(group: &Group, fx: &mut Effects) {
        fx.note(Note::GroupStateChanged {
            group: group.id.clone(),
            state: group.state.to_string(),
            generation: group.generation,
            members: group.members.keys().cloned().collect(),
        });
    }

    // ---- JoinGroup --------------------------------------------------------------------------

    pub fn join(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        partition: i32,
        r: JoinGroupRequest,
        fx: &mut Effects,
    ) {
        let delay = self.config.initial_rebalance_delay_ms;
        let group = self.group_mut(&r.group_id, partition);
        if r.member_id.is_empty() && r.group_instance_id.is_none() {
            // KIP-394: hand out an id and ask the member to join again with it.
            group.next_member += 1;
            let member_id = format!("{}-{}", r.client_id, group.next_member);
            group.pending.insert(member_id.clone());
            respond(from, correlation_id, join_error(ErrorCode::MemberIdRequired, &member_id), fx);
            return;
        }
        let mut member_id = r.member_id.clone();
        if let Some(instance) = &r.group_instance_id {
            let existing =
                group.members.values().find(|m| m.instance_id.as_ref() == Some(instance)).map(|m| m.member_id.clone());
            match existing {
                Some(old) if r.member_id.is_empty() || r.member_id != old => {
                    // A static member came back (a restart): it takes over its old identity.
                    group.next_member += 1;
                    let new_id = format!("{instance}-{}", group.next_member);
                    let mut m = group.members.remove(&old).expect("found");
                    if let Some(c) = m.join.take() {
                        respond(m.client, c, join_error(ErrorCode::FencedInstanceId, &old), fx);
                    }
                    m.member_id = new_id.clone();
                    m.client = from;
                    m.last_seen = now;
                    m.protocols = r.protocols.clone();
                    if group.leader.as_ref() == Some(&old) {
                        group.leader = Some(new_id.clone());
                    }
                    group.members.insert(new_id.clone(), m);
                    fx.note(Note::StaticMemberReturned {
                        group: group.id.clone(),
                        instance: instance.clone(),
                        member: new_id.clone(),
                    });
                    if group.state == GroupState::Stable {
                        // No rebalance: the member gets its generation back and syncs its old share.
                        let body = Response::JoinGroup(JoinGroupResponse {
                            error: ErrorCode::None,
                            generation: group.generation,
                            protocol: group.protocol.clone(),
                            leader: group.leader.clone().unwrap_or_default(),
                            member_id: new_id,
                            members: Vec::new(),
                        });
                        respond(from, correlation_id, body, fx);
                        return;
                    }
                    member_id = new_id;
                }
                Some(_) => {}
                None => {
                    if r.member_id.is_empty() {
                        group.next_member += 1;
                        member_id = format!("{instance}-{}", group.next_member);
                    }
                    group.pending.insert(member_id.clone());
                }
            }
        }
        let known = group.members.contains_key(&member_id);
        let was_pending = group.pending.remove(&member_id);
        if !known && !was_pending {
            respond(from, correlation_id, join_error(ErrorCode::UnknownMemberId, &member_id), fx);
            return;
        }
        let member = group.members.entry(member_id.clone()).or_insert_with(|| Member {
            member_id: member_id.clone(),
            instance_id: r.group_instance_id.clone(),
            client: from,
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: r.rebalance_timeout_ms,
            protocols: Vec::new(),
            assignment: Vec::new(),
            join: None,
            sync: None,
            last_seen: now,
        });
        let metadata_changed = member.protocols != r.protocols;
        member.protocols = r.protocols;
        member.client = from;
        member.last_seen = now;
        member.session_timeout_ms = r.session_timeout_ms;
        member.rebalance_timeout_ms = r.rebalance_timeout_ms;
        if let Some(old) = member.join.replace(correlation_id) {
            respond(from, old, join_error(ErrorCode::RebalanceInProgress, &member_id), fx);
        }
        let is_leader = group.leader.as_ref() == Some(&member_id);
        match group.state {
            GroupState::Stable if known && !is_leader && !metadata_changed => {
                // Nothing changed: answer with the current generation (Kafka does the same).
                let member = group.members.get_mut(&member_id).expect("present");
                member.join = None;
                let body = Response::JoinGroup(JoinGroupResponse {
                    error: ErrorCode::None,
                    generation: group.generation,
                    protocol: group.protocol.clone(),
                    leader: group.leader.clone().unwrap_or_default(),
                    member_id,
                    members: Vec::new(),
                });
                respond(from, correlation_id, body, fx);
            }
            GroupState::Empty => {
                group.initial_delay_until = Some(now.plus_ms(delay));
                self.prepare_rebalance(now, &r.group_id, fx);
            }
            GroupState::PreparingRebalance => {
                if let Some(until) = group.initial_delay_until {
                    // Another new member during the initial delay: wait a little longer for more,
                    // as Kafka's InitialDelayedJoin does, up to the rebalance timeout.
                    let cap = group.rebalance_deadline;
                    let next = now.plus_ms(delay).min(cap).max(until);
                    group.initial_delay_until = Some(next);
                    fx.set_timer(Timer::GroupRebalance(r.group_id.clone()), next);
                }
                self.maybe_complete_join(now, &r.group_id, fx);
            }
            _ => self.prepare_rebalance(now, &r.group_id, fx),
        }
    }

    fn prepare_rebalance(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) {
        let group = self.groups.get_mut(group_id).expect("exists");
        if group.state == GroupState::CompletingRebalance {
            // The assignment being synced is void: members must rejoin.
            for m in group.members.values_mut() {
                if let Some(c) = m.sync.take() {
                    respond(m.client, c, sync_error(ErrorCode::RebalanceInProgress), fx);
                }
            }
        }
        let timeout = group.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
        group.rebalance_deadline = now.plus_ms(timeout);
        let at = group.initial_delay_until.unwrap_or(group.rebalance_deadline).min(group.rebalance_deadline);
        if group.state != GroupState::PreparingRebalance {
            group.state = GroupState::PreparingRebalance;
            Self::note_state(group, fx);
        }
        fx.set_timer(Timer::GroupRebalance(group_id.to_string()), at);
        self.maybe_complete_join(now, group_id, fx);
    }

    /// Finish the join phase if every member has rejoined (and no initial delay is running).
    fn maybe_complete_join(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) {
        let group = self.groups.get(group_id).expect("exists");
        let all_joined = group.members.values().all(|m| m.join.is_some()) && group.pending.is_empty();
        if group.state == GroupState::PreparingRebalance && all_joined && group.initial_delay_until.is_none() {
            self.complete_join(now, group_id, fx);
        }
    }

    fn complete_join(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) {
        let group = self.groups.get_mut(group_id).expect("exists");
        group.initial_delay_until = None;
        group.pending.clear();
        // Members that did not rejoin within the rebalance timeout are out.
        let gone: Vec<String> =
            group.members.values().filter(|m| m.join.is_none()).map(|m| m.member_id.clone()).collect();
        for id in gone {
            group.members.remove(&id);
            fx.note(Note::MemberRemoved {
                group: group_id.to_string(),
                member: id,
                reason: "did not rejoin within the rebalance timeout".into(),
            });
        }
        group.generation += 1;
        fx.cancel_timer(Timer::GroupRebalance(group_id.to_string()));
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.leader = None;
            Self::note_state(group, fx);
            return;
        }
        // The protocol every member supports, in the leader's order of preference.
        if !group.leader.as_ref().is_some_and(|l| group.members.contains_key(l)) {
            group.leader = group.members.keys().next().cloned();
        }
        let leader = group.leader.clone().expect("members exist");
        let candidates: Vec<String> = group.members[&leader].protocols.iter().map(|(n, _)| n.clone()).collect();
        group.protocol = candidates
            .into_iter()
            .find(|name| group.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)));
        let protocol = group.protocol.clone();
        let members: Vec<(String, Option<String>, Subscription)> = group
            .members
            .values()
            .map(|m| {
                let sub = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, s)| s.clone())
                    .unwrap_or(Subscription { topics: Vec::new(), owned_partitions: Vec::new(), generation: -1 });
                (m.member_id.clone(), m.instance_id.clone(), sub)
            })
            .collect();
        group.state = GroupState::CompletingRebalance;
        Self::note_state(group, fx);
        for m in group.members.values_mut() {
            m.last_seen = now;
            let Some(c) = m.join.take() else { continue };
            let body = Response::JoinGroup(JoinGroupResponse {
                error: if protocol.is_some() { ErrorCode::None } else { ErrorCode::InconsistentGroupProtocol },
                generation: group.generation,
                protocol: protocol.clone(),
                leader: leader.clone(),
                member_id: m.member_id.clone(),
                members: if m.member_id == leader { members.clone() } else { Vec::new() },
            });
            respond(m.client, c, body, fx);
        }
        self.schedule_session_check(group_id, fx);
    }

    // ---- SyncGroup ----------------------------------------------------------------------------

    pub fn sync(&mut self, from: NodeId, correlation_id: u64, r: SyncGroupRequest, fx: &mut Effects) -> Option<Append> {
        let Some(group) = self.groups.get_mut(&r.group_id) else {
            respond(from, correlation_id, sync_error(ErrorCode::UnknownMemberId), fx);
            return None;
        };
        let error = match group.members.get(&r.member_id) {
            None => Some(ErrorCode::UnknownMemberId),
            Some(_) if r.generation != group.generation => Some(ErrorCode::IllegalGeneration),
            Some(_) if group.state == GroupState::PreparingRebalance => Some(ErrorCode::RebalanceInProgress),
            _ => None,
        };
        if let Some(error) = error {
            respond(from, correlation_id, sync_error(error), fx);
            return None;
        }
        if group.state == GroupState::Stable {
            let assignment = group.members[&r.member_id].assignment.clone();
            respond(
                from,
                correlation_id,
                Response::SyncGroup(SyncGroupResponse { error: ErrorCode::None, assignment }),
                fx,
            );
            return None;
        }
        let member = group.members.get_mut(&r.member_id).expect("checked");
        member.client = from;
        member.sync = Some(correlation_id);
        if group.leader.as_ref() != Some(&r.member_id) {
            return None;
        }
        // The leader's assignment: store it, then answer everyone once it is committed.
        for (id, partitions) in &r.assignments {
            if let Some(m) = group.members.get_mut(id) {
                m.assignment = partitions.clone();
            }
        }
        let record = GroupRecord {
            generation: group.generation,
            next_member: group.next_member,
            protocol: group.protocol.clone(),
            leader: group.leader.clone(),
            members: group.members.values().cloned().collect(),
        };
        let value = serde_json::to_string(&record).expect("group records serialize");
        Some(Append {
            partition: group.partition,
            records: vec![Record { key: Some(group_key(&group.id)), value }],
            completion: Completion::Sync { group: group.id.clone(), generation: group.generation },
        })
    }

    // ---- Heartbeat, LeaveGroup, sessions --------------------------------------------------------

    pub fn heartbeat(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        r: HeartbeatRequest,
        fx: &mut Effects,
    ) {
        let error = match self.groups.get_mut(&r.group_id) {
            None => ErrorCode::UnknownMemberId,
            Some(group) => match group.members.get_mut(&r.member_id) {
                None => ErrorCode::UnknownMemberId,
                Some(m) => {
                    m.last_seen = now;
                    if r.generation != group.generation {
                        ErrorCode::IllegalGeneration
                    } else if group.state == GroupState::PreparingRebalance {
                        ErrorCode::RebalanceInProgress
                    } else {
                        ErrorCode::None
                    }
                }
            },
        };
        respond(from, correlation_id, Response::Heartbeat(HeartbeatResponse { error }), fx);
    }

    pub fn leave(&mut self, now: SimTime, from: NodeId, correlation_id: u64, r: LeaveGroupRequest, fx: &mut Effects) {
        let removed = self.groups.get_mut(&r.group_id).and_then(|g| g.members.remove(&r.member_id)).is_some();
        let error = if removed { ErrorCode::None } else { ErrorCode::UnknownMemberId };
        respond(from, correlation_id, Response::LeaveGroup(LeaveGroupResponse { error }), fx);
        if removed {
            fx.note(Note::MemberRemoved {
                group: r.group_id.clone(),
                member: r.member_id,
                reason: "left the group".into(),
            });
            self.after_member_loss(now, &r.group_id, fx);
        }
    }

    fn after_member_loss(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) {
        let group = self.groups.get_mut(group_id).expect("exists");
        if group.members.is_empty() && group.state != GroupState::PreparingRebalance {
            group.state = GroupState::Empty;
            group.generation += 1;
            group.leader = None;
            Self::note_state(group, fx);
        } else if group.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now, group_id, fx);
        } else {
            self.prepare_rebalance(now, group_id, fx);
        }
    }

    fn schedule_session_check(&self, group_id: &str, fx: &mut Effects) {
        let Some(group) = self.groups.get(group_id) else { return };
        let next = group
            .members
            .values()
            .filter(|m| m.join.is_none())
            .map(|m| m.last_seen.plus_ms(m.session_timeout_ms))
            .min();
        if let Some(at) = next {
            fx.set_timer(Timer::GroupSessionCheck(group_id.to_string()), at.plus_us(1));
        }
    }

    pub fn on_timer(&mut self, now: SimTime, timer: &Timer, fx: &mut Effects) {
        match timer {
            Timer::GroupRebalance(id) => {
                let Some(group) = self.groups.get_mut(id) else { return };
                if group.state != GroupState::PreparingRebalance {
                    return;
                }
                match group.initial_delay_until {
                    Some(until) if now < until => fx.set_timer(timer.clone(), until),
                    _ => {
                        group.initial_delay_until = None;
                        let all_joined = group.members.values().all(|m| m.join.is_some());
                        if all_joined || now >= group.rebalance_deadline {
                            self.complete_join(now, id, fx);
                        } else {
                            fx.set_timer(timer.clone(), group.rebalance_deadline);
                        }
                    }
                }
            }
            Timer::GroupSessionCheck(id) => {
                let Some(group) = self.groups.get_mut(id) else { return };
                let expired: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| m.join.is_none() && now.ms_since(m.last_seen) >= m.session_timeout_ms)
                    .map(|m| m.member_id.clone())
                    .collect();
                for member in &expired {
                    let m = group.members.remove(member).expect("listed");
                    if let Some(c) = m.sync {
                        respond(m.client, c, sync_error(ErrorCode::UnknownMemberId), fx);
                    }
                    fx.note(Note::MemberRemoved {
                        group: id.clone(),
                        member: member.clone(),
                        reason: format!("no heartbeat within session.timeout.ms={}", m.session_timeout_ms),
                    });
                }
                if !expired.is_empty() {
                    self.after_member_loss(now, id, fx);
                }
                self.schedule_session_check(id, fx);
            }
            _ => {}
        }
    }

    // ---- offsets ------------------------------------------------------------------------------

    pub fn commit(
        &mut self,
        from: NodeId,
        correlation_id: u64,
        partition: i32,
        r: OffsetCommitRequest,
        fx: &mut Effects,
    ) -> Option<Append> {
        let group = self.group_mut(&r.group_id, partition);
        let error = if r.generation < 0 {
            // A commit from outside the group protocol: allowed only while nobody is a member.
            if group.members.is_empty() {
                None
            } else {
                Some(ErrorCode::UnknownMemberId)
            }
        } else {
            match group.members.get(&r.member_id) {
                None => Some(ErrorCode::UnknownMemberId),
                Some(_) if r.generation != group.generation => Some(ErrorCode::IllegalGeneration),
                Some(_) if group.state == GroupState::CompletingRebalance => Some(ErrorCode::RebalanceInProgress),
                _ => None,
            }
        };
        if let Some(error) = error {
            respond(from, correlation_id, Response::OffsetCommit(OffsetCommitResponse { error }), fx);
            return None;
        }
        let records = r
            .offsets
            .iter()
            .map(|(tp, offset)| Record { key: Some(offset_key(&r.group_id, tp)), value: offset.to_string() })
            .collect();
        Some(Append {
            partition: group.partition,
            records,
            completion: Completion::Commit { group: r.group_id, client: from, correlation_id, offsets: r.offsets },
        })
    }

    pub fn fetch_offsets(&self, from: NodeId, correlation_id: u64, r: OffsetFetchRequest, fx: &mut Effects) {
        let group = self.groups.get(&r.group_id);
        let offsets = r
            .partitions
            .iter()
            .map(|tp| (tp.clone(), group.and_then(|g| g.offsets.get(tp)).copied().unwrap_or(-1)))
            .collect();
        respond(
            from,
            correlation_id,
            Response::OffsetFetch(OffsetFetchResponse { error: ErrorCode::None, offsets }),
            fx,
        );
    }

    /// A write to `__consumer_offsets` is committed (or failed with `error`).
    pub fn on_append_done(&mut self, completion: Completion, error: ErrorCode, fx: &mut Effects) {
        match completion {
            Completion::Commit { group, client, correlation_id, offsets } => {
                if error.is_none() {
                    if let Some(g) = self.groups.get_mut(&group) {
                        for (tp, offset) in &offsets {
                            g.offsets.insert(tp.clone(), *offset);
                            fx.note(Note::OffsetCommitted {
                                group: group.clone(),
                                partition: tp.clone(),
                                offset: *offset,
                            });
                        }
                    }
                }
                let error = if error.is_none() { error } else { ErrorCode::NotCoordinator };
                respond(client, correlation_id, Response::OffsetCommit(OffsetCommitResponse { error }), fx);
            }
            Completion::Sync { group, generation } => {
                let Some(g) = self.groups.get_mut(&group) else { return };
                if g.generation != generation || g.state != GroupState::CompletingRebalance {
                    return;
                }
                if !error.is_none() {
                    // Could not store the assignment: the members must rejoin.
                    for m in g.members.values_mut() {
                        if let Some(c) = m.sync.take() {
                            respond(m.client, c, sync_error(ErrorCode::NotCoordinator), fx);
                        }
                    }
                    return;
                }
                g.state = GroupState::Stable;
                Self::note_state(g, fx);
                for m in g.members.values_mut() {
                    fx.note(Note::AssignmentStored {
                        group: group.clone(),
                        generation,
                        member: m.member_id.clone(),
                        partitions: m.assignment.clone(),
                    });
                    if let Some(c) = m.sync.take() {
                        let body = Response::SyncGroup(SyncGroupResponse {
                            error: ErrorCode::None,
                            assignment: m.assignment.clone(),
                        });
                        respond(m.client, c, body, fx);
                    }
                }
            }
        }
    }
}

impl Group {
    fn new(id: &str, partition: i32) -> Self {
        Group {
            id: id.to_string(),
            partition,
            state: GroupState::Empty,
            generation: 0,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeSet::new(),
            offsets: BTreeMap::new(),
            next_member: 0,
            initial_delay_until: None,
            rebalance_deadline: SimTime::ZERO,
        }
    }
}

fn join_error(error: ErrorCode, member_id: &str) -> Response {
    Response::JoinGroup(JoinGroupResponse {
        error,
        generation: -1,
        protocol: None,
        leader: String::new(),
        member_id: member_id.to_string(),
        members: Vec::new(),
    })
}

fn sync_error(error: ErrorCode) -> Response {
    Response::SyncGroup(SyncGroupResponse { error, assignment: Vec::new() })
}
