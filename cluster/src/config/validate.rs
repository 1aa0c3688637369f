//! The one validator: what Kafka refuses at construction, refused at load; what Kafka adjusts and
//! warns about, adjusted with a note for the trace.
//!
//! A Java client checks its configs in two passes, and so does this module:
//!
//! 1. **Each value on its own** ([`check_value`], the [`VALUE_RULES`] table): the `ConfigDef`
//!    that defines the key gives it a type (`INT` values must fit 32 bits) and often a validator
//!    (`atLeast(1)`, `between(0, Integer.MAX_VALUE)`). `ProducerConfig`, `ConsumerConfig`,
//!    `LogConfig` and the broker's config classes throw `ConfigException` ("Invalid value 0 for
//!    configuration max.in.flight.requests.per.connection: Value must be at least 1") before
//!    anything is built. The table holds one row per key ksim knows, with the Kafka class that
//!    defines it; a key whose `ConfigDef` has no validator has a row with [`Bound::Any`], so its
//!    type is still checked.
//! 2. **The settings together** ([`producer`], [`consumer`], [`broker`]): what the client's
//!    constructor or `postProcessParsedConfig` checks across keys, each function citing its
//!    Kafka method. Some of these depend on what the user set *explicitly* (Kafka's
//!    `originals().containsKey(..)`): an idempotence that is only the default gives way quietly to
//!    `acks=1`, an explicit `enable.idempotence=true` is an error; a `delivery.timeout.ms` below
//!    `linger.ms + request.timeout.ms` is an error when set, and raised with a warning when it is
//!    the default. Those adjustments come back as [`Adjustment`]s, which the simulator writes into
//!    the trace at the client's start, as Kafka writes them to its log.
//!
//! Broker-side checks are not here: a coordinator refusing a JoinGroup whose `session.timeout.ms`
//! is outside `[group.min.session.timeout.ms, group.max.session.timeout.ms]` answers
//! INVALID_SESSION_TIMEOUT at run time, as Kafka does (see `broker::group_host`).

use super::{Acks, BrokerConfig, ConfigError, ConsumerConfig, ProducerConfig};
use crate::group::assignor::AssignorKind;
use crate::version::KafkaVersion;
use std::str::FromStr;

/// Which config class a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `ProducerConfig`.
    Producer,
    /// `ConsumerConfig`.
    Consumer,
    /// The broker's configs (`KafkaConfig`: `ServerLogConfigs`, `ReplicationConfigs`,
    /// `GroupCoordinatorConfig`, `KRaftConfigs`). A topic-level key set at the cluster level is
    /// checked by its broker row if it has one (`retention.ms` as `log.retention.ms`), else by its
    /// topic row.
    Broker,
    /// A topic's configs (`LogConfig`).
    Topic,
}

/// A `ConfigDef` type: what a value must fit in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Short,
    Int,
    Long,
}

impl Type {
    fn fits(self, value: i64) -> bool {
        match self {
            Type::Short => i16::try_from(value).is_ok(),
            Type::Int => i32::try_from(value).is_ok(),
            Type::Long => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Type::Short => "SHORT",
            Type::Int => "INT",
            Type::Long => "LONG",
        }
    }
}

/// A `ConfigDef` validator (or a `KafkaConfig.validateValues` requirement on one key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// No validator: any value of the type.
    Any,
    /// `Range.atLeast(min)`.
    AtLeast(i64),
    /// `Range.between(min, max)`.
    Between(i64, i64),
    /// Negative means unlimited (Kafka reads any negative as -1); otherwise at least this
    /// (`KafkaConfig`: "log.retention.ms must be unlimited (-1) or, greater than or equal to 1").
    UnlimitedOrAtLeast(i64),
}

impl Bound {
    fn allows(self, value: i64) -> bool {
        match self {
            Bound::Any => true,
            Bound::AtLeast(min) => value >= min,
            Bound::Between(min, max) => (min..=max).contains(&value),
            Bound::UnlimitedOrAtLeast(min) => value < 0 || value >= min,
        }
    }

    fn expected(self) -> String {
        match self {
            Bound::Any => "any value".into(),
            Bound::AtLeast(min) => format!("value must be at least {min}"),
            Bound::Between(min, max) => format!("value must be between {min} and {max}"),
            Bound::UnlimitedOrAtLeast(min) => format!("value must be unlimited (-1) or at least {min}"),
        }
    }
}

/// One key's definition, as Kafka's `ConfigDef` (or broker validation) has it.
#[derive(Clone, Copy, Debug)]
pub struct ValueRule {
    pub scope: Scope,
    /// The spellings ksim accepts for this key in this scope.
    pub keys: &'static [&'static str],
    pub kind: Type,
    pub bound: Bound,
    /// The releases the rule holds in (both included).
    pub from: KafkaVersion,
    pub to: KafkaVersion,
    /// Where Kafka defines it.
    pub source: &'static str,
}

const OLDEST: KafkaVersion = KafkaVersion::OLDEST;
const CURRENT: KafkaVersion = KafkaVersion::CURRENT;

const fn rule(
    scope: Scope,
    keys: &'static [&'static str],
    kind: Type,
    bound: Bound,
    source: &'static str,
) -> ValueRule {
    ValueRule { scope, keys, kind, bound, from: OLDEST, to: CURRENT, source }
}

const fn rule_in(
    scope: Scope,
    keys: &'static [&'static str],
    kind: Type,
    bound: Bound,
    (from, to): (KafkaVersion, KafkaVersion),
    source: &'static str,
) -> ValueRule {
    ValueRule { scope, keys, kind, bound, from, to, source }
}

use Bound::{Any, AtLeast, Between, UnlimitedOrAtLeast};
use Scope::{Broker, Consumer, Producer, Topic};
use Type::{Int, Long, Short};

/// `LegacyRecord.RECORD_OVERHEAD_V0`: the smallest segment Kafka accepted before KIP-1030.
const RECORD_OVERHEAD_V0: i64 = 14;
/// KIP-1030 (Kafka 4.0): segments of at least 1 MiB.
const ONE_MIB: i64 = 1024 * 1024;

