//! The states a transaction goes through at its coordinator, and which moves between them are
//! legal (Kafka's `TransactionState`, `validPreviousStates`).
//!
//! ```text
//!            AddPartitionsToTxn                EndTxn(commit)              all markers written
//!   Empty ─────────────────────▶ Ongoing ──────────────────▶ PrepareCommit ─────────────────▶ CompleteCommit
//!     ▲                           │  │ EndTxn(abort)                                               │
//!     │ InitProducerId            │  └─────────────────────▶ PrepareAbort ──────────────────▶ CompleteAbort
//!     │ (bumps the epoch)         │ InitProducerId / timeout       ▲
//!     └── Complete* / Empty       └──────▶ PrepareEpochFence ──────┘ (the epoch bumped, never written)
//! ```
//!
//! A transition is first *prepared* (the coordinator holds a pending state, and any other request
//! for the same `transactional.id` gets CONCURRENT_TRANSACTIONS), then written to
//! `__transaction_state`, and *completed* only once that write is replicated.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TransactionState {
    /// No transaction yet (or the last one finished and a new producer epoch began).
    Empty,
    /// Partitions have been added: records may be in flight to them.
    Ongoing,
    /// The commit is decided and written; markers are being written.
    PrepareCommit,
    /// The abort is decided and written; markers are being written.
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    /// The `transactional.id` expired and is being removed.
    Dead,
    /// A newer producer (InitProducerId) or the timeout sweep is bumping the epoch of an ongoing
    /// transaction before aborting it. Never written to the log: it only ever is a pending state.
    PrepareEpochFence,
}

use TransactionState::*;

impl TransactionState {
    /// The states this one may be entered from (`TransactionState.validPreviousStates`). The
    /// PrepareAbort entries from Empty and Complete* are transaction version 2's (KIP-890 part 2):
    /// a version 2 client sends EndTxn(abort) when it cannot know whether a leader added a
    /// partition; the classic protocol never takes them.
    pub fn valid_previous_states(self) -> &'static [TransactionState] {
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence, Empty, CompleteCommit, CompleteAbort],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    /// Whether a transition from `from` to this state is legal.
    pub fn can_follow(self, from: TransactionState) -> bool {
        self.valid_previous_states().contains(&from)
    }

    /// Whether an idle `transactional.id` in this state may expire
    /// (`transactional.id.expiration.ms`).
    pub fn is_expiration_allowed(self) -> bool {
        matches!(self, Empty | CompleteCommit | CompleteAbort)
    }

    /// Kafka's name for the state, as DescribeTransactions and `kafka-transactions.sh` print it.
    pub fn name(self) -> &'static str {
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub const ALL: [TransactionState; 8] =
        [Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead, PrepareEpochFence];
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a transaction ends: the marker written to each of its partitions (Kafka's
/// `TransactionResult`, the control record type COMMIT or ABORT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TransactionResult {
    Commit,
    Abort,
}

impl TransactionResult {
    /// The state the coordinator prepares for this result.
    pub fn prepare_state(self) -> TransactionState {
        match self {
            TransactionResult::Commit => PrepareCommit,
            TransactionResult::Abort => PrepareAbort,
        }
    }
}

impl fmt::Display for TransactionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransactionResult::Commit => "COMMIT",
            TransactionResult::Abort => "ABORT",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's table, one row per target state: (to, from, allowed).
    #[test]
    fn the_transition_table_is_kafkas() {
        let allowed: &[(TransactionState, &[TransactionState])] = &[
            // a new epoch (InitProducerId) starts from an idle transactional id
            (Empty, &[Empty, CompleteCommit, CompleteAbort]),
            // AddPartitionsToTxn starts or extends a transaction
            (Ongoing, &[Ongoing, Empty, CompleteCommit, CompleteAbort]),
            // only an ongoing transaction commits
            (PrepareCommit, &[Ongoing]),
            // an ongoing one aborts, a fenced one too; the idle sources are TV2's
            (PrepareAbort, &[Ongoing, PrepareEpochFence, Empty, CompleteCommit, CompleteAbort]),
            // completion follows its own prepare only
            (CompleteCommit, &[PrepareCommit]),
            (CompleteAbort, &[PrepareAbort]),
            (Dead, &[Empty, CompleteAbort, CompleteCommit]),
            (PrepareEpochFence, &[Ongoing]),
        ];
        for (to, sources) in allowed {
            for from in TransactionState::ALL {
                assert_eq!(to.can_follow(from), sources.contains(&from), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn no_state_leads_out_of_a_prepare_except_to_its_completion() {
        for to in TransactionState::ALL {
            if to.can_follow(PrepareCommit) {
                assert_eq!(to, CompleteCommit);
            }
            // PrepareAbort is only left for CompleteAbort
            if to.can_follow(PrepareAbort) {
                assert_eq!(to, CompleteAbort);
            }
        }
    }
}
