//! A client engine's view of its connections to brokers: which are set up, which are being set
//! up, and how long to wait for one that is.
//!
//! Kafka's `NetworkClient` gives a connection being set up `socket.connection.setup.timeout.ms`
//! to complete its handshake (`ClusterConnectionStates.isConnectionSetupTimeout`); past it,
//! `NetworkClient.handleTimedOutConnections` disconnects the node, which fails its in-flight
//! requests and sends the client to another node, exactly as a reset would. Each setup failure
//! in a row doubles the next timeout up to `socket.connection.setup.timeout.max.ms`
//! (`updateConnectionSetupTimeout`); a connection that completes resets it (`ready`), and so
//! does the loss of one that had completed (`disconnected` when not `CONNECTING`). Kafka draws
//! ±20% jitter around each timeout; ksim leaves it out.
//!
//! The handshake's completion is what the world tells the client with
//! [`Input::ConnectionEstablished`](crate::effects::Input::ConnectionEstablished); any response
//! from the broker proves it too. A host that is down (no power, or cut off) never completes it;
//! a live host whose broker process is dead refuses at once (a reset, `Input::ConnectionClosed`).
//!
//! ksim's fabric keeps one connection per pair of nodes; a request timeout does not close it, so
//! unlike Kafka (which disconnects on a request timeout) a request timeout leaves the connection
//! set up here.

use crate::config::ConnectionSetupTimeout;
use crate::effects::{Effects, Input};
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::Message;
use crate::time::SimTime;
use crate::timer::{ClientEngine, Timer};
use crate::topic::BrokerId;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// No connection, and none being set up.
    #[default]
    Disconnected,
    /// A request went out on a connection not yet set up; its setup timer runs.
    Connecting,
    Established,
}

#[derive(Clone, Copy, Debug, Default)]
struct Broker {
    state: State,
    /// Setup failures in a row (Kafka's `failedConnectAttempts`).
    setup_failures: u32,
}

#[derive(Debug)]
pub struct Connections {
    engine: ClientEngine,
    timeout: ConnectionSetupTimeout,
    brokers: BTreeMap<BrokerId, Broker>,
}

impl Connections {
    pub fn new(engine: ClientEngine, timeout: ConnectionSetupTimeout) -> Self {
        Connections { engine, timeout, brokers: BTreeMap::new() }
    }

    /// The setup timeout the next connection to `broker` gets: the base doubled per failure in a
    /// row, up to the max (Kafka's `ExponentialBackoff.backoff(failedConnectAttempts)`).
    pub fn setup_timeout_ms(&self, broker: BrokerId) -> u64 {
        let failures = self.brokers.get(&broker).map_or(0, |b| b.setup_failures);
        let doubled = self.timeout.base_ms.saturating_mul(1u64 << failures.min(32));
        doubled.min(self.timeout.max_ms.max(self.timeout.base_ms))
    }

    /// After the engine acted: every request it sent (`owns` tells its correlation ids from the
    /// other engine's) to a broker with no connection starts that connection's setup timer.
    pub fn track_sends(&mut self, now: SimTime, owns: impl Fn(u64) -> bool, fx: &mut Effects) {
        let targets: Vec<BrokerId> = fx
            .sends
            .iter()
            .filter_map(|(to, message)| match (to, message) {
                (NodeId::Broker(b), Message::Request { correlation_id, .. }) if owns(*correlation_id) => Some(*b),
                _ => None,
            })
            .collect();
        for broker in targets {
            let timeout_ms = self.setup_timeout_ms(broker);
            let entry = self.brokers.entry(broker).or_default();
            if entry.state == State::Disconnected {
                entry.state = State::Connecting;
                fx.set_timer(Timer::ConnectionSetup(self.engine, broker), now.plus_ms(timeout_ms));
            }
        }
    }

    /// The handshake completed, or the broker answered: the connection is up.
    pub fn on_established(&mut self, broker: BrokerId, fx: &mut Effects) {
        let entry = self.brokers.entry(broker).or_default();
        if entry.state == State::Connecting {
            fx.cancel_timer(Timer::ConnectionSetup(self.engine, broker));
        }
        *entry = Broker { state: State::Established, setup_failures: 0 };
    }

