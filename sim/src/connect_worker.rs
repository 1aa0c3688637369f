//! A Kafka Connect worker, as the application on a client node.
//!
//! The worker is Kafka's `Worker` with its herder (`DistributedHerder`, or `StandaloneHerder`
//! for one worker). A distributed worker joins the worker group over the network
//! (`WorkerGroupMember`: a member engine of its node with protocol type `connect`, its
//! `client.id` the worker's name; `ksim_cluster::connect::worker_coordinator`): FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat every `heartbeat.interval.ms`, and LeaveGroup when it stops
//! cleanly; a crashed worker's session expires at the coordinator. The group's leader assigns
//! (`IncrementalCooperativeAssignor`). The worker runs the connectors and tasks its assignment
//! gives it, and drives each task's pure state machine (`ksim_cluster::connect`) with the
//! worker's producer and, for each sink task, a consumer of the task's own:
//! - a source task ([`SourceTask`]) polls its table every `poll.interval.ms`, sends what the
//!   chain lets through, and every `offset.flush.interval.ms` writes its committable offset to
//!   `offset.storage.topic` (distributed) or its offsets file (standalone);
//! - with exactly-once source support (KIP-618, `ExactlyOnceWorkerSourceTask`) the task's
//!   producer has the transactional id `<group.id>-<connector>-<task>`: it fences any zombie
//!   copy of the task at start (`initTransactions`), and each transaction (one per poll, or per
//!   `transaction.boundary.interval.ms`) carries the records and the offset together;
//! - each sink task has its own consumer (`Worker.buildWorkerSinkTask`: `client.id`
//!   `connector-consumer-<connector>-<task>`), a member of group `connect-<connector>`, so the
//!   group spreads the topics' partitions over the tasks, wherever they run; each record is
//!   converted, transformed and written ([`SinkTask`]), failures go to the dead letter queue or
//!   fail the task, and the positions are committed every `offset.flush.interval.ms`. A task
//!   the worker loses in a rebalance commits its positions and closes its consumer, which
//!   leaves the group (`WorkerSinkTask.close`);
//! - statuses go to `status.storage.topic` (`KafkaStatusBackingStore`) and the first worker writes
//!   the connectors' configurations to `config.storage.topic` (`KafkaConfigBackingStore`), as the
//!   group's leader does when a connector is created. (An exactly-once worker's one producer is
//!   its task's transactional producer, so with exactly-once support these two writes are left
//!   out.)

use crate::apps::{KafkaConsumer, KafkaProducer};
use crate::clock::now;
use crate::scenario::connect::{ConnectMode, ConnectSetup};
use crate::world::clients::Delivery;
use crate::world::World;
use ksim_cluster::connect::connector::{ConnectorConfig, TransactionBoundary};
use ksim_cluster::connect::errors::dead_letter_record;
use ksim_cluster::connect::event::ConnectEvent;
use ksim_cluster::connect::herder::Unit;
use ksim_cluster::connect::sink_task::{Incoming, Outcome, SinkTask};
use ksim_cluster::connect::smt::{Map, Value};
use ksim_cluster::connect::source_task::{offset_key, offset_value, SourceTask};
use ksim_cluster::connect::worker_coordinator::WorkerCoordinator;
use ksim_cluster::node::NodeId;
use ksim_cluster::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot::error::TryRecvError;

/// How often the worker's loop wakes when it has nothing to wait on.
const TICK_MS: u64 = 100;

/// `offset.flush.timeout.ms` (`WorkerConfig`, 5 s): how long a stopping source task waits for
/// its records in flight before it writes its final offset.
const OFFSET_FLUSH_TIMEOUT_MS: u64 = 5_000;

struct RunningSource {
    task: SourceTask,
    config: ConnectorConfig,
    key: String,
    exactly_once: bool,
    next_poll_ms: u64,
    next_flush_ms: u64,
    /// Records sent and not yet answered: (submission, source offset, delivery).
    in_flight: Vec<(u64, i64, Delivery)>,
    /// An offset write to the offset topic in flight.
    flush: Option<(i64, Delivery)>,
    /// Exactly-once: the open transaction's start, record count and last offset.
    txn: Option<(u64, usize, i64)>,
    failed: bool,
}

