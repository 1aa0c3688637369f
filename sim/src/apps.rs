//! The client API, and the applications scenarios run on it.
//!
//! [`KafkaProducer`] and [`KafkaConsumer`] are what application code holds, shaped like the Java
//! and .NET clients: `send` returns a delivery you may await (or drop, and let the producer report
//! the outcome), `poll` waits up to a timeout for records. The applications below are ordinary
//! async Rust, as a learner would write them at work.

use crate::clock::now;
use crate::scenario::{App, CommitMode, Processing};
use crate::world::clients::{Delivery, TxnCall};
use crate::world::World;
use ksim_cluster::consumer::{ConsumedRecord, PollError};
use ksim_cluster::node::NodeId;
use ksim_cluster::record::Record;
use ksim_cluster::txn::client::GroupMetadata;
use ksim_cluster::TopicPartition;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct KafkaProducer {
    world: Arc<Mutex<World>>,
    node: NodeId,
}

impl KafkaProducer {
    pub fn new(world: Arc<Mutex<World>>, node: NodeId) -> Self {
        KafkaProducer { world, node }
    }

    /// Queue a record. The returned delivery resolves to its partition and offset, or the error
    /// the producer gave up with.
    pub fn send(&self, topic: &str, key: Option<&str>, value: &str) -> Delivery {
        self.send_record(topic, Record::keyed(key, value))
    }

    /// Queue a tombstone: `key` with a null value (Java's `new ProducerRecord<>(topic, key,
    /// null)`, .NET's `Value = null`).
    pub fn send_tombstone(&self, topic: &str, key: Option<&str>) -> Delivery {
        self.send_record(topic, Record { key: key.map(str::to_string), value: None, headers: Vec::new() })
    }

    fn send_record(&self, topic: &str, record: Record) -> Delivery {
        self.world.lock().expect("world lock").producer_send(self.node, topic, record)
    }

    /// Queue a record for a partition the application chose (`None`: the partitioner's).
    pub fn send_to(&self, topic: &str, partition: Option<i32>, record: Record) -> Delivery {
        self.world.lock().expect("world lock").producer_send_to(self.node, topic, partition, record)
    }

    async fn transaction_call(&self, call: TxnCall) -> Result<(), String> {
        let outcome = self.world.lock().expect("world lock").producer_transaction_call(self.node, call);
        outcome.await.unwrap_or_else(|_| Err("the producer stopped".into()))
    }

    /// `initTransactions()`: waits until the coordinator gave this producer its epoch.
    /// Close this producer and create a new one with the same settings: false if the node
    /// has none.
    pub fn reset(&self) -> bool {
        self.world.lock().expect("world lock").producer_reset(self.node)
    }

    pub async fn init_transactions(&self) -> Result<(), String> {
        self.transaction_call(TxnCall::InitTransactions).await
    }

    /// `beginTransaction()`.
    pub fn begin_transaction(&self) -> Result<(), String> {
        self.world.lock().expect("world lock").producer_begin_transaction(self.node)
    }

    /// `commitTransaction()`: flushes, then waits for the coordinator's decision.
    pub async fn commit_transaction(&self) -> Result<(), String> {
        self.transaction_call(TxnCall::CommitTransaction).await
    }

    /// `sendOffsetsToTransaction(offsets, groupMetadata)`: waits until the group coordinator
    /// holds the offsets (or refused them).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
        group: GroupMetadata,
    ) -> Result<(), String> {
        let outcome = self.world.lock().expect("world lock").producer_send_offsets(self.node, offsets, group);
        outcome.await.unwrap_or_else(|_| Err("the producer stopped".into()))
    }

    /// `abortTransaction()`.
    pub async fn abort_transaction(&self) -> Result<(), String> {
        self.transaction_call(TxnCall::AbortTransaction).await
    }

    pub(crate) fn note(&self, text: String) {
        self.world.lock().expect("world lock").app_note(self.node, text);
    }
}

