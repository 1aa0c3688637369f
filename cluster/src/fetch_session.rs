//! Incremental fetch sessions (KIP-227), both ends.
//!
//! A fetcher (a follower's replica fetcher or a consumer) opens a session with a full fetch:
//! session id 0, epoch 0 (`FetchMetadata.INITIAL`), every partition it wants. The leader keeps the
//! partitions and the fetch offsets in its session cache and answers with a session id. From then
//! on each fetch names the session and the next epoch and carries only the partitions whose fetch
//! offset or leader epoch changed, plus the ones to forget; the leader answers with only the
//! partitions that have something new (records, a moved high watermark or log start, an error).
//! A fetch with nothing new to ask about and nothing new to answer is empty both ways.
//!
//! The leader still reads every partition of the session on each fetch, as Kafka's
//! `IncrementalFetchContext` does: sessions shrink the wire, not the leader's work.
//!
//! Client side: Kafka's `FetchSessionHandler` (clients). Server side: `FetchSession`,
//! `FetchSessionCacheShard` and `FetchManager.newContext` (server, 4.x), `BrokerServer`'s eight
//! cache shards of `max.incremental.fetch.session.cache.slots / 8` each.

use crate::error::ErrorCode;
use crate::node::NodeId;
use crate::protocol::{FetchPartition, FetchRequest, FetchedPartition};
use crate::topic::TopicPartition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `FetchMetadata.INVALID_SESSION_ID`: no session.
pub const NO_SESSION: u32 = 0;
/// `FetchMetadata.INITIAL_EPOCH`: a full fetch that asks for a new session (closing the one it
/// names, if any).
pub const INITIAL_EPOCH: i32 = 0;
/// `FetchMetadata.FINAL_EPOCH`: a full fetch that wants no session (closing the one it names).
pub const FINAL_EPOCH: i32 = -1;
/// `BrokerServer.NumFetchSessionCacheShards`.
pub const CACHE_SHARDS: u32 = 8;
/// `KafkaBroker.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`: a session unused this long may be
/// evicted by any new one, and one younger than this is safe from size-based eviction.
pub const EVICTION_MS: u64 = 120_000;
/// Session ids of shard `k` lie in `[max(1, k * range), (k + 1) * range)`.
const SESSION_ID_RANGE: u32 = i32::MAX as u32 / CACHE_SHARDS;

/// The session a fetch names (`FetchMetadata`): its id and epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchMetadata {
    pub session_id: u32,
    pub epoch: i32,
}

impl FetchMetadata {
    /// A full fetch that opens a new session.
    pub const INITIAL: FetchMetadata = FetchMetadata { session_id: NO_SESSION, epoch: INITIAL_EPOCH };
    /// A full fetch outside any session (`FetchMetadata.LEGACY`): what ksim's fetches were before
    /// sessions, and what a client sends that keeps none.
    pub const SESSIONLESS: FetchMetadata = FetchMetadata { session_id: NO_SESSION, epoch: FINAL_EPOCH };

    /// Whether the fetch lists every partition it wants (epoch 0 or -1).
    pub fn is_full(self) -> bool {
        self.epoch == INITIAL_EPOCH || self.epoch == FINAL_EPOCH
    }

    pub fn is_sessionless(&self) -> bool {
        *self == FetchMetadata::SESSIONLESS
    }

    /// `FetchMetadata.nextEpoch`: epochs count up from 1 and wrap past `i32::MAX` back to 1.
    fn next_epoch(epoch: i32) -> i32 {
        if epoch < 0 || epoch == i32::MAX {
            1
        } else {
            epoch + 1
        }
    }
}

impl Default for FetchMetadata {
    fn default() -> Self {
        FetchMetadata::SESSIONLESS
    }
}

// ---- the fetcher's side ------------------------------------------------------------------------

/// One fetcher's session with one leader (Kafka's `FetchSessionHandler`).
#[derive(Clone, Debug, Default)]
pub struct FetchSessionHandler {
    /// What the next request names: `INITIAL` until the leader grants a session.
    next: Option<FetchMetadata>,
    /// The partitions the session holds, as last sent: fetch offset and current leader epoch,
    /// and the build that last wanted them.
    partitions: BTreeMap<TopicPartition, (i64, i32, u64)>,
    generation: u64,
}

