//! Replication: one leader per epoch, high watermarks that only move forward, replicas that agree.
//!
//! The controller elects a partition's leader and bumps its leader epoch; Kafka never lets two
//! brokers lead one partition in the same epoch (a deposed leader learns of the new epoch and
//! steps down, and followers reject the old one). The leader moves the high watermark (HW) up to
//! what every in-sync replica has: a record below the HW is *committed*. A replica's HW never
//! passes its own log end, and a leader's HW never moves back within its epoch (both asserted:
//! ksim stops, as a bug).
//!
//! Committed records are the same on every replica, as long as every election is clean and no
//! power failure takes records the ISR had acknowledged: an unclean election makes an out-of-sync
//! replica leader, and the others truncate to its log, so an offset can hold different records
//! over time (`replicas-diverge`, a violation only when consistency was promised). Elections and
//! truncations are kept, to explain lost writes at the end.

use super::{Checker, Finding, Rule};
use crate::nodes::{Machine, Nodes};
use ksim_cluster::broker::replica::Replica;
use ksim_cluster::log::TruncateReason;
use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// A leader change the controller committed, for explaining lost writes.
#[derive(Clone, Debug)]
pub(super) struct Election {
    pub(super) at: SimTime,
    pub(super) leader: Option<BrokerId>,
    pub(super) epoch: i32,
    pub(super) kind: Option<ElectionKind>,
}

/// A replica dropping records from its log, for explaining lost writes.
#[derive(Clone, Debug)]
pub(super) struct Truncation {
    pub(super) at: SimTime,
    pub(super) broker: BrokerId,
    pub(super) from: i64,
    pub(super) removed: i64,
    pub(super) reason: TruncateReason,
}

/// What the checker last saw of a replica: (leader?, leader epoch, HW, LEO, log start offset).
type Fingerprint = (bool, i32, i64, i64, i64);

/// A committed record's key and value (`None` value: a tombstone).
pub(super) type KeyValue = (Option<String>, Option<String>);

#[derive(Default)]
pub(super) struct Replication {
    /// (partition, leader epoch) -> the broker that became its leader.
    leaders: BTreeMap<(TopicPartition, i32), BrokerId>,
    /// A leader replica's (epoch, HW) when last checked.
    leader_hw: BTreeMap<(BrokerId, TopicPartition), (i32, i64)>,
    /// The record at each offset below some replica's high watermark, as last seen.
    pub(super) committed: BTreeMap<TopicPartition, BTreeMap<i64, KeyValue>>,
    /// How far each replica's committed prefix has been compared.
    checked_to: BTreeMap<(BrokerId, TopicPartition), i64>,
    /// Per broker and replica: its state when last checked.
    fingerprints: BTreeMap<BrokerId, Vec<(TopicPartition, Fingerprint)>>,
    pub(super) elections: BTreeMap<TopicPartition, Vec<Election>>,
    pub(super) truncations: BTreeMap<TopicPartition, Vec<Truncation>>,
    /// Partitions that had an unclean election.
    pub(super) unclean: BTreeSet<TopicPartition>,
    pub(super) power_failures: u64,
}

impl Replication {
    pub(super) fn on_stop(&mut self, node: NodeId, power_loss: bool) {
        if power_loss {
            self.power_failures += 1;
        }
        if let NodeId::Broker(id) = node {
            self.checked_to.retain(|(b, _), _| *b != id);
            self.leader_hw.retain(|(b, _), _| *b != id);
        }
    }

    pub(super) fn on_became_leader(&mut self, broker: BrokerId, tp: &TopicPartition, epoch: i32) -> Option<Finding> {
        let other = self.leaders.insert((tp.clone(), epoch), broker).filter(|other| *other != broker)?;
        Some(Finding::bug(
            Rule::TwoLeadersInEpoch,
            format!("{tp}: broker-{other} and broker-{broker} both led epoch {epoch}"),
        ))
    }

    pub(super) fn on_partition_changed(
        &mut self,
        now: SimTime,
        tp: &TopicPartition,
        leader: Option<BrokerId>,
        epoch: i32,
        election: Option<ElectionKind>,
    ) {
        // Kafka counts electing the last known leader as unclean too (`PartitionChangeBuilder`
        // marks it so): it may have lost what it acknowledged.
        if matches!(election, Some(ElectionKind::Unclean | ElectionKind::LastKnownLeader)) {
            self.unclean.insert(tp.clone());
        }
        let history = self.elections.entry(tp.clone()).or_default();
        if history.last().is_none_or(|e| e.epoch != epoch) {
            history.push(Election { at: now, leader, epoch, kind: election });
        }
    }

