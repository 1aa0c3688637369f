//! Scenario files: what cluster to build, what to run on it, what to break, what to expect.
//!
//! Scenarios are RON files (see `scenarios/*.ron`). Parsing is strict: an unknown field or a
//! malformed value is an error that names the file, line and column and what was expected; a
//! well-formed but impossible scenario (an unknown broker, a replication factor above the broker
//! count, an action after the end of the run) is rejected by [`Scenario::validate`] before the
//! run, with a message naming the field.

use ksim_cluster::config::{BrokerConfig, ConfigError, Configurable, ConsumerConfig, ProducerConfig, TopicConfig};
use ksim_cluster::node::NodeId;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};
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
    /// Broker configs by Kafka's names (topic-level names set the broker-wide default).
    #[serde(default)]
    pub configs: Configs,
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
    #[serde(default)]
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
    #[serde(default)]
    pub configs: Configs,
    /// When the application starts.
    #[serde(default)]
    pub start_ms: u64,
}

/// The application a client node runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum App {
    /// Send `records` records to `topic`, one every `interval_ms`. Keys cycle through `keys`
    /// (none: keyless); values are `{value_prefix}-{n}`.
    Producer {
        topic: String,
        records: u64,
        #[serde(default = "default_interval")]
        interval_ms: u64,
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
        matches!(self, App::Producer { .. } | App::GroupByCount { .. })
    }

    pub fn uses_consumer(&self) -> bool {
        !matches!(self, App::Producer { .. })
    }

    pub fn group_member(&self) -> bool {
        matches!(self, App::GroupConsumer { .. } | App::GroupByCount { .. })
    }

    pub fn topics(&self) -> Vec<&String> {
        match self {
            App::Producer { topic, .. } => vec![topic],
            App::Consumer { topics, .. } | App::GroupConsumer { topics, .. } => topics.iter().collect(),
            App::GroupByCount { topics, output, .. } => topics.iter().chain(std::iter::once(output)).collect(),
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
    Controller,
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
    /// Cut the network between groups (nodes not named stay connected to everyone).
    Partition(Vec<Vec<NodeRef>>),
    /// Drop messages from the first group to the second only.
    PartitionOneWay(Vec<NodeRef>, Vec<NodeRef>),
    /// Cut one node off from every other node.
    Isolate(NodeRef),
    Heal,
    SlowLink(NodeRef, NodeRef, u64),
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
    /// The partition has no leader.
    Offline(String),
    IsrShrink(String),
    IsrExpand(String),
    /// A replica of the partition truncated its log.
    Truncation(String),
    Fenced(BrokerId),
    /// A produce response carried this error (Kafka's name: `"NOT_ENOUGH_REPLICAS"`).
    ProduceError(String),
    /// The producer gave up on a record.
    ProduceFailed,
    /// A record was consumed twice (or written twice).
    Duplicate,
    /// A write acknowledged to the producer is not in the log any more.
    AckedWriteLost,
    /// Retention moved the log start offset of the partition.
    LogStartMoved(String),
    /// A consumer's position was (re)set by `auto.offset.reset`.
    OffsetReset(String),
    /// A consumer asked for an offset the log no longer (or does not yet) hold.
    OffsetOutOfRange(String),
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
    /// A member's application did not poll within `max.poll.interval.ms`.
    PollIntervalExceeded(String),
    /// A record was processed twice by the group (at-least-once).
    ProcessedTwice,
    /// The group committed past records it never processed (at-most-once).
    CommittedUnprocessed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expectation {
    /// This must happen at least once (it is what the lesson is about).
    Sometimes(Happening),
    /// This must never happen.
    Never(Happening),
    /// At the end of the run, this must hold.
    Finally(Condition),
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
}

/// A scenario that failed to load: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line and column of a parse error; `None` for a validation error.
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

/// The settings of the run, resolved from a scenario's configs.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub broker: BrokerConfig,
    pub topics: Vec<(Topic, TopicConfig)>,
    pub producers: BTreeMap<String, ProducerConfig>,
    pub consumers: BTreeMap<String, ConsumerConfig>,
}

/// Apply a client's configs to the engines its application uses: each key goes to the engine
/// that knows it; a key neither knows is an error.
fn apply_client(
    producer: Option<&mut ProducerConfig>,
    consumer: Option<&mut ConsumerConfig>,
    configs: &Configs,
    field: &str,
) -> Result<(), String> {
    let (mut producer, mut consumer) = (producer, consumer);
    for (key, value) in configs {
        let value = value.to_string();
        let mut known = false;
        let mut failure = None;
        if let Some(p) = producer.as_deref_mut() {
            match p.set(key, &value) {
                Ok(()) => known = true,
                Err(e) if !e.message.starts_with("unknown config") => failure = Some(e),
                Err(_) => {}
            }
        }
        if let Some(c) = consumer.as_deref_mut() {
            match c.set(key, &value) {
                Ok(()) => known = true,
                Err(e) if !e.message.starts_with("unknown config") => failure = Some(e),
                Err(_) => {}
            }
        }
        if let Some(ConfigError { key, message }) = failure {
            return Err(format!("{field}: `{key}`: {message}"));
        }
        if !known {
            let mut keys: Vec<&str> = Vec::new();
            if producer.is_some() {
                keys.extend(ProducerConfig::KEYS);
            }
            if consumer.is_some() {
                keys.extend(ConsumerConfig::KEYS);
            }
            return Err(format!("{field}: `{key}`: unknown config; known here: {}", keys.join(", ")));
        }
    }
    Ok(())
}

fn apply<C: Configurable>(target: &mut C, configs: &Configs, field: &str) -> Result<(), String> {
    for (key, value) in configs {
        target
            .set(key, &value.to_string())
            .map_err(|ConfigError { key, message }| format!("{field}: `{key}`: {message}"))?;
    }
    Ok(())
}

impl Scenario {
    /// Parse RON text. `file` names the source in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str::<Scenario>(text)
            .map_err(|e| ScenarioError {
                file: file.to_string(),
                position: Some((e.position.line, e.position.col)),
                message: describe_ron_error(&e.code),
            })
    }

    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            position: None,
            message: format!("cannot read: {e}"),
        })?;
        let scenario = Scenario::parse(&file, &text)?;
        scenario.resolve().map_err(|message| ScenarioError { file, position: None, message })?;
        Ok(scenario)
    }

    /// Check the scenario can be run, and resolve its configs. Errors name the field.
    pub fn resolve(&self) -> Result<Resolved, String> {
        if self.cluster.brokers.is_empty() {
            return Err("cluster.brokers: a cluster needs at least one broker".into());
        }
        let mut seen = Vec::new();
        for id in &self.cluster.brokers {
            if *id < 0 {
                return Err(format!("cluster.brokers: broker id {id} is negative"));
            }
            if seen.contains(id) {
                return Err(format!("cluster.brokers: broker {id} is listed twice"));
            }
            seen.push(*id);
        }
        for id in self.cluster.racks.keys() {
            if !self.cluster.brokers.contains(id) {
                return Err(format!("cluster.racks: unknown broker {id}"));
            }
        }
        if self.duration_ms == 0 {
            return Err("duration_ms: must be greater than 0".into());
        }
        if self.network.latency_ms_min > self.network.latency_ms_max {
            return Err(format!(
                "network.latency_ms_min: {} is larger than latency_ms_max {}",
                self.network.latency_ms_min, self.network.latency_ms_max
            ));
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            return Err(format!("network.loss: {} is not a probability between 0.0 and 1.0", self.network.loss));
        }
        let mut broker = BrokerConfig::default();
        apply(&mut broker, &self.cluster.configs, "cluster.configs")?;

        let mut topics = Vec::new();
        for (i, topic) in self.topics.iter().enumerate() {
            let field = format!("topics[{i}] ({})", topic.name);
            if topic.name.is_empty() || topic.name.starts_with("__") {
                return Err(format!(
                    "{field}.name: must be non-empty and not start with `__` (reserved for internal topics)"
                ));
            }
            if self.topics[..i].iter().any(|t| t.name == topic.name) {
                return Err(format!("{field}.name: topic declared twice"));
            }
            if topic.partitions < 1 {
                return Err(format!("{field}.partitions: must be at least 1, found {}", topic.partitions));
            }
            if topic.replication_factor < 1 {
                return Err(format!("{field}.replication_factor: must be at least 1"));
            }
            if topic.replication_factor > self.cluster.brokers.len() {
                return Err(format!(
                    "{field}.replication_factor: {} is larger than the number of brokers ({})",
                    topic.replication_factor,
                    self.cluster.brokers.len()
                ));
            }
            if !topic.replicas.is_empty() {
                if topic.replicas.len() != topic.partitions as usize {
                    return Err(format!(
                        "{field}.replicas: lists {} partition(s) but the topic has {}",
                        topic.replicas.len(),
                        topic.partitions
                    ));
                }
                for (p, replicas) in topic.replicas.iter().enumerate() {
                    if replicas.len() != topic.replication_factor {
                        return Err(format!(
                            "{field}.replicas[{p}]: {} replica(s) but replication_factor is {}",
                            replicas.len(),
                            topic.replication_factor
                        ));
                    }
                    for (j, id) in replicas.iter().enumerate() {
                        if !self.cluster.brokers.contains(id) {
                            return Err(format!("{field}.replicas[{p}]: unknown broker {id}"));
                        }
                        if replicas[..j].contains(id) {
                            return Err(format!("{field}.replicas[{p}]: broker {id} listed twice"));
                        }
                    }
                }
            }
            let mut config = broker.topic_defaults.clone();
            apply(&mut config, &topic.configs, &format!("{field}.configs"))?;
            if config.min_insync_replicas > topic.replication_factor {
                // Kafka accepts this, and every acks=all write then fails: allowed, as a lesson.
            }
            topics.push((topic.clone(), config));
        }

        let mut producers = BTreeMap::new();
        let mut consumers = BTreeMap::new();
        for (i, client) in self.clients.iter().enumerate() {
            let field = format!("clients[{i}] ({})", client.name);
            if client.name.is_empty() {
                return Err(format!("clients[{i}].name: must not be empty"));
            }
            if self.clients[..i].iter().any(|c| c.name == client.name) {
                return Err(format!("{field}.name: two clients are called `{}`", client.name));
            }
            for topic in client.app.topics() {
                if !self.topics.iter().any(|t| &t.name == topic) {
                    let which = if matches!(client.app, App::Producer { .. }) { "topic" } else { "topics" };
                    return Err(format!("{field}.app.{which}: unknown topic `{topic}`"));
                }
            }
            match &client.app {
                App::Producer { interval_ms, .. } if *interval_ms == 0 => {
                    return Err(format!("{field}.app.interval_ms: must be at least 1"));
                }
                App::Consumer { topics, poll_interval_ms }
                | App::GroupConsumer { topics, poll_interval_ms, .. }
                | App::GroupByCount { topics, poll_interval_ms, .. } => {
                    if topics.is_empty() {
                        return Err(format!("{field}.app.topics: name at least one topic"));
                    }
                    if *poll_interval_ms == 0 {
                        return Err(format!("{field}.app.poll_interval_ms: must be at least 1"));
                    }
                }
                App::Producer { .. } => {}
            }
            let mut producer = client.app.uses_producer().then(ProducerConfig::default);
            let mut consumer = client.app.uses_consumer().then(ConsumerConfig::default);
            if let (Some(c), App::GroupConsumer { commit, .. }) = (consumer.as_mut(), &client.app) {
                // The commit mode decides auto-commit; a config can still override it.
                c.enable_auto_commit = *commit == CommitMode::Auto;
            }
            if let (Some(c), App::GroupByCount { .. }) = (consumer.as_mut(), &client.app) {
                c.enable_auto_commit = false;
            }
            apply_client(producer.as_mut(), consumer.as_mut(), &client.configs, &format!("{field}.configs"))?;
            if let Some(p) = &producer {
                p.validate().map_err(|e| format!("{field}.configs: `{}`: {}", e.key, e.message))?;
                producers.insert(client.name.clone(), p.clone());
            }
            if let Some(c) = consumer {
                if client.app.group_member() && c.group_id.is_none() {
                    return Err(format!("{field}.configs: `group.id`: a group consumer needs a group.id"));
                }
                consumers.insert(client.name.clone(), c);
            }
            if client.start_ms >= self.duration_ms {
                return Err(format!(
                    "{field}.start_ms: {} is not before the end of the run ({})",
                    client.start_ms, self.duration_ms
                ));
            }
        }

        for (i, step) in self.timeline.iter().enumerate() {
            let field = format!("timeline[{i}]");
            if step.at_ms >= self.duration_ms {
                return Err(format!(
                    "{field}.at_ms: {} is not before the end of the run ({})",
                    step.at_ms, self.duration_ms
                ));
            }
            for node in step.action.nodes() {
                self.check_node(node).map_err(|e| format!("{field}.action: {e}"))?;
            }
        }
        for (i, n) in self.narration.iter().enumerate() {
            match (&n.at_ms, &n.on) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!("narration[{i}]: give exactly one of `at_ms` and `on`"));
                }
                (Some(at), None) if *at > self.duration_ms => {
                    return Err(format!(
                        "narration[{i}].at_ms: {at} is after the end of the run ({})",
                        self.duration_ms
                    ));
                }
                (None, Some(h)) => self.check_happening(h).map_err(|e| format!("narration[{i}].on: {e}"))?,
                _ => {}
            }
            match (n.after_ms, &n.on) {
                (Some(_), None) => return Err(format!("narration[{i}].after_ms: only goes with `on`")),
                (Some(after), Some(_)) if after > self.duration_ms => {
                    return Err(format!(
                        "narration[{i}].after_ms: {after} is after the end of the run ({})",
                        self.duration_ms
                    ));
                }
                _ => {}
            }
        }
        if let Some(within) = self.converge_within_ms {
            let last = self.timeline.iter().map(|s| s.at_ms).max().unwrap_or(0);
            if last + within >= self.duration_ms {
                return Err(format!(
                    "converge_within_ms: the last timeline step ({last} ms) plus {within} ms is not before the end of the run ({} ms)",
                    self.duration_ms
                ));
            }
        }
        if let Some(f) = &self.fuzz {
            if f.heal_by_ms > self.duration_ms || f.from_ms >= f.heal_by_ms {
                return Err(format!(
                    "fuzz.heal_by_ms: {} must be after fuzz.from_ms ({}) and not after the end of the run ({})",
                    f.heal_by_ms, f.from_ms, self.duration_ms
                ));
            }
        }
        for (i, e) in self.expect.iter().enumerate() {
            let field = format!("expect[{i}]");
            match e {
                Expectation::Sometimes(h) | Expectation::Never(h) => {
                    self.check_happening(h).map_err(|m| format!("{field}: {m}"))?
                }
                Expectation::Finally(c) => self.check_condition(c).map_err(|m| format!("{field}: {m}"))?,
            }
        }
        Ok(Resolved { broker, topics, producers, consumers })
    }

    fn check_node(&self, node: &NodeRef) -> Result<(), String> {
        match node {
            NodeRef::Broker(id) if !self.cluster.brokers.contains(id) => Err(format!(
                "unknown broker {id} (the cluster has {})",
                self.cluster.brokers.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
            )),
            NodeRef::Client(name) if !self.clients.iter().any(|c| &c.name == name) => {
                Err(format!("unknown client `{name}`"))
            }
            _ => Ok(()),
        }
    }

    fn check_partition(&self, text: &str) -> Result<(), String> {
        let tp = parse_partition(text).ok_or_else(|| format!("`{text}` is not a partition (write it as topic-N)"))?;
        match self.topics.iter().find(|t| t.name == tp.topic) {
            None => Err(format!("unknown topic `{}` in `{text}`", tp.topic)),
            Some(t) if tp.partition < 0 || tp.partition >= t.partitions => {
                Err(format!("`{text}`: topic {} has partitions 0..{}", t.name, t.partitions - 1))
            }
            Some(_) => Ok(()),
        }
    }

    fn check_client(&self, name: &str) -> Result<(), String> {
        if self.clients.iter().any(|c| c.name == name) {
            Ok(())
        } else {
            Err(format!("unknown client `{name}`"))
        }
    }

    fn check_group(&self, group: &str) -> Result<(), String> {
        let known = self.clients.iter().any(|c| c.configs.get("group.id").is_some_and(|v| v.to_string() == group));
        if known {
            Ok(())
        } else {
            Err(format!("unknown consumer group `{group}` (no client has group.id={group})"))
        }
    }

    fn check_happening(&self, h: &Happening) -> Result<(), String> {
        match h {
            Happening::Election(p)
            | Happening::UncleanElection(p)
            | Happening::PreferredElection(p)
            | Happening::Offline(p)
            | Happening::IsrShrink(p)
            | Happening::IsrExpand(p)
            | Happening::Truncation(p)
            | Happening::LogStartMoved(p)
            | Happening::OffsetReset(p)
            | Happening::OffsetOutOfRange(p) => self.check_partition(p),
            Happening::Fenced(id) => self.check_node(&NodeRef::Broker(*id)),
            Happening::ProduceError(name) => {
                if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !name.is_empty() {
                    Ok(())
                } else {
                    Err(format!("`{name}` is not a Kafka error name (like NOT_ENOUGH_REPLICAS)"))
                }
            }
            Happening::Rebalance(g)
            | Happening::RevokedAll(g)
            | Happening::Revoked(g)
            | Happening::MemberRemoved(g)
            | Happening::StaticMemberReturned(g)
            | Happening::GroupLoaded(g)
            | Happening::CommitFailed(g)
            | Happening::PollIntervalExceeded(g) => self.check_group(g),
            Happening::ProduceFailed
            | Happening::Duplicate
            | Happening::AckedWriteLost
            | Happening::ProcessedTwice
            | Happening::CommittedUnprocessed => Ok(()),
        }
    }

    fn check_condition(&self, c: &Condition) -> Result<(), String> {
        match c {
            Condition::Leader(p, id) => {
                self.check_partition(p)?;
                self.check_node(&NodeRef::Broker(*id))
            }
            Condition::NoLeader(p) => self.check_partition(p),
            Condition::Isr(p, ids) => {
                self.check_partition(p)?;
                ids.iter().try_for_each(|id| self.check_node(&NodeRef::Broker(*id)))
            }
            Condition::Acked(client, _) | Condition::Consumed(client, _) => self.check_client(client),
            Condition::AllAckedWritesPresent => Ok(()),
            Condition::GroupState(g, state) => {
                self.check_group(g)?;
                const STATES: [&str; 5] = ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"];
                if STATES.contains(&state.as_str()) {
                    Ok(())
                } else {
                    Err(format!("`{state}` is not a group state; expected one of {}", STATES.join(", ")))
                }
            }
            Condition::Processed(client, _) | Condition::Owns(client, _) => self.check_client(client),
        }
    }

    /// The simulator's id for a node the scenario names.
    pub fn node_id(&self, node: &NodeRef) -> NodeId {
        match node {
            NodeRef::Broker(id) => NodeId::Broker(*id),
            NodeRef::Controller => NodeId::Controller(CONTROLLER_ID),
            NodeRef::Client(name) => NodeId::Client(
                self.clients.iter().position(|c| &c.name == name).expect("validated: the client exists") as u32,
            ),
        }
    }
}

/// The `node.id` of ksim's controller (KRaft controllers conventionally get ids apart from brokers).
pub const CONTROLLER_ID: i32 = 3000;

impl Action {
    pub fn nodes(&self) -> Vec<&NodeRef> {
        match self {
            Action::Kill(n)
            | Action::PowerFail(n)
            | Action::Restart(n)
            | Action::Pause(n)
            | Action::Resume(n)
            | Action::Isolate(n) => {
                vec![n]
            }
            Action::Partition(groups) => groups.iter().flatten().collect(),
            Action::PartitionOneWay(a, b) => a.iter().chain(b.iter()).collect(),
            Action::SlowLink(a, b, _) => vec![a, b],
            Action::Heal => Vec::new(),
        }
    }
}

/// Turn RON's error into a sentence that says what was expected.
fn describe_ron_error(code: &ron::error::Error) -> String {
    use ron::error::Error as E;
    match code {
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
