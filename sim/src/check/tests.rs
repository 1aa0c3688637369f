//! One small history per rule that makes it fire, and one healthy history where the checker says
//! nothing. Each test tells the checker a story the way the world would: the scenario's promises,
//! the brokers' logs and high watermarks, the controller's choice of leaders, and the notes the
//! nodes write, in order.

use super::{Checker, Class, Finding, Rule};
use crate::nodes::{Durable, Machine, Nodes, Slot, Status};
use crate::scenario::{Scenario, CONTROLLER_ID};
use ksim_cluster::broker::replica::{LeaderState, Replica, Role};
use ksim_cluster::broker::{Broker, BrokerDisk};
use ksim_cluster::config::{BrokerConfig, TopicConfig};
use ksim_cluster::controller::{Controller, ControllerDisk};
use ksim_cluster::log::{Log, TruncateReason};
use ksim_cluster::metadata::{ElectionKind, MetadataRecord};
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::record::{Record, RecordBatch};
use ksim_cluster::time::SimTime;
use ksim_cluster::topic::{BrokerId, TopicPartition};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;

const ACKS_ALL_IDEMPOTENT: &str = r#"(name: "producer", app: Producer(topic: "t", records: 3), configs: {"acks": "all", "enable.idempotence": true})"#;
const ACKS_1: &str =
    r#"(name: "producer", app: Producer(topic: "t", records: 3), configs: {"acks": 1, "enable.idempotence": false})"#;
const NOT_IDEMPOTENT: &str = r#"(name: "producer", app: Producer(topic: "t", records: 3), configs: {"acks": "all", "enable.idempotence": false})"#;
const READER: &str = r#"(name: "reader", app: Consumer(topics: ["t"]))"#;
const MEMBER_A: &str = r#"(name: "member-a", app: GroupConsumer(topics: ["t"]), configs: {"group.id": "g"})"#;
const COOPERATIVE_A: &str = r#"(name: "member-a", app: GroupConsumer(topics: ["t"]), configs: {"group.id": "g", "partition.assignment.strategy": "cooperative-sticky"})"#;
const COOPERATIVE_B: &str = r#"(name: "member-b", app: GroupConsumer(topics: ["t"]), configs: {"group.id": "g", "partition.assignment.strategy": "cooperative-sticky"})"#;

/// The first client of the scenario, and the second.
const FIRST: NodeId = NodeId::Client(0);
const SECOND: NodeId = NodeId::Client(1);

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// A run told to the checker: its promises, the nodes' state, the clock, what it found.
struct Story {
    checker: Checker,
    nodes: Nodes,
    now: SimTime,
    findings: Vec<Finding>,
}

impl Story {
    /// Brokers 1, 2 and 3; topic `t` with one partition on all three, `min.insync.replicas` as
    /// given; the clients in order (`FIRST`, `SECOND`).
    fn new(min_isr: usize, clients: &[&str]) -> Story {
        let text = format!(
            r#"Scenario(title: "checker test", duration_ms: 1000, cluster: (brokers: [1, 2, 3]),
                topics: [(name: "t", replication_factor: 3, configs: {{"min.insync.replicas": {min_isr}}})],
                clients: [{}])"#,
            clients.join(", ")
        );
        let scenario = Scenario::parse("test", &text).expect("test scenario parses");
        let resolved = scenario.resolve().expect("test scenario resolves");
        Story {
            checker: Checker::new(&scenario, &resolved),
            nodes: Nodes::new(),
            now: SimTime(0),
            findings: Vec::new(),
        }
    }

    fn at_ms(&mut self, ms: u64) -> &mut Self {
        self.now = SimTime::from_ms(ms);
        self
    }

    fn note(&mut self, node: NodeId, note: Note) -> &mut Self {
        let found = self.checker.on_note(self.now, node, &note, &self.nodes);
        self.findings.extend(found);
        self
    }

    /// Broker `id` runs holding `values` at offsets 0.. of `t-0`, with this high watermark; the
    /// checker looks at it as after one of its steps.
    fn replica(&mut self, id: BrokerId, values: &[&str], high_watermark: i64) -> &mut Self {
        self.replica_log(id, log_of(values), high_watermark)
    }

    /// Broker `id` runs holding `log` as its copy of `t-0`, with this high watermark.
    fn replica_log(&mut self, id: BrokerId, log: Log, high_watermark: i64) -> &mut Self {
        let mut disk = BrokerDisk::default();
        disk.logs.insert(tp(), log);
        disk.high_watermark_checkpoints.insert(tp(), high_watermark);
        let controller = NodeId::Controller(CONTROLLER_ID);
        let broker = Broker::new(id, BrokerConfig::default(), None, controller, 0, disk);
        self.nodes.insert(NodeId::Broker(id), slot(Machine::Broker(broker)));
        let found = self.checker.after_step(NodeId::Broker(id), &self.nodes);
        self.findings.extend(found);
        self
    }

    /// The controller runs, and its metadata says `leader` leads `t-0` in `epoch`.
    fn controller_says_leader(&mut self, leader: BrokerId, epoch: i32) -> &mut Self {
        let record = MetadataRecord::Partition {
            partition: tp(),
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            elr: vec![],
            last_known_leader: None,
            leader: Some(leader),
            leader_epoch: epoch,
            partition_epoch: epoch,
            election: Some(ElectionKind::Clean),
        };
        let disk = ControllerDisk { log: vec![record], ..ControllerDisk::default() };
        let controller = Controller::new(CONTROLLER_ID, BrokerConfig::default(), 3, Vec::new(), disk);
        self.nodes.insert(NodeId::Controller(CONTROLLER_ID), slot(Machine::Controller(controller)));
        self
    }

    fn processed(&mut self, node: NodeId, offset: i64) -> &mut Self {
        self.checker.on_processed(node, 0, &tp(), offset);
        self
    }

    fn finish(&mut self) -> &mut Self {
        let found = self.checker.finish(&self.nodes, &Default::default());
        self.findings.extend(found);
        self
    }

    /// The rules that fired, with their class.
    fn fired(&self) -> Vec<(Rule, Class)> {
        self.findings.iter().map(|f| (f.rule, f.class())).collect()
    }
}

