//! Faults: what each one does to a node's process, its disk and its connections.
//!
//! A *kill* ends the process; its disk keeps everything written, page cache included. A *power
//! failure* also loses what was never flushed. A *restart* rebuilds the process from its disk
//! alone. A *pause* freezes it with its sockets open (a long GC pause). Network faults cut links
//! (both ways or one way), heal them, or slow them.

use super::driver::ProcessControl;
use super::World;
use crate::nodes::{Durable, Machine, ProcessChange, Status};
use crate::scenario::{Action, Scenario};
use crate::trace::{EventKind, Fault};
use ksim_cluster::effects::Input;
use ksim_cluster::log::TruncateReason;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use std::collections::BTreeSet;

impl World {
    /// Apply a fault now. Returns `Err` with a reason if it does not apply (restarting a running
    /// node is a kill plus a start; pausing a dead node does nothing).
    ///
    /// In combined mode a fault is to the host: a process fault to a broker (or controller) also
    /// reaches the controller (or broker) of the same `node.id`, recorded as a fault of its own;
    /// a network fault keeps the two on the same side (their loopback link is never cut).
    pub fn apply_fault(&mut self, fault: Fault) {
        let fault = self.whole_hosts(fault);
        let partner = fault.node().and_then(|n| self.same_host.get(&n).copied());
        match (&fault, partner) {
            (_, None) => self.apply_one_fault(fault),
            // A graceful stop of a combined node shuts the broker down first (its controlled
            // shutdown still needs a controller), then the controller, as
            // `KafkaRaftServer.shutdown` does; the controller's stop waits for the broker's exit.
            (Fault::Stop(n), Some(other)) => {
                let (broker, controller) = if matches!(n, NodeId::Broker(_)) { (*n, other) } else { (other, *n) };
                if self.slots[&broker].status == Status::Up {
                    self.stop_after_exit.insert(broker, controller);
                    self.apply_one_fault(Fault::Stop(broker));
                } else {
                    self.apply_one_fault(Fault::Stop(controller));
                }
            }
            (Fault::Exit(n), Some(_)) => {
                let n = *n;
                self.apply_one_fault(fault);
                if let Some(controller) = self.stop_after_exit.remove(&n) {
                    self.apply_one_fault(Fault::Stop(controller));
                }
            }
            (_, Some(other)) => {
                // A kill or restart ends any graceful stop under way.
                self.stop_after_exit.retain(|broker, controller| ![*broker, *controller].contains(&other));
                self.apply_one_fault(fault.clone());
                self.apply_one_fault(fault.on(other));
            }
        }
    }

    /// A network fault over whole hosts: each combined node's partner goes where the node goes
    /// (the first group that names either wins), so a cut isolates hosts, not half of one.
    fn whole_hosts(&self, fault: Fault) -> Fault {
        if self.same_host.is_empty() {
            return fault;
        }
        let with_partners = |nodes: Vec<NodeId>, placed: &mut BTreeSet<NodeId>| -> Vec<NodeId> {
            let mut out = Vec::new();
            for n in nodes {
                for m in std::iter::once(n).chain(self.same_host.get(&n).copied()) {
                    if placed.insert(m) {
                        out.push(m);
                    }
                }
            }
            out
        };
        let mut placed = BTreeSet::new();
        match fault {
            Fault::Partition(groups) => Fault::Partition(
                groups.into_iter().map(|g| with_partners(g, &mut placed)).filter(|g| !g.is_empty()).collect(),
            ),
            Fault::PartitionOneWay { from, to } => {
                let from = with_partners(from, &mut placed);
                let to = with_partners(to, &mut placed);
                Fault::PartitionOneWay { from, to }
            }
            other => other,
        }
    }

    fn apply_one_fault(&mut self, fault: Fault) {
        self.record_world(EventKind::Fault(fault.clone()));
        if let Some(n) = fault.node() {
            let status = self.slots[&n].status;
            match status.change(n, &fault) {
                ProcessChange::Nothing => {}
                ProcessChange::Stop { power_loss } => self.stop(n, power_loss),
                ProcessChange::ShutDown => self.step(n, Input::Shutdown),
                ProcessChange::Exit => self.exit(n),
                ProcessChange::LosePower => {
                    // The process was already dead, but its page cache was not: the host's
                    // power going now takes what the kernel had not written back.
                    self.slots.get_mut(&n).expect("present").status = Status::PoweredOff;
                    self.lose_page_cache(n);
                    self.checker.on_stop(n, true);
                }
                ProcessChange::Start { stop_first } => {
                    if stop_first {
                        self.stop(n, false);
                    }
                    self.slots.get_mut(&n).expect("present").held_down = false;
                    // The driver runs the node's process again, which calls `start_node`.
                    self.driver.control(n, ProcessControl::Restart);
                }
                ProcessChange::Freeze => {
                    self.slots.get_mut(&n).expect("present").status = Status::Paused;
                    self.driver.control(n, ProcessControl::Pause);
                }
                ProcessChange::Thaw => {
                    self.slots.get_mut(&n).expect("present").status = Status::Up;
                    self.driver.control(n, ProcessControl::Resume);
                }
            }
            return;
        }
        match fault {
            Fault::Kill(_)
            | Fault::PowerFail(_)
            | Fault::Restart(_)
            | Fault::Pause(_)
            | Fault::Resume(_)
            | Fault::Stop(_)
            | Fault::Exit(_) => {
                unreachable!("process faults name their node")
            }
            Fault::Partition(groups) => {
                for (i, a) in groups.iter().enumerate() {
                    for b in groups.iter().skip(i + 1) {
                        for &x in a {
                            for &y in b {
                                self.fabric.cut(x, y);
                                self.fabric.cut(y, x);
                            }
                        }
                    }
                }
            }
            Fault::PartitionOneWay { from, to } => {
                for &x in &from {
                    for &y in &to {
                        self.fabric.cut(x, y);
                    }
                }
            }
            Fault::Heal => {
                self.fabric.heal();
                let now = self.now();
                self.release_held(now);
            }
            Fault::SlowLink { a, b, extra_latency_ms } => self.fabric.set_slow(a, b, extra_latency_ms),
        }
    }

