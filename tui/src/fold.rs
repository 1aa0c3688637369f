//! The cluster at one step, folded from the trace.
//!
//! A trace is a stream of events; the cluster at step N is the table you get by applying the
//! first N of them, in order, to an empty picture. That is all this module does. It never decides
//! anything a broker or the controller decides: it writes down what they said they decided (their
//! notes), what the fabric did with each message, and which faults struck. If the picture is ever
//! wrong, the trace is wrong, or this fold forgot an event kind.
//!
//! Applying one event costs O(log n) in the handful of things it touches, never a scan: a replica
//! log is kept as offsets (log start, high watermark, log end), not as records; only its
//! transactional batches are kept one by one (a few per transaction), because its last stable
//! offset and its markers derive from them. That is what makes
//! checkpoints cheap to clone and any step of a long trace quick to reach (see
//! [`crate::recording`]).
//!
//! Whose word counts for what:
//! - Leader, ISR and leader epoch come from the controller's committed `PartitionChanged`. A
//!   broker's own belief ("I am leader for epoch 3", from `BecameLeader`) is kept apart, because
//!   the zombie-leader lesson is exactly the moment the two disagree.
//! - Each replica's log end offset (LEO) and high watermark (HW) come from the notes recorded *at
//!   that broker*: `Appended` moves LEO to `base_offset + count`, `Truncated` pulls it back to
//!   `to_offset`, `HighWatermark` moves HW.
//! - The quorum's picture (each voter's role, epoch, metadata high watermark, whether it is the
//!   active controller) comes from the controllers' own `Quorum` notes; which controllers exist,
//!   from the trace ([`controllers_of`]).
//! - Transactions come from the coordinator's `TxnStateChanged` (state, producer id and epoch,
//!   partitions) and the producer's `TxnEnded` / `TxnFailed`.
//! - A broker's process state (up, killed, powered off, paused) comes from fault events, following
//!   the same rules the simulator applies (pausing a dead process does nothing, a restart brings it
//!   up from its disk).

pub mod connect;
pub mod streams;

use ksim_cluster::log::TruncateReason;
use ksim_cluster::metadata::ElectionKind;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::protocol::ApiKey;
use ksim_cluster::raft::state::RoleName;
use ksim_cluster::raft::RaftEvent;
use ksim_cluster::record::ControlType;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use ksim_sim::nodes::ProcessChange;
use ksim_sim::scenario::CONTROLLER_ID;
use ksim_sim::trace::{Class, DropReason, Event, EventKind, Fault, Trace, TraceHeader};
use std::collections::{BTreeMap, VecDeque};

/// How many recent drops the messages pane can show; older ones are forgotten.
pub const RECENT_DROPS: usize = 8;

/// What a node's process is doing, from the faults applied to it (the simulator's own rule,
/// [`ksim_sim::nodes::Status::change`], so the screen and the run agree).
pub use ksim_sim::nodes::Status as Process;

/// The controllers of a run, read from its trace: every controller that acts, is sent to or is
/// struck by a fault (each voter of a quorum sends from the first instant). A trace without any
/// has ksim's single controller.
pub fn controllers_of(trace: &Trace) -> Vec<i32> {
    let mut ids = std::collections::BTreeSet::new();
    let mut add = |node: NodeId| {
        if let NodeId::Controller(id) = node {
            ids.insert(id);
        }
    };
    for event in &trace.events {
        if let Some(node) = event.node() {
            add(node);
        }
        match &event.kind {
            EventKind::Send { to, .. } | EventKind::Drop { to, .. } => add(*to),
            EventKind::Fault(fault) => {
                if let Some(node) = fault.node() {
                    add(node);
                }
            }
            _ => {}
        }
    }
    if ids.is_empty() {
        ids.insert(CONTROLLER_ID);
    }
    ids.into_iter().collect()
}

/// A broker's standing with the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Not registered yet (or never heard from).
    Unregistered,
    /// Registered but fenced: it may not lead or be in an ISR until it catches up (or, after a
    /// missed session timeout, until it heartbeats again).
    Fenced,
    Unfenced,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BrokerView {
    pub registration: Registration,
    pub broker_epoch: Option<i64>,
}

/// A network cut in force: messages between these groups are dropped.
#[derive(Clone, Debug, PartialEq)]
pub enum Cut {
    /// Both directions are cut between every pair of groups.
    Groups(Vec<Vec<NodeId>>),
    /// Messages from `from` to `to` are dropped; the other way still works.
    OneWay { from: Vec<NodeId>, to: Vec<NodeId> },
}

impl Cut {
    /// Whether `node` is on the cut-off side of this cut. The side that keeps the controller keeps
    /// the cluster (in KRaft a broker that cannot reach the controller is fenced, whatever else it
    /// reaches), so every other side is cut off; with a quorum of `controllers`, the side with a
    /// majority of them (only a majority can elect and commit). When no side holds that, the
    /// largest side stays (the first of equals, as the scenario lists them) and the others are
    /// cut off. A one-way cut marks the side without the controller, or else the smaller side.
    pub fn involves(&self, node: NodeId, controllers: &[NodeId]) -> bool {
        let keeps = |side: &[NodeId]| side.iter().filter(|n| controllers.contains(n)).count() * 2 > controllers.len();
        match self {
            Cut::Groups(groups) => {
                if groups.len() < 2 {
                    return false;
                }
                let main = groups.iter().position(|g| keeps(g)).unwrap_or_else(|| {
                    let largest = groups.iter().map(Vec::len).max().unwrap_or(0);
                    groups.iter().position(|g| g.len() == largest).unwrap_or(0)
                });
                groups.iter().enumerate().any(|(i, g)| i != main && g.contains(&node))
            }
            Cut::OneWay { from, to } => {
                let off = if keeps(from) {
                    to
                } else if keeps(to) || from.len() <= to.len() {
                    from
                } else {
                    to
                };
                off.contains(&node)
            }
        }
    }
}

/// What a broker believes about its own role for one partition (its volatile state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// No word from the broker yet, or its process is gone.
    Unknown,
    Leader {
        leader_epoch: i32,
    },
    Follower {
        leader: Option<BrokerId>,
        leader_epoch: i32,
    },
}

/// The last time a replica's log lost its tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    pub to_offset: i64,
    pub removed: i64,
    pub reason: TruncateReason,
    pub time_us: u64,
    /// The step (events applied) right after the truncation: the view marks it as news then.
    pub step: usize,
}

