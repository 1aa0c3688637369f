//! Scenario files: what cluster to build, what to run on it, what to break, what to expect.
//!
//! Scenarios are RON files (see `scenarios/*.ron`). Parsing is strict: an unknown field or a
//! malformed value is an error that names the file, line and column and what was expected; a
//! well-formed but impossible scenario (an unknown broker, a replication factor above the broker
//! count, an action after the end of the run) is rejected by [`Scenario::resolve`] before the
//! run, with a message naming the field; when the field is a config key, the error read from a
//! file also gives the key's line and column ([`locate`]).

use ksim_cluster::node::NodeId;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};

pub mod connect;
pub mod happening;
pub mod limits;
pub mod locate;
pub mod overrides;
mod resolve;

pub use resolve::{Located, Resolved};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A config value as written in a scenario: `"all"`, `2`, `true` all work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Bool(b) => write!(f, "{b}"),
            ConfigValue::Int(i) => write!(f, "{i}"),
            ConfigValue::Text(s) => f.write_str(s),
        }
    }
}

pub type Configs = BTreeMap<String, ConfigValue>;

/// A `configs` map, refusing a key written twice (a map would silently keep the last).
fn configs_without_duplicates<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Configs, D::Error> {
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Configs;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of config names to values, like {\"acks\": \"all\"}")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Configs, A::Error> {
            let mut out = Configs::new();
            while let Some((key, value)) = map.next_entry::<String, ConfigValue>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("`{key}` is set twice in one configs map: keep one")));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The seed `ksim run` uses when none is given.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual time the run lasts.
    pub duration_ms: u64,
    pub cluster: Cluster,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub topics: Vec<Topic>,
    #[serde(default)]
    pub clients: Vec<Client>,
    #[serde(default)]
    pub timeline: Vec<Step>,
    #[serde(default)]
    pub narration: Vec<Narration>,
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// What `ksim fuzz` may break, at most, in one run.
    #[serde(default)]
    pub fuzz: Option<FuzzBudget>,
    /// Liveness: this long after the last timeline step, the cluster must have converged (every
    /// broker up and unfenced, every partition led with a full ISR, every group Stable, every
    /// consumer caught up, every acknowledged write readable).
    #[serde(default)]
    pub converge_within_ms: Option<u64>,
    /// Kafka Connect: external systems, worker settings and connectors (workers are clients
    /// running `ConnectWorker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<connect::ConnectSection>,
    /// The command line's `--set` overrides, as written, already applied to the configs above
    /// ([`overrides`]). Not part of the file: the trace header and replay lines carry them.
    #[serde(skip)]
    pub overrides: Vec<String>,
}

/// How many faults of each kind `ksim fuzz` may draw for one seed, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuzzBudget {
    #[serde(default)]
    pub kills: u32,
    #[serde(default)]
    pub power_failures: u32,
    #[serde(default)]
    pub pauses: u32,
    #[serde(default)]
    pub partitions: u32,
    #[serde(default)]
    pub slow_links: u32,
    #[serde(default)]
    pub client_crashes: u32,
    /// Faults start no earlier than this...
    #[serde(default)]
    pub from_ms: u64,
    /// ...and every fault is healed (restarts, resumes, heals) by this time, so the cluster has
    /// the rest of the run to converge.
    pub heal_by_ms: u64,
}

fn default_seed() -> u64 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Broker ids (`node.id`).
    pub brokers: Vec<BrokerId>,
    /// Optional `broker.rack` per broker.
    #[serde(default)]
    pub racks: BTreeMap<BrokerId, String>,
    /// The Kafka release the cluster runs, `"major.minor"` (default: the newest ksim models,
    /// "4.1"). It decides behaviour Kafka has no setting for (strict min ISR from 3.7) and the
    /// defaults of features it has (`eligible.leader.replicas.version`: on from 4.1); see
    /// `ksim_cluster::version` for what each release changes.
    #[serde(default)]
    pub kafka_version: Option<String>,
    /// Broker configs by Kafka's names (topic-level names set the broker-wide default).
    #[serde(default, deserialize_with = "configs_without_duplicates")]
    pub configs: Configs,
    /// The KRaft controller quorum. Without it the cluster has ksim's single dedicated controller
    /// (node 3000), a development setup: when it is down nothing fails over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<Quorum>,
}

/// `controller.quorum.voters`: the controllers that replicate the metadata log with KRaft
/// (KIP-595). Each runs `process.roles=controller` on its own node; brokers observe the quorum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quorum {
    /// The controllers' node ids (3 or 5 in production; an odd number survives the most failures).
    pub controllers: Vec<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default = "default_latency_min")]
    pub latency_ms_min: u64,
    #[serde(default = "default_latency_max")]
    pub latency_ms_max: u64,
    /// Probability that a message is lost (0.0 to 1.0). Kafka runs over TCP, which retransmits;
    /// a lost message here models a connection that stalls until the sender's request timeout.
    #[serde(default)]
    pub loss: f64,
}

