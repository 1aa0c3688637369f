//! The world is not tied to madsim: a plain event loop can drive it.
//!
//! `World` never spawns, sleeps or reads a clock; it asks its `Driver` for wake-ups and process
//! control. This test drives a three-broker cluster with a twenty-line discrete-event loop (no
//! madsim runtime, no tasks): the brokers register, catch up, and the controller elects a leader;
//! a killed broker is fenced and its partition fails over. A live mode's real-time driver stands
//! where this loop does.

use ksim_cluster::effects::Input;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{EventKind, Fault};
use ksim_sim::world::driver::{Driver, ProcessControl, Wake};
use ksim_sim::world::World;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedReceiver;

/// The loop's state, shared between the driver the world holds and the loop itself.
#[derive(Default)]
struct Agenda {
    now: SimTime,
    next_seq: u64,
    wakes: BTreeMap<(SimTime, u64), Wake>,
    controls: Vec<(NodeId, ProcessControl)>,
}

struct LoopDriver(Arc<Mutex<Agenda>>);

impl Driver for LoopDriver {
    fn now(&self) -> SimTime {
        self.0.lock().unwrap().now
    }

    fn wake_at(&mut self, at: SimTime, wake: Wake) {
        let mut agenda = self.0.lock().unwrap();
        let seq = agenda.next_seq;
        agenda.next_seq += 1;
        let at = at.max(agenda.now);
        agenda.wakes.insert((at, seq), wake);
    }

    fn control(&mut self, node: NodeId, control: ProcessControl) {
        self.0.lock().unwrap().controls.push((node, control));
    }
}

#[test]
fn a_plain_event_loop_drives_the_world_through_an_election_and_a_failover() {
    let scenario = Scenario::parse(
        "driver.ron",
        r#"Scenario(
            title: "driven by a loop",
            duration_ms: 40000,
            cluster: (brokers: [1, 2, 3], configs: {"auto.leader.rebalance.enable": false}),
            topics: [(name: "t", partitions: 1, replication_factor: 3, replicas: [[1, 2, 3]])],
        )"#,
    )
    .expect("parses");
    let resolved = scenario.resolve().expect("valid");
    let agenda = Arc::new(Mutex::new(Agenda::default()));
    let driver = LoopDriver(agenda.clone());
    let world = World::new(&scenario, resolved, 1, "driver", move |_| Box::new(driver));
    let mut world = world.lock().unwrap();

    let nodes: Vec<NodeId> = world.slots.keys().copied().collect();
    let mut inboxes: BTreeMap<NodeId, UnboundedReceiver<Input>> =
        nodes.iter().filter_map(|n| Some((*n, world.start_node(*n)?))).collect();
    let mut killed = false;
    loop {
        // Every process takes what is in its inbox, as its main task would.
        for (node, inbox) in inboxes.iter_mut() {
            while let Ok(input) = inbox.try_recv() {
                world.step(*node, input);
            }
        }
        // Kills drop a process's inbox; restarts would open a new one.
        let controls = std::mem::take(&mut agenda.lock().unwrap().controls);
        for (node, control) in controls {
            match control {
                ProcessControl::Kill => {
                    inboxes.remove(&node);
                }
                ProcessControl::Restart => {
                    if let Some(inbox) = world.start_node(node) {
                        inboxes.insert(node, inbox);
                    }
                }
                ProcessControl::Pause | ProcessControl::Resume => {}
            }
        }
        if !killed && agenda.lock().unwrap().now >= SimTime::from_ms(10_000) {
            killed = true;
            world.apply_fault(Fault::Kill(NodeId::Broker(1)));
            continue;
        }
        let next = agenda.lock().unwrap().wakes.pop_first();
        let Some(((at, _), wake)) = next else { break };
        if at > SimTime::from_ms(30_000) {
            break;
        }
        agenda.lock().unwrap().now = at;
        world.wake(wake);
    }

    let elections: Vec<(u64, Option<i32>)> = world
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Note(Note::PartitionChanged { leader, election: Some(_), .. }) => Some((e.time_us, *leader)),
            _ => None,
        })
        .collect();
    assert!(elections.len() >= 2, "an election at start and one after the kill: {elections:?}");
    assert_eq!(elections[0].1, Some(1), "the first replica in the assignment leads first");
    let failover = elections.iter().find(|(t, _)| *t > 10_000_000).expect("a failover after the kill");
    assert!(matches!(failover.1, Some(2 | 3)), "{failover:?}");
    assert!(
        world.events().iter().any(|e| matches!(&e.kind, EventKind::Note(Note::BrokerFenced { broker: 1, .. }))),
        "the controller fenced the killed broker"
    );

    // A wake-up due at the run's very last instant may come after the run finished and its
    // nodes were released (fuzz: commit-survives-coordinator-move seed 368): it does nothing.
    let remaining: Vec<_> = std::mem::take(&mut agenda.lock().unwrap().wakes).into_values().collect();
    assert!(!remaining.is_empty(), "the cluster still had wake-ups pending");
    let events = world.events().len();
    world.finish();
    world.release();
    for wake in remaining {
        world.wake(wake);
    }
    assert_eq!(world.events().len(), events + 1, "only the End event was recorded");
}