/// Every numeric key ksim understands, with its `ConfigDef` type and validator. String and
/// boolean keys (`acks`, `auto.offset.reset`, `enable.idempotence`, ...) are checked where they
/// are parsed, in [`super`]'s `set`, against the values Kafka's `ValidString` lists.
pub const VALUE_RULES: &[ValueRule] = &[
    // ---- producer: ProducerConfig.CONFIG ----
    rule(
        Producer,
        &["retries"],
        Int,
        Between(0, i32::MAX as i64),
        "ProducerConfig: retries, between(0, Integer.MAX_VALUE)",
    ),
    rule(Producer, &["batch.size"], Int, AtLeast(0), "ProducerConfig: batch.size, atLeast(0)"),
    rule(Producer, &["linger.ms"], Long, AtLeast(0), "ProducerConfig: linger.ms, atLeast(0)"),
    rule(Producer, &["delivery.timeout.ms"], Int, AtLeast(0), "ProducerConfig: delivery.timeout.ms, atLeast(0)"),
    rule(Producer, &["request.timeout.ms"], Int, AtLeast(0), "ProducerConfig: request.timeout.ms, atLeast(0)"),
    rule(Producer, &["retry.backoff.ms"], Long, AtLeast(0), "ProducerConfig: retry.backoff.ms, atLeast(0)"),
    rule(Producer, &["retry.backoff.max.ms"], Long, AtLeast(0), "ProducerConfig: retry.backoff.max.ms, atLeast(0)"),
    rule(Producer, &["reconnect.backoff.ms"], Long, AtLeast(0), "ProducerConfig: reconnect.backoff.ms, atLeast(0)"),
    rule(
        Producer,
        &["reconnect.backoff.max.ms"],
        Long,
        AtLeast(0),
        "ProducerConfig: reconnect.backoff.max.ms, atLeast(0)",
    ),
    rule(
        Producer,
        &["max.in.flight.requests.per.connection"],
        Int,
        AtLeast(1),
        "ProducerConfig: max.in.flight.requests.per.connection, atLeast(1)",
    ),
    rule(Producer, &["metadata.max.age.ms"], Long, AtLeast(0), "ProducerConfig: metadata.max.age.ms, atLeast(0)"),
    // ---- consumer: ConsumerConfig.CONFIG ----
    rule(Consumer, &["fetch.max.wait.ms"], Int, AtLeast(0), "ConsumerConfig: fetch.max.wait.ms, atLeast(0)"),
    rule(Consumer, &["max.poll.records"], Int, AtLeast(1), "ConsumerConfig: max.poll.records, atLeast(1)"),
    rule(Consumer, &["request.timeout.ms"], Int, AtLeast(0), "ConsumerConfig: request.timeout.ms, atLeast(0)"),
    rule(Consumer, &["retry.backoff.ms"], Long, AtLeast(0), "ConsumerConfig: retry.backoff.ms, atLeast(0)"),
    rule(Consumer, &["metadata.max.age.ms"], Long, AtLeast(0), "ConsumerConfig: metadata.max.age.ms, atLeast(0)"),
    rule(Consumer, &["reconnect.backoff.ms"], Long, AtLeast(0), "ConsumerConfig: reconnect.backoff.ms, atLeast(0)"),
    rule(
        Consumer,
        &["reconnect.backoff.max.ms"],
        Long,
        AtLeast(0),
        "ConsumerConfig: reconnect.backoff.max.ms, atLeast(0)",
    ),
    rule(
        Consumer,
        &["auto.commit.interval.ms"],
        Int,
        AtLeast(0),
        "ConsumerConfig: auto.commit.interval.ms, atLeast(0)",
    ),
    rule(Consumer, &["session.timeout.ms"], Int, Any, "ConsumerConfig: session.timeout.ms, no validator"),
    rule(Consumer, &["heartbeat.interval.ms"], Int, Any, "ConsumerConfig: heartbeat.interval.ms, no validator"),
    rule(Consumer, &["max.poll.interval.ms"], Int, AtLeast(1), "ConsumerConfig: max.poll.interval.ms, atLeast(1)"),
    // ---- broker ----
    rule(Broker, &["replica.lag.time.max.ms"], Long, Any, "ReplicationConfigs: replica.lag.time.max.ms, no validator"),
    rule(
        Broker,
        &["replica.fetch.wait.max.ms"],
        Int,
        Any,
        "ReplicationConfigs: replica.fetch.wait.max.ms, no validator",
    ),
    rule(
        Broker,
        &["max.incremental.fetch.session.cache.slots"],
        Int,
        AtLeast(0),
        "ServerConfigs: max.incremental.fetch.session.cache.slots, atLeast(0)",
    ),
    rule(
        Broker,
        &["replica.fetch.backoff.ms"],
        Int,
        AtLeast(0),
        "ReplicationConfigs: replica.fetch.backoff.ms, atLeast(0)",
    ),
    rule(
        Broker,
        &["replica.high.watermark.checkpoint.interval.ms"],
        Long,
        Any,
        "ReplicationConfigs: replica.high.watermark.checkpoint.interval.ms, no validator",
    ),
    rule(
        Broker,
        &["default.replication.factor"],
        Int,
        Any,
        "ReplicationConfigs: default.replication.factor, no validator",
    ),
    rule(
        Broker,
        &["leader.imbalance.check.interval.seconds"],
        Long,
        AtLeast(1),
        "ReplicationConfigs: leader.imbalance.check.interval.seconds, atLeast(1)",
    ),
    rule(
        Broker,
        &["leader.imbalance.per.broker.percentage"],
        Int,
        Any,
        "ReplicationConfigs: leader.imbalance.per.broker.percentage, no validator",
    ),
    rule(
        Broker,
        &["broker.heartbeat.interval.ms"],
        Int,
        Any,
        "KRaftConfigs: broker.heartbeat.interval.ms, no validator",
    ),
    rule(Broker, &["broker.session.timeout.ms"], Int, Any, "KRaftConfigs: broker.session.timeout.ms, no validator"),
    rule(
        Broker,
        &["metadata.max.idle.interval.ms"],
        Int,
        AtLeast(0),
        "KRaftConfigs: metadata.max.idle.interval.ms, atLeast(0)",
    ),
    rule(Broker, &["num.partitions"], Int, AtLeast(1), "ServerLogConfigs: num.partitions, atLeast(1)"),
    rule(
        Broker,
        &["log.retention.check.interval.ms"],
        Long,
        AtLeast(1),
        "ServerLogConfigs: log.retention.check.interval.ms, atLeast(1)",
    ),
    rule(
        Broker,
        &["log.retention.ms", "retention.ms"],
        Long,
        UnlimitedOrAtLeast(1),
        "KafkaConfig.validateValues: log.retention.ms must be unlimited (-1) or at least 1",
    ),
    rule(
        Broker,
        &["log.retention.bytes", "retention.bytes"],
        Long,
        Any,
        "ServerLogConfigs: log.retention.bytes, no validator",
    ),
    rule_in(
        Broker,
        &["log.segment.bytes", "segment.bytes"],
        Int,
        AtLeast(RECORD_OVERHEAD_V0),
        (OLDEST, KafkaVersion::new(3, 9)),
        "ServerLogConfigs: log.segment.bytes, atLeast(LegacyRecord.RECORD_OVERHEAD_V0)",
    ),
    rule_in(
        Broker,
        &["log.segment.bytes", "segment.bytes"],
        Int,
        AtLeast(ONE_MIB),
        (KafkaVersion::new(4, 0), CURRENT),
        "ServerLogConfigs: log.segment.bytes, atLeast(1024 * 1024) since 4.0 (KIP-1030, KAFKA-16368)",
    ),
    rule(
        Broker,
        &["log.segment.ms", "segment.ms"],
        Long,
        AtLeast(1),
        "KafkaConfig.validateValues: log.roll.ms must be at least 1",
    ),
    rule(
        Broker,
        &["log.flush.messages", "flush.messages"],
        Long,
        AtLeast(1),
        "ServerLogConfigs: log.flush.interval.messages, atLeast(1)",
    ),
    rule(Broker, &["min.insync.replicas"], Int, AtLeast(1), "ServerLogConfigs: min.insync.replicas, atLeast(1)"),
    rule(
        Broker,
        &["offsets.topic.num.partitions"],
        Int,
        AtLeast(1),
        "GroupCoordinatorConfig: offsets.topic.num.partitions, atLeast(1)",
    ),
    rule(
        Broker,
        &["offsets.topic.replication.factor"],
        Short,
        AtLeast(1),
        "GroupCoordinatorConfig: offsets.topic.replication.factor, atLeast(1)",
    ),
    rule(
        Broker,
        &["transaction.state.log.num.partitions"],
        Int,
        AtLeast(1),
        "TransactionLogConfig: transaction.state.log.num.partitions, atLeast(1)",
    ),
    rule(
        Broker,
        &["transaction.state.log.replication.factor"],
        Short,
        AtLeast(1),
        "TransactionLogConfig: transaction.state.log.replication.factor, atLeast(1)",
    ),
    rule(
        Broker,
        &["transaction.state.log.min.isr"],
        Int,
        AtLeast(1),
        "TransactionLogConfig: transaction.state.log.min.isr, atLeast(1)",
    ),
    rule(
        Broker,
        &["transaction.max.timeout.ms"],
        Int,
        AtLeast(1),
        "TransactionStateManagerConfig: transaction.max.timeout.ms, atLeast(1)",
    ),
    rule(
        Broker,
        &["transaction.abort.timed.out.transaction.cleanup.interval.ms"],
        Int,
        AtLeast(1),
        "TransactionStateManagerConfig: transaction.abort.timed.out.transaction.cleanup.interval.ms, atLeast(1)",
    ),
    rule(
        Broker,
        &["group.initial.rebalance.delay.ms"],
        Int,
        Any,
        "GroupCoordinatorConfig: group.initial.rebalance.delay.ms, no validator",
    ),
    rule(
        Broker,
        &["group.min.session.timeout.ms"],
        Int,
        Any,
        "GroupCoordinatorConfig: group.min.session.timeout.ms, no validator",
    ),
    rule(
        Broker,
        &["group.max.session.timeout.ms"],
        Int,
        Any,
        "GroupCoordinatorConfig: group.max.session.timeout.ms, no validator",
    ),
    // ---- topic: LogConfig ----
    rule(Topic, &["min.insync.replicas"], Int, AtLeast(1), "LogConfig: min.insync.replicas, atLeast(1)"),
    rule(Topic, &["retention.ms"], Long, AtLeast(-1), "LogConfig: retention.ms, atLeast(-1)"),
    rule(Topic, &["retention.bytes"], Long, Any, "LogConfig: retention.bytes, no validator (negative: no limit)"),
    rule_in(
        Topic,
        &["segment.bytes"],
        Int,
        AtLeast(RECORD_OVERHEAD_V0),
        (OLDEST, KafkaVersion::new(4, 0)),
        "LogConfig: segment.bytes, atLeast(LegacyRecord.RECORD_OVERHEAD_V0)",
    ),
    rule_in(
        Topic,
        &["segment.bytes"],
        Int,
        AtLeast(ONE_MIB),
        (KafkaVersion::new(4, 1), CURRENT),
        "LogConfig: segment.bytes, atLeast(1024 * 1024) since 4.1 (KIP-1030, KAFKA-19080)",
    ),
    rule(Topic, &["segment.ms"], Long, AtLeast(1), "LogConfig: segment.ms, atLeast(1)"),
    rule(Topic, &["flush.messages"], Long, AtLeast(1), "LogConfig: flush.messages, atLeast(1)"),
    rule(Topic, &["flush.ms"], Long, AtLeast(0), "LogConfig: flush.ms, atLeast(0)"),
    rule(Topic, &["min.compaction.lag.ms"], Long, AtLeast(0), "LogConfig: min.compaction.lag.ms, atLeast(0)"),
    rule(Topic, &["max.compaction.lag.ms"], Long, AtLeast(1), "LogConfig: max.compaction.lag.ms, atLeast(1)"),
    rule(Topic, &["delete.retention.ms"], Long, AtLeast(0), "LogConfig: delete.retention.ms, atLeast(0)"),
    rule(Broker, &["log.cleaner.backoff.ms"], Long, AtLeast(0), "CleanerConfig: log.cleaner.backoff.ms, atLeast(0)"),
    rule(
        Broker,
        &["offsets.topic.segment.bytes", "transaction.state.log.segment.bytes"],
        Int,
        AtLeast(1),
        "GroupCoordinatorConfig: offsets.topic.segment.bytes, TransactionLogConfig: transaction.state.log.segment.bytes, atLeast(1)",
    ),
];

