//! The trace: everything that happened in a run, in order.
//!
//! A trace is the product of a run. The TUI steps through it, the checker reads it, the snapshots
//! and the book quote it. Each event has a sequence number, a virtual time in microseconds, the
//! node it happened at (by our own name, never a runtime id) and what happened. The same scenario,
//! seed and ksim build always give a byte-identical trace; [`Trace::digest`] summarises it.

use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::protocol::ApiKey;
use ksim_cluster::timer::Timer;
use ksim_cluster::topic::BrokerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why the fabric did not deliver a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// A network partition cuts the link from sender to receiver.
    Partitioned,
    /// Random loss (`network.loss`): TCP retransmits the message after its retransmission
    /// timeout, so it still arrives, later, unless the connection breaks.
    Lost,
    /// The receiver's process is dead: its host answers with a reset, and the sender learns the
    /// connection closed.
    ReceiverDown,
    /// The receiver has no power: nothing answers at all.
    ReceiverPoweredOff,
    /// The connection this message travelled on was closed before it arrived.
    ConnectionClosed,
}

/// A fault applied to the world, by the scenario or a what-if.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// The process dies (`kill -9`); the page cache, and so every written record, survives.
    Kill(NodeId),
    /// The machine loses power: whatever was not flushed to disk is lost.
    PowerFail(NodeId),
    /// The process starts again from what its disk holds.
    Restart(NodeId),
    /// The process stops running (a long GC pause, a stalled VM) but keeps its sockets.
    Pause(NodeId),
    Resume(NodeId),
    /// An operator stops the process gracefully (SIGTERM, `kafka-server-stop.sh`): a broker first
    /// runs its controlled shutdown, a client's application closes its consumer (commit,
    /// LeaveGroup); the controller exits at once.
    Stop(NodeId),
    /// The process finished its graceful shutdown and exits, every log flushed. The world records
    /// this when the process says it is done; a scenario cannot name it.
    Exit(NodeId),
    /// Links between these groups are cut in both directions.
    Partition(Vec<Vec<NodeId>>),
    /// Messages from `from` to `to` are dropped; the other direction still works.
    PartitionOneWay {
        from: Vec<NodeId>,
        to: Vec<NodeId>,
    },
    /// Every partition is removed.
    Heal,
    /// Messages between the two nodes (both directions) take this much longer.
    SlowLink {
        a: NodeId,
        b: NodeId,
        extra_latency_ms: u64,
    },
}

impl Fault {
    /// The node whose process this fault acts on (none for network faults).
    /// The same process fault aimed at another node (a network fault is returned unchanged).
    pub fn on(&self, node: NodeId) -> Fault {
        match self {
            Fault::Kill(_) => Fault::Kill(node),
            Fault::PowerFail(_) => Fault::PowerFail(node),
            Fault::Restart(_) => Fault::Restart(node),
            Fault::Pause(_) => Fault::Pause(node),
            Fault::Resume(_) => Fault::Resume(node),
            Fault::Stop(_) => Fault::Stop(node),
            Fault::Exit(_) => Fault::Exit(node),
            other => other.clone(),
        }
    }

    pub fn node(&self) -> Option<NodeId> {
        match self {
            Fault::Kill(n)
            | Fault::PowerFail(n)
            | Fault::Restart(n)
            | Fault::Pause(n)
            | Fault::Resume(n)
            | Fault::Stop(n)
            | Fault::Exit(n) => Some(*n),
            Fault::Partition(_) | Fault::PartitionOneWay { .. } | Fault::Heal | Fault::SlowLink { .. } => None,
        }
    }
}

/// An invariant or history finding from the checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule that fired; serialized as its stable name (`acked-write-lost`, …).
    pub rule: Rule,
    /// Whether Kafka promises this cannot happen under the scenario's configuration. A finding
    /// that is not a violation is a lesson (`acks=1` losing data), not a bug.
    pub violation: bool,
    pub message: String,
}

impl Finding {
    /// An invariant fired: ksim's Kafka did something Kafka never does.
    pub fn bug(rule: Rule, message: String) -> Finding {
        assert_eq!(rule.nature(), Nature::Invariant, "{rule} is not an invariant");
        Finding { rule, violation: true, message }
    }

    /// A promise was broken; `promised` says whether the scenario's configuration made it.
    pub fn promise(rule: Rule, promised: bool, message: String) -> Finding {
        assert_eq!(rule.nature(), Nature::Promise, "{rule} is not a promise");
        Finding { rule, violation: promised, message }
    }

    /// Something Kafka never promises happened.
    pub fn lesson(rule: Rule, message: String) -> Finding {
        assert_eq!(rule.nature(), Nature::Lesson, "{rule} is not a lesson");
        Finding { rule, violation: false, message }
    }

