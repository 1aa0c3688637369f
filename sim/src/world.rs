//! The world: every node, the fabric, the disks, the trace, and the checker, in one place.
//!
//! Each cluster node is a madsim node. Its main task ([`crate::host`]) takes messages from its
//! inbox and steps its state machine through [`World::step`]; each timer the state machine sets is
//! a task of its own on the same node, so killing a node kills its timers and pausing it freezes
//! them. Every message travels through the [`Fabric`] on a task of the fabric's own node, which no
//! fault touches. All of them share this `World` behind one lock; madsim runs one task at a time,
//! so the lock is never contended, and every step is recorded in order.

use crate::check::Checker;
use crate::clock::now;
use crate::fabric::{Fabric, Fate, Reachability};
use crate::nodes::{Durable, Machine, Nodes, Slot, Status};
use crate::rng::stream;
use crate::scenario::{Action, Happening, Resolved, Scenario, CONTROLLER_ID};
use crate::trace::{DropReason, Event, EventKind, Fault, TraceHeader};
use ksim_cluster::broker::Broker;
use ksim_cluster::client::Client;
use ksim_cluster::consumer::{ConsumedRecord, Consumer};
use ksim_cluster::controller::{Controller, TopicSpec};
use ksim_cluster::effects::{Effects, Input};
use ksim_cluster::log::TruncateReason;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::producer::Producer;
use ksim_cluster::protocol::Message;
use ksim_cluster::record::Record;
use ksim_cluster::time::SimTime;
use ksim_cluster::timer::Timer;
use ksim_cluster::topic::BrokerId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// A client's application-facing results.
pub type Delivery = tokio::sync::oneshot::Receiver<Result<(ksim_cluster::TopicPartition, i64), String>>;

/// Where a producer app waits for its record's fate: the partition and offset, or why it failed.
type DeliverySender = tokio::sync::oneshot::Sender<Result<(ksim_cluster::TopicPartition, i64), String>>;

/// A message a cut holds back: its id, the message, and the receiver's incarnation when sent.
type HeldMessage = (u64, Message, u64);

pub struct World {
    pub header: TraceHeader,
    pub resolved: Resolved,
    pub slots: Nodes,
    fabric: Fabric,
    events: Vec<Event>,
    next_message_id: u64,
    next_timer_generation: u64,
    next_send_id: u64,
    pub checker: Checker,
    deliveries: BTreeMap<u64, DeliverySender>,
    poll_ready: BTreeMap<NodeId, Arc<Notify>>,
    commit_waiters: BTreeMap<(NodeId, u64), tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// Narration waiting for its happening: (what, not before this time in µs, text).
    narration_on: Vec<(Happening, u64, String)>,
    /// Messages a network partition holds back, per (sender, receiver), oldest first, with the
    /// receiver's incarnation when sent. TCP resends them once the cut heals: the receiver gets
    /// them if its process is the same one, and the sender gets a reset if it restarted.
    held: BTreeMap<(NodeId, NodeId), Vec<HeldMessage>>,
    /// Requests on the wire, (sender, correlation id) -> receiver: when the sender gives up on one
    /// (its request timeout) it closes that connection, and what was held on it is gone.
    open_requests: BTreeMap<(NodeId, u64), NodeId>,
    /// Nodes the scenario's timeline leaves down at the end (killed, powered off or paused and
    /// never brought back): liveness does not expect them back.
    left_down: BTreeSet<NodeId>,
    me: Weak<Mutex<World>>,
    fabric_node: Option<madsim::runtime::NodeHandle>,
    /// `Instant` of virtual time zero.
    origin: Option<madsim::time::Instant>,
    /// Stop recording (the run is over).
    finished: bool,
    /// Upper bound on events, so no run can grow without limit.
    max_events: usize,
    /// When the trace hit `max_events`, if it did.
    pub overflowed_at: Option<SimTime>,
}

/// No run records more than this many events; a scenario that would is cut short and says so.
pub const MAX_EVENTS: usize = 5_000_000;