/// The rule for `key` in `scope` under `version`, if the key is numeric. At the broker level a
/// topic-level key without a broker row is checked by its topic row.
pub fn value_rule(scope: Scope, key: &str, version: KafkaVersion) -> Option<&'static ValueRule> {
    let find = |scope: Scope| {
        VALUE_RULES.iter().find(|r| r.scope == scope && r.keys.contains(&key) && (r.from..=r.to).contains(&version))
    };
    let key_in_any_version = |scope: Scope| VALUE_RULES.iter().any(|r| r.scope == scope && r.keys.contains(&key));
    match scope {
        Broker if !key_in_any_version(Broker) => {
            let topic_key = key.strip_prefix("log.").unwrap_or(key);
            VALUE_RULES
                .iter()
                .find(|r| r.scope == Topic && r.keys.contains(&topic_key) && (r.from..=r.to).contains(&version))
        }
        _ => find(scope),
    }
}

/// Check one value against its key's `ConfigDef` type and validator. A value that is not a whole
/// number is left to the key's parser (which names what it expected); a key with no rule passes.
pub fn check_value(scope: Scope, key: &str, value: &str, version: KafkaVersion) -> Result<(), ConfigError> {
    let Some(rule) = value_rule(scope, key, version) else { return Ok(()) };
    let Ok(number) = value.trim().parse::<i64>() else { return Ok(()) };
    let error = |message: String| ConfigError { key: key.to_string(), message };
    if !rule.kind.fits(number) {
        return Err(error(format!(
            "invalid value {number}: not a number of type {} ({})",
            rule.kind.name(),
            rule.source
        )));
    }
    if !rule.bound.allows(number) {
        return Err(error(format!("invalid value {number}: {} ({})", rule.bound.expected(), rule.source)));
    }
    Ok(())
}

