//! A scenario's `connect` section: the external systems, the Connect workers' settings and the
//! connectors they run, and its resolution into a [`ConnectSetup`].
//!
//! Workers are clients whose `app` is `ConnectWorker`; they share the section's
//! `worker_configs` (Kafka's worker config names: `group.id`, `offset.flush.interval.ms`, ...).

use super::{Configs, Scenario, Topic};
use ksim_cluster::config::{Configurable, TopicConfig};
use ksim_cluster::connect::connector::ConnectorConfig;
use ksim_cluster::connect::external::SinkMode;
use ksim_cluster::connect::herder::Unit;
use ksim_cluster::connect::protocol::ConnectProtocolCompatibility;
use ksim_cluster::connect::smt::{Props, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSection {
    /// `Distributed` (the default: workers share a group and keep everything in Kafka topics)
    /// or `Standalone` (one worker, source offsets in a local file).
    #[serde(default)]
    pub mode: ConnectMode,
    /// Worker settings by Kafka's names (see the scenario reference).
    #[serde(default, deserialize_with = "super::configs_without_duplicates")]
    pub worker_configs: Configs,
    /// External source tables.
    #[serde(default)]
    pub sources: Vec<SourceSystem>,
    /// External sink stores.
    #[serde(default)]
    pub sinks: Vec<SinkSystem>,
    /// Each connector's configuration as a Java `.properties` text (what a standalone worker
    /// reads from a file, or the `config` of a REST `POST /connectors`).
    pub connectors: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectMode {
    #[default]
    Distributed,
    Standalone,
}

/// A table that grows: `rows` at given times, and/or rows made by `generate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSystem {
    pub name: String,
    #[serde(default)]
    pub rows: Vec<SourceRow>,
    #[serde(default)]
    pub generate: Option<RowGenerator>,
}

/// One row, a JSON object with an integral `id` (the incrementing column).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRow {
    pub at_ms: u64,
    pub row: String,
}

/// `count` rows, one every `every_ms` from `from_ms`, each `template` with `{n}` replaced by the
/// row number (1, 2, ...: also its id) and `{c}` by `(n - 1) % cycle + 1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowGenerator {
    pub count: u64,
    #[serde(default)]
    pub from_ms: u64,
    pub every_ms: u64,
    pub template: String,
    #[serde(default = "one")]
    pub cycle: u64,
}

fn one() -> u64 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSystem {
    pub name: String,
    pub mode: SinkMode,
}

/// The worker settings ksim reads, with Kafka's defaults (`WorkerConfig`, `DistributedConfig`,
/// `StandaloneConfig`).
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    pub group_id: String,
    pub config_topic: String,
    pub offset_topic: String,
    pub status_topic: String,
    pub offset_partitions: i32,
    pub status_partitions: i32,
    pub replication_factor: usize,
    pub offset_flush_interval_ms: u64,
    pub scheduled_rebalance_max_delay_ms: u64,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// `rebalance.timeout.ms` (60 s): how long the coordinator waits for workers to rejoin.
    pub rebalance_timeout_ms: u64,
    /// `connect.protocol` (`sessioned`).
    pub connect_protocol: ConnectProtocolCompatibility,
    /// KIP-618 `exactly.once.source.support=enabled`.
    pub exactly_once_source: bool,
    /// Standalone: `offset.storage.file.filename`.
    pub offsets_file: String,
}

/// The `connect` section, checked.
#[derive(Clone, Debug)]
pub struct ConnectSetup {
    pub mode: ConnectMode,
    pub worker: WorkerSettings,
    pub connectors: Vec<ConnectorConfig>,
    /// Each source table's rows: (time, id, row), in time order.
    pub sources: BTreeMap<String, Vec<(u64, i64, Value)>>,
    pub sinks: BTreeMap<String, SinkMode>,
    /// The worker clients, by name.
    pub workers: Vec<String>,
}

impl ConnectSetup {
    pub fn connector(&self, name: &str) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// The sink connectors. Each sink task has a consumer of its own in group
    /// `connect-<connector>` (`Worker.buildWorkerSinkTask`), so a worker runs tasks of any number
    /// of them side by side.
    pub fn sink_connectors(&self) -> impl Iterator<Item = &ConnectorConfig> {
        self.connectors.iter().filter(|c| c.sink().is_some())
    }

