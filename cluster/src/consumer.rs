//! A consumer without a group: it is assigned partitions and keeps its own position in each.
//!
//! The position is the offset of the next record to read. A consumer with no position asks the
//! leader for one with ListOffsets, according to `auto.offset.reset` (the log start for
//! `earliest`, the high watermark for `latest`). It then fetches from its position; the leader
//! returns only records below the high watermark, so a consumer never sees a record that could
//! still be lost in a failover. If its position has fallen out of the log (retention deleted it:
//! OFFSET_OUT_OF_RANGE), the consumer resets again. With `auto.offset.reset=none` it picks no
//! position at all: the partition is not read until the application seeks (Kafka's `poll` throws
//! NoOffsetForPartitionException or OffsetOutOfRangeException instead of guessing).
//!
//! A leader change can take back records the consumer already read: an unclean election (or
//! `acks=1` with one in-sync replica) may elect a replica that never had them, and the new leader
//! writes other records at those offsets. So the position remembers the leader epoch of the last
//! record read (each batch carries the epoch of the leader that wrote it), and when the metadata
//! names a new leader or epoch the consumer checks its position before fetching again (KIP-320):
//! it asks the leader with OffsetsForLeaderEpoch where that epoch ends in its log. An end below
//! the position means the log was truncated under the consumer; it moves its position back to
//! that end, the first offset known to diverge, and reads what the new leader has there (with
//! `auto.offset.reset=none`, `poll` throws LogTruncationException instead, and the partition waits
//! for the application to seek). Kafka: `SubscriptionState` (`FetchPosition` carries the offset,
//! its epoch and the leader it was checked with; `maybeValidatePositionForCurrentLeader`,
//! `maybeCompleteValidation`) and `OffsetFetcher.validatePositionsIfNeeded` (KAFKA-7747, Kafka
//! 2.3; Kafka 4.x consumers still validate this way: `AbstractFetch` sends no `last_fetched_epoch`).
//! Before, a consumer found out only if the new log was shorter than its position
//! (OFFSET_OUT_OF_RANGE), and then reset by `auto.offset.reset`; if the new leader had already
//! written past it, the consumer silently skipped the records that replaced the lost ones.
//!
//! Records are fetched ahead into a buffer; the application takes them with `poll`, and only then
//! are they reported as consumed. Records of a partition the consumer gives up (revoked, lost, or
//! no longer assigned) are dropped from the buffer: `poll` never returns a record of a partition
//! it does not own.
//!
//! With a `group.id` and `subscribe`, the consumer joins a consumer group ([`crate::group::member`])
//! and reads the partitions the group assigns it, starting from the group's committed offsets;
//! it commits its positions with `commit` (or every `auto.commit.interval.ms` with
//! `enable.auto.commit`), and before giving partitions up in a rebalance.

use crate::client_metadata::{ClientMetadata, MetadataSettings};
use crate::config::{ConsumerConfig, OffsetReset};
use crate::connection::Connections;
use crate::effects::{Effects, Input, StateMachine};
use crate::epoch_cache::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};
use crate::error::ErrorCode;
use crate::fetch_session::FetchSessionHandler;
use crate::group::member::{GroupMember, MemberEvent};
use crate::invariant::{debug_check, ensure};
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::{ClientEngine, Timer};
use crate::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, VecDeque};

/// A record handed to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: TopicPartition,
    pub offset: i64,
    pub key: Option<String>,
    /// `None`: a tombstone.
    pub value: Option<String>,
    /// The epoch of the leader that wrote the record's batch (Kafka's `ConsumerRecord.leaderEpoch`).
    pub leader_epoch: Option<i32>,
    /// The record's headers, as the producer set them (`ConsumerRecord.headers()`).
    pub headers: Vec<crate::record::Header>,
}

/// One partition of Kafka's `LogTruncationException`: the consumer read up to `fetch_offset` in
/// leader epoch `fetch_epoch`, and the log now diverges from `divergent` (offset, epoch), or from
/// an unknown point if the leader did not know the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogTruncation {
    pub partition: TopicPartition,
    pub fetch_offset: i64,
    pub fetch_epoch: i32,
    pub divergent: Option<(i64, i32)>,
}

/// What `poll` throws instead of returning records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollError {
    /// `auto.offset.reset=none` and the log was truncated below the position (KIP-320): the
    /// consumer does not guess where to go on; the application must seek.
    LogTruncation(Vec<LogTruncation>),
    /// The group coordinator answered with an error the Java consumer never retries
    /// (FENCED_INSTANCE_ID, INVALID_SESSION_TIMEOUT, ...): the consumer is out of its group for
    /// good and every `poll` throws it.
    Fatal(ErrorCode),
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PollError::Fatal(error) => write!(f, "{error}, a fatal error"),
            PollError::LogTruncation(truncations) => {
                write!(f, "LogTruncationException: truncated partitions detected with divergent offsets {{")?;
                for (i, t) in truncations.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    match t.divergent {
                        Some((offset, epoch)) => write!(f, "{sep}{}={offset} (epoch {epoch})", t.partition)?,
                        None => write!(f, "{sep}{}=unknown", t.partition)?,
                    }
                }
                write!(f, "}}")
            }
        }
    }
}

/// A position the consumer asked the leader to confirm (Kafka's `FetchPosition`): the offset,
/// the epoch of the record before it, and the leader and epoch it asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ValidatedPosition {
    offset: i64,
    offset_epoch: i32,
    leader: (BrokerId, i32),
}

#[derive(Clone, Debug, Default)]
struct PartitionState {
    /// The next offset to fetch. The application's position is behind it by the records
    /// buffered for the partition.
    position: Option<i64>,
    /// The leader epoch of the record just before `position` (Kafka's `FetchPosition.offsetEpoch`):
    /// None if the consumer has not read one since the position was set (a seek, a reset, a
    /// committed offset), and then there is nothing to validate.
    position_epoch: Option<i32>,
    /// The same for the application's position: the epoch of the last record `poll` returned.
    /// It equals `position_epoch` whenever nothing of the partition is buffered.
    consumed_epoch: Option<i32>,
    /// The leader and epoch the position was last checked with (`FetchPosition.currentLeader`).
    current_leader: Option<(BrokerId, i32)>,
    /// The leader changed since the position was read: confirm it with OffsetsForLeaderEpoch
    /// before fetching (Kafka's `AWAIT_VALIDATION`).
    awaiting_validation: bool,
    /// Waiting for the group's committed offset before reading.
    awaiting_committed: bool,
    /// Waiting for a ListOffsets answer.
    resetting: bool,
    /// Do not fetch before this time (after an error).
    backoff_until: SimTime,
    /// The end the last fetch answer reported: the high watermark, or under read_committed the
    /// last stable offset (what `Consumer.currentLag` measures from).
    fetched_end: Option<i64>,
    /// `currentLag` found no end to measure from and asked for it (`SubscriptionState.
    /// requestPartitionEndOffset`): a ListOffsets for the latest offset is due or on its way.
    lag_end_wanted: bool,
    /// `seekToBeginning`/`seekToEnd`: the position to look up with ListOffsets, whatever
    /// `auto.offset.reset` says (Kafka's `SubscriptionState.requestOffsetReset(tp, strategy)`).
    reset_to: Option<OffsetReset>,
    /// Where the last ListOffsets reset put the position (for `seekToBeginning`: the log start).
    reset_offset: Option<i64>,
    /// `endOffsets` was asked for and not answered yet.
    end_wanted: bool,
    /// Its answer: the partition's end (the high watermark) when the leader answered.
    end_offset: Option<i64>,
}

impl PartitionState {
    /// Move the position to `offset` (None: no position), known to follow a record of leader
    /// epoch `epoch` (None: unknown). Nothing buffered may remain for the partition. Kafka's
    /// `seekValidated`: the position counts as checked with the current leader.
    fn set_position(&mut self, offset: Option<i64>, epoch: Option<i32>) {
        self.position = offset;
        self.position_epoch = epoch;
        self.consumed_epoch = epoch;
        self.awaiting_validation = false;
    }
}

/// A batch's leader epoch as the consumer keeps it (Kafka's `CompletedFetch.maybeLeaderEpoch`:
/// a batch without one, -1, leaves the position without an epoch).
fn batch_epoch(leader_epoch: i32) -> Option<i32> {
    (leader_epoch >= 0).then_some(leader_epoch)
}

#[derive(Clone, Debug)]
enum Outstanding {
    /// A fetch, with the offset it asked for in each partition: the answer counts only for a
    /// partition whose position is still that offset.
    Fetch {
        broker: BrokerId,
        offsets: BTreeMap<TopicPartition, i64>,
    },
    ListOffsets {
        broker: BrokerId,
        partitions: Vec<TopicPartition>,
    },
    /// `endOffsets(partitions)`: ListOffsets for the latest offset, `read_uncommitted`; or, with
    /// `for_lag`, the lookup `currentLag` starts, under the consumer's own isolation level.
    EndOffsets {
        broker: BrokerId,
        partitions: Vec<TopicPartition>,
        for_lag: bool,
    },
    /// A closing consumer's fetch that closes its session with the broker.
    CloseSession {
        broker: BrokerId,
    },
    /// OffsetsForLeaderEpoch, with the position each partition asked about: the answer counts only
    /// for a partition whose position is still that one.
    Validate {
        broker: BrokerId,
        positions: BTreeMap<TopicPartition, ValidatedPosition>,
    },
}

/// A client node can run a producer and consumers side by side; their correlation ids live in
/// different ranges so each response finds its engine. Consumer engine `k` of a node (a Streams
/// thread's main and restore consumers, a Connect worker's consumer per sink task: Kafka's
/// separate `KafkaConsumer` instances, each with its own connections) numbers its requests from
/// `CONSUMER_CORRELATION_BASE + k * CONSUMER_ENGINE_SPAN`.
pub const CONSUMER_CORRELATION_BASE: u64 = 1 << 40;

/// The width of one consumer engine's correlation-id range.
pub const CONSUMER_ENGINE_SPAN: u64 = 1 << 44;

/// How many consumer engines one client node can run: their ranges stay below the admin range
/// (`crate::client::ADMIN_CORRELATION_BASE`, `1 << 48`).
pub const MAX_CONSUMER_ENGINES: usize = 15;

/// Which consumer engine of its node sent a request, by the request's correlation id; `None`
/// for the producer's range and the admin range above the consumers'.
pub fn consumer_engine_of(correlation_id: u64) -> Option<usize> {
    let k = correlation_id.checked_sub(CONSUMER_CORRELATION_BASE)? / CONSUMER_ENGINE_SPAN;
    (k < MAX_CONSUMER_ENGINES as u64).then_some(k as usize)
}

/// Stop fetching ahead once this many records are buffered.
const MAX_BUFFERED_RECORDS: usize = 1000;

/// How long `commitSync()` keeps retrying (Java's `default.api.timeout.ms`, 60 s by default).
const DEFAULT_API_TIMEOUT_MS: u64 = 60_000;

/// An application's commit waiting to be (re)sent: no coordinator yet, or its last attempt failed
/// with a retriable error.
#[derive(Clone, Debug)]
struct CommitRetry {
    id: u64,
    deadline: SimTime,
    retry_at: SimTime,
    /// The offsets the application named (`commitSync(offsets)`); `None`: the positions at each
    /// attempt (`commitSync()`).
    offsets: Option<Vec<(TopicPartition, i64)>>,
}

/// The OffsetCommit errors `commitSync()` retries (Java's `ConsumerCoordinator.commitOffsetsSync`
/// loops while `future.isRetriable()`: the coordinator moved, is loading, or did not answer).
fn commit_retriable(error: ErrorCode) -> bool {
    matches!(
        error,
        ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::RequestTimedOut
            | ErrorCode::NetworkException
    )
}

pub struct Consumer {
    config: ConsumerConfig,
    metadata: ClientMetadata,
    assignment: BTreeMap<TopicPartition, PartitionState>,
    /// Topics whose every partition to take as soon as the metadata names them.
    wanted_topics: Vec<String>,
    buffer: VecDeque<ConsumedRecord>,
    outstanding: BTreeMap<u64, Outstanding>,
    /// The fetch session with each broker (KIP-227; `AbstractFetch.sessionHandlers`).
    fetch_sessions: BTreeMap<BrokerId, FetchSessionHandler>,
    next_correlation: u64,
    client_id: String,
    member: Option<GroupMember>,
    /// Commit outcomes the application has not collected yet: (commit id, error).
    commit_outcomes: Vec<(u64, ErrorCode)>,
    /// Commit id -> correlation of the OffsetCommit carrying it.
    next_commit_id: u64,
    commits_in_flight: Vec<u64>,
    /// When each application commit gives up (commit id -> deadline).
    commit_deadlines: BTreeMap<u64, SimTime>,
    /// The application commit waiting to be sent again, if any.
    commit_retry: Option<CommitRetry>,
    connections: Connections,
    /// Truncations found with `auto.offset.reset=none` that the next `poll` throws.
    log_truncations: Vec<LogTruncation>,
    /// The application closed the consumer: what is left to do before the process exits.
    closing: Option<Closing>,
    /// The application has a rebalance listener that must see revocations before the member
    /// rejoins (see [`Consumer::listen_for_revocations`]).
    revocation_listener: bool,
    /// Partitions revoked that the listener has not handled yet.
    revoked_unhandled: Vec<TopicPartition>,
    /// The offsets of application commits that named them, until their outcome.
    named_offsets: BTreeMap<u64, Vec<(TopicPartition, i64)>>,
    /// Which consumer engine of its node this is (see [`CONSUMER_ENGINE_SPAN`]).
    engine: usize,
    /// An `endOffsets` answer came that the application has not been woken for.
    end_offsets_answered: bool,
}

