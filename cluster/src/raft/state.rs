//! The states a quorum member can be in (Kafka's `EpochState` implementations, switched by
//! `QuorumState`), what of them is durable, and the settings that time them.
//!
//! A voter moves between:
//! - **Unattached**: it knows an epoch but no leader; it may have voted in it.
//! - **Prospective** (KIP-996, Kafka 4.0): its timer ran out; it asks for *pre-votes* without
//!   bumping the epoch, so a replica that cannot win disturbs nobody.
//! - **Candidate**: it bumped the epoch, voted for itself and asks for votes.
//! - **Leader**: a majority voted for it; it appends, replicates, and advances the high watermark.
//! - **Follower**: it knows the epoch's leader and fetches from it.
//! - **Resigned**: it was leader and stepped down (shutdown, check-quorum); it votes for nobody in
//!   that epoch and waits for a successor.
//!
//! An observer (a broker, or a controller not among the voters) is only ever Unattached or
//! Follower.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `controller.quorum.*` settings, with Kafka's defaults (`QuorumConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumConfig {
    /// `controller.quorum.election.timeout.ms`: each wait is drawn from [T, 2T)
    /// (`QuorumState.randomElectionTimeoutMs`).
    pub election_timeout_ms: u64,
    /// `controller.quorum.fetch.timeout.ms`: a voter that has not fetched successfully from its
    /// leader for this long starts an election; a leader without fetches from a majority for 1.5 ×
    /// this resigns (check-quorum, `LeaderState.CHECK_QUORUM_TIMEOUT_FACTOR`).
    pub fetch_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms`: the cap on the random backoff after a lost
    /// election (`KafkaRaftClient.binaryExponentialElectionBackoffMs`).
    pub election_backoff_max_ms: u64,
    /// `controller.quorum.request.timeout.ms`: an unanswered request is sent again after this.
    pub request_timeout_ms: u64,
    /// `controller.quorum.retry.backoff.ms`: the wait before fetching again after an error.
    pub retry_backoff_ms: u64,
    /// How long the leader holds a fetch that finds nothing new (`KafkaRaftClient`'s
    /// `fetchMaxWaitMs`, 500 ms).
    pub fetch_max_wait_ms: u64,
    /// KIP-996 pre-vote. Kafka has no setting for it: 4.0 and later run it, earlier releases do
    /// not (see [`crate::version::KafkaVersion::kraft_pre_vote`]).
    pub pre_vote: bool,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig {
            election_timeout_ms: 1_000,
            fetch_timeout_ms: 2_000,
            election_backoff_max_ms: 1_000,
            request_timeout_ms: 2_000,
            retry_backoff_ms: 20,
            fetch_max_wait_ms: 500,
            pre_vote: true,
        }
    }
}

impl QuorumConfig {
    /// `LeaderState.checkQuorumTimeoutMs`: `fetch timeout × 1.5`.
    pub fn check_quorum_timeout_ms(&self) -> u64 {
        self.fetch_timeout_ms * 3 / 2
    }
}

/// What Kafka keeps in the `quorum-state` file (`ElectionState`, written by
/// `FileQuorumStateStore` before any transition that must survive a restart).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionRecord {
    pub epoch: i32,
    pub voted_for: Option<i32>,
    pub leader: Option<i32>,
}

/// The role's name, for notes and the TUI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RoleName {
    Unattached,
    Prospective,
    Candidate,
    Leader,
    Follower,
    Resigned,
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Votes collected in one election (Kafka's `EpochElection`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub granted: BTreeSet<i32>,
    pub rejected: BTreeSet<i32>,
}

impl Tally {
    pub fn of_self(id: i32) -> Tally {
        Tally { granted: BTreeSet::from([id]), rejected: BTreeSet::new() }
    }

    pub fn won(&self, voters: usize) -> bool {
        self.granted.len() > voters / 2
    }

    /// `EpochElection.isVoteRejected`: too many refused for a majority to remain possible.
    pub fn lost(&self, voters: usize) -> bool {
        self.rejected.len() >= voters.div_ceil(2) && voters > 1
    }
}

/// A held fetch: the leader answers it when the log grows, the high watermark moves, or its wait
/// ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldFetch {
    pub fetch_offset: i64,
}

/// What a leader tracks (Kafka's `LeaderState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    /// Where this epoch's first entry (the LeaderChange record) sits. The high watermark moves
    /// only past it: a leader exposes nothing until an entry of its own epoch is committed.
    pub epoch_start_offset: i64,
    /// Each voter's log end as its last fetch reported (the leader's own kept current).
    pub voter_end: BTreeMap<i32, Option<i64>>,
    /// Observers' log ends, for the TUI; they never count towards the high watermark.
    pub observer_end: BTreeMap<i32, i64>,
    /// Voters that fetched since the check-quorum timer was last reset.
    pub fetched_voters: BTreeSet<i32>,
    /// Voters that answered BeginQuorumEpoch or fetched in this epoch.
    pub acknowledged: BTreeSet<i32>,
    pub held_fetches: BTreeMap<i32, HeldFetch>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Unattached {
        /// A leader of this epoch heard of but not followed (a prospective that lost keeps it).
        leader_hint: Option<i32>,
    },
    Prospective {
        tally: Tally,
        leader_hint: Option<i32>,
    },
    Candidate {
        tally: Tally,
        /// Elections in a row (`CandidateState.retries`), for the binary backoff.
        retries: u32,
        backing_off: bool,
    },
    Leader(LeaderState),
    Follower {
        leader: i32,
        /// `FollowerState.hasFetchedFromLeader`: a fetch was answered in this epoch. Until then
        /// the leader may be unreachable from here, so a pre-vote may be granted.
        has_fetched: bool,
        /// A fetch is out and unanswered.
        fetching: bool,
    },
    Resigned {
        preferred_successors: Vec<i32>,
    },
}

impl Role {
    pub fn name(&self) -> RoleName {
        match self {
            Role::Unattached { .. } => RoleName::Unattached,
            Role::Prospective { .. } => RoleName::Prospective,
            Role::Candidate { .. } => RoleName::Candidate,
            Role::Leader(_) => RoleName::Leader,
            Role::Follower { .. } => RoleName::Follower,
            Role::Resigned { .. } => RoleName::Resigned,
        }
    }
}
