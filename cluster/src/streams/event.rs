//! What a Kafka Streams instance records in the trace: its start, each task's life (created,
//! restoring, restored, running, closed), every state-store write with the task's stream time,
//! its commits and the failures that migrate or kill its tasks. A pane folding these events can
//! show tasks per instance, store contents, stream time and restoration without running
//! anything; the story prints each one as the line the instance says.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One store entry as the trace shows it: the key (with its window, `card [0,300000)`), and
/// the aggregates (`3`, or `15.0,2` for several).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.key, self.value)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamsEvent {
    /// The instance started (`KafkaStreams.start`): what it reads and writes, and its stores with
    /// their changelogs.
    Started {
        application: String,
        guarantee: String,
        commit_interval_ms: u64,
        reads: Vec<String>,
        writes: Vec<String>,
        /// `(store, changelog topic)`.
        stores: Vec<(String, String)>,
    },
    /// A rebalance gave the instance a task; it restores first if it has stores.
    TaskCreated { task: String, restoring: bool },
    /// A rebalance took a task away (its partition went to another instance).
    TaskClosed { task: String },
    /// The restore consumer began reading a store's changelog partition for a restoring task
    /// (`StateRestoreListener.onRestoreStart`): from `start_offset` (the log start, after
    /// `seekToBeginning`) to `end_offset` (the log's end when restoration began).
    RestoreStarted { task: String, store: String, changelog: String, start_offset: i64, end_offset: i64 },
    /// One poll's records of the changelog put back into the store (`onBatchRestored`): the
    /// records, and the offset after the last of them; `end_offset` is where restoration ends.
    BatchRestored {
        task: String,
        store: String,
        changelog: String,
        records: usize,
        batch_end_offset: i64,
        end_offset: Option<i64>,
    },
    /// A restoring task replayed a store's changelog partition to its end
    /// (`StoreChangelogReader.restore`, `onRestoreEnd`): the records read and the store's
    /// contents afterwards.
    StoreRestored { task: String, store: String, changelog: String, replayed: usize, entries: Vec<Entry> },
    /// A changelog record could not be put back.
    RestoreFailed { task: String, store: String, changelog: String, error: String },
    /// Restoration is over: the task processes (`StreamTask.completeRestoration`).
    TaskRunning { task: String },
    /// A store logged these entries (at once, or when the record cache flushed them); the
    /// task's stream time after it.
    StoreUpdated { task: String, store: String, entries: Vec<Entry>, stream_time: Option<i64> },
    /// A table's store deleted a row (a tombstone on the table's topic).
    StoreDeleted { task: String, store: String, key: String, stream_time: Option<i64> },
    /// An inner stream-table join found no row for the record's key: it emits nothing.
    NoTableRow { task: String, origin: String, key: String, table: String },
    /// A record the task could not decode, skipped (`LogAndContinueExceptionHandler`).
    RecordSkipped { task: String, origin: String, why: String },
    /// A record for a window that had closed (end + grace before stream time), dropped.
    LateRecordDropped {
        task: String,
        origin: String,
        rowtime: i64,
        window: (i64, i64),
        stream_time: i64,
        grace_ms: i64,
    },
    /// `onPartitionsRevoked`: the thread commits its tasks before they are handed over.
    PartitionsRevoked { partitions: Vec<String> },
    /// A commit: the records processed since the last one, the updates the record cache
    /// flushed, and the partitions whose offsets it committed (inside the transaction under
    /// exactly_once_v2).
    Committed { why: String, processed: u64, cache_flushed: usize, partitions: usize, in_transaction: bool },
    /// A commit failed because the tasks migrated (`TaskMigratedException`): every task closes
    /// dirty and comes back restoring.
    TasksMigrated { error: String, closed: Vec<String> },
    /// The stream thread cannot go on (a fenced or failed producer).
    ThreadDied { error: String },
}

impl StreamsEvent {
    /// The task the event is about, if it is about one.
    pub fn task(&self) -> Option<&str> {
        use StreamsEvent::*;
        match self {
            TaskCreated { task, .. }
            | TaskClosed { task }
            | RestoreStarted { task, .. }
            | BatchRestored { task, .. }
            | StoreRestored { task, .. }
            | RestoreFailed { task, .. }
            | TaskRunning { task }
            | StoreUpdated { task, .. }
            | StoreDeleted { task, .. }
            | NoTableRow { task, .. }
            | RecordSkipped { task, .. }
            | LateRecordDropped { task, .. } => Some(task),
            Started { .. } | PartitionsRevoked { .. } | Committed { .. } | TasksMigrated { .. } | ThreadDied { .. } => {
                None
            }
        }
    }
}

