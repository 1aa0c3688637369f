//! `cargo bench`: how fast ksim simulates, and how cost grows with cluster size and load.
//!
//! Prints figures rather than asserting them: this machine is shared and noisy, so ratios
//! (events per second, virtual seconds per wall second) matter more than any one number.
//! Targets (issue 5): the leader-failover walkthrough in under 50 ms of wall time; at least 1000x
//! real time on the standard scenarios; at least a million events per second per core in the
//! protocol core alone; cost linear in records.

use ksim_cluster::broker::{Broker, BrokerDisk};
use ksim_cluster::config::BrokerConfig;
use ksim_cluster::effects::{Effects, Input, StateMachine};
use ksim_cluster::metadata::MetadataRecord;
use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::*;
use ksim_cluster::record::{Record, RecordBatch};
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::TopicPartition;
use ksim_sim::scenario::{App, Client, Cluster, Network, Scenario, Topic};
use rand_chacha::rand_core::SeedableRng;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Measure {
    events: usize,
    virtual_s: f64,
    wall_s: f64,
}

fn measure(scenario: &Scenario, name: &str, seed: u64) -> Measure {
    let started = Instant::now();
    let outcome = ksim_sim::run(scenario, name, seed).expect("scenario runs");
    let wall_s = started.elapsed().as_secs_f64();
    Measure { events: outcome.trace.events.len(), virtual_s: outcome.trace.end_time_us() as f64 / 1e6, wall_s }
}

fn standard_scenarios() -> (String, f64) {
    println!("== standard scenarios (one run each, seed from the file)");
    println!("{:<36} {:>8} {:>9} {:>9} {:>12} {:>10}", "scenario", "events", "virtual", "wall", "events/s", "speed-up");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("scenarios/").map(|e| e.expect("entry").path()).collect();
    files.sort();
    let (mut total_events, mut total_virtual, mut total_wall) = (0usize, 0.0, 0.0);
    let mut slowest_speedup = f64::INFINITY;
    let mut slowest_name = String::new();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "ron")) {
        let scenario = Scenario::load(path).expect("loads");
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let m = measure(&scenario, &name, scenario.seed);
        let speedup = m.virtual_s / m.wall_s;
        if speedup < slowest_speedup {
            slowest_speedup = speedup;
            slowest_name = name.clone();
        }
        println!(
            "{:<36} {:>8} {:>8.1}s {:>7.1}ms {:>12.0} {:>9.0}x",
            name,
            m.events,
            m.virtual_s,
            m.wall_s * 1000.0,
            m.events as f64 / m.wall_s,
            speedup
        );
        total_events += m.events;
        total_virtual += m.virtual_s;
        total_wall += m.wall_s;
    }
    println!(
        "all: {total_events} events, {:.0} events/s, {:.0}x real time overall, slowest scenario {:.0}x (target >= 1000x)",
        total_events as f64 / total_wall,
        total_virtual / total_wall,
        slowest_speedup
    );
    (slowest_name, slowest_speedup)
}

fn leader_failover_walkthrough() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/leader-failover.ron");
    let scenario = Scenario::load(&path).expect("loads");
    let mut walls: Vec<f64> =
        (0..7).map(|_| measure(&scenario, "leader-failover", scenario.seed).wall_s * 1000.0).collect();
    walls.sort_by(f64::total_cmp);
    println!(
        "== leader-failover walkthrough: median {:.1} ms over 7 runs (min {:.1}, max {:.1}; target < 50 ms)",
        walls[3], walls[0], walls[6]
    );
    let started = Instant::now();
    let seeds = 40;
    for seed in 0..seeds {
        ksim_sim::run(&scenario, "leader-failover", seed).expect("runs");
    }
    let per_s = seeds as f64 / started.elapsed().as_secs_f64();
    println!("== seeds per second on one core (leader-failover, {seeds} seeds): {per_s:.1}");
}