    /// What this finding means for the run.
    pub fn class(&self) -> Class {
        match (self.rule.nature(), self.violation) {
            (Nature::Invariant, _) => Class::Bug,
            (Nature::Promise, true) => Class::Violation,
            (Nature::Promise, false) | (Nature::Lesson, _) => Class::Lesson,
        }
    }
}

/// What a finding means: a bug in ksim, a broken promise, or a lesson about Kafka.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// An invariant fired: Kafka's implementation never allows this in any configuration, so
    /// ksim's model of it is wrong.
    Bug,
    /// Kafka promises this cannot happen under the scenario's configuration, and it did.
    Violation,
    /// Kafka allows this here: what the scenario sets out to show.
    Lesson,
}

impl Class {
    /// Whether the run fails on it.
    pub fn fails(self) -> bool {
        matches!(self, Class::Bug | Class::Violation)
    }
}

/// What kind of guarantee a rule checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nature {
    /// Holds in every configuration: a firing is always a bug in ksim.
    Invariant,
    /// Holds only under some configurations: a violation when the scenario's configuration makes
    /// Kafka promise it, a lesson otherwise.
    Promise,
    /// Kafka never promises it: a firing is always a lesson.
    Lesson,
}

/// The rules the checker applies. Each serializes as its stable kebab-case name, which traces,
/// reports and the book quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    TwoLeadersInEpoch,
    TwoOwnersInGeneration,
    TwoOwners,
    CommitWentBack,
    CommitPastLogEnd,
    CommittedUndelivered,
    AckedUncommitted,
    ReadUncommitted,
    SkippedOffsets,
    ConsumedAgain,
    ReplicasDiverge,
    AckedWriteLost,
    Reordered,
    ProcessedTwice,
    CommittedUnprocessed,
    DuplicateRecord,
    NoConvergence,
    CommitBeforeOutputAcked,
    TwoQuorumLeadersInEpoch,
    CommittedMetadataLost,
    BrokerActedOnUncommitted,
    ReadAborted,
    TwoProducersInEpoch,
    CommittedTransactionLost,
    CompactedLatestLost,
    CountedTwice,
    SinkRewrote,
    UpsertSinkStale,
    SourceRecordDuplicated,
    EffectNotExactlyOnce,
}

impl Rule {
    pub const ALL: [Rule; 30] = [
        Rule::TwoLeadersInEpoch,
        Rule::TwoOwnersInGeneration,
        Rule::TwoOwners,
        Rule::CommitWentBack,
        Rule::CommitPastLogEnd,
        Rule::CommittedUndelivered,
        Rule::AckedUncommitted,
        Rule::ReadUncommitted,
        Rule::SkippedOffsets,
        Rule::ConsumedAgain,
        Rule::ReplicasDiverge,
        Rule::AckedWriteLost,
        Rule::Reordered,
        Rule::ProcessedTwice,
        Rule::CommittedUnprocessed,
        Rule::DuplicateRecord,
        Rule::NoConvergence,
        Rule::CommitBeforeOutputAcked,
        Rule::TwoQuorumLeadersInEpoch,
        Rule::CommittedMetadataLost,
        Rule::BrokerActedOnUncommitted,
        Rule::ReadAborted,
        Rule::TwoProducersInEpoch,
        Rule::CommittedTransactionLost,
        Rule::CompactedLatestLost,
        Rule::CountedTwice,
        Rule::SinkRewrote,
        Rule::UpsertSinkStale,
        Rule::SourceRecordDuplicated,
        Rule::EffectNotExactlyOnce,
    ];

