//! Which Kafka release ksim behaves as.
//!
//! Kafka's replication rules changed between releases, and a learner comparing ksim with a real
//! cluster needs to know which rules they are looking at. A scenario names the release
//! (`cluster: (kafka_version: "4.0", ...)`); ksim models the newest one it knows by default. The
//! version decides behaviour Kafka has no setting for, and the defaults of the settings it has;
//! where Kafka has a name for a behaviour (a feature level such as
//! `eligible.leader.replicas.version`), that name still overrides the version's default.
//!
//! | version | what changes |
//! |---|---|
//! | 3.3 – 3.6 | the oldest KRaft releases ksim accepts: a leader advances the high watermark with any ISR, and `min.insync.replicas` larger than the replication factor fails every `acks=all` write |
//! | 3.6 | **transaction verification** (KIP-890 part 1): a partition leader asks the transaction coordinator whether a transactional produce's partition is in the producer's ongoing transaction before it appends (`transaction.partition.verification.enable`, on by default) |
//! | 3.7 | **strict min ISR** (KAFKA-15583): below `min.insync.replicas` the leader stops advancing the high watermark (`Partition.maybeIncrementLeaderHW` returns early when `isUnderMinIsr`); the **effective min ISR** is `min(min.insync.replicas, replication factor)` (`Partition.effectiveMinIsr`) |
//! | 4.0 | **transaction version 2** (KIP-890 part 2; the `transaction.version` feature, `TransactionVersion.TV_2`, finalized at 2 on a new 4.0 cluster): every EndTxn bumps the producer epoch, and the client sends no AddPartitionsToTxn or AddOffsetsToTxn (the partition leader and the group coordinator add the partitions). Eligible Leader Replicas (KIP-966) can be turned on (`eligible.leader.replicas.version=1`); off by default. The new group coordinator (KIP-848) is the only one: it checks a JoinGroup's session timeout before whether it coordinates the group. An idempotent producer (the default) refuses `max.in.flight.requests.per.connection` above 5 (KAFKA-17927); `log.segment.bytes` is at least 1 MiB (KIP-1030). The controller quorum runs **pre-vote** (KIP-996): a voter whose leader went quiet asks whether it could win before it bumps the epoch |
//! | 4.1 | ELR is on by default for new clusters (`eligible.leader.replicas.version=1`); a topic's `segment.bytes` is at least 1 MiB (KAFKA-19080) |

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Kafka release, `major.minor` (patch releases do not change what ksim models).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KafkaVersion {
    pub major: u16,
    pub minor: u16,
}

impl KafkaVersion {
    pub const fn new(major: u16, minor: u16) -> Self {
        KafkaVersion { major, minor }
    }

    /// The release ksim models when a scenario names none.
    pub const CURRENT: KafkaVersion = KafkaVersion::new(4, 1);
    /// The oldest release ksim accepts: KRaft became production-ready in 3.3.
    pub const OLDEST: KafkaVersion = KafkaVersion::new(3, 3);

    /// KAFKA-15583 (3.7): no high-watermark progress below the (effective) min ISR, and the
    /// effective min ISR is capped by the replication factor.
    pub fn strict_min_isr(self) -> bool {
        self >= KafkaVersion::new(3, 7)
    }

    /// KIP-890 part 1 (3.6): `transaction.partition.verification.enable` exists and defaults to
    /// true (`ReplicaManager.appendRecords` verifies with the coordinator through
    /// `AddPartitionsToTxnManager`).
    pub fn transaction_verification(self) -> bool {
        self >= KafkaVersion::new(3, 6)
    }

    /// The `transaction.version` feature level a new cluster of this release is formatted with:
    /// 2 from 4.0 (`TransactionVersion.TV_2`, whose bootstrap metadata version is 4.0-IV2, is the
    /// latest production level `kafka-storage.sh format` finalizes), none (0) before: the feature
    /// does not exist there.
    pub fn default_transaction_version(self) -> u8 {
        if self >= KafkaVersion::new(4, 0) {
            2
        } else {
            0
        }
    }