/// One `KafkaConsumer` of an application: consumer engine `engine` of its client node (0 for
/// the node's configured consumer; further ones from [`KafkaConsumer::create`]).
pub struct KafkaConsumer {
    world: Arc<Mutex<World>>,
    node: NodeId,
    engine: usize,
}

impl KafkaConsumer {
    pub fn new(world: Arc<Mutex<World>>, node: NodeId) -> Self {
        KafkaConsumer { world, node, engine: 0 }
    }

    /// `new KafkaConsumer(props)` with the node's consumer settings as `configure` changes them
    /// and its own `client.id`: a consumer of its own, with its own connections. `None` if the
    /// node has no consumer settings or runs as many consumers as it can.
    pub fn create(
        world: Arc<Mutex<World>>,
        node: NodeId,
        client_id: &str,
        configure: impl FnOnce(&mut ksim_cluster::config::ConsumerConfig),
    ) -> Option<Self> {
        let engine = world.lock().expect("world lock").consumer_add_engine(node, client_id, configure)?;
        Some(KafkaConsumer { world, node, engine })
    }

    /// Make this consumer engine a Connect worker's group membership (`WorkerGroupMember`):
    /// it joins the worker group at once.
    pub fn join_worker_group(&self, worker: ksim_cluster::connect::worker_coordinator::WorkerCoordinator) {
        self.world.lock().expect("world lock").consumer_join_worker_group(self.node, self.engine, worker);
    }

    /// `WorkerGroupMember.poll`, without waiting: the membership's heartbeats and rejoins go
    /// on, and the answer is what the worker runs (with the generation it last completed),
    /// once it has had an assignment.
    pub fn worker_poll(&self) -> Option<(i32, Vec<ksim_cluster::connect::herder::Unit>)> {
        let mut world = self.world.lock().expect("world lock");
        let _ = world.consumer_poll(self.node, self.engine);
        world.consumer_worker_assignment(self.node, self.engine)
    }

    /// Assigned partitions the consumer has no position for and will not choose one
    /// (`auto.offset.reset=none`): what its `poll` would throw NoOffsetForPartitionException or
    /// OffsetOutOfRangeException for.
    pub fn partitions_without_offset(&self) -> Vec<TopicPartition> {
        self.world.lock().expect("world lock").consumer_partitions_without_offset(self.node, self.engine)
    }

    /// `close()`: leave the group; the process ends once every consumer it runs has closed.
    pub fn close(&self) {
        self.world.lock().expect("world lock").consumer_close(self.node, self.engine);
    }

    /// `assign(partitions)`: exactly these partitions, no group.
    pub fn assign(&self, partitions: Vec<TopicPartition>) {
        self.world.lock().expect("world lock").consumer_assign(self.node, self.engine, partitions);
    }

    /// `seekToBeginning(partitions)`.
    pub fn seek_to_beginning(&self, partitions: &[TopicPartition]) {
        self.world.lock().expect("world lock").consumer_seek_to_beginning(self.node, self.engine, partitions);
    }

