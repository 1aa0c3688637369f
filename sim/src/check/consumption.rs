//! Consumption: what each consumer read, and in what order.
//!
//! A consumer fetches from the leader and is only ever given records below the high watermark:
//! it reads committed records only (`read-uncommitted` otherwise). It reads a partition in offset
//! order from its position, so a plain consumer (one outside a group) never jumps over a committed
//! record (`skipped-offsets`) unless its position is reset, and reads an offset again only when it
//! seeks back (`consumed-again`, a lesson: Kafka promises nothing about reading twice). In a group,
//! reading again after a rebalance or restart is at-least-once delivery, which the group checks
//! report by its effect (`processed-twice`).

use super::{ranges, Checker, Finding, Rule};
use ksim_cluster::node::NodeId;
use ksim_cluster::topic::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct Consumption {
    /// The offset each consumer last read from each partition, since its position last moved.
    last_consumed: BTreeMap<(NodeId, TopicPartition), i64>,
    /// Every (partition, offset) each consumer read.
    consumed: BTreeMap<NodeId, BTreeSet<(TopicPartition, i64)>>,
}

impl Consumption {
    /// The consumer's position was reset (or found out of range): the next read starts a new
    /// sequence.
    pub(super) fn on_position_lost(&mut self, node: NodeId, tp: &TopicPartition) {
        self.last_consumed.remove(&(node, tp.clone()));
    }

    pub(super) fn consumed_count(&self, client: NodeId) -> u64 {
        self.consumed.get(&client).map_or(0, |set| set.len() as u64)
    }
}

impl Checker {
    pub(super) fn on_consumed(
        &mut self,
        node: NodeId,
        tp: &TopicPartition,
        offset: i64,
        key: &Option<String>,
        value: &Option<String>,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        let committed = self.replication.committed.get(tp).and_then(|m| m.get(&offset));
        if committed != Some(&(key.clone(), value.clone())) && self.once(Rule::ReadUncommitted, tp, offset) {
            // Fired whatever the configuration: the checker does not yet weigh unclean elections.
            findings.push(Finding::promise(
                Rule::ReadUncommitted,
                true,
                format!(
                    "{tp}@{offset}: consumed {:?}, which no replica had below its high watermark",
                    value.as_deref().unwrap_or("null")
                ),
            ));
        }
        self.consumption.consumed.entry(node).or_default().insert((tp.clone(), offset));
        let last = self.consumption.last_consumed.insert((node, tp.clone()), offset);
        let in_group = self.groups.in_a_group(node);
        let Some(last) = last.filter(|_| !in_group) else { return findings };
        // Records the consumer jumped over that were committed when it read past them (none when
        // it reads the same offset again or goes back: the range would be empty, or backwards).
        // Markers are never returned, and read_committed drops aborted transactions: stepping
        // over those is what the consumer must do. So is stepping over a record the log cleaner
        // removed because a later one has its key ([`compaction`](super::compaction)).
        let read_committed = self.transactions.read_committed.contains(&node);
        let skipped: Vec<i64> = match self.replication.committed.get(tp) {
            Some(m) if offset > last + 1 => m
                .range(last + 1..offset)
                .map(|(o, _)| *o)
                .filter(|o| !self.transactions.may_skip(tp, *o, read_committed) && !self.cleaned_away(tp, *o))
                .collect(),
            _ => Vec::new(),
        };
        if !skipped.is_empty() && self.once(Rule::SkippedOffsets, tp, offset) {
            let records: Vec<(i64, String)> = skipped.iter().map(|o| (*o, String::new())).collect();
            findings.push(Finding::promise(
                Rule::SkippedOffsets,
                true,
                format!(
                    "{tp}: read offset {offset} right after {last}, skipping committed offset(s) {}",
                    ranges(&records)
                ),
            ));
        }
        if offset <= last && self.once(Rule::ConsumedAgain, tp, offset) {
            findings.push(Finding::lesson(
                Rule::ConsumedAgain,
                format!("{tp}@{offset}: consumed again (after offset {last})"),
            ));
        }
        findings
    }
}
