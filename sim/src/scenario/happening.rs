//! Does an event show that something happened? One matcher, shared by narration triggers and
//! scenario expectations, so "the first election of payments-0" means the same to both.

use crate::scenario::{parse_partition, Happening};
use crate::trace::{Event, EventKind, Rule};
use ksim_cluster::connect::event::ConnectEvent;
use ksim_cluster::error::ErrorCode;
use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::note::{IsrChangeReason, Note};
use ksim_cluster::raft::state::RoleName;
use ksim_cluster::raft::RaftEvent;

pub fn matches(happening: &Happening, event: &Event, _clients: &[String]) -> bool {
    let EventKind::Note(note) = &event.kind else {
        let EventKind::Finding(finding) = &event.kind else { return false };
        // Every rule is listed: a new one must say whether a scenario can expect it.
        return match finding.rule {
            Rule::DuplicateRecord => matches!(happening, Happening::Duplicate),
            Rule::Reordered => matches!(happening, Happening::Reordered),
            Rule::AckedWriteLost => matches!(happening, Happening::AckedWriteLost),
            Rule::ProcessedTwice => matches!(happening, Happening::ProcessedTwice),
            Rule::CommittedUnprocessed => matches!(happening, Happening::CommittedUnprocessed),
            Rule::ReadAborted => matches!(happening, Happening::ReadAborted),
            Rule::CountedTwice => matches!(happening, Happening::CountedTwice),
            Rule::SinkRewrote => matches!(happening, Happening::SinkRewrote),
            Rule::SourceRecordDuplicated => matches!(happening, Happening::SourceRecordDuplicated),
            Rule::EffectNotExactlyOnce => matches!(happening, Happening::EffectNotExactlyOnce),
            Rule::TwoLeadersInEpoch
            | Rule::TwoOwnersInGeneration
            | Rule::TwoOwners
            | Rule::CommitWentBack
            | Rule::CommitPastLogEnd
            | Rule::CommittedUndelivered
            | Rule::AckedUncommitted
            | Rule::ReadUncommitted
            | Rule::SkippedOffsets
            | Rule::ConsumedAgain
            | Rule::ReplicasDiverge
            | Rule::NoConvergence
            | Rule::CommitBeforeOutputAcked
            | Rule::TwoQuorumLeadersInEpoch
            | Rule::CommittedMetadataLost
            | Rule::BrokerActedOnUncommitted
            | Rule::TwoProducersInEpoch
            | Rule::CommittedTransactionLost
            | Rule::CompactedLatestLost
            | Rule::UpsertSinkStale => false,
        };
    };
    let on = |name: &str| parse_partition(name).is_some_and(|tp| note.partition() == Some(&tp));
    match (happening, note) {
        (Happening::Election(p), Note::PartitionChanged { election: Some(_), leader: Some(_), .. }) => on(p),
        (Happening::UncleanElection(p), Note::PartitionChanged { election: Some(ElectionKind::Unclean), .. }) => on(p),
        (Happening::PreferredElection(p), Note::PartitionChanged { election: Some(ElectionKind::Preferred), .. }) => {
            on(p)
        }
        (Happening::ElrElection(p), Note::PartitionChanged { election: Some(ElectionKind::Elr), .. }) => on(p),
        (Happening::Offline(p), Note::PartitionChanged { leader: None, .. }) => on(p),
        (Happening::IsrShrink(p), Note::IsrChangeRequested { reason: IsrChangeReason::FollowerLagged { .. }, .. }) => {
            on(p)
        }
        (
            Happening::IsrExpand(p),
            Note::IsrChangeRequested { reason: IsrChangeReason::FollowerCaughtUp { .. }, .. },
        ) => on(p),
        (Happening::Truncation(p), Note::Truncated { .. }) => on(p),
        (Happening::LogStartMoved(p), Note::LogStartMoved { .. }) => on(p),
        (Happening::LogCleaned(p), Note::LogCleaned { .. }) => on(p),
        (Happening::OffsetReset(p), Note::PositionReset { .. }) => on(p),
        (Happening::OffsetOutOfRange(p), Note::OffsetOutOfRange { .. }) => on(p),
        (Happening::TruncationDetected(p), Note::TruncationDetected { .. }) => on(p),
        (Happening::Fenced(id), Note::BrokerFenced { broker, .. }) => broker == id,
        (Happening::ControllerActivated, Note::ControllerActivated { .. }) => true,
        (Happening::FetchSessionEvicted, Note::FetchSessionEvicted { .. }) => true,
        (Happening::FetchSessionRefused, Note::FetchSessionRefused { .. }) => true,
        (Happening::CheckQuorumResigned, Note::Quorum(RaftEvent::Resigned { check_quorum: true, .. })) => true,
        (Happening::QuorumElection, Note::Quorum(RaftEvent::Transition { role: RoleName::Candidate, .. })) => true,
        (Happening::ProduceError(name), Note::ProduceRetry { error, .. } | Note::ProduceFailed { error, .. }) => {
            error.name() == name
        }
        (Happening::ProduceFailed, Note::ProduceFailed { .. }) => true,
        (Happening::Rebalance(g), Note::GroupStateChanged { group, state, .. }) => {
            group == g && state == "PreparingRebalance"
        }
        (Happening::RevokedAll(g), Note::PartitionsRevoked { group, partitions, lost: false, kept: 0, .. }) => {
            group == g && !partitions.is_empty()
        }
        (Happening::Revoked(g), Note::PartitionsRevoked { group, partitions, lost: false, .. }) => {
            group == g && !partitions.is_empty()
        }
        (Happening::MemberRemoved(g), Note::MemberRemoved { group, .. }) => group == g,
        (Happening::StaticMemberReturned(g), Note::StaticMemberReturned { group, .. }) => group == g,
        (Happening::GroupLoaded(g), Note::GroupLoaded { group, .. }) => group == g,
        (Happening::CommitFailed(g), Note::CommitFailed { group, .. }) => group == g,
        (Happening::Committed(g), Note::OffsetCommitted { group, .. }) => group == g,
        (Happening::PollIntervalExceeded(g), Note::PollIntervalExceeded { group, .. }) => group == g,
        (Happening::MemberFenced(g), Note::MemberFailed { group, error: ErrorCode::FencedInstanceId, .. }) => {
            group == g
        }
        (
            Happening::InconsistentGroupProtocol(g),
            Note::MemberFailed { group, error: ErrorCode::InconsistentGroupProtocol, .. },
        ) => group == g,
        (Happening::TransactionCommitted(id), Note::TxnEnded { transactional_id, committed: true, .. })
        | (Happening::TransactionAborted(id), Note::TxnEnded { transactional_id, committed: false, .. })
        | (Happening::TransactionLoaded(id), Note::TxnStateChanged { transactional_id, loaded: true, .. }) => {
            transactional_id == id
        }
        (Happening::TransactionState(id, s), Note::TxnStateChanged { transactional_id, state, .. }) => {
            transactional_id == id && state == s
        }
        (
            Happening::ProducerFenced(id),
            Note::TxnFailed { transactional_id, error: ErrorCode::ProducerFenced, fatal: true },
        ) => transactional_id == id,
        (Happening::Marker(p), Note::MarkerWritten { .. })
        | (Happening::TxnVerificationFailed(p), Note::TxnVerificationFailed { .. }) => on(p),
        (Happening::TransactionAbortedByAdmin(p), Note::AdminAbortAnswered { partition, error: ErrorCode::None }) => {
            partition.to_string() == *p
        }
        (Happening::ConnectTaskStarted(t), Note::Connect(e)) => {
            matches!(&**e, ConnectEvent::TaskStarted { task, .. } if task == t)
        }
        (Happening::ConnectTaskFailed(t), Note::Connect(e)) => {
            matches!(&**e, ConnectEvent::TaskFailed { task, .. } if task == t)
        }
        (Happening::DeadLettered(t), Note::Connect(e)) => {
            matches!(&**e, ConnectEvent::DeadLettered { topic, .. } if topic == t)
        }
        (Happening::WorkerSessionExpired(w), Note::Connect(e)) => {
            matches!(&**e, ConnectEvent::WorkerSessionExpired { worker, .. } if worker == w)
        }
        (Happening::WorkerLostCoordinator(w), Note::Connect(e)) => {
            matches!(&**e, ConnectEvent::WorkerLostCoordinator { worker, .. } if worker == w)
        }
        (Happening::ConnectRebalanceDelayed, Note::Connect(e)) => matches!(**e, ConnectEvent::RebalanceDelayed { .. }),
        (Happening::SourceTransactionCommitted, Note::Connect(e)) => {
            matches!(**e, ConnectEvent::TransactionCommitted { .. })
        }
        (Happening::TxnOffsetsSent(id), Note::TxnOffsetsSent { transactional_id, .. }) => transactional_id == id,
        (Happening::TxnOffsetCommitRefused(g), Note::TxnOffsetCommitRefused { group, .. })
        | (Happening::UnstableOffsetFetch(g), Note::OffsetFetchUnstable { group, .. }) => group == g,
        _ => false,
    }
}
