//! The checker: Kafka's guarantees, checked from outside the cluster after every step.
//!
//! Safety invariants that must hold in *any* configuration (a finding here is a bug in ksim):
//! at most one leader per partition per leader epoch; a replica's high watermark never exceeds its
//! log end, and a leader's never moves back within its epoch.
//!
//! Guarantees that hold only under a configuration (a finding here is a lesson or a violation,
//! depending on what the scenario promised): replicas agree on every record below the high
//! watermark; a consumer reads only records that were committed; an acknowledged write is never
//! lost; no record is written twice. Kafka promises no acknowledged write is lost with
//! `acks=all`, `min.insync.replicas >= 2`, no unclean election and no correlated power failure.
//! A finding outside that promise is reported with `violation: false`: `acks=1` losing data is
//! what the scenario sets out to show, not a failure of the run.

use crate::clock::now;
use crate::nodes::{current_leaders, partition_logs, Machine, Nodes};
use crate::scenario::{App, Resolved, Scenario};
use crate::trace::Finding;
use ksim_cluster::config::Acks;
use ksim_cluster::log::{Log, TruncateReason};
use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
struct Acked {
    client: NodeId,
    /// The application's send id: the order it sent records in.
    send_id: u64,
    at: SimTime,
    partition: TopicPartition,
    offset: i64,
    key: Option<String>,
    value: String,
}

#[derive(Clone, Debug)]
struct ProducerPromise {
    acks_all: bool,
    idempotent: bool,
    /// `max.in.flight.requests.per.connection == 1`: order kept even without idempotence.
    one_in_flight: bool,
    topic: String,
}

/// A leader change the controller committed, for explaining lost writes.
#[derive(Clone, Debug)]
struct Election {
    at: SimTime,
    leader: Option<BrokerId>,
    epoch: i32,
    kind: Option<ElectionKind>,
}

/// A replica dropping records from its log, for explaining lost writes.
#[derive(Clone, Debug)]
struct Truncation {
    at: SimTime,
    broker: BrokerId,
    from: i64,
    removed: i64,
    reason: TruncateReason,
}

/// What the checker last saw of a replica: (leader?, leader epoch, HW, LEO, log start offset).
type Fingerprint = (bool, i32, i64, i64, i64);

pub struct Checker {
    min_isr: BTreeMap<String, usize>,
    producers: BTreeMap<NodeId, ProducerPromise>,
    leaders: BTreeMap<(TopicPartition, i32), BrokerId>,
    leader_hw: BTreeMap<(BrokerId, TopicPartition), (i32, i64)>,
    /// The record at each offset below some replica's high watermark, as last seen.
    committed: BTreeMap<TopicPartition, BTreeMap<i64, (Option<String>, String)>>,
    /// How far each replica's committed prefix has been compared.
    checked_to: BTreeMap<(BrokerId, TopicPartition), i64>,
    acked: Vec<Acked>,
    last_consumed: BTreeMap<(NodeId, TopicPartition), i64>,
    consumed: BTreeMap<NodeId, BTreeSet<(TopicPartition, i64)>>,
    unclean: BTreeSet<TopicPartition>,
    power_failures: u64,
    reported: BTreeSet<(String, TopicPartition, i64)>,
    groups: GroupChecks,
    elections: BTreeMap<TopicPartition, Vec<Election>>,
    /// Per broker and replica: its state when last checked.
    fingerprints: BTreeMap<BrokerId, Vec<(TopicPartition, Fingerprint)>>,
    /// Client node -> its name in the scenario.
    client_names: BTreeMap<NodeId, String>,
    truncations: BTreeMap<TopicPartition, Vec<Truncation>>,
}

