//! The distributed workers' group: who is in it, and which worker runs which connector and task.
//!
//! Connect workers sharing a `group.id` form a group through Kafka's group coordinator
//! (`WorkerGroupMember`, protocol type `connect`), heartbeating every `heartbeat.interval.ms`
//! (3 s); one that is silent for `session.timeout.ms` (10 s, `DistributedConfig`) is out, and
//! the group rebalances. The leader assigns with `IncrementalCooperativeAssignor` (protocol
//! `sessioned`, the default since Kafka 2.4, KIP-415):
//! - connectors and tasks that nobody runs yet go to the least loaded workers, connectors and
//!   tasks balanced separately;
//! - what a departed worker ran is *lost*, and is **not** reassigned at once: the leader waits
//!   up to `scheduled.rebalance.max.delay.ms` (5 min) for the worker to come back (a restart, a
//!   rolling upgrade) so that its tasks need not move twice
//!   (`IncrementalCooperativeAssignor.handleLostAssignments`). When the delay expires, the lost
//!   work goes to the workers that joined during it, or, if none did, to everyone as new work.
//!   With the delay at 0 it moves at once.
//!
//! ksim keeps the group's membership here, as the coordinator sees it: a worker is a member
//! while it heartbeats, and leaves when its session expires. The JoinGroup/SyncGroup exchange
//! itself is not put on the simulated wire (the consumer groups of sink tasks are); the
//! assignment, the delay and the session timeout are Kafka's. (ksim does not model the
//! assignor's load-balancing revocations: a worker that joins a balanced group gets only new
//! or lost work.)

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What the group assigns: a connector instance or one of its tasks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// What happened in the group at one tick, for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupEvent {
    Joined {
        worker: String,
    },
    /// The worker's session expired (no heartbeat for `session.timeout.ms`).
    SessionExpired {
        worker: String,
    },
    /// A rebalance ended: the new generation and each member's assignment.
    Rebalanced {
        generation: u32,
        assignments: BTreeMap<String, Vec<Unit>>,
    },
    /// Lost work waits for its worker until `until_ms` (`scheduled.rebalance.max.delay.ms`).
    Delayed {
        lost: Vec<Unit>,
        until_ms: u64,
    },
}

pub struct WorkerGroup {
    session_timeout_ms: u64,
    max_delay_ms: u64,
    /// Members and their last heartbeat.
    members: BTreeMap<String, u64>,
    generation: u32,
    /// Who runs each unit.
    owner: BTreeMap<Unit, String>,
    /// Units whose worker left, waiting for the scheduled rebalance.
    lost: BTreeSet<Unit>,
    /// When the delayed rebalance is due (`scheduledRebalance`).
    scheduled: Option<u64>,
    /// Members of the previous rebalance, and workers that joined while a delay ran
    /// (`candidateWorkersForReassignment`).
    previous_members: BTreeSet<String>,
    candidates: BTreeSet<String>,
    /// Every unit the connectors' configurations define, in order.
    units: Vec<Unit>,
    /// A rebalance is needed since this time; it completes once the members had time to
    /// (re)join: [`JOIN_WINDOW_MS`] later.
    rebalance_since: Option<u64>,
}

/// How long a rebalance waits for members to join: `group.initial.rebalance.delay.ms` (3 s) for
/// a new group; an existing group's members rejoin at their next heartbeat (3 s).
pub const JOIN_WINDOW_MS: u64 = 3_000;

impl WorkerGroup {
    pub fn new(session_timeout_ms: u64, max_delay_ms: u64, units: Vec<Unit>) -> WorkerGroup {
        WorkerGroup {
            session_timeout_ms,
            max_delay_ms,
            members: BTreeMap::new(),
            generation: 0,
            owner: BTreeMap::new(),
            lost: BTreeSet::new(),
            scheduled: None,
            previous_members: BTreeSet::new(),
            candidates: BTreeSet::new(),
            units,
            rebalance_since: None,
        }
    }

