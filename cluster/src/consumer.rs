//! A consumer without a group: it is assigned partitions and keeps its own position in each.
//!
//! The position is the offset of the next record to read. A consumer with no position asks the
//! leader for one with ListOffsets, according to `auto.offset.reset` (the log start for
//! `earliest`, the high watermark for `latest`). It then fetches from its position; the leader
//! returns only records below the high watermark, so a consumer never sees a record that could
//! still be lost in a failover. If its position has fallen out of the log (retention deleted it:
//! OFFSET_OUT_OF_RANGE), the consumer resets again.
//!
//! Records are fetched ahead into a buffer; the application takes them with `poll`, and only then
//! are they reported as consumed.

use crate::client_metadata::ClientMetadata;
use crate::config::{ConsumerConfig, OffsetReset};
use crate::effects::{Effects, Input, StateMachine};
use crate::error::ErrorCode;
use crate::node::NodeId;
use crate::note::Note;
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, VecDeque};

/// A record handed to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub partition: TopicPartition,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
}

#[derive(Clone, Debug, Default)]
struct PartitionState {
    position: Option<i64>,
    /// Waiting for a ListOffsets answer.
    resetting: bool,
    /// Do not fetch before this time (after an error).
    backoff_until: SimTime,
}

#[derive(Clone, Debug)]
enum Outstanding {
    Fetch { broker: BrokerId, partitions: Vec<TopicPartition> },
    ListOffsets { broker: BrokerId, partitions: Vec<TopicPartition> },
}

/// Stop fetching ahead once this many records are buffered.
const MAX_BUFFERED_RECORDS: usize = 1000;

pub struct Consumer {
    config: ConsumerConfig,
    metadata: ClientMetadata,
    assignment: BTreeMap<TopicPartition, PartitionState>,
    /// Topics whose every partition to take as soon as the metadata names them.
    wanted_topics: Vec<String>,
    buffer: VecDeque<ConsumedRecord>,
    outstanding: BTreeMap<u64, Outstanding>,
    next_correlation: u64,
}

impl Consumer {
    pub fn new(config: ConsumerConfig, bootstrap: Vec<BrokerId>) -> Self {
        Consumer {
            config,
            metadata: ClientMetadata::new(bootstrap),
            assignment: BTreeMap::new(),
            wanted_topics: Vec::new(),
            buffer: VecDeque::new(),
            outstanding: BTreeMap::new(),
            next_correlation: 1,
        }
    }

    /// Take these partitions (replacing any previous assignment).
    pub fn assign(&mut self, partitions: Vec<TopicPartition>, now: SimTime, fx: &mut Effects) {
        self.assignment.retain(|tp, _| partitions.contains(tp));
        self.buffer.retain(|r| partitions.contains(&r.partition));
        for tp in partitions {
            self.metadata.add_interest(&tp.topic);
            self.assignment.entry(tp).or_default();
        }
        self.drive(now, fx);
    }

