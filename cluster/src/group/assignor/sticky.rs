//! # The sticky assignors (`sticky` and `cooperative-sticky`, Kafka's `AbstractStickyAssignor`)
//!
//! Range and round-robin forget: each rebalance computes an assignment from scratch, so one member
//! joining can move almost every partition, and every moved partition means a revoke, an offset
//! commit, state to rebuild and a cold cache. The sticky assignors remember. Their two goals, in
//! this order:
//!
//! 1. **Balance**: member counts differ by at most one, or, when subscriptions differ, no member
//!    could take a partition from a member with two or more partitions more than it.
//! 2. **Stickiness**: subject to 1, every partition stays with the member that owns it now.
//!
//! Members report what they own (and in which generation they got it) when they join; the leader's
//! assignor keeps as much of that as balance allows and moves only the surplus.
//!
//! ## Who owns what: claims and generations
//!
//! Reports can disagree: a member that was kicked out of the group (a long GC pause, a network
//! partition) comes back still believing it owns its old partitions, which meanwhile went to
//! someone else. The generation settles it. When two members claim a partition, the claim from the
//! **higher generation wins** and the other is ignored. Two claims from the **same generation**
//! cannot both be true, and neither can be trusted: the partition counts as owned by nobody (and
//! the cooperative assignor still treats it as owned, so it waits a round). A member with no
//! generation (`None`) claims at generation -1, below everyone.
//!
//! ## Two algorithms
//!
//! **All members subscribe to the same topics** (the common case; Kafka's `constrainedAssign`).
//! With `P` partitions and `C` members everyone gets `min = P / C`, and `P % C` of them get
//! `max = min + 1`. Walking the members (see *Order* below), each keeps its claimed partitions up
//! to its quota: all of them if it has fewer than `min`; `max` if it has at least `max` and fewer
//! than `P % C` members have taken `max` so far; `min` otherwise (it may still get one more later).
//! A member keeps partitions in order of partition number, then topic. Everything not kept is
//! dealt round-robin, in topic then partition order, first to members below `min` (sorted by member
//! id), then, one each, to members at `min` while members at `max` are still missing.
//!
//! **Subscriptions differ** (Kafka's `generalAssign`). Keep every valid claim (a claim on a topic
//! the member no longer subscribes to is dropped); give each unclaimed partition to the member
//! with the fewest partitions among those subscribed to its topic (ties by member id), taking
//! topics with the fewest potential members first. Then rebalance: while some member has two or
//! more partitions more than another member subscribed to the same topic, move a partition to the
//! least loaded eligible member; a partition goes back to its owner from an older generation if
//! that helps. Moves are undone wholesale if they do not improve the balance score (the sum of
//! count differences over all pairs). Partitions that moved between a pair of members are
//! preferably moved back rather than moving a third one, to avoid partition "swaps".
//!
//! ## Eager (`sticky`) and cooperative (`cooperative-sticky`)
//!
//! Both compute the same target. `sticky` is eager: members revoked everything before joining, so
//! the target is handed out as is. (Its members report their previous assignment in the
//! subscription's user data, because under eager they no longer own anything when they join;
//! [`MemberSubscription::owned_partitions`](super::MemberSubscription) holds it.)
//! `cooperative-sticky` (KIP-429) runs while members keep consuming, so a partition must not be
//! handed to its new member while its old member may still be reading it: every partition that the
//! target moves from one member to another is **removed from the new member's assignment**. The
//! old member sees it missing from its own assignment and revokes it; because it revoked
//! something, it rejoins at once; in that second rebalance the partition is owned by nobody and
//! the assignor gives it out. Partitions that stay put keep being consumed throughout.
//!
//! ## Order, and where this matches Kafka exactly
//!
//! The result depends on the order in which the leader walks the members: Kafka walks a Java
//! `HashMap` keyed by member id (filled in JoinGroup order), and the one it meets first keeps the
//! larger quota. We replay Java's `HashMap` order (see `java_order.rs`), and likewise the `HashSet`
//! order Kafka's swap-avoidance picks from, so results match Kafka's assignor for the same
//! member ids, subscriptions, claims and JoinGroup order. Member lists are reported sorted by
//! member id (Java string order). `testdata/kafka_golden.txt` checks this against Kafka's own
//! classes on 318 groups.
//!
//! We reproduce Kafka's quirks too. In the general algorithm a partition goes back to its owner
//! from an older generation when that evens out the counts, **without checking that the member
//! still subscribes to the topic**: Kafka can hand a member a partition it did not subscribe to.
//! Kafka's consumer then rejects the whole assignment ("received assignment does not match the
//! current subscription") and rejoins, which starts another rebalance. Likewise, Kafka compares
//! every subscription with the first non-empty one its `HashMap` yields, so a member subscribed to
//! nothing that comes earlier is never compared: the group counts as uniformly subscribed and that
//! member gets a share of partitions. We differ from Kafka only where it has no answer or keeps
//! hidden state:
//!
//! - If that older owner is a member that can receive nothing (it already holds every partition
//!   it could have), Kafka's assignor throws a `NullPointerException`; we skip the move.
//! - Kafka's assignor object remembers the highest generation it has ever seen across calls; we
//!   take the highest of the current call (the same unless generations go backwards).
//! - Rack-aware assignment (`client.rack`) is not modelled: members have no rack.

