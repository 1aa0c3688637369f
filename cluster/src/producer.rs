//! The producer: from `send(record)` to an acknowledged offset.
//!
//! A record goes to a partition (by key with the configured partitioner; keyless records stick to
//! one partition until a batch is full, KIP-794), into that partition's open batch. A batch is
//! sent when it reaches `batch.size` or has waited `linger.ms`, to the partition's leader as the
//! producer last heard. The leader answers according to `acks`.
//!
//! Failures are retried until `delivery.timeout.ms`: a NOT_LEADER_OR_FOLLOWER or a closed
//! connection sends the producer back for fresh metadata. A request that simply times out is the
//! dangerous case: the broker may have written the batch before the response was lost. Without
//! idempotence, the retry writes it a second time (a duplicate). With idempotence (the default
//! since Kafka 3.0) every batch carries the producer id and a sequence number, and the leader
//! answers a retry of a batch it already has with the original offset instead of writing it again.
//!
//! **Several batches in flight.** Up to `max.in.flight.requests.per.connection` (default 5)
//! produce requests may wait for their answers on one broker's connection (Java's
//! `NetworkClient` sends only while `InFlightRequests.canSendMore`), so under latency several
//! batches of one partition are on the wire at once. (A ksim Produce request carries one batch;
//! Java's carries one batch per partition the broker leads, so the limit is per batch here.) A
//! batch takes its partition's next sequence numbers the first time it is sent
//! (`RecordAccumulator.drainBatchesForOneNode`) and keeps them for every retry. Idempotence
//! allows at most 5 requests in flight: the leader remembers a producer's last 5 batches per
//! partition (`ProducerStateEntry.NUM_BATCHES_TO_RETAIN`), so a retry of any of them is still
//! recognised.
//!
//! **Order under retries.** With idempotence a batch to retry goes back into its partition's
//! queue in sequence order (`RecordAccumulator.insertInSequenceOrder`), and a batch that has a
//! sequence is sent again only when it is the lowest one not yet complete
//! (`RecordAccumulator.shouldStopDrainBatchesForPartition`): while retries last, the partition
//! has one request in flight. Later batches that reach the leader before their predecessor are
//! refused with OUT_OF_ORDER_SEQUENCE_NUMBER and retried after it (`TransactionManager.canRetry`:
//! a batch that is not the next sequence is simply retried). So records land in send order, once.
//! Without idempotence a batch to retry goes to the head of the queue (`reenqueue`'s `addFirst`)
//! while later batches are already on the wire, so it lands after them; and when several fail
//! together (a closed connection fails its requests oldest first) each goes in front of the one
//! before, so they are sent again newest first. `max.in.flight.requests.per.connection=1` keeps
//! order without idempotence: Java mutes the partition while its batch is in flight
//! (`Sender.guaranteeMessageOrder`).
//!
//! **A request timeout closes the connection** (`NetworkClient.handleTimedOutRequests`): every
//! other request on it fails too, with REQUEST_TIMED_OUT, as every request fails with
//! NETWORK_EXCEPTION when the broker's process dies and resets the connection.
//!
//! **Gaps.** A batch that expires before it was ever sent has no sequence numbers and leaves no
//! mark. One that fails for good after it was sent leaves its fate unknown: the broker may or may
//! not have written it. The producer then sends no new batch to that partition until the batches
//! it has out there complete (`TransactionManager.markSequenceUnresolved`). If the leader accepted
//! the later ones, the failed batch was written and there is no gap (`maybeResolveSequences`).
//! If not, the leader expects a sequence number the producer will never send again, and every
//! later batch would fail with OUT_OF_ORDER_SEQUENCE_NUMBER; so would a batch refused as out of
//! order when it is itself the next sequence. Real clients reset their idempotent state then:
//! Java 2.5+ bumps the producer epoch (KIP-360), older Java clients and librdkafka ask for a new
//! producer id. ksim does the latter. It waits for the requests in flight to finish, forgets the
//! producer id and every partition's sequence numbers, and sends InitProducerId again; the
//! batches still waiting are sent under the new id, numbered from 0. Only the failed batch is
//! reported failed. The price is the one Kafka pays: a waiting batch that an earlier attempt wrote
//! under the old id is not recognised under the new one, and can be written twice.

use crate::client_metadata::{ClientMetadata, MetadataSettings};
use crate::config::{Acks, ProducerConfig};
use crate::connection::Connections;
use crate::consumer::CONSUMER_CORRELATION_BASE;
use crate::effects::{Effects, Input, StateMachine};
use crate::error::ErrorCode;
use crate::invariant::{debug_check, ensure};
use crate::node::NodeId;
use crate::note::Note;
use crate::partitioner::{partition_for_key, StickyPartitioner};
use crate::protocol::*;
use crate::record::{Record, RecordBatch, NO_PRODUCER_ID, NO_SEQUENCE};
use crate::time::SimTime;
use crate::timer::{ClientEngine, Timer};
use crate::topic::{BrokerId, TopicPartition};
use crate::txn::client::{TransactionManager, TxnOutcome, TxnRequestKind};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The most requests an idempotent producer keeps in flight to one broker, whatever
/// `max.in.flight.requests.per.connection` says: the number of batches a broker remembers per
/// producer (`ProducerStateEntry.NUM_BATCHES_TO_RETAIN`). Kafka refuses a larger setting with
/// `enable.idempotence=true` and turns idempotence off when it was left unset
/// (`ProducerConfig.postProcessAndValidateIdempotenceConfigs`); the config validator reports it,
/// and the producer never goes past it.
pub const MAX_IN_FLIGHT_WITH_IDEMPOTENCE: usize = 5;

/// A record waiting for the metadata of its topic.
#[derive(Clone, Debug)]
struct Unrouted {
    send_id: u64,
    topic: String,
    /// A partition the caller chose (a `ProducerRecord` built with one), else the partitioner's.
    partition: Option<i32>,
    record: Record,
    enqueued: SimTime,
}

#[derive(Clone, Debug)]
struct Batch {
    partition: TopicPartition,
    records: Vec<(u64, Record)>,
    bytes: usize,
    created: SimTime,
    base_sequence: i32,
    attempts: u32,
    retry_at: SimTime,
}

impl Batch {
    fn last_sequence(&self) -> i32 {
        self.base_sequence.wrapping_add(self.records.len() as i32 - 1)
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    broker: BrokerId,
    batch: Batch,
}

/// One partition's sequence numbers, as Java's `TxnPartitionEntry` keeps them.
#[derive(Clone, Debug)]
struct Sequences {
    /// The base sequence of the next batch sent for the first time.
    next: i32,
    /// The last sequence the leader acknowledged; -1 before the first.
    last_acked: i32,
    /// The base sequences of the batches sent and not complete (acknowledged or failed for
    /// good), whether on the wire or back in the queue for a retry; the lowest is the only one
    /// that may be retried (Java's `inflightBatchesBySequence`).
    incomplete: BTreeSet<i32>,
    /// A batch sent with sequence numbers failed for good: the sequence after it. No new batch
    /// goes out until the incomplete ones finish and show whether it left a gap.
    unresolved: Option<i32>,
}

impl Default for Sequences {
    fn default() -> Self {
        Sequences { next: 0, last_acked: -1, incomplete: BTreeSet::new(), unresolved: None }
    }
}

impl Sequences {
    /// Whether `sequence` directly follows the last acknowledged one (`isNextSequence`).
    fn is_next(&self, sequence: i32) -> bool {
        sequence.wrapping_sub(self.last_acked) == 1
    }
}

pub struct Producer {
    config: ProducerConfig,
    metadata: ClientMetadata,
    sticky: StickyPartitioner,
    producer_id: i64,
    producer_epoch: i16,
    /// The InitProducerId request in flight, and the broker it went to.
    pid_request: Option<(u64, BrokerId)>,
    /// A partition's sequence numbers have a gap the broker will never see filled: once the
    /// requests in flight finish, start again under a new producer id.
    reset_pending: bool,
    sequences: BTreeMap<TopicPartition, Sequences>,
    unrouted: Vec<Unrouted>,
    open: BTreeMap<TopicPartition, Batch>,
    ready: BTreeMap<TopicPartition, VecDeque<Batch>>,
    in_flight: BTreeMap<u64, InFlight>,
    next_correlation: u64,
    connections: Connections,
    /// With a `transactional.id`: the transaction manager (see [`crate::txn::client`]).
    txn: Option<TransactionManager>,
}

impl Producer {
    /// The correlation id its next request will take.
    pub fn next_correlation_id(&self) -> u64 {
        self.next_correlation
    }

    /// Number requests from `next` on (a producer replacing a closed one on the same node).
    pub fn counting_from(mut self, next: u64) -> Self {
        self.next_correlation = self.next_correlation.max(next);
        self
    }

