//! `ksim serve` driven by kafka-protocol-encoded requests over real TCP, no kcat needed: a
//! three-broker cluster answers ApiVersions, Metadata, Produce (acks=all) and Fetch as a Kafka
//! broker does, refuses what it cannot parse as Kafka does, and records the run in its trace.

use bytes::{Buf, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::{self as kp, ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use ksim_live::{ServeOptions, Server};
use ksim_sim::scenario::Scenario;
use ksim_sim::trace::EventKind;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SCENARIO: &str = r#"Scenario(
    title: "live",
    duration_ms: 60000,
    cluster: (brokers: [1, 2, 3]),
    topics: [(name: "orders", partitions: 2, replication_factor: 3)],
)"#;

struct Client {
    stream: TcpStream,
    next_id: i32,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        Client { stream, next_id: 1 }
    }

    /// Send one request; the raw response body (after its header), or `None` if the server
    /// closed the connection.
    fn call<T: Encodable>(&mut self, api: ApiKey, version: i16, request: &T) -> Option<Bytes> {
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = self.next_id;
        header.client_id = Some(StrBytes::from_static_str("serve-test"));
        self.next_id += 1;
        let mut buf = BytesMut::new();
        encode_request_header_into_buffer(&mut buf, &header).expect("header");
        // A version the crate cannot encode this request at goes out with no body.
        let _ = request.encode(&mut buf, version);
        let mut framed = (buf.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&buf);
        self.stream.write_all(&framed).ok()?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).ok()?;
        let mut body = Bytes::from(body);
        let header_version = if api == ApiKey::ApiVersions { 0 } else { api.response_header_version(version) };
        let response_header = ResponseHeader::decode(&mut body, header_version).expect("response header");
        assert_eq!(response_header.correlation_id, header.correlation_id, "answers come in order");
        Some(body)
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

fn record(offset: i64, key: &str, value: &str) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // Without idempotence the batch's base sequence is -1; the crate's encoder keeps records in
        // one batch while `offset - sequence` is constant.
        sequence: offset as i32 - 1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from(key.to_string())),
        value: Some(Bytes::from(value.to_string())),
        headers: IndexMap::new(),
    }
}