use super::java_order::{self, JavaHashOrder};
use super::{Assignment, Group, RebalanceProtocol};
use crate::TopicPartition;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Kafka's `DEFAULT_GENERATION`: the generation of a member that has none.
const NO_GENERATION: i32 = -1;

/// An upper bound on rebalancing passes in the general algorithm; Kafka's loop has none, but every
/// pass that changes something makes a move towards balance, so this is never reached in practice.
const MAX_BALANCE_PASSES: usize = 100_000;

pub(crate) fn assign(group: &Group, protocol: RebalanceProtocol) -> Assignment {
    let n = group.members.len();
    let mut by_id: Vec<usize> = (0..n).collect();
    by_id.sort_by(|a, b| java_order::cmp_java(&group.members[*a].member_id, &group.members[*b].member_id));
    let mut rank = vec![0; n];
    for (position, &member) in by_id.iter().enumerate() {
        rank[member] = position;
    }

    let claims = Claims::collect(group);
    let (mut assignment, transferring) = if claims.all_subscriptions_equal {
        let (assignment, transferring) = Constrained::new(group, &rank, &claims).build();
        (assignment, Some(transferring))
    } else {
        (General::new(group, &rank, &by_id, &claims).build(), None)
    };

    if protocol == RebalanceProtocol::Cooperative {
        let transferring = transferring.unwrap_or_else(|| transferring_ownership(group, &assignment));
        for (partition, member) in transferring {
            assignment[member].retain(|p| *p != partition);
        }
    }

    Assignment::new(
        by_id.into_iter().map(|m| (group.members[m].member_id.clone(), std::mem::take(&mut assignment[m]))).collect(),
    )
}

/// The valid claims, settled by generation (Kafka's `allSubscriptionsEqual`, which also decides
/// which algorithm runs).
struct Claims {
    all_subscriptions_equal: bool,
    max_generation: i32,
    /// Each member's claimed partitions that survived conflicts, in claim order.
    owned: Vec<Vec<TopicPartition>>,
    /// Partitions claimed by two members of the same generation: owned by nobody.
    claimed_twice: BTreeSet<TopicPartition>,
}

