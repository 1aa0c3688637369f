//! `ksim ksql [--input SOURCE=FILE.csv]... [--sink NAME] [--cache-bytes N]
//! [--commit-interval-ms N] 'STATEMENTS'`: run ksqlDB statements over a few records and print
//! what ksqlDB would emit.
//!
//! stdout is CSV for one sink (by default the last persistent query's): a header (`ROWTIME`, the
//! key columns, `WINDOWSTART` and `WINDOWEND` for a windowed result, the value columns in SELECT
//! order), then one line per emitted row in emission order; a tombstone shows `TOMBSTONE` in
//! place of its value columns. stderr gets one line per record a window refused as late. An
//! error in the statements is ksqlDB's message at its `line:column`.
//!
//! The engine is `ksim_cluster::ksql`; this file reads the CSV inputs, merges them and prints.

use ksim_cluster::ksql::value::{csv_field, Value};
use ksim_cluster::ksql::{Engine, ExecConfig, Record};
use std::fmt::Write as _;
use std::path::Path;

/// Bytes per input file and records per run: bounds on what a run reads and keeps.
const MAX_FILE_BYTES: u64 = 64 << 20;
const MAX_RECORDS: usize = 1_000_000;

const EXAMPLES: &str = "\
Examples:
  # The talk's fraud query, as a TABLE (a windowed aggregation produces a table):
  ksim ksql --input examples/ksql/attempts.csv \"
    CREATE STREAM authorization_attempts (card_number STRING KEY, amount DOUBLE)
      WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON');
    CREATE TABLE possible_fraud AS
      SELECT card_number, COUNT(*) FROM authorization_attempts
      WINDOW TUMBLING (SIZE 5 MINUTES)
      GROUP BY card_number HAVING COUNT(*) > 3;\"

  # A stream-table join: each order reads its customer's row as the table stands at the
  # order's ROWTIME (inputs merge by ROWTIME); a customer row emits nothing by itself:
  ksim ksql --input orders=examples/ksql/orders.csv --input customers=examples/ksql/customers.csv \"
    CREATE STREAM orders (customer STRING KEY, item STRING, amount INT)
      WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');
    CREATE TABLE customers (id STRING PRIMARY KEY, name STRING, tier STRING)
      WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON');
    CREATE STREAM orders_enriched AS SELECT o.customer, o.item, c.name, c.tier
      FROM orders o LEFT JOIN customers c ON o.customer = c.id;\"

Input CSV: a header `ROWTIME,<the source's columns>` (key columns by name), then one record per
line; an empty field is NULL. Records are processed in file order; several inputs are merged by
ROWTIME (ties in argument order).";

/// Run ksqlDB statements over records and print what ksqlDB would emit.
///
/// Windows are aligned to the epoch, start inclusive and end exclusive; stream time is the
/// largest ROWTIME the query has seen (one input is one task); a record is dropped once its
/// window's end + grace <= stream time. Without GRACE PERIOD the grace is ksqlDB's: 24 h minus
/// the window size under EMIT CHANGES, zero under EMIT FINAL. Nothing is flushed at the end of
/// the input: a window stream time has not closed emits nothing under EMIT FINAL.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
#[command(after_long_help = EXAMPLES)]
pub struct KsqlArgs {
    /// Records for a declared source, `SOURCE=FILE.csv`; a bare `FILE.csv` feeds the one source
    /// the statements declare. Repeat for each source.
    #[arg(long = "input", value_name = "SOURCE=FILE.csv")]
    pub inputs: Vec<String>,

    /// The sink to print (a `CREATE ... AS SELECT` name). Defaults to the last persistent query's.
    #[arg(long, value_name = "NAME")]
    pub sink: Option<String>,

    /// ksqlDB's `cache.max.bytes.buffering`: the record cache that coalesces updates of one window
    /// between commits, shared among ksqlDB's 4 stream threads. 0 (the default, as ksqlDB's own
    /// tests run) forwards every update. Entry sizes are estimates.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub cache_bytes: u64,