/// What goes on the wire for one fetch.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionFetch {
    pub metadata: FetchMetadata,
    /// Every partition of a full fetch; the added and changed ones of an incremental fetch.
    pub partitions: Vec<FetchPartition>,
    /// Partitions an incremental fetch removes from the session.
    pub forgotten: Vec<TopicPartition>,
}

impl FetchSessionHandler {
    fn next(&self) -> FetchMetadata {
        self.next.unwrap_or(FetchMetadata::INITIAL)
    }

    /// `FetchSessionHandler.Builder.build`: the fetch for `wanted`, every partition this fetcher
    /// wants from the leader now.
    pub fn build(&mut self, wanted: Vec<FetchPartition>) -> SessionFetch {
        let metadata = self.next();
        // Each build marks the partitions it wants with a new generation: those left with an
        // older one are forgotten. (No copy of the whole session per fetch.)
        self.generation += 1;
        let generation = self.generation;
        if metadata.is_full() {
            self.partitions = wanted
                .iter()
                .map(|p| (p.partition.clone(), (p.fetch_offset, p.current_leader_epoch, generation)))
                .collect();
            return SessionFetch { metadata, partitions: wanted, forgotten: Vec::new() };
        }
        let mut partitions = Vec::new();
        for p in wanted {
            let now = (p.fetch_offset, p.current_leader_epoch, generation);
            match self.partitions.get_mut(&p.partition) {
                Some(sent) => {
                    let changed = (sent.0, sent.1) != (now.0, now.1);
                    *sent = now;
                    if changed {
                        partitions.push(p);
                    }
                }
                None => {
                    self.partitions.insert(p.partition.clone(), now);
                    partitions.push(p);
                }
            }
        }
        let forgotten: Vec<TopicPartition> =
            self.partitions.iter().filter(|(_, sent)| sent.2 != generation).map(|(tp, _)| tp.clone()).collect();
        self.partitions.retain(|_, sent| sent.2 == generation);
        SessionFetch { metadata, partitions, forgotten }
    }

    /// `FetchSessionHandler.handleResponse`: follow the leader's answer. A session error sends the
    /// next fetch full: FETCH_SESSION_ID_NOT_FOUND opens a new session, any other error also
    /// closes the one it names.
    pub fn handle_response(&mut self, error: ErrorCode, session_id: u32) {
        let sent = self.next();
        self.next = Some(if error == ErrorCode::FetchSessionIdNotFound {
            FetchMetadata::INITIAL
        } else if !error.is_none() {
            // `nextCloseExisting`: a full fetch that closes the session and opens none; the
            // sessionless answer then sends the fetcher to `INITIAL`.
            FetchMetadata { session_id: sent.session_id, epoch: FINAL_EPOCH }
        } else if session_id == NO_SESSION {
            // The leader kept no session (its cache is full), or closed one that emptied: the
            // next fetch is full and asks for a new one.
            FetchMetadata::INITIAL
        } else if sent.is_full() {
            FetchMetadata { session_id, epoch: 1 }
        } else {
            FetchMetadata { session_id: sent.session_id, epoch: FetchMetadata::next_epoch(sent.epoch) }
        });
    }

    /// `FetchSessionHandler.handleError`: the request failed (a timeout, a lost connection). The
    /// next fetch is full, closing the old session and opening a new one
    /// (`nextCloseExistingAttemptNew`).
    pub fn handle_error(&mut self) {
        let sent = self.next();
        self.next = Some(FetchMetadata { session_id: sent.session_id, epoch: INITIAL_EPOCH });
    }

    /// `notifyClose`, as a closing consumer does (`AbstractFetch.prepareCloseFetchSessionRequests`):
    /// the metadata of a fetch with no partitions that closes the session, if there is one.
    pub fn close(&mut self) -> Option<FetchMetadata> {
        let sent = self.next();
        if sent.session_id == NO_SESSION {
            return None;
        }
        self.partitions.clear();
        self.next = Some(FetchMetadata::INITIAL);
        Some(FetchMetadata { session_id: sent.session_id, epoch: FINAL_EPOCH })
    }
}

