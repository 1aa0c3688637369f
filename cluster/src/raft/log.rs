//! The replicated log of a KRaft quorum: entries stamped with the epoch of the leader that wrote
//! them, and the two questions Raft asks of it.
//!
//! *Is a candidate's log at least as up to date as mine?* Compare the last entry's epoch first,
//! then the end offset (Kafka's `OffsetAndEpoch.compareTo`, used by `KafkaRaftClient.handleVoteRequest`).
//!
//! *Where does a follower's log part from the leader's?* The follower's Fetch names its end offset
//! and the epoch of its last entry; the leader looks up how far that epoch runs in its own log
//! (`ReplicatedLog.endOffsetForEpoch`) and, if the follower's log goes further or the epoch is not
//! the leader's, answers with a *diverging epoch* (`ReplicatedLog.validateOffsetAndEpoch`, KIP-595).
//! The follower truncates to the smaller of that offset and its own end of that epoch
//! (`KafkaMetadataLog.truncateToEndOffset`) and fetches again.
//!
//! Every entry is one record; offsets start at 0. Unlike a data partition, the metadata log is
//! flushed before it counts (`KafkaRaftClient.flushLeaderLog`, and followers flush after each
//! append), so what an entry reaches the log survives a power failure.

use serde::{Deserialize, Serialize};

/// A position in the log and the epoch of the entry just before it (Kafka's `OffsetAndEpoch`).
/// Ordered by epoch first, then offset, which is exactly Raft's "more up to date" order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OffsetAndEpoch {
    pub epoch: i32,
    pub offset: i64,
}

/// What an entry holds: a leader's announcement of its epoch, or a payload of the state machine
/// above the quorum (the controller's metadata records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Payload<T> {
    /// The control record a new leader writes first (Kafka's `LeaderChangeMessage`): committing
    /// it is how the leader learns that everything before it is committed too.
    LeaderChange {
        leader: i32,
    },
    Data(T),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry<T> {
    pub epoch: i32,
    pub payload: Payload<T>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaftLog<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for RaftLog<T> {
    fn default() -> Self {
        RaftLog { entries: Vec::new() }
    }
}

impl<T: Clone> RaftLog<T> {
    pub fn from_entries(entries: Vec<Entry<T>>) -> Self {
        let log = RaftLog { entries };
        assert!(log.check_invariants().is_ok(), "a recovered log has non-decreasing epochs");
        log
    }

    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<Entry<T>> {
        self.entries
    }

    pub fn end_offset(&self) -> i64 {
        self.entries.len() as i64
    }

    /// The epoch of the last entry, 0 for an empty log.
    pub fn last_epoch(&self) -> i32 {
        self.entries.last().map_or(0, |e| e.epoch)
    }

    pub fn end(&self) -> OffsetAndEpoch {
        OffsetAndEpoch { epoch: self.last_epoch(), offset: self.end_offset() }
    }

    pub fn get(&self, offset: i64) -> Option<&Entry<T>> {
        usize::try_from(offset).ok().and_then(|i| self.entries.get(i))
    }

    /// `ReplicatedLog.endOffsetForEpoch`: the largest epoch in the log not above `epoch`, and the
    /// offset where it ends (the first offset of a later epoch, or the log end). An epoch older
    /// than the whole log gives epoch 0 at offset 0.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> OffsetAndEpoch {
        let end = self.entries.partition_point(|e| e.epoch <= epoch);
        match end.checked_sub(1) {
            Some(last) => OffsetAndEpoch { epoch: self.entries[last].epoch, offset: end as i64 },
            None => OffsetAndEpoch { epoch: 0, offset: 0 },
        }
    }

    /// `ReplicatedLog.validateOffsetAndEpoch`, on the leader: `None` if a follower whose log ends
    /// at `fetch_offset` with an entry of `last_fetched_epoch` agrees with this log; otherwise the
    /// diverging epoch and where it ends here.
    pub fn diverging(&self, fetch_offset: i64, last_fetched_epoch: i32) -> Option<OffsetAndEpoch> {
        if fetch_offset == 0 && last_fetched_epoch == 0 {
            return None;
        }
        let here = self.end_offset_for_epoch(last_fetched_epoch);
        (here.epoch != last_fetched_epoch || here.offset < fetch_offset).then_some(here)
    }

    /// `KafkaMetadataLog.truncateToEndOffset`: where a follower told `diverging` truncates.
    pub fn truncation_offset(&self, diverging: OffsetAndEpoch) -> i64 {
        self.end_offset_for_epoch(diverging.epoch).offset.min(diverging.offset)
    }

    pub fn append(&mut self, entry: Entry<T>) -> i64 {
        assert!(
            entry.epoch >= self.last_epoch(),
            "an entry of epoch {} after one of epoch {}: epochs never go back in a log",
            entry.epoch,
            self.last_epoch()
        );
        self.entries.push(entry);
        self.end_offset() - 1
    }

    pub fn truncate_to(&mut self, offset: i64) {
        self.entries.truncate(offset.max(0) as usize);
    }

    pub fn entries_from(&self, offset: i64, max: usize) -> Vec<Entry<T>> {
        let start = (offset.max(0) as usize).min(self.entries.len());
        self.entries[start..].iter().take(max).cloned().collect()
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        match self.entries.windows(2).position(|w| w[1].epoch < w[0].epoch) {
            Some(i) => Err(format!(
                "log epochs go back at offset {}: {} after {}",
                i + 1,
                self.entries[i + 1].epoch,
                self.entries[i].epoch
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(epochs: &[i32]) -> RaftLog<u32> {
        RaftLog::from_entries(epochs.iter().map(|&epoch| Entry { epoch, payload: Payload::Data(0) }).collect())
    }

    fn at(epoch: i32, offset: i64) -> OffsetAndEpoch {
        OffsetAndEpoch { epoch, offset }
    }

    #[test]
    fn up_to_date_compares_last_epoch_before_length() {
        // A short log whose last entry is newer beats a long one of an older epoch.
        assert!(log(&[1, 3]).end() > log(&[1, 1, 1, 2]).end());
        assert!(log(&[1, 1, 2]).end() > log(&[1, 2]).end());
        assert_eq!(log(&[1, 2]).end(), log(&[1, 2]).end());
    }

    #[test]
    fn end_offset_for_epoch_finds_the_largest_epoch_not_above() {
        let l = log(&[1, 1, 3, 3, 5]);
        assert_eq!(l.end_offset_for_epoch(1), at(1, 2));
        assert_eq!(l.end_offset_for_epoch(2), at(1, 2), "epoch 2 never wrote here: epoch 1's end");
        assert_eq!(l.end_offset_for_epoch(3), at(3, 4));
        assert_eq!(l.end_offset_for_epoch(9), at(5, 5));
        assert_eq!(l.end_offset_for_epoch(0), at(0, 0));
    }

    #[test]
    fn a_follower_with_a_stale_tail_is_told_where_to_truncate() {
        let leader = log(&[1, 1, 3, 3]);
        // The follower wrote two entries of epoch 2 that the leader never had.
        let follower = log(&[1, 1, 2, 2]);
        let diverging = leader.diverging(follower.end_offset(), follower.last_epoch()).expect("diverges");
        assert_eq!(diverging, at(1, 2));
        assert_eq!(follower.truncation_offset(diverging), 2);
        // A follower that is merely behind does not diverge.
        assert_eq!(leader.diverging(3, 3), None);
        assert_eq!(leader.diverging(0, 0), None);
        // One ahead of the leader within the same epoch diverges to the leader's end of it.
        assert_eq!(leader.diverging(5, 3), Some(at(3, 4)));
    }
}
