//! The cooperative protocol (KIP-429) as `cooperative-sticky` plays it: a partition that moves is
//! first revoked (left out of everyone's assignment), and handed out in the follow-up rebalance.

use super::test_support::{check, member, next_round, owning, render, settle_cooperative, topics};
use super::AssignorKind::{self, CooperativeSticky, Range, RoundRobin, Sticky};
use super::RebalanceProtocol;
use std::str::FromStr;

#[test]
fn a_member_joins_revoke_first_then_assign() {
    // Two members own 3 partitions each (generation 1); a third joins. The sticky target moves
    // one partition from each old member to the newcomer.
    let t = topics(&[("orders", 6)]);
    let members = [
        owning("a", &["orders"], "orders-0 orders-1 orders-2", Some(1)),
        owning("b", &["orders"], "orders-3 orders-4 orders-5", Some(1)),
        member("c", &["orders"]),
    ];
    check(Sticky, &t, &members, &["a: orders-0 orders-1", "b: orders-3 orders-4", "c: orders-2 orders-5"]);
    // Round 1 (generation 2): a and b lose orders-2 and orders-5; c gets nothing yet.
    check(CooperativeSticky, &t, &members, &["a: orders-0 orders-1", "b: orders-3 orders-4", "c:"]);
    // Round 2 (generation 3): a and b rejoined without them; now c gets both.
    let round1 = CooperativeSticky.assign(&t, &members);
    let round2_members = next_round(&members, &round1, 2);
    check(
        CooperativeSticky,
        &t,
        &round2_members,
        &["a: orders-0 orders-1", "b: orders-3 orders-4", "c: orders-2 orders-5"],
    );
    // Round 3 would move nothing.
    let round2 = CooperativeSticky.assign(&t, &round2_members);
    let round3 = CooperativeSticky.assign(&t, &next_round(&round2_members, &round2, 3));
    assert_eq!(render(&round3), render(&round2));
}

#[test]
fn a_member_leaves_its_partitions_move_at_once() {
    // Nobody else owns what the leaver had, so nothing needs revoking: one rebalance suffices.
    let t = topics(&[("orders", 6)]);
    let members = [
        owning("a", &["orders"], "orders-0 orders-1", Some(4)),
        owning("b", &["orders"], "orders-2 orders-3", Some(4)),
    ];
    let first = CooperativeSticky.assign(&t, &members);
    assert_eq!(render(&first), ["a: orders-0 orders-1 orders-4", "b: orders-2 orders-3 orders-5"]);
    let (_, settled, follow_ups) = settle_cooperative(&t, &members, first, 5);
    assert_eq!(follow_ups, 0);
    assert_eq!(render(&settled), ["a: orders-0 orders-1 orders-4", "b: orders-2 orders-3 orders-5"]);
}

#[test]
fn different_subscriptions_revoke_what_moves() {
    // The general algorithm: `x` stops subscribing to `u`, so `y` takes u-0 and u-1; to even out
    // the counts `x` then takes t-1 from `y`. All three moves wait for a revocation.
    let t = topics(&[("t", 2), ("u", 2)]);
    let members = [owning("x", &["t"], "t-0 u-0 u-1", Some(7)), owning("y", &["t", "u"], "t-1", Some(7))];
    check(Sticky, &t, &members, &["x: t-0 t-1", "y: u-0 u-1"]);
    check(CooperativeSticky, &t, &members, &["x: t-0", "y:"]);
    let first = CooperativeSticky.assign(&t, &members);
    let (_, settled, follow_ups) = settle_cooperative(&t, &members, first, 8);
    assert_eq!(follow_ups, 1);
    assert_eq!(render(&settled), ["x: t-0 t-1", "y: u-0 u-1"]);
}

#[test]
fn a_stale_member_loses_its_claims_to_the_newer_generation() {
    // `zombie` was kicked out after generation 3 and still believes it owns t-0 and t-1; `fresh`
    // got them in generation 5. The newer claim wins; the zombie's claim is ignored, so nothing
    // waits for the zombie to revoke.
    let t = topics(&[("t", 4)]);
    let members = [owning("zombie", &["t"], "t-0 t-1", Some(3)), owning("fresh", &["t"], "t-0 t-1 t-2 t-3", Some(5))];
    check(Sticky, &t, &members, &["fresh: t-0 t-1", "zombie: t-2 t-3"]);
    check(CooperativeSticky, &t, &members, &["fresh: t-0 t-1", "zombie:"]);
}

#[test]
fn names_and_protocols() {
    for kind in AssignorKind::ALL {
        assert_eq!(AssignorKind::from_str(kind.name()), Ok(kind));
        assert_eq!(AssignorKind::from_str(kind.java_class()), Ok(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    assert_eq!(Range.protocol(), RebalanceProtocol::Eager);
    assert_eq!(RoundRobin.protocol(), RebalanceProtocol::Eager);
    assert_eq!(Sticky.protocol(), RebalanceProtocol::Eager);
    assert_eq!(CooperativeSticky.protocol(), RebalanceProtocol::Cooperative);
    let err = AssignorKind::from_str("uniform").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown assignor `uniform`: expected one of range, roundrobin, sticky, cooperative-sticky"
    );
    assert_eq!(serde_json::to_string(&CooperativeSticky).unwrap(), "\"cooperative-sticky\"");
    assert_eq!(serde_json::from_str::<AssignorKind>("\"roundrobin\"").unwrap(), RoundRobin);
}
