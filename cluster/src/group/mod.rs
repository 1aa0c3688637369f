//! Consumer groups: how members share a topic's partitions.

pub mod assignor;