    /// The consumer groups of the sink connectors (`connect-<connector>`,
    /// `SinkUtils.consumerGroupId`).
    pub fn sink_groups(&self) -> impl Iterator<Item = String> + '_ {
        self.sink_connectors().map(|c| format!("connect-{}", c.name))
    }

    /// KIP-618: the transactional id of an exactly-once source task
    /// (`Worker.taskTransactionalId`: `<group.id>-<connector>-<task>`).
    pub fn transactional_id(&self, connector: &str, task: u32) -> String {
        format!("{}-{connector}-{task}", self.worker.group_id)
    }

    /// Every connector and task the configurations define: a table source has one task (one
    /// table; `JdbcSourceConnector.taskConfigs` spreads tables over at most `tasks.max` tasks);
    /// a sink has `tasks.max`.
    pub fn units(&self) -> Vec<Unit> {
        let mut out = Vec::new();
        for c in &self.connectors {
            out.push(Unit::Connector(c.name.clone()));
            let tasks = if c.source().is_some() { 1 } else { c.tasks_max };
            for t in 0..tasks {
                out.push(Unit::Task(c.name.clone(), t));
            }
        }
        out
    }

    /// The exactly-once source connector, if the cluster runs one.
    pub fn exactly_once_source(&self) -> Option<&ConnectorConfig> {
        if self.mode != ConnectMode::Distributed || !self.worker.exactly_once_source {
            return None;
        }
        self.connectors.iter().find(|c| c.source().is_some())
    }
}

/// Connect's internal topics: `config.storage.topic` (1 partition), `offset.storage.topic`
/// (`offset.storage.partitions`, 25) and `status.storage.topic` (`status.storage.partitions`,
/// 5), each with `cleanup.policy=compact`: Connect keeps only the latest record per key
/// (`KafkaConfigBackingStore`, `KafkaOffsetBackingStore`, `KafkaStatusBackingStore` create them
/// so, and refuse to start on a topic that is not compacted). The one place they are made.
pub fn storage_topics(worker: &WorkerSettings, defaults: &TopicConfig) -> Vec<(Topic, TopicConfig)> {
    const STORAGE_CONFIGS: &[(&str, &str)] = &[("cleanup.policy", "compact")];
    let topic = |name: &str, partitions: i32| {
        let mut config = defaults.clone();
        let mut configs = Configs::new();
        for (key, value) in STORAGE_CONFIGS {
            configs.insert(key.to_string(), super::ConfigValue::Text(value.to_string()));
            // `cleanup.policy` takes effect once ksim's topics know it (log compaction);
            // until then the topic keeps it in its spec only.
            let _ = config.set(key, value);
        }
        let spec = Topic {
            name: name.to_string(),
            partitions,
            replication_factor: worker.replication_factor,
            replicas: Vec::new(),
            configs,
        };
        (spec, config)
    };
    vec![
        topic(&worker.config_topic, 1),
        topic(&worker.offset_topic, worker.offset_partitions),
        topic(&worker.status_topic, worker.status_partitions),
    ]
}

