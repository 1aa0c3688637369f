//! From a parsed scenario to a runnable one: every section checked against the others (brokers
//! named exist, topics fit the cluster, actions happen before the end), and every config applied
//! to the engine that knows it, by Kafka's own name. One function per section; each error names
//! the field it is about, and a config error also the path to the key, so that a file's error
//! can give its line and column ([`super::locate`]).
//!
//! What Kafka refuses or adjusts in a config is decided by one validator,
//! `ksim_cluster::config::validate`; this file only applies it to each section.

use super::locate::{Path, Step};
use super::*;
use ksim_cluster::config::validate::{self, Adjustment, ConsumerUse};
use ksim_cluster::config::{BrokerConfig, ConfigError, Configurable, ConsumerConfig, ProducerConfig, TopicConfig};
use ksim_cluster::controller::QuorumSetup;
use ksim_cluster::raft::state::QuorumConfig;
use ksim_cluster::version::KafkaVersion;
use std::collections::BTreeSet;

/// Internal topics a scenario may name in a happening although it does not declare them.
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// Each client's config for one engine, by client name.
type ClientConfigs<C> = BTreeMap<String, C>;

/// The clients' producer and consumer configs, and what their engines adjusted.
type ResolvedClients =
    (ClientConfigs<ProducerConfig>, ClientConfigs<ConsumerConfig>, BTreeMap<String, Vec<Adjustment>>);

/// The settings of the run, resolved from a scenario's configs.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub broker: BrokerConfig,
    pub topics: Vec<(Topic, TopicConfig)>,
    pub producers: BTreeMap<String, ProducerConfig>,
    pub consumers: BTreeMap<String, ConsumerConfig>,
    /// What each client's engines changed on their own (a raised `delivery.timeout.ms`, idempotence
    /// turned off), by client name; the trace notes them at the client's start.
    pub adjustments: BTreeMap<String, Vec<Adjustment>>,
    /// The controller quorum, if the scenario has one.
    pub quorum: Option<QuorumSetup>,
    /// Kafka Connect, if the scenario runs workers.
    pub connect: Option<super::connect::ConnectSetup>,
    /// Clients on librdkafka (Confluent.Kafka), which does not implement KIP-890's client side
    /// (confluentinc/librdkafka#5423): their producers run the classic transaction protocol
    /// even on a cluster at `transaction.version=2`.
    pub librdkafka_clients: BTreeSet<String>,
}

/// A resolve error, and the path of the field it is about when that is a config key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub message: String,
    pub path: Option<Path>,
}

impl From<String> for Located {
    /// A message that starts with the field it is about (`timeline[3].action: ...`) is located
    /// at that field.
    fn from(message: String) -> Self {
        let path = message.split_once(": ").and_then(|(head, _)| field_path(head));
        Located { message, path }
    }
}

/// `timeline[3].action` as a path; `None` for text that is not a field path. A name in
/// parentheses (`topics[0] (orders).name`) is for people and skipped.
fn field_path(text: &str) -> Option<Path> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 && c != ' ' => plain.push(c),
            _ => {}
        }
    }
    let mut path = Path::new();
    for part in plain.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return None;
        }
        path.push(Step::Field(name.to_string()));
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']')?;
            path.push(Step::Index(index.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
            if !after.is_empty() && !after.starts_with('[') {
                return None;
            }
        }
    }
    Some(path)
}

/// Where a section's configs are in the file.
fn configs_path(section: &[Step], key: &str) -> Path {
    let mut path = section.to_vec();
    path.push(Step::Field("configs".into()));
    path.push(Step::Key(key.into()));
    path
}

/// A config error in the section at `section`, whose field is named `field` in the message.
fn config_error(section: &[Step], field: &str, ConfigError { key, message }: ConfigError) -> Located {
    // An unknown key: the closest known one, if it looks like a typo.
    let message = match message.strip_prefix("unknown config; known here: ") {
        Some(known) => {
            let known: Vec<String> = known.split(", ").filter(|k| !k.starts_with('(')).map(str::to_string).collect();
            let mut all = known.clone();
            if message.contains("every topic-level config") {
                all.extend(TopicConfig::KEYS.iter().map(|k| k.to_string()));
            }
            match super::overrides::did_you_mean(&key, &all) {
                Some(s) => format!("unknown config; did you mean `{s}`? (known here: {})", known.join(", ")),
                None => message,
            }
        }
        None => message,
    };
    Located { message: format!("{field}: `{key}`: {message}"), path: Some(configs_path(section, &key)) }
}

/// The keys a section's configs set (Kafka's `originals()`).
fn originals(configs: &Configs) -> Vec<&str> {
    configs.keys().map(String::as_str).collect()
}

/// Apply a client's configs to the engines its application uses: each key goes to the engine
/// that knows it; a key neither knows is an error.
fn apply_client(
    producer: Option<&mut ProducerConfig>,
    consumer: Option<&mut ConsumerConfig>,
    configs: &Configs,
    section: &[Step],
    field: &str,
    version: KafkaVersion,
) -> Result<(), Located> {
    let (mut producer, mut consumer) = (producer, consumer);
    for (key, value) in configs {
        let value = value.to_string();
        let mut known = false;
        let mut failure = None;
        if let Some(p) = producer.as_deref_mut() {
            match p.set_checked(key, &value, version) {
                Ok(()) => known = true,
                Err(e) if !e.message.starts_with("unknown config") => failure = Some(e),
                Err(_) => {}
            }
        }
        if let Some(c) = consumer.as_deref_mut() {
            match c.set_checked(key, &value, version) {
                Ok(()) => known = true,
                Err(e) if !e.message.starts_with("unknown config") => failure = Some(e),
                Err(_) => {}
            }
        }
        if let Some(error) = failure {
            return Err(config_error(section, field, error));
        }
        if !known {
            let mut keys: Vec<&str> = Vec::new();
            if producer.is_some() {
                keys.extend(ProducerConfig::KEYS);
            }
            if consumer.is_some() {
                keys.extend(ConsumerConfig::KEYS);
            }
            let message = format!("unknown config; known here: {}", keys.join(", "));
            return Err(config_error(section, field, ConfigError { key: key.clone(), message }));
        }
    }
    Ok(())
}

