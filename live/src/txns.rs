//! The transactional APIs a producer uses (KIP-98): AddPartitionsToTxn, AddOffsetsToTxn and
//! EndTxn to the transaction coordinator, TxnOffsetCommit to the group coordinator. InitProducerId
//! with a `transactional.id`, FindCoordinator with key type 1, transactional Produce and
//! `read_committed` Fetch and ListOffsets are in [`crate::calls`].
//!
//! Each maps to one request of ksim's own (`ksim_cluster::protocol`), which the brokers' transaction
//! and group coordinators (`ksim_cluster::txn`, `ksim_cluster::group`) answer with one error;
//! where Kafka answers per partition, every partition gets that error, as Kafka's coordinator
//! gives them (`AddPartitionsToTxnRequest.errorResponseForTransaction`).
//!
//! Older versions get the error codes they know, as `KafkaApis` rewrites them: PRODUCER_FENCED
//! (90) is INVALID_PRODUCER_EPOCH (47) below InitProducerId v4 and AddPartitionsToTxn,
//! AddOffsetsToTxn and EndTxn v2 (`handleInitProducerIdRequest`, `handleEndTxnRequest`,
//! `handleAddPartitionToTxnRequest`, `handleAddOffsetsToTxnRequest`); COORDINATOR_LOAD_IN_PROGRESS
//! is COORDINATOR_NOT_AVAILABLE below TxnOffsetCommit v2 (`handleTxnOffsetCommitRequest`,
//! KAFKA-7296).
//!
//! DescribeTransactions and ListTransactions (KIP-664, `kafka-transactions.sh`) only read what a
//! coordinator holds in memory (`TransactionCoordinator.handleDescribeTransactions`,
//! `TransactionStateManager.listTransactionStates`): the connection's broker answers them from
//! its transaction coordinator's state at once, with nothing sent on ksim's network (the trace
//! says so).

use crate::calls::{Assembly, Plan};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as kp, ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use ksim_cluster::error::ErrorCode;
use ksim_cluster::node::NodeId;
use ksim_cluster::protocol::{self as ks, Request, Response};
use ksim_cluster::topic::TopicPartition;
use ksim_cluster::txn::{TransactionCoordinator, TransactionState};
use ksim_sim::nodes::Machine;
use ksim_sim::world::World;
use std::time::{SystemTime, UNIX_EPOCH};

fn decode<T: Decodable>(body: &mut Bytes, version: i16, what: &str) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("cannot parse {what} v{version}: {e}"))
}

fn encoded<T: Encodable>(message: &T, version: i16) -> Result<BytesMut, String> {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).map_err(|e| format!("cannot encode the response: {e}"))?;
    Ok(buf)
}

fn forward(request: Request, assembly: Assembly) -> Plan {
    Plan::Forward { requests: vec![request], assembly }
}

/// PRODUCER_FENCED as a client of `version` understands it: INVALID_PRODUCER_EPOCH before
/// `since`, the version that added PRODUCER_FENCED (KIP-588).
pub fn fenced_for(error: ErrorCode, version: i16, since: i16) -> ErrorCode {
    if error == ErrorCode::ProducerFenced && version < since {
        ErrorCode::InvalidProducerEpoch
    } else {
        error
    }
}

/// An admin tool's question a broker answers from its transaction coordinator's memory.
pub enum Inspection {
    DescribeTransactions(Vec<String>),
    /// State names, producer ids, and the minimum duration (v1+, KIP-994; -1: any).
    ListTransactions {
        states: Vec<String>,
        producer_ids: Vec<i64>,
        duration_ms: i64,
    },
}

