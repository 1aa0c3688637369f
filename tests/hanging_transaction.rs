//! A hanging transaction (no KIP-890 verification) holds a read_committed consumer at the LSO:
//! the liveness check reports that as a lesson, not a broken promise, and the operator's abort
//! ends it.

use ksim_sim::scenario::{Action, Scenario};
use ksim_sim::trace::Rule;
use std::path::Path;

/// hanging-transaction with a convergence check 5 s after its last step; `abort`: keep the
/// operator's `AbortTransaction`. The no-convergence findings as (violation?, message).
fn convergence(abort: bool) -> Vec<(bool, String)> {
    let mut scenario = Scenario::load(Path::new("scenarios/hanging-transaction.ron")).expect("loads");
    if !abort {
        scenario.timeline.retain(|s| !matches!(s.action, Action::AbortTransaction { .. }));
        // The last step is now the slow link at 3.4 s; check long after the late batch landed.
        scenario.converge_within_ms = Some(30_000);
    } else {
        scenario.converge_within_ms = Some(5_000);
    }
    scenario.expect.clear();
    scenario.resolve().expect("valid");
    let outcome = ksim_sim::run(&scenario, "hanging-transaction", scenario.seed).expect("runs");
    outcome
        .report
        .findings
        .iter()
        .filter(|f| f.finding.rule == Rule::NoConvergence)
        .map(|f| (f.finding.violation, f.finding.message.clone()))
        .collect()
}

#[test]
fn a_hanging_transaction_left_alone_is_a_lesson_not_a_broken_promise() {
    let findings = convergence(false);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let (violation, message) = &findings[0];
    assert!(!violation, "Kafka never promised to end a transaction no coordinator knows: {message}");
    assert!(message.contains("hanging transaction of pid") && message.contains("payments-0"), "{message}");
}

#[test]
fn the_operators_abort_ends_the_hanging_transaction_and_the_reader_catches_up() {
    assert_eq!(convergence(true), Vec::new());
}
