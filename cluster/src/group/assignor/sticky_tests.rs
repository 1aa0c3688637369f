//! Kafka's `AbstractStickyAssignorTest` and `StickyAssignorTest`, ported: each case names the
//! Kafka test it comes from. Kafka runs most of them for rack configurations too; without racks
//! they expect the results below. Where Kafka pins exact partitions we check them; where it only
//! checks validity and balance (random or large groups), so do we.

use super::test_support::{
    check, is_fully_balanced, member, next_round, owning, settle_cooperative, topics, verify_validity_and_balance,
};
use super::AssignorKind::{CooperativeSticky, Sticky};
use super::{Assignment, AssignorKind, MemberSubscription};
use std::collections::BTreeMap;

/// Both sticky assignors give `expected`: nothing moves between members, so the cooperative one
/// withholds nothing (Kafka asserts `partitionsTransferringOwnership` is empty).
#[track_caller]
fn both(topics: &BTreeMap<String, i32>, members: &[MemberSubscription], expected: &[&str]) {
    check(Sticky, topics, members, expected);
    check(CooperativeSticky, topics, members, expected);
}

#[track_caller]
fn valid_and_balanced(
    kind: AssignorKind,
    topics: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
) -> Assignment {
    let assignment = kind.assign(topics, members);
    verify_validity_and_balance(members, &assignment);
    assignment
}

/// Kafka's zero-padded names: `getTopicName(3, 20)` is `t03`, `getConsumerName(3, 9)` is `c3`.
fn padded(prefix: &str, i: usize, max: usize) -> String {
    format!("{prefix}{i:0width$}", width = max.to_string().len())
}

#[test]
fn one_consumer() {
    // testOneConsumerNoTopic
    both(&topics(&[]), &[member("consumer", &[])], &["consumer:"]);
    // testOneConsumerNonexistentTopic (the topic has no partitions)
    both(&topics(&[("topic", 0)]), &[member("consumer", &["topic"])], &["consumer:"]);
    // testOneConsumerOneTopic
    both(&topics(&[("topic", 3)]), &[member("consumer", &["topic"])], &["consumer: topic-0 topic-1 topic-2"]);
    // testOnlyAssignsPartitionsFromSubscribedTopics: claims on a topic it left are dropped
    both(
        &topics(&[("topic", 2)]),
        &[owning("consumer", &["topic"], "topic-0 topic-1 other-0 other-1", Some(1))],
        &["consumer: topic-0 topic-1"],
    );
    // testOneConsumerMultipleTopics
    both(
        &topics(&[("topic1", 1), ("topic2", 2)]),
        &[member("consumer", &["topic1", "topic2"])],
        &["consumer: topic1-0 topic2-0 topic2-1"],
    );
    // testAssignmentUpdatedForDeletedTopic: topic2 does not exist
    let assignment = Sticky
        .assign(&topics(&[("topic1", 1), ("topic3", 100)]), &[member("consumer", &["topic1", "topic2", "topic3"])]);
    assert_eq!(assignment.partitions_of("consumer").len(), 101);
    // testNoExceptionThrownWhenOnlySubscribedTopicDeleted
    both(&topics(&[]), &[owning("consumer", &["topic"], "topic-0 topic-1 topic-2", Some(1))], &["consumer:"]);
}

