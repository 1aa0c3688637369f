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
                let last = last_per_link.insert((from, e.node()), id);
                assert!(last.is_none_or(|l| l < id), "resent messages arrive in order on a link");
            }
        }
    }
}

/// `network.loss` is packet loss under TCP: a lost message is retransmitted 200 ms later (doubling
/// if lost again) and the connection keeps its order, so a follower's fetches are delayed by a
/// retransmission now and then, never stalled: the gap between the fetch responses a follower
/// receives stays near the leader's long-poll wait (replica.fetch.wait.max.ms, 500 ms).
#[test]
fn packet_loss_delays_follower_fetches_by_retransmissions_never_stalls_them() {
    use ksim_cluster::node::NodeId;
    use ksim_cluster::protocol::ApiKey;
    let scenario = Scenario::load(Path::new("scenarios/lossy-network.ron")).expect("loads");
    let trace = ksim_sim::run(&scenario, "lossy-network", scenario.seed).expect("runs").trace;
    let mut fetch_responses = std::collections::BTreeMap::new();
    for e in &trace.events {
        if let EventKind::Send { id, api: ApiKey::Fetch, request: false, to: NodeId::Broker(_), .. } = e.kind {
            fetch_responses.insert(id, ());
        }
    }
    let mut last_arrival: std::collections::BTreeMap<Option<NodeId>, u64> = std::collections::BTreeMap::new();
    let mut worst_gap_us = 0;
    let mut retransmitted = 0;
    for e in &trace.events {
        match e.kind {
            EventKind::Drop { id, reason: DropReason::Lost, .. } if fetch_responses.contains_key(&id) => {
                retransmitted += 1
            }
            EventKind::Deliver { id, .. } if fetch_responses.contains_key(&id) && e.time_us > 5_000_000 => {
                if let Some(last) = last_arrival.insert(e.node(), e.time_us) {
                    worst_gap_us = worst_gap_us.max(e.time_us - last);
                }
            }
            _ => {}
        }
    }
    assert!(retransmitted > 0, "1% loss over two minutes hits some fetch responses");
    assert!(worst_gap_us < 1_500_000, "a follower waited {worst_gap_us} µs for a fetch response");
}

/// One client's timed-out request closes its own connection, not another client's on the same
/// node: ksim keeps one connection per pair of nodes, so when a Connect worker's producer timed
/// out on an isolated broker, the answer to the JoinGroup its consumer still waited for was
/// thrown away with the producer's traffic, and the sink group never re-formed after the heal
/// (`ksim fuzz scenarios/connect-worker-dies.ron --seeds 11..12`: no-convergence, "group
/// connect-audit has no coordinator"). Answers to requests still open now survive the timeout.
#[test]
fn a_timeout_keeps_the_answers_other_clients_of_the_node_still_wait_for() {
    let base = Scenario::load(Path::new("scenarios/connect-worker-dies.ron")).expect("loads");
    let (outcome, _) = ksim_sim::fuzz::run_seed(&base, "connect-worker-dies", 11).expect("runs");
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
}

/// A process that crashes while cut off still has its kernel close its connections: the FIN
/// waits behind the cut and reaches the peer when the link heals. Before, a Connect worker's
/// consumer waiting for a JoinGroup answer from a coordinator that crashed behind a cut never
/// heard of it and waited out rebalance.timeout.ms + 5 s (`ksim fuzz
/// scenarios/connect-sink-dead-letter-queue.ron --seeds 19..20`: no-convergence, "group
/// connect-orders-index has no coordinator").
#[test]
fn a_crash_behind_a_cut_closes_the_connection_once_the_link_heals() {
    let base = Scenario::load(Path::new("scenarios/connect-sink-dead-letter-queue.ron")).expect("loads");
    let (outcome, _) = ksim_sim::fuzz::run_seed(&base, "connect-sink-dead-letter-queue", 19).expect("runs");
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
}

/// A timeout closes only the timed-out client's connection: while another client of the node
/// still waits on the peer, a connection between them stays open, and the peer crashing closes
/// it. Before, a Connect worker's producer timing out on a paused coordinator made ksim forget
/// every connection between the two nodes, so when the paused broker was then killed its kernel
/// had nothing to close: the worker's consumer, in a JoinGroup on it, never heard and waited out
/// its 305 s JoinGroup timeout (`ksim fuzz scenarios/connect-worker-dies.ron --seeds
/// 287..288`: no-convergence, "group connect-audit has no coordinator").
#[test]
fn a_crash_closes_the_connection_another_client_of_the_node_still_waits_on() {
    let base = Scenario::load(Path::new("scenarios/connect-worker-dies.ron")).expect("loads");
    let (outcome, _) = ksim_sim::fuzz::run_seed(&base, "connect-worker-dies", 287).expect("runs");
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
}
