//! Configuration, by Kafka's own names and with Kafka's own defaults (Apache Kafka 4.0, KRaft).
//!
//! A learner who sets `min.insync.replicas` here sets what the same name means in Kafka. Every
//! struct is built from its defaults and then overridden key by key with
//! [`Configurable::set_checked`]: [`validate`] checks the value as Kafka's `ConfigDef` would, then
//! [`Configurable::set`] parses it, rejecting unknown keys and malformed values with a message
//! naming the key. Once every key is set, [`validate`]'s `producer`, `consumer` and `broker` check
//! the settings together, as the Java clients and the broker do at construction.
//!
//! A few timings Kafka allows at 0 (`request.timeout.ms`, `retry.backoff.ms`, the reconnect
//! backoffs, `metadata.max.age.ms`, `heartbeat.interval.ms`, `auto.commit.interval.ms`, ...) ksim
//! floors at 1 ms (the `.max(1)` below): in a simulation a zero-time retry loop would never let
//! virtual time move.

use crate::partitioner::PartitionerKind;
use crate::protocol::IsolationLevel;
use crate::version::KafkaVersion;
use serde::{Deserialize, Serialize};
use std::fmt;

pub mod validate;

/// A rejected config entry: which key, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// How long a client stays away from a broker whose connection failed: `reconnect.backoff.ms`,
/// doubling with each failure in a row up to `reconnect.backoff.max.ms` (Kafka adds ±20% jitter;
/// ksim leaves it out so a backoff reads the same in every run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReconnectBackoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for ReconnectBackoff {
    fn default() -> Self {
        ReconnectBackoff { base_ms: 50, max_ms: 1_000 }
    }
}

/// `socket.connection.setup.timeout.ms` / `socket.connection.setup.timeout.max.ms` (Kafka's
/// `CommonClientConfigs`, defaults 10 s and 30 s): how long a client waits for a new connection to
/// be set up before it gives up on the broker, doubling with each setup failure in a row up to the
/// max (`ClusterConnectionStates.updateConnectionSetupTimeout`; Kafka adds ±20% jitter, ksim
/// leaves it out so a timeout reads the same in every run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionSetupTimeout {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for ConnectionSetupTimeout {
    fn default() -> Self {
        ConnectionSetupTimeout { base_ms: 10_000, max_ms: 30_000 }
    }
}

/// Implemented by every config struct: override one key from its text form.
pub trait Configurable {
    /// The keys this struct understands, for error messages.
    const KEYS: &'static [&'static str];
    /// Which of Kafka's config classes the keys belong to.
    const SCOPE: validate::Scope;
    /// Parse one value into its field. Range checks are [`validate::check_value`]'s job: use
    /// [`Configurable::set_checked`].
    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError>;

    /// Check the value as Kafka's `ConfigDef` does under `version`, then set it.
    fn set_checked(&mut self, key: &str, value: &str, version: KafkaVersion) -> Result<(), ConfigError> {
        validate::check_value(Self::SCOPE, key, value, version)?;
        self.set(key, value)
    }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| ConfigError { key: key.to_string(), message: format!("expected {what}, found `{value}`") })
}

fn parse_u64(key: &str, value: &str) -> Result<u64, ConfigError> {
    // Kafka writes "never" as Long.MAX_VALUE; accept -1 for the size limits that use it.
    parse(key, value, "a non-negative whole number")
}

fn parse_i64(key: &str, value: &str) -> Result<i64, ConfigError> {
    parse(key, value, "a whole number")
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    parse(key, value, "true or false")
}

fn unknown(key: &str, keys: &[&str]) -> ConfigError {
    ConfigError { key: key.to_string(), message: format!("unknown config; known here: {}", keys.join(", ")) }
}

