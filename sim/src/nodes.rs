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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Up,
    Paused,
    Killed,
    PoweredOff,
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

/// Each partition's current leader, as the controller's image says (if the controller runs) or
/// as the brokers that believe they lead say.
pub fn current_leaders(slots: &Nodes) -> BTreeMap<TopicPartition, BrokerId> {
    let mut leaders = BTreeMap::new();
    for slot in slots.values() {
        if let Some(Machine::Controller(c)) = &slot.machine {
            for (tp, p) in &c.image().partitions {
                if let Some(l) = p.leader {
                    leaders.insert(tp.clone(), l);
                }
            }
            return leaders;
        }
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

/// Every node of a run, by id.
pub type Nodes = BTreeMap<NodeId, Slot>;
