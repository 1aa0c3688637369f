//! The network: [`fabric`] decides each message's fate (latency, loss, cuts, slow links, FIFO per
//! connection); [`tcp`] holds the connection state Kafka sees (open requests, what a cut holds
//! back, resets after a restart).

pub mod fabric;
pub mod tcp;