/// Settings that a topic may override and that otherwise come from the broker's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// `min.insync.replicas`: with `acks=all`, the fewest in-sync replicas a write needs.
    pub min_insync_replicas: usize,
    /// `unclean.leader.election.enable`: may an out-of-sync replica become leader?
    pub unclean_leader_election_enable: bool,
    /// `retention.ms`: delete segments whose newest record is older than this (-1: never).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger (-1: no limit).
    pub retention_bytes: i64,
    /// `segment.bytes`: roll a new segment when the active one reaches this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a new segment when the active one is this old.
    pub segment_ms: u64,
    /// `flush.messages`: fsync after this many records (Kafka's default: never; the OS decides).
    pub flush_messages: u64,
    /// `flush.ms`: fsync when the oldest unflushed record is this old (default: never).
    pub flush_ms: u64,
    /// `cleanup.policy`: `delete` (retention), `compact` (the log cleaner), or both.
    #[serde(default, skip_serializing_if = "CleanupPolicy::is_delete")]
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio` (0.5), in millionths so the config stays `Eq`: the cleaner
    /// takes a log once its dirty bytes are more than this share of its cleanable part.
    #[serde(default = "default_min_cleanable_dirty_ratio_ppm", skip_serializing_if = "is_default_dirty_ratio")]
    pub min_cleanable_dirty_ratio_ppm: u32,
    /// `min.compaction.lag.ms` (0): a record stays uncompacted at least this long.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_compaction_lag_ms: u64,
    /// `max.compaction.lag.ms` (KIP-354; Long.MAX_VALUE): a record older than this is compacted
    /// whatever the dirty ratio, and the active segment rolls by then.
    #[serde(default = "default_max_compaction_lag_ms", skip_serializing_if = "is_default_max_compaction_lag")]
    pub max_compaction_lag_ms: u64,
    /// `delete.retention.ms` (24 h): how long a tombstone (and an empty transaction's marker) is
    /// kept after the first cleaning that kept it (KIP-534).
    #[serde(default = "default_delete_retention_ms", skip_serializing_if = "is_default_delete_retention")]
    pub delete_retention_ms: u64,
}

/// `cleanup.policy` (`TopicConfig.CLEANUP_POLICY_CONFIG`): a list of `delete` and `compact`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CleanupPolicy {
    #[default]
    Delete,
    Compact,
    /// `compact,delete`: the cleaner compacts, and retention deletes old segments as well.
    CompactDelete,
}

impl CleanupPolicy {
    fn is_delete(&self) -> bool {
        *self == CleanupPolicy::Delete
    }

    /// Whether the log cleaner compacts the topic (`LogConfig.compact`).
    pub fn compact(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// Whether retention deletes old segments (`LogConfig.delete`).
    pub fn delete(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        let mut compact = false;
        let mut delete = false;
        for item in value.split(',').map(str::trim) {
            match item {
                "compact" => compact = true,
                "delete" => delete = true,
                _ => {
                    return Err(ConfigError {
                        key: key.to_string(),
                        message: format!("`{item}` is not a cleanup policy: delete, compact, or compact,delete"),
                    })
                }
            }
        }
        Ok(match (compact, delete) {
            (true, true) => CleanupPolicy::CompactDelete,
            (true, false) => CleanupPolicy::Compact,
            // Kafka 4.x also accepts an empty list (KIP-1106: no cleanup); ksim does not model it.
            (false, _) => CleanupPolicy::Delete,
        })
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        })
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `LogConfig.DEFAULT_MIN_CLEANABLE_DIRTY_RATIO`: 0.5.
fn default_min_cleanable_dirty_ratio_ppm() -> u32 {
    500_000
}

fn is_default_dirty_ratio(v: &u32) -> bool {
    *v == default_min_cleanable_dirty_ratio_ppm()
}

/// `LogConfig.DEFAULT_MAX_COMPACTION_LAG_MS`: Long.MAX_VALUE.
fn default_max_compaction_lag_ms() -> u64 {
    i64::MAX as u64
}

fn is_default_max_compaction_lag(v: &u64) -> bool {
    *v == default_max_compaction_lag_ms()
}

/// `LogConfig.DEFAULT_DELETE_RETENTION_MS`: one day.
fn default_delete_retention_ms() -> u64 {
    24 * 60 * 60 * 1000
}

fn is_default_delete_retention(v: &u64) -> bool {
    *v == default_delete_retention_ms()
}

/// A ratio written as a decimal (`0.5`), in millionths.
fn parse_ratio_ppm(key: &str, value: &str) -> Result<u32, ConfigError> {
    let ratio: f64 = parse(key, value, "a decimal number between 0 and 1, such as \"0.5\"")?;
    if !(0.0..=1.0).contains(&ratio) {
        return Err(ConfigError { key: key.to_string(), message: format!("{ratio} is not between 0 and 1") });
    }
    Ok((ratio * 1_000_000.0).round() as u32)
}

impl TopicConfig {
    /// The longest the active segment may stay open: `segment.ms`, or for a compacted topic with
    /// `max.compaction.lag.ms` set, the smaller of the two (`LogConfig.maxSegmentMs`, KIP-354), so
    /// that a record can become cleanable in time.
    pub fn max_segment_ms(&self) -> u64 {
        if self.cleanup_policy.compact() {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            flush_messages: u64::MAX,
            flush_ms: u64::MAX,
            cleanup_policy: CleanupPolicy::Delete,
            min_cleanable_dirty_ratio_ppm: default_min_cleanable_dirty_ratio_ppm(),
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: default_max_compaction_lag_ms(),
            delete_retention_ms: default_delete_retention_ms(),
        }
    }
}

impl Configurable for TopicConfig {
    const KEYS: &'static [&'static str] = &[
        "min.insync.replicas",
        "unclean.leader.election.enable",
        "retention.ms",
        "retention.bytes",
        "segment.bytes",
        "segment.ms",
        "flush.messages",
        "flush.ms",
        "cleanup.policy",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
        "delete.retention.ms",
    ];
    const SCOPE: validate::Scope = validate::Scope::Topic;

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "min.insync.replicas" => self.min_insync_replicas = parse(key, value, "a whole number of replicas")?,
            "unclean.leader.election.enable" => self.unclean_leader_election_enable = parse_bool(key, value)?,
            "retention.ms" => self.retention_ms = parse_i64(key, value)?,
            "retention.bytes" => self.retention_bytes = parse_i64(key, value)?,
            "segment.bytes" => self.segment_bytes = parse_u64(key, value)?,
            "segment.ms" => self.segment_ms = parse_u64(key, value)?,
            "flush.messages" => self.flush_messages = parse_u64(key, value)?,
            "flush.ms" => self.flush_ms = parse_u64(key, value)?,
            "cleanup.policy" => self.cleanup_policy = CleanupPolicy::parse(key, value)?,
            "min.cleanable.dirty.ratio" => self.min_cleanable_dirty_ratio_ppm = parse_ratio_ppm(key, value)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_u64(key, value)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = parse_u64(key, value)?.max(1),
            "delete.retention.ms" => self.delete_retention_ms = parse_u64(key, value)?,
            _ => return Err(unknown(key, Self::KEYS)),
        }
        Ok(())
    }
}

/// Broker and controller settings; `topic_defaults` are the `log.*`-style defaults every topic
/// starts from (in Kafka, `log.retention.ms` is the broker default for `retention.ms`; ksim
/// accepts the topic-level names at the broker level too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfig {
    pub topic_defaults: TopicConfig,
    /// `replica.lag.time.max.ms`: a follower that has not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms`: how long a leader may hold a follower's fetch with no new data.
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.backoff.ms`: pause before a follower retries a failed fetch.
    pub replica_fetch_backoff_ms: u64,
    /// `max.incremental.fetch.session.cache.slots` (1000): how many fetch sessions (KIP-227) the
    /// broker keeps, split over its eight cache shards.
    #[serde(
        default = "default_fetch_session_cache_slots",
        skip_serializing_if = "is_default_fetch_session_cache_slots"
    )]
    pub max_incremental_fetch_session_cache_slots: u32,
    /// `broker.heartbeat.interval.ms`: how often a broker heartbeats the controller.
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: the controller fences a broker silent for this long.
    pub broker_session_timeout_ms: u64,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub log_retention_check_interval_ms: u64,
    /// `log.cleaner.backoff.ms` (15 s): how long the log cleaner sleeps when no log needs
    /// cleaning (`CleanerConfig.LOG_CLEANER_BACKOFF_MS`).
    #[serde(default = "default_log_cleaner_backoff_ms")]
    pub log_cleaner_backoff_ms: u64,
    /// `offsets.topic.segment.bytes` (100 MiB): `__consumer_offsets`'s `segment.bytes`.
    #[serde(default = "default_internal_topic_segment_bytes")]
    pub offsets_topic_segment_bytes: u64,
    /// `transaction.state.log.segment.bytes` (100 MiB): `__transaction_state`'s `segment.bytes`.
    #[serde(default = "default_internal_topic_segment_bytes")]
    pub transaction_state_log_segment_bytes: u64,
    /// `default.replication.factor` and `num.partitions`, for auto-created topics.
    pub default_replication_factor: usize,
    pub num_partitions: i32,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: usize,
    /// `transaction.state.log.num.partitions`, `transaction.state.log.replication.factor` and
    /// `transaction.state.log.min.isr`: the `__transaction_state` topic (50, 3, 2).
    #[serde(default = "default_transaction_state_log_num_partitions")]
    pub transaction_state_log_num_partitions: i32,
    #[serde(default = "default_transaction_state_log_replication_factor")]
    pub transaction_state_log_replication_factor: usize,
    #[serde(default = "default_transaction_state_log_min_isr")]
    pub transaction_state_log_min_isr: usize,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask (15 min).
    #[serde(default = "default_transaction_max_timeout_ms")]
    pub transaction_max_timeout_ms: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often the transaction
    /// coordinator looks for transactions older than their timeout (10 s).
    #[serde(default = "default_transaction_abort_timed_out_transaction_cleanup_interval_ms")]
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`: the coordinator answers a
    /// JoinGroup whose `session.timeout.ms` is outside them with INVALID_SESSION_TIMEOUT.
    #[serde(default = "default_group_min_session_timeout_ms")]
    pub group_min_session_timeout_ms: u64,
    #[serde(default = "default_group_max_session_timeout_ms")]
    pub group_max_session_timeout_ms: u64,
    /// `auto.leader.rebalance.enable`: move leadership back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `metadata.max.idle.interval.ms` (KIP-835, default 500): the active controller of a quorum
    /// appends a `NoOpRecord` this often (`QuorumController`'s `writeNoOpRecord` periodic task);
    /// 0 disables it, as in Kafka (`ControllerServer` passes no interval then).
    #[serde(default = "default_metadata_max_idle_interval_ms")]
    pub metadata_max_idle_interval_ms: u64,
    /// `leader.imbalance.per.broker.percentage`: accepted, but the KRaft controller ignores it
    /// (only the ZooKeeper controller used it); one imbalanced partition schedules a balance.
    pub leader_imbalance_per_broker_percentage: u64,
    /// `replica.high.watermark.checkpoint.interval.ms`: how often the broker writes its
    /// `replication-offset-checkpoint` file of high watermarks.
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// Linux's `vm.dirty_expire_centisecs` (not a Kafka config; the broker host's kernel): a file
    /// whose pages have been dirty this long is written back, whole, at the next flusher wake-up.
    pub vm_dirty_expire_centisecs: u64,
    /// Linux's `vm.dirty_writeback_centisecs`: how often the kernel's flusher wakes up. Together
    /// the two decide what a power failure loses: an appended segment reaches the disk every
    /// ~30-35 s, so up to ~35 s of acknowledged, unflushed writes (see `sim`'s host writeback).
    pub vm_dirty_writeback_centisecs: u64,
    /// `controlled.shutdown.enable`: a broker asked to stop first asks the controller to move its
    /// leaderships away (`BrokerServer.shutdown`).
    pub controlled_shutdown_enable: bool,
    /// The Kafka release the cluster runs (a scenario's `cluster.kafka_version`), which decides
    /// behaviour Kafka has no setting for; see [`crate::version`].
    pub kafka_version: KafkaVersion,
    /// The `eligible.leader.replicas.version` feature level (0 or 1; KIP-966). Kafka sets it with
    /// `kafka-features.sh` or at `kafka-storage.sh format`; ksim takes it among the cluster configs.
    /// Defaults from the version: on from 4.1.
    pub eligible_leader_replicas_enabled: bool,
    /// `transaction.partition.verification.enable` (KIP-890 part 1, 3.6+; default true): a
    /// partition leader verifies a transactional produce with the transaction coordinator before
    /// it appends. Defaults from the version: on from 3.6, absent before.
    pub transaction_partition_verification_enable: bool,
    /// The finalized `transaction.version` feature level (0, 1 or 2; KIP-890 part 2, KIP-1022).
    /// Kafka sets it at `kafka-storage.sh format` (`--feature transaction.version=N`) or with
    /// `kafka-features.sh upgrade`; ksim takes it among the cluster configs. Defaults from the
    /// version: 2 from 4.0, 0 before. At 2 the coordinator bumps the producer epoch at every
    /// EndTxn and clients add no partitions themselves (see [`crate::txn`]); 1 changes only the
    /// transaction log's record format, which ksim does not model, so it behaves as 0.
    pub transaction_version: u8,
}

