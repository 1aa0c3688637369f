//! The checker: Kafka's guarantees, checked from outside the cluster after every step.
//!
//! Every rule is a [`Rule`] with a [`Nature`]. An *invariant* holds in any configuration, so a
//! finding is a bug in ksim: at most one leader per partition per leader epoch, one owner per
//! partition per group generation, no commit past the log end; and (asserted, so a break stops the
//! run) a replica's high watermark never exceeds its log end, and a leader's never moves back
//! within its epoch.
//!
//! A *promise* holds only under a configuration: replicas agree on every record below the high
//! watermark; a consumer reads only records that were committed; an acknowledged write is never
//! lost; no record is written twice. Kafka promises no acknowledged write is lost with
//! `acks=all`, `min.insync.replicas >= 2`, no unclean election and no correlated power failure.
//! A finding outside that promise is reported with `violation: false`: `acks=1` losing data is
//! what the scenario sets out to show, not a failure of the run. A *lesson* is something Kafka
//! never promises (a group processing a record twice), reported so the reader sees it happen.
//!
//! The checker is a state machine like the cluster's: the world feeds it each note, step and
//! stop with the time and the nodes' states, and it answers with findings. It never reads the
//! clock, so it runs in plain unit tests. One file per job:
//! - [`replication`]: leaders per epoch, elections and truncations, high watermarks, replicas
//!   that diverge;
//! - [`consumption`]: what each consumer read, in what order;
//! - [`groups`]: who owns what in each generation, commits, what the applications processed;
//! - [`history`]: acknowledged writes, and at the end which were lost (and how), reordered or
//!   written twice;
//! - [`outputs`]: a consume-transform-produce application commits only once its outputs are
//!   answered (`commit-before-output-acked`, an invariant);
//! - [`pipelines`]: a consume-transform-produce pipeline's output holds each input's effect once
//!   (`effect-not-exactly-once`);
//! - [`transactions`]: `read_committed` reads, producer epochs, committed transactions kept;
//! - [`liveness`]: after the last fault, whether the cluster recovered (`no-convergence`);
//! - [`quorum`]: the controller quorum: one leader per epoch, committed metadata never lost, brokers
//!   act on committed metadata only;
//! - [`compaction`]: what each broker's log cleaner removed, and the promise that a reader still
//!   sees every key's latest value (`compacted-latest-lost`).

mod compaction;
pub mod connect;
mod consumption;
mod groups;
mod history;
pub mod liveness;
mod outputs;
mod pipelines;
mod quorum;
mod replication;
mod streams;
#[cfg(test)]
mod tests;
mod transactions;

pub use crate::trace::{Class, Finding, Nature, Rule};

use crate::nodes::Nodes;
use crate::scenario::{App, Resolved, Scenario};
use compaction::Compaction;
use consumption::Consumption;
use groups::Groups;
use history::History;
use ksim_cluster::config::Acks;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::TopicPartition;
use outputs::Outputs;
use replication::Replication;
use std::collections::{BTreeMap, BTreeSet};
use transactions::Transactions;

/// What a producer's configuration makes Kafka promise about its writes.
#[derive(Clone, Debug)]
struct ProducerPromise {
    acks_all: bool,
    idempotent: bool,
    /// `max.in.flight.requests.per.connection == 1`: order kept even without idempotence.
    one_in_flight: bool,
    topic: String,
}

pub struct Checker {
    /// `min.insync.replicas` per topic.
    min_isr: BTreeMap<String, usize>,
    producers: BTreeMap<NodeId, ProducerPromise>,
    /// Client node -> its name in the scenario.
    client_names: BTreeMap<NodeId, String>,
    replication: Replication,
    consumption: Consumption,
    groups: Groups,
    history: History,
    outputs: Outputs,
    quorum: quorum::Quorum,
    transactions: Transactions,
    compaction: Compaction,
    streams: streams::Streams,
    pub connect: connect::ConnectCheck,
    /// Connect workers: their sink tasks' commits do not wait for their source tasks' sends
    /// (separate tasks, separate clients in Kafka), so `commit-before-output-acked` is not theirs.
    connect_workers: BTreeSet<NodeId>,
    pipelines: Vec<pipelines::Pipeline>,
    /// Findings reported once per rule, partition and offset.
    reported: BTreeSet<(Rule, TopicPartition, i64)>,
}

