//! The leader-epoch cache: for every leader epoch, the offset where it began (KIP-101).
//!
//! Each time a broker becomes leader of a partition with a new leader epoch, it notes
//! `(epoch, log end offset)`; followers note the epoch of every batch they copy. When a replica
//! later needs to know whether its log diverged from the leader's, it asks the leader "where did
//! epoch E end?" ([`EpochCache::end_offset_for`]) and truncates to that point. Truncating to the
//! high watermark instead, as Kafka did before KIP-101, could lose acknowledged records or leave
//! replicas with different records at the same offset.

use crate::invariant::ensure;
use serde::{Deserialize, Serialize};

pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochCache {
    /// `(epoch, start_offset)`, both strictly increasing.
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|(e, _)| *e)
    }

    /// Record that `epoch` starts at `start_offset`, as Kafka's `LeaderEpochFileCache.assign`:
    /// nothing to do if it is the latest epoch at or after its known start (`isUpdateNeeded`);
    /// otherwise every entry at the end that conflicts with it (an epoch not older, or a start not
    /// earlier) is removed first (`maybeTruncateNonMonotonicEntries`), so the cache stays
    /// monotonic. An epoch that appended nothing is superseded by the next one at the same start.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) {
        if let Some(&(last_epoch, last_start)) = self.entries.last() {
            if epoch == last_epoch && start_offset >= last_start {
                return;
            }
        }
        while self.entries.last().is_some_and(|&(e, s)| e >= epoch || s >= start_offset) {
            self.entries.pop();
        }
        self.entries.push((epoch, start_offset));
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor(requestedEpoch, logEndOffset)`: the largest
    /// epoch not above `requested`, and where it ends (the start of the next epoch, or
    /// `log_end_offset` if it is the latest). An epoch older than every cached one answers itself
    /// and the first cached start offset; one newer than the latest, or an empty cache, answers
    /// `(UNDEFINED_EPOCH, UNDEFINED_OFFSET)`.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        match self.entries.last() {
            None => (UNDEFINED_EPOCH, UNDEFINED_OFFSET),
            Some(&(latest, _)) if requested == latest => (latest, log_end_offset),
            Some(_) => {
                // Index of the first entry with epoch > requested.
                let higher = self.entries.partition_point(|(e, _)| *e <= requested);
                if higher == self.entries.len() {
                    // Newer than any epoch we know: Kafka answers UNDEFINED ("should never be
                    // hit because the latest cached epoch is always the largest").
                    (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
                } else if higher == 0 {
                    // Older than every epoch we know (retention removed them): the requested
                    // epoch, ending where our first known epoch starts, so the follower
                    // replicates from there.
                    (requested, self.entries[0].1)
                } else {
                    (self.entries[higher - 1].0, self.entries[higher].1)
                }
            }
        }
    }

    /// Epochs and start offsets strictly increase, and every start lies within
    /// `[log_start_offset, log_end_offset]`. Kafka's `LeaderEpochFileCache.assign` keeps both
    /// monotonic (a new entry with a smaller epoch or start offset truncates the conflicting ones,
    /// and `assign` here ignores an older epoch); `truncateFromEnd` and `truncateFromStart` keep
    /// the starts inside the log when it is truncated or its start moves.
    pub fn check_invariants(&self, log_start_offset: i64, log_end_offset: i64) -> Result<(), String> {
        for pair in self.entries.windows(2) {
            let ((e0, s0), (e1, s1)) = (pair[0], pair[1]);
            ensure(e0 < e1 && s0 < s1, || {
                format!("leader-epoch cache not monotonic: ({e0}, {s0}) then ({e1}, {s1}) in {:?}", self.entries)
            })?;
        }
        for &(epoch, start) in &self.entries {
            ensure((log_start_offset..=log_end_offset).contains(&start), || {
                format!("leader-epoch cache: epoch {epoch} starts at {start}, outside the log [{log_start_offset}, {log_end_offset}]")
            })?;
        }
        Ok(())
    }

    /// Forget epochs that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) {
        while self.entries.last().is_some_and(|(_, start)| *start >= end_offset) {
            self.entries.pop();
        }
    }

    /// Forget epochs wholly below `start_offset` (retention deleted them), keeping the one that
    /// covers `start_offset`, whose start moves up to it.
    pub fn truncate_from_start(&mut self, start_offset: i64) {
        let covering = self.entries.partition_point(|(_, s)| *s <= start_offset);
        if covering > 1 {
            self.entries.drain(..covering - 1);
        }
        if let Some(first) = self.entries.first_mut() {
            if first.1 < start_offset {
                first.1 = start_offset;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        let mut c = EpochCache::default();
        for &(e, s) in entries {
            c.assign(e, s);
        }
        c
    }

    #[test]
    fn end_offset_lookup_table() {
        // (cache, log end, requested epoch, expected (epoch, end offset)); one line per case.
        type Case = (&'static [(i32, i64)], i64, i32, (i32, i64));
        let cases: &[Case] = &[
            // The latest epoch ends at the log end.
            (&[(0, 0), (2, 10)], 15, 2, (2, 15)),
            // An older epoch ends where the next one starts.
            (&[(0, 0), (2, 10)], 15, 0, (0, 10)),
            // An epoch we never led: the largest below it, ending where the next starts (KIP-279).
            (&[(0, 0), (2, 10), (4, 12)], 15, 3, (2, 12)),
            // Newer than any epoch we know: undefined (LeaderEpochFileCache: higherEntry == null).
            (&[(0, 0), (2, 10)], 15, 7, (UNDEFINED_EPOCH, UNDEFINED_OFFSET)),
            // Older than anything we know (retention removed it): that epoch, ending at the first
            // known start offset (floorEntry == null).
            (&[(3, 5)], 15, 1, (1, 5)),
            (&[(3, 5), (4, 9)], 15, 2, (2, 5)),
            // An empty cache, or the undefined epoch: undefined.
            (&[], 0, 1, (UNDEFINED_EPOCH, UNDEFINED_OFFSET)),
            (&[(3, 5)], 15, UNDEFINED_EPOCH, (UNDEFINED_EPOCH, UNDEFINED_OFFSET)),
        ];
        for (entries, leo, requested, expected) in cases {
            assert_eq!(
                cache(entries).end_offset_for(*requested, *leo),
                *expected,
                "cache {entries:?} epoch {requested}"
            );
        }
    }

    #[test]
    fn assign_keeps_the_cache_monotonic_as_kafka_does() {
        // The latest epoch again, at or after its start: nothing to do.
        let mut c = cache(&[(1, 0), (2, 5)]);
        c.assign(2, 7);
        assert_eq!(c.entries(), &[(1, 0), (2, 5)]);
        // A new epoch at the same start supersedes the one that appended nothing.
        c.assign(3, 5);
        assert_eq!(c.entries(), &[(1, 0), (3, 5)]);
        // The latest epoch at an earlier start moves it back.
        c.assign(3, 4);
        assert_eq!(c.entries(), &[(1, 0), (3, 4)]);
        // An older epoch removes every entry it conflicts with (LeaderEpochFileCache
        // maybeTruncateNonMonotonicEntries: epoch >= new or start >= new).
        c.assign(2, 9);
        assert_eq!(c.entries(), &[(1, 0), (2, 9)]);
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(1, 0), (2, 5), (3, 9)]);
        c.truncate_from_end(9);
        assert_eq!(c.entries(), &[(1, 0), (2, 5)]);
        c.truncate_from_start(7);
        assert_eq!(c.entries(), &[(2, 7)]);
    }

    #[test]
    fn invariant_monotonic_epochs_and_starts_within_the_log() {
        assert_eq!(cache(&[(1, 0), (3, 5)]).check_invariants(0, 9), Ok(()));
        let not_monotonic = EpochCache { entries: vec![(3, 0), (2, 5)] };
        assert!(not_monotonic.check_invariants(0, 9).unwrap_err().contains("not monotonic"));
        let same_start = EpochCache { entries: vec![(1, 5), (2, 5)] };
        assert!(same_start.check_invariants(0, 9).is_err());
        assert!(cache(&[(1, 0), (3, 5)]).check_invariants(0, 4).unwrap_err().contains("outside the log"));
        assert!(cache(&[(1, 0)]).check_invariants(2, 4).unwrap_err().contains("outside the log"));
    }
}