// ---- the leader's side -------------------------------------------------------------------------

/// What the leader last told the session about a partition (`CachedPartition`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CachedPartition {
    fetch_offset: i64,
    current_leader_epoch: i32,
    /// -1 until answered, and after an error, so the next answer always goes out.
    high_watermark: i64,
    log_start_offset: i64,
}

/// One fetch session, as the leader keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchSession {
    id: u32,
    /// Opened by a follower: evicts consumers' sessions (`FetchSession.privileged`).
    privileged: bool,
    /// The fetcher that opened it (for the trace).
    owner: NodeId,
    partitions: BTreeMap<TopicPartition, CachedPartition>,
    created_ms: u64,
    last_used_ms: u64,
    /// The epoch the next request must name.
    epoch: i32,
    /// Whether a newcomer may evict it for its size: decided when the session was last used, as
    /// `FetchSessionCacheShard.touch` files it (`evictableByAll` once older than the eviction
    /// time; `evictableByPrivileged` a consumer's session always, a follower's once old).
    by_all: bool,
    by_privileged: bool,
}

impl FetchSession {
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The fetcher that opened it.
    pub fn owner(&self) -> NodeId {
        self.owner
    }

    /// `EvictableKey` (privileged, size, id): the smallest is evicted first.
    fn evictable_key(&self) -> (bool, usize, u32) {
        (self.privileged, self.partitions.len(), self.id)
    }

    /// `FetchSessionCacheShard.touch`.
    fn touch(&mut self, now_ms: u64) {
        self.last_used_ms = now_ms;
        let old = now_ms.saturating_sub(self.created_ms) > EVICTION_MS;
        self.by_all = old;
        self.by_privileged = !self.privileged || old;
    }

    /// Keep the partitions with news, and remember what they told
    /// (`IncrementalFetchContext.updateAndGenerateResponseData`).
    fn answer_incremental(&mut self, answers: Vec<FetchedPartition>) -> Vec<FetchedPartition> {
        let mut kept = Vec::new();
        for a in answers {
            let Some(c) = self.partitions.get_mut(&a.partition) else { continue };
            if c.must_respond(&a) {
                c.remember(&a);
                kept.push(a);
            }
        }
        kept
    }
}

#[derive(Clone, Debug, Default)]
struct Shard {
    sessions: BTreeMap<u32, FetchSession>,
    next_id: u32,
}

/// Who sent a fetch: the node, and whether it is a follower (whose sessions are privileged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fetcher {
    pub node: NodeId,
    pub privileged: bool,
}

/// How the leader reads one fetch (`FetchContext`).
#[derive(Clone, Debug, PartialEq)]
pub enum FetchContext {
    /// The session is unknown or the epoch wrong: answered at once with the error, no partitions.
    SessionError(ErrorCode),
    /// A full fetch that wants no session (epoch -1).
    Sessionless,
    /// A full fetch: the answer holds every partition, and opens a session in cache shard
    /// `shard` if it has room.
    Full { shard: usize },
    /// An incremental fetch in session `id`: the answer holds only partitions with news.
    Incremental { id: u32, epoch: i32 },
    /// An incremental fetch that waited in purgatory while its session was evicted. Kafka's
    /// context holds the session itself, so the answer goes out as if nothing happened; the
    /// fetcher's next fetch finds the session gone.
    Evicted(Box<FetchSession>),
}

/// A broker's fetch session cache (`FetchSessionCache` over `FetchSessionCacheShard`s). Process
/// memory: a restarted broker knows no session.
#[derive(Clone, Debug)]
pub struct FetchSessionCache {
    shards: Vec<Shard>,
    slots_per_shard: usize,
    /// Each full fetch takes the next shard in turn (`FetchSessionCache.getNextCacheShard`,
    /// KAFKA-9401, 3.8+).
    next_shard: usize,
    evictions: u64,
}

/// What a session change means for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionChange {
    /// The session, as it was: a fetch of it waiting in purgatory is still answered from it.
    Evicted(Box<FetchSession>),
    /// The cache was full and nothing could be evicted: the fetcher stays sessionless.
    NotCreated,
}

