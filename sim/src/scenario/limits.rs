//! ksim's own bounds on what one scenario may ask for, checked before anything is allocated
//! from the numbers (a scenario file with `partitions: 2147483647` must not try to build 51 GB of
//! replicas). Each is far above what a lesson or a configuration test needs; the error names the
//! field and the limit.

/// A scenario file's size: a few KB is typical.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Virtual time of one run: 7 days.
pub const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;
pub const MAX_BROKERS: u64 = 1_000;
pub const MAX_TOPICS: u64 = 10_000;
/// Partitions of one topic, and of all topics together.
pub const MAX_PARTITIONS: u64 = 100_000;
pub const MAX_CLIENTS: u64 = 1_000;
pub const MAX_RECORDS: u64 = 100_000_000;
/// Timeline steps, narration lines, expectations.
pub const MAX_STEPS: u64 = 100_000;
/// Faults of one kind `ksim fuzz` may draw for one seed.
pub const MAX_FUZZ_FAULTS: u64 = 100;
/// Seeds in one `ksim fuzz` or `ksim compare`.
pub const MAX_SEEDS: u64 = 10_000_000;
/// Parallel simulations.
pub const MAX_JOBS: usize = 256;
