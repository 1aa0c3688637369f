//! The report of a run: which expectations held, and what the checker found.

use crate::nodes::current_leaders;
use crate::nodes::Machine;
use crate::scenario::happening;
use crate::scenario::{parse_partition, Condition, Expectation, Happening, Scenario};
use crate::trace::{Class, Event, EventKind, Finding, Rule};
use crate::world::World;
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub struct ExpectationResult {
    pub expectation: String,
    pub met: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReportedFinding {
    pub seq: u64,
    pub time_us: u64,
    pub finding: Finding,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub scenario: String,
    pub title: String,
    pub seed: u64,
    pub events: usize,
    pub end_time_us: u64,
    pub expectations: Vec<ExpectationResult>,
    pub findings: Vec<ReportedFinding>,
    /// The `--set` overrides the run applied.
    pub overrides: Vec<String>,
    /// With a controller quorum: how much metadata the quorum committed, and how much of it
    /// was the active controller's idle no-ops (KIP-835), which the story does not narrate.
    pub metadata: Option<(usize, usize)>,
}

impl Report {
    pub fn evaluate(scenario: &Scenario, world: &World) -> Report {
        let events = world.events();
        let clients = &world.header.clients;
        let mut expectations = Vec::new();
        for expectation in &scenario.expect {
            let text = ron::to_string(expectation).unwrap_or_else(|_| format!("{expectation:?}"));
            let (met, detail) = match expectation {
                Expectation::Sometimes(h) => match events.iter().find(|e| happening::matches(h, e, clients)) {
                    Some(e) => (true, format!("first at step {} ({})", e.seq, SimTime(e.time_us))),
                    None => (false, "never happened".to_string()),
                },
                Expectation::Never(h) => match events.iter().find(|e| happening::matches(h, e, clients)) {
                    Some(e) => (false, format!("happened at step {} ({})", e.seq, SimTime(e.time_us))),
                    None => (true, "never happened".to_string()),
                },
                Expectation::Finally(c) => final_condition(scenario, world, c),
                Expectation::SometimesBetween(h, from_ms, to_ms) => {
                    let window = SimTime::from_ms(*from_ms).0..=SimTime::from_ms(*to_ms).0;
                    let all: Vec<&Event> = events.iter().filter(|e| happening::matches(h, e, clients)).collect();
                    match all.iter().find(|e| window.contains(&e.time_us)) {
                        Some(e) => (true, format!("at step {} ({})", e.seq, SimTime(e.time_us))),
                        None => (false, not_in_window(&all)),
                    }
                }
                Expectation::NeverBefore(h, at_ms) => {
                    let before = |e: &&Event| e.time_us < SimTime::from_ms(*at_ms).0;
                    match events.iter().filter(|e| happening::matches(h, e, clients)).find(before) {
                        Some(e) => (false, format!("happened at step {} ({})", e.seq, SimTime(e.time_us))),
                        None => (true, format!("not before {}", SimTime::from_ms(*at_ms))),
                    }
                }
                Expectation::NeverAfter(h, at_ms) => {
                    let after = |e: &&Event| e.time_us > SimTime::from_ms(*at_ms).0;
                    match events.iter().filter(|e| happening::matches(h, e, clients)).find(after) {
                        Some(e) => (false, format!("happened at step {} ({})", e.seq, SimTime(e.time_us))),
                        None => (true, format!("not after {}", SimTime::from_ms(*at_ms))),
                    }
                }
                Expectation::Count(h, n) => count(events, h, clients, *n, *n),
                Expectation::CountBetween(h, min, max) => count(events, h, clients, *min, *max),
                Expectation::Before(a, b) => {
                    let first = |h| events.iter().find(|e| happening::matches(h, e, clients));
                    match (first(a), first(b)) {
                        (Some(x), Some(y)) if x.seq < y.seq => (
                            true,
                            format!(
                                "step {} ({}) then step {} ({})",
                                x.seq,
                                SimTime(x.time_us),
                                y.seq,
                                SimTime(y.time_us)
                            ),
                        ),
                        (Some(x), Some(y)) => (
                            false,
                            format!(
                                "the second came first: step {} ({}), then step {} ({})",
                                y.seq,
                                SimTime(y.time_us),
                                x.seq,
                                SimTime(x.time_us)
                            ),
                        ),
                        (None, _) => (false, "the first never happened".to_string()),
                        (Some(_), None) => (false, "the second never happened".to_string()),
                    }
                }
            };
            expectations.push(ExpectationResult { expectation: text, met, detail });
        }
        let findings = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Finding(f) => Some(ReportedFinding { seq: e.seq, time_us: e.time_us, finding: f.clone() }),
                _ => None,
            })
            .collect();
        Report {
            scenario: world.header.scenario.clone(),
            title: world.header.title.clone(),
            seed: world.header.seed,
            events: events.len(),
            end_time_us: events.last().map_or(0, |e| e.time_us),
            expectations,
            findings,
            overrides: world.header.overrides.clone(),
            metadata: world.checker.committed_metadata(),
        }
    }

    /// Every expectation met and no finding that breaks a promise Kafka makes.
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|e| e.met) && self.findings.iter().all(|f| !f.finding.class().fails())
    }

    /// The report as a person reads it (also what the snapshots hold).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario: {} ({})", self.title, self.scenario);
        if !self.overrides.is_empty() {
            let _ = writeln!(out, "overrides: {}", self.overrides.join(", "));
        }
        let _ = writeln!(
            out,
            "seed: {}   events: {}   virtual time: {}",
            self.seed,
            self.events,
            SimTime(self.end_time_us)
        );
        if let Some((entries, no_ops)) = self.metadata {
            let _ = writeln!(
                out,
                "metadata quorum: {entries} entries committed, {no_ops} of them idle no-ops (metadata.max.idle.interval.ms)"
            );
        }
        if !self.expectations.is_empty() {
            let _ = writeln!(out, "expectations:");
            for e in &self.expectations {
                let _ = writeln!(out, "  [{}] {} - {}", if e.met { "ok" } else { "FAILED" }, e.expectation, e.detail);
            }
        }
        if self.findings.is_empty() {
            let _ = writeln!(out, "findings: none");
        } else {
            let _ = writeln!(out, "findings:");
            for f in &self.findings {
                let kind = match f.finding.class() {
                    Class::Bug => "BUG",
                    Class::Violation => "VIOLATION",
                    Class::Lesson => "expected",
                };
                let _ = writeln!(
                    out,
                    "  [{kind}] {} at step {} ({}): {}",
                    f.finding.rule,
                    f.seq,
                    SimTime(f.time_us),
                    f.finding.message
                );
            }
        }
        let _ = writeln!(out, "result: {}", if self.passed() { "PASS" } else { "FAIL" });
        out
    }
}

