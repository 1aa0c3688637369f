//! A Streams topology compiled from ksqlDB statements: the input topic and how its records
//! decode, each sink and store, the internal topics' names, and the codecs between the engine's
//! rows and Kafka records.
//!
//! Records are JSON values (`VALUE_FORMAT='JSON'`; field names match columns case-insensitively,
//! as ksqlDB's JSON deserializer does) with the key as a plain string (`KEY_FORMAT='KAFKA'`).
//! ksim's log records carry no timestamp of their own, so event time is a value column named by
//! `WITH (TIMESTAMP='...')` (ksqlDB's timestamp extraction, `TimestampExtractionPolicyFactory`);
//! a stream without one is refused.
//!
//! A GROUP BY on the source's key column aggregates in place, as Kafka Streams' `groupByKey`
//! does without a repartition: one sub-topology, tasks `0_<p>`. A GROUP BY that changes the key
//! (`groupBy` / `selectKey` then `groupByKey`) cuts the topology in two at a **repartition
//! topic** `<application.id>-<name>-repartition` (`InternalTopologyBuilder.decorateTopic`,
//! `KGroupedStreamImpl` / `GroupedStreamAggregateBuilder` with a `RepartitionNode`): sub-topology
//! 0 (tasks `0_<p>` over the input) computes each record's new key and writes the record there,
//! partitioned by that key; sub-topology 1 (tasks `1_<p>` over the repartition topic) holds the
//! store and aggregates, so every record of one key meets in one task whichever input partition
//! it came from. The repartition topic has the input's partition count
//! (`RepartitionTopics.setRepartitionTopicMetadataNumberOfPartitions`: a repartition topic without
//! a set count takes the largest count of its sub-topology's source topics).

use super::{changelog_topic, repartition_topic};
use crate::ksql::ast::SourceKind;
use crate::ksql::plan::{AggFunc, QueryKind, RExpr, Source};
use crate::ksql::value::{SqlType, Value};
use crate::ksql::{Engine, ExecConfig, Record as KsqlRecord, Row, StoreWrite};
use crate::record::Record;

/// Whose names the internal topics get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Naming {
    /// A Kafka Streams application: `application.id` as given; a store is named after the table
    /// it materializes (`Materialized.as("<table>-store")`).
    Streams { application_id: String },
    /// A ksqlDB server's persistent query: application id
    /// `_confluent-ksql-<ksql.service.id>query_<query id>` (`QueryApplicationId.build`), query id
    /// `CTAS_<SINK>_<n>` / `CSAS_<SINK>_<n>` with n the statement's position, and the
    /// aggregation's store `Aggregate-Aggregate-Materialize` (ksqlDB's `StreamAggregateBuilder`).
    Ksql { service_id: String },
}

/// What a state store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOf {
    /// The aggregation of the query (in statement order).
    Aggregation(usize),
    /// The joined table's rows (`StreamsBuilder.table(topic, Materialized.as(store))`, a
    /// `KTableSource` putting each record): the stream side of the join reads it.
    Table,
}

/// One state store and its changelog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    pub of: StoreOf,
    pub name: String,
    pub changelog: String,
    /// `Some(retention)` for a window store.
    pub window_retention_ms: Option<i64>,
}

/// One sink topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    pub query: usize,
    pub topic: String,
}

/// The repartition topic a key-changing GROUP BY writes and sub-topology 1 reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepartitionSpec {
    /// The aggregation that groups by a new key.
    pub query: usize,
    pub topic: String,
}

pub struct Topology {
    pub application_id: String,
    statements: String,
    /// The declared stream: its records drive the topology.
    pub source: Source,
    /// The declared table a stream-table join reads, if the topology joins one: its topic is
    /// read by the same tasks as the stream's, partition by partition (co-partitioned).
    pub table: Option<Source>,
    pub sinks: Vec<SinkSpec>,
    pub stores: Vec<StoreSpec>,
    /// `Some` when the topology has two sub-topologies, cut at this topic.
    pub repartition: Option<RepartitionSpec>,
    /// Each query's aggregate state types, for decoding changelog values.
    agg_types: Vec<Vec<SqlType>>,
    /// How each task's engine runs: its record cache ([`Topology::with_cache`]).
    exec: ExecConfig,
}

