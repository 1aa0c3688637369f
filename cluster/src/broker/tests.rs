//! Brokers and a controller as pure state machines on the [`crate::testing::Harness`]: each test
//! builds its setup step by step and says what Kafka does in it.

use crate::config::{Acks, TopicConfig};
use crate::error::ErrorCode;
use crate::log::TruncateReason;
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::{Message, Request, Response};
use crate::testing::Harness;
use crate::topic::{BrokerId, TopicPartition};

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// `(to_offset, removed, reason)` of every truncation `broker` noted for `tp`, in order.
fn truncations(h: &Harness, broker: BrokerId, tp: &TopicPartition) -> Vec<(i64, i64, TruncateReason)> {
    h.notes
        .iter()
        .filter(|(_, node, _)| *node == NodeId::Broker(broker))
        .filter_map(|(_, _, note)| match note {
            Note::Truncated { partition, to_offset, removed, reason } if partition == tp => {
                Some((*to_offset, *removed, *reason))
            }
            _ => None,
        })
        .collect()
}

/// The OffsetsForLeaderEpoch rounds `follower` went through for `tp`: the epoch it asked about,
/// and the leader's answer `(epoch, end offset)`.
fn epoch_rounds(h: &Harness, follower: BrokerId, tp: &TopicPartition) -> (Vec<i32>, Vec<(i32, i64)>) {
    let me = NodeId::Broker(follower);
    let mut asked = Vec::new();
    let mut answers = Vec::new();
    for (_, from, to, message) in &h.delivered {
        match message {
            Message::Request { body: Request::OffsetsForLeaderEpoch(r), .. } if *from == me => {
                asked.extend(r.partitions.iter().filter(|(p, _, _)| p == tp).map(|(_, _, asked)| *asked));
            }
            Message::Response { body: Response::OffsetsForLeaderEpoch(r), .. } if *to == me => {
                answers
                    .extend(r.partitions.iter().filter(|a| &a.partition == tp).map(|a| (a.leader_epoch, a.end_offset)));
            }
            _ => {}
        }
    }
    (asked, answers)
}

fn values(records: &[(i64, i32, String)]) -> Vec<&str> {
    records.iter().map(|(_, _, v)| v.as_str()).collect()
}

/// Run until `follower` holds as many records as the leader and fetches from it.
fn await_caught_up(h: &mut Harness, follower: BrokerId, leader: BrokerId, tp: &TopicPartition) {
    let tp = tp.clone();
    h.run_until(
        |h| {
            h.broker(follower).replica(&tp).is_some_and(|r| {
                r.log_end_offset() == h.replica(leader, &tp).log_end_offset()
                    && matches!(r.follower_of(), Some((l, crate::broker::replica::FollowerPhase::Fetching)) if l == leader)
            })
        },
        120_000,
    );
}

/// Broker 1 leads and commits `a b c` on both brokers; a cut keeps `d e` (acks=1) on broker 1
/// alone; broker 1 dies and broker 2 leads the next epoch. Returns the two leader epochs.
fn diverge_then_fail_over(h: &mut Harness, tp: &TopicPartition) -> (i32, i32) {
    h.await_leader(tp, 1);
    let (_, first) = h.leader(tp);
    h.produce_ok(1, tp, Acks::All, &["a", "b", "c"]);
    h.cut(NodeId::Broker(1), NodeId::Broker(2));
    h.produce_ok(1, tp, Acks::Leader, &["d", "e"]);
    h.kill(1);
    h.heal();
    h.await_leader(tp, 2);
    let (_, second) = h.leader(tp);
    (first, second)
}

/// KIP-101. Broker 1 leads epoch 0 and appends two records broker 2 never gets (a network cut),
/// then dies; broker 2 leads the next epoch and appends four records of its own at the same
/// offsets. Broker 1 restarts with its high watermark checkpoint never written (HW 0).
///
/// The follower asks for its latest epoch (0) (ksim with an OffsetsForLeaderEpoch round trip,
/// Kafka 2.7+ in its Fetch, answered as `divergingEpoch`); the leader answers with
/// where epoch 0 ends in its log (3, the start of its own epoch), and the follower truncates to
/// `min(that, its own end of epoch 0)` (`AbstractFetcherThread.getOffsetTruncationState`, the
/// `followerEpoch == leaderEpochOffset.leaderEpoch` branch). It keeps the three committed records
/// it shares with the leader: truncating to its HW, as before KIP-101, would drop all five and,
/// had the leader died meanwhile, lose committed records.
#[test]
fn diverged_follower_truncates_to_the_leaders_epoch_end_kip_101() {
    let tp = tp();
    let mut h = Harness::new(&[1, 2], vec![Harness::topic("t", &[1, 2], TopicConfig::default())]);
    let (first_epoch, second_epoch) = diverge_then_fail_over(&mut h, &tp);
    assert!(second_epoch > first_epoch);
    h.produce_ok(2, &tp, Acks::Leader, &["F", "G", "H", "I"]);

    h.start(1);
    assert_eq!(h.replica(1, &tp).high_watermark, 0, "no HW checkpoint was written");
    assert_eq!(h.replica(1, &tp).log_end_offset(), 5, "the crash kept the page cache");
    await_caught_up(&mut h, 1, 2, &tp);

    assert_eq!(epoch_rounds(&h, 1, &tp), (vec![first_epoch], vec![(first_epoch, 3)]));
    assert_eq!(truncations(&h, 1, &tp), vec![(3, 2, TruncateReason::DivergedFromLeader)]);
    assert_eq!(h.records(1, &tp), h.records(2, &tp), "the follower's log is the leader's");
    assert_eq!(values(&h.records(1, &tp)), ["a", "b", "c", "F", "G", "H", "I"]);
    assert_eq!(h.replica(1, &tp).log.epoch_cache(), h.replica(2, &tp).log.epoch_cache());
}

