//! History: the writes producers were told succeeded, and what became of them.
//!
//! An acknowledgement is a promise about the future. With `acks=all` the leader answers only once
//! the record is below its high watermark, on every in-sync replica (`acked-uncommitted`
//! otherwise); with `min.insync.replicas >= 2` as well, clean elections and no correlated power
//! failure, Kafka promises the record is never lost (`acked-write-lost`). With `acks=1` or an
//! unclean election losing it is what Kafka allows, and the finding says how it happened: the
//! acknowledgement, the election that followed, and the truncation that removed it.
//!
//! A producer's records to one partition land in the order it sent them when it is idempotent
//! or keeps one request in flight; otherwise a retried batch can overtake a later one
//! (`reordered`). An idempotent producer writes each record once; without idempotence a retry of a
//! batch the leader had already written writes it again (`duplicate-record`). Idempotence is a
//! promise of one producer session (KIP-98: one producer id): the same value written again under
//! another producer id (an application that restarted and reprocessed its input, or a producer
//! that reset its idempotent state) is a lesson, not a broken promise.

use super::{ranges, values, Checker, Finding, Rule};
use crate::check::replication::{Election, Truncation};
use crate::nodes::{current_leaders, partition_logs, Nodes};
use ksim_cluster::log::{Log, TruncateReason};
use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::node::NodeId;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub(super) struct Acked {
    client: NodeId,
    /// The application's send id: the order it sent records in.
    send_id: u64,
    at: SimTime,
    partition: TopicPartition,
    offset: i64,
    key: Option<String>,
    /// `None`: a tombstone.
    value: Option<String>,
}

impl Acked {
    /// Whether Kafka promised this write survives.
    pub(super) fn promised_by(&self, checker: &Checker) -> bool {
        checker.durability_promised(self.client, &self.partition)
    }

    /// Whether this log still holds the write (or has deleted it by retention, past its start).
    fn present_in(&self, log: &Log) -> bool {
        self.offset < log.log_start_offset()
            || log.record_at(self.offset).is_some_and(|(_, r)| r.value == self.value && r.key == self.key)
    }

    /// The value as reports print it.
    fn value_text(&self) -> String {
        self.value.clone().unwrap_or_else(|| "null".to_string())
    }
}

#[derive(Default)]
pub(super) struct History {
    /// Every acknowledged write, in acknowledgement order.
    pub(super) acked: Vec<Acked>,
}

impl History {
    pub(super) fn acked_count(&self, client: NodeId) -> u64 {
        self.acked.iter().filter(|a| a.client == client).count() as u64
    }
}

impl Checker {
    /// A producer was told a write succeeded at `offset`.
    #[allow(clippy::too_many_arguments)] // the fields of the note, plus who and when
    pub(super) fn on_produce_acked(
        &mut self,
        now: SimTime,
        node: NodeId,
        send_id: u64,
        tp: &TopicPartition,
        offset: i64,
        key: &Option<String>,
        value: &Option<String>,
    ) -> Option<Finding> {
        let acks_all = self.producers.get(&node).is_some_and(|p| p.acks_all);
        let committed = self.replication.committed.get(tp).and_then(|m| m.get(&offset));
        let seen = committed == Some(&(key.clone(), value.clone()));
        let text = value.as_deref().unwrap_or("null");
        let finding = (acks_all && !seen && self.once(Rule::AckedUncommitted, tp, offset)).then(|| {
            // acks=all: the leader answers only once the record is below its high watermark.
            Finding::promise(
                Rule::AckedUncommitted,
                true,
                format!("{tp}@{offset}: {text:?} acknowledged to an acks=all producer before any replica had it below its high watermark"),
            )
        });
        self.history.acked.push(Acked {
            client: node,
            send_id,
            at: now,
            partition: tp.clone(),
            offset,
            key: key.clone(),
            value: value.clone(),
        });
        finding
    }