/// A generated scenario: `brokers` brokers, one topic with `partitions` partitions (RF 3) and a
/// producer writing `records` records, 1 ms apart.
fn generated(brokers: i32, partitions: i32, records: u64) -> Scenario {
    let duration_ms = 5_000 + records + 2_000;
    Scenario {
        title: format!("{brokers} brokers, {partitions} partitions, {records} records"),
        description: String::new(),
        seed: 1,
        duration_ms,
        cluster: Cluster {
            brokers: (1..=brokers).collect(),
            racks: BTreeMap::new(),
            kafka_version: None,
            configs: [("auto.leader.rebalance.enable".to_string(), ksim_sim::scenario::ConfigValue::Bool(false))]
                .into(),
            quorum: None,
        },
        network: Network::default(),
        topics: vec![Topic {
            name: "load".into(),
            partitions,
            replication_factor: 3.min(brokers as usize),
            replicas: Vec::new(),
            configs: BTreeMap::new(),
        }],
        clients: vec![Client {
            name: "producer".into(),
            app: App::Producer {
                topic: "load".into(),
                records,
                interval_ms: 1,
                keys: (0..64).map(|k| format!("k{k}")).collect(),
                value_prefix: "v".into(),
                tombstones: Vec::new(),
            },
            library: Default::default(),
            configs: BTreeMap::new(),
            start_ms: 5_000,
        }],
        timeline: Vec::new(),
        narration: Vec::new(),
        expect: Vec::new(),
        fuzz: None,
        converge_within_ms: None,
        connect: None,
        overrides: Vec::new(),
    }
}

fn scaling() {
    println!("== scaling (generated scenarios; one run each)");
    println!("{:<40} {:>9} {:>9} {:>12} {:>12}", "shape", "events", "wall", "events/s", "µs/record");
    let shapes: &[(i32, i32, u64)] = &[
        (3, 1, 1_000),
        (3, 1, 10_000),
        (3, 1, 100_000),
        (3, 10, 10_000),
        (3, 100, 10_000),
        (3, 1000, 10_000),
        (10, 10, 10_000),
        (50, 10, 10_000),
    ];
    for &(brokers, partitions, records) in shapes {
        let scenario = generated(brokers, partitions, records);
        let m = measure(&scenario, "generated", 1);
        println!(
            "{:<40} {:>9} {:>7.0}ms {:>12.0} {:>12.1}",
            scenario.title,
            m.events,
            m.wall_s * 1000.0,
            m.events as f64 / m.wall_s,
            m.wall_s * 1e6 / records as f64
        );
    }
}