/// A setting the client changed on its own, as Kafka does and logs: the trace shows it at the
/// client's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    /// The setting that changed.
    pub key: String,
    /// Its value now.
    pub value: String,
    /// Why, in the words of Kafka's log line.
    pub reason: String,
}

/// Whether the user set `key` (Kafka's `originals().containsKey(key)`).
fn explicit(originals: &[&str], key: &str) -> bool {
    originals.contains(&key)
}

/// `max.in.flight.requests.per.connection` an idempotent producer may use
/// (`ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION_FOR_IDEMPOTENCE`).
pub const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: usize = 5;

/// The producer's settings together. Sets `enable_idempotence` to the value in effect, may raise
/// `delivery_timeout_ms`, and returns what it adjusted.
pub fn producer(
    config: &mut ProducerConfig,
    originals: &[&str],
    version: KafkaVersion,
) -> Result<Vec<Adjustment>, ConfigError> {
    let mut adjustments = Vec::new();
    idempotence(config, version, &mut adjustments)?;
    delivery_timeout(config, originals, &mut adjustments)?;
    transactional(config)?;
    Ok(adjustments)
}

/// `ProducerConfig.postProcessAndValidateIdempotenceConfigs`: "Cannot set a transactional.id
/// without also enabling idempotence." Whatever turned idempotence off (an explicit false, or
/// acks=1 turning the default off) makes a transactional.id a `ConfigException`.
fn transactional(config: &ProducerConfig) -> Result<(), ConfigError> {
    if config.transactional_id.is_some() && !config.enable_idempotence {
        return Err(ConfigError {
            key: "transactional.id".into(),
            message: "a transactional.id needs idempotence, which is off here (enable.idempotence=false, or \
                      acks/retries turned it off); Kafka refuses this \
                      (ProducerConfig.postProcessAndValidateIdempotenceConfigs)"
                .into(),
        });
    }
    Ok(())
}