    /// Which acknowledged writes no current leader (or, without one, no replica) holds, by index
    /// in `acked`.
    pub(super) fn gone_writes(&self, nodes: &Nodes) -> BTreeSet<usize> {
        let leaders = current_leaders(nodes);
        let mut gone = BTreeSet::new();
        for (index, a) in self.history.acked.iter().enumerate() {
            let logs = partition_logs(nodes, &a.partition);
            let missing = match leaders.get(&a.partition).and_then(|l| logs.iter().find(|(b, _)| b == l)) {
                Some((_, log)) => !a.present_in(log),
                None => !logs.iter().any(|(_, log)| a.present_in(log)),
            };
            // Compaction removing a superseded record (or a tombstone past its horizon) loses
            // nothing: the key's later value is what Kafka keeps.
            let missing = missing && !self.cleaned_away(&a.partition, a.offset);
            if missing {
                gone.insert(index);
            }
        }
        gone
    }

    /// One `acked-write-lost` finding per partition and promise, naming the records.
    pub(super) fn lost_writes(&self, gone: &BTreeSet<usize>) -> Vec<Finding> {
        // (partition, promised, why) -> lost (offset, value)
        let mut lost: BTreeMap<(TopicPartition, bool, String), Vec<(i64, String)>> = BTreeMap::new();
        for &index in gone {
            let a = &self.history.acked[index];
            let promised = a.promised_by(self);
            let why = if promised {
                "Kafka promises this cannot happen with acks=all, min.insync.replicas>=2 and clean elections"
                    .to_string()
            } else {
                self.why_not_promised(a.client, &a.partition)
            };
            lost.entry((a.partition.clone(), promised, why)).or_default().push((a.offset, a.value_text()));
        }
        let mut findings = Vec::new();
        for ((tp, promised, why), records) in lost {
            let cause = self.how_lost(&tp, &records);
            findings.push(Finding::promise(
                Rule::AckedWriteLost,
                promised,
                format!(
                    "{tp}: {} acknowledged write(s) gone, offsets {}: {}{cause} ({why})",
                    records.len(),
                    ranges(&records),
                    values(&records)
                ),
            ));
        }
        findings
    }

    /// The chain of events that lost these acknowledged records: when they were acknowledged,
    /// the election that followed, and the truncations that removed their offsets.
    fn how_lost(&self, tp: &TopicPartition, records: &[(i64, String)]) -> String {
        let offsets: BTreeSet<i64> = records.iter().map(|(o, _)| *o).collect();
        let acked_at: Vec<SimTime> = self
            .history
            .acked
            .iter()
            .filter(|a| &a.partition == tp && records.iter().any(|(o, v)| *o == a.offset && *v == a.value_text()))
            .map(|a| a.at)
            .collect();
        let (Some(first), Some(last)) = (acked_at.iter().min(), acked_at.iter().max()) else { return String::new() };
        let mut parts = vec![if first == last {
            format!("acknowledged at {first}")
        } else {
            format!("acknowledged {first}-{last}")
        }];
        let truncations: Vec<&Truncation> = self
            .replication
            .truncations
            .get(tp)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|t| t.at >= *first && offsets.iter().any(|o| (t.from..t.from + t.removed).contains(o)))
            .collect();
        // The leader changes between the first acknowledgement and the last truncation (or all).
        let until = truncations.iter().map(|t| t.at).max().unwrap_or(SimTime(u64::MAX));
        let elections = self.replication.elections.get(tp).map(Vec::as_slice).unwrap_or_default();
        let after: Vec<&Election> = elections.iter().filter(|e| e.at >= *first && e.at <= until).take(3).collect();
        // No leader change after the acknowledgements: they came from a leader already replaced
        // (a zombie), so name the election before them.
        let before = elections.iter().rev().find(|e| e.at < *first && e.epoch > 0).filter(|_| after.is_empty());
        for (e, already) in before.map(|e| (e, true)).into_iter().chain(after.into_iter().map(|e| (e, false))) {
            let kind = match e.kind {
                Some(ElectionKind::Unclean) => ", unclean",
                Some(ElectionKind::Clean) => ", clean",
                Some(ElectionKind::Elr) => ", from the ELR",
                Some(ElectionKind::LastKnownLeader) => ", last known leader",
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
            let why = match t.reason {
                TruncateReason::DivergedFromLeader => "its log diverged from the new leader's",
                TruncateReason::ToHighWatermark => "truncated to the high watermark",
                TruncateReason::PowerFailure => "never flushed before the power failure",
            };
            parts.push(format!("broker-{} removed offsets {}..={} at {} ({why})", t.broker, t.from, end - 1, t.at));
        }
        format!("; {}", parts.join("; "))
    }

