//! The cluster metadata log and the image folded from it (KRaft).
//!
//! In KRaft mode the controller does not tell brokers what to do; it appends records to a log,
//! `__cluster_metadata`, and brokers replicate that log and fold it into an in-memory *image*:
//! which brokers exist and are fenced, which topics exist, and for every partition its replicas,
//! leader, leader epoch, ISR and partition epoch. A broker acts on the image: when a record names it
//! leader of a partition with a new leader epoch, it becomes leader.
//!
//! The controller folds the very same records into its own image, so both sides agree by
//! construction. (This is the stream-table duality again: the image is the table of the log.)

use crate::config::TopicConfig;
use crate::invariant::ensure;
use crate::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How a leader came to be chosen; a learner cares which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionKind {
    /// The first replica in assignment order that is in the ISR and unfenced.
    Clean,
    /// No ISR member was available and `unclean.leader.election.enable=true`: an out-of-sync
    /// replica took over, and whatever only the ISR had is lost.
    Unclean,
    /// The preferred (first assigned) replica took leadership back.
    Preferred,
    /// The ISR was empty and an Eligible Leader Replica (KIP-966) took over: a replica that left
    /// the ISR while it was below `min.insync.replicas`, so it has every committed record.
    Elr,
    /// ISR and ELR were both empty, and the partition's last known leader came back unfenced
    /// (KIP-966; Kafka keeps it in `lastKnownElr`). Kafka marks this election unclean: the last
    /// leader may have restarted without records it had acknowledged.
    LastKnownLeader,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetadataRecord {
    RegisterBroker {
        broker_id: BrokerId,
        broker_epoch: i64,
        /// Which start of the broker process registered (Kafka's `incarnationId`): the controller
        /// refuses a different incarnation while the registered one still has a valid session.
        incarnation: u64,
        rack: Option<String>,
    },
    FenceBroker {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    UnfenceBroker {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    /// The broker asked to shut down and the controller is moving its leaderships away (Kafka's
    /// `BrokerRegistrationChangeRecord` with `inControlledShutdown`): it stays unfenced but may
    /// neither lead nor join an ISR (`ClusterControlManager.isActive`).
    BrokerInControlledShutdown {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    Topic {
        name: String,
        partitions: i32,
        config: TopicConfig,
    },
    /// The full state of one partition after a change (Kafka writes a `PartitionRecord` once and
    /// then `PartitionChangeRecord` deltas; ksim writes the whole state each time, which reads
    /// better in a trace).
    Partition {
        partition: TopicPartition,
        replicas: Vec<BrokerId>,
        isr: Vec<BrokerId>,
        /// Eligible Leader Replicas (KIP-966): empty unless ELR is on and the ISR is below min ISR.
        #[serde(default)]
        elr: Vec<BrokerId>,
        /// The leader when the ISR last became empty (KIP-966 `lastKnownElr`), with ELR on.
        #[serde(default)]
        last_known_leader: Option<BrokerId>,
        leader: Option<BrokerId>,
        leader_epoch: i32,
        partition_epoch: i32,
        election: Option<ElectionKind>,
    },
    /// Kafka's `NoOpRecord` (KIP-835): the active controller writes one every
    /// `metadata.max.idle.interval.ms` and it changes nothing. It keeps the metadata log moving
    /// while the cluster is idle, so the high watermark advances and a broker or standby
    /// controller whose last applied offset stops moving knows it is the one stuck.
    NoOp,
}

impl crate::raft::RaftRecord for MetadataRecord {
    fn is_no_op(&self) -> bool {
        matches!(self, MetadataRecord::NoOp)
    }
}

impl fmt::Display for MetadataRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataRecord::RegisterBroker { broker_id, broker_epoch, .. } => {
                write!(f, "RegisterBroker {broker_id} epoch={broker_epoch}")
            }
            MetadataRecord::FenceBroker { broker_id, .. } => write!(f, "FenceBroker {broker_id}"),
            MetadataRecord::UnfenceBroker { broker_id, .. } => write!(f, "UnfenceBroker {broker_id}"),
            MetadataRecord::BrokerInControlledShutdown { broker_id, .. } => {
                write!(f, "BrokerInControlledShutdown {broker_id}")
            }
            MetadataRecord::Topic { name, partitions, .. } => write!(f, "Topic {name} partitions={partitions}"),
            MetadataRecord::Partition { partition, isr, elr, leader, leader_epoch, .. } => {
                write!(f, "Partition {partition} leader=")?;
                match leader {
                    Some(l) => write!(f, "{l}")?,
                    None => write!(f, "none")?,
                }
                write!(f, " epoch={leader_epoch} isr={isr:?}")?;
                if !elr.is_empty() {
                    write!(f, " elr={elr:?}")?;
                }
                Ok(())
            }
            MetadataRecord::NoOp => f.write_str("NoOp"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerImage {
    pub broker_epoch: i64,
    pub incarnation: u64,
    pub fenced: bool,
    /// In controlled shutdown: unfenced, but no longer eligible to lead or join an ISR.
    pub in_controlled_shutdown: bool,
    pub rack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    /// Eligible Leader Replicas (KIP-966), in broker id order.
    #[serde(default)]
    pub elr: Vec<BrokerId>,
    /// The leader when the ISR last became empty (KIP-966 `lastKnownElr`), with ELR on.
    #[serde(default)]
    pub last_known_leader: Option<BrokerId>,
    pub leader: Option<BrokerId>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub partitions: i32,
    pub config: TopicConfig,
}

/// The table folded from the metadata log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// How many records have been applied: the offset of the next one.
    pub next_offset: i64,
    pub brokers: BTreeMap<BrokerId, BrokerImage>,
    pub topics: BTreeMap<String, TopicImage>,
    pub partitions: BTreeMap<TopicPartition, PartitionImage>,
}

impl MetadataImage {
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::RegisterBroker { broker_id, broker_epoch, incarnation, rack } => {
                // A (re-)registered broker starts fenced until it has caught up with the log.
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        broker_epoch: *broker_epoch,
                        incarnation: *incarnation,
                        fenced: true,
                        in_controlled_shutdown: false,
                        rack: rack.clone(),
                    },
                );
            }
            MetadataRecord::BrokerInControlledShutdown { broker_id, .. } => {
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    b.in_controlled_shutdown = true;
                }
            }
            MetadataRecord::FenceBroker { broker_id, .. } => {
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    b.fenced = true;
                }
            }
            MetadataRecord::UnfenceBroker { broker_id, .. } => {
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    b.fenced = false;
                }
            }
            MetadataRecord::Topic { name, partitions, config } => {
                self.topics.insert(name.clone(), TopicImage { partitions: *partitions, config: config.clone() });
            }
            MetadataRecord::Partition {
                partition,
                replicas,
                isr,
                elr,
                last_known_leader,
                leader,
                leader_epoch,
                partition_epoch,
                ..
            } => {
                self.partitions.insert(
                    partition.clone(),
                    PartitionImage {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        elr: elr.clone(),
                        last_known_leader: *last_known_leader,
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                    },
                );
            }
            // `MetadataDelta.replay(NoOpRecord)`: nothing changes but the offset.
            MetadataRecord::NoOp => {}
        }
        self.next_offset += 1;
    }

    /// Every partition's ISR is a subset of its replicas, and its leader, if any, is in the ISR
    /// and an unfenced broker. KRaft's controller builds every change with
    /// `PartitionChangeBuilder`, which elects a leader only from the ISR (or, unclean, resets the
    /// ISR to the new leader alone), and fences a broker in the same atomic batch of records that
    /// moves its leaderships and removes it from ISRs (`ReplicationControlManager.handleBrokerFenced`).
    pub fn check_invariants(&self) -> Result<(), String> {
        for (tp, p) in &self.partitions {
            ensure(p.isr.iter().all(|id| p.replicas.contains(id)), || {
                format!("{tp}: ISR {:?} not within replicas {:?}", p.isr, p.replicas)
            })?;
            // KIP-966: an ELR member is a replica that is not in the ISR.
            ensure(p.elr.iter().all(|id| p.replicas.contains(id) && !p.isr.contains(id)), || {
                format!("{tp}: ELR {:?} not within replicas {:?} outside the ISR {:?}", p.elr, p.replicas, p.isr)
            })?;
            if let Some(leader) = p.leader {
                ensure(p.isr.contains(&leader), || {
                    format!("{tp}: leader {leader} (epoch {}) not in the ISR {:?}", p.leader_epoch, p.isr)
                })?;
                ensure(self.is_unfenced(leader), || format!("{tp}: leader {leader} is fenced or unregistered"))?;
            }
        }
        Ok(())
    }

    pub fn is_unfenced(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// Unfenced and not shutting down: eligible to lead and to join an ISR (Kafka's
    /// `ClusterControlManager.isActive`; brokers check the same in `Partition.isReplicaIsrEligible`).
    pub fn is_active(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
    }

    pub fn live_brokers(&self) -> Vec<BrokerId> {
        self.brokers.iter().filter(|(_, b)| !b.fenced).map(|(id, _)| *id).collect()
    }

    pub fn topic_config(&self, topic: &str) -> Option<&TopicConfig> {
        self.topics.get(topic).map(|t| &t.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(leader: Option<BrokerId>, isr: Vec<BrokerId>, fenced: bool) -> MetadataImage {
        let mut image = MetadataImage::default();
        for id in [1, 2] {
            image.brokers.insert(
                id,
                BrokerImage {
                    broker_epoch: 1,
                    incarnation: 1,
                    fenced: fenced && id == 1,
                    in_controlled_shutdown: false,
                    rack: None,
                },
            );
        }
        let p = PartitionImage {
            replicas: vec![1, 2],
            isr,
            elr: vec![],
            last_known_leader: None,
            leader,
            leader_epoch: 3,
            partition_epoch: 4,
        };
        image.partitions.insert(TopicPartition::new("t", 0), p);
        image
    }

    #[test]
    fn invariant_leader_in_isr_and_unfenced_isr_within_replicas() {
        assert_eq!(image(Some(1), vec![1, 2], false).check_invariants(), Ok(()));
        assert_eq!(image(None, vec![1], true).check_invariants(), Ok(()), "an offline partition");
        assert!(image(Some(1), vec![2], false).check_invariants().unwrap_err().contains("not in the ISR"));
        assert!(image(Some(1), vec![1, 3], false).check_invariants().unwrap_err().contains("not within replicas"));
        assert!(image(Some(1), vec![1, 2], true).check_invariants().unwrap_err().contains("fenced"));
    }
}
