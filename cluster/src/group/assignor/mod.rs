//! # Partition assignors: which member of a consumer group reads which partition
//!
//! A consumer group shares the partitions of the topics it subscribes to: each partition is read
//! by exactly one member, so the group as a whole reads every record once. Who reads what is not
//! decided by the broker. In Kafka's classic group protocol every member sends its subscription
//! (topics, plus the partitions it owns now and the generation it got them in) with its
//! **JoinGroup** request; the coordinator picks one member as the **leader** and hands it all the
//! subscriptions; the leader runs an **assignor** and sends the result back in its **SyncGroup**
//! request; the coordinator forwards each member its share. The assignor is plain client code,
//! configured with `partition.assignment.strategy`. This module holds Kafka's four built-in ones,
//! reproduced exactly (same inputs, same partitions to the same members):
//!
//! | name | type | idea |
//! | --- | --- | --- |
//! | `range` | [`AssignorKind::Range`] | per topic, contiguous blocks of partitions ([`range`]) |
//! | `roundrobin` | [`AssignorKind::RoundRobin`] | deal all partitions out like cards ([`round_robin`]) |
//! | `sticky` | [`AssignorKind::Sticky`] | balanced, and keep what members had ([`sticky`]) |
//! | `cooperative-sticky` | [`AssignorKind::CooperativeSticky`] | sticky, without stopping the world |
//!
//! ## Eager and cooperative rebalancing (KIP-429)
//!
//! Any change to the group (a member joins, leaves or dies, a subscribed topic gains partitions)
//! triggers a **rebalance**: a new generation with a new assignment. The question is what members
//! do with their partitions meanwhile.
//!
//! - **Eager** ([`RebalanceProtocol::Eager`]: `range`, `roundrobin`, `sticky`): before joining,
//!   every member *revokes all its partitions* (commits their offsets, runs
//!   `onPartitionsRevoked`). Nobody reads anything until the new assignment arrives: the
//!   "stop-the-world" pause, for the whole group, however small the change. It is simple and
//!   obviously safe: no partition can have two readers.
//! - **Cooperative** ([`RebalanceProtocol::Cooperative`]: `cooperative-sticky`, Kafka 2.4+,
//!   KIP-429): members keep reading while they rejoin, and report what they own. The assignor
//!   computes the sticky target but **withholds every partition that would move from one member to
//!   another**: the current owner is told to revoke it (it simply is not in its new assignment),
//!   and nobody gets it yet. A member that lost partitions rejoins at once, which starts a second
//!   rebalance; by then the partition is owned by no one, and the assignor gives it to its new
//!   member. Two short rebalances instead of one long pause, and only the partitions that move stop.
//!   `ksim assign --strategy cooperative-sticky --until-stable` prints both rounds.
//!
//! A group runs cooperatively only if every member's configured assignors all support it (Kafka
//! picks the protocol common to all); `cooperative-sticky` also supports eager, so a group can be
//! migrated to it with a rolling bounce.
//!
//! ## What this module does not reproduce
//!
//! - **Rack-aware assignment** (KIP-881: Kafka 3.5+ matches `client.rack` with replica racks when
//!   both are known): [`MemberSubscription`] carries no rack, so every assignor here behaves as
//!   Kafka does when consumers set no `client.rack`.
//! - The consumer's *new* group protocol (KIP-848, `group.protocol=consumer`), where the broker
//!   assigns with its own `uniform`/`range` assignors: a different algorithm, not modelled here.
//!
//! Where Kafka's Java code depends on the iteration order of a `HashMap` (the sticky assignors
//! do), `java_order.rs` reproduces Java's order, so results match Kafka exactly; see each assignor's
//! notes for the few inputs where we knowingly differ.

pub(crate) mod java_order;
pub mod range;
pub mod round_robin;
pub mod sticky;

#[cfg(test)]
mod cooperative_tests;
#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod sticky_tests;
#[cfg(test)]
mod test_support;

use crate::TopicPartition;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// What one member tells the leader about itself when it joins: Kafka's `Subscription` as the
/// leader's assignor sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSubscription {
    /// The member id the coordinator gave it (`client.id` plus a UUID in Kafka).
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345). Range and round-robin order static
    /// members by it, so a restarted static member gets its old partitions back.
    pub group_instance_id: Option<String>,
    /// Subscribed topics. A topic the cluster does not know yet is allowed and ignored.
    pub topics: Vec<String>,
    /// The partitions the member owns now, from the generation in `generation`. For
    /// `cooperative-sticky` this is the subscription's `ownedPartitions`. For `sticky` (eager) it is
    /// the previous assignment that `StickyAssignor` sends in its user data: under the eager
    /// protocol the member revoked those partitions before joining, but the assignor still wants
    /// them, to stay sticky. Range and round-robin ignore it.
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which `owned_partitions` were assigned; `None` if the member has none
    /// (a new member, or one that lost its generation). Negative values mean `None`, as in Kafka.
    pub generation: Option<i32>,
}

