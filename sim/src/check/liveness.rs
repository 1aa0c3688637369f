//! Liveness: after the last fault, has the cluster recovered? Every process the scenario did not
//! leave down is up, every broker unfenced, every partition led with its full ISR (unless its
//! in-sync replicas are gone for good), every group Stable with no lag, and no acknowledged write
//! Kafka promised to keep is missing.
//!
//! One lag is a lesson rather than a broken promise: a `read_committed` consumer waiting at a
//! last stable offset held by a *hanging transaction*, one open on the partition that no
//! transaction coordinator has as an ongoing transaction with that partition (a late produce
//! appended without KIP-890's verification). Kafka never promised to end it: only an operator's
//! `kafka-transactions.sh abort` does.

/// The start of a problem that is a hanging transaction's lag (a lesson, see above).
pub const HANGING_TRANSACTION: &str = "hanging transaction";

use super::Checker;
use crate::nodes::{Machine, Nodes, Status};
use crate::scenario::CONTROLLER_ID;
use crate::trace::{node_name, TraceHeader};
use ksim_cluster::node::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// What keeps the cluster from having converged, in plain words (empty: converged).
pub fn convergence_problems(
    slots: &Nodes,
    header: &TraceHeader,
    left_down: &BTreeSet<NodeId>,
    checker: &Checker,
) -> Vec<String> {
    let mut problems = Vec::new();
    // The lone controller's image (up or not), or the quorum's active controller's.
    let quorum = slots.values().any(|s| matches!(&s.machine, Some(Machine::Controller(c)) if c.is_quorum_member()));
    let image = if quorum {
        crate::nodes::active_controller(slots).map(|c| c.image().clone())
    } else {
        slots.values().find_map(|s| match &s.machine {
            Some(Machine::Controller(c)) => Some(c.image().clone()),
            _ => None,
        })
    };
    for (node, slot) in slots {
        if slot.status != Status::Up && !left_down.contains(node) {
            problems.push(format!("{} is {:?}", node_name(&header.clients, *node), slot.status).to_lowercase());
        }
    }
    let Some(image) = image else {
        if quorum {
            // Every controller the scenario left down may be what keeps a majority away; if none
            // was, the quorum should have elected an active controller.
            if !slots.keys().any(|n| matches!(n, NodeId::Controller(_)) && left_down.contains(n)) {
                problems.push("no active controller: the quorum has not elected one".into());
            }
            return problems;
        }
        // Without a controller nothing can change leadership: if the scenario keeps it down,
        // that is its lesson, not a failure to recover.
        if !left_down.contains(&NodeId::Controller(CONTROLLER_ID)) {
            problems.push("the controller is down".into());
        }
        return problems;
    };
    for id in &header.brokers {
        if !image.is_unfenced(*id) && !left_down.contains(&NodeId::Broker(*id)) {
            problems.push(format!("broker-{id} is fenced"));
        }
    }
    let mut offline_for_good = BTreeSet::new();
    for (tp, p) in &image.partitions {
        // A partition whose eligible leaders are all gone for good stays offline: Kafka will not
        // elect another replica unless unclean election is enabled. Eligible: the ISR; with ELR
        // on and the ISR empty, the eligible leader replicas; with both empty, the last known
        // leader (KIP-966). None at all (every one restarted uncleanly): offline as well.
        let eligible: Vec<_> = if !p.isr.is_empty() {
            p.isr.clone()
        } else if !p.elr.is_empty() {
            p.elr.clone()
        } else {
            p.last_known_leader.into_iter().collect()
        };
        let eligible_gone = eligible.iter().all(|r| left_down.contains(&NodeId::Broker(*r)));
        if p.leader.is_none() {
            if eligible_gone {
                offline_for_good.insert(tp.clone());
            } else {
                problems.push(format!("{tp} has no leader"));
            }
        } else if p.replicas.iter().any(|r| !p.isr.contains(r) && !left_down.contains(&NodeId::Broker(*r))) {
            problems.push(format!("{tp} ISR {:?} is missing replicas of {:?}", p.isr, p.replicas));
        }
    }
    let mut high_watermarks = BTreeMap::new();
    // Per partition: the LSO, if a transaction no coordinator knows holds it below the HW.
    let mut hanging: BTreeMap<ksim_cluster::topic::TopicPartition, (i64, i64)> = BTreeMap::new();
    let known = |producer_id: i64, tp: &ksim_cluster::topic::TopicPartition| {
        slots.values().any(|s| match &s.machine {
            Some(Machine::Broker(b)) => b.txn_coordinator().transactions().any(|m| {
                m.producer_id == producer_id
                    && m.state == ksim_cluster::txn::TransactionState::Ongoing
                    && m.topic_partitions.contains(tp)
            }),
            _ => false,
        })
    };
    for slot in slots.values() {
        if let Some(Machine::Broker(b)) = &slot.machine {
            for r in b.replicas().filter(|r| r.is_leader()) {
                high_watermarks.insert(r.partition.clone(), r.high_watermark);
                let lso = r.log.last_stable_offset(r.high_watermark);
                let holder = r.log.ongoing_transactions().find(|(_, first)| *first == lso);
                if let Some((producer_id, _)) = holder.filter(|(pid, _)| !known(*pid, &r.partition)) {
                    hanging.insert(r.partition.clone(), (lso, producer_id));
                }
            }
        }
    }
    let consumers = slots.iter().filter_map(|(node, slot)| match &slot.machine {
        Some(Machine::Client(client)) => Some(client.consumers().map(move |(_, c)| (node, c))),
        _ => None,
    });
    for (node, c) in consumers.flatten() {
        if let Some(member) = c.member() {
            let group = member.group_id();
            let state = slots.values().find_map(|s| match &s.machine {
                Some(Machine::Broker(b)) => b.group_state(group),
                _ => None,
            });
            match state {
                Some((ksim_cluster::group::coordinator::GroupState::Stable, _)) => {}
                Some((state, _)) => problems.push(format!("group {group} is {state}")),
                // Its __consumer_offsets partition may be offline for good (see above).
                None if offline_for_good.iter().any(|tp| tp.topic == "__consumer_offsets") => {}
                None => problems.push(format!("group {group} has no coordinator")),
            }
        }
        for (tp, position) in c.positions() {
            if let Some(hw) = high_watermarks.get(&tp) {
                let held = hanging.get(&tp).filter(|(lso, _)| c.reads_committed() && position >= *lso);
                if let (true, Some((lso, producer_id))) = (position < *hw, held) {
                    problems.push(format!(
                        "{HANGING_TRANSACTION} of pid {producer_id} holds {tp}'s last stable offset at {lso}: {} waits there, {} record(s) behind the high watermark (no coordinator knows it; only kafka-transactions.sh abort ends it)",
                        node_name(&header.clients, *node),
                        hw - position
                    ));
                } else if position < *hw {
                    problems.push(format!(
                        "{} lags {} record(s) on {tp}",
                        node_name(&header.clients, *node),
                        hw - position
                    ));
                }
            }
        }
    }
    let lost = checker.lost_acked_writes(slots);
    if lost > 0 {
        problems.push(format!("{lost} acknowledged write(s) Kafka promised to keep cannot be read"));
    }
    problems.sort();
    problems.dedup();
    problems
}