#[test]
fn two_and_three_consumers() {
    // testTwoConsumersOneTopicOnePartition
    let members = [member("consumer1", &["topic"]), member("consumer2", &["topic"])];
    for kind in [Sticky, CooperativeSticky] {
        let assignment = valid_and_balanced(kind, &topics(&[("topic", 1)]), &members);
        assert!(is_fully_balanced(&assignment));
    }
    // testTwoConsumersOneTopicTwoPartitions
    both(&topics(&[("topic", 2)]), &members, &["consumer1: topic-0", "consumer2: topic-1"]);
    // testMultipleConsumersMixedTopicSubscriptions (the general algorithm)
    both(
        &topics(&[("topic1", 3), ("topic2", 2)]),
        &[
            member("consumer1", &["topic1"]),
            member("consumer2", &["topic1", "topic2"]),
            member("consumer3", &["topic1"]),
        ],
        &["consumer1: topic1-0 topic1-2", "consumer2: topic2-0 topic2-1", "consumer3: topic1-1"],
    );
    // testTwoConsumersTwoTopicsSixPartitions
    let all = ["topic1", "topic2"];
    both(
        &topics(&[("topic1", 3), ("topic2", 3)]),
        &[member("consumer1", &all), member("consumer2", &all)],
        &["consumer1: topic1-0 topic1-2 topic2-1", "consumer2: topic1-1 topic2-0 topic2-2"],
    );
    // testConsumerOwningMinQuotaExpectedMaxQuota
    both(
        &topics(&[("topic1", 2), ("topic2", 3)]),
        &[
            owning("consumer1", &all, "topic1-0 topic2-1", Some(1)),
            owning("consumer2", &all, "topic1-1 topic2-2", Some(1)),
        ],
        &["consumer1: topic1-0 topic2-0 topic2-1", "consumer2: topic1-1 topic2-2"],
    );
    // testAllConsumersAreUnderMinQuota
    both(
        &topics(&[("topic1", 2), ("topic2", 3)]),
        &[
            owning("consumer1", &all, "topic1-0", Some(1)),
            owning("consumer2", &all, "topic1-1", Some(1)),
            owning("consumer3", &all, "", Some(1)),
        ],
        &["consumer1: topic1-0 topic2-1", "consumer2: topic1-1 topic2-2", "consumer3: topic2-0"],
    );
    // testAllConsumersReachExpectedQuotaAndAreConsideredFilled
    both(
        &topics(&[("topic", 4)]),
        &[
            owning("consumer1", &["topic"], "topic-0 topic-1", Some(1)),
            owning("consumer2", &["topic"], "topic-2", Some(1)),
            owning("consumer3", &["topic"], "", Some(1)),
        ],
        &["consumer1: topic-0 topic-1", "consumer2: topic-2", "consumer3: topic-3"],
    );
}

#[test]
fn surplus_moves_to_the_newcomer() {
    // testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers: both old members own 2 but only
    // one may keep 2 (4 partitions, 3 members); Kafka's leader meets consumer2 first.
    let all = ["topic1", "topic2"];
    let t = topics(&[("topic1", 2), ("topic2", 2)]);
    let members = [
        owning("consumer1", &all, "topic1-0 topic2-0", Some(1)),
        owning("consumer2", &all, "topic1-1 topic2-1", Some(1)),
        owning("consumer3", &all, "", Some(1)),
    ];
    check(Sticky, &t, &members, &["consumer1: topic1-0", "consumer2: topic1-1 topic2-1", "consumer3: topic2-0"]);
    // Cooperative: topic2-0 moves from consumer1 to consumer3, so it is withheld for one round.
    let first = CooperativeSticky.assign(&t, &members);
    check(CooperativeSticky, &t, &members, &["consumer1: topic1-0", "consumer2: topic1-1 topic2-1", "consumer3:"]);
    let (_, settled, rounds) = settle_cooperative(&t, &members, first, 1);
    assert_eq!(rounds, 1);
    assert_eq!(settled.partitions_of("consumer3"), super::test_support::partitions("topic2-0"));
}

#[test]
fn add_and_remove_consumers() {
    // testAddRemoveConsumerOneTopic
    let t = topics(&[("topic", 3)]);
    let round1 = [member("consumer1", &["topic"])];
    check(Sticky, &t, &round1, &["consumer1: topic-0 topic-1 topic-2"]);
    let round2 = [
        owning("consumer1", &["topic"], "topic-0 topic-1 topic-2", Some(1)),
        owning("consumer2", &["topic"], "", Some(1)),
    ];
    check(Sticky, &t, &round2, &["consumer1: topic-0 topic-1", "consumer2: topic-2"]);
    check(CooperativeSticky, &t, &round2, &["consumer1: topic-0 topic-1", "consumer2:"]);
    let round3 = [owning("consumer2", &["topic"], "topic-2", Some(1))];
    both(&t, &round3, &["consumer2: topic-0 topic-1 topic-2"]);

    // testAddRemoveTwoConsumersTwoTopics
    let all = ["topic1", "topic2"];
    let t = topics(&[("topic1", 3), ("topic2", 4)]);
    both(
        &t,
        &[member("consumer1", &all), member("consumer2", &all)],
        &["consumer1: topic1-0 topic1-2 topic2-1 topic2-3", "consumer2: topic1-1 topic2-0 topic2-2"],
    );
    let four = [
        owning("consumer1", &all, "topic1-0 topic1-2 topic2-1 topic2-3", Some(1)),
        owning("consumer2", &all, "topic1-1 topic2-0 topic2-2", Some(1)),
        owning("consumer3", &all, "", Some(1)),
        owning("consumer4", &all, "", Some(1)),
    ];
    check(
        Sticky,
        &t,
        &four,
        &[
            "consumer1: topic1-0 topic2-1",
            "consumer2: topic1-1 topic2-0",
            "consumer3: topic1-2 topic2-3",
            "consumer4: topic2-2",
        ],
    );
    // Kafka: partitionsTransferringOwnership = {topic1-2: consumer3, topic2-3: consumer3, topic2-2: consumer4}
    check(
        CooperativeSticky,
        &t,
        &four,
        &["consumer1: topic1-0 topic2-1", "consumer2: topic1-1 topic2-0", "consumer3:", "consumer4:"],
    );
    both(
        &t,
        &[owning("consumer3", &all, "topic1-2 topic2-3", Some(1)), owning("consumer4", &all, "topic2-2", Some(1))],
        &["consumer3: topic1-0 topic1-2 topic2-1 topic2-3", "consumer4: topic1-1 topic2-0 topic2-2"],
    );
}

