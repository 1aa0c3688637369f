//! What-if: "what if this broker died now?"
//!
//! A what-if is the same scenario, the same seed, plus one fault at a virtual time: the time of
//! the event the learner is looking at, plus one microsecond. Everything the simulator does before
//! that time is a function of the scenario and the seed alone, so the new trace repeats the old
//! one event for event up to the cursor (ksim-sim tests this), and the learner carries on from the
//! same step into a different future.

use crate::fold::{ClusterView, Process};
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::BrokerId;
use ksim_sim::scenario::{Scenario, CONTROLLER_ID};
use ksim_sim::trace::{Fault, TraceHeader};
use ksim_sim::{Outcome, RunOptions};

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
    /// The fault to inject on `broker` given the cluster now, and the words for it.
    pub fn fault(self, broker: BrokerId, header: &TraceHeader, view: &ClusterView) -> (Fault, String) {
        let node = NodeId::Broker(broker);
        match self {
            WhatIf::Kill => (Fault::Kill(node), format!("kill {node}")),
            WhatIf::PowerFail => (Fault::PowerFail(node), format!("power-fail {node}")),
            WhatIf::Pause if view.process(node) == Process::Paused => (Fault::Resume(node), format!("resume {node}")),
            WhatIf::Pause => (Fault::Pause(node), format!("pause {node}")),
            WhatIf::Restart => (Fault::Restart(node), format!("restart {node}")),
            WhatIf::CutOff if view.is_cut_off(node) => (Fault::Heal, "heal the network".to_string()),
            WhatIf::CutOff => {
                // Like the scenario action `Isolate`: this node in one group, everyone else in the other.
                let others: Vec<NodeId> = std::iter::once(NodeId::Controller(CONTROLLER_ID))
                    .chain(header.brokers.iter().filter(|b| **b != broker).map(|b| NodeId::Broker(*b)))
                    .chain((0..header.clients.len()).map(|i| NodeId::Client(i as u32)))
                    .collect();
                (Fault::Partition(vec![vec![node], others]), format!("cut {node} off the network"))
            }
        }
    }
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
