//! Record batches on the wire (format v2, `DefaultRecordBatch` in Kafka) to and from ksim's
//! [`RecordBatch`].
//!
//! Decoding checks each batch's CRC-32C and decompresses it (gzip, snappy, lz4, zstd) through the
//! `kafka-protocol` crate; a batch that fails is CORRUPT_MESSAGE, as Kafka's
//! `LogValidator`/`DefaultRecordBatch.ensureValid` answers.
//!
//! ksim's records hold text, so a learner can read them in the trace and ksim's own clients,
//! Connect's transforms and the checker compare them as strings. A key, a value or a header
//! value that is not UTF-8 is therefore refused with INVALID_RECORD (and the reason in the
//! Produce response's error message, v8+, and on the trace), never escaped: an escape would hand
//! a consumer different bytes from the ones produced unless every value were escaped and
//! unescaped again, and the trace would show escapes no client wrote. Refusing is what Kafka
//! does with a record its broker cannot accept (`LogValidator`'s INVALID_RECORD), so the client
//! reports it as it would any such record. A header with a null value (Kafka allows one) is
//! refused the same way: ksim's header values are strings, and an empty string would be a
//! different header. Header keys are strings in Kafka too (UTF-8, `DefaultRecord.readFrom`).
//!
//! Headers keep their order both ways. One limit comes from the `kafka-protocol` crate: it holds
//! a record's headers in a map, so a key repeated within one record (KIP-82 allows it) keeps one
//! entry, in the first one's place with the last one's value, both when a batch is decoded and
//! when ksim's records are encoded.

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use ksim_cluster::error::ErrorCode;
use ksim_cluster::record::{self as ksim, ControlType, RecordBatch};

/// Why a produced batch is refused: the error for the partition and a line for the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub error: ErrorCode,
    pub reason: String,
}

/// The batches of one partition's `records` field in a Produce request.
pub fn decode_produced(bytes: &Bytes) -> Result<Vec<RecordBatch>, Refused> {
    let mut buf = bytes.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf)
        .map_err(|e| Refused { error: ErrorCode::CorruptMessage, reason: format!("record batch: {e}") })?;
    let mut batches = Vec::new();
    for set in sets {
        let Some(first) = set.records.first() else { continue };
        if first.control {
            // Kafka: "Control records are not allowed from clients" (LogValidator).
            return Err(Refused { error: ErrorCode::InvalidRecord, reason: "a client sent a control batch".into() });
        }
        let mut records = Vec::with_capacity(set.records.len());
        for r in &set.records {
            let mut headers = Vec::with_capacity(r.headers.len());
            for (key, value) in &r.headers {
                let Some(value) = text(value, &format!("header {:?}'s value", key.as_str()))? else {
                    return Err(Refused {
                        error: ErrorCode::InvalidRecord,
                        reason: format!(
                            "ksim keeps header values as text: this record's header {:?} is null",
                            key.as_str()
                        ),
                    });
                };
                headers.push((key.to_string(), value));
            }
            records.push(ksim::Record { key: text(&r.key, "key")?, value: text(&r.value, "value")?, headers });
        }
        let mut batch = RecordBatch::new_unassigned(
            first.producer_id,
            first.producer_epoch,
            first.sequence,
            u64::try_from(first.timestamp).unwrap_or(0),
            records,
        );
        batch.is_transactional = first.transactional;
        batches.push(batch);
    }
    Ok(batches)
}

fn text(bytes: &Option<Bytes>, what: &str) -> Result<Option<String>, Refused> {
    match bytes {
        None => Ok(None),
        Some(b) => String::from_utf8(b.to_vec()).map(Some).map_err(|_| Refused {
            error: ErrorCode::InvalidRecord,
            reason: format!("ksim keeps records as text: this record's {what} is not UTF-8"),
        }),
    }
}

/// ksim's batches as a Fetch response's `records` field.
pub fn encode_fetched(batches: &[RecordBatch]) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    for batch in batches {
        let records: Vec<Record> =
            batch.records_with_offsets().map(|(offset, record)| to_wire(batch, offset, record)).collect();
        if records.is_empty() {
            continue;
        }
        RecordBatchEncoder::encode(&mut buf, &records, &options).map_err(|e| e.to_string())?;
    }
    Ok(buf.freeze())
}

