//! Kafka Connect's delivery promises, checked over what the tasks did and what the logs and
//! stores hold at the end.
//!
//! - **sink-rewrote** (lesson): a sink task wrote a record it had written before: its worker
//!   crashed (or its partition moved) after the write and before the offset commit, so the
//!   group handed the record out again. At-least-once, as Connect promises: an appending store
//!   now holds a duplicate line; an upserting store rewrote the same entry and shows nothing.
//! - **upsert-sink-stale** (promise, always made): once a sink task has caught up, an upserting
//!   store holds for each key the value of the latest record of that key it wrote. Rewrites
//!   replay the partition in order, so they never leave an older value behind.
//! - **source-record-duplicated** (promise with exactly-once source support, KIP-618; a lesson
//!   otherwise): one source record (connector, source offset) is in the committed output
//!   twice. At-least-once source tasks re-send what was produced after their last offset flush;
//!   an exactly-once task commits its records and its offset in one transaction, so a re-send
//!   only follows an aborted transaction, which `read_committed` readers never see.

use super::Checker;
use crate::nodes::{current_leaders, Machine, Nodes, Status};
use crate::trace::{Finding, Rule};
use ksim_cluster::connect::external::SinkMode;
use ksim_cluster::node::NodeId;
use ksim_cluster::record::{ControlType, Record};
use ksim_cluster::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

/// One write to an upserting store: the record's partition and offset, and the value written.
type UpsertWrite = (TopicPartition, i64, String);

#[derive(Default)]
pub struct ConnectCheck {
    /// Connectors running with exactly-once source support.
    exactly_once: BTreeSet<String>,
    /// Sink writes per connector: each record's (partition, offset) and how often the
    /// connector's tasks wrote it. (Two connectors reading one topic each write its records
    /// once: that is no rewrite.)
    written: BTreeMap<String, BTreeMap<(TopicPartition, i64), u32>>,
    /// Upserting stores: per key, every write (partition, offset, value) in write order.
    upserts: BTreeMap<String, BTreeMap<String, Vec<UpsertWrite>>>,
    /// Upserting stores: the offset of the latest write from each partition, in write order.
    last_upsert: BTreeMap<(String, TopicPartition), i64>,
    /// (connector, partition) pairs whose first rewrite was reported.
    rewrites_reported: BTreeSet<(String, TopicPartition)>,
    /// Where each acknowledged source record landed: (partition, offset) -> (connector, source offset).
    delivered: BTreeMap<(TopicPartition, i64), (String, i64)>,
}

