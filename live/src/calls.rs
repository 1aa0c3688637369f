//! One Kafka request in, ksim requests out; ksim's answers in, one Kafka response out.
//!
//! A Kafka request often covers many partitions where ksim's message covers one (Produce) or one
//! coordinator key (batched FindCoordinator, KIP-699): [`plan`] splits it into ksim requests and
//! remembers, in an [`Assembly`], how to put their answers back together in the order the client
//! asked. Nothing here encodes bytes by hand: the `kafka-protocol` crate's generated messages do.

use crate::apis;
use crate::records;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as kp, ApiKey, BrokerId as KpBrokerId, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use ksim_cluster::config::Acks;
use ksim_cluster::error::ErrorCode;
use ksim_cluster::protocol::{self as ks, OffsetSpec, Request, Response};
use ksim_cluster::topic::{BrokerId, TopicPartition};
use std::collections::BTreeMap;

/// Where each broker listens: what Metadata and FindCoordinator advertise.
#[derive(Clone, Debug)]
pub struct Addresses {
    pub host: String,
    pub ports: BTreeMap<BrokerId, u16>,
}

impl Addresses {
    fn port(&self, broker: BrokerId) -> i32 {
        self.ports.get(&broker).map_or(-1, |p| i32::from(*p))
    }
}

/// What to do with one decoded request.
pub enum Plan {
    /// Answer at once with this response body (ApiVersions, or a request nothing in it reaches
    /// the cluster).
    Answer(BytesMut),
    /// Send these to the connection's broker; answer with the assembly of their responses.
    Forward { requests: Vec<Request>, assembly: Assembly },
    /// Send these and never answer (Produce with acks=0: Kafka sends no response).
    Fire(Vec<Request>),
    /// Answer from the connection's broker's memory (the admin tools' transaction listings).
    Inspect(crate::txns::Inspection),
}

/// A partition of a Produce request: the indices of the ksim requests that carried its batches,
/// or why it was refused before reaching the broker.
pub type ProducedPartition = (i32, Result<Vec<usize>, records::Refused>);

/// A partition of a ListOffsets request: `Some(error)` if refused here.
pub type ListedPartition = (i32, Option<ErrorCode>);

/// How to build the Kafka response from the ksim responses, which arrive in `requests` order.
pub enum Assembly {
    Metadata,
    /// Per partition in the client's order: the ksim requests that carried its batches, or the
    /// reason it was refused before reaching the broker.
    Produce(Vec<(String, Vec<ProducedPartition>)>),
    Fetch,
    /// Per partition in the client's order: answered by the one ksim request, or refused here.
    ListOffsets(Vec<(String, Vec<ListedPartition>)>),
    OffsetForLeaderEpoch,
    InitProducerId,
    /// The keys asked, one ksim request each; `batched` answers in `coordinators` (v4+).
    FindCoordinator {
        keys: Vec<String>,
        batched: bool,
    },
    JoinGroup,
    SyncGroup,
    Heartbeat,
    /// The members leaving, one ksim request each; `batched` answers per member (v3+).
    LeaveGroup {
        members: Vec<(String, Option<String>)>,
        batched: bool,
    },
    /// The partitions committed, by topic, in the client's order.
    OffsetCommit(Vec<(String, Vec<i32>)>),
    /// The partitions asked, by topic (`None`: every partition the group committed).
    OffsetFetch(Option<Vec<(String, Vec<i32>)>>),
    /// The partitions added, by topic, in the client's order.
    AddPartitionsToTxn(Vec<(String, Vec<i32>)>),
    AddOffsetsToTxn,
    EndTxn,
    /// The partitions committed, by topic, in the client's order.
    TxnOffsetCommit(Vec<(String, Vec<i32>)>),
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn encoded<T: Encodable>(message: &T, version: i16) -> Result<BytesMut, String> {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).map_err(|e| format!("cannot encode the response: {e}"))?;
    Ok(buf)
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16, what: &str) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("cannot parse {what} v{version}: {e}"))
}

