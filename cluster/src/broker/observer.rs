//! A broker in a cluster with a controller quorum: a KRaft **observer** of the metadata log.
//!
//! Kafka 4.x brokers replicate `__cluster_metadata` with the same `KafkaRaftClient` the
//! controllers run, as observers: they Fetch from the quorum leader (asking any voter first, whose
//! answer names the leader), never vote, and count towards no high watermark. The broker's
//! metadata listener (`BrokerMetadataListener` / `MetadataLoader`) is handed only **committed**
//! records (`RaftClient.Listener.handleCommit`, up to the high watermark the leader sent), so a
//! broker never acts on a decision the quorum could still lose.
//!
//! Registration, heartbeats and AlterPartition go to the active controller through Kafka's
//! `NodeToControllerChannelManager`, whose `RaftControllerNodeProvider` reads the leader from the
//! same Raft client: when the quorum elects a new leader, the broker's controller requests follow
//! it. A request that reaches a controller that is not (or no longer) active gets NOT_CONTROLLER,
//! and the broker asks again once it knows the new leader.

use super::Broker;
use crate::controller::quorum_wire::{emit_raft_out, observer_raft_id, raft_id};
use crate::effects::Effects;
use crate::metadata::MetadataRecord;
use crate::node::NodeId;
use crate::protocol::MetadataFetchResponse;
use crate::raft::log::Payload;
use crate::raft::message::RaftMessage;
use crate::raft::state::QuorumConfig;
use crate::raft::{Raft, RaftDisk, RaftOut, RaftTimer};
use crate::time::SimTime;
use std::collections::BTreeSet;

/// The broker's observer of the metadata quorum.
pub(super) struct Observer {
    pub(super) raft: Raft<MetadataRecord>,
    /// Entries below this Raft offset are folded into the broker's image.
    pub(super) applied_offset: i64,
}

impl Broker {
    /// This broker observes a controller quorum of `voters` instead of long-polling one
    /// controller. Its metadata log starts empty on every start: Kafka's broker reloads it from
    /// the leader (or its own copy and snapshots, which ksim does not model).
    pub fn observe_quorum(mut self, voters: BTreeSet<i32>, config: QuorumConfig) -> Self {
        let raft = Raft::new(observer_raft_id(&voters, self.id), voters, config, RaftDisk::default());
        self.observer = Some(Observer { raft, applied_offset: 0 });
        self
    }

    /// The observer's Raft member, if the cluster has a quorum.
    pub fn metadata_observer(&self) -> Option<&Raft<MetadataRecord>> {
        self.observer.as_ref().map(|o| &o.raft)
    }

    /// How far (a Raft offset) this broker has folded committed metadata into its image.
    pub fn metadata_applied_offset(&self) -> Option<i64> {
        self.observer.as_ref().map(|o| o.applied_offset)
    }

    pub(super) fn observer_start(&mut self, now: SimTime, rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        let Some(o) = &mut self.observer else { return };
        let mut out = RaftOut::default();
        o.raft.start(now, rng, &mut out);
        self.after_observer(now, out, fx);
    }

    pub(super) fn observer_message(
        &mut self,
        now: SimTime,
        from: NodeId,
        message: RaftMessage<MetadataRecord>,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        let Some(o) = &mut self.observer else { return };
        let Some(from) = raft_id(o.raft.voters(), from) else { return };
        let mut out = RaftOut::default();
        o.raft.on_message(now, from, message, rng, &mut out);
        self.after_observer(now, out, fx);
    }

    pub(super) fn observer_timer(
        &mut self,
        now: SimTime,
        timer: RaftTimer,
        rng: &mut dyn rand_core::RngCore,
        fx: &mut Effects,
    ) {
        let Some(o) = &mut self.observer else { return };
        let mut out = RaftOut::default();
        o.raft.on_timer(now, timer, rng, &mut out);
        self.after_observer(now, out, fx);
    }

    /// Emit the observer's output, follow the leader for controller requests, and fold what the
    /// quorum committed.
    fn after_observer(&mut self, now: SimTime, out: RaftOut<MetadataRecord>, fx: &mut Effects) {
        let o = self.observer.as_mut().expect("observer");
        let voters = o.raft.voters().clone();
        emit_raft_out(&voters, out, fx);
        // `RaftControllerNodeProvider`: the active controller is the quorum leader.
        if let Some(leader) = o.raft.leader() {
            let leader = NodeId::Controller(leader);
            let changed = self.controller != leader;
            self.controller = leader;
            if changed {
                self.on_new_controller(now, fx);
            }
            if self.broker_epoch < 0 && self.started {
                // Registration waited for a leader (`register` sends one at a time).
                self.register(now, fx);
            }
        }
        let o = self.observer.as_mut().expect("observer");
        let high_watermark = o.raft.high_watermark();
        if o.applied_offset >= high_watermark {
            return;
        }
        let mut records = Vec::new();
        while o.applied_offset < high_watermark {
            let entry = o.raft.log().get(o.applied_offset).expect("committed entries are in the log");
            if let Payload::Data(record) = &entry.payload {
                records.push(record.clone());
            }
            o.applied_offset += 1;
        }
        let base_offset = self.image.next_offset;
        self.on_metadata(now, MetadataFetchResponse { records, base_offset }, fx);
    }
}
