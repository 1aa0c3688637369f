//! Digesting a trace allocates nothing per event: the binary encoding goes straight into the hash.
//!
//! A test binary of its own, because it replaces the global allocator with one that counts the
//! allocations each thread makes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while this thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations this thread makes while `f` runs, and what `f` returned.
fn allocations_in<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

#[test]
fn digesting_a_recorded_trace_allocates_nothing_per_event() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/leader-failover.ron");
    let scenario = ksim_sim::Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let trace = ksim_sim::run(&scenario, "leader-failover", 1).unwrap().trace;
    assert!(trace.events.len() > 1_000, "a trace with every kind of traffic");

    let header_only = ksim_sim::Trace { header: trace.header.clone(), events: Vec::new() };
    let (empty, _) = allocations_in(|| header_only.digest());
    let (whole, digest) = allocations_in(|| trace.digest());
    assert_eq!(
        whole,
        empty,
        "digesting {} events made {whole} allocations, the header alone {empty}",
        trace.events.len()
    );
    assert!(empty <= 1, "only the hex string is allocated, not {empty} times");
    assert_eq!(digest.len(), 16);

    // The counter sees allocations: the JSON lines of the same trace make many per event.
    let (json, _) = allocations_in(|| trace.canonical());
    assert!(json > trace.events.len() as u64, "the JSON form made only {json} allocations");
}
