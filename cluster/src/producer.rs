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
//!
//! A batch takes its sequence number when it is first sent, as in Kafka, so a batch that expires
//! before it was ever sent leaves no mark. A batch that fails for good after it was sent leaves a
//! gap: the broker may or may not have written it, and it now expects a sequence number the
//! producer will never send again, so every later batch would fail with
//! OUT_OF_ORDER_SEQUENCE_NUMBER. Real clients reset their idempotent state instead: Java 2.5+
//! bumps the producer epoch (KIP-360), older Java clients and librdkafka ask for a new producer
//! id. ksim does the latter. It waits for the requests in flight to finish, forgets the producer
//! id and every partition's sequence numbers, and sends InitProducerId again; the batches still
//! waiting are sent under the new id, numbered from 0. Only the failed batch is reported failed.
//! The price is the one Kafka pays: a waiting batch that an earlier attempt wrote under the old id
//! is not recognised under the new one, and can be written twice.

use crate::client_metadata::{ClientMetadata, MetadataSettings};
use crate::config::{Acks, ProducerConfig};
use crate::effects::{Effects, Input, StateMachine};
use crate::error::ErrorCode;
use crate::invariant::{debug_check, ensure};
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
    /// A sent batch failed for good and left a gap in its partition's sequence numbers: once the
    /// requests in flight finish, start again under a new producer id.
    reset_pending: bool,
    next_sequence: BTreeMap<TopicPartition, i32>,
    unrouted: Vec<Unrouted>,
    open: BTreeMap<TopicPartition, Batch>,
    ready: BTreeMap<TopicPartition, VecDeque<Batch>>,
    in_flight: BTreeMap<u64, InFlight>,
    next_correlation: u64,
}