impl Scenario {
    /// Check the `connect` section; the workers' consumer and producer settings are adjusted by
    /// the caller.
    pub(super) fn resolve_connect(&self) -> Result<Option<ConnectSetup>, String> {
        let workers: Vec<String> = self
            .clients
            .iter()
            .filter(|c| matches!(c.app, super::App::ConnectWorker))
            .map(|c| c.name.clone())
            .collect();
        let Some(section) = &self.connect else {
            if let Some(w) = workers.first() {
                return Err(format!("clients ({w}): a ConnectWorker needs the scenario's `connect` section"));
            }
            return Ok(None);
        };
        if workers.is_empty() {
            return Err("connect: no client runs a ConnectWorker app".into());
        }
        if section.mode == ConnectMode::Standalone && workers.len() > 1 {
            return Err(format!(
                "connect.mode: Standalone runs one worker, but {} clients run a ConnectWorker",
                workers.len()
            ));
        }
        let worker = worker_settings(&section.worker_configs, section.mode, self.cluster.brokers.len())?;
        let mut sources = BTreeMap::new();
        for (i, s) in section.sources.iter().enumerate() {
            let field = format!("connect.sources[{i}]");
            if sources.contains_key(&s.name) {
                return Err(format!("{field}.name: two sources are called `{}`", s.name));
            }
            let mut rows: Vec<(u64, String)> = s.rows.iter().map(|r| (r.at_ms, r.row.clone())).collect();
            if let Some(g) = &s.generate {
                if g.every_ms == 0 || g.cycle == 0 {
                    return Err(format!("{field}.generate: every_ms and cycle must be at least 1"));
                }
                if g.count > 100_000 {
                    return Err(format!("{field}.generate.count: at most 100000 rows"));
                }
                for n in 1..=g.count {
                    let c = (n - 1) % g.cycle + 1;
                    rows.push((
                        g.from_ms + (n - 1) * g.every_ms,
                        g.template.replace("{n}", &n.to_string()).replace("{c}", &c.to_string()),
                    ));
                }
            }
            rows.sort_by_key(|(at, _)| *at);
            let mut parsed = Vec::new();
            let mut last_id = i64::MIN;
            for (at_ms, text) in rows {
                let value = Value::from_json(&text).map_err(|e| format!("{field}.rows: `{text}` is not JSON: {e}"))?;
                let id = match &value {
                    Value::Map(m) => match m.get("id") {
                        Some(Value::Int64(id)) => *id,
                        _ => {
                            return Err(format!(
                                "{field}.rows: `{text}` has no integral `id` (the incrementing column)"
                            ))
                        }
                    },
                    _ => return Err(format!("{field}.rows: `{text}` is not a JSON object")),
                };
                if id <= last_id {
                    return Err(format!("{field}.rows: id {id} arrives after id {last_id}: ids must grow with time"));
                }
                last_id = id;
                parsed.push((at_ms, id, value));
            }
            sources.insert(s.name.clone(), parsed);
        }
        let mut sinks = BTreeMap::new();
        for (i, s) in section.sinks.iter().enumerate() {
            if sinks.insert(s.name.clone(), s.mode).is_some() {
                return Err(format!("connect.sinks[{i}].name: two sinks are called `{}`", s.name));
            }
        }
        let mut connectors: Vec<ConnectorConfig> = Vec::new();
        for (i, text) in section.connectors.iter().enumerate() {
            let field = format!("connect.connectors[{i}]");
            let entries = ksim_cluster::connect::properties::parse(text).map_err(|e| format!("{field}: {e}"))?;
            let props: Props = ksim_cluster::connect::properties::to_map(&entries);
            let config = ConnectorConfig::parse(&props).map_err(|e| format!("{field}: {e}"))?;
            if connectors.iter().any(|c| c.name == config.name) {
                return Err(format!("{field}: two connectors are called `{}`", config.name));
            }
            match &config.kind {
                ksim_cluster::connect::connector::Kind::Source(s) => {
                    if !sources.contains_key(&s.table) {
                        return Err(format!("{field}: table={} names no source in connect.sources", s.table));
                    }
                    if !self.topics.iter().any(|t| t.name == s.topic) {
                        return Err(format!(
                            "{field}: the connector writes to topic `{}`, which the scenario does not declare",
                            s.topic
                        ));
                    }
                    if s.exactly_once_required
                        && !(worker.exactly_once_source && section.mode == ConnectMode::Distributed)
                    {
                        return Err(format!(
                            "{field}: exactly.once.support=required, but the workers do not enable exactly.once.source.support (distributed mode only)"
                        ));
                    }
                }
                ksim_cluster::connect::connector::Kind::Sink(s) => {
                    match sinks.get(&s.store) {
                        None => return Err(format!("{field}: `{}` names no sink in connect.sinks", s.store)),
                        Some(mode) if (*mode == SinkMode::Upsert) != s.upsert => {
                            return Err(format!(
                                "{field}: {} writes {}, but sink `{}` is {mode:?}",
                                config.class,
                                if s.upsert { "by key (upsert)" } else { "lines (append)" },
                                s.store
                            ))
                        }
                        Some(_) => {}
                    }
                    for topic in &s.topics {
                        if !self.topics.iter().any(|t| &t.name == topic) {
                            return Err(format!(
                                "{field}: topics names `{topic}`, which the scenario does not declare"
                            ));
                        }
                    }
                    if let Some(dlq) = &config.errors.dlq_topic {
                        if !self.topics.iter().any(|t| &t.name == dlq) {
                            return Err(format!("{field}: errors.deadletterqueue.topic.name names `{dlq}`, which the scenario does not declare"));
                        }
                    }
                }
            }
            connectors.push(config);
        }
        if worker.exactly_once_source && section.mode == ConnectMode::Distributed {
            // Kafka gives each source task a producer of its own (`Worker.buildWorkerTask`), and
            // each dead letter queue another (`DeadLetterQueueReporter.createAndSetup`). ksim's
            // worker has one producer, which exactly-once support makes the source task's
            // transactional one: one exactly-once source, and no dead letter queue beside it.
            let sources: Vec<&str> =
                connectors.iter().filter(|c| c.source().is_some()).map(|c| c.name.as_str()).collect();
            if sources.len() > 1 {
                return Err(format!(
                    "connect.connectors: {} are source connectors, but with exactly.once.source.support=enabled ksim's worker runs one (its one producer is that task's transactional producer)",
                    sources.join(" and ")
                ));
            }
            if let Some(c) = connectors.iter().find(|c| c.errors.dlq_topic.is_some()) {
                return Err(format!(
                    "connect.connectors: {} has a dead letter queue, but with exactly.once.source.support=enabled ksim's worker has no producer for it (its one producer is the source task's transactional producer)",
                    c.name
                ));
            }
        }
        Ok(Some(ConnectSetup { mode: section.mode, worker, connectors, sources, sinks, workers }))
    }
}