pub fn plan(api: ApiKey, version: i16, body: &mut Bytes) -> Result<Plan, String> {
    match api {
        ApiKey::DescribeTransactions => {
            let r: kp::DescribeTransactionsRequest = decode(body, version, "DescribeTransactions")?;
            let ids = r.transactional_ids.iter().map(|t| t.0.to_string()).collect();
            Ok(Plan::Inspect(Inspection::DescribeTransactions(ids)))
        }
        ApiKey::ListTransactions => {
            let r: kp::ListTransactionsRequest = decode(body, version, "ListTransactions")?;
            Ok(Plan::Inspect(Inspection::ListTransactions {
                states: r.state_filters.iter().map(|s| s.to_string()).collect(),
                producer_ids: r.producer_id_filters.iter().map(|p| p.0).collect(),
                duration_ms: if version >= 1 { r.duration_filter } else { -1 },
            }))
        }
        ApiKey::AddPartitionsToTxn => {
            // Versions 0-3 are the client's, one transaction each; 4+ batch transactions and
            // carry VerifyOnly, which only a partition leader sends (KIP-890 part 1), so ksim
            // does not advertise them.
            let r: kp::AddPartitionsToTxnRequest = decode(body, version, "AddPartitionsToTxn")?;
            let asked: Vec<(String, Vec<i32>)> =
                r.v3_and_below_topics.iter().map(|t| (t.name.0.to_string(), t.partitions.clone())).collect();
            let partitions = asked
                .iter()
                .flat_map(|(topic, ps)| ps.iter().map(move |p| TopicPartition::new(topic.as_str(), *p)))
                .collect();
            Ok(forward(
                Request::AddPartitionsToTxn(ks::AddPartitionsToTxnRequest {
                    transactional_id: r.v3_and_below_transactional_id.0.to_string(),
                    producer_id: r.v3_and_below_producer_id.0,
                    producer_epoch: r.v3_and_below_producer_epoch,
                    partitions,
                    verify_only: false,
                }),
                Assembly::AddPartitionsToTxn(asked),
            ))
        }
        ApiKey::AddOffsetsToTxn => {
            let r: kp::AddOffsetsToTxnRequest = decode(body, version, "AddOffsetsToTxn")?;
            Ok(forward(
                Request::AddOffsetsToTxn(ks::AddOffsetsToTxnRequest {
                    transactional_id: r.transactional_id.0.to_string(),
                    producer_id: r.producer_id.0,
                    producer_epoch: r.producer_epoch,
                    group_id: r.group_id.0.to_string(),
                }),
                Assembly::AddOffsetsToTxn,
            ))
        }
        ApiKey::EndTxn => {
            let r: kp::EndTxnRequest = decode(body, version, "EndTxn")?;
            Ok(forward(
                Request::EndTxn(ks::EndTxnRequest {
                    transactional_id: r.transactional_id.0.to_string(),
                    producer_id: r.producer_id.0,
                    producer_epoch: r.producer_epoch,
                    committed: r.committed,
                    // EndTxn v5 (KIP-890 part 2) is not advertised: a live client runs the
                    // classic protocol, as librdkafka does on any cluster.
                    transaction_v2: false,
                }),
                Assembly::EndTxn,
            ))
        }
        ApiKey::TxnOffsetCommit => {
            let r: kp::TxnOffsetCommitRequest = decode(body, version, "TxnOffsetCommit")?;
            let asked: Vec<(String, Vec<i32>)> = r
                .topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partitions.iter().map(|p| p.partition_index).collect()))
                .collect();
            // ksim's offsets are positions only: the committed leader epoch (v2+) and the
            // metadata string are not kept, as in OffsetCommit.
            let offsets = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (TopicPartition::new(t.name.0.as_str(), p.partition_index), p.committed_offset))
                })
                .collect();
            // v0-2 carry no group metadata: generation -1 and no member, which the group
            // coordinator does not check (before KIP-447).
            Ok(forward(
                Request::TxnOffsetCommit(ks::TxnOffsetCommitRequest {
                    transactional_id: r.transactional_id.0.to_string(),
                    group_id: r.group_id.0.to_string(),
                    producer_id: r.producer_id.0,
                    producer_epoch: r.producer_epoch,
                    generation: r.generation_id,
                    member_id: r.member_id.to_string(),
                    group_instance_id: r.group_instance_id.map(|i| i.to_string()),
                    offsets,
                    // TxnOffsetCommit v5 (KIP-890 part 2) is not advertised: classic protocol.
                    transaction_v2: false,
                }),
                Assembly::TxnOffsetCommit(asked),
            ))
        }
        other => Err(format!("{other:?} is not a transactional API")),
    }
}

