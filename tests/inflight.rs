//! Several produce requests in flight per connection (`max.in.flight.requests.per.connection`),
//! read from the trace: how many wait at once, the sequence numbers they carry, how retries go
//! after a failover, and what a request timeout does to the other requests on its connection.

use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::ApiKey;
use ksim_cluster::timer::Timer;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{DropReason, EventKind, Fault, Trace};
use std::collections::BTreeMap;
use std::path::Path;

fn run(scenario: &Scenario, name: &str) -> Trace {
    let outcome = ksim_sim::run(scenario, name, scenario.seed).expect("runs");
    assert!(outcome.report.passed(), "{}", outcome.report.render());
    outcome.trace
}

fn client(trace: &Trace, name: &str) -> NodeId {
    let index = trace.header.clients.iter().position(|c| c == name).expect("a client of the scenario");
    NodeId::Client(index as u32)
}

/// One Produce request a client sent, from its summary (`Produce payments-0 acks=all 3
/// record(s) pid=1000 seq=69`).
#[derive(Debug)]
struct Sent {
    /// Its place in the trace.
    index: usize,
    time_us: u64,
    to: NodeId,
    records: i32,
    sequence: i32,
}

fn parse(summary: &str) -> (i32, i32) {
    let words: Vec<&str> = summary.split_whitespace().collect();
    let records = words.iter().position(|w| *w == "record(s)").map(|i| words[i - 1].parse().expect("a count"));
    let sequence = words.iter().find_map(|w| w.strip_prefix("seq=")).map(|s| s.parse().expect("a sequence"));
    (records.expect("a record count"), sequence.unwrap_or(-1))
}

/// The Produce requests `client` sent, in order, and the ids of the Produce responses sent to it.
fn produce_traffic(trace: &Trace, client: NodeId) -> (Vec<Sent>, BTreeMap<u64, NodeId>) {
    let mut sent = Vec::new();
    let mut responses = BTreeMap::new();
    for (index, e) in trace.events.iter().enumerate() {
        if let EventKind::Send { id, to, api: ApiKey::Produce, request, summary } = &e.kind {
            if *request && e.node() == Some(client) {
                let (records, sequence) = parse(summary);
                sent.push(Sent { index, time_us: e.time_us, to: *to, records, sequence });
            } else if !*request && *to == client {
                responses.insert(*id, e.node().expect("a broker answers"));
            }
        }
    }
    (sent, responses)
}

/// Produce requests sent minus Produce responses delivered, after each event until `until_us`:
/// the most that waited at once (only meaningful while none fails).
fn most_in_flight(trace: &Trace, client: NodeId, until_us: u64) -> usize {
    let (_, responses) = produce_traffic(trace, client);
    let (mut now, mut most) = (0usize, 0usize);
    for e in trace.events.iter().take_while(|e| e.time_us < until_us) {
        match &e.kind {
            EventKind::Send { api: ApiKey::Produce, request: true, .. } if e.node() == Some(client) => now += 1,
            EventKind::Deliver { id, .. } if responses.contains_key(id) => now -= 1,
            _ => {}
        }
        most = most.max(now);
    }
    most
}

