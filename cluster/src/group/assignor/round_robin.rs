//! # The round-robin assignor (`roundrobin`, Kafka's `RoundRobinAssignor`)
//!
//! Round-robin deals partitions out like cards. It lays out **all** partitions of all subscribed
//! topics in one line, sorted by topic name then partition number, and walks the members in a
//! fixed circular order, handing the next partition to the next member. A member that does not
//! subscribe to the partition's topic is skipped (the dealer moves on to the next member and
//! tries again), so with different subscriptions the deal can come out uneven.
//!
//! ```text
//! topics t0, t1 with 3 partitions each; members C0, C1 (both subscribe to both)
//!   t0-0 -> C0, t0-1 -> C1, t0-2 -> C0, t1-0 -> C1, t1-1 -> C0, t1-2 -> C1
//!   C0 [t0-0 t0-2 t1-1]  C1 [t0-1 t1-0 t1-2]
//! ```
//!
//! **Why.** When every member subscribes to the same topics, the counts differ by at most one
//! across the whole group, not per topic as with range: many small topics no longer pile up on the
//! first member. **Its cost:** no co-partitioning (partition 0 of two topics usually lands on
//! different members), no memory of the previous assignment (one member joining can move almost
//! every partition), and with uneven subscriptions the skipping can leave some members idle
//! (`C0 [t0-0]`, `C1 [t1-0]`, `C2 [t1-1 t2-0 t2-1 t2-2]` in Kafka's own example). It is eager.
//!
//! **Member order.** As in [`range`](super::range): static members first by `group.instance.id`,
//! then dynamic members by member id, in Java string order; the dealer starts at the first.

use super::{java_order, Assignment, Group};
use crate::TopicPartition;

