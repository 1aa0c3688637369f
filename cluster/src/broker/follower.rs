//! The follower's side of replication: truncation by leader epoch, then fetching.
//!
//! A broker that becomes follower first finds where its log diverges from the new leader's. It
//! asks OffsetsForLeaderEpoch for its latest epoch; the leader answers with the largest epoch it
//! has that is not after that one and where it ends. The follower truncates to the smaller of that
//! end and the end of the same epoch in its own log (KIP-101), and if the leader answered an epoch
//! the follower never had, it cuts back to its own largest earlier epoch and asks again (KIP-279),
//! until both agree. Truncating to the high watermark instead, as Kafka did before KIP-101, can
//! lose committed records or leave replicas that disagree at the same offset.
//!
//! Then it fetches from its log end, one request in flight per leader, appends what it gets, and
//! learns the high watermark and log start offset from the leader's answers.
//!
//! ksim asks with a separate OffsetsForLeaderEpoch round trip, as Kafka did before 2.7. Kafka 2.7+
//! (KIP-595's truncation on fetch, `AbstractFetcherThread.truncateOnFetchResponse`) instead sends
//! its last fetched epoch in the Fetch request and the leader answers with a `divergingEpoch`;
//! the follower truncates with the same `getOffsetTruncationState`, so the truncation points are
//! the same and only the messages on the wire differ.

use super::replica::{FollowerPhase, Role};
use super::{Broker, Outstanding};
use crate::effects::Effects;
use crate::epoch_cache::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};
use crate::error::ErrorCode;
use crate::fetch_session::FetchSessionHandler;
use crate::log::{Log, TruncateReason};
use crate::node::NodeId;
use crate::note::{Note, TxnBatch};
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::{BrokerId, TopicPartition};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub(super) struct Fetcher {
    pub(super) in_flight: Option<u64>,
    pub(super) backoff_until: SimTime,
    /// The fetch session with this leader (`ReplicaFetcherThread`'s `FetchSessionHandler`).
    pub(super) session: FetchSessionHandler,
}

