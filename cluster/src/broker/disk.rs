//! What survives a crash: the broker's disk.
//!
//! [`BrokerDisk`] holds the logs, including records still only in the page cache (a process crash
//! does not lose them; the operating system writes them back), and the
//! `replication-offset-checkpoint` of high watermarks. A power failure loses whatever was never
//! flushed ([`BrokerDisk::lose_unflushed`]). A restarted broker is rebuilt from this alone.
//!
//! Roughly every five seconds the operating system writes dirty pages back and Kafka checkpoints
//! the high watermarks; retention deletes whole segments below the high watermark that are older
//! (`retention.ms`) or beyond the size (`retention.bytes`) the topic keeps.

use super::Broker;
use crate::effects::Effects;
use crate::log::Log;
use crate::note::Note;
use crate::time::SimTime;
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

    /// The OS writes dirty pages back, and Kafka checkpoints high watermarks (both roughly every
    /// five seconds in a real deployment).
    pub(super) fn writeback(&mut self, now: SimTime, fx: &mut Effects) {
        let tps: Vec<TopicPartition> = self.replicas.keys().cloned().collect();
        for tp in tps {
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("listed");
            replica.log.maybe_flush_by_config(&config, now.as_ms());
            if replica.log.flushed_offset() < replica.log_end_offset() {
                replica.log.flush();
                fx.note(Note::Flushed { partition: tp.clone(), offset: replica.log.flushed_offset() });
            }
            replica.checkpointed_high_watermark = replica.high_watermark;
        }
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
