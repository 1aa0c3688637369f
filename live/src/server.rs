//! `ksim serve`'s server: the scenario's brokers and controllers as in a simulated run, in real
//! time, each broker listening for real Kafka clients on its own port.
//!
//! Threads: one per listener (accepts), one per client connection (reads whole request frames),
//! and the loop (everything else). Only the loop touches the world: it carries out due wake-ups,
//! steps the nodes with what arrived in their inboxes, turns client frames into ksim requests
//! sent on the world's network, and writes the answers back in request order, as a Kafka broker
//! does on each connection (`SocketServer`'s one in-flight response order per channel).
//!
//! Faults reach the sockets as they would reach a real host's (see [`Live::follow`]): a killed or
//! stopped broker's listener closes and its connections are reset; a paused or powered-off
//! broker goes silent (connections stay open, nothing is read or answered, so clients time out);
//! a network cut between the real clients and a broker ([`crate::control::ClientSide`]) holds
//! both directions until it heals; a restart reopens the listener and resets connections the new
//! process never had.

use crate::apis;
use crate::calls::{self, Addresses, Assembly, Plan};
use crate::control::{self, ClientSide, Directive};
use crate::driver::{Agenda, RealTimeDriver};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
use ksim_cluster::effects::Input;
use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::{Message, Response};
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::BrokerId;
use ksim_sim::nodes::{ProcessChange, Status};
use ksim_sim::scenario::{Action, Scenario};
use ksim_sim::trace::EventKind;
use ksim_sim::world::driver::{ProcessControl, Wake};
use ksim_sim::world::World;
use ksim_sim::Outcome;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Kafka's `socket.request.max.bytes` default: a bigger frame closes the connection.
const MAX_REQUEST_BYTES: i32 = 104_857_600;
/// How often blocked threads look up to see whether the server is stopping.
const POLL: Duration = Duration::from_millis(50);

pub struct ServeOptions {
    /// Broker `i` (in the scenario's order) listens on `base_port + i`.
    pub base_port: u16,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { base_port: 19092 }
    }
}

enum Event {
    Accepted {
        broker: BrokerId,
        stream: TcpStream,
        peer: SocketAddr,
    },
    Frame {
        conn: NodeId,
        bytes: Bytes,
    },
    Closed {
        conn: NodeId,
        why: String,
    },
    /// A control-channel line, and where its answer goes.
    Control {
        line: String,
        reply: Sender<Result<(), String>>,
    },
    Quit,
}

/// Stops a running server from another thread (Ctrl-C, `quit` on stdin, a test).
#[derive(Clone)]
pub struct StopHandle(Sender<Event>);

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(Event::Quit);
    }
}

/// Acts on a running server's cluster from another thread: `ksim serve`'s control channel.
#[derive(Clone)]
pub struct ControlHandle(Sender<Event>);

