//! `ksim smt --config FILE.properties [--topic T] [--partition P] [--offset O] [--timestamp MS]
//! RECORD...`: run records through a connector's single message transforms, as Kafka Connect
//! would, and print what comes out.
//!
//! The configuration is a `.properties` file in Kafka's syntax; only its `transforms*` and
//! `predicates*` keys are read, so a whole connector configuration can be pasted. Each record is
//! JSON (`{"value": ...}` plus optional `key`, `topic`, `partition`, `offset`, `timestamp`,
//! `headers`); a record with an offset is a sink record, one without a source record.
//!
//! Output, one line per record: the resulting record as JSON (`topic`, `partition`, `offset` for
//! a sink record, `timestamp`, `key`, `value`, `headers`, in that order), `dropped`, or
//! `error: DataException: <Kafka's message>`; any error makes the exit status 1. A configuration
//! Kafka refuses is `error: ConfigException: <message>` on stderr, exit status 2, before any
//! record. The engine is `ksim_cluster::connect::smt`.

use ksim_cluster::connect::properties;
use ksim_cluster::connect::smt::{Chain, Record, Value};
use std::fmt::Write as _;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  # The talk's PII example: mask the IP address, drop the gender.
  ksim smt --config examples/smt/pii.properties --topic users \\
    '{\"value\": {\"user\": \"ab123\", \"gender\": \"female\", \"ip\": \"1.2.3.95\"}}'

  # A sink record (it has an offset), routed by its timestamp with TimestampRouter.
  ksim smt --config route.properties --topic orders --partition 0 --offset 42 \\
    --timestamp 1483425001864 '{\"key\": \"k1\", \"value\": {\"amount\": 10}}'

Records are schemaless JSON, typed as Connect's JsonConverter types them (schemas.enable=false):
integers are Java longs, other numbers doubles.";

/// Run records through a connector's single message transforms (SMTs).
///
/// Reads the `transforms*` and `predicates*` keys of a connector configuration (Kafka's
/// .properties syntax; other keys are ignored), builds the transform chain as Kafka Connect
/// does, and prints each record as it comes out of the chain, `dropped`, or the error a
/// transform raised. Exits 1 if a record failed, 2 if Kafka would refuse the configuration.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
#[command(after_long_help = EXAMPLES)]
pub struct SmtArgs {
    /// The connector configuration (`.properties`), e.g. examples/smt/pii.properties.
    #[arg(long, value_name = "FILE.properties")]
    pub config: PathBuf,
    /// The topic of records that do not name one.
    #[arg(long)]
    pub topic: Option<String>,
    /// The partition of records that do not name one.
    #[arg(long)]
    pub partition: Option<i32>,
    /// The offset of records that do not name one: with an offset, a record is a sink record
    /// (read from Kafka); without, a source record.
    #[arg(long)]
    pub offset: Option<i64>,
    /// The timestamp (ms since the epoch) of records that do not give one.
    #[arg(long, value_name = "MS")]
    pub timestamp: Option<i64>,
    /// The records, each a JSON object: `{"value": ...}` with optional `key`, `topic`,
    /// `partition`, `offset`, `timestamp` and `headers` (an object of string values).
    #[arg(required = true, value_name = "RECORD")]
    pub records: Vec<String>,
}

/// What `ksim smt` prints on stdout, and whether a record failed (exit status 1).
#[derive(Debug, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub failed: bool,
}

/// The whole run. `Err` is the stderr message (exit status 2): a configuration Kafka refuses
/// (`ConfigException: ...`), a file that cannot be read, a record that is not valid input.
pub fn run(args: &SmtArgs) -> Result<Output, String> {
    let path = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config).map_err(|e| format!("cannot read {path}: {e}"))?;
    let entries = properties::parse(&text).map_err(|e| format!("{path}:{}: {}", e.line, e.message))?;
    let chain = Chain::from_properties(&properties::to_map(&entries)).map_err(|e| e.to_string())?;

    let records = args
        .records
        .iter()
        .enumerate()
        .map(|(i, text)| parse_record(text, args).map_err(|e| format!("RECORD {}: {e}", i + 1)))
        .collect::<Result<Vec<Record>, String>>()?;

    let mut out = Output { stdout: String::new(), failed: false };
    for record in records {
        match chain.apply(record) {
            Ok(Some(record)) => {
                out.stdout.push_str(&render(&record));
                out.stdout.push('\n');
            }
            Ok(None) => out.stdout.push_str("dropped\n"),
            Err(e) => {
                let _ = writeln!(out.stdout, "error: {e}");
                out.failed = true;
            }
        }
    }
    Ok(out)
}

const FIELDS: [&str; 7] = ["topic", "partition", "offset", "timestamp", "key", "value", "headers"];

