//! Consumer groups: who owns each partition, what the group committed, and what it processed.
//!
//! The group coordinator hands out partitions per *generation*: within one generation each
//! partition goes to one member, always (`two-owners-in-generation` is a bug). Across generations
//! an eager rebalance revokes everything before reassigning, so two members may briefly both
//! believe they own a partition; cooperative rebalancing promises they never do (`two-owners`)
//! among the members of the group. That promise is the cooperative protocol's (KIP-429): each
//! member reports the partitions it owns when it joins (`ConsumerProtocolSubscription`
//! `ownedPartitions`), and the assignor never hands a partition owned by a member of generation G
//! to another member of G (`AbstractStickyAssignor`, checked client-side by
//! `ConsumerCoordinator.validateCooperativeAssignment`); the owner revokes it first and it moves in
//! G+1. A member the coordinator expelled (session expired, poll interval exceeded) is no member of
//! G: its partitions are reassigned at once, and it keeps consuming until its next heartbeat or
//! commit hears UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION and it calls `onPartitionsLost`. Kafka
//! promises nothing about that zombie, so the rule fires only when the previous owner is a member
//! of the generation in which the partition was taken.
//! A group's committed offset is where the next owner starts: it should only move forward
//! (`commit-went-back`), never past the log end (`commit-past-log-end`, a bug), and never past a
//! record no member was given (`committed-undelivered`).
//!
//! What Kafka does *not* promise is exactly-once processing. Committing after processing gives
//! at-least-once (a crash in between reprocesses: `processed-twice`); committing before gives
//! at-most-once (a crash skips: `committed-unprocessed`). Both are lessons.

use super::{ranges, Checker, Finding, Rule};
use crate::nodes::{partition_logs, Nodes};
use ksim_cluster::node::NodeId;
use ksim_cluster::topic::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct Groups {
    /// (client node, consumer engine) -> the engine's `group.id`. Engine 0 is the node's
    /// configured consumer; a Connect worker's sink tasks add engines, each in its connector's
    /// group.
    pub(super) group_of: BTreeMap<(NodeId, u8), String>,
    /// Groups whose members all rebalance cooperatively.
    pub(super) cooperative: BTreeSet<String>,
    /// (group, generation) -> partition -> member the coordinator assigned it to.
    generation_owners: BTreeMap<(String, i32), BTreeMap<TopicPartition, String>>,
    /// (group, generation) -> the members the coordinator made that generation of.
    generation_members: BTreeMap<(String, i32), BTreeSet<String>>,
    /// (group, partition) -> the member node (and its member id) that believes it owns it now.
    owners: BTreeMap<(String, TopicPartition), (NodeId, String)>,
    pub(super) commits: BTreeMap<(String, TopicPartition), i64>,
    /// The first position the group read each partition from.
    start: BTreeMap<(String, TopicPartition), i64>,
    consumed: BTreeMap<(String, TopicPartition), BTreeSet<i64>>,
    processed: BTreeMap<(String, TopicPartition), BTreeMap<i64, u32>>,
    processed_by: BTreeMap<NodeId, BTreeSet<(TopicPartition, i64)>>,
    /// Offsets no consumer is ever given: transaction markers, and (for read_committed
    /// readers) records of aborted transactions. A commit may pass them.
    never_given: BTreeMap<TopicPartition, BTreeSet<i64>>,
}

impl Groups {
    /// Whether any consumer of `node` is a group member.
    pub(super) fn in_a_group(&self, node: NodeId) -> bool {
        self.group_of.range((node, 0)..=(node, u8::MAX)).next().is_some()
    }

    /// Consumer engine `engine` of `node` was created with `group` (or none), replacing
    /// whatever engine had that number before.
    pub(super) fn on_engine_created(&mut self, node: NodeId, engine: u8, group: Option<String>, cooperative: bool) {
        match group {
            Some(group) => {
                if cooperative {
                    self.cooperative.insert(group.clone());
                }
                self.group_of.insert((node, engine), group);
            }
            None => {
                self.group_of.remove(&(node, engine));
            }
        }
    }

