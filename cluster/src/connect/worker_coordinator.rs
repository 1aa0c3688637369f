//! A Connect worker's side of its group (`WorkerCoordinator`), on top of the same member
//! engine a consumer's group membership uses ([`crate::group::member::GroupMember`], Kafka's
//! `AbstractCoordinator`): FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
//!
//! What is Connect's own:
//! - the JoinGroup carries protocol type `connect`, the protocols `connect.protocol` offers and
//!   the worker's metadata (`metadata()`: url, config offset, what it runs);
//! - as leader it runs the assignor over every member's metadata (`onLeaderElected`):
//!   [`IncrementalCooperativeAssignor`], or the eager one under protocol `default`;
//! - after SyncGroup it applies its assignment (`onJoinComplete`): under the incremental
//!   protocols it stops the revoked connectors and tasks and keeps running the rest, adding the
//!   new ones; a revocation is followed by an immediate rejoin, so that the next rebalance gives
//!   the revoked work to its new owner; a *delay* makes it rejoin that much later
//!   (`DistributedHerder`'s `scheduledRebalance`), when the leader gives out lost work;
//! - under the eager protocol it stops everything before each rejoin (`onJoinPrepare`).

use crate::connect::event::ConnectEvent;
use crate::connect::herder::{eager_assignment, GroupEvent, IncrementalCooperativeAssignor, Members, Unit};
use crate::connect::protocol::{
    worker_of_url, AssignmentError, ConnectAssignment, ConnectProtocolCompatibility, WorkerMetadata,
};
use crate::protocol::{MemberAssignment, MemberMetadata};
use crate::time::SimTime;

#[derive(Clone, Debug)]
pub struct WorkerCoordinator {
    group: String,
    url: String,
    compatibility: ConnectProtocolCompatibility,
    /// The protocol the group agreed on at the last join.
    current: ConnectProtocolCompatibility,
    /// How far the worker has read the config topic.
    config_offset: i64,
    /// Every connector and task the configurations define (the config topic's snapshot).
    configured: Vec<Unit>,
    /// What the worker runs: its last assignment, applied (`assignmentSnapshot`).
    running: Option<Vec<Unit>>,
    last_completed_generation: i32,
    assignor: IncrementalCooperativeAssignor,
    /// The leader asked for a rejoin at this time (`DistributedHerder.scheduledRebalance`).
    rejoin_at: Option<SimTime>,
    /// Membership wanted (false once the worker left its group for good).
    pub active: bool,
    /// The member id the trace last recorded as having joined.
    announced: Option<String>,
}

impl WorkerCoordinator {
    pub fn new(
        group: String,
        worker: &str,
        compatibility: ConnectProtocolCompatibility,
        config_offset: i64,
        configured: Vec<Unit>,
        max_delay_ms: u64,
    ) -> WorkerCoordinator {
        WorkerCoordinator {
            group,
            url: format!("http://{worker}:8083/"),
            compatibility,
            current: compatibility,
            config_offset,
            configured,
            running: None,
            last_completed_generation: -1,
            assignor: IncrementalCooperativeAssignor::new(max_delay_ms),
            rejoin_at: None,
            active: true,
            announced: None,
        }
    }

    /// What the worker runs now, once it has had an assignment.
    pub fn running(&self) -> Option<&[Unit]> {
        self.running.as_deref()
    }

    pub fn last_completed_generation(&self) -> i32 {
        self.last_completed_generation
    }

    /// When the leader's delay tells the worker to rejoin.
    pub fn rejoin_at(&self) -> Option<SimTime> {
        self.rejoin_at
    }

    /// The delayed rejoin is due: it is taken.
    pub fn take_due_rejoin(&mut self, now: SimTime) -> bool {
        if self.rejoin_at.is_some_and(|at| now >= at) {
            self.rejoin_at = None;
            return true;
        }
        false
    }

    /// `WorkerCoordinator.metadata`: the protocols offered, each with the worker's state.
    pub fn metadata(&self) -> Vec<(String, MemberMetadata)> {
        self.compatibility
            .offered()
            .into_iter()
            .map(|p| {
                let owned = if p == ConnectProtocolCompatibility::Eager { None } else { self.running.clone() };
                let md = WorkerMetadata { url: self.url.clone(), config_offset: self.config_offset, owned };
                (p.protocol().to_string(), MemberMetadata::Connect(md))
            })
            .collect()
    }