fn default_latency_min() -> u64 {
    1
}

fn default_latency_max() -> u64 {
    5
}

impl Default for Network {
    fn default() -> Self {
        Network { latency_ms_min: default_latency_min(), latency_ms_max: default_latency_max(), loss: 0.0 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: String,
    #[serde(default = "one")]
    pub partitions: i32,
    #[serde(default = "one_usize")]
    pub replication_factor: usize,
    /// Explicit replica lists per partition (the first is the preferred leader).
    #[serde(default)]
    pub replicas: Vec<Vec<BrokerId>>,
    #[serde(default, deserialize_with = "configs_without_duplicates")]
    pub configs: Configs,
}

fn one() -> i32 {
    1
}

fn one_usize() -> usize {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub name: String,
    pub app: App,
    /// The client library the application uses, which decides the defaults of settings the
    /// scenario leaves unset: `Java` (the Apache Kafka client) or `Librdkafka` (what
    /// Confluent.Kafka for .NET wraps). Today it decides `isolation.level`: the Java consumer
    /// reads `read_uncommitted` by default, librdkafka `read_committed`.
    #[serde(default)]
    pub library: Library,
    #[serde(default, deserialize_with = "configs_without_duplicates")]
    pub configs: Configs,
    /// When the application starts.
    #[serde(default)]
    pub start_ms: u64,
}

/// A client library (see [`Client::library`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Library {
    #[default]
    Java,
    Librdkafka,
}

/// One record of a `JsonProducer`: its key (none: keyless) and its value's fields, written as a
/// JSON object (fields in name order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRecord {
    #[serde(default)]
    pub key: Option<String>,
    pub value: BTreeMap<String, serde_json::Value>,
}

impl JsonRecord {
    /// The value as the producer writes it.
    pub fn value_json(&self) -> String {
        serde_json::to_string(&self.value).expect("a map of JSON values serializes")
    }
}

