//! The consumer group APIs (the classic protocol, Kafka's `GroupCoordinator`): JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch.
//!
//! A member's subscription and assignment travel as opaque bytes in Kafka's messages, in the
//! consumer protocol's own format (`ConsumerProtocolSubscription` / `ConsumerProtocolAssignment`,
//! a version then the struct); ksim's coordinator reads them as structures, so they are decoded
//! and encoded here. User data (the sticky assignors' previous assignment) is not kept: ksim's
//! subscription carries the owned partitions, which is what the cooperative protocol needs.

use crate::calls::{Assembly, Plan};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{self as kp, ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use ksim_cluster::error::ErrorCode;
use ksim_cluster::protocol::{self as ks, Request, Response};
use ksim_cluster::topic::TopicPartition;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16, what: &str) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("cannot parse {what} v{version}: {e}"))
}

fn encoded<T: Encodable>(message: &T, version: i16) -> Result<BytesMut, String> {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).map_err(|e| format!("cannot encode the response: {e}"))?;
    Ok(buf)
}

fn partitions_of<'a>(topic: &'a str, partitions: &'a [i32]) -> impl Iterator<Item = TopicPartition> + 'a {
    partitions.iter().map(move |p| TopicPartition::new(topic, *p))
}

/// Group partitions by topic, in first-seen order.
fn by_topic(partitions: &[TopicPartition]) -> Vec<(String, Vec<i32>)> {
    let mut out: Vec<(String, Vec<i32>)> = Vec::new();
    for tp in partitions {
        match out.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, ps)) => ps.push(tp.partition),
            None => out.push((tp.topic.to_string(), vec![tp.partition])),
        }
    }
    out
}

fn subscription_from(metadata: &Bytes) -> Result<ks::Subscription, String> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Err("a JoinGroup protocol without consumer metadata".into());
    }
    let version = buf.get_i16().min(3);
    let s: kp::ConsumerProtocolSubscription = decode(&mut buf, version, "ConsumerProtocolSubscription")?;
    Ok(ks::Subscription {
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned_partitions: s
            .owned_partitions
            .iter()
            .flat_map(|t| partitions_of(t.topic.0.as_str(), &t.partitions))
            .collect(),
        generation: s.generation_id,
    })
}

fn subscription_bytes(s: &ks::Subscription) -> Result<Bytes, String> {
    let mut out = kp::ConsumerProtocolSubscription::default();
    out.topics = s.topics.iter().map(|t| sb(t)).collect();
    out.owned_partitions = by_topic(&s.owned_partitions)
        .into_iter()
        .map(|(t, ps)| {
            let mut tp = kp::consumer_protocol_subscription::TopicPartition::default();
            tp.topic = TopicName(sb(&t));
            tp.partitions = ps;
            tp
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&1i16.to_be_bytes());
    buf.extend_from_slice(&encoded(&out, 1)?);
    Ok(buf.freeze())
}

fn assignment_from(bytes: &Bytes) -> Result<Vec<TopicPartition>, String> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Ok(Vec::new());
    }
    let version = buf.get_i16().min(3);
    let a: kp::ConsumerProtocolAssignment = decode(&mut buf, version, "ConsumerProtocolAssignment")?;
    Ok(a.assigned_partitions.iter().flat_map(|t| partitions_of(t.topic.0.as_str(), &t.partitions)).collect())
}

