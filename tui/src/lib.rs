//! # ksim-tui: step through a run, and ask "what if?"
//!
//! The terminal UI never runs a model of the cluster. It holds a recorded [`ksim_sim::Trace`] and
//! a cursor into it; the picture of the cluster at the cursor is the table folded from the events
//! before it (the stream-table duality the book teaches). A what-if asks `ksim-sim` for a new
//! trace with one more fault, and carries on from the same step.
//!
//! It follows the Elm architecture: a [`model::Model`], messages ([`update::Msg`]), a pure
//! [`update::update`] that may ask for a side effect ([`update::Cmd`]), and a pure
//! [`view::view`]. Only [`terminal`] touches the terminal and the wall clock.
//!
//! The map:
//! - [`fold`]: [`fold::ClusterView`], the cluster at one step, and `apply(&Event)` that moves it on:
//!   brokers, controllers (or a quorum's voters), partitions with each replica's log (and its
//!   transaction index, so its LSO), clients, groups, transactions.
//! - [`markers`]: which events are interesting (narration, faults, elections, ISR changes,
//!   truncations, retention, group changes, findings) for the timeline and the `]` / `[` jumps,
//!   and where the story begins.
//! - [`recording`]: a trace with its checkpoints and markers, so any step is reached fast.
//! - [`model`]: what the UI knows: the recording, the cursor, the folded view, selection, branch.
//! - [`update`]: messages, and the one function that changes the model.
//! - [`keys`]: which key sends which message.
//! - [`whatif`]: the faults a learner can inject on a broker, client or controller, the
//!   re-simulation that runs them, and what a branch turned out to do differently.
//! - [`app`]: the model plus what it needs to carry out commands (the scenario, for what-ifs).
//! - [`view`]: one file per pane; [`view::view`] lays them out.
//! - [`terminal`]: [`run_tui`]: terminal setup and teardown, the event loop, play timing.

pub mod app;
pub mod fold;
pub mod keys;
pub mod markers;
pub mod model;
pub mod recording;
pub mod terminal;
pub mod update;
pub mod view;
pub mod whatif;

pub use app::{App, LiveRun};
pub use terminal::run_tui;