    pub(super) fn on_truncated(
        &mut self,
        now: SimTime,
        broker: BrokerId,
        tp: &TopicPartition,
        from: i64,
        removed: i64,
        reason: TruncateReason,
    ) {
        self.truncations.entry(tp.clone()).or_default().push(Truncation { at: now, broker, from, removed, reason });
    }
}

impl Checker {
    /// Check the replicas of `node` (a broker) whose state changed since the last check.
    pub(super) fn check_replicas(&mut self, node: NodeId, nodes: &Nodes) -> Vec<Finding> {
        let NodeId::Broker(broker) = node else { return Vec::new() };
        let Some(Machine::Broker(b)) = nodes.get(&node).and_then(|s| s.machine.as_ref()) else { return Vec::new() };
        // A step touches few of a broker's partitions: only the replicas whose state changed since
        // the last check are checked. The broker lists its replicas in partition order, and so
        // does `seen`, so one walk over both finds them (no lookups, no allocation).
        let seen = self.replication.fingerprints.entry(broker).or_default();
        let mut changed = Vec::new();
        let mut cursor = 0;
        for replica in b.replicas() {
            let fingerprint = (
                replica.is_leader(),
                replica.leader_epoch,
                replica.high_watermark,
                replica.log_end_offset(),
                replica.log.log_start_offset(),
            );
            while seen.get(cursor).is_some_and(|(tp, _)| *tp < replica.partition) {
                seen.remove(cursor); // a replica the broker no longer has
            }
            match seen.get_mut(cursor) {
                Some((tp, last)) if *tp == replica.partition => {
                    if *last != fingerprint {
                        *last = fingerprint;
                        changed.push(replica);
                    }
                }
                _ => {
                    seen.insert(cursor, (replica.partition.clone(), fingerprint));
                    changed.push(replica);
                }
            }
            cursor += 1;
        }
        seen.truncate(cursor);
        let mut findings = Vec::new();
        for replica in changed {
            findings.extend(self.check_replica(broker, replica));
        }
        findings
    }

    /// One replica of `broker`: its HW against its log end and its last HW, and its newly
    /// committed records against what other replicas committed at the same offsets.
    pub(super) fn check_replica(&mut self, broker: BrokerId, replica: &Replica) -> Vec<Finding> {
        let mut findings = Vec::new();
        let tp = &replica.partition;
        let leo = replica.log_end_offset();
        assert!(
            replica.high_watermark <= leo,
            "invariant HW <= LEO broken on broker-{broker} {tp}: HW {} > LEO {leo}",
            replica.high_watermark
        );
        if replica.is_leader() {
            let key = (broker, tp.clone());
            if let Some(&(epoch, hw)) = self.replication.leader_hw.get(&key) {
                assert!(
                    !(epoch == replica.leader_epoch && replica.high_watermark < hw),
                    "invariant broken on broker-{broker} {tp}: leader HW went back from {hw} to {} in epoch {epoch}",
                    replica.high_watermark
                );
            }
            self.replication.leader_hw.insert(key, (replica.leader_epoch, replica.high_watermark));
        }
        // Compare the newly committed records of this replica with what others committed.
        let key = (broker, tp.clone());
        let from =
            self.replication.checked_to.get(&key).copied().unwrap_or(0).min(leo).max(replica.log.log_start_offset());
        let promised = self.consistency_promised(tp);
        for offset in from..replica.high_watermark {
            let Some((batch, record)) = replica.log.record_at(offset) else { continue };
            self.transactions.on_committed_record(tp, offset, batch);
            let seen = (record.key.clone(), record.value.clone());
            let map = self.replication.committed.entry(tp.clone()).or_default();
            match map.get(&offset) {
                Some(previous) if *previous != seen => {
                    let message = format!(
                        "{tp}@{offset}: broker-{broker} committed {:?} where another replica had committed {:?}",
                        seen.1.as_deref().unwrap_or("null"),
                        previous.1.as_deref().unwrap_or("null")
                    );
                    map.insert(offset, seen);
                    if self.once(Rule::ReplicasDiverge, tp, offset) {
                        findings.push(Finding::promise(Rule::ReplicasDiverge, promised, message));
                    }
                }
                Some(_) => {}
                None => {
                    map.insert(offset, seen);
                }
            }
        }
        self.replication.checked_to.insert(key, replica.high_watermark.max(from));
        findings
    }
}
