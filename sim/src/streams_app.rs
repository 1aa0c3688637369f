//! A Kafka Streams instance as a scenario application: one `StreamThread` loop over the pure
//! runtime in `ksim_cluster::streams`.
//!
//! Each loop iteration is `StreamThread.runOnce`: poll the main consumer; hand over what a
//! rebalance revokes (`StreamsRebalanceListener.onPartitionsRevoked` ->
//! `TaskManager.handleRevocation`: commit the revoked tasks, and every other task with
//! uncommitted work, before the consumer rejoins); after a rebalance, close the tasks whose
//! partitions left and create the new ones (`TaskManager.handleAssignment`); restore every
//! restoring task's stores from their changelogs (`StoreChangelogReader`); run each record through
//! its task and send what it produces (`RecordCollectorImpl`); and every `commit.interval.ms`
//! commit (`StreamThread.maybeCommit`).
//!
//! A commit (`TaskExecutor.commitOffsetsOrTransaction`) carries the tasks' *consumed* offsets:
//! per input partition, the offset after the last record a task processed (not the consumer's
//! position, which runs ahead for records buffered by a task still restoring). Under
//! at_least_once it flushes the producer (waits for every send to be acknowledged) and then
//! commits those offsets with `commitSync(offsets)`: a crash between the two leaves outputs and
//! changelog writes whose inputs the next owner processes again. Under exactly_once_v2 the
//! thread's sends go in one transaction and the offsets go inside it
//! (`StreamsProducer.commitTransaction`: `sendOffsetsToTransaction(offsets,
//! consumer.groupMetadata())`, then `commitTransaction()`, KIP-447): the coordinator adds the
//! offsets partition to the transaction (AddOffsetsToTxn), the group coordinator holds them as
//! pending (TxnOffsetCommit, checked against the member's generation) and makes them visible only
//! with the commit marker. Each thread has its own `transactional.id`, so a dead instance's open
//! transaction is aborted by its coordinator once `transaction.timeout.ms` passes, and the new
//! owner restores with `read_committed`.
//!
//! A commit that fails (a stale generation: CommitFailedException, or an abortable transaction
//! error) is a `TaskMigratedException` (`StreamsProducer.commitTransaction`,
//! `TaskExecutor.commitOffsetsOrTransaction`): the thread aborts its open transaction, closes
//! every task dirty and revives it (`TaskManager.handleLostAll`), and reads on from the group's
//! committed offsets, its stores restored from their changelogs. A fatal error (the producer was
//! fenced for good) ends the thread.
//!
//! Everything a pane would show goes into the trace as the instance's notes: tasks created,
//! restoring, restored (records replayed and the store's entries), running, closed; late
//! records dropped; commits.

