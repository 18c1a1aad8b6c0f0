//! The one random generator of the runtime, the Jepsen-style test and the load generator: seeded,
//! so that a run that logs its seed can be replayed with it (tigerbeetle's VOPR prints its seed
//! for the same reason).
//!
//! A run draws one seed ([`seed_from_env_or_time`] unless the caller has one) and derives a
//! generator for each node, client thread or worker with [`Rng::fork`]: the same seed gives every
//! one of them the same sequence again, and no two of them the same sequence.

/// The environment variable that fixes the seed of a run (a decimal `u64`).
pub const SEED_VAR: &str = "IMPLS_SEED";

/// A xorshift64 generator: timer jitter, injected faults, random choices and workloads need no
/// more. Not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator for `seed`. Every seed, 0 included, gives a usable generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Child generator number `i`: a function of this generator's current state and `i` only, so
    /// forking the same parent the same way gives the same children; it does not advance the
    /// parent.
    pub fn fork(&self, i: u64) -> Rng {
        Rng::new(splitmix64(self.0 ^ splitmix64(i.wrapping_add(1))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (up to a modulo bias that is negligible for small `n`); 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A duration drawn from `range` (an actor's timer range), to the nanosecond.
    pub fn within(&mut self, range: &std::ops::Range<std::time::Duration>) -> std::time::Duration {
        let span = range.end.saturating_sub(range.start);
        range.start + std::time::Duration::from_nanos(self.below(span.as_nanos().max(1) as u64))
    }

    /// One of `choices` (an actor's random choice); `None` if there is none.
    pub fn pick<'a, T>(&mut self, choices: &'a [T]) -> Option<&'a T> {
        (!choices.is_empty()).then(|| &choices[self.below(choices.len() as u64) as usize])
    }
}

/// A bijective mix of the bits of `x` (the finaliser of SplitMix64).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed in [`SEED_VAR`] if it is set (to replay a run), else one drawn from the clock. The
/// caller logs it, so that the run can be replayed.
pub fn seed_from_env_or_time() -> u64 {
    if let Ok(s) = std::env::var(SEED_VAR) {
        match s.trim().parse() {
            Ok(seed) => return seed,
            Err(_) => {
                tracing::warn!(var = SEED_VAR, value = %s, "not a u64: seed drawn from the clock")
            }
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Two processes started in the same nanosecond still differ.
    splitmix64(nanos ^ (u64::from(std::process::id()) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(mut r: Rng, n: usize) -> Vec<u64> {
        (0..n).map(|_| r.next_u64()).collect()
    }

    #[test]
    fn same_seed_same_sequence_and_forks_differ() {
        assert_eq!(take(Rng::new(7), 100), take(Rng::new(7), 100));
        assert_ne!(take(Rng::new(7), 100), take(Rng::new(8), 100));
        let parent = Rng::new(7);
        assert_eq!(take(parent.fork(3), 100), take(Rng::new(7).fork(3), 100));
        let forks: Vec<Vec<u64>> = (0..16).map(|i| take(parent.fork(i), 20)).collect();
        for (i, a) in forks.iter().enumerate() {
            assert_ne!(a, &take(parent.clone(), 20), "fork {i} repeats its parent");
            for b in &forks[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Forking does not advance the parent.
        assert_eq!(take(parent, 100), take(Rng::new(7), 100));
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = Rng::new(0);
        for n in [1, 2, 3, 10, 1000] {
            assert!((0..1000).all(|_| r.below(n) < n));
        }
        assert_eq!(r.below(0), 0);
        assert!((0..1000).map(|_| r.unit()).all(|u| (0.0..1.0).contains(&u)));
    }
}