/// How many times a happening happened, against the bounds an expectation sets.
fn count(events: &[Event], h: &Happening, clients: &[String], min: u64, max: u64) -> (bool, String) {
    let times: Vec<&Event> = events.iter().filter(|e| happening::matches(h, e, clients)).collect();
    let n = times.len() as u64;
    let at: Vec<String> = times.iter().take(5).map(|e| SimTime(e.time_us).to_string()).collect();
    let more = if times.len() > 5 { format!(" and {} more", times.len() - 5) } else { String::new() };
    let detail = match n {
        0 => "happened 0 times".to_string(),
        1 => format!("happened once, at {}", at[0]),
        _ => format!("happened {n} times, at {}{more}", at.join(", ")),
    };
    ((min..=max).contains(&n), detail)
}

/// Why a windowed expectation failed: when the happening did happen, if ever.
fn not_in_window(all: &[&Event]) -> String {
    match all {
        [] => "never happened".to_string(),
        [e, ..] => format!("not in the window; first at step {} ({})", e.seq, SimTime(e.time_us)),
    }
}

/// Whether every copy of the partition's log holds the same records at the same offsets, from the
/// highest log start on, and ends at the same offset; if not, where the first two differ.
fn replicas_identical(nodes: &crate::nodes::Nodes, tp: &ksim_cluster::TopicPartition) -> (bool, String) {
    let logs = crate::nodes::partition_logs(nodes, tp);
    let Some((first_broker, first)) = logs.first() else { return (false, "no replica holds it".into()) };
    let start = logs.iter().map(|(_, log)| log.log_start_offset()).max().unwrap_or(0);
    for (broker, log) in &logs[1..] {
        if log.log_end_offset() != first.log_end_offset() {
            return (
                false,
                format!(
                    "broker-{first_broker} ends at {}, broker-{broker} at {}",
                    first.log_end_offset(),
                    log.log_end_offset()
                ),
            );
        }
        for offset in start..log.log_end_offset() {
            let ours = first.record_at(offset).map(|(_, r)| (&r.key, &r.value));
            let theirs = log.record_at(offset).map(|(_, r)| (&r.key, &r.value));
            if ours != theirs {
                return (false, format!("offset {offset} differs between broker-{first_broker} and broker-{broker}"));
            }
        }
    }
    let brokers: Vec<String> = logs.iter().map(|(b, _)| format!("broker-{b}")).collect();
    (true, format!("{} identical up to offset {}", brokers.join(", "), first.log_end_offset()))
}