impl BrokerConfig {
    /// Whether the cluster runs transaction version 2 (`TransactionVersion.supportsEpochBump`).
    pub fn transaction_v2(&self) -> bool {
        self.transaction_version >= 2
    }

    /// Kafka's defaults as of `version`.
    pub fn for_version(version: KafkaVersion) -> Self {
        BrokerConfig {
            kafka_version: version,
            eligible_leader_replicas_enabled: version.elr_by_default(),
            transaction_partition_verification_enable: version.transaction_verification(),
            transaction_version: version.default_transaction_version(),
            ..BrokerConfig::default()
        }
    }

    /// Kafka's `Partition.effectiveMinIsr` (3.7+): `min.insync.replicas` capped by the replication
    /// factor, so RF 2 with `min.insync.replicas=3` needs 2. Before 3.7, the configured value.
    pub fn effective_min_isr(&self, min_insync_replicas: usize, replication_factor: usize) -> usize {
        if self.kafka_version.strict_min_isr() {
            min_insync_replicas.min(replication_factor)
        } else {
            min_insync_replicas
        }
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            topic_defaults: TopicConfig::default(),
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_backoff_ms: 1_000,
            max_incremental_fetch_session_cache_slots: default_fetch_session_cache_slots(),
            broker_heartbeat_interval_ms: 2_000,
            broker_session_timeout_ms: 9_000,
            log_retention_check_interval_ms: 300_000,
            log_cleaner_backoff_ms: default_log_cleaner_backoff_ms(),
            offsets_topic_segment_bytes: default_internal_topic_segment_bytes(),
            transaction_state_log_segment_bytes: default_internal_topic_segment_bytes(),
            default_replication_factor: 1,
            num_partitions: 1,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            transaction_state_log_num_partitions: default_transaction_state_log_num_partitions(),
            transaction_state_log_replication_factor: default_transaction_state_log_replication_factor(),
            transaction_state_log_min_isr: default_transaction_state_log_min_isr(),
            transaction_max_timeout_ms: default_transaction_max_timeout_ms(),
            transaction_abort_timed_out_transaction_cleanup_interval_ms:
                default_transaction_abort_timed_out_transaction_cleanup_interval_ms(),
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: default_group_min_session_timeout_ms(),
            group_max_session_timeout_ms: default_group_max_session_timeout_ms(),
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            metadata_max_idle_interval_ms: default_metadata_max_idle_interval_ms(),
            leader_imbalance_per_broker_percentage: 10,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            vm_dirty_expire_centisecs: 3_000,
            vm_dirty_writeback_centisecs: 500,
            controlled_shutdown_enable: true,
            kafka_version: KafkaVersion::CURRENT,
            eligible_leader_replicas_enabled: KafkaVersion::CURRENT.elr_by_default(),
            transaction_partition_verification_enable: KafkaVersion::CURRENT.transaction_verification(),
            transaction_version: KafkaVersion::CURRENT.default_transaction_version(),
        }
    }
}