#[test]
fn a_real_tcp_client_produces_with_acks_all_and_fetches_its_records_back() {
    let scenario = Scenario::parse("live.ron", SCENARIO).expect("parses");
    let server = Server::bind(&scenario, "live", &ServeOptions { base_port: 0 }).expect("binds");
    let bootstrap = server.bootstrap();
    let addrs: Vec<String> = bootstrap.split(',').map(str::to_string).collect();
    assert_eq!(addrs.len(), 3, "{bootstrap}");
    let stop = server.stop_handle();
    let running = std::thread::spawn(move || server.run());

    // ApiVersions advertises exactly what ksim implements.
    let mut c = Client::connect(&addrs[0]);
    let mut body = c.call(ApiKey::ApiVersions, 3, &kp::ApiVersionsRequest::default()).expect("answered");
    let versions = kp::ApiVersionsResponse::decode(&mut body, 3).expect("decodes");
    assert_eq!(versions.error_code, 0);
    let fetch = versions.api_keys.iter().find(|k| k.api_key == ApiKey::Fetch as i16).expect("Fetch advertised");
    assert_eq!((fetch.min_version, fetch.max_version), (4, 12));
    assert!(versions.api_keys.iter().all(|k| k.api_key != ApiKey::CreateTopics as i16), "not implemented");
    let range = |api: ApiKey| {
        versions.api_keys.iter().find(|k| k.api_key == api as i16).map(|k| (k.min_version, k.max_version))
    };
    // The transactional APIs up to transaction version 1 (before KIP-890 part 2); the brokers'
    // own AddPartitionsToTxn v4+ and WriteTxnMarkers are not offered to clients.
    assert_eq!(range(ApiKey::AddPartitionsToTxn), Some((0, 3)));
    assert_eq!(range(ApiKey::EndTxn), Some((0, 4)));
    assert_eq!(range(ApiKey::WriteTxnMarkers), None);

    // Metadata: wait for the controller to elect leaders; brokers advertise the real ports.
    let deadline = Instant::now() + Duration::from_secs(20);
    let metadata = loop {
        let mut body = c.call(ApiKey::Metadata, 12, &kp::MetadataRequest::default()).expect("answered");
        let m = kp::MetadataResponse::decode(&mut body, 12).expect("decodes");
        let orders = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders"));
        if orders.is_some_and(|t| t.partitions.len() == 2 && t.partitions.iter().all(|p| p.leader_id.0 >= 0)) {
            break m;
        }
        assert!(Instant::now() < deadline, "no leaders within 20 s: {m:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let advertised: Vec<String> = metadata.brokers.iter().map(|b| format!("{}:{}", b.host.as_str(), b.port)).collect();
    for a in &addrs {
        assert!(advertised.contains(a), "{a} advertised in {advertised:?}");
    }
    let orders = metadata.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders")).unwrap();
    let p0 = orders.partitions.iter().find(|p| p.partition_index == 0).expect("partition 0");
    let leader = metadata.brokers.iter().find(|b| b.node_id == p0.leader_id).expect("leader listed");
    let mut to_leader = Client::connect(&format!("{}:{}", leader.host.as_str(), leader.port));

    // Produce two records with acks=all (v9, flexible), CRC computed by the encoder.
    let mut records = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::Gzip };
    RecordBatchEncoder::encode(&mut records, &[record(0, "k1", "hello"), record(1, "k2", "world")], &options)
        .expect("batch");
    let mut produce = kp::ProduceRequest::default();
    produce.acks = -1;
    produce.timeout_ms = 10_000;
    let mut partition = kp::produce_request::PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(records.freeze());
    let mut topic = kp::produce_request::TopicProduceData::default();
    topic.name = name("orders");
    topic.partition_data.push(partition);
    produce.topic_data.push(topic);
    let mut body = to_leader.call(ApiKey::Produce, 9, &produce).expect("answered");
    let produced = kp::ProduceResponse::decode(&mut body, 9).expect("decodes");
    let answer = &produced.responses[0].partition_responses[0];
    assert_eq!((answer.error_code, answer.base_offset), (0, 0), "{produced:?}");

    // Fetch them back from offset 0 (v12: topics by name).
    let mut fetch = kp::FetchRequest::default();
    fetch.replica_id = kp::BrokerId(-1);
    fetch.max_wait_ms = 100;
    fetch.max_bytes = 1 << 20;
    fetch.session_epoch = -1;
    let mut fp = kp::fetch_request::FetchPartition::default();
    fp.partition = 0;
    fp.fetch_offset = 0;
    fp.current_leader_epoch = p0.leader_epoch;
    fp.partition_max_bytes = 1 << 20;
    let mut ft = kp::fetch_request::FetchTopic::default();
    ft.topic = name("orders");
    ft.partitions.push(fp);
    fetch.topics.push(ft);
    let mut body = to_leader.call(ApiKey::Fetch, 12, &fetch).expect("answered");
    let fetched = kp::FetchResponse::decode(&mut body, 12).expect("decodes");
    let data = &fetched.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    assert_eq!(data.high_watermark, 2, "acks=all answered after every ISR member had both");
    let mut bytes = data.records.clone().expect("records");
    let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("valid batches, CRC checked");
    let got: Vec<(i64, String)> = sets
        .iter()
        .flat_map(|s| &s.records)
        .map(|r| (r.offset, String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()))
        .collect();
    assert_eq!(got, vec![(0, "hello".to_string()), (1, "world".to_string())]);

    // An ApiVersions version ksim does not know: UNSUPPORTED_VERSION with the ranges, at v0.
    let mut body = c.call(ApiKey::ApiVersions, 99, &kp::ApiVersionsRequest::default()).expect("answered");
    let refused = kp::ApiVersionsResponse::decode(&mut body, 0).expect("decodes at v0");
    assert_eq!(refused.error_code, 35);
    assert!(!refused.api_keys.is_empty());
    assert!(!body.has_remaining());

    // A Fetch version ksim does not implement (v13 names topics by id): Kafka closes the connection.
    assert!(c.call(ApiKey::Fetch, 13, &kp::FetchRequest::default()).is_none(), "connection closed");

    stop.stop();
    let outcome = running.join().expect("server thread").expect("a trace");
    let events = &outcome.trace.events;
    let said = |text: &str| events.iter().any(|e| matches!(&e.kind, EventKind::App(line) if line.contains(text)));
    assert!(said("ApiVersions v3: answered"), "the trace records the ApiVersions answer");
    assert!(said("Fetch v13 is not supported"), "the trace says why the connection closed");
    assert!(
        events.iter().any(|e| matches!(&e.kind, EventKind::Send { summary, .. } if summary.contains("Produce orders-0 acks=all 2 record(s)"))),
        "the client's Produce is on the trace like any client's"
    );
    assert!(outcome.trace.header.clients.len() >= 2, "each connection is a client node");
}

// ---- Transactions and headers ------------------------------------------------------------------

const TXN_SCENARIO: &str = r#"Scenario(
    title: "live transactions",
    duration_ms: 60000,
    cluster: (
        brokers: [1, 2, 3],
        configs: {"offsets.topic.num.partitions": 1, "transaction.state.log.num.partitions": 1},
    ),
    topics: [(name: "orders", partitions: 1, replication_factor: 3)],
)"#;

