//! The fabric: ksim's network, decided in one place.
//!
//! Kafka speaks TCP, so messages between two nodes arrive in the order they were sent. The fabric
//! draws each message's latency from the network stream, then delays it further if needed so it
//! never overtakes an earlier message on the same connection. It drops messages across network
//! partitions (each direction separately, so a one-way partition is possible) and with the
//! configured loss. What a dropped message's sender notices depends on why it was dropped: a dead
//! process's host resets the connection at once; a partitioned or powered-off peer says nothing,
//! and the sender only finds out when its request times out.
//!
//! Random loss (`network.loss`) is packet loss under TCP: a lost segment is not gone, it is
//! retransmitted after the retransmission timeout, which starts at Linux's `TCP_RTO_MIN` (200 ms)
//! on a low-latency link and doubles with each loss of the same segment, up to `TCP_RTO_MAX`
//! (120 s) and `tcp_retries2` (15) retransmissions, after which the connection breaks. The
//! stream stays in order: later messages on the connection wait behind the lost one.

use crate::trace::DropReason;
use ksim_cluster::node::NodeId;
use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet};

/// The network's view of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    Up,
    /// The process is dead but the host is up: connections are refused or reset.
    ProcessDown,
    /// The host is off: nothing answers.
    PoweredOff,
}

#[derive(Debug)]
pub struct Fabric {
    latency_us_min: u64,
    latency_us_max: u64,
    loss: f64,
    rng: ChaCha8Rng,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Extra latency on a link, both directions.
    slow: BTreeMap<(NodeId, NodeId), u64>,
    /// When the last message on each directed link will arrive (for FIFO).
    last_arrival_us: BTreeMap<(NodeId, NodeId), u64>,
    /// Open connections (unordered pairs, smaller id first).
    connections: BTreeSet<(NodeId, NodeId)>,
}