use crate::apps::{stopped_by, KafkaConsumer, KafkaProducer};
use crate::clock::now;
use crate::scenario::StreamsSetup;
use crate::world::clients::Delivery;
use crate::world::World;
use ksim_cluster::consumer::{ConsumedRecord, PollError};
use ksim_cluster::node::NodeId;
use ksim_cluster::streams::task::TaskState;
use ksim_cluster::streams::{Entry, Instance, ProcessingGuarantee, StreamsEvent, TaskId};
use ksim_cluster::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records buffered for tasks still restoring: a bound per instance (Streams pauses a partition
/// once its buffer holds `buffered.records.per.partition`, 1000 by default).
const MAX_BUFFERED: usize = 100_000;

/// One stream thread: its tasks, and what it processed since its last commit.
struct Thread {
    world: Arc<Mutex<World>>,
    node: NodeId,
    instance: Instance,
    consumer: KafkaConsumer,
    producer: KafkaProducer,
    restorer: Restorer,
    eos: bool,
    application: String,
    buffered: BTreeMap<TaskId, Vec<ConsumedRecord>>,
    /// Per input partition, the offset after the last record a task processed since the last
    /// commit (`StreamTask.committableOffsetsAndMetadata`).
    consumed: BTreeMap<TopicPartition, i64>,
    /// Under at_least_once: each input that produced sends, until every send is answered.
    pending: Vec<Pending>,
    /// Under exactly_once_v2: the inputs whose sends are in the open transaction.
    transaction_inputs: Vec<(TopicPartition, i64)>,
    transaction_deliveries: Vec<Delivery>,
    in_transaction: bool,
    since_commit: u64,
    /// Inputs processed since the last commit whose updates the record cache holds back.
    cached_inputs: Vec<(TopicPartition, i64)>,
    /// Records the last commit's cache flush sent.
    flushed: usize,
}

/// Why a commit did not happen.
enum CommitError {
    /// The tasks migrated: abort, close them dirty, revive (`TaskMigratedException`).
    Migrated(String),
    /// The thread cannot go on (a fenced or failed producer).
    Fatal(String),
}

impl Thread {
    fn event(&self, event: StreamsEvent) {
        self.world.lock().expect("world lock").streams_event(self.node, event);
    }

    /// `TaskExecutor.commitOffsetsOrTransaction`: flush, then the consumed offsets (at_least_once:
    /// `commitSync(offsets)`; exactly_once_v2: inside the transaction).
    async fn commit(&mut self) -> Result<usize, CommitError> {
        self.flush_caches()?;
        let offsets: Vec<(TopicPartition, i64)> = std::mem::take(&mut self.consumed).into_iter().collect();
        if self.eos {
            if offsets.is_empty() && !self.in_transaction {
                return Ok(0);
            }
            // `StreamsProducer.maybeBeginTransaction`: records processed without any output
            // still commit their offsets in a transaction.
            if !self.in_transaction {
                self.producer.begin_transaction().map_err(CommitError::Fatal)?;
                self.in_transaction = true;
            }
            let inputs = std::mem::take(&mut self.transaction_inputs);
            // `StreamTask.prepareCommit` flushes the record collector first, under exactly-once
            // too: every send is acknowledged (its partition added to the transaction).
            let mut flushed = true;
            for delivery in self.transaction_deliveries.drain(..) {
                flushed &= matches!(delivery.await, Ok(Ok(_)));
            }
            if !flushed {
                return Err(CommitError::Migrated("a send of the transaction failed".into()));
            }
            if !offsets.is_empty() {
                let Some(group) = self.consumer.group_metadata() else {
                    return Err(CommitError::Migrated("the consumer is in no group".into()));
                };
                self.producer.send_offsets_to_transaction(offsets.clone(), group).await.map_err(classify)?;
            }
            self.producer.commit_transaction().await.map_err(classify)?;
            self.in_transaction = false;
            self.world.lock().expect("world lock").streams_counted(self.node, &self.application, true, &inputs);
            return Ok(offsets.len());
        }
        // `RecordCollectorImpl.flush`, then the offsets.
        let mut counted = Vec::new();
        for entry in self.pending.drain(..) {
            let mut ok = !entry.failed;
            for delivery in entry.deliveries {
                ok &= matches!(delivery.await, Ok(Ok(_)));
            }
            if ok {
                counted.extend(entry.inputs);
            }
        }
        if !counted.is_empty() {
            self.world.lock().expect("world lock").streams_counted(self.node, &self.application, false, &counted);
        }
        if offsets.is_empty() {
            return Ok(0);
        }
        self.consumer.commit_offsets_sync(offsets.clone()).await.map_err(CommitError::Migrated)?;
        Ok(offsets.len())
    }

    /// `StreamTask.prepareCommit`: each task's record cache forwards and logs what it held back,
    /// before the producer is flushed; the inputs folded into those updates count once these
    /// sends are acknowledged (or their transaction commits).
    fn flush_caches(&mut self) -> Result<(), CommitError> {
        let Thread { instance, producer, pending, transaction_inputs, transaction_deliveries, .. } = self;
        let Instance { tasks, topology, .. } = instance;
        let mut sends = Vec::new();
        for task in tasks.values_mut() {
            let out = task.flush(topology);
            store_events(&self.world, self.node, task.id, task.stream_time, out.store_writes);
            sends.extend(out.sends);
        }
        let inputs = std::mem::take(&mut self.cached_inputs);
        self.flushed = sends.len();
        if sends.is_empty() {
            return Ok(());
        }
        if self.eos && !self.in_transaction {
            producer.begin_transaction().map_err(CommitError::Fatal)?;
            self.in_transaction = true;
        }
        let deliveries: Vec<Delivery> =
            sends.into_iter().map(|s| producer.send_to(&s.topic, s.partition, s.record)).collect();
        if self.eos {
            transaction_inputs.extend(inputs);
            transaction_deliveries.extend(deliveries);
        } else {
            // Every input folded into the flushed updates counts once all of them are answered.
            pending.push(Pending { inputs, deliveries, failed: false });
        }
        Ok(())
    }

    /// Commit, and on a migrated-tasks error revive every task. Returns false if the thread
    /// must stop.
    async fn commit_or_revive(&mut self, why: &str) -> bool {
        let processed = self.since_commit;
        match self.commit().await {
            Ok(partitions) => {
                if partitions > 0 || processed > 0 {
                    self.event(StreamsEvent::Committed {
                        why: why.to_string(),
                        processed,
                        cache_flushed: self.flushed,
                        partitions,
                        in_transaction: self.eos,
                    });
                }
                self.since_commit = 0;
                self.instance.committed(now().as_ms());
                true
            }
            Err(CommitError::Fatal(error)) => {
                if self.eos && self.in_transaction {
                    let _ = self.producer.abort_transaction().await;
                }
                self.event(StreamsEvent::ThreadDied { error });
                false
            }
            Err(CommitError::Migrated(error)) => self.revive(&error).await,
        }
    }

    /// `TaskMigratedException` -> `TaskManager.handleLostAll`: abort the open transaction, close
    /// every task dirty (its state is ahead of what committed), and read on from the committed
    /// offsets; the tasks come back RESTORING with the next assignment.
    async fn revive(&mut self, error: &str) -> bool {
        let fenced = error.contains("fatal");
        if self.eos && self.in_transaction && !fenced {
            if let Err(abort) = self.producer.abort_transaction().await {
                self.world.lock().expect("world lock").app_note(self.node, format!("abortTransaction() threw {abort}"));
            }
        }
        self.in_transaction = false;
        let closed: Vec<String> = self.instance.tasks.keys().map(TaskId::to_string).collect();
        self.event(StreamsEvent::TasksMigrated { error: error.to_string(), closed });
        self.instance.tasks.clear();
        self.buffered.clear();
        self.consumed.clear();
        self.pending.clear();
        self.transaction_inputs.clear();
        self.transaction_deliveries.clear();
        self.cached_inputs.clear();
        self.since_commit = 0;
        self.restorer.reset();
        self.consumer.rewind_to_committed();
        if self.eos && fenced {
            // `reInitializeProducer`: a new producer, which fences nothing older than itself
            // and starts from a fresh epoch once `initTransactions` returns.
            self.producer.reset();
            if let Err(error) = self.producer.init_transactions().await {
                self.event(StreamsEvent::ThreadDied { error: format!("initTransactions() threw {error}") });
                return false;
            }
        }
        true
    }
}

/// An abortable error migrates the tasks. So does a fenced producer: `StreamsProducer`
/// turns ProducerFencedException, InvalidProducerEpochException and InvalidPidMappingException
/// into a TaskMigratedException, and under exactly_once_v2 `TaskManager.handleLostAll` replaces
/// the thread's producer (`ActiveTaskCreator.reInitializeProducer`). (A transaction the
/// coordinator aborted on `transaction.timeout.ms` under transaction version 2 bumped the epoch,
/// and the thread's next request finds its producer fenced.) Any other fatal producer error ends
/// the thread.
fn classify(error: String) -> CommitError {
    let fenced = ["PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH", "INVALID_PRODUCER_ID_MAPPING"];
    if error.contains("fatal") && !fenced.iter().any(|code| error.contains(code)) {
        CommitError::Fatal(error)
    } else {
        CommitError::Migrated(error)
    }
}

pub async fn run(world: Arc<Mutex<World>>, node: NodeId, setup: StreamsSetup) {
    run_thread(world.clone(), node, setup).await;
    // The thread ended (a fatal error; `StreamThread.completeShutdown`): it closes its restore
    // and main consumers, and the main one leaves the group, so its partitions go to the
    // instances still running instead of waiting out `max.poll.interval.ms`. With its last
    // consumer closed the application's process ends (the instance is in ERROR state).
    let mut w = world.lock().expect("world lock");
    if !w.is_finished() {
        w.consumer_close(node, 1);
        w.consumer_close(node, 0);
    }
}

/// The stream thread's loop, until the thread dies.
async fn run_thread(world: Arc<Mutex<World>>, node: NodeId, setup: StreamsSetup) {
    let topology = setup.topology().expect("resolve compiled the topology");
    let guarantee = setup.guarantee().expect("resolve checked the guarantee");
    let eos = guarantee == ProcessingGuarantee::ExactlyOnceV2;
    let instance = Instance::new(topology, guarantee, setup.commit_interval_ms);
    let reads = instance.topology.input_topics();
    let stores: Vec<(String, String)> =
        instance.topology.stores.iter().map(|s| (s.name.clone(), s.changelog.clone())).collect();
    // The thread's restore consumer (`StreamThread.create`), built with the main consumer's
    // settings as `StreamsConfig.getRestoreConsumerConfigs` changes them.
    let name = crate::trace::node_name(&world.lock().expect("world lock").header.clients, node);
    let restore_consumer =
        KafkaConsumer::create(world.clone(), node, &format!("{name}-StreamThread-1-restore-consumer"), |c| {
            c.group_id = None;
            c.group_instance_id = None;
            c.enable_auto_commit = false;
            c.auto_offset_reset = ksim_cluster::config::OffsetReset::None;
        })
        .expect("a Streams instance runs its main consumer, so it can run its restore consumer");
    let mut t = Thread {
        world: world.clone(),
        node,
        application: instance.topology.application_id.clone(),
        consumer: KafkaConsumer::new(world.clone(), node),
        producer: KafkaProducer::new(world.clone(), node),
        restorer: Restorer { consumer: restore_consumer, changelogs: BTreeMap::new() },
        instance,
        eos,
        buffered: BTreeMap::new(),
        consumed: BTreeMap::new(),
        pending: Vec::new(),
        transaction_inputs: Vec::new(),
        transaction_deliveries: Vec::new(),
        in_transaction: false,
        since_commit: 0,
        cached_inputs: Vec::new(),
        flushed: 0,
    };
    let writes = (t.instance.topology.repartition.iter().map(|r| r.topic.clone()))
        .chain(t.instance.topology.sinks.iter().map(|s| s.topic.clone()))
        .collect();
    t.event(StreamsEvent::Started {
        application: t.application.clone(),
        guarantee: guarantee.name().to_string(),
        commit_interval_ms: t.instance.commit_interval_ms,
        reads,
        writes,
        stores,
    });
    if eos {
        if let Err(error) = t.producer.init_transactions().await {
            return t.producer.note(format!("initTransactions() threw {error}; the Streams thread dies"));
        }
    }
    t.consumer.listen_for_revocations();
    t.consumer.subscribe(&t.instance.topology.input_topics());
    loop {
        // While tasks restore, the main consumer is polled without waiting and the restore
        // consumer waits instead (`StreamThread.pollPhase` in PARTITIONS_ASSIGNED, then
        // `StoreChangelogReader.restore`).
        let poll_time = Duration::from_millis(setup.poll_interval_ms);
        let wait = if t.instance.restoring().is_empty() { poll_time } else { Duration::ZERO };
        let mut records = match t.consumer.poll(wait).await {
            Ok(records) => records,
            Err(error) => return stopped_by(&t.consumer, error),
        };
        // `onPartitionsRevoked`: commit before the consumer rejoins, so the next owner starts
        // from what this thread processed (`TaskManager.handleRevocation`). Records of a revoked
        // partition not yet processed are left to the next owner.
        let revoked = t.consumer.revoked_unhandled();
        if !revoked.is_empty() {
            t.event(StreamsEvent::PartitionsRevoked { partitions: revoked.iter().map(|tp| tp.to_string()).collect() });
            records.retain(|r| !revoked.contains(&r.partition));
            let revoked_tasks: Vec<TaskId> = revoked.iter().filter_map(|tp| task_of(&t.instance, tp)).collect();
            t.buffered.retain(|id, _| !revoked_tasks.contains(id));
            if !t.commit_or_revive("partitions revoked").await {
                return;
            }
            t.consumer.revocation_handled();
        }
        // Tasks follow the assignment once a rebalance is over: a task the instance keeps keeps
        // its store (a revoked task was committed, `suspended`, and resumes if it comes back).
        let settled = t.consumer.settled_assignment();
        let assigned: Vec<TaskId> = match &settled {
            Some(partitions) => partitions.iter().filter_map(|tp| task_of(&t.instance, tp)).collect(),
            None => t.instance.tasks.keys().copied().collect(),
        };
        let changed = t.instance.on_assignment(&assigned);
        for id in &changed.closed {
            t.buffered.remove(id);
            t.event(StreamsEvent::TaskClosed { task: id.to_string() });
        }
        if settled.is_some() {
            let Thread { buffered, instance, .. } = &mut t;
            buffered.retain(|id, _| instance.tasks.contains_key(id));
        }
        for id in &changed.created {
            let restoring = t.instance.tasks[id].state == TaskState::Restoring;
            t.event(StreamsEvent::TaskCreated { task: id.to_string(), restoring });
        }
        t.restorer.restore(&world, node, &mut t.instance, poll_time).await;
        for record in records {
            let Some(id) = task_of(&t.instance, &record.partition) else { continue };
            let queue = t.buffered.entry(id).or_default();
            if queue.len() < MAX_BUFFERED {
                queue.push(record);
            }
        }
        let ready: Vec<TaskId> = t
            .buffered
            .keys()
            .filter(|id| t.instance.tasks.get(id).is_some_and(|task| task.state == TaskState::Running))
            .copied()
            .collect();
        for id in ready {
            let mut queue = t.buffered.remove(&id).unwrap_or_default();
            if t.instance.topology.table.is_some() {
                let (now, later) = synchronized(&t.instance.topology, &t.consumer, id, queue);
                if !later.is_empty() {
                    t.buffered.insert(id, later);
                }
                queue = now;
            }
            if queue.is_empty() {
                continue;
            }
            if eos && !t.in_transaction {
                if t.producer.begin_transaction().is_err() {
                    return t.producer.note("the producer cannot begin a transaction; the Streams thread dies".into());
                }
                t.in_transaction = true;
            }
            let Thread {
                instance,
                producer,
                consumer,
                pending,
                transaction_inputs,
                transaction_deliveries,
                consumed,
                since_commit,
                cached_inputs,
                ..
            } = &mut t;
            let Instance { tasks, topology, .. } = instance;
            let task = tasks.get_mut(&id).expect("a running task");
            for record in queue {
                let out =
                    task.process(topology, &record.partition.topic, record.key.as_deref(), record.value.as_deref());
                let origin = format!("{}@{}", record.partition, record.offset);
                if out.unjoined {
                    let event = StreamsEvent::NoTableRow {
                        task: id.to_string(),
                        origin: origin.clone(),
                        key: record.key.clone().unwrap_or_else(|| "null".into()),
                        table: topology.table.as_ref().map_or("?", |t| t.name.as_str()).to_string(),
                    };
                    world.lock().expect("world lock").streams_event(node, event);
                }
                if let Some(why) = out.skipped {
                    let event = StreamsEvent::RecordSkipped { task: id.to_string(), origin: origin.clone(), why };
                    world.lock().expect("world lock").streams_event(node, event);
                }
                store_events(&world, node, id, task.stream_time, out.store_writes);
                let input = (record.partition.clone(), record.offset);
                if out.sends.is_empty() && topology.caches() {
                    cached_inputs.push(input.clone());
                }
                if !out.sends.is_empty() {
                    if eos {
                        transaction_inputs.push(input.clone());
                    }
                    let deliveries = out.sends.into_iter().map(|s| producer.send_to(&s.topic, s.partition, s.record));
                    if eos {
                        transaction_deliveries.extend(deliveries);
                    } else {
                        pending.push(Pending { inputs: vec![input], deliveries: deliveries.collect(), failed: false });
                    }
                }
                for late in out.late {
                    let event = StreamsEvent::LateRecordDropped {
                        task: id.to_string(),
                        origin: origin.clone(),
                        rowtime: late.rowtime,
                        window: late.window,
                        stream_time: late.stream_time,
                        grace_ms: late.grace_ms,
                    };
                    world.lock().expect("world lock").streams_event(node, event);
                }
                consumer.processed(&record);
                consumed.insert(record.partition.clone(), record.offset + 1);
                *since_commit += 1;
            }
        }
        if !eos {
            let counted = settle(&mut t.pending);
            if !counted.is_empty() {
                world.lock().expect("world lock").streams_counted(node, &t.application, false, &counted);
            }
        }
        if t.since_commit > 0 && t.instance.commit_due(now().as_ms()) && !t.commit_or_revive("commit.interval.ms").await
        {
            return;
        }
    }
}

/// What a task that reads several partitions (a stream and the table it joins) processes now,
/// and what stays buffered. Each time it takes the record with the smallest timestamp at the
/// head of its partitions' buffers (`PartitionGroup.nextRecord`, a priority queue on the heads'
/// timestamps): so a customer written before an order is in the table when the order joins, even
/// if the poll returned the order first. And it goes on only while every partition either has a
/// record buffered or is known to be caught up (`PartitionGroup.readyToProcess` under the default
/// `max.task.idle.ms` = 0, KIP-695): a partition whose lag is unknown (not fetched yet) or
/// positive (data at the broker not fetched) makes the task wait for the next poll. A record
/// without a timestamp goes first; ties go in topic order.
fn synchronized(
    topology: &ksim_cluster::streams::Topology,
    consumer: &KafkaConsumer,
    id: TaskId,
    queue: Vec<ConsumedRecord>,
) -> (Vec<ConsumedRecord>, Vec<ConsumedRecord>) {
    let mut heads: BTreeMap<TopicPartition, std::collections::VecDeque<(Option<i64>, ConsumedRecord)>> = topology
        .input_topics()
        .into_iter()
        .filter(|topic| topology.subtopology_of(topic) == Some(id.subtopology))
        .map(|topic| (TopicPartition::new(topic, id.partition), Default::default()))
        .collect();
    for record in queue {
        let ts = topology.timestamp_of(&record.partition.topic, record.key.as_deref(), record.value.as_deref());
        heads.entry(record.partition.clone()).or_default().push_back((ts, record));
    }
    let mut now = Vec::new();
    loop {
        let ready = heads.iter().all(|(tp, queue)| !queue.is_empty() || consumer.current_lag(tp) == Some(0));
        let next = heads
            .iter()
            .filter_map(|(tp, queue)| queue.front().map(|(ts, _)| (*ts, tp.clone())))
            .min_by_key(|(ts, _)| *ts)
            .map(|(_, tp)| tp);
        let (true, Some(next)) = (ready, next) else { break };
        let (_, record) = heads.get_mut(&next).and_then(|q| q.pop_front()).expect("a head");
        now.push(record);
    }
    let later = heads.into_values().flatten().map(|(_, record)| record).collect();
    (now, later)
}

/// Record what a task's stores logged: one event per run of puts to one store, one per deleted
/// table row.
fn store_events(
    world: &Arc<Mutex<World>>,
    node: NodeId,
    id: TaskId,
    stream_time: Option<i64>,
    writes: Vec<(String, String, Option<String>)>,
) {
    let mut writes = writes.into_iter().peekable();
    while let Some((store, key, value)) = writes.next() {
        let event = match value {
            None => StreamsEvent::StoreDeleted { task: id.to_string(), store, key, stream_time },
            Some(value) => {
                let mut entries = vec![Entry { key, value }];
                while let Some((_, key, Some(value))) = writes.next_if(|(next, _, v)| *next == store && v.is_some()) {
                    entries.push(Entry { key, value });
                }
                StreamsEvent::StoreUpdated { task: id.to_string(), store, entries, stream_time }
            }
        };
        world.lock().expect("world lock").streams_event(node, event);
    }
}

/// The task that reads a partition: `<sub-topology>_<partition>`.
fn task_of(instance: &Instance, tp: &TopicPartition) -> Option<TaskId> {
    let subtopology = instance.topology.subtopology_of(&tp.topic)?;
    Some(TaskId { subtopology, partition: tp.partition })
}

/// An input's sends under at_least_once, until each is answered.
struct Pending {
    /// The inputs these sends carry the results of (several for a record cache's flush).
    inputs: Vec<(TopicPartition, i64)>,
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
            counted.extend(entry.inputs.iter().cloned());
        }
        false
    });
    counted
}