const TXN_ID: &str = "live-txn";

/// Retry `attempt` every 100 ms until it gives an answer, for at most 20 s.
fn until<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(answer) = attempt() {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: no answer within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(
    scenario: &str,
) -> (Vec<String>, ksim_live::StopHandle, std::thread::JoinHandle<Result<ksim_sim::Outcome, String>>) {
    let scenario = Scenario::parse("live.ron", scenario).expect("parses");
    let server = Server::bind(&scenario, "live", &ServeOptions { base_port: 0 }).expect("binds");
    let addrs = server.bootstrap().split(',').map(str::to_string).collect();
    let stop = server.stop_handle();
    (addrs, stop, std::thread::spawn(move || server.run()))
}

/// The address of `orders-0`'s leader, and its leader epoch, once there is one.
fn orders_leader(c: &mut Client) -> (String, i32) {
    until("a leader for orders-0", || {
        let mut body = c.call(ApiKey::Metadata, 12, &kp::MetadataRequest::default()).expect("answered");
        let m = kp::MetadataResponse::decode(&mut body, 12).expect("decodes");
        let orders = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders"))?;
        let p0 = orders.partitions.iter().find(|p| p.partition_index == 0 && p.leader_id.0 >= 0)?;
        let b = m.brokers.iter().find(|b| b.node_id == p0.leader_id)?;
        Some((format!("{}:{}", b.host.as_str(), b.port), p0.leader_epoch))
    })
}

/// FindCoordinator v4 (batched keys, KIP-699) for a group (0) or a transactional id (1).
fn coordinator(c: &mut Client, key: &str, key_type: i8) -> String {
    until("a coordinator", || {
        let mut r = kp::FindCoordinatorRequest::default();
        r.key_type = key_type;
        r.coordinator_keys = vec![StrBytes::from_string(key.into())];
        let mut body = c.call(ApiKey::FindCoordinator, 4, &r).expect("answered");
        let f = kp::FindCoordinatorResponse::decode(&mut body, 4).expect("decodes");
        let found = &f.coordinators[0];
        assert_eq!(found.key.as_str(), key);
        (found.error_code == 0).then(|| format!("{}:{}", found.host.as_str(), found.port))
    })
}

/// Retry a transactional call while the coordinator answers with a retriable error
/// (COORDINATOR_LOAD_IN_PROGRESS 14, COORDINATOR_NOT_AVAILABLE 15, NOT_COORDINATOR 16,
/// CONCURRENT_TRANSACTIONS 51: the previous transaction's markers are still being written).
fn retriable(error: i16) -> bool {
    matches!(error, 14 | 15 | 16 | 51)
}

fn txn_record(offset: i64, sequence: i32, pid: i64, epoch: i16, value: &str, headers: &[(&str, &str)]) -> Record {
    let mut r = record(offset, "k", value);
    r.transactional = true;
    r.producer_id = pid;
    r.producer_epoch = epoch;
    r.sequence = sequence;
    r.headers =
        headers.iter().map(|(k, v)| (StrBytes::from_string(k.to_string()), Some(Bytes::from(v.to_string())))).collect();
    r
}

fn produce_request(transactional_id: Option<&str>, records: &[Record]) -> kp::ProduceRequest {
    let mut bytes = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut bytes, records, &options).expect("batch");
    let mut produce = kp::ProduceRequest::default();
    produce.transactional_id = transactional_id.map(|t| kp::TransactionalId(StrBytes::from_string(t.into())));
    produce.acks = -1;
    produce.timeout_ms = 10_000;
    let mut partition = kp::produce_request::PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(bytes.freeze());
    let mut topic = kp::produce_request::TopicProduceData::default();
    topic.name = name("orders");
    topic.partition_data.push(partition);
    produce.topic_data.push(topic);
    produce
}