impl Claims {
    fn collect(group: &Group) -> Claims {
        let generation = |m: usize| group.members[m].generation.unwrap_or(NO_GENERATION);
        let mut subscribed: BTreeSet<&str> = BTreeSet::new();
        let mut all_subscriptions_equal = true;
        let mut max_generation = NO_GENERATION;
        let mut owned = vec![Vec::new(); group.members.len()];
        let mut claimant: BTreeMap<TopicPartition, usize> = BTreeMap::new();
        let mut claimed_twice = BTreeSet::new();
        for &member in &group.hash_order {
            let topics = &group.members[member].topics;
            // As in Kafka: compare with the first non-empty subscription met; members with no
            // topics met before it are not compared at all.
            if subscribed.is_empty() {
                subscribed.extend(topics.iter().map(String::as_str));
            } else if all_subscriptions_equal
                && !(topics.len() == subscribed.len() && topics.iter().all(|t| subscribed.contains(t.as_str())))
            {
                all_subscriptions_equal = false;
            }
            let member_generation = generation(member);
            max_generation = max_generation.max(member_generation);
            for partition in &group.members[member].owned_partitions {
                if !group.partitions_per_topic.contains_key(partition.topic.as_str()) {
                    continue;
                }
                match claimant.get(partition).copied() {
                    None => {
                        owned[member].push(partition.clone());
                        claimant.insert(partition.clone(), member);
                    }
                    Some(other) if generation(other) == member_generation => {
                        claimed_twice.insert(partition.clone());
                        owned[other].retain(|p| p != partition);
                        claimant.insert(partition.clone(), member);
                    }
                    Some(other) if generation(other) < member_generation => {
                        owned[member].push(partition.clone());
                        owned[other].retain(|p| p != partition);
                        claimant.insert(partition.clone(), member);
                    }
                    Some(_) => {} // the other claim is from a later generation: it stands
                }
            }
        }
        Claims { all_subscriptions_equal, max_generation, owned, claimed_twice }
    }
}

/// Kafka's `ConstrainedAssignmentBuilder`: every member subscribes to the same topics.
struct Constrained<'a> {
    group: &'a Group,
    rank: &'a [usize],
    claims: &'a Claims,
    min_quota: usize,
    max_quota: usize,
    /// How many members end with `max_quota` partitions (0 when `min_quota == max_quota`).
    expected_at_max: usize,
    at_max: usize,
    assignment: Vec<Vec<TopicPartition>>,
    /// Claimed partitions a member could not keep, and who claimed them.
    maybe_revoked: BTreeMap<TopicPartition, usize>,
    /// Partitions moving from one member to another: the cooperative assignor withholds them.
    transferring: BTreeMap<TopicPartition, usize>,
    under_min: Vec<usize>,
    /// Members at `min_quota` that may still get one more.
    at_min: VecDeque<usize>,
}

impl<'a> Constrained<'a> {
    fn new(group: &'a Group, rank: &'a [usize], claims: &'a Claims) -> Self {
        let members = group.members.len();
        let total: usize = group.partitions_per_topic.values().map(|c| *c as usize).sum();
        Constrained {
            group,
            rank,
            claims,
            min_quota: total / members,
            max_quota: total.div_ceil(members),
            expected_at_max: total % members,
            at_max: 0,
            assignment: vec![Vec::new(); members],
            maybe_revoked: BTreeMap::new(),
            transferring: BTreeMap::new(),
            under_min: Vec::new(),
            at_min: VecDeque::new(),
        }
    }

    fn build(mut self) -> (Vec<Vec<TopicPartition>>, BTreeMap<TopicPartition, usize>) {
        let kept = self.keep_owned();
        let mut topics: Vec<(&String, i32)> = self.group.partitions_per_topic.iter().map(|(t, c)| (t, *c)).collect();
        topics.sort_by(|a, b| java_order::cmp_java(a.0, b.0));
        let unassigned: Vec<TopicPartition> = topics
            .into_iter()
            .flat_map(|(topic, count)| (0..count).map(move |p| TopicPartition::new(topic.clone(), p)))
            .filter(|tp| !kept.contains(tp))
            .collect();
        let rank = self.rank;
        self.under_min.sort_by_key(|m| rank[*m]);
        self.at_min.make_contiguous().sort_by_key(|m| rank[*m]);
        self.deal(unassigned);
        self.verify_filled();
        (self.assignment, self.transferring)
    }

    /// Step 1: each member keeps claimed partitions up to its quota. Returns all kept partitions.
    fn keep_owned(&mut self) -> BTreeSet<TopicPartition> {
        let mut kept = BTreeSet::new();
        for &member in &self.group.hash_order {
            let mut owned: Vec<TopicPartition> =
                self.claims.owned[member].iter().filter(|p| !self.claims.claimed_twice.contains(p)).cloned().collect();
            owned.sort_by(|a, b| a.partition.cmp(&b.partition).then_with(|| java_order::cmp_java(&a.topic, &b.topic)));
            let keep = if owned.len() < self.min_quota {
                self.under_min.push(member);
                owned.len()
            } else if owned.len() >= self.max_quota && self.at_max < self.expected_at_max {
                self.at_max += 1;
                if self.at_max == self.expected_at_max {
                    self.at_min.clear();
                }
                self.max_quota
            } else {
                if self.at_max < self.expected_at_max {
                    self.at_min.push_back(member);
                }
                self.min_quota
            };
            for partition in owned.drain(keep..) {
                self.maybe_revoked.insert(partition, member);
            }
            kept.extend(owned.iter().cloned());
            self.assignment[member].extend(owned);
        }
        kept
    }