/// What the checker tracks about consumer groups.
#[derive(Default)]
struct GroupChecks {
    /// Client node -> its `group.id`.
    group_of: BTreeMap<NodeId, String>,
    /// Groups whose members all rebalance cooperatively.
    cooperative: BTreeSet<String>,
    /// (group, generation) -> partition -> member the coordinator assigned it to.
    generation_owners: BTreeMap<(String, i32), BTreeMap<TopicPartition, String>>,
    /// (group, partition) -> the member node that believes it owns it now.
    owners: BTreeMap<(String, TopicPartition), NodeId>,
    commits: BTreeMap<(String, TopicPartition), i64>,
    /// The first position the group read each partition from.
    start: BTreeMap<(String, TopicPartition), i64>,
    consumed: BTreeMap<(String, TopicPartition), BTreeSet<i64>>,
    processed: BTreeMap<(String, TopicPartition), BTreeMap<i64, u32>>,
    processed_by: BTreeMap<NodeId, BTreeSet<(TopicPartition, i64)>>,
}

impl Checker {
    pub fn new(scenario: &Scenario, resolved: &Resolved) -> Self {
        let min_isr = resolved.topics.iter().map(|(t, c)| (t.name.clone(), c.min_insync_replicas)).collect();
        let mut producers = BTreeMap::new();
        for (i, client) in scenario.clients.iter().enumerate() {
            let topic = match &client.app {
                App::Producer { topic, .. } => Some(topic),
                App::GroupByCount { output, .. } => Some(output),
                _ => None,
            };
            if let (Some(topic), Some(config)) = (topic, resolved.producers.get(&client.name)) {
                producers.insert(
                    NodeId::Client(i as u32),
                    ProducerPromise {
                        acks_all: config.acks == Acks::All,
                        idempotent: config.enable_idempotence,
                        one_in_flight: config.max_in_flight_requests_per_connection == 1,
                        topic: topic.clone(),
                    },
                );
            }
        }
        let mut groups = GroupChecks::default();
        for (i, client) in scenario.clients.iter().enumerate() {
            if let Some(config) = resolved.consumers.get(&client.name) {
                if let (Some(group), true) = (&config.group_id, client.app.group_member()) {
                    groups.group_of.insert(NodeId::Client(i as u32), group.clone());
                    let cooperative = !config.partition_assignment_strategy.is_empty()
                        && config.partition_assignment_strategy.iter().all(|s| s == "cooperative-sticky");
                    if cooperative {
                        groups.cooperative.insert(group.clone());
                    }
                }
            }
        }
        Checker {
            groups,
            min_isr,
            producers,
            leaders: BTreeMap::new(),
            leader_hw: BTreeMap::new(),
            committed: BTreeMap::new(),
            checked_to: BTreeMap::new(),
            acked: Vec::new(),
            last_consumed: BTreeMap::new(),
            consumed: BTreeMap::new(),
            unclean: BTreeSet::new(),
            power_failures: 0,
            reported: BTreeSet::new(),
            elections: BTreeMap::new(),
            fingerprints: BTreeMap::new(),
            client_names: scenario
                .clients
                .iter()
                .enumerate()
                .map(|(i, c)| (NodeId::Client(i as u32), c.name.clone()))
                .collect(),
            truncations: BTreeMap::new(),
        }
    }

    /// Whether Kafka promises acknowledged writes to this partition from this producer survive.
    fn durability_promised(&self, client: NodeId, tp: &TopicPartition) -> bool {
        let acks_all = self.producers.get(&client).is_some_and(|p| p.acks_all);
        let min_isr = self.min_isr.get(&tp.topic).copied().unwrap_or(1);
        acks_all && min_isr >= 2 && !self.unclean.contains(tp) && self.power_failures == 0
    }

    fn consistency_promised(&self, tp: &TopicPartition) -> bool {
        !self.unclean.contains(tp) && self.power_failures == 0
    }

    fn once(&mut self, rule: &str, tp: &TopicPartition, offset: i64) -> bool {
        self.reported.insert((rule.to_string(), tp.clone(), offset))
    }

    pub fn on_stop(&mut self, node: NodeId, power_loss: bool) {
        if power_loss {
            self.power_failures += 1;
        }
        // A dead member owns nothing.
        self.groups.owners.retain(|_, owner| *owner != node);
        if let NodeId::Broker(id) = node {
            self.checked_to.retain(|(b, _), _| *b != id);
            self.leader_hw.retain(|(b, _), _| *b != id);
        }
    }

