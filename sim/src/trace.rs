//! The trace: everything that happened in a run, in order.
//!
//! A trace is the product of a run. The TUI steps through it, the checker reads it, the snapshots
//! and the book quote it. Each event has a sequence number, a virtual time in microseconds, the
//! node it happened at (by our own name, never a runtime id) and what happened. The same scenario,
//! seed and ksim build always give a byte-identical trace; [`Trace::digest`] summarises it.

use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::protocol::ApiKey;
use ksim_cluster::timer::Timer;
use ksim_cluster::topic::BrokerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why the fabric did not deliver a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// A network partition cuts the link from sender to receiver.
    Partitioned,
    /// Random loss (`network.loss`): TCP retransmits the message after its retransmission
    /// timeout, so it still arrives, later, unless the connection breaks.
    Lost,
    /// The receiver's process is dead: its host answers with a reset, and the sender learns the
    /// connection closed.
    ReceiverDown,
    /// The receiver has no power: nothing answers at all.
    ReceiverPoweredOff,
    /// The connection this message travelled on was closed before it arrived.
    ConnectionClosed,
}

/// A fault applied to the world, by the scenario or a what-if.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// The process dies (`kill -9`); the page cache, and so every written record, survives.
    Kill(NodeId),
    /// The machine loses power: whatever was not flushed to disk is lost.
    PowerFail(NodeId),
    /// The process starts again from what its disk holds.
    Restart(NodeId),
    /// The process stops running (a long GC pause, a stalled VM) but keeps its sockets.
    Pause(NodeId),
    Resume(NodeId),
    /// Links between these groups are cut in both directions.
    Partition(Vec<Vec<NodeId>>),
    /// Messages from `from` to `to` are dropped; the other direction still works.
    PartitionOneWay {
        from: Vec<NodeId>,
        to: Vec<NodeId>,
    },
    /// Every partition is removed.
    Heal,
    /// Messages between the two nodes (both directions) take this much longer.
    SlowLink {
        a: NodeId,
        b: NodeId,
        extra_latency_ms: u64,
    },
}

impl Fault {
    /// The node whose process this fault acts on (none for network faults).
    pub fn node(&self) -> Option<NodeId> {
        match self {
            Fault::Kill(n) | Fault::PowerFail(n) | Fault::Restart(n) | Fault::Pause(n) | Fault::Resume(n) => Some(*n),
            Fault::Partition(_) | Fault::PartitionOneWay { .. } | Fault::Heal | Fault::SlowLink { .. } => None,
        }
    }
}

/// An invariant or history finding from the checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable name of the rule (`acked-write-lost`, `two-leaders-in-epoch`, …).
    pub rule: String,
    /// Whether Kafka promises this cannot happen under the scenario's configuration. A finding
    /// that is not a violation is a lesson (`acks=1` losing data), not a bug.
    pub violation: bool,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// A node sent a message. `id` names it in the matching `Deliver` or `Drop`.
    Send {
        id: u64,
        to: NodeId,
        api: ApiKey,
        request: bool,
        summary: String,
    },
    /// The message arrived in the receiver's socket buffer.
    Deliver {
        id: u64,
        from: NodeId,
    },
    Drop {
        id: u64,
        to: NodeId,
        reason: DropReason,
    },
    /// The node learned that its connection to `peer` closed.
    ConnectionClosed {
        peer: NodeId,
    },
    TimerFired {
        timer: Timer,
    },
    /// A state machine's own account of a decision.
    Note(Note),
    Fault(Fault),
    /// The scenario's narration for this moment.
    Narration(String),
    /// The application on a client node did something worth a line (`sent order-7`).
    App(String),
    /// The application finished processing a record it consumed (its side effect is done).
    Processed {
        partition: ksim_cluster::TopicPartition,
        offset: i64,
    },
    Finding(Finding),
    /// The run ended.
    End,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub time_us: u64,
    pub node: NodeId,
    pub kind: EventKind,
}

/// What a reader needs to interpret the events: who the nodes are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceHeader {
    pub scenario: String,
    pub title: String,
    pub seed: u64,
    pub brokers: Vec<BrokerId>,
    /// Client names, indexed by `NodeId::Client(i)`.
    pub clients: Vec<String>,
    pub duration_ms: u64,
    /// `broker.rack` of the brokers that have one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub racks: BTreeMap<BrokerId, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub header: TraceHeader,
    pub events: Vec<Event>,
}

impl Trace {
    /// A node's display name: `broker-1`, `controller`, or the client's scenario name.
    pub fn node_name(&self, node: NodeId) -> String {
        node_name(&self.header.clients, node)
    }

    /// The canonical form: one JSON object per line (header first), in order. Stable across
    /// runs, platforms and builds of the same version.
    pub fn canonical(&self) -> String {
        let mut out = serde_json::to_string(&self.header).expect("trace header serializes");
        out.push('\n');
        for event in &self.events {
            out.push_str(&serde_json::to_string(event).expect("trace events serialize"));
            out.push('\n');
        }
        out
    }

    /// 64-bit FNV-1a over the canonical form, as 16 hex digits.
    pub fn digest(&self) -> String {
        format!("{:016x}", crate::rng::fnv1a64(self.canonical().as_bytes()))
    }

    pub fn findings(&self) -> impl Iterator<Item = (&Event, &Finding)> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some((e, f)),
            _ => None,
        })
    }

    pub fn end_time_us(&self) -> u64 {
        self.events.last().map_or(0, |e| e.time_us)
    }
}

pub fn node_name(clients: &[String], node: NodeId) -> String {
    match node {
        NodeId::Client(i) => clients.get(i as usize).cloned().unwrap_or_else(|| format!("client-{i}")),
        other => other.to_string(),
    }
}
