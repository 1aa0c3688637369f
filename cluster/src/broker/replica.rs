//! One partition as one broker holds it: its log, its high watermark, and its role.
//!
//! The **leader** appends produced records, tracks how far each follower has fetched, and moves
//! the high watermark (HW) to the smallest log end offset among the in-sync replicas: a record
//! below the HW is on every ISR member, so it survives the loss of any of them ("committed").
//! A follower that has not caught up with the leader's log end for `replica.lag.time.max.ms`
//! leaves the ISR; one that reaches the HW (and the start of the leader's epoch) may rejoin. The
//! leader cannot change the ISR itself: it asks the controller with AlterPartition, and until the
//! controller answers it counts HW over the *maximal* ISR (the current ISR plus any member it has
//! asked to add), so that a not-yet-confirmed change can never make the HW overtake a replica.
//!
//! A **follower** first finds where its log diverges from the new leader's (truncation by leader
//! epoch, KIP-101/KIP-279), then fetches from its log end, appends what it gets, and learns the HW
//! from the leader's fetch responses.

use crate::log::Log;
use crate::record::RecordBatch;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowerPhase {
    /// Asking the leader where our shared history ends (OffsetsForLeaderEpoch).
    Truncating,
    Fetching,
    /// The leader has a newer epoch than we know: wait for the metadata to catch up.
    AwaitingMetadata,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset as of its last fetch (-1: unknown yet).
    pub log_end_offset: i64,
    /// Last time (ms) the follower was caught up with the leader (Kafka's `lastCaughtUpTimeMs`).
    pub last_caught_up_ms: u64,
    /// The leader's log end at the previous fetch, and when that fetch came.
    pub last_fetch_leader_log_end: i64,
    pub last_fetch_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingIsr {
    Expand(Vec<BrokerId>),
    Shrink(Vec<BrokerId>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    /// Where this leader's epoch began in the log.
    pub epoch_start_offset: i64,
    pub followers: BTreeMap<BrokerId, FollowerProgress>,
    /// An AlterPartition sent to the controller and not answered yet.
    pub pending_isr: Option<PendingIsr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not serving: just recovered, or no longer a replica.
    Offline,
    Leader(LeaderState),
    /// `leader` is `None` while the partition has no leader.
    Follower { leader: Option<BrokerId>, phase: FollowerPhase },
}

/// What an idempotent producer has written here lately: Kafka keeps the last five batches per
/// producer, so a retried batch is recognised and answered with its original offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_epoch: i16,
    /// `(first sequence, last sequence, base offset)`, oldest first.
    pub batches: VecDeque<(i32, i32, i64)>,
}

pub const PRODUCER_BATCHES_KEPT: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// Already written at this base offset: answer success without writing again.
    Duplicate(i64),
    OutOfOrder { expected: i32 },
}

#[derive(Clone, Debug)]
pub struct Replica {
    pub partition: TopicPartition,
    pub log: Log,
    pub high_watermark: i64,
    /// The high watermark as last written to the checkpoint file.
    pub checkpointed_high_watermark: i64,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub role: Role,
    pub producers: BTreeMap<i64, ProducerEntry>,
}

impl Replica {
    pub fn new(partition: TopicPartition, log: Log, checkpointed_high_watermark: i64) -> Self {
        let high_watermark = checkpointed_high_watermark.clamp(log.log_start_offset(), log.log_end_offset());
        let mut replica = Replica {
            partition,
            log,
            high_watermark,
            checkpointed_high_watermark,
            leader_epoch: -1,
            partition_epoch: -1,
            replicas: Vec::new(),
            isr: Vec::new(),
            role: Role::Offline,
            producers: BTreeMap::new(),
        };
        replica.rebuild_producer_state();
        replica
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    pub fn leader_state(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(state) => Some(state),
            _ => None,
        }
    }

