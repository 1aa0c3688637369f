//! # The range assignor (`range`, Kafka's `RangeAssignor`)
//!
//! Range works **one topic at a time**. For a topic with `P` partitions and `C` subscribed
//! members, it lines the partitions up in number order and the members in a fixed order, and cuts
//! the partitions into `C` contiguous ranges: every member gets `P / C`, and the first `P % C`
//! members get one more. Topics are independent: each is cut the same way.
//!
//! ```text
//! topics t0, t1 with 3 partitions each; members C0, C1
//!   t0: C0 [t0-0 t0-1]  C1 [t0-2]
//!   t1: C0 [t1-0 t1-1]  C1 [t1-2]
//! ```
//!
//! **Why people use it.** Partition *n* of every topic goes to the same member when the topics
//! have equal partition counts and the same subscribers: co-partitioning. A join of `orders-3` with
//! `payments-3` needs both on one consumer, and range gives exactly that (Kafka Streams relies on
//! the same idea). **Its cost:** the extra partitions always go to the first members, topic after
//! topic, so with many topics of, say, 3 partitions and 2 members, the first member gets twice the
//! work of the second. And it is eager: every rebalance revokes everything.
//!
//! **Member order.** Members are sorted by `MemberInfo`'s order: static members (with a
//! `group.instance.id`, KIP-345) first, by instance id; then dynamic members by member id, both in
//! Java string order. Member ids are random per session, so without static membership a restart
//! can shuffle who gets which range; with it, the same instance gets the same range back.
//!
//! Kafka 3.5+ can also align ranges with replica racks (KIP-881) when consumers set `client.rack`;
//! we model consumers without a rack, where Kafka uses exactly the cut described above.

use super::{Assignment, Group};
use crate::TopicPartition;