fn slot(machine: Machine) -> Slot {
    Slot {
        held_down: false,
        status: Status::Up,
        machine: Some(machine),
        durable: Durable::Nothing,
        inbox: None,
        timers: BTreeMap::new(),
        starts: 1,
        rng: ChaCha8Rng::seed_from_u64(0),
    }
}

fn log_of(values: &[&str]) -> Log {
    let mut log = Log::new(0);
    for value in values {
        let records = vec![Record::unkeyed(*value)];
        log.append_as_leader(RecordBatch::new_unassigned(-1, -1, -1, 0, records), 1, &TopicConfig::default(), 0);
    }
    log
}

// ---- the notes the nodes write ----

fn elected(leader: BrokerId, epoch: i32, election: ElectionKind) -> Note {
    Note::PartitionChanged {
        partition: tp(),
        leader: Some(leader),
        leader_epoch: epoch,
        isr: vec![leader],
        elr: vec![],
        partition_epoch: epoch,
        election: Some(election),
    }
}

fn became_leader(epoch: i32) -> Note {
    Note::BecameLeader { partition: tp(), leader_epoch: epoch, log_end_offset: 0, high_watermark: 0 }
}

fn acked(send_id: u64, offset: i64, value: &str) -> Note {
    Note::ProduceAcked { send_id, partition: tp(), offset, key: None, value: Some(value.into()) }
}

fn consumed(offset: i64, value: &str) -> Note {
    Note::Consumed { partition: tp(), offset, key: None, value: Some(value.into()), headers: Vec::new(), engine: 0 }
}

fn position_reset(offset: i64) -> Note {
    Note::PositionReset { partition: tp(), offset, reason: "no committed offset".into(), engine: 0 }
}

fn assigned(member: &str) -> Note {
    Note::PartitionsAssigned { group: "g".into(), member: member.into(), generation: 1, partitions: vec![tp()] }
}

fn assigned_in(member: &str, generation: i32) -> Note {
    Note::PartitionsAssigned { group: "g".into(), member: member.into(), generation, partitions: vec![tp()] }
}

/// The coordinator made `member` part of `generation`, with nothing assigned.
fn member_of(member: &str, generation: i32) -> Note {
    Note::AssignmentStored { group: "g".into(), generation, member: member.into(), partitions: vec![] }
}

fn stored(member: &str) -> Note {
    Note::AssignmentStored { group: "g".into(), generation: 1, member: member.into(), partitions: vec![tp()] }
}

fn committed(offset: i64) -> Note {
    Note::OffsetCommitted { group: "g".into(), partition: tp(), offset }
}

const BROKER_1: NodeId = NodeId::Broker(1);
const BROKER_2: NodeId = NodeId::Broker(2);
const COORDINATOR: NodeId = NodeId::Broker(1);

// ---- a healthy history ----

#[test]
fn healthy_history_acks_all_min_isr_2_replicated_acked_consumed_processed_committed_is_silent() {
    let mut story = Story::new(2, &[ACKS_ALL_IDEMPOTENT, MEMBER_A]);
    story
        .note(NodeId::Controller(CONTROLLER_ID), elected(1, 1, ElectionKind::Clean))
        .note(BROKER_1, became_leader(1))
        .controller_says_leader(1, 1)
        .at_ms(10)
        .replica(1, &["a", "b", "c"], 3)
        .replica(2, &["a", "b", "c"], 3)
        .replica(3, &["a", "b", "c"], 3)
        .note(FIRST, acked(0, 0, "a"))
        .note(FIRST, acked(1, 1, "b"))
        .note(FIRST, acked(2, 2, "c"))
        .at_ms(20)
        .note(COORDINATOR, stored("member-a"))
        .note(SECOND, assigned("member-a"))
        .note(SECOND, position_reset(0))
        .note(SECOND, consumed(0, "a"))
        .note(SECOND, consumed(1, "b"))
        .note(SECOND, consumed(2, "c"))
        .processed(SECOND, 0)
        .processed(SECOND, 1)
        .processed(SECOND, 2)
        .note(COORDINATOR, committed(3))
        .finish();
    assert_eq!(story.fired(), vec![]);
    assert_eq!(story.checker.acked_count(FIRST), 3);
    assert_eq!(story.checker.consumed_count(SECOND), 3);
    assert_eq!(story.checker.processed_count(SECOND), 3);
    assert_eq!(story.checker.lost_acked_writes(&story.nodes), 0);
}

// ---- invariants: a finding is a bug in ksim ----

#[test]
fn two_brokers_become_leader_in_epoch_1_is_two_leaders_in_epoch_bug() {
    let mut story = Story::new(1, &[]);
    story.note(BROKER_1, became_leader(1)).note(BROKER_2, became_leader(1));
    assert_eq!(story.fired(), vec![(Rule::TwoLeadersInEpoch, Class::Bug)]);
}

#[test]
fn coordinator_stores_one_partition_for_two_members_of_generation_1_is_two_owners_in_generation_bug() {
    let mut story = Story::new(1, &[MEMBER_A]);
    story.note(COORDINATOR, stored("member-a")).note(COORDINATOR, stored("member-b"));
    assert_eq!(story.fired(), vec![(Rule::TwoOwnersInGeneration, Class::Bug)]);
}

