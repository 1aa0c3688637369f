//! `ksim ksql` against ksqlDB's own cases. Each test names the ksqlDB file (and test case) it
//! follows: the documented worked example in `docs/concepts/time-and-windows-in-ksqldb-queries.md`,
//! and the query-validation tests in
//! `ksqldb-functional-tests/src/test/resources/query-validation-tests/` (`tumbling-windows.json`,
//! `having.json`, `suppress.json`), plus the engine test for the CREATE STREAM refusal.
//!
//! ksqlDB's tests feed records as JSON or DELIMITED values with a Kafka key and timestamp; here the
//! same records are CSV (`ROWTIME`, then the columns), and the expected outputs are the tests'
//! `outputs`, printed as `ksim ksql` prints them (ROWTIME, key, WINDOWSTART, WINDOWEND, values).
//! A record in those tests without a `timestamp` has timestamp 0.

use std::path::PathBuf;
use std::process::Command;

struct Run {
    stdout: String,
    stderr: String,
    ok: bool,
}

/// Run `ksim ksql` with the statements, one `--input SOURCE=FILE` per CSV, and extra arguments.
fn ksql(test: &str, statements: &str, inputs: &[(&str, &str)], extra: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ksim"));
    command.arg("ksql");
    let mut files: Vec<PathBuf> = Vec::new();
    for (i, (source, csv)) in inputs.iter().enumerate() {
        let path = std::env::temp_dir().join(format!("ksim-ksql-{test}-{i}-{}.csv", std::process::id()));
        std::fs::write(&path, csv).expect("write a temporary CSV");
        command.arg("--input").arg(format!("{source}={}", path.display()));
        files.push(path);
    }
    let output = command.args(extra).arg(statements).output().expect("run ksim");
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    let run = Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        ok: output.status.success(),
    };
    let code = output.status.code();
    assert!(code == Some(0) || code == Some(1), "ksim ksql exits 0 or 1, got {code:?}: {}", run.stderr);
    run
}

fn ok(run: Run) -> (String, String) {
    assert!(run.ok, "ksim ksql failed:\n{}", run.stderr);
    (run.stdout, run.stderr)
}

fn lines(text: &str) -> String {
    text.lines().map(|l| format!("{}\n", l.trim())).filter(|l| l != "\n").collect()
}

// ---------------------------------------------------------------------------------------------
// docs/concepts/time-and-windows-in-ksqldb-queries.md, "Window emission"
// ---------------------------------------------------------------------------------------------

const ORDERS: &str = "CREATE STREAM orders (order_zipcode STRING KEY, orderId STRING) \
    WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');";

/// The documented worked example: five-minute tumbling windows with a one-minute grace. Times
/// are 12h00mn02s ... as milliseconds after the epoch (12:00:00 is 43 200 000). ksqlDB's
/// `from_unixtime` is left out: WINDOWSTART and WINDOWEND are printed anyway.
///
/// Message 5 (12:04:00) arrives after message 4 (12:05:30) has moved stream time past its window's
/// end, and is still counted: 12:05 + 1 minute of grace > 12:05:30. The documentation's table
/// gives message 6 (zip 98041, 12:06:10) a count of 2, which only a sixth record of zip 94041
/// could have: 98041's first record counts 1, as below.
#[test]
fn docs_tumbling_window_with_grace_period_worked_example() {
    let query = format!(
        "{ORDERS} CREATE TABLE orders_per_zip AS SELECT order_zipcode, MAX(ROWTIME) AS window_emit, \
         COUNT(orderId) AS number_of_orders FROM orders \
         WINDOW TUMBLING (SIZE 5 minute, GRACE PERIOD 1 minute) GROUP BY order_zipcode EMIT CHANGES;"
    );
    let csv = "ROWTIME,ORDER_ZIPCODE,ORDERID\n\
               43202000,94041,100_1\n\
               43283000,94041,100_2\n\
               43380000,94041,100_3\n\
               43530000,94041,100_4\n\
               43440000,94041,100_5\n\
               43570000,98041,100_6\n";
    let (stdout, stderr) = ok(ksql("docs", &query, &[("ORDERS", csv)], &[]));
    assert_eq!(
        stdout,
        "ROWTIME,ORDER_ZIPCODE,WINDOWSTART,WINDOWEND,WINDOW_EMIT,NUMBER_OF_ORDERS\n\
         43202000,94041,43200000,43500000,43202000,1\n\
         43283000,94041,43200000,43500000,43283000,2\n\
         43380000,94041,43200000,43500000,43380000,3\n\
         43530000,94041,43500000,43800000,43530000,1\n\
         43440000,94041,43200000,43500000,43440000,4\n\
         43570000,98041,43500000,43800000,43570000,1\n"
    );
    assert_eq!(stderr, "");
}