#[test]
fn topic_balance_after_reassignment() {
    // testTopicBalanceAfterReassignment: each topic stays spread evenly as members come and go.
    let all = ["topic1", "topic2"];
    let t = topics(&[("topic1", 12), ("topic2", 12)]);
    let per_topic = |assignment: &Assignment, expected: usize| {
        for (id, partitions) in assignment.iter() {
            for topic in all {
                assert_eq!(partitions.iter().filter(|p| p.topic == topic).count(), expected, "{id} on {topic}");
            }
        }
    };
    for kind in [Sticky, CooperativeSticky] {
        let mut members = vec![member("consumer1", &all)];
        let assignment = valid_and_balanced(kind, &t, &members);
        per_topic(&assignment, 12);
        members = next_round(&members, &assignment, 1);
        members.push(owning("consumer2", &all, "", Some(1)));
        let (members2, assignment) = settled(kind, &t, &members);
        per_topic(&assignment, 6);
        let mut members = next_round(&members2, &assignment, 1);
        members.push(owning("consumer3", &all, "", Some(1)));
        members.push(owning("consumer4", &all, "", Some(1)));
        let (members3, assignment) = settled(kind, &t, &members);
        per_topic(&assignment, 3);
        let members: Vec<_> = next_round(&members3, &assignment, 1)
            .into_iter()
            .filter(|m| ["consumer3", "consumer4"].contains(&m.member_id.as_str()))
            .collect();
        let assignment = valid_and_balanced(kind, &t, &members);
        per_topic(&assignment, 6);
    }
}

/// The assignment once the cooperative follow-up rebalances are done (eager: the first one).
fn settled(
    kind: AssignorKind,
    topics: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
) -> (Vec<MemberSubscription>, Assignment) {
    let assignment = kind.assign(topics, members);
    let (members, assignment) = match kind {
        CooperativeSticky => {
            let (members, assignment, _) = settle_cooperative(topics, members, assignment, 1);
            (members, assignment)
        }
        _ => (members.to_vec(), assignment),
    };
    verify_validity_and_balance(&members, &assignment);
    (members, assignment)
}