    /// The application on `node` finished processing a record.
    pub fn on_processed(&mut self, node: NodeId, partition: &TopicPartition, offset: i64) {
        self.groups.processed_by.entry(node).or_default().insert((partition.clone(), offset));
        if let Some(group) = self.groups.group_of.get(&node) {
            *self.groups.processed.entry((group.clone(), partition.clone())).or_default().entry(offset).or_insert(0) +=
                1;
        }
    }

    pub fn processed_count(&self, client: NodeId) -> u64 {
        self.groups.processed_by.get(&client).map_or(0, |s| s.len() as u64)
    }

    pub fn on_note(&mut self, node: NodeId, note: &Note, slots: &Nodes) -> Vec<Finding> {
        let mut findings = Vec::new();
        match note {
            Note::BecameLeader { partition, leader_epoch, .. } => {
                let broker = node.broker_id().expect("only brokers lead");
                if let Some(&other) = self.leaders.get(&(partition.clone(), *leader_epoch)) {
                    if other != broker {
                        findings.push(Finding {
                            rule: "two-leaders-in-epoch".into(),
                            violation: true,
                            message: format!(
                                "{partition}: broker-{other} and broker-{broker} both led epoch {leader_epoch}"
                            ),
                        });
                    }
                }
                self.leaders.insert((partition.clone(), *leader_epoch), broker);
            }
            Note::PartitionChanged { partition, leader, leader_epoch, election, .. } => {
                if *election == Some(ElectionKind::Unclean) {
                    self.unclean.insert(partition.clone());
                }
                let history = self.elections.entry(partition.clone()).or_default();
                if history.last().is_none_or(|e| e.epoch != *leader_epoch) {
                    history.push(Election { at: now(), leader: *leader, epoch: *leader_epoch, kind: *election });
                }
            }
            Note::Truncated { partition, to_offset, removed, reason } if *removed > 0 => {
                if let Some(broker) = node.broker_id() {
                    self.truncations.entry(partition.clone()).or_default().push(Truncation {
                        at: now(),
                        broker,
                        from: *to_offset,
                        removed: *removed,
                        reason: *reason,
                    });
                }
            }
            Note::OffsetOutOfRange { partition, .. } => {
                // The consumer's position is reset: the next read starts a new sequence.
                self.last_consumed.remove(&(node, partition.clone()));
            }
            Note::AssignmentStored { group, generation, member, partitions } => {
                let owners = self.groups.generation_owners.entry((group.clone(), *generation)).or_default();
                for tp in partitions {
                    if let Some(other) = owners.insert(tp.clone(), member.clone()) {
                        if &other != member {
                            findings.push(Finding {
                                rule: "two-owners-in-generation".into(),
                                violation: true,
                                message: format!(
                                    "group {group} generation {generation}: {tp} assigned to both {other} and {member}"
                                ),
                            });
                        }
                    }
                }
            }
            Note::PartitionsAssigned { group, partitions, member, .. } => {
                for tp in partitions {
                    let key = (group.clone(), tp.clone());
                    if let Some(&other) = self.groups.owners.get(&key) {
                        if other != node && self.groups.cooperative.contains(group) {
                            findings.push(Finding {
                                rule: "two-owners".into(),
                                violation: true,
                                message: format!("group {group}: {member} took {tp} while another member still owned it (cooperative rebalancing forbids that)"),
                            });
                        }
                    }
                    self.groups.owners.insert(key, node);
                }
            }
            Note::PartitionsRevoked { group, partitions, .. } => {
                for tp in partitions {
                    let key = (group.clone(), tp.clone());
                    if self.groups.owners.get(&key) == Some(&node) {
                        self.groups.owners.remove(&key);
                    }
                }
            }
            Note::PositionReset { partition, offset, .. } => {
                self.last_consumed.remove(&(node, partition.clone()));
                if let Some(group) = self.groups.group_of.get(&node) {
                    self.groups.start.entry((group.clone(), partition.clone())).or_insert(*offset);
                }
            }
            Note::OffsetCommitted { group, partition, offset } => {
                let key = (group.clone(), partition.clone());
                if let Some(previous) = self.groups.commits.insert(key.clone(), *offset) {
                    if *offset < previous {
                        findings.push(Finding {
                            rule: "commit-went-back".into(),
                            violation: true,
                            message: format!("group {group}: committed {partition} at {offset} after {previous}"),
                        });
                    }
                }
                let log_end =
                    partition_logs(slots, partition).iter().map(|(_, log)| log.log_end_offset()).max().unwrap_or(0);
                if *offset > log_end {
                    findings.push(Finding {
                        rule: "commit-past-log-end".into(),
                        violation: true,
                        message: format!(
                            "group {group}: committed {partition} at {offset}, past the log end {log_end}"
                        ),
                    });
                }
                if let Some(&start) = self.groups.start.get(&key) {
                    let consumed = self.groups.consumed.get(&key);
                    if let Some(missing) = (start..*offset).find(|o| !consumed.is_some_and(|c| c.contains(o))) {
                        if self.once("committed-undelivered", partition, missing) {
                            findings.push(Finding {
                                rule: "committed-undelivered".into(),
                                violation: true,
                                message: format!("group {group}: committed {partition} at {offset}, but offset {missing} was never delivered to a member"),
                            });
                        }
                    }
                }
            }
            Note::ProduceAcked { send_id, partition, offset, key, value } if *offset >= 0 => {
                // acks=all: the leader answers only once the record is below its high watermark.
                let acks_all = self.producers.get(&node).is_some_and(|p| p.acks_all);
                let committed = self.committed.get(partition).and_then(|m| m.get(offset));
                if acks_all
                    && committed != Some(&(key.clone(), value.clone()))
                    && self.once("acked-uncommitted", partition, *offset)
                {
                    findings.push(Finding {
                        rule: "acked-uncommitted".into(),
                        violation: true,
                        message: format!(
                            "{partition}@{offset}: {value:?} acknowledged to an acks=all producer before any replica had it below its high watermark"
                        ),
                    });
                }
                self.acked.push(Acked {
                    client: node,
                    send_id: *send_id,
                    at: now(),
                    partition: partition.clone(),
                    offset: *offset,
                    key: key.clone(),
                    value: value.clone(),
                });
            }
            Note::Consumed { partition, offset, key, value } => {
                if let Some(group) = self.groups.group_of.get(&node) {
                    self.groups.consumed.entry((group.clone(), partition.clone())).or_default().insert(*offset);
                }
                let committed = self.committed.get(partition).and_then(|m| m.get(offset));
                if committed != Some(&(key.clone(), value.clone())) && self.once("read-uncommitted", partition, *offset)
                {
                    findings.push(Finding {
                        rule: "read-uncommitted".into(),
                        violation: true,
                        message: format!(
                            "{partition}@{offset}: consumed {value:?}, which no replica had below its high watermark"
                        ),
                    });
                }
                self.consumed.entry(node).or_default().insert((partition.clone(), *offset));
                let last = self.last_consumed.insert((node, partition.clone()), *offset);
                // In a group, reading again after a rebalance or restart is at-least-once delivery
                // (processed-twice reports its effect); a plain consumer only rereads if it seeks.
                let in_group = self.groups.group_of.contains_key(&node);
                if let (Some(last), false) = (last, in_group) {
                    // Records the consumer jumped over that were committed when it read past them.
                    let skipped: Vec<i64> = self
                        .committed
                        .get(partition)
                        .map(|m| m.range(last + 1..*offset).map(|(o, _)| *o).collect())
                        .unwrap_or_default();
                    if !skipped.is_empty() && self.once("skipped-offsets", partition, *offset) {
                        let records: Vec<(i64, String)> = skipped.iter().map(|o| (*o, String::new())).collect();
                        findings.push(Finding {
                            rule: "skipped-offsets".into(),
                            violation: true,
                            message: format!(
                                "{partition}: read offset {offset} right after {last}, skipping committed offset(s) {}",
                                ranges(&records)
                            ),
                        });
                    }
                    if *offset <= last && self.once("consumed-again", partition, *offset) {
                        findings.push(Finding {
                            rule: "consumed-again".into(),
                            violation: false,
                            message: format!("{partition}@{offset}: consumed again (after offset {last})"),
                        });
                    }
                }
            }
            _ => {}
        }
        findings
    }

