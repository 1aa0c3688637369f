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
//!    use (KIP-394); an id nobody joins with within `session.timeout.ms` is forgotten. When a
//!    member joins, leaves or dies, the group goes to *PreparingRebalance* and waits (up to the
//!    rebalance timeout, `max.poll.interval.ms`) for every member to rejoin and every handed-out
//!    id to be used. A group leaving Empty waits `group.initial.rebalance.delay.ms` for more
//!    members first, and a brand-new group waits another delay each time one more arrived.
//! 2. **Assign.** The coordinator bumps the *generation*, picks the assignor (each member votes
//!    for its favourite among the assignors every member supports; a member that shares none
//!    with the group is refused at JoinGroup with INCONSISTENT_GROUP_PROTOCOL) and sends the
//!    leader, the first member to have joined, everyone's subscriptions. The group is
//!    *CompletingRebalance*.
//! 3. **Sync.** The leader computes the assignment with the agreed assignor and sends it in its
//!    SyncGroup; the coordinator stores it and answers every member's SyncGroup with its share.
//!    The group is *Stable*.
//! 4. **Stay alive.** Members heartbeat within `session.timeout.ms`; a member that does not is
//!    removed, and the group rebalances. Requests from an old generation get ILLEGAL_GENERATION,
//!    from a removed member UNKNOWN_MEMBER_ID, and a heartbeat during a rebalance
//!    REBALANCE_IN_PROGRESS: that is how a member learns it must rejoin.
//!
//! Static members (`group.instance.id`, KIP-345) keep their identity across restarts: one that
//! rejoins within the session timeout gets a new member id and its old assignment back without a
//! rebalance, and whoever still uses the old id is answered FENCED_INSTANCE_ID, whatever the
//! request (every request names its instance id). A static member never leaves on its own, and a
//! rebalance that it does not rejoin keeps it: only its session timeout removes it.
//!
//! Besides the assignment, the coordinator writes the group whenever what a failover must know
//! changes without one: a static member's new id, and a group left Empty by its last member.

use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::group::assignor::java_order::hash_map_order;
use crate::invariant::ensure;
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::record::Record;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::TopicPartition;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
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
    protocols: Vec<(String, MemberMetadata)>,
    #[serde(default)]
    assignment: MemberAssignment,
    /// When the member was added to the group, as a sequence number (0 first). The leader is the
    /// first member to join, and a leader that goes is replaced by the earliest remaining joiner;
    /// the protocol vote counts members in this order.
    #[serde(default)]
    joined: u64,
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
    /// The protocol type of the group's members (`consumer`, `connect`): set by the first member
    /// of an Empty group, kept by all the others (Kafka's `ClassicGroup.protocolType`).
    protocol_type: Option<ProtocolType>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined with yet, each with the time it
    /// is forgotten: the request's `session.timeout.ms` later (Kafka's addPendingMemberExpiration).
    pending: BTreeMap<String, SimTime>,
    offsets: BTreeMap<TopicPartition, i64>,
    /// Offsets committed inside a transaction (TxnOffsetCommit), by producer id, until its
    /// marker: a COMMIT moves them to `offsets`, an ABORT drops them (Kafka's
    /// `GroupMetadata.pendingTransactionalOffsetCommits`, the new coordinator's
    /// `OffsetMetadataManager.pendingTransactionalOffsets`).
    pending_txn_offsets: BTreeMap<i64, BTreeMap<TopicPartition, i64>>,
    next_member: u64,
    /// A group leaving Empty waits `group.initial.rebalance.delay.ms` for more members first.
    initial_delay: Option<InitialDelay>,
    /// A new member joined the group's first rebalance (generation 0) during the initial delay.
    new_member_added: bool,
    rebalance_deadline: SimTime,
    /// The generation [`GroupCoordinator::check_invariants`] saw last, for this in-memory copy of
    /// the group only: a copy loaded after a coordinator failover starts afresh.
    checked_generation: Cell<i32>,
}

/// One link of Kafka's InitialDelayedJoin chain. When it expires and a new member joined during
/// it, another delay of `min(initial delay, remaining_ms)` starts and `remaining_ms` shrinks by
/// `delay_ms`; otherwise the join phase ends. The whole chain fits in the rebalance timeout.
#[derive(Clone, Copy, Debug)]
struct InitialDelay {
    until: SimTime,
    delay_ms: u64,
    remaining_ms: u64,
}

/// The durable form of a group, as written to `__consumer_offsets`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct GroupRecord {
    generation: i32,
    /// The member-id counter, so ids stay unique after a coordinator failover.
    #[serde(default)]
    next_member: u64,
    /// Left out for a consumer group, whose record reads as it did before Connect workers.
    #[serde(default, skip_serializing_if = "is_consumer_or_none")]
    protocol_type: Option<ProtocolType>,
    protocol: Option<String>,
    leader: Option<String>,
    members: Vec<Member>,
}

/// What to do once a write to `__consumer_offsets` is committed.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    Sync {
        group: String,
        generation: i32,
    },
    Commit {
        group: String,
        client: NodeId,
        correlation_id: u64,
        offsets: Vec<(TopicPartition, i64)>,
    },
    /// A TxnOffsetCommit: once written, the offsets are pending under the producer id.
    TxnCommit {
        group: String,
        client: NodeId,
        correlation_id: u64,
        producer_id: i64,
        offsets: Vec<(TopicPartition, i64)>,
    },
    /// The group's metadata, with nobody waiting on it: a group that became Empty stores its
    /// new generation, so a failover does not bring its old members back.
    StoreGroup {
        group: String,
    },
    /// A static member took over its instance with a new member id in a Stable group. Once the
    /// new id is stored the member gets its JoinGroup answer; if the write fails, the old member
    /// is put back (Kafka's updateStaticMemberAndRebalance).
    StaticMemberReplaced {
        group: String,
        instance: String,
        old_member_id: String,
        old_client: NodeId,
        old_protocols: Vec<(String, MemberMetadata)>,
        new_member_id: String,
        /// The leader before the replacement, which is what the member is told.
        leader: String,
    },
}

/// One entry of a `__consumer_offsets` log being loaded: a record (with its producer id if its
/// batch is transactional), or a transaction marker (producer id, committed).
enum Loaded {
    Record(Record, Option<i64>),
    Marker(i64, bool),
}

/// A write the broker must append to `__consumer_offsets-partition` as leader.
#[derive(Clone, Debug, PartialEq)]
pub struct Append {
    pub partition: i32,
    pub records: Vec<Record>,
    /// A transactional batch of this producer id and epoch (a TxnOffsetCommit), or None.
    pub producer: Option<(i64, i16)>,
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

fn is_consumer_or_none(t: &Option<ProtocolType>) -> bool {
    matches!(t, None | Some(ProtocolType::Consumer))
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

/// Kafka's storeGroup: the group's generation, leader and members as one record.
fn store_group(group: &Group, completion: Completion) -> Append {
    let record = GroupRecord {
        generation: group.generation,
        next_member: group.next_member,
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        members: group.members.values().cloned().collect(),
    };
    let value = serde_json::to_string(&record).expect("group records serialize");
    Append {
        partition: group.partition,
        records: vec![Record { key: Some(group_key(&group.id)), value: Some(value), headers: Vec::new() }],
        producer: None,
        completion,
    }
}

/// The error a member hears when its group could not be stored (Kafka's storeGroup callback):
/// a lost leadership is NOT_COORDINATOR, anything else (a timeout) COORDINATOR_NOT_AVAILABLE.
fn group_store_error(error: ErrorCode) -> ErrorCode {
    match error {
        ErrorCode::NotCoordinator | ErrorCode::NotLeaderOrFollower => ErrorCode::NotCoordinator,
        _ => ErrorCode::CoordinatorNotAvailable,
    }
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

    /// Every group belongs to a partition this coordinator leads; an Empty group has no members
    /// (Kafka's `ClassicGroupState.EMPTY`: "Group has no more members"; the group moves to Empty
    /// only when its last member leaves); and within one loaded copy of a group the generation
    /// never goes back (`ClassicGroup.initNextGeneration` only increments `generationId`). A
    /// group reloaded after a coordinator failover starts from its last *persisted* generation,
    /// which may be older than what the previous coordinator had in memory, so each copy is
    /// compared only with itself.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (id, group) in &self.groups {
            ensure(self.partitions.contains(&group.partition), || {
                format!("group {id} is held but __consumer_offsets-{} is not coordinated here", group.partition)
            })?;
            ensure(group.state != GroupState::Empty || group.members.is_empty(), || {
                format!("group {id} is Empty with members {:?}", group.members.keys().collect::<Vec<_>>())
            })?;
            let seen = group.checked_generation.replace(group.generation);
            ensure(group.generation >= seen, || {
                format!("group {id}: generation went back from {seen} to {}", group.generation)
            })?;
        }
        Ok(())
    }

    /// Become coordinator for the groups of `__consumer_offsets-partition`, replaying its log.
    ///
    /// A coordinator that already owns the partition (re-elected in a newer leader epoch without
    /// having been a follower in between: a paused broker whose leadership came back) keeps its
    /// groups as they are, pending JoinGroups included: Kafka's
    /// `GroupMetadataManager.addLoadingPartition` refuses to load a partition it owns ("Already
    /// loading offsets and group metadata"), and `loadGroup` never replaces a cached group
    /// (`addGroup` is a `putIfNotExists`). Replacing it dropped a waiting member's JoinGroup
    /// unanswered, and the member stalled until its rebalance timeout (issue 12).
    pub fn load(&mut self, partition: i32, records: impl Iterator<Item = Record>, now: SimTime, fx: &mut Effects) {
        self.load_log(partition, records.map(|r| Loaded::Record(r, None)), now, fx);
    }

