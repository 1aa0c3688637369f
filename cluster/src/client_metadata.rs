//! What a client knows about the cluster: which broker leads each partition, and in which epoch.
//!
//! Clients learn this from Metadata requests to any broker and keep it until it is proved stale:
//! an error such as NOT_LEADER_OR_FOLLOWER, a closed connection, or `metadata.max.age.ms`
//! passing. A stale view is why a producer keeps writing to an old leader for a while after a
//! failover, and why a zombie leader can still accept `acks=1` writes.

use crate::config::ReconnectBackoff;
use crate::effects::Effects;
use crate::node::NodeId;
use crate::protocol::{Message, MetadataRequest, MetadataResponse, PartitionMetadata, Request};
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::{BTreeMap, BTreeSet};

/// The client settings metadata handling follows, from the producer's or consumer's config.
#[derive(Clone, Copy, Debug)]
pub struct MetadataSettings {
    pub max_age_ms: u64,
    pub request_timeout_ms: u64,
    pub reconnect_backoff: ReconnectBackoff,
    /// `retry.backoff.ms` / `retry.backoff.max.ms`: the least time between two Metadata requests.
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Blackout {
    until: SimTime,
    failures: u32,
}

#[derive(Clone, Debug)]
pub struct ClientMetadata {
    bootstrap: Vec<BrokerId>,
    topics: BTreeMap<String, Vec<PartitionMetadata>>,
    live_brokers: Vec<BrokerId>,
    /// Topics the client cares about.
    interest: BTreeSet<String>,
    /// The Metadata request in flight, and the broker it went to.
    in_flight: Option<(u64, BrokerId)>,
    /// Brokers whose connection failed, and until when the client leaves them alone. Without
    /// this a client whose request bounces off a dead broker would ask again at once, forever.
    blackouts: BTreeMap<BrokerId, Blackout>,
    backoff: ReconnectBackoff,
    /// `metadata.max.age.ms`: refresh at least this often.
    max_age_ms: u64,
    /// `request.timeout.ms`: how long a Metadata request may go unanswered.
    request_timeout_ms: u64,
    /// The timer that wakes the owner when a blackout ends and a request can go out.
    wake: Timer,
    /// Which broker to ask next (round-robin over what we know).
    next_broker: usize,
    pub refresh_needed: bool,
    last_refresh: SimTime,
    retry_backoff_ms: u64,
    retry_backoff_max_ms: u64,
    /// Responses in a row that left a topic of interest unknown (Kafka's
    /// `equivalentResponseCount`): each doubles the wait before the next request.
    unproductive: u32,
}

impl ClientMetadata {
    /// `wake` is the owner's timer for "try again": a blackout's end sets it.
    pub fn new(bootstrap: Vec<BrokerId>, settings: MetadataSettings, wake: Timer) -> Self {
        ClientMetadata {
            bootstrap,
            topics: BTreeMap::new(),
            live_brokers: Vec::new(),
            interest: BTreeSet::new(),
            in_flight: None,
            blackouts: BTreeMap::new(),
            backoff: settings.reconnect_backoff,
            max_age_ms: settings.max_age_ms,
            request_timeout_ms: settings.request_timeout_ms,
            wake,
            next_broker: 0,
            refresh_needed: true,
            last_refresh: SimTime::ZERO,
            retry_backoff_ms: settings.retry_backoff_ms,
            retry_backoff_max_ms: settings.retry_backoff_max_ms,
            unproductive: 0,
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
        let p = self.topics.get(tp.topic.as_str())?.iter().find(|p| p.partition == tp.partition)?;
        Some((p.leader?, p.leader_epoch))
    }

    pub fn is_in_flight(&self, correlation_id: u64) -> bool {
        self.in_flight.is_some_and(|(id, _)| id == correlation_id)
    }

    /// The Metadata request in flight and the broker it went to.
    pub fn in_flight(&self) -> Option<(u64, BrokerId)> {
        self.in_flight
    }

    /// The connection to `broker` closed (the sender learns of it as a reset). Stay away from it
    /// for a while; a Metadata request that went there is lost, so ask elsewhere.
    pub fn on_connection_closed(&mut self, now: SimTime, broker: BrokerId) {
        let failures = self.blackouts.get(&broker).map_or(0, |b| b.failures).saturating_add(1);
        let exponent = (failures - 1).min(16);
        let wait_ms = (self.backoff.base_ms << exponent).min(self.backoff.max_ms.max(self.backoff.base_ms));
        self.blackouts.insert(broker, Blackout { until: now.plus_ms(wait_ms), failures });
        if self.in_flight.is_some_and(|(_, b)| b == broker) {
            self.in_flight = None;
            self.refresh_needed = true;
        }
    }

    /// Something arrived from `broker`: its connection works again.
    pub fn on_reply_from(&mut self, broker: BrokerId) {
        self.blackouts.remove(&broker);
    }

    /// Whether the connection to `broker` failed and nothing has come back from it since.
    pub fn reconnecting(&self, broker: BrokerId) -> bool {
        self.blackouts.contains_key(&broker)
    }

    /// Until when the client stays away from `broker`, if it does.
    pub fn blackout_until(&self, broker: BrokerId, now: SimTime) -> Option<SimTime> {
        self.blackouts.get(&broker).map(|b| b.until).filter(|until| *until > now)
    }

    /// Put the owner's wake-up timer at `at` (the end of a blackout).
    pub fn wake_at(&self, at: SimTime, fx: &mut Effects) {
        fx.set_timer(self.wake.clone(), at);
    }

    /// A broker to send a request that any broker can answer (Kafka's least-loaded node): the
    /// first of `brokers` not in a blackout, or `Err` with when the first blackout ends.
    pub fn pick(&self, brokers: &[BrokerId], now: SimTime) -> Result<BrokerId, Option<SimTime>> {
        match brokers.iter().find(|b| self.blackout_until(**b, now).is_none()) {
            Some(b) => Ok(*b),
            None => Err(brokers.iter().filter_map(|b| self.blackout_until(*b, now)).min()),
        }
    }

    /// Send a Metadata request if one is needed and none is in flight; `request.timeout.ms`
    /// bounds the wait.
    pub fn maybe_refresh(&mut self, now: SimTime, next_correlation: &mut u64, fx: &mut Effects) {
        if now.ms_since(self.last_refresh) >= self.max_age_ms && self.last_refresh != SimTime::ZERO {
            self.refresh_needed = true;
        }
        if !self.refresh_needed || self.in_flight.is_some() || self.interest.is_empty() {
            return;
        }
        if let Some(allowed) = self.next_allowed_refresh().filter(|at| *at > now) {
            self.wake_at(allowed, fx);
            return;
        }
        let known: Vec<BrokerId> =
            if self.live_brokers.is_empty() { self.bootstrap.clone() } else { self.live_brokers.clone() };
        let candidates: Vec<BrokerId> =
            known.iter().copied().filter(|b| self.blackout_until(*b, now).is_none()).collect();
        if candidates.is_empty() {
            if let Some(at) = known.iter().filter_map(|b| self.blackout_until(*b, now)).min() {
                self.wake_at(at, fx);
            }
            return;
        }
        let broker = candidates[self.next_broker % candidates.len()];
        self.next_broker = self.next_broker.wrapping_add(1);
        let correlation_id = *next_correlation;
        *next_correlation += 1;
        self.in_flight = Some((correlation_id, broker));
        fx.set_timer(Timer::RequestTimeout(correlation_id), now.plus_ms(self.request_timeout_ms));
        let body = Request::Metadata(MetadataRequest { topics: self.interest.iter().cloned().collect() });
        fx.send(NodeId::Broker(broker), Message::Request { correlation_id, body });
    }

    /// The earliest a new Metadata request may go out (Kafka's `Metadata.timeToAllowUpdate`,
    /// KIP-580): `retry.backoff.ms` after the last response, doubled for each response in a row
    /// that made no progress, up to `retry.backoff.max.ms`. Kafka adds ±20% jitter; ksim leaves
    /// it out. Without this, a client asking for a topic that does not exist yet would ask again
    /// every round trip.
    fn next_allowed_refresh(&self) -> Option<SimTime> {
        if self.last_refresh == SimTime::ZERO {
            return None;
        }
        let exponent = self.unproductive.saturating_sub(1).min(16);
        let wait_ms = (self.retry_backoff_ms << exponent).min(self.retry_backoff_max_ms.max(self.retry_backoff_ms));
        Some(self.last_refresh.plus_ms(wait_ms))
    }

    pub fn on_response(&mut self, now: SimTime, response: MetadataResponse) {
        self.in_flight = None;
        self.last_refresh = now;
        self.refresh_needed = false;
        if !response.brokers.is_empty() {
            self.live_brokers = response.brokers;
        }
        let mut unknown = false;
        for topic in response.topics {
            if topic.error.is_none() {
                self.topics.insert(topic.name, topic.partitions);
            } else {
                // Unknown topic: keep asking, a little less often each time.
                self.refresh_needed = true;
                unknown = true;
            }
        }
        self.unproductive = if unknown { self.unproductive.saturating_add(1) } else { 0 };
        // A topic the client took an interest in while the request was in flight was not asked
        // for: ask again (Kafka's `Metadata.updateRequested` stays set for a response to an
        // older request version than the last `requestUpdateForNewTopics`).
        if self.interest.iter().any(|t| !self.topics.contains_key(t)) {
            self.refresh_needed = true;
        }
    }

    /// The Metadata request timed out: ask another broker.
    pub fn on_failure(&mut self) {
        self.in_flight = None;
        self.refresh_needed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::protocol::TopicMetadata;

    fn metadata() -> ClientMetadata {
        let settings = MetadataSettings {
            max_age_ms: 300_000,
            request_timeout_ms: 30_000,
            reconnect_backoff: ReconnectBackoff::default(),
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
        };
        let mut m = ClientMetadata::new(vec![1], settings, Timer::ProducerWakeup);
        m.add_interest("t");
        m
    }

    /// Send what is due at `now`; answer it with the topic unknown. Returns whether a request
    /// went out.
    fn ask_and_hear_unknown(m: &mut ClientMetadata, now_ms: u64) -> bool {
        let mut fx = Effects::default();
        let mut next = 0;
        m.maybe_refresh(SimTime::from_ms(now_ms), &mut next, &mut fx);
        if fx.sends.is_empty() {
            return false;
        }
        let unknown = TopicMetadata { name: "t".into(), error: ErrorCode::UnknownTopicOrPartition, partitions: vec![] };
        m.on_response(SimTime::from_ms(now_ms), MetadataResponse { brokers: vec![1], topics: vec![unknown] });
        true
    }

    /// A topic the client starts sending to while a Metadata request for other topics is in
    /// flight is asked for after the answer (a Connect worker writes its status topic, then its
    /// task's topic, in one instant; a Streams task its changelog and its sink); before, the
    /// answer cleared the need and the new topic was never asked for.
    #[test]
    fn a_topic_added_while_a_request_is_in_flight_is_asked_for_next() {
        let mut m = metadata();
        let mut fx = Effects::default();
        let mut next = 0;
        m.maybe_refresh(SimTime::from_ms(1), &mut next, &mut fx);
        assert_eq!(fx.sends.len(), 1);
        m.add_interest("u");
        let known = TopicMetadata { name: "t".into(), error: ErrorCode::None, partitions: vec![] };
        m.on_response(SimTime::from_ms(2), MetadataResponse { brokers: vec![1], topics: vec![known] });
        let mut fx = Effects::default();
        m.maybe_refresh(SimTime::from_ms(500), &mut next, &mut fx);
        assert_eq!(fx.sends.len(), 1, "the new topic is asked for");
    }

    /// Kafka's `Metadata.timeToAllowUpdate` (KIP-580): a topic that stays unknown is asked for
    /// again after 100, 200, 400, 800, then 1000 ms (no jitter in ksim), not every round trip.
    #[test]
    fn an_unknown_topic_is_asked_for_with_a_growing_backoff() {
        let mut m = metadata();
        assert!(ask_and_hear_unknown(&mut m, 1));
        let mut at = 1;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let mut t = at + 1;
            while !ask_and_hear_unknown(&mut m, t) {
                t += 1;
            }
            waits.push(t - at);
            at = t;
        }
        assert_eq!(waits, [100, 200, 400, 800, 1_000]);
    }
}