/// Streams' `statestore.cache.max.bytes` default: 10 MB (`StreamsConfig`), shared by an
/// instance's stream threads (`KafkaStreams.getCacheSizePerThread`).
pub const DEFAULT_STATESTORE_CACHE_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// What one input record decodes to: a ksqlDB record, or why it is skipped (ksqlDB logs a
/// deserialization error to its processing log and goes on).
pub type Decoded = Result<KsqlRecord, String>;

impl Topology {
    pub fn compile(statements: &str, naming: &Naming) -> Result<Topology, String> {
        let engine = Engine::new(statements, ExecConfig::default()).map_err(|e| e.to_string())?;
        let streams: Vec<&Source> = engine.inputs().filter(|s| s.kind == SourceKind::Stream).collect();
        let tables: Vec<&Source> = engine.inputs().filter(|s| s.kind == SourceKind::Table).collect();
        let [source] = streams.as_slice() else {
            return Err(format!(
                "the topology reads {} declared streams; ksim's Streams runtime reads exactly one (and may join it to one declared table)",
                streams.len()
            ));
        };
        let source = (*source).clone();
        let table = match tables.as_slice() {
            [] => None,
            [table] => Some((*table).clone()),
            _ => {
                return Err(format!(
                    "the topology declares {} tables; ksim's Streams runtime joins a stream to one table",
                    tables.len()
                ))
            }
        };
        if let Some(table) = &table {
            if !engine.analyzed().queries.iter().any(|q| q.join.as_ref().is_some_and(|j| j.table == table.name)) {
                return Err(format!(
                    "{} is declared but no query joins it: ksim's Streams runtime reads a table only for a stream-table join",
                    table.name
                ));
            }
            if table.key_columns().count() > 1 {
                return Err(format!(
                    "{} has several PRIMARY KEY columns; ksim's records have one string key",
                    table.name
                ));
            }
        }
        if source.timestamp_column.is_none() {
            return Err(format!(
                "{} has no WITH (TIMESTAMP='...'): ksim's records carry no timestamp of their own, so event time must be a value column",
                source.name
            ));
        }
        if source.key_columns().count() > 1 {
            return Err(format!("{} has several KEY columns; ksim's records have one string key", source.name));
        }
        let analyzed = engine.analyzed();
        let declared = analyzed.sources.iter().filter(|s| s.written_by.is_none()).count();
        let persistent: Vec<usize> = (0..analyzed.queries.len()).filter(|&q| analyzed.queries[q].persistent).collect();
        if persistent.is_empty() {
            return Err("the topology has no CREATE ... AS SELECT: nothing would run".into());
        }
        let application_id = match naming {
            Naming::Streams { application_id } => application_id.clone(),
            Naming::Ksql { service_id } => {
                let [q] = persistent.as_slice() else {
                    return Err(
                        "a ksqlDB persistent query is one CREATE ... AS SELECT; give each its own statements".into()
                    );
                };
                format!("_confluent-ksql-{service_id}query_{}", query_id(&analyzed.queries[*q].output, declared + q))
            }
        };
        let mut sinks = Vec::new();
        let mut stores = Vec::new();
        let mut agg_types = Vec::new();
        let mut repartition = None;
        for (q, plan) in analyzed.queries.iter().enumerate() {
            let mut types = Vec::new();
            if let QueryKind::Aggregation(agg) = &plan.kind {
                let input = analyzed.source(&plan.source).expect("the analyzer resolved the source");
                let by_key = matches!(agg.group_by.as_slice(), [RExpr::Input(i)] if input.columns.get(*i).is_some_and(|c| c.key));
                if !by_key {
                    if plan.source != source.name || analyzed.queries.len() != 1 {
                        return Err(format!(
                            "{}: its GROUP BY is not {}'s key column, so Kafka Streams repartitions through a topic `{}` \
                             (a second sub-topology); ksim's runtime repartitions only a topology of that one aggregation \
                             over the declared stream",
                            plan.output.name,
                            input.name,
                            repartition_topic(&application_id, &repartition_name(naming, &plan.output.name)),
                        ));
                    }
                    repartition = Some(RepartitionSpec {
                        query: q,
                        topic: repartition_topic(&application_id, &repartition_name(naming, &plan.output.name)),
                    });
                }
                types = agg
                    .aggregates
                    .iter()
                    .map(|a| match a.func {
                        AggFunc::Count | AggFunc::CountAll => SqlType::Bigint,
                        _ => a.ty,
                    })
                    .collect();
                let name = match naming {
                    Naming::Streams { .. } => format!("{}-store", plan.output.name.to_ascii_lowercase()),
                    Naming::Ksql { .. } => "Aggregate-Aggregate-Materialize".to_string(),
                };
                stores.push(StoreSpec {
                    of: StoreOf::Aggregation(q),
                    changelog: changelog_topic(&application_id, &name),
                    name,
                    window_retention_ms: agg.window.map(|w| w.retention_ms),
                });
            }
            agg_types.push(types);
            if plan.persistent {
                sinks.push(SinkSpec { query: q, topic: plan.output.topic.clone() });
            }
        }
        if let Some(table) = &table {
            // Streams materializes the table in a key-value store logged to its own changelog
            // topic: `topology.optimization` defaults to `none` (`StreamsConfig`), and only
            // `all` reuses the source topic as the changelog (`REUSE_KTABLE_SOURCE_TOPICS`).
            // ksqlDB names the store `KafkaTopic_Right-Reduce` and gives it a changelog too.
            let name = match naming {
                Naming::Streams { .. } => format!("{}-store", table.name.to_ascii_lowercase()),
                Naming::Ksql { .. } => "KafkaTopic_Right-Reduce".to_string(),
            };
            stores.push(StoreSpec {
                of: StoreOf::Table,
                changelog: changelog_topic(&application_id, &name),
                name,
                window_retention_ms: None,
            });
        }
        Ok(Topology {
            application_id,
            statements: statements.to_string(),
            source,
            table,
            sinks,
            stores,
            repartition,
            agg_types,
            exec: ExecConfig::default(),
        })
    }

