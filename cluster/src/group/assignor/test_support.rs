//! Builders and checks shared by the assignor tests.

use super::{Assignment, AssignorKind, MemberSubscription};
use crate::TopicPartition;
use std::collections::BTreeMap;

/// Topic name -> partition count.
pub(super) fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
    counts.iter().map(|(t, c)| (t.to_string(), *c)).collect()
}

/// A dynamic member that owns nothing.
pub(super) fn member(id: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription::new(id, topics)
}

/// A static member (with a `group.instance.id`) that owns nothing.
pub(super) fn static_member(id: &str, instance: &str, topics: &[&str]) -> MemberSubscription {
    MemberSubscription { group_instance_id: Some(instance.to_string()), ..MemberSubscription::new(id, topics) }
}

/// A member that owns `owned` ("t-0 t-1", space separated) since `generation`.
pub(super) fn owning(id: &str, topics: &[&str], owned: &str, generation: Option<i32>) -> MemberSubscription {
    MemberSubscription { owned_partitions: partitions(owned), generation, ..MemberSubscription::new(id, topics) }
}

/// "t-0 u-2" -> [t-0, u-2]; the partition number is after the last `-`.
pub(super) fn partitions(list: &str) -> Vec<TopicPartition> {
    list.split([' ', ',']).filter(|s| !s.is_empty()).map(tp).collect()
}

pub(super) fn tp(s: &str) -> TopicPartition {
    let (topic, partition) = s.rsplit_once('-').expect("TOPIC-P");
    TopicPartition::new(topic, partition.parse().expect("partition number"))
}

/// One line per member in the assignor's order: `id: t-0 t-1`, or `id:` when empty.
pub(super) fn render(assignment: &Assignment) -> Vec<String> {
    assignment
        .iter()
        .map(|(id, partitions)| {
            let mut line = format!("{id}:");
            for partition in partitions {
                line.push(' ');
                line.push_str(&partition.to_string());
            }
            line
        })
        .collect()
}

/// Run `kind` and compare with the expected lines (member order included).
#[track_caller]
pub(super) fn check(
    kind: AssignorKind,
    topics: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    expected: &[&str],
) {
    let actual = render(&kind.assign(topics, members));
    assert_eq!(actual, expected, "{kind} over {topics:?}");
}

/// The next round: every member now owns what it was assigned, in `generation`.
pub(super) fn next_round(
    members: &[MemberSubscription],
    assignment: &Assignment,
    generation: i32,
) -> Vec<MemberSubscription> {
    members
        .iter()
        .map(|m| MemberSubscription {
            owned_partitions: assignment.partitions_of(&m.member_id).to_vec(),
            generation: Some(generation),
            ..m.clone()
        })
        .collect()
}

/// Kafka's `AbstractStickyAssignorTest.verifyValidityAndBalance`: every member gets only
/// partitions of topics it subscribes to, no partition twice, and two members whose counts differ
/// by two or more share no topic among their partitions (else one could have been moved).
#[track_caller]
pub(super) fn verify_validity_and_balance(members: &[MemberSubscription], assignment: &Assignment) {
    let mut ids: Vec<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
    ids.sort();
    for (i, id) in ids.iter().enumerate() {
        let member = members.iter().find(|m| m.member_id == *id).expect("member");
        let mine = assignment.partitions_of(id);
        for partition in mine {
            assert!(
                member.topics.iter().any(|t| *t == partition.topic),
                "{partition} assigned to {id}, which does not subscribe to it"
            );
        }
        for other in &ids[i + 1..] {
            let theirs = assignment.partitions_of(other);
            assert!(mine.iter().all(|p| !theirs.contains(p)), "{id} and {other} share partitions");
            if mine.len().abs_diff(theirs.len()) <= 1 {
                continue;
            }
            for partition in mine {
                assert!(
                    theirs.iter().all(|p| p.topic != partition.topic),
                    "{id} ({}) and {other} ({}) both have topic {}: it could be balanced better",
                    mine.len(),
                    theirs.len(),
                    partition.topic
                );
            }
        }
    }
}

/// Kafka's `isFullyBalanced`: all counts within one.
pub(super) fn is_fully_balanced(assignment: &Assignment) -> bool {
    let counts: Vec<usize> = assignment.iter().map(|(_, p)| p.len()).collect();
    counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0) <= 1
}

/// Kafka's `CooperativeStickyAssignorTest.verifyValidityAndBalance`: while an assignment revokes
/// something, check that no revoked partition is handed to someone else in the same round, feed
/// the assignment back as what members own (in `generation`) and assign again. Returns the final
/// members and assignment, and how many follow-up rebalances it took (Kafka allows at most 4).
pub(super) fn settle_cooperative(
    topics: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    first: Assignment,
    generation: i32,
) -> (Vec<MemberSubscription>, Assignment, usize) {
    let mut members = members.to_vec();
    let mut assignment = first;
    for rebalances in 0..=4 {
        let mut added = Vec::new();
        let mut revoked = Vec::new();
        for m in &members {
            let assigned = assignment.partitions_of(&m.member_id);
            added.extend(assigned.iter().filter(|p| !m.owned_partitions.contains(p)).cloned());
            revoked.extend(m.owned_partitions.iter().filter(|p| !assigned.contains(p)).cloned());
        }
        assert!(
            added.iter().all(|p| !revoked.contains(p)),
            "a partition is revoked and reassigned in the same rebalance"
        );
        if revoked.is_empty() {
            return (members, assignment, rebalances);
        }
        members = next_round(&members, &assignment, generation);
        assignment = AssignorKind::CooperativeSticky.assign(topics, &members);
    }
    panic!("cooperative assignment did not settle within 4 follow-up rebalances");
}