impl FetchSessionCache {
    /// A cache of `max.incremental.fetch.session.cache.slots` sessions, split over the shards.
    pub fn new(slots: u32) -> Self {
        FetchSessionCache {
            shards: (0..CACHE_SHARDS).map(|_| Shard::default()).collect(),
            slots_per_shard: (slots / CACHE_SHARDS) as usize,
            next_shard: 0,
            evictions: 0,
        }
    }

    fn shard_of(id: u32) -> usize {
        (id / SESSION_ID_RANGE).min(CACHE_SHARDS - 1) as usize
    }

    fn session_mut(&mut self, id: u32) -> Option<&mut FetchSession> {
        self.shards[Self::shard_of(id)].sessions.get_mut(&id)
    }

    /// How many sessions the cache holds.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.sessions.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// `FetchManager.newContext`: read the request's session metadata, update the session it
    /// names, and give back the partitions the fetch covers: the request's own for a full fetch,
    /// every partition of the session (with the fetch offsets it last sent) for an incremental one.
    pub fn new_context(&mut self, request: &FetchRequest, now_ms: u64) -> (FetchContext, Vec<FetchPartition>) {
        let meta = request.session;
        if meta.is_full() {
            if meta.session_id != NO_SESSION {
                self.remove(meta.session_id);
            }
            let context = if meta.epoch == FINAL_EPOCH {
                FetchContext::Sessionless
            } else {
                let shard = self.next_shard;
                self.next_shard = (self.next_shard + 1) % self.shards.len();
                FetchContext::Full { shard }
            };
            return (context, request.partitions.clone());
        }
        let Some(session) = self.session_mut(meta.session_id) else {
            return (FetchContext::SessionError(ErrorCode::FetchSessionIdNotFound), Vec::new());
        };
        if session.epoch != meta.epoch {
            return (FetchContext::SessionError(ErrorCode::InvalidFetchSessionEpoch), Vec::new());
        }
        for p in &request.partitions {
            let cached = session.partitions.entry(p.partition.clone()).or_insert(CachedPartition {
                fetch_offset: p.fetch_offset,
                current_leader_epoch: p.current_leader_epoch,
                high_watermark: -1,
                log_start_offset: -1,
            });
            cached.fetch_offset = p.fetch_offset;
            cached.current_leader_epoch = p.current_leader_epoch;
        }
        for tp in &request.forgotten {
            session.partitions.remove(tp);
        }
        if session.partitions.is_empty() {
            // `FetchManager.newContext`: a session left with nothing is closed, and the fetch
            // answered without one.
            self.remove(meta.session_id);
            return (FetchContext::Sessionless, Vec::new());
        }
        session.epoch = FetchMetadata::next_epoch(session.epoch);
        session.touch(now_ms);
        let partitions = session
            .partitions
            .iter()
            .map(|(tp, c)| FetchPartition {
                partition: tp.clone(),
                fetch_offset: c.fetch_offset,
                current_leader_epoch: c.current_leader_epoch,
            })
            .collect();
        (FetchContext::Incremental { id: meta.session_id, epoch: session.epoch }, partitions)
    }

    /// `FetchContext.updateAndGenerateResponseData`: the answer's session id and the partitions it
    /// carries. A full fetch may open a session here; an incremental one keeps only the
    /// partitions with news and remembers what it told.
    pub fn respond(
        &mut self,
        context: &FetchContext,
        fetcher: Fetcher,
        covered: &[FetchPartition],
        answers: Vec<FetchedPartition>,
        now_ms: u64,
        changes: &mut Vec<SessionChange>,
    ) -> Result<(u32, Vec<FetchedPartition>), ErrorCode> {
        match context {
            FetchContext::SessionError(error) => Err(*error),
            FetchContext::Sessionless => Ok((NO_SESSION, answers)),
            FetchContext::Full { shard } => {
                let mut cached: BTreeMap<TopicPartition, CachedPartition> = covered
                    .iter()
                    .map(|p| {
                        let c = CachedPartition {
                            fetch_offset: p.fetch_offset,
                            current_leader_epoch: p.current_leader_epoch,
                            high_watermark: -1,
                            log_start_offset: -1,
                        };
                        (p.partition.clone(), c)
                    })
                    .collect();
                for a in &answers {
                    if let Some(c) = cached.get_mut(&a.partition) {
                        c.remember(a);
                    }
                }
                let id = self.maybe_create(*shard, fetcher.privileged, fetcher.node, cached, now_ms, changes);
                Ok((id, answers))
            }
            FetchContext::Incremental { id, epoch } => {
                let Some(session) = self.session_mut(*id) else {
                    return Err(ErrorCode::FetchSessionIdNotFound);
                };
                // Another request of the session came in while this one waited.
                if session.epoch != *epoch {
                    return Err(ErrorCode::InvalidFetchSessionEpoch);
                }
                Ok((*id, session.answer_incremental(answers)))
            }
            FetchContext::Evicted(session) => {
                let mut session = session.as_ref().clone();
                Ok((session.id, session.answer_incremental(answers)))
            }
        }
    }

