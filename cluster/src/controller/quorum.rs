//! A controller as one voter of the KRaft quorum: the metadata log is the Raft log.
//!
//! Only the quorum's leader writes, and only once it is the **active controller**: Kafka's
//! `KafkaRaftClient` tells the controller it leads (`QuorumController.QuorumMetaLogListener
//! .handleLeaderChange`) only after its LeaderChange record is committed and the controller has
//! replayed every committed record before it, so the new active controller starts from the whole
//! committed history (`QuorumController.claim`). It then appends records as it decides, folds them
//! into its image at once (its own uncommitted view, Kafka's `SnapshotRegistry`), and holds each
//! answer to a broker until the high watermark covers the records that request wrote, or, for a
//! request that wrote nothing, every record still pending (`QuorumController.ControllerWriteEvent`
//! and its `DeferredEventQueue`). So no broker hears of a decision the quorum could still lose.
//!
//! Broker sessions and heartbeat timers are soft state of the active controller
//! (`ClusterControlManager.activate` builds a fresh `BrokerHeartbeatManager`): a new active
//! controller gives every registered broker a full `broker.session.timeout.ms` from the moment
//! it takes over, so a broker that died just before a controller failover is fenced later than it
//! would have been.
//!
//! A controller that loses its leadership (`QuorumController.renounce`) fails the answers it was
//! holding with NOT_CONTROLLER, forgets its broker sessions, and rolls its image back to the
//! committed records (`SnapshotRegistry.revertToSnapshot`). A controller that is not active
//! answers every broker request with NOT_CONTROLLER and replays committed records only
//! (`QuorumMetaLogListener.handleCommit`).

use super::{Controller, Session};
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::metadata::{MetadataImage, MetadataRecord};
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::raft::log::Payload;
use crate::raft::message::RaftMessage;
use crate::raft::state::QuorumConfig;
use crate::raft::{Raft, RaftDisk, RaftOut};
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::BrokerId;
use std::collections::BTreeSet;

/// Who votes, and how elections are timed.
#[derive(Clone, Debug, PartialEq)]
pub struct QuorumSetup {
    /// `controller.quorum.voters`: the controllers' node ids.
    pub voters: BTreeSet<i32>,
    pub config: QuorumConfig,
}

/// An answer held until the quorum commits `offset` (exclusive: the high watermark must reach it).
#[derive(Clone, Debug)]
pub(super) struct HeldAnswer {
    offset: i64,
    to: NodeId,
    correlation_id: u64,
    body: Response,
}

pub(super) struct QuorumMember {
    pub(super) raft: Raft<MetadataRecord>,
    /// The epoch in which this controller is active, if it is.
    pub(super) active_epoch: Option<i32>,
    /// Records decided in this input, appended to the Raft log together when it ends (one
    /// batch per controller event, as `QuorumController` appends a `ControllerResult`).
    pub(super) to_replicate: Vec<MetadataRecord>,
    /// Answers decided in this input, sent or held when it ends.
    pub(super) replies: Vec<(NodeId, u64, Response)>,
    held: Vec<HeldAnswer>,
    /// The Raft offset below which entries are committed and counted.
    committed_offset: i64,
    /// How many metadata records lie below `committed_offset` (the controller's `log` holds
    /// exactly these when it is not active, and these followed by its own uncommitted ones when
    /// it is).
    committed_records: usize,
}

impl QuorumMember {
    pub(super) fn new(id: i32, setup: QuorumSetup, disk: RaftDisk<MetadataRecord>) -> Self {
        QuorumMember {
            raft: Raft::new(id, setup.voters, setup.config, disk),
            active_epoch: None,
            to_replicate: Vec::new(),
            replies: Vec::new(),
            held: Vec::new(),
            committed_offset: 0,
            committed_records: 0,
        }
    }
}

