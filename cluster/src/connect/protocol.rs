//! What Connect workers put in the group protocol's opaque fields.
//!
//! Workers join their group (`group.id`) through the brokers' group coordinator like consumers
//! do, with protocol type `connect` instead of `consumer` (`WorkerCoordinator.protocolType`).
//! The coordinator does not read what follows; the workers do:
//! - each member's **metadata** in JoinGroup is its REST url, the offset of the config topic it
//!   has read to, and (the incremental protocols) what it runs now
//!   (`ConnectProtocol.WorkerState`, `IncrementalCooperativeConnectProtocol`'s
//!   `ExtendedWorkerState`): the leader learns from it who runs what;
//! - each member's **assignment** in SyncGroup is an `ExtendedAssignment`: the leader, the
//!   config offset, the connectors and tasks to *start*, those to *stop* (revoked), an error,
//!   and a *delay*: how long until the member should rejoin so that work lost with a departed
//!   worker can be given out (`scheduled.rebalance.max.delay.ms`).
//!
//! `connect.protocol` picks the protocols a worker offers (`ConnectProtocolCompatibility`):
//! `sessioned` (the default since Kafka 2.4, KIP-507) offers `sessioned`, `compatible` and
//! `default`; `compatible` (KIP-415, incremental cooperative) offers `compatible` and
//! `default`; `eager` offers only `default`, the stop-everything protocol of Kafka 2.2 and
//! earlier. The coordinator picks the protocol every member offers.

use crate::connect::herder::Unit;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `connect.protocol`: `ConnectProtocolCompatibility`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConnectProtocolCompatibility {
    /// `eager`: protocol name `default`.
    Eager,
    /// `compatible`: incremental cooperative rebalancing (KIP-415).
    Compatible,
    /// `sessioned`: incremental, with the leader's session key for internal requests (KIP-507).
    Sessioned,
}

impl ConnectProtocolCompatibility {
    /// The protocol name in JoinGroup (`ConnectProtocolCompatibility.protocol`).
    pub fn protocol(self) -> &'static str {
        match self {
            ConnectProtocolCompatibility::Eager => "default",
            ConnectProtocolCompatibility::Compatible => "compatible",
            ConnectProtocolCompatibility::Sessioned => "sessioned",
        }
    }

    /// `ConnectProtocolCompatibility.fromProtocol`.
    pub fn from_protocol(name: &str) -> Option<ConnectProtocolCompatibility> {
        [Self::Eager, Self::Compatible, Self::Sessioned].into_iter().find(|p| p.protocol() == name)
    }

    /// `connect.protocol`'s value (`ConnectProtocolCompatibility.compatibility`).
    pub fn from_config(value: &str) -> Option<ConnectProtocolCompatibility> {
        match value.to_ascii_lowercase().as_str() {
            "eager" => Some(Self::Eager),
            "compatible" => Some(Self::Compatible),
            "sessioned" => Some(Self::Sessioned),
            _ => None,
        }
    }

    /// The protocols a worker offers, in preference order (`WorkerCoordinator.metadata`).
    pub fn offered(self) -> Vec<ConnectProtocolCompatibility> {
        match self {
            Self::Eager => vec![Self::Eager],
            Self::Compatible => vec![Self::Compatible, Self::Eager],
            Self::Sessioned => vec![Self::Sessioned, Self::Compatible, Self::Eager],
        }
    }
}

/// A worker's JoinGroup metadata (`ExtendedWorkerState`; `WorkerState` for `default`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerMetadata {
    /// The worker's REST url (`rest.advertised.*`): `http://<worker>:8083/`.
    pub url: String,
    /// How far the worker has read the config topic.
    pub config_offset: i64,
    /// What the worker runs now; `None` under the eager protocol, whose metadata has no
    /// assignment, and before the worker's first assignment.
    pub owned: Option<Vec<Unit>>,
}

/// The host part of a worker's url: how the trace names the worker.
pub fn worker_of_url(url: &str) -> &str {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.split([':', '/']).next().unwrap_or(rest)
}

/// `ExtendedAssignment.NO_ERROR` and `CONFIG_MISMATCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignmentError {
    None,
    /// The leader had not read the config topic as far as some member: everyone rejoins.
    ConfigMismatch,
}

/// A worker's SyncGroup assignment (`ExtendedAssignment`). Under the incremental protocols the
/// connectors and tasks are the ones to *start*: the worker keeps running what it ran, less the
/// revoked ones (`WorkerCoordinator.onJoinComplete`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectAssignment {
    pub error: AssignmentError,
    /// The leader's member id and url.
    pub leader: String,
    pub leader_url: String,
    pub config_offset: i64,
    pub assigned: Vec<Unit>,
    pub revoked: Vec<Unit>,
    /// Rejoin after this long (`scheduled.rebalance.max.delay.ms` counting down); 0: no delay.
    pub delay_ms: u64,
}

fn units(f: &mut fmt::Formatter<'_>, label: &str, units: &[Unit], connectors: bool) -> fmt::Result {
    let names: Vec<String> =
        units.iter().filter(|u| matches!(u, Unit::Connector(_)) == connectors).map(|u| u.to_string()).collect();
    write!(f, "{label}=[{}]", names.join(", "))
}

impl fmt::Display for ConnectAssignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        units(f, "connectors", &self.assigned, true)?;
        units(f, " tasks", &self.assigned, false)?;
        if !self.revoked.is_empty() {
            let names: Vec<String> = self.revoked.iter().map(|u| u.to_string()).collect();
            write!(f, " revoked=[{}]", names.join(", "))?;
        }
        if self.delay_ms > 0 {
            write!(f, " delay={}ms", self.delay_ms)?;
        }
        if self.error == AssignmentError::ConfigMismatch {
            write!(f, " error=CONFIG_MISMATCH")?;
        }
        Ok(())
    }
}

impl fmt::Display for WorkerMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} config@{}", self.url, self.config_offset)?;
        if let Some(owned) = &self.owned {
            let names: Vec<String> = owned.iter().map(|u| u.to_string()).collect();
            write!(f, " running [{}]", names.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_offers_its_protocol_and_the_older_ones() {
        let names = |c: ConnectProtocolCompatibility| c.offered().iter().map(|p| p.protocol()).collect::<Vec<_>>();
        assert_eq!(names(ConnectProtocolCompatibility::Sessioned), ["sessioned", "compatible", "default"]);
        assert_eq!(names(ConnectProtocolCompatibility::Compatible), ["compatible", "default"]);
        assert_eq!(names(ConnectProtocolCompatibility::Eager), ["default"]);
    }

    #[test]
    fn a_worker_is_named_by_its_urls_host() {
        assert_eq!(worker_of_url("http://worker-1:8083/"), "worker-1");
    }
}
