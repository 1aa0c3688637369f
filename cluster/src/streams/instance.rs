//! One Streams instance's `TaskManager` (one stream thread): which tasks it owns after each
//! rebalance, which of them still restore, and when a commit is due.
//!
//! On an assignment (`TaskManager.handleAssignment`) the instance closes the tasks it lost and
//! creates the ones it gained; a created task with stores restores before it runs. A commit is
//! due every `commit.interval.ms` (`StreamThread.maybeCommit`); under at_least_once it flushes
//! the producer and then commits the consumer's offsets, under exactly_once_v2 it commits the
//! thread's transaction with the offsets in it (`TaskExecutor.commitOffsetsOrTransaction`).

use super::task::{StreamTask, TaskId, TaskState};
use super::topology::Topology;
use super::ProcessingGuarantee;
use std::collections::BTreeMap;

/// What one assignment changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reassigned {
    pub created: Vec<TaskId>,
    pub closed: Vec<TaskId>,
}

pub struct Instance {
    pub topology: Topology,
    pub guarantee: ProcessingGuarantee,
    pub commit_interval_ms: u64,
    pub tasks: BTreeMap<TaskId, StreamTask>,
    last_commit_ms: Option<u64>,
}

impl Instance {
    pub fn new(topology: Topology, guarantee: ProcessingGuarantee, commit_interval_ms: Option<u64>) -> Instance {
        Instance {
            topology,
            guarantee,
            commit_interval_ms: commit_interval_ms.unwrap_or(guarantee.default_commit_interval_ms()),
            tasks: BTreeMap::new(),
            last_commit_ms: None,
        }
    }

    /// The tasks of the consumer's partitions after a rebalance: one per partition of each
    /// sub-topology's input (tasks `0_<p>` over the input topic, `1_<p>` over the repartition
    /// topic), as `StreamsPartitionAssignor` hands them out.
    pub fn on_assignment(&mut self, wanted: &[TaskId]) -> Reassigned {
        let wanted = wanted.to_vec();
        let mut out = Reassigned::default();
        let closed: Vec<TaskId> = self.tasks.keys().filter(|id| !wanted.contains(id)).copied().collect();
        for id in closed {
            self.tasks.remove(&id);
            out.closed.push(id);
        }
        for id in wanted {
            if !self.tasks.contains_key(&id) {
                self.tasks.insert(id, StreamTask::new(id, &self.topology));
                out.created.push(id);
            }
        }
        out
    }

    /// The tasks still restoring, in id order.
    pub fn restoring(&self) -> Vec<TaskId> {
        self.tasks.values().filter(|t| t.state == TaskState::Restoring).map(|t| t.id).collect()
    }

    /// Whether `commit.interval.ms` has passed since the last commit (the first call starts the
    /// clock).
    pub fn commit_due(&mut self, now_ms: u64) -> bool {
        let last = *self.last_commit_ms.get_or_insert(now_ms);
        now_ms.saturating_sub(last) >= self.commit_interval_ms
    }

    pub fn committed(&mut self, now_ms: u64) {
        self.last_commit_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::super::topology::Naming;
    use super::*;

    #[test]
    fn a_rebalance_closes_lost_tasks_creates_gained_ones_and_they_restore_first() {
        let t = Topology::compile(
            "CREATE STREAM p (name STRING KEY, amount INT, ts BIGINT) WITH (KAFKA_TOPIC='p', VALUE_FORMAT='JSON', TIMESTAMP='ts');
             CREATE TABLE b AS SELECT name, SUM(amount) AS balance FROM p GROUP BY name;",
            &Naming::Streams { application_id: "a".into() },
        )
        .unwrap();
        let mut i = Instance::new(t, ProcessingGuarantee::AtLeastOnce, None);
        let id = |p| TaskId { subtopology: 0, partition: p };
        assert_eq!(i.on_assignment(&[id(0), id(1)]), Reassigned { created: vec![id(0), id(1)], closed: vec![] });
        assert_eq!(i.restoring(), [id(0), id(1)]);
        i.tasks.get_mut(&id(0)).unwrap().start_running();
        assert_eq!(i.on_assignment(&[id(0), id(2)]), Reassigned { created: vec![id(2)], closed: vec![id(1)] });
        assert_eq!(i.restoring(), [id(2)]);
        assert!(!i.commit_due(1_000));
        assert!(!i.commit_due(30_999));
        assert!(i.commit_due(31_000));
        i.committed(31_000);
        assert!(!i.commit_due(31_001));
        let eos = Instance::new(i.topology, ProcessingGuarantee::ExactlyOnceV2, None);
        assert_eq!(eos.commit_interval_ms, 100);
    }
}