impl ConnectCheck {
    pub fn new(exactly_once: BTreeSet<String>) -> ConnectCheck {
        ConnectCheck { exactly_once, ..ConnectCheck::default() }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn on_sink_write(
        &mut self,
        connector: &str,
        store: &str,
        mode: SinkMode,
        tp: &TopicPartition,
        offset: i64,
        key: &str,
        value: &str,
    ) -> Vec<Finding> {
        let count = self.written.entry(connector.to_string()).or_default().entry((tp.clone(), offset)).or_insert(0);
        *count += 1;
        let mut findings = Vec::new();
        // Once per connector and partition: the first record of a replay tells the story.
        if *count == 2 && self.rewrites_reported.insert((connector.to_string(), tp.clone())) {
            let what = match mode {
                SinkMode::Append => "the appending store now holds it twice",
                SinkMode::Upsert => "the upserting store rewrote the same entry, so it shows nothing",
            };
            findings.push(Finding::lesson(
                Rule::SinkRewrote,
                format!(
                    "{tp}@{offset} was written to {store} again by connector {connector} (key {key}): written, then not committed before its task stopped or lost the partition; {what} (later rewrites of {tp} not repeated)"
                ),
            ));
        }
        if mode == SinkMode::Upsert {
            self.last_upsert.insert((store.to_string(), tp.clone()), offset);
            self.upserts.entry(store.to_string()).or_default().entry(key.to_string()).or_default().push((
                tp.clone(),
                offset,
                value.to_string(),
            ));
        }
        findings
    }

    pub fn on_source_delivered(&mut self, connector: &str, source_offset: i64, tp: TopicPartition, offset: i64) {
        self.delivered.insert((tp, offset), (connector.to_string(), source_offset));
    }

    /// Upserting stores whose entry for a key is not the latest value written for it, once the
    /// key's partition has caught up (its last write is its furthest one).
    pub fn stale_upserts(&self, stores: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (store, keys) in &self.upserts {
            // Per partition: the furthest offset written, and the offset of the last write (in
            // the order the writes happened, across all keys).
            let mut furthest: BTreeMap<&TopicPartition, i64> = BTreeMap::new();
            for (tp, offset, _) in keys.values().flatten() {
                let f = furthest.entry(tp).or_insert(*offset);
                *f = (*f).max(*offset);
            }
            let last = |tp: &TopicPartition| self.last_upsert.get(&(store.clone(), tp.clone())).copied();
            for (key, writes) in keys {
                let Some((tp, _, _)) = writes.last() else { continue };
                if writes.iter().any(|(t, _, _)| t != tp) {
                    continue; // a key in two partitions has no order to promise
                }
                // Still replaying after a rewind: not caught up yet.
                let caught_up = writes.iter().map(|(_, o, _)| *o).max() == writes.last().map(|(_, o, _)| *o);
                if !caught_up || last(tp) < furthest.get(tp).copied() {
                    continue;
                }
                let (_, offset, expected) = writes.iter().max_by_key(|(_, o, _)| *o).expect("one write at least");
                let held = stores.get(store).and_then(|s| s.get(key));
                if held != Some(expected) {
                    findings.push(Finding::promise(
                        Rule::UpsertSinkStale,
                        true,
                        format!(
                            "{store} holds {key} -> {} but the latest record of {key} it wrote is {tp}@{offset} -> {expected}",
                            held.map_or("nothing", String::as_str)
                        ),
                    ));
                }
            }
        }
        findings
    }

    /// Source records in the committed output more than once.
    pub fn duplicated_sources(&self, nodes: &Nodes) -> Vec<Finding> {
        let mut output: BTreeMap<TopicPartition, Vec<i64>> = BTreeMap::new();
        let partitions: BTreeSet<&TopicPartition> = self.delivered.keys().map(|(tp, _)| tp).collect();
        for tp in partitions {
            // Read as the output's readers would: read_committed for an exactly-once connector.
            let exactly_once = self.delivered.iter().any(|((t, _), (c, _))| t == tp && self.exactly_once.contains(c));
            let Some(records) = readable(nodes, tp, exactly_once) else { continue };
            output.insert(tp.clone(), records.into_iter().map(|(o, _)| o).collect());
        }
        self.duplicated_in(&output)
    }

    /// [`ConnectCheck::duplicated_sources`] over the offsets readable in each partition.
    fn duplicated_in(&self, output: &BTreeMap<TopicPartition, Vec<i64>>) -> Vec<Finding> {
        let mut by_source: BTreeMap<(String, i64), Vec<(TopicPartition, i64)>> = BTreeMap::new();
        for (tp, offsets) in output {
            for offset in offsets {
                if let Some(source) = self.delivered.get(&(tp.clone(), *offset)) {
                    by_source.entry(source.clone()).or_default().push((tp.clone(), *offset));
                }
            }
        }
        let mut findings = Vec::new();
        let mut reported: BTreeSet<String> = BTreeSet::new();
        for ((connector, source_offset), copies) in by_source {
            if copies.len() < 2 || !reported.insert(connector.clone()) {
                continue;
            }
            let promised = self.exactly_once.contains(&connector);
            let at: Vec<String> = copies.iter().map(|(tp, o)| format!("{tp}@{o}")).collect();
            let why = if promised {
                "exactly-once source support commits records and offsets in one transaction"
            } else {
                "at-least-once: the task re-sent what it produced after its last offset flush"
            };
            findings.push(Finding::promise(
                Rule::SourceRecordDuplicated,
                promised,
                format!("{connector}'s source offset {source_offset} is in the output {} times ({}): {why} (first such record; later ones not repeated)", copies.len(), at.join(", ")),
            ));
        }
        findings
    }
}

/// The records of `tp` a reader could read now, from its current leader: below the high
/// watermark, or with `read_committed` below the last stable offset and without aborted
/// transactions' records. `None` when no running leader can answer.
pub fn readable(nodes: &Nodes, tp: &TopicPartition, read_committed: bool) -> Option<Vec<(i64, Record)>> {
    let leader = *current_leaders(nodes).get(tp)?;
    let slot = nodes.get(&NodeId::Broker(leader))?;
    let (Status::Up, Some(Machine::Broker(broker))) = (slot.status, &slot.machine) else { return None };
    let replica = broker.replica(tp)?;
    let hw = replica.high_watermark;
    let upto = if read_committed { replica.log.last_stable_offset(hw) } else { hw };
    let batches: Vec<_> = replica.log.batches().filter(|b| b.base_offset < upto).collect();
    let mut out = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        if batch.control.is_some() {
            continue;
        }
        if read_committed && batch.is_transactional {
            let outcome = batches[i + 1..]
                .iter()
                .find(|b| b.producer_id == batch.producer_id && b.control.is_some())
                .and_then(|b| b.control.map(|m| m.control_type));
            if outcome != Some(ControlType::Commit) {
                continue;
            }
        }
        for (j, record) in batch.records.iter().enumerate() {
            let offset = batch.base_offset + j as i64;
            if offset < upto {
                out.push((offset, record.clone()));
            }
        }
    }
    Some(out)
}

