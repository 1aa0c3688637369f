//! What-if: "what if this broker died now?", or this consumer, or this controller.
//!
//! A what-if is the same scenario, the same seed, plus one fault at a virtual time: the time of
//! the event the learner is looking at, plus one microsecond. Everything the simulator does before
//! that time is a function of the scenario and the seed alone, so the new trace repeats the old
//! one event for event up to the cursor (ksim-sim tests this), and the learner carries on from the
//! same step into a different future.
//!
//! When the branch's run is back, [`differences`] compares it with the original run and says, in
//! words, what turned out differently and why: the expectations and findings that changed, each
//! client's counts, the errors only the branch met (with the state of the partition that caused
//! them), and where leadership ended up.

use crate::fold::{ClusterView, Process};
use crate::recording::Recording;
use ksim_cluster::error::ErrorCode;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::TopicPartition;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::EventKind;
use ksim_sim::trace::{node_name, Fault, TraceHeader};
use ksim_sim::{Outcome, RunOptions};
use std::collections::BTreeMap;

/// The faults a learner can inject from the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhatIf {
    Kill,
    PowerFail,
    /// Pause, or resume a broker that is paused.
    Pause,
    Restart,
    /// Cut the broker off from every other node, or heal the network if it is already cut off.
    CutOff,
}

impl WhatIf {
    /// The fault to inject on `node` (a broker, client or controller) given the cluster now, and
    /// the words for it.
    pub fn fault(self, node: NodeId, header: &TraceHeader, view: &ClusterView) -> (Fault, String) {
        let name = node_name(&header.clients, node);
        match self {
            WhatIf::Kill => (Fault::Kill(node), format!("kill {name}")),
            WhatIf::PowerFail => (Fault::PowerFail(node), format!("power-fail {name}")),
            WhatIf::Pause if view.process(node) == Process::Paused => (Fault::Resume(node), format!("resume {name}")),
            WhatIf::Pause => (Fault::Pause(node), format!("pause {name}")),
            WhatIf::Restart => (Fault::Restart(node), format!("restart {name}")),
            WhatIf::CutOff if view.is_cut_off(node) => (Fault::Heal, "heal the network".to_string()),
            WhatIf::CutOff => {
                // Like the scenario action `Isolate`: this node in one group, everyone else in the other.
                let others: Vec<NodeId> = (view.controllers.keys().map(|id| NodeId::Controller(*id)))
                    .chain(header.brokers.iter().map(|b| NodeId::Broker(*b)))
                    .chain((0..header.clients.len()).map(|i| NodeId::Client(i as u32)))
                    .filter(|n| *n != node)
                    .collect();
                (Fault::Partition(vec![vec![node], others]), format!("cut {name} off the network"))
            }
        }
    }
}

/// A fault as the action a scenario's timeline (or `ksim serve`'s control channel) names it, in
/// the scenario's RON syntax (`Kill(Broker(1))`): what a what-if key sends to a live run.
/// `quorum`: the run's controllers are a KRaft quorum (named `Voter(id)`), not the single
/// controller (`Controller`). `None` for a fault no scenario can name (a process's own exit).
pub fn action_text(fault: &Fault, header: &TraceHeader, quorum: bool) -> Option<String> {
    use ksim_sim::scenario::{Action, NodeRef};
    let node = |node: &NodeId| match *node {
        NodeId::Broker(b) => Some(NodeRef::Broker(b)),
        NodeId::Controller(id) if quorum => Some(NodeRef::Voter(id)),
        NodeId::Controller(_) => Some(NodeRef::Controller),
        NodeId::Client(i) => header.clients.get(i as usize).map(|name| NodeRef::Client(name.clone())),
    };
    let nodes = |list: &[NodeId]| list.iter().map(node).collect::<Option<Vec<_>>>();
    let action = match fault {
        Fault::Kill(n) => Action::Kill(node(n)?),
        Fault::PowerFail(n) => Action::PowerFail(node(n)?),
        Fault::Restart(n) => Action::Restart(node(n)?),
        Fault::Pause(n) => Action::Pause(node(n)?),
        Fault::Resume(n) => Action::Resume(node(n)?),
        Fault::Stop(n) => Action::Stop(node(n)?),
        Fault::Exit(_) => return None,
        Fault::Partition(groups) => Action::Partition(groups.iter().map(|g| nodes(g)).collect::<Option<Vec<_>>>()?),
        Fault::PartitionOneWay { from, to } => Action::PartitionOneWay(nodes(from)?, nodes(to)?),
        Fault::Heal => Action::Heal,
        Fault::SlowLink { a, b, extra_latency_ms } => Action::SlowLink(node(a)?, node(b)?, *extra_latency_ms),
    };
    ron::to_string(&action).ok()
}

