//! The distributed workers' group: which worker runs which connector and task.
//!
//! Connect workers sharing a `group.id` form a group through the brokers' group coordinator
//! (`WorkerGroupMember`, protocol type `connect`: see [`crate::connect::protocol`] for what
//! their JoinGroup and SyncGroup carry, and [`crate::connect::worker_coordinator`] for a
//! worker's side), heartbeating every `heartbeat.interval.ms` (3 s); one that is silent for
//! `session.timeout.ms` (10 s, `DistributedConfig`) is removed by the coordinator, and the group
//! rebalances. The leader, the first worker to have joined, assigns with
//! [`IncrementalCooperativeAssignor`] (protocols `sessioned` and `compatible`, KIP-415):
//! - connectors and tasks that nobody runs yet go to the least loaded workers, connectors and
//!   tasks balanced separately; each worker is told only what to *start* and what to *stop*;
//! - what a departed worker ran is *lost*, and is **not** reassigned at once: the leader tells
//!   everyone to rejoin after `scheduled.rebalance.max.delay.ms` (5 min), in case the worker
//!   comes back (a restart, a rolling upgrade) so that its tasks need not move twice
//!   (`handleLostAssignments`). When the delay expires, the lost work goes to the workers that
//!   run nothing, or, if none do, to everyone as new work. With the delay at 0 it moves at once;
//! - the leader remembers the previous assignment itself: a *new* leader (the old one died)
//!   knows only what the members say they run, so the dead leader's work is not lost to it but
//!   new, and is given out at once;
//! - when a worker that runs nothing joins a balanced group, the others give up their share
//!   above the new average (revoked), and rejoin at once so that a second rebalance hands it out
//!   (`performTaskRevocation`). Duplicated work (two workers say they run the same task) is
//!   revoked from both.
//!
//! Under the `default` (eager) protocol the leader runs [`eager_assignment`] instead: everyone
//! stopped everything before rejoining, and gets a complete assignment.

use crate::connect::protocol::{worker_of_url, AssignmentError, ConnectAssignment, WorkerMetadata};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What the group assigns: a connector instance or one of its tasks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Unit {
    Connector(String),
    Task(String, u32),
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Unit::Connector(c) => f.write_str(c),
            Unit::Task(c, t) => write!(f, "{c}-{t}"),
        }
    }
}

/// What the leader decided in one assignment, for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEvent {
    /// A rebalance's assignment: what each worker (named by its url) runs once it applies it.
    Rebalanced { generation: i32, assignments: BTreeMap<String, Vec<Unit>> },
    /// Lost work waits for its worker until `until_ms` (`scheduled.rebalance.max.delay.ms`).
    Delayed { lost: Vec<Unit>, until_ms: u64 },
}

/// The group as the leader sees it in one JoinGroup answer: each member's id and metadata.
pub type Members = BTreeMap<String, WorkerMetadata>;

/// The leader's assignor, with what it remembers between rebalances it leads
/// (`IncrementalCooperativeAssignor`'s fields).
#[derive(Clone, Debug, Default)]
pub struct IncrementalCooperativeAssignor {
    max_delay_ms: u64,
    /// What was assigned after the previous rebalance this leader computed (lost work included).
    previous_assignment: BTreeSet<Unit>,
    /// The generation of that rebalance: if the member completed another since, it was not
    /// the leader then and its memory is void.
    previous_generation: Option<i32>,
    previous_members: BTreeSet<String>,
    previous_revocation: BTreeSet<Unit>,
    /// When the delayed rebalance is due (`scheduledRebalance`; 0: none).
    scheduled_rebalance_ms: u64,
    delay_ms: u64,
    candidates: BTreeSet<String>,
}

/// One worker's load while the assignor works: what it runs, in order.
type Loads = BTreeMap<String, Vec<Unit>>;

impl IncrementalCooperativeAssignor {
    pub fn new(max_delay_ms: u64) -> IncrementalCooperativeAssignor {
        IncrementalCooperativeAssignor { max_delay_ms, ..Default::default() }
    }

