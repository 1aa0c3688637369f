//! The controller quorum (KRaft, KIP-595), checked from outside: three invariants, each a bug in
//! ksim if it fires, since Kafka's Raft guarantees them in every configuration.
//!
//! - `two-quorum-leaders-in-epoch`: at most one controller leads each quorum epoch (one vote per
//!   voter per epoch, written to `quorum-state` before it is cast: `QuorumState`,
//!   `KafkaRaftClient.handleVoteRequest`).
//! - `committed-metadata-lost`: an entry any member saw committed (below its high watermark) is at
//!   the same offset, unchanged, in every member that later holds that offset below its own high
//!   watermark: committed metadata is never lost, replaced or reordered (Raft's log matching and
//!   leader completeness; `LeaderState.maybeUpdateHighWatermark` only commits an entry of the
//!   leader's own epoch).
//! - `broker-acted-on-uncommitted`: a broker folds only committed records into the image it acts
//!   on (`RaftClient.Listener.handleCommit`): never past the highest high watermark any member
//!   has had, and never a record that differs from the committed one.

use crate::nodes::{Machine, Nodes};
use crate::trace::{Finding, Rule};
use ksim_cluster::metadata::MetadataRecord;
use ksim_cluster::node::NodeId;
use ksim_cluster::raft::log::{Entry, Payload};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct Quorum {
    /// Each quorum epoch's leader.
    leaders: BTreeMap<i32, i32>,
    /// The committed prefix of the metadata log, as long as any member has seen it.
    committed: Vec<Entry<MetadataRecord>>,
    /// How far each node's committed entries were compared (reset when its process stops).
    verified: BTreeMap<NodeId, i64>,
    reported: BTreeSet<(Rule, NodeId)>,
}

impl Quorum {
    /// A controller announced it leads `epoch`.
    pub(super) fn on_leader(&mut self, controller: i32, epoch: i32) -> Option<Finding> {
        let first = *self.leaders.entry(epoch).or_insert(controller);
        (first != controller).then(|| {
            Finding::bug(
                Rule::TwoQuorumLeadersInEpoch,
                format!("controller-{first} and controller-{controller} both led quorum epoch {epoch}"),
            )
        })
    }

    /// (entries, idle no-ops) in the committed prefix; `None` if nothing was ever committed.
    pub(super) fn committed_metadata(&self) -> Option<(usize, usize)> {
        let no_ops = self.committed.iter().filter(|e| matches!(e.payload, Payload::Data(MetadataRecord::NoOp))).count();
        (!self.committed.is_empty()).then_some((self.committed.len(), no_ops))
    }

    pub(super) fn on_stop(&mut self, node: NodeId) {
        self.verified.remove(&node);
    }

    /// After `node` stepped: its committed entries against everyone's.
    pub(super) fn after_step(&mut self, node: NodeId, nodes: &Nodes) -> Vec<Finding> {
        let (raft, applied) = match nodes.get(&node).and_then(|s| s.machine.as_ref()) {
            Some(Machine::Controller(c)) => match c.raft() {
                Some(r) => (r, None),
                None => return Vec::new(),
            },
            Some(Machine::Broker(b)) => match b.metadata_observer() {
                Some(r) => (r, b.metadata_applied_offset()),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        let mut findings = Vec::new();
        findings.extend(self.compare_entries(node, raft.log().entries(), raft.high_watermark()));
        if let Some(applied) = applied {
            findings.extend(self.check_applied(node, applied));
        }
        findings
    }

    /// A broker folded entries below `applied` into its image: all must be committed.
    fn check_applied(&mut self, node: NodeId, applied: i64) -> Option<Finding> {
        if applied <= self.committed.len() as i64 || !self.reported.insert((Rule::BrokerActedOnUncommitted, node)) {
            return None;
        }
        Some(Finding::bug(
            Rule::BrokerActedOnUncommitted,
            format!(
                "{node} applied metadata up to offset {applied}, but the quorum has committed only {} entries",
                self.committed.len()
            ),
        ))
    }

    /// A member's entries below its `high_watermark` against the committed prefix.
    fn compare_entries(
        &mut self,
        node: NodeId,
        entries: &[Entry<MetadataRecord>],
        high_watermark: i64,
    ) -> Option<Finding> {
        let from = self.verified.get(&node).copied().unwrap_or(0).min(high_watermark);
        for offset in from..high_watermark {
            let entry = &entries[offset as usize];
            match self.committed.get(offset as usize) {
                Some(committed) if committed != entry => {
                    self.verified.insert(node, offset);
                    return self.reported.insert((Rule::CommittedMetadataLost, node)).then(|| {
                        Finding::bug(
                            Rule::CommittedMetadataLost,
                            format!(
                                "{node} holds {entry:?} at committed offset {offset}, where the quorum committed {committed:?}"
                            ),
                        )
                    });
                }
                Some(_) => {}
                None => self.committed.push(entry.clone()),
            }
        }
        self.verified.insert(node, high_watermark);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Class;

    fn entry(epoch: i32, leader: i32) -> Entry<MetadataRecord> {
        Entry { epoch, payload: Payload::LeaderChange { leader } }
    }

    #[test]
    fn two_leaders_in_one_quorum_epoch_is_a_bug() {
        let mut q = Quorum::default();
        assert!(q.on_leader(3001, 1).is_none());
        assert!(q.on_leader(3001, 1).is_none(), "the same leader again is fine");
        assert!(q.on_leader(3002, 2).is_none());
        let f = q.on_leader(3003, 2).expect("fires");
        assert_eq!((f.rule, f.class()), (Rule::TwoQuorumLeadersInEpoch, Class::Bug));
    }

    #[test]
    fn a_committed_entry_replaced_is_a_bug() {
        let mut q = Quorum { committed: vec![entry(1, 3001), entry(2, 3002)], ..Quorum::default() };
        let node = NodeId::Controller(3003);
        assert!(q.compare_entries(NodeId::Controller(3001), &[entry(1, 3001), entry(2, 3002)], 2).is_none());
        // A member that committed a longer prefix extends it.
        assert!(q
            .compare_entries(NodeId::Controller(3002), &[entry(1, 3001), entry(2, 3002), entry(2, 3002)], 3)
            .is_none());
        assert_eq!(q.committed.len(), 3);
        // A member whose high watermark covers a different entry at offset 1.
        let f = q.compare_entries(node, &[entry(1, 3001), entry(3, 3003)], 2).expect("fires");
        assert_eq!((f.rule, f.class()), (Rule::CommittedMetadataLost, Class::Bug));
        assert!(f.message.contains("committed offset 1"), "{}", f.message);
    }

    #[test]
    fn a_broker_applying_past_the_committed_prefix_is_a_bug() {
        let mut q = Quorum { committed: vec![entry(1, 3001), entry(1, 3001)], ..Quorum::default() };
        let broker = NodeId::Broker(1);
        assert!(q.check_applied(broker, 2).is_none(), "up to the committed end is fine");
        let f = q.check_applied(broker, 3).expect("fires");
        assert_eq!((f.rule, f.class()), (Rule::BrokerActedOnUncommitted, Class::Bug));
    }
}