/// The virtual time a what-if fault strikes when the learner is at an event of `time_us`.
pub fn fault_time(time_us: u64) -> SimTime {
    SimTime(time_us.saturating_add(1))
}

/// Run the scenario again with these extra faults; the new trace.
pub fn simulate(scenario: &Scenario, name: &str, seed: u64, faults: &[(SimTime, Fault)]) -> Result<Outcome, String> {
    let options = RunOptions { extra_faults: faults.to_vec(), ..RunOptions::default() };
    ksim_sim::run_with(scenario, name, seed, &options)
}

/// What a branch's run (the original scenario plus `faults`) did differently from the original
/// run from its first fault on, and why, in words, most telling first: the errors only the branch met, with the partition's
/// state when they began; each client's counts; where leadership ended; the expectations whose
/// verdict changed; the findings that appeared or went away.
pub fn differences(original: &Recording, branch: &Recording, faults: &[(SimTime, Fault)]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(at) = faults.iter().map(|(t, _)| *t).min() else { return out };
    let (before, after) = (errors_since(original, at), errors_since(branch, at));
    for ((client, error, partition), first) in &after {
        if before.keys().any(|(c, e, _)| c == client && e == error) {
            continue;
        }
        let count = after.iter().filter(|((c, e, _), _)| c == client && e == error).map(|(_, f)| f.count).sum::<u64>();
        let times = if count == 1 { "once".to_string() } else { format!("{count} times") };
        let on = partition.as_ref().map(|tp| format!(" on {tp}")).unwrap_or_default();
        let why = match partition {
            Some(tp) => why(&branch.view_at(first.step), tp, error, first.reason.as_deref()),
            None => first.reason.clone().map(|r| format!(": {r}")).unwrap_or_default(),
        };
        out.push(format!("{client} got {error}{on} ({times}; never in the original){why}"));
    }
    let (end_before, end_after) = (original.view_at(original.len()), branch.view_at(branch.len()));
    let struck: Vec<NodeId> = faults.iter().filter_map(|(_, f)| f.node()).collect();
    // The clients the what-if struck first: their story explains the others'.
    let mut clients: Vec<_> = end_after.clients.iter().collect();
    clients.sort_by_key(|(node, _)| !struck.contains(node));
    for (node, c) in clients {
        let Some(o) = end_before.clients.get(node) else { continue };
        let name = branch.trace.node_name(*node);
        let counts: Vec<String> = [
            ("acknowledged", c.acked, o.acked),
            ("read", c.consumed, o.consumed),
            ("processed", c.processed, o.processed),
        ]
        .into_iter()
        .filter(|(_, here, there)| here != there)
        .map(|(what, here, there)| format!("{what} {here} ({there} in the original)"))
        .collect();
        let target = if struck.contains(node) { " (the what-if struck it)" } else { "" };
        if !counts.is_empty() {
            out.push(format!("{name}{target}: {}", counts.join(", ")));
        }
        let owned = |c: &crate::fold::ClientView| c.membership.as_ref().map(|m| m.owned.clone()).unwrap_or_default();
        let (here, there) = (owned(c), owned(o));
        if here != there {
            out.push(format!(
                "{name} ends owning {}, {} in the original",
                crate::view::style::partitions(&here),
                crate::view::style::partitions(&there)
            ));
        }
    }
    for (tp, p) in end_after.partitions.iter().filter(|(tp, _)| !crate::model::is_internal(tp)) {
        let then = end_before.partitions.get(tp).and_then(|p| p.leader);
        if p.leader != then {
            let name = |l: Option<i32>| l.map_or("no leader".to_string(), |b| format!("broker-{b}"));
            out.push(format!("{tp} ends led by {}, by {} in the original", name(p.leader), name(then)));
        }
    }
    if let (Some(here), Some(there)) = (&branch.report, &original.report) {
        for e in &here.expectations {
            if let Some(o) = there.expectations.iter().find(|o| o.expectation == e.expectation) {
                if o.met != e.met {
                    let verdict = |met: bool| if met { "ok" } else { "FAILED" };
                    out.push(format!(
                        "expectation {}: {} here, {} in the original ({})",
                        e.expectation,
                        verdict(e.met),
                        verdict(o.met),
                        e.detail
                    ));
                }
            }
        }
        let rules = |r: &ksim_sim::report::Report| -> BTreeMap<String, String> {
            r.findings.iter().map(|f| (f.finding.rule.to_string(), f.finding.message.clone())).rev().collect()
        };
        let (new, old) = (rules(here), rules(there));
        for (rule, message) in new.iter().filter(|(r, _)| !old.contains_key(*r)) {
            out.push(format!("new finding {rule}: {message}"));
        }
        for rule in old.keys().filter(|r| !new.contains_key(*r)) {
            out.push(format!("no {rule} finding any more"));
        }
    }
    if out.is_empty() {
        out.push("nothing the clients, the leaders or the checker see turned out differently".to_string());
    }
    out
}