    /// `FetchSessionCacheShard.maybeCreateSession`: a session if the shard has room or can evict.
    fn maybe_create(
        &mut self,
        k: usize,
        privileged: bool,
        owner: NodeId,
        partitions: BTreeMap<TopicPartition, CachedPartition>,
        now_ms: u64,
        changes: &mut Vec<SessionChange>,
    ) -> u32 {
        let size = partitions.len();
        let slots = self.slots_per_shard;
        let shard = &mut self.shards[k];
        if shard.sessions.len() >= slots {
            match Self::evictable(shard, privileged, size, now_ms) {
                Some(victim) => {
                    let evicted = shard.sessions.remove(&victim).expect("chosen from the shard");
                    self.evictions += 1;
                    changes.push(SessionChange::Evicted(Box::new(evicted)));
                }
                None => {
                    changes.push(SessionChange::NotCreated);
                    return NO_SESSION;
                }
            }
        }
        let shard = &mut self.shards[k];
        let base = (k as u32 * SESSION_ID_RANGE).max(1);
        let id = loop {
            let id = base + shard.next_id % (SESSION_ID_RANGE - 1);
            shard.next_id = shard.next_id.wrapping_add(1);
            if !shard.sessions.contains_key(&id) {
                break id;
            }
        };
        shard.sessions.insert(
            id,
            FetchSession {
                id,
                privileged,
                owner,
                partitions,
                created_ms: now_ms,
                last_used_ms: now_ms,
                epoch: 1,
                by_all: false,
                by_privileged: !privileged,
            },
        );
        id
    }

    /// `FetchSessionCacheShard.tryEvict`: the least recently used session if it is stale;
    /// otherwise the least valuable evictable one, if the new session is worth more.
    fn evictable(shard: &Shard, privileged: bool, size: usize, now_ms: u64) -> Option<u32> {
        let lru = shard.sessions.values().min_by_key(|s| (s.last_used_ms, s.id))?;
        if now_ms.saturating_sub(lru.last_used_ms) > EVICTION_MS {
            return Some(lru.id);
        }
        // A privileged newcomer may evict any consumer's session and a follower's that was old
        // when last used; an unprivileged one only sessions that were old when last used.
        let candidate = shard
            .sessions
            .values()
            .filter(|s| if privileged { s.by_privileged } else { s.by_all })
            .min_by_key(|s| s.evictable_key())?;
        ((privileged, size, 0) >= candidate.evictable_key()).then_some(candidate.id)
    }

    fn remove(&mut self, id: u32) {
        self.shards[Self::shard_of(id)].sessions.remove(&id);
    }
}

impl CachedPartition {
    /// `CachedPartition.maybeUpdateResponseData`'s test: records, a moved high watermark or log
    /// start, or an error. (Kafka caches no last stable offset: a read_committed fetcher learns a
    /// new one with the high watermark or records that come with it.)
    fn must_respond(&self, a: &FetchedPartition) -> bool {
        !a.batches.is_empty()
            || a.high_watermark != self.high_watermark
            || a.log_start_offset != self.log_start_offset
            || !a.error.is_none()
    }

    fn remember(&mut self, a: &FetchedPartition) {
        // After an error the cached high watermark is -1, so the next answer goes out.
        self.high_watermark = if a.error.is_none() { a.high_watermark } else { -1 };
        self.log_start_offset = a.log_start_offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t".to_string(), p)
    }

