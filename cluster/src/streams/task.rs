//! One `StreamTask`: a sub-topology run over one input partition, with its own state stores,
//! its own stream time, and a life of CREATED -> RESTORING -> RUNNING (`Task.State`).
//!
//! A task processes a record by running it through the topology (the `ksim ksql` engine), and
//! hands back what `RecordCollectorImpl` would send: each sink row to its sink topic (partitioned
//! by key, Streams' default), each store write to the store's changelog on the task's own
//! partition. Nothing here waits: the instance sends, flushes and commits.

use super::event::Entry;
use super::topology::{StoreSpec, Topology};
use crate::ksql::executor::StoreWrite;
use crate::ksql::{Engine, LateDrop};
use crate::record::Record;
use std::fmt;

/// `TaskId`: the sub-topology and the input partition (`0_2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub subtopology: u32,
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Its stores are being rebuilt from their changelogs; it processes nothing yet.
    Restoring,
    Running,
}

/// One record the task asks the producer to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub topic: String,
    /// The changelog partition for a store write; `None` (the partitioner) for a sink record.
    pub partition: Option<i32>,
    pub record: Record,
}

/// What processing one input record produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Processed {
    pub sends: Vec<Send>,
    /// Records a window refused: its end + grace had passed stream time.
    pub late: Vec<LateDrop>,
    /// Why the record was skipped (it did not decode), if it was.
    pub skipped: Option<String>,
    /// The record's event time, once decoded.
    pub rowtime: Option<i64>,
    /// What it put into the task's stores: `(store, entry)`, in the order of the puts.
    pub store_writes: Vec<(String, Entry)>,
}

pub struct StreamTask {
    pub id: TaskId,
    pub state: TaskState,
    engine: Engine,
    /// The largest event time the task has seen (`PartitionGroup.streamTime`).
    pub stream_time: Option<i64>,
    /// Records processed since the task was created on this instance.
    pub processed: u64,
}

impl StreamTask {
    /// A new task: it restores before it runs if the topology has stores.
    pub fn new(id: TaskId, topology: &Topology) -> StreamTask {
        let state =
            if topology.stores_of(id.subtopology).is_empty() { TaskState::Running } else { TaskState::Restoring };
        StreamTask { id, state, engine: topology.engine(), stream_time: None, processed: 0 }
    }

    /// Replay one store's changelog partition (`StoreChangelogReader.restore`): each record puts
    /// its value back, the latest per key winning, nothing forwarded. Returns the entries the
    /// store holds afterwards.
    pub fn restore(&mut self, topology: &Topology, store: &StoreSpec, records: &[Record]) -> Result<usize, String> {
        for record in records {
            let write = topology.decode_store_write(store, &self.engine, record)?;
            self.engine.restore(store.query, &write);
        }
        Ok(self.engine.store_entries(store.query).len())
    }

    /// Restoration is over (`StreamTask.completeRestoration`).
    pub fn start_running(&mut self) {
        self.state = TaskState::Running;
    }

    /// Process one input record of the task's partition.
    pub fn process(&mut self, topology: &Topology, key: Option<&str>, value: &str) -> Processed {
        assert_eq!(self.state, TaskState::Running, "task {} processed a record while restoring", self.id);
        let mut out = Processed::default();
        let repartitioned = topology.repartition.is_some() && self.id.subtopology == 1;
        let decoded = if repartitioned { topology.decode_repartitioned(value) } else { topology.decode(key, value) };
        let record = match decoded {
            Ok(r) => r,
            Err(e) => {
                out.skipped = Some(e);
                return out;
            }
        };
        let rowtime = topology.source.timestamp_column.and_then(|c| match record.values.get(c) {
            Some(crate::ksql::value::Value::Int(t)) if *t >= 0 => Some(*t),
            _ => None,
        });
        out.rowtime = rowtime;
        if let Some(t) = rowtime {
            self.stream_time = Some(self.stream_time.map_or(t, |s| s.max(t)));
        }
        self.processed += 1;
        if topology.repartition.is_some() && self.id.subtopology == 0 {
            // Sub-topology 0 only rekeys: the record goes to the repartition topic, partitioned
            // by its new key (`RepartitionNode` -> `SinkNode` with the default partitioner).
            let mut record = record;
            record.rowtime = rowtime.unwrap_or_default();
            if let Some(rekeyed) = topology.repartition_record(&self.engine, &record) {
                let topic = topology.repartition.as_ref().map(|r| r.topic.clone()).unwrap_or_default();
                out.sends.push(Send { topic, partition: None, record: rekeyed });
            }
            return out;
        }
        let step = match self.engine.process(&topology.source.name, record) {
            Ok(step) => step,
            Err(e) => {
                out.skipped = Some(e);
                return out;
            }
        };
        // The store takes the write (and logs it) before the processor forwards the change
        // downstream (`KStreamWindowAggregateProcessor.process`: `windowStore.put`, then
        // `tupleForwarder.maybeForward`).
        for (q, write) in &step.changelog {
            if let Some(store) = topology.stores.iter().find(|s| s.query == *q) {
                out.store_writes.push((store.name.clone(), entry(write)));
                out.sends.push(Send {
                    topic: store.changelog.clone(),
                    partition: Some(self.id.partition),
                    record: Topology::encode_store_write(write),
                });
            }
        }
        for (q, row) in &step.rows {
            if let Some(sink) = topology.sinks.iter().find(|s| s.query == *q) {
                let record = topology.encode_row(*q, row, &self.engine);
                out.sends.push(Send { topic: sink.topic.clone(), partition: None, record });
            }
        }
        out.late = step.late.into_iter().map(|(_, l)| l).collect();
        out
    }

