//! Who is who in a simulated cluster.
//!
//! Every participant is a node: the controller, the brokers, and client applications (producers,
//! consumers). Trace events name nodes with these ids, never with runtime task ids.

use crate::topic::BrokerId;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeId {
    /// A KRaft controller, by its `node.id`. ksim runs one controller for now; the id leaves room
    /// for a quorum.
    Controller(i32),
    /// A broker, by its `node.id`.
    Broker(BrokerId),
    /// A client application, by its index in the scenario's client list (the trace header holds
    /// the names).
    Client(u32),
}

impl NodeId {
    pub fn broker_id(self) -> Option<BrokerId> {
        match self {
            NodeId::Broker(id) => Some(id),
            _ => None,
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // ksim's single controller (node 3000) is just "controller"; the controllers of a
            // quorum are told apart by id.
            NodeId::Controller(3000) => write!(f, "controller"),
            NodeId::Controller(id) => write!(f, "controller-{id}"),
            NodeId::Broker(id) => write!(f, "broker-{id}"),
            NodeId::Client(index) => write!(f, "client-{index}"),
        }
    }
}