/// `ProducerConfig.postProcessAndValidateIdempotenceConfigs` (KAFKA-13673, 3.2): idempotence
/// (on by default) needs `retries` above 0, `acks=all` and at most 5 requests in flight. When the
/// user set `enable.idempotence=true` a conflict is a `ConfigException`; when idempotence is only
/// the default, `retries=0` or `acks` other than all turn it off (logged at INFO). Too many
/// requests in flight turned it off with a WARN before 4.0, and is a `ConfigException` either way
/// from 4.0 (KAFKA-17927): to use more than 5, set `enable.idempotence=false`.
fn idempotence(
    config: &mut ProducerConfig,
    version: KafkaVersion,
    adjustments: &mut Vec<Adjustment>,
) -> Result<(), ConfigError> {
    let user_set = config.enable_idempotence_explicit.is_some();
    let enabled = config.enable_idempotence_explicit.unwrap_or(true);
    let mut disable_because = None;
    if enabled {
        let refuse = |key: &str, message: String| {
            let key = if user_set { "enable.idempotence" } else { key };
            Err(ConfigError { key: key.into(), message })
        };
        let explicit_note = if user_set { "enable.idempotence=true: " } else { "" };
        if config.retries == 0 {
            if user_set {
                return refuse(
                    "retries",
                    format!(
                        "{explicit_note}idempotence requires retries above 0 (found retries=0); leave \
                         enable.idempotence unset (Kafka then turns idempotence off) or change retries \
                         (ProducerConfig.postProcessAndValidateIdempotenceConfigs)"
                    ),
                );
            }
            disable_because.get_or_insert("retries is set to 0".to_string());
        }
        if config.acks != Acks::All {
            if user_set {
                return refuse(
                    "acks",
                    format!(
                        "{explicit_note}idempotence requires acks=all (found acks={}); leave \
                         enable.idempotence unset (Kafka then turns idempotence off) or change acks \
                         (ProducerConfig.postProcessAndValidateIdempotenceConfigs)",
                        config.acks
                    ),
                );
            }
            disable_because.get_or_insert(format!("acks is set to {}, not all", config.acks));
        }
        let in_flight = config.max_in_flight_requests_per_connection;
        if in_flight > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
            if user_set || version >= KafkaVersion::new(4, 0) {
                let how = if user_set {
                    "leave enable.idempotence unset or change max.in.flight.requests.per.connection"
                } else {
                    "idempotence is on by default: set enable.idempotence=false to send more (an error since \
                     Kafka 4.0, KAFKA-17927)"
                };
                return refuse(
                    "max.in.flight.requests.per.connection",
                    format!(
                        "{explicit_note}idempotence requires max.in.flight.requests.per.connection at most \
                         {MAX_IN_FLIGHT_FOR_IDEMPOTENCE} (found max.in.flight.requests.per.connection={in_flight}); \
                         {how} (ProducerConfig.postProcessAndValidateIdempotenceConfigs)"
                    ),
                );
            }
            disable_because.get_or_insert(format!(
                "max.in.flight.requests.per.connection is set to {in_flight}, which is greater than \
                 {MAX_IN_FLIGHT_FOR_IDEMPOTENCE} (Kafka 4.0 makes this an error)"
            ));
        }
    }
    config.enable_idempotence = enabled && disable_because.is_none();
    if let Some(reason) = disable_because {
        adjustments.push(Adjustment {
            key: "enable.idempotence".into(),
            value: "false".into(),
            reason: format!("idempotence will be disabled because {reason}"),
        });
    }
    Ok(())
}

/// `KafkaProducer.configureDeliveryTimeout`: `delivery.timeout.ms` must leave room for one
/// linger and one request. Below `linger.ms + request.timeout.ms` it is a `ConfigException` when
/// the user set it, and otherwise raised to that sum with a WARN, "for backward compatibility".
fn delivery_timeout(
    config: &mut ProducerConfig,
    originals: &[&str],
    adjustments: &mut Vec<Adjustment>,
) -> Result<(), ConfigError> {
    // Kafka adds them as longs and caps the sum at Integer.MAX_VALUE.
    let floor = config.linger_ms.saturating_add(config.request_timeout_ms).min(i32::MAX as u64);
    if config.delivery_timeout_ms >= floor {
        return Ok(());
    }
    if explicit(originals, "delivery.timeout.ms") {
        return Err(ConfigError {
            key: "delivery.timeout.ms".into(),
            message: format!(
                "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms \
                 (found {} < {} + {}) (KafkaProducer.configureDeliveryTimeout)",
                config.delivery_timeout_ms, config.linger_ms, config.request_timeout_ms
            ),
        });
    }
    config.delivery_timeout_ms = floor;
    adjustments.push(Adjustment {
        key: "delivery.timeout.ms".into(),
        value: floor.to_string(),
        reason: format!(
            "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms \
             ({} + {}); setting it to {floor}",
            config.linger_ms, config.request_timeout_ms
        ),
    });
    Ok(())
}

/// What the consumer's application does with it: subscribe to topics in a group, or assign
/// partitions itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerUse {
    Subscribe,
    Assign,
}

/// The consumer's settings together: what `ConsumerConfig.postProcessParsedConfig` and the
/// classic consumer's constructor refuse, and what `subscribe()` refuses before it does anything.
pub fn consumer(config: &ConsumerConfig, originals: &[&str], used_as: ConsumerUse) -> Result<(), ConfigError> {
    if let Some(id) = &config.group_instance_id {
        group_instance_id(id)?;
    }
    // ConsumerConfig.maybeOverrideEnableAutoCommit: without a group id, auto-commit is turned
    // off, and asking for it explicitly is an InvalidConfigurationException.
    if config.group_id.is_none() && config.enable_auto_commit && explicit(originals, "enable.auto.commit") {
        return Err(ConfigError {
            key: "enable.auto.commit".into(),
            message: "enable.auto.commit cannot be set to true when default group id (null) is used \
                      (ConsumerConfig.maybeOverrideEnableAutoCommit)"
                .into(),
        });
    }
    // Heartbeat's constructor (built with the group coordinator when group.id is set):
    // IllegalArgumentException "Heartbeat must be set lower than the session timeout".
    if config.group_id.is_some() && config.heartbeat_interval_ms >= config.session_timeout_ms {
        let key = if explicit(originals, "heartbeat.interval.ms") && !explicit(originals, "session.timeout.ms") {
            "heartbeat.interval.ms"
        } else {
            "session.timeout.ms"
        };
        return Err(ConfigError {
            key: key.into(),
            message: format!(
                "heartbeat.interval.ms must be set lower than session.timeout.ms (found {} >= {}) \
                 (consumer.internals.Heartbeat: IllegalArgumentException)",
                config.heartbeat_interval_ms, config.session_timeout_ms
            ),
        });
    }
    assignors(&config.partition_assignment_strategy, used_as)
}