/// `CleanerConfig.LOG_CLEANER_BACKOFF_MS_DEFAULT`: 15 s.
fn default_log_cleaner_backoff_ms() -> u64 {
    15_000
}

/// `GroupCoordinatorConfig.OFFSETS_TOPIC_SEGMENT_BYTES_DEFAULT` and
/// `TransactionLogConfig.TRANSACTIONS_TOPIC_SEGMENT_BYTES_DEFAULT`: 100 MiB.
fn default_internal_topic_segment_bytes() -> u64 {
    100 * 1024 * 1024
}

impl BrokerConfig {
    /// The config of an internal topic (`__consumer_offsets`, `__transaction_state`): the broker's
    /// topic defaults, compacted, with the topic's own segment size (`GroupCoordinatorService`'s
    /// and `TransactionStateManager`'s topic configs: `cleanup.policy=compact`, `segment.bytes`).
    pub fn internal_topic_config(&self, segment_bytes: u64) -> TopicConfig {
        TopicConfig { cleanup_policy: CleanupPolicy::Compact, segment_bytes, ..self.topic_defaults.clone() }
    }
}

/// `TransactionLogConfig.TRANSACTIONS_TOPIC_PARTITIONS_DEFAULT`.
fn default_transaction_state_log_num_partitions() -> i32 {
    50
}

/// `TransactionLogConfig.TRANSACTIONS_TOPIC_REPLICATION_FACTOR_DEFAULT`.
fn default_transaction_state_log_replication_factor() -> usize {
    3
}

/// `TransactionLogConfig.TRANSACTIONS_TOPIC_MIN_ISR_DEFAULT`.
fn default_transaction_state_log_min_isr() -> usize {
    2
}

/// `TransactionStateManagerConfig.TRANSACTIONS_MAX_TIMEOUT_MS_DEFAULT`: 15 min.
fn default_transaction_max_timeout_ms() -> u64 {
    900_000
}

/// `TransactionStateManagerConfig.TRANSACTIONS_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS_DEFAULT`.
fn default_transaction_abort_timed_out_transaction_cleanup_interval_ms() -> u64 {
    10_000
}

/// `GroupCoordinatorConfig.GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT`: 6 s.
fn default_group_min_session_timeout_ms() -> u64 {
    6_000
}

/// `ServerConfigs.MAX_INCREMENTAL_FETCH_SESSION_CACHE_SLOTS_DEFAULT`: 1000.
fn default_fetch_session_cache_slots() -> u32 {
    1_000
}

fn is_default_fetch_session_cache_slots(v: &u32) -> bool {
    *v == default_fetch_session_cache_slots()
}