fn apply<C: Configurable>(
    target: &mut C,
    configs: &Configs,
    section: &[Step],
    field: &str,
    version: KafkaVersion,
) -> Result<(), Located> {
    for (key, value) in configs {
        target.set_checked(key, &value.to_string(), version).map_err(|e| config_error(section, field, e))?;
    }
    Ok(())
}

/// What Kafka Streams sets on its clients whatever the application says
/// (`StreamsConfig.getMainConsumerConfigs`, `getProducerConfigs`): the group is the
/// `application.id`, offsets are committed by Streams (never auto-committed), and under
/// exactly_once_v2 the consumer reads committed data only and the thread's producer is
/// transactional, its `transactional.id` `<application.id>-<process id>-<thread index>` (KIP-447;
/// the process id is a UUID in Kafka, the client's name here).
fn streams_overrides(
    setup: &super::StreamsSetup,
    client: &str,
    producer: Option<&mut ProducerConfig>,
    consumer: Option<&mut ConsumerConfig>,
) {
    let Ok(topology) = setup.topology() else { return };
    let eos = setup.guarantee() == Ok(ksim_cluster::streams::ProcessingGuarantee::ExactlyOnceV2);
    if let Some(c) = consumer {
        c.group_id = Some(topology.application_id.clone());
        c.enable_auto_commit = false;
        if eos {
            c.isolation_level = ksim_cluster::protocol::IsolationLevel::ReadCommitted;
        }
    }
    if let (Some(p), true) = (producer, eos) {
        p.transactional_id = Some(format!("{}-{client}-1", topology.application_id));
        // `StreamsConfig.PRODUCER_EOS_OVERRIDES`: a dead thread's open transaction is aborted
        // after 10 s rather than the producer's default minute.
        p.transaction_timeout_ms = 10_000;
    }
}

/// A network fault must cut something: two non-empty sides with no node on both, and a slow
/// link between two different nodes.
fn check_network_action(action: &Action) -> Result<(), String> {
    match action {
        Action::Partition(groups) => {
            if groups.len() < 2 {
                return Err("Partition needs at least two groups of nodes to cut apart (Isolate cuts one node off from all others)".into());
            }
            if let Some(i) = groups.iter().position(Vec::is_empty) {
                return Err(format!("Partition: group {i} is empty"));
            }
            for (i, a) in groups.iter().enumerate() {
                for b in &groups[i + 1..] {
                    if let Some(n) = a.iter().find(|n| b.contains(n)) {
                        return Err(format!("Partition: {n:?} is in two groups; a node is on one side of a cut"));
                    }
                }
            }
            Ok(())
        }
        Action::PartitionOneWay(from, to) => {
            if from.is_empty() || to.is_empty() {
                return Err("PartitionOneWay: both sides need at least one node".into());
            }
            if let Some(n) = from.iter().find(|n| to.contains(n)) {
                return Err(format!("PartitionOneWay: {n:?} is on both sides; a node cannot cut itself off"));
            }
            Ok(())
        }
        Action::SlowLink(a, b, _) if a == b => {
            Err(format!("SlowLink from {a:?} to itself: a slow link joins two different nodes"))
        }
        _ => Ok(()),
    }
}

impl Scenario {
    /// Check the scenario can be run, and resolve its configs. Errors name the field.
    pub fn resolve(&self) -> Result<Resolved, String> {
        self.resolve_located().map_err(|e| e.message)
    }

    /// [`Scenario::resolve`], with the path of the config key an error is about.
    pub fn resolve_located(&self) -> Result<Resolved, Located> {
        self.check_limits()?;
        let broker = self.resolve_cluster()?;
        let mut topics = self.resolve_topics(&broker)?;
        let connect = self.resolve_connect()?;
        if let Some(c) = connect.as_ref().filter(|c| c.mode == super::connect::ConnectMode::Distributed) {
            for (topic, config) in super::connect::storage_topics(&c.worker, &broker.topic_defaults) {
                if topics.iter().any(|(t, _)| t.name == topic.name) {
                    return Err(format!(
                        "topics: `{}` is a Connect storage topic; the workers create it (rename it in connect.worker_configs)",
                        topic.name
                    )
                    .into());
                }
                topics.push((topic, config));
            }
        }
        let (producers, consumers, adjustments) = self.resolve_clients(broker.kafka_version, connect.as_ref())?;
        self.resolve_internal_topics(&broker, &mut topics)?;
        self.check_timeline()?;
        self.check_narration()?;
        self.check_convergence()?;
        self.check_fuzz()?;
        self.check_expectations()?;
        let quorum = self.resolve_quorum(&broker)?;
        let librdkafka_clients =
            self.clients.iter().filter(|c| c.library == Library::Librdkafka).map(|c| c.name.clone()).collect();
        Ok(Resolved { broker, topics, producers, consumers, adjustments, quorum, connect, librdkafka_clients })
    }

    /// `cluster`, `duration_ms`, `network`: the brokers, and the broker configs every broker runs with.
    fn resolve_cluster(&self) -> Result<BrokerConfig, Located> {
        if self.cluster.brokers.is_empty() {
            return Err(String::from("cluster.brokers: a cluster needs at least one broker").into());
        }
        let mut seen = Vec::new();
        for id in &self.cluster.brokers {
            if *id < 0 {
                return Err(format!("cluster.brokers: broker id {id} is negative").into());
            }
            if *id == CONTROLLER_ID {
                return Err(format!(
                    "cluster.brokers: {id} is the dedicated controller's node.id; a broker needs an id of its own"
                )
                .into());
            }
            if seen.contains(id) {
                return Err(format!("cluster.brokers: broker {id} is listed twice").into());
            }
            seen.push(*id);
        }
        for id in self.cluster.racks.keys() {
            if !self.cluster.brokers.contains(id) {
                return Err(format!("cluster.racks: unknown broker {id}").into());
            }
        }
        if self.duration_ms == 0 {
            return Err(String::from("duration_ms: must be greater than 0").into());
        }
        if self.network.latency_ms_min > self.network.latency_ms_max {
            return Err(format!(
                "network.latency_ms_min: {} is larger than latency_ms_max {}",
                self.network.latency_ms_min, self.network.latency_ms_max
            )
            .into());
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            return Err(format!("network.loss: {} is not a probability between 0.0 and 1.0", self.network.loss).into());
        }
        let version = match &self.cluster.kafka_version {
            Some(v) => v.parse::<KafkaVersion>().map_err(|e| format!("cluster.kafka_version: {e}"))?,
            None => KafkaVersion::CURRENT,
        };
        let section = [Step::Field("cluster".into())];
        let mut broker = BrokerConfig::for_version(version);
        apply(&mut broker, &self.cluster.configs, &section, "cluster.configs", version)?;
        validate::broker(&broker).map_err(|e| config_error(&section, "cluster.configs", e))?;
        Ok(broker)
    }