/// How long `KafkaConsumer.close()` waits for its last commit and LeaveGroup (Java's
/// `DEFAULT_CLOSE_TIMEOUT_MS`, 30 s).
const CLOSE_TIMEOUT_MS: u64 = 30_000;

/// A consumer on its way out (`KafkaConsumer.close()`), in Java's order
/// (`ConsumerCoordinator.close`, then `AbstractCoordinator.close`): the auto-commit of every
/// position, waited for; then the partitions are given up and a dynamic member sends LeaveGroup
/// (a static one sends nothing: its partitions wait for its session timeout, KIP-345); then the
/// requests still out to the coordinator are waited for; then the process exits. The close
/// timeout bounds all of it.
#[derive(Clone, Copy, Debug)]
struct Closing {
    deadline: SimTime,
    /// The partitions were given up and LeaveGroup sent (if dynamic).
    left: bool,
    /// The fetch sessions were closed (`Fetcher.close`), after the group was left.
    sessions_closed: bool,
    done: bool,
}

impl Consumer {
    pub fn new(config: ConsumerConfig, bootstrap: Vec<BrokerId>, client_id: &str) -> Self {
        let settings = MetadataSettings {
            max_age_ms: config.metadata_max_age_ms,
            request_timeout_ms: config.request_timeout_ms,
            reconnect_backoff: config.reconnect_backoff,
            retry_backoff_ms: config.retry_backoff_ms,
            // `retry.backoff.max.ms` is not a consumer setting in ksim yet: Kafka's default
            // (`CommonClientConfigs.DEFAULT_RETRY_BACKOFF_MAX_MS`).
            retry_backoff_max_ms: 1_000,
        };
        let connections = Connections::new(ClientEngine::Consumer, config.connection_setup_timeout);
        Consumer {
            connections,
            client_id: client_id.to_string(),
            member: None,
            commit_outcomes: Vec::new(),
            next_commit_id: 1,
            commits_in_flight: Vec::new(),
            commit_deadlines: BTreeMap::new(),
            commit_retry: None,
            revocation_listener: false,
            revoked_unhandled: Vec::new(),
            named_offsets: BTreeMap::new(),
            log_truncations: Vec::new(),
            closing: None,
            config,
            metadata: ClientMetadata::new(bootstrap, settings, Timer::ConsumerWakeup),
            assignment: BTreeMap::new(),
            wanted_topics: Vec::new(),
            buffer: VecDeque::new(),
            outstanding: BTreeMap::new(),
            fetch_sessions: BTreeMap::new(),
            next_correlation: CONSUMER_CORRELATION_BASE,
            engine: 0,
            end_offsets_answered: false,
        }
    }

    /// Make this engine `k` of its node: its requests take that engine's correlation ids.
    pub fn as_engine(mut self, k: usize) -> Self {
        assert!(k < MAX_CONSUMER_ENGINES, "consumer engine {k}: at most {MAX_CONSUMER_ENGINES} per node");
        self.engine = k;
        self.next_correlation = CONSUMER_CORRELATION_BASE + k as u64 * CONSUMER_ENGINE_SPAN;
        self
    }

    /// The application's `close()` is over: the consumer would have ended its process.
    pub fn is_closed(&self) -> bool {
        self.closing.is_some_and(|c| c.done)
    }

    /// The correlation id its next request will take.
    pub fn next_correlation_id(&self) -> u64 {
        self.next_correlation
    }

    /// Number requests from `next` on (a consumer taking a closed one's engine number).
    pub fn counting_from(mut self, next: u64) -> Self {
        self.next_correlation = self.next_correlation.max(next);
        self
    }

    /// The consumer's `client.id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Take these partitions (replacing any previous assignment).
    pub fn assign(&mut self, partitions: Vec<TopicPartition>, now: SimTime, fx: &mut Effects) {
        self.assignment.retain(|tp, _| partitions.contains(tp));
        self.buffer.retain(|r| partitions.contains(&r.partition));
        for tp in partitions {
            self.metadata.add_interest(&tp.topic);
            self.assignment.entry(tp).or_default();
        }
        self.drive(now, fx);
    }

    /// Join the consumer group (`group.id`) and read whatever partitions of these topics it
    /// assigns. Returns false if no `group.id` is configured.
    pub fn subscribe(&mut self, topics: &[String], now: SimTime, fx: &mut Effects) -> bool {
        let Some(group_id) = self.config.group_id.clone() else { return false };
        for topic in topics {
            self.metadata.add_interest(topic);
        }
        let member =
            self.member.get_or_insert_with(|| GroupMember::new(group_id, self.client_id.clone(), self.config.clone()));
        member.subscribe(topics.to_vec(), now);
        fx.set_timer(Timer::GroupHeartbeat, now.plus_ms(self.config.heartbeat_interval_ms));
        if self.config.enable_auto_commit {
            fx.set_timer(Timer::AutoCommit, now.plus_ms(self.config.auto_commit_interval_ms));
        }
        fx.set_timer(Timer::PollIntervalCheck, now.plus_ms(self.config.max_poll_interval_ms + 1));
        self.drive(now, fx);
        true
    }

    /// Join a Connect worker group (`WorkerGroupMember`): this engine's group membership is a
    /// worker's, protocol type `connect`; it reads no partitions. Its `session.timeout.ms`,
    /// `heartbeat.interval.ms` and rebalance timeout (`max.poll.interval.ms` here:
    /// `rebalance.timeout.ms`) are the worker's.
    pub fn join_worker_group(
        &mut self,
        worker: crate::connect::worker_coordinator::WorkerCoordinator,
        now: SimTime,
        fx: &mut Effects,
    ) -> bool {
        let Some(group_id) = self.config.group_id.clone() else { return false };
        self.member = Some(GroupMember::new_worker(group_id, self.client_id.clone(), self.config.clone(), worker));
        fx.set_timer(Timer::GroupHeartbeat, now.plus_ms(self.config.heartbeat_interval_ms));
        fx.set_timer(Timer::PollIntervalCheck, now.plus_ms(self.config.max_poll_interval_ms + 1));
        self.drive(now, fx);
        true
    }

    pub fn member(&self) -> Option<&GroupMember> {
        self.member.as_ref()
    }

    /// The error that put this consumer's group membership out for good (Java's `poll` throws it:
    /// FencedInstanceIdException, InvalidSessionTimeoutException), if one did.
    pub fn fatal_error(&self) -> Option<ErrorCode> {
        self.member.as_ref().and_then(GroupMember::fatal_error)
    }

    /// Commit the positions of every assigned partition (what `commitSync()` commits). Returns
    /// an id to find the outcome with, or None if there is nothing to commit.
    ///
    /// Like Java's `ConsumerCoordinator.commitOffsetsSync`, a commit waits for a coordinator and
    /// retries retriable errors (NOT_COORDINATOR and the like) until `default.api.timeout.ms`;
    /// each attempt carries the positions at that time. Before, a commit with no coordinator
    /// known reported success without sending anything, and one that heard NOT_COORDINATOR was
    /// never retried, so a member with nothing more to read never committed again (issue 12).
    pub fn commit(&mut self, now: SimTime, fx: &mut Effects) -> Option<u64> {
        if self.closing.is_some() {
            return None; // the application closed the consumer: it commits no more
        }
        let id = self.commit_positions(now, fx);
        self.track_connections(now, fx);
        id
    }

    /// Commit these offsets (Java's `commitSync(Map<TopicPartition, OffsetAndMetadata>)`: what
    /// a Kafka Streams thread commits, the consumed offsets of its tasks, not the positions of
    /// what `poll` returned). Same retries and outcome as [`Consumer::commit`].
    pub fn commit_offsets(
        &mut self,
        now: SimTime,
        offsets: Vec<(TopicPartition, i64)>,
        fx: &mut Effects,
    ) -> Option<u64> {
        if self.closing.is_some() {
            return None;
        }
        let id = self.commit_explicit(now, Some(offsets), fx);
        self.track_connections(now, fx);
        id
    }

    fn commit_positions(&mut self, now: SimTime, fx: &mut Effects) -> Option<u64> {
        self.commit_explicit(now, None, fx)
    }

    fn commit_explicit(
        &mut self,
        now: SimTime,
        named: Option<Vec<(TopicPartition, i64)>>,
        fx: &mut Effects,
    ) -> Option<u64> {
        let offsets = named.clone().unwrap_or_else(|| self.positions());
        if offsets.is_empty() || self.commit_retry.is_some() {
            return None;
        }
        let member = self.member.as_mut()?;
        let id = self.next_commit_id;
        self.next_commit_id += 1;
        if let Some(error) = member.refuse_commit(fx) {
            self.commit_outcomes.push((id, error));
            return Some(id);
        }
        self.commit_deadlines.insert(id, now.plus_ms(DEFAULT_API_TIMEOUT_MS));
        if let Some(named) = &named {
            self.named_offsets.insert(id, named.clone());
        }
        if member.commit(now, offsets, &mut self.next_correlation, fx) {
            self.commits_in_flight.push(id);
        } else {
            let deadline = now.plus_ms(DEFAULT_API_TIMEOUT_MS);
            self.commit_retry = Some(CommitRetry { id, deadline, retry_at: now, offsets: named });
        }
        Some(id)
    }

    /// The application has a rebalance listener whose `onPartitionsRevoked` must run before the
    /// member rejoins (a Kafka Streams thread: `StreamsRebalanceListener` calls
    /// `TaskManager.handleRevocation`, which commits the revoked tasks). The member then waits
    /// for [`Consumer::revocation_handled`] before its JoinGroup.
    pub fn listen_for_revocations(&mut self) {
        self.revocation_listener = true;
    }

    /// Partitions revoked since the last call that the listener has to handle.
    pub fn revoked_unhandled(&self) -> &[TopicPartition] {
        &self.revoked_unhandled
    }

    /// The listener returned: the member may rejoin.
    pub fn revocation_handled(&mut self, now: SimTime, fx: &mut Effects) {
        self.revoked_unhandled.clear();
        if let Some(member) = self.member.as_mut() {
            member.listener_busy = false;
        }
        self.drive(now, fx);
    }

    /// Outcomes of commits since the last call: (commit id, error).
    pub fn take_commit_outcomes(&mut self) -> Vec<(u64, ErrorCode)> {
        std::mem::take(&mut self.commit_outcomes)
    }

    /// A partition with nothing buffered: the application's position is the fetch position.
    fn sync_consumed_epochs(&mut self) {
        let buffer = &self.buffer;
        for (tp, state) in self.assignment.iter_mut() {
            if !buffer.iter().any(|r| &r.partition == tp) {
                state.consumed_epoch = state.position_epoch;
            }
        }
    }