pub(crate) fn assign(group: &Group) -> Assignment {
    let order = group.member_info_order();
    let mut assigned: Vec<Vec<TopicPartition>> = vec![Vec::new(); group.members.len()];
    for (topic, &count) in &group.partitions_per_topic {
        let subscribers: Vec<usize> =
            order.iter().copied().filter(|&m| group.members[m].topics.iter().any(|t| t == topic)).collect();
        if subscribers.is_empty() {
            continue;
        }
        let members = subscribers.len() as i32;
        let per_member = count / members;
        let with_extra = count % members;
        for (i, &member) in (0i32..).zip(&subscribers) {
            let start = per_member * i + i.min(with_extra);
            let length = per_member + i32::from(i < with_extra);
            assigned[member].extend((start..start + length).map(|p| TopicPartition::new(topic.clone(), p)));
        }
    }
    Assignment::new(
        order.into_iter().map(|m| (group.members[m].member_id.clone(), std::mem::take(&mut assigned[m]))).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check, member, static_member, topics};
    use super::super::AssignorKind::Range;

    // Each case: topics with partition counts, members (id, topics), expected assignment.

    #[test]
    fn kafka_range_assignor_tests() {
        // RangeAssignorTest.testOneConsumerNoTopic
        check(Range, &topics(&[]), &[member("consumer1", &[])], &["consumer1:"]);
        // RangeAssignorTest.testOneConsumerNonexistentTopic
        check(Range, &topics(&[]), &[member("consumer1", &["topic1"])], &["consumer1:"]);
        // RangeAssignorTest.testOneConsumerOneTopic
        check(
            Range,
            &topics(&[("topic1", 3)]),
            &[member("consumer1", &["topic1"])],
            &["consumer1: topic1-0 topic1-1 topic1-2"],
        );
        // RangeAssignorTest.testOnlyAssignsPartitionsFromSubscribedTopics
        check(
            Range,
            &topics(&[("topic1", 3), ("other", 3)]),
            &[member("consumer1", &["topic1"])],
            &["consumer1: topic1-0 topic1-1 topic1-2"],
        );
        // RangeAssignorTest.testOneConsumerMultipleTopics
        check(
            Range,
            &topics(&[("topic1", 1), ("topic2", 2)]),
            &[member("consumer1", &["topic1", "topic2"])],
            &["consumer1: topic1-0 topic2-0 topic2-1"],
        );
        // RangeAssignorTest.testTwoConsumersOneTopicOnePartition
        check(
            Range,
            &topics(&[("topic1", 1)]),
            &[member("consumer1", &["topic1"]), member("consumer2", &["topic1"])],
            &["consumer1: topic1-0", "consumer2:"],
        );
        // RangeAssignorTest.testTwoConsumersOneTopicTwoPartitions
        check(
            Range,
            &topics(&[("topic1", 2)]),
            &[member("consumer1", &["topic1"]), member("consumer2", &["topic1"])],
            &["consumer1: topic1-0", "consumer2: topic1-1"],
        );
        // RangeAssignorTest.testMultipleConsumersMixedTopics
        check(
            Range,
            &topics(&[("topic1", 3), ("topic2", 2)]),
            &[
                member("consumer1", &["topic1"]),
                member("consumer2", &["topic1", "topic2"]),
                member("consumer3", &["topic1"]),
            ],
            &["consumer1: topic1-0", "consumer2: topic1-1 topic2-0 topic2-1", "consumer3: topic1-2"],
        );
        // RangeAssignorTest.testTwoConsumersTwoTopicsSixPartitions
        check(
            Range,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[member("consumer1", &["topic1", "topic2"]), member("consumer2", &["topic1", "topic2"])],
            &["consumer1: topic1-0 topic1-1 topic2-0 topic2-1", "consumer2: topic1-2 topic2-2"],
        );
        // RangeAssignorTest.testTwoStaticConsumersTwoTopicsSixPartitions: ordered by instance id,
        // although consumer-a sorts before consumer-b.
        check(
            Range,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[
                static_member("consumer-b", "instance1", &["topic1", "topic2"]),
                static_member("consumer-a", "instance2", &["topic1", "topic2"]),
            ],
            &["consumer-b: topic1-0 topic1-1 topic2-0 topic2-1", "consumer-a: topic1-2 topic2-2"],
        );
        // RangeAssignorTest.testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions
        check(
            Range,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[
                static_member("consumer-b", "instance1", &["topic1", "topic2"]),
                member("consumer-a", &["topic1", "topic2"]),
            ],
            &["consumer-b: topic1-0 topic1-1 topic2-0 topic2-1", "consumer-a: topic1-2 topic2-2"],
        );
        // RangeAssignorTest.testStaticMemberRangeAssignmentPersistent (first round)
        let both = ["topic1", "topic2"];
        let statics = [
            static_member("consumer1", "instance1", &both),
            static_member("consumer2", "instance2", &both),
            static_member("consumer3", "instance3", &both),
        ];
        let with = |dynamic: &str| {
            let mut members = statics.to_vec();
            members.push(member(dynamic, &both));
            members
        };
        check(
            Range,
            &topics(&[("topic1", 5), ("topic2", 4)]),
            &with("consumer4"),
            &[
                "consumer1: topic1-0 topic1-1 topic2-0",
                "consumer2: topic1-2 topic2-1",
                "consumer3: topic1-3 topic2-2",
                "consumer4: topic1-4 topic2-3",
            ],
        );
        // RangeAssignorTest.testStaticMemberRangeAssignmentPersistent (dynamic member replaced)
        check(
            Range,
            &topics(&[("topic1", 5), ("topic2", 4)]),
            &with("consumer5"),
            &[
                "consumer1: topic1-0 topic1-1 topic2-0",
                "consumer2: topic1-2 topic2-1",
                "consumer3: topic1-3 topic2-2",
                "consumer5: topic1-4 topic2-3",
            ],
        );
        // RangeAssignorTest.testStaticMemberRangeAssignmentPersistentAfterMemberIdChanges: the
        // instances keep their ranges when consumer2 and consumer3 come back as consumer5 and
        // consumer4.
        check(
            Range,
            &topics(&[("topic1", 5), ("topic2", 5)]),
            &statics,
            &[
                "consumer1: topic1-0 topic1-1 topic2-0 topic2-1",
                "consumer2: topic1-2 topic1-3 topic2-2 topic2-3",
                "consumer3: topic1-4 topic2-4",
            ],
        );
        check(
            Range,
            &topics(&[("topic1", 5), ("topic2", 5)]),
            &[
                static_member("consumer1", "instance1", &both),
                static_member("consumer5", "instance2", &both),
                static_member("consumer4", "instance3", &both),
            ],
            &[
                "consumer1: topic1-0 topic1-1 topic2-0 topic2-1",
                "consumer5: topic1-2 topic1-3 topic2-2 topic2-3",
                "consumer4: topic1-4 topic2-4",
            ],
        );
        // RangeAssignorTest.testRackAwareAssignmentWithUniformSubscription (its non-rack-aware
        // expectation; consumers named consumer0..consumer2 as in verifyRackAssignment)
        let all = ["t1", "t2", "t3"];
        check(
            Range,
            &topics(&[("t1", 6), ("t2", 7), ("t3", 2)]),
            &[member("consumer0", &all), member("consumer1", &all), member("consumer2", &all)],
            &[
                "consumer0: t1-0 t1-1 t2-0 t2-1 t2-2 t3-0",
                "consumer1: t1-2 t1-3 t2-3 t2-4 t3-1",
                "consumer2: t1-4 t1-5 t2-5 t2-6",
            ],
        );
        // RangeAssignorTest.testRackAwareAssignmentWithNonEqualSubscription (non-rack-aware)
        check(
            Range,
            &topics(&[("t1", 6), ("t2", 7), ("t3", 2)]),
            &[member("consumer0", &all), member("consumer1", &all), member("consumer2", &["t1", "t3"])],
            &[
                "consumer0: t1-0 t1-1 t2-0 t2-1 t2-2 t2-3 t3-0",
                "consumer1: t1-2 t1-3 t2-4 t2-5 t2-6 t3-1",
                "consumer2: t1-4 t1-5",
            ],
        );
        // RangeAssignorTest.testRackAwareAssignmentWithUniformPartitions (non-rack-aware)
        check(
            Range,
            &topics(&[("t1", 5), ("t2", 5), ("t3", 5)]),
            &[member("consumer0", &all), member("consumer1", &all), member("consumer2", &all)],
            &[
                "consumer0: t1-0 t1-1 t2-0 t2-1 t3-0 t3-1",
                "consumer1: t1-2 t1-3 t2-2 t2-3 t3-2 t3-3",
                "consumer2: t1-4 t2-4 t3-4",
            ],
        );
        // RangeAssignorTest.testRackAwareAssignmentWithUniformPartitionsNonEqualSubscription
        check(
            Range,
            &topics(&[("t1", 5), ("t2", 5), ("t3", 5)]),
            &[member("consumer0", &all), member("consumer1", &all), member("consumer2", &["t1", "t3"])],
            &[
                "consumer0: t1-0 t1-1 t2-0 t2-1 t2-2 t3-0 t3-1",
                "consumer1: t1-2 t1-3 t2-3 t2-4 t3-2 t3-3",
                "consumer2: t1-4 t3-4",
            ],
        );
        // RangeAssignorTest.testRackAwareAssignmentWithCoPartitioning (non-rack-aware expectations)
        check(
            Range,
            &topics(&[("t1", 6), ("t2", 6), ("t3", 2), ("t4", 2)]),
            &[
                member("consumer0", &["t1", "t2"]),
                member("consumer1", &["t1", "t2"]),
                member("consumer2", &["t3", "t4"]),
                member("consumer3", &["t3", "t4"]),
            ],
            &[
                "consumer0: t1-0 t1-1 t1-2 t2-0 t2-1 t2-2",
                "consumer1: t1-3 t1-4 t1-5 t2-3 t2-4 t2-5",
                "consumer2: t3-0 t4-0",
                "consumer3: t3-1 t4-1",
            ],
        );
        let four = ["t1", "t2", "t3", "t4"];
        check(
            Range,
            &topics(&[("t1", 6), ("t2", 6), ("t3", 2), ("t4", 2)]),
            &[
                member("consumer0", &four),
                member("consumer1", &four),
                member("consumer2", &four),
                member("consumer3", &four),
            ],
            &[
                "consumer0: t1-0 t1-1 t2-0 t2-1 t3-0 t4-0",
                "consumer1: t1-2 t1-3 t2-2 t2-3 t3-1 t4-1",
                "consumer2: t1-4 t2-4",
                "consumer3: t1-5 t2-5",
            ],
        );
        // RangeAssignorTest.testCoPartitionedAssignmentWithSameSubscription (non-rack-aware;
        // t7..t9 do not exist)
        let nine = ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"];
        check(
            Range,
            &topics(&[("t1", 6), ("t2", 6), ("t3", 2), ("t4", 2), ("t5", 4), ("t6", 4)]),
            &[member("consumer0", &nine), member("consumer1", &nine), member("consumer2", &nine)],
            &[
                "consumer0: t1-0 t1-1 t2-0 t2-1 t3-0 t4-0 t5-0 t5-1 t6-0 t6-1",
                "consumer1: t1-2 t1-3 t2-2 t2-3 t3-1 t4-1 t5-2 t6-2",
                "consumer2: t1-4 t1-5 t2-4 t2-5 t5-3 t6-3",
            ],
        );
    }

    #[test]
    fn range_class_doc_examples() {
        // RangeAssignor's javadoc: C0 [t0p0, t0p1, t1p0, t1p1], C1 [t0p2, t1p2].
        check(
            Range,
            &topics(&[("t0", 3), ("t1", 3)]),
            &[member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])],
            &["C0: t0-0 t0-1 t1-0 t1-1", "C1: t0-2 t1-2"],
        );
        // More members than partitions: the last ones get nothing.
        check(
            Range,
            &topics(&[("t", 2)]),
            &[member("a", &["t"]), member("b", &["t"]), member("c", &["t"])],
            &["a: t-0", "b: t-1", "c:"],
        );
    }
}