    pub fn new(config: ProducerConfig, bootstrap: Vec<BrokerId>) -> Self {
        let settings = MetadataSettings {
            max_age_ms: config.metadata_max_age_ms,
            request_timeout_ms: config.request_timeout_ms,
            reconnect_backoff: config.reconnect_backoff,
            retry_backoff_ms: config.retry_backoff_ms,
            retry_backoff_max_ms: config.retry_backoff_max_ms,
        };
        let connections = Connections::new(ClientEngine::Producer, config.connection_setup_timeout);
        let txn =
            config.transactional_id.clone().map(|id| TransactionManager::new(id, config.transaction_timeout_ms, false));
        Producer {
            txn,
            config,
            metadata: ClientMetadata::new(bootstrap, settings, Timer::ProducerWakeup),
            connections,
            sticky: StickyPartitioner::default(),
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            pid_request: None,
            reset_pending: false,
            sequences: BTreeMap::new(),
            unrouted: Vec::new(),
            open: BTreeMap::new(),
            ready: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_correlation: 1,
        }
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// The cluster's finalized `transaction.version`, as the client learns it from ApiVersions
    /// before its first transactional request (`TransactionManager.
    /// maybeUpdateTransactionV2Enabled`); at 2 the transaction manager speaks KIP-890 part 2.
    pub fn with_finalized_transaction_version(mut self, transaction_version: u8) -> Self {
        if let Some(t) = self.txn.as_mut() {
            t.transaction_v2 = transaction_version >= 2;
        }
        self
    }

    /// Records sent and not yet acknowledged or failed.
    pub fn pending_records(&self) -> usize {
        self.unrouted.len()
            + self.open.values().map(|b| b.records.len()).sum::<usize>()
            + self.ready.values().flatten().map(|b| b.records.len()).sum::<usize>()
            + self.in_flight.values().map(|f| f.batch.records.len()).sum::<usize>()
    }

    /// The transaction manager, for a producer with a `transactional.id`.
    pub fn transaction_manager(&self) -> Option<&TransactionManager> {
        self.txn.as_ref()
    }

    fn txn_call(
        &mut self,
        now: SimTime,
        fx: &mut Effects,
        call: impl FnOnce(&mut TransactionManager) -> Result<(), String>,
    ) -> Result<(), String> {
        let Some(t) = self.txn.as_mut() else {
            return Err("the producer has no transactional.id (IllegalStateException)".into());
        };
        call(t)?;
        self.drive(now, fx);
        self.track_connections(now, fx);
        Ok(())
    }

    /// `initTransactions()`: its completion is noted `TxnInitialized` (or `TxnFailed`).
    pub fn init_transactions(&mut self, now: SimTime, fx: &mut Effects) -> Result<(), String> {
        self.txn_call(now, fx, |t| t.init_transactions())
    }

    /// `beginTransaction()`: local, done at once.
    pub fn begin_transaction(&mut self) -> Result<(), String> {
        let Some(t) = self.txn.as_mut() else {
            return Err("the producer has no transactional.id (IllegalStateException)".into());
        };
        t.begin_transaction()
    }

    /// `sendOffsetsToTransaction(offsets, groupMetadata)`: noted `TxnOffsetsSent` (or `TxnFailed`).
    pub fn send_offsets_to_transaction(
        &mut self,
        now: SimTime,
        offsets: crate::txn::client::PendingOffsets,
        fx: &mut Effects,
    ) -> Result<(), String> {
        self.txn_call(now, fx, |t| t.send_offsets_to_transaction(offsets))
    }

    /// `commitTransaction()`: flushes, then EndTxn(commit); noted `TxnEnded` (or `TxnFailed`).
    pub fn commit_transaction(&mut self, now: SimTime, fx: &mut Effects) -> Result<(), String> {
        self.txn_call(now, fx, |t| t.begin_commit())
    }

    /// `abortTransaction()`: records not sent yet fail, EndTxn(abort) once the rest completed;
    /// noted `TxnEnded`.
    pub fn abort_transaction(&mut self, now: SimTime, fx: &mut Effects) -> Result<(), String> {
        let mut ended_locally = None;
        self.txn_call(now, fx, |t| {
            if !t.begin_abort()? {
                ended_locally = Some(t.complete_transaction(false));
            }
            Ok(())
        })?;
        if let Some(outcome) = ended_locally {
            self.on_txn_outcome(outcome, fx);
        }
        Ok(())
    }

    /// Note what a transaction manager step came to, and take a new producer id and epoch.
    fn on_txn_outcome(&mut self, outcome: TxnOutcome, fx: &mut Effects) {
        let Some(t) = self.txn.as_ref() else { return };
        let transactional_id = t.transactional_id.clone();
        match outcome {
            TxnOutcome::Nothing => {}
            TxnOutcome::Initialized => {
                // A new epoch: sequence numbers start again at 0 (`resetSequenceNumbers`).
                assert!(self.in_flight.is_empty(), "the epoch changes only between transactions");
                self.producer_id = t.producer_id;
                self.producer_epoch = t.producer_epoch;
                self.sequences.clear();
                self.reset_pending = false;
                for batch in self.ready.values_mut().flatten() {
                    batch.base_sequence = NO_SEQUENCE;
                }
                fx.note(Note::TxnInitialized {
                    transactional_id,
                    producer_id: self.producer_id,
                    producer_epoch: self.producer_epoch,
                });
            }
            TxnOutcome::Ended { committed, records, producer_id, producer_epoch } => {
                fx.note(Note::TxnEnded {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    committed,
                    records,
                    epoch_bump: t.state == crate::txn::client::ClientTxnState::Initializing,
                });
                // Transaction version 2: EndTxn handed over the next epoch (or producer id);
                // sequence numbers start again at 0 (`resetSequenceNumbers`).
                if (t.producer_id, t.producer_epoch) != (self.producer_id, self.producer_epoch) {
                    assert!(self.in_flight.is_empty(), "EndTxn goes only once every batch completed");
                    self.producer_id = t.producer_id;
                    self.producer_epoch = t.producer_epoch;
                    self.sequences.clear();
                    for batch in self.ready.values_mut().flatten() {
                        batch.base_sequence = NO_SEQUENCE;
                    }
                }
            }
            TxnOutcome::OffsetsSent { group, offsets } => {
                fx.note(Note::TxnOffsetsSent { transactional_id, group, offsets })
            }
            TxnOutcome::Failed { error, fatal } => fx.note(Note::TxnFailed { transactional_id, error, fatal }),
        }
    }

    /// Send the transaction manager's next request, if one may go
    /// (`Sender.maybeSendAndPollTransactionalRequest`).
    fn drive_txn(&mut self, now: SimTime, fx: &mut Effects) {
        let flushed = self.pending_records() == 0;
        let Some(t) = self.txn.as_mut() else { return };
        let Some(kind) = t.next_request(now, flushed) else {
            if t.in_flight.is_none() && t.retry_at > now && !t.queue.is_empty() {
                fx.set_timer(Timer::TxnRetry, t.retry_at);
            }
            return;
        };
        let candidates = match (&kind, t.coordinator, t.group_coordinator) {
            (TxnRequestKind::FindCoordinator | TxnRequestKind::FindGroupCoordinator(_), _, _) => {
                self.metadata.known_brokers()
            }
            (TxnRequestKind::TxnOffsetCommit(_), _, Some(coordinator)) => vec![coordinator],
            (_, None, _) => self.metadata.known_brokers(),
            (_, Some(coordinator), _) => vec![coordinator],
        };
        let broker = match self.metadata.pick(&candidates, now) {
            Ok(broker) => broker,
            Err(Some(at)) => return self.metadata.wake_at(at, fx),
            Err(None) => return,
        };
        let t = self.txn.as_mut().expect("checked");
        let transactional_id = t.transactional_id.clone();
        let body = match &kind {
            TxnRequestKind::FindCoordinator => Request::FindCoordinator(FindCoordinatorRequest {
                group_id: transactional_id,
                key_type: CoordinatorType::Transaction,
            }),
            TxnRequestKind::InitProducerId { bump } => Request::InitProducerIdTransactional(InitProducerIdRequest {
                transactional_id,
                transaction_timeout_ms: t.transaction_timeout_ms,
                producer_id: if *bump { t.producer_id } else { NO_PRODUCER_ID },
                producer_epoch: if *bump { t.producer_epoch } else { -1 },
            }),
            TxnRequestKind::AddPartitions(partitions) => Request::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                transactional_id,
                producer_id: t.producer_id,
                producer_epoch: t.producer_epoch,
                partitions: partitions.iter().cloned().collect(),
                verify_only: false,
            }),
            TxnRequestKind::FindGroupCoordinator(group_id) => Request::FindCoordinator(FindCoordinatorRequest {
                group_id: group_id.clone(),
                key_type: CoordinatorType::Group,
            }),
            TxnRequestKind::AddOffsets(group_id) => Request::AddOffsetsToTxn(AddOffsetsToTxnRequest {
                transactional_id,
                producer_id: t.producer_id,
                producer_epoch: t.producer_epoch,
                group_id: group_id.clone(),
            }),
            TxnRequestKind::TxnOffsetCommit(pending) => Request::TxnOffsetCommit(TxnOffsetCommitRequest {
                transactional_id,
                group_id: pending.group.group_id.clone(),
                producer_id: t.producer_id,
                producer_epoch: t.producer_epoch,
                generation: pending.group.generation,
                member_id: pending.group.member_id.clone(),
                group_instance_id: pending.group.group_instance_id.clone(),
                offsets: pending.offsets.clone(),
                transaction_v2: t.transaction_v2,
            }),
            TxnRequestKind::EndTxn { commit } => Request::EndTxn(EndTxnRequest {
                transactional_id,
                producer_id: t.producer_id,
                producer_epoch: t.producer_epoch,
                committed: *commit,
                transaction_v2: t.transaction_v2,
            }),
        };
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        t.sent(correlation_id, kind, broker);
        fx.set_timer(Timer::RequestTimeout(correlation_id), now.plus_ms(self.config.request_timeout_ms));
        fx.send(NodeId::Broker(broker), Message::Request { correlation_id, body });
    }

