//! How fast the UI moves through a long trace. Prints figures; asserts nothing (timings on a
//! shared machine are not a test).
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/target-tui cargo bench -p ksim-tui --bench seek
//! ```
//!
//! It builds a synthetic trace of 1,000,000 events shaped like a real run (3 brokers, 8
//! partitions, a producer and a consumer, messages on the fabric, appends, high watermarks,
//! elections, a fault every 50,000 events), then measures:
//! - loading: folding the whole trace once and keeping a checkpoint every 1,024 events;
//! - seek: reaching random steps (the budget is 50 ms);
//! - one step forward / back, `update` plus `view` on a 120x40 `TestBackend` (the budget is one
//!   frame, 16 ms);
//! - `]`: jumping to the next interesting event, plus `view`.

use ksim_cluster::log::TruncateReason;
use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::protocol::ApiKey;
use ksim_cluster::topic::TopicPartition;
use ksim_sim::scenario::CONTROLLER_ID;
use ksim_sim::trace::{Actor, Event, EventKind, Fault, Trace, TraceHeader};
use ksim_tui::model::Model;
use ksim_tui::recording::Recording;
use ksim_tui::update::{update, Msg};
use ksim_tui::view::view;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

const EVENTS: usize = 1_000_000;
const PARTITIONS: i32 = 8;

/// A small deterministic generator (xorshift), so every run of the bench sees the same trace.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Builder {
    events: Vec<Event>,
    time_us: u64,
}

impl Builder {
    fn push(&mut self, node: NodeId, kind: EventKind) {
        let seq = self.events.len() as u64;
        self.events.push(Event { seq, time_us: self.time_us, actor: Actor::Node(node), kind });
    }
}