/// KIP-279. The two brokers' histories diverge more than one epoch back, because leadership
/// alternated while the other broker was down (unclean elections):
///
/// ```text
///   offset      0 1 2 | 3 4 | 5        6 7
///   broker 1    a b c | d e | x          (epochs E0, E0, E2)
///   broker 2    a b c | F G H | I J      (epochs E0, E1, E3)
/// ```
///
/// Broker 1 restarts as follower of broker 2 (epoch E3) and asks about its latest epoch, E2. The
/// leader never had E2: it answers with the largest epoch not above it, E1, ending at 6. Broker 1
/// never had E1: its largest epoch not above E1 is E0, ending (in its log) at 5. In Kafka's
/// `AbstractFetcherThread.getOffsetTruncationState` the branch "the follower does not know about
/// the epoch that leader replied with" truncates to `min(followerEndOffset, replicaEndOffset)` = 5
/// with `truncationCompleted = false`, and the follower asks again, now about its latest epoch E0
/// (ksim with a second OffsetsForLeaderEpoch; Kafka 2.7+ with its next Fetch).
/// The leader answers E0 ending at 3; the epochs agree, and the follower truncates to
/// `min(followerEndOffset, leaderEpochOffset.endOffset)` = min(5, 3) = 3 and starts fetching.
/// (KIP-279: "Fix log divergence between leader and follower after fast leader fail over".) A
/// single KIP-101 round would have kept `x` at offset 5 where the leader has `H`.
#[test]
fn second_truncation_round_when_histories_diverge_two_epochs_back_kip_279() {
    let tp = tp();
    let unclean = TopicConfig { unclean_leader_election_enable: true, ..TopicConfig::default() };
    let mut h = Harness::new(&[1, 2], vec![Harness::topic("t", &[1, 2], unclean)]);
    let (e0, e1) = diverge_then_fail_over(&mut h, &tp);
    h.produce_ok(2, &tp, Acks::Leader, &["F", "G", "H"]);
    h.kill(2);

    h.start(1);
    h.await_leader(&tp, 1);
    let (_, e2) = h.leader(&tp);
    h.produce_ok(1, &tp, Acks::Leader, &["x"]);
    h.kill(1);

    h.start(2);
    h.await_leader(&tp, 2);
    let (_, e3) = h.leader(&tp);
    h.produce_ok(2, &tp, Acks::Leader, &["I", "J"]);
    assert!(e0 < e1 && e1 < e2 && e2 < e3, "epochs {e0} {e1} {e2} {e3}");
    let epochs = |h: &Harness, b| h.replica(b, &tp).log.epoch_cache().entries().to_vec();
    assert_eq!(epochs(&h, 2), [(e0, 0), (e1, 3), (e3, 6)]);

    h.start(1);
    assert_eq!(epochs(&h, 1), [(e0, 0), (e2, 5)]);
    await_caught_up(&mut h, 1, 2, &tp);

    assert_eq!(epoch_rounds(&h, 1, &tp), (vec![e2, e0], vec![(e1, 6), (e0, 3)]));
    assert_eq!(
        truncations(&h, 1, &tp),
        vec![(5, 1, TruncateReason::DivergedFromLeader), (3, 2, TruncateReason::DivergedFromLeader)]
    );
    assert_eq!(h.records(1, &tp), h.records(2, &tp), "the follower's log is the leader's");
    assert_eq!(values(&h.records(1, &tp)), ["a", "b", "c", "F", "G", "H", "I", "J"]);
    assert_eq!(epochs(&h, 1), epochs(&h, 2));
}

fn running(version: &str) -> crate::config::BrokerConfig {
    crate::config::BrokerConfig::for_version(version.parse().expect("a version ksim models"))
}

fn produce_error(h: &mut Harness, leader: BrokerId, tp: &TopicPartition, acks: Acks, values: &[&str]) -> ErrorCode {
    let before = h.client_inbox.len();
    h.produce(leader, tp, acks, values);
    h.run_until(|h| h.client_inbox.len() > before, 60_000);
    match &h.client_inbox[before] {
        Response::Produce(r) => r.error,
        other => panic!("not a produce answer: {other:?}"),
    }
}

/// Effective min ISR (`Partition.effectiveMinIsr`, Kafka 3.7+). RF 2 with
/// `min.insync.replicas=3`: the leader caps the requirement at the replication factor, so with
/// both replicas in sync an acks=all write succeeds. Kafka 3.6 compares the ISR with the
/// configured 3 and rejects every acks=all write with NOT_ENOUGH_REPLICAS.
#[test]
fn min_insync_replicas_above_the_replication_factor_is_capped_from_3_7() {
    let config = TopicConfig { min_insync_replicas: 3, ..TopicConfig::default() };
    let tp = tp();
    let mut h = Harness::new(&[1, 2], vec![Harness::topic("t", &[1, 2], config.clone())]);
    h.await_leader(&tp, 1);
    assert_eq!(h.produce_ok(1, &tp, Acks::All, &["a"]), 0, "RF 2, min.insync.replicas=3: accepted on 4.1");

    let mut h = Harness::with_config(&[1, 2], vec![Harness::topic("t", &[1, 2], config)], running("3.6"));
    h.await_leader(&tp, 1);
    assert_eq!(produce_error(&mut h, 1, &tp, Acks::All, &["a"]), ErrorCode::NotEnoughReplicas, "3.6 rejects it");
}

/// A compacted topic refuses a record without a key (`LogValidator.validateKey`):
/// INVALID_RECORD, and nothing is appended.
#[test]
fn a_keyless_record_on_a_compacted_topic_is_invalid_record() {
    let config = TopicConfig { cleanup_policy: crate::config::CleanupPolicy::Compact, ..TopicConfig::default() };
    let tp = tp();
    let mut h = Harness::new(&[1, 2], vec![Harness::topic("t", &[1, 2], config)]);
    h.await_leader(&tp, 1);
    assert_eq!(produce_error(&mut h, 1, &tp, Acks::All, &["no key"]), ErrorCode::InvalidRecord);
    assert_eq!(h.replica(1, &tp).log_end_offset(), 0);
    assert!(!ErrorCode::InvalidRecord.is_retriable(), "the producer fails the batch, as Java does");
}