    /// Take every partition of these topics, once the metadata says how many there are.
    pub fn assign_topics(&mut self, topics: &[String], now: SimTime, fx: &mut Effects) {
        for topic in topics {
            self.metadata.add_interest(topic);
            if !self.wanted_topics.contains(topic) {
                self.wanted_topics.push(topic.clone());
            }
        }
        self.drive(now, fx);
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    /// Move the position: the next poll returns records from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64, now: SimTime, fx: &mut Effects) {
        if let Some(state) = self.assignment.get_mut(tp) {
            state.position = Some(offset);
            state.resetting = false;
        }
        self.buffer.retain(|r| &r.partition != tp);
        self.drive(now, fx);
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        // The application's position is past what it has polled, not past what is buffered.
        self.buffer.iter().find(|r| &r.partition == tp).map(|r| r.offset).or(self.assignment.get(tp)?.position)
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Hand up to `max.poll.records` buffered records to the application.
    pub fn poll(&mut self, now: SimTime, fx: &mut Effects) -> Vec<ConsumedRecord> {
        let n = self.buffer.len().min(self.config.max_poll_records);
        let records: Vec<ConsumedRecord> = self.buffer.drain(..n).collect();
        for r in &records {
            fx.note(Note::Consumed { partition: r.partition.clone(), offset: r.offset, key: r.key.clone(), value: r.value.clone() });
        }
        self.drive(now, fx);
        records
    }

    fn next_correlation(&mut self) -> u64 {
        let id = self.next_correlation;
        self.next_correlation += 1;
        id
    }

    fn busy(&self, tp: &TopicPartition) -> bool {
        self.outstanding.values().any(|o| match o {
            Outstanding::Fetch { partitions, .. } | Outstanding::ListOffsets { partitions, .. } => partitions.contains(tp),
        })
    }

    fn broker_busy(&self, broker: BrokerId) -> bool {
        self.outstanding.values().any(|o| matches!(o, Outstanding::Fetch { broker: b, .. } if *b == broker))
    }

    fn drive(&mut self, now: SimTime, fx: &mut Effects) {
        let wanted = std::mem::take(&mut self.wanted_topics);
        for topic in wanted {
            match self.metadata.partitions(&topic) {
                Some(partitions) => {
                    for p in partitions {
                        self.assignment.entry(TopicPartition::new(topic.clone(), p.partition)).or_default();
                    }
                }
                None => self.wanted_topics.push(topic),
            }
        }
        self.metadata.maybe_refresh(now, self.config.metadata_max_age_ms, self.config.request_timeout_ms, &mut self.next_correlation, fx);
        let mut resets: BTreeMap<BrokerId, Vec<(TopicPartition, OffsetSpec, i32)>> = BTreeMap::new();
        let mut fetches: BTreeMap<BrokerId, Vec<FetchPartition>> = BTreeMap::new();
        let mut wakeup: Option<SimTime> = None;
        let buffer_full = self.buffer.len() >= MAX_BUFFERED_RECORDS;
        for (tp, state) in &self.assignment {
            if self.busy(tp) {
                continue;
            }
            if state.backoff_until > now {
                wakeup = Some(wakeup.map_or(state.backoff_until, |w| w.min(state.backoff_until)));
                continue;
            }
            let Some((leader, epoch)) = self.metadata.leader(tp) else {
                self.metadata.refresh_needed = true;
                continue;
            };
            match state.position {
                None => {
                    let spec = match self.config.auto_offset_reset {
                        OffsetReset::Earliest => OffsetSpec::Earliest,
                        OffsetReset::Latest | OffsetReset::None => OffsetSpec::Latest,
                    };
                    resets.entry(leader).or_default().push((tp.clone(), spec, epoch));
                }
                Some(position) if !buffer_full => fetches.entry(leader).or_default().push(FetchPartition {
                    partition: tp.clone(),
                    fetch_offset: position,
                    current_leader_epoch: epoch,
                }),
                Some(_) => {}
            }
        }
        for (broker, partitions) in resets {
            let id = self.next_correlation();
            let names = partitions.iter().map(|(tp, _, _)| tp.clone()).collect();
            self.outstanding.insert(id, Outstanding::ListOffsets { broker, partitions: names });
            for (tp, _, _) in &partitions {
                if let Some(s) = self.assignment.get_mut(tp) {
                    s.resetting = true;
                }
            }
            fx.set_timer(Timer::RequestTimeout(id), now.plus_ms(self.config.request_timeout_ms));
            let body = Request::ListOffsets(ListOffsetsRequest { partitions });
            fx.send(NodeId::Broker(broker), Message::Request { correlation_id: id, body });
        }
        for (broker, partitions) in fetches {
            if self.broker_busy(broker) {
                continue;
            }
            let id = self.next_correlation();
            let names = partitions.iter().map(|p| p.partition.clone()).collect();
            self.outstanding.insert(id, Outstanding::Fetch { broker, partitions: names });
            fx.set_timer(Timer::RequestTimeout(id), now.plus_ms(self.config.request_timeout_ms + self.config.fetch_max_wait_ms));
            let body = Request::Fetch(FetchRequest { replica: None, max_wait_ms: self.config.fetch_max_wait_ms, partitions });
            fx.send(NodeId::Broker(broker), Message::Request { correlation_id: id, body });
        }
        if let Some(at) = wakeup {
            fx.set_timer(Timer::ConsumerWakeup, at);
        }
        self.metadata.maybe_refresh(now, self.config.metadata_max_age_ms, self.config.request_timeout_ms, &mut self.next_correlation, fx);
    }

    fn back_off(&mut self, now: SimTime, tp: &TopicPartition, refresh_metadata: bool) {
        if let Some(state) = self.assignment.get_mut(tp) {
            state.backoff_until = now.plus_ms(self.config.retry_backoff_ms);
            state.resetting = false;
        }
        if refresh_metadata {
            self.metadata.refresh_needed = true;
        }
    }

    fn on_fetch(&mut self, now: SimTime, response: FetchResponse, fx: &mut Effects) {
        for p in response.partitions {
            let tp = p.partition.clone();
            let Some(state) = self.assignment.get_mut(&tp) else { continue };
            let Some(mut position) = state.position else { continue };
            match p.error {
                ErrorCode::None => {
                    for batch in p.batches {
                        for (i, record) in batch.records.into_iter().enumerate() {
                            let offset = batch.base_offset + i as i64;
                            if offset < position {
                                continue;
                            }
                            assert!(offset < p.high_watermark, "{tp}: consumer got offset {offset} at or above the high watermark {}", p.high_watermark);
                            self.buffer.push_back(ConsumedRecord { partition: tp.clone(), offset, key: record.key, value: record.value });
                            position = offset + 1;
                        }
                    }
                    state.position = Some(position);
                }
                ErrorCode::OffsetOutOfRange => {
                    fx.note(Note::OffsetOutOfRange { partition: tp.clone(), position });
                    state.position = None;
                    self.buffer.retain(|r| r.partition != tp);
                }
                ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch | ErrorCode::UnknownTopicOrPartition => {
                    self.back_off(now, &tp, true)
                }
                _ => self.back_off(now, &tp, false),
            }
        }
    }

    fn on_list_offsets(&mut self, now: SimTime, response: ListOffsetsResponse, fx: &mut Effects) {
        for (tp, error, offset, _) in response.partitions {
            let Some(state) = self.assignment.get_mut(&tp) else { continue };
            if !state.resetting {
                continue;
            }
            state.resetting = false;
            if error.is_none() {
                state.position = Some(offset);
                let reason = format!("auto.offset.reset={:?}", self.config.auto_offset_reset).to_lowercase();
                fx.note(Note::PositionReset { partition: tp, offset, reason });
            } else {
                self.back_off(now, &tp, true);
            }
        }
    }

    fn on_request_failed(&mut self, now: SimTime, correlation_id: u64) {
        if self.metadata.is_in_flight(correlation_id) {
            self.metadata.on_failure();
            return;
        }
        let Some(o) = self.outstanding.remove(&correlation_id) else { return };
        let (Outstanding::Fetch { partitions, .. } | Outstanding::ListOffsets { partitions, .. }) = o;
        for tp in partitions {
            self.back_off(now, &tp, true);
        }
    }
}

impl StateMachine for Consumer {
    fn handle(&mut self, now: SimTime, input: Input, _rng: &mut dyn rand_core::RngCore, fx: &mut Effects) {
        match input {
            Input::Start => {}
            Input::Message { message: Message::Response { correlation_id, body }, .. } => {
                fx.cancel_timer(Timer::RequestTimeout(correlation_id));
                match body {
                    Response::Metadata(r) if self.metadata.is_in_flight(correlation_id) => self.metadata.on_response(now, r),
                    Response::Fetch(r) => {
                        if self.outstanding.remove(&correlation_id).is_some() {
                            self.on_fetch(now, r, fx);
                        }
                    }
                    Response::ListOffsets(r) => {
                        if self.outstanding.remove(&correlation_id).is_some() {
                            self.on_list_offsets(now, r, fx);
                        }
                    }
                    _ => {}
                }
            }
            Input::Message { .. } => {}
            Input::Timer(Timer::RequestTimeout(id)) => self.on_request_failed(now, id),
            Input::Timer(_) => {}
            Input::ConnectionClosed { peer } => {
                let ids: Vec<u64> = self
                    .outstanding
                    .iter()
                    .filter(|(_, o)| match o {
                        Outstanding::Fetch { broker, .. } | Outstanding::ListOffsets { broker, .. } => NodeId::Broker(*broker) == peer,
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    fx.cancel_timer(Timer::RequestTimeout(id));
                    self.on_request_failed(now, id);
                }
                self.metadata.on_failure();
            }
        }
        self.drive(now, fx);
    }
}
