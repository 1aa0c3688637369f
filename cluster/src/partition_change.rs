//! One change to one partition, as the KRaft controller builds it (Kafka's
//! `PartitionChangeBuilder`): given the ISR the partition should have, work out its leader, its
//! ISR and its **Eligible Leader Replicas** (ELR, KIP-966).
//!
//! **Leader election** keeps the current leader if it may stay, else picks the first replica in
//! assignment order that is in the ISR and acceptable (unfenced, not being removed). With ELR on
//! and the ISR empty, an ELR member is as good as an ISR member (`isValidNewLeader`); it becomes
//! leader with an ISR of itself and leaves the ELR. Only if that finds nobody, and
//! `unclean.leader.election.enable=true`, does the first acceptable replica at all become leader
//! (unclean: the ISR is reset to it alone and the ELR cleared).
//!
//! **The ELR** (`maybePopulateTargetElr`): with ELR on, while the new ISR is smaller than the
//! (effective) `min.insync.replicas`, every replica leaving the ISR joins the ELR; once the ISR is
//! back at min ISR the ELR is cleared. Since a leader does not advance the high watermark below
//! min ISR (strict min ISR, 3.7+), an ELR member left the ISR holding every committed record: it
//! is safe to elect. A replica that restarted after an unclean shutdown may have lost its
//! unflushed tail, so it is kept out (`setUncleanShutdownReplicas`).
//!
//! **An empty ISR**: without ELR the last ISR member stays in the ISR when it is removed, so a
//! clean election is possible when it returns. With ELR the ISR may become empty: the ELR holds
//! who may lead (`build`: "If ELR is enabled, the ISR is allowed to be empty").
//!
//! **The last known leader** (`lastKnownElr`, `maybeUpdateLastKnownLeader`): with ELR on, when a
//! change empties the ISR the controller remembers who led. If ISR and ELR are both empty (every
//! eligible replica restarted uncleanly), that leader is elected once it is unfenced
//! (`canElectLastKnownLeader`; Kafka's docs: "Select the last known leader if it is unfenced. This
//! is a similar behavior prior to the 4.0 when all the replicas are offline"), as an unclean
//! election: ISR reset to it alone. Any new leader clears it.

use crate::metadata::{ElectionKind, PartitionImage};
use crate::topic::BrokerId;

/// What a change needs to know besides the partition itself.
pub struct ChangeRules<'a> {
    /// The effective `min.insync.replicas` (`ReplicationControlManager.getTopicEffectiveMinIsr`).
    pub min_isr: usize,
    /// `eligible.leader.replicas.version=1`.
    pub elr_enabled: bool,
    /// `unclean.leader.election.enable`.
    pub unclean_enabled: bool,
    /// A replica that restarted after an unclean shutdown: removed from the ISR and the ELR.
    pub unclean_shutdown: Option<BrokerId>,
    /// Whether a replica may lead (unfenced, and not the broker being fenced).
    pub acceptable: &'a dyn Fn(BrokerId) -> bool,
}

/// The partition after the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub leader: Option<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub elr: Vec<BrokerId>,
    pub last_known_leader: Option<BrokerId>,
    /// How a new leader was chosen; `None` if the leader did not change.
    pub election: Option<ElectionKind>,
}