    /// Aborting (or failed): records not yet sent fail with TransactionAbortedException
    /// (`RecordAccumulator.abortUndrainedBatches`); batches already sent complete as they will.
    fn abort_undrained(&mut self, fx: &mut Effects) {
        if !self.txn.as_ref().is_some_and(TransactionManager::is_aborting) {
            return;
        }
        let mut failed: Vec<(u64, Option<TopicPartition>)> =
            self.unrouted.drain(..).map(|u| (u.send_id, None)).collect();
        for (tp, batch) in std::mem::take(&mut self.open) {
            failed.extend(batch.records.iter().map(|(id, _)| (*id, Some(tp.clone()))));
        }
        for queue in self.ready.values_mut() {
            queue.retain(|b| {
                if b.base_sequence != NO_SEQUENCE {
                    return true;
                }
                failed.extend(b.records.iter().map(|(id, _)| (*id, Some(b.partition.clone()))));
                false
            });
        }
        self.ready.retain(|_, q| !q.is_empty());
        let error = self.txn.as_ref().and_then(|t| t.last_error).unwrap_or(ErrorCode::InvalidTxnState);
        for (send_id, partition) in failed {
            fx.note(Note::ProduceFailed {
                send_id,
                partition,
                error,
                reason: "the transaction is aborting (TransactionAbortedException)".into(),
            });
        }
    }

    /// The application calls `send`. `send_id` names the record in the notes that report its fate.
    pub fn send(
        &mut self,
        now: SimTime,
        send_id: u64,
        topic: &str,
        record: Record,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        self.send_to(now, send_id, topic, None, record, rng, fx);
    }

    /// `send(new ProducerRecord(topic, partition, key, value))`: the partition is the caller's
    /// when given (Kafka Streams writes a changelog record to its task's partition,
    /// `RecordCollectorImpl.send` with an explicit partition), else the partitioner's.
    #[allow(clippy::too_many_arguments)]
    pub fn send_to(
        &mut self,
        now: SimTime,
        send_id: u64,
        topic: &str,
        partition: Option<i32>,
        record: Record,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        if let Some(Err(reason)) = self.txn.as_ref().map(TransactionManager::check_send) {
            let error = self.txn.as_ref().and_then(|t| t.last_error).unwrap_or(ErrorCode::InvalidTxnState);
            fx.note(Note::ProduceFailed { send_id, partition: None, error, reason });
            return;
        }
        self.metadata.add_interest(topic);
        self.unrouted.push(Unrouted { send_id, topic: topic.to_string(), partition, record, enqueued: now });
        self.route(now, rng, fx);
        self.drive(now, fx);
        self.track_connections(now, fx);
    }

    /// Requests just sent to a broker with no connection start its setup timer.
    fn track_connections(&mut self, now: SimTime, fx: &mut Effects) {
        self.connections.track_sends(now, |id| id < CONSUMER_CORRELATION_BASE, fx);
    }

    /// Put every record whose topic we know into its partition's batch.
    fn route(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        let pending = std::mem::take(&mut self.unrouted);
        for u in pending {
            let Some(partitions) = self.metadata.partitions(&u.topic) else {
                self.unrouted.push(u);
                continue;
            };
            let count = partitions.len() as i32;
            let key = u.record.key.as_deref().map(str::as_bytes);
            let chosen = u.partition.filter(|p| (0..count).contains(p));
            let partition = match chosen.or_else(|| partition_for_key(self.config.partitioner, key, count)) {
                Some(p) => p,
                None => {
                    let available: Vec<i32> =
                        partitions.iter().filter(|p| p.leader.is_some()).map(|p| p.partition).collect();
                    self.sticky.partition(&u.topic, count, &available, rng)
                }
            };
            let tp = TopicPartition::new(u.topic.clone(), partition);
            if let Some(t) = self.txn.as_mut() {
                t.maybe_add_partition(&tp);
            }
            let bytes = u.record.size_bytes();
            if key.is_none() && chosen.is_none() {
                self.sticky.on_append(&u.topic, bytes, self.config.batch_size);
            }
            // As in Kafka's accumulator, a batch that lingered out but could not be sent yet (a
            // request in flight, a leader being elected) still takes records until it is full,
            // so a backlog goes out in full batches, not one record per request.
            if !self.open.contains_key(&tp) {
                let waiting = self.ready.get_mut(&tp).and_then(|q| q.back_mut()).filter(|b| {
                    b.attempts == 0 && b.base_sequence == NO_SEQUENCE && b.bytes + bytes <= self.config.batch_size
                });
                if let Some(batch) = waiting {
                    batch.records.push((u.send_id, u.record));
                    batch.bytes += bytes;
                    continue;
                }
            }
            let batch = self.open.entry(tp.clone()).or_insert_with(|| Batch {
                partition: tp.clone(),
                records: Vec::new(),
                bytes: 0,
                created: u.enqueued,
                base_sequence: NO_SEQUENCE,
                attempts: 0,
                retry_at: SimTime::ZERO,
            });
            batch.records.push((u.send_id, u.record));
            batch.bytes += bytes;
            if batch.bytes >= self.config.batch_size || self.config.linger_ms == 0 {
                self.seal(&tp);
            } else if batch.records.len() == 1 {
                fx.set_timer(Timer::Linger(tp.clone()), now.plus_ms(self.config.linger_ms));
            }
        }
    }

    /// Close a partition's open batch: it is ready to send.
    fn seal(&mut self, tp: &TopicPartition) {
        if let Some(batch) = self.open.remove(tp) {
            self.ready.entry(tp.clone()).or_default().push_back(batch);
        }
    }

    /// How many produce requests may wait for answers on one broker's connection.
    fn max_in_flight(&self) -> usize {
        let configured = self.config.max_in_flight_requests_per_connection;
        if self.config.enable_idempotence {
            configured.min(MAX_IN_FLIGHT_WITH_IDEMPOTENCE)
        } else {
            configured
        }
    }

    /// Give a batch the next sequence numbers of its partition, on its first send, and count it
    /// incomplete until it is acknowledged or fails for good. A retry keeps its numbers, so the
    /// broker can recognise it.
    fn assign_sequence(&mut self, batch: &mut Batch) {
        if self.config.enable_idempotence && batch.base_sequence == NO_SEQUENCE {
            let s = self.sequences.entry(batch.partition.clone()).or_default();
            batch.base_sequence = s.next;
            s.next = s.next.wrapping_add(batch.records.len() as i32);
            s.incomplete.insert(batch.base_sequence);
        }
    }

    /// The leader acknowledged a batch (`TransactionManager.handleCompletedBatch`).
    fn on_batch_acked(&mut self, batch: &Batch) {
        if batch.base_sequence == NO_SEQUENCE {
            return;
        }
        let s = self.sequences.get_mut(&batch.partition).expect("a sent batch's partition has sequences");
        s.last_acked = s.last_acked.max(batch.last_sequence());
        s.incomplete.remove(&batch.base_sequence);
    }

    /// A batch failed for good. If it was sent with sequence numbers, the broker may or may not
    /// have it: after a refusal it certainly does not, and the sequence must start again (Java
    /// asks for an epoch bump, `requestEpochBumpForPartition`); after a timeout nobody knows yet,
    /// and the partition waits for its other batches to tell (`markSequenceUnresolved`).
    fn on_batch_failed(&mut self, batch: &Batch, refused: bool) {
        if batch.base_sequence == NO_SEQUENCE {
            return;
        }
        let s = self.sequences.get_mut(&batch.partition).expect("a sent batch's partition has sequences");
        s.incomplete.remove(&batch.base_sequence);
        if refused {
            // A transactional producer bumps its epoch after the abort instead
            // (`TransactionManager.epochBumpRequired`).
            self.reset_pending = self.txn.is_none();
        } else {
            let after = batch.last_sequence().wrapping_add(1);
            s.unresolved = Some(s.unresolved.map_or(after, |u| u.max(after)));
        }
    }

    /// Settle every unresolved partition whose batches have all completed
    /// (`TransactionManager.maybeResolveSequences`): if the leader acknowledged up to the last
    /// sequence sent, the failed batch was written after all; if not, there is a gap.
    fn resolve_sequences(&mut self) {
        for s in self.sequences.values_mut() {
            if s.unresolved.is_some() && s.incomplete.is_empty() {
                if !s.is_next(s.next) {
                    self.reset_pending = self.txn.is_none();
                }
                s.unresolved = None;
            }
        }
    }

    /// Start the idempotent state again: no producer id, and every partition's sequence numbers
    /// from 0 (KIP-360's epoch bump, done the librdkafka way with a new id). The batches still
    /// waiting lose the numbers they had and get new ones when they are next sent.
    fn reset_idempotent_state(&mut self) {
        assert!(self.in_flight.is_empty(), "a reset renumbers only batches that are not in flight");
        self.reset_pending = false;
        self.producer_id = NO_PRODUCER_ID;
        self.producer_epoch = -1;
        self.sequences.clear();
        for batch in self.ready.values_mut().flatten() {
            batch.base_sequence = NO_SEQUENCE;
        }
    }