/// The worked example one record further: at stream time 12:06:10 the 12:00-12:05 window closed
/// (12:05 + 1 minute <= 12:06:10), so a 12:01:00 record for it is dropped.
#[test]
fn docs_worked_example_a_record_after_the_grace_period_is_dropped() {
    let query = format!(
        "{ORDERS} CREATE TABLE orders_per_zip AS SELECT order_zipcode, COUNT(orderId) AS number_of_orders \
         FROM orders WINDOW TUMBLING (SIZE 5 minutes, GRACE PERIOD 1 minutes) GROUP BY order_zipcode;"
    );
    let csv = "ROWTIME,ORDER_ZIPCODE,ORDERID\n43530000,94041,100_4\n43570000,98041,100_6\n43260000,94041,100_7\n";
    let (stdout, stderr) = ok(ksql("docs-late", &query, &[("orders", csv)], &[]));
    assert_eq!(
        stdout,
        "ROWTIME,ORDER_ZIPCODE,WINDOWSTART,WINDOWEND,NUMBER_OF_ORDERS\n\
         43530000,94041,43500000,43800000,1\n\
         43570000,98041,43500000,43800000,1\n"
    );
    assert_eq!(
        stderr,
        "dropped: ROWTIME=43260000 key=94041: window [43200000,43500000) closed at stream time 43570000 (grace 60000 ms)\n"
    );
}

// ---------------------------------------------------------------------------------------------
// tumbling-windows.json
// ---------------------------------------------------------------------------------------------

const TEST_ID_VALUE: &str =
    "CREATE STREAM TEST (ID BIGINT KEY, VALUE bigint) WITH (kafka_topic='test_topic', value_format='DELIMITED');";

const OUT_OF_ORDER: &str = "ROWTIME,ID,VALUE\n\
    0,0,0\n89999,0,1\n10009,0,5\n90000,0,0\n10010,0,6\n10009,1,100\n30000,1,101\n86412022,1,200\n60000,1,200\n";

/// tumbling-windows.json, "out of order - no grace period": without GRACE PERIOD the grace is
/// 24 h less the window size, so every late record still lands (even 60000 after stream time
/// 86412022: its window ends at 90000 > 86412022 - 86370000). Unaliased `max(value)` is
/// KSQL_COL_0.
#[test]
fn tumbling_windows_out_of_order_no_grace_period() {
    let query = format!("{TEST_ID_VALUE} CREATE TABLE S2 as SELECT ID, max(value) FROM test WINDOW TUMBLING (SIZE 30 SECONDS) group by id;");
    let (stdout, stderr) = ok(ksql("tumbling-no-grace", &query, &[("TEST", OUT_OF_ORDER)], &[]));
    assert_eq!(
        stdout,
        "ROWTIME,ID,WINDOWSTART,WINDOWEND,KSQL_COL_0\n\
         0,0,0,30000,0\n\
         89999,0,60000,90000,1\n\
         10009,0,0,30000,5\n\
         90000,0,90000,120000,0\n\
         10010,0,0,30000,6\n\
         10009,1,0,30000,100\n\
         30000,1,30000,60000,101\n\
         86412022,1,86400000,86430000,200\n\
         60000,1,60000,90000,200\n"
    );
    assert_eq!(stderr, "");
}