    /// The record cache each task's aggregations run with: `statestore.cache.max.bytes` for
    /// the instance's one stream thread, flushed at each commit (the runtime calls
    /// [`crate::streams::StreamTask::flush`]) or when it evicts, never on a record's timestamp.
    /// 0 forwards and logs every update.
    pub fn with_cache(mut self, cache_max_bytes: u64) -> Topology {
        self.exec = ExecConfig { cache_max_bytes, commit_interval_ms: i64::MAX, num_stream_threads: 1 };
        self
    }

    /// The topics the application's consumer reads: the input, the joined table's topic, and
    /// the repartition topic if any.
    pub fn input_topics(&self) -> Vec<String> {
        let mut topics = vec![self.source.topic.clone()];
        topics.extend(self.table.iter().map(|t| t.topic.clone()));
        topics.extend(self.repartition.iter().map(|r| r.topic.clone()));
        topics
    }

    /// The sub-topology that reads `topic` (`InternalTopologyBuilder.subtopologyToTopicsInfo`).
    pub fn subtopology_of(&self, topic: &str) -> Option<u32> {
        if topic == self.source.topic || self.table.as_ref().is_some_and(|t| t.topic == topic) {
            Some(0)
        } else if self.repartition.as_ref().is_some_and(|r| r.topic == topic) {
            Some(1)
        } else {
            None
        }
    }

    /// How many sub-topologies the topology has.
    pub fn subtopologies(&self) -> u32 {
        if self.repartition.is_some() {
            2
        } else {
            1
        }
    }

    /// The stores of one sub-topology: all of them live in the last (the aggregating) one.
    pub fn stores_of(&self, subtopology: u32) -> &[StoreSpec] {
        if subtopology + 1 == self.subtopologies() {
            &self.stores
        } else {
            &[]
        }
    }