/// Linux's `TCP_RTO_MIN`: the retransmission timeout of a connection whose round trip is far
/// shorter (`include/net/tcp.h`).
pub const TCP_RTO_MIN_US: u64 = 200_000;
/// Linux's `TCP_RTO_MAX`.
pub const TCP_RTO_MAX_US: u64 = 120_000_000;
/// Linux's `net.ipv4.tcp_retries2` default: retransmissions before the connection is broken.
pub const TCP_RETRIES2: u32 = 15;

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives at this virtual time (µs), after `retransmits` losses TCP recovered from.
    Deliver { at_us: u64, retransmits: u32 },
    /// It is dropped; if `notify_sender_at_us` is set, the sender learns its connection closed
    /// then.
    Drop { reason: DropReason, notify_sender_at_us: Option<u64> },
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Fabric {
    pub fn new(latency_ms_min: u64, latency_ms_max: u64, loss: f64, rng: ChaCha8Rng) -> Self {
        // madsim cannot wait less than a millisecond, so no message arrives sooner than that.
        let latency_us_min = latency_ms_min.max(1) * 1000;
        Fabric {
            latency_us_min,
            latency_us_max: (latency_ms_max * 1000).max(latency_us_min),
            loss,
            rng,
            cut: BTreeSet::new(),
            slow: BTreeMap::new(),
            last_arrival_us: BTreeMap::new(),
            connections: BTreeSet::new(),
        }
    }

    fn latency_us(&mut self, from: NodeId, to: NodeId) -> u64 {
        let span = self.latency_us_max - self.latency_us_min;
        let jitter = if span == 0 { 0 } else { self.rng.next_u64() % (span + 1) };
        let extra_ms = self.slow.get(&pair(from, to)).copied().unwrap_or(0);
        self.latency_us_min + jitter + extra_ms * 1000
    }

    /// Decide the fate of a message sent now.
    pub fn route(&mut self, now_us: u64, from: NodeId, to: NodeId, receiver: Reachability) -> Fate {
        // A cut drops the packet before it reaches the host: dead or alive, nothing comes back.
        if self.cut.contains(&(from, to)) {
            return Fate::Drop { reason: DropReason::Partitioned, notify_sender_at_us: None };
        }
        match receiver {
            Reachability::ProcessDown => {
                let back = now_us + self.latency_us(from, to) * 2;
                return Fate::Drop { reason: DropReason::ReceiverDown, notify_sender_at_us: Some(back) };
            }
            Reachability::PoweredOff => {
                return Fate::Drop { reason: DropReason::ReceiverPoweredOff, notify_sender_at_us: None }
            }
            Reachability::Up => {}
        }
        // Each loss of the segment costs one retransmission timeout, doubling each time.
        let mut retransmits = 0;
        let mut sent_us = now_us;
        let mut rto_us = TCP_RTO_MIN_US;
        while self.loss > 0.0 && self.lost() {
            if retransmits == TCP_RETRIES2 {
                // The connection breaks; the sender learns it when its next write fails.
                return Fate::Drop { reason: DropReason::Lost, notify_sender_at_us: Some(sent_us + rto_us) };
            }
            retransmits += 1;
            sent_us += rto_us;
            rto_us = (rto_us * 2).min(TCP_RTO_MAX_US);
        }
        let mut at_us = sent_us + self.latency_us(from, to);
        // TCP: never overtake an earlier message on the same connection; later messages wait
        // behind a lost one.
        if let Some(&last) = self.last_arrival_us.get(&(from, to)) {
            at_us = at_us.max(last + 1);
        }
        self.last_arrival_us.insert((from, to), at_us);
        Fate::Deliver { at_us, retransmits }
    }

    /// One draw of the loss probability.
    fn lost(&mut self) -> bool {
        let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        draw < self.loss
    }

    /// When a message a cut held back arrives, resent now: after the link's latency, and never
    /// before an earlier message on the same connection.
    pub fn retransmit_at(&mut self, now_us: u64, from: NodeId, to: NodeId) -> u64 {
        let mut at_us = now_us + self.latency_us(from, to);
        if let Some(&last) = self.last_arrival_us.get(&(from, to)) {
            at_us = at_us.max(last + 1);
        }
        self.last_arrival_us.insert((from, to), at_us);
        at_us
    }

    /// How long a reply from `from` to `to` takes (for a reset).
    pub fn latency_back_us(&mut self, from: NodeId, to: NodeId) -> u64 {
        self.latency_us(from, to)
    }

    /// The link's latency without jitter: a fixed delay that draws nothing from the fabric's
    /// rng, for events ksim adds on top of a delivery (the handshake's answer), so that adding
    /// them does not move every later draw.
    pub fn base_latency_us(&self, from: NodeId, to: NodeId) -> u64 {
        let extra_ms = self.slow.get(&pair(from, to)).copied().unwrap_or(0);
        self.latency_us_min + extra_ms * 1000
    }

    /// Whether the two nodes have a connection.
    pub fn is_connected(&self, a: NodeId, b: NodeId) -> bool {
        self.connections.contains(&pair(a, b))
    }

    /// A message arrived: the two nodes now have a connection.
    pub fn connected(&mut self, a: NodeId, b: NodeId) {
        self.connections.insert(pair(a, b));
    }

    /// One side closed the connection between `a` and `b` (a request on it timed out); nobody is
    /// told, and the next message between them opens a new one.
    pub fn disconnected(&mut self, a: NodeId, b: NodeId) {
        self.connections.remove(&pair(a, b));
    }

    /// The node's process died: its connections close. Returns the peers that had one, with the
    /// time each learns of it.
    pub fn close_connections(&mut self, now_us: u64, node: NodeId) -> Vec<(NodeId, u64)> {
        let peers: Vec<NodeId> = self
            .connections
            .iter()
            .filter_map(|&(a, b)| {
                if a == node {
                    Some(b)
                } else if b == node {
                    Some(a)
                } else {
                    None
                }
            })
            .collect();
        self.connections.retain(|&(a, b)| a != node && b != node);
        self.last_arrival_us.retain(|&(a, b), _| a != node && b != node);
        peers.into_iter().map(|peer| (peer, now_us + self.latency_us(node, peer))).collect()
    }

    /// The node lost power: its connections are gone, but nobody is told.
    pub fn forget_connections(&mut self, node: NodeId) {
        self.connections.retain(|&(a, b)| a != node && b != node);
    }

    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
        self.slow.clear();
    }

    pub fn set_slow(&mut self, a: NodeId, b: NodeId, extra_latency_ms: u64) {
        self.slow.insert(pair(a, b), extra_latency_ms);
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    const A: NodeId = NodeId::Broker(1);
    const B: NodeId = NodeId::Broker(2);

    #[test]
    fn fifo_per_connection_under_random_latency() {
        let mut fabric = Fabric::new(1, 50, 0.0, stream(3, "network"));
        let mut last = 0;
        for i in 0..1000 {
            match fabric.route(i * 10, A, B, Reachability::Up) {
                Fate::Deliver { at_us, .. } => {
                    assert!(at_us > last, "message {i} arrives at {at_us}, not after {last}");
                    last = at_us;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn one_way_partition_drops_only_one_direction() {
        let mut fabric = Fabric::new(1, 5, 0.0, stream(3, "network"));
        fabric.cut(A, B);
        assert!(matches!(
            fabric.route(0, A, B, Reachability::Up),
            Fate::Drop { reason: DropReason::Partitioned, notify_sender_at_us: None }
        ));
        assert!(matches!(fabric.route(0, B, A, Reachability::Up), Fate::Deliver { .. }));
        fabric.heal();
        assert!(matches!(fabric.route(0, A, B, Reachability::Up), Fate::Deliver { .. }));
    }

    #[test]
    fn a_dead_process_resets_a_powered_off_host_stays_silent() {
        let mut fabric = Fabric::new(1, 5, 0.0, stream(3, "network"));
        assert!(matches!(
            fabric.route(0, A, B, Reachability::ProcessDown),
            Fate::Drop { notify_sender_at_us: Some(_), .. }
        ));
        assert!(matches!(
            fabric.route(0, A, B, Reachability::PoweredOff),
            Fate::Drop { notify_sender_at_us: None, .. }
        ));
    }

    #[test]
    fn closing_tells_every_connected_peer() {
        let mut fabric = Fabric::new(1, 5, 0.0, stream(3, "network"));
        let c = NodeId::Client(0);
        fabric.connected(A, B);
        fabric.connected(c, A);
        let peers: Vec<NodeId> = fabric.close_connections(0, A).into_iter().map(|(p, _)| p).collect();
        assert_eq!(peers, vec![B, c]);
        assert!(fabric.close_connections(0, A).is_empty());
    }

    #[test]
    fn a_lost_segment_is_retransmitted_and_later_messages_wait_behind_it() {
        // Half the segments lost: some messages need retransmissions, and none overtakes another.
        let mut fabric = Fabric::new(1, 1, 0.5, stream(3, "network"));
        let mut last = 0;
        let mut retransmitted = 0;
        let mut waited_behind = 0;
        for i in 0..200 {
            let now = i * 1_000;
            match fabric.route(now, A, B, Reachability::Up) {
                Fate::Deliver { at_us, retransmits } => {
                    assert!(at_us > last, "message {i} arrives at {at_us}, not after {last}");
                    if retransmits > 0 {
                        retransmitted += 1;
                        // 200 ms, then 400, 800, ...: at least the first timeout.
                        assert!(at_us >= now + TCP_RTO_MIN_US, "retransmitted {retransmits} times, yet at {at_us}");
                    } else if at_us > now + 1_000 {
                        waited_behind += 1;
                    }
                    last = at_us;
                }
                other => panic!("a lossy link still delivers: {other:?}"),
            }
        }
        assert!(retransmitted > 50, "{retransmitted} retransmitted");
        assert!(waited_behind > 0, "an unlost message behind a lost one waits for it");
    }

    #[test]
    fn a_link_that_loses_everything_breaks_the_connection_after_tcp_retries2() {
        let mut fabric = Fabric::new(1, 1, 1.0, stream(3, "network"));
        match fabric.route(0, A, B, Reachability::Up) {
            Fate::Drop { reason: DropReason::Lost, notify_sender_at_us: Some(at) } => {
                // 200 ms doubling, capped at 120 s: about 15 minutes, as Linux's default.
                assert!((600_000_000..1_200_000_000).contains(&at), "broken at {at} µs");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