#[test]
fn uneven_subscriptions() {
    // testPoorRoundRobinAssignmentScenario
    let t = topics(&[("topic1", 2), ("topic2", 1), ("topic3", 2), ("topic4", 1), ("topic5", 2)]);
    let five = ["topic1", "topic2", "topic3", "topic4", "topic5"];
    let three = ["topic1", "topic3", "topic5"];
    let members = [
        member("consumer1", &five),
        member("consumer2", &three),
        member("consumer3", &three),
        member("consumer4", &five),
    ];
    for kind in [Sticky, CooperativeSticky] {
        settled(kind, &t, &members);
    }

    // testAddRemoveTopicTwoConsumers: a topic is added to both subscriptions, then the first removed
    for kind in [Sticky, CooperativeSticky] {
        let mut t = topics(&[("topic", 3)]);
        let members = [member("consumer1", &["topic"]), member("consumer2", &["topic"])];
        let (_, first) = settled(kind, &t, &members);
        assert!(is_fully_balanced(&first));
        t.insert("topic2".into(), 3);
        let members: Vec<_> = next_round(&members, &first, 1)
            .into_iter()
            .map(|m| MemberSubscription { topics: vec!["topic".into(), "topic2".into()], ..m })
            .collect();
        let (members, second) = settled(kind, &t, &members);
        for id in ["consumer1", "consumer2"] {
            assert_eq!(second.partitions_of(id).len(), 3);
            assert!(first.partitions_of(id).iter().all(|p| second.partitions_of(id).contains(p)), "{id} stays sticky");
        }
        t.remove("topic");
        let members: Vec<_> = next_round(&members, &second, 1)
            .into_iter()
            .map(|m| MemberSubscription { topics: vec!["topic2".into()], ..m })
            .collect();
        let (_, third) = settled(kind, &t, &members);
        assert!(is_fully_balanced(&third));
        for id in ["consumer1", "consumer2"] {
            assert!(third.partitions_of(id).iter().all(|p| second.partitions_of(id).contains(p)), "{id} stays sticky");
        }
    }

    // testMoveExistingAssignments
    let t = topics(&[("topic1", 1), ("topic2", 1), ("topic3", 1), ("topic4", 1), ("topic5", 1), ("topic6", 1)]);
    let members = [
        owning("consumer1", &["topic1", "topic2"], "topic1-0", Some(1)),
        owning("consumer2", &["topic1", "topic2", "topic3", "topic4"], "topic2-0 topic3-0", Some(1)),
        owning("consumer3", &["topic2", "topic3", "topic4", "topic5", "topic6"], "topic4-0 topic5-0 topic6-0", Some(1)),
    ];
    for kind in [Sticky, CooperativeSticky] {
        settled(kind, &t, &members);
    }

    // testNewSubscription: c0 subscribes to nothing, then to t1
    let t = topics(&[("t1", 1), ("t2", 1), ("t3", 1), ("t4", 1)]);
    let mut members = vec![member("c0", &[]), member("c1", &["t1"]), member("c2", &["t2", "t3", "t4"])];
    for kind in [Sticky, CooperativeSticky] {
        settled(kind, &t, &members);
    }
    members[0].topics.push("t1".into());
    for kind in [Sticky, CooperativeSticky] {
        settled(kind, &t, &members);
    }
}

#[test]
fn members_leave_and_join_large_groups() {
    // testReassignmentAfterOneConsumerLeaves: topic tNN has NN partitions, consumer cNN
    // subscribes to t01..tNN; c10 leaves.
    let t: BTreeMap<String, i32> = (1..20).map(|i| (padded("t", i, 20), i as i32)).collect();
    let members: Vec<MemberSubscription> = (1..20)
        .map(|i| {
            let subscribed: Vec<String> = (1..=i).map(|j| padded("t", j, 20)).collect();
            MemberSubscription { topics: subscribed, ..member(&padded("c", i, 20), &[]) }
        })
        .collect();
    for kind in [Sticky, CooperativeSticky] {
        let (members, first) = settled(kind, &t, &members);
        let remaining: Vec<_> = next_round(&members, &first, 1).into_iter().filter(|m| m.member_id != "c10").collect();
        let (_, second) = settled(kind, &t, &remaining);
        // Stickiness: members other than those taking over c10's partitions keep most of theirs.
        let kept: usize = remaining
            .iter()
            .map(|m| second.partitions_of(&m.member_id).iter().filter(|p| m.owned_partitions.contains(p)).count())
            .sum();
        let owned: usize = remaining.iter().map(|m| m.owned_partitions.len()).sum();
        assert!(kept * 10 >= owned * 9, "{kind}: kept {kept} of {owned}");
    }

    // testReassignmentAfterOneConsumerAdded: 20 partitions, c01..c09, then c10 joins (members
    // report no owned partitions, as in Kafka's test)
    let t = topics(&[("topic", 20)]);
    let mut members: Vec<_> = (1..10).map(|i| member(&padded("c", i, 10), &["topic"])).collect();
    for kind in [Sticky, CooperativeSticky] {
        let first = valid_and_balanced(kind, &t, &members);
        assert!(is_fully_balanced(&first));
    }
    members.push(member("c10", &["topic"]));
    for kind in [Sticky, CooperativeSticky] {
        valid_and_balanced(kind, &t, &members);
    }

    // testSameSubscriptions: topics t01..t14 (tNN has NN partitions), c1..c8 subscribe to all;
    // then c5 leaves
    let t: BTreeMap<String, i32> = (1..15).map(|i| (padded("t", i, 15), i as i32)).collect();
    let all: Vec<String> = t.keys().cloned().collect();
    let members: Vec<_> =
        (1..9).map(|i| MemberSubscription { topics: all.clone(), ..member(&padded("c", i, 9), &[]) }).collect();
    for kind in [Sticky, CooperativeSticky] {
        let first = valid_and_balanced(kind, &t, &members);
        let remaining: Vec<_> = next_round(&members, &first, 1).into_iter().filter(|m| m.member_id != "c5").collect();
        let second = valid_and_balanced(kind, &t, &remaining);
        assert!(is_fully_balanced(&second));
    }
}

