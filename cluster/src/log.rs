//! A partition's log: an append-only sequence of record batches, cut into segments.
//!
//! Offsets number the records from 0. The *log end offset* (LEO) is the offset the next record
//! will get; the *log start offset* is the first offset still kept (retention moves it up by
//! deleting whole segments). The *flushed offset* says how much of the log is known to be on the
//! disk itself rather than only in the operating system's page cache: Kafka does not fsync by
//! default, so a process crash loses nothing (the page cache survives it) but a power failure loses
//! everything past the flushed offset.
//!
//! The high watermark is not the log's business: it belongs to the replica (see
//! [`crate::broker`]), because only the leader decides it, from what its followers have.
//!
//! Transactions leave two things in the log besides their records: the *markers* (control
//! batches, COMMIT or ABORT, one offset each), and, derived from the batches, the *transaction
//! index* ([`TxnIndex`]): which producers have a transaction open here and where it began (Kafka's
//! `ProducerStateManager.ongoingTxns`), the transactions whose marker is written but perhaps not
//! yet replicated (`unreplicatedTxns`), and every aborted transaction's offset range (the
//! `.txnindex` files, `AbortedTxn`). Leaders and followers build it the same way, from the batches
//! they append, and rebuild it from the batches after a truncation, as Kafka rebuilds producer
//! state from its log.

use crate::config::TopicConfig;
use crate::epoch_cache::EpochCache;
use crate::invariant::ensure;
use crate::record::{ControlType, Record, RecordBatch};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An aborted transaction's range in one partition (Kafka's `AbortedTxn`): a `read_committed`
/// consumer drops this producer's batches from `first_offset` up to the ABORT marker at
/// `last_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What the log knows of the transactions written to it; see the module notes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnIndex {
    /// Producer id to the first offset of its open transaction.
    ongoing: BTreeMap<i64, i64>,
    /// Marker offset to the first offset of a finished transaction, kept until the high watermark
    /// passes the marker.
    unreplicated: BTreeMap<i64, i64>,
    /// Aborted transactions, by marker offset.
    aborted: Vec<AbortedTxn>,
}

impl TxnIndex {
    fn is_empty(&self) -> bool {
        self.ongoing.is_empty() && self.unreplicated.is_empty() && self.aborted.is_empty()
    }

    /// `ProducerAppendInfo.append` / `appendEndTxnMarker`, as far as the index goes.
    fn on_append(&mut self, batch: &RecordBatch) {
        if !batch.is_transactional {
            return;
        }
        match batch.control {
            None => {
                self.ongoing.entry(batch.producer_id).or_insert(batch.base_offset);
            }
            Some(marker) => {
                // A marker with no open transaction (a retried marker, or an abort of a
                // transaction that wrote nothing here) completes nothing (`completeTxn` is only
                // called for an ongoing one).
                let Some(first_offset) = self.ongoing.remove(&batch.producer_id) else { return };
                let last_offset = batch.base_offset;
                self.unreplicated.insert(last_offset, first_offset);
                if marker.control_type == ControlType::Abort {
                    self.aborted.push(AbortedTxn { producer_id: batch.producer_id, first_offset, last_offset });
                }
            }
        }
    }
}

impl Log {
    /// The first offset of the earliest transaction that is open, or whose marker the high
    /// watermark has not passed (`ProducerStateManager.firstUnstableOffset`).
    pub fn first_unstable_offset(&self, high_watermark: i64) -> Option<i64> {
        let ongoing = self.txn_index.ongoing.values().copied();
        let unreplicated = self.txn_index.unreplicated.range(high_watermark..).map(|(_, first)| *first);
        ongoing.chain(unreplicated).min()
    }

