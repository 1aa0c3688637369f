//! The Streams runtime agrees with `ksim ksql`: for each processing scenario, the rows its
//! applications write to their sink topics are, key by key and in order, the rows the ksql engine
//! emits when fed the same records directly (a task's records are one partition's, in order; an
//! aggregation's rows for one key depend only on that key's records and on stream time, which the
//! scenarios keep on one partition where it matters).

use ksim_cluster::ksql::Engine;
use ksim_cluster::streams::{Naming, Topology};
use ksim_sim::scenario::{App, Scenario};
use ksim_sim::trace::EventKind;
use std::collections::BTreeMap;
use std::path::Path;

/// Rows per (topic, key), in the order they were sent.
type Sent = BTreeMap<(String, String), Vec<String>>;

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.ron"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// What the scenario's Streams applications sent to `sinks`, from the trace.
fn sent_by_runtime(scenario: &Scenario, name: &str, sinks: &[String]) -> Sent {
    let outcome = ksim_sim::run(scenario, name, scenario.seed).expect("runs");
    let mut sent = Sent::new();
    for event in &outcome.trace.events {
        let EventKind::App(text) = &event.kind else { continue };
        let Some(rest) = text.strip_prefix("send ") else { continue };
        let Some((record, topic)) = rest.rsplit_once(" to ") else { continue };
        // Sink rows go to the partitioner ("to BALANCE"); changelog writes name their partition.
        if !sinks.iter().any(|s| s == topic) {
            continue;
        }
        let (key, value) = record.split_once('=').expect("key=value");
        sent.entry((topic.to_string(), key.to_string())).or_default().push(value.to_string());
    }
    sent
}

/// What the ksql engine emits for the scenario's JsonProducer records, written as the runtime
/// writes sink rows.
fn emitted_by_engine(scenario: &Scenario, statements: &str) -> Sent {
    let topology = Topology::compile(statements, &Naming::Streams { application_id: "check".into() }).unwrap();
    let mut engine = Engine::new(statements, Default::default()).unwrap();
    let mut emitted = Sent::new();
    // Every JsonProducer's records in the order they are produced (a table's records feed the
    // table a join reads; the scenarios space records so that production order is processing
    // order).
    let mut produced = Vec::new();
    for client in &scenario.clients {
        let App::JsonProducer { topic, records, interval_ms, .. } = &client.app else { continue };
        for (i, record) in records.iter().enumerate() {
            produced.push((client.start_ms + i as u64 * interval_ms, topic.clone(), record));
        }
    }
    produced.sort_by_key(|(at, _, _)| *at);
    for (_, topic, record) in produced {
        if let Some(table) = topology.table.as_ref().filter(|t| t.topic == topic) {
            let value = record.value_json();
            let (key, row) = topology.decode_table(record.key.as_deref(), Some(&value)).unwrap();
            engine.table_put(&table.name, &key, row.map(|r| r.values)).unwrap();
            continue;
        }
        assert_eq!(topic, topology.source.topic);
        let decoded = topology.decode(record.key.as_deref(), &record.value_json()).unwrap();
        let step = engine.process(&topology.source.name, decoded).unwrap();
        for (q, row) in &step.rows {
            let Some(sink) = topology.sinks.iter().find(|s| s.query == *q) else { continue };
            let out = topology.encode_row(*q, row, &engine);
            let key = out.key.clone().unwrap_or_default();
            // The trace prints a tombstone as `null`.
            emitted.entry((sink.topic.clone(), key)).or_default().push(out.value.unwrap_or_else(|| "null".into()));
        }
    }
    emitted
}

fn agree(name: &str) {
    let scenario = load(name);
    let setup = scenario.clients.iter().find_map(|c| c.app.streams()).expect("a Streams app");
    let topology = setup.topology().unwrap();
    let sinks: Vec<String> = topology.sinks.iter().map(|s| s.topic.clone()).collect();
    let runtime = sent_by_runtime(&scenario, name, &sinks);
    let engine = emitted_by_engine(&scenario, &setup.statements);
    assert!(!engine.is_empty(), "{name}: the engine emits something");
    assert_eq!(runtime, engine, "{name}: the Streams runtime and `ksim ksql` disagree");
}

