//! A Kafka broker (KRaft mode).
//!
//! On start, a broker recovers its partitions from disk, registers with the controller, and
//! replicates the cluster metadata log from it. It stays *fenced* (no leadership) until it has
//! caught up with that log; then it heartbeats every `broker.heartbeat.interval.ms` to stay alive.
//! For every partition the metadata names it a replica of, it acts on what the metadata says:
//! leader for the current leader epoch, or follower of the current leader (see [`replica`]).
//!
//! Requests that cannot be answered at once wait in *purgatory*: a follower's fetch with no new
//! data waits up to `replica.fetch.wait.max.ms`, an `acks=all` produce waits until the high
//! watermark passes its records or its timeout expires.
//!
//! What survives a crash is [`BrokerDisk`]: the logs (including records still only in the page
//! cache, which a process crash does not lose) and the high-watermark checkpoint. A power failure
//! loses whatever was never flushed ([`BrokerDisk::lose_unflushed`]).
//!
//! The broker's work is split by role, one `impl Broker` block per file:
//! - [`lifecycle`]: start, registration, heartbeats, following the metadata log, role changes.
//! - [`leader`]: produce, fetch serving, high watermark and ISR changes, OffsetsForLeaderEpoch.
//! - [`follower`]: truncation by leader epoch (KIP-101/KIP-279) and fetching from the leader.
//! - [`purgatory`]: delayed fetches, `acks=all` produces and coordinator writes.
//! - [`group_host`]: hosting the group coordinator on `__consumer_offsets` leaders.
//! - [`txn_host`]: hosting the transaction coordinator on `__transaction_state` leaders, and
//!   writing transaction markers as a partition leader.
//! - [`disk`]: what survives a crash, writeback and retention.
//! - [`replica`]: one partition as this broker holds it.

mod disk;
mod follower;
mod group_host;
mod leader;
mod lifecycle;
mod observer;
mod purgatory;
pub mod replica;
mod txn_host;
mod txn_verification;

pub use disk::BrokerDisk;

#[cfg(test)]
mod tests;

use crate::config::{BrokerConfig, TopicConfig};
use crate::effects::{Effects, Input, StateMachine};
use crate::error::ErrorCode;
use crate::fetch_session::FetchSessionCache;
use crate::group::coordinator::{CoordinatorConfig, GroupCoordinator};
use crate::invariant::debug_check;
use crate::metadata::MetadataImage;
use crate::node::NodeId;
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use crate::txn::{TransactionCoordinator, TxnCoordinatorConfig};
use follower::Fetcher;
use purgatory::{DelayedFetch, DelayedProduce, DelayedWrite};
use replica::Replica;
use std::collections::BTreeMap;

/// `replica.socket.timeout.ms`: how long a follower waits for a fetch response from its leader.
const REPLICA_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// `controller.quorum.request.timeout.ms`: how long a broker waits for the controller.
const CONTROLLER_REQUEST_TIMEOUT_MS: u64 = 2_000;
/// How long before a broker asks again for an internal topic that does not exist yet.
const INTERNAL_TOPIC_RETRY_MS: u64 = CONTROLLER_REQUEST_TIMEOUT_MS;
/// How long to wait before asking the controller again after a failure.
const CONTROLLER_RETRY_BACKOFF_MS: u64 = 100;
/// `reconnect.backoff.max.ms`: the longest a client waits before reconnecting to a node that is
/// gone (the backoff doubles from `reconnect.backoff.ms` up to this).
const RECONNECT_BACKOFF_MAX_MS: u64 = 1_000;
/// How long a broker in controlled shutdown waits for the controller's go-ahead before it stops
/// anyway (`BrokerServer.shutdown`: `controlledShutdownFuture.get(5L, TimeUnit.MINUTES)`).
const CONTROLLED_SHUTDOWN_TIMEOUT_MS: u64 = 300_000;
/// After the first "not yet" to a controlled shutdown, the next heartbeat goes this soon
/// (`BrokerLifecycleManager`: `scheduleNextCommunication(50 ms)`).
const CONTROLLED_SHUTDOWN_FIRST_RETRY_MS: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outstanding {
    Registration,
    Heartbeat,
    MetadataFetch,
    AlterPartition(TopicPartition),
    /// A transaction marker this broker's coordinator asked a partition leader to write.
    WriteTxnMarker {
        transactional_id: String,
        partition: TopicPartition,
        coordinator_epoch: i32,
    },
    /// A transactional produce's verification with its coordinator (KIP-890), by its id in
    /// `Broker::verifications`.
    VerifyTxn(u64),
    /// A follower's fetch, with the leader epoch each partition was fetched at.
    Fetch {
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
    },
    EpochQuery {
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
    },
}