    /// `performTaskAssignment`: each member's assignment, and what to record. `configured` is
    /// every connector and task the config topic defines; `last_completed_generation` the
    /// generation the leader itself last completed.
    #[allow(clippy::too_many_arguments)]
    pub fn perform_assignment(
        &mut self,
        now_ms: u64,
        generation: i32,
        last_completed_generation: i32,
        leader: &str,
        config_offset: i64,
        members: &Members,
        configured: &[Unit],
        events: &mut Vec<GroupEvent>,
    ) -> BTreeMap<String, ConnectAssignment> {
        let leader_url = members.get(leader).map(|m| m.url.clone()).unwrap_or_default();
        // `ensureLeaderConfig`: a leader behind some member's config cannot assign.
        if members.values().any(|m| m.config_offset > config_offset) {
            return members
                .keys()
                .map(|id| {
                    let a = ConnectAssignment {
                        error: AssignmentError::ConfigMismatch,
                        leader: leader.to_string(),
                        leader_url: leader_url.clone(),
                        config_offset,
                        assigned: Vec::new(),
                        revoked: Vec::new(),
                        delay_ms: 0,
                    };
                    (id.clone(), a)
                })
                .collect();
        }
        if self.previous_generation != Some(last_completed_generation) {
            // Not the leader of the last rebalance (or it failed to sync): forget.
            self.previous_assignment.clear();
        }
        let configured_set: BTreeSet<Unit> = configured.iter().cloned().collect();
        let owned = |m: &WorkerMetadata| m.owned.clone().unwrap_or_default();
        let active: BTreeSet<Unit> = members.values().flat_map(owned).collect();
        if !self.previous_revocation.is_empty() {
            // A revocation that did not take effect: start from what the members run.
            if self.previous_revocation.iter().any(|u| active.contains(u)) {
                self.previous_assignment = active.clone();
            }
            self.previous_revocation.clear();
        }
        let deleted: BTreeSet<Unit> = self.previous_assignment.difference(&configured_set).cloned().collect();
        let lost: BTreeSet<Unit> = self
            .previous_assignment
            .iter()
            .filter(|u| !active.contains(*u) && !deleted.contains(*u))
            .cloned()
            .collect();
        let mut new: BTreeSet<Unit> = configured_set
            .iter()
            .filter(|u| !self.previous_assignment.contains(*u) && !active.contains(*u))
            .cloned()
            .collect();
        // Each worker's load, less deleted work.
        let mut loads: Loads = members
            .iter()
            .map(|(id, m)| (id.clone(), owned(m).into_iter().filter(|u| !deleted.contains(u)).collect()))
            .collect();
        let current = loads.clone();
        // Deleted work, and work two workers claim (`computeDuplicatedAssignments`), is revoked.
        let mut to_revoke: Loads = BTreeMap::new();
        for (id, m) in members {
            for unit in owned(m) {
                let claimed =
                    members.values().filter(|o| o.owned.as_ref().is_some_and(|us| us.contains(&unit))).count();
                if deleted.contains(&unit) || claimed > 1 {
                    to_revoke.entry(id.clone()).or_default().push(unit);
                }
            }
        }
        let without_duplicates: Loads = current
            .iter()
            .map(|(id, us)| {
                let revoked = to_revoke.get(id);
                (id.clone(), us.iter().filter(|u| revoked.is_none_or(|r| !r.contains(u))).cloned().collect())
            })
            .collect();
        self.handle_lost_assignments(now_ms, &lost, &mut new, &mut loads, members);
        if self.delay_ms == 0 {
            for (id, units) in perform_task_revocation(configured, &without_duplicates) {
                to_revoke.entry(id).or_default().extend(units);
            }
        }
        let (connectors, tasks): (Vec<Unit>, Vec<Unit>) =
            new.into_iter().partition(|u| matches!(u, Unit::Connector(_)));
        assign_balanced(&mut loads, connectors, true);
        assign_balanced(&mut loads, tasks, false);
        let mut assignments = BTreeMap::new();
        let mut running = BTreeMap::new();
        for (id, load) in &loads {
            let before = &current[id];
            let revoked = to_revoke.get(id).cloned().unwrap_or_default();
            let assigned: Vec<Unit> = load.iter().filter(|u| !before.contains(u)).cloned().collect();
            let runs: Vec<Unit> = load.iter().filter(|u| !revoked.contains(u)).cloned().collect();
            running.insert(worker_of_url(&members[id].url).to_string(), runs);
            assignments.insert(
                id.clone(),
                ConnectAssignment {
                    error: AssignmentError::None,
                    leader: leader.to_string(),
                    leader_url: leader_url.clone(),
                    config_offset,
                    assigned,
                    revoked,
                    delay_ms: self.delay_ms,
                },
            );
        }
        // `computePreviousAssignment`: what is assigned, less what is revoked, plus what is lost.
        let revoked_all: BTreeSet<Unit> = to_revoke.values().flatten().cloned().collect();
        self.previous_assignment = loads
            .values()
            .flatten()
            .filter(|u| !revoked_all.contains(*u))
            .cloned()
            .chain(lost.iter().cloned())
            .collect();
        self.previous_revocation = revoked_all;
        self.previous_generation = Some(generation);
        self.previous_members = members.keys().cloned().collect();
        if self.delay_ms > 0 {
            events
                .push(GroupEvent::Delayed { lost: lost.into_iter().collect(), until_ms: self.scheduled_rebalance_ms });
        }
        events.push(GroupEvent::Rebalanced { generation, assignments: running });
        assignments
    }