struct RunningSink {
    task: SinkTask,
    /// The task's own consumer.
    consumer: KafkaConsumer,
    next_commit_ms: u64,
    /// The next offset of each partition, as far as the task has handed records to the store.
    positions: BTreeMap<TopicPartition, i64>,
    failed: bool,
}

struct Worker {
    world: Arc<Mutex<World>>,
    node: NodeId,
    name: String,
    setup: ConnectSetup,
    producer: KafkaProducer,
    sources: BTreeMap<String, RunningSource>,
    sinks: BTreeMap<String, RunningSink>,
    generation: u32,
    /// The worker's group membership (distributed), and the assignment it last applied.
    membership: Option<KafkaConsumer>,
    applied: Option<Vec<Unit>>,
}

pub async fn run(world: Arc<Mutex<World>>, node: NodeId) {
    let (setup, name) = {
        let w = world.lock().expect("world lock");
        (w.connect_setup().expect("validated: a ConnectWorker has a connect section"), w.header_name(node))
    };
    let mut worker = Worker {
        producer: KafkaProducer::new(world.clone(), node),
        world,
        node,
        name,
        setup,
        sources: BTreeMap::new(),
        sinks: BTreeMap::new(),
        generation: 0,
        membership: None,
        applied: None,
    };
    worker.run().await
}

fn now_ms() -> u64 {
    now().as_ms()
}

impl Worker {
    fn event(&self, event: ConnectEvent) {
        self.world.lock().expect("world lock").connect_event(self.node, event);
    }

    fn exactly_once(&self) -> bool {
        self.setup.exactly_once_source().is_some()
    }

    /// `WorkerGroupMember`: a member engine of the node in group `group.id`, with the worker's
    /// session, heartbeat and rebalance timeouts.
    fn join_group(&mut self) {
        let w = &self.setup.worker;
        let (group, session, heartbeat, rebalance) =
            (w.group_id.clone(), w.session_timeout_ms, w.heartbeat_interval_ms, w.rebalance_timeout_ms);
        let Some(member) = KafkaConsumer::create(self.world.clone(), self.node, &self.name, |c| {
            c.group_id = Some(group);
            c.session_timeout_ms = session;
            c.heartbeat_interval_ms = heartbeat;
            c.max_poll_interval_ms = rebalance;
            c.enable_auto_commit = false;
        }) else {
            return;
        };
        let units = self.setup.units();
        // The config topic holds two records per connector (its configuration and its tasks).
        let config_offset = 2 * self.setup.connectors.len() as i64 - 1;
        member.join_worker_group(WorkerCoordinator::new(
            w.group_id.clone(),
            &self.name,
            w.connect_protocol,
            config_offset,
            units,
            w.scheduled_rebalance_max_delay_ms,
        ));
        self.membership = Some(member);
    }

    /// What the worker should run now: everything (standalone), or its group assignment.
    fn assignment(&mut self) -> Option<(u32, Vec<Unit>)> {
        if self.setup.mode == ConnectMode::Standalone {
            return Some((0, self.setup.units()));
        }
        let (generation, units) = self.membership.as_ref()?.worker_poll()?;
        Some((generation.max(0) as u32, units))
    }

    async fn run(&mut self) {
        let mut next_heartbeat_ms = 0;
        if self.setup.mode == ConnectMode::Distributed {
            self.join_group();
        }
        loop {
            if self.world.lock().expect("world lock").is_finished() {
                return;
            }
            let assignment = self.assignment();
            let changed = assignment.as_ref().map(|(_, us)| us) != self.applied.as_ref();
            // Apply a new assignment at once; retry a task that could not start yet on the
            // heartbeat interval.
            if changed || now_ms() >= next_heartbeat_ms {
                next_heartbeat_ms = now_ms() + self.setup.worker.heartbeat_interval_ms;
                if let Some((generation, units)) = assignment {
                    self.generation = generation;
                    self.write_configs_once();
                    self.applied = Some(units.clone());
                    self.reconcile(units).await;
                    // What the assignment revoked has stopped: the member may rejoin now
                    // (`onJoinComplete` runs `onRevoked` before `requestRejoin`).
                    if let Some(member) = &self.membership {
                        member.revocation_handled();
                    }
                }
            }
            let names: Vec<String> = self.sources.keys().cloned().collect();
            for name in names {
                self.drive_source(&name).await;
            }
            // Each running sink task polls in turn; together they wait about one tick.
            let running: Vec<String> = self.sinks.iter().filter(|(_, s)| !s.failed).map(|(n, _)| n.clone()).collect();
            if running.is_empty() {
                madsim::time::sleep(Duration::from_millis(TICK_MS)).await;
            }
            let wait = Duration::from_millis(TICK_MS / running.len().max(1) as u64);
            for name in running {
                self.drive_sink(&name, wait).await;
            }
        }
    }