/// Kafka's `PartitionChangeBuilder.build`, for a change towards `target_isr`. `None` if nothing
/// changes.
pub fn build(p: &PartitionImage, target_isr: Vec<BrokerId>, rules: &ChangeRules) -> Option<Changed> {
    let mut target_isr = target_isr;
    let mut target_elr = p.elr.clone();
    // maybePopulateTargetElr
    if rules.elr_enabled {
        if target_isr.len() >= rules.min_isr {
            target_elr.clear();
        } else {
            let mut candidates: Vec<BrokerId> = target_elr.iter().chain(p.isr.iter()).copied().collect();
            candidates.sort_unstable();
            candidates.dedup();
            target_elr = candidates
                .into_iter()
                .filter(|id| !target_isr.contains(id) && rules.unclean_shutdown != Some(*id))
                .collect();
        }
    }
    // tryElection (electAnyLeader)
    let valid = |id: BrokerId, isr: &[BrokerId], elr: &[BrokerId]| {
        (isr.contains(&id) || (isr.is_empty() && elr.contains(&id))) && (rules.acceptable)(id)
    };
    let mut unclean = false;
    let mut last_known = false;
    let leader = if p.leader.is_some_and(|l| valid(l, &target_isr, &target_elr)) {
        p.leader
    } else if let Some(&id) = p.replicas.iter().find(|id| valid(**id, &target_isr, &target_elr)) {
        Some(id)
    } else if let Some(l) = p.last_known_leader.filter(|l| {
        // canElectLastKnownLeader
        rules.elr_enabled && target_isr.is_empty() && target_elr.is_empty() && (rules.acceptable)(*l)
    }) {
        unclean = true;
        last_known = true;
        Some(l)
    } else if rules.unclean_enabled {
        unclean = true;
        p.replicas.iter().copied().find(|id| (rules.acceptable)(*id))
    } else {
        None
    };
    let unclean = unclean && leader.is_some();
    let mut election = None;
    if leader != p.leader {
        election = leader.map(|_| ElectionKind::Clean);
        if let Some(l) = leader.filter(|l| target_elr.contains(l)) {
            target_isr = vec![l];
            target_elr.retain(|id| *id != l);
            election = Some(ElectionKind::Elr);
        } else if last_known {
            election = Some(ElectionKind::LastKnownLeader);
        } else if unclean {
            election = Some(ElectionKind::Unclean);
        }
    }
    // maybeUpdateRecordElr, and the ISR the record carries
    let isr = if unclean {
        target_elr.clear();
        vec![leader.expect("an unclean election elected someone")]
    } else if !rules.elr_enabled {
        target_elr.clear();
        if target_isr.is_empty() {
            p.isr.clone()
        } else {
            target_isr
        }
    } else {
        target_isr
    };
    // maybeUpdateLastKnownLeader: set when this change empties the ISR, cleared by any leader.
    let last_known_leader = if !rules.elr_enabled || leader.is_some() {
        None
    } else if isr.is_empty() && !p.isr.is_empty() && p.leader.is_some() {
        p.leader
    } else {
        p.last_known_leader
    };
    if leader == p.leader && isr == p.isr && target_elr == p.elr && last_known_leader == p.last_known_leader {
        return None;
    }
    Some(Changed { leader, isr, elr: target_elr, last_known_leader, election })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(leader: Option<BrokerId>, isr: &[BrokerId], elr: &[BrokerId]) -> PartitionImage {
        PartitionImage {
            replicas: vec![1, 2, 3, 4],
            isr: isr.to_vec(),
            elr: elr.to_vec(),
            last_known_leader: None,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    fn rules<'a>(acceptable: &'a dyn Fn(BrokerId) -> bool, elr: bool) -> ChangeRules<'a> {
        ChangeRules { min_isr: 3, elr_enabled: elr, unclean_enabled: false, unclean_shutdown: None, acceptable }
    }

    /// (what, partition, target ISR, acceptable, ELR on, unclean shutdown, expected)
    type Case<'a> = (
        &'a str,
        PartitionImage,
        &'a [BrokerId],
        &'a dyn Fn(BrokerId) -> bool,
        bool,
        Option<BrokerId>,
        Option<Changed>,
    );

    /// Table-driven, after `PartitionChangeBuilderTest` (replicas [1, 2, 3, 4], min ISR 3).
    #[test]
    fn changes_follow_kafkas_partition_change_builder() {
        let all = |_: BrokerId| true;
        let not_1 = |id: BrokerId| id != 1;
        let not_1_2 = |id: BrokerId| id > 2;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // (what, partition, target ISR, acceptable, ELR on, unclean shutdown, expected)
            ("ISR [1,2,3,4] -> [1,2] below min ISR 3: 3 and 4 join the ELR (testEligibleLeaderReplicas_IsrShrinkBelowMinISR)",
             partition(Some(1), &[1, 2, 3, 4], &[]), &[1, 2], &all, true, None,
             Some(Changed { leader: Some(1), isr: vec![1, 2], elr: vec![3, 4], last_known_leader: None, election: None })),
            ("the same shrink without ELR: no ELR",
             partition(Some(1), &[1, 2, 3, 4], &[]), &[1, 2], &all, false, None,
             Some(Changed { leader: Some(1), isr: vec![1, 2], elr: vec![], last_known_leader: None, election: None })),
            ("ISR back at min ISR: the ELR is cleared (ReplicationControlManagerTest's testEligibleLeaderReplicas_ShrinkAndExpandIsr)",
             partition(Some(1), &[1, 2], &[3, 4]), &[1, 2, 3], &all, true, None,
             Some(Changed { leader: Some(1), isr: vec![1, 2, 3], elr: vec![], last_known_leader: None, election: None })),
            ("the last ISR member is fenced: with ELR the ISR empties and it joins the ELR",
             partition(Some(1), &[1], &[2]), &[], &not_1, true, None,
             Some(Changed { leader: Some(2), isr: vec![2], elr: vec![1], last_known_leader: None, election: Some(ElectionKind::Elr) })),
            ("without ELR the last ISR member stays and the partition goes offline",
             partition(Some(1), &[1], &[]), &[], &not_1, false, None,
             Some(Changed { leader: None, isr: vec![1], elr: vec![], last_known_leader: None, election: None })),
            ("no acceptable ELR member: offline, ELR kept for when one returns",
             partition(Some(1), &[1], &[2]), &[], &not_1_2, true, None,
             Some(Changed { leader: None, isr: vec![], elr: vec![1, 2], last_known_leader: Some(1), election: None })),
            ("an unclean shutdown removes the broker from the ELR (`handleBrokerUncleanShutdown`)",
             partition(None, &[], &[1, 2]), &[], &not_1_2, true, Some(2),
             Some(Changed { leader: None, isr: vec![], elr: vec![1], last_known_leader: None, election: None })),
            ("nothing changes: no record",
             partition(Some(1), &[1, 2, 3], &[]), &[1, 2, 3], &all, true, None, None),
        ];
        for (what, p, target, acceptable, elr, unclean_shutdown, expected) in cases {
            let mut r = rules(*acceptable, *elr);
            r.unclean_shutdown = *unclean_shutdown;
            assert_eq!(&build(p, target.to_vec(), &r), expected, "{what}");
        }
    }

    /// Every eligible replica restarted uncleanly: ISR and ELR are empty, and the last known
    /// leader, once unfenced, is elected (unclean: ISR reset to it, the record cleared).
    #[test]
    fn with_isr_and_elr_empty_the_last_known_leader_is_elected() {
        let mut p = partition(None, &[], &[]);
        p.last_known_leader = Some(2);
        let only_2 = |id: BrokerId| id == 2;
        let changed = build(&p, vec![], &rules(&only_2, true)).expect("a change");
        let expected = Changed {
            leader: Some(2),
            isr: vec![2],
            elr: vec![],
            last_known_leader: None,
            election: Some(ElectionKind::LastKnownLeader),
        };
        assert_eq!(changed, expected);
        let none = |_: BrokerId| false;
        assert_eq!(build(&p, vec![], &rules(&none, true)), None, "only if it is unfenced");
    }

    #[test]
    fn unclean_election_resets_the_isr_and_clears_the_elr() {
        let not_1_2 = |id: BrokerId| id > 2;
        let mut r = rules(&not_1_2, true);
        r.unclean_enabled = true;
        let changed = build(&partition(None, &[], &[1, 2]), vec![], &r).expect("a change");
        assert_eq!(
            changed,
            Changed {
                leader: Some(3),
                isr: vec![3],
                elr: vec![],
                last_known_leader: None,
                election: Some(ElectionKind::Unclean)
            }
        );
    }
}