    /// The coordinator could not be found for `heartbeat.interval.ms` (`WorkerCoordinator.poll`:
    /// `ensureCoordinatorReady` with `coordinatorDiscoveryTimeoutMs`, KAFKA-9184): the worker
    /// revokes its whole assignment and runs nothing until it has rejoined (its snapshot is
    /// gone, so `rejoinNeededOrPending` holds). Notes what it revoked, if anything.
    pub fn on_coordinator_unreachable(&mut self, notes: &mut Vec<ConnectEvent>) {
        // (Under every protocol: `poll` checks only that there is an assignment that did not
        // fail, and the herder's `onRevoked` stops work under eager too once a rebalance has
        // resolved.)
        let Some(running) = self.running.as_mut().filter(|r| !r.is_empty()) else { return };
        let revoked: Vec<String> = running.drain(..).map(|u| u.to_string()).collect();
        notes.push(ConnectEvent::WorkerLostCoordinator {
            group: self.group.clone(),
            worker: worker_of_url(&self.url).to_string(),
            revoked,
        });
    }

    /// Whether an assignment revokes something the worker runs, which it must stop before it
    /// rejoins (`onJoinComplete` calls `onRevoked`, which stops them, before `requestRejoin`).
    pub fn revokes(&self, assignment: &MemberAssignment) -> bool {
        self.current != ConnectProtocolCompatibility::Eager
            && matches!(assignment, MemberAssignment::Connect(a) if !a.revoked.is_empty())
    }

