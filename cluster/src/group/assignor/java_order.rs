//! The orders Kafka's Java assignors depend on, reproduced exactly.
//!
//! Kafka's assignors are Java, and a few of their choices depend on orders that Java defines and
//! Rust does not share:
//!
//! - **`String.compareTo`** compares UTF-16 code units, not bytes. For ASCII (all legal Kafka topic
//!   names, and the member ids Kafka generates) the two agree; for text beyond the Basic
//!   Multilingual Plane they differ, so we compare UTF-16 code units too ([`cmp_java`]).
//! - **`java.util.HashMap` iteration.** The consumer group leader collects the members'
//!   subscriptions into a `HashMap<String, Subscription>` (in `ConsumerCoordinator.onLeaderElected`,
//!   filled in the JoinGroup response's member order), and the sticky assignors walk that map.
//!   When two members claim more partitions than they may keep, the one the map yields first keeps
//!   more. A `HashMap` iterates bucket by bucket, bucket = `spread(hashCode) & (capacity - 1)`, and
//!   within a bucket in insertion order; the capacity starts at 16 and doubles when the map is
//!   three-quarters full (or when one bucket's chain would grow past 8 while the table is smaller
//!   than 64). [`JavaHashOrder`] replays exactly that, so the order it reports is the order Kafka's
//!   leader sees. (Chains of 9 or more entries in one bucket of a table of 64 or more turn into
//!   red-black trees in Java, whose iteration order we do not model; that needs nine keys whose
//!   spread hashes agree in their low six bits, which member ids practically never do.)
//! - **`java.util.HashSet` first element.** The general sticky algorithm picks "any" partition from
//!   a `HashSet<TopicPartition>` with `iterator().next()`; [`JavaHashOrder`] gives the same one,
//!   with `TopicPartition.hashCode()` from [`topic_partition_hash`].

use crate::TopicPartition;
use std::cmp::Ordering;

/// Java's `String.compareTo`: lexicographic over UTF-16 code units.
pub(crate) fn cmp_java(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping.
pub(crate) fn string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// Kafka's `TopicPartition.hashCode()`: `31 * (31 + partition) + topic.hashCode()`, wrapping.
pub(crate) fn topic_partition_hash(tp: &TopicPartition) -> i32 {
    31i32.wrapping_add(tp.partition).wrapping_mul(31).wrapping_add(string_hash(&tp.topic))
}

/// `HashMap.hash(key)`: the high half of the hash folded into the low half.
fn spread(hash: i32) -> u32 {
    let h = hash as u32;
    h ^ (h >> 16)
}

const INITIAL_CAPACITY: usize = 16;
/// A bucket whose chain reaches this length makes Java treeify it, or resize a small table.
const TREEIFY_THRESHOLD: usize = 8;
const MIN_TREEIFY_CAPACITY: usize = 64;

/// The iteration order of a `java.util.HashMap` (or `HashSet`) created with `new HashMap<>()`,
/// given the keys' `hashCode()`s and the order of `put`s and `remove`s.
#[derive(Clone, Debug)]
pub(crate) struct JavaHashOrder<K> {
    capacity: usize,
    next_sequence: u64,
    /// (key, spread hash, insertion sequence): within a bucket Java keeps insertion order.
    entries: Vec<(K, u32, u64)>,
}

impl<K: PartialEq> JavaHashOrder<K> {
    pub(crate) fn new() -> Self {
        JavaHashOrder { capacity: INITIAL_CAPACITY, next_sequence: 0, entries: Vec::new() }
    }

    /// `put(key, ..)`: a key already present keeps its place. Returns whether it was new.
    pub(crate) fn insert(&mut self, key: K, hash: i32) -> bool {
        if self.entries.iter().any(|(k, _, _)| *k == key) {
            return false;
        }
        let spread_hash = spread(hash);
        let bucket = self.bucket(spread_hash);
        let chain = self.entries.iter().filter(|(_, h, _)| self.bucket(*h) == bucket).count();
        self.entries.push((key, spread_hash, self.next_sequence));
        self.next_sequence += 1;
        // putVal: appending to a chain that already had TREEIFY_THRESHOLD nodes calls treeifyBin,
        // which only resizes while the table is small.
        if chain >= TREEIFY_THRESHOLD && self.capacity < MIN_TREEIFY_CAPACITY {
            self.capacity *= 2;
        }
        // `++size > threshold` with threshold = 0.75 * capacity.
        if self.entries.len() > self.capacity / 4 * 3 {
            self.capacity *= 2;
        }
        true
    }

    /// `remove(key)`: the table never shrinks.
    pub(crate) fn remove(&mut self, key: &K) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _, _)| k != key);
        before != self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What `iterator().next()` returns.
    pub(crate) fn first(&self) -> Option<&K> {
        self.entries.iter().min_by_key(|(_, h, seq)| (self.bucket(*h), *seq)).map(|(k, _, _)| k)
    }

    /// Every key, in the order Java's iterator yields them.
    pub(crate) fn iteration_order(&self) -> Vec<&K> {
        let mut order: Vec<&(K, u32, u64)> = self.entries.iter().collect();
        order.sort_by_key(|(_, h, seq)| (self.bucket(*h), *seq));
        order.into_iter().map(|(k, _, _)| k).collect()
    }

    fn bucket(&self, spread_hash: u32) -> usize {
        spread_hash as usize & (self.capacity - 1)
    }
}

