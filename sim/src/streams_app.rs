//! A Kafka Streams instance as a scenario application: one `StreamThread` loop over the pure
//! runtime in `ksim_cluster::streams`.
//!
//! Each loop iteration is `StreamThread.runOnce`: poll the main consumer; after a rebalance, close
//! the tasks whose partitions left and create the new ones (`TaskManager.handleAssignment`);
//! restore every restoring task's stores from their changelogs (`StoreChangelogReader`); run each
//! record through its task and send what it produces (`RecordCollectorImpl`); and every
//! `commit.interval.ms` commit (`StreamThread.maybeCommit`). Under at_least_once a commit flushes
//! the producer (waits for every send to be acknowledged) and then commits the consumer's
//! offsets: a crash between the two leaves outputs and changelog writes whose inputs the next
//! owner processes again. Under exactly_once_v2 the thread's sends go in one transaction, flushed
//! and committed every `commit.interval.ms`; each thread has its own `transactional.id`
//! (KIP-447), so a dead instance's open transaction is aborted by its coordinator once
//! `transaction.timeout.ms` passes, and the new owner restores with `read_committed`.
//! Kafka sends the input offsets inside the transaction (`sendOffsetsToTransaction`); ksim's
//! transactions do not carry offsets yet, so the offsets are committed right after the
//! transaction commits (a crash in between would count twice; the checker would say so).
//!
//! Everything a pane would show goes into the trace as the instance's notes: tasks created,
//! restoring, restored (records replayed and the store's entries), running, closed; late
//! records dropped; commits.

