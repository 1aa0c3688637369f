//! Kafka's error codes, as values. A failed request is a response carrying one of these, visible
//! in the trace, exactly as a Kafka client would see it. The numbers are Kafka's wire codes.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    #[default]
    None,
    OffsetOutOfRange,
    CorruptMessage,
    UnknownTopicOrPartition,
    LeaderNotAvailable,
    NotLeaderOrFollower,
    RequestTimedOut,
    NotCoordinator,
    CoordinatorNotAvailable,
    CoordinatorLoadInProgress,
    IllegalGeneration,
    InconsistentGroupProtocol,
    UnknownMemberId,
    /// The JoinGroup's `session.timeout.ms` is outside the broker's `group.min.session.timeout.ms`
    /// and `group.max.session.timeout.ms`.
    InvalidSessionTimeout,
    RebalanceInProgress,
    NotEnoughReplicas,
    NotEnoughReplicasAfterAppend,
    NotController,
    OutOfOrderSequenceNumber,
    DuplicateSequenceNumber,
    StaleBrokerEpoch,
    UnknownLeaderEpoch,
    FencedLeaderEpoch,
    MemberIdRequired,
    FencedInstanceId,
    InvalidUpdateVersion,
    IneligibleReplica,
    /// Another incarnation of this broker id is registered and its session is still valid.
    DuplicateBrokerRegistration,
    NetworkException,
    BrokerNotAvailable,
    /// The request is malformed (an empty `transactional.id` on EndTxn, for one).
    InvalidRequest,
    /// A transactional producer used an epoch older than the coordinator's: another incarnation
    /// with the same `transactional.id` has initialised since (KIP-588 split it from
    /// INVALID_PRODUCER_EPOCH for the coordinator's answers).
    ProducerFenced,
    /// A partition leader saw a batch or marker with an epoch older than the producer's latest.
    InvalidProducerEpoch,
    /// The request is not allowed in the transaction's current state (a commit after an abort).
    InvalidTxnState,
    /// The producer id does not match the one the coordinator holds for this `transactional.id`.
    InvalidProducerIdMapping,
    /// `transaction.timeout.ms` is above the broker's `transaction.max.timeout.ms`.
    InvalidTransactionTimeout,
    /// The coordinator is completing the transaction's previous state change; retry.
    ConcurrentTransactions,
    /// A marker came from a coordinator older than one the partition has already heard from.
    TransactionCoordinatorFenced,
    /// The broker refused a record in the batch (`InvalidRecordException`; KIP-467): a record
    /// without a key on a compacted topic. Not retriable: the Java producer fails the batch.
    InvalidRecord,
    /// OffsetFetch with `require_stable` (KIP-447) for a partition whose group has transactional
    /// offsets not yet committed or aborted: the consumer retries until the transaction ends.
    UnstableOffsetCommit,
    /// A transactional produce to a partition the coordinator does not have in the producer's
    /// ongoing transaction (KIP-890 part 1's verification, `TransactionCoordinator.
    /// handleVerifyPartitionsInTransaction`). The transaction can still be aborted: the Java
    /// client (4.x) makes it an abortable `TransactionAbortableException`.
    TransactionAbortable,
    /// An incremental fetch named a session the leader does not hold (never opened, evicted, or
    /// lost with a restart): the fetcher opens a new one with a full fetch (KIP-227).
    FetchSessionIdNotFound,
    /// An incremental fetch named its session with an epoch the leader does not expect: the
    /// fetcher closes the session and opens a new one with a full fetch (KIP-227).
    InvalidFetchSessionEpoch,
}