    /// The first worker writes the connectors' configurations to the config topic.
    fn write_configs_once(&mut self) {
        if self.setup.mode != ConnectMode::Distributed || self.exactly_once() {
            return;
        }
        if !self.world.lock().expect("world lock").connect_claim_config_write() {
            return;
        }
        let topic = self.setup.worker.config_topic.clone();
        for c in &self.setup.connectors {
            let mut props = Map::new();
            for (k, v) in &c.props {
                props.insert(k.clone(), Value::String(v.clone()));
            }
            let mut value = Map::new();
            value.insert("properties".into(), Value::Map(props));
            drop(self.producer.send(&topic, Some(&format!("connector-{}", c.name)), &Value::Map(value).to_json()));
            let tasks = if c.source().is_some() { 1 } else { c.tasks_max };
            drop(self.producer.send(&topic, Some(&format!("commit-{}", c.name)), &format!("{{\"tasks\":{tasks}}}")));
        }
    }

    /// `KafkaStatusBackingStore.put`: a task's state, under `status-task-<connector>-<task>`.
    fn write_status(&self, unit: &str, state: &str, trace: Option<&str>) {
        if self.setup.mode != ConnectMode::Distributed || self.exactly_once() {
            return;
        }
        let mut value = Map::new();
        value.insert("state".into(), Value::String(state.into()));
        value.insert("trace".into(), trace.map_or(Value::Null, |t| Value::String(t.into())));
        value.insert("worker_id".into(), Value::String(self.name.clone()));
        value.insert("generation".into(), Value::Int64(i64::from(self.generation)));
        let key = format!("status-task-{unit}");
        drop(self.producer.send(&self.setup.worker.status_topic, Some(&key), &Value::Map(value).to_json()));
    }

    /// Start what the assignment adds; stop what it takes away.
    async fn reconcile(&mut self, units: Vec<Unit>) {
        let assigned: BTreeSet<String> = units.iter().map(|u| u.to_string()).collect();
        let revoked: Vec<String> = self.sources.keys().filter(|name| !assigned.contains(*name)).cloned().collect();
        for name in revoked {
            self.stop_source(&name).await;
        }
        let lost: Vec<String> = self.sinks.keys().filter(|name| !assigned.contains(*name)).cloned().collect();
        for name in lost {
            self.stop_sink(&name).await;
        }
        for unit in units {
            let Unit::Task(connector, task) = unit else { continue };
            let name = format!("{connector}-{task}");
            let config = self.setup.connector(&connector).expect("units come from the connectors").clone();
            if config.source().is_some() {
                if !self.sources.contains_key(&name) {
                    self.start_source(name, config, task).await;
                }
            } else {
                self.start_sink(name, config, task);
            }
        }
    }

    async fn start_source(&mut self, name: String, config: ConnectorConfig, task: u32) {
        let exactly_once = self.exactly_once();
        if exactly_once {
            // KIP-618: fence every earlier producer of this task before reading its offsets.
            if let Err(error) = self.producer.init_transactions().await {
                self.event(ConnectEvent::TaskFailed {
                    task: name.clone(),
                    reason: format!("initTransactions() failed: {error}"),
                });
                return;
            }
        }
        let probe = SourceTask::new(&config, task, None);
        let key = offset_key(&config.name, &probe.source_partition());
        let committed = match self.world.lock().expect("world lock").connect_committed_offset(&key, exactly_once) {
            Ok(committed) => committed,
            // The offset topic cannot be read yet: try again at the next heartbeat.
            Err(_) => return,
        };
        let task_state = SourceTask::new(&config, task, committed);
        self.event(ConnectEvent::TaskStarted { task: name.clone(), resume_after: committed });
        self.write_status(&name, "RUNNING", None);
        let now = now_ms();
        self.sources.insert(
            name,
            RunningSource {
                task: task_state,
                key,
                exactly_once,
                next_poll_ms: now,
                next_flush_ms: now + self.setup.worker.offset_flush_interval_ms,
                in_flight: Vec::new(),
                flush: None,
                txn: None,
                failed: false,
                config,
            },
        );
    }