/// The ApiVersions answer: every API and version range ksim implements. `error` is
/// UNSUPPORTED_VERSION (35) for a version ksim does not know, which Kafka answers at v0 so that
/// any client can read the ranges (`KafkaApis.handleApiVersionsRequest`, KIP-511).
pub fn api_versions(error: i16, version: i16) -> Result<BytesMut, String> {
    let mut response = kp::ApiVersionsResponse::default();
    response.error_code = error;
    response.api_keys = apis::SUPPORTED
        .iter()
        .map(|(api, min, max)| {
            let mut v = kp::api_versions_response::ApiVersion::default();
            v.api_key = *api as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    encoded(&response, version)
}

/// Decode a request body of a supported API and version into a plan.
pub fn plan(api: ApiKey, version: i16, body: &mut Bytes, client_id: &str) -> Result<Plan, String> {
    match api {
        ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch => crate::groups::plan(api, version, body, client_id),
        ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::DescribeTransactions
        | ApiKey::ListTransactions => crate::txns::plan(api, version, body),
        ApiKey::ApiVersions => {
            let _: kp::ApiVersionsRequest = decode(body, version, "ApiVersions")?;
            api_versions(0, version).map(Plan::Answer)
        }
        ApiKey::Metadata => {
            let r: kp::MetadataRequest = decode(body, version, "Metadata")?;
            // v0: an empty list means every topic; v1+: null means every topic.
            let topics: Vec<String> = match r.topics {
                None => Vec::new(),
                Some(ts) => ts.into_iter().filter_map(|t| t.name.map(|n| n.0.to_string())).collect(),
            };
            Ok(Plan::Forward {
                requests: vec![Request::Metadata(ks::MetadataRequest { topics })],
                assembly: Assembly::Metadata,
            })
        }
        ApiKey::Produce => plan_produce(version, body),
        ApiKey::Fetch => {
            let r: kp::FetchRequest = decode(body, version, "Fetch")?;
            let partitions = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| ks::FetchPartition {
                        partition: TopicPartition::new(t.topic.0.as_str(), p.partition),
                        fetch_offset: p.fetch_offset,
                        current_leader_epoch: p.current_leader_epoch,
                    })
                })
                .collect();
            let request = ks::FetchRequest {
                replica: None,
                max_wait_ms: u64::try_from(r.max_wait_ms).unwrap_or(0),
                // Real clients fetch outside sessions here: ksim answers with session id 0, which
                // a client takes as "no session" (a full fetch every time), as from a broker whose
                // session cache is full.
                session: ksim_cluster::fetch_session::FetchMetadata::SESSIONLESS,
                partitions,
                forgotten: Vec::new(),
                isolation_level: isolation(r.isolation_level),
            };
            Ok(Plan::Forward { requests: vec![Request::Fetch(request)], assembly: Assembly::Fetch })
        }
        ApiKey::ListOffsets => {
            let r: kp::ListOffsetsRequest = decode(body, version, "ListOffsets")?;
            let mut asked = Vec::new();
            let mut partitions = Vec::new();
            for t in &r.topics {
                let mut ps = Vec::new();
                for p in &t.partitions {
                    // ksim answers the two special timestamps; a search by time (or -3, the
                    // max timestamp of KIP-734) has no index to search in ksim's log.
                    let spec = match p.timestamp {
                        -2 => Some(OffsetSpec::Earliest),
                        -1 => Some(OffsetSpec::Latest),
                        _ => None,
                    };
                    match spec {
                        Some(spec) => {
                            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                            partitions.push((tp, spec, p.current_leader_epoch));
                            ps.push((p.partition_index, None));
                        }
                        None => ps.push((p.partition_index, Some(ErrorCode::InvalidRequest))),
                    }
                }
                asked.push((t.name.0.to_string(), ps));
            }
            let request = ks::ListOffsetsRequest { partitions, isolation_level: isolation(r.isolation_level) };
            Ok(Plan::Forward { requests: vec![Request::ListOffsets(request)], assembly: Assembly::ListOffsets(asked) })
        }
        ApiKey::OffsetForLeaderEpoch => {
            let r: kp::OffsetForLeaderEpochRequest = decode(body, version, "OffsetForLeaderEpoch")?;
            let partitions = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (TopicPartition::new(t.topic.0.as_str(), p.partition), p.current_leader_epoch, p.leader_epoch)
                    })
                })
                .collect();
            let request = ks::OffsetsForLeaderEpochRequest { replica_id: r.replica_id.0, partitions };
            Ok(Plan::Forward {
                requests: vec![Request::OffsetsForLeaderEpoch(request)],
                assembly: Assembly::OffsetForLeaderEpoch,
            })
        }
        ApiKey::InitProducerId => {
            let r: kp::InitProducerIdRequest = decode(body, version, "InitProducerId")?;
            let request = match r.transactional_id {
                None => Request::InitProducerId,
                Some(id) => Request::InitProducerIdTransactional(ks::InitProducerIdRequest {
                    transactional_id: id.0.to_string(),
                    transaction_timeout_ms: u64::try_from(r.transaction_timeout_ms).unwrap_or(0),
                    producer_id: r.producer_id.0,
                    producer_epoch: r.producer_epoch,
                }),
            };
            Ok(Plan::Forward { requests: vec![request], assembly: Assembly::InitProducerId })
        }
        ApiKey::FindCoordinator => {
            let r: kp::FindCoordinatorRequest = decode(body, version, "FindCoordinator")?;
            let batched = version >= 4;
            let keys: Vec<String> = if batched {
                r.coordinator_keys.iter().map(|k| k.to_string()).collect()
            } else {
                vec![r.key.to_string()]
            };
            let key_type = if r.key_type == 1 { ks::CoordinatorType::Transaction } else { ks::CoordinatorType::Group };
            let requests = keys
                .iter()
                .map(|k| Request::FindCoordinator(ks::FindCoordinatorRequest { group_id: k.clone(), key_type }))
                .collect();
            Ok(Plan::Forward { requests, assembly: Assembly::FindCoordinator { keys, batched } })
        }
        other => Err(format!("{other:?} is not implemented")),
    }
}