    /// `onJoinPrepare`: under the eager protocol everything stops before the rejoin. Returns
    /// what stopped.
    pub fn on_join_prepare(&mut self) -> Vec<Unit> {
        if self.current != ConnectProtocolCompatibility::Eager {
            return Vec::new();
        }
        // Running nothing, which the worker carries out before the JoinGroup goes out.
        self.running.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// `onLeaderElected`: the assignment of every member, and the leader's decisions for the
    /// trace.
    pub fn on_leader_elected(
        &mut self,
        now: SimTime,
        generation: i32,
        leader: &str,
        protocol: Option<&str>,
        members: &[(String, Option<String>, MemberMetadata)],
        notes: &mut Vec<ConnectEvent>,
    ) -> Vec<(String, MemberAssignment)> {
        let members: Members = members
            .iter()
            .filter_map(|(id, _, md)| match md {
                MemberMetadata::Connect(w) => Some((id.clone(), w.clone())),
                _ => None,
            })
            .collect();
        let mut events = Vec::new();
        let protocol = protocol.and_then(ConnectProtocolCompatibility::from_protocol);
        let assignments = if protocol == Some(ConnectProtocolCompatibility::Eager) {
            let leader_url = members.get(leader).map(|m| m.url.clone()).unwrap_or_default();
            let full = eager_assignment(&members, &self.configured);
            let running = full.iter().map(|(id, us)| (worker_of_url(&members[id].url).to_string(), us.clone()));
            events.push(GroupEvent::Rebalanced { generation, assignments: running.collect() });
            full.into_iter()
                .map(|(id, assigned)| {
                    let a = ConnectAssignment {
                        error: AssignmentError::None,
                        leader: leader.to_string(),
                        leader_url: leader_url.clone(),
                        config_offset: self.config_offset,
                        assigned,
                        revoked: Vec::new(),
                        delay_ms: 0,
                    };
                    (id, a)
                })
                .collect()
        } else {
            self.assignor.perform_assignment(
                now.as_ms(),
                generation,
                self.last_completed_generation,
                leader,
                self.config_offset,
                &members,
                &self.configured,
                &mut events,
            )
        };
        for e in events {
            notes.push(match e {
                GroupEvent::Rebalanced { generation, assignments } => ConnectEvent::Rebalanced {
                    group: self.group.clone(),
                    generation: generation.max(0) as u32,
                    assignments: assignments
                        .into_iter()
                        .map(|(w, us)| (w, us.iter().map(|u| u.to_string()).collect()))
                        .collect(),
                },
                GroupEvent::Delayed { lost, until_ms } => ConnectEvent::RebalanceDelayed {
                    group: self.group.clone(),
                    lost: lost.iter().map(|u| u.to_string()).collect(),
                    until_ms,
                },
            });
        }
        assignments.into_iter().map(|(id, a)| (id, MemberAssignment::Connect(a))).collect()
    }

    /// `onJoinComplete`: apply the assignment. Returns whether the worker must rejoin at once
    /// (it revoked something, or the assignment failed), and notes its joining.
    pub fn on_join_complete(
        &mut self,
        now: SimTime,
        generation: i32,
        member_id: &str,
        protocol: Option<&str>,
        assignment: &MemberAssignment,
        notes: &mut Vec<ConnectEvent>,
    ) -> bool {
        let MemberAssignment::Connect(a) = assignment else { return true };
        if let Some(p) = protocol.and_then(ConnectProtocolCompatibility::from_protocol) {
            self.current = p;
        }
        self.last_completed_generation = generation;
        if self.announced.as_deref() != Some(member_id) {
            self.announced = Some(member_id.to_string());
            let worker = worker_of_url(&self.url).to_string();
            notes.push(ConnectEvent::WorkerJoined { group: self.group.clone(), worker });
        }
        if a.error != AssignmentError::None {
            return true;
        }
        let mut running = if self.current == ConnectProtocolCompatibility::Eager {
            Vec::new()
        } else {
            self.running.take().unwrap_or_default()
        };
        running.retain(|u| !a.revoked.contains(u));
        for unit in &a.assigned {
            if !running.contains(unit) {
                running.push(unit.clone());
            }
        }
        running.sort();
        self.running = Some(running);
        self.rejoin_at = (a.delay_ms > 0).then(|| now.plus_ms(a.delay_ms));
        self.current != ConnectProtocolCompatibility::Eager && !a.revoked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(protocol: ConnectProtocolCompatibility) -> WorkerCoordinator {
        let configured = vec![Unit::Connector("c".into()), Unit::Task("c".into(), 0), Unit::Task("c".into(), 1)];
        WorkerCoordinator::new("connect-cluster".into(), "worker-1", protocol, 1, configured, 300_000)
    }

    fn assignment(assigned: Vec<Unit>, revoked: Vec<Unit>) -> MemberAssignment {
        MemberAssignment::Connect(ConnectAssignment {
            error: AssignmentError::None,
            leader: "worker-1-1".into(),
            leader_url: "http://worker-1:8083/".into(),
            config_offset: 1,
            assigned,
            revoked,
            delay_ms: 0,
        })
    }

    #[test]
    fn a_revocation_is_applied_and_asks_for_a_rejoin_after_it() {
        let mut w = worker(ConnectProtocolCompatibility::Sessioned);
        let mut notes = Vec::new();
        let all = vec![Unit::Connector("c".into()), Unit::Task("c".into(), 0), Unit::Task("c".into(), 1)];
        let first = assignment(all, Vec::new());
        assert!(!w.on_join_complete(SimTime(0), 1, "worker-1-1", Some("sessioned"), &first, &mut notes));
        assert!(!w.revokes(&first));
        let second = assignment(Vec::new(), vec![Unit::Task("c".into(), 1)]);
        assert!(w.on_join_complete(SimTime(1), 2, "worker-1-1", Some("sessioned"), &second, &mut notes));
        assert!(w.revokes(&second), "the member waits for the worker to stop c-1 before it rejoins");
        assert_eq!(w.running().unwrap(), [Unit::Connector("c".into()), Unit::Task("c".into(), 0)]);
    }

    #[test]
    fn a_worker_that_cannot_find_its_coordinator_stops_everything_once() {
        let mut w = worker(ConnectProtocolCompatibility::Sessioned);
        let mut notes = Vec::new();
        w.on_coordinator_unreachable(&mut notes);
        assert!(notes.is_empty(), "nothing to revoke before the first assignment");
        let all = vec![Unit::Connector("c".into()), Unit::Task("c".into(), 0)];
        w.on_join_complete(SimTime(0), 1, "worker-1-1", Some("sessioned"), &assignment(all, Vec::new()), &mut notes);
        notes.clear();
        w.on_coordinator_unreachable(&mut notes);
        assert_eq!(
            notes,
            [ConnectEvent::WorkerLostCoordinator {
                group: "connect-cluster".into(),
                worker: "worker-1".into(),
                revoked: vec!["c".into(), "c-0".into()],
            }]
        );
        assert_eq!(w.running().unwrap(), [] as [Unit; 0], "it runs nothing, and says it owns nothing when it rejoins");
        notes.clear();
        w.on_coordinator_unreachable(&mut notes);
        assert!(notes.is_empty(), "once");
    }

    #[test]
    fn an_eager_worker_stops_everything_before_it_rejoins_and_when_the_coordinator_is_unreachable() {
        let mut w = worker(ConnectProtocolCompatibility::Eager);
        let mut notes = Vec::new();
        let all = vec![Unit::Connector("c".into())];
        let a = assignment(all.clone(), Vec::new());
        w.on_join_complete(SimTime(0), 1, "worker-1-1", Some("default"), &a, &mut notes);
        assert_eq!(w.on_join_prepare(), all, "stop-the-world");
        assert_eq!(w.running().unwrap(), [] as [Unit; 0], "the worker sees an empty assignment to carry out");
        assert!(w.on_join_prepare().is_empty());
        w.on_join_complete(SimTime(1), 2, "worker-1-1", Some("default"), &a, &mut notes);
        notes.clear();
        w.on_coordinator_unreachable(&mut notes);
        assert_eq!(notes.len(), 1, "KAFKA-9184's revocation does not depend on the protocol");
    }
}
