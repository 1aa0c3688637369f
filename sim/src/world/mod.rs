//! The world: every node, the network, the disks, the trace and the checker, in one place.
//!
//! Each node's state machine is stepped here ([`World::step`]) with one input at a time, and its
//! effects are carried out here, in the order it emitted them: notes recorded and checked, timers
//! set or cancelled, messages handed to the network. The world never sleeps or reads a clock: its
//! [`Driver`] does, and hands back each [`Wake`] when its time comes.
//!
//! The map: [`faults`] (what a fault does to a process and its disk), [`hosts`] (each broker
//! host's kernel writing its page cache back), [`clients`] (the entry
//! points of the client API that applications call), [`messages`] (the world's side of the
//! network: sends, deliveries, what a cut holds back), [`driver`] (what a driver provides).

pub mod admin;
pub mod clients;
pub mod connect;
pub mod driver;
pub mod faults;
pub mod hosts;
pub mod live;
pub mod messages;

use crate::check::Checker;
use crate::net::fabric::Fabric;
use crate::net::tcp::Tcp;
use crate::nodes::{Durable, Machine, Nodes, Slot, Status};
use crate::rng::stream;
use crate::scenario::{Happening, Resolved, Scenario, CONTROLLER_ID};
use crate::trace::{Actor, Event, EventKind, Fault, TraceHeader};
use clients::Waiters;
use driver::{Driver, Wake};
use ksim_cluster::broker::Broker;
use ksim_cluster::client::Client;
use ksim_cluster::consumer::Consumer;
use ksim_cluster::controller::{Controller, TopicSpec};
use ksim_cluster::effects::{Effects, Input, TimerOp};
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::producer::Producer;
use ksim_cluster::time::SimTime;
use ksim_cluster::timer::Timer;
use ksim_cluster::topic::BrokerId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc;

/// The world of one run: every node, the network, the trace and the checker.
pub struct World {
    pub header: TraceHeader,
    pub resolved: Resolved,
    pub slots: Nodes,
    fabric: Fabric,
    events: Vec<Event>,
    next_message_id: u64,
    /// The operator's admin requests so far (their correlation ids).
    next_admin_request: u64,
    next_timer_generation: u64,
    next_send_id: u64,
    pub checker: Checker,
    /// What client applications wait on: deliveries, commits, records to poll.
    waiters: Waiters,
    /// Narration waiting for its happening: (what, not before this time in µs, text).
    narration_on: Vec<(Happening, u64, String)>,
    /// TCP's state: open requests and what a cut holds back.
    tcp: Tcp,
    /// Nodes the scenario's timeline leaves down at the end (killed, powered off or paused and
    /// never brought back): liveness does not expect them back.
    left_down: BTreeSet<NodeId>,
    /// Client applications that ended by themselves (a Kafka Streams instance whose thread died
    /// of a fatal error closes its consumers and its process ends): nobody brings them back, so
    /// liveness does not expect them, as it does not expect what the timeline left down.
    gave_up: BTreeSet<NodeId>,
    /// Combined mode: each process's partner on the same host (broker <-> controller of one
    /// `node.id`), both ways.
    same_host: BTreeMap<NodeId, NodeId>,
    /// Combined nodes stopping gracefully: the controller to stop once the broker has exited.
    stop_after_exit: BTreeMap<NodeId, NodeId>,
    /// The clock, the wake-ups and the processes (madsim's, or a real-time loop's).
    driver: Box<dyn Driver>,
    /// Stop recording (the run is over).
    finished: bool,
    /// Upper bound on events, so no run can grow without limit.
    pub max_events: usize,
    /// Where to report how far the run got, if someone watches.
    pub progress: Option<std::sync::Arc<crate::run::Progress>>,
    /// When the trace hit `max_events`, if it did.
    pub overflowed_at: Option<SimTime>,
    /// Check the stepped node's invariants after every step (debug builds, fuzzing).
    pub check_invariants: bool,
    /// Kafka Connect's external systems, offsets file and worker group, if the scenario has them.
    pub connect: Option<connect::ConnectWorld>,
    /// A fuzz run's watch for convergence, so it can end once the cluster has recovered.
    pub settle: Option<Settle>,
}

