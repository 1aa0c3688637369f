//! A trace with the indexes that make it quick to move around in.
//!
//! Folding a million events from the start on every step back would take too long, so while
//! loading we keep a copy of the folded view every [`CHECKPOINT_EVERY`] events. Reaching step N is
//! then: take the nearest checkpoint at or before N and apply at most `CHECKPOINT_EVERY - 1`
//! events. Each checkpoint holds offsets and counters, not records, so a thousand of them are a
//! few megabytes.

use crate::fold::{controllers_of, ClusterView};
use crate::markers::Markers;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_sim::narrate::{Detail, Narrator};
use ksim_sim::report::Report;
use ksim_sim::trace::{Event, EventKind, Trace, TraceHeader};

/// Events between two checkpoints. Smaller makes seeking faster and loading heavier.
pub const CHECKPOINT_EVERY: usize = 1024;

#[derive(Clone, Debug)]
pub struct Recording {
    pub trace: Trace,
    /// `checkpoints[i]` is the view after `i * every` events.
    checkpoints: Vec<ClusterView>,
    /// The view after the last event, where the next appended event folds in.
    tail: ClusterView,
    /// Narrates appended events where it left off.
    narrator: Narrator,
    every: usize,
    pub markers: Markers,
    /// The run's controllers: ksim's single one, or a quorum's voters.
    pub controllers: Vec<i32>,
    /// Whether the controllers ran KRaft as a quorum (their Raft notes are in the trace).
    pub has_quorum: bool,
    /// Whether any transaction appears anywhere in the trace.
    pub has_transactions: bool,
    /// Whether any consumer group appears anywhere in the trace.
    pub has_groups: bool,
    /// Whether the run has Kafka Connect (workers, tasks, external systems).
    pub has_connect: bool,
    /// Whether the run has Kafka Streams instances.
    pub has_streams: bool,
    /// The story as `ksim run` narrates it: each shown event's index and its line.
    pub story: Vec<(usize, String)>,
    /// The checker's verdict on the run, when the run (not only its trace) is at hand.
    pub report: Option<Report>,
}

impl Recording {
    pub fn new(trace: Trace) -> Recording {
        Recording::with_checkpoint_interval(trace, CHECKPOINT_EVERY)
    }

    pub fn with_checkpoint_interval(trace: Trace, every: usize) -> Recording {
        let controllers = controllers_of(&trace);
        let mut recording = Recording::empty(trace.header.clone(), controllers, every);
        recording.append(trace.events);
        recording
    }

    /// A recording of a run still going (`ksim serve --tui`): no event yet, its controllers
    /// known from the scenario (a finished trace names them in its events).
    pub fn growing(header: TraceHeader, controllers: Vec<i32>) -> Recording {
        Recording::empty(header, controllers, CHECKPOINT_EVERY)
    }

    fn empty(header: TraceHeader, controllers: Vec<i32>, every: usize) -> Recording {
        let every = every.max(1);
        let tail = ClusterView::new(&header, &controllers);
        let trace = Trace { header, events: Vec::new() };
        Recording {
            markers: Markers::build(&trace),
            trace,
            checkpoints: Vec::new(),
            every,
            tail,
            narrator: Narrator::new(Detail::Story),
            controllers,
            has_quorum: false,
            has_transactions: false,
            has_groups: false,
            has_connect: false,
            has_streams: false,
            story: Vec::new(),
            report: None,
        }
    }

    /// Add events at the end: fold them once (keeping a checkpoint every `every` events), narrate
    /// them, and re-index the markers. Appending in pieces builds the same recording as loading
    /// the whole trace at once.
    pub fn append(&mut self, events: Vec<Event>) {
        let first = self.trace.events.len();
        self.trace.events.extend(events);
        for i in first..self.trace.events.len() {
            // Each checkpoint once: the one at `first` may be there from the last append.
            if i % self.every == 0 && self.checkpoints.len() == i / self.every {
                self.checkpoints.push(self.tail.clone());
            }
            let event = &self.trace.events[i];
            self.tail.apply(event);
            self.has_quorum |=
                matches!((event.node(), &event.kind), (Some(NodeId::Controller(_)), EventKind::Note(Note::Quorum(_))));
        }
        // The checkpoint after the last event when the trace ends on one (an empty trace has
        // one step, 0).
        let len = self.trace.events.len();
        if len % self.every == 0 && self.checkpoints.len() == len / self.every {
            self.checkpoints.push(self.tail.clone());
        }
        self.has_groups = !self.tail.groups.is_empty();
        self.has_transactions = !self.tail.transactions.is_empty();
        self.has_connect = !self.tail.connect.is_empty();
        self.has_streams = !self.tail.streams.is_empty();
        self.narrator.extend(&self.trace, &mut self.story);
        if len > first {
            self.markers = Markers::build(&self.trace);
        }
    }

