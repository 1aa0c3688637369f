//! How a producer picks a partition, and why the same key can land on different partitions
//! depending on which client library sent it.
//!
//! # A record with a key
//!
//! A topic is split into partitions, and Kafka only promises order *within* a partition. So a
//! producer that wants all the events of one order (one user, one account) to stay in order gives
//! them the same key, and the client maps equal keys to the same partition: it hashes the key's
//! bytes and takes the hash modulo the number of partitions. The broker plays no part in this:
//! the choice is made inside the client, before the record is sent.
//!
//! Which hash? That is up to the client library, and here the two clients a .NET shop is likely
//! to meet disagree:
//!
//! - The **Java client** (and every client that copies it: Sarama's hash partitioner, franz-go,
//!   Kafka Streams) uses MurmurHash2 with Kafka's seed: `(murmur2(key) & 0x7fffffff) % partitions`
//!   ([`java_partition`]). An empty key is hashed like any other.
//! - **librdkafka**, the C library under Confluent.Kafka (.NET), confluent-kafka-python and
//!   confluent-kafka-go, defaults to `partitioner=consistent_random`: the CRC-32 of the key
//!   (the zlib one) modulo the partition count ([`librdkafka_consistent_partition`]), and a
//!   partition of its own choosing for a null *or empty* key.
//!
//! So a Java service and a .NET service that write the same keys to the same topic put most keys
//! on different partitions, and a consumer that relied on "all events for key K are in one
//! partition, in order" quietly breaks. The fix is on the .NET side: set
//! `Partitioner = Partitioner.Murmur2Random` (librdkafka's `murmur2_random`), which is the Java
//! hash ([`librdkafka_murmur2_partition`]). Run `ksim partition --partitions 6 KEY...` to see both
//! choices side by side.
//!
//! The count matters too: `hash % partitions` changes for most keys when partitions are added,
//! which is why adding partitions to a keyed topic reshuffles keys from then on.
//!
//! # A record without a key: sticky partitioning
//!
//! A keyless record can go anywhere, and the question is only how to spread such records well.
//! Before Kafka 2.4 the Java client went round-robin, one record per partition in turn, so every
//! batch held a record or two and the producer sent many tiny requests. KIP-480 (Kafka 2.4)
//! made the producer *sticky*: it sends keyless records to one partition until that partition's
//! batch is done, then picks another, so batches fill up and requests get fewer and larger.
//! But switching whenever a new batch was started sent *more* data to slower brokers: their
//! batches stay open longer, collect more records, and so keep the partition longer. KIP-794
//! (Kafka 3.3, the `BuiltInPartitioner`) fixed how the switch is decided: the producer counts the
//! bytes it has produced to the sticky partition and switches once they reach `batch.size`,
//! choosing the next partition at random among those that currently have a leader.
//! (It also weights that choice by how much is queued for each broker, so slow brokers get less;
//! `partitioner.adaptive.partitioning.enable`, on by default. ksim picks uniformly, see
//! [`StickyPartitioner`].)
//!
//! librdkafka is sticky too, but by time rather than bytes: it keeps the partition for
//! `sticky.partitioning.linger.ms` (10 ms by default). ksim's producer uses the Java rule for
//! every partitioner kind; what differs between the kinds is which records count as keyless
//! ([`partition_for_key`]).
//!
//! # Where a consumer group lives
//!
//! The same idea, with Java's `String.hashCode`, decides which broker coordinates a consumer
//! group: the leader of partition `abs(hashCode(group.id)) % 50` of `__consumer_offsets`
//! ([`group_coordinator_partition`]).
//!
//! Everything here is a pure function of its inputs; the one random choice (the next sticky
//! partition) draws from an RNG the caller hands in.

