//! Connecting to a broker that is down. A host without power (or cut off) never answers the TCP
//! handshake: the client gives up after `socket.connection.setup.timeout.ms` (10 s) and tries
//! another broker (Kafka's `NetworkClient.handleTimedOutConnections`), where before it waited
//! `request.timeout.ms` (30 s). A live host whose broker process is dead refuses at once.

use ksim_cluster::node::NodeId;
use ksim_cluster::timer::{ClientEngine, Timer};
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{EventKind, Trace};

const PRODUCER: NodeId = NodeId::Client(0);
const START_US: u64 = 3_000_000;

/// Broker 1, the first bootstrap broker, goes down (`fault` at 2.5 s, after the cluster created
/// the topic: ksim creates the scenario's topics once every broker is unfenced) before the
/// producer starts at 3 s; the topic lives on brokers 2 and 3. Returns the trace.
fn run_with_broker_1(fault: &str) -> Trace {
    let text = format!(
        r#"Scenario(
        title: "first bootstrap broker down",
        duration_ms: 40000,
        cluster: (brokers: [1, 2, 3]),
        topics: [(name: "t", partitions: 1, replication_factor: 2, replicas: [[2, 3]])],
        clients: [(name: "producer", app: Producer(topic: "t", records: 3, interval_ms: 500), start_ms: 3000)],
        timeline: [(at_ms: 2500, action: {fault}(Broker(1)))],
    )"#
    );
    let scenario = Scenario::parse("bootstrap-down.ron", &text).expect("parses");
    ksim_sim::run(&scenario, "bootstrap-down", 1).expect("runs").trace
}

/// When the producer's first message reached broker 2 or 3 (µs), if ever.
fn first_delivery_to_another_broker(trace: &Trace) -> Option<u64> {
    let to_producer: Vec<u64> = trace
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Deliver { from: PRODUCER, .. } if matches!(e.node(), Some(NodeId::Broker(2 | 3))) => {
                Some(e.time_us)
            }
            _ => None,
        })
        .collect();
    to_producer.first().copied()
}

fn setup_timeouts(trace: &Trace, broker: i32) -> Vec<u64> {
    trace
        .events
        .iter()
        .filter(|e| {
            matches!(&e.kind, EventKind::TimerFired { timer: Timer::ConnectionSetup(ClientEngine::Producer, b) } if *b == broker)
        })
        .map(|e| e.time_us)
        .collect()
}

#[test]
fn a_powered_off_bootstrap_broker_is_given_up_after_the_setup_timeout() {
    let trace = run_with_broker_1("PowerFail");
    let timeouts = setup_timeouts(&trace, 1);
    let first = *timeouts.first().expect("the connection to broker 1 times out");
    assert!(
        (START_US + 10_000_000..START_US + 10_100_000).contains(&first),
        "gives up on broker 1 ~10 s after starting, not 30 s: {first} µs"
    );
    let told = trace.events.iter().any(|e| {
        e.node() == Some(PRODUCER)
            && matches!(
                e.kind,
                EventKind::Note(ksim_cluster::note::Note::ConnectionSetupTimedOut { broker: 1, timeout_ms: 10_000 })
            )
    });
    assert!(told, "the story says why the producer gave up on broker 1");
    let elsewhere = first_delivery_to_another_broker(&trace).expect("the producer reaches another broker");
    assert!(elsewhere < START_US + 11_000_000, "then asks another broker at once: {elsewhere} µs");
    let acked = trace
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Note(ksim_cluster::note::Note::ProduceAcked { .. })))
        .count();
    assert!(acked > 0, "records are acknowledged: {acked}");
}

#[test]
fn a_killed_broker_on_a_live_host_is_refused_at_once() {
    let trace = run_with_broker_1("Kill");
    assert!(setup_timeouts(&trace, 1).is_empty(), "a reset, not a setup timeout");
    let closed = trace
        .events
        .iter()
        .find(|e| {
            e.node() == Some(PRODUCER) && matches!(e.kind, EventKind::ConnectionClosed { peer: NodeId::Broker(1) })
        })
        .map(|e| e.time_us)
        .expect("broker 1's host resets the connection");
    assert!(closed < START_US + 100_000, "refused within a round trip: {closed} µs");
    let elsewhere = first_delivery_to_another_broker(&trace).expect("the producer reaches another broker");
    assert!(elsewhere < START_US + 1_000_000, "and asks another broker at once: {elsewhere} µs");
}