fn entries(entries: &[Entry]) -> String {
    entries.iter().map(Entry::to_string).collect::<Vec<_>>().join("; ")
}

impl fmt::Display for StreamsEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use StreamsEvent::*;
        match self {
            Started { application, guarantee, commit_interval_ms, reads, writes, stores } => {
                write!(
                    f,
                    "Kafka Streams application.id={application} starts: processing.guarantee={guarantee}, commit.interval.ms={commit_interval_ms}; reads {}, writes {}",
                    reads.join(", "),
                    writes.join(", ")
                )?;
                if !stores.is_empty() {
                    let shown: Vec<String> =
                        stores.iter().map(|(s, changelog)| format!("store {s} (changelog {changelog})")).collect();
                    write!(f, "; {}", shown.join(", "))?;
                }
                Ok(())
            }
            TaskCreated { task, restoring } => {
                write!(f, "task {task} created ({})", if *restoring { "RESTORING" } else { "RUNNING" })
            }
            TaskClosed { task } => write!(f, "task {task} closed: its partition was assigned away"),
            RestoreStarted { task, store, changelog, start_offset, end_offset } => write!(
                f,
                "task {task} restores store {store}: restore consumer reads {changelog} from offset {start_offset} to {end_offset}"
            ),
            BatchRestored { task, store, changelog, records, batch_end_offset, end_offset } => {
                write!(f, "task {task} store {store}: {records} records of {changelog} restored, up to offset {batch_end_offset}")?;
                match end_offset {
                    Some(end) => write!(f, " of {end}"),
                    None => Ok(()),
                }
            }
            StoreRestored { task, store, changelog, replayed, entries: e } => write!(
                f,
                "task {task} restored store {store} from {changelog}: {replayed} records replayed, {} entries: {}",
                e.len(),
                entries(e)
            ),
            RestoreFailed { task, store, changelog, error } => {
                write!(f, "task {task} could not restore store {store} from {changelog}: {error}")
            }
            TaskRunning { task } => write!(f, "task {task} RUNNING"),
            StoreUpdated { task, store, entries: e, stream_time } => {
                write!(f, "task {task} store {store}: {}", entries(e))?;
                match stream_time {
                    Some(t) => write!(f, " (stream time {t})"),
                    None => Ok(()),
                }
            }
            StoreDeleted { task, store, key, stream_time } => {
                write!(f, "task {task} store {store}: {key} deleted")?;
                match stream_time {
                    Some(t) => write!(f, " (stream time {t})"),
                    None => Ok(()),
                }
            }
            NoTableRow { task, origin, key, table } => {
                write!(f, "task {task}: {origin} (key {key}) found no row in table {table}: the inner join emits nothing")
            }
            RecordSkipped { task, origin, why } => write!(f, "task {task} skipped {origin}: {why}"),
            LateRecordDropped { task, origin, rowtime, window, stream_time, grace_ms } => write!(
                f,
                "task {task} dropped a late record ({origin}): event time {rowtime} is in window [{}, {}), which closed at stream time {stream_time} with grace {grace_ms} ms",
                window.0, window.1
            ),
            PartitionsRevoked { partitions } => write!(
                f,
                "onPartitionsRevoked({}): the thread commits its tasks before they are handed over",
                partitions.join(", ")
            ),
            Committed { why, processed, cache_flushed, partitions, in_transaction } => write!(
                f,
                "commit ({why}): {processed} records processed since the last commit; {}offsets of {partitions} partition(s) committed{}",
                if *cache_flushed > 0 { format!("record cache flushed {cache_flushed} records; ") } else { String::new() },
                if *in_transaction { " in the transaction" } else { "" }
            ),
            TasksMigrated { error, closed } => write!(
                f,
                "commit failed: {error}: the tasks migrated (TaskMigratedException); {} closed dirty, to be revived from their changelogs",
                if closed.is_empty() { "no task".to_string() } else { format!("tasks {}", closed.join(", ")) }
            ),
            ThreadDied { error } => write!(f, "commit failed: {error}; the Streams thread dies"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_update_names_task_store_entries_and_stream_time() {
        let event = StreamsEvent::StoreUpdated {
            task: "0_1".into(),
            store: "balance".into(),
            entries: vec![Entry { key: "Alice".into(), value: "15.0".into() }],
            stream_time: Some(4000),
        };
        assert_eq!(event.to_string(), "task 0_1 store balance: Alice = 15.0 (stream time 4000)");
        assert_eq!(event.task(), Some("0_1"));
    }

    #[test]
    fn a_migration_with_no_task_says_so() {
        let event = StreamsEvent::TasksMigrated { error: "fenced".into(), closed: vec![] };
        assert!(event.to_string().contains("no task closed dirty"), "{event}");
    }
}