impl Producer {
    pub fn new(config: ProducerConfig, bootstrap: Vec<BrokerId>) -> Self {
        let settings = MetadataSettings {
            max_age_ms: config.metadata_max_age_ms,
            request_timeout_ms: config.request_timeout_ms,
            reconnect_backoff: config.reconnect_backoff,
        };
        Producer {
            config,
            metadata: ClientMetadata::new(bootstrap, settings, Timer::ProducerWakeup),
            sticky: StickyPartitioner::default(),
            producer_id: NO_PRODUCER_ID,
            producer_epoch: -1,
            pid_request: None,
            reset_pending: false,
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

    /// Give a batch the next sequence numbers of its partition, on its first send. A retry keeps
    /// them, so the broker can recognise it.
    fn assign_sequence(&mut self, batch: &mut Batch) {
        if self.config.enable_idempotence && batch.base_sequence == NO_SEQUENCE {
            let next = self.next_sequence.entry(batch.partition.clone()).or_insert(0);
            batch.base_sequence = *next;
            *next = next.wrapping_add(batch.records.len() as i32);
        }
    }

    /// A batch failed for good. If it was sent with a sequence number, the partition's sequence
    /// now has a gap the broker will never see filled: the idempotent state must be reset.
    fn on_batch_failed(&mut self, batch: &Batch) {
        if self.config.enable_idempotence && batch.base_sequence != NO_SEQUENCE {
            self.reset_pending = true;
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
        self.next_sequence.clear();
        for batch in self.ready.values_mut().flatten() {
            batch.base_sequence = NO_SEQUENCE;
        }
    }

    /// No broker has more produce requests in flight than `max.in.flight.requests.per.connection`
    /// (Kafka's `NetworkClient` sends only while `InFlightRequests.canSendMore(node)`).
    pub fn check_invariants(&self) -> Result<(), String> {
        let max = self.config.max_in_flight_requests_per_connection;
        for f in self.in_flight.values() {
            let n = self.in_flight_to(f.broker);
            ensure(n <= max, || format!("{n} produce requests in flight to broker-{}, max.in.flight {max}", f.broker))?;
        }
        Ok(())
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
        self.metadata.maybe_refresh(now, &mut self.next_correlation, fx);
        if self.config.enable_idempotence {
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
                // One batch per partition in flight with idempotence (ksim's simplification of
                // Kafka's five) or with max.in.flight=1, where Kafka mutes the partition so that a
                // batch sent to a new leader cannot overtake one still out to the old.
                if self.in_flight_to(leader) >= self.config.max_in_flight_requests_per_connection
                    || ((self.config.enable_idempotence || self.config.max_in_flight_requests_per_connection == 1)
                        && self.in_flight_for(&tp))
                {
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
        for batch in &failed_batches {
            self.on_batch_failed(batch);
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
        // KIP-360: for an idempotent producer OUT_OF_ORDER_SEQUENCE_NUMBER is retriable. The
        // partition's sequence has a gap the broker will never see filled, so the producer resets
        // its idempotent state (Java bumps the epoch: `TransactionManager.canRetry` calls
        // `requestIdempotentEpochBumpForPartition` and returns true; ksim takes a new producer id,
        // see the module header) and retries the batch from sequence 0.
        let out_of_order = self.config.enable_idempotence && error == ErrorCode::OutOfOrderSequenceNumber;
        if out_of_order {
            self.reset_pending = true;
        }
        if (error.is_retriable() || out_of_order) && within_time && batch.attempts <= self.config.retries {
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
            let reason = if !(error.is_retriable() || out_of_order) {
                "not retriable".to_string()
            } else if !within_time {
                format!("delivery.timeout.ms={} passed", self.config.delivery_timeout_ms)
            } else {
                format!("retries={} exhausted", self.config.retries)
            };
            self.on_batch_failed(&batch);
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
            Input::Start | Input::Shutdown => {}
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
            let record = Record { key: None, value: format!("payment-{send_id}") };
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
        // With its id, it asks where the leader is, as any producer with a leaderless partition.
        let fx = h.respond(2, id, producer_id(1001));
        let asked = requests(&fx).into_iter().find(|(_, r)| matches!(r, Request::Metadata(_)));
        let (id, _) = asked.expect("asks for the leader again");
        // The partition has a leader again: the record goes out under the producer id.
        let fx = h.respond(3, id, metadata());
        let (_, batch) = produce(&fx);
        assert_eq!((batch.producer_id, batch.records[0].value.as_str()), (1001, "payment-1"));
    }

    #[test]
    fn idempotent_producer_after_an_expired_batch_restarts_sequences_under_a_new_producer_id() {
        let config = ProducerConfig { linger_ms: 0, delivery_timeout_ms: 10_000, ..ProducerConfig::default() };
        let mut h = Harness::new(config);

        // Record 1: metadata, a producer id, then a batch with sequence 0 that the leader refuses
        // (the ISR is too small), so it waits to be retried.
        let fx = h.send(0, 1);
        let (id, _) = request(&fx);
        let fx = h.respond(1, id, metadata());
        let (id, r) = request(&fx);
        assert_eq!(r, Request::InitProducerId);
        let fx = h.respond(2, id, producer_id(1001));
        let (id, batch) = produce(&fx);
        assert_eq!((batch.producer_id, batch.base_sequence), (1001, 0));
        h.respond(3, id, produce_response(ErrorCode::NotEnoughReplicas, -1));

        // Record 2 arrives while record 1 is being retried: it waits behind it.
        let fx = h.send(9_000, 2);
        let (id, batch) = produce(&fx);
        assert_eq!((batch.producer_id, batch.base_sequence, batch.len()), (1001, 0, 1), "the retry of record 1");
        h.respond(9_001, id, produce_response(ErrorCode::NotEnoughReplicas, -1));

        // delivery.timeout.ms passes for record 1 only. Sequence 0 may or may not be on the
        // broker now: the producer asks for a new producer id instead of sending sequence 1.
        let fx = h.input(10_000, Input::Timer(Timer::ProducerWakeup));
        assert_eq!(failed(&fx), vec![1], "only the expired record fails");
        let (id, r) = request(&fx);
        assert_eq!(r, Request::InitProducerId, "a sequence gap resets the idempotent state");

        // Record 2 goes out under the new id, numbered from 0, which a broker that has never
        // seen producer 1002 accepts; it is acknowledged, not failed.
        let fx = h.respond(10_002, id, producer_id(1002));
        let (id, batch) = produce(&fx);
        assert_eq!((batch.producer_id, batch.base_sequence), (1002, 0));
        assert_eq!(batch.records[0].value, "payment-2");
        let fx = h.respond(10_005, id, produce_response(ErrorCode::None, 7));
        assert!(
            fx.notes.iter().any(|n| matches!(n, Note::ProduceAcked { send_id: 2, offset: 7, .. })),
            "{:?}",
            fx.notes
        );
        assert!(failed(&fx).is_empty());
        assert_eq!(h.producer.pending_records(), 0);
    }

    #[test]
    fn idempotent_producer_keeps_its_id_when_a_batch_expires_before_it_was_sent() {
        let config = ProducerConfig { linger_ms: 0, delivery_timeout_ms: 1_000, ..ProducerConfig::default() };
        let mut h = Harness::new(config);
        let fx = h.send(0, 1);
        let (id, _) = request(&fx);
        let fx = h.respond(1, id, metadata());
        let (id, _) = request(&fx);
        let fx = h.respond(2, id, producer_id(1001));
        let (first, batch) = produce(&fx);
        assert_eq!(batch.base_sequence, 0);

        // Record 2 waits behind record 1, which is in flight, and expires there unsent: it has
        // no sequence number yet, so it leaves no gap (Kafka numbers a batch when it first sends
        // it, for this reason).
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
    fn a_backlog_behind_a_request_in_flight_goes_out_in_one_batch() {
        let config = ProducerConfig { linger_ms: 0, ..ProducerConfig::default() };
        let mut h = Harness::new(config);
        let fx = h.send(0, 1);
        let (id, _) = request(&fx);
        let fx = h.respond(1, id, metadata());
        let (id, _) = request(&fx);
        let fx = h.respond(2, id, producer_id(1001));
        let (first, _) = produce(&fx);

        // Records 2..=5 arrive while record 1 is in flight (one request per partition with
        // idempotence): they wait in one batch, and go out together when record 1 is answered.
        for send_id in 2..=5 {
            assert!(h.send(10 + send_id, send_id).sends.is_empty());
        }
        let (_, batch) = produce(&h.respond(20, first, produce_response(ErrorCode::None, 0)));
        let values: Vec<&str> = batch.records.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["payment-2", "payment-3", "payment-4", "payment-5"]);
        assert_eq!(batch.base_sequence, 1);
    }
}
