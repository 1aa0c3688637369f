//! Timers as the trace reports them: a timer fires only if the state machine left it set.

use ksim_cluster::timer::Timer;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::EventKind;

/// A lone in-sync leader answers an `acks=all` produce in the step that parks it: its
/// DelayedProduce timer is set and cancelled in that one step. Applied in emission order the
/// cancel wins; applied cancels-first (ksim before this test) the timer stayed live and the trace
/// reported "delayed produce #N expired" 30 s after the produce had been answered.
#[test]
fn lone_in_sync_leader_acks_all_produce_leaves_no_expiry_behind() {
    let text = r#"Scenario(
        title: "lone leader",
        duration_ms: 45000,
        cluster: (brokers: [1]),
        topics: [(name: "t", partitions: 1, replication_factor: 1)],
        clients: [(name: "producer", app: Producer(topic: "t", records: 3, interval_ms: 500),
                   configs: {"acks": "all"}, start_ms: 2000)],
    )"#;
    let scenario = Scenario::parse("lone-leader.ron", text).expect("parses");
    let outcome = ksim_sim::run(&scenario, "lone-leader", 1).expect("runs");
    let acked = outcome
        .trace
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Note(ksim_cluster::note::Note::ProduceAcked { .. })))
        .count();
    assert_eq!(acked, 3, "every record is acknowledged");
    let expiries: Vec<String> = outcome
        .trace
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::TimerFired { timer: Timer::DelayedProduceExpiry(_) }))
        .map(|e| format!("{} µs: {:?}", e.time_us, e.kind))
        .collect();
    assert!(expiries.is_empty(), "answered produces expired later: {expiries:?}");
}