impl ControlHandle {
    /// Carry out one action, written as a timeline step's `action` is (`Kill(Broker(1))`), once
    /// the server's loop gets to it. `Err` says why not (the parser's words for a typo).
    pub fn act(&self, line: &str) -> Result<(), String> {
        let (reply, answer) = mpsc::channel();
        let stopped = || "the server has stopped".to_string();
        self.0.send(Event::Control { line: line.to_string(), reply }).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

/// A server whose ports are bound; [`Server::run`] serves until stopped.
pub struct Server {
    scenario: Scenario,
    name: String,
    listeners: Vec<(BrokerId, TcpListener)>,
    addresses: Addresses,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    left_out: Vec<String>,
    feed: Option<Sender<Feed>>,
}

/// What a follower of the run (the TUI, `ksim serve --tui`) receives: first who the nodes are,
/// then the events the run records, in order, as they are recorded.
pub enum Feed {
    Header { header: ksim_sim::trace::TraceHeader, controllers: Vec<i32> },
    Events(Vec<ksim_sim::trace::Event>),
}

/// The scenario as live mode runs it: its cluster, topics, network, and the timeline steps and
/// timed narration that can happen without the scenario's client applications (which belong to
/// simulated runs, with its expectations). Returns what was left out, and why, to tell the user.
pub fn live_scenario(scenario: &Scenario) -> (Scenario, Vec<String>) {
    let mut live = scenario.clone();
    let mut left_out = Vec::new();
    live.timeline.retain(|step| match control::runs_live(&step.action) {
        Ok(()) => true,
        Err(why) => {
            left_out.push(format!("the timeline step at {} ms is left out: {why}", step.at_ms));
            false
        }
    });
    live.clients.clear();
    live.narration.retain(|n| n.at_ms.is_some());
    live.expect.clear();
    live.connect = None;
    live.fuzz = None;
    live.converge_within_ms = None;
    (live, left_out)
}

impl Server {
    /// Bind every broker's port on 127.0.0.1. A port that is taken is an error naming it.
    pub fn bind(scenario: &Scenario, name: &str, options: &ServeOptions) -> Result<Server, String> {
        let (scenario, left_out) = live_scenario(scenario);
        scenario.resolve().map_err(|e| format!("{name}: {e}"))?;
        let host = "127.0.0.1".to_string();
        let mut listeners = Vec::new();
        let mut ports = BTreeMap::new();
        for (i, broker) in scenario.cluster.brokers.iter().enumerate() {
            // Port 0: the operating system picks a free port for each broker (tests use it).
            let port = if options.base_port == 0 {
                0
            } else {
                u16::try_from(usize::from(options.base_port) + i).map_err(|_| {
                    format!("--base-port {}: broker {broker} would need a port above 65535", options.base_port)
                })?
            };
            let listener = TcpListener::bind((host.as_str(), port)).map_err(|e| {
                format!("cannot listen on {host}:{port} for broker {broker}: {e} (choose other ports with --base-port)")
            })?;
            let port = listener.local_addr().map_err(|e| format!("{host}:{port}: {e}"))?.port();
            listener.set_nonblocking(true).map_err(|e| format!("{host}:{port}: {e}"))?;
            listeners.push((*broker, listener));
            ports.insert(*broker, port);
        }
        let (tx, rx) = mpsc::channel();
        let addresses = Addresses { host, ports };
        Ok(Server { scenario, name: name.to_string(), listeners, addresses, tx, rx, left_out, feed: None })
    }

    /// The scenario's timeline steps that live mode leaves out, and why.
    pub fn left_out(&self) -> &[String] {
        &self.left_out
    }

    /// `127.0.0.1:19092,127.0.0.1:19093,...`: what a client's `bootstrap.servers` takes.
    pub fn bootstrap(&self) -> String {
        let addresses: Vec<String> = self
            .scenario
            .cluster
            .brokers
            .iter()
            .map(|b| format!("{}:{}", self.addresses.host, self.addresses.ports[b]))
            .collect();
        addresses.join(",")
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.tx.clone())
    }

    /// Follow the run as it goes: the receiver gets the trace's header, then its events as
    /// they are recorded (what `ksim serve --tui` shows).
    pub fn follow(&mut self) -> Receiver<Feed> {
        let (tx, rx) = mpsc::channel();
        self.feed = Some(tx);
        rx
    }

    pub fn control_handle(&self) -> ControlHandle {
        ControlHandle(self.tx.clone())
    }

    /// Serve until stopped; then the trace and the checker's report.
    pub fn run(self) -> Result<Outcome, String> {
        let Server { scenario, name, listeners, addresses, tx, rx, left_out: _, feed } = self;
        let resolved = scenario.resolve().map_err(|e| format!("{name}: {e}"))?;
        let agenda = Agenda::new();
        let driver = RealTimeDriver(agenda.clone());
        let world = World::new(&scenario, resolved, scenario.seed, &name, move |_| Box::new(driver));
        let mut w = world.lock().map_err(|_| "the world's lock is poisoned".to_string())?;
        w.record_world(EventKind::Narration(format!(
            "Live run: real clients connect to {}. Times are real time since the start; a live run \
             is not deterministic.",
            addresses.ports.values().map(|p| format!("{}:{p}", addresses.host)).collect::<Vec<_>>().join(",")
        )));

        let mut live = Live {
            timeline: control::timeline(&scenario),
            scenario,
            agenda,
            nodes: BTreeMap::new(),
            conns: BTreeMap::new(),
            addresses,
            listeners: BTreeMap::new(),
            tx,
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            paused: BTreeSet::new(),
            deferred: Vec::new(),
            clients: ClientSide::default(),
        };
        for (broker, listener) in listeners {
            live.listen(broker, listener);
        }
        let processes: Vec<NodeId> = w.slots.keys().copied().collect();
        for node in processes {
            if let Some(inbox) = w.start_node(node) {
                live.nodes.insert(node, inbox);
            }
        }
        // A broker the timeline holds down from the start has no listener until it starts.
        let brokers: Vec<BrokerId> = live.listeners.keys().copied().collect();
        for broker in brokers {
            live.follow(&mut w, broker);
        }

        let mut fed = 0;
        if let Some(feed) = &feed {
            let _ = feed.send(Feed::Header { header: w.header.clone(), controllers: live.scenario.controller_ids() });
        }
        loop {
            if let Some(feed) = &feed {
                if w.events().len() > fed {
                    let _ = feed.send(Feed::Events(w.events()[fed..].to_vec()));
                    fed = w.events().len();
                }
            }
            live.run_due_directives(&mut w);
            live.settle(&mut w);
            // (The world's clock locks the agenda: the agenda's guard must be gone before it.)
            let next_wake = live.agenda.lock().expect("agenda lock").until_next();
            let wait = [next_wake, live.until_next_directive(&w)].into_iter().flatten().fold(POLL, Duration::min);
            match rx.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) | Ok(Event::Quit) => break,
                Ok(Event::Accepted { broker, stream, peer }) => live.accepted(&mut w, broker, stream, peer),
                Ok(Event::Frame { conn, bytes }) => live.on_frame(&mut w, conn, bytes),
                Ok(Event::Closed { conn, why }) => {
                    if live.conns.contains_key(&conn) {
                        close(&mut w, &mut live.conns, conn, &why);
                    }
                }
                Ok(Event::Control { line, reply }) => {
                    let result = live.control(&mut w, &line);
                    // Carry it out before answering: `ok` means the sockets already follow it.
                    live.settle(&mut w);
                    let _ = reply.send(result);
                }
            }
        }