use crate::apps::{stopped_by, KafkaConsumer, KafkaProducer};
use crate::clock::now;
use crate::scenario::StreamsSetup;
use crate::world::clients::Delivery;
use crate::world::World;
use ksim_cluster::consumer::ConsumedRecord;
use ksim_cluster::node::NodeId;
use ksim_cluster::streams::task::TaskState;
use ksim_cluster::streams::{Instance, ProcessingGuarantee, TaskId};
use ksim_cluster::TopicPartition;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records buffered for tasks still restoring: a bound per instance (Streams pauses a partition
/// once its buffer holds `buffered.records.per.partition`, 1000 by default).
const MAX_BUFFERED: usize = 100_000;

pub async fn run(world: Arc<Mutex<World>>, node: NodeId, setup: StreamsSetup) {
    let topology = setup.topology().expect("resolve compiled the topology");
    let guarantee = setup.guarantee().expect("resolve checked the guarantee");
    let eos = guarantee == ProcessingGuarantee::ExactlyOnceV2;
    let mut instance = Instance::new(topology, guarantee, setup.commit_interval_ms);
    let consumer = KafkaConsumer::new(world.clone(), node);
    let producer = KafkaProducer::new(world.clone(), node);
    let note = |text: String| world.lock().expect("world lock").app_note(node, text);
    let source = instance.topology.source.topic.clone();
    let stores: Vec<String> =
        instance.topology.stores.iter().map(|s| format!("store {} (changelog {})", s.name, s.changelog)).collect();
    note(format!(
        "Kafka Streams application.id={} starts: processing.guarantee={}, commit.interval.ms={}; reads {source}, writes {}{}",
        instance.topology.application_id,
        guarantee.name(),
        instance.commit_interval_ms,
        instance.topology.sinks.iter().map(|s| s.topic.as_str()).collect::<Vec<_>>().join(", "),
        if stores.is_empty() { String::new() } else { format!("; {}", stores.join(", ")) },
    ));
    if eos {
        if let Err(error) = producer.init_transactions().await {
            return producer.note(format!("initTransactions() threw {error}; the Streams thread dies"));
        }
    }
    consumer.subscribe(std::slice::from_ref(&source));
    let mut buffered: BTreeMap<TaskId, Vec<ConsumedRecord>> = BTreeMap::new();
    // Under at_least_once: each input that produced sends, until every send is answered.
    let mut pending: Vec<Pending> = Vec::new();
    // Under exactly_once_v2: the inputs whose sends are in the open transaction.
    let mut transaction_inputs: Vec<(TopicPartition, i64)> = Vec::new();
    let mut transaction_deliveries: Vec<Delivery> = Vec::new();
    let application = instance.topology.application_id.clone();
    let mut in_transaction = false;
    let mut since_commit = 0u64;
    loop {
        let records = match consumer.poll(Duration::from_millis(setup.poll_interval_ms)).await {
            Ok(records) => records,
            Err(error) => return stopped_by(&consumer, error),
        };
        // Tasks follow the assignment once a rebalance is over: a task the instance keeps keeps
        // its store (Streams' cooperative rebalancing, KIP-429, revokes only what moves).
        let settled = world.lock().expect("world lock").consumer_settled_assignment(node);
        let assigned: Vec<i32> = match settled {
            Some(partitions) => partitions.into_iter().filter(|tp| tp.topic == source).map(|tp| tp.partition).collect(),
            None => instance.tasks.keys().map(|id| id.partition).collect(),
        };
        let changed = instance.on_assignment(&assigned);
        for id in &changed.closed {
            buffered.remove(id);
            note(format!("task {id} closed: its partition was assigned away"));
        }
        for id in &changed.created {
            let state = instance.tasks[id].state;
            note(format!(
                "task {id} created ({})",
                if state == TaskState::Restoring { "RESTORING" } else { "RUNNING" }
            ));
        }
        restore(&world, node, &mut instance, eos);
        for record in records {
            let id = TaskId { subtopology: 0, partition: record.partition.partition };
            let queue = buffered.entry(id).or_default();
            if queue.len() < MAX_BUFFERED {
                queue.push(record);
            }
        }
        let ready: Vec<TaskId> = buffered
            .keys()
            .filter(|id| instance.tasks.get(id).is_some_and(|t| t.state == TaskState::Running))
            .copied()
            .collect();
        for id in ready {
            let queue = buffered.remove(&id).unwrap_or_default();
            if queue.is_empty() {
                continue;
            }
            if eos && !in_transaction {
                if producer.begin_transaction().is_err() {
                    return producer.note("the producer cannot begin a transaction; the Streams thread dies".into());
                }
                in_transaction = true;
            }
            let Instance { tasks, topology, .. } = &mut instance;
            let task = tasks.get_mut(&id).expect("a running task");
            for record in queue {
                // A tombstone on a stream's input is no row (ksqlDB drops a null value): skipped.
                let out = task.process(topology, record.key.as_deref(), record.value.as_deref().unwrap_or("null"));
                if let Some(why) = &out.skipped {
                    note(format!("task {id} skipped {}@{}: {why}", record.partition, record.offset));
                }
                let input = (record.partition.clone(), record.offset);
                if !out.sends.is_empty() {
                    if eos {
                        transaction_inputs.push(input.clone());
                    }
                    let deliveries = out.sends.into_iter().map(|s| producer.send_to(&s.topic, s.partition, s.record));
                    if eos {
                        transaction_deliveries.extend(deliveries);
                    } else {
                        pending.push(Pending { input, deliveries: deliveries.collect(), failed: false });
                    }
                }
                for late in out.late {
                    note(format!(
                        "task {id} dropped a late record ({}@{}): event time {} is in window [{}, {}), which closed at stream time {} with grace {} ms",
                        record.partition, record.offset, late.rowtime, late.window.0, late.window.1, late.stream_time, late.grace_ms
                    ));
                }
                consumer.processed(&record);
                since_commit += 1;
            }
        }
        if !eos {
            let counted = settle(&mut pending);
            if !counted.is_empty() {
                world.lock().expect("world lock").streams_counted(node, &application, false, &counted);
            }
        }
        let now_ms = now().as_ms();
        if since_commit > 0 && instance.commit_due(now_ms) {
            let outcome = if eos {
                // KIP-447 sends the input offsets in the transaction
                // (`sendOffsetsToTransaction`); ksim's transactions do not carry offsets yet,
                // so the consumer commits them right after the transaction commits.
                in_transaction = false;
                let inputs = std::mem::take(&mut transaction_inputs);
                // `StreamTask.prepareCommit` flushes the record collector first, under
                // exactly-once too: every send is acknowledged (its partition added to the
                // transaction) before the commit.
                let mut flushed = true;
                for delivery in transaction_deliveries.drain(..) {
                    flushed &= matches!(delivery.await, Ok(Ok(_)));
                }
                let committed = if flushed {
                    producer.commit_transaction().await
                } else {
                    Err("a send of the transaction failed; the transaction is aborted".to_string())
                };
                match committed {
                    Ok(()) => {
                        world.lock().expect("world lock").streams_counted(node, &application, true, &inputs);
                        consumer.commit_sync().await
                    }
                    Err(error) => {
                        // The task's state is now ahead of what committed: Streams treats it as
                        // corrupted (`TaskCorruptedException`) and revives the tasks, wiping and
                        // restoring their stores. ksim aborts and stops the thread instead.
                        let _ = producer.abort_transaction().await;
                        return producer.note(format!(
                            "commit failed: {error}; the transaction is aborted and the Streams thread dies (ksim does not revive corrupted tasks)"
                        ));
                    }
                }
            } else {
                // `RecordCollectorImpl.flush`, then the offsets (`TaskExecutor.commitOffsetsOrTransaction`).
                let mut counted = Vec::new();
                for entry in pending.drain(..) {
                    let mut ok = !entry.failed;
                    for delivery in entry.deliveries {
                        ok &= matches!(delivery.await, Ok(Ok(_)));
                    }
                    if ok {
                        counted.push(entry.input);
                    }
                }
                if !counted.is_empty() {
                    world.lock().expect("world lock").streams_counted(node, &application, false, &counted);
                }
                consumer.commit_sync().await
            };
            match outcome {
                Ok(()) => {
                    note(format!("commit: {since_commit} records processed since the last commit; offsets committed"))
                }
                Err(error) => note(format!("commit failed: {error}")),
            }
            since_commit = 0;
            instance.committed(now().as_ms());
        }
    }
}

/// An input's sends under at_least_once, until each is answered.
struct Pending {
    input: (TopicPartition, i64),
    deliveries: Vec<Delivery>,
    failed: bool,
}

/// The inputs whose every send is now acknowledged (their results are visible); entries with a
/// failed send are dropped uncounted.
fn settle(pending: &mut Vec<Pending>) -> Vec<(TopicPartition, i64)> {
    use tokio::sync::oneshot::error::TryRecvError;
    let mut counted = Vec::new();
    pending.retain_mut(|entry| {
        entry.deliveries.retain_mut(|d| match d.try_recv() {
            Ok(Ok(_)) => false,
            Ok(Err(_)) | Err(TryRecvError::Closed) => {
                entry.failed = true;
                false
            }
            Err(TryRecvError::Empty) => true,
        });
        if !entry.deliveries.is_empty() {
            return true;
        }
        if !entry.failed {
            counted.push(entry.input.clone());
        }
        false
    });
    counted
}

/// Restore every restoring task whose changelog partitions have a leader, and start it.
fn restore(world: &Arc<Mutex<World>>, node: NodeId, instance: &mut Instance, read_committed: bool) {
    for id in instance.restoring() {
        let mut done = true;
        let Instance { tasks, topology, .. } = &mut *instance;
        let task = tasks.get_mut(&id).expect("a restoring task");
        for store in &topology.stores {
            let tp = TopicPartition::new(store.changelog.clone(), id.partition);
            let read = world.lock().expect("world lock").changelog_read(node, &tp, read_committed);
            let Some(records) = read else {
                done = false;
                continue;
            };
            let outcome = task.restore(topology, store, &records);
            let text = match outcome {
                Ok(entries) => format!(
                    "task {id} restored store {} from {tp}: {} records replayed, {entries} entries: {}",
                    store.name,
                    records.len(),
                    task.describe_store(store).join("; ")
                ),
                Err(error) => format!("task {id} could not restore store {} from {tp}: {error}", store.name),
            };
            world.lock().expect("world lock").app_note(node, text);
        }
        if done {
            task.start_running();
            world.lock().expect("world lock").app_note(node, format!("task {id} RUNNING"));
        }
    }
}
