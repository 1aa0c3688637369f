//! The wire: requests and responses, named after Kafka's APIs.
//!
//! Kafka clients and brokers speak request/response over TCP; every request carries a correlation
//! id that its response echoes. ksim keeps that shape: [`Message::Request`] and
//! [`Message::Response`] wrap one API each. Errors travel as [`ErrorCode`] values inside responses.
//!
//! Fields are trimmed to what the simulated behaviour needs, and named as in Kafka's JSON schemas
//! (`clients/src/main/resources/common/message/*.json`).

use crate::config::{Acks, TopicConfig};
use crate::error::ErrorCode;
use crate::fetch_session::FetchMetadata;
use crate::log::AbortedTxn;
use crate::metadata::MetadataRecord;
use crate::raft::message::RaftMessage;
use crate::record::{ControlType, RecordBatch};
use crate::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    Request {
        correlation_id: u64,
        body: Request,
    },
    Response {
        correlation_id: u64,
        body: Response,
    },
    /// KRaft's own RPCs between quorum members and observers (KIP-595): Vote, BeginQuorumEpoch,
    /// EndQuorumEpoch and the metadata Fetch. The Raft state machine matches answers to its state
    /// (epoch, fetch offset), not to correlation ids, so they travel as one kind of message.
    Raft(RaftMessage<MetadataRecord>),
}

impl Message {
    pub fn api(&self) -> ApiKey {
        match self {
            Message::Request { body, .. } => body.api(),
            Message::Response { body, .. } => body.api(),
            Message::Raft(m) => match m {
                RaftMessage::Vote(r) if r.pre_vote => ApiKey::PreVote,
                RaftMessage::VoteResponse(r) if r.pre_vote => ApiKey::PreVote,
                RaftMessage::Vote(_) | RaftMessage::VoteResponse(_) => ApiKey::Vote,
                RaftMessage::BeginQuorumEpoch(_) | RaftMessage::BeginQuorumEpochResponse(_) => ApiKey::BeginQuorumEpoch,
                RaftMessage::EndQuorumEpoch(_) | RaftMessage::EndQuorumEpochResponse(_) => ApiKey::EndQuorumEpoch,
                // The metadata log's Fetch: ksim names it MetadataFetch, as it did before the quorum.
                RaftMessage::Fetch(_) | RaftMessage::FetchResponse(_) => ApiKey::MetadataFetch,
            },
        }
    }

    pub fn is_request(&self) -> bool {
        match self {
            Message::Request { .. } => true,
            Message::Response { .. } => false,
            Message::Raft(m) => m.is_request(),
        }
    }
}

