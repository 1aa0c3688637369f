//! Faults while real clients run: the scenario's timeline in real time, the control channel's
//! actions (one timeline `action` per line, in the scenario's own RON), and where real clients
//! stand when the network is cut.
//!
//! A fault here is the same fault as in a simulated run ([`ksim_sim::run::action_fault`] turns
//! the action into it, [`ksim_sim::world::World::apply_fault`] carries it out and traces it); the
//! server then makes the sockets follow the processes (see `server::Live::follow`).

use ksim_cluster::time::SimTime;
use ksim_cluster::topic::BrokerId;
use ksim_sim::scenario::{Action, NodeRef, Scenario};
use std::collections::{BTreeSet, VecDeque};

/// Something the timeline does at its time.
#[derive(Clone, Debug)]
pub enum Directive {
    Narrate(String),
    Act(Action),
}

/// The live scenario's timeline and timed narration, in order, at real times since the start.
/// Unlike a simulated run, a step at or after `duration_ms` still happens: a live run goes on
/// until it is stopped.
pub fn timeline(scenario: &Scenario) -> VecDeque<(SimTime, Directive)> {
    let mut out: Vec<(SimTime, Directive)> = Vec::new();
    for n in &scenario.narration {
        if let Some(at) = n.at_ms {
            out.push((SimTime::from_ms(at), Directive::Narrate(n.text.clone())));
        }
    }
    for step in &scenario.timeline {
        out.push((SimTime::from_ms(step.at_ms), Directive::Act(step.action.clone())));
    }
    // Stable: same-time directives keep their order (narration first, then the timeline).
    out.sort_by_key(|(at, _)| *at);
    out.into()
}

/// Whether a timeline action can run live: it names no scenario client (live mode runs none)
/// and is not an operator's AbortTransaction (sent from a scenario's Admin client).
pub fn runs_live(action: &Action) -> Result<(), String> {
    if let Action::AbortTransaction { .. } = action {
        return Err("AbortTransaction is sent from one of the scenario's Admin clients, and live mode runs none \
                    of the scenario's clients"
            .into());
    }
    if let Some(NodeRef::Client(name)) = action.nodes().into_iter().find(|n| matches!(n, NodeRef::Client(_))) {
        return Err(format!(
            "Client(\"{name}\"): live mode runs none of the scenario's clients (the real clients are not named in \
             actions: they stand with the first group of a Partition and are cut off by an Isolate)"
        ));
    }
    Ok(())
}

/// One control-channel line as an action of this scenario: parsed as a timeline step's `action`
/// is, and checked as one is (existing nodes, a cut that cuts something).
pub fn parse(scenario: &Scenario, line: &str) -> Result<Action, String> {
    let action = Scenario::parse_action(line).map_err(|e| {
        format!(
            "{e} (an action is written as in a scenario's timeline, e.g. Kill(Broker(1)), Isolate(Broker(2)), Heal)"
        )
    })?;
    runs_live(&action)?;
    scenario.check_action(&action)?;
    Ok(action)
}

/// Where the real clients stand in the network. ksim's scenarios do not name them, so live mode
/// places them by one rule: they stand with the **first group** of a `Partition` (write the side
/// your clients should be on first), an `Isolate(n)` cuts `n` off from them too, and a
/// `PartitionOneWay` or `SlowLink` leaves them alone. A broker that a cut does not name stays
/// reachable, as it stays connected to everyone in a simulated run. `Heal` reconnects them.
#[derive(Debug, Default)]
pub struct ClientSide {
    cut_off: BTreeSet<BrokerId>,
}

impl ClientSide {
    /// Follow a network action (process actions change nothing here).
    pub fn apply(&mut self, scenario: &Scenario, action: &Action) {
        match action {
            Action::Isolate(n) => self.cut_off.extend(brokers_of(scenario, n)),
            Action::Partition(groups) => {
                let with_clients: BTreeSet<BrokerId> =
                    groups.first().into_iter().flatten().flat_map(|n| brokers_of(scenario, n)).collect();
                for n in groups.iter().skip(1).flatten() {
                    self.cut_off.extend(brokers_of(scenario, n).into_iter().filter(|b| !with_clients.contains(b)));
                }
            }
            Action::Heal => self.cut_off.clear(),
            _ => {}
        }
    }

    /// Whether real clients can reach `broker` now.
    pub fn reaches(&self, broker: BrokerId) -> bool {
        !self.cut_off.contains(&broker)
    }

    /// The brokers real clients cannot reach now.
    pub fn cut_off(&self) -> &BTreeSet<BrokerId> {
        &self.cut_off
    }
}

/// The broker a node names, if it is one: a broker, or a controller that shares its host with a
/// broker (combined mode: a cut isolates the whole host).
fn brokers_of(scenario: &Scenario, node: &NodeRef) -> Vec<BrokerId> {
    match scenario.node_id(node) {
        ksim_cluster::node::NodeId::Broker(b) => vec![b],
        id => match scenario.same_host(id) {
            Some(ksim_cluster::node::NodeId::Broker(b)) => vec![b],
            _ => Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::parse(
            "t.ron",
            r#"Scenario(title: "t", duration_ms: 1000, cluster: (brokers: [1, 2, 3]),
               topics: [(name: "orders", partitions: 1, replication_factor: 3)])"#,
        )
        .expect("parses")
    }

    #[test]
    fn a_control_line_parses_as_a_timeline_action_with_the_parsers_words() {
        let s = scenario();
        assert_eq!(parse(&s, " Kill(Broker(1)) ").unwrap(), Action::Kill(NodeRef::Broker(1)));
        assert_eq!(parse(&s, "Heal").unwrap(), Action::Heal);
        let typo = parse(&s, "Kil(Broker(1))").unwrap_err();
        assert!(typo.contains("unknown variant `Kil`") && typo.contains("Kill"), "{typo}");
        let unknown = parse(&s, "Kill(Broker(7))").unwrap_err();
        assert!(unknown.contains("unknown broker 7"), "{unknown}");
        let client = parse(&s, "Kill(Client(\"app\"))").unwrap_err();
        assert!(client.contains("live mode runs none of the scenario's clients"), "{client}");
        let cut = parse(&s, "Partition([[Broker(1)]])").unwrap_err();
        assert!(cut.contains("at least two groups"), "{cut}");
    }

    #[test]
    fn real_clients_stand_with_the_first_group_and_an_isolated_broker_is_cut_off_from_them() {
        let s = scenario();
        let mut side = ClientSide::default();
        side.apply(
            &s,
            &Action::Partition(vec![vec![NodeRef::Broker(2), NodeRef::Broker(3)], vec![NodeRef::Broker(1)]]),
        );
        assert!(!side.reaches(1) && side.reaches(2) && side.reaches(3));
        side.apply(&s, &Action::Heal);
        assert!(side.reaches(1));
        side.apply(&s, &Action::Isolate(NodeRef::Broker(3)));
        assert!(side.reaches(1) && side.reaches(2) && !side.reaches(3));
        side.apply(&s, &Action::PartitionOneWay(vec![NodeRef::Broker(1)], vec![NodeRef::Broker(2)]));
        assert!(side.reaches(1) && side.reaches(2), "a one-way cut between brokers leaves clients alone");
    }
}