pub(crate) fn assign(group: &Group) -> Assignment {
    let order = group.member_info_order();
    let mut assigned: Vec<Vec<TopicPartition>> = vec![Vec::new(); group.members.len()];
    // Every subscribed topic that exists, in Java string order (Kafka uses a TreeSet<String>).
    let mut topics: Vec<(&String, i32)> = group.partitions_per_topic.iter().map(|(t, c)| (t, *c)).collect();
    topics.sort_by(|a, b| java_order::cmp_java(a.0, b.0));
    // Kafka's CircularIterator over the sorted members: `next` is the member the dealer faces.
    let mut next = 0;
    for (topic, count) in topics {
        for partition in 0..count {
            let subscribes = |m: usize| group.members[m].topics.iter().any(|t| t == topic);
            // Some member subscribes to every topic here, so this skips fewer than a full circle.
            while !subscribes(order[next]) {
                next = (next + 1) % order.len();
            }
            assigned[order[next]].push(TopicPartition::new(topic.clone(), partition));
            next = (next + 1) % order.len();
        }
    }
    Assignment::new(
        order.into_iter().map(|m| (group.members[m].member_id.clone(), std::mem::take(&mut assigned[m]))).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check, member, static_member, topics};
    use super::super::AssignorKind::RoundRobin;

    #[test]
    fn kafka_round_robin_assignor_tests() {
        // RoundRobinAssignorTest.testOneConsumerNoTopic
        check(RoundRobin, &topics(&[]), &[member("consumer", &[])], &["consumer:"]);
        // RoundRobinAssignorTest.testOneConsumerNonexistentTopic
        check(RoundRobin, &topics(&[]), &[member("consumer", &["topic"])], &["consumer:"]);
        // RoundRobinAssignorTest.testOneConsumerOneTopic
        check(
            RoundRobin,
            &topics(&[("topic", 3)]),
            &[member("consumer", &["topic"])],
            &["consumer: topic-0 topic-1 topic-2"],
        );
        // RoundRobinAssignorTest.testOnlyAssignsPartitionsFromSubscribedTopics
        check(
            RoundRobin,
            &topics(&[("topic", 3), ("other", 3)]),
            &[member("consumer", &["topic"])],
            &["consumer: topic-0 topic-1 topic-2"],
        );
        // RoundRobinAssignorTest.testOneConsumerMultipleTopics
        check(
            RoundRobin,
            &topics(&[("topic1", 1), ("topic2", 2)]),
            &[member("consumer", &["topic1", "topic2"])],
            &["consumer: topic1-0 topic2-0 topic2-1"],
        );
        // RoundRobinAssignorTest.testTwoConsumersOneTopicOnePartition
        check(
            RoundRobin,
            &topics(&[("topic", 1)]),
            &[member("consumer1", &["topic"]), member("consumer2", &["topic"])],
            &["consumer1: topic-0", "consumer2:"],
        );
        // RoundRobinAssignorTest.testTwoConsumersOneTopicTwoPartitions
        check(
            RoundRobin,
            &topics(&[("topic", 2)]),
            &[member("consumer1", &["topic"]), member("consumer2", &["topic"])],
            &["consumer1: topic-0", "consumer2: topic-1"],
        );
        // RoundRobinAssignorTest.testMultipleConsumersMixedTopics
        check(
            RoundRobin,
            &topics(&[("topic1", 3), ("topic2", 2)]),
            &[
                member("consumer1", &["topic1"]),
                member("consumer2", &["topic1", "topic2"]),
                member("consumer3", &["topic1"]),
            ],
            &["consumer1: topic1-0", "consumer2: topic1-1 topic2-0 topic2-1", "consumer3: topic1-2"],
        );
        // RoundRobinAssignorTest.testTwoDynamicConsumersTwoTopicsSixPartitions
        let both = ["topic1", "topic2"];
        check(
            RoundRobin,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[member("consumer1", &both), member("consumer2", &both)],
            &["consumer1: topic1-0 topic1-2 topic2-1", "consumer2: topic1-1 topic2-0 topic2-2"],
        );
        // RoundRobinAssignorTest.testTwoStaticConsumersTwoTopicsSixPartitions
        check(
            RoundRobin,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[static_member("consumer-b", "instance1", &both), static_member("consumer-a", "instance2", &both)],
            &["consumer-b: topic1-0 topic1-2 topic2-1", "consumer-a: topic1-1 topic2-0 topic2-2"],
        );
        // RoundRobinAssignorTest.testOneStaticConsumerAndOneDynamicConsumerTwoTopicsSixPartitions
        check(
            RoundRobin,
            &topics(&[("topic1", 3), ("topic2", 3)]),
            &[static_member("consumer-b", "instance1", &both), member("consumer-a", &both)],
            &["consumer-b: topic1-0 topic1-2 topic2-1", "consumer-a: topic1-1 topic2-0 topic2-2"],
        );
        // RoundRobinAssignorTest.testStaticMemberRoundRobinAssignmentPersistent (both rounds)
        let statics = [
            static_member("consumer1", "instance1", &both),
            static_member("consumer2", "instance2", &both),
            static_member("consumer3", "instance3", &both),
        ];
        for dynamic in ["consumer4", "consumer5"] {
            let mut members = statics.to_vec();
            members.push(member(dynamic, &both));
            let last = format!("{dynamic}: topic2-0");
            check(
                RoundRobin,
                &topics(&[("topic1", 3), ("topic2", 3)]),
                &members,
                &["consumer1: topic1-0 topic2-1", "consumer2: topic1-1 topic2-2", "consumer3: topic1-2", &last],
            );
        }
        // RoundRobinAssignorTest.testStaticMemberRoundRobinAssignmentPersistentAfterMemberIdChanges
        check(
            RoundRobin,
            &topics(&[("topic1", 5), ("topic2", 5)]),
            &statics,
            &[
                "consumer1: topic1-0 topic1-3 topic2-1 topic2-4",
                "consumer2: topic1-1 topic1-4 topic2-2",
                "consumer3: topic1-2 topic2-0 topic2-3",
            ],
        );
        check(
            RoundRobin,
            &topics(&[("topic1", 5), ("topic2", 5)]),
            &[
                static_member("consumer1", "instance1", &both),
                static_member("consumer5", "instance2", &both),
                static_member("consumer4", "instance3", &both),
            ],
            &[
                "consumer1: topic1-0 topic1-3 topic2-1 topic2-4",
                "consumer5: topic1-1 topic1-4 topic2-2",
                "consumer4: topic1-2 topic2-0 topic2-3",
            ],
        );
    }

    #[test]
    fn round_robin_class_doc_examples() {
        // RoundRobinAssignor's javadoc, identical subscriptions.
        check(
            RoundRobin,
            &topics(&[("t0", 3), ("t1", 3)]),
            &[member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])],
            &["C0: t0-0 t0-2 t1-1", "C1: t0-1 t1-0 t1-2"],
        );
        // RoundRobinAssignor's javadoc, different subscriptions: skipping makes it uneven.
        check(
            RoundRobin,
            &topics(&[("t0", 1), ("t1", 2), ("t2", 3)]),
            &[member("C0", &["t0"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1", "t2"])],
            &["C0: t0-0", "C1: t1-0", "C2: t1-1 t2-0 t2-1 t2-2"],
        );
        // RoundRobinAssignor's javadoc, three dynamic members: C0 [t0p0, t1p0], C1 [t0p1, t1p1],
        // C2 [t0p2, t1p2].
        check(
            RoundRobin,
            &topics(&[("t0", 3), ("t1", 3)]),
            &[member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1"])],
            &["C0: t0-0 t1-0", "C1: t0-1 t1-1", "C2: t0-2 t1-2"],
        );
    }
}
