//! The narrated run: a trace as lines a person reads.
//!
//! [`Detail::Story`] keeps what a learner follows: faults, decisions (notes), narration, what the
//! applications did, drops, closed connections and findings; it leaves out the routine traffic
//! (every fetch, heartbeat and timer) that [`Detail::Full`] shows too.

use crate::trace::{Actor, Class, DropReason, Event, EventKind, Fault, Trace};
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use std::collections::BTreeSet;
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    Story,
    Full,
}

fn names(trace: &Trace, nodes: &[NodeId]) -> String {
    nodes.iter().map(|n| trace.node_name(*n)).collect::<Vec<_>>().join(", ")
}

/// The plain-language line for one event (without time and node), if `detail` shows it.
pub fn describe(trace: &Trace, event: &Event, detail: Detail) -> Option<String> {
    let full = detail == Detail::Full;
    Some(match &event.kind {
        EventKind::Send { to, summary, .. } => {
            if !full {
                return None;
            }
            format!("-> {}: {summary}", trace.node_name(*to))
        }
        EventKind::Deliver { from, .. } => {
            if !full {
                return None;
            }
            format!("<- {} (message arrived)", trace.node_name(*from))
        }
        EventKind::Drop { to, reason, id } => {
            let why = match reason {
                DropReason::Partitioned => "held back by a network partition (TCP resends it once the link heals)",
                DropReason::Lost => "lost in the network (TCP retransmits it after 200 ms, doubling each time)",
                DropReason::ReceiverDown => "its process is down",
                DropReason::ReceiverPoweredOff => "it has no power",
                DropReason::ConnectionClosed => "the connection closed",
            };
            if !full && *reason == DropReason::ReceiverPoweredOff {
                return None;
            }
            format!("message #{id} to {} dropped: {why}", trace.node_name(*to))
        }
        EventKind::ConnectionClosed { peer } => format!("connection to {} closed", trace.node_name(*peer)),
        EventKind::TimerFired { timer } => {
            if !full {
                return None;
            }
            format!("timer: {timer}")
        }
        // The fetcher by its scenario name (the broker knows only its node).
        EventKind::Note(Note::FetchSessionEvicted { session_id, owner, fetcher }) => format!(
            "fetch session cache full (max.incremental.fetch.session.cache.slots): evicted {}'s session \
             {session_id} to open one for {}",
            trace.node_name(*owner),
            trace.node_name(*fetcher)
        ),
        EventKind::Note(Note::FetchSessionRefused { fetcher }) => format!(
            "fetch session cache full and nothing it may evict: {} fetches without a session",
            trace.node_name(*fetcher)
        ),
        EventKind::Note(note) => {
            if !full && hidden_in_story(event.actor, note) {
                return None;
            }
            note.to_string()
        }
        EventKind::Fault(fault) => match fault {
            Fault::Kill(n) => {
                format!("FAULT: {} is killed (process crash; its page cache survives)", trace.node_name(*n))
            }
            Fault::PowerFail(n) => format!("FAULT: {} loses power (unflushed writes are gone)", trace.node_name(*n)),
            Fault::Restart(n) => format!("{} restarts", trace.node_name(*n)),
            Fault::Pause(n) => format!("FAULT: {} freezes (a long GC pause)", trace.node_name(*n)),
            Fault::Resume(n) => format!("{} resumes, unaware that time passed", trace.node_name(*n)),
            Fault::Stop(n) => format!("{} is asked to stop gracefully (SIGTERM)", trace.node_name(*n)),
            Fault::Exit(n) => format!("{} finishes its shutdown and exits, every log flushed", trace.node_name(*n)),
            Fault::Partition(groups) => {
                let parts: Vec<String> = groups.iter().map(|g| format!("[{}]", names(trace, g))).collect();
                format!("FAULT: network partition between {}", parts.join(" | "))
            }
            Fault::PartitionOneWay { from, to } => {
                format!("FAULT: messages from [{}] to [{}] are dropped (one way)", names(trace, from), names(trace, to))
            }
            Fault::Heal => "the network heals".to_string(),
            Fault::SlowLink { a, b, extra_latency_ms } => {
                format!(
                    "FAULT: link {} <-> {} slows by {extra_latency_ms} ms",
                    trace.node_name(*a),
                    trace.node_name(*b)
                )
            }
        },
        EventKind::Narration(text) => format!("# {text}"),
        EventKind::App(text) => text.clone(),
        EventKind::Processed { partition, offset } => {
            if !full {
                return None;
            }
            format!("processed {partition}@{offset}")
        }
        EventKind::Finding(f) => {
            let class = match f.class() {
                Class::Bug => "BUG",
                Class::Violation => "VIOLATION",
                Class::Lesson => "finding",
            };
            format!("{class}: {} - {}", f.rule, f.message)
        }
        EventKind::End => "end of run".to_string(),
    })
}