fn produce(c: &mut Client, request: &kp::ProduceRequest) -> kp::produce_response::PartitionProduceResponse {
    let mut body = c.call(ApiKey::Produce, 9, request).expect("answered");
    let mut produced = kp::ProduceResponse::decode(&mut body, 9).expect("decodes");
    produced.responses.remove(0).partition_responses.remove(0)
}

fn fetch(c: &mut Client, epoch: i32, isolation_level: i8) -> kp::fetch_response::PartitionData {
    let mut fetch = kp::FetchRequest::default();
    fetch.replica_id = kp::BrokerId(-1);
    fetch.max_wait_ms = 0;
    fetch.max_bytes = 1 << 20;
    fetch.session_epoch = -1;
    fetch.isolation_level = isolation_level;
    let mut fp = kp::fetch_request::FetchPartition::default();
    fp.partition = 0;
    fp.fetch_offset = 0;
    fp.current_leader_epoch = epoch;
    fp.partition_max_bytes = 1 << 20;
    let mut ft = kp::fetch_request::FetchTopic::default();
    ft.topic = name("orders");
    ft.partitions.push(fp);
    fetch.topics.push(ft);
    let mut body = c.call(ApiKey::Fetch, 12, &fetch).expect("answered");
    let mut fetched = kp::FetchResponse::decode(&mut body, 12).expect("decodes");
    let data = fetched.responses.remove(0).partitions.remove(0);
    assert_eq!(data.error_code, 0, "{data:?}");
    data
}

fn latest(c: &mut Client, epoch: i32, isolation_level: i8) -> i64 {
    let mut r = kp::ListOffsetsRequest::default();
    r.replica_id = kp::BrokerId(-1);
    r.isolation_level = isolation_level;
    let mut p = kp::list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = 0;
    p.current_leader_epoch = epoch;
    p.timestamp = -1;
    let mut t = kp::list_offsets_request::ListOffsetsTopic::default();
    t.name = name("orders");
    t.partitions.push(p);
    r.topics.push(t);
    let mut body = c.call(ApiKey::ListOffsets, 7, &r).expect("answered");
    let l = kp::ListOffsetsResponse::decode(&mut body, 7).expect("decodes");
    let p = &l.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

/// A fetched record: its offset, whether it is a control record, its value (or the control
/// type), its headers.
type Seen = (i64, bool, String, Vec<(String, String)>);

/// Every record in a Fetch answer.
fn records_of(data: &kp::fetch_response::PartitionData) -> Vec<Seen> {
    let mut bytes = data.records.clone().expect("records");
    let sets = RecordBatchDecoder::decode_all(&mut bytes).expect("valid batches, CRC checked");
    sets.iter()
        .flat_map(|s| &s.records)
        .map(|r| {
            let text = if r.control {
                // The control record's key: version 0, then the type (0 abort, 1 commit).
                let key = r.key.clone().expect("a control key");
                match i16::from_be_bytes([key[2], key[3]]) {
                    0 => "ABORT".to_string(),
                    1 => "COMMIT".to_string(),
                    other => format!("control type {other}"),
                }
            } else {
                String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()
            };
            let headers = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8(v.clone().unwrap().to_vec()).unwrap()))
                .collect();
            (r.offset, r.control, text, headers)
        })
        .collect()
}

/// OffsetFetch v7 for group `pipeline`'s orders-0, with require_stable.
fn offset_fetch(group: &mut Client) -> kp::OffsetFetchResponse {
    let mut r = kp::OffsetFetchRequest::default();
    r.group_id = kp::GroupId(StrBytes::from_static_str("pipeline"));
    let mut t = kp::offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = name("orders");
    t.partition_indexes = vec![0];
    r.topics = Some(vec![t]);
    r.require_stable = true;
    let mut body = group.call(ApiKey::OffsetFetch, 7, &r).expect("answered");
    kp::OffsetFetchResponse::decode(&mut body, 7).expect("decodes")
}