    fn start_sink(&mut self, name: String, config: ConnectorConfig, task: u32) {
        if self.sinks.contains_key(&name) {
            return;
        }
        // `Worker.baseConsumerConfigs` (the node's consumer settings: group
        // `connect-<connector>`, no auto-commit, earliest) with the task's own client id.
        let client_id = format!("connector-consumer-{}-{task}", config.name);
        let group = format!("connect-{}", config.name);
        let Some(consumer) =
            KafkaConsumer::create(self.world.clone(), self.node, &client_id, |c| c.group_id = Some(group))
        else {
            let reason = "the worker cannot create another consumer".to_string();
            self.event(ConnectEvent::TaskFailed { task: name.clone(), reason: reason.clone() });
            self.write_status(&name, "FAILED", Some(&reason));
            return;
        };
        let sink = RunningSink {
            task: SinkTask::new(&config, task),
            consumer,
            next_commit_ms: now_ms() + self.setup.worker.offset_flush_interval_ms,
            positions: BTreeMap::new(),
            failed: false,
        };
        // `WorkerSinkTask.HandleRebalance`: a revocation commits before the consumer rejoins.
        sink.consumer.listen_for_revocations();
        sink.consumer.subscribe(&sink.task.settings().topics);
        self.sinks.insert(name.clone(), sink);
        self.event(ConnectEvent::TaskStarted { task: name.clone(), resume_after: None });
        self.write_status(&name, "RUNNING", None);
    }

    /// A sink task the worker no longer runs: commit what it wrote, then close its consumer,
    /// which leaves the group (`WorkerSinkTask.close`: `closeAllPartitions` commits
    /// synchronously, then `consumer.close()`).
    async fn stop_sink(&mut self, name: &str) {
        let Some(sink) = self.sinks.remove(name) else { return };
        if !sink.failed && !sink.positions.is_empty() {
            let offsets: Vec<(String, i64)> = sink.positions.iter().map(|(tp, o)| (tp.to_string(), *o)).collect();
            if sink.consumer.commit_sync().await.is_ok() {
                self.event(ConnectEvent::SinkCommitted { task: name.to_string(), offsets });
            }
        }
        sink.consumer.close();
    }

    fn fail_source(&mut self, name: &str, reason: String) {
        if let Some(s) = self.sources.get_mut(name) {
            s.failed = true;
        }
        self.event(ConnectEvent::TaskFailed { task: name.to_string(), reason: reason.clone() });
        self.write_status(name, "FAILED", Some(&reason));
    }

    /// A source task the worker stops running (a revocation; not a crash, which stops nothing
    /// in order): its final offset commit, as `AbstractWorkerSourceTask.execute` ends with
    /// `finalOffsetCommit`. `WorkerSourceTask` waits up to `offset.flush.timeout.ms` for its
    /// records in flight, then writes the offset of the last one acknowledged in order; an
    /// exactly-once task commits its open transaction (`maybeCommitFinalTransaction`). Its new
    /// owner resumes after that offset instead of after the last periodic flush.
    async fn stop_source(&mut self, name: &str) {
        let Some(s) = self.sources.get(name) else { return };
        if s.failed {
            self.sources.remove(name);
            return;
        }
        if s.exactly_once {
            if s.txn.is_some() {
                self.commit_transaction(name).await;
            }
            self.sources.remove(name);
            return;
        }
        let deadline = now_ms() + OFFSET_FLUSH_TIMEOUT_MS;
        loop {
            if self.take_source_answers(name).is_some() {
                // A send failed: the task fails rather than commit past it.
                self.sources.remove(name);
                return;
            }
            let s = self.sources.get(name).expect("present");
            if (s.in_flight.is_empty() && s.flush.is_none()) || now_ms() >= deadline {
                break;
            }
            madsim::time::sleep(Duration::from_millis(10)).await;
        }
        let mut s = self.sources.remove(name).expect("present");
        let Some(offset) = s.task.begin_flush() else { return };
        let store = if self.setup.mode == ConnectMode::Standalone {
            self.world.lock().expect("world lock").connect_write_offsets_file(&s.key, offset);
            format!("the offsets file {}", self.setup.worker.offsets_file)
        } else {
            let delivery = self.producer.send(&self.setup.worker.offset_topic, Some(&s.key), &offset_value(offset));
            if !matches!(delivery.await, Ok(Ok(_))) {
                return;
            }
            self.setup.worker.offset_topic.clone()
        };
        s.task.flush_done(true);
        self.event(ConnectEvent::OffsetsFlushed { task: name.to_string(), key: s.key.clone(), offset, store });
    }