fn worker_settings(configs: &Configs, mode: ConnectMode, brokers: usize) -> Result<WorkerSettings, String> {
    let mut w = WorkerSettings {
        group_id: "connect-cluster".into(),
        config_topic: "connect-configs".into(),
        offset_topic: "connect-offsets".into(),
        status_topic: "connect-status".into(),
        offset_partitions: 25,
        status_partitions: 5,
        replication_factor: 3,
        offset_flush_interval_ms: 60_000,
        scheduled_rebalance_max_delay_ms: 300_000,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 3_000,
        rebalance_timeout_ms: 60_000,
        connect_protocol: ConnectProtocolCompatibility::Sessioned,
        exactly_once_source: false,
        offsets_file: "/tmp/connect.offsets".into(),
    };
    for (key, value) in configs {
        let text = value.to_string();
        let field = format!("connect.worker_configs.{key}");
        let number = || text.parse::<u64>().map_err(|_| format!("{field}: `{text}` is not a number"));
        match key.as_str() {
            "group.id" => w.group_id = text.clone(),
            "config.storage.topic" => w.config_topic = text.clone(),
            "offset.storage.topic" => w.offset_topic = text.clone(),
            "status.storage.topic" => w.status_topic = text.clone(),
            "offset.storage.partitions" => w.offset_partitions = number()?.clamp(1, 1000) as i32,
            "status.storage.partitions" => w.status_partitions = number()?.clamp(1, 1000) as i32,
            "config.storage.replication.factor" | "offset.storage.replication.factor" | "status.storage.replication.factor" => {
                w.replication_factor = number()?.max(1) as usize
            }
            "offset.flush.interval.ms" => w.offset_flush_interval_ms = number()?.max(1),
            "scheduled.rebalance.max.delay.ms" => w.scheduled_rebalance_max_delay_ms = number()?,
            "session.timeout.ms" => w.session_timeout_ms = number()?.max(1),
            "heartbeat.interval.ms" => w.heartbeat_interval_ms = number()?.max(1),
            "rebalance.timeout.ms" => w.rebalance_timeout_ms = number()?.max(1),
            "connect.protocol" => {
                w.connect_protocol = ConnectProtocolCompatibility::from_config(&text)
                    .ok_or_else(|| format!("{field}: `{text}`: expected one of eager, compatible, sessioned"))?
            }
            "exactly.once.source.support" => {
                w.exactly_once_source = match text.to_ascii_lowercase().as_str() {
                    "enabled" => true,
                    "disabled" | "preparing" => false,
                    _ => return Err(format!("{field}: `{text}`: expected one of enabled, preparing, disabled")),
                }
            }
            "offset.storage.file.filename" => w.offsets_file = text.clone(),
            _ => {
                return Err(format!(
                    "{field}: unknown worker config; known here: group.id, config.storage.topic, offset.storage.topic, status.storage.topic, offset.storage.partitions, status.storage.partitions, config.storage.replication.factor, offset.storage.replication.factor, status.storage.replication.factor, offset.flush.interval.ms, scheduled.rebalance.max.delay.ms, session.timeout.ms, heartbeat.interval.ms, rebalance.timeout.ms, connect.protocol, exactly.once.source.support, offset.storage.file.filename"
                ))
            }
        }
    }
    if mode == ConnectMode::Distributed && w.replication_factor > brokers {
        return Err(format!(
            "connect.worker_configs: the storage topics' replication factor {} is larger than the number of brokers ({brokers}); set config.storage.replication.factor, offset.storage.replication.factor and status.storage.replication.factor",
            w.replication_factor
        ));
    }
    if w.heartbeat_interval_ms >= w.session_timeout_ms {
        return Err("connect.worker_configs.heartbeat.interval.ms: must be lower than session.timeout.ms".into());
    }
    Ok(w)
}