impl Checker {
    pub fn new(scenario: &Scenario, resolved: &Resolved) -> Self {
        // The min ISR the leader enforces: `min.insync.replicas` capped by the replication factor
        // from 3.7 (`Partition.effectiveMinIsr`).
        let min_isr = resolved
            .topics
            .iter()
            .map(|(t, c)| {
                (t.name.clone(), resolved.broker.effective_min_isr(c.min_insync_replicas, t.replication_factor))
            })
            .collect();
        let mut producers = BTreeMap::new();
        for (i, client) in scenario.clients.iter().enumerate() {
            let topic = match &client.app {
                App::Producer { topic, .. }
                | App::JsonProducer { topic, .. }
                | App::TransactionalProducer { topic, .. } => Some(topic),
                App::GroupByCount { output, .. } | App::ConsumeTransformProduce { output, .. } => Some(output),
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
        let pipelines = scenario
            .clients
            .iter()
            .enumerate()
            .filter_map(|(i, client)| {
                let App::ConsumeTransformProduce { output, processing, .. } = &client.app else { return None };
                let group = resolved.consumers.get(&client.name)?.group_id.clone()?;
                Some(pipelines::Pipeline {
                    node: NodeId::Client(i as u32),
                    name: client.name.clone(),
                    group,
                    output: output.clone(),
                    exactly_once: *processing == crate::scenario::Processing::ExactlyOnce,
                })
            })
            .collect();
        let mut groups = Groups::default();
        for (i, client) in scenario.clients.iter().enumerate() {
            if let Some(config) = resolved.consumers.get(&client.name) {
                // A Connect worker's consumer is its sink tasks' member of `connect-<connector>`.
                let member = client.app.group_member() || matches!(client.app, App::ConnectWorker);
                if let (Some(group), true) = (&config.group_id, member) {
                    groups.group_of.insert((NodeId::Client(i as u32), 0), group.clone());
                    let cooperative = !config.partition_assignment_strategy.is_empty()
                        && config.partition_assignment_strategy.iter().all(|s| s == "cooperative-sticky");
                    if cooperative {
                        groups.cooperative.insert(group.clone());
                    }
                }
            }
        }
        Checker {
            min_isr,
            producers,
            client_names: scenario
                .clients
                .iter()
                .enumerate()
                .map(|(i, c)| (NodeId::Client(i as u32), c.name.clone()))
                .collect(),
            replication: Replication::default(),
            consumption: Consumption::default(),
            groups,
            history: History::default(),
            outputs: Outputs::default(),
            quorum: quorum::Quorum::default(),
            compaction: Compaction::default(),
            streams: streams::Streams::default(),
            pipelines,
            transactions: Transactions::new(
                scenario
                    .clients
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        resolved
                            .consumers
                            .get(&c.name)
                            .is_some_and(|c| c.isolation_level == ksim_cluster::protocol::IsolationLevel::ReadCommitted)
                    })
                    .map(|(i, _)| NodeId::Client(i as u32))
                    .collect(),
            ),
            reported: BTreeSet::new(),
            connect_workers: scenario
                .clients
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(c.app, App::ConnectWorker))
                .map(|(i, _)| NodeId::Client(i as u32))
                .collect(),
            connect: connect::ConnectCheck::new(
                resolved
                    .connect
                    .as_ref()
                    .and_then(|c| c.exactly_once_source())
                    .map(|c| c.name.clone())
                    .into_iter()
                    .collect(),
            ),
        }
    }

    /// Whether Kafka promises acknowledged writes to this partition from this producer survive.
    fn durability_promised(&self, client: NodeId, tp: &TopicPartition) -> bool {
        let acks_all = self.producers.get(&client).is_some_and(|p| p.acks_all);
        let min_isr = self.min_isr.get(tp.topic.as_str()).copied().unwrap_or(1);
        acks_all && min_isr >= 2 && self.consistency_promised(tp)
    }

    /// Whether Kafka promises the replicas of this partition agree below the high watermark.
    fn consistency_promised(&self, tp: &TopicPartition) -> bool {
        !self.replication.unclean.contains(tp) && self.replication.power_failures == 0
    }

    /// Whether this is the first finding of `rule` at this offset (later ones are not repeated).
    fn once(&mut self, rule: Rule, tp: &TopicPartition, offset: i64) -> bool {
        self.reported.insert((rule, tp.clone(), offset))
    }

    /// A node's process ended; `power_loss` if its machine lost power too.
    pub fn on_stop(&mut self, node: NodeId, power_loss: bool) {
        self.replication.on_stop(node, power_loss);
        self.groups.on_stop(node);
        self.outputs.on_stop(node);
        self.quorum.on_stop(node);
    }

    /// The application on `node` sent a record; the producer gave it `send_id`.
    pub fn on_send(&mut self, node: NodeId, send_id: u64) {
        self.outputs.on_send(node, send_id);
    }

    /// The application on `node` started a commit of its consumer's positions.
    pub fn on_app_commit(&mut self, node: NodeId) -> Vec<Finding> {
        if self.connect_workers.contains(&node) {
            return Vec::new();
        }
        let name = self.client_names.get(&node).cloned().unwrap_or_else(|| node.to_string());
        self.outputs.on_commit(node, &name).into_iter().collect()
    }

    /// A Streams instance on `node` made these inputs' results visible (see `check/streams.rs`).
    pub fn on_streams_counted(
        &mut self,
        node: NodeId,
        application: &str,
        exactly_once: bool,
        inputs: &[(TopicPartition, i64)],
    ) -> Vec<Finding> {
        let name = self.client_names.get(&node).cloned().unwrap_or_else(|| node.to_string());
        self.streams.on_counted(application, &name, exactly_once, inputs)
    }

    /// The application on `node` finished processing a record its consumer `engine` returned.
    pub fn on_processed(&mut self, node: NodeId, engine: u8, partition: &TopicPartition, offset: i64) {
        self.groups.on_processed(node, engine, partition, offset);
    }

    /// The application on `node` created consumer engine `engine` (see
    /// `World::consumer_add_engine`), a member of `group` or of none.
    pub fn on_consumer_engine_created(
        &mut self,
        node: NodeId,
        engine: u8,
        config: &ksim_cluster::config::ConsumerConfig,
    ) {
        let cooperative = !config.partition_assignment_strategy.is_empty()
            && config.partition_assignment_strategy.iter().all(|s| s == "cooperative-sticky");
        self.groups.on_engine_created(node, engine, config.group_id.clone(), cooperative);
    }

    /// A state machine's note, at `now`: the findings it reveals.
    pub fn on_note(&mut self, now: SimTime, node: NodeId, note: &Note, nodes: &Nodes) -> Vec<Finding> {
        let mut findings = Vec::new();
        if let Note::ProduceAcked { send_id, .. } | Note::ProduceFailed { send_id, .. } = note {
            self.outputs.on_answer(node, *send_id);
        }
        match note {
            Note::Quorum(ksim_cluster::raft::RaftEvent::Transition {
                epoch,
                role: ksim_cluster::raft::state::RoleName::Leader,
                ..
            }) => {
                if let NodeId::Controller(id) = node {
                    findings.extend(self.quorum.on_leader(id, *epoch));
                }
            }
            Note::BecameLeader { partition, leader_epoch, .. } => {
                let broker = node.broker_id().expect("only brokers lead");
                findings.extend(self.replication.on_became_leader(broker, partition, *leader_epoch));
            }
            Note::PartitionChanged { partition, leader, leader_epoch, election, .. } => {
                self.replication.on_partition_changed(now, partition, *leader, *leader_epoch, *election);
            }
            Note::Truncated { partition, to_offset, removed, reason } if *removed > 0 => {
                if let Some(broker) = node.broker_id() {
                    self.replication.on_truncated(now, broker, partition, *to_offset, *removed, *reason);
                }
            }
            Note::LogCleaned { partition, cleaning } => {
                if let Some(broker) = node.broker_id() {
                    findings.extend(self.on_log_cleaned(broker, partition, cleaning, nodes));
                }
            }
            Note::OffsetOutOfRange { partition, .. } => self.consumption.on_position_lost(node, partition),
            // KIP-320: the position moved back to where the new leader's log diverges (or is
            // dropped); reading those offsets again reads the records that replaced the lost ones,
            // not the same records twice.
            Note::TruncationDetected { partition, .. } => self.consumption.on_position_lost(node, partition),
            Note::AssignmentStored { group, generation, member, partitions } => {
                findings.extend(self.groups.on_assignment_stored(group, *generation, member, partitions));
            }
            Note::PartitionsAssigned { group, partitions, member, generation } => {
                findings.extend(self.groups.on_partitions_assigned(node, group, member, *generation, partitions));
            }
            Note::PartitionsRevoked { group, member, partitions, .. } => {
                self.groups.on_partitions_revoked(node, group, member, partitions);
            }
            Note::PositionReset { partition, offset, engine, .. } => {
                self.consumption.on_position_lost(node, partition);
                self.groups.on_position_reset(node, *engine, partition, *offset);
            }
            Note::OffsetCommitted { group, partition, offset } => {
                findings.extend(self.on_offset_committed(group, partition, *offset, nodes));
            }
            Note::ProduceAcked { send_id, partition, offset, key, value } if *offset >= 0 => {
                findings.extend(self.on_produce_acked(now, node, *send_id, partition, *offset, key, value));
            }
            Note::Consumed { partition, offset, key, value, engine, .. } => {
                self.groups.on_consumed(node, *engine, partition, *offset);
                findings.extend(self.on_consumed(node, partition, *offset, key, value));
                findings.extend(self.check_read_committed(node, partition, *offset));
            }
            Note::TxnInitialized { transactional_id, producer_id, producer_epoch } => {
                findings.extend(self.on_txn_initialized(node, transactional_id, *producer_id, *producer_epoch));
            }
            Note::TxnEnded { transactional_id, producer_id, committed: true, records, .. } => {
                self.on_txn_committed(node, transactional_id, *producer_id, records);
            }
            _ => {}
        }
        findings
    }

    /// After `node` took a step: the replicas it changed, checked against the others.
    pub fn after_step(&mut self, node: NodeId, nodes: &Nodes) -> Vec<Finding> {
        let mut findings = self.check_replicas(node, nodes);
        findings.extend(self.quorum.after_step(node, nodes));
        findings
    }

    /// End-of-run history checks: acknowledged writes still present, in order, written once;
    /// records processed twice or committed unprocessed. One finding per partition and kind,
    /// naming the offsets and records.
    pub fn finish(&mut self, nodes: &Nodes, stores: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Finding> {
        let gone = self.gone_writes(nodes);
        let mut findings = self.lost_writes(&gone);
        findings.extend(self.reordering(&gone, nodes));
        findings.extend(self.groups.delivery_findings());
        findings.extend(self.duplicates(nodes));
        findings.extend(self.lost_transactions(nodes));
        findings.extend(self.connect_findings(nodes, stores));
        findings.extend(self.pipeline_effects(nodes));
        findings
    }

    /// Acknowledged writes gone from the log that Kafka promised to keep (the others are lessons
    /// the history check reports, not something the cluster can recover).
    pub fn lost_acked_writes(&self, nodes: &Nodes) -> usize {
        let gone = self.gone_writes(nodes);
        gone.iter().filter(|&&i| self.history.acked[i].promised_by(self)).count()
    }

    pub fn processed_count(&self, client: NodeId) -> u64 {
        self.groups.processed_count(client)
    }

    /// The metadata the controller quorum committed, as the checker saw it: (entries, idle
    /// no-ops among them); `None` without a quorum.
    pub fn committed_metadata(&self) -> Option<(usize, usize)> {
        self.quorum.committed_metadata()
    }

    pub fn acked_count(&self, client: NodeId) -> u64 {
        self.history.acked_count(client)
    }

    pub fn consumed_count(&self, client: NodeId) -> u64 {
        self.consumption.consumed_count(client)
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
fn values(records: &[(i64, String)]) -> String {
    const SHOWN: usize = 4;
    let mut shown: Vec<String> = records.iter().take(SHOWN).map(|(_, v)| format!("{v:?}")).collect();
    if records.len() > SHOWN {
        shown.push(format!("... ({} more)", records.len() - SHOWN));
    }
    shown.join(", ")
}
