//! Consume-transform-produce applications: a commit waits for the outputs.
//!
//! An application that reads, writes what it computed and then commits its input offsets (the
//! seeds' group-by-count) waits for every send to be answered before it calls `commitSync`: in
//! Java, `producer.send(..).get()` (or `producer.flush()`, as Kafka Streams does before each
//! commit) returns only once the broker acknowledged the record or the producer gave up on it. So
//! in any configuration, when such an application commits, none of its sends is still unanswered.
//! If one is, the client API told the application a send was done when the producer had not
//! finished it, and the commit may cover input whose output is never written: a bug in ksim
//! (`commit-before-output-acked`, an invariant). Issue 12 found one: a client's crash dropped every
//! other client's pending deliveries, so another application's wait ended at once.

use crate::trace::{Finding, Rule};
use ksim_cluster::node::NodeId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct Outputs {
    /// Each client's sends with no answer yet, by send id.
    unanswered: BTreeMap<NodeId, BTreeSet<u64>>,
    /// Clients already reported (one finding per client is enough to see it).
    reported: BTreeSet<NodeId>,
}

impl Outputs {
    /// The application on `node` sent a record (the producer took it).
    pub(super) fn on_send(&mut self, node: NodeId, send_id: u64) {
        self.unanswered.entry(node).or_default().insert(send_id);
    }

    /// The producer acknowledged the record or gave up on it: either way, it is answered.
    pub(super) fn on_answer(&mut self, node: NodeId, send_id: u64) {
        if let Some(sends) = self.unanswered.get_mut(&node) {
            sends.remove(&send_id);
        }
    }

    /// The process stopped: its sends die with it, answered or not.
    pub(super) fn on_stop(&mut self, node: NodeId) {
        self.unanswered.remove(&node);
    }

    /// The application on `node` (called `name`) started a commit of its input offsets.
    pub(super) fn on_commit(&mut self, node: NodeId, name: &str) -> Option<Finding> {
        let sends = self.unanswered.get(&node).filter(|s| !s.is_empty())?;
        if !self.reported.insert(node) {
            return None;
        }
        let first = sends.iter().next().expect("not empty");
        Some(Finding::bug(
            Rule::CommitBeforeOutputAcked,
            format!(
                "{name} committed its input offsets while {} of its sends (the first: send #{first}) had no \
                 answer yet; it waits for every send before it commits, so the client API ended that wait \
                 before the producer did",
                sends.len()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Class;

    const APP: NodeId = NodeId::Client(0);
    const OTHER: NodeId = NodeId::Client(1);

    #[test]
    fn a_commit_with_an_unanswered_send_is_a_bug_once_answered_it_is_not() {
        let mut outputs = Outputs::default();
        outputs.on_send(APP, 7);
        outputs.on_send(OTHER, 8);
        // Another application's answer does not answer this one's send.
        outputs.on_answer(OTHER, 8);
        let finding = outputs.on_commit(APP, "counter").expect("send #7 is unanswered");
        assert_eq!((finding.rule, finding.class()), (Rule::CommitBeforeOutputAcked, Class::Bug));
        assert!(finding.message.contains("send #7"), "{}", finding.message);
        assert_eq!(outputs.on_commit(APP, "counter"), None, "reported once per application");

        let mut outputs = Outputs::default();
        outputs.on_send(APP, 7);
        outputs.on_answer(APP, 7);
        assert_eq!(outputs.on_commit(APP, "counter"), None, "acknowledged (or failed for good) first");
        outputs.on_send(APP, 9);
        outputs.on_stop(APP);
        assert_eq!(outputs.on_commit(APP, "counter"), None, "a restarted process starts with no sends");
    }
}
