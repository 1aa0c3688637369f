//! Kafka Streams under exactly_once_v2 when its producer or its transaction coordinator fails:
//! fuzz seeds of `exactly-once-counts-once`, shrunk (tests/regressions/).

use ksim_sim::scenario::Scenario;
use ksim_sim::trace::{EventKind, Rule, Trace};
use std::path::Path;

fn run(file: &str, seed: u64) -> Trace {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions").join(file);
    let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    ksim_sim::run(&scenario, file, seed).expect("runs").trace
}

fn stuck(trace: &Trace) -> Vec<String> {
    trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) if f.rule == Rule::NoConvergence => Some(f.message.clone()),
            _ => None,
        })
        .collect()
}

fn said(trace: &Trace, what: &str) -> bool {
    trace.events.iter().any(|e| match &e.kind {
        EventKind::App(text) => text.contains(what),
        EventKind::Note(note) => note.to_string().contains(what),
        _ => false,
    })
}

/// Seed 107: the coordinator aborted the thread's timed-out transaction and, under transaction
/// version 2, bumped its epoch; the thread's next request found its producer fenced. The
/// thread used to die of it and the group sat empty (no-convergence). Kafka Streams takes a
/// fenced producer for migrated tasks (`StreamsProducer.commitTransaction`: ProducerFenced and
/// InvalidProducerEpoch become TaskMigratedException) and `handleLostAll` replaces the producer
/// (`ActiveTaskCreator.reInitializeProducer`).
#[test]
fn a_fenced_producer_is_replaced_and_the_tasks_come_back() {
    let trace = run("streams-eos-producer-fenced-seed-107.ron", 107);
    assert!(said(&trace, "the tasks migrated"), "the commit failed as migrated tasks");
    assert!(said(&trace, "the fenced producer is replaced"), "a new producer");
    assert!(!said(&trace, "the Streams thread dies"));
    assert_eq!(stuck(&trace), Vec::<String>::new());
}

/// Seed 143: the thread's EndTxn waited behind a cut at the coordinator it found at start,
/// which had lost its partition meanwhile; healed, that broker answered from its stale state
/// (INVALID_TXN_STATE), which is fatal to the producer and to the thread (a StreamsException,
/// not a fenced producer). The thread used to stay in its group until `max.poll.interval.ms`
/// threw it out, and liveness called the empty group a failure to converge. A dying thread
/// closes its consumers (`StreamThread.completeShutdown`), the instance's process ends, and
/// liveness does not wait for an application that gave up.
#[test]
fn a_thread_that_dies_closes_its_consumers_and_is_not_waited_for() {
    let trace = run("streams-thread-dies-seed-143.ron", 143);
    assert!(said(&trace, "the Streams thread dies"));
    assert!(
        trace.events.iter().any(|e| matches!(&e.kind, EventKind::Fault(ksim_sim::trace::Fault::Exit(_)))),
        "the instance's process ends"
    );
    assert_eq!(stuck(&trace), Vec::<String>::new());
}
