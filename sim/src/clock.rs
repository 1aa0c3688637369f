//! Virtual time: the one place the simulator reads the clock.
//!
//! Inside a madsim runtime the clock is virtual, so this reads the simulation's time since its
//! start, never the wall clock. Everything else takes `now` as an argument.

use ksim_cluster::time::SimTime;

/// The current virtual time.
pub fn now() -> SimTime {
    SimTime(madsim::time::TimeHandle::current().elapsed().as_micros() as u64)
}