#[test]
fn group_commits_offset_5_on_a_log_ending_at_3_is_commit_past_log_end_bug() {
    let mut story = Story::new(1, &[MEMBER_A]);
    story.replica(1, &["a", "b", "c"], 3).note(COORDINATOR, committed(5));
    assert_eq!(story.fired(), vec![(Rule::CommitPastLogEnd, Class::Bug)]);
}

#[test]
#[should_panic(expected = "invariant HW <= LEO broken on broker-1 t-0: HW 5 > LEO 3")]
fn replica_with_hw_past_its_log_end_panics() {
    let mut story = Story::new(1, &[]);
    let mut replica = Replica::new(tp(), log_of(&["a", "b", "c"]), 3);
    replica.high_watermark = 5;
    story.checker.check_replica(1, &replica);
}

#[test]
#[should_panic(expected = "leader HW went back from 3 to 2 in epoch 1")]
fn leader_hw_moving_back_within_its_epoch_panics() {
    let mut story = Story::new(1, &[]);
    let mut replica = Replica::new(tp(), log_of(&["a", "b", "c"]), 3);
    replica.leader_epoch = 1;
    replica.role = Role::Leader(LeaderState { epoch_start_offset: 0, followers: BTreeMap::new(), pending_isr: None });
    story.checker.check_replica(1, &replica);
    replica.high_watermark = 2;
    story.checker.check_replica(1, &replica);
}

// ---- promises: a violation when the configuration makes them, a lesson otherwise ----

#[test]
fn cooperative_member_takes_a_partition_another_member_of_its_generation_still_owns_is_two_owners_violation() {
    let mut story = Story::new(1, &[COOPERATIVE_A, COOPERATIVE_B]);
    story
        .note(FIRST, assigned("member-a"))
        .note(COORDINATOR, member_of("member-a", 2))
        .note(COORDINATOR, member_of("member-b", 2))
        .note(SECOND, assigned_in("member-b", 2));
    assert_eq!(story.fired(), vec![(Rule::TwoOwners, Class::Violation)]);
}

/// Issue 12 (`eager-vs-cooperative` seed 60): member-a's session expired and generation 2 was
/// formed without it; until it notices (its next heartbeat hears UNKNOWN_MEMBER_ID) it still
/// holds the partition. Kafka promises nothing about such a zombie.
#[test]
fn cooperative_member_takes_a_partition_an_expelled_member_still_holds_is_silent() {
    let mut story = Story::new(1, &[COOPERATIVE_A, COOPERATIVE_B]);
    story
        .note(FIRST, assigned("member-a"))
        .note(COORDINATOR, member_of("member-b", 2))
        .note(SECOND, assigned_in("member-b", 2));
    assert_eq!(story.fired(), vec![]);
}

#[test]
fn eager_member_takes_a_partition_another_still_owns_is_silent() {
    let mut story = Story::new(1, &[MEMBER_A, MEMBER_A.replace("member-a", "member-b").as_str()]);
    story.note(FIRST, assigned("member-a")).note(SECOND, assigned("member-b"));
    assert_eq!(story.fired(), vec![]);
}

#[test]
fn group_commits_3_then_1_is_commit_went_back_violation() {
    let mut story = Story::new(1, &[MEMBER_A]);
    story.replica(1, &["a", "b", "c"], 3).note(COORDINATOR, committed(3)).note(COORDINATOR, committed(1));
    assert_eq!(story.fired(), vec![(Rule::CommitWentBack, Class::Violation)]);
}

#[test]
fn group_commits_past_an_offset_no_member_was_given_is_committed_undelivered_violation() {
    let mut story = Story::new(1, &[MEMBER_A]);
    story
        .replica(1, &["a", "b", "c"], 3)
        .note(FIRST, position_reset(0))
        .note(FIRST, consumed(0, "a"))
        .note(COORDINATOR, committed(2));
    assert_eq!(story.fired(), vec![(Rule::CommittedUndelivered, Class::Violation)]);
}

#[test]
fn acks_all_producer_acknowledged_before_any_replica_committed_is_acked_uncommitted_violation() {
    let mut story = Story::new(2, &[ACKS_ALL_IDEMPOTENT]);
    story.replica(1, &["a"], 0).note(FIRST, acked(0, 0, "a"));
    assert_eq!(story.fired(), vec![(Rule::AckedUncommitted, Class::Violation)]);
}

#[test]
fn acks_1_producer_acknowledged_before_any_replica_committed_is_silent() {
    let mut story = Story::new(1, &[ACKS_1]);
    story.replica(1, &["a"], 0).note(FIRST, acked(0, 0, "a"));
    assert_eq!(story.fired(), vec![]);
}

#[test]
fn consumer_reads_a_record_above_every_hw_is_read_uncommitted_violation() {
    let mut story = Story::new(1, &[READER]);
    story.replica(1, &["a"], 0).note(FIRST, consumed(0, "a"));
    assert_eq!(story.fired(), vec![(Rule::ReadUncommitted, Class::Violation)]);
}

#[test]
fn plain_consumer_reads_offset_2_right_after_0_is_skipped_offsets_violation() {
    let mut story = Story::new(1, &[READER]);
    story.replica(1, &["a", "b", "c"], 3).note(FIRST, consumed(0, "a")).note(FIRST, consumed(2, "c"));
    assert_eq!(story.fired(), vec![(Rule::SkippedOffsets, Class::Violation)]);
}

#[test]
fn replicas_commit_different_records_at_offset_1_with_clean_elections_is_replicas_diverge_violation() {
    let mut story = Story::new(2, &[]);
    story.replica(1, &["a", "b"], 2).replica(2, &["a", "x"], 2);
    assert_eq!(story.fired(), vec![(Rule::ReplicasDiverge, Class::Violation)]);
}

