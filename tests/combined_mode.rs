//! Combined mode: a `node.id` that is both a broker's and a controller's is one host running both
//! roles (`process.roles=broker,controller`, KIP-833). A fault is to the host: both processes
//! share it, a graceful stop shuts the broker down before the controller
//! (`KafkaRaftServer.shutdown`), and a network cut never separates the two.

use ksim_cluster::node::NodeId;
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{EventKind, Fault};

fn scenario(timeline: &str) -> Scenario {
    let text = format!(
        r#"Scenario(
    title: "combined",
    seed: 3,
    duration_ms: 40000,
    cluster: (brokers: [1, 2, 3], quorum: (controllers: [1, 2, 3])),
    topics: [(name: "orders", partitions: 1, replication_factor: 3)],
    clients: [(name: "p", app: Producer(topic: "orders", records: 20, interval_ms: 500), start_ms: 4000,
               configs: {{"acks": "all"}})],
    timeline: [{timeline}],
    expect: [Never(AckedWriteLost), Finally(Acked("p", 20))],
    converge_within_ms: 15000,
)"#
    );
    Scenario::from_text("combined.ron", &text).expect("a combined-mode cluster is valid")
}

fn faults(s: &Scenario) -> Vec<Fault> {
    let outcome = ksim_sim::run(s, "combined", s.seed).expect("runs");
    assert!(outcome.report.passed(), "{}", outcome.report.render());
    outcome
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Fault(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_fault_to_a_combined_node_reaches_both_its_processes() {
    let s = scenario("(at_ms: 8000, action: Kill(Voter(2))), (at_ms: 20000, action: Restart(Broker(2)))");
    assert_eq!(s.same_host(NodeId::Broker(2)), Some(NodeId::Controller(2)));
    assert_eq!(
        faults(&s),
        vec![
            Fault::Kill(NodeId::Controller(2)),
            Fault::Kill(NodeId::Broker(2)),
            Fault::Restart(NodeId::Broker(2)),
            Fault::Restart(NodeId::Controller(2)),
        ]
    );
}

#[test]
fn a_graceful_stop_shuts_the_broker_down_before_the_controller() {
    let s = scenario("(at_ms: 8000, action: Stop(Voter(1))), (at_ms: 20000, action: Restart(Broker(1)))");
    // The controller just exits on its stop; the broker first runs its controlled shutdown.
    assert_eq!(
        faults(&s),
        vec![
            Fault::Stop(NodeId::Broker(1)),
            Fault::Exit(NodeId::Broker(1)),
            Fault::Stop(NodeId::Controller(1)),
            Fault::Restart(NodeId::Broker(1)),
            Fault::Restart(NodeId::Controller(1)),
        ]
    );
}

#[test]
fn a_network_cut_takes_whole_hosts_to_one_side() {
    // Isolating broker 3 isolates node 3: its controller goes with it, out of the other group.
    let s = scenario("(at_ms: 8000, action: Isolate(Broker(3))), (at_ms: 14000, action: Heal)");
    let f = faults(&s);
    let Fault::Partition(groups) = &f[0] else { panic!("{f:?}") };
    assert_eq!(groups[0], vec![NodeId::Broker(3), NodeId::Controller(3)]);
    assert!(!groups[1].contains(&NodeId::Controller(3)) && groups[1].contains(&NodeId::Controller(1)), "{groups:?}");
}