    /// Number of events, and so the last step.
    pub fn len(&self) -> usize {
        self.trace.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trace.events.is_empty()
    }

    /// Move `view` (currently at step `view.steps`) to `step` (clamped to the trace): forward by
    /// replaying from where it is when that is shorter than from the checkpoint, otherwise from
    /// the nearest checkpoint.
    pub fn seek(&self, view: &mut ClusterView, step: usize) {
        let step = step.min(self.len());
        let base = step / self.every * self.every;
        if !(view.steps <= step && view.steps >= base) {
            let checkpoint = (step / self.every).min(self.checkpoints.len().saturating_sub(1));
            match self.checkpoints.get(checkpoint) {
                Some(c) => view.clone_from(c),
                None => *view = ClusterView::new(&self.trace.header, &self.controllers),
            }
        }
        let from = view.steps.min(step);
        for event in &self.trace.events[from..step] {
            view.apply(event);
        }
    }

    /// The view at `step`, built from the nearest checkpoint.
    pub fn view_at(&self, step: usize) -> ClusterView {
        let mut view = ClusterView::new(&self.trace.header, &self.controllers);
        self.seek(&mut view, step);
        view
    }

    /// Virtual time at a step: the time of the last applied event (0 before the first).
    pub fn time_at(&self, step: usize) -> u64 {
        step.checked_sub(1).and_then(|i| self.trace.events.get(i)).map_or(0, |e| e.time_us)
    }

    /// The step after every event at or before virtual time `time_us`.
    pub fn step_at_time(&self, time_us: u64) -> usize {
        self.trace.events.partition_point(|e| e.time_us <= time_us)
    }

    pub fn end_time_us(&self) -> u64 {
        self.trace.end_time_us()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksim_cluster::node::NodeId;
    use ksim_cluster::note::Note;
    use ksim_cluster::topic::TopicPartition;
    use ksim_sim::trace::{Event, EventKind, TraceHeader};

    fn trace(n: usize) -> Trace {
        let header = TraceHeader {
            scenario: "t".into(),
            title: "t".into(),
            seed: 1,
            brokers: vec![1],
            clients: vec![],
            duration_ms: 1,
            racks: Default::default(),
            overrides: Vec::new(),
        };
        let events = (0..n)
            .map(|i| Event {
                seq: i as u64,
                time_us: i as u64 * 10,
                actor: ksim_sim::trace::Actor::Node(NodeId::Broker(1)),
                kind: EventKind::Note(Note::Appended {
                    partition: TopicPartition::new("t", 0),
                    base_offset: i as i64,
                    count: 1,
                    leader_epoch: 0,
                    as_leader: true,
                    transactional: Vec::new(),
                }),
            })
            .collect();
        Trace { header, events }
    }

    #[test]
    fn seeking_anywhere_equals_folding_from_the_start() {
        let recording = Recording::with_checkpoint_interval(trace(100), 7);
        let mut view = recording.view_at(0);
        for step in [0, 1, 6, 7, 8, 50, 49, 3, 100, 100, 99, 14, 15, 200] {
            recording.seek(&mut view, step);
            let mut fresh = ClusterView::new(&recording.trace.header, &recording.controllers);
            for e in &recording.trace.events[..step.min(100)] {
                fresh.apply(e);
            }
            assert_eq!(view, fresh, "step {step}");
        }
        assert_eq!(recording.step_at_time(35), 4);
        assert_eq!(recording.time_at(4), 30);
    }

    #[test]
    fn appending_in_pieces_builds_the_recording_loading_does() {
        let whole = Recording::with_checkpoint_interval(trace(100), 7);
        let all = trace(100);
        let mut grown = Recording::empty(all.header.clone(), controllers_of(&all), 7);
        for piece in all.events.chunks(13).chain([&[][..]]) {
            grown.append(piece.to_vec());
        }
        assert_eq!(grown.checkpoints, whole.checkpoints);
        assert_eq!(grown.story, whole.story);
        assert_eq!(grown.trace, whole.trace);
        for step in [0, 6, 7, 50, 100] {
            assert_eq!(grown.view_at(step), whole.view_at(step), "step {step}");
        }
    }

    #[test]
    fn an_empty_trace_has_one_step() {
        let recording = Recording::new(trace(0));
        let mut view = recording.view_at(5);
        assert_eq!(view.steps, 0);
        recording.seek(&mut view, 0);
        assert_eq!(recording.time_at(0), 0);
    }
}