    /// Step 2: deal the rest round-robin over the members under `min_quota` (Kafka walks a linked
    /// list with an iterator that it restarts at the front), then one each to members at it.
    fn deal(&mut self, unassigned: Vec<TopicPartition>) {
        let mut cursor = 0;
        for partition in unassigned {
            let member = if cursor < self.under_min.len() {
                cursor += 1;
                self.under_min[cursor - 1]
            } else if !self.under_min.is_empty() {
                cursor = 1;
                self.under_min[0]
            } else {
                self.at_min
                    .pop_front()
                    .expect("a member can still take a partition: the quotas add up to all partitions")
            };
            let count = self.assign_new(partition, member);
            if count == self.min_quota {
                assert_eq!(
                    self.under_min.get(cursor.wrapping_sub(1)),
                    Some(&member),
                    "only members under min reach min"
                );
                cursor -= 1;
                self.under_min.remove(cursor);
                self.at_min.push_back(member);
            } else if count == self.max_quota {
                self.at_max += 1;
            }
        }
    }

    fn assign_new(&mut self, partition: TopicPartition, member: usize) -> usize {
        let moves = self.maybe_revoked.get(&partition).is_some_and(|owner| *owner != member)
            || self.claims.claimed_twice.contains(&partition);
        if moves {
            self.transferring.insert(partition.clone(), member);
        }
        self.assignment[member].push(partition);
        self.assignment[member].len()
    }

    /// Kafka's `verifyUnfilledMembers`: members still under `min_quota` are a bug.
    fn verify_filled(&self) {
        if self.under_min.is_empty() {
            return;
        }
        assert_eq!(
            self.at_max, self.expected_at_max,
            "every partition dealt, yet fewer members at max quota than expected"
        );
        for &member in &self.under_min {
            assert_eq!(
                self.assignment[member].len(),
                self.min_quota,
                "every partition dealt, yet a member is under min quota"
            );
        }
    }
}

/// Kafka's `GeneralAssignmentBuilder`: members subscribe to different topics.
struct General<'a> {
    group: &'a Group,
    rank: &'a [usize],
    /// Members sorted by id: `by_id[rank[m]] == m`.
    by_id: &'a [usize],
    max_generation: i32,
    /// Each topic's subscribers, in Kafka's `HashMap` order.
    topic_members: BTreeMap<&'a str, Vec<usize>>,
    /// Each member's subscribed topics that exist.
    member_topics: Vec<BTreeSet<&'a str>>,
    /// The assignment being built; `None` for members set aside as unable to change.
    current: Vec<Option<BTreeSet<TopicPartition>>>,
    owner: BTreeMap<TopicPartition, usize>,
    /// Kafka's `sortedCurrentSubscriptions`: members by (partition count, member id).
    by_load: BTreeSet<(usize, usize)>,
    movements: PartitionMovements,
    revocation_required: bool,
}

impl<'a> General<'a> {
    fn new(group: &'a Group, rank: &'a [usize], by_id: &'a [usize], claims: &Claims) -> Self {
        let mut topic_members: BTreeMap<&str, Vec<usize>> =
            group.partitions_per_topic.keys().map(|t| (t.as_str(), Vec::new())).collect();
        let mut member_topics = vec![BTreeSet::new(); group.members.len()];
        for &member in &group.hash_order {
            for topic in &group.members[member].topics {
                if let Some(members) = topic_members.get_mut(topic.as_str()) {
                    members.push(member);
                    member_topics[member].insert(topic.as_str());
                }
            }
        }
        let current: Vec<Option<BTreeSet<TopicPartition>>> =
            claims.owned.iter().map(|owned| Some(owned.iter().cloned().collect())).collect();
        let mut owner = BTreeMap::new();
        for (member, partitions) in current.iter().enumerate() {
            for partition in partitions.iter().flatten() {
                owner.insert(partition.clone(), member);
            }
        }
        General {
            group,
            rank,
            by_id,
            max_generation: claims.max_generation,
            topic_members,
            member_topics,
            current,
            owner,
            by_load: BTreeSet::new(),
            movements: PartitionMovements::default(),
            revocation_required: false,
        }
    }

