//! Interesting events: the moments a learner jumps between with `]` and `[`, and the marks on the
//! timeline.
//!
//! Most of a trace is routine (fetches, heartbeats, timers). The story is in a few events: the
//! scenario narrates, a fault strikes, the controller elects a leader (cleanly or not) or commits
//! a new ISR, a replica truncates its log or deletes old segments, a consumer reads past the log,
//! a group changes state, assigns or revokes partitions, a commit fails, a transaction ends or
//! its producer is fenced, the controller quorum changes hands, the checker finds something.
//! Each gets a letter, so the timeline reads without colour.
//!
//! The `]` / `[` jumps stop at these moments, with two rules so that each stop is worth reading:
//! a narration the scenario triggers *on* an event is recorded right after it, so the stop lands
//! after the narration and shows both (and nothing more joins that stop); and a run of elections with nothing else between them
//! before the first fault (start-up, every partition getting its first leader) is one stop, as is
//! a run of the same kind of moment at the same virtual time (three replicas deleting the same
//! segment).

use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::note::Note;
use ksim_sim::trace::{Event, EventKind, Trace};

/// Kinds of interesting event, in increasing importance: where two share a timeline column, the
/// later one in this list is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkerKind {
    /// The scenario's own words for this moment.
    Narration,
    /// A consumer group moved to another state (other than starting a rebalance), or a member got
    /// or lost partitions.
    Group,
    /// A replica deleted its oldest records (retention), moving its log start offset.
    Retention,
    /// A consumer group's coordinator started a rebalance: every member must rejoin.
    Rebalance,
    /// A consumer's offset commit failed (it was no longer a member of the current generation).
    CommitFailed,
    /// A consumer's position is not in the log: OFFSET_OUT_OF_RANGE.
    OutOfRange,
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
    /// A transaction ended (committed or aborted), or its producer was fenced or failed.
    Transaction,
    /// The controller quorum changed hands: a controller became the active one, or a leader
    /// resigned or renounced.
    Quorum,
    /// The checker found something.
    Finding,
}

impl MarkerKind {
    /// The letter drawn on the timeline (the help overlay lists them).
    pub fn glyph(self) -> char {
        match self {
            MarkerKind::Narration => '#',
            MarkerKind::Group => 'G',
            MarkerKind::Retention => 'D',
            MarkerKind::CommitFailed => 'C',
            MarkerKind::OutOfRange => 'X',
            MarkerKind::Rebalance => 'R',
            MarkerKind::IsrChange => 'I',
            MarkerKind::Truncation => 'T',
            MarkerKind::Election => 'E',
            MarkerKind::Offline => 'O',
            MarkerKind::UncleanElection => 'U',
            MarkerKind::Fault => 'F',
            MarkerKind::Transaction => 'M',
            MarkerKind::Quorum => 'Q',
            MarkerKind::Finding => '!',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MarkerKind::Narration => "narration",
            MarkerKind::Group => "group state/assignment",
            MarkerKind::Retention => "retention deletes",
            MarkerKind::CommitFailed => "commit failed",
            MarkerKind::OutOfRange => "OFFSET_OUT_OF_RANGE",
            MarkerKind::Rebalance => "rebalance",
            MarkerKind::IsrChange => "ISR change",
            MarkerKind::Truncation => "truncation",
            MarkerKind::Election => "election",
            MarkerKind::Offline => "partition offline",
            MarkerKind::UncleanElection => "unclean election",
            MarkerKind::Fault => "fault",
            MarkerKind::Transaction => "transaction ended",
            MarkerKind::Quorum => "quorum leader",
            MarkerKind::Finding => "finding",
        }
    }

    pub const ALL: [MarkerKind; 15] = [
        MarkerKind::Narration,
        MarkerKind::Fault,
        MarkerKind::Election,
        MarkerKind::UncleanElection,
        MarkerKind::Offline,
        MarkerKind::IsrChange,
        MarkerKind::Truncation,
        MarkerKind::Rebalance,
        MarkerKind::Group,
        MarkerKind::CommitFailed,
        MarkerKind::Retention,
        MarkerKind::OutOfRange,
        MarkerKind::Transaction,
        MarkerKind::Quorum,
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
        EventKind::Note(
            Note::GroupStateChanged { .. } | Note::PartitionsAssigned { .. } | Note::PartitionsRevoked { .. },
        ) => Some(MarkerKind::Group),
        EventKind::Note(Note::CommitFailed { .. }) => Some(MarkerKind::CommitFailed),
        EventKind::Note(Note::LogStartMoved { .. } | Note::LogCleaned { .. }) => Some(MarkerKind::Retention),
        EventKind::Note(Note::OffsetOutOfRange { .. }) => Some(MarkerKind::OutOfRange),
        EventKind::Note(Note::TxnEnded { .. } | Note::TxnFailed { .. }) => Some(MarkerKind::Transaction),
        EventKind::Note(
            Note::ControllerActivated { .. }
            | Note::ControllerRenounced { .. }
            | Note::Quorum(ksim_cluster::raft::RaftEvent::Resigned { .. }),
        ) => Some(MarkerKind::Quorum),
        EventKind::Narration(_) => Some(MarkerKind::Narration),
        _ => None,
    }
}