/// Notes that are routine in a story: followers copying and learning the HW, page-cache
/// writeback, the metadata quorum committing nothing but idle no-ops, and producers'
/// acknowledgements, which the summary counts.
fn hidden_in_story(actor: Actor, note: &Note) -> bool {
    match note {
        Note::Flushed { .. } | Note::Appended { as_leader: false, .. } | Note::Recovered { log_end_offset: 0, .. } => {
            true
        }
        // Followers learn the high watermark from the leader; the leader's moves tell the story.
        Note::HighWatermark { on_leader, .. } => !on_leader || !matches!(actor, Actor::Node(NodeId::Broker(_))),
        // The active controller's idle no-ops (KIP-835) commit every
        // `metadata.max.idle.interval.ms` at every node; the report and the TUI count them.
        Note::Quorum(ksim_cluster::raft::RaftEvent::HighWatermark { only_no_ops: true, .. }) => true,
        _ => false,
    }
}

/// The whole trace as text, one line per shown event (see [`lines`]).
pub fn render(trace: &Trace, detail: Detail) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}, seed {})", trace.header.title, trace.header.scenario, trace.header.seed);
    if !trace.header.overrides.is_empty() {
        let _ = writeln!(out, "with --set {}", trace.header.overrides.join(", "));
    }
    for (index, line) in lines(trace, detail) {
        let event = &trace.events[index];
        let _ = writeln!(out, "{:>9} {:<12} {line}", SimTime(event.time_us).to_string(), trace.actor_name(event.actor));
    }
    out
}

/// The shown events, each by its index in the trace with its line (without time and node): what
/// [`render`] prints, and what the TUI's story pane scrolls through.
///
/// In a story, a line that repeats what the same node already said since the last fault or
/// narration is left out (a producer retrying a dead leader says the same thing every backoff),
/// and the first repeat is marked.
pub fn lines(trace: &Trace, detail: Detail) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    Narrator::new(detail).extend(trace, &mut out);
    out
}

/// [`lines`] for a trace that grows (a live run): each call narrates the events added since the
/// last, remembering what was said, so the lines equal those of one call over the whole trace.
#[derive(Clone, Debug)]
pub struct Narrator {
    detail: Detail,
    said: BTreeSet<(Actor, String)>,
    next: usize,
}

impl Narrator {
    pub fn new(detail: Detail) -> Narrator {
        Narrator { detail, said: BTreeSet::new(), next: 0 }
    }

    /// Narrate the events of `trace` from the first one not yet narrated into `out`.
    pub fn extend(&mut self, trace: &Trace, out: &mut Vec<(usize, String)>) {
        let detail = self.detail;
        for (index, event) in trace.events.iter().enumerate().skip(self.next) {
            self.next = index + 1;
            if matches!(event.kind, EventKind::Fault(_) | EventKind::Narration(_)) {
                self.said.clear();
            }
            let Some(mut line) = describe(trace, event, detail) else { continue };
            if detail == Detail::Story
                && matches!(
                    event.kind,
                    EventKind::Drop { .. }
                        | EventKind::ConnectionClosed { .. }
                        | EventKind::Note(Note::ProduceRetry { .. })
                        | EventKind::Note(Note::FetchSessionRefused { .. })
                )
            {
                let key = (event.actor, strip_ids(&line));
                if self.said.contains(&key) {
                    continue;
                }
                self.said.insert(key);
                line.push_str(" (repeats are not shown)");
            }
            out.push((index, line));
        }
    }
}

/// A line with message numbers removed, so repeats compare equal.
fn strip_ids(line: &str) -> String {
    line.split(' ').filter(|w| !w.starts_with('#')).collect::<Vec<_>>().join(" ")
}
