//! Real clients in the world (`ksim serve`): each TCP connection a real Kafka client opens is a
//! client node without a state machine. Its requests enter the network here, as if its engine had
//! sent them, and the answers the brokers send it arrive in its inbox, which the live driver
//! turns back into bytes on the socket. Everything in between (the fabric's latency, the trace's
//! sends and deliveries, the checker) is the same as in a simulated run.

use super::World;
use crate::nodes::{Durable, Slot, Status};
use crate::rng::stream;
use crate::trace::EventKind;
use ksim_cluster::effects::Input;
use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::Message;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

impl World {
    /// A real client connected: a new client node named `name` (its address, in the trace
    /// header), and the inbox its answers arrive in.
    pub fn connect_external_client(&mut self, name: String) -> (NodeId, mpsc::UnboundedReceiver<Input>) {
        let node = NodeId::Client(self.header.clients.len() as u32);
        self.header.clients.push(name.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let slot = Slot {
            status: Status::Up,
            machine: None,
            durable: Durable::Nothing,
            inbox: Some(tx),
            timers: BTreeMap::new(),
            starts: 1,
            rng: stream(self.header.seed, &format!("live/{name}")),
            held_down: false,
        };
        self.slots.insert(node, slot);
        (node, rx)
    }

    /// A real client's request (already mapped to ksim's protocol) goes out on the network.
    pub fn send_external(&mut self, from: NodeId, to: NodeId, message: Message) {
        if self.is_finished() {
            return;
        }
        let now = self.now();
        self.send(now, from, to, message);
    }

    /// Something the live driver did for a real client that no state machine did: answered
    /// ApiVersions, refused a request it could not parse, saw the client hang up.
    pub fn record_external(&mut self, node: NodeId, what: String) {
        self.record(node, EventKind::App(what));
    }

    /// The client closed its connection (or the driver closed it): answers still on their way
    /// to it find no connection.
    pub fn disconnect_external_client(&mut self, node: NodeId) {
        if let Some(slot) = self.slots.get_mut(&node) {
            slot.status = Status::Stopped;
            slot.inbox = None;
        }
        self.tcp.process_died(node);
    }
}

impl World {
    /// How many times `node`'s process has started: a connection opened to an earlier process
    /// (before a restart, or a power failure since) is not known to the current one.
    pub fn incarnation(&self, node: NodeId) -> u64 {
        self.slots.get(&node).map_or(0, |s| s.starts)
    }
}