#[test]
fn replicas_commit_different_records_after_an_unclean_election_is_replicas_diverge_lesson() {
    let mut story = Story::new(2, &[]);
    story
        .replica(1, &["a", "b"], 2)
        .note(NodeId::Controller(CONTROLLER_ID), elected(2, 2, ElectionKind::Unclean))
        .replica(2, &["a", "x"], 2);
    assert_eq!(story.fired(), vec![(Rule::ReplicasDiverge, Class::Lesson)]);
}

/// Broker 1 led epoch 1 and committed `a`, `b` with broker 3; broker 2 only ever had `a` and
/// leads epoch 2; broker 1 truncated `b` to follow it.
fn acked_record_missing_from_new_leader(producer: &str, min_isr: usize) -> Story {
    let mut story = Story::new(min_isr, &[producer]);
    story
        .note(NodeId::Controller(CONTROLLER_ID), elected(1, 1, ElectionKind::Clean))
        .replica(1, &["a", "b"], 2)
        .replica(3, &["a", "b"], 2)
        .at_ms(10)
        .note(FIRST, acked(0, 0, "a"))
        .note(FIRST, acked(1, 1, "b"))
        .at_ms(20)
        .note(NodeId::Controller(CONTROLLER_ID), elected(2, 2, ElectionKind::Clean))
        .controller_says_leader(2, 2)
        .at_ms(30)
        .note(
            BROKER_1,
            Note::Truncated { partition: tp(), to_offset: 1, removed: 1, reason: TruncateReason::DivergedFromLeader },
        )
        .replica(2, &["a"], 1)
        .finish();
    story
}

#[test]
fn acks_all_min_isr_2_acked_record_missing_from_new_leader_is_acked_write_lost_violation() {
    let story = acked_record_missing_from_new_leader(ACKS_ALL_IDEMPOTENT, 2);
    assert_eq!(story.fired(), vec![(Rule::AckedWriteLost, Class::Violation)]);
    assert_eq!(story.checker.lost_acked_writes(&story.nodes), 1);
    assert!(
        story.findings[0]
            .message
            .contains("broker-2 became leader at 0.020s (epoch 2, clean); broker-1 removed offsets 1..=1 at 0.030s"),
        "the finding explains the loss: {}",
        story.findings[0].message
    );
}

#[test]
fn acks_1_acked_record_missing_from_new_leader_is_acked_write_lost_lesson() {
    let story = acked_record_missing_from_new_leader(ACKS_1, 1);
    assert_eq!(story.fired(), vec![(Rule::AckedWriteLost, Class::Lesson)]);
    assert_eq!(story.checker.lost_acked_writes(&story.nodes), 0, "nothing Kafka promised to keep");
}

#[test]
fn idempotent_producer_sends_a_then_b_written_b_then_a_is_reordered_violation() {
    let mut story = Story::new(2, &[ACKS_ALL_IDEMPOTENT]);
    story
        .controller_says_leader(1, 1)
        .replica(1, &["b", "a"], 2)
        .note(FIRST, acked(0, 1, "a"))
        .note(FIRST, acked(1, 0, "b"))
        .finish();
    assert_eq!(story.fired(), vec![(Rule::Reordered, Class::Violation)]);
}

/// Ordering is promised within one producer session. After OUT_OF_ORDER_SEQUENCE_NUMBER on the
/// sequence that follows an expired batch, the Java client bumps its epoch and retries the batch
/// as sequence 0 of the new session, which can land after the old session's later records
/// (`TransactionManager.canRetry`; fuzz: consumer-closes seed 185, a new leader with no state for
/// the producer accepted a later batch while earlier ones hung on the paused old leader).
#[test]
fn idempotent_reorder_across_producer_sessions_is_reordered_lesson() {
    let mut story = Story::new(2, &[ACKS_ALL_IDEMPOTENT]);
    let mut disk = BrokerDisk::default();
    let mut log = Log::new(0);
    for (pid, value) in [(7, "b"), (8, "a")] {
        let records = vec![Record::unkeyed(value)];
        log.append_as_leader(RecordBatch::new_unassigned(pid, 0, 0, 0, records), 1, &TopicConfig::default(), 0);
    }
    disk.logs.insert(tp(), log);
    disk.high_watermark_checkpoints.insert(tp(), 2);
    let broker = Broker::new(1, BrokerConfig::default(), None, NodeId::Controller(CONTROLLER_ID), 0, disk);
    story.nodes.insert(NodeId::Broker(1), slot(Machine::Broker(broker)));
    let found = story.checker.after_step(NodeId::Broker(1), &story.nodes);
    story.findings.extend(found);
    story.controller_says_leader(1, 1).note(FIRST, acked(0, 1, "a")).note(FIRST, acked(1, 0, "b")).finish();
    assert_eq!(story.fired(), vec![(Rule::Reordered, Class::Lesson)]);
}

#[test]
fn idempotent_producer_value_written_at_two_offsets_is_duplicate_record_violation() {
    let mut story = Story::new(2, &[ACKS_ALL_IDEMPOTENT]);
    story.controller_says_leader(1, 1).replica(1, &["a", "a"], 2).finish();
    assert_eq!(story.fired(), vec![(Rule::DuplicateRecord, Class::Violation)]);
}

