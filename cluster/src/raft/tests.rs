//! A pure harness for the quorum: members wired by one queue ordered by virtual time (ties in the
//! order queued), a fixed latency, links that can be cut, members that can be killed and restarted
//! from their disk. After every input it checks each member's invariants and the quorum's
//! promises: at most one leader per epoch, and a committed entry is never lost or changed.

use super::log::{Entry, Payload, RaftLog};
use super::message::*;
use super::state::{ElectionRecord, QuorumConfig, RoleName};
use super::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const LATENCY_MS: u64 = 1;
const MAX_STEPS: usize = 2_000_000;

#[derive(Clone, Debug)]
enum Event {
    Deliver { from: i32, to: i32, message: RaftMessage<u32> },
    Fire { node: i32, timer: RaftTimer },
}

struct Quorum {
    now: SimTime,
    config: QuorumConfig,
    voters: BTreeSet<i32>,
    members: BTreeMap<i32, Raft<u32>>,
    down: BTreeMap<i32, RaftDisk<u32>>,
    rngs: BTreeMap<i32, ChaCha8Rng>,
    queue: BTreeMap<(SimTime, u64), Event>,
    armed: BTreeMap<(i32, RaftTimer), (SimTime, u64)>,
    seq: u64,
    cut: BTreeSet<(i32, i32)>,
    /// Paused members (a long GC pause) and when they resume: what reaches them waits till then.
    paused: BTreeMap<i32, SimTime>,
    /// Every (epoch, leader) ever seen: the one-leader-per-epoch promise.
    leaders: BTreeMap<i32, i32>,
    /// The longest committed prefix seen on any member.
    committed: Vec<Entry<u32>>,
    pub events: Vec<(SimTime, i32, RaftEvent)>,
    pub delivered: Vec<(SimTime, i32, i32, RaftMessage<u32>)>,
}

impl Quorum {
    fn new(voters: &[i32], observers: &[i32], config: QuorumConfig) -> Quorum {
        let voter_set: BTreeSet<i32> = voters.iter().copied().collect();
        let mut q = Quorum {
            now: SimTime::ZERO,
            config: config.clone(),
            voters: voter_set.clone(),
            members: BTreeMap::new(),
            down: BTreeMap::new(),
            rngs: BTreeMap::new(),
            queue: BTreeMap::new(),
            armed: BTreeMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            paused: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: Vec::new(),
            events: Vec::new(),
            delivered: Vec::new(),
        };
        for &id in voters.iter().chain(observers) {
            q.rngs.insert(id, ChaCha8Rng::seed_from_u64(1000 + id as u64));
            q.start_member(id, RaftDisk::default());
        }
        q
    }

    fn start_member(&mut self, id: i32, disk: RaftDisk<u32>) {
        let mut raft = Raft::new(id, self.voters.clone(), self.config.clone(), disk);
        let mut out = RaftOut::default();
        raft.start(self.now, self.rngs.get_mut(&id).unwrap(), &mut out);
        self.members.insert(id, raft);
        self.apply(id, out);
    }

    fn push(&mut self, at: SimTime, event: Event) -> (SimTime, u64) {
        self.seq += 1;
        let key = (at, self.seq);
        self.queue.insert(key, event);
        key
    }

    fn apply(&mut self, id: i32, out: RaftOut<u32>) {
        for (timer, at) in out.timers {
            if let Some(key) = self.armed.remove(&(id, timer.clone())) {
                self.queue.remove(&key);
            }
            if let Some(at) = at {
                let key = self.push(at, Event::Fire { node: id, timer: timer.clone() });
                self.armed.insert((id, timer), key);
            }
        }
        for (to, message) in out.sends {
            if !self.cut.contains(&(id, to)) {
                self.push(self.now.plus_ms(LATENCY_MS), Event::Deliver { from: id, to, message });
            }
        }
        for event in out.events {
            self.events.push((self.now, id, event));
        }
        self.check(id);
    }