    pub(super) fn why_not_promised(&self, client: NodeId, tp: &TopicPartition) -> String {
        let mut reasons = Vec::new();
        if !self.producers.get(&client).is_some_and(|p| p.acks_all) {
            reasons.push("the producer did not use acks=all".to_string());
        }
        let min_isr = self.min_isr.get(tp.topic.as_str()).copied().unwrap_or(1);
        if min_isr < 2 {
            reasons.push(format!("min.insync.replicas={min_isr}"));
        }
        if self.replication.unclean.contains(tp) {
            reasons.push("an unclean leader election happened".to_string());
        }
        if self.replication.power_failures > 0 {
            reasons.push("a power failure lost unflushed data".to_string());
        }
        format!("expected: {}", reasons.join(", "))
    }

    /// Records one producer sent to one partition that landed out of order: sent a before b,
    /// written b before a. Order is only judged on the writes still in the log.
    ///
    /// Idempotence orders one producer session's writes (producer id and epoch): the broker
    /// accepts each session's sequence numbers in order only. After an OUT_OF_ORDER_SEQUENCE_NUMBER
    /// the Java client bumps its epoch and starts the partition's sequences again
    /// (`TransactionManager.canRetry`, `bumpIdempotentProducerEpoch`, KIP-360), and a batch it
    /// retries under the new session can land after records the old session wrote: Kafka's own
    /// `OutOfOrderSequenceException` Javadoc says an idempotent producer may go on sending after
    /// it, "but doing so risks reordering of sent records". So a reorder whose two writes belong to
    /// different sessions is a lesson; within one session it breaks the promise.
    pub(super) fn reordering(&self, gone: &BTreeSet<usize>, nodes: &Nodes) -> Vec<Finding> {
        let leaders = current_leaders(nodes);
        // (producer, partition) -> (send id, offset, value) of each write still in the log.
        type Writes<'a> = Vec<(u64, i64, &'a str)>;
        let mut by_stream: BTreeMap<(NodeId, TopicPartition), Writes> = BTreeMap::new();
        for (_, a) in self.history.acked.iter().enumerate().filter(|(i, _)| !gone.contains(i)) {
            let value = a.value.as_deref().unwrap_or("null");
            by_stream.entry((a.client, a.partition.clone())).or_default().push((a.send_id, a.offset, value));
        }
        let mut findings = Vec::new();
        for ((client, tp), mut writes) in by_stream {
            writes.sort_unstable();
            let logs = partition_logs(nodes, &tp);
            let log = logs.iter().find(|(b, _)| leaders.get(&tp) == Some(b)).or(logs.first()).map(|(_, l)| *l);
            let session =
                |offset: i64| log.and_then(|l| l.record_at(offset)).map(|(b, _)| (b.producer_id, b.producer_epoch));
            let mut overtaken: Vec<(i64, String)> = Vec::new();
            let mut highest: Option<(i64, &str)> = None;
            let mut example = None;
            // Whether some overtaking pair was written by one producer session.
            let mut same_session = false;
            for (_, offset, value) in &writes {
                match highest {
                    Some((h, later)) if *offset < h => {
                        overtaken.push((*offset, value.to_string()));
                        let (a, b) = (session(h), session(*offset));
                        same_session |= a.is_none() || a == b;
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
            let idempotent = promise.is_some_and(|p| p.idempotent);
            let promised = promise.is_some_and(|p| p.one_in_flight) || (idempotent && same_session);
            let why = if promised {
                "Kafka keeps a producer's order within a partition with idempotence or one request in flight"
            } else if idempotent {
                "the later write came from a new producer session: after OUT_OF_ORDER_SEQUENCE_NUMBER an idempotent producer bumps its epoch and starts its sequences again, and Kafka warns that going on risks reordering (OutOfOrderSequenceException, KIP-360)"
            } else {
                "without idempotence and with more than one request in flight, a retried batch can land after a later one"
            };
            findings.push(Finding::promise(
                Rule::Reordered,
                promised,
                format!(
                    "{tp}: {} record(s) from {} written out of send order, at offsets {}: {} ({why})",
                    overtaken.len(),
                    self.client_names.get(&client).map_or("a producer", String::as_str),
                    ranges(&overtaken),
                    example.unwrap_or_default()
                ),
            ));
        }
        findings
    }

    /// The same produced value at two offsets of the leader's log.
    pub(super) fn duplicates(&self, nodes: &Nodes) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (tp, leader) in &current_leaders(nodes) {
            if !self.producers.values().any(|p| p.topic == tp.topic) {
                continue; // only application topics: internal topics repeat values by design
            }
            let logs = partition_logs(nodes, tp);
            let Some((_, log)) = logs.iter().find(|(b, _)| b == leader) else { continue };
            // Each value's first producer id, and every later copy with whether the same producer
            // session (producer id) wrote it again.
            let mut first_writer: BTreeMap<&str, i64> = BTreeMap::new();
            let mut duplicates: Vec<(i64, String)> = Vec::new();
            let mut same_session = false;
            // Transaction markers are not produced values: every transaction ends with one. An
            // aborted transaction's records are not written values either: no read_committed
            // reader sees them, and an exactly-once pipeline writes them again by design.
            let batches: Vec<_> = log.batches().collect();
            let aborted = |i: usize| {
                let batch = batches[i];
                batch.is_transactional
                    && batches[i + 1..]
                        .iter()
                        .find(|later| later.producer_id == batch.producer_id && later.is_control())
                        .is_some_and(|later| {
                            later.control.is_some_and(|m| m.control_type == ksim_cluster::record::ControlType::Abort)
                        })
            };
            for (_, batch) in batches.iter().enumerate().filter(|(i, b)| !b.is_control() && !aborted(*i)) {
                // A tombstone has no value to repeat.
                for (offset, value) in batch.records_with_offsets().filter_map(|(o, r)| Some((o, r.value.as_deref()?)))
                {
                    match first_writer.get(value) {
                        Some(pid) => {
                            same_session |= *pid == batch.producer_id;
                            duplicates.push((offset, value.to_string()));
                        }
                        None => {
                            first_writer.insert(value, batch.producer_id);
                        }
                    }
                }
            }
            if !duplicates.is_empty() {
                let idempotent = self.producers.values().filter(|p| p.topic == tp.topic).all(|p| p.idempotent);
                // The broker deduplicates with producer state kept beside the log; an unclean
                // election or a power failure can lose it with the records, and then a retry
                // is written again. It deduplicates one producer id's retries: a value written
                // again by a new producer session is no retry. Kafka promises no duplicates only
                // within a session, and without those failures.
                let promised = idempotent && same_session && self.consistency_promised(tp);
                let why = match (idempotent, same_session, promised) {
                    (true, _, true) => " despite idempotence",
                    (true, false, _) => {
                        " by another producer session (a new producer id: idempotence deduplicates one session's retries, not an application that restarted and wrote the same value again)"
                    }
                    (true, true, false) => {
                        " despite idempotence (expected: an unclean election or a power failure lost the producer state the leader deduplicates with)"
                    }
                    _ => " (retries without idempotence)",
                };
                findings.push(Finding::promise(
                    Rule::DuplicateRecord,
                    promised,
                    format!(
                        "{tp}: {} record(s) written again at offsets {}: {}{why}",
                        duplicates.len(),
                        ranges(&duplicates),
                        values(&duplicates),
                    ),
                ));
            }
        }
        findings
    }
}