use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Kafka's seed for murmur2 (`Utils.murmur2`).
const MURMUR2_SEED: u32 = 0x9747_b28c;
/// MurmurHash2's mixing multiplier.
const MURMUR2_M: u32 = 0x5bd1_e995;
/// MurmurHash2's mixing shift.
const MURMUR2_R: u32 = 24;

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, returned as the Java `int`
/// Kafka uses (so often negative).
///
/// The key is read as little-endian 4-byte words; the 1 to 3 bytes left over are mixed in last.
/// Java's `>>>` is a logical shift, which is what `u32 >>` does, so the arithmetic is done on
/// `u32` and only the result is reinterpreted as `i32`.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java computes `seed ^ length` with an int length; Kafka keys are far below 2^31 bytes.
    let mut h = MURMUR2_SEED ^ (data.len() as u32);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }
    // The tail: Java's `switch (length % 4)` falls through from case 3 to case 1.
    let tail = words.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(MURMUR2_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clear the sign bit. Not `abs`: `-1` becomes `2147483647`, and
/// `i32::MIN` becomes `0`.
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition the Java producer picks for a non-null key:
/// `toPositive(murmur2(key)) % partitions`. An empty key is hashed like any other.
pub fn java_partition(key: &[u8], partitions: i32) -> i32 {
    assert_partitions(partitions);
    to_positive(murmur2(key)) % partitions
}

/// The CRC-32 lookup table for the reflected polynomial `0xEDB88320` (zlib, IEEE 802.3, PNG),
/// built at compile time.
const CRC32_TABLE: [u32; 256] = crc32_table();

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// CRC-32 as zlib's `crc32()` computes it (what librdkafka's `rd_crc32` uses): reflected, initial
/// value and final XOR `0xFFFFFFFF`. `crc32(b"123456789") == 0xCBF43926`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc = CRC32_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc ^ 0xffff_ffff
}

/// librdkafka's `consistent` partitioner (`rd_kafka_msg_partitioner_consistent`):
/// `crc32(key) % partitions`, computed unsigned.
///
/// librdkafka's default, `consistent_random`, uses this for a key of at least one byte and a
/// random (sticky) partition for a null **or empty** key; see [`partition_for_key`].
pub fn librdkafka_consistent_partition(key: &[u8], partitions: i32) -> i32 {
    assert_partitions(partitions);
    (crc32(key) % partitions as u32) as i32
}

/// librdkafka's `murmur2_random` partitioner for a non-null key
/// (`rd_kafka_msg_partitioner_murmur2_random`): `(rd_murmur2(key) & 0x7fffffff) % partitions`,
/// the same hash and the same arithmetic as the Java client ([`java_partition`]).
///
/// Like Java, and unlike `consistent_random`, it hashes an empty key: librdkafka's test
/// `0048-partitioner.c` expects `""` on `0x106e08d9 % partitions` and only a null key on a random
/// partition.
pub fn librdkafka_murmur2_partition(key: &[u8], partitions: i32) -> i32 {
    java_partition(key, partitions)
}

/// Java's `String.hashCode()`: `h = 31 * h + c` over the string's UTF-16 code units, wrapping on
/// overflow. A character outside the Basic Multilingual Plane counts as its two surrogates.
pub fn java_string_hash_code(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// Kafka's `Utils.abs`: the absolute value, except that `i32::MIN` (which has none) gives `0`
/// rather than Java's `Math.abs(Integer.MIN_VALUE) == Integer.MIN_VALUE`.
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The `__consumer_offsets` partition that holds a consumer group's state; the leader of that
/// partition is the group's coordinator. Kafka: `Utils.abs(groupId.hashCode()) %
/// offsets.topic.num.partitions` (50 by default).
pub fn group_coordinator_partition(group_id: &str, offsets_topic_partitions: i32) -> i32 {
    assert_partitions(offsets_topic_partitions);
    kafka_abs(java_string_hash_code(group_id)) % offsets_topic_partitions
}

fn assert_partitions(partitions: i32) {
    assert!(partitions >= 1, "a topic has at least one partition, found {partitions}");
}

/// Which client's partitioner a producer uses for keyed records (the `partitioner` config).
///
/// The names are librdkafka's values of its `partitioner` property where one exists. The Java
/// client has no such name: its default partitioner is what you get when `partitioner.class` is
/// not set, and ksim calls it `java`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PartitionerKind {
    /// The Java client's built-in partitioner: murmur2 for keyed records (an empty key is hashed),
    /// sticky for null keys.
    #[default]
    #[serde(rename = "java")]
    JavaDefault,
    /// librdkafka's default (and so Confluent.Kafka's): CRC-32 of the key, sticky for a null or
    /// empty key.
    #[serde(rename = "consistent_random")]
    LibrdkafkaConsistentRandom,
    /// librdkafka's Java-compatible partitioner: murmur2 of the key (an empty key is hashed),
    /// sticky for a null key.
    #[serde(rename = "murmur2_random")]
    LibrdkafkaMurmur2Random,
}