    /// The record sub-topology 0 writes to the repartition topic: keyed by its new key, the
    /// value every source column by name (the old key too, as ksqlDB copies key columns into the
    /// value before a `groupBy`), so sub-topology 1 decodes the same row. `None` if the
    /// aggregation drops the record (WHERE, a NULL group).
    pub fn repartition_record(&self, engine: &Engine, record: &KsqlRecord) -> Option<Record> {
        let spec = self.repartition.as_ref()?;
        let key = engine.group_key(spec.query, record)?;
        // Fields in column order, as ksqlDB writes them.
        let fields: Vec<String> = self
            .source
            .columns
            .iter()
            .zip(&record.values)
            .map(|(column, value)| format!("{}:{}", serde_json::Value::String(column.name.clone()), to_json(value)))
            .collect();
        Some(Record { key: key_string(&key), value: Some(format!("{{{}}}", fields.join(","))), headers: Vec::new() })
    }

    /// Whether the tasks' aggregations hold updates back in a record cache.
    pub fn caches(&self) -> bool {
        self.exec.cache_max_bytes > 0 && !self.stores.iter().all(|s| s.of == StoreOf::Table)
    }

    /// A fresh engine for one task.
    pub fn engine(&self) -> Engine {
        Engine::new(&self.statements, self.exec).expect("compiled once already")
    }

    /// The topics the application reads and writes, internal ones included.
    pub fn topics(&self) -> Vec<String> {
        let mut topics = self.input_topics();
        topics.extend(self.sinks.iter().map(|s| s.topic.clone()));
        topics.extend(self.stores.iter().map(|s| s.changelog.clone()));
        topics
    }

    /// Decode one input record into the source's columns.
    pub fn decode(&self, key: Option<&str>, value: &str) -> Decoded {
        self.decode_from(key, value, false)
    }

    /// The event time of a record of `topic` as the task's timestamp extractor sees it, `None`
    /// if it has none (no `TIMESTAMP` column, or the record does not decode).
    pub fn timestamp_of(&self, topic: &str, key: Option<&str>, value: Option<&str>) -> Option<i64> {
        let (columns, column, record) = if self.table.as_ref().is_some_and(|t| t.topic == topic) {
            let table = self.table.as_ref()?;
            (&table.columns, table.timestamp_column?, self.decode_table(key, value).ok()?.1?)
        } else if topic == self.source.topic {
            (&self.source.columns, self.source.timestamp_column?, self.decode(key, value?).ok()?)
        } else {
            (&self.source.columns, self.source.timestamp_column?, self.decode_repartitioned(value?).ok()?)
        };
        debug_assert_eq!(columns.len(), record.values.len());
        match record.values.get(column) {
            Some(Value::Int(t)) if *t >= 0 => Some(*t),
            _ => None,
        }
    }

    /// Decode one record of the joined table's topic (or of its store's changelog, which logs
    /// the records as they came): its primary key, and its row, `None` for a tombstone.
    pub fn decode_table(&self, key: Option<&str>, value: Option<&str>) -> Result<(Value, Option<KsqlRecord>), String> {
        let table = self.table.as_ref().ok_or("the topology joins no table")?;
        let key_type = table.key_columns().next().map(|c| c.ty).ok_or("the table has no PRIMARY KEY")?;
        let key = match key {
            Some(k) => Value::parse(k, key_type).map_err(|e| format!("key: {e}"))?,
            None => Value::Null,
        };
        let Some(value) = value else { return Ok((key, None)) };
        let mut record = decode_columns(&table.columns, Some(&key), value, false)?;
        if let Some(Value::Int(t)) = table.timestamp_column.and_then(|c| record.values.get(c)) {
            record.rowtime = *t;
        }
        Ok((key, Some(record)))
    }

    /// Decode one record of the repartition topic: every column, the old key too, is in the value.
    pub fn decode_repartitioned(&self, value: &str) -> Decoded {
        self.decode_from(None, value, true)
    }

    fn decode_from(&self, key: Option<&str>, value: &str, key_in_value: bool) -> Decoded {
        let key = match key {
            Some(k) => {
                let ty = self.source.key_columns().next().map_or(SqlType::String, |c| c.ty);
                Some(Value::parse(k, ty).map_err(|e| format!("key: {e}"))?)
            }
            None => None,
        };
        decode_columns(&self.source.columns, key.as_ref(), value, key_in_value)
    }