        live.stop.store(true, Ordering::Relaxed);
        for conn in live.conns.values() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        for listener in live.listeners.values_mut() {
            listener.close();
        }
        for t in live.threads {
            let _ = t.join();
        }
        Ok(ksim_sim::run::conclude(&mut w, &live.scenario))
    }
}

/// A broker's listening socket and the thread accepting on it.
struct Listener {
    port: u16,
    /// Stops this listener's thread, which drops (closes) the socket.
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn is_open(&self) -> bool {
        self.thread.is_some()
    }

    /// Close the socket before returning: a client connecting after this is refused.
    fn close(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The server loop's state: the world's processes, the real clients' connections, the listeners.
struct Live {
    scenario: Scenario,
    agenda: Arc<Mutex<Agenda>>,
    /// The inboxes of the processes running now.
    nodes: BTreeMap<NodeId, UnboundedReceiver<Input>>,
    conns: BTreeMap<NodeId, Conn>,
    addresses: Addresses,
    listeners: BTreeMap<BrokerId, Listener>,
    tx: Sender<Event>,
    threads: Vec<JoinHandle<()>>,
    /// The whole server is stopping.
    stop: Arc<AtomicBool>,
    /// Frozen processes: their inboxes wait, their timers wait for the resume.
    paused: BTreeSet<NodeId>,
    /// Timer wake-ups that fell due while their process was paused (madsim's paused node holds
    /// them the same way: they fire when it resumes).
    deferred: Vec<Wake>,
    /// The timeline still to come.
    timeline: VecDeque<(SimTime, Directive)>,
    clients: ClientSide,
}

impl Live {
    fn listen(&mut self, broker: BrokerId, listener: TcpListener) {
        let port = self.addresses.ports[&broker];
        let closing = Arc::new(AtomicBool::new(false));
        let (tx, stop, closed) = (self.tx.clone(), self.stop.clone(), closing.clone());
        let thread = std::thread::spawn(move || accept_loop(broker, listener, tx, stop, closed));
        self.listeners.insert(broker, Listener { port, closing, thread: Some(thread) });
    }

    fn until_next_directive(&self, w: &World) -> Option<Duration> {
        let (at, _) = self.timeline.front()?;
        Some(Duration::from_micros(at.0.saturating_sub(w.now().0)))
    }

    fn run_due_directives(&mut self, w: &mut World) {
        while self.timeline.front().is_some_and(|(at, _)| *at <= w.now()) {
            let Some((_, directive)) = self.timeline.pop_front() else { break };
            match directive {
                Directive::Narrate(text) => w.record_world(EventKind::Narration(text)),
                // As in a simulated run, a step that changes nothing is still recorded.
                Directive::Act(action) => self.act(w, &action),
            }
            self.settle(w);
        }
    }

    /// A control-channel line: parse it as a timeline action and carry it out.
    fn control(&mut self, w: &mut World, line: &str) -> Result<(), String> {
        let action = control::parse(&self.scenario, line)?;
        // A process fault that changes nothing (killing a dead broker) is refused, not applied.
        let fault = ksim_sim::run::action_fault(&self.scenario, &action)
            .ok_or_else(|| format!("{action:?} does not run live"))?;
        if let Some(node) = fault.node() {
            let host = std::iter::once(node).chain(self.scenario.same_host(node));
            if host
                .clone()
                .all(|n| w.slots.get(&n).is_none_or(|s| s.status.change(n, &fault) == ProcessChange::Nothing))
            {
                let status = w.slots.get(&node).map(|s| s.status);
                return Err(format!(
                    "{} is {}: {action:?} changes nothing",
                    w.header_name(node),
                    match status {
                        Some(Status::Up) => "running",
                        Some(Status::Paused) => "paused",
                        Some(Status::Killed) => "killed",
                        Some(Status::PoweredOff) => "powered off",
                        Some(Status::Stopped) | None => "stopped",
                    }
                ));
            }
        }
        w.record_world(EventKind::Narration(format!("Control channel: {}", line.trim())));
        self.act(w, &action);
        Ok(())
    }

    /// One action, carried out as the timeline's is in a simulated run: the same fault, traced
    /// the same way. Then where the real clients stand, if it cut or healed the network.
    fn act(&mut self, w: &mut World, action: &Action) {
        let Some(fault) = ksim_sim::run::action_fault(&self.scenario, action) else { return };
        w.apply_fault(fault);
        let before = self.clients.cut_off().clone();
        self.clients.apply(&self.scenario, action);
        if *self.clients.cut_off() != before {
            let cut: Vec<String> = self.clients.cut_off().iter().map(|b| format!("broker-{b}")).collect();
            w.record_world(EventKind::Narration(if cut.is_empty() {
                "Real clients reach every broker again.".to_string()
            } else {
                format!(
                    "Real clients stand with the first group of a partition: they cannot reach {} (their \
                     traffic is held, as a cut network holds it, until Heal).",
                    cut.join(", ")
                )
            }));
        }
    }

    /// Do everything that is due: wake-ups whose time came, inputs waiting in nodes' inboxes,
    /// the process changes they asked for, answers for real clients. Until nothing is left.
    fn settle(&mut self, w: &mut World) {
        // A bound on one settling pass, so a storm of due work cannot starve the sockets.
        for _ in 0..100_000 {
            let mut progressed = false;
            let due = self.agenda.lock().expect("agenda lock").pop_due();
            if let Some(wake) = due {
                progressed = true;
                match wake {
                    Wake::Timer { node, .. } if self.paused.contains(&node) => self.deferred.push(wake),
                    wake => w.wake(wake),
                }
            }
            for (node, inbox) in self.nodes.iter_mut() {
                if self.paused.contains(node) {
                    continue;
                }
                while let Ok(input) = inbox.try_recv() {
                    w.step(*node, input);
                    progressed = true;
                }
            }
            let controls = std::mem::take(&mut self.agenda.lock().expect("agenda lock").controls);
            for (node, control) in controls {
                progressed = true;
                self.carry_out(w, node, control);
            }
            let mut broken = Vec::new();
            for (node, conn) in self.conns.iter_mut() {
                while let Ok(input) = conn.inbox.try_recv() {
                    progressed = true;
                    match input {
                        Input::Message { message: Message::Response { correlation_id, body }, .. } => {
                            conn.on_response(correlation_id, body);
                        }
                        Input::ConnectionClosed { .. } => {
                            broken.push((*node, "the broker closed the connection".into()))
                        }
                        _ => {}
                    }
                }
            }
            // Frames a silent broker had not read, once it answers again; then the answers.
            let nodes: Vec<NodeId> = self.conns.keys().copied().collect();
            for node in nodes {
                if self.silent(w, node) {
                    continue;
                }
                let conn = self.conns.get_mut(&node).expect("listed");
                let held = std::mem::take(&mut conn.held);
                progressed |= !held.is_empty();
                for bytes in held {
                    if let Err(why) = conn.on_frame(w, node, bytes) {
                        broken.push((node, why));
                        break;
                    }
                }
                if let Err(why) = conn.flush(&self.addresses) {
                    broken.push((node, why));
                }
            }
            for (node, why) in broken {
                close(w, &mut self.conns, node, &why);
            }
            if !progressed {
                return;
            }
        }
    }

    /// What a fault asked of a process, and of the broker's sockets.
    fn carry_out(&mut self, w: &mut World, node: NodeId, control: ProcessControl) {
        match control {
            ProcessControl::Kill => {
                self.nodes.remove(&node);
                self.paused.remove(&node);
                self.deferred.retain(|wake| !matches!(wake, Wake::Timer { node: n, .. } if *n == node));
            }
            ProcessControl::Restart => {
                self.paused.remove(&node);
                if let Some(inbox) = w.start_node(node) {
                    self.nodes.insert(node, inbox);
                }
            }
            ProcessControl::Pause => {
                self.paused.insert(node);
            }
            ProcessControl::Resume => {
                self.paused.remove(&node);
                let (due, later): (Vec<Wake>, Vec<Wake>) = std::mem::take(&mut self.deferred)
                    .into_iter()
                    .partition(|wake| matches!(wake, Wake::Timer { node: n, .. } if *n == node));
                self.deferred = later;
                for wake in due {
                    w.wake(wake);
                }
            }
        }
        if let NodeId::Broker(broker) = node {
            self.follow(w, broker);
        }
    }

    /// Make a broker's sockets follow its process, as its host's kernel would. A dead process
    /// (killed, or exited after a graceful stop) has no listener (connecting is refused) and
    /// its connections are reset. A running, paused or powered-off one keeps its listener (a
    /// paused process's kernel still completes handshakes; a powered-off host is modelled the
    /// same way: accepted, then silent); a connection opened to an earlier process is reset.
    fn follow(&mut self, w: &mut World, broker: BrokerId) {
        let node = NodeId::Broker(broker);
        let status = w.slots.get(&node).map_or(Status::Stopped, |s| s.status);
        let alive = matches!(status, Status::Up | Status::Paused | Status::PoweredOff);
        let Some(listener) = self.listeners.get_mut(&broker) else { return };
        if !alive && listener.is_open() {
            listener.close();
            w.record_external(node, format!("listener on port {} closed: the process is down", listener.port));
        }
        if alive && !listener.is_open() && status == Status::Up {
            let port = listener.port;
            match TcpListener::bind((self.addresses.host.as_str(), port)).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => {
                    self.listen(broker, l);
                    w.record_external(node, format!("listening on port {port} again"));
                }
                Err(e) => w.record_external(node, format!("cannot listen on port {port} again: {e}")),
            }
        }
        let incarnation = w.incarnation(node);
        let stale: Vec<NodeId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.broker == node && (!alive || (status == Status::Up && c.incarnation != incarnation)))
            .map(|(n, _)| *n)
            .collect();
        for conn in stale {
            let why = if alive {
                "the broker restarted: its new process never had this connection"
            } else {
                "the broker's process is down"
            };
            reset(w, &mut self.conns, conn, why);
        }
    }