    pub fn after_step(&mut self, node: NodeId, slots: &Nodes) -> Vec<Finding> {
        let NodeId::Broker(broker) = node else { return Vec::new() };
        let Some(Machine::Broker(b)) = slots.get(&node).and_then(|s| s.machine.as_ref()) else { return Vec::new() };
        let mut findings = Vec::new();
        // A step touches few of a broker's partitions: only the replicas whose state changed since
        // the last check are checked. The broker lists its replicas in partition order, and so
        // does `seen`, so one walk over both finds them (no lookups, no allocation).
        let seen = self.fingerprints.entry(broker).or_default();
        let mut changed = Vec::new();
        let mut cursor = 0;
        for replica in b.replicas() {
            let fingerprint = (
                replica.is_leader(),
                replica.leader_epoch,
                replica.high_watermark,
                replica.log_end_offset(),
                replica.log.log_start_offset(),
            );
            while seen.get(cursor).is_some_and(|(tp, _)| *tp < replica.partition) {
                seen.remove(cursor); // a replica the broker no longer has
            }
            match seen.get_mut(cursor) {
                Some((tp, last)) if *tp == replica.partition => {
                    if *last != fingerprint {
                        *last = fingerprint;
                        changed.push(replica);
                    }
                }
                _ => {
                    seen.insert(cursor, (replica.partition.clone(), fingerprint));
                    changed.push(replica);
                }
            }
            cursor += 1;
        }
        seen.truncate(cursor);
        for replica in changed {
            let tp = &replica.partition;
            let leo = replica.log_end_offset();
            assert!(
                replica.high_watermark <= leo,
                "invariant HW <= LEO broken on broker-{broker} {tp}: HW {} > LEO {leo}",
                replica.high_watermark
            );
            if replica.is_leader() {
                let key = (broker, tp.clone());
                if let Some(&(epoch, hw)) = self.leader_hw.get(&key) {
                    assert!(
                        !(epoch == replica.leader_epoch && replica.high_watermark < hw),
                        "invariant broken on broker-{broker} {tp}: leader HW went back from {hw} to {} in epoch {epoch}",
                        replica.high_watermark
                    );
                }
                self.leader_hw.insert(key, (replica.leader_epoch, replica.high_watermark));
            }
            // Compare the newly committed records of this replica with what others committed.
            let key = (broker, tp.clone());
            let from = self.checked_to.get(&key).copied().unwrap_or(0).min(leo).max(replica.log.log_start_offset());
            let promised = self.consistency_promised(tp);
            for offset in from..replica.high_watermark {
                let Some((_, record)) = replica.log.record_at(offset) else { continue };
                let seen = (record.key.clone(), record.value.clone());
                let map = self.committed.entry(tp.clone()).or_default();
                match map.get(&offset) {
                    Some(previous) if *previous != seen => {
                        let message = format!(
                            "{tp}@{offset}: broker-{broker} committed {:?} where another replica had committed {:?}",
                            seen.1, previous.1
                        );
                        map.insert(offset, seen);
                        if self.once("replicas-diverge", tp, offset) {
                            findings.push(Finding { rule: "replicas-diverge".into(), violation: promised, message });
                        }
                    }
                    Some(_) => {}
                    None => {
                        map.insert(offset, seen);
                    }
                }
            }
            self.checked_to.insert(key, replica.high_watermark.max(from));
        }
        findings
    }

