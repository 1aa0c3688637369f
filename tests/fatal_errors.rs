//! Errors the Java consumer does not retry: the broker's answer is in the trace, the member stops
//! taking part in its group, and the application's `poll` throws, which stops it.

use ksim_sim::narrate::{render, Detail};
use ksim_sim::scenario::Scenario;

/// A group member with `session.timeout.ms=5000`, below the broker's `group.min.session.timeout.ms`
/// (6 s). The Java client accepts the setting (ConsumerConfig has no validator for it); the
/// coordinator answers its JoinGroup with INVALID_SESSION_TIMEOUT (GroupCoordinatorService
/// .joinGroup), which `AbstractCoordinator` treats as fatal: `poll()` throws
/// InvalidSessionTimeoutException and the application, which does not catch it, stops.
#[test]
fn a_session_timeout_below_the_brokers_minimum_stops_the_consumer() {
    let text = r#"Scenario(
        title: "session timeout too short",
        duration_ms: 30000,
        cluster: (brokers: [1, 2, 3], configs: {"offsets.topic.num.partitions": 1}),
        topics: [(name: "t", partitions: 1, replication_factor: 3)],
        clients: [
            (name: "p", app: Producer(topic: "t", records: 5, interval_ms: 100), start_ms: 2000),
            (name: "c", app: GroupConsumer(topics: ["t"]), configs: {"group.id": "g", "session.timeout.ms": 5000},
             start_ms: 3000),
        ],
    )"#;
    let scenario = Scenario::from_text("short-session.ron", text).expect("the client accepts it");
    let outcome = ksim_sim::run(&scenario, "short-session", 1).expect("runs");
    let story = render(&outcome.trace, Detail::Story);
    let failed = story
        .lines()
        .position(|l| l.contains("JoinGroup to group g failed with INVALID_SESSION_TIMEOUT, which is fatal"))
        .unwrap_or_else(|| panic!("no fatal JoinGroup in the story:\n{story}"));
    let stopped = story
        .lines()
        .position(|l| {
            l.contains(
                "poll() threw INVALID_SESSION_TIMEOUT, a fatal error; the application does not catch it and stops",
            )
        })
        .unwrap_or_else(|| panic!("the application did not stop:\n{story}"));
    assert!(failed < stopped, "{story}");
    let full = render(&outcome.trace, Detail::Full);
    let joins = full.lines().filter(|l| l.contains(" c ") && l.contains("JoinGroup")).count();
    assert!(!story.contains("consumed"), "the consumer never read anything:\n{story}");
    assert!(joins >= 1, "{full}");
    let answers = full.lines().filter(|l| l.contains("INVALID_SESSION_TIMEOUT") && l.contains("-> c")).count();
    assert_eq!(answers, 1, "one JoinGroup, refused, never retried:\n{full}");
}
