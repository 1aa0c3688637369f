//! One seed, a tree of random streams.
//!
//! Every source of randomness in a run (network latency, loss, each node's own choices, the
//! workload, random faults) draws from its own ChaCha stream, derived from the scenario seed and
//! the stream's name. Adding a fault, or a node, therefore does not shift the draws of unrelated
//! streams: the latency of a message between broker 1 and 2 does not change because a consumer
//! was added. (madsim's scheduler has its own RNG, seeded from the same seed.)

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// FNV-1a, 64-bit: a small, stable hash (its output never changes between builds or platforms,
/// unlike `std`'s hashers).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv1a64::default();
    hasher.update(bytes);
    hasher.0
}

/// FNV-1a fed piece by piece: hashing a stream gives the same value as hashing it whole, so a
/// digest can be taken as the bytes are written, without holding them.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(pub u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

impl std::io::Write for Fnv1a64 {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SplitMix64: spreads a 64-bit value over 64 bits, for deriving seeds.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream named `name` under `seed`.
pub fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    let mut state = splitmix64(seed ^ fnv1a64(name.as_bytes()));
    for chunk in key.chunks_mut(8) {
        state = splitmix64(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::RngCore;

    #[test]
    fn streams_are_stable_and_independent() {
        let a1 = stream(7, "network").next_u64();
        let a2 = stream(7, "network").next_u64();
        let b = stream(7, "workload").next_u64();
        let c = stream(8, "network").next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
        // Pinned: a change here reshuffles every recorded seed.
        assert_eq!(fnv1a64(b"ksim"), 0xaeef27d78dfc2521);
    }
}
