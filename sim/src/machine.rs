//! The state machine each node runs, and what survives it.

use ksim_cluster::broker::{Broker, BrokerDisk};
use ksim_cluster::client::Client;
use ksim_cluster::controller::{Controller, ControllerDisk};
use ksim_cluster::effects::{Effects, Input, StateMachine};
use ksim_cluster::time::SimTime;

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
