//! KRaft: the pull-based Raft that replicates Kafka's metadata log among the controllers
//! (KIP-595), with pre-vote (KIP-996) and check-quorum.
//!
//! A fixed set of **voters** (`controller.quorum.voters`) elects a leader for each **epoch**. A
//! voter whose leader goes quiet for `controller.quorum.fetch.timeout.ms` starts an election; from
//! Kafka 4.0 it first asks for *pre-votes* in its current epoch, and only if a majority would vote
//! for it does it bump the epoch and ask for real votes. A voter gives one vote per epoch, and only
//! to a candidate whose log is at least as up to date as its own (last epoch, then end offset).
//! Whoever gets a majority writes a LeaderChange record and announces itself with
//! BeginQuorumEpoch.
//!
//! Replication is pulled: followers and **observers** (brokers) Fetch from the leader, naming their
//! log end and its last epoch. The leader answers with records, or tells a follower whose tail it
//! never had where to truncate (the diverging epoch). The leader's **high watermark** is the
//! offset a majority of voters has reached, and it moves only once an entry of the leader's own
//! epoch is among them, so a new leader never declares an older epoch's entry committed by
//! counting replicas. A leader that has not heard a fetch from a majority for 1.5 × the fetch
//! timeout resigns (check-quorum), so a leader cut off from the quorum stops pretending.
//!
//! Checked against Kafka's `raft` module: `KafkaRaftClient` (handleVoteRequest,
//! handleVoteResponse, handleBeginQuorumEpochRequest, handleEndQuorumEpochRequest,
//! handleFetchRequest, handleFetchResponse, maybeHandleCommonResponse, pollCandidate,
//! binaryExponentialElectionBackoffMs, strictExponentialElectionBackoffMs), `QuorumState` (the
//! transitions and `initialize`), `LeaderState` (maybeUpdateHighWatermark, check-quorum),
//! `FollowerState` (hasFetchedFromLeader), `ProspectiveState`, `CandidateState`, `EpochElection`.
//!
//! The module is sans-IO like the rest of the crate: [`Raft`] takes a message or a fired timer and
//! answers with a [`RaftOut`] (messages to node ids, timer operations, events). The host (the
//! controller, or a broker as observer) maps ids to nodes and timers to its own.

pub mod log;
pub mod message;
pub mod state;
#[cfg(test)]
mod tests;

use crate::error::ErrorCode;
use crate::invariant::ensure;
use crate::time::SimTime;
use log::{Entry, Payload, RaftLog};
use message::*;
use serde::{Deserialize, Serialize};
use state::{ElectionRecord, HeldFetch, LeaderState, QuorumConfig, Role, RoleName, Tally};
use std::collections::{BTreeMap, BTreeSet};

/// `KafkaRaftClient.RETRY_BACKOFF_BASE_MS`: the unit of the binary election backoff.
const RETRY_BACKOFF_BASE_MS: u64 = 100;
/// At most this many entries in one fetch response.
const MAX_FETCH_ENTRIES: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RaftTimer {
    /// Unattached, Prospective, Candidate, Resigned: the election timeout (or a candidate's backoff).
    Election,
    /// Follower: no successful fetch for `controller.quorum.fetch.timeout.ms`.
    FetchTimeout,
    /// Follower or observer: an unanswered fetch is sent again.
    FetchRetry,
    /// Leader: no fetch from a majority for 1.5 × the fetch timeout.
    CheckQuorum,
    /// Leader: BeginQuorumEpoch again to voters that have not acknowledged it.
    BeginQuorumEpochRetry,
    /// Leader: a held fetch from this replica has waited `fetchMaxWaitMs`.
    FetchWait(i32),
}

/// What happened, for the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftEvent {
    Transition {
        epoch: i32,
        role: RoleName,
        leader: Option<i32>,
    },
    VoteCast {
        epoch: i32,
        candidate: i32,
        pre_vote: bool,
        granted: bool,
    },
    /// The high watermark moved: `no_ops` of the newly committed entries are the controller's
    /// idle no-ops (KIP-835), and `only_no_ops` says whether nothing else was committed, which
    /// the story leaves out (a line every `metadata.max.idle.interval.ms` per node would bury it).
    HighWatermark {
        high_watermark: i64,
        #[serde(default)]
        no_ops: u32,
        #[serde(default)]
        only_no_ops: bool,
    },
    Truncated {
        from: i64,
        to: i64,
    },
    /// A leader resigned: `check_quorum` if no majority fetched in time, else gracefully.
    Resigned {
        epoch: i32,
        check_quorum: bool,
    },
}

/// What the Raft layer asks of the records it carries: whether one is a no-op that only keeps
/// the log moving (Kafka's `NoOpRecord`, KIP-835), so the trace can count such commits instead of
/// narrating each.
pub trait RaftRecord: Clone {
    fn is_no_op(&self) -> bool {
        false
    }
}

impl RaftRecord for u32 {}

/// What one input asks of the host.
#[derive(Debug, PartialEq)]
pub struct RaftOut<T> {
    pub sends: Vec<(i32, RaftMessage<T>)>,
    /// In order; `None` cancels.
    pub timers: Vec<(RaftTimer, Option<SimTime>)>,
    pub events: Vec<RaftEvent>,
}

