//! What survives a crash: the broker's disk.
//!
//! [`BrokerDisk`] holds the logs, including records still only in the page cache (a process crash
//! does not lose them; the operating system writes them back), and the
//! `replication-offset-checkpoint` of high watermarks. A power failure loses whatever was never
//! flushed ([`BrokerDisk::lose_unflushed`]). A restarted broker is rebuilt from this alone.
//!
//! Kafka does not fsync its writes (unless `flush.messages` or `flush.ms` say so): the host's
//! kernel writes dirty pages back. Linux does that per file: its flusher wakes every
//! `vm.dirty_writeback_centisecs` (5 s) and writes back, whole, each file that has been dirty for
//! longer than `vm.dirty_expire_centisecs` (30 s). So an appended segment reaches the disk every
//! 30-35 s, and a power failure loses up to that much. The kernel does this, not the broker: it
//! goes on while the process is dead and does not restart with it ([`Broker::os_writeback`] and
//! [`BrokerDisk::os_writeback`] are called by the simulated host, not by a broker timer). Every
//! `replica.high.watermark.checkpoint.interval.ms` (5 s) the broker checkpoints its high
//! watermarks. Retention deletes whole segments below the high watermark that are older
//! (`retention.ms`) or beyond the size (`retention.bytes`) the topic keeps.
//!
//! The log cleaner compacts the logs of topics with `cleanup.policy=compact` (see
//! [`crate::log`]). Kafka runs it as a thread (`LogCleaner.CleanerThread`) that cleans the
//! dirtiest log due, and sleeps `log.cleaner.backoff.ms` (15 s) whenever none is: every broker
//! cleans its own copies, leaders and followers alike, on its own schedule. Cleaning takes no
//! virtual time here, so the thread wakes at its start plus a whole number of backoffs and cleans
//! every log due at that instant. ksim sets that wake-up only once some compacted log has a
//! segment besides its active one (before, there is nothing the cleaner may touch), so runs
//! without compaction keep their traces.

use super::Broker;
use crate::effects::Effects;
use crate::log::Log;
use crate::note::Note;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::TopicPartition;
use std::collections::BTreeMap;

/// What a broker's disk holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerDisk {
    pub logs: BTreeMap<TopicPartition, Log>,
    /// `replication-offset-checkpoint`: the high watermark of every partition, as last written.
    pub high_watermark_checkpoints: BTreeMap<TopicPartition, i64>,
}

impl BrokerDisk {
    /// A power failure: every log loses what never reached the disk. Returns, per partition, the
    /// offset it was cut back to and how many records went.
    pub fn lose_unflushed(&mut self) -> Vec<(TopicPartition, i64, i64)> {
        let mut lost = Vec::new();
        for (tp, log) in &mut self.logs {
            let removed = log.lose_unflushed();
            if removed > 0 {
                lost.push((tp.clone(), log.log_end_offset(), removed));
            }
        }
        lost
    }

    /// The host's kernel writes back every log dirty for `expire_ms` or longer, while the broker
    /// process is dead. Returns each log written back and its new flushed offset.
    pub fn os_writeback(&mut self, now_ms: u64, expire_ms: u64) -> Vec<(TopicPartition, i64)> {
        let mut flushed = Vec::new();
        for (tp, log) in &mut self.logs {
            if log.os_writeback(now_ms, expire_ms) {
                flushed.push((tp.clone(), log.flushed_offset()));
            }
        }
        flushed
    }

    /// A clean shutdown flushes every log. Returns, per partition that had unflushed records,
    /// the offset now flushed.
    pub fn flush_all(&mut self) -> Vec<(TopicPartition, i64)> {
        let mut flushed = Vec::new();
        for (tp, log) in &mut self.logs {
            if log.flushed_offset() < log.log_end_offset() {
                log.flush();
                flushed.push((tp.clone(), log.flushed_offset()));
            }
        }
        flushed
    }
}

impl Broker {
    /// What survives this process: its logs and checkpoints.
    pub fn into_disk(self) -> BrokerDisk {
        let mut disk = BrokerDisk::default();
        for (tp, replica) in self.replicas {
            disk.high_watermark_checkpoints.insert(tp.clone(), replica.checkpointed_high_watermark);
            disk.logs.insert(tp, replica.log);
        }
        disk
    }