    /// `position(partition)`, if the consumer has one.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.world.lock().expect("world lock").consumer_position(self.node, self.engine, tp)
    }

    /// Where its last reset of the partition (`seekToBeginning`) put the position.
    pub fn reset_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.world.lock().expect("world lock").consumer_reset_offset(self.node, self.engine, tp)
    }

    /// `endOffsets(partitions)`: look their ends up; [`KafkaConsumer::end_offset`] has them
    /// once the leaders answered.
    pub fn request_end_offsets(&self, partitions: &[TopicPartition]) {
        self.world.lock().expect("world lock").consumer_request_end_offsets(self.node, self.engine, partitions);
    }

    /// The end the last `endOffsets` lookup of the partition found.
    pub fn end_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.world.lock().expect("world lock").consumer_end_offset(self.node, self.engine, tp)
    }

    /// The partitions a rebalance settled on, `None` while the consumer (re)joins its group.
    pub fn settled_assignment(&self) -> Option<Vec<TopicPartition>> {
        self.world.lock().expect("world lock").consumer_settled_assignment(self.node, self.engine)
    }

    /// Read every partition of these topics (no consumer group: this consumer owns them all).
    pub fn assign_all(&self, topics: &[String]) {
        self.world.lock().expect("world lock").consumer_assign_topics(self.node, self.engine, topics);
    }

    /// Join the consumer group (`group.id`) for these topics.
    pub fn subscribe(&self, topics: &[String]) {
        self.world.lock().expect("world lock").consumer_subscribe(self.node, self.engine, topics);
    }

    /// Commit the positions of what `poll` has returned so far, and wait for the answer
    /// (Kafka's `commitSync()`).
    pub async fn commit_sync(&self) -> Result<(), String> {
        let outcome = self.world.lock().expect("world lock").consumer_commit(self.node, self.engine);
        outcome.await.unwrap_or_else(|_| Err("the consumer stopped".into()))
    }

    /// `commitSync(offsets)`: commit these offsets (the next to read per partition) and wait.
    pub async fn commit_offsets_sync(&self, offsets: Vec<(TopicPartition, i64)>) -> Result<(), String> {
        let outcome = self.world.lock().expect("world lock").consumer_commit_offsets(self.node, self.engine, offsets);
        outcome.await.unwrap_or_else(|_| Err("the consumer stopped".into()))
    }

    /// Register a rebalance listener: from now on a revocation waits for
    /// [`KafkaConsumer::revocation_handled`] before the consumer rejoins its group.
    pub fn listen_for_revocations(&self) {
        self.world.lock().expect("world lock").consumer_listen_for_revocations(self.node, self.engine);
    }

    /// The partitions revoked that the listener has yet to handle (`onPartitionsRevoked`'s
    /// argument), empty if none.
    pub fn revoked_unhandled(&self) -> Vec<TopicPartition> {
        self.world.lock().expect("world lock").consumer_revoked_unhandled(self.node, self.engine)
    }

    /// `onPartitionsRevoked` returned.
    pub fn revocation_handled(&self) {
        self.world.lock().expect("world lock").consumer_revocation_handled(self.node, self.engine);
    }

    /// `currentLag(partition)`: records at the broker not fetched yet, once a fetch told.
    pub fn current_lag(&self, tp: &TopicPartition) -> Option<i64> {
        self.world.lock().expect("world lock").consumer_current_lag(self.node, self.engine, tp)
    }

    /// `groupMetadata()`: the group, generation and member id this consumer is in now.
    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        self.world.lock().expect("world lock").consumer_group_metadata(self.node, self.engine)
    }

    /// Seek every assigned partition back to the group's committed offset.
    pub fn rewind_to_committed(&self) {
        self.world.lock().expect("world lock").consumer_rewind_to_committed(self.node, self.engine);
    }

    /// Mark a record processed: its side effect is done (the checker counts these).
    pub fn processed(&self, record: &ConsumedRecord) {
        self.world.lock().expect("world lock").record_processed(
            self.node,
            self.engine,
            record.partition.clone(),
            record.offset,
        );
    }

    /// Wait up to `timeout` for records. Like Java's `poll`, it throws (here: returns `Err`)
    /// what the consumer cannot decide alone: a fatal group error (FENCED_INSTANCE_ID,
    /// INVALID_SESSION_TIMEOUT: the consumer is out of its group) or a log truncation with
    /// `auto.offset.reset=none`.
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ConsumedRecord>, PollError> {
        let ready = {
            let mut world = self.world.lock().expect("world lock");
            let records = world.consumer_poll(self.node, self.engine)?;
            if !records.is_empty() {
                return Ok(records);
            }
            world.poll_ready(self.node, self.engine)
        };
        let _ = madsim::time::timeout(timeout, ready.notified()).await;
        self.world.lock().expect("world lock").consumer_poll(self.node, self.engine)
    }
}