#[test]
fn streams_repartition_by_field_agrees_with_ksql() {
    agree("streams-repartition-by-field");
}

#[test]
fn streams_enrich_orders_with_customers_agrees_with_ksql() {
    agree("streams-enrich-orders-with-customers");
}

#[test]
fn stream_table_duality_agrees_with_ksql() {
    agree("stream-table-duality");
}

#[test]
fn fraud_detection_agrees_with_ksql() {
    agree("fraud-detection-tumbling-window");
}

#[test]
fn the_engine_folds_the_payments_into_the_balances_the_talk_shows() {
    let scenario = load("stream-table-duality");
    let setup = scenario.clients.iter().find_map(|c| c.app.streams()).unwrap();
    let emitted = emitted_by_engine(&scenario, &setup.statements);
    let last = |k: &str| emitted[&("BALANCE".to_string(), k.to_string())].last().cloned().unwrap();
    assert_eq!(last("alice"), r#"{"BALANCE":15}"#);
    assert_eq!(last("bob"), r#"{"BALANCE":18}"#);
}

/// The table each scenario expects at the end (its `Finally(Latest(sink, key, value))`, which
/// tests/scenarios.rs checks against the run) is the engine's last row per key, for every
/// processing scenario whose crash Kafka promises not to show; under at_least_once the crash
/// shows, and the expected table is not the engine's.
#[test]
fn the_tables_the_scenarios_end_with_are_the_engines_except_under_at_least_once() {
    use ksim_sim::scenario::{Condition, Expectation};
    for (name, same) in [
        ("stream-table-duality", true),
        ("fraud-detection-tumbling-window", true),
        ("streams-instance-dies", true),
        ("exactly-once-counts-once", true),
        ("streams-repartition-by-field", true),
        ("streams-enrich-orders-with-customers", true),
        ("streams-record-cache", true),
        ("at-least-once-double-counts", false),
    ] {
        let scenario = load(name);
        let setup = scenario.clients.iter().find_map(|c| c.app.streams()).unwrap();
        let engine = emitted_by_engine(&scenario, &setup.statements);
        let mut compared = 0;
        for expectation in &scenario.expect {
            let Expectation::Finally(Condition::Latest(topic, key, value)) = expectation else { continue };
            let Some(rows) = engine.get(&(topic.clone(), key.clone())) else { continue };
            assert_eq!(rows.last() == Some(value), same, "{name}: {topic} {key}: engine {rows:?}, expected {value}");
            compared += 1;
        }
        assert!(compared > 0, "{name}: no table row compared");
    }
}

/// `statestore.cache.max.bytes`: with Streams' default 10 MB cache the balances task forwards
/// (and logs) only the latest balance of each key at each commit; with the cache off it forwards
/// every update. The table ends the same either way.
#[test]
fn the_record_cache_deduplicates_updates_between_commits_and_0_bytes_forwards_every_one() {
    let count = |cache: Option<u64>| {
        let mut scenario = load("stream-table-duality");
        for client in &mut scenario.clients {
            if let App::KafkaStreams { statestore_cache_max_bytes, .. } = &mut client.app {
                *statestore_cache_max_bytes = cache;
            }
        }
        let sinks = ["BALANCE".to_string(), "balances-balance-store-changelog-1".to_string()];
        let sent = sent_by_runtime(&scenario, "stream-table-duality", &sinks);
        let rows = |topic: &str| sent.iter().filter(|((t, _), _)| t == topic).map(|(_, v)| v.len()).sum::<usize>();
        let alice = sent[&("BALANCE".to_string(), "alice".to_string())].last().cloned().unwrap();
        (rows("BALANCE"), rows("balances-balance-store-changelog-1"), alice)
    };
    let (off_rows, off_logged, off_alice) = count(Some(0));
    let (on_rows, on_logged, on_alice) = count(None);
    assert_eq!(off_rows, 4, "cache off: Alice 50, Bob 18, Alice 75, Alice 15");
    assert_eq!(off_logged, 3, "cache off: each of Alice's balances is logged");
    assert!(on_rows < off_rows && on_logged < off_logged, "cache on: {on_rows} rows, {on_logged} logged");
    assert_eq!((off_alice.as_str(), on_alice.as_str()), (r#"{"BALANCE":15}"#, r#"{"BALANCE":15}"#));
}