pub struct Broker {
    id: BrokerId,
    config: BrokerConfig,
    rack: Option<String>,
    controller: NodeId,
    incarnation: u64,
    replicas: BTreeMap<TopicPartition, Replica>,
    // ---- volatile: gone with the process ----
    started: bool,
    broker_epoch: i64,
    fenced: bool,
    /// Registrations and heartbeats refused or failed in a row (the backoff grows with them;
    /// Kafka's `BrokerLifecycleManager.failedAttempts`).
    failed_registrations: u32,
    /// A heartbeat lost with its connection, or refused with NOT_CONTROLLER, waits in the
    /// controller channel's queue for the next active controller (`NodeToControllerRequestThread`
    /// re-queues it and sends it once the controller is known).
    heartbeat_awaits_controller: bool,
    /// `PENDING_CONTROLLED_SHUTDOWN`: heartbeats say `want_shut_down`.
    shutting_down: bool,
    got_shutdown_response: bool,
    image: MetadataImage,
    outstanding: BTreeMap<u64, (NodeId, Outstanding)>,
    fetchers: BTreeMap<BrokerId, Fetcher>,
    delayed_fetches: BTreeMap<u64, DelayedFetch>,
    /// The fetch sessions (KIP-227) of the fetchers this broker leads for.
    fetch_sessions: FetchSessionCache,
    delayed_produces: BTreeMap<u64, DelayedProduce>,
    delayed_writes: BTreeMap<u64, DelayedWrite>,
    coordinator: GroupCoordinator,
    /// When this broker last asked the controller to create `__consumer_offsets`: asked again
    /// after `INTERNAL_TOPIC_RETRY_MS` while the topic does not exist (a creation the controller
    /// refused, say with fewer live brokers than the replication factor, is tried again, as
    /// Kafka's `AutoTopicCreationManager` does at the next FindCoordinator).
    offsets_topic_requested: Option<SimTime>,
    txn_coordinator: TransactionCoordinator,
    /// The same for `__transaction_state`.
    txn_topic_requested: Option<SimTime>,
    /// The marker channel's retry timer is set.
    txn_retry_armed: bool,
    /// Transactional produces waiting for their coordinator's verification (KIP-890).
    verifications: BTreeMap<u64, txn_verification::PendingVerification>,
    /// When this process started: the log cleaner's sleeps are counted from it.
    started_at: SimTime,
    /// The log cleaner's wake-up is set (see [`Broker::maybe_arm_log_cleaner`]).
    cleaner_armed: bool,
    /// AddOffsetsToTxn requests the transaction coordinator is handling (it handles them as
    /// AddPartitionsToTxn of the group's offsets partition): their answers take that API's name.
    txn_add_offsets_replies: std::collections::BTreeSet<(NodeId, u64)>,
    next_id: u64,
    next_producer_id: i64,
    /// With a controller quorum: the KRaft observer that replicates the metadata log.
    observer: Option<observer::Observer>,
}