#[test]
fn a_transactional_producer_commits_and_aborts_and_read_committed_sees_only_the_committed() {
    let (addrs, stop, running) = start(TXN_SCENARIO);
    let mut c = Client::connect(&addrs[0]);
    let (leader, leader_epoch) = orders_leader(&mut c);
    let mut to_leader = Client::connect(&leader);

    // FindCoordinator with key type 1 (transaction): the first ask creates __transaction_state.
    let mut txn = Client::connect(&coordinator(&mut c, TXN_ID, 1));
    let (pid, epoch) = until("a producer id", || {
        let mut r = kp::InitProducerIdRequest::default();
        r.transactional_id = Some(kp::TransactionalId(StrBytes::from_static_str(TXN_ID)));
        r.transaction_timeout_ms = 60_000;
        let mut body = txn.call(ApiKey::InitProducerId, 5, &r).expect("answered");
        let i = kp::InitProducerIdResponse::decode(&mut body, 5).expect("decodes");
        assert!(i.error_code == 0 || retriable(i.error_code), "{i:?}");
        (i.error_code == 0).then_some((i.producer_id.0, i.producer_epoch))
    });
    assert!(pid >= 0 && epoch >= 0);

    let add_partition = |txn: &mut Client| {
        until("AddPartitionsToTxn", || {
            let mut r = kp::AddPartitionsToTxnRequest::default();
            r.v3_and_below_transactional_id = kp::TransactionalId(StrBytes::from_static_str(TXN_ID));
            r.v3_and_below_producer_id = kp::ProducerId(pid);
            r.v3_and_below_producer_epoch = epoch;
            let mut t = kp::add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
            t.name = name("orders");
            t.partitions = vec![0];
            r.v3_and_below_topics.push(t);
            let mut body = txn.call(ApiKey::AddPartitionsToTxn, 3, &r).expect("answered");
            let a = kp::AddPartitionsToTxnResponse::decode(&mut body, 3).expect("decodes");
            let result = &a.results_by_topic_v3_and_below[0];
            assert_eq!((result.name.0.as_str(), result.results_by_partition[0].partition_index), ("orders", 0));
            let error = result.results_by_partition[0].partition_error_code;
            assert!(error == 0 || retriable(error), "{a:?}");
            (error == 0).then_some(())
        })
    };
    let end = |txn: &mut Client, committed: bool| {
        let mut r = kp::EndTxnRequest::default();
        r.transactional_id = kp::TransactionalId(StrBytes::from_static_str(TXN_ID));
        r.producer_id = kp::ProducerId(pid);
        r.producer_epoch = epoch;
        r.committed = committed;
        let mut body = txn.call(ApiKey::EndTxn, 4, &r).expect("answered");
        let e = kp::EndTxnResponse::decode(&mut body, 4).expect("decodes");
        assert_eq!(e.error_code, 0, "{e:?}");
    };

    // A transaction that commits: two records (offsets 0, 1), its marker at 2.
    add_partition(&mut txn);
    let headers = [("traceparent", "00-4bf92f-01"), ("source", "live")];
    let records = [txn_record(0, 0, pid, epoch, "c1", &headers), txn_record(1, 1, pid, epoch, "c2", &[])];
    let answer = produce(&mut to_leader, &produce_request(Some(TXN_ID), &records));
    assert_eq!((answer.error_code, answer.base_offset), (0, 0), "{answer:?}");
    end(&mut txn, true);

    // One that aborts: a1 at 3, its marker at 4.
    add_partition(&mut txn);
    let answer = produce(&mut to_leader, &produce_request(Some(TXN_ID), &[txn_record(0, 2, pid, epoch, "a1", &[])]));
    assert_eq!((answer.error_code, answer.base_offset), (0, 3), "{answer:?}");
    end(&mut txn, false);

    // One that commits again, with the consumer's offsets (sendOffsetsToTransaction): c3 at 5,
    // marker at 6; the group's offset for orders-0 becomes 5.
    add_partition(&mut txn);
    let answer = produce(&mut to_leader, &produce_request(Some(TXN_ID), &[txn_record(0, 3, pid, epoch, "c3", &[])]));
    assert_eq!((answer.error_code, answer.base_offset), (0, 5), "{answer:?}");
    until("AddOffsetsToTxn", || {
        let mut r = kp::AddOffsetsToTxnRequest::default();
        r.transactional_id = kp::TransactionalId(StrBytes::from_static_str(TXN_ID));
        r.producer_id = kp::ProducerId(pid);
        r.producer_epoch = epoch;
        r.group_id = kp::GroupId(StrBytes::from_static_str("pipeline"));
        let mut body = txn.call(ApiKey::AddOffsetsToTxn, 4, &r).expect("answered");
        let a = kp::AddOffsetsToTxnResponse::decode(&mut body, 4).expect("decodes");
        assert!(a.error_code == 0 || retriable(a.error_code), "{a:?}");
        (a.error_code == 0).then_some(())
    });
    let mut group = Client::connect(&coordinator(&mut c, "pipeline", 0));
    until("TxnOffsetCommit", || {
        let mut r = kp::TxnOffsetCommitRequest::default();
        r.transactional_id = kp::TransactionalId(StrBytes::from_static_str(TXN_ID));
        r.group_id = kp::GroupId(StrBytes::from_static_str("pipeline"));
        r.producer_id = kp::ProducerId(pid);
        r.producer_epoch = epoch;
        let mut p = kp::txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
        p.partition_index = 0;
        p.committed_offset = 5;
        let mut t = kp::txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
        t.name = name("orders");
        t.partitions.push(p);
        r.topics.push(t);
        let mut body = group.call(ApiKey::TxnOffsetCommit, 3, &r).expect("answered");
        let o = kp::TxnOffsetCommitResponse::decode(&mut body, 3).expect("decodes");
        let error = o.topics[0].partitions[0].error_code;
        assert!(error == 0 || retriable(error), "{o:?}");
        (error == 0).then_some(())
    });
    // Until the transaction commits, the offset is pending: OffsetFetch with require_stable
    // (KIP-447) answers UNSTABLE_OFFSET_COMMIT (88) on the partition, not on the group, as
    // Kafka does (`OffsetMetadataManager.fetchOffsets`); librdkafka retries it there.
    let o = offset_fetch(&mut group);
    assert_eq!(o.error_code, 0, "{o:?}");
    let p = &o.topics[0].partitions[0];
    assert_eq!((p.error_code, p.committed_offset), (88, -1), "{o:?}");
    end(&mut txn, true);

    // read_committed, once the last marker is below the high watermark: everything up to the
    // LSO (7), the aborted transaction listed so the client drops a1, the markers as control
    // batches.
    let committed = until("the last stable offset at 7", || {
        let data = fetch(&mut to_leader, leader_epoch, 1);
        (data.last_stable_offset == 7).then_some(data)
    });
    assert_eq!(committed.high_watermark, 7);
    let aborted: Vec<(i64, i64)> = committed
        .aborted_transactions
        .as_ref()
        .expect("read_committed answers list aborted transactions")
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    assert_eq!(aborted, vec![(pid, 3)]);
    let got = records_of(&committed);
    let summary: Vec<(i64, &str)> = got.iter().map(|(o, _, v, _)| (*o, v.as_str())).collect();
    assert_eq!(summary, vec![(0, "c1"), (1, "c2"), (2, "COMMIT"), (3, "a1"), (4, "ABORT"), (5, "c3"), (6, "COMMIT")]);
    assert!(
        got.iter().all(|(_, control, v, _)| *control == (v == "COMMIT" || v == "ABORT")),
        "markers are control records"
    );
    let expected_headers =
        vec![("traceparent".to_string(), "00-4bf92f-01".to_string()), ("source".to_string(), "live".to_string())];
    assert_eq!(got[0].3, expected_headers, "headers survive the round trip, in order");
    // What a read_committed client keeps (`CompletedFetch`'s aborted-transaction filter): the
    // producer's batches from an aborted transaction's first offset to its ABORT marker go.
    let kept: Vec<&str> = got
        .iter()
        .filter(|(offset, control, _, _)| !control && !(3..4).contains(offset))
        .map(|(_, _, v, _)| v.as_str())
        .collect();
    assert_eq!(kept, vec!["c1", "c2", "c3"]);

    // The group's offset, committed with the transaction (require_stable: KIP-447).
    let offset = until("the transactional offset commit", || {
        let o = offset_fetch(&mut group);
        let p = &o.topics[0].partitions[0];
        (p.error_code == 0).then_some(p.committed_offset)
    });
    assert_eq!(offset, 5);

    // A transaction left open: o1 at 7 holds the LSO there while the high watermark moves on.
    add_partition(&mut txn);
    let answer = produce(&mut to_leader, &produce_request(Some(TXN_ID), &[txn_record(0, 4, pid, epoch, "o1", &[])]));
    assert_eq!((answer.error_code, answer.base_offset), (0, 7), "{answer:?}");
    let uncommitted = until("o1 below the high watermark", || {
        let data = fetch(&mut to_leader, leader_epoch, 0);
        (data.high_watermark == 8).then_some(data)
    });
    assert!(uncommitted.aborted_transactions.is_none(), "read_uncommitted gets no aborted list");
    let everything: Vec<String> = records_of(&uncommitted).into_iter().map(|(_, _, v, _)| v).collect();
    assert_eq!(
        everything,
        vec!["c1", "c2", "COMMIT", "a1", "ABORT", "c3", "COMMIT", "o1"],
        "read_uncommitted sees all"
    );
    let committed = fetch(&mut to_leader, leader_epoch, 1);
    assert_eq!((committed.high_watermark, committed.last_stable_offset), (8, 7));
    assert!(records_of(&committed).iter().all(|(offset, ..)| *offset < 7), "nothing at or past the LSO");
    assert_eq!(latest(&mut to_leader, leader_epoch, 1), 7, "ListOffsets read_committed: the LSO");
    assert_eq!(latest(&mut to_leader, leader_epoch, 0), 8, "ListOffsets read_uncommitted: the high watermark");
    end(&mut txn, false);

    // A fenced epoch: EndTxn v1 gets INVALID_PRODUCER_EPOCH (47), v4 PRODUCER_FENCED (90).
    for (version, expected) in [(1, 47), (4, 90)] {
        let mut r = kp::EndTxnRequest::default();
        r.transactional_id = kp::TransactionalId(StrBytes::from_static_str(TXN_ID));
        r.producer_id = kp::ProducerId(pid);
        r.producer_epoch = epoch - 1;
        r.committed = true;
        let error = until("EndTxn with an old epoch", || {
            let mut body = txn.call(ApiKey::EndTxn, version, &r).expect("answered");
            let e = kp::EndTxnResponse::decode(&mut body, version).expect("decodes");
            (!retriable(e.error_code)).then_some(e.error_code)
        });
        assert_eq!(error, expected, "EndTxn v{version}");
    }

    // kafka-transactions.sh's questions, answered from the coordinator's memory.
    let mut r = kp::DescribeTransactionsRequest::default();
    r.transactional_ids = vec![kp::TransactionalId(StrBytes::from_static_str(TXN_ID))];
    // The abort's markers are written after EndTxn's answer (PrepareAbort), then CompleteAbort.
    let d = until("the abort complete", || {
        let mut body = txn.call(ApiKey::DescribeTransactions, 0, &r).expect("answered");
        let d = kp::DescribeTransactionsResponse::decode(&mut body, 0).expect("decodes");
        (d.transaction_states[0].transaction_state.as_str() != "PrepareAbort").then_some(d)
    });
    let state = &d.transaction_states[0];
    assert_eq!(
        (state.error_code, state.transaction_state.as_str(), state.producer_id.0, state.producer_epoch),
        (0, "CompleteAbort", pid, epoch),
        "{d:?}"
    );
    assert_eq!(state.transaction_timeout_ms, 60_000);
    assert!(state.topics.is_empty(), "a finished transaction has no partitions");
    let coordinator_addr = txn.stream.peer_addr().expect("peer").to_string();
    let other = addrs.iter().find(|a| **a != coordinator_addr).expect("three brokers");
    let mut body = Client::connect(other).call(ApiKey::DescribeTransactions, 0, &r).expect("answered");
    let d = kp::DescribeTransactionsResponse::decode(&mut body, 0).expect("decodes");
    assert_eq!(d.transaction_states[0].error_code, 16, "NOT_COORDINATOR from another broker");
    let mut r = kp::ListTransactionsRequest::default();
    r.state_filters = vec![StrBytes::from_static_str("CompleteAbort"), StrBytes::from_static_str("Bogus")];
    r.duration_filter = -1;
    let mut body = txn.call(ApiKey::ListTransactions, 1, &r).expect("answered");
    let l = kp::ListTransactionsResponse::decode(&mut body, 1).expect("decodes");
    let listed: Vec<(&str, i64, &str)> = l
        .transaction_states
        .iter()
        .map(|t| (t.transactional_id.0.as_str(), t.producer_id.0, t.transaction_state.as_str()))
        .collect();
    assert_eq!((l.error_code, listed), (0, vec![(TXN_ID, pid, "CompleteAbort")]));
    assert_eq!(l.unknown_state_filters, vec![StrBytes::from_static_str("Bogus")]);

    stop.stop();
    let outcome = running.join().expect("server thread").expect("a trace");
    let sent = |text: &str| {
        outcome
            .trace
            .events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Send { summary, .. } if summary.contains(text)))
    };
    assert!(sent("AddPartitionsToTxn"), "the client's transactional calls are on the trace");
    assert!(sent("EndTxn"));
    assert!(sent("TxnOffsetCommit"));
}