/// An unclean election can lose the producer state the leader deduplicates with, along with the
/// records: a retry is then written again, which Kafka does not promise against (fuzz:
/// unclean-election-loses-data seed 254).
#[test]
fn idempotent_producer_duplicate_after_an_unclean_election_is_duplicate_record_lesson() {
    let mut story = Story::new(2, &[ACKS_ALL_IDEMPOTENT]);
    story
        .note(NodeId::Controller(CONTROLLER_ID), elected(1, 1, ElectionKind::Unclean))
        .controller_says_leader(1, 1)
        .replica(1, &["a", "a"], 2)
        .finish();
    assert_eq!(story.fired(), vec![(Rule::DuplicateRecord, Class::Lesson)]);
}

/// Idempotence deduplicates one producer session's retries. A value written again under another
/// producer id (an application restarted, reprocessed its input and wrote the same output) is not
/// a broken promise (fuzz: commit-waits-for-outputs seed 41, a group-by-count restarted after its
/// commits had failed).
#[test]
fn idempotent_value_written_again_by_another_producer_session_is_duplicate_record_lesson() {
    let mut story = Story::new(2, &[ACKS_ALL_IDEMPOTENT]);
    let mut disk = BrokerDisk::default();
    let mut log = Log::new(0);
    for pid in [7, 8] {
        let records = vec![Record::unkeyed("a")];
        log.append_as_leader(RecordBatch::new_unassigned(pid, 0, 0, 0, records), 1, &TopicConfig::default(), 0);
    }
    disk.logs.insert(tp(), log);
    disk.high_watermark_checkpoints.insert(tp(), 2);
    let broker = Broker::new(1, BrokerConfig::default(), None, NodeId::Controller(CONTROLLER_ID), 0, disk);
    story.nodes.insert(NodeId::Broker(1), slot(Machine::Broker(broker)));
    story.controller_says_leader(1, 1).finish();
    assert_eq!(story.fired(), vec![(Rule::DuplicateRecord, Class::Lesson)]);
}

#[test]
fn producer_without_idempotence_value_written_at_two_offsets_is_duplicate_record_lesson() {
    let mut story = Story::new(2, &[NOT_IDEMPOTENT]);
    story.controller_says_leader(1, 1).replica(1, &["a", "a"], 2).finish();
    assert_eq!(story.fired(), vec![(Rule::DuplicateRecord, Class::Lesson)]);
}

/// `no-convergence` is decided by the world's liveness check after the faults heal, not by the
/// checker; what is tested here is that a run with it fails.
#[test]
fn no_convergence_is_a_violation_that_fails_the_run() {
    let finding = Finding::promise(Rule::NoConvergence, true, "not recovered".into());
    assert_eq!(finding.class(), Class::Violation);
    assert!(finding.class().fails());
}

// ---- lessons: Kafka never promises otherwise ----

#[test]
fn plain_consumer_reads_offset_1_again_is_consumed_again_lesson() {
    let mut story = Story::new(1, &[READER]);
    story
        .replica(1, &["a", "b"], 2)
        .note(FIRST, consumed(0, "a"))
        .note(FIRST, consumed(1, "b"))
        .note(FIRST, consumed(1, "b"));
    assert_eq!(story.fired(), vec![(Rule::ConsumedAgain, Class::Lesson)]);
}

/// KIP-320: broker 2, elected uncleanly, has only `a`; it writes `x` at offset 1. The reader,
/// which had read `a` and `b`, detects the truncation and moves back to 1 (`Consumer::
/// on_offsets_for_leader_epoch`). Reading offset 1 again reads the record that replaced the lost
/// one: the unclean election's replicas-diverge lesson, and no consumed-again.
#[test]
fn plain_consumer_moved_back_by_truncation_detection_reads_the_new_offset_1_is_only_the_unclean_lesson() {
    let mut story = Story::new(1, &[READER]);
    story
        .replica(1, &["a", "b"], 2)
        .note(FIRST, consumed(0, "a"))
        .note(FIRST, consumed(1, "b"))
        .note(NodeId::Controller(CONTROLLER_ID), elected(2, 2, ElectionKind::Unclean))
        .replica(2, &["a", "x"], 2)
        .note(
            FIRST,
            Note::TruncationDetected { partition: tp(), position: 2, epoch: 1, divergent: Some((1, 1)), raised: false },
        )
        .note(FIRST, consumed(1, "x"));
    assert_eq!(story.fired(), vec![(Rule::ReplicasDiverge, Class::Lesson)]);
}

#[test]
fn group_processes_offset_0_twice_is_processed_twice_lesson() {
    let mut story = Story::new(1, &[MEMBER_A]);
    story.processed(FIRST, 0).processed(FIRST, 0).finish();
    assert_eq!(story.fired(), vec![(Rule::ProcessedTwice, Class::Lesson)]);
}

#[test]
fn group_commits_past_a_delivered_record_it_never_processed_is_committed_unprocessed_lesson() {
    let mut story = Story::new(1, &[MEMBER_A]);
    story
        .replica(1, &["a", "b"], 2)
        .note(FIRST, position_reset(0))
        .note(FIRST, consumed(0, "a"))
        .note(FIRST, consumed(1, "b"))
        .processed(FIRST, 0)
        .note(COORDINATOR, committed(2))
        .finish();
    assert_eq!(story.fired(), vec![(Rule::CommittedUnprocessed, Class::Lesson)]);
}

// ---- the rules themselves ----

#[test]
fn every_rule_serializes_as_its_stable_name() {
    for rule in Rule::ALL {
        assert_eq!(serde_json::to_string(&rule).expect("serializes"), format!("\"{}\"", rule.name()));
        assert!(!rule.description().is_empty());
    }
}