/// The applications here do not catch what `poll` throws (with `auto.offset.reset=none`, a
/// LogTruncationException): like an uncaught exception in a Java poll loop, it ends the
/// application, which says so in the trace. A real application would alert someone, or seek to
/// the divergent offset the exception names to read what replaced the lost records.
pub(crate) fn stopped_by(consumer: &KafkaConsumer, error: PollError) {
    consumer
        .world
        .lock()
        .expect("world lock")
        .app_note(consumer.node, format!("poll() threw {error}; the application does not catch it and stops reading"));
}

/// Wait until virtual time `ms` (no wait if it has passed).
async fn wait_until_ms(ms: u64) {
    let now_ms = now().as_ms();
    if ms > now_ms {
        madsim::time::sleep(Duration::from_millis(ms - now_ms)).await;
    }
}

/// Run a scenario's application on a client node.
pub async fn run(world: Arc<Mutex<World>>, node: NodeId, app: App, start_ms: u64) {
    wait_until_ms(start_ms).await;
    match app {
        App::Producer { topic, records, interval_ms, keys, value_prefix, tombstones } => {
            let producer = KafkaProducer::new(world, node);
            for n in 0..records {
                let key = (!keys.is_empty()).then(|| keys[n as usize % keys.len()].as_str());
                // Like `producer.send(record, callback)`: don't wait; the trace reports the outcome.
                if tombstones.contains(&n) {
                    drop(producer.send_tombstone(&topic, key));
                } else {
                    drop(producer.send(&topic, key, &format!("{value_prefix}-{n}")));
                }
                madsim::time::sleep(Duration::from_millis(interval_ms)).await;
            }
        }
        App::JsonProducer { topic, records, interval_ms } => {
            let producer = KafkaProducer::new(world, node);
            for record in &records {
                drop(producer.send(&topic, record.key.as_deref(), &record.value_json()));
                madsim::time::sleep(Duration::from_millis(interval_ms)).await;
            }
        }
        App::TransactionalProducer {
            topic,
            transactions,
            records_per_transaction,
            interval_ms,
            commit_delay_ms,
            abort_every,
            keys,
            value_prefix,
        } => {
            let producer = KafkaProducer::new(world, node);
            let shape = TransactionShape { records_per_transaction, interval_ms, commit_delay_ms, abort_every };
            transactional_producer(producer, &topic, transactions, shape, &keys, &value_prefix).await
        }
        App::Consumer { topics, poll_interval_ms } => {
            let consumer = KafkaConsumer::new(world, node);
            consumer.assign_all(&topics);
            loop {
                // What the application does with the records is its business; the trace shows them.
                if let Err(error) = consumer.poll(Duration::from_millis(poll_interval_ms)).await {
                    return stopped_by(&consumer, error);
                }
            }
        }
        App::GroupConsumer { topics, poll_interval_ms, processing_ms, commit } => {
            group_consumer(KafkaConsumer::new(world, node), topics, poll_interval_ms, processing_ms, commit).await
        }
        App::GroupByCount { topics, output, poll_interval_ms } => {
            group_by_count(world, node, topics, output, poll_interval_ms).await
        }
        app @ (App::KafkaStreams { .. } | App::KsqlServer { .. }) => {
            crate::streams_app::run(world, node, app.streams().expect("a Streams runtime app")).await
        }
        App::ConnectWorker => crate::connect_worker::run(world, node).await,
        // The operator types commands when the timeline says (`World::admin_abort_transaction`).
        App::Admin => {}
        App::ConsumeTransformProduce { topics, output, processing, poll_interval_ms, processing_ms } => {
            let consumer = KafkaConsumer::new(world.clone(), node);
            let producer = KafkaProducer::new(world, node);
            let pipeline = Pipeline { output, processing, processing_ms };
            consume_transform_produce(consumer, producer, topics, poll_interval_ms, pipeline).await
        }
    }
}

