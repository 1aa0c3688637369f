//! Names for the things Kafka stores: topics, their partitions, and the brokers that hold them.
//!
//! A topic is a name; a partition is a topic plus a number from 0. Kafka identifies brokers by a
//! 32-bit integer (`node.id`), and so do we.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A broker's `node.id`.
pub type BrokerId = i32;

/// One partition of one topic, written `topic-partition` as Kafka's tools print it (`payments-0`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