impl MemberSubscription {
    /// A dynamic member that owns nothing yet.
    pub fn new(member_id: impl Into<String>, topics: &[&str]) -> Self {
        MemberSubscription {
            member_id: member_id.into(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned_partitions: Vec::new(),
            generation: None,
        }
    }
}

/// How members hand over partitions during a rebalance (Kafka's `RebalanceProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RebalanceProtocol {
    /// Revoke everything before joining; reassign from scratch.
    Eager,
    /// Keep owned partitions while rejoining; revoke only what moves, then rebalance again.
    Cooperative,
}

/// One of Kafka's built-in assignors, named as in `partition.assignment.strategy` and in the
/// JoinGroup protocol list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AssignorKind {
    /// `range` (`RangeAssignor`), the Java consumer's first default.
    #[serde(rename = "range")]
    Range,
    /// `roundrobin` (`RoundRobinAssignor`).
    #[serde(rename = "roundrobin")]
    RoundRobin,
    /// `sticky` (`StickyAssignor`), eager.
    #[serde(rename = "sticky")]
    Sticky,
    /// `cooperative-sticky` (`CooperativeStickyAssignor`), the Java consumer's second default.
    #[serde(rename = "cooperative-sticky")]
    CooperativeSticky,
}

impl AssignorKind {
    /// All four, in the order Kafka's documentation lists them.
    pub const ALL: [AssignorKind; 4] =
        [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::Sticky, AssignorKind::CooperativeSticky];

    /// The name Kafka uses on the wire and in `partition.assignment.strategy`.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::Sticky => "sticky",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The Java class that implements it, also accepted by [`FromStr`].
    pub fn java_class(self) -> &'static str {
        match self {
            AssignorKind::Range => "org.apache.kafka.clients.consumer.RangeAssignor",
            AssignorKind::RoundRobin => "org.apache.kafka.clients.consumer.RoundRobinAssignor",
            AssignorKind::Sticky => "org.apache.kafka.clients.consumer.StickyAssignor",
            AssignorKind::CooperativeSticky => "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
        }
    }

    /// The protocol a group using only this assignor runs. (`cooperative-sticky` supports eager
    /// too, for upgrades; its preferred protocol is cooperative.)
    pub fn protocol(self) -> RebalanceProtocol {
        match self {
            AssignorKind::CooperativeSticky => RebalanceProtocol::Cooperative,
            _ => RebalanceProtocol::Eager,
        }
    }

    /// Run the assignor as the group leader does.
    ///
    /// `partitions_per_topic` maps topic to partition count; like Kafka's leader, the assignor
    /// considers only topics some member subscribes to and that have at least one partition.
    /// Member ids must be unique (the coordinator guarantees it; a duplicate is a bug and panics).
    /// The order of `members` is the order of the JoinGroup response; only the sticky assignors
    /// can notice it (see [`sticky`]).
    pub fn assign(self, partitions_per_topic: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> Assignment {
        let group = Group::new(partitions_per_topic, members);
        match self {
            AssignorKind::Range => range::assign(&group),
            AssignorKind::RoundRobin => round_robin::assign(&group),
            AssignorKind::Sticky => sticky::assign(&group, RebalanceProtocol::Eager),
            AssignorKind::CooperativeSticky => sticky::assign(&group, RebalanceProtocol::Cooperative),
        }
    }
}

impl fmt::Display for AssignorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AssignorKind {
    type Err = UnknownAssignor;

    /// Kafka's short name (`range`) or the Java class name
    /// (`org.apache.kafka.clients.consumer.RangeAssignor`), as `partition.assignment.strategy`
    /// accepts both.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        AssignorKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s || kind.java_class() == s)
            .ok_or_else(|| UnknownAssignor(s.to_string()))
    }
}

/// A name that is not one of Kafka's built-in assignors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownAssignor(pub String);

