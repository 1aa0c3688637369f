//! The client API's entry points: what an application's `send`, `poll` and `commitSync` do to
//! its node's producer and consumer engines, and where the application waits for their answers.

use super::World;
use crate::nodes::Machine;
use crate::trace::EventKind;
use ksim_cluster::client::Client;
use ksim_cluster::consumer::{ConsumedRecord, Consumer, PollError};
use ksim_cluster::effects::Effects;
use ksim_cluster::node::NodeId;
use ksim_cluster::note::Note;
use ksim_cluster::record::Record;
use ksim_cluster::time::SimTime;
use ksim_cluster::txn::client::GroupMetadata;
use ksim_cluster::TopicPartition;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{oneshot, Notify};

/// Where a producer app waits for its record's fate: the partition and offset, or why it failed.
pub type Delivery = oneshot::Receiver<Result<(TopicPartition, i64), String>>;
type DeliverySender = oneshot::Sender<Result<(TopicPartition, i64), String>>;

/// What client applications wait on.
#[derive(Default)]
pub(super) struct Waiters {
    /// Each record sent, by (client, send id), until the producer reports its fate.
    pub(super) deliveries: BTreeMap<(NodeId, u64), DeliverySender>,
    /// Each consumer's "records are ready to poll" signal, by (client, consumer engine).
    pub(super) poll_ready: BTreeMap<(NodeId, usize), Arc<Notify>>,
    /// Each commit in flight, by (client, consumer engine, commit id).
    pub(super) commits: BTreeMap<(NodeId, usize, u64), oneshot::Sender<Result<(), String>>>,
    /// Outcomes of commits that finished before anyone waited for them (a commit refused in the
    /// very call that started it), until the waiter arrives.
    pub(super) finished_commits: BTreeMap<(NodeId, usize, u64), Result<(), String>>,
    /// Each transactional producer's blocking call in progress (initTransactions,
    /// commitTransaction, abortTransaction), and whether it waits for an epoch bump to finish.
    pub(super) transaction_calls: BTreeMap<NodeId, (oneshot::Sender<Result<(), String>>, bool)>,
}

/// A transactional producer's blocking calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnCall {
    InitTransactions,
    CommitTransaction,
    AbortTransaction,
}

impl Waiters {
    pub(super) fn delivered(&mut self, node: NodeId, send_id: u64, outcome: Result<(TopicPartition, i64), String>) {
        if let Some(tx) = self.deliveries.remove(&(node, send_id)) {
            let _ = tx.send(outcome);
        }
    }

    /// The application on `node` stopped: what it waited for dies with it.
    pub(super) fn application_stopped(&mut self, node: NodeId) {
        self.deliveries.retain(|(n, _), _| *n != node);
        self.commits.retain(|(n, _, _), _| *n != node);
        self.finished_commits.retain(|(n, _, _), _| *n != node);
        self.transaction_calls.remove(&node);
    }

    /// A transactional producer's note: the call in progress may be over.
    pub(super) fn on_transaction_note(&mut self, node: NodeId, note: &ksim_cluster::note::Note) {
        use ksim_cluster::note::Note;
        let outcome = match note {
            Note::TxnInitialized { .. } => Ok(()),
            Note::TxnEnded { epoch_bump: true, .. } => {
                // abortTransaction() returns once the epoch bump that follows it is done.
                if let Some(call) = self.transaction_calls.get_mut(&node) {
                    call.1 = true;
                }
                return;
            }
            Note::TxnEnded { .. } | Note::TxnOffsetsSent { .. } => Ok(()),
            Note::TxnFailed { error, fatal, .. } => Err(if *fatal {
                format!("{error} (fatal: the producer must be closed)")
            } else {
                format!("{error} (the transaction must be aborted)")
            }),
            _ => return,
        };
        if let Some((tx, _)) = self.transaction_calls.remove(&node) {
            let _ = tx.send(outcome);
        }
    }
}

impl World {
    pub fn producer_send(&mut self, node: NodeId, topic: &str, record: Record) -> Delivery {
        self.producer_send_to(node, topic, None, record)
    }