    /// Fold an input into the connection state before the engine handles it, and translate a
    /// setup timeout into what it amounts to: the connection is closed
    /// (`NetworkClient.handleTimedOutConnections` → `processTimeoutDisconnection`).
    pub fn observe(&mut self, input: Input, fx: &mut Effects) -> Input {
        match input {
            Input::ConnectionEstablished { peer: NodeId::Broker(broker) }
            | Input::Message { from: NodeId::Broker(broker), message: Message::Response { .. } } => {
                self.on_established(broker, fx)
            }
            Input::ConnectionClosed { peer: NodeId::Broker(broker) } => self.on_disconnected(broker, fx),
            Input::Timer(Timer::ConnectionSetup(engine, broker)) if engine == self.engine => {
                let timeout_ms = self.setup_timeout_ms(broker);
                if let Some(entry) = self.brokers.get_mut(&broker).filter(|b| b.state == State::Connecting) {
                    fx.note(Note::ConnectionSetupTimedOut { broker, timeout_ms });
                    // As `on_disconnected`, less cancelling the timer that just fired.
                    entry.state = State::Disconnected;
                    entry.setup_failures = entry.setup_failures.saturating_add(1);
                    return Input::ConnectionClosed { peer: NodeId::Broker(broker) };
                }
            }
            _ => {}
        }
        input
    }

    /// The connection is gone: reset by the peer, or its setup timed out (the caller then treats
    /// it as a reset). One lost while being set up counts as a setup failure; one lost after it
    /// was set up starts the count again (`ClusterConnectionStates.disconnected`).
    pub fn on_disconnected(&mut self, broker: BrokerId, fx: &mut Effects) {
        let entry = self.brokers.entry(broker).or_default();
        match entry.state {
            State::Connecting => {
                fx.cancel_timer(Timer::ConnectionSetup(self.engine, broker));
                entry.setup_failures = entry.setup_failures.saturating_add(1);
            }
            State::Established => entry.setup_failures = 0,
            State::Disconnected => {}
        }
        entry.state = State::Disconnected;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;

    const B: BrokerId = 1;

    fn request_to(broker: BrokerId) -> Effects {
        let mut fx = Effects::default();
        fx.send(NodeId::Broker(broker), Message::Request { correlation_id: 7, body: Request::InitProducerId });
        fx
    }

    /// Send a request at `at_ms` and return the setup deadline it got (if it started one).
    fn send(c: &mut Connections, at_ms: u64) -> Option<SimTime> {
        let mut fx = request_to(B);
        c.track_sends(SimTime::from_ms(at_ms), |_| true, &mut fx);
        fx.timer_ops.iter().find_map(|op| match op {
            crate::effects::TimerOp::Set(Timer::ConnectionSetup(_, b), at) if *b == B => Some(*at),
            _ => None,
        })
    }

    #[test]
    fn setup_timeout_doubles_per_failure_up_to_the_max_and_resets_once_established() {
        let mut c = Connections::new(ClientEngine::Producer, ConnectionSetupTimeout::default());
        let mut fx = Effects::default();
        let mut waits = Vec::new();
        for _ in 0..4 {
            let at = send(&mut c, 0).expect("a setup timer starts");
            waits.push(at.0 / 1_000);
            c.on_disconnected(B, &mut fx);
        }
        assert_eq!(waits, [10_000, 20_000, 30_000, 30_000]);

        send(&mut c, 0);
        c.on_established(B, &mut fx);
        assert_eq!(c.setup_timeout_ms(B), 10_000);
        assert_eq!(send(&mut c, 5), None, "an established connection needs no setup timer");
    }

    #[test]
    fn a_second_request_while_connecting_keeps_the_first_deadline() {
        let mut c = Connections::new(ClientEngine::Consumer, ConnectionSetupTimeout::default());
        assert_eq!(send(&mut c, 0), Some(SimTime::from_ms(10_000)));
        assert_eq!(send(&mut c, 3_000), None);
    }

    #[test]
    fn losing_an_established_connection_resets_the_failures() {
        let mut c = Connections::new(ClientEngine::Producer, ConnectionSetupTimeout::default());
        let mut fx = Effects::default();
        send(&mut c, 0);
        c.on_disconnected(B, &mut fx);
        assert_eq!(c.setup_timeout_ms(B), 20_000);
        send(&mut c, 0);
        c.on_established(B, &mut fx);
        c.on_disconnected(B, &mut fx);
        assert_eq!(c.setup_timeout_ms(B), 10_000);
    }
}
