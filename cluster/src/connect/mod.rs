//! # Kafka Connect
//!
//! Connect moves data between Kafka and other systems: *source* connectors write records into
//! Kafka, *sink* connectors read them out, and Connect workers run their tasks. The pieces, each
//! a pure state machine or function (the simulator's workers drive them, `ksim_sim::connect`):
//! - [`smt`]: single message transforms, the chain a connector applies to each record (the same
//!   engine `ksim smt` runs);
//! - [`properties`]: Java's `.properties` syntax, in which connector configurations are written;
//! - [`connector`]: a connector's configuration as `ConnectorConfig` checks it;
//! - [`external`]: the systems outside Kafka: a source table, a sink store (upsert or append);
//! - [`source_task`]: `WorkerSourceTask` with `SubmittedRecords` and `OffsetStorageWriter`;
//! - [`sink_task`]: `WorkerSinkTask`'s convert, transform and write;
//! - [`errors`]: `RetryWithToleranceOperator` and `DeadLetterQueueReporter`;
//! - [`herder`]: the leader's `IncrementalCooperativeAssignor` (and the eager assignor);
//! - [`protocol`]: what workers put in the group protocol's JoinGroup and SyncGroup;
//! - [`worker_coordinator`]: a worker's side of its group (`WorkerCoordinator`);
//! - [`event`]: what all of it records in the trace.

pub mod connector;
pub mod errors;
pub mod event;
pub mod external;
pub mod herder;
pub mod properties;
pub mod protocol;
pub mod sink_task;
pub mod smt;
pub mod source_task;
pub mod worker_coordinator;
