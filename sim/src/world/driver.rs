//! What the world needs from whatever drives it: the clock, wake-ups at a virtual time, and
//! control of the processes.
//!
//! The world itself never sleeps, spawns or reads a clock. A driver does: [`crate::host`] drives it
//! on madsim (every wake-up a task that sleeps until its deadline, every process a madsim node),
//! and a real-time loop could drive the same world for a live mode, where real clients connect
//! and madsim's runtime cannot run. The world asks for a wake-up with [`Driver::wake_at`]; when
//! the time comes the driver hands it back to [`crate::world::World::wake`].

use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::Message;
use ksim_cluster::time::SimTime;
use ksim_cluster::timer::Timer;

/// Something the world asked to happen at a later time.
#[derive(Debug)]
pub enum Wake {
    /// A node's timer is due. `generation` tells a live timer from one set again or cancelled
    /// since: only the latest setting fires.
    Timer { node: NodeId, timer: Timer, generation: u64 },
    /// A message reaches its receiver. `incarnation` is the receiver's process when it was sent.
    Deliver { id: u64, from: NodeId, to: NodeId, message: Message, incarnation: u64 },
    /// `node` learns that its connection to `peer` closed (a reset).
    ConnectionClosed { node: NodeId, peer: NodeId },
    /// `node`, a client, learns that the connection it opened to `peer` is set up (the TCP
    /// handshake's answer), which stops its `socket.connection.setup.timeout.ms`.
    ConnectionEstablished { node: NodeId, peer: NodeId },
    /// The kernel's flusher on a broker's host wakes up (Linux's `vm.dirty_writeback_centisecs`).
    /// It belongs to the host, not the process: it goes on while the process is dead.
    HostWriteback { node: NodeId },
    /// The next row of an external source table arrives (Connect). The table is outside every
    /// node: no fault touches it.
    SourceRow { source: String, index: usize },
}

/// What a fault does to a node's process, as the driver carries it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessControl {
    /// Stop the process and everything it runs (its timers, its application).
    Kill,
    /// Start the process again; it rebuilds itself from its disk ([`crate::world::World::start_node`]).
    Restart,
    /// Freeze the process: its tasks stop running, its sockets stay open.
    Pause,
    Resume,
}

pub trait Driver: Send {
    /// The current virtual time.
    fn now(&self) -> SimTime;
    /// Hand `wake` back to [`crate::world::World::wake`] at `at` (never earlier).
    fn wake_at(&mut self, at: SimTime, wake: Wake);
    fn control(&mut self, node: NodeId, control: ProcessControl);
    /// The run is over: drop whatever keeps tasks or runtime handles alive.
    fn release(&mut self) {}
}