    /// A clean exit at the end of a graceful shutdown: the process stops and, as Kafka's
    /// `LogManager.shutdown` does, every log is flushed first, so the disk holds every record.
    fn exit(&mut self, node: NodeId) {
        self.stop(node, false);
        let slot = self.slots.get_mut(&node).expect("present");
        slot.status = Status::Stopped;
        let flushed = match &mut slot.durable {
            Durable::Broker(disk) => disk.flush_all(),
            _ => Vec::new(),
        };
        for (partition, offset) in flushed {
            self.record(node, EventKind::Note(Note::Flushed { partition, offset }));
        }
    }

    /// Stop a node's process; with `power_loss`, its disk also loses what was never flushed.
    fn stop(&mut self, node: NodeId, power_loss: bool) {
        let now = self.now();
        let slot = self.slots.get_mut(&node).expect("every node has a slot");
        assert!(matches!(slot.status, Status::Up | Status::Paused), "only a running process stops ({node})");
        slot.status = if power_loss { Status::PoweredOff } else { Status::Killed };
        slot.inbox = None;
        slot.timers.clear();
        self.driver.control(node, ProcessControl::Kill);
        let slot = self.slots.get_mut(&node).expect("present");
        slot.durable = slot.machine.take().map(Machine::into_durable).unwrap_or_default();
        if power_loss {
            self.lose_page_cache(node);
        }
        self.checker.on_stop(node, power_loss);
        // What the dead process had queued to send is gone with it.
        self.tcp.process_died(node);
        if power_loss {
            self.fabric.forget_connections(node);
        } else {
            for (peer, at_us) in self.fabric.close_connections(now.0, node) {
                // The host's kernel closes the dead process's connections (a crash is not a
                // power failure). Behind a cut the FIN waits, retransmitted, and reaches the
                // peer when the link heals; a peer that resends first gets a reset instead.
                // Before, a peer waiting for an answer on that connection (a JoinGroup to a
                // coordinator that crashed while cut off) never heard and waited out its
                // request timeout, 305 s for a JoinGroup.
                if self.fabric.is_cut(node, peer) {
                    self.tcp.hold_close(node, peer);
                } else {
                    self.schedule_connection_closed(peer, node, SimTime(at_us));
                }
            }
        }
        if let NodeId::Client(_) = node {
            // Pending deliveries and commits die with the application.
            self.waiters.application_stopped(node);
        }
    }
}

impl World {
    /// The host lost power: the stopped node's disk keeps only what was flushed.
    fn lose_page_cache(&mut self, node: NodeId) {
        let Durable::Broker(disk) = &mut self.slots.get_mut(&node).expect("every node has a slot").durable else {
            return;
        };
        for (partition, to_offset, removed) in disk.lose_unflushed() {
            let note = Note::Truncated { partition, to_offset, removed, reason: TruncateReason::PowerFailure };
            self.record(node, EventKind::Note(note));
        }
    }
}

/// The nodes the timeline leaves down for good: killed or powered off and never restarted, or
/// paused and never resumed (resuming a dead node does not bring it back).
pub(super) fn left_down(scenario: &Scenario) -> BTreeSet<NodeId> {
    let mut dead = BTreeSet::new();
    let mut paused = BTreeSet::new();
    let mut steps: Vec<&crate::scenario::Step> = scenario.timeline.iter().collect();
    steps.sort_by_key(|s| s.at_ms);
    // A fault to a combined node reaches both its processes.
    let host = |n| {
        let id = scenario.node_id(n);
        std::iter::once(id).chain(scenario.same_host(id)).collect::<Vec<_>>()
    };
    for step in steps {
        match &step.action {
            Action::Kill(n) | Action::PowerFail(n) | Action::Stop(n) => dead.extend(host(n)),
            Action::Pause(n) => paused.extend(host(n)),
            Action::Resume(n) => host(n).iter().for_each(|id| {
                paused.remove(id);
            }),
            Action::Restart(n) => host(n).iter().for_each(|id| {
                dead.remove(id);
                paused.remove(id);
            }),
            _ => {}
        }
    }
    dead.union(&paused).copied().collect()
}
