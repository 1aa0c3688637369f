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
//!   tasks balanced separately (`assignConnectors` / `assignTasks`: the workers sorted once by
//!   load then member id, the units dealt round-robin over those loaded no more than the
//!   first); each worker is told only what to *start* and what to *stop*;
//! - what a departed worker ran is *lost*, and is **not** reassigned at once: the leader tells
//!   everyone to rejoin after `scheduled.rebalance.max.delay.ms` (5 min), in case the worker
//!   comes back (a restart, a rolling upgrade) so that its tasks need not move twice
//!   (`handleLostAssignments`). When the delay expires, the lost work goes to the workers that
//!   ran nothing while it waited, or, if none is left, to everyone as new work. With the delay
//!   at 0 it moves at once;
//! - the leader remembers the previous assignment itself: a *new* leader (the old one died)
//!   knows only what the members say they run, so the dead leader's work is not lost to it but
//!   new, and is given out at once;
//! - unless a delayed rebalance is pending, any worker that would run more than its balanced
//!   share (`total / workers`, some workers one more; connectors and tasks separately) gives
//!   the excess up (revoked), and rejoins at once so that a second rebalance hands it out
//!   (`performLoadBalancingRevocations`, KAFKA-12495). If the previous rebalance revoked too,
//!   the revocation waits instead, 40 ms, 1.6 s, 64 s, then the max delay as such rebalances
//!   follow one another. Deleted work, and duplicated work (two workers say they run the same
//!   task), is revoked from whoever runs it.
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
    /// The previous rebalance revoked for load balancing (`revokedInPrevious`).
    revoked_in_previous: bool,
    /// Load-balancing revocations in successive rebalances (`numSuccessiveRevokingRebalances`),
    /// the attempt count of [`consecutive_revoking_rebalances_backoff`].
    num_successive_revoking_rebalances: u32,
    /// When the delayed rebalance is due (`scheduledRebalance`; 0: none).
    scheduled_rebalance_ms: u64,
    delay_ms: u64,
    candidates: BTreeSet<String>,
}

/// One worker's load while the assignor works (`WorkerLoad`): what it runs, in order.
type Loads = BTreeMap<String, Vec<Unit>>;

