//! Faults on real sockets while a client is connected (issue 26), with kafka-protocol-encoded
//! requests over real TCP: a killed broker refuses connections and resets the ones it had; a
//! paused or powered-off broker, or one cut off from the clients, answers nothing until it
//! resumes, restarts or the cut heals; a restart reopens the listener. The control channel takes
//! a timeline action per line and says why it refuses one; the timeline runs in real time.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as kp, ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use ksim_cluster::node::NodeId;
use ksim_live::{ControlHandle, ServeOptions, Server, StopHandle};
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{EventKind, Fault};
use ksim_sim::Outcome;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"Scenario(
    title: "live faults",
    duration_ms: 60000,
    cluster: (brokers: [1, 2, 3]),
    topics: [(name: "orders", partitions: 2, replication_factor: 3)],
)"#;

/// What became of a request.
#[derive(Debug, PartialEq)]
enum Answer {
    Answered,
    /// Nothing came back within the wait; the connection is still open.
    Silence,
    /// The server closed or reset the connection.
    Closed(ErrorKind),
}

struct Client {
    stream: TcpStream,
    next_id: i32,
    /// Correlation ids sent and not yet answered, in order.
    waiting: std::collections::VecDeque<i32>,
}

impl Client {
    fn connect(addr: &str) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        Ok(Client { stream, next_id: 1, waiting: Default::default() })
    }

    fn send_api_versions(&mut self) {
        let mut header = RequestHeader::default();
        header.request_api_key = ApiKey::ApiVersions as i16;
        header.request_api_version = 3;
        header.correlation_id = self.next_id;
        header.client_id = Some(StrBytes::from_static_str("faults-test"));
        self.waiting.push_back(self.next_id);
        self.next_id += 1;
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).expect("header");
        kp::ApiVersionsRequest::default().encode(&mut buf, 3).expect("body");
        let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&buf);
        // A write to a reset connection fails; the read below says so.
        let _ = self.stream.write_all(&framed);
    }

    /// Wait up to `within` for the oldest outstanding answer.
    fn answer(&mut self, within: Duration) -> Answer {
        self.stream.set_read_timeout(Some(within)).expect("timeout");
        let mut size = [0u8; 4];
        if let Err(e) = self.stream.read_exact(&mut size) {
            return match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => Answer::Silence,
                kind => Answer::Closed(kind),
            };
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        if let Err(e) = self.stream.read_exact(&mut body) {
            return Answer::Closed(e.kind());
        }
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, 0).expect("response header");
        assert_eq!(Some(header.correlation_id), self.waiting.pop_front(), "answers come in order");
        let versions = kp::ApiVersionsResponse::decode(&mut body, 3).expect("decodes");
        assert_eq!(versions.error_code, 0);
        Answer::Answered
    }

    fn call(&mut self, within: Duration) -> Answer {
        self.send_api_versions();
        self.answer(within)
    }
}

struct Running {
    addrs: Vec<String>,
    control: ControlHandle,
    stop: StopHandle,
    thread: JoinHandle<Result<Outcome, String>>,
}

fn serve(text: &str) -> Running {
    let scenario = Scenario::parse("live.ron", text).expect("parses");
    let server = Server::bind(&scenario, "live", &ServeOptions { base_port: 0 }).expect("binds");
    let addrs = server.bootstrap().split(',').map(str::to_string).collect();
    let (control, stop) = (server.control_handle(), server.stop_handle());
    Running { addrs, control, stop, thread: std::thread::spawn(move || server.run()) }
}

impl Running {
    fn finish(self) -> Outcome {
        self.stop.stop();
        self.thread.join().expect("server thread").expect("a trace")
    }
}

const QUICK: Duration = Duration::from_secs(5);
const SILENCE: Duration = Duration::from_millis(700);

fn faulted(outcome: &Outcome, fault: &Fault) -> bool {
    outcome.trace.events.iter().any(|e| matches!(&e.kind, EventKind::Fault(f) if f == fault))
}

