//! Virtual time. The simulator owns the clock; state machines are handed `now` with every input.
//!
//! Time is counted in whole microseconds from the start of a run. Kafka's configs are in
//! milliseconds, so most code works in ms through [`SimTime::from_ms`] and [`SimTime::plus_ms`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in virtual time: microseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub fn from_ms(ms: u64) -> SimTime {
        SimTime(ms.saturating_mul(1000))
    }

    pub fn as_us(self) -> u64 {
        self.0
    }

    pub fn as_ms(self) -> u64 {
        self.0 / 1000
    }

    pub fn plus_ms(self, ms: u64) -> SimTime {
        SimTime(self.0.saturating_add(ms.saturating_mul(1000)))
    }

    pub fn plus_us(self, us: u64) -> SimTime {
        SimTime(self.0.saturating_add(us))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn ms_since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0) / 1000
    }
}

impl fmt::Display for SimTime {
    /// `12.345s`: seconds with millisecond precision, the way the narration prints time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 / 1000;
        write!(f, "{}.{:03}s", ms / 1000, ms % 1000)
    }
}