/// What `handleLostAssignments` decided about the lost work.
enum LostWork {
    /// Nothing lost, or what was lost is handed out in this rebalance (some of it may already
    /// have been added to the candidates' loads); the rest is returned here.
    Reassign(Vec<Unit>),
    /// The lost work waits for its worker until the scheduled rebalance.
    Waits,
}

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
        // `duplicatedAssignments`: what more than one worker says it runs.
        let duplicated: BTreeSet<Unit> = active
            .iter()
            .filter(|u| members.values().filter(|m| m.owned.as_ref().is_some_and(|us| us.contains(u))).count() > 1)
            .cloned()
            .collect();
        let lost: BTreeSet<Unit> = self
            .previous_assignment
            .iter()
            .filter(|u| !active.contains(*u) && !deleted.contains(*u))
            .cloned()
            .collect();
        let created: Vec<Unit> = configured_set
            .iter()
            .filter(|u| !self.previous_assignment.contains(*u) && !active.contains(*u))
            .cloned()
            .collect();
        // `currentWorkerAssignment`: each worker's load, less deleted work.
        let current: Loads = members
            .iter()
            .map(|(id, m)| (id.clone(), owned(m).into_iter().filter(|u| !deleted.contains(u)).collect()))
            .collect();
        // Deleted work, and work two workers claim, is revoked from whoever runs it.
        let mut to_revoke: Loads = BTreeMap::new();
        for (id, m) in members {
            let revoked: Vec<Unit> =
                owned(m).into_iter().filter(|u| deleted.contains(u) || duplicated.contains(u)).collect();
            if !revoked.is_empty() {
                to_revoke.insert(id.clone(), revoked);
            }
        }
        // `nextWorkerAssignment`: what each worker will run after this rebalance. Lost work
        // handed to candidates and new work are added to it, load-balancing revocations removed.
        let mut next: Loads = members.iter().map(|(id, m)| (id.clone(), owned(m))).collect();
        remove_all(&mut next, &to_revoke);
        let lost_work = self.handle_lost_assignments(now_ms, &lost, &mut next);
        // Do not revoke for load balancing while a delayed rebalance is active.
        if self.delay_ms == 0 {
            let revocations = perform_load_balancing_revocations(configured, &next);
            if self.revoked_in_previous && !revocations.is_empty() {
                // The previous rebalance revoked too: wait an exponentially growing delay before
                // revoking again (KAFKA-12495), unless the delay is 0.
                self.num_successive_revoking_rebalances += 1;
                self.delay_ms =
                    consecutive_revoking_rebalances_backoff(self.max_delay_ms, self.num_successive_revoking_rebalances);
                if self.delay_ms != 0 {
                    self.scheduled_rebalance_ms = now_ms + self.delay_ms;
                } else {
                    add_all(&mut to_revoke, &revocations);
                    remove_all(&mut next, &revocations);
                }
            } else if !revocations.is_empty() {
                add_all(&mut to_revoke, &revocations);
                remove_all(&mut next, &revocations);
                self.revoked_in_previous = true;
            } else if self.revoked_in_previous {
                // Balanced again: reset the backoff.
                self.revoked_in_previous = false;
                self.num_successive_revoking_rebalances = 0;
            }
        } else {
            self.revoked_in_previous = false;
        }
        // `toAssign`: the created work, then lost work that nobody waits for any more.
        let lost_waits = matches!(lost_work, LostWork::Waits);
        let reassigned = match lost_work {
            LostWork::Reassign(units) => units,
            LostWork::Waits => Vec::new(),
        };
        let (connectors, tasks): (Vec<Unit>, Vec<Unit>) =
            created.into_iter().chain(reassigned).partition(|u| matches!(u, Unit::Connector(_)));
        assign_connectors(&mut next, connectors);
        assign_tasks(&mut next, tasks);
        let mut assignments = BTreeMap::new();
        let mut running = BTreeMap::new();
        for (id, load) in &next {
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
        self.previous_assignment = next
            .values()
            .flatten()
            .filter(|u| !revoked_all.contains(*u))
            .cloned()
            .chain(lost.iter().cloned())
            .collect();
        self.previous_revocation = revoked_all;
        self.previous_generation = Some(generation);
        self.previous_members = members.keys().cloned().collect();
        if lost_waits && !lost.is_empty() {
            events
                .push(GroupEvent::Delayed { lost: lost.into_iter().collect(), until_ms: self.scheduled_rebalance_ms });
        }
        events.push(GroupEvent::Rebalanced { generation, assignments: running });
        assignments
    }

    /// `handleLostAssignments`: hand the lost work to the candidates in `next` (returning
    /// nothing), or return it to be assigned as new, or schedule a delayed rebalance for it.
    fn handle_lost_assignments(&mut self, now_ms: u64, lost: &BTreeSet<Unit>, next: &mut Loads) -> LostWork {
        if lost.is_empty() && !self.revoked_in_previous {
            // Nothing lost, and no successive revoking rebalances: no delay.
            self.reset_delay();
            return LostWork::Reassign(Vec::new());
        }
        let nobody_departed = self.previous_members.iter().all(|m| next.contains_key(m));
        if self.scheduled_rebalance_ms == 0 && nobody_departed {
            // Lost without a departure: some worker missed the last assignment. New work.
            return LostWork::Reassign(lost.iter().cloned().collect());
        }
        if self.max_delay_ms == 0 {
            // `scheduled.rebalance.max.delay.ms=0`: no delayed rebalances; it moves at once.
            return LostWork::Reassign(lost.iter().cloned().collect());
        }
        if self.scheduled_rebalance_ms > 0 && now_ms >= self.scheduled_rebalance_ms {
            // The delay expired: the lost work goes to the candidates still in the group
            // (`pickCandidateWorkerForReassignment`), round-robin, or to all as new work.
            let candidates: Vec<String> = self.candidates.iter().filter(|c| next.contains_key(*c)).cloned().collect();
            let out = if candidates.is_empty() {
                LostWork::Reassign(lost.iter().cloned().collect())
            } else {
                let (connectors, tasks): (Vec<&Unit>, Vec<&Unit>) =
                    lost.iter().partition(|u| matches!(u, Unit::Connector(_)));
                for list in [connectors, tasks] {
                    for (i, unit) in list.into_iter().enumerate() {
                        let worker = &candidates[i % candidates.len()];
                        next.get_mut(worker).expect("a member").push(unit.clone());
                    }
                }
                LostWork::Reassign(Vec::new())
            };
            self.reset_delay();
            // The whole delay went by: successive revoking rebalances are allowed again.
            self.revoked_in_previous = false;
            return out;
        }
        // Wait: workers that run nothing now are candidates for the lost work.
        self.candidates.extend(next.iter().filter(|(_, us)| us.is_empty()).map(|(id, _)| id.clone()));
        self.delay_ms = if now_ms < self.scheduled_rebalance_ms {
            // `calculateDelay`.
            (self.scheduled_rebalance_ms - now_ms).min(self.max_delay_ms)
        } else {
            self.max_delay_ms
        };
        self.scheduled_rebalance_ms = now_ms + self.delay_ms;
        LostWork::Waits
    }

    /// `resetDelay`.
    fn reset_delay(&mut self) {
        self.candidates.clear();
        self.scheduled_rebalance_ms = 0;
        self.delay_ms = 0;
    }
}

