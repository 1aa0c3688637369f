//! Interesting events: the moments a learner jumps between with `]` and `[`, and the marks on the
//! timeline.
//!
//! Most of a trace is routine (fetches, heartbeats, timers). The story is in a few events: a fault
//! strikes, the controller elects a leader (cleanly or not) or commits a new ISR, a replica
//! truncates its log, a group rebalances, the checker finds something. Each gets a letter, so the
//! timeline reads without colour.

use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::note::Note;
use ksim_sim::trace::{Event, EventKind, Trace};

/// Kinds of interesting event, in increasing importance: where two share a timeline column, the
/// later one in this list is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkerKind {
    /// A consumer group's coordinator started a rebalance: every member must rejoin.
    Rebalance,
    /// The controller committed a new ISR without an election.
    IsrChange,
    /// A replica's log lost its tail, or a consumer found that the log it had read did (KIP-320).
    Truncation,
    /// A leader was elected from the ISR (or the preferred replica took leadership back).
    Election,
    /// No eligible leader: the partition is offline.
    Offline,
    /// A replica outside the ISR became leader: acknowledged writes may be lost.
    UncleanElection,
    /// A fault (kill, power failure, pause, partition, …) or its end (restart, resume, heal).
    Fault,
    /// The checker found something.
    Finding,
}

impl MarkerKind {
    /// The letter drawn on the timeline (the help overlay lists them).
    pub fn glyph(self) -> char {
        match self {
            MarkerKind::Rebalance => 'R',
            MarkerKind::IsrChange => 'I',
            MarkerKind::Truncation => 'T',
            MarkerKind::Election => 'E',
            MarkerKind::Offline => 'O',
            MarkerKind::UncleanElection => 'U',
            MarkerKind::Fault => 'F',
            MarkerKind::Finding => '!',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MarkerKind::Rebalance => "rebalance",
            MarkerKind::IsrChange => "ISR change",
            MarkerKind::Truncation => "truncation",
            MarkerKind::Election => "election",
            MarkerKind::Offline => "partition offline",
            MarkerKind::UncleanElection => "unclean election",
            MarkerKind::Fault => "fault",
            MarkerKind::Finding => "finding",
        }
    }

    pub const ALL: [MarkerKind; 8] = [
        MarkerKind::Fault,
        MarkerKind::Election,
        MarkerKind::UncleanElection,
        MarkerKind::Offline,
        MarkerKind::IsrChange,
        MarkerKind::Truncation,
        MarkerKind::Rebalance,
        MarkerKind::Finding,
    ];
}

/// Whether an event is interesting, and as what.
pub fn classify(event: &Event) -> Option<MarkerKind> {
    match &event.kind {
        EventKind::Fault(_) => Some(MarkerKind::Fault),
        EventKind::Finding(_) => Some(MarkerKind::Finding),
        EventKind::Note(Note::PartitionChanged { election, leader, .. }) => Some(match (election, leader) {
            (Some(ElectionKind::Unclean), _) => MarkerKind::UncleanElection,
            (Some(_), _) => MarkerKind::Election,
            (None, None) => MarkerKind::Offline,
            (None, Some(_)) => MarkerKind::IsrChange,
        }),
        EventKind::Note(Note::Truncated { .. } | Note::TruncationDetected { .. }) => Some(MarkerKind::Truncation),
        // The same moment `Happening::Rebalance` matches.
        EventKind::Note(Note::GroupStateChanged { state, .. }) if state == "PreparingRebalance" => {
            Some(MarkerKind::Rebalance)
        }
        _ => None,
    }
}

/// Every interesting event of a trace, by index, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Markers {
    pub events: Vec<(usize, MarkerKind)>,
}

impl Markers {
    pub fn build(trace: &Trace) -> Markers {
        Markers { events: trace.events.iter().enumerate().filter_map(|(i, e)| classify(e).map(|k| (i, k))).collect() }
    }

    /// The step that shows the next interesting event after `step` (the step right after it,
    /// since a step counts the events applied).
    pub fn next_step(&self, step: usize) -> Option<(usize, MarkerKind)> {
        let i = self.events.partition_point(|(index, _)| *index < step);
        self.events.get(i).map(|(index, kind)| (index + 1, *kind))
    }

    /// The step that shows the previous interesting event before the one at `step`.
    pub fn previous_step(&self, step: usize) -> Option<(usize, MarkerKind)> {
        let i = self.events.partition_point(|(index, _)| index + 1 < step);
        i.checked_sub(1).and_then(|i| self.events.get(i)).map(|(index, kind)| (index + 1, *kind))
    }

    /// The kind of the event at `index`, if it is interesting.
    pub fn at(&self, index: usize) -> Option<MarkerKind> {
        self.events.binary_search_by_key(&index, |(i, _)| *i).ok().map(|i| self.events[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_land_just_after_the_interesting_event() {
        let markers = Markers { events: vec![(3, MarkerKind::Fault), (7, MarkerKind::Election)] };
        assert_eq!(markers.next_step(0), Some((4, MarkerKind::Fault)));
        assert_eq!(markers.next_step(3), Some((4, MarkerKind::Fault)));
        assert_eq!(markers.next_step(4), Some((8, MarkerKind::Election)));
        assert_eq!(markers.next_step(8), None);
        assert_eq!(markers.previous_step(8), Some((4, MarkerKind::Fault)));
        assert_eq!(markers.previous_step(5), Some((4, MarkerKind::Fault)));
        assert_eq!(markers.previous_step(4), None);
        assert_eq!(markers.at(7), Some(MarkerKind::Election));
        assert_eq!(markers.at(6), None);
    }

    #[test]
    fn a_consumer_detecting_a_truncation_is_a_truncation_marker() {
        let note = Note::TruncationDetected {
            partition: ksim_cluster::topic::TopicPartition::new("ledger", 0),
            position: 74,
            epoch: 0,
            divergent: Some((10, 0)),
            raised: false,
        };
        let event = Event {
            seq: 0,
            time_us: 0,
            actor: ksim_sim::trace::Actor::Node(ksim_cluster::node::NodeId::Client(0)),
            kind: EventKind::Note(note),
        };
        assert_eq!(classify(&event), Some(MarkerKind::Truncation));
    }
}
