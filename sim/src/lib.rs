//! # ksim-sim: the deterministic world ksim runs in
//!
//! A scenario runs under a seed on madsim: every cluster node is a madsim node hosting one state
//! machine from `ksim-cluster`; the network, the disks, the faults and the clock belong to this
//! crate. Every run yields a [`trace::Trace`], byte-identical for the same scenario, seed and
//! build.
//!
//! The map:
//! - [`scenario`]: scenario files (RON): parsing, validation with errors that name the field.
//! - [`run`]: `run(&Scenario, name, seed) -> Outcome`: one run on a fresh thread and runtime.
//! - [`world`]: the nodes, their disks and timers, faults; [`host`]: a node's main task.
//! - [`fabric`]: the network: per-connection FIFO, latency, loss, partitions.
//! - [`rng`]: one seed, a tree of named ChaCha streams.
//! - [`fuzz`]: random fault schedules per seed, and shrinking a failure to a minimal scenario.
//! - [`apps`]: the async client API and the scenario applications built on it; [`streams_app`]:
//!   a Kafka Streams instance (or a ksqlDB server's query) driving `ksim_cluster::streams`.
//! - [`check`]: the rules Kafka keeps (invariants after every step, history checks at the end).
//! - [`happening`], [`report`]: expectations and the report of a run.
//! - [`trace`], [`narrate`]: the trace and its narrated rendering; [`digest`]: the compact binary
//!   encoding the trace's digest hashes.

#[cfg(not(madsim))]
compile_error!(
    "the `ksim-sim` crate must be built with `--cfg madsim` (see .cargo/config.toml; never export RUSTFLAGS)"
);

pub mod apps;
pub mod check;
pub mod clock;
pub mod compare;
pub mod connect_worker;
pub mod digest;
pub mod fuzz;
pub mod host;
pub mod narrate;
pub mod net;
pub mod nodes;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod streams_app;
pub mod trace;
pub mod world;

pub use run::{run, run_with, Outcome, RunOptions};
pub use scenario::Scenario;
pub use trace::Trace;