/// `ConsumerPartitionAssignor.getAssignorInstances` (in the consumer's constructor): every name
/// must be an assignor (a class that does not load is a KafkaException) and no assignor name may
/// appear twice; `ClassicKafkaConsumer.throwIfNoAssignorsConfigured` (in `subscribe`): a group
/// member needs at least one. ksim accepts Kafka's short names (`range`, what librdkafka takes)
/// and the Java class names.
fn assignors(names: &[String], used_as: ConsumerUse) -> Result<(), ConfigError> {
    let key = "partition.assignment.strategy";
    let error = |message: String| ConfigError { key: key.into(), message };
    let mut seen: Vec<AssignorKind> = Vec::new();
    for name in names {
        let kind = AssignorKind::from_str(name).map_err(|e| {
            error(format!("{e} (or their Java class names) (ConsumerPartitionAssignor.getAssignorInstances)"))
        })?;
        if seen.contains(&kind) {
            return Err(error(format!(
                "the assignor name `{}` is used more than once (ConsumerPartitionAssignor.getAssignorInstances)",
                kind.name()
            )));
        }
        seen.push(kind);
    }
    if names.is_empty() && used_as == ConsumerUse::Subscribe {
        return Err(error(
            "must configure at least one partition assignor to subscribe \
             (ClassicKafkaConsumer.throwIfNoAssignorsConfigured)"
                .into(),
        ));
    }
    Ok(())
}

/// `JoinGroupRequest.validateGroupInstanceId` (from `ConsumerConfig.maybeOverrideClientId`): a
/// `group.instance.id` follows topic-name rules (`Topic.validate`).
fn group_instance_id(id: &str) -> Result<(), ConfigError> {
    let problem = if id.is_empty() {
        Some("the empty string is not allowed".to_string())
    } else if id == "." || id == ".." {
        Some(format!("`{id}` is not allowed"))
    } else if id.chars().count() > 249 {
        Some(format!("it is longer than the max allowed length 249 ({} characters)", id.chars().count()))
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        Some(format!("`{id}` contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(ConfigError {
            key: "group.instance.id".into(),
            message: format!("group instance id is invalid: {p} (JoinGroupRequest.validateGroupInstanceId)"),
        }),
    }
}

/// `replica.socket.timeout.ms`: ksim has no setting for it; Kafka's default holds.
pub const REPLICA_SOCKET_TIMEOUT_MS: u64 = 30_000;