    /// The first position the group read `tp` from.
    pub(super) fn first_position(&self, group: &str, tp: &TopicPartition) -> Option<i64> {
        self.start.get(&(group.to_string(), tp.clone())).copied()
    }

    /// A dead member owns nothing.
    pub(super) fn on_stop(&mut self, node: NodeId) {
        self.owners.retain(|_, (owner, _)| *owner != node);
    }

    pub(super) fn on_processed(&mut self, node: NodeId, engine: u8, tp: &TopicPartition, offset: i64) {
        self.processed_by.entry(node).or_default().insert((tp.clone(), offset));
        if let Some(group) = self.group_of.get(&(node, engine)) {
            *self.processed.entry((group.clone(), tp.clone())).or_default().entry(offset).or_insert(0) += 1;
        }
    }

    pub(super) fn processed_count(&self, client: NodeId) -> u64 {
        self.processed_by.get(&client).map_or(0, |s| s.len() as u64)
    }

    pub(super) fn on_consumed(&mut self, node: NodeId, engine: u8, tp: &TopicPartition, offset: i64) {
        if let Some(group) = self.group_of.get(&(node, engine)) {
            self.consumed.entry((group.clone(), tp.clone())).or_default().insert(offset);
        }
    }

    pub(super) fn on_position_reset(&mut self, node: NodeId, engine: u8, tp: &TopicPartition, offset: i64) {
        if let Some(group) = self.group_of.get(&(node, engine)) {
            self.start.entry((group.clone(), tp.clone())).or_insert(offset);
        }
    }

    /// The coordinator stored a member's assignment for a generation.
    pub(super) fn on_assignment_stored(
        &mut self,
        group: &str,
        generation: i32,
        member: &str,
        partitions: &[TopicPartition],
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        self.generation_members.entry((group.to_string(), generation)).or_default().insert(member.to_string());
        let owners = self.generation_owners.entry((group.to_string(), generation)).or_default();
        for tp in partitions {
            if let Some(other) = owners.insert(tp.clone(), member.to_string()) {
                if other != member {
                    findings.push(Finding::bug(
                        Rule::TwoOwnersInGeneration,
                        format!("group {group} generation {generation}: {tp} assigned to both {other} and {member}"),
                    ));
                }
            }
        }
        findings
    }

    /// A member took partitions in `generation`.
    pub(super) fn on_partitions_assigned(
        &mut self,
        node: NodeId,
        group: &str,
        member: &str,
        generation: i32,
        partitions: &[TopicPartition],
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        let members = self.generation_members.get(&(group.to_string(), generation));
        for tp in partitions {
            let key = (group.to_string(), tp.clone());
            if let Some((other, other_member)) = self.owners.get(&key) {
                // Only checked where it is promised: eager members overlap by design, and an
                // expelled member (not in this generation) is a zombie Kafka makes no promise about.
                let other_in_generation = members.is_some_and(|m| m.contains(other_member));
                // Members, not nodes: one node may run several members of a group (a Connect
                // worker's sink tasks of one connector).
                let other_member_differs = *other != node || other_member != member;
                if other_member_differs && self.cooperative.contains(group) && other_in_generation {
                    findings.push(Finding::promise(
                        Rule::TwoOwners,
                        true,
                        format!("group {group} generation {generation}: {member} took {tp} while {other_member}, a member of the same generation, still owned it (cooperative rebalancing forbids that)"),
                    ));
                }
            }
            self.owners.insert(key, (node, member.to_string()));
        }
        findings
    }

    pub(super) fn on_partitions_revoked(
        &mut self,
        node: NodeId,
        group: &str,
        member: &str,
        partitions: &[TopicPartition],
    ) {
        for tp in partitions {
            let key = (group.to_string(), tp.clone());
            if self.owners.get(&key).is_some_and(|(owner, m)| *owner == node && m == member) {
                self.owners.remove(&key);
            }
        }
    }