    /// The Kafka record a sink row becomes: the key as a string, the value columns as JSON
    /// (with `WINDOWSTART`/`WINDOWEND` for a windowed result, as ksqlDB prints them; the key
    /// stays the group's key, so the record lands where Streams' `WindowedStreamPartitioner`
    /// puts it), or a tombstone.
    pub fn encode_row(&self, query: usize, row: &Row, engine: &Engine) -> Record {
        let output = engine.output(query);
        let key = key_string(&row.key);
        let value = row.value.as_ref().map(|values| {
            // Fields in SELECT order, as ksqlDB writes them (a JSON object keeps no order of its own).
            let mut fields = Vec::new();
            if let Some((start, end)) = row.window {
                fields.push(format!("\"WINDOWSTART\":{start}"));
                fields.push(format!("\"WINDOWEND\":{end}"));
            }
            for (column, v) in output.value_columns().zip(values) {
                fields.push(format!("{}:{}", serde_json::Value::String(column.name.clone()), to_json(v)));
            }
            format!("{{{}}}", fields.join(","))
        });
        Record { key, value, headers: Vec::new() }
    }

    /// The changelog record of one store write: key `<key>` (or `<key>@<window start>` for a
    /// window store), value `{"aggs":[...],"rowtime":T}` (and `"window":[start,end]`).
    pub fn encode_store_write(write: &StoreWrite) -> Record {
        let mut key = key_string(&write.key).unwrap_or_default();
        let mut object = serde_json::Map::new();
        object.insert("aggs".into(), serde_json::Value::Array(write.aggs.iter().map(to_json).collect()));
        object.insert("rowtime".into(), write.timestamp.into());
        if let Some((start, end)) = write.window {
            key = format!("{key}@{start}");
            object.insert("window".into(), serde_json::json!([start, end]));
        }
        Record { key: Some(key), value: Some(serde_json::Value::Object(object).to_string()), headers: Vec::new() }
    }

    /// Decode a changelog record of `store` back into a store write.
    pub fn decode_store_write(
        &self,
        store: &StoreSpec,
        engine: &Engine,
        record: &Record,
    ) -> Result<StoreWrite, String> {
        let text = record.value.as_deref().ok_or("a tombstone, not a store write")?;
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let aggs_json = json.get("aggs").and_then(|a| a.as_array()).ok_or("no aggs")?;
        let StoreOf::Aggregation(query) = store.of else {
            return Err("a table store holds rows, not aggregates".into());
        };
        let types = &self.agg_types[query];
        if aggs_json.len() != types.len() {
            return Err(format!("{} aggregates, expected {}", aggs_json.len(), types.len()));
        }
        let aggs = aggs_json
            .iter()
            .zip(types)
            .map(|(v, ty)| if v.is_null() { Ok(Value::Null) } else { from_json(v, *ty) })
            .collect::<Result<Vec<_>, _>>()?;
        let timestamp = json.get("rowtime").and_then(|t| t.as_i64()).ok_or("no rowtime")?;
        let window = match json.get("window").and_then(|w| w.as_array()) {
            Some(w) => Some((w[0].as_i64().ok_or("window start")?, w[1].as_i64().ok_or("window end")?)),
            None => None,
        };
        let raw_key = record.key.as_deref().unwrap_or_default();
        let raw_key = match window {
            Some(_) => raw_key.rsplit_once('@').map_or(raw_key, |(k, _)| k),
            None => raw_key,
        };
        let key_types: Vec<SqlType> = engine.output(query).key_columns().map(|c| c.ty).collect();
        let [key_ty] = key_types.as_slice() else { return Err("one key column expected".into()) };
        let key = vec![Value::parse(raw_key, *key_ty)?];
        Ok(StoreWrite { key, window, aggs, timestamp })
    }
}