    fn check(&mut self, id: i32) {
        let raft = &self.members[&id];
        if let Err(broken) = raft.check_invariants() {
            panic!("member {id} at {}: {broken}", self.now);
        }
        if raft.is_leader() {
            let previous = *self.leaders.entry(raft.epoch()).or_insert(id);
            assert_eq!(previous, id, "two leaders in epoch {}: {previous} and {id}", raft.epoch());
        }
        let hw = raft.high_watermark() as usize;
        let entries = raft.log().entries();
        let common = hw.min(self.committed.len());
        assert_eq!(
            &entries[..common],
            &self.committed[..common],
            "member {id} holds a committed entry that differs from what was committed"
        );
        if hw > self.committed.len() {
            self.committed = entries[..hw].to_vec();
        }
    }

    fn step(&mut self) -> bool {
        let Some((&key, _)) = self.queue.iter().next() else { return false };
        let event = self.queue.remove(&key).unwrap();
        self.now = key.0;
        let target = match &event {
            Event::Fire { node, .. } => *node,
            Event::Deliver { to, .. } => *to,
        };
        if let Some(&until) = self.paused.get(&target) {
            if until > self.now {
                // Frozen: the input waits, in order, for the process to run again.
                let requeued = self.push(until, event.clone());
                if let Event::Fire { node, timer } = event {
                    self.armed.insert((node, timer), requeued);
                }
                return true;
            }
            self.paused.remove(&target);
        }
        match event {
            Event::Fire { node, timer } => {
                self.armed.remove(&(node, timer.clone()));
                if let Some(raft) = self.members.get_mut(&node) {
                    let mut out = RaftOut::default();
                    raft.on_timer(self.now, timer, self.rngs.get_mut(&node).unwrap(), &mut out);
                    self.apply(node, out);
                }
            }
            Event::Deliver { from, to, message } => {
                if self.cut.contains(&(from, to)) {
                    return true;
                }
                if let Some(raft) = self.members.get_mut(&to) {
                    self.delivered.push((self.now, from, to, message.clone()));
                    let mut out = RaftOut::default();
                    raft.on_message(self.now, from, message, self.rngs.get_mut(&to).unwrap(), &mut out);
                    self.apply(to, out);
                }
            }
        }
        true
    }