impl<T> Default for RaftOut<T> {
    fn default() -> Self {
        RaftOut { sends: Vec::new(), timers: Vec::new(), events: Vec::new() }
    }
}

impl<T> RaftOut<T> {
    fn send(&mut self, to: i32, message: RaftMessage<T>) {
        self.sends.push((to, message));
    }
    fn set(&mut self, timer: RaftTimer, at: SimTime) {
        self.timers.push((timer, Some(at)));
    }
    fn cancel(&mut self, timer: RaftTimer) {
        self.timers.push((timer, None));
    }
}

/// What survives a restart: the log and the `quorum-state` file. KRaft flushes both before they
/// count, so a power failure loses neither.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaftDisk<T> {
    pub log: RaftLog<T>,
    pub election: ElectionRecord,
}

impl<T> Default for RaftDisk<T> {
    fn default() -> Self {
        RaftDisk { log: RaftLog::default(), election: ElectionRecord::default() }
    }
}

fn random_below(rng: &mut dyn rand_core::RngCore, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        u64::from(rng.next_u32()) % n
    }
}

pub struct Raft<T> {
    id: i32,
    voters: BTreeSet<i32>,
    config: QuorumConfig,
    log: RaftLog<T>,
    election: ElectionRecord,
    role: Role,
    high_watermark: i64,
    /// When the Election timer fires, if it is set (a transition to Unattached keeps it).
    election_deadline: Option<SimTime>,
}

impl<T: RaftRecord> Raft<T> {
    /// A member recovering from `disk` (`QuorumState.initialize`): a former leader comes back
    /// Resigned in its epoch (it must not vote again in it), a former candidate as Candidate, a
    /// voter that voted as Unattached with that vote, a follower as Follower.
    pub fn new(id: i32, voters: BTreeSet<i32>, config: QuorumConfig, disk: RaftDisk<T>) -> Self {
        let RaftDisk { log, mut election } = disk;
        let is_voter = voters.contains(&id);
        let role = if election.epoch < log.last_epoch() {
            election = ElectionRecord { epoch: log.last_epoch(), voted_for: None, leader: None };
            Role::Unattached { leader_hint: None }
        } else if election.leader == Some(id) {
            Role::Resigned { preferred_successors: Vec::new() }
        } else if election.voted_for == Some(id) && is_voter {
            Role::Candidate { tally: Tally::of_self(id), retries: 1, backing_off: false }
        } else if election.voted_for.is_some() {
            Role::Unattached { leader_hint: None }
        } else if let Some(leader) = election.leader {
            Role::Follower { leader, has_fetched: false, fetching: false }
        } else {
            Role::Unattached { leader_hint: None }
        };
        Raft { id, voters, config, log, election, role, high_watermark: 0, election_deadline: None }
    }

    // ---- reading --------------------------------------------------------------------------------