    /// ksqlDB's `commit.interval.ms`: a commit flushes the cache. The clock is the current
    /// record's ROWTIME.
    #[arg(long, value_name = "N", default_value_t = ksim_cluster::ksql::executor::DEFAULT_COMMIT_INTERVAL_MS as u64)]
    pub commit_interval_ms: u64,

    /// The statements, each ended by `;`.
    pub statements: String,
}

/// What `ksim ksql` prints: stdout and stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
}

/// Run the statements over the inputs. `Err` is the message to print (exit status 1).
pub fn run(args: &KsqlArgs) -> Result<Printed, String> {
    let config = ExecConfig {
        cache_max_bytes: args.cache_bytes,
        commit_interval_ms: i64::try_from(args.commit_interval_ms)
            .map_err(|_| format!("--commit-interval-ms {} is too large", args.commit_interval_ms))?,
        ..ExecConfig::default()
    };
    let mut engine = Engine::new(&args.statements, config).map_err(|e| e.to_string())?;
    let query = pick_sink(&engine, args.sink.as_deref())?;

    let mut inputs: Vec<(String, Vec<Record>)> = Vec::new();
    for arg in &args.inputs {
        let (source, file) = input_target(&engine, arg)?;
        let records = read_csv(&engine, &source, Path::new(&file))?;
        inputs.push((source, records));
    }
    if inputs.iter().map(|(_, r)| r.len()).sum::<usize>() > MAX_RECORDS {
        return Err(format!("more than {MAX_RECORDS} records in all: ksim ksql is for a handful"));
    }

    let output = engine.output(query).clone();
    let mut printed = Printed { stdout: header(&output), stderr: String::new() };
    for (source, record) in merge(inputs) {
        let step = engine.process(&source, record)?;
        for (_, row) in step.rows.iter().filter(|(q, _)| *q == query) {
            let mut fields = vec![row.rowtime.to_string()];
            fields.extend(row.key.iter().map(Value::to_csv));
            if let Some((start, end)) = row.window {
                fields.push(start.to_string());
                fields.push(end.to_string());
            }
            match &row.value {
                Some(values) => fields.extend(values.iter().map(Value::to_csv)),
                None => fields.push("TOMBSTONE".into()),
            }
            let _ = writeln!(printed.stdout, "{}", fields.join(","));
        }
        for (_, late) in step.late.iter().filter(|(q, _)| *q == query) {
            let key: Vec<String> = late.key.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                printed.stderr,
                "dropped: ROWTIME={} key={}: window [{},{}) closed at stream time {} (grace {} ms)",
                late.rowtime,
                key.join(","),
                late.window.0,
                late.window.1,
                late.stream_time,
                late.grace_ms
            );
        }
    }
    Ok(printed)
}

/// The query whose rows are printed: `--sink`, else the last persistent query, else the last
/// transient `SELECT`.
fn pick_sink(engine: &Engine, sink: Option<&str>) -> Result<usize, String> {
    let queries = &engine.analyzed().queries;
    let persistent: Vec<usize> = (0..queries.len()).filter(|&i| queries[i].persistent).collect();
    match sink {
        Some(name) => {
            let wanted =
                if name.starts_with('`') { name.trim_matches('`').to_string() } else { name.to_ascii_uppercase() };
            persistent.iter().copied().find(|&i| queries[i].output.name == wanted).ok_or_else(|| {
                let names: Vec<&str> = persistent.iter().map(|&i| queries[i].output.name.as_str()).collect();
                if names.is_empty() {
                    format!("--sink {name}: the statements create no sink (no CREATE ... AS SELECT)")
                } else {
                    format!("--sink {name}: no such sink; the statements create {}", names.join(", "))
                }
            })
        }
        None => persistent.last().copied().or_else(|| queries.len().checked_sub(1)).ok_or_else(|| {
            "the statements run no query (CREATE ... AS SELECT, or SELECT ... EMIT CHANGES): nothing to print"
                .to_string()
        }),
    }
}