/// A consumer-group member that processes each record and commits as `commit` says.
async fn group_consumer(
    consumer: KafkaConsumer,
    topics: Vec<String>,
    poll_interval_ms: u64,
    processing_ms: u64,
    commit: CommitMode,
) {
    consumer.subscribe(&topics);
    loop {
        let records = match consumer.poll(Duration::from_millis(poll_interval_ms)).await {
            Ok(records) => records,
            Err(error) => return stopped_by(&consumer, error),
        };
        if records.is_empty() {
            continue;
        }
        if commit == CommitMode::BeforeProcessing {
            // At-most-once: the offsets are committed before the work is done.
            let _ = consumer.commit_sync().await;
        }
        for record in &records {
            if processing_ms > 0 {
                madsim::time::sleep(Duration::from_millis(processing_ms)).await;
            }
            consumer.processed(record);
        }
        if commit == CommitMode::AfterProcessing {
            // At-least-once: a crash before this line means the batch is processed again.
            let _ = consumer.commit_sync().await;
        }
    }
}

/// The seeds' application: count records by key across `topics`, publish each new count to
/// `output`, then commit. The counts live only in memory: after a crash, they restart from zero
/// while the committed offsets do not, which the output topic shows.
async fn group_by_count(
    world: Arc<Mutex<World>>,
    node: NodeId,
    topics: Vec<String>,
    output: String,
    poll_interval_ms: u64,
) {
    let consumer = KafkaConsumer::new(world.clone(), node);
    let producer = KafkaProducer::new(world, node);
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    consumer.subscribe(&topics);
    loop {
        let records = match consumer.poll(Duration::from_millis(poll_interval_ms)).await {
            Ok(records) => records,
            Err(error) => return stopped_by(&consumer, error),
        };
        if records.is_empty() {
            continue;
        }
        let mut deliveries = Vec::new();
        for record in &records {
            let key = record.key.clone().unwrap_or_else(|| "(no key)".to_string());
            let count = counts.entry(key.clone()).or_insert(0);
            *count += 1;
            deliveries.push(producer.send(
                &output,
                Some(&key),
                &format!("{key}={count} (after {}@{})", record.partition, record.offset),
            ));
            consumer.processed(record);
        }
        // Commit only once the counts are safely written (acks=all), as the seeds' code does.
        for delivery in deliveries {
            let _ = delivery.await;
        }
        let _ = consumer.commit_sync().await;
    }
}

/// How a transactional producer app paces its transactions.
struct TransactionShape {
    records_per_transaction: u64,
    interval_ms: u64,
    commit_delay_ms: u64,
    abort_every: u64,
}

/// The transactional producer loop, as the Java docs write it: `initTransactions()` once, then
/// begin, send, commit; an abortable error aborts the transaction and goes on, a fatal one
/// (ProducerFencedException: a newer producer has this `transactional.id`) ends the application,
/// which must close the producer.
async fn transactional_producer(
    producer: KafkaProducer,
    topic: &str,
    transactions: u64,
    shape: TransactionShape,
    keys: &[String],
    value_prefix: &str,
) {
    if let Err(error) = producer.init_transactions().await {
        return producer.note(format!("initTransactions() threw {error}; the application stops"));
    }
    for t in 0..transactions {
        if producer.begin_transaction().is_err() {
            return producer.note("the producer cannot begin a transaction; the application stops".into());
        }
        for n in 0..shape.records_per_transaction {
            let key = (!keys.is_empty()).then(|| keys[n as usize % keys.len()].as_str());
            drop(producer.send(topic, key, &format!("{value_prefix}-{t}-{n}")));
            madsim::time::sleep(Duration::from_millis(shape.interval_ms)).await;
        }
        if shape.commit_delay_ms > 0 {
            madsim::time::sleep(Duration::from_millis(shape.commit_delay_ms)).await;
        }
        let abort = shape.abort_every > 0 && (t + 1) % shape.abort_every == 0;
        let outcome = if abort { producer.abort_transaction().await } else { producer.commit_transaction().await };
        match outcome {
            Ok(()) => {}
            Err(error) if error.contains("fatal") => {
                return producer.note(format!(
                    "{} threw {error}; the application closes the producer",
                    if abort { "abortTransaction()" } else { "commitTransaction()" }
                ));
            }
            Err(error) => {
                producer.note(format!("commitTransaction() threw {error}; the application aborts the transaction"));
                if let Err(error) = producer.abort_transaction().await {
                    return producer.note(format!("abortTransaction() threw {error}; the application stops"));
                }
            }
        }
    }
}