    fn run_for(&mut self, ms: u64) {
        let until = self.now.plus_ms(ms);
        for _ in 0..MAX_STEPS {
            match self.queue.keys().next() {
                Some(&(at, _)) if at <= until => {
                    self.step();
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("no quiet point within {MAX_STEPS} steps");
    }

    fn isolate(&mut self, id: i32) {
        for &other in self.members.keys().chain(self.down.keys()) {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    fn pause(&mut self, id: i32, ms: u64) {
        self.paused.insert(id, self.now.plus_ms(ms));
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn kill(&mut self, id: i32) {
        let raft = self.members.remove(&id).expect("member is up");
        self.paused.remove(&id);
        self.armed.retain(|(node, _), key| {
            if *node == id {
                self.queue.remove(key);
                false
            } else {
                true
            }
        });
        self.down.insert(id, raft.into_disk());
    }

    fn restart(&mut self, id: i32) {
        let disk = self.down.remove(&id).expect("member is down");
        self.start_member(id, disk);
    }

    fn leader(&self) -> Option<i32> {
        let leaders: Vec<i32> = self.members.values().filter(|r| r.is_leader()).map(|r| r.id()).collect();
        match leaders.as_slice() {
            [] => None,
            [one] => Some(*one),
            // Two can lead at once in different epochs (one not yet told); take the newest.
            _ => leaders.into_iter().max_by_key(|id| self.members[id].epoch()),
        }
    }

    fn append(&mut self, value: u32) -> Option<i64> {
        let leader = self.leader().filter(|id| !self.paused.contains_key(id))?;
        let mut out = RaftOut::default();
        let offset = self.members.get_mut(&leader).unwrap().append(self.now, vec![value], &mut out);
        self.apply(leader, out);
        offset
    }

    fn member(&self, id: i32) -> &Raft<u32> {
        &self.members[&id]
    }
}

fn config(pre_vote: bool) -> QuorumConfig {
    QuorumConfig { pre_vote, ..QuorumConfig::default() }
}

fn entries(epochs: &[i32]) -> RaftLog<u32> {
    RaftLog::from_entries(
        epochs.iter().enumerate().map(|(i, &epoch)| Entry { epoch, payload: Payload::Data(i as u32) }).collect(),
    )
}

/// A lone member, driven message by message.
struct Solo {
    raft: Raft<u32>,
    rng: ChaCha8Rng,
    now: SimTime,
}

impl Solo {
    fn new(id: i32, voters: &[i32], config: QuorumConfig, disk: RaftDisk<u32>) -> (Solo, RaftOut<u32>) {
        let mut solo = Solo {
            raft: Raft::new(id, voters.iter().copied().collect(), config, disk),
            rng: ChaCha8Rng::seed_from_u64(7),
            now: SimTime::ZERO,
        };
        let mut out = RaftOut::default();
        solo.raft.start(solo.now, &mut solo.rng, &mut out);
        (solo, out)
    }

    fn timer(&mut self, timer: RaftTimer) -> RaftOut<u32> {
        let mut out = RaftOut::default();
        self.raft.on_timer(self.now, timer, &mut self.rng, &mut out);
        self.raft.check_invariants().unwrap();
        out
    }

    fn message(&mut self, from: i32, message: RaftMessage<u32>) -> RaftOut<u32> {
        self.now = self.now.plus_ms(1);
        let mut out = RaftOut::default();
        self.raft.on_message(self.now, from, message, &mut self.rng, &mut out);
        self.raft.check_invariants().unwrap();
        out
    }

    fn vote(&mut self, from: i32, epoch: i32, last_epoch: i32, last_offset: i64, pre_vote: bool) -> VoteResponse {
        let out = self.message(
            from,
            RaftMessage::Vote(VoteRequest {
                candidate_id: from,
                candidate_epoch: epoch,
                last_offset_epoch: last_epoch,
                last_offset,
                pre_vote,
            }),
        );
        match out.sends.as_slice() {
            [(to, RaftMessage::VoteResponse(r))] if *to == from => r.clone(),
            other => panic!("expected one vote response, got {other:?}"),
        }
    }
}

fn granted(pre_vote: bool, epoch: i32) -> RaftMessage<u32> {
    RaftMessage::VoteResponse(VoteResponse {
        error: ErrorCode::None,
        leader_epoch: epoch,
        leader_id: None,
        vote_granted: true,
        pre_vote,
    })
}

fn fetch(replica: i32, epoch: i32, offset: i64, last_epoch: i32) -> RaftMessage<u32> {
    RaftMessage::Fetch(RaftFetchRequest {
        replica_id: replica,
        current_leader_epoch: epoch,
        fetch_offset: offset,
        last_fetched_epoch: last_epoch,
    })
}

fn timer_at(out: &RaftOut<u32>, timer: &RaftTimer) -> Option<SimTime> {
    out.timers.iter().rev().find(|(t, _)| t == timer).and_then(|(_, at)| *at)
}

// ---- elections ------------------------------------------------------------------------------------

#[test]
fn three_voters_elect_one_leader_that_every_member_follows() {
    for pre_vote in [true, false] {
        let mut q = Quorum::new(&[1, 2, 3], &[100], config(pre_vote));
        q.run_for(5_000);
        let leader = q.leader().expect("a leader within 5 s");
        let epoch = q.member(leader).epoch();
        for id in [1, 2, 3, 100] {
            assert_eq!(q.member(id).epoch(), epoch, "member {id} in the leader's epoch (pre_vote={pre_vote})");
            assert_eq!(q.member(id).leader(), Some(leader), "member {id} follows {leader}");
        }
        // The observer replicates but never votes.
        assert!(!q.delivered.iter().any(|(_, from, _, m)| *from == 100 && matches!(m, RaftMessage::Vote(_))));
        q.append(42).unwrap();
        // A follower learns the new high watermark from its next answer, which the leader may
        // hold up to `fetchMaxWaitMs` (500 ms) when nothing new arrives.
        q.run_for(600);
        for id in [1, 2, 3, 100] {
            let raft = q.member(id);
            assert_eq!(raft.high_watermark(), raft.log().end_offset(), "member {id} has everything committed");
        }
    }
}

#[test]
fn election_timeouts_are_drawn_from_t_to_2t() {
    let mut seen = BTreeSet::new();
    for seed in 0..200 {
        let mut raft: Raft<u32> = Raft::new(0, BTreeSet::from([0, 1, 2]), config(true), RaftDisk::default());
        let mut out = RaftOut::default();
        raft.start(SimTime::ZERO, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
        let at = timer_at(&out, &RaftTimer::Election).expect("an unattached voter arms its election timer");
        assert!((1_000..2_000).contains(&at.as_ms()), "{at}");
        seen.insert(at.as_ms());
    }
    assert!(seen.len() > 50, "the timeout is random: {} distinct values", seen.len());
}

#[test]
fn the_binary_backoff_grows_with_retries_and_stays_under_its_cap() {
    let (solo, _) = Solo::new(1, &[1, 2, 3], config(false), RaftDisk::default());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for retries in 1..30 {
        for _ in 0..50 {
            let ms = solo.raft.binary_backoff_ms(retries, &mut rng);
            assert!(ms <= 1_000 && ms % 100 == 0, "retries {retries}: {ms}");
            if retries == 1 {
                assert!(ms <= 100, "first backoff below 2 × 100 ms: {ms}");
            }
        }
    }
}

#[test]
fn one_vote_per_epoch_even_across_a_restart() {
    let (mut solo, _) = Solo::new(1, &[1, 2, 3], config(false), RaftDisk::default());
    assert!(solo.vote(2, 1, 0, 0, false).vote_granted);
    assert!(!solo.vote(3, 1, 0, 0, false).vote_granted, "already voted for 2 in epoch 1");
    assert!(solo.vote(2, 1, 0, 0, false).vote_granted, "the same candidate asking again is granted");
    // The vote is in quorum-state: a restarted voter still refuses 3 in epoch 1.
    let disk = std::mem::replace(&mut solo.raft, Raft::new(1, BTreeSet::new(), config(false), RaftDisk::default()))
        .into_disk();
    assert_eq!(disk.election, ElectionRecord { epoch: 1, voted_for: Some(2), leader: None });
    let (mut solo, _) = Solo::new(1, &[1, 2, 3], config(false), disk);
    assert!(!solo.vote(3, 1, 0, 0, false).vote_granted);
    // A later epoch is a new election.
    assert!(solo.vote(3, 2, 0, 0, false).vote_granted);
}

#[test]
fn a_vote_needs_a_log_at_least_as_up_to_date() {
    let disk = RaftDisk { log: entries(&[1, 1, 2]), election: ElectionRecord { epoch: 2, ..Default::default() } };
    let (mut solo, _) = Solo::new(1, &[1, 2, 3], config(false), disk);
    assert!(!solo.vote(2, 3, 1, 5, false).vote_granted, "a longer log of an older epoch is behind");
    assert!(!solo.vote(2, 3, 2, 2, false).vote_granted, "same last epoch, shorter");
    assert!(solo.vote(3, 3, 2, 3, false).vote_granted, "equal logs");
    let stale = solo.vote(2, 2, 2, 9, false);
    assert!(!stale.vote_granted);
    assert_eq!(stale.error, ErrorCode::FencedLeaderEpoch, "a vote from an older epoch is fenced");
}

#[test]
fn a_follower_that_hears_its_leader_refuses_pre_votes() {
    let disk =
        RaftDisk { election: ElectionRecord { epoch: 4, voted_for: None, leader: Some(3) }, ..Default::default() };
    let (mut solo, out) = Solo::new(1, &[1, 2, 3], config(true), disk);
    assert_eq!(solo.raft.role(), RoleName::Follower);
    assert!(out.sends.iter().any(|(to, m)| *to == 3 && matches!(m, RaftMessage::Fetch(_))));
    // Not yet fetched in this epoch: the leader may be the unreachable one, so it grants.
    assert!(solo.vote(2, 4, 0, 0, true).vote_granted);
    solo.message(
        3,
        RaftMessage::FetchResponse(RaftFetchResponse {
            error: ErrorCode::None,
            leader_epoch: 4,
            leader_id: Some(3),
            high_watermark: 0,
            base_offset: 0,
            records: Vec::new(),
            diverging_epoch: None,
        }),
    );
    let refused = solo.vote(2, 4, 0, 0, true);
    assert!(!refused.vote_granted, "it heard its leader");
    assert_eq!(refused.leader_id, Some(3), "and says who leads");
    assert_eq!(solo.raft.epoch(), 4, "a pre-vote bumps no epoch");
    // A real vote is refused by any follower.
    assert!(!solo.vote(2, 4, 0, 0, false).vote_granted);
}

#[test]
fn a_prospective_bumps_the_epoch_only_after_a_majority_of_pre_votes() {
    let (mut solo, _) = Solo::new(1, &[1, 2, 3], config(true), RaftDisk::default());
    let out = solo.timer(RaftTimer::Election);
    assert_eq!(solo.raft.role(), RoleName::Prospective);
    assert_eq!(solo.raft.epoch(), 0);
    let asked: Vec<i32> = out
        .sends
        .iter()
        .filter(|(_, m)| matches!(m, RaftMessage::Vote(v) if v.pre_vote && v.candidate_epoch == 0))
        .map(|(to, _)| *to)
        .collect();
    assert_eq!(asked, vec![2, 3]);
    let out = solo.message(2, granted(true, 0));
    assert_eq!(solo.raft.role(), RoleName::Candidate);
    assert_eq!(solo.raft.epoch(), 1);
    assert!(out.sends.iter().all(|(_, m)| matches!(m, RaftMessage::Vote(v) if !v.pre_vote && v.candidate_epoch == 1)));
    solo.message(3, granted(false, 1));
    assert!(solo.raft.is_leader());
    assert_eq!(solo.raft.log().entries()[0].payload, Payload::LeaderChange { leader: 1 });
}

// ---- replication ----------------------------------------------------------------------------------

#[test]
fn the_high_watermark_moves_only_once_an_entry_of_the_leaders_epoch_is_committed() {
    // Member 1 holds three entries of epoch 1 that nobody else has, and wins epoch 2.
    let disk = RaftDisk { log: entries(&[1, 1, 1]), election: ElectionRecord { epoch: 1, ..Default::default() } };
    let (mut solo, _) = Solo::new(1, &[1, 2, 3], config(false), disk);
    solo.timer(RaftTimer::Election);
    solo.message(2, granted(false, 2));
    assert!(solo.raft.is_leader());
    assert_eq!(solo.raft.log().end_offset(), 4, "the LeaderChange record at offset 3");
    // Voter 2 reaches offset 3: the old entries are on a majority, but nothing of epoch 2 is.
    solo.message(2, fetch(2, 2, 3, 1));
    assert_eq!(solo.raft.high_watermark(), 0, "old-epoch entries are not committed by counting replicas");
    solo.message(2, fetch(2, 2, 4, 2));
    assert_eq!(solo.raft.high_watermark(), 4, "the LeaderChange is committed, and everything before it");
}

#[test]
fn a_divergent_tail_is_truncated_and_replaced_by_the_leaders() {
    // Follower 2 wrote two entries as leader of epoch 2 that never committed; 1 leads epoch 3.
    let leader_disk = RaftDisk {
        log: entries(&[1, 1, 3, 3]),
        election: ElectionRecord { epoch: 3, voted_for: None, leader: Some(3) },
    };
    let (mut leader, _) = Solo::new(1, &[1, 2, 3], config(false), leader_disk);
    leader.timer(RaftTimer::FetchTimeout);
    leader.message(3, granted(false, 4));
    assert!(leader.raft.is_leader());

    let follower_disk = RaftDisk {
        log: entries(&[1, 1, 2, 2]),
        election: ElectionRecord { epoch: 4, voted_for: None, leader: Some(1) },
    };
    let (mut follower, out) = Solo::new(2, &[1, 2, 3], config(false), follower_disk);
    let mut pending: Vec<(i32, RaftMessage<u32>)> = out.sends;
    let mut truncated = None;
    for _ in 0..10 {
        let mut next = Vec::new();
        for (to, message) in pending {
            let out = if to == 1 { leader.message(2, message) } else { follower.message(1, message) };
            truncated = truncated.or(out.events.iter().find_map(|e| match e {
                RaftEvent::Truncated { from, to } => Some((*from, *to)),
                _ => None,
            }));
            next.extend(out.sends.into_iter().filter(|(to, _)| *to == 1 || *to == 2));
        }
        pending = next;
    }
    assert_eq!(truncated, Some((4, 2)), "truncated to the end of epoch 1 on the leader");
    assert_eq!(follower.raft.log().entries(), leader.raft.log().entries(), "the leader's log replaced the tail");
}

#[test]
fn committed_entries_survive_any_leader_change() {
    let mut q = Quorum::new(&[1, 2, 3], &[], config(true));
    q.run_for(3_000);
    for round in 0..6u32 {
        for i in 0..5 {
            q.append(round * 10 + i);
        }
        q.run_for(50);
        let leader = q.leader().expect("a leader");
        q.kill(leader);
        q.run_for(6_000);
        q.restart(leader);
        q.run_for(3_000);
    }
    // `check` compared every member's committed prefix after every step; all 30 writes made it.
    let data: Vec<u32> = q
        .committed
        .iter()
        .filter_map(|e| match e.payload {
            Payload::Data(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(data.len(), 30, "{data:?}");
    assert!(q.leaders.len() >= 7, "a new epoch per failover: {:?}", q.leaders);
}

// ---- check-quorum, pre-vote and graceful resignation ------------------------------------------

#[test]
fn a_leader_cut_off_from_the_quorum_resigns_after_one_and_a_half_fetch_timeouts() {
    let mut q = Quorum::new(&[1, 2, 3], &[], config(true));
    q.run_for(3_000);
    let old = q.leader().unwrap();
    let cut_at = q.now;
    q.isolate(old);
    q.run_for(5_000);
    let resigned = q
        .events
        .iter()
        .find(|(_, id, e)| *id == old && matches!(e, RaftEvent::Resigned { check_quorum: true, .. }))
        .map(|(at, _, _)| *at)
        .expect("the cut-off leader resigned");
    let after_ms = resigned.ms_since(cut_at);
    assert!(
        (2_500..=3_000).contains(&after_ms),
        "resigned {after_ms} ms after the cut (1.5 × 2 s after its last fetch)"
    );
    let new = q.leader().expect("the majority elected another leader");
    assert_ne!(new, old);
    q.heal();
    q.run_for(3_000);
    assert_eq!(q.member(old).leader(), Some(new), "after the heal the old leader follows");
}

#[test]
fn pre_vote_keeps_a_healed_voter_from_deposing_a_healthy_leader() {
    let run = |pre_vote: bool| {
        let mut q = Quorum::new(&[1, 2, 3], &[], config(pre_vote));
        q.run_for(3_000);
        let leader = q.leader().unwrap();
        let epoch = q.member(leader).epoch();
        let cut = *q.voters.iter().find(|&&v| v != leader).unwrap();
        q.isolate(cut);
        q.run_for(10_000);
        q.heal();
        q.run_for(5_000);
        (leader, epoch, q.leader().unwrap(), q.member(leader).epoch(), q.member(cut).epoch())
    };
    let (leader, epoch, after, epoch_after, cut_epoch) = run(true);
    assert_eq!((after, epoch_after), (leader, epoch), "with pre-vote the leader keeps its epoch");
    assert_eq!(cut_epoch, epoch, "the cut-off voter never bumped its epoch");
    let (_, epoch, _, epoch_after, _) = run(false);
    assert!(epoch_after > epoch, "without pre-vote the healed voter's higher epoch deposes the leader");
}

#[test]
fn a_graceful_resignation_hands_over_faster_than_a_timeout() {
    let mut q = Quorum::new(&[1, 2, 3], &[], config(true));
    q.run_for(3_000);
    q.append(1);
    q.run_for(100);
    let old = q.leader().unwrap();
    let at = q.now;
    let mut out = RaftOut::default();
    q.members.get_mut(&old).unwrap().resign(q.now, q.rngs.get_mut(&old).unwrap(), &mut out);
    q.apply(old, out);
    q.run_for(1_000);
    let new = q.leader().expect("a successor within 1 s (the fetch timeout is 2 s)");
    assert_ne!(new, old);
    let elected = q
        .events
        .iter()
        .find(|(t, id, e)| *t > at && *id == new && matches!(e, RaftEvent::Transition { role: RoleName::Leader, .. }))
        .unwrap()
        .0;
    assert!(elected.ms_since(at) < 100, "the first preferred successor starts at once: {}", elected.ms_since(at));
}

#[test]
fn a_quorum_without_a_majority_elects_nobody_and_commits_nothing() {
    let mut q = Quorum::new(&[1, 2, 3], &[], config(true));
    q.run_for(3_000);
    let leader = q.leader().unwrap();
    let hw = q.member(leader).high_watermark();
    let others: Vec<i32> = q.voters.iter().copied().filter(|&v| v != leader).collect();
    q.kill(others[0]);
    q.kill(others[1]);
    q.append(7);
    q.run_for(20_000);
    assert_eq!(q.leader(), None, "check-quorum made the lone leader resign");
    assert_eq!(q.member(leader).high_watermark(), hw, "nothing committed without a majority");
    assert!(q.member(leader).epoch() == q.leaders.keys().copied().max().unwrap(), "no epoch won since");
}

// ---- a sweep of random faults ---------------------------------------------------------------------

/// Kills, restarts, pauses and one-member isolations at random for 60 s, with writes throughout, then a
/// heal: every step keeps the promises (`Quorum::check`), and the quorum converges on one leader
/// that every member follows, with every member's log committed to the end.
fn sweep(seed: u64, voters: &[i32], pre_vote: bool, settle_ms: u64) -> Result<(), String> {
    use rand_chacha::rand_core::RngCore;
    let mut q = Quorum::new(voters, &[100], config(pre_vote));
    for id in voters.iter().chain([100].iter()) {
        q.rngs.insert(*id, ChaCha8Rng::seed_from_u64(seed * 1000 + *id as u64));
    }
    let mut faults = ChaCha8Rng::seed_from_u64(seed);
    let mut value = 0;
    for _ in 0..60 {
        let id = voters[(faults.next_u32() as usize) % voters.len()];
        match faults.next_u32() % 6 {
            0 if q.members.contains_key(&id) && q.down.len() < voters.len() / 2 => q.kill(id),
            1 if q.down.contains_key(&id) => q.restart(id),
            2 => q.isolate(id),
            3 => q.heal(),
            4 => q.pause(id, u64::from(faults.next_u32() % 5_000)),
            _ => {}
        }
        value += 1;
        q.append(value);
        q.run_for(u64::from(faults.next_u32() % 2_000));
    }
    q.heal();
    let down: Vec<i32> = q.down.keys().copied().collect();
    for id in down {
        q.restart(id);
    }
    q.run_for(settle_ms);
    if q.leader().is_none() {
        return Err(format!(
            "seed {seed}, voters {voters:?}, pre_vote {pre_vote}: no leader {settle_ms} ms after the heal"
        ));
    }
    q.append(0);
    q.run_for(1_000);
    let leader = q.leader().unwrap();
    for (id, raft) in &q.members {
        assert_eq!(raft.leader(), Some(leader), "seed {seed}: member {id} follows the leader");
        assert_eq!(raft.high_watermark(), raft.log().end_offset(), "seed {seed}: member {id} fully committed");
    }
    Ok(())
}

#[test]
fn random_kills_and_partitions_keep_the_promises_and_converge() {
    for seed in 0..40 {
        sweep(seed, &[1, 2, 3], true, 20_000).unwrap();
        sweep(seed, &[1, 2, 3, 4, 5], true, 20_000).unwrap();
    }
}

/// Before Kafka 4.0 (no pre-vote) a voter with a stale log that keeps losing elections bumps
/// the epoch every time its backoff (at most `election.backoff.max.ms`, 1 s) ends. Each bump
/// moves the other voters to the new epoch, but does not restart their election timers
/// (`QuorumState.transitionToUnattached` keeps the remaining time of an Unattached, Candidate or
/// Resigned voter; `QuorumStateTest.testUnattachedToUnattached`), so one of them still stands
/// within its timeout and wins. The stale voter disrupts, it does not block: every seed converges
/// within 20 s. (Restarting the timers at every bump kept some seeds leaderless for minutes.)
#[test]
fn without_pre_vote_a_stale_candidate_delays_but_does_not_prevent_convergence() {
    for seed in 0..40 {
        sweep(seed, &[1, 2, 3], false, 20_000).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}