    /// Whether a connection's broker hears nothing and answers nothing now: its process is
    /// paused or its host powered off, or the network between it and the real clients is cut.
    fn silent(&self, w: &World, conn: NodeId) -> bool {
        let Some(NodeId::Broker(broker)) = self.conns.get(&conn).map(|c| c.broker) else { return false };
        let status = w.slots.get(&NodeId::Broker(broker)).map(|s| s.status);
        matches!(status, Some(Status::Paused | Status::PoweredOff)) || !self.clients.reaches(broker)
    }

    fn accepted(&mut self, w: &mut World, broker: BrokerId, stream: TcpStream, peer: SocketAddr) {
        let (node, inbox) = w.connect_external_client(format!("{peer}"));
        w.record_external(node, format!("connected to broker-{broker} from {peer}"));
        match stream.try_clone() {
            Ok(reader) => {
                let (tx, stop) = (self.tx.clone(), self.stop.clone());
                self.threads.push(std::thread::spawn(move || read_loop(node, reader, tx, stop)));
                let incarnation = w.incarnation(NodeId::Broker(broker));
                self.conns.insert(node, Conn::new(NodeId::Broker(broker), incarnation, stream, inbox));
                // Accepted just as the broker died: the dead process's kernel resets it.
                self.follow(w, broker);
            }
            Err(e) => {
                w.record_external(node, format!("connection dropped: {e}"));
                w.disconnect_external_client(node);
            }
        }
    }

