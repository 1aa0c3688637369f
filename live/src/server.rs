//! `ksim serve`'s server: the scenario's brokers and controllers as in a simulated run, in real
//! time, each broker listening for real Kafka clients on its own port.
//!
//! Threads: one per listener (accepts), one per client connection (reads whole request frames),
//! and the loop (everything else). Only the loop touches the world: it carries out due wake-ups,
//! steps the nodes with what arrived in their inboxes, turns client frames into ksim requests
//! sent on the world's network, and writes the answers back in request order, as a Kafka broker
//! does on each connection (`SocketServer`'s one in-flight response order per channel).

use crate::apis;
use crate::calls::{self, Addresses, Assembly, Plan};
use crate::driver::{Agenda, RealTimeDriver};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
use ksim_cluster::effects::Input;
use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::{Message, Response};
use ksim_cluster::topic::BrokerId;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::EventKind;
use ksim_sim::world::driver::ProcessControl;
use ksim_sim::world::World;
use ksim_sim::Outcome;
use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
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
    Accepted { broker: BrokerId, stream: TcpStream, peer: SocketAddr },
    Frame { conn: NodeId, bytes: Bytes },
    Closed { conn: NodeId, why: String },
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

/// A server whose ports are bound; [`Server::run`] serves until stopped.
pub struct Server {
    scenario: Scenario,
    name: String,
    listeners: Vec<(BrokerId, TcpListener)>,
    addresses: Addresses,
    tx: Sender<Event>,
    rx: Receiver<Event>,
}

/// The scenario as live mode runs it: its cluster, topics and network. Its client applications,
/// timeline, narration and expectations belong to simulated runs (faults in live mode are the
/// next step, issue 26).
pub fn live_scenario(scenario: &Scenario) -> Scenario {
    let mut live = scenario.clone();
    live.clients.clear();
    live.timeline.clear();
    live.narration.clear();
    live.expect.clear();
    live.connect = None;
    live.fuzz = None;
    live.converge_within_ms = None;
    live
}

impl Server {
    /// Bind every broker's port on 127.0.0.1. A port that is taken is an error naming it.
    pub fn bind(scenario: &Scenario, name: &str, options: &ServeOptions) -> Result<Server, String> {
        let scenario = live_scenario(scenario);
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
        Ok(Server { scenario, name: name.to_string(), listeners, addresses: Addresses { host, ports }, tx, rx })
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

    /// Serve until stopped; then the trace and the checker's report.
    pub fn run(self) -> Result<Outcome, String> {
        let Server { scenario, name, listeners, addresses, tx, rx } = self;
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

        let stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for (broker, listener) in listeners {
            let (tx, stop) = (tx.clone(), stop.clone());
            threads.push(std::thread::spawn(move || accept_loop(broker, listener, tx, stop)));
        }

        let mut nodes: BTreeMap<NodeId, UnboundedReceiver<Input>> = BTreeMap::new();
        let processes: Vec<NodeId> = w.slots.keys().copied().collect();
        for node in processes {
            if let Some(inbox) = w.start_node(node) {
                nodes.insert(node, inbox);
            }
        }
        let mut conns: BTreeMap<NodeId, Conn> = BTreeMap::new();

        loop {
            settle(&mut w, &agenda, &mut nodes, &mut conns, &addresses);
            let wait = agenda.lock().expect("agenda lock").until_next().unwrap_or(POLL).min(POLL);
            match rx.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) | Ok(Event::Quit) => break,
                Ok(Event::Accepted { broker, stream, peer }) => {
                    let (node, inbox) = w.connect_external_client(format!("{peer}"));
                    w.record_external(node, format!("connected to broker-{broker} from {peer}"));
                    match stream.try_clone() {
                        Ok(reader) => {
                            let (tx, stop) = (tx.clone(), stop.clone());
                            threads.push(std::thread::spawn(move || read_loop(node, reader, tx, stop)));
                            conns.insert(node, Conn::new(NodeId::Broker(broker), stream, inbox));
                        }
                        Err(e) => {
                            w.record_external(node, format!("connection dropped: {e}"));
                            w.disconnect_external_client(node);
                        }
                    }
                }
                Ok(Event::Frame { conn, bytes }) => {
                    if let Some(c) = conns.get_mut(&conn) {
                        if let Err(why) = c.on_frame(&mut w, conn, bytes) {
                            close(&mut w, &mut conns, conn, &why);
                        }
                    }
                }
                Ok(Event::Closed { conn, why }) => {
                    if conns.contains_key(&conn) {
                        close(&mut w, &mut conns, conn, &why);
                    }
                }
            }
        }

        stop.store(true, Ordering::Relaxed);
        for conn in conns.values() {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        for t in threads {
            let _ = t.join();
        }
        Ok(ksim_sim::run::conclude(&mut w, &scenario))
    }
}

/// Do everything that is due: wake-ups whose time came, inputs waiting in nodes' inboxes, the
/// process changes they asked for, answers for real clients. Until nothing is left.
fn settle(
    w: &mut World,
    agenda: &Arc<std::sync::Mutex<Agenda>>,
    nodes: &mut BTreeMap<NodeId, UnboundedReceiver<Input>>,
    conns: &mut BTreeMap<NodeId, Conn>,
    addresses: &Addresses,
) {
    // A bound on one settling pass, so a storm of due work cannot starve the sockets.
    for _ in 0..100_000 {
        let mut progressed = false;
        let due = agenda.lock().expect("agenda lock").pop_due();
        if let Some(wake) = due {
            w.wake(wake);
            progressed = true;
        }
        for (node, inbox) in nodes.iter_mut() {
            while let Ok(input) = inbox.try_recv() {
                w.step(*node, input);
                progressed = true;
            }
        }
        let controls = std::mem::take(&mut agenda.lock().expect("agenda lock").controls);
        for (node, control) in controls {
            progressed = true;
            match control {
                ProcessControl::Kill => {
                    nodes.remove(&node);
                }
                ProcessControl::Restart => {
                    if let Some(inbox) = w.start_node(node) {
                        nodes.insert(node, inbox);
                    }
                }
                ProcessControl::Pause | ProcessControl::Resume => {}
            }
        }
        let mut broken = Vec::new();
        for (node, conn) in conns.iter_mut() {
            while let Ok(input) = conn.inbox.try_recv() {
                progressed = true;
                match input {
                    Input::Message { message: Message::Response { correlation_id, body }, .. } => {
                        conn.on_response(correlation_id, body);
                    }
                    Input::ConnectionClosed { .. } => broken.push((*node, "the broker closed the connection".into())),
                    _ => {}
                }
            }
            if let Err(why) = conn.flush(addresses) {
                broken.push((*node, why));
            }
        }
        for (node, why) in broken {
            close(w, conns, node, &why);
        }
        if !progressed {
            return;
        }
    }
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
    stream: TcpStream,
    inbox: UnboundedReceiver<Input>,
    next_correlation_id: u64,
    /// Requests in the order they came: answers go out in this order.
    queue: VecDeque<Pending>,
    /// ksim correlation id -> (the Kafka request's correlation id, its part).
    parts: BTreeMap<u64, (i32, usize)>,
}

impl Conn {
    fn new(broker: NodeId, stream: TcpStream, inbox: UnboundedReceiver<Input>) -> Conn {
        Conn { broker, stream, inbox, next_correlation_id: 1, queue: VecDeque::new(), parts: BTreeMap::new() }
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

fn accept_loop(broker: BrokerId, listener: TcpListener, tx: Sender<Event>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
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
