//! Consume-transform-produce pipelines: each input's effect in the output, exactly once?
//!
//! A `ConsumeTransformProduce` application writes one output record per input record, its value
//! naming the input (`invoice for orders-0@5: ...`). At the end the checker reads the output the
//! way a `read_committed` consumer would (the leader's log below the last stable offset, aborted
//! transactions dropped, markers skipped) and counts each input's outputs.
//!
//! - **effect-not-exactly-once** (a promise for an `ExactlyOnce` pipeline under the
//!   acknowledged-write conditions; a lesson for an `AtLeastOnce` one): an input has two outputs,
//!   or an input below the group's committed offset has none. With transactions the outputs and
//!   the input offsets commit or abort together (KIP-98's `sendOffsetsToTransaction`; the
//!   coordinator writes the same marker to the output partitions and to the group's
//!   `__consumer_offsets` partition), so a crash, a zombie fenced by its epoch (InitProducerId)
//!   or by its group generation (KIP-447's TxnOffsetCommit), leaves each input's output once.
//!   An at-least-once pipeline commits after its outputs: a crash in between writes them again.
//!
//! A missing output is only judged once nothing is undecided: every output partition and every
//! `__consumer_offsets` partition has its last stable offset at its high watermark (an output
//! COMMIT marker may be written before the offsets' one, or after).

use super::{Checker, Finding, Rule};
use crate::nodes::{current_leaders, Machine, Nodes};
use ksim_cluster::group::coordinator::OFFSETS_TOPIC;
use ksim_cluster::node::NodeId;
use ksim_cluster::record::ControlType;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use std::collections::BTreeMap;

/// A pipeline the scenario runs.
#[derive(Clone, Debug)]
pub(super) struct Pipeline {
    pub(super) node: NodeId,
    pub(super) name: String,
    pub(super) group: String,
    pub(super) output: String,
    pub(super) exactly_once: bool,
}

/// The input an output record names: `invoice for orders-0@5: ...` -> (orders-0, 5).
pub(super) fn input_of(value: &str) -> Option<(String, i64)> {
    let rest = value.strip_prefix("invoice for ")?;
    let (input, _) = rest.split_once(": ")?;
    let (tp, offset) = input.rsplit_once('@')?;
    Some((tp.to_string(), offset.parse().ok()?))
}

/// What a `read_committed` consumer reads of `tp` now, from its leader: the values below the
/// last stable offset, aborted and undecided transactions dropped; and whether nothing is
/// undecided (LSO = HW). None if no running leader holds it.
fn read_committed(
    nodes: &Nodes,
    leaders: &BTreeMap<TopicPartition, BrokerId>,
    tp: &TopicPartition,
) -> Option<(Vec<String>, bool)> {
    let leader = leaders.get(tp)?;
    let slot = nodes.get(&NodeId::Broker(*leader))?;
    let Some(Machine::Broker(b)) = &slot.machine else { return None };
    let replica = b.replica(tp)?;
    let hw = replica.high_watermark;
    let lso = replica.log.last_stable_offset(hw);
    let batches: Vec<_> = replica.log.batches().filter(|b| b.base_offset < lso).collect();
    let mut values = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        if batch.control.is_some() {
            continue;
        }
        if batch.is_transactional {
            let fate = batches[i + 1..]
                .iter()
                .find(|later| later.producer_id == batch.producer_id && later.control.is_some())
                .and_then(|later| later.control.map(|m| m.control_type));
            if fate != Some(ControlType::Commit) {
                continue;
            }
        }
        for (offset, record) in (batch.base_offset..).zip(batch.records.iter()) {
            // A tombstone is no output of a transform.
            if let (true, Some(value)) = (offset < lso, &record.value) {
                values.push(value.clone());
            }
        }
    }
    Some((values, lso == hw))
}