/// What a consume-transform-produce pipeline writes, and how it commits.
struct Pipeline {
    output: String,
    processing: Processing,
    processing_ms: u64,
}

/// The output record of one input: its value names the input, so the checker can count each
/// input's effect in the output (`effect-not-exactly-once`).
fn transform(record: &ConsumedRecord) -> String {
    format!("invoice for {}@{}: {}", record.partition, record.offset, record.value.as_deref().unwrap_or("null"))
}

/// The consume-transform-produce loop, as Kafka's `examples/ExactlyOnceMessageProcessor` writes
/// it for `ExactlyOnce`: `initTransactions()` once; per polled batch, `beginTransaction()`, one
/// output per input, `sendOffsetsToTransaction(positions, groupMetadata())`,
/// `commitTransaction()`. An abortable error (a stale generation: CommitFailedException) aborts
/// and seeks back to the committed offsets so the batch is read again; a fatal one
/// (ProducerFencedException) ends the application. `AtLeastOnce`: send, wait for every answer,
/// then `commitSync()`.
async fn consume_transform_produce(
    consumer: KafkaConsumer,
    producer: KafkaProducer,
    topics: Vec<String>,
    poll_interval_ms: u64,
    pipeline: Pipeline,
) {
    let exactly_once = pipeline.processing == Processing::ExactlyOnce;
    if exactly_once {
        if let Err(error) = producer.init_transactions().await {
            return producer.note(format!("initTransactions() threw {error}; the application stops"));
        }
    }
    consumer.subscribe(&topics);
    loop {
        let records = match consumer.poll(Duration::from_millis(poll_interval_ms)).await {
            Ok(records) => records,
            Err(error) => return stopped_by(&consumer, error),
        };
        if records.is_empty() {
            continue;
        }
        // The generation that handed out these records: the group coordinator accepts their
        // offsets only from it (KIP-447). Taken at poll time, as the records' own offsets are.
        let group = consumer.group_metadata();
        if exactly_once && producer.begin_transaction().is_err() {
            return producer.note("the producer cannot begin a transaction; the application stops".into());
        }
        let mut deliveries = Vec::new();
        for record in &records {
            if pipeline.processing_ms > 0 {
                madsim::time::sleep(Duration::from_millis(pipeline.processing_ms)).await;
            }
            deliveries.push(producer.send(&pipeline.output, record.key.as_deref(), &transform(record)));
            consumer.processed(record);
        }
        if !exactly_once {
            // At-least-once: every output acknowledged, then the offsets. A crash in between
            // writes the batch's outputs again.
            for delivery in deliveries {
                let _ = delivery.await;
            }
            let _ = consumer.commit_sync().await;
            continue;
        }
        // Exactly-once: commitTransaction() flushes the outputs itself. The offsets are the
        // next to read: each partition's last record + 1 (Kafka's ExactlyOnceMessageProcessor).
        drop(deliveries);
        let mut offsets: std::collections::BTreeMap<TopicPartition, i64> = std::collections::BTreeMap::new();
        for record in &records {
            offsets.insert(record.partition.clone(), record.offset + 1);
        }
        let sent = match group {
            Some(group) => producer.send_offsets_to_transaction(offsets.into_iter().collect(), group).await,
            None => Err("the consumer is in no group (IllegalStateException)".to_string()),
        };
        let outcome = match sent {
            Ok(()) => producer.commit_transaction().await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {}
            Err(error) if error.contains("fatal") => {
                return producer.note(format!("the transaction threw {error}; the application closes the producer"));
            }
            Err(error) => {
                producer.note(format!("the transaction threw {error}; the application aborts it"));
                if let Err(error) = producer.abort_transaction().await {
                    return producer.note(format!("abortTransaction() threw {error}; the application stops"));
                }
                consumer.rewind_to_committed();
            }
        }
    }
}
