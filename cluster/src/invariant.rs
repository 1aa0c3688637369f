//! Invariants: what must hold of a node's state after every input it handles.
//!
//! Each state machine exposes `check_invariants(&self) -> Result<(), String>`; the message names
//! the invariant and what was seen. Every `StateMachine::handle` checks its node at the end in a
//! debug build ([`debug_check`]) and panics naming the node, so a scenario test fails at the
//! step that broke the state rather than where it shows. The simulator may call the same checks
//! in a release build (a fuzz sweep). Each invariant cites where Kafka holds it.

use std::fmt::Display;

/// `Ok` if `holds`, else the message `broken` builds.
pub fn ensure(holds: bool, broken: impl FnOnce() -> String) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(broken())
    }
}

/// In a debug build, panic if `check` finds a broken invariant on `node`.
pub fn debug_check(node: impl Display, check: impl FnOnce() -> Result<(), String>) {
    if cfg!(debug_assertions) {
        if let Err(broken) = check() {
            panic!("invariant broken on {node}: {broken}");
        }
    }
}