    /// Kafka's periodic work on its logs: the high-watermark checkpoint, and the flush policy
    /// of topics that set `flush.ms` (`LogManager`'s flush and checkpoint schedulers).
    pub(super) fn checkpoint_high_watermarks(&mut self, now: SimTime, fx: &mut Effects) {
        let tps: Vec<TopicPartition> = self.replicas.keys().cloned().collect();
        for tp in tps {
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("listed");
            let before = replica.log.flushed_offset();
            replica.log.maybe_flush_by_config(&config, now.as_ms());
            if replica.log.flushed_offset() > before {
                fx.note(Note::Flushed { partition: tp.clone(), offset: replica.log.flushed_offset() });
            }
            replica.checkpointed_high_watermark = replica.high_watermark;
        }
    }

    /// The host's kernel writes back every log whose pages have been dirty for `expire_ms` or
    /// longer (Linux's flusher, `vm.dirty_expire_centisecs`). Called by the simulated host at each
    /// flusher wake-up, whatever the process is doing.
    pub fn os_writeback(&mut self, now: SimTime, expire_ms: u64, fx: &mut Effects) {
        for (tp, replica) in &mut self.replicas {
            if replica.log.os_writeback(now.as_ms(), expire_ms) {
                fx.note(Note::Flushed { partition: tp.clone(), offset: replica.log.flushed_offset() });
            }
        }
    }

    /// Whether some compacted log here has a segment the cleaner could ever touch. Asked after
    /// every step, so it looks at each topic's config once and skips a topic that is not
    /// compacted without walking its partitions (the replicas are in partition order, so a
    /// topic's partitions are one run of keys).
    fn has_cleanable_segments(&self) -> bool {
        use std::ops::Bound::{Excluded, Unbounded};
        let mut next = self.replicas.keys().next();
        while let Some(first) = next {
            let last = TopicPartition { topic: first.topic.clone(), partition: i32::MAX };
            let compact =
                self.image.topic_config(&first.topic).unwrap_or(&self.config.topic_defaults).cleanup_policy.compact();
            if compact && self.replicas.range(first..=&last).any(|(_, replica)| replica.log.segments().len() > 1) {
                return true;
            }
            next = self.replicas.range((Excluded(&last), Unbounded)).next().map(|(tp, _)| tp);
        }
        false
    }

    /// Set the cleaner's next wake-up, at its start plus a whole number of backoffs, once there is
    /// something it may clean.
    pub(super) fn maybe_arm_log_cleaner(&mut self, now: SimTime, fx: &mut Effects) {
        if self.cleaner_armed || !self.started || !self.has_cleanable_segments() {
            return;
        }
        let backoff_ms = self.config.log_cleaner_backoff_ms.max(1);
        let since_start_ms = now.ms_since(self.started_at);
        let wake = self.started_at.plus_ms((since_start_ms / backoff_ms + 1) * backoff_ms);
        fx.set_timer(Timer::LogCleaner, wake);
        self.cleaner_armed = true;
    }

    /// The cleaner thread wakes: clean every compacted log that is due (`grabFilthiestCompactedLog`
    /// until none is; each log once, in partition order, since cleaning one does not make another
    /// dirtier), then sleep `log.cleaner.backoff.ms`.
    pub(super) fn run_log_cleaner(&mut self, now: SimTime, fx: &mut Effects) {
        let tps: Vec<TopicPartition> = self.replicas.keys().cloned().collect();
        for tp in tps {
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("listed");
            if let Some(cleaning) = replica.log.clean(&config, now.as_ms(), replica.high_watermark) {
                fx.note(Note::LogCleaned { partition: tp.clone(), cleaning });
            }
        }
        fx.set_timer(Timer::LogCleaner, now.plus_ms(self.config.log_cleaner_backoff_ms.max(1)));
    }

    pub(super) fn apply_retention(&mut self, now: SimTime, fx: &mut Effects) {
        let tps: Vec<TopicPartition> = self.replicas.keys().cloned().collect();
        for tp in tps {
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("listed");
            if let Some(start) = replica.log.apply_retention(&config, now.as_ms(), replica.high_watermark) {
                fx.note(Note::LogStartMoved { partition: tp.clone(), log_start_offset: start });
            }
        }
    }
}
