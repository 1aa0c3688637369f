//! Kafka Connect at one step, folded from the trace's Connect events
//! ([`ksim_cluster::connect::event::ConnectEvent`]).
//!
//! Whose word counts for what:
//! - The worker group (members, generation, who runs which connector and task, work held back
//!   for `scheduled.rebalance.max.delay.ms`) comes from the group's own events, which the world
//!   records (no worker decides them alone).
//! - A task's state, its flushed source offset, its committed sink positions and its exactly-once
//!   transactions come from the worker that ran it.
//! - The external systems' contents come from `RowInserted` (the source table) and `SinkWrote`
//!   (the sink store): an upserting store is a map from key to value, an appending one a count of
//!   lines, with the lines that repeated a record it had already written (at-least-once delivery
//!   after a crash).
//! - The dead letter queue: how many records each topic received, and the last one's context
//!   headers (`DeadLetterQueueReporter`).
//!
//! Every step folds one event in O(log n); a store's entries are its only growing part, bounded
//! by the scenario's source rows.

use ksim_cluster::connect::event::ConnectEvent;
use ksim_cluster::node::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// The Connect picture: empty in runs without Connect.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectView {
    /// The worker group's `group.id` (distributed mode), once a worker joined.
    pub group: Option<String>,
    /// The worker group's generation: 0 until its first rebalance ends.
    pub generation: u32,
    /// Workers by name.
    pub workers: BTreeMap<String, WorkerView>,
    /// Connectors and tasks lost with their worker, held back until this time (ms).
    pub delayed: Option<(Vec<String>, u64)>,
    /// Tasks by name (`<connector>-<task>`).
    pub tasks: BTreeMap<String, TaskView>,
    /// Source tables by name: rows inserted so far.
    pub sources: BTreeMap<String, usize>,
    /// Sink stores by name.
    pub stores: BTreeMap<String, StoreView>,
    /// Dead letter queues by topic.
    pub dead_letters: BTreeMap<String, DeadLetters>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerView {
    /// Whether the worker group counts it as a member (joined, session not expired).
    pub member: bool,
    /// What the last rebalance gave it (connectors and tasks).
    pub assignment: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskView {
    /// The worker node that started it last.
    pub node: NodeId,
    pub state: TaskState,
    /// A source task's last offset flushed to `offset.storage.topic` (or the offsets file, or
    /// inside its transaction).
    pub flushed: Option<i64>,
    /// A sink task's last committed positions, by partition.
    pub committed: Vec<(String, i64)>,
    /// Exactly-once source transactions committed.
    pub transactions: u32,
    /// Records a sink task wrote to its store.
    pub written: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreView {
    /// `true` for an appending store (a file), `false` for an upserting one (a key-value store).
    pub appends: bool,
    /// An upserting store's contents.
    pub entries: BTreeMap<String, String>,
    /// An appending store's line count.
    pub lines: u64,
    /// Writes of a record (partition and offset) the store had already received.
    pub repeated: u64,
    written: BTreeSet<(String, i64)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeadLetters {
    pub count: u64,
    /// The last record's origin (`topic-partition@offset`) and its context headers.
    pub last: Option<(String, Vec<(String, String)>)>,
}

impl ConnectView {
    /// Whether the run has Connect at all.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty() && self.tasks.is_empty() && self.sources.is_empty() && self.stores.is_empty()
    }

    /// Fold one Connect event. `node` is the worker that recorded it, or `None` for the world's
    /// (a row arriving, the worker group's decisions).
    pub fn apply(&mut self, node: Option<NodeId>, event: &ConnectEvent) {
        use ConnectEvent::*;
        match event {
            RowInserted { source, .. } => *self.sources.entry(source.clone()).or_default() += 1,
            WorkerJoined { group, worker } => {
                self.group = Some(group.clone());
                self.workers.entry(worker.clone()).or_default().member = true;
            }
            WorkerSessionExpired { worker, .. } => {
                let w = self.workers.entry(worker.clone()).or_default();
                w.member = false;
            }
            WorkerLostCoordinator { worker, .. } => self.workers.entry(worker.clone()).or_default().assignment.clear(),
            Rebalanced { group, generation, assignments } => {
                self.group = Some(group.clone());
                self.generation = *generation;
                for w in self.workers.values_mut() {
                    w.assignment.clear();
                }
                for (worker, units) in assignments {
                    let w = self.workers.entry(worker.clone()).or_default();
                    w.member = true;
                    w.assignment = units.clone();
                }
                // The held-back work stays held back until a rebalance hands it out.
                if let Some((lost, _)) = &self.delayed {
                    if lost.iter().all(|u| assignments.iter().any(|(_, units)| units.contains(u))) {
                        self.delayed = None;
                    }
                }
            }
            RebalanceDelayed { lost, until_ms, .. } => self.delayed = Some((lost.clone(), *until_ms)),
            TaskStarted { task, .. } => {
                let Some(node) = node else { return };
                self.tasks.insert(
                    task.clone(),
                    TaskView {
                        node,
                        state: TaskState::Running,
                        flushed: self.tasks.get(task).and_then(|t| t.flushed),
                        committed: self.tasks.get(task).map(|t| t.committed.clone()).unwrap_or_default(),
                        transactions: self.tasks.get(task).map_or(0, |t| t.transactions),
                        written: self.tasks.get(task).map_or(0, |t| t.written),
                    },
                );
            }
            TaskFailed { task, reason } => {
                if let Some(t) = self.task(task) {
                    t.state = TaskState::Failed(reason.clone());
                }
            }
            SourcePolled { .. } | RecordSkipped { .. } => {}
            OffsetsFlushed { task, offset, .. } => {
                if let Some(t) = self.task(task) {
                    t.flushed = Some(*offset);
                }
            }
            TransactionCommitted { task, offset, .. } => {
                if let Some(t) = self.task(task) {
                    t.transactions += 1;
                    t.flushed = Some(*offset);
                }
            }
            SinkCommitted { task, offsets } => {
                if let Some(t) = self.task(task) {
                    t.committed = offsets.clone();
                }
            }
            SinkWrote { task, store, partition, offset, key, value, effect } => {
                if let Some(t) = self.task(task) {
                    t.written += 1;
                }
                let s = self.stores.entry(store.clone()).or_default();
                if !s.written.insert((partition.clone(), *offset)) {
                    s.repeated += 1;
                }
                if effect == "appended" {
                    s.appends = true;
                    s.lines += 1;
                } else {
                    s.entries.insert(key.clone(), value.clone());
                }
            }
            DeadLettered { origin, topic, headers, .. } => {
                let d = self.dead_letters.entry(topic.clone()).or_default();
                d.count += 1;
                d.last = Some((origin.clone(), headers.clone()));
            }
        }
    }

    /// The task a worker's event is about (an event from a zombie copy of it still counts).
    fn task(&mut self, task: &str) -> Option<&mut TaskView> {
        self.tasks.get_mut(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrote(offset: i64, key: &str, value: &str, effect: &str) -> ConnectEvent {
        ConnectEvent::SinkWrote {
            task: "sink-0".into(),
            store: "idx".into(),
            partition: "users-0".into(),
            offset,
            key: key.into(),
            value: value.into(),
            effect: effect.into(),
        }
    }

    #[test]
    fn an_upserting_store_holds_the_last_value_and_counts_rewrites() {
        let mut v = ConnectView::default();
        let w = Some(NodeId::Client(0));
        v.apply(w, &ConnectEvent::TaskStarted { task: "sink-0".into(), resume_after: None });
        v.apply(w, &wrote(0, "1", "a", "added"));
        v.apply(w, &wrote(1, "1", "b", "replaced"));
        v.apply(w, &wrote(1, "1", "b", "rewritten (same value)"));
        let s = &v.stores["idx"];
        assert!(!s.appends);
        assert_eq!(s.entries.get("1").map(String::as_str), Some("b"));
        assert_eq!(s.repeated, 1, "offset 1 was written twice");
        assert_eq!(v.tasks["sink-0"].written, 3);
    }

    #[test]
    fn lost_work_stays_held_back_until_a_rebalance_hands_it_out() {
        let mut v = ConnectView::default();
        let join = |w: &str| ConnectEvent::WorkerJoined { group: "g".into(), worker: w.into() };
        v.apply(None, &join("w1"));
        v.apply(None, &join("w2"));
        let rebalanced = |generation, a: Vec<(&str, Vec<&str>)>| ConnectEvent::Rebalanced {
            group: "g".into(),
            generation,
            assignments: a
                .into_iter()
                .map(|(w, us)| (w.to_string(), us.into_iter().map(str::to_string).collect()))
                .collect(),
        };
        v.apply(None, &rebalanced(1, vec![("w1", vec!["src", "src-0"]), ("w2", vec!["sink", "sink-0"])]));
        v.apply(None, &ConnectEvent::WorkerSessionExpired { group: "g".into(), worker: "w1".into() });
        v.apply(
            None,
            &ConnectEvent::RebalanceDelayed {
                group: "g".into(),
                lost: vec!["src".into(), "src-0".into()],
                until_ms: 9,
            },
        );
        v.apply(None, &rebalanced(2, vec![("w2", vec!["sink", "sink-0"])]));
        assert!(v.delayed.is_some(), "still held back");
        assert!(!v.workers["w1"].member && v.workers["w1"].assignment.is_empty());
        v.apply(None, &rebalanced(3, vec![("w2", vec!["sink", "sink-0", "src", "src-0"])]));
        assert_eq!(v.delayed, None);
        assert_eq!(v.generation, 3);
    }
}