    fn on_frame(&mut self, w: &mut World, conn: NodeId, bytes: Bytes) {
        let silent = self.silent(w, conn);
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if silent || !c.held.is_empty() {
            // Not read (a frozen process) or not delivered (a cut network) yet.
            c.held.push_back(bytes);
            return;
        }
        if let Err(why) = c.on_frame(w, conn, bytes) {
            close(w, &mut self.conns, conn, &why);
        }
    }
}

/// Reset a connection (TCP RST, SO_LINGER 0), as a host's kernel resets the connections of a
/// process that died: the client sees "connection reset" at once, not a timeout.
fn reset(w: &mut World, conns: &mut BTreeMap<NodeId, Conn>, node: NodeId, why: &str) {
    if let Some(conn) = conns.remove(&node) {
        let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
        // The reader's copy of the socket sees the end and drops it; the last close sends the RST.
        let _ = conn.stream.shutdown(Shutdown::Read);
    }
    w.record_external(node, format!("connection reset: {why}"));
    w.disconnect_external_client(node);
}

fn close(w: &mut World, conns: &mut BTreeMap<NodeId, Conn>, node: NodeId, why: &str) {
    if let Some(conn) = conns.remove(&node) {
        let _ = conn.stream.shutdown(Shutdown::Both);
    }
    w.record_external(node, format!("connection closed: {why}"));
    w.disconnect_external_client(node);
}