    pub fn leader_state_mut(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            Role::Leader(state) => Some(state),
            _ => None,
        }
    }

    pub fn follower_of(&self) -> Option<(BrokerId, &FollowerPhase)> {
        match &self.role {
            Role::Follower { leader: Some(leader), phase } => Some((*leader, phase)),
            _ => None,
        }
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// The ISR the high watermark is computed over: the committed ISR, widened by a pending
    /// expansion (Kafka's `maximalIsr`).
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        match self.leader_state().and_then(|s| s.pending_isr.as_ref()) {
            Some(PendingIsr::Expand(isr)) => isr.clone(),
            _ => self.isr.clone(),
        }
    }

    /// Update a follower's progress from a fetch at `fetch_offset` (its log end), as Kafka's
    /// `Replica.updateFetchState` does.
    pub fn record_follower_fetch(&mut self, follower: BrokerId, fetch_offset: i64, now_ms: u64) {
        let leader_log_end = self.log.log_end_offset();
        let Some(state) = self.leader_state_mut() else { return };
        let Some(progress) = state.followers.get_mut(&follower) else { return };
        if fetch_offset >= leader_log_end {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= progress.last_fetch_leader_log_end {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.log_end_offset = fetch_offset;
        progress.last_fetch_leader_log_end = leader_log_end;
        progress.last_fetch_ms = now_ms;
    }

    fn is_caught_up(progress: &FollowerProgress, leader_log_end: i64, now_ms: u64, lag_max_ms: u64) -> bool {
        progress.log_end_offset == leader_log_end || now_ms.saturating_sub(progress.last_caught_up_ms) <= lag_max_ms
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end among the maximal ISR and any
    /// caught-up, ISR-eligible follower. Returns the new HW if it moved.
    pub fn maybe_advance_high_watermark(&mut self, now_ms: u64, lag_max_ms: u64, eligible: impl Fn(BrokerId) -> bool) -> Option<i64> {
        let leader_log_end = self.log.log_end_offset();
        let maximal_isr = self.maximal_isr();
        let state = self.leader_state()?;
        let mut new_hw = leader_log_end;
        for (id, progress) in &state.followers {
            let counts = maximal_isr.contains(id)
                || (Self::is_caught_up(progress, leader_log_end, now_ms, lag_max_ms) && eligible(*id));
            if counts && progress.log_end_offset < new_hw {
                new_hw = progress.log_end_offset.max(0);
            }
        }
        if new_hw > self.high_watermark {
            assert!(new_hw <= leader_log_end, "HW {new_hw} may not pass the leader's log end {leader_log_end}");
            self.high_watermark = new_hw;
            Some(new_hw)
        } else {
            None
        }
    }

    /// Followers in the ISR that have not caught up within `replica.lag.time.max.ms`, with how
    /// long ago they last did.
    pub fn out_of_sync_followers(&self, now_ms: u64, lag_max_ms: u64) -> Vec<(BrokerId, u64)> {
        let leader_log_end = self.log.log_end_offset();
        let Some(state) = self.leader_state() else { return Vec::new() };
        state
            .followers
            .iter()
            .filter(|(id, _)| self.isr.contains(id))
            .filter(|(_, p)| !Self::is_caught_up(p, leader_log_end, now_ms, lag_max_ms))
            .map(|(id, p)| (*id, now_ms.saturating_sub(p.last_caught_up_ms)))
            .collect()
    }

    /// Whether `follower` may rejoin the ISR: it has reached the HW and the start of the
    /// leader's current epoch (Kafka's `isFollowerInSync` plus the epoch-start check).
    pub fn may_join_isr(&self, follower: BrokerId) -> bool {
        let Some(state) = self.leader_state() else { return false };
        if self.isr.contains(&follower) || state.pending_isr.is_some() {
            return false;
        }
        state
            .followers
            .get(&follower)
            .is_some_and(|p| p.log_end_offset >= self.high_watermark && p.log_end_offset >= state.epoch_start_offset)
    }

    /// Idempotence: is this batch new, a retry of one already written, or out of order?
    pub fn check_sequence(&self, batch: &RecordBatch) -> SequenceCheck {
        if !batch.is_idempotent() {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return if batch.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        };
        if let Some(&(_, _, base_offset)) =
            entry.batches.iter().find(|(first, last, _)| *first == batch.base_sequence && *last == batch.last_sequence())
        {
            return SequenceCheck::Duplicate(base_offset);
        }
        let expected = entry.batches.back().map_or(0, |(_, last, _)| last.wrapping_add(1));
        if batch.base_sequence == expected {
            SequenceCheck::Append
        } else {
            SequenceCheck::OutOfOrder { expected }
        }
    }

    /// Remember an appended idempotent batch.
    pub fn remember_producer_batch(&mut self, batch: &RecordBatch) {
        if !batch.is_idempotent() {
            return;
        }
        let entry = self.producers.entry(batch.producer_id).or_default();
        entry.producer_epoch = batch.producer_epoch;
        entry.batches.push_back((batch.base_sequence, batch.last_sequence(), batch.base_offset));
        while entry.batches.len() > PRODUCER_BATCHES_KEPT {
            entry.batches.pop_front();
        }
    }

    /// Rebuild producer state from the log (after recovery or truncation), as Kafka does from its
    /// producer snapshots plus the log.
    pub fn rebuild_producer_state(&mut self) {
        let batches: Vec<RecordBatch> = self.log.batches().filter(|b| b.is_idempotent()).cloned().collect();
        self.producers.clear();
        for batch in &batches {
            self.remember_producer_batch(batch);
        }
    }
}