/// `KRaftConfigs.METADATA_MAX_IDLE_INTERVAL_MS_DEFAULT`: 500 ms.
fn default_metadata_max_idle_interval_ms() -> u64 {
    500
}

/// `GroupCoordinatorConfig.GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT`: 30 min.
fn default_group_max_session_timeout_ms() -> u64 {
    1_800_000
}

impl Configurable for BrokerConfig {
    const KEYS: &'static [&'static str] = &[
        "replica.lag.time.max.ms",
        "replica.fetch.wait.max.ms",
        "replica.fetch.backoff.ms",
        "max.incremental.fetch.session.cache.slots",
        "broker.heartbeat.interval.ms",
        "broker.session.timeout.ms",
        "log.retention.check.interval.ms",
        "log.cleaner.backoff.ms",
        "log.cleaner.min.cleanable.ratio",
        "log.cleaner.delete.retention.ms",
        "log.cleaner.min.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        "offsets.topic.segment.bytes",
        "transaction.state.log.segment.bytes",
        "default.replication.factor",
        "num.partitions",
        "offsets.topic.num.partitions",
        "offsets.topic.replication.factor",
        "transaction.state.log.num.partitions",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "transaction.max.timeout.ms",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "group.initial.rebalance.delay.ms",
        "group.min.session.timeout.ms",
        "group.max.session.timeout.ms",
        "auto.leader.rebalance.enable",
        "leader.imbalance.check.interval.seconds",
        "leader.imbalance.per.broker.percentage",
        "metadata.max.idle.interval.ms",
        "replica.high.watermark.checkpoint.interval.ms",
        "vm.dirty_expire_centisecs",
        "vm.dirty_writeback_centisecs",
        "controlled.shutdown.enable",
        "eligible.leader.replicas.version",
        "transaction.partition.verification.enable",
        "transaction.version",
        "(and every topic-level config)",
    ];
    const SCOPE: validate::Scope = validate::Scope::Broker;

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = parse_u64(key, value)?,
            "replica.fetch.wait.max.ms" => self.replica_fetch_wait_max_ms = parse_u64(key, value)?,
            "replica.fetch.backoff.ms" => self.replica_fetch_backoff_ms = parse_u64(key, value)?,
            "max.incremental.fetch.session.cache.slots" => {
                self.max_incremental_fetch_session_cache_slots = parse(key, value, "a whole number")?
            }
            "broker.heartbeat.interval.ms" => self.broker_heartbeat_interval_ms = parse_u64(key, value)?.max(1),
            "broker.session.timeout.ms" => self.broker_session_timeout_ms = parse_u64(key, value)?,
            "log.retention.check.interval.ms" => self.log_retention_check_interval_ms = parse_u64(key, value)?,
            "log.cleaner.backoff.ms" => self.log_cleaner_backoff_ms = parse_u64(key, value)?.max(1),
            "offsets.topic.segment.bytes" => self.offsets_topic_segment_bytes = parse_u64(key, value)?.max(1),
            "transaction.state.log.segment.bytes" => {
                self.transaction_state_log_segment_bytes = parse_u64(key, value)?.max(1)
            }
            // Kafka's broker-level names for the cleaner's topic defaults.
            "log.cleaner.min.cleanable.ratio" => {
                self.topic_defaults.min_cleanable_dirty_ratio_ppm = parse_ratio_ppm(key, value)?
            }
            "log.cleaner.delete.retention.ms" => self.topic_defaults.delete_retention_ms = parse_u64(key, value)?,
            "log.cleaner.min.compaction.lag.ms" => self.topic_defaults.min_compaction_lag_ms = parse_u64(key, value)?,
            "log.cleaner.max.compaction.lag.ms" => {
                self.topic_defaults.max_compaction_lag_ms = parse_u64(key, value)?.max(1)
            }
            "default.replication.factor" => self.default_replication_factor = parse(key, value, "a whole number")?,
            "num.partitions" => self.num_partitions = parse(key, value, "a whole number")?,
            "offsets.topic.num.partitions" => self.offsets_topic_num_partitions = parse(key, value, "a whole number")?,
            "offsets.topic.replication.factor" => {
                self.offsets_topic_replication_factor = parse(key, value, "a whole number")?
            }
            "transaction.state.log.num.partitions" => {
                self.transaction_state_log_num_partitions = parse(key, value, "a whole number")?
            }
            "transaction.state.log.replication.factor" => {
                self.transaction_state_log_replication_factor = parse(key, value, "a whole number")?
            }
            "transaction.state.log.min.isr" => {
                self.transaction_state_log_min_isr = parse(key, value, "a whole number")?
            }
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms = parse_u64(key, value)?,
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.transaction_abort_timed_out_transaction_cleanup_interval_ms = parse_u64(key, value)?.max(1)
            }
            "group.initial.rebalance.delay.ms" => self.group_initial_rebalance_delay_ms = parse_u64(key, value)?,
            "group.min.session.timeout.ms" => self.group_min_session_timeout_ms = parse_u64(key, value)?,
            "group.max.session.timeout.ms" => self.group_max_session_timeout_ms = parse_u64(key, value)?,
            "auto.leader.rebalance.enable" => self.auto_leader_rebalance_enable = parse_bool(key, value)?,
            "leader.imbalance.check.interval.seconds" => {
                self.leader_imbalance_check_interval_seconds = parse_u64(key, value)?
            }
            "leader.imbalance.per.broker.percentage" => {
                self.leader_imbalance_per_broker_percentage = parse_u64(key, value)?
            }
            "metadata.max.idle.interval.ms" => self.metadata_max_idle_interval_ms = parse_u64(key, value)?,
            "replica.high.watermark.checkpoint.interval.ms" => {
                self.replica_high_watermark_checkpoint_interval_ms = parse_u64(key, value)?.max(1)
            }
            "vm.dirty_expire_centisecs" => self.vm_dirty_expire_centisecs = parse_u64(key, value)?,
            "vm.dirty_writeback_centisecs" => self.vm_dirty_writeback_centisecs = parse_u64(key, value)?.max(1),
            "controlled.shutdown.enable" => self.controlled_shutdown_enable = parse_bool(key, value)?,
            "transaction.partition.verification.enable" => {
                self.transaction_partition_verification_enable = parse_bool(key, value)?
            }
            "transaction.version" => {
                self.transaction_version = match value {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    _ => {
                        return Err(ConfigError {
                            key: key.into(),
                            message: format!(
                                "`{value}` is not a feature level: 0, 1 or 2 (TransactionVersion TV_0, TV_1, TV_2)"
                            ),
                        })
                    }
                }
            }
            "eligible.leader.replicas.version" => {
                self.eligible_leader_replicas_enabled = match value {
                    "0" => false,
                    "1" => true,
                    _ => {
                        return Err(ConfigError {
                            key: key.into(),
                            message: format!("`{value}` is not a feature level: 0 (off) or 1 (on)"),
                        })
                    }
                }
            }
            _ => {
                let topic_key = key.strip_prefix("log.").unwrap_or(key);
                return self.topic_defaults.set(topic_key, value).map_err(|e| {
                    if e.message.starts_with("unknown config") {
                        unknown(key, Self::KEYS)
                    } else {
                        ConfigError { key: key.to_string(), message: e.message }
                    }
                });
            }
        }
        Ok(())
    }
}