/// Kafka's API names (the `ApiKeys` enum), for the trace and the TUI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ApiKey {
    Produce,
    Fetch,
    ListOffsets,
    Metadata,
    OffsetsForLeaderEpoch,
    InitProducerId,
    BrokerRegistration,
    BrokerHeartbeat,
    AlterPartition,
    /// KRaft brokers replicate the `__cluster_metadata` log from the controller with a Fetch; ksim
    /// names it apart from the data-plane Fetch so the trace reads clearly.
    MetadataFetch,
    CreateTopics,
    /// KRaft elections (KIP-595) and pre-elections (KIP-996: a Vote with `preVote` set).
    Vote,
    PreVote,
    BeginQuorumEpoch,
    EndQuorumEpoch,
    FindCoordinator,
    JoinGroup,
    SyncGroup,
    Heartbeat,
    LeaveGroup,
    OffsetCommit,
    OffsetFetch,
    AddPartitionsToTxn,
    AddOffsetsToTxn,
    TxnOffsetCommit,
    EndTxn,
    WriteTxnMarkers,
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    OffsetsForLeaderEpoch(OffsetsForLeaderEpochRequest),
    InitProducerId,
    BrokerRegistration(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeatRequest),
    AlterPartition(AlterPartitionRequest),
    MetadataFetch(MetadataFetchRequest),
    CreateTopics(CreateTopicsRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    /// InitProducerId with a `transactional.id` (the plain [`Request::InitProducerId`] is an
    /// idempotent producer's, with none).
    InitProducerIdTransactional(InitProducerIdRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    EndTxn(EndTxnRequest),
    WriteTxnMarkers(WriteTxnMarkersRequest),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    OffsetsForLeaderEpoch(OffsetsForLeaderEpochResponse),
    InitProducerId(InitProducerIdResponse),
    BrokerRegistration(BrokerRegistrationResponse),
    BrokerHeartbeat(BrokerHeartbeatResponse),
    AlterPartition(AlterPartitionResponse),
    MetadataFetch(MetadataFetchResponse),
    CreateTopics(CreateTopicsResponse),
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    EndTxn(EndTxnResponse),
    WriteTxnMarkers(WriteTxnMarkersResponse),
}

impl Request {
    pub fn api(&self) -> ApiKey {
        match self {
            Request::Produce(_) => ApiKey::Produce,
            Request::Fetch(_) => ApiKey::Fetch,
            Request::ListOffsets(_) => ApiKey::ListOffsets,
            Request::Metadata(_) => ApiKey::Metadata,
            Request::OffsetsForLeaderEpoch(_) => ApiKey::OffsetsForLeaderEpoch,
            Request::InitProducerId => ApiKey::InitProducerId,
            Request::BrokerRegistration(_) => ApiKey::BrokerRegistration,
            Request::BrokerHeartbeat(_) => ApiKey::BrokerHeartbeat,
            Request::AlterPartition(_) => ApiKey::AlterPartition,
            Request::MetadataFetch(_) => ApiKey::MetadataFetch,
            Request::CreateTopics(_) => ApiKey::CreateTopics,
            Request::FindCoordinator(_) => ApiKey::FindCoordinator,
            Request::JoinGroup(_) => ApiKey::JoinGroup,
            Request::SyncGroup(_) => ApiKey::SyncGroup,
            Request::Heartbeat(_) => ApiKey::Heartbeat,
            Request::LeaveGroup(_) => ApiKey::LeaveGroup,
            Request::OffsetCommit(_) => ApiKey::OffsetCommit,
            Request::OffsetFetch(_) => ApiKey::OffsetFetch,
            Request::InitProducerIdTransactional(_) => ApiKey::InitProducerId,
            Request::AddPartitionsToTxn(_) => ApiKey::AddPartitionsToTxn,
            Request::AddOffsetsToTxn(_) => ApiKey::AddOffsetsToTxn,
            Request::TxnOffsetCommit(_) => ApiKey::TxnOffsetCommit,
            Request::EndTxn(_) => ApiKey::EndTxn,
            Request::WriteTxnMarkers(_) => ApiKey::WriteTxnMarkers,
        }
    }
}

impl Response {
    pub fn api(&self) -> ApiKey {
        match self {
            Response::Produce(_) => ApiKey::Produce,
            Response::Fetch(_) => ApiKey::Fetch,
            Response::ListOffsets(_) => ApiKey::ListOffsets,
            Response::Metadata(_) => ApiKey::Metadata,
            Response::OffsetsForLeaderEpoch(_) => ApiKey::OffsetsForLeaderEpoch,
            Response::InitProducerId(_) => ApiKey::InitProducerId,
            Response::BrokerRegistration(_) => ApiKey::BrokerRegistration,
            Response::BrokerHeartbeat(_) => ApiKey::BrokerHeartbeat,
            Response::AlterPartition(_) => ApiKey::AlterPartition,
            Response::MetadataFetch(_) => ApiKey::MetadataFetch,
            Response::CreateTopics(_) => ApiKey::CreateTopics,
            Response::FindCoordinator(_) => ApiKey::FindCoordinator,
            Response::JoinGroup(_) => ApiKey::JoinGroup,
            Response::SyncGroup(_) => ApiKey::SyncGroup,
            Response::Heartbeat(_) => ApiKey::Heartbeat,
            Response::LeaveGroup(_) => ApiKey::LeaveGroup,
            Response::OffsetCommit(_) => ApiKey::OffsetCommit,
            Response::OffsetFetch(_) => ApiKey::OffsetFetch,
            Response::AddPartitionsToTxn(_) => ApiKey::AddPartitionsToTxn,
            Response::AddOffsetsToTxn(_) => ApiKey::AddOffsetsToTxn,
            Response::TxnOffsetCommit(_) => ApiKey::TxnOffsetCommit,
            Response::EndTxn(_) => ApiKey::EndTxn,
            Response::WriteTxnMarkers(_) => ApiKey::WriteTxnMarkers,
        }
    }
}

// ---- Produce ----------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProduceRequest {
    pub acks: Acks,
    pub timeout_ms: u64,
    pub partition: TopicPartition,
    pub batch: RecordBatch,
    /// A transactional producer's `transactional.id` (ProduceRequest's `transactionalId`): the
    /// leader verifies the batch with that id's coordinator (KIP-890).
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// Sent by a transaction version 2 client (Produce v12+, KIP-890 part 2): the leader adds
    /// the partition to the transaction itself (`TransactionSupportedOperation.ADD_PARTITION`)
    /// instead of verifying it, whatever `transaction.partition.verification.enable` says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transaction_v2: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProduceResponse {
    pub partition: TopicPartition,
    pub error: ErrorCode,
    /// Offset of the batch's first record, or -1.
    pub base_offset: i64,
    pub log_start_offset: i64,
}

// ---- Fetch (consumers and follower replicas) --------------------------------------------------

/// A consumer's `isolation.level`: `read_uncommitted` reads up to the high watermark,
/// `read_committed` only up to the last stable offset, and drops aborted transactions' records.
/// The Java consumer defaults to `read_uncommitted` (`ConsumerConfig.DEFAULT_ISOLATION_LEVEL`),
/// librdkafka to `read_committed` (its `isolation.level` property).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IsolationLevel {
    #[default]
    #[serde(rename = "read_uncommitted")]
    ReadUncommitted,
    #[serde(rename = "read_committed")]
    ReadCommitted,
}