    /// No broker has more produce requests in flight than the limit (Kafka's `NetworkClient`
    /// sends only while `InFlightRequests.canSendMore(node)`). With idempotence, each partition's
    /// bookkeeping matches its batches: the incomplete sequences are exactly those of the batches
    /// on the wire or waiting for a retry, and a partition's queue holds its numbered batches
    /// first, in sequence order (what `insertInSequenceOrder` keeps).
    pub fn check_invariants(&self) -> Result<(), String> {
        let max = self.max_in_flight();
        for f in self.in_flight.values() {
            let n = self.in_flight_to(f.broker);
            ensure(n <= max, || format!("{n} produce requests in flight to broker-{}, max.in.flight {max}", f.broker))?;
        }
        if !self.config.enable_idempotence {
            return Ok(());
        }
        let mut numbered: BTreeMap<&TopicPartition, Vec<i32>> = BTreeMap::new();
        for (tp, queue) in &self.ready {
            let sequences: Vec<i32> = queue.iter().map(|b| b.base_sequence).collect();
            let first_new = sequences.iter().position(|s| *s == NO_SEQUENCE).unwrap_or(sequences.len());
            let (old, new) = sequences.split_at(first_new);
            ensure(old.windows(2).all(|w| w[0] < w[1]) && new.iter().all(|s| *s == NO_SEQUENCE), || {
                format!("{tp}: queued batches out of sequence order: {sequences:?}")
            })?;
            numbered.entry(tp).or_default().extend(old);
        }
        for f in self.in_flight.values().filter(|f| f.batch.base_sequence != NO_SEQUENCE) {
            numbered.entry(&f.batch.partition).or_default().push(f.batch.base_sequence);
        }
        for (tp, s) in &self.sequences {
            let mut held = numbered.remove(tp).unwrap_or_default();
            held.sort_unstable();
            let incomplete: Vec<i32> = s.incomplete.iter().copied().collect();
            ensure(held == incomplete, || {
                format!("{tp}: incomplete sequences {incomplete:?}, but the batches sent and not done are {held:?}")
            })?;
        }
        numbered.retain(|_, held| !held.is_empty());
        ensure(numbered.is_empty(), || format!("numbered batches without sequence bookkeeping: {numbered:?}"))
    }

    fn in_flight_to(&self, broker: BrokerId) -> usize {
        self.in_flight.values().filter(|f| f.broker == broker).count()
    }

    fn in_flight_for(&self, tp: &TopicPartition) -> bool {
        self.in_flight.values().any(|f| &f.batch.partition == tp)
    }

    /// Whether the batch at the head of `tp`'s queue must wait (Java's
    /// `shouldStopDrainBatchesForPartition`, plus the muting of `guaranteeMessageOrder`).
    fn must_wait(&self, tp: &TopicPartition, batch: &Batch) -> bool {
        // max.in.flight=1: Kafka mutes the partition while a batch is in flight, so that a batch
        // sent to a new leader cannot overtake one still out to the old.
        if self.max_in_flight() == 1 && self.in_flight_for(tp) {
            return true;
        }
        // A transactional record waits until its partition is in the transaction.
        if self.txn.as_ref().is_some_and(|t| !t.is_send_to_partition_allowed(tp)) {
            return true;
        }
        if !self.config.enable_idempotence {
            return false;
        }
        let Some(s) = self.sequences.get(tp) else { return false };
        if batch.base_sequence == NO_SEQUENCE {
            // A new batch waits while an earlier one's fate is unknown.
            s.unresolved.is_some()
        } else {
            // A retry goes only when it is the lowest incomplete sequence: retries go one at a time.
            s.incomplete.first() != Some(&batch.base_sequence)
        }
    }

    /// Send what can be sent; ask for what is missing.
    fn drive(&mut self, now: SimTime, fx: &mut Effects) {
        self.expire(now, fx);
        self.metadata.maybe_refresh(now, &mut self.next_correlation, fx);
        if self.txn.is_some() {
            self.abort_undrained(fx);
            self.drive_txn(now, fx);
            if self.producer_id == NO_PRODUCER_ID {
                return;
            }
        } else if self.config.enable_idempotence {
            self.resolve_sequences();
            if self.reset_pending {
                if !self.in_flight.is_empty() {
                    // Their answers (or request timeouts) bring the producer back here.
                    return;
                }
                self.reset_idempotent_state();
            }
            if self.producer_id == NO_PRODUCER_ID {
                self.init_producer_id(now, fx);
                return;
            }
        }
        let partitions: Vec<TopicPartition> = self.ready.keys().cloned().collect();
        let mut next_wakeup: Option<SimTime> = None;
        for tp in partitions {
            while let Some(batch) = self.ready.get(&tp).and_then(|q| q.front()) {
                if batch.retry_at > now {
                    next_wakeup = Some(next_wakeup.map_or(batch.retry_at, |w| w.min(batch.retry_at)));
                    break;
                }
                let Some((leader, _epoch)) = self.metadata.leader(&tp) else {
                    self.metadata.refresh_needed = true;
                    break;
                };
                if let Some(until) = self.metadata.blackout_until(leader, now) {
                    next_wakeup = Some(next_wakeup.map_or(until, |w| w.min(until)));
                    break;
                }
                // Java sends nothing to a broker until its connection is established
                // (`NetworkClient.isReady`). ksim has no handshake: after a connection failed, the
                // first request stands in for the connection attempt. It goes alone, and the rest
                // wait until the broker answers, so a dead broker fails one batch, not five.
                let limit = if self.metadata.reconnecting(leader) { 1 } else { self.max_in_flight() };
                if self.in_flight_to(leader) >= limit || self.must_wait(&tp, batch) {
                    break;
                }
                let mut batch = self.ready.get_mut(&tp).and_then(VecDeque::pop_front).expect("peeked");
                batch.attempts += 1;
                self.assign_sequence(&mut batch);
                self.send_batch(now, leader, batch, fx);
            }
        }
        self.ready.retain(|_, q| !q.is_empty());
        if let Some(at) = next_wakeup {
            fx.set_timer(Timer::ProducerWakeup, at);
        }
        self.metadata.maybe_refresh(now, &mut self.next_correlation, fx);
    }

    fn init_producer_id(&mut self, now: SimTime, fx: &mut Effects) {
        if self.pid_request.is_some() {
            return;
        }
        // Any broker can answer: Kafka's Sender sends InitProducerId to the least loaded node it
        // knows (`Sender.maybeSendAndPollTransactionalRequest`, `client.leastLoadedNode`). ksim
        // waits for the metadata of its topics and asks one of their leaders; when the metadata
        // names no leader at all (every replica down), it asks any broker it knows. Before, it
        // asked nobody then, and its records waited for ever, never even expiring (fuzz:
        // commit-waits-for-outputs seed 10).
        let mut brokers = self.metadata_brokers();
        if brokers.is_empty() && !self.metadata_topics().is_empty() {
            brokers = self.metadata.known_brokers();
        }
        let broker = match self.metadata.pick(&brokers, now) {
            Ok(broker) => broker,
            Err(Some(at)) => return self.metadata.wake_at(at, fx),
            Err(None) => return,
        };
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        self.pid_request = Some((correlation_id, broker));
        fx.set_timer(Timer::RequestTimeout(correlation_id), now.plus_ms(self.config.request_timeout_ms));
        fx.send(NodeId::Broker(broker), Message::Request { correlation_id, body: Request::InitProducerId });
    }

    fn metadata_brokers(&self) -> Vec<BrokerId> {
        let mut brokers: Vec<BrokerId> = Vec::new();
        for partitions in self.metadata_topics() {
            for p in partitions {
                if let Some(l) = p.leader {
                    if !brokers.contains(&l) {
                        brokers.push(l);
                    }
                }
            }
        }
        brokers
    }

    fn metadata_topics(&self) -> Vec<&[PartitionMetadata]> {
        let mut out = Vec::new();
        for u in &self.unrouted {
            if let Some(p) = self.metadata.partitions(&u.topic) {
                out.push(p);
            }
        }
        for tp in self.open.keys().chain(self.ready.keys()) {
            if let Some(p) = self.metadata.partitions(&tp.topic) {
                out.push(p);
            }
        }
        out
    }

    fn send_batch(&mut self, now: SimTime, leader: BrokerId, batch: Batch, fx: &mut Effects) {
        let records: Vec<Record> = batch.records.iter().map(|(_, r)| r.clone()).collect();
        let (pid, epoch) =
            if self.config.enable_idempotence { (self.producer_id, self.producer_epoch) } else { (NO_PRODUCER_ID, -1) };
        let mut wire = RecordBatch::new_unassigned(pid, epoch, batch.base_sequence, batch.created.as_ms(), records);
        wire.is_transactional = self.txn.is_some();
        let body = Request::Produce(ProduceRequest {
            acks: self.config.acks,
            timeout_ms: self.config.request_timeout_ms,
            partition: batch.partition.clone(),
            batch: wire,
            transactional_id: self.txn.as_ref().map(|t| t.transactional_id.clone()),
            transaction_v2: self.txn.as_ref().is_some_and(|t| t.transaction_v2),
        });
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        fx.send(NodeId::Broker(leader), Message::Request { correlation_id, body });
        if self.config.acks == Acks::None {
            // Fire and forget: the producer counts the record as sent, with no offset.
            self.on_batch_acked(&batch);
            for (send_id, record) in batch.records {
                fx.note(Note::ProduceAcked {
                    send_id,
                    partition: batch.partition.clone(),
                    offset: -1,
                    key: record.key,
                    value: record.value,
                });
            }
            return;
        }
        fx.set_timer(Timer::RequestTimeout(correlation_id), now.plus_ms(self.config.request_timeout_ms));
        self.in_flight.insert(correlation_id, InFlight { broker: leader, batch });
    }

