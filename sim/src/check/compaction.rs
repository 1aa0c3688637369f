//! Compaction: what the log cleaner may take away, and the promise it keeps.
//!
//! On a topic with `cleanup.policy=compact` each broker's cleaner removes records whose key has a
//! later record, and tombstones once their delete horizon passed (see `ksim_cluster::log`). Offsets
//! do not move, so a reader sees gaps. What Kafka promises is per key: a reader starting at any
//! offset still sees each key's latest value, or nothing once its tombstone is gone
//! (`compacted-latest-lost`; Kafka's documentation, "Log Compaction Guarantees": "any consumer
//! that stays caught-up to within the head of the log will see every message that is written";
//! "ordering of messages is always maintained"; "a message with a key will remain until a later
//! message with the same key"). It is checked on the cleaning broker's copy each time it cleans.
//! One case is only a lesson: a replica that never received a tombstone (its leader removed it
//! after `delete.retention.ms`, before the replica fetched that far) keeps the older value; Kafka
//! bounds that with `delete.retention.ms` and does not prevent it.
//!
//! The other rules learn from the cleanings what is no loss: a consumer stepping over a cleaned
//! offset skips nothing (`skipped-offsets`), and an acknowledged write cleaned away because a later
//! record has its key (or because it was a tombstone) is not `acked-write-lost`.

use super::{Checker, Finding, Rule};
use crate::nodes::{Machine, Nodes};
use ksim_cluster::log::{Cleaning, Log};
use ksim_cluster::node::NodeId;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct Compaction {
    /// Offsets some broker's cleaner removed, per partition.
    cleaned: BTreeMap<TopicPartition, BTreeSet<i64>>,
    /// Offsets each broker's own cleaner removed from its copy.
    cleaned_by: BTreeMap<(BrokerId, TopicPartition), BTreeSet<i64>>,
}

impl Compaction {
    pub(super) fn on_cleaned(&mut self, broker: BrokerId, tp: &TopicPartition, cleaning: &Cleaning) {
        let set = self.cleaned.entry(tp.clone()).or_default();
        let own = self.cleaned_by.entry((broker, tp.clone())).or_default();
        for &(first, last) in &cleaning.removed {
            set.extend(first..=last);
            own.extend(first..=last);
        }
    }

    /// Whether a cleaner removed the record at this offset.
    pub(super) fn was_cleaned(&self, tp: &TopicPartition, offset: i64) -> bool {
        self.cleaned.get(tp).is_some_and(|s| s.contains(&offset))
    }
}

impl Checker {
    /// A cleaner removed `offset` legitimately: a later committed record has its key, or it was a
    /// tombstone (gone after its horizon).
    pub(super) fn cleaned_away(&self, tp: &TopicPartition, offset: i64) -> bool {
        if !self.compaction.was_cleaned(tp, offset) {
            return false;
        }
        let Some(committed) = self.replication.committed.get(tp) else { return false };
        match committed.get(&offset) {
            Some((Some(key), value)) => {
                value.is_none() || committed.range(offset + 1..).any(|(_, (k, _))| k.as_ref() == Some(key))
            }
            // A record with no key never survives a cleaning; none is ever written to a
            // compacted topic (INVALID_RECORD), so only an internal one could be here.
            Some((None, _)) => true,
            None => false,
        }
    }

    /// `broker` cleaned its copy of `tp`: check the promise on it, then remember what went.
    pub(super) fn on_log_cleaned(
        &mut self,
        broker: BrokerId,
        tp: &TopicPartition,
        cleaning: &Cleaning,
        nodes: &Nodes,
    ) -> Vec<Finding> {
        self.compaction.on_cleaned(broker, tp, cleaning);
        let Some(replica) = nodes.get(&NodeId::Broker(broker)).and_then(|slot| match &slot.machine {
            Some(Machine::Broker(b)) => b.replica(tp),
            _ => None,
        }) else {
            return Vec::new();
        };
        let problems = self.latest_per_key_problems(tp, &replica.log, replica.high_watermark);
        let Some((offset, message, tombstone)) = problems.into_iter().next() else { return Vec::new() };
        if !self.once(Rule::CompactedLatestLost, tp, offset) {
            return Vec::new();
        }
        // A tombstone this replica never had: its leader's cleaner removed it (after
        // delete.retention.ms) before this replica fetched that far, so it kept the older value.
        // Kafka documents this bound rather than preventing it ("delete.retention.ms ... a bound
        // on the time in which a consumer must complete a read if they begin from offset 0";
        // a replica is such a reader): a lesson, not a broken promise.
        let own = self.compaction.cleaned_by.get(&(broker, tp.clone()));
        let never_had_it = tombstone && !own.is_some_and(|s| s.contains(&offset));
        let message = format!("{tp}: broker-{broker}'s cleaner {message}");
        if never_had_it {
            return vec![Finding::promise(
                Rule::CompactedLatestLost,
                false,
                format!("{message} (this replica was behind the tombstone for longer than delete.retention.ms: it never received it)"),
            )];
        }
        let promised = self.consistency_promised(tp);
        vec![Finding::promise(Rule::CompactedLatestLost, promised, message)]
    }

    /// Per key, the latest committed record below `high_watermark` must still be in `log`
    /// (a tombstone may be gone), and once a tombstone is gone no older value of its key may be.
    /// Returns each broken key's offset, what is wrong, and whether it is a lost tombstone.
    pub(super) fn latest_per_key_problems(
        &self,
        tp: &TopicPartition,
        log: &Log,
        high_watermark: i64,
    ) -> Vec<(i64, String, bool)> {
        let Some(committed) = self.replication.committed.get(tp) else { return Vec::new() };
        let mut latest: BTreeMap<&str, (i64, &Option<String>)> = BTreeMap::new();
        for (offset, (key, value)) in committed.range(log.log_start_offset()..high_watermark) {
            if let Some(key) = key {
                latest.insert(key.as_str(), (*offset, value));
            }
        }
        let mut problems = Vec::new();
        for (key, (offset, value)) in latest {
            let present =
                log.record_at(offset).is_some_and(|(_, r)| r.key.as_deref() == Some(key) && &r.value == value);
            match value {
                Some(v) if !present => problems.push((
                    offset,
                    format!("removed {key}={v} at offset {offset}, the latest committed value of its key"),
                    false,
                )),
                None if !present => {
                    let older = log
                        .batches()
                        .filter(|b| !b.is_control())
                        .flat_map(|b| b.records_with_offsets())
                        .find(|(o, r)| *o < offset && r.key.as_deref() == Some(key) && r.value.is_some());
                    if let Some((o, r)) = older {
                        problems.push((
                            offset,
                            format!(
                                "removed the tombstone of {key} at offset {offset} but kept {key}={} at offset {o}: a reader from the start sees a deleted key come back",
                                r.value_text()
                            ),
                            true,
                        ));
                    }
                }
                _ => {}
            }
        }
        problems
    }
}
