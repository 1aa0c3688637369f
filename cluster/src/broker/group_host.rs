//! Hosting the group coordinator.
//!
//! A consumer group's coordinator is the leader of the `__consumer_offsets` partition
//! `abs(javaStringHashCode(group.id)) % offsets.topic.num.partitions`. Kafka creates that topic the
//! first time a client asks FindCoordinator. When this broker becomes leader of one of its
//! partitions it loads the groups stored there (their last generation and committed offsets) and
//! coordinates them; when it stops leading it unloads them. The coordinator itself
//! ([`crate::group::coordinator`]) is a state machine of its own; the broker routes group requests
//! to it and appends what it wants to persist to `__consumer_offsets`, answering only once the
//! write is committed (see [`super::purgatory`]).

use super::purgatory::{DelayedWrite, WriteCompletion};
use super::Broker;
use crate::effects::Effects;
use crate::error::ErrorCode;
use crate::group::coordinator::{Append, OFFSETS_TOPIC};
use crate::node::NodeId;
use crate::note::Note;
use crate::partitioner::group_coordinator_partition;
use crate::protocol::*;
use crate::time::SimTime;
use crate::timer::Timer;
use crate::topic::TopicPartition;

/// `offsets.commit.timeout.ms`.
const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

impl Broker {
    /// The state and generation of a group this broker coordinates.
    pub fn group_state(&self, group: &str) -> Option<(crate::group::coordinator::GroupState, i32)> {
        self.coordinator.group_state(group)
    }

    /// The `__consumer_offsets` partition of a group, if the topic exists.
    pub(super) fn offsets_partition(&self, group: &str) -> Option<i32> {
        let partitions = self.image.topics.get(OFFSETS_TOPIC)?.partitions;
        Some(group_coordinator_partition(group, partitions))
    }

    pub(super) fn on_find_coordinator(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        request: &FindCoordinatorRequest,
        fx: &mut Effects,
    ) {
        if request.key_type == CoordinatorType::Transaction {
            return self.on_find_txn_coordinator(now, from, correlation_id, &request.group_id, fx);
        }
        let group = request.group_id.as_str();
        let (error, coordinator) = match self.offsets_partition(group) {
            None => {
                // Kafka creates __consumer_offsets the first time a client looks for a coordinator.
                if Self::internal_topic_request_due(self.offsets_topic_requested, now) {
                    self.offsets_topic_requested = Some(now);
                    let config = self.config.internal_topic_config(self.config.offsets_topic_segment_bytes);
                    let body = Request::CreateTopics(CreateTopicsRequest {
                        name: OFFSETS_TOPIC.to_string(),
                        partitions: self.config.offsets_topic_num_partitions,
                        replication_factor: self.config.offsets_topic_replication_factor,
                        assignment: Vec::new(),
                        config,
                    });
                    let correlation = self.next_id();
                    fx.send(self.controller, Message::Request { correlation_id: correlation, body });
                }
                (ErrorCode::CoordinatorNotAvailable, None)
            }
            Some(p) => match self.image.partitions.get(&TopicPartition::new(OFFSETS_TOPIC, p)).and_then(|p| p.leader) {
                Some(leader) => (ErrorCode::None, Some(leader)),
                None => (ErrorCode::CoordinatorNotAvailable, None),
            },
        };
        Self::respond(
            from,
            correlation_id,
            Response::FindCoordinator(FindCoordinatorResponse { error, coordinator }),
            fx,
        );
    }

    /// Route a group request to the coordinator if this broker coordinates the group.
    pub(super) fn on_group_request(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        body: Request,
        fx: &mut Effects,
    ) {
        self.route_group_request(now, from, correlation_id, body, false, fx)
    }

