//! Internal topics a broker creates on a client's first FindCoordinator.

use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{EventKind, Rule};
use std::path::Path;

/// Fuzz seed 51 of exactly-once-consume-transform-produce, shrunk (tests/regressions/): broker 1
/// is down while the pipeline first asks for its group's coordinator, so a broker asks the
/// controller for `__consumer_offsets` (replication factor 3) with only two brokers registered,
/// and the controller refuses it. Each broker asked only once, ever, so every later
/// FindCoordinator got COORDINATOR_NOT_AVAILABLE for 300 s (no-convergence). Kafka asks again at
/// a later FindCoordinator (`AutoTopicCreationManager` only deduplicates requests in flight).
#[test]
fn a_refused_internal_topic_creation_is_asked_for_again() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/offsets-topic-refused-seed-51.ron");
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let outcome = ksim_sim::run(&scenario, "offsets-topic-refused-seed-51", 51).expect("runs");
    let stuck: Vec<String> = outcome
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) if f.rule == Rule::NoConvergence => Some(f.message.clone()),
            _ => None,
        })
        .collect();
    assert!(stuck.is_empty(), "{stuck:?}");
}
