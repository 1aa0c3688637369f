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

use crate::calls::{Assembly, Plan};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as kp, ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use ksim_cluster::error::ErrorCode;
use ksim_cluster::protocol::{self as ks, Request, Response};
use ksim_cluster::topic::TopicPartition;

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

pub fn plan(api: ApiKey, version: i16, body: &mut Bytes) -> Result<Plan, String> {
    match api {
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