    /// A send to a partition the application chose (`None`: the partitioner's).
    pub fn producer_send_to(&mut self, node: NodeId, topic: &str, partition: Option<i32>, record: Record) -> Delivery {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let send_id = self.next_send_id;
        self.next_send_id += 1;
        let now = self.now();
        let to = match partition {
            Some(p) => format!("{topic}-{p}"),
            None => topic.to_string(),
        };
        let mut what = match &record.key {
            Some(k) => format!("send {k}={} to {to}", record.value_text()),
            None => format!("send {} to {to}", record.value_text()),
        };
        // Headers are counted, not printed: the trace stays one line a send.
        match record.headers.len() {
            0 => {}
            1 => what.push_str(" (1 header)"),
            n => what.push_str(&format!(" ({n} headers)")),
        }
        self.record(node, EventKind::App(what));
        let Some(slot) = self.slots.get_mut(&node) else {
            let _ = tx.send(Err("the run is over".into()));
            return rx;
        };
        let Some(Machine::Client(Client { producer: Some(producer), .. })) = slot.machine.as_mut() else {
            let _ = tx.send(Err("not running".into()));
            return rx;
        };
        self.waiters.deliveries.insert((node, send_id), tx);
        self.checker.on_send(node, send_id);
        let mut fx = Effects::default();
        producer.send_to(now, send_id, topic, partition, record, &mut slot.rng, &mut fx);
        self.apply(node, now, fx);
        rx
    }