pub fn assemble(assembly: &Assembly, version: i16, responses: &[Response]) -> Result<BytesMut, String> {
    let unexpected = |r: Option<&Response>| r.map_or("no answer".to_string(), |r| format!("unexpected answer {r}"));
    match assembly {
        Assembly::AddPartitionsToTxn(asked) => {
            let Some(Response::AddPartitionsToTxn(a)) = responses.first() else {
                return Err(unexpected(responses.first()));
            };
            let error = fenced_for(a.error, version, 2).code();
            let mut out = kp::AddPartitionsToTxnResponse::default();
            out.results_by_topic_v3_and_below = asked
                .iter()
                .map(|(topic, partitions)| {
                    let mut t = kp::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
                    t.name = TopicName(StrBytes::from_string(topic.clone()));
                    t.results_by_partition = partitions
                        .iter()
                        .map(|p| {
                            let mut r =
                                kp::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
                            r.partition_index = *p;
                            r.partition_error_code = error;
                            r
                        })
                        .collect();
                    t
                })
                .collect();
            encoded(&out, version)
        }
        Assembly::AddOffsetsToTxn => {
            let Some(Response::AddOffsetsToTxn(a)) = responses.first() else {
                return Err(unexpected(responses.first()));
            };
            let mut out = kp::AddOffsetsToTxnResponse::default();
            out.error_code = fenced_for(a.error, version, 2).code();
            encoded(&out, version)
        }
        Assembly::EndTxn => {
            let Some(Response::EndTxn(e)) = responses.first() else { return Err(unexpected(responses.first())) };
            let mut out = kp::EndTxnResponse::default();
            out.error_code = fenced_for(e.error, version, 2).code();
            encoded(&out, version)
        }
        Assembly::TxnOffsetCommit(asked) => {
            let Some(Response::TxnOffsetCommit(c)) = responses.first() else {
                return Err(unexpected(responses.first()));
            };
            let error = match c.error {
                ErrorCode::CoordinatorLoadInProgress if version < 2 => ErrorCode::CoordinatorNotAvailable,
                other => other,
            };
            let mut out = kp::TxnOffsetCommitResponse::default();
            out.topics = asked
                .iter()
                .map(|(topic, partitions)| {
                    let mut t = kp::txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
                    t.name = TopicName(StrBytes::from_string(topic.clone()));
                    t.partitions = partitions
                        .iter()
                        .map(|p| {
                            let mut r = kp::txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
                            r.partition_index = *p;
                            r.error_code = error.code();
                            r
                        })
                        .collect();
                    t
                })
                .collect();
            encoded(&out, version)
        }
        _ => Err("not a transactional API's answer".into()),
    }
}