/// Every interesting event of a trace, by index, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Markers {
    pub events: Vec<(usize, MarkerKind)>,
    /// Where `]` and `[` stop: a step (events applied) and the kind of moment it shows, in order.
    pub stops: Vec<(usize, MarkerKind)>,
    /// The step where the story begins: the scenario's topics exist and each of their partitions
    /// has its first leader (with the narration of that moment, if any). Start-up is before it.
    pub story_start: Option<usize>,
}

impl Markers {
    pub fn build(trace: &Trace) -> Markers {
        let events: Vec<(usize, MarkerKind)> =
            trace.events.iter().enumerate().filter_map(|(i, e)| classify(e).map(|k| (i, k))).collect();
        let stops = stops(&events, &trace.events);
        let story_start = first_leaders(&trace.events)
            .and_then(|index| stops.iter().map(|(step, _)| *step).find(|step| *step > index));
        Markers { events, stops, story_start }
    }

    /// The next stop after `step`.
    pub fn next_step(&self, step: usize) -> Option<(usize, MarkerKind)> {
        let i = self.stops.partition_point(|(s, _)| *s <= step);
        self.stops.get(i).copied()
    }

    /// The previous stop before `step`.
    pub fn previous_step(&self, step: usize) -> Option<(usize, MarkerKind)> {
        let i = self.stops.partition_point(|(s, _)| *s < step);
        i.checked_sub(1).and_then(|i| self.stops.get(i)).copied()
    }

    /// The kind of the event at `index`, if it is interesting.
    pub fn at(&self, index: usize) -> Option<MarkerKind> {
        self.events.binary_search_by_key(&index, |(i, _)| *i).ok().map(|i| self.events[i].1)
    }
}

/// The stops of the `]` / `[` jumps, from the interesting events (see the module comment).
fn stops(markers: &[(usize, MarkerKind)], events: &[Event]) -> Vec<(usize, MarkerKind)> {
    let first_fault = markers.iter().find(|(_, k)| *k == MarkerKind::Fault).map_or(usize::MAX, |(i, _)| *i);
    let mut stops: Vec<(usize, MarkerKind)> = Vec::new();
    // The virtual time of the last event folded into the last stop.
    let mut last_time = None;
    // A stop that took its narration is where the scenario speaks: nothing more joins it.
    let mut narrated = false;
    for &(index, kind) in markers {
        let time_us = events[index].time_us;
        let after = index + 1;
        if let Some(stop) = stops.last_mut() {
            let same_time = last_time == Some(time_us);
            // A narration triggered by the event just before it is part of that stop.
            if kind == MarkerKind::Narration && stop.0 == index && same_time {
                stop.0 = after;
                narrated = true;
                continue;
            }
            // A narration the scenario times for the moment of a fault (or any stop) at the
            // same virtual time: one stop, after both, about that moment.
            if stop.1 == MarkerKind::Narration && kind != MarkerKind::Narration && !narrated && same_time {
                *stop = (after, kind);
                narrated = true;
                continue;
            }
            let startup_elections = kind == MarkerKind::Election && stop.1 == kind && index < first_fault;
            let same_moment = stop.1 == kind && same_time;
            if !narrated && (startup_elections || same_moment) {
                stop.0 = after;
                last_time = Some(time_us);
                continue;
            }
        }
        stops.push((after, kind));
        last_time = Some(time_us);
        narrated = false;
    }
    stops
}

