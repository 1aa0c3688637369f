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
pub use executor::{ExecConfig, LateDrop, Record, Row};

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

    /// The schema of what query `index` emits.
    pub fn output(&self, index: usize) -> &Source {
        &self.queries[index].plan().output
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
            }
            // Depth first, in the order the rows were written.
            pending.extend(produced.into_iter().rev());
        }
        Ok(step)
    }
}