impl PartitionerKind {
    /// Every kind, in the order the names are listed in messages.
    pub const ALL: [PartitionerKind; 3] = [
        PartitionerKind::JavaDefault,
        PartitionerKind::LibrdkafkaConsistentRandom,
        PartitionerKind::LibrdkafkaMurmur2Random,
    ];

    /// The config value: `java`, `consistent_random` or `murmur2_random`.
    pub fn name(self) -> &'static str {
        match self {
            PartitionerKind::JavaDefault => "java",
            PartitionerKind::LibrdkafkaConsistentRandom => "consistent_random",
            PartitionerKind::LibrdkafkaMurmur2Random => "murmur2_random",
        }
    }
}

impl fmt::Display for PartitionerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// librdkafka `partitioner` values that ksim does not simulate.
const LIBRDKAFKA_NOT_SIMULATED: [&str; 5] = ["random", "consistent", "murmur2", "fnv1a", "fnv1a_random"];

impl FromStr for PartitionerKind {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if let Some(kind) = PartitionerKind::ALL.into_iter().find(|kind| kind.name() == value) {
            return Ok(kind);
        }
        let valid = PartitionerKind::ALL.map(PartitionerKind::name).join(", ");
        if LIBRDKAFKA_NOT_SIMULATED.contains(&value) {
            Err(format!("`{value}` is a librdkafka partitioner that ksim does not simulate; expected one of: {valid}"))
        } else {
            Err(format!(
                "unknown partitioner `{value}`; expected one of: {valid} \
                 (`java` is the Java client's default, the others are librdkafka's names)"
            ))
        }
    }
}

/// The partition a record's key decides, or `None` when the partitioner treats the record as
/// keyless and the sticky partitioner ([`StickyPartitioner`]) chooses.
///
/// | key          | `java`          | `consistent_random` | `murmur2_random` |
/// |--------------|-----------------|---------------------|------------------|
/// | null         | `None`          | `None`              | `None`           |
/// | empty        | murmur2 of `""` | `None`              | murmur2 of `""`  |
/// | other bytes  | murmur2         | CRC-32              | murmur2          |
pub fn partition_for_key(kind: PartitionerKind, key: Option<&[u8]>, partitions: i32) -> Option<i32> {
    let key = key?;
    match kind {
        PartitionerKind::JavaDefault => Some(java_partition(key, partitions)),
        PartitionerKind::LibrdkafkaConsistentRandom if key.is_empty() => None,
        PartitionerKind::LibrdkafkaConsistentRandom => Some(librdkafka_consistent_partition(key, partitions)),
        PartitionerKind::LibrdkafkaMurmur2Random => Some(librdkafka_murmur2_partition(key, partitions)),
    }
}

/// The sticky partition of one topic and the bytes produced to it since it was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sticky {
    partition: i32,
    produced_bytes: usize,
}

/// Where keyless records go: the Java client's built-in sticky partitioner (KIP-480, with the
/// byte-counting switch of KIP-794, Kafka 3.3+).
///
/// Per topic it keeps one sticky partition and the bytes produced to it:
/// 1. [`partition`](Self::partition) returns the sticky partition, choosing one first if the
///    topic has none (at the first keyless record, or after a switch).
/// 2. After appending the record, the producer reports its size with
///    [`on_append`](Self::on_append). Once the bytes produced to the sticky partition reach
///    `batch.size`, the partition is given up, and the next keyless record draws a new one.
///
/// A new partition is drawn uniformly at random among the *available* partitions (those with a
/// leader), or among all partitions when none is available; it may be the one just left.
///
/// Two approximations of Kafka, both deliberate:
/// - Kafka's adaptive partitioning (`partitioner.adaptive.partitioning.enable`, on by default)
///   weights the draw against partitions whose brokers have more queued; ksim draws uniformly,
///   as Kafka does when adaptive partitioning is off or all queues are equal.
/// - Kafka draws the next partition at the moment of the switch; ksim draws it when the next
///   keyless record arrives, with the availability known then. The distribution is the same,
///   and the RNG is only touched by `partition`.
///
/// Like Kafka, a sticky partition whose leader disappears is kept until its bytes are produced:
/// availability only matters when the next partition is drawn.
#[derive(Clone, Debug, Default)]
pub struct StickyPartitioner {
    topics: BTreeMap<String, Sticky>,
}

