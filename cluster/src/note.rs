//! Notes: what a state machine tells the trace about its own state changes.
//!
//! Messages show what nodes *say*; notes show what they *decide*: a broker became leader, a high
//! watermark moved, a log was truncated, the controller fenced a broker. The TUI, the narration
//! and the book fold these (with the messages) into the picture of the cluster at any step.

use crate::error::ErrorCode;
use crate::log::TruncateReason;
use crate::metadata::ElectionKind;
use crate::raft::RaftEvent;
use crate::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceReason {
    /// No heartbeat for `broker.session.timeout.ms`.
    SessionTimeout,
    /// The broker registered again (it restarted), so its old incarnation is gone.
    Reregistered,
    /// The broker's controlled shutdown is complete: it holds no leadership any more and every
    /// active broker has seen that, so the controller lets it go.
    ControlledShutdown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsrChangeReason {
    /// The follower has not caught up for longer than `replica.lag.time.max.ms`.
    FollowerLagged { follower: BrokerId, caught_up_ms_ago: u64 },
    /// The follower reached the high watermark: it may rejoin.
    FollowerCaughtUp { follower: BrokerId },
}

/// One transactional batch in an append: its first offset, its producer, and, for a control
/// batch, the marker it carries (Kafka's batch attributes `isTransactional` and `isControlBatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnBatch {
    pub offset: i64,
    pub producer_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<crate::record::ControlType>,
}