fn synthetic_trace() -> Trace {
    let header = TraceHeader {
        scenario: "synthetic".into(),
        title: "A million events".into(),
        seed: 1,
        brokers: vec![1, 2, 3],
        clients: vec!["producer".into(), "consumer".into()],
        duration_ms: 10_000_000,
        racks: Default::default(),
        overrides: Vec::new(),
    };
    let controller = NodeId::Controller(CONTROLLER_ID);
    let producer = NodeId::Client(0);
    let consumer = NodeId::Client(1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut b = Builder { events: Vec::with_capacity(EVENTS + 64), time_us: 0 };
    for id in 1..=3 {
        b.push(controller, EventKind::Note(Note::BrokerRegistered { broker: id, broker_epoch: id as i64 }));
        b.push(controller, EventKind::Note(Note::BrokerUnfenced { broker: id }));
    }
    let assignment: Vec<Vec<i32>> = (0..PARTITIONS).map(|p| (0..3).map(|r| (p + r) % 3 + 1).collect()).collect();
    b.push(controller, EventKind::Note(Note::TopicCreated { topic: "bench".into(), assignment: assignment.clone() }));
    let mut leaders: Vec<i32> = assignment.iter().map(|r| r[0]).collect();
    let mut epochs = vec![0; PARTITIONS as usize];
    let mut leo = vec![[0i64; 4]; PARTITIONS as usize];
    for (p, replicas) in assignment.iter().enumerate() {
        let partition = TopicPartition::new("bench", p as i32);
        b.push(
            controller,
            EventKind::Note(Note::PartitionChanged {
                partition,
                leader: Some(replicas[0]),
                leader_epoch: 0,
                isr: replicas.clone(),
                elr: vec![],
                partition_epoch: 0,
                election: Some(ElectionKind::Clean),
            }),
        );
    }
    let mut next_id = 1u64;
    let mut in_flight: std::collections::VecDeque<(u64, NodeId, NodeId)> = Default::default();
    while b.events.len() < EVENTS {
        b.time_us += rng.below(200);
        let p = rng.below(PARTITIONS as u64) as usize;
        let partition = TopicPartition::new("bench", p as i32);
        let leader = leaders[p];
        match rng.below(100) {
            // Messages: a request on the wire; the oldest arrives.
            0..=39 => {
                let from = [producer, consumer, NodeId::Broker(1), NodeId::Broker(2), NodeId::Broker(3)]
                    [rng.below(5) as usize];
                let to = NodeId::Broker(leader);
                let api = [ApiKey::Produce, ApiKey::Fetch, ApiKey::Metadata][rng.below(3) as usize];
                b.push(from, EventKind::Send { id: next_id, to, api, request: true, summary: String::new() });
                in_flight.push_back((next_id, from, to));
                next_id += 1;
                if in_flight.len() > 30 {
                    if let Some((id, from, to)) = in_flight.pop_front() {
                        b.push(to, EventKind::Deliver { id, from });
                    }
                }
            }
            // The leader appends, followers copy, the high watermark follows.
            40..=59 => {
                let count = 1 + rng.below(4) as i64;
                let base = leo[p][leader as usize];
                leo[p][leader as usize] += count;
                let note = Note::Appended {
                    partition: partition.clone(),
                    base_offset: base,
                    count,
                    leader_epoch: epochs[p],
                    as_leader: true,
                    transactional: Vec::new(),
                };
                b.push(NodeId::Broker(leader), EventKind::Note(note));
            }
            60..=79 => {
                let follower = assignment[p][1 + rng.below(2) as usize];
                let base = leo[p][follower as usize];
                let count = leo[p][leader as usize] - base;
                if count > 0 {
                    leo[p][follower as usize] += count;
                    let note = Note::Appended {
                        partition: partition.clone(),
                        base_offset: base,
                        count,
                        leader_epoch: epochs[p],
                        as_leader: false,
                        transactional: Vec::new(),
                    };
                    b.push(NodeId::Broker(follower), EventKind::Note(note));
                }
            }
            80..=89 => {
                let hw = assignment[p].iter().map(|r| leo[p][*r as usize]).min().unwrap_or(0);
                b.push(
                    NodeId::Broker(leader),
                    EventKind::Note(Note::HighWatermark {
                        partition: partition.clone(),
                        high_watermark: hw,
                        on_leader: true,
                    }),
                );
            }
            90..=94 => {
                let note = Note::ProduceAcked {
                    send_id: next_id,
                    partition: partition.clone(),
                    offset: leo[p][leader as usize],
                    key: None,
                    value: Some("v".into()),
                };
                b.push(producer, EventKind::Note(note));
            }
            _ => {
                let offset = leo[p][leader as usize];
                b.push(
                    consumer,
                    EventKind::Note(Note::Consumed {
                        partition: partition.clone(),
                        offset,
                        key: None,
                        value: Some("v".into()),
                        headers: Vec::new(),
                        engine: 0,
                    }),
                );
            }
        }
        // Every 50,000 events: a fault, an election, a truncation on the old leader, a narration.
        if b.events.len() % 50_000 < 1 {
            let victim = leaders[p];
            b.push(NodeId::Broker(victim), EventKind::Fault(Fault::Kill(NodeId::Broker(victim))));
            b.push(controller, EventKind::Narration(format!("broker {victim} dies")));
            let next = assignment[p].iter().copied().find(|r| *r != victim).unwrap_or(victim);
            leaders[p] = next;
            epochs[p] += 1;
            b.push(
                controller,
                EventKind::Note(Note::PartitionChanged {
                    partition: partition.clone(),
                    leader: Some(next),
                    leader_epoch: epochs[p],
                    isr: assignment[p].iter().copied().filter(|r| *r != victim).collect(),
                    elr: vec![],
                    partition_epoch: epochs[p],
                    election: Some(ElectionKind::Clean),
                }),
            );
            b.push(NodeId::Broker(victim), EventKind::Fault(Fault::Restart(NodeId::Broker(victim))));
            let to_offset = leo[p][next as usize].min(leo[p][victim as usize]);
            let removed = leo[p][victim as usize] - to_offset;
            leo[p][victim as usize] = to_offset;
            let note = Note::Truncated { partition, to_offset, removed, reason: TruncateReason::DivergedFromLeader };
            b.push(NodeId::Broker(victim), EventKind::Note(note));
        }
    }
    b.events.truncate(EVENTS);
    Trace { header, events: b.events }
}

fn summary(label: &str, mut samples: Vec<Duration>, budget: Duration) {
    samples.sort();
    let n = samples.len().max(1);
    let mean = samples.iter().sum::<Duration>() / n as u32;
    let p50 = samples[n / 2];
    let p99 = samples[(n * 99 / 100).min(n - 1)];
    let max = samples[n - 1];
    let verdict = if max <= budget { "within" } else { "OVER" };
    println!(
        "{label:<44} n={n:<5} mean {:>8.3} ms  p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  ({verdict} the {} ms budget)",
        ms(mean),
        ms(p50),
        ms(p99),
        ms(max),
        budget.as_millis()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let started = Instant::now();
    let trace = synthetic_trace();
    println!("synthetic trace: {} events built in {:.0} ms", trace.events.len(), ms(started.elapsed()));

    let started = Instant::now();
    let recording = Recording::new(trace);
    println!(
        "load (fold all, checkpoints every {}): {:.0} ms; {} interesting events",
        ksim_tui::recording::CHECKPOINT_EVERY,
        ms(started.elapsed()),
        recording.markers.events.len()
    );
    let len = recording.len();
    let mut model = Model::from_recording(recording);
    let mut rng = Rng(42);

    let seeks: Vec<Duration> = (0..1000)
        .map(|_| {
            let step = rng.below(len as u64 + 1) as usize;
            let t = Instant::now();
            model.seek(step);
            t.elapsed()
        })
        .collect();
    summary("seek to a random step", seeks, Duration::from_millis(50));

    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    let mut frame = |model: &Model| {
        let t = Instant::now();
        terminal.draw(|f| view(model, f)).expect("draw");
        t.elapsed()
    };
    let mut timed = |model: &mut Model, msg: fn() -> Msg| {
        let t = Instant::now();
        update(model, msg());
        t.elapsed() + frame(model)
    };

    model.seek(len / 2);
    let forward: Vec<Duration> = (0..2000).map(|_| timed(&mut model, || Msg::Step)).collect();
    summary("step forward: update + view (120x40)", forward, Duration::from_millis(16));
    let back: Vec<Duration> = (0..2000).map(|_| timed(&mut model, || Msg::Back)).collect();
    summary("step back: update + view (120x40)", back, Duration::from_millis(16));
    model.seek(0);
    let jumps: Vec<Duration> = (0..200).map(|_| timed(&mut model, || Msg::NextMarker)).collect();
    summary("] next interesting event: update + view", jumps, Duration::from_millis(50));
    model.seek(len);
    let views: Vec<Duration> = (0..200).map(|_| frame(&model)).collect();
    summary("view alone at the last step (120x40)", views, Duration::from_millis(16));
}