    /// `handleLostAssignments`.
    fn handle_lost_assignments(
        &mut self,
        now_ms: u64,
        lost: &BTreeSet<Unit>,
        new: &mut BTreeSet<Unit>,
        loads: &mut Loads,
        members: &Members,
    ) {
        if lost.is_empty() {
            self.reset_delay();
            return;
        }
        let nobody_departed = self.previous_members.iter().all(|m| members.contains_key(m));
        if self.scheduled_rebalance_ms == 0 && nobody_departed {
            // Lost without a departure: some worker missed the last assignment. New work.
            new.extend(lost.iter().cloned());
            return;
        }
        if self.scheduled_rebalance_ms > 0 && now_ms >= self.scheduled_rebalance_ms {
            // The delay expired: the lost work goes to the candidates, round-robin, or to all.
            let candidates: Vec<String> = self.candidates.iter().filter(|c| loads.contains_key(*c)).cloned().collect();
            if candidates.is_empty() {
                new.extend(lost.iter().cloned());
            } else {
                let (connectors, tasks): (Vec<&Unit>, Vec<&Unit>) =
                    lost.iter().partition(|u| matches!(u, Unit::Connector(_)));
                for list in [connectors, tasks] {
                    for (i, unit) in list.into_iter().enumerate() {
                        let worker = &candidates[i % candidates.len()];
                        loads.get_mut(worker).expect("a member").push(unit.clone());
                    }
                }
            }
            self.reset_delay();
            return;
        }
        // Wait: workers that run nothing now are candidates for the lost work.
        self.candidates.extend(loads.iter().filter(|(_, us)| us.is_empty()).map(|(id, _)| id.clone()));
        self.delay_ms = if now_ms < self.scheduled_rebalance_ms {
            (self.scheduled_rebalance_ms - now_ms).min(self.max_delay_ms)
        } else {
            self.max_delay_ms
        };
        self.scheduled_rebalance_ms = now_ms + self.delay_ms;
        if self.delay_ms == 0 {
            // `scheduled.rebalance.max.delay.ms=0`: the next rebalance gives it out; do it now.
            self.scheduled_rebalance_ms = 0;
            new.extend(lost.iter().cloned());
        }
    }

    fn reset_delay(&mut self) {
        self.candidates.clear();
        self.scheduled_rebalance_ms = 0;
        self.delay_ms = 0;
    }
}

/// `assignConnectors` / `assignTasks`: each unit to the least loaded worker of its kind, ties
/// to the worker first in member-id order (Kafka's order is its `HashMap`'s).
fn assign_balanced(loads: &mut Loads, units: Vec<Unit>, connectors: bool) {
    let count = |us: &Vec<Unit>| us.iter().filter(|u| matches!(u, Unit::Connector(_)) == connectors).count();
    for unit in units {
        let Some(worker) = loads.iter().min_by_key(|(id, us)| (count(us), (*id).clone())).map(|(id, _)| id.clone())
        else {
            return;
        };
        loads.get_mut(&worker).expect("present").push(unit);
    }
}