#[test]
fn a_killed_broker_refuses_connections_and_resets_its_own_and_a_restart_reopens_it() {
    let live = serve(SCENARIO);
    let mut c = Client::connect(&live.addrs[0]).expect("connects");
    assert_eq!(c.call(QUICK), Answer::Answered);

    live.control.act("Kill(Broker(1))").expect("ok");
    // The connection it had is reset at once (no waiting out a timeout), and a new one refused.
    let started = Instant::now();
    assert!(matches!(c.call(QUICK), Answer::Closed(_)), "the killed broker's connection is closed");
    assert!(started.elapsed() < Duration::from_secs(2), "at once: {:?}", started.elapsed());
    let refused = Client::connect(&live.addrs[0]).map(|_| ()).expect_err("refused");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");
    // The others still answer.
    assert_eq!(Client::connect(&live.addrs[1]).expect("connects").call(QUICK), Answer::Answered);

    // Killing a dead broker changes nothing: an error, and nothing is applied.
    let again = live.control.act("Kill(Broker(1))").expect_err("already dead");
    assert!(again.contains("broker-1 is killed") && again.contains("changes nothing"), "{again}");

    live.control.act("Restart(Broker(1))").expect("ok");
    let mut c = Client::connect(&live.addrs[0]).expect("listening again");
    assert_eq!(c.call(QUICK), Answer::Answered);

    let outcome = live.finish();
    assert!(faulted(&outcome, &Fault::Kill(NodeId::Broker(1))), "traced like a timeline fault");
    assert!(faulted(&outcome, &Fault::Restart(NodeId::Broker(1))));
    let faults = outcome.trace.events.iter().filter(|e| matches!(e.kind, EventKind::Fault(_))).count();
    assert_eq!(faults, 2, "the refused second Kill is not applied");
}

#[test]
fn a_paused_broker_answers_nothing_until_it_resumes_and_keeps_its_connections() {
    let live = serve(SCENARIO);
    let mut c = Client::connect(&live.addrs[1]).expect("connects");
    assert_eq!(c.call(QUICK), Answer::Answered);

    live.control.act("Pause(Broker(2))").expect("ok");
    assert_eq!(c.call(SILENCE), Answer::Silence, "a frozen process reads nothing");
    // Its kernel still completes the handshake of a new connection; nothing answers on it.
    let mut late = Client::connect(&live.addrs[1]).expect("the kernel accepts");
    assert_eq!(late.call(SILENCE), Answer::Silence);
    assert_eq!(Client::connect(&live.addrs[2]).expect("connects").call(QUICK), Answer::Answered);

    live.control.act("Resume(Broker(2))").expect("ok");
    assert_eq!(c.answer(QUICK), Answer::Answered, "the request held while paused is answered now");
    assert_eq!(late.answer(QUICK), Answer::Answered);
    assert_eq!(c.call(QUICK), Answer::Answered, "the same connection goes on");

    let outcome = live.finish();
    assert!(faulted(&outcome, &Fault::Pause(NodeId::Broker(2))));
    assert!(faulted(&outcome, &Fault::Resume(NodeId::Broker(2))));
}

#[test]
fn a_powered_off_broker_goes_silent_and_after_its_restart_the_old_connection_is_reset() {
    let live = serve(SCENARIO);
    let mut c = Client::connect(&live.addrs[2]).expect("connects");
    assert_eq!(c.call(QUICK), Answer::Answered);

    live.control.act("PowerFail(Broker(3))").expect("ok");
    assert_eq!(c.call(SILENCE), Answer::Silence, "a host without power answers nothing, not even a reset");

    live.control.act("Restart(Broker(3))").expect("ok");
    // The new kernel never had that connection: what the client sends next meets a reset.
    assert!(matches!(c.answer(QUICK), Answer::Closed(_)), "the old connection is reset");
    assert_eq!(Client::connect(&live.addrs[2]).expect("connects").call(QUICK), Answer::Answered);
    live.finish();
}