/// `SOURCE=FILE` or, with one declared source, `FILE`.
fn input_target(engine: &Engine, arg: &str) -> Result<(String, String), String> {
    if let Some((name, file)) = arg.split_once('=') {
        let upper = name.to_ascii_uppercase();
        if let Some(source) = engine.inputs().find(|s| s.name == upper || s.name == name) {
            return Ok((source.name.clone(), file.to_string()));
        }
    }
    let declared: Vec<&str> = engine.inputs().map(|s| s.name.as_str()).collect();
    match declared.as_slice() {
        [only] => Ok((only.to_string(), arg.to_string())),
        [] => Err(format!("--input {arg}: the statements declare no source (CREATE STREAM name (columns) WITH (...))")),
        many => Err(format!(
            "--input {arg}: name the source it feeds, SOURCE=FILE.csv; the statements declare {}",
            many.join(", ")
        )),
    }
}

/// The header line: ROWTIME, key columns, window bounds, value columns.
fn header(output: &ksim_cluster::ksql::plan::Source) -> String {
    let mut names = vec!["ROWTIME".to_string()];
    names.extend(output.key_columns().map(|c| csv_field(&c.name)));
    if output.windowed {
        names.push("WINDOWSTART".into());
        names.push("WINDOWEND".into());
    }
    names.extend(output.value_columns().map(|c| csv_field(&c.name)));
    names.join(",") + "\n"
}

/// Read one CSV input for `source`: header `ROWTIME,<columns>`, values parsed by declared type.
fn read_csv(engine: &Engine, source: &str, path: &Path) -> Result<Vec<Record>, String> {
    let shown = path.display();
    let size = std::fs::metadata(path).map_err(|e| format!("{shown}: cannot read: {e}"))?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("{shown}: {size} bytes; ksim ksql reads at most {MAX_FILE_BYTES} per file"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let declared = engine.inputs().find(|s| s.name == source).expect("input_target found it");
    let mut lines =
        csv_records(&text).map_err(|(line, column, m)| format!("{shown}:{line}:{column}: {m}"))?.into_iter();
    let Some((_, header)) = lines.next() else {
        return Err(format!("{shown}:1:1: empty file: expected a header `ROWTIME,{}`", column_list(declared)));
    };
    let expected_header = || format!("expected a header `ROWTIME,{}`", column_list(declared));
    if header.first().map(|(_, f)| f.trim().to_ascii_uppercase()) != Some("ROWTIME".into()) {
        return Err(format!("{shown}:1:1: {}", expected_header()));
    }
    // Which source column each CSV field holds (the header names them, in any order).
    let mut order = Vec::new();
    for (column, name) in &header[1..] {
        let upper = name.trim().to_ascii_uppercase();
        let Some(i) = declared.columns.iter().position(|c| c.name == upper || c.name == name.trim()) else {
            return Err(format!(
                "{shown}:1:{column}: `{}` is not a column of {source}; {}",
                name.trim(),
                expected_header()
            ));
        };
        if order.contains(&i) {
            return Err(format!("{shown}:1:{column}: `{}` appears twice", name.trim()));
        }
        order.push(i);
    }
    if order.len() != declared.columns.len() {
        let missing: Vec<&str> = (0..declared.columns.len())
            .filter(|i| !order.contains(i))
            .map(|i| declared.columns[i].name.as_str())
            .collect();
        return Err(format!("{shown}:1:1: the header lacks {}; {}", missing.join(", "), expected_header()));
    }
    let mut records = Vec::new();
    for (line, fields) in lines {
        if fields.len() != header.len() {
            return Err(format!("{shown}:{line}:1: {} fields, but the header has {}", fields.len(), header.len()));
        }
        let (column, rowtime) = &fields[0];
        let rowtime: i64 = match rowtime.trim().parse() {
            Ok(t) if t >= 0 => t,
            _ => {
                return Err(format!(
                    "{shown}:{line}:{column}: field ROWTIME: expected a timestamp in milliseconds (a whole number >= 0), found {rowtime:?}"
                ))
            }
        };
        let mut values = vec![Value::Null; declared.columns.len()];
        for ((column, field), &i) in fields[1..].iter().zip(&order) {
            let c = &declared.columns[i];
            values[i] =
                Value::parse(field, c.ty).map_err(|m| format!("{shown}:{line}:{column}: field {}: {m}", c.name))?;
        }
        records.push(Record { rowtime, values });
        if records.len() > MAX_RECORDS {
            return Err(format!("{shown}: more than {MAX_RECORDS} records: ksim ksql is for a handful"));
        }
    }
    Ok(records)
}

fn column_list(source: &ksim_cluster::ksql::plan::Source) -> String {
    source.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",")
}