    /// Records that waited longer than `delivery.timeout.ms` fail.
    fn expire(&mut self, now: SimTime, fx: &mut Effects) {
        let limit = self.config.delivery_timeout_ms;
        let expired = |created: SimTime| now.ms_since(created) >= limit;
        let mut failed: Vec<(u64, Option<TopicPartition>)> = Vec::new();
        let mut failed_batches: Vec<Batch> = Vec::new();
        self.unrouted.retain(|u| {
            if expired(u.enqueued) {
                failed.push((u.send_id, None));
                false
            } else {
                true
            }
        });
        // Oldest first, stopping at the first batch still in time, as Kafka's accumulator does:
        // a step costs the batches that expire, not the whole backlog.
        for queue in self.ready.values_mut() {
            while queue.front().is_some_and(|b| expired(b.created)) {
                let gone = queue.pop_front().expect("checked");
                failed.extend(gone.records.iter().map(|(id, _)| (*id, Some(gone.partition.clone()))));
                failed_batches.push(gone);
            }
        }
        // A batch that expires waiting for its retry may have been written by an earlier
        // attempt: its fate is unknown until the partition's other batches tell
        // (`Sender.sendProducerData` calls `markSequenceUnresolved` for it).
        for batch in &failed_batches {
            self.on_batch_failed(batch, false);
        }
        if !failed.is_empty() {
            if let Some(outcome) = self.txn.as_mut().map(|t| t.on_record_failed(ErrorCode::RequestTimedOut)) {
                self.on_txn_outcome(outcome, fx);
            }
        }
        for (send_id, partition) in failed {
            fx.note(Note::ProduceFailed {
                send_id,
                partition,
                error: ErrorCode::RequestTimedOut,
                reason: format!("expired after delivery.timeout.ms={limit}"),
            });
        }
    }

    fn on_produce_response(&mut self, now: SimTime, flight: InFlight, r: ProduceResponse, fx: &mut Effects) {
        if r.error.is_none() {
            self.on_batch_acked(&flight.batch);
            if let Some(t) = self.txn.as_mut() {
                for i in 0..flight.batch.records.len() {
                    t.on_record_acked(&r.partition, r.base_offset + i as i64);
                }
            }
            for (i, (send_id, record)) in flight.batch.records.into_iter().enumerate() {
                fx.note(Note::ProduceAcked {
                    send_id,
                    partition: r.partition.clone(),
                    offset: r.base_offset + i as i64,
                    key: record.key,
                    value: record.value,
                });
            }
            return;
        }
        self.retry_or_fail(now, flight.batch, r.error, fx);
    }

    /// An attempt failed with `error`: retry the batch if Kafka would, else report it failed
    /// (`Sender.completeBatch` and `Sender.canRetry`).
    fn retry_or_fail(&mut self, now: SimTime, mut batch: Batch, error: ErrorCode, fx: &mut Effects) {
        let within_time = now.ms_since(batch.created) < self.config.delivery_timeout_ms;
        let retries_left = batch.attempts <= self.config.retries;
        // KIP-360: for an idempotent producer OUT_OF_ORDER_SEQUENCE_NUMBER is retriable.
        let out_of_order = self.config.enable_idempotence && error == ErrorCode::OutOfOrderSequenceNumber;
        if (error.is_retriable() || out_of_order) && within_time && retries_left {
            if out_of_order {
                self.on_out_of_order(&batch);
            }
            if matches!(
                error,
                ErrorCode::NotLeaderOrFollower
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::NetworkException
                    | ErrorCode::RequestTimedOut
            ) {
                self.metadata.refresh_needed = true;
            }
            let sequence = (batch.base_sequence != NO_SEQUENCE).then_some(batch.base_sequence);
            fx.note(Note::ProduceRetry {
                partition: batch.partition.clone(),
                error,
                records: batch.records.len(),
                sequence,
            });
            // KIP-580: the backoff doubles with each attempt up to `retry.backoff.max.ms`.
            let exponent = batch.attempts.saturating_sub(1).min(16);
            let backoff_ms = (self.config.retry_backoff_ms << exponent).min(self.config.retry_backoff_max_ms);
            batch.retry_at = now.plus_ms(backoff_ms);
            fx.set_timer(Timer::ProducerWakeup, batch.retry_at);
            self.reenqueue(batch);
        } else {
            let reason = if !(error.is_retriable() || out_of_order) {
                "not retriable".to_string()
            } else if !within_time {
                format!("delivery.timeout.ms={} passed", self.config.delivery_timeout_ms)
            } else {
                format!("retries={} exhausted", self.config.retries)
            };
            // A refusal that cannot be retried means the batch was not written: Java resets the
            // sequence at once (`Sender.completeBatch` calls `failBatch` with
            // `adjustSequenceNumbers`). A batch out of retries, or whose delivery.timeout.ms
            // passed while it was in flight (Java fails that one when the time is up,
            // `Sender.getExpiredInflightBatches`, without adjusting), may have been written: its
            // fate is left to the partition's later batches.
            let refused = !(error.is_retriable() || out_of_order);
            self.on_batch_failed(&batch, refused);
            if let Some(outcome) = self.txn.as_mut().map(|t| t.on_record_failed(error)) {
                self.on_txn_outcome(outcome, fx);
            }
            for (send_id, _) in batch.records {
                fx.note(Note::ProduceFailed {
                    send_id,
                    partition: Some(batch.partition.clone()),
                    error,
                    reason: reason.clone(),
                });
            }
        }
    }

    /// The leader refused a batch as out of order (`TransactionManager.canRetry`). If the batch
    /// is not the next sequence, an earlier batch failed or is being retried: this one is retried
    /// after it, nothing more. If it is the next (or the one right after a batch whose fate is
    /// unknown), the leader is missing sequence numbers nobody will send again: start again
    /// under a new producer id (Java bumps the epoch).
    fn on_out_of_order(&mut self, batch: &Batch) {
        let s = self.sequences.get(&batch.partition).expect("a sent batch's partition has sequences");
        let gap = match s.unresolved {
            None => s.is_next(batch.base_sequence),
            Some(after_unknown) => after_unknown == batch.base_sequence,
        };
        if gap {
            self.reset_pending = true;
        }
    }

    /// Put a batch to retry back in its partition's queue (`RecordAccumulator.reenqueue`). With
    /// idempotence it goes in sequence order, behind the numbered batches before it
    /// (`insertInSequenceOrder`); without, at the head, in front of batches sent after it.
    fn reenqueue(&mut self, batch: Batch) {
        let queue = self.ready.entry(batch.partition.clone()).or_default();
        if self.config.enable_idempotence {
            assert_ne!(batch.base_sequence, NO_SEQUENCE, "a batch sent with idempotence has sequence numbers");
            let at = queue
                .iter()
                .take_while(|b| b.base_sequence != NO_SEQUENCE && b.base_sequence < batch.base_sequence)
                .count();
            queue.insert(at, batch);
        } else {
            queue.push_front(batch);
        }
    }

    /// The broker a request of ours went to, if it is still waiting.
    fn request_broker(&self, correlation_id: u64) -> Option<BrokerId> {
        if let Some(f) = self.in_flight.get(&correlation_id) {
            return Some(f.broker);
        }
        if let Some((_, broker)) = self.pid_request.filter(|(id, _)| *id == correlation_id) {
            return Some(broker);
        }
        if let Some((_, _, broker)) =
            self.txn.as_ref().and_then(|t| t.in_flight.as_ref()).filter(|f| f.0 == correlation_id)
        {
            return Some(*broker);
        }
        self.metadata.in_flight().filter(|(id, _)| *id == correlation_id).map(|(_, broker)| broker)
    }

    /// The connection to `broker` is gone: its process died and reset it (NETWORK_EXCEPTION), or
    /// a request on it timed out and the producer closed it (REQUEST_TIMED_OUT,
    /// `NetworkClient.handleTimedOutRequests`). Every request on it fails, oldest first, the
    /// order `InFlightRequests.clearAll` gives them back in, and the broker is left alone for
    /// `reconnect.backoff.ms`.
    fn disconnect(&mut self, now: SimTime, broker: BrokerId, error: ErrorCode, fx: &mut Effects) {
        let mut abandoned: Vec<u64> =
            self.in_flight.iter().filter(|(_, f)| f.broker == broker).map(|(id, _)| *id).collect();
        for &id in &abandoned {
            let flight = self.in_flight.remove(&id).expect("listed");
            self.retry_or_fail(now, flight.batch, error, fx);
        }
        if let Some((id, _)) = self.pid_request.filter(|(_, b)| *b == broker) {
            self.pid_request = None;
            abandoned.push(id);
        }
        let backoff_ms = self.config.retry_backoff_ms;
        if let Some(t) = self.txn.as_mut().filter(|t| t.in_flight.as_ref().is_some_and(|f| f.2 == broker)) {
            abandoned.push(t.in_flight.as_ref().expect("filtered").0);
            t.on_request_failed(now, backoff_ms);
        }
        if let Some((id, _)) = self.metadata.in_flight().filter(|(_, b)| *b == broker) {
            abandoned.push(id);
        }
        self.metadata.on_connection_closed(now, broker);
        // A closed connection is set up again, with its setup timeout, before anything else goes.
        self.connections.on_disconnected(broker, fx);
        // "The disconnect may be the result of stale metadata" (`handleServerDisconnect`).
        self.metadata.refresh_needed = true;
        for id in abandoned {
            fx.cancel_timer(Timer::RequestTimeout(id));
            fx.abandon(id);
        }
    }
}