    /// End-of-run history checks: acknowledged writes still present, no duplicates. One finding
    /// per partition and kind, naming the offsets and records.
    pub fn finish(&mut self, slots: &Nodes) -> Vec<Finding> {
        let mut findings = Vec::new();
        let leaders = current_leaders(slots);
        // (partition, promised) -> lost (offset, value)
        let mut lost: BTreeMap<(TopicPartition, bool, String), Vec<(i64, String)>> = BTreeMap::new();
        // Which acknowledged writes are gone, by index in `acked`: order is only judged on the rest.
        let mut gone_writes: BTreeSet<usize> = BTreeSet::new();
        for (index, a) in self.acked.iter().enumerate() {
            let present = |log: &Log| {
                a.offset < log.log_start_offset()
                    || log.record_at(a.offset).is_some_and(|(_, r)| r.value == a.value && r.key == a.key)
            };
            let logs = partition_logs(slots, &a.partition);
            let gone = match leaders.get(&a.partition).and_then(|l| logs.iter().find(|(b, _)| b == l)) {
                Some((_, log)) => !present(log),
                None => !logs.iter().any(|(_, log)| present(log)),
            };
            if gone {
                gone_writes.insert(index);
                let promised = self.durability_promised(a.client, &a.partition);
                let why = if promised {
                    "Kafka promises this cannot happen with acks=all, min.insync.replicas>=2 and clean elections"
                        .to_string()
                } else {
                    self.why_not_promised(a.client, &a.partition)
                };
                lost.entry((a.partition.clone(), promised, why)).or_default().push((a.offset, a.value.clone()));
            }
        }
        for ((tp, promised, why), records) in lost {
            let cause = self.how_lost(&tp, &records);
            findings.push(Finding {
                rule: "acked-write-lost".into(),
                violation: promised,
                message: format!(
                    "{tp}: {} acknowledged write(s) gone, offsets {}: {}{cause} ({why})",
                    records.len(),
                    ranges(&records),
                    values(&records)
                ),
            });
        }
        findings.extend(self.reordering(&gone_writes));
        // Consumer groups: records processed twice (at-least-once) and records committed but never
        // processed (at-most-once).
        for (key, processed) in &self.groups.processed {
            let twice: Vec<(i64, String)> =
                processed.iter().filter(|(_, n)| **n > 1).map(|(o, n)| (*o, format!("{n} times"))).collect();
            if !twice.is_empty() {
                findings.push(Finding {
                    rule: "processed-twice".into(),
                    violation: false,
                    message: format!(
                        "group {}: {}: {} record(s) processed more than once, offsets {} (at-least-once delivery)",
                        key.0,
                        key.1,
                        twice.len(),
                        ranges(&twice)
                    ),
                });
            }
        }
        for (key, committed) in &self.groups.commits {
            let Some(&start) = self.groups.start.get(key) else { continue };
            let processed = self.groups.processed.get(key);
            if processed.is_none() && !self.groups.processed.keys().any(|(g, _)| g == &key.0) {
                continue; // this group's application does not report processing
            }
            let skipped: Vec<(i64, String)> = (start..*committed)
                .filter(|o| !processed.is_some_and(|p| p.contains_key(o)))
                .map(|o| (o, String::new()))
                .collect();
            if !skipped.is_empty() {
                findings.push(Finding {
                    rule: "committed-unprocessed".into(),
                    violation: false,
                    message: format!(
                        "group {}: {}: committed past {} record(s) never processed, offsets {} (at-most-once delivery)",
                        key.0,
                        key.1,
                        skipped.len(),
                        ranges(&skipped)
                    ),
                });
            }
        }
        // Duplicates: the same produced value at two offsets of the leader's log.
        for (tp, leader) in &leaders {
            if !self.producers.values().any(|p| p.topic == tp.topic) {
                continue; // only application topics: internal topics repeat values by design
            }
            let logs = partition_logs(slots, tp);
            let Some((_, log)) = logs.iter().find(|(b, _)| b == leader) else { continue };
            let mut first_offset: BTreeMap<&str, i64> = BTreeMap::new();
            let mut duplicates: Vec<(i64, String)> = Vec::new();
            for batch in log.batches() {
                for (i, record) in batch.records.iter().enumerate() {
                    let offset = batch.base_offset + i as i64;
                    if first_offset.contains_key(record.value.as_str()) {
                        duplicates.push((offset, record.value.clone()));
                    } else {
                        first_offset.insert(record.value.as_str(), offset);
                    }
                }
            }
            if !duplicates.is_empty() {
                let idempotent = self.producers.values().filter(|p| p.topic == tp.topic).all(|p| p.idempotent);
                findings.push(Finding {
                    rule: "duplicate-record".into(),
                    violation: idempotent,
                    message: format!(
                        "{tp}: {} record(s) written again at offsets {}: {}{}",
                        duplicates.len(),
                        ranges(&duplicates),
                        values(&duplicates),
                        if idempotent { " despite idempotence" } else { " (retries without idempotence)" }
                    ),
                });
            }
        }
        findings
    }