/// Where a Raft member's message goes: a voter's id names a controller, any other a broker (an
/// observer).
pub fn raft_peer(voters: &BTreeSet<i32>, id: i32) -> NodeId {
    if id < 0 {
        NodeId::Broker(-(id + 1))
    } else if voters.contains(&id) {
        NodeId::Controller(id)
    } else {
        NodeId::Broker(id)
    }
}

/// The Raft id of a broker's observer: its node id, except in combined mode, where the id is also
/// a voter's (the controller on the same node) and the observer goes by `-(id + 1)` so the leader
/// never counts a broker's fetch as its voter's. Kafka's combined node shares one Raft client
/// between its broker and controller (`KafkaRaftServer`, `SharedServer`); ksim's broker observes
/// through its own member over the host's loopback, its metadata a fetch behind its controller's.
pub fn observer_raft_id(voters: &BTreeSet<i32>, broker: i32) -> i32 {
    if voters.contains(&broker) {
        -(broker + 1)
    } else {
        broker
    }
}

/// The Raft id of a node that sent a Raft message.
pub fn raft_id(voters: &BTreeSet<i32>, node: NodeId) -> Option<i32> {
    match node {
        NodeId::Controller(id) => Some(id),
        NodeId::Broker(id) => Some(observer_raft_id(voters, id)),
        NodeId::Client(_) => None,
    }
}

/// Hand a Raft member's output to the world: messages, timers, and events as notes.
pub fn emit_raft_out(voters: &BTreeSet<i32>, out: RaftOut<MetadataRecord>, fx: &mut Effects) {
    for event in out.events {
        fx.note(Note::Quorum(event));
    }
    for (timer, at) in out.timers {
        match at {
            Some(at) => fx.set_timer(Timer::Raft(timer), at),
            None => fx.cancel_timer(Timer::Raft(timer)),
        }
    }
    for (to, message) in out.sends {
        fx.send(raft_peer(voters, to), Message::Raft(message));
    }
}