impl Checker {
    /// At the end: each pipeline's inputs with two outputs, or (once settled) none below the
    /// group's committed offset.
    pub(super) fn pipeline_effects(&self, nodes: &Nodes) -> Vec<Finding> {
        let leaders = current_leaders(nodes);
        let mut findings = Vec::new();
        let offsets_settled = leaders
            .keys()
            .filter(|tp| tp.topic == OFFSETS_TOPIC)
            .all(|tp| read_committed(nodes, &leaders, tp).is_none_or(|(_, settled)| settled));
        for pipeline in &self.pipelines {
            let mut effects: BTreeMap<(String, i64), u32> = BTreeMap::new();
            let mut settled = offsets_settled;
            let mut output_partitions = Vec::new();
            for tp in leaders.keys().filter(|tp| tp.topic == pipeline.output) {
                output_partitions.push(tp.clone());
                let Some((values, partition_settled)) = read_committed(nodes, &leaders, tp) else {
                    settled = false;
                    continue;
                };
                settled &= partition_settled;
                for input in values.iter().filter_map(|v| input_of(v)) {
                    *effects.entry(input).or_insert(0) += 1;
                }
            }
            let twice: Vec<String> =
                effects.iter().filter(|(_, n)| **n > 1).map(|((tp, o), n)| format!("{tp}@{o} ({n} times)")).collect();
            let mut missing: Vec<String> = Vec::new();
            if settled {
                for ((group, tp), committed) in &self.groups.commits {
                    if group != &pipeline.group {
                        continue;
                    }
                    let start = self.groups.first_position(group, tp).unwrap_or(0);
                    for offset in start..*committed {
                        if !effects.contains_key(&(tp.to_string(), offset)) && self.has_record(nodes, tp, offset) {
                            missing.push(format!("{tp}@{offset}"));
                        }
                    }
                }
            }
            if twice.is_empty() && missing.is_empty() {
                continue;
            }
            let promised =
                pipeline.exactly_once && output_partitions.iter().all(|tp| self.durability_promised(pipeline.node, tp));
            let why = match (pipeline.exactly_once, promised) {
                (true, true) => "its outputs and input offsets commit in one transaction, so Kafka promises each \
                                 input's effect exactly once"
                    .to_string(),
                (true, false) => {
                    let tp =
                        output_partitions.first().cloned().unwrap_or_else(|| TopicPartition::new(&pipeline.output, 0));
                    self.why_not_promised(pipeline.node, &tp)
                }
                (false, _) => "expected: at-least-once commits after the outputs, so a crash in between writes them \
                               again"
                    .to_string(),
            };
            let mut what = Vec::new();
            if !twice.is_empty() {
                what.push(format!("{} input(s) have more than one output: {}", twice.len(), shown(&twice)));
            }
            if !missing.is_empty() {
                what.push(format!(
                    "{} input(s) below the committed offset have no output: {}",
                    missing.len(),
                    shown(&missing)
                ));
            }
            findings.push(Finding::promise(
                Rule::EffectNotExactlyOnce,
                promised,
                format!(
                    "pipeline {} ({}), read_committed from {}: {} ({why})",
                    pipeline.name,
                    if pipeline.exactly_once { "exactly-once" } else { "at-least-once" },
                    pipeline.output,
                    what.join("; ")
                ),
            ));
        }
        findings
    }

    /// Whether the leader's log of `tp` still holds a (data) record at `offset`.
    fn has_record(&self, nodes: &Nodes, tp: &TopicPartition, offset: i64) -> bool {
        let leaders = current_leaders(nodes);
        let Some(leader) = leaders.get(tp) else { return false };
        crate::nodes::partition_logs(nodes, tp)
            .iter()
            .find(|(b, _)| b == leader)
            .and_then(|(_, log)| log.record_at(offset))
            .is_some_and(|(batch, _)| batch.control.is_none())
    }
}

/// The first few items, and how many more.
fn shown(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out: Vec<String> = items.iter().take(SHOWN).cloned().collect();
    if items.len() > SHOWN {
        out.push(format!("... ({} more)", items.len() - SHOWN));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_names_its_input() {
        assert_eq!(input_of("invoice for orders-0@5: order-5"), Some(("orders-0".into(), 5)));
        assert_eq!(input_of("invoice for my-topic-12@40: a: b"), Some(("my-topic-12".into(), 40)));
        assert_eq!(input_of("order-5"), None);
    }
}