/// `acks`: how many replicas must have a write before the leader answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Acks {
    /// `acks=0`: fire and forget; the producer never hears back.
    None,
    /// `acks=1`: the leader has written it (to its page cache).
    Leader,
    /// `acks=all` (`-1`): every in-sync replica has it, and there are at least
    /// `min.insync.replicas` of them.
    All,
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// `enable.idempotence`: producer id + sequence numbers, so retries cannot duplicate. This is
    /// the value in effect: what the user set, or else the default, which gives way to the other
    /// settings (see [`validate::producer`]).
    pub enable_idempotence: bool,
    /// What the user set `enable.idempotence` to, if they set it at all. Since Kafka 3.2
    /// (KAFKA-13673, also in 3.0.1 and 3.1.1) that difference matters: an unset idempotence gives
    /// way quietly to `acks=1`, an explicit `true` does not.
    #[serde(default)]
    pub enable_idempotence_explicit: Option<bool>,
    /// `linger.ms`: wait this long for more records before sending a batch.
    pub linger_ms: u64,
    /// `batch.size`: a batch is sent when it reaches this many bytes.
    pub batch_size: usize,
    /// `delivery.timeout.ms`: give up on a record this long after `send()`.
    pub delivery_timeout_ms: u64,
    /// `request.timeout.ms`: how long to wait for one produce response.
    pub request_timeout_ms: u64,
    /// `retry.backoff.ms`: the first retry waits this long...
    pub retry_backoff_ms: u64,
    /// `retry.backoff.max.ms`: ...and each further one twice as long, up to this (KIP-580).
    pub retry_backoff_max_ms: u64,
    /// `retries`: Kafka's default is effectively unlimited (bounded by `delivery.timeout.ms`).
    pub retries: u32,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight_requests_per_connection: usize,
    /// `metadata.max.age.ms`.
    pub metadata_max_age_ms: u64,
    /// `reconnect.backoff.ms` / `reconnect.backoff.max.ms`: how long to leave a broker alone
    /// after its connection failed.
    pub reconnect_backoff: ReconnectBackoff,
    /// `socket.connection.setup.timeout.ms` / `socket.connection.setup.timeout.max.ms`.
    #[serde(default)]
    pub connection_setup_timeout: ConnectionSetupTimeout,
    /// Which partitioner: the Java client's (murmur2) or librdkafka's (what Confluent.Kafka uses).
    pub partitioner: PartitionerKind,
    /// `transactional.id`: makes the producer transactional (initTransactions, begin, commit,
    /// abort); its coordinator fences older producers with the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a transaction run before aborting
    /// it (`ProducerConfig`: 60 s).
    #[serde(default = "default_transaction_timeout_ms")]
    pub transaction_timeout_ms: u64,
}

fn default_transaction_timeout_ms() -> u64 {
    60_000
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            enable_idempotence: true,
            enable_idempotence_explicit: None,
            linger_ms: 5,
            batch_size: 16_384,
            delivery_timeout_ms: 120_000,
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            retries: i32::MAX as u32,
            max_in_flight_requests_per_connection: 5,
            metadata_max_age_ms: 300_000,
            reconnect_backoff: ReconnectBackoff::default(),
            connection_setup_timeout: ConnectionSetupTimeout::default(),
            partitioner: PartitionerKind::default(),
            transactional_id: None,
            transaction_timeout_ms: default_transaction_timeout_ms(),
        }
    }
}