impl World {
    pub fn new(scenario: &Scenario, resolved: Resolved, seed: u64, name: &str) -> Arc<Mutex<World>> {
        let header = TraceHeader {
            scenario: name.to_string(),
            title: scenario.title.clone(),
            seed,
            brokers: scenario.cluster.brokers.clone(),
            clients: scenario.clients.iter().map(|c| c.name.clone()).collect(),
            duration_ms: scenario.duration_ms,
            racks: scenario.cluster.racks.clone(),
        };
        let mut slots = BTreeMap::new();
        let mut nodes = vec![NodeId::Controller(CONTROLLER_ID)];
        nodes.extend(scenario.cluster.brokers.iter().map(|id| NodeId::Broker(*id)));
        nodes.extend((0..scenario.clients.len()).map(|i| NodeId::Client(i as u32)));
        for node in nodes {
            let rng = stream(seed, &format!("node/{node}"));
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
                    status: Status::Up,
                    machine: None,
                    durable,
                    inbox: None,
                    timers: BTreeMap::new(),
                    starts: 0,
                    rng,
                    madsim_id: None,
                },
            );
        }
        let narration_on = scenario
            .narration
            .iter()
            .filter_map(|n| n.on.clone().map(|h| (h, n.after_ms.unwrap_or(0) * 1000, n.text.clone())))
            .collect();
        let checker = Checker::new(scenario, &resolved);
        let fabric = Fabric::new(
            scenario.network.latency_ms_min,
            scenario.network.latency_ms_max,
            scenario.network.loss,
            stream(seed, "network"),
        );
        Arc::new_cyclic(|me| {
            Mutex::new(World {
                header,
                resolved,
                slots,
                fabric,
                events: Vec::new(),
                next_message_id: 1,
                next_timer_generation: 1,
                next_send_id: 1,
                checker,
                deliveries: BTreeMap::new(),
                poll_ready: BTreeMap::new(),
                commit_waiters: BTreeMap::new(),
                narration_on,
                left_down: left_down(scenario),
                held: BTreeMap::new(),
                open_requests: BTreeMap::new(),
                me: me.clone(),
                fabric_node: None,
                origin: None,
                finished: false,
                max_events: MAX_EVENTS,
                overflowed_at: None,
            })
        })
    }

    pub fn set_fabric_node(&mut self, node: madsim::runtime::NodeHandle) {
        self.fabric_node = Some(node);
        // Inside the runtime madsim's clock is virtual: this reads the simulation's start, not the
        // wall clock.
        #[allow(clippy::disallowed_methods)]
        let start = madsim::time::Instant::now() - madsim::time::TimeHandle::current().elapsed();
        self.origin = Some(start);
    }

    fn at(&self, time: SimTime) -> madsim::time::Instant {
        self.origin.expect("the fabric node is set before the run starts") + Duration::from_micros(time.0)
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

    pub fn record(&mut self, node: NodeId, kind: EventKind) {
        if self.finished {
            return;
        }
        if self.events.len() >= self.max_events {
            // A runaway (a node retrying in a tight loop) would otherwise eat all memory. Stop
            // the world: from here on no node steps, and the run reports the overflow.
            self.overflowed_at = Some(now());
            self.finished = true;
            return;
        }
        let seq = self.events.len() as u64;
        self.events.push(Event { seq, time_us: now().0, node, kind });
    }

    pub fn finish(&mut self) {
        self.record(NodeId::Controller(CONTROLLER_ID), EventKind::End);
        self.finished = true;
    }

    // ---- node lifecycle -------------------------------------------------------------------------

    fn build_machine(&self, node: NodeId, durable: Durable, incarnation: u64) -> Machine {
        let brokers: Vec<BrokerId> = self.header.brokers.clone();
        let controller = NodeId::Controller(CONTROLLER_ID);
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
                Machine::Controller(Controller::new(id, self.resolved.broker.clone(), brokers.len(), topics, disk))
            }
            (NodeId::Broker(id), Durable::Broker(disk)) => {
                let rack = self.resolved_rack(id);
                Machine::Broker(Broker::new(id, self.resolved.broker.clone(), rack, controller, incarnation, disk))
            }
            (NodeId::Client(i), _) => {
                let name = &self.header.clients[i as usize];
                let producer = self.resolved.producers.get(name).map(|c| Producer::new(c.clone(), brokers.clone()));
                let consumer =
                    self.resolved.consumers.get(name).map(|c| Consumer::new(c.clone(), brokers.clone(), name));
                Machine::Client(Client { producer, consumer })
            }
            (node, durable) => panic!("{node} cannot start from {durable:?}"),
        }
    }

    fn resolved_rack(&self, _id: BrokerId) -> Option<String> {
        None
    }

    /// Called by a node's main task when its process starts: build the state machine from its
    /// disk, open its inbox, and feed it `Input::Start`.
    pub fn start_node(&mut self, node: NodeId) -> mpsc::UnboundedReceiver<Input> {
        let slot = self.slots.get_mut(&node).expect("every node has a slot");
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
        self.step(node, Input::Start);
        rx
    }

    /// Step one node's state machine with one input, then carry out its effects.
    pub fn step(&mut self, node: NodeId, input: Input) {
        if self.finished {
            return;
        }
        let now = now();
        let Some(slot) = self.slots.get_mut(&node) else { return };
        if !matches!(slot.status, Status::Up | Status::Paused) || slot.machine.is_none() {
            return;
        }
        match &input {
            Input::Timer(timer) => {
                if let Timer::RequestTimeout(id) = timer {
                    // Kafka's client closes the connection of a request that timed out.
                    if let Some(peer) = self.open_requests.remove(&(node, *id)) {
                        self.held.remove(&(node, peer));
                        self.held.remove(&(peer, node));
                    }
                }
                let timer = timer.clone();
                self.record(node, EventKind::TimerFired { timer });
            }
            Input::ConnectionClosed { peer } => {
                let peer = *peer;
                self.record(node, EventKind::ConnectionClosed { peer });
            }
            Input::Start | Input::Message { .. } => {}
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
        for timer in fx.cancels {
            if let Some(slot) = self.slots.get_mut(&node) {
                slot.timers.remove(&timer);
            }
        }
        for (timer, at) in fx.timers {
            self.set_timer(node, timer, at);
        }
        for (to, message) in fx.sends {
            self.send(now, node, to, message);
        }
        let findings = self.checker.after_step(node, &self.slots);
        for finding in findings {
            self.record(node, EventKind::Finding(finding));
        }
        if let NodeId::Client(_) = node {
            let outcomes = match self.slots.get_mut(&node).and_then(|s| s.machine.as_mut()) {
                Some(Machine::Client(Client { consumer: Some(c), .. })) => c.take_commit_outcomes(),
                _ => Vec::new(),
            };
            for (id, error) in outcomes {
                if let Some(tx) = self.commit_waiters.remove(&(node, id)) {
                    let _ = tx.send(if error.is_none() { Ok(()) } else { Err(error.to_string()) });
                }
            }
            let buffered = matches!(
                &self.slots[&node].machine,
                Some(Machine::Client(Client { consumer: Some(c), .. })) if c.buffered() > 0
            );
            if buffered {
                if let Some(notify) = self.poll_ready.get(&node) {
                    notify.notify_one();
                }
            }
        }
    }

    fn on_note(&mut self, node: NodeId, note: Note) {
        match &note {
            Note::ProduceAcked { send_id, partition, offset, .. } => {
                if let Some(tx) = self.deliveries.remove(send_id) {
                    let _ = tx.send(Ok((partition.clone(), *offset)));
                }
            }
            Note::ProduceFailed { send_id, error, reason, .. } => {
                if let Some(tx) = self.deliveries.remove(send_id) {
                    let _ = tx.send(Err(format!("{error}: {reason}")));
                }
            }
            _ => {}
        }
        let findings = self.checker.on_note(now(), node, &note, &self.slots);
        let kind = EventKind::Note(note);
        let triggered: Vec<String> = {
            let probe = Event { seq: 0, time_us: 0, node, kind: kind.clone() };
            let mut fired = Vec::new();
            let now_us = now().0;
            self.narration_on.retain(|(h, after_us, text)| {
                if now_us >= *after_us && crate::happening::matches(h, &probe, &self.header.clients) {
                    fired.push(text.clone());
                    false
                } else {
                    true
                }
            });
            fired
        };
        self.record(node, kind);
        for text in triggered {
            self.record(node, EventKind::Narration(text));
        }
        for finding in findings {
            self.record(node, EventKind::Finding(finding));
        }
    }

    fn set_timer(&mut self, node: NodeId, timer: Timer, at: SimTime) {
        let generation = self.next_timer_generation;
        self.next_timer_generation += 1;
        let Some(slot) = self.slots.get_mut(&node) else { return };
        slot.timers.insert(timer.clone(), generation);
        let world = self.me.upgrade().expect("the world outlives its tasks");
        let deadline = self.at(at);
        // Spawned on the current node: the node whose state machine set it.
        madsim::task::spawn(async move {
            madsim::time::sleep_until(deadline).await;
            let mut world = world.lock().expect("world lock");
            let current = world.slots.get(&node).and_then(|s| s.timers.get(&timer)).copied();
            if current == Some(generation) {
                world.slots.get_mut(&node).expect("present").timers.remove(&timer);
                world.step(node, Input::Timer(timer));
            }
        });
    }

    fn reachability(&self, node: NodeId) -> Reachability {
        match self.slots.get(&node).map(|s| s.status) {
            Some(Status::Up | Status::Paused) => Reachability::Up,
            Some(Status::PoweredOff) => Reachability::PoweredOff,
            Some(Status::Killed) | None => Reachability::ProcessDown,
        }
    }

    fn send(&mut self, now: SimTime, from: NodeId, to: NodeId, message: Message) {
        let id = self.next_message_id;
        self.next_message_id += 1;
        self.record(
            from,
            EventKind::Send { id, to, api: message.api(), request: message.is_request(), summary: message.to_string() },
        );
        match &message {
            Message::Request { correlation_id, .. } => {
                self.open_requests.insert((from, *correlation_id), to);
            }
            // A response travels on the connection its request came on. If the requester has
            // since died (and maybe restarted) or given up on the request, that connection is
            // closed: the response goes nowhere (and must not reach a new process whose
            // correlation ids start again).
            Message::Response { correlation_id, .. }
                if self.open_requests.get(&(to, *correlation_id)) != Some(&from) =>
            {
                self.record(from, EventKind::Drop { id, to, reason: DropReason::ConnectionClosed });
                return;
            }
            Message::Response { .. } => {}
        }
        let receiver = self.reachability(to);
        match self.fabric.route(now.0, from, to, receiver) {
            Fate::Deliver { at_us } => self.schedule_delivery(id, from, to, message, SimTime(at_us)),
            Fate::Drop { reason, notify_sender_at_us } => {
                self.record(from, EventKind::Drop { id, to, reason });
                if reason == DropReason::Partitioned {
                    self.hold(id, from, to, message);
                }
                if let Some(at_us) = notify_sender_at_us {
                    self.schedule_connection_closed(from, to, SimTime(at_us));
                }
            }
        }
    }

    /// A message arrives. `incarnation` is the receiver's process when it was sent: a process
    /// that restarted since never had that connection, and answers with a reset.
    fn deliver(&mut self, id: u64, from: NodeId, to: NodeId, message: Message, incarnation: u64) {
        // (Incarnation 0: sent before the receiver first booted, at time 0; its boot is not a restart.)
        let restarted = incarnation != 0 && self.slots.get(&to).is_some_and(|s| s.starts != incarnation);
        if restarted && self.reachability(to) == Reachability::Up && !self.fabric.is_cut(from, to) {
            self.record(to, EventKind::Drop { id, to, reason: DropReason::ConnectionClosed });
            let at_us = now().0 + self.fabric.latency_back_us(to, from);
            self.schedule_connection_closed(from, to, SimTime(at_us));
            return;
        }
        let reason = match self.reachability(to) {
            Reachability::Up if self.fabric.is_cut(from, to) => Some(DropReason::Partitioned),
            Reachability::Up => None,
            Reachability::ProcessDown => Some(DropReason::ReceiverDown),
            Reachability::PoweredOff => Some(DropReason::ReceiverPoweredOff),
        };
        if let Some(reason) = reason {
            self.record(to, EventKind::Drop { id, to, reason });
            if reason == DropReason::Partitioned {
                self.hold(id, from, to, message);
            }
            return;
        }
        if let Message::Response { correlation_id, .. } = &message {
            self.open_requests.remove(&(to, *correlation_id));
        }
        let inbox = self.slots.get(&to).and_then(|s| s.inbox.clone());
        match inbox {
            Some(inbox) => {
                self.record(to, EventKind::Deliver { id, from });
                self.fabric.connected(from, to);
                let _ = inbox.send(Input::Message { from, message });
            }
            None => self.record(to, EventKind::Drop { id, to, reason: DropReason::ReceiverDown }),
        }
    }

    fn hold(&mut self, id: u64, from: NodeId, to: NodeId, message: Message) {
        let incarnation = self.slots.get(&to).map_or(0, |s| s.starts);
        self.held.entry((from, to)).or_default().push((id, message, incarnation));
    }

    /// After the network changed: resend what a cut held back on every link that is whole again,
    /// as TCP's retransmission would. A receiver that restarted meanwhile answers with a reset.
    fn release_held(&mut self, now: SimTime) {
        let links: Vec<(NodeId, NodeId)> =
            self.held.keys().filter(|(a, b)| !self.fabric.is_cut(*a, *b)).copied().collect();
        for (from, to) in links {
            let messages = self.held.remove(&(from, to)).unwrap_or_default();
            let starts = self.slots.get(&to).map_or(0, |s| s.starts);
            let same_process = matches!(self.reachability(to), Reachability::Up)
                && messages.first().is_some_and(|(_, _, incarnation)| *incarnation == starts || *incarnation == 0);
            if same_process {
                for (id, message, _) in messages {
                    let at_us = self.fabric.retransmit_at(now.0, from, to);
                    self.schedule_delivery(id, from, to, message, SimTime(at_us));
                }
            } else if self.reachability(to) != Reachability::PoweredOff {
                let at_us = self.fabric.retransmit_at(now.0, from, to) + self.fabric.latency_back_us(to, from);
                self.schedule_connection_closed(from, to, SimTime(at_us));
            }
        }
    }

    fn schedule_delivery(&mut self, id: u64, from: NodeId, to: NodeId, message: Message, at: SimTime) {
        let world = self.me.upgrade().expect("the world outlives its tasks");
        let deadline = self.at(at);
        let incarnation = self.slots.get(&to).map_or(0, |s| s.starts);
        self.fabric_node.as_ref().expect("fabric node").spawn(async move {
            madsim::time::sleep_until(deadline).await;
            world.lock().expect("world lock").deliver(id, from, to, message, incarnation);
        });
    }

    fn schedule_connection_closed(&mut self, node: NodeId, peer: NodeId, at: SimTime) {
        let world = self.me.upgrade().expect("the world outlives its tasks");
        let deadline = self.at(at);
        self.fabric_node.as_ref().expect("fabric node").spawn(async move {
            madsim::time::sleep_until(deadline).await;
            let world = world.lock().expect("world lock");
            if let Some(inbox) = world.slots.get(&node).and_then(|s| s.inbox.clone()) {
                let _ = inbox.send(Input::ConnectionClosed { peer });
            }
        });
    }

    // ---- faults ---------------------------------------------------------------------------------

    /// Apply a fault now. Returns `Err` with a reason if it does not apply (restarting a running
    /// node is a kill plus a start; pausing a dead node does nothing).
    pub fn apply_fault(&mut self, fault: Fault) {
        let node = match &fault {
            Fault::Kill(n) | Fault::PowerFail(n) | Fault::Restart(n) | Fault::Pause(n) | Fault::Resume(n) => *n,
            _ => NodeId::Controller(CONTROLLER_ID),
        };
        self.record(node, EventKind::Fault(fault.clone()));
        let handle = madsim::runtime::Handle::current();
        match fault {
            Fault::Kill(n) => self.stop(n, false, &handle),
            Fault::PowerFail(n) => self.stop(n, true, &handle),
            Fault::Restart(n) => {
                let status = self.slots[&n].status;
                if matches!(status, Status::Up | Status::Paused) {
                    self.stop(n, false, &handle);
                }
                if let Some(id) = self.slots[&n].madsim_id {
                    // madsim re-runs the node's init: `host::node_main`, which calls `start_node`.
                    handle.restart(id);
                }
            }
            Fault::Pause(n) => {
                if self.slots[&n].status == Status::Up {
                    self.slots.get_mut(&n).expect("present").status = Status::Paused;
                    if let Some(id) = self.slots[&n].madsim_id {
                        handle.pause(id);
                    }
                }
            }
            Fault::Resume(n) => {
                if self.slots[&n].status == Status::Paused {
                    self.slots.get_mut(&n).expect("present").status = Status::Up;
                    if let Some(id) = self.slots[&n].madsim_id {
                        handle.resume(id);
                    }
                }
            }
            Fault::Partition(groups) => {
                for (i, a) in groups.iter().enumerate() {
                    for b in groups.iter().skip(i + 1) {
                        for &x in a {
                            for &y in b {
                                self.fabric.cut(x, y);
                                self.fabric.cut(y, x);
                            }
                        }
                    }
                }
            }
            Fault::PartitionOneWay { from, to } => {
                for &x in &from {
                    for &y in &to {
                        self.fabric.cut(x, y);
                    }
                }
            }
            Fault::Heal => {
                self.fabric.heal();
                self.release_held(now());
            }
            Fault::SlowLink { a, b, extra_latency_ms } => self.fabric.set_slow(a, b, extra_latency_ms),
        }
    }

    /// Stop a node's process; with `power_loss`, its disk also loses what was never flushed.
    fn stop(&mut self, node: NodeId, power_loss: bool, handle: &madsim::runtime::Handle) {
        let now = now();
        let slot = self.slots.get_mut(&node).expect("every node has a slot");
        if !matches!(slot.status, Status::Up | Status::Paused) {
            if power_loss && slot.status == Status::Killed {
                slot.status = Status::PoweredOff;
            }
            return;
        }
        if let Some(id) = slot.madsim_id {
            handle.kill(id);
        }
        slot.status = if power_loss { Status::PoweredOff } else { Status::Killed };
        slot.inbox = None;
        slot.timers.clear();
        let mut durable = slot.machine.take().map(Machine::into_durable).unwrap_or_default();
        if power_loss {
            if let Durable::Broker(disk) = &mut durable {
                for (partition, to_offset, removed) in disk.lose_unflushed() {
                    self.record(
                        node,
                        EventKind::Note(Note::Truncated {
                            partition,
                            to_offset,
                            removed,
                            reason: TruncateReason::PowerFailure,
                        }),
                    );
                }
            }
        }
        self.slots.get_mut(&node).expect("present").durable = durable;
        self.checker.on_stop(node, power_loss);
        // What the dead process had queued to send is gone with it.
        self.held.retain(|(from, _), _| *from != node);
        self.open_requests.retain(|(from, _), _| *from != node);
        if power_loss {
            self.fabric.forget_connections(node);
        } else {
            for (peer, at_us) in self.fabric.close_connections(now.0, node) {
                // Behind a cut the peer hears nothing now; it gets a reset when it next resends.
                if !self.fabric.is_cut(node, peer) {
                    self.schedule_connection_closed(peer, node, SimTime(at_us));
                }
            }
        }
        if let NodeId::Client(_) = node {
            // Pending deliveries and commits die with the application.
            self.deliveries.clear();
            self.commit_waiters.retain(|(n, _), _| *n != node);
        }
    }

    // ---- the client API's entry points ----------------------------------------------------------

    pub fn producer_send(&mut self, node: NodeId, topic: &str, record: Record) -> Delivery {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let send_id = self.next_send_id;
        self.next_send_id += 1;
        let now = now();
        let what = match &record.key {
            Some(k) => format!("send {k}={} to {topic}", record.value),
            None => format!("send {} to {topic}", record.value),
        };
        self.record(node, EventKind::App(what));
        let Some(slot) = self.slots.get_mut(&node) else {
            let _ = tx.send(Err("the run is over".into()));
            return rx;
        };
        let Some(Machine::Client(Client { producer: Some(producer), .. })) = slot.machine.as_mut() else {
            let _ = tx.send(Err("not running".into()));
            return rx;
        };
        self.deliveries.insert(send_id, tx);
        let mut fx = Effects::default();
        producer.send(now, send_id, topic, record, &mut slot.rng, &mut fx);
        self.apply(node, now, fx);
        rx
    }

    pub fn consumer_assign_topics(&mut self, node: NodeId, topics: &[String]) {
        let now = now();
        let Some(slot) = self.slots.get_mut(&node) else { return };
        let Some(Machine::Client(Client { consumer: Some(consumer), .. })) = slot.machine.as_mut() else { return };
        let mut fx = Effects::default();
        consumer.assign_topics(topics, now, &mut fx);
        self.apply(node, now, fx);
    }

    /// Run `f` on the node's consumer engine and carry out its effects.
    fn with_consumer<T>(
        &mut self,
        node: NodeId,
        f: impl FnOnce(&mut Consumer, SimTime, &mut Effects) -> T,
    ) -> Option<T> {
        let now = now();
        let slot = self.slots.get_mut(&node)?;
        let Some(Machine::Client(Client { consumer: Some(consumer), .. })) = slot.machine.as_mut() else { return None };
        let mut fx = Effects::default();
        let out = f(consumer, now, &mut fx);
        self.apply(node, now, fx);
        Some(out)
    }

    pub fn consumer_subscribe(&mut self, node: NodeId, topics: &[String]) {
        self.with_consumer(node, |c, now, fx| c.subscribe(topics, now, fx));
    }

    /// Start a commit of the consumer's positions; the receiver gets its outcome.
    pub fn consumer_commit(&mut self, node: NodeId) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        match self.with_consumer(node, |c, now, fx| c.commit(now, fx)).flatten() {
            Some(id) => {
                self.commit_waiters.insert((node, id), tx);
            }
            None => {
                let _ = tx.send(Ok(()));
            }
        }
        rx
    }

    pub fn consumer_close(&mut self, node: NodeId) {
        self.with_consumer(node, |c, now, fx| c.close(now, fx));
    }

    pub fn record_processed(&mut self, node: NodeId, partition: ksim_cluster::TopicPartition, offset: i64) {
        self.checker.on_processed(node, &partition, offset);
        self.record(node, EventKind::Processed { partition, offset });
    }

    pub fn consumer_poll(&mut self, node: NodeId) -> Vec<ConsumedRecord> {
        let now = now();
        let Some(slot) = self.slots.get_mut(&node) else { return Vec::new() };
        let Some(Machine::Client(Client { consumer: Some(consumer), .. })) = slot.machine.as_mut() else {
            return Vec::new();
        };
        let mut fx = Effects::default();
        let records = consumer.poll(now, &mut fx);
        self.apply(node, now, fx);
        records
    }

    pub fn poll_ready(&mut self, node: NodeId) -> Arc<Notify> {
        self.poll_ready.entry(node).or_insert_with(|| Arc::new(Notify::new())).clone()
    }

    /// What keeps the cluster from having converged, in plain words (empty: converged).
    pub fn convergence_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let image = self.slots.values().find_map(|s| match &s.machine {
            Some(Machine::Controller(c)) => Some(c.image().clone()),
            _ => None,
        });
        for (node, slot) in &self.slots {
            if slot.status != Status::Up && !self.left_down.contains(node) {
                problems.push(format!("{} is {:?}", self.header_name(*node), slot.status).to_lowercase());
            }
        }
        let Some(image) = image else {
            // Without a controller nothing can change leadership: if the scenario keeps it down,
            // that is its lesson, not a failure to recover.
            if !self.left_down.contains(&NodeId::Controller(CONTROLLER_ID)) {
                problems.push("the controller is down".into());
            }
            return problems;
        };
        for id in &self.header.brokers {
            if !image.is_unfenced(*id) && !self.left_down.contains(&NodeId::Broker(*id)) {
                problems.push(format!("broker-{id} is fenced"));
            }
        }
        let mut offline_for_good = BTreeSet::new();
        for (tp, p) in &image.partitions {
            // A partition whose last in-sync replicas are all gone for good stays offline: Kafka
            // will not elect an out-of-sync replica unless unclean election is enabled.
            let isr_gone = !p.isr.is_empty() && p.isr.iter().all(|r| self.left_down.contains(&NodeId::Broker(*r)));
            if p.leader.is_none() {
                if isr_gone {
                    offline_for_good.insert(tp.clone());
                } else {
                    problems.push(format!("{tp} has no leader"));
                }
            } else if p.replicas.iter().any(|r| !p.isr.contains(r) && !self.left_down.contains(&NodeId::Broker(*r))) {
                problems.push(format!("{tp} ISR {:?} is missing replicas of {:?}", p.isr, p.replicas));
            }
        }
        let mut high_watermarks = BTreeMap::new();
        for slot in self.slots.values() {
            if let Some(Machine::Broker(b)) = &slot.machine {
                for r in b.replicas().filter(|r| r.is_leader()) {
                    high_watermarks.insert(r.partition.clone(), r.high_watermark);
                }
            }
        }
        for (node, slot) in &self.slots {
            let Some(Machine::Client(Client { consumer: Some(c), .. })) = &slot.machine else { continue };
            if let Some(member) = c.member() {
                let group = member.group_id();
                let state = self.slots.values().find_map(|s| match &s.machine {
                    Some(Machine::Broker(b)) => b.group_state(group),
                    _ => None,
                });
                match state {
                    Some((ksim_cluster::group::coordinator::GroupState::Stable, _)) => {}
                    Some((state, _)) => problems.push(format!("group {group} is {state}")),
                    // Its __consumer_offsets partition may be offline for good (see above).
                    None if offline_for_good.iter().any(|tp| tp.topic == "__consumer_offsets") => {}
                    None => problems.push(format!("group {group} has no coordinator")),
                }
            }
            for (tp, position) in c.positions() {
                if let Some(hw) = high_watermarks.get(&tp) {
                    if position < *hw {
                        problems.push(format!("{} lags {} record(s) on {tp}", self.header_name(*node), hw - position));
                    }
                }
            }
        }
        let lost = self.checker.lost_acked_writes(&self.slots);
        if lost > 0 {
            problems.push(format!("{lost} acknowledged write(s) Kafka promised to keep cannot be read"));
        }
        problems.sort();
        problems.dedup();
        problems
    }

    pub fn header_name(&self, node: NodeId) -> String {
        crate::trace::node_name(&self.header.clients, node)
    }

    /// Drop every node's state and the queues (after the run; see `run::supervise`).
    pub fn release(&mut self) {
        self.slots.clear();
        self.deliveries.clear();
        self.poll_ready.clear();
        self.commit_waiters.clear();
        self.fabric_node = None;
    }

    pub fn app_note(&mut self, node: NodeId, text: String) {
        self.record(node, EventKind::App(text));
    }
}

/// The nodes the timeline leaves down for good: killed or powered off and never restarted, or
/// paused and never resumed (resuming a dead node does not bring it back).
fn left_down(scenario: &Scenario) -> BTreeSet<NodeId> {
    let mut dead = BTreeSet::new();
    let mut paused = BTreeSet::new();
    let mut steps: Vec<&crate::scenario::Step> = scenario.timeline.iter().collect();
    steps.sort_by_key(|s| s.at_ms);
    for step in steps {
        match &step.action {
            Action::Kill(n) | Action::PowerFail(n) => {
                dead.insert(scenario.node_id(n));
            }
            Action::Pause(n) => {
                paused.insert(scenario.node_id(n));
            }
            Action::Resume(n) => {
                paused.remove(&scenario.node_id(n));
            }
            Action::Restart(n) => {
                dead.remove(&scenario.node_id(n));
                paused.remove(&scenario.node_id(n));
            }
            _ => {}
        }
    }
    dead.union(&paused).copied().collect()
}