#[test]
fn headers_travel_both_ways_and_a_header_that_is_not_text_is_refused() {
    let (addrs, stop, running) = start(SCENARIO);
    let mut c = Client::connect(&addrs[0]);
    let (leader, leader_epoch) = orders_leader(&mut c);
    let mut to_leader = Client::connect(&leader);

    let mut with_headers = record(0, "k", "v");
    with_headers.headers.insert(StrBytes::from_static_str("content-type"), Some(Bytes::from_static(b"text/plain")));
    with_headers.headers.insert(StrBytes::from_static_str("empty"), Some(Bytes::new()));
    let answer = produce(&mut to_leader, &produce_request(None, &[with_headers]));
    assert_eq!((answer.error_code, answer.base_offset), (0, 0), "{answer:?}");

    // A header value that is not UTF-8: INVALID_RECORD (87), the reason in the error message.
    let mut binary = record(0, "k", "v");
    binary.headers.insert(StrBytes::from_static_str("blob"), Some(Bytes::from_static(&[0xff, 0x00])));
    let answer = produce(&mut to_leader, &produce_request(None, &[binary]));
    assert_eq!(answer.error_code, 87, "{answer:?}");
    let message = answer.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("\"blob\"") && message.contains("not UTF-8"), "{message}");
    // A null header value: refused the same way.
    let mut null = record(0, "k", "v");
    null.headers.insert(StrBytes::from_static_str("gone"), None);
    assert_eq!(produce(&mut to_leader, &produce_request(None, &[null])).error_code, 87);

    let data = until("the record below the high watermark", || {
        let data = fetch(&mut to_leader, leader_epoch, 0);
        (data.high_watermark == 1).then_some(data)
    });
    let got = records_of(&data);
    assert_eq!(got.len(), 1, "the refused records were not appended");
    assert_eq!(
        got[0].3,
        vec![("content-type".to_string(), "text/plain".to_string()), ("empty".to_string(), String::new())]
    );

    stop.stop();
    let outcome = running.join().expect("server thread").expect("a trace");
    let said = |text: &str| {
        outcome.trace.events.iter().any(|e| matches!(&e.kind, EventKind::App(line) if line.contains(text)))
    };
    assert!(said("refused INVALID_RECORD"), "the trace says why the record was refused");
}