    fn build(mut self) -> Vec<Vec<TopicPartition>> {
        let previous = self.previous_owners();
        // Topics with the fewest potential members first, then by name; partitions by number.
        let mut topics: Vec<&str> = self.topic_members.keys().copied().collect();
        topics.sort_by(|a, b| {
            self.topic_members[a].len().cmp(&self.topic_members[b].len()).then_with(|| java_order::cmp_java(a, b))
        });
        let all_partitions: Vec<TopicPartition> = topics
            .iter()
            .flat_map(|topic| (0..self.group.partitions_per_topic[*topic]).map(|p| TopicPartition::new(*topic, p)))
            .collect();
        let kept = self.keep_owned();
        let unassigned: Vec<TopicPartition> = all_partitions.iter().filter(|p| !kept.contains(p)).cloned().collect();
        for member in 0..self.group.members.len() {
            self.by_load.insert(self.load_key(member));
        }
        self.balance(&previous, all_partitions, unassigned);
        self.current.into_iter().map(|p| p.expect("every member is back").into_iter().collect()).collect()
    }

    /// Claims from generations below the newest, for partitions whose owner changed since: the
    /// most recent such owner of each (Kafka's `prevAssignment`).
    fn previous_owners(&self) -> BTreeMap<TopicPartition, usize> {
        let mut previous: BTreeMap<TopicPartition, (usize, i32)> = BTreeMap::new();
        for &member in &self.group.hash_order {
            let generation = match self.group.members[member].generation {
                Some(g) if g < self.max_generation => g,
                None if self.max_generation > NO_GENERATION => NO_GENERATION,
                _ => continue,
            };
            for partition in &self.group.members[member].owned_partitions {
                match previous.get(partition) {
                    Some((_, g)) if *g >= generation => {}
                    _ => {
                        previous.insert(partition.clone(), (member, generation));
                    }
                }
            }
        }
        previous.into_iter().map(|(p, (member, _))| (p, member)).collect()
    }

    /// Keep each valid claim on a topic the member still subscribes to. Returns the kept ones.
    fn keep_owned(&mut self) -> BTreeSet<TopicPartition> {
        let mut kept = BTreeSet::new();
        for member in 0..self.group.members.len() {
            let subscription = &self.group.members[member].topics;
            let partitions = self.current[member].as_mut().expect("no member is set aside yet");
            partitions.retain(|p| {
                let subscribed = subscription.iter().any(|t| *t == p.topic);
                if subscribed {
                    kept.insert(p.clone());
                } else {
                    self.revocation_required = true;
                }
                subscribed
            });
        }
        kept
    }

    fn balance(
        &mut self,
        previous: &BTreeMap<TopicPartition, usize>,
        mut all_partitions: Vec<TopicPartition>,
        mut unassigned: Vec<TopicPartition>,
    ) {
        let initializing = self.by_load.last().is_none_or(|(load, _)| *load == 0);
        for partition in &unassigned {
            if !self.topic_members[partition.topic.as_str()].is_empty() {
                self.assign_to_least_loaded(partition);
            }
        }

        // Only topics with two or more potential members, and members holding such a topic or
        // missing some partition they could have, can change.
        let fixed_topics: BTreeSet<&str> =
            self.topic_members.iter().filter(|(_, members)| members.len() < 2).map(|(t, _)| *t).collect();
        all_partitions.retain(|p| !fixed_topics.contains(p.topic.as_str()));
        unassigned.retain(|p| !fixed_topics.contains(p.topic.as_str()));
        let mut set_aside = Vec::new();
        for member in 0..self.group.members.len() {
            if !self.can_change(member) {
                self.by_load.remove(&self.load_key(member));
                set_aside.push((member, self.current[member].take()));
            }
        }

        let before = (self.current.clone(), self.owner.clone());
        if !self.revocation_required {
            // First try to balance by moving only the partitions that were just handed out.
            self.reassign_until_balanced(&unassigned, previous);
        }
        let moved = self.reassign_until_balanced(&all_partitions, previous);
        if !initializing && moved && balance_score(&self.current) >= balance_score(&before.0) {
            (self.current, self.owner) = before;
        }
        for (member, partitions) in set_aside {
            self.current[member] = partitions;
        }
    }