/// One replica's log, as offsets. Records below `high_watermark` are committed (on every in-sync
/// replica, as far as this replica knows); records from there to `log_end_offset` are not yet.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaLog {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
    /// Written to disk up to here; a power failure loses the rest.
    pub flushed_offset: i64,
    pub role: Role,
    pub last_truncation: Option<Truncation>,
    /// The transactional batches in this log by first offset: the producer that wrote each and,
    /// for a control batch, its marker. Only these are kept (a few per transaction), because the
    /// last stable offset and the markers on the strip derive from them, as the broker's
    /// transaction index derives from its batches.
    pub txn_batches: BTreeMap<i64, (i64, Option<ControlType>)>,
    /// Offset ranges `[from, to)` between the log start and the log end that this log no longer
    /// holds although later offsets remain (records a cleaner removed). The strip draws them as
    /// gaps.
    pub absent: Vec<(i64, i64)>,
}

impl Default for ReplicaLog {
    fn default() -> Self {
        ReplicaLog {
            log_start_offset: 0,
            high_watermark: 0,
            log_end_offset: 0,
            flushed_offset: 0,
            role: Role::Unknown,
            last_truncation: None,
            txn_batches: BTreeMap::new(),
            absent: Vec::new(),
        }
    }
}

/// What a log's transactional batches say, read in offset order as `ProducerStateManager` reads
/// a log: the transactions still open (producer id, first offset) and the finished ones (first
/// offset, marker offset, outcome).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TxnIndex {
    pub open: BTreeMap<i64, i64>,
    pub finished: Vec<(i64, i64, ControlType)>,
}

impl ReplicaLog {
    pub fn txn_index(&self) -> TxnIndex {
        let mut index = TxnIndex::default();
        for (&offset, &(producer_id, marker)) in &self.txn_batches {
            match marker {
                None => {
                    index.open.entry(producer_id).or_insert(offset);
                }
                // A marker with no open transaction completes nothing (Kafka's `completeTxn`).
                Some(control) => {
                    if let Some(first) = index.open.remove(&producer_id) {
                        index.finished.push((first, offset, control));
                    }
                }
            }
        }
        index
    }

    /// The *last stable offset* (`UnifiedLog.lastStableOffset`): the first offset of the
    /// earliest transaction that is open, or whose marker the high watermark has not passed,
    /// capped at the high watermark. `read_committed` consumers read only below it.
    pub fn last_stable_offset(&self) -> i64 {
        let index = self.txn_index();
        let hw = self.high_watermark;
        let unstable = index.finished.iter().filter(|(_, marker, _)| *marker >= hw).map(|(first, _, _)| *first);
        index.open.values().copied().chain(unstable).min().map_or(hw, |first| first.min(hw))
    }

    /// The transaction markers in this log: offset and outcome.
    pub fn markers(&self) -> impl Iterator<Item = (i64, ControlType)> + '_ {
        self.txn_batches.iter().filter_map(|(offset, (_, marker))| marker.map(|m| (*offset, m)))
    }

    /// Whether this offset is in the log (between its start and end, and not removed).
    pub fn holds(&self, offset: i64) -> bool {
        offset >= self.log_start_offset
            && offset < self.log_end_offset
            && !self.absent.iter().any(|(from, to)| (*from..*to).contains(&offset))
    }

    /// A cleaner removed these offsets (inclusive ranges): they become gaps, kept merged.
    fn add_absent(&mut self, removed: &[(i64, i64)]) {
        let mut all: Vec<(i64, i64)> =
            self.absent.iter().copied().chain(removed.iter().map(|(a, b)| (*a, b + 1))).collect();
        all.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(all.len());
        for (from, to) in all {
            match merged.last_mut() {
                Some((_, end)) if from <= *end => *end = (*end).max(to),
                _ => merged.push((from, to)),
            }
        }
        self.absent = merged;
    }

    /// The log loses everything from `offset` on.
    fn cut_at(&mut self, offset: i64) {
        self.txn_batches.split_off(&offset);
        self.absent.retain_mut(|(from, to)| {
            *to = (*to).min(offset);
            from < to
        });
    }
}

/// One partition: the controller's committed state plus each replica's log.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PartitionView {
    /// Assigned replicas in assignment order (the first is the preferred leader).
    pub replicas: Vec<BrokerId>,
    pub leader: Option<BrokerId>,
    pub leader_epoch: i32,
    pub isr: Vec<BrokerId>,
    /// Eligible Leader Replicas (KIP-966): may lead when the ISR is empty.
    pub elr: Vec<BrokerId>,
    pub partition_epoch: i32,
    /// How the current leader was chosen, if by an election.
    pub last_election: Option<ElectionKind>,
    /// An ISR change the leader asked for and the controller has not answered yet.
    pub pending_isr: Option<Vec<BrokerId>>,
    pub logs: BTreeMap<BrokerId, ReplicaLog>,
}

impl PartitionView {
    /// Replicas to draw: the assignment, then any broker that reported a log without being
    /// assigned (should not happen; shown rather than hidden if it does).
    pub fn replicas_to_show(&self) -> Vec<BrokerId> {
        let mut out = self.replicas.clone();
        out.extend(self.logs.keys().filter(|b| !self.replicas.contains(b)));
        out
    }

    /// The high watermark as the leader knows it: what consumers may read.
    pub fn leader_high_watermark(&self) -> Option<i64> {
        self.leader_log().map(|log| log.high_watermark)
    }

    /// The leader's log, as the controller names the leader.
    pub fn leader_log(&self) -> Option<&ReplicaLog> {
        self.leader.and_then(|l| self.logs.get(&l))
    }

    /// Whether any replica holds a transactional batch: then the last stable offset is shown.
    pub fn has_transactions(&self) -> bool {
        self.logs.values().any(|log| !log.txn_batches.is_empty())
    }
}

/// A message on the fabric: sent, not yet delivered or dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct InFlight {
    pub from: NodeId,
    pub to: NodeId,
    pub api: ApiKey,
    pub request: bool,
    pub sent_us: u64,
}

/// A message the fabric did not deliver.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropped {
    pub id: u64,
    pub from: NodeId,
    pub to: NodeId,
    /// Known when the send is in the trace (always, in a whole trace).
    pub api: Option<ApiKey>,
    pub reason: DropReason,
    pub at_us: u64,
}