/// The order in which Java iterates a `HashMap<String, _>` whose keys were put in `keys` order.
pub(crate) fn hash_map_order<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut order = JavaHashOrder::new();
    for key in keys {
        order.insert(key, string_hash(key));
    }
    order.iteration_order().into_iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_matches_java() {
        // Values from Java's "...".hashCode().
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        assert_eq!(string_hash("consumer1"), -421_004_549);
        assert_eq!(string_hash("hello world"), 1_794_106_052);
    }

    #[test]
    fn java_order_is_utf16_order() {
        assert_eq!(cmp_java("consumer-a", "consumer-b"), Ordering::Less);
        assert_eq!(cmp_java("B", "a"), Ordering::Less);
        // U+FF5E (one UTF-16 unit 0xFF5E) sorts after U+1F600 (surrogates 0xD83D 0xDE00) in Java,
        // although its UTF-8 bytes sort first.
        assert_eq!(cmp_java("\u{FF5E}", "\u{1F600}"), Ordering::Greater);
        assert!("\u{FF5E}".as_bytes() < "\u{1F600}".as_bytes());
    }

    #[test]
    fn hash_map_order_by_bucket_then_insertion() {
        // "Aa" and "BB" share a hashCode (2112), so a bucket: insertion order decides.
        assert_eq!(hash_map_order(["BB", "Aa"]), vec!["BB", "Aa"]);
        assert_eq!(hash_map_order(["Aa", "BB"]), vec!["Aa", "BB"]);
        // "b" (98) lands in bucket 2, "a" (97) in bucket 1.
        assert_eq!(hash_map_order(["b", "a"]), vec!["a", "b"]);
    }

    #[test]
    fn hash_map_grows_at_three_quarters() {
        // 13 one-letter keys: the 13th put resizes to 32 buckets, where 'a'..'m' (97..109) take
        // buckets 1..13 in code order; at 16 buckets 'p' (112) would have come first.
        let keys: Vec<String> = ('a'..='m').map(String::from).collect();
        let order = hash_map_order(keys.iter().map(String::as_str));
        assert_eq!(order, keys.iter().map(String::as_str).collect::<Vec<_>>());
        let keys: Vec<String> = "pabcdefghijkl".chars().map(String::from).collect();
        let order = hash_map_order(keys.iter().map(String::as_str));
        assert_eq!(order.concat(), "abcdefghijklp", "32 buckets: 'p' = 112 = bucket 16 comes after 'l' = 108");
        let order = hash_map_order(keys[..12].iter().map(String::as_str));
        assert_eq!(order.concat(), "pabcdefghijk", "16 buckets: 'p' = 112 = bucket 0 comes first");
    }
}