    fn want(p: i32, offset: i64) -> FetchPartition {
        FetchPartition { partition: tp(p), fetch_offset: offset, current_leader_epoch: 0 }
    }

    fn request(f: &SessionFetch) -> FetchRequest {
        FetchRequest {
            replica: None,
            max_wait_ms: 500,
            session: f.metadata,
            partitions: f.partitions.clone(),
            forgotten: f.forgotten.clone(),
            isolation_level: Default::default(),
        }
    }

    fn answer(p: i32, hw: i64) -> FetchedPartition {
        FetchedPartition {
            partition: tp(p),
            error: ErrorCode::None,
            high_watermark: hw,
            log_start_offset: 0,
            batches: Vec::new(),
            last_stable_offset: None,
            aborted_transactions: Vec::new(),
        }
    }

    /// One round trip: the fetcher builds, the leader answers every covered partition with `hw`.
    fn round(
        client: &mut FetchSessionHandler,
        cache: &mut FetchSessionCache,
        wanted: Vec<FetchPartition>,
        hw: impl Fn(i32) -> i64,
        now: u64,
    ) -> (SessionFetch, Result<(u32, Vec<FetchedPartition>), ErrorCode>) {
        let sent = client.build(wanted);
        let (context, covered) = cache.new_context(&request(&sent), now);
        let answers = covered.iter().map(|p| answer(p.partition.partition, hw(p.partition.partition))).collect();
        let result = cache.respond(
            &context,
            Fetcher { node: NodeId::Client(0), privileged: false },
            &covered,
            answers,
            now,
            &mut Vec::new(),
        );
        match &result {
            Ok((id, _)) => client.handle_response(ErrorCode::None, *id),
            Err(e) => client.handle_response(*e, NO_SESSION),
        }
        (sent, result)
    }

    #[test]
    fn a_session_sends_only_changed_partitions_and_answers_only_news() {
        let mut client = FetchSessionHandler::default();
        let mut cache = FetchSessionCache::new(1000);
        let (sent, got) = round(&mut client, &mut cache, vec![want(0, 0), want(1, 0)], |_| 5, 0);
        assert_eq!(sent.metadata, FetchMetadata::INITIAL);
        let (id, parts) = got.unwrap();
        assert_ne!(id, NO_SESSION);
        assert_eq!(parts.len(), 2, "a full answer holds every partition");

        // Partition 0 moved on, partition 1 did not: only 0 goes out, and nothing new comes back
        // but partition 1's moved high watermark.
        let (sent, got) = round(&mut client, &mut cache, vec![want(0, 5), want(1, 0)], |p| 5 + p as i64, 1);
        assert_eq!(sent.metadata, FetchMetadata { session_id: id, epoch: 1 });
        assert_eq!(sent.partitions, vec![want(0, 5)]);
        let (_, parts) = got.unwrap();
        assert_eq!(parts.iter().map(|a| a.partition.partition).collect::<Vec<_>>(), vec![1]);

        // Nothing changed anywhere: an empty fetch and an empty answer.
        let (sent, got) = round(&mut client, &mut cache, vec![want(0, 5), want(1, 0)], |p| 5 + p as i64, 2);
        assert_eq!(sent.metadata.epoch, 2);
        assert!(sent.partitions.is_empty() && sent.forgotten.is_empty());
        assert!(got.unwrap().1.is_empty());

        // Dropping partition 1 forgets it.
        let (sent, _) = round(&mut client, &mut cache, vec![want(0, 5)], |_| 5, 3);
        assert_eq!(sent.forgotten, vec![tp(1)]);
    }