    /// [`Self::load`] from the partition's batches: a transactional batch's offsets stay pending
    /// under its producer id until a marker of that producer follows, and then are committed or
    /// dropped (`GroupMetadataManager.doLoadGroupsAndOffsets`: `pendingOffsets` by producer id,
    /// completed by each control batch); those still open are pending in the loaded group.
    pub fn load_batches<'a>(
        &mut self,
        partition: i32,
        batches: impl Iterator<Item = &'a crate::record::RecordBatch>,
        now: SimTime,
        fx: &mut Effects,
    ) {
        let entries: Vec<Loaded> = batches
            .flat_map(|b| -> Vec<Loaded> {
                match b.control {
                    Some(marker) => {
                        vec![Loaded::Marker(b.producer_id, marker.control_type == crate::record::ControlType::Commit)]
                    }
                    None => {
                        let pid = b.is_transactional.then_some(b.producer_id);
                        b.records.iter().map(|r| Loaded::Record(r.clone(), pid)).collect()
                    }
                }
            })
            .collect();
        self.load_log(partition, entries.into_iter(), now, fx);
    }

    fn load_log(&mut self, partition: i32, entries: impl Iterator<Item = Loaded>, now: SimTime, fx: &mut Effects) {
        if !self.partitions.insert(partition) {
            return;
        }
        let mut loaded: BTreeMap<String, Group> = BTreeMap::new();
        // Transactional offsets by producer id, until their marker: (group, partition, offset).
        let mut open: BTreeMap<i64, Vec<(String, TopicPartition, i64)>> = BTreeMap::new();
        for entry in entries {
            let record = match entry {
                Loaded::Marker(pid, committed) => {
                    for (group, tp, offset) in open.remove(&pid).unwrap_or_default() {
                        if committed {
                            let g = loaded.entry(group.clone()).or_insert_with(|| Group::new(&group, partition));
                            g.offsets.insert(tp, offset);
                        }
                    }
                    continue;
                }
                Loaded::Record(record, Some(pid)) => {
                    let Some(key) = record.key.as_deref() else { continue };
                    let Some(rest) = key.strip_prefix("offset/") else { continue };
                    let mut parts = rest.rsplitn(3, '/');
                    let (Some(p), Some(topic), Some(group)) = (parts.next(), parts.next(), parts.next()) else {
                        continue;
                    };
                    let Some(value) = record.value.as_deref() else { continue };
                    let (Ok(p), Ok(offset)) = (p.parse::<i32>(), value.parse::<i64>()) else { continue };
                    open.entry(pid).or_default().push((group.to_string(), TopicPartition::new(topic, p), offset));
                    continue;
                }
                Loaded::Record(record, None) => record,
            };
            let Some(key) = record.key else { continue };
            if let Some(group) = key.strip_prefix("group/") {
                let Ok(r) = serde_json::from_str::<GroupRecord>(record.value.as_deref().unwrap_or_default()) else {
                    continue;
                };
                let g = loaded.entry(group.to_string()).or_insert_with(|| Group::new(group, partition));
                g.generation = r.generation;
                g.next_member = g.next_member.max(r.next_member);
                // A consumer group's record leaves its protocol type out.
                g.protocol_type = r.protocol_type.or_else(|| (!r.members.is_empty()).then_some(ProtocolType::Consumer));
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
                let (Ok(p), Ok(offset)) =
                    (p.parse::<i32>(), record.value.as_deref().unwrap_or_default().parse::<i64>())
                else {
                    continue;
                };
                let g = loaded.entry(group.to_string()).or_insert_with(|| Group::new(group, partition));
                g.offsets.insert(TopicPartition::new(topic, p), offset);
            }
        }
        for (pid, offsets) in open {
            for (group, tp, offset) in offsets {
                let g = loaded.entry(group.clone()).or_insert_with(|| Group::new(&group, partition));
                g.pending_txn_offsets.entry(pid).or_default().insert(tp, offset);
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

    /// Returns the group write to append first, if the join changed what the group must remember
    /// (a static member's new id in a Stable group); the member is answered once it is written.
    pub fn join(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        partition: i32,
        r: JoinGroupRequest,
        fx: &mut Effects,
    ) -> Option<Append> {
        let group = self.group_mut(&r.group_id, partition);
        if !group.supports_protocols(&r.protocol_type, &r.protocols) {
            // Kafka checks this first, for new and existing members alike
            // (`classicGroupJoinNewMember`, `classicGroupJoinExistingMember`): a member of another
            // protocol type (a Connect worker in a consumer group), or none of whose assignors
            // every member supports, cannot join. The Java clients treat it as fatal
            // (`AbstractCoordinator.JoinGroupResponseHandler`: InconsistentGroupProtocolException).
            respond(from, correlation_id, join_error(ErrorCode::InconsistentGroupProtocol, &r.member_id), fx);
            return None;
        }
        if r.member_id.is_empty() && r.group_instance_id.is_none() {
            // KIP-394: hand out an id and ask the member to join again with it. An id nobody
            // joins with is forgotten after the session timeout, so it stops holding rebalances.
            group.next_member += 1;
            let member_id = format!("{}-{}", r.client_id, group.next_member);
            group.pending.insert(member_id.clone(), now.plus_ms(r.session_timeout_ms));
            respond(from, correlation_id, join_error(ErrorCode::MemberIdRequired, &member_id), fx);
            self.schedule_session_check(&r.group_id, fx);
            return None;
        }
        let mut member_id = r.member_id.clone();
        let mut new_static_member = false;
        // A static member that came back forces a rebalance unless the group is Stable and keeps
        // its protocol.
        let mut replaced_static_member = false;
        if let Some(instance) = &r.group_instance_id {
            let existing =
                group.members.values().find(|m| m.instance_id.as_ref() == Some(instance)).map(|m| m.member_id.clone());
            match existing {
                Some(old) if r.member_id.is_empty() => {
                    // A static member came back (a restart): it takes over its old identity, and
                    // whoever still waits as the old member is fenced (Kafka's replaceStaticMember).
                    let leader_before = group.leader.clone().unwrap_or_default();
                    group.next_member += 1;
                    let new_id = format!("{instance}-{}", group.next_member);
                    let mut m = group.members.remove(&old).expect("found");
                    if let Some(c) = m.join.take() {
                        respond(m.client, c, join_error(ErrorCode::FencedInstanceId, &old), fx);
                    }
                    if let Some(c) = m.sync.take() {
                        respond(m.client, c, sync_error(ErrorCode::FencedInstanceId), fx);
                    }
                    let old_client = m.client;
                    let old_protocols = std::mem::replace(&mut m.protocols, r.protocols.clone());
                    m.member_id = new_id.clone();
                    m.client = from;
                    m.last_seen = now;
                    m.session_timeout_ms = r.session_timeout_ms;
                    m.rebalance_timeout_ms = r.rebalance_timeout_ms;
                    // Kafka's replaceStaticMember: the new id takes the old one's place, leadership
                    // included.
                    if group.leader.as_ref() == Some(&old) {
                        group.leader = Some(new_id.clone());
                    }
                    group.members.insert(new_id.clone(), m);
                    fx.note(Note::StaticMemberReturned {
                        group: group.id.clone(),
                        instance: instance.clone(),
                        member: new_id.clone(),
                    });
                    if group.state == GroupState::Stable && group.select_protocol() == group.protocol {
                        // No rebalance: store the new id, then the member gets the current
                        // generation and syncs its old share. It is told the leader from before,
                        // so a returning leader does not compute an assignment nobody would hear.
                        group.members.get_mut(&new_id).expect("inserted").join = Some(correlation_id);
                        let completion = Completion::StaticMemberReplaced {
                            group: group.id.clone(),
                            instance: instance.clone(),
                            old_member_id: old,
                            old_client,
                            old_protocols,
                            new_member_id: new_id,
                            leader: leader_before,
                        };
                        return Some(store_group(group, completion));
                    }
                    member_id = new_id;
                    replaced_static_member = true;
                }
                Some(old) if r.member_id != old => {
                    // Another process holds the instance now: this one is a zombie
                    // (`ClassicGroup.validateMember` in `classicGroupJoinExistingMember`).
                    respond(from, correlation_id, join_error(ErrorCode::FencedInstanceId, &r.member_id), fx);
                    return None;
                }
                Some(_) => {}
                None if r.member_id.is_empty() => {
                    group.next_member += 1;
                    member_id = format!("{instance}-{}", group.next_member);
                    new_static_member = true;
                }
                // A member id for an instance the group does not know: start over without it.
                None => {}
            }
        }
        let known = group.members.contains_key(&member_id);
        let was_pending = group.pending.remove(&member_id).is_some();
        if !known && !was_pending && !new_static_member {
            respond(from, correlation_id, join_error(ErrorCode::UnknownMemberId, &member_id), fx);
            return None;
        }
        if !known && group.state == GroupState::PreparingRebalance && group.generation == 0 {
            // Kafka's addMemberAndRebalance: the initial delay may be extended for it.
            group.new_member_added = true;
        }
        if !known {
            if group.members.is_empty() {
                // Kafka's `ClassicGroup.add`: the first member sets the group's protocol type.
                group.protocol_type = Some(r.protocol_type.clone());
            }
            group.add_member(Member {
                member_id: member_id.clone(),
                instance_id: r.group_instance_id.clone(),
                client: from,
                session_timeout_ms: r.session_timeout_ms,
                rebalance_timeout_ms: r.rebalance_timeout_ms,
                protocols: Vec::new(),
                assignment: MemberAssignment::Empty,
                joined: 0,
                join: None,
                sync: None,
                last_seen: now,
            });
        }
        let member = group.members.get_mut(&member_id).expect("present");
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
            GroupState::Stable if known && !is_leader && !metadata_changed && !replaced_static_member => {
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
                None
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, &r.group_id, fx),
            _ => self.prepare_rebalance(now, &r.group_id, fx),
        }
    }

    fn prepare_rebalance(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) -> Option<Append> {
        let delay_ms = self.config.initial_rebalance_delay_ms;
        let group = self.groups.get_mut(group_id).expect("exists");
        if group.state == GroupState::CompletingRebalance {
            // The assignment being synced is void: members must rejoin.
            for m in group.members.values_mut() {
                m.assignment = MemberAssignment::Empty;
                if let Some(c) = m.sync.take() {
                    respond(m.client, c, sync_error(ErrorCode::RebalanceInProgress), fx);
                }
            }
        }
        let timeout = group.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
        group.rebalance_deadline = now.plus_ms(timeout);
        let at = if group.state == GroupState::Empty {
            // Kafka's InitialDelayedJoin: wait for more members before the first generation.
            let delay =
                InitialDelay { until: now.plus_ms(delay_ms), delay_ms, remaining_ms: timeout.saturating_sub(delay_ms) };
            group.initial_delay = Some(delay);
            group.new_member_added = false;
            delay.until
        } else {
            group.rebalance_deadline
        };
        if group.state != GroupState::PreparingRebalance {
            group.state = GroupState::PreparingRebalance;
            Self::note_state(group, fx);
        }
        fx.set_timer(Timer::GroupRebalance(group_id.to_string()), at);
        self.maybe_complete_join(now, group_id, fx)
    }

    /// Finish the join phase if every member has rejoined, no member id handed out is still to
    /// be used, and no initial delay is running.
    fn maybe_complete_join(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) -> Option<Append> {
        let group = self.groups.get(group_id).expect("exists");
        let all_joined = group.members.values().all(|m| m.join.is_some()) && group.pending.is_empty();
        if group.state == GroupState::PreparingRebalance && all_joined && group.initial_delay.is_none() {
            self.complete_join(now, group_id, fx)
        } else {
            None
        }
    }

    /// Start the next generation. A group left with no members becomes Empty, and that is
    /// written (Kafka's onCompleteJoin: storeGroup with no assignment).
    fn complete_join(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) -> Option<Append> {
        let group = self.groups.get_mut(group_id).expect("exists");
        group.initial_delay = None;
        group.new_member_added = false;
        // Dynamic members that did not rejoin within the rebalance timeout are out. Static ones
        // stay, with their old subscription, until their session expires (KIP-345; Kafka's
        // completeClassicGroupJoin removes `notYetRejoinedDynamicMembers` only).
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.join.is_none() && m.instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            group.remove_member(&id);
            fx.note(Note::MemberRemoved {
                group: group_id.to_string(),
                member: id,
                reason: "did not rejoin within the rebalance timeout".into(),
            });
        }
        if !group.members.is_empty() && !group.elect_joined_leader() {
            // Only static members are left and none rejoined: Kafka waits another rebalance
            // timeout (their sessions expire meanwhile if they are gone).
            let timeout = group.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
            group.rebalance_deadline = now.plus_ms(timeout);
            fx.set_timer(Timer::GroupRebalance(group_id.to_string()), group.rebalance_deadline);
            return None;
        }
        group.generation += 1;
        fx.cancel_timer(Timer::GroupRebalance(group_id.to_string()));
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.leader = None;
            group.protocol = None;
            Self::note_state(group, fx);
            return Some(store_group(group, Completion::StoreGroup { group: group_id.to_string() }));
        }
        let leader = group.leader.clone().expect("a member rejoined and leads");
        group.protocol = group.select_protocol();
        let protocol = group.protocol.clone();
        let members: Vec<(String, Option<String>, MemberMetadata)> = group
            .members
            .values()
            .map(|m| {
                let sub = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, s)| s.clone())
                    .expect("the selected protocol is one every member offers");
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
        None
    }

    // ---- SyncGroup ----------------------------------------------------------------------------

    pub fn sync(&mut self, from: NodeId, correlation_id: u64, r: SyncGroupRequest, fx: &mut Effects) -> Option<Append> {
        let Some(group) = self.groups.get_mut(&r.group_id) else {
            respond(from, correlation_id, sync_error(ErrorCode::UnknownMemberId), fx);
            return None;
        };
        // Kafka's validateSyncGroup: the member (and its instance) first, then the generation.
        let error = match group.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
            Err(error) => Some(error),
            Ok(()) if r.generation != group.generation => Some(ErrorCode::IllegalGeneration),
            Ok(()) if group.state == GroupState::PreparingRebalance => Some(ErrorCode::RebalanceInProgress),
            Ok(()) => None,
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
        let completion = Completion::Sync { group: group.id.clone(), generation: group.generation };
        Some(store_group(group, completion))
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
        // Kafka's validateClassicGroupHeartbeat: the member (and its instance: a replaced process
        // hears FENCED_INSTANCE_ID, not UNKNOWN_MEMBER_ID), then the generation. Only a valid
        // heartbeat keeps the session alive (rescheduleClassicGroupMemberHeartbeat).
        let error = match self.groups.get_mut(&r.group_id) {
            None => ErrorCode::UnknownMemberId,
            Some(group) => match group.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
                Err(error) => error,
                Ok(()) if r.generation != group.generation => ErrorCode::IllegalGeneration,
                Ok(()) => {
                    group.members.get_mut(&r.member_id).expect("validated").last_seen = now;
                    if group.state == GroupState::PreparingRebalance {
                        ErrorCode::RebalanceInProgress
                    } else {
                        ErrorCode::None
                    }
                }
            },
        };
        respond(from, correlation_id, Response::Heartbeat(HeartbeatResponse { error }), fx);
    }

    /// Returns the group write to append, if the last member left (the Empty generation).
    pub fn leave(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        r: LeaveGroupRequest,
        fx: &mut Effects,
    ) -> Option<Append> {
        // Kafka's classicGroupLeaveToClassicGroup: an empty member id with an instance id removes
        // that static member (an administrator's removal); a pending member simply goes; anyone
        // else must pass validateMember, so a replaced process cannot remove its successor.
        let Some(group) = self.groups.get_mut(&r.group_id) else {
            respond(from, correlation_id, leave_response(ErrorCode::UnknownMemberId), fx);
            return None;
        };
        let member_id = if r.member_id.is_empty() {
            let instance = r.group_instance_id.as_deref();
            let holder = group.members.values().find(|m| instance.is_some() && m.instance_id.as_deref() == instance);
            holder.map(|m| m.member_id.clone()).ok_or(ErrorCode::UnknownMemberId)
        } else if group.pending.remove(&r.member_id).is_some() {
            respond(from, correlation_id, leave_response(ErrorCode::None), fx);
            return self.maybe_complete_join(now, &r.group_id, fx);
        } else {
            group.validate_member(&r.member_id, r.group_instance_id.as_deref()).map(|()| r.member_id.clone())
        };
        let member_id = match member_id {
            Ok(id) => id,
            Err(error) => {
                respond(from, correlation_id, leave_response(error), fx);
                return None;
            }
        };
        let member = group.remove_member(&member_id).expect("validated");
        if let Some(c) = member.join {
            respond(member.client, c, join_error(ErrorCode::UnknownMemberId, &member_id), fx);
        }
        if let Some(c) = member.sync {
            respond(member.client, c, sync_error(ErrorCode::UnknownMemberId), fx);
        }
        respond(from, correlation_id, leave_response(ErrorCode::None), fx);
        fx.note(Note::MemberRemoved { group: r.group_id.clone(), member: member_id, reason: "left the group".into() });
        self.after_member_loss(now, &r.group_id, fx)
    }

    fn after_member_loss(&mut self, now: SimTime, group_id: &str, fx: &mut Effects) -> Option<Append> {
        let group = self.groups.get_mut(group_id).expect("exists");
        if group.members.is_empty() && group.state != GroupState::PreparingRebalance {
            // Kafka rebalances to the next generation, which has nobody in it: Empty, stored.
            group.state = GroupState::Empty;
            group.generation += 1;
            group.leader = None;
            group.protocol = None;
            Self::note_state(group, fx);
            Some(store_group(group, Completion::StoreGroup { group: group_id.to_string() }))
        } else if group.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now, group_id, fx)
        } else {
            self.prepare_rebalance(now, group_id, fx)
        }
    }

    fn schedule_session_check(&self, group_id: &str, fx: &mut Effects) {
        let Some(group) = self.groups.get(group_id) else { return };
        let members =
            group.members.values().filter(|m| m.join.is_none()).map(|m| m.last_seen.plus_ms(m.session_timeout_ms));
        if let Some(at) = members.chain(group.pending.values().copied()).min() {
            fx.set_timer(Timer::GroupSessionCheck(group_id.to_string()), at.plus_us(1));
        }
    }

    /// Returns the group write to append, if the timer left the group Empty.
    pub fn on_timer(&mut self, now: SimTime, timer: &Timer, fx: &mut Effects) -> Option<Append> {
        match timer {
            Timer::GroupRebalance(id) => {
                let initial_delay_ms = self.config.initial_rebalance_delay_ms;
                let group = self.groups.get_mut(id)?;
                if group.state != GroupState::PreparingRebalance {
                    return None;
                }
                if let Some(delay) = group.initial_delay {
                    if now < delay.until {
                        fx.set_timer(timer.clone(), delay.until);
                        return None;
                    }
                    if group.new_member_added && delay.remaining_ms != 0 {
                        // Kafka's InitialDelayedJoin.onComplete: somebody new joined meanwhile,
                        // so wait once more for the rest of the group.
                        group.new_member_added = false;
                        let delay_ms = initial_delay_ms.min(delay.remaining_ms);
                        let next = InitialDelay {
                            until: now.plus_ms(delay_ms),
                            delay_ms,
                            remaining_ms: delay.remaining_ms.saturating_sub(delay.delay_ms),
                        };
                        group.initial_delay = Some(next);
                        fx.set_timer(timer.clone(), next.until);
                        return None;
                    }
                    return self.complete_join(now, id, fx);
                }
                let all_joined = group.members.values().all(|m| m.join.is_some());
                if all_joined || now >= group.rebalance_deadline {
                    self.complete_join(now, id, fx)
                } else {
                    fx.set_timer(timer.clone(), group.rebalance_deadline);
                    None
                }
            }
            Timer::GroupSessionCheck(id) => {
                let group = self.groups.get_mut(id)?;
                let expired_pending: Vec<String> =
                    group.pending.iter().filter(|(_, until)| now >= **until).map(|(m, _)| m.clone()).collect();
                for member in expired_pending.iter() {
                    group.pending.remove(member);
                    fx.note(Note::MemberRemoved {
                        group: id.clone(),
                        member: member.clone(),
                        reason: "never joined with the member id it was given, within session.timeout.ms".into(),
                    });
                }
                let expired: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| m.join.is_none() && now.ms_since(m.last_seen) >= m.session_timeout_ms)
                    .map(|m| m.member_id.clone())
                    .collect();
                for member in &expired {
                    let m = group.remove_member(member).expect("listed");
                    if let Some(c) = m.sync {
                        respond(m.client, c, sync_error(ErrorCode::UnknownMemberId), fx);
                    }
                    fx.note(Note::MemberRemoved {
                        group: id.clone(),
                        member: member.clone(),
                        reason: format!("no heartbeat within session.timeout.ms={}", m.session_timeout_ms),
                    });
                }
                let append = if !expired.is_empty() {
                    self.after_member_loss(now, id, fx)
                } else if !expired_pending.is_empty() {
                    // Kafka's removePendingMemberAndUpdateGroup: the join may be complete now.
                    self.maybe_complete_join(now, id, fx)
                } else {
                    None
                };
                self.schedule_session_check(id, fx);
                append
            }
            _ => None,
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
        // Kafka's ClassicGroup.validateOffsetCommit.
        let error = if r.generation < 0 && group.members.is_empty() {
            // A commit from outside the group protocol (a "simple" consumer, an admin): allowed
            // only while nobody is a member.
            None
        } else if r.generation >= 0 || !r.member_id.is_empty() || r.group_instance_id.is_some() {
            match group.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
                Err(error) => Some(error),
                Ok(()) if r.generation != group.generation => Some(ErrorCode::IllegalGeneration),
                Ok(()) if group.state == GroupState::CompletingRebalance => Some(ErrorCode::RebalanceInProgress),
                Ok(()) => None,
            }
        } else {
            Some(ErrorCode::UnknownMemberId)
        };
        if let Some(error) = error {
            respond(from, correlation_id, Response::OffsetCommit(OffsetCommitResponse { error }), fx);
            return None;
        }
        let records = r
            .offsets
            .iter()
            .map(|(tp, offset)| Record {
                key: Some(offset_key(&r.group_id, tp)),
                value: Some(offset.to_string()),
                headers: Vec::new(),
            })
            .collect();
        Some(Append {
            partition: group.partition,
            records,
            producer: None,
            completion: Completion::Commit { group: r.group_id, client: from, correlation_id, offsets: r.offsets },
        })
    }

    /// TxnOffsetCommit (`OffsetMetadataManager.commitTransactionalOffset`): the group checks the
    /// request's member as for a plain commit (`ClassicGroup.validateOffsetCommit` with
    /// `isTransactional`: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION; a rebalance in
    /// progress does not refuse it), so a zombie that lost its partitions cannot commit offsets
    /// for them through a transaction either (KIP-447). The offsets are written as a
    /// transactional batch of the producer and stay pending until its marker.
    pub fn txn_commit(
        &mut self,
        from: NodeId,
        correlation_id: u64,
        partition: i32,
        r: TxnOffsetCommitRequest,
        fx: &mut Effects,
    ) -> Option<Append> {
        let group = self.group_mut(&r.group_id, partition);
        let error = if r.generation < 0 && r.member_id.is_empty() && r.group_instance_id.is_none() {
            // A producer that sends no group metadata (before KIP-447) is not checked.
            None
        } else {
            match group.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
                Err(error) => Some(error),
                Ok(()) if r.generation != group.generation => Some(ErrorCode::IllegalGeneration),
                Ok(()) => None,
            }
        };
        if let Some(error) = error {
            fx.note(Note::TxnOffsetCommitRefused {
                group: r.group_id.clone(),
                transactional_id: r.transactional_id.clone(),
                member: r.member_id.clone(),
                generation: r.generation,
                error,
            });
            respond(from, correlation_id, Response::TxnOffsetCommit(TxnOffsetCommitResponse { error }), fx);
            return None;
        }
        let records = r
            .offsets
            .iter()
            .map(|(tp, offset)| Record {
                key: Some(offset_key(&r.group_id, tp)),
                value: Some(offset.to_string()),
                headers: Vec::new(),
            })
            .collect();
        Some(Append {
            partition: group.partition,
            records,
            producer: Some((r.producer_id, r.producer_epoch)),
            completion: Completion::TxnCommit {
                group: r.group_id,
                client: from,
                correlation_id,
                producer_id: r.producer_id,
                offsets: r.offsets,
            },
        })
    }

    /// A transaction marker for `producer_id` is committed in `__consumer_offsets-partition`
    /// (`GroupCoordinator.onTransactionCompleted` / `GroupMetadataManager.handleTxnCompletion`):
    /// its pending offsets become the group's committed offsets, or vanish.
    pub fn on_txn_completed(&mut self, partition: i32, producer_id: i64, committed: bool, fx: &mut Effects) {
        for (id, group) in self.groups.iter_mut().filter(|(_, g)| g.partition == partition) {
            let Some(pending) = group.pending_txn_offsets.remove(&producer_id) else { continue };
            for (tp, offset) in pending {
                if committed {
                    group.offsets.insert(tp.clone(), offset);
                    fx.note(Note::OffsetCommitted { group: id.clone(), partition: tp, offset });
                } else {
                    fx.note(Note::TxnOffsetAborted { group: id.clone(), partition: tp, offset });
                }
            }
        }
    }

    /// Whether a transaction's offsets for `tp` are pending in `group` (for the checker and tests).
    pub fn has_pending_txn_offsets(&self, group: &str, tp: &TopicPartition) -> bool {
        self.groups.get(group).is_some_and(|g| g.pending_txn_offsets.values().any(|p| p.contains_key(tp)))
    }

    /// OffsetFetch. With `require_stable` (KIP-447), a partition with transactional offsets still
    /// pending is answered UNSTABLE_OFFSET_COMMIT (`OffsetMetadataManager.fetchOffsets`): a new
    /// owner must not start from an offset an open transaction may still replace. Kafka answers
    /// per partition; ksim's response carries one error, so any unstable partition fails it.
    pub fn fetch_offsets(&self, from: NodeId, correlation_id: u64, r: OffsetFetchRequest, fx: &mut Effects) {
        let group = self.groups.get(&r.group_id);
        let unstable = r.require_stable
            && r.partitions
                .iter()
                .any(|tp| group.is_some_and(|g| g.pending_txn_offsets.values().any(|p| p.contains_key(tp))));
        if unstable {
            let body = Response::OffsetFetch(OffsetFetchResponse {
                error: ErrorCode::UnstableOffsetCommit,
                offsets: Vec::new(),
            });
            respond(from, correlation_id, body, fx);
            return;
        }
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
    pub fn on_append_done(&mut self, now: SimTime, completion: Completion, error: ErrorCode, fx: &mut Effects) {
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
            Completion::TxnCommit { group, client, correlation_id, producer_id, offsets } => {
                if error.is_none() {
                    if let Some(g) = self.groups.get_mut(&group) {
                        let pending = g.pending_txn_offsets.entry(producer_id).or_default();
                        for (tp, offset) in offsets {
                            pending.insert(tp, offset);
                        }
                    }
                }
                let error = if error.is_none() { error } else { ErrorCode::NotCoordinator };
                respond(client, correlation_id, Response::TxnOffsetCommit(TxnOffsetCommitResponse { error }), fx);
            }
            Completion::Sync { group, generation } => {
                let Some(g) = self.groups.get_mut(&group) else { return };
                if g.generation != generation || g.state != GroupState::CompletingRebalance {
                    return;
                }
                if !error.is_none() {
                    // Kafka's doSyncGroup: the assignment is void, everyone waiting hears why,
                    // and the group rebalances again.
                    let error = group_store_error(error);
                    for m in g.members.values_mut() {
                        m.assignment = MemberAssignment::Empty;
                        if let Some(c) = m.sync.take() {
                            respond(m.client, c, sync_error(error), fx);
                        }
                    }
                    let append = self.prepare_rebalance(now, &group, fx);
                    assert!(append.is_none(), "a group with members does not empty itself by starting a rebalance");
                    return;
                }
                g.state = GroupState::Stable;
                Self::note_state(g, fx);
                for m in g.members.values_mut() {
                    // The note lists partitions: a consumer group's (a worker's assignment is in
                    // the SyncGroup answers).
                    let consumer = matches!(m.assignment, MemberAssignment::Consumer(_) | MemberAssignment::Empty);
                    if consumer {
                        fx.note(Note::AssignmentStored {
                            group: group.clone(),
                            generation,
                            member: m.member_id.clone(),
                            partitions: m.assignment.partitions().to_vec(),
                        });
                    }
                    if let Some(c) = m.sync.take() {
                        let body = Response::SyncGroup(SyncGroupResponse {
                            error: ErrorCode::None,
                            assignment: m.assignment.clone(),
                        });
                        respond(m.client, c, body, fx);
                    }
                }
            }
            // Nobody waits on it; Kafka only logs a failure.
            Completion::StoreGroup { .. } => {}
            Completion::StaticMemberReplaced {
                group,
                instance,
                old_member_id,
                old_client,
                old_protocols,
                new_member_id,
                leader,
            } => {
                let Some(g) = self.groups.get_mut(&group) else { return };
                let Some(m) = g.members.get_mut(&new_member_id) else { return };
                // Answered already if a rebalance completed meanwhile.
                let Some(c) = m.join.take() else { return };
                let client = m.client;
                if error.is_none() {
                    let body = Response::JoinGroup(JoinGroupResponse {
                        error: ErrorCode::None,
                        generation: g.generation,
                        protocol: g.protocol.clone(),
                        leader,
                        member_id: new_member_id,
                        members: Vec::new(),
                    });
                    respond(client, c, body, fx);
                    return;
                }
                // The new id is not stored: put the old member back, as it was.
                let mut m = g.members.remove(&new_member_id).expect("present");
                assert_eq!(m.instance_id.as_ref(), Some(&instance), "a replaced member keeps its instance id");
                m.member_id = old_member_id.clone();
                m.client = old_client;
                m.protocols = old_protocols;
                if g.leader.as_ref() == Some(&new_member_id) {
                    g.leader = Some(old_member_id.clone());
                }
                g.members.insert(old_member_id, m);
                respond(client, c, join_error(group_store_error(error), ""), fx);
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
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            offsets: BTreeMap::new(),
            pending_txn_offsets: BTreeMap::new(),
            next_member: 0,
            initial_delay: None,
            new_member_added: false,
            rebalance_deadline: SimTime::ZERO,
            checked_generation: Cell::new(i32::MIN),
        }
    }

    /// Add a member (Kafka's `ClassicGroup.add`): the first member of a group without a leader
    /// becomes its leader (`if (!leaderId.isPresent()) leaderId = memberId`).
    fn add_member(&mut self, mut member: Member) {
        member.joined = self.members.values().map(|m| m.joined + 1).max().unwrap_or(0);
        if self.leader.is_none() {
            self.leader = Some(member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Remove a member (Kafka's `ClassicGroup.remove`). A leader that goes is replaced at once.
    /// Kafka takes the first member id its `HashMap` yields, an order set by the ids' hashes
    /// (random UUIDs in Kafka's ids): ksim takes the earliest remaining joiner instead, a choice
    /// that is deterministic and means the same thing to a reader.
    fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.values().min_by_key(|m| m.joined).map(|m| m.member_id.clone());
        }
        removed
    }

    /// Kafka's `ClassicGroup.maybeElectNewJoinedLeader`, at the end of the join phase: a leader
    /// that did not rejoin hands over to a member that did (the earliest joiner among them, where
    /// Kafka takes the first its `HashMap` yields). False if no member rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let leader_rejoined = self.leader.as_ref().and_then(|l| self.members.get(l)).is_some_and(|m| m.join.is_some());
        if leader_rejoined {
            return true;
        }
        let joined = self.members.values().filter(|m| m.join.is_some()).min_by_key(|m| m.joined);
        match joined.map(|m| m.member_id.clone()) {
            Some(id) => {
                self.leader = Some(id);
                true
            }
            None => false,
        }
    }

    /// Kafka's `ClassicGroup.validateMember`: a request naming a `group.instance.id` must come
    /// from the member id that holds the instance now: an instance the group does not know is
    /// UNKNOWN_MEMBER_ID, one held by another member id FENCED_INSTANCE_ID (the process that
    /// sent it was replaced by a newer one). Without an instance id, the member must exist.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ErrorCode> {
        if let Some(instance) = instance_id {
            match self.members.values().find(|m| m.instance_id.as_deref() == Some(instance)) {
                None => return Err(ErrorCode::UnknownMemberId),
                Some(m) if m.member_id != member_id => return Err(ErrorCode::FencedInstanceId),
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ErrorCode::UnknownMemberId)
        }
    }

    /// Kafka's `ClassicGroup.supportsProtocols`: an Empty group takes any member with at least one
    /// protocol; otherwise the member must be of the group's protocol type and one of its
    /// protocols must be supported by every member.
    fn supports_protocols(&self, protocol_type: &ProtocolType, protocols: &[(String, MemberMetadata)]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.name().is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_ref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    /// Kafka's `ClassicGroup.selectProtocol`: the candidates are the protocols every member
    /// supports; each member votes for the first candidate in its own preference order, and the
    /// protocol with the most votes wins. On a tie Kafka keeps the first of the tied protocols its
    /// `HashMap<String, Integer>` of votes yields (`Stream.max` keeps the earlier of two equal
    /// elements), an order set by the names' `hashCode`s, which ksim replays (members vote in join
    /// order, which only matters for names whose hashes share a bucket). None: no candidate.
    fn select_protocol(&self) -> Option<String> {
        let mut voters: Vec<&Member> = self.members.values().collect();
        voters.sort_by_key(|m| m.joined);
        let supported_by_all = |name: &str| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name));
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        let mut voted_in_order: Vec<&str> = Vec::new();
        for member in voters {
            let Some(vote) = member.protocols.iter().map(|(n, _)| n.as_str()).find(|n| supported_by_all(n)) else {
                continue;
            };
            let count = votes.entry(vote).or_insert(0);
            if *count == 0 {
                voted_in_order.push(vote);
            }
            *count += 1;
        }
        let mut best: Option<&str> = None;
        for protocol in hash_map_order(voted_in_order) {
            if best.is_none_or(|b| votes[protocol] > votes[b]) {
                best = Some(protocol);
            }
        }
        best.map(str::to_string)
    }
}