/// A changelog partition the restore consumer reads for a restoring task.
struct Changelog {
    task: TaskId,
    /// The store's index in the topology's stores.
    store: usize,
    /// Where restoration ends (`StoreChangelogReader`'s `restoreEndOffset`), once known.
    end: Option<i64>,
    /// Records put back into the store so far.
    replayed: usize,
    /// A record that could not be put back stops the store's restoration here.
    failed: bool,
}

/// The thread's `StoreChangelogReader` over its restore consumer: a consumer of its own, outside
/// the group (`StreamsConfig.getRestoreConsumerConfigs`: no `group.id`, `auto.offset.reset=none`,
/// `client.id` `<thread>-restore-consumer`), assigned the changelog partitions of the tasks that
/// restore. A new store seeks to the changelog's beginning (`seekToBeginning`: ksim keeps no
/// local state or checkpoint files, so every restore replays the whole changelog, as a fresh
/// state directory or an exactly-once task after an unclean shutdown does). Restoration ends
/// where the log ended when it began: the end offsets come from ListOffsets (latest,
/// `read_uncommitted`, KAFKA-10167: `StoreChangelogReader.endOffsetForChangelogs` asks through
/// the admin client, ksim through the restore consumer's own `endOffsets`, the same request to
/// the same leader). A store is restored once the end is 0 or the consumer's position reaches it
/// (`hasRestoredToEnd`: under `read_committed` the position steps over the markers and aborted
/// records). Each poll's records go into their stores
/// (`onBatchRestored`); a task runs once all its stores are restored.
struct Restorer {
    consumer: KafkaConsumer,
    changelogs: BTreeMap<TopicPartition, Changelog>,
}