#[test]
fn a_cut_between_the_clients_and_a_broker_holds_the_traffic_until_it_heals() {
    let live = serve(SCENARIO);
    let mut to_1 = Client::connect(&live.addrs[0]).expect("connects");
    let mut to_3 = Client::connect(&live.addrs[2]).expect("connects");
    assert_eq!(to_3.call(QUICK), Answer::Answered);

    // Real clients stand with the first group: broker 3 is on the other side.
    live.control.act("Partition([[Broker(1), Broker(2)], [Broker(3)]])").expect("ok");
    assert_eq!(to_3.call(SILENCE), Answer::Silence);
    assert_eq!(to_1.call(QUICK), Answer::Answered);
    live.control.act("Heal").expect("ok");
    assert_eq!(to_3.answer(QUICK), Answer::Answered, "held, then delivered when the cut heals");

    live.control.act("Isolate(Broker(1))").expect("ok");
    assert_eq!(to_1.call(SILENCE), Answer::Silence, "an isolated broker is cut off from the clients too");
    assert_eq!(to_3.call(QUICK), Answer::Answered);
    live.control.act("Heal").expect("ok");
    assert_eq!(to_1.answer(QUICK), Answer::Answered);
    live.finish();
}

#[test]
fn the_control_channel_refuses_what_a_timeline_would_refuse_with_the_parsers_words() {
    let live = serve(SCENARIO);
    let typo = live.control.act("Kil(Broker(1))").expect_err("a typo");
    assert!(typo.contains("unknown variant `Kil`") && typo.contains("PowerFail"), "{typo}");
    let unknown = live.control.act("Pause(Broker(9))").expect_err("no such broker");
    assert!(unknown.contains("unknown broker 9"), "{unknown}");
    let unclosed = live.control.act("Kill(Broker(1)").expect_err("unclosed");
    assert!(unclosed.starts_with("column "), "{unclosed}");
    let outcome = live.finish();
    assert!(!outcome.trace.events.iter().any(|e| matches!(e.kind, EventKind::Fault(_))), "nothing applied");
}

#[test]
fn the_timeline_runs_in_real_time_while_clients_are_connected() {
    let live = serve(
        r#"Scenario(
    title: "live timeline",
    duration_ms: 60000,
    cluster: (brokers: [1, 2, 3]),
    topics: [(name: "orders", partitions: 1, replication_factor: 3)],
    timeline: [
        (at_ms: 300, action: Kill(Broker(1))),
        (at_ms: 900, action: Restart(Broker(1))),
    ],
    narration: [(at_ms: 300, text: "Broker 1 dies.")],
)"#,
    );
    let mut c = Client::connect(&live.addrs[0]).expect("connects before the kill");
    let started = Instant::now();
    assert_eq!(c.call(QUICK), Answer::Answered);
    std::thread::sleep(Duration::from_millis(500).saturating_sub(started.elapsed()));
    assert!(matches!(c.call(QUICK), Answer::Closed(_)), "killed at 300 ms");
    let deadline = Instant::now() + QUICK;
    let mut reopened = loop {
        if let Ok(c) = Client::connect(&live.addrs[0]) {
            break c;
        }
        assert!(Instant::now() < deadline, "restarted at 900 ms");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reopened.call(QUICK), Answer::Answered);
    let outcome = live.finish();
    let at = |fault: Fault| {
        outcome.trace.events.iter().find(|e| matches!(&e.kind, EventKind::Fault(f) if *f == fault)).map(|e| e.time_us)
    };
    let killed = at(Fault::Kill(NodeId::Broker(1))).expect("killed");
    let restarted = at(Fault::Restart(NodeId::Broker(1))).expect("restarted");
    assert!((300_000..800_000).contains(&killed), "at 300 ms of real time: {killed} µs");
    assert!((900_000..1_500_000).contains(&restarted), "at 900 ms: {restarted} µs");
    assert!(outcome.trace.events.iter().any(|e| matches!(&e.kind, EventKind::Narration(t) if t == "Broker 1 dies.")));
}