    #[test]
    fn a_wrong_epoch_or_unknown_session_sends_the_fetcher_back_to_a_full_fetch() {
        let mut client = FetchSessionHandler::default();
        let mut cache = FetchSessionCache::new(1000);
        let (_, got) = round(&mut client, &mut cache, vec![want(0, 0)], |_| 0, 0);
        let id = got.unwrap().0;

        // The request is lost: the fetcher closes the session and opens a new one.
        client.build(vec![want(0, 0)]);
        client.handle_error();
        let (sent, got) = round(&mut client, &mut cache, vec![want(0, 0)], |_| 0, 1);
        assert_eq!(sent.metadata, FetchMetadata { session_id: id, epoch: INITIAL_EPOCH });
        let new_id = got.unwrap().0;
        assert_ne!(new_id, id);
        assert_eq!(cache.len(), 1, "the old session was closed");

        // A broker that restarted knows no session.
        let mut restarted = FetchSessionCache::new(1000);
        let (sent, got) = round(&mut client, &mut restarted, vec![want(0, 0)], |_| 0, 2);
        assert!(!sent.metadata.is_full());
        assert_eq!(got.unwrap_err(), ErrorCode::FetchSessionIdNotFound);
        let (sent, _) = round(&mut client, &mut restarted, vec![want(0, 0)], |_| 0, 3);
        assert_eq!(sent.metadata, FetchMetadata::INITIAL);

        // An epoch the leader does not expect.
        let mut bad = request(&client.build(vec![want(0, 0)]));
        bad.session.epoch += 5;
        assert_eq!(restarted.new_context(&bad, 4).0, FetchContext::SessionError(ErrorCode::InvalidFetchSessionEpoch));
    }

    #[test]
    fn closing_or_emptying_a_session_frees_its_slot_and_the_fetcher_starts_over() {
        let mut client = FetchSessionHandler::default();
        let mut cache = FetchSessionCache::new(1000);
        let (_, got) = round(&mut client, &mut cache, vec![want(0, 0)], |_| 0, 0);
        let id = got.unwrap().0;

        // Forgetting the last partition empties the session: the leader closes it and answers
        // without one; the fetcher's next fetch is full again.
        let (sent, got) = round(&mut client, &mut cache, Vec::new(), |_| 0, 1);
        assert_eq!(sent.forgotten, vec![tp(0)]);
        assert_eq!(got.unwrap().0, NO_SESSION);
        assert!(cache.is_empty());
        let (sent, got) = round(&mut client, &mut cache, vec![want(0, 0)], |_| 0, 2);
        assert_eq!(sent.metadata, FetchMetadata::INITIAL);
        let id2 = got.unwrap().0;
        assert_ne!(id2, id);

        // A closing consumer sends the final epoch and no partitions: the slot is free at once.
        let close = client.close().expect("a session to close");
        assert_eq!(close, FetchMetadata { session_id: id2, epoch: FINAL_EPOCH });
        let request = FetchRequest {
            replica: None,
            max_wait_ms: 500,
            session: close,
            partitions: Vec::new(),
            forgotten: Vec::new(),
            isolation_level: Default::default(),
        };
        let (context, covered) = cache.new_context(&request, 3);
        assert_eq!((context, covered.len()), (FetchContext::Sessionless, 0));
        assert!(cache.is_empty());
        assert_eq!(client.close(), None, "nothing left to close");
    }

    #[test]
    fn a_session_error_closes_the_session_with_a_sessionless_fetch_first() {
        let mut client = FetchSessionHandler::default();
        let mut cache = FetchSessionCache::new(1000);
        let (_, got) = round(&mut client, &mut cache, vec![want(0, 0)], |_| 0, 0);
        let id = got.unwrap().0;
        client.build(vec![want(0, 0)]);
        client.handle_response(ErrorCode::InvalidFetchSessionEpoch, NO_SESSION);
        // `nextCloseExisting`: full, closing the session, asking for none; then `INITIAL`.
        let (sent, got) = round(&mut client, &mut cache, vec![want(0, 0)], |_| 0, 1);
        assert_eq!(sent.metadata, FetchMetadata { session_id: id, epoch: FINAL_EPOCH });
        assert_eq!(got.unwrap().0, NO_SESSION);
        let (sent, _) = round(&mut client, &mut cache, vec![want(0, 0)], |_| 0, 2);
        assert_eq!(sent.metadata, FetchMetadata::INITIAL);
    }