    /// The chain of events that lost these acknowledged records: when they were acknowledged,
    /// the election that followed, and the truncations that removed their offsets.
    fn how_lost(&self, tp: &TopicPartition, records: &[(i64, String)]) -> String {
        let offsets: BTreeSet<i64> = records.iter().map(|(o, _)| *o).collect();
        let acked_at: Vec<SimTime> = self
            .acked
            .iter()
            .filter(|a| &a.partition == tp && records.iter().any(|(o, v)| *o == a.offset && *v == a.value))
            .map(|a| a.at)
            .collect();
        let (Some(first), Some(last)) = (acked_at.iter().min(), acked_at.iter().max()) else { return String::new() };
        let mut parts = vec![if first == last {
            format!("acknowledged at {first}")
        } else {
            format!("acknowledged {first}-{last}")
        }];
        let truncations: Vec<&Truncation> = self
            .truncations
            .get(tp)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|t| t.at >= *first && offsets.iter().any(|o| (t.from..t.from + t.removed).contains(o)))
            .collect();
        // The leader changes between the first acknowledgement and the last truncation (or all).
        let until = truncations.iter().map(|t| t.at).max().unwrap_or(SimTime(u64::MAX));
        let elections = self.elections.get(tp).map(Vec::as_slice).unwrap_or_default();
        let after: Vec<&Election> = elections.iter().filter(|e| e.at >= *first && e.at <= until).take(3).collect();
        // No leader change after the acknowledgements: they came from a leader already replaced
        // (a zombie), so name the election before them.
        let before = elections.iter().rev().find(|e| e.at < *first && e.epoch > 0).filter(|_| after.is_empty());
        for (e, already) in before.map(|e| (e, true)).into_iter().chain(after.into_iter().map(|e| (e, false))) {
            let kind = match e.kind {
                Some(ElectionKind::Unclean) => ", unclean",
                Some(ElectionKind::Clean) => ", clean",
                _ => "",
            };
            let became = if already { "had already become" } else { "became" };
            match e.leader {
                Some(leader) => {
                    parts.push(format!("broker-{leader} {became} leader at {} (epoch {}{kind})", e.at, e.epoch))
                }
                None => parts.push(format!("the partition went offline at {} (epoch {})", e.at, e.epoch)),
            }
        }
        for t in truncations {
            let end = t.from + t.removed;
            {
                let why = match t.reason {
                    TruncateReason::DivergedFromLeader => "its log diverged from the new leader's",
                    TruncateReason::ToHighWatermark => "truncated to the high watermark",
                    TruncateReason::PowerFailure => "never flushed before the power failure",
                };
                parts.push(format!("broker-{} removed offsets {}..={} at {} ({why})", t.broker, t.from, end - 1, t.at));
            }
        }
        format!("; {}", parts.join("; "))
    }

    /// Records one producer sent to one partition that landed out of order: sent a before b,
    /// written b before a. Kafka keeps a partition's order for a producer with idempotence, or
    /// with one request in flight; otherwise a retry can overtake.
    fn reordering(&self, gone: &BTreeSet<usize>) -> Vec<Finding> {
        // (producer, partition) -> (send id, offset, value) of each write still in the log.
        type Writes<'a> = Vec<(u64, i64, &'a str)>;
        let mut by_stream: BTreeMap<(NodeId, TopicPartition), Writes> = BTreeMap::new();
        for (_, a) in self.acked.iter().enumerate().filter(|(i, _)| !gone.contains(i)) {
            by_stream.entry((a.client, a.partition.clone())).or_default().push((a.send_id, a.offset, &a.value));
        }
        let mut findings = Vec::new();
        for ((client, tp), mut writes) in by_stream {
            writes.sort_unstable();
            let mut overtaken: Vec<(i64, String)> = Vec::new();
            let mut highest: Option<(i64, &str)> = None;
            let mut example = None;
            for (_, offset, value) in &writes {
                match highest {
                    Some((h, later)) if *offset < h => {
                        overtaken.push((*offset, value.to_string()));
                        example
                            .get_or_insert_with(|| format!("{later:?} was sent before {value:?} but written after it"));
                    }
                    _ => highest = Some((*offset, value)),
                }
            }
            if overtaken.is_empty() {
                continue;
            }
            let promise = self.producers.get(&client);
            let promised = promise.is_some_and(|p| p.idempotent || p.one_in_flight);
            let why = if promised {
                "Kafka keeps a producer's order within a partition with idempotence or one request in flight"
            } else {
                "without idempotence and with more than one request in flight, a retried batch can land after a later one"
            };
            findings.push(Finding {
                rule: "reordered".into(),
                violation: promised,
                message: format!(
                    "{tp}: {} record(s) from {} written out of send order, at offsets {}: {} ({why})",
                    overtaken.len(),
                    self.client_names.get(&client).map_or("a producer", String::as_str),
                    ranges(&overtaken),
                    example.unwrap_or_default()
                ),
            });
        }
        findings
    }

    fn why_not_promised(&self, client: NodeId, tp: &TopicPartition) -> String {
        let mut reasons = Vec::new();
        if !self.producers.get(&client).is_some_and(|p| p.acks_all) {
            reasons.push("the producer did not use acks=all".to_string());
        }
        let min_isr = self.min_isr.get(&tp.topic).copied().unwrap_or(1);
        if min_isr < 2 {
            reasons.push(format!("min.insync.replicas={min_isr}"));
        }
        if self.unclean.contains(tp) {
            reasons.push("an unclean leader election happened".to_string());
        }
        if self.power_failures > 0 {
            reasons.push("a power failure lost unflushed data".to_string());
        }
        format!("expected: {}", reasons.join(", "))
    }

    /// How many acknowledged writes no current leader (or, without one, no replica) holds.
    /// Acknowledged writes gone from the log that Kafka promised to keep (the others are lessons
    /// the history check reports, not something the cluster can recover).
    pub fn lost_acked_writes(&self, slots: &Nodes) -> usize {
        let leaders = current_leaders(slots);
        self.acked
            .iter()
            .filter(|a| self.durability_promised(a.client, &a.partition))
            .filter(|a| {
                let present = |log: &Log| {
                    a.offset < log.log_start_offset()
                        || log.record_at(a.offset).is_some_and(|(_, r)| r.value == a.value && r.key == a.key)
                };
                let logs = partition_logs(slots, &a.partition);
                match leaders.get(&a.partition).and_then(|l| logs.iter().find(|(b, _)| b == l)) {
                    Some((_, log)) => !present(log),
                    None => !logs.iter().any(|(_, log)| present(log)),
                }
            })
            .count()
    }

    pub fn acked_count(&self, client: NodeId) -> u64 {
        self.acked.iter().filter(|a| a.client == client).count() as u64
    }

    pub fn consumed_count(&self, client: NodeId) -> u64 {
        self.consumed.get(&client).map_or(0, |set| set.len() as u64)
    }
}

/// Offsets as ranges: `3..=5, 9`.
fn ranges(records: &[(i64, String)]) -> String {
    let mut offsets: Vec<i64> = records.iter().map(|(o, _)| *o).collect();
    offsets.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < offsets.len() {
        let start = offsets[i];
        let mut end = start;
        while i + 1 < offsets.len() && offsets[i + 1] == end + 1 {
            i += 1;
            end = offsets[i];
        }
        out.push(if start == end { start.to_string() } else { format!("{start}..={end}") });
        i += 1;
    }
    out.join(", ")
}

/// The first few values, quoted.
pub(crate) fn values(records: &[(i64, String)]) -> String {
    const SHOWN: usize = 4;
    let mut shown: Vec<String> = records.iter().take(SHOWN).map(|(_, v)| format!("{v:?}")).collect();
    if records.len() > SHOWN {
        shown.push(format!("... ({} more)", records.len() - SHOWN));
    }
    shown.join(", ")
}
