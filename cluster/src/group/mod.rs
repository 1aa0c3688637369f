//! Consumer groups: how members share a topic's partitions.

pub mod assignor;
pub mod coordinator;
pub mod member;
