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
//!
//! ## Compaction
//!
//! A topic with `cleanup.policy=compact` is cleaned by the broker's *log cleaner*
//! ([`Log::clean`]), which keeps, per key, only the latest record. Kafka's rules, each below with
//! its source:
//! - **What may be cleaned** ([`Log::cleanable_range`], `LogCleanerManager.cleanableOffsets` and
//!   `LogToClean`): from the cleaner's checkpoint (`cleaner-offset-checkpoint`, the first dirty
//!   offset) up to the first *uncleanable* offset: the lowest of the last stable offset (so nothing
//!   at or above the high watermark, nor in an undecided transaction), the active segment's base
//!   (the active segment is never cleaned) and the first segment with a record newer than
//!   `min.compaction.lag.ms`, rounded down to its segment's base.
//! - **When** (`LogCleanerManager.grabFilthiestCompactedLog`): once the dirty bytes are more than
//!   `min.cleanable.dirty.ratio` (0.5) of the cleanable log, or a dirty record is older than
//!   `max.compaction.lag.ms` (KIP-354).
//! - **What stays** (`Cleaner.doClean`, `cleanSegments`, `shouldRetainRecord`): an offset map of
//!   each key's latest offset is built over the dirty range; every segment below its end is then
//!   rewritten keeping a record only if it is the latest for its key. A record without a key is
//!   dropped (producers cannot write one: INVALID_RECORD). Records of aborted transactions go; a
//!   transaction marker goes once its transaction's records are gone (`CleanedTransactionMetadata`)
//!   and its delete horizon has passed.
//! - **Tombstones** (KIP-534): a null value deletes its key. The first cleaning that keeps a batch
//!   holding a tombstone (or an empty transaction's marker) stamps the batch with
//!   `deleteHorizonMs = now + delete.retention.ms`; a cleaning after that removes the tombstone.
//!   The clock starts at that first cleaning, not at the write.
//! - **Offsets never change**: a cleaned batch keeps its base and last offsets, each record its own
//!   offset; a reader sees gaps, and a fetch from inside a gap gets the next record present. An
//!   idempotent producer's last batch is kept even when empty (`BatchRetention.RETAIN_EMPTY`), so
//!   its sequence numbers survive.
//!
//! Each replica runs its own cleaner on its own schedule, so replicas differ in layout (which
//! superseded records are still there) but never in the latest record per key below the high
//! watermark.

use crate::config::TopicConfig;
use crate::epoch_cache::EpochCache;
use crate::invariant::ensure;
use crate::record::CleanedLayout;
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
    /// The log cleaner's checkpoint (`cleaner-offset-checkpoint`): below it the log is clean.
    #[serde(default, skip_serializing_if = "is_zero")]
    first_dirty_offset: i64,
}

