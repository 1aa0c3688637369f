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