/// The delay before the `attempts`-th successive revoking rebalance:
/// `ExponentialBackoff(maxDelay == 0 ? 0 : 1, 40, maxDelay, 0).backoff(attempts)`, i.e.
/// 40 ms, 1.6 s, 64 s, then `scheduled.rebalance.max.delay.ms`; always 0 when that is 0.
fn consecutive_revoking_rebalances_backoff(max_delay_ms: u64, attempts: u32) -> u64 {
    const MULTIPLIER: f64 = 40.0;
    let initial = u64::from(max_delay_ms != 0).min(max_delay_ms);
    let exp_max =
        if max_delay_ms > initial { (max_delay_ms as f64 / initial.max(1) as f64).ln() / MULTIPLIER.ln() } else { 0.0 };
    if exp_max == 0.0 {
        return initial;
    }
    let term = initial as f64 * MULTIPLIER.powf(f64::from(attempts).min(exp_max));
    (term as u64).min(max_delay_ms)
}

fn is_connector(u: &Unit) -> bool {
    matches!(u, Unit::Connector(_))
}

/// `addAll`: add each worker's revocations to `to`.
fn add_all(to: &mut Loads, add: &Loads) {
    for (id, units) in add {
        let entry = to.entry(id.clone()).or_default();
        for u in units {
            if !entry.contains(u) {
                entry.push(u.clone());
            }
        }
    }
}

/// `removeAll`: take each worker's revocations out of its load.
fn remove_all(loads: &mut Loads, remove: &Loads) {
    for (id, load) in loads.iter_mut() {
        if let Some(r) = remove.get(id) {
            load.retain(|u| !r.contains(u));
        }
    }
}

/// `assignConnectors`: see [`assign_round_robin`].
fn assign_connectors(loads: &mut Loads, connectors: Vec<Unit>) {
    assign_round_robin(loads, connectors, true);
}

/// `assignTasks`: see [`assign_round_robin`].
fn assign_tasks(loads: &mut Loads, tasks: Vec<Unit>) {
    assign_round_robin(loads, tasks, false);
}

/// Kafka's `assignConnectors` / `assignTasks`: the workers are sorted once, by how many units of
/// the kind they run, then by member id (`WorkerLoad.connectorComparator()` /
/// `taskComparator()`); the units are then dealt round-robin over the prefix of that order
/// whose load is not above the first worker's (the first grows as it is dealt to, and the
/// order is not re-sorted). E.g. loads C=0, A=1, B=1 and three new units: C, then C and A.
fn assign_round_robin(loads: &mut Loads, units: Vec<Unit>, connectors: bool) {
    let size = |us: &Vec<Unit>| us.iter().filter(|u| is_connector(u) == connectors).count();
    let mut order: Vec<String> = loads.keys().cloned().collect();
    order.sort_by(|a, b| size(&loads[a]).cmp(&size(&loads[b])).then_with(|| a.cmp(b)));
    let Some(first) = order.first().cloned() else { return };
    let mut units = units.into_iter().peekable();
    while units.peek().is_some() {
        let first_load = size(&loads[&first]);
        let up_to = order.iter().position(|id| size(&loads[id]) > first_load).unwrap_or(order.len());
        for id in &order[..up_to] {
            let Some(unit) = units.next() else { break };
            loads.get_mut(id).expect("present").push(unit);
        }
    }
}