fn is_zero(offset: &i64) -> bool {
    *offset == 0
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
            first_dirty_offset: 0,
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

    /// Append as follower: the batch keeps the offsets and epoch the leader gave it. It may start
    /// past the log end when the leader's cleaner removed what came between (Kafka's
    /// `UnifiedLog.append` without offset assignment refuses only a batch that starts below the
    /// log end: `UnexpectedAppendOffsetException`).
    pub fn append_as_follower(&mut self, batch: RecordBatch, config: &TopicConfig, now_ms: u64) {
        assert!(
            batch.base_offset >= self.log_end_offset,
            "follower append must continue the log: batch at {} but log end is {}",
            batch.base_offset,
            self.log_end_offset
        );
        self.append(batch, config, now_ms);
    }

    fn append(&mut self, batch: RecordBatch, config: &TopicConfig, now_ms: u64) {
        assert!(
            !batch.is_empty() || batch.cleaned.is_some(),
            "empty batches are never appended (only the cleaner leaves one, for a producer's sequence numbers)"
        );
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

    /// Roll to a new segment when the active one is full or old (`segment.bytes`, `segment.ms`, or
    /// `max.compaction.lag.ms` if smaller on a compacted topic: `LogConfig.maxSegmentMs`).
    /// Kafka flushes a segment when it rolls it.
    fn maybe_roll(&mut self, config: &TopicConfig, now_ms: u64) {
        let active = self.segments.last().expect("a log always has an active segment");
        let full = active.size_bytes >= config.segment_bytes;
        let old = !active.batches.is_empty() && now_ms.saturating_sub(active.created_ms) >= config.max_segment_ms();
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

    /// The record at `offset`, with the batch that holds it (none if the cleaner removed it).
    pub fn record_at(&self, offset: i64) -> Option<(&RecordBatch, &Record)> {
        if offset < self.log_start_offset || offset >= self.log_end_offset {
            return None;
        }
        let segment_index = self.segments.partition_point(|s| s.next_offset() <= offset);
        let segment = self.segments.get(segment_index)?;
        let batch_index = segment.batches.partition_point(|b| b.next_offset() <= offset);
        let batch = segment.batches.get(batch_index).filter(|b| b.base_offset <= offset)?;
        Some((batch, batch.record_at(offset)?))
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
        // `LogCleanerManager.maybeTruncateCheckpoint`: the cleaner's checkpoint never passes the log end.
        self.first_dirty_offset = self.first_dirty_offset.min(self.log_end_offset);
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
    /// Only under `cleanup.policy` `delete` or `compact,delete` (`UnifiedLog.deleteOldSegments`:
    /// `config.delete`).
    pub fn apply_retention(&mut self, config: &TopicConfig, now_ms: u64, high_watermark: i64) -> Option<i64> {
        if !config.cleanup_policy.delete() {
            return None;
        }
        let mut deleted_any = false;
        let mut size = self.size_bytes() as i64;
        while let Some(oldest) = self.segments.first() {
            // The active segment when it is empty; a cleaned segment may be empty and go.
            let empty_active = self.segments.len() == 1 && oldest.batches.is_empty();
            if empty_active || oldest.next_offset() > high_watermark {
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
    /// them in offset order without overlap (each starts at or after where the previous ended: the
    /// cleaner leaves gaps, never overlaps), the last ending at the log end, the first starting at
    /// or below the log start; a cleaned batch's record offsets increasing within its extent, and
    /// only a cleaned batch empty; batch leader epochs never decrease along the log; and the
    /// leader-epoch cache is consistent with the log ([`EpochCache::check_invariants`]).
    /// Kafka: `UnifiedLog` (`logStartOffset <= logEndOffset`, offsets assigned consecutively by
    /// `LogValidator`, `LocalLog` segments keyed by base offset; the cleaner keeps a batch's base
    /// and last offsets), `LeaderEpochFileCache`.
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
            ensure(segment.base_offset >= next, || {
                format!("segment starts at {}, inside the previous one, which ended at {next}", segment.base_offset)
            })?;
            next = segment.base_offset;
            for batch in &segment.batches {
                ensure(batch.base_offset >= next, || {
                    format!("batch at offset {} overlaps one that ended at {next}", batch.base_offset)
                })?;
                ensure(batch.leader_epoch >= epoch, || {
                    format!(
                        "batch at offset {} has leader epoch {} after epoch {epoch}",
                        batch.base_offset, batch.leader_epoch
                    )
                })?;
                match &batch.cleaned {
                    None => {
                        ensure(!batch.is_empty(), || format!("empty uncleaned batch at offset {}", batch.base_offset))?
                    }
                    Some(CleanedLayout { offset_deltas, last_offset_delta }) => {
                        let ordered = offset_deltas.windows(2).all(|w| w[0] < w[1]);
                        let within = offset_deltas.first().is_none_or(|d| *d >= 0)
                            && offset_deltas.last().is_none_or(|d| d <= last_offset_delta);
                        ensure(ordered && within && offset_deltas.len() == batch.records.len(), || {
                            format!(
                                "cleaned batch at offset {} has record offsets {offset_deltas:?} for {} records within 0..={last_offset_delta}",
                                batch.base_offset,
                                batch.records.len()
                            )
                        })?;
                    }
                }
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

/// The part of a log the cleaner may clean now, and how dirty it is (Kafka's `OffsetsToClean` and
/// `LogToClean`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanableRange {
    /// Where the dirty part starts: the cleaner's checkpoint, or the log start if the checkpoint
    /// is below it or past the active segment (`cleanableOffsets`' `firstDirtyOffset`).
    pub first_dirty_offset: i64,
    /// The base of the first segment the cleaner must not touch (`LogToClean.firstUncleanableOffset`).
    pub first_uncleanable_offset: i64,
    /// Bytes of the segments below the first dirty offset (`cleanBytes`).
    pub clean_bytes: u64,
    /// Bytes of the dirty segments it may clean (`cleanableBytes`).
    pub cleanable_bytes: u64,
    /// KIP-354: the first dirty segment's first record is older than `max.compaction.lag.ms`
    /// (`LogCleanerManager.maxCompactionDelay` above 0: `LogToClean.needCompactionNow`).
    pub compaction_overdue: bool,
}

impl CleanableRange {
    /// `LogToClean.cleanableRatio`, in millionths.
    pub fn dirty_ratio_ppm(&self) -> u64 {
        let total = self.clean_bytes + self.cleanable_bytes;
        (self.cleanable_bytes * 1_000_000).checked_div(total).unwrap_or(0)
    }

    /// `grabFilthiestCompactedLog`'s test: overdue with something to clean, or dirtier than
    /// `min.cleanable.dirty.ratio`.
    pub fn should_clean(&self, config: &TopicConfig) -> bool {
        let total = self.clean_bytes + self.cleanable_bytes;
        let dirty_enough = self.cleanable_bytes * 1_000_000 > u64::from(config.min_cleanable_dirty_ratio_ppm) * total;
        total > 0 && self.cleanable_bytes > 0 && (self.compaction_overdue || dirty_enough)
    }
}

/// What one cleaning did, for the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleaning {
    /// The dirty range whose keys were mapped: `[dirty_from, end_offset)`.
    pub dirty_from: i64,
    /// The new checkpoint: one past the last offset mapped (`Cleaner.doClean`'s `endOffset`).
    pub end_offset: i64,
    /// The dirty ratio that made the cleaner take the log, in millionths.
    pub dirty_ratio_ppm: u64,
    /// Offsets whose records went, as inclusive ranges.
    pub removed: Vec<(i64, i64)>,
    /// Data records removed (superseded, tombstones past their horizon, aborted, keyless).
    pub records_removed: u64,
    /// Tombstones removed, their delete horizon passed.
    pub tombstones_removed: u64,
    /// Tombstones still kept (their horizon not reached, or just set).
    pub tombstones_kept: u64,
    /// Transaction markers removed.
    pub markers_removed: u64,
}

/// The cleaner's view of transactions while it walks the log (`CleanedTransactionMetadata`):
/// which aborted transactions have begun, and which producers' transactions it has seen records
/// of, so a marker goes only once its transaction left no record behind.
struct CleanedTxns {
    /// Aborted transactions not yet begun, by first offset.
    pending_aborts: std::collections::VecDeque<AbortedTxn>,
    /// Producer id to whether a batch of its aborted transaction was seen in this pass.
    ongoing_aborted: BTreeMap<i64, bool>,
    /// Producers whose committed transaction had a batch in this pass.
    ongoing_committed: std::collections::BTreeSet<i64>,
}

impl CleanedTxns {
    fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_by_key(|a| (a.first_offset, a.producer_id));
        CleanedTxns {
            pending_aborts: aborted.into(),
            ongoing_aborted: BTreeMap::new(),
            ongoing_committed: std::collections::BTreeSet::new(),
        }
    }

    fn begin_aborts_up_to(&mut self, offset: i64) {
        while self.pending_aborts.front().is_some_and(|a| a.first_offset <= offset) {
            let a = self.pending_aborts.pop_front().expect("checked");
            self.ongoing_aborted.insert(a.producer_id, false);
        }
    }

    /// `onBatchRead`: whether a data batch belongs to an aborted transaction (and may go).
    fn on_batch(&mut self, batch: &RecordBatch) -> bool {
        self.begin_aborts_up_to(batch.last_offset());
        if !batch.is_transactional {
            return false;
        }
        match self.ongoing_aborted.get_mut(&batch.producer_id) {
            Some(seen) => {
                *seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(batch.producer_id);
                false
            }
        }
    }

    /// `onControlBatchRead`: whether a marker may go, its transaction having no records left.
    fn on_marker(&mut self, batch: &RecordBatch) -> bool {
        self.begin_aborts_up_to(batch.last_offset());
        match batch.control.map(|m| m.control_type) {
            Some(ControlType::Abort) => !self.ongoing_aborted.remove(&batch.producer_id).unwrap_or(false),
            Some(ControlType::Commit) => !self.ongoing_committed.remove(&batch.producer_id),
            None => false,
        }
    }
}

impl Log {
    /// What the cleaner may clean now and how dirty it is: `LogCleanerManager.cleanableOffsets`
    /// and `LogToClean`. The first uncleanable offset is the lowest of the last stable offset
    /// ("we do not clean beyond the last stable offset", which is at most the high watermark),
    /// the active segment's base, and the first segment holding a record newer than
    /// `min.compaction.lag.ms`; then rounded down to the base of its segment.
    pub fn cleanable_range(&self, config: &TopicConfig, now_ms: u64, high_watermark: i64) -> CleanableRange {
        let active_base = self.segments.last().expect("a log always has an active segment").base_offset;
        let checkpoint = self.first_dirty_offset;
        let first_dirty_offset = if checkpoint < self.log_start_offset || checkpoint > active_base {
            self.log_start_offset
        } else {
            checkpoint
        };
        let non_active = &self.segments[..self.segments.len() - 1];
        let mut uncleanable = self.last_stable_offset(high_watermark).min(active_base);
        if config.min_compaction_lag_ms > 0 {
            let too_new = non_active
                .iter()
                .filter(|s| s.next_offset() > first_dirty_offset || s.base_offset >= first_dirty_offset)
                .find(|s| s.max_timestamp_ms > now_ms.saturating_sub(config.min_compaction_lag_ms));
            if let Some(segment) = too_new {
                uncleanable = uncleanable.min(segment.base_offset);
            }
        }
        // `nonActiveLogSegmentsFrom(uncleanable)`: the segment holding it, else the active one.
        let floor = |offset: i64| self.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        let first_uncleanable_offset =
            if uncleanable >= active_base { active_base } else { self.segments[floor(uncleanable)].base_offset };
        let clean_bytes =
            self.segments.iter().filter(|s| s.base_offset < first_dirty_offset).map(|s| s.size_bytes).sum();
        let cleanable_bytes = if first_dirty_offset < first_uncleanable_offset {
            self.segments[floor(first_dirty_offset)..]
                .iter()
                .take_while(|s| s.base_offset < first_uncleanable_offset)
                .map(|s| s.size_bytes)
                .sum()
        } else {
            0
        };
        // KIP-354 (`maxCompactionDelay`): the first dirty non-active segment's first record.
        let first_dirty_timestamp = non_active[floor(first_dirty_offset).min(non_active.len())..]
            .iter()
            .find_map(|s| s.batches.first().map(|b| b.timestamp_ms));
        let compaction_overdue = first_dirty_timestamp.is_some_and(|ts| {
            now_ms.saturating_sub(config.max_compaction_lag_ms) > ts && now_ms > config.max_compaction_lag_ms
        });
        CleanableRange {
            first_dirty_offset,
            first_uncleanable_offset,
            clean_bytes,
            cleanable_bytes,
            compaction_overdue,
        }
    }

    /// The cleaner's checkpoint: the first offset it has not cleaned yet.
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.first_dirty_offset
    }

    /// Clean the log if it is due (see [`Log::cleanable_range`]): one pass of Kafka's
    /// `Cleaner.doClean`. Build the map of each key's latest offset over the dirty range
    /// (`buildOffsetMap`, skipping aborted transactions and markers), then rewrite every segment
    /// below the end of the mapped range (`cleanSegments`), keeping a record if it is past the
    /// map or the latest for its key, and, for a tombstone, only until its batch's delete horizon
    /// (`shouldRetainRecord`); merge the rewritten segments up to `segment.bytes`
    /// (`groupSegmentsBySize`); move the checkpoint. Returns what it did, or `None` if the log
    /// was not due.
    pub fn clean(&mut self, config: &TopicConfig, now_ms: u64, high_watermark: i64) -> Option<Cleaning> {
        if !config.cleanup_policy.compact() {
            return None;
        }
        let range = self.cleanable_range(config, now_ms, high_watermark);
        if !range.should_clean(config) {
            return None;
        }
        let (start, upper) = (range.first_dirty_offset, range.first_uncleanable_offset);

        // buildOffsetMap over [start, upper).
        let mut map: BTreeMap<String, i64> = BTreeMap::new();
        let mut latest_offset: Option<i64> = None;
        let mut txns = CleanedTxns::new(self.aborted_transactions(start, upper));
        for batch in self.batches().filter(|b| b.next_offset() > start && b.base_offset < upper) {
            if batch.is_control() {
                txns.on_marker(batch);
            } else if !txns.on_batch(batch) {
                for (offset, record) in batch.records_with_offsets() {
                    if let (Some(key), true) = (&record.key, offset >= start) {
                        map.insert(key.clone(), offset);
                    }
                }
            }
            latest_offset = Some(latest_offset.map_or(batch.last_offset(), |l| l.max(batch.last_offset())));
        }
        let latest_offset = latest_offset?;
        let end_offset = latest_offset + 1;

        // The batch that holds each producer's latest sequence numbers stays, even emptied
        // (`Cleaner.isBatchLastRecordOfProducer`, `BatchRetention.RETAIN_EMPTY`): its last data
        // batch, or its last marker if it wrote no data here.
        let mut last_of_producer: BTreeMap<i64, (bool, i64)> = BTreeMap::new();
        for batch in self.batches().filter(|b| b.is_idempotent()) {
            let entry = last_of_producer.entry(batch.producer_id).or_insert((batch.is_control(), batch.last_offset()));
            if !batch.is_control() || entry.0 {
                *entry = (batch.is_control(), batch.last_offset());
            }
        }

        // cleanSegments over every segment that starts below the end of the mapped range.
        let cleaned_count =
            self.segments.iter().take(self.segments.len() - 1).take_while(|s| s.base_offset < end_offset).count();
        let first_base = self.segments[0].base_offset;
        let mut txns = CleanedTxns::new(self.aborted_transactions(first_base, upper));
        let mut outcome = Cleaning {
            dirty_from: start,
            end_offset,
            dirty_ratio_ppm: range.dirty_ratio_ppm(),
            removed: Vec::new(),
            records_removed: 0,
            tombstones_removed: 0,
            tombstones_kept: 0,
            markers_removed: 0,
        };
        let mut removed_offsets: Vec<i64> = Vec::new();
        let original_sizes: Vec<u64> = self.segments[..cleaned_count].iter().map(|s| s.size_bytes).collect();
        for segment in &mut self.segments[..cleaned_count] {
            let mut kept_batches = Vec::with_capacity(segment.batches.len());
            for mut batch in std::mem::take(&mut segment.batches) {
                let control = batch.is_control();
                let can_discard = if control { txns.on_marker(&batch) } else { txns.on_batch(&batch) };
                let horizon_passed = batch.delete_horizon_ms.is_some_and(|h| now_ms >= h);
                let discard_all = if control { can_discard && horizon_passed } else { can_discard };
                let horizon = batch.delete_horizon_ms;
                let mut tombstones_kept = 0u64;
                let mut tombstones_removed = 0u64;
                batch.retain_records(|offset, record| {
                    let keep = if discard_all {
                        false
                    } else if control || offset > latest_offset {
                        true
                    } else if let Some(key) = &record.key {
                        let latest_for_key = offset >= map.get(key).copied().unwrap_or(-1);
                        let keep_delete = horizon.is_none_or(|h| now_ms < h);
                        if latest_for_key && record.is_tombstone() && !keep_delete {
                            tombstones_removed += 1;
                        }
                        latest_for_key && (record.value.is_some() || keep_delete)
                    } else {
                        false
                    };
                    if keep && record.is_tombstone() && !control {
                        tombstones_kept += 1;
                    }
                    if !keep {
                        removed_offsets.push(offset);
                    }
                    keep
                });
                outcome.tombstones_kept += tombstones_kept;
                outcome.tombstones_removed += tombstones_removed;
                if control && discard_all {
                    outcome.markers_removed += 1;
                }
                // KIP-534: the first cleaning that keeps a tombstone, or a marker whose
                // transaction is gone, stamps the batch with its delete horizon.
                let marker_for_empty_txn = control && can_discard && !batch.is_empty();
                if (tombstones_kept > 0 || marker_for_empty_txn) && batch.delete_horizon_ms.is_none() {
                    batch.delete_horizon_ms = Some(now_ms + config.delete_retention_ms);
                }
                let retain_empty =
                    last_of_producer.get(&batch.producer_id).is_some_and(|(_, last)| *last == batch.last_offset())
                        && batch.is_idempotent();
                if !batch.is_empty() || retain_empty {
                    if batch.is_empty() && batch.cleaned.is_none() {
                        batch.cleaned = Some(CleanedLayout {
                            offset_deltas: Vec::new(),
                            last_offset_delta: batch.next_offset() - 1 - batch.base_offset,
                        });
                    }
                    kept_batches.push(batch);
                }
            }
            segment.batches = kept_batches;
            segment.size_bytes = segment.batches.iter().map(|b| b.size_bytes() as u64).sum();
        }
        outcome.records_removed = removed_offsets.len() as u64 - outcome.markers_removed;
        // groupSegmentsBySize: consecutive segments, by their size before cleaning, up to `segment.bytes`.
        let mut merged: Vec<Segment> = Vec::new();
        let mut group_size = 0u64;
        for (segment, original) in self.segments.drain(..cleaned_count).zip(original_sizes) {
            match merged.last_mut() {
                Some(group) if group_size + original <= config.segment_bytes => {
                    group.size_bytes += segment.size_bytes;
                    group.max_timestamp_ms = group.max_timestamp_ms.max(segment.max_timestamp_ms);
                    group.batches.extend(segment.batches);
                    group_size += original;
                }
                _ => {
                    group_size = original;
                    merged.push(segment);
                }
            }
        }
        self.segments.splice(0..0, merged);
        self.first_dirty_offset = end_offset;
        self.rebuild_txn_index();
        removed_offsets.sort_unstable();
        outcome.removed = offset_ranges(&removed_offsets);
        Some(outcome)
    }
}

/// Sorted offsets as inclusive ranges: `[1, 2, 3, 7]` is `[(1, 3), (7, 7)]`.
fn offset_ranges(offsets: &[i64]) -> Vec<(i64, i64)> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for &offset in offsets {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == offset => *last = offset,
            _ => ranges.push((offset, offset)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(values: &[&str]) -> RecordBatch {
        let records = values.iter().map(|v| Record::unkeyed(*v)).collect();
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
        assert_eq!(log.record_at(2).unwrap().1.value.as_deref(), Some("c"));
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

        let mut overlap = log.clone();
        overlap.segments[0].batches[1].base_offset = 1;
        assert!(overlap.check_invariants().unwrap_err().contains("overlaps one that ended at 2"));

        let mut start_above_end = log.clone();
        start_above_end.log_start_offset = 9;
        assert!(start_above_end.check_invariants().unwrap_err().contains("log start 9 above log end 3"));

        let mut epoch_back = log.clone();
        epoch_back.segments[0].batches[1].leader_epoch = 0;
        assert!(epoch_back.check_invariants().unwrap_err().contains("leader epoch 0 after epoch 1"));
    }

    // ---- compaction ----

    fn keyed(pairs: &[(&str, Option<&str>)], timestamp_ms: u64) -> RecordBatch {
        let records = pairs
            .iter()
            .map(|(k, v)| Record { key: Some(k.to_string()), value: v.map(str::to_string), headers: Vec::new() })
            .collect();
        RecordBatch::new_unassigned(-1, -1, -1, timestamp_ms, records)
    }

    fn compacted() -> TopicConfig {
        // Every batch gets its own segment, so each append rolls the previous one.
        TopicConfig {
            cleanup_policy: crate::config::CleanupPolicy::Compact,
            segment_bytes: 1,
            ..TopicConfig::default()
        }
    }

    /// What a reader from `from` sees per key: the last value of each key, reading forward.
    fn reader_view(log: &Log, from: i64) -> BTreeMap<String, Option<String>> {
        let mut view = BTreeMap::new();
        for batch in log.read(from, log.log_end_offset(), usize::MAX) {
            for (offset, record) in batch.records_with_offsets() {
                if offset >= from {
                    view.insert(record.key.clone().unwrap(), record.value.clone());
                }
            }
        }
        view
    }

    /// k1=a, k2=b, k1=c, k2=d, k3=e at offsets 0..5, one batch (and segment) each, at 1 s apart.
    fn five_keyed(config: &TopicConfig) -> Log {
        let mut log = Log::new(0);
        let writes = [("k1", "a"), ("k2", "b"), ("k1", "c"), ("k2", "d"), ("k3", "e")];
        for (i, (k, v)) in writes.iter().enumerate() {
            log.append_as_leader(keyed(&[(k, Some(v))], i as u64 * 1000), 0, config, i as u64 * 1000);
        }
        log
    }

    #[test]
    fn the_cleaner_keeps_the_latest_value_per_key_and_never_renumbers() {
        let config = compacted();
        let mut log = five_keyed(&config);
        let before = reader_view(&log, 0);
        let cleaning = log.clean(&config, 10_000, 5).expect("dirty: nothing cleaned yet");
        // The active segment (offset 4, k3=e) is never cleaned: the mapped range ends at 4.
        assert_eq!((cleaning.dirty_from, cleaning.end_offset), (0, 4));
        assert_eq!(cleaning.removed, vec![(0, 1)], "k1=a and k2=b are superseded");
        assert_eq!(cleaning.records_removed, 2);
        assert_eq!(log.record_at(0), None);
        assert_eq!(log.record_at(2).unwrap().1.value.as_deref(), Some("c"), "offsets stay");
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(reader_view(&log, 0), before, "a reader from 0 sees the same latest value per key");
        assert_eq!(log.check_invariants(), Ok(()));
        // Cleaned again at once: nothing is dirty.
        assert_eq!(log.clean(&config, 10_000, 5), None);
    }

    #[test]
    fn a_fetch_from_inside_a_gap_returns_the_next_record_present() {
        let config = compacted();
        let mut log = five_keyed(&config);
        log.clean(&config, 10_000, 5).unwrap();
        let first = log.read(0, 5, 1 << 20).first().cloned().expect("records after the gap");
        assert_eq!(first.base_offset, 2, "offsets 0 and 1 are gone: the read starts at 2");
        let from_gap = log.read(1, 5, 1 << 20);
        assert_eq!(from_gap.first().map(|b| b.base_offset), Some(2));
    }

    #[test]
    fn the_active_segment_is_never_cleaned() {
        // One big segment: everything is in the active segment, so nothing is cleanable.
        let config = TopicConfig { segment_bytes: 1 << 30, ..compacted() };
        let mut log = five_keyed(&config);
        let range = log.cleanable_range(&config, 10_000, 5);
        assert_eq!(range.first_uncleanable_offset, 0);
        assert_eq!(range.cleanable_bytes, 0);
        assert_eq!(log.clean(&config, 10_000, 5), None);
    }

    #[test]
    fn nothing_at_or_above_the_high_watermark_is_cleaned() {
        let config = compacted();
        let log = five_keyed(&config);
        // HW 2: the LSO is 2, so the first uncleanable offset is the segment holding 2.
        let range = log.cleanable_range(&config, 10_000, 2);
        assert_eq!(range.first_uncleanable_offset, 2);
        let mut log = log;
        let cleaning = log.clean(&config, 10_000, 2).unwrap();
        assert_eq!(cleaning.end_offset, 2);
        assert!(cleaning.removed.is_empty(), "k1=a and k2=b have no later record below the HW");
    }

    #[test]
    fn an_open_transaction_bounds_the_cleanable_range_at_its_first_offset() {
        let config = compacted();
        let mut log = Log::new(0);
        log.append_as_leader(keyed(&[("k1", Some("a"))], 0), 0, &config, 0);
        let mut txn = keyed(&[("k1", Some("b"))], 0);
        txn.producer_id = 9;
        txn.producer_epoch = 0;
        txn.base_sequence = 0;
        txn.is_transactional = true;
        log.append_as_leader(txn, 0, &config, 0);
        log.append_as_leader(keyed(&[("k2", Some("c"))], 0), 0, &config, 0);
        log.append_as_leader(keyed(&[("k3", Some("d"))], 0), 0, &config, 0);
        let range = log.cleanable_range(&config, 0, 4);
        assert_eq!(range.first_uncleanable_offset, 1, "the LSO is the transaction's first offset");
    }

    #[test]
    fn min_compaction_lag_keeps_recent_segments_dirty() {
        let config = TopicConfig { min_compaction_lag_ms: 2_500, ..compacted() };
        let log = five_keyed(&config);
        // At 4 s, segments written at 2 s and 3 s are newer than 2.5 s: the first is uncleanable.
        let range = log.cleanable_range(&config, 4_000, 5);
        assert_eq!(range.first_uncleanable_offset, 2);
        let range = log.cleanable_range(&config, 10_000, 5);
        assert_eq!(range.first_uncleanable_offset, 4, "all old enough: only the active segment is left");
    }

    #[test]
    fn the_dirty_ratio_must_pass_min_cleanable_dirty_ratio() {
        let config = compacted();
        let mut log = five_keyed(&config);
        log.clean(&config, 10_000, 5).unwrap();
        // Clean: 2 segments of 1 record (merged only up to segment.bytes = 1: each stays alone).
        // Dirty after two more writes: offsets 4 and 5 below the active segment at 6.
        log.append_as_leader(keyed(&[("k3", Some("f"))], 5_000), 0, &config, 5_000);
        log.append_as_leader(keyed(&[("k1", Some("g"))], 6_000), 0, &config, 6_000);
        let range = log.cleanable_range(&config, 10_000, 7);
        assert_eq!(range.first_dirty_offset, 4);
        assert_eq!((range.clean_bytes, range.cleanable_bytes), (2 * 72, 2 * 72));
        assert_eq!(range.dirty_ratio_ppm(), 500_000);
        assert!(!range.should_clean(&config), "0.5 is not more than min.cleanable.dirty.ratio 0.5");
        let eager = TopicConfig { min_cleanable_dirty_ratio_ppm: 400_000, ..config.clone() };
        assert!(range.should_clean(&eager));
        // KIP-354: a dirty record older than max.compaction.lag.ms forces a cleaning.
        let overdue = TopicConfig { max_compaction_lag_ms: 3_000, ..config };
        let range = log.cleanable_range(&overdue, 10_000, 7);
        assert!(range.compaction_overdue && range.should_clean(&overdue));
    }

    #[test]
    fn max_compaction_lag_caps_segment_ms_on_a_compacted_topic() {
        let config = TopicConfig { max_compaction_lag_ms: 1_000, segment_bytes: 1 << 30, ..compacted() };
        assert_eq!(config.max_segment_ms(), 1_000);
        let mut log = Log::new(0);
        log.append_as_leader(keyed(&[("k", Some("a"))], 0), 0, &config, 0);
        log.append_as_leader(keyed(&[("k", Some("b"))], 1_000), 0, &config, 1_000);
        assert_eq!(log.segments().len(), 2, "rolled after max.compaction.lag.ms");
    }

    #[test]
    fn a_tombstone_is_kept_for_delete_retention_ms_from_the_first_cleaning_that_kept_it() {
        // KIP-534: the horizon starts at the first cleaning, not at the write.
        let config = TopicConfig { delete_retention_ms: 60_000, ..compacted() };
        let mut log = Log::new(0);
        log.append_as_leader(keyed(&[("k1", Some("a"))], 0), 0, &config, 0);
        log.append_as_leader(keyed(&[("k1", None)], 1_000), 0, &config, 1_000);
        log.append_as_leader(keyed(&[("k2", Some("b"))], 2_000), 0, &config, 2_000);
        log.append_as_leader(keyed(&[("k3", Some("c"))], 3_000), 0, &config, 3_000);
        // First cleaning at 100 s, long after the write: the tombstone stays, stamped 160 s.
        let first = log.clean(&config, 100_000, 4).unwrap();
        assert_eq!(first.removed, vec![(0, 0)], "k1=a goes: the tombstone supersedes it");
        assert_eq!(first.tombstones_kept, 1);
        assert_eq!(log.record_at(1).unwrap().0.delete_horizon_ms, Some(160_000));
        assert_eq!(reader_view(&log, 0).get("k1"), Some(&None), "a reader still sees the delete");
        // More writes make the log dirty again; a cleaning before the horizon keeps the tombstone.
        log.append_as_leader(keyed(&[("k2", Some("d"))], 4_000), 0, &config, 4_000);
        log.append_as_leader(keyed(&[("k3", Some("e"))], 5_000), 0, &config, 5_000);
        let config = TopicConfig { min_cleanable_dirty_ratio_ppm: 0, ..config };
        let before_horizon = log.clean(&config, 159_999, 6).unwrap();
        assert_eq!(before_horizon.tombstones_kept, 1);
        assert!(log.record_at(1).is_some());
        // Past the horizon the next cleaning removes it: a new reader never learns of k1.
        log.append_as_leader(keyed(&[("k4", Some("f"))], 6_000), 0, &config, 6_000);
        let after = log.clean(&config, 160_000, 7).unwrap();
        assert_eq!(after.tombstones_removed, 1);
        assert_eq!(log.record_at(1), None);
        assert_eq!(reader_view(&log, 0).get("k1"), None);
        assert_eq!(log.check_invariants(), Ok(()));
    }

    #[test]
    fn markers_go_once_their_transaction_records_are_gone_and_the_horizon_passed() {
        let config = TopicConfig { delete_retention_ms: 1_000, min_cleanable_dirty_ratio_ppm: 0, ..compacted() };
        let txn = |key: &str, sequence: i32| {
            let mut b = keyed(&[(key, Some("v"))], 0);
            (b.producer_id, b.producer_epoch, b.base_sequence, b.is_transactional) = (7, 0, sequence, true);
            b
        };
        let mut log = Log::new(0);
        log.append_as_leader(txn("k1", 0), 0, &config, 0); // aborted below
        log.append_as_leader(marker(7, ControlType::Abort), 0, &config, 0);
        log.append_as_leader(txn("k2", 1), 0, &config, 0); // committed below
        log.append_as_leader(marker(7, ControlType::Commit), 0, &config, 0);
        log.append_as_leader(keyed(&[("k3", Some("y"))], 0), 0, &config, 0);
        // First pass: the aborted record goes; its marker stays, since the pass saw a record of
        // its transaction (`CleanedTransactionMetadata.onControlBatchRead`). The COMMIT marker
        // stays while its transaction has records.
        let first = log.clean(&config, 10_000, 5).unwrap();
        assert_eq!((first.removed.clone(), first.markers_removed), (vec![(0, 0)], 0));
        assert!(log.record_at(1).is_some(), "the ABORT marker");
        // Second pass: nothing of the aborted transaction is left, so its marker gets a horizon.
        log.append_as_leader(keyed(&[("k4", Some("z"))], 0), 0, &config, 20_000);
        let second = log.clean(&config, 20_000, 6).unwrap();
        assert_eq!(second.markers_removed, 0);
        assert_eq!(log.record_at(1).unwrap().0.delete_horizon_ms, Some(21_000));
        // Third pass, past the horizon: the ABORT marker goes; the COMMIT marker stays.
        log.append_as_leader(keyed(&[("k5", Some("w"))], 0), 0, &config, 30_000);
        let third = log.clean(&config, 30_000, 7).unwrap();
        assert_eq!(third.markers_removed, 1);
        assert_eq!(log.record_at(1), None);
        assert!(log.record_at(3).is_some(), "the COMMIT marker of a transaction with records left");
        assert_eq!(log.check_invariants(), Ok(()));
    }

    #[test]
    fn an_idempotent_producers_last_batch_stays_even_when_emptied() {
        // `BatchRetention.RETAIN_EMPTY`: it carries the producer's last sequence number.
        let config = compacted();
        let mut log = Log::new(0);
        let mut idempotent = keyed(&[("k1", Some("a")), ("k2", Some("b"))], 0);
        (idempotent.producer_id, idempotent.producer_epoch, idempotent.base_sequence) = (3, 0, 0);
        log.append_as_leader(idempotent, 0, &config, 0);
        log.append_as_leader(keyed(&[("k1", Some("c")), ("k2", Some("d"))], 0), 0, &config, 0);
        log.append_as_leader(keyed(&[("k3", Some("e"))], 0), 0, &config, 0);
        let cleaning = log.clean(&config, 0, 5).unwrap();
        assert_eq!(cleaning.removed, vec![(0, 1)]);
        let kept = log.batches().next().unwrap();
        assert!(kept.is_empty());
        assert_eq!((kept.base_offset, kept.next_offset(), kept.last_sequence()), (0, 2, 1));
        assert_eq!(log.check_invariants(), Ok(()));
    }

    #[test]
    fn a_follower_copies_a_cleaned_leader_and_cleans_on_its_own_schedule() {
        // Replicas differ in layout, never in what a reader sees per key.
        let config = compacted();
        let mut leader = five_keyed(&config);
        let mut early = Log::new(0);
        for batch in leader.read(0, 2, usize::MAX) {
            early.append_as_follower(batch, &config, 0);
        }
        leader.clean(&config, 10_000, 5).unwrap();
        // The follower at offset 2 fetches the rest from the cleaned leader.
        for batch in leader.read(early.log_end_offset(), 5, usize::MAX) {
            early.append_as_follower(batch, &config, 0);
        }
        // A second follower starts from scratch: it gets the gaps.
        let mut late = Log::new(0);
        for batch in leader.read(0, 5, usize::MAX) {
            late.append_as_follower(batch, &config, 0);
        }
        assert_eq!(late.record_at(0), None);
        assert!(early.record_at(0).is_some(), "the early follower has not cleaned yet");
        assert_eq!(late.log_end_offset(), 5);
        for log in [&early, &late] {
            assert_eq!(log.check_invariants(), Ok(()));
            assert_eq!(reader_view(log, 0), reader_view(&leader, 0));
            assert_eq!(reader_view(log, 3), reader_view(&leader, 3));
        }
        // The follower's own cleaner converges on the same records.
        early.clean(&config, 10_000, 5).unwrap();
        assert_eq!(early.record_at(0), None);
        // Truncation still works across a gap: nothing is present below 1, so the log ends where
        // its last batch before the point ended.
        late.truncate_to(1);
        assert_eq!(late.log_end_offset(), 0);
        assert_eq!(late.check_invariants(), Ok(()));
    }

    #[test]
    fn invariant_cleaned_batches_keep_their_extent() {
        let config = compacted();
        let mut log = five_keyed(&config);
        log.clean(&config, 10_000, 5).unwrap();
        assert_eq!(log.check_invariants(), Ok(()));
        let holding = |log: &mut Log, offset: i64| -> usize {
            log.segments.iter().position(|s| s.batches.first().is_some_and(|b| b.base_offset == offset)).unwrap()
        };
        let mut bad_deltas = log.clone();
        let j = holding(&mut bad_deltas, 2);
        bad_deltas.segments[j].batches[0].cleaned =
            Some(CleanedLayout { offset_deltas: vec![1], last_offset_delta: 0 });
        assert!(bad_deltas.check_invariants().unwrap_err().contains("record offsets [1]"));
    }
}
