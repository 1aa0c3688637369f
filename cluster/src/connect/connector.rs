//! A connector's configuration, checked as Connect checks it when the connector is created
//! (`ConnectorConfig`, `SourceConnectorConfig`, `SinkConnectorConfig` in `connect/runtime`).
//!
//! Every connector has a `name`, a `connector.class` and `tasks.max` (default 1, at least 1),
//! its transformation chain (`transforms*`, `predicates*`: the same [`Chain`] `ksim smt` runs),
//! and the error-handling settings of KIP-298 ([`ErrorPolicy`]). A source connector may ask for
//! exactly-once delivery (KIP-618: `exactly.once.support`, `transaction.boundary`); a sink
//! connector names its `topics` and may have a dead letter queue.
//!
//! ksim runs three connector classes, each a model of a real one:
//! - `ksim.connect.TableSourceConnector`: Confluent's JDBC source in `mode=incrementing`: reads
//!   `table`'s rows above the last id it recorded, every `poll.interval.ms` (5000), at most
//!   `batch.max.rows` (100) per poll, into topic `topic.prefix` + table. Its source partition is
//!   `{"table":...}`, its source offset `{"incrementing":id}`, its records keyless.
//! - `ksim.connect.KeyValueSinkConnector`: an upserting store (`store`): one entry per record
//!   key, a rewrite replaces it.
//! - `org.apache.kafka.connect.file.FileStreamSinkConnector`: Kafka's own file sink, appending
//!   each record value's `toString()` as a line to `file` (here: an appending store).

use super::errors::ErrorPolicy;
use super::smt::{BuildError, Chain, ConfigException, Props};

pub const TABLE_SOURCE: &str = "ksim.connect.TableSourceConnector";
pub const KEY_VALUE_SINK: &str = "ksim.connect.KeyValueSinkConnector";
pub const FILE_STREAM_SINK: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";

/// One connector as submitted (REST `POST /connectors`, or a properties file given to
/// `connect-standalone`).
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    pub name: String,
    pub class: String,
    pub tasks_max: u32,
    pub chain: Chain,
    pub errors: ErrorPolicy,
    pub kind: Kind,
    /// Every setting as written (what the config topic stores).
    pub props: Props,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Source(SourceSettings),
    Sink(SinkSettings),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSettings {
    pub table: String,
    pub topic: String,
    pub poll_interval_ms: u64,
    pub batch_max_rows: usize,
    /// KIP-618 `exactly.once.support`: `required` makes the worker refuse the connector unless
    /// exactly-once source support is enabled on the cluster.
    pub exactly_once_required: bool,
    pub transaction_boundary: TransactionBoundary,
}

/// KIP-618 `transaction.boundary`: when an exactly-once source task commits its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionBoundary {
    /// Every batch the task's `poll()` returned is one transaction (the default).
    Poll,
    /// Every `transaction.boundary.interval.ms` (default: `offset.flush.interval.ms`).
    Interval(Option<u64>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSettings {
    pub topics: Vec<String>,
    /// The external store written to.
    pub store: String,
    /// Whether the sink writes by key (upsert) or appends lines.
    pub upsert: bool,
    /// KIP-610: the sink reports records its store refused to the errant record reporter (and so
    /// to the dead letter queue) instead of failing.
    pub uses_errant_record_reporter: bool,
}

impl ConnectorConfig {
    pub fn source(&self) -> Option<&SourceSettings> {
        match &self.kind {
            Kind::Source(s) => Some(s),
            Kind::Sink(_) => None,
        }
    }

    pub fn sink(&self) -> Option<&SinkSettings> {
        match &self.kind {
            Kind::Sink(s) => Some(s),
            Kind::Source(_) => None,
        }
    }

    /// Check a connector's settings; the first problem is the error, in Kafka's words where
    /// Kafka has them.
    pub fn parse(props: &Props) -> Result<ConnectorConfig, BuildError> {
        let name = required(props, "name")?;
        let class = required(props, "connector.class")?;
        let tasks_max = match props.get("tasks.max") {
            None => 1,
            Some(raw) => match raw.trim().parse::<i64>() {
                Ok(n) if n >= 1 && n <= i64::from(i32::MAX) => n as u32,
                Ok(_) => return Err(ConfigException::invalid("tasks.max", raw, "Value must be at least 1").into()),
                Err(_) => {
                    return Err(ConfigException::invalid("tasks.max", raw, "Not a number of type INT").into());
                }
            },
        };
        let chain = Chain::from_properties(props)?;
        let kind = match class.as_str() {
            TABLE_SOURCE => Kind::Source(source_settings(props, &name)?),
            KEY_VALUE_SINK | FILE_STREAM_SINK => Kind::Sink(sink_settings(props, &class)?),
            other => {
                return Err(BuildError::Unsupported(format!(
                    "the connector class {other}: ksim runs {TABLE_SOURCE}, {KEY_VALUE_SINK} and {FILE_STREAM_SINK}"
                )))
            }
        };
        let errors = ErrorPolicy::parse(props, matches!(kind, Kind::Sink(_)))?;
        Ok(ConnectorConfig { name, class, tasks_max, chain, errors, kind, props: props.clone() })
    }
}

fn required(props: &Props, key: &str) -> Result<String, ConfigException> {
    match props.get(key).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(ConfigException::new(format!("Missing required configuration \"{key}\" which has no default value."))),
    }
}

