//! The hosts under the processes: each broker's kernel writes its page cache back to disk.
//!
//! Kafka leaves durability to replication and the operating system: a write is in the page cache
//! when it is acknowledged, and reaches the disk when the kernel writes it back. Linux does that
//! per file (inode): its flusher wakes every `vm.dirty_writeback_centisecs` (5 s) and writes back,
//! whole, every file whose pages have been dirty for longer than `vm.dirty_expire_centisecs` (30 s)
//! (`mm/page-writeback.c`, `fs/fs-writeback.c`: `wb_writeback` with `older_than_this`). So a
//! partition's active segment reaches the disk every 30-35 s, and losing power loses the
//! acknowledged writes of the last 0-35 s, depending on the phase.
//!
//! The flusher is the host's, not the broker's: it goes on while the broker process is dead (its
//! page cache survives a crash) and does not restart with it. Each host's flusher runs at its own
//! phase, drawn from the seed, as real hosts are not in step.

use super::driver::Wake;
use super::World;
use crate::nodes::{Durable, Machine, Status};
use crate::rng::stream;
use crate::trace::EventKind;
use ksim_cluster::effects::Effects;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::time::SimTime;
use rand_core::RngCore;

impl World {
    fn writeback_interval_ms(&self) -> u64 {
        self.resolved.broker.vm_dirty_writeback_centisecs * 10
    }

    /// Start every broker host's flusher, each at its own phase.
    pub(super) fn start_hosts(&mut self, seed: u64) {
        let interval_ms = self.writeback_interval_ms();
        let brokers: Vec<NodeId> = self.slots.keys().copied().filter(|n| matches!(n, NodeId::Broker(_))).collect();
        for node in brokers {
            let phase_ms = stream(seed, &format!("host/{node}/writeback")).next_u64() % interval_ms;
            self.driver.wake_at(SimTime::from_ms(phase_ms), Wake::HostWriteback { node });
        }
    }

    /// The flusher on `node`'s host wakes: it writes back every log dirty for long enough, whether
    /// the broker process runs, is paused or is dead. A host without power does nothing.
    pub(super) fn host_writeback(&mut self, node: NodeId) {
        let now = self.now();
        let expire_ms = self.resolved.broker.vm_dirty_expire_centisecs * 10;
        let Some(slot) = self.slots.get_mut(&node) else { return };
        let mut notes = Vec::new();
        match (slot.status, &mut slot.machine, &mut slot.durable) {
            (Status::Up | Status::Paused, Some(Machine::Broker(broker)), _) => {
                let mut fx = Effects::default();
                broker.os_writeback(now, expire_ms, &mut fx);
                notes = fx.notes;
            }
            (Status::Killed | Status::Stopped, _, Durable::Broker(disk)) => {
                for (partition, offset) in disk.os_writeback(now.as_ms(), expire_ms) {
                    notes.push(Note::Flushed { partition, offset });
                }
            }
            _ => {}
        }
        for note in notes {
            self.record(node, EventKind::Note(note));
        }
        let next = now.plus_ms(self.writeback_interval_ms());
        self.driver.wake_at(next, Wake::HostWriteback { node });
    }
}