    /// `on_group_request`; `added`: a version 2 TxnOffsetCommit whose offsets partition the
    /// transaction coordinator has just added to the transaction.
    pub(super) fn route_group_request(
        &mut self,
        now: SimTime,
        from: NodeId,
        correlation_id: u64,
        body: Request,
        added: bool,
        fx: &mut Effects,
    ) {
        let group = match &body {
            Request::JoinGroup(r) => r.group_id.clone(),
            Request::SyncGroup(r) => r.group_id.clone(),
            Request::Heartbeat(r) => r.group_id.clone(),
            Request::LeaveGroup(r) => r.group_id.clone(),
            Request::OffsetCommit(r) => r.group_id.clone(),
            Request::TxnOffsetCommit(r) => r.group_id.clone(),
            Request::OffsetFetch(r) => r.group_id.clone(),
            _ => unreachable!("only group requests are routed here"),
        };
        // The session-timeout check comes before the coordinator check from 4.0 (the new
        // coordinator's GroupCoordinatorService.joinGroup does it before routing the request to
        // the group's shard), after it before 4.0 (GroupCoordinator.handleJoinGroup runs
        // validateGroupStatus first).
        let new_coordinator = self.config.kafka_version.new_group_coordinator();
        if new_coordinator && self.refuse_session_timeout(from, correlation_id, &body, fx) {
            return;
        }
        let partition = self.offsets_partition(&group).filter(|p| self.coordinator.coordinates(*p));
        let Some(partition) = partition else {
            let error = ErrorCode::NotCoordinator;
            let response = match body {
                Request::JoinGroup(r) => Response::JoinGroup(JoinGroupResponse {
                    error,
                    generation: -1,
                    protocol: None,
                    leader: String::new(),
                    member_id: r.member_id,
                    members: Vec::new(),
                }),
                Request::SyncGroup(_) => {
                    Response::SyncGroup(SyncGroupResponse { error, assignment: MemberAssignment::Empty })
                }
                Request::Heartbeat(_) => Response::Heartbeat(HeartbeatResponse { error }),
                Request::LeaveGroup(_) => Response::LeaveGroup(LeaveGroupResponse { error }),
                Request::OffsetCommit(_) => Response::OffsetCommit(OffsetCommitResponse { error }),
                Request::TxnOffsetCommit(_) => Response::TxnOffsetCommit(TxnOffsetCommitResponse { error }),
                _ => Response::OffsetFetch(OffsetFetchResponse { error, offsets: Vec::new() }),
            };
            Self::respond(from, correlation_id, response, fx);
            return;
        };
        if !new_coordinator && self.refuse_session_timeout(from, correlation_id, &body, fx) {
            return;
        }
        let append = match body {
            Request::JoinGroup(r) => self.coordinator.join(now, from, correlation_id, partition, r, fx),
            Request::SyncGroup(r) => self.coordinator.sync(from, correlation_id, r, fx),
            Request::Heartbeat(r) => {
                self.coordinator.heartbeat(now, from, correlation_id, r, fx);
                None
            }
            Request::LeaveGroup(r) => self.coordinator.leave(now, from, correlation_id, r, fx),
            Request::OffsetCommit(r) => self.coordinator.commit(from, correlation_id, partition, r, fx),
            Request::TxnOffsetCommit(r) => {
                let r = if added {
                    Some(r)
                } else {
                    self.maybe_add_offsets_partition(now, from, correlation_id, partition, r, fx)
                };
                r.and_then(|r| self.coordinator.txn_commit(from, correlation_id, partition, r, fx))
            }
            Request::OffsetFetch(r) => {
                self.coordinator.fetch_offsets(from, correlation_id, r, fx);
                None
            }
            _ => None,
        };
        if let Some(append) = append {
            self.coordinator_append(now, append, fx);
        }
    }

    /// A JoinGroup whose `session.timeout.ms` is outside `[group.min.session.timeout.ms,
    /// group.max.session.timeout.ms]` (6 s and 30 min by default) is answered
    /// INVALID_SESSION_TIMEOUT, and the group is not touched. Returns whether it was.
    fn refuse_session_timeout(&self, from: NodeId, correlation_id: u64, body: &Request, fx: &mut Effects) -> bool {
        let Request::JoinGroup(r) = body else { return false };
        let allowed = self.config.group_min_session_timeout_ms..=self.config.group_max_session_timeout_ms;
        if allowed.contains(&r.session_timeout_ms) {
            return false;
        }
        let response = crate::group::coordinator::join_error(ErrorCode::InvalidSessionTimeout, &r.member_id);
        Self::respond(from, correlation_id, response, fx);
        true
    }

    /// Append a coordinator's records to `__consumer_offsets` and wait for them to commit.
    pub(super) fn coordinator_append(&mut self, now: SimTime, append: Append, fx: &mut Effects) {
        let tp = TopicPartition::new(OFFSETS_TOPIC, append.partition);
        let config = self.topic_config(&tp);
        let Some(replica) = self.replicas.get_mut(&tp).filter(|r| r.is_leader()) else {
            self.coordinator.on_append_done(now, append.completion, ErrorCode::NotCoordinator, fx);
            return;
        };
        let epoch = replica.leader_epoch;
        let count = append.records.len() as i64;
        let batch = match append.producer {
            // A TxnOffsetCommit: a transactional batch of the producer, with no sequence
            // (`GroupMetadataManager.storeOffsets` builds it with `RecordBatch.NO_SEQUENCE`), so
            // the partition's LSO waits for its marker.
            Some((producer_id, producer_epoch)) => {
                let mut b = crate::record::RecordBatch::new_unassigned(
                    producer_id,
                    producer_epoch,
                    -1,
                    now.as_ms(),
                    append.records,
                );
                b.is_transactional = true;
                b
            }
            None => crate::record::RecordBatch::new_unassigned(-1, -1, -1, now.as_ms(), append.records),
        };
        let base_offset = replica.log.append_as_leader(batch, epoch, &config, now.as_ms());
        fx.note(Note::Appended {
            partition: tp.clone(),
            base_offset,
            count,
            leader_epoch: epoch,
            as_leader: true,
            transactional: Vec::new(),
        });
        let id = self.next_id();
        self.delayed_writes.insert(
            id,
            DelayedWrite {
                partition: tp.clone(),
                required_offset: base_offset + count,
                completion: WriteCompletion::Group(append.completion),
            },
        );
        fx.set_timer(Timer::CoordinatorWriteExpiry(id), now.plus_ms(OFFSETS_COMMIT_TIMEOUT_MS));
        self.maybe_advance_hw(now, &tp, fx);
        self.try_complete_delayed_fetches(now, Some(&tp), fx);
    }
}
