//! The APIs `ksim serve` implements, with the versions it advertises in ApiVersions: exactly the
//! ones whose every field it maps to and from ksim's own protocol (`ksim_cluster::protocol`).
//!
//! Each range is inside both what Kafka 4.0's broker accepts (`ApiKeys`, the `validVersions` of
//! `clients/src/main/resources/common/message/*Request.json`) and what the `kafka-protocol`
//! crate encodes. Where a newer version needs something ksim does not model, the range stops
//! below it: Fetch v13+ names topics by topic id (KIP-516), ksim's topics have none; Produce
//! v10+ answers NOT_LEADER_OR_FOLLOWER with the new leader's endpoint (KIP-951); FindCoordinator
//! v4+ batches keys (KIP-699, handled); JoinGroup v8+ and LeaveGroup v5 add reasons, SyncGroup
//! v5 echoes the protocol's name, OffsetCommit v9 and OffsetFetch v9 are KIP-848's member epochs,
//! OffsetFetch v8 batches groups.
//!
//! The transactional APIs stop where KIP-890 part 2 (transaction version 2) starts: EndTxn v5
//! bumps the epoch at every commit and TxnOffsetCommit v5 adds the group's partition without
//! AddOffsetsToTxn (a client uses them only when the broker's `transaction.version` feature
//! is 2, which ksim does not advertise). AddPartitionsToTxn v4+ is the brokers' batched form
//! with VerifyOnly (KIP-890 part 1), never sent by a client. InitProducerId v5 and
//! AddOffsetsToTxn and TxnOffsetCommit v4 only add TRANSACTION_ABORTABLE to the errors a
//! client understands. WriteTxnMarkers is inter-broker and not served. ListTransactions v2 filters
//! by a regular expression on the transactional id (KIP-1152), which ksim does not evaluate.

use kafka_protocol::messages::ApiKey;

/// (API, lowest version, highest version).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::JoinGroup, 2, 7),
    (ApiKey::SyncGroup, 0, 4),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

/// The versions of `api` ksim implements, if it implements it.
pub fn range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(a, _, _)| *a == api).map(|(_, min, max)| (*min, *max))
}

pub fn supports(api: ApiKey, version: i16) -> bool {
    range(api).is_some_and(|(min, max)| (min..=max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_version_is_one_the_crate_can_decode() {
        for (api, min, max) in SUPPORTED {
            let crate_range = api.valid_versions();
            assert!(crate_range.min <= *min && *max <= crate_range.max, "{api:?} {min}..={max} vs {crate_range:?}");
        }
    }
}