fn isolation(level: i8) -> ks::IsolationLevel {
    if level == 1 {
        ks::IsolationLevel::ReadCommitted
    } else {
        ks::IsolationLevel::ReadUncommitted
    }
}

fn plan_produce(version: i16, body: &mut Bytes) -> Result<Plan, String> {
    let r: kp::ProduceRequest = decode(body, version, "Produce")?;
    let acks = match r.acks {
        0 => Acks::None,
        1 => Acks::Leader,
        -1 => Acks::All,
        // Kafka: INVALID_REQUIRED_ACKS for every partition; ksim has no such code, so it closes
        // the connection as for a request it cannot parse.
        other => return Err(format!("Produce with acks={other}: only 0, 1 and -1 exist")),
    };
    let timeout_ms = u64::try_from(r.timeout_ms).unwrap_or(0);
    let mut requests = Vec::new();
    let mut asked = Vec::new();
    for t in &r.topic_data {
        let topic = t.name.0.to_string();
        let mut ps = Vec::new();
        for p in &t.partition_data {
            let outcome = match p.records.as_ref().map(records::decode_produced) {
                None => Err(records::Refused { error: ErrorCode::CorruptMessage, reason: "no record batch".into() }),
                Some(Err(refused)) => Err(refused),
                Some(Ok(batches)) => {
                    let mut indices = Vec::new();
                    for batch in batches {
                        indices.push(requests.len());
                        requests.push(Request::Produce(ks::ProduceRequest {
                            acks,
                            timeout_ms,
                            partition: TopicPartition::new(topic.clone(), p.index),
                            batch,
                            // Produce v3+ names the producer's transactional.id (KIP-890's
                            // verification needs it).
                            transactional_id: r.transactional_id.as_ref().map(|id| id.0.to_string()),
                            // Live clients speak the classic protocol to ksim (no v12 semantics).
                            transaction_v2: false,
                        }));
                    }
                    Ok(indices)
                }
            };
            ps.push((p.index, outcome));
        }
        asked.push((topic, ps));
    }
    if acks == Acks::None {
        // With acks=0 there is no response to carry an error: Kafka closes the connection
        // instead (`KafkaApis.handleProduceRequest`, "closeConnection" when acks == 0).
        let refused = asked.iter().flat_map(|(t, ps)| ps.iter().map(move |(i, o)| (t, i, o)));
        for (topic, index, outcome) in refused {
            if let Err(r) = outcome {
                return Err(format!("Produce acks=0 refused {topic}-{index}: {}", r.reason));
            }
        }
        return Ok(Plan::Fire(requests));
    }
    Ok(Plan::Forward { requests, assembly: Assembly::Produce(asked) })
}