    /// Every position is a valid offset, never negative (Kafka's `SubscriptionState` holds a
    /// `FetchPosition` only for a real offset; `KafkaConsumer.seek` rejects a negative one). A
    /// position awaiting validation has an epoch to validate and nothing buffered (Kafka returns
    /// no records of a partition in `AWAIT_VALIDATION`); with nothing buffered, the application's
    /// position and the fetch position follow the same record, so they have the same epoch.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (tp, state) in &self.assignment {
            if let Some(p) = state.position {
                ensure(p >= 0, || format!("{tp}: position {p} is negative"))?;
            }
            let buffered = self.buffer.iter().any(|r| &r.partition == tp);
            if state.awaiting_validation {
                ensure(state.position.is_some() && state.position_epoch.is_some(), || {
                    format!("{tp}: awaiting validation without a position and its epoch")
                })?;
                ensure(!buffered, || format!("{tp}: records buffered while the position awaits validation"))?;
            }
            if !buffered {
                ensure(state.consumed_epoch == state.position_epoch, || {
                    format!(
                        "{tp}: nothing buffered, yet the application's position follows epoch {:?} and the fetch position epoch {:?}",
                        state.consumed_epoch, state.position_epoch
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The application's positions: the next offset it will be given, per assigned partition.
    /// What a commit commits, so a position awaiting validation is left out: it may lie past a
    /// truncation (Kafka's `SubscriptionState.allConsumed` takes only valid positions).
    /// Whether it reads `read_committed` (only below the last stable offset).
    pub fn reads_committed(&self) -> bool {
        self.config.isolation_level == IsolationLevel::ReadCommitted
    }

    pub fn positions(&self) -> Vec<(TopicPartition, i64)> {
        self.assignment
            .iter()
            .filter(|(_, state)| !state.awaiting_validation)
            .filter_map(|(tp, _)| self.position(tp).map(|p| (tp.clone(), p)))
            .collect()
    }

    /// The application closes the consumer (see [`Closing`]); the consumer ends the process
    /// with [`Effects::exit`] once it is done.
    pub fn close(&mut self, now: SimTime, fx: &mut Effects) {
        if self.closing.is_some() {
            return;
        }
        let deadline = now.plus_ms(CLOSE_TIMEOUT_MS);
        self.closing = Some(Closing { deadline, left: false, sessions_closed: false, done: false });
        fx.set_timer(Timer::ConsumerCloseTimeout, deadline);
        // ConsumerCoordinator.close -> maybeAutoCommitOffsetsSync.
        let in_group = self.member.as_ref().is_some_and(|m| m.phase == crate::group::member::Phase::Stable);
        if self.config.enable_auto_commit && in_group {
            self.commit_positions(now, fx);
        }
        self.track_connections(now, fx);
        self.advance_close(now, fx);
    }

    /// `Fetcher.close`: each broker the consumer has a fetch session with gets a fetch with no
    /// partitions, the session's id and the final epoch, so the broker frees the session's slot
    /// at once (`AbstractFetch.prepareCloseFetchSessionRequests`). A broker the consumer cannot
    /// reach now is skipped; its session idles out of the cache.
    fn close_fetch_sessions(&mut self, now: SimTime, fx: &mut Effects) {
        let brokers: Vec<BrokerId> = self.fetch_sessions.keys().copied().collect();
        for broker in brokers {
            if self.metadata.blackout_until(broker, now).is_some() {
                continue;
            }
            let Some(session) = self.fetch_sessions.get_mut(&broker).and_then(|h| h.close()) else { continue };
            let id = self.next_correlation();
            self.outstanding.insert(id, Outstanding::CloseSession { broker });
            fx.set_timer(Timer::RequestTimeout(id), now.plus_ms(self.config.request_timeout_ms));
            let body = Request::Fetch(FetchRequest {
                replica: None,
                max_wait_ms: self.config.fetch_max_wait_ms,
                session,
                partitions: Vec::new(),
                forgotten: Vec::new(),
                isolation_level: self.config.isolation_level,
            });
            fx.send(NodeId::Broker(broker), Message::Request { correlation_id: id, body });
        }
    }

    /// Requests just sent to a broker with no connection start its setup timer.
    fn track_connections(&mut self, now: SimTime, fx: &mut Effects) {
        let engine = self.engine;
        self.connections.track_sends(now, |id| consumer_engine_of(id) == Some(engine), fx);
    }

    /// Take the next step of a close whose previous one is done (or whose time is up).
    fn advance_close(&mut self, now: SimTime, fx: &mut Effects) {
        let Some(mut closing) = self.closing else { return };
        if closing.done {
            return;
        }
        let timed_out = now >= closing.deadline;
        let committing = !self.commits_in_flight.is_empty()
            || self.commit_retry.is_some()
            || self.member.as_ref().is_some_and(|m| m.commit_in_flight());
        if !closing.left && (timed_out || !committing) {
            closing.left = true;
            if let Some(member) = self.member.as_mut() {
                let events = member.leave(now, &mut self.next_correlation, fx);
                self.on_member_events(now, events, fx);
            }
        }
        let waiting = self.member.as_ref().is_some_and(|m| m.requests_in_flight());
        if closing.left && !closing.sessions_closed && !timed_out && !waiting {
            closing.sessions_closed = true;
            self.close_fetch_sessions(now, fx);
        }
        let closing_sessions = self.outstanding.values().any(|o| matches!(o, Outstanding::CloseSession { .. }));
        if closing.left && (timed_out || (closing.sessions_closed && !closing_sessions)) {
            closing.done = true;
            fx.cancel_timer(Timer::ConsumerCloseTimeout);
            fx.exit();
        }
        self.closing = Some(closing);
    }

    fn on_member_events(&mut self, now: SimTime, events: Vec<MemberEvent>, fx: &mut Effects) {
        for event in events {
            match event {
                MemberEvent::Assigned(partitions) => {
                    for tp in &partitions {
                        let state = self.assignment.entry(tp.clone()).or_default();
                        state.set_position(None, None);
                        state.awaiting_committed = true;
                    }
                    if let Some(member) = self.member.as_mut() {
                        member.fetch_offsets(now, partitions, &mut self.next_correlation, fx);
                    }
                }
                MemberEvent::CommittedOffsets(offsets) => {
                    for (tp, offset) in offsets {
                        let Some(state) = self.assignment.get_mut(&tp) else { continue };
                        state.awaiting_committed = false;
                        if offset >= 0 {
                            // ksim commits no leader epoch with an offset (Kafka's OffsetCommit
                            // `committed_leader_epoch`), so a committed position is not validated
                            // until the consumer has read a record from it.
                            state.set_position(Some(offset), None);
                            fx.note(Note::PositionReset {
                                partition: tp,
                                offset,
                                reason: "the group's committed offset".into(),
                                engine: self.engine as u8,
                            });
                        }
                    }
                }
                MemberEvent::Revoked { partitions, lost } => {
                    if !lost && self.revocation_listener && self.closing.is_none() {
                        // The listener commits what it processed of these before the member
                        // rejoins (`onPartitionsRevoked` runs inside `onJoinPrepare`).
                        self.revoked_unhandled.extend(partitions.iter().cloned());
                        if let Some(member) = self.member.as_mut() {
                            member.listener_busy = true;
                        }
                    }
                    // (A closing consumer committed everything already: ConsumerCoordinator.close.)
                    if !lost && self.config.enable_auto_commit && self.closing.is_none() {
                        // Kafka commits before giving partitions up (onPartitionsRevoked).
                        let offsets: Vec<(TopicPartition, i64)> =
                            self.positions().into_iter().filter(|(tp, _)| partitions.contains(tp)).collect();
                        if let Some(member) = self.member.as_mut() {
                            member.commit(now, offsets, &mut self.next_correlation, fx);
                        }
                    }
                    for tp in &partitions {
                        self.assignment.remove(tp);
                    }
                    self.buffer.retain(|r| !partitions.contains(&r.partition));
                }
                MemberEvent::Committed { error, .. } => {
                    if !self.commits_in_flight.is_empty() {
                        let id = self.commits_in_flight.remove(0);
                        let deadline = self.commit_deadlines.get(&id).copied().unwrap_or(now);
                        if commit_retriable(error) && now < deadline && self.commit_retry.is_none() {
                            let retry_at = now.plus_ms(self.config.retry_backoff_ms);
                            // Java retries the same offsets: the consumer's own positions only
                            // for a `commitSync()` without them.
                            let offsets = self.named_offsets.get(&id).cloned();
                            self.commit_retry = Some(CommitRetry { id, deadline, retry_at, offsets });
                            fx.set_timer(Timer::ConsumerWakeup, retry_at);
                        } else {
                            self.commit_deadlines.remove(&id);
                            self.named_offsets.remove(&id);
                            self.commit_outcomes.push((id, error));
                        }
                    }
                }
            }
        }
    }

    /// Take every partition of these topics, once the metadata says how many there are.
    pub fn assign_topics(&mut self, topics: &[String], now: SimTime, fx: &mut Effects) {
        for topic in topics {
            self.metadata.add_interest(topic);
            if !self.wanted_topics.contains(topic) {
                self.wanted_topics.push(topic.clone());
            }
        }
        self.drive(now, fx);
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    /// `consumer.groupMetadata()`: what `sendOffsetsToTransaction` sends so the group
    /// coordinator can fence a zombie (KIP-447). None for a consumer outside a group.
    pub fn group_metadata(&self) -> Option<crate::txn::client::GroupMetadata> {
        let m = self.member.as_ref()?;
        Some(crate::txn::client::GroupMetadata {
            group_id: m.group_id().to_string(),
            generation: m.generation(),
            member_id: m.member_id().to_string(),
            group_instance_id: m.instance_id().map(str::to_string),
        })
    }

    /// Go back to the group's committed offsets for every assigned partition, dropping what is
    /// buffered: what an exactly-once application does after it aborts a transaction (Kafka's
    /// `examples/ExactlyOnceMessageProcessor.resetToLastCommittedPositions`: `committed()`, then
    /// `seek`), so the aborted input is read again.
    pub fn rewind_to_committed(&mut self, now: SimTime, fx: &mut Effects) {
        let partitions: Vec<TopicPartition> = self.assignment.keys().cloned().collect();
        let Some(member) = self.member.as_mut() else { return };
        if partitions.is_empty() {
            return;
        }
        self.buffer.clear();
        for state in self.assignment.values_mut() {
            state.set_position(None, None);
            state.awaiting_committed = true;
            state.resetting = false;
        }
        member.fetch_offsets(now, partitions, &mut self.next_correlation, fx);
        self.drive(now, fx);
    }

    /// Move the position: the next poll returns records from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64, now: SimTime, fx: &mut Effects) {
        self.buffer.retain(|r| &r.partition != tp);
        if let Some(state) = self.assignment.get_mut(tp) {
            state.set_position(Some(offset), None);
            state.resetting = false;
            state.reset_to = None;
        }
        self.drive(now, fx);
    }

    /// `seekToBeginning(partitions)`: each moves to its log start offset, looked up with
    /// ListOffsets on the next fetch round, whatever `auto.offset.reset` says.
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition], now: SimTime, fx: &mut Effects) {
        self.buffer.retain(|r| !partitions.contains(&r.partition));
        for tp in partitions {
            if let Some(state) = self.assignment.get_mut(tp) {
                state.set_position(None, None);
                state.reset_to = Some(OffsetReset::Earliest);
                state.resetting = false;
                state.fetched_end = None;
                state.reset_offset = None;
            }
        }
        self.drive(now, fx);
    }

    /// `endOffsets(partitions)`: look each partition's end up (ListOffsets, latest,
    /// `read_uncommitted`); [`Consumer::end_offset`] has the answer once it came.
    pub fn request_end_offsets(&mut self, partitions: &[TopicPartition], now: SimTime, fx: &mut Effects) {
        for tp in partitions {
            if let Some(state) = self.assignment.get_mut(tp) {
                state.end_wanted = true;
                state.end_offset = None;
            }
        }
        self.drive(now, fx);
    }

    /// Whether an `endOffsets` answer came since the last call: a blocking `endOffsets` call
    /// returns then, so the application waiting on it wakes.
    pub fn take_end_offsets_answered(&mut self) -> bool {
        std::mem::take(&mut self.end_offsets_answered)
    }

    /// The answer to the last [`Consumer::request_end_offsets`] of the partition.
    pub fn end_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment.get(tp)?.end_offset
    }

    /// Where the partition's last reset (`auto.offset.reset`, `seekToBeginning`) put its position.
    pub fn reset_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment.get(tp)?.reset_offset
    }

    /// `Consumer.currentLag`: how far the application's position is behind the end the last
    /// fetch answer reported; `None` until a fetch of the partition has been answered. Records
    /// fetched but not yet polled count: Kafka's `SubscriptionState.partitionLag` measures from
    /// the position of the next record `poll` returns, which a fetch moves only once its
    /// records are handed out. (A Streams task that joins a table must not take the table's
    /// partition for caught up while its next record sits in the consumer's buffer.)
    pub fn current_lag(&self, tp: &TopicPartition) -> Option<i64> {
        let state = self.assignment.get(tp)?;
        Some((state.fetched_end? - self.position(tp)?).max(0))
    }

    /// `KafkaConsumer.currentLag` as the application calls it: [`Consumer::current_lag`], and
    /// when the end is not known, a ListOffsets for it sent in the background, so that a later
    /// call can answer (KAFKA-13008: an incremental fetch session does not return a partition
    /// whose high watermark has not moved, so after a rebalance the end may never come by fetch).
    pub fn current_lag_or_ask(&mut self, tp: &TopicPartition, now: SimTime, fx: &mut Effects) -> Option<i64> {
        let lag = self.current_lag(tp);
        if lag.is_none() {
            if let Some(state) = self.assignment.get_mut(tp) {
                if state.fetched_end.is_none() && !state.lag_end_wanted {
                    state.lag_end_wanted = true;
                    self.drive(now, fx);
                }
            }
        }
        lag
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        // The application's position is past what it has polled, not past what is buffered.
        self.buffer.iter().find(|r| &r.partition == tp).map(|r| r.offset).or(self.assignment.get(tp)?.position)
    }