/// The controller APIs a broker calls, with what a NOT_CONTROLLER answer repeats of the request.
enum ControllerApi<'a> {
    BrokerRegistration,
    BrokerHeartbeat,
    AlterPartition(&'a crate::topic::TopicPartition),
    CreateTopics(&'a str),
}

/// NOT_CONTROLLER for one controller API (`ControllerExceptions.newWrongControllerException`).
fn wrong_controller(api: ControllerApi) -> Response {
    let error = ErrorCode::NotController;
    match api {
        ControllerApi::BrokerRegistration => {
            Response::BrokerRegistration(BrokerRegistrationResponse { error, broker_epoch: -1 })
        }
        ControllerApi::BrokerHeartbeat => Response::BrokerHeartbeat(BrokerHeartbeatResponse {
            error,
            is_caught_up: false,
            is_fenced: true,
            should_shut_down: false,
        }),
        ControllerApi::AlterPartition(partition) => Response::AlterPartition(AlterPartitionResponse {
            partition: partition.clone(),
            error,
            leader: None,
            leader_epoch: -1,
            isr: Vec::new(),
            partition_epoch: -1,
        }),
        ControllerApi::CreateTopics(name) => {
            Response::CreateTopics(CreateTopicsResponse { name: name.to_string(), error, message: None })
        }
    }
}

/// The same answer with NOT_CONTROLLER.
fn not_controller(body: &Response) -> Response {
    match body {
        Response::BrokerRegistration(_) => wrong_controller(ControllerApi::BrokerRegistration),
        Response::BrokerHeartbeat(_) => wrong_controller(ControllerApi::BrokerHeartbeat),
        Response::AlterPartition(r) => wrong_controller(ControllerApi::AlterPartition(&r.partition)),
        Response::CreateTopics(r) => wrong_controller(ControllerApi::CreateTopics(&r.name)),
        other => other.clone(),
    }
}

/// What a request to a controller that is not active gets.
pub(super) fn not_controller_answer(body: &Request) -> Option<Response> {
    Some(wrong_controller(match body {
        Request::BrokerRegistration(_) => ControllerApi::BrokerRegistration,
        Request::BrokerHeartbeat(_) => ControllerApi::BrokerHeartbeat,
        Request::AlterPartition(r) => ControllerApi::AlterPartition(&r.partition),
        Request::CreateTopics(r) => ControllerApi::CreateTopics(&r.name),
        _ => return None,
    }))
}

impl Controller {
    pub fn is_quorum_member(&self) -> bool {
        self.quorum.is_some()
    }

    /// The Raft member, in a quorum.
    pub fn raft(&self) -> Option<&Raft<MetadataRecord>> {
        self.quorum.as_ref().map(|q| &q.raft)
    }

    /// Whether this controller decides: always when alone; in a quorum, once active.
    pub fn is_active(&self) -> bool {
        self.quorum.as_ref().is_none_or(|q| q.active_epoch.is_some())
    }

    /// The offset the next record will have: a lone controller counts records; a quorum member
    /// uses the Raft offset, which is what Kafka's broker epochs are (the registration record's
    /// offset).
    pub(super) fn next_record_offset(&self) -> i64 {
        match &self.quorum {
            Some(q) => q.raft.log().end_offset() + q.to_replicate.len() as i64,
            None => self.log.len() as i64,
        }
    }

    /// Answer a broker: at once when alone; in a quorum, once this input's records are committed.
    pub(super) fn reply(&mut self, to: NodeId, correlation_id: u64, body: Response, fx: &mut Effects) {
        match &mut self.quorum {
            Some(q) => q.replies.push((to, correlation_id, body)),
            None => fx.send(to, Message::Response { correlation_id, body }),
        }
    }

    pub(super) fn quorum_start(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        let Some(q) = &mut self.quorum else { return };
        let mut out = RaftOut::default();
        q.raft.start(now, rng, &mut out);
        let voters = q.raft.voters().clone();
        emit_raft_out(&voters, out, fx);
    }

    pub(super) fn quorum_message(
        &mut self,
        now: SimTime,
        from: NodeId,
        message: RaftMessage<MetadataRecord>,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        let Some(q) = &mut self.quorum else { return };
        let Some(from) = raft_id(q.raft.voters(), from) else { return };
        let mut out = RaftOut::default();
        q.raft.on_message(now, from, message, rng, &mut out);
        let voters = q.raft.voters().clone();
        emit_raft_out(&voters, out, fx);
    }

    pub(super) fn quorum_timer(
        &mut self,
        now: SimTime,
        timer: crate::raft::RaftTimer,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        let Some(q) = &mut self.quorum else { return };
        let mut out = RaftOut::default();
        q.raft.on_timer(now, timer, rng, &mut out);
        let voters = q.raft.voters().clone();
        emit_raft_out(&voters, out, fx);
    }

    /// After every input: append what was decided, follow the high watermark, become active or
    /// renounce, and send the answers the quorum has committed.
    pub(super) fn quorum_settle(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        let Some(q) = &mut self.quorum else { return };
        let voters = q.raft.voters().clone();
        if !q.to_replicate.is_empty() {
            let records = std::mem::take(&mut q.to_replicate);
            let mut out = RaftOut::default();
            let appended = q.raft.append(now, records, &mut out);
            assert!(appended.is_some(), "controller-{}: active but not the Raft leader", self.id);
            emit_raft_out(&voters, out, fx);
        }
        let end = q.raft.log().end_offset();
        let high_watermark = q.raft.high_watermark();
        for (to, correlation_id, body) in std::mem::take(&mut q.replies) {
            // `ControllerWriteEvent`: an answer waits for the records it wrote, or for the highest
            // pending offset if it wrote none.
            if end > high_watermark {
                q.held.push(HeldAnswer { offset: end, to, correlation_id, body });
            } else {
                fx.send(to, Message::Response { correlation_id, body });
            }
        }
        // Renounce: the leadership this controller was active in is over.
        let still_leading = q.raft.is_leader() && Some(q.raft.epoch()) == q.active_epoch;
        if let (Some(epoch), false) = (q.active_epoch, still_leading) {
            self.renounce(epoch, fx);
        }
        self.follow_commits(fx);
        let Some(q) = &mut self.quorum else { unreachable!() };
        let high_watermark = q.raft.high_watermark();
        let (ready, waiting): (Vec<HeldAnswer>, Vec<HeldAnswer>) =
            std::mem::take(&mut q.held).into_iter().partition(|h| h.offset <= high_watermark);
        q.held = waiting;
        for h in ready {
            fx.send(h.to, Message::Response { correlation_id: h.correlation_id, body: h.body });
        }
        // Claim: the LeaderChange record of this epoch is committed (the high watermark reached
        // the log end, which this leader has not written past yet).
        let q = self.quorum.as_ref().expect("quorum member");
        if q.active_epoch.is_none() && q.raft.is_leader() && q.raft.high_watermark() == q.raft.log().end_offset() {
            let epoch = q.raft.epoch();
            self.claim(now, epoch, rng, fx);
        }
    }

    /// Fold newly committed entries: a controller that is not active applies them to its image;
    /// the active one has them already and only counts them.
    fn follow_commits(&mut self, fx: &mut Effects) {
        let _ = fx;
        let Some(q) = &mut self.quorum else { return };
        let high_watermark = q.raft.high_watermark();
        let active = q.active_epoch.is_some();
        while q.committed_offset < high_watermark {
            let entry = q.raft.log().get(q.committed_offset).expect("committed entries are in the log").clone();
            q.committed_offset += 1;
            if let Payload::Data(record) = entry.payload {
                q.committed_records += 1;
                if !active {
                    self.image.apply(&record);
                    self.log.push(record);
                }
            }
        }
        debug_assert!(self.log.len() >= q.committed_records);
    }

    /// `QuorumController.claim` → `ClusterControlManager.activate`: every registered broker gets
    /// a fresh session, as if it had just heartbeated; topics still to create are created.
    fn claim(&mut self, now: SimTime, epoch: i32, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        let q = self.quorum.as_mut().expect("quorum member");
        q.active_epoch = Some(epoch);
        fx.note(Note::ControllerActivated { epoch });
        let registered: Vec<BrokerId> = self.image.brokers.keys().copied().collect();
        self.sessions.clear();
        for id in registered {
            self.sessions.insert(id, Session::new(now, 0));
        }
        let image = &self.image;
        self.pending_topics.retain(|t| !image.topics.contains_key(&t.name));
        self.maybe_create_pending_topics(rng, fx);
        self.schedule_session_check(fx);
        self.schedule_no_op(now, fx);
        // What this input decided goes out now, not at the next one.
        let q = self.quorum.as_mut().expect("quorum member");
        if !q.to_replicate.is_empty() {
            let records = std::mem::take(&mut q.to_replicate);
            let mut out = RaftOut::default();
            q.raft.append(now, records, &mut out);
            let voters = q.raft.voters().clone();
            emit_raft_out(&voters, out, fx);
        }
    }

    /// `QuorumController.renounce`: fail held answers with NOT_CONTROLLER, forget the broker
    /// sessions and timers, roll back to the committed records.
    fn renounce(&mut self, epoch: i32, fx: &mut Effects) {
        let q = self.quorum.as_mut().expect("quorum member");
        q.active_epoch = None;
        for h in std::mem::take(&mut q.held) {
            fx.send(h.to, Message::Response { correlation_id: h.correlation_id, body: not_controller(&h.body) });
        }
        let committed = q.committed_records;
        fx.note(Note::ControllerRenounced { epoch });
        self.log.truncate(committed);
        let mut image = MetadataImage::default();
        for record in &self.log {
            image.apply(record);
        }
        self.image = image;
        self.sessions.clear();
        self.balance_scheduled = false;
        fx.cancel_timer(Timer::SessionCheck);
        fx.cancel_timer(Timer::LeaderImbalanceCheck);
        fx.cancel_timer(Timer::WriteNoOp);
    }

    /// KIP-835: the active controller's `writeNoOpRecord` periodic task. Kafka registers it with
    /// `PeriodicTaskControlManager` when `metadata.max.idle.interval.ms` is above 0
    /// (`QuorumController.registerWriteNoOpRecord`), runs it from `claim` until `renounce`, and
    /// each run appends one `NoOpRecord` and comes back a full interval later, whatever else was
    /// written in between.
    fn schedule_no_op(&self, now: SimTime, fx: &mut Effects) {
        let interval_ms = self.config.metadata_max_idle_interval_ms;
        if interval_ms > 0 {
            fx.set_timer(Timer::WriteNoOp, now.plus_ms(interval_ms));
        }
    }

    /// The task runs: one `NoOpRecord`, committed like any other write.
    pub(super) fn write_no_op(&mut self, now: SimTime, fx: &mut Effects) {
        if self.quorum.is_none() {
            return;
        }
        self.append(MetadataRecord::NoOp, fx);
        self.schedule_no_op(now, fx);
    }

    /// A quorum member's records agree with its Raft log: the committed prefix is what it holds.
    pub(super) fn check_quorum_invariants(&self) -> Result<(), String> {
        let Some(q) = &self.quorum else { return Ok(()) };
        q.raft.check_invariants()?;
        crate::invariant::ensure(q.committed_offset <= q.raft.high_watermark(), || {
            format!("counted commits up to {}, high watermark {}", q.committed_offset, q.raft.high_watermark())
        })?;
        crate::invariant::ensure(self.log.len() >= q.committed_records, || {
            format!("holds {} records, {} committed", self.log.len(), q.committed_records)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::controller::ControllerDisk;
    use crate::effects::{Input, StateMachine};
    use crate::raft::RaftTimer;
    use rand_chacha::rand_core::SeedableRng;
    use std::collections::{BTreeMap, VecDeque};

    /// Three controllers wired by an instant network that can cut one off; messages to brokers
    /// are collected.
    struct Quorum3 {
        controllers: BTreeMap<i32, Controller>,
        rng: rand_chacha::ChaCha8Rng,
        now: SimTime,
        queue: VecDeque<(NodeId, NodeId, Message)>,
        to_brokers: Vec<(NodeId, Message)>,
        cut_off: Option<i32>,
        notes: Vec<(i32, Note)>,
    }

    impl Quorum3 {
        fn new() -> Quorum3 {
            let setup = QuorumSetup { voters: BTreeSet::from([1, 2, 3]), config: QuorumConfig::default() };
            let controllers = [1, 2, 3]
                .into_iter()
                .map(|id| {
                    let c = Controller::with_quorum(
                        id,
                        BrokerConfig::default(),
                        3,
                        Vec::new(),
                        ControllerDisk::default(),
                        Some(setup.clone()),
                    );
                    (id, c)
                })
                .collect();
            let mut q = Quorum3 {
                controllers,
                rng: rand_chacha::ChaCha8Rng::seed_from_u64(3),
                now: SimTime::ZERO,
                queue: VecDeque::new(),
                to_brokers: Vec::new(),
                cut_off: None,
                notes: Vec::new(),
            };
            for id in [1, 2, 3] {
                q.input(id, Input::Start);
            }
            q
        }

        fn input(&mut self, id: i32, input: Input) -> Effects {
            let mut fx = Effects::default();
            self.controllers.get_mut(&id).expect("controller").handle(self.now, input, &mut self.rng, &mut fx);
            self.notes.extend(fx.notes.iter().map(|n| (id, n.clone())));
            for (to, message) in &fx.sends {
                match to {
                    NodeId::Controller(_) => self.queue.push_back((NodeId::Controller(id), *to, message.clone())),
                    _ => self.to_brokers.push((*to, message.clone())),
                }
            }
            fx
        }

        /// Deliver everything in flight (messages to or from the cut-off controller are lost).
        fn drain(&mut self) {
            let mut bound = 10_000;
            while let Some((from, to, message)) = self.queue.pop_front() {
                bound -= 1;
                assert!(bound > 0, "the quorum keeps talking forever");
                let cut = self.cut_off.map(NodeId::Controller);
                if Some(from) == cut || Some(to) == cut {
                    continue;
                }
                let NodeId::Controller(id) = to else { unreachable!() };
                self.input(id, Input::Message { from, message });
            }
        }

        /// Controller `id`'s election timer fires; the quorum elects it.
        fn elect(&mut self, id: i32) {
            self.now = self.now.plus_ms(5_000);
            self.input(id, Input::Timer(Timer::Raft(RaftTimer::Election)));
            self.drain();
        }

        fn register(&mut self, to: i32, broker: BrokerId) -> Effects {
            self.input(
                to,
                Input::Message {
                    from: NodeId::Broker(broker),
                    message: Message::Request {
                        correlation_id: 7,
                        body: Request::BrokerRegistration(BrokerRegistrationRequest {
                            broker_id: broker,
                            incarnation: 1,
                            previous_broker_epoch: -1,
                            rack: None,
                        }),
                    },
                },
            )
        }

        fn registration_answers(&self, broker: BrokerId) -> Vec<ErrorCode> {
            self.to_brokers
                .iter()
                .filter_map(|(to, m)| match m {
                    Message::Response { body: Response::BrokerRegistration(r), .. }
                        if *to == NodeId::Broker(broker) =>
                    {
                        Some(r.error)
                    }
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn the_elected_leader_becomes_the_only_active_controller() {
        let mut q = Quorum3::new();
        q.elect(2);
        let active: Vec<i32> = q.controllers.iter().filter(|(_, c)| c.is_active()).map(|(id, _)| *id).collect();
        assert_eq!(active, vec![2]);
        q.register(1, 5);
        assert_eq!(q.registration_answers(5), vec![ErrorCode::NotController], "only the active controller decides");
    }

    /// `QuorumController.ControllerWriteEvent`: the answer waits for the quorum to commit.
    #[test]
    fn the_active_controller_answers_only_once_the_quorum_committed() {
        let mut q = Quorum3::new();
        q.elect(2);
        let fx = q.register(2, 5);
        assert!(
            !fx.sends.iter().any(|(to, _)| *to == NodeId::Broker(5)),
            "no answer before the followers have the registration record"
        );
        q.drain();
        assert_eq!(q.registration_answers(5), vec![ErrorCode::None]);
        // Followers learn the new high watermark with their next fetch answer (the leader holds
        // a fetch that finds nothing new for `fetchMaxWaitMs`).
        q.now = q.now.plus_ms(500);
        for follower in [1, 3] {
            q.input(2, Input::Timer(Timer::Raft(RaftTimer::FetchWait(follower))));
        }
        q.drain();
        for c in q.controllers.values() {
            assert!(c.image().brokers.contains_key(&5), "controller-{} replayed the committed record", c.id);
        }
    }

    /// KIP-835: the active controller's `writeNoOpRecord` task appends a `NoOpRecord` every
    /// `metadata.max.idle.interval.ms`; it commits like any record, changes nothing in the image,
    /// and its high-watermark event says it was only no-ops. A standby never schedules it.
    #[test]
    fn the_active_controller_writes_a_no_op_every_idle_interval() {
        let mut q = Quorum3::new();
        q.elect(2);
        let end = q.controllers[&2].raft().expect("quorum").log().end_offset();
        let image = q.controllers[&2].image().clone();
        q.now = q.now.plus_ms(500);
        q.notes.clear();
        let fx = q.input(2, Input::Timer(Timer::WriteNoOp));
        assert!(
            fx.timer_ops
                .iter()
                .any(|t| matches!(t, crate::effects::TimerOp::Set(Timer::WriteNoOp, at) if *at == q.now.plus_ms(500))),
            "the next run is a full interval later: {:?}",
            fx.timer_ops
        );
        q.drain();
        let raft = q.controllers[&2].raft().expect("quorum");
        assert_eq!(raft.log().end_offset(), end + 1);
        assert!(matches!(raft.log().get(end).map(|e| &e.payload), Some(Payload::Data(MetadataRecord::NoOp))));
        assert_eq!(raft.high_watermark(), end + 1, "committed by the followers' fetches");
        assert_eq!(q.controllers[&2].image().topics, image.topics, "a no-op changes nothing");
        assert_eq!(q.controllers[&2].image().next_offset, image.next_offset + 1, "but it takes an offset");
        // The followers learned the new high watermark with their next fetch: only no-ops.
        assert_eq!(q.controllers[&1].raft().expect("quorum").high_watermark(), end + 1);
        let learned: Vec<&Note> = q.notes.iter().filter(|(id, _)| *id == 1).map(|(_, n)| n).collect();
        assert!(
            learned.iter().any(|n| matches!(
                n,
                Note::Quorum(crate::raft::RaftEvent::HighWatermark { no_ops: 1, only_no_ops: true, .. })
            )),
            "{learned:?}"
        );
    }

    #[test]
    fn no_idle_no_op_when_the_interval_is_zero_or_the_controller_is_not_active() {
        let mut q = Quorum3::new();
        for c in q.controllers.values_mut() {
            c.config.metadata_max_idle_interval_ms = 0;
        }
        q.elect(2);
        let end = q.controllers[&2].raft().expect("quorum").log().end_offset();
        let fx = q.input(2, Input::Timer(Timer::WriteNoOp));
        assert!(!fx.timer_ops.iter().any(|t| matches!(t, crate::effects::TimerOp::Set(Timer::WriteNoOp, _))));
        let fx = q.input(1, Input::Timer(Timer::WriteNoOp));
        assert!(fx.sends.is_empty(), "a standby controller writes nothing");
        assert_eq!(q.controllers[&1].raft().expect("quorum").log().end_offset(), end);
    }

    /// `QuorumController.renounce`: a deposed active controller fails what it held and rolls its
    /// image back to the committed records.
    #[test]
    fn a_deposed_active_controller_rolls_back_what_was_never_committed() {
        let mut q = Quorum3::new();
        q.elect(2);
        q.cut_off = Some(2);
        q.register(2, 5);
        q.drain();
        assert!(q.controllers[&2].image().brokers.contains_key(&5), "its own uncommitted view");
        assert!(q.registration_answers(5).is_empty(), "held: nothing committed");
        // Controllers 1 and 3 stop hearing from 2. A follower that still heard its leader refuses
        // pre-votes (KIP-996), so both must time out before 3 can win.
        q.now = q.now.plus_ms(2_000);
        q.input(1, Input::Timer(Timer::Raft(RaftTimer::FetchTimeout)));
        q.drain();
        q.input(3, Input::Timer(Timer::Raft(RaftTimer::FetchTimeout)));
        q.drain();
        assert!(q.controllers[&3].is_active(), "3 won epoch {}", q.controllers[&3].raft().expect("quorum").epoch());
        q.cut_off = None;
        // The new leader's BeginQuorumEpoch reaches controller 2.
        q.now = q.now.plus_ms(2_000);
        q.input(3, Input::Timer(Timer::Raft(RaftTimer::BeginQuorumEpochRetry)));
        q.drain();
        let c2 = &q.controllers[&2];
        assert!(!c2.is_active());
        assert!(!c2.image().brokers.contains_key(&5), "the uncommitted registration is rolled back");
        assert_eq!(q.registration_answers(5), vec![ErrorCode::NotController]);
        assert!(q.controllers[&3].is_active());
    }
}
