//! The model: everything the UI knows, and nothing it computes on its own.
//!
//! The cluster picture (`view`) is always `recording.view_at(cursor)`; keeping it in the model
//! only saves refolding on every frame. Everything else is the learner's own state: where they
//! are, what they selected, whether they are playing, and which branch they are on.

use crate::fold::ClusterView;
use crate::recording::Recording;
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use ksim_sim::trace::{Event, Fault, Trace};

/// What the learner selected with `tab`: it focuses the panes and is the target of a what-if.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    #[default]
    Nothing,
    Broker(BrokerId),
    Partition(TopicPartition),
    Group(String),
    /// A producer or consumer application.
    Client(NodeId),
    /// A controller (a voter of the quorum, or ksim's single controller).
    Controller(i32),
}

/// Play speeds: virtual time per wall-clock time, as a fraction.
pub const SPEEDS: [(u64, u64); 9] = [(1, 1000), (1, 100), (1, 10), (1, 2), (1, 1), (2, 1), (5, 1), (10, 1), (100, 1)];
/// Real time to start with: the leader-failover walkthrough plays in 45 s.
pub const DEFAULT_SPEED: usize = 4;

/// A what-if branch: the original scenario plus these faults.
#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    pub faults: Vec<(SimTime, Fault)>,
    /// What the learner asked, in words (`kill broker-1 at 10.002s`), one per fault.
    pub labels: Vec<String>,
    /// What turned out differently from the original run, and why, in words (filled in when the
    /// branch's run is back; see [`crate::whatif::differences`]).
    pub differences: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub recording: Recording,
    /// The original run while the learner is on a branch.
    pub original: Option<Recording>,
    pub branch: Option<Branch>,
    /// Events applied: 0 is before the first event, `recording.len()` after the last.
    pub cursor: usize,
    /// The cluster folded at `cursor`.
    pub view: ClusterView,
    pub playing: bool,
    pub speed: usize,
    /// While playing: the virtual time the play head has reached (between events).
    pub play_time_us: u64,
    pub selection: Selection,
    /// The body shows the log as a picture (ruler, strips, consumers) instead of the partitions.
    pub log_view: bool,
    pub help: bool,
    /// A one-line message for the learner (what a key did, or why it could not).
    pub status: Option<String>,
    pub quit: bool,
    /// The run is still going (`ksim serve --tui`): events arrive as it runs, and the what-if
    /// keys act on the live cluster instead of branching.
    pub live: bool,
    /// Live: the cursor stays at the newest event as events arrive.
    pub follow: bool,
}

impl Model {
    pub fn new(trace: Trace) -> Model {
        Model::from_recording(Recording::new(trace))
    }

    pub fn from_recording(recording: Recording) -> Model {
        let view = recording.view_at(0);
        Model {
            recording,
            original: None,
            branch: None,
            cursor: 0,
            view,
            playing: false,
            speed: DEFAULT_SPEED,
            play_time_us: 0,
            selection: Selection::Nothing,
            log_view: false,
            help: false,
            status: None,
            quit: false,
            live: false,
            follow: false,
        }
    }

    /// Move the cursor to `step` (clamped) and refold.
    pub fn seek(&mut self, step: usize) {
        let step = step.min(self.recording.len());
        self.recording.seek(&mut self.view, step);
        self.cursor = step;
    }

    /// Open where the story begins (the scenario's topics have their leaders), with a hint of the
    /// keys that move on from there. A trace without such a moment stays at the start.
    pub fn open_at_story(&mut self) {
        if let Some(step) = self.recording.markers.story_start {
            self.seek(step);
            self.status = Some("the story begins here: ] jumps to the next moment, [ back, g to start-up".to_string());
        }
    }

    /// Replace the recording (a branch, or back to the original) and stay at the same step.
    /// Returns the recording it replaced.
    pub fn switch_to(&mut self, recording: Recording) -> Recording {
        let previous = std::mem::replace(&mut self.recording, recording);
        self.cursor = self.cursor.min(self.recording.len());
        self.view = self.recording.view_at(self.cursor);
        previous
    }

    /// The last event applied: the one the narration line describes.
    pub fn current_event(&self) -> Option<&Event> {
        self.cursor.checked_sub(1).and_then(|i| self.recording.trace.events.get(i))
    }

    pub fn time_us(&self) -> u64 {
        self.recording.time_at(self.cursor)
    }

    pub fn trace(&self) -> &Trace {
        &self.recording.trace
    }

    /// Everything `tab` can select at this step, in order.
    pub fn selectable(&self) -> Vec<Selection> {
        let mut out: Vec<Selection> = self.trace().header.brokers.iter().map(|b| Selection::Broker(*b)).collect();
        // Internal topics (`__consumer_offsets`, 50 partitions by default) come last.
        let (internal, user): (Vec<_>, Vec<_>) = self.view.partitions.keys().partition(|tp| is_internal(tp));
        out.extend(user.into_iter().cloned().map(Selection::Partition));
        out.extend(self.view.groups.keys().cloned().map(Selection::Group));
        out.extend(self.view.clients.keys().copied().map(Selection::Client));
        out.extend(self.recording.controllers.iter().copied().map(Selection::Controller));
        out.extend(internal.into_iter().cloned().map(Selection::Partition));
        out
    }

    /// The node a what-if applies to: the selected broker, client or controller, or the current
    /// leader of the selected partition, or the coordinator of the selected group.
    pub fn target_node(&self) -> Result<NodeId, String> {
        match &self.selection {
            Selection::Broker(b) => Ok(NodeId::Broker(*b)),
            Selection::Client(node) => Ok(*node),
            Selection::Controller(id) => Ok(NodeId::Controller(*id)),
            Selection::Partition(tp) => self
                .view
                .partitions
                .get(tp)
                .and_then(|p| p.leader)
                .map(NodeId::Broker)
                .ok_or_else(|| format!("{tp} has no leader now: select a broker with tab")),
            Selection::Group(g) => self
                .view
                .groups
                .get(g)
                .and_then(|g| g.coordinator)
                .map(NodeId::Broker)
                .ok_or_else(|| format!("group {g} has no coordinator now: select a broker with tab")),
            Selection::Nothing => {
                Err("select a broker first (tab; clients and controllers too), then press the what-if key".to_string())
            }
        }
    }
}

/// Kafka's internal topics start with two underscores.
pub fn is_internal(tp: &TopicPartition) -> bool {
    tp.topic.starts_with("__")
}
