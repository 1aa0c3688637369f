//! The nodes of a run: each one's process status, the state machine it runs, and its disk.
//!
//! This is what the world owns per node, and what the checker, the report and liveness may read.
//! A process is `Up`, `Paused` (frozen, its sockets kept), `Killed` (dead; its disk, page cache
//! included, kept) or `PoweredOff` (dead; its disk holds only what was flushed).

use ksim_cluster::broker::{Broker, BrokerDisk};
use ksim_cluster::client::Client;
use ksim_cluster::controller::{Controller, ControllerDisk};
use ksim_cluster::effects::{Effects, Input, StateMachine};
use ksim_cluster::log::Log;
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_cluster::timer::Timer;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// What a node's process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Up,
    /// Frozen (a long GC pause): it keeps its sockets and its state, and does nothing.
    Paused,
    /// The process died; its page cache, and so every record it wrote, survives.
    Killed,
    /// The machine lost power: only what was flushed to disk survives.
    PoweredOff,
    /// The process shut down cleanly: it flushed every log before it exited.
    Stopped,
}

/// What a fault does to one node's process: the one definition the world carries out and the
/// TUI folds, so the two cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessChange {
    /// Nothing: the fault does not apply in this state (pausing a dead process, say).
    Nothing,
    /// The running (or paused) process ends; with `power_loss` its host loses power too.
    Stop {
        power_loss: bool,
    },
    /// The process is already dead; now its host loses power as well.
    LosePower,
    /// The process starts from its disk; `stop_first` if one was still running (a restart of a
    /// live process is a kill and a start).
    Start {
        stop_first: bool,
    },
    Freeze,
    Thaw,
    /// Ask the running process to shut down gracefully; it keeps running until it is done.
    ShutDown,
    /// The process exits cleanly, its logs flushed.
    Exit,
}

impl Status {
    /// What `fault` does to this process, if `fault` names `node`.
    pub fn change(self, node: NodeId, fault: &crate::trace::Fault) -> ProcessChange {
        use crate::trace::Fault;
        let running = matches!(self, Status::Up | Status::Paused);
        match fault {
            Fault::Kill(n) if *n == node && running => ProcessChange::Stop { power_loss: false },
            Fault::PowerFail(n) if *n == node && running => ProcessChange::Stop { power_loss: true },
            Fault::PowerFail(n) if *n == node && matches!(self, Status::Killed | Status::Stopped) => {
                ProcessChange::LosePower
            }
            Fault::Restart(n) if *n == node => ProcessChange::Start { stop_first: running },
            Fault::Pause(n) if *n == node && self == Status::Up => ProcessChange::Freeze,
            Fault::Resume(n) if *n == node && self == Status::Paused => ProcessChange::Thaw,
            // A broker runs its controlled shutdown first, and a client closes its consumer
            // (commit, LeaveGroup); the controller just exits. A frozen process cannot act on
            // the signal (ksim drops it).
            Fault::Stop(n) if *n == node && self == Status::Up => match node {
                NodeId::Broker(_) | NodeId::Client(_) => ProcessChange::ShutDown,
                NodeId::Controller(_) => ProcessChange::Exit,
            },
            Fault::Exit(n) if *n == node && running => ProcessChange::Exit,
            _ => ProcessChange::Nothing,
        }
    }

    /// The status after `change`.
    pub fn after(self, change: ProcessChange) -> Status {
        match change {
            ProcessChange::Nothing | ProcessChange::ShutDown => self,
            ProcessChange::Exit => Status::Stopped,
            ProcessChange::Stop { power_loss: false } => Status::Killed,
            ProcessChange::Stop { power_loss: true } | ProcessChange::LosePower => Status::PoweredOff,
            ProcessChange::Start { .. } | ProcessChange::Thaw => Status::Up,
            ProcessChange::Freeze => Status::Paused,
        }
    }

    pub fn is_running(self) -> bool {
        self == Status::Up
    }
}

