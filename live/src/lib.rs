//! ksim's live mode (`ksim serve`): the scenario's cluster runs in real time and real Kafka
//! clients (kcat, librdkafka, Confluent.Kafka, the Java client) talk to it over TCP.
//!
//! The brokers and controllers are the very state machines a simulated run steps
//! (`ksim_cluster`), in the same [`ksim_sim::world::World`] with the same network model, trace and
//! checker; only the driver differs. The map:
//!
//! - [`driver`]: the real-time driver (wall clock, a timer agenda), no madsim runtime.
//! - [`server`]: the listeners, the client connections and the loop that drives the world.
//! - [`calls`]: one Kafka request into ksim requests, their answers into one Kafka response.
//! - [`control`]: faults while clients run: the timeline in real time, the control channel,
//!   where real clients stand in a network cut.
//! - [`groups`]: the consumer group APIs and the consumer protocol's subscription and assignment.
//! - [`txns`]: the transactional APIs (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit).
//! - [`records`]: record batches v2 on the wire to and from ksim's batches.
//! - [`apis`]: the APIs and versions implemented, which ApiVersions advertises.

pub mod apis;
pub mod calls;
pub mod control;
pub mod driver;
pub mod groups;
pub mod records;
pub mod server;
pub mod txns;

pub use server::{ControlHandle, Feed, ServeOptions, Server, StopHandle};