#[test]
fn stickiness_when_the_leader_leaves() {
    // testStickiness: 3 partitions, 4 members; consumer1 leaves; whoever had a partition keeps it.
    let t = topics(&[("topic1", 3)]);
    let members: Vec<_> = (1..=4).map(|i| member(&format!("consumer{i}"), &["topic1"])).collect();
    for kind in [Sticky, CooperativeSticky] {
        let first = valid_and_balanced(kind, &t, &members);
        assert!(first.iter().all(|(_, p)| p.len() <= 1));
        let remaining: Vec<_> =
            next_round(&members, &first, 1).into_iter().filter(|m| m.member_id != "consumer1").collect();
        let (_, second) = settled(kind, &t, &remaining);
        for m in &remaining {
            assert_eq!(second.partitions_of(&m.member_id).len(), 1);
            assert!(
                m.owned_partitions.iter().all(|p| second.partitions_of(&m.member_id).contains(p)),
                "{} keeps its partition",
                m.member_id
            );
        }
    }
}

#[test]
fn claims_settled_by_generation() {
    let both_topics = ["topic", "topic2"];
    // testOwnedPartitionsAreInvalidatedForConsumerWithStaleGeneration
    both(
        &topics(&[("topic", 3), ("topic2", 3)]),
        &[
            owning("consumer1", &both_topics, "topic-0 topic-2 topic2-1", Some(10)),
            owning("consumer2", &both_topics, "topic-0 topic-2 topic2-1", Some(9)),
        ],
        &["consumer1: topic-0 topic-2 topic2-1", "consumer2: topic-1 topic2-0 topic2-2"],
    );
    // testOwnedPartitionsAreInvalidatedForConsumerWithNoGeneration
    both(
        &topics(&[("topic", 3), ("topic2", 3)]),
        &[
            owning("consumer1", &both_topics, "topic-0 topic-2 topic2-1", Some(10)),
            owning("consumer2", &both_topics, "topic-0 topic-2 topic2-1", None),
        ],
        &["consumer1: topic-0 topic-2 topic2-1", "consumer2: topic-1 topic2-0 topic2-2"],
    );
    // testOwnedPartitionsAreInvalidatedForConsumerWithMultipleGeneration
    both(
        &topics(&[("topic", 3), ("topic2", 3)]),
        &[
            owning("consumer1", &both_topics, "topic-0 topic2-1 topic-1", Some(10)),
            owning("consumer2", &both_topics, "topic-0 topic2-1 topic2-2", Some(8)),
        ],
        &["consumer1: topic-0 topic-1 topic2-1", "consumer2: topic-2 topic2-0 topic2-2"],
    );
    // testEnsurePartitionsAssignedToHighestGeneration
    let three = ["topic", "topic2", "topic3"];
    both(
        &topics(&[("topic", 3), ("topic2", 3), ("topic3", 3)]),
        &[
            owning("consumer1", &three, "topic-0 topic2-0 topic3-0", Some(10)),
            owning("consumer2", &three, "topic-1 topic2-1 topic3-1", Some(9)),
            owning("consumer3", &three, "topic2-1 topic3-0 topic3-2", Some(8)),
        ],
        &[
            "consumer1: topic-0 topic2-0 topic3-0",
            "consumer2: topic-1 topic2-1 topic3-1",
            "consumer3: topic-2 topic2-2 topic3-2",
        ],
    );
    // testNoReassignmentOnCurrentMembers: the new member gets only what nobody keeps
    let four = ["topic", "topic2", "topic3", "topic1"];
    let members = [
        owning("consumer1", &four, "", None),
        owning("consumer2", &four, "topic-0 topic2-0 topic1-0", Some(9)),
        owning("consumer3", &four, "topic3-2 topic2-2 topic1-1", Some(8)),
        owning("consumer4", &four, "topic3-1 topic-1 topic-2", Some(7)),
    ];
    let t = topics(&[("topic", 3), ("topic1", 3), ("topic2", 3), ("topic3", 3)]);
    for kind in [Sticky, CooperativeSticky] {
        let assignment = valid_and_balanced(kind, &t, &members);
        assert_eq!(
            assignment.partitions_of("consumer1"),
            super::test_support::partitions("topic1-2 topic2-1 topic3-0")
        );
        assert!(is_fully_balanced(&assignment));
    }
    // testAssignorWithOldVersionSubscriptions (both assignors' versions)
    both(
        &topics(&[("topic1", 3)]),
        &[
            owning("consumer1", &["topic1"], "topic1-0", Some(1)),
            owning("consumer2", &["topic1"], "topic1-1", Some(1)),
            owning("consumer3", &["topic1"], "", Some(1)),
        ],
        &["consumer1: topic1-0", "consumer2: topic1-1", "consumer3: topic1-2"],
    );
    // StickyAssignorTest.testSchemaBackwardCompatibility: consumer2's claim carries no generation
    let members = [
        owning("consumer1", &["topic"], "topic-0 topic-2", Some(1)),
        owning("consumer2", &["topic"], "topic-1", None),
        member("consumer3", &["topic"]),
    ];
    let assignment = valid_and_balanced(Sticky, &topics(&[("topic", 3)]), &members);
    assert!(assignment.iter().all(|(_, p)| p.len() == 1));
    assert!(["topic-0", "topic-2"].contains(&assignment.partitions_of("consumer1")[0].to_string().as_str()));
    assert_eq!(assignment.partitions_of("consumer2")[0].to_string(), "topic-1");
}