/// One Kafka request on a connection, until its response is written.
struct Pending {
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    state: State,
}

enum State {
    Ready(BytesMut),
    Waiting { assembly: Assembly, responses: Vec<Option<Response>> },
}

/// A real client's connection to one broker.
struct Conn {
    broker: NodeId,
    /// The broker's process when the connection was accepted.
    incarnation: u64,
    stream: TcpStream,
    /// Frames not yet read by the broker (paused, powered off, or cut off from the clients).
    held: VecDeque<Bytes>,
    inbox: UnboundedReceiver<Input>,
    next_correlation_id: u64,
    /// Requests in the order they came: answers go out in this order.
    queue: VecDeque<Pending>,
    /// ksim correlation id -> (the Kafka request's correlation id, its part).
    parts: BTreeMap<u64, (i32, usize)>,
}

impl Conn {
    fn new(broker: NodeId, incarnation: u64, stream: TcpStream, inbox: UnboundedReceiver<Input>) -> Conn {
        Conn {
            broker,
            incarnation,
            stream,
            held: VecDeque::new(),
            inbox,
            next_correlation_id: 1,
            queue: VecDeque::new(),
            parts: BTreeMap::new(),
        }
    }

    /// A whole request frame (without its size). `Err`: close the connection, for this reason.
    fn on_frame(&mut self, w: &mut World, node: NodeId, bytes: Bytes) -> Result<(), String> {
        if bytes.len() < 8 {
            return Err(format!("a request of {} bytes has no header", bytes.len()));
        }
        let api_key = i16::from_be_bytes([bytes[0], bytes[1]]);
        let version = i16::from_be_bytes([bytes[2], bytes[3]]);
        let correlation_id = i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let api = ApiKey::try_from(api_key).map_err(|_| format!("unknown API key {api_key}"))?;
        if api == ApiKey::ApiVersions && !apis::supports(api, version) {
            // Kafka answers an ApiVersions it cannot parse with UNSUPPORTED_VERSION and its
            // ranges, at version 0 (`RequestContext.parseRequest`, KIP-511), so the client can
            // retry with a version both know.
            let (min, max) = apis::range(api).expect("ApiVersions is implemented");
            w.record_external(
                node,
                format!("ApiVersions v{version} is not supported (v{min}-v{max}): answered UNSUPPORTED_VERSION"),
            );
            let body = calls::api_versions(35, 0)?;
            self.queue.push_back(Pending { correlation_id, api, version: 0, state: State::Ready(body) });
            return Ok(());
        }
        if !apis::supports(api, version) {
            // Kafka cannot parse a version it does not know and closes the connection
            // (`SocketServer.Processor`'s "Closing socket ... due to a protocol parsing error").
            return Err(match apis::range(api) {
                Some((min, max)) => format!("{api:?} v{version} is not supported (ksim implements v{min}-v{max})"),
                None => format!("{api:?} is not implemented by ksim serve"),
            });
        }
        let mut body = bytes;
        let header = decode_request_header_from_buffer(&mut body)
            .map_err(|e| format!("cannot parse the request header: {e}"))?;
        let client_id = header.client_id.as_ref().map_or("", |c| c.as_str());
        let state = match calls::plan(api, version, &mut body, client_id)? {
            Plan::Answer(body) => {
                if api == ApiKey::ApiVersions {
                    w.record_external(node, format!("ApiVersions v{version}: answered {} APIs", apis::SUPPORTED.len()));
                }
                State::Ready(body)
            }
            Plan::Inspect(inspection) => {
                let (body, line) = crate::txns::inspect(w, self.broker, &inspection, version)?;
                w.record_external(node, line);
                State::Ready(body)
            }
            Plan::Fire(requests) => {
                for request in requests {
                    self.send(w, node, request);
                }
                return Ok(());
            }
            Plan::Forward { requests, assembly } => {
                for line in calls::refusals(&assembly) {
                    w.record_external(node, line);
                }
                let responses = vec![None; requests.len()];
                for (part, request) in requests.into_iter().enumerate() {
                    let id = self.send(w, node, request);
                    self.parts.insert(id, (correlation_id, part));
                }
                State::Waiting { assembly, responses }
            }
        };
        self.queue.push_back(Pending { correlation_id, api, version, state });
        Ok(())
    }