    fn reassign_until_balanced(
        &mut self,
        partitions: &[TopicPartition],
        previous: &BTreeMap<TopicPartition, usize>,
    ) -> bool {
        let mut moved = false;
        for _ in 0..MAX_BALANCE_PASSES {
            let mut modified = false;
            for partition in partitions {
                if self.is_balanced() {
                    break;
                }
                let member = self.owner[partition];
                if let Some(&earlier) = previous.get(partition) {
                    // Kafka does not check that `earlier` still subscribes to the topic (see the
                    // module notes); it fails with a NullPointerException if `earlier` was set aside.
                    if self.current[earlier].is_some() && self.load(member) > self.load(earlier) + 1 {
                        self.reassign(partition, earlier);
                        moved = true;
                        modified = true;
                        continue;
                    }
                }
                let topic_members = &self.topic_members[partition.topic.as_str()];
                if topic_members.iter().any(|other| self.load(member) > self.load(*other) + 1) {
                    let to = self.least_loaded_subscriber(&partition.topic).expect("the partition's owner subscribes");
                    self.reassign(partition, to);
                    moved = true;
                    modified = true;
                }
            }
            if !modified {
                return moved;
            }
        }
        panic!("the sticky assignor did not reach balance within {MAX_BALANCE_PASSES} passes");
    }

