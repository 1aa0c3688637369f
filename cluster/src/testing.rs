//! A pure test cluster: one controller and a few brokers, wired by a deterministic queue.
//!
//! No madsim, no threads, no clock: the harness holds every in-flight message and armed timer in
//! one queue ordered by virtual time (ties in the order they were queued), and steps by handing the
//! next one to the node's [`StateMachine::handle`], then queueing what the node's [`Effects`] ask
//! for. Every message takes [`LATENCY_MS`]. A test can cut the link between two nodes (messages
//! across it are dropped, as behind a network partition), kill a broker (its process dies: what it
//! keeps is [`Broker::into_disk`], and its peers see the connection close) and restart it from that
//! disk, and produce records as a client would. It reads each replica's log, high watermark and
//! epoch directly, and records every delivered message and note so a test can say what happened.
//!
//! After every handled input the harness runs every node's invariant checks, so a protocol step
//! that corrupts state fails the test at that step, naming it.

use crate::broker::replica::Replica;
use crate::broker::{Broker, BrokerDisk};
use crate::config::{Acks, BrokerConfig, TopicConfig};
use crate::controller::{Controller, ControllerDisk, TopicSpec};
use crate::effects::{Effects, Input, StateMachine, TimerOp};
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::{Message, ProduceRequest, ProduceResponse, Request, Response};
use crate::record::{Record, RecordBatch, NO_PRODUCER_ID, NO_SEQUENCE};
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// One-way latency of every message.
pub const LATENCY_MS: u64 = 1;
/// The controller's `node.id`.
pub const CONTROLLER_ID: i32 = 0;
/// The client the harness produces as.
pub const CLIENT: NodeId = NodeId::Client(0);
/// A bound on the steps of one `run_for`, so a livelock fails instead of hanging.
const MAX_STEPS_PER_RUN: usize = 1_000_000;

#[derive(Clone, Debug)]
enum Event {
    Deliver { from: NodeId, to: NodeId, message: Message },
    Fire { node: NodeId, timer: Timer },
    Closed { node: NodeId, peer: NodeId },
}

pub struct Harness {
    now: SimTime,
    config: BrokerConfig,
    controller: Controller,
    brokers: BTreeMap<BrokerId, Broker>,
    /// Disks of brokers that are down, and the incarnation each last ran as.
    dead: BTreeMap<BrokerId, BrokerDisk>,
    incarnations: BTreeMap<BrokerId, u64>,
    queue: BTreeMap<(SimTime, u64), Event>,
    /// Armed timers: (node, timer) -> its key in `queue`.
    armed: BTreeMap<(NodeId, Timer), (SimTime, u64)>,
    next_seq: u64,
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages the network loses, whatever the cuts (see [`Harness::lose`]).
    lost: Option<fn(&Message) -> bool>,
    rng: ChaCha8Rng,
    /// Every message delivered, in order, with when and between whom.
    pub delivered: Vec<(SimTime, NodeId, NodeId, Message)>,
    /// Every note, in order, with the node that wrote it.
    pub notes: Vec<(SimTime, NodeId, Note)>,
    /// Responses the client received.
    pub client_inbox: Vec<Response>,
    next_correlation_id: u64,
}

impl Harness {
    /// A cluster of `broker_ids`, creating `topics` once they are all up. Auto leader rebalancing
    /// is off so that leadership moves only when a test makes it move; HW checkpoints and page
    /// writeback happen only once an hour, so a killed broker comes back with the HW it started
    /// with unless a test says otherwise.
    pub fn new(broker_ids: &[BrokerId], topics: Vec<TopicSpec>) -> Harness {
        Harness::with_config(broker_ids, topics, BrokerConfig::default())
    }

    /// As [`Harness::new`], with every node running `config` (say, another Kafka version).
    pub fn with_config(broker_ids: &[BrokerId], topics: Vec<TopicSpec>, config: BrokerConfig) -> Harness {
        let config = BrokerConfig {
            auto_leader_rebalance_enable: false,
            replica_high_watermark_checkpoint_interval_ms: 3_600_000,
            ..config
        };
        let controller =
            Controller::new(CONTROLLER_ID, config.clone(), broker_ids.len(), topics, ControllerDisk::default());
        let mut harness = Harness {
            now: SimTime::ZERO,
            config,
            controller,
            brokers: BTreeMap::new(),
            dead: broker_ids.iter().map(|id| (*id, BrokerDisk::default())).collect(),
            incarnations: BTreeMap::new(),
            queue: BTreeMap::new(),
            armed: BTreeMap::new(),
            next_seq: 0,
            cut: BTreeSet::new(),
            lost: None,
            rng: ChaCha8Rng::seed_from_u64(7),
            delivered: Vec::new(),
            notes: Vec::new(),
            client_inbox: Vec::new(),
            next_correlation_id: 1,
        };
        harness.handle(NodeId::Controller(CONTROLLER_ID), Input::Start);
        for id in broker_ids {
            harness.start(*id);
        }
        harness
    }