/// `ksim serve --tui` follows the run through `Server::follow`: the header first, then the
/// events as they are recorded, in order, and together the whole trace the run returns.
#[test]
fn a_follower_gets_the_header_then_every_event_in_order() {
    let scenario = Scenario::parse("live.ron", SCENARIO).expect("parses");
    let mut server = Server::bind(&scenario, "live", &ServeOptions { base_port: 0 }).expect("binds");
    let feed = server.follow();
    let stop = server.stop_handle();
    let running = std::thread::spawn(move || server.run());
    let header = match feed.recv_timeout(std::time::Duration::from_secs(30)).expect("a header") {
        ksim_live::Feed::Header { header, controllers } => {
            assert!(!controllers.is_empty());
            header
        }
        ksim_live::Feed::Events(_) => panic!("the header comes first"),
    };
    assert_eq!(header.brokers.len(), 3);
    // Let the brokers register and elect before stopping.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stop.stop();
    let outcome = running.join().expect("joins").expect("runs");
    let mut events = Vec::new();
    while let Ok(ksim_live::Feed::Events(more)) = feed.try_recv() {
        events.extend(more);
    }
    assert!(!events.is_empty());
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    assert_eq!(events[..], outcome.trace.events[..events.len()], "a prefix of the run's trace");
}