    /// At the end: records processed twice (at-least-once) and records committed but never
    /// processed (at-most-once).
    pub(super) fn delivery_findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (key, processed) in &self.processed {
            let twice: Vec<(i64, String)> =
                processed.iter().filter(|(_, n)| **n > 1).map(|(o, n)| (*o, format!("{n} times"))).collect();
            if !twice.is_empty() {
                findings.push(Finding::lesson(
                    Rule::ProcessedTwice,
                    format!(
                        "group {}: {}: {} record(s) processed more than once, offsets {} (at-least-once delivery)",
                        key.0,
                        key.1,
                        twice.len(),
                        ranges(&twice)
                    ),
                ));
            }
        }
        for (key, committed) in &self.commits {
            let Some(&start) = self.start.get(key) else { continue };
            let processed = self.processed.get(key);
            if processed.is_none() && !self.processed.keys().any(|(g, _)| g == &key.0) {
                continue; // this group's application does not report processing
            }
            let never_given = self.never_given.get(&key.1);
            let skipped: Vec<(i64, String)> = (start..*committed)
                .filter(|o| !processed.is_some_and(|p| p.contains_key(o)))
                .filter(|o| !never_given.is_some_and(|n| n.contains(o)))
                .map(|o| (o, String::new()))
                .collect();
            if !skipped.is_empty() {
                findings.push(Finding::lesson(
                    Rule::CommittedUnprocessed,
                    format!(
                        "group {}: {}: committed past {} record(s) never processed, offsets {} (at-most-once delivery)",
                        key.0,
                        key.1,
                        skipped.len(),
                        ranges(&skipped)
                    ),
                ));
            }
        }
        findings
    }
}

impl Checker {
    /// The coordinator committed a group's offset for a partition.
    pub(super) fn on_offset_committed(
        &mut self,
        group: &str,
        tp: &TopicPartition,
        offset: i64,
        nodes: &Nodes,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        let key = (group.to_string(), tp.clone());
        if let Some(previous) = self.groups.commits.insert(key.clone(), offset) {
            if offset < previous {
                // Fired whatever the configuration: ksim's applications never seek back.
                findings.push(Finding::promise(
                    Rule::CommitWentBack,
                    true,
                    format!("group {group}: committed {tp} at {offset} after {previous}"),
                ));
            }
        }
        let log_end = partition_logs(nodes, tp).iter().map(|(_, log)| log.log_end_offset()).max().unwrap_or(0);
        if offset > log_end {
            findings.push(Finding::bug(
                Rule::CommitPastLogEnd,
                format!("group {group}: committed {tp} at {offset}, past the log end {log_end}"),
            ));
        }
        let never_given = never_given(nodes, tp);
        self.groups.never_given.insert(tp.clone(), never_given.clone());
        if let Some(&start) = self.groups.start.get(&key) {
            let consumed = self.groups.consumed.get(&key);
            if let Some(missing) =
                (start..offset).find(|o| !consumed.is_some_and(|c| c.contains(o)) && !never_given.contains(o))
            {
                if self.once(Rule::CommittedUndelivered, tp, missing) {
                    findings.push(Finding::promise(
                        Rule::CommittedUndelivered,
                        true,
                        format!("group {group}: committed {tp} at {offset}, but offset {missing} was never delivered to a member"),
                    ));
                }
            }
        }
        findings
    }
}

/// The offsets of `tp` no consumer is given: transaction markers (control batches), and
/// records of transactions that were aborted, which read_committed consumers drop. Read from
/// the longest copy of the log.
fn never_given(nodes: &Nodes, tp: &TopicPartition) -> BTreeSet<i64> {
    let logs = partition_logs(nodes, tp);
    let Some((_, log)) = logs.iter().max_by_key(|(_, log)| log.log_end_offset()) else { return BTreeSet::new() };
    let batches: Vec<_> = log.batches().collect();
    let mut out = BTreeSet::new();
    for (i, batch) in batches.iter().enumerate() {
        let aborted = batch.is_transactional
            && batch.control.is_none()
            && batches[i + 1..]
                .iter()
                .find(|b| b.producer_id == batch.producer_id && b.control.is_some())
                .is_some_and(|b| b.control.is_some_and(|m| m.control_type == ksim_cluster::record::ControlType::Abort));
        if batch.control.is_some() || aborted {
            out.extend(batch.base_offset..batch.base_offset + batch.records.len().max(1) as i64);
        }
    }
    out
}