impl Broker {
    /// Send whatever fetches and epoch queries are due, one request in flight per leader.
    pub(super) fn drive_fetchers(&mut self, now: SimTime, fx: &mut Effects) {
        if self.broker_epoch < 0 {
            return;
        }
        // Per leader: the partitions that must first ask where their log diverges (with the
        // epoch to ask about and the current leader epoch), and the ones that fetch.
        type EpochQueries = Vec<(TopicPartition, i32, i32)>;
        let mut by_leader: BTreeMap<BrokerId, (EpochQueries, Vec<FetchPartition>)> = BTreeMap::new();
        // A leader whose fetcher has a request out or is backing off gets nothing now: its lists
        // are not built (with many partitions, building them on every step was most of the cost).
        let busy: std::collections::BTreeSet<BrokerId> = self
            .fetchers
            .iter()
            .filter(|(_, f)| f.in_flight.is_some() || now < f.backoff_until)
            .map(|(leader, _)| *leader)
            .collect();
        for (tp, replica) in self.replicas.iter_mut() {
            let Some((leader, phase)) = replica.follower_of() else { continue };
            let entry = by_leader.entry(leader).or_default();
            let idle = !busy.contains(&leader);
            match phase {
                FollowerPhase::Truncating => match replica.log.latest_epoch() {
                    Some(epoch) if idle => entry.0.push((tp.clone(), replica.leader_epoch, epoch)),
                    Some(_) => {}
                    None => {
                        // Nothing written with any epoch: nothing can have diverged.
                        replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::Fetching };
                        if idle {
                            entry.1.push(FetchPartition {
                                partition: tp.clone(),
                                fetch_offset: replica.log_end_offset(),
                                current_leader_epoch: replica.leader_epoch,
                            });
                        }
                    }
                },
                FollowerPhase::Fetching if !idle => {}
                FollowerPhase::Fetching => entry.1.push(FetchPartition {
                    partition: tp.clone(),
                    fetch_offset: replica.log_end_offset(),
                    current_leader_epoch: replica.leader_epoch,
                }),
                FollowerPhase::AwaitingMetadata => {}
            }
        }
        // A fetcher left with no partition of its leader is shut down, its fetch session with it
        // (`AbstractFetcherManager.shutdownIdleFetcherThreads`): the next one starts afresh.
        // One with a request out keeps it until the answer (Kafka's thread would close the
        // connection, and the answer with it).
        for (leader, fetcher) in self.fetchers.iter_mut() {
            if !by_leader.contains_key(leader) && fetcher.in_flight.is_none() {
                fetcher.session = FetchSessionHandler::default();
            }
        }
        for (leader, (queries, fetches)) in by_leader {
            let fetcher = self.fetchers.entry(leader).or_default();
            if fetcher.in_flight.is_some() || now < fetcher.backoff_until || (queries.is_empty() && fetches.is_empty())
            {
                continue;
            }
            let to = NodeId::Broker(leader);
            let id = if !queries.is_empty() {
                let epochs = queries.iter().map(|(tp, e, _)| (tp.clone(), *e)).collect();
                let body = Request::OffsetsForLeaderEpoch(OffsetsForLeaderEpochRequest {
                    replica_id: self.id,
                    partitions: queries,
                });
                self.request(now, to, Outstanding::EpochQuery { leader, epochs }, body, fx)
            } else {
                let epochs = fetches.iter().map(|p| (p.partition.clone(), p.current_leader_epoch)).collect();
                let sent = self.fetchers.entry(leader).or_default().session.build(fetches);
                let body = Request::Fetch(FetchRequest {
                    replica: Some((self.id, self.broker_epoch)),
                    max_wait_ms: self.config.replica_fetch_wait_max_ms,
                    session: sent.metadata,
                    partitions: sent.partitions,
                    forgotten: sent.forgotten,
                    isolation_level: IsolationLevel::ReadUncommitted,
                });
                self.request(now, to, Outstanding::Fetch { leader, epochs }, body, fx)
            };
            self.fetchers.entry(leader).or_default().in_flight = Some(id);
        }
    }

    pub(super) fn fetcher_failed(&mut self, now: SimTime, leader: BrokerId, fx: &mut Effects) {
        let fetcher = self.fetchers.entry(leader).or_default();
        fetcher.in_flight = None;
        fetcher.backoff_until = now.plus_ms(self.config.replica_fetch_backoff_ms);
        fx.set_timer(Timer::FetchBackoff(leader), fetcher.backoff_until);
    }

    /// The replica is still following `leader` in the epoch the request was sent for.
    pub(super) fn still_following(
        &self,
        tp: &TopicPartition,
        leader: BrokerId,
        epoch: i32,
        phase: FollowerPhase,
    ) -> bool {
        self.replicas.get(tp).is_some_and(|r| r.leader_epoch == epoch && r.follower_of() == Some((leader, &phase)))
    }

    pub(super) fn on_epoch_answer(
        &mut self,
        now: SimTime,
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
        response: OffsetsForLeaderEpochResponse,
        fx: &mut Effects,
    ) {
        self.fetchers.entry(leader).or_default().in_flight = None;
        let mut backoff = false;
        for answer in response.partitions {
            let tp = answer.partition.clone();
            let Some(&epoch) = epochs.get(&tp) else { continue };
            if !self.still_following(&tp, leader, epoch, FollowerPhase::Truncating) {
                continue;
            }
            let replica = self.replicas.get_mut(&tp).expect("still following");
            match answer.error {
                ErrorCode::None => {}
                ErrorCode::FencedLeaderEpoch => {
                    replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::AwaitingMetadata };
                    continue;
                }
                _ => {
                    backoff = true;
                    continue;
                }
            }
            let log_end = replica.log_end_offset();
            // Kafka's `getOffsetTruncationState`.
            let (target, done, reason) = if answer.end_offset == UNDEFINED_OFFSET {
                (replica.high_watermark, true, TruncateReason::ToHighWatermark)
            } else {
                let (my_epoch, my_end) = replica.log.epoch_cache().end_offset_for(answer.leader_epoch, log_end);
                if my_epoch == UNDEFINED_EPOCH {
                    (answer.end_offset.min(log_end), true, TruncateReason::DivergedFromLeader)
                } else if my_epoch != answer.leader_epoch {
                    // KIP-279: we never saw the leader's epoch; cut back to the end of our largest
                    // earlier epoch and ask again about that one.
                    (my_end.min(log_end), false, TruncateReason::DivergedFromLeader)
                } else {
                    (my_end.min(answer.end_offset).min(log_end), true, TruncateReason::DivergedFromLeader)
                }
            };
            self.truncate(&tp, target, reason, fx);
            if done {
                let replica = self.replicas.get_mut(&tp).expect("present");
                replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::Fetching };
            }
        }
        if backoff {
            self.fetcher_failed(now, leader, fx);
        }
    }

    pub(super) fn truncate(&mut self, tp: &TopicPartition, offset: i64, reason: TruncateReason, fx: &mut Effects) {
        let replica = self.replicas.get_mut(tp).expect("caller checked");
        let removed = replica.log.truncate_to(offset);
        if removed > 0 {
            replica.high_watermark = replica.high_watermark.min(replica.log_end_offset());
            replica.rebuild_producer_state();
            fx.note(Note::Truncated { partition: tp.clone(), to_offset: replica.log_end_offset(), removed, reason });
        }
    }

    pub(super) fn on_fetch_answer(
        &mut self,
        now: SimTime,
        leader: BrokerId,
        epochs: BTreeMap<TopicPartition, i32>,
        response: FetchResponse,
        fx: &mut Effects,
    ) {
        let fetcher = self.fetchers.entry(leader).or_default();
        fetcher.in_flight = None;
        fetcher.session.handle_response(response.error, response.session_id);
        if !response.error.is_none() {
            // A session error: no partitions; the next fetch is full, sent at once.
            return;
        }
        let mut backoff = false;
        for answer in response.partitions {
            let tp = answer.partition.clone();
            let Some(&epoch) = epochs.get(&tp) else { continue };
            if !self.still_following(&tp, leader, epoch, FollowerPhase::Fetching) {
                continue;
            }
            let config = self.topic_config(&tp);
            let replica = self.replicas.get_mut(&tp).expect("still following");
            match answer.error {
                ErrorCode::None => {
                    let mut first: Option<(i64, i32)> = None;
                    let mut transactional = Vec::new();
                    for batch in answer.batches {
                        if batch.next_offset() <= replica.log_end_offset() {
                            continue;
                        }
                        // A batch may start past the log end: the leader's cleaner removed what
                        // came between (compaction). One that straddles it never comes.
                        if batch.base_offset < replica.log_end_offset() {
                            break;
                        }
                        first.get_or_insert((batch.base_offset, batch.leader_epoch));
                        transactional.extend(TxnBatch::of(&batch));
                        replica.remember_producer_batch(&batch);
                        replica.log.append_as_follower(batch, &config, now.as_ms());
                    }
                    if let Some((base_offset, leader_epoch)) = first {
                        // The offsets copied, gaps included (the records, without compaction).
                        let count = replica.log_end_offset() - base_offset;
                        fx.note(Note::Appended {
                            partition: tp.clone(),
                            base_offset,
                            count,
                            leader_epoch,
                            as_leader: false,
                            transactional,
                        });
                    }
                    let hw = answer.high_watermark.min(replica.log_end_offset());
                    if hw > replica.high_watermark {
                        replica.high_watermark = hw;
                        replica.log.on_high_watermark(hw);
                        fx.note(Note::HighWatermark { partition: tp.clone(), high_watermark: hw, on_leader: false });
                    }
                    if answer.log_start_offset > replica.log.log_start_offset() {
                        replica.log.advance_log_start_offset(answer.log_start_offset);
                        fx.note(Note::LogStartMoved {
                            partition: tp.clone(),
                            log_start_offset: replica.log.log_start_offset(),
                        });
                    }
                }
                ErrorCode::OffsetOutOfRange => {
                    if replica.log_end_offset() < answer.log_start_offset {
                        // Everything we have is older than the leader keeps: start over at its start.
                        replica.log = Log::new_at(answer.log_start_offset, now.as_ms());
                        replica.high_watermark = answer.log_start_offset;
                        replica.producers.clear();
                        fx.note(Note::LogStartMoved {
                            partition: tp.clone(),
                            log_start_offset: answer.log_start_offset,
                        });
                    } else {
                        replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::Truncating };
                    }
                }
                ErrorCode::FencedLeaderEpoch => {
                    replica.role = Role::Follower { leader: Some(leader), phase: FollowerPhase::AwaitingMetadata };
                }
                _ => backoff = true,
            }
        }
        if backoff {
            self.fetcher_failed(now, leader, fx);
        }
    }
}