    /// Assigned partitions with no position that the consumer will not choose one for
    /// (`auto.offset.reset=none`, with no committed offset, after OFFSET_OUT_OF_RANGE, or after a
    /// log truncation). Kafka's `poll` throws NoOffsetForPartitionException (or
    /// OffsetOutOfRangeException, or LogTruncationException, and again at every poll until the
    /// application seeks); here the application asks, and must `seek` before they are read.
    pub fn partitions_without_offset(&self) -> Vec<TopicPartition> {
        if self.config.auto_offset_reset != OffsetReset::None {
            return Vec::new();
        }
        self.assignment
            .iter()
            .filter(|(_, s)| s.position.is_none() && s.reset_to.is_none() && !s.awaiting_committed && !s.resetting)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Records waiting for the application's next poll (none once it closed the consumer: the
    /// world wakes the application while this is non-zero).
    pub fn buffered(&self) -> usize {
        if self.closing.is_some() {
            0
        } else {
            self.buffer.len()
        }
    }

    /// A truncation waits to be thrown by the next `poll`.
    pub fn has_poll_error(&self) -> bool {
        !self.log_truncations.is_empty()
    }

    /// Hand up to `max.poll.records` buffered records to the application, or throw the log
    /// truncations found since the last poll (Kafka's `poll` throws LogTruncationException from
    /// `updateFetchPositions`, before it returns any record).
    pub fn poll(&mut self, now: SimTime, fx: &mut Effects) -> Result<Vec<ConsumedRecord>, PollError> {
        if self.closing.is_some() {
            // Closed: the application reads no more. (The buffer stays: the positions a closing
            // consumer commits are what the application was handed, not what was fetched.)
            return Ok(Vec::new());
        }
        if let Some(member) = self.member.as_mut() {
            let kicked_out = member.kicked_out();
            member.on_poll(now);
            fx.set_timer(Timer::PollIntervalCheck, now.plus_ms(self.config.max_poll_interval_ms + 1));
            if kicked_out {
                // Like Kafka's poll, bring the membership up to date before handing out records:
                // a member that was kicked out loses its partitions here (onPartitionsLost), and
                // their buffered records go with them.
                self.drive_member(now, fx);
                self.track_connections(now, fx);
            }
        }
        if !self.log_truncations.is_empty() {
            let truncations = std::mem::take(&mut self.log_truncations);
            self.drive(now, fx);
            return Err(PollError::LogTruncation(truncations));
        }
        // Never hand out a record of a partition this consumer no longer owns.
        let assignment = &self.assignment;
        self.buffer.retain(|r| assignment.contains_key(&r.partition));
        let n = self.buffer.len().min(self.config.max_poll_records);
        let records: Vec<ConsumedRecord> = self.buffer.drain(..n).collect();
        for r in &records {
            // The application's position now follows this record (Kafka's `FetchCollector`
            // moves the position with the epoch of the batch it read last).
            if let Some(state) = self.assignment.get_mut(&r.partition) {
                state.consumed_epoch = r.leader_epoch;
            }
            fx.note(Note::Consumed {
                partition: r.partition.clone(),
                offset: r.offset,
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
                engine: self.engine as u8,
            });
        }
        // With nothing of a partition left buffered, the application's position is the fetch
        // position, past any markers or aborted batches the fetch stepped over
        // (`CompletedFetch.nextFetchOffset`, with the epoch of the batch it read last).
        self.sync_consumed_epochs();
        self.drive(now, fx);
        Ok(records)
    }

    fn next_correlation(&mut self) -> u64 {
        let id = self.next_correlation;
        self.next_correlation += 1;
        id
    }

    fn busy(&self, tp: &TopicPartition) -> bool {
        self.outstanding.values().any(|o| match o {
            Outstanding::Fetch { offsets, .. } => offsets.contains_key(tp),
            Outstanding::ListOffsets { partitions, .. } => partitions.contains(tp),
            Outstanding::Validate { positions, .. } => positions.contains_key(tp),
            Outstanding::EndOffsets { .. } | Outstanding::CloseSession { .. } => false,
        })
    }

    /// Whether an `endOffsets` lookup of the partition is on its way.
    fn end_busy(&self, tp: &TopicPartition) -> bool {
        self.outstanding
            .values()
            .any(|o| matches!(o, Outstanding::EndOffsets { partitions, .. } if partitions.contains(tp)))
    }

    fn broker_busy(&self, broker: BrokerId) -> bool {
        self.outstanding.values().any(|o| matches!(o, Outstanding::Fetch { broker: b, .. } if *b == broker))
    }

    /// Let the group member send what it needs, and act on the membership changes it reports.
    fn drive_member(&mut self, now: SimTime, fx: &mut Effects) {
        if let Some(member) = self.member.as_mut() {
            let events = member.drive(now, &self.metadata, &mut self.next_correlation, fx);
            self.on_member_events(now, events, fx);
        }
    }

    fn drive(&mut self, now: SimTime, fx: &mut Effects) {
        let wanted = std::mem::take(&mut self.wanted_topics);
        for topic in wanted {
            match self.metadata.partitions(&topic) {
                Some(partitions) => {
                    for p in partitions {
                        self.assignment.entry(TopicPartition::new(topic.clone(), p.partition)).or_default();
                    }
                }
                None => self.wanted_topics.push(topic),
            }
        }
        self.metadata.maybe_refresh(now, &mut self.next_correlation, fx);
        self.drive_member(now, fx);
        self.retry_commit(now, fx);
        self.validate_positions_on_leader_change();
        let mut resets: BTreeMap<BrokerId, Vec<(TopicPartition, OffsetSpec, i32)>> = BTreeMap::new();
        let mut validations: BTreeMap<BrokerId, BTreeMap<TopicPartition, ValidatedPosition>> = BTreeMap::new();
        let mut fetches: BTreeMap<BrokerId, Vec<FetchPartition>> = BTreeMap::new();
        let mut wakeup: Option<SimTime> = None;
        let buffer_full = self.buffer.len() >= MAX_BUFFERED_RECORDS;
        // Per (broker, for `currentLag`): the partitions whose end to look up.
        type EndLookups = BTreeMap<(BrokerId, bool), Vec<(TopicPartition, OffsetSpec, i32)>>;
        let mut ends: EndLookups = BTreeMap::new();
        for (tp, state) in &self.assignment {
            if !(state.end_wanted || state.lag_end_wanted) || state.backoff_until > now || self.end_busy(tp) {
                continue;
            }
            match self.metadata.leader(tp) {
                Some((leader, epoch)) => {
                    ends.entry((leader, !state.end_wanted)).or_default().push((tp.clone(), OffsetSpec::Latest, epoch))
                }
                None => self.metadata.refresh_needed = true,
            }
        }
        for ((broker, for_lag), partitions) in ends {
            let id = self.next_correlation();
            let names = partitions.iter().map(|(tp, _, _)| tp.clone()).collect();
            self.outstanding.insert(id, Outstanding::EndOffsets { broker, partitions: names, for_lag });
            fx.set_timer(Timer::RequestTimeout(id), now.plus_ms(self.config.request_timeout_ms));
            // Kafka Streams asks with `read_uncommitted`: the last stable offset may lag a
            // committed transaction's marker (KAFKA-10167, `StoreChangelogReader.endOffsetForChangelogs`).
            // `currentLag`'s own lookup asks with the consumer's isolation level.
            let isolation_level = if for_lag { self.config.isolation_level } else { IsolationLevel::ReadUncommitted };
            let body = Request::ListOffsets(ListOffsetsRequest { partitions, isolation_level });
            fx.send(NodeId::Broker(broker), Message::Request { correlation_id: id, body });
        }
        for (tp, state) in &self.assignment {
            if self.busy(tp) || state.awaiting_committed {
                continue;
            }
            let reset = state.reset_to.unwrap_or(self.config.auto_offset_reset);
            if state.position.is_none() && reset == OffsetReset::None {
                // `auto.offset.reset=none`: the consumer picks no position; the application must
                // seek (see `partitions_without_offset`). Nothing is fetched until it does.
                continue;
            }
            if state.backoff_until > now {
                wakeup = Some(wakeup.map_or(state.backoff_until, |w| w.min(state.backoff_until)));
                continue;
            }
            let Some((leader, epoch)) = self.metadata.leader(tp) else {
                self.metadata.refresh_needed = true;
                continue;
            };
            if let Some(until) = self.metadata.blackout_until(leader, now) {
                wakeup = Some(wakeup.map_or(until, |w| w.min(until)));
                continue;
            }
            match state.position {
                Some(offset) if state.awaiting_validation => {
                    let offset_epoch = state.position_epoch.expect("a position awaiting validation has an epoch");
                    let position = ValidatedPosition { offset, offset_epoch, leader: (leader, epoch) };
                    validations.entry(leader).or_default().insert(tp.clone(), position);
                }
                None => {
                    let spec = match reset {
                        OffsetReset::Earliest => OffsetSpec::Earliest,
                        OffsetReset::Latest => OffsetSpec::Latest,
                        OffsetReset::None => unreachable!("auto.offset.reset=none never resets (checked above)"),
                    };
                    resets.entry(leader).or_default().push((tp.clone(), spec, epoch));
                }
                Some(position) if !buffer_full => fetches.entry(leader).or_default().push(FetchPartition {
                    partition: tp.clone(),
                    fetch_offset: position,
                    current_leader_epoch: epoch,
                }),
                Some(_) => {}
            }
        }
        for (broker, partitions) in resets {
            let id = self.next_correlation();
            let names = partitions.iter().map(|(tp, _, _)| tp.clone()).collect();
            self.outstanding.insert(id, Outstanding::ListOffsets { broker, partitions: names });
            for (tp, _, _) in &partitions {
                if let Some(s) = self.assignment.get_mut(tp) {
                    s.resetting = true;
                }
            }
            fx.set_timer(Timer::RequestTimeout(id), now.plus_ms(self.config.request_timeout_ms));
            let body =
                Request::ListOffsets(ListOffsetsRequest { partitions, isolation_level: self.config.isolation_level });
            fx.send(NodeId::Broker(broker), Message::Request { correlation_id: id, body });
        }
        for (broker, positions) in validations {
            let id = self.next_correlation();
            let partitions = positions.iter().map(|(tp, p)| (tp.clone(), p.leader.1, p.offset_epoch)).collect();
            self.outstanding.insert(id, Outstanding::Validate { broker, positions });
            fx.set_timer(Timer::RequestTimeout(id), now.plus_ms(self.config.request_timeout_ms));
            let body = Request::OffsetsForLeaderEpoch(OffsetsForLeaderEpochRequest {
                replica_id: CONSUMER_REPLICA_ID,
                partitions,
            });
            fx.send(NodeId::Broker(broker), Message::Request { correlation_id: id, body });
        }
        // A consumer that closed its fetch sessions fetches no more.
        let sessions_closed = self.closing.is_some_and(|c| c.sessions_closed);
        for (broker, partitions) in fetches {
            if self.broker_busy(broker) || sessions_closed {
                continue;
            }
            let id = self.next_correlation();
            let offsets = partitions.iter().map(|p| (p.partition.clone(), p.fetch_offset)).collect();
            self.outstanding.insert(id, Outstanding::Fetch { broker, offsets });
            let sent = self.fetch_sessions.entry(broker).or_default().build(partitions);
            fx.set_timer(
                Timer::RequestTimeout(id),
                now.plus_ms(self.config.request_timeout_ms + self.config.fetch_max_wait_ms),
            );
            let body = Request::Fetch(FetchRequest {
                replica: None,
                max_wait_ms: self.config.fetch_max_wait_ms,
                session: sent.metadata,
                partitions: sent.partitions,
                forgotten: sent.forgotten,
                isolation_level: self.config.isolation_level,
            });
            fx.send(NodeId::Broker(broker), Message::Request { correlation_id: id, body });
        }
        if let Some(at) = wakeup {
            fx.set_timer(Timer::ConsumerWakeup, at);
        }
        self.metadata.maybe_refresh(now, &mut self.next_correlation, fx);
        self.track_connections(now, fx);
    }

    /// Kafka's `OffsetFetcherUtils.validatePositionsOnMetadataChange` and
    /// `SubscriptionState.maybeValidatePositionForCurrentLeader`: a position last checked with
    /// another leader or leader epoch than the metadata names now must be validated before the
    /// next fetch, if the consumer knows the epoch of the record before it. The position checked
    /// is the application's: records fetched ahead are dropped, as Kafka returns none of a
    /// partition awaiting validation (`FetchCollector`: "no longer fetchable"), and fetched again
    /// once the position is confirmed. A position without an epoch (just set by a seek, a reset
    /// or a committed offset) is simply taken to the new leader. Kafka runs this on every poll
    /// after a metadata update; ksim on every step, which finds the same changes.
    fn validate_positions_on_leader_change(&mut self) {
        for (tp, state) in &mut self.assignment {
            if state.position.is_none() || state.resetting {
                continue;
            }
            let Some(leader) = self.metadata.leader(tp) else { continue };
            if state.current_leader == Some(leader) {
                continue;
            }
            state.current_leader = Some(leader);
            if state.consumed_epoch.is_none() {
                continue;
            }
            if let Some(first) = self.buffer.iter().find(|r| &r.partition == tp) {
                state.position = Some(first.offset);
                self.buffer.retain(|r| &r.partition != tp);
            }
            state.position_epoch = state.consumed_epoch;
            state.awaiting_validation = true;
        }
    }

    /// Send the application's waiting commit again once its backoff passed and a coordinator is
    /// known; give up with REQUEST_TIMED_OUT at its deadline (Java's commitSync TimeoutException).
    fn retry_commit(&mut self, now: SimTime, fx: &mut Effects) {
        let Some(retry) = self.commit_retry.clone() else { return };
        if now >= retry.deadline {
            self.commit_retry = None;
            self.commit_deadlines.remove(&retry.id);
            self.named_offsets.remove(&retry.id);
            self.commit_outcomes.push((retry.id, ErrorCode::RequestTimedOut));
            return;
        }
        if now < retry.retry_at {
            fx.set_timer(Timer::ConsumerWakeup, retry.retry_at);
            return;
        }
        let offsets = retry.offsets.clone().unwrap_or_else(|| self.positions());
        let Some(member) = self.member.as_mut() else { return };
        if member.commit_in_flight() {
            return;
        }
        if offsets.is_empty() {
            // Every partition was revoked meanwhile: nothing is left to commit.
            self.commit_retry = None;
            self.commit_deadlines.remove(&retry.id);
            self.commit_outcomes.push((retry.id, ErrorCode::None));
        } else if member.commit(now, offsets, &mut self.next_correlation, fx) {
            self.commit_retry = None;
            self.commits_in_flight.push(retry.id);
        }
    }

    fn back_off(&mut self, now: SimTime, tp: &TopicPartition, refresh_metadata: bool) {
        if let Some(state) = self.assignment.get_mut(tp) {
            state.backoff_until = now.plus_ms(self.config.retry_backoff_ms);
            state.resetting = false;
        }
        if refresh_metadata {
            self.metadata.refresh_needed = true;
        }
    }

    /// Take a fetch answer. Like Kafka's `FetchCollector.handleInitializeSuccess` (and its
    /// OFFSET_OUT_OF_RANGE branch in `handleInitializeErrors`), a partition's answer counts only if
    /// the consumer's position is still the offset the request asked for: a rebalance, a seek or a
    /// reset while the fetch was in flight makes it stale, and taking it would move the position
    /// past records the application never received (which a later commit would then skip).
    fn on_fetch(
        &mut self,
        now: SimTime,
        fetched: BTreeMap<TopicPartition, i64>,
        response: FetchResponse,
        fx: &mut Effects,
    ) {
        for p in response.partitions {
            let tp = p.partition.clone();
            let Some(state) = self.assignment.get_mut(&tp) else { continue };
            let Some(mut position) = state.position else { continue };
            if fetched.get(&tp) != Some(&position) || state.awaiting_validation {
                continue;
            }
            match p.error {
                ErrorCode::None => {
                    // Kafka's `CompletedFetch.nextFetchedRecord`: under read_committed, a
                    // transactional batch of a producer whose aborted transaction has begun by
                    // the batch's last offset is dropped, and that producer's ABORT marker ends
                    // the drop; control batches (markers) are never returned. Either way the
                    // position moves past them.
                    let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
                    let mut aborted = p.aborted_transactions.clone();
                    aborted.sort_by_key(|a| (a.first_offset, a.producer_id));
                    let mut aborted = std::collections::VecDeque::from(aborted);
                    let mut aborted_producers = std::collections::BTreeSet::new();
                    for batch in p.batches {
                        if batch.next_offset() <= position {
                            continue;
                        }
                        if read_committed && batch.is_idempotent() {
                            while aborted.front().is_some_and(|a| a.first_offset <= batch.last_offset()) {
                                let a = aborted.pop_front().expect("checked");
                                aborted_producers.insert(a.producer_id);
                            }
                            let is_abort_marker =
                                batch.control.is_some_and(|m| m.control_type == crate::record::ControlType::Abort);
                            if is_abort_marker {
                                aborted_producers.remove(&batch.producer_id);
                            } else if batch.is_transactional && aborted_producers.contains(&batch.producer_id) {
                                position = batch.next_offset();
                                state.position_epoch = batch_epoch(batch.leader_epoch);
                                continue;
                            }
                        }
                        if batch.is_control() {
                            position = batch.next_offset();
                            state.position_epoch = batch_epoch(batch.leader_epoch);
                            continue;
                        }
                        // A compacted batch has gaps: each record keeps its offset, and the
                        // position moves past the batch's last offset even when its last records
                        // were cleaned away (`CompletedFetch`: `nextFetchOffset = batch.nextOffset()`).
                        let next_offset = batch.next_offset();
                        let offsets: Vec<i64> = (0..batch.records.len()).map(|i| batch.offset_of(i)).collect();
                        for (offset, record) in offsets.into_iter().zip(batch.records) {
                            if offset < position {
                                continue;
                            }
                            assert!(
                                offset < p.high_watermark,
                                "{tp}: consumer got offset {offset} at or above the high watermark {}",
                                p.high_watermark
                            );
                            self.buffer.push_back(ConsumedRecord {
                                partition: tp.clone(),
                                offset,
                                key: record.key,
                                value: record.value,
                                leader_epoch: batch_epoch(batch.leader_epoch),
                                headers: record.headers,
                            });
                            position = offset + 1;
                            state.position_epoch = batch_epoch(batch.leader_epoch);
                        }
                        if next_offset > position {
                            position = next_offset;
                            state.position_epoch = batch_epoch(batch.leader_epoch);
                        }
                    }
                    state.position = Some(position);
                    state.fetched_end = Some(match (read_committed, p.last_stable_offset) {
                        (true, Some(lso)) => lso,
                        _ => p.high_watermark,
                    });
                    self.sync_consumed_epochs();
                }
                ErrorCode::OffsetOutOfRange => {
                    fx.note(Note::OffsetOutOfRange { partition: tp.clone(), position });
                    self.buffer.retain(|r| r.partition != tp);
                    state.set_position(None, None);
                }
                ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch | ErrorCode::UnknownTopicOrPartition => {
                    self.back_off(now, &tp, true)
                }
                _ => self.back_off(now, &tp, false),
            }
        }
    }

    fn on_list_offsets(&mut self, now: SimTime, response: ListOffsetsResponse, fx: &mut Effects) {
        for (tp, error, offset, _) in response.partitions {
            let Some(state) = self.assignment.get_mut(&tp) else { continue };
            if !state.resetting {
                continue;
            }
            state.resetting = false;
            if error.is_none() {
                // A reset position has no epoch: nothing to validate (Kafka's
                // `OffsetFetcherUtils.resetPositionIfNeeded`).
                state.set_position(Some(offset), None);
                state.reset_offset = Some(offset);
                let reason = match state.reset_to.take() {
                    Some(OffsetReset::Earliest) => "seekToBeginning".to_string(),
                    Some(OffsetReset::Latest) => "seekToEnd".to_string(),
                    _ => format!("auto.offset.reset={:?}", self.config.auto_offset_reset).to_lowercase(),
                };
                fx.note(Note::PositionReset { partition: tp, offset, reason, engine: self.engine as u8 });
            } else {
                self.back_off(now, &tp, true);
            }
        }
    }

    /// Take an OffsetsForLeaderEpoch answer: Kafka's `OffsetFetcherUtils.
    /// onSuccessfulResponseForValidatingPositions` and `SubscriptionState.maybeCompleteValidation`.
    /// A partition's answer counts only if its position is still the one asked about. An error
    /// (the leader moved, or the epochs disagree) is retried after `retry.backoff.ms` with fresh
    /// metadata. Otherwise, if the leader's log of the epoch ends below the position, or the leader
    /// does not know the epoch, the log was truncated under the consumer: it moves to that end, the
    /// first offset known to diverge (or resets by `auto.offset.reset` if the end is unknown); with
    /// `auto.offset.reset=none` the next `poll` throws LogTruncationException instead, and the
    /// partition is not read until the application seeks (Kafka leaves it awaiting validation and
    /// throws again after a backoff until it does). An end at or past the position confirms it.
    fn on_offsets_for_leader_epoch(
        &mut self,
        now: SimTime,
        asked: BTreeMap<TopicPartition, ValidatedPosition>,
        response: OffsetsForLeaderEpochResponse,
        fx: &mut Effects,
    ) {
        for answer in response.partitions {
            let tp = answer.partition.clone();
            let Some(requested) = asked.get(&tp) else { continue };
            let Some(state) = self.assignment.get_mut(&tp) else { continue };
            let current = ValidatedPosition {
                offset: state.position.unwrap_or(-1),
                offset_epoch: state.position_epoch.unwrap_or(-1),
                leader: state.current_leader.unwrap_or((-1, -1)),
            };
            if !state.awaiting_validation || current != *requested {
                continue;
            }
            if !answer.error.is_none() {
                self.back_off(now, &tp, true);
                continue;
            }
            let divergent = if answer.end_offset == UNDEFINED_OFFSET || answer.leader_epoch == UNDEFINED_EPOCH {
                None
            } else if answer.end_offset < requested.offset {
                Some((answer.end_offset, answer.leader_epoch))
            } else {
                state.awaiting_validation = false;
                continue;
            };
            let raised = self.config.auto_offset_reset == OffsetReset::None;
            fx.note(Note::TruncationDetected {
                partition: tp.clone(),
                position: requested.offset,
                epoch: requested.offset_epoch,
                divergent,
                raised,
            });
            match divergent {
                Some((offset, epoch)) if !raised => state.set_position(Some(offset), Some(epoch)),
                // No reset policy: the application decides. Unknown end: `auto.offset.reset` does.
                _ => state.set_position(None, None),
            }
            if raised {
                self.log_truncations.push(LogTruncation {
                    partition: tp,
                    fetch_offset: requested.offset,
                    fetch_epoch: requested.offset_epoch,
                    divergent,
                });
            }
        }
    }

    fn on_request_failed(&mut self, now: SimTime, correlation_id: u64) {
        if self.metadata.is_in_flight(correlation_id) {
            self.metadata.on_failure();
            return;
        }
        let Some(o) = self.outstanding.remove(&correlation_id) else { return };
        let partitions = match o {
            Outstanding::Fetch { broker, offsets } => {
                self.fetch_sessions.entry(broker).or_default().handle_error();
                offsets.into_keys().collect()
            }
            Outstanding::ListOffsets { partitions, .. } => partitions,
            Outstanding::Validate { positions, .. } => positions.into_keys().collect(),
            // Still wanted: asked again after the backoff.
            Outstanding::EndOffsets { partitions, .. } => partitions,
            Outstanding::CloseSession { .. } => Vec::new(),
        };
        for tp in partitions {
            self.back_off(now, &tp, true);
        }
    }
}

impl StateMachine for Consumer {
    fn handle(&mut self, now: SimTime, input: Input, _rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        if let Input::Message { from: NodeId::Broker(broker), .. } = &input {
            self.metadata.on_reply_from(*broker);
        }
        let input = self.connections.observe(input, fx);
        if let Input::ConnectionEstablished { .. } = input {
            // Only the setup timer cares (stopped above); the engine has nothing new to do, and
            // driving it here would move its sends to instants Kafka's client would not use.
            return;
        }
        match input {
            Input::Start | Input::ConnectionEstablished { .. } => {}
            Input::Shutdown => self.close(now, fx),
            Input::Message { message: Message::Response { correlation_id, body }, .. }
                if self.member.as_ref().is_some_and(|m| m.owns_request(correlation_id)) =>
            {
                fx.cancel_timer(Timer::RequestTimeout(correlation_id));
                let member = self.member.as_mut().expect("checked");
                let events =
                    member.on_response(now, correlation_id, body, &self.metadata, &mut self.next_correlation, fx);
                self.on_member_events(now, events, fx);
            }
            Input::Message { message: Message::Response { correlation_id, body }, .. } => {
                fx.cancel_timer(Timer::RequestTimeout(correlation_id));
                let ours = self.outstanding.remove(&correlation_id);
                match (body, ours) {
                    (Response::Metadata(r), _) if self.metadata.is_in_flight(correlation_id) => {
                        self.metadata.on_response(now, r)
                    }
                    (Response::Fetch(r), Some(Outstanding::Fetch { broker, offsets })) => {
                        // `FetchSessionHandler.handleResponse`; a session error carries no
                        // partitions, and the next fetch to the broker is full.
                        self.fetch_sessions.entry(broker).or_default().handle_response(r.error, r.session_id);
                        self.on_fetch(now, offsets, r, fx)
                    }
                    (Response::ListOffsets(r), Some(Outstanding::ListOffsets { .. })) => {
                        self.on_list_offsets(now, r, fx)
                    }
                    (Response::ListOffsets(r), Some(Outstanding::EndOffsets { for_lag: true, .. })) => {
                        // `SubscriptionState.updatePartitionEndOffset`: the end `currentLag`
                        // measures from, as a fetch answer would have set it.
                        for (tp, error, offset, _) in r.partitions {
                            let Some(state) = self.assignment.get_mut(&tp) else { continue };
                            if error.is_none() && state.lag_end_wanted {
                                state.lag_end_wanted = false;
                                // `OffsetFetcherUtils.updateSubscriptionState`.
                                state.fetched_end = Some(offset);
                            } else if !error.is_none() {
                                self.back_off(now, &tp, true);
                            }
                        }
                        self.drive(now, fx);
                    }
                    (Response::ListOffsets(r), Some(Outstanding::EndOffsets { .. })) => {
                        for (tp, error, offset, _) in r.partitions {
                            let Some(state) = self.assignment.get_mut(&tp) else { continue };
                            if error.is_none() && state.end_wanted {
                                state.end_wanted = false;
                                state.end_offset = Some(offset);
                                self.end_offsets_answered = true;
                            } else if !error.is_none() {
                                self.back_off(now, &tp, true);
                            }
                        }
                        self.drive(now, fx);
                    }
                    (Response::OffsetsForLeaderEpoch(r), Some(Outstanding::Validate { positions, .. })) => {
                        self.on_offsets_for_leader_epoch(now, positions, r, fx)
                    }
                    _ => {}
                }
            }
            Input::Message { .. } => {}
            Input::Timer(Timer::RequestTimeout(id)) if self.member.as_ref().is_some_and(|m| m.owns_request(id)) => {
                let mut events = Vec::new();
                self.member.as_mut().expect("checked").on_failure(now, id, &mut events);
                self.on_member_events(now, events, fx);
            }
            Input::Timer(Timer::RequestTimeout(id)) => self.on_request_failed(now, id),
            Input::Timer(Timer::GroupHeartbeat) => {
                if let Some(member) = self.member.as_mut() {
                    member.heartbeat_due(now, &mut self.next_correlation, fx);
                }
            }
            Input::Timer(Timer::AutoCommit) => {
                if self
                    .member
                    .as_ref()
                    .is_some_and(|m| m.phase == crate::group::member::Phase::Stable && !m.commit_in_flight())
                    && self.commit_retry.is_none()
                {
                    self.commit(now, fx);
                }
                if self.config.enable_auto_commit && self.member.is_some() {
                    fx.set_timer(Timer::AutoCommit, now.plus_ms(self.config.auto_commit_interval_ms));
                }
            }
            Input::Timer(_) => {}
            Input::ConnectionClosed { peer } => {
                let ids: Vec<u64> = self
                    .outstanding
                    .iter()
                    .filter(|(_, o)| match o {
                        Outstanding::Fetch { broker, .. }
                        | Outstanding::ListOffsets { broker, .. }
                        | Outstanding::EndOffsets { broker, .. }
                        | Outstanding::CloseSession { broker }
                        | Outstanding::Validate { broker, .. } => NodeId::Broker(*broker) == peer,
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    fx.cancel_timer(Timer::RequestTimeout(id));
                    self.on_request_failed(now, id);
                }
                if let NodeId::Broker(broker) = peer {
                    self.metadata.on_connection_closed(now, broker);
                }
                if let Some(member) = self.member.as_mut() {
                    let events = member.on_connection_closed(now, peer, fx);
                    self.on_member_events(now, events, fx);
                }
            }
        }
        self.drive(now, fx);
        self.track_connections(now, fx);
        self.advance_close(now, fx);
        debug_check("consumer", || self.check_invariants());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epoch_cache::EpochCache;
    use crate::record::{Record, RecordBatch};
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    const BROKER: BrokerId = 1;
    const TOPIC: &str = "jobs";

    /// A one-broker cluster that answers every request of the consumer at once: `jobs` has one
    /// partition led by broker 1 whose log holds offsets `0..log_end`, and nothing is committed.
    /// The leader's epoch is `leader_epoch`; `epochs` says where each epoch starts in the log (a
    /// record of epoch 0 at offset o is `job-o`, one of a later epoch e `job-o-e<e>`).
    struct Cluster {
        consumer: Consumer,
        rng: ChaCha8Rng,
        log_end: i64,
        leader_epoch: i32,
        epochs: EpochCache,
        /// Fetches waiting in the broker's purgatory (from the log end): (correlation id, request).
        parked: Vec<(u64, Request)>,
        /// Every request the consumer sent, in order.
        sent: Vec<Request>,
        notes: Vec<Note>,
        /// Answer heartbeats with FENCED_INSTANCE_ID (another process took the instance id).
        fence: bool,
        /// Heartbeats are answered REBALANCE_IN_PROGRESS (another member joined).
        rebalance: bool,
        /// Answer JoinGroups that carry a member id with this error instead.
        join_error: Option<ErrorCode>,
        /// The consumer ended its process (`Effects::exit`).
        exited: bool,
    }

    fn tp() -> TopicPartition {
        TopicPartition::new(TOPIC, 0)
    }

    impl Cluster {
        fn new(config: ConsumerConfig, log_end: i64) -> Self {
            Cluster {
                consumer: Consumer::new(config, vec![BROKER], "worker"),
                rng: ChaCha8Rng::seed_from_u64(1),
                log_end,
                leader_epoch: 0,
                epochs: {
                    let mut epochs = EpochCache::default();
                    epochs.assign(0, 0);
                    epochs
                },
                parked: Vec::new(),
                sent: Vec::new(),
                notes: Vec::new(),
                fence: false,
                rebalance: false,
                join_error: None,
                exited: false,
            }
        }

        /// A new leader epoch whose log keeps offsets below `keep_to` and then holds records of
        /// the new epoch up to `new_end`: `keep_to` below the old log end is an unclean election
        /// that lost records; at the old log end, a clean one. The consumer's parked fetch is
        /// answered FENCED_LEADER_EPOCH, as a broker answers a fetch naming an older epoch.
        fn elect(&mut self, now: SimTime, keep_to: i64, new_end: i64) {
            self.leader_epoch += 1;
            self.epochs.assign(self.leader_epoch, keep_to);
            self.log_end = new_end;
            for (correlation_id, body) in std::mem::take(&mut self.parked) {
                let body = self.answer(&body).expect("a fetch of an older epoch is answered at once");
                self.deliver(now, correlation_id, body);
            }
        }

        fn epoch_of(&self, offset: i64) -> i32 {
            self.epochs.entries().iter().rev().find(|(_, start)| *start <= offset).map_or(0, |(e, _)| *e)
        }

        fn value(&self, offset: i64) -> String {
            match self.epoch_of(offset) {
                0 => format!("job-{offset}"),
                e => format!("job-{offset}-e{e}"),
            }
        }

        fn deliver(&mut self, now: SimTime, correlation_id: u64, body: Response) {
            let mut fx = Effects::default();
            let input =
                Input::Message { from: NodeId::Broker(BROKER), message: Message::Response { correlation_id, body } };
            self.consumer.handle(now, input, &mut self.rng, &mut fx);
            self.settle(now, fx);
        }

        fn answer(&self, body: &Request) -> Option<Response> {
            let response = match body {
                Request::Metadata(_) => Response::Metadata(MetadataResponse {
                    brokers: vec![BROKER],
                    topics: vec![TopicMetadata {
                        name: TOPIC.into(),
                        error: ErrorCode::None,
                        partitions: vec![PartitionMetadata {
                            partition: 0,
                            leader: Some(BROKER),
                            leader_epoch: self.leader_epoch,
                            replicas: vec![BROKER],
                            isr: vec![BROKER],
                        }],
                    }],
                }),
                Request::FindCoordinator(_) => Response::FindCoordinator(FindCoordinatorResponse {
                    error: ErrorCode::None,
                    coordinator: Some(BROKER),
                }),
                // The broker's default group.min.session.timeout.ms.
                Request::JoinGroup(r) if r.session_timeout_ms < 6_000 => {
                    crate::group::coordinator::join_error(ErrorCode::InvalidSessionTimeout, &r.member_id)
                }
                Request::JoinGroup(r) if r.member_id.is_empty() => Response::JoinGroup(JoinGroupResponse {
                    error: ErrorCode::MemberIdRequired,
                    generation: -1,
                    protocol: None,
                    leader: String::new(),
                    member_id: "worker-1".into(),
                    members: Vec::new(),
                }),
                Request::JoinGroup(r) if self.join_error.is_some() => Response::JoinGroup(JoinGroupResponse {
                    error: self.join_error.expect("checked"),
                    generation: -1,
                    protocol: None,
                    leader: String::new(),
                    member_id: r.member_id.clone(),
                    members: Vec::new(),
                }),
                Request::JoinGroup(r) => Response::JoinGroup(JoinGroupResponse {
                    error: ErrorCode::None,
                    generation: 1,
                    protocol: Some(r.protocols[0].0.clone()),
                    leader: r.member_id.clone(),
                    member_id: r.member_id.clone(),
                    members: vec![(r.member_id.clone(), None, r.protocols[0].1.clone())],
                }),
                Request::SyncGroup(_) => {
                    Response::SyncGroup(SyncGroupResponse { error: ErrorCode::None, assignment: vec![tp()].into() })
                }
                Request::OffsetFetch(r) => Response::OffsetFetch(OffsetFetchResponse {
                    error: ErrorCode::None,
                    offsets: r.partitions.iter().map(|p| (p.clone(), -1)).collect(),
                }),
                Request::ListOffsets(r) => Response::ListOffsets(ListOffsetsResponse {
                    partitions: r
                        .partitions
                        .iter()
                        .map(|(p, spec, epoch)| {
                            let offset = if *spec == OffsetSpec::Earliest { 0 } else { self.log_end };
                            (p.clone(), ErrorCode::None, offset, *epoch)
                        })
                        .collect(),
                }),
                Request::Fetch(r) if r.partitions.iter().any(|p| p.current_leader_epoch != self.leader_epoch) => {
                    Response::Fetch(FetchResponse {
                        partitions: r
                            .partitions
                            .iter()
                            .map(|p| FetchedPartition {
                                partition: p.partition.clone(),
                                error: if p.current_leader_epoch < self.leader_epoch {
                                    ErrorCode::FencedLeaderEpoch
                                } else {
                                    ErrorCode::UnknownLeaderEpoch
                                },
                                high_watermark: -1,
                                log_start_offset: 0,
                                batches: Vec::new(),
                                last_stable_offset: None,
                                aborted_transactions: Vec::new(),
                            })
                            .collect(),
                        ..Default::default()
                    })
                }
                // A fetch at the log end waits in purgatory: no answer.
                Request::Fetch(r) if r.partitions.iter().all(|p| p.fetch_offset == self.log_end) => return None,
                Request::Fetch(r) => Response::Fetch(FetchResponse {
                    partitions: r.partitions.iter().map(|p| self.fetched(p.fetch_offset)).collect(),
                    ..Default::default()
                }),
                Request::Heartbeat(_) if self.fence => {
                    Response::Heartbeat(HeartbeatResponse { error: ErrorCode::FencedInstanceId })
                }
                Request::Heartbeat(_) if self.rebalance => {
                    Response::Heartbeat(HeartbeatResponse { error: ErrorCode::RebalanceInProgress })
                }
                Request::Heartbeat(_) => Response::Heartbeat(HeartbeatResponse { error: ErrorCode::None }),
                Request::OffsetCommit(_) => Response::OffsetCommit(OffsetCommitResponse { error: ErrorCode::None }),
                Request::OffsetsForLeaderEpoch(r) => Response::OffsetsForLeaderEpoch(OffsetsForLeaderEpochResponse {
                    partitions: r
                        .partitions
                        .iter()
                        .map(|(p, current, asked)| {
                            let (leader_epoch, end_offset) = self.epochs.end_offset_for(*asked, self.log_end);
                            let error = match current.cmp(&self.leader_epoch) {
                                std::cmp::Ordering::Less => ErrorCode::FencedLeaderEpoch,
                                std::cmp::Ordering::Greater => ErrorCode::UnknownLeaderEpoch,
                                std::cmp::Ordering::Equal => ErrorCode::None,
                            };
                            EpochEndOffset { partition: p.clone(), error, leader_epoch, end_offset }
                        })
                        .collect(),
                }),
                Request::LeaveGroup(_) => Response::LeaveGroup(LeaveGroupResponse { error: ErrorCode::None }),
                _ => return None,
            };
            Some(response)
        }

        fn fetched(&self, from: i64) -> FetchedPartition {
            if from > self.log_end {
                return FetchedPartition {
                    partition: tp(),
                    error: ErrorCode::OffsetOutOfRange,
                    high_watermark: self.log_end,
                    log_start_offset: 0,
                    batches: Vec::new(),
                    last_stable_offset: None,
                    aborted_transactions: Vec::new(),
                };
            }
            // One batch per leader epoch, as the leaders wrote them.
            let mut batches: Vec<RecordBatch> = Vec::new();
            for offset in from..self.log_end {
                // Every record carries a header, as a traced producer's would.
                let record = Record {
                    headers: vec![("traceparent".into(), format!("t-{offset}"))],
                    ..Record::unkeyed(self.value(offset))
                };
                match batches.last_mut() {
                    Some(batch) if batch.leader_epoch == self.epoch_of(offset) => batch.records.make_mut().push(record),
                    _ => batches.push(RecordBatch {
                        base_offset: offset,
                        leader_epoch: self.epoch_of(offset),
                        producer_id: -1,
                        producer_epoch: -1,
                        base_sequence: -1,
                        timestamp_ms: 0,
                        records: vec![record].into(),
                        is_transactional: false,
                        control: None,
                        cleaned: None,
                        delete_horizon_ms: None,
                    }),
                }
            }
            FetchedPartition {
                partition: tp(),
                error: ErrorCode::None,
                high_watermark: self.log_end,
                log_start_offset: 0,
                batches,
                last_stable_offset: None,
                aborted_transactions: Vec::new(),
            }
        }

        /// Deliver the effects' requests and every request that follows, answering each at once.
        fn settle(&mut self, now: SimTime, fx: Effects) {
            self.exited |= fx.exit;
            self.notes.extend(fx.notes);
            let mut queue: VecDeque<(NodeId, Message)> = fx.sends.into();
            for _ in 0..100 {
                let Some((to, message)) = queue.pop_front() else { return };
                assert_eq!(to, NodeId::Broker(BROKER), "only broker 1 exists");
                let Message::Request { correlation_id, body } = message else { continue };
                let answer = self.answer(&body);
                self.sent.push(body.clone());
                let Some(body) = answer else {
                    if matches!(body, Request::Fetch(_)) {
                        self.parked.push((correlation_id, body));
                    }
                    continue;
                };
                let mut fx = Effects::default();
                let input = Input::Message { from: to, message: Message::Response { correlation_id, body } };
                self.consumer.handle(now, input, &mut self.rng, &mut fx);
                self.exited |= fx.exit;
                self.notes.extend(fx.notes);
                queue.extend(fx.sends);
            }
            panic!("the exchange did not settle within 100 messages");
        }

        fn poll(&mut self, now: SimTime) -> Vec<ConsumedRecord> {
            self.try_poll(now).unwrap_or_else(|e| panic!("poll threw {e}"))
        }

        fn try_poll(&mut self, now: SimTime) -> Result<Vec<ConsumedRecord>, PollError> {
            let mut fx = Effects::default();
            let records = self.consumer.poll(now, &mut fx);
            self.settle(now, fx);
            records
        }

        fn timer(&mut self, now: SimTime, timer: Timer) {
            let mut fx = Effects::default();
            self.consumer.handle(now, Input::Timer(timer), &mut self.rng, &mut fx);
            self.settle(now, fx);
        }

        /// The group requests sent since request number `from`, by API name, in order.
        fn group_requests_since(&self, from: usize) -> Vec<&'static str> {
            self.sent[from..]
                .iter()
                .filter_map(|r| match r {
                    Request::JoinGroup(_) => Some("JoinGroup"),
                    Request::SyncGroup(_) => Some("SyncGroup"),
                    Request::LeaveGroup(_) => Some("LeaveGroup"),
                    Request::OffsetCommit(_) => Some("OffsetCommit"),
                    _ => None,
                })
                .collect()
        }

        /// Subscribe to `jobs` and poll once: the member is Stable, owns `jobs-0` and has been
        /// handed offsets 0..5.
        fn member_reading(config: ConsumerConfig) -> Cluster {
            let mut cluster = Cluster::new(ConsumerConfig { max_poll_records: 5, ..config }, 10);
            let mut fx = Effects::default();
            assert!(cluster.consumer.subscribe(&[TOPIC.to_string()], SimTime::ZERO, &mut fx));
            cluster.settle(SimTime::ZERO, fx);
            let records = cluster.poll(SimTime::from_ms(1_000));
            assert_eq!(records.len(), 5);
            cluster
        }

        fn close(&mut self, now: SimTime) {
            let mut fx = Effects::default();
            self.consumer.handle(now, Input::Shutdown, &mut self.rng, &mut fx);
            self.settle(now, fx);
        }

        fn sent_list_offsets(&self) -> bool {
            self.sent.iter().any(|r| matches!(r, Request::ListOffsets(_)))
        }

        fn sent_fetch(&self) -> bool {
            self.sent.iter().any(|r| matches!(r, Request::Fetch(_)))
        }
    }

    #[test]
    fn kicked_out_member_polls_again_buffered_records_of_lost_partition_are_dropped() {
        let config = ConsumerConfig {
            group_id: Some("workers".into()),
            auto_offset_reset: OffsetReset::Earliest,
            enable_auto_commit: false,
            max_poll_records: 5,
            max_poll_interval_ms: 10_000,
            ..ConsumerConfig::default()
        };
        let mut cluster = Cluster::new(config, 10);
        let mut fx = Effects::default();
        assert!(cluster.consumer.subscribe(&[TOPIC.to_string()], SimTime::ZERO, &mut fx));
        cluster.settle(SimTime::ZERO, fx);
        let first = cluster.poll(SimTime::from_ms(1_000));
        assert_eq!(first.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert_eq!(cluster.consumer.buffered(), 5, "offsets 5..10 wait in the buffer");
        assert!(
            first.iter().all(|r| r.headers == vec![("traceparent".to_string(), format!("t-{}", r.offset))]),
            "each record's headers reach the application as the producer set them: {first:?}"
        );

        // The application takes longer than max.poll.interval.ms: the member leaves the group.
        cluster.timer(SimTime::from_ms(11_002), Timer::PollIntervalCheck);
        assert!(cluster.notes.iter().any(|n| matches!(n, Note::PollIntervalExceeded { .. })));

        // Its next poll learns the partition is lost: none of its buffered records come back.
        let second = cluster.poll(SimTime::from_ms(12_000));
        assert!(second.is_empty(), "poll returned records of a lost partition: {second:?}");
        assert!(cluster.notes.iter().any(|n| matches!(n, Note::PartitionsRevoked { lost: true, .. })));
    }

    fn group_config(instance: Option<&str>, enable_auto_commit: bool) -> ConsumerConfig {
        ConsumerConfig {
            group_id: Some("workers".into()),
            group_instance_id: instance.map(str::to_string),
            auto_offset_reset: OffsetReset::Earliest,
            enable_auto_commit,
            max_poll_interval_ms: 10_000,
            ..ConsumerConfig::default()
        }
    }

    #[test]
    fn closing_consumer_commits_then_a_dynamic_member_leaves_and_a_static_one_does_not() {
        // ConsumerCoordinator.close: maybeAutoCommitOffsetsSync, then AbstractCoordinator.close:
        // onLeavePrepare (revoke) and maybeLeaveGroup (dynamic members only, KIP-345).
        // (case, group.instance.id, enable.auto.commit, group requests the close sends)
        let cases = [
            ("dynamic, auto-commit", None, true, vec!["OffsetCommit", "LeaveGroup"]),
            ("dynamic, no auto-commit", None, false, vec!["LeaveGroup"]),
            ("static, auto-commit", Some("worker-a"), true, vec!["OffsetCommit"]),
            ("static, no auto-commit", Some("worker-a"), false, vec![]),
        ];
        for (case, instance, auto_commit, expected) in cases {
            let mut cluster = Cluster::member_reading(group_config(instance, auto_commit));
            let before = cluster.sent.len();
            cluster.close(SimTime::from_ms(1_500));
            assert_eq!(cluster.group_requests_since(before), expected, "{case}");
            if auto_commit {
                let commit = cluster.sent[before..].iter().find_map(|r| match r {
                    Request::OffsetCommit(c) => Some(c.offsets.clone()),
                    _ => None,
                });
                assert_eq!(commit, Some(vec![(tp(), 5)]), "{case}: the position after what poll handed out");
            }
            assert!(cluster.exited, "{case}: the process exits once the coordinator answered");
            assert!(
                cluster.notes.iter().any(|n| matches!(n, Note::PartitionsRevoked { lost: false, .. })),
                "{case}: its partitions are revoked"
            );
            assert!(cluster.poll(SimTime::from_ms(2_000)).is_empty(), "{case}: a closed consumer hands out nothing");
            // Nothing waits for the application any more (the world wakes it while records wait:
            // buffered records of a closed consumer made its poll loop spin in one instant).
            assert_eq!(cluster.consumer.buffered(), 0, "{case}");
        }
    }

    #[test]
    fn a_revocation_listener_commits_what_it_names_before_the_member_rejoins() {
        // A Kafka Streams thread's `onPartitionsRevoked` (`TaskManager.handleRevocation`) runs
        // inside `onJoinPrepare`: the JoinGroup waits until the listener has committed its tasks'
        // consumed offsets (here 3, not the position 5 poll reached) and returned.
        let mut cluster = Cluster::member_reading(group_config(None, false));
        cluster.consumer.listen_for_revocations();
        cluster.rebalance = true;
        let before = cluster.sent.len();
        cluster.timer(SimTime::from_ms(4_000), Timer::GroupHeartbeat);
        assert_eq!(cluster.consumer.revoked_unhandled(), [tp()]);
        let joins = |c: &Cluster| c.sent[before..].iter().filter(|r| matches!(r, Request::JoinGroup(_))).count();
        assert_eq!(joins(&cluster), 0, "no JoinGroup while the listener runs");
        cluster.rebalance = false;
        let mut fx = Effects::default();
        assert!(cluster.consumer.commit_offsets(SimTime::from_ms(4_001), vec![(tp(), 3)], &mut fx).is_some());
        cluster.settle(SimTime::from_ms(4_001), fx);
        let committed = cluster.sent[before..].iter().find_map(|r| match r {
            Request::OffsetCommit(c) => Some(c.offsets.clone()),
            _ => None,
        });
        assert_eq!(committed, Some(vec![(tp(), 3)]), "the offsets the listener named");
        assert_eq!(joins(&cluster), 0, "still none: the listener has not returned");
        let mut fx = Effects::default();
        cluster.consumer.revocation_handled(SimTime::from_ms(4_002), &mut fx);
        cluster.settle(SimTime::from_ms(4_002), fx);
        assert!(cluster.consumer.revoked_unhandled().is_empty());
        assert_eq!(joins(&cluster), 1, "the member rejoins once the listener returned");
    }

    #[test]
    fn static_member_past_max_poll_interval_sends_no_leave_group_and_rejoins_under_its_instance() {
        // AbstractCoordinator.maybeLeaveGroup skips static members; the member id is reset, so
        // the next poll rejoins with none and the coordinator recognises the instance.
        let mut cluster = Cluster::member_reading(group_config(Some("worker-a"), false));
        let before = cluster.sent.len();
        cluster.timer(SimTime::from_ms(11_002), Timer::PollIntervalCheck);
        assert!(cluster.notes.iter().any(|n| matches!(n, Note::PollIntervalExceeded { .. })));
        assert_eq!(cluster.group_requests_since(before), Vec::<&str>::new(), "no LeaveGroup");
        cluster.poll(SimTime::from_ms(12_000));
        let rejoin = cluster.sent[before..].iter().find_map(|r| match r {
            Request::JoinGroup(j) => Some((j.member_id.clone(), j.group_instance_id.clone())),
            _ => None,
        });
        assert_eq!(rejoin, Some((String::new(), Some("worker-a".to_string()))));
    }

    #[test]
    fn inconsistent_group_protocol_is_fatal_the_member_never_joins_again() {
        let mut cluster = Cluster::new(group_config(None, false), 10);
        cluster.join_error = Some(ErrorCode::InconsistentGroupProtocol);
        let mut fx = Effects::default();
        assert!(cluster.consumer.subscribe(&[TOPIC.to_string()], SimTime::ZERO, &mut fx));
        cluster.settle(SimTime::ZERO, fx);
        assert!(cluster
            .notes
            .iter()
            .any(|n| matches!(n, Note::MemberFailed { error: ErrorCode::InconsistentGroupProtocol, .. })));
        let joins = cluster.group_requests_since(0).len();
        for second in 1..30 {
            cluster.poll(SimTime::from_ms(second * 1_000));
            cluster.timer(SimTime::from_ms(second * 1_000), Timer::GroupHeartbeat);
        }
        assert_eq!(cluster.group_requests_since(0).len(), joins, "nothing more is sent to the group");
    }

    fn no_reset_config() -> ConsumerConfig {
        ConsumerConfig { auto_offset_reset: OffsetReset::None, ..ConsumerConfig::default() }
    }

    #[test]
    fn offset_reset_none_without_committed_offset_picks_no_position() {
        let mut cluster = Cluster::new(no_reset_config(), 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.settle(SimTime::ZERO, fx);
        assert!(!cluster.sent_list_offsets(), "auto.offset.reset=none must not look up an offset");
        assert!(!cluster.sent_fetch(), "a partition without a position must not be fetched");
        assert!(!cluster.notes.iter().any(|n| matches!(n, Note::PositionReset { .. })));
        assert_eq!(cluster.consumer.position(&tp()), None);
        assert_eq!(cluster.consumer.partitions_without_offset(), vec![tp()]);

        // The application decides where to start.
        let mut fx = Effects::default();
        cluster.consumer.seek(&tp(), 7, SimTime::from_ms(10), &mut fx);
        cluster.settle(SimTime::from_ms(10), fx);
        assert!(cluster.consumer.partitions_without_offset().is_empty());
        let records = cluster.poll(SimTime::from_ms(20));
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![7, 8, 9]);
    }

    #[test]
    fn offset_reset_none_after_offset_out_of_range_stops_reading_the_partition() {
        let mut cluster = Cluster::new(no_reset_config(), 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.settle(SimTime::ZERO, fx);
        let mut fx = Effects::default();
        cluster.consumer.seek(&tp(), 50, SimTime::from_ms(10), &mut fx);
        cluster.settle(SimTime::from_ms(10), fx);
        assert!(cluster.notes.iter().any(|n| matches!(n, Note::OffsetOutOfRange { position: 50, .. })));
        assert!(!cluster.sent_list_offsets(), "auto.offset.reset=none must not reset the position");
        assert_eq!(cluster.consumer.position(&tp()), None);
        assert_eq!(cluster.consumer.partitions_without_offset(), vec![tp()]);
    }

    /// `currentLag` counts what was fetched and not yet polled, as Kafka's
    /// `SubscriptionState.partitionLag` does from the application's position.
    #[test]
    fn current_lag_counts_fetched_records_not_yet_polled() {
        let mut cluster = Cluster::new(no_reset_config(), 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.settle(SimTime::ZERO, fx);
        let mut fx = Effects::default();
        cluster.consumer.seek(&tp(), 4, SimTime::from_ms(10), &mut fx);
        cluster.settle(SimTime::from_ms(10), fx);
        assert_eq!(cluster.consumer.buffered(), 6, "offsets 4..10 fetched");
        assert_eq!(cluster.consumer.current_lag(&tp()), Some(6), "nothing polled yet");
        cluster.poll(SimTime::from_ms(20));
        assert_eq!(cluster.consumer.current_lag(&tp()), Some(0));
    }

    /// KAFKA-13008: a partition no fetch answer mentions (an incremental fetch session leaves out
    /// a partition whose high watermark did not move) has no known end, so `currentLag` asks for
    /// it with ListOffsets and answers from then on.
    #[test]
    fn current_lag_with_no_fetched_end_asks_for_the_end_and_then_knows_it() {
        let mut cluster = Cluster::new(no_reset_config(), 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.settle(SimTime::ZERO, fx);
        let mut fx = Effects::default();
        // At the log end: the fetch waits at the broker, and no answer brings the end.
        cluster.consumer.seek(&tp(), 10, SimTime::from_ms(10), &mut fx);
        cluster.settle(SimTime::from_ms(10), fx);
        assert_eq!(cluster.consumer.current_lag(&tp()), None);
        let asked = cluster.sent.len();
        let mut fx = Effects::default();
        assert_eq!(cluster.consumer.current_lag_or_ask(&tp(), SimTime::from_ms(20), &mut fx), None);
        cluster.settle(SimTime::from_ms(20), fx);
        let lookups: Vec<&Request> =
            cluster.sent[asked..].iter().filter(|r| matches!(r, Request::ListOffsets(_))).collect();
        assert_eq!(lookups.len(), 1, "one ListOffsets for the end: {:?}", cluster.sent[asked..].to_vec());
        let mut fx = Effects::default();
        assert_eq!(cluster.consumer.current_lag_or_ask(&tp(), SimTime::from_ms(30), &mut fx), Some(0));
        assert!(fx.sends.is_empty(), "a known end asks nothing");
    }

    /// A Streams restore consumer (`auto.offset.reset=none`) reads a changelog from its start:
    /// `seekToBeginning` looks the log start up with ListOffsets whatever the setting says, and
    /// the fetch answer tells the high watermark restoration runs to.
    #[test]
    fn seek_to_beginning_reads_from_the_log_start_even_with_offset_reset_none() {
        let mut cluster = Cluster::new(no_reset_config(), 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.settle(SimTime::ZERO, fx);
        assert!(!cluster.sent_list_offsets());
        let mut fx = Effects::default();
        cluster.consumer.seek_to_beginning(&[tp()], SimTime::from_ms(10), &mut fx);
        cluster.settle(SimTime::from_ms(10), fx);
        assert!(cluster.sent_list_offsets(), "seekToBeginning looks the offset up");
        assert!(
            cluster
                .notes
                .iter()
                .any(|n| matches!(n, Note::PositionReset { offset: 0, reason, .. } if reason == "seekToBeginning")),
            "the reset says why: {:?}",
            cluster.notes
        );
        assert_eq!(cluster.consumer.reset_offset(&tp()), Some(0));
        assert!(cluster.consumer.partitions_without_offset().is_empty());
        let records = cluster.poll(SimTime::from_ms(20));
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert_eq!(cluster.consumer.position(&tp()), Some(10));

        // `endOffsets`: where restoration would end, asked of the leader.
        assert_eq!(cluster.consumer.end_offset(&tp()), None);
        let mut fx = Effects::default();
        cluster.consumer.request_end_offsets(&[tp()], SimTime::from_ms(30), &mut fx);
        cluster.settle(SimTime::from_ms(30), fx);
        assert_eq!(cluster.consumer.end_offset(&tp()), Some(10));
    }

    #[test]
    fn a_fenced_static_member_gives_up_its_partitions_and_never_rejoins() {
        let config = ConsumerConfig {
            group_id: Some("workers".into()),
            group_instance_id: Some("host-a".into()),
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        };
        let mut cluster = Cluster::new(config, 3);
        let mut fx = Effects::default();
        assert!(cluster.consumer.subscribe(&[TOPIC.to_string()], SimTime::ZERO, &mut fx));
        cluster.settle(SimTime::ZERO, fx);
        assert_eq!(cluster.poll(SimTime::from_ms(1_000)).len(), 3);

        // A newer process took group.instance.id host-a: the coordinator fences this one.
        cluster.fence = true;
        cluster.timer(SimTime::from_ms(4_000), Timer::GroupHeartbeat);
        assert!(cluster.notes.iter().any(|n| matches!(n, Note::MemberFailed { .. })), "{:?}", cluster.notes);
        assert!(cluster.notes.iter().any(|n| matches!(n, Note::PartitionsRevoked { lost: true, .. })));

        // Fatal, as in Kafka: no rejoin, no heartbeat, nothing more to read.
        let joins_before = cluster.sent.iter().filter(|r| matches!(r, Request::JoinGroup(_))).count();
        for at in [5_000, 8_000, 11_000] {
            assert!(cluster.poll(SimTime::from_ms(at)).is_empty());
            cluster.timer(SimTime::from_ms(at + 1), Timer::GroupHeartbeat);
        }
        let joins_after = cluster.sent.iter().filter(|r| matches!(r, Request::JoinGroup(_))).count();
        assert_eq!(joins_before, joins_after, "a fenced member must not rejoin");
    }

    /// INVALID_SESSION_TIMEOUT is fatal for the Java consumer (`AbstractCoordinator`'s
    /// JoinGroupResponseHandler raises it and `joinGroupIfNeeded` throws it from `poll`): the member
    /// does not retry the join, and the consumer reports the error for the application to throw.
    #[test]
    fn a_join_refused_for_its_session_timeout_is_fatal_and_never_retried() {
        let config = ConsumerConfig {
            group_id: Some("workers".into()),
            session_timeout_ms: 5_000,
            heartbeat_interval_ms: 1_000,
            ..ConsumerConfig::default()
        };
        let mut cluster = Cluster::new(config, 3);
        let mut fx = Effects::default();
        assert!(cluster.consumer.subscribe(&[TOPIC.to_string()], SimTime::ZERO, &mut fx));
        cluster.settle(SimTime::ZERO, fx);
        assert!(
            cluster
                .notes
                .iter()
                .any(|n| matches!(n, Note::MemberFailed { error: ErrorCode::InvalidSessionTimeout, .. })),
            "{:?}",
            cluster.notes
        );
        assert_eq!(cluster.consumer.fatal_error(), Some(ErrorCode::InvalidSessionTimeout));
        let joins_before = cluster.sent.iter().filter(|r| matches!(r, Request::JoinGroup(_))).count();
        assert_eq!(joins_before, 1, "one join, refused");
        for at in [1_000, 5_000, 60_000] {
            assert!(cluster.poll(SimTime::from_ms(at)).is_empty());
            cluster.timer(SimTime::from_ms(at + 1), Timer::GroupHeartbeat);
        }
        let joins_after = cluster.sent.iter().filter(|r| matches!(r, Request::JoinGroup(_))).count();
        assert_eq!(joins_after, joins_before, "a fatal JoinGroup error is not retried");
        assert!(!cluster.sent.iter().any(|r| matches!(r, Request::Heartbeat(_))), "nor is there anything to heartbeat");
    }

    /// Issue 12: a fetch answer that arrives after the position moved (here a seek back; in the
    /// fuzzer a revoke and reassignment) must not be taken, or the consumer skips offsets 3..7 and
    /// a later commit marks them consumed (Kafka: `FetchCollector.handleInitializeSuccess`).
    #[test]
    fn a_fetch_answer_for_an_old_position_is_discarded_after_a_seek_back() {
        let mut cluster = Cluster::new(no_reset_config(), 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.settle(SimTime::ZERO, fx);
        let mut fx = Effects::default();
        cluster.consumer.seek(&tp(), 7, SimTime::from_ms(10), &mut fx);
        let fetch_id = fx
            .sends
            .iter()
            .find_map(|(_, m)| match m {
                Message::Request { correlation_id, body: Request::Fetch(f) } if f.partitions[0].fetch_offset == 7 => {
                    Some(*correlation_id)
                }
                _ => None,
            })
            .expect("the seek sends a fetch from offset 7");
        // Before the answer arrives, the application seeks back to 3.
        let mut fx = Effects::default();
        cluster.consumer.seek(&tp(), 3, SimTime::from_ms(20), &mut fx);
        cluster.settle(SimTime::from_ms(20), fx);
        // The late answer, from offset 7.
        let mut fx = Effects::default();
        let body = Response::Fetch(FetchResponse { partitions: vec![cluster.fetched(7)], ..Default::default() });
        let input = Input::Message {
            from: NodeId::Broker(BROKER),
            message: Message::Response { correlation_id: fetch_id, body },
        };
        cluster.consumer.handle(SimTime::from_ms(30), input, &mut cluster.rng, &mut fx);
        cluster.settle(SimTime::from_ms(30), fx);
        assert_eq!(cluster.consumer.position(&tp()), Some(3), "the stale answer moved the position");
        let records = cluster.poll(SimTime::from_ms(40));
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![3, 4, 5, 6, 7, 8, 9]);
    }

    fn offsets(records: &[ConsumedRecord]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    fn values(records: &[ConsumedRecord]) -> Vec<&str> {
        records.iter().map(|r| r.value.as_deref().unwrap_or("null")).collect()
    }

    fn earliest() -> ConsumerConfig {
        ConsumerConfig { auto_offset_reset: OffsetReset::Earliest, ..ConsumerConfig::default() }
    }

    /// A consumer that read `0..10` of `jobs-0`, all written in leader epoch 0.
    fn read_ten(config: ConsumerConfig) -> Cluster {
        let none = config.auto_offset_reset == OffsetReset::None;
        let mut cluster = Cluster::new(config, 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        if none {
            cluster.consumer.seek(&tp(), 0, SimTime::ZERO, &mut fx);
        }
        cluster.settle(SimTime::ZERO, fx);
        assert_eq!(offsets(&cluster.poll(SimTime::from_ms(10))), (0..10).collect::<Vec<_>>());
        cluster
    }

    fn truncations_detected(notes: &[Note]) -> Vec<&Note> {
        notes.iter().filter(|n| matches!(n, Note::TruncationDetected { .. })).collect()
    }

    /// KIP-320 (`SubscriptionState.maybeCompleteValidation`): an unclean election elects a leader
    /// (epoch 1) that has only offsets 0..6 of epoch 0 and writes 6..8 anew. The consumer, at 10
    /// after a record of epoch 0, asks where epoch 0 ends (6), moves back to 6 and reads the new
    /// records. Before, it fetched 10 from a log ending at 8: OFFSET_OUT_OF_RANGE, and
    /// `auto.offset.reset=earliest` sent it back to offset 0.
    #[test]
    fn unclean_election_truncated_records_the_consumer_read_it_moves_back_to_the_divergent_offset() {
        let mut cluster = read_ten(earliest());
        cluster.elect(SimTime::from_ms(20), 6, 8);
        assert!(cluster.consumer.positions().is_empty(), "a position awaiting validation must not be committed");
        assert!(cluster.poll(SimTime::from_ms(200)).is_empty(), "the position is validated before any fetch");
        let records = cluster.poll(SimTime::from_ms(300));
        assert_eq!(offsets(&records), vec![6, 7]);
        assert_eq!(values(&records), vec!["job-6-e1", "job-7-e1"]);
        assert_eq!(
            truncations_detected(&cluster.notes),
            vec![&Note::TruncationDetected {
                partition: tp(),
                position: 10,
                epoch: 0,
                divergent: Some((6, 0)),
                raised: false
            }]
        );
        assert!(!cluster.notes.iter().any(|n| matches!(n, Note::OffsetOutOfRange { .. })));
        let asked: Vec<&OffsetsForLeaderEpochRequest> = cluster
            .sent
            .iter()
            .filter_map(|r| match r {
                Request::OffsetsForLeaderEpoch(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].replica_id, CONSUMER_REPLICA_ID);
        assert_eq!(asked[0].partitions, vec![(tp(), 1, 0)], "current epoch 1, asking about epoch 0");
    }

    /// With `auto.offset.reset=none` the consumer does not pick the divergent offset itself: the
    /// next poll throws LogTruncationException naming it, and the partition is not read until the
    /// application seeks (Kafka's `OffsetFetcherUtils.onSuccessfulResponseForValidatingPositions`).
    #[test]
    fn unclean_election_with_offset_reset_none_poll_throws_log_truncation_until_the_application_seeks() {
        let mut cluster = read_ten(no_reset_config());
        cluster.elect(SimTime::from_ms(20), 6, 8);
        assert!(cluster.poll(SimTime::from_ms(200)).is_empty());
        let error = cluster.try_poll(SimTime::from_ms(300)).expect_err("poll throws the truncation");
        assert_eq!(
            error,
            PollError::LogTruncation(vec![LogTruncation {
                partition: tp(),
                fetch_offset: 10,
                fetch_epoch: 0,
                divergent: Some((6, 0)),
            }])
        );
        assert_eq!(
            error.to_string(),
            "LogTruncationException: truncated partitions detected with divergent offsets {jobs-0=6 (epoch 0)}"
        );
        assert!(matches!(truncations_detected(&cluster.notes)[..], [Note::TruncationDetected { raised: true, .. }]));
        assert_eq!(cluster.consumer.partitions_without_offset(), vec![tp()]);
        let fetches = cluster.sent.iter().filter(|r| matches!(r, Request::Fetch(_))).count();
        assert!(cluster.poll(SimTime::from_ms(400)).is_empty(), "thrown once, then the partition waits");
        assert_eq!(fetches, cluster.sent.iter().filter(|r| matches!(r, Request::Fetch(_))).count());

        // The application decides: here, read what replaced the lost records.
        let mut fx = Effects::default();
        cluster.consumer.seek(&tp(), 6, SimTime::from_ms(500), &mut fx);
        cluster.settle(SimTime::from_ms(500), fx);
        assert_eq!(values(&cluster.poll(SimTime::from_ms(600))), vec!["job-6-e1", "job-7-e1"]);
    }

    /// A clean election: the new leader (epoch 1) has every record of epoch 0 (they end at 10).
    /// The consumer validates its position, keeps it, and reads on from 10.
    #[test]
    fn clean_election_the_validated_position_is_kept() {
        let mut cluster = read_ten(earliest());
        cluster.elect(SimTime::from_ms(20), 10, 12);
        assert!(cluster.poll(SimTime::from_ms(200)).is_empty());
        let records = cluster.poll(SimTime::from_ms(300));
        assert_eq!(offsets(&records), vec![10, 11]);
        assert_eq!(values(&records), vec!["job-10-e1", "job-11-e1"]);
        assert!(truncations_detected(&cluster.notes).is_empty());
        assert!(cluster.sent.iter().any(|r| matches!(r, Request::OffsetsForLeaderEpoch(_))));
        assert_eq!(cluster.consumer.position(&tp()), Some(12));
    }

    /// The position validated is the application's, not the fetch position: records fetched ahead
    /// (here 5..10, past `max.poll.records`) are dropped and fetched again, so the application never
    /// gets the records 7..10 the new leader lost (Kafka returns no buffered records of a
    /// partition awaiting validation).
    #[test]
    fn leader_change_with_records_buffered_the_application_position_is_validated() {
        let mut cluster = Cluster::new(ConsumerConfig { max_poll_records: 5, ..earliest() }, 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.settle(SimTime::ZERO, fx);
        assert_eq!(offsets(&cluster.poll(SimTime::from_ms(10))), vec![0, 1, 2, 3, 4]);
        assert_eq!(cluster.consumer.buffered(), 5);
        cluster.elect(SimTime::from_ms(20), 7, 9);
        assert_eq!(cluster.consumer.buffered(), 0, "records of a partition awaiting validation are dropped");
        assert_eq!(cluster.consumer.position(&tp()), Some(5));
        assert!(cluster.poll(SimTime::from_ms(200)).is_empty());
        let records = cluster.poll(SimTime::from_ms(300));
        assert_eq!(values(&records), vec!["job-5", "job-6", "job-7-e1", "job-8-e1"]);
        assert!(truncations_detected(&cluster.notes).is_empty(), "5 is below where epoch 0 ends (7)");
    }

    #[test]
    fn invariant_positions_are_never_negative() {
        let mut cluster = Cluster::new(ConsumerConfig::default(), 10);
        let mut fx = Effects::default();
        cluster.consumer.assign(vec![tp()], SimTime::ZERO, &mut fx);
        cluster.consumer.seek(&tp(), 3, SimTime::ZERO, &mut fx);
        assert_eq!(cluster.consumer.check_invariants(), Ok(()));
        cluster.consumer.seek(&tp(), -1, SimTime::ZERO, &mut fx);
        assert!(cluster.consumer.check_invariants().unwrap_err().contains("position -1 is negative"));
    }
}