impl StickyPartitioner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The partition for a keyless record to `topic`, which has `partitions` partitions, of which
    /// `available` (any order, each in `0..partitions`) have a leader. Draws from `rng` only when
    /// the topic has no sticky partition.
    pub fn partition<R: RngCore + ?Sized>(
        &mut self,
        topic: &str,
        partitions: i32,
        available: &[i32],
        rng: &mut R,
    ) -> i32 {
        assert_partitions(partitions);
        assert!(
            available.iter().all(|p| (0..partitions).contains(p)),
            "available partitions {available:?} of {topic} must lie in 0..{partitions}"
        );
        if let Some(sticky) = self.topics.get(topic) {
            if sticky.partition < partitions {
                return sticky.partition;
            }
        }
        let partition = next_partition(partitions, available, rng);
        self.topics.insert(topic.to_string(), Sticky { partition, produced_bytes: 0 });
        partition
    }

    /// Report `appended_bytes` produced to the sticky partition of `topic`; switch once the total
    /// reaches `batch_size` (Kafka's `batch.size`). A no-op for a topic with no sticky partition.
    pub fn on_append(&mut self, topic: &str, appended_bytes: usize, batch_size: usize) {
        self.on_append_switch_allowed(topic, appended_bytes, batch_size, true);
    }

    /// [`on_append`](Self::on_append) with Kafka's `enableSwitch`: the Java producer passes
    /// `false` while the partition still has a batch that is not full (so a switch would leave a
    /// fractional batch behind). Then the switch waits until the bytes reach twice `batch_size`.
    pub fn on_append_switch_allowed(
        &mut self,
        topic: &str,
        appended_bytes: usize,
        batch_size: usize,
        switch_allowed: bool,
    ) {
        let batch_size = batch_size.max(1); // Kafka requires batch.size >= 1 for stickiness.
        let Some(sticky) = self.topics.get_mut(topic) else { return };
        sticky.produced_bytes = sticky.produced_bytes.saturating_add(appended_bytes);
        let produced = sticky.produced_bytes;
        if (produced >= batch_size && switch_allowed) || produced >= batch_size.saturating_mul(2) {
            self.topics.remove(topic);
        }
    }

    /// The sticky partition of `topic`, if one is chosen (for traces and views).
    pub fn current(&self, topic: &str) -> Option<i32> {
        self.topics.get(topic).map(|sticky| sticky.partition)
    }

    /// Bytes produced to the sticky partition of `topic` since it was chosen.
    pub fn produced_bytes(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, |sticky| sticky.produced_bytes)
    }
}