    fn send(&mut self, w: &mut World, node: NodeId, request: ksim_cluster::protocol::Request) -> u64 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        w.send_external(node, self.broker, Message::Request { correlation_id: id, body: request });
        id
    }

    fn on_response(&mut self, id: u64, body: Response) {
        let Some((correlation_id, part)) = self.parts.remove(&id) else { return };
        let pending = self.queue.iter_mut().find(|p| p.correlation_id == correlation_id);
        if let Some(Pending { state: State::Waiting { responses, .. }, .. }) = pending {
            if let Some(slot) = responses.get_mut(part) {
                *slot = Some(body);
            }
        }
    }

    /// Write every answer at the head of the queue that is complete.
    fn flush(&mut self, addresses: &Addresses) -> Result<(), String> {
        while let Some(front) = self.queue.front() {
            let body = match &front.state {
                State::Ready(body) => body.clone(),
                State::Waiting { responses, .. } if responses.iter().any(Option::is_none) => return Ok(()),
                State::Waiting { assembly, responses } => {
                    let responses: Vec<Response> = responses.iter().flatten().cloned().collect();
                    calls::assemble(assembly, front.version, &responses, addresses)
                        .map_err(|e| format!("{:?} v{}: {e}", front.api, front.version))?
                }
            };
            let frame = frame(front.api, front.version, front.correlation_id, &body)?;
            self.stream.write_all(&frame).map_err(|e| format!("cannot write to the client: {e}"))?;
            self.queue.pop_front();
        }
        Ok(())
    }
}

