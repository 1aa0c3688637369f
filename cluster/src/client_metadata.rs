//! What a client knows about the cluster: which broker leads each partition, and in which epoch.
//!
//! Clients learn this from Metadata requests to any broker and keep it until it is proved stale:
//! an error such as NOT_LEADER_OR_FOLLOWER, a closed connection, or `metadata.max.age.ms`
//! passing. A stale view is why a producer keeps writing to an old leader for a while after a
//! failover, and why a zombie leader can still accept `acks=1` writes.

use crate::effects::Effects;
use crate::node::NodeId;
use crate::protocol::{Message, MetadataRequest, MetadataResponse, PartitionMetadata, Request};
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub struct ClientMetadata {
    bootstrap: Vec<BrokerId>,
    topics: BTreeMap<String, Vec<PartitionMetadata>>,
    live_brokers: Vec<BrokerId>,
    /// Topics the client cares about.
    interest: BTreeSet<String>,
    in_flight: Option<u64>,
    /// Which broker to ask next (round-robin over what we know).
    next_broker: usize,
    pub refresh_needed: bool,
    last_refresh: SimTime,
}

impl ClientMetadata {
    pub fn new(bootstrap: Vec<BrokerId>) -> Self {
        ClientMetadata {
            bootstrap,
            topics: BTreeMap::new(),
            live_brokers: Vec::new(),
            interest: BTreeSet::new(),
            in_flight: None,
            next_broker: 0,
            refresh_needed: true,
            last_refresh: SimTime::ZERO,
        }
    }

    pub fn add_interest(&mut self, topic: &str) {
        if self.interest.insert(topic.to_string()) && !self.topics.contains_key(topic) {
            self.refresh_needed = true;
        }
    }

    pub fn partitions(&self, topic: &str) -> Option<&[PartitionMetadata]> {
        self.topics.get(topic).map(Vec::as_slice).filter(|p| !p.is_empty())
    }

    /// Brokers to ask: the live ones the last metadata named, or the bootstrap list.
    pub fn known_brokers(&self) -> Vec<BrokerId> {
        if self.live_brokers.is_empty() {
            self.bootstrap.clone()
        } else {
            self.live_brokers.clone()
        }
    }

    pub fn leader(&self, tp: &TopicPartition) -> Option<(BrokerId, i32)> {
        let p = self.topics.get(&tp.topic)?.iter().find(|p| p.partition == tp.partition)?;
        Some((p.leader?, p.leader_epoch))
    }

    pub fn is_in_flight(&self, correlation_id: u64) -> bool {
        self.in_flight == Some(correlation_id)
    }

    /// Send a Metadata request if one is needed and none is in flight; returns its correlation
    /// id. `request_timeout_ms` bounds the wait.
    pub fn maybe_refresh(&mut self, now: SimTime, max_age_ms: u64, request_timeout_ms: u64, next_correlation: &mut u64, fx: &mut Effects) {
        if now.ms_since(self.last_refresh) >= max_age_ms && self.last_refresh != SimTime::ZERO {
            self.refresh_needed = true;
        }
        if !self.refresh_needed || self.in_flight.is_some() || self.interest.is_empty() {
            return;
        }
        let candidates: Vec<BrokerId> = if self.live_brokers.is_empty() { self.bootstrap.clone() } else { self.live_brokers.clone() };
        if candidates.is_empty() {
            return;
        }
        let broker = candidates[self.next_broker % candidates.len()];
        self.next_broker = self.next_broker.wrapping_add(1);
        let correlation_id = *next_correlation;
        *next_correlation += 1;
        self.in_flight = Some(correlation_id);
        fx.set_timer(Timer::RequestTimeout(correlation_id), now.plus_ms(request_timeout_ms));
        let body = Request::Metadata(MetadataRequest { topics: self.interest.iter().cloned().collect() });
        fx.send(NodeId::Broker(broker), Message::Request { correlation_id, body });
    }

    pub fn on_response(&mut self, now: SimTime, response: MetadataResponse) {
        self.in_flight = None;
        self.last_refresh = now;
        self.refresh_needed = false;
        if !response.brokers.is_empty() {
            self.live_brokers = response.brokers;
        }
        for topic in response.topics {
            if topic.error.is_none() {
                self.topics.insert(topic.name, topic.partitions);
            } else {
                // Unknown topic: keep asking.
                self.refresh_needed = true;
            }
        }
    }

    /// The Metadata request failed (timeout or closed connection): ask another broker.
    pub fn on_failure(&mut self) {
        self.in_flight = None;
        self.refresh_needed = true;
    }
}
