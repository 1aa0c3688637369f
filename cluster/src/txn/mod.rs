//! Transactions: the coordinator side.
//!
//! A transactional producer writes to many partitions and then commits or aborts all of it at
//! once. Its *transaction coordinator* (a broker: the leader of the producer's
//! `__transaction_state` partition) keeps the transaction's state, decides commit or abort by
//! writing that decision to `__transaction_state`, and then writes a *marker* (a control record)
//! into every partition the transaction touched. Consumers reading `read_committed` see a
//! transaction's records only once its commit marker is there.
//!
//! - [`state`]: the states and their legal moves (`TransactionState`).
//! - [`metadata`]: one `transactional.id`'s state, changed in two steps, prepare and complete
//!   (`TransactionMetadata`).
//! - [`coordinator`]: the request handlers, loading on failover, markers, the timeout sweep
//!   (`TransactionCoordinator`, `TransactionStateManager`, `TransactionMarkerChannelManager`).
//! - [`client`]: the producer's side, the Java client's `TransactionManager`.

pub mod client;
pub mod coordinator;
pub mod metadata;
pub mod state;

pub use coordinator::{Reply, TransactionCoordinator, TxnCoordinatorConfig, TxnEffect, TRANSACTION_STATE_TOPIC};
pub use metadata::{TransactionMetadata, TxnTransitMetadata};
pub use state::{TransactionResult, TransactionState};