impl Configurable for ProducerConfig {
    const KEYS: &'static [&'static str] = &[
        "acks",
        "enable.idempotence",
        "linger.ms",
        "batch.size",
        "delivery.timeout.ms",
        "request.timeout.ms",
        "socket.connection.setup.timeout.ms",
        "socket.connection.setup.timeout.max.ms",
        "retry.backoff.ms",
        "retry.backoff.max.ms",
        "retries",
        "max.in.flight.requests.per.connection",
        "metadata.max.age.ms",
        "partitioner",
        "transactional.id",
        "transaction.timeout.ms",
    ];
    const SCOPE: validate::Scope = validate::Scope::Producer;

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            // ProducerConfig: acks, in("all", "-1", "0", "1").
            "acks" => {
                self.acks = match value.trim() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    other => {
                        return Err(ConfigError {
                            key: key.into(),
                            message: format!("expected 0, 1 or all, found `{other}`"),
                        })
                    }
                }
            }
            "enable.idempotence" => self.enable_idempotence_explicit = Some(parse_bool(key, value)?),
            "linger.ms" => self.linger_ms = parse_u64(key, value)?,
            "batch.size" => self.batch_size = parse(key, value, "a size in bytes")?,
            "delivery.timeout.ms" => self.delivery_timeout_ms = parse_u64(key, value)?,
            "request.timeout.ms" => self.request_timeout_ms = parse_u64(key, value)?.max(1),
            "retry.backoff.ms" => self.retry_backoff_ms = parse_u64(key, value)?.max(1),
            "retry.backoff.max.ms" => self.retry_backoff_max_ms = parse_u64(key, value)?.max(1),
            "reconnect.backoff.ms" => self.reconnect_backoff.base_ms = parse_u64(key, value)?.max(1),
            "reconnect.backoff.max.ms" => self.reconnect_backoff.max_ms = parse_u64(key, value)?.max(1),
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout.base_ms = parse_u64(key, value)?.max(1)
            }
            "socket.connection.setup.timeout.max.ms" => {
                self.connection_setup_timeout.max_ms = parse_u64(key, value)?.max(1)
            }
            "retries" => self.retries = parse(key, value, "a whole number")?,
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight_requests_per_connection = parse(key, value, "a whole number")?
            }
            "metadata.max.age.ms" => self.metadata_max_age_ms = parse_u64(key, value)?.max(1),
            "partitioner" => {
                self.partitioner = value.parse().map_err(|message: String| ConfigError { key: key.into(), message })?
            }
            "transactional.id" => self.transactional_id = Some(value.to_string()).filter(|v| !v.is_empty()),
            "transaction.timeout.ms" => self.transaction_timeout_ms = parse_u64(key, value)?,
            _ => return Err(unknown(key, Self::KEYS)),
        }
        Ok(())
    }
}

/// `auto.offset.reset`: where a consumer starts when it has no valid position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetReset {
    Earliest,
    Latest,
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerConfig {
    pub auto_offset_reset: OffsetReset,
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch with no data.
    pub fetch_max_wait_ms: u64,
    /// `max.poll.records`.
    pub max_poll_records: usize,
    /// `request.timeout.ms`.
    pub request_timeout_ms: u64,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: u64,
    /// `metadata.max.age.ms`.
    pub metadata_max_age_ms: u64,
    /// `reconnect.backoff.ms` / `reconnect.backoff.max.ms`.
    pub reconnect_backoff: ReconnectBackoff,
    /// `socket.connection.setup.timeout.ms` / `socket.connection.setup.timeout.max.ms`.
    #[serde(default)]
    pub connection_setup_timeout: ConnectionSetupTimeout,
    /// `group.id`; consumer groups use it, a plain assigned consumer may leave it empty.
    pub group_id: Option<String>,
    /// `group.instance.id`: static membership.
    pub group_instance_id: Option<String>,
    /// `enable.auto.commit`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval_ms: u64,
    /// `session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms`.
    pub max_poll_interval_ms: u64,
    /// `partition.assignment.strategy`, Kafka's short names, in preference order.
    pub partition_assignment_strategy: Vec<String>,
    /// `isolation.level`: the Java consumer's default is `read_uncommitted`
    /// (`ConsumerConfig.DEFAULT_ISOLATION_LEVEL`); librdkafka's is `read_committed`.
    #[serde(default, skip_serializing_if = "IsolationLevel::is_read_uncommitted")]
    pub isolation_level: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            fetch_max_wait_ms: 500,
            max_poll_records: 500,
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
            metadata_max_age_ms: 300_000,
            reconnect_backoff: ReconnectBackoff::default(),
            connection_setup_timeout: ConnectionSetupTimeout::default(),
            group_id: None,
            group_instance_id: None,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            partition_assignment_strategy: vec!["range".into(), "cooperative-sticky".into()],
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }
}