/// `performLoadBalancingRevocations`: revoke from each worker what it runs above a perfectly
/// balanced share of `configured` (connectors and tasks separately), counting what `next`
/// already holds (lost work handed to candidates included, deleted and duplicated work not).
fn perform_load_balancing_revocations(configured: &[Unit], next: &Loads) -> Loads {
    let mut revoking: Loads = BTreeMap::new();
    if next.values().all(|us| us.is_empty()) || configured.is_empty() {
        return revoking;
    }
    for connectors in [true, false] {
        let total = configured.iter().filter(|u| is_connector(u) == connectors).count();
        for (id, units) in load_balancing_revocations(total, next, connectors) {
            revoking.entry(id).or_default().extend(units);
        }
    }
    revoking
}

/// `loadBalancingRevocations` for one kind: every worker may keep `total / workers`, and the
/// first `total % workers` of those above that (in member-id order; Kafka's is its `HashMap`'s)
/// one more; each gives up the first units above its allowance. Nothing is revoked when the
/// allocation is already balanced.
fn load_balancing_revocations(total: usize, workers: &Loads, connectors: bool) -> Vec<(String, Vec<Unit>)> {
    let mine = |us: &Vec<Unit>| -> Vec<Unit> { us.iter().filter(|u| is_connector(u) == connectors).cloned().collect() };
    let min_per_worker = total / workers.len();
    let workers_with_extra = total % workers.len();
    let at_min = workers.values().filter(|us| mine(us).len() == min_per_worker).count();
    let at_one_extra = workers.values().filter(|us| mine(us).len() == min_per_worker + 1).count();
    if at_one_extra == workers_with_extra && at_min + at_one_extra == workers.len() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut allocated_extras = 0;
    for (id, units) in workers {
        let units = mine(units);
        if units.len() <= min_per_worker {
            continue;
        }
        let max_for_worker = if allocated_extras < workers_with_extra {
            allocated_extras += 1;
            if units.len() == min_per_worker + 1 {
                continue;
            }
            min_per_worker + 1
        } else {
            min_per_worker
        };
        let excess = units.len() - max_for_worker;
        out.push((id.clone(), units.into_iter().take(excess).collect()));
    }
    out
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
        configured: Vec<Unit>,
        running: BTreeMap<String, Vec<Unit>>,
        generation: i32,
        events: Vec<GroupEvent>,
        last: BTreeMap<String, ConnectAssignment>,
    }

    impl Group {
        fn new(max_delay_ms: u64) -> Group {
            Group::with(max_delay_ms, units())
        }

        fn with(max_delay_ms: u64, configured: Vec<Unit>) -> Group {
            Group {
                assignor: IncrementalCooperativeAssignor::new(max_delay_ms),
                configured,
                running: BTreeMap::new(),
                generation: 0,
                events: Vec::new(),
                last: BTreeMap::new(),
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
                &self.configured,
                &mut self.events,
            );
            let mut delay = 0;
            for (m, a) in &out {
                let runs = self.running.entry(m.clone()).or_default();
                assert!(a.assigned.iter().all(|u| !runs.contains(u)), "{m} is assigned what it runs");
                runs.retain(|u| !a.revoked.contains(u));
                runs.extend(a.assigned.iter().cloned());
                delay = a.delay_ms;
            }
            let all: Vec<&Unit> = self.running.values().flatten().collect();
            assert_eq!(all.len(), all.iter().collect::<BTreeSet<_>>().len(), "a unit assigned twice");
            self.last = out;
            delay
        }

        /// Each member's connector and task counts, both sorted (Kafka's
        /// `assertConnectorAllocations` / `assertTaskAllocations`).
        fn allocations(&self) -> (Vec<usize>, Vec<usize>) {
            let mut cs: Vec<usize> = self.running.values().map(|us| us.len() - tasks(us)).collect();
            let mut ts: Vec<usize> = self.running.values().map(|us| tasks(us)).collect();
            cs.sort();
            ts.sort();
            (cs, ts)
        }

        fn revoked_any(&self) -> bool {
            self.last.values().any(|a| !a.revoked.is_empty())
        }

        /// Every configured unit runs on exactly one worker, and the workers' counts differ by at
        /// most one (`assertBalancedAndCompleteAllocation`).
        fn assert_balanced_and_complete(&self) {
            let all: BTreeSet<&Unit> = self.running.values().flatten().collect();
            assert_eq!(all, self.configured.iter().collect::<BTreeSet<_>>());
            let (connectors, tasks) = self.allocations();
            assert!(connectors.last().unwrap() - connectors[0] <= 1, "connectors {connectors:?}");
            assert!(tasks.last().unwrap() - tasks[0] <= 1, "tasks {tasks:?}");
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

    /// `n` connectors `c1`..`cn`, each with `tasks_each` tasks.
    fn connectors(n: usize, tasks_each: u32) -> Vec<Unit> {
        let mut out = Vec::new();
        for c in 1..=n {
            out.push(Unit::Connector(format!("c{c}")));
            out.extend((0..tasks_each).map(|t| Unit::Task(format!("c{c}"), t)));
        }
        out
    }

    /// Worker loads for the placement tests: `(id, connectors, tasks)`.
    fn loads(spec: &[(&str, usize, usize)]) -> Loads {
        spec.iter()
            .map(|(id, c, t)| {
                let mut us: Vec<Unit> = (0..*c).map(|i| Unit::Connector(format!("{id}-c{i}"))).collect();
                us.extend((0..*t).map(|i| Unit::Task(format!("{id}-c"), i as u32)));
                (id.to_string(), us)
            })
            .collect()
    }

    fn new_tasks(from: u32, to: u32) -> Vec<Unit> {
        (from..to).map(|i| Unit::Task("new".into(), i)).collect()
    }

    #[test]
    fn placement_deals_round_robin_over_the_least_loaded_prefix_without_resorting() {
        // C=0, A=1, B=1: C gets the first; then C and A are level with B and get one each.
        let mut l = loads(&[("a", 0, 1), ("b", 0, 1), ("c", 0, 0)]);
        assign_tasks(&mut l, new_tasks(0, 3));
        assert_eq!(tasks(&l["c"]), 2);
        assert_eq!(tasks(&l["a"]), 2);
        assert_eq!(tasks(&l["b"]), 1);
        assert_eq!(l["c"][0], Unit::Task("new".into(), 0));
        assert_eq!(l["a"][1], Unit::Task("new".into(), 2));
    }

    #[test]
    fn placement_on_a_balanced_group_starts_with_the_first_worker_by_id() {
        // Kafka's testAssignTasksWhenBalanced: three workers with two of each; five new
        // connectors and tasks go 2, 2, 1 in member-id order.
        let mut l = loads(&[("worker0", 2, 2), ("worker1", 2, 2), ("worker2", 2, 2)]);
        let new_connectors: Vec<Unit> = (6..11).map(|i| Unit::Connector(format!("connector{i}"))).collect();
        assign_connectors(&mut l, new_connectors);
        assign_tasks(&mut l, new_tasks(6, 11));
        let news = |id: &str| -> Vec<String> {
            l[id]
                .iter()
                .filter(|u| u.to_string().starts_with("new") || u.to_string().starts_with("connector"))
                .map(|u| u.to_string())
                .collect()
        };
        assert_eq!(news("worker0"), ["connector6", "connector9", "new-6", "new-9"]);
        assert_eq!(news("worker1"), ["connector7", "connector10", "new-7", "new-10"]);
        assert_eq!(news("worker2"), ["connector8", "new-8"]);
    }

    #[test]
    fn placement_on_an_imbalanced_group_levels_it() {
        // Kafka's testAssignConnectorsWhenImbalanced: loads 2, 3, 4 and 0, plus 15 new: 6 each.
        let mut l = loads(&[("worker0", 2, 2), ("worker1", 3, 3), ("worker2", 4, 4), ("worker3", 0, 0)]);
        let new_connectors: Vec<Unit> = (9..24).map(|i| Unit::Connector(format!("connector{i}"))).collect();
        assign_connectors(&mut l, new_connectors);
        assign_tasks(&mut l, new_tasks(9, 24));
        for us in l.values() {
            assert_eq!((us.len() - tasks(us), tasks(us)), (6, 6));
        }
    }

    #[test]
    fn revocation_backoff_grows_by_40_up_to_the_max_delay() {
        let b = |attempts| consecutive_revoking_rebalances_backoff(300_000, attempts);
        assert_eq!([b(1), b(2), b(3)], [40, 1_600, 64_000]);
        assert!((299_999..=300_000).contains(&b(4)));
        assert_eq!(b(9), b(4));
        assert_eq!(consecutive_revoking_rebalances_backoff(0, 3), 0, "max delay 0: never delayed");
        assert_eq!(consecutive_revoking_rebalances_backoff(1, 3), 1, "max delay 1: the initial interval");
    }

    #[test]
    fn a_worker_joining_gets_its_share_after_one_revoking_round() {
        // Kafka's testTaskAssignmentWhenWorkerJoins.
        let mut g = Group::with(300_000, connectors(2, 4));
        g.rebalance(0, &["w1-1"]);
        assert_eq!(g.allocations(), (vec![2], vec![8]));
        assert_eq!(g.rebalance(10, &["w1-1", "w2-2"]), 0);
        assert_eq!(g.allocations(), (vec![0, 1], vec![0, 4]));
        assert_eq!(g.rebalance(20, &["w1-1", "w2-2"]), 0);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![1, 1], vec![4, 4]));
        g.assert_balanced_and_complete();
    }

    #[test]
    fn successive_revoking_rebalances_are_delayed_with_a_growing_backoff() {
        // Kafka's testAssignmentsWhenWorkersJoinAfterRevocations.
        let mut g = Group::with(300_000, connectors(3, 4));
        let mut now = 0;
        g.rebalance(now, &["w1-1"]);
        assert_eq!(g.allocations(), (vec![3], vec![12]));
        // w2 joins: revoke at once.
        g.rebalance(now, &["w1-1", "w2-2"]);
        assert!(g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 2], vec![0, 6]));
        // The follow-up round, w3 joining too: it would revoke again, so it waits 40 ms and only
        // hands out what was revoked.
        let delay = g.rebalance(now, &["w1-1", "w2-2", "w3-3"]);
        assert_eq!(delay, 40);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 1, 2], vec![3, 3, 6]));
        // After the delay (w4 joining): revoke.
        now += delay;
        assert_eq!(g.rebalance(now, &["w1-1", "w2-2", "w3-3", "w4-4"]), 0);
        assert!(g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 0, 1, 1], vec![0, 3, 3, 3]));
        // The follow-up, w5 joining: a successive revoking rebalance again, waits 1.6 s.
        let delay = g.rebalance(now, &["w1-1", "w2-2", "w3-3", "w4-4", "w5-5"]);
        assert_eq!(delay, 1_600);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 0, 1, 1, 1], vec![1, 2, 3, 3, 3]));
        // After it (w6 joining): revoke, then the follow-up balances everything.
        now += delay;
        let six = ["w1-1", "w2-2", "w3-3", "w4-4", "w5-5", "w6-6"];
        assert_eq!(g.rebalance(now, &six), 0);
        assert_eq!(g.allocations(), (vec![0, 0, 0, 1, 1, 1], vec![0, 1, 2, 2, 2, 2]));
        g.rebalance(now, &six);
        assert_eq!(g.allocations(), (vec![0, 0, 0, 1, 1, 1], vec![2, 2, 2, 2, 2, 2]));
        g.assert_balanced_and_complete();
    }

    #[test]
    fn with_no_delay_successive_revocations_happen_at_once() {
        // Kafka's testImmediateRevocationsWhenMaxDelayIs0.
        let mut g = Group::with(0, connectors(3, 4));
        g.rebalance(0, &["w1-1"]);
        g.rebalance(0, &["w1-1", "w2-2"]);
        assert_eq!(g.allocations(), (vec![0, 2], vec![0, 6]));
        assert_eq!(g.rebalance(0, &["w1-1", "w2-2", "w3-3"]), 0);
        assert!(g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 1, 1], vec![3, 3, 4]));
        g.rebalance(0, &["w1-1", "w2-2", "w3-3"]);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![1, 1, 1], vec![4, 4, 4]));
        g.assert_balanced_and_complete();
    }

    #[test]
    fn a_max_delay_of_one_delays_successive_revocations_by_one_ms() {
        // Kafka's testSuccessiveRevocationsWhenMaxDelayIsEqualToExpBackOffInitialInterval.
        let mut g = Group::with(1, connectors(3, 4));
        g.rebalance(0, &["w1-1"]);
        g.rebalance(0, &["w1-1", "w2-2"]);
        assert_eq!(g.rebalance(0, &["w1-1", "w2-2", "w3-3"]), 1);
        assert_eq!(g.allocations(), (vec![0, 1, 2], vec![3, 3, 6]));
    }

    #[test]
    fn a_worker_joining_during_a_revocation_delay_does_not_cut_it_short() {
        // Kafka's testWorkerJoiningDuringDelayedRebalance.
        let mut g = Group::with(300_000, connectors(3, 4));
        g.rebalance(0, &["w1-1"]);
        g.rebalance(0, &["w1-1", "w2-2"]);
        let delay = g.rebalance(0, &["w1-1", "w2-2", "w3-3"]);
        assert_eq!(delay, 40);
        assert_eq!(g.allocations(), (vec![0, 1, 2], vec![3, 3, 6]));
        // Halfway, w4 joins: nothing is revoked, the delay counts down.
        assert_eq!(g.rebalance(delay / 2, &["w1-1", "w2-2", "w3-3", "w4-4"]), delay / 2);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 0, 1, 2], vec![0, 3, 3, 6]));
        // After it, w5 joining: revoke, then hand out.
        let five = ["w1-1", "w2-2", "w3-3", "w4-4", "w5-5"];
        assert_eq!(g.rebalance(delay / 2 + delay, &five), 0);
        assert_eq!(g.allocations(), (vec![0, 0, 0, 1, 1], vec![0, 0, 2, 3, 3]));
        assert_eq!(g.rebalance(delay / 2 + delay, &five), 0);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 0, 1, 1, 1], vec![2, 2, 2, 3, 3]));
        g.assert_balanced_and_complete();
    }

    #[test]
    fn a_leader_back_as_a_follower_is_a_new_worker() {
        // Kafka's testTaskAssignmentWhenLeaderBounces.
        let mut g = Group::with(300_000, connectors(2, 4));
        g.rebalance(0, &["w1-1", "w2-2", "w3-3"]);
        assert_eq!(g.allocations(), (vec![0, 1, 1], vec![2, 3, 3]));
        g.assignor = IncrementalCooperativeAssignor::new(300_000);
        assert_eq!(g.rebalance(20_000, &["w2-2", "w3-3"]), 0);
        assert_eq!(g.allocations(), (vec![1, 1], vec![4, 4]));
        g.rebalance(30_000, &["w2-2", "w3-3", "w1-4"]);
        assert_eq!(g.allocations(), (vec![0, 1, 1], vec![0, 3, 3]));
        g.rebalance(30_000, &["w2-2", "w3-3", "w1-4"]);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![0, 1, 1], vec![2, 3, 3]));
        g.assert_balanced_and_complete();
    }

    #[test]
    fn lost_work_given_to_a_returning_worker_is_rebalanced_in_the_same_round() {
        // Each of three workers runs a connector and two tasks; w2 and w3 die, and only w2
        // comes back within the delay. When it ends, w2 gets all the lost work and gives one task
        // up at once (the load-balancing revocation sees the candidates' new load); the
        // follow-up round gives that task to w1.
        let mut g = Group::with(300_000, connectors(3, 2));
        g.rebalance(0, &["w1-1", "w2-2", "w3-3"]);
        assert_eq!(g.allocations(), (vec![1, 1, 1], vec![2, 2, 2]));
        assert_eq!(g.rebalance(10_000, &["w1-1"]), 300_000);
        assert_eq!(g.rebalance(60_000, &["w1-1", "w2-4"]), 250_000);
        assert!(g.runs("w2-4").is_empty());
        assert_eq!(g.rebalance(310_000, &["w1-1", "w2-4"]), 0);
        assert_eq!(g.last["w2-4"].revoked.len(), 1, "one task revoked in the round that assigns it");
        assert_eq!((g.runs("w1-1").len(), tasks(&g.runs("w1-1"))), (3, 2));
        assert_eq!((g.runs("w2-4").len(), tasks(&g.runs("w2-4"))), (5, 3));
        assert_eq!(g.rebalance(310_100, &["w1-1", "w2-4"]), 0);
        assert!(!g.revoked_any());
        assert_eq!(g.allocations(), (vec![1, 2], vec![3, 3]));
        assert_eq!(tasks(&g.runs("w1-1")), 3);
        g.assert_balanced_and_complete();
    }

    #[test]
    fn deleted_connectors_are_revoked_and_the_rest_stay_balanced() {
        // Kafka's testTaskAssignmentWhenConnectorsAreDeleted.
        let mut g = Group::with(300_000, connectors(3, 4));
        g.rebalance(0, &["w1-1", "w2-2"]);
        assert_eq!(g.allocations(), (vec![1, 2], vec![6, 6]));
        g.configured = connectors(2, 4);
        assert_eq!(g.rebalance(10, &["w1-1", "w2-2"]), 0);
        assert_eq!(g.allocations(), (vec![1, 1], vec![4, 4]));
        g.assert_balanced_and_complete();
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
