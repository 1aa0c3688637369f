//! The world's side of the network: every message sent is recorded, routed by the fabric, and
//! delivered, dropped or held back by a cut; the TCP rules it follows are [`crate::net::tcp`]'s.

use super::driver::Wake;
use super::World;
use crate::net::fabric::{Fate, Reachability};
use crate::net::tcp::{self, Held};
use crate::nodes::Status;
use crate::trace::{DropReason, EventKind};
use ksim_cluster::effects::Input;
use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::Message;
use ksim_cluster::time::SimTime;

impl World {
    pub(super) fn reachability(&self, node: NodeId) -> Reachability {
        match self.slots.get(&node).map(|s| s.status) {
            Some(Status::Up | Status::Paused) => Reachability::Up,
            Some(Status::PoweredOff) => Reachability::PoweredOff,
            Some(Status::Killed | Status::Stopped) | None => Reachability::ProcessDown,
        }
    }

    pub(super) fn send(&mut self, now: SimTime, from: NodeId, to: NodeId, message: Message) {
        let id = self.next_message_id;
        self.next_message_id += 1;
        self.record(
            from,
            EventKind::Send { id, to, api: message.api(), request: message.is_request(), summary: message.to_string() },
        );
        match &message {
            Message::Request { correlation_id, .. } => self.tcp.request_sent(from, *correlation_id, to),
            // A response travels on the connection its request came on. If the requester has
            // since died (and maybe restarted) or given up on the request, that connection is
            // closed: the response goes nowhere (and must not reach a new process whose
            // correlation ids start again).
            Message::Response { correlation_id, .. } if !self.tcp.request_open(to, *correlation_id, from) => {
                self.record(from, EventKind::Drop { id, to, reason: DropReason::ConnectionClosed });
                return;
            }
            Message::Response { .. } => {}
            // KRaft's messages carry their own epochs and offsets; the Raft member drops a stale
            // answer itself, so none is tied to a connection here.
            Message::Raft(_) => {}
        }
        let receiver = self.reachability(to);
        match self.fabric.route(now.0, from, to, receiver) {
            Fate::Deliver { at_us, retransmits } => {
                if retransmits > 0 {
                    // The first copy was lost; TCP resends it after its retransmission timeout.
                    self.record(from, EventKind::Drop { id, to, reason: DropReason::Lost });
                }
                self.schedule_delivery(id, from, to, message, SimTime(at_us))
            }
            Fate::Drop { reason, notify_sender_at_us } => {
                self.record(from, EventKind::Drop { id, to, reason });
                if reason == DropReason::Partitioned {
                    self.hold(id, from, to, message);
                }
                if let Some(at_us) = notify_sender_at_us {
                    self.schedule_connection_closed(from, to, SimTime(at_us));
                }
            }
        }
    }

    /// A message arrives. `incarnation` is the receiver's process when it was sent: a process
    /// that restarted since never had that connection, and answers with a reset.
    pub(super) fn deliver(&mut self, id: u64, from: NodeId, to: NodeId, message: Message, incarnation: u64) {
        // (Incarnation 0: sent before the receiver first booted, at time 0; its boot is not a restart.)
        let restarted = self.slots.get(&to).is_some_and(|s| tcp::restarted_since(incarnation, s.starts));
        if restarted && self.reachability(to) == Reachability::Up && !self.fabric.is_cut(from, to) {
            self.record(to, EventKind::Drop { id, to, reason: DropReason::ConnectionClosed });
            let at_us = self.now().0 + self.fabric.latency_back_us(to, from);
            self.schedule_connection_closed(from, to, SimTime(at_us));
            return;
        }
        let reason = match self.reachability(to) {
            Reachability::Up if self.fabric.is_cut(from, to) => Some(DropReason::Partitioned),
            Reachability::Up => None,
            Reachability::ProcessDown => Some(DropReason::ReceiverDown),
            Reachability::PoweredOff => Some(DropReason::ReceiverPoweredOff),
        };
        if let Some(reason) = reason {
            self.record(to, EventKind::Drop { id, to, reason });
            if reason == DropReason::Partitioned {
                self.hold(id, from, to, message);
            }
            return;
        }
        if let Message::Response { correlation_id, .. } = &message {
            self.tcp.response_arrived(to, *correlation_id);
        }
        let inbox = self.slots.get(&to).and_then(|s| s.inbox.clone());
        match inbox {
            Some(inbox) => {
                self.record(to, EventKind::Deliver { id, from });
                if matches!(from, NodeId::Client(_)) && !self.fabric.is_connected(from, to) {
                    // A client's first message on a new connection: the handshake's answer
                    // tells the client its connection is set up, a link's latency later. (The
                    // handshake really precedes the message; ksim folds the two together.)
                    let at_us = self.now().0 + self.fabric.base_latency_us(to, from);
                    self.driver.wake_at(SimTime(at_us), Wake::ConnectionEstablished { node: from, peer: to });
                }
                self.fabric.connected(from, to);
                let _ = inbox.send(Input::Message { from, message });
            }
            None => self.record(to, EventKind::Drop { id, to, reason: DropReason::ReceiverDown }),
        }
    }

    fn hold(&mut self, id: u64, from: NodeId, to: NodeId, message: Message) {
        let incarnation = self.slots.get(&to).map_or(0, |s| s.starts);
        self.tcp.hold(from, to, Held { id, message, incarnation });
    }

    /// After the network changed: resend what a cut held back on every link that is whole again,
    /// as TCP's retransmission would. A receiver that restarted meanwhile answers with a reset.
    pub(super) fn release_held(&mut self, now: SimTime) {
        let fabric = &self.fabric;
        for (node, peer) in self.tcp.take_reconnected_closes(|a, b| !fabric.is_cut(a, b)) {
            let at_us = self.fabric.retransmit_at(now.0, node, peer);
            self.schedule_connection_closed(peer, node, SimTime(at_us));
        }
        let fabric = &self.fabric;
        for ((from, to), messages) in self.tcp.take_reconnected(|a, b| !fabric.is_cut(a, b)) {
            let starts = self.slots.get(&to).map_or(0, |s| s.starts);
            let same_process = matches!(self.reachability(to), Reachability::Up)
                && messages.first().is_some_and(|held| !tcp::restarted_since(held.incarnation, starts));
            if same_process {
                for Held { id, message, .. } in messages {
                    let at_us = self.fabric.retransmit_at(now.0, from, to);
                    self.schedule_delivery(id, from, to, message, SimTime(at_us));
                }
            } else if self.reachability(to) != Reachability::PoweredOff {
                let at_us = self.fabric.retransmit_at(now.0, from, to) + self.fabric.latency_back_us(to, from);
                self.schedule_connection_closed(from, to, SimTime(at_us));
            }
        }
    }

    fn schedule_delivery(&mut self, id: u64, from: NodeId, to: NodeId, message: Message, at: SimTime) {
        let incarnation = self.slots.get(&to).map_or(0, |s| s.starts);
        self.driver.wake_at(at, Wake::Deliver { id, from, to, message, incarnation });
    }

    pub(super) fn schedule_connection_closed(&mut self, node: NodeId, peer: NodeId, at: SimTime) {
        self.driver.wake_at(at, Wake::ConnectionClosed { node, peer });
    }
}