/// The broker's settings together: what `KafkaConfig.validateValues` requires, and what a feature
/// level needs of the release.
pub fn broker(config: &BrokerConfig) -> Result<(), ConfigError> {
    if config.eligible_leader_replicas_enabled && !config.kafka_version.supports_elr() {
        return Err(ConfigError {
            key: "eligible.leader.replicas.version".into(),
            message: format!(
                "Eligible Leader Replicas (KIP-966) need Kafka 4.0 or later; this cluster runs {}",
                config.kafka_version
            ),
        });
    }
    if config.transaction_partition_verification_enable && !config.kafka_version.transaction_verification() {
        return Err(ConfigError {
            key: "transaction.partition.verification.enable".into(),
            message: format!(
                "transaction verification (KIP-890 part 1) needs Kafka 3.6 or later; this cluster runs {}",
                config.kafka_version
            ),
        });
    }
    if config.transaction_version > 0 && !config.kafka_version.supports_transaction_version() {
        return Err(ConfigError {
            key: "transaction.version".into(),
            message: format!(
                "the transaction.version feature (KIP-890 part 2) needs Kafka 4.0 or later; this cluster runs {}",
                config.kafka_version
            ),
        });
    }
    let wait = config.replica_fetch_wait_max_ms;
    if wait > config.replica_lag_time_max_ms {
        return Err(ConfigError {
            key: "replica.fetch.wait.max.ms".into(),
            message: format!(
                "replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms \
                 to prevent frequent changes in ISR (found {wait} > {}) (KafkaConfig.validateValues)",
                config.replica_lag_time_max_ms
            ),
        });
    }
    if wait > REPLICA_SOCKET_TIMEOUT_MS {
        return Err(ConfigError {
            key: "replica.fetch.wait.max.ms".into(),
            message: format!(
                "replica.socket.timeout.ms ({REPLICA_SOCKET_TIMEOUT_MS}, Kafka's default; ksim has no setting \
                 for it) should always be at least replica.fetch.wait.max.ms (found {wait}) \
                 (KafkaConfig.validateValues)"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Configurable, TopicConfig};

    const V4_1: KafkaVersion = KafkaVersion::new(4, 1);
    const V4_0: KafkaVersion = KafkaVersion::new(4, 0);
    const V3_9: KafkaVersion = KafkaVersion::new(3, 9);

    /// Each value rule, at its bound and just past it: the boundary is Kafka's, not a guess.
    #[test]
    fn every_value_rule_accepts_its_bound_and_refuses_past_it() {
        for rule in VALUE_RULES {
            for key in rule.keys {
                let check = |value: i64| check_value(rule.scope, key, &value.to_string(), rule.to);
                let (inside, outside) = match rule.bound {
                    Bound::Any => (0, None),
                    Bound::AtLeast(min) => (min, Some(min - 1)),
                    Bound::Between(_, max) => (max, Some(max + 1)),
                    Bound::UnlimitedOrAtLeast(min) => (-1, Some(min - 1)),
                };
                assert_eq!(check(inside), Ok(()), "{key} ({:?}) must accept {inside}", rule.scope);
                if let Some(outside) = outside.filter(|v| rule.kind.fits(*v)) {
                    let err = check(outside).expect_err(&format!("{key} must refuse {outside}"));
                    assert_eq!(err.key, *key);
                    assert!(err.message.contains(&format!("invalid value {outside}")), "{err}");
                    assert!(err.message.contains(rule.source), "the message cites Kafka: {err}");
                }
                // The ConfigDef type: an INT does not hold 2^31.
                let too_big = match rule.kind {
                    Type::Short => Some(i16::MAX as i64 + 1),
                    Type::Int => Some(i32::MAX as i64 + 1),
                    Type::Long => None,
                };
                if let Some(v) = too_big {
                    let err = check(v).expect_err(&format!("{key} must refuse {v}"));
                    assert!(err.message.contains(&format!("not a number of type {}", rule.kind.name())), "{err}");
                }
            }
        }
    }

    /// Value cases by name: (scope, key, value, version, None = accepted / Some(part of the error)).
    #[test]
    fn value_cases() {
        let cases: &[(Scope, &str, &str, KafkaVersion, Option<&str>)] = &[
            // The brief's own examples: a producer needs at least one request in flight...
            (Producer, "max.in.flight.requests.per.connection", "0", V4_1, Some("value must be at least 1")),
            (Producer, "max.in.flight.requests.per.connection", "1", V4_1, None),
            // ...retries up to Integer.MAX_VALUE, never negative.
            (Producer, "retries", "-1", V4_1, Some("value must be between 0 and 2147483647")),
            (Producer, "retries", "2147483648", V4_1, Some("not a number of type INT")),
            (Producer, "linger.ms", "-5", V4_1, Some("value must be at least 0")),
            (Producer, "batch.size", "0", V4_1, None),
            (Consumer, "max.poll.records", "0", V4_1, Some("value must be at least 1")),
            (Consumer, "max.poll.interval.ms", "0", V4_1, Some("value must be at least 1")),
            // No validator, but an INT.
            (Consumer, "session.timeout.ms", "3000000000", V4_1, Some("not a number of type INT")),
            (Broker, "min.insync.replicas", "0", V4_1, Some("value must be at least 1")),
            (Broker, "offsets.topic.replication.factor", "40000", V4_1, Some("not a number of type SHORT")),
            // The broker's retention: -1 (or any negative) is unlimited, 0 is refused...
            (Broker, "log.retention.ms", "0", V4_1, Some("unlimited (-1) or at least 1")),
            (Broker, "retention.ms", "-7", V4_1, None),
            // ...while a topic's may be 0 but not below -1.
            (Topic, "retention.ms", "0", V4_1, None),
            (Topic, "retention.ms", "-2", V4_1, Some("value must be at least -1")),
            // A cluster-level topic key without a broker row is checked by its topic row.
            (Broker, "flush.ms", "-1", V4_1, Some("value must be at least 0")),
            // KIP-1030: 1 MiB segments, at the broker from 4.0 and per topic from 4.1.
            (Broker, "log.segment.bytes", "1048575", V4_0, Some("at least 1048576")),
            (Broker, "segment.bytes", "1048575", V3_9, None),
            (Broker, "segment.bytes", "13", V3_9, Some("value must be at least 14")),
            (Topic, "segment.bytes", "1048575", V4_0, None),
            (Topic, "segment.bytes", "1048575", V4_1, Some("at least 1048576")),
            // Keys with no numeric rule, and text the key's parser will judge.
            (Producer, "acks", "all", V4_1, None),
            (Producer, "linger.ms", "soon", V4_1, None),
        ];
        for (scope, key, value, version, expected) in cases {
            let got = check_value(*scope, key, value, *version);
            match expected {
                None => assert_eq!(got, Ok(()), "{key}={value} ({scope:?}, {version})"),
                Some(part) => {
                    let err = got.expect_err(&format!("{key}={value} ({scope:?}, {version}) must be refused"));
                    assert_eq!(err.key, *key);
                    assert!(err.message.contains(part), "{key}={value}: {err}");
                }
            }
        }
    }

    fn producer_with(
        configs: &[(&str, &str)],
        version: KafkaVersion,
    ) -> Result<(ProducerConfig, Vec<Adjustment>), ConfigError> {
        let mut p = ProducerConfig::default();
        for (key, value) in configs {
            p.set_checked(key, value, version)?;
        }
        let originals: Vec<&str> = configs.iter().map(|(k, _)| *k).collect();
        let adjusted = producer(&mut p, &originals, version)?;
        Ok((p, adjusted))
    }

    #[test]
    fn idempotence_by_default_gives_way_quietly_and_explicitly_refuses() {
        // Default idempotence, acks=1: off, and said so (Kafka logs it at INFO).
        let (p, adjusted) = producer_with(&[("acks", "1")], V4_1).unwrap();
        assert!(!p.enable_idempotence);
        assert_eq!(adjusted[0].key, "enable.idempotence");
        assert!(adjusted[0].reason.contains("acks is set to 1"), "{:?}", adjusted);
        let (p, _) = producer_with(&[("retries", "0")], V4_1).unwrap();
        assert!(!p.enable_idempotence);
        // Explicit: an error naming enable.idempotence and the conflicting setting.
        let err = producer_with(&[("acks", "0"), ("enable.idempotence", "true")], V4_1).unwrap_err();
        assert_eq!(err.key, "enable.idempotence");
        assert!(err.message.contains("acks=0"), "{err}");
        let err = producer_with(&[("retries", "0"), ("enable.idempotence", "true")], V4_1).unwrap_err();
        assert!(err.message.contains("retries=0"), "{err}");
        // Nothing conflicts: on, with nothing to say.
        let (p, adjusted) = producer_with(&[("acks", "all")], V4_1).unwrap();
        assert!(p.enable_idempotence && adjusted.is_empty());
    }

    #[test]
    fn more_than_five_in_flight_turns_default_idempotence_off_before_4_0_and_is_an_error_from_4_0() {
        let six = [("max.in.flight.requests.per.connection", "6")];
        let (p, adjusted) = producer_with(&six, V3_9).unwrap();
        assert!(!p.enable_idempotence);
        assert!(adjusted[0].reason.contains("greater than 5"), "{adjusted:?}");
        let err = producer_with(&six, V4_0).unwrap_err();
        assert_eq!(err.key, "max.in.flight.requests.per.connection");
        assert!(err.message.contains("set enable.idempotence=false"), "{err}");
        // Even with acks=1 (Kafka checks in-flight requests while idempotence is still the default).
        assert!(producer_with(&[("acks", "1"), six[0]], V4_1).is_err());
        // Turning idempotence off explicitly allows it in every version.
        let (p, _) = producer_with(&[("enable.idempotence", "false"), six[0]], V4_1).unwrap();
        assert!(!p.enable_idempotence);
        // Explicitly on: an error in every version.
        let err = producer_with(&[("enable.idempotence", "true"), six[0]], V3_9).unwrap_err();
        assert_eq!(err.key, "enable.idempotence");
    }

    #[test]
    fn a_short_delivery_timeout_is_raised_when_default_and_refused_when_set() {
        // request.timeout.ms=200000 with the default delivery.timeout.ms (120000) and linger.ms 5.
        let (p, adjusted) = producer_with(&[("request.timeout.ms", "200000")], V4_1).unwrap();
        assert_eq!(p.delivery_timeout_ms, 200_005);
        assert_eq!(
            adjusted,
            vec![Adjustment {
                key: "delivery.timeout.ms".into(),
                value: "200005".into(),
                reason: "delivery.timeout.ms should be equal to or larger than linger.ms + request.timeout.ms \
                         (5 + 200000); setting it to 200005"
                    .into(),
            }]
        );
        let err = producer_with(&[("delivery.timeout.ms", "1000"), ("request.timeout.ms", "2000")], V4_1).unwrap_err();
        assert_eq!(err.key, "delivery.timeout.ms");
        assert!(err.message.contains("found 1000 < 5 + 2000"), "{err}");
        // Exactly the sum is enough.
        assert!(producer_with(&[("delivery.timeout.ms", "2005"), ("request.timeout.ms", "2000")], V4_1).is_ok());
    }

    fn consumer_with(configs: &[(&str, &str)], used_as: ConsumerUse) -> Result<ConsumerConfig, ConfigError> {
        let mut c = ConsumerConfig::default();
        for (key, value) in configs {
            c.set_checked(key, value, V4_1)?;
        }
        let originals: Vec<&str> = configs.iter().map(|(k, _)| *k).collect();
        consumer(&c, &originals, used_as)?;
        Ok(c)
    }

    #[test]
    fn heartbeat_must_be_below_session_timeout_in_a_group() {
        let group = ("group.id", "g");
        let err = consumer_with(&[group, ("session.timeout.ms", "3000")], ConsumerUse::Subscribe).unwrap_err();
        assert_eq!(err.key, "session.timeout.ms");
        assert!(err.message.contains("found 3000 >= 3000"), "{err}");
        let err = consumer_with(&[group, ("heartbeat.interval.ms", "50000")], ConsumerUse::Subscribe).unwrap_err();
        assert_eq!(err.key, "heartbeat.interval.ms", "the one the user set is named");
        assert!(consumer_with(&[group, ("session.timeout.ms", "3001")], ConsumerUse::Subscribe).is_ok());
        // Without a group there is no Heartbeat to build.
        assert!(consumer_with(&[("session.timeout.ms", "1000")], ConsumerUse::Assign).is_ok());
        // A session timeout the broker will refuse (below group.min.session.timeout.ms) is not the
        // client's business: INVALID_SESSION_TIMEOUT comes at run time.
        assert!(consumer_with(&[group, ("session.timeout.ms", "5000")], ConsumerUse::Subscribe).is_ok());
    }

    #[test]
    fn assignor_lists_are_checked_as_the_consumer_builds_them() {
        let strategy = |s| [("group.id", "g"), ("partition.assignment.strategy", s)];
        let err = consumer_with(&strategy("range, fair"), ConsumerUse::Subscribe).unwrap_err();
        assert_eq!(err.key, "partition.assignment.strategy");
        assert!(err.message.contains("unknown assignor `fair`"), "{err}");
        let err = consumer_with(&strategy(""), ConsumerUse::Subscribe).unwrap_err();
        assert!(err.message.contains("at least one partition assignor"), "{err}");
        // An empty list only stops subscribe(); a consumer that assigns itself does not need one.
        assert!(consumer_with(&[("partition.assignment.strategy", "")], ConsumerUse::Assign).is_ok());
        let err =
            consumer_with(&strategy("range, org.apache.kafka.clients.consumer.RangeAssignor"), ConsumerUse::Subscribe)
                .unwrap_err();
        assert!(err.message.contains("`range` is used more than once"), "{err}");
        assert!(consumer_with(
            &strategy("org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
            ConsumerUse::Subscribe
        )
        .is_ok());
    }

    #[test]
    fn other_consumer_rules() {
        let err = consumer_with(&[("enable.auto.commit", "true")], ConsumerUse::Assign).unwrap_err();
        assert_eq!(err.key, "enable.auto.commit");
        // The default auto-commit without a group is quietly off in Kafka: no error.
        assert!(consumer_with(&[], ConsumerUse::Assign).is_ok());
        for bad in ["", "..", "a b", &"x".repeat(250)] {
            let err =
                consumer_with(&[("group.id", "g"), ("group.instance.id", bad)], ConsumerUse::Subscribe).expect_err(bad);
            assert_eq!(err.key, "group.instance.id");
        }
        assert!(
            consumer_with(&[("group.id", "g"), ("group.instance.id", "host-1.a_b")], ConsumerUse::Subscribe).is_ok()
        );
        let mut c = ConsumerConfig::default();
        let err = c.set("auto.offset.reset", "by_duration:PT1H").unwrap_err();
        assert!(err.message.contains("KIP-1106"), "{err}");
        assert!(c.set("auto.offset.reset", "LATEST").is_err(), "Kafka's ValidString is case-sensitive");
    }

    #[test]
    fn broker_rules() {
        let mut b = BrokerConfig::default();
        assert_eq!(broker(&b), Ok(()));
        b.replica_fetch_wait_max_ms = 40_000;
        b.replica_lag_time_max_ms = 50_000;
        let err = broker(&b).unwrap_err();
        assert!(err.message.contains("replica.socket.timeout.ms"), "{err}");
        b.replica_lag_time_max_ms = 10_000;
        let err = broker(&b).unwrap_err();
        assert_eq!(err.key, "replica.fetch.wait.max.ms");
        assert!(err.message.contains("less than or equal to replica.lag.time.max.ms"), "{err}");
        let mut b = BrokerConfig::for_version(V3_9);
        b.set_checked("eligible.leader.replicas.version", "1", V3_9).unwrap();
        assert_eq!(broker(&b).unwrap_err().key, "eligible.leader.replicas.version");
        // A topic's own configs go through the same table.
        let mut t = TopicConfig::default();
        assert!(t.set_checked("min.insync.replicas", "0", V4_1).is_err());
        assert!(t.set_checked("segment.ms", "0", V4_1).is_err());
    }
}
