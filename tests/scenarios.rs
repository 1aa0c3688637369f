//! Every scenario in `scenarios/`: it runs, meets its expectations, gives the same trace twice,
//! and its story and report match the snapshots in `snapshots/`.

use ksim_sim::narrate::{self, Detail};
use ksim_sim::scenario::Scenario;
use std::path::{Path, PathBuf};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Run a scenario twice under its own seed; check determinism and expectations; snapshot.
fn check(name: &str) {
    let path = scenarios_dir().join(format!("{name}.ron"));
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let first = ksim_sim::run(&scenario, name, scenario.seed).expect("runs");
    let second = ksim_sim::run(&scenario, name, scenario.seed).expect("runs");
    assert_eq!(
        first.trace.digest(),
        second.trace.digest(),
        "{name}: two runs with seed {} gave different traces",
        scenario.seed
    );
    let report = first.report.render();
    assert!(
        first.report.passed(),
        "{name} failed:\n{report}\nreplay: ksim run scenarios/{name}.ron --seed {}",
        scenario.seed
    );
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(format!("{name}.story"), narrate::render(&first.trace, Detail::Story));
        insta::assert_snapshot!(format!("{name}.report"), format!("{report}trace digest: {}\n", first.trace.digest()));
    });
}

macro_rules! scenario_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check($name);
            }
        )*

        /// Every file in scenarios/ has a test above.
        #[test]
        fn every_scenario_file_is_tested() {
            let tested = [$($name),*];
            for entry in std::fs::read_dir(scenarios_dir()).expect("scenarios/") {
                let path = entry.expect("entry").path();
                if path.extension().and_then(|e| e.to_str()) == Some("ron") {
                    let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
                    assert!(tested.contains(&stem), "scenarios/{stem}.ron has no test in tests/scenarios.rs");
                }
            }
        }
    };
}

scenario_tests! {
    acks_1_loses_data => "acks-1-loses-data",
    commit_before_process_loses => "commit-before-process-loses",
    combined_mode_node_dies => "combined-mode-node-dies",
    consumer_closes => "consumer-closes",
    consumer_dies => "consumer-dies",
    consumer_detects_truncation => "consumer-detects-truncation",
    fetch_session_cache_full => "fetch-session-cache-full",
    consumer_joins => "consumer-joins",
    controller_down_no_failover => "controller-down-no-failover",
    controller_failover => "controller-failover",
    controller_quorum_lost => "controller-quorum-lost",
    coordinator_failover => "coordinator-failover",
    eager_vs_cooperative => "eager-vs-cooperative",
    fast_restart_waits_for_session => "fast-restart-waits-for-session",
    follower_falls_behind => "follower-falls-behind",
    group_by_count => "group-by-count",
    idempotent_retries => "idempotent-retries",
    inflight_batches_under_latency => "inflight-batches-under-latency",
    inflight_reordering_without_idempotence => "inflight-reordering-without-idempotence",
    inconsistent_assignors => "inconsistent-assignors",
    isolated_leader => "isolated-leader",
    last_replica_standing_elr => "last-replica-standing-elr",
    last_replica_standing_no_elr => "last-replica-standing-no-elr",
    leader_failover => "leader-failover",
    no_prevote_disrupts_leader => "no-prevote-disrupts-leader",
    lossy_network => "lossy-network",
    min_insync_rejects_writes => "min-insync-rejects-writes",
    partitioned_controller_resigns => "partitioned-controller-resigns",
    power_failure_unflushed => "power-failure-unflushed",
    prevote_stops_disruption => "prevote-stops-disruption",
    process_before_commit_duplicates => "process-before-commit-duplicates",
    retention_moves_log_start => "retention-moves-log-start",
    compaction_keeps_latest => "compaction-keeps-latest",
    compaction_tombstone_deletes => "compaction-tombstone-deletes",
    compacted_offsets_survive_coordinator_failover => "compacted-offsets-survive-coordinator-failover",
    rolling_restart => "rolling-restart",
    slow_consumer => "slow-consumer",
    static_consumer_closes => "static-consumer-closes",
    static_member_replaced => "static-member-replaced",
    static_membership => "static-membership",
    unclean_election_loses_data => "unclean-election-loses-data",
    zombie_leader_after_pause => "zombie-leader-after-pause",
    commit_survives_coordinator_move => "commit-survives-coordinator-move",
    commit_waits_for_outputs => "commit-waits-for-outputs",
    transactions_commit_and_abort => "transactions-commit-and-abort",
    zombie_producer_fenced => "zombie-producer-fenced",
    exactly_once_consume_transform_produce => "exactly-once-consume-transform-produce",
    at_least_once_consume_transform_produce => "at-least-once-consume-transform-produce",
    zombie_pipeline_fenced_by_generation => "zombie-pipeline-fenced-by-generation",
    open_transaction_blocks_read_committed => "open-transaction-blocks-read-committed",
    transaction_timeout_aborts => "transaction-timeout-aborts",
    transaction_coordinator_failover => "transaction-coordinator-failover",
    hanging_transaction => "hanging-transaction",
    hanging_transaction_verified => "hanging-transaction-verified",
    hanging_transaction_epoch_bump => "hanging-transaction-epoch-bump",
    stream_table_duality => "stream-table-duality",
    fraud_detection_tumbling_window => "fraud-detection-tumbling-window",
    streams_instance_dies => "streams-instance-dies",
    at_least_once_double_counts => "at-least-once-double-counts",
    exactly_once_counts_once => "exactly-once-counts-once",
    streams_repartition_by_field => "streams-repartition-by-field",
    streams_enrich_orders_with_customers => "streams-enrich-orders-with-customers",
    streams_record_cache => "streams-record-cache",
    connect_source_masks_pii => "connect-source-masks-pii",
    connect_worker_dies => "connect-worker-dies",
    connect_sink_dead_letter_queue => "connect-sink-dead-letter-queue",
    connect_exactly_once_source => "connect-exactly-once-source",
    connect_worker_partitioned => "connect-worker-partitioned",
    connect_worker_joins => "connect-worker-joins",
}

/// Headers travel with the record: the dead letter record a Connect sink task sends (the
/// original key, value and headers plus the `__connect.errors.*` context,
/// `DeadLetterQueueReporter.report`) is stored in dlq-orders with its headers, and a consumer of
/// the dead letter queue receives all ten of them.
#[test]
fn a_dead_letter_record_reaches_a_reader_of_the_queue_with_its_context_headers() {
    let mut scenario = Scenario::load(&scenarios_dir().join("connect-sink-dead-letter-queue.ron")).expect("loads");
    let mut reader = scenario.clients.iter().find(|c| c.name == "legacy-app").expect("in the scenario").clone();
    reader.name = "dlq-reader".into();
    reader.app = ksim_sim::scenario::App::Consumer { topics: vec!["dlq-orders".into()], poll_interval_ms: 100 };
    reader.start_ms = 0;
    scenario.clients.push(reader);
    let outcome = ksim_sim::run(&scenario, "dlq-reader", scenario.seed).expect("runs");
    let story = narrate::render(&outcome.trace, Detail::Story);
    assert!(
        story
            .lines()
            .any(|l| l.contains("dlq-reader") && l.contains("consumed 9=legacy-0 from dlq-orders-0@0 (10 headers)")),
        "the reader gets the dead letter record with its headers:\n{story}"
    );
}