    /// The *last stable offset*: below it, every transaction is decided and its marker
    /// replicated. It is the first unstable offset, capped at the high watermark
    /// (`UnifiedLog.lastStableOffset`, `fetchLastStableOffsetMetadata`). `read_committed`
    /// consumers read only below it.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.first_unstable_offset(high_watermark).map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Forget finished transactions whose marker is below the high watermark
    /// (`ProducerStateManager.removeUnreplicatedTransactions`).
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        self.txn_index.unreplicated.retain(|marker, _| *marker >= high_watermark);
    }

    /// The aborted transactions a fetch of `[from, upto)` must tell a `read_committed` consumer
    /// about (`UnifiedLog.collectAbortedTransactions`): those that end at or after `from` and
    /// begin before `upto`.
    pub fn aborted_transactions(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        self.txn_index.aborted.iter().filter(|a| a.last_offset >= from && a.first_offset < upto).copied().collect()
    }

    /// The first offset of the producer's open transaction here, if any.
    pub fn ongoing_transaction(&self, producer_id: i64) -> Option<i64> {
        self.txn_index.ongoing.get(&producer_id).copied()
    }

    /// Producer ids with a transaction open here, with its first offset.
    pub fn ongoing_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.txn_index.ongoing.iter().map(|(p, o)| (*p, *o))
    }

    /// Rebuild the index from the batches (after a truncation), as Kafka rebuilds its producer
    /// state by reading the log.
    fn rebuild_txn_index(&mut self) {
        let mut index = TxnIndex::default();
        for batch in self.segments.iter().flat_map(|s| s.batches.iter()) {
            index.on_append(batch);
        }
        self.txn_index = index;
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub base_offset: i64,
    pub batches: Vec<RecordBatch>,
    pub size_bytes: u64,
    /// When the segment was opened (virtual ms), for `segment.ms`.
    pub created_ms: u64,
    /// Largest batch timestamp in the segment, for `retention.ms`.
    pub max_timestamp_ms: u64,
}

impl Segment {
    fn new(base_offset: i64, now_ms: u64) -> Self {
        Segment { base_offset, batches: Vec::new(), size_bytes: 0, created_ms: now_ms, max_timestamp_ms: 0 }
    }

    /// The offset after this segment's last record.
    pub fn next_offset(&self) -> i64 {
        self.batches.last().map_or(self.base_offset, RecordBatch::next_offset)
    }
}

/// Why a log lost its tail, for the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TruncateReason {
    /// The replica's log diverged from the new leader's (KIP-101 truncation by leader epoch).
    DivergedFromLeader,
    /// The high watermark was the fallback truncation point (the leader knew no matching epoch).
    ToHighWatermark,
    /// A power failure took whatever had not reached the disk.
    PowerFailure,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    flushed_offset: i64,
    /// When the oldest unflushed record was appended (for `flush.ms`).
    unflushed_since_ms: Option<u64>,
    epoch_cache: EpochCache,
    #[serde(default, skip_serializing_if = "TxnIndex::is_empty")]
    txn_index: TxnIndex,
}

impl Log {
    pub fn new(now_ms: u64) -> Self {
        Log {
            segments: vec![Segment::new(0, now_ms)],
            log_start_offset: 0,
            log_end_offset: 0,
            flushed_offset: 0,
            unflushed_since_ms: None,
            epoch_cache: EpochCache::default(),
            txn_index: TxnIndex::default(),
        }
    }

    /// An empty log whose next offset is `offset` (a follower starting over at the leader's log
    /// start offset).
    pub fn new_at(offset: i64, now_ms: u64) -> Self {
        let mut log = Log::new(now_ms);
        log.segments[0].base_offset = offset;
        log.log_start_offset = offset;
        log.log_end_offset = offset;
        log.flushed_offset = offset;
        log
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset
    }

