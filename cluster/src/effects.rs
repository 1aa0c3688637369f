//! The boundary between a state machine and the world.
//!
//! A state machine is driven by [`Input`]s and answers with [`Effects`]: messages to send, timers
//! to set or cancel, notes for the trace, and outputs for a client application. It never performs
//! any of them itself; the simulator does, and records each one.

use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::Message;
use crate::time::SimTime;
use crate::timer::Timer;

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The process starts (first boot or restart). Whatever it recovers, it recovers from the
    /// durable state it was built with.
    Start,
    Message {
        from: NodeId,
        message: Message,
    },
    Timer(Timer),
    /// The TCP connection to `peer` closed: the peer's process died and its operating system
    /// reset the connection. (A peer that lost power or sits behind a network partition closes
    /// nothing; requests to it simply time out.)
    ConnectionClosed {
        peer: NodeId,
    },
    /// The TCP handshake with `peer` completed: a connection this client started is set up.
    /// Only clients use it (their connection setup timeout, [`crate::connection`]); brokers and
    /// the controller ignore it.
    ConnectionEstablished {
        peer: NodeId,
    },
    /// An operator asks the process to stop gracefully (SIGTERM, `kafka-server-stop.sh`). It
    /// answers with [`Effects::exit`] once it is done.
    Shutdown,
}

/// One operation on a node's timers. A timer is identified by its value: setting it again moves
/// it, cancelling it removes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerOp {
    Set(Timer, SimTime),
    Cancel(Timer),
}

#[derive(Debug, Default)]
pub struct Effects {
    pub sends: Vec<(NodeId, Message)>,
    /// Timer operations in the order the state machine made them. They must be applied in that
    /// order: a timer set and then cancelled in one step is cancelled, one cancelled and then set
    /// is set (the last operation on a timer wins).
    pub timer_ops: Vec<TimerOp>,
    pub notes: Vec<Note>,
    /// Requests (by correlation id) the state machine gave up on because it closed their
    /// connection: an answer to one of them, if the peer sends it, finds no connection.
    pub abandoned: Vec<u64>,
    /// The process has finished shutting down and exits (after the rest of these effects).
    pub exit: bool,
}

impl Effects {
    pub fn send(&mut self, to: NodeId, message: Message) {
        self.sends.push((to, message));
    }

    pub fn set_timer(&mut self, timer: Timer, at: SimTime) {
        self.timer_ops.push(TimerOp::Set(timer, at));
    }

    pub fn cancel_timer(&mut self, timer: Timer) {
        self.timer_ops.push(TimerOp::Cancel(timer));
    }

    pub fn note(&mut self, note: Note) {
        self.notes.push(note);
    }

    /// The state machine closed the connection its request `correlation_id` went out on (Kafka's
    /// `NetworkClient` closes a connection when one of its requests times out): the request is
    /// abandoned, and an answer to it goes nowhere.
    pub fn abandon(&mut self, correlation_id: u64) {
        self.abandoned.push(correlation_id);
    }

    /// End the process cleanly once these effects are carried out.
    pub fn exit(&mut self) {
        self.exit = true;
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
            && self.timer_ops.is_empty()
            && self.notes.is_empty()
            && self.abandoned.is_empty()
            && !self.exit
    }

    pub fn clear(&mut self) {
        self.sends.clear();
        self.timer_ops.clear();
        self.notes.clear();
        self.abandoned.clear();
        self.exit = false;
    }
}

impl TimerOp {
    pub fn timer(&self) -> &Timer {
        match self {
            TimerOp::Set(timer, _) | TimerOp::Cancel(timer) => timer,
        }
    }

    /// Apply a step's operations, in order, to a node's live timers (timer -> deadline).
    pub fn apply_all(ops: impl IntoIterator<Item = TimerOp>, live: &mut std::collections::BTreeMap<Timer, SimTime>) {
        for op in ops {
            match op {
                TimerOp::Set(timer, at) => {
                    live.insert(timer, at);
                }
                TimerOp::Cancel(timer) => {
                    live.remove(&timer);
                }
            }
        }
    }
}

/// Every node kind implements this. `rng` is the node's own deterministic stream, handed in by
/// the simulator; a state machine draws randomness from nothing else.
pub trait StateMachine {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn live_after(build: impl FnOnce(&mut Effects)) -> BTreeMap<Timer, SimTime> {
        let mut fx = Effects::default();
        build(&mut fx);
        let mut live = BTreeMap::new();
        TimerOp::apply_all(fx.timer_ops, &mut live);
        live
    }

    #[test]
    fn a_timer_set_then_cancelled_in_one_step_is_cancelled() {
        // An acks=all produce with a lone in-sync leader is answered in the step that parked it:
        // its DelayedProduce timer is set and cancelled at once, and must not fire 30 s later.
        let live = live_after(|fx| {
            fx.set_timer(Timer::DelayedProduceExpiry(7), SimTime::from_ms(30_000));
            fx.cancel_timer(Timer::DelayedProduceExpiry(7));
        });
        assert!(live.is_empty(), "{live:?}");
    }

    #[test]
    fn a_timer_cancelled_then_set_in_one_step_is_set() {
        let live = live_after(|fx| {
            fx.cancel_timer(Timer::DelayedProduceExpiry(7));
            fx.set_timer(Timer::DelayedProduceExpiry(7), SimTime::from_ms(500));
        });
        assert_eq!(live.get(&Timer::DelayedProduceExpiry(7)), Some(&SimTime::from_ms(500)));
    }

    #[test]
    fn setting_a_timer_twice_keeps_the_last_deadline() {
        let live = live_after(|fx| {
            fx.set_timer(Timer::DelayedProduceExpiry(7), SimTime::from_ms(500));
            fx.set_timer(Timer::DelayedProduceExpiry(7), SimTime::from_ms(900));
        });
        assert_eq!(live.get(&Timer::DelayedProduceExpiry(7)), Some(&SimTime::from_ms(900)));
    }
}
