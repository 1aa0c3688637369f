//! The network as TCP sees it: a partition holds messages back, and they arrive once it heals.

use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{DropReason, EventKind, Fault};
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn messages_held_by_a_partition_arrive_after_the_heal_in_order() {
    let scenario = Scenario::load(Path::new("scenarios/isolated-leader.ron")).expect("loads");
    let trace = ksim_sim::run(&scenario, "isolated-leader", scenario.seed).expect("runs").trace;
    let heal_us = trace
        .events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Fault(Fault::Heal)))
        .map(|e| e.time_us)
        .expect("the scenario heals the network");
    let held: BTreeSet<u64> = trace
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Drop { id, reason: DropReason::Partitioned, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert!(!held.is_empty(), "the partition holds something back");
    let delivered_late: Vec<(u64, u64)> = trace
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Deliver { id, .. } if held.contains(&id) => Some((e.time_us, id)),
            _ => None,
        })
        .collect();
    assert!(!delivered_late.is_empty(), "TCP resends what the cut held once it heals");
    assert!(delivered_late.iter().all(|(t, _)| *t > heal_us), "nothing crosses the cut before the heal");
    // Per link, resent messages keep their order (ids grow with send order).
    let mut last_per_link = std::collections::BTreeMap::new();
    for e in &trace.events {
        if let EventKind::Deliver { id, from } = e.kind {
            if held.contains(&id) {
                let last = last_per_link.insert((from, e.node), id);
                assert!(last.is_none_or(|l| l < id), "resent messages arrive in order on a link");
            }
        }
    }
}