    /// `cluster.quorum`: distinct, non-negative controller ids. An id that is also a broker's is one
    /// node in combined mode (`Scenario::same_host`). Pre-vote
    /// (KIP-996) follows the Kafka version: 4.0 and later run it.
    fn resolve_quorum(&self, broker: &BrokerConfig) -> Result<Option<QuorumSetup>, Located> {
        let Some(quorum) = &self.cluster.quorum else { return Ok(None) };
        if quorum.controllers.is_empty() {
            return Err(String::from("cluster.quorum.controllers: a quorum needs at least one controller").into());
        }
        let mut voters = BTreeSet::new();
        for id in &quorum.controllers {
            if *id < 0 {
                return Err(format!("cluster.quorum.controllers: controller id {id} is negative").into());
            }
            if !voters.insert(*id) {
                return Err(format!("cluster.quorum.controllers: controller {id} is listed twice").into());
            }
        }
        let config = QuorumConfig { pre_vote: broker.kafka_version.kraft_pre_vote(), ..QuorumConfig::default() };
        Ok(Some(QuorumSetup { voters, config }))
    }

    /// `topics`: each fits the cluster; its configs start from the broker's topic defaults.
    fn resolve_topics(&self, broker: &BrokerConfig) -> Result<Vec<(Topic, TopicConfig)>, Located> {
        let mut topics = Vec::new();
        for (i, topic) in self.topics.iter().enumerate() {
            let field = format!("topics[{i}] ({})", topic.name);
            if topic.name.is_empty() || topic.name.starts_with("__") {
                return Err(format!(
                    "{field}.name: must be non-empty and not start with `__` (reserved for internal topics)"
                )
                .into());
            }
            // Kafka's `Topic.validate` (clients/.../internals/Topic.java).
            if topic.name == "." || topic.name == ".." {
                return Err(format!("{field}.name: `{}` is not a legal topic name", topic.name).into());
            }
            if topic.name.len() > 249 {
                return Err(format!(
                    "{field}.name: {} characters; Kafka allows at most 249 in a topic name",
                    topic.name.len()
                )
                .into());
            }
            if let Some(c) = topic.name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
                return Err(format!(
                    "{field}.name: {c:?} is not allowed in a topic name (Kafka allows ASCII letters, digits, `.`, `_` and `-`)"
                )
                .into());
            }
            if self.topics[..i].iter().any(|t| t.name == topic.name) {
                return Err(format!("{field}.name: topic declared twice").into());
            }
            if topic.partitions < 1 {
                return Err(format!("{field}.partitions: must be at least 1, found {}", topic.partitions).into());
            }
            if topic.replication_factor < 1 {
                return Err(format!("{field}.replication_factor: must be at least 1").into());
            }
            if topic.replication_factor > self.cluster.brokers.len() {
                return Err(format!(
                    "{field}.replication_factor: {} is larger than the number of brokers ({})",
                    topic.replication_factor,
                    self.cluster.brokers.len()
                )
                .into());
            }
            if !topic.replicas.is_empty() {
                if topic.replicas.len() != topic.partitions as usize {
                    return Err(format!(
                        "{field}.replicas: lists {} partition(s) but the topic has {}",
                        topic.replicas.len(),
                        topic.partitions
                    )
                    .into());
                }
                for (p, replicas) in topic.replicas.iter().enumerate() {
                    if replicas.len() != topic.replication_factor {
                        return Err(format!(
                            "{field}.replicas[{p}]: {} replica(s) but replication_factor is {}",
                            replicas.len(),
                            topic.replication_factor
                        )
                        .into());
                    }
                    for (j, id) in replicas.iter().enumerate() {
                        if !self.cluster.brokers.contains(id) {
                            return Err(format!("{field}.replicas[{p}]: unknown broker {id}").into());
                        }
                        if replicas[..j].contains(id) {
                            return Err(format!("{field}.replicas[{p}]: broker {id} listed twice").into());
                        }
                    }
                }
            }
            let mut config = broker.topic_defaults.clone();
            let section = [Step::Field("topics".into()), Step::Index(i)];
            apply(&mut config, &topic.configs, &section, &format!("{field}.configs"), broker.kafka_version)?;
            // `min.insync.replicas` above the replication factor is accepted, as in Kafka. Since
            // 3.7 the leader caps it at the replication factor (`Partition.effectiveMinIsr`), so
            // acks=all writes succeed once every replica is in sync; before 3.7 every acks=all
            // write fails with NOT_ENOUGH_REPLICAS.
            topics.push((topic.clone(), config));
        }
        Ok(topics)
    }

    /// `clients`: each application's topics exist; its configs go to the engines it uses, and
    /// the validator checks each engine's settings together (as the Java client's constructor).
    fn resolve_clients(
        &self,
        version: KafkaVersion,
        connect: Option<&super::connect::ConnectSetup>,
    ) -> Result<ResolvedClients, Located> {
        let mut producers = BTreeMap::new();
        let mut consumers = BTreeMap::new();
        let mut adjustments = BTreeMap::new();
        for (i, client) in self.clients.iter().enumerate() {
            let field = format!("clients[{i}] ({})", client.name);
            if client.name.is_empty() {
                return Err(format!("clients[{i}].name: must not be empty").into());
            }
            if self.clients[..i].iter().any(|c| c.name == client.name) {
                return Err(format!("{field}.name: two clients are called `{}`", client.name).into());
            }
            for topic in client.app.topics() {
                if !self.topics.iter().any(|t| &t.name == topic) {
                    let which = if matches!(
                        client.app,
                        App::Producer { .. } | App::JsonProducer { .. } | App::TransactionalProducer { .. }
                    ) {
                        "topic"
                    } else {
                        "topics"
                    };
                    return Err(format!("{field}.app.{which}: unknown topic `{topic}`").into());
                }
            }
            match &client.app {
                App::Producer { interval_ms, .. } if *interval_ms == 0 => {
                    return Err(format!("{field}.app.interval_ms: must be at least 1").into());
                }
                App::TransactionalProducer { interval_ms, transactions, records_per_transaction, .. } => {
                    if *interval_ms == 0 {
                        return Err(format!("{field}.app.interval_ms: must be at least 1").into());
                    }
                    if *transactions == 0 {
                        return Err(format!("{field}.app.transactions: must be at least 1").into());
                    }
                    if *records_per_transaction == 0 {
                        return Err(format!("{field}.app.records_per_transaction: must be at least 1").into());
                    }
                }
                App::Consumer { topics, poll_interval_ms }
                | App::GroupConsumer { topics, poll_interval_ms, .. }
                | App::GroupByCount { topics, poll_interval_ms, .. }
                | App::ConsumeTransformProduce { topics, poll_interval_ms, .. } => {
                    if topics.is_empty() {
                        return Err(format!("{field}.app.topics: name at least one topic").into());
                    }
                    if *poll_interval_ms == 0 {
                        return Err(format!("{field}.app.poll_interval_ms: must be at least 1").into());
                    }
                }
                App::Producer { .. } | App::ConnectWorker | App::Admin => {}
                App::JsonProducer { interval_ms, records, .. } => {
                    if *interval_ms == 0 {
                        return Err(format!("{field}.app.interval_ms: must be at least 1").into());
                    }
                    if records.is_empty() {
                        return Err(format!("{field}.app.records: list at least one record").into());
                    }
                }
                App::KafkaStreams { .. } | App::KsqlServer { .. } => self.check_streams_app(&field, &client.app)?,
            }
            let mut producer = client.app.uses_producer().then(ProducerConfig::default);
            let mut consumer = client.app.uses_consumer().then(ConsumerConfig::default);
            if let (Some(c), App::GroupConsumer { commit, .. }) = (consumer.as_mut(), &client.app) {
                // The commit mode decides auto-commit; a config can still override it.
                c.enable_auto_commit = *commit == CommitMode::Auto;
            }
            if let (Some(c), App::GroupByCount { .. } | App::ConsumeTransformProduce { .. }) =
                (consumer.as_mut(), &client.app)
            {
                c.enable_auto_commit = false;
            }
            if let (Some(c), Some(_)) = (consumer.as_mut(), client.app.streams()) {
                // Streams' consumer defaults (`StreamsConfig.CONSUMER_DEFAULT_OVERRIDES`): read a
                // new application's input from the beginning.
                c.auto_offset_reset = ksim_cluster::config::OffsetReset::Earliest;
            }
            // A worker's sink consumer: group `connect-<connector>`, no auto-commit (the task
            // commits on the flush interval), from the earliest offset (`Worker.baseConsumerConfigs`).
            // An exactly-once source task's producer has the task's transactional id (KIP-618).
            // (This is the template each sink task's consumer starts from; the task sets its own
            // connector's group, so the first sink connector's group here is only a default.)
            let sink_group = connect.and_then(|c| c.sink_groups().next());
            if let (Some(c), App::ConnectWorker) = (consumer.as_mut(), &client.app) {
                c.group_id = sink_group.clone();
                c.enable_auto_commit = false;
                c.auto_offset_reset = ksim_cluster::config::OffsetReset::Earliest;
            }
            if let (Some(p), App::ConnectWorker, Some(eos)) =
                (producer.as_mut(), &client.app, connect.and_then(|c| c.exactly_once_source().map(|s| (c, s))))
            {
                p.transactional_id = Some(eos.0.transactional_id(&eos.1.name, 0));
            }
            if let (Some(c), App::ConsumeTransformProduce { processing: Processing::ExactlyOnce, .. }) =
                (consumer.as_mut(), &client.app)
            {
                // An exactly-once pipeline reads only committed input (Kafka Streams sets this
                // for its consumers under exactly_once_v2, StreamsConfig.CONSUMER_EOS_OVERRIDES).
                c.isolation_level = ksim_cluster::protocol::IsolationLevel::ReadCommitted;
            }
            // The library's defaults, before the scenario's own settings.
            if let (Some(c), Library::Librdkafka) = (consumer.as_mut(), client.library) {
                c.isolation_level = ksim_cluster::protocol::IsolationLevel::ReadCommitted;
            }
            let section = [Step::Field("clients".into()), Step::Index(i)];
            let configs_field = format!("{field}.configs");
            apply_client(producer.as_mut(), consumer.as_mut(), &client.configs, &section, &configs_field, version)?;
            if let Some(setup) = client.app.streams() {
                streams_overrides(&setup, &client.name, producer.as_mut(), consumer.as_mut());
            }
            let originals = originals(&client.configs);
            if let Some(mut p) = producer {
                let adjusted = validate::producer(&mut p, &originals, version)
                    .map_err(|e| config_error(&section, &configs_field, e))?;
                let exactly_once =
                    matches!(client.app, App::ConsumeTransformProduce { processing: Processing::ExactlyOnce, .. });
                if exactly_once && p.transactional_id.is_none() {
                    return Err(format!(
                        "{configs_field}: an ExactlyOnce ConsumeTransformProduce needs a transactional.id (set it in configs)"
                    )
                    .into());
                }
                if matches!(client.app, App::ConsumeTransformProduce { processing: Processing::AtLeastOnce, .. })
                    && p.transactional_id.is_some()
                {
                    return Err(format!(
                        "{configs_field}: an AtLeastOnce ConsumeTransformProduce commits with commitSync(), not in a \
                         transaction; remove transactional.id or use processing: ExactlyOnce"
                    )
                    .into());
                }
                if matches!(client.app, App::TransactionalProducer { .. }) && p.transactional_id.is_none() {
                    return Err(format!(
                        "{configs_field}: a TransactionalProducer needs a transactional.id (set it in configs)"
                    )
                    .into());
                }
                if !adjusted.is_empty() {
                    adjustments.insert(client.name.clone(), adjusted);
                }
                producers.insert(client.name.clone(), p);
            }
            if let Some(c) = consumer {
                if client.app.group_member() && c.group_id.is_none() {
                    let error =
                        ConfigError { key: "group.id".into(), message: "a group consumer needs a group.id".into() };
                    return Err(config_error(&section, &configs_field, error));
                }
                let subscribes =
                    client.app.group_member() || (matches!(client.app, App::ConnectWorker) && c.group_id.is_some());
                let used_as = if subscribes { ConsumerUse::Subscribe } else { ConsumerUse::Assign };
                validate::consumer(&c, &originals, used_as).map_err(|e| config_error(&section, &configs_field, e))?;
                consumers.insert(client.name.clone(), c);
            }
        }
        Ok((producers, consumers, adjustments))
    }

    /// A Streams runtime app: its topology compiles, its guarantee is one Kafka 4 knows, and the
    /// topics it reads and writes exist (Kafka Streams creates only its internal topics).
    fn check_streams_app(&self, field: &str, app: &App) -> Result<(), Located> {
        let setup = app.streams().expect("a Streams runtime app");
        let text_field = if matches!(app, App::KsqlServer { .. }) { "statements" } else { "topology" };
        let topology = setup.topology().map_err(|e| format!("{field}.app.{text_field}: {e}"))?;
        setup.guarantee().map_err(|e| format!("{field}.app.processing_guarantee: {e}"))?;
        if setup.poll_interval_ms == 0 {
            return Err(format!("{field}.app.poll_interval_ms: must be at least 1").into());
        }
        let mut used = vec![&topology.source.topic];
        used.extend(topology.table.iter().map(|t| &t.topic));
        used.extend(topology.sinks.iter().map(|s| &s.topic));
        for topic in used {
            if !self.topics.iter().any(|t| &t.name == topic) {
                return Err(format!(
                    "{field}.app.{text_field}: uses topic `{topic}`, which `topics` does not declare \
                     (Kafka Streams creates only its changelog and repartition topics)"
                )
                .into());
            }
        }
        if let Some(table) = &topology.table {
            // A stream-table join reads partition p of both topics in task 0_p: the topics
            // must have as many partitions (`CopartitionedTopicsEnforcer`, run when the
            // assignor builds the tasks: a `TopologyException`).
            let partitions: std::collections::BTreeMap<&str, i32> = [&topology.source.topic, &table.topic]
                .into_iter()
                .filter_map(|name| self.topics.iter().find(|t| &t.name == name).map(|t| (name.as_str(), t.partitions)))
                .collect();
            if partitions.values().collect::<std::collections::BTreeSet<_>>().len() > 1 {
                let shown: Vec<String> = partitions.iter().map(|(t, p)| format!("{t}={p}")).collect();
                return Err(format!(
                    "{field}.app.{text_field}: Invalid topology: Topics not co-partitioned: [{{{}}}] \
                     (a stream-table join reads partition p of each in task 0_p: give them as many partitions)",
                    shown.join(", ")
                )
                .into());
            }
        }
        Ok(())
    }

    /// The changelog and repartition topics of every Streams runtime app, created with the cluster (Kafka
    /// Streams' `InternalTopicManager.makeReady` creates them at the first rebalance): as many
    /// partitions as the input topic (one per task), its replication factor, and the configs
    /// [`ksim_cluster::streams::changelog_topic_configs`] names. A config ksim's topics do not
    /// know yet is left for when they do.
    fn resolve_internal_topics(
        &self,
        broker: &BrokerConfig,
        topics: &mut Vec<(Topic, TopicConfig)>,
    ) -> Result<(), Located> {
        for (i, client) in self.clients.iter().enumerate() {
            let Some(setup) = client.app.streams() else { continue };
            let Ok(topology) = setup.topology() else { continue };
            let Some(source) = self.topics.iter().find(|t| t.name == topology.source.topic) else { continue };
            if let Some(repartition) = &topology.repartition {
                // `RepartitionTopicConfig`: `cleanup.policy=delete`, `retention.ms=-1` (Streams
                // purges what it consumed with DeleteRecords instead of waiting for retention).
                if !topics.iter().any(|(t, _)| t.name == repartition.topic) {
                    let mut config = broker.topic_defaults.clone();
                    for (key, value) in ksim_cluster::streams::repartition_topic_configs() {
                        if TopicConfig::KEYS.contains(&key) {
                            config.set_checked(key, &value, broker.kafka_version).map_err(|e| {
                                format!("clients[{i}] ({}): repartition topic {}: {e}", client.name, repartition.topic)
                            })?;
                        }
                    }
                    let topic = Topic {
                        name: repartition.topic.clone(),
                        partitions: source.partitions,
                        replication_factor: source.replication_factor,
                        replicas: Vec::new(),
                        configs: Configs::default(),
                    };
                    topics.push((topic, config));
                }
            }
            for store in &topology.stores {
                if topics.iter().any(|(t, _)| t.name == store.changelog) {
                    continue;
                }
                let mut config = broker.topic_defaults.clone();
                for (key, value) in ksim_cluster::streams::changelog_topic_configs(store.window_retention_ms) {
                    if TopicConfig::KEYS.contains(&key) {
                        config.set_checked(key, &value, broker.kafka_version).map_err(|e| {
                            format!("clients[{i}] ({}): changelog {}: {e}", client.name, store.changelog)
                        })?;
                    }
                }
                let topic = Topic {
                    name: store.changelog.clone(),
                    partitions: source.partitions,
                    replication_factor: source.replication_factor,
                    replicas: Vec::new(),
                    configs: Configs::default(),
                };
                topics.push((topic, config));
            }
        }
        Ok(())
    }

    /// One action outside a timeline (`ksim serve`'s control channel): it names existing nodes
    /// and cuts something real, as a timeline step's must.
    pub fn check_action(&self, action: &Action) -> Result<(), String> {
        for node in action.nodes() {
            self.check_node(node)?;
        }
        check_network_action(action)
    }

    /// `timeline`: every action names existing nodes and cuts something real. (A step after the
    /// end of the run is only warned about: [`Scenario::warnings`].)
    fn check_timeline(&self) -> Result<(), String> {
        for (i, step) in self.timeline.iter().enumerate() {
            let field = format!("timeline[{i}]");
            for node in step.action.nodes() {
                self.check_node(node).map_err(|e| format!("{field}.action: {e}"))?;
            }
            check_network_action(&step.action).map_err(|e| format!("{field}.action: {e}"))?;
            if let Action::AbortTransaction { from, partition } = &step.action {
                match self.clients.iter().find(|c| &c.name == from) {
                    Some(c) if c.app == App::Admin => {}
                    Some(_) => {
                        return Err(format!(
                            "{field}.action.from: `{from}` must be an `Admin` client (the operator's machine with Kafka's command-line tools)"
                        ))
                    }
                    None => return Err(format!("{field}.action.from: no client is named `{from}`")),
                }
                let known = crate::scenario::parse_partition(partition)
                    .is_some_and(|tp| self.topics.iter().any(|t| t.name == tp.topic && tp.partition < t.partitions));
                if !known {
                    return Err(format!(
                        "{field}.action.partition: `{partition}` is not a partition of a declared topic (write it as \"topic-N\")"
                    ));
                }
            }
            if let Action::Restart(node) = &step.action {
                // At time 0 every node is starting; a Restart then means something only after a
                // Kill, PowerFail or Stop at time 0 (a node down from the start).
                let down_before =
                    self.timeline[..i].iter().rev().take_while(|s| s.at_ms == 0).find_map(|s| match &s.action {
                        Action::Kill(n) | Action::PowerFail(n) | Action::Stop(n) if n == node => Some(true),
                        Action::Restart(n) if n == node => Some(false),
                        _ => None,
                    });
                if step.at_ms == 0 && down_before != Some(true) {
                    return Err(format!(
                        "{field}.action: Restart at 0 ms of {node:?}, which is starting then: a restart means \
                         something after a Kill, PowerFail or Stop"
                    ));
                }
            }
        }

        Ok(())
    }

    /// `narration`: each text is tied to a time or to a happening, within the run.
    fn check_narration(&self) -> Result<(), String> {
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

        Ok(())
    }

    /// `converge_within_ms`: the liveness check falls inside the run.
    fn check_convergence(&self) -> Result<(), String> {
        if let Some(within) = self.converge_within_ms {
            let last = self.last_step_ms();
            if last.saturating_add(within) >= self.duration_ms {
                return Err(format!(
                    "converge_within_ms: the last timeline step ({last} ms) plus {within} ms is not before the end of the run ({} ms)",
                    self.duration_ms
                ));
            }
        }

        Ok(())
    }

    /// When the last timeline step that happens (before the end of the run) happens.
    pub fn last_step_ms(&self) -> u64 {
        self.timeline.iter().map(|s| s.at_ms).filter(|at| *at < self.duration_ms).max().unwrap_or(0)
    }

    /// How many records the scenario's producers send if nothing stops them: each send is one
    /// event in the trace (`send k=v to topic`), so a scenario that plans more sends than the event
    /// cap cannot finish under it, and `ksim run` says so before it starts. A plain producer sends
    /// one record every `interval_ms` from `start_ms` until the run ends; a transactional one at
    /// most that often (its commits only slow it down). A killed producer sends fewer.
    pub fn planned_sends(&self) -> u64 {
        self.clients
            .iter()
            .filter(|c| c.start_ms < self.duration_ms)
            .map(|c| {
                let (records, interval_ms) = match &c.app {
                    App::Producer { records, interval_ms, .. } => (*records, *interval_ms),
                    App::TransactionalProducer { transactions, records_per_transaction, interval_ms, .. } => {
                        (transactions.saturating_mul(*records_per_transaction), *interval_ms)
                    }
                    _ => return 0,
                };
                if interval_ms == 0 {
                    return records;
                }
                // Sends at start, start + interval, ... strictly before the end of the run.
                let fit = (self.duration_ms - c.start_ms).div_ceil(interval_ms);
                records.min(fit)
            })
            .fold(0, u64::saturating_add)
    }

    /// What runs but can teach nothing: a client that starts after the run ends, a producer with
    /// no records. Warned about, not refused.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, step) in self.timeline.iter().enumerate() {
            if step.at_ms >= self.duration_ms {
                out.push(format!(
                    "timeline[{i}].at_ms: {} is not before the end of the run ({} ms): the step never happens",
                    step.at_ms, self.duration_ms
                ));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            if c.start_ms >= self.duration_ms {
                out.push(format!(
                    "clients[{i}] ({}).start_ms: {} is not before the end of the run ({} ms): it never starts",
                    c.name, c.start_ms, self.duration_ms
                ));
            }
            if let App::Producer { records: 0, .. } = c.app {
                out.push(format!("clients[{i}] ({}).app.records: 0: the producer sends nothing", c.name));
            }
        }
        out
    }

    /// ksim's own bounds, checked before anything is built from the numbers: a scenario is a
    /// lesson or a test, not a load generator without end, and a typo of a few zeros should be
    /// an error, not minutes of silence or gigabytes of memory.
    fn check_limits(&self) -> Result<(), String> {
        let at_most = |field: String, value: u64, max: u64, what: &str| {
            if value > max {
                Err(format!("{field}: {value} is more than ksim's limit of {max} {what}"))
            } else {
                Ok(())
            }
        };
        at_most("duration_ms".into(), self.duration_ms, limits::MAX_DURATION_MS, "ms (7 days of virtual time)")?;
        at_most("cluster.brokers".into(), self.cluster.brokers.len() as u64, limits::MAX_BROKERS, "brokers")?;
        if let Some(q) = &self.cluster.quorum {
            at_most(
                "cluster.quorum.controllers".into(),
                q.controllers.len() as u64,
                limits::MAX_BROKERS,
                "controllers",
            )?;
        }
        at_most("topics".into(), self.topics.len() as u64, limits::MAX_TOPICS, "topics")?;
        let mut partitions: u64 = 0;
        for (i, t) in self.topics.iter().enumerate() {
            // Below 1 is `resolve_topics`'s error.
            let n = t.partitions.max(0) as u64;
            at_most(format!("topics[{i}].partitions"), n, limits::MAX_PARTITIONS, "partitions")?;
            partitions += n;
        }
        at_most("topics".into(), partitions, limits::MAX_PARTITIONS, "partitions in all")?;
        at_most("clients".into(), self.clients.len() as u64, limits::MAX_CLIENTS, "clients")?;
        for (i, c) in self.clients.iter().enumerate() {
            if let App::Producer { records, .. } = &c.app {
                at_most(format!("clients[{i}].app.records"), *records, limits::MAX_RECORDS, "records per producer")?;
            }
        }
        at_most("timeline".into(), self.timeline.len() as u64, limits::MAX_STEPS, "steps")?;
        at_most("narration".into(), self.narration.len() as u64, limits::MAX_STEPS, "lines")?;
        at_most("expect".into(), self.expect.len() as u64, limits::MAX_STEPS, "expectations")?;
        if let Some(within) = self.converge_within_ms {
            at_most("converge_within_ms".into(), within, limits::MAX_DURATION_MS, "ms")?;
        }
        if let Some(f) = &self.fuzz {
            for (name, n) in [
                ("kills", f.kills),
                ("power_failures", f.power_failures),
                ("pauses", f.pauses),
                ("partitions", f.partitions),
                ("slow_links", f.slow_links),
                ("client_crashes", f.client_crashes),
            ] {
                at_most(format!("fuzz.{name}"), n as u64, limits::MAX_FUZZ_FAULTS, "faults of one kind per seed")?;
            }
        }
        // Every request would time out: a round trip longer than the clients' and brokers'
        // default `request.timeout.ms` (30 s).
        if self.network.latency_ms_min.saturating_mul(2) >= 30_000 {
            return Err(format!(
                "network.latency_ms_min: {} ms each way is a round trip of at least 30 s, the default request.timeout.ms: \
                 every request would time out",
                self.network.latency_ms_min
            ));
        }
        Ok(())
    }

    /// `fuzz`: random faults heal before the end of the run.
    fn check_fuzz(&self) -> Result<(), String> {
        if let Some(f) = &self.fuzz {
            if f.heal_by_ms > self.duration_ms || f.from_ms >= f.heal_by_ms {
                return Err(format!(
                    "fuzz.heal_by_ms: {} must be after fuzz.from_ms ({}) and not after the end of the run ({})",
                    f.heal_by_ms, f.from_ms, self.duration_ms
                ));
            }
        }

        Ok(())
    }

    /// `expect`: every expectation names what exists.
    fn check_expectations(&self) -> Result<(), String> {
        for (i, e) in self.expect.iter().enumerate() {
            self.check_expectation(e).map_err(|m| format!("expect[{i}]: {m}"))?;
        }
        Ok(())
    }

    /// One expectation: what it names exists, and its times and counts make sense.
    fn check_expectation(&self, e: &Expectation) -> Result<(), String> {
        let in_run = |what: &str, ms: u64| {
            if ms > self.duration_ms {
                Err(format!("{what} {ms} ms is after the end of the run ({} ms)", self.duration_ms))
            } else {
                Ok(())
            }
        };
        match e {
            Expectation::Sometimes(h) | Expectation::Never(h) | Expectation::Count(h, _) => self.check_happening(h),
            Expectation::NeverBefore(h, at) | Expectation::NeverAfter(h, at) => {
                self.check_happening(h)?;
                in_run("the time", *at)
            }
            Expectation::SometimesBetween(h, from, to) => {
                self.check_happening(h)?;
                if from > to {
                    return Err(format!("the window starts at {from} ms, after its end {to} ms"));
                }
                in_run("the window's end", *to)
            }
            Expectation::CountBetween(h, min, max) => {
                self.check_happening(h)?;
                if min > max {
                    return Err(format!("the least count {min} is more than the most {max}"));
                }
                Ok(())
            }
            Expectation::Before(a, b) => {
                self.check_happening(a)?;
                self.check_happening(b)
            }
            Expectation::Finally(c) => self.check_condition(c),
        }
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
            NodeRef::Voter(id) if !self.cluster.quorum.as_ref().is_some_and(|q| q.controllers.contains(id)) => {
                Err(format!(
                    "unknown controller {id} (the quorum's controllers are {})",
                    self.controller_ids().iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                ))
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
        let sink_groups: Vec<String> =
            self.resolve_connect().ok().flatten().map(|c| c.sink_groups().collect()).unwrap_or_default();
        let known = self.clients.iter().any(|c| c.configs.get("group.id").is_some_and(|v| v.to_string() == group))
            || sink_groups.iter().any(|g| g == group);
        // A Streams application's group is its application.id.
        let streams = self
            .clients
            .iter()
            .filter_map(|c| c.app.streams())
            .any(|s| s.topology().is_ok_and(|t| t.application_id == group));
        if known || streams {
            Ok(())
        } else {
            Err(format!("unknown consumer group `{group}` (no client has group.id={group})"))
        }
    }

    /// A Connect happening names a task, a dead letter queue or a worker the scenario has.
    fn check_connect_happening(&self, h: &Happening) -> Result<(), String> {
        let setup = self.resolve_connect()?.ok_or_else(|| format!("{h:?} needs the scenario's `connect` section"))?;
        let tasks: Vec<String> = setup
            .units()
            .iter()
            .filter(|u| matches!(u, ksim_cluster::connect::herder::Unit::Task(..)))
            .map(|u| u.to_string())
            .collect();
        match h {
            Happening::ConnectTaskStarted(t) | Happening::ConnectTaskFailed(t) if !tasks.contains(t) => {
                Err(format!("unknown Connect task `{t}` (the tasks are {})", tasks.join(", ")))
            }
            Happening::DeadLettered(t) if !setup.connectors.iter().any(|c| c.errors.dlq_topic.as_ref() == Some(t)) => {
                Err(format!("no connector has errors.deadletterqueue.topic.name={t}"))
            }
            Happening::WorkerSessionExpired(w) | Happening::WorkerLostCoordinator(w) if !setup.workers.contains(w) => {
                Err(format!("unknown Connect worker `{w}` (the workers are {})", setup.workers.join(", ")))
            }
            Happening::SourceTransactionCommitted if setup.exactly_once_source().is_none() => {
                Err("SourceTransactionCommitted needs exactly.once.source.support=enabled and a source connector"
                    .into())
            }
            _ => Ok(()),
        }
    }

    fn check_happening(&self, h: &Happening) -> Result<(), String> {
        match h {
            Happening::Election(p)
            | Happening::UncleanElection(p)
            | Happening::ElrElection(p)
            | Happening::PreferredElection(p)
            | Happening::Offline(p)
            | Happening::IsrShrink(p)
            | Happening::IsrExpand(p)
            | Happening::Truncation(p)
            | Happening::LogStartMoved(p)
            | Happening::OffsetReset(p)
            | Happening::OffsetOutOfRange(p)
            | Happening::TruncationDetected(p)
            | Happening::Marker(p)
            | Happening::TxnVerificationFailed(p)
            | Happening::TransactionAbortedByAdmin(p) => self.check_partition(p),
            Happening::LogCleaned(p) => match parse_partition(p) {
                Some(tp) if INTERNAL_TOPICS.contains(&tp.topic.as_str()) && tp.partition >= 0 => Ok(()),
                _ => self.check_partition(p),
            },
            Happening::TransactionCommitted(id)
            | Happening::TransactionAborted(id)
            | Happening::TransactionLoaded(id)
            | Happening::ProducerFenced(id)
            | Happening::TxnOffsetsSent(id)
            | Happening::TransactionState(id, _) => self.check_transactional_id(id, h),
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
            | Happening::Committed(g)
            | Happening::PollIntervalExceeded(g)
            | Happening::MemberFenced(g)
            | Happening::InconsistentGroupProtocol(g)
            | Happening::TxnOffsetCommitRefused(g)
            | Happening::UnstableOffsetFetch(g) => self.check_group(g),
            Happening::ProduceFailed
            | Happening::Duplicate
            | Happening::Reordered
            | Happening::AckedWriteLost
            | Happening::ProcessedTwice
            | Happening::CommittedUnprocessed
            | Happening::ReadAborted
            | Happening::CountedTwice
            | Happening::SinkRewrote
            | Happening::SourceRecordDuplicated
            | Happening::EffectNotExactlyOnce
            | Happening::FetchSessionEvicted
            | Happening::FetchSessionRefused => Ok(()),
            Happening::ConnectTaskStarted(_)
            | Happening::ConnectTaskFailed(_)
            | Happening::DeadLettered(_)
            | Happening::WorkerSessionExpired(_)
            | Happening::WorkerLostCoordinator(_)
            | Happening::ConnectRebalanceDelayed
            | Happening::SourceTransactionCommitted => self.check_connect_happening(h),
            Happening::ControllerActivated | Happening::CheckQuorumResigned | Happening::QuorumElection => {
                match self.cluster.quorum {
                    Some(_) => Ok(()),
                    None => Err(format!("{h:?} needs a controller quorum (cluster.quorum)")),
                }
            }
        }
    }

    /// A `transactional.id` some client sets, and (for `TransactionState`) one of Kafka's
    /// transaction states.
    fn check_transactional_id(&self, id: &str, h: &Happening) -> Result<(), String> {
        // An exactly-once Connect source task's producer has `<group.id>-<connector>-0` (KIP-618).
        let connect_id = self
            .resolve_connect()
            .ok()
            .flatten()
            .and_then(|c| c.exactly_once_source().map(|s| c.transactional_id(&s.name, 0)));
        let known = self.clients.iter().any(|c| c.configs.get("transactional.id").is_some_and(|v| v.to_string() == id))
            || connect_id.as_deref() == Some(id);
        if !known {
            return Err(format!("unknown transactional.id `{id}` (no client sets transactional.id={id})"));
        }
        if let Happening::TransactionState(_, state) = h {
            let names: Vec<&str> = ksim_cluster::txn::TransactionState::ALL.iter().map(|s| s.name()).collect();
            if !names.contains(&state.as_str()) {
                return Err(format!("`{state}` is not a transaction state; expected one of {}", names.join(", ")));
            }
        }
        Ok(())
    }

    fn check_condition(&self, c: &Condition) -> Result<(), String> {
        match c {
            Condition::Leader(p, id) => {
                self.check_partition(p)?;
                self.check_node(&NodeRef::Broker(*id))
            }
            Condition::NoLeader(p) | Condition::ReplicasIdentical(p) => self.check_partition(p),
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
            Condition::Latest(topic, _, _) => {
                let internal = self
                    .clients
                    .iter()
                    .filter_map(|c| c.app.streams())
                    .any(|setup| setup.topology().is_ok_and(|t| t.topics().contains(topic)));
                if internal || self.topics.iter().any(|t| &t.name == topic) {
                    Ok(())
                } else {
                    Err(format!("unknown topic `{topic}`"))
                }
            }
            Condition::SinkSize(store, _) | Condition::SinkEntry(store, _, _) => {
                let setup = self.resolve_connect()?.ok_or("a sink condition needs the scenario's `connect` section")?;
                match setup.sinks.get(store) {
                    None => Err(format!("unknown sink `{store}` (not in connect.sinks)")),
                    Some(ksim_cluster::connect::external::SinkMode::Append)
                        if matches!(c, Condition::SinkEntry(..)) =>
                    {
                        Err(format!("sink `{store}` appends: it has lines, not entries by key (use SinkSize)"))
                    }
                    Some(_) => Ok(()),
                }
            }
            Condition::NoRecordContains(topic, _) => {
                let storage = self.resolve_connect().ok().flatten().is_some_and(|c| {
                    [&c.worker.config_topic, &c.worker.offset_topic, &c.worker.status_topic].contains(&topic)
                });
                if storage || self.topics.iter().any(|t| &t.name == topic) {
                    Ok(())
                } else {
                    Err(format!("unknown topic `{topic}`"))
                }
            }
        }
    }
}