/// The application a client node runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum App {
    /// Send `records` records to `topic`, one every `interval_ms`. Keys cycle through `keys`
    /// (none: keyless); values are `{value_prefix}-{n}`, except the records numbered in
    /// `tombstones` (counting from 0), sent with a null value: a tombstone, which deletes its key
    /// on a compacted topic.
    Producer {
        topic: String,
        records: u64,
        #[serde(default = "default_interval")]
        interval_ms: u64,
        #[serde(default)]
        keys: Vec<String>,
        #[serde(default = "default_value_prefix")]
        value_prefix: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tombstones: Vec<u64>,
    },
    /// Send the listed JSON records to `topic` in list order, one every `interval_ms`: a script of
    /// events, event times included (a field such as `"ts": 61000` that a stream declares as its
    /// TIMESTAMP), so late and out-of-order events are written as listed.
    JsonProducer {
        topic: String,
        records: Vec<JsonRecord>,
        #[serde(default = "default_interval")]
        interval_ms: u64,
    },
    /// A transactional producer (set `transactional.id` in `configs`): `initTransactions()`,
    /// then `transactions` transactions of `records_per_transaction` records to `topic`, one
    /// every `interval_ms`, each committed `commit_delay_ms` after its last send, except every
    /// `abort_every`-th (0: none), which is aborted. Values are
    /// `{value_prefix}-{transaction}-{n}`. A fatal error (PRODUCER_FENCED) stops it; an abortable
    /// one aborts the transaction and goes on.
    TransactionalProducer {
        topic: String,
        transactions: u64,
        records_per_transaction: u64,
        #[serde(default = "default_interval")]
        interval_ms: u64,
        #[serde(default)]
        commit_delay_ms: u64,
        #[serde(default)]
        abort_every: u64,
        #[serde(default)]
        keys: Vec<String>,
        #[serde(default = "default_value_prefix")]
        value_prefix: String,
    },
    /// Read every partition of `topics` (assigned, no group), polling every `poll_interval_ms`.
    Consumer {
        topics: Vec<String>,
        #[serde(default = "default_poll_interval")]
        poll_interval_ms: u64,
    },
    /// A member of the consumer group `group.id` (set it in `configs`): subscribe to `topics`,
    /// poll, "process" each record for `processing_ms`, and commit as `commit` says.
    GroupConsumer {
        topics: Vec<String>,
        #[serde(default = "default_poll_interval")]
        poll_interval_ms: u64,
        #[serde(default)]
        processing_ms: u64,
        #[serde(default)]
        commit: CommitMode,
    },
    /// The seeds' application: consume `topics`, count records by key in memory, produce each
    /// new count to `output`, and commit after producing.
    GroupByCount {
        topics: Vec<String>,
        output: String,
        #[serde(default = "default_poll_interval")]
        poll_interval_ms: u64,
    },
    /// A Kafka Streams application instance: `application_id` is its `application.id` (and the
    /// group every instance of it joins); `topology` is ksqlDB statements (one declared stream
    /// WITH a TIMESTAMP column, then CREATE ... AS SELECT) run by ksim's Streams runtime.
    /// `processing_guarantee` is `at_least_once` (default) or `exactly_once_v2`;
    /// `commit_interval_ms` defaults to Streams' (30 000, or 100 under exactly-once);
    /// `statestore_cache_max_bytes` (`statestore.cache.max.bytes`) to Streams' 10 MB: the
    /// record cache that holds an aggregation's updates back until a commit (0 forwards every
    /// update).
    KafkaStreams {
        application_id: String,
        topology: String,
        #[serde(default = "default_guarantee")]
        processing_guarantee: String,
        #[serde(default)]
        commit_interval_ms: Option<u64>,
        #[serde(default = "default_poll_interval")]
        poll_interval_ms: u64,
        #[serde(default)]
        statestore_cache_max_bytes: Option<u64>,
    },
    /// A ksqlDB server running one persistent query (`statements`: its stream, then one CREATE
    /// ... AS SELECT) on the Streams runtime, with ksqlDB's names: application id
    /// `_confluent-ksql-<service_id>query_<query id>`, store `Aggregate-Aggregate-Materialize`;
    /// `commit_interval_ms` defaults to ksqlDB's 2 000; `statestore_cache_max_bytes` to
    /// Streams' 10 MB.
    KsqlServer {
        #[serde(default = "default_service_id")]
        service_id: String,
        statements: String,
        #[serde(default = "default_guarantee")]
        processing_guarantee: String,
        #[serde(default)]
        commit_interval_ms: Option<u64>,
        #[serde(default = "default_poll_interval")]
        poll_interval_ms: u64,
        #[serde(default)]
        statestore_cache_max_bytes: Option<u64>,
    },
    /// A Kafka Connect worker: runs the connectors and tasks of the scenario's `connect` section
    /// that the worker group assigns it (standalone: all of them). Its `configs` are its
    /// producer's and its sink consumer's client settings (`producer.*`/`consumer.*` in a
    /// worker's properties file).
    ConnectWorker,
    /// An operator's machine with Kafka's command-line tools (`kafka-transactions.sh`): it runs
    /// nothing by itself; timeline actions such as `AbortTransaction` run from it.
    Admin,
    /// A consume-transform-produce pipeline, a member of the group `group.id`: subscribe to
    /// `topics`, and for each polled batch write one output record per input record to `output`
    /// (the value names the input: `invoice for orders-0@5: ...`), then commit the input
    /// offsets as `processing` says. `ExactlyOnce` (set `transactional.id` in `configs`): the
    /// outputs and the offsets go in one transaction (`sendOffsetsToTransaction`, KIP-447); the
    /// consumer reads `read_committed` unless `isolation.level` says otherwise. `AtLeastOnce`:
    /// the outputs are flushed, then `commitSync()`.
    ConsumeTransformProduce {
        topics: Vec<String>,
        output: String,
        processing: Processing,
        #[serde(default = "default_poll_interval")]
        poll_interval_ms: u64,
        /// How long each input takes to transform, before its output is sent.
        #[serde(default)]
        processing_ms: u64,
    },
}

/// What a Streams runtime app runs: its topology and settings, from either app kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamsSetup {
    pub naming: ksim_cluster::streams::Naming,
    pub statements: String,
    pub processing_guarantee: String,
    pub commit_interval_ms: Option<u64>,
    pub poll_interval_ms: u64,
    /// `statestore.cache.max.bytes`, for the instance's one stream thread.
    pub cache_max_bytes: u64,
}

impl StreamsSetup {
    pub fn topology(&self) -> Result<ksim_cluster::streams::Topology, String> {
        Ok(ksim_cluster::streams::Topology::compile(&self.statements, &self.naming)?.with_cache(self.cache_max_bytes))
    }

    pub fn guarantee(&self) -> Result<ksim_cluster::streams::ProcessingGuarantee, String> {
        use ksim_cluster::streams::ProcessingGuarantee;
        match self.processing_guarantee.as_str() {
            "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
            "exactly_once_v2" => Ok(ProcessingGuarantee::ExactlyOnceV2),
            "exactly_once" | "exactly_once_beta" => Err(format!(
                "`{}` was deprecated by KIP-732 and removed in Kafka 4.0; use exactly_once_v2",
                self.processing_guarantee
            )),
            other => Err(format!("`{other}`: expected at_least_once or exactly_once_v2")),
        }
    }
}

fn default_guarantee() -> String {
    "at_least_once".to_string()
}

/// ksqlDB's default `ksql.service.id`.
fn default_service_id() -> String {
    "default_".to_string()
}

/// How a consume-transform-produce pipeline commits its input offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Processing {
    /// Outputs and input offsets in one transaction: each input's effect is in the
    /// `read_committed` output exactly once, crashes and zombies included.
    ExactlyOnce,
    /// Outputs acknowledged, then `commitSync()`: a crash between the two writes them again.
    AtLeastOnce,
}

