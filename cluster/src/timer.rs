//! Timers, named by what they are for. Setting a timer that is already set moves it.

use crate::raft::RaftTimer;
use crate::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    // -- any node that sends requests --
    /// A request got no response within its timeout.
    RequestTimeout(u64),
    // -- client --
    /// A connection this client engine is setting up to the broker got no handshake within
    /// `socket.connection.setup.timeout.ms` (see [`crate::connection`]).
    ConnectionSetup(ClientEngine, BrokerId),
    // -- broker --
    BrokerHeartbeat,
    /// A broker in controlled shutdown gives up waiting for the controller and stops anyway.
    ControlledShutdownTimeout,
    /// Retry registration or a metadata fetch after a failure.
    ControllerRetry,
    /// A follower's fetcher for this leader may fetch again.
    FetchBackoff(BrokerId),
    /// A fetch held in purgatory has waited its `max_wait_ms`.
    DelayedFetchExpiry(u64),
    /// An `acks=all` produce has waited its `timeout_ms`.
    DelayedProduceExpiry(u64),
    /// The leader's periodic look for followers that fell out of sync.
    IsrCheck,
    RetentionCheck,
    /// The log cleaner thread wakes from its `log.cleaner.backoff.ms` sleep.
    LogCleaner,
    /// Time to write the `replication-offset-checkpoint` of high watermarks
    /// (`replica.high.watermark.checkpoint.interval.ms`).
    HighWatermarkCheckpoint,
    // -- controller --
    SessionCheck,
    LeaderImbalanceCheck,
    MetadataFetchExpiry(BrokerId),
    // -- KRaft (a controller in a quorum, or a broker observing it) --
    Raft(RaftTimer),
    // -- producer --
    Linger(TopicPartition),
    ProducerWakeup,
    MetadataRefresh,
    // -- group coordinator (on a broker) --
    /// The join phase of a rebalance ends (all rejoined, initial delay over, or timeout).
    GroupRebalance(String),
    /// Look for members whose session expired.
    GroupSessionCheck(String),
    /// A write to `__consumer_offsets` took longer than `offsets.commit.timeout.ms`.
    CoordinatorWriteExpiry(u64),
    // -- transaction coordinator (on a broker) --
    /// The periodic look for transactions older than their timeout.
    TxnAbortTimedOut,
    /// Send the markers and `__transaction_state` writes that failed for a retriable reason again.
    TxnMarkerRetry,
    // -- transactional producer --
    /// Retry a transactional request (`retry.backoff.ms`) after CONCURRENT_TRANSACTIONS or a
    /// coordinator error.
    TxnRetry,
    // -- consumer --
    ConsumerWakeup,
    /// Time to heartbeat the group coordinator.
    GroupHeartbeat,
    /// `auto.commit.interval.ms` passed.
    AutoCommit,
    /// Check `max.poll.interval.ms`.
    PollIntervalCheck,
    /// A closing consumer stops waiting for its last commit and LeaveGroup (`close()`'s timeout).
    ConsumerCloseTimeout,
    // -- controller (last, so that adding it left the order of the others alone) --
    /// The active controller's periodic `writeNoOpRecord` task (`metadata.max.idle.interval.ms`).
    WriteNoOp,
    // -- a client node's further consumers (last, for the same reason) --
    /// A timer of consumer engine `k` (from 1) of a client node: that consumer's own timer, apart
    /// from the first consumer's (`crate::client::Client`).
    Engine(u8, Box<Timer>),
}

/// Which engine of a client node a timer belongs to: the two keep separate connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ClientEngine {
    Producer,
    Consumer,
}

impl fmt::Display for ClientEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientEngine::Producer => "producer",
            ClientEngine::Consumer => "consumer",
        })
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timer::RequestTimeout(id) => write!(f, "request #{id} timed out"),
            Timer::ConnectionSetup(engine, b) => {
                write!(f, "{engine}: connection setup to broker-{b} timed out")
            }
            Timer::BrokerHeartbeat => write!(f, "heartbeat due"),
            Timer::ControlledShutdownTimeout => write!(f, "controlled shutdown timed out"),
            Timer::ControllerRetry => write!(f, "retry controller request"),
            Timer::FetchBackoff(leader) => write!(f, "fetch backoff from broker-{leader} over"),
            Timer::DelayedFetchExpiry(id) => write!(f, "delayed fetch #{id} expired"),
            Timer::DelayedProduceExpiry(id) => write!(f, "delayed produce #{id} expired"),
            Timer::IsrCheck => write!(f, "ISR check"),
            Timer::RetentionCheck => write!(f, "retention check"),
            Timer::LogCleaner => write!(f, "log cleaner"),
            Timer::HighWatermarkCheckpoint => write!(f, "high-watermark checkpoint"),
            Timer::SessionCheck => write!(f, "broker session check"),
            Timer::LeaderImbalanceCheck => write!(f, "leader imbalance check"),
            Timer::MetadataFetchExpiry(b) => write!(f, "metadata fetch from broker-{b} expired"),
            Timer::Raft(t) => match t {
                RaftTimer::Election => write!(f, "quorum election timeout"),
                RaftTimer::FetchTimeout => write!(f, "controller.quorum.fetch.timeout.ms passed"),
                RaftTimer::FetchRetry => write!(f, "quorum fetch retry"),
                RaftTimer::CheckQuorum => write!(f, "check-quorum: no fetch from a majority"),
                RaftTimer::BeginQuorumEpochRetry => write!(f, "BeginQuorumEpoch retry"),
                RaftTimer::FetchWait(r) => write!(f, "held quorum fetch from {r} waited long enough"),
            },
            Timer::Linger(tp) => write!(f, "linger over for {tp}"),
            Timer::ProducerWakeup => write!(f, "producer wakeup"),
            Timer::MetadataRefresh => write!(f, "metadata refresh"),
            Timer::ConsumerWakeup => write!(f, "consumer wakeup"),
            Timer::GroupRebalance(g) => write!(f, "group {g}: join phase ends"),
            Timer::GroupSessionCheck(g) => write!(f, "group {g}: session check"),
            Timer::CoordinatorWriteExpiry(id) => write!(f, "coordinator write #{id} expired"),
            Timer::TxnAbortTimedOut => write!(f, "look for timed-out transactions"),
            Timer::TxnMarkerRetry => write!(f, "retry transaction markers"),
            Timer::TxnRetry => write!(f, "retry transactional request"),
            Timer::GroupHeartbeat => write!(f, "group heartbeat due"),
            Timer::AutoCommit => write!(f, "auto-commit due"),
            Timer::PollIntervalCheck => write!(f, "max.poll.interval.ms check"),
            Timer::ConsumerCloseTimeout => write!(f, "consumer close timed out"),
            Timer::WriteNoOp => write!(f, "metadata.max.idle.interval.ms: write a NoOpRecord"),
            Timer::Engine(k, timer) => write!(f, "consumer {k}: {timer}"),
        }
    }
}
