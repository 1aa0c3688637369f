//! An operator's command-line tools, run from a scenario's `Admin` client.
//!
//! `kafka-transactions.sh abort --topic T --partition P --start-offset N` (Kafka's
//! `TransactionsCommand.AbortTransactionCommand`) frees a partition from a *hanging transaction*,
//! one its coordinator no longer knows of, which pins the last stable offset: it asks the
//! partition's leader which producers have a transaction open there (DescribeProducers), takes
//! the one whose transaction starts at N, and calls Admin `abortTransaction` with an
//! `AbortTransactionSpec` (partition, producer id, producer epoch, coordinator epoch). The admin
//! client sends WriteTxnMarkers with an ABORT marker straight to the leader
//! (`AbortTransactionHandler`), which checks it as any marker (`ProducerAppendInfo.
//! appendEndTxnMarker`) and appends it: the transaction is over, the LSO moves on.
//!
//! ksim's operator aims at the transaction that pins the LSO (the earliest one open, the offset
//! `kafka-transactions.sh find-hanging` would print); the DescribeProducers lookup reads the
//! leader's producer state directly rather than going over the wire.

use super::World;
use crate::nodes::{current_leaders, Machine};
use ksim_cluster::client::ADMIN_CORRELATION_BASE;
use ksim_cluster::effects::Effects;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::protocol::{Message, Request, WriteTxnMarkersRequest};
use ksim_cluster::record::ControlType;
use ksim_cluster::topic::TopicPartition;

impl World {
    /// `kafka-transactions.sh abort` from `from` for the transaction pinning `partition`'s LSO.
    pub fn admin_abort_transaction(&mut self, from: NodeId, partition: &TopicPartition) {
        let now = self.now();
        let leader = current_leaders(&self.slots).get(partition).copied();
        // DescribeProducers: the leader's open transactions, earliest first.
        let open = leader.and_then(|id| match self.slots.get(&NodeId::Broker(id)).and_then(|s| s.machine.as_ref()) {
            Some(Machine::Broker(b)) => b.replica(partition).filter(|r| r.is_leader()).and_then(|r| {
                let (producer_id, start_offset) = r.log.ongoing_transactions().min_by_key(|(_, offset)| *offset)?;
                let entry = r.producers.get(&producer_id)?;
                // An unknown coordinator epoch (-1) is sent as 0, as the tool does.
                Some((producer_id, entry.producer_epoch, entry.coordinator_epoch.max(0), start_offset))
            }),
            _ => None,
        });
        let mut fx = Effects::default();
        let (Some(leader), Some((producer_id, producer_epoch, coordinator_epoch, start_offset))) = (leader, open)
        else {
            fx.note(Note::AdminAbortRequested {
                partition: partition.clone(),
                producer_id: -1,
                producer_epoch: -1,
                coordinator_epoch: -1,
                start_offset: -1,
            });
            return self.apply(from, now, fx);
        };
        fx.note(Note::AdminAbortRequested {
            partition: partition.clone(),
            producer_id,
            producer_epoch,
            coordinator_epoch,
            start_offset,
        });
        let body = Request::WriteTxnMarkers(WriteTxnMarkersRequest {
            transactional_id: String::new(),
            producer_id,
            producer_epoch,
            coordinator_epoch,
            result: ControlType::Abort,
            partition: partition.clone(),
        });
        let correlation_id = ADMIN_CORRELATION_BASE + self.next_admin_request;
        self.next_admin_request += 1;
        fx.send(NodeId::Broker(leader), Message::Request { correlation_id, body });
        self.apply(from, now, fx);
    }
}