/// No run records more than this many events; a scenario that would is cut short and says so.
pub const MAX_EVENTS: usize = 5_000_000;

/// How a fuzz run ends early. From the last timeline step on, the world asks after a step, at
/// most once per second of virtual time, whether the cluster has converged (the liveness
/// check's question), and remembers since when it has been (forgetting it if a later look finds
/// it has not). Once the run is past `end_from` (the base scenario's own end) with the cluster
/// converged, it says so through `notify`, and the run ends there instead of idling out the
/// rest of its recovery bound. Asking changes nothing in the run: it reads the nodes' state and
/// draws no randomness, so every event up to the end is the one a full-length run records.
pub struct Settle {
    /// The last timeline step: the faults are over.
    pub watch_from: SimTime,
    /// The earliest the run may end.
    pub end_from: SimTime,
    next_check: SimTime,
    /// The first look (within a second of it) from which the cluster has stayed converged.
    pub converged_since: Option<SimTime>,
    ended: bool,
    pub notify: std::sync::Arc<tokio::sync::Notify>,
}

impl Settle {
    pub fn new(watch_from: SimTime, end_from: SimTime, notify: std::sync::Arc<tokio::sync::Notify>) -> Self {
        Settle { watch_from, end_from, next_check: watch_from, converged_since: None, ended: false, notify }
    }
}

impl World {
    /// A world for `scenario`; `driver` builds its driver from a handle on the world (which the
    /// driver's wake-ups lock and call back).
    pub fn new(
        scenario: &Scenario,
        resolved: Resolved,
        seed: u64,
        name: &str,
        driver: impl FnOnce(Weak<Mutex<World>>) -> Box<dyn Driver>,
    ) -> Arc<Mutex<World>> {
        let header = TraceHeader {
            scenario: name.to_string(),
            title: scenario.title.clone(),
            seed,
            brokers: scenario.cluster.brokers.clone(),
            clients: scenario.clients.iter().map(|c| c.name.clone()).collect(),
            duration_ms: scenario.duration_ms,
            racks: scenario.cluster.racks.clone(),
            overrides: scenario.overrides.clone(),
        };
        let mut slots = BTreeMap::new();
        // A Kill or PowerFail at time 0 means the node never ran: it is down from the start (its
        // first process fault at time 0 decides; a Restart later starts it).
        let down_from_start = |node: NodeId| -> Option<Status> {
            let host = scenario.same_host(node);
            let step = scenario.timeline.iter().take_while(|s| s.at_ms == 0).find(|s| {
                s.action.is_process_fault()
                    && s.action.nodes().iter().any(|n| {
                        let id = scenario.node_id(n);
                        id == node || Some(id) == host
                    })
            })?;
            match step.action {
                crate::scenario::Action::Kill(_) => Some(Status::Killed),
                crate::scenario::Action::PowerFail(_) => Some(Status::PoweredOff),
                _ => None,
            }
        };
        for node in scenario.all_nodes() {
            let rng = stream(seed, &format!("node/{node}"));
            let held = down_from_start(node);
            let durable = match node {
                NodeId::Controller(_) => Durable::Controller(Default::default()),
                NodeId::Broker(_) => Durable::Broker(Default::default()),
                NodeId::Client(_) => Durable::Nothing,
            };
            slots.insert(
                node,
                Slot {
                    // Every node boots at time 0, in an order madsim picks: a message sent to a
                    // node not yet booted still reaches it (delivery takes at least a
                    // microsecond), as a packet to a host that is starting up would.
                    status: held.unwrap_or(Status::Up),
                    machine: None,
                    durable,
                    inbox: None,
                    timers: BTreeMap::new(),
                    starts: 0,
                    rng,
                    held_down: held.is_some(),
                },
            );
        }
        let narration_on = scenario
            .narration
            .iter()
            .filter_map(|n| n.on.clone().map(|h| (h, n.after_ms.unwrap_or(0) * 1000, n.text.clone())))
            .collect();
        let checker = Checker::new(scenario, &resolved);
        let resolved_connect = resolved.connect.clone();
        let fabric = Fabric::new(
            scenario.network.latency_ms_min,
            scenario.network.latency_ms_max,
            scenario.network.loss,
            stream(seed, "network"),
        );
        let world = Arc::new_cyclic(|me| {
            Mutex::new(World {
                header,
                resolved,
                slots,
                fabric,
                events: Vec::new(),
                next_message_id: 1,
                next_admin_request: 0,
                next_timer_generation: 1,
                next_send_id: 1,
                checker,
                waiters: Waiters::default(),
                narration_on,
                left_down: faults::left_down(scenario),
                gave_up: BTreeSet::new(),
                same_host: scenario
                    .all_nodes()
                    .into_iter()
                    .filter_map(|n| scenario.same_host(n).map(|other| (n, other)))
                    .collect(),
                stop_after_exit: BTreeMap::new(),
                tcp: Tcp::default(),
                driver: driver(me.clone()),
                finished: false,
                max_events: MAX_EVENTS,
                progress: None,
                overflowed_at: None,
                check_invariants: cfg!(debug_assertions),
                connect: resolved_connect.map(connect::ConnectWorld::new),
                settle: None,
            })
        });
        world.lock().expect("world lock").start_hosts(seed);
        world.lock().expect("world lock").start_connect_sources();
        world
    }