/// The index of the event after which every partition of every topic created so far (internal
/// `__` topics aside) has had a leader; `None` if that never happens.
fn first_leaders(events: &[Event]) -> Option<usize> {
    let mut waiting: std::collections::BTreeSet<(String, i32)> = std::collections::BTreeSet::new();
    let mut led: std::collections::BTreeSet<(String, i32)> = std::collections::BTreeSet::new();
    let mut created = false;
    for (i, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::Note(Note::TopicCreated { topic, assignment }) if !topic.starts_with("__") => {
                created = true;
                for p in 0..assignment.len() {
                    let key = (topic.clone(), p as i32);
                    if !led.contains(&key) {
                        waiting.insert(key);
                    }
                }
            }
            EventKind::Note(Note::PartitionChanged { partition, leader: Some(_), .. }) => {
                let key = (partition.topic.to_string(), partition.partition);
                waiting.remove(&key);
                led.insert(key);
                if created && waiting.is_empty() {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time_us: u64, kind: EventKind) -> Event {
        Event { seq: 0, time_us, actor: ksim_sim::trace::Actor::World, kind }
    }

    fn build(kinds: &[(u64, Option<MarkerKind>)]) -> Markers {
        // Stand-in events: what matters to the stops is their time and their marker kind.
        let events: Vec<Event> = kinds.iter().map(|(t, _)| event(*t, EventKind::End)).collect();
        let markers: Vec<(usize, MarkerKind)> =
            kinds.iter().enumerate().filter_map(|(i, (_, k))| k.map(|k| (i, k))).collect();
        Markers { stops: stops(&markers, &events), events: markers, story_start: None }
    }

    #[test]
    fn start_up_elections_are_one_stop_and_a_narration_joins_its_event() {
        use MarkerKind::*;
        let markers = build(&[
            (0, Some(Narration)), // 0: "three brokers start"
            (5, Some(Election)),  // 1: payments-0
            (5, Some(Narration)), // 2: narrated on that election
            (6, Some(Election)),  // 3: __consumer_offsets-0
            (7, Some(Election)),  // 4: __consumer_offsets-1
            (8, None),
            (9, Some(Fault)),     // 6: a broker is killed
            (20, Some(Election)), // 7: failover
            (21, Some(Election)), // 8: a later election, its own stop
            (30, Some(Retention)),
            (30, Some(Retention)), // the same deletion on another replica
        ]);
        assert_eq!(
            markers.stops,
            vec![
                (1, Narration),
                (3, Election),
                (5, Election),
                (7, Fault),
                (8, Election),
                (9, Election),
                (11, Retention)
            ]
        );
        assert_eq!(markers.next_step(1), Some((3, Election)), "lands after the narration, which shows");
        assert_eq!(markers.previous_step(7), Some((5, Election)));
    }

    #[test]
    fn the_story_begins_once_the_scenarios_topic_has_its_leader() {
        let tp = ksim_cluster::topic::TopicPartition::new("payments", 0);
        let controller = ksim_sim::trace::Actor::Node(ksim_cluster::node::NodeId::Controller(0));
        let note = |time_us, note| Event { seq: 0, time_us, actor: controller, kind: EventKind::Note(note) };
        let changed = |topic: &str, leader| Note::PartitionChanged {
            partition: ksim_cluster::topic::TopicPartition::new(topic, 0),
            leader,
            leader_epoch: 0,
            isr: vec![1],
            elr: vec![],
            partition_epoch: 0,
            election: Some(ElectionKind::Clean),
        };
        let trace = Trace {
            header: ksim_sim::trace::TraceHeader {
                scenario: "t".into(),
                title: "t".into(),
                seed: 1,
                brokers: vec![1],
                clients: vec![],
                duration_ms: 1000,
                racks: Default::default(),
                overrides: Vec::new(),
            },
            events: vec![
                event(0, EventKind::Narration("brokers start".into())),
                note(1, Note::TopicCreated { topic: "__consumer_offsets".into(), assignment: vec![vec![1]] }),
                note(2, changed("__consumer_offsets", Some(1))),
                note(3, Note::TopicCreated { topic: tp.topic.to_string(), assignment: vec![vec![1]] }),
                note(4, changed("payments", None)),
                note(5, changed("payments", Some(1))),
                event(5, EventKind::Narration("broker 1 leads payments-0".into())),
                event(6, EventKind::End),
            ],
        };
        let markers = Markers::build(&trace);
        assert_eq!(markers.story_start, Some(7), "after the election and its narration");
    }

    #[test]
    fn jumps_land_just_after_the_interesting_event() {
        let mut kinds = vec![(0, None); 9];
        kinds[3] = (1, Some(MarkerKind::Fault));
        kinds[7] = (2, Some(MarkerKind::Election));
        let markers = build(&kinds);
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