impl StateMachine for Producer {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        let input = self.connections.observe(input, fx);
        if let Input::ConnectionEstablished { .. } = input {
            // Only the setup timer cares (stopped above); the engine has nothing new to do, and
            // driving it here would move its sends to instants Kafka's client would not use.
            return;
        }
        match input {
            Input::Start | Input::Shutdown | Input::ConnectionEstablished { .. } => {}
            Input::Message { from, message: Message::Response { correlation_id, body } } => {
                if let NodeId::Broker(broker) = from {
                    self.metadata.on_reply_from(broker);
                }
                fx.cancel_timer(Timer::RequestTimeout(correlation_id));
                let txn_answer =
                    self.txn.as_ref().and_then(|t| t.in_flight.as_ref()).is_some_and(|f| f.0 == correlation_id);
                if txn_answer {
                    let backoff_ms = self.config.retry_backoff_ms;
                    let t = self.txn.as_mut().expect("checked");
                    let outcome = match body {
                        Response::FindCoordinator(r) => {
                            t.on_find_coordinator(now, r.error, r.coordinator, backoff_ms);
                            TxnOutcome::Nothing
                        }
                        Response::InitProducerId(r) => {
                            t.on_init_producer_id(now, r.error, r.producer_id, r.producer_epoch, backoff_ms)
                        }
                        Response::AddPartitionsToTxn(r) => t.on_add_partitions(now, r.error, backoff_ms),
                        Response::AddOffsetsToTxn(r) => t.on_add_offsets(now, r.error, backoff_ms),
                        Response::TxnOffsetCommit(r) => t.on_txn_offset_commit(now, r.error, backoff_ms),
                        Response::EndTxn(r) => {
                            t.on_end_txn(now, r.error, (r.producer_id, r.producer_epoch), backoff_ms)
                        }
                        other => panic!("producer: {} does not answer a transactional request", other.api()),
                    };
                    self.on_txn_outcome(outcome, fx);
                    self.drive(now, fx);
                    self.track_connections(now, fx);
                    debug_check("producer", || self.check_invariants());
                    return;
                }
                match body {
                    Response::Metadata(r) if self.metadata.is_in_flight(correlation_id) => {
                        self.metadata.on_response(now, r);
                        self.route(now, rng, fx);
                    }
                    Response::InitProducerId(r) if self.pid_request.is_some_and(|(id, _)| id == correlation_id) => {
                        self.pid_request = None;
                        if r.error.is_none() {
                            self.producer_id = r.producer_id;
                            self.producer_epoch = r.producer_epoch;
                        }
                    }
                    Response::Produce(r) => {
                        if let Some(flight) = self.in_flight.remove(&correlation_id) {
                            self.on_produce_response(now, flight, r, fx);
                        }
                    }
                    _ => {}
                }
            }
            Input::Message { .. } => {}
            Input::Timer(Timer::RequestTimeout(id)) => {
                if let Some(broker) = self.request_broker(id) {
                    self.disconnect(now, broker, ErrorCode::RequestTimedOut, fx);
                }
            }
            Input::Timer(Timer::Linger(tp)) => self.seal(&tp),
            Input::Timer(_) => {}
            Input::ConnectionClosed { peer } => {
                if let NodeId::Broker(broker) = peer {
                    self.disconnect(now, broker, ErrorCode::NetworkException, fx);
                }
            }
        }
        self.drive(now, fx);
        self.track_connections(now, fx);
        debug_check("producer", || self.check_invariants());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    /// A producer talking to a one-broker cluster (broker 1 leads `payments-0`); the test plays
    /// the broker by answering the producer's requests by hand.
    struct Harness {
        producer: Producer,
        rng: rand_chacha::ChaCha8Rng,
    }

    impl Harness {
        fn new(config: ProducerConfig) -> Harness {
            Harness { producer: Producer::new(config, vec![1]), rng: rand_chacha::ChaCha8Rng::seed_from_u64(1) }
        }

        fn send(&mut self, at_ms: u64, send_id: u64) -> Effects {
            let mut fx = Effects::default();
            let record = Record::unkeyed(format!("payment-{send_id}"));
            self.producer.send(SimTime::from_ms(at_ms), send_id, "payments", record, &mut self.rng, &mut fx);
            fx
        }

        fn input(&mut self, at_ms: u64, input: Input) -> Effects {
            let mut fx = Effects::default();
            self.producer.handle(SimTime::from_ms(at_ms), input, &mut self.rng, &mut fx);
            fx
        }

        fn respond(&mut self, at_ms: u64, correlation_id: u64, body: Response) -> Effects {
            let message = Message::Response { correlation_id, body };
            self.input(at_ms, Input::Message { from: NodeId::Broker(1), message })
        }
    }

