//! The world on madsim: each node's process is a madsim node, and every wake-up the world asks
//! for is a task that sleeps until its deadline.
//!
//! A node's main task ([`node_main`]) starts the state machine from the node's disk, starts the
//! node's application (for a client node), then takes one input at a time from its inbox. A
//! killed node's tasks are dropped by madsim; a restart runs [`node_main`] again, from the disk
//! alone. A timer's task runs on the node that set it, so killing the node kills its timers and
//! pausing it freezes them; a message's task runs on the fabric's own node, which no fault
//! touches. All of them share the world behind one lock; madsim runs one task at a time, so the
//! lock is never contended, and every step is recorded in order.

use crate::apps;
use crate::scenario::App;
use crate::world::driver::{Driver, ProcessControl, Wake};
use crate::world::World;
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub async fn node_main(world: Arc<Mutex<World>>, node: NodeId, app: Option<(App, u64)>) {
    let Some(mut inbox) = world.lock().expect("world lock").start_node(node) else { return };
    if let Some((app, start_ms)) = app {
        madsim::task::spawn(apps::run(world.clone(), node, app, start_ms));
    }
    while let Some(input) = inbox.recv().await {
        world.lock().expect("world lock").step(node, input);
    }
}

/// The madsim node hosting each ksim node, filled in as the run creates them.
pub type MadsimNodes = Arc<Mutex<BTreeMap<NodeId, madsim::task::NodeId>>>;

/// Drives a world on madsim's virtual time.
pub struct MadsimDriver {
    world: Weak<Mutex<World>>,
    fabric: Option<madsim::runtime::NodeHandle>,
    /// `Instant` of virtual time zero.
    origin: madsim::time::Instant,
    nodes: MadsimNodes,
}

impl MadsimDriver {
    /// Must be called inside the runtime. `fabric` is the node message tasks run on.
    pub fn new(world: Weak<Mutex<World>>, fabric: madsim::runtime::NodeHandle, nodes: MadsimNodes) -> Self {
        // Inside the runtime madsim's clock is virtual: this reads the simulation's start, not the
        // wall clock.
        #[allow(clippy::disallowed_methods)]
        let origin = madsim::time::Instant::now() - madsim::time::TimeHandle::current().elapsed();
        MadsimDriver { world, fabric: Some(fabric), origin, nodes }
    }
}

impl Driver for MadsimDriver {
    fn now(&self) -> SimTime {
        crate::clock::now()
    }

    fn wake_at(&mut self, at: SimTime, wake: Wake) {
        let world = self.world.upgrade().expect("the world outlives its tasks");
        let deadline = self.origin + Duration::from_micros(at.0);
        // A timer belongs to the node that set it (the one running now); the network's wake-ups
        // to the fabric's node.
        let on_fabric = !matches!(wake, Wake::Timer { .. });
        let task = async move {
            madsim::time::sleep_until(deadline).await;
            world.lock().expect("world lock").wake(wake);
        };
        if on_fabric {
            self.fabric.as_ref().expect("the fabric node lives until the run is released").spawn(task);
        } else {
            madsim::task::spawn(task);
        }
    }

    fn control(&mut self, node: NodeId, control: ProcessControl) {
        let Some(id) = self.nodes.lock().expect("madsim nodes").get(&node).copied() else { return };
        let handle = madsim::runtime::Handle::current();
        match control {
            ProcessControl::Kill => handle.kill(id),
            // madsim re-runs the node's init: `node_main`, which calls `World::start_node`.
            ProcessControl::Restart => handle.restart(id),
            ProcessControl::Pause => handle.pause(id),
            ProcessControl::Resume => handle.resume(id),
        }
    }

    fn release(&mut self) {
        self.fabric = None;
    }
}
