//! A node's main task: the process that hosts one state machine.
//!
//! It starts the state machine from the node's disk, starts the node's application (for a client
//! node), then takes one input at a time from its inbox. A killed node's task is dropped by madsim;
//! a restart runs this function again, from the disk alone.

use crate::apps;
use crate::scenario::App;
use crate::world::World;
use ksim_cluster::node::NodeId;
use std::sync::{Arc, Mutex};

pub async fn node_main(world: Arc<Mutex<World>>, node: NodeId, app: Option<(App, u64)>) {
    let mut inbox = world.lock().expect("world lock").start_node(node);
    if let Some((app, start_ms)) = app {
        madsim::task::spawn(apps::run(world.clone(), node, app, start_ms));
    }
    while let Some(input) = inbox.recv().await {
        world.lock().expect("world lock").step(node, input);
    }
}
