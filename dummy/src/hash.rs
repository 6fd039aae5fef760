//! A fast non-cryptographic hash of byte ranges, for "did these bytes change between submit and
//! execution" checks. Split-independent: feeding a range in any pieces gives the same result.
#![forbid(unsafe_code)]

/// Streaming 64-bit hash over bytes (a multiply-rotate mix over little-endian words).
#[derive(Clone, Debug)]
pub(crate) struct RangeHasher {
    state: u64,
    pending: [u8; 8],
    pending_len: usize,
    total: u64,
}

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl RangeHasher {
    /// A hasher with nothing fed yet.
    pub(crate) fn new() -> Self {
        Self {
            state: 0x243F_6A88_85A3_08D3,
            pending: [0; 8],
            pending_len: 0,
            total: 0,
        }
    }

    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    }

    /// Feeds bytes.
    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.pending_len > 0 {
            let take = (8 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 8 {
                return;
            }
            let word = u64::from_le_bytes(self.pending);
            self.mix(word);
            self.pending_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut le = [0; 8];
            le.copy_from_slice(word);
            self.mix(u64::from_le_bytes(le));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// The hash of everything fed.
    pub(crate) fn finish(mut self) -> u64 {
        if self.pending_len > 0 {
            let mut last = [0; 8];
            last[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            self.mix(u64::from_le_bytes(last));
        }
        let total = self.total;
        self.mix(total);
        let mut h = self.state;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^ (h >> 33)
    }
}

/// Hash of one slice.
#[cfg(test)]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = RangeHasher::new();
    hasher.update(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests;