/// tumbling-windows.json, "out of order - explicit grace period": GRACE PERIOD 1 MINUTE. Stream
/// time is the task's, not the key's: key 1's record at 10009 is dropped because key 0 moved
/// stream time to 90000.
#[test]
fn tumbling_windows_out_of_order_explicit_grace_period() {
    let query = format!(
        "{TEST_ID_VALUE} CREATE TABLE S2 as SELECT ID, max(value) FROM test \
         WINDOW TUMBLING (SIZE 30 SECONDS, GRACE PERIOD 1 MINUTE) group by id;"
    );
    let (stdout, stderr) = ok(ksql("tumbling-grace", &query, &[("TEST", OUT_OF_ORDER)], &[]));
    assert_eq!(
        stdout,
        "ROWTIME,ID,WINDOWSTART,WINDOWEND,KSQL_COL_0\n\
         0,0,0,30000,0\n\
         89999,0,60000,90000,1\n\
         10009,0,0,30000,5\n\
         90000,0,90000,120000,0\n\
         30000,1,30000,60000,101\n\
         86412022,1,86400000,86430000,200\n"
    );
    assert_eq!(
        stderr,
        "dropped: ROWTIME=10010 key=0: window [0,30000) closed at stream time 90000 (grace 60000 ms)\n\
         dropped: ROWTIME=10009 key=1: window [0,30000) closed at stream time 90000 (grace 60000 ms)\n\
         dropped: ROWTIME=60000 key=1: window [60000,90000) closed at stream time 86412022 (grace 60000 ms)\n"
    );
}

/// The default grace with EMIT CHANGES is ksqlDB's `max(24 h - size, 0)`
/// (`StreamAggregateBuilder.defaultGrace`): a 30-second window starting at 0 closes at stream
/// time 30000 + 86370000.
#[test]
fn tumbling_windows_default_grace_is_a_day_less_the_window_size() {
    let query = format!("{TEST_ID_VALUE} CREATE TABLE S2 as SELECT ID, count(*) AS C FROM test WINDOW TUMBLING (SIZE 30 SECONDS) group by id;");
    let csv = "ROWTIME,ID,VALUE\n86399999,0,1\n0,0,1\n86400000,0,1\n1,0,1\n";
    let (stdout, stderr) = ok(ksql("default-grace", &query, &[("TEST", csv)], &[]));
    assert_eq!(
        stdout,
        "ROWTIME,ID,WINDOWSTART,WINDOWEND,C\n\
         86399999,0,86370000,86400000,1\n\
         0,0,0,30000,1\n\
         86400000,0,86400000,86430000,1\n"
    );
    assert_eq!(
        stderr,
        "dropped: ROWTIME=1 key=0: window [0,30000) closed at stream time 86400000 (grace 86370000 ms)\n"
    );
}

// ---------------------------------------------------------------------------------------------
// having.json
// ---------------------------------------------------------------------------------------------

const TEST_ID_NAME_VALUE: &str =
    "CREATE STREAM TEST (ID BIGINT KEY, NAME varchar, VALUE bigint) WITH (kafka_topic='test_topic', value_format='DELIMITED');";

/// having.json, "table having": once the sum no longer exceeds 100 the row is retracted with a
/// tombstone; key 0 never passed, so it emits nothing at all.
#[test]
fn having_table_having_emits_a_tombstone_when_it_stops_holding() {
    let query = format!(
        "{TEST_ID_NAME_VALUE} CREATE TABLE T1 as select id, sum(value) as sum from test \
         WINDOW TUMBLING (SIZE 30 SECONDS) group by id HAVING sum(value) > 100;"
    );
    let csv = "ROWTIME,ID,NAME,VALUE\n0,0,zero,0\n0,1,one,101\n0,1,one,-5\n";
    let (stdout, _) = ok(ksql("having", &query, &[("TEST", csv)], &[]));
    assert_eq!(stdout, "ROWTIME,ID,WINDOWSTART,WINDOWEND,SUM\n0,1,0,30000,101\n0,1,0,30000,TOMBSTONE\n");
}