/// A JoinGroup refused with `error`: no generation, no leader, no members.
pub(crate) fn join_error(error: ErrorCode, member_id: &str) -> Response {
    Response::JoinGroup(JoinGroupResponse {
        error,
        generation: -1,
        protocol: None,
        leader: String::new(),
        member_id: member_id.to_string(),
        members: Vec::new(),
    })
}

fn leave_response(error: ErrorCode) -> Response {
    Response::LeaveGroup(LeaveGroupResponse { error })
}

fn sync_error(error: ErrorCode) -> Response {
    Response::SyncGroup(SyncGroupResponse { error, assignment: MemberAssignment::Empty })
}

#[cfg(test)]
mod tests {
    //! The coordinator driven the way a broker drives it: each request goes in with a fresh
    //! correlation id, timers fire in time order, and every `Append` is written to a stand-in
    //! `__consumer_offsets` log before `on_append_done`. The reference is Kafka's own coordinator
    //! (`GroupCoordinator.scala`, KIP-394, KIP-345).

    use super::*;

    const GROUP: &str = "orders";
    const PARTITION: i32 = 0;
    const TOPIC: &str = "events";
    const SESSION_TIMEOUT_MS: u64 = 10_000;
    const REBALANCE_TIMEOUT_MS: u64 = 60_000;
    /// Every test run stops after this many timer firings: a loop that never ends is a bug.
    const TIMER_FIRINGS_MAX: usize = 1_000;