    /// A worker's heartbeat (a worker that is not a member joins).
    pub fn heartbeat(&mut self, now_ms: u64, worker: &str, events: &mut Vec<GroupEvent>) {
        if self.members.insert(worker.to_string(), now_ms).is_none() {
            events.push(GroupEvent::Joined { worker: worker.to_string() });
            self.rebalance_since.get_or_insert(now_ms);
        }
    }

    /// Expire silent members and rebalance when the group needs it.
    pub fn tick(&mut self, now_ms: u64, events: &mut Vec<GroupEvent>) {
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, last)| now_ms.saturating_sub(**last) >= self.session_timeout_ms)
            .map(|(w, _)| w.clone())
            .collect();
        for worker in expired {
            self.members.remove(&worker);
            events.push(GroupEvent::SessionExpired { worker });
            self.rebalance_since.get_or_insert(now_ms);
        }
        if let Some(at) = self.scheduled.filter(|at| now_ms >= *at) {
            self.rebalance_since.get_or_insert(at.saturating_sub(JOIN_WINDOW_MS));
        }
        let due = self.rebalance_since.is_some_and(|since| now_ms >= since + JOIN_WINDOW_MS);
        if due && !self.members.is_empty() {
            self.rebalance(now_ms, events);
        }
    }

    fn rebalance(&mut self, now_ms: u64, events: &mut Vec<GroupEvent>) {
        self.rebalance_since = None;
        self.generation += 1;
        let members: BTreeSet<String> = self.members.keys().cloned().collect();
        // Work whose owner is no longer a member is lost.
        let newly_lost: Vec<Unit> =
            self.owner.iter().filter(|(_, w)| !members.contains(*w)).map(|(u, _)| u.clone()).collect();
        for unit in newly_lost {
            self.owner.remove(&unit);
            self.lost.insert(unit);
        }
        let mut to_assign: Vec<Unit> = Vec::new();
        if !self.lost.is_empty() {
            let departed = !self.previous_members.is_subset(&members);
            if (self.scheduled.is_none() && !departed) || self.max_delay_ms == 0 {
                to_assign.extend(std::mem::take(&mut self.lost));
                self.scheduled = None;
            } else if self.scheduled.is_some_and(|at| now_ms >= at) {
                let candidates: Vec<String> =
                    self.candidates.iter().filter(|c| members.contains(*c)).cloned().collect();
                let lost = std::mem::take(&mut self.lost);
                if candidates.is_empty() {
                    to_assign.extend(lost);
                } else {
                    // Round-robin over the candidates, connectors first, then tasks.
                    let (connectors, tasks): (Vec<Unit>, Vec<Unit>) =
                        lost.into_iter().partition(|u| matches!(u, Unit::Connector(_)));
                    for (i, unit) in connectors.into_iter().enumerate() {
                        self.owner.insert(unit, candidates[i % candidates.len()].clone());
                    }
                    for (i, unit) in tasks.into_iter().enumerate() {
                        self.owner.insert(unit, candidates[i % candidates.len()].clone());
                    }
                }
                self.scheduled = None;
                self.candidates.clear();
            } else {
                // Workers here now that were not before are candidates for the lost work.
                self.candidates.extend(members.difference(&self.previous_members).cloned());
                let until_ms = match self.scheduled {
                    Some(at) => at,
                    None => now_ms + self.max_delay_ms,
                };
                self.scheduled = Some(until_ms);
                events.push(GroupEvent::Delayed { lost: self.lost.iter().cloned().collect(), until_ms });
            }
        } else {
            self.scheduled = None;
            self.candidates.clear();
        }
        // Never-assigned work, and lost work treated as new, to the least loaded members.
        for unit in self.units.clone() {
            if !self.owner.contains_key(&unit) && !self.lost.contains(&unit) && !to_assign.contains(&unit) {
                to_assign.push(unit);
            }
        }
        to_assign.sort_by_key(|u| (matches!(u, Unit::Task(..)), u.clone()));
        for unit in to_assign {
            let is_task = matches!(unit, Unit::Task(..));
            let load = |w: &String| {
                self.owner.iter().filter(|(u, o)| *o == w && matches!(u, Unit::Task(..)) == is_task).count()
            };
            let worker = members.iter().min_by_key(|w| (load(w), (*w).clone())).expect("members").clone();
            self.owner.insert(unit, worker);
        }
        self.previous_members = members.clone();
        let assignments = members.iter().map(|w| (w.clone(), self.assignment(w))).collect();
        events.push(GroupEvent::Rebalanced { generation: self.generation, assignments });
    }

    /// What `worker` runs now.
    pub fn assignment(&self, worker: &str) -> Vec<Unit> {
        self.owner.iter().filter(|(_, w)| *w == worker).map(|(u, _)| u.clone()).collect()
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub fn is_member(&self, worker: &str) -> bool {
        self.members.contains_key(worker)
    }
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

    fn run(g: &mut WorkerGroup, now: u64, alive: &[&str]) -> Vec<GroupEvent> {
        let mut events = Vec::new();
        for w in alive {
            g.heartbeat(now, w, &mut events);
        }
        g.tick(now, &mut events);
        events
    }

    #[test]
    fn two_workers_share_connectors_and_tasks() {
        let mut g = WorkerGroup::new(10_000, 300_000, units());
        run(&mut g, 0, &["w1"]);
        run(&mut g, 1_000, &["w1", "w2"]);
        assert_eq!(g.generation(), 0, "the first rebalance waits for members to join");
        run(&mut g, 3_000, &["w1", "w2"]);
        assert_eq!(g.assignment("w1").len() + g.assignment("w2").len(), 5);
        let tasks = |w: &str| g.assignment(w).iter().filter(|u| matches!(u, Unit::Task(..))).count();
        assert!(tasks("w1").abs_diff(tasks("w2")) <= 1);
    }

    /// Both workers join at 0; the first rebalance ends at 3 s.
    fn started() -> WorkerGroup {
        let mut g = WorkerGroup::new(10_000, 300_000, units());
        run(&mut g, 0, &["w1", "w2"]);
        run(&mut g, 3_000, &["w1", "w2"]);
        assert_eq!(g.generation(), 1);
        g
    }

    #[test]
    fn a_dead_workers_tasks_wait_for_the_scheduled_rebalance_then_move() {
        let mut g = started();
        let w1_had = g.assignment("w1");
        assert!(!w1_had.is_empty());
        // w1 dies after its heartbeat at 3 s: its session expires at 13 s, the rebalance ends
        // at 16 s, and its work waits until 16 s + 300 s.
        let mut delayed = None;
        for t in (4_000..30_000).step_by(1_000) {
            for e in run(&mut g, t, &["w2"]) {
                if let GroupEvent::Delayed { until_ms, .. } = e {
                    delayed = Some(until_ms);
                }
            }
        }
        assert_eq!(delayed, Some(316_000));
        assert!(w1_had.iter().all(|u| !g.assignment("w2").contains(u)), "nothing moved yet");
        run(&mut g, 316_000, &["w2"]);
        assert!(w1_had.iter().all(|u| g.assignment("w2").contains(u)), "after the delay w2 runs everything");
    }

    #[test]
    fn a_worker_back_within_the_delay_gets_its_work_back() {
        let mut g = started();
        let w1_had = g.assignment("w1");
        run(&mut g, 13_000, &["w2"]);
        run(&mut g, 16_000, &["w2"]);
        run(&mut g, 60_000, &["w1", "w2"]);
        run(&mut g, 63_000, &["w1", "w2"]);
        assert!(g.assignment("w1").is_empty(), "back, but the lost work waits for the delay");
        run(&mut g, 316_000, &["w1", "w2"]);
        assert_eq!(g.assignment("w1"), w1_had);
    }

    #[test]
    fn with_no_delay_lost_work_moves_at_once() {
        let mut g = WorkerGroup::new(10_000, 0, units());
        run(&mut g, 0, &["w1", "w2"]);
        run(&mut g, 3_000, &["w1", "w2"]);
        run(&mut g, 13_000, &["w2"]);
        run(&mut g, 16_000, &["w2"]);
        assert_eq!(g.assignment("w2").len(), 5);
    }
}