#[test]
fn same_generation_conflicts_leave_the_partition_to_nobody() {
    // StickyAssignorTest.testAllConsumersHaveOwnedPartitionInvalidatedWhenClaimedByMultipleConsumersInSameGenerationWithEqualPartitionsPerConsumer
    // (and AbstractStickyAssignorTest.testPartitionsTransferringOwnershipIncludeThePartitionClaimedByMultipleConsumersInSameGeneration)
    let t = topics(&[("topic", 3)]);
    let members = [
        owning("consumer1", &["topic"], "topic-0 topic-1", Some(1)),
        owning("consumer2", &["topic"], "topic-0 topic-2", Some(1)),
        owning("consumer3", &["topic"], "", Some(1)),
    ];
    check(Sticky, &t, &members, &["consumer1: topic-1", "consumer2: topic-2", "consumer3: topic-0"]);
    // CooperativeStickyAssignorTest: topic-0 counts as owned, so nobody gets it until both revoked it.
    check(CooperativeSticky, &t, &members, &["consumer1: topic-1", "consumer2: topic-2", "consumer3:"]);
    let first = CooperativeSticky.assign(&t, &members);
    let (_, settled, _) = settle_cooperative(&t, &members, first, 1);
    assert_eq!(
        super::test_support::render(&settled),
        ["consumer1: topic-1", "consumer2: topic-2", "consumer3: topic-0"]
    );

    // ...WithUnequalPartitionsPerConsumer
    let t = topics(&[("topic", 4)]);
    check(Sticky, &t, &members, &["consumer1: topic-1 topic-3", "consumer2: topic-2", "consumer3: topic-0"]);
    check(CooperativeSticky, &t, &members, &["consumer1: topic-1 topic-3", "consumer2: topic-2", "consumer3:"]);

    // testSubscriptionNotEqualAndAssignSamePartitionWith3Generation: topic-2 claimed by three
    // members in every order of generations 1, 2, 3.
    let t = topics(&[("topic", 6), ("topic1", 1)]);
    for generations in [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]] {
        let members = [
            owning("consumer1", &["topic"], "topic-0 topic-2", Some(generations[0])),
            owning("consumer2", &["topic"], "topic-1 topic-2 topic-3", Some(generations[1])),
            owning("consumer3", &["topic"], "topic-2 topic-4 topic-5", Some(generations[2])),
            owning("consumer4", &["topic1"], "topic1-0", Some(2)),
        ];
        for kind in [Sticky, CooperativeSticky] {
            let assignment = kind.assign(&t, &members);
            let mut all: Vec<_> = assignment.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
            let total = all.len();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), total, "{kind} {generations:?}: no partition twice");
            if kind == Sticky {
                assert!(assignment.iter().all(|(_, p)| (1..=2).contains(&p.len())), "{kind} {generations:?}");
            }
        }
    }
}