    /// A broker that leads `__consumer_offsets-0` and hosts one coordinator.
    struct Broker {
        coordinator: GroupCoordinator,
        now: SimTime,
        next_correlation_id: u64,
        /// Every response sent, by correlation id (unique across clients in these tests).
        responses: BTreeMap<u64, (NodeId, Response)>,
        timers: BTreeMap<Timer, SimTime>,
        /// `__consumer_offsets-0`: the records of every append that completed.
        log: Vec<Record>,
        notes: Vec<Note>,
        /// Each client's `group.instance.id`, as its last JoinGroup gave it: every later request
        /// from that client carries it, as a consumer's do.
        instances: BTreeMap<u32, String>,
    }

    fn client(index: u32) -> NodeId {
        NodeId::Client(index)
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new(TOPIC, partition)
    }

    fn protocols(topics: &[&str]) -> Vec<(String, MemberMetadata)> {
        let topics = topics.iter().map(|t| t.to_string()).collect();
        vec![(
            "range".to_string(),
            MemberMetadata::Consumer(Subscription { topics, owned_partitions: Vec::new(), generation: -1 }),
        )]
    }

    /// A consumer's `partition.assignment.strategy`: these assignors, in preference order.
    fn assignors(names: &[&str]) -> Vec<(String, MemberMetadata)> {
        let sub = Subscription { topics: vec![TOPIC.to_string()], owned_partitions: Vec::new(), generation: -1 };
        names.iter().map(|n| (n.to_string(), MemberMetadata::Consumer(sub.clone()))).collect()
    }

    impl Broker {
        fn new(initial_rebalance_delay_ms: u64) -> Self {
            Self::from_log(initial_rebalance_delay_ms, Vec::new(), SimTime::ZERO)
        }

        /// A broker that has just become leader of `__consumer_offsets-0` holding `log`.
        fn from_log(initial_rebalance_delay_ms: u64, log: Vec<Record>, now: SimTime) -> Self {
            let mut broker = Broker {
                coordinator: GroupCoordinator::new(CoordinatorConfig { initial_rebalance_delay_ms }),
                now,
                next_correlation_id: 0,
                responses: BTreeMap::new(),
                timers: BTreeMap::new(),
                log: log.clone(),
                notes: Vec::new(),
                instances: BTreeMap::new(),
            };
            let mut fx = Effects::default();
            broker.coordinator.load(PARTITION, log.into_iter(), now, &mut fx);
            broker.absorb(fx);
            broker
        }

        fn absorb(&mut self, fx: Effects) {
            for (to, message) in fx.sends {
                let Message::Response { correlation_id, body } = message else {
                    panic!("the coordinator only answers requests, it sent {message:?}");
                };
                let earlier = self.responses.insert(correlation_id, (to, body));
                assert!(earlier.is_none(), "request #{correlation_id} was answered twice");
            }
            crate::effects::TimerOp::apply_all(fx.timer_ops, &mut self.timers);
            self.notes.extend(fx.notes);
        }

        fn correlation_id(&mut self) -> u64 {
            self.next_correlation_id += 1;
            self.next_correlation_id
        }

        /// Move the clock forward, firing each timer that comes due, in time order.
        fn advance_ms(&mut self, ms: u64) {
            let until = self.now.plus_ms(ms);
            for _ in 0..TIMER_FIRINGS_MAX {
                let due = self.timers.iter().filter(|(_, at)| **at <= until).min_by_key(|(t, at)| (**at, (*t).clone()));
                let Some((timer, at)) = due.map(|(t, at)| (t.clone(), *at)) else {
                    self.now = until;
                    return;
                };
                self.timers.remove(&timer);
                self.now = self.now.max(at);
                let mut fx = Effects::default();
                let append = self.coordinator.on_timer(self.now, &timer, &mut fx);
                self.absorb(fx);
                self.write_if_any(append);
            }
            panic!("more than {TIMER_FIRINGS_MAX} timer firings before {until}");
        }

        fn join_as(&mut self, from: u32, member_id: &str, instance: Option<&str>, topics: &[&str]) -> u64 {
            self.join_with(from, member_id, instance, protocols(topics))
        }

        fn join_with(
            &mut self,
            from: u32,
            member_id: &str,
            instance: Option<&str>,
            protocols: Vec<(String, MemberMetadata)>,
        ) -> u64 {
            let correlation_id = self.correlation_id();
            match instance {
                Some(i) => self.instances.insert(from, i.to_string()),
                None => self.instances.remove(&from),
            };
            let request = JoinGroupRequest {
                group_id: GROUP.to_string(),
                client_id: format!("consumer-{from}"),
                member_id: member_id.to_string(),
                group_instance_id: instance.map(str::to_string),
                session_timeout_ms: SESSION_TIMEOUT_MS,
                rebalance_timeout_ms: REBALANCE_TIMEOUT_MS,
                protocol_type: match protocols.first() {
                    Some((_, MemberMetadata::Connect(_))) => ProtocolType::Connect,
                    _ => ProtocolType::Consumer,
                },
                protocols,
            };
            let mut fx = Effects::default();
            let append = self.coordinator.join(self.now, client(from), correlation_id, PARTITION, request, &mut fx);
            self.absorb(fx);
            self.write_if_any(append);
            correlation_id
        }

        fn join(&mut self, from: u32, member_id: &str, instance: Option<&str>) -> u64 {
            self.join_as(from, member_id, instance, &[TOPIC])
        }

        /// KIP-394: a new dynamic member's first JoinGroup, answered with the id to join with.
        fn member_id_required(&mut self, from: u32) -> String {
            let c = self.join(from, "", None);
            let reply = self.join_reply(c).expect("MEMBER_ID_REQUIRED is immediate");
            assert_eq!(reply.error, ErrorCode::MemberIdRequired);
            reply.member_id
        }

        fn sync(
            &mut self,
            from: u32,
            member_id: &str,
            generation: i32,
            assignments: Vec<(String, Vec<TopicPartition>)>,
        ) -> (u64, Option<Append>) {
            let correlation_id = self.correlation_id();
            let request = SyncGroupRequest {
                group_id: GROUP.to_string(),
                generation,
                member_id: member_id.to_string(),
                group_instance_id: self.instances.get(&from).cloned(),
                assignments: assignments.into_iter().map(|(m, p)| (m, p.into())).collect(),
            };
            let mut fx = Effects::default();
            let append = self.coordinator.sync(client(from), correlation_id, request, &mut fx);
            self.absorb(fx);
            (correlation_id, append)
        }