/// When a group consumer commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitMode {
    /// `enable.auto.commit=true`: every `auto.commit.interval.ms`, and before a rebalance.
    #[default]
    Auto,
    /// Process each batch, then `commitSync()`: at-least-once (a crash between the two
    /// reprocesses the batch).
    AfterProcessing,
    /// `commitSync()` right after `poll()`, then process: at-most-once (a crash while processing
    /// skips the rest of the batch).
    BeforeProcessing,
}

impl App {
    pub fn uses_producer(&self) -> bool {
        matches!(
            self,
            App::Producer { .. }
                | App::JsonProducer { .. }
                | App::TransactionalProducer { .. }
                | App::GroupByCount { .. }
                | App::ConnectWorker
                | App::ConsumeTransformProduce { .. }
        ) || self.streams().is_some()
    }

    /// A Streams runtime app's setup (`KafkaStreams` or `KsqlServer`).
    pub fn streams(&self) -> Option<StreamsSetup> {
        use ksim_cluster::streams::Naming;
        match self {
            App::KafkaStreams {
                application_id,
                topology,
                processing_guarantee,
                commit_interval_ms,
                poll_interval_ms,
                statestore_cache_max_bytes,
            } => Some(StreamsSetup {
                naming: Naming::Streams { application_id: application_id.clone() },
                statements: topology.clone(),
                processing_guarantee: processing_guarantee.clone(),
                commit_interval_ms: *commit_interval_ms,
                poll_interval_ms: *poll_interval_ms,
                cache_max_bytes: statestore_cache_max_bytes
                    .unwrap_or(ksim_cluster::streams::topology::DEFAULT_STATESTORE_CACHE_MAX_BYTES),
            }),
            App::KsqlServer {
                service_id,
                statements,
                processing_guarantee,
                commit_interval_ms,
                poll_interval_ms,
                statestore_cache_max_bytes,
            } => {
                Some(StreamsSetup {
                    cache_max_bytes: statestore_cache_max_bytes
                        .unwrap_or(ksim_cluster::streams::topology::DEFAULT_STATESTORE_CACHE_MAX_BYTES),
                    naming: Naming::Ksql { service_id: service_id.clone() },
                    statements: statements.clone(),
                    processing_guarantee: processing_guarantee.clone(),
                    // ksqlDB's own default (`KsqlConstants.defaultCommitIntervalMsConfig`).
                    commit_interval_ms: commit_interval_ms
                        .or(Some(ksim_cluster::ksql::executor::DEFAULT_COMMIT_INTERVAL_MS as u64)),
                    poll_interval_ms: *poll_interval_ms,
                })
            }
            _ => None,
        }
    }

    pub fn uses_consumer(&self) -> bool {
        !matches!(
            self,
            App::Producer { .. } | App::JsonProducer { .. } | App::TransactionalProducer { .. } | App::Admin
        )
    }

    pub fn group_member(&self) -> bool {
        matches!(self, App::GroupConsumer { .. } | App::GroupByCount { .. } | App::ConsumeTransformProduce { .. })
            || self.streams().is_some()
    }

    pub fn topics(&self) -> Vec<&String> {
        match self {
            App::Producer { topic, .. }
            | App::JsonProducer { topic, .. }
            | App::TransactionalProducer { topic, .. } => {
                vec![topic]
            }
            App::Consumer { topics, .. } | App::GroupConsumer { topics, .. } => topics.iter().collect(),
            // Named by the topology: `resolve_clients` checks them once it is compiled.
            App::KafkaStreams { .. } | App::KsqlServer { .. } => Vec::new(),
            // The connectors name their topics; `connect` resolution checks them.
            App::ConnectWorker | App::Admin => Vec::new(),
            App::GroupByCount { topics, output, .. } | App::ConsumeTransformProduce { topics, output, .. } => {
                topics.iter().chain(std::iter::once(output)).collect()
            }
        }
    }
}

fn default_interval() -> u64 {
    100
}

fn default_poll_interval() -> u64 {
    100
}

fn default_value_prefix() -> String {
    "record".to_string()
}