#[test]
fn invariants_are_bugs_and_lessons_never_fail() {
    for rule in Rule::ALL {
        let finding = Finding { rule, violation: true, message: String::new() };
        match rule.nature() {
            super::Nature::Invariant => assert_eq!(finding.class(), Class::Bug),
            super::Nature::Promise => {
                assert_eq!(finding.class(), Class::Violation);
                assert_eq!(Finding { violation: false, ..finding }.class(), Class::Lesson);
            }
            super::Nature::Lesson => assert_eq!(finding.class(), Class::Lesson),
        }
    }
}

// ---- transactions ----

const TXN_PRODUCER: &str = r#"(name: "payments-app", app: TransactionalProducer(topic: "t", transactions: 1, records_per_transaction: 1), configs: {"transactional.id": "tx"})"#;
const TXN_PRODUCER_2: &str = r#"(name: "payments-app-2", app: TransactionalProducer(topic: "t", transactions: 1, records_per_transaction: 1), configs: {"transactional.id": "tx"})"#;
const READ_COMMITTED: &str = r#"(name: "reader", library: Librdkafka, app: Consumer(topics: ["t"]))"#;

/// One batch of a transactional test log.
enum Entry<'a> {
    Plain(&'a str),
    /// A transactional record of producer `pid`.
    Txn(i64, &'a str),
    /// A marker for producer `pid`.
    Marker(i64, ksim_cluster::record::ControlType),
}

impl Story {
    /// As [`Story::replica`], with transactional records and markers.
    fn txn_replica(&mut self, id: BrokerId, entries: &[Entry], high_watermark: i64) -> &mut Self {
        let mut log = Log::new(0);
        for entry in entries {
            let batch = match entry {
                Entry::Plain(v) => RecordBatch::new_unassigned(-1, -1, -1, 0, vec![record(v)]),
                Entry::Txn(pid, v) => {
                    let mut b = RecordBatch::new_unassigned(*pid, 0, 0, 0, vec![record(v)]);
                    b.is_transactional = true;
                    b
                }
                Entry::Marker(pid, control_type) => {
                    let marker =
                        ksim_cluster::record::ControlMarker { control_type: *control_type, coordinator_epoch: 0 };
                    RecordBatch::new_marker(*pid, 0, 0, marker)
                }
            };
            log.append_as_leader(batch, 1, &TopicConfig::default(), 0);
        }
        let mut disk = BrokerDisk::default();
        disk.logs.insert(tp(), log);
        disk.high_watermark_checkpoints.insert(tp(), high_watermark);
        let controller = NodeId::Controller(CONTROLLER_ID);
        let broker = Broker::new(id, BrokerConfig::default(), None, controller, 0, disk);
        self.nodes.insert(NodeId::Broker(id), slot(Machine::Broker(broker)));
        let found = self.checker.after_step(NodeId::Broker(id), &self.nodes);
        self.findings.extend(found);
        self
    }
}

fn record(value: &str) -> Record {
    Record::unkeyed(value)
}

fn txn_initialized(epoch: i16) -> Note {
    Note::TxnInitialized { transactional_id: "tx".into(), producer_id: 7, producer_epoch: epoch }
}

use ksim_cluster::record::ControlType::{Abort, Commit};

#[test]
fn read_committed_returning_an_aborted_record_is_read_aborted() {
    let mut story = Story::new(2, &[READ_COMMITTED]);
    story.txn_replica(1, &[Entry::Txn(7, "a"), Entry::Marker(7, Abort)], 2).note(FIRST, consumed(0, "a"));
    assert_eq!(story.fired(), vec![(Rule::ReadAborted, Class::Violation)]);
}

#[test]
fn read_committed_returning_an_undecided_record_is_read_aborted() {
    let mut story = Story::new(2, &[READ_COMMITTED]);
    story.txn_replica(1, &[Entry::Txn(7, "a")], 1).note(FIRST, consumed(0, "a"));
    assert_eq!(story.fired(), vec![(Rule::ReadAborted, Class::Violation)]);
}

#[test]
fn read_uncommitted_may_return_an_aborted_record() {
    let mut story = Story::new(2, &[READER]);
    story.txn_replica(1, &[Entry::Txn(7, "a"), Entry::Marker(7, Abort)], 2).note(FIRST, consumed(0, "a"));
    assert_eq!(story.fired(), vec![]);
}

#[test]
fn stepping_over_markers_and_aborted_records_is_not_skipping_offsets_read_committed() {
    let entries = [
        Entry::Plain("p"),
        Entry::Txn(7, "x"),
        Entry::Marker(7, Abort),
        Entry::Txn(8, "c"),
        Entry::Marker(8, Commit),
        Entry::Plain("b"),
    ];
    let mut story = Story::new(2, &[READ_COMMITTED]);
    story
        .txn_replica(1, &entries, 6)
        .note(FIRST, position_reset(0))
        .note(FIRST, consumed(0, "p"))
        .note(FIRST, consumed(3, "c"))
        .note(FIRST, consumed(5, "b"));
    assert_eq!(story.fired(), vec![]);
    // read_uncommitted must return the aborted record: stepping over it skips an offset
    let mut story = Story::new(2, &[READER]);
    story
        .txn_replica(1, &entries, 6)
        .note(FIRST, position_reset(0))
        .note(FIRST, consumed(0, "p"))
        .note(FIRST, consumed(3, "c"));
    assert_eq!(story.fired(), vec![(Rule::SkippedOffsets, Class::Violation)]);
}

#[test]
fn two_producers_given_one_epoch_of_a_transactional_id_is_a_bug() {
    let mut story = Story::new(2, &[TXN_PRODUCER, TXN_PRODUCER_2]);
    story.note(FIRST, txn_initialized(0)).note(SECOND, txn_initialized(1));
    assert_eq!(story.fired(), vec![], "a fenced producer and its successor hold different epochs");
    story.note(SECOND, txn_initialized(0));
    assert_eq!(story.fired(), vec![(Rule::TwoProducersInEpoch, Class::Bug)]);
}

fn txn_committed(offset: i64) -> Note {
    Note::TxnEnded {
        transactional_id: "tx".into(),
        producer_id: 7,
        producer_epoch: 0,
        committed: true,
        records: vec![(tp(), offset)],
        epoch_bump: false,
    }
}

#[test]
fn a_committed_transaction_missing_from_the_leaders_log_is_lost_under_acks_all_min_isr_2() {
    let mut story = Story::new(2, &[TXN_PRODUCER]);
    story.controller_says_leader(1, 1).note(FIRST, txn_committed(0)).txn_replica(1, &[Entry::Txn(7, "a")], 1).finish();
    assert_eq!(story.fired(), vec![(Rule::CommittedTransactionLost, Class::Violation)], "its COMMIT marker is gone");
    let mut kept = Story::new(2, &[TXN_PRODUCER]);
    kept.controller_says_leader(1, 1)
        .note(FIRST, txn_committed(0))
        .txn_replica(1, &[Entry::Txn(7, "a"), Entry::Marker(7, Commit)], 2)
        .finish();
    assert_eq!(kept.fired(), vec![]);
}

#[test]
fn a_committed_transaction_lost_with_min_isr_1_is_a_lesson() {
    let mut story = Story::new(1, &[TXN_PRODUCER]);
    story
        .controller_says_leader(1, 1)
        .note(FIRST, txn_committed(0))
        .txn_replica(1, &[Entry::Plain("other")], 1)
        .finish();
    assert_eq!(story.fired(), vec![(Rule::CommittedTransactionLost, Class::Lesson)]);
}

// ---- compaction ----

/// `t-0` compacted: k1=a, k2=b, k1=c, k2=d, k3=e at offsets 0..5, one segment each.
fn keyed_log() -> (Log, TopicConfig) {
    let config = TopicConfig {
        cleanup_policy: ksim_cluster::config::CleanupPolicy::Compact,
        segment_bytes: 1,
        ..TopicConfig::default()
    };
    let mut log = Log::new(0);
    for (key, value) in [("k1", "a"), ("k2", "b"), ("k1", "c"), ("k2", "d"), ("k3", "e")] {
        let records = vec![Record::keyed(Some(key), value)];
        log.append_as_leader(RecordBatch::new_unassigned(-1, -1, -1, 0, records), 1, &config, 0);
    }
    (log, config)
}

fn keyed_note_consumed(offset: i64, key: &str, value: &str) -> Note {
    Note::Consumed {
        partition: tp(),
        offset,
        key: Some(key.into()),
        value: Some(value.into()),
        headers: Vec::new(),
        engine: 0,
    }
}

fn cleaned(log: &mut Log, config: &TopicConfig) -> Note {
    let cleaning = log.clean(config, 10_000, 5).expect("the log is dirty");
    Note::LogCleaned { partition: tp(), cleaning }
}

#[test]
fn a_reader_stepping_over_cleaned_superseded_records_skips_nothing_and_loses_nothing() {
    let mut story = Story::new(1, &[ACKS_ALL_IDEMPOTENT, READER]);
    let (log, config) = keyed_log();
    story.replica_log(1, log.clone(), 5).controller_says_leader(1, 1);
    story.note(
        FIRST,
        Note::ProduceAcked { send_id: 1, partition: tp(), offset: 1, key: Some("k2".into()), value: Some("b".into()) },
    );
    story.note(SECOND, keyed_note_consumed(0, "k1", "a"));
    let mut compacted = log;
    let note = cleaned(&mut compacted, &config);
    story.replica_log(1, compacted, 5).note(NodeId::Broker(1), note);
    // Offset 1 (k2=b) is gone, superseded by k2=d at 3: the reader jumps from 0 to 2.
    story.note(SECOND, keyed_note_consumed(2, "k1", "c")).finish();
    assert_eq!(story.fired(), vec![]);
}

#[test]
fn a_cleaner_that_removes_a_keys_latest_value_is_compacted_latest_lost_violation() {
    let mut story = Story::new(1, &[]);
    let (log, _) = keyed_log();
    story.replica_log(1, log, 5);
    // A broken cleaner: k1=c (offset 2), k1's latest value, is gone.
    let config = TopicConfig::default();
    let mut broken = Log::new(0);
    for batch in keyed_log().0.read(0, 2, usize::MAX) {
        broken.append_as_follower(batch, &config, 0);
    }
    for batch in keyed_log().0.read(3, 5, usize::MAX) {
        broken.append_as_follower(batch, &config, 0);
    }
    let note = Note::LogCleaned {
        partition: tp(),
        cleaning: ksim_cluster::log::Cleaning {
            dirty_from: 0,
            end_offset: 4,
            dirty_ratio_ppm: 1_000_000,
            removed: vec![(2, 2)],
            records_removed: 1,
            tombstones_removed: 0,
            tombstones_kept: 0,
            markers_removed: 0,
        },
    };
    story.replica_log(1, broken, 5).note(NodeId::Broker(1), note);
    assert_eq!(story.fired(), vec![(Rule::CompactedLatestLost, Class::Violation)]);
    assert!(story.findings[0].message.contains("removed k1=c at offset 2"), "{}", story.findings[0].message);
}

#[test]
fn a_tombstone_removed_while_an_older_value_stays_is_compacted_latest_lost_violation() {
    let mut story = Story::new(1, &[]);
    let config = TopicConfig::default();
    let mut log = Log::new(0);
    let writes = [
        Record::keyed(Some("k1"), "a"),
        Record { key: Some("k1".into()), value: None, headers: Vec::new() },
        Record::keyed(Some("k2"), "b"),
    ];
    for record in writes {
        log.append_as_leader(RecordBatch::new_unassigned(-1, -1, -1, 0, vec![record]), 1, &config, 0);
    }
    story.replica_log(1, log.clone(), 3);
    // The tombstone at 1 went but k1=a at 0 stayed: a reader from 0 sees k1 come back.
    let mut broken = Log::new(0);
    for batch in log.read(0, 1, usize::MAX).into_iter().chain(log.read(2, 3, usize::MAX)) {
        broken.append_as_follower(batch, &config, 0);
    }
    let note = Note::LogCleaned {
        partition: tp(),
        cleaning: ksim_cluster::log::Cleaning {
            dirty_from: 0,
            end_offset: 2,
            dirty_ratio_ppm: 1_000_000,
            removed: vec![(1, 1)],
            records_removed: 1,
            tombstones_removed: 1,
            tombstones_kept: 0,
            markers_removed: 0,
        },
    };
    story.replica_log(1, broken, 3).note(NodeId::Broker(1), note);
    assert_eq!(story.fired(), vec![(Rule::CompactedLatestLost, Class::Violation)]);
    assert!(story.findings[0].message.contains("deleted key come back"), "{}", story.findings[0].message);
}

#[test]
fn a_replica_that_never_received_a_tombstone_keeps_the_old_value_as_a_compacted_latest_lost_lesson() {
    // Broker 1 holds k1=a, then a gap where the leader's cleaner had already removed the
    // tombstone (past delete.retention.ms) before broker 1 fetched it; its own cleaner removed
    // nothing of k1. Kafka bounds this with delete.retention.ms and does not prevent it.
    let mut story = Story::new(1, &[]);
    let config = TopicConfig::default();
    let mut log = Log::new(0);
    let writes = [
        Record::keyed(Some("k1"), "a"),
        Record { key: Some("k1".into()), value: None, headers: Vec::new() },
        Record::keyed(Some("k2"), "b"),
        Record::keyed(Some("k2"), "c"),
    ];
    for record in writes {
        log.append_as_leader(RecordBatch::new_unassigned(-1, -1, -1, 0, vec![record]), 1, &config, 0);
    }
    story.replica_log(1, log.clone(), 4);
    let mut lagging = Log::new(0);
    for batch in log.read(0, 1, usize::MAX).into_iter().chain(log.read(2, 4, usize::MAX)) {
        lagging.append_as_follower(batch, &config, 0);
    }
    let note = Note::LogCleaned {
        partition: tp(),
        cleaning: ksim_cluster::log::Cleaning {
            dirty_from: 0,
            end_offset: 3,
            dirty_ratio_ppm: 1_000_000,
            removed: vec![],
            records_removed: 0,
            tombstones_removed: 0,
            tombstones_kept: 0,
            markers_removed: 0,
        },
    };
    story.replica_log(1, lagging, 4).note(NodeId::Broker(1), note);
    assert_eq!(story.fired(), vec![(Rule::CompactedLatestLost, Class::Lesson)]);
}

const EOS_PIPELINE: &str = r#"(name: "invoicer", app: ConsumeTransformProduce(topics: ["t"], output: "t", processing: ExactlyOnce), configs: {"group.id": "g", "transactional.id": "invoicer-tx"})"#;
const ALO_PIPELINE: &str = r#"(name: "invoicer", app: ConsumeTransformProduce(topics: ["t"], output: "t", processing: AtLeastOnce), configs: {"group.id": "g"})"#;

#[test]
fn an_exactly_once_pipeline_whose_committed_output_holds_an_input_twice_breaks_its_promise() {
    let twice = [
        Entry::Txn(7, "invoice for in-0@0: a"),
        Entry::Marker(7, Commit),
        Entry::Txn(7, "invoice for in-0@0: a"),
        Entry::Marker(7, Commit),
    ];
    let mut story = Story::new(2, &[EOS_PIPELINE]);
    story.controller_says_leader(1, 1).txn_replica(1, &twice, 4).finish();
    assert!(story.fired().contains(&(Rule::EffectNotExactlyOnce, Class::Violation)), "{:?}", story.fired());
    // The first copy aborted (the crash the pipeline recovered from): one effect, nothing fired.
    let recovered = [
        Entry::Txn(7, "invoice for in-0@0: a"),
        Entry::Marker(7, Abort),
        Entry::Txn(7, "invoice for in-0@0: a"),
        Entry::Marker(7, Commit),
    ];
    let mut story = Story::new(2, &[EOS_PIPELINE]);
    story.controller_says_leader(1, 1).txn_replica(1, &recovered, 4).finish();
    assert_eq!(story.fired(), vec![]);
    // An undecided copy (above the LSO) is not read either.
    let open =
        [Entry::Txn(7, "invoice for in-0@0: a"), Entry::Marker(7, Commit), Entry::Txn(8, "invoice for in-0@0: a")];
    let mut story = Story::new(2, &[EOS_PIPELINE]);
    story.controller_says_leader(1, 1).txn_replica(1, &open, 3).finish();
    assert!(!story.fired().iter().any(|(rule, _)| *rule == Rule::EffectNotExactlyOnce), "{:?}", story.fired());
}

#[test]
fn an_at_least_once_pipeline_writing_an_input_twice_is_a_lesson() {
    let twice = [Entry::Plain("invoice for in-0@0: a"), Entry::Plain("invoice for in-0@0: a")];
    let mut story = Story::new(2, &[ALO_PIPELINE]);
    story.controller_says_leader(1, 1).txn_replica(1, &twice, 2).finish();
    assert!(story.fired().contains(&(Rule::EffectNotExactlyOnce, Class::Lesson)), "{:?}", story.fired());
}
