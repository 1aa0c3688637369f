//! Bad scenarios get clear errors, never a panic: a malformed file names file, line, column and
//! what was expected; an impossible one names the field, and a config Kafka refuses also the
//! key's line and column.

use ksim_sim::scenario::Scenario;

const VALID: &str = r#"Scenario(
    title: "t",
    duration_ms: 10000,
    cluster: (brokers: [1, 2, 3]),
    topics: [(name: "payments", partitions: 2, replication_factor: 3)],
    clients: [(name: "p", app: Producer(topic: "payments", records: 3))],
    timeline: [(at_ms: 5000, action: Kill(Broker(1)))],
)"#;

fn error_for(text: &str) -> String {
    match Scenario::from_text("case.ron", text) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted a bad scenario:\n{text}"),
    }
}

#[test]
fn the_valid_base_is_valid() {
    Scenario::parse("case.ron", VALID).unwrap().resolve().unwrap();
}

#[test]
fn bad_scenarios_get_clear_errors() {
    // (what is wrong, replace this, with this, the error must contain)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("syntax: a missing comma", "title: \"t\",", "title: \"t\"", "case.ron:3:5:"),
        ("an unknown field, with the fields it could be", "duration_ms:", "duration:", "unknown field `duration`"),
        ("a string where a number goes", "duration_ms: 10000", "duration_ms: \"ten\"", "case.ron:3:18:"),
        ("a negative time", "at_ms: 5000", "at_ms: -5", "case.ron:7:24:"),
        ("an unknown action", "Kill(Broker(1))", "Explode(Broker(1))", "unknown variant `Explode`"),
        ("a fault on an unknown broker", "Kill(Broker(1))", "Kill(Broker(7))", "timeline[0].action: unknown broker 7"),
        (
            "replication factor above the broker count",
            "replication_factor: 3",
            "replication_factor: 4",
            "replication_factor: 4 is larger than the number of brokers (3)",
        ),
        ("no brokers", "brokers: [1, 2, 3]", "brokers: []", "cluster.brokers: a cluster needs at least one broker"),
        ("a broker listed twice", "brokers: [1, 2, 3]", "brokers: [1, 2, 2]", "broker 2 is listed twice"),
        (
            "a quorum without controllers",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], quorum: (controllers: [])",
            "cluster.quorum.controllers: a quorum needs at least one controller",
        ),
        (
            "a controller listed twice",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], quorum: (controllers: [3001, 3001])",
            "cluster.quorum.controllers: controller 3001 is listed twice",
        ),
        (
            "a quorum field that does not exist",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], quorum: (voters: [3001])",
            "unknown field `voters`",
        ),
        (
            "a fault on a controller outside the quorum",
            "Kill(Broker(1))",
            "Kill(Voter(3009))",
            "timeline[0].action: unknown controller 3009",
        ),
        (
            "a malformed Kafka version",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], kafka_version: \"four\"",
            "cluster.kafka_version: `four` is not a Kafka version",
        ),
        (
            "a Kafka version ksim does not model",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], kafka_version: \"2.8\"",
            "cluster.kafka_version: Kafka 2.8 is not a release ksim models; it models 3.3 to 4.1",
        ),
        (
            "ELR on a version without it",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], kafka_version: \"3.9\", configs: {\"eligible.leader.replicas.version\": 1}",
            "cluster.configs: `eligible.leader.replicas.version`: Eligible Leader Replicas (KIP-966) need Kafka 4.0",
        ),
        (
            "an ELR feature level that does not exist",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], configs: {\"eligible.leader.replicas.version\": 2}",
            "`eligible.leader.replicas.version`: `2` is not a feature level: 0 (off) or 1 (on)",
        ),
        (
            "transaction version 2 on a version without it",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], kafka_version: \"3.9\", configs: {\"transaction.version\": 2}",
            "cluster.configs: `transaction.version`: the transaction.version feature (KIP-890 part 2) needs Kafka 4.0",
        ),
        (
            "a transaction version that does not exist",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], configs: {\"transaction.version\": 3}",
            "`transaction.version`: `3` is not a feature level: 0, 1 or 2",
        ),
        (
            "a producer for an unknown topic",
            "Producer(topic: \"payments\"",
            "Producer(topic: \"orders\"",
            "clients[0] (p).app.topic: unknown topic `orders`",
        ),
        ("a zero-length run", "duration_ms: 10000", "duration_ms: 0", "duration_ms: must be greater than 0"),
        ("zero partitions", "partitions: 2", "partitions: 0", "partitions: must be at least 1"),
        (
            "an unknown config",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], configs: {\"min.insync.replica\": 2}",
            "`min.insync.replica`: unknown config",
        ),
        (
            "a malformed config value",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], configs: {\"min.insync.replicas\": \"two\"}",
            "expected a whole number",
        ),
        (
            "explicit idempotence with acks=1",
            "records: 3))",
            "records: 3), configs: {\"acks\": 1, \"enable.idempotence\": true})",
            "idempotence requires acks=all",
        ),
        (
            "an unknown partition in an expectation",
            "timeline:",
            "expect: [Sometimes(Election(\"payments-5\"))], timeline:",
            "expect[0]: `payments-5`: topic payments has partitions 0..1",
        ),
        (
            "narration with neither a time nor a trigger",
            "timeline:",
            "narration: [(text: \"hi\")], timeline:",
            "narration[0]: give exactly one of `at_ms` and `on`",
        ),
        (
            "a narration's after_ms without a trigger",
            "timeline:",
            "narration: [(at_ms: 5, after_ms: 10, text: \"hi\")], timeline:",
            "narration[0].after_ms: only goes with `on`",
        ),
        (
            "explicit replicas on an unknown broker",
            "replication_factor: 3)",
            "replication_factor: 3, replicas: [[1, 2, 9], [2, 3, 1]])",
            "replicas[0]: unknown broker 9",
        ),
        (
            "latency bounds reversed",
            "timeline:",
            "network: (latency_ms_min: 9, latency_ms_max: 2), timeline:",
            "network.latency_ms_min: 9 is larger than latency_ms_max 2",
        ),
        ("an empty file", VALID, "", "case.ron:1:1:"),
        // Configs Kafka refuses, at the key's line and column (the validator's own table test is
        // in ksim-cluster's config::validate).
        (
            "no request in flight (ProducerConfig: atLeast(1))",
            "records: 3))",
            "records: 3), configs: {\"max.in.flight.requests.per.connection\": 0})",
            "case.ron:6:83: clients[0] (p).configs: `max.in.flight.requests.per.connection`: invalid value 0: \
             value must be at least 1 (ProducerConfig: max.in.flight.requests.per.connection, atLeast(1))",
        ),
        (
            "an explicit delivery timeout shorter than linger.ms + request.timeout.ms",
            "records: 3))",
            "records: 3), configs: {\"request.timeout.ms\": 5000, \"delivery.timeout.ms\": 1000})",
            "case.ron:6:111: clients[0] (p).configs: `delivery.timeout.ms`: delivery.timeout.ms should be \
             equal to or larger than linger.ms + request.timeout.ms (found 1000 < 5 + 5000)",
        ),
        (
            "a session timeout not above the heartbeat interval",
            "records: 3))",
            "records: 3)), (name: \"c\", app: GroupConsumer(topics: [\"payments\"]), configs: {\"group.id\": \"g\", \"session.timeout.ms\": 2000})",
            "case.ron:6:155: clients[1] (c).configs: `session.timeout.ms`: heartbeat.interval.ms must be set \
             lower than session.timeout.ms (found 3000 >= 2000)",
        ),
        (
            "an assignor Kafka does not have",
            "records: 3))",
            "records: 3)), (name: \"c\", app: GroupConsumer(topics: [\"payments\"]), configs: {\"group.id\": \"g\", \"partition.assignment.strategy\": \"range,fair\"})",
            "case.ron:6:155: clients[1] (c).configs: `partition.assignment.strategy`: unknown assignor `fair`",
        ),
        (
            "a follower fetch wait longer than the ISR lag limit",
            "brokers: [1, 2, 3]",
            "brokers: [1, 2, 3], configs: {\"replica.fetch.wait.max.ms\": 40000}",
            "case.ron:4:45: cluster.configs: `replica.fetch.wait.max.ms`: replica.fetch.wait.max.ms should always \
             be less than or equal to replica.lag.time.max.ms",
        ),
        (
            "a topic's segments that never roll (LogConfig: atLeast(1))",
            "replication_factor: 3)",
            "replication_factor: 3, configs: {\"segment.ms\": 0})",
            "case.ron:5:81: topics[0] (payments).configs: `segment.ms`: invalid value 0: value must be at least 1",
        ),
        (
            "a Streams topology ksqlDB refuses",
            "records: 3))",
            "records: 3)), (name: \"s\", app: KafkaStreams(application_id: \"a\", topology: \"CREATE STREAM x (id STRING) WITH (KAFKA_TOPIC='payments');\"))",
            "clients[1] (s).app.topology: line 1:",
        ),
        (
            "a Streams topology whose sink topic is not declared",
            "records: 3))",
            "records: 3)), (name: \"s\", app: KafkaStreams(application_id: \"a\", topology: \"CREATE STREAM x (id STRING KEY, n INT, ts BIGINT) WITH (KAFKA_TOPIC='payments', VALUE_FORMAT='JSON', TIMESTAMP='ts'); CREATE TABLE t AS SELECT id, COUNT(*) FROM x GROUP BY id;\"))",
            "clients[1] (s).app.topology: uses topic `T`, which `topics` does not declare",
        ),
        (
            "a stream-table join over topics with different partition counts (CopartitionedTopicsEnforcer)",
            "replication_factor: 3)],\n    clients: [(name: \"p\", app: Producer(topic: \"payments\", records: 3))",
            "replication_factor: 3), (name: \"customers\", partitions: 3, replication_factor: 3), (name: \"E\", partitions: 2, replication_factor: 3)],\n    clients: [(name: \"p\", app: Producer(topic: \"payments\", records: 3)), (name: \"s\", app: KafkaStreams(application_id: \"a\", topology: \"CREATE STREAM x (id STRING KEY, n INT, ts BIGINT) WITH (KAFKA_TOPIC='payments', VALUE_FORMAT='JSON', TIMESTAMP='ts'); CREATE TABLE c (id STRING PRIMARY KEY, name STRING) WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON'); CREATE STREAM e AS SELECT x.id, n, name FROM x JOIN c ON x.id = c.id;\"))",
            "clients[1] (s).app.topology: Invalid topology: Topics not co-partitioned: [{customers=3, payments=2}]",
        ),
        (
            "a processing guarantee Kafka 4 removed",
            "records: 3))",
            "records: 3)), (name: \"s\", app: KsqlServer(statements: \"CREATE STREAM x (id STRING KEY, n INT, ts BIGINT) WITH (KAFKA_TOPIC='payments', VALUE_FORMAT='JSON', TIMESTAMP='ts'); CREATE STREAM y WITH (KAFKA_TOPIC='payments') AS SELECT id, n, ts FROM x;\", processing_guarantee: \"exactly_once\"))",
            "clients[1] (s).app.processing_guarantee: `exactly_once` was deprecated by KIP-732 and removed in Kafka 4.0; use exactly_once_v2",
        ),
        (
            "a JSON producer with nothing to send",
            "app: Producer(topic: \"payments\", records: 3)",
            "app: JsonProducer(topic: \"payments\", records: [])",
            "clients[0] (p).app.records: list at least one record",
        ),
    ];
    for (what, from, to, expected) in cases {
        assert!(VALID.contains(from), "case `{what}`: the base has no `{from}`");
        let text = VALID.replacen(from, to, 1);
        let error = error_for(&text);
        assert!(error.contains(expected), "case `{what}`:\n  expected an error containing: {expected}\n  got: {error}");
    }
}