impl Restorer {
    /// Follow the restoring tasks, read what the restore consumer fetched into their stores and
    /// start the tasks whose stores are all restored. Waits up to `wait` for records while any
    /// task restores.
    async fn restore(&mut self, world: &Arc<Mutex<World>>, node: NodeId, instance: &mut Instance, wait: Duration) {
        let event = |event: StreamsEvent| world.lock().expect("world lock").streams_event(node, event);
        // The changelogs of tasks no longer restoring (closed, or revived) go; new ones come.
        let restoring = instance.restoring();
        let before: Vec<TopicPartition> = self.changelogs.keys().cloned().collect();
        self.changelogs.retain(|_, c| restoring.contains(&c.task));
        let mut added = Vec::new();
        for id in &restoring {
            for (store, spec) in instance.topology.stores.iter().enumerate() {
                if !instance.topology.stores_of(id.subtopology).iter().any(|s| s.name == spec.name) {
                    continue;
                }
                let tp = TopicPartition::new(spec.changelog.clone(), id.partition);
                if !self.changelogs.contains_key(&tp) {
                    self.changelogs
                        .insert(tp.clone(), Changelog { task: *id, store, end: None, replayed: 0, failed: false });
                    added.push(tp);
                }
            }
        }
        if before != self.changelogs.keys().cloned().collect::<Vec<_>>() {
            self.consumer.assign(self.changelogs.keys().cloned().collect());
        }
        if !added.is_empty() {
            self.consumer.seek_to_beginning(&added);
            self.consumer.request_end_offsets(&added);
        }
        if self.changelogs.is_empty() {
            return;
        }
        // `auto.offset.reset=none`: a changelog position that fell out of the log (its start
        // moved past it, or an unclean election truncated it: `LogTruncationException`) is an
        // InvalidOffsetException, and the task is corrupted (`StoreChangelogReader.restore`
        // -> `TaskCorruptedException`): its store is wiped and restored from the beginning.
        let (records, mut lost) = match self.consumer.poll(wait).await {
            Ok(records) => (records, Vec::new()),
            Err(PollError::LogTruncation(truncations)) => {
                (Vec::new(), truncations.into_iter().map(|t| t.partition).collect())
            }
            // No group, so nothing else is thrown; say it if it ever is.
            Err(error) => {
                world.lock().expect("world lock").app_note(node, format!("restore consumer poll() threw {error}"));
                (Vec::new(), Vec::new())
            }
        };
        lost.extend(self.consumer.partitions_without_offset());
        let Instance { tasks, topology, .. } = &mut *instance;
        let corrupted: BTreeSet<TaskId> =
            lost.iter().filter_map(|tp| self.changelogs.get(tp)).map(|c| c.task).collect();
        for id in corrupted {
            let changelogs: Vec<TopicPartition> =
                self.changelogs.iter().filter(|(_, c)| c.task == id).map(|(tp, _)| tp.clone()).collect();
            for tp in &changelogs {
                let c = self.changelogs.get_mut(tp).expect("listed");
                event(StreamsEvent::RestoreFailed {
                    task: id.to_string(),
                    store: topology.stores[c.store].name.clone(),
                    changelog: tp.to_string(),
                    error: "InvalidOffsetException: the restore position is no longer in the changelog; the task is corrupted (TaskCorruptedException): its store is wiped and restored from the beginning".into(),
                });
                *c = Changelog { task: id, store: c.store, end: None, replayed: 0, failed: false };
            }
            tasks.insert(id, ksim_cluster::streams::task::StreamTask::new(id, topology));
            self.consumer.seek_to_beginning(&changelogs);
            self.consumer.request_end_offsets(&changelogs);
        }
        let mut batches: BTreeMap<TopicPartition, Vec<ksim_cluster::record::Record>> = BTreeMap::new();
        let mut batch_end: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in records {
            batch_end.insert(r.partition.clone(), r.offset);
            batches.entry(r.partition).or_default().push(ksim_cluster::record::Record {
                key: r.key,
                value: r.value,
                headers: r.headers,
            });
        }
        for (tp, changelog) in self.changelogs.iter_mut() {
            let Some(task) = tasks.get_mut(&changelog.task) else { continue };
            let spec = &topology.stores[changelog.store];
            if changelog.end.is_none() {
                // `onRestoreStart` once both ends are known (an empty changelog, end 0, needs
                // no start: there is nothing to read).
                let start = self.consumer.reset_offset(tp);
                if let Some(end) = self.consumer.end_offset(tp).filter(|end| *end == 0 || start.is_some()) {
                    changelog.end = Some(end);
                    event(StreamsEvent::RestoreStarted {
                        task: changelog.task.to_string(),
                        store: spec.name.clone(),
                        changelog: tp.to_string(),
                        start_offset: start.unwrap_or(0).min(end),
                        end_offset: end,
                    });
                }
            }
            let Some(batch) = batches.remove(tp) else { continue };
            if changelog.failed {
                continue;
            }
            let n = batch.len();
            match task.restore(topology, spec, &batch) {
                Ok(_) => {
                    changelog.replayed += n;
                    event(StreamsEvent::BatchRestored {
                        task: changelog.task.to_string(),
                        store: spec.name.clone(),
                        changelog: tp.to_string(),
                        batch_end_offset: batch_end[tp] + 1,
                        records: n,
                        end_offset: changelog.end,
                    });
                }
                Err(error) => {
                    changelog.failed = true;
                    event(StreamsEvent::RestoreFailed {
                        task: changelog.task.to_string(),
                        store: spec.name.clone(),
                        changelog: tp.to_string(),
                        error,
                    });
                }
            }
        }
        // A store is restored once the position reached the end (or failed); a task runs once
        // every store of it is.
        let done = |tp: &TopicPartition, c: &Changelog| {
            c.failed || c.end.is_some_and(|end| end == 0 || self.consumer.position(tp).is_some_and(|p| p >= end))
        };
        let finished: Vec<TaskId> = restoring
            .iter()
            .filter(|id| {
                let mine: Vec<_> = self.changelogs.iter().filter(|(_, c)| c.task == **id).collect();
                !mine.is_empty() && mine.iter().all(|(tp, c)| done(tp, c))
            })
            .copied()
            .collect();
        for id in &finished {
            let task = tasks.get_mut(id).expect("a restoring task");
            for (tp, c) in self.changelogs.iter().filter(|(_, c)| c.task == *id) {
                if c.failed {
                    continue;
                }
                let spec = &topology.stores[c.store];
                event(StreamsEvent::StoreRestored {
                    task: id.to_string(),
                    store: spec.name.clone(),
                    changelog: tp.to_string(),
                    replayed: c.replayed,
                    entries: task.store_entries(spec),
                });
            }
            task.start_running();
            event(StreamsEvent::TaskRunning { task: id.to_string() });
        }
        if !finished.is_empty() {
            // `StoreChangelogReader.unregister`: the restored changelogs leave the assignment.
            self.changelogs.retain(|_, c| !finished.contains(&c.task));
            self.consumer.assign(self.changelogs.keys().cloned().collect());
        }
    }

    /// Every task was closed dirty (`handleLostAll`): what was being restored starts over.
    fn reset(&mut self) {
        self.changelogs.clear();
        self.consumer.assign(Vec::new());
    }
}