    /// A topic of one partition on `replicas` (the first is the preferred leader).
    pub fn topic(name: &str, replicas: &[BrokerId], config: TopicConfig) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            partitions: 1,
            replication_factor: replicas.len(),
            assignment: vec![replicas.to_vec()],
            config,
        }
    }

    /// The harness's virtual time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn broker(&self, id: BrokerId) -> &Broker {
        self.brokers.get(&id).unwrap_or_else(|| panic!("broker-{id} is down"))
    }

    pub fn replica(&self, id: BrokerId, tp: &TopicPartition) -> &Replica {
        self.broker(id).replica(tp).unwrap_or_else(|| panic!("broker-{id} holds no replica of {tp}"))
    }

    /// The replica's records as `(offset, leader epoch, value)`.
    pub fn records(&self, id: BrokerId, tp: &TopicPartition) -> Vec<(i64, i32, String)> {
        let log = &self.replica(id, tp).log;
        log.batches()
            .flat_map(|b| {
                b.records
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| (b.base_offset + i as i64, b.leader_epoch, r.value_text().to_string()))
            })
            .collect()
    }

    /// Who the controller says leads `tp`, and in which epoch.
    pub fn leader(&self, tp: &TopicPartition) -> (Option<BrokerId>, i32) {
        self.controller.image().partitions.get(tp).map_or((None, -1), |p| (p.leader, p.leader_epoch))
    }

    /// Drop every message between `a` and `b`, both ways, until [`Harness::heal`].
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
        self.lost = None;
    }

    /// Lose every message `lost` picks (one kind of request, say), until [`Harness::heal`].
    pub fn lose(&mut self, lost: fn(&Message) -> bool) {
        self.lost = Some(lost);
    }

    /// The broker's process dies. Its disk keeps everything it wrote, page cache included (a
    /// process crash, not a power failure); its peers see their connections to it close.
    pub fn kill(&mut self, id: BrokerId) {
        let broker = self.brokers.remove(&id).unwrap_or_else(|| panic!("broker-{id} is already down"));
        self.dead.insert(id, broker.into_disk());
        let node = NodeId::Broker(id);
        self.armed.retain(|(n, _), key| {
            if *n == node {
                self.queue.remove(key);
            }
            *n != node
        });
        let peers: Vec<NodeId> = std::iter::once(NodeId::Controller(CONTROLLER_ID))
            .chain(self.brokers.keys().map(|b| NodeId::Broker(*b)))
            .chain(std::iter::once(CLIENT))
            .collect();
        for peer in peers {
            self.push(self.now.plus_ms(LATENCY_MS), Event::Closed { node: peer, peer: node });
        }
    }

    /// Start a broker that is down, from what its disk kept.
    pub fn start(&mut self, id: BrokerId) {
        let disk = self.dead.remove(&id).unwrap_or_else(|| panic!("broker-{id} is already up"));
        let incarnation = self.incarnations.entry(id).and_modify(|i| *i += 1).or_insert(1);
        let broker = Broker::new(id, self.config.clone(), None, NodeId::Controller(CONTROLLER_ID), *incarnation, disk);
        self.brokers.insert(id, broker);
        self.handle(NodeId::Broker(id), Input::Start);
    }

    /// Send one batch of `values` to `leader` as a client would (no idempotence), and return the
    /// correlation id; the answer lands in `client_inbox`.
    pub fn produce(&mut self, leader: BrokerId, tp: &TopicPartition, acks: Acks, values: &[&str]) -> u64 {
        self.produce_idempotent(leader, tp, acks, (NO_PRODUCER_ID, NO_SEQUENCE), values)
    }

    /// As [`Harness::produce`], as an idempotent producer: `(producer id, base sequence)` (epoch
    /// 0), or `(NO_PRODUCER_ID, NO_SEQUENCE)` for a plain one.
    pub fn produce_idempotent(
        &mut self,
        leader: BrokerId,
        tp: &TopicPartition,
        acks: Acks,
        (producer_id, base_sequence): (i64, i32),
        values: &[&str],
    ) -> u64 {
        let records = values.iter().map(|v| Record::unkeyed(*v)).collect();
        let epoch = if producer_id == NO_PRODUCER_ID { -1 } else { 0 };
        let batch = RecordBatch::new_unassigned(producer_id, epoch, base_sequence, self.now.as_ms(), records);
        let body = Request::Produce(ProduceRequest {
            acks,
            timeout_ms: 30_000,
            partition: tp.clone(),
            batch,
            transactional_id: None,
            transaction_v2: false,
        });
        self.request(leader, body)
    }

    /// Send any request to `broker` as the client, and return the correlation id; the answer
    /// lands in `client_inbox`.
    pub fn request(&mut self, broker: BrokerId, body: Request) -> u64 {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        self.send(CLIENT, NodeId::Broker(broker), Message::Request { correlation_id, body });
        correlation_id
    }

    /// Send a request and run until its answer arrives.
    pub fn ask(&mut self, broker: BrokerId, body: Request) -> Response {
        let before = self.client_inbox.len();
        self.request(broker, body);
        self.run_until(|h| h.client_inbox.len() > before, 60_000);
        self.client_inbox[before].clone()
    }

    /// Produce and run until the answer arrives; panics unless the broker accepted the batch.
    pub fn produce_ok(&mut self, leader: BrokerId, tp: &TopicPartition, acks: Acks, values: &[&str]) -> i64 {
        let before = self.client_inbox.len();
        self.produce(leader, tp, acks, values);
        self.run_until(|h| h.client_inbox.len() > before, 60_000);
        match &self.client_inbox[before] {
            Response::Produce(ProduceResponse { error, base_offset, .. }) if error.is_none() => *base_offset,
            other => panic!("produce to broker-{leader} failed: {other:?}"),
        }
    }

    /// Run until `done` holds, or panic after `max_ms` of virtual time.
    pub fn run_until(&mut self, done: impl Fn(&Harness) -> bool, max_ms: u64) {
        let deadline = self.now.plus_ms(max_ms);
        for _ in 0..MAX_STEPS_PER_RUN {
            if done(self) {
                return;
            }
            match self.queue.first_key_value() {
                Some((&(at, _), _)) if at <= deadline => self.step(),
                _ => panic!("condition not met within {max_ms} ms (now {})", self.now),
            }
        }
        panic!("condition not met within {MAX_STEPS_PER_RUN} steps");
    }

    /// Handle everything due in the next `ms`, and let the clock reach its end even if nothing
    /// is due then (a client acting on its own schedule, every few ms).
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now.plus_ms(ms);
        for _ in 0..MAX_STEPS_PER_RUN {
            match self.queue.first_key_value() {
                Some((&(at, _), _)) if at <= end => self.step(),
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("more than {MAX_STEPS_PER_RUN} steps in {ms} ms");
    }

    /// Run until the controller names `leader` leader of `tp` and that broker acts as leader.
    pub fn await_leader(&mut self, tp: &TopicPartition, leader: BrokerId) {
        let tp = tp.clone();
        self.run_until(
            |h| {
                h.leader(&tp).0 == Some(leader)
                    && h.brokers.get(&leader).and_then(|b| b.replica(&tp)).is_some_and(|r| r.is_leader())
            },
            120_000,
        );
    }

    fn step(&mut self) {
        let ((at, _), event) = self.queue.pop_first().expect("caller checked");
        self.now = at;
        match event {
            Event::Deliver { from, to, message } => {
                if !self.is_up(to) {
                    return;
                }
                self.delivered.push((at, from, to, message.clone()));
                if to == CLIENT {
                    if let Message::Response { body, .. } = message {
                        self.client_inbox.push(body);
                    }
                    return;
                }
                self.handle(to, Input::Message { from, message });
            }
            Event::Fire { node, timer } => {
                self.armed.remove(&(node, timer.clone()));
                self.handle(node, Input::Timer(timer));
            }
            Event::Closed { node, peer } => {
                if self.is_up(node) && node != CLIENT {
                    self.handle(node, Input::ConnectionClosed { peer });
                }
            }
        }
    }

    fn is_up(&self, node: NodeId) -> bool {
        match node {
            NodeId::Broker(id) => self.brokers.contains_key(&id),
            NodeId::Controller(_) | NodeId::Client(_) => true,
        }
    }

    fn push(&mut self, at: SimTime, event: Event) -> (SimTime, u64) {
        let key = (at, self.next_seq);
        self.next_seq += 1;
        self.queue.insert(key, event);
        key
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        if !self.cut.contains(&(from, to)) && !self.lost.is_some_and(|lost| lost(&message)) {
            self.push(self.now.plus_ms(LATENCY_MS), Event::Deliver { from, to, message });
        }
    }

    fn handle(&mut self, node: NodeId, input: Input) {
        let mut fx = Effects::default();
        let now = self.now;
        match node {
            NodeId::Controller(_) => self.controller.handle(now, input, &mut self.rng, &mut fx),
            NodeId::Broker(id) => {
                let broker = self.brokers.get_mut(&id).expect("only live brokers are handled");
                broker.handle(now, input, &mut self.rng, &mut fx);
            }
            NodeId::Client(_) => unreachable!("the client is the test itself"),
        }
        self.check_invariants();
        // In the order the node made them: the last operation on a timer wins.
        for op in fx.timer_ops {
            if let Some(key) = self.armed.remove(&(node, op.timer().clone())) {
                self.queue.remove(&key);
            }
            if let TimerOp::Set(timer, at) = op {
                let key = self.push(at.max(now), Event::Fire { node, timer: timer.clone() });
                self.armed.insert((node, timer), key);
            }
        }
        for (to, message) in fx.sends {
            self.send(node, to, message);
        }
        self.notes.extend(fx.notes.into_iter().map(|n| (now, node, n)));
    }

    /// Every live node's invariants hold.
    pub fn check_invariants(&self) {
        if let Err(e) = self.controller.check_invariants() {
            panic!("controller at {}: {e}", self.now);
        }
        for (id, broker) in &self.brokers {
            if let Err(e) = broker.check_invariants() {
                panic!("broker-{id} at {}: {e}", self.now);
            }
        }
    }
}