/// inflight-batches-under-latency: 150 ms each way to the brokers, a record every 50 ms. Before
/// the leader dies, five requests wait at once (the default max.in.flight, which idempotence
/// allows); each new batch takes the next sequence numbers. After the failover the batches that
/// were in flight go to the new leader one at a time, lowest sequence first, each only once the
/// previous one was answered (`RecordAccumulator.shouldStopDrainBatchesForPartition`).
#[test]
fn idempotent_producer_under_latency_keeps_five_in_flight_and_retries_one_at_a_time_in_sequence_order() {
    let scenario = Scenario::load(Path::new("scenarios/inflight-batches-under-latency.ron")).expect("loads");
    let trace = run(&scenario, "inflight-batches-under-latency");
    let producer = client(&trace, "producer");
    let kill_us = trace
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Fault(Fault::Kill(NodeId::Broker(1)))))
        .map(|e| e.time_us)
        .expect("broker 1 is killed");
    assert_eq!(most_in_flight(&trace, producer, kill_us), 5, "five requests wait at once");

    // New batches are numbered one after another; a resend keeps the numbers it had.
    let (sent, responses) = produce_traffic(&trace, producer);
    let mut next = 0;
    let mut retried = Vec::new();
    for s in &sent {
        if s.sequence == next {
            next += s.records;
        } else {
            assert!(s.sequence < next, "sequence {} skips ahead of {next}", s.sequence);
            retried.push(s);
        }
    }
    assert!(!retried.is_empty());

    // To the new leader, the batches in flight at the failover go in sequence order, each sent
    // only after broker 2 answered the one before.
    let to_new_leader: Vec<&Sent> = retried.iter().copied().filter(|s| s.to == NodeId::Broker(2)).collect();
    assert!(to_new_leader.len() >= 2, "{to_new_leader:?}");
    assert!(to_new_leader.windows(2).all(|w| w[0].sequence < w[1].sequence), "{to_new_leader:?}");
    for w in to_new_leader.windows(2) {
        let answered = trace.events[w[0].index..w[1].index]
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Deliver { id, .. } if responses.get(id) == Some(&NodeId::Broker(2))));
        assert!(answered, "sequence {} went before {} was answered", w[1].sequence, w[0].sequence);
    }
}

/// A request timeout closes its connection (`NetworkClient.handleTimedOutRequests`): the other
/// requests on it fail too, and the broker's answers to them find no connection. Broker 1 pauses
/// (a long GC pause) with five of the producer's requests in its socket buffer; the first times
/// out after request.timeout.ms=1000; when the broker resumes and answers all five, every answer
/// is dropped, none delivered to a producer that gave up on them.
#[test]
fn a_request_timeout_closes_the_connection_and_the_answers_to_its_other_requests_go_nowhere() {
    let scenario = Scenario::parse(
        "paused-leader.ron",
        r#"Scenario(
            title: "A paused leader and a producer with five requests in flight",
            seed: 3,
            duration_ms: 12000,
            cluster: (brokers: [1]),
            topics: [(name: "payments", partitions: 1, replication_factor: 1, replicas: [[1]])],
            clients: [(
                name: "producer",
                app: Producer(topic: "payments", records: 60, interval_ms: 50),
                configs: {"acks": "all", "request.timeout.ms": 1000},
                start_ms: 2000,
            )],
            timeline: [
                (at_ms: 1000, action: SlowLink(Client("producer"), Broker(1), 150)),
                (at_ms: 3000, action: Pause(Broker(1))),
                (at_ms: 4500, action: Resume(Broker(1))),
            ],
            expect: [Never(Duplicate), Never(Reordered), Finally(Acked("producer", 60))],
        )"#,
    )
    .expect("parses");
    let trace = run(&scenario, "paused-leader");
    let producer = client(&trace, "producer");
    let timeout_us = trace
        .events
        .iter()
        .find(|e| {
            e.node() == Some(producer) && matches!(e.kind, EventKind::TimerFired { timer: Timer::RequestTimeout(_) })
        })
        .map(|e| e.time_us)
        .expect("a request times out");
    let waiting = most_in_flight(&trace, producer, timeout_us);
    assert_eq!(waiting, 5, "five requests wait on the paused broker");

    // Every answer broker 1 sends after the timeout to a request sent before it is dropped.
    let (sent, responses) = produce_traffic(&trace, producer);
    let before = sent.iter().filter(|s| s.time_us < timeout_us).count();
    let answers_after: Vec<u64> = trace
        .events
        .iter()
        .filter(|e| e.time_us > timeout_us)
        .filter_map(|e| match &e.kind {
            EventKind::Send { id, .. } if responses.contains_key(id) => Some(*id),
            _ => None,
        })
        .take(waiting)
        .collect();
    assert_eq!(answers_after.len(), waiting);
    assert!(before >= waiting);
    for id in &answers_after {
        let dropped = trace
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Drop { id: d, reason: DropReason::ConnectionClosed, .. } if d == *id));
        assert!(dropped, "the answer #{id} to an abandoned request was delivered");
    }
}