/// The protocol core alone: a leader and a follower broker state machine exchanging produce and
/// fetch directly, with no simulator in between.
/// Peak resident memory since the last reset, and a reset: Linux clears VmHWM when "5" is
/// written to `/proc/self/clear_refs`, so one run's peak can be read on its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The figures issue 23 tracks, side by side: cost per event as partitions grow, the whole
/// simulator against the protocol core, fuzzing rates, one large run's memory and the slowest
/// standard scenario.
fn scale_table(core_inputs_per_s: f64, slowest: (String, f64)) {
    println!("== scale (issue 23): 5 brokers, RF 3, 10,000 acks=all records 1 ms apart, broker 1 killed at 8 s");
    println!("{:<14} {:>9} {:>9} {:>11} {:>10}", "partitions", "events", "wall", "µs/event", "vs 1");
    let mut first = None;
    let mut whole_events_per_s = 0.0;
    let limit: i32 = std::env::var("KSIM_BENCH_MAX_PARTITIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    for partitions in [1, 100, 1_000, 10_000].into_iter().filter(|&p| p <= limit) {
        let mut scenario = generated(5, partitions, 10_000);
        scenario.timeline.push(ksim_sim::scenario::Step {
            at_ms: 8_000,
            action: ksim_sim::scenario::Action::Kill(ksim_sim::scenario::NodeRef::Broker(1)),
        });
        let m = measure(&scenario, "generated", 1);
        let per_event = m.wall_s * 1e6 / m.events as f64;
        let base = *first.get_or_insert(per_event);
        if partitions == 1 {
            whole_events_per_s = m.events as f64 / m.wall_s;
        }
        println!(
            "{:<14} {:>9} {:>7.0}ms {:>11.2} {:>9.1}x",
            partitions,
            m.events,
            m.wall_s * 1000.0,
            per_event,
            per_event / base
        );
    }
    if limit < 10_000 {
        println!("(10,000 partitions: KSIM_BENCH_MAX_PARTITIONS=10000 cargo bench --bench ksim)");
    }
    println!(
        "whole simulator vs protocol core: {:.0} k events/s vs {:.2} M inputs/s = {:.0}% (goal >= 50%)",
        whole_events_per_s / 1e3,
        core_inputs_per_s / 1e6,
        100.0 * whole_events_per_s / core_inputs_per_s
    );
    for (name, seeds) in [("leader-failover", 100), ("eager-vs-cooperative", 10), ("consumer-dies", 20)] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.ron"));
        let scenario = Scenario::load(&path).expect("loads");
        let started = Instant::now();
        let mut failing = 0;
        for seed in 0..seeds {
            let (outcome, _) = ksim_sim::fuzz::run_seed(&scenario, name, seed).expect("seed runs");
            failing += usize::from(outcome.fails(false));
        }
        let per_s = seeds as f64 / started.elapsed().as_secs_f64();
        println!(
            "fuzzing {name}: {per_s:.1} seeds/s on one core ({seeds} seeds, {failing} failing; goal {})",
            if name == "leader-failover" { ">= 200" } else { ">= 50" }
        );
    }
    reset_peak_rss();
    let scenario = generated(3, 1, 1_000_000);
    // About 5.4 events per record: past the default cap of 5 million.
    let options = ksim_sim::RunOptions { max_events: Some(20_000_000), ..Default::default() };
    let started = Instant::now();
    let outcome = ksim_sim::run_with(&scenario, "generated", 1, &options).expect("scenario runs");
    let m = Measure {
        events: outcome.trace.events.len(),
        virtual_s: outcome.trace.end_time_us() as f64 / 1e6,
        wall_s: started.elapsed().as_secs_f64(),
    };
    let digest = trace_digest(&outcome.trace);
    drop(outcome);
    println!(
        "10^6 records, 1 partition: {} events in {:.1} s ({:.0}x real time), peak memory {:.0} MiB (goal <= 300 MiB), {:.0} bytes per event (peak memory / events; an Event is {} bytes inline)",
        m.events,
        m.wall_s,
        m.virtual_s / m.wall_s,
        peak_rss_mib(),
        peak_rss_mib() * 1024.0 * 1024.0 / m.events as f64,
        std::mem::size_of::<ksim_sim::trace::Event>()
    );
    println!("{digest}");
    println!("slowest standard scenario: {} at {:.0}x real time (goal >= 5,000x)", slowest.0, slowest.1);
}

/// The trace digest's cost per event: the binary encoding it hashes (issue 23) against the JSON
/// lines it hashed before, both streamed into the same FNV-1a hash.
fn trace_digest(trace: &ksim_sim::Trace) -> String {
    let started = Instant::now();
    let digest = trace.digest();
    let binary_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut hasher = ksim_sim::rng::Fnv1a64::default();
    serde_json::to_writer(&mut hasher, &trace.header).expect("header serializes");
    for event in &trace.events {
        serde_json::to_writer(&mut hasher, event).expect("event serializes");
    }
    let json_s = started.elapsed().as_secs_f64();
    let events = trace.events.len() as f64;
    format!(
        "trace digest ({digest}): binary {:.0} ns/event vs JSON {:.0} ns/event ({:.1}x faster), {:.1} vs {:.1} bytes hashed per event",
        binary_s * 1e9 / events,
        json_s * 1e9 / events,
        json_s / binary_s,
        ksim_sim::digest::encode(&trace.events[..trace.events.len().min(100_000)]).len() as f64
            / events.min(100_000.0),
        trace.events.iter().take(100_000).map(|e| serde_json::to_string(e).expect("serializes").len() + 1).sum::<usize>()
            as f64
            / events.min(100_000.0)
    )
}