impl fmt::Display for UnknownAssignor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = AssignorKind::ALL.iter().map(|k| k.name()).collect();
        write!(f, "unknown assignor `{}`: expected one of {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownAssignor {}

/// The result of one assignment: each member's partitions, members in the order the assignor
/// considered them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// (member id, its partitions sorted by topic then number), in the assignor's member order:
    /// `group.instance.id` first then member id for range and round-robin, member id for the
    /// sticky assignors (Java string order).
    members: Vec<(String, Vec<TopicPartition>)>,
}

impl Assignment {
    fn new(members: Vec<(String, Vec<TopicPartition>)>) -> Self {
        let members = members
            .into_iter()
            .map(|(id, mut partitions)| {
                partitions.sort();
                (id, partitions)
            })
            .collect();
        Assignment { members }
    }

    /// Member ids in the assignor's order.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(id, _)| id.as_str())
    }

    /// The partitions of one member, sorted; empty for a member that is not in the group.
    pub fn partitions_of(&self, member_id: &str) -> &[TopicPartition] {
        self.members.iter().find(|(id, _)| id == member_id).map(|(_, p)| p.as_slice()).unwrap_or(&[])
    }

    /// (member id, partitions) in the assignor's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[TopicPartition])> {
        self.members.iter().map(|(id, p)| (id.as_str(), p.as_slice()))
    }

    /// Who is assigned `partition`, if anyone.
    pub fn owner_of(&self, partition: &TopicPartition) -> Option<&str> {
        self.members.iter().find(|(_, p)| p.contains(partition)).map(|(id, _)| id.as_str())
    }
}

/// The group as the leader's assignor sees it, cleaned of what Kafka's leader could never see.
pub(crate) struct Group {
    /// Subscribed topics with at least one partition.
    pub(crate) partitions_per_topic: BTreeMap<String, i32>,
    /// Members as given, with topics and owned partitions deduplicated, owned partitions that do
    /// not exist dropped (partitions never shrink in Kafka, so a real member cannot own one), and
    /// negative generations turned into `None`.
    pub(crate) members: Vec<MemberSubscription>,
    /// Indices into `members` in the order Kafka's leader iterates its
    /// `HashMap<String, Subscription>` (see [`java_order`]).
    pub(crate) hash_order: Vec<usize>,
}

impl Group {
    fn new(partitions_per_topic: &BTreeMap<String, i32>, members: &[MemberSubscription]) -> Self {
        let mut ids = BTreeSet::new();
        for member in members {
            assert!(ids.insert(member.member_id.as_str()), "member ids are unique: `{}` twice", member.member_id);
        }
        let subscribed: BTreeSet<&str> = members.iter().flat_map(|m| m.topics.iter().map(String::as_str)).collect();
        let partitions_per_topic: BTreeMap<String, i32> = partitions_per_topic
            .iter()
            .filter(|(topic, count)| **count > 0 && subscribed.contains(topic.as_str()))
            .map(|(topic, count)| (topic.clone(), *count))
            .collect();
        let exists = |tp: &TopicPartition| match partitions_per_topic.get(tp.topic.as_str()) {
            Some(count) => (0..*count).contains(&tp.partition),
            None => tp.partition >= 0,
        };
        let members: Vec<MemberSubscription> = members
            .iter()
            .map(|m| MemberSubscription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                topics: dedup(&m.topics),
                owned_partitions: dedup(&m.owned_partitions).into_iter().filter(|tp| exists(tp)).collect(),
                generation: m.generation.filter(|g| *g >= 0),
            })
            .collect();
        let index: BTreeMap<&str, usize> = members.iter().enumerate().map(|(i, m)| (m.member_id.as_str(), i)).collect();
        let order = java_order::hash_map_order(members.iter().map(|m| m.member_id.as_str()));
        let hash_order = order.iter().map(|id| index[id]).collect();
        Group { partitions_per_topic, members, hash_order }
    }

    /// The members' indices sorted the way range and round-robin sort `MemberInfo`s: members with
    /// a `group.instance.id` first, by it; then the others by member id (Java string order). Java
    /// sorts stably, starting from its `HashMap` order.
    pub(crate) fn member_info_order(&self) -> Vec<usize> {
        let mut order = self.hash_order.clone();
        order.sort_by(|a, b| member_info_cmp(&self.members[*a], &self.members[*b]));
        order
    }
}

/// `AbstractPartitionAssignor.MemberInfo.compareTo`.
fn member_info_cmp(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_order::cmp_java(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => java_order::cmp_java(&a.member_id, &b.member_id),
    }
}

/// The first occurrence of each item, in order.
fn dedup<T: Clone + Ord>(items: &[T]) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items.iter().filter(|item| seen.insert(*item)).cloned().collect()
}
