//! # ksim-cluster: Kafka's semantics as pure state machines
//!
//! Nothing in this crate sleeps, reads a clock, draws randomness of its own or does IO. Every node
//! kind is a state machine ([`effects::StateMachine`]) that takes an input (a message, a fired
//! timer, a closed connection) with the current virtual time and answers with effects; the
//! simulator in `ksim-sim` owns time, the network and the disks.
//!
//! The map:
//! - [`topic`], [`node`], [`time`]: names for partitions, brokers, nodes and virtual time.
//! - [`config`]: Kafka's configs by their real names, with Kafka's defaults; [`config::validate`]
//!   refuses what Kafka refuses at construction and adjusts what it adjusts.
//! - [`version`]: which Kafka release ksim behaves as, and what each release changes.
//! - [`record`], [`log`], [`epoch_cache`]: records, batches, the partition log and its
//!   leader-epoch cache.
//! - [`protocol`], [`error`]: requests and responses named after Kafka's APIs, and its error codes.
//! - [`metadata`]: the KRaft metadata log and the image brokers fold from it.
//! - [`controller`]: broker registration, fencing, topic creation, leader election, ISR changes.
//! - [`partition_change`]: one partition change as the controller builds it: leader, ISR, ELR.
//! - [`raft`]: KRaft, the Raft that replicates the metadata log among the controllers (KIP-595).
//! - [`broker`]: a broker: leader and follower replicas, high watermark, ISR, purgatory.
//! - [`producer`], [`consumer`]: the client protocol engines under the async client API.
//! - [`partitioner`]: how a producer picks a partition for a key (Java's murmur2, librdkafka's CRC-32).
//! - [`group`]: consumer groups; [`group::assignor`] holds Kafka's partition assignors.
//! - [`txn`]: the transaction coordinator: transaction states, markers to write, fencing.
//! - [`effects`], [`timer`], [`note`]: the boundary to the simulator.
//! - [`connect`]: Kafka Connect; [`connect::smt`] is its single message transforms (the chain and
//!   the built-in transforms and predicates), [`connect::properties`] Java's `.properties` syntax.
//! - [`invariant`]: what every node checks of its own state after each input.
//! - [`ksql`]: ksqlDB's windowed aggregations as a pure engine: parse, analyze (with ksqlDB's
//!   messages), run over records (windows, stream time, grace, record cache, EMIT CHANGES/FINAL).
//! - [`streams`]: Kafka Streams: a topology compiled from ksqlDB statements onto the [`ksql`]
//!   engine, tasks per input partition, state stores with changelog topics and their restoration,
//!   the processing guarantees' commit rules.

pub mod broker;
pub mod client;
pub mod client_metadata;
pub mod config;
pub mod connect;
pub mod connection;
pub mod consumer;
pub mod controller;
pub mod effects;
pub mod epoch_cache;
pub mod error;
pub mod fetch_session;
pub mod group;
pub mod invariant;
pub mod ksql;
pub mod log;
pub mod metadata;
pub mod node;
pub mod note;
pub mod partition_change;
pub mod partitioner;
pub mod producer;
pub mod protocol;
pub mod raft;
pub mod record;
pub mod streams;
#[cfg(test)]
mod testing;
pub mod time;
pub mod timer;
pub mod topic;
pub mod txn;
pub mod version;

pub use effects::{Effects, Input, StateMachine};
pub use error::ErrorCode;
pub use node::NodeId;
pub use time::SimTime;
pub use topic::{BrokerId, TopicName, TopicPartition};