    /// The one request these effects send to broker 1.
    fn request(fx: &Effects) -> (u64, Request) {
        let requests: Vec<(u64, Request)> = fx
            .sends
            .iter()
            .filter_map(|(to, m)| match m {
                Message::Request { correlation_id, body } if *to == NodeId::Broker(1) => {
                    Some((*correlation_id, body.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(requests.len(), 1, "expected one request, got {requests:?}");
        requests.into_iter().next().expect("one")
    }

    fn produce(fx: &Effects) -> (u64, RecordBatch) {
        match request(fx) {
            (id, Request::Produce(p)) => (id, p.batch),
            other => panic!("expected a Produce request, got {other:?}"),
        }
    }

    fn metadata() -> Response {
        let partition =
            PartitionMetadata { partition: 0, leader: Some(1), leader_epoch: 0, replicas: vec![1], isr: vec![1] };
        let topic = TopicMetadata { name: "payments".into(), error: ErrorCode::None, partitions: vec![partition] };
        Response::Metadata(MetadataResponse { brokers: vec![1], topics: vec![topic] })
    }

    fn producer_id(producer_id: i64) -> Response {
        Response::InitProducerId(InitProducerIdResponse { error: ErrorCode::None, producer_id, producer_epoch: 0 })
    }

    fn produce_response(error: ErrorCode, base_offset: i64) -> Response {
        let partition = TopicPartition::new("payments", 0);
        Response::Produce(ProduceResponse { partition, error, base_offset, log_start_offset: 0 })
    }

    fn failed(fx: &Effects) -> Vec<u64> {
        fx.notes
            .iter()
            .filter_map(|n| if let Note::ProduceFailed { send_id, .. } = n { Some(*send_id) } else { None })
            .collect()
    }

    /// Every Produce request these effects send, in order.
    fn produces(fx: &Effects) -> Vec<(u64, RecordBatch)> {
        fx.sends
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Request { correlation_id, body: Request::Produce(p) } => {
                    Some((*correlation_id, p.batch.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// A new idempotent producer whose partition has no leader (every replica down) still gets
    /// its producer id from a broker it knows, as Kafka's Sender asks the least loaded node; then
    /// it waits for a leader like any producer. Before, it asked nobody and never sent.
    #[test]
    fn idempotent_producer_gets_its_id_while_its_partition_has_no_leader() {
        let requests = |fx: &Effects| -> Vec<(u64, Request)> {
            fx.sends
                .iter()
                .filter_map(|(_, m)| match m {
                    Message::Request { correlation_id, body } => Some((*correlation_id, body.clone())),
                    _ => None,
                })
                .collect()
        };
        let mut h = Harness::new(ProducerConfig { linger_ms: 0, ..ProducerConfig::default() });
        let fx = h.send(0, 1);
        let (id, _) = request(&fx);
        let leaderless =
            PartitionMetadata { partition: 0, leader: None, leader_epoch: 1, replicas: vec![2], isr: vec![] };
        let topic = TopicMetadata { name: "payments".into(), error: ErrorCode::None, partitions: vec![leaderless] };
        let fx = h.respond(1, id, Response::Metadata(MetadataResponse { brokers: vec![1], topics: vec![topic] }));
        let (id, r) = request(&fx);
        assert_eq!(r, Request::InitProducerId, "asks broker 1, which leads nothing");
        // With its id, it asks where the leader is, as any producer with a leaderless partition,
        // once `retry.backoff.ms` (100 ms) has passed since the last metadata answer.
        let fx = h.respond(2, id, producer_id(1001));
        assert!(
            fx.timer_ops.iter().any(|op| matches!(op, crate::effects::TimerOp::Set(Timer::ProducerWakeup, at) if *at == SimTime::from_ms(101))),
            "wakes up when the metadata backoff ends"
        );
        let fx = h.input(101, Input::Timer(Timer::ProducerWakeup));
        let asked = requests(&fx).into_iter().find(|(_, r)| matches!(r, Request::Metadata(_)));
        let (id, _) = asked.expect("asks for the leader again");
        // The partition has a leader again: the record goes out under the producer id.
        let fx = h.respond(103, id, metadata());
        let (_, batch) = produce(&fx);
        assert_eq!((batch.producer_id, batch.records[0].value_text()), (1001, "payment-1"));
    }

    fn asks_for_producer_id(fx: &Effects) -> bool {
        fx.sends.iter().any(|(_, m)| matches!(m, Message::Request { body: Request::InitProducerId, .. }))
    }

    fn values(batch: &RecordBatch) -> Vec<&str> {
        batch.records.iter().map(|r| r.value_text()).collect()
    }

    /// `(base sequence, error)` of every retry these effects announce.
    fn retries(fx: &Effects) -> Vec<(Option<i32>, ErrorCode)> {
        fx.notes
            .iter()
            .filter_map(|n| match n {
                Note::ProduceRetry { sequence, error, .. } => Some((*sequence, *error)),
                _ => None,
            })
            .collect()
    }

    /// `(send id, offset)` of every acknowledgement in these effects.
    fn acked(fx: &Effects) -> Vec<(u64, i64)> {
        fx.notes
            .iter()
            .filter_map(|n| match n {
                Note::ProduceAcked { send_id, offset, .. } => Some((*send_id, *offset)),
                _ => None,
            })
            .collect()
    }

    /// Record 1 sent at 0 ms: metadata, a producer id if idempotent, then its Produce request.
    fn start(h: &mut Harness) -> (u64, RecordBatch) {
        let fx = h.send(0, 1);
        let (id, _) = request(&fx);
        let fx = h.respond(1, id, metadata());
        if !h.producer.config().enable_idempotence {
            return produce(&fx);
        }
        let (id, r) = request(&fx);
        assert_eq!(r, Request::InitProducerId);
        produce(&h.respond(2, id, producer_id(1001)))
    }

    /// Records 1..=n, each sent 10 ms after the last and each going out at once in its own
    /// request: their correlation ids.
    fn start_in_flight(h: &mut Harness, n: u64) -> Vec<u64> {
        let mut ids = vec![start(h).0];
        for send_id in 2..=n {
            let sent = produces(&h.send(10 * send_id, send_id));
            assert_eq!(sent.len(), 1, "record {send_id} goes out at once");
            ids.push(sent[0].0);
        }
        ids
    }

    /// linger.ms=0 (a batch per record) and everything else Kafka's default.
    fn config() -> ProducerConfig {
        ProducerConfig { linger_ms: 0, ..ProducerConfig::default() }
    }

    #[test]
    fn idempotent_producer_keeps_five_batches_in_flight_numbered_one_after_another() {
        // `max.in.flight.requests.per.connection` 5 (the default), and 10: the setting Kafka
        // refuses with idempotence, which the producer still holds to five.
        for max_in_flight in [5, 10] {
            let config = ProducerConfig { max_in_flight_requests_per_connection: max_in_flight, ..config() };
            let mut h = Harness::new(config);
            let (first, batch) = start(&mut h);
            let mut sequences = vec![batch.base_sequence];
            for send_id in 2..=5 {
                let sent = produces(&h.send(10 * send_id, send_id));
                assert_eq!(sent.len(), 1, "record {send_id} goes out while the others are in flight");
                assert_eq!(sent[0].1.producer_id, 1001);
                sequences.push(sent[0].1.base_sequence);
            }
            assert_eq!(sequences, [0, 1, 2, 3, 4], "each batch takes the next sequence when first sent");

            // Five requests wait on broker 1's connection: records 6 and 7 wait, in one batch.
            assert!(produces(&h.send(60, 6)).is_empty(), "max.in.flight {max_in_flight}: a sixth waits");
            assert!(produces(&h.send(70, 7)).is_empty());
            let sent = produces(&h.respond(80, first, produce_response(ErrorCode::None, 0)));
            assert_eq!(sent.len(), 1);
            assert_eq!((values(&sent[0].1), sent[0].1.base_sequence), (vec!["payment-6", "payment-7"], 5));
            assert_eq!(h.producer.check_invariants(), Ok(()));
        }
    }

    #[test]
    fn a_failed_first_batch_is_retried_first_and_alone_and_later_batches_follow_in_order() {
        let mut h = Harness::new(config());
        let ids = start_in_flight(&mut h, 5);

        // Sequence 0 is refused (NOT_ENOUGH_REPLICAS), so the leader refuses 1..=4 as out of
        // order: it expects 0. Answers from two connections (after a leader change, say) can
        // come back in any order; the queue still ends up in sequence order.
        let mut fx = Effects::default();
        for (i, error) in [
            (2, ErrorCode::OutOfOrderSequenceNumber),
            (4, ErrorCode::OutOfOrderSequenceNumber),
            (0, ErrorCode::NotEnoughReplicas),
            (3, ErrorCode::OutOfOrderSequenceNumber),
            (1, ErrorCode::OutOfOrderSequenceNumber),
        ] {
            fx = h.respond(100, ids[i], produce_response(error, -1));
            assert_eq!(retries(&fx), vec![(Some(i as i32), error)]);
            assert!(!asks_for_producer_id(&fx), "a later batch refused as out of order is no gap");
            assert_eq!(h.producer.check_invariants(), Ok(()));
        }
        assert!(produces(&fx).is_empty(), "retries wait for retry.backoff.ms");

        // After the backoff only sequence 0 goes; each acknowledgement lets the next one go.
        let mut sent = produces(&h.input(1_000, Input::Timer(Timer::ProducerWakeup)));
        for sequence in 0..5 {
            assert_eq!(sent.len(), 1, "one retry at a time: {sent:?}");
            let (id, batch) = &sent[0];
            assert_eq!((batch.producer_id, batch.base_sequence), (1001, sequence));
            assert_eq!(values(batch), [format!("payment-{}", sequence + 1)]);
            let fx = h.respond(1_010 + sequence as u64, *id, produce_response(ErrorCode::None, sequence as i64));
            assert_eq!(acked(&fx), vec![(sequence as u64 + 1, sequence as i64)]);
            sent = produces(&fx);
        }
        assert!(sent.is_empty());

        // Retries done: a new batch takes the next sequence, and batches pipeline again.
        assert_eq!(produces(&h.send(2_000, 6))[0].1.base_sequence, 5);
        assert_eq!(produces(&h.send(2_010, 7))[0].1.base_sequence, 6);
        assert_eq!(h.producer.pending_records(), 2);
    }

    #[test]
    fn the_next_sequence_refused_as_out_of_order_is_a_gap_and_restarts_under_a_new_producer_id() {
        let mut h = Harness::new(config());
        let (first, _) = start(&mut h);
        h.respond(3, first, produce_response(ErrorCode::None, 0));
        let (second, batch) = produce(&h.send(10, 2));
        assert_eq!(batch.base_sequence, 1);

        // Sequence 0 was acknowledged; 1 is the next, and the leader refuses it: it lost what it
        // knew of this producer's sequence (KIP-360). Nothing will fill the gap.
        let fx = h.respond(20, second, produce_response(ErrorCode::OutOfOrderSequenceNumber, -1));
        assert_eq!(retries(&fx), vec![(Some(1), ErrorCode::OutOfOrderSequenceNumber)]);
        let (id, r) = request(&fx);
        assert_eq!(r, Request::InitProducerId);
        let (_, batch) = produce(&h.respond(200, id, producer_id(1002)));
        assert_eq!((batch.producer_id, batch.base_sequence), (1002, 0));
        assert_eq!(values(&batch), ["payment-2"]);
    }

    /// Record 1 (sequence 0) is refused with NOT_ENOUGH_REPLICAS and waits for its retry; at
    /// 9 s record 2 arrives and both go out: the retry of 0, and 1. Returns their requests.
    fn retry_beside_a_new_batch(h: &mut Harness) -> ((u64, RecordBatch), (u64, RecordBatch)) {
        let (id, batch) = start(h);
        assert_eq!((batch.producer_id, batch.base_sequence), (1001, 0));
        h.respond(3, id, produce_response(ErrorCode::NotEnoughReplicas, -1));
        let mut sent = produces(&h.send(9_000, 2)).into_iter();
        let (retry, new) = (sent.next().expect("the retry"), sent.next().expect("the new batch"));
        assert_eq!((retry.1.base_sequence, values(&retry.1)), (0, vec!["payment-1"]));
        assert_eq!((new.1.base_sequence, values(&new.1)), (1, vec!["payment-2"]));
        (retry, new)
    }

    #[test]
    fn an_expired_batch_whose_successor_is_refused_as_out_of_order_restarts_under_a_new_producer_id() {
        let config = ProducerConfig { delivery_timeout_ms: 10_000, ..config() };
        let mut h = Harness::new(config);
        let ((retry, _), (new, _)) = retry_beside_a_new_batch(&mut h);
        h.respond(9_001, retry, produce_response(ErrorCode::NotEnoughReplicas, -1));
        // The leader expects 0: sequence 1 is not the next one, so it is only retried.
        let fx = h.respond(9_002, new, produce_response(ErrorCode::OutOfOrderSequenceNumber, -1));
        assert!(!asks_for_producer_id(&fx));

        // delivery.timeout.ms passes for record 1 only, while it waits for its retry. Sequence 0
        // may or may not be on the broker: record 2 (sequence 1), now the lowest incomplete,
        // goes to find out, and the leader refuses it as out of order.
        let fx = h.input(10_000, Input::Timer(Timer::ProducerWakeup));
        assert_eq!(failed(&fx), vec![1], "only the expired record fails");
        let (id, batch) = produce(&fx);
        assert_eq!(batch.base_sequence, 1);
        let fx = h.respond(10_001, id, produce_response(ErrorCode::OutOfOrderSequenceNumber, -1));
        let (id, r) = request(&fx);
        assert_eq!(r, Request::InitProducerId, "a sequence gap resets the idempotent state");

        // Record 2 goes out under the new id, numbered from 0, which a broker that has never
        // seen producer 1002 accepts; it is acknowledged, not failed.
        let (id, batch) = produce(&h.respond(10_300, id, producer_id(1002)));
        assert_eq!((batch.producer_id, batch.base_sequence, values(&batch)), (1002, 0, vec!["payment-2"]));
        let fx = h.respond(10_305, id, produce_response(ErrorCode::None, 7));
        assert_eq!(acked(&fx), vec![(2, 7)]);
        assert!(failed(&fx).is_empty());
        assert_eq!(h.producer.pending_records(), 0);
    }

    #[test]
    fn an_expired_batch_whose_successor_was_written_leaves_no_gap() {
        let config = ProducerConfig { delivery_timeout_ms: 10_000, ..config() };
        let mut h = Harness::new(config);
        let ((retry, _), (new, _)) = retry_beside_a_new_batch(&mut h);
        h.respond(9_001, retry, produce_response(ErrorCode::NotEnoughReplicas, -1));
        // A broker with no state for this producer accepts any sequence
        // (`ProducerAppendInfo.checkSequence`): sequence 1 is written.
        h.respond(9_002, new, produce_response(ErrorCode::None, 7));

        // Record 1 expires waiting for its retry; the leader acknowledged the sequence after it,
        // so there is no gap (`maybeResolveSequences`): same producer id, next sequence 2.
        let fx = h.input(10_000, Input::Timer(Timer::ProducerWakeup));
        assert_eq!(failed(&fx), vec![1]);
        assert!(!asks_for_producer_id(&fx));
        let (_, batch) = produce(&h.send(10_010, 3));
        assert_eq!((batch.producer_id, batch.base_sequence), (1001, 2));
    }

    #[test]
    fn a_batch_whose_delivery_timeout_passed_in_flight_may_have_been_written_so_no_new_producer_id_yet() {
        let config = ProducerConfig { delivery_timeout_ms: 10_000, ..config() };
        let mut h = Harness::new(config);
        let ids = start_in_flight(&mut h, 2);

        // Sequence 0's answer comes after its delivery.timeout.ms: it fails, though the leader
        // may have written it (Java expires it in flight, `Sender.getExpiredInflightBatches`,
        // without resetting the sequence). Sequence 1 is acknowledged: no gap, same producer id.
        let fx = h.respond(10_100, ids[0], produce_response(ErrorCode::NotEnoughReplicas, -1));
        assert_eq!(failed(&fx), vec![1]);
        assert!(!asks_for_producer_id(&fx));
        let fx = h.respond(10_110, ids[1], produce_response(ErrorCode::None, 7));
        assert!(!asks_for_producer_id(&fx));
        let (_, batch) = produce(&h.send(10_120, 3));
        assert_eq!((batch.producer_id, batch.base_sequence), (1001, 2));
    }

    #[test]
    fn a_new_batch_waits_while_a_sent_batch_that_expired_has_an_unknown_fate() {
        let config = ProducerConfig { delivery_timeout_ms: 10_000, ..config() };
        let mut h = Harness::new(config);
        let ((retry, _), (new, _)) = retry_beside_a_new_batch(&mut h);
        h.respond(9_001, retry, produce_response(ErrorCode::NotEnoughReplicas, -1));

        // Record 1 expires while sequence 1 is still out: was sequence 0 written? Until the
        // answer for 1 says, record 3 waits (`markSequenceUnresolved`).
        let fx = h.input(10_000, Input::Timer(Timer::ProducerWakeup));
        assert_eq!(failed(&fx), vec![1]);
        assert!(produces(&h.send(10_010, 3)).is_empty(), "no new batch while a gap is possible");
        let (_, batch) = produce(&h.respond(10_020, new, produce_response(ErrorCode::None, 7)));
        assert_eq!((batch.producer_id, batch.base_sequence, values(&batch)), (1001, 2, vec!["payment-3"]));
    }

    #[test]
    fn idempotent_producer_keeps_its_id_when_a_batch_expires_before_it_was_sent() {
        // One request in flight, so record 2 waits unsent behind record 1.
        let config =
            ProducerConfig { delivery_timeout_ms: 1_000, max_in_flight_requests_per_connection: 1, ..config() };
        let mut h = Harness::new(config);
        let (first, batch) = start(&mut h);
        assert_eq!(batch.base_sequence, 0);

        // Record 2 expires there unsent: it has no sequence number yet, so it leaves no gap
        // (Kafka numbers a batch when it first sends it, for this reason).
        assert!(h.send(10, 2).sends.is_empty());
        let fx = h.input(1_010, Input::Timer(Timer::ProducerWakeup));
        assert_eq!(failed(&fx), vec![2]);
        assert!(fx.sends.is_empty(), "no new producer id: {:?}", fx.sends);
        h.respond(1_011, first, produce_response(ErrorCode::None, 0));

        // Record 3 follows record 1 directly: producer 1001, sequence 1.
        let (_, batch) = produce(&h.send(1_020, 3));
        assert_eq!((batch.producer_id, batch.base_sequence), (1001, 1));
    }

    #[test]
    fn a_backlog_behind_the_requests_in_flight_goes_out_in_one_batch() {
        let mut h = Harness::new(config());
        let ids = start_in_flight(&mut h, 5);

        // Records 6..=9 arrive while five requests are in flight: they wait in one batch, and
        // go out together when record 1 is answered.
        for send_id in 6..=9 {
            assert!(h.send(10 * send_id, send_id).sends.is_empty());
        }
        let (_, batch) = produce(&h.respond(100, ids[0], produce_response(ErrorCode::None, 0)));
        assert_eq!(values(&batch), ["payment-6", "payment-7", "payment-8", "payment-9"]);
        assert_eq!(batch.base_sequence, 5);
    }

    #[test]
    fn a_request_timeout_closes_the_connection_and_fails_every_request_on_it() {
        let mut h = Harness::new(config());
        let ids = start_in_flight(&mut h, 3);

        // Record 1's request times out: Kafka closes the connection, so records 2 and 3 fail
        // with it, oldest first, and their answers, should they come, find no connection.
        let fx = h.input(30_002, Input::Timer(Timer::RequestTimeout(ids[0])));
        let timed_out = ErrorCode::RequestTimedOut;
        assert_eq!(retries(&fx), vec![(Some(0), timed_out), (Some(1), timed_out), (Some(2), timed_out)]);
        assert_eq!(fx.abandoned, ids);
        for id in &ids[1..] {
            assert!(fx.timer_ops.contains(&crate::effects::TimerOp::Cancel(Timer::RequestTimeout(*id))));
        }
        assert!(fx.sends.is_empty(), "broker 1 is left alone for reconnect.backoff.ms");

        // Then the retries go one at a time, from sequence 0.
        let sent = produces(&h.input(30_200, Input::Timer(Timer::ProducerWakeup)));
        assert_eq!(sent.iter().map(|(_, b)| b.base_sequence).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn without_idempotence_a_retried_batch_lands_after_later_ones() {
        let config = ProducerConfig { enable_idempotence: false, ..config() };
        let mut h = Harness::new(config);
        let ids = start_in_flight(&mut h, 3);
        assert!(h.producer.check_invariants().is_ok());

        // Record 1 is refused; records 2 and 3, already on the wire, are written.
        let mut offsets = Vec::new();
        h.respond(40, ids[0], produce_response(ErrorCode::NotEnoughReplicas, -1));
        offsets.extend(acked(&h.respond(41, ids[1], produce_response(ErrorCode::None, 0))));
        offsets.extend(acked(&h.respond(42, ids[2], produce_response(ErrorCode::None, 1))));
        let (id, batch) = produce(&h.input(500, Input::Timer(Timer::ProducerWakeup)));
        assert_eq!(values(&batch), ["payment-1"]);
        offsets.extend(acked(&h.respond(501, id, produce_response(ErrorCode::None, 2))));
        assert_eq!(offsets, [(2, 0), (3, 1), (1, 2)], "record 1 is written after records 2 and 3");
    }

    #[test]
    fn batches_failed_together_go_again_newest_first_without_idempotence_in_order_with_it() {
        for idempotence in [false, true] {
            let config = ProducerConfig { enable_idempotence: idempotence, ..config() };
            let mut h = Harness::new(config);
            start_in_flight(&mut h, 3);
            // Broker 1's process dies: its connection resets, and the three requests fail.
            let fx = h.input(40, Input::ConnectionClosed { peer: NodeId::Broker(1) });
            assert_eq!(retries(&fx).len(), 3);

            // The first request after the reset stands in for the new connection: it goes alone,
            // and the others follow once broker 1 (restarted) answers it.
            let mut order: Vec<Vec<String>> = Vec::new();
            let mut sent = produces(&h.input(500, Input::Timer(Timer::ProducerWakeup)));
            for at_ms in 501..510 {
                if sent.is_empty() {
                    break;
                }
                order.push(sent.iter().flat_map(|(_, b)| values(b)).map(str::to_string).collect());
                let (id, _) = sent[0];
                let mut fx = h.respond(at_ms, id, produce_response(ErrorCode::None, 0));
                for (id, _) in &sent[1..] {
                    fx = h.respond(at_ms, *id, produce_response(ErrorCode::None, 0));
                }
                sent = produces(&fx);
            }
            if idempotence {
                // In sequence order, one at a time.
                assert_eq!(order, [["payment-1"], ["payment-2"], ["payment-3"]]);
            } else {
                // Each failed batch went to the head of the queue, in front of the one before.
                assert_eq!(order, [vec!["payment-3"], vec!["payment-2", "payment-1"]]);
            }
        }
    }
}
