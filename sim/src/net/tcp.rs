//! TCP, as far as Kafka can tell: connections carry requests and their responses, a cut holds
//! segments back until it heals, and a process that restarted answers its predecessor's
//! connections with a reset.
//!
//! Kafka runs every request over TCP. A response travels on the connection its request came on:
//! if the requester died, restarted or gave up on the request (its request timeout closes the
//! connection), the response goes nowhere. While a network partition cuts a link, TCP keeps
//! retransmitting what was sent: the messages arrive, in order, once the cut heals, unless the
//! receiver restarted meanwhile, in which case the sender gets a reset.

use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::Message;
use std::collections::BTreeMap;

/// A message a cut holds back, with the receiver's incarnation when it was sent.
#[derive(Debug)]
pub struct Held {
    pub id: u64,
    pub message: Message,
    pub incarnation: u64,
}

/// The connection state the world keeps between nodes.
#[derive(Debug, Default)]
pub struct Tcp {
    /// Messages a network partition holds back, per (sender, receiver), oldest first.
    held: BTreeMap<(NodeId, NodeId), Vec<Held>>,
    /// Requests on the wire, (sender, correlation id) -> receiver.
    open_requests: BTreeMap<(NodeId, u64), NodeId>,
    /// (crashed node, peer): the crashed process's kernel closed its connection to the peer, and
    /// its FIN waits behind a cut (the kernel retransmits it until the link heals).
    closes: std::collections::BTreeSet<(NodeId, NodeId)>,
}

/// Which of a node's Kafka clients sent a request, by its correlation id: a client node runs a
/// producer (0), consumers (1 + the engine's number) and an operator's admin client side by side,
/// each with its own connections (`ksim_cluster::client`'s id ranges). A broker's or controller's
/// requests are all in the first range.
fn client_of(correlation_id: u64) -> u8 {
    if correlation_id >= ksim_cluster::client::ADMIN_CORRELATION_BASE {
        u8::MAX
    } else if let Some(k) = ksim_cluster::consumer::consumer_engine_of(correlation_id) {
        1 + k as u8
    } else {
        0
    }
}

/// Whether a receiver whose process has started `starts` times is no longer the process a
/// message sent to incarnation `incarnation` was meant for. (Incarnation 0: sent before the
/// receiver first booted, at time 0; its boot is not a restart.)
pub fn restarted_since(incarnation: u64, starts: u64) -> bool {
    incarnation != 0 && starts != incarnation
}

impl Tcp {
    pub fn request_sent(&mut self, from: NodeId, correlation_id: u64, to: NodeId) {
        self.open_requests.insert((from, correlation_id), to);
    }

    /// Whether `requester` still waits, on a connection to `responder`, for this response.
    pub fn request_open(&self, requester: NodeId, correlation_id: u64, responder: NodeId) -> bool {
        self.open_requests.get(&(requester, correlation_id)) == Some(&responder)
    }

    pub fn response_arrived(&mut self, requester: NodeId, correlation_id: u64) {
        self.open_requests.remove(&(requester, correlation_id));
    }

    /// The requester closed the connection this request was on (another request on it timed
    /// out): the request is no longer open, and its response will find no connection.
    pub fn request_abandoned(&mut self, requester: NodeId, correlation_id: u64) {
        self.open_requests.remove(&(requester, correlation_id));
    }

    /// Kafka's client closes the connection of a request that timed out: what was held on it,
    /// either way, is gone. Returns the peer the connection went to.
    ///
    /// Except the answers to requests still open: ksim keeps one connection per pair of nodes,
    /// where a node running several Kafka clients (a Connect worker's producer and consumer, a
    /// Streams thread's) has one per client, and one client's timeout does not touch another's
    /// connection. Found by `ksim fuzz scenarios/connect-worker-dies.ron --seeds 11..12`: a
    /// producer's timeout threw away the JoinGroup answer its worker's consumer was waiting for,
    /// and the consumer waited out rebalance.timeout.ms while the run ended.
    ///
    /// What the requester's other clients sent, held behind a cut on their own connections,
    /// stays held: only the timed-out client's messages go.
    pub fn request_timed_out(&mut self, requester: NodeId, correlation_id: u64) -> Option<NodeId> {
        let peer = self.open_requests.remove(&(requester, correlation_id))?;
        let client = client_of(correlation_id);
        if let Some(out) = self.held.get_mut(&(requester, peer)) {
            out.retain(|held| match &held.message {
                Message::Request { correlation_id, .. } => client_of(*correlation_id) != client,
                _ => false,
            });
            if out.is_empty() {
                self.held.remove(&(requester, peer));
            }
        }
        let open = &self.open_requests;
        if let Some(back) = self.held.get_mut(&(peer, requester)) {
            back.retain(|held| match &held.message {
                Message::Response { correlation_id, .. } => open.get(&(requester, *correlation_id)) == Some(&peer),
                _ => false,
            });
            if back.is_empty() {
                self.held.remove(&(peer, requester));
            }
        }
        Some(peer)
    }

    /// Whether another of `requester`'s clients than the one that sent `correlation_id` still
    /// waits for an answer from `peer`: while one does, its own connection to `peer` is open, and
    /// a crash of `peer` closes it. (The timed-out client's other requests on its connection
    /// fail with it in Kafka; ksim leaves them to their own timeouts.)
    pub fn another_client_waits(&self, requester: NodeId, correlation_id: u64, peer: NodeId) -> bool {
        let client = client_of(correlation_id);
        self.open_requests
            .range((requester, 0)..=(requester, u64::MAX))
            .any(|((_, id), to)| *to == peer && client_of(*id) != client)
    }

    pub fn hold(&mut self, from: NodeId, to: NodeId, held: Held) {
        self.held.entry((from, to)).or_default().push(held);
    }

    /// What was held on every link `whole(from, to)` says is whole again, in link order.
    pub fn take_reconnected(&mut self, whole: impl Fn(NodeId, NodeId) -> bool) -> Vec<((NodeId, NodeId), Vec<Held>)> {
        let links: Vec<(NodeId, NodeId)> = self.held.keys().filter(|(a, b)| whole(*a, *b)).copied().collect();
        links.into_iter().map(|link| (link, self.held.remove(&link).unwrap_or_default())).collect()
    }

    /// `node`'s process crashed while cut off from `peer`: the connection's close reaches the
    /// peer when the link heals.
    pub fn hold_close(&mut self, node: NodeId, peer: NodeId) {
        self.closes.insert((node, peer));
    }

    /// The held closes on every link `whole(node, peer)` says is whole again.
    pub fn take_reconnected_closes(&mut self, whole: impl Fn(NodeId, NodeId) -> bool) -> Vec<(NodeId, NodeId)> {
        let ready: Vec<(NodeId, NodeId)> = self.closes.iter().filter(|(a, b)| whole(*a, *b)).copied().collect();
        for link in &ready {
            self.closes.remove(link);
        }
        ready
    }

    /// A dead process's queued sends and open requests die with it, and so does its side of
    /// every connection whose close had not reached it.
    pub fn process_died(&mut self, node: NodeId) {
        self.closes.retain(|(_, peer)| *peer != node);
        self.held.retain(|(from, _), _| *from != node);
        self.open_requests.retain(|(from, _), _| *from != node);
    }
}
