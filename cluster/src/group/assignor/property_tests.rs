//! Properties every assignment must have, checked over a few hundred generated groups (a fixed
//! seed, no external crates): members with random subscriptions, static ids, and claims left by an
//! earlier generation, including stale and conflicting ones.

use super::test_support::{next_round, settle_cooperative};
use super::AssignorKind::{self, CooperativeSticky, Range, RoundRobin, Sticky};
use super::{Assignment, MemberSubscription};
use crate::TopicPartition;
use std::collections::{BTreeMap, BTreeSet};

/// SplitMix64: a tiny deterministic generator, enough to vary test inputs.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn subset<'a>(&mut self, items: &[&'a str]) -> Vec<&'a str> {
        loop {
            let picked: Vec<&str> = items.iter().copied().filter(|_| self.chance(50)).collect();
            if !picked.is_empty() {
                return picked;
            }
        }
    }
}

struct Group {
    topics: BTreeMap<String, i32>,
    members: Vec<MemberSubscription>,
    same_subscriptions: bool,
}

fn generate(g: &mut Gen) -> Group {
    let names = ["orders", "payments", "t1", "t-2", "clicks"];
    let topic_count = 1 + g.below(names.len());
    let topics: BTreeMap<String, i32> =
        names[..topic_count].iter().map(|t| (t.to_string(), g.below(9) as i32)).collect();
    let topic_names: Vec<&str> = names[..topic_count].to_vec();
    let same_subscriptions = g.chance(50);
    let common = g.subset(&topic_names);
    let member_count = 1 + g.below(9);
    let mut members = Vec::new();
    while members.len() < member_count {
        let id = format!("consumer-{}", g.below(1000));
        if members.iter().any(|m: &MemberSubscription| m.member_id == id) {
            continue;
        }
        let subscribed = if same_subscriptions { common.clone() } else { g.subset(&topic_names) };
        let mut m = MemberSubscription::new(id, &subscribed);
        if g.chance(20) {
            m.group_instance_id = Some(format!("instance-{}", members.len()));
        }
        members.push(m);
    }
    // Claims from earlier generations: most partitions have one claimant, some none, some two.
    let stale = g.chance(30);
    for (topic, count) in &topics {
        for p in 0..*count {
            let claimants = match g.below(10) {
                0..=1 => 0,
                2 if stale => 2,
                _ => 1,
            };
            for _ in 0..claimants {
                let at = g.below(members.len());
                let partition = TopicPartition::new(topic.clone(), p);
                if !members[at].owned_partitions.contains(&partition) {
                    members[at].owned_partitions.push(partition);
                }
            }
        }
    }
    for m in &mut members {
        if !m.owned_partitions.is_empty() || g.chance(30) {
            m.generation = Some(if stale { 1 + g.below(3) as i32 } else { 3 });
        }
    }
    Group { topics, members, same_subscriptions }
}

fn groups() -> Vec<Group> {
    let mut g = Gen(0x6b73_696d);
    (0..400).map(|_| generate(&mut g)).collect()
}

fn subscribers<'a>(group: &'a Group, topic: &str) -> Vec<&'a MemberSubscription> {
    group.members.iter().filter(|m| m.topics.iter().any(|t| t == topic)).collect()
}

/// Every partition of a subscribed topic is assigned exactly once (at most once for the
/// cooperative round), every member appears, and a member gets only what it subscribes to. The
/// one exception is Kafka's own: the general sticky algorithm may hand a partition back to its
/// owner from an older generation who no longer subscribes to the topic (see `sticky.rs`).
fn check_valid(kind: AssignorKind, group: &Group, assignment: &Assignment) {
    let mut seen = BTreeSet::new();
    for (id, partitions) in assignment.iter() {
        let member = group.members.iter().find(|m| m.member_id == id).expect("only members are assigned");
        for p in partitions {
            assert!(seen.insert(p.clone()), "{kind}: {p} assigned twice");
            let subscribed = member.topics.iter().any(|t| *t == p.topic);
            let kafka_quirk = matches!(kind, Sticky | CooperativeSticky) && member.owned_partitions.contains(p);
            assert!(subscribed || kafka_quirk, "{kind}: {p} to {id}, which does not subscribe to it");
        }
    }
    assert_eq!(assignment.members().count(), group.members.len(), "{kind}: every member is listed");
    for (topic, count) in &group.topics {
        if subscribers(group, topic).is_empty() {
            continue;
        }
        for p in 0..*count {
            let partition = TopicPartition::new(topic.clone(), p);
            assert!(kind == CooperativeSticky || seen.contains(&partition), "{kind}: {partition} not assigned");
        }
    }
}

#[test]
fn every_subscribed_partition_is_assigned_exactly_once() {
    for group in groups() {
        for kind in AssignorKind::ALL {
            let assignment = kind.assign(&group.topics, &group.members);
            check_valid(kind, &group, &assignment);
            assert_eq!(assignment, kind.assign(&group.topics, &group.members), "{kind}: same input, same output");
        }
    }
}

