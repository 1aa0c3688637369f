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
}

#[derive(Debug, Default)]
pub struct Effects {
    pub sends: Vec<(NodeId, Message)>,
    /// Set (or move) a timer. A timer is identified by its value: setting it again replaces it.
    pub timers: Vec<(Timer, SimTime)>,
    pub cancels: Vec<Timer>,
    pub notes: Vec<Note>,
}

impl Effects {
    pub fn send(&mut self, to: NodeId, message: Message) {
        self.sends.push((to, message));
    }

    pub fn set_timer(&mut self, timer: Timer, at: SimTime) {
        self.timers.push((timer, at));
    }

    pub fn cancel_timer(&mut self, timer: Timer) {
        self.cancels.push(timer);
    }

    pub fn note(&mut self, note: Note) {
        self.notes.push(note);
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty() && self.timers.is_empty() && self.cancels.is_empty() && self.notes.is_empty()
    }

    pub fn clear(&mut self) {
        self.sends.clear();
        self.timers.clear();
        self.cancels.clear();
        self.notes.clear();
    }
}

/// Every node kind implements this. `rng` is the node's own deterministic stream, handed in by
/// the simulator; a state machine draws randomness from nothing else.
pub trait StateMachine {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects);
}