    pub fn id(&self) -> i32 {
        self.id
    }
    pub fn epoch(&self) -> i32 {
        self.election.epoch
    }
    pub fn role(&self) -> RoleName {
        self.role.name()
    }
    pub fn is_voter(&self) -> bool {
        self.voters.contains(&self.id)
    }
    pub fn voters(&self) -> &BTreeSet<i32> {
        &self.voters
    }
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }
    /// The leader of the current epoch, as far as this member knows.
    pub fn leader(&self) -> Option<i32> {
        match &self.role {
            Role::Leader(_) => Some(self.id),
            Role::Follower { leader, .. } => Some(*leader),
            _ => None,
        }
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn log(&self) -> &RaftLog<T> {
        &self.log
    }
    pub fn election(&self) -> &ElectionRecord {
        &self.election
    }
    /// On a leader: each voter's log end as last reported (the leader's own included).
    pub fn voter_ends(&self) -> Option<&BTreeMap<i32, Option<i64>>> {
        match &self.role {
            Role::Leader(state) => Some(&state.voter_end),
            _ => None,
        }
    }
    pub fn into_disk(self) -> RaftDisk<T> {
        RaftDisk { log: self.log, election: self.election }
    }

    fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    fn other_voters(&self) -> Vec<i32> {
        self.voters.iter().copied().filter(|&v| v != self.id).collect()
    }

    // ---- timing ---------------------------------------------------------------------------------

    /// `QuorumState.randomElectionTimeoutMs`: uniform in [T, 2T).
    fn random_election_timeout_ms(&self, rng: &mut dyn rand_core::RngCore) -> u64 {
        let t = self.config.election_timeout_ms;
        t + random_below(rng, t)
    }

    /// `KafkaRaftClient.binaryExponentialElectionBackoffMs`: 100 ms × a random number below
    /// 2^retries, capped by `controller.quorum.election.backoff.max.ms`.
    fn binary_backoff_ms(&self, retries: u32, rng: &mut dyn rand_core::RngCore) -> u64 {
        let retries = retries.max(1);
        let bound = 2u64 << (retries - 1).min(20);
        (RETRY_BACKOFF_BASE_MS * random_below(rng, bound)).min(self.config.election_backoff_max_ms)
    }

    /// `KafkaRaftClient.strictExponentialElectionBackoffMs`: after EndQuorumEpoch the first
    /// preferred successor starts at once, the next ones exponentially later.
    fn strict_backoff_ms(&self, position: Option<usize>, total: usize) -> u64 {
        let max = self.config.election_backoff_max_ms;
        match position {
            Some(0) => 0,
            Some(p) if p < total => {
                let base = max >> (total - 1);
                (base << (p - 1)).min(max)
            }
            _ => max,
        }
    }

    // ---- transitions ----------------------------------------------------------------------------

    fn leave_role(&mut self, out: &mut RaftOut<T>) {
        self.election_deadline = None;
        for timer in [
            RaftTimer::Election,
            RaftTimer::FetchTimeout,
            RaftTimer::FetchRetry,
            RaftTimer::CheckQuorum,
            RaftTimer::BeginQuorumEpochRetry,
        ] {
            out.cancel(timer);
        }
        if let Role::Leader(state) = &self.role {
            for &replica in state.held_fetches.keys() {
                out.cancel(RaftTimer::FetchWait(replica));
            }
        }
    }

    fn set_election_timer(&mut self, at: SimTime, out: &mut RaftOut<T>) {
        self.election_deadline = Some(at);
        out.set(RaftTimer::Election, at);
    }

    fn enter(&mut self, role: Role, out: &mut RaftOut<T>) {
        self.leave_role(out);
        self.role = role;
        out.events.push(RaftEvent::Transition { epoch: self.epoch(), role: self.role(), leader: self.leader() });
    }

    /// Start (or restart) the process: arm what the recovered role needs.
    pub fn start(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        out.events.push(RaftEvent::Transition { epoch: self.epoch(), role: self.role(), leader: self.leader() });
        match self.role.clone() {
            Role::Follower { leader, .. } => self.become_follower(now, self.epoch(), leader, out),
            Role::Candidate { .. } => {
                let at = now.plus_ms(self.random_election_timeout_ms(rng));
                self.set_election_timer(at, out);
                self.send_vote_requests(false, out);
            }
            Role::Unattached { .. } | Role::Prospective { .. } | Role::Resigned { .. } => {
                if self.is_voter() {
                    let at = now.plus_ms(self.random_election_timeout_ms(rng));
                    self.set_election_timer(at, out);
                } else {
                    self.fetch_from_any_voter(now, rng, out);
                }
            }
            Role::Leader(_) => unreachable!("a member never starts as leader (QuorumState.initialize)"),
        }
    }

    /// `QuorumState.transitionToUnattached`: a voter already waiting out an election timer
    /// (Unattached, Candidate, Resigned, or a Prospective whose pre-votes were not refused) keeps
    /// the time it has left instead of drawing a new one. Otherwise a candidate that cannot win
    /// (a stale log) but keeps bumping the epoch would reset everyone's timer forever, and nobody
    /// else would ever stand (the election timer is not reset, `QuorumStateTest.testUnattachedToUnattached`).
    fn become_unattached(
        &mut self,
        now: SimTime,
        epoch: i32,
        voted_for: Option<i32>,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        let voters = self.voters.len();
        let keep = match &self.role {
            Role::Unattached { .. } | Role::Candidate { .. } | Role::Resigned { .. } => self.election_deadline,
            Role::Prospective { tally, .. } if !tally.lost(voters) => self.election_deadline,
            _ => None,
        }
        .filter(|at| *at > now);
        self.election = ElectionRecord { epoch, voted_for, leader: None };
        self.enter(Role::Unattached { leader_hint: None }, out);
        if self.is_voter() {
            let at = keep.unwrap_or_else(|| now.plus_ms(self.random_election_timeout_ms(rng)));
            self.set_election_timer(at, out);
        } else {
            self.fetch_from_any_voter(now, rng, out);
        }
    }

    fn become_follower(&mut self, now: SimTime, epoch: i32, leader: i32, out: &mut RaftOut<T>) {
        assert_ne!(leader, self.id, "a member never follows itself");
        let voted_for = if epoch == self.election.epoch { self.election.voted_for } else { None };
        self.election = ElectionRecord { epoch, voted_for, leader: Some(leader) };
        self.enter(Role::Follower { leader, has_fetched: false, fetching: false }, out);
        out.set(RaftTimer::FetchTimeout, now.plus_ms(self.config.fetch_timeout_ms));
        self.send_fetch(now, leader, out);
    }

    /// A voter's timer ran out: pre-vote first from Kafka 4.0, a real election before.
    fn start_election(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        if !self.is_voter() {
            return;
        }
        if self.config.pre_vote {
            self.become_prospective(now, rng, out);
        } else {
            self.become_candidate(now, 1, rng, out);
        }
    }

    fn become_prospective(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        let leader_hint = match &self.role {
            Role::Follower { leader, .. } => Some(*leader),
            Role::Unattached { leader_hint } | Role::Prospective { leader_hint, .. } => *leader_hint,
            _ => None,
        };
        self.enter(Role::Prospective { tally: Tally::of_self(self.id), leader_hint }, out);
        let at = now.plus_ms(self.random_election_timeout_ms(rng));
        self.set_election_timer(at, out);
        if self.voters.len() == 1 {
            self.become_candidate(now, 1, rng, out);
        } else {
            self.send_vote_requests(true, out);
        }
    }

    fn become_candidate(&mut self, now: SimTime, retries: u32, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        self.election = ElectionRecord { epoch: self.epoch() + 1, voted_for: Some(self.id), leader: None };
        self.enter(Role::Candidate { tally: Tally::of_self(self.id), retries, backing_off: false }, out);
        let at = now.plus_ms(self.random_election_timeout_ms(rng));
        self.set_election_timer(at, out);
        if self.voters.len() == 1 {
            self.become_leader(now, out);
        } else {
            self.send_vote_requests(false, out);
        }
    }

    fn become_leader(&mut self, now: SimTime, out: &mut RaftOut<T>) {
        self.election.leader = Some(self.id);
        let epoch_start_offset = self.log.end_offset();
        let voter_end = self.voters.iter().map(|&v| (v, None)).collect();
        self.enter(
            Role::Leader(LeaderState {
                epoch_start_offset,
                voter_end,
                observer_end: BTreeMap::new(),
                fetched_voters: BTreeSet::new(),
                acknowledged: BTreeSet::new(),
                held_fetches: BTreeMap::new(),
            }),
            out,
        );
        self.append_entry(Payload::LeaderChange { leader: self.id });
        if self.voters.len() > 1 {
            out.set(RaftTimer::CheckQuorum, now.plus_ms(self.config.check_quorum_timeout_ms()));
        }
        self.send_begin_quorum_epoch(now, out);
        self.maybe_advance_high_watermark(out);
    }

    fn become_resigned(
        &mut self,
        now: SimTime,
        check_quorum: bool,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        let Role::Leader(state) = &self.role else { return };
        // `LeaderState.nonLeaderVotersByDescendingFetchOffset`: the most caught-up first.
        let mut successors: Vec<(i64, i32)> =
            state.voter_end.iter().filter(|(&v, _)| v != self.id).map(|(&v, end)| (end.unwrap_or(-1), v)).collect();
        successors.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let preferred_successors: Vec<i32> = successors.into_iter().map(|(_, v)| v).collect();
        out.events.push(RaftEvent::Resigned { epoch: self.epoch(), check_quorum });
        self.enter(Role::Resigned { preferred_successors: preferred_successors.clone() }, out);
        for &voter in &preferred_successors {
            out.send(
                voter,
                RaftMessage::EndQuorumEpoch(EndQuorumEpochRequest {
                    leader_id: self.id,
                    leader_epoch: self.epoch(),
                    preferred_successors: preferred_successors.clone(),
                }),
            );
        }
        let at = now.plus_ms(self.random_election_timeout_ms(rng));
        self.set_election_timer(at, out);
    }

    /// A graceful shutdown of the leader (`KafkaRaftClient.shutdown` → `transitionToResigned`).
    pub fn resign(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        self.become_resigned(now, false, rng, out);
    }

    /// A prospective that lost or timed out goes back to what it knew
    /// (`QuorumState`: Follower if it had a leader, else Unattached, in the same epoch).
    fn prospective_lost(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        let Role::Prospective { leader_hint, .. } = self.role.clone() else { return };
        match leader_hint {
            Some(leader) => self.become_follower(now, self.epoch(), leader, out),
            None => self.become_unattached(now, self.epoch(), self.election.voted_for, rng, out),
        }
    }

    // ---- sending --------------------------------------------------------------------------------

    fn send_vote_requests(&self, pre_vote: bool, out: &mut RaftOut<T>) {
        let end = self.log.end();
        for voter in self.other_voters() {
            out.send(
                voter,
                RaftMessage::Vote(VoteRequest {
                    candidate_id: self.id,
                    candidate_epoch: self.epoch(),
                    last_offset_epoch: end.epoch,
                    last_offset: end.offset,
                    pre_vote,
                }),
            );
        }
    }

    fn send_begin_quorum_epoch(&mut self, now: SimTime, out: &mut RaftOut<T>) {
        let Role::Leader(state) = &self.role else { return };
        let pending: Vec<i32> = self.other_voters().into_iter().filter(|v| !state.acknowledged.contains(v)).collect();
        for &voter in &pending {
            out.send(
                voter,
                RaftMessage::BeginQuorumEpoch(BeginQuorumEpochRequest {
                    leader_id: self.id,
                    leader_epoch: self.epoch(),
                }),
            );
        }
        if !pending.is_empty() {
            out.set(RaftTimer::BeginQuorumEpochRetry, now.plus_ms(self.config.request_timeout_ms));
        }
    }

    fn send_fetch(&mut self, now: SimTime, to: i32, out: &mut RaftOut<T>) {
        if let Role::Follower { fetching, .. } = &mut self.role {
            *fetching = true;
        }
        out.send(
            to,
            RaftMessage::Fetch(RaftFetchRequest {
                replica_id: self.id,
                current_leader_epoch: self.epoch(),
                fetch_offset: self.log.end_offset(),
                last_fetched_epoch: self.log.last_epoch(),
            }),
        );
        out.set(RaftTimer::FetchRetry, now.plus_ms(self.config.request_timeout_ms));
    }

    /// An observer that knows no leader asks a random voter (Kafka's bootstrap servers); the
    /// answer names the leader.
    fn fetch_from_any_voter(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        let voters = self.other_voters();
        if voters.is_empty() {
            return;
        }
        let to = voters[random_below(rng, voters.len() as u64) as usize];
        self.send_fetch(now, to, out);
    }

    // ---- the leader's log -----------------------------------------------------------------------

    fn append_entry(&mut self, payload: Payload<T>) {
        let epoch = self.epoch();
        self.log.append(Entry { epoch, payload });
        let end = self.log.end_offset();
        if let Role::Leader(state) = &mut self.role {
            state.voter_end.insert(self.id, Some(end));
        }
    }

    /// The leader appends records of the state machine above (the controller's metadata). Returns
    /// the offset of the last one, or `None` if this member is not the leader.
    pub fn append(&mut self, now: SimTime, payloads: Vec<T>, out: &mut RaftOut<T>) -> Option<i64> {
        if !self.is_leader() {
            return None;
        }
        for payload in payloads {
            self.append_entry(Payload::Data(payload));
        }
        self.maybe_advance_high_watermark(out);
        self.answer_held_fetches(now, out);
        Some(self.log.end_offset() - 1)
    }

    /// `LeaderState.maybeUpdateHighWatermark`: the offset a majority of voters has reached, but
    /// only once it passes the epoch's start (an entry of this epoch is committed).
    fn maybe_advance_high_watermark(&mut self, out: &mut RaftOut<T>) -> bool {
        let Role::Leader(state) = &self.role else { return false };
        let mut ends: Vec<i64> = state.voter_end.values().map(|e| e.unwrap_or(-1)).collect();
        ends.sort_unstable_by(|a, b| b.cmp(a));
        let majority_end = ends[self.voters.len() / 2];
        if majority_end > state.epoch_start_offset && majority_end > self.high_watermark {
            self.set_high_watermark(majority_end, out);
            true
        } else {
            false
        }
    }

    /// Move the high watermark forward, counting the no-ops it commits.
    fn set_high_watermark(&mut self, high_watermark: i64, out: &mut RaftOut<T>) {
        assert!(high_watermark > self.high_watermark, "the high watermark only moves forward");
        let committed = high_watermark - self.high_watermark;
        let no_ops = (self.high_watermark..high_watermark)
            .filter(|&o| matches!(self.log.get(o), Some(Entry { payload: Payload::Data(r), .. }) if r.is_no_op()))
            .count();
        self.high_watermark = high_watermark;
        out.events.push(RaftEvent::HighWatermark {
            high_watermark,
            no_ops: no_ops as u32,
            only_no_ops: no_ops as i64 == committed,
        });
    }

    fn fetch_response(&self, error: ErrorCode, base_offset: i64) -> RaftFetchResponse<T> {
        let records = if error == ErrorCode::None && self.is_leader() {
            self.log.entries_from(base_offset, MAX_FETCH_ENTRIES)
        } else {
            Vec::new()
        };
        RaftFetchResponse {
            error,
            leader_epoch: self.epoch(),
            leader_id: self.leader(),
            high_watermark: self.high_watermark,
            base_offset,
            records,
            diverging_epoch: None,
        }
    }

    fn answer_held_fetch(&mut self, replica: i32, out: &mut RaftOut<T>) {
        let Role::Leader(state) = &mut self.role else { return };
        let Some(held) = state.held_fetches.remove(&replica) else { return };
        out.cancel(RaftTimer::FetchWait(replica));
        let response = self.fetch_response(ErrorCode::None, held.fetch_offset);
        out.send(replica, RaftMessage::FetchResponse(response));
    }

    fn answer_held_fetches(&mut self, _now: SimTime, out: &mut RaftOut<T>) {
        let held: Vec<i32> = match &self.role {
            Role::Leader(state) => state.held_fetches.keys().copied().collect(),
            _ => return,
        };
        for replica in held {
            self.answer_held_fetch(replica, out);
        }
    }

    // ---- inputs ---------------------------------------------------------------------------------

    pub fn on_timer(&mut self, now: SimTime, timer: RaftTimer, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        match (timer, self.role.clone()) {
            (RaftTimer::Election, Role::Unattached { .. } | Role::Resigned { .. }) => {
                self.start_election(now, rng, out)
            }
            (RaftTimer::Election, Role::Prospective { .. }) => self.prospective_lost(now, rng, out),
            (RaftTimer::Election, Role::Candidate { retries, backing_off: true, .. }) => {
                // `pollCandidate`: the backoff is over; try again.
                if self.config.pre_vote {
                    self.become_prospective(now, rng, out);
                } else {
                    self.become_candidate(now, retries + 1, rng, out);
                }
            }
            (RaftTimer::Election, Role::Candidate { backing_off: false, .. }) => self.back_off(now, rng, out),
            (RaftTimer::FetchTimeout, Role::Follower { .. }) => {
                if self.is_voter() {
                    self.start_election(now, rng, out);
                } else {
                    self.become_unattached(now, self.epoch(), None, rng, out);
                }
            }
            (RaftTimer::FetchRetry, Role::Follower { leader, .. }) => self.send_fetch(now, leader, out),
            (RaftTimer::FetchRetry, Role::Unattached { .. }) if !self.is_voter() => {
                self.fetch_from_any_voter(now, rng, out)
            }
            (RaftTimer::CheckQuorum, Role::Leader(_)) => self.become_resigned(now, true, rng, out),
            (RaftTimer::BeginQuorumEpochRetry, Role::Leader(_)) => self.send_begin_quorum_epoch(now, out),
            (RaftTimer::FetchWait(replica), Role::Leader(_)) => self.answer_held_fetch(replica, out),
            _ => {}
        }
    }

    /// A lost election: wait a random, growing while before trying again.
    fn back_off(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, out: &mut RaftOut<T>) {
        let Role::Candidate { retries, backing_off, .. } = &mut self.role else { return };
        *backing_off = true;
        let retries = *retries;
        let at = now.plus_ms(self.binary_backoff_ms(retries, rng));
        self.set_election_timer(at, out);
    }

    pub fn on_message(
        &mut self,
        now: SimTime,
        from: i32,
        message: RaftMessage<T>,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        match message {
            RaftMessage::Vote(request) => self.on_vote(now, from, request, rng, out),
            RaftMessage::VoteResponse(response) => self.on_vote_response(now, from, response, rng, out),
            RaftMessage::BeginQuorumEpoch(request) => self.on_begin_quorum_epoch(now, from, request, rng, out),
            RaftMessage::BeginQuorumEpochResponse(response) => {
                if !self.on_common_response(now, response.leader_epoch, response.leader_id, rng, out)
                    && response.error == ErrorCode::None
                    && response.leader_epoch == self.epoch()
                {
                    if let Role::Leader(state) = &mut self.role {
                        state.acknowledged.insert(from);
                    }
                }
            }
            RaftMessage::EndQuorumEpoch(request) => self.on_end_quorum_epoch(now, from, request, rng, out),
            RaftMessage::EndQuorumEpochResponse(response) => {
                self.on_common_response(now, response.leader_epoch, response.leader_id, rng, out);
            }
            RaftMessage::Fetch(request) => self.on_fetch(now, from, request, out),
            RaftMessage::FetchResponse(response) => self.on_fetch_response(now, from, response, rng, out),
        }
    }

    /// Whether this member knows a leader of its epoch (`QuorumState.hasLeader`): a prospective
    /// that was following one still knows it, and a resigned leader knows itself.
    fn knows_leader(&self) -> bool {
        match &self.role {
            Role::Leader(_) | Role::Follower { .. } | Role::Resigned { .. } => true,
            Role::Unattached { leader_hint } | Role::Prospective { leader_hint, .. } => leader_hint.is_some(),
            Role::Candidate { .. } => false,
        }
    }

    /// `KafkaRaftClient.maybeHandleCommonResponse`: an answer from a later epoch, or one naming
    /// this epoch's leader when this member knows none, moves it there. Returns whether it did
    /// (the answer is then stale).
    fn on_common_response(
        &mut self,
        now: SimTime,
        epoch: i32,
        leader: Option<i32>,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) -> bool {
        let leader = leader.filter(|&l| l != self.id);
        if epoch > self.epoch() {
            match leader {
                Some(l) => self.become_follower(now, epoch, l, out),
                None => self.become_unattached(now, epoch, None, rng, out),
            }
            true
        } else if epoch == self.epoch() && !self.knows_leader() {
            match leader {
                Some(l) => {
                    self.become_follower(now, epoch, l, out);
                    true
                }
                None => false,
            }
        } else {
            false
        }
    }

    /// `QuorumState.canGrantVote` through each state's `canGrantVote`.
    fn can_grant(&self, candidate: i32, log_up_to_date: bool, pre_vote: bool) -> bool {
        match &self.role {
            Role::Unattached { .. } | Role::Prospective { .. } => {
                if pre_vote {
                    log_up_to_date
                } else {
                    match self.election.voted_for {
                        Some(voted) => voted == candidate,
                        None => log_up_to_date,
                    }
                }
            }
            // A candidate voted for itself; it may still say a prospective could win.
            Role::Candidate { .. } => pre_vote && log_up_to_date,
            // KIP-996: a follower that hears its leader refuses pre-votes; one that has not yet
            // fetched in this epoch may be the one cut off, and grants them.
            Role::Follower { has_fetched, .. } => pre_vote && !has_fetched && log_up_to_date,
            Role::Leader(_) | Role::Resigned { .. } => false,
        }
    }

    fn on_vote(
        &mut self,
        now: SimTime,
        from: i32,
        request: VoteRequest,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        let pre_vote = request.pre_vote;
        let reply = |raft: &Raft<T>, error: ErrorCode, granted: bool| {
            RaftMessage::VoteResponse(VoteResponse {
                error,
                leader_epoch: raft.epoch(),
                leader_id: raft.leader(),
                vote_granted: granted,
                pre_vote,
            })
        };
        if !self.is_voter() || !self.voters.contains(&request.candidate_id) {
            out.send(from, reply(self, ErrorCode::None, false));
            return;
        }
        if request.candidate_epoch < self.epoch() {
            out.send(from, reply(self, ErrorCode::FencedLeaderEpoch, false));
            return;
        }
        if request.candidate_epoch > self.epoch() {
            self.become_unattached(now, request.candidate_epoch, None, rng, out);
        }
        let up_to_date = request.last() >= self.log.end();
        let granted = self.can_grant(request.candidate_id, up_to_date, pre_vote);
        if granted && !pre_vote && self.election.voted_for.is_none() {
            // One vote per epoch, written to `quorum-state` before the answer leaves.
            self.election.voted_for = Some(request.candidate_id);
            self.enter(Role::Unattached { leader_hint: None }, out);
            let at = now.plus_ms(self.random_election_timeout_ms(rng));
            self.set_election_timer(at, out);
        }
        out.events.push(RaftEvent::VoteCast {
            epoch: self.epoch(),
            candidate: request.candidate_id,
            pre_vote,
            granted,
        });
        out.send(from, reply(self, ErrorCode::None, granted));
    }

    fn on_vote_response(
        &mut self,
        now: SimTime,
        from: i32,
        response: VoteResponse,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        if self.on_common_response(now, response.leader_epoch, response.leader_id, rng, out)
            || response.error != ErrorCode::None
            || response.leader_epoch != self.epoch()
        {
            return;
        }
        let voters = self.voters.len();
        match &mut self.role {
            Role::Prospective { tally, .. } if response.pre_vote => {
                if response.vote_granted {
                    tally.granted.insert(from);
                } else {
                    tally.rejected.insert(from);
                }
                if tally.won(voters) {
                    self.become_candidate(now, 1, rng, out);
                } else if tally.lost(voters) {
                    self.prospective_lost(now, rng, out);
                }
            }
            Role::Candidate { tally, backing_off: false, .. } if !response.pre_vote => {
                if response.vote_granted {
                    tally.granted.insert(from);
                } else {
                    tally.rejected.insert(from);
                }
                if tally.won(voters) {
                    self.become_leader(now, out);
                } else if tally.lost(voters) {
                    // "If our vote is rejected, we go immediately to the random backoff."
                    self.back_off(now, rng, out);
                }
            }
            _ => {}
        }
    }

    fn on_begin_quorum_epoch(
        &mut self,
        now: SimTime,
        from: i32,
        request: BeginQuorumEpochRequest,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        let error = if request.leader_epoch < self.epoch() {
            ErrorCode::FencedLeaderEpoch
        } else {
            let following = matches!(self.role, Role::Follower { leader, .. } if leader == request.leader_id);
            if request.leader_epoch > self.epoch() || !following {
                self.become_follower(now, request.leader_epoch, request.leader_id, out);
            }
            ErrorCode::None
        };
        let _ = rng;
        out.send(
            from,
            RaftMessage::BeginQuorumEpochResponse(EpochResponse {
                error,
                leader_epoch: self.epoch(),
                leader_id: self.leader(),
            }),
        );
    }

    fn on_end_quorum_epoch(
        &mut self,
        now: SimTime,
        from: i32,
        request: EndQuorumEpochRequest,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        let error = if request.leader_epoch < self.epoch() {
            ErrorCode::FencedLeaderEpoch
        } else {
            if request.leader_epoch > self.epoch() {
                self.become_unattached(now, request.leader_epoch, None, rng, out);
            }
            let position = request.preferred_successors.iter().position(|&v| v == self.id);
            let backoff_ms = self.strict_backoff_ms(position, request.preferred_successors.len());
            if let Role::Follower { leader, has_fetched, .. } = &mut self.role {
                if *leader == request.leader_id {
                    // The leader said it is leaving: it no longer vouches for itself, so this
                    // follower grants pre-votes again, and starts an election after its place
                    // in the successor list (`handleEndQuorumEpochRequest` overrides the fetch
                    // timeout).
                    *has_fetched = false;
                    out.set(RaftTimer::FetchTimeout, now.plus_ms(backoff_ms));
                }
            }
            ErrorCode::None
        };
        out.send(
            from,
            RaftMessage::EndQuorumEpochResponse(EpochResponse {
                error,
                leader_epoch: self.epoch(),
                leader_id: self.leader(),
            }),
        );
    }

    fn on_fetch(&mut self, now: SimTime, from: i32, request: RaftFetchRequest, out: &mut RaftOut<T>) {
        // `KafkaRaftClient.validateLeaderOnlyRequest`.
        let error = if request.current_leader_epoch < self.epoch() {
            Some(ErrorCode::FencedLeaderEpoch)
        } else if request.current_leader_epoch > self.epoch() {
            Some(ErrorCode::UnknownLeaderEpoch)
        } else if !self.is_leader() {
            Some(ErrorCode::NotLeaderOrFollower)
        } else {
            None
        };
        if let Some(error) = error {
            out.send(from, RaftMessage::FetchResponse(self.fetch_response(error, request.fetch_offset)));
            return;
        }
        let is_voter = self.voters.contains(&from);
        let majority = self.majority();
        let check_quorum_ms = self.config.check_quorum_timeout_ms();
        let Role::Leader(state) = &mut self.role else { unreachable!("checked above") };
        if is_voter {
            state.acknowledged.insert(from);
            // `LeaderState.updateCheckQuorumForFollowingVoter`.
            state.fetched_voters.insert(from);
            if state.fetched_voters.len() + 1 >= majority {
                state.fetched_voters.clear();
                out.set(RaftTimer::CheckQuorum, now.plus_ms(check_quorum_ms));
            }
        }
        if let Some(diverging) = self.log.diverging(request.fetch_offset, request.last_fetched_epoch) {
            let mut response = self.fetch_response(ErrorCode::None, request.fetch_offset);
            response.records.clear();
            response.diverging_epoch = Some(diverging);
            out.send(from, RaftMessage::FetchResponse(response));
            return;
        }
        let Role::Leader(state) = &mut self.role else { unreachable!("checked above") };
        if is_voter {
            state.voter_end.insert(from, Some(request.fetch_offset));
        } else {
            state.observer_end.insert(from, request.fetch_offset);
        }
        let advanced = self.maybe_advance_high_watermark(out);
        if request.fetch_offset < self.log.end_offset() {
            out.send(from, RaftMessage::FetchResponse(self.fetch_response(ErrorCode::None, request.fetch_offset)));
        } else {
            // Nothing new: hold it until the log grows, the high watermark moves, or
            // `fetchMaxWaitMs` passes (Kafka's fetch purgatory).
            let Role::Leader(state) = &mut self.role else { unreachable!("checked above") };
            state.held_fetches.insert(from, HeldFetch { fetch_offset: request.fetch_offset });
            out.set(RaftTimer::FetchWait(from), now.plus_ms(self.config.fetch_max_wait_ms));
        }
        if advanced {
            self.answer_held_fetches(now, out);
        }
    }

    fn on_fetch_response(
        &mut self,
        now: SimTime,
        from: i32,
        response: RaftFetchResponse<T>,
        rng: &mut dyn rand_core::RngCore,
        out: &mut RaftOut<T>,
    ) {
        if self.on_common_response(now, response.leader_epoch, response.leader_id, rng, out) {
            return;
        }
        let fetch_timeout_ms = self.config.fetch_timeout_ms;
        let is_voter = self.is_voter();
        match &mut self.role {
            Role::Follower { leader, has_fetched, fetching }
                if *leader == from && response.leader_epoch == self.election.epoch =>
            {
                if response.error != ErrorCode::None {
                    *fetching = false;
                    out.set(RaftTimer::FetchRetry, now.plus_ms(self.config.retry_backoff_ms));
                    return;
                }
                if let Some(diverging) = response.diverging_epoch {
                    *has_fetched = true;
                    *fetching = false;
                    out.set(RaftTimer::FetchTimeout, now.plus_ms(fetch_timeout_ms));
                    let from_offset = self.log.end_offset();
                    let to = self.log.truncation_offset(diverging);
                    assert!(
                        to >= self.high_watermark,
                        "member {} truncating to {to} below its high watermark {}: a committed entry would be lost",
                        self.id,
                        self.high_watermark
                    );
                    self.log.truncate_to(to);
                    out.events.push(RaftEvent::Truncated { from: from_offset, to });
                    self.send_fetch(now, from, out);
                    return;
                }
                if response.base_offset != self.log.end_offset() {
                    return; // the answer to an earlier fetch, sent again since
                }
                *has_fetched = true;
                *fetching = false;
                out.set(RaftTimer::FetchTimeout, now.plus_ms(fetch_timeout_ms));
                for entry in response.records {
                    self.log.append(entry);
                }
                // `KafkaRaftClient.updateFollowerHighWatermark`: the leader's, up to our log end.
                let high_watermark = response.high_watermark.min(self.log.end_offset());
                if high_watermark > self.high_watermark {
                    self.set_high_watermark(high_watermark, out);
                }
                self.send_fetch(now, from, out);
            }
            Role::Unattached { .. } if !is_voter && response.error != ErrorCode::None => {
                // Asked a voter that knows no leader either: ask again shortly.
                out.set(RaftTimer::FetchRetry, now.plus_ms(self.config.retry_backoff_ms));
            }
            _ => {}
        }
    }

    /// What must hold after every input.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.log.check_invariants()?;
        let end = self.log.end_offset();
        ensure(self.high_watermark <= end, || format!("high watermark {} above log end {end}", self.high_watermark))?;
        ensure(self.epoch() >= self.log.last_epoch(), || {
            format!("epoch {} below the log's last epoch {}", self.epoch(), self.log.last_epoch())
        })?;
        match &self.role {
            Role::Leader(state) => {
                ensure(self.election.leader == Some(self.id), || "a leader whose quorum-state names another".into())?;
                ensure(state.voter_end.get(&self.id) == Some(&Some(end)), || {
                    format!("leader's own end {:?} is not its log end {end}", state.voter_end.get(&self.id))
                })?;
                ensure(self.log.get(state.epoch_start_offset).map(|e| e.epoch) == Some(self.epoch()), || {
                    format!("no entry of epoch {} at the epoch start {}", self.epoch(), state.epoch_start_offset)
                })
            }
            Role::Follower { leader, .. } => {
                ensure(self.election.leader == Some(*leader) && *leader != self.id, || {
                    format!("follower of {leader} with quorum-state {:?}", self.election)
                })
            }
            Role::Candidate { .. } => ensure(self.election.voted_for == Some(self.id), || {
                format!("candidate that voted for {:?}", self.election.voted_for)
            }),
            _ => Ok(()),
        }
    }
}