    /// The stable name: what the trace stores and the report prints.
    pub fn name(self) -> &'static str {
        match self {
            Rule::TwoLeadersInEpoch => "two-leaders-in-epoch",
            Rule::TwoOwnersInGeneration => "two-owners-in-generation",
            Rule::TwoOwners => "two-owners",
            Rule::CommitWentBack => "commit-went-back",
            Rule::CommitPastLogEnd => "commit-past-log-end",
            Rule::CommittedUndelivered => "committed-undelivered",
            Rule::AckedUncommitted => "acked-uncommitted",
            Rule::ReadUncommitted => "read-uncommitted",
            Rule::SkippedOffsets => "skipped-offsets",
            Rule::ConsumedAgain => "consumed-again",
            Rule::ReplicasDiverge => "replicas-diverge",
            Rule::AckedWriteLost => "acked-write-lost",
            Rule::Reordered => "reordered",
            Rule::ProcessedTwice => "processed-twice",
            Rule::CommittedUnprocessed => "committed-unprocessed",
            Rule::DuplicateRecord => "duplicate-record",
            Rule::NoConvergence => "no-convergence",
            Rule::CommitBeforeOutputAcked => "commit-before-output-acked",
            Rule::TwoQuorumLeadersInEpoch => "two-quorum-leaders-in-epoch",
            Rule::CommittedMetadataLost => "committed-metadata-lost",
            Rule::BrokerActedOnUncommitted => "broker-acted-on-uncommitted",
            Rule::ReadAborted => "read-aborted",
            Rule::TwoProducersInEpoch => "two-producers-in-epoch",
            Rule::CommittedTransactionLost => "committed-transaction-lost",
            Rule::CompactedLatestLost => "compacted-latest-lost",
            Rule::CountedTwice => "counted-twice",
            Rule::SinkRewrote => "sink-rewrote",
            Rule::UpsertSinkStale => "upsert-sink-stale",
            Rule::SourceRecordDuplicated => "source-record-duplicated",
            Rule::EffectNotExactlyOnce => "effect-not-exactly-once",
        }
    }

    /// One line on what the rule catches.
    pub fn description(self) -> &'static str {
        match self {
            Rule::TwoLeadersInEpoch => "two brokers led one partition in the same leader epoch",
            Rule::TwoOwnersInGeneration => "the coordinator assigned one partition to two members in one generation",
            Rule::TwoOwners => "with cooperative rebalancing, a member took a partition another member still owned",
            Rule::CommitWentBack => "a group's committed offset for a partition moved backwards",
            Rule::CommitPastLogEnd => "a group committed an offset past the end of every replica's log",
            Rule::CommittedUndelivered => "a group committed past an offset no member was ever given",
            Rule::AckedUncommitted => {
                "an acks=all write was acknowledged before any replica had it below its high watermark"
            }
            Rule::ReadUncommitted => "a consumer read a record no replica had below its high watermark",
            Rule::SkippedOffsets => "a consumer outside a group jumped over committed offsets",
            Rule::ConsumedAgain => "a consumer outside a group read an offset again",
            Rule::ReplicasDiverge => "two replicas committed different records at one offset",
            Rule::AckedWriteLost => "an acknowledged write is gone from the log",
            Rule::Reordered => "a producer's records landed in a partition out of send order",
            Rule::ProcessedTwice => "a group processed a record more than once (at-least-once delivery)",
            Rule::CommittedUnprocessed => "a group committed past records it never processed (at-most-once delivery)",
            Rule::DuplicateRecord => "one produced value was written at two offsets",
            Rule::NoConvergence => "the cluster had not recovered within its bound after the last fault",
            Rule::CommitBeforeOutputAcked => {
                "an application committed its input offsets while one of its output writes had no answer yet"
            }
            Rule::TwoQuorumLeadersInEpoch => "two controllers led the metadata quorum in the same epoch",
            Rule::CommittedMetadataLost => "a committed metadata record was lost, replaced or moved",
            Rule::BrokerActedOnUncommitted => "a broker applied metadata the quorum had not committed",
            Rule::ReadAborted => "a read_committed consumer returned a record of an aborted or undecided transaction",
            Rule::TwoProducersInEpoch => "two producers with one transactional.id were given the same epoch",
            Rule::CommittedTransactionLost => {
                "a committed transaction's records or COMMIT marker are gone from the log"
            }
            Rule::CompactedLatestLost => {
                "a compacted replica lost a key's latest committed value, or kept an older one after its tombstone went"
            }
            Rule::CountedTwice => {
                "a Kafka Streams application's results reflect one input record twice (promised once under exactly_once_v2)"
            }
            Rule::SinkRewrote => "a Connect sink task wrote a record to its store again (at-least-once delivery)",
            Rule::UpsertSinkStale => {
                "an upserting sink store, caught up, does not hold the latest value written for a key"
            }
            Rule::SourceRecordDuplicated => {
                "one source record is in a Connect source connector's committed output twice"
            }
            Rule::EffectNotExactlyOnce => {
                "a pipeline's read_committed output holds an input's effect twice, or not at all below its committed offset"
            }
        }
    }

    /// Whether the rule is an invariant, a promise of some configurations, or never promised.
    pub fn nature(self) -> Nature {
        match self {
            Rule::TwoLeadersInEpoch
            | Rule::TwoOwnersInGeneration
            | Rule::CommitPastLogEnd
            | Rule::CommitBeforeOutputAcked
            | Rule::TwoQuorumLeadersInEpoch
            | Rule::CommittedMetadataLost
            | Rule::BrokerActedOnUncommitted
            | Rule::TwoProducersInEpoch => Nature::Invariant,
            Rule::TwoOwners
            | Rule::CommitWentBack
            | Rule::CommittedUndelivered
            | Rule::AckedUncommitted
            | Rule::ReadUncommitted
            | Rule::SkippedOffsets
            | Rule::ReplicasDiverge
            | Rule::AckedWriteLost
            | Rule::Reordered
            | Rule::DuplicateRecord
            | Rule::NoConvergence
            | Rule::ReadAborted
            | Rule::CommittedTransactionLost
            | Rule::CompactedLatestLost
            | Rule::CountedTwice
            | Rule::UpsertSinkStale
            | Rule::SourceRecordDuplicated
            | Rule::EffectNotExactlyOnce => Nature::Promise,
            Rule::ConsumedAgain | Rule::ProcessedTwice | Rule::CommittedUnprocessed | Rule::SinkRewrote => {
                Nature::Lesson
            }
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// A node sent a message. `id` names it in the matching `Deliver` or `Drop`.
    Send {
        id: u64,
        to: NodeId,
        api: ApiKey,
        request: bool,
        summary: String,
    },
    /// The message arrived in the receiver's socket buffer.
    Deliver {
        id: u64,
        from: NodeId,
    },
    Drop {
        id: u64,
        to: NodeId,
        reason: DropReason,
    },
    /// The node learned that its connection to `peer` closed.
    ConnectionClosed {
        peer: NodeId,
    },
    TimerFired {
        timer: Timer,
    },
    /// A state machine's own account of a decision.
    Note(Note),
    Fault(Fault),
    /// The scenario's narration for this moment.
    Narration(String),
    /// The application on a client node did something worth a line (`sent order-7`).
    App(String),
    /// The application finished processing a record it consumed (its side effect is done).
    Processed {
        partition: ksim_cluster::TopicPartition,
        offset: i64,
    },
    Finding(Finding),
    /// The run ended.
    End,
}

/// Who did what an event records: a node (its state machine, its application, its disk), or the
/// world itself (a fault the scenario applied, narration, a checker finding, the end of the run).
/// No event is attributed to a node that did not do it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Actor {
    World,
    Node(NodeId),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub time_us: u64,
    pub actor: Actor,
    pub kind: EventKind,
}

