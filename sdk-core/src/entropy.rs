//! Randomness, supplied by the driver.
//!
//! The core draws no randomness of its own: ids, share codes and backoff jitter come from an
//! [`Entropy`] the driver passes in. Drivers seed a fast generator from the operating system
//! (or `crypto.getRandomValues` in the browser); tests use a fixed seed.

/// A source of random bytes.
pub trait Entropy {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);

    /// A random `u64`.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
}

impl<E: Entropy + ?Sized> Entropy for &mut E {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (**self).fill_bytes(dest)
    }
}

/// A small seeded generator (SplitMix64).
///
/// Fast and good enough for unique ids and jitter when seeded from real randomness; it is not a
/// cryptographic generator, which nothing in the SDK needs (share codes must be unique and hard
/// to collide with, not secret). Written by hand because `rand` would grow the browser build.
#[derive(Debug, Clone)]
pub struct SeededEntropy {
    state: u64,
}

impl SeededEntropy {
    /// A generator starting from `seed`. The same seed gives the same sequence.
    pub const fn new(seed: u64) -> Self {
        SeededEntropy { state: seed }
    }
}

impl Entropy for SeededEntropy {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let n = self.next_u64();
            chunk.copy_from_slice(&n.to_le_bytes()[..chunk.len()]);
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_entropy_is_reproducible_and_fills_odd_lengths() {
        let mut a = SeededEntropy::new(7);
        let mut b = SeededEntropy::new(7);
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
        assert_ne!(SeededEntropy::new(8).next_u64(), SeededEntropy::new(7).next_u64());
    }
}
