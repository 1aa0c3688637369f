//! Kafka Streams at one step, folded from the instances' events
//! ([`ksim_cluster::streams::StreamsEvent`]).
//!
//! Each instance speaks for itself: its tasks (created restoring or running, restored, closed),
//! what each task's stores hold, each task's stream time, its commits and the failures that
//! migrate its tasks or end its thread. A task that moves is closed on one instance and created,
//! restoring, on another: the two instances say so, and the pane shows both sides. A crashed
//! instance's tasks die with its process (the scenario's fault says so; no event of the
//! instance's does).
//!
//! Every step folds one event in O(log n) plus the entries it names; a store's entries are its
//! only growing part, bounded by the keys (and windows) of the scenario's records.

use ksim_cluster::node::NodeId;
use ksim_cluster::streams::{Entry, StreamsEvent};
use std::collections::BTreeMap;

/// The Streams picture: empty in runs without Kafka Streams.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamsView {
    pub instances: BTreeMap<NodeId, InstanceView>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceView {
    pub application: String,
    pub guarantee: String,
    pub commit_interval_ms: u64,
    /// Tasks by id (`0_1`), while the instance runs them.
    pub tasks: BTreeMap<String, TaskView>,
    /// Commits so far, and the last one's records processed and partitions committed.
    pub commits: u32,
    pub last_commit: Option<(u64, usize)>,
    /// Why the instance stopped processing, if it did: its thread died or its process stopped.
    pub stopped: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPhase {
    Restoring,
    Running,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskView {
    pub phase: TaskPhase,
    /// The largest event time the task has seen, once it has seen one.
    pub stream_time: Option<i64>,
    /// Each store's contents, by store name.
    pub stores: BTreeMap<String, StoreContents>,
    /// Changelog records replayed on restore, over every store.
    pub replayed: usize,
    /// While it restores: per changelog partition, the offset restored up to and where
    /// restoration ends.
    pub restore: BTreeMap<String, (i64, i64)>,
    /// Store writes since the task was created here.
    pub updates: u64,
    /// Late records dropped and undecodable records skipped.
    pub late: u32,
    pub skipped: u32,
}

/// A store's entries (key to aggregates), and the keys written last, latest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreContents {
    pub entries: BTreeMap<String, String>,
    pub recent: Vec<String>,
}

/// Keys a store remembers as written last.
const RECENT: usize = 3;

impl StoreContents {
    fn put(&mut self, key: &str, value: &str) {
        self.entries.insert(key.to_string(), value.to_string());
        self.recent.retain(|k| k != key);
        self.recent.insert(0, key.to_string());
        self.recent.truncate(RECENT);
    }
}

impl TaskView {
    fn new(restoring: bool) -> TaskView {
        TaskView {
            phase: if restoring { TaskPhase::Restoring } else { TaskPhase::Running },
            stream_time: None,
            stores: BTreeMap::new(),
            replayed: 0,
            restore: BTreeMap::new(),
            updates: 0,
            late: 0,
            skipped: 0,
        }
    }
}

impl StreamsView {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Fold one event an instance recorded.
    pub fn apply(&mut self, node: NodeId, event: &StreamsEvent) {
        use StreamsEvent::*;
        if let Started { application, guarantee, commit_interval_ms, .. } = event {
            // A (re)started instance begins with no tasks: ksim keeps no local state across a crash.
            self.instances.insert(
                node,
                InstanceView {
                    application: application.clone(),
                    guarantee: guarantee.clone(),
                    commit_interval_ms: *commit_interval_ms,
                    ..InstanceView::default()
                },
            );
            return;
        }
        let instance = self.instances.entry(node).or_default();
        match event {
            Started { .. } => {}
            TaskCreated { task, restoring } => {
                instance.tasks.insert(task.clone(), TaskView::new(*restoring));
            }
            TaskClosed { task } => {
                instance.tasks.remove(task);
            }
            RestoreStarted { task, changelog, start_offset, end_offset, .. } => {
                let t = instance.tasks.entry(task.clone()).or_insert_with(|| TaskView::new(true));
                t.restore.insert(changelog.clone(), (*start_offset, *end_offset));
            }
            BatchRestored { task, changelog, records, batch_end_offset, end_offset, .. } => {
                let t = instance.tasks.entry(task.clone()).or_insert_with(|| TaskView::new(true));
                t.replayed += records;
                let end = end_offset.unwrap_or(*batch_end_offset);
                t.restore.insert(changelog.clone(), (*batch_end_offset, end));
            }
            StoreRestored { task, store, changelog, entries, .. } => {
                let t = instance.tasks.entry(task.clone()).or_insert_with(|| TaskView::new(true));
                t.restore.remove(changelog);
                let entries = entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
                t.stores.insert(store.clone(), StoreContents { entries, recent: Vec::new() });
            }
            RestoreFailed { .. } => {}
            TaskRunning { task } => {
                instance.tasks.entry(task.clone()).or_insert_with(|| TaskView::new(false)).phase = TaskPhase::Running;
            }
            StoreUpdated { task, store, entries, stream_time } => {
                let t = instance.tasks.entry(task.clone()).or_insert_with(|| TaskView::new(false));
                let contents = t.stores.entry(store.clone()).or_default();
                for Entry { key, value } in entries {
                    contents.put(key, value);
                }
                t.updates += entries.len() as u64;
                if stream_time.is_some() {
                    t.stream_time = *stream_time;
                }
            }
            StoreDeleted { task, store, key, stream_time } => {
                let t = instance.tasks.entry(task.clone()).or_insert_with(|| TaskView::new(false));
                let contents = t.stores.entry(store.clone()).or_default();
                contents.entries.remove(key);
                contents.recent.retain(|k| k != key);
                t.updates += 1;
                if stream_time.is_some() {
                    t.stream_time = *stream_time;
                }
            }
            NoTableRow { .. } => {}
            RecordSkipped { task, .. } => {
                if let Some(t) = instance.tasks.get_mut(task) {
                    t.skipped += 1;
                }
            }
            LateRecordDropped { task, stream_time, .. } => {
                if let Some(t) = instance.tasks.get_mut(task) {
                    t.late += 1;
                    t.stream_time = Some(t.stream_time.map_or(*stream_time, |s| s.max(*stream_time)));
                }
            }
            PartitionsRevoked { .. } => {}
            Committed { processed, partitions, .. } => {
                instance.commits += 1;
                instance.last_commit = Some((*processed, *partitions));
            }
            TasksMigrated { .. } => instance.tasks.clear(),
            ThreadDied { error } => {
                instance.tasks.clear();
                instance.stopped = Some(format!("thread died: {error}"));
            }
        }
    }

    /// The instance's process stopped (killed, lost power, exited): its tasks and their stores
    /// are gone with it.
    pub fn process_stopped(&mut self, node: NodeId, how: &str) {
        if let Some(instance) = self.instances.get_mut(&node) {
            instance.tasks.clear();
            instance.stopped = Some(how.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> Entry {
        Entry { key: key.into(), value: value.into() }
    }

    fn started() -> StreamsEvent {
        StreamsEvent::Started {
            application: "balances".into(),
            guarantee: "at_least_once".into(),
            commit_interval_ms: 30_000,
            reads: vec!["payments".into()],
            writes: vec!["balance".into()],
            stores: vec![("BALANCE".into(), "balances-BALANCE-changelog".into())],
        }
    }

    fn update(task: &str, key: &str, value: &str, t: i64) -> StreamsEvent {
        StreamsEvent::StoreUpdated {
            task: task.into(),
            store: "BALANCE".into(),
            entries: vec![entry(key, value)],
            stream_time: Some(t),
        }
    }

    #[test]
    fn a_task_restores_then_its_store_follows_each_write_and_a_move_takes_it_away() {
        let (a, b) = (NodeId::Client(0), NodeId::Client(1));
        let mut view = StreamsView::default();
        view.apply(a, &started());
        view.apply(a, &StreamsEvent::TaskCreated { task: "0_0".into(), restoring: true });
        assert_eq!(view.instances[&a].tasks["0_0"].phase, TaskPhase::Restoring);
        let changelog = "balances-BALANCE-changelog-0";
        view.apply(
            a,
            &StreamsEvent::RestoreStarted {
                task: "0_0".into(),
                store: "BALANCE".into(),
                changelog: changelog.into(),
                start_offset: 0,
                end_offset: 3,
            },
        );
        for (records, upto) in [(2, 2), (1, 3)] {
            view.apply(
                a,
                &StreamsEvent::BatchRestored {
                    task: "0_0".into(),
                    store: "BALANCE".into(),
                    changelog: changelog.into(),
                    records,
                    batch_end_offset: upto,
                    end_offset: Some(3),
                },
            );
            assert_eq!(view.instances[&a].tasks["0_0"].restore[changelog], (upto, 3), "progress follows each batch");
        }
        view.apply(
            a,
            &StreamsEvent::StoreRestored {
                task: "0_0".into(),
                store: "BALANCE".into(),
                changelog: "balances-BALANCE-changelog-0".into(),
                replayed: 3,
                entries: vec![entry("Alice", "75.0")],
            },
        );
        view.apply(a, &StreamsEvent::TaskRunning { task: "0_0".into() });
        view.apply(a, &update("0_0", "Alice", "15.0", 4_000));
        view.apply(a, &update("0_0", "Bob", "18.0", 5_000));
        let task = &view.instances[&a].tasks["0_0"];
        assert_eq!(task.phase, TaskPhase::Running);
        assert_eq!(task.replayed, 3, "the batches' records");
        assert!(task.restore.is_empty(), "restored: no progress left to show");
        assert_eq!(task.stream_time, Some(5_000));
        let store = &task.stores["BALANCE"];
        let entries: Vec<(&str, &str)> = store.entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(entries, [("Alice", "15.0"), ("Bob", "18.0")]);
        assert_eq!(store.recent, ["Bob", "Alice"], "latest first");

        // The task moves: closed on a, created restoring on b.
        view.apply(a, &StreamsEvent::TaskClosed { task: "0_0".into() });
        view.apply(b, &started());
        view.apply(b, &StreamsEvent::TaskCreated { task: "0_0".into(), restoring: true });
        assert!(view.instances[&a].tasks.is_empty());
        assert!(view.instances[&b].tasks["0_0"].stores.is_empty());
    }

    #[test]
    fn a_killed_instance_loses_its_tasks_and_a_restart_starts_empty() {
        let a = NodeId::Client(0);
        let mut view = StreamsView::default();
        view.apply(a, &started());
        view.apply(a, &StreamsEvent::TaskCreated { task: "0_0".into(), restoring: false });
        view.apply(
            a,
            &StreamsEvent::Committed {
                why: "x".into(),
                processed: 4,
                cache_flushed: 0,
                partitions: 1,
                in_transaction: false,
            },
        );
        view.process_stopped(a, "killed");
        assert!(view.instances[&a].tasks.is_empty());
        assert_eq!(view.instances[&a].stopped.as_deref(), Some("killed"));
        view.apply(a, &started());
        assert_eq!(view.instances[&a].stopped, None);
        assert_eq!(view.instances[&a].commits, 0);
    }
}