    /// The producer's answers for a source task's records and offset write: acknowledged
    /// records become committable, a flush that landed is recorded. Returns the reason the task
    /// failed, if a send failed.
    fn take_source_answers(&mut self, name: &str) -> Option<String> {
        let s = self.sources.get_mut(name)?;
        let mut failure = None;
        let mut delivered = Vec::new();
        s.in_flight.retain_mut(|(seq, source_offset, delivery)| match delivery.try_recv() {
            Ok(Ok((tp, offset))) => {
                s.task.acked(*seq);
                delivered.push((*source_offset, tp, offset));
                false
            }
            Ok(Err(error)) => {
                failure = Some(s.task.send_failed(*seq, &error));
                false
            }
            Err(TryRecvError::Empty) => true,
            Err(TryRecvError::Closed) => false,
        });
        let connector = s.config.name.clone();
        if let Some((offset, delivery)) = s.flush.as_mut() {
            match delivery.try_recv() {
                Ok(Ok(_)) => {
                    let offset = *offset;
                    s.task.flush_done(true);
                    s.flush = None;
                    let event = ConnectEvent::OffsetsFlushed {
                        task: name.to_string(),
                        key: s.key.clone(),
                        offset,
                        store: self.setup.worker.offset_topic.clone(),
                    };
                    self.world.lock().expect("world lock").connect_event(self.node, event);
                }
                Ok(Err(_)) | Err(TryRecvError::Closed) => {
                    s.task.flush_done(false);
                    s.flush = None;
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        let mut w = self.world.lock().expect("world lock");
        for (source_offset, tp, offset) in delivered {
            w.connect_source_delivered(&connector, source_offset, tp, offset);
        }
        failure
    }

    async fn drive_source(&mut self, name: &str) {
        let now = now_ms();
        let Some(s) = self.sources.get(name) else { return };
        if s.failed {
            return;
        }
        if let Some(reason) = self.take_source_answers(name) {
            return self.fail_source(name, reason);
        }
        let s = self.sources.get_mut(name).expect("present");
        if now >= s.next_poll_ms {
            s.next_poll_ms = now + s.task.settings().poll_interval_ms;
            let polled = self.world.lock().expect("world lock").connect_poll_source(&mut s.task);
            let rows: Vec<i64> = polled
                .records
                .iter()
                .map(|r| r.offset)
                .chain(polled.dropped.iter().copied())
                .chain(polled.skipped.iter().map(|(id, _)| *id))
                .collect::<BTreeSet<i64>>()
                .into_iter()
                .collect();
            if !rows.is_empty() || polled.failed.is_some() {
                self.event(ConnectEvent::SourcePolled {
                    task: name.to_string(),
                    rows,
                    sent: polled.records.len(),
                    dropped: polled.dropped.clone(),
                    skipped: polled.skipped.iter().map(|(id, _)| *id).collect(),
                });
            }
            let s = self.sources.get_mut(name).expect("present");
            if s.exactly_once && !polled.records.is_empty() && s.txn.is_none() {
                if let Err(error) = self.producer.begin_transaction() {
                    return self.fail_source(name, format!("beginTransaction() failed: {error}"));
                }
                s.txn = Some((now, 0, 0));
            }
            for record in &polled.records {
                let delivery = self.producer.send(&record.topic, record.key.as_deref(), &record.value);
                s.in_flight.push((record.seq, record.offset, delivery));
                if let Some(txn) = s.txn.as_mut() {
                    txn.1 += 1;
                    txn.2 = record.offset;
                }
            }
            if let Some(reason) = polled.failed {
                return self.fail_source(name, reason);
            }
        }
        let s = self.sources.get_mut(name).expect("present");
        if s.exactly_once {
            let due = match (s.txn, s.config.source().map(|c| c.transaction_boundary)) {
                (None, _) => false,
                (Some(_), Some(TransactionBoundary::Poll) | None) => true,
                (Some((started, _, _)), Some(TransactionBoundary::Interval(interval))) => {
                    now >= started + interval.unwrap_or(self.setup.worker.offset_flush_interval_ms)
                }
            };
            if due {
                self.commit_transaction(name).await;
            }
        } else if now >= s.next_flush_ms {
            s.next_flush_ms = now + self.setup.worker.offset_flush_interval_ms;
            if let Some(offset) = s.task.begin_flush() {
                if self.setup.mode == ConnectMode::Standalone {
                    s.task.flush_done(true);
                    let key = s.key.clone();
                    let mut w = self.world.lock().expect("world lock");
                    w.connect_write_offsets_file(&key, offset);
                    let store = format!("the offsets file {}", self.setup.worker.offsets_file);
                    w.connect_event(
                        self.node,
                        ConnectEvent::OffsetsFlushed { task: name.to_string(), key, offset, store },
                    );
                } else {
                    let delivery =
                        self.producer.send(&self.setup.worker.offset_topic, Some(&s.key), &offset_value(offset));
                    s.flush = Some((offset, delivery));
                }
            }
        }
    }

    /// Exactly-once: the offset joins the open transaction, then the transaction commits.
    async fn commit_transaction(&mut self, name: &str) {
        let s = self.sources.get_mut(name).expect("present");
        let Some((_, records, offset)) = s.txn.take() else { return };
        let key = s.key.clone();
        // The offset's partition joins the transaction (AddPartitionsToTxn) when its batch is
        // sent: wait for it before committing, as commitTransaction() flushes every batch first.
        let offset_write = self.producer.send(&self.setup.worker.offset_topic, Some(&key), &offset_value(offset));
        let _ = offset_write.await;
        match self.producer.commit_transaction().await {
            Ok(()) => {
                let s = self.sources.get_mut(name).expect("present");
                s.task.flush_done(true);
                self.event(ConnectEvent::TransactionCommitted { task: name.to_string(), records, offset });
                self.drive_answers(name);
            }
            Err(error) if error.contains("fatal") => {
                self.fail_source(
                    name,
                    format!("commitTransaction() failed: {error}; another worker runs this task now"),
                );
            }
            Err(error) => {
                // Abort, and poll again from the last committed offset.
                let _ = self.producer.abort_transaction().await;
                let committed =
                    self.world.lock().expect("world lock").connect_committed_offset(&key, true).ok().flatten();
                let s = self.sources.get_mut(name).expect("present");
                s.in_flight.clear();
                s.task = SourceTask::new(&s.config, s.task.task, committed);
                self.event(ConnectEvent::TaskStarted {
                    task: format!("{name} (after aborting: {error})"),
                    resume_after: committed,
                });
            }
        }
    }

    /// Collect the answers a committed transaction's records already have.
    fn drive_answers(&mut self, name: &str) {
        let s = self.sources.get_mut(name).expect("present");
        let connector = s.config.name.clone();
        let mut delivered = Vec::new();
        s.in_flight.retain_mut(|(seq, source_offset, delivery)| match delivery.try_recv() {
            Ok(Ok((tp, offset))) => {
                s.task.acked(*seq);
                delivered.push((*source_offset, tp, offset));
                false
            }
            Err(TryRecvError::Empty) => true,
            _ => false,
        });
        let mut w = self.world.lock().expect("world lock");
        for (source_offset, tp, offset) in delivered {
            w.connect_source_delivered(&connector, source_offset, tp, offset);
        }
    }

    async fn drive_sink(&mut self, task_name: &str, wait: Duration) {
        let Some(sink) = self.sinks.get_mut(task_name) else { return };
        let records = match sink.consumer.poll(wait).await {
            Ok(records) => records,
            Err(error) => {
                sink.failed = true;
                let reason = format!("poll() threw {error}");
                self.event(ConnectEvent::TaskFailed { task: task_name.to_string(), reason: reason.clone() });
                self.write_status(task_name, "FAILED", Some(&reason));
                return;
            }
        };
        let Some(sink) = self.sinks.get_mut(task_name) else { return };
        let task_name = task_name.to_string();
        // `onPartitionsRevoked` -> `closePartitions`: commit what was written of the partitions
        // leaving, then let the consumer rejoin. Their records not yet written are left to the
        // next owner.
        let revoked = sink.consumer.revoked_unhandled();
        let mut records = records;
        if !revoked.is_empty() {
            records.retain(|r| !revoked.contains(&r.partition));
            let offsets: Vec<(TopicPartition, i64)> =
                sink.positions.iter().filter(|(tp, _)| revoked.contains(tp)).map(|(tp, o)| (tp.clone(), *o)).collect();
            if !offsets.is_empty() {
                let shown: Vec<(String, i64)> = offsets.iter().map(|(tp, o)| (tp.to_string(), *o)).collect();
                if sink.consumer.commit_offsets_sync(offsets).await.is_ok() {
                    self.event(ConnectEvent::SinkCommitted { task: task_name.clone(), offsets: shown });
                }
            }
            let Some(sink) = self.sinks.get_mut(&task_name) else { return };
            sink.positions.retain(|tp, _| !revoked.contains(tp));
            sink.consumer.revocation_handled();
        }
        let Some(sink) = self.sinks.get_mut(&task_name) else { return };
        let store = sink.task.settings().store.clone();
        for record in &records {
            let incoming = Incoming {
                topic: record.partition.topic.to_string(),
                partition: record.partition.partition,
                offset: record.offset,
                key: record.key.clone(),
                // A tombstone's null bytes: JsonConverter reads them as a null value.
                value: record.value.clone().unwrap_or_else(|| "null".into()),
            };
            let outcome = sink.task.process(&incoming);
            let mut w = self.world.lock().expect("world lock");
            match outcome {
                Outcome::Write { key, value } => {
                    w.connect_sink_write(
                        self.node,
                        &task_name,
                        &store,
                        (&record.partition, record.offset),
                        &key,
                        &value,
                    );
                }
                Outcome::Dropped => {}
                Outcome::Skipped { failure, dead_letter } => {
                    let origin = format!("{}@{}", record.partition, record.offset);
                    w.connect_event(
                        self.node,
                        ConnectEvent::RecordSkipped {
                            task: task_name.clone(),
                            origin: origin.clone(),
                            stage: failure.stage.name().to_string(),
                            error: format!("{}: {}", failure.exception_class, failure.message),
                        },
                    );
                    if let Some((topic, context)) = dead_letter {
                        drop(w);
                        // DeadLetterQueueReporter sends the original bytes: key, value and
                        // headers as read, with the context headers added.
                        let original = ksim_cluster::record::Record {
                            key: record.key.clone(),
                            value: record.value.clone(),
                            headers: record.headers.clone(),
                        };
                        let dead_letter = dead_letter_record(&original, &context);
                        let headers = dead_letter.headers.clone();
                        drop(self.producer.send_to(&topic, None, dead_letter));
                        w = self.world.lock().expect("world lock");
                        w.connect_event(
                            self.node,
                            ConnectEvent::DeadLettered { task: task_name.clone(), origin, topic, headers },
                        );
                    }
                }
                Outcome::TaskFailed(failure) => {
                    drop(w);
                    sink.failed = true;
                    let reason = format!(
                        "{} failed on {}@{}: {}: {} (errors.tolerance=none)",
                        failure.stage.name(),
                        record.partition,
                        record.offset,
                        failure.exception_class,
                        failure.message
                    );
                    self.event(ConnectEvent::TaskFailed { task: task_name.clone(), reason: reason.clone() });
                    self.write_status(&task_name, "FAILED", Some(&reason));
                    return;
                }
            }
            drop(w);
            sink.consumer.processed(record);
            sink.positions.insert(record.partition.clone(), record.offset + 1);
        }
        if now_ms() >= sink.next_commit_ms {
            sink.next_commit_ms = now_ms() + self.setup.worker.offset_flush_interval_ms;
            if !sink.positions.is_empty() {
                let offsets: Vec<(String, i64)> = sink.positions.iter().map(|(tp, o)| (tp.to_string(), *o)).collect();
                if sink.consumer.commit_sync().await.is_ok() {
                    self.event(ConnectEvent::SinkCommitted { task: task_name, offsets });
                }
            }
        }
    }
}