pub struct Slot {
    pub status: Status,
    pub machine: Option<Machine>,
    /// The disk, while the process is down (a running process holds it in its machine).
    pub durable: Durable,
    pub(crate) inbox: Option<mpsc::UnboundedSender<Input>>,
    /// Live timers and their generation; a firing whose generation is stale is ignored.
    pub(crate) timers: BTreeMap<Timer, u64>,
    pub(crate) starts: u64,
    pub(crate) rng: ChaCha8Rng,
    /// Down from the start: the timeline kills or powers the node off at time 0, so its
    /// process never ran. Its first start is the timeline's `Restart`.
    pub(crate) held_down: bool,
}

// A handful per run, one per node, stepped constantly: boxing the big variants would add an
// indirection to every step to save a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum Machine {
    Controller(Controller),
    Broker(Broker),
    Client(Client),
}

impl Machine {
    pub fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        match self {
            Machine::Controller(m) => m.handle(now, input, rng, fx),
            Machine::Broker(m) => m.handle(now, input, rng, fx),
            Machine::Client(m) => m.handle(now, input, rng, fx),
        }
    }

    /// Whether the node's state is one Kafka can be in (see `ksim_cluster::invariant`).
    pub fn check_invariants(&self) -> Result<(), String> {
        match self {
            Machine::Controller(m) => m.check_invariants(),
            Machine::Broker(m) => m.check_invariants(),
            Machine::Client(m) => m.check_invariants(),
        }
    }

    /// What this node leaves on disk when its process ends.
    pub fn into_durable(self) -> Durable {
        match self {
            Machine::Controller(m) => Durable::Controller(m.into_disk()),
            Machine::Broker(m) => Durable::Broker(m.into_disk()),
            Machine::Client(_) => Durable::Nothing,
        }
    }
}

/// A node's disk.
#[derive(Clone, Debug, Default)]
pub enum Durable {
    #[default]
    Nothing,
    Controller(ControllerDisk),
    Broker(BrokerDisk),
}

/// The controller that decides: the single controller if it runs, or the quorum's active
/// controller (the one of the highest epoch, should a deposed one not know yet).
pub fn active_controller(slots: &Nodes) -> Option<&Controller> {
    slots
        .values()
        .filter(|s| matches!(s.status, Status::Up | Status::Paused))
        .filter_map(|s| match &s.machine {
            Some(Machine::Controller(c)) if c.is_active() => Some(c),
            _ => None,
        })
        .max_by_key(|c| c.raft().map_or(0, |r| r.epoch()))
}

/// Each partition's current leader, as the controller's image says (if the controller runs) or
/// as the brokers that believe they lead say.
pub fn current_leaders(slots: &Nodes) -> BTreeMap<TopicPartition, BrokerId> {
    let mut leaders = BTreeMap::new();
    for slot in slots.values() {
        if let Some(Machine::Controller(c)) = &slot.machine {
            if c.is_quorum_member() {
                break;
            }
            for (tp, p) in &c.image().partitions {
                if let Some(l) = p.leader {
                    leaders.insert(tp.clone(), l);
                }
            }
            return leaders;
        }
    }
    if let Some(c) = active_controller(slots).filter(|c| c.is_quorum_member()) {
        for (tp, p) in &c.image().partitions {
            if let Some(l) = p.leader {
                leaders.insert(tp.clone(), l);
            }
        }
        return leaders;
    }
    let mut best: BTreeMap<TopicPartition, (i32, BrokerId)> = BTreeMap::new();
    for (node, slot) in slots {
        if let (NodeId::Broker(id), Some(Machine::Broker(b))) = (node, &slot.machine) {
            for r in b.replicas().filter(|r| r.is_leader()) {
                let entry = best.entry(r.partition.clone()).or_insert((r.leader_epoch, *id));
                if r.leader_epoch > entry.0 {
                    *entry = (r.leader_epoch, *id);
                }
            }
        }
    }
    best.into_iter().map(|(tp, (_, id))| (tp, id)).collect()
}