/// having.json, "calculate average in having": an unwindowed aggregation; BIGINT division
/// truncates.
#[test]
fn having_calculate_average_in_having() {
    let query = format!(
        "{TEST_ID_NAME_VALUE} CREATE TABLE AVG AS select id, sum(value)/count(id) as avg from test \
         GROUP BY id HAVING sum(value)/count(id)> 25;"
    );
    let csv = "ROWTIME,ID,NAME,VALUE\n0,0,zero,50\n0,0,zero,10\n0,0,zero,15\n0,1,one,100\n0,1,one,10\n";
    let (stdout, _) = ok(ksql("having-avg", &query, &[("TEST", csv)], &[]));
    assert_eq!(stdout, "ROWTIME,ID,AVG\n0,0,50\n0,0,30\n0,0,TOMBSTONE\n0,1,100\n0,1,55\n");
}

// ---------------------------------------------------------------------------------------------
// suppress.json (EMIT FINAL)
// ---------------------------------------------------------------------------------------------

const INPUT: &str =
    "CREATE STREAM INPUT (ID STRING KEY, COL1 STRING) WITH (kafka_topic='input_topic',value_format='JSON');";

fn emit_final(test: &str, window: &str, rowtimes_and_keys: &[(i64, &str)]) -> (String, String) {
    let query = format!("{INPUT} CREATE TABLE OUTPUT AS SELECT ID, COUNT(*) as COUNT FROM INPUT WINDOW {window} GROUP BY ID EMIT FINAL;");
    let mut csv = String::from("ROWTIME,ID,COL1\n");
    for (t, k) in rowtimes_and_keys {
        csv.push_str(&format!("{t},{k},v1\n"));
    }
    ok(ksql(test, &query, &[("INPUT", &csv)], &[]))
}

const HEADER: &str = "ROWTIME,ID,WINDOWSTART,WINDOWEND,COUNT\n";

/// suppress.json, "should emit final result immediately at window end if grace is specified as
/// zero" and "should not emit final result before window end if grace is specified as zero".
#[test]
fn suppress_grace_zero_emits_at_window_end_and_not_before() {
    let (stdout, _) = emit_final(
        "final-zero",
        "TUMBLING (SIZE 2 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS)",
        &[(0, "k1"), (1, "k1"), (2, "k1")],
    );
    assert_eq!(stdout, format!("{HEADER}1,k1,0,2,2\n"));
    let (stdout, _) = emit_final(
        "final-zero-before",
        "TUMBLING (SIZE 2 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS)",
        &[(0, "k1"), (1, "k1")],
    );
    assert_eq!(stdout, HEADER, "nothing is flushed at the end of the input");
}

/// suppress.json, "should emit at window end if no grace period given" and "should not emit
/// before window end if no grace period given": under EMIT FINAL the default grace is zero
/// (`RewrittenAnalysis.getWindowExpression`).
#[test]
fn suppress_without_grace_period_the_grace_is_zero() {
    let (stdout, _) = emit_final("final-default", "TUMBLING (SIZE 2 MILLISECONDS)", &[(0, "k1"), (1, "k1"), (2, "k1")]);
    assert_eq!(stdout, format!("{HEADER}1,k1,0,2,2\n"));
    let (stdout, _) = emit_final("final-default-before", "TUMBLING (SIZE 2 MILLISECONDS)", &[(0, "k1"), (1, "k1")]);
    assert_eq!(stdout, HEADER);
}

/// suppress.json, "should include out of order events before window end plus grace period
/// passes" and "should drop out of order event after window end plus grace period passes": the
/// window [0,2) takes the late records while open, but has left the store's retention (size +
/// grace = 3) by the time stream time 5 closes it, so only [2,4) is emitted.
#[test]
fn suppress_out_of_order_events_and_the_store_retention() {
    let window = "TUMBLING (SIZE 2 MILLISECONDS, GRACE PERIOD 1 MILLISECONDS)";
    let (stdout, stderr) =
        emit_final("final-ooo", window, &[(0, "k1"), (1, "k1"), (2, "k1"), (1, "k1"), (0, "k1"), (5, "k1")]);
    assert_eq!(stdout, format!("{HEADER}2,k1,2,4,1\n"));
    assert_eq!(stderr, "");
    let (stdout, stderr) = emit_final(
        "final-drop",
        window,
        &[(0, "k1"), (1, "k1"), (2, "k1"), (1, "k1"), (0, "k1"), (5, "k1"), (0, "k1")],
    );
    assert_eq!(stdout, format!("{HEADER}2,k1,2,4,1\n"));
    assert_eq!(stderr, "dropped: ROWTIME=0 key=k1: window [0,2) closed at stream time 5 (grace 1 ms)\n");
}

