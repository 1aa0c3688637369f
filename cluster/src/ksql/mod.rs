//! # ksqlDB's windowed aggregations, as a pure engine
//!
//! A learner's ksqlDB statements (`CREATE STREAM ... WITH (...)`, `CREATE TABLE ... AS SELECT
//! ... WINDOW TUMBLING (...) GROUP BY ... HAVING ...`) run here over a handful of records, and
//! the engine answers what ksqlDB would emit: each row with its ROWTIME, key and window, the
//! tombstones HAVING produces, and the records windows refuse as late. `ksim ksql` is its CLI; the
//! stream-processing runtime feeds it records from the simulated cluster.
//!
//! The pipeline is ksqlDB's: [`lexer`] and [`parser`] (its grammar, `SqlBase.g4`, and
//! `AstBuilder`) build the [`ast`]; [`analyzer`] checks it the way ksqlDB's `Analyzer`,
//! `AggregateAnalyzer`, `LogicalPlanner` and `EngineExecutor` do, with their messages, and
//! resolves names into a [`plan`]; [`executor`] runs a plan as Kafka Streams runs the topology
//! ksqlDB builds for it. [`value`] holds the SQL types.
//!
//! The version modelled is ksqlDB as of Confluent Platform 7.3 and later (the `confluentinc/ksql`
//! master of 2024-2026): EMIT FINAL is Kafka Streams' `EmitStrategy.onWindowClose` (KIP-825,
//! ksqlDB PR #9141, 2022) rather than the older `suppress(untilWindowCloses)`, and the default
//! grace is ksqlDB's own 24 h less the window size (KSQL-12705, 2024), the value Streams'
//! deprecated `TimeWindows.of` gave before Kafka 4.0 removed it.
//!
//! One query input is one Kafka Streams task (one partition), so stream time is that task's.

pub mod analyzer;
pub mod ast;
pub mod error;
pub mod executor;
pub mod lexer;
pub mod parser;
pub mod plan;
pub mod value;

pub use error::{KsqlError, Pos};
pub use executor::{ExecConfig, LateDrop, Record, Row, StoreWrite};

use analyzer::Analyzed;
use ast::SourceKind;
use executor::QueryRuntime;
use plan::Source;

/// Derived streams fed from query to query: a bound on chains of `CREATE STREAM AS SELECT`.
const MAX_CHAIN: usize = 64;

/// What one record set off: rows each query emitted and windows that refused it, by query index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    pub rows: Vec<(usize, Row)>,
    pub late: Vec<(usize, LateDrop)>,
    /// Each aggregation's store writes: what its changelog topic receives.
    pub changelog: Vec<(usize, StoreWrite)>,
}

/// The statements, analyzed, with a running instance of every query.
pub struct Engine {
    analyzed: Analyzed,
    queries: Vec<QueryRuntime>,
}

impl Engine {
    /// Parse and analyze `text`; `Err` is ksqlDB's message with its position.
    pub fn new(text: &str, config: ExecConfig) -> Result<Engine, KsqlError> {
        let statements = parser::parse(text)?;
        let analyzed = analyzer::analyze(&statements)?;
        let queries = analyzed.queries.iter().map(|q| QueryRuntime::new(q.clone(), config)).collect();
        Ok(Engine { analyzed, queries })
    }

    pub fn analyzed(&self) -> &Analyzed {
        &self.analyzed
    }

    /// The sources declared with columns (`CREATE STREAM|TABLE (...)`): what records feed.
    pub fn inputs(&self) -> impl Iterator<Item = &Source> {
        self.analyzed.sources.iter().filter(|s| s.written_by.is_none())
    }

    /// How many queries run.
    pub fn query_count(&self) -> usize {
        self.queries.len()
    }

    /// Whether query `index` keeps a state store (an aggregation), and whether it is windowed.
    pub fn store_of(&self, index: usize) -> Option<bool> {
        match &self.queries[index].plan().kind {
            plan::QueryKind::Aggregation(a) => Some(a.window.is_some()),
            plan::QueryKind::Projection { .. } => None,
        }
    }

    /// Restore one changelog record into query `index`'s store.
    pub fn restore(&mut self, index: usize, write: &StoreWrite) {
        self.queries[index].restore(write);
    }

    /// Query `index`'s store, in iteration order.
    pub fn store_entries(&self, index: usize) -> Vec<StoreWrite> {
        self.queries[index].store_entries()
    }

    /// The schema of what query `index` emits.
    pub fn output(&self, index: usize) -> &Source {
        &self.queries[index].plan().output
    }

    /// The key query `index` groups `record` by ([`QueryRuntime::group_key`]).
    pub fn group_key(&self, index: usize, record: &Record) -> Option<Vec<value::Value>> {
        self.queries[index].group_key(record)
    }