impl Checker {
    /// End of run: Connect's promises over the stores and logs.
    pub(super) fn connect_findings(
        &self,
        nodes: &Nodes,
        stores: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Vec<Finding> {
        let mut findings = self.connect.stale_upserts(stores);
        findings.extend(self.connect.duplicated_sources(nodes));
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition { topic: "users".into(), partition: 0 }
    }

    #[test]
    fn a_second_write_of_one_record_is_a_lesson() {
        let mut c = ConnectCheck::default();
        assert!(c.on_sink_write("crm-sink", "crm", SinkMode::Append, &tp(), 3, "1", "a").is_empty());
        let f = c.on_sink_write("crm-sink", "crm", SinkMode::Append, &tp(), 3, "1", "a");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::SinkRewrote);
        assert!(!f[0].violation);
    }

    #[test]
    fn two_connectors_writing_one_record_each_once_is_no_rewrite() {
        let mut c = ConnectCheck::default();
        assert!(c.on_sink_write("audit", "audit.log", SinkMode::Append, &tp(), 3, "1", "a").is_empty());
        assert!(c.on_sink_write("directory", "directory", SinkMode::Upsert, &tp(), 3, "1", "a").is_empty());
        // Even into one store: each connector read the record once.
        assert!(c.on_sink_write("audit-copy", "audit.log", SinkMode::Append, &tp(), 3, "1", "a").is_empty());
        let f = c.on_sink_write("directory", "directory", SinkMode::Upsert, &tp(), 3, "1", "a");
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("by connector directory"), "{}", f[0].message);
    }

    #[test]
    fn an_upserting_store_left_with_an_older_value_breaks_the_promise() {
        let mut c = ConnectCheck::default();
        c.on_sink_write("crm-sink", "crm", SinkMode::Upsert, &tp(), 0, "1", "old");
        c.on_sink_write("crm-sink", "crm", SinkMode::Upsert, &tp(), 1, "1", "new");
        let held = |v: &str| BTreeMap::from([("crm".to_string(), BTreeMap::from([("1".to_string(), v.to_string())]))]);
        assert!(c.stale_upserts(&held("new")).is_empty());
        let f = c.stale_upserts(&held("old"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::UpsertSinkStale);
        assert!(f[0].violation);
        // Mid-replay (the last write went back to offset 0): not caught up, nothing promised yet.
        c.on_sink_write("crm-sink", "crm", SinkMode::Upsert, &tp(), 0, "1", "old");
        assert!(c.stale_upserts(&held("old")).is_empty());
    }

    #[test]
    fn a_caught_up_partition_is_judged_by_its_latest_write_not_its_last_key() {
        let mut c = ConnectCheck::default();
        // Key "b" is written first, then key "a" at the furthest offset: the partition has
        // caught up, though "b" sorts after "a".
        c.on_sink_write("crm-sink", "crm", SinkMode::Upsert, &tp(), 0, "b", "new-b");
        c.on_sink_write("crm-sink", "crm", SinkMode::Upsert, &tp(), 1, "a", "new-a");
        let held = BTreeMap::from([(
            "crm".to_string(),
            BTreeMap::from([("a".to_string(), "new-a".to_string()), ("b".to_string(), "old-b".to_string())]),
        )]);
        let f = c.stale_upserts(&held);
        assert_eq!(f.len(), 1, "b's stale value is reported: {f:?}");
        assert!(f[0].message.contains("holds b -> old-b"), "{}", f[0].message);
    }

    #[test]
    fn a_source_record_twice_in_the_output_is_a_lesson_at_least_once_and_a_violation_exactly_once() {
        for exactly_once in [false, true] {
            let eos: BTreeSet<String> =
                if exactly_once { BTreeSet::from(["src".to_string()]) } else { BTreeSet::new() };
            let mut c = ConnectCheck::new(eos);
            c.on_source_delivered("src", 1, tp(), 0);
            c.on_source_delivered("src", 2, tp(), 1);
            c.on_source_delivered("src", 2, tp(), 2);
            assert!(c.duplicated_in(&BTreeMap::from([(tp(), vec![0, 1])])).is_empty(), "an aborted copy is not output");
            let f = c.duplicated_in(&BTreeMap::from([(tp(), vec![0, 1, 2])]));
            assert_eq!(f.len(), 1);
            assert_eq!((f[0].rule, f[0].violation), (Rule::SourceRecordDuplicated, exactly_once));
        }
    }
}