    /// The store's contents, for the trace.
    pub fn store_entries(&self, store: &StoreSpec) -> Vec<Entry> {
        self.engine.store_entries(store.query).iter().map(entry).collect()
    }
}

/// A store entry as the trace shows it: `key|key [start,end)` and `agg,agg`.
fn entry(w: &StoreWrite) -> Entry {
    let key: Vec<String> = w.key.iter().map(|v| v.to_csv()).collect();
    let aggs: Vec<String> = w.aggs.iter().map(|v| v.to_csv()).collect();
    let key = match w.window {
        Some((s, e)) => format!("{} [{s},{e})", key.join("|")),
        None => key.join("|"),
    };
    Entry { key, value: aggs.join(",") }
}

#[cfg(test)]
mod tests {
    use super::super::topology::Naming;
    use super::*;

    const FRAUD: &str = "CREATE STREAM attempts (card STRING KEY, amount DOUBLE, ts BIGINT)
           WITH (KAFKA_TOPIC='attempts', VALUE_FORMAT='JSON', TIMESTAMP='ts');
         CREATE TABLE possible_fraud AS SELECT card, COUNT(*) AS attempts FROM attempts
           WINDOW TUMBLING (SIZE 5 MINUTES, GRACE PERIOD 1 MINUTE) GROUP BY card HAVING COUNT(*) > 2;";

    fn send(task: &mut StreamTask, t: &Topology, card: &str, ts: i64) -> Processed {
        task.process(t, Some(card), &format!(r#"{{"amount": 10.0, "ts": {ts}}}"#))
    }

    #[test]
    fn a_task_counts_a_window_logs_each_write_and_a_restored_task_carries_on() {
        let t = Topology::compile(FRAUD, &Naming::Streams { application_id: "fraud".into() }).unwrap();
        let id = TaskId { subtopology: 0, partition: 1 };
        let mut task = StreamTask::new(id, &t);
        assert_eq!(task.state, TaskState::Restoring);
        assert_eq!(task.restore(&t, &t.stores[0], &[]).unwrap(), 0);
        task.start_running();
        let mut changelog = Vec::new();
        for ts in [1_000, 2_000, 3_000] {
            let out = send(&mut task, &t, "4011", ts);
            let (log, sink): (Vec<&Send>, Vec<&Send>) = out.sends.iter().partition(|s| s.partition.is_some());
            assert!(log.iter().all(|s| s.topic == "fraud-possible_fraud-store-changelog" && s.partition == Some(1)));
            changelog.extend(log.into_iter().map(|s| s.record.clone()));
            if ts == 3_000 {
                assert_eq!(
                    sink[0].record.value.as_deref(),
                    Some(r#"{"WINDOWSTART":0,"WINDOWEND":300000,"ATTEMPTS":3}"#)
                );
            } else {
                assert!(sink.is_empty(), "HAVING holds back counts 1 and 2");
            }
        }
        let shown: Vec<String> = task.store_entries(&t.stores[0]).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["4011 [0,300000) = 3"]);

        // Another instance takes the task over: it restores from the changelog and the fourth
        // attempt counts 4, not 1.
        let mut moved = StreamTask::new(id, &t);
        assert_eq!(moved.restore(&t, &t.stores[0], &changelog).unwrap(), 1);
        moved.start_running();
        let out = send(&mut moved, &t, "4011", 4_000);
        assert_eq!(out.sends[1].record.value.as_deref(), Some(r#"{"WINDOWSTART":0,"WINDOWEND":300000,"ATTEMPTS":4}"#));
        // Stream time moves to 400 000: the window [0, 300 000) closes at 360 000.
        send(&mut moved, &t, "9999", 400_000);
        let late = send(&mut moved, &t, "4011", 5_000);
        assert_eq!(late.late.len(), 1);
        assert_eq!(format!("{id}"), "0_1");
    }
}