/// A JSON value's fields into `columns` (names matched case-insensitively, as ksqlDB's JSON
/// deserializer does); key columns from `key` unless the value carries them.
fn decode_columns(
    columns: &[crate::ksql::plan::Column],
    key: Option<&Value>,
    value: &str,
    key_in_value: bool,
) -> Decoded {
    let json: serde_json::Value =
        serde_json::from_str(value).map_err(|e| format!("value is not JSON ({e}): {value:?}"))?;
    let serde_json::Value::Object(fields) = json else {
        return Err(format!("value is not a JSON object: {value:?}"));
    };
    let mut values = Vec::with_capacity(columns.len());
    for column in columns {
        if column.key && !key_in_value {
            values.push(key.cloned().unwrap_or(Value::Null));
            continue;
        }
        let field = fields.iter().find(|(name, _)| name.eq_ignore_ascii_case(&column.name)).map(|(_, v)| v);
        values.push(match field {
            None | Some(serde_json::Value::Null) => Value::Null,
            Some(v) => from_json(v, column.ty).map_err(|e| format!("field {}: {e}", column.name))?,
        });
    }
    Ok(KsqlRecord { rowtime: 0, values })
}

/// The name in a repartition topic's `<application.id>-<name>-repartition`: ksqlDB's
/// `Aggregate-GroupBy` (its `StreamGroupByBuilder` step), or for a Streams application the name
/// it gives `Grouped.as(...)`, here `<table>-groupby`.
fn repartition_name(naming: &Naming, table: &str) -> String {
    match naming {
        Naming::Streams { .. } => format!("{}-groupby", table.to_ascii_lowercase()),
        Naming::Ksql { .. } => "Aggregate-GroupBy".to_string(),
    }
}

/// `CTAS_<SINK>_<n>` / `CSAS_<SINK>_<n>` (ksqlDB's `QueryIdUtil.buildId`).
fn query_id(output: &Source, position: usize) -> String {
    let kind = match output.kind {
        crate::ksql::ast::SourceKind::Table => "CTAS",
        crate::ksql::ast::SourceKind::Stream => "CSAS",
    };
    format!("{kind}_{}_{position}", output.name)
}

fn key_string(key: &[Value]) -> Option<String> {
    match key {
        [] => None,
        [v] if v.is_null() => None,
        [Value::String(s)] => Some(s.clone()),
        [v] => Some(v.to_csv()),
        many => Some(many.iter().map(Value::to_csv).collect::<Vec<_>>().join("|")),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => (*i).into(),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::String(s) => s.clone().into(),
        Value::Boolean(b) => (*b).into(),
    }
}

