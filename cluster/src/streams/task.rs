//! One `StreamTask`: a sub-topology run over one input partition, with its own state stores,
//! its own stream time, and a life of CREATED -> RESTORING -> RUNNING (`Task.State`).
//!
//! A task processes a record by running it through the topology (the `ksim ksql` engine), and
//! hands back what `RecordCollectorImpl` would send: each sink row to its sink topic (partitioned
//! by key, Streams' default), each store write to the store's changelog on the task's own
//! partition. Nothing here waits: the instance sends, flushes and commits.

use super::event::Entry;
use super::topology::{StoreOf, StoreSpec, Topology};
use crate::ksql::ast::SourceKind;
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
    /// An inner stream-table join found no table row for the record's key: nothing emitted.
    pub unjoined: bool,
    /// What the task's stores logged, in order: `(store, key, value)`, a deleted table row's
    /// value `None`. With the record cache on, an aggregation's writes come at the flush.
    pub store_writes: Vec<(String, String, Option<String>)>,
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
        match store.of {
            StoreOf::Aggregation(query) => {
                for record in records {
                    let write = topology.decode_store_write(store, &self.engine, record)?;
                    self.engine.restore(query, &write);
                }
                Ok(self.engine.store_entries(query).len())
            }
            StoreOf::Table => {
                let table = topology.table.as_ref().ok_or("a table store without a table")?;
                for record in records {
                    let (key, row) = topology.decode_table(record.key.as_deref(), record.value.as_deref())?;
                    self.engine.table_put(&table.name, &key, row.map(|r| r.values))?;
                }
                Ok(self.engine.table_rows(&table.name).len())
            }
        }
    }

    /// Restoration is over (`StreamTask.completeRestoration`).
    pub fn start_running(&mut self) {
        self.state = TaskState::Running;
    }

    /// Process one input record of the task's partition of `topic` (a tombstone's value is
    /// `None`).
    pub fn process(&mut self, topology: &Topology, topic: &str, key: Option<&str>, value: Option<&str>) -> Processed {
        assert_eq!(self.state, TaskState::Running, "task {} processed a record while restoring", self.id);
        if topology.table.as_ref().is_some_and(|t| t.topic == topic) {
            return self.process_table(topology, key, value);
        }
        // A tombstone on a stream's input is no row (ksqlDB drops a null value): skipped.
        let value = value.unwrap_or("null");
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
        self.sends_of(topology, step.changelog, step.rows, &mut out);
        out.late = step.late.into_iter().map(|(_, l)| l).collect();
        out.unjoined = !step.unjoined.is_empty();
        out
    }

    /// A commit flushes the task's record caches (`StreamTask.prepareCommit` ->
    /// `ProcessorStateManager.flushCache`): the updates they held back go to the changelog and
    /// downstream now.
    pub fn flush(&mut self, topology: &Topology) -> Processed {
        let mut out = Processed::default();
        if self.state != TaskState::Running {
            return out;
        }
        let step = self.engine.flush();
        self.sends_of(topology, step.changelog, step.rows, &mut out);
        out
    }

    fn sends_of(
        &self,
        topology: &Topology,
        changelog: Vec<(usize, crate::ksql::StoreWrite)>,
        rows: Vec<(usize, crate::ksql::Row)>,
        out: &mut Processed,
    ) {
        // The store takes the write (and logs it) before the processor forwards the change
        // downstream (`KStreamWindowAggregateProcessor.process`: `windowStore.put`, then
        // `tupleForwarder.maybeForward`).
        let step = crate::ksql::Step { rows, changelog, ..Default::default() };
        for (q, write) in &step.changelog {
            if let Some(store) = topology.stores.iter().find(|s| s.of == StoreOf::Aggregation(*q)) {
                let Entry { key, value } = entry(write);
                out.store_writes.push((store.name.clone(), key, Some(value)));
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
    }

    /// A record of the joined table's topic (`KTableSource.process`): put into (or, a
    /// tombstone, deleted from) the table's store and logged to its changelog as it came. It
    /// joins nothing: only the stream side of a stream-table join emits. A record without a
    /// key is skipped ("Skipping record due to null key").
    fn process_table(&mut self, topology: &Topology, key: Option<&str>, value: Option<&str>) -> Processed {
        let mut out = Processed::default();
        let (table, store) = match (&topology.table, topology.stores.iter().find(|s| s.of == StoreOf::Table)) {
            (Some(table), Some(store)) => (table, store),
            _ => unreachable!("a topology with a table has its store"),
        };
        let (pk, row) = match topology.decode_table(key, value) {
            Ok(decoded) => decoded,
            Err(e) => {
                out.skipped = Some(e);
                return out;
            }
        };
        if pk.is_null() {
            out.skipped = Some(format!("{} record without a key: a table row needs its PRIMARY KEY", table.name));
            return out;
        }
        if let Some(t) = row.as_ref().map(|r| r.rowtime).filter(|_| table.timestamp_column.is_some()) {
            out.rowtime = Some(t);
            self.stream_time = Some(self.stream_time.map_or(t, |s| s.max(t)));
        }
        if let Err(e) = self.engine.table_put(&table.name, &pk, row.map(|r| r.values)) {
            out.skipped = Some(e);
            return out;
        }
        self.processed += 1;
        let written = self
            .engine
            .table_rows(&table.name)
            .into_iter()
            .find(|r| r.first() == Some(&pk))
            .map(|row| row.iter().skip(1).map(|v| v.to_csv()).collect::<Vec<_>>().join(","));
        out.store_writes.push((store.name.clone(), pk.to_csv(), written));
        out.sends.push(Send {
            topic: store.changelog.clone(),
            partition: Some(self.id.partition),
            record: Record { key: key.map(str::to_string), value: value.map(str::to_string), headers: Vec::new() },
        });
        out
    }

    /// The store's contents, for the trace: an aggregation's `key [window]` and aggregates, a
    /// table's key and its other columns.
    pub fn store_entries(&self, store: &StoreSpec) -> Vec<Entry> {
        let StoreOf::Aggregation(query) = store.of else {
            // The table's row: its key column first (key columns lead a schema), then the rest.
            let Some(table) = self.engine.inputs().find(|s| s.kind == SourceKind::Table) else { return Vec::new() };
            return self
                .engine
                .table_rows(&table.name.clone())
                .iter()
                .map(|row| {
                    let rest: Vec<String> = row.iter().skip(1).map(|v| v.to_csv()).collect();
                    Entry { key: row.first().map(|k| k.to_csv()).unwrap_or_default(), value: rest.join(",") }
                })
                .collect();
        };
        self.engine.store_entries(query).iter().map(entry).collect()
    }
}

/// An aggregation's store entry as the trace shows it: `key|key [start,end)` and `agg,agg`.
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
        task.process(t, "attempts", Some(card), Some(&format!(r#"{{"amount": 10.0, "ts": {ts}}}"#)))
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

    /// `KStreamKTableJoinProcessor` in a task: the table's records go to its store and its
    /// changelog and emit nothing; an order joins the row its key has now; a task that takes
    /// the partition over restores the rows from the changelog.
    #[test]
    fn a_task_joins_orders_to_the_customers_its_store_holds_and_a_moved_task_restores_them() {
        const ENRICH: &str = "CREATE STREAM orders (customer STRING KEY, item STRING, ts BIGINT)
               WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', TIMESTAMP='ts');
             CREATE TABLE customers (id STRING PRIMARY KEY, tier STRING)
               WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON');
             CREATE STREAM enriched AS SELECT o.customer, o.item, c.tier FROM orders o JOIN customers c ON o.customer = c.id;";
        let t = Topology::compile(ENRICH, &Naming::Streams { application_id: "shop".into() }).unwrap();
        assert_eq!(t.input_topics(), ["orders", "customers"]);
        assert_eq!((t.subtopology_of("orders"), t.subtopology_of("customers")), (Some(0), Some(0)));
        assert_eq!(t.stores[0].changelog, "shop-customers-store-changelog");
        let k = Topology::compile(ENRICH, &Naming::Ksql { service_id: "default_".into() }).unwrap();
        assert_eq!(
            k.stores[0].changelog,
            "_confluent-ksql-default_query_CSAS_ENRICHED_2-KafkaTopic_Right-Reduce-changelog"
        );

        let id = TaskId { subtopology: 0, partition: 0 };
        let mut task = StreamTask::new(id, &t);
        assert_eq!(task.restore(&t, &t.stores[0], &[]).unwrap(), 0);
        task.start_running();
        let order = |task: &mut StreamTask, item: &str| {
            task.process(&t, "orders", Some("alice"), Some(&format!(r#"{{"item": "{item}", "ts": 1}}"#)))
        };
        let out = order(&mut task, "book");
        assert!(out.unjoined && out.sends.is_empty(), "no customer yet: {out:?}");
        let mut changelog = Vec::new();
        for tier in ["silver", "gold"] {
            let out = task.process(&t, "customers", Some("alice"), Some(&format!(r#"{{"tier": "{tier}"}}"#)));
            assert_eq!(out.sends.len(), 1, "a table update only goes to the store's changelog");
            assert_eq!(
                (out.sends[0].topic.as_str(), out.sends[0].partition),
                ("shop-customers-store-changelog", Some(0))
            );
            changelog.push(out.sends[0].record.clone());
            if tier == "silver" {
                let out = order(&mut task, "lamp");
                assert_eq!(out.sends[0].record.value.as_deref(), Some(r#"{"ITEM":"lamp","TIER":"silver"}"#));
            }
        }
        let shown: Vec<String> = task.store_entries(&t.stores[0]).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["alice = gold"]);
        let mut moved = StreamTask::new(id, &t);
        assert_eq!(moved.restore(&t, &t.stores[0], &changelog).unwrap(), 1);
        moved.start_running();
        let out = order(&mut moved, "desk");
        assert_eq!(out.sends[0].record.value.as_deref(), Some(r#"{"ITEM":"desk","TIER":"gold"}"#));
        // A tombstone deletes the customer; its changelog record is a tombstone too.
        let out = moved.process(&t, "customers", Some("alice"), None);
        assert_eq!(out.sends[0].record.value, None);
        assert!(order(&mut moved, "pen").unjoined);
    }
}
