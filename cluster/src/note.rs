//! Notes: what a state machine tells the trace about its own state changes.
//!
//! Messages show what nodes *say*; notes show what they *decide*: a broker became leader, a high
//! watermark moved, a log was truncated, the controller fenced a broker. The TUI, the narration
//! and the book fold these (with the messages) into the picture of the cluster at any step.

use crate::error::ErrorCode;
use crate::log::TruncateReason;
use crate::metadata::ElectionKind;
use crate::topic::{BrokerId, TopicPartition};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceReason {
    /// No heartbeat for `broker.session.timeout.ms`.
    SessionTimeout,
    /// The broker registered again (it restarted), so its old incarnation is gone.
    Reregistered,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsrChangeReason {
    /// The follower has not caught up for longer than `replica.lag.time.max.ms`.
    FollowerLagged { follower: BrokerId, caught_up_ms_ago: u64 },
    /// The follower reached the high watermark: it may rejoin.
    FollowerCaughtUp { follower: BrokerId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Note {
    // ---- controller ----
    BrokerRegistered { broker: BrokerId, broker_epoch: i64 },
    BrokerFenced { broker: BrokerId, reason: FenceReason },
    BrokerUnfenced { broker: BrokerId },
    TopicCreated { topic: String, assignment: Vec<Vec<BrokerId>> },
    /// The controller committed a new state for a partition.
    PartitionChanged {
        partition: TopicPartition,
        leader: Option<BrokerId>,
        leader_epoch: i32,
        isr: Vec<BrokerId>,
        partition_epoch: i32,
        election: Option<ElectionKind>,
    },
    // ---- broker ----
    /// A broker rebuilt a partition from its disk after starting.
    Recovered { partition: TopicPartition, log_end_offset: i64, high_watermark: i64 },
    BecameLeader { partition: TopicPartition, leader_epoch: i32, log_end_offset: i64, high_watermark: i64 },
    BecameFollower { partition: TopicPartition, leader: Option<BrokerId>, leader_epoch: i32 },
    Appended { partition: TopicPartition, base_offset: i64, count: i64, leader_epoch: i32, as_leader: bool },
    /// `on_leader`: the leader moved it (a follower only learns it from fetch responses).
    HighWatermark { partition: TopicPartition, high_watermark: i64, on_leader: bool },
    Truncated { partition: TopicPartition, to_offset: i64, removed: i64, reason: TruncateReason },
    LogStartMoved { partition: TopicPartition, log_start_offset: i64 },
    Flushed { partition: TopicPartition, offset: i64 },
    IsrChangeRequested { partition: TopicPartition, isr: Vec<BrokerId>, reason: IsrChangeReason },
    IsrChangeFailed { partition: TopicPartition, error: ErrorCode },
    // ---- producer ----
    /// A record the application sent was acknowledged.
    ProduceAcked { send_id: u64, partition: TopicPartition, offset: i64, key: Option<String>, value: String },
    /// A record the application sent failed for good.
    ProduceFailed { send_id: u64, partition: Option<TopicPartition>, error: ErrorCode, reason: String },
    /// A batch will be retried.
    ProduceRetry { partition: TopicPartition, error: ErrorCode, records: usize },
    // ---- consumer ----
    Consumed { partition: TopicPartition, offset: i64, key: Option<String>, value: String },
    PositionReset { partition: TopicPartition, offset: i64, reason: String },
    /// The consumer's position is not in the log any more (or not yet): OFFSET_OUT_OF_RANGE.
    OffsetOutOfRange { partition: TopicPartition, position: i64 },
}

impl Note {
    /// The partition a note is about, if any.
    pub fn partition(&self) -> Option<&TopicPartition> {
        use Note::*;
        match self {
            PartitionChanged { partition, .. }
            | Recovered { partition, .. }
            | BecameLeader { partition, .. }
            | BecameFollower { partition, .. }
            | Appended { partition, .. }
            | HighWatermark { partition, .. }
            | Truncated { partition, .. }
            | LogStartMoved { partition, .. }
            | Flushed { partition, .. }
            | IsrChangeRequested { partition, .. }
            | IsrChangeFailed { partition, .. }
            | ProduceAcked { partition, .. }
            | ProduceRetry { partition, .. }
            | Consumed { partition, .. }
            | PositionReset { partition, .. }
            | OffsetOutOfRange { partition, .. } => Some(partition),
            ProduceFailed { partition, .. } => partition.as_ref(),
            BrokerRegistered { .. } | BrokerFenced { .. } | BrokerUnfenced { .. } | TopicCreated { .. } => None,
        }
    }
}

fn fmt_leader(leader: &Option<BrokerId>) -> String {
    match leader {
        Some(id) => format!("broker-{id}"),
        None => "none".to_string(),
    }
}

impl fmt::Display for Note {
    /// The plain-language line the narration prints for this note.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Note::*;
        match self {
            BrokerRegistered { broker, broker_epoch } => {
                write!(f, "broker-{broker} registered (broker epoch {broker_epoch}); fenced until it catches up on metadata")
            }
            BrokerFenced { broker, reason: FenceReason::SessionTimeout } => {
                write!(f, "broker-{broker} missed broker.session.timeout.ms: fenced, its leaderships move")
            }
            BrokerFenced { broker, reason: FenceReason::Reregistered } => {
                write!(f, "broker-{broker} re-registered after a restart: its old incarnation is fenced")
            }
            BrokerUnfenced { broker } => write!(f, "broker-{broker} caught up on metadata: unfenced"),
            TopicCreated { topic, assignment } => {
                write!(f, "topic {topic} created with {} partition(s); replicas {:?}", assignment.len(), assignment)
            }
            PartitionChanged { partition, leader, leader_epoch, isr, election, .. } => {
                match election {
                    Some(ElectionKind::Clean) => write!(f, "{partition}: {} elected leader (clean)", fmt_leader(leader))?,
                    Some(ElectionKind::Unclean) => write!(
                        f,
                        "{partition}: UNCLEAN election: {} becomes leader though it was not in sync",
                        fmt_leader(leader)
                    )?,
                    Some(ElectionKind::Preferred) => {
                        write!(f, "{partition}: preferred replica {} takes leadership back", fmt_leader(leader))?
                    }
                    None if leader.is_none() => write!(f, "{partition}: no eligible leader; the partition is offline")?,
                    None => write!(f, "{partition}: leader {}", fmt_leader(leader))?,
                }
                write!(f, ", leader epoch {leader_epoch}, ISR {isr:?}")
            }
            Recovered { partition, log_end_offset, high_watermark } => {
                write!(f, "{partition}: recovered from disk with log end {log_end_offset}, high watermark {high_watermark}")
            }
            BecameLeader { partition, leader_epoch, log_end_offset, .. } => {
                write!(f, "{partition}: now leader for epoch {leader_epoch}, starting at offset {log_end_offset}")
            }
            BecameFollower { partition, leader: Some(l), leader_epoch } => {
                write!(f, "{partition}: now follower of broker-{l} (epoch {leader_epoch})")
            }
            BecameFollower { partition, leader: None, leader_epoch } => {
                write!(f, "{partition}: no leader in epoch {leader_epoch}; waiting")
            }
            Appended { partition, base_offset, count, leader_epoch, as_leader } => {
                let last = base_offset + count - 1;
                let range = if *count == 1 { format!("offset {base_offset}") } else { format!("offsets {base_offset}..={last}") };
                if *as_leader {
                    write!(f, "{partition}: leader appended {range} (epoch {leader_epoch})")
                } else {
                    write!(f, "{partition}: follower copied {range}")
                }
            }
            HighWatermark { partition, high_watermark, on_leader: true } => {
                write!(f, "{partition}: high watermark -> {high_watermark} (committed: on every in-sync replica)")
            }
            HighWatermark { partition, high_watermark, on_leader: false } => {
                write!(f, "{partition}: follower learns high watermark {high_watermark}")
            }
            Truncated { partition, to_offset, removed, reason } => {
                let why = match reason {
                    TruncateReason::DivergedFromLeader => "diverged from the new leader (truncation by leader epoch)",
                    TruncateReason::ToHighWatermark => "truncated to the high watermark",
                    TruncateReason::PowerFailure => "lost in the power failure (never flushed)",
                };
                write!(f, "{partition}: {removed} record(s) from offset {to_offset} removed: {why}")
            }
            LogStartMoved { partition, log_start_offset } => {
                write!(f, "{partition}: retention deleted old segments; log start offset -> {log_start_offset}")
            }
            Flushed { partition, offset } => write!(f, "{partition}: flushed to disk up to {offset}"),
            IsrChangeRequested { partition, isr, reason: IsrChangeReason::FollowerLagged { follower, caught_up_ms_ago } } => {
                write!(
                    f,
                    "{partition}: broker-{follower} last caught up {caught_up_ms_ago} ms ago (> replica.lag.time.max.ms): asking to shrink the ISR to {isr:?}"
                )
            }
            IsrChangeRequested { partition, isr, reason: IsrChangeReason::FollowerCaughtUp { follower } } => {
                write!(f, "{partition}: broker-{follower} caught up: asking to expand the ISR to {isr:?}")
            }
            IsrChangeFailed { partition, error } => write!(f, "{partition}: ISR change rejected: {error}"),
            ProduceAcked { partition, offset, key, value, .. } => {
                write!(f, "acknowledged {} at {partition}@{offset}", fmt_record(key, value))
            }
            ProduceFailed { partition, error, reason, .. } => match partition {
                Some(p) => write!(f, "send to {p} failed: {error} ({reason})"),
                None => write!(f, "send failed: {error} ({reason})"),
            },
            ProduceRetry { partition, error, records } => {
                write!(f, "{records} record(s) for {partition} will be retried after {error}")
            }
            Consumed { partition, offset, key, value } => write!(f, "consumed {} from {partition}@{offset}", fmt_record(key, value)),
            PositionReset { partition, offset, reason } => write!(f, "{partition}: position reset to {offset} ({reason})"),
            OffsetOutOfRange { partition, position } => {
                write!(f, "{partition}: OFFSET_OUT_OF_RANGE: offset {position} is not in the log (retention deleted it?)")
            }
        }
    }
}

fn fmt_record(key: &Option<String>, value: &str) -> String {
    match key {
        Some(k) => format!("{k}={value}"),
        None => value.to_string(),
    }
}