/// Answer an [`Inspection`] from `broker`'s transaction coordinator: the response body and a line
/// for the trace.
pub fn inspect(w: &World, broker: NodeId, inspection: &Inspection, version: i16) -> Result<(BytesMut, String), String> {
    let coordinator: Option<&TransactionCoordinator> = match w.slots.get(&broker).and_then(|s| s.machine.as_ref()) {
        Some(Machine::Broker(b)) => Some(b.txn_coordinator()),
        _ => None,
    };
    let now_ms = i64::try_from(w.now().as_ms()).unwrap_or(i64::MAX);
    match inspection {
        Inspection::DescribeTransactions(ids) => {
            // ksim's clock counts from the start of the run; Kafka's start times are epoch ms.
            let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            let epoch_at_start = wall_ms - now_ms;
            let mut out = kp::DescribeTransactionsResponse::default();
            for id in ids {
                let mut state = kp::describe_transactions_response::TransactionState::default();
                state.transactional_id = kp::TransactionalId(StrBytes::from_string(id.clone()));
                let found = coordinator.map(|c| (c.coordinates(c.partition_for(id)), c.transaction(id)));
                state.error_code = match found {
                    None => ErrorCode::CoordinatorNotAvailable.code(),
                    Some(_) if id.is_empty() => ErrorCode::InvalidRequest.code(),
                    Some((false, _)) => ErrorCode::NotCoordinator.code(),
                    // TRANSACTIONAL_ID_NOT_FOUND, which ksim's own clients never meet.
                    Some((true, None)) => 105,
                    Some((true, Some(m))) if m.state == TransactionState::Dead => 105,
                    Some((true, Some(m))) => {
                        state.transaction_state = StrBytes::from_static_str(m.state.name());
                        state.transaction_timeout_ms = i32::try_from(m.txn_timeout_ms).unwrap_or(i32::MAX);
                        state.transaction_start_time_ms =
                            if m.txn_start_timestamp_ms >= 0 { m.txn_start_timestamp_ms + epoch_at_start } else { -1 };
                        state.producer_id = kp::ProducerId(m.producer_id);
                        state.producer_epoch = m.producer_epoch;
                        for tp in &m.topic_partitions {
                            match state.topics.last_mut() {
                                Some(t) if t.topic.0.as_str() == tp.topic => t.partitions.push(tp.partition),
                                _ => {
                                    let mut t = kp::describe_transactions_response::TopicData::default();
                                    t.topic = TopicName(StrBytes::from_string(tp.topic.to_string()));
                                    t.partitions.push(tp.partition);
                                    state.topics.push(t);
                                }
                            }
                        }
                        0
                    }
                };
                out.transaction_states.push(state);
            }
            let summary: Vec<String> = out
                .transaction_states
                .iter()
                .map(|s| {
                    format!(
                        "{}={}",
                        s.transactional_id.0.as_str(),
                        if s.error_code == 0 {
                            s.transaction_state.to_string()
                        } else {
                            format!("error {}", s.error_code)
                        }
                    )
                })
                .collect();
            let line = format!("DescribeTransactions answered from the coordinator's memory: {}", summary.join(", "));
            Ok((encoded(&out, version)?, line))
        }
        Inspection::ListTransactions { states, producer_ids, duration_ms } => {
            let mut out = kp::ListTransactionsResponse::default();
            let known: Vec<TransactionState> =
                ALL_STATES.iter().copied().filter(|s| states.iter().any(|n| n == s.name())).collect();
            out.unknown_state_filters = states
                .iter()
                .filter(|n| !ALL_STATES.iter().any(|s| s.name() == n.as_str()))
                .map(|n| StrBytes::from_string(n.clone()))
                .collect();
            match coordinator {
                None => out.error_code = ErrorCode::CoordinatorNotAvailable.code(),
                Some(c) => {
                    for m in c.transactions() {
                        // Dead is transient (being expired): never listed.
                        let listed = m.state != TransactionState::Dead
                            && (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                            && (states.is_empty() || known.contains(&m.state))
                            && (*duration_ms < 0 || now_ms - m.txn_start_timestamp_ms > *duration_ms);
                        if listed {
                            let mut t = kp::list_transactions_response::TransactionState::default();
                            t.transactional_id = kp::TransactionalId(StrBytes::from_string(m.transactional_id.clone()));
                            t.producer_id = kp::ProducerId(m.producer_id);
                            t.transaction_state = StrBytes::from_static_str(m.state.name());
                            out.transaction_states.push(t);
                        }
                    }
                }
            }
            let line = format!(
                "ListTransactions answered from the coordinator's memory: {} transaction(s)",
                out.transaction_states.len()
            );
            Ok((encoded(&out, version)?, line))
        }
    }
}

/// Every state a transaction can be in, by the names the admin APIs use (`TransactionState.name`).
const ALL_STATES: [TransactionState; 8] = [
    TransactionState::Empty,
    TransactionState::Ongoing,
    TransactionState::PrepareCommit,
    TransactionState::PrepareAbort,
    TransactionState::CompleteCommit,
    TransactionState::CompleteAbort,
    TransactionState::Dead,
    TransactionState::PrepareEpochFence,
];
