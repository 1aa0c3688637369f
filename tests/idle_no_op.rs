//! KIP-835: the active controller of a quorum appends a `NoOpRecord` every
//! `metadata.max.idle.interval.ms` (`QuorumController`'s `writeNoOpRecord` task), so the metadata
//! high watermark moves on an idle cluster; 0 turns it off. The story leaves those commits out and
//! the report counts them.

use ksim_cluster::note::Note;
use ksim_cluster::raft::RaftEvent;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::EventKind;

fn idle_quorum(interval_ms: u64) -> Scenario {
    let text = format!(
        r#"Scenario(
    title: "idle quorum",
    seed: 5,
    duration_ms: 12000,
    cluster: (brokers: [1, 2, 3], configs: {{"metadata.max.idle.interval.ms": {interval_ms}}},
              quorum: (controllers: [3001, 3002, 3003])),
    topics: [(name: "orders", partitions: 1, replication_factor: 3)],
)"#
    );
    Scenario::from_text("idle.ron", &text).expect("valid")
}

/// The highest metadata high watermark a broker learned after `after_ms`.
fn broker_high_watermarks_after(outcome: &ksim_sim::Outcome, after_ms: u64) -> Vec<i64> {
    outcome
        .trace
        .events
        .iter()
        .filter(|e| e.time_us > after_ms * 1000)
        .filter_map(|e| match (&e.kind, e.node()) {
            (EventKind::Note(Note::Quorum(RaftEvent::HighWatermark { high_watermark, .. })), Some(n))
                if n.broker_id().is_some() =>
            {
                Some(*high_watermark)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn an_idle_quorum_keeps_committing_no_ops_every_interval() {
    let s = idle_quorum(500);
    let outcome = ksim_sim::run(&s, "idle", s.seed).expect("runs");
    assert!(outcome.report.passed(), "{}", outcome.report.render());
    let (entries, no_ops) = outcome.report.metadata.expect("a quorum commits metadata");
    // About one per 500 ms from the first active controller (~1.5 s) to the end (12 s).
    assert!((15..=23).contains(&no_ops), "{no_ops} no-ops in {entries} entries");
    assert!(outcome.report.render().contains(&format!("{no_ops} of them idle no-ops")));
    // Long after the topic was created, brokers still see the high watermark advance...
    assert!(broker_high_watermarks_after(&outcome, 8_000).len() >= 3 * 4);
    // ...and the story does not narrate those commits.
    let story = ksim_sim::narrate::render(&outcome.trace, ksim_sim::narrate::Detail::Story);
    assert!(!story.contains("idle no-ops only"), "{story}");
}

#[test]
fn zero_turns_the_idle_no_op_off() {
    let s = idle_quorum(0);
    let outcome = ksim_sim::run(&s, "idle", s.seed).expect("runs");
    assert!(outcome.report.passed(), "{}", outcome.report.render());
    let (_, no_ops) = outcome.report.metadata.expect("a quorum commits metadata");
    assert_eq!(no_ops, 0);
    assert!(broker_high_watermarks_after(&outcome, 8_000).is_empty(), "nothing new to commit on an idle cluster");
}