    /// Kafka's `isBalanced`: counts differ by at most one, or no member could take a partition of
    /// a topic it subscribes to from a member with two or more partitions more.
    fn is_balanced(&self) -> bool {
        let (Some((min, _)), Some((max, _))) = (self.by_load.first(), self.by_load.last()) else { return true };
        if min + 1 >= *max {
            return true;
        }
        for &(load, rank) in &self.by_load {
            let member = self.by_id[rank];
            if load == self.max_assignment_size(member) {
                continue;
            }
            let held = self.current[member].as_ref().expect("members in by_load are not set aside");
            for topic in &self.member_topics[member] {
                for p in 0..self.group.partitions_per_topic[*topic] {
                    let partition = TopicPartition::new(*topic, p);
                    if held.contains(&partition) {
                        continue;
                    }
                    let Some(&other) = self.owner.get(&partition) else { continue };
                    if self.current[other].is_some() && load + 1 < self.load(other) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Kafka's `canConsumerParticipateInReassignment`.
    fn can_change(&self, member: usize) -> bool {
        let held = self.current[member].as_ref().expect("checked before being set aside");
        held.len() < self.max_assignment_size(member)
            || held.iter().any(|p| self.topic_members[p.topic.as_str()].len() >= 2)
    }

    fn max_assignment_size(&self, member: usize) -> usize {
        self.member_topics[member].iter().map(|t| self.group.partitions_per_topic[*t] as usize).sum()
    }

    /// Kafka's `maybeAssignPartition`: to the least loaded subscriber.
    fn assign_to_least_loaded(&mut self, partition: &TopicPartition) {
        if let Some(member) = self.least_loaded_subscriber(&partition.topic) {
            self.by_load.remove(&self.load_key(member));
            self.current[member].as_mut().expect("in by_load").insert(partition.clone());
            self.owner.insert(partition.clone(), member);
            self.by_load.insert(self.load_key(member));
        }
    }

    fn least_loaded_subscriber(&self, topic: &str) -> Option<usize> {
        self.by_load.iter().map(|(_, rank)| self.by_id[*rank]).find(|m| self.member_topics[*m].contains(topic))
    }

    /// Move `partition` to `to`, or rather, if an earlier move went from `to` to the partition's
    /// original owner, undo that one instead (Kafka's `getTheActualPartitionToBeMoved`).
    fn reassign(&mut self, partition: &TopicPartition, to: usize) {
        let from = self.owner[partition];
        let partition = self.movements.partition_to_move(partition, from, to);
        let from = self.owner[&partition];
        self.by_load.remove(&self.load_key(from));
        self.by_load.remove(&self.load_key(to));
        self.movements.record(&partition, from, to);
        self.current[from].as_mut().expect("the owner can change").remove(&partition);
        self.current[to].as_mut().expect("the new owner can change").insert(partition.clone());
        self.owner.insert(partition, to);
        self.by_load.insert(self.load_key(to));
        self.by_load.insert(self.load_key(from));
    }

    fn load(&self, member: usize) -> usize {
        self.current[member].as_ref().expect("a member that can change").len()
    }

    fn load_key(&self, member: usize) -> (usize, usize) {
        (self.load(member), self.rank[member])
    }
}

/// Kafka's `getBalanceScore`: the sum of count differences over all pairs of members.
fn balance_score(assignment: &[Option<BTreeSet<TopicPartition>>]) -> usize {
    let loads: Vec<usize> = assignment.iter().flatten().map(BTreeSet::len).collect();
    let mut score = 0;
    for (i, a) in loads.iter().enumerate() {
        for b in &loads[i + 1..] {
            score += a.abs_diff(*b);
        }
    }
    score
}

/// Kafka's `PartitionMovements`: which partitions moved between which members during this
/// assignment, so a partition can be moved back instead of moving another one across.
#[derive(Default)]
struct PartitionMovements {
    /// topic -> (from, to) -> partitions of that topic that moved so, in Java `HashSet` order.
    by_topic: BTreeMap<String, BTreeMap<(usize, usize), JavaHashOrder<TopicPartition>>>,
    /// partition -> (its original owner, its current owner).
    moved: BTreeMap<TopicPartition, (usize, usize)>,
}

impl PartitionMovements {
    fn partition_to_move(&self, partition: &TopicPartition, from: usize, to: usize) -> TopicPartition {
        let Some(topic_moves) = self.by_topic.get(partition.topic.as_str()) else { return partition.clone() };
        let origin = self.moved.get(partition).map_or(from, |(origin, _)| *origin);
        match topic_moves.get(&(to, origin)) {
            Some(back) => back.first().expect("empty sets are removed").clone(),
            None => partition.clone(),
        }
    }

    fn record(&mut self, partition: &TopicPartition, from: usize, to: usize) {
        match self.remove(partition) {
            Some((origin, _)) if origin == to => {} // back home: no movement left
            Some((origin, _)) => self.add(partition, origin, to),
            None => self.add(partition, from, to),
        }
    }

    fn remove(&mut self, partition: &TopicPartition) -> Option<(usize, usize)> {
        let pair = self.moved.remove(partition)?;
        let topic_moves = self.by_topic.get_mut(partition.topic.as_str()).expect("recorded with its topic");
        let partitions = topic_moves.get_mut(&pair).expect("recorded with its pair");
        partitions.remove(partition);
        if partitions.is_empty() {
            topic_moves.remove(&pair);
        }
        if topic_moves.is_empty() {
            self.by_topic.remove(partition.topic.as_str());
        }
        Some(pair)
    }

    fn add(&mut self, partition: &TopicPartition, from: usize, to: usize) {
        self.moved.insert(partition.clone(), (from, to));
        self.by_topic
            .entry(partition.topic.to_string())
            .or_default()
            .entry((from, to))
            .or_insert_with(JavaHashOrder::new)
            .insert(partition.clone(), java_order::topic_partition_hash(partition));
    }
}

/// Kafka's `computePartitionsTransferringOwnership` for the general algorithm: partitions given to
/// a member that did not own them, which their owner is losing.
fn transferring_ownership(group: &Group, assignment: &[Vec<TopicPartition>]) -> BTreeMap<TopicPartition, usize> {
    let mut added = BTreeMap::new();
    let mut revoked = BTreeSet::new();
    for (member, assigned) in assignment.iter().enumerate() {
        let owned = &group.members[member].owned_partitions;
        added.extend(assigned.iter().filter(|p| !owned.contains(p)).map(|p| (p.clone(), member)));
        revoked.extend(owned.iter().filter(|p| !assigned.contains(p)).cloned());
    }
    added.retain(|p, _| revoked.contains(p));
    added
}