impl TxnBatch {
    /// The batch as the trace records it, if it is transactional.
    pub fn of(batch: &crate::record::RecordBatch) -> Option<TxnBatch> {
        batch.is_transactional.then(|| TxnBatch {
            offset: batch.base_offset,
            producer_id: batch.producer_id,
            marker: batch.control.map(|c| c.control_type),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Note {
    /// Kafka Connect: a worker's, a task's or an external system's event. Boxed, as the next
    /// one: they are the largest notes, and every event of a trace is as large as its largest
    /// note (a `Box` serializes as what it holds).
    Connect(Box<crate::connect::event::ConnectEvent>),
    /// Kafka Streams: an instance's tasks, stores, commits and failures.
    Streams(Box<crate::streams::event::StreamsEvent>),
    // ---- the controller quorum (KRaft) ----
    /// What the quorum member (a controller) or observer (a broker) did: a role change, a vote,
    /// its high watermark moving, a truncation, a resignation.
    Quorum(RaftEvent),
    /// This controller's leadership is committed (its LeaderChange record is below the high
    /// watermark) and it has replayed the whole log: it is the active controller from now on
    /// (`QuorumController.claim`, fired by `KafkaRaftClient`'s `handleLeaderChange`).
    ControllerActivated {
        epoch: i32,
    },
    /// The active controller lost its leadership (`QuorumController.renounce`): it drops broker
    /// sessions and pending answers and rolls its state back to the committed records.
    ControllerRenounced {
        epoch: i32,
    },
    // ---- controller ----
    BrokerRegistered {
        broker: BrokerId,
        broker_epoch: i64,
    },
    BrokerFenced {
        broker: BrokerId,
        reason: FenceReason,
    },
    BrokerUnfenced {
        broker: BrokerId,
    },
    /// A new incarnation of the broker asked to register while the old one's session was still
    /// valid: DUPLICATE_BROKER_REGISTRATION, and the broker retries.
    RegistrationRejected {
        broker: BrokerId,
    },
    /// The broker asked to shut down: the controller moves its leaderships away and removes it
    /// from every ISR it can.
    ControlledShutdownStarted {
        broker: BrokerId,
    },
    TopicCreated {
        topic: String,
        assignment: Vec<Vec<BrokerId>>,
    },
    /// The controller committed a new state for a partition.
    PartitionChanged {
        partition: TopicPartition,
        leader: Option<BrokerId>,
        leader_epoch: i32,
        isr: Vec<BrokerId>,
        /// Eligible Leader Replicas (KIP-966); empty without ELR.
        #[serde(default)]
        elr: Vec<BrokerId>,
        partition_epoch: i32,
        election: Option<ElectionKind>,
    },
    // ---- broker ----
    /// The broker was asked to stop and begins its controlled shutdown (`BrokerServer.shutdown`
    /// with `controlled.shutdown.enable=true`).
    ShutdownRequested,
    /// A broker rebuilt a partition from its disk after starting.
    Recovered {
        partition: TopicPartition,
        log_end_offset: i64,
        high_watermark: i64,
    },
    BecameLeader {
        partition: TopicPartition,
        leader_epoch: i32,
        log_end_offset: i64,
        high_watermark: i64,
    },
    BecameFollower {
        partition: TopicPartition,
        leader: Option<BrokerId>,
        leader_epoch: i32,
    },
    Appended {
        partition: TopicPartition,
        base_offset: i64,
        count: i64,
        leader_epoch: i32,
        as_leader: bool,
        /// The transactional batches among those appended (none for plain writes, so traces
        /// without transactions are unchanged): what a reader of the trace needs to rebuild the
        /// partition's transaction index, and so its last stable offset, as the log does.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        transactional: Vec<TxnBatch>,
    },
    /// `on_leader`: the leader moved it (a follower only learns it from fetch responses).
    HighWatermark {
        partition: TopicPartition,
        high_watermark: i64,
        on_leader: bool,
    },
    Truncated {
        partition: TopicPartition,
        to_offset: i64,
        removed: i64,
        reason: TruncateReason,
    },
    LogStartMoved {
        partition: TopicPartition,
        log_start_offset: i64,
    },
    /// This broker's log cleaner compacted its copy of the partition (`Cleaner.doClean`).
    LogCleaned {
        partition: TopicPartition,
        cleaning: crate::log::Cleaning,
    },
    Flushed {
        partition: TopicPartition,
        offset: i64,
    },
    /// The fetch session cache (`max.incremental.fetch.session.cache.slots`) had no free slot:
    /// session `session_id` of another fetcher was evicted to make room for `fetcher`'s
    /// (`FetchSessionCacheShard.tryEvict`). Its owner's next incremental fetch gets
    /// FETCH_SESSION_ID_NOT_FOUND.
    FetchSessionEvicted {
        session_id: u32,
        /// The fetcher whose session it was.
        owner: crate::node::NodeId,
        fetcher: crate::node::NodeId,
    },
    /// The fetch session cache had no free slot and nothing it could evict: `fetcher` keeps
    /// fetching without a session, every partition every time.
    FetchSessionRefused {
        fetcher: crate::node::NodeId,
    },
    IsrChangeRequested {
        partition: TopicPartition,
        isr: Vec<BrokerId>,
        reason: IsrChangeReason,
    },
    IsrChangeFailed {
        partition: TopicPartition,
        error: ErrorCode,
    },
    // ---- group coordinator ----
    /// A coordinator loaded a group from `__consumer_offsets` (it became leader of the partition).
    GroupLoaded {
        group: String,
        generation: i32,
        members: usize,
        offsets: usize,
    },
    GroupStateChanged {
        group: String,
        state: String,
        generation: i32,
        members: Vec<String>,
    },
    MemberRemoved {
        group: String,
        member: String,
        reason: String,
    },
    StaticMemberReturned {
        group: String,
        instance: String,
        member: String,
    },
    /// The leader's assignment for one member, stored for a generation.
    AssignmentStored {
        group: String,
        generation: i32,
        member: String,
        partitions: Vec<TopicPartition>,
    },
    OffsetCommitted {
        group: String,
        partition: TopicPartition,
        offset: i64,
    },
    /// A member's OffsetFetch was answered UNSTABLE_OFFSET_COMMIT: a transaction holds offsets of
    /// these partitions; the member asks again after `retry.backoff.ms` (KIP-447).
    OffsetFetchUnstable {
        group: String,
        member: String,
        partitions: Vec<TopicPartition>,
    },
    /// A transaction's pending offset for `partition` vanished with its ABORT marker.
    TxnOffsetAborted {
        group: String,
        partition: TopicPartition,
        offset: i64,
    },
    /// The group coordinator refused a TxnOffsetCommit: the member it names is not the group's
    /// (KIP-447 fencing of a zombie by its group metadata).
    TxnOffsetCommitRefused {
        group: String,
        transactional_id: String,
        member: String,
        generation: i32,
        error: ErrorCode,
    },
    // ---- transaction coordinator (on a broker) ----
    /// A `transactional.id`'s state change is written to `__transaction_state` and replicated
    /// (`completeTransitionTo`), or loaded from it by a new coordinator (`loaded`).
    TxnStateChanged {
        transactional_id: String,
        state: String,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
        loaded: bool,
    },
    // ---- partition leader ----
    /// A transaction marker (a control record) was appended to a partition.
    MarkerWritten {
        partition: TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        control: crate::record::ControlType,
        offset: i64,
    },
    /// A transactional produce was refused after (or instead of) verification with the
    /// producer's coordinator (KIP-890 part 1): the partition is not in its ongoing transaction.
    TxnVerificationFailed {
        partition: TopicPartition,
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        error: ErrorCode,
    },
    // ---- an operator's admin client ----
    /// `kafka-transactions.sh abort`: the transaction open at `start_offset` (the LSO) is to be
    /// aborted with an ABORT marker sent straight to the partition's leader (Admin
    /// `abortTransaction`); `producer_id` is -1 when the leader has no open transaction there.
    AdminAbortRequested {
        partition: TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        start_offset: i64,
    },
    /// The leader's answer to the admin's WriteTxnMarkers.
    AdminAbortAnswered {
        partition: TopicPartition,
        error: ErrorCode,
    },
    // ---- transactional producer ----
    /// initTransactions() completed: this incarnation writes with this producer id and epoch.
    TxnInitialized {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// commitTransaction() or abortTransaction() completed: the coordinator has written the
    /// decision. `records`: where the transaction's records went.
    TxnEnded {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        committed: bool,
        records: Vec<(TopicPartition, i64)>,
        /// Records failed in the transaction: the producer now bumps its epoch (KIP-360) before
        /// the next one can begin.
        epoch_bump: bool,
    },
    /// sendOffsetsToTransaction() completed: the group coordinator holds these offsets pending
    /// until the transaction's marker.
    TxnOffsetsSent {
        transactional_id: String,
        group: String,
        offsets: Vec<(TopicPartition, i64)>,
    },
    /// The transactional producer hit an error. `fatal`: ProducerFencedException and the like:
    /// the producer is unusable and must be closed; otherwise the transaction must be aborted.
    TxnFailed {
        transactional_id: String,
        error: ErrorCode,
        fatal: bool,
    },
    // ---- group member (consumer) ----
    /// This member now owns these partitions (added to what it had).
    PartitionsAssigned {
        group: String,
        member: String,
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    /// This member gave these partitions up (eager: all of them at every rebalance; cooperative:
    /// only those that move). `lost`: taken away without a chance to commit (kicked out).
    PartitionsRevoked {
        group: String,
        member: String,
        generation: i32,
        partitions: Vec<TopicPartition>,
        lost: bool,
        kept: usize,
    },
    /// A commit failed: the member's generation is over (it must rejoin, and others may
    /// reprocess what it read since its last commit).
    CommitFailed {
        group: String,
        member: String,
        error: ErrorCode,
    },
    /// The application did not poll within `max.poll.interval.ms`: the consumer leaves the group
    /// (a static member sends no LeaveGroup: it only forgets its member id, KIP-345).
    PollIntervalExceeded {
        group: String,
        member: String,
        waited_ms: u64,
        #[serde(default)]
        static_member: bool,
    },
    /// No heartbeat answer for `session.timeout.ms`: the member marks its coordinator unknown
    /// and looks for it again (`AbstractCoordinator.HeartbeatThread`:
    /// `heartbeat.sessionTimeoutExpired` then `markCoordinatorUnknown`). It keeps its
    /// membership; whether the group kept it is the coordinator's to say.
    CoordinatorUnreachable {
        group: String,
        member: String,
        session_timeout_ms: u64,
    },
    /// The group answered with an error the Java consumer treats as fatal
    /// (`AbstractCoordinator`'s response handlers raise it and `poll()` throws it):
    /// FENCED_INSTANCE_ID (another process took this member's `group.instance.id`),
    /// INCONSISTENT_GROUP_PROTOCOL (none of its assignors is one every member supports) or
    /// INVALID_SESSION_TIMEOUT (its `session.timeout.ms` is outside the broker's bounds). The
    /// consumer stops taking part.
    MemberFailed {
        group: String,
        member: String,
        error: ErrorCode,
    },
    // ---- client ----
    /// The client changed one of its settings on its own at construction, as Kafka does and logs
    /// (`KafkaProducer.configureDeliveryTimeout` raising `delivery.timeout.ms`, idempotence turned
    /// off by `acks=1`).
    ConfigAdjusted {
        setting: String,
        value: String,
        reason: String,
    },
    // ---- producer ----
    /// A record the application sent was acknowledged.
    ProduceAcked {
        send_id: u64,
        partition: TopicPartition,
        offset: i64,
        key: Option<String>,
        /// `None`: a tombstone.
        value: Option<String>,
    },
    /// A record the application sent failed for good.
    ProduceFailed {
        send_id: u64,
        partition: Option<TopicPartition>,
        error: ErrorCode,
        reason: String,
    },
    /// A batch will be retried. `sequence`: its base sequence number, with idempotence.
    ProduceRetry {
        partition: TopicPartition,
        error: ErrorCode,
        records: usize,
        sequence: Option<i32>,
    },
    // ---- consumer ----
    Consumed {
        partition: TopicPartition,
        offset: i64,
        key: Option<String>,
        /// `None`: a tombstone.
        value: Option<String>,
        /// The record's headers (the story counts them; a pane may show them).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        headers: Vec<crate::record::Header>,
        /// Which consumer engine of its node read it (0 for a node's only consumer; a Connect
        /// worker's sink tasks and a Streams thread's restore consumer are engines 1, 2, ...).
        #[serde(default, skip_serializing_if = "is_first_engine")]
        engine: u8,
    },
    PositionReset {
        partition: TopicPartition,
        offset: i64,
        reason: String,
        /// Which consumer engine of its node, as in `Consumed`.
        #[serde(default, skip_serializing_if = "is_first_engine")]
        engine: u8,
    },
    /// The consumer's position is not in the log any more (or not yet): OFFSET_OUT_OF_RANGE.
    OffsetOutOfRange {
        partition: TopicPartition,
        position: i64,
    },
    /// KIP-320: checking its position with the new leader (OffsetsForLeaderEpoch), the consumer
    /// found that the log it read was truncated: `position`, read in leader epoch `epoch`, is past
    /// where the leader's log of that epoch ends. `divergent` is that end, the first offset known
    /// to diverge, with the epoch the leader answered (None: the leader does not know the epoch).
    /// `raised`: `auto.offset.reset=none`, so `poll` throws LogTruncationException instead of
    /// moving the position (Kafka's `SubscriptionState.maybeCompleteValidation`).
    TruncationDetected {
        partition: TopicPartition,
        position: i64,
        epoch: i32,
        divergent: Option<(i64, i32)>,
        raised: bool,
    },
    // ---- any client ----
    /// A connection to `broker` was not set up within `socket.connection.setup.timeout.ms`
    /// (the host does not answer): the client drops it and asks another broker.
    ConnectionSetupTimedOut {
        broker: BrokerId,
        timeout_ms: u64,
    },
}

impl Note {
    /// The partition a note is about, if any.
    pub fn partition(&self) -> Option<&TopicPartition> {
        use Note::*;
        match self {
            PartitionChanged { partition, .. }
            | Recovered { partition, .. }
            | BecameLeader { partition, .. }
            | BecameFollower { partition, .. }
            | Appended { partition, .. }
            | HighWatermark { partition, .. }
            | Truncated { partition, .. }
            | LogStartMoved { partition, .. }
            | LogCleaned { partition, .. }
            | Flushed { partition, .. }
            | IsrChangeRequested { partition, .. }
            | IsrChangeFailed { partition, .. }
            | ProduceAcked { partition, .. }
            | ProduceRetry { partition, .. }
            | Consumed { partition, .. }
            | PositionReset { partition, .. }
            | OffsetOutOfRange { partition, .. }
            | TruncationDetected { partition, .. } => Some(partition),
            ProduceFailed { partition, .. } => partition.as_ref(),
            MarkerWritten { partition, .. }
            | TxnVerificationFailed { partition, .. }
            | AdminAbortRequested { partition, .. }
            | AdminAbortAnswered { partition, .. } => Some(partition),
            TxnStateChanged { .. }
            | TxnInitialized { .. }
            | TxnEnded { .. }
            | TxnFailed { .. }
            | TxnOffsetsSent { .. }
            | TxnOffsetCommitRefused { .. }
            | OffsetFetchUnstable { .. } => None,
            OffsetCommitted { partition, .. } | TxnOffsetAborted { partition, .. } => Some(partition),
            Quorum(_) | ControllerActivated { .. } | ControllerRenounced { .. } => None,
            BrokerRegistered { .. }
            | BrokerFenced { .. }
            | BrokerUnfenced { .. }
            | RegistrationRejected { .. }
            | ControlledShutdownStarted { .. }
            | ShutdownRequested
            | TopicCreated { .. }
            | GroupLoaded { .. }
            | GroupStateChanged { .. }
            | MemberRemoved { .. }
            | StaticMemberReturned { .. }
            | AssignmentStored { .. }
            | PartitionsAssigned { .. }
            | PartitionsRevoked { .. }
            | CommitFailed { .. }
            | PollIntervalExceeded { .. }
            | CoordinatorUnreachable { .. }
            | ConnectionSetupTimedOut { .. }
            | ConfigAdjusted { .. }
            | FetchSessionEvicted { .. }
            | FetchSessionRefused { .. }
            | Connect(_)
            | Streams(_)
            | MemberFailed { .. } => None,
        }
    }
}

fn is_first_engine(engine: &u8) -> bool {
    *engine == 0
}

fn fmt_leader(leader: &Option<BrokerId>) -> String {
    match leader {
        Some(id) => format!("broker-{id}"),
        None => "none".to_string(),
    }
}

impl fmt::Display for Note {
    /// The plain-language line the narration prints for this note.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Note::*;
        match self {
            Connect(event) => write!(f, "{event}"),
            Streams(event) => write!(f, "{event}"),
            Quorum(RaftEvent::Transition { epoch, role, leader }) => match leader {
                Some(l) => write!(f, "quorum epoch {epoch}: {role} (leader controller-{l})"),
                None => write!(f, "quorum epoch {epoch}: {role}, no leader known"),
            },
            Quorum(RaftEvent::VoteCast { epoch, candidate, pre_vote, granted }) => write!(
                f,
                "{} controller-{candidate} a {} in epoch {epoch}",
                if *granted { "granted" } else { "refused" },
                if *pre_vote { "pre-vote" } else { "vote" }
            ),
            Quorum(RaftEvent::HighWatermark { high_watermark, no_ops, only_no_ops }) => {
                write!(f, "metadata log committed up to offset {high_watermark}")?;
                match (no_ops, only_no_ops) {
                    (0, _) => Ok(()),
                    (_, true) => f.write_str(" (idle no-ops only)"),
                    (n, false) => write!(f, " ({n} of them idle no-ops)"),
                }
            }
            Quorum(RaftEvent::Truncated { from, to }) => {
                write!(f, "metadata log truncated from {from} to {to}: an uncommitted tail the leader never had")
            }
            Quorum(RaftEvent::Resigned { epoch, check_quorum: true }) => write!(
                f,
                "resigned epoch {epoch}: no fetch from a majority for 1.5 x controller.quorum.fetch.timeout.ms (check-quorum)"
            ),
            Quorum(RaftEvent::Resigned { epoch, check_quorum: false }) => write!(f, "resigned epoch {epoch}"),
            ControllerActivated { epoch } => {
                write!(f, "active controller (epoch {epoch}): broker sessions start afresh")
            }
            ControllerRenounced { epoch } => {
                write!(f, "no longer the active controller (epoch {epoch}): uncommitted changes rolled back")
            }
            BrokerRegistered { broker, broker_epoch } => {
                write!(f, "broker-{broker} registered (broker epoch {broker_epoch}); fenced until it catches up on metadata")
            }
            BrokerFenced { broker, reason: FenceReason::SessionTimeout } => {
                write!(f, "broker-{broker} missed broker.session.timeout.ms: fenced, its leaderships move")
            }
            BrokerFenced { broker, reason: FenceReason::Reregistered } => {
                write!(f, "broker-{broker} re-registered after a restart: its old incarnation is fenced")
            }
            BrokerFenced { broker, reason: FenceReason::ControlledShutdown } => write!(
                f,
                "broker-{broker}'s controlled shutdown is done: it leads nothing, so it is fenced and may stop"
            ),
            BrokerUnfenced { broker } => write!(f, "broker-{broker} caught up on metadata: unfenced"),
            RegistrationRejected { broker } => write!(
                f,
                "broker-{broker}'s new incarnation is refused (DUPLICATE_BROKER_REGISTRATION): the old one's session \
                 is still valid, so it retries until broker.session.timeout.ms fences the old one"
            ),
            ControlledShutdownStarted { broker } => write!(
                f,
                "broker-{broker} asked to shut down: the controller moves its leaderships away and takes it out of \
                 the ISRs"
            ),
            ShutdownRequested => write!(
                f,
                "asked to stop: controlled shutdown begins, heartbeats now say want_shut_down (controlled.shutdown.enable)"
            ),
            TopicCreated { topic, assignment } => {
                write!(f, "topic {topic} created with {} partition(s); replicas {:?}", assignment.len(), assignment)
            }
            PartitionChanged { partition, leader, leader_epoch, isr, elr, election, .. } => {
                match election {
                    Some(ElectionKind::Clean) => write!(f, "{partition}: {} elected leader (clean)", fmt_leader(leader))?,
                    Some(ElectionKind::Unclean) => write!(
                        f,
                        "{partition}: UNCLEAN election: {} becomes leader though it was not in sync",
                        fmt_leader(leader)
                    )?,
                    Some(ElectionKind::Preferred) => {
                        write!(f, "{partition}: preferred replica {} takes leadership back", fmt_leader(leader))?
                    }
                    Some(ElectionKind::LastKnownLeader) => write!(
                        f,
                        "{partition}: ISR and ELR empty: the last known leader {} is elected (Kafka counts this unclean)",
                        fmt_leader(leader)
                    )?,
                    Some(ElectionKind::Elr) => write!(
                        f,
                        "{partition}: ISR empty: {} elected from the eligible leader replicas",
                        fmt_leader(leader)
                    )?,
                    None if leader.is_none() => write!(f, "{partition}: no eligible leader; the partition is offline")?,
                    None => write!(f, "{partition}: leader {}", fmt_leader(leader))?,
                }
                write!(f, ", leader epoch {leader_epoch}, ISR {isr:?}")?;
                if !elr.is_empty() {
                    write!(f, ", ELR {elr:?}")?;
                }
                Ok(())
            }
            Recovered { partition, log_end_offset, high_watermark } => {
                write!(f, "{partition}: recovered from disk with log end {log_end_offset}, high watermark {high_watermark}")
            }
            BecameLeader { partition, leader_epoch, log_end_offset, .. } => {
                write!(f, "{partition}: now leader for epoch {leader_epoch}, starting at offset {log_end_offset}")
            }
            BecameFollower { partition, leader: Some(l), leader_epoch } => {
                write!(f, "{partition}: now follower of broker-{l} (epoch {leader_epoch})")
            }
            BecameFollower { partition, leader: None, leader_epoch } => {
                write!(f, "{partition}: no leader in epoch {leader_epoch}; waiting")
            }
            Appended { partition, base_offset, count, leader_epoch, as_leader, .. } => {
                let last = base_offset + count - 1;
                let range = if *count == 1 { format!("offset {base_offset}") } else { format!("offsets {base_offset}..={last}") };
                if *as_leader {
                    write!(f, "{partition}: leader appended {range} (epoch {leader_epoch})")
                } else {
                    write!(f, "{partition}: follower copied {range}")
                }
            }
            HighWatermark { partition, high_watermark, on_leader: true } => {
                write!(f, "{partition}: high watermark -> {high_watermark} (committed: on every in-sync replica)")
            }
            HighWatermark { partition, high_watermark, on_leader: false } => {
                write!(f, "{partition}: follower learns high watermark {high_watermark}")
            }
            Truncated { partition, to_offset, removed, reason } => {
                let why = match reason {
                    TruncateReason::DivergedFromLeader => "diverged from the new leader (truncation by leader epoch)",
                    TruncateReason::ToHighWatermark => "truncated to the high watermark",
                    TruncateReason::PowerFailure => "lost in the power failure (never flushed)",
                };
                write!(f, "{partition}: {removed} record(s) from offset {to_offset} removed: {why}")
            }
            LogStartMoved { partition, log_start_offset } => {
                write!(f, "{partition}: retention deleted old segments; log start offset -> {log_start_offset}")
            }
            FetchSessionEvicted { session_id, owner, fetcher } => write!(
                f,
                "fetch session cache full: evicted {owner}'s session {session_id} to open one for {fetcher} \
                 (max.incremental.fetch.session.cache.slots)"
            ),
            FetchSessionRefused { fetcher } => write!(
                f,
                "fetch session cache full and nothing to evict: {fetcher} fetches without a session"
            ),
            LogCleaned { partition, cleaning } => {
                let c = cleaning;
                write!(
                    f,
                    "{partition}: log cleaner compacted below offset {} (dirty from {}, dirty ratio {}.{:02}): removed {} record(s)",
                    c.end_offset,
                    c.dirty_from,
                    c.dirty_ratio_ppm / 1_000_000,
                    c.dirty_ratio_ppm % 1_000_000 / 10_000,
                    c.records_removed
                )?;
                if !c.removed.is_empty() {
                    let ranges: Vec<String> = c
                        .removed
                        .iter()
                        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                        .collect();
                    write!(f, " at offsets {}", ranges.join(", "))?;
                }
                if c.tombstones_removed > 0 {
                    write!(f, "; {} tombstone(s) past delete.retention.ms removed", c.tombstones_removed)?;
                }
                if c.tombstones_kept > 0 {
                    write!(f, "; {} tombstone(s) kept until their delete horizon", c.tombstones_kept)?;
                }
                if c.markers_removed > 0 {
                    write!(f, "; {} transaction marker(s) removed", c.markers_removed)?;
                }
                Ok(())
            }
            Flushed { partition, offset } => write!(f, "{partition}: flushed to disk up to {offset}"),
            IsrChangeRequested { partition, isr, reason: IsrChangeReason::FollowerLagged { follower, caught_up_ms_ago } } => {
                write!(
                    f,
                    "{partition}: broker-{follower} last caught up {caught_up_ms_ago} ms ago (> replica.lag.time.max.ms): asking to shrink the ISR to {isr:?}"
                )
            }
            IsrChangeRequested { partition, isr, reason: IsrChangeReason::FollowerCaughtUp { follower } } => {
                write!(f, "{partition}: broker-{follower} caught up: asking to expand the ISR to {isr:?}")
            }
            IsrChangeFailed { partition, error } => write!(f, "{partition}: ISR change rejected: {error}"),
            GroupLoaded { group, generation, members, offsets } => write!(
                f,
                "group {group}: loaded from __consumer_offsets (generation {generation}, {members} member(s), {offsets} committed offset(s))"
            ),
            GroupStateChanged { group, state, generation, members } => {
                write!(f, "group {group}: {state} (generation {generation}, members {members:?})")
            }
            MemberRemoved { group, member, reason } => write!(f, "group {group}: member {member} removed: {reason}"),
            StaticMemberReturned { group, instance, member } => {
                write!(f, "group {group}: static member {instance} is back as {member}; it keeps its partitions, no rebalance")
            }
            AssignmentStored { group, generation, member, partitions } => {
                write!(f, "group {group} generation {generation}: {member} gets {}", fmt_partitions(partitions))
            }
            OffsetCommitted { group, partition, offset } => write!(f, "group {group}: committed {partition} at {offset}"),
            OffsetFetchUnstable { group, member, partitions } => write!(
                f,
                "group {group}: {member} asked for the committed offsets of {} and got UNSTABLE_OFFSET_COMMIT: \
                 a transaction still holds offsets for them; it asks again after retry.backoff.ms",
                fmt_partitions(partitions)
            ),
            TxnOffsetAborted { group, partition, offset } => {
                write!(f, "group {group}: the transaction's offset {partition} at {offset} is dropped (ABORT marker)")
            }
            TxnOffsetCommitRefused { group, transactional_id, member, generation, error } => write!(
                f,
                "group {group}: TxnOffsetCommit from {transactional_id} (member {member}, generation {generation}) \
                 refused: {error}; the group has moved on, so this zombie cannot commit offsets (KIP-447)"
            ),
            PartitionsAssigned { member, generation, partitions, .. } if partitions.is_empty() => {
                write!(f, "{member}: nothing new assigned in generation {generation}")
            }
            PartitionsAssigned { member, generation, partitions, .. } => {
                write!(f, "{member}: assigned {} (generation {generation})", fmt_partitions(partitions))
            }
            PartitionsRevoked { member, partitions, lost: false, kept: 0, .. } => {
                write!(f, "{member}: revoked {}: stops reading everything until the rebalance ends", fmt_partitions(partitions))
            }
            PartitionsRevoked { member, partitions, lost: false, kept, .. } => {
                write!(f, "{member}: revoked {} (keeps reading its other {kept})", fmt_partitions(partitions))
            }
            PartitionsRevoked { member, partitions, lost: true, .. } => {
                write!(f, "{member}: lost {} without a chance to commit", fmt_partitions(partitions))
            }
            CommitFailed { member, error, .. } => write!(f, "{member}: commit failed with {error}: it is no longer in this generation"),
            PollIntervalExceeded { member, waited_ms, static_member: false, .. } => write!(
                f,
                "{member}: the application did not poll for {waited_ms} ms (> max.poll.interval.ms): the consumer leaves the group"
            ),
            PollIntervalExceeded { member, waited_ms, static_member: true, .. } => write!(
                f,
                "{member}: the application did not poll for {waited_ms} ms (> max.poll.interval.ms): the consumer drops out, but as a static member sends no LeaveGroup; it rejoins at its next poll"
            ),
            CoordinatorUnreachable { group, member, session_timeout_ms } => write!(
                f,
                "{member}: no heartbeat answer from group {group}'s coordinator for {session_timeout_ms} ms (session.timeout.ms): it looks for the coordinator again"
            ),
            ConfigAdjusted { setting, value, reason } => write!(f, "config {setting}={value}: {reason}"),
            MemberFailed { group, member, error: ErrorCode::InvalidSessionTimeout } => write!(
                f,
                "{member}: JoinGroup to group {group} failed with INVALID_SESSION_TIMEOUT, which is fatal: its session.timeout.ms is outside the broker's group.min.session.timeout.ms..group.max.session.timeout.ms; it stops consuming for good"
            ),
            MemberFailed { group, member, error: ErrorCode::FencedInstanceId } => write!(
                f,
                "{member}: fenced in group {group} (FENCED_INSTANCE_ID): another consumer took its group.instance.id; it stops consuming for good"
            ),
            MemberFailed { group, member, error: ErrorCode::InconsistentGroupProtocol } => write!(
                f,
                "{member}: cannot join group {group} (INCONSISTENT_GROUP_PROTOCOL): none of its partition.assignment.strategy assignors is one every member supports; it stops consuming for good"
            ),
            MemberFailed { group, member, error } => {
                write!(f, "{member}: failed in group {group} with {error}, fatal; it stops consuming for good")
            }
            ProduceAcked { partition, offset, key, value, .. } => {
                write!(f, "acknowledged {} at {partition}@{offset}", fmt_record(key, value))
            }
            ProduceFailed { partition, error, reason, .. } => match partition {
                Some(p) => write!(f, "send to {p} failed: {error} ({reason})"),
                None => write!(f, "send failed: {error} ({reason})"),
            },
            ProduceRetry { partition, error, records, sequence } => {
                write!(f, "{records} record(s) for {partition}")?;
                if let Some(seq) = sequence {
                    write!(f, " (seq={seq})")?;
                }
                write!(f, " will be retried after {error}")
            }
            TxnStateChanged { transactional_id, state, producer_id, producer_epoch, partitions, loaded } => {
                if *loaded {
                    write!(f, "transaction {transactional_id}: loaded from __transaction_state: ")?;
                } else {
                    write!(f, "transaction {transactional_id}: ")?;
                }
                write!(f, "{state} (pid {producer_id} epoch {producer_epoch}")?;
                if !partitions.is_empty() {
                    write!(f, ", partitions {}", fmt_partitions(partitions))?;
                }
                write!(f, ")")
            }
            MarkerWritten { partition, producer_id, producer_epoch, control, offset } => write!(
                f,
                "{partition}: {} marker for pid {producer_id} epoch {producer_epoch} at offset {offset}",
                match control {
                    crate::record::ControlType::Commit => "COMMIT",
                    crate::record::ControlType::Abort => "ABORT",
                }
            ),
            AdminAbortRequested { partition, producer_id: -1, .. } => {
                write!(f, "kafka-transactions.sh abort: {partition} has no open transaction to abort")
            }
            AdminAbortRequested { partition, producer_id, producer_epoch, coordinator_epoch, start_offset } => write!(
                f,
                "kafka-transactions.sh abort: the transaction of pid {producer_id} epoch {producer_epoch} open on {partition} since offset {start_offset}: WriteTxnMarkers ABORT (coordinator epoch {coordinator_epoch}) to its leader"
            ),
            AdminAbortAnswered { partition, error } => {
                write!(f, "kafka-transactions.sh abort on {partition}: {error}")
            }
            TxnVerificationFailed { partition, transactional_id, producer_id, producer_epoch, error } => write!(
                f,
                "{partition}: transactional produce of {transactional_id} (pid {producer_id} epoch {producer_epoch}) refused with {error} after verifying it with the transaction coordinator (KIP-890)"
            ),
            TxnInitialized { transactional_id, producer_id, producer_epoch } => write!(
                f,
                "initTransactions() done: {transactional_id} is pid {producer_id} epoch {producer_epoch}; older epochs are fenced"
            ),
            TxnEnded { transactional_id, committed, records, epoch_bump, .. } => write!(
                f,
                "{}Transaction() done for {transactional_id}: {} record(s) {}{}",
                if *committed { "commit" } else { "abort" },
                records.len(),
                if *committed { "committed" } else { "aborted" },
                if *epoch_bump { "; records failed, so the producer bumps its epoch first (KIP-360)" } else { "" }
            ),
            TxnOffsetsSent { transactional_id, group, offsets } => {
                write!(f, "sendOffsetsToTransaction() done for {transactional_id}: group {group}")?;
                for (tp, offset) in offsets {
                    write!(f, " {tp}={offset}")?;
                }
                write!(f, " pending until the transaction ends")
            }
            TxnFailed { transactional_id, error, fatal } => {
                if *fatal {
                    write!(f, "{transactional_id}: {error}: fatal, the producer must be closed")
                } else {
                    write!(f, "{transactional_id}: {error}: the transaction must be aborted")
                }
            }
            Consumed { partition, offset, key, value, headers, .. } => {
                write!(f, "consumed {} from {partition}@{offset}", fmt_record(key, value))?;
                match headers.len() {
                    0 => Ok(()),
                    1 => write!(f, " (1 header)"),
                    n => write!(f, " ({n} headers)"),
                }
            }
            PositionReset { partition, offset, reason, .. } => write!(f, "{partition}: position reset to {offset} ({reason})"),
            OffsetOutOfRange { partition, position } => {
                write!(f, "{partition}: OFFSET_OUT_OF_RANGE: offset {position} is not in the log (retention deleted it?)")
            }
            ConnectionSetupTimedOut { broker, timeout_ms } => write!(
                f,
                "no answer from broker-{broker}'s host within {timeout_ms} ms (socket.connection.setup.timeout.ms): \
                 gives up on the connection and tries another broker"
            ),
            TruncationDetected { partition, position, epoch, divergent, raised } => {
                write!(f, "{partition}: log truncation detected (KIP-320): position {position} was read in leader epoch {epoch}")?;
                match (divergent, raised) {
                    (Some((offset, e)), false) => write!(
                        f,
                        ", but the leader's log diverges from offset {offset} (epoch {e}): position reset to {offset}, the first offset known to diverge"
                    ),
                    (Some((offset, e)), true) => write!(
                        f,
                        ", but the leader's log diverges from offset {offset} (epoch {e}): auto.offset.reset=none, so poll() throws LogTruncationException"
                    ),
                    (None, false) => {
                        write!(f, ", which the leader does not know: the position is reset by auto.offset.reset")
                    }
                    (None, true) => write!(
                        f,
                        ", which the leader does not know: auto.offset.reset=none, so poll() throws LogTruncationException"
                    ),
                }
            }
        }
    }
}

fn fmt_partitions(partitions: &[TopicPartition]) -> String {
    let names: Vec<String> = partitions.iter().map(|tp| tp.to_string()).collect();
    format!("[{}]", names.join(", "))
}

/// `key=value`, or the value alone; a tombstone reads `key=null (tombstone)`.
fn fmt_record(key: &Option<String>, value: &Option<String>) -> String {
    let value = value.as_deref().map_or_else(|| "null (tombstone)".to_string(), str::to_string);
    match key {
        Some(k) => format!("{k}={value}"),
        None => value,
    }
}