/// Kafka's `BuiltInPartitioner.nextPartition` without load statistics: a non-negative random
/// int modulo the number of candidates.
fn next_partition<R: RngCore + ?Sized>(partitions: i32, available: &[i32], rng: &mut R) -> i32 {
    let random = rng.next_u32() & 0x7fff_ffff;
    if available.is_empty() {
        (random % partitions as u32) as i32
    } else {
        available[(random % available.len() as u32) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn murmur2_matches_kafka_and_librdkafka_vectors() {
        let cases: &[(&[u8], i32)] = &[
            // Kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
            // librdkafka src/rdmurmur2.c, unittest_murmur2 (Java results, as hex)
            (b"kafka", 0xd067cf64u32 as i32),
            (b"giberish123456789", 0x8f552b0cu32 as i32),
            (b"1234", 0x9fc97b14u32 as i32),
            (b"234", 0xe7c009cau32 as i32),
            (b"34", 0x873930dau32 as i32),
            (b"4", 0x5a4b5ca1u32 as i32),
            (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c),
            (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62b377),
            (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4e09eu32 as i32),
            (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8b43f),
            // librdkafka src/rdmurmur2.c, unittest_murmur2: the empty key (and NULL) hash
            (b"", 0x106e08d9),
        ];
        for &(key, expected) in cases {
            assert_eq!(murmur2(key), expected, "murmur2({:?})", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn murmur2_partitions_match_librdkafka_partitioner_test() {
        // librdkafka tests/0048-partitioner.c, do_test_partitioners: the `murmur2` and
        // `murmur2_random` expectations (computed there with tests/java/Murmur2Cli), on 7
        // (test_quick) and 17 partitions.
        let cases: &[(&[u8], u32)] = &[
            (b"", 0x106e08d9),
            (b"23456", 0x058d780f),
            (b"this is another string with more length to it perhaps", 0x4f7703da),
            (b"hejsan", 0x5ec19395),
        ];
        for &(key, masked_hash) in cases {
            assert_eq!(to_positive(murmur2(key)) as u32, masked_hash);
            for partitions in [7, 17] {
                let expected = (masked_hash % partitions as u32) as i32;
                assert_eq!(java_partition(key, partitions), expected);
                assert_eq!(librdkafka_murmur2_partition(key, partitions), expected);
            }
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        // Kafka Utils.toPositive: `number & 0x7fffffff`.
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-973932308), -973932308 & 0x7fffffff);
    }

    #[test]
    fn java_partition_hashes_the_empty_key() {
        // Java hashes an empty key: murmur2("") = 0x106e08d9 = 275646681.
        assert_eq!(java_partition(b"", 6), 275646681 % 6);
        assert_eq!(java_partition(b"anything", 1), 0);
    }

    #[test]
    fn crc32_matches_the_check_value_and_librdkafka_vectors() {
        let cases: &[(&[u8], u32)] = &[
            // The CRC-32 (ISO-HDLC / zlib) catalogue check value.
            (b"123456789", 0xcbf43926),
            // The empty input.
            (b"", 0),
            // librdkafka tests/0048-partitioner.c, `consistent` expectations (from OS X `crc32`).
            (b"23456", 0xb1b451d7),
            (b"this is another string with more length to it perhaps", 0xb0150df7),
            (b"hejsan", 0xd077037e),
        ];
        for &(data, expected) in cases {
            assert_eq!(crc32(data), expected, "crc32({:?})", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn consistent_partitions_match_librdkafka_partitioner_test() {
        // librdkafka tests/0048-partitioner.c: `consistent` puts "" on 0x0 % n, `consistent_random`
        // puts it on a random partition; other keys on crc32 % n.
        for partitions in [7, 17] {
            let n = partitions as u32;
            assert_eq!(librdkafka_consistent_partition(b"", partitions), 0);
            assert_eq!(librdkafka_consistent_partition(b"23456", partitions), (0xb1b451d7 % n) as i32);
            assert_eq!(librdkafka_consistent_partition(b"hejsan", partitions), (0xd077037e % n) as i32);
            let kind = PartitionerKind::LibrdkafkaConsistentRandom;
            assert_eq!(partition_for_key(kind, Some(b""), partitions), None);
            assert_eq!(partition_for_key(kind, Some(b"hejsan"), partitions), Some((0xd077037e % n) as i32));
        }
    }

    #[test]
    fn crc32_is_computed_unsigned() {
        // A CRC with the top bit set must not go negative before the modulo (C's uint32 % int32).
        let key = b"hejsan"; // crc32 = 0xd077037e, above i32::MAX
        assert!(crc32(key) > i32::MAX as u32);
        assert_eq!(librdkafka_consistent_partition(key, 3), (0xd077037eu32 % 3) as i32);
    }

    #[test]
    fn java_and_librdkafka_disagree_on_most_keys() {
        let keys = ["order-1", "order-2", "order-3", "order-4", "order-5", "order-6", "order-7", "order-8"];
        let differ = keys
            .iter()
            .filter(|k| java_partition(k.as_bytes(), 6) != librdkafka_consistent_partition(k.as_bytes(), 6))
            .count();
        assert!(differ >= keys.len() / 2, "only {differ} of {} keys differ", keys.len());
    }

    #[test]
    fn java_string_hash_code_matches_java() {
        let cases: &[(&str, i32)] = &[
            // Java String.hashCode of the empty string.
            ("", 0),
            // Java: "hello".hashCode() == 99162322.
            ("hello", 99162322),
            // The classic collision: "Aa" and "BB" both hash to 2112.
            ("Aa", 2112),
            ("BB", 2112),
            // Overflows to exactly Integer.MIN_VALUE (a well-known Java puzzle).
            ("polygenelubricants", i32::MIN),
            // U+1F600 is two UTF-16 units, 0xD83D 0xDE00: 0xD83D * 31 + 0xDE00.
            ("\u{1F600}", 0xD83D * 31 + 0xDE00),
            // U+00E9 is one UTF-16 unit (not its two UTF-8 bytes).
            ("\u{e9}", 0xE9),
        ];
        for &(s, expected) in cases {
            assert_eq!(java_string_hash_code(s), expected, "{s:?}.hashCode()");
        }
    }

    #[test]
    fn kafka_abs_maps_min_value_to_zero() {
        // Kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testAbs.
        assert_eq!(kafka_abs(i32::MIN), 0);
        assert_eq!(kafka_abs(-10), 10);
        assert_eq!(kafka_abs(10), 10);
        assert_eq!(kafka_abs(0), 0);
        assert_eq!(kafka_abs(-1), 1);
    }

    #[test]
    fn group_coordinator_partition_of_a_few_groups() {
        // abs(hashCode) % 50, offsets.topic.num.partitions = 50.
        assert_eq!(group_coordinator_partition("", 50), 0);
        assert_eq!(group_coordinator_partition("hello", 50), 99162322 % 50);
        // A group whose hashCode is Integer.MIN_VALUE: Utils.abs gives 0, so partition 0.
        // (Math.abs would have left it negative, and `%` would give -48.)
        assert_eq!(group_coordinator_partition("polygenelubricants", 50), 0);
        // A negative hashCode: abs, then modulo.
        let h = java_string_hash_code("payments-consumers");
        assert_eq!(group_coordinator_partition("payments-consumers", 50), kafka_abs(h) % 50);
        for group in ["a", "group-1", "polygenelubricants", "\u{1F600}"] {
            assert!((0..50).contains(&group_coordinator_partition(group, 50)));
        }
    }

    #[test]
    fn partition_for_key_by_kind() {
        use PartitionerKind::*;
        let n = 17;
        // Null keys are keyless for every kind.
        for kind in PartitionerKind::ALL {
            assert_eq!(partition_for_key(kind, None, n), None, "{kind}");
        }
        // Empty keys: hashed by Java and murmur2_random, keyless for consistent_random
        // (librdkafka tests/0048-partitioner.c).
        assert_eq!(partition_for_key(JavaDefault, Some(b""), n), Some(0x106e08d9 % 17));
        assert_eq!(partition_for_key(LibrdkafkaMurmur2Random, Some(b""), n), Some(0x106e08d9 % 17));
        assert_eq!(partition_for_key(LibrdkafkaConsistentRandom, Some(b""), n), None);
        // Other keys: murmur2 for Java and murmur2_random, CRC-32 for consistent_random.
        assert_eq!(partition_for_key(JavaDefault, Some(b"hejsan"), n), Some(0x5ec19395 % 17));
        assert_eq!(partition_for_key(LibrdkafkaMurmur2Random, Some(b"hejsan"), n), Some(0x5ec19395 % 17));
        assert_eq!(
            partition_for_key(LibrdkafkaConsistentRandom, Some(b"hejsan"), n),
            Some((0xd077037e_u32 % 17) as i32)
        );
    }

    #[test]
    fn partitioner_kind_names_round_trip() {
        for kind in PartitionerKind::ALL {
            assert_eq!(kind.to_string().parse::<PartitionerKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<PartitionerKind>(&json).unwrap(), kind);
        }
        assert_eq!(PartitionerKind::default(), PartitionerKind::JavaDefault);
        assert_eq!(" murmur2_random ".parse(), Ok(PartitionerKind::LibrdkafkaMurmur2Random));
    }

    #[test]
    fn unknown_partitioner_names_list_the_valid_ones() {
        let err = "murmur".parse::<PartitionerKind>().unwrap_err();
        assert!(err.contains("unknown partitioner `murmur`"), "{err}");
        assert!(err.contains("java, consistent_random, murmur2_random"), "{err}");
        let err = "fnv1a".parse::<PartitionerKind>().unwrap_err();
        assert!(err.contains("does not simulate"), "{err}");
        assert!(err.contains("java, consistent_random, murmur2_random"), "{err}");
    }

    #[test]
    #[should_panic(expected = "at least one partition")]
    fn zero_partitions_is_a_bug() {
        java_partition(b"k", 0);
    }

    /// Send `records` keyless records of `bytes` each, as the producer does: pick, then report.
    fn send_keyless(
        sticky: &mut StickyPartitioner,
        rng: &mut ChaCha8Rng,
        records: usize,
        bytes: usize,
        batch_size: usize,
        available: &[i32],
    ) -> Vec<i32> {
        (0..records)
            .map(|_| {
                let p = sticky.partition("t", 6, available, rng);
                sticky.on_append("t", bytes, batch_size);
                p
            })
            .collect()
    }

    #[test]
    fn keyless_records_stay_on_one_partition_until_the_batch_fills() {
        // batch.size 1000, records of 100 bytes: ten records per sticky partition.
        let mut sticky = StickyPartitioner::new();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let all = [0, 1, 2, 3, 4, 5];
        let sent = send_keyless(&mut sticky, &mut rng, 40, 100, 1000, &all);
        for batch in sent.chunks(10) {
            assert!(batch.iter().all(|&p| p == batch[0]), "a batch switched early: {sent:?}");
        }
        // After exactly batch.size bytes the partition is given up and drawn again.
        assert_eq!(sticky.current("t"), None);
        assert_eq!(sticky.produced_bytes("t"), 0);
    }

    #[test]
    fn keyless_records_switch_at_batch_size_not_before() {
        let mut sticky = StickyPartitioner::new();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = sticky.partition("t", 6, &[0, 1, 2, 3, 4, 5], &mut rng);
        sticky.on_append("t", 999, 1000);
        assert_eq!(sticky.current("t"), Some(p));
        assert_eq!(sticky.produced_bytes("t"), 999);
        sticky.on_append("t", 1, 1000);
        assert_eq!(sticky.current("t"), None);
    }

    #[test]
    fn switch_waits_for_a_full_batch_up_to_twice_batch_size() {
        // Kafka's enableSwitch = false: keep the partition until 2 x batch.size.
        let mut sticky = StickyPartitioner::new();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let p = sticky.partition("t", 6, &[], &mut rng);
        sticky.on_append_switch_allowed("t", 1500, 1000, false);
        assert_eq!(sticky.current("t"), Some(p));
        sticky.on_append_switch_allowed("t", 500, 1000, false);
        assert_eq!(sticky.current("t"), None);
    }

    #[test]
    fn keyless_records_only_land_on_available_partitions() {
        // Partitions 1 and 4 have no leader.
        let available = [0, 2, 3, 5];
        for seed in 0..20 {
            let mut sticky = StickyPartitioner::new();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let sent = send_keyless(&mut sticky, &mut rng, 200, 100, 300, &available);
            assert!(sent.iter().all(|p| available.contains(p)), "seed {seed}: {sent:?}");
        }
        // Over many switches every available partition is used.
        let mut sticky = StickyPartitioner::new();
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let sent = send_keyless(&mut sticky, &mut rng, 400, 100, 100, &available);
        for p in available {
            assert!(sent.contains(&p), "partition {p} never chosen: {sent:?}");
        }
    }

    #[test]
    fn with_no_partition_available_any_partition_may_be_chosen() {
        let mut sticky = StickyPartitioner::new();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sent = send_keyless(&mut sticky, &mut rng, 300, 100, 100, &[]);
        assert!(sent.iter().all(|p| (0..6).contains(p)));
        assert!((0..6).all(|p| sent.contains(&p)));
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let run = |seed| {
            let mut sticky = StickyPartitioner::new();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            send_keyless(&mut sticky, &mut rng, 100, 100, 250, &[0, 1, 2, 3, 4, 5])
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43), "different seeds should (almost surely) differ");
    }

    #[test]
    fn topics_are_sticky_independently() {
        let mut sticky = StickyPartitioner::new();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let a = sticky.partition("a", 6, &[0, 1, 2, 3, 4, 5], &mut rng);
        let b = sticky.partition("b", 3, &[0, 1, 2], &mut rng);
        sticky.on_append("a", 10_000, 1000);
        assert_eq!(sticky.current("a"), None);
        assert_eq!(sticky.current("b"), Some(b));
        assert!((0..6).contains(&a));
        // A topic with no sticky partition ignores appends.
        sticky.on_append("c", 10_000, 1000);
        assert_eq!(sticky.current("c"), None);
    }

    #[test]
    fn a_sticky_partition_without_a_leader_is_kept_until_its_batch_fills() {
        // Kafka keeps the sticky partition; availability is consulted only at the next draw.
        let mut sticky = StickyPartitioner::new();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let p = sticky.partition("t", 6, &[0, 1, 2, 3, 4, 5], &mut rng);
        let others: Vec<i32> = (0..6).filter(|&q| q != p).collect();
        assert_eq!(sticky.partition("t", 6, &others, &mut rng), p);
        sticky.on_append("t", 1000, 1000);
        let next = sticky.partition("t", 6, &others, &mut rng);
        assert_ne!(next, p);
    }

    #[test]
    fn works_with_a_dyn_rng() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let rng: &mut dyn RngCore = &mut rng;
        let mut sticky = StickyPartitioner::default();
        assert!((0..4).contains(&sticky.partition("t", 4, &[0, 1, 2, 3], rng)));
    }
}