/// A node as a scenario names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NodeRef {
    Broker(BrokerId),
    /// The single controller (a scenario without a quorum), or the first voter of the quorum.
    Controller,
    /// One controller of the quorum, by node id.
    Voter(i32),
    Client(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at_ms: u64,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Action {
    Kill(NodeRef),
    PowerFail(NodeRef),
    Restart(NodeRef),
    Pause(NodeRef),
    Resume(NodeRef),
    /// Stop the process gracefully (SIGTERM): a broker runs its controlled shutdown (the
    /// controller moves its leaderships away first), then exits with every log flushed; a client
    /// closes its consumer as a shutdown hook calling `KafkaConsumer.close()` does (commits its
    /// positions if `enable.auto.commit`, gives its partitions up, sends LeaveGroup unless it is
    /// a static member), then exits. `Restart` brings it back.
    Stop(NodeRef),
    /// Cut the network between groups (nodes not named stay connected to everyone).
    Partition(Vec<Vec<NodeRef>>),
    /// Drop messages from the first group to the second only.
    PartitionOneWay(Vec<NodeRef>, Vec<NodeRef>),
    /// Cut one node off from every other node.
    Isolate(NodeRef),
    Heal,
    SlowLink(NodeRef, NodeRef, u64),
    /// An operator aborts the open transaction that pins a partition's last stable offset, as
    /// `kafka-transactions.sh abort --topic T --partition P --start-offset N` does from the
    /// client `from` (an `Admin` app): DescribeProducers on the partition's leader finds the
    /// producer whose transaction starts at the LSO, and Admin `abortTransaction`
    /// (`AbortTransactionSpec`: producer id, epoch, coordinator epoch) sends WriteTxnMarkers with
    /// an ABORT marker straight to the leader, bypassing the transaction coordinator.
    AbortTransaction {
        from: String,
        partition: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Narration {
    #[serde(default)]
    pub at_ms: Option<u64>,
    /// Say it when this first happens instead of at a time.
    #[serde(default)]
    pub on: Option<Happening>,
    /// With `on`: the first time it happens at or after this time (a failover's election, not
    /// the one at startup).
    #[serde(default)]
    pub after_ms: Option<u64>,
    pub text: String,
}

/// Something that can happen in a run, for narration triggers and expectations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Happening {
    /// A leader election for the partition (`"payments-0"`), of any kind.
    Election(String),
    UncleanElection(String),
    PreferredElection(String),
    /// The ISR was empty and the controller elected an Eligible Leader Replica (KIP-966).
    ElrElection(String),
    /// The partition has no leader.
    Offline(String),
    IsrShrink(String),
    IsrExpand(String),
    /// A replica of the partition truncated its log.
    Truncation(String),
    Fenced(BrokerId),
    /// A controller became the active controller (its quorum leadership committed).
    ControllerActivated,
    /// A quorum leader resigned because no majority fetched from it in time (check-quorum).
    CheckQuorumResigned,
    /// A quorum member started a real election: it bumped the epoch and asked for votes.
    QuorumElection,
    /// A broker's fetch session cache was full and evicted a session to make room (KIP-227).
    FetchSessionEvicted,
    /// A broker's fetch session cache was full and could evict nothing: a fetcher goes without.
    FetchSessionRefused,
    /// A produce response carried this error (Kafka's name: `"NOT_ENOUGH_REPLICAS"`).
    ProduceError(String),
    /// The producer gave up on a record.
    ProduceFailed,
    /// A record was consumed twice (or written twice).
    Duplicate,
    /// A Kafka Streams application's results reflect one input twice (the checker's
    /// `counted-twice`): at_least_once after a crash between output and commit.
    CountedTwice,
    /// A producer's records landed in a partition out of the order it sent them.
    Reordered,
    /// A write acknowledged to the producer is not in the log any more.
    AckedWriteLost,
    /// Retention moved the log start offset of the partition.
    LogStartMoved(String),
    /// A broker's log cleaner compacted its copy of the partition (an application topic, or an
    /// internal one such as `__consumer_offsets-7`).
    LogCleaned(String),
    /// A consumer's position was (re)set by `auto.offset.reset`.
    OffsetReset(String),
    /// A consumer asked for an offset the log no longer (or does not yet) hold.
    OffsetOutOfRange(String),
    /// A consumer checking its position with a new leader found that the log it had read was
    /// truncated (KIP-320).
    TruncationDetected(String),
    /// The consumer group (by `group.id`) started a rebalance.
    Rebalance(String),
    /// A member of the group gave up every partition it had while staying in the group (eager
    /// rebalancing's stop-the-world).
    RevokedAll(String),
    /// A member of the group gave up some partitions (cooperative rebalancing moves only those).
    Revoked(String),
    /// The coordinator removed a member (session timeout, left, or did not rejoin in time).
    MemberRemoved(String),
    /// A static member came back and kept its partitions without a rebalance.
    StaticMemberReturned(String),
    /// A new coordinator loaded the group from `__consumer_offsets`.
    GroupLoaded(String),
    /// A member's commit was rejected (its generation was over).
    CommitFailed(String),
    /// The group's coordinator wrote a commit of the group (it is in `__consumer_offsets` on
    /// every in-sync replica): `SometimesBetween(Committed("g"), 20000, 40000)` says commits go
    /// on after a coordinator moved.
    Committed(String),
    /// A member's application did not poll within `max.poll.interval.ms`.
    PollIntervalExceeded(String),
    /// A member heard FENCED_INSTANCE_ID: another process took its `group.instance.id`, and it
    /// stopped for good (fatal to the Java consumer).
    MemberFenced(String),
    /// A consumer could not join: none of its assignors is one every member supports
    /// (INCONSISTENT_GROUP_PROTOCOL, fatal to the Java consumer).
    InconsistentGroupProtocol(String),
    /// A record was processed twice by the group (at-least-once).
    ProcessedTwice,
    /// The group committed past records it never processed (at-most-once).
    CommittedUnprocessed,
    /// A transaction of this `transactional.id` committed (its producer's commitTransaction()
    /// returned).
    TransactionCommitted(String),
    /// A transaction of this `transactional.id` was aborted by its producer.
    TransactionAborted(String),
    /// The coordinator moved this `transactional.id` to a state (`"PrepareAbort"`,
    /// `"CompleteCommit"`, ...): `TransactionState("tx", "PrepareAbort")`.
    TransactionState(String, String),
    /// A new coordinator loaded this `transactional.id` from `__transaction_state`.
    TransactionLoaded(String),
    /// A producer with this `transactional.id` was fenced (PRODUCER_FENCED: fatal).
    ProducerFenced(String),
    /// A transaction marker was written to the partition.
    Marker(String),
    /// A read_committed consumer returned a record of an aborted or undecided transaction.
    ReadAborted,
    /// A Connect sink task wrote a record to its store a second time (at-least-once).
    SinkRewrote,
    /// A Connect source record is in the committed output twice.
    SourceRecordDuplicated,
    /// A Connect task started (or started again elsewhere): `ConnectTaskStarted("users-source-0")`.
    ConnectTaskStarted(String),
    /// A Connect task failed (`errors.tolerance=none`, or fenced).
    ConnectTaskFailed(String),
    /// A partition leader refused a transactional produce after verifying it with the
    /// transaction coordinator (KIP-890): `TxnVerificationFailed("payments-0")`.
    TxnVerificationFailed(String),
    /// An operator's `kafka-transactions.sh abort` wrote an ABORT marker to the partition.
    TransactionAbortedByAdmin(String),
    /// A Connect sink task sent a record to this dead letter queue topic.
    DeadLettered(String),
    /// A Connect worker's session in its group expired (by worker name).
    WorkerSessionExpired(String),
    /// A Connect worker that could not reach its group's coordinator stopped everything it ran
    /// (by worker name; KAFKA-9184).
    WorkerLostCoordinator(String),
    /// The Connect group's leader held a departed worker's work back
    /// (`scheduled.rebalance.max.delay.ms`).
    ConnectRebalanceDelayed,
    /// An exactly-once Connect source task committed a transaction.
    SourceTransactionCommitted,
    /// A pipeline's read_committed output holds an input's effect twice, or not at all.
    EffectNotExactlyOnce,
    /// A producer with this `transactional.id` finished sendOffsetsToTransaction(): the group
    /// coordinator holds its offsets pending.
    TxnOffsetsSent(String),
    /// The group's coordinator refused a TxnOffsetCommit (a zombie's stale generation or member
    /// id: KIP-447).
    TxnOffsetCommitRefused(String),
    /// A member of the group asked for committed offsets and got UNSTABLE_OFFSET_COMMIT.
    UnstableOffsetFetch(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expectation {
    /// This must happen at least once (it is what the lesson is about).
    Sometimes(Happening),
    /// This must never happen.
    Never(Happening),
    /// At the end of the run, this must hold.
    Finally(Condition),
    /// This must happen at least once between these two times (ms since the start, both
    /// included): `SometimesBetween(Fenced(1), 18000, 20000)`.
    SometimesBetween(Happening, u64, u64),
    /// This must not happen before this time (ms): `NeverBefore(Election("payments-0"), 15000)`.
    NeverBefore(Happening, u64),
    /// This must not happen after this time (ms).
    NeverAfter(Happening, u64),
    /// This must happen exactly this many times: `Count(Rebalance("orders"), 1)`.
    Count(Happening, u64),
    /// This must happen at least `min` and at most `max` times.
    CountBetween(Happening, u64, u64),
    /// The first of these must happen, and before the first of the second (which must happen
    /// too): `Before(Fenced(1), Election("payments-0"))` reads "fenced, then elected".
    Before(Happening, Happening),
}

impl Expectation {
    /// Whether random faults (a fuzz sweep) leave this expectation meaningful: only an
    /// unconditional `Never` is; the others describe the scenario's own story.
    pub fn holds_under_any_faults(&self) -> bool {
        matches!(self, Expectation::Never(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    Leader(String, BrokerId),
    NoLeader(String),
    Isr(String, Vec<BrokerId>),
    /// The producer client got this many acknowledgements.
    Acked(String, u64),
    /// The consumer client consumed this many records.
    Consumed(String, u64),
    /// Every acknowledged write is in the partition leader's log.
    AllAckedWritesPresent,
    /// The consumer group ends in this state (`"Stable"`, `"Empty"`, ...).
    GroupState(String, String),
    /// The client processed this many distinct records.
    Processed(String, u64),
    /// The client (a group member) owns this many partitions at the end.
    Owns(String, usize),
    /// Every replica of the partition (running or not) holds the same records at the same
    /// offsets and ends at the same offset: `ReplicasIdentical("orders-0")`.
    ReplicasIdentical(String),
    /// The last committed record with this key in the topic (what a `read_committed` consumer
    /// reads last for it, in any partition) has this value: a table's current row,
    /// `Latest("BALANCE", "alice", "{\"BALANCE\":15}")`.
    Latest(String, String, String),
    /// A Connect sink store holds this many entries (upsert) or lines (append):
    /// `SinkSize("crm", 5)`.
    SinkSize(String, usize),
    /// An upserting Connect sink store holds this value for this key:
    /// `SinkEntry("crm", "1", "{\"id\":1}")`.
    SinkEntry(String, String, String),
    /// No record of the topic, on any replica, has this text in its key or value: the
    /// PII never reached Kafka. `NoRecordContains("users", "gender")`.
    NoRecordContains(String, String),
}

/// A scenario that failed to load: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line and column of a parse error, or of the config key a validation error is
    /// about; `None` for other validation errors.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{}:{}: {}", self.file, line, col, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// A topic name plus partition written as `name-N`, parsed from the last `-`.
pub fn parse_partition(text: &str) -> Option<TopicPartition> {
    let (topic, number) = text.rsplit_once('-')?;
    let partition = number.parse().ok()?;
    (!topic.is_empty()).then(|| TopicPartition::new(topic, partition))
}

impl Scenario {
    /// Parse RON text. `file` names the source in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        // Windows editors start UTF-8 files with a byte order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str::<Scenario>(text)
            .map_err(|e| ScenarioError {
                file: file.to_string(),
                position: Some((e.position.line, e.position.col)),
                message: describe_ron_error(&e.code, text, (e.position.line, e.position.col)),
            })
    }

    /// Parse one timeline action on its own (`Kill(Broker(1))`), with the scenario's RON
    /// options and its errors' wording (what was expected), for `ksim serve`'s control channel.
    pub fn parse_action(text: &str) -> Result<Action, String> {
        let text = text.trim();
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str::<Action>(text)
            .map_err(|e| {
                let message = describe_ron_error(&e.code, text, (e.position.line, e.position.col));
                format!("column {}: {message}", e.position.col)
            })
    }

    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        use std::io::Read;
        let file = path.display().to_string();
        let error = |position, message: String| ScenarioError { file: file.clone(), position, message };
        if path.is_dir() {
            return Err(error(None, "is a folder, not a scenario file".into()));
        }
        let opened = std::fs::File::open(path).map_err(|e| error(None, format!("cannot read: {e}")))?;
        // Bounded before anything is read into memory: `ksim run /dev/zero` must not read forever.
        let mut bytes = Vec::new();
        opened
            .take(limits::MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| error(None, format!("cannot read: {e}")))?;
        if bytes.len() as u64 > limits::MAX_FILE_BYTES {
            return Err(error(
                None,
                format!(
                    "larger than {} MiB: a scenario file is a few KB of RON",
                    limits::MAX_FILE_BYTES / (1024 * 1024)
                ),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let line = valid.matches('\n').count() + 1;
            let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            error(Some((line, col)), "not UTF-8 text: save the file as UTF-8".into())
        })?;
        Scenario::from_text(&file, &text)
    }

    /// Parse and validate a scenario's text; `file` names it in errors. An error about a config
    /// key gives the key's line and column in `text`.
    pub fn from_text(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let scenario = Scenario::parse(file, text)?;
        scenario.resolve_located().map_err(|Located { message, path }| ScenarioError {
            file: file.to_string(),
            position: path.and_then(|path| locate::locate(text, &path)),
            message,
        })?;
        Ok(scenario)
    }

    /// The simulator's id for a node the scenario names.
    pub fn node_id(&self, node: &NodeRef) -> NodeId {
        match node {
            NodeRef::Broker(id) => NodeId::Broker(*id),
            NodeRef::Controller => NodeId::Controller(self.controller_ids()[0]),
            NodeRef::Voter(id) => NodeId::Controller(*id),
            NodeRef::Client(name) => NodeId::Client(
                self.clients.iter().position(|c| &c.name == name).expect("validated: the client exists") as u32,
            ),
        }
    }
}

/// The `node.id` of ksim's controller (KRaft controllers conventionally get ids apart from brokers).
pub const CONTROLLER_ID: i32 = 3000;

impl Scenario {
    /// The controllers' node ids: the quorum's voters, or ksim's single controller.
    pub fn controller_ids(&self) -> Vec<i32> {
        match &self.cluster.quorum {
            Some(q) if !q.controllers.is_empty() => q.controllers.clone(),
            _ => vec![CONTROLLER_ID],
        }
    }

    /// The other process on the same host, in combined mode: a `node.id` that is both a broker
    /// and a controller is one node running both roles (`process.roles=broker,controller`, KIP-833;
    /// Kafka's node ids are unique across a cluster, so a shared id can only mean one node). A
    /// fault to the host reaches both; a network cut never separates them (they talk over the
    /// host's loopback).
    pub fn same_host(&self, node: NodeId) -> Option<NodeId> {
        let quorum = self.cluster.quorum.as_ref()?;
        match node {
            NodeId::Broker(id) if quorum.controllers.contains(&id) => Some(NodeId::Controller(id)),
            NodeId::Controller(id) if self.cluster.brokers.contains(&id) => Some(NodeId::Broker(id)),
            _ => None,
        }
    }

    /// Every node of the run: controllers, brokers, clients.
    pub fn all_nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.controller_ids().into_iter().map(NodeId::Controller).collect();
        nodes.extend(self.cluster.brokers.iter().map(|id| NodeId::Broker(*id)));
        nodes.extend((0..self.clients.len()).map(|i| NodeId::Client(i as u32)));
        nodes
    }
}

impl Action {
    /// Whether the action acts on a process (rather than the network).
    pub fn is_process_fault(&self) -> bool {
        matches!(
            self,
            Action::Kill(_)
                | Action::PowerFail(_)
                | Action::Restart(_)
                | Action::Pause(_)
                | Action::Resume(_)
                | Action::Stop(_)
        )
    }

    pub fn nodes(&self) -> Vec<&NodeRef> {
        match self {
            Action::Kill(n)
            | Action::PowerFail(n)
            | Action::Restart(n)
            | Action::Pause(n)
            | Action::Resume(n)
            | Action::Stop(n)
            | Action::Isolate(n) => {
                vec![n]
            }
            Action::Partition(groups) => groups.iter().flatten().collect(),
            Action::PartitionOneWay(a, b) => a.iter().chain(b.iter()).collect(),
            Action::SlowLink(a, b, _) => vec![a, b],
            Action::Heal | Action::AbortTransaction { .. } => Vec::new(),
        }
    }
}

/// The byte offset of a 1-based (line, column) in `text`.
fn offset_of(text: &str, (line, col): (usize, usize)) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let rest = &text[start.min(text.len())..];
    start + rest.char_indices().nth(col.saturating_sub(1)).map_or(rest.len(), |(i, _)| i)
}

/// The field or config key whose value ends just before `at`: `duration_ms` in
/// `duration_ms: 1000.5`, `min.insync.replicas` in `"min.insync.replicas": 1.5`.
fn field_before(text: &str, at: usize) -> Option<String> {
    let before = &text[..at.min(text.len())];
    let colon = before.rfind(':')?;
    let name = before[..colon].trim_end();
    if let Some(quoted) = name.strip_suffix('"') {
        let open = quoted.rfind('"')?;
        return Some(quoted[open + 1..].to_string());
    }
    let start = name.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    let ident = &name[start..];
    (!ident.is_empty()).then(|| ident.to_string())
}

/// Turn RON's error into a sentence that says what was expected, in the scenario's words rather
/// than the parser's.
fn describe_ron_error(code: &ron::error::Error, text: &str, position: (usize, usize)) -> String {
    use ron::error::Error as E;
    let at = offset_of(text, position);
    // `duration_ms: 1000.5`: the number parsed as 1000, and the parser then wanted a comma.
    let decimal_point = text[at.min(text.len())..].starts_with('.')
        && text[..at.min(text.len())].ends_with(|c: char| c.is_ascii_digit());
    match code {
        _ if decimal_point => match field_before(text, at) {
            Some(field) => format!("`{field}`: expected a whole number (times, counts and ids have no decimal point)"),
            None => "expected a whole number (times, counts and ids have no decimal point)".to_string(),
        },
        E::Message(m) if m.contains("untagged enum ConfigValue") => {
            let key = field_before(text, at).map(|k| format!("`{k}`: ")).unwrap_or_default();
            format!("{key}a config value is true or false, a whole number, or a string such as \"all\" (Kafka takes no decimal numbers here)")
        }
        E::SuggestRawIdentifier(found) => {
            format!("`{found}` is not a field name: expected a name such as `title` or `duration_ms` before the `:`")
        }
        E::NoSuchStructField { expected, found, outer } => format!(
            "unknown field `{found}`{}; expected one of: {}",
            outer.as_ref().map(|o| format!(" in {o}")).unwrap_or_default(),
            expected.join(", ")
        ),
        E::MissingStructField { field, outer } => {
            format!("missing field `{field}`{}", outer.as_ref().map(|o| format!(" in {o}")).unwrap_or_default())
        }
        E::NoSuchEnumVariant { expected, found, outer } => format!(
            "unknown variant `{found}`{}; expected one of: {}",
            outer.as_ref().map(|o| format!(" of {o}")).unwrap_or_default(),
            expected.join(", ")
        ),
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}