#[test]
fn multiple_generations() {
    // StickyAssignorTest.testAssignmentWithMultipleGenerations1, with equal and unequal subscriptions
    for equal in [true, false] {
        let all = ["topic", "topic2"];
        let c2_topics: &[&str] = if equal { &all } else { &["topic"] };
        let t = topics(&[("topic", 6), ("topic2", 6)]);
        let members = [member("consumer1", &all), member("consumer2", c2_topics), member("consumer3", &all)];
        let r1 = valid_and_balanced(Sticky, &t, &members);
        assert!(r1.iter().all(|(_, p)| p.len() == 4));
        let round2 = [
            owning("consumer1", &all, &list(r1.partitions_of("consumer1")), Some(1)),
            owning("consumer2", c2_topics, &list(r1.partitions_of("consumer2")), Some(1)),
        ];
        let r2 = valid_and_balanced(Sticky, &t, &round2);
        assert!(r2.iter().all(|(_, p)| p.len() == 6));
        if equal {
            assert!(contains_all(r2.partitions_of("consumer1"), r1.partitions_of("consumer1")));
        }
        assert!(contains_all(r2.partitions_of("consumer2"), r1.partitions_of("consumer2")));
        assert!(r1.partitions_of("consumer3").iter().any(|p| r2.partitions_of("consumer2").contains(p)));
        let round3 = [
            owning("consumer2", c2_topics, &list(r2.partitions_of("consumer2")), Some(2)),
            owning("consumer3", &all, &list(r1.partitions_of("consumer3")), Some(1)),
        ];
        let r3 = valid_and_balanced(Sticky, &t, &round3);
        assert!(r3.iter().all(|(_, p)| p.len() == 6));
    }

    // StickyAssignorTest.testAssignmentWithMultipleGenerations2
    for equal in [true, false] {
        let all = ["topic", "topic2", "topic3"];
        let c1_topics: &[&str] = if equal { &all } else { &["topic"] };
        let c3_topics: &[&str] = if equal { &all } else { &["topic", "topic2"] };
        let t = topics(&[("topic", 4), ("topic2", 4), ("topic3", 4)]);
        let members = [member("consumer1", c1_topics), member("consumer2", &all), member("consumer3", c3_topics)];
        let r1 = valid_and_balanced(Sticky, &t, &members);
        assert!(r1.iter().all(|(_, p)| p.len() == 4));
        let r2 =
            valid_and_balanced(Sticky, &t, &[owning("consumer2", &all, &list(r1.partitions_of("consumer2")), Some(1))]);
        assert_eq!(r2.partitions_of("consumer2").len(), 12);
        let round3 = [
            owning("consumer1", c1_topics, &list(r1.partitions_of("consumer1")), Some(1)),
            owning("consumer2", &all, &list(r2.partitions_of("consumer2")), Some(2)),
            owning("consumer3", c3_topics, &list(r1.partitions_of("consumer3")), Some(1)),
        ];
        let r3 = valid_and_balanced(Sticky, &t, &round3);
        assert!(r3.iter().all(|(_, p)| p.len() == 4));
    }

    // StickyAssignorTest.testAssignmentWithConflictingPreviousGenerations
    for equal in [true, false] {
        let all = ["topic", "topic2", "topic3"];
        let c1_topics: &[&str] = if equal { &all } else { &["topic"] };
        let c2_topics: &[&str] = if equal { &all } else { &["topic", "topic2"] };
        let c1_owned = if equal {
            "topic-0 topic-1 topic-2 topic2-2 topic2-3 topic3-0"
        } else {
            "topic-0 topic-1 topic-2 topic-3"
        };
        let c2_owned = "topic-0 topic-1 topic2-0 topic2-1 topic2-2 topic2-3";
        let c3_owned = "topic-2 topic-3 topic3-0 topic3-1 topic3-2 topic3-3";
        let members = [
            owning("consumer1", c1_topics, c1_owned, Some(1)),
            owning("consumer2", c2_topics, c2_owned, Some(2)),
            owning("consumer3", &all, c3_owned, Some(2)),
        ];
        let t = topics(&[("topic", 4), ("topic2", 4), ("topic3", 4)]);
        let assignment = valid_and_balanced(Sticky, &t, &members);
        assert!(assignment.iter().all(|(_, p)| p.len() == 4));
        assert!(contains_all(&super::test_support::partitions(c2_owned), assignment.partitions_of("consumer2")));
        assert!(contains_all(&super::test_support::partitions(c3_owned), assignment.partitions_of("consumer3")));
    }
}

