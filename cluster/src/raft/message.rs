//! The KRaft RPCs (KIP-595; PreVote from KIP-996), trimmed to what the simulated behaviour needs
//! and named after Kafka's JSON schemas (`VoteRequest.json`, `BeginQuorumEpochRequest.json`,
//! `EndQuorumEpochRequest.json`, `FetchRequest.json`). Every response carries the responder's epoch
//! and the leader it knows, so any answer can teach the asker who leads
//! (`KafkaRaftClient.maybeHandleCommonResponse`).

use super::log::{Entry, OffsetAndEpoch};
use crate::error::ErrorCode;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RaftMessage<T> {
    Vote(VoteRequest),
    VoteResponse(VoteResponse),
    BeginQuorumEpoch(BeginQuorumEpochRequest),
    BeginQuorumEpochResponse(EpochResponse),
    EndQuorumEpoch(EndQuorumEpochRequest),
    EndQuorumEpochResponse(EpochResponse),
    Fetch(RaftFetchRequest),
    FetchResponse(RaftFetchResponse<T>),
}

impl<T> RaftMessage<T> {
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            RaftMessage::Vote(_)
                | RaftMessage::BeginQuorumEpoch(_)
                | RaftMessage::EndQuorumEpoch(_)
                | RaftMessage::Fetch(_)
        )
    }

    /// Kafka's API name for the trace.
    pub fn api_name(&self) -> &'static str {
        match self {
            RaftMessage::Vote(r) if r.pre_vote => "PreVote",
            RaftMessage::VoteResponse(r) if r.pre_vote => "PreVote",
            RaftMessage::Vote(_) | RaftMessage::VoteResponse(_) => "Vote",
            RaftMessage::BeginQuorumEpoch(_) | RaftMessage::BeginQuorumEpochResponse(_) => "BeginQuorumEpoch",
            RaftMessage::EndQuorumEpoch(_) | RaftMessage::EndQuorumEpochResponse(_) => "EndQuorumEpoch",
            RaftMessage::Fetch(_) | RaftMessage::FetchResponse(_) => "Fetch",
        }
    }
}

/// A candidate (or, with `pre_vote`, a prospective) asks for a vote. A candidate has already
/// bumped its epoch; a prospective sends the epoch it is in (KIP-996: a pre-vote bumps nothing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    pub candidate_id: i32,
    pub candidate_epoch: i32,
    /// The epoch of the candidate's last entry and its end offset (`lastOffsetEpoch`, `lastOffset`).
    pub last_offset_epoch: i32,
    pub last_offset: i64,
    pub pre_vote: bool,
}

impl VoteRequest {
    pub fn last(&self) -> OffsetAndEpoch {
        OffsetAndEpoch { epoch: self.last_offset_epoch, offset: self.last_offset }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    pub error: ErrorCode,
    pub leader_epoch: i32,
    pub leader_id: Option<i32>,
    pub vote_granted: bool,
    pub pre_vote: bool,
}

/// A new leader announces its epoch to the voters until each has answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginQuorumEpochRequest {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

/// A leader that resigns gracefully tells the voters, best successor first, so the first of them
/// starts an election at once instead of waiting out its fetch timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndQuorumEpochRequest {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub preferred_successors: Vec<i32>,
}

/// The answer to BeginQuorumEpoch and EndQuorumEpoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochResponse {
    pub error: ErrorCode,
    pub leader_epoch: i32,
    pub leader_id: Option<i32>,
}

/// A voter or an observer pulls the log from the leader. Its fetch offset is its log end, which is
/// also how the leader learns how far it has replicated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftFetchRequest {
    pub replica_id: i32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaftFetchResponse<T> {
    pub error: ErrorCode,
    pub leader_epoch: i32,
    pub leader_id: Option<i32>,
    pub high_watermark: i64,
    /// The offset of the first of `records`: the fetch offset it answers.
    pub base_offset: i64,
    pub records: Vec<Entry<T>>,
    /// Set when the fetcher's log parts from the leader's (`divergingEpoch`); `records` is empty.
    pub diverging_epoch: Option<OffsetAndEpoch>,
}

impl<T> std::fmt::Display for RaftMessage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let leader = |l: &Option<i32>| l.map_or_else(|| "none".to_string(), |l| l.to_string());
        match self {
            RaftMessage::Vote(r) => write!(
                f,
                "{} epoch={} candidate={} last=(epoch {}, offset {})",
                self.api_name(),
                r.candidate_epoch,
                r.candidate_id,
                r.last_offset_epoch,
                r.last_offset
            ),
            RaftMessage::VoteResponse(r) => write!(
                f,
                "{} {} epoch={} leader={}{} (response)",
                self.api_name(),
                if r.vote_granted { "granted" } else { "refused" },
                r.leader_epoch,
                leader(&r.leader_id),
                if r.error == ErrorCode::None { String::new() } else { format!(" {}", r.error) }
            ),
            RaftMessage::BeginQuorumEpoch(r) => {
                write!(f, "BeginQuorumEpoch epoch={} leader={}", r.leader_epoch, r.leader_id)
            }
            RaftMessage::EndQuorumEpoch(r) => write!(
                f,
                "EndQuorumEpoch epoch={} leader={} successors={:?}",
                r.leader_epoch, r.leader_id, r.preferred_successors
            ),
            RaftMessage::BeginQuorumEpochResponse(r) | RaftMessage::EndQuorumEpochResponse(r) => write!(
                f,
                "{} epoch={} leader={}{} (response)",
                self.api_name(),
                r.leader_epoch,
                leader(&r.leader_id),
                if r.error == ErrorCode::None { String::new() } else { format!(" {}", r.error) }
            ),
            RaftMessage::Fetch(r) => write!(
                f,
                "MetadataFetch offset={} last_epoch={} epoch={}",
                r.fetch_offset, r.last_fetched_epoch, r.current_leader_epoch
            ),
            RaftMessage::FetchResponse(r) => {
                write!(
                    f,
                    "MetadataFetch {} record(s) from {} hw={} epoch={} leader={}",
                    r.records.len(),
                    r.base_offset,
                    r.high_watermark,
                    r.leader_epoch,
                    leader(&r.leader_id)
                )?;
                if let Some(d) = r.diverging_epoch {
                    write!(f, " diverging=(epoch {}, offset {})", d.epoch, d.offset)?;
                }
                if r.error != ErrorCode::None {
                    write!(f, " {}", r.error)?;
                }
                f.write_str(" (response)")
            }
        }
    }
}