/// Strict min ISR (KAFKA-15583, Kafka 3.7+). RF 3, `min.insync.replicas=2`; brokers 2 and 3 die
/// and the controller shrinks the ISR to [1]. An acks=1 write is appended, but the leader does not
/// advance the high watermark while the ISR is below min ISR (`maybeIncrementLeaderHW` returns
/// early), so consumers see nothing new. Kafka 3.6 moves the HW over the ISR of one.
#[test]
fn below_min_isr_the_high_watermark_stays_from_3_7() {
    let config = TopicConfig { min_insync_replicas: 2, ..TopicConfig::default() };
    let tp = tp();
    for (version, hw_moves) in [("4.1", false), ("3.6", true)] {
        let topic = Harness::topic("t", &[1, 2, 3], config.clone());
        let mut h = Harness::with_config(&[1, 2, 3], vec![topic], running(version));
        h.await_leader(&tp, 1);
        h.produce_ok(1, &tp, Acks::All, &["a", "b"]);
        h.run_until(|h| h.replica(1, &tp).high_watermark == 2, 10_000);
        h.kill(2);
        h.kill(3);
        h.run_until(|h| h.broker(1).replica(&tp).is_some_and(|r| r.isr == [1]), 60_000);
        assert_eq!(produce_error(&mut h, 1, &tp, Acks::All, &["x"]), ErrorCode::NotEnoughReplicas);
        h.produce_ok(1, &tp, Acks::Leader, &["c", "d"]);
        let r = h.replica(1, &tp);
        assert_eq!(r.log_end_offset(), 4, "{version}: acks=1 writes are appended");
        let expected_hw = if hw_moves { 4 } else { 2 };
        assert_eq!(r.high_watermark, expected_hw, "{version}: the HW below min ISR");
    }
}

/// `(error, base offset)` of the leader's answer to one batch from producer `pid`, sequence `seq`.
fn produce_answer(h: &mut Harness, leader: BrokerId, (pid, seq): (i64, i32), values: &[&str]) -> (ErrorCode, i64) {
    let before = h.client_inbox.len();
    h.produce_idempotent(leader, &tp(), Acks::All, (pid, seq), values);
    h.run_until(|h| h.client_inbox.len() > before, 60_000);
    match &h.client_inbox[before] {
        Response::Produce(r) => (r.error, r.base_offset),
        other => panic!("not a produce answer: {other:?}"),
    }
}

/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN = 5`: a partition's leader remembers the sequence
/// ranges and offsets of an idempotent producer's last five batches. A batch sent again that
/// matches one of them is answered with its original offset and not appended
/// (`UnifiedLog.analyzeAndValidateProducerState` finds it with `findDuplicateBatch`). Five is why
/// idempotence allows at most five requests in flight: a retry is always among the last five.
/// The sixth batch back is forgotten, and its sequence is not the next one: OUT_OF_ORDER_SEQUENCE_NUMBER
/// (`ProducerAppendInfo.checkSequence`). Followers build the same state from the batches they
/// fetch, so after a failover the new leader recognises the same five.
#[test]
fn a_retry_of_any_of_the_last_five_batches_is_answered_with_its_offset_not_appended() {
    const PID: i64 = 4242;
    let tp = tp();
    let mut h = Harness::new(&[1, 2], vec![Harness::topic("t", &[1, 2], TopicConfig::default())]);
    h.await_leader(&tp, 1);
    // Six batches of two records: sequences 0, 2, ..., 10 at offsets 0, 2, ..., 10.
    let batch = |n: i32| [format!("r{}", 2 * n), format!("r{}", 2 * n + 1)];
    for n in 0..6 {
        let values = batch(n);
        let answer = produce_answer(&mut h, 1, (PID, 2 * n), &[&values[0], &values[1]]);
        assert_eq!(answer, (ErrorCode::None, 2 * n as i64));
    }
    await_caught_up(&mut h, 2, 1, &tp);
    let appended = |h: &Harness| h.notes.iter().filter(|(_, _, n)| matches!(n, Note::Appended { .. })).count();

    for leader in [1, 2] {
        if leader == 2 {
            h.kill(1);
            h.await_leader(&tp, 2);
        }
        let before = appended(&h);
        for n in (1..6).rev() {
            let values = batch(n);
            let answer = produce_answer(&mut h, leader, (PID, 2 * n), &[&values[0], &values[1]]);
            assert_eq!(answer, (ErrorCode::None, 2 * n as i64), "broker-{leader}: sequence {} again", 2 * n);
        }
        assert_eq!(appended(&h), before, "broker-{leader}: the retries are not appended");
        assert_eq!(h.replica(leader, &tp).log_end_offset(), 12);
        let values = batch(0);
        let answer = produce_answer(&mut h, leader, (PID, 0), &[&values[0], &values[1]]);
        assert_eq!(answer, (ErrorCode::OutOfOrderSequenceNumber, -1), "broker-{leader}: the sixth batch back");
        assert_eq!(h.replica(leader, &tp).log_end_offset(), 12);
    }
}

/// The coordinator of group `g` on a fresh cluster: FindCoordinator until `__consumer_offsets`
/// exists and its partition has a leader. (It asks once the brokers are registered: a broker asks
/// the controller to create `__consumer_offsets` only once, and ksim's controller refuses it while
/// too few brokers are unfenced for its replication factor.)
fn find_coordinator(h: &mut Harness, group: &str) -> BrokerId {
    h.run_until(|h| h.now() >= crate::time::SimTime::from_ms(5_000), 10_000);
    for _ in 0..100 {
        let body = Request::FindCoordinator(crate::protocol::FindCoordinatorRequest {
            group_id: group.into(),
            key_type: crate::protocol::CoordinatorType::Group,
        });
        if let Response::FindCoordinator(r) = h.ask(1, body) {
            if let (ErrorCode::None, Some(id)) = (r.error, r.coordinator) {
                // The broker leads the partition once it has loaded it.
                let partition = crate::partitioner::group_coordinator_partition(group, 50);
                let offsets = TopicPartition::new(crate::group::coordinator::OFFSETS_TOPIC, partition);
                h.run_until(|h| h.broker(id).replica(&offsets).is_some_and(|r| r.is_leader()), 60_000);
                return id;
            }
        }
        let deadline = h.now().plus_ms(100);
        h.run_until(|h| h.now() >= deadline, 1_000);
    }
    panic!("no coordinator for {group}");
}

fn join_error(h: &mut Harness, broker: BrokerId, session_timeout_ms: u64) -> ErrorCode {
    let body = Request::JoinGroup(crate::protocol::JoinGroupRequest {
        group_id: "g".into(),
        client_id: "c".into(),
        member_id: String::new(),
        group_instance_id: None,
        session_timeout_ms,
        rebalance_timeout_ms: 300_000,
        protocol_type: crate::protocol::ProtocolType::Consumer,
        protocols: vec![(
            "range".into(),
            crate::protocol::MemberMetadata::Consumer(crate::protocol::Subscription {
                topics: vec!["t".into()],
                owned_partitions: Vec::new(),
                generation: -1,
            }),
        )],
    });
    match h.ask(broker, body) {
        Response::JoinGroup(r) => r.error,
        other => panic!("not a JoinGroup answer: {other:?}"),
    }
}

/// INVALID_SESSION_TIMEOUT: a JoinGroup's `session.timeout.ms` must lie within the broker's
/// `[group.min.session.timeout.ms, group.max.session.timeout.ms]` (6 s and 30 min by default).
/// From 4.0 the new coordinator (`GroupCoordinatorService.joinGroup`) checks it before it looks at
/// who coordinates the group, so any broker answers it; before 4.0 `GroupCoordinator
/// .handleJoinGroup` first answers NOT_COORDINATOR from a broker that is not the coordinator.
#[test]
fn a_session_timeout_outside_the_brokers_bounds_is_invalid_session_timeout() {
    for version in ["4.1", "3.9"] {
        let mut h = Harness::with_config(&[1, 2, 3], Vec::new(), running(version));
        let coordinator = find_coordinator(&mut h, "g");
        let other = [1, 2, 3].into_iter().find(|b| *b != coordinator).expect("three brokers");
        assert_eq!(join_error(&mut h, coordinator, 5_999), ErrorCode::InvalidSessionTimeout, "{version}: below 6 s");
        assert_eq!(
            join_error(&mut h, coordinator, 1_800_001),
            ErrorCode::InvalidSessionTimeout,
            "{version}: above 30 min"
        );
        assert_eq!(join_error(&mut h, coordinator, 6_000), ErrorCode::MemberIdRequired, "{version}: 6 s is allowed");
        let elsewhere = if version == "4.1" { ErrorCode::InvalidSessionTimeout } else { ErrorCode::NotCoordinator };
        assert_eq!(
            join_error(&mut h, other, 5_000),
            elsewhere,
            "{version}: asked a broker that is not the coordinator"
        );
    }
    // The bounds are the broker's settings.
    let mut config = running("4.1");
    config.group_min_session_timeout_ms = 1_000;
    let mut h = Harness::with_config(&[1, 2, 3], Vec::new(), config);
    let coordinator = find_coordinator(&mut h, "g");
    assert_eq!(join_error(&mut h, coordinator, 5_000), ErrorCode::MemberIdRequired);
}