    pub fn epoch_cache(&self) -> &EpochCache {
        &self.epoch_cache
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epoch_cache.latest_epoch()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    /// Note that a new leader epoch starts at the current log end (a broker becoming leader).
    pub fn assign_epoch_start(&mut self, epoch: i32) {
        self.epoch_cache.assign(epoch, self.log_end_offset);
    }

    /// Append as leader: the batch gets the next offsets and the leader's epoch. Returns its base
    /// offset.
    pub fn append_as_leader(
        &mut self,
        mut batch: RecordBatch,
        leader_epoch: i32,
        config: &TopicConfig,
        now_ms: u64,
    ) -> i64 {
        batch.base_offset = self.log_end_offset;
        batch.leader_epoch = leader_epoch;
        let base = batch.base_offset;
        self.append(batch, config, now_ms);
        base
    }

    /// Append as follower: the batch keeps the offsets and epoch the leader gave it.
    pub fn append_as_follower(&mut self, batch: RecordBatch, config: &TopicConfig, now_ms: u64) {
        assert_eq!(
            batch.base_offset, self.log_end_offset,
            "follower append must continue the log: batch at {} but log end is {}",
            batch.base_offset, self.log_end_offset
        );
        self.append(batch, config, now_ms);
    }

    fn append(&mut self, batch: RecordBatch, config: &TopicConfig, now_ms: u64) {
        assert!(!batch.is_empty(), "empty batches are never appended");
        self.maybe_roll(config, now_ms);
        self.epoch_cache.assign(batch.leader_epoch, batch.base_offset);
        self.txn_index.on_append(&batch);
        self.log_end_offset = batch.next_offset();
        let segment = self.segments.last_mut().expect("a log always has an active segment");
        segment.size_bytes += batch.size_bytes() as u64;
        segment.max_timestamp_ms = segment.max_timestamp_ms.max(batch.timestamp_ms);
        segment.batches.push(batch);
        self.unflushed_since_ms.get_or_insert(now_ms);
        self.maybe_flush_by_config(config, now_ms);
    }

    /// Roll to a new segment when the active one is full or old (`segment.bytes`, `segment.ms`).
    /// Kafka flushes a segment when it rolls it.
    fn maybe_roll(&mut self, config: &TopicConfig, now_ms: u64) {
        let active = self.segments.last().expect("a log always has an active segment");
        let full = active.size_bytes >= config.segment_bytes;
        let old = !active.batches.is_empty() && now_ms.saturating_sub(active.created_ms) >= config.segment_ms;
        if full || old {
            self.roll(now_ms);
        }
    }

    fn roll(&mut self, now_ms: u64) {
        self.segments.push(Segment::new(self.log_end_offset, now_ms));
        // Kafka flushes the old segment asynchronously on roll.
        self.flush();
    }

    /// Everything written reaches the disk (an fsync, or the OS writing dirty pages back).
    pub fn flush(&mut self) {
        self.flushed_offset = self.log_end_offset;
        self.unflushed_since_ms = None;
    }

    /// Linux's flusher: a file dirty since `expire_ms` ago or longer is written back whole,
    /// including what was written after it first became dirty. Returns whether it wrote.
    pub fn os_writeback(&mut self, now_ms: u64, expire_ms: u64) -> bool {
        let expired = self.unflushed_since_ms.is_some_and(|since| now_ms.saturating_sub(since) >= expire_ms);
        if !expired {
            return false;
        }
        let wrote = self.flushed_offset < self.log_end_offset;
        self.flush();
        wrote
    }

    /// Kafka's own flush policy (`flush.messages`, `flush.ms`); off by default.
    pub fn maybe_flush_by_config(&mut self, config: &TopicConfig, now_ms: u64) {
        let unflushed = (self.log_end_offset - self.flushed_offset) as u64;
        let overdue = self.unflushed_since_ms.is_some_and(|since| now_ms.saturating_sub(since) >= config.flush_ms);
        if unflushed > 0 && (unflushed >= config.flush_messages || overdue) {
            self.flush();
        }
    }

    /// Batches holding offsets in `[from, upto)`, at least one batch if any, then up to `max_bytes`.
    pub fn read(&self, from: i64, upto: i64, max_bytes: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        // Binary search to the first batch that holds `from` or comes after it: a fetch at the
        // log end is the common case, and a segment can hold millions of batches.
        let first_segment = self.segments.partition_point(|s| s.next_offset() <= from);
        for segment in &self.segments[first_segment..] {
            let first_batch = segment.batches.partition_point(|b| b.next_offset() <= from);
            for batch in &segment.batches[first_batch..] {
                if batch.base_offset >= upto || (!out.is_empty() && bytes + batch.size_bytes() > max_bytes) {
                    return out;
                }
                bytes += batch.size_bytes();
                out.push(batch.clone());
            }
        }
        out
    }

    /// The record at `offset`, with the batch that holds it.
    pub fn record_at(&self, offset: i64) -> Option<(&RecordBatch, &Record)> {
        if offset < self.log_start_offset || offset >= self.log_end_offset {
            return None;
        }
        let segment_index = self.segments.partition_point(|s| s.next_offset() <= offset);
        let segment = self.segments.get(segment_index)?;
        let batch_index = segment.batches.partition_point(|b| b.next_offset() <= offset);
        let batch = segment.batches.get(batch_index)?;
        let record = batch.records.get((offset - batch.base_offset) as usize)?;
        Some((batch, record))
    }

    /// Iterate every batch still in the log.
    pub fn batches(&self) -> impl Iterator<Item = &RecordBatch> {
        self.segments.iter().flat_map(|s| s.batches.iter())
    }

    /// Remove every record at or after `offset`. Returns how many records went.
    pub fn truncate_to(&mut self, offset: i64) -> i64 {
        if offset >= self.log_end_offset {
            // Nothing to remove, but the epoch cache is truncated all the same: it may hold an
            // entry at the log end for an epoch this broker led without appending anything, which
            // conflicts with the new leader's history (Kafka's `UnifiedLog.truncateTo`: "Always
            // truncate epoch cache since we may have a conflicting epoch entry at the end of the
            // log"). Left there, the follower would ask about that epoch forever.
            self.epoch_cache.truncate_from_end(self.log_end_offset);
            return 0;
        }
        let offset = offset.max(self.log_start_offset);
        let before = self.log_end_offset;
        while self.segments.len() > 1
            && self.segments.last().is_some_and(|s| s.base_offset >= offset && s.base_offset > self.log_start_offset)
        {
            self.segments.pop();
        }
        let segment = self.segments.last_mut().expect("a log always has an active segment");
        // Batches are atomic: truncation points are batch boundaries in a healthy cluster; a
        // batch that straddles the point is dropped whole, as Kafka does.
        segment.batches.retain(|b| b.next_offset() <= offset);
        segment.size_bytes = segment.batches.iter().map(|b| b.size_bytes() as u64).sum();
        segment.max_timestamp_ms = segment.batches.iter().map(|b| b.timestamp_ms).max().unwrap_or(0);
        self.log_end_offset = segment.next_offset().max(self.log_start_offset);
        if segment.batches.is_empty() {
            segment.base_offset = self.log_end_offset;
        }
        self.flushed_offset = self.flushed_offset.min(self.log_end_offset);
        self.epoch_cache.truncate_from_end(self.log_end_offset);
        if self.flushed_offset == self.log_end_offset {
            self.unflushed_since_ms = None;
        }
        self.rebuild_txn_index();
        before - self.log_end_offset
    }

    /// A power failure: the log comes back as the disk has it. Returns how many records went.
    pub fn lose_unflushed(&mut self) -> i64 {
        let before = self.log_end_offset;
        self.truncate_to(self.flushed_offset);
        before - self.log_end_offset
    }

    /// Delete segments that retention (`retention.ms`, `retention.bytes`) allows, never touching
    /// anything at or above `high_watermark`. Returns the new log start offset if it moved.
    pub fn apply_retention(&mut self, config: &TopicConfig, now_ms: u64, high_watermark: i64) -> Option<i64> {
        let mut deleted_any = false;
        let mut size = self.size_bytes() as i64;
        while let Some(oldest) = self.segments.first() {
            if oldest.batches.is_empty() || oldest.next_offset() > high_watermark {
                break;
            }
            let too_old =
                config.retention_ms >= 0 && now_ms.saturating_sub(oldest.max_timestamp_ms) > config.retention_ms as u64;
            let too_big = config.retention_bytes >= 0 && size - oldest.size_bytes as i64 >= config.retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            if self.segments.len() == 1 {
                // Kafka rolls the active segment so that it can delete it.
                self.roll(now_ms);
            }
            let gone = self.segments.remove(0);
            size -= gone.size_bytes as i64;
            deleted_any = true;
        }
        if deleted_any {
            let start = self.segments.first().map_or(self.log_end_offset, |s| s.base_offset);
            self.advance_log_start_offset(start);
            Some(self.log_start_offset)
        } else {
            None
        }
    }

    /// `log start <= log end`, the flushed offset within the log end; segments and the batches in
    /// them are contiguous (each starts where the previous ended, the last ends at the log end, the
    /// first starts at or below the log start); batch leader epochs never decrease along the log;
    /// and the leader-epoch cache is consistent with the log ([`EpochCache::check_invariants`]).
    /// Kafka: `UnifiedLog` (`logStartOffset <= logEndOffset`, offsets assigned consecutively by
    /// `LogValidator`, `LocalLog` segments keyed by base offset), `LeaderEpochFileCache`.
    pub fn check_invariants(&self) -> Result<(), String> {
        let (start, end) = (self.log_start_offset, self.log_end_offset);
        ensure(start <= end, || format!("log start {start} above log end {end}"))?;
        ensure(self.flushed_offset <= end, || format!("flushed offset {} above log end {end}", self.flushed_offset))?;
        let first = self.segments.first().ok_or_else(|| "a log without a segment".to_string())?;
        ensure(first.base_offset <= start, || {
            format!("first segment starts at {}, above the log start {start}", first.base_offset)
        })?;
        let mut next = first.base_offset;
        let mut epoch = i32::MIN;
        for segment in &self.segments {
            ensure(segment.base_offset == next, || {
                format!("segment starts at {}, the previous one ended at {next}", segment.base_offset)
            })?;
            for batch in &segment.batches {
                ensure(batch.base_offset == next, || {
                    format!("batch at offset {} follows one that ended at {next}", batch.base_offset)
                })?;
                ensure(batch.leader_epoch >= epoch, || {
                    format!(
                        "batch at offset {} has leader epoch {} after epoch {epoch}",
                        batch.base_offset, batch.leader_epoch
                    )
                })?;
                next = batch.next_offset();
                epoch = batch.leader_epoch;
            }
        }
        ensure(next == end, || format!("the last batch ends at {next}, the log end is {end}"))?;
        self.epoch_cache.check_invariants(start, end)
    }

    /// Move the log start offset up (retention here, or a follower copying the leader's).
    pub fn advance_log_start_offset(&mut self, offset: i64) {
        let offset = offset.min(self.log_end_offset);
        if offset <= self.log_start_offset {
            return;
        }
        self.log_start_offset = offset;
        while self.segments.len() > 1 && self.segments[0].next_offset() <= offset {
            self.segments.remove(0);
        }
        self.epoch_cache.truncate_from_start(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(values: &[&str]) -> RecordBatch {
        let records = values.iter().map(|v| Record { key: None, value: v.to_string() }).collect();
        RecordBatch::new_unassigned(-1, -1, -1, 0, records)
    }

    fn txn_batch(pid: i64, values: &[&str]) -> RecordBatch {
        let mut b = batch(values);
        b.producer_id = pid;
        b.producer_epoch = 0;
        b.base_sequence = 0;
        b.is_transactional = true;
        b
    }

    fn marker(pid: i64, control_type: ControlType) -> RecordBatch {
        RecordBatch::new_marker(pid, 0, 0, crate::record::ControlMarker { control_type, coordinator_epoch: 0 })
    }

    /// Two producers' transactions interleaved (pid 1 at 0..2 then commit at 4, pid 2 at 2..4 then
    /// abort at 5), with a plain record at 6.
    fn interleaved() -> Log {
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.append_as_leader(txn_batch(1, &["a", "b"]), 0, &config, 0);
        log.append_as_leader(txn_batch(2, &["x", "y"]), 0, &config, 0);
        log.append_as_leader(marker(1, ControlType::Commit), 0, &config, 0);
        log.append_as_leader(marker(2, ControlType::Abort), 0, &config, 0);
        log.append_as_leader(batch(&["plain"]), 0, &config, 0);
        log
    }

    #[test]
    fn an_open_transaction_holds_the_last_stable_offset_at_its_first_offset() {
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.append_as_leader(batch(&["before"]), 0, &config, 0);
        log.append_as_leader(txn_batch(7, &["t1", "t2"]), 0, &config, 0);
        log.append_as_leader(batch(&["other producer"]), 0, &config, 0);
        // everything is replicated, but offset 1 starts an undecided transaction
        assert_eq!(log.last_stable_offset(4), 1);
        assert_eq!(log.ongoing_transaction(7), Some(1));
        log.append_as_leader(marker(7, ControlType::Commit), 0, &config, 0);
        // the marker (offset 4) is not below the high watermark yet: still unstable
        assert_eq!(log.last_stable_offset(4), 1);
        assert_eq!(log.last_stable_offset(5), 5, "the LSO is the HW once every marker is below it");
        log.on_high_watermark(5);
        assert_eq!(log.last_stable_offset(5), 5);
    }

    #[test]
    fn the_last_stable_offset_never_passes_the_high_watermark() {
        let log = interleaved();
        assert_eq!(log.last_stable_offset(3), 0, "both transactions start below 3 and are undecided at HW 3");
        assert_eq!(log.last_stable_offset(7), 7);
        assert_eq!(log.last_stable_offset(6), 6);
    }

    #[test]
    fn only_aborted_transactions_are_indexed_with_their_range() {
        let log = interleaved();
        let all = log.aborted_transactions(0, 7);
        assert_eq!(all, vec![AbortedTxn { producer_id: 2, first_offset: 2, last_offset: 5 }]);
        assert!(log.aborted_transactions(6, 7).is_empty(), "ended before the fetch");
        assert!(log.aborted_transactions(0, 2).is_empty(), "begins after the fetch");
    }

    #[test]
    fn truncating_away_a_marker_reopens_its_transaction() {
        let mut log = interleaved();
        log.truncate_to(5);
        assert_eq!(log.ongoing_transaction(2), Some(2));
        assert!(log.aborted_transactions(0, 5).is_empty());
        assert_eq!(log.last_stable_offset(5), 2);
    }

    #[test]
    fn leader_appends_get_offsets_and_epochs() {
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.assign_epoch_start(1);
        assert_eq!(log.append_as_leader(batch(&["a", "b"]), 1, &config, 0), 0);
        assert_eq!(log.append_as_leader(batch(&["c"]), 1, &config, 0), 2);
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.record_at(2).unwrap().1.value, "c");
        assert_eq!(log.record_at(3), None);
        assert_eq!(log.epoch_cache().entries(), &[(1, 0)]);
    }

    #[test]
    fn power_failure_loses_exactly_the_unflushed_suffix() {
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.append_as_leader(batch(&["a", "b"]), 0, &config, 0);
        log.flush();
        log.append_as_leader(batch(&["c"]), 1, &config, 0);
        log.append_as_leader(batch(&["d"]), 1, &config, 0);
        assert_eq!(log.lose_unflushed(), 2);
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(log.epoch_cache().entries(), &[(0, 0)], "the lost epoch is forgotten too");
    }

    #[test]
    fn the_kernel_writes_a_file_back_whole_once_it_has_been_dirty_long_enough() {
        // Linux's flusher: a file first dirtied at 1 s, with vm.dirty_expire_centisecs = 30 s, is
        // written back at the first wake-up at or after 31 s, including what was written later.
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.append_as_leader(batch(&["a"]), 0, &config, 1_000);
        log.append_as_leader(batch(&["b"]), 0, &config, 20_000);
        assert!(!log.os_writeback(30_000, 30_000), "dirty for 29 s: not yet");
        assert_eq!(log.flushed_offset(), 0);
        assert!(log.os_writeback(31_000, 30_000));
        assert_eq!(log.flushed_offset(), 2, "the whole file, b included");
        // The next write dirties it again from its own time.
        log.append_as_leader(batch(&["c"]), 0, &config, 32_000);
        assert!(!log.os_writeback(61_000, 30_000));
        assert!(log.os_writeback(62_000, 30_000));
        assert_eq!(log.flushed_offset(), 3);
    }

    #[test]
    fn flush_messages_forces_fsync() {
        let config = TopicConfig { flush_messages: 2, ..TopicConfig::default() };
        let mut log = Log::new(0);
        log.append_as_leader(batch(&["a"]), 0, &config, 0);
        assert_eq!(log.flushed_offset(), 0);
        log.append_as_leader(batch(&["b"]), 0, &config, 0);
        assert_eq!(log.flushed_offset(), 2);
    }

    #[test]
    fn truncation_drops_the_tail_and_its_epochs() {
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.append_as_leader(batch(&["a", "b"]), 1, &config, 0);
        log.append_as_leader(batch(&["c"]), 2, &config, 0);
        assert_eq!(log.truncate_to(2), 1);
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(log.epoch_cache().entries(), &[(1, 0)]);
        assert_eq!(log.truncate_to(5), 0);
    }

    #[test]
    fn truncating_at_the_log_end_drops_an_empty_epoch_left_there() {
        // This broker became leader in epoch 3 and appended nothing before losing leadership: its
        // cache ends with (3, 2), an epoch the new leader's history does not have. A follower
        // truncating to its own log end still removes it (UnifiedLog.truncateTo), else it would
        // keep asking the leader about epoch 3 (fuzz: unclean-election-loses-data seed 25).
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.append_as_leader(batch(&["a", "b"]), 1, &config, 0);
        log.assign_epoch_start(3);
        assert_eq!(log.epoch_cache().entries(), &[(1, 0), (3, 2)]);
        assert_eq!(log.truncate_to(2), 0);
        assert_eq!(log.epoch_cache().entries(), &[(1, 0)]);
        assert_eq!(log.log_end_offset(), 2);
    }

    #[test]
    fn retention_by_size_deletes_whole_old_segments_below_the_high_watermark() {
        // Every batch gets its own segment.
        let config = TopicConfig { segment_bytes: 1, retention_bytes: 140, ..TopicConfig::default() };
        let mut log = Log::new(0);
        for v in ["a", "b", "c", "d"] {
            log.append_as_leader(batch(&[v]), 0, &config, 0);
        }
        // Each one-record batch is 61 + 9 = 70 bytes; 280 bytes in all. Kafka deletes the oldest
        // segment while the log stays at or above retention.bytes without it.
        assert_eq!(log.apply_retention(&config, 0, 1), Some(1), "only below the high watermark");
        assert_eq!(log.apply_retention(&config, 0, 4), Some(2));
        assert_eq!(log.log_start_offset(), 2);
        assert_eq!(log.read(0, 4, 1 << 20).first().map(|b| b.base_offset), Some(2));
    }

    #[test]
    fn retention_by_time_can_empty_the_log() {
        let config = TopicConfig { retention_ms: 1000, ..TopicConfig::default() };
        let mut log = Log::new(0);
        log.append_as_leader(batch(&["a"]), 0, &config, 0);
        assert_eq!(log.apply_retention(&config, 500, 1), None);
        assert_eq!(log.apply_retention(&config, 1001, 1), Some(1));
        assert_eq!(log.log_start_offset(), 1);
        assert_eq!(log.log_end_offset(), 1);
    }

    #[test]
    fn read_respects_bounds() {
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        for v in ["a", "b", "c"] {
            log.append_as_leader(batch(&[v]), 0, &config, 0);
        }
        let got: Vec<i64> = log.read(1, 2, 1 << 20).iter().map(|b| b.base_offset).collect();
        assert_eq!(got, vec![1]);
        assert_eq!(log.read(0, 3, 1).len(), 1, "at least one batch, then the byte limit");
    }

    #[test]
    fn invariant_contiguous_offsets_and_bounds() {
        let config = TopicConfig::default();
        let mut log = Log::new(0);
        log.assign_epoch_start(1);
        log.append_as_leader(batch(&["a", "b"]), 1, &config, 0);
        log.append_as_leader(batch(&["c"]), 1, &config, 0);
        assert_eq!(log.check_invariants(), Ok(()));

        let mut end_moved = log.clone();
        end_moved.log_end_offset += 1;
        assert!(end_moved.check_invariants().unwrap_err().contains("the log end is 4"));

        let mut gap = log.clone();
        gap.segments[0].batches[1].base_offset = 5;
        assert!(gap.check_invariants().unwrap_err().contains("follows one that ended at 2"));

        let mut start_above_end = log.clone();
        start_above_end.log_start_offset = 9;
        assert!(start_above_end.check_invariants().unwrap_err().contains("log start 9 above log end 3"));

        let mut epoch_back = log.clone();
        epoch_back.segments[0].batches[1].leader_epoch = 0;
        assert!(epoch_back.check_invariants().unwrap_err().contains("leader epoch 0 after epoch 1"));
    }
}