/// Every copy of a partition's log: running brokers' and stopped brokers' disks.
pub fn partition_logs<'a>(slots: &'a Nodes, tp: &TopicPartition) -> Vec<(BrokerId, &'a Log)> {
    let mut out = Vec::new();
    for (node, slot) in slots {
        let NodeId::Broker(id) = node else { continue };
        match (&slot.machine, &slot.durable) {
            (Some(Machine::Broker(b)), _) if matches!(slot.status, Status::Up | Status::Paused) => {
                if let Some(r) = b.replica(tp) {
                    out.push((*id, &r.log));
                }
            }
            (_, Durable::Broker(disk)) => {
                if let Some(log) = disk.logs.get(tp) {
                    out.push((*id, log));
                }
            }
            _ => {}
        }
    }
    out
}

/// The records a consumer of this leader's log may read, from the log start, and where they end:
/// below the high watermark, or under `read_committed` below the last stable offset and without
/// aborted transactions' records. Control batches (markers) are never given out.
pub fn readable_records(
    log: &Log,
    high_watermark: i64,
    read_committed: bool,
) -> (Vec<ksim_cluster::record::Record>, i64) {
    let upto = if read_committed { log.last_stable_offset(high_watermark) } else { high_watermark };
    let from = log.log_start_offset();
    let aborted = if read_committed { log.aborted_transactions(from, upto) } else { Vec::new() };
    let mut records = Vec::new();
    for batch in log.read(from, upto, usize::MAX) {
        if batch.control.is_some() {
            continue;
        }
        let last = batch.base_offset + batch.records.len() as i64 - 1;
        let in_aborted = batch.is_transactional
            && aborted.iter().any(|a| {
                a.producer_id == batch.producer_id && a.first_offset <= batch.base_offset && last <= a.last_offset
            });
        if in_aborted {
            continue;
        }
        for (i, record) in batch.records.iter().enumerate() {
            if batch.base_offset + (i as i64) < upto {
                records.push(record.clone());
            }
        }
    }
    (records, upto)
}

/// Every node of a run, by id.
pub type Nodes = BTreeMap<NodeId, Slot>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Fault;

    /// (status before, fault, status after) for broker 1; a fault naming broker 2 changes nothing.
    #[test]
    fn faults_change_processes_as_the_table_says() {
        let b1 = NodeId::Broker(1);
        let b2 = NodeId::Broker(2);
        let cases = [
            (Status::Up, Fault::Kill(b1), Status::Killed),
            (Status::Paused, Fault::Kill(b1), Status::Killed),
            (Status::Killed, Fault::Kill(b1), Status::Killed),
            (Status::Up, Fault::PowerFail(b1), Status::PoweredOff),
            // A dead process's host can still lose power.
            (Status::Killed, Fault::PowerFail(b1), Status::PoweredOff),
            (Status::Killed, Fault::Restart(b1), Status::Up),
            (Status::PoweredOff, Fault::Restart(b1), Status::Up),
            (Status::Up, Fault::Restart(b1), Status::Up),
            (Status::Up, Fault::Pause(b1), Status::Paused),
            // Pausing a dead process does nothing; resuming it does not bring it back.
            (Status::Killed, Fault::Pause(b1), Status::Killed),
            (Status::Killed, Fault::Resume(b1), Status::Killed),
            (Status::Paused, Fault::Resume(b1), Status::Up),
            (Status::Up, Fault::Kill(b2), Status::Up),
            (Status::Up, Fault::Heal, Status::Up),
        ];
        for (before, fault, after) in cases {
            assert_eq!(before.after(before.change(b1, &fault)), after, "{before:?} + {fault:?}");
        }
        assert_eq!(Status::Up.change(b1, &Fault::Restart(b1)), ProcessChange::Start { stop_first: true });
        assert_eq!(Status::Killed.change(b1, &Fault::Restart(b1)), ProcessChange::Start { stop_first: false });
    }
}