/// The first time a client met an error, and how often.
struct FirstError {
    /// The step right after the event.
    step: usize,
    reason: Option<String>,
    count: u64,
}

/// Errors clients met from `at` on: by client name, Kafka error name and partition.
fn errors_since(
    recording: &Recording,
    at: SimTime,
) -> BTreeMap<(String, &'static str, Option<TopicPartition>), FirstError> {
    let mut out: BTreeMap<(String, &'static str, Option<TopicPartition>), FirstError> = BTreeMap::new();
    let trace = &recording.trace;
    for (i, event) in trace.events.iter().enumerate().filter(|(_, e)| e.time_us >= at.0) {
        let (Some(node), EventKind::Note(note)) = (event.node(), &event.kind) else { continue };
        let (error, partition, reason) = match note {
            Note::ProduceFailed { error, partition, reason, .. } => (*error, partition.clone(), Some(reason.clone())),
            Note::ProduceRetry { error, partition, .. } => (*error, Some(partition.clone()), None),
            Note::CommitFailed { error, .. } => (*error, None, None),
            Note::TxnFailed { error, .. } => (*error, None, None),
            Note::MemberFailed { error, .. } => (*error, None, None),
            Note::OffsetOutOfRange { partition, position } => (
                ErrorCode::OffsetOutOfRange,
                Some(partition.clone()),
                Some(format!("position {position} is not in the log")),
            ),
            _ => continue,
        };
        let entry = out.entry((trace.node_name(node), error.name(), partition)).or_insert(FirstError {
            step: i + 1,
            reason: None,
            count: 0,
        });
        entry.count += 1;
        if entry.reason.is_none() {
            entry.reason = reason;
        }
    }
    out
}

/// Why an error came, from the partition's state when it did.
fn why(view: &ClusterView, tp: &TopicPartition, error: &str, reason: Option<&str>) -> String {
    let brokers = |ids: &[i32]| format!("[{}]", ids.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(","));
    let Some(p) = view.partitions.get(tp) else { return String::new() };
    let state = match error {
        "NOT_ENOUGH_REPLICAS" | "NOT_ENOUGH_REPLICAS_AFTER_APPEND" => {
            format!(": the ISR was {}, smaller than min.insync.replicas asks", brokers(&p.isr))
        }
        "NOT_LEADER_OR_FOLLOWER" | "FENCED_LEADER_EPOCH" | "UNKNOWN_LEADER_EPOCH" => match p.leader {
            Some(l) => format!(": leadership moved (broker-{l} leads, epoch {})", p.leader_epoch),
            None => ": the partition had no leader".to_string(),
        },
        "LEADER_NOT_AVAILABLE" => ": the partition had no leader".to_string(),
        _ => String::new(),
    };
    match reason {
        Some(r) if state.is_empty() => format!(": {r}"),
        Some(r) => format!("{state}; {r}"),
        None => state,
    }
}