/// Where Kafka warns and adjusts instead of refusing, ksim does too: an unset `delivery.timeout.ms`
/// shorter than `linger.ms + request.timeout.ms` is raised (KafkaProducer.configureDeliveryTimeout),
/// and the run's trace says so at the client's start.
#[test]
fn a_default_delivery_timeout_is_raised_not_refused_and_the_trace_says_so() {
    let text = VALID.replacen("records: 3))", "records: 3), configs: {\"request.timeout.ms\": 200000})", 1);
    let scenario = Scenario::from_text("case.ron", &text).expect("Kafka accepts it");
    let resolved = scenario.resolve().expect("valid");
    assert_eq!(resolved.producers["p"].delivery_timeout_ms, 200_005);
    let outcome = ksim_sim::run::run(&scenario, "case", 1).expect("runs");
    let story = ksim_sim::narrate::render(&outcome.trace, ksim_sim::narrate::Detail::Story);
    let line = story
        .lines()
        .find(|l| l.contains("config delivery.timeout.ms=200005"))
        .unwrap_or_else(|| panic!("no adjustment in the story:\n{story}"));
    assert!(line.trim_start().starts_with("0.000s p "), "noted at the client's start: {line}");
    assert!(line.contains("should be equal to or larger than linger.ms + request.timeout.ms"), "{line}");
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let error = Scenario::load(std::path::Path::new("no/such/file.ron")).unwrap_err().to_string();
    assert!(error.starts_with("no/such/file.ron: cannot read"), "{error}");
}