    /// The current virtual time.
    pub fn now(&self) -> SimTime {
        self.driver.now()
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// After the run (or once a node's state is released), the client API does nothing.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Record what `node` did.
    pub fn record(&mut self, node: NodeId, kind: EventKind) {
        self.record_as(Actor::Node(node), kind);
    }

    /// Record what the world did: a fault, narration, a finding, the end.
    pub fn record_world(&mut self, kind: EventKind) {
        self.record_as(Actor::World, kind);
    }

    fn record_as(&mut self, actor: Actor, kind: EventKind) {
        if self.finished {
            return;
        }
        if self.events.len() >= self.max_events {
            // A runaway (a node retrying in a tight loop) would otherwise eat all memory. Stop
            // the world: from here on no node steps, and the run reports the overflow.
            self.overflowed_at = Some(self.now());
            self.finished = true;
            return;
        }
        let seq = self.events.len() as u64;
        let time_us = self.now().0;
        if seq % 4096 == 0 {
            if let Some(p) = &self.progress {
                use std::sync::atomic::Ordering::Relaxed;
                p.events.store(seq, Relaxed);
                p.virtual_us.store(time_us, Relaxed);
            }
        }
        self.events.push(Event { seq, time_us, actor, kind });
    }

    pub fn finish(&mut self) {
        self.record_world(EventKind::End);
        self.finished = true;
    }

    // ---- node lifecycle -------------------------------------------------------------------------

    /// A client's producer engine as its configuration builds it (`new KafkaProducer(props)`).
    fn new_producer(&self, name: &str) -> Option<Producer> {
        // The finalized `transaction.version` the client learns from ApiVersions; a librdkafka
        // client speaks the classic protocol whatever it is.
        let tv =
            if self.resolved.librdkafka_clients.contains(name) { 0 } else { self.resolved.broker.transaction_version };
        let config = self.resolved.producers.get(name)?.clone();
        Some(Producer::new(config, self.header.brokers.clone()).with_finalized_transaction_version(tv))
    }

    fn build_machine(&self, node: NodeId, durable: Durable, incarnation: u64) -> Machine {
        let brokers: Vec<BrokerId> = self.header.brokers.clone();
        // A broker first asks the first controller; with a quorum its observer then follows the
        // leader.
        let voters = self.resolved.quorum.as_ref().map(|q| q.voters.clone());
        let controller = NodeId::Controller(voters.as_ref().and_then(|v| v.first().copied()).unwrap_or(CONTROLLER_ID));
        match (node, durable) {
            (NodeId::Controller(id), Durable::Controller(disk)) => {
                let topics = self
                    .resolved
                    .topics
                    .iter()
                    .map(|(t, config)| TopicSpec {
                        name: t.name.clone(),
                        partitions: t.partitions,
                        replication_factor: t.replication_factor,
                        assignment: t.replicas.clone(),
                        config: config.clone(),
                    })
                    .collect();
                Machine::Controller(Controller::with_quorum(
                    id,
                    self.resolved.broker.clone(),
                    brokers.len(),
                    topics,
                    disk,
                    self.resolved.quorum.clone(),
                ))
            }
            (NodeId::Broker(id), Durable::Broker(disk)) => {
                let rack = self.resolved_rack(id);
                let broker = Broker::new(id, self.resolved.broker.clone(), rack, controller, incarnation, disk);
                Machine::Broker(match &self.resolved.quorum {
                    Some(q) => broker.observe_quorum(q.voters.clone(), q.config.clone()),
                    None => broker,
                })
            }
            (NodeId::Client(i), _) => {
                let name = &self.header.clients[i as usize];
                let producer = self.new_producer(name);
                let consumer =
                    self.resolved.consumers.get(name).map(|c| Consumer::new(c.clone(), brokers.clone(), name));
                Machine::Client(Client::new(producer, consumer))
            }
            (node, durable) => panic!("{node} cannot start from {durable:?}"),
        }
    }

    fn resolved_rack(&self, _id: BrokerId) -> Option<String> {
        None
    }

    /// Called by a node's main task when its process starts: build the state machine from its
    /// disk, open its inbox, and feed it `Input::Start`.
    /// `None` for a node the timeline holds down from time 0: its process does not run until a
    /// `Restart`.
    pub fn start_node(&mut self, node: NodeId) -> Option<mpsc::UnboundedReceiver<Input>> {
        let slot = self.slots.get_mut(&node).expect("every node has a slot");
        if slot.held_down {
            return None;
        }
        slot.starts += 1;
        let incarnation = slot.starts;
        let durable = std::mem::take(&mut slot.durable);
        let machine = self.build_machine(node, durable, incarnation);
        let (tx, rx) = mpsc::unbounded_channel();
        let slot = self.slots.get_mut(&node).expect("present");
        slot.machine = Some(machine);
        slot.inbox = Some(tx);
        slot.status = Status::Up;
        slot.timers.clear();
        self.note_config_adjustments(node);
        self.step(node, Input::Start);
        Some(rx)
    }

    /// What a client's engines changed in their own settings at construction (the validator's
    /// adjustments), noted as Kafka logs them when a client is built: at every start.
    fn note_config_adjustments(&mut self, node: NodeId) {
        let NodeId::Client(i) = node else { return };
        let Some(adjustments) = self.resolved.adjustments.get(&self.header.clients[i as usize]) else { return };
        for a in adjustments.clone() {
            self.on_note(node, Note::ConfigAdjusted { setting: a.key, value: a.value, reason: a.reason });
        }
    }

    /// Step one node's state machine with one input, then carry out its effects.
    pub fn step(&mut self, node: NodeId, input: Input) {
        if self.finished {
            return;
        }
        let now = self.now();
        let Some(slot) = self.slots.get_mut(&node) else { return };
        if !matches!(slot.status, Status::Up | Status::Paused) || slot.machine.is_none() {
            return;
        }
        match &input {
            Input::Timer(timer) => {
                // A client node's further consumers' timers come wrapped with their engine.
                let inner = match timer {
                    Timer::Engine(_, inner) => inner.as_ref(),
                    other => other,
                };
                if let Timer::RequestTimeout(id) = inner {
                    // The requester closes the connection (`NetworkClient.handleTimedOutRequests`):
                    // its next request opens a new one, whose handshake a client then times.
                    // Only the timed-out client's connection closes: while another client of
                    // the node still waits on `peer` (a Connect worker's consumer in a JoinGroup
                    // while its producer timed out), a connection stays, and `peer` crashing
                    // closes it. Found by `ksim fuzz scenarios/connect-worker-dies.ron --seeds
                    // 287..288`: the crash of the paused coordinator went unnoticed and the
                    // consumer waited out its 305 s JoinGroup timeout.
                    if let Some(peer) = self.tcp.request_timed_out(node, *id) {
                        if !self.tcp.another_client_waits(node, *id, peer) {
                            self.fabric.disconnected(node, peer);
                        }
                    }
                }
                let timer = timer.clone();
                self.record(node, EventKind::TimerFired { timer });
            }
            Input::ConnectionClosed { peer } => {
                let peer = *peer;
                self.record(node, EventKind::ConnectionClosed { peer });
            }
            Input::Start | Input::Shutdown | Input::Message { .. } | Input::ConnectionEstablished { .. } => {}
        }
        let slot = self.slots.get_mut(&node).expect("present");
        let machine = slot.machine.as_mut().expect("present");
        let mut fx = Effects::default();
        machine.handle(now, input, &mut slot.rng, &mut fx);
        self.apply(node, now, fx);
    }

    fn apply(&mut self, node: NodeId, now: SimTime, fx: Effects) {
        for note in fx.notes {
            self.on_note(node, note);
        }
        // In the order the state machine made them: the last operation on a timer wins.
        #[cfg(debug_assertions)]
        let last_ops: BTreeMap<Timer, bool> =
            fx.timer_ops.iter().map(|op| (op.timer().clone(), matches!(op, TimerOp::Set(..)))).collect();
        for op in fx.timer_ops {
            match op {
                TimerOp::Set(timer, at) => self.set_timer(node, timer, at),
                TimerOp::Cancel(timer) => {
                    if let Some(slot) = self.slots.get_mut(&node) {
                        slot.timers.remove(&timer);
                    }
                }
            }
        }
        #[cfg(debug_assertions)]
        if let Some(slot) = self.slots.get(&node) {
            for (timer, set) in &last_ops {
                debug_assert_eq!(
                    slot.timers.contains_key(timer),
                    *set,
                    "{node}: timer {timer} must be {} after its step's last operation",
                    if *set { "live" } else { "cancelled" }
                );
            }
        }
        // Before the sends: a request sent in this step goes out on a new connection.
        for correlation_id in fx.abandoned {
            self.tcp.request_abandoned(node, correlation_id);
        }
        for (to, message) in fx.sends {
            self.send(now, node, to, message);
        }
        if self.check_invariants {
            if let Some(Err(broken)) =
                self.slots.get(&node).and_then(|s| s.machine.as_ref()).map(Machine::check_invariants)
            {
                panic!("invariant broken on {} at {now}: {broken}", self.header_name(node));
            }
        }
        let findings = self.checker.after_step(node, &self.slots);
        for finding in findings {
            self.record_world(EventKind::Finding(finding));
        }
        if let NodeId::Client(_) = node {
            self.wake_application(node);
        }
        if fx.exit {
            // The process finished its graceful shutdown.
            if let NodeId::Client(_) = node {
                if !self.left_down.contains(&node) {
                    self.gave_up.insert(node);
                }
            }
            self.apply_fault(Fault::Exit(node));
        }
        self.watch_convergence(now);
    }

    /// See [`Settle`].
    fn watch_convergence(&mut self, now: SimTime) {
        let due = self.settle.as_ref().is_some_and(|s| !s.ended && now >= s.next_check);
        if !due {
            return;
        }
        let converged = self.convergence_problems().is_empty();
        let settle = self.settle.as_mut().expect("checked");
        settle.next_check = SimTime(now.0 + 1_000_000);
        if !converged {
            settle.converged_since = None;
            return;
        }
        settle.converged_since.get_or_insert(now);
        if now >= settle.end_from {
            settle.ended = true;
            settle.notify.notify_one();
        }
    }

    fn on_note(&mut self, node: NodeId, note: Note) {
        match &note {
            Note::ProduceAcked { send_id, partition, offset, .. } => {
                self.waiters.delivered(node, *send_id, Ok((partition.clone(), *offset)));
            }
            Note::ProduceFailed { send_id, error, reason, .. } => {
                self.waiters.delivered(node, *send_id, Err(format!("{error}: {reason}")));
            }
            Note::TxnInitialized { .. }
            | Note::TxnEnded { .. }
            | Note::TxnFailed { .. }
            | Note::TxnOffsetsSent { .. } => {
                self.waiters.on_transaction_note(node, &note);
            }
            _ => {}
        }
        let now = self.now();
        let expired = match &note {
            Note::MemberRemoved { group, member, reason } if reason.starts_with("no heartbeat") => {
                Some((group.clone(), member.clone()))
            }
            _ => None,
        };
        let findings = self.checker.on_note(now, node, &note, &self.slots);
        let kind = EventKind::Note(note);
        let triggered = self.narration_triggered(Actor::Node(node), &kind);
        self.record(node, kind);
        for text in triggered {
            self.record_world(EventKind::Narration(text));
        }
        for finding in findings {
            self.record_world(EventKind::Finding(finding));
        }
        if let Some((group, member)) = expired {
            self.connect_member_expired(node, &group, &member);
        }
    }

    /// The narration waiting for an event like this one, taken off the waiting list.
    fn narration_triggered(&mut self, actor: Actor, kind: &EventKind) -> Vec<String> {
        let probe = Event { seq: 0, time_us: 0, actor, kind: kind.clone() };
        let mut fired = Vec::new();
        let now_us = self.now().0;
        self.narration_on.retain(|(h, after_us, text)| {
            if now_us >= *after_us && crate::scenario::happening::matches(h, &probe, &self.header.clients) {
                fired.push(text.clone());
                false
            } else {
                true
            }
        });
        fired
    }

    fn set_timer(&mut self, node: NodeId, timer: Timer, at: SimTime) {
        let generation = self.next_timer_generation;
        self.next_timer_generation += 1;
        let Some(slot) = self.slots.get_mut(&node) else { return };
        slot.timers.insert(timer.clone(), generation);
        self.driver.wake_at(at, Wake::Timer { node, timer, generation });
    }

    /// The driver hands back a wake-up the world asked for, at its time. Once the run has
    /// finished (or been released), a wake-up that was due at its very last instant does nothing:
    /// its events would not be recorded, and the nodes may be gone (fuzz: a host's writeback
    /// falling due exactly at the end of commit-survives-coordinator-move seed 368).
    pub fn wake(&mut self, wake: Wake) {
        if self.finished {
            return;
        }
        match wake {
            Wake::Timer { node, timer, generation } => {
                let current = self.slots.get(&node).and_then(|s| s.timers.get(&timer)).copied();
                if current == Some(generation) {
                    self.slots.get_mut(&node).expect("present").timers.remove(&timer);
                    self.step(node, Input::Timer(timer));
                }
            }
            Wake::Deliver { id, from, to, message, incarnation } => self.deliver(id, from, to, message, incarnation),
            Wake::ConnectionClosed { node, peer } => {
                if let Some(inbox) = self.slots.get(&node).and_then(|s| s.inbox.clone()) {
                    let _ = inbox.send(Input::ConnectionClosed { peer });
                }
            }
            Wake::ConnectionEstablished { node, peer } => {
                if let Some(inbox) = self.slots.get(&node).and_then(|s| s.inbox.clone()) {
                    let _ = inbox.send(Input::ConnectionEstablished { peer });
                }
            }
            Wake::HostWriteback { node } => self.host_writeback(node),
            Wake::SourceRow { source, index } => self.insert_source_row(source, index),
        }
    }

    /// What keeps the cluster from having converged, in plain words (empty: converged).
    pub fn convergence_problems(&self) -> Vec<String> {
        let left_down: BTreeSet<NodeId> = self.left_down.union(&self.gave_up).copied().collect();
        crate::check::liveness::convergence_problems(&self.slots, &self.header, &left_down, &self.checker)
    }

    pub fn header_name(&self, node: NodeId) -> String {
        crate::trace::node_name(&self.header.clients, node)
    }

    /// Drop every node's state and the queues (after the run; see `run::supervise`).
    pub fn release(&mut self) {
        self.finished = true;
        self.slots.clear();
        self.waiters = Waiters::default();
        self.driver.release();
    }
}
