//! What Connect records in the trace: the external systems' contents as they change, the
//! workers' group and assignments, and each task's polls, writes, flushes and failures. A pane
//! folding these events can show workers, connectors, tasks and both external systems without
//! running anything.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectEvent {
    /// A row arrived in an external source table.
    RowInserted { source: String, id: i64, row: String },
    /// A worker joined the worker group (`group.id`).
    WorkerJoined { group: String, worker: String },
    /// A worker's session expired: the group rebalances without it.
    WorkerSessionExpired { group: String, worker: String },
    /// A worker could not reach its group's coordinator for `heartbeat.interval.ms`: it stops
    /// everything it ran (`WorkerCoordinator.poll`, KAFKA-9184), so that it runs nothing while
    /// the group may have given its work to others.
    WorkerLostCoordinator { group: String, worker: String, revoked: Vec<String> },
    /// A rebalance of the worker group ended: each member's connectors and tasks.
    Rebalanced { group: String, generation: u32, assignments: Vec<(String, Vec<String>)> },
    /// A departed worker's connectors and tasks wait for it until `until_ms`
    /// (`scheduled.rebalance.max.delay.ms`).
    RebalanceDelayed { group: String, lost: Vec<String>, until_ms: u64 },
    /// A task started on a worker, resuming after this source offset (source tasks) or from the
    /// group's committed offsets (sink tasks).
    TaskStarted { task: String, resume_after: Option<i64> },
    /// A task stopped for good: `errors.tolerance=none` met a failure, or its producer was fenced.
    TaskFailed { task: String, reason: String },
    /// A source task's poll: the row ids read, how many records it sent, the rows the chain
    /// dropped or `errors.tolerance=all` skipped.
    SourcePolled { task: String, rows: Vec<i64>, sent: usize, dropped: Vec<i64>, skipped: Vec<i64> },
    /// Source offsets written to the offset store: `connect-offsets` (distributed, or inside the
    /// task's transaction for exactly-once), or the standalone worker's offsets file.
    OffsetsFlushed { task: String, key: String, offset: i64, store: String },
    /// A sink task wrote one record to its store. `effect`: `added`, `replaced`, `rewritten
    /// (same value)` or `appended`.
    SinkWrote {
        task: String,
        store: String,
        partition: String,
        offset: i64,
        key: String,
        value: String,
        effect: String,
    },
    /// A sink task committed its consumer's positions.
    SinkCommitted { task: String, offsets: Vec<(String, i64)> },
    /// A failed record was skipped (`errors.tolerance=all`).
    RecordSkipped { task: String, origin: String, stage: String, error: String },
    /// A failed record's original key and value went to the dead letter queue, with these headers.
    DeadLettered { task: String, origin: String, topic: String, headers: Vec<(String, String)> },
    /// An exactly-once source task committed a transaction: its records and its offset together.
    TransactionCommitted { task: String, records: usize, offset: i64 },
}

impl fmt::Display for ConnectEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConnectEvent::*;
        match self {
            RowInserted { source, id, row } => write!(f, "source {source}: row {id} inserted {row}"),
            WorkerJoined { group, worker } => write!(f, "connect group {group}: {worker} joined"),
            WorkerSessionExpired { group, worker } => {
                write!(f, "connect group {group}: {worker}'s session expired; the group rebalances without it")
            }
            WorkerLostCoordinator { group, worker, revoked } => write!(
                f,
                "connect group {group}: {worker} cannot reach the group coordinator: it stops [{}] rather than run them outside the group",
                revoked.join(", ")
            ),
            Rebalanced { group, generation, assignments } => {
                let parts: Vec<String> =
                    assignments.iter().map(|(w, units)| format!("{w} runs [{}]", units.join(", "))).collect();
                write!(f, "connect group {group} generation {generation}: {}", parts.join("; "))
            }
            RebalanceDelayed { group, lost, until_ms } => write!(
                f,
                "connect group {group}: [{}] lost with their worker; reassigned at {until_ms} ms unless it returns (scheduled.rebalance.max.delay.ms)",
                lost.join(", ")
            ),
            TaskStarted { task, resume_after: Some(o) } => write!(f, "task {task} started, resuming after source offset {o}"),
            TaskStarted { task, resume_after: None } => write!(f, "task {task} started"),
            TaskFailed { task, reason } => write!(f, "task {task} FAILED: {reason}"),
            SourcePolled { task, rows, sent, dropped, skipped } => {
                write!(f, "task {task} polled rows {rows:?}: {sent} sent")?;
                if !dropped.is_empty() {
                    write!(f, ", {dropped:?} dropped by the chain")?;
                }
                if !skipped.is_empty() {
                    write!(f, ", {skipped:?} skipped (errors.tolerance=all)")?;
                }
                Ok(())
            }
            OffsetsFlushed { task, key, offset, store } => {
                write!(f, "task {task} flushed source offset {key} -> {offset} to {store}")
            }
            SinkWrote { task, store, partition, offset, key, value, effect } => {
                write!(f, "task {task} wrote {partition}@{offset} to {store}: {key} -> {value} ({effect})")
            }
            SinkCommitted { task, offsets } => {
                let parts: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}={o}")).collect();
                write!(f, "task {task} committed offsets {}", parts.join(", "))
            }
            RecordSkipped { task, origin, stage, error } => {
                write!(f, "task {task} skipped {origin}: {stage} failed ({error})")
            }
            DeadLettered { task, origin, topic, headers } => {
                write!(f, "task {task} sent {origin} to the dead letter queue {topic}")?;
                if !headers.is_empty() {
                    let parts: Vec<String> = headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    write!(f, " with headers {}", parts.join(", "))?;
                }
                Ok(())
            }
            TransactionCommitted { task, records, offset } => {
                write!(f, "task {task} committed a transaction: {records} records and source offset {offset}")
            }
        }
    }
}