/// suppress.json, "should support final results for hopping windows".
#[test]
fn suppress_final_results_for_hopping_windows() {
    let (stdout, _) = emit_final(
        "final-hopping",
        "HOPPING (SIZE 5 MILLISECONDS,ADVANCE BY 2 MILLISECONDS, GRACE PERIOD 1 MILLISECONDS)",
        &[(0, "k1"), (1, "k1"), (2, "k1"), (1, "k1"), (6, "k1"), (5, "k1"), (10, "k1")],
    );
    assert_eq!(stdout, format!("{HEADER}2,k1,0,5,4\n6,k1,4,9,2\n"));
}

/// suppress.json, "should suppress multiple keys" and "should support final results for tumbling
/// windows with large jump" (every window leaves the store before it closes: nothing at all).
#[test]
fn suppress_multiple_keys_and_a_large_jump() {
    let (stdout, _) = emit_final(
        "final-keys",
        "TUMBLING (SIZE 2 MILLISECONDS, GRACE PERIOD 1 MILLISECONDS)",
        &[(0, "k1"), (1, "k2"), (2, "k1"), (1, "k1"), (0, "k2"), (5, "k1"), (0, "k1"), (2, "k2")],
    );
    assert_eq!(stdout, format!("{HEADER}2,k1,2,4,1\n"));
    let (stdout, _) = emit_final(
        "final-jump",
        "TUMBLING (SIZE 2 MILLISECONDS, GRACE PERIOD 2 MILLISECONDS)",
        &[(0, "k1"), (1, "k1"), (2, "k1"), (0, "k1"), (3, "k1"), (0, "k1"), (10, "k1"), (0, "k1"), (30, "k1")],
    );
    assert_eq!(stdout, HEADER);
}

// ---------------------------------------------------------------------------------------------
// The talk's query
// ---------------------------------------------------------------------------------------------

const ATTEMPTS: &str = "CREATE STREAM authorization_attempts (card_number STRING KEY, amount DOUBLE) \
    WITH (KAFKA_TOPIC='authorization_attempts', VALUE_FORMAT='JSON');";

/// ksqlDB's `EngineExecutor.validateResultType`, tested in `KsqlEngineTest`
/// (`shouldThrowWhenExecutingQueriesIfCsasCreatesTable`): a windowed aggregation produces a
/// TABLE, so the talk's query as written is refused, at the statement's start.
#[test]
fn the_talks_query_as_create_stream_is_refused_with_ksqldbs_message() {
    let query = format!(
        "{ATTEMPTS}\nCREATE STREAM possible_fraud AS SELECT card_number, count(*) FROM authorization_attempts \
         WINDOW TUMBLING (SIZE 5 MINUTE) GROUP BY card_number HAVING count(*) > 3;"
    );
    let run = ksql("refusal", &query, &[], &[]);
    assert!(!run.ok);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "error: line 2:1: Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead.\n"
    );
}

/// The talk's query as CREATE TABLE, on the attempts in examples/ksql/attempts.csv: card
/// 4111-1111's fourth and fifth attempts in the 00:00-00:05 window pass HAVING; a new window
/// starts over.
#[test]
fn the_talks_query_as_create_table_flags_the_fourth_attempt_in_five_minutes() {
    let query = format!(
        "{ATTEMPTS} CREATE TABLE possible_fraud AS SELECT card_number, count(*) FROM authorization_attempts \
         WINDOW TUMBLING (SIZE 5 MINUTE) GROUP BY card_number HAVING count(*) > 3;"
    );
    let csv = std::fs::read_to_string("examples/ksql/attempts.csv").expect("the example CSV");
    let (stdout, stderr) = ok(ksql("fraud", &query, &[("AUTHORIZATION_ATTEMPTS", &csv)], &[]));
    assert_eq!(
        stdout,
        "ROWTIME,CARD_NUMBER,WINDOWSTART,WINDOWEND,KSQL_COL_0\n\
         130000,4111-1111,0,300000,4\n\
         170000,4111-1111,0,300000,5\n"
    );
    assert_eq!(stderr, "");
}