/// A Produce error as a client of `version` understands it. TRANSACTION_ABORTABLE (KIP-890) is
/// new in Produce v11; an older client gets INVALID_TXN_STATE for a transactional batch whose
/// partition the coordinator does not know in the transaction (`AddPartitionsToTxnManager`'s
/// "for backward compatibility with clients"). ksim serves Produce up to v9.
fn produce_error(error: ErrorCode, version: i16) -> ErrorCode {
    if error == ErrorCode::TransactionAbortable && version < 11 {
        ErrorCode::InvalidTxnState
    } else {
        error
    }
}

/// Lines for the trace about what a plan refused before anything reached a broker (a Produce's
/// partitions whose batches were corrupt or not text): the client only sees an error code.
pub fn refusals(assembly: &Assembly) -> Vec<String> {
    let Assembly::Produce(asked) = assembly else { return Vec::new() };
    asked
        .iter()
        .flat_map(|(topic, ps)| {
            ps.iter().filter_map(move |(index, outcome)| {
                outcome.as_ref().err().map(|r| format!("Produce {topic}-{index} refused {}: {}", r.error, r.reason))
            })
        })
        .collect()
}

/// Put the ksim responses together into the Kafka response body.
pub fn assemble(
    assembly: &Assembly,
    version: i16,
    responses: &[Response],
    addresses: &Addresses,
) -> Result<BytesMut, String> {
    let unexpected = |r: &Response| format!("unexpected answer {r}");
    match assembly {
        Assembly::JoinGroup
        | Assembly::SyncGroup
        | Assembly::Heartbeat
        | Assembly::LeaveGroup { .. }
        | Assembly::OffsetCommit(_)
        | Assembly::OffsetFetch(_) => crate::groups::assemble(assembly, version, responses),
        Assembly::AddPartitionsToTxn(_)
        | Assembly::AddOffsetsToTxn
        | Assembly::EndTxn
        | Assembly::TxnOffsetCommit(_) => crate::txns::assemble(assembly, version, responses),
        Assembly::Metadata => {
            let Some(Response::Metadata(m)) = responses.first() else {
                return Err(responses.first().map_or("no answer".into(), unexpected));
            };
            let mut out = kp::MetadataResponse::default();
            out.brokers = m
                .brokers
                .iter()
                .map(|b| {
                    let mut broker = kp::metadata_response::MetadataResponseBroker::default();
                    broker.node_id = KpBrokerId(*b);
                    broker.host = sb(&addresses.host);
                    broker.port = addresses.port(*b);
                    broker
                })
                .collect();
            if version >= 2 {
                out.cluster_id = Some(sb("ksim-live"));
            }
            // KRaft brokers name a random live broker as the controller (clients cannot reach
            // the controllers); ksim names the lowest, so answers do not jump around.
            if version >= 1 {
                out.controller_id = KpBrokerId(m.brokers.iter().min().copied().unwrap_or(-1));
            }
            out.topics = m
                .topics
                .iter()
                .map(|t| {
                    let mut topic = kp::metadata_response::MetadataResponseTopic::default();
                    topic.error_code = t.error.code();
                    topic.name = Some(name(&t.name));
                    topic.is_internal = version >= 1 && t.name.starts_with("__");
                    topic.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut part = kp::metadata_response::MetadataResponsePartition::default();
                            part.error_code = if p.leader.is_some() { 0 } else { ErrorCode::LeaderNotAvailable.code() };
                            part.partition_index = p.partition;
                            part.leader_id = KpBrokerId(p.leader.unwrap_or(-1));
                            if version >= 7 {
                                part.leader_epoch = p.leader_epoch;
                            }
                            part.replica_nodes = p.replicas.iter().map(|b| KpBrokerId(*b)).collect();
                            part.isr_nodes = p.isr.iter().map(|b| KpBrokerId(*b)).collect();
                            if version >= 5 {
                                part.offline_replicas = p
                                    .replicas
                                    .iter()
                                    .filter(|b| !m.brokers.contains(b))
                                    .map(|b| KpBrokerId(*b))
                                    .collect();
                            }
                            part
                        })
                        .collect();
                    topic
                })
                .collect();
            encoded(&out, version)
        }
        Assembly::Produce(asked) => {
            let mut out = kp::ProduceResponse::default();
            for (topic, partitions) in asked {
                let mut t = kp::produce_response::TopicProduceResponse::default();
                t.name = name(topic);
                for (index, outcome) in partitions {
                    let mut p = kp::produce_response::PartitionProduceResponse::default();
                    p.index = *index;
                    p.base_offset = -1;
                    match outcome {
                        Err(refused) => {
                            p.error_code = refused.error.code();
                            // v8+ carry a message with the error (KIP-467).
                            if version >= 8 {
                                p.error_message = Some(sb(&refused.reason));
                            }
                        }
                        Ok(indices) => {
                            // A partition's batches answer together: its first error, or the
                            // first batch's offset.
                            for (n, i) in indices.iter().enumerate() {
                                let Some(Response::Produce(r)) = responses.get(*i) else {
                                    return Err(responses.get(*i).map_or("no answer".into(), unexpected));
                                };
                                if !r.error.is_none() {
                                    p.error_code = produce_error(r.error, version).code();
                                    p.base_offset = -1;
                                    break;
                                }
                                if n == 0 {
                                    p.base_offset = r.base_offset;
                                    if version >= 5 {
                                        p.log_start_offset = r.log_start_offset;
                                    }
                                }
                            }
                        }
                    }
                    t.partition_responses.push(p);
                }
                out.responses.push(t);
            }
            encoded(&out, version)
        }
        Assembly::Fetch => {
            let Some(Response::Fetch(f)) = responses.first() else {
                return Err(responses.first().map_or("no answer".into(), unexpected));
            };
            let mut out = kp::FetchResponse::default();
            for p in &f.partitions {
                let mut data = kp::fetch_response::PartitionData::default();
                data.partition_index = p.partition.partition;
                data.error_code = p.error.code();
                data.high_watermark = p.high_watermark;
                // ksim reports the last stable offset to read_committed fetches; without open
                // transactions it equals the high watermark, which is what a read_uncommitted
                // answer carries here.
                data.last_stable_offset = p.last_stable_offset.unwrap_or(p.high_watermark);
                if version >= 5 {
                    data.log_start_offset = p.log_start_offset;
                }
                data.preferred_read_replica = KpBrokerId(-1);
                data.aborted_transactions = p.last_stable_offset.map(|_| {
                    p.aborted_transactions
                        .iter()
                        .map(|a| {
                            let mut t = kp::fetch_response::AbortedTransaction::default();
                            t.producer_id = kp::ProducerId(a.producer_id);
                            t.first_offset = a.first_offset;
                            t
                        })
                        .collect()
                });
                data.records = Some(records::encode_fetched(&p.batches)?);
                let topic = p.partition.topic.as_str();
                match out.responses.last_mut() {
                    Some(t) if t.topic.0.as_str() == topic => t.partitions.push(data),
                    _ => {
                        let mut t = kp::fetch_response::FetchableTopicResponse::default();
                        t.topic = name(topic);
                        t.partitions.push(data);
                        out.responses.push(t);
                    }
                }
            }
            encoded(&out, version)
        }
        Assembly::ListOffsets(asked) => {
            let Some(Response::ListOffsets(l)) = responses.first() else {
                return Err(responses.first().map_or("no answer".into(), unexpected));
            };
            let mut out = kp::ListOffsetsResponse::default();
            for (topic, partitions) in asked {
                let mut t = kp::list_offsets_response::ListOffsetsTopicResponse::default();
                t.name = name(topic);
                for (index, refused) in partitions {
                    let mut p = kp::list_offsets_response::ListOffsetsPartitionResponse::default();
                    p.partition_index = *index;
                    p.offset = -1;
                    match refused {
                        Some(error) => p.error_code = error.code(),
                        None => {
                            let found =
                                l.partitions.iter().find(|(tp, ..)| tp.topic == *topic && tp.partition == *index);
                            let Some((_, error, offset, epoch)) = found else {
                                return Err(format!("no ListOffsets answer for {topic}-{index}"));
                            };
                            p.error_code = error.code();
                            p.offset = *offset;
                            // The leader epoch is in the answer from v4 (KIP-320).
                            if version >= 4 {
                                p.leader_epoch = *epoch;
                            }
                        }
                    }
                    t.partitions.push(p);
                }
                out.topics.push(t);
            }
            encoded(&out, version)
        }
        Assembly::OffsetForLeaderEpoch => {
            let Some(Response::OffsetsForLeaderEpoch(o)) = responses.first() else {
                return Err(responses.first().map_or("no answer".into(), unexpected));
            };
            let mut out = kp::OffsetForLeaderEpochResponse::default();
            for e in &o.partitions {
                let mut p = kp::offset_for_leader_epoch_response::EpochEndOffset::default();
                p.error_code = e.error.code();
                p.partition = e.partition.partition;
                p.leader_epoch = e.leader_epoch;
                p.end_offset = e.end_offset;
                let topic = e.partition.topic.as_str();
                match out.topics.last_mut() {
                    Some(t) if t.topic.0.as_str() == topic => t.partitions.push(p),
                    _ => {
                        let mut t = kp::offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default();
                        t.topic = name(topic);
                        t.partitions.push(p);
                        out.topics.push(t);
                    }
                }
            }
            encoded(&out, version)
        }
        Assembly::InitProducerId => {
            let Some(Response::InitProducerId(i)) = responses.first() else {
                return Err(responses.first().map_or("no answer".into(), unexpected));
            };
            let mut out = kp::InitProducerIdResponse::default();
            out.error_code = crate::txns::fenced_for(i.error, version, 4).code();
            out.producer_id = kp::ProducerId(i.producer_id);
            out.producer_epoch = i.producer_epoch;
            encoded(&out, version)
        }
        Assembly::FindCoordinator { keys, batched } => {
            let mut out = kp::FindCoordinatorResponse::default();
            for (key, response) in keys.iter().zip(responses) {
                let Response::FindCoordinator(f) = response else { return Err(unexpected(response)) };
                let node = f.coordinator.filter(|_| f.error.is_none());
                let (node_id, port) = node.map_or((-1, -1), |b| (b, addresses.port(b)));
                let host = if node.is_some() { addresses.host.as_str() } else { "" };
                if *batched {
                    let mut c = kp::find_coordinator_response::Coordinator::default();
                    c.key = sb(key);
                    c.node_id = KpBrokerId(node_id);
                    c.host = sb(host);
                    c.port = port;
                    c.error_code = f.error.code();
                    out.coordinators.push(c);
                } else {
                    out.error_code = f.error.code();
                    out.node_id = KpBrokerId(node_id);
                    out.host = sb(host);
                    out.port = port;
                }
            }
            encoded(&out, version)
        }
    }
}
