//! Names for the things Kafka stores: topics, their partitions, and the brokers that hold them.
//!
//! A topic is a name; a partition is a topic plus a number from 0. Kafka identifies brokers by a
//! 32-bit integer (`node.id`), and so do we.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A topic's name, interned: every `TopicName` with the same text shares one allocation.
///
/// Partitions are map keys everywhere (a leader's replicas, a fetch session's partitions, the
/// checker's logs), and every lookup compares names: with a thousand partitions of one topic, a
/// lookup compared the same topic's bytes a dozen times. Interned names compare equal by pointer,
/// and read their bytes only to order two different topics; a clone copies a pointer, not the
/// text. The names are interned per thread (a run has its own thread), up to
/// [`MAX_INTERNED_NAMES`]; past that a name is allocated on its own and compares by its bytes,
/// which is slower, never different. It serializes as a plain string, so traces and digests do
/// not see it. (Kafka 2.8+ also gives each topic a `Uuid`, KIP-516, on the wire; ksim's
/// messages keep names, which is what its trace shows.)
#[derive(Clone)]
pub struct TopicName(Arc<str>);

impl Serialize for TopicName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TopicName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(TopicName::from)
    }
}

impl TopicName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for TopicName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for TopicName {
    fn eq(&self, other: &TopicName) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for TopicName {}

impl PartialOrd for TopicName {
    fn partial_cmp(&self, other: &TopicName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TopicName {
    fn cmp(&self, other: &TopicName) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            Ordering::Equal
        } else {
            self.0.cmp(&other.0)
        }
    }
}

impl Hash for TopicName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl PartialEq<str> for TopicName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for TopicName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for TopicName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<TopicName> for str {
    fn eq(&self, other: &TopicName) -> bool {
        self == &*other.0
    }
}

impl PartialEq<TopicName> for &str {
    fn eq(&self, other: &TopicName) -> bool {
        *self == &*other.0
    }
}

impl PartialEq<TopicName> for String {
    fn eq(&self, other: &TopicName) -> bool {
        **self == *other.0
    }
}

/// How many distinct topic names one thread interns (a scenario declares at most a few thousand
/// topics; a live client could name any number).
pub const MAX_INTERNED_NAMES: usize = 100_000;

thread_local! {
    static INTERNED: std::cell::RefCell<std::collections::BTreeSet<Arc<str>>> =
        const { std::cell::RefCell::new(std::collections::BTreeSet::new()) };
}

fn intern(name: &str) -> Arc<str> {
    INTERNED.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(shared) = names.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name);
        if names.len() < MAX_INTERNED_NAMES {
            names.insert(shared.clone());
        }
        shared
    })
}

impl From<&str> for TopicName {
    fn from(name: &str) -> Self {
        TopicName(intern(name))
    }
}

impl From<String> for TopicName {
    fn from(name: String) -> Self {
        TopicName(intern(&name))
    }
}

impl From<&String> for TopicName {
    fn from(name: &String) -> Self {
        TopicName(intern(name))
    }
}

impl From<&TopicName> for TopicName {
    fn from(name: &TopicName) -> Self {
        name.clone()
    }
}

impl From<TopicName> for String {
    fn from(name: TopicName) -> Self {
        name.0.to_string()
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A broker's `node.id`.
pub type BrokerId = i32;

/// One partition of one topic, written `topic-partition` as Kafka's tools print it (`payments-0`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: TopicName,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<TopicName>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_the_same_text_share_one_allocation_and_order_by_text() {
        let a = TopicName::from("payments");
        let b = TopicName::from(String::from("payments"));
        assert!(Arc::ptr_eq(&a.0, &b.0), "interned");
        assert_eq!(a, b);
        assert_eq!(a, "payments");
        assert_eq!("payments", a);
        let c = TopicName::from("orders");
        assert!(c < a);
        assert_eq!(a.cmp(&c), Ordering::Greater);
        let mut partitions = [TopicPartition::new("payments", 1), TopicPartition::new("orders", 3)];
        partitions.sort();
        assert_eq!(partitions[0].to_string(), "orders-3");
    }

    #[test]
    fn a_name_made_past_the_interning_limit_still_compares_by_its_text() {
        let shared = TopicName::from("t");
        let own = TopicName(Arc::from("t"));
        assert!(!Arc::ptr_eq(&shared.0, &own.0));
        assert_eq!(shared, own);
        assert_eq!(shared.cmp(&own), Ordering::Equal);
    }

    #[test]
    fn it_serializes_as_a_plain_string() {
        let tp = TopicPartition::new("payments", 0);
        let json = serde_json::to_string(&tp).unwrap();
        assert_eq!(json, r#"{"topic":"payments","partition":0}"#);
        let back: TopicPartition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tp);
        assert!(Arc::ptr_eq(&back.topic.0, &tp.topic.0), "read back interned");
    }
}