/// A client application, from what it did: a producer sends and gets acknowledgements, a consumer
/// reads. One struct holds both, since the trace tells them apart only by what they do.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClientView {
    /// Records the application handed to `send`.
    pub sent: u64,
    pub acked: u64,
    /// Records the producer gave up on, by Kafka error name.
    pub failed: BTreeMap<&'static str, u64>,
    /// Records sent again after an error, by Kafka error name.
    pub retried: BTreeMap<&'static str, u64>,
    pub consumed: u64,
    /// The consumer's position per partition: the next offset it will read.
    pub positions: BTreeMap<TopicPartition, i64>,
    pub out_of_range: u64,
    /// Records the application finished processing (its side effect is done).
    pub processed: u64,
    pub membership: Option<Membership>,
}

impl ClientView {
    pub fn is_producer(&self) -> bool {
        self.sent > 0 || self.acked > 0 || !self.failed.is_empty() || !self.retried.is_empty()
    }

    pub fn is_consumer(&self) -> bool {
        self.consumed > 0 || !self.positions.is_empty() || self.out_of_range > 0 || self.membership.is_some()
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The positions that count for this consumer's lag: in a group, only the partitions it owns
    /// now (it keeps its position in a revoked partition, but that partition is another member's
    /// work); with no group (`assign`), every partition it reads.
    pub fn owned_positions(&self) -> BTreeMap<TopicPartition, i64> {
        match &self.membership {
            Some(m) => {
                self.positions.iter().filter(|(tp, _)| m.owned.contains(tp)).map(|(tp, o)| (tp.clone(), *o)).collect()
            }
            None => self.positions.clone(),
        }
    }
}

/// A consumer group as its coordinator sees it: folded from the coordinator's notes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct GroupView {
    /// The broker that last spoke for the group: the leader of its `__consumer_offsets`
    /// partition (it may have died since; a new one announces itself when it loads the group).
    pub coordinator: Option<BrokerId>,
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable` or `Dead`, as Kafka names them.
    pub state: String,
    pub generation: i32,
    /// Members by member id, with the assignment the coordinator stored for them.
    pub members: BTreeMap<String, MemberView>,
    /// Committed offsets: where a member taking over a partition starts reading.
    pub committed: BTreeMap<TopicPartition, i64>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct MemberView {
    /// The generation the assignment belongs to (older than the group's while it rebalances).
    pub assigned_generation: Option<i32>,
    pub partitions: Vec<TopicPartition>,
}

/// A consumer's own view of its group membership: what it believes it owns.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Membership {
    pub group: String,
    pub member: String,
    pub generation: i32,
    pub owned: Vec<TopicPartition>,
    pub commits_failed: u64,
    /// The application did not poll within `max.poll.interval.ms`, and the consumer left.
    pub poll_interval_exceeded: u64,
}

/// One `transactional.id`: its coordinator's record (state, producer id and epoch, partitions)
/// and what its producer saw (transactions ended, errors).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TxnView {
    /// The broker whose coordinator last wrote or loaded this id's state.
    pub coordinator: Option<BrokerId>,
    /// Kafka's `TransactionState` name: `Empty`, `Ongoing`, `PrepareCommit`, `CompleteCommit`, …
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The partitions in the transaction now (empty once it completes).
    pub partitions: Vec<TopicPartition>,
    /// The producer application using this id (the latest that initialised it).
    pub client: Option<NodeId>,
    pub committed: u64,
    pub aborted: u64,
    /// The producer's last error: Kafka's name, and whether it was fatal (fenced).
    pub last_error: Option<(&'static str, bool)>,
}

/// One voter of the controller quorum, from its own notes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct VoterView {
    /// Its Raft role (`None` until it says).
    pub role: Option<RoleName>,
    pub epoch: i32,
    pub leader: Option<i32>,
    /// How far it knows the metadata log is committed.
    pub high_watermark: i64,
    /// It is the active controller: its leadership is committed and it has replayed the log.
    pub active: bool,
    /// The idle no-ops (KIP-835 `NoOpRecord`s) it has seen committed since its process started.
    pub no_ops: i64,
}

/// The cluster at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterView {
    /// Events applied so far: this view is the state *after* event `steps - 1`.
    pub steps: usize,
    /// Virtual time of the last applied event.
    pub time_us: u64,
    pub processes: BTreeMap<NodeId, Process>,
    pub brokers: BTreeMap<BrokerId, BrokerView>,
    pub cuts: Vec<Cut>,
    /// Slowed links (both directions) and their extra latency.
    pub slow_links: Vec<(NodeId, NodeId, u64)>,
    pub partitions: BTreeMap<TopicPartition, PartitionView>,
    pub in_flight: BTreeMap<u64, InFlight>,
    /// The last few drops, oldest first.
    pub recent_drops: VecDeque<Dropped>,
    pub clients: BTreeMap<NodeId, ClientView>,
    pub groups: BTreeMap<String, GroupView>,
    /// Transactions by `transactional.id`.
    pub transactions: BTreeMap<String, TxnView>,
    /// The controllers by node id: one (ksim's single controller) or a KRaft quorum's voters.
    pub controllers: BTreeMap<i32, VoterView>,
    /// Kafka Connect: workers, tasks, the external systems, dead letter queues.
    pub connect: connect::ConnectView,
    /// Kafka Streams: each instance's tasks, stores and stream time.
    pub streams: streams::StreamsView,
    /// Index of the latest `Narration` event applied.
    pub last_narration: Option<usize>,
    pub findings: usize,
    /// Findings that break a promise the scenario's configuration made.
    pub violations: usize,
    /// Findings that are bugs in ksim (a fired invariant).
    pub bugs: usize,
    pub ended: bool,
}

impl ClusterView {
    /// The picture before the first event: every node of the header and every controller
    /// running, nothing registered.
    pub fn new(header: &TraceHeader, controllers: &[i32]) -> ClusterView {
        let mut processes = BTreeMap::new();
        for &id in controllers {
            processes.insert(NodeId::Controller(id), Process::Up);
        }
        let mut brokers = BTreeMap::new();
        for &id in &header.brokers {
            processes.insert(NodeId::Broker(id), Process::Up);
            brokers.insert(id, BrokerView { registration: Registration::Unregistered, broker_epoch: None });
        }
        let mut clients = BTreeMap::new();
        for i in 0..header.clients.len() {
            let node = NodeId::Client(i as u32);
            processes.insert(node, Process::Up);
            clients.insert(node, ClientView::default());
        }
        ClusterView {
            steps: 0,
            time_us: 0,
            processes,
            brokers,
            cuts: Vec::new(),
            slow_links: Vec::new(),
            partitions: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            recent_drops: VecDeque::new(),
            clients,
            groups: BTreeMap::new(),
            transactions: BTreeMap::new(),
            controllers: controllers.iter().map(|id| (*id, VoterView::default())).collect(),
            connect: connect::ConnectView::default(),
            streams: streams::StreamsView::default(),
            last_narration: None,
            findings: 0,
            violations: 0,
            bugs: 0,
            ended: false,
        }
    }

    pub fn process(&self, node: NodeId) -> Process {
        self.processes.get(&node).copied().unwrap_or(Process::Up)
    }

    /// Whether a network cut in force separates `node` from some other node.
    pub fn is_cut_off(&self, node: NodeId) -> bool {
        let controllers: Vec<NodeId> = self.controllers.keys().map(|id| NodeId::Controller(*id)).collect();
        self.cuts.iter().any(|c| c.involves(node, &controllers))
    }

    /// The quorum's leader and its epoch: the voter that leads in the highest epoch any voter
    /// reports, while it runs. Followers may still name a leader that died or resigned; until
    /// one is elected, there is none.
    pub fn quorum_leader(&self) -> Option<(i32, i32)> {
        let epoch = self.controllers.values().map(|v| v.epoch).max()?;
        self.controllers
            .iter()
            .find(|(id, v)| {
                v.epoch == epoch
                    && v.role == Some(RoleName::Leader)
                    && self.process(NodeId::Controller(**id)) == Process::Up
            })
            .map(|(id, _)| (*id, epoch))
    }

    /// How far these positions are behind the leaders' high watermarks, summed; `None` when a
    /// partition has no leader to ask (the lag is unknown, not zero).
    pub fn lag<'a>(&self, positions: impl IntoIterator<Item = (&'a TopicPartition, &'a i64)>) -> Option<i64> {
        let mut total = 0;
        for (tp, position) in positions {
            let hw = self.partitions.get(tp).and_then(|p| p.leader_high_watermark())?;
            total += (hw - position).max(0);
        }
        Some(total)
    }

    /// Partitions whose leader (per the controller) is this broker.
    pub fn leaderships(&self, broker: BrokerId) -> usize {
        self.partitions.values().filter(|p| p.leader == Some(broker)).count()
    }

    /// Move the picture on by one event.
    pub fn apply(&mut self, event: &Event) {
        let index = self.steps;
        self.steps += 1;
        self.time_us = event.time_us;
        // What nodes do carries the node; what the world does (faults, narration, findings, the
        // end) does not. A recording that breaks that rule is folded as far as it makes sense.
        let node = event.node();
        match &event.kind {
            EventKind::Send { id, to, api, request, .. } => {
                if let Some(from) = node {
                    let message = InFlight { from, to: *to, api: *api, request: *request, sent_us: event.time_us };
                    self.in_flight.insert(*id, message);
                }
            }
            EventKind::Deliver { id, .. } => {
                self.in_flight.remove(id);
            }
            EventKind::Drop { id, to, reason } => {
                let sent = self.in_flight.remove(id);
                // A drop decided at send time is recorded at the sender; one decided on arrival
                // (the receiver died meanwhile) at the receiver. The send says who sent it.
                let Some(from) = sent.as_ref().map(|m| m.from).or(node) else { return };
                if self.recent_drops.len() == RECENT_DROPS {
                    self.recent_drops.pop_front();
                }
                self.recent_drops.push_back(Dropped {
                    id: *id,
                    from,
                    to: *to,
                    api: sent.map(|m| m.api),
                    reason: *reason,
                    at_us: event.time_us,
                });
            }
            EventKind::ConnectionClosed { .. } | EventKind::TimerFired { .. } => {}
            // The worker group's decisions and the source tables' rows are the world's notes.
            EventKind::Note(Note::Connect(event)) => self.connect.apply(node, event),
            EventKind::Note(Note::Streams(event)) => {
                if let Some(node) = node {
                    self.streams.apply(node, event);
                }
            }
            EventKind::Note(note) => {
                if let Some(node) = node {
                    self.apply_note(node, note, index);
                }
            }
            EventKind::Fault(fault) => self.apply_fault(fault),
            EventKind::Narration(_) => self.last_narration = Some(index),
            EventKind::App(text) => {
                // The client API records each `send` as `send key=value to topic`.
                if let (Some(node), true) = (node, text.starts_with("send ")) {
                    self.clients.entry(node).or_default().sent += 1;
                }
            }
            EventKind::Processed { .. } => {
                if let Some(node) = node {
                    self.clients.entry(node).or_default().processed += 1;
                }
            }
            EventKind::Finding(finding) => {
                self.findings += 1;
                match finding.class() {
                    Class::Bug => self.bugs += 1,
                    Class::Violation => self.violations += 1,
                    Class::Lesson => {}
                }
            }
            EventKind::End => self.ended = true,
        }
    }

    fn apply_fault(&mut self, fault: &Fault) {
        match fault {
            Fault::Kill(node)
            | Fault::PowerFail(node)
            | Fault::Restart(node)
            | Fault::Pause(node)
            | Fault::Resume(node)
            | Fault::Stop(node)
            | Fault::Exit(node) => {
                let before = self.process(*node);
                let change = before.change(*node, fault);
                self.processes.insert(*node, before.after(change));
                // A process that stops or starts forgets what it believed about its roles.
                if matches!(
                    change,
                    ProcessChange::Stop { .. }
                        | ProcessChange::Exit
                        | ProcessChange::LosePower
                        | ProcessChange::Start { .. }
                ) {
                    self.forget_roles(*node);
                }
                let stopped = match change {
                    ProcessChange::Stop { power_loss: false } => Some("killed"),
                    ProcessChange::Stop { power_loss: true } => Some("lost power"),
                    ProcessChange::Exit => Some("exited"),
                    ProcessChange::Start { .. } => Some("restarting"),
                    _ => None,
                };
                if let Some(how) = stopped {
                    self.streams.process_stopped(*node, how);
                }
            }
            Fault::Partition(groups) => self.cuts.push(Cut::Groups(groups.clone())),
            Fault::PartitionOneWay { from, to } => self.cuts.push(Cut::OneWay { from: from.clone(), to: to.clone() }),
            Fault::Heal => {
                self.cuts.clear();
                self.slow_links.clear();
            }
            Fault::SlowLink { a, b, extra_latency_ms } => {
                self.slow_links.retain(|(x, y, _)| !((x == a && y == b) || (x == b && y == a)));
                self.slow_links.push((*a, *b, *extra_latency_ms));
            }
        }
    }

    /// A process that stops or restarts forgets what it believed about its roles (a controller
    /// reads its epoch back from `quorum-state` and says so when it starts again).
    fn forget_roles(&mut self, node: NodeId) {
        if let NodeId::Controller(id) = node {
            if let Some(voter) = self.controllers.get_mut(&id) {
                voter.role = None;
                voter.active = false;
                // A restarted member learns the high watermark again from 0 and counts anew.
                voter.no_ops = 0;
            }
        }
        let Some(broker) = node.broker_id() else { return };
        for partition in self.partitions.values_mut() {
            if let Some(log) = partition.logs.get_mut(&broker) {
                log.role = Role::Unknown;
            }
        }
    }

    fn replica_log(&mut self, partition: &TopicPartition, broker: BrokerId) -> &mut ReplicaLog {
        self.partitions.entry(partition.clone()).or_default().logs.entry(broker).or_default()
    }

    /// Fold one note. `index` is the event's position in the trace.
    pub fn apply_note(&mut self, node: NodeId, note: &Note, index: usize) {
        // Replica notes only mean something at the broker that recorded them.
        let at_broker = node.broker_id();
        match note {
            Note::BrokerRegistered { broker, broker_epoch } => {
                let b = self
                    .brokers
                    .entry(*broker)
                    .or_insert(BrokerView { registration: Registration::Unregistered, broker_epoch: None });
                b.registration = Registration::Fenced;
                b.broker_epoch = Some(*broker_epoch);
            }
            Note::BrokerFenced { broker, .. } => {
                let b = self
                    .brokers
                    .entry(*broker)
                    .or_insert(BrokerView { registration: Registration::Unregistered, broker_epoch: None });
                b.registration = Registration::Fenced;
            }
            Note::BrokerUnfenced { broker } => {
                let b = self
                    .brokers
                    .entry(*broker)
                    .or_insert(BrokerView { registration: Registration::Unregistered, broker_epoch: None });
                b.registration = Registration::Unfenced;
            }
            Note::TopicCreated { topic, assignment } => {
                for (i, replicas) in assignment.iter().enumerate() {
                    let tp = TopicPartition::new(topic.clone(), i as i32);
                    let partition = self.partitions.entry(tp).or_default();
                    partition.replicas = replicas.clone();
                    for &r in replicas {
                        partition.logs.entry(r).or_default();
                    }
                }
            }
            Note::PartitionChanged { partition, leader, leader_epoch, isr, elr, partition_epoch, election } => {
                let p = self.partitions.entry(partition.clone()).or_default();
                p.leader = *leader;
                p.leader_epoch = *leader_epoch;
                p.isr = isr.clone();
                p.elr = elr.clone();
                p.partition_epoch = *partition_epoch;
                p.pending_isr = None;
                if election.is_some() || leader.is_none() {
                    p.last_election = *election;
                }
            }
            Note::IsrChangeRequested { partition, isr, .. } => {
                self.partitions.entry(partition.clone()).or_default().pending_isr = Some(isr.clone());
            }
            Note::IsrChangeFailed { partition, .. } => {
                self.partitions.entry(partition.clone()).or_default().pending_isr = None;
            }
            Note::Recovered { partition, log_end_offset, high_watermark } => {
                if let Some(b) = at_broker {
                    let log = self.replica_log(partition, b);
                    log.log_end_offset = *log_end_offset;
                    log.high_watermark = *high_watermark;
                    log.flushed_offset = log.flushed_offset.min(*log_end_offset);
                    log.cut_at(*log_end_offset);
                }
            }
            Note::BecameLeader { partition, leader_epoch, log_end_offset, high_watermark } => {
                if let Some(b) = at_broker {
                    let log = self.replica_log(partition, b);
                    log.role = Role::Leader { leader_epoch: *leader_epoch };
                    log.log_end_offset = *log_end_offset;
                    log.high_watermark = *high_watermark;
                }
            }
            Note::BecameFollower { partition, leader, leader_epoch } => {
                if let Some(b) = at_broker {
                    self.replica_log(partition, b).role =
                        Role::Follower { leader: *leader, leader_epoch: *leader_epoch };
                }
            }
            Note::Appended { partition, base_offset, count, transactional, .. } => {
                if let Some(b) = at_broker {
                    let log = self.replica_log(partition, b);
                    log.log_end_offset = base_offset + count;
                    for batch in transactional {
                        log.txn_batches.insert(batch.offset, (batch.producer_id, batch.marker));
                    }
                }
            }
            Note::HighWatermark { partition, high_watermark, .. } => {
                if let Some(b) = at_broker {
                    self.replica_log(partition, b).high_watermark = *high_watermark;
                }
            }
            Note::Truncated { partition, to_offset, removed, reason } => {
                if let Some(b) = at_broker {
                    let time_us = self.time_us;
                    let log = self.replica_log(partition, b);
                    log.log_end_offset = *to_offset;
                    log.high_watermark = log.high_watermark.min(*to_offset);
                    log.flushed_offset = log.flushed_offset.min(*to_offset);
                    log.cut_at(*to_offset);
                    log.last_truncation = Some(Truncation {
                        to_offset: *to_offset,
                        removed: *removed,
                        reason: *reason,
                        time_us,
                        step: index + 1,
                    });
                }
            }
            Note::LogStartMoved { partition, log_start_offset } => {
                if let Some(b) = at_broker {
                    self.replica_log(partition, b).log_start_offset = *log_start_offset;
                }
            }
            Note::LogCleaned { partition, cleaning } => {
                if let Some(b) = at_broker {
                    self.replica_log(partition, b).add_absent(&cleaning.removed);
                }
            }
            Note::Flushed { partition, offset } => {
                if let Some(b) = at_broker {
                    self.replica_log(partition, b).flushed_offset = *offset;
                }
            }
            Note::ProduceAcked { .. } => self.clients.entry(node).or_default().acked += 1,
            Note::ProduceFailed { error, .. } => {
                *self.clients.entry(node).or_default().failed.entry(error.name()).or_default() += 1;
            }
            Note::ProduceRetry { error, records, .. } => {
                *self.clients.entry(node).or_default().retried.entry(error.name()).or_default() += *records as u64;
            }
            Note::Consumed { partition, offset, .. } => {
                let client = self.clients.entry(node).or_default();
                client.consumed += 1;
                client.positions.insert(partition.clone(), offset + 1);
            }
            Note::PositionReset { partition, offset, .. } => {
                self.clients.entry(node).or_default().positions.insert(partition.clone(), *offset);
            }
            Note::OffsetOutOfRange { .. } => self.clients.entry(node).or_default().out_of_range += 1,
            // A moment, not a state: the event log shows it; the client panel has no connections.
            Note::ConnectionSetupTimedOut { .. } => {}
            Note::TruncationDetected { partition, divergent: Some((offset, _)), raised: false, .. } => {
                self.clients.entry(node).or_default().positions.insert(partition.clone(), *offset);
            }
            // Raised to the application (it must seek), or reset by auto.offset.reset (a
            // PositionReset follows).
            Note::TruncationDetected { .. } => {}
            // ---- the group coordinator (at a broker) ----
            Note::GroupLoaded { group, generation, .. } => {
                let g = self.groups.entry(group.clone()).or_default();
                g.coordinator = at_broker;
                g.generation = *generation;
            }
            Note::GroupStateChanged { group, state, generation, members } => {
                let g = self.groups.entry(group.clone()).or_default();
                if at_broker.is_some() {
                    g.coordinator = at_broker;
                }
                g.state.clone_from(state);
                g.generation = *generation;
                g.members.retain(|id, _| members.contains(id));
                for id in members {
                    g.members.entry(id.clone()).or_default();
                }
            }
            Note::MemberRemoved { group, member, .. } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.members.remove(member);
                }
            }
            Note::StaticMemberReturned { .. } => {}
            // The broker rows show fencing and process status; these only narrate.
            Note::RegistrationRejected { .. } | Note::ControlledShutdownStarted { .. } | Note::ShutdownRequested => {}
            // ---- the controller quorum (at a controller; brokers observe it, and their notes
            // are about their own copy of the metadata log) ----
            Note::Quorum(event) => {
                if let NodeId::Controller(id) = node {
                    let voter = self.controllers.entry(id).or_default();
                    match event {
                        RaftEvent::Transition { epoch, role, leader } => {
                            voter.role = Some(*role);
                            voter.epoch = *epoch;
                            voter.leader = *leader;
                            if *role != RoleName::Leader {
                                voter.active = false;
                            }
                        }
                        RaftEvent::HighWatermark { high_watermark, no_ops, .. } => {
                            voter.high_watermark = *high_watermark;
                            voter.no_ops += i64::from(*no_ops);
                        }
                        RaftEvent::Resigned { .. } => voter.active = false,
                        RaftEvent::VoteCast { .. } | RaftEvent::Truncated { .. } => {}
                    }
                }
            }
            Note::ControllerActivated { .. } => {
                if let NodeId::Controller(id) = node {
                    self.controllers.entry(id).or_default().active = true;
                }
            }
            Note::ControllerRenounced { .. } => {
                if let NodeId::Controller(id) = node {
                    self.controllers.entry(id).or_default().active = false;
                }
            }
            Note::AssignmentStored { group, generation, member, partitions } => {
                let m = self.groups.entry(group.clone()).or_default().members.entry(member.clone()).or_default();
                m.assigned_generation = Some(*generation);
                m.partitions.clone_from(partitions);
            }
            Note::OffsetCommitted { group, partition, offset } => {
                self.groups.entry(group.clone()).or_default().committed.insert(partition.clone(), *offset);
            }
            // ---- a group member (at a consumer) ----
            Note::PartitionsAssigned { group, member, generation, partitions } => {
                let m = self.clients.entry(node).or_default().membership.get_or_insert_with(Membership::default);
                m.group.clone_from(group);
                m.member.clone_from(member);
                m.generation = *generation;
                m.owned.extend(partitions.iter().cloned());
                m.owned.sort();
                m.owned.dedup();
            }
            Note::PartitionsRevoked { partitions, .. } => {
                let m = self.clients.entry(node).or_default().membership.get_or_insert_with(Membership::default);
                m.owned.retain(|tp| !partitions.contains(tp));
            }
            Note::CommitFailed { .. } => {
                self.clients
                    .entry(node)
                    .or_default()
                    .membership
                    .get_or_insert_with(Membership::default)
                    .commits_failed += 1;
            }
            Note::PollIntervalExceeded { .. } => {
                let m = self.clients.entry(node).or_default().membership.get_or_insert_with(Membership::default);
                m.poll_interval_exceeded += 1;
            }
            // A moment (the event log shows it); the member's group state follows from what comes next.
            Note::MemberFailed { .. }
            | Note::CoordinatorUnreachable { .. }
            | Note::ConfigAdjusted { .. }
            | Note::FetchSessionEvicted { .. }
            | Note::FetchSessionRefused { .. } => {}
            // ---- transactions: the coordinator's record, and the producer's side ----
            Note::TxnStateChanged { transactional_id, state, producer_id, producer_epoch, partitions, .. } => {
                let t = self.transactions.entry(transactional_id.clone()).or_default();
                t.coordinator = at_broker;
                t.state.clone_from(state);
                t.producer_id = *producer_id;
                t.producer_epoch = *producer_epoch;
                t.partitions.clone_from(partitions);
            }
            // The Appended note of the marker's batch puts it in the log.
            Note::MarkerWritten { .. }
            | Note::TxnVerificationFailed { .. }
            | Note::AdminAbortRequested { .. }
            | Note::AdminAbortAnswered { .. } => {}
            Note::TxnInitialized { transactional_id, .. } => {
                let t = self.transactions.entry(transactional_id.clone()).or_default();
                t.client = Some(node);
                t.last_error = None;
            }
            Note::TxnEnded { transactional_id, committed, .. } => {
                let t = self.transactions.entry(transactional_id.clone()).or_default();
                if *committed {
                    t.committed += 1;
                } else {
                    t.aborted += 1;
                }
            }
            Note::TxnFailed { transactional_id, error, fatal } => {
                let t = self.transactions.entry(transactional_id.clone()).or_default();
                t.client = Some(node);
                t.last_error = Some((error.name(), *fatal));
            }
            // Folded where the events arrive (`apply`): Connect's and Streams' panes.
            Note::Connect(_) | Note::Streams(_) => {}
            Note::TxnOffsetsSent { .. }
            | Note::TxnOffsetCommitRefused { .. }
            | Note::TxnOffsetAborted { .. }
            | Note::OffsetFetchUnstable { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksim_cluster::error::ErrorCode;
    use ksim_sim::trace::Actor;

    fn header() -> TraceHeader {
        TraceHeader {
            scenario: "t".into(),
            title: "t".into(),
            seed: 1,
            brokers: vec![1, 2, 3],
            clients: vec!["producer".into()],
            duration_ms: 1000,
            racks: Default::default(),
            overrides: Vec::new(),
        }
    }

    fn note(node: NodeId, note: Note) -> Event {
        Event { seq: 0, time_us: 0, actor: Actor::Node(node), kind: EventKind::Note(note) }
    }

    fn tp() -> TopicPartition {
        TopicPartition::new("payments", 0)
    }

    #[test]
    fn replica_log_end_follows_appends_and_truncation() {
        let mut v = ClusterView::new(&header(), &[CONTROLLER_ID]);
        v.apply(&note(
            NodeId::Controller(CONTROLLER_ID),
            Note::TopicCreated { topic: "payments".into(), assignment: vec![vec![1, 2, 3]] },
        ));
        let append = |base, count| Note::Appended {
            partition: tp(),
            base_offset: base,
            count,
            leader_epoch: 0,
            as_leader: true,
            transactional: Vec::new(),
        };
        v.apply(&note(NodeId::Broker(1), append(0, 5)));
        v.apply(&note(NodeId::Broker(1), append(5, 3)));
        v.apply(&note(NodeId::Broker(1), Note::HighWatermark { partition: tp(), high_watermark: 6, on_leader: true }));
        let log = &v.partitions[&tp()].logs[&1];
        assert_eq!((log.high_watermark, log.log_end_offset), (6, 8));
        v.apply(&note(
            NodeId::Broker(1),
            Note::Truncated { partition: tp(), to_offset: 4, removed: 4, reason: TruncateReason::DivergedFromLeader },
        ));
        let log = &v.partitions[&tp()].logs[&1];
        assert_eq!((log.high_watermark, log.log_end_offset), (4, 4), "HW never above LEO after a truncation");
        assert_eq!(log.last_truncation.map(|t| (t.to_offset, t.removed, t.step)), Some((4, 4, 5)));
        // Broker 2 said nothing: its log is still empty.
        assert_eq!(v.partitions[&tp()].logs[&2].log_end_offset, 0);
    }

    #[test]
    fn each_replica_folds_its_own_cleanings_and_a_truncation_forgets_the_cleaned_tail() {
        let mut v = ClusterView::new(&header(), &[CONTROLLER_ID]);
        v.apply(&note(
            NodeId::Controller(CONTROLLER_ID),
            Note::TopicCreated { topic: "payments".into(), assignment: vec![vec![1, 2, 3]] },
        ));
        let append = Note::Appended {
            partition: tp(),
            base_offset: 0,
            count: 10,
            leader_epoch: 0,
            as_leader: true,
            transactional: Vec::new(),
        };
        v.apply(&note(NodeId::Broker(1), append));
        let cleaned = |removed: Vec<(i64, i64)>| Note::LogCleaned {
            partition: tp(),
            cleaning: ksim_cluster::log::Cleaning {
                dirty_from: 0,
                end_offset: 8,
                dirty_ratio_ppm: 1_000_000,
                records_removed: removed.iter().map(|(a, b)| b - a + 1).sum::<i64>() as u64,
                removed,
                tombstones_removed: 0,
                tombstones_kept: 0,
                markers_removed: 0,
            },
        };
        v.apply(&note(NodeId::Broker(1), cleaned(vec![(0, 2), (5, 5)])));
        v.apply(&note(NodeId::Broker(1), cleaned(vec![(3, 4), (7, 7)])));
        let log = &v.partitions[&tp()].logs[&1];
        assert_eq!(log.absent, vec![(0, 6), (7, 8)], "ranges merge");
        assert!(!log.holds(1) && !log.holds(5) && log.holds(6) && !log.holds(7) && log.holds(8));
        assert!(v.partitions[&tp()].logs[&2].absent.is_empty(), "broker 2 cleans on its own");
        v.apply(&note(
            NodeId::Broker(1),
            Note::Truncated { partition: tp(), to_offset: 4, removed: 6, reason: TruncateReason::DivergedFromLeader },
        ));
        assert_eq!(v.partitions[&tp()].logs[&1].absent, vec![(0, 4)]);
    }

    #[test]
    fn faults_follow_the_simulators_rules() {
        let mut v = ClusterView::new(&header(), &[CONTROLLER_ID]);
        let fault = |f| Event { seq: 0, time_us: 0, actor: Actor::World, kind: EventKind::Fault(f) };
        let b1 = NodeId::Broker(1);
        v.apply(&fault(Fault::Kill(b1)));
        assert_eq!(v.process(b1), Process::Killed);
        v.apply(&fault(Fault::Pause(b1)));
        assert_eq!(v.process(b1), Process::Killed, "pausing a dead process does nothing");
        v.apply(&fault(Fault::PowerFail(b1)));
        assert_eq!(v.process(b1), Process::PoweredOff);
        v.apply(&fault(Fault::Restart(b1)));
        assert_eq!(v.process(b1), Process::Up);
        v.apply(&fault(Fault::Partition(vec![vec![b1], vec![NodeId::Broker(2)]])));
        assert!(v.is_cut_off(NodeId::Broker(2)) && !v.is_cut_off(NodeId::Broker(3)));
        v.apply(&fault(Fault::Heal));
        assert!(!v.is_cut_off(b1));
    }

    #[test]
    fn isolating_a_broker_marks_only_that_broker_cut_off() {
        let mut v = ClusterView::new(&header(), &[CONTROLLER_ID]);
        let fault = |f| Event { seq: 0, time_us: 0, actor: Actor::World, kind: EventKind::Fault(f) };
        let (ctrl, b1, b2, b3, p) = (
            NodeId::Controller(CONTROLLER_ID),
            NodeId::Broker(1),
            NodeId::Broker(2),
            NodeId::Broker(3),
            NodeId::Client(0),
        );
        // What `isolate broker-1` becomes: broker-1 on one side, everyone else on the other.
        v.apply(&fault(Fault::Partition(vec![vec![b1], vec![ctrl, b2, b3, p]])));
        let cut: Vec<NodeId> = [ctrl, b1, b2, b3, p].into_iter().filter(|n| v.is_cut_off(*n)).collect();
        assert_eq!(cut, vec![b1], "the side with the controller keeps the cluster");
        v.apply(&fault(Fault::Heal));
        // The controller's side is cut off when it is the small one listed second: it still keeps
        // the cluster, the brokers away from it are the ones cut off.
        v.apply(&fault(Fault::Partition(vec![vec![b1, b2, b3, p], vec![ctrl]])));
        let cut: Vec<NodeId> = [ctrl, b1, b2, b3, p].into_iter().filter(|n| v.is_cut_off(*n)).collect();
        assert_eq!(cut, vec![b1, b2, b3, p]);
        v.apply(&fault(Fault::Heal));
        // Without the controller in any side: the smaller side is the one cut off.
        v.apply(&fault(Fault::Partition(vec![vec![b1, b2], vec![b3]])));
        assert!(!v.is_cut_off(b1) && !v.is_cut_off(b2) && v.is_cut_off(b3));
        v.apply(&fault(Fault::Heal));
        v.apply(&fault(Fault::PartitionOneWay { from: vec![ctrl], to: vec![b2] }));
        assert!(v.is_cut_off(b2) && !v.is_cut_off(ctrl), "one way: the side away from the controller");
    }

    #[test]
    fn consumer_lag_counts_only_the_partitions_it_owns() {
        let mut v = ClusterView::new(&header(), &[CONTROLLER_ID]);
        let ctrl = NodeId::Controller(CONTROLLER_ID);
        let (b1, c) = (NodeId::Broker(1), NodeId::Client(0));
        let orders = |i| TopicPartition::new("orders", i);
        v.apply(&note(ctrl, Note::TopicCreated { topic: "orders".into(), assignment: vec![vec![1], vec![1]] }));
        for i in 0..2 {
            v.apply(&note(
                ctrl,
                Note::PartitionChanged {
                    partition: orders(i),
                    leader: Some(1),
                    leader_epoch: 0,
                    isr: vec![1],
                    elr: vec![],
                    partition_epoch: 0,
                    election: None,
                },
            ));
            v.apply(&note(b1, Note::HighWatermark { partition: orders(i), high_watermark: 10, on_leader: true }));
        }
        let assigned = |gen, ps: Vec<TopicPartition>| Note::PartitionsAssigned {
            group: "billing".into(),
            member: "billing-1-1".into(),
            generation: gen,
            partitions: ps,
        };
        v.apply(&note(c, assigned(1, vec![orders(0), orders(1)])));
        v.apply(&note(c, Note::PositionReset { partition: orders(0), offset: 10, reason: "x".into(), engine: 0 }));
        v.apply(&note(c, Note::PositionReset { partition: orders(1), offset: 2, reason: "x".into(), engine: 0 }));
        assert_eq!(v.lag(&v.clients[&c].owned_positions()), Some(8), "orders-1 is 8 behind");
        // A second member takes orders-1: this consumer still remembers its position there, but
        // the 8 records behind it are the new owner's lag, not this one's.
        v.apply(&note(
            c,
            Note::PartitionsRevoked {
                group: "billing".into(),
                member: "billing-1-1".into(),
                generation: 1,
                partitions: vec![orders(1)],
                lost: false,
                kept: 1,
            },
        ));
        let owned = v.clients[&c].owned_positions();
        assert_eq!(owned.keys().collect::<Vec<_>>(), vec![&orders(0)]);
        assert_eq!(v.lag(&owned), Some(0));
        // A partition with no leader has an unknown lag, not a lag of zero.
        v.apply(&note(
            ctrl,
            Note::PartitionChanged {
                partition: orders(0),
                leader: None,
                leader_epoch: 1,
                isr: vec![],
                elr: vec![],
                partition_epoch: 1,
                election: None,
            },
        ));
        assert_eq!(v.lag(&owned), None);
    }

    #[test]
    fn messages_leave_the_fabric_when_delivered_or_dropped() {
        let mut v = ClusterView::new(&header(), &[CONTROLLER_ID]);
        let p = NodeId::Client(0);
        let send = |id| Event {
            seq: 0,
            time_us: 5,
            actor: Actor::Node(p),
            kind: EventKind::Send {
                id,
                to: NodeId::Broker(1),
                api: ApiKey::Produce,
                request: true,
                summary: String::new(),
            },
        };
        v.apply(&send(1));
        v.apply(&send(2));
        assert_eq!(v.in_flight.len(), 2);
        v.apply(&Event {
            seq: 0,
            time_us: 7,
            actor: Actor::Node(NodeId::Broker(1)),
            kind: EventKind::Deliver { id: 1, from: p },
        });
        v.apply(&Event {
            seq: 0,
            time_us: 9,
            actor: Actor::Node(NodeId::Broker(1)),
            kind: EventKind::Drop { id: 2, to: NodeId::Broker(1), reason: DropReason::ReceiverDown },
        });
        assert!(v.in_flight.is_empty());
        let drop = v.recent_drops.back().expect("one drop");
        assert_eq!(
            (drop.from, drop.api, drop.at_us),
            (p, Some(ApiKey::Produce), 9),
            "the drop knows its sender and API"
        );
    }

    #[test]
    fn producer_counts_by_error() {
        let mut v = ClusterView::new(&header(), &[CONTROLLER_ID]);
        let p = NodeId::Client(0);
        v.apply(&Event {
            seq: 0,
            time_us: 0,
            actor: Actor::Node(p),
            kind: EventKind::App("send a=1 to payments".into()),
        });
        v.apply(&note(
            p,
            Note::ProduceRetry { partition: tp(), error: ErrorCode::NotLeaderOrFollower, records: 2, sequence: None },
        ));
        v.apply(&note(
            p,
            Note::ProduceFailed {
                send_id: 1,
                partition: Some(tp()),
                error: ErrorCode::NotLeaderOrFollower,
                reason: "x".into(),
            },
        ));
        let c = &v.clients[&p];
        assert_eq!((c.sent, c.failed_total()), (1, 1));
        assert_eq!(c.retried.get("NOT_LEADER_OR_FOLLOWER"), Some(&2));
        assert!(c.is_producer() && !c.is_consumer());
    }
}
