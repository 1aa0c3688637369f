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

use crate::error::ErrorCode;
use crate::invariant::ensure;
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
    Follower {
        leader: Option<BrokerId>,
        phase: FollowerPhase,
    },
}

/// What an idempotent producer has written here lately: Kafka keeps the last five batches per
/// producer, so a retried batch is recognised and answered with its original offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_epoch: i16,
    /// The epoch of the last transaction coordinator that wrote a marker for this producer here
    /// (`ProducerStateEntry.coordinatorEpoch`), -1 if none.
    pub coordinator_epoch: i32,
    /// `(first sequence, last sequence, base offset)`, oldest first.
    pub batches: VecDeque<(i32, i32, i64)>,
}

/// Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`. An idempotent producer keeps at most five
/// requests in flight, so a batch it retries is always among the last five it sent.
pub const PRODUCER_BATCHES_KEPT: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// Already written at this base offset: answer success without writing again.
    Duplicate(i64),
    OutOfOrder {
        expected: i32,
    },
    /// The batch's producer epoch is older than one already written here: a fenced (zombie)
    /// producer (`ProducerAppendInfo.checkProducerEpoch`: INVALID_PRODUCER_EPOCH).
    StaleEpoch,
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
    /// KIP-890 part 1's verification guards (`VerificationStateEntry` in the
    /// `ProducerStateManager`): producer id -> (epoch, guard) of a transactional produce waiting
    /// for its coordinator's word. A marker for the producer removes it, so a produce verified
    /// before the marker cannot append after it. Volatile, as in Kafka.
    pub verification_guards: BTreeMap<i64, (i16, u64)>,
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
            verification_guards: BTreeMap::new(),
        };
        replica.rebuild_producer_state();
        replica
    }

    /// As held by broker `me`: the log's invariants; `log start <= HW <= LEO` (Kafka's
    /// `UnifiedLog.updateHighWatermark` clamps the HW into that range); once the replica has a role,
    /// the ISR is a subset of the replicas (KRaft's `PartitionRegistration`); and a leader is in its
    /// own ISR: the controller elects leaders from the ISR, and a leader never proposes an ISR
    /// without itself (`Partition.maybeShrinkIsr` only drops followers; AlterPartition keeps the
    /// leader; a fenced leader loses leadership and ISR membership in one metadata change).
    pub fn check_invariants(&self, me: BrokerId) -> Result<(), String> {
        let tp = &self.partition;
        self.log.check_invariants().map_err(|e| format!("{tp}: {e}"))?;
        let (start, hw, leo) = (self.log.log_start_offset(), self.high_watermark, self.log_end_offset());
        ensure(start <= hw && hw <= leo, || format!("{tp}: HW {hw} outside [log start {start}, LEO {leo}]"))?;
        if self.role != Role::Offline {
            ensure(self.isr.iter().all(|id| self.replicas.contains(id)), || {
                format!("{tp}: ISR {:?} not within replicas {:?}", self.isr, self.replicas)
            })?;
        }
        if self.is_leader() {
            ensure(self.isr.contains(&me), || {
                format!("{tp}: leader broker-{me} (epoch {}) not in its ISR {:?}", self.leader_epoch, self.isr)
            })?;
        }
        Ok(())
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
    pub fn maximal_isr(&self) -> &[BrokerId] {
        match self.leader_state().and_then(|s| s.pending_isr.as_ref()) {
            Some(PendingIsr::Expand(isr)) => isr,
            _ => &self.isr,
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
    pub fn maybe_advance_high_watermark(
        &mut self,
        now_ms: u64,
        lag_max_ms: u64,
        eligible: impl Fn(BrokerId) -> bool,
    ) -> Option<i64> {
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
            self.log.on_high_watermark(new_hw);
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
        // No state for this producer (its first batch here, or its batches all left the log):
        // Kafka's `ProducerAppendInfo.checkSequence` accepts any sequence when the current entry
        // has no producer epoch ("accept writes with any sequence number"). Demanding 0 made
        // producers reset and re-send batches already written.
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return SequenceCheck::Append;
        };
        if batch.producer_epoch < entry.producer_epoch {
            return SequenceCheck::StaleEpoch;
        }
        // A new epoch starts its sequences again at 0 (`ProducerAppendInfo.checkSequence`).
        if batch.producer_epoch > entry.producer_epoch {
            return if batch.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        }
        if let Some(&(_, _, base_offset)) = entry
            .batches
            .iter()
            .find(|(first, last, _)| *first == batch.base_sequence && *last == batch.last_sequence())
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

    /// May a transaction marker for this producer be written (`ProducerAppendInfo.
    /// appendEndTxnMarker`)? Not from a coordinator older than the last one seen here, nor with an
    /// epoch older than the producer's.
    pub fn check_marker(&self, producer_id: i64, producer_epoch: i16, coordinator_epoch: i32) -> Result<(), ErrorCode> {
        let Some(entry) = self.producers.get(&producer_id) else { return Ok(()) };
        if entry.coordinator_epoch > coordinator_epoch {
            return Err(ErrorCode::TransactionCoordinatorFenced);
        }
        if producer_epoch < entry.producer_epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        Ok(())
    }

    /// Whether the producer has a transaction open here in this epoch
    /// (`UnifiedLog.hasOngoingTransaction`): its next batches need no verification.
    pub fn has_ongoing_transaction(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.log.ongoing_transaction(producer_id).is_some()
            && self.producers.get(&producer_id).is_some_and(|e| e.producer_epoch == producer_epoch)
    }

    /// Remember an appended idempotent batch, or a marker.
    pub fn remember_producer_batch(&mut self, batch: &RecordBatch) {
        if !batch.is_idempotent() {
            return;
        }
        let entry = self.producers.entry(batch.producer_id).or_insert_with(|| ProducerEntry {
            producer_epoch: batch.producer_epoch,
            coordinator_epoch: -1,
            batches: VecDeque::new(),
        });
        if batch.producer_epoch > entry.producer_epoch {
            // A new epoch: its sequences start over.
            entry.batches.clear();
        }
        entry.producer_epoch = entry.producer_epoch.max(batch.producer_epoch);
        if let Some(marker) = batch.control {
            entry.coordinator_epoch = marker.coordinator_epoch;
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::record::{Record, RecordBatch};

    const LAG_MS: u64 = 30_000;

    /// A leader for epoch 1 with followers 2 and 3 in the ISR, and `records` records in its log.
    fn leader(records: usize) -> Replica {
        let mut log = Log::new(0);
        log.assign_epoch_start(1);
        let config = TopicConfig::default();
        for i in 0..records {
            let batch = RecordBatch::new_unassigned(-1, -1, -1, 0, vec![Record::unkeyed(format!("v{i}"))]);
            log.append_as_leader(batch, 1, &config, 0);
        }
        let mut replica = Replica::new(TopicPartition::new("t", 0), log, 0);
        replica.leader_epoch = 1;
        replica.replicas = vec![1, 2, 3];
        replica.isr = vec![1, 2, 3];
        let progress = FollowerProgress {
            log_end_offset: -1,
            last_caught_up_ms: 0,
            last_fetch_leader_log_end: -1,
            last_fetch_ms: 0,
        };
        let followers = [(2, progress.clone()), (3, progress)].into_iter().collect();
        replica.role = Role::Leader(LeaderState { epoch_start_offset: 0, followers, pending_isr: None });
        replica
    }

    #[test]
    fn high_watermark_is_the_smallest_log_end_in_the_isr() {
        let mut r = leader(5);
        r.record_follower_fetch(2, 5, 100);
        assert_eq!(r.maybe_advance_high_watermark(100, LAG_MS, |_| true), None, "follower 3 has fetched nothing yet");
        r.record_follower_fetch(3, 3, 100);
        assert_eq!(r.maybe_advance_high_watermark(100, LAG_MS, |_| true), Some(3));
        r.record_follower_fetch(3, 5, 200);
        assert_eq!(r.maybe_advance_high_watermark(200, LAG_MS, |_| true), Some(5));
        assert_eq!(r.maybe_advance_high_watermark(300, LAG_MS, |_| true), None, "it never moves back");
    }

    #[test]
    fn a_lagging_follower_leaves_the_isr_after_replica_lag_time_max_ms() {
        let mut r = leader(5);
        // As when it became leader at 1 s: ISR members count as caught up then.
        if let Role::Leader(state) = &mut r.role {
            state.followers.values_mut().for_each(|p| p.last_caught_up_ms = 1_000);
        }
        r.record_follower_fetch(2, 5, 1_000);
        r.record_follower_fetch(3, 2, 1_000);
        assert!(r.out_of_sync_followers(1_000 + LAG_MS, LAG_MS).is_empty(), "exactly the limit is still in sync");
        let lagging = r.out_of_sync_followers(1_001 + LAG_MS, LAG_MS);
        assert_eq!(lagging, vec![(3, LAG_MS + 1)], "follower 3 never caught up again; follower 2 is at the log end");
    }

    #[test]
    fn catching_up_to_an_earlier_log_end_counts_as_caught_up_then() {
        // Kafka's rule: a fetch that reaches the leader's log end *as of the previous fetch*
        // proves the follower was caught up at the previous fetch's time.
        let mut r = leader(5);
        r.record_follower_fetch(2, 3, 1_000); // leader LEO was 5 here
        r.record_follower_fetch(2, 5, 2_000); // reaches 5, the log end of the previous fetch
        let progress = &r.leader_state().unwrap().followers[&2];
        assert_eq!(progress.last_caught_up_ms, 2_000, "fetch_offset == leader log end now");
        r.record_follower_fetch(3, 5, 3_000);
        assert_eq!(r.leader_state().unwrap().followers[&3].last_caught_up_ms, 3_000);
    }

    #[test]
    fn rejoining_needs_the_high_watermark_and_the_epoch_start() {
        let mut r = leader(5);
        r.isr = vec![1, 2];
        r.high_watermark = 4;
        if let Role::Leader(state) = &mut r.role {
            state.epoch_start_offset = 3;
        }
        r.record_follower_fetch(3, 3, 100);
        assert!(!r.may_join_isr(3), "below the high watermark");
        r.record_follower_fetch(3, 4, 200);
        assert!(r.may_join_isr(3));
        assert!(!r.may_join_isr(2), "already in the ISR");
    }

    #[test]
    fn a_pending_expansion_holds_the_high_watermark_back() {
        let mut r = leader(5);
        r.isr = vec![1, 2];
        r.record_follower_fetch(2, 5, 100);
        r.record_follower_fetch(3, 4, 100);
        if let Role::Leader(state) = &mut r.role {
            state.pending_isr = Some(PendingIsr::Expand(vec![1, 2, 3]));
        }
        assert_eq!(r.maximal_isr(), [1, 2, 3]);
        assert_eq!(r.maybe_advance_high_watermark(100, LAG_MS, |_| false), Some(4), "follower 3 counts already");
    }

    #[test]
    fn a_caught_up_follower_outside_the_isr_still_holds_the_high_watermark() {
        // KAFKA-13091-style rule: an ISR-eligible follower that is caught up is waited for.
        let mut r = leader(5);
        r.isr = vec![1, 2];
        r.record_follower_fetch(2, 5, 100);
        r.record_follower_fetch(3, 4, 100);
        assert_eq!(r.maybe_advance_high_watermark(100, LAG_MS, |_| true), Some(4));
        let mut r = leader(5);
        r.isr = vec![1, 2];
        r.record_follower_fetch(2, 5, 100);
        r.record_follower_fetch(3, 4, 100);
        assert_eq!(
            r.maybe_advance_high_watermark(100, LAG_MS, |_| false),
            Some(5),
            "a fenced broker is not waited for"
        );
    }

    #[test]
    fn idempotent_batches_are_recognised_when_retried() {
        let mut r = leader(0);
        let config = TopicConfig::default();
        let batch = |seq: i32, n: usize| {
            let records = (0..n).map(|i| Record::unkeyed(format!("r{i}"))).collect();
            RecordBatch::new_unassigned(77, 0, seq, 0, records)
        };
        assert_eq!(r.check_sequence(&batch(0, 2)), SequenceCheck::Append);
        let base = r.log.append_as_leader(batch(0, 2), 1, &config, 0);
        let appended = r.log.read(base, base + 1, 0).remove(0);
        r.remember_producer_batch(&appended);
        assert_eq!(r.check_sequence(&batch(0, 2)), SequenceCheck::Duplicate(0));
        assert_eq!(r.check_sequence(&batch(2, 1)), SequenceCheck::Append);
        assert_eq!(r.check_sequence(&batch(5, 1)), SequenceCheck::OutOfOrder { expected: 2 });
        assert_eq!(r.check_sequence(&batch(3, 1)), SequenceCheck::OutOfOrder { expected: 2 }, "a gap is not allowed");
    }

    #[test]
    fn invariant_hw_within_the_log_isr_within_replicas_leader_in_isr() {
        let healthy = leader(3);
        assert_eq!(healthy.check_invariants(1), Ok(()));

        let mut hw_past_leo = healthy.clone();
        hw_past_leo.high_watermark = 4;
        assert!(hw_past_leo.check_invariants(1).unwrap_err().contains("HW 4 outside"));

        let mut stranger_in_isr = healthy.clone();
        stranger_in_isr.isr.push(9);
        assert!(stranger_in_isr.check_invariants(1).unwrap_err().contains("not within replicas"));

        let mut leader_left_isr = healthy.clone();
        leader_left_isr.isr.retain(|id| *id != 1);
        assert!(leader_left_isr.check_invariants(1).unwrap_err().contains("not in its ISR"));
    }
}