/// A restarted broker sends its first heartbeat as soon as it is registered. If that heartbeat's
/// answer is lost (here the link to the controller is cut; in fuzzing, the broker paused with it
/// in flight), Kafka's `BrokerLifecycleManager` heartbeats again at once on the timeout
/// (`scheduleNextCommunicationImmediately`), so once the link is back the controller unfences it.
/// ksim used to schedule the next heartbeat only from an answer, and the broker stayed fenced
/// for good (rolling-restart fuzz seed 877).
#[test]
fn a_lost_first_heartbeat_does_not_end_the_heartbeats() {
    let mut h = Harness::new(&[1, 2], vec![Harness::topic("t", &[1, 2], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    h.kill(2);
    let later = h.now().plus_ms(12_000);
    h.run_until(|h| h.now() >= later, 20_000);
    h.start(2);
    h.run_until(
        |h| h.broker(2).broker_epoch >= 0 && h.broker(2).has_outstanding(&super::Outstanding::Heartbeat),
        5_000,
    );
    h.cut(NodeId::Broker(2), NodeId::Controller(crate::testing::CONTROLLER_ID));
    let healed_at = h.now().plus_ms(5_000);
    h.run_until(|h| h.now() >= healed_at, 10_000);
    assert!(h.broker(2).is_fenced(), "fenced while it cannot reach the controller");
    h.heal();
    h.run_until(|h| !h.broker(2).is_fenced(), 10_000);
}

// ---- transactions ------------------------------------------------------------------------------

/// The transaction coordinator of `id` on a fresh cluster (its `__transaction_state` partition
/// led and loaded), as FindCoordinator with key type TRANSACTION finds it.
fn find_txn_coordinator(h: &mut Harness, id: &str) -> BrokerId {
    use crate::protocol::{CoordinatorType, FindCoordinatorRequest};
    h.run_until(|h| h.now() >= crate::time::SimTime::from_ms(5_000), 10_000);
    for _ in 0..100 {
        let body = Request::FindCoordinator(FindCoordinatorRequest {
            group_id: id.into(),
            key_type: CoordinatorType::Transaction,
        });
        if let Response::FindCoordinator(r) = h.ask(1, body) {
            if let (ErrorCode::None, Some(broker)) = (r.error, r.coordinator) {
                let partition = crate::partitioner::group_coordinator_partition(id, 50);
                let state = TopicPartition::new(crate::txn::TRANSACTION_STATE_TOPIC, partition);
                h.run_until(|h| h.broker(broker).replica(&state).is_some_and(|r| r.is_leader()), 60_000);
                return broker;
            }
        }
        let deadline = h.now().plus_ms(100);
        h.run_until(|h| h.now() >= deadline, 1_000);
    }
    panic!("no transaction coordinator for {id}");
}

/// The group coordinator of `group` (its `__consumer_offsets` partition led and loaded).
fn find_group_coordinator(h: &mut Harness, group: &str) -> BrokerId {
    use crate::protocol::{CoordinatorType, FindCoordinatorRequest};
    for _ in 0..100 {
        let body = Request::FindCoordinator(FindCoordinatorRequest {
            group_id: group.into(),
            key_type: CoordinatorType::Group,
        });
        if let Response::FindCoordinator(r) = h.ask(1, body) {
            if let (ErrorCode::None, Some(broker)) = (r.error, r.coordinator) {
                let partition = crate::partitioner::group_coordinator_partition(group, 50);
                let offsets = TopicPartition::new(crate::group::coordinator::OFFSETS_TOPIC, partition);
                h.run_until(|h| h.broker(broker).replica(&offsets).is_some_and(|r| r.is_leader()), 60_000);
                return broker;
            }
        }
        let deadline = h.now().plus_ms(100);
        h.run_until(|h| h.now() >= deadline, 1_000);
    }
    panic!("no group coordinator for {group}");
}

/// Transaction version 2: a TxnOffsetCommit with no AddOffsetsToTxn before it. The group
/// coordinator adds the group's `__consumer_offsets` partition to the transaction (starting it)
/// before it writes the offsets; a TxnOffsetCommit of an old epoch is refused.
#[test]
fn tv2_the_group_coordinator_adds_the_offsets_partition_before_a_txn_offset_commit() {
    let mut h = Harness::new(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let group_coordinator = find_group_coordinator(&mut h, "g");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    let commit = |h: &mut Harness, epoch: i16| {
        let body = Request::TxnOffsetCommit(crate::protocol::TxnOffsetCommitRequest {
            transactional_id: "tx".into(),
            group_id: "g".into(),
            producer_id: pid,
            producer_epoch: epoch,
            // no group metadata: the group does not check a member
            generation: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: vec![(tp(), 3)],
            transaction_v2: true,
        });
        match h.ask(group_coordinator, body) {
            Response::TxnOffsetCommit(r) => r.error,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(commit(&mut h, epoch), ErrorCode::None);
    let partition = crate::partitioner::group_coordinator_partition("g", 50);
    let offsets = TopicPartition::new(crate::group::coordinator::OFFSETS_TOPIC, partition);
    let metadata = h.broker(coordinator).txn_coordinator().transaction("tx").unwrap().clone();
    assert_eq!(metadata.state, crate::txn::TransactionState::Ongoing);
    assert_eq!(metadata.topic_partitions.iter().collect::<Vec<_>>(), vec![&offsets], "added by the group coordinator");
    assert_eq!(end_txn_as(&mut h, coordinator, "tx", (pid, epoch), true, true), (ErrorCode::None, pid, epoch + 1));
    h.run_until(
        |h| {
            h.broker(coordinator).txn_coordinator().transaction("tx").unwrap().state
                == crate::txn::TransactionState::CompleteCommit
        },
        10_000,
    );
    assert_eq!(commit(&mut h, epoch), ErrorCode::InvalidProducerEpoch, "the ended transaction's epoch is fenced");
    h.check_invariants();
}

fn init_producer_id(h: &mut Harness, coordinator: BrokerId, id: &str) -> (ErrorCode, i64, i16) {
    let body = Request::InitProducerIdTransactional(crate::protocol::InitProducerIdRequest {
        transactional_id: id.into(),
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    });
    match h.ask(coordinator, body) {
        Response::InitProducerId(r) => (r.error, r.producer_id, r.producer_epoch),
        other => panic!("{other:?}"),
    }
}

fn produce_transactional(
    h: &mut Harness,
    leader: BrokerId,
    (pid, epoch, seq): (i64, i16, i32),
    values: &[&str],
) -> ErrorCode {
    produce_transactional_as(h, leader, (pid, epoch, seq), values, false)
}

/// A transactional produce from a classic client, or (`transaction_v2`) a Produce v12 one.
fn produce_transactional_as(
    h: &mut Harness,
    leader: BrokerId,
    (pid, epoch, seq): (i64, i16, i32),
    values: &[&str],
    transaction_v2: bool,
) -> ErrorCode {
    use crate::protocol::ProduceRequest;
    use crate::record::{Record, RecordBatch};
    let records = values.iter().map(|v| Record::unkeyed(*v)).collect();
    let mut batch = RecordBatch::new_unassigned(pid, epoch, seq, h.now().as_ms(), records);
    batch.is_transactional = true;
    let body = Request::Produce(ProduceRequest {
        acks: Acks::All,
        timeout_ms: 30_000,
        partition: tp(),
        batch,
        transactional_id: Some("tx".into()),
        transaction_v2,
    });
    match h.ask(leader, body) {
        Response::Produce(r) => r.error,
        other => panic!("{other:?}"),
    }
}

/// A consumer's fetch from `leader` at offset 0: the values it holds (markers included, as the
/// wire carries them), the LSO, and the aborted transactions.
fn fetch(
    h: &mut Harness,
    leader: BrokerId,
    level: crate::protocol::IsolationLevel,
) -> crate::protocol::FetchedPartition {
    use crate::protocol::{FetchPartition, FetchRequest};
    let body = Request::Fetch(FetchRequest {
        replica: None,
        max_wait_ms: 0,
        session: Default::default(),
        forgotten: Vec::new(),
        partitions: vec![FetchPartition { partition: tp(), fetch_offset: 0, current_leader_epoch: -1 }],
        isolation_level: level,
    });
    match h.ask(leader, body) {
        Response::Fetch(mut r) => r.partitions.remove(0),
        other => panic!("{other:?}"),
    }
}

fn fetched_values(p: &crate::protocol::FetchedPartition) -> Vec<String> {
    p.batches.iter().flat_map(|b| b.records.iter().map(|r| r.value_text().to_string())).collect()
}

fn end_txn(h: &mut Harness, coordinator: BrokerId, id: &str, (pid, epoch): (i64, i16), committed: bool) -> ErrorCode {
    end_txn_as(h, coordinator, id, (pid, epoch), committed, false).0
}

/// EndTxn from a classic client, or (`transaction_v2`) v5: the error, and the producer id and
/// epoch of the next transaction.
fn end_txn_as(
    h: &mut Harness,
    coordinator: BrokerId,
    id: &str,
    (pid, epoch): (i64, i16),
    committed: bool,
    transaction_v2: bool,
) -> (ErrorCode, i64, i16) {
    let body = Request::EndTxn(crate::protocol::EndTxnRequest {
        transactional_id: id.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed,
        transaction_v2,
    });
    match h.ask(coordinator, body) {
        Response::EndTxn(r) => (r.error, r.producer_id, r.producer_epoch),
        other => panic!("{other:?}"),
    }
}

fn add_partition(h: &mut Harness, coordinator: BrokerId, id: &str, (pid, epoch): (i64, i16)) -> ErrorCode {
    let body = Request::AddPartitionsToTxn(crate::protocol::AddPartitionsToTxnRequest {
        transactional_id: id.into(),
        producer_id: pid,
        producer_epoch: epoch,
        partitions: vec![tp()],
        verify_only: false,
    });
    match h.ask(coordinator, body) {
        Response::AddPartitionsToTxn(r) => r.error,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_committed_transaction_is_hidden_from_read_committed_until_its_marker_is_replicated() {
    use crate::protocol::IsolationLevel::*;
    let mut h = Harness::new(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (error, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    assert_eq!((error, epoch), (ErrorCode::None, 0));
    assert_eq!(add_partition(&mut h, coordinator, "tx", (pid, epoch)), ErrorCode::None);
    assert_eq!(produce_transactional(&mut h, 1, (pid, epoch, 0), &["t1", "t2"]), ErrorCode::None);
    h.produce_ok(1, &tp(), Acks::All, &["plain"]);
    // read_uncommitted sees everything below the HW; read_committed nothing: the LSO is 0
    assert_eq!(fetched_values(&fetch(&mut h, 1, ReadUncommitted)), ["t1", "t2", "plain"]);
    let committed = fetch(&mut h, 1, ReadCommitted);
    assert_eq!((committed.last_stable_offset, fetched_values(&committed).len()), (Some(0), 0));
    assert_eq!(end_txn(&mut h, coordinator, "tx", (pid, epoch), true), ErrorCode::None);
    h.run_until(|h| h.replica(1, &tp()).high_watermark == 4, 10_000);
    let committed = fetch(&mut h, 1, ReadCommitted);
    assert_eq!(committed.last_stable_offset, Some(4));
    assert_eq!(fetched_values(&committed), ["t1", "t2", "plain", "COMMIT"]);
    assert!(committed.batches[2].control.is_some() || committed.batches.last().unwrap().is_control());
    h.run_until(
        |h| {
            h.broker(coordinator).txn_coordinator().transaction("tx").unwrap().state
                == crate::txn::TransactionState::CompleteCommit
        },
        10_000,
    );
    h.check_invariants();
}

#[test]
fn a_second_init_fences_the_first_producer_and_aborts_its_transaction() {
    use crate::protocol::IsolationLevel::*;
    let mut h = Harness::new(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    assert_eq!(add_partition(&mut h, coordinator, "tx", (pid, epoch)), ErrorCode::None);
    assert_eq!(produce_transactional(&mut h, 1, (pid, epoch, 0), &["zombie"]), ErrorCode::None);
    // the replacement: the coordinator fences and aborts first, and asks it to retry
    assert_eq!(init_producer_id(&mut h, coordinator, "tx").0, ErrorCode::ConcurrentTransactions);
    h.run_until(|h| h.replica(1, &tp()).high_watermark == 2, 10_000);
    let committed = fetch(&mut h, 1, ReadCommitted);
    assert_eq!(committed.aborted_transactions.len(), 1, "the abort is indexed");
    assert_eq!(fetched_values(&committed), ["zombie", "ABORT"], "the wire carries them; the consumer drops them");
    let (error, pid2, epoch2) = init_producer_id(&mut h, coordinator, "tx");
    // The cluster runs transaction version 2, so the coordinator's abort of the fenced
    // transaction bumps the epoch again (1 to fence, 2 to abort): the retry gets 3.
    assert_eq!((error, pid2, epoch2), (ErrorCode::None, pid, 3));
    // the zombie is fenced at the partition and at the coordinator
    assert_eq!(produce_transactional(&mut h, 1, (pid, epoch, 1), &["late"]), ErrorCode::InvalidProducerEpoch);
    assert_eq!(end_txn(&mut h, coordinator, "tx", (pid, epoch), true), ErrorCode::ProducerFenced);
    h.check_invariants();
}

/// The marker channel's retry (a12d17d): a producer retrying AddPartitionsToTxn every few ms on
/// CONCURRENT_TRANSACTIONS while its commit's marker waits for a retry must not keep pushing that
/// retry back (`TransactionMarkerChannelManager` retries on its own schedule, whatever requests
/// the coordinator handles meanwhile). Before the fix every handled request re-armed the timer
/// `retry.backoff.ms` later, so under a steady stream of requests the COMMIT marker never went.
#[test]
fn a_producer_retrying_add_partitions_does_not_postpone_the_marker_retry() {
    let mut h = Harness::new(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    assert_eq!(add_partition(&mut h, coordinator, "tx", (pid, epoch)), ErrorCode::None);
    assert_eq!(produce_transactional(&mut h, 1, (pid, epoch, 0), &["t1"]), ErrorCode::None);
    // The marker's WriteTxnMarkers to the leader is lost: after the request timeout the
    // channel queues the marker for a retry.
    h.lose(|m| matches!(m, Message::Request { body: Request::WriteTxnMarkers(_), .. }));
    assert_eq!(end_txn(&mut h, coordinator, "tx", (pid, epoch), true), ErrorCode::None);
    let marker_sent = |h: &Harness| {
        h.delivered
            .iter()
            .filter(|(_, _, to, m)| {
                *to == NodeId::Broker(1) && matches!(m, Message::Request { body: Request::WriteTxnMarkers(_), .. })
            })
            .count()
    };
    let before = marker_sent(&h);
    let healed_at = h.now().plus_ms(20_000);
    h.run_until(|h| h.now() >= healed_at, 30_000);
    h.heal();
    // The producer's next transaction: AddPartitionsToTxn every 10 ms, each answered
    // CONCURRENT_TRANSACTIONS while the commit is PrepareCommit.
    let mut concurrent = 0;
    for _ in 0..2_000 {
        if h.notes.iter().any(|(_, _, n)| matches!(n, Note::MarkerWritten { .. })) {
            break;
        }
        let body = Request::AddPartitionsToTxn(crate::protocol::AddPartitionsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: pid,
            producer_epoch: epoch,
            partitions: vec![tp()],
            verify_only: false,
        });
        let seen = h.client_inbox.len();
        h.request(coordinator, body);
        h.run_for(10);
        concurrent += h.client_inbox[seen..]
            .iter()
            .filter(|r| matches!(r, Response::AddPartitionsToTxn(a) if a.error == ErrorCode::ConcurrentTransactions))
            .count();
    }
    assert!(concurrent >= 10, "the producer kept retrying while the marker waited ({concurrent} answers)");
    assert!(
        h.notes.iter().any(|(_, _, n)| matches!(n, Note::MarkerWritten { .. })),
        "the COMMIT marker was retried and written while the producer kept asking"
    );
    assert!(marker_sent(&h) > before, "the retry went out");
    h.check_invariants();
}

/// A transactional produce that lands after its transaction ended (delayed in the network): with
/// KIP-890's verification (3.6+, the default) the leader asks the coordinator first and refuses
/// it; without, it opens a transaction nobody will end, and the LSO stays behind it.
fn late_produce_after_abort(verification: bool) -> (Harness, ErrorCode) {
    use crate::config::BrokerConfig;
    let config = BrokerConfig { transaction_partition_verification_enable: verification, ..BrokerConfig::default() };
    let mut h = Harness::with_config(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())], config);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    // Not yet added: the coordinator has no transaction with this partition.
    let refused = produce_transactional(&mut h, 1, (pid, epoch, 0), &["early"]);
    assert_eq!(refused, if verification { ErrorCode::TransactionAbortable } else { ErrorCode::None });
    if !verification {
        return (h, refused);
    }
    assert_eq!(add_partition(&mut h, coordinator, "tx", (pid, epoch)), ErrorCode::None);
    assert_eq!(produce_transactional(&mut h, 1, (pid, epoch, 0), &["t1"]), ErrorCode::None);
    // A second batch of the open transaction asks nothing (`hasOngoingTransaction`).
    let asked = |h: &Harness| {
        h.delivered.iter().filter(|(_, _, _, m)| matches!(m, Message::Request { body: Request::AddPartitionsToTxn(r), .. } if r.verify_only)).count()
    };
    let before = asked(&h);
    assert_eq!(produce_transactional(&mut h, 1, (pid, epoch, 1), &["t2"]), ErrorCode::None);
    assert_eq!(asked(&h), before, "a batch of a transaction open here needs no verification");
    assert_eq!(end_txn(&mut h, coordinator, "tx", (pid, epoch), false), ErrorCode::None);
    h.run_until(|h| h.replica(1, &tp()).high_watermark == 3, 10_000);
    h.run_until(
        |h| {
            h.broker(coordinator).txn_coordinator().transaction("tx").unwrap().state
                == crate::txn::TransactionState::CompleteAbort
        },
        10_000,
    );
    // The late batch: same producer, same epoch (an abort does not bump it before KIP-890 part 2).
    let late = produce_transactional(&mut h, 1, (pid, epoch, 2), &["late"]);
    (h, late)
}

#[test]
fn with_verification_a_produce_to_a_partition_outside_the_transaction_is_transaction_abortable() {
    let (mut h, late) = late_produce_after_abort(true);
    assert_eq!(late, ErrorCode::TransactionAbortable, "the coordinator's transaction no longer holds t-0");
    let lso = fetch(&mut h, 1, crate::protocol::IsolationLevel::ReadCommitted).last_stable_offset;
    assert_eq!(lso, Some(3), "nothing hangs: the LSO is the high watermark");
    assert!(h
        .notes
        .iter()
        .any(|(_, _, n)| matches!(n, Note::TxnVerificationFailed { error: ErrorCode::TransactionAbortable, .. })));
    h.check_invariants();
}

/// Transaction version 2 (KIP-890 part 2), with `transaction.partition.verification.enable`
/// off to show it does not matter: a Produce v12 with no AddPartitionsToTxn before it makes the
/// leader add the partition (AddPartitionsToTxn, not verify-only), which starts the transaction;
/// EndTxn v5 bumps the epoch and hands it back; the marker carries it; and a late batch of the
/// ended transaction's epoch is refused: the epoch bump alone cures the hanging transaction.
#[test]
fn tv2_the_leader_adds_the_partition_and_the_end_txn_epoch_bump_fences_a_late_produce() {
    use crate::config::BrokerConfig;
    let config = BrokerConfig { transaction_partition_verification_enable: false, ..BrokerConfig::default() };
    assert_eq!(config.transaction_version, 2, "a 4.x cluster runs transaction version 2");
    let mut h = Harness::with_config(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())], config);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    assert_eq!(produce_transactional_as(&mut h, 1, (pid, epoch, 0), &["t1"], true), ErrorCode::None);
    let added = h.delivered.iter().any(
        |(_, _, _, m)| matches!(m, Message::Request { body: Request::AddPartitionsToTxn(r), .. } if !r.verify_only),
    );
    assert!(added, "the leader's call adds the partition");
    let metadata = h.broker(coordinator).txn_coordinator().transaction("tx").unwrap().clone();
    assert_eq!(metadata.state, crate::txn::TransactionState::Ongoing);
    assert!(metadata.topic_partitions.contains(&tp()));
    assert_eq!(metadata.client_transaction_version, 2, "recorded in the transaction log");
    assert_eq!(end_txn_as(&mut h, coordinator, "tx", (pid, epoch), false, true), (ErrorCode::None, pid, epoch + 1));
    h.run_until(|h| h.replica(1, &tp()).high_watermark == 2, 10_000);
    let marker_epoch = h.notes.iter().find_map(|(_, _, n)| match n {
        Note::MarkerWritten { producer_epoch, .. } => Some(*producer_epoch),
        _ => None,
    });
    assert_eq!(marker_epoch, Some(epoch + 1), "the ABORT marker carries the bumped epoch");
    h.run_until(
        |h| {
            h.broker(coordinator).txn_coordinator().transaction("tx").unwrap().state
                == crate::txn::TransactionState::CompleteAbort
        },
        10_000,
    );
    // The ended transaction's late batch, old epoch, next sequence number.
    let late = produce_transactional_as(&mut h, 1, (pid, epoch, 1), &["late"], true);
    assert_eq!(late, ErrorCode::InvalidProducerEpoch, "fenced by the bump, verification or not");
    let lso = fetch(&mut h, 1, crate::protocol::IsolationLevel::ReadCommitted).last_stable_offset;
    assert_eq!(lso, Some(2), "nothing hangs");
    // The next transaction, at the new epoch, starts from sequence 0.
    assert_eq!(produce_transactional_as(&mut h, 1, (pid, epoch + 1, 0), &["t2"], true), ErrorCode::None);
    h.check_invariants();
}

#[test]
fn without_verification_a_produce_outside_any_transaction_opens_one_that_hangs() {
    let (mut h, early) = late_produce_after_abort(false);
    assert_eq!(early, ErrorCode::None, "the leader appends what the coordinator never heard of");
    h.run_until(|h| h.replica(1, &tp()).high_watermark == 1, 10_000);
    let committed = fetch(&mut h, 1, crate::protocol::IsolationLevel::ReadCommitted);
    assert_eq!(committed.last_stable_offset, Some(0), "the hanging transaction pins the LSO at its first offset");
    h.check_invariants();
}

/// Transaction version 2, two batches sent back to back at the start of a transaction
/// (transaction-coordinator-failover seed 1 under TV2): both wait under one verification guard.
/// The first makes the leader's addition write to `__transaction_state`; the second's addition
/// meets that pending write and is answered CONCURRENT_TRANSACTIONS first. That refusal must not
/// clear the shared guard: when the first addition succeeds its batch must append. ksim cleared
/// the guard and refused the first batch with INVALID_TXN_STATE, aborting the transaction.
#[test]
fn tv2_a_concurrent_refusal_leaves_the_shared_guard_for_the_batch_whose_addition_succeeds() {
    use crate::protocol::ProduceRequest;
    use crate::record::{Record, RecordBatch};
    let mut h = Harness::new(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    let before = h.client_inbox.len();
    for (seq, value) in [(0, "first"), (1, "second")] {
        let mut batch = RecordBatch::new_unassigned(pid, epoch, seq, h.now().as_ms(), vec![Record::unkeyed(value)]);
        batch.is_transactional = true;
        h.request(
            1,
            Request::Produce(ProduceRequest {
                acks: Acks::All,
                timeout_ms: 30_000,
                partition: tp(),
                batch,
                transactional_id: Some("tx".into()),
                transaction_v2: true,
            }),
        );
    }
    h.run_until(|h| h.client_inbox.len() >= before + 2, 10_000);
    let errors: Vec<ErrorCode> = h.client_inbox[before..]
        .iter()
        .map(|r| match r {
            Response::Produce(r) => r.error,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(!errors.contains(&ErrorCode::InvalidTxnState), "{errors:?}");
    assert!(errors.contains(&ErrorCode::None), "the batch whose addition succeeded appended: {errors:?}");
    assert_eq!(h.records(1, &tp()).iter().map(|(_, _, v)| v.as_str()).collect::<Vec<_>>(), ["first"]);
    h.check_invariants();
}

/// Fuzz seed 23 of transaction-coordinator-failover (no-convergence): a transactional producer
/// with two batches in flight to one partition at the start of a transaction. Both wait for
/// verification under one guard; the first verified batch appends and clears the guard (Kafka
/// clears it on any transactional append). The second must still append: the transaction is open
/// on the partition now, and the guard is only consulted for a producer without one
/// (`UnifiedLog.analyzeAndValidateProducerState`). ksim refused it with INVALID_TXN_STATE, the
/// later batch's sequence went out of order and the abort never finished.
#[test]
fn with_verification_two_batches_verified_together_both_append() {
    use crate::protocol::ProduceRequest;
    use crate::record::{Record, RecordBatch};
    let mut h = Harness::new(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    assert_eq!(add_partition(&mut h, coordinator, "tx", (pid, epoch)), ErrorCode::None);
    let before = h.client_inbox.len();
    for (seq, value) in [(0, "first"), (1, "second")] {
        let mut batch = RecordBatch::new_unassigned(pid, epoch, seq, h.now().as_ms(), vec![Record::unkeyed(value)]);
        batch.is_transactional = true;
        h.request(
            1,
            Request::Produce(ProduceRequest {
                acks: Acks::All,
                timeout_ms: 30_000,
                partition: tp(),
                batch,
                transactional_id: Some("tx".into()),
                transaction_v2: false,
            }),
        );
    }
    h.run_until(|h| h.client_inbox.len() >= before + 2, 10_000);
    let errors: Vec<ErrorCode> = h.client_inbox[before..]
        .iter()
        .map(|r| match r {
            Response::Produce(r) => r.error,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(errors, vec![ErrorCode::None, ErrorCode::None]);
    let values: Vec<String> = h.records(1, &tp()).into_iter().map(|(_, _, v)| v).collect();
    assert_eq!(values, vec!["first".to_string(), "second".to_string()]);
    h.check_invariants();
}

#[test]
fn with_verification_a_stale_epoch_is_invalid_producer_epoch() {
    let mut h = Harness::new(&[1, 2, 3], vec![Harness::topic("t", &[1, 2, 3], TopicConfig::default())]);
    h.await_leader(&tp(), 1);
    let coordinator = find_txn_coordinator(&mut h, "tx");
    let (_, pid, epoch) = init_producer_id(&mut h, coordinator, "tx");
    let (_, _, bumped) = init_producer_id(&mut h, coordinator, "tx");
    assert_eq!(bumped, epoch + 1);
    // The coordinator says PRODUCER_FENCED; the leader answers what producers expect from a
    // partition (`AddPartitionsToTxnManager`).
    assert_eq!(produce_transactional(&mut h, 1, (pid, epoch, 0), &["zombie"]), ErrorCode::InvalidProducerEpoch);
    h.check_invariants();
}