impl ErrorCode {
    /// Kafka's numeric code (`org.apache.kafka.common.protocol.Errors`).
    pub fn code(self) -> i16 {
        use ErrorCode::*;
        match self {
            None => 0,
            OffsetOutOfRange => 1,
            CorruptMessage => 2,
            UnknownTopicOrPartition => 3,
            LeaderNotAvailable => 5,
            NotLeaderOrFollower => 6,
            RequestTimedOut => 7,
            BrokerNotAvailable => 8,
            NetworkException => 13,
            CoordinatorLoadInProgress => 14,
            CoordinatorNotAvailable => 15,
            NotCoordinator => 16,
            NotEnoughReplicas => 19,
            NotEnoughReplicasAfterAppend => 20,
            IllegalGeneration => 22,
            InconsistentGroupProtocol => 23,
            UnknownMemberId => 25,
            InvalidSessionTimeout => 26,
            RebalanceInProgress => 27,
            NotController => 41,
            OutOfOrderSequenceNumber => 45,
            DuplicateSequenceNumber => 46,
            StaleBrokerEpoch => 77,
            FencedLeaderEpoch => 74,
            UnknownLeaderEpoch => 75,
            MemberIdRequired => 79,
            FencedInstanceId => 82,
            InvalidUpdateVersion => 95,
            DuplicateBrokerRegistration => 101,
            IneligibleReplica => 107,
            InvalidRequest => 42,
            InvalidProducerEpoch => 47,
            InvalidTxnState => 48,
            InvalidProducerIdMapping => 49,
            InvalidTransactionTimeout => 50,
            ConcurrentTransactions => 51,
            TransactionCoordinatorFenced => 52,
            InvalidRecord => 87,
            ProducerFenced => 90,
            UnstableOffsetCommit => 88,
            TransactionAbortable => 120,
            FetchSessionIdNotFound => 70,
            InvalidFetchSessionEpoch => 71,
        }
    }

    /// Kafka's name for the error, as its logs and clients print it.
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            None => "NONE",
            OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            CorruptMessage => "CORRUPT_MESSAGE",
            UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            LeaderNotAvailable => "LEADER_NOT_AVAILABLE",
            NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            RequestTimedOut => "REQUEST_TIMED_OUT",
            BrokerNotAvailable => "BROKER_NOT_AVAILABLE",
            NetworkException => "NETWORK_EXCEPTION",
            CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
            CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            NotCoordinator => "NOT_COORDINATOR",
            NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            IllegalGeneration => "ILLEGAL_GENERATION",
            InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            UnknownMemberId => "UNKNOWN_MEMBER_ID",
            InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            NotController => "NOT_CONTROLLER",
            OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            DuplicateSequenceNumber => "DUPLICATE_SEQUENCE_NUMBER",
            StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            MemberIdRequired => "MEMBER_ID_REQUIRED",
            FencedInstanceId => "FENCED_INSTANCE_ID",
            InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            DuplicateBrokerRegistration => "DUPLICATE_BROKER_REGISTRATION",
            IneligibleReplica => "INELIGIBLE_REPLICA",
            InvalidRequest => "INVALID_REQUEST",
            InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            InvalidTxnState => "INVALID_TXN_STATE",
            InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            TransactionCoordinatorFenced => "TRANSACTION_COORDINATOR_FENCED",
            InvalidRecord => "INVALID_RECORD",
            ProducerFenced => "PRODUCER_FENCED",
            UnstableOffsetCommit => "UNSTABLE_OFFSET_COMMIT",
            TransactionAbortable => "TRANSACTION_ABORTABLE",
            FetchSessionIdNotFound => "FETCH_SESSION_ID_NOT_FOUND",
            InvalidFetchSessionEpoch => "INVALID_FETCH_SESSION_EPOCH",
        }
    }

    pub fn is_none(self) -> bool {
        self == ErrorCode::None
    }

    /// [`ErrorCode::is_none`] for serde's `skip_serializing_if`.
    pub fn is_none_ref(&self) -> bool {
        self.is_none()
    }

    /// Whether a Kafka client retries a produce that failed with this error (the Java client's
    /// `RetriableException` subclasses).
    pub fn is_retriable(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            NotLeaderOrFollower
                | LeaderNotAvailable
                | RequestTimedOut
                | NotEnoughReplicas
                | NotEnoughReplicasAfterAppend
                | UnknownTopicOrPartition
                | NetworkException
                | FencedLeaderEpoch
                | UnknownLeaderEpoch
                | CoordinatorLoadInProgress
                | CoordinatorNotAvailable
                | NotCoordinator
                | BrokerNotAvailable
                // A leader verifying a transactional produce while the coordinator completes the
                // previous transaction (KIP-890; `ConcurrentTransactionsException` is a
                // `RetriableException`).
                | ConcurrentTransactions
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