/// Connect: several sink connectors run side by side; ksim's worker has one producer, so with
/// exactly-once source support it runs one source connector and no dead letter queue, and says so.
#[test]
fn connect_sections_name_what_the_worker_cannot_run() {
    let base = std::fs::read_to_string("scenarios/connect-exactly-once-source.ron").expect("shipped");
    let second_sink = base.replacen(
        "sinks: [(name: \"ledger\", mode: Append)],",
        "sinks: [(name: \"ledger\", mode: Append), (name: \"balances\", mode: Upsert)],",
        1,
    );
    let second_sink = second_sink.replacen(
        "file=ledger\n\"#,",
        "file=ledger\n\"#,\n            r#\"\nname=balances\nconnector.class=ksim.connect.KeyValueSinkConnector\ntopics=payments\nstore=balances\ntasks.max=2\n\"#,",
        1,
    );
    assert_ne!(second_sink, base);
    let scenario = Scenario::from_text("case.ron", &second_sink).expect("two sink connectors are fine");
    scenario.resolve().expect("valid");

    let second_source = base.replacen(
        "        ],\n    ),\n    narration",
        "            r#\"\nname=refunds-source\nconnector.class=ksim.connect.TableSourceConnector\ntable=payments\n\"#,\n        ],\n    ),\n    narration",
        1,
    );
    assert_ne!(second_source, base);
    let error = error_for(&second_source);
    assert!(error.contains("payments-source and refunds-source are source connectors"), "{error}");

    let dlq = base
        .replacen("file=ledger\n", "file=ledger\nerrors.tolerance=all\nerrors.deadletterqueue.topic.name=dlq\n", 1)
        .replacen(
            "topics: [(name: \"payments\",",
            "topics: [(name: \"dlq\", partitions: 1, replication_factor: 3), (name: \"payments\",",
            1,
        );
    assert_ne!(dlq, base);
    let error = error_for(&dlq);
    assert!(error.contains("ledger has a dead letter queue"), "{error}");
}