    /// Whether `transaction.version` may be above 0 (KIP-890 part 2, KIP-1022: 4.0).
    pub fn supports_transaction_version(self) -> bool {
        self >= KafkaVersion::new(4, 0)
    }

    /// Whether `eligible.leader.replicas.version=1` may be set (KIP-966, usable from 4.0).
    pub fn supports_elr(self) -> bool {
        self >= KafkaVersion::new(4, 0)
    }

    /// KIP-996 (4.0): KRaft voters pre-vote before an election (`ProspectiveState`). Kafka has
    /// no setting for it.
    pub fn kraft_pre_vote(self) -> bool {
        self >= KafkaVersion::new(4, 0)
    }

    /// ELR's default: on for new clusters from 4.1 (KIP-966).
    pub fn elr_by_default(self) -> bool {
        self >= KafkaVersion::new(4, 1)
    }

    /// The new group coordinator (KIP-848's `GroupCoordinatorService`) is the default and only one
    /// from 4.0 (KAFKA-14048, KAFKA-18329); before, the Scala `GroupCoordinator`.
    pub fn new_group_coordinator(self) -> bool {
        self >= KafkaVersion::new(4, 0)
    }
}

impl Default for KafkaVersion {
    fn default() -> Self {
        KafkaVersion::CURRENT
    }
}

impl fmt::Display for KafkaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for KafkaVersion {
    type Err = String;

    /// `"4.1"` or `"4.1.0"`; a release ksim does not model is an error that says which it does.
    fn from_str(s: &str) -> Result<Self, String> {
        let malformed = || format!("`{s}` is not a Kafka version; write it as \"major.minor\", e.g. \"4.1\"");
        let parts: Vec<&str> = s.trim().split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(malformed());
        }
        let number = |p: &str| p.parse::<u16>().map_err(|_| malformed());
        let version = KafkaVersion::new(number(parts[0])?, number(parts[1])?);
        if let Some(patch) = parts.get(2) {
            number(patch)?;
        }
        if version < KafkaVersion::OLDEST || version > KafkaVersion::CURRENT {
            return Err(format!(
                "Kafka {version} is not a release ksim models; it models {} to {}",
                KafkaVersion::OLDEST,
                KafkaVersion::CURRENT
            ));
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_compare_and_name_what_they_change() {
        let v: KafkaVersion = "4.0".parse().unwrap();
        assert_eq!(v, KafkaVersion::new(4, 0));
        assert_eq!("3.7.1".parse::<KafkaVersion>().unwrap(), KafkaVersion::new(3, 7));
        assert!(KafkaVersion::new(3, 9) < KafkaVersion::new(4, 0));
        assert!(!"3.6".parse::<KafkaVersion>().unwrap().strict_min_isr());
        assert!("3.7".parse::<KafkaVersion>().unwrap().strict_min_isr());
        assert!(v.supports_elr() && !v.elr_by_default());
        assert!(KafkaVersion::CURRENT.elr_by_default());
        assert!(v.kraft_pre_vote() && !KafkaVersion::new(3, 9).kraft_pre_vote(), "KIP-996 shipped in 4.0");
        assert!(!KafkaVersion::new(3, 5).transaction_verification(), "KIP-890 part 1 shipped in 3.6");
        assert!(KafkaVersion::new(3, 6).transaction_verification() && KafkaVersion::CURRENT.transaction_verification());
        assert_eq!(KafkaVersion::new(3, 9).default_transaction_version(), 0, "TV2 came with 4.0");
        assert_eq!(v.default_transaction_version(), 2);
        assert_eq!(KafkaVersion::CURRENT.default_transaction_version(), 2);
        assert!(!KafkaVersion::new(3, 9).supports_transaction_version() && v.supports_transaction_version());
        assert!("four".parse::<KafkaVersion>().unwrap_err().contains("major.minor"));
        assert!("4".parse::<KafkaVersion>().unwrap_err().contains("major.minor"));
        assert!("2.8".parse::<KafkaVersion>().unwrap_err().contains("models 3.3 to 4.1"));
        assert!("9.0".parse::<KafkaVersion>().unwrap_err().contains("not a release"));
    }
}
