//! Maps keyed by [`BufferKey`], hashed with one multiplication instead of SipHash: keys are
//! counters the coordinator hands out, not input an attacker chooses, and the submitter looks one
//! up per drained upload.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use memkit_core::scheduler::BufferKey;

/// A map from buffer keys.
pub(crate) type KeyMap<V> = HashMap<BufferKey, V, BuildHasherDefault<KeyHasher>>;

/// Fibonacci hashing of a 64-bit key: the multiplication spreads consecutive keys over the high
/// bits, which the table's control bytes use.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `BufferKey` (it hashes one `u64`); kept correct for any other input.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
