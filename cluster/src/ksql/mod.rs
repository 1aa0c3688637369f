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
pub use executor::{ExecConfig, LateDrop, Record, Row, StoreWrite, TableRows};

use analyzer::Analyzed;
use ast::SourceKind;
use executor::QueryRuntime;
use plan::Source;
use std::collections::BTreeMap;

/// Derived streams fed from query to query: a bound on chains of `CREATE STREAM AS SELECT`.
const MAX_CHAIN: usize = 64;

/// What one record set off: rows each query emitted and windows that refused it, by query index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    pub rows: Vec<(usize, Row)>,
    pub late: Vec<(usize, LateDrop)>,
    /// Each aggregation's store writes: what its changelog topic receives.
    pub changelog: Vec<(usize, StoreWrite)>,
    /// The inner joins that found no table row for the record: they emitted nothing.
    pub unjoined: Vec<usize>,
}

/// The statements, analyzed, with a running instance of every query.
pub struct Engine {
    analyzed: Analyzed,
    queries: Vec<QueryRuntime>,
    /// Each declared table's rows: what a stream-table join looks up (`KTableSource` into a
    /// key-value store).
    tables: BTreeMap<String, TableRows>,
}

impl Engine {
    /// Parse and analyze `text`; `Err` is ksqlDB's message with its position.
    pub fn new(text: &str, config: ExecConfig) -> Result<Engine, KsqlError> {
        let statements = parser::parse(text)?;
        let analyzed = analyzer::analyze(&statements)?;
        let queries = analyzed.queries.iter().map(|q| QueryRuntime::new(q.clone(), config)).collect();
        let tables = analyzed
            .sources
            .iter()
            .filter(|s| s.written_by.is_none() && s.kind == SourceKind::Table)
            .map(|s| (s.name.clone(), TableRows::new()))
            .collect();
        Ok(Engine { analyzed, queries, tables })
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

    /// Put a declared table's row (its columns in the table's order), or delete the row of
    /// `key` (`row` `None`: a tombstone), as `KTableSource` puts a record into the table's store.
    /// A NULL key is skipped (`KTableSource`: "Skipping record due to null key").
    pub fn table_put(&mut self, table: &str, key: &value::Value, row: Option<Vec<value::Value>>) -> Result<(), String> {
        let Some(rows) = self.tables.get_mut(table) else {
            return Err(format!("no declared table named {table}"));
        };
        if key.is_null() {
            return Ok(());
        }
        match row {
            Some(row) => {
                if !rows.contains_key(&key.to_csv()) && rows.len() >= executor::MAX_STORE_ENTRIES {
                    return Err(format!(
                        "table {table} would hold more than {} rows; ksim bounds its state there",
                        executor::MAX_STORE_ENTRIES
                    ));
                }
                rows.insert(key.to_csv(), row);
            }
            None => {
                rows.remove(&key.to_csv());
            }
        }
        Ok(())
    }

    /// A declared table's rows, by key.
    pub fn table_rows(&self, table: &str) -> Vec<&[value::Value]> {
        self.tables.get(table).map(|rows| rows.values().map(Vec::as_slice).collect()).unwrap_or_default()
    }

    /// Flush every aggregation's record cache (a commit): the rows and store writes it held
    /// back, in each query's flush order.
    pub fn flush(&mut self) -> Step {
        let mut step = Step::default();
        for (index, query) in self.queries.iter_mut().enumerate() {
            let out = query.flush_cache();
            step.rows.extend(out.rows.into_iter().map(|r| (index, r)));
            step.changelog.extend(out.changelog.into_iter().map(|w| (index, w)));
        }
        step
    }

    /// Feed one record of the declared source `source`. Queries run in statement order; the rows a
    /// query writes to a stream feed the queries that read that stream. A record of a declared
    /// table updates the table (what later stream records join) and emits nothing.
    pub fn process(&mut self, source: &str, record: Record) -> Result<Step, String> {
        let Some(declared) = self.inputs().find(|s| s.name == source) else {
            return Err(format!("no declared source named {source}"));
        };
        if declared.kind == SourceKind::Table {
            let key = declared.columns.iter().position(|c| c.key).and_then(|i| record.values.get(i).cloned());
            self.table_put(source, &key.unwrap_or(value::Value::Null), Some(record.values))?;
            return Ok(Step::default());
        }
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
                let out = query.process(&record, &self.tables)?;
                if out.unjoined {
                    step.unjoined.push(index);
                }
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

    const ORDERS: &str = "CREATE STREAM orders (customer STRING KEY, item STRING, ts BIGINT)
           WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', TIMESTAMP='ts');
         CREATE TABLE customers (id STRING PRIMARY KEY, name STRING, tier STRING)
           WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON');";

    fn order(ts: i64, customer: Option<&str>, item: &str) -> Record {
        let key = customer.map_or(Value::Null, |c| Value::String(c.into()));
        Record { rowtime: ts, values: vec![key, Value::String(item.into()), Value::Int(ts)] }
    }

    fn customer(id: &str, name: &str, tier: &str) -> Record {
        Record {
            rowtime: 0,
            values: vec![Value::String(id.into()), Value::String(name.into()), Value::String(tier.into())],
        }
    }

    fn values(step: &Step) -> Vec<Vec<Value>> {
        step.rows.iter().map(|(_, r)| r.key.iter().chain(r.value.iter().flatten()).cloned().collect()).collect()
    }

    /// `KStreamKTableJoinProcessor`: the stream drives the join, the table is read as it stands
    /// when the stream record is processed, and a table update emits nothing.
    #[test]
    fn a_stream_table_join_reads_the_table_as_of_processing_time() {
        let s = |v: &str| Value::String(v.into());
        let mut engine = Engine::new(
            &format!(
                "{ORDERS} CREATE STREAM enriched AS SELECT o.customer, o.item, c.name, c.tier
                   FROM orders o JOIN customers c ON o.customer = c.id;"
            ),
            ExecConfig::default(),
        )
        .unwrap();
        let output: Vec<&str> = engine.output(0).columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(output, ["CUSTOMER", "ITEM", "NAME", "TIER"]);
        // No customer row yet: the inner join emits nothing.
        let step = engine.process("ORDERS", order(1_000, Some("c1"), "book")).unwrap();
        assert_eq!((step.rows.len(), step.unjoined.as_slice()), (0, &[0][..]));
        assert_eq!(engine.process("CUSTOMERS", customer("c1", "Alice", "silver")).unwrap(), Step::default());
        let step = engine.process("ORDERS", order(2_000, Some("c1"), "lamp")).unwrap();
        assert_eq!(values(&step), [vec![s("c1"), s("lamp"), s("Alice"), s("silver")]]);
        assert_eq!(step.rows[0].1.rowtime, 2_000, "the result carries the stream record's timestamp");
        // The customer is upgraded between two orders: the next order sees gold, the earlier
        // result is not revised.
        engine.process("CUSTOMERS", customer("c1", "Alice", "gold")).unwrap();
        let step = engine.process("ORDERS", order(3_000, Some("c1"), "desk")).unwrap();
        assert_eq!(values(&step), [vec![s("c1"), s("desk"), s("Alice"), s("gold")]]);
        // A tombstone deletes the row.
        engine.table_put("CUSTOMERS", &s("c1"), None).unwrap();
        assert!(engine.process("ORDERS", order(4_000, Some("c1"), "pen")).unwrap().rows.is_empty());
        assert!(engine.process("ORDERS", order(5_000, None, "pen")).unwrap().rows.is_empty());
    }

    #[test]
    fn a_left_join_emits_every_stream_row_with_nulls_where_the_table_has_none() {
        let s = |v: &str| Value::String(v.into());
        let mut engine = Engine::new(
            &format!("{ORDERS} CREATE STREAM enriched AS SELECT * FROM orders LEFT JOIN customers ON customer = id;"),
            ExecConfig::default(),
        )
        .unwrap();
        let output: Vec<&str> = engine.output(0).columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            output,
            ["ORDERS_CUSTOMER", "ORDERS_ITEM", "ORDERS_TS", "CUSTOMERS_ID", "CUSTOMERS_NAME", "CUSTOMERS_TIER"]
        );
        let step = engine.process("ORDERS", order(1_000, Some("c1"), "book")).unwrap();
        assert_eq!(values(&step), [vec![s("c1"), s("book"), Value::Int(1_000), Value::Null, Value::Null, Value::Null]]);
        // KIP-962: a left join keeps a record with a NULL key.
        let step = engine.process("ORDERS", order(2_000, None, "pen")).unwrap();
        assert_eq!(step.rows.len(), 1);
    }

    #[test]
    fn joins_ksim_does_not_model_are_refused_with_the_reason() {
        let refuse =
            |query: &str| Engine::new(&format!("{ORDERS} {query}"), ExecConfig::default()).err().unwrap().to_string();
        let err = refuse("CREATE STREAM e AS SELECT o.customer, item FROM orders o JOIN customers c ON o.item = c.id;");
        assert!(err.contains("ksqlDB would repartition the stream"), "{err}");
        let err = refuse("CREATE STREAM e AS SELECT o.customer FROM orders o JOIN customers c ON o.customer = c.name;");
        assert!(err.starts_with("line 4:"), "{err}");
        assert!(err.contains("Cannot repartition a TABLE source") && err.contains("key column ID"), "{err}");
        let err = refuse("CREATE STREAM e AS SELECT item FROM orders o JOIN customers c ON o.customer = c.id;");
        assert!(err.contains("must include the join expression O.CUSTOMER"), "{err}");
        let err =
            refuse("CREATE STREAM e AS SELECT o.customer, ts, ts FROM orders o JOIN customers c ON o.customer = c.id;");
        assert!(err.contains("Duplicate"), "{err}");
        let err =
            refuse("CREATE STREAM e AS SELECT o.customer, x.name FROM orders o JOIN customers c ON o.customer = c.id;");
        assert!(err.contains("'X.NAME' cannot be resolved"), "{err}");
        let err =
            refuse("CREATE STREAM e AS SELECT o.customer FROM orders o JOIN orders p ON o.customer = p.customer;");
        assert!(err.contains("is a STREAM"), "{err}");
        let err =
            refuse("CREATE STREAM e AS SELECT o.customer FROM orders o RIGHT JOIN customers c ON o.customer = c.id;");
        assert!(err.contains("RIGHT and FULL"), "{err}");
        // The table's key column is the join key too: selecting it keys the result.
        let engine = Engine::new(
            &format!(
                "{ORDERS} CREATE STREAM e AS SELECT c.id, item FROM orders o JOIN customers c ON c.id = o.customer;"
            ),
            ExecConfig::default(),
        )
        .unwrap();
        assert!(engine.output(0).columns[0].key);
        assert_eq!(engine.output(0).columns[0].name, "ID");
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
