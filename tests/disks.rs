//! Disks as Linux keeps them: the kernel writes the page cache back on its own schedule, per
//! host, whether the broker process runs or not.

use ksim_cluster::note::Note;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::EventKind;

fn run(text: &str) -> ksim_sim::Trace {
    let scenario = Scenario::parse("disks.ron", text).expect("parses");
    ksim_sim::run(&scenario, "disks", 5).expect("runs").trace
}

/// A killed broker's page cache survives the crash, and its host's kernel still writes it back:
/// cutting the power 40 s after the crash (past vm.dirty_expire_centisecs plus a flusher period)
/// loses nothing. Cut it right after the crash and the unflushed writes go.
#[test]
fn the_host_writes_back_a_dead_brokers_page_cache_before_the_power_goes() {
    let scenario = |power_fail_ms: u64| {
        format!(
            r#"Scenario(
                title: "kill, then lose power",
                duration_ms: 80000,
                cluster: (brokers: [1]),
                topics: [(name: "t", partitions: 1, replication_factor: 1)],
                clients: [(name: "producer", app: Producer(topic: "t", records: 20, interval_ms: 100), start_ms: 2000)],
                timeline: [(at_ms: 5000, action: Kill(Broker(1))), (at_ms: {power_fail_ms}, action: PowerFail(Broker(1)))],
            )"#
        )
    };
    let lost = |trace: &ksim_sim::Trace| -> i64 {
        trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Note(Note::Truncated { removed, .. }) => Some(*removed),
                _ => None,
            })
            .sum()
    };
    let late = run(&scenario(45_000));
    assert_eq!(lost(&late), 0, "the kernel wrote the dead broker's pages back before the power went");
    assert!(
        late.events.iter().any(|e| matches!(&e.kind, EventKind::Note(Note::Flushed { .. })) && e.time_us > 5_000_000),
        "written back after the crash"
    );
    let early = run(&scenario(5_100));
    assert!(lost(&early) > 0, "right after the crash the page cache was still unwritten: the power cut loses it");
}