fn number(props: &Props, key: &str, default: u64) -> Result<u64, ConfigException> {
    match props.get(key) {
        None => Ok(default),
        Some(raw) => {
            raw.trim().parse::<u64>().map_err(|_| ConfigException::invalid(key, raw, "Not a number of type LONG"))
        }
    }
}

fn source_settings(props: &Props, _name: &str) -> Result<SourceSettings, ConfigException> {
    let table = required(props, "table")?;
    let prefix = props.get("topic.prefix").cloned().unwrap_or_default();
    let exactly_once_required = match props.get("exactly.once.support").map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "requested" => false,
        Some(v) if v == "required" => true,
        Some(_) => {
            return Err(ConfigException::invalid(
                "exactly.once.support",
                &props["exactly.once.support"],
                "String must be one of (case insensitive): REQUIRED, REQUESTED",
            ))
        }
    };
    let transaction_boundary = match props.get("transaction.boundary").map(|v| v.trim().to_ascii_lowercase()) {
        None => TransactionBoundary::Poll,
        Some(v) if v == "poll" => TransactionBoundary::Poll,
        Some(v) if v == "interval" => TransactionBoundary::Interval(match props.get("transaction.boundary.interval.ms") {
            None => None,
            Some(_) => Some(number(props, "transaction.boundary.interval.ms", 0)?),
        }),
        Some(v) if v == "connector" => {
            return Err(ConfigException::new(
                "transaction.boundary=connector: the connector defines its own transactions; ksim's table source does not (SourceConnector.canDefineTransactionBoundaries returns UNSUPPORTED)",
            ))
        }
        Some(_) => {
            return Err(ConfigException::invalid(
                "transaction.boundary",
                &props["transaction.boundary"],
                "String must be one of (case insensitive): POLL, INTERVAL, CONNECTOR",
            ))
        }
    };
    let batch_max_rows = number(props, "batch.max.rows", 100)?;
    if batch_max_rows == 0 {
        return Err(ConfigException::invalid("batch.max.rows", "0", "Value must be at least 1"));
    }
    Ok(SourceSettings {
        topic: format!("{prefix}{table}"),
        table,
        poll_interval_ms: number(props, "poll.interval.ms", 5000)?,
        batch_max_rows: batch_max_rows as usize,
        exactly_once_required,
        transaction_boundary,
    })
}

fn sink_settings(props: &Props, class: &str) -> Result<SinkSettings, ConfigException> {
    // SinkConnectorConfig.validate: `topics` (a list) or `topics.regex`; ksim takes the list.
    let topics: Vec<String> = props
        .get("topics")
        .map(|t| t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if topics.is_empty() {
        return Err(ConfigException::new("Must configure one of topics or topics.regex"));
    }
    let store_key = if class == FILE_STREAM_SINK { "file" } else { "store" };
    let store = required(props, store_key)?;
    if let Some(dlq) = props.get("errors.deadletterqueue.topic.name").map(|t| t.trim()) {
        if topics.iter().any(|t| t == dlq) {
            return Err(ConfigException::new(format!(
                "The DLQ topic '{dlq}' may not be included in the list of topics ('topics'={}) consumed by the connector",
                topics.join(",")
            )));
        }
    }
    let uses_errant_record_reporter = props.get("ksim.errant.record.reporter").is_some_and(|v| v.trim() == "true");
    Ok(SinkSettings { topics, store, upsert: class == KEY_VALUE_SINK, uses_errant_record_reporter })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Props {
        crate::connect::properties::to_map(&crate::connect::properties::parse(text).unwrap())
    }

    #[test]
    fn a_source_writes_to_prefix_plus_table() {
        let c = ConnectorConfig::parse(&props(
            "name=users-source\nconnector.class=ksim.connect.TableSourceConnector\ntable=users\ntopic.prefix=db-\ntasks.max=1",
        ))
        .unwrap();
        let s = c.source().unwrap();
        assert_eq!((s.topic.as_str(), s.poll_interval_ms, s.batch_max_rows), ("db-users", 5000, 100));
        assert_eq!(s.transaction_boundary, TransactionBoundary::Poll);
    }

    #[test]
    fn bad_settings_are_refused_in_kafkas_words() {
        let err = |text: &str| ConnectorConfig::parse(&props(text)).unwrap_err().to_string();
        assert!(err("connector.class=x").contains("Missing required configuration \"name\""));
        assert!(err("name=a\nconnector.class=ksim.connect.KeyValueSinkConnector\nstore=s")
            .contains("Must configure one of topics or topics.regex"));
        assert!(err("name=a\nconnector.class=ksim.connect.KeyValueSinkConnector\nstore=s\ntopics=t\ntasks.max=0")
            .contains("Value must be at least 1"));
        assert!(err(
            "name=a\nconnector.class=ksim.connect.KeyValueSinkConnector\nstore=s\ntopics=t\nerrors.deadletterqueue.topic.name=t"
        )
        .contains("may not be included"));
        assert!(err("name=a\nconnector.class=com.example.Nope").contains("ksim runs"));
    }
}