impl IsolationLevel {
    pub fn is_read_uncommitted(&self) -> bool {
        *self == IsolationLevel::ReadUncommitted
    }

    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// `Some` for a follower replica (`replica_id` and broker epoch in Kafka), `None` for a consumer.
    pub replica: Option<(BrokerId, i64)>,
    pub max_wait_ms: u64,
    /// The fetch session (KIP-227) this fetch opens, continues or closes; sessionless (id 0,
    /// epoch -1) when absent.
    #[serde(default, skip_serializing_if = "FetchMetadata::is_sessionless")]
    pub session: FetchMetadata,
    /// Every partition of a full fetch; only the added and changed ones of an incremental fetch.
    pub partitions: Vec<FetchPartition>,
    /// Partitions an incremental fetch removes from its session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forgotten: Vec<TopicPartition>,
    #[serde(default, skip_serializing_if = "IsolationLevel::is_read_uncommitted")]
    pub isolation_level: IsolationLevel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchPartition {
    pub partition: TopicPartition,
    pub fetch_offset: i64,
    /// The leader epoch the fetcher believes is current (KIP-320): a leader with a newer epoch
    /// answers FENCED_LEADER_EPOCH, one with an older epoch UNKNOWN_LEADER_EPOCH.
    pub current_leader_epoch: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FetchResponse {
    /// A session error (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH): no partitions.
    #[serde(default, skip_serializing_if = "ErrorCode::is_none_ref")]
    pub error: ErrorCode,
    /// The session the answer belongs to; 0 when the leader keeps none for this fetcher.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub session_id: u32,
    /// Every partition of a full fetch; only those with news in an incremental one.
    pub partitions: Vec<FetchedPartition>,
}

impl FetchResponse {
    /// A session error's answer: the error alone, no session, no partitions.
    pub fn session_error(error: ErrorCode) -> Self {
        FetchResponse { error, session_id: 0, partitions: Vec::new() }
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchedPartition {
    pub partition: TopicPartition,
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub batches: Vec<RecordBatch>,
    /// The last stable offset, in answers to `read_committed` fetches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_offset: Option<i64>,
    /// The aborted transactions among the batches, for a `read_committed` fetch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aborted_transactions: Vec<AbortedTxn>,
}

// ---- ListOffsets ------------------------------------------------------------------------------

/// The special timestamps of ListOffsets: Kafka's -2 (earliest) and -1 (latest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetSpec {
    Earliest,
    Latest,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListOffsetsRequest {
    pub partitions: Vec<(TopicPartition, OffsetSpec, i32)>,
    /// `read_committed` asks for the last stable offset as the latest offset.
    #[serde(default, skip_serializing_if = "IsolationLevel::is_read_uncommitted")]
    pub isolation_level: IsolationLevel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListOffsetsResponse {
    /// Partition, error, offset, leader epoch.
    pub partitions: Vec<(TopicPartition, ErrorCode, i64, i32)>,
}

// ---- Metadata ---------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetadataRequest {
    /// Topics to describe; empty means all.
    pub topics: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// Live (unfenced) brokers.
    pub brokers: Vec<BrokerId>,
    pub topics: Vec<TopicMetadata>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    pub error: ErrorCode,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    pub partition: i32,
    pub leader: Option<BrokerId>,
    pub leader_epoch: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
}

// ---- OffsetsForLeaderEpoch (KIP-101, KIP-279, KIP-320) ----------------------------------------

/// The `replica_id` of a consumer's OffsetsForLeaderEpoch (Kafka's `CONSUMER_REPLICA_ID`).
pub const CONSUMER_REPLICA_ID: BrokerId = -1;

/// Followers ask where an epoch ends to truncate their logs (KIP-101, KIP-279); consumers ask to
/// validate their position after a leader change (KIP-320). The leader answers both from its
/// leader-epoch cache and its log end (`Partition.lastOffsetForLeaderEpoch`, not capped at the
/// high watermark).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetsForLeaderEpochRequest {
    /// The follower's broker id, or [`CONSUMER_REPLICA_ID`] for a consumer.
    pub replica_id: BrokerId,
    /// Partition, the fetcher's current leader epoch (for fencing), the epoch asked about.
    pub partitions: Vec<(TopicPartition, i32, i32)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetsForLeaderEpochResponse {
    pub partitions: Vec<EpochEndOffset>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochEndOffset {
    pub partition: TopicPartition,
    pub error: ErrorCode,
    /// The largest epoch the leader knows that is not above the one asked about (-1 if none).
    pub leader_epoch: i32,
    /// Where that epoch ends in the leader's log: the start of the next epoch, or the leader's log
    /// end offset if it is the current epoch (-1 if unknown).
    pub end_offset: i64,
}

// ---- InitProducerId ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitProducerIdRequest {
    pub transactional_id: String,
    pub transaction_timeout_ms: u64,
    /// The producer id and epoch a producer that has one sends to bump its epoch (KIP-360);
    /// -1 and -1 otherwise.
    pub producer_id: i64,
    pub producer_epoch: i16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitProducerIdResponse {
    pub error: ErrorCode,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

// ---- KRaft: broker lifecycle and the metadata log ---------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    pub broker_id: BrokerId,
    /// A fresh value each time the broker process starts (Kafka's `incarnationId`).
    pub incarnation: u64,
    /// The broker epoch saved by this broker's last clean shutdown, or -1 if it did not shut
    /// down cleanly (KIP-966's `PreviousBrokerEpoch`; Kafka reads it from the clean-shutdown file
    /// `LogManager.readBrokerEpochFromCleanShutdownFiles`).
    pub previous_broker_epoch: i64,
    pub rack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerRegistrationResponse {
    pub error: ErrorCode,
    pub broker_epoch: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerHeartbeatRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: i64,
    /// How far the broker has replayed the metadata log; the controller unfences a broker only
    /// once it has caught up.
    pub current_metadata_offset: i64,
    /// The broker is in controlled shutdown (`BrokerLifecycleManager`'s
    /// `PENDING_CONTROLLED_SHUTDOWN`) and asks the controller to move its leaderships away.
    pub want_shut_down: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrokerHeartbeatResponse {
    pub error: ErrorCode,
    pub is_caught_up: bool,
    pub is_fenced: bool,
    /// The controller has moved everything away: the broker may stop now.
    pub should_shut_down: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: i64,
    pub partition: TopicPartition,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<BrokerId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlterPartitionResponse {
    pub partition: TopicPartition,
    pub error: ErrorCode,
    pub leader: Option<BrokerId>,
    pub leader_epoch: i32,
    pub isr: Vec<BrokerId>,
    pub partition_epoch: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetadataFetchRequest {
    pub broker_id: BrokerId,
    pub fetch_offset: i64,
    pub max_wait_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetadataFetchResponse {
    /// The records from `fetch_offset` on, in log order.
    pub records: Vec<MetadataRecord>,
    pub base_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateTopicsRequest {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: usize,
    /// Explicit replica assignment, partition by partition; empty means "let the controller place".
    pub assignment: Vec<Vec<BrokerId>>,
    pub config: TopicConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateTopicsResponse {
    pub name: String,
    pub error: ErrorCode,
    pub message: Option<String>,
}

// ---- Consumer groups (the classic protocol) -------------------------------------------------------

/// What a FindCoordinator looks for (`FindCoordinatorRequest.CoordinatorType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordinatorType {
    #[default]
    Group,
    Transaction,
}

impl CoordinatorType {
    pub fn is_group(&self) -> bool {
        *self == CoordinatorType::Group
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindCoordinatorRequest {
    /// The key: a `group.id`, or a `transactional.id` for a transaction coordinator.
    pub group_id: String,
    #[serde(default, skip_serializing_if = "CoordinatorType::is_group")]
    pub key_type: CoordinatorType,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindCoordinatorResponse {
    pub error: ErrorCode,
    pub coordinator: Option<BrokerId>,
}

/// What a member tells the group about itself for one assignor (Kafka's `ConsumerProtocolSubscription`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Partitions the member owns now (the cooperative protocol needs them).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation those partitions were assigned in (-1: none).
    pub generation: i32,
}

/// JoinGroup's `protocol_type`: what kind of group this is. The coordinator reads nothing of a
/// member's metadata or assignment; it only keeps every member of a group to one protocol type
/// (`ClassicGroup.supportsProtocols`). Consumers say `consumer`, Connect workers `connect`;
/// a real client in live mode may say anything else.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProtocolType {
    Consumer,
    Connect,
    Other(String),
}

impl ProtocolType {
    pub fn from_name(name: &str) -> ProtocolType {
        match name {
            "consumer" => ProtocolType::Consumer,
            "connect" => ProtocolType::Connect,
            other => ProtocolType::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ProtocolType::Consumer => "consumer",
            ProtocolType::Connect => "connect",
            ProtocolType::Other(name) => name,
        }
    }
}

impl fmt::Display for ProtocolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One protocol's metadata in a JoinGroup, opaque to the coordinator: a consumer's
/// subscription, a Connect worker's state, or (live mode) bytes of a protocol ksim does not read.
/// Stored (in a group record) as the bare value, so a consumer group's record reads as it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MemberMetadata {
    Consumer(Subscription),
    Connect(crate::connect::protocol::WorkerMetadata),
    Opaque(Vec<u8>),
}

impl MemberMetadata {
    /// The consumer subscription, if this is one.
    pub fn subscription(&self) -> Option<&Subscription> {
        match self {
            MemberMetadata::Consumer(s) => Some(s),
            _ => None,
        }
    }
}

/// A member's assignment in SyncGroup, opaque to the coordinator: a consumer's partitions, a
/// Connect worker's `ExtendedAssignment`, bytes ksim does not read (live mode), or nothing yet.
/// Stored (in a group record) as the bare value, and no assignment as an empty list, so a
/// consumer group's record reads as it did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum MemberAssignment {
    Consumer(Vec<TopicPartition>),
    Connect(crate::connect::protocol::ConnectAssignment),
    Opaque(Vec<u8>),
    #[default]
    Empty,
}

impl Serialize for MemberAssignment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MemberAssignment::Empty => serializer.collect_seq(std::iter::empty::<u8>()),
            MemberAssignment::Consumer(partitions) => partitions.serialize(serializer),
            MemberAssignment::Connect(assignment) => assignment.serialize(serializer),
            MemberAssignment::Opaque(bytes) => bytes.serialize(serializer),
        }
    }
}

impl MemberAssignment {
    /// The consumer partitions it assigns (none for any other kind).
    pub fn partitions(&self) -> &[TopicPartition] {
        match self {
            MemberAssignment::Consumer(p) => p,
            _ => &[],
        }
    }
}

impl From<Vec<TopicPartition>> for MemberAssignment {
    fn from(partitions: Vec<TopicPartition>) -> MemberAssignment {
        MemberAssignment::Consumer(partitions)
    }
}

impl fmt::Display for MemberAssignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberAssignment::Empty => f.write_str("[]"),
            MemberAssignment::Consumer(p) => f.write_str(&fmt_partitions(p)),
            MemberAssignment::Connect(a) => write!(f, "{a}"),
            MemberAssignment::Opaque(bytes) => write!(f, "({} bytes)", bytes.len()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinGroupRequest {
    pub group_id: String,
    /// The client's `client.id` (from the request header); Kafka builds member ids from it.
    pub client_id: String,
    /// Empty on the first join: the coordinator answers MEMBER_ID_REQUIRED with one (KIP-394).
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocol_type: ProtocolType,
    /// Protocol names in preference order (a consumer's assignors, a worker's Connect
    /// protocols), each with the member's metadata for it.
    pub protocols: Vec<(String, MemberMetadata)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinGroupResponse {
    pub error: ErrorCode,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: every member with its metadata, so it can compute the assignment.
    pub members: Vec<(String, Option<String>, MemberMetadata)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    /// The member's `group.instance.id` (KIP-345): with it the coordinator tells a member whose
    /// instance another process has taken over (FENCED_INSTANCE_ID) from one it never knew.
    pub group_instance_id: Option<String>,
    /// Only from the leader: the assignment of every member.
    pub assignments: Vec<(String, MemberAssignment)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncGroupResponse {
    pub error: ErrorCode,
    pub assignment: MemberAssignment,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    /// The member's `group.instance.id` (KIP-345): with it the coordinator tells a member whose
    /// instance another process has taken over (FENCED_INSTANCE_ID) from one it never knew.
    pub group_instance_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub member_id: String,
    /// The member's `group.instance.id` (KIP-345): with it the coordinator tells a member whose
    /// instance another process has taken over (FENCED_INSTANCE_ID) from one it never knew.
    pub group_instance_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaveGroupResponse {
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 with an empty member id: a commit from outside the group (a "simple" consumer).
    pub generation: i32,
    pub member_id: String,
    /// The member's `group.instance.id` (KIP-345): with it the coordinator tells a member whose
    /// instance another process has taken over (FENCED_INSTANCE_ID) from one it never knew.
    pub group_instance_id: Option<String>,
    pub offsets: Vec<(TopicPartition, i64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetCommitResponse {
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetFetchRequest {
    pub group_id: String,
    pub partitions: Vec<TopicPartition>,
    /// KIP-447: answer UNSTABLE_OFFSET_COMMIT for a partition with transactional offsets still
    /// pending, rather than the offset an open transaction may yet replace. The Java consumer
    /// always sets it (`ConsumerCoordinator.sendOffsetFetchRequest`).
    pub require_stable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OffsetFetchResponse {
    pub error: ErrorCode,
    /// -1: nothing committed.
    pub offsets: Vec<(TopicPartition, i64)>,
}

// ---- Transactions -----------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddPartitionsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub partitions: Vec<TopicPartition>,
    /// A partition leader's question (v4+, `AddPartitionsToTxnManager`, KIP-890 part 1): is
    /// every partition already in the ongoing transaction? Nothing is added.
    #[serde(default)]
    pub verify_only: bool,
}

/// Kafka answers per partition; its coordinator gives every partition the same error, so ksim
/// carries one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddPartitionsToTxnResponse {
    pub error: ErrorCode,
}

/// `sendOffsetsToTransaction`'s first step (KIP-98): the transaction coordinator adds the
/// group's `__consumer_offsets` partition to the transaction, so it gets a marker too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddOffsetsToTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub group_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddOffsetsToTxnResponse {
    pub error: ErrorCode,
}

/// `sendOffsetsToTransaction`'s second step, to the *group* coordinator: the offsets, written
/// as a transactional batch and pending until the transaction's marker. KIP-447 added the
/// consumer's group metadata (generation, member id, `group.instance.id`) so the group
/// coordinator fences a zombie the way it fences a zombie's plain OffsetCommit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnOffsetCommitRequest {
    pub transactional_id: String,
    pub group_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub generation: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub offsets: Vec<(TopicPartition, i64)>,
    /// TxnOffsetCommit v5+ from a transaction version 2 client, which sent no AddOffsetsToTxn:
    /// the group coordinator adds the group's offsets partition to the transaction first
    /// (`GroupCoordinatorService.commitTransactionalOffsets` through the partition writer's
    /// `maybeStartTransactionVerification` with `ADD_PARTITION`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transaction_v2: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxnOffsetCommitResponse {
    pub error: ErrorCode,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndTxnRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// true: commit; false: abort.
    pub committed: bool,
    /// EndTxn v5, which a transaction version 2 client sends: the coordinator bumps the epoch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transaction_v2: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndTxnResponse {
    pub error: ErrorCode,
    /// v5: the producer id and epoch of the producer's next transaction, -1 before v5.
    #[serde(default = "no_producer_id", skip_serializing_if = "is_no_producer_id")]
    pub producer_id: i64,
    #[serde(default = "no_producer_epoch", skip_serializing_if = "is_no_producer_epoch")]
    pub producer_epoch: i16,
}

fn no_producer_id() -> i64 {
    -1
}

fn no_producer_epoch() -> i16 {
    -1
}

fn is_no_producer_id(id: &i64) -> bool {
    *id == -1
}

fn is_no_producer_epoch(epoch: &i16) -> bool {
    *epoch == -1
}

/// A coordinator asks a partition leader to write a transaction marker. Kafka batches the
/// markers for one broker in a request; ksim sends one partition's per request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteTxnMarkersRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub result: ControlType,
    pub partition: TopicPartition,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WriteTxnMarkersResponse {
    pub partition: TopicPartition,
    pub error: ErrorCode,
}

fn fmt_partitions(partitions: &[TopicPartition]) -> String {
    let names: Vec<String> = partitions.iter().map(|tp| tp.to_string()).collect();
    format!("[{}]", names.join(", "))
}

impl fmt::Display for Request {
    /// A one-line summary for the trace: what a learner needs to follow the conversation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Produce(r) => {
                write!(f, "Produce {} acks={} {} record(s)", r.partition, r.acks, r.batch.records.len())?;
                if r.batch.is_idempotent() {
                    write!(f, " pid={} seq={}", r.batch.producer_id, r.batch.base_sequence)?;
                }
                Ok(())
            }
            Request::Fetch(r) => {
                write!(f, "Fetch")?;
                if let Some((id, _)) = r.replica {
                    write!(f, " (replica {id})")?;
                }
                let s = r.session;
                if s.epoch == crate::fetch_session::INITIAL_EPOCH {
                    write!(f, " [new session")?;
                    if s.session_id != 0 {
                        write!(f, ", closing {}", s.session_id)?;
                    }
                    write!(f, "]")?;
                } else if s.epoch == crate::fetch_session::FINAL_EPOCH && s.session_id != 0 {
                    write!(f, " [closing session {}]", s.session_id)?;
                } else if !s.is_full() {
                    write!(f, " [session {}, epoch {}]", s.session_id, s.epoch)?;
                }
                for p in &r.partitions {
                    write!(f, " {}@{} e{}", p.partition, p.fetch_offset, p.current_leader_epoch)?;
                }
                if !r.forgotten.is_empty() {
                    write!(f, " forget")?;
                    for tp in &r.forgotten {
                        write!(f, " {tp}")?;
                    }
                }
                if !s.is_full() && r.partitions.is_empty() && r.forgotten.is_empty() {
                    write!(f, " nothing changed")?;
                }
                Ok(())
            }
            Request::ListOffsets(r) => {
                write!(f, "ListOffsets")?;
                for (tp, spec, _) in &r.partitions {
                    write!(f, " {tp} {spec:?}")?;
                }
                Ok(())
            }
            Request::Metadata(r) => {
                if r.topics.is_empty() {
                    write!(f, "Metadata all topics")
                } else {
                    write!(f, "Metadata {}", r.topics.join(","))
                }
            }
            Request::OffsetsForLeaderEpoch(r) => {
                write!(f, "OffsetsForLeaderEpoch")?;
                for (tp, _, epoch) in &r.partitions {
                    write!(f, " {tp} epoch={epoch}")?;
                }
                Ok(())
            }
            Request::InitProducerId => write!(f, "InitProducerId"),
            Request::BrokerRegistration(r) => write!(f, "BrokerRegistration broker {}", r.broker_id),
            Request::BrokerHeartbeat(r) => write!(
                f,
                "BrokerHeartbeat broker {} epoch {} metadata@{}{}",
                r.broker_id,
                r.broker_epoch,
                r.current_metadata_offset,
                if r.want_shut_down { " want-shut-down" } else { "" }
            ),
            Request::AlterPartition(r) => write!(
                f,
                "AlterPartition {} isr={:?} leader_epoch={} partition_epoch={}",
                r.partition, r.new_isr, r.leader_epoch, r.partition_epoch
            ),
            Request::MetadataFetch(r) => write!(f, "MetadataFetch @{}", r.fetch_offset),
            Request::CreateTopics(r) => {
                write!(f, "CreateTopics {} partitions={} rf={}", r.name, r.partitions, r.replication_factor)
            }
            Request::FindCoordinator(r) => match r.key_type {
                CoordinatorType::Group => write!(f, "FindCoordinator group={}", r.group_id),
                CoordinatorType::Transaction => write!(f, "FindCoordinator transactional.id={}", r.group_id),
            },
            Request::JoinGroup(r) => {
                let member = if r.member_id.is_empty() { "(new member)" } else { r.member_id.as_str() };
                match r.protocols.first() {
                    Some((_, MemberMetadata::Consumer(s))) => write!(
                        f,
                        "JoinGroup group={} member={member} previously owned {}",
                        r.group_id,
                        fmt_partitions(&s.owned_partitions)
                    ),
                    Some((_, MemberMetadata::Connect(w))) => {
                        let names: Vec<&str> = r.protocols.iter().map(|(n, _)| n.as_str()).collect();
                        write!(
                            f,
                            "JoinGroup group={} member={member} protocol_type={} {} {w}",
                            r.group_id,
                            r.protocol_type,
                            names.join("/")
                        )
                    }
                    _ => write!(f, "JoinGroup group={} member={member} protocol_type={}", r.group_id, r.protocol_type),
                }
            }
            Request::SyncGroup(r) => {
                write!(f, "SyncGroup group={} generation={} member={}", r.group_id, r.generation, r.member_id)?;
                if !r.assignments.is_empty() {
                    write!(f, " (leader's assignment for {} member(s))", r.assignments.len())?;
                }
                Ok(())
            }
            Request::Heartbeat(r) => {
                write!(f, "Heartbeat group={} generation={} member={}", r.group_id, r.generation, r.member_id)
            }
            Request::LeaveGroup(r) => write!(f, "LeaveGroup group={} member={}", r.group_id, r.member_id),
            Request::OffsetCommit(r) => {
                write!(f, "OffsetCommit group={} generation={}", r.group_id, r.generation)?;
                for (tp, offset) in &r.offsets {
                    write!(f, " {tp}={offset}")?;
                }
                Ok(())
            }
            Request::OffsetFetch(r) => write!(f, "OffsetFetch group={} {}", r.group_id, fmt_partitions(&r.partitions)),
            Request::InitProducerIdTransactional(r) => write!(
                f,
                "InitProducerId transactional.id={} transaction.timeout.ms={}",
                r.transactional_id, r.transaction_timeout_ms
            ),
            Request::AddPartitionsToTxn(r) => write!(
                f,
                "AddPartitionsToTxn {}{} pid={} epoch={} {}",
                if r.verify_only { "verifyOnly " } else { "" },
                r.transactional_id,
                r.producer_id,
                r.producer_epoch,
                fmt_partitions(&r.partitions)
            ),
            Request::AddOffsetsToTxn(r) => write!(
                f,
                "AddOffsetsToTxn {} pid={} epoch={} group={}",
                r.transactional_id, r.producer_id, r.producer_epoch, r.group_id
            ),
            Request::TxnOffsetCommit(r) => {
                write!(
                    f,
                    "TxnOffsetCommit {} group={} pid={} epoch={} generation={} member={}",
                    r.transactional_id, r.group_id, r.producer_id, r.producer_epoch, r.generation, r.member_id
                )?;
                for (tp, offset) in &r.offsets {
                    write!(f, " {tp}={offset}")?;
                }
                Ok(())
            }
            Request::EndTxn(r) => write!(
                f,
                "EndTxn {} {} pid={} epoch={}",
                r.transactional_id,
                if r.committed { "COMMIT" } else { "ABORT" },
                r.producer_id,
                r.producer_epoch
            ),
            Request::WriteTxnMarkers(r) => write!(
                f,
                "WriteTxnMarkers {:?} {} pid={} epoch={} coordinator_epoch={}",
                r.result, r.partition, r.producer_id, r.producer_epoch, r.coordinator_epoch
            ),
        }
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Produce(r) => {
                write!(f, "Produce {} {}", r.partition, r.error)?;
                if r.error.is_none() && r.base_offset >= 0 {
                    write!(f, " base_offset={}", r.base_offset)?;
                }
                Ok(())
            }
            Response::Fetch(r) => {
                write!(f, "Fetch")?;
                if !r.error.is_none() {
                    return write!(f, " {}", r.error);
                }
                if r.session_id != 0 {
                    write!(f, " [session {}]", r.session_id)?;
                    if r.partitions.is_empty() {
                        write!(f, " nothing new")?;
                    }
                }
                for p in &r.partitions {
                    let n: usize = p.batches.iter().map(|b| b.records.len()).sum();
                    write!(f, " {}", p.partition)?;
                    if !p.error.is_none() {
                        write!(f, " {}", p.error)?;
                    } else {
                        write!(f, " {n} record(s) hw={}", p.high_watermark)?;
                        if let Some(lso) = p.last_stable_offset {
                            write!(f, " lso={lso}")?;
                        }
                    }
                }
                Ok(())
            }
            Response::ListOffsets(r) => {
                write!(f, "ListOffsets")?;
                for (tp, error, offset, _) in &r.partitions {
                    if error.is_none() {
                        write!(f, " {tp}={offset}")?;
                    } else {
                        write!(f, " {tp} {error}")?;
                    }
                }
                Ok(())
            }
            Response::Metadata(r) => {
                write!(f, "Metadata brokers={:?}", r.brokers)?;
                for t in &r.topics {
                    for p in &t.partitions {
                        match p.leader {
                            Some(l) => write!(f, " {}-{}:leader={} e{}", t.name, p.partition, l, p.leader_epoch)?,
                            None => write!(f, " {}-{}:no-leader", t.name, p.partition)?,
                        }
                    }
                }
                Ok(())
            }
            Response::OffsetsForLeaderEpoch(r) => {
                write!(f, "OffsetsForLeaderEpoch")?;
                for p in &r.partitions {
                    if p.error.is_none() {
                        write!(f, " {} epoch={} end_offset={}", p.partition, p.leader_epoch, p.end_offset)?;
                    } else {
                        write!(f, " {} {}", p.partition, p.error)?;
                    }
                }
                Ok(())
            }
            Response::InitProducerId(r) => {
                write!(f, "InitProducerId {} pid={}", r.error, r.producer_id)?;
                if r.producer_epoch > 0 {
                    write!(f, " epoch={}", r.producer_epoch)?;
                }
                Ok(())
            }
            Response::BrokerRegistration(r) => write!(f, "BrokerRegistration {} epoch={}", r.error, r.broker_epoch),
            Response::BrokerHeartbeat(r) => write!(
                f,
                "BrokerHeartbeat {}{}{}{}",
                r.error,
                if r.is_fenced { " fenced" } else { " unfenced" },
                if r.is_caught_up { " caught-up" } else { "" },
                if r.should_shut_down { " should-shut-down" } else { "" }
            ),
            Response::AlterPartition(r) => write!(
                f,
                "AlterPartition {} {} isr={:?} partition_epoch={}",
                r.partition, r.error, r.isr, r.partition_epoch
            ),
            Response::MetadataFetch(r) => {
                write!(f, "MetadataFetch {} record(s) from @{}", r.records.len(), r.base_offset)
            }
            Response::CreateTopics(r) => write!(f, "CreateTopics {} {}", r.name, r.error),
            Response::FindCoordinator(r) => match r.coordinator {
                Some(id) if r.error.is_none() => write!(f, "FindCoordinator broker-{id}"),
                _ => write!(f, "FindCoordinator {}", r.error),
            },
            Response::JoinGroup(r) => {
                write!(f, "JoinGroup {} generation={} member={}", r.error, r.generation, r.member_id)?;
                if !r.members.is_empty() {
                    write!(f, " (leader of {} member(s))", r.members.len())?;
                }
                Ok(())
            }
            Response::SyncGroup(r) => write!(f, "SyncGroup {} assignment={}", r.error, r.assignment),
            Response::Heartbeat(r) => write!(f, "Heartbeat {}", r.error),
            Response::LeaveGroup(r) => write!(f, "LeaveGroup {}", r.error),
            Response::OffsetCommit(r) => write!(f, "OffsetCommit {}", r.error),
            Response::OffsetFetch(r) => {
                write!(f, "OffsetFetch {}", r.error)?;
                for (tp, offset) in &r.offsets {
                    write!(f, " {tp}={offset}")?;
                }
                Ok(())
            }
            Response::AddPartitionsToTxn(r) => {
                write!(f, "AddPartitionsToTxn {}", r.error)
            }
            Response::AddOffsetsToTxn(r) => write!(f, "AddOffsetsToTxn {}", r.error),
            Response::TxnOffsetCommit(r) => write!(f, "TxnOffsetCommit {}", r.error),
            Response::EndTxn(r) => write!(f, "EndTxn {}", r.error),
            Response::WriteTxnMarkers(r) => write!(f, "WriteTxnMarkers {} {}", r.partition, r.error),
        }
    }
}

impl fmt::Display for Message {
    /// The trace records this line for every message sent (`to_string()`). Written piece by piece
    /// into a `String`, the line reallocated each time it outgrew its buffer; gathered on the stack
    /// first, it reaches the `String` in one piece and is allocated once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let mut line = LineBuffer { out: f, buf: [0; LineBuffer::CAPACITY], len: 0 };
        match self {
            Message::Request { body, .. } => write!(line, "{body}")?,
            Message::Response { body, .. } => write!(line, "{body} (response)")?,
            Message::Raft(m) => write!(line, "{m}")?,
        }
        line.flush()
    }
}

/// Text gathered on the stack and passed on in pieces of up to [`LineBuffer::CAPACITY`] bytes:
/// the same text as writing straight through, in fewer writes.
struct LineBuffer<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    buf: [u8; LineBuffer::CAPACITY],
    len: usize,
}

impl LineBuffer<'_, '_> {
    const CAPACITY: usize = 256;

    fn flush(&mut self) -> fmt::Result {
        let text = std::str::from_utf8(&self.buf[..self.len]).expect("only whole strings are buffered");
        self.len = 0;
        self.out.write_str(text)
    }
}

impl fmt::Write for LineBuffer<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > Self::CAPACITY {
            self.flush()?;
            if s.len() > Self::CAPACITY {
                return self.out.write_str(s);
            }
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fetch naming `partitions` partitions: its line is about 20 bytes per partition.
    fn fetch(partitions: i32) -> Message {
        let partitions = (0..partitions)
            .map(|p| FetchPartition {
                partition: TopicPartition::new("orders", p),
                fetch_offset: 7,
                current_leader_epoch: 1,
            })
            .collect();
        let body = Request::Fetch(FetchRequest {
            replica: Some((2, 1)),
            max_wait_ms: 500,
            session: Default::default(),
            forgotten: Vec::new(),
            partitions,
            isolation_level: IsolationLevel::default(),
        });
        Message::Request { correlation_id: 1, body }
    }

    #[test]
    fn a_message_line_is_the_same_through_the_stack_buffer() {
        // Short, just over the buffer, and many times its size.
        for partitions in [0, 1, 12, 13, 14, 200] {
            let message = fetch(partitions);
            let Message::Request { body, .. } = &message else { unreachable!() };
            assert_eq!(message.to_string(), body.to_string(), "{partitions} partition(s)");
        }
        assert_eq!(fetch(1).to_string(), "Fetch (replica 2) orders-0@7 e1");
    }
}