        /// The broker appended `append`; now it is committed (`ErrorCode::None`) or failed.
        fn write(&mut self, append: Append, error: ErrorCode) {
            assert_eq!(append.partition, PARTITION);
            if error.is_none() {
                self.log.extend(append.records);
            }
            let mut fx = Effects::default();
            self.coordinator.on_append_done(self.now, append.completion, error, &mut fx);
            self.absorb(fx);
        }

        /// A group write the coordinator asked for on its own (not a sync or a commit): the
        /// broker appends it at once, and here it always commits.
        fn write_if_any(&mut self, append: Option<Append>) {
            if let Some(append) = append {
                self.write(append, ErrorCode::None);
            }
        }

        fn heartbeat(&mut self, from: u32, member_id: &str, generation: i32) -> ErrorCode {
            let correlation_id = self.correlation_id();
            let request = HeartbeatRequest {
                group_id: GROUP.to_string(),
                generation,
                member_id: member_id.to_string(),
                group_instance_id: self.instances.get(&from).cloned(),
            };
            let mut fx = Effects::default();
            self.coordinator.heartbeat(self.now, client(from), correlation_id, request, &mut fx);
            self.absorb(fx);
            match self.reply(correlation_id) {
                Some(Response::Heartbeat(r)) => r.error,
                other => panic!("heartbeat #{correlation_id} answered with {other:?}"),
            }
        }

        fn leave(&mut self, from: u32, member_id: &str) -> ErrorCode {
            let correlation_id = self.correlation_id();
            let request = LeaveGroupRequest {
                group_id: GROUP.to_string(),
                member_id: member_id.to_string(),
                group_instance_id: self.instances.get(&from).cloned(),
            };
            let mut fx = Effects::default();
            let append = self.coordinator.leave(self.now, client(from), correlation_id, request, &mut fx);
            self.absorb(fx);
            self.write_if_any(append);
            match self.reply(correlation_id) {
                Some(Response::LeaveGroup(r)) => r.error,
                other => panic!("leave #{correlation_id} answered with {other:?}"),
            }
        }

        fn commit(
            &mut self,
            from: u32,
            member_id: &str,
            generation: i32,
            offsets: Vec<(TopicPartition, i64)>,
        ) -> (u64, Option<Append>) {
            let correlation_id = self.correlation_id();
            let request = OffsetCommitRequest {
                group_id: GROUP.to_string(),
                generation,
                member_id: member_id.to_string(),
                group_instance_id: self.instances.get(&from).cloned(),
                offsets,
            };
            let mut fx = Effects::default();
            let append = self.coordinator.commit(client(from), correlation_id, PARTITION, request, &mut fx);
            self.absorb(fx);
            (correlation_id, append)
        }

        fn fetch(&mut self, partitions: &[TopicPartition]) -> Vec<(TopicPartition, i64)> {
            let correlation_id = self.correlation_id();
            let request = OffsetFetchRequest {
                group_id: GROUP.to_string(),
                partitions: partitions.to_vec(),
                require_stable: true,
            };
            let mut fx = Effects::default();
            self.coordinator.fetch_offsets(client(0), correlation_id, request, &mut fx);
            self.absorb(fx);
            match self.reply(correlation_id) {
                Some(Response::OffsetFetch(r)) => {
                    assert_eq!(r.error, ErrorCode::None);
                    r.offsets.clone()
                }
                other => panic!("offset fetch #{correlation_id} answered with {other:?}"),
            }
        }

        fn reply(&self, correlation_id: u64) -> Option<&Response> {
            self.responses.get(&correlation_id).map(|(_, r)| r)
        }

        fn join_reply(&self, correlation_id: u64) -> Option<JoinGroupResponse> {
            match self.reply(correlation_id) {
                None => None,
                Some(Response::JoinGroup(r)) => Some(r.clone()),
                Some(other) => panic!("join #{correlation_id} answered with {other:?}"),
            }
        }

        fn sync_reply(&self, correlation_id: u64) -> Option<SyncGroupResponse> {
            match self.reply(correlation_id) {
                None => None,
                Some(Response::SyncGroup(r)) => Some(r.clone()),
                Some(other) => panic!("sync #{correlation_id} answered with {other:?}"),
            }
        }

        fn commit_reply(&self, correlation_id: u64) -> Option<ErrorCode> {
            match self.reply(correlation_id) {
                None => None,
                Some(Response::OffsetCommit(r)) => Some(r.error),
                Some(other) => panic!("commit #{correlation_id} answered with {other:?}"),
            }
        }

        fn state(&self) -> (GroupState, i32) {
            self.coordinator.group_state(GROUP).expect("the group exists")
        }
    }