    /// Feed one record of the declared source `source`. Queries run in statement order; the rows a
    /// query writes to a stream feed the queries that read that stream.
    pub fn process(&mut self, source: &str, record: Record) -> Result<Step, String> {
        let Some(declared) = self.inputs().find(|s| s.name == source) else {
            return Err(format!("no declared source named {source}"));
        };
        let mut record = record;
        if let Some(column) = declared.timestamp_column {
            // `WITH (TIMESTAMP='col')`: ROWTIME is the column's value; a record without one is
            // skipped, as Streams skips a record whose extracted timestamp is invalid.
            match record.values.get(column) {
                Some(value::Value::Int(ts)) if *ts >= 0 => record.rowtime = *ts,
                _ => return Ok(Step::default()),
            }
        }
        let mut step = Step::default();
        let mut pending = vec![(source.to_string(), record, 0usize)];
        while let Some((from, record, depth)) = pending.pop() {
            if depth > MAX_CHAIN {
                return Err(format!("queries feed each other more than {MAX_CHAIN} deep"));
            }
            let mut produced = Vec::new();
            for (index, query) in self.queries.iter_mut().enumerate() {
                if query.plan().source != from {
                    continue;
                }
                let out = query.process(&record)?;
                let output = &query.plan().output;
                for row in out.rows {
                    if query.plan().persistent && output.kind == SourceKind::Stream {
                        if let Some(values) = &row.value {
                            let mut columns = row.key.clone();
                            columns.extend(values.iter().cloned());
                            produced.push((
                                output.name.clone(),
                                Record { rowtime: row.rowtime, values: columns },
                                depth + 1,
                            ));
                        }
                    }
                    step.rows.push((index, row));
                }
                step.late.extend(out.late.into_iter().map(|l| (index, l)));
                step.changelog.extend(out.changelog.into_iter().map(|w| (index, w)));
            }
            // Depth first, in the order the rows were written.
            pending.extend(produced.into_iter().rev());
        }
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use super::value::Value;
    use super::*;

    fn record(rowtime: i64, id: &str, v: i64) -> Record {
        Record { rowtime, values: vec![Value::String(id.into()), Value::Int(v)] }
    }

    /// The API the stream-processing runtime uses: feed records of a declared source, get every
    /// query's rows (a stream written by one query feeds the next) and the late drops.
    #[test]
    fn a_record_flows_through_a_chain_of_queries_and_late_drops_come_back() {
        let mut engine = Engine::new(
            "CREATE STREAM s (id STRING KEY, v BIGINT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');
             CREATE STREAM big AS SELECT id, v FROM s WHERE v > 10;
             CREATE TABLE counts AS SELECT id, COUNT(*) AS n FROM big
               WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY id;",
            ExecConfig::default(),
        )
        .unwrap();
        assert_eq!(engine.inputs().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["S"]);
        assert_eq!(engine.output(0).topic, "BIG");
        assert_eq!(engine.output(1).topic, "COUNTS");

        let step = engine.process("S", record(12_000, "a", 50)).unwrap();
        let rows: Vec<(usize, Option<Vec<Value>>)> = step.rows.iter().map(|(q, r)| (*q, r.value.clone())).collect();
        assert_eq!(rows, [(0, Some(vec![Value::Int(50)])), (1, Some(vec![Value::Int(1)]))]);
        assert_eq!(step.rows[1].1.window, Some((10_000, 20_000)));

        // Filtered out by WHERE: it never reaches the aggregation.
        assert_eq!(engine.process("S", record(1_000, "a", 5)).unwrap(), Step::default());

        // Passes WHERE, but its window [0, 10000) closed at stream time 12000 with no grace.
        let step = engine.process("S", record(9_999, "a", 99)).unwrap();
        assert_eq!(step.rows.len(), 1, "only the projection emits: {step:?}");
        assert_eq!(
            step.late,
            [(
                1,
                LateDrop {
                    rowtime: 9_999,
                    key: vec![Value::String("a".into())],
                    window: (0, 10_000),
                    stream_time: 12_000,
                    grace_ms: 0
                }
            )]
        );
        assert!(engine.process("NOPE", record(0, "a", 1)).is_err());
    }

    #[test]
    fn statements_that_ksqldb_refuses_do_not_make_an_engine() {
        let err = Engine::new(
            "CREATE TABLE t (id STRING, v INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');",
            ExecConfig::default(),
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "line 1:1: Tables require a PRIMARY KEY. Please define the PRIMARY KEY.");
        let err = Engine::new(
            "CREATE STREAM s (id INT PRIMARY KEY) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');",
            ExecConfig::default(),
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "line 1:18: Column `ID` is a 'PRIMARY KEY' column: please use 'KEY' for streams.");
    }
}