impl Configurable for ConsumerConfig {
    const KEYS: &'static [&'static str] = &[
        "auto.offset.reset",
        "fetch.max.wait.ms",
        "max.poll.records",
        "request.timeout.ms",
        "socket.connection.setup.timeout.ms",
        "socket.connection.setup.timeout.max.ms",
        "retry.backoff.ms",
        "metadata.max.age.ms",
        "group.id",
        "group.instance.id",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "isolation.level",
    ];
    const SCOPE: validate::Scope = validate::Scope::Consumer;

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            // ConsumerConfig: auto.offset.reset, in("latest", "earliest", "none") (case-sensitive),
            // plus "by_duration:<ISO-8601 duration>" from 4.0 (KIP-1106), which ksim does not model.
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.trim() {
                    "earliest" => OffsetReset::Earliest,
                    "latest" => OffsetReset::Latest,
                    "none" => OffsetReset::None,
                    other => {
                        return Err(ConfigError {
                            key: key.into(),
                            message: if other.starts_with("by_duration:") {
                                format!(
                                    "`{other}`: Kafka 4.0 accepts by_duration (KIP-1106) but ksim does not model \
                                     it; use earliest, latest or none"
                                )
                            } else {
                                format!("expected earliest, latest or none, found `{other}`")
                            },
                        })
                    }
                }
            }
            // ConsumerConfig: isolation.level, in("read_committed", "read_uncommitted").
            "isolation.level" => {
                self.isolation_level = match value.trim() {
                    "read_committed" => IsolationLevel::ReadCommitted,
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    other => {
                        return Err(ConfigError {
                            key: key.into(),
                            message: format!("expected read_committed or read_uncommitted, found `{other}`"),
                        })
                    }
                }
            }
            "fetch.max.wait.ms" => self.fetch_max_wait_ms = parse_u64(key, value)?,
            "max.poll.records" => self.max_poll_records = parse::<usize>(key, value, "a whole number")?,
            "request.timeout.ms" => self.request_timeout_ms = parse_u64(key, value)?.max(1),
            "retry.backoff.ms" => self.retry_backoff_ms = parse_u64(key, value)?.max(1),
            "metadata.max.age.ms" => self.metadata_max_age_ms = parse_u64(key, value)?.max(1),
            "reconnect.backoff.ms" => self.reconnect_backoff.base_ms = parse_u64(key, value)?.max(1),
            "reconnect.backoff.max.ms" => self.reconnect_backoff.max_ms = parse_u64(key, value)?.max(1),
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout.base_ms = parse_u64(key, value)?.max(1)
            }
            "socket.connection.setup.timeout.max.ms" => {
                self.connection_setup_timeout.max_ms = parse_u64(key, value)?.max(1)
            }
            "group.id" => self.group_id = Some(value.to_string()),
            "group.instance.id" => self.group_instance_id = Some(value.to_string()),
            "enable.auto.commit" => self.enable_auto_commit = parse_bool(key, value)?,
            "auto.commit.interval.ms" => self.auto_commit_interval_ms = parse_u64(key, value)?.max(1),
            "session.timeout.ms" => self.session_timeout_ms = parse_u64(key, value)?,
            "heartbeat.interval.ms" => self.heartbeat_interval_ms = parse_u64(key, value)?.max(1),
            "max.poll.interval.ms" => self.max_poll_interval_ms = parse_u64(key, value)?,
            "partition.assignment.strategy" => {
                self.partition_assignment_strategy =
                    value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
            }
            _ => return Err(unknown(key, Self::KEYS)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let broker = BrokerConfig::default();
        assert_eq!(broker.topic_defaults.min_insync_replicas, 1);
        assert!(!broker.topic_defaults.unclean_leader_election_enable);
        assert_eq!(broker.replica_lag_time_max_ms, 30_000);
        assert_eq!((broker.group_min_session_timeout_ms, broker.group_max_session_timeout_ms), (6_000, 1_800_000));
        let producer = ProducerConfig::default();
        assert_eq!(producer.acks, Acks::All);
        assert!(producer.enable_idempotence);
        let consumer = ConsumerConfig::default();
        assert_eq!(consumer.session_timeout_ms, 45_000);
        assert_eq!(consumer.heartbeat_interval_ms, 3_000);
        assert_eq!(consumer.max_poll_interval_ms, 300_000);
    }

    #[test]
    fn errors_name_the_key() {
        let mut broker = BrokerConfig::default();
        let err = broker.set("min.insync.replicas", "two").unwrap_err();
        assert_eq!(err.key, "min.insync.replicas");
        assert!(err.to_string().contains("found `two`"), "{err}");
        let err = broker.set("min.insync.replica", "2").unwrap_err();
        assert!(err.message.contains("unknown config"), "{err}");
        broker.set("log.retention.ms", "1000").unwrap();
        assert_eq!(broker.topic_defaults.retention_ms, 1000);
    }

    fn producer(configs: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
        let mut producer = ProducerConfig::default();
        for (key, value) in configs {
            producer.set_checked(key, value, KafkaVersion::CURRENT)?;
        }
        let originals: Vec<&str> = configs.iter().map(|(k, _)| *k).collect();
        validate::producer(&mut producer, &originals, KafkaVersion::CURRENT)?;
        Ok(producer)
    }

    #[test]
    fn acks_1_alone_turns_default_idempotence_off() {
        let p = producer(&[("acks", "1")]).unwrap();
        assert_eq!(p.acks, Acks::Leader);
        assert!(!p.enable_idempotence);
        let p = producer(&[("acks", "0")]).unwrap();
        assert!(!p.enable_idempotence);
        // The same quiet default for retries=0. (More than 5 in flight is an error from 4.0:
        // see `validate`'s tests.)
        assert!(!producer(&[("retries", "0")]).unwrap().enable_idempotence);
    }

    #[test]
    fn acks_1_with_explicit_idempotence_is_an_error_naming_both() {
        // In either order: the rule looks at the settings as a whole.
        for configs in
            [[("acks", "1"), ("enable.idempotence", "true")], [("enable.idempotence", "true"), ("acks", "1")]]
        {
            let err = producer(&configs).unwrap_err();
            assert_eq!(err.key, "enable.idempotence");
            assert!(err.message.contains("enable.idempotence=true"), "{err}");
            assert!(err.message.contains("acks=1"), "{err}");
        }
        let err =
            producer(&[("enable.idempotence", "true"), ("max.in.flight.requests.per.connection", "6")]).unwrap_err();
        assert!(err.message.contains("max.in.flight.requests.per.connection=6"), "{err}");
        // Turning it off explicitly is always allowed.
        assert!(!producer(&[("acks", "1"), ("enable.idempotence", "false")]).unwrap().enable_idempotence);
    }

    #[test]
    fn acks_all_alone_keeps_idempotence_on() {
        assert!(producer(&[("acks", "all")]).unwrap().enable_idempotence);
        assert!(producer(&[("acks", "-1")]).unwrap().enable_idempotence);
        // acks=1 and back to all: the default returns.
        assert!(producer(&[("acks", "1"), ("acks", "all")]).unwrap().enable_idempotence);
        assert!(!producer(&[("acks", "all"), ("enable.idempotence", "false")]).unwrap().enable_idempotence);
    }
}