/// One input record; the flags fill in what it leaves out.
fn parse_record(text: &str, args: &SmtArgs) -> Result<Record, String> {
    let Value::Map(map) = Value::from_json(text).map_err(|e| format!("not valid JSON: {e}"))? else {
        return Err("must be a JSON object, e.g. {\"value\": {\"id\": 1}}".into());
    };
    if let Some((unknown, _)) = map.iter().find(|(k, _)| !FIELDS.contains(k)) {
        return Err(format!("unknown field `{unknown}` (a record has {})", FIELDS.join(", ")));
    }
    let value = map.get("value").cloned().ok_or("has no `value` (use \"value\": null for a tombstone)")?;
    let key = map.get_or_null("key");
    let topic = match map.get("topic") {
        Some(Value::String(t)) => t.clone(),
        Some(other) => return Err(format!("`topic` must be a string, found {}", other.to_json())),
        None => args.topic.clone().ok_or("has no topic: give \"topic\" in the record or --topic")?,
    };
    let partition = match map.get("partition") {
        Some(v) => Some(whole_number(v, "partition", 0, i64::from(i32::MAX))? as i32),
        None => args.partition,
    };
    let offset = match map.get("offset") {
        Some(v) => Some(whole_number(v, "offset", 0, i64::MAX)?),
        None => args.offset,
    };
    let timestamp = match map.get("timestamp") {
        Some(v) => Some(whole_number(v, "timestamp", 0, i64::MAX)?),
        None => args.timestamp,
    };
    let headers = match map.get("headers") {
        None => Vec::new(),
        Some(Value::Map(headers)) => headers
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.to_string(), s.clone())),
                other => Err(format!("header `{k}` must be a string, found {}", other.to_json())),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`headers` must be an object of strings, found {}", other.to_json())),
    };
    let record = match offset {
        Some(offset) => {
            let partition = partition.ok_or(
                "is a sink record (it has an offset) but has no partition: give \"partition\" in the record or --partition",
            )?;
            Record::sink(&topic, partition, offset, key, value, timestamp)
        }
        None => Record::source(&topic, partition, key, value, timestamp),
    };
    Ok(record.with_headers(headers))
}

fn whole_number(value: &Value, field: &str, min: i64, max: i64) -> Result<i64, String> {
    match value {
        Value::Int64(n) if (min..=max).contains(n) => Ok(*n),
        other => Err(format!("`{field}` must be a whole number from {min} to {max}, found {}", other.to_json())),
    }
}

/// A record as one line of JSON, keys in the contract's order.
fn render(record: &Record) -> String {
    let string = |s: &str| Value::String(s.to_string()).to_json();
    let mut out = String::from("{");
    let _ = write!(out, "\"topic\":{}", record.topic.as_deref().map_or("null".into(), string));
    let _ = write!(out, ",\"partition\":{}", record.partition.map_or("null".into(), |p| p.to_string()));
    if let Some(sink) = &record.sink {
        let _ = write!(out, ",\"offset\":{}", sink.offset);
    }
    let _ = write!(out, ",\"timestamp\":{}", record.timestamp.map_or("null".into(), |t| t.to_string()));
    let _ = write!(out, ",\"key\":{},\"value\":{}", record.key.to_json(), record.value.to_json());
    let headers: Vec<String> = record.headers.iter().map(|(k, v)| format!("{}:{}", string(k), string(v))).collect();
    let _ = write!(out, ",\"headers\":{{{}}}}}", headers.join(","));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(records: &[&str]) -> SmtArgs {
        SmtArgs {
            config: PathBuf::from("unused.properties"),
            topic: Some("users".into()),
            partition: None,
            offset: None,
            timestamp: None,
            records: records.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn a_source_record_renders_in_the_contract_order() {
        let a = args(&[]);
        let record = parse_record(r#"{"value": {"b": 1, "a": 2.5}, "headers": {"h": "v"}, "key": "k"}"#, &a).unwrap();
        assert_eq!(
            render(&record),
            r#"{"topic":"users","partition":null,"timestamp":null,"key":"k","value":{"b":1,"a":2.5},"headers":{"h":"v"}}"#
        );
    }

    #[test]
    fn a_record_with_an_offset_is_a_sink_record() {
        let mut a = args(&[]);
        a.partition = Some(3);
        a.timestamp = Some(7);
        let record = parse_record(r#"{"value": null, "offset": 42}"#, &a).unwrap();
        assert_eq!(
            render(&record),
            r#"{"topic":"users","partition":3,"offset":42,"timestamp":7,"key":null,"value":null,"headers":{}}"#
        );
        a.partition = None;
        let err = parse_record(r#"{"value": 1, "offset": 1}"#, &a).unwrap_err();
        assert!(err.contains("no partition"), "{err}");
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        let a = args(&[]);
        for (text, expected) in [
            ("[1]", "must be a JSON object"),
            ("{\"key\": 1}", "has no `value`"),
            ("{\"value\": 1, \"vaule\": 2}", "unknown field `vaule`"),
            ("{\"value\": 1, \"partition\": -1}", "`partition` must be a whole number from 0"),
            ("{\"value\": 1, \"headers\": {\"h\": 1}}", "header `h` must be a string"),
            ("{\"value\": ", "not valid JSON: EOF while parsing a value at line 1 column 10"),
        ] {
            let err = parse_record(text, &a).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let mut no_topic = args(&[]);
        no_topic.topic = None;
        assert!(parse_record("{\"value\": 1}", &no_topic).unwrap_err().contains("--topic"));
    }
}