    /// A group that went through one whole rebalance: the members (client index, optional
    /// `group.instance.id`) joined in order, the leader gave member `i` partition `i`, the
    /// assignment was written, and everyone synced. Returns the member ids, in join order.
    fn stable_group(members: &[(u32, Option<&str>)]) -> (Broker, Vec<String>) {
        let mut b = Broker::new(0);
        let joins: Vec<u64> = members
            .iter()
            .map(|&(c, instance)| {
                let id = if instance.is_none() { b.member_id_required(c) } else { String::new() };
                b.join(c, &id, instance)
            })
            .collect();
        b.advance_ms(0);
        let replies: Vec<JoinGroupResponse> =
            joins.iter().map(|c| b.join_reply(*c).expect("the join phase completed")).collect();
        let ids: Vec<String> = replies.iter().map(|r| r.member_id.clone()).collect();
        let leader = replies[0].leader.clone();
        let assignments: Vec<(String, Vec<TopicPartition>)> =
            ids.iter().enumerate().map(|(i, id)| (id.clone(), vec![tp(i as i32)])).collect();
        let leader_index = ids.iter().position(|id| *id == leader).expect("the leader is a member");
        let (c, append) = b.sync(members[leader_index].0, &leader, 1, assignments);
        b.write(append.expect("the leader's SyncGroup writes the assignment"), ErrorCode::None);
        assert_eq!(
            b.sync_reply(c).expect("answered once written").assignment,
            MemberAssignment::from(vec![tp(leader_index as i32)])
        );
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != leader_index) {
            let (c, append) = b.sync(members[i].0, id, 1, Vec::new());
            assert!(append.is_none());
            assert_eq!(
                b.sync_reply(c).expect("a Stable group answers at once").assignment,
                MemberAssignment::from(vec![tp(i as i32)])
            );
        }
        assert_eq!(b.state(), (GroupState::Stable, 1));
        (b, ids)
    }

    // ---- (1) KIP-394 ----------------------------------------------------------------------------

    #[test]
    fn first_join_without_member_id_gets_member_id_required_then_rejoin_with_it_is_accepted() {
        let mut b = Broker::new(0);
        let c = b.join(1, "", None);
        let reply = b.join_reply(c).expect("answered at once");
        assert_eq!(reply.error, ErrorCode::MemberIdRequired);
        assert!(!reply.member_id.is_empty(), "MEMBER_ID_REQUIRED carries the id to use");
        assert_eq!(reply.generation, -1);
        // The id is only reserved: the member is not in the group until it joins with it.
        assert_eq!(b.state(), (GroupState::Empty, 0));

        let c = b.join(1, &reply.member_id, None);
        b.advance_ms(0);
        let joined = b.join_reply(c).expect("the join phase completed");
        assert_eq!(joined.error, ErrorCode::None);
        assert_eq!(joined.member_id, reply.member_id);
        assert_eq!(joined.generation, 1);
        assert_eq!(joined.leader, reply.member_id, "the only member leads");
        assert_eq!(joined.members.len(), 1);
        assert_eq!(b.state(), (GroupState::CompletingRebalance, 1));
    }

    #[test]
    fn every_member_id_required_hands_out_a_different_id() {
        let mut b = Broker::new(0);
        let first = b.member_id_required(1);
        let second = b.member_id_required(1);
        assert_ne!(first, second);
    }

    #[test]
    fn join_with_a_member_id_the_coordinator_never_issued_is_unknown_member_id() {
        let mut b = Broker::new(0);
        let c = b.join(1, "made-up-id", None);
        assert_eq!(b.join_reply(c).expect("answered at once").error, ErrorCode::UnknownMemberId);
        assert_eq!(b.state(), (GroupState::Empty, 0));
    }

    // ---- (2) join, sync, initial delay --------------------------------------------------------

    #[test]
    fn leader_sync_is_written_before_the_group_is_stable_and_each_member_gets_its_own_share() {
        let mut b = Broker::new(0);
        let a = b.member_id_required(1);
        let c_join_a = b.join(1, &a, None);
        let d = b.member_id_required(2);
        let c_join_d = b.join(2, &d, None);
        b.advance_ms(0);

        assert_eq!(b.state(), (GroupState::CompletingRebalance, 1));
        let join_a = b.join_reply(c_join_a).expect("joined");
        let join_d = b.join_reply(c_join_d).expect("joined");
        assert_eq!((join_a.error, join_d.error), (ErrorCode::None, ErrorCode::None));
        assert_eq!((join_a.generation, join_d.generation), (1, 1));
        assert_eq!(join_a.leader, join_d.leader, "both are told the same leader");
        let (leader, leader_client, follower, follower_client) =
            if join_a.leader == a { (a, 1, d, 2) } else { (d, 2, a, 1) };
        let leader_reply = if leader_client == 1 { &join_a } else { &join_d };
        let follower_reply = if leader_client == 1 { &join_d } else { &join_a };
        let mut subscribed: Vec<&str> = leader_reply.members.iter().map(|(id, _, _)| id.as_str()).collect();
        subscribed.sort();
        let mut expected = vec![leader.as_str(), follower.as_str()];
        expected.sort();
        assert_eq!(subscribed, expected, "only the leader gets every member's subscription");
        assert!(follower_reply.members.is_empty());
        assert_eq!(leader_reply.members[0].2.subscription().expect("consumer").topics, vec![TOPIC.to_string()]);

        // The follower's SyncGroup waits for the leader's assignment.
        let (c_sync_follower, append) = b.sync(follower_client, &follower, 1, Vec::new());
        assert!(append.is_none());
        assert!(b.sync_reply(c_sync_follower).is_none());

        let assignments = vec![(leader.clone(), vec![tp(0)]), (follower.clone(), vec![tp(1), tp(2)])];
        let (c_sync_leader, append) = b.sync(leader_client, &leader, 1, assignments);
        let append = append.expect("the leader's assignment is written to __consumer_offsets");
        assert_eq!(append.completion, Completion::Sync { group: GROUP.to_string(), generation: 1 });
        // Nobody hears about the assignment until the write commits.
        assert!(b.sync_reply(c_sync_leader).is_none());
        assert!(b.sync_reply(c_sync_follower).is_none());
        assert_eq!(b.state(), (GroupState::CompletingRebalance, 1));

        b.write(append, ErrorCode::None);
        assert_eq!(b.state(), (GroupState::Stable, 1));
        let leader_sync = b.sync_reply(c_sync_leader).expect("answered");
        let follower_sync = b.sync_reply(c_sync_follower).expect("answered");
        assert_eq!(
            leader_sync,
            SyncGroupResponse { error: ErrorCode::None, assignment: MemberAssignment::from(vec![tp(0)]) }
        );
        assert_eq!(
            follower_sync,
            SyncGroupResponse { error: ErrorCode::None, assignment: MemberAssignment::from(vec![tp(1), tp(2)]) }
        );
        assert_eq!(b.responses[&c_sync_follower].0, client(follower_client), "each answer goes to its own client");
    }

    #[test]
    fn sync_errors_for_an_unknown_member_an_old_generation_and_a_rebalance_in_progress() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        // (member, generation, expected)
        let cases = [
            ("never-joined", 1, ErrorCode::UnknownMemberId),
            (ids[0].as_str(), 0, ErrorCode::IllegalGeneration),
            (ids[0].as_str(), 1, ErrorCode::None),
        ];
        for (member, generation, expected) in cases {
            let (c, append) = b.sync(1, member, generation, Vec::new());
            assert!(append.is_none());
            assert_eq!(b.sync_reply(c).expect("answered at once").error, expected, "{member} generation {generation}");
        }
        assert_eq!(b.leave(2, &ids[1]), ErrorCode::None);
        let (c, _) = b.sync(1, &ids[0], 1, Vec::new());
        assert_eq!(b.sync_reply(c).expect("answered at once").error, ErrorCode::RebalanceInProgress);
    }

    #[test]
    fn initial_rebalance_delay_holds_the_first_join_of_an_empty_group() {
        let mut b = Broker::new(3_000);
        let a = b.member_id_required(1);
        let c = b.join(1, &a, None);
        b.advance_ms(2_999);
        assert!(b.join_reply(c).is_none(), "group.initial.rebalance.delay.ms has not passed");
        assert_eq!(b.state(), (GroupState::PreparingRebalance, 0));
        b.advance_ms(1);
        assert_eq!(b.join_reply(c).expect("the delay is over").generation, 1);
        assert_eq!(b.state(), (GroupState::CompletingRebalance, 1));
    }

    #[test]
    fn initial_rebalance_delay_applies_only_to_an_empty_group() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        b.coordinator.config.initial_rebalance_delay_ms = 3_000;
        assert_eq!(b.leave(2, &ids[1]), ErrorCode::None);
        let c = b.join(1, &ids[0], None);
        let reply = b.join_reply(c).expect("the only member rejoined: no delay");
        assert_eq!(reply.generation, 2);
    }

    #[test]
    fn member_joining_during_the_initial_delay_rearms_a_whole_delay_when_it_expires() {
        // Kafka (InitialDelayedJoin.onComplete / tryCompleteInitialRebalanceElseSchedule): when the
        // delay expires and a new member was added meanwhile, it schedules another full
        // `group.initial.rebalance.delay.ms`. A at 0 and B at 1s with a 3s delay: join completes at 6s.
        let mut b = Broker::new(3_000);
        let a = b.member_id_required(1);
        let c = b.join(1, &a, None);
        b.advance_ms(1_000);
        let d = b.member_id_required(2);
        b.join(2, &d, None);
        b.advance_ms(4_999);
        assert!(b.join_reply(c).is_none(), "still waiting at 5.999s");
        b.advance_ms(1);
        assert_eq!(b.join_reply(c).expect("complete at 6s").generation, 1);
    }

    // ---- (3) heartbeats -------------------------------------------------------------------------

    #[test]
    fn heartbeat_in_a_stable_group_checks_member_then_generation() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        // (case, member, generation, expected)
        let cases = [
            ("current member, current generation", ids[0].as_str(), 1, ErrorCode::None),
            ("unknown member", "never-joined", 1, ErrorCode::UnknownMemberId),
            ("unknown member with an old generation", "never-joined", 0, ErrorCode::UnknownMemberId),
            ("old generation", ids[1].as_str(), 0, ErrorCode::IllegalGeneration),
            ("future generation", ids[1].as_str(), 2, ErrorCode::IllegalGeneration),
        ];
        for (case, member, generation, expected) in cases {
            assert_eq!(b.heartbeat(1, member, generation), expected, "{case}");
        }
        assert_eq!(b.state(), (GroupState::Stable, 1), "heartbeats never change the group");
    }

    #[test]
    fn heartbeat_tells_members_of_a_rebalance_and_of_a_generation_they_missed() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None), (3, None)]);
        assert_eq!(b.leave(3, &ids[2]), ErrorCode::None);
        assert_eq!(b.state(), (GroupState::PreparingRebalance, 1));
        assert_eq!(b.heartbeat(1, &ids[0], 1), ErrorCode::RebalanceInProgress, "PreparingRebalance");
        assert_eq!(b.heartbeat(2, &ids[1], 1), ErrorCode::RebalanceInProgress, "PreparingRebalance");
        assert_eq!(b.heartbeat(3, &ids[2], 1), ErrorCode::UnknownMemberId, "the member that left");

        let c1 = b.join(1, &ids[0], None);
        let c2 = b.join(2, &ids[1], None);
        assert_eq!(b.join_reply(c1).expect("all rejoined").generation, 2);
        assert_eq!(b.join_reply(c2).expect("all rejoined").generation, 2);
        assert_eq!(b.state(), (GroupState::CompletingRebalance, 2));
        // Kafka treats a heartbeat between JoinGroup and SyncGroup as a normal one.
        assert_eq!(b.heartbeat(1, &ids[0], 2), ErrorCode::None, "CompletingRebalance, new generation");
        assert_eq!(b.heartbeat(2, &ids[1], 1), ErrorCode::IllegalGeneration, "the generation before the rebalance");
    }

    // ---- (4) sessions and leaving ---------------------------------------------------------------

    #[test]
    fn member_whose_heartbeats_stop_is_removed_after_session_timeout_and_the_group_rebalances() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        let session_check = Timer::GroupSessionCheck(GROUP.to_string());
        assert!(b.timers.contains_key(&session_check), "the coordinator watches sessions with a timer");
        // Member 0 heartbeats every 3s; member 1 has gone quiet since time 0.
        for _ in 0..3 {
            b.advance_ms(3_000);
            assert_eq!(b.heartbeat(1, &ids[0], 1), ErrorCode::None);
        }
        b.advance_ms(SESSION_TIMEOUT_MS - 1 - 9_000);
        assert_eq!(b.state(), (GroupState::Stable, 1), "9.999s: within session.timeout.ms");
        b.advance_ms(2);
        assert_eq!(b.state(), (GroupState::PreparingRebalance, 1), "10.001s: the silent member is out");
        assert!(b.notes.iter().any(|n| matches!(n, Note::MemberRemoved { member, .. } if *member == ids[1])));

        assert_eq!(b.heartbeat(1, &ids[0], 1), ErrorCode::RebalanceInProgress);
        let c = b.join(1, &ids[0], None);
        let reply = b.join_reply(c).expect("the only member left has rejoined");
        assert_eq!(reply.generation, 2);
        let members: Vec<&str> = reply.members.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(members, vec![ids[0].as_str()]);
        assert_eq!(b.heartbeat(2, &ids[1], 1), ErrorCode::UnknownMemberId);
    }

    #[test]
    fn heartbeats_keep_a_member_in_the_group_past_its_session_timeout() {
        let (mut b, ids) = stable_group(&[(1, None)]);
        for _ in 0..10 {
            b.advance_ms(SESSION_TIMEOUT_MS / 2);
            assert_eq!(b.heartbeat(1, &ids[0], 1), ErrorCode::None);
        }
        assert_eq!(b.state(), (GroupState::Stable, 1));
    }

    #[test]
    fn leave_group_triggers_a_rebalance_and_the_last_member_leaving_empties_the_group() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        assert_eq!(b.leave(9, "never-joined"), ErrorCode::UnknownMemberId);
        assert_eq!(b.state(), (GroupState::Stable, 1));

        assert_eq!(b.leave(2, &ids[1]), ErrorCode::None);
        assert_eq!(b.state(), (GroupState::PreparingRebalance, 1));
        let c = b.join(1, &ids[0], None);
        assert_eq!(b.join_reply(c).expect("rejoined").leader, ids[0]);
        let (c, append) = b.sync(1, &ids[0], 2, vec![(ids[0].clone(), vec![tp(0), tp(1)])]);
        b.write(append.expect("assignment written"), ErrorCode::None);
        assert_eq!(b.sync_reply(c).expect("synced").assignment, MemberAssignment::from(vec![tp(0), tp(1)]));
        assert_eq!(b.state(), (GroupState::Stable, 2));

        // Kafka's next generation of an empty group: generation + 1, no leader, state Empty.
        assert_eq!(b.leave(1, &ids[0]), ErrorCode::None);
        assert_eq!(b.state(), (GroupState::Empty, 3));
    }

    #[test]
    fn member_leaving_while_others_sync_voids_the_assignment() {
        let mut b = Broker::new(0);
        let a = b.member_id_required(1);
        let c_a = b.join(1, &a, None);
        let d = b.member_id_required(2);
        b.join(2, &d, None);
        b.advance_ms(0);
        let leader = b.join_reply(c_a).expect("joined").leader;
        let (follower, follower_client) = if leader == a { (d, 2) } else { (a, 1) };
        let leader_client = 3 - follower_client;
        let (c_follower, _) = b.sync(follower_client, &follower, 1, Vec::new());
        assert_eq!(b.leave(leader_client, &leader), ErrorCode::None);
        assert_eq!(b.sync_reply(c_follower).expect("answered").error, ErrorCode::RebalanceInProgress);
        assert_eq!(b.state().0, GroupState::PreparingRebalance);
    }

    #[test]
    fn group_emptied_by_leaves_is_still_empty_after_coordinator_failover() {
        let (mut b, ids) = stable_group(&[(1, None)]);
        assert_eq!(b.leave(1, &ids[0]), ErrorCode::None);
        assert_eq!(b.state(), (GroupState::Empty, 2));
        let failover = Broker::from_log(0, b.log.clone(), b.now);
        assert_eq!(failover.state(), (GroupState::Empty, 2));
    }

    #[test]
    fn pending_member_that_never_rejoins_stops_blocking_the_rebalance_after_its_session_timeout() {
        let (mut b, ids) = stable_group(&[(1, None)]);
        // A second consumer gets its member id at time 0 and dies before rejoining.
        b.member_id_required(2);
        // The leader rejoins (Kafka: a leader's JoinGroup in Stable forces a rebalance).
        b.advance_ms(1_000);
        let c = b.join(1, &ids[0], None);
        assert!(b.join_reply(c).is_none(), "waits for the pending member");
        assert_eq!(b.heartbeat(1, &ids[0], 1), ErrorCode::RebalanceInProgress);
        b.advance_ms(SESSION_TIMEOUT_MS);
        assert_eq!(b.join_reply(c).expect("the pending member expired at 10s").generation, 2);
    }

    #[test]
    fn failed_assignment_write_sends_the_group_back_to_preparing_rebalance() {
        let mut b = Broker::new(0);
        let a = b.member_id_required(1);
        b.join(1, &a, None);
        b.advance_ms(0);
        let (c, append) = b.sync(1, &a, 1, vec![(a.clone(), vec![tp(0)])]);
        b.write(append.expect("written"), ErrorCode::RequestTimedOut);
        assert!(!b.sync_reply(c).expect("answered").error.is_none());
        assert_eq!(b.state(), (GroupState::PreparingRebalance, 1));
    }

    // ---- (5) static membership (KIP-345) --------------------------------------------------------

    #[test]
    fn static_member_joins_without_member_id_required() {
        let mut b = Broker::new(0);
        let c = b.join(1, "", Some("instance-a"));
        b.advance_ms(0);
        let reply = b.join_reply(c).expect("joined");
        assert_eq!(reply.error, ErrorCode::None, "KIP-394 exempts static members");
        assert_eq!(reply.members[0].1.as_deref(), Some("instance-a"));
    }

    #[test]
    fn static_member_restarting_gets_a_new_id_and_its_old_assignment_without_a_rebalance() {
        let (mut b, ids) = stable_group(&[(1, Some("instance-a")), (2, Some("instance-b"))]);
        let answered = b.responses.len();
        // instance-b restarts (as client 3) and joins without a member id.
        let c = b.join(3, "", Some("instance-b"));
        let reply = b.join_reply(c).expect("answered at once: no rebalance");
        assert_eq!(reply.error, ErrorCode::None);
        assert_eq!(reply.generation, 1, "the current generation");
        assert_ne!(reply.member_id, ids[1], "a new member id replaces the old one");
        assert!(reply.members.is_empty());
        assert_eq!(b.state(), (GroupState::Stable, 1));
        assert_eq!(b.responses.len(), answered + 1, "nobody else was asked to rejoin");
        assert!(b.notes.iter().any(|n| matches!(n, Note::StaticMemberReturned { .. })));

        let (c, append) = b.sync(3, &reply.member_id, 1, Vec::new());
        assert!(append.is_none());
        assert_eq!(
            b.sync_reply(c).expect("Stable: answered at once").assignment,
            MemberAssignment::from(vec![tp(1)]),
            "its old share"
        );
        assert_eq!(b.heartbeat(1, &ids[0], 1), ErrorCode::None, "the other member is undisturbed");
        assert_eq!(b.heartbeat(3, &reply.member_id, 1), ErrorCode::None);
        assert_eq!(
            b.heartbeat(2, &ids[1], 1),
            ErrorCode::FencedInstanceId,
            "the replaced process is fenced (ClassicGroup.validateMember), not told to rejoin"
        );
    }

    #[test]
    fn static_member_joining_with_a_replaced_member_id_is_fenced() {
        let (mut b, ids) = stable_group(&[(1, Some("instance-a")), (2, Some("instance-b"))]);
        let c = b.join(3, "", Some("instance-b"));
        let new_id = b.join_reply(c).expect("replaced").member_id;
        // The old process, still alive, rejoins with its old member id.
        let c = b.join(2, &ids[1], Some("instance-b"));
        assert_eq!(b.join_reply(c).expect("answered at once").error, ErrorCode::FencedInstanceId);
        assert_eq!(b.heartbeat(3, &new_id, 1), ErrorCode::None, "the new process keeps the instance");
    }

    #[test]
    fn static_member_replacement_survives_coordinator_failover() {
        let (mut b, _) = stable_group(&[(1, Some("instance-a")), (2, Some("instance-b"))]);
        let c = b.join(3, "", Some("instance-b"));
        let new_id = b.join_reply(c).expect("replaced").member_id;
        let mut failover = Broker::from_log(0, b.log.clone(), b.now);
        assert_eq!(failover.heartbeat(3, &new_id, 1), ErrorCode::None);
    }

    #[test]
    fn static_member_replaced_while_syncing_fences_the_old_members_sync() {
        let mut b = Broker::new(0);
        let c_a = b.join(1, "", Some("instance-a"));
        let c_b = b.join(2, "", Some("instance-b"));
        b.advance_ms(0);
        let leader = b.join_reply(c_a).expect("joined").leader;
        let old_b = b.join_reply(c_b).expect("joined").member_id;
        assert_ne!(leader, old_b, "instance-a joined first and leads");
        let (c_old_sync, _) = b.sync(2, &old_b, 1, Vec::new());
        // instance-b restarts as client 3 before the leader's assignment arrives.
        b.join(3, "", Some("instance-b"));
        let (to, body) = b.responses.get(&c_old_sync).expect("the old member's SyncGroup is answered").clone();
        assert_eq!(to, client(2));
        assert_eq!(
            body,
            Response::SyncGroup(SyncGroupResponse {
                error: ErrorCode::FencedInstanceId,
                assignment: MemberAssignment::Empty
            })
        );
    }

    #[test]
    fn replaced_static_member_is_fenced_on_every_request_and_cannot_remove_its_successor() {
        let (mut b, ids) = stable_group(&[(1, Some("instance-a")), (2, Some("instance-b"))]);
        let c = b.join(3, "", Some("instance-b"));
        let new_id = b.join_reply(c).expect("replaced").member_id;
        // Client 2, the replaced process, still runs with its old member id and instance-b.
        // (case, error the request hears): ClassicGroup.validateMember, from each handler.
        assert_eq!(b.heartbeat(2, &ids[1], 1), ErrorCode::FencedInstanceId, "heartbeat");
        let (c, _) = b.sync(2, &ids[1], 1, Vec::new());
        assert_eq!(b.sync_reply(c).expect("answered at once").error, ErrorCode::FencedInstanceId, "sync");
        let (c, append) = b.commit(2, &ids[1], 1, vec![(tp(1), 5)]);
        assert!(append.is_none(), "a fenced commit is not written");
        assert_eq!(b.commit_reply(c), Some(ErrorCode::FencedInstanceId), "commit");
        assert_eq!(b.leave(2, &ids[1]), ErrorCode::FencedInstanceId, "leave");
        assert_eq!(b.heartbeat(3, &new_id, 1), ErrorCode::None, "the successor keeps the instance");
        assert_eq!(b.state(), (GroupState::Stable, 1), "nothing the old process sent moved the group");
    }

    #[test]
    fn static_member_that_heartbeats_but_does_not_rejoin_stays_in_the_next_generation() {
        // KIP-345: completeClassicGroupJoin removes only dynamic members that did not rejoin.
        let (mut b, ids) = stable_group(&[(1, None), (2, Some("instance-b"))]);
        let d = b.member_id_required(3);
        let c3 = b.join(3, &d, None);
        let c1 = b.join(1, &ids[0], None);
        for _ in 0..(REBALANCE_TIMEOUT_MS / 5_000) {
            b.advance_ms(5_000);
            if b.join_reply(c1).is_none() {
                assert_eq!(b.heartbeat(2, &ids[1], 1), ErrorCode::RebalanceInProgress, "alive, not rejoining");
            }
        }
        let reply = b.join_reply(c1).expect("the join phase ended at the rebalance timeout");
        assert_eq!(reply.generation, 2);
        assert!(b.join_reply(c3).is_some());
        let mut members: Vec<&str> = reply.members.iter().map(|(id, _, _)| id.as_str()).collect();
        members.sort();
        let mut expected = vec![ids[0].as_str(), ids[1].as_str(), d.as_str()];
        expected.sort();
        assert_eq!(members, expected, "the static member is still one of the members the leader assigns");
        assert!(!b.notes.iter().any(|n| matches!(n, Note::MemberRemoved { member, .. } if *member == ids[1])));
        assert_eq!(b.heartbeat(2, &ids[1], 1), ErrorCode::IllegalGeneration, "it learns it must rejoin");
    }

    // ---- (8) leader and protocol ----------------------------------------------------------------

    #[test]
    fn the_first_member_to_join_leads_not_the_smallest_member_id() {
        let mut b = Broker::new(0);
        let first = b.member_id_required(9);
        let c = b.join(9, &first, None);
        let second = b.member_id_required(1);
        b.join(1, &second, None);
        assert!(second < first, "{second} sorts before {first}");
        b.advance_ms(0);
        assert_eq!(b.join_reply(c).expect("joined").leader, first, "ClassicGroup.add: the first member leads");
    }

    #[test]
    fn a_leader_that_leaves_hands_over_to_the_earliest_remaining_joiner() {
        let (mut b, ids) = stable_group(&[(9, None), (5, None), (1, None)]);
        assert_eq!(b.leave(9, &ids[0]), ErrorCode::None);
        let c = b.join(1, &ids[2], None);
        b.join(5, &ids[1], None);
        let reply = b.join_reply(c).expect("both rejoined");
        assert!(ids[2] < ids[1], "{} sorts before {}", ids[2], ids[1]);
        assert_eq!(reply.leader, ids[1], "the second member to join leads once the first left");
    }

    #[test]
    fn a_leader_that_does_not_rejoin_hands_over_to_the_earliest_member_that_did() {
        // Kafka's completeClassicGroupJoin drops the dynamic members that did not rejoin
        // (ClassicGroup.remove picks a new leader) and maybeElectNewJoinedLeader makes sure the
        // leader is one that rejoined.
        let (mut b, ids) = stable_group(&[(9, None), (5, None), (1, None)]);
        // A new member starts a rebalance; the leader stays alive (it heartbeats) but does not
        // rejoin, so it is dropped when the rebalance timeout ends the join phase.
        let d = b.member_id_required(7);
        b.join(7, &d, None);
        let c1 = b.join(1, &ids[2], None);
        let c5 = b.join(5, &ids[1], None);
        for _ in 0..(REBALANCE_TIMEOUT_MS / 5_000) {
            b.advance_ms(5_000);
            if b.join_reply(c1).is_none() {
                assert_eq!(b.heartbeat(9, &ids[0], 1), ErrorCode::RebalanceInProgress);
            }
        }
        let reply = b.join_reply(c1).expect("the rebalance timeout ended the join phase");
        assert_eq!(reply.leader, ids[1], "the earliest joiner among the members left");
        assert_eq!(b.join_reply(c5).expect("answered").members.len(), 3, "the new leader gets every member");
    }

    #[test]
    fn the_assignor_is_chosen_by_majority_vote_among_the_assignors_every_member_supports() {
        // (case, each member's assignors in preference order, in join order, the group's assignor)
        let cases: [(&str, Vec<Vec<&str>>, &str); 5] = [
            (
                "the majority's choice beats the first joiner's (leader's) first choice",
                vec![vec!["roundrobin", "range"], vec!["range", "roundrobin"], vec!["range", "roundrobin"]],
                "range",
            ),
            ("an assignor one member lacks is no candidate", vec![vec!["sticky", "range"], vec!["range"]], "range"),
            (
                "each member votes for its first candidate",
                vec![vec!["sticky", "roundrobin", "range"], vec!["roundrobin", "range"], vec!["roundrobin", "range"]],
                "roundrobin",
            ),
            (
                "a tie goes to the first Java's HashMap of votes yields: range (bucket 9) before roundrobin (10)",
                vec![vec!["roundrobin", "range"], vec!["range", "roundrobin"]],
                "range",
            ),
            (
                "a tie: sticky (bucket 8) before range (9), whoever joined first",
                vec![vec!["range", "sticky"], vec!["sticky", "range"]],
                "sticky",
            ),
        ];
        for (case, members, expected) in cases {
            let mut b = Broker::new(0);
            let mut joins = Vec::new();
            for (i, names) in members.iter().enumerate() {
                let client = i as u32 + 1;
                let c = b.join_with(client, "", None, assignors(names));
                let id = b.join_reply(c).expect("MEMBER_ID_REQUIRED").member_id;
                joins.push(b.join_with(client, &id, None, assignors(names)));
            }
            b.advance_ms(0);
            let reply = b.join_reply(joins[0]).expect("joined");
            assert_eq!(reply.error, ErrorCode::None, "{case}");
            assert_eq!(reply.protocol.as_deref(), Some(expected), "{case}");
        }
    }

    #[test]
    fn member_sharing_no_assignor_with_the_group_gets_inconsistent_group_protocol_and_the_group_stays_stable() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        // (case, its assignors, the answer to its first JoinGroup)
        let cases = [
            ("no assignor in common", vec!["roundrobin"], ErrorCode::InconsistentGroupProtocol),
            ("one in common is enough", vec!["roundrobin", "range"], ErrorCode::MemberIdRequired),
        ];
        for (case, names, expected) in cases {
            let c = b.join_with(3, "", None, assignors(&names));
            assert_eq!(b.join_reply(c).expect("answered at once").error, expected, "{case}");
            assert_eq!(b.state(), (GroupState::Stable, 1), "{case}: no rebalance");
        }
        assert_eq!(b.heartbeat(1, &ids[0], 1), ErrorCode::None);
        // An existing member that changes to assignors nobody else has is refused too.
        let c = b.join_with(2, &ids[1], None, assignors(&["roundrobin"]));
        assert_eq!(b.join_reply(c).expect("answered at once").error, ErrorCode::InconsistentGroupProtocol);
        assert_eq!(b.state(), (GroupState::Stable, 1));
        // An Empty group takes any assignor.
        let mut b = Broker::new(0);
        let c = b.join_with(1, "", None, assignors(&["roundrobin"]));
        assert_eq!(b.join_reply(c).expect("answered at once").error, ErrorCode::MemberIdRequired);
    }

    #[test]
    fn a_connect_worker_joining_a_consumer_group_of_the_same_name_gets_inconsistent_group_protocol() {
        use crate::connect::protocol::WorkerMetadata;
        let worker = |name: &str| {
            let md = WorkerMetadata { url: "http://w:8083/".into(), config_offset: 0, owned: Some(Vec::new()) };
            vec![(name.to_string(), MemberMetadata::Connect(md))]
        };
        let (mut b, _) = stable_group(&[(1, None), (2, None)]);
        // (case, its protocol name: the same name as the group's assignor does not help)
        for (case, name) in [("a Connect protocol", "sessioned"), ("an assignor's name", "range")] {
            let c = b.join_with(3, "", None, worker(name));
            assert_eq!(
                b.join_reply(c).expect("answered at once").error,
                ErrorCode::InconsistentGroupProtocol,
                "{case}"
            );
            assert_eq!(b.state(), (GroupState::Stable, 1), "{case}: no rebalance");
        }
        // An Empty group takes the first member's protocol type, and then keeps to it.
        let mut b = Broker::new(0);
        let c = b.join_with(1, "", None, worker("sessioned"));
        assert_eq!(b.join_reply(c).expect("answered at once").error, ErrorCode::MemberIdRequired);
    }

    // ---- (6) offsets --------------------------------------------------------------------------

    #[test]
    fn offset_commit_is_checked_against_the_member_and_its_generation() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        assert_eq!(b.leave(2, &ids[1]), ErrorCode::None);
        let c = b.join(1, &ids[0], None);
        assert_eq!(b.join_reply(c).expect("rejoined").generation, 2);
        // CompletingRebalance: the member knows generation 2 but has no assignment yet.
        let (c, append) = b.commit(1, &ids[0], 2, vec![(tp(0), 5)]);
        assert!(append.is_none());
        assert_eq!(b.commit_reply(c), Some(ErrorCode::RebalanceInProgress));
        let (_, append) = b.sync(1, &ids[0], 2, vec![(ids[0].clone(), vec![tp(0), tp(1)])]);
        b.write(append.expect("assignment written"), ErrorCode::None);
        assert_eq!(b.state(), (GroupState::Stable, 2));

        // (case, member, generation, expected)
        let cases = [
            ("stale generation", ids[0].as_str(), 1, ErrorCode::IllegalGeneration),
            ("member that left", ids[1].as_str(), 1, ErrorCode::UnknownMemberId),
            ("never a member", "never-joined", 2, ErrorCode::UnknownMemberId),
            ("outside the group while it has members", "", -1, ErrorCode::UnknownMemberId),
        ];
        for (case, member, generation, expected) in cases {
            let (c, append) = b.commit(1, member, generation, vec![(tp(0), 5)]);
            assert!(append.is_none(), "{case}: nothing is written");
            assert_eq!(b.commit_reply(c), Some(expected), "{case}");
        }
        assert_eq!(b.fetch(&[tp(0)]), vec![(tp(0), -1)], "no rejected commit is visible");
    }

    #[test]
    fn committed_offset_is_visible_to_offset_fetch_only_after_its_append_completes() {
        let (mut b, ids) = stable_group(&[(1, None)]);
        let (c, append) = b.commit(1, &ids[0], 1, vec![(tp(0), 42), (tp(1), 7)]);
        let append = append.expect("a valid commit is written to __consumer_offsets");
        assert_eq!(append.records.len(), 2, "one record per partition");
        assert_eq!(b.commit_reply(c), None, "answered once written");
        assert_eq!(b.fetch(&[tp(0), tp(1)]), vec![(tp(0), -1), (tp(1), -1)]);

        b.write(append, ErrorCode::None);
        assert_eq!(b.commit_reply(c), Some(ErrorCode::None));
        assert_eq!(b.fetch(&[tp(0), tp(1), tp(2)]), vec![(tp(0), 42), (tp(1), 7), (tp(2), -1)]);
    }

    #[test]
    fn offset_commit_whose_append_fails_is_not_visible() {
        let (mut b, ids) = stable_group(&[(1, None)]);
        let (c, append) = b.commit(1, &ids[0], 1, vec![(tp(0), 42)]);
        b.write(append.expect("written"), ErrorCode::RequestTimedOut);
        let error = b.commit_reply(c).expect("answered");
        assert!(!error.is_none() && error.is_retriable(), "a retriable error, got {error}");
        assert_eq!(b.fetch(&[tp(0)]), vec![(tp(0), -1)]);
    }

    #[test]
    fn offset_commit_from_outside_the_group_protocol_is_allowed_while_the_group_is_empty() {
        let mut b = Broker::new(0);
        let (c, append) = b.commit(1, "", -1, vec![(tp(3), 100)]);
        b.write(append.expect("a simple consumer may commit to an empty group"), ErrorCode::None);
        assert_eq!(b.commit_reply(c), Some(ErrorCode::None));
        assert_eq!(b.fetch(&[tp(3)]), vec![(tp(3), 100)]);
    }

    // ---- (7) coordinator failover -------------------------------------------------------------

    #[test]
    fn load_from_the_coordinators_own_records_restores_offsets_and_the_group() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        for (partition, offset) in [(0, 10), (1, 20), (0, 15)] {
            let (_, append) = b.commit(1, &ids[0], 1, vec![(tp(partition), offset)]);
            b.write(append.expect("written"), ErrorCode::None);
        }
        b.advance_ms(1_000);

        // The broker dies; another becomes leader of __consumer_offsets-0 and replays it.
        let mut failover = Broker::from_log(0, b.log.clone(), b.now);
        assert!(failover.coordinator.coordinates(PARTITION));
        assert_eq!(failover.fetch(&[tp(0), tp(1)]), vec![(tp(0), 15), (tp(1), 20)], "the last commit wins");
        assert_eq!(failover.state(), (GroupState::Stable, 1));
        assert!(failover.notes.iter().any(|n| matches!(n, Note::GroupLoaded { members: 2, offsets: 2, .. })));
        assert_eq!(failover.heartbeat(1, &ids[0], 1), ErrorCode::None, "members carry on where they were");
        let (c, _) = failover.sync(2, &ids[1], 1, Vec::new());
        assert_eq!(
            failover.sync_reply(c).expect("Stable").assignment,
            MemberAssignment::from(vec![tp(1)]),
            "assignments survive too"
        );

        // Member ids handed out after the failover do not collide with the old ones.
        let fresh = failover.member_id_required(3);
        assert!(!ids.contains(&fresh), "{fresh} reuses an id from before the failover");
    }

    #[test]
    fn loaded_members_that_never_heartbeat_again_expire_after_session_timeout() {
        let (b, ids) = stable_group(&[(1, None), (2, None)]);
        let mut failover = Broker::from_log(0, b.log.clone(), SimTime::from_ms(5_000));
        failover.advance_ms(SESSION_TIMEOUT_MS / 2);
        assert_eq!(failover.heartbeat(1, &ids[0], 1), ErrorCode::None);
        failover.advance_ms(SESSION_TIMEOUT_MS / 2 + 1);
        assert_eq!(failover.state(), (GroupState::PreparingRebalance, 1), "the silent member expired");
    }

    /// Issue 12 (`process-before-commit-duplicates` seed 21): a paused coordinator is re-elected
    /// for a newer epoch while a member waits in JoinGroup. The load finds the partition already
    /// owned and keeps the group, so the member is answered when the rebalance completes.
    #[test]
    fn reelected_coordinator_keeps_a_pending_join_and_answers_it() {
        let mut b = Broker::new(3_000);
        let a = b.member_id_required(1);
        let c = b.join(1, &a, None);
        let mut fx = Effects::default();
        b.coordinator.load(PARTITION, b.log.clone().into_iter(), b.now, &mut fx);
        b.absorb(fx);
        b.advance_ms(3_000);
        let reply = b.join_reply(c).expect("the pending JoinGroup is answered");
        assert_eq!(reply.error, ErrorCode::None);
        assert_eq!(b.state(), (GroupState::CompletingRebalance, 1));
    }

    #[test]
    fn unload_answers_waiting_members_with_not_coordinator() {
        let mut b = Broker::new(3_000);
        let a = b.member_id_required(1);
        let c = b.join(1, &a, None);
        let mut fx = Effects::default();
        b.coordinator.unload(PARTITION, &mut fx);
        b.absorb(fx);
        assert_eq!(b.join_reply(c).expect("answered").error, ErrorCode::NotCoordinator);
        assert!(!b.coordinator.coordinates(PARTITION));
        assert_eq!(b.coordinator.group_state(GROUP), None);
        assert!(b.timers.is_empty(), "the group's timers are cancelled");
    }

    #[test]
    fn invariant_empty_group_has_no_members_and_generation_never_goes_back_within_a_copy() {
        let (mut b, _) = stable_group(&[(1, None), (2, None)]);
        assert_eq!(b.coordinator.check_invariants(), Ok(()));
        let group = b.coordinator.groups.get_mut(GROUP).expect("loaded");
        group.generation = 0;
        assert!(b.coordinator.check_invariants().unwrap_err().contains("generation went back from 1 to 0"));

        let (mut b, _) = stable_group(&[(1, None)]);
        b.coordinator.groups.get_mut(GROUP).expect("loaded").state = GroupState::Empty;
        assert!(b.coordinator.check_invariants().unwrap_err().contains("is Empty with members"));
    }

    #[test]
    fn invariant_a_reloaded_group_may_restart_from_an_older_persisted_generation() {
        let (mut b, _) = stable_group(&[(1, None)]);
        assert_eq!(b.coordinator.check_invariants(), Ok(()));
        // Failover: the new coordinator's copy comes from the log, whatever generation it holds.
        let mut fx = Effects::default();
        b.coordinator.unload(PARTITION, &mut fx);
        let older = Record {
            key: Some(group_key(GROUP)),
            value: Some(r#"{"generation":0,"protocol":null,"leader":null,"members":[]}"#.to_string()),
            headers: Vec::new(),
        };
        b.coordinator.load(PARTITION, std::iter::once(older), b.now, &mut fx);
        assert_eq!(b.state(), (GroupState::Empty, 0));
        assert_eq!(b.coordinator.check_invariants(), Ok(()));
    }

    // ---- KIP-447: transactional offset commits ---------------------------------------------------

    impl Broker {
        fn txn_commit(
            &mut self,
            from: u32,
            member_id: &str,
            generation: i32,
            instance: Option<&str>,
        ) -> (u64, Option<Append>) {
            let correlation_id = self.correlation_id();
            let request = TxnOffsetCommitRequest {
                transactional_id: "pipeline-tx".into(),
                group_id: GROUP.to_string(),
                producer_id: 4000,
                producer_epoch: 0,
                generation,
                member_id: member_id.to_string(),
                group_instance_id: instance.map(str::to_string),
                offsets: vec![(tp(0), 42)],
                transaction_v2: false,
            };
            let mut fx = Effects::default();
            let append = self.coordinator.txn_commit(client(from), correlation_id, PARTITION, request, &mut fx);
            self.absorb(fx);
            (correlation_id, append)
        }

        fn txn_commit_reply(&self, correlation_id: u64) -> Option<ErrorCode> {
            match self.reply(correlation_id) {
                Some(Response::TxnOffsetCommit(r)) => Some(r.error),
                _ => None,
            }
        }

        fn fetch_error(&mut self) -> ErrorCode {
            let correlation_id = self.correlation_id();
            let request =
                OffsetFetchRequest { group_id: GROUP.to_string(), partitions: vec![tp(0)], require_stable: true };
            let mut fx = Effects::default();
            self.coordinator.fetch_offsets(client(0), correlation_id, request, &mut fx);
            self.absorb(fx);
            match self.reply(correlation_id) {
                Some(Response::OffsetFetch(r)) => r.error,
                other => panic!("no OffsetFetch answer: {other:?}"),
            }
        }
    }

    #[test]
    fn txn_offset_commit_from_a_removed_member_an_old_generation_or_a_replaced_instance_is_refused() {
        let (mut b, ids) = stable_group(&[(1, None), (2, None)]);
        let (c, append) = b.txn_commit(1, "never-joined", 1, None);
        assert!(append.is_none());
        assert_eq!(b.txn_commit_reply(c), Some(ErrorCode::UnknownMemberId));
        let (c, append) = b.txn_commit(1, &ids[0], 0, None);
        assert!(append.is_none());
        assert_eq!(b.txn_commit_reply(c), Some(ErrorCode::IllegalGeneration), "generation 0 is over");
        let (c, append) = b.txn_commit(1, &ids[0], 1, None);
        assert!(append.is_some_and(|a| a.producer == Some((4000, 0))), "written as the producer's transactional batch");
        assert_eq!(b.txn_commit_reply(c), None, "answered once written");

        let (mut s, _) = stable_group(&[(1, Some("host-a"))]);
        let (c, _) = s.txn_commit(9, "a-zombie-member-id", 1, Some("host-a"));
        assert_eq!(s.txn_commit_reply(c), Some(ErrorCode::FencedInstanceId));
    }

    #[test]
    fn pending_transactional_offsets_make_fetches_unstable_until_the_marker_commits_or_drops_them() {
        let (mut b, ids) = stable_group(&[(1, None)]);
        let (c, append) = b.txn_commit(1, &ids[0], 1, None);
        b.write(append.expect("accepted"), ErrorCode::None);
        assert_eq!(b.txn_commit_reply(c), Some(ErrorCode::None));
        assert!(b.coordinator.has_pending_txn_offsets(GROUP, &tp(0)));
        assert_eq!(b.fetch_error(), ErrorCode::UnstableOffsetCommit);
        // An ABORT marker for another producer changes nothing; this producer's drops them.
        let mut fx = Effects::default();
        b.coordinator.on_txn_completed(PARTITION, 4001, true, &mut fx);
        assert!(b.coordinator.has_pending_txn_offsets(GROUP, &tp(0)));
        b.coordinator.on_txn_completed(PARTITION, 4000, false, &mut fx);
        b.absorb(fx);
        assert!(!b.coordinator.has_pending_txn_offsets(GROUP, &tp(0)));
        assert_eq!(b.fetch_error(), ErrorCode::None);
        // Again, committed this time: the offset becomes the group's.
        let (_, append) = b.txn_commit(1, &ids[0], 1, None);
        b.write(append.expect("accepted"), ErrorCode::None);
        let mut fx = Effects::default();
        b.coordinator.on_txn_completed(PARTITION, 4000, true, &mut fx);
        b.absorb(fx);
        assert_eq!(b.fetch(&[tp(0)]), vec![(tp(0), 42)]);
    }

    #[test]
    fn a_loaded_log_commits_drops_or_keeps_pending_each_producers_transactional_offsets() {
        use crate::record::{ControlMarker, ControlType, RecordBatch};
        let offset = |p: i32, o: i64| Record {
            key: Some(offset_key(GROUP, &tp(p))),
            value: Some(o.to_string()),
            headers: Vec::new(),
        };
        let txn = |pid: i64, records: Vec<Record>| {
            let mut b = RecordBatch::new_unassigned(pid, 0, -1, 0, records);
            b.is_transactional = true;
            b
        };
        let marker = |pid: i64, control_type| {
            RecordBatch::new_marker(pid, 0, 0, ControlMarker { control_type, coordinator_epoch: 0 })
        };
        let batches = [
            RecordBatch::new_unassigned(-1, -1, -1, 0, vec![offset(0, 5), offset(1, 5), offset(2, 5)]),
            txn(7, vec![offset(0, 10)]),
            txn(8, vec![offset(1, 10)]),
            txn(9, vec![offset(2, 10)]),
            marker(7, ControlType::Commit),
            marker(8, ControlType::Abort),
        ];
        let mut c = GroupCoordinator::new(CoordinatorConfig { initial_rebalance_delay_ms: 0 });
        let mut fx = Effects::default();
        c.load_batches(PARTITION, batches.iter(), SimTime::ZERO, &mut fx);
        let g = &c.groups[GROUP];
        assert_eq!(g.offsets[&tp(0)], 10, "committed by its marker");
        assert_eq!(g.offsets[&tp(1)], 5, "aborted: the earlier commit stands");
        assert_eq!(g.offsets[&tp(2)], 5, "still open: pending, not committed");
        assert!(c.has_pending_txn_offsets(GROUP, &tp(2)));
    }
}
