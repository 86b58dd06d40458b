//! The seeded cryptographic generator every random byte of this crate comes from.

use std::fmt;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tabmesh_base::hash_parts;

/// Domain tag of [`Entropy::fork`]'s child seeds.
const FORK_DOMAIN: &[u8] = b"tabmesh/entropy-fork/v1";

/// A deterministic CSPRNG (ChaCha20) seeded by the driver with 32 bytes of OS entropy; the
/// simulator seeds it from its seed.
///
/// The crate never reads OS randomness itself: keys, nonces and link secrets are exactly as
/// unpredictable as the seed. Seed it once per process from the OS (`getrandom`, `crypto.getRandomValues`)
/// and never reuse a seed outside tests and the simulator: two generators from the same seed draw
/// the same keys and nonces.
///
/// It is deliberately not `Clone` (a copy would repeat every byte drawn after it); use
/// [`Entropy::fork`] to give another component its own generator. `Debug` does not print its state.
pub struct Entropy {
    rng: ChaCha20Rng,
}

impl Entropy {
    /// A generator seeded with `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Entropy {
        Entropy {
            rng: ChaCha20Rng::from_seed(seed),
        }
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        self.rng.fill_bytes(buf);
    }

    /// The next `N` bytes of the stream.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// A child generator for another purpose: seeded from this one's next 32 bytes, mixed with
    /// `label` (`H("tabmesh/entropy-fork/v1" ‖ next 32 bytes ‖ label)`). Forks with different labels,
    /// or successive forks with the same label, are independent streams.
    pub fn fork(&mut self, label: &[u8]) -> Entropy {
        let next: [u8; 32] = self.array();
        Entropy::from_seed(hash_parts(FORK_DOMAIN, &[&next, label]).0)
    }
}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entropy").finish_non_exhaustive()
    }
}
