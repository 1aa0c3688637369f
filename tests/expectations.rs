//! Expectations bounded in time and counted: each passes when the run matches it and fails, with
//! a detail that says why, when it does not.

use ksim_sim::scenario::{Expectation, Happening, Scenario};
use std::path::Path;

/// leader-failover with these expectations instead of its own: (met?, detail) of each.
fn judge(expect: Vec<Expectation>) -> Vec<(bool, String)> {
    let mut scenario = Scenario::load(Path::new("scenarios/leader-failover.ron")).expect("loads");
    scenario.expect = expect;
    scenario.resolve().expect("valid");
    let outcome = ksim_sim::run(&scenario, "leader-failover", scenario.seed).expect("runs");
    outcome.report.expectations.iter().map(|e| (e.met, e.detail.clone())).collect()
}

#[test]
fn windows_counts_and_order_judged_on_leader_failover() {
    let fenced = || Happening::Fenced(1);
    let election = || Happening::Election("payments-0".into());
    let results = judge(vec![
        // Broker 1 is fenced at about 17 s (killed at 10 s, 9 s session after its last heartbeat).
        Expectation::SometimesBetween(fenced(), 17_000, 19_500),
        Expectation::SometimesBetween(fenced(), 10_000, 12_000),
        Expectation::NeverBefore(fenced(), 15_000),
        Expectation::NeverBefore(fenced(), 18_000),
        Expectation::NeverAfter(fenced(), 5_000),
        // Elections: the first at startup, then the failover, then the preferred leader's return.
        Expectation::CountBetween(election(), 2, 5),
        Expectation::Count(fenced(), 1),
        Expectation::Count(fenced(), 2),
        Expectation::Before(election(), fenced()),
        Expectation::Before(fenced(), election()),
    ]);
    let met: Vec<bool> = results.iter().map(|(m, _)| *m).collect();
    assert_eq!(met, [true, false, true, false, false, true, true, false, true, false], "{results:#?}");
    assert!(results[1].1.starts_with("not in the window; first at step"), "{}", results[1].1);
    assert!(results[3].1.starts_with("happened at step"), "{}", results[3].1);
    assert!(results[7].1.starts_with("happened once, at 17."), "{}", results[7].1);
    assert!(results[9].1.starts_with("the second came first"), "{}", results[9].1);
}

/// `ReplicasIdentical` compares every copy of the log, a dead broker's disk included.
#[test]
fn replicas_identical_holds_after_recovery_and_fails_while_a_copy_lags() {
    use ksim_sim::scenario::{Condition, NodeRef};
    let mut scenario = Scenario::load(Path::new("scenarios/leader-failover.ron")).expect("loads");
    scenario.expect = vec![Expectation::Finally(Condition::ReplicasIdentical("payments-0".into()))];
    let outcome = ksim_sim::run(&scenario, "leader-failover", scenario.seed).expect("runs");
    let result = &outcome.report.expectations[0];
    assert!(result.met, "{}", result.detail);
    assert!(result.detail.contains("identical up to offset"), "{}", result.detail);
    // Broker 1 never comes back: its disk ends where it died, behind the others.
    scenario.timeline.retain(|step| !matches!(&step.action, ksim_sim::scenario::Action::Restart(NodeRef::Broker(1))));
    let outcome = ksim_sim::run(&scenario, "leader-failover", scenario.seed).expect("runs");
    let result = &outcome.report.expectations[0];
    assert!(!result.met, "{}", result.detail);
    assert!(result.detail.contains("ends at"), "{}", result.detail);
}

#[test]
fn impossible_windows_and_counts_are_rejected_naming_the_expectation() {
    let mut scenario = Scenario::load(Path::new("scenarios/leader-failover.ron")).expect("loads");
    let cases = [
        (Expectation::SometimesBetween(Happening::Fenced(1), 20_000, 10_000), "starts at 20000 ms, after its end"),
        (Expectation::NeverBefore(Happening::Fenced(1), 99_000), "after the end of the run"),
        (Expectation::CountBetween(Happening::Fenced(1), 3, 1), "least count 3 is more than the most 1"),
        (Expectation::Count(Happening::Fenced(9), 1), "unknown broker 9"),
    ];
    for (expectation, message) in cases {
        scenario.expect = vec![expectation.clone()];
        let error = scenario.resolve().expect_err("rejected");
        assert!(error.starts_with("expect[0]: ") && error.contains(message), "{expectation:?}: {error}");
    }
}