// ---------------------------------------------------------------------------------------------
// The record cache and the commit interval (Kafka Streams' `NamedCache`, ksqlDB's defaults)
// ---------------------------------------------------------------------------------------------

/// With a cache big enough, updates of one window coalesce until a commit; the commit flushes
/// dirty windows in the order they were last updated. The clock is the record's ROWTIME, from the
/// first record: the commit at 2500 is the first 2000 ms after it.
#[test]
fn the_record_cache_coalesces_updates_until_the_commit_interval() {
    let query = format!("{INPUT} CREATE TABLE OUTPUT AS SELECT ID, COUNT(*) as COUNT FROM INPUT WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY ID;");
    let csv = "ROWTIME,ID,COL1\n0,k1,v\n500,k1,v\n1000,k1,v\n1500,k2,v\n2500,k1,v\n3000,k2,v\n";
    let (stdout, _) =
        ok(ksql("cache", &query, &[("INPUT", csv)], &["--cache-bytes", "10000000", "--commit-interval-ms", "2000"]));
    assert_eq!(stdout, format!("{HEADER}1500,k2,0,10000,1\n2500,k1,0,10000,4\n"));
    // Without a cache (the default) every update is emitted.
    let (stdout, _) = ok(ksql("no-cache", &query, &[("INPUT", csv)], &[]));
    assert_eq!(lines(&stdout).lines().count(), 7);
}

// ---------------------------------------------------------------------------------------------
// Errors: ksqlDB's messages at line:column
// ---------------------------------------------------------------------------------------------

#[test]
fn errors_name_the_line_and_column_with_ksqldbs_message() {
    let cases = [
        // `UnknownColumnException` (ColumnReferenceValidator).
        (
            format!("{ATTEMPTS}\nCREATE TABLE t AS SELECT card_numbr, COUNT(*) FROM authorization_attempts GROUP BY card_number;"),
            "line 2:26: SELECT column 'CARD_NUMBR' cannot be resolved.",
        ),
        // `DataSourceExtractor`.
        ("CREATE TABLE t AS SELECT a, COUNT(*) FROM nowhere GROUP BY a;".to_string(), "line 1:43: NOWHERE does not exist."),
        // `AggregateNode.validateKeyPresent` / `PlanNode.throwKeysNotIncludedError`.
        (
            format!("{ATTEMPTS} CREATE TABLE t AS SELECT COUNT(*) AS c FROM authorization_attempts GROUP BY card_number;"),
            "Key missing from projection (ie, SELECT). \nThe query used to build `T` must include the grouping expression CARD_NUMBER in its projection (eg, SELECT CARD_NUMBER...).",
        ),
        // `LogicalPlanner`.
        (
            format!("{ATTEMPTS} CREATE TABLE t AS SELECT card_number, COUNT(*) FROM authorization_attempts GROUP BY card_number EMIT FINAL;"),
            "EMIT FINAL is only supported for windowed aggregations.",
        ),
        // The grammar: every statement ends with `;`.
        (ATTEMPTS.trim_end_matches(';').to_string(), "mismatched input <EOF> expecting ';'"),
    ];
    for (statements, message) in cases {
        let run = ksql("errors", &statements, &[], &[]);
        assert!(!run.ok, "{statements}");
        assert!(run.stderr.starts_with("error: line "), "{}", run.stderr);
        assert!(run.stderr.contains(message), "{statements}\nexpected {message:?}\ngot {}", run.stderr);
    }
}

#[test]
fn a_bad_csv_field_names_file_line_column_and_field() {
    let query = format!(
        "{ATTEMPTS} CREATE TABLE t AS SELECT card_number, COUNT(*) FROM authorization_attempts GROUP BY card_number;"
    );
    let run =
        ksql("bad-csv", &query, &[("authorization_attempts", "ROWTIME,CARD_NUMBER,AMOUNT\n1,c,1.0\n2,c,lots\n")], &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains(".csv:3:5: field AMOUNT: expected a DOUBLE, found \"lots\""), "{}", run.stderr);
}