/// `performTaskRevocation`: when workers that run nothing joined workers that run something,
/// each of the latter gives up what it runs above the new ceiling (of connectors, then tasks).
fn perform_task_revocation(configured: &[Unit], loads: &Loads) -> Loads {
    let mut revoking: Loads = BTreeMap::new();
    let existing: Vec<(&String, &Vec<Unit>)> = loads.iter().filter(|(_, us)| !us.is_empty()).collect();
    let total_workers = loads.len();
    if existing.is_empty() || existing.len() == total_workers {
        return revoking;
    }
    for connectors in [true, false] {
        let is_kind = |u: &&Unit| matches!(u, Unit::Connector(_)) == connectors;
        let total = configured.iter().filter(is_kind).count();
        let floor = total / total_workers;
        let ceil = floor + usize::from(total % total_workers != 0);
        for (id, units) in &existing {
            let mine: Vec<&Unit> = units.iter().filter(is_kind).collect();
            let excess = mine.len().saturating_sub(ceil).min(mine.len().saturating_sub(floor));
            revoking.entry((*id).clone()).or_default().extend(mine.into_iter().take(excess).cloned());
        }
    }
    revoking.retain(|_, us| !us.is_empty());
    revoking
}

/// `EagerAssignor`: everything, round-robin over the members in id order, connectors first,
/// then tasks (each worker's complete assignment; nobody runs anything while it rejoins).
pub fn eager_assignment(members: &Members, configured: &[Unit]) -> BTreeMap<String, Vec<Unit>> {
    let ids: Vec<&String> = members.keys().collect();
    let mut out: BTreeMap<String, Vec<Unit>> = ids.iter().map(|id| ((*id).clone(), Vec::new())).collect();
    if ids.is_empty() {
        return out;
    }
    // `EagerAssignor.performTaskAssignment`: the connectors in name order, then each
    // connector's tasks (connectors in name order, tasks by number), dealt round-robin over the
    // members in id order.
    let (mut connectors, mut tasks): (Vec<&Unit>, Vec<&Unit>) =
        configured.iter().partition(|u| matches!(u, Unit::Connector(_)));
    connectors.sort();
    tasks.sort();
    for (i, unit) in connectors.into_iter().chain(tasks).enumerate() {
        out.get_mut(ids[i % ids.len()]).expect("present").push(unit.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> Vec<Unit> {
        vec![
            Unit::Connector("src".into()),
            Unit::Task("src".into(), 0),
            Unit::Connector("sink".into()),
            Unit::Task("sink".into(), 0),
            Unit::Task("sink".into(), 1),
        ]
    }

    /// A group run by hand: members (id -> what they run), a leader's assignor, generations.
    struct Group {
        assignor: IncrementalCooperativeAssignor,
        running: BTreeMap<String, Vec<Unit>>,
        generation: i32,
        events: Vec<GroupEvent>,
    }

    impl Group {
        fn new(max_delay_ms: u64) -> Group {
            Group {
                assignor: IncrementalCooperativeAssignor::new(max_delay_ms),
                running: BTreeMap::new(),
                generation: 0,
                events: Vec::new(),
            }
        }

        /// One rebalance at `now_ms` with these members (a member id is `<worker>-<n>`); the
        /// leader completed the previous generation. Returns each member's delay.
        fn rebalance(&mut self, now_ms: u64, members: &[&str]) -> u64 {
            self.running.retain(|m, _| members.contains(&m.as_str()));
            let metadata: Members = members
                .iter()
                .map(|m| {
                    let worker = m.rsplit_once('-').map_or(*m, |(w, _)| w);
                    let owned = self.running.get(*m).cloned().unwrap_or_default();
                    let md =
                        WorkerMetadata { url: format!("http://{worker}:8083/"), config_offset: 2, owned: Some(owned) };
                    (m.to_string(), md)
                })
                .collect();
            let last = self.generation;
            self.generation += 1;
            let out = self.assignor.perform_assignment(
                now_ms,
                self.generation,
                last,
                members[0],
                2,
                &metadata,
                &units(),
                &mut self.events,
            );
            let mut delay = 0;
            for (m, a) in out {
                let runs = self.running.entry(m).or_default();
                runs.retain(|u| !a.revoked.contains(u));
                runs.extend(a.assigned);
                delay = a.delay_ms;
            }
            delay
        }

        fn runs(&self, member: &str) -> Vec<Unit> {
            self.running.get(member).cloned().unwrap_or_default()
        }
    }

    fn tasks(us: &[Unit]) -> usize {
        us.iter().filter(|u| matches!(u, Unit::Task(..))).count()
    }

    #[test]
    fn two_workers_share_connectors_and_tasks() {
        let mut g = Group::new(300_000);
        g.rebalance(3_000, &["w1-1", "w2-2"]);
        assert_eq!(g.runs("w1-1").len() + g.runs("w2-2").len(), 5);
        assert!(tasks(&g.runs("w1-1")).abs_diff(tasks(&g.runs("w2-2"))) <= 1);
    }

    #[test]
    fn a_dead_workers_tasks_wait_for_the_scheduled_rebalance_then_move() {
        let mut g = Group::new(300_000);
        g.rebalance(3_000, &["w1-1", "w2-2"]);
        let w2_had = g.runs("w2-2");
        // w2 dies; the leader w1 sees its work lost and delays.
        assert_eq!(g.rebalance(16_000, &["w1-1"]), 300_000);
        assert!(g.events.contains(&GroupEvent::Delayed {
            lost: w2_had.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect(),
            until_ms: 316_000
        }));
        assert!(w2_had.iter().all(|u| !g.runs("w1-1").contains(u)), "nothing moved yet");
        // Everyone rejoins when the delay is over: the lost work moves.
        assert_eq!(g.rebalance(316_000, &["w1-1"]), 0);
        assert!(w2_had.iter().all(|u| g.runs("w1-1").contains(u)), "after the delay w1 runs everything");
    }

    #[test]
    fn a_worker_back_within_the_delay_gets_its_work_back() {
        let mut g = Group::new(300_000);
        g.rebalance(3_000, &["w1-1", "w2-2"]);
        let w2_had = g.runs("w2-2");
        g.rebalance(16_000, &["w1-1"]);
        // w2 comes back with a new member id, running nothing: the delay counts down.
        assert_eq!(g.rebalance(60_000, &["w1-1", "w2-3"]), 256_000);
        assert!(g.runs("w2-3").is_empty(), "back, but the lost work waits for the delay");
        g.rebalance(316_000, &["w1-1", "w2-3"]);
        assert_eq!(g.runs("w2-3"), w2_had);
    }

    #[test]
    fn with_no_delay_lost_work_moves_at_once() {
        let mut g = Group::new(0);
        g.rebalance(3_000, &["w1-1", "w2-2"]);
        assert_eq!(g.rebalance(16_000, &["w1-1"]), 0);
        assert_eq!(g.runs("w1-1").len(), 5);
    }

    #[test]
    fn a_new_leader_knows_only_what_members_run_so_the_dead_leaders_work_moves_at_once() {
        let mut g = Group::new(300_000);
        g.rebalance(3_000, &["w1-1", "w2-2"]);
        // w1, the leader, dies: w2 leads with a fresh assignor.
        g.assignor = IncrementalCooperativeAssignor::new(300_000);
        assert_eq!(g.rebalance(16_000, &["w2-2"]), 0);
        assert_eq!(g.runs("w2-2").len(), 5);
    }

    #[test]
    fn a_worker_joining_a_balanced_group_gets_work_revoked_from_the_others_then_assigned() {
        let mut g = Group::new(300_000);
        g.rebalance(3_000, &["w1-1"]);
        assert_eq!(g.runs("w1-1").len(), 5);
        g.rebalance(10_000, &["w1-1", "w2-2"]);
        assert!(g.runs("w2-2").is_empty(), "the first round only revokes");
        assert_eq!(g.runs("w1-1").len(), 3, "w1 keeps its ceiling: 1 connector and 2 tasks");
        // w1 rejoins at once after a revocation: the second round hands the revoked work out.
        g.rebalance(10_100, &["w1-1", "w2-2"]);
        assert_eq!(g.runs("w2-2").len(), 2);
    }

    #[test]
    fn eager_assigns_everything_round_robin() {
        let members: Members = ["a", "b"]
            .iter()
            .map(|m| {
                (m.to_string(), WorkerMetadata { url: format!("http://{m}:8083/"), config_offset: 0, owned: None })
            })
            .collect();
        let out = eager_assignment(&members, &units());
        assert_eq!(out["a"].len() + out["b"].len(), 5);
    }
}