/// A CSV record: its line number, and each field with the column it starts at.
type CsvLine = (usize, Vec<(usize, String)>);

/// Split CSV text into records (RFC 4180: `"` quotes a field, `""` is a quote inside one).
/// Blank lines are skipped. `Err` is (line, column, what is wrong).
fn csv_records(text: &str) -> Result<Vec<CsvLine>, (usize, usize, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut column) = (1usize, 1usize);
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut field_column = column;
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err((line, column, "a quoted field has no closing quote".into()));
                }
                break;
            };
            column += 1;
            if quoted {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        column += 1;
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                } else {
                    if c == '\n' {
                        line += 1;
                        column = 1;
                    }
                    field.push(c);
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                ',' => {
                    fields.push((field_column, std::mem::take(&mut field)));
                    field_column = column;
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    column = 1;
                    break;
                }
                '"' => return Err((line, column - 1, "a quote inside an unquoted field".into())),
                other => field.push(other),
            }
        }
        fields.push((field_column, field));
        let blank = fields.len() == 1 && fields[0].1.trim().is_empty() && !was_quoted;
        if !blank {
            out.push((start_line, fields));
        }
    }
    Ok(out)
}

/// Merge the inputs by ROWTIME, each in its own order; ties go to the earlier argument. (Kafka
/// Streams' `PartitionGroup` likewise picks the partition whose next record is oldest.)
fn merge(inputs: Vec<(String, Vec<Record>)>) -> Vec<(String, Record)> {
    let mut queues: Vec<(String, std::collections::VecDeque<Record>)> =
        inputs.into_iter().map(|(s, r)| (s, r.into())).collect();
    let mut out = Vec::new();
    loop {
        let next = queues.iter().enumerate().filter_map(|(i, (_, q))| q.front().map(|r| (r.rowtime, i))).min();
        let Some((_, i)) = next else { return out };
        let record = queues[i].1.pop_front().expect("has a front");
        out.push((queues[i].0.clone(), record));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_may_be_quoted_and_blank_lines_are_skipped() {
        let lines = csv_records("ROWTIME,A\n\n1,\"x,\"\"y\"\"\"\r\n2,\n").unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], (3, vec![(1, "1".to_string()), (3, "x,\"y\"".to_string())]));
        assert_eq!(lines[2], (4, vec![(1, "2".to_string()), (3, String::new())]));
    }

    #[test]
    fn an_unclosed_quote_is_an_error_with_its_line() {
        let err = csv_records("ROWTIME,A\n1,\"open\n").unwrap_err();
        assert_eq!(err.0, 3);
        assert!(err.2.contains("closing quote"));
    }

    #[test]
    fn inputs_merge_by_rowtime_with_ties_in_argument_order() {
        let rec = |t| Record { rowtime: t, values: vec![] };
        let merged = merge(vec![("A".into(), vec![rec(5), rec(1)]), ("B".into(), vec![rec(1), rec(5)])]);
        let order: Vec<(String, i64)> = merged.into_iter().map(|(s, r)| (s, r.rowtime)).collect();
        // A's 5 comes before its 1 (file order), B's 1 is older than A's 5, A wins the tie at 5.
        assert_eq!(order, [("B".into(), 1), ("A".into(), 5), ("A".into(), 1), ("B".into(), 5)]);
    }
}
