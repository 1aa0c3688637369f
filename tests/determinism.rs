//! Determinism: the same scenario and seed give the same trace; other seeds give other traces;
//! a what-if branch replays the original exactly up to the moment of its fault.

use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::Fault;
use ksim_sim::RunOptions;
use std::path::Path;

fn leader_failover() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/leader-failover.ron");
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let scenario = leader_failover();
    let a = ksim_sim::run(&scenario, "leader-failover", 7).unwrap().trace;
    let b = ksim_sim::run(&scenario, "leader-failover", 7).unwrap().trace;
    let c = ksim_sim::run(&scenario, "leader-failover", 8).unwrap().trace;
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a.digest(), b.digest());
    assert_ne!(a.digest(), c.digest(), "seeds 7 and 8 should draw different latencies");
}

#[test]
fn the_digest_hashes_the_binary_encoding() {
    // The digest streams the trace's binary encoding through the hash; it must equal hashing the
    // encoding whole.
    let trace = ksim_sim::run(&leader_failover(), "leader-failover", 7).unwrap().trace;
    let whole = format!("{:016x}", ksim_sim::rng::fnv1a64(&ksim_sim::digest::encode(&trace)));
    assert_eq!(trace.digest(), whole);
}

#[test]
fn what_if_replays_the_past_exactly() {
    let scenario = leader_failover();
    let original = ksim_sim::run(&scenario, "leader-failover", 42).unwrap().trace;
    let at = SimTime::from_ms(12_345);
    let options = RunOptions { extra_faults: vec![(at, Fault::Kill(NodeId::Broker(2)))], ..RunOptions::default() };
    let branch = ksim_sim::run_with(&scenario, "leader-failover", 42, &options).unwrap().trace;
    let before = |t: &ksim_sim::Trace| t.events.iter().filter(|e| e.time_us < at.0).cloned().collect::<Vec<_>>();
    let past = before(&original);
    assert!(past.len() > 100, "the scenario has a past before {at}");
    assert_eq!(past, before(&branch), "a what-if must not change anything before its fault");
    assert_ne!(original.digest(), branch.digest(), "the fault changes the future");
    let fault = branch.events.iter().find(|e| e.time_us >= at.0).expect("events after the fault");
    assert_eq!(fault.kind, ksim_sim::trace::EventKind::Fault(Fault::Kill(NodeId::Broker(2))));
}

/// A fuzz seed ends once its cluster has converged, but only by looking: every event before its
/// end is the one the full-length run (what `ksim run` replays from the seed's scenario) records.
#[test]
fn a_fuzz_run_that_ends_once_converged_is_a_prefix_of_the_full_run() {
    let base = leader_failover();
    let seed = 3;
    let scenario = ksim_sim::fuzz::with_random_faults(&base, seed);
    let full = ksim_sim::run(&scenario, "leader-failover", seed).unwrap();
    let options = RunOptions { end_once_converged_from_ms: Some(base.duration_ms), ..RunOptions::default() };
    let early = ksim_sim::run_with(&scenario, "leader-failover", seed, &options).unwrap();
    let recovered = early.recovered_after_ms.expect("leader-failover recovers from its faults");
    assert_eq!(full.recovered_after_ms, None, "a run without the option goes on to its end");
    let last_fault_ms = scenario.last_step_ms();
    assert!(recovered < 60_000, "recovered {recovered} ms after the last fault");
    let end = early.trace.end_time_us();
    assert!(end >= base.duration_ms * 1_000, "not before the base scenario's own end");
    assert!(end < full.trace.end_time_us(), "{end} µs: ended early");
    assert!(end / 1_000 >= last_fault_ms + recovered);
    // Up to the narration that says the run ends, the two traces are the same events.
    let said = early
        .trace
        .events
        .iter()
        .position(|e| matches!(&e.kind, ksim_sim::trace::EventKind::Narration(t) if t.contains("the run ends here")))
        .expect("the early end is narrated");
    assert!(said > 1_000, "a real run before the end: {said} events");
    assert_eq!(early.trace.events[..said], full.trace.events[..said]);
    assert_eq!(early.report.findings.is_empty(), full.report.findings.is_empty());
}