    /// A transactional producer's blocking call; the receiver gets its outcome.
    pub fn producer_transaction_call(&mut self, node: NodeId, call: TxnCall) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        let name = match call {
            TxnCall::InitTransactions => "initTransactions()",
            TxnCall::CommitTransaction => "commitTransaction()",
            TxnCall::AbortTransaction => "abortTransaction()",
        };
        self.record(node, EventKind::App(name.to_string()));
        let now = self.now();
        let Some(slot) = self.slots.get_mut(&node) else {
            let _ = tx.send(Err("the run is over".into()));
            return rx;
        };
        let Some(Machine::Client(Client { producer: Some(producer), .. })) = slot.machine.as_mut() else {
            let _ = tx.send(Err("not running".into()));
            return rx;
        };
        // The waiter goes first: the call may end in its own step (an abort with nothing sent).
        self.waiters.transaction_calls.insert(node, (tx, false));
        let mut fx = Effects::default();
        let started = match call {
            TxnCall::InitTransactions => producer.init_transactions(now, &mut fx),
            TxnCall::CommitTransaction => producer.commit_transaction(now, &mut fx),
            TxnCall::AbortTransaction => producer.abort_transaction(now, &mut fx),
        };
        self.apply(node, now, fx);
        if let Err(error) = started {
            self.record(node, EventKind::App(format!("{name} threw: {error}")));
            if let Some((tx, _)) = self.waiters.transaction_calls.remove(&node) {
                let _ = tx.send(Err(error));
            }
        }
        rx
    }

    /// Consumer engine `k` of the node, if its application created it and the process runs.
    fn consumer_engine(&self, node: NodeId, k: usize) -> Option<&Consumer> {
        match self.slots.get(&node).and_then(|s| s.machine.as_ref()) {
            Some(Machine::Client(client)) => client.consumer_engine(k),
            _ => None,
        }
    }

    /// `new KafkaConsumer(props)` while the application runs: one more consumer engine on the
    /// node, built from its first consumer's configuration as `configure` changes it, with
    /// its own `client.id`, connections, requests and timers. `None` if the node runs no
    /// consumer to start from, or already runs as many as a node can.
    pub fn consumer_add_engine(
        &mut self,
        node: NodeId,
        client_id: &str,
        configure: impl FnOnce(&mut ksim_cluster::config::ConsumerConfig),
    ) -> Option<usize> {
        let brokers = self.header.brokers.clone();
        let Some(Machine::Client(client)) = self.slots.get_mut(&node).and_then(|s| s.machine.as_mut()) else {
            return None;
        };
        let mut config = client.consumer.as_ref()?.config().clone();
        configure(&mut config);
        // The checker learns which group this engine's records count for.
        let checked = config.clone();
        let k = client.add_consumer(|_| Consumer::new(config, brokers, client_id))?;
        self.checker.on_consumer_engine_created(node, k as u8, &checked);
        self.record(
            node,
            EventKind::App(format!("new KafkaConsumer(client.id={client_id}): consumer {k} of this node")),
        );
        Some(k)
    }

    /// Close the node's producer and create a new one with the same settings (Kafka Streams'
    /// `StreamsProducer.resetProducer` after its producer was fenced under exactly_once_v2).
    /// What the old one was sending fails; its requests' ids are not reused. Returns false if
    /// the node has no producer.
    pub fn producer_reset(&mut self, node: NodeId) -> bool {
        let name = crate::trace::node_name(&self.header.clients, node);
        let Some(fresh) = self.new_producer(&name) else { return false };
        let Some(Machine::Client(client)) = self.slots.get_mut(&node).and_then(|s| s.machine.as_mut()) else {
            return false;
        };
        let next = client.producer.as_ref().map_or(1, |p| p.next_correlation_id());
        client.producer = Some(fresh.counting_from(next));
        self.waiters.deliveries.retain(|(n, _), _| *n != node);
        self.waiters.transaction_calls.remove(&node);
        self.record(
            node,
            EventKind::App("producer.close(); new KafkaProducer(props): the fenced producer is replaced".into()),
        );
        true
    }

    /// The node's consumer's `groupMetadata()`, if it is in a group.
    pub fn consumer_group_metadata(&self, node: NodeId, k: usize) -> Option<GroupMetadata> {
        self.consumer_engine(node, k)?.group_metadata()
    }

    /// `producer.sendOffsetsToTransaction(offsets, groupMetadata)`.
    pub fn producer_send_offsets(
        &mut self,
        node: NodeId,
        offsets: Vec<(TopicPartition, i64)>,
        group: GroupMetadata,
    ) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        let now = self.now();
        let shown: Vec<String> = offsets.iter().map(|(tp, o)| format!("{tp}={o}")).collect();
        self.record(
            node,
            EventKind::App(format!(
                "sendOffsetsToTransaction({}, group {} generation {} member {})",
                shown.join(" "),
                group.group_id,
                group.generation,
                group.member_id
            )),
        );
        let Some(slot) = self.slots.get_mut(&node) else {
            let _ = tx.send(Err("the run is over".into()));
            return rx;
        };
        let Some(Machine::Client(Client { producer: Some(producer), .. })) = slot.machine.as_mut() else {
            let _ = tx.send(Err("not running".into()));
            return rx;
        };
        self.waiters.transaction_calls.insert(node, (tx, false));
        let mut fx = Effects::default();
        let pending = ksim_cluster::txn::client::PendingOffsets { offsets, group };
        let started = producer.send_offsets_to_transaction(now, pending, &mut fx);
        self.apply(node, now, fx);
        if let Err(error) = started {
            self.record(node, EventKind::App(format!("sendOffsetsToTransaction() threw: {error}")));
            if let Some((tx, _)) = self.waiters.transaction_calls.remove(&node) {
                let _ = tx.send(Err(error));
            }
        }
        rx
    }

    /// Seek every assigned partition back to the group's committed offset (after an abort).
    pub fn consumer_rewind_to_committed(&mut self, node: NodeId, k: usize) {
        self.record(node, EventKind::App("seek to the committed offsets (the aborted input is read again)".into()));
        self.with_consumer(node, k, |c, now, fx| c.rewind_to_committed(now, fx));
    }

    /// `beginTransaction()`: local to the producer.
    pub fn producer_begin_transaction(&mut self, node: NodeId) -> Result<(), String> {
        self.record(node, EventKind::App("beginTransaction()".to_string()));
        let Some(Machine::Client(Client { producer: Some(producer), .. })) =
            self.slots.get_mut(&node).and_then(|s| s.machine.as_mut())
        else {
            return Err("not running".into());
        };
        let outcome = producer.begin_transaction();
        if let Err(error) = &outcome {
            self.record(node, EventKind::App(format!("beginTransaction() threw: {error}")));
        }
        outcome
    }

    pub fn consumer_assign_topics(&mut self, node: NodeId, k: usize, topics: &[String]) {
        self.with_consumer(node, k, |c, now, fx| c.assign_topics(topics, now, fx));
    }

    /// `assign(partitions)`: read exactly these partitions, outside any group (replacing the
    /// previous assignment).
    pub fn consumer_assign(&mut self, node: NodeId, k: usize, partitions: Vec<TopicPartition>) {
        self.with_consumer(node, k, |c, now, fx| c.assign(partitions, now, fx));
    }

    /// `seekToBeginning(partitions)`.
    pub fn consumer_seek_to_beginning(&mut self, node: NodeId, k: usize, partitions: &[TopicPartition]) {
        self.with_consumer(node, k, |c, now, fx| c.seek_to_beginning(partitions, now, fx));
    }

    /// The consumer's `position(partition)`, if it has one.
    pub fn consumer_position(&self, node: NodeId, k: usize, tp: &TopicPartition) -> Option<i64> {
        self.consumer_engine(node, k)?.position(tp)
    }

    /// The consumer's assigned partitions without a position it will choose
    /// ([`Consumer::partitions_without_offset`]).
    pub fn consumer_partitions_without_offset(&self, node: NodeId, k: usize) -> Vec<TopicPartition> {
        self.consumer_engine(node, k).map(Consumer::partitions_without_offset).unwrap_or_default()
    }

    /// Where the consumer's last reset of the partition put its position.
    pub fn consumer_reset_offset(&self, node: NodeId, k: usize, tp: &TopicPartition) -> Option<i64> {
        self.consumer_engine(node, k)?.reset_offset(tp)
    }

    /// `endOffsets(partitions)`: the consumer looks their ends up.
    pub fn consumer_request_end_offsets(&mut self, node: NodeId, k: usize, partitions: &[TopicPartition]) {
        self.with_consumer(node, k, |c, now, fx| c.request_end_offsets(partitions, now, fx));
    }

    /// The end the consumer's last `endOffsets` lookup of the partition found.
    pub fn consumer_end_offset(&self, node: NodeId, k: usize, tp: &TopicPartition) -> Option<i64> {
        self.consumer_engine(node, k)?.end_offset(tp)
    }

    /// Run `f` on the node's consumer engine `k` and carry out its effects (its timers
    /// wrapped as that engine's: `Client::with_consumer`).
    fn with_consumer<T>(
        &mut self,
        node: NodeId,
        k: usize,
        f: impl FnOnce(&mut Consumer, SimTime, &mut Effects) -> T,
    ) -> Option<T> {
        let now = self.now();
        let slot = self.slots.get_mut(&node)?;
        let Some(Machine::Client(client)) = slot.machine.as_mut() else { return None };
        let mut fx = Effects::default();
        let out = client.with_consumer(k, &mut fx, |c, fx| f(c, now, fx))?;
        self.apply(node, now, fx);
        Some(out)
    }

    pub fn consumer_join_worker_group(
        &mut self,
        node: NodeId,
        k: usize,
        worker: ksim_cluster::connect::worker_coordinator::WorkerCoordinator,
    ) {
        self.with_consumer(node, k, |c, now, fx| c.join_worker_group(worker, now, fx));
    }

    /// What a Connect worker's membership engine runs, and the generation it last completed.
    pub fn consumer_worker_assignment(
        &self,
        node: NodeId,
        k: usize,
    ) -> Option<(i32, Vec<ksim_cluster::connect::herder::Unit>)> {
        let worker = self.consumer_engine(node, k)?.member()?.worker()?;
        Some((worker.last_completed_generation(), worker.running()?.to_vec()))
    }

    pub fn consumer_subscribe(&mut self, node: NodeId, k: usize, topics: &[String]) {
        self.with_consumer(node, k, |c, now, fx| c.subscribe(topics, now, fx));
    }

    /// Start a commit of the consumer's positions; the receiver gets its outcome.
    pub fn consumer_commit(&mut self, node: NodeId, k: usize) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        self.consumer_commit_with(node, k, None)
    }

    /// Start a commit of these offsets (`commitSync(offsets)`); the receiver gets its outcome.
    pub fn consumer_commit_offsets(
        &mut self,
        node: NodeId,
        k: usize,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        self.consumer_commit_with(node, k, Some(offsets))
    }

    fn consumer_commit_with(
        &mut self,
        node: NodeId,
        k: usize,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = self
            .with_consumer(node, k, |c, now, fx| match offsets {
                Some(offsets) => c.commit_offsets(now, offsets, fx),
                None => c.commit(now, fx),
            })
            .flatten();
        if started.is_some() {
            for finding in self.checker.on_app_commit(node) {
                self.record_world(EventKind::Finding(finding));
            }
        }
        match started {
            Some(id) => {
                match self.waiters.finished_commits.remove(&(node, k, id)) {
                    // A commit refused at once (not in an active group) has its outcome already.
                    Some(outcome) => {
                        let _ = tx.send(outcome);
                    }
                    None => {
                        self.waiters.commits.insert((node, k, id), tx);
                    }
                }
            }
            None => {
                let _ = tx.send(Ok(()));
            }
        }
        rx
    }

    /// A Streams instance made these inputs' results visible: the checker counts them.
    pub fn streams_counted(
        &mut self,
        node: NodeId,
        application: &str,
        exactly_once: bool,
        inputs: &[(TopicPartition, i64)],
    ) {
        for finding in self.checker.on_streams_counted(node, application, exactly_once, inputs) {
            self.record_world(EventKind::Finding(finding));
        }
    }

    /// The application registers a rebalance listener that handles revocations before the
    /// member rejoins (`Consumer::listen_for_revocations`).
    pub fn consumer_listen_for_revocations(&mut self, node: NodeId, k: usize) {
        self.with_consumer(node, k, |c, _, _| c.listen_for_revocations());
    }

    /// The consumer's `currentLag` of a partition ([`ksim_cluster::consumer::Consumer::current_lag`]).
    /// When the end is unknown, the consumer asks for it in the background, as Kafka's does.
    pub fn consumer_current_lag(&mut self, node: NodeId, k: usize, tp: &TopicPartition) -> Option<i64> {
        self.with_consumer(node, k, |c, now, fx| c.current_lag_or_ask(tp, now, fx)).flatten()
    }

    /// The partitions revoked that the application's listener has not handled yet.
    pub fn consumer_revoked_unhandled(&self, node: NodeId, k: usize) -> Vec<TopicPartition> {
        self.consumer_engine(node, k).map(|c| c.revoked_unhandled().to_vec()).unwrap_or_default()
    }

    /// The application's `onPartitionsRevoked` returned: the member may rejoin.
    pub fn consumer_revocation_handled(&mut self, node: NodeId, k: usize) {
        self.with_consumer(node, k, |c, now, fx| c.revocation_handled(now, fx));
    }

    /// `KafkaConsumer.close()`: the process ends once every consumer it runs has closed.
    pub fn consumer_close(&mut self, node: NodeId, k: usize) {
        let now = self.now();
        let Some(Machine::Client(client)) = self.slots.get_mut(&node).and_then(|s| s.machine.as_mut()) else {
            return;
        };
        let mut fx = Effects::default();
        client.close_consumer(k, now, &mut fx);
        self.apply(node, now, fx);
    }

    pub fn record_processed(
        &mut self,
        node: NodeId,
        engine: usize,
        partition: ksim_cluster::TopicPartition,
        offset: i64,
    ) {
        self.checker.on_processed(node, engine as u8, &partition, offset);
        self.record(node, EventKind::Processed { partition, offset });
    }

    /// The records the application's `poll` returns, or what it throws: a fatal group error
    /// (FENCED_INSTANCE_ID, INVALID_SESSION_TIMEOUT) or a LogTruncationException.
    pub fn consumer_poll(&mut self, node: NodeId, k: usize) -> Result<Vec<ConsumedRecord>, PollError> {
        if let Some(error) = self.consumer_engine(node, k).and_then(Consumer::fatal_error) {
            return Err(PollError::Fatal(error));
        }
        self.with_consumer(node, k, |c, now, fx| c.poll(now, fx)).unwrap_or(Ok(Vec::new()))
    }

    /// The partitions the node's group consumer owns once its group is stable, `None` while it
    /// is (re)joining: what a rebalance listener's `onPartitionsAssigned` hands an application
    /// at the end of a rebalance.
    pub fn consumer_settled_assignment(&mut self, node: NodeId, k: usize) -> Option<Vec<TopicPartition>> {
        use ksim_cluster::group::member::Phase;
        let c = self.consumer_engine(node, k)?;
        match c.member() {
            Some(m) if m.phase == Phase::Stable => Some(c.assignment()),
            Some(_) => None,
            None => Some(c.assignment()),
        }
    }

    pub fn poll_ready(&mut self, node: NodeId, k: usize) -> Arc<Notify> {
        self.waiters.poll_ready.entry((node, k)).or_insert_with(|| Arc::new(Notify::new())).clone()
    }

    pub fn app_note(&mut self, node: NodeId, text: String) {
        self.record(node, EventKind::App(text));
    }

    /// Record what a Kafka Streams instance did (its tasks, stores, commits).
    pub fn streams_event(&mut self, node: NodeId, event: ksim_cluster::streams::StreamsEvent) {
        if self.finished {
            return;
        }
        self.on_note(node, Note::Streams(Box::new(event)));
    }

    /// After a client's step: answer the commits it finished, and wake its application if
    /// records (or an error its `poll` throws) wait to be polled.
    pub(super) fn wake_application(&mut self, node: NodeId) {
        let Some(Machine::Client(client)) = self.slots.get_mut(&node).and_then(|s| s.machine.as_mut()) else {
            return;
        };
        let mut outcomes = Vec::new();
        let mut ready = Vec::new();
        for k in 0..client.consumer_slots() {
            let Some(c) = client.consumer_engine_mut(k) else { continue };
            outcomes.extend(c.take_commit_outcomes().into_iter().map(|(id, error)| (k, id, error)));
            let answered = c.take_end_offsets_answered();
            if answered || c.buffered() > 0 || c.has_poll_error() || !c.revoked_unhandled().is_empty() {
                ready.push(k);
            }
        }
        for (k, id, error) in outcomes {
            let outcome = if error.is_none() { Ok(()) } else { Err(error.to_string()) };
            match self.waiters.commits.remove(&(node, k, id)) {
                Some(tx) => {
                    let _ = tx.send(outcome);
                }
                None => {
                    self.waiters.finished_commits.insert((node, k, id), outcome);
                }
            }
        }
        for k in ready {
            if let Some(notify) = self.waiters.poll_ready.get(&(node, k)) {
                notify.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: one application's crash must not cancel another's pending deliveries.
    #[test]
    fn a_stopped_client_drops_only_its_own_pending_deliveries() {
        let mut waiters = Waiters::default();
        let (crashed_tx, mut crashed_rx) = oneshot::channel();
        let (survivor_tx, mut survivor_rx) = oneshot::channel();
        waiters.deliveries.insert((NodeId::Client(1), 1), crashed_tx);
        waiters.deliveries.insert((NodeId::Client(2), 2), survivor_tx);
        waiters.application_stopped(NodeId::Client(1));
        assert!(
            matches!(crashed_rx.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "the stopped app's delivery is dropped"
        );
        let tp = TopicPartition::new("t", 0);
        waiters.delivered(NodeId::Client(2), 2, Ok((tp.clone(), 7)));
        assert_eq!(survivor_rx.try_recv().expect("the other app's delivery survives"), Ok((tp, 7)));
    }
}