fn assignment_bytes(partitions: &[TopicPartition]) -> Result<Bytes, String> {
    let mut out = kp::ConsumerProtocolAssignment::default();
    out.assigned_partitions = by_topic(partitions)
        .into_iter()
        .map(|(t, ps)| {
            let mut tp = kp::consumer_protocol_assignment::TopicPartition::default();
            tp.topic = TopicName(sb(&t));
            tp.partitions = ps;
            tp
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    buf.extend_from_slice(&encoded(&out, 0)?);
    Ok(buf.freeze())
}

/// A member's metadata as its JoinGroup carried it.
fn metadata_bytes(metadata: &ks::MemberMetadata) -> Result<Bytes, String> {
    match metadata {
        ks::MemberMetadata::Consumer(subscription) => subscription_bytes(subscription),
        ks::MemberMetadata::Opaque(bytes) => Ok(Bytes::from(bytes.clone())),
        ks::MemberMetadata::Connect(_) => {
            Err("a simulated Connect worker's metadata has no wire form for a real client".into())
        }
    }
}

fn forward(request: Request, assembly: Assembly) -> Plan {
    Plan::Forward { requests: vec![request], assembly }
}

pub fn plan(api: ApiKey, version: i16, body: &mut Bytes, client_id: &str) -> Result<Plan, String> {
    match api {
        ApiKey::JoinGroup => {
            let r: kp::JoinGroupRequest = decode(body, version, "JoinGroup")?;
            // The consumer protocol's metadata is read; any other protocol type's (a real Connect
            // worker's, a schema registry's) goes through as the bytes it is, as the coordinator
            // treats it.
            let protocol_type = ks::ProtocolType::from_name(r.protocol_type.as_str());
            let protocols = r
                .protocols
                .iter()
                .map(|p| {
                    let metadata = match protocol_type {
                        ks::ProtocolType::Consumer => ks::MemberMetadata::Consumer(subscription_from(&p.metadata)?),
                        _ => ks::MemberMetadata::Opaque(p.metadata.to_vec()),
                    };
                    Ok((p.name.to_string(), metadata))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let session_timeout_ms = u64::try_from(r.session_timeout_ms).unwrap_or(0);
            Ok(forward(
                Request::JoinGroup(ks::JoinGroupRequest {
                    group_id: r.group_id.0.to_string(),
                    client_id: client_id.to_string(),
                    member_id: r.member_id.to_string(),
                    group_instance_id: r.group_instance_id.map(|i| i.to_string()),
                    session_timeout_ms,
                    rebalance_timeout_ms: if version >= 1 {
                        u64::try_from(r.rebalance_timeout_ms).unwrap_or(0)
                    } else {
                        session_timeout_ms
                    },
                    protocol_type,
                    protocols,
                }),
                Assembly::JoinGroup,
            ))
        }
        ApiKey::SyncGroup => {
            let r: kp::SyncGroupRequest = decode(body, version, "SyncGroup")?;
            // SyncGroup names its protocol type from v5 on; before, a consumer's assignment is
            // the one that parses as one.
            let consumer = match r.protocol_type.as_ref() {
                Some(t) => t.as_str() == "consumer",
                None => r.assignments.iter().all(|a| assignment_from(&a.assignment).is_ok()),
            };
            let assignments = r
                .assignments
                .iter()
                .map(|a| {
                    let assignment = if consumer {
                        ks::MemberAssignment::Consumer(assignment_from(&a.assignment)?)
                    } else {
                        ks::MemberAssignment::Opaque(a.assignment.to_vec())
                    };
                    Ok((a.member_id.to_string(), assignment))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(forward(
                Request::SyncGroup(ks::SyncGroupRequest {
                    group_id: r.group_id.0.to_string(),
                    generation: r.generation_id,
                    member_id: r.member_id.to_string(),
                    group_instance_id: r.group_instance_id.map(|i| i.to_string()),
                    assignments,
                }),
                Assembly::SyncGroup,
            ))
        }
        ApiKey::Heartbeat => {
            let r: kp::HeartbeatRequest = decode(body, version, "Heartbeat")?;
            Ok(forward(
                Request::Heartbeat(ks::HeartbeatRequest {
                    group_id: r.group_id.0.to_string(),
                    generation: r.generation_id,
                    member_id: r.member_id.to_string(),
                    group_instance_id: r.group_instance_id.map(|i| i.to_string()),
                }),
                Assembly::Heartbeat,
            ))
        }
        ApiKey::LeaveGroup => {
            let r: kp::LeaveGroupRequest = decode(body, version, "LeaveGroup")?;
            // v3+ (KIP-345) leaves several members at once, each answered.
            let members: Vec<(String, Option<String>)> = if version >= 3 {
                r.members
                    .iter()
                    .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
                    .collect()
            } else {
                vec![(r.member_id.to_string(), None)]
            };
            let requests = members
                .iter()
                .map(|(member_id, instance)| {
                    Request::LeaveGroup(ks::LeaveGroupRequest {
                        group_id: r.group_id.0.to_string(),
                        member_id: member_id.clone(),
                        group_instance_id: instance.clone(),
                    })
                })
                .collect();
            Ok(Plan::Forward { requests, assembly: Assembly::LeaveGroup { members, batched: version >= 3 } })
        }
        ApiKey::OffsetCommit => {
            let r: kp::OffsetCommitRequest = decode(body, version, "OffsetCommit")?;
            let asked: Vec<(String, Vec<i32>)> = r
                .topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partitions.iter().map(|p| p.partition_index).collect()))
                .collect();
            let offsets = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (TopicPartition::new(t.name.0.as_str(), p.partition_index), p.committed_offset))
                })
                .collect();
            Ok(forward(
                Request::OffsetCommit(ks::OffsetCommitRequest {
                    group_id: r.group_id.0.to_string(),
                    generation: r.generation_id_or_member_epoch,
                    member_id: r.member_id.to_string(),
                    group_instance_id: r.group_instance_id.map(|i| i.to_string()),
                    offsets,
                }),
                Assembly::OffsetCommit(asked),
            ))
        }
        ApiKey::OffsetFetch => {
            let r: kp::OffsetFetchRequest = decode(body, version, "OffsetFetch")?;
            let asked: Option<Vec<(String, Vec<i32>)>> = r
                .topics
                .as_ref()
                .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
            let partitions =
                asked.iter().flatten().flat_map(|(t, ps)| partitions_of(t, ps).collect::<Vec<_>>()).collect();
            Ok(forward(
                Request::OffsetFetch(ks::OffsetFetchRequest {
                    group_id: r.group_id.0.to_string(),
                    partitions,
                    require_stable: r.require_stable,
                }),
                Assembly::OffsetFetch(asked),
            ))
        }
        other => Err(format!("{other:?} is not a group API")),
    }
}

pub fn assemble(assembly: &Assembly, version: i16, responses: &[Response]) -> Result<BytesMut, String> {
    let unexpected = |r: Option<&Response>| r.map_or("no answer".to_string(), |r| format!("unexpected answer {r}"));
    match assembly {
        Assembly::JoinGroup => {
            let Some(Response::JoinGroup(j)) = responses.first() else { return Err(unexpected(responses.first())) };
            let mut out = kp::JoinGroupResponse::default();
            out.error_code = j.error.code();
            out.generation_id = j.generation;
            if version >= 7 {
                out.protocol_type = Some(sb("consumer"));
                out.protocol_name = j.protocol.as_deref().map(sb);
            } else {
                out.protocol_name = Some(sb(j.protocol.as_deref().unwrap_or("")));
            }
            out.leader = sb(&j.leader);
            out.member_id = sb(&j.member_id);
            out.members = j
                .members
                .iter()
                .map(|(id, instance, metadata)| {
                    let mut m = kp::join_group_response::JoinGroupResponseMember::default();
                    m.member_id = sb(id);
                    if version >= 5 {
                        m.group_instance_id = instance.as_deref().map(sb);
                    }
                    m.metadata = metadata_bytes(metadata)?;
                    Ok(m)
                })
                .collect::<Result<_, String>>()?;
            encoded(&out, version)
        }
        Assembly::SyncGroup => {
            let Some(Response::SyncGroup(s)) = responses.first() else { return Err(unexpected(responses.first())) };
            let mut out = kp::SyncGroupResponse::default();
            out.error_code = s.error.code();
            out.assignment = match &s.assignment {
                _ if !s.error.is_none() => Bytes::new(),
                ks::MemberAssignment::Empty => Bytes::new(),
                ks::MemberAssignment::Consumer(partitions) => assignment_bytes(partitions)?,
                ks::MemberAssignment::Opaque(bytes) => Bytes::from(bytes.clone()),
                ks::MemberAssignment::Connect(_) => {
                    return Err("a simulated Connect worker's assignment has no wire form for a real client".into())
                }
            };
            encoded(&out, version)
        }
        Assembly::Heartbeat => {
            let Some(Response::Heartbeat(h)) = responses.first() else { return Err(unexpected(responses.first())) };
            let mut out = kp::HeartbeatResponse::default();
            out.error_code = h.error.code();
            encoded(&out, version)
        }
        Assembly::LeaveGroup { members, batched } => {
            let mut out = kp::LeaveGroupResponse::default();
            for ((id, instance), response) in members.iter().zip(responses) {
                let Response::LeaveGroup(l) = response else { return Err(unexpected(Some(response))) };
                if *batched {
                    let mut m = kp::leave_group_response::MemberResponse::default();
                    m.member_id = sb(id);
                    m.group_instance_id = instance.as_deref().map(sb);
                    m.error_code = l.error.code();
                    out.members.push(m);
                } else {
                    out.error_code = l.error.code();
                }
            }
            encoded(&out, version)
        }
        Assembly::OffsetCommit(asked) => {
            let Some(Response::OffsetCommit(c)) = responses.first() else { return Err(unexpected(responses.first())) };
            let mut out = kp::OffsetCommitResponse::default();
            for (topic, partitions) in asked {
                let mut t = kp::offset_commit_response::OffsetCommitResponseTopic::default();
                t.name = TopicName(sb(topic));
                for p in partitions {
                    let mut part = kp::offset_commit_response::OffsetCommitResponsePartition::default();
                    part.partition_index = *p;
                    part.error_code = c.error.code();
                    t.partitions.push(part);
                }
                out.topics.push(t);
            }
            encoded(&out, version)
        }
        Assembly::OffsetFetch(asked) => {
            let Some(Response::OffsetFetch(f)) = responses.first() else { return Err(unexpected(responses.first())) };
            let offset_of = |tp: &TopicPartition| f.offsets.iter().find(|(t, _)| t == tp).map_or(-1, |(_, o)| *o);
            let listed: Vec<(String, Vec<i32>)> = match asked {
                Some(asked) => asked.clone(),
                None => by_topic(&f.offsets.iter().map(|(tp, _)| tp.clone()).collect::<Vec<_>>()),
            };
            // UNSTABLE_OFFSET_COMMIT (KIP-447) belongs to a partition, not to the group: Kafka
            // answers it per partition with offset -1 (`OffsetMetadataManager.fetchOffsets`), and
            // clients retry it there. ksim's answer carries one error, so every partition asked
            // gets it.
            let unstable = f.error == ErrorCode::UnstableOffsetCommit;
            let mut out = kp::OffsetFetchResponse::default();
            if version >= 2 && !unstable {
                out.error_code = f.error.code();
            }
            for (topic, partitions) in listed {
                let mut t = kp::offset_fetch_response::OffsetFetchResponseTopic::default();
                t.name = TopicName(sb(&topic));
                for p in partitions {
                    let mut part = kp::offset_fetch_response::OffsetFetchResponsePartition::default();
                    part.partition_index = p;
                    part.committed_offset = offset_of(&TopicPartition::new(topic.as_str(), p));
                    part.metadata = Some(sb(""));
                    // Before v2 the group's error travels on every partition.
                    if version < 2 || unstable {
                        part.error_code = f.error.code();
                    }
                    t.partitions.push(part);
                }
                out.topics.push(t);
            }
            encoded(&out, version)
        }
        _ => Err("not a group API's assembly".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_with_owned_partitions_survives_the_consumer_protocol_bytes() {
        let s = ks::Subscription {
            topics: vec!["orders".into(), "payments".into()],
            owned_partitions: vec![TopicPartition::new("orders", 0), TopicPartition::new("orders", 2)],
            generation: -1,
        };
        let back = subscription_from(&subscription_bytes(&s).expect("encodes")).expect("decodes");
        assert_eq!(back.topics, s.topics);
        assert_eq!(back.owned_partitions, s.owned_partitions);
    }

    #[test]
    fn an_assignment_survives_the_consumer_protocol_bytes_and_an_empty_one_is_nothing() {
        let partitions = vec![TopicPartition::new("orders", 1), TopicPartition::new("payments", 0)];
        assert_eq!(assignment_from(&assignment_bytes(&partitions).expect("encodes")).expect("decodes"), partitions);
        assert!(assignment_from(&Bytes::new()).expect("empty").is_empty());
    }

    #[test]
    fn a_join_group_without_consumer_metadata_is_refused() {
        assert!(subscription_from(&Bytes::from_static(&[0])).is_err());
    }
}