fn from_json(v: &serde_json::Value, ty: SqlType) -> Result<Value, String> {
    let wrong = || format!("expected {}, found {v}", ty.name());
    match ty {
        SqlType::Integer | SqlType::Bigint => v.as_i64().map(Value::Int).ok_or_else(wrong),
        SqlType::Double => v.as_f64().map(Value::Double).ok_or_else(wrong),
        SqlType::String => match v {
            serde_json::Value::String(s) => Ok(Value::String(s.clone())),
            other => Ok(Value::String(other.to_string())),
        },
        SqlType::Boolean => v.as_bool().map(Value::Boolean).ok_or_else(wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const BALANCES: &str = "CREATE STREAM payments (name STRING KEY, amount INT, ts BIGINT)
           WITH (KAFKA_TOPIC='payments', VALUE_FORMAT='JSON', TIMESTAMP='ts');
         CREATE TABLE balance AS SELECT name, SUM(amount) AS balance FROM payments GROUP BY name;";

    #[test]
    fn a_streams_app_names_its_store_after_the_table_and_ksqldb_as_ksqldb_does() {
        let t = Topology::compile(BALANCES, &Naming::Streams { application_id: "balances".into() }).unwrap();
        assert_eq!(t.topics(), ["payments", "BALANCE", "balances-balance-store-changelog"]);
        let k = Topology::compile(BALANCES, &Naming::Ksql { service_id: "default_".into() }).unwrap();
        assert_eq!(k.application_id, "_confluent-ksql-default_query_CTAS_BALANCE_1");
        assert_eq!(
            k.stores[0].changelog,
            "_confluent-ksql-default_query_CTAS_BALANCE_1-Aggregate-Aggregate-Materialize-changelog"
        );
    }

    #[test]
    fn records_and_store_writes_round_trip_through_kafka_records() {
        let t = Topology::compile(BALANCES, &Naming::Streams { application_id: "b".into() }).unwrap();
        let mut engine = t.engine();
        let record = t.decode(Some("alice"), r#"{"AMOUNT": 50, "ts": 1000}"#).unwrap();
        let step = engine.process("PAYMENTS", record).unwrap();
        let (q, row) = &step.rows[0];
        let out = t.encode_row(*q, row, &engine);
        assert_eq!(out.key.as_deref(), Some("alice"));
        assert_eq!(out.value.as_deref(), Some(r#"{"BALANCE":50}"#));
        let (_, write) = &step.changelog[0];
        let logged = Topology::encode_store_write(write);
        assert_eq!(logged.value.as_deref(), Some(r#"{"aggs":[50],"rowtime":1000}"#));
        assert_eq!(t.decode_store_write(&t.stores[0], &engine, &logged).unwrap(), *write);
        assert!(t.decode(Some("bob"), "not json").is_err());
        assert!(t.decode(Some("bob"), r#"{"amount": "x", "ts": 1}"#).is_err());
    }

    #[test]
    fn a_group_by_that_changes_the_key_cuts_the_topology_at_a_repartition_topic() {
        let views = "CREATE STREAM views (viewer STRING KEY, page STRING, ts BIGINT)
               WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', TIMESTAMP='ts');
             CREATE TABLE per_page AS SELECT page, COUNT(*) AS views FROM views GROUP BY page;";
        let t = Topology::compile(views, &Naming::Streams { application_id: "app".into() }).unwrap();
        let spec = t.repartition.clone().expect("a repartition");
        assert_eq!(spec.topic, "app-per_page-groupby-repartition");
        assert_eq!(t.input_topics(), ["views", "app-per_page-groupby-repartition"]);
        assert_eq!(
            (t.subtopology_of("views"), t.subtopology_of(&spec.topic), t.subtopology_of("x")),
            (Some(0), Some(1), None)
        );
        assert!(t.stores_of(0).is_empty());
        assert_eq!(t.stores_of(1)[0].changelog, "app-per_page-store-changelog");
        // Sub-topology 0 rekeys a view by its page and keeps every column in the value.
        let engine = t.engine();
        let record = t.decode(Some("alice"), r#"{"page": "/home", "ts": 5}"#).unwrap();
        let out = t.repartition_record(&engine, &record).unwrap();
        assert_eq!(out.key.as_deref(), Some("/home"));
        assert_eq!(out.value.as_deref(), Some(r#"{"VIEWER":"alice","PAGE":"/home","TS":5}"#));
        assert_eq!(t.decode_repartitioned(out.value.as_deref().unwrap()).unwrap(), record);
        // A view without a page has no group: nothing is repartitioned.
        let none = t.decode(Some("bob"), r#"{"ts": 6}"#).unwrap();
        assert_eq!(t.repartition_record(&engine, &none), None);
        let k = Topology::compile(views, &Naming::Ksql { service_id: "default_".into() }).unwrap();
        assert_eq!(
            k.repartition.unwrap().topic,
            "_confluent-ksql-default_query_CTAS_PER_PAGE_1-Aggregate-GroupBy-repartition"
        );

        let err = Topology::compile(
            "CREATE STREAM p (id STRING KEY, name STRING, ts BIGINT) WITH (KAFKA_TOPIC='p', VALUE_FORMAT='JSON', TIMESTAMP='ts');
             CREATE TABLE t AS SELECT name, COUNT(*) FROM p GROUP BY name;
             CREATE STREAM big AS SELECT * FROM p WHERE id = 'x';",
            &Naming::Streams { application_id: "app".into() },
        )
        .err()
        .unwrap();
        assert!(err.contains("app-t-groupby-repartition"), "{err}");
        let err = Topology::compile(
            "CREATE STREAM p (id STRING KEY, n INT) WITH (KAFKA_TOPIC='p', VALUE_FORMAT='JSON');
             CREATE TABLE t AS SELECT id, COUNT(*) FROM p GROUP BY id;",
            &Naming::Streams { application_id: "app".into() },
        )
        .err()
        .unwrap();
        assert!(err.contains("TIMESTAMP"), "{err}");
    }
}