#[test]
fn sticky_is_balanced_within_one_when_subscriptions_are_equal() {
    for group in groups().into_iter().filter(|g| g.same_subscriptions) {
        let assignment = Sticky.assign(&group.topics, &group.members);
        let counts: Vec<usize> = assignment.iter().map(|(_, p)| p.len()).collect();
        let (min, max) = (counts.iter().min().expect("members"), counts.iter().max().expect("members"));
        assert!(max - min <= 1, "sticky counts {counts:?}");
        // Round-robin has the same guarantee; range only per topic.
        let assignment = RoundRobin.assign(&group.topics, &group.members);
        let counts: Vec<usize> = assignment.iter().map(|(_, p)| p.len()).collect();
        assert!(counts.iter().max().expect("members") - counts.iter().min().expect("members") <= 1);
        let assignment = Range.assign(&group.topics, &group.members);
        for topic in group.topics.keys() {
            let per_member: Vec<usize> =
                assignment.iter().map(|(_, p)| p.iter().filter(|tp| &tp.topic == topic).count()).collect();
            assert!(per_member.iter().max().expect("members") - per_member.iter().min().expect("members") <= 1);
        }
    }
}

#[test]
fn sticky_keeps_valid_claims_within_quota() {
    // With equal subscriptions and uncontested claims from the newest generation, a member that
    // owns no more than the minimum quota keeps everything it owns.
    for group in groups().into_iter().filter(|g| g.same_subscriptions) {
        let newest = group.members.iter().filter_map(|m| m.generation).max();
        let mut claims: BTreeMap<&TopicPartition, usize> = BTreeMap::new();
        for m in &group.members {
            for p in &m.owned_partitions {
                *claims.entry(p).or_default() += 1;
            }
        }
        let total: usize =
            group.topics.iter().filter(|(t, _)| !subscribers(&group, t).is_empty()).map(|(_, c)| *c as usize).sum();
        let min_quota = total / group.members.len();
        let assignment = Sticky.assign(&group.topics, &group.members);
        for m in &group.members {
            let uncontested =
                m.owned_partitions.iter().all(|p| claims[p] == 1 && m.topics.iter().any(|t| *t == p.topic));
            if m.generation == newest && uncontested && m.owned_partitions.len() <= min_quota {
                let got = assignment.partitions_of(&m.member_id);
                assert!(
                    m.owned_partitions.iter().all(|p| got.contains(p)),
                    "{} kept its {:?}",
                    m.member_id,
                    m.owned_partitions
                );
            }
        }
    }
}

#[test]
fn cooperative_never_hands_over_a_partition_someone_else_owns() {
    for group in groups() {
        let assignment = CooperativeSticky.assign(&group.topics, &group.members);
        for (id, partitions) in assignment.iter() {
            let member = group.members.iter().find(|m| m.member_id == id).expect("member");
            for p in partitions.iter().filter(|p| !member.owned_partitions.contains(p)) {
                let owners: Vec<&str> = group
                    .members
                    .iter()
                    .filter(|m| m.owned_partitions.contains(p))
                    .map(|m| m.member_id.as_str())
                    .collect();
                assert!(owners.is_empty(), "{p} given to {id} while {owners:?} own it");
            }
        }
        // Withheld partitions are exactly what the eager sticky target moves between members.
        let target = Sticky.assign(&group.topics, &group.members);
        for (id, partitions) in target.iter() {
            for p in partitions {
                if assignment.owner_of(p).is_none() {
                    assert!(
                        group.members.iter().any(|m| m.member_id != id && m.owned_partitions.contains(p)),
                        "{p} withheld for no reason"
                    );
                }
            }
        }
    }
}

#[test]
fn cooperative_settles_balanced_after_follow_up_rebalances() {
    for group in groups() {
        let first = CooperativeSticky.assign(&group.topics, &group.members);
        let (members, settled, follow_ups) = settle_cooperative(&group.topics, &group.members, first, 10);
        assert!(follow_ups <= 2, "{follow_ups} follow-up rebalances");
        let settled_group =
            Group { topics: group.topics.clone(), members, same_subscriptions: group.same_subscriptions };
        check_valid(Sticky, &settled_group, &settled);
        if group.same_subscriptions {
            let counts: Vec<usize> = settled.iter().map(|(_, p)| p.len()).collect();
            assert!(
                counts.iter().max().expect("members") - counts.iter().min().expect("members") <= 1,
                "settled {counts:?}"
            );
        }
        // Once settled, another round changes nothing.
        let again = CooperativeSticky.assign(&group.topics, &next_round(&settled_group.members, &settled, 11));
        assert_eq!(again, settled);
    }
}