#[test]
fn rack_tests_without_racks() {
    // testRackAwareAssignmentWithUniformSubscription: the non-rack-aware expectation, fresh and
    // with the same partitions already owned (members named as verifyRackAssignment does)
    let all = ["t1", "t2", "t3"];
    let t = topics(&[("t1", 6), ("t2", 7), ("t3", 2)]);
    let expected = [
        "consumer0: t1-0 t1-3 t2-0 t2-3 t2-6",
        "consumer1: t1-1 t1-4 t2-1 t2-4 t3-0",
        "consumer2: t1-2 t1-5 t2-2 t2-5 t3-1",
    ];
    let fresh = [member("consumer0", &all), member("consumer1", &all), member("consumer2", &all)];
    both(&t, &fresh, &expected);
    let owned: Vec<_> = expected
        .iter()
        .map(|line| line.split_once(": ").expect("line"))
        .map(|(id, p)| owning(id, &all, p, None))
        .collect();
    both(&t, &owned, &expected);

    // testRackAwareAssignmentWithNonEqualSubscription: the non-rack-aware expectation
    let subs: [&[&str]; 3] = [&all, &all, &["t1", "t3"]];
    let expected = [
        "consumer0: t1-5 t2-0 t2-2 t2-4 t2-6",
        "consumer1: t1-3 t2-1 t2-3 t2-5 t3-0",
        "consumer2: t1-0 t1-1 t1-2 t1-4 t3-1",
    ];
    let fresh: Vec<_> = (0..3).map(|i| member(&format!("consumer{i}"), subs[i])).collect();
    both(&t, &fresh, &expected);
    let owned: Vec<_> = (0..3)
        .map(|i| owning(&format!("consumer{i}"), subs[i], expected[i].split_once(": ").expect("line").1, None))
        .collect();
    both(&t, &owned, &expected);
    // ... and cooperative-sticky from a badly placed ownership: first the revocations, then the rest.
    let badly = ["t1-0 t1-1 t1-2 t1-3 t1-4", "t1-5 t2-0 t2-1 t2-2 t2-3", "t2-4 t2-5 t2-6 t3-0 t3-1"];
    let members: Vec<_> = (0..3).map(|i| owning(&format!("consumer{i}"), subs[i], badly[i], None)).collect();
    let intermediate = ["consumer0: t1-2 t1-3 t1-4", "consumer1: t2-0 t2-1 t2-2 t2-3", "consumer2: t3-0 t3-1"];
    check(CooperativeSticky, &t, &members, &intermediate);
    let members: Vec<_> = (0..3)
        .map(|i| owning(&format!("consumer{i}"), subs[i], intermediate[i].split_once(": ").expect("line").1, None))
        .collect();
    check(
        CooperativeSticky,
        &t,
        &members,
        &[
            "consumer0: t1-2 t1-3 t1-4 t2-4 t2-5",
            "consumer1: t2-0 t2-1 t2-2 t2-3 t2-6",
            "consumer2: t1-0 t1-1 t1-5 t3-0 t3-1",
        ],
    );
}

#[test]
fn sticky_class_doc_examples() {
    // StickyAssignor's javadoc, example 2: C0 [t0p0], C1 [t1p0, t1p1], C2 [t2p0, t2p1, t2p2];
    // then C0 leaves: C1 [t1p0, t1p1, t0p0], C2 [t2p0, t2p1, t2p2].
    let t = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let members = [member("C0", &["t0"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1", "t2"])];
    both(&t, &members, &["C0: t0-0", "C1: t1-0 t1-1", "C2: t2-0 t2-1 t2-2"]);
    let after = [
        owning("C1", &["t0", "t1"], "t1-0 t1-1", Some(1)),
        owning("C2", &["t0", "t1", "t2"], "t2-0 t2-1 t2-2", Some(1)),
    ];
    both(&t, &after, &["C1: t0-0 t1-0 t1-1", "C2: t2-0 t2-1 t2-2"]);
}

#[test]
fn leader_hash_map_order_decides_who_keeps_more() {
    // "Aa" and "BB" have the same Java hashCode, so the JoinGroup order decides which one Kafka's
    // leader meets first, and that one keeps 3 partitions (7 over 3 members: one gets 3).
    let t = topics(&[("t", 7)]);
    let aa = owning("Aa", &["t"], "t-0 t-1 t-2", Some(4));
    let bb = owning("BB", &["t"], "t-3 t-4 t-5", Some(4));
    let c = owning("C", &["t"], "t-6", Some(4));
    check(Sticky, &t, &[aa.clone(), bb.clone(), c.clone()], &["Aa: t-0 t-1 t-2", "BB: t-3 t-4", "C: t-5 t-6"]);
    check(Sticky, &t, &[bb, aa, c], &["Aa: t-0 t-1", "BB: t-3 t-4 t-5", "C: t-2 t-6"]);
}

fn list(partitions: &[crate::TopicPartition]) -> String {
    partitions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
}

fn contains_all(haystack: &[crate::TopicPartition], needles: &[crate::TopicPartition]) -> bool {
    needles.iter().all(|p| haystack.contains(p))
}