impl Event {
    /// The node that did this, unless the world did.
    pub fn node(&self) -> Option<NodeId> {
        match self.actor {
            Actor::Node(node) => Some(node),
            Actor::World => None,
        }
    }
}

/// What a reader needs to interpret the events: who the nodes are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceHeader {
    pub scenario: String,
    pub title: String,
    pub seed: u64,
    pub brokers: Vec<BrokerId>,
    /// Client names, indexed by `NodeId::Client(i)`.
    pub clients: Vec<String>,
    pub duration_ms: u64,
    /// `broker.rack` of the brokers that have one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub racks: BTreeMap<BrokerId, String>,
    /// The command line's `--set` overrides the run applied, as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub header: TraceHeader,
    pub events: Vec<Event>,
}

impl Trace {
    /// A node's display name: `broker-1`, `controller`, or the client's scenario name.
    pub fn node_name(&self, node: NodeId) -> String {
        node_name(&self.header.clients, node)
    }

    /// Who did it: a node's name, or `world`.
    pub fn actor_name(&self, actor: Actor) -> String {
        match actor {
            Actor::Node(node) => self.node_name(node),
            Actor::World => WORLD.to_string(),
        }
    }

    /// The canonical form: one JSON object per line (header first), in order. Stable across
    /// runs, platforms and builds of the same version; for reading and comparing traces (the
    /// digest hashes a binary form of the same values).
    pub fn canonical(&self) -> String {
        let mut out = serde_json::to_string(&self.header).expect("trace header serializes");
        out.push('\n');
        for event in &self.events {
            out.push_str(&serde_json::to_string(event).expect("trace events serialize"));
            out.push('\n');
        }
        out
    }

    /// 64-bit FNV-1a over the trace's compact binary encoding ([`crate::digest`]), as 16 hex
    /// digits. The encoding is hashed as it is written, never held, and allocates nothing per
    /// event. (Until issue 23 the digest hashed the JSON lines of [`Trace::canonical`]; digests
    /// changed once then.)
    pub fn digest(&self) -> String {
        format!("{:016x}", crate::digest::digest(self))
    }

    pub fn findings(&self) -> impl Iterator<Item = (&Event, &Finding)> {
        self.events.iter().filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some((e, f)),
            _ => None,
        })
    }

    pub fn end_time_us(&self) -> u64 {
        self.events.last().map_or(0, |e| e.time_us)
    }
}

/// How the trace names the world as an actor.
pub const WORLD: &str = "world";

pub fn node_name(clients: &[String], node: NodeId) -> String {
    match node {
        NodeId::Client(i) => clients.get(i as usize).cloned().unwrap_or_else(|| format!("client-{i}")),
        other => other.to_string(),
    }
}