fn to_wire(batch: &RecordBatch, offset: i64, record: &ksim::Record) -> Record {
    // The crate keeps records in one batch while `offset - sequence` stays the same; the wire
    // carries only the batch's base sequence (-1 without idempotence), so counting on from it
    // keeps ksim's batch whole.
    let sequence = batch.base_sequence.wrapping_add((offset - batch.base_offset) as i32);
    let (key, value) = match batch.control {
        // A control record: key (version 0, type: 0 abort, 1 commit), value (version 0,
        // coordinator epoch), as Kafka's `EndTransactionMarker` writes them.
        Some(marker) => {
            let kind: i16 = match marker.control_type {
                ControlType::Abort => 0,
                ControlType::Commit => 1,
            };
            let mut key = Vec::with_capacity(4);
            key.extend_from_slice(&0i16.to_be_bytes());
            key.extend_from_slice(&kind.to_be_bytes());
            let mut value = Vec::with_capacity(6);
            value.extend_from_slice(&0i16.to_be_bytes());
            value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
            (Some(Bytes::from(key)), Some(Bytes::from(value)))
        }
        None => (
            record.key.as_ref().map(|k| Bytes::from(k.clone().into_bytes())),
            record.value.as_ref().map(|v| Bytes::from(v.clone().into_bytes())),
        ),
    };
    Record {
        transactional: batch.is_transactional,
        control: batch.control.is_some(),
        delete_horizon: batch.delete_horizon_ms.is_some(),
        partition_leader_epoch: batch.leader_epoch,
        producer_id: batch.producer_id,
        producer_epoch: batch.producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence,
        timestamp: i64::try_from(batch.timestamp_ms).unwrap_or(i64::MAX),
        key,
        value,
        headers: if batch.control.is_some() {
            IndexMap::new()
        } else {
            record
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), Some(Bytes::from(v.clone().into_bytes()))))
                .collect()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: Vec<ksim::Record>) -> RecordBatch {
        let mut b = RecordBatch::new_unassigned(7, 0, 3, 1_700_000_000_000, records);
        b.base_offset = 10;
        b.leader_epoch = 2;
        b
    }

    #[test]
    fn a_batch_survives_the_wire_both_ways() {
        let mut headed = ksim::Record::keyed(Some("k1"), "v1");
        headed.headers = vec![("z-first".into(), "1".into()), ("a-second".into(), String::new())];
        let sent = batch(vec![headed, ksim::Record { key: None, value: None, headers: Vec::new() }]);
        let mut plain = sent.clone();
        plain.producer_id = -1;
        plain.base_sequence = -1;
        let bytes = encode_fetched(std::slice::from_ref(&plain)).expect("encodes");
        assert_eq!(decode_produced(&bytes).expect("decodes").len(), 1, "a batch without idempotence stays whole");
        let bytes = encode_fetched(std::slice::from_ref(&sent)).expect("encodes");
        let back = decode_produced(&bytes).expect("decodes");
        assert_eq!(back.len(), 1, "one batch stays one batch");
        assert_eq!(back[0].records, sent.records);
        assert_eq!((back[0].producer_id, back[0].base_sequence), (7, 3));
        assert_eq!(back[0].timestamp_ms, 1_700_000_000_000);
    }

    #[test]
    fn a_flipped_bit_fails_the_crc() {
        let bytes = encode_fetched(&[batch(vec![ksim::Record::keyed(Some("k"), "value")])]).expect("encodes");
        let mut broken = bytes.to_vec();
        let last = broken.len() - 1;
        broken[last] ^= 1;
        let refused = decode_produced(&Bytes::from(broken)).expect_err("CRC mismatch");
        assert_eq!(refused.error, ErrorCode::CorruptMessage, "{}", refused.reason);
    }

    #[test]
    fn a_value_that_is_not_utf8_is_refused_as_an_invalid_record() {
        let r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from_static(&[0xff, 0xfe])),
            headers: IndexMap::new(),
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, [&r], &options).expect("encodes");
        let refused = decode_produced(&buf.freeze()).expect_err("not text");
        assert_eq!(refused.error, ErrorCode::InvalidRecord);
    }
}