/// Size, response header (v0, or v1 with tagged fields for flexible versions), body.
fn frame(api: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let mut head = BytesMut::new();
    header
        .encode(&mut head, api.response_header_version(version))
        .map_err(|e| format!("cannot encode a response header: {e}"))?;
    let size = i32::try_from(head.len() + body.len()).map_err(|_| "a response above 2 GiB".to_string())?;
    let mut out = Vec::with_capacity(4 + head.len() + body.len());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
    Ok(out)
}

fn accept_loop(
    broker: BrokerId,
    listener: TcpListener,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) && !closing.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                if tx.send(Event::Accepted { broker, stream, peer }).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Read whole frames (a 4-byte size, then that many bytes) until the client hangs up.
fn read_loop(conn: NodeId, mut stream: TcpStream, tx: Sender<Event>, stop: Arc<AtomicBool>) {
    let _ = stream.set_read_timeout(Some(POLL));
    let why = loop {
        let mut size = [0u8; 4];
        match read_full(&mut stream, &mut size, &stop) {
            Ok(true) => {}
            Ok(false) => break "the client closed the connection".to_string(),
            Err(e) => break e,
        }
        let size = i32::from_be_bytes(size);
        if !(0..=MAX_REQUEST_BYTES).contains(&size) {
            break format!("a request of {size} bytes (socket.request.max.bytes is {MAX_REQUEST_BYTES})");
        }
        let mut body = vec![0u8; size as usize];
        match read_full(&mut stream, &mut body, &stop) {
            Ok(true) => {}
            Ok(false) => break "the client closed the connection mid-request".to_string(),
            Err(e) => break e,
        }
        if tx.send(Event::Frame { conn, bytes: Bytes::from(body) }).is_err() {
            return;
        }
    };
    let _ = tx.send(Event::Closed { conn, why });
}

/// Fill `buf`. `Ok(false)`: the peer closed (or the server is stopping) first.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> Result<bool, String> {
    let mut at = 0;
    while at < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match stream.read(&mut buf[at..]) {
            Ok(0) => return Ok(false),
            Ok(n) => at += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(e) => return Err(format!("cannot read from the client: {e}")),
        }
    }
    Ok(true)
}
