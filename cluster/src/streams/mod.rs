//! # Kafka Streams, as pure state machines
//!
//! A Streams application is a consumer group (`group.id` = `application.id`) whose members
//! (instances) each own a share of the input partitions. Kafka Streams cuts its topology into
//! **sub-topologies** at repartition topics and runs one **task** per (sub-topology, input
//! partition), named `<sub-topology>_<partition>` (`TaskId.toString`: `0_0`, `0_1`, ...); the
//! group assignor (`StreamsPartitionAssignor`) hands out tasks, so a task moves with its
//! partition when the group rebalances (`TaskManager.handleAssignment`).
//!
//! A task that aggregates keeps a **state store** and logs every write to the store's
//! **changelog topic** `<application.id>-<store>-changelog`
//! (`ProcessorStateManager.storeChangelogTopic`), on the task's own partition
//! (`RecordCollectorImpl.send` with the changelog partition). A task that is new on an instance
//! (after a crash, or moved by a rebalance) first **restores** its store by reading the changelog
//! from the beginning to its end (`StoreChangelogReader.restore`), and only then processes
//! (`StreamTask` moves from RESTORING to RUNNING). Under `exactly_once_v2` an instance that did
//! not shut down cleanly wipes its local state and restores it entirely
//! (`ProcessorStateManager` / `TaskManager.closeDirtyAndRevive`); ksim keeps no local state
//! across a process crash at all (no RocksDB directory survives a ksim client), so every task an
//! instance starts restores its store from the changelog, under either guarantee.
//!
//! What a task computes is the `ksim ksql` engine's ([`crate::ksql`]): the topology is given as
//! ksqlDB statements, the way Kafka Streams' DSL and ksqlDB describe the same operators (filter
//! and projection = `WHERE`/`SELECT`, `groupByKey().windowedBy(...).count()` = `GROUP BY ...
//! WINDOW ...`, a KTable upsert = a table row, a tombstone = a row `HAVING` drops). Windows,
//! grace, stream time and EMIT CHANGES/FINAL are the engine's, never duplicated here.
//!
//! [`topology`] compiles statements into the topics, stores and codecs a task needs; [`task`] is
//! one `StreamTask`; [`instance`] is one instance's `TaskManager`: which tasks it runs, which
//! restore, when to commit.

pub mod event;
pub mod instance;
pub mod task;
pub mod topology;

pub use event::{Entry, StreamsEvent};
pub use instance::Instance;
pub use task::{StreamTask, TaskId};
pub use topology::{Naming, RepartitionSpec, Topology};

/// `processing.guarantee` (`StreamsConfig.PROCESSING_GUARANTEE_CONFIG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProcessingGuarantee {
    /// The default: outputs, changelog writes and the offset commit are separate; a crash
    /// between them repeats the work since the last commit.
    #[default]
    AtLeastOnce,
    /// KIP-447: one transactional producer per thread; outputs, changelog writes and the input
    /// offsets (`sendOffsetsToTransaction`) commit or abort together.
    ExactlyOnceV2,
}

impl ProcessingGuarantee {
    /// The config value (`at_least_once`, `exactly_once_v2`).
    pub fn name(self) -> &'static str {
        match self {
            ProcessingGuarantee::AtLeastOnce => "at_least_once",
            ProcessingGuarantee::ExactlyOnceV2 => "exactly_once_v2",
        }
    }

    /// `commit.interval.ms` when the application does not set it: 30 s, or 100 ms under
    /// exactly-once (`StreamsConfig.DEFAULT_COMMIT_INTERVAL_MS`, `EOS_DEFAULT_COMMIT_INTERVAL_MS`).
    pub fn default_commit_interval_ms(self) -> u64 {
        match self {
            ProcessingGuarantee::AtLeastOnce => 30_000,
            ProcessingGuarantee::ExactlyOnceV2 => 100,
        }
    }
}

/// Streams' `windowstore.changelog.additional.retention.ms` default: a window changelog keeps
/// records one day longer than the store (`StreamsConfig`).
pub const WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// The topic configs a changelog topic is created with, the one place that names them.
///
/// A key-value store's changelog is compacted (`UnwindowedUnversionedChangelogTopicConfig`:
/// `cleanup.policy=compact`): the latest value per key is all a restore needs. A window store's
/// is `compact,delete` with `retention.ms` = the store's retention plus a day
/// (`WindowedChangelogTopicConfig.getProperties`), so old windows age out.
pub fn changelog_topic_configs(window_retention_ms: Option<i64>) -> Vec<(&'static str, String)> {
    match window_retention_ms {
        None => vec![("cleanup.policy", "compact".to_string())],
        Some(retention) => vec![
            ("cleanup.policy", "compact,delete".to_string()),
            ("retention.ms", retention.saturating_add(WINDOW_CHANGELOG_ADDITIONAL_RETENTION_MS).to_string()),
        ],
    }
}

/// The topic configs a repartition topic is created with (`RepartitionTopicConfig`):
/// `cleanup.policy=delete` and `retention.ms=-1`, since Streams deletes what it has consumed
/// and committed itself (`TaskManager.maybePurgeCommittedRecords`, DeleteRecords).
pub fn repartition_topic_configs() -> Vec<(&'static str, String)> {
    vec![("cleanup.policy", "delete".to_string()), ("retention.ms", "-1".to_string())]
}

/// A changelog topic's name (`ProcessorStateManager.storeChangelogTopic`).
pub fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// A repartition topic's name (`InternalTopologyBuilder.decorateTopic`, KIP-372 names).
pub fn repartition_topic(application_id: &str, name: &str) -> String {
    format!("{application_id}-{name}-repartition")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topic_names_and_configs_are_streams_own() {
        assert_eq!(changelog_topic("balances", "balance-store"), "balances-balance-store-changelog");
        assert_eq!(repartition_topic("balances", "by-user"), "balances-by-user-repartition");
        assert_eq!(changelog_topic_configs(None), [("cleanup.policy", "compact".to_string())]);
        assert_eq!(
            changelog_topic_configs(Some(1000)),
            [("cleanup.policy", "compact,delete".to_string()), ("retention.ms", "86401000".to_string())]
        );
        assert_eq!(ProcessingGuarantee::AtLeastOnce.default_commit_interval_ms(), 30_000);
        assert_eq!(ProcessingGuarantee::ExactlyOnceV2.default_commit_interval_ms(), 100);
    }
}