    #[test]
    fn a_fetch_parked_when_its_session_is_evicted_is_answered_from_the_session_as_it_was() {
        let mut cache = FetchSessionCache::new(8);
        let mut changes = Vec::new();
        let consumer = Fetcher { node: NodeId::Client(0), privileged: false };
        let follower = Fetcher { node: NodeId::Broker(2), privileged: true };
        let full = |partitions| FetchRequest {
            replica: None,
            max_wait_ms: 500,
            session: FetchMetadata::INITIAL,
            partitions,
            forgotten: Vec::new(),
            isolation_level: Default::default(),
        };
        // Fill all eight shards with consumers' sessions of partitions 0 and 1.
        let mut ids = Vec::new();
        for now in 0..8 {
            let (context, covered) = cache.new_context(&full(vec![want(0, 0), want(1, 0)]), now);
            let answers = vec![answer(0, 3), answer(1, 3)];
            ids.push(cache.respond(&context, consumer, &covered, answers, now, &mut changes).unwrap().0);
        }
        // The first consumer's incremental fetch waits in purgatory...
        let waiting = FetchRequest { session: FetchMetadata { session_id: ids[0], epoch: 1 }, ..full(Vec::new()) };
        let (parked, covered) = cache.new_context(&waiting, 10);
        assert_eq!(covered.len(), 2);
        // ...while a follower's new session evicts it (the same shard comes round again).
        let (context, followed) = cache.new_context(&full(vec![want(0, 0)]), 11);
        cache.respond(&context, follower, &followed, vec![answer(0, 3)], 11, &mut changes).unwrap();
        let Some(SessionChange::Evicted(session)) =
            changes.iter().find(|c| matches!(c, SessionChange::Evicted(_))).cloned()
        else {
            panic!("no eviction: {changes:?}")
        };
        assert_eq!(session.id(), ids[0]);
        assert!(matches!(parked, FetchContext::Incremental { id, .. } if id == ids[0]));
        // The parked fetch is answered as if nothing happened: partition 1's high watermark moved.
        let (answered_id, parts) = cache
            .respond(
                &FetchContext::Evicted(session),
                consumer,
                &covered,
                vec![answer(0, 3), answer(1, 4)],
                12,
                &mut changes,
            )
            .unwrap();
        assert_eq!(answered_id, ids[0]);
        assert_eq!(parts.iter().map(|a| a.partition.partition).collect::<Vec<_>>(), vec![1]);
        // The next fetch of that session finds it gone.
        let next = FetchRequest { session: FetchMetadata { session_id: ids[0], epoch: 2 }, ..full(Vec::new()) };
        assert_eq!(cache.new_context(&next, 13).0, FetchContext::SessionError(ErrorCode::FetchSessionIdNotFound));
    }

    #[test]
    fn a_full_cache_refuses_young_sessions_and_evicts_stale_ones() {
        // Eight slots: one per shard. Each full fetch takes the next shard.
        let mut cache = FetchSessionCache::new(8);
        let mut changes = Vec::new();
        let mut open = |privileged: bool, now: u64, changes: &mut Vec<SessionChange>| {
            let full = FetchRequest {
                replica: None,
                max_wait_ms: 0,
                session: FetchMetadata::INITIAL,
                partitions: vec![want(0, 0)],
                forgotten: Vec::new(),
                isolation_level: Default::default(),
            };
            let (context, covered) = cache.new_context(&full, now);
            let fetcher = Fetcher { node: NodeId::Client(0), privileged };
            cache.respond(&context, fetcher, &covered, vec![answer(0, 0)], now, changes).unwrap().0
        };
        for now in 0..8 {
            open(false, now, &mut changes);
        }
        assert_eq!(open(false, 10, &mut changes), NO_SESSION, "every session is young and as large: no room");
        assert_eq!(changes.last(), Some(&SessionChange::NotCreated));

        // A follower's session evicts a consumer's at once.
        assert_ne!(open(true, 11, &mut changes), NO_SESSION);
        assert!(matches!(changes.last(), Some(SessionChange::Evicted(_))));

        // Past the eviction time every unused session is stale.
        assert_ne!(open(false, 200_000, &mut changes), NO_SESSION);
        assert!(matches!(changes.last(), Some(SessionChange::Evicted(_))));
        assert_eq!(cache.evictions(), 2);
        assert_eq!(cache.len(), 8);
    }
}