fn protocol_core() -> f64 {
    let config = BrokerConfig::default();
    let controller = NodeId::Controller(3000);
    let mut leader = Broker::new(1, config.clone(), None, controller, 1, BrokerDisk::default());
    let mut follower = Broker::new(2, config, None, controller, 1, BrokerDisk::default());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let tp = TopicPartition::new("t", 0);
    let now = SimTime::from_ms(1);
    let mut inputs = 0u64;
    let mut step = |broker: &mut Broker, input: Input, fx: &mut Effects| {
        fx.clear();
        broker.handle(now, input, &mut rng, fx);
    };
    let mut fx = Effects::default();
    // Register both, then feed them the metadata records that make 1 leader and 2 follower.
    for (broker, epoch) in [(&mut leader, 0i64), (&mut follower, 1)] {
        step(broker, Input::Start, &mut fx);
        let id = fx.sends.iter().find_map(|(_, m)| match m {
            Message::Request { correlation_id, body: Request::BrokerRegistration(_) } => Some(*correlation_id),
            _ => None,
        });
        let body = Response::BrokerRegistration(BrokerRegistrationResponse {
            error: ksim_cluster::ErrorCode::None,
            broker_epoch: epoch,
        });
        step(
            broker,
            Input::Message { from: controller, message: Message::Response { correlation_id: id.unwrap(), body } },
            &mut fx,
        );
        let fetch = fx.sends.iter().find_map(|(_, m)| match m {
            Message::Request { correlation_id, body: Request::MetadataFetch(_) } => Some(*correlation_id),
            _ => None,
        });
        let records = vec![
            MetadataRecord::RegisterBroker { broker_id: 1, broker_epoch: 0, incarnation: 1, rack: None },
            MetadataRecord::RegisterBroker { broker_id: 2, broker_epoch: 1, incarnation: 1, rack: None },
            MetadataRecord::UnfenceBroker { broker_id: 1, broker_epoch: 0 },
            MetadataRecord::UnfenceBroker { broker_id: 2, broker_epoch: 1 },
            MetadataRecord::Topic { name: "t".into(), partitions: 1, config: Default::default() },
            MetadataRecord::Partition {
                partition: tp.clone(),
                replicas: vec![1, 2],
                isr: vec![1, 2],
                elr: vec![],
                last_known_leader: None,
                leader: Some(1),
                leader_epoch: 0,
                partition_epoch: 0,
                election: None,
            },
        ];
        let body = Response::MetadataFetch(MetadataFetchResponse { records, base_offset: 0 });
        step(
            broker,
            Input::Message { from: controller, message: Message::Response { correlation_id: fetch.unwrap(), body } },
            &mut fx,
        );
    }
    let started = Instant::now();
    let rounds = 200_000u64;
    let mut follower_offset = 0i64;
    for n in 0..rounds {
        // A producer appends one record (acks=1)...
        let batch = RecordBatch::new_unassigned(-1, -1, -1, 0, vec![Record::unkeyed(format!("v{n}"))]);
        let body = Request::Produce(ProduceRequest {
            acks: ksim_cluster::config::Acks::Leader,
            timeout_ms: 30_000,
            partition: tp.clone(),
            batch,
            transactional_id: None,
            transaction_v2: false,
        });
        step(
            &mut leader,
            Input::Message { from: NodeId::Client(0), message: Message::Request { correlation_id: n, body } },
            &mut fx,
        );
        // ...the follower fetches it and appends it.
        let body = Request::Fetch(FetchRequest {
            replica: Some((2, 1)),
            max_wait_ms: 0,
            session: Default::default(),
            forgotten: Vec::new(),
            partitions: vec![FetchPartition {
                partition: tp.clone(),
                fetch_offset: follower_offset,
                current_leader_epoch: 0,
            }],
            isolation_level: Default::default(),
        });
        step(
            &mut leader,
            Input::Message { from: NodeId::Broker(2), message: Message::Request { correlation_id: n, body } },
            &mut fx,
        );
        let response = fx.sends.iter().find_map(|(_, m)| match m {
            Message::Response { body: Response::Fetch(r), .. } => Some(r.clone()),
            _ => None,
        });
        if let Some(r) = response {
            follower_offset += r.partitions.iter().flat_map(|p| p.batches.iter()).map(|b| b.len()).sum::<i64>();
            let _ = r;
        }
        inputs += 2;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_s = inputs as f64 / elapsed;
    println!(
        "== protocol core alone: {inputs} inputs in {:.0} ms = {:.2} million inputs/s on one core (target >= 1); follower at offset {follower_offset}",
        elapsed * 1000.0,
        inputs as f64 / elapsed / 1e6
    );
    per_s
}

fn main() {
    // `cargo test` runs benches in test mode with --bench absent; keep that fast.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("ksim benchmark (release build; figures vary with machine load)");
    let core = protocol_core();
    leader_failover_walkthrough();
    let slowest = standard_scenarios();
    scaling();
    println!("== peak memory (VmHWM) so far: {:.0} MiB", peak_rss_mib());
    scale_table(core, slowest);
}