fn final_condition(scenario: &Scenario, world: &World, condition: &Condition) -> (bool, String) {
    let leaders = current_leaders(&world.slots);
    let image = crate::nodes::active_controller(&world.slots).map(|c| c.image());
    let client = |name: &str| scenario.node_id(&crate::scenario::NodeRef::Client(name.to_string()));
    match condition {
        Condition::Leader(p, broker) => {
            let tp = parse_partition(p).expect("validated");
            match leaders.get(&tp) {
                Some(l) if l == broker => (true, format!("broker-{l} leads")),
                Some(l) => (false, format!("broker-{l} leads")),
                None => (false, "no leader".into()),
            }
        }
        Condition::ReplicasIdentical(p) => replicas_identical(&world.slots, &parse_partition(p).expect("validated")),
        Condition::NoLeader(p) => {
            let tp = parse_partition(p).expect("validated");
            match leaders.get(&tp) {
                Some(l) => (false, format!("broker-{l} leads")),
                None => (true, "no leader".into()),
            }
        }
        Condition::Isr(p, expected) => {
            let tp = parse_partition(p).expect("validated");
            match image.and_then(|i| i.partitions.get(&tp)) {
                Some(state) => {
                    let mut got = state.isr.clone();
                    got.sort();
                    let mut want = expected.clone();
                    want.sort();
                    (got == want, format!("ISR is {:?}", state.isr))
                }
                None => (false, "the controller is down or the partition does not exist".into()),
            }
        }
        Condition::Acked(name, n) => {
            let got = world.checker.acked_count(client(name));
            (got == *n, format!("{got} acknowledged"))
        }
        Condition::Consumed(name, n) => {
            let got = world.checker.consumed_count(client(name));
            (got == *n, format!("{got} consumed"))
        }
        Condition::GroupState(group, state) => {
            let found = world.slots.values().find_map(|s| match &s.machine {
                Some(Machine::Broker(b)) => b.group_state(group),
                _ => None,
            });
            match found {
                Some((got, generation)) => (got.to_string() == *state, format!("{got} (generation {generation})")),
                None => (false, "no running coordinator knows the group".into()),
            }
        }
        Condition::Processed(name, n) => {
            let got = world.checker.processed_count(client(name));
            (got == *n, format!("{got} processed"))
        }
        Condition::Owns(name, n) => {
            let owned = match world.slots.get(&client(name)).and_then(|s| s.machine.as_ref()) {
                Some(Machine::Client(client)) => {
                    client.consumers().map(|(_, c)| c.member().map_or(0, |m| m.owned().len())).sum()
                }
                _ => 0,
            };
            (owned == *n, format!("owns {owned} partition(s)"))
        }
        Condition::Latest(topic, key, value) => {
            let mut last = None;
            for (tp, broker) in &leaders {
                if &tp.topic != topic {
                    continue;
                }
                let Some(Machine::Broker(b)) =
                    world.slots.get(&NodeId::Broker(*broker)).and_then(|s| s.machine.as_ref())
                else {
                    continue;
                };
                if let Some(r) = b.replica(tp) {
                    let (records, _) = crate::nodes::readable_records(&r.log, r.high_watermark, true);
                    if let Some(found) = records.into_iter().rev().find(|r| r.key.as_deref() == Some(key.as_str())) {
                        last = Some(found.value);
                    }
                }
            }
            match last {
                Some(Some(got)) => (&got == value, format!("latest {key} = {got}")),
                Some(None) => (false, format!("latest {key} is a tombstone")),
                None => (false, format!("no committed record with key {key}")),
            }
        }
        Condition::SinkSize(store, n) => {
            let got = world.connect.as_ref().and_then(|c| c.stores.get(store)).map_or(0, |s| s.len());
            (got == *n, format!("{got} held"))
        }
        Condition::SinkEntry(store, key, value) => {
            let held = world.connect.as_ref().and_then(|c| c.stores.get(store)).and_then(|s| s.entries().get(key));
            match held {
                Some(v) => (v == value, format!("{key} -> {v}")),
                None => (false, format!("no entry for {key}")),
            }
        }
        Condition::NoRecordContains(topic, text) => {
            let mut found = None;
            let partitions: Vec<_> = leaders.keys().filter(|tp| &tp.topic == topic).cloned().collect();
            'search: for tp in partitions {
                for (broker, log) in crate::nodes::partition_logs(&world.slots, &tp) {
                    for batch in log.batches() {
                        for (i, r) in batch.records.iter().enumerate() {
                            if r.value.as_deref().is_some_and(|v| v.contains(text.as_str()))
                                || r.key.as_deref().is_some_and(|k| k.contains(text.as_str()))
                            {
                                found = Some(format!(
                                    "{tp}@{} on broker-{broker}: {}",
                                    batch.base_offset + i as i64,
                                    r.value_text()
                                ));
                                break 'search;
                            }
                        }
                    }
                }
            }
            match found {
                Some(at) => (false, format!("found at {at}")),
                None => (true, format!("no record of {topic} contains {text:?}")),
            }
        }
        Condition::AllAckedWritesPresent => {
            let lost = world
                .events()
                .iter()
                .filter(|e| matches!(&e.kind, EventKind::Finding(f) if f.rule == Rule::AckedWriteLost))
                .count();
            (lost == 0, format!("{lost} acknowledged write(s) lost"))
        }
    }
}