impl Broker {
    /// A broker process about to start on `disk`. `incarnation` must differ between restarts.
    pub fn new(
        id: BrokerId,
        config: BrokerConfig,
        rack: Option<String>,
        controller: NodeId,
        incarnation: u64,
        disk: BrokerDisk,
    ) -> Self {
        let coordinator_config =
            CoordinatorConfig { initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms };
        let txn_config = TxnCoordinatorConfig {
            num_partitions: config.transaction_state_log_num_partitions,
            max_timeout_ms: config.transaction_max_timeout_ms,
            abort_timed_out_transaction_cleanup_interval_ms: config
                .transaction_abort_timed_out_transaction_cleanup_interval_ms,
            transaction_version: config.transaction_version,
        };
        let mut replicas = BTreeMap::new();
        for (tp, log) in disk.logs {
            let checkpoint = disk.high_watermark_checkpoints.get(&tp).copied().unwrap_or(0);
            replicas.insert(tp.clone(), Replica::new(tp, log, checkpoint));
        }
        let fetch_sessions = FetchSessionCache::new(config.max_incremental_fetch_session_cache_slots);
        Broker {
            id,
            config,
            rack,
            controller,
            incarnation,
            replicas,
            started: false,
            broker_epoch: -1,
            fenced: true,
            failed_registrations: 0,
            heartbeat_awaits_controller: false,
            shutting_down: false,
            got_shutdown_response: false,
            image: MetadataImage::default(),
            outstanding: BTreeMap::new(),
            fetchers: BTreeMap::new(),
            delayed_fetches: BTreeMap::new(),
            fetch_sessions,
            delayed_produces: BTreeMap::new(),
            delayed_writes: BTreeMap::new(),
            coordinator: GroupCoordinator::new(coordinator_config),
            offsets_topic_requested: None,
            txn_coordinator: TransactionCoordinator::new(txn_config),
            txn_topic_requested: None,
            txn_retry_armed: false,
            verifications: BTreeMap::new(),
            started_at: SimTime::ZERO,
            cleaner_armed: false,
            txn_add_offsets_replies: std::collections::BTreeSet::new(),
            next_id: 1,
            next_producer_id: 0,
            observer: None,
        }
    }

    pub fn id(&self) -> BrokerId {
        self.id
    }

    pub fn replica(&self, tp: &TopicPartition) -> Option<&Replica> {
        self.replicas.get(tp)
    }

