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
//! ksim's idempotent producer keeps one batch in flight per partition (Kafka allows up to five
//! and re-sequences on errors; one is enough to keep order, and keeps the trace readable). Without
//! idempotence, up to `max.in.flight.requests.per.connection` requests may be in flight to a
//! broker, so a retried batch can land after a later one, as in Kafka.

use crate::client_metadata::ClientMetadata;
use crate::config::{Acks, ProducerConfig};
use crate::effects::{Effects, Input, StateMachine};
use crate::error::ErrorCode;
use crate::node::NodeId;
use crate::note::Note;
use crate::partitioner::{partition_for_key, StickyPartitioner};
use crate::protocol::*;
use crate::record::{Record, RecordBatch, NO_PRODUCER_ID, NO_SEQUENCE};
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, VecDeque};

/// A record waiting for the metadata of its topic.
#[derive(Clone, Debug)]
struct Unrouted {
    send_id: u64,
    topic: String,
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

#[derive(Clone, Debug)]
struct InFlight {
    broker: BrokerId,
    batch: Batch,
}

pub struct Producer {
    config: ProducerConfig,
    metadata: ClientMetadata,
    sticky: StickyPartitioner,
    producer_id: i64,
    producer_epoch: i16,
    /// The InitProducerId request in flight, and the broker it went to.
    pid_request: Option<(u64, BrokerId)>,
    next_sequence: BTreeMap<TopicPartition, i32>,
    unrouted: Vec<Unrouted>,
    open: BTreeMap<TopicPartition, Batch>,
    ready: BTreeMap<TopicPartition, VecDeque<Batch>>,
    in_flight: BTreeMap<u64, InFlight>,
    next_correlation: u64,
}

impl Producer {
    pub fn new(config: ProducerConfig, bootstrap: Vec<BrokerId>) -> Self {
        let reconnect_backoff = config.reconnect_backoff;
        Producer {
            config,
            metadata: ClientMetadata::new(bootstrap, reconnect_backoff, Timer::ProducerWakeup),
            sticky: StickyPartitioner::default(),
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            pid_request: None,
            next_sequence: BTreeMap::new(),
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

    /// Records sent and not yet acknowledged or failed.
    pub fn pending_records(&self) -> usize {
        self.unrouted.len()
            + self.open.values().map(|b| b.records.len()).sum::<usize>()
            + self.ready.values().flatten().map(|b| b.records.len()).sum::<usize>()
            + self.in_flight.values().map(|f| f.batch.records.len()).sum::<usize>()
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
        self.metadata.add_interest(topic);
        self.unrouted.push(Unrouted { send_id, topic: topic.to_string(), record, enqueued: now });
        self.route(now, rng, fx);
        self.drive(now, fx);
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
            let partition = match partition_for_key(self.config.partitioner, key, count) {
                Some(p) => p,
                None => {
                    let available: Vec<i32> =
                        partitions.iter().filter(|p| p.leader.is_some()).map(|p| p.partition).collect();
                    self.sticky.partition(&u.topic, count, &available, rng)
                }
            };
            let tp = TopicPartition::new(u.topic.clone(), partition);
            let bytes = u.record.size_bytes();
            if key.is_none() {
                self.sticky.on_append(&u.topic, bytes, self.config.batch_size);
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
        if let Some(mut batch) = self.open.remove(tp) {
            if self.config.enable_idempotence {
                let next = self.next_sequence.entry(tp.clone()).or_insert(0);
                batch.base_sequence = *next;
                *next = next.wrapping_add(batch.records.len() as i32);
            }
            self.ready.entry(tp.clone()).or_default().push_back(batch);
        }
    }

    fn in_flight_to(&self, broker: BrokerId) -> usize {
        self.in_flight.values().filter(|f| f.broker == broker).count()
    }

    fn in_flight_for(&self, tp: &TopicPartition) -> bool {
        self.in_flight.values().any(|f| &f.batch.partition == tp)
    }

    /// Send what can be sent; ask for what is missing.
    fn drive(&mut self, now: SimTime, fx: &mut Effects) {
        self.expire(now, fx);
        self.metadata.maybe_refresh(
            now,
            self.config.metadata_max_age_ms,
            self.config.request_timeout_ms,
            &mut self.next_correlation,
            fx,
        );
        if self.config.enable_idempotence && self.producer_id == NO_PRODUCER_ID {
            self.init_producer_id(now, fx);
            return;
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
                if self.in_flight_to(leader) >= self.config.max_in_flight_requests_per_connection
                    || (self.config.enable_idempotence && self.in_flight_for(&tp))
                {
                    break;
                }
                let mut batch = self.ready.get_mut(&tp).and_then(VecDeque::pop_front).expect("peeked");
                batch.attempts += 1;
                self.send_batch(now, leader, batch, fx);
            }
        }
        self.ready.retain(|_, q| !q.is_empty());
        if let Some(at) = next_wakeup {
            fx.set_timer(Timer::ProducerWakeup, at);
        }
        self.metadata.maybe_refresh(
            now,
            self.config.metadata_max_age_ms,
            self.config.request_timeout_ms,
            &mut self.next_correlation,
            fx,
        );
    }

    fn init_producer_id(&mut self, now: SimTime, fx: &mut Effects) {
        if self.pid_request.is_some() {
            return;
        }
        let broker = match self.metadata.pick(&self.metadata_brokers(), now) {
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
        let body = Request::Produce(ProduceRequest {
            acks: self.config.acks,
            timeout_ms: self.config.request_timeout_ms,
            partition: batch.partition.clone(),
            batch: RecordBatch::new_unassigned(pid, epoch, batch.base_sequence, batch.created.as_ms(), records),
        });
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        fx.send(NodeId::Broker(leader), Message::Request { correlation_id, body });
        if self.config.acks == Acks::None {
            // Fire and forget: the producer counts the record as sent, with no offset.
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
        self.unrouted.retain(|u| {
            if expired(u.enqueued) {
                failed.push((u.send_id, None));
                false
            } else {
                true
            }
        });
        for queue in self.ready.values_mut() {
            queue.retain(|b| {
                if expired(b.created) {
                    failed.extend(b.records.iter().map(|(id, _)| (*id, Some(b.partition.clone()))));
                    false
                } else {
                    true
                }
            });
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

    fn retry_or_fail(&mut self, now: SimTime, mut batch: Batch, error: ErrorCode, fx: &mut Effects) {
        let within_time = now.ms_since(batch.created) < self.config.delivery_timeout_ms;
        if error.is_retriable() && within_time && batch.attempts <= self.config.retries {
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
            fx.note(Note::ProduceRetry { partition: batch.partition.clone(), error, records: batch.records.len() });
            // KIP-580: the backoff doubles with each attempt up to `retry.backoff.max.ms`.
            let exponent = batch.attempts.saturating_sub(1).min(16);
            let backoff_ms = (self.config.retry_backoff_ms << exponent).min(self.config.retry_backoff_max_ms);
            batch.retry_at = now.plus_ms(backoff_ms);
            fx.set_timer(Timer::ProducerWakeup, batch.retry_at);
            self.ready.entry(batch.partition.clone()).or_default().push_front(batch);
        } else {
            let reason = if !error.is_retriable() {
                "not retriable".to_string()
            } else if !within_time {
                format!("delivery.timeout.ms={} passed", self.config.delivery_timeout_ms)
            } else {
                format!("retries={} exhausted", self.config.retries)
            };
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

    fn on_request_failed(&mut self, now: SimTime, correlation_id: u64, error: ErrorCode, fx: &mut Effects) {
        if self.metadata.is_in_flight(correlation_id) {
            self.metadata.on_failure();
        } else if self.pid_request.is_some_and(|(id, _)| id == correlation_id) {
            self.pid_request = None;
            self.metadata.refresh_needed = true;
        } else if let Some(flight) = self.in_flight.remove(&correlation_id) {
            self.retry_or_fail(now, flight.batch, error, fx);
        }
    }
}

impl StateMachine for Producer {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        match input {
            Input::Start => {}
            Input::Message { from, message: Message::Response { correlation_id, body } } => {
                if let NodeId::Broker(broker) = from {
                    self.metadata.on_reply_from(broker);
                }
                fx.cancel_timer(Timer::RequestTimeout(correlation_id));
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
            Input::Timer(Timer::RequestTimeout(id)) => self.on_request_failed(now, id, ErrorCode::RequestTimedOut, fx),
            Input::Timer(Timer::Linger(tp)) => self.seal(&tp),
            Input::Timer(_) => {}
            Input::ConnectionClosed { peer } => {
                let ids: Vec<u64> = self
                    .in_flight
                    .iter()
                    .filter(|(_, f)| NodeId::Broker(f.broker) == peer)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    fx.cancel_timer(Timer::RequestTimeout(id));
                    self.on_request_failed(now, id, ErrorCode::NetworkException, fx);
                }
                // A metadata or producer-id request to that broker is gone too; ask elsewhere,
                // and leave that broker alone for `reconnect.backoff.ms`.
                if let NodeId::Broker(broker) = peer {
                    self.metadata.on_connection_closed(now, broker);
                    if let Some((id, _)) = self.pid_request.filter(|(_, b)| *b == broker) {
                        fx.cancel_timer(Timer::RequestTimeout(id));
                        self.pid_request = None;
                    }
                }
            }
        }
        self.drive(now, fx);
    }
}