    pub fn replicas(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.values()
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    pub fn metadata(&self) -> &MetadataImage {
        &self.image
    }

    /// The broker's metadata image, every replica it holds (as this broker), and the groups it
    /// coordinates: see [`MetadataImage::check_invariants`], [`Replica::check_invariants`] and
    /// [`GroupCoordinator::check_invariants`].
    pub fn check_invariants(&self) -> Result<(), String> {
        self.image.check_invariants().map_err(|e| format!("metadata image: {e}"))?;
        for replica in self.replicas.values() {
            replica.check_invariants(self.id)?;
        }
        self.coordinator.check_invariants()
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn topic_config(&self, tp: &TopicPartition) -> TopicConfig {
        self.image.topic_config(&tp.topic).cloned().unwrap_or_else(|| self.config.topic_defaults.clone())
    }

    /// The ISR size `acks=all` writes and (from 3.7) high-watermark progress need: Kafka's
    /// `Partition.effectiveMinIsr`, `min.insync.replicas` capped by the replication factor.
    fn effective_min_isr(&self, tp: &TopicPartition) -> usize {
        let replication_factor = self.replicas.get(tp).map_or(usize::MAX, |r| r.replicas.len());
        self.config.effective_min_isr(self.topic_config(tp).min_insync_replicas, replication_factor)
    }

    fn request(&mut self, now: SimTime, to: NodeId, what: Outstanding, body: Request, fx: &mut Effects) -> u64 {
        let correlation_id = self.next_id();
        let timeout_ms = if matches!(to, NodeId::Controller(_)) {
            CONTROLLER_REQUEST_TIMEOUT_MS
        } else {
            REPLICA_REQUEST_TIMEOUT_MS
        };
        self.outstanding.insert(correlation_id, (to, what));
        fx.set_timer(Timer::RequestTimeout(correlation_id), now.plus_ms(timeout_ms));
        fx.send(to, Message::Request { correlation_id, body });
        correlation_id
    }

    /// Whether to ask the controller again for an internal topic asked for at `requested`.
    pub(super) fn internal_topic_request_due(requested: Option<SimTime>, now: SimTime) -> bool {
        requested.is_none_or(|at| now >= at.plus_ms(INTERNAL_TOPIC_RETRY_MS))
    }

    fn respond(to: NodeId, correlation_id: u64, body: Response, fx: &mut Effects) {
        fx.send(to, Message::Response { correlation_id, body });
    }

    fn has_outstanding(&self, what: &Outstanding) -> bool {
        self.outstanding.values().any(|(_, w)| w == what)
    }

    fn on_request(&mut self, now: SimTime, from: NodeId, correlation_id: u64, body: Request, fx: &mut Effects) {
        match body {
            Request::Produce(r) => self.on_produce(now, from, correlation_id, r, fx),
            Request::Fetch(r) => self.on_fetch(now, from, correlation_id, r, fx),
            Request::ListOffsets(r) => self.on_list_offsets(from, correlation_id, r, fx),
            Request::Metadata(r) => self.on_metadata_request(from, correlation_id, r, fx),
            Request::OffsetsForLeaderEpoch(r) => self.on_offsets_for_leader_epoch(from, correlation_id, r, fx),
            Request::InitProducerId => self.on_init_producer_id(from, correlation_id, fx),
            Request::FindCoordinator(r) => self.on_find_coordinator(now, from, correlation_id, &r, fx),
            body @ (Request::InitProducerIdTransactional(_)
            | Request::AddPartitionsToTxn(_)
            | Request::AddOffsetsToTxn(_)
            | Request::EndTxn(_)) => self.on_txn_request(now, from, correlation_id, body, fx),
            Request::WriteTxnMarkers(r) => self.on_write_txn_markers(now, from, correlation_id, r, fx),
            body @ (Request::JoinGroup(_)
            | Request::SyncGroup(_)
            | Request::Heartbeat(_)
            | Request::LeaveGroup(_)
            | Request::OffsetCommit(_)
            | Request::TxnOffsetCommit(_)
            | Request::OffsetFetch(_)) => self.on_group_request(now, from, correlation_id, body, fx),
            // Controller APIs sent to a broker: Kafka answers NOT_CONTROLLER; ksim's clients never
            // send them here, so there is nothing to answer.
            Request::BrokerRegistration(_)
            | Request::BrokerHeartbeat(_)
            | Request::AlterPartition(_)
            | Request::MetadataFetch(_)
            | Request::CreateTopics(_) => {}
        }
    }

    fn on_response(&mut self, now: SimTime, correlation_id: u64, body: Response, fx: &mut Effects) {
        // A refused creation of __consumer_offsets (this broker still fenced, too few brokers
        // yet) is asked again at the next FindCoordinator, as Kafka's AutoTopicCreationManager
        // asks for a missing internal topic on every lookup.
        if let Response::CreateTopics(r) = &body {
            if r.name == crate::group::coordinator::OFFSETS_TOPIC && !r.error.is_none() {
                self.offsets_topic_requested = None;
            }
        }
        let Some((_, what)) = self.outstanding.remove(&correlation_id) else {
            return; // timed out earlier, superseded, or not tracked (CreateTopics)
        };
        fx.cancel_timer(Timer::RequestTimeout(correlation_id));
        match (what, body) {
            (Outstanding::Registration, Response::BrokerRegistration(r)) => {
                if r.error.is_none() {
                    self.failed_registrations = 0;
                    self.broker_epoch = r.broker_epoch;
                    self.fetch_metadata(now, fx);
                    self.send_heartbeat(now, fx);
                } else {
                    // DUPLICATE_BROKER_REGISTRATION while the old incarnation's session lasts.
                    self.retry_registration_later(now, fx);
                }
            }
            (Outstanding::Heartbeat, Response::BrokerHeartbeat(r)) => {
                if r.error == ErrorCode::StaleBrokerEpoch && !self.shutting_down {
                    self.broker_epoch = -1;
                    self.register(now, fx);
                } else if r.error == ErrorCode::NotController {
                    // `NodeToControllerRequestThread`: the controller moved; the request waits
                    // for the new one (the observer follows the quorum leader).
                    self.heartbeat_failed(now, false, fx);
                    return;
                } else if r.error.is_none() {
                    self.failed_registrations = 0;
                    self.fenced = r.is_fenced;
                    if self.shutting_down {
                        self.on_shutdown_answer(now, r.should_shut_down, fx);
                        return;
                    }
                }
                fx.set_timer(Timer::BrokerHeartbeat, now.plus_ms(self.config.broker_heartbeat_interval_ms));
            }
            (Outstanding::MetadataFetch, Response::MetadataFetch(r)) => {
                self.on_metadata(now, r, fx);
                self.fetch_metadata(now, fx);
            }
            (Outstanding::AlterPartition(tp), Response::AlterPartition(r)) => {
                self.on_alter_partition_answer(now, &tp, r, fx)
            }
            (Outstanding::Fetch { leader, epochs }, Response::Fetch(r)) => {
                self.on_fetch_answer(now, leader, epochs, r, fx)
            }
            (Outstanding::EpochQuery { leader, epochs }, Response::OffsetsForLeaderEpoch(r)) => {
                self.on_epoch_answer(now, leader, epochs, r, fx)
            }
            (
                Outstanding::WriteTxnMarker { transactional_id, partition, coordinator_epoch },
                Response::WriteTxnMarkers(r),
            ) => self.on_marker_answer(now, &transactional_id, &partition, coordinator_epoch, r.error, fx),
            (Outstanding::VerifyTxn(id), Response::AddPartitionsToTxn(r)) => self.on_verified(now, id, r.error, fx),
            (what, body) => panic!("broker-{}: response {} does not answer {what:?}", self.id, body.api()),
        }
    }

    /// A request got no answer (timeout) or its connection closed.
    fn on_request_failed(&mut self, now: SimTime, what: Outstanding, fx: &mut Effects) {
        match what {
            Outstanding::Registration => self.retry_registration_later(now, fx),
            Outstanding::MetadataFetch => {
                fx.set_timer(Timer::ControllerRetry, now.plus_ms(CONTROLLER_RETRY_BACKOFF_MS));
            }
            Outstanding::Heartbeat => self.heartbeat_failed(now, false, fx),
            Outstanding::AlterPartition(tp) => {
                // Clear the pending change; the next ISR check or fetch asks again.
                if let Some(state) = self.replicas.get_mut(&tp).and_then(|r| r.leader_state_mut()) {
                    state.pending_isr = None;
                }
            }
            Outstanding::Fetch { leader, .. } => {
                // `FetchSessionHandler.handleError`: the next fetch closes the session and opens
                // a new one.
                self.fetchers.entry(leader).or_default().session.handle_error();
                self.fetcher_failed(now, leader, fx)
            }
            Outstanding::EpochQuery { leader, .. } => self.fetcher_failed(now, leader, fx),
            // AddPartitionsToTxnManager: a disconnect or timeout is NETWORK_EXCEPTION, which the
            // producer retries.
            Outstanding::VerifyTxn(id) => self.on_verified(now, id, ErrorCode::NetworkException, fx),
            // TransactionMarkerChannelManager re-enqueues a request that got no answer.
            Outstanding::WriteTxnMarker { transactional_id, partition, coordinator_epoch } => self.on_marker_answer(
                now,
                &transactional_id,
                &partition,
                coordinator_epoch,
                ErrorCode::NetworkException,
                fx,
            ),
        }
    }

    fn on_timer(&mut self, now: SimTime, timer: Timer, fx: &mut Effects) {
        match timer {
            Timer::RequestTimeout(id) => match self.outstanding.remove(&id) {
                Some((_, Outstanding::Heartbeat)) => self.heartbeat_failed(now, true, fx),
                Some((_, what)) => self.on_request_failed(now, what, fx),
                None => {}
            },
            Timer::BrokerHeartbeat => {
                self.send_heartbeat(now, fx);
                fx.set_timer(Timer::BrokerHeartbeat, now.plus_ms(self.config.broker_heartbeat_interval_ms));
            }
            Timer::ControllerRetry => {
                if self.broker_epoch < 0 {
                    self.register(now, fx);
                } else {
                    self.fetch_metadata(now, fx);
                }
            }
            Timer::ControlledShutdownTimeout => fx.exit(),
            Timer::FetchBackoff(_) => {}
            Timer::DelayedFetchExpiry(id) => {
                if let Some(d) = self.delayed_fetches.remove(&id) {
                    self.answer_fetch(now, d.client, d.correlation_id, &d.request, &d.context, fx);
                }
            }
            Timer::DelayedProduceExpiry(id) => {
                if let Some(d) = self.delayed_produces.remove(&id) {
                    Self::answer_delayed_produce(d, ErrorCode::RequestTimedOut, -1, -1, fx);
                }
            }
            Timer::IsrCheck => {
                self.maybe_shrink_isr(now, fx);
                fx.set_timer(Timer::IsrCheck, now.plus_ms((self.config.replica_lag_time_max_ms / 2).max(1)));
            }
            Timer::LogCleaner => self.run_log_cleaner(now, fx),
            Timer::RetentionCheck => {
                self.apply_retention(now, fx);
                fx.set_timer(Timer::RetentionCheck, now.plus_ms(self.config.log_retention_check_interval_ms));
            }
            Timer::HighWatermarkCheckpoint => {
                self.checkpoint_high_watermarks(now, fx);
                let interval_ms = self.config.replica_high_watermark_checkpoint_interval_ms;
                fx.set_timer(Timer::HighWatermarkCheckpoint, now.plus_ms(interval_ms));
            }
            Timer::CoordinatorWriteExpiry(id) => {
                if let Some(w) = self.delayed_writes.remove(&id) {
                    self.on_coordinator_write_done(now, w.completion, ErrorCode::RequestTimedOut, fx);
                }
            }
            Timer::TxnAbortTimedOut => self.on_txn_abort_timed_out(now, fx),
            Timer::TxnMarkerRetry => self.on_txn_marker_retry(now, fx),
            timer @ (Timer::GroupRebalance(_) | Timer::GroupSessionCheck(_)) => {
                if let Some(append) = self.coordinator.on_timer(now, &timer, fx) {
                    self.coordinator_append(now, append, fx);
                }
            }
            other => panic!("broker-{} got a timer it never sets: {other:?}", self.id),
        }
    }

    fn on_connection_closed(&mut self, now: SimTime, peer: NodeId, fx: &mut Effects) {
        let failed: Vec<u64> = self.outstanding.iter().filter(|(_, (to, _))| *to == peer).map(|(id, _)| *id).collect();
        for id in failed {
            let (_, what) = self.outstanding.remove(&id).expect("listed");
            fx.cancel_timer(Timer::RequestTimeout(id));
            self.on_request_failed(now, what, fx);
        }
        // Requests from the peer that wait in purgatory have no one to answer to.
        let fetches: Vec<u64> =
            self.delayed_fetches.iter().filter(|(_, d)| d.client == peer).map(|(id, _)| *id).collect();
        for id in fetches {
            self.delayed_fetches.remove(&id);
            fx.cancel_timer(Timer::DelayedFetchExpiry(id));
        }
        let produces: Vec<u64> =
            self.delayed_produces.iter().filter(|(_, d)| d.client == peer).map(|(id, _)| *id).collect();
        for id in produces {
            self.delayed_produces.remove(&id);
            fx.cancel_timer(Timer::DelayedProduceExpiry(id));
        }
    }
}

impl StateMachine for Broker {
    fn handle(&mut self, now: SimTime, input: Input, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        match input {
            Input::Start => {
                self.start(now, fx);
                self.observer_start(now, rng, fx);
            }
            Input::Message { from, message: Message::Raft(m) } => self.observer_message(now, from, m, rng, fx),
            Input::Timer(Timer::Raft(timer)) => self.observer_timer(now, timer, rng, fx),
            Input::Message { from, message: Message::Request { correlation_id, body } } => {
                self.on_request(now, from, correlation_id, body, fx)
            }
            Input::Message { message: Message::Response { correlation_id, body }, .. } => {
                self.on_response(now, correlation_id, body, fx)
            }
            Input::Timer(timer) => self.on_timer(now, timer, fx),
            Input::ConnectionClosed { peer } => self.on_connection_closed(now, peer, fx),
            // Only clients time their connection setup.
            Input::ConnectionEstablished { .. } => {}
            Input::Shutdown => self.begin_shutdown(now, fx),
        }
        self.drive_fetchers(now, fx);
        self.maybe_arm_log_cleaner(now, fx);
        debug_check(NodeId::Broker(self.id), || self.check_invariants());
    }
}
